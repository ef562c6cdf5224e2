//! Statistics kept as the data changes: counts and sums by the keys the dashboards group on, so
//! that a statistic reads a few thousand summary rows however many businesses there are.
//!
//! Every write that changes a figure collects what it changes in [`Deltas`] and appends them with
//! [`Deltas::apply`] in its own transaction, as plain INSERTs into the `summary_*_delta` tables:
//! no writer waits for another on a hot summary row, and no lock order between writers can
//! deadlock. [`fold`] moves the deltas into the summary tables (the server does it every
//! second); a read adds the two in one statement ([`businesses_source`] and the like), so it is
//! exact whether or not the deltas have been folded. [`rebuild`] recomputes everything from the
//! base tables, and `verify` compares.
//!
//! What is kept: businesses by district, scale, KBLI division, IKM, established year and status
//! (count, workers, sales); applications by bank, programme, status and consent (count,
//! requested and approved sums); products by category and registrations by training and
//! status. Curations, placements, outlets and trainings are counted from their own tables:
//! their size is what retail partners curate and the office schedules, not the registry's.

mod fold;
mod members;
mod rebuild;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{summary_applications_delta, summary_businesses_delta, summary_counts_delta};

pub use fold::{FOLD_EVERY, fold, spawn_folder};
pub use members::{Member, business_is_ikm, lock_product};
pub use rebuild::{Difference, rebuild, verify};

/// The largest capital or annual sales a business may declare, rupiah (one quadrillion, far
/// above PP 7/2021's largest band). A group's sums stay within 64 bits unless more than 9,000
/// businesses of the group declare sales near this bound; a write whose deltas would not fit
/// fails (and changes nothing) rather than wrap.
pub const MAX_IDR: i64 = 1_000_000_000_000_000;

/// The group of `summary_businesses` a business belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BusinessKey {
    /// District code.
    pub district_code: String,
    /// Scale, `""` when unknown.
    pub scale: String,
    /// KBLI division (first two digits).
    pub kbli_division: i32,
    /// Manufacturing.
    pub is_ikm: bool,
    /// Year of establishment, 0 when unknown.
    pub established_year: i32,
    /// Trading status.
    pub status: String,
}

/// What one business contributes to the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessFacts {
    /// Its group.
    pub key: BusinessKey,
    /// Workers (0 when unknown).
    pub employees: i64,
    /// Annual sales (0 when unknown).
    pub revenue_idr: i64,
}

impl BusinessFacts {
    /// The facts of a business with these stored values.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        district_code: &str,
        scale: Option<&str>,
        kbli: &str,
        is_ikm: bool,
        established_on: Option<NaiveDate>,
        status: &str,
        employees: Option<i32>,
        revenue_idr: Option<i64>,
    ) -> BusinessFacts {
        BusinessFacts {
            key: BusinessKey {
                district_code: district_code.to_owned(),
                scale: scale.unwrap_or_default().to_owned(),
                kbli_division: kbli_division(kbli),
                is_ikm,
                established_year: established_on.map_or(0, |d| d.year()),
                status: status.to_owned(),
            },
            employees: employees.map_or(0, i64::from),
            revenue_idr: revenue_idr.unwrap_or(0),
        }
    }
}

/// The KBLI division of a code: its first two digits, as stored in `businesses.kbli_division`.
pub fn kbli_division(kbli: &str) -> i32 {
    kbli.get(..2).and_then(|d| d.parse().ok()).unwrap_or(0)
}

/// The group of `summary_applications` an application belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApplicationKey {
    /// Bank.
    pub bank_partner_id: i64,
    /// Programme.
    pub programme_id: i64,
    /// Status.
    pub status: String,
    /// Whether the owner consents to sharing their data with the application's bank.
    pub consented: bool,
}

/// What one application contributes to the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationFacts {
    /// Its group.
    pub key: ApplicationKey,
    /// Amount requested.
    pub requested_idr: i64,
    /// Amount approved (0 when none).
    pub approved_idr: i64,
}

impl ApplicationFacts {
    /// The facts of an application with these stored values, of a business that does or does not
    /// consent to sharing with banks.
    pub fn new(
        bank_partner_id: i64,
        programme_id: i64,
        status: &str,
        consented: bool,
        requested_idr: i64,
        approved_idr: Option<i64>,
    ) -> ApplicationFacts {
        ApplicationFacts {
            key: ApplicationKey { bank_partner_id, programme_id, status: status.to_owned(), consented },
            requested_idr,
            approved_idr: approved_idr.unwrap_or(0),
        }
    }
}

/// A figure of `summary_counts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    /// Products by category (scope 0, item the category).
    Products,
    /// Registrations by training and status (scope the training, and 0 for all trainings;
    /// item the status).
    Registrations,
    /// Trainings (scope 0).
    Trainings,
    /// Outlets (scope the partner).
    Outlets,
    /// Products with a passed curation (scope the partner, 0 any partner).
    CuratedPassed,
    /// IKM businesses with a product that passed a curation (scope the partner, 0 any).
    CuratedIkmBusinesses,
    /// Outlets stocking products (scope the partner, 0 any).
    StockingOutlets,
    /// Products listed in a partner's outlets (scope the partner).
    ProductsListed,
}

impl Figure {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::Products => "products",
            Figure::Registrations => "registrations",
            Figure::Trainings => "trainings",
            Figure::Outlets => "outlets",
            Figure::CuratedPassed => "curated_passed",
            Figure::CuratedIkmBusinesses => "curated_ikm_businesses",
            Figure::StockingOutlets => "outlets_stocking",
            Figure::ProductsListed => "products_listed",
        }
    }
}

/// Inserts `rows` (a `Vec` of value tuples) into `table`. A write's few rows go one by one:
/// diesel prepares a single-row INSERT once per connection, a multi-row one every time (its SQL
/// depends on the count). Many rows (an import, a seed batch) go 500 per statement.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let rows = $rows;
        if rows.len() <= 4 {
            rows.into_iter()
                .try_for_each(|row| diesel::insert_into($table).values(row).execute($conn).map(drop))
        } else {
            rows.chunks(500).try_for_each(|chunk| match &mut *$conn {
                DbConnection::Pg(c) => diesel::insert_into($table).values(chunk).execute(c).map(drop),
                DbConnection::Sqlite(c) => diesel::insert_into($table).values(chunk).execute(c).map(drop),
            })
        }
    }};
}

/// What a write changes in the summaries, added up by group; applied once, at the end of the
/// write's transaction.
#[derive(Debug, Default)]
#[must_use = "deltas change nothing until applied"]
pub struct Deltas {
    businesses: BTreeMap<BusinessKey, [i128; 3]>,
    applications: BTreeMap<ApplicationKey, [i128; 3]>,
    counts: BTreeMap<(Figure, i64, String), i64>,
    members: BTreeMap<(Member, i64, i64), (i64, bool)>,
}

impl Deltas {
    /// Nothing changed yet.
    pub fn new() -> Deltas {
        Deltas::default()
    }

    /// A business counted (`sign` 1) or no longer counted (`sign` -1) with `facts`.
    pub fn business(&mut self, facts: &BusinessFacts, sign: i64) -> &mut Self {
        let (sign, sums) = (i128::from(sign), self.businesses.entry(facts.key.clone()).or_default());
        sums[0] += sign;
        sums[1] += sign * i128::from(facts.employees);
        sums[2] += sign * i128::from(facts.revenue_idr);
        self
    }

    /// A business's values changed from `before` to `after`.
    pub fn business_changed(&mut self, before: &BusinessFacts, after: &BusinessFacts) -> &mut Self {
        if before != after {
            self.business(before, -1).business(after, 1);
        }
        self
    }

    /// An application counted (`sign` 1) or no longer counted (`sign` -1) with `facts`.
    pub fn application(&mut self, facts: &ApplicationFacts, sign: i64) -> &mut Self {
        let (sign, sums) = (i128::from(sign), self.applications.entry(facts.key.clone()).or_default());
        sums[0] += sign;
        sums[1] += sign * i128::from(facts.requested_idr);
        sums[2] += sign * i128::from(facts.approved_idr);
        self
    }

    /// `n` more (or fewer) of `figure` in `scope` for `item`. Registrations count for their
    /// training and for all trainings (scope 0).
    pub fn count(&mut self, figure: Figure, scope: i64, item: &str, n: i64) -> &mut Self {
        *self.counts.entry((figure, scope, item.to_owned())).or_default() += n;
        if figure == Figure::Registrations && scope != 0 {
            *self.counts.entry((figure, 0, item.to_owned())).or_default() += n;
        }
        self
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.businesses.values().all(|s| *s == [0; 3])
            && self.applications.values().all(|s| *s == [0; 3])
            && self.counts.values().all(|n| *n == 0)
            && self.members.values().all(|(n, _)| *n == 0)
    }

    /// Appends the changes to the delta tables (groups whose changes cancel out are left out)
    /// and forgets them. Call it inside the transaction of the write it describes.
    pub fn apply(&mut self, conn: &mut DbConnection) -> QueryResult<()> {
        use summary_applications_delta as sa;
        use summary_businesses_delta as sb;
        use summary_counts_delta as sc;
        // Members first: a count crossing zero adds to the distinct figures below.
        let changes = std::mem::take(&mut self.members);
        members::apply(conn, changes, self)?;
        let businesses: Vec<_> = std::mem::take(&mut self.businesses)
            .into_iter()
            .filter(|(_, s)| *s != [0; 3])
            .map(|(k, sums)| {
                let [n, employees, revenue] = fit(sums)?;
                Ok((
                    sb::district_code.eq(k.district_code),
                    sb::scale.eq(k.scale),
                    sb::kbli_division.eq(k.kbli_division),
                    sb::is_ikm.eq(k.is_ikm),
                    sb::established_year.eq(k.established_year),
                    sb::status.eq(k.status),
                    sb::n.eq(n),
                    sb::employees.eq(employees),
                    sb::revenue_idr.eq(revenue),
                ))
            })
            .collect::<QueryResult<_>>()?;
        let applications: Vec<_> = std::mem::take(&mut self.applications)
            .into_iter()
            .filter(|(_, s)| *s != [0; 3])
            .map(|(k, sums)| {
                let [n, requested, approved] = fit(sums)?;
                Ok((
                    sa::bank_partner_id.eq(k.bank_partner_id),
                    sa::programme_id.eq(k.programme_id),
                    sa::status.eq(k.status),
                    sa::consented.eq(k.consented),
                    sa::n.eq(n),
                    sa::requested_idr.eq(requested),
                    sa::approved_idr.eq(approved),
                ))
            })
            .collect::<QueryResult<_>>()?;
        let counts: Vec<_> = std::mem::take(&mut self.counts)
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|((figure, scope, item), n)| {
                (sc::figure.eq(figure.as_str()), sc::scope.eq(scope), sc::item.eq(item), sc::n.eq(n))
            })
            .collect();
        insert_rows!(conn, sb::table, businesses)?;
        insert_rows!(conn, sa::table, applications)?;
        insert_rows!(conn, sc::table, counts)
    }
}

/// Sums added up in 128 bits, as the 64 bits the summary stores; an error (the write fails and
/// changes nothing) when they do not fit.
fn fit(sums: [i128; 3]) -> QueryResult<[i64; 3]> {
    let mut out = [0; 3];
    for (o, s) in out.iter_mut().zip(sums) {
        *o = i64::try_from(s).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    }
    Ok(out)
}

/// The key columns of `summary_businesses`, in their order.
pub const BUSINESS_KEYS: [&str; 6] =
    ["district_code", "scale", "kbli_division", "is_ikm", "established_year", "status"];

/// What a key column holds in a rollup that does not group by it.
const NEUTRAL: [&str; 6] = ["''", "''", "0", "FALSE", "0", "''"];

/// The rollups of `summary_business_rollups`: every set of one to three key columns (41), each
/// named by its columns in [`BUSINESS_KEYS`] order, joined by commas. A dashboard's question
/// (its grouping and filters) involves few keys: it reads the rollup of those keys, tens to a
/// few thousand rows, instead of every group of the full summary.
pub fn rollups() -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    for mask in 1u32..64 {
        if mask.count_ones() <= 3 {
            all.push((0..6).filter(|i| mask & (1 << i) != 0).collect());
        }
    }
    all
}

/// The name of the rollup grouping by `columns` (key column names, any order, repeats
/// allowed); `None` when they are more than three (the full summary answers then). No columns at
/// all is answered by the smallest rollup, by status.
pub fn rollup_for(columns: &[&str]) -> Option<String> {
    let mut indexes: Vec<usize> =
        columns.iter().filter_map(|c| BUSINESS_KEYS.iter().position(|k| k == c)).collect();
    indexes.sort_unstable();
    indexes.dedup();
    if indexes.is_empty() {
        indexes.push(5);
    }
    (indexes.len() <= 3).then(|| rollup_name(&indexes))
}

fn rollup_name(indexes: &[usize]) -> String {
    indexes.iter().map(|i| BUSINESS_KEYS[*i]).collect::<Vec<_>>().join(",")
}

/// `SELECT rollup, keys…, n, employees, revenue_idr` of every rollup over the rows of `from`
/// (a table or CTE with the key and sum columns), as one `UNION ALL`.
pub(crate) fn rollup_selects(from: &str) -> String {
    rollups()
        .iter()
        .map(|r| {
            let keys: Vec<String> = (0..6)
                .map(|i| if r.contains(&i) { BUSINESS_KEYS[i].to_owned() } else { format!("{} AS {}", NEUTRAL[i], BUSINESS_KEYS[i]) })
                .collect();
            let group: Vec<&str> = r.iter().map(|i| BUSINESS_KEYS[*i]).collect();
            format!(
                "SELECT '{}' AS rollup, {}, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr \
                 FROM {from} GROUP BY {}",
                rollup_name(r),
                keys.join(", "),
                group.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The rows of rollup `name` with the deltas not folded yet, as an SQL table expression with
/// the columns of [`businesses_source`]. `name` comes from [`rollup_for`], never from a client.
pub fn rollup_source(name: &str) -> String {
    format!(
        "(SELECT district_code, scale, kbli_division, is_ikm, established_year, status, n, employees, revenue_idr \
         FROM summary_business_rollups WHERE rollup = '{name}' UNION ALL \
         SELECT district_code, scale, kbli_division, is_ikm, established_year, status, n, employees, revenue_idr \
         FROM summary_businesses_delta)"
    )
}

/// The rows that answer a question about the key columns `columns`: a rollup's when they are
/// few, else the full summary's (both with the deltas not folded yet).
pub fn businesses_for(columns: &[&str]) -> String {
    rollup_for(columns).map_or_else(|| businesses_source().to_owned(), |name| rollup_source(&name))
}

/// The rows of `summary_businesses` with the deltas not folded yet, as an SQL table expression
/// (`FROM {businesses_source()} s`); group and sum it.
pub fn businesses_source() -> &'static str {
    "(SELECT district_code, scale, kbli_division, is_ikm, established_year, status, n, employees, revenue_idr \
     FROM summary_businesses UNION ALL \
     SELECT district_code, scale, kbli_division, is_ikm, established_year, status, n, employees, revenue_idr \
     FROM summary_businesses_delta)"
}

/// The same for `summary_applications`.
pub fn applications_source() -> &'static str {
    "(SELECT bank_partner_id, programme_id, status, consented, n, requested_idr, approved_idr \
     FROM summary_applications UNION ALL \
     SELECT bank_partner_id, programme_id, status, consented, n, requested_idr, approved_idr \
     FROM summary_applications_delta)"
}

/// A figure of `summary_counts` as read: its deltas added.
#[derive(Debug, Clone, QueryableByName)]
pub struct Count {
    /// The figure's stored name.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub figure: String,
    /// Its scope.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub scope: i64,
    /// Its item.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub item: String,
    /// The count.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// The counts of `summary_counts` (deltas added, zeros left out) that `condition`, an SQL
/// condition on its columns written by the caller (never client text), selects; by figure,
/// scope and item.
pub fn counts(conn: &mut DbConnection, condition: &str) -> QueryResult<Vec<Count>> {
    diesel::sql_query(format!(
        "SELECT figure, scope, item, CAST(SUM(n) AS BIGINT) AS n FROM {} s WHERE {condition} \
         GROUP BY figure, scope, item HAVING SUM(n) <> 0 ORDER BY figure, scope, item",
        counts_source()
    ))
    .load(conn)
}

/// The rows of `summary_members` (no deltas: they change in place).
pub fn members_source() -> &'static str {
    "(SELECT figure, scope, member, n FROM summary_members)"
}

/// The same for `summary_counts`.
pub fn counts_source() -> &'static str {
    "(SELECT figure, scope, item, n FROM summary_counts UNION ALL \
     SELECT figure, scope, item, n FROM summary_counts_delta)"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(district: &str, employees: i32) -> BusinessFacts {
        BusinessFacts::new(district, Some("mikro"), "10792", true, None, "active", Some(employees), Some(5))
    }

    #[test]
    fn deltas_add_up_by_group_and_cancel_out() {
        let mut d = Deltas::new();
        d.business(&facts("35.24.05", 3), 1).business(&facts("35.24.05", 4), 1);
        let key = facts("35.24.05", 0).key;
        assert_eq!(d.businesses[&key], [2, 7, 10]);
        d.business_changed(&facts("35.24.05", 3), &facts("35.24.06", 3));
        assert_eq!(d.businesses[&key], [1, 4, 5]);
        assert_eq!(d.businesses[&facts("35.24.06", 0).key], [1, 3, 5]);
        let mut same = Deltas::new();
        same.business_changed(&facts("35.24.05", 3), &facts("35.24.05", 3));
        assert!(same.is_empty());
        same.count(Figure::Products, 0, "food", 1).count(Figure::Products, 0, "food", -1);
        assert!(same.is_empty());
    }

    #[test]
    fn every_question_of_up_to_three_keys_has_its_rollup() {
        assert_eq!(rollups().len(), 6 + 15 + 20);
        assert_eq!(rollup_for(&["scale", "district_code"]).as_deref(), Some("district_code,scale"));
        assert_eq!(
            rollup_for(&["status", "scale", "is_ikm", "scale"]).as_deref(),
            Some("scale,is_ikm,status")
        );
        assert_eq!(rollup_for(&[]).as_deref(), Some("status"));
        assert_eq!(rollup_for(&["district_code", "scale", "kbli_division", "status"]), None);
        let names: Vec<String> = rollups().iter().map(|r| rollup_name(r)).collect();
        assert!(names.iter().all(|n| rollup_for(&n.split(',').collect::<Vec<_>>()).as_ref() == Some(n)));
    }

    #[test]
    fn unknown_values_have_their_stand_ins() {
        let f = BusinessFacts::new("35.24.05", None, "47111", false, None, "closed", None, None);
        assert_eq!((f.key.scale.as_str(), f.key.established_year, f.key.kbli_division), ("", 0, 47));
        assert_eq!((f.employees, f.revenue_idr), (0, 0));
        let dated = NaiveDate::from_ymd_opt(2019, 3, 1);
        assert_eq!(
            BusinessFacts::new("x", None, "10", false, dated, "active", None, None).key.established_year,
            2019
        );
    }
}
