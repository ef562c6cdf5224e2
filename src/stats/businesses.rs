//! Business figures: count, workers and annual sales grouped by one or two keys, over the
//! businesses that the list's filters select.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::businesses::{BusinessFilter, SummarySlice};
use crate::db::schema::regions;
use crate::db::{self, Backend, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

use super::answer;

/// A grouping key of the business statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessKey {
    /// `district`: the district code, with its name.
    District,
    /// `scale`: PP 7/2021 scale (`null` when unknown).
    Scale,
    /// `kbli_division`: the two-digit KBLI division.
    KbliDivision,
    /// `is_ikm`: manufacturing or not.
    IsIkm,
    /// `established_year`: the year the business started (`null` when unknown).
    EstablishedYear,
    /// `status`: trading status.
    Status,
}

impl BusinessKey {
    const ALL: [(&'static str, BusinessKey); 6] = [
        ("district", BusinessKey::District),
        ("scale", BusinessKey::Scale),
        ("kbli_division", BusinessKey::KbliDivision),
        ("is_ikm", BusinessKey::IsIkm),
        ("established_year", BusinessKey::EstablishedYear),
        ("status", BusinessKey::Status),
    ];

    /// The shape of `group_by`, as declared in the OpenAPI document.
    pub fn pattern() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
        let key = format!("({})", names.join("|"));
        format!("^{key}(,{key})?$")
    }

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("", |(n, _)| n)
    }

    /// The key as text, in SQL: a fixed expression per key (never client text).
    fn sql(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (BusinessKey::District, _) => "businesses.district_code",
            (BusinessKey::Scale, _) => "businesses.scale",
            (BusinessKey::KbliDivision, _) => "CAST(businesses.kbli_division AS TEXT)",
            (BusinessKey::IsIkm, Backend::Postgres) => {
                "CASE WHEN businesses.is_ikm THEN 'true' ELSE 'false' END"
            }
            (BusinessKey::IsIkm, Backend::Sqlite) => {
                "CASE WHEN businesses.is_ikm = 1 THEN 'true' ELSE 'false' END"
            }
            (BusinessKey::EstablishedYear, Backend::Postgres) => {
                "CAST(CAST(EXTRACT(YEAR FROM businesses.established_on) AS INTEGER) AS TEXT)"
            }
            (BusinessKey::EstablishedYear, Backend::Sqlite) => "strftime('%Y', businesses.established_on)",
            (BusinessKey::Status, _) => "businesses.status",
        }
    }

    /// The summary's key column of this key.
    fn column(self) -> &'static str {
        match self {
            BusinessKey::District => "district_code",
            BusinessKey::Scale => "scale",
            BusinessKey::KbliDivision => "kbli_division",
            BusinessKey::IsIkm => "is_ikm",
            BusinessKey::EstablishedYear => "established_year",
            BusinessKey::Status => "status",
        }
    }

    /// The key as text over the statistics' summary (the same text as [`BusinessKey::sql`]).
    fn summary_sql(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (BusinessKey::District, _) => "district_code",
            (BusinessKey::Scale, _) => "NULLIF(scale, '')",
            (BusinessKey::KbliDivision, _) => "CAST(kbli_division AS TEXT)",
            (BusinessKey::IsIkm, Backend::Postgres) => "CASE WHEN is_ikm THEN 'true' ELSE 'false' END",
            (BusinessKey::IsIkm, Backend::Sqlite) => "CASE WHEN is_ikm = 1 THEN 'true' ELSE 'false' END",
            (BusinessKey::EstablishedYear, _) => "CAST(NULLIF(established_year, 0) AS TEXT)",
            (BusinessKey::Status, _) => "status",
        }
    }

    /// The key's value as JSON of its proper type.
    fn value(self, text: Option<String>) -> Value {
        match (self, text) {
            (_, None) => Value::Null,
            (BusinessKey::KbliDivision | BusinessKey::EstablishedYear, Some(t)) => {
                t.parse::<i64>().map_or(Value::Null, Value::from)
            }
            (BusinessKey::IsIkm, Some(t)) => Value::Bool(t == "true"),
            (_, Some(t)) => Value::String(t),
        }
    }

    /// Parses `group_by`: one or two keys, comma-separated (a key named twice is grouped once).
    pub fn parse_list(raw: &str) -> AppResult<Vec<BusinessKey>> {
        let keys = raw
            .split(',')
            .map(|name| {
                Self::ALL.iter().find(|(n, _)| *n == name.trim()).map(|(_, k)| *k).ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "cannot group by {name:?}; group by one or two of district, scale, kbli_division, is_ikm, established_year, status"
                    ))
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        match keys.as_slice() {
            [_] => Ok(keys),
            [a, b] if a == b => Ok(vec![*a]),
            [_, _] => Ok(keys),
            _ => Err(AppError::BadRequest("group_by takes one or two keys".into())),
        }
    }
}

/// Grouped business figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BusinessStats {
    /// The keys grouped by, in order.
    #[schema(example = json!(["scale"]))]
    pub group_by: Vec<String>,
    /// One row per group, ordered by the keys (as text), unknown values last.
    pub rows: Vec<BusinessGroup>,
}

/// One group: its key values (named as in `group_by`; `district` rows also carry
/// `district_name`), the number of businesses, and the sums of workers and annual sales.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BusinessGroup {
    /// The key values and, for districts, `district_name`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub keys: serde_json::Map<String, Value>,
    /// Businesses.
    pub count: i64,
    /// Sum of workers (unknown counts as 0).
    pub employees: i64,
    /// Sum of annual sales, rupiah (unknown counts as 0).
    pub revenue_idr: i64,
}

type GroupRow = (Option<String>, Option<String>, i64, i64, i64);

/// Groups `keys` over the statistics' summary, deltas included, within `slice`: the same rows
/// as the scan of the businesses, from a few thousand summary rows.
fn from_summary(
    conn: &mut DbConnection,
    slice: &SummarySlice,
    keys: (BusinessKey, Option<BusinessKey>),
) -> QueryResult<Vec<GroupRow>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        k1: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        k2: Option<String>,
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = BigInt)]
        employees: i64,
        #[diesel(sql_type = BigInt)]
        revenue_idr: i64,
    }
    let backend = db::backend(conn);
    // The rollup of the keys grouped and filtered on, when they are few.
    let mut columns = slice.columns.clone();
    columns.extend([Some(keys.0), keys.1].into_iter().flatten().map(BusinessKey::column));
    let k1 = keys.0.summary_sql(backend);
    let k2 = keys.1.map_or(k1, |k| k.summary_sql(backend));
    let sql = format!(
        "SELECT {k1} AS k1, {k2} AS k2, CAST(SUM(n) AS BIGINT) AS n, \
         CAST(SUM(employees) AS BIGINT) AS employees, CAST(SUM(revenue_idr) AS BIGINT) AS revenue_idr \
         FROM {source} s{filter} GROUP BY {k1}, {k2} HAVING SUM(n) <> 0 \
         ORDER BY ({k1}) IS NULL, {k1}, ({k2}) IS NULL, {k2}",
        source = crate::summary::businesses_for(&columns),
        filter = slice.where_clause(1),
    );
    let rows: Vec<Row> = slice.bind(diesel::sql_query(sql).into_boxed()).load(conn)?;
    Ok(rows.into_iter().map(|r| (r.k1, r.k2, r.n, r.employees, r.revenue_idr)).collect())
}

/// Groups the businesses that `filter` selects by `keys`, in the database: from the
/// statistics' summary when the filters are among its keys, else by scanning the businesses.
pub fn business_stats(
    conn: &mut DbConnection,
    filter: &BusinessFilter,
    keys: &[BusinessKey],
) -> AppResult<BusinessStats> {
    let backend = db::backend(conn);
    let first = keys.first().copied().ok_or_else(|| AppError::BadRequest("group_by is required".into()))?;
    let second = keys.get(1).copied();
    let rows = match filter.summary_slice() {
        Some(slice) => from_summary(conn, &slice, (first, second))?,
        None => scan(conn, filter, (first, second), backend)?,
    };
    named_rows(conn, keys, rows)
}

/// Groups by scanning the businesses that `filter` selects.
fn scan(
    conn: &mut DbConnection,
    filter: &BusinessFilter,
    (first, second): (BusinessKey, Option<BusinessKey>),
    backend: Backend,
) -> QueryResult<Vec<GroupRow>> {
    use diesel::dsl::sql;
    let k1 = first.sql(backend);
    // PostgreSQL refuses a constant in GROUP BY: one key is grouped by twice (and read once).
    let k2 = second.map_or(k1, |k| k.sql(backend));
    crate::db::schema::businesses::table
        .filter(filter.condition())
        .group_by((sql::<Nullable<Text>>(k1), sql::<Nullable<Text>>(k2)))
        .select((
            sql::<Nullable<Text>>(k1),
            sql::<Nullable<Text>>(k2),
            sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"),
            sql::<BigInt>("CAST(COALESCE(SUM(businesses.employees), 0) AS BIGINT)"),
            sql::<BigInt>("CAST(COALESCE(SUM(businesses.annual_revenue_idr), 0) AS BIGINT)"),
        ))
        // Unknown values last, on both back ends (their NULL orderings differ).
        .order_by((
            sql::<diesel::sql_types::Bool>(&format!("({k1}) IS NULL")),
            sql::<Nullable<Text>>(k1),
            sql::<diesel::sql_types::Bool>(&format!("({k2}) IS NULL")),
            sql::<Nullable<Text>>(k2),
        ))
        .load(conn)
}

/// The rows of the answer: each group's keys as JSON, with district names.
fn named_rows(
    conn: &mut DbConnection,
    keys: &[BusinessKey],
    rows: Vec<GroupRow>,
) -> AppResult<BusinessStats> {
    let (first, second) = (keys[0], keys.get(1).copied());
    let names: HashMap<String, String> = if keys.contains(&BusinessKey::District) {
        // The names of the codes in the rows only: the tree holds 90,000 regions.
        let codes: Vec<&String> = rows.iter().flat_map(|r| [r.0.as_ref(), r.1.as_ref()]).flatten().collect();
        regions::table
            .filter(regions::code.eq_any(codes))
            .select((regions::code, regions::name))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };
    let rows = rows
        .into_iter()
        .map(|(v1, v2, count, employees, revenue_idr)| {
            let mut map = serde_json::Map::new();
            for (key, value) in [(Some(first), v1), (second, v2)] {
                let Some(key) = key else { continue };
                let name = (key == BusinessKey::District)
                    .then(|| value.as_ref().and_then(|c| names.get(c)).cloned());
                map.insert(key.name().into(), key.value(value));
                if let Some(name) = name {
                    map.insert("district_name".into(), name.map_or(Value::Null, Value::String));
                }
            }
            BusinessGroup { keys: map, count, employees, revenue_idr }
        })
        .collect();
    Ok(BusinessStats { group_by: keys.iter().map(|k| k.name().to_owned()).collect(), rows })
}

crate::businesses::business_filter! {
    /// Filters and grouping of the business statistics (the filters are the business list's).
    #[derive(Debug, Deserialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    pub struct BusinessStatsQuery {
        /// One or two of `district`, `scale`, `kbli_division`, `is_ikm`, `established_year`,
        /// `status`, comma-separated.
        pub group_by: String,
        ..BusinessFilter,
    }
}

/// Business figures grouped by one or two keys: count, workers and annual sales per group,
/// computed by the database. Accepts the business list's filters. Bank and retail users get
/// 404: a name search narrows a group to one business, and neither sees the register's sales.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(BusinessStatsQuery),
    responses((status = 200, description = "One row per group, or CSV",
        content((BusinessStats = "application/json"), (String = "text/csv", example = json!("scale,count,employees,revenue_idr\nkecil,8,96,36162868000\nmikro,529,1327,159733176000\n")), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/stats/businesses")]
pub async fn business_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<BusinessStatsQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(&[Role::Bank, Role::Retail])?;
    let keys = BusinessKey::parse_list(&query.group_by)?;
    let filter = query.filter();
    filter.validate()?;
    answer(&req, &state, Some("rows"), move |conn| business_stats(conn, &filter, &keys)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::businesses::{EVERY_FILTER, assert_every_filter};

    #[test]
    fn the_statistics_query_takes_every_filter_and_refuses_unknown_parameters() {
        let raw = format!("group_by=district,is_ikm&{}", EVERY_FILTER);
        let query = web::Query::<BusinessStatsQuery>::from_query(&raw).unwrap().into_inner();
        assert_eq!(query.group_by, "district,is_ikm");
        assert_every_filter(&query.filter());

        let err = web::Query::<BusinessStatsQuery>::from_query(&format!("{raw}&limit=5")).unwrap_err();
        assert!(err.to_string().contains("unknown field `limit`"), "{err}");
        assert!(web::Query::<BusinessStatsQuery>::from_query("group_by=scale&is_ikm=1x").is_err());
        assert!(web::Query::<BusinessStatsQuery>::from_query("scale=mikro").is_err(), "group_by is required");
    }

    #[test]
    fn group_by_takes_one_or_two_keys_as_its_pattern_says() {
        assert_eq!(
            BusinessKey::parse_list("district, scale").unwrap(),
            [BusinessKey::District, BusinessKey::Scale]
        );
        assert_eq!(BusinessKey::parse_list("scale,scale").unwrap(), [BusinessKey::Scale]);
        let pattern = regex_lite::Regex::new(&BusinessKey::pattern()).unwrap();
        for good in ["district", "scale,scale", "kbli_division,established_year"] {
            assert!(pattern.is_match(good) && BusinessKey::parse_list(good).is_ok(), "{good}");
        }
        for bad in ["", "colour", "scale,", "scale,status,is_ikm"] {
            assert!(!pattern.is_match(bad) && BusinessKey::parse_list(bad).is_err(), "{bad}");
        }
    }
}
