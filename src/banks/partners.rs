//! Partner banks: the lenders whose programmes businesses apply to. A bank user sees only its
//! own bank.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::scope;
use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::bank_partners;
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::patch::merged;
use crate::state::AppState;

/// A partner bank.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BankPartner {
    /// Id.
    pub id: i64,
    /// Short code, unique (`BRI`, `BNI`, `MANDIRI`, `BJTM`, `BDL`).
    pub code: String,
    /// Legal name.
    pub name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

/// A partner bank as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bank_partners)]
pub(crate) struct BankPartnerRow {
    pub(crate) id: i64,
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
    pub(crate) version: i32,
}

impl BankPartnerRow {
    fn record(&self) -> BankPartnerRecord {
        BankPartnerRecord { code: self.code.clone(), name: self.name.clone() }
    }
}

impl From<BankPartnerRow> for BankPartner {
    fn from(row: BankPartnerRow) -> Self {
        BankPartner {
            id: row.id,
            code: row.code,
            name: row.name,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            version: row.version,
        }
    }
}

/// A partner bank's checked values, as written.
#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = bank_partners)]
pub(crate) struct BankPartnerRecord {
    code: String,
    name: String,
}

fn find_bank_partner(conn: &mut DbConnection, id: i64) -> QueryResult<BankPartnerRow> {
    bank_partners::table.find(id).select(BankPartnerRow::as_select()).first(conn)
}

/// A partner bank as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankPartnerInput {
    /// Short code, 2–20 letters, digits or dashes; unique.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 20, example = "BSI")]
    pub code: Field<String>,
    /// Legal name.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, example = "PT Bank Syariah Indonesia Tbk")]
    pub name: Field<String>,
}

/// Checks every field of `input` into one 422.
pub(crate) fn check_bank_partner(input: BankPartnerInput) -> AppResult<BankPartnerRecord> {
    let mut check = Check::default();
    let code = check.text("code", input.code, 20);
    if code.as_ref().is_some_and(|c| !crate::domain::codes::is_partner_code(c)) {
        check.fail("code", "invalid_format", "must be 2 to 20 letters, digits or dashes");
    }
    let code = code.map(|c| c.to_uppercase());
    let name = check.text("name", input.name, 200);
    check.finish(|| Some(BankPartnerRecord { code: code?, name: name? }))
}

/// Writes a new partner bank and its audit entry.
pub(crate) fn insert_bank_partner(
    conn: &mut DbConnection,
    user: i64,
    record: &BankPartnerRecord,
) -> AppResult<BankPartnerRow> {
    let id = crate::versioned_insert!(conn, bank_partners, record)?;
    audit::record(conn, user, Action::Create, "bank_partner", id, &audit::snapshot(record, &[]))?;
    Ok(find_bank_partner(conn, id)?)
}

/// Writes `record` over `current` if the row still has `current`'s version (412 otherwise), and
/// the audit entry.
pub(crate) fn change_bank_partner(
    conn: &mut DbConnection,
    user: i64,
    current: &BankPartnerRow,
    record: &BankPartnerRecord,
) -> AppResult<BankPartnerRow> {
    crate::versioned_update!(conn, bank_partners, current.id, current.version, record)?;
    let changes = audit::diff(&current.record(), record, &[]);
    audit::record(conn, user, Action::Update, "bank_partner", current.id, &changes)?;
    Ok(find_bank_partner(conn, current.id)?)
}

/// List partner banks (a bank user sees its own).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    responses((status = 200, description = "The partner banks, by id", body = crate::http::list::Page<BankPartner>)),
)]
#[get("/bank-partners")]
pub async fn list_bank_partners(
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<web::Json<crate::http::list::Page<BankPartner>>> {
    let scope = scope(&caller)?;
    let data = db::run(&state.pool, move |conn| {
        let mut q = bank_partners::table.into_boxed();
        if let Some(own) = scope {
            q = q.filter(bank_partners::id.eq(own));
        }
        let rows: Vec<BankPartnerRow> =
            q.order(bank_partners::id).select(BankPartnerRow::as_select()).load(conn)?;
        Ok(rows.into_iter().map(BankPartner::from).collect())
    })
    .await?;
    Ok(web::Json(crate::http::list::Page { data, next_cursor: None, total: None }))
}

/// Add a partner bank (admin).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    request_body = BankPartnerInput,
    responses(
        (status = 201, description = "The new bank", body = BankPartner, headers(("Location" = String, description = "Its URL"))),
        (status = 409, description = "The code is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/bank-partners")]
pub async fn create_bank_partner(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<BankPartnerInput>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let record = check_bank_partner(body.0)?;
    let user = caller.id;
    let bank =
        db::run(&state.pool, move |conn| db::write(conn, |conn| insert_bank_partner(conn, user, &record)))
            .await?;
    Ok(created(format!("/api/v1/bank-partners/{}", bank.id), bank.version, BankPartner::from(bank)))
}

/// Get a partner bank.
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The bank's id")),
    responses((status = 200, description = "The bank", body = BankPartner, headers(("ETag" = String, description = "The version")))),
)]
#[get("/bank-partners/{id}")]
pub async fn get_bank_partner(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    within(scope(&caller)?, id)?;
    let bank = db::run(&state.pool, move |conn| Ok(find_bank_partner(conn, id)?)).await?;
    Ok(ok(bank.version, BankPartner::from(bank)))
}

/// Change a partner bank (admin; JSON merge patch; honours `If-Match`).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The bank's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = BankPartnerInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed bank", body = BankPartner),
        (status = 409, description = "The code is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/bank-partners/{id}")]
pub async fn update_bank_partner(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let (id, user) = (id.into_inner(), caller.id);
    let bank = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_bank_partner(conn, id)?;
            if_match.check(current.version)?;
            let input = merged(&BankPartner::from(current.clone()), &body.0, &[])?;
            let record = check_bank_partner(input)?;
            change_bank_partner(conn, user, &current, &record)
        })
    })
    .await?;
    Ok(ok(bank.version, BankPartner::from(bank)))
}
