//! Folding the deltas into the summary tables.
//!
//! On PostgreSQL each table folds in one statement, `WITH moved AS (DELETE … RETURNING …)
//! INSERT … ON CONFLICT DO UPDATE`: exactly the deltas it deletes are added, and deltas of
//! transactions still open stay for the next fold. One instance folds at a time (a
//! transaction-scoped advisory lock; the others skip their turn). On SQLite the fold is a write
//! transaction like any other: one writer at a time, so adding every delta and then deleting
//! them all is exact.

use std::time::Duration;

use diesel::prelude::*;

use crate::db::{self, DbConnection, Pool};

/// How often the server folds.
pub const FOLD_EVERY: Duration = Duration::from_secs(1);

/// The advisory lock key of the fold and of `stats rebuild` ("umkmsumm").
pub(super) const FOLD_LOCK: i64 = 0x756d_6b6d_7375_6d6d;

/// One table's fold: its key columns and its summed columns.
struct Folded {
    table: &'static str,
    keys: &'static str,
    sums: &'static [&'static str],
}

const TABLES: [Folded; 3] = [
    Folded {
        table: "summary_businesses",
        keys: "district_code, scale, kbli_division, is_ikm, established_year, status",
        sums: &["n", "employees", "revenue_idr"],
    },
    Folded {
        table: "summary_applications",
        keys: "bank_partner_id, programme_id, status, consented",
        sums: &["n", "requested_idr", "approved_idr"],
    },
    Folded { table: "summary_counts", keys: "figure, scope, item", sums: &["n"] },
];

/// The rollups' upsert of the rows `from` (the deltas being folded).
fn rollups_upsert(from: &str) -> String {
    let keys = super::BUSINESS_KEYS.join(", ");
    format!(
        "INSERT INTO summary_business_rollups AS s (rollup, {keys}, n, employees, revenue_idr) \
         SELECT * FROM ({}) r WHERE true \
         ON CONFLICT (rollup, {keys}) DO UPDATE SET n = s.n + excluded.n, \
         employees = s.employees + excluded.employees, revenue_idr = s.revenue_idr + excluded.revenue_idr",
        super::rollup_selects(from)
    )
}

impl Folded {
    /// The statements that fold this table on `backend`.
    fn sql(&self, postgres: bool) -> Vec<String> {
        let Folded { table, keys, sums } = self;
        let businesses = *table == "summary_businesses";
        let columns = sums.join(", ");
        let summed: Vec<String> = sums.iter().map(|c| format!("CAST(SUM({c}) AS BIGINT)")).collect();
        let summed = summed.join(", ");
        let add: Vec<String> = sums.iter().map(|c| format!("{c} = s.{c} + excluded.{c}")).collect();
        let add = add.join(", ");
        let all_zero: Vec<String> = sums.iter().map(|c| format!("{c} = 0")).collect();
        let all_zero = all_zero.join(" AND ");
        let upsert = format!("ON CONFLICT ({keys}) DO UPDATE SET {add}");
        let mut statements = if postgres {
            let fold = format!(
                "INSERT INTO {table} AS s ({keys}, {columns}) \
                 SELECT {keys}, {summed} FROM moved GROUP BY {keys} {upsert}"
            );
            // The rollups of the businesses' summary fold from the same deleted deltas, in the
            // same statement.
            let moved = format!("moved AS (DELETE FROM {table}_delta RETURNING {keys}, {columns})");
            vec![match businesses {
                true => format!("WITH {moved}, folded AS ({fold} RETURNING 1) {}", rollups_upsert("moved")),
                false => format!("WITH {moved} {fold}"),
            }]
        } else {
            // `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
            let mut sqlite = vec![format!(
                "INSERT INTO {table} AS s ({keys}, {columns}) \
                 SELECT {keys}, {summed} FROM {table}_delta WHERE true GROUP BY {keys} {upsert}"
            )];
            if businesses {
                sqlite.push(rollups_upsert("summary_businesses_delta"));
            }
            sqlite.push(format!("DELETE FROM {table}_delta"));
            sqlite
        };
        statements.push(format!("DELETE FROM {table} WHERE {all_zero}"));
        if businesses {
            statements.push(format!("DELETE FROM summary_business_rollups WHERE {all_zero}"));
        }
        statements
    }
}

/// Folds every delta written so far into the summary tables. Returns whether this call folded
/// (false when another instance was folding).
pub fn fold(conn: &mut DbConnection) -> QueryResult<bool> {
    let postgres = matches!(conn, DbConnection::Pg(_));
    db::write(conn, |conn| {
        if postgres && !try_lock(conn)? {
            return Ok(false);
        }
        for table in &TABLES {
            for sql in table.sql(postgres) {
                diesel::sql_query(sql).execute(conn)?;
            }
        }
        Ok(true)
    })
}

/// Takes the fold's advisory lock for this transaction if no one holds it.
fn try_lock(conn: &mut DbConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Got {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        got: bool,
    }
    diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS got")
        .bind::<diesel::sql_types::BigInt, _>(FOLD_LOCK)
        .get_result::<Got>(conn)
        .map(|g| g.got)
}

/// Starts the thread that folds every [`FOLD_EVERY`] for as long as the process runs. A failed
/// fold (the database down, say) is logged and tried again at the next turn; the deltas wait.
pub fn spawn_folder(pool: Pool) -> std::io::Result<()> {
    std::thread::Builder::new().name("summary-fold".into()).spawn(move || {
        loop {
            std::thread::sleep(FOLD_EVERY);
            let folded = pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut conn| fold(&mut conn).map_err(|e| e.to_string()));
            if let Err(err) = folded {
                log::warn!("folding the statistics' deltas failed, will retry: {err}");
            }
        }
    })?;
    Ok(())
}
