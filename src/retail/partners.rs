//! Retail partners: the modern retail chains whose outlets sell UMKM products. The admin
//! registers and changes them; a retail user sees its own partner only.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::scope;
use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::retail_partners;
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::list::Page;
use crate::http::patch::{merged, require_object};
use crate::state::AppState;

/// A retail partner as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = retail_partners)]
pub struct RetailPartnerRow {
    id: i64,
    code: String,
    name: String,
    brand: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

/// A retail partner (a modern retail chain).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl From<RetailPartnerRow> for RetailPartner {
    fn from(p: RetailPartnerRow) -> Self {
        RetailPartner {
            id: p.id,
            code: p.code,
            name: p.name,
            brand: p.brand,
            created_at: p.created_at.and_utc(),
            updated_at: p.updated_at.and_utc(),
            version: p.version,
        }
    }
}

impl RetailPartnerRow {
    fn record(&self) -> RetailPartnerRecord {
        RetailPartnerRecord { code: self.code.clone(), name: self.name.clone(), brand: self.brand.clone() }
    }
}

/// A retail partner as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetailPartnerInput {
    /// Short code, 2–20 letters, digits or dashes; unique.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 20, example = "ALF")]
    pub code: Field<String>,
    /// Legal name.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, example = "PT Sumber Alfaria Trijaya Tbk")]
    pub name: Field<String>,
    /// Brand.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 100, example = "Alfamart")]
    pub brand: Field<String>,
}

/// A checked retail partner, ready to write.
#[derive(Debug, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = retail_partners)]
struct RetailPartnerRecord {
    code: String,
    name: String,
    brand: String,
}

fn check_partner(input: RetailPartnerInput) -> AppResult<RetailPartnerRecord> {
    let mut check = Check::default();
    let code = check.text("code", input.code, 20);
    if code.as_ref().is_some_and(|c| !crate::domain::codes::is_partner_code(c)) {
        check.fail("code", "invalid_format", "must be 2 to 20 letters, digits or dashes");
    }
    let code = code.map(|c| c.to_uppercase());
    let name = check.text("name", input.name, 200);
    let brand = check.text("brand", input.brand, 100);
    check.finish(|| Some(RetailPartnerRecord { code: code?, name: name?, brand: brand? }))
}

fn find_partner(conn: &mut DbConnection, id: i64) -> QueryResult<RetailPartnerRow> {
    retail_partners::table.find(id).select(RetailPartnerRow::as_select()).first(conn)
}

/// Writes a new partner and its audit entry.
fn insert_partner(
    conn: &mut DbConnection,
    user: i64,
    record: &RetailPartnerRecord,
) -> AppResult<RetailPartnerRow> {
    let id = crate::versioned_insert!(conn, retail_partners, record)?;
    audit::record(conn, user, Action::Create, "retail_partner", id, &audit::snapshot(record, &[]))?;
    Ok(find_partner(conn, id)?)
}

/// Writes a partner's new values if it is still at the version read (412 otherwise), and the
/// audit entry of the change.
fn change_partner(
    conn: &mut DbConnection,
    user: i64,
    current: &RetailPartnerRow,
    record: &RetailPartnerRecord,
) -> AppResult<RetailPartnerRow> {
    crate::versioned_update!(conn, retail_partners, current.id, current.version, record)?;
    let changes = audit::diff(&current.record(), record, &[]);
    audit::record(conn, user, Action::Update, "retail_partner", current.id, &changes)?;
    Ok(find_partner(conn, current.id)?)
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
    let rows = db::run(&state.pool, move |conn| {
        let mut q = retail_partners::table.into_boxed();
        if let Some(own) = scope {
            q = q.filter(retail_partners::id.eq(own));
        }
        Ok(q.order(retail_partners::id).select(RetailPartnerRow::as_select()).load(conn)?)
    })
    .await?;
    let data = rows.into_iter().map(RetailPartner::from).collect();
    Ok(web::Json(Page { data, next_cursor: None, total: None }))
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
    let partner =
        db::run(&state.pool, move |conn| db::write(conn, |conn| insert_partner(conn, user, &record))).await?;
    let partner = RetailPartner::from(partner);
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
    let partner = RetailPartner::from(db::run(&state.pool, move |conn| Ok(find_partner(conn, id)?)).await?);
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
    require_object(&body.0)?;
    let (id, user) = (id.into_inner(), caller.id);
    let partner = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_partner(conn, id)?;
            if_match.check(current.version)?;
            let record = check_partner(merged(&current.record(), &body.0, &[])?)?;
            change_partner(conn, user, &current, &record)
        })
    })
    .await?;
    let partner = RetailPartner::from(partner);
    Ok(ok(partner.version, partner))
}
