//! Retail partners, their outlets, the curation of UMKM products and their placement in
//! outlets: the article's 16 products from 13 IKM in 51 outlets.
//!
//! A `retail` user is bound to one partner: it sees and changes only that partner's outlets,
//! curations and placements; anything else answers 404. Bank users see none of this (404).

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::{curations, outlets, placements, products, retail_partners};
use crate::db::{self, DbConnection};
use crate::domain::codes::DistrictCode;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::list::{self, PageParams, Sort, SortField, page_of};
use crate::http::patch::merge_patch;
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_retail_partners)
        .service(create_retail_partner)
        .service(get_retail_partner)
        .service(update_retail_partner)
        .service(list_outlets)
        .service(create_outlet)
        .service(get_outlet)
        .service(update_outlet)
        .service(delete_outlet)
        .service(list_curations)
        .service(create_curation)
        .service(get_curation)
        .service(decide_curation)
        .service(list_placements)
        .service(create_placement)
        .service(update_placement)
        .service(delete_placement);
}

/// The partner a caller is confined to: `Some` for retail users, `None` for the office.
/// Bank users are refused here with 404.
fn scope(caller: &Caller) -> AppResult<Option<i64>> {
    match caller.role {
        Role::Bank => Err(AppError::NotFound),
        Role::Retail => caller.retail_partner_id.map(Some).ok_or(AppError::NotFound),
        _ => Ok(None),
    }
}

fn may_write(caller: &Caller) -> AppResult<()> {
    caller.require(&[Role::Admin, Role::Officer, Role::Retail])
}

fn patch_object(patch: &Value) -> AppResult<()> {
    if patch.is_object() {
        Ok(())
    } else {
        Err(AppError::invalid("body", "invalid_type", "a merge patch must be a JSON object"))
    }
}

// ---------------------------------------------------------------- retail partners

/// A retail partner (a modern retail chain).
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = retail_partners)]
pub struct RetailPartner {
    /// Id.
    pub id: i64,
    /// Short code, unique.
    #[schema(example = "IDM")]
    pub code: String,
    /// Legal name.
    #[schema(example = "PT Indomarco Prismatama")]
    pub name: String,
    /// Brand.
    #[schema(example = "Indomaret")]
    pub brand: String,
    /// Created.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub created_at: NaiveDateTime,
    /// Last changed.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub updated_at: NaiveDateTime,
    /// Version; also the `ETag`.
    pub version: i32,
}

/// Serializes stored UTC times as RFC 3339 with `Z`.
mod utc {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        DateTime::<Utc>::deserialize(d).map(|t| t.naive_utc())
    }
}

/// A retail partner as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetailPartnerInput {
    /// Short code, 2–20 letters, digits or dashes; unique.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "ALF")]
    pub code: Field<String>,
    /// Legal name.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "PT Sumber Alfaria Trijaya Tbk")]
    pub name: Field<String>,
    /// Brand.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "Alfamart")]
    pub brand: Field<String>,
}

#[derive(Debug, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = retail_partners)]
struct RetailPartnerRecord {
    code: String,
    name: String,
    brand: String,
}

fn check_partner(input: RetailPartnerInput) -> AppResult<RetailPartnerRecord> {
    let mut check = Check::default();
    let code = check.text("code", input.code, 20).map(|c| c.to_uppercase());
    if code
        .as_ref()
        .is_some_and(|c| c.len() < 2 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        check.fail("code", "invalid_format", "must be 2 to 20 letters, digits or dashes");
    }
    let name = check.text("name", input.name, 200);
    let brand = check.text("brand", input.brand, 100);
    check.finish(|| Some(RetailPartnerRecord { code: code?, name: name?, brand: brand? }))
}

fn find_partner(conn: &mut DbConnection, id: i64) -> QueryResult<RetailPartner> {
    retail_partners::table.find(id).select(RetailPartner::as_select()).first(conn)
}

/// List retail partners (a retail user sees its own only).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    responses((status = 200, description = "The retail partners, by id", body = crate::http::list::Page<RetailPartner>)),
)]
#[get("/retail-partners")]
pub async fn list_retail_partners(
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<web::Json<crate::http::list::Page<RetailPartner>>> {
    let scope = scope(&caller)?;
    let data = db::run(&state.pool, move |conn| {
        let mut q = retail_partners::table.into_boxed();
        if let Some(own) = scope {
            q = q.filter(retail_partners::id.eq(own));
        }
        Ok(q.order(retail_partners::id).select(RetailPartner::as_select()).load(conn)?)
    })
    .await?;
    Ok(web::Json(crate::http::list::Page { data, next_cursor: None, total: None }))
}

/// Create a retail partner (admin).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    request_body = RetailPartnerInput,
    responses(
        (status = 201, description = "The new partner", body = RetailPartner, headers(("Location" = String, description = "Its URL"))),
        (status = 409, description = "The code is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/retail-partners")]
pub async fn create_retail_partner(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<RetailPartnerInput>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let record = check_partner(body.0)?;
    let user = caller.id;
    let partner = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let now = db::now();
            let id: i64 = diesel::insert_into(retail_partners::table)
                .values((&record, retail_partners::created_at.eq(now), retail_partners::updated_at.eq(now)))
                .returning(retail_partners::id)
                .get_result(conn)?;
            audit::record(conn, user, Action::Create, "retail_partner", id, &audit::snapshot(&record, &[]))?;
            Ok(find_partner(conn, id)?)
        })
    })
    .await?;
    Ok(created(format!("/api/v1/retail-partners/{}", partner.id), partner.version, partner))
}

/// Get a retail partner.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The partner's id")),
    responses((status = 200, description = "The partner", body = RetailPartner, headers(("ETag" = String, description = "The version")))),
)]
#[get("/retail-partners/{id}")]
pub async fn get_retail_partner(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    within(scope(&caller)?, id)?;
    let partner = db::run(&state.pool, move |conn| Ok(find_partner(conn, id)?)).await?;
    Ok(ok(partner.version, partner))
}

/// Change a retail partner (admin; JSON merge patch; honours `If-Match`).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The partner's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = RetailPartnerInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed partner", body = RetailPartner),
        (status = 409, description = "The code is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/retail-partners/{id}")]
pub async fn update_retail_partner(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let (id, user) = (id.into_inner(), caller.id);
    let partner = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            patch_object(&body.0)?;
            let current = find_partner(conn, id)?;
            if_match.check(current.version)?;
            let before = RetailPartnerRecord { code: current.code, name: current.name, brand: current.brand };
            let mut merged = serde_json::to_value(&before).map_err(AppError::internal)?;
            merge_patch(&mut merged, &body.0);
            let record = check_partner(crate::http::parse_json(merged.to_string().as_bytes())?)?;
            diesel::update(retail_partners::table.find(id))
                .set((
                    &record,
                    retail_partners::updated_at.eq(db::now()),
                    retail_partners::version.eq(current.version + 1),
                ))
                .execute(conn)?;
            audit::record(
                conn,
                user,
                Action::Update,
                "retail_partner",
                id,
                &audit::diff(&before, &record, &[]),
            )?;
            Ok(find_partner(conn, id)?)
        })
    })
    .await?;
    Ok(ok(partner.version, partner))
}

// ---------------------------------------------------------------- outlets

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
    #[schema(value_type = String, required = true, example = "TJ7K")]
    pub code: Field<String>,
    /// Name.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "Indomaret Babat Raya")]
    pub name: Field<String>,
    /// Address.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub address: Field<String>,
    /// District code, which must exist in `/regions`.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "35.24.05")]
    pub district_code: Field<String>,
    /// Opening date.
    #[serde(default)]
    #[schema(value_type = Option<NaiveDate>)]
    pub opened_on: Field<NaiveDate>,
    /// `open` when not given.
    #[serde(default)]
    #[schema(value_type = Option<OutletStatus>)]
    pub status: Field<OutletStatus>,
}

#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = outlets, treat_none_as_null = true)]
struct OutletRecord {
    retail_partner_id: i64,
    code: String,
    name: String,
    address: Option<String>,
    district_code: String,
    opened_on: Option<NaiveDate>,
    status: String,
}

/// An outlet.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = outlets)]
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
    /// Opening date.
    pub opened_on: Option<NaiveDate>,
    /// `open` or `closed`.
    #[schema(value_type = OutletStatus)]
    pub status: String,
    /// Created.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub created_at: NaiveDateTime,
    /// Last changed.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub updated_at: NaiveDateTime,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl Outlet {
    fn record(&self) -> OutletRecord {
        OutletRecord {
            retail_partner_id: self.retail_partner_id,
            code: self.code.clone(),
            name: self.name.clone(),
            address: self.address.clone(),
            district_code: self.district_code.clone(),
            opened_on: self.opened_on,
            status: self.status.clone(),
        }
    }
}

fn find_outlet(conn: &mut DbConnection, id: i64) -> QueryResult<Outlet> {
    outlets::table.find(id).select(Outlet::as_select()).first(conn)
}

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
    let opened_on = check.optional("opened_on", input.opened_on);
    let status = check.optional("status", input.status).unwrap_or(OutletStatus::Open);
    check.finish(|| {
        Some(OutletRecord {
            retail_partner_id: partner?,
            code: code?,
            name: name?,
            address,
            district_code: district?.as_str().to_owned(),
            opened_on,
            status: status.as_str().to_owned(),
        })
    })
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
    type Row = Outlet;
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
                crate::businesses::lower(outlets::name)
                    .like(crate::businesses::like_pattern(text))
                    .escape('\\'),
            );
        }
        q
    }
}

const OUTLET_CSV: &str =
    "id,retail_partner_id,code,name,address,district_code,opened_on,status,created_at,updated_at,version\n";

/// List outlets (a retail user sees its partner's only); CSV or NDJSON with `Accept`.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(OutletQuery),
    responses((status = 200, description = "A page of outlets, or all as CSV or NDJSON",
        content((crate::http::list::Page<Outlet> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson")))),
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
    let sort = Sort::<OutletSort>::parse(query.sort.as_deref(), "id")?;
    let params =
        PageParams { limit: query.limit, cursor: query.cursor.clone(), count: query.count == Some(true) };
    let counted = query.clone();
    list::respond(
        &req,
        &state.pool,
        params,
        OUTLET_CSV,
        move |conn, after, limit| {
            let mut q = query.query(scope);
            if let Some(cursor) = after {
                q = q.filter(sort.after(cursor)?);
            }
            for (field, dir) in &sort.keys {
                q = q.then_order_by(field.order(*dir));
            }
            let rows: Vec<Outlet> = q.limit(limit + 1).select(Outlet::as_select()).load(conn)?;
            Ok(page_of(rows, limit, &sort))
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
            let now = db::now();
            let id: i64 = diesel::insert_into(outlets::table)
                .values((&record, outlets::created_at.eq(now), outlets::updated_at.eq(now)))
                .returning(outlets::id)
                .get_result(conn)?;
            audit::record(conn, user, Action::Create, "outlet", id, &audit::snapshot(&record, &[]))?;
            Ok(find_outlet(conn, id)?)
        })
    })
    .await?;
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
    let (id, user) = (id.into_inner(), caller.id);
    let outlet = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            patch_object(&body.0)?;
            let current = find_outlet(conn, id)?;
            within(scope, current.retail_partner_id)?;
            if_match.check(current.version)?;
            let before = current.record();
            let mut merged = serde_json::to_value(&before).map_err(AppError::internal)?;
            if let Value::Object(map) = &mut merged {
                map.retain(|_, v| !v.is_null());
            }
            merge_patch(&mut merged, &body.0);
            let record = check_outlet(conn, crate::http::parse_json(merged.to_string().as_bytes())?, scope)?;
            diesel::update(outlets::table.find(id).filter(outlets::version.eq(current.version)))
                .set((&record, outlets::updated_at.eq(db::now()), outlets::version.eq(current.version + 1)))
                .execute(conn)?;
            audit::record(conn, user, Action::Update, "outlet", id, &audit::diff(&before, &record, &[]))?;
            Ok(find_outlet(conn, id)?)
        })
    })
    .await?;
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
        db::write(conn, |conn| {
            let current = find_outlet(conn, id)?;
            within(scope, current.retail_partner_id)?;
            if_match.check(current.version)?;
            diesel::delete(outlets::table.find(id)).execute(conn).map_err(|e| match AppError::from(e) {
                AppError::Conflict(_) => {
                    AppError::Conflict("the outlet has placements; set its status to closed instead".into())
                }
                other => other,
            })?;
            audit::record(
                conn,
                user,
                Action::Delete,
                "outlet",
                id,
                &audit::snapshot(&current.record(), &[]),
            )?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- curations

/// Where a curation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CurationStatus {
    /// Waiting for the partner's decision.
    Submitted,
    /// The product may be placed in the partner's outlets.
    Passed,
    /// Turned down; the product may be submitted again.
    Rejected,
}

impl CurationStatus {
    fn as_str(self) -> &'static str {
        match self {
            CurationStatus::Submitted => "submitted",
            CurationStatus::Passed => "passed",
            CurationStatus::Rejected => "rejected",
        }
    }
}

/// A curation: a product submitted to one retail partner.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = curations)]
pub struct Curation {
    /// Id.
    pub id: i64,
    /// The product.
    pub product_id: i64,
    /// The partner deciding.
    pub retail_partner_id: i64,
    /// `submitted`, `passed` or `rejected`.
    #[schema(value_type = CurationStatus)]
    pub status: String,
    /// Notes.
    pub notes: Option<String>,
    /// When it was decided.
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(with = "utc_opt")]
    pub decided_at: Option<NaiveDateTime>,
    /// Who decided (user id).
    pub decided_by: Option<i64>,
    /// Submitted.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub created_at: NaiveDateTime,
    /// Last changed.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub updated_at: NaiveDateTime,
    /// Version; also the `ETag`.
    pub version: i32,
}

mod utc_opt {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::utc::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d).map(|t| t.map(|t| t.naive_utc()))
    }
}

/// Submitting a product to a partner's curation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCuration {
    /// The product.
    pub product_id: i64,
    /// The partner.
    pub retail_partner_id: i64,
    /// Notes for the partner.
    #[serde(default)]
    pub notes: Option<String>,
}

/// A decision, or a change of notes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurationDecision {
    /// `passed` or `rejected`; a decided curation cannot be decided again (409).
    #[serde(default)]
    pub status: Option<CurationStatus>,
    /// Notes, or `null` to clear them.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
}

fn find_curation(conn: &mut DbConnection, id: i64) -> QueryResult<Curation> {
    curations::table.find(id).select(Curation::as_select()).first(conn)
}

fn check_notes(notes: Option<&str>) -> AppResult<()> {
    if notes.is_some_and(|n| n.chars().count() > 2000) {
        return Err(AppError::invalid("notes", "too_long", "must be at most 2000 characters"));
    }
    Ok(())
}

/// Filters and paging of the curation list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CurationQuery {
    /// Curations by this partner.
    pub retail_partner_id: Option<i64>,
    /// Curations of this product.
    pub product_id: Option<i64>,
    /// Curations of this business's products.
    pub business_id: Option<i64>,
    /// Status.
    pub status: Option<CurationStatus>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

impl CurationQuery {
    fn query(&self, scope: Option<i64>) -> curations::BoxedQuery<'static, db::Db> {
        let mut q = curations::table.into_boxed();
        if let Some(own) = scope {
            q = q.filter(curations::retail_partner_id.eq(own));
        }
        if let Some(p) = self.retail_partner_id {
            q = q.filter(curations::retail_partner_id.eq(p));
        }
        if let Some(p) = self.product_id {
            q = q.filter(curations::product_id.eq(p));
        }
        if let Some(b) = self.business_id {
            q = q.filter(
                curations::product_id
                    .eq_any(products::table.filter(products::business_id.eq(b)).select(products::id)),
            );
        }
        if let Some(s) = self.status {
            q = q.filter(curations::status.eq(s.as_str()));
        }
        q
    }
}

const CURATION_CSV: &str =
    "id,product_id,retail_partner_id,status,notes,decided_at,decided_by,created_at,updated_at,version\n";

/// List curations, by id (a retail user sees those submitted to its partner).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(CurationQuery),
    responses((status = 200, description = "A page of curations, or all as CSV or NDJSON",
        content((crate::http::list::Page<Curation> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson")))),
)]
#[get("/curations")]
pub async fn list_curations(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CurationQuery>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let query = query.into_inner();
    let params =
        PageParams { limit: query.limit, cursor: query.cursor.clone(), count: query.count == Some(true) };
    let counted = query.clone();
    list::respond(
        &req,
        &state.pool,
        params,
        CURATION_CSV,
        move |conn, after, limit| {
            let mut q = query.query(scope);
            if let Some(cursor) = after {
                q = q.filter(curations::id.gt(crate::http::list::decode_cursor::<i64>(cursor)?));
            }
            let rows: Vec<Curation> =
                q.order(curations::id).limit(limit + 1).select(Curation::as_select()).load(conn)?;
            Ok(crate::http::list::paginate(rows, limit, |c| c.id))
        },
        move |conn| Ok(counted.query(scope).count().get_result(conn)?),
    )
    .await
}

/// Submit a product to a retail partner's curation (office staff). One open curation per
/// product and partner (409); a product that passed already is 409 too.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    request_body = NewCuration,
    responses(
        (status = 201, description = "The submitted curation", body = Curation, headers(("Location" = String, description = "Its URL"))),
        (status = 409, description = "Already submitted or passed", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/curations")]
pub async fn create_curation(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewCuration>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let new = body.0;
    check_notes(new.notes.as_deref())?;
    let user = caller.id;
    let curation = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let mut check = Check::default();
            if !diesel::select(diesel::dsl::exists(products::table.find(new.product_id))).get_result::<bool>(conn)? {
                check.fail("product_id", "not_found", "no product has this id");
            }
            if !diesel::select(diesel::dsl::exists(retail_partners::table.find(new.retail_partner_id))).get_result::<bool>(conn)? {
                check.fail("retail_partner_id", "not_found", "no retail partner has this id");
            }
            check.finish(|| Some(()))?;
            let open: Vec<String> = curations::table
                .filter(curations::product_id.eq(new.product_id))
                .filter(curations::retail_partner_id.eq(new.retail_partner_id))
                .filter(curations::status.ne(CurationStatus::Rejected.as_str()))
                .select(curations::status)
                .load(conn)?;
            if let Some(status) = open.first() {
                return Err(AppError::Conflict(format!("the product's curation with this partner is {status} already")));
            }
            let now = db::now();
            let id: i64 = diesel::insert_into(curations::table)
                .values((
                    curations::product_id.eq(new.product_id),
                    curations::retail_partner_id.eq(new.retail_partner_id),
                    curations::status.eq(CurationStatus::Submitted.as_str()),
                    curations::notes.eq(&new.notes),
                    curations::created_at.eq(now),
                    curations::updated_at.eq(now),
                ))
                .returning(curations::id)
                .get_result(conn)?;
            let changes = json!({"product_id": new.product_id, "retail_partner_id": new.retail_partner_id, "status": "submitted"});
            audit::record(conn, user, Action::Create, "curation", id, &changes)?;
            Ok(find_curation(conn, id)?)
        })
    })
    .await?;
    Ok(created(format!("/api/v1/curations/{}", curation.id), curation.version, curation))
}

/// Get a curation.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The curation's id")),
    responses((status = 200, description = "The curation", body = Curation, headers(("ETag" = String, description = "The version")))),
)]
#[get("/curations/{id}")]
pub async fn get_curation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let curation = db::run(&state.pool, move |conn| Ok(find_curation(conn, id)?)).await?;
    within(scope, curation.retail_partner_id)?;
    Ok(ok(curation.version, curation))
}

/// Decide a curation (`passed` or `rejected`, by the partner's retail users or office staff),
/// or change its notes. A decided curation cannot be decided again (409).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The curation's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = CurationDecision, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The decided curation", body = Curation, headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "Already decided", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/curations/{id}")]
pub async fn decide_curation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<CurationDecision>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let (id, user) = (id.into_inner(), caller.id);
    let decision = body.0;
    check_notes(decision.notes.clone().flatten().as_deref())?;
    let curation = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let current = find_curation(conn, id)?;
            within(scope, current.retail_partner_id)?;
            if_match.check(current.version)?;
            let now = db::now();
            let (status, decided_at, decided_by) = match decision.status {
                None => (current.status.clone(), current.decided_at, current.decided_by),
                Some(CurationStatus::Submitted) => {
                    return Err(AppError::invalid(
                        "status",
                        "invalid_transition",
                        "a decision is passed or rejected",
                    ));
                }
                Some(_) if current.status != CurationStatus::Submitted.as_str() => {
                    return Err(AppError::Conflict(format!("the curation was {} already", current.status)));
                }
                Some(s) => (s.as_str().to_owned(), Some(now), Some(user)),
            };
            let notes = decision.notes.unwrap_or(current.notes.clone());
            diesel::update(curations::table.find(id).filter(curations::version.eq(current.version)))
                .set((
                    curations::status.eq(&status),
                    curations::notes.eq(&notes),
                    curations::decided_at.eq(decided_at),
                    curations::decided_by.eq(decided_by),
                    curations::updated_at.eq(now),
                    curations::version.eq(current.version + 1),
                ))
                .execute(conn)?;
            let after = find_curation(conn, id)?;
            audit::record(conn, user, Action::Update, "curation", id, &audit::diff(&current, &after, &[]))?;
            Ok(after)
        })
    })
    .await?;
    Ok(ok(curation.version, curation))
}

// ---------------------------------------------------------------- placements

/// A product stocked in an outlet; delisting keeps the history.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = placements)]
pub struct Placement {
    /// Id.
    pub id: i64,
    /// The product.
    pub product_id: i64,
    /// The outlet.
    pub outlet_id: i64,
    /// First day on the shelf.
    pub listed_on: NaiveDate,
    /// Last day, once delisted.
    pub delisted_on: Option<NaiveDate>,
    /// Created.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub created_at: NaiveDateTime,
    /// Last changed.
    #[serde(with = "utc")]
    #[schema(value_type = DateTime<Utc>)]
    pub updated_at: NaiveDateTime,
    /// Version; also the `ETag`.
    pub version: i32,
}

/// Placing a product in an outlet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlacement {
    /// The product; it must have passed the curation of the outlet's partner (422 otherwise).
    pub product_id: i64,
    /// The outlet (404 if it is not the caller's partner's).
    pub outlet_id: i64,
    /// First day on the shelf (default today).
    #[serde(default)]
    pub listed_on: Option<NaiveDate>,
}

/// Changing a placement's dates.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementPatch {
    /// First day on the shelf.
    #[serde(default)]
    pub listed_on: Option<NaiveDate>,
    /// Last day on the shelf, or `null` to list it again.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub delisted_on: Option<Option<NaiveDate>>,
}

fn find_placement(conn: &mut DbConnection, id: i64, scope: Option<i64>) -> AppResult<(Placement, Outlet)> {
    let placement: Placement = placements::table.find(id).select(Placement::as_select()).first(conn)?;
    let outlet = find_outlet(conn, placement.outlet_id)?;
    within(scope, outlet.retail_partner_id)?;
    Ok((placement, outlet))
}

/// Filters and paging of the placement list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlacementQuery {
    /// Placements in this partner's outlets.
    pub retail_partner_id: Option<i64>,
    /// Placements in this outlet.
    pub outlet_id: Option<i64>,
    /// Placements of this product.
    pub product_id: Option<i64>,
    /// Placements of this business's products.
    pub business_id: Option<i64>,
    /// Placements in outlets of this district.
    pub district: Option<String>,
    /// Only listed (`true`) or only delisted (`false`) placements.
    pub active: Option<bool>,
    /// `id`, `listed_on` or `updated_at`; `-` for descending (default `id`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

/// Sortable placement columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementSort {
    /// `id`.
    Id,
    /// `listed_on`.
    ListedOn,
    /// `updated_at`.
    UpdatedAt,
}

impl SortField for PlacementSort {
    type Table = placements::table;
    type Row = Placement;
    const ID: Self = PlacementSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[
        ("id", PlacementSort::Id),
        ("listed_on", PlacementSort::ListedOn),
        ("updated_at", PlacementSort::UpdatedAt),
    ];

    crate::sort_columns!(placements;
        PlacementSort::Id => (id, Int),
        PlacementSort::ListedOn => (listed_on, Date),
        PlacementSort::UpdatedAt => (updated_at, Time),
    );
}

impl PlacementQuery {
    fn query(&self, scope: Option<i64>) -> placements::BoxedQuery<'static, db::Db> {
        let mut q = placements::table.into_boxed();
        for partner in [scope, self.retail_partner_id].into_iter().flatten() {
            q =
                q.filter(placements::outlet_id.eq_any(
                    outlets::table.filter(outlets::retail_partner_id.eq(partner)).select(outlets::id),
                ));
        }
        if let Some(d) = &self.district {
            q = q.filter(
                placements::outlet_id
                    .eq_any(outlets::table.filter(outlets::district_code.eq(d.clone())).select(outlets::id)),
            );
        }
        if let Some(o) = self.outlet_id {
            q = q.filter(placements::outlet_id.eq(o));
        }
        if let Some(p) = self.product_id {
            q = q.filter(placements::product_id.eq(p));
        }
        if let Some(b) = self.business_id {
            q = q.filter(
                placements::product_id
                    .eq_any(products::table.filter(products::business_id.eq(b)).select(products::id)),
            );
        }
        match self.active {
            Some(true) => q = q.filter(placements::delisted_on.is_null()),
            Some(false) => q = q.filter(placements::delisted_on.is_not_null()),
            None => {}
        }
        q
    }
}

const PLACEMENT_CSV: &str = "id,product_id,outlet_id,listed_on,delisted_on,created_at,updated_at,version\n";

/// List placements (a retail user sees those in its partner's outlets).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(PlacementQuery),
    responses((status = 200, description = "A page of placements, or all as CSV or NDJSON",
        content((crate::http::list::Page<Placement> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson")))),
)]
#[get("/placements")]
pub async fn list_placements(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PlacementQuery>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let query = query.into_inner();
    let sort = Sort::<PlacementSort>::parse(query.sort.as_deref(), "id")?;
    let params =
        PageParams { limit: query.limit, cursor: query.cursor.clone(), count: query.count == Some(true) };
    let counted = query.clone();
    list::respond(
        &req,
        &state.pool,
        params,
        PLACEMENT_CSV,
        move |conn, after, limit| {
            let mut q = query.query(scope);
            if let Some(cursor) = after {
                q = q.filter(sort.after(cursor)?);
            }
            for (field, dir) in &sort.keys {
                q = q.then_order_by(field.order(*dir));
            }
            let rows: Vec<Placement> = q.limit(limit + 1).select(Placement::as_select()).load(conn)?;
            Ok(page_of(rows, limit, &sort))
        },
        move |conn| Ok(counted.query(scope).count().get_result(conn)?),
    )
    .await
}

/// Place a product in an outlet. The product must have passed the curation of the outlet's own
/// partner (422 otherwise); an outlet outside the caller's partner is 404; a product already
/// listed there is 409.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    request_body = NewPlacement,
    responses(
        (status = 201, description = "The placement", body = Placement, headers(("Location" = String, description = "Its URL"))),
        (status = 409, description = "Already listed in this outlet", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/placements")]
pub async fn create_placement(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewPlacement>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let user = caller.id;
    let new = body.0;
    let placement = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let outlet = find_outlet(conn, new.outlet_id).map_err(|e| match e {
                diesel::result::Error::NotFound => {
                    AppError::invalid("outlet_id", "not_found", "no outlet has this id")
                }
                other => other.into(),
            })?;
            within(scope, outlet.retail_partner_id)?;
            let mut check = Check::default();
            if !diesel::select(diesel::dsl::exists(products::table.find(new.product_id)))
                .get_result::<bool>(conn)?
            {
                check.fail("product_id", "not_found", "no product has this id");
            } else {
                let passed: bool = diesel::select(diesel::dsl::exists(
                    curations::table
                        .filter(curations::product_id.eq(new.product_id))
                        .filter(curations::retail_partner_id.eq(outlet.retail_partner_id))
                        .filter(curations::status.eq(CurationStatus::Passed.as_str())),
                ))
                .get_result(conn)?;
                if !passed {
                    check.fail(
                        "product_id",
                        "not_curated",
                        "the product has not passed the curation of this outlet's partner",
                    );
                }
            }
            let listed_on = new.listed_on.unwrap_or_else(|| db::now().date());
            check.finish(|| Some(()))?;
            let now = db::now();
            let id: i64 = diesel::insert_into(placements::table)
                .values((
                    placements::product_id.eq(new.product_id),
                    placements::outlet_id.eq(new.outlet_id),
                    placements::listed_on.eq(listed_on),
                    placements::created_at.eq(now),
                    placements::updated_at.eq(now),
                ))
                .returning(placements::id)
                .get_result(conn)
                .map_err(|e| match AppError::from(e) {
                    AppError::Conflict(_) => {
                        AppError::Conflict("the product is listed in this outlet already".into())
                    }
                    other => other,
                })?;
            let changes =
                json!({"product_id": new.product_id, "outlet_id": new.outlet_id, "listed_on": listed_on});
            audit::record(conn, user, Action::Create, "placement", id, &changes)?;
            Ok(find_placement(conn, id, scope)?.0)
        })
    })
    .await?;
    Ok(created(format!("/api/v1/placements/{}", placement.id), placement.version, placement))
}

fn change_placement(
    conn: &mut DbConnection,
    user: i64,
    id: i64,
    scope: Option<i64>,
    if_match: &IfMatch,
    listed_on: Option<NaiveDate>,
    delisted_on: Option<Option<NaiveDate>>,
) -> AppResult<Placement> {
    let (current, _) = find_placement(conn, id, scope)?;
    if_match.check(current.version)?;
    let listed = listed_on.unwrap_or(current.listed_on);
    let delisted = delisted_on.unwrap_or(current.delisted_on);
    if delisted.is_some_and(|d| d < listed) {
        return Err(AppError::invalid("delisted_on", "out_of_range", "must be on or after listed_on"));
    }
    diesel::update(placements::table.find(id).filter(placements::version.eq(current.version)))
        .set((
            placements::listed_on.eq(listed),
            placements::delisted_on.eq(delisted),
            placements::updated_at.eq(db::now()),
            placements::version.eq(current.version + 1),
        ))
        .execute(conn)
        .map_err(|e| match AppError::from(e) {
            AppError::Conflict(_) => {
                AppError::Conflict("the product is listed in this outlet already".into())
            }
            other => other,
        })?;
    let (after, _) = find_placement(conn, id, scope)?;
    audit::record(conn, user, Action::Update, "placement", id, &audit::diff(&current, &after, &[]))?;
    Ok(after)
}

/// Change a placement's dates (honours `If-Match`).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The placement's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = PlacementPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed placement", body = Placement, headers(("ETag" = String, description = "The new version")))),
)]
#[patch("/placements/{id}")]
pub async fn update_placement(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<PlacementPatch>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let (id, user, patch) = (id.into_inner(), caller.id, body.0);
    let placement = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            change_placement(conn, user, id, scope, &if_match, patch.listed_on, patch.delisted_on)
        })
    })
    .await?;
    Ok(ok(placement.version, placement))
}

/// Delist a placement: sets `delisted_on` to today and keeps the record (409 if delisted already).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The placement's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses(
        (status = 204, description = "Delisted"),
        (status = 409, description = "Delisted already", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/placements/{id}")]
pub async fn delete_placement(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let (id, user) = (id.into_inner(), caller.id);
    db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let (current, _) = find_placement(conn, id, scope)?;
            if current.delisted_on.is_some() {
                return Err(AppError::Conflict("the placement is delisted already".into()));
            }
            let today = db::now().date().max(current.listed_on);
            change_placement(conn, user, id, scope, &if_match, None, Some(Some(today)))
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
