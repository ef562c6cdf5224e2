//! Statistics: aggregates computed in the database, for the dashboards.

use std::collections::HashMap;
use utoipa_actix_web::service_config::ServiceConfig;

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::businesses::{BusinessFilter, BusinessStatus, ScaleFilter};
use crate::db::schema::{regions, registrations, trainings};
use crate::db::{self, Backend, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::export::Format;
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(overview_statistics)
        .service(business_statistics)
        .service(product_statistics)
        .service(retail_statistics)
        .service(financing_statistics)
        .service(training_statistics);
}

/// Training figures: the article's "234 registrants, 100 selected".
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct TrainingStats {
    /// Trainings.
    pub trainings: i64,
    /// Registrations, all statuses.
    pub registrants: i64,
    /// Registrations given a seat (`selected`, or `attended` since).
    pub selected: i64,
    /// Registrations that attended.
    pub attended: i64,
    /// The same figures per training, by id.
    pub by_training: Vec<TrainingRow>,
}

/// One training's figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrainingRow {
    /// The training.
    pub training_id: i64,
    /// Its title.
    pub title: String,
    /// Its seats.
    pub capacity: i32,
    /// Registrations.
    pub registrants: i64,
    /// Selected or attended.
    pub selected: i64,
    /// Waitlisted.
    pub waitlisted: i64,
    /// Attended.
    pub attended: i64,
}

/// Computes the training figures with one grouped query.
pub fn training_stats(conn: &mut DbConnection) -> QueryResult<TrainingStats> {
    let all: Vec<(i64, String, i32)> = trainings::table
        .order(trainings::id)
        .select((trainings::id, trainings::title, trainings::capacity))
        .load(conn)?;
    let counts: Vec<(i64, String, i64)> = registrations::table
        .group_by((registrations::training_id, registrations::status))
        .select((registrations::training_id, registrations::status, diesel::dsl::count_star()))
        .load(conn)?;
    let mut stats = TrainingStats { trainings: i64::try_from(all.len()).unwrap_or(0), ..Default::default() };
    for (id, title, capacity) in all {
        let mut row = TrainingRow {
            training_id: id,
            title,
            capacity,
            registrants: 0,
            selected: 0,
            waitlisted: 0,
            attended: 0,
        };
        for (_, status, n) in counts.iter().filter(|(t, _, _)| *t == id) {
            row.registrants += n;
            match status.as_str() {
                "selected" => row.selected += n,
                "attended" => {
                    row.selected += n;
                    row.attended += n;
                }
                "waitlisted" => row.waitlisted += n,
                _ => {}
            }
        }
        stats.registrants += row.registrants;
        stats.selected += row.selected;
        stats.attended += row.attended;
        stats.by_training.push(row);
    }
    Ok(stats)
}

/// Training figures: trainings, registrants, selected and attended, in total and per training.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "Training figures, or CSV per training", content((TrainingStats = "application/json"), (String = "text/csv")))),
)]
#[get("/stats/trainings")]
pub async fn training_statistics(
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<web::Json<TrainingStats>> {
    if matches!(caller.role, Role::Bank | Role::Retail) {
        return Err(AppError::NotFound);
    }
    let stats = db::run(&state.pool, |conn| Ok(training_stats(conn)?)).await?;
    Ok(web::Json(stats))
}

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

    /// Parses `group_by`: one or two keys, comma-separated.
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
            [a, b] if a != b => Ok(keys),
            _ => Err(AppError::BadRequest("group_by takes one or two different keys".into())),
        }
    }
}

/// Grouped business figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BusinessStats {
    /// The keys grouped by, in order.
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

/// Groups the businesses that `filter` selects by `keys`, in the database.
pub fn business_stats(
    conn: &mut DbConnection,
    filter: &BusinessFilter,
    keys: &[BusinessKey],
) -> AppResult<BusinessStats> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Nullable, Text};
    let backend = db::backend(conn);
    let first = keys.first().copied().ok_or_else(|| AppError::BadRequest("group_by is required".into()))?;
    let second = keys.get(1).copied();
    let k1 = first.sql(backend);
    // PostgreSQL refuses a constant in GROUP BY: one key is grouped by twice (and read once).
    let k2 = second.map_or(k1, |k| k.sql(backend));
    let rows: Vec<GroupRow> = crate::db::schema::businesses::table
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
        .load(conn)?;
    let names: HashMap<String, String> = if keys.contains(&BusinessKey::District) {
        regions::table
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

/// Answers JSON, or with `Accept: text/csv` a table: the `rows` array when there is one, else
/// every figure as a `metric,value` line (`businesses.by_scale.mikro,12`).
fn respond(req: &HttpRequest, body: &impl Serialize, rows: Option<&str>) -> AppResult<HttpResponse> {
    if Format::of(req) != Format::Csv {
        return Ok(HttpResponse::Ok().json(body));
    }
    let value = serde_json::to_value(body).map_err(AppError::internal)?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match rows.and_then(|field| value.get(field)).and_then(Value::as_array) {
        Some(rows) => {
            let headers: Vec<String> = rows
                .first()
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            writer.write_record(&headers).map_err(AppError::internal)?;
            for row in rows {
                writer.write_record(headers.iter().map(|h| cell(&row[h]))).map_err(AppError::internal)?;
            }
        }
        None => {
            fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
                match v {
                    Value::Object(map) => {
                        for (k, v) in map {
                            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                            flatten(&path, v, out);
                        }
                    }
                    other => out.push((prefix.to_owned(), other.clone())),
                }
            }
            let mut figures = Vec::new();
            flatten("", &value, &mut figures);
            writer.write_record(["metric", "value"]).map_err(AppError::internal)?;
            for (metric, v) in figures {
                writer.write_record([metric, cell(&v)]).map_err(AppError::internal)?;
            }
        }
    }
    let bytes = writer.into_inner().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(bytes))
}

/// Filters and grouping of the business statistics (the filters are the business list's).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BusinessStatsQuery {
    /// One or two of `district`, `scale`, `kbli_division`, `is_ikm`, `established_year`,
    /// `status`, comma-separated.
    pub group_by: String,
    /// District code.
    pub district: Option<String>,
    /// PP 7/2021 scale, or `unknown`.
    pub scale: Option<ScaleFilter>,
    /// Manufacturing or not.
    pub is_ikm: Option<bool>,
    /// Trading status.
    pub status: Option<BusinessStatus>,
    /// A 5-digit KBLI code, or a 2-digit division.
    pub kbli: Option<String>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// Started on or after.
    pub established_from: Option<NaiveDate>,
    /// Started on or before.
    pub established_to: Option<NaiveDate>,
    /// Changed at or after.
    pub updated_since: Option<DateTime<Utc>>,
}

/// Business figures grouped by one or two keys: count, workers and annual sales per group,
/// computed by the database. Accepts the business list's filters. Bank users get 404.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(BusinessStatsQuery),
    responses((status = 200, description = "One row per group, or CSV",
        content((BusinessStats = "application/json"), (String = "text/csv")))),
)]
#[get("/stats/businesses")]
pub async fn business_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<BusinessStatsQuery>,
) -> AppResult<HttpResponse> {
    if caller.role == Role::Bank {
        return Err(AppError::NotFound);
    }
    let q = query.into_inner();
    let keys = BusinessKey::parse_list(&q.group_by)?;
    let filter = BusinessFilter {
        district: q.district,
        scale: q.scale,
        is_ikm: q.is_ikm,
        status: q.status,
        kbli: q.kbli,
        q: q.q,
        established_from: q.established_from,
        established_to: q.established_to,
        updated_since: q.updated_since,
    };
    filter.validate()?;
    let stats = db::run(&state.pool, move |conn| business_stats(conn, &filter, &keys)).await?;
    respond(&req, &stats, Some("rows"))
}

/// Businesses by scale.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ByScale {
    /// Mikro.
    pub mikro: i64,
    /// Kecil.
    pub kecil: i64,
    /// Menengah.
    pub menengah: i64,
    /// Besar.
    pub besar: i64,
    /// Neither revenue nor capital known.
    pub unknown: i64,
}

/// The businesses section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct BusinessSection {
    /// Businesses.
    pub total: i64,
    /// Active ones.
    pub active: i64,
    /// IKM (manufacturing) ones.
    pub ikm: i64,
    /// By PP 7/2021 scale.
    pub by_scale: ByScale,
}

/// The products section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ProductSection {
    /// Products.
    pub total: i64,
    /// Products that passed a curation (of the caller's partner, for retail users).
    pub curated_passed: i64,
    /// IKM businesses with a product that passed a curation.
    pub curated_ikm_businesses: i64,
}

/// The retail section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RetailSection {
    /// Outlets.
    pub outlets: i64,
    /// Outlets with at least one product listed now.
    pub outlets_stocking_curated: i64,
}

/// The financing section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct FinancingSection {
    /// Applications.
    pub applications: i64,
    /// Applications by status.
    #[schema(value_type = Object)]
    pub by_status: serde_json::Map<String, Value>,
    /// Sum requested, rupiah.
    pub requested_idr: i64,
    /// Sum approved, rupiah.
    pub approved_idr: i64,
}

/// The dashboard's figures. Sections outside the caller's scope are `null`: a bank sees its own
/// financing; a retail partner its own curations, outlets and placements.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    /// Businesses (not for bank users).
    pub businesses: Option<BusinessSection>,
    /// Products (not for bank users).
    pub products: Option<ProductSection>,
    /// Retail (not for bank users).
    pub retail: Option<RetailSection>,
    /// Financing (not for retail users).
    pub financing: Option<FinancingSection>,
    /// Trainings (office staff and viewers).
    pub trainings: Option<TrainingTotals>,
}

/// The trainings section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct TrainingTotals {
    /// Trainings.
    pub trainings: i64,
    /// Registrations.
    pub registrants: i64,
    /// Selected or attended.
    pub selected: i64,
    /// Attended.
    pub attended: i64,
}

fn count(conn: &mut DbConnection, sql: &str) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(conn).map(|r| r.n)
}

/// The partner clause of a statistic: `AND <column> = <id>` for a scoped caller. The id is a
/// number from the caller's own account, never client text.
fn partner_clause(column: &str, partner: Option<i64>) -> String {
    partner.map_or(String::new(), |id| format!(" AND {column} = {id}"))
}

fn overview(
    conn: &mut DbConnection,
    role: Role,
    bank: Option<i64>,
    retail: Option<i64>,
) -> AppResult<Overview> {
    let mut out = Overview::default();
    if role != Role::Bank {
        // One pass over the businesses: counts per scale with the active and IKM counts beside.
        use diesel::dsl::sql;
        use diesel::sql_types::BigInt;
        let by: Vec<(Option<String>, i64, i64, i64)> = crate::db::schema::businesses::table
            .group_by(crate::db::schema::businesses::scale)
            .select((
                crate::db::schema::businesses::scale,
                sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"),
                sql::<BigInt>(
                    "CAST(SUM(CASE WHEN businesses.status = 'active' THEN 1 ELSE 0 END) AS BIGINT)",
                ),
                sql::<BigInt>("CAST(SUM(CASE WHEN businesses.is_ikm THEN 1 ELSE 0 END) AS BIGINT)"),
            ))
            .load(conn)?;
        let mut section = BusinessSection::default();
        for (scale, n, active, ikm) in by {
            section.total += n;
            section.active += active;
            section.ikm += ikm;
            let slot = match scale.as_deref() {
                Some("mikro") => &mut section.by_scale.mikro,
                Some("kecil") => &mut section.by_scale.kecil,
                Some("menengah") => &mut section.by_scale.menengah,
                Some("besar") => &mut section.by_scale.besar,
                _ => &mut section.by_scale.unknown,
            };
            *slot += n;
        }
        out.businesses = Some(section);
        let passed = format!("c.status = 'passed'{}", partner_clause("c.retail_partner_id", retail));
        let ikm_true = if db::backend(conn) == Backend::Postgres { "b.is_ikm" } else { "b.is_ikm = 1" };
        out.products = Some(ProductSection {
            total: count(conn, "SELECT COUNT(*) AS n FROM products")?,
            curated_passed: count(
                conn,
                &format!("SELECT COUNT(DISTINCT c.product_id) AS n FROM curations c WHERE {passed}"),
            )?,
            curated_ikm_businesses: count(
                conn,
                &format!(
                    "SELECT COUNT(DISTINCT p.business_id) AS n FROM curations c JOIN products p ON p.id = c.product_id \
                     JOIN businesses b ON b.id = p.business_id WHERE {passed} AND {ikm_true}"
                ),
            )?,
        });
        out.retail = Some(RetailSection {
            outlets: count(
                conn,
                &format!(
                    "SELECT COUNT(*) AS n FROM outlets o WHERE 1 = 1{}",
                    partner_clause("o.retail_partner_id", retail)
                ),
            )?,
            outlets_stocking_curated: count(
                conn,
                &format!(
                    "SELECT COUNT(DISTINCT pl.outlet_id) AS n FROM placements pl JOIN outlets o ON o.id = pl.outlet_id \
                     WHERE pl.delisted_on IS NULL{}",
                    partner_clause("o.retail_partner_id", retail)
                ),
            )?,
        });
    }
    if role != Role::Retail {
        let rows = financing_rows(conn, FinancingKey::Status, bank)?;
        let mut section = FinancingSection::default();
        for row in rows {
            section.applications += row.applications;
            section.requested_idr += row.requested_idr;
            section.approved_idr += row.approved_idr;
            let status = match row.key {
                FinancingGroupKey::Status(status) => status,
                FinancingGroupKey::Id(id) => id.to_string(),
            };
            section.by_status.insert(status, Value::from(row.applications));
        }
        out.financing = Some(section);
    }
    if !matches!(role, Role::Bank | Role::Retail) {
        let t = training_stats(conn)?;
        out.trainings = Some(TrainingTotals {
            trainings: t.trainings,
            registrants: t.registrants,
            selected: t.selected,
            attended: t.attended,
        });
    }
    Ok(out)
}

/// The dashboard: one object with a section per area, each computed by the database.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "The figures, or CSV lines of metric and value",
        content((Overview = "application/json"), (String = "text/csv")))),
)]
#[get("/stats/overview")]
pub async fn overview_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<HttpResponse> {
    let (role, bank, retail) = (caller.role, caller.bank_partner_id, caller.retail_partner_id);
    let stats = db::run(&state.pool, move |conn| overview(conn, role, bank, retail)).await?;
    respond(&req, &stats, None)
}

/// A grouping key of the financing statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinancingKey {
    /// By bank.
    Bank,
    /// By programme.
    Programme,
    /// By application status.
    Status,
}

/// The key of a financing group: a bank's or programme's id, or a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FinancingGroupKey {
    /// A bank's or a programme's id.
    Id(i64),
    /// An application status.
    Status(String),
}

/// Financing figures of one group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FinancingRow {
    /// The bank's id, the programme's id, or the status.
    pub key: FinancingGroupKey,
    /// The bank's code or the programme's name, for bank and programme groups.
    pub label: Option<String>,
    /// Applications.
    pub applications: i64,
    /// Sum requested, rupiah.
    pub requested_idr: i64,
    /// Sum approved, rupiah.
    pub approved_idr: i64,
}

fn financing_rows(
    conn: &mut DbConnection,
    key: FinancingKey,
    bank: Option<i64>,
) -> AppResult<Vec<FinancingRow>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        k: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        label: Option<String>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        requested: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        approved: i64,
    }
    let (column, label, join) = match key {
        FinancingKey::Bank => {
            ("a.bank_partner_id", "MAX(bp.code)", "JOIN bank_partners bp ON bp.id = a.bank_partner_id")
        }
        FinancingKey::Programme => {
            ("a.programme_id", "MAX(fp.name)", "JOIN financing_programmes fp ON fp.id = a.programme_id")
        }
        FinancingKey::Status => ("a.status", "NULL", ""),
    };
    // A bank's figures cover its own applications of consenting businesses, as its lists do.
    let scope = match bank {
        Some(id) => format!(
            " AND a.bank_partner_id = {id} AND a.business_id IN \
             (SELECT id FROM businesses WHERE consented_to_bank_sharing_at IS NOT NULL)"
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT CAST({column} AS TEXT) AS k, {label} AS label, CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(COALESCE(SUM(a.amount_requested_idr), 0) AS BIGINT) AS requested, \
         CAST(COALESCE(SUM(a.amount_approved_idr), 0) AS BIGINT) AS approved \
         FROM applications a {join} WHERE 1 = 1{scope} GROUP BY {column} ORDER BY {column}"
    );
    let rows: Vec<Row> = diesel::sql_query(sql).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| FinancingRow {
            key: match r.k.parse::<i64>() {
                Ok(id) if key != FinancingKey::Status => FinancingGroupKey::Id(id),
                _ => FinancingGroupKey::Status(r.k),
            },
            label: r.label,
            applications: r.n,
            requested_idr: r.requested,
            approved_idr: r.approved,
        })
        .collect())
}

/// Grouping of the financing statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FinancingStatsQuery {
    /// `bank`, `programme` or `status`.
    pub group_by: FinancingKey,
}

/// Financing figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FinancingStats {
    /// One row per group.
    pub rows: Vec<FinancingRow>,
}

/// Applications, requested and approved amounts grouped by bank, programme or status. A bank
/// sees its own applications only; retail users get 404.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(FinancingStatsQuery),
    responses((status = 200, description = "One row per group, or CSV", content((FinancingStats = "application/json"), (String = "text/csv")))),
)]
#[get("/stats/financing")]
pub async fn financing_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<FinancingStatsQuery>,
) -> AppResult<HttpResponse> {
    if caller.role == Role::Retail {
        return Err(AppError::NotFound);
    }
    let bank = if caller.role == Role::Bank { caller.bank_partner_id.or(Some(-1)) } else { None };
    let key = query.group_by;
    let rows = db::run(&state.pool, move |conn| financing_rows(conn, key, bank)).await?;
    respond(&req, &FinancingStats { rows }, Some("rows"))
}

/// Product figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductStats {
    /// Products, curated products and the IKM behind them.
    #[serde(flatten)]
    pub totals: ProductSection,
    /// Products per category.
    pub by_category: Vec<CategoryRow>,
}

/// Products of one category.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryRow {
    /// Category.
    pub category: String,
    /// Products.
    pub count: i64,
}

/// Product figures: totals, curated products and the IKM behind them (for a retail user, its
/// own partner's curations), and products per category. Bank users get 404.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "Product figures, or CSV of the categories", content((ProductStats = "application/json"), (String = "text/csv")))),
)]
#[get("/stats/products")]
pub async fn product_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<HttpResponse> {
    if caller.role == Role::Bank {
        return Err(AppError::NotFound);
    }
    let (role, retail) = (caller.role, caller.retail_partner_id);
    let stats = db::run(&state.pool, move |conn| {
        let totals = overview(conn, role, None, retail)?.products.unwrap_or_default();
        use crate::db::schema::products;
        let rows: Vec<(String, i64)> = products::table
            .group_by(products::category)
            .select((
                products::category,
                diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(COUNT(*) AS BIGINT)"),
            ))
            .order_by(products::category)
            .load(conn)?;
        Ok(ProductStats {
            totals,
            by_category: rows.into_iter().map(|(category, count)| CategoryRow { category, count }).collect(),
        })
    })
    .await?;
    respond(&req, &stats, Some("by_category"))
}

/// One retail partner's figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetailRow {
    /// The partner.
    pub retail_partner_id: i64,
    /// Its brand.
    pub brand: String,
    /// Its outlets.
    pub outlets: i64,
    /// Its outlets with a product listed now.
    pub outlets_stocking_curated: i64,
    /// Products that passed its curation.
    pub curated_passed: i64,
    /// IKM businesses with a product that passed its curation.
    pub curated_ikm_businesses: i64,
    /// Products listed in its outlets now.
    pub products_listed: i64,
}

/// Retail figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetailStats {
    /// One row per partner (a retail user's own only).
    pub rows: Vec<RetailRow>,
}

/// Retail figures per partner: outlets, outlets stocking curated products, curated products and
/// the IKM behind them, products listed. A retail user sees its own partner; bank users get 404.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "One row per partner, or CSV", content((RetailStats = "application/json"), (String = "text/csv")))),
)]
#[get("/stats/retail")]
pub async fn retail_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<HttpResponse> {
    if caller.role == Role::Bank {
        return Err(AppError::NotFound);
    }
    let (role, own) = (caller.role, caller.retail_partner_id);
    let stats = db::run(&state.pool, move |conn| {
        use crate::db::schema::retail_partners;
        let mut q = retail_partners::table.into_boxed();
        if role == Role::Retail {
            q = q.filter(retail_partners::id.eq(own.unwrap_or(-1)));
        }
        let partners: Vec<(i64, String)> = q.order(retail_partners::id).select((retail_partners::id, retail_partners::brand)).load(conn)?;
        let mut rows = Vec::new();
        for (id, brand) in partners {
            let section = overview(conn, Role::Retail, None, Some(id))?;
            let (products, retail) = (section.products.unwrap_or_default(), section.retail.unwrap_or_default());
            let products_listed = count(
                conn,
                &format!(
                    "SELECT COUNT(DISTINCT pl.product_id) AS n FROM placements pl JOIN outlets o ON o.id = pl.outlet_id \
                     WHERE pl.delisted_on IS NULL AND o.retail_partner_id = {id}"
                ),
            )?;
            rows.push(RetailRow {
                retail_partner_id: id,
                brand,
                outlets: retail.outlets,
                outlets_stocking_curated: retail.outlets_stocking_curated,
                curated_passed: products.curated_passed,
                curated_ikm_businesses: products.curated_ikm_businesses,
                products_listed,
            });
        }
        Ok(RetailStats { rows })
    })
    .await?;
    respond(&req, &stats, Some("rows"))
}
