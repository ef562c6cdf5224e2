//! Outlets: the stores of a retail partner, each in a district of the regency. An outlet that
//! ever stocked a product is closed, not deleted, so that its placements keep their history.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{may_write, scope};
use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::{outlets, retail_partners};
use crate::db::{self, DbConnection};
use crate::domain::codes::DistrictCode;
use crate::error::AppResult;
use crate::error::OnConflict;
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::list::{self, PageParams, Sort, SortField};
use crate::http::patch::{merged, refuse_changes, require_object};
use crate::state::AppState;
use crate::summary::{Deltas, Figure};

/// Whether an outlet trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutletStatus {
    /// Trading.
    Open,
    /// Closed.
    Closed,
}

impl OutletStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutletStatus::Open => "open",
            OutletStatus::Closed => "closed",
        }
    }
}

/// An outlet as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutletInput {
    /// The partner; a retail user's own partner when not given.
    #[serde(default)]
    #[schema(value_type = Option<i64>, example = 1)]
    pub retail_partner_id: Field<i64>,
    /// The partner's store code, unique per partner.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 40, example = "TJ7K")]
    pub code: Field<String>,
    /// Name.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, example = "Indomaret Babat Raya")]
    pub name: Field<String>,
    /// Address.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub address: Field<String>,
    /// District code, which must exist in `/regions`.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "35.24.05")]
    pub district_code: Field<String>,
    /// The village's code in `/regions`, which must be a village of `district_code` (422
    /// naming both otherwise).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "35.24.05.2001")]
    pub village_code: Field<String>,
    /// Opening date.
    #[serde(default)]
    #[schema(value_type = Option<NaiveDate>)]
    pub opened_on: Field<NaiveDate>,
    /// `open` when not given.
    #[serde(default)]
    #[schema(value_type = Option<OutletStatus>)]
    pub status: Field<OutletStatus>,
}

/// A checked outlet, ready to write.
#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = outlets, treat_none_as_null = true)]
struct OutletRecord {
    retail_partner_id: i64,
    code: String,
    name: String,
    address: Option<String>,
    district_code: String,
    village_code: Option<String>,
    opened_on: Option<NaiveDate>,
    status: String,
}

/// An outlet as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outlets)]
pub struct OutletRow {
    id: i64,
    retail_partner_id: i64,
    code: String,
    name: String,
    address: Option<String>,
    district_code: String,
    village_code: Option<String>,
    opened_on: Option<NaiveDate>,
    status: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

/// An outlet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Outlet {
    /// Id.
    pub id: i64,
    /// The partner.
    pub retail_partner_id: i64,
    /// Store code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Address.
    pub address: Option<String>,
    /// District code.
    pub district_code: String,
    /// The village's code; `null` when not given.
    pub village_code: Option<String>,
    /// Opening date.
    pub opened_on: Option<NaiveDate>,
    /// `open` or `closed`.
    #[schema(value_type = OutletStatus)]
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl From<OutletRow> for Outlet {
    fn from(o: OutletRow) -> Self {
        Outlet {
            id: o.id,
            retail_partner_id: o.retail_partner_id,
            code: o.code,
            name: o.name,
            address: o.address,
            district_code: o.district_code,
            village_code: o.village_code,
            opened_on: o.opened_on,
            status: o.status,
            created_at: o.created_at.and_utc(),
            updated_at: o.updated_at.and_utc(),
            version: o.version,
        }
    }
}

impl OutletRow {
    fn record(&self) -> OutletRecord {
        OutletRecord {
            retail_partner_id: self.retail_partner_id,
            code: self.code.clone(),
            name: self.name.clone(),
            address: self.address.clone(),
            district_code: self.district_code.clone(),
            village_code: self.village_code.clone(),
            opened_on: self.opened_on,
            status: self.status.clone(),
        }
    }
}

fn find_outlet(conn: &mut DbConnection, id: i64) -> QueryResult<OutletRow> {
    outlets::table.find(id).select(OutletRow::as_select()).first(conn)
}

/// The partner an outlet belongs to (`NotFound` when there is no such outlet).
pub(super) fn outlet_partner(conn: &mut DbConnection, id: i64) -> QueryResult<i64> {
    outlets::table.find(id).select(outlets::retail_partner_id).first(conn)
}

/// Checks every field of an outlet, the partner and district against the database included,
/// and answers one 422 naming every bad field.
fn check_outlet(conn: &mut DbConnection, input: OutletInput, scope: Option<i64>) -> AppResult<OutletRecord> {
    let mut check = Check::default();
    let partner = check.optional("retail_partner_id", input.retail_partner_id).or(scope);
    match (partner, scope) {
        (None, _) => check.fail("retail_partner_id", "required", "is required"),
        (Some(p), Some(own)) if p != own => {
            check.fail("retail_partner_id", "forbidden", "must be your own partner")
        }
        (Some(p), _) => {
            let exists: bool =
                diesel::select(diesel::dsl::exists(retail_partners::table.find(p))).get_result(conn)?;
            if !exists {
                check.fail("retail_partner_id", "not_found", "no retail partner has this id");
            }
        }
    }
    let code = check.text("code", input.code, 40);
    let name = check.text("name", input.name, 200);
    let address = check.optional_text("address", input.address, 500);
    let district = check.required("district_code", input.district_code);
    let district = check.parse("district_code", district, |v| DistrictCode::parse(&v));
    if let Some(d) = &district
        && !crate::regions::is_district(conn, d.as_str())?
    {
        check.fail("district_code", "not_found", "no district has this code in /regions");
    }
    let village = check.optional_text("village_code", input.village_code, 13);
    let village = check.parse("village_code", village, |v| {
        use crate::regions::villages::{CODE_FORMAT, is_code};
        if is_code(&v) { Ok(v) } else { Err(crate::domain::Invalid::format(CODE_FORMAT)) }
    });
    if let (Some(d), Some(code)) = (&district, &village) {
        let villages = crate::regions::villages::Villages::of(conn, &[d.as_str()], &[code.as_str()])?;
        if let Err((slug, message)) = villages.settle(d.as_str(), Some(code), None) {
            check.fail("village_code", slug, message);
        }
    }
    let opened_on = check.optional("opened_on", input.opened_on);
    let status = check.optional("status", input.status).unwrap_or(OutletStatus::Open);
    check.finish(|| {
        Some(OutletRecord {
            retail_partner_id: partner?,
            code: code?,
            name: name?,
            address,
            district_code: district?.as_str().to_owned(),
            village_code: village,
            opened_on,
            status: status.as_str().to_owned(),
        })
    })
}

/// Writes a new outlet and its audit entry.
fn insert_outlet(conn: &mut DbConnection, user: i64, record: &OutletRecord) -> AppResult<OutletRow> {
    let id = crate::versioned_insert!(conn, outlets, record)?;
    audit::record(conn, user, Action::Create, "outlet", id, &audit::snapshot(record, &[]))?;
    let outlet = find_outlet(conn, id)?;
    Deltas::new().count(Figure::Outlets, outlet.retail_partner_id, "", 1).apply(conn)?;
    Ok(outlet)
}

/// Writes an outlet's new values if it is still at the version read (412 otherwise), and the
/// audit entry of the change.
fn change_outlet(
    conn: &mut DbConnection,
    user: i64,
    current: &OutletRow,
    record: &OutletRecord,
) -> AppResult<OutletRow> {
    crate::versioned_update!(conn, outlets, current.id, current.version, record)?;
    let changes = audit::diff(&current.record(), record, &[]);
    audit::record(conn, user, Action::Update, "outlet", current.id, &changes)?;
    Ok(find_outlet(conn, current.id)?)
}

/// Deletes an outlet if it is still at the version read (412 otherwise) and never stocked a
/// product (409 otherwise), and writes the audit entry.
fn remove_outlet(conn: &mut DbConnection, user: i64, current: &OutletRow) -> AppResult<()> {
    crate::versioned_delete!(conn, outlets, current.id, current.version)
        .on_conflict("the outlet has placements; set its status to closed instead")?;
    Deltas::new().count(Figure::Outlets, current.retail_partner_id, "", -1).apply(conn)?;
    let snapshot = audit::snapshot(&current.record(), &[]);
    audit::record(conn, user, Action::Delete, "outlet", current.id, &snapshot)?;
    Ok(())
}

/// Sortable outlet columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutletSort {
    /// `id`.
    Id,
    /// `code`.
    Code,
    /// `name`.
    Name,
    /// `updated_at`.
    UpdatedAt,
}

impl SortField for OutletSort {
    type Table = outlets::table;
    type Row = OutletRow;
    const ID: Self = OutletSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[
        ("id", OutletSort::Id),
        ("code", OutletSort::Code),
        ("name", OutletSort::Name),
        ("updated_at", OutletSort::UpdatedAt),
    ];

    crate::sort_columns!(outlets;
        OutletSort::Id => (id, Int),
        OutletSort::Code => (code, Text),
        OutletSort::Name => (name, Text),
        OutletSort::UpdatedAt => (updated_at, Time),
    );
}

/// Filters, sort and paging of the outlet list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutletQuery {
    /// Outlets of this partner.
    pub retail_partner_id: Option<i64>,
    /// District code.
    pub district: Option<String>,
    /// `open` or `closed`.
    pub status: Option<OutletStatus>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// `id`, `code`, `name`, `updated_at`; `-` for descending (default `id`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

impl OutletQuery {
    fn query(&self, scope: Option<i64>) -> outlets::BoxedQuery<'static, db::Db> {
        let mut q = outlets::table.into_boxed();
        if let Some(own) = scope {
            q = q.filter(outlets::retail_partner_id.eq(own));
        }
        if let Some(p) = self.retail_partner_id {
            q = q.filter(outlets::retail_partner_id.eq(p));
        }
        if let Some(d) = &self.district {
            q = q.filter(outlets::district_code.eq(d.clone()));
        }
        if let Some(s) = self.status {
            q = q.filter(outlets::status.eq(s.as_str()));
        }
        if let Some(text) = self.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            q = q.filter(
                crate::db::text::lower(outlets::name).like(crate::db::text::like_pattern(text)).escape('\\'),
            );
        }
        q
    }
}

const OUTLET_CSV: &str = "id,retail_partner_id,code,name,address,district_code,village_code,opened_on,status,created_at,updated_at,version\n";

/// List outlets (a retail user sees its partner's only); CSV or NDJSON with `Accept`.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(OutletQuery),
    responses((status = 200, description = "A page of outlets, or all as CSV or NDJSON",
        content((crate::http::list::Page<Outlet> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/outlets")]
pub async fn list_outlets(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<OutletQuery>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let query = query.into_inner();
    list::check_filters(query.q.as_deref(), query.district.as_deref())?;
    let sort = Sort::<OutletSort>::parse(query.sort.as_deref(), "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let counted = query.clone();
    list::respond(
        &req,
        &state.pool,
        params,
        OUTLET_CSV,
        move |conn, after, limit| {
            let q = query.query(scope);
            let (rows, next) = list::keyset(conn, q.select(OutletRow::as_select()), &sort, after, limit)?;
            Ok((rows.into_iter().map(Outlet::from).collect::<Vec<_>>(), next))
        },
        move |conn| Ok(counted.query(scope).count().get_result(conn)?),
    )
    .await
}

/// Create an outlet.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    request_body = OutletInput,
    responses(
        (status = 201, description = "The new outlet", body = Outlet, headers(("Location" = String, description = "Its URL"))),
        (status = 409, description = "The partner already has an outlet with this code", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/outlets")]
pub async fn create_outlet(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<OutletInput>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let user = caller.id;
    let outlet = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let record = check_outlet(conn, body.0, scope)?;
            insert_outlet(conn, user, &record)
        })
    })
    .await?;
    let outlet = Outlet::from(outlet);
    Ok(created(format!("/api/v1/outlets/{}", outlet.id), outlet.version, outlet))
}

/// Get an outlet.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The outlet's id")),
    responses((status = 200, description = "The outlet", body = Outlet, headers(("ETag" = String, description = "The version")))),
)]
#[get("/outlets/{id}")]
pub async fn get_outlet(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let outlet = db::run(&state.pool, move |conn| Ok(find_outlet(conn, id)?)).await?;
    within(scope, outlet.retail_partner_id)?;
    let outlet = Outlet::from(outlet);
    Ok(ok(outlet.version, outlet))
}

/// Change an outlet (JSON merge patch; honours `If-Match`).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The outlet's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = OutletInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed outlet", body = Outlet, headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "The partner already has an outlet with this code", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/outlets/{id}")]
pub async fn update_outlet(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    require_object(&body.0)?;
    let (id, user) = (id.into_inner(), caller.id);
    let outlet = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_outlet(conn, id)?;
            within(scope, current.retail_partner_id)?;
            if_match.check(current.version)?;
            // An outlet stays with its partner: its placements passed that partner's curation.
            let before = current.record();
            refuse_changes(&before, &body.0, &["retail_partner_id"])?;
            let record = check_outlet(conn, merged(&before, &body.0, &[])?, scope)?;
            change_outlet(conn, user, &current, &record)
        })
    })
    .await?;
    let outlet = Outlet::from(outlet);
    Ok(ok(outlet.version, outlet))
}

/// Delete an outlet that never stocked a product (409 otherwise: close it instead).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The outlet's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The outlet has placements", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/outlets/{id}")]
pub async fn delete_outlet(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let (id, user) = (id.into_inner(), caller.id);
    db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_outlet(conn, id)?;
            within(scope, current.retail_partner_id)?;
            if_match.check(current.version)?;
            remove_outlet(conn, user, &current)
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
