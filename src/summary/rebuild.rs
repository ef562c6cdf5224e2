//! The summaries recomputed from the base tables: `umkm-api stats rebuild` writes them,
//! `umkm-api stats verify` compares them with what the writes kept. The migration that created
//! the summary tables fills them with the same queries (a test keeps the two equal).

use std::collections::BTreeMap;
use std::fmt;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::fold::FOLD_LOCK;
use super::{
    BUSINESS_KEYS, applications_source, businesses_source, counts_source, members_source, rollup_selects,
    rollups,
};
use crate::db::{self, Backend, DbConnection};

/// A summary row: its table, its key as text, and its sums.
type Rows = BTreeMap<(&'static str, String), Vec<i64>>;

/// A group whose stored figures differ from the recomputed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The summary table.
    pub table: &'static str,
    /// The group's key, `column=value` pairs.
    pub key: String,
    /// The figures recomputed from the base tables (empty when the group has no rows).
    pub expected: Vec<i64>,
    /// The figures the summary holds (empty when it holds no such group).
    pub stored: Vec<i64>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: recomputed {:?}, stored {:?}", self.table, self.key, self.expected, self.stored)
    }
}

/// One summary table: the query recomputing it from the base tables (keys first, as text, then
/// the sums) and its key columns.
struct Summary {
    table: &'static str,
    keys: &'static [&'static str],
    sums: &'static [&'static str],
    source: fn() -> &'static str,
}

const SUMMARIES: [Summary; 4] = [
    Summary {
        table: "summary_businesses",
        keys: &["district_code", "scale", "kbli_division", "is_ikm", "established_year", "status"],
        sums: &["n", "employees", "revenue_idr"],
        source: businesses_source,
    },
    Summary {
        table: "summary_applications",
        keys: &["bank_partner_id", "programme_id", "status", "consented"],
        sums: &["n", "requested_idr", "approved_idr"],
        source: applications_source,
    },
    Summary {
        table: "summary_counts",
        keys: &["figure", "scope", "item"],
        sums: &["n"],
        source: counts_source,
    },
    Summary {
        table: "summary_members",
        keys: &["figure", "scope", "member"],
        sums: &["n"],
        source: members_source,
    },
];

/// `summary_counts` recomputed: the columns are figure, scope, item, n.
const COUNTS: &str = "SELECT 'products' AS figure, 0 AS scope, category AS item, COUNT(*) AS n FROM products GROUP BY category \
     UNION ALL SELECT 'registrations', training_id, status, COUNT(*) FROM registrations GROUP BY training_id, status \
     UNION ALL SELECT 'registrations', 0, status, COUNT(*) FROM registrations GROUP BY status \
     UNION ALL SELECT 'trainings', 0, '', COUNT(*) FROM trainings HAVING COUNT(*) > 0 \
     UNION ALL SELECT 'outlets', retail_partner_id, '', COUNT(*) FROM outlets GROUP BY retail_partner_id \
     UNION ALL SELECT 'curated_passed', retail_partner_id, '', COUNT(DISTINCT product_id) FROM curations WHERE status = 'passed' GROUP BY retail_partner_id \
     UNION ALL SELECT 'curated_passed', 0, '', COUNT(DISTINCT product_id) FROM curations WHERE status = 'passed' HAVING COUNT(*) > 0 \
     UNION ALL SELECT 'curated_ikm_businesses', c.retail_partner_id, '', COUNT(DISTINCT p.business_id) FROM curations c JOIN products p ON p.id = c.product_id JOIN businesses b ON b.id = p.business_id WHERE c.status = 'passed' AND b.is_ikm GROUP BY c.retail_partner_id \
     UNION ALL SELECT 'curated_ikm_businesses', 0, '', COUNT(DISTINCT p.business_id) FROM curations c JOIN products p ON p.id = c.product_id JOIN businesses b ON b.id = p.business_id WHERE c.status = 'passed' AND b.is_ikm HAVING COUNT(*) > 0 \
     UNION ALL SELECT 'outlets_stocking', o.retail_partner_id, '', COUNT(DISTINCT pl.outlet_id) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id \
     UNION ALL SELECT 'outlets_stocking', 0, '', COUNT(DISTINCT pl.outlet_id) FROM placements pl WHERE pl.delisted_on IS NULL HAVING COUNT(*) > 0 \
     UNION ALL SELECT 'products_listed', o.retail_partner_id, '', COUNT(DISTINCT pl.product_id) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id";

/// `summary_members` recomputed: figure, scope, member, n.
const MEMBERS: &str = "SELECT 'passed_product' AS figure, retail_partner_id AS scope, product_id AS member, COUNT(*) AS n FROM curations WHERE status = 'passed' GROUP BY retail_partner_id, product_id \
     UNION ALL SELECT 'passed_product', 0, product_id, COUNT(*) FROM curations WHERE status = 'passed' GROUP BY product_id \
     UNION ALL SELECT 'curated_business', c.retail_partner_id, p.business_id, COUNT(*) FROM curations c JOIN products p ON p.id = c.product_id WHERE c.status = 'passed' GROUP BY c.retail_partner_id, p.business_id \
     UNION ALL SELECT 'curated_business', 0, p.business_id, COUNT(*) FROM curations c JOIN products p ON p.id = c.product_id WHERE c.status = 'passed' GROUP BY p.business_id \
     UNION ALL SELECT 'stocking_outlet', o.retail_partner_id, pl.outlet_id, COUNT(*) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id, pl.outlet_id \
     UNION ALL SELECT 'stocking_outlet', 0, pl.outlet_id, COUNT(*) FROM placements pl WHERE pl.delisted_on IS NULL GROUP BY pl.outlet_id \
     UNION ALL SELECT 'listed_product', o.retail_partner_id, pl.product_id, COUNT(*) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id, pl.product_id";

impl Summary {
    /// The SELECT recomputing this table from the base tables, with the columns in table order.
    fn recompute(&self, backend: Backend) -> String {
        let year = match backend {
            Backend::Postgres => "EXTRACT(YEAR FROM established_on)",
            Backend::Sqlite => "strftime('%Y', established_on)",
        };
        match self.table {
            "summary_businesses" => format!(
                "SELECT district_code, COALESCE(scale, '') AS scale, kbli_division, is_ikm, \
                 COALESCE(CAST({year} AS INTEGER), 0) AS established_year, status, \
                 COUNT(*) AS n, COALESCE(SUM(employees), 0) AS employees, \
                 COALESCE(SUM(annual_revenue_idr), 0) AS revenue_idr \
                 FROM businesses GROUP BY 1, 2, 3, 4, 5, 6"
            ),
            "summary_applications" => {
                "SELECT bank_partner_id, programme_id, status, consented, COUNT(*) AS n, \
                 COALESCE(SUM(amount_requested_idr), 0) AS requested_idr, \
                 COALESCE(SUM(amount_approved_idr), 0) AS approved_idr \
                 FROM applications GROUP BY 1, 2, 3, 4"
                    .to_owned()
            }
            "summary_members" => MEMBERS.to_owned(),
            _ => COUNTS.to_owned(),
        }
    }

    /// `query`'s rows (keys then sums, in this table's order) read as text keys and numbers.
    fn rows(&self, conn: &mut DbConnection, query: &str, out: &mut Rows) -> QueryResult<()> {
        // Every key as text, in one column; every sum as a 64-bit number.
        let key_text: Vec<String> =
            self.keys.iter().map(|k| format!("'{k}=' || CAST(q.{k} AS TEXT)")).collect();
        let sums: Vec<String> = self.sums.iter().map(|s| format!("CAST(q.{s} AS BIGINT)")).collect();
        let sql = format!(
            "SELECT {} AS key, {} AS sums FROM ({query}) q",
            key_text.join(" || ' ' || "),
            sums.iter().map(|s| format!("CAST({s} AS TEXT)")).collect::<Vec<_>>().join(" || ',' || ")
        );
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            key: String,
            #[diesel(sql_type = Text)]
            sums: String,
        }
        for row in diesel::sql_query(sql).load::<Row>(conn)? {
            let sums = row.sums.split(',').map(|s| s.parse().unwrap_or(i64::MIN)).collect();
            out.insert((self.table, normalize(&row.key)), sums);
        }
        Ok(())
    }

    /// What the summary holds now, deltas added, groups of all zeros left out.
    fn stored(&self) -> String {
        let sums: Vec<String> = self.sums.iter().map(|s| format!("SUM({s}) AS {s}")).collect();
        let nonzero: Vec<String> = self.sums.iter().map(|s| format!("SUM({s}) <> 0")).collect();
        let keys = self.keys.join(", ");
        format!(
            "SELECT {keys}, {} FROM {} s GROUP BY {keys} HAVING {}",
            sums.join(", "),
            (self.source)(),
            nonzero.join(" OR ")
        )
    }
}

/// The columns of a rollup row as [`Summary::rows`] reads them: its name, then every key.
const ROLLUP_KEYS: [&str; 7] =
    ["rollup", "district_code", "scale", "kbli_division", "is_ikm", "established_year", "status"];

/// Adds the sums of the group `key` (`column=value` pairs of every key column) to the rollup
/// `only` (a row of that rollup), or to every rollup (a group of the full summary or a delta).
fn add_to_rollups(rows: &mut Rows, key: &str, sums: &[i64], only: Option<&str>) {
    for r in rollups() {
        let name: Vec<&str> = r.iter().map(|i| BUSINESS_KEYS[*i]).collect();
        let name = name.join(",");
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let members: Vec<&str> = key
            .split(' ')
            .filter(|pair| {
                pair.split_once('=').is_some_and(|(k, _)| r.iter().any(|i| BUSINESS_KEYS[*i] == k))
            })
            .collect();
        let entry = rows
            .entry(("summary_business_rollups", format!("rollup={name} {}", members.join(" "))))
            .or_insert_with(|| vec![0; sums.len()]);
        for (total, s) in entry.iter_mut().zip(sums) {
            *total += s;
        }
    }
}

/// Booleans read as text differ between the back ends (`true`/`1`): one spelling.
fn normalize(key: &str) -> String {
    key.split(' ')
        .map(|pair| match pair.split_once('=') {
            Some((k, "1" | "t" | "true")) if k == "is_ikm" || k == "consented" => format!("{k}=true"),
            Some((k, "0" | "f" | "false")) if k == "is_ikm" || k == "consented" => format!("{k}=false"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Recomputes every summary from the base tables and compares it with what the summary holds;
/// the groups that differ (none when the summaries are right). Reads one snapshot.
pub fn verify(conn: &mut DbConnection) -> QueryResult<Vec<Difference>> {
    let backend = db::backend(conn);
    let read = |conn: &mut DbConnection| -> QueryResult<(Rows, Rows)> {
        let (mut expected, mut stored) = (Rows::new(), Rows::new());
        for summary in &SUMMARIES {
            summary.rows(conn, &summary.recompute(backend), &mut expected)?;
            summary.rows(conn, &summary.stored(), &mut stored)?;
        }
        // The rollups: expected from the recomputed businesses' groups, stored as the rollup
        // table's rows plus the deltas not folded yet.
        let full = &SUMMARIES[0];
        let groups: Vec<(String, Vec<i64>)> = expected
            .iter()
            .filter(|((table, _), _)| *table == full.table)
            .map(|((_, key), sums)| (key.clone(), sums.clone()))
            .collect();
        for (key, sums) in &groups {
            add_to_rollups(&mut expected, key, sums, None);
        }
        let mut rollup_rows = Rows::new();
        let rollup = Summary {
            table: "summary_business_rollups",
            keys: &ROLLUP_KEYS,
            sums: full.sums,
            source: full.source,
        };
        rollup.rows(conn, "SELECT * FROM summary_business_rollups", &mut rollup_rows)?;
        for ((_, key), sums) in rollup_rows {
            let (name, key) = key.split_once(' ').unwrap_or_default();
            add_to_rollups(&mut stored, key, &sums, Some(name.trim_start_matches("rollup=")));
        }
        let mut deltas = Rows::new();
        let keys = BUSINESS_KEYS.join(", ");
        let summed: Vec<String> = full.sums.iter().map(|c| format!("SUM({c}) AS {c}")).collect();
        let grouped =
            format!("SELECT {keys}, {} FROM summary_businesses_delta GROUP BY {keys}", summed.join(", "));
        full.rows(conn, &grouped, &mut deltas)?;
        for ((_, key), sums) in deltas {
            add_to_rollups(&mut stored, &key, &sums, None);
        }
        for rows in [&mut expected, &mut stored] {
            rows.retain(|(table, _), sums| *table != rollup.table || sums.iter().any(|s| *s != 0));
        }
        Ok((expected, stored))
    };
    let (expected, stored) = snapshot(conn, read)?;
    let mut differences = Vec::new();
    for key in expected.keys().chain(stored.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (e, s) = (expected.get(key), stored.get(key));
        if e != s {
            differences.push(Difference {
                table: key.0,
                key: key.1.clone(),
                expected: e.cloned().unwrap_or_default(),
                stored: s.cloned().unwrap_or_default(),
            });
        }
    }
    Ok(differences)
}

/// Runs `f` in one read-only snapshot: a REPEATABLE READ transaction on PostgreSQL, a read
/// transaction on SQLite (WAL readers see one snapshot for the whole transaction).
fn snapshot<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    match conn {
        DbConnection::Pg(inner) => AnsiTransactionManager::begin_transaction_sql(
            inner,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
        DbConnection::Sqlite(_) => Manager::begin_transaction(conn)?,
    }
    let result = f(conn);
    match result {
        Ok(value) => Manager::commit_transaction(conn).map(|()| value),
        Err(err) => {
            let _ = Manager::rollback_transaction(conn);
            Err(err)
        }
    }
}

/// Recomputes every summary from the base tables in one transaction, replacing what they held
/// and every delta; the rows written. Writers wait for it (on PostgreSQL their delta INSERTs
/// wait for the lock it takes), readers do not.
pub fn rebuild(conn: &mut DbConnection) -> QueryResult<i64> {
    let backend = db::backend(conn);
    db::write(conn, |conn| {
        if backend == Backend::Postgres {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)::text")
                .bind::<BigInt, _>(FOLD_LOCK)
                .execute(conn)?;
            diesel::sql_query(
                // In the order a write's `Deltas::apply` takes them.
                "LOCK TABLE summary_members, summary_businesses_delta, summary_applications_delta, \
                 summary_counts_delta IN EXCLUSIVE MODE",
            )
            .execute(conn)?;
        }
        let mut written = 0;
        diesel::sql_query("DELETE FROM summary_business_rollups").execute(conn)?;
        for summary in &SUMMARIES {
            if summary.table != "summary_members" {
                diesel::sql_query(format!("DELETE FROM {}_delta", summary.table)).execute(conn)?;
            }
            diesel::sql_query(format!("DELETE FROM {}", summary.table)).execute(conn)?;
            let columns = [summary.keys, summary.sums].concat().join(", ");
            written += diesel::sql_query(format!(
                "INSERT INTO {} ({columns}) SELECT {columns} FROM ({}) q",
                summary.table,
                summary.recompute(backend)
            ))
            .execute(conn)? as i64;
        }
        let keys = BUSINESS_KEYS.join(", ");
        written += diesel::sql_query(format!(
            "INSERT INTO summary_business_rollups (rollup, {keys}, n, employees, revenue_idr) \
             SELECT * FROM ({}) r",
            rollup_selects("summary_businesses")
        ))
        .execute(conn)? as i64;
        Ok(written)
    })
}
