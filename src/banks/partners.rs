//! Partner banks: the lenders whose programmes businesses apply to. A bank user sees only its
//! own bank.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{scope, utc};
use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::bank_partners;
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::etag::{IfMatch, created, etag};
use crate::http::input::{Check, Field};
use crate::http::patch::merge_patch;
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

type BankRow = (i64, String, String, NaiveDateTime, NaiveDateTime, i32);

fn bank_columns() -> (
    bank_partners::id,
    bank_partners::code,
    bank_partners::name,
    bank_partners::created_at,
    bank_partners::updated_at,
    bank_partners::version,
) {
    use bank_partners::*;
    (id, code, name, created_at, updated_at, version)
}

fn bank_of(row: BankRow) -> BankPartner {
    let (id, code, name, created_at, updated_at, version) = row;
    BankPartner { id, code, name, created_at: utc(created_at), updated_at: utc(updated_at), version }
}

fn find_bank(conn: &mut DbConnection, id: i64) -> QueryResult<BankPartner> {
    bank_partners::table.find(id).select(bank_columns()).first::<BankRow>(conn).map(bank_of)
}

/// A partner bank as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankPartnerInput {
    /// Short code, 2–20 letters, digits or dashes; unique.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "BSI")]
    pub code: Field<String>,
    /// Legal name.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "PT Bank Syariah Indonesia Tbk")]
    pub name: Field<String>,
}

fn check_bank(input: BankPartnerInput) -> AppResult<(String, String)> {
    let mut check = Check::default();
    let code = check.text("code", input.code, 20).map(|c| c.to_uppercase());
    if code
        .as_ref()
        .is_some_and(|c| c.len() < 2 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        check.fail("code", "invalid_format", "must be 2 to 20 letters, digits or dashes");
    }
    let name = check.text("name", input.name, 200);
    check.finish(|| Some((code?, name?)))
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
        let rows: Vec<BankRow> = q.order(bank_partners::id).select(bank_columns()).load(conn)?;
        Ok(rows.into_iter().map(bank_of).collect())
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
    let (code, name) = check_bank(body.0)?;
    let user = caller.id;
    let bank = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let now = db::now();
            let id: i64 = diesel::insert_into(bank_partners::table)
                .values((
                    bank_partners::code.eq(&code),
                    bank_partners::name.eq(&name),
                    bank_partners::created_at.eq(now),
                    bank_partners::updated_at.eq(now),
                ))
                .returning(bank_partners::id)
                .get_result(conn)?;
            audit::record(
                conn,
                user,
                Action::Create,
                "bank_partner",
                id,
                &serde_json::json!({"code": code, "name": name}),
            )?;
            Ok(find_bank(conn, id)?)
        })
    })
    .await?;
    Ok(created(format!("/api/v1/bank-partners/{}", bank.id), bank.version, bank))
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
    let bank = db::run(&state.pool, move |conn| Ok(find_bank(conn, id)?)).await?;
    Ok(HttpResponse::Ok().insert_header(etag(bank.version)).json(bank))
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
        db::write(conn, |conn| {
            if !body.0.is_object() {
                return Err(AppError::invalid("body", "invalid_type", "a merge patch must be a JSON object"));
            }
            let current = find_bank(conn, id)?;
            if_match.check(current.version)?;
            let before = serde_json::json!({"code": current.code, "name": current.name});
            let mut merged = before.clone();
            merge_patch(&mut merged, &body.0);
            let (code, name) = check_bank(crate::http::parse_json(merged.to_string().as_bytes())?)?;
            diesel::update(bank_partners::table.find(id))
                .set((
                    bank_partners::code.eq(&code),
                    bank_partners::name.eq(&name),
                    bank_partners::updated_at.eq(db::now()),
                    bank_partners::version.eq(current.version + 1),
                ))
                .execute(conn)?;
            let after = serde_json::json!({"code": code, "name": name});
            audit::record(
                conn,
                user,
                Action::Update,
                "bank_partner",
                id,
                &audit::diff(&before, &after, &[]),
            )?;
            Ok(find_bank(conn, id)?)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().insert_header(etag(bank.version)).json(bank))
}
