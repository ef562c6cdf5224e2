//! The business filters: the nine query parameters that select businesses, shared by the list,
//! its exports and the business statistics. Their names, types and documentation are written
//! once, in [`business_filter!`]; each query string that takes them is declared through it.

use diesel::prelude::*;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::db::Db;
use crate::db::schema::businesses;
use crate::db::text::{like_pattern, lower};
use crate::error::{AppError, AppResult};
use crate::http::list::Condition;

/// What a `kbli` filter may be: a 5-digit KBLI 2020 code or a 2-digit division
/// ([`BusinessFilter::validate`] checks the same; the OpenAPI document declares it).
pub const KBLI_FILTER_PATTERN: &str = "^([0-9]{2}|[0-9]{5})$";

/// Declares a struct holding the business filters, which are written only here.
///
/// ```text
/// business_filter! {
///     #[derive(Debug, Deserialize, IntoParams)]
///     pub struct SomeQuery {
///         /// A parameter before the filters.
///         pub group_by: String,
///         ..BusinessFilter,
///         /// A parameter after them.
///         pub sort: Option<String>,
///     }
/// }
/// ```
/// expands to the struct with the nine filter fields, documentation included, in place of
/// `..BusinessFilter` (so the OpenAPI parameters keep that order), and `SomeQuery::filter()`.
///
/// Why not `#[serde(flatten)]` of a [`BusinessFilter`]: serde does not support `flatten` with
/// `deny_unknown_fields` (an unknown parameter must stay a 400), and a flattened struct is
/// buffered as strings by `serde_urlencoded`, so `is_ikm=true` would no longer parse as a bool.
macro_rules! business_filter {
    (@struct [$($meta:tt)*] $name:ident [$($before:tt)*] [$($after:tt)*]) => {
        $($meta)*
        pub struct $name {
            $($before)*
            /// District code (`35.24.05`).
            pub district: Option<String>,
            /// Village code (`35.24.05.2001`). Counts and statistics with it scan the
            /// businesses of the village (on their index).
            pub village: Option<String>,
            /// PP 7/2021 scale, or `unknown`.
            pub scale: Option<crate::businesses::ScaleFilter>,
            /// Manufacturing businesses only (`true`) or none of them (`false`).
            pub is_ikm: Option<bool>,
            /// Trading status.
            pub status: Option<crate::businesses::BusinessStatus>,
            /// A 5-digit KBLI code, or a 2-digit division (`10` for food manufacturing). Counts
            /// and statistics come from the summary tables for a division; a 5-digit code makes
            /// them scan the businesses.
            pub kbli: Option<String>,
            /// Case-insensitive part of the name. Counts and statistics with it scan the
            /// businesses (the summary tables do not know names).
            pub q: Option<String>,
            /// Started on or after this date. Counts and statistics come from the summary tables
            /// when it is a 1 January, and scan the businesses otherwise.
            pub established_from: Option<chrono::NaiveDate>,
            /// Started on or before this date. Counts and statistics come from the summary tables
            /// when it is a 31 December, and scan the businesses otherwise.
            pub established_to: Option<chrono::NaiveDate>,
            /// Changed at or after this time. Counts and statistics with it scan the businesses.
            pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
            $($after)*
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$before_meta:meta])* pub $before:ident : $before_ty:ty, )*
            ..BusinessFilter,
            $( $(#[$after_meta:meta])* pub $after:ident : $after_ty:ty, )*
        }
    ) => {
        $crate::businesses::business_filter!(@struct [$(#[$meta])*] $name
            [$( $(#[$before_meta])* pub $before: $before_ty, )*]
            [$( $(#[$after_meta])* pub $after: $after_ty, )*]);

        impl $name {
            /// The business filters of this query.
            pub fn filter(&self) -> crate::businesses::BusinessFilter {
                crate::businesses::BusinessFilter {
                    district: self.district.clone(),
                    village: self.village.clone(),
                    scale: self.scale,
                    is_ikm: self.is_ikm,
                    status: self.status,
                    kbli: self.kbli.clone(),
                    q: self.q.clone(),
                    established_from: self.established_from,
                    established_to: self.established_to,
                    updated_since: self.updated_since,
                }
            }
        }
    };
}
pub(crate) use business_filter;

business_filter!(@struct [
    /// Filters of the business list, the exports and the business statistics.
    #[derive(Debug, Clone, Default)]
] BusinessFilter [] []);

/// Filters as a `WHERE` clause on the summary of businesses: the SQL, with `$n` placeholders
/// for the values (numbered after `first_placeholder - 1` others the caller binds first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummarySlice {
    terms: Vec<&'static str>,
    /// The summary's key columns the terms compare.
    pub columns: Vec<&'static str>,
    /// The values, in placeholder order.
    pub values: Vec<SliceValue>,
}

/// A value compared in a [`SummarySlice`].
#[derive(Debug, Clone, PartialEq)]
pub enum SliceValue {
    /// A text column.
    Text(String),
    /// An integer column.
    Int(i32),
    /// A boolean column.
    Bool(bool),
}

impl SummarySlice {
    fn push(&mut self, term: &'static str, value: SliceValue) {
        self.terms.push(term);
        self.columns.extend(crate::summary::BUSINESS_KEYS.iter().filter(|k| term.contains(*k)));
        self.values.push(value);
    }

    /// `WHERE …` (or nothing), the values' placeholders numbered from `first`.
    pub fn where_clause(&self, first: usize) -> String {
        if self.terms.is_empty() {
            return String::new();
        }
        let terms: Vec<String> =
            self.terms.iter().enumerate().map(|(i, term)| format!("{term}${}", first + i)).collect();
        format!(" WHERE {}", terms.join(" AND "))
    }

    /// Binds the values to `query`, in order.
    pub fn bind<'a>(
        &self,
        mut query: diesel::query_builder::BoxedSqlQuery<'a, Db, diesel::query_builder::SqlQuery>,
    ) -> diesel::query_builder::BoxedSqlQuery<'a, Db, diesel::query_builder::SqlQuery> {
        use diesel::sql_types::{Bool, Integer, Text};
        for value in &self.values {
            query = match value.clone() {
                SliceValue::Text(v) => query.bind::<Text, _>(v),
                SliceValue::Int(v) => query.bind::<Integer, _>(v),
                SliceValue::Bool(v) => query.bind::<Bool, _>(v),
            };
        }
        query
    }
}

/// A `scale` filter value: a scale, or `unknown` for businesses without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScaleFilter {
    /// Mikro.
    Mikro,
    /// Kecil.
    Kecil,
    /// Menengah.
    Menengah,
    /// Besar.
    Besar,
    /// Neither revenue nor capital known.
    Unknown,
}

impl ScaleFilter {
    /// The stored scale this value selects (`unknown` selects none).
    fn name(self) -> &'static str {
        match self {
            ScaleFilter::Mikro => "mikro",
            ScaleFilter::Kecil => "kecil",
            ScaleFilter::Menengah => "menengah",
            ScaleFilter::Besar => "besar",
            ScaleFilter::Unknown => "",
        }
    }
}

impl BusinessFilter {
    /// Checks values that the query's types alone cannot.
    pub fn validate(&self) -> AppResult<()> {
        if let Some(kbli) = &self.kbli
            && !(matches!(kbli.len(), 2 | 5) && kbli.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(AppError::BadRequest("kbli must be a 5-digit code or a 2-digit division".into()));
        }
        if self.village.as_deref().is_some_and(|v| !crate::regions::villages::is_code(v.trim())) {
            return Err(AppError::BadRequest("village must be a village code like 35.24.05.2001".into()));
        }
        crate::http::list::check_filters(self.q.as_deref(), self.district.as_deref())
    }

    /// The filters as a condition on the statistics' summary of businesses
    /// (`crate::summary::businesses_source`), when every filter given is one of its keys:
    /// district, scale, `is_ikm`, status, a KBLI division, and dates that are whole years
    /// (`established_from` a 1 January, `established_to` a 31 December). `None` when a filter
    /// needs the businesses themselves (`q`, a 5-digit KBLI code, `updated_since`, other dates):
    /// the caller scans them instead.
    pub fn summary_slice(&self) -> Option<SummarySlice> {
        use chrono::Datelike;
        let mut slice = SummarySlice::default();
        if let Some(district) = &self.district {
            slice.push("district_code = ", SliceValue::Text(district.clone()));
        }
        match self.scale {
            None => {}
            Some(ScaleFilter::Unknown) => slice.push("scale = ", SliceValue::Text(String::new())),
            Some(s) => slice.push("scale = ", SliceValue::Text(s.name().to_owned())),
        }
        if let Some(ikm) = self.is_ikm {
            slice.push("is_ikm = ", SliceValue::Bool(ikm));
        }
        if let Some(status) = self.status {
            slice.push("status = ", SliceValue::Text(status.as_str().to_owned()));
        }
        match self.kbli.as_deref() {
            None => {}
            Some(division) if division.len() == 2 => {
                slice.push("kbli_division = ", SliceValue::Int(division.parse().unwrap_or(-1)));
            }
            Some(_) => return None,
        }
        if self.q.as_deref().is_some_and(|q| !q.trim().is_empty())
            || self.updated_since.is_some()
            || self.village.is_some()
        {
            return None;
        }
        // Unknown years are stored as 0: a bound on the date excludes them, as it excludes NULL.
        if let Some(from) = self.established_from {
            if (from.month(), from.day()) != (1, 1) {
                return None;
            }
            slice.push("established_year <> 0 AND established_year >= ", SliceValue::Int(from.year()));
        }
        if let Some(to) = self.established_to {
            if (to.month(), to.day()) != (12, 31) {
                return None;
            }
            slice.push("established_year <> 0 AND established_year <= ", SliceValue::Int(to.year()));
        }
        Some(slice)
    }

    /// How many businesses the filters select: added up from the statistics' summary when the
    /// filters are among its keys, else counted.
    pub fn count(&self, conn: &mut crate::db::DbConnection) -> QueryResult<i64> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        match self.summary_slice() {
            Some(slice) => {
                let sql = format!(
                    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM {} s{}",
                    crate::summary::businesses_for(&slice.columns),
                    slice.where_clause(1)
                );
                slice.bind(diesel::sql_query(sql).into_boxed()).get_result::<N>(conn).map(|r| r.n)
            }
            None => self.query().count().get_result(conn),
        }
    }

    /// Whether the page is an index range in id order for any values, so that one generic
    /// plan serves them all (`crate::db::Pool::generic_plans`): no filter, or district with
    /// status (the office's list of one district, on `businesses_district_status`). A single
    /// equality is not: with its value unknown, the generic plan reads the primary key and
    /// filters (a district with no businesses would read the whole table); searches, ranges
    /// and other pairs neither. `plans::index_exact_pages_plan_as_index_ranges` (tests/api)
    /// explains every shape of one and two filters on PostgreSQL and holds this list to it.
    pub fn index_exact(&self) -> bool {
        let BusinessFilter {
            district,
            village,
            scale,
            is_ikm,
            status,
            kbli,
            q,
            established_from,
            established_to,
            updated_since,
        } = self;
        let others = village.is_some()
            || scale.is_some()
            || is_ikm.is_some()
            || kbli.is_some()
            || q.is_some()
            || established_from.is_some()
            || established_to.is_some()
            || updated_since.is_some();
        !others && district.is_some() == status.is_some()
    }

    /// The filtered query.
    pub fn query(&self) -> businesses::BoxedQuery<'static, Db> {
        businesses::table.filter(self.condition()).into_boxed()
    }

    /// The filters as one condition (for queries that group rather than page).
    pub fn condition(&self) -> Condition<businesses::table> {
        use businesses::dsl as b;
        let mut all: Vec<Condition<businesses::table>> = Vec::new();
        if let Some(district) = &self.district {
            all.push(Box::new(b::district_code.eq(district.clone())));
        }
        if let Some(village) = &self.village {
            all.push(Box::new(b::village_code.assume_not_null().eq(village.trim().to_owned())));
        }
        match self.scale {
            None => {}
            Some(ScaleFilter::Unknown) => all.push(Box::new(b::scale.is_null())),
            Some(s) => all.push(Box::new(b::scale.assume_not_null().eq(s.name()))),
        }
        if let Some(ikm) = self.is_ikm {
            all.push(Box::new(b::is_ikm.eq(ikm)));
        }
        if let Some(status) = self.status {
            all.push(Box::new(b::status.eq(status.as_str())));
        }
        if let Some(kbli) = &self.kbli {
            all.push(match kbli.len() {
                2 => Box::new(b::kbli_division.eq(kbli.parse::<i32>().unwrap_or(-1))),
                _ => Box::new(b::kbli.eq(kbli.clone())),
            });
        }
        if let Some(text) = self.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            all.push(Box::new(lower(b::name).like(like_pattern(text)).escape('\\')));
        }
        if let Some(from) = self.established_from {
            all.push(Box::new(b::established_on.assume_not_null().ge(from)));
        }
        if let Some(to) = self.established_to {
            all.push(Box::new(b::established_on.assume_not_null().le(to)));
        }
        if let Some(since) = self.updated_since {
            all.push(Box::new(b::updated_at.ge(since.naive_utc())));
        }
        all.into_iter()
            .reduce(|a, b| Box::new(a.and(b)))
            // A bound `true` rather than an SQL literal: diesel prepares a statement once per
            // connection only when it holds no literal SQL, and the unfiltered list is a hot one.
            .unwrap_or_else(|| Box::new(true.into_sql::<diesel::sql_types::Bool>()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The filter values of the query string that names every filter, for the parsing tests of
    /// each query that takes them.
    pub(crate) const EVERY_FILTER: &str = "district=35.24.05&scale=mikro&is_ikm=true&status=inactive&kbli=10\
    &q=ikan&established_from=2010-01-02&established_to=2020-12-31&updated_since=2024-05-06T07:08:09Z";

    /// Asserts that `filter` holds the values of [`EVERY_FILTER`].
    pub(crate) fn assert_every_filter(filter: &BusinessFilter) {
        use chrono::{DateTime, NaiveDate, Utc};
        assert_eq!(filter.district.as_deref(), Some("35.24.05"));
        assert_eq!(filter.scale, Some(ScaleFilter::Mikro));
        assert_eq!(filter.is_ikm, Some(true));
        assert_eq!(filter.status, Some(crate::businesses::BusinessStatus::Inactive));
        assert_eq!(filter.kbli.as_deref(), Some("10"));
        assert_eq!(filter.q.as_deref(), Some("ikan"));
        assert_eq!(filter.established_from, NaiveDate::from_ymd_opt(2010, 1, 2));
        assert_eq!(filter.established_to, NaiveDate::from_ymd_opt(2020, 12, 31));
        let since: DateTime<Utc> = "2024-05-06T07:08:09Z".parse().unwrap();
        assert_eq!(filter.updated_since, Some(since));
    }

    #[test]
    fn filter_values_are_checked() {
        let ok = BusinessFilter {
            kbli: Some("10750".into()),
            district: Some("35.24.05".into()),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        for bad in [
            BusinessFilter { kbli: Some("107".into()), ..Default::default() },
            BusinessFilter { district: Some("35-24".into()), ..Default::default() },
            BusinessFilter { q: Some("x".repeat(201)), ..Default::default() },
        ] {
            assert!(matches!(bad.validate(), Err(AppError::BadRequest(_))), "{bad:?}");
        }
    }
}
