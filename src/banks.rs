//! Partner banks, their financing programmes (KUR above all), the businesses' applications,
//! their eligibility, and the banks' pull of eligible applicants.
//!
//! A `bank` user is bound to one bank: it sees that bank's programmes and the applications to
//! them — only of businesses that consented to bank sharing — and nothing else (404).

use std::collections::{HashMap, HashSet};
use utoipa_actix_web::service_config::ServiceConfig;

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::{applications, bank_partners, businesses, financing_programmes, registrations};
use crate::db::{self, DbConnection};
use crate::domain::classification::Scale;
use crate::domain::financing::{
    self, Applicant, ApplicationStatus, Eligibility, OtherFinancing, ProgrammeKind, Rules,
};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, created, etag};
use crate::http::idempotency::IdempotencyKey;
use crate::http::input::{Check, Field};
use crate::http::list::{self, PageParams, Sort, SortField, page_of};
use crate::http::patch::merge_patch;
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_bank_partners)
        .service(create_bank_partner)
        .service(eligible_applicants)
        .service(get_bank_partner)
        .service(update_bank_partner)
        .service(list_programmes)
        .service(create_programme)
        .service(get_programme)
        .service(update_programme)
        .service(list_applications)
        .service(create_application_handler)
        .service(get_application)
        .service(update_application)
        .service(list_business_applications);
}

/// The bank a caller is confined to: `Some` for bank users, `None` for office staff and viewers.
/// Retail users see none of this (404).
fn scope(caller: &Caller) -> AppResult<Option<i64>> {
    match caller.role {
        Role::Retail => Err(AppError::NotFound),
        Role::Bank => caller.bank_partner_id.map(Some).ok_or(AppError::NotFound),
        _ => Ok(None),
    }
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

// ---------------------------------------------------------------- bank partners

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

// ---------------------------------------------------------------- programmes

/// A financing programme as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeInput {
    /// The lending bank.
    #[serde(default)]
    #[schema(value_type = i64, required = true, example = 1)]
    pub bank_partner_id: Field<i64>,
    /// Name.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "KUR Mikro")]
    pub name: Field<String>,
    /// Kind.
    #[serde(default)]
    #[schema(value_type = ProgrammeKind, required = true)]
    pub kind: Field<ProgrammeKind>,
    /// Smallest amount, rupiah.
    #[serde(default)]
    #[schema(value_type = i64, required = true, minimum = 0, example = 10000001)]
    pub min_amount_idr: Field<i64>,
    /// Largest amount, rupiah; at least the smallest.
    #[serde(default)]
    #[schema(value_type = i64, required = true, minimum = 0, example = 100000000)]
    pub max_amount_idr: Field<i64>,
    /// Yearly interest in basis points (600 = 6 %).
    #[serde(default)]
    #[schema(value_type = i32, required = true, minimum = 0, maximum = 10000, example = 600)]
    pub interest_rate_bp: Field<i32>,
    /// Minimum age of the business in months (0 to 600).
    #[serde(default)]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 600, example = 6)]
    pub min_business_age_months: Field<i32>,
    /// Scales served; empty serves all.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Scale>>)]
    pub eligible_scales: Field<Vec<Scale>>,
    /// A NIB is required.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub requires_nib: Field<bool>,
    /// Open for applications (default true).
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub open: Field<bool>,
}

#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = financing_programmes)]
struct ProgrammeRecord {
    bank_partner_id: i64,
    name: String,
    kind: String,
    min_amount_idr: i64,
    max_amount_idr: i64,
    interest_rate_bp: i32,
    min_business_age_months: i32,
    eligible_scales: String,
    requires_nib: bool,
    open: bool,
}

/// A programme as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = financing_programmes)]
pub struct ProgrammeRow {
    id: i64,
    bank_partner_id: i64,
    name: String,
    kind: String,
    min_amount_idr: i64,
    max_amount_idr: i64,
    interest_rate_bp: i32,
    min_business_age_months: i32,
    eligible_scales: String,
    requires_nib: bool,
    open: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

impl ProgrammeRow {
    fn scales(&self) -> Vec<Scale> {
        self.eligible_scales.split(',').filter_map(Scale::parse).collect()
    }

    fn kind(&self) -> ProgrammeKind {
        serde_json::from_value(Value::String(self.kind.clone())).unwrap_or(ProgrammeKind::Commercial)
    }

    fn rules(&self) -> Rules {
        Rules {
            bank_partner_id: self.bank_partner_id,
            kind: self.kind(),
            min_amount_idr: self.min_amount_idr,
            max_amount_idr: self.max_amount_idr,
            min_business_age_months: self.min_business_age_months,
            eligible_scales: self.scales(),
            requires_nib: self.requires_nib,
        }
    }

    fn record(&self) -> ProgrammeRecord {
        ProgrammeRecord {
            bank_partner_id: self.bank_partner_id,
            name: self.name.clone(),
            kind: self.kind.clone(),
            min_amount_idr: self.min_amount_idr,
            max_amount_idr: self.max_amount_idr,
            interest_rate_bp: self.interest_rate_bp,
            min_business_age_months: self.min_business_age_months,
            eligible_scales: self.eligible_scales.clone(),
            requires_nib: self.requires_nib,
            open: self.open,
        }
    }
}

/// A financing programme.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Programme {
    /// Id.
    pub id: i64,
    /// The lending bank.
    pub bank_partner_id: i64,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ProgrammeKind,
    /// Smallest amount, rupiah.
    pub min_amount_idr: i64,
    /// Largest amount, rupiah.
    pub max_amount_idr: i64,
    /// Yearly interest in basis points.
    pub interest_rate_bp: i32,
    /// Minimum age of the business in months.
    pub min_business_age_months: i32,
    /// Scales served; empty serves all.
    pub eligible_scales: Vec<Scale>,
    /// A NIB is required.
    pub requires_nib: bool,
    /// Open for applications.
    pub open: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl From<ProgrammeRow> for Programme {
    fn from(p: ProgrammeRow) -> Self {
        Programme {
            kind: p.kind(),
            eligible_scales: p.scales(),
            id: p.id,
            bank_partner_id: p.bank_partner_id,
            name: p.name,
            min_amount_idr: p.min_amount_idr,
            max_amount_idr: p.max_amount_idr,
            interest_rate_bp: p.interest_rate_bp,
            min_business_age_months: p.min_business_age_months,
            requires_nib: p.requires_nib,
            open: p.open,
            created_at: utc(p.created_at),
            updated_at: utc(p.updated_at),
            version: p.version,
        }
    }
}

fn find_programme(conn: &mut DbConnection, id: i64) -> QueryResult<ProgrammeRow> {
    financing_programmes::table.find(id).select(ProgrammeRow::as_select()).first(conn)
}

fn check_programme(conn: &mut DbConnection, input: ProgrammeInput) -> AppResult<ProgrammeRecord> {
    let mut check = Check::default();
    let bank = check.required("bank_partner_id", input.bank_partner_id);
    if let Some(b) = bank
        && !diesel::select(diesel::dsl::exists(bank_partners::table.find(b))).get_result::<bool>(conn)?
    {
        check.fail("bank_partner_id", "not_found", "no bank partner has this id");
    }
    let name = check.text("name", input.name, 200);
    let kind = check.required("kind", input.kind);
    let min = check.required("min_amount_idr", input.min_amount_idr);
    let min = check.in_range("min_amount_idr", min, 0..=i64::MAX);
    let max = check.required("max_amount_idr", input.max_amount_idr);
    let max = check.in_range("max_amount_idr", max, 0..=i64::MAX);
    if let (Some(lo), Some(hi)) = (min, max)
        && hi < lo
    {
        check.fail("max_amount_idr", "out_of_range", "must be at least min_amount_idr");
    }
    let rate = check.required("interest_rate_bp", input.interest_rate_bp);
    let rate = check.in_range("interest_rate_bp", rate, 0..=10_000);
    let age = check.optional("min_business_age_months", input.min_business_age_months).unwrap_or(0);
    let age = check.in_range("min_business_age_months", Some(age), 0..=600);
    let mut scales = check.optional("eligible_scales", input.eligible_scales).unwrap_or_default();
    scales.dedup();
    let requires_nib = check.optional("requires_nib", input.requires_nib).unwrap_or(false);
    let open = check.optional("open", input.open).unwrap_or(true);
    check.finish(|| {
        Some(ProgrammeRecord {
            bank_partner_id: bank?,
            name: name?,
            kind: kind?.as_str().to_owned(),
            min_amount_idr: min?,
            max_amount_idr: max?,
            interest_rate_bp: rate?,
            min_business_age_months: age?,
            eligible_scales: scales.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
            requires_nib,
            open,
        })
    })
}

/// Filters of the programme list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProgrammeQuery {
    /// Programmes of this bank.
    pub bank_partner_id: Option<i64>,
    /// Kind.
    pub kind: Option<ProgrammeKind>,
    /// Open (`true`) or closed (`false`) programmes.
    pub open: Option<bool>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

impl ProgrammeQuery {
    fn query(&self, scope: Option<i64>) -> financing_programmes::BoxedQuery<'static, db::Db> {
        use financing_programmes::dsl as p;
        let mut q = financing_programmes::table.into_boxed();
        for bank in [scope, self.bank_partner_id].into_iter().flatten() {
            q = q.filter(p::bank_partner_id.eq(bank));
        }
        if let Some(kind) = self.kind {
            q = q.filter(p::kind.eq(kind.as_str()));
        }
        if let Some(open) = self.open {
            q = q.filter(p::open.eq(open));
        }
        q
    }
}

/// List financing programmes, by id (a bank user sees its own bank's).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(ProgrammeQuery),
    responses((status = 200, description = "A page of programmes", body = crate::http::list::Page<Programme>)),
)]
#[get("/programmes")]
pub async fn list_programmes(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ProgrammeQuery>,
) -> AppResult<web::Json<crate::http::list::Page<Programme>>> {
    let scope = scope(&caller)?;
    let query = query.into_inner();
    let limit = crate::http::list::limit(query.limit)?;
    let after: Option<i64> = query.cursor.as_deref().map(crate::http::list::decode_cursor).transpose()?;
    let page = db::run(&state.pool, move |conn| {
        let total =
            if query.count == Some(true) { Some(query.query(scope).count().get_result(conn)?) } else { None };
        let mut q = query.query(scope);
        if let Some(after) = after {
            q = q.filter(financing_programmes::id.gt(after));
        }
        let rows: Vec<ProgrammeRow> = q
            .order(financing_programmes::id)
            .limit(limit + 1)
            .select(ProgrammeRow::as_select())
            .load(conn)?;
        let (rows, next_cursor) = crate::http::list::paginate(rows, limit, |p| p.id);
        Ok(crate::http::list::Page {
            data: rows.into_iter().map(Programme::from).collect(),
            next_cursor,
            total,
        })
    })
    .await?;
    Ok(web::Json(page))
}

/// Create a financing programme (office staff).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    request_body = ProgrammeInput,
    responses((status = 201, description = "The new programme", body = Programme, headers(("Location" = String, description = "Its URL")))),
)]
#[post("/programmes")]
pub async fn create_programme(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ProgrammeInput>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let user = caller.id;
    let programme = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let record = check_programme(conn, body.0)?;
            let now = db::now();
            let id: i64 = diesel::insert_into(financing_programmes::table)
                .values((
                    &record,
                    financing_programmes::created_at.eq(now),
                    financing_programmes::updated_at.eq(now),
                ))
                .returning(financing_programmes::id)
                .get_result(conn)?;
            audit::record(conn, user, Action::Create, "programme", id, &audit::snapshot(&record, &[]))?;
            Ok(Programme::from(find_programme(conn, id)?))
        })
    })
    .await?;
    Ok(created(format!("/api/v1/programmes/{}", programme.id), programme.version, programme))
}

/// Get a financing programme.
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The programme's id")),
    responses((status = 200, description = "The programme", body = Programme, headers(("ETag" = String, description = "The version")))),
)]
#[get("/programmes/{id}")]
pub async fn get_programme(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let programme = db::run(&state.pool, move |conn| Ok(find_programme(conn, id)?)).await?;
    within(scope, programme.bank_partner_id)?;
    Ok(HttpResponse::Ok().insert_header(etag(programme.version)).json(Programme::from(programme)))
}

/// Change a financing programme (office staff; JSON merge patch; honours `If-Match`).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The programme's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = ProgrammeInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed programme", body = Programme, headers(("ETag" = String, description = "The new version")))),
)]
#[patch("/programmes/{id}")]
pub async fn update_programme(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let programme = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            if !body.0.is_object() {
                return Err(AppError::invalid("body", "invalid_type", "a merge patch must be a JSON object"));
            }
            let current = find_programme(conn, id)?;
            if_match.check(current.version)?;
            let before = current.record();
            let mut merged =
                serde_json::to_value(Programme::from(current.clone())).map_err(AppError::internal)?;
            if let Value::Object(map) = &mut merged {
                for read_only in ["id", "created_at", "updated_at", "version"] {
                    map.remove(read_only);
                }
            }
            merge_patch(&mut merged, &body.0);
            let record = check_programme(conn, crate::http::parse_json(merged.to_string().as_bytes())?)?;
            diesel::update(
                financing_programmes::table
                    .find(id)
                    .filter(financing_programmes::version.eq(current.version)),
            )
            .set((
                &record,
                financing_programmes::updated_at.eq(db::now()),
                financing_programmes::version.eq(current.version + 1),
            ))
            .execute(conn)?;
            audit::record(conn, user, Action::Update, "programme", id, &audit::diff(&before, &record, &[]))?;
            Ok(Programme::from(find_programme(conn, id)?))
        })
    })
    .await?;
    Ok(HttpResponse::Ok().insert_header(etag(programme.version)).json(programme))
}

// ---------------------------------------------------------------- applications

/// An application as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = applications)]
pub struct ApplicationRow {
    id: i64,
    business_id: i64,
    programme_id: i64,
    bank_partner_id: i64,
    amount_requested_idr: i64,
    purpose: Option<String>,
    status: String,
    amount_approved_idr: Option<i64>,
    bank_reference: Option<String>,
    financing_ends_on: Option<NaiveDate>,
    decided_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

impl ApplicationRow {
    fn status(&self) -> ApplicationStatus {
        ApplicationStatus::parse(&self.status).unwrap_or(ApplicationStatus::Submitted)
    }
}

/// An application, with the server's eligibility verdict.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Application {
    /// Id.
    pub id: i64,
    /// The applicant.
    pub business_id: i64,
    /// The programme.
    pub programme_id: i64,
    /// The programme's bank.
    pub bank_partner_id: i64,
    /// Amount asked for, rupiah.
    pub amount_requested_idr: i64,
    /// What the money is for.
    pub purpose: Option<String>,
    /// Where it stands.
    pub status: ApplicationStatus,
    /// Amount approved by the bank, rupiah.
    pub amount_approved_idr: Option<i64>,
    /// The bank's own reference.
    pub bank_reference: Option<String>,
    /// When the financing ends (set by the bank); until then it counts as active financing.
    pub financing_ends_on: Option<NaiveDate>,
    /// When the bank decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// The programme's rules checked against the business now.
    pub eligibility: Eligibility,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

fn application_of(a: ApplicationRow, eligibility: Eligibility) -> Application {
    Application {
        status: a.status(),
        id: a.id,
        business_id: a.business_id,
        programme_id: a.programme_id,
        bank_partner_id: a.bank_partner_id,
        amount_requested_idr: a.amount_requested_idr,
        purpose: a.purpose,
        amount_approved_idr: a.amount_approved_idr,
        bank_reference: a.bank_reference,
        financing_ends_on: a.financing_ends_on,
        decided_at: a.decided_at.map(utc),
        eligibility,
        created_at: utc(a.created_at),
        updated_at: utc(a.updated_at),
        version: a.version,
    }
}

/// What eligibility needs of a business, from its row.
#[derive(Debug, Clone, Queryable)]
struct ApplicantRow {
    id: i64,
    status: String,
    consented: Option<NaiveDateTime>,
    established_on: Option<NaiveDate>,
    scale: Option<String>,
    nib: Option<String>,
    npwp: Option<String>,
}

/// The verdicts for `apps`, loading what they need in a few batched queries.
fn verdicts(conn: &mut DbConnection, apps: &[ApplicationRow]) -> AppResult<Vec<Eligibility>> {
    let business_ids: Vec<i64> =
        apps.iter().map(|a| a.business_id).collect::<HashSet<_>>().into_iter().collect();
    let programme_ids: Vec<i64> =
        apps.iter().map(|a| a.programme_id).collect::<HashSet<_>>().into_iter().collect();
    let mut applicants: HashMap<i64, ApplicantRow> = HashMap::new();
    // Per business: its approved or disbursed applications, by application id.
    let mut others: HashMap<i64, Vec<(i64, OtherFinancing)>> = HashMap::new();
    let mut trained: HashSet<i64> = HashSet::new();
    for chunk in business_ids.chunks(500) {
        let rows: Vec<ApplicantRow> = businesses::table
            .filter(businesses::id.eq_any(chunk))
            .select((
                businesses::id,
                businesses::status,
                businesses::consented_to_bank_sharing_at,
                businesses::established_on,
                businesses::scale,
                businesses::nib,
                businesses::npwp,
            ))
            .load(conn)?;
        applicants.extend(rows.into_iter().map(|r| (r.id, r)));
        let financing: Vec<(i64, i64, i64, Option<NaiveDate>)> = applications::table
            .filter(applications::business_id.eq_any(chunk))
            .filter(applications::status.eq_any(["approved", "disbursed"]))
            .select((
                applications::business_id,
                applications::id,
                applications::bank_partner_id,
                applications::financing_ends_on,
            ))
            .load(conn)?;
        for (business, id, bank, ends) in financing {
            let other = OtherFinancing { bank_partner_id: bank, active_status: true, ends_on: ends };
            others.entry(business).or_default().push((id, other));
        }
        trained.extend(
            registrations::table
                .filter(registrations::business_id.eq_any(chunk))
                .filter(registrations::status.eq("attended"))
                .select(registrations::business_id)
                .load::<i64>(conn)?,
        );
    }
    let programmes: HashMap<i64, Rules> = financing_programmes::table
        .filter(financing_programmes::id.eq_any(&programme_ids))
        .select(ProgrammeRow::as_select())
        .load::<ProgrammeRow>(conn)?
        .into_iter()
        .map(|p| (p.id, p.rules()))
        .collect();
    let today = db::now().date();
    apps.iter()
        .map(|a| {
            let b = applicants.get(&a.business_id).ok_or_else(|| AppError::internal("applicant missing"))?;
            let rules =
                programmes.get(&a.programme_id).ok_or_else(|| AppError::internal("programme missing"))?;
            let applicant = Applicant {
                active: b.status == "active",
                consented: b.consented.is_some(),
                established_on: b.established_on,
                scale: b.scale.as_deref().and_then(Scale::parse),
                has_nib: b.nib.is_some(),
                has_npwp: b.npwp.is_some(),
                attended_training: trained.contains(&a.business_id),
            };
            let other: Vec<OtherFinancing> = others
                .get(&a.business_id)
                .into_iter()
                .flatten()
                .filter(|(id, _)| *id != a.id)
                .map(|(_, other)| other.clone())
                .collect();
            Ok(financing::eligibility(&applicant, rules, a.amount_requested_idr, &other, today))
        })
        .collect()
}

fn with_verdicts(conn: &mut DbConnection, rows: Vec<ApplicationRow>) -> AppResult<Vec<Application>> {
    let verdicts = verdicts(conn, &rows)?;
    Ok(rows.into_iter().zip(verdicts).map(|(a, e)| application_of(a, e)).collect())
}

/// Applications a caller may see: a bank sees its own, of consenting businesses only.
fn visible(scope: Option<i64>) -> applications::BoxedQuery<'static, db::Db> {
    let mut q = applications::table.into_boxed();
    if let Some(bank) = scope {
        // A correlated EXISTS (one primary-key probe per application) rather than `IN (all
        // consenting businesses)`: both planners can then walk the (bank, updated_at, id) index
        // in page order and stop after a page, instead of reading every consenting business.
        q = q.filter(applications::bank_partner_id.eq(bank)).filter(diesel::dsl::exists(
            businesses::table
                .filter(businesses::id.eq(applications::business_id))
                .filter(businesses::consented_to_bank_sharing_at.is_not_null()),
        ));
    }
    q
}

fn find_application(conn: &mut DbConnection, id: i64, scope: Option<i64>) -> AppResult<ApplicationRow> {
    Ok(visible(scope).filter(applications::id.eq(id)).select(ApplicationRow::as_select()).first(conn)?)
}

/// A new application, filed by office staff for a business.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// The applicant.
    pub business_id: i64,
    /// The programme (open).
    pub programme_id: i64,
    /// Amount asked for, rupiah (> 0).
    pub amount_requested_idr: i64,
    /// What the money is for.
    #[serde(default)]
    pub purpose: Option<String>,
}

fn create_application(conn: &mut DbConnection, user: i64, new: &NewApplication) -> AppResult<Application> {
    let mut check = Check::default();
    if !diesel::select(diesel::dsl::exists(businesses::table.find(new.business_id)))
        .get_result::<bool>(conn)?
    {
        check.fail("business_id", "not_found", "no business has this id");
    }
    let programme = find_programme(conn, new.programme_id).optional()?;
    match &programme {
        None => check.fail("programme_id", "not_found", "no programme has this id"),
        Some(p) if !p.open => check.fail("programme_id", "closed", "the programme is closed"),
        Some(_) => {}
    }
    if new.amount_requested_idr <= 0 {
        check.fail("amount_requested_idr", "out_of_range", "must be more than 0");
    }
    if new.purpose.as_ref().is_some_and(|p| p.chars().count() > 1000) {
        check.fail("purpose", "too_long", "must be at most 1000 characters");
    }
    let programme = check.finish(|| programme)?;
    let now = db::now();
    let id: i64 = diesel::insert_into(applications::table)
        .values((
            applications::business_id.eq(new.business_id),
            applications::programme_id.eq(new.programme_id),
            applications::bank_partner_id.eq(programme.bank_partner_id),
            applications::amount_requested_idr.eq(new.amount_requested_idr),
            applications::purpose.eq(&new.purpose),
            applications::status.eq(ApplicationStatus::Submitted.as_str()),
            applications::created_at.eq(now),
            applications::updated_at.eq(now),
        ))
        .returning(applications::id)
        .get_result(conn)?;
    let row = find_application(conn, id, None)?;
    audit::record(conn, user, Action::Create, "application", id, &audit::snapshot(&row, &[]))?;
    Ok(with_verdicts(conn, vec![row])?.remove(0))
}

/// File an application for a business (office staff). `Idempotency-Key` makes a retry return
/// the first answer. The answer carries the eligibility verdict.
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer")),
    request_body = NewApplication,
    responses((status = 201, description = "The application", body = Application,
        headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "The version")))),
)]
#[post("/applications")]
pub async fn create_application_handler(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let new: NewApplication = crate::http::parse_json(body.0.to_string().as_bytes())?;
    let user = caller.id;
    create::once(&state.pool, user, "POST /applications", key, body.0, move |conn| {
        let application = create_application(conn, user, &new)?;
        Ok(Created {
            location: format!("/api/v1/applications/{}", application.id),
            version: application.version,
            body: serde_json::to_value(application).map_err(AppError::internal)?,
        })
    })
    .await
}

/// Filters, sort and paging of application lists.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApplicationQuery {
    /// Applications of this business.
    pub business_id: Option<i64>,
    /// Applications to this programme.
    pub programme_id: Option<i64>,
    /// Applications to this bank.
    pub bank_partner_id: Option<i64>,
    /// Status.
    pub status: Option<ApplicationStatus>,
    /// Changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// `id` or `updated_at`, `-` for descending (default `id`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

impl ApplicationQuery {
    fn query(&self, scope: Option<i64>) -> applications::BoxedQuery<'static, db::Db> {
        let mut q = visible(scope);
        if let Some(b) = self.business_id {
            q = q.filter(applications::business_id.eq(b));
        }
        if let Some(p) = self.programme_id {
            q = q.filter(applications::programme_id.eq(p));
        }
        if let Some(b) = self.bank_partner_id {
            q = q.filter(applications::bank_partner_id.eq(b));
        }
        if let Some(s) = self.status {
            q = q.filter(applications::status.eq(s.as_str()));
        }
        if let Some(since) = self.updated_since {
            q = q.filter(applications::updated_at.ge(since.naive_utc()));
        }
        q
    }
}

/// Sortable application columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationSort {
    /// `id`.
    Id,
    /// `updated_at`.
    UpdatedAt,
}

impl SortField for ApplicationSort {
    type Table = applications::table;
    type Row = ApplicationRow;
    const ID: Self = ApplicationSort::Id;
    const ALL: &'static [(&'static str, Self)] =
        &[("id", ApplicationSort::Id), ("updated_at", ApplicationSort::UpdatedAt)];

    crate::sort_columns!(applications;
        ApplicationSort::Id => (id, Int),
        ApplicationSort::UpdatedAt => (updated_at, Time),
    );
}

async fn list(
    state: &AppState,
    scope: Option<i64>,
    query: ApplicationQuery,
) -> AppResult<web::Json<crate::http::list::Page<Application>>> {
    let sort = Sort::<ApplicationSort>::parse(query.sort.as_deref(), "id")?;
    let limit = crate::http::list::limit(query.limit)?;
    let page = db::run(&state.pool, move |conn| {
        let total =
            if query.count == Some(true) { Some(query.query(scope).count().get_result(conn)?) } else { None };
        let mut q = query.query(scope);
        if let Some(cursor) = &query.cursor {
            q = q.filter(sort.after(cursor)?);
        }
        for (field, dir) in &sort.keys {
            q = q.then_order_by(field.order(*dir));
        }
        let rows: Vec<ApplicationRow> = q.limit(limit + 1).select(ApplicationRow::as_select()).load(conn)?;
        let (rows, next_cursor) = page_of(rows, limit, &sort);
        Ok(crate::http::list::Page { data: with_verdicts(conn, rows)?, next_cursor, total })
    })
    .await?;
    Ok(web::Json(page))
}

/// List applications with their eligibility (a bank user sees its own bank's, of consenting
/// businesses only).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(ApplicationQuery),
    responses((status = 200, description = "A page of applications", body = crate::http::list::Page<Application>)),
)]
#[get("/applications")]
pub async fn list_applications(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ApplicationQuery>,
) -> AppResult<web::Json<crate::http::list::Page<Application>>> {
    let scope = scope(&caller)?;
    list(&state, scope, query.into_inner()).await
}

/// Paging of a business's applications.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BusinessApplicationsQuery {
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List a business's applications (404 if there is no such business; a bank sees its own
/// applications of a consenting business, and 404 for any other business).
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The business's id"), BusinessApplicationsQuery),
    responses((status = 200, description = "A page of the business's applications", body = crate::http::list::Page<Application>)),
)]
#[get("/businesses/{id}/applications")]
pub async fn list_business_applications(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<BusinessApplicationsQuery>,
) -> AppResult<web::Json<crate::http::list::Page<Application>>> {
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let known = db::run(&state.pool, move |conn| {
        let exists = match scope {
            None => {
                diesel::select(diesel::dsl::exists(businesses::table.find(id))).get_result::<bool>(conn)?
            }
            Some(_) => {
                visible(scope).filter(applications::business_id.eq(id)).count().get_result::<i64>(conn)? > 0
            }
        };
        Ok(exists)
    })
    .await?;
    if !known {
        return Err(AppError::NotFound);
    }
    let q = query.into_inner();
    list(
        &state,
        scope,
        ApplicationQuery { business_id: Some(id), limit: q.limit, cursor: q.cursor, ..Default::default() },
    )
    .await
}

/// Get an application with its eligibility.
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The application's id")),
    responses((status = 200, description = "The application", body = Application, headers(("ETag" = String, description = "The version")))),
)]
#[get("/applications/{id}")]
pub async fn get_application(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let application = db::run(&state.pool, move |conn| {
        let row = find_application(conn, id, scope)?;
        Ok(with_verdicts(conn, vec![row])?.remove(0))
    })
    .await?;
    Ok(HttpResponse::Ok().insert_header(etag(application.version)).json(application))
}

/// A change to an application: the bank's decision, or the applicant's withdrawal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPatch {
    /// New status. Banks move their applications to `in_review`, `approved`, `rejected` and
    /// `disbursed`; office staff withdraw (`withdrawn`). An illegal transition is 409.
    #[serde(default)]
    pub status: Option<ApplicationStatus>,
    /// Amount approved (with `approved`): more than 0, at most the programme's maximum.
    #[serde(default)]
    pub amount_approved_idr: Option<i64>,
    /// The bank's own reference.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<String>)]
    pub bank_reference: Option<Option<String>>,
    /// When the financing ends.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub financing_ends_on: Option<Option<NaiveDate>>,
    /// What the money is for (office staff, while submitted).
    #[serde(default)]
    pub purpose: Option<String>,
}

fn change_application(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: Option<i64>,
    id: i64,
    if_match: &IfMatch,
    patch: ApplicationPatch,
) -> AppResult<Application> {
    let current = find_application(conn, id, scope)?;
    if_match.check(current.version)?;
    let bank_side = caller.role == Role::Bank;
    let office_side = matches!(caller.role, Role::Officer);
    if bank_side && patch.purpose.is_some() {
        return Err(AppError::invalid(
            "purpose",
            "forbidden",
            "the applicant's purpose is not the bank's to change",
        ));
    }
    if office_side
        && (patch.amount_approved_idr.is_some()
            || patch.bank_reference.is_some()
            || patch.financing_ends_on.is_some())
    {
        return Err(AppError::Forbidden);
    }
    let mut status = current.status();
    let mut decided_at = current.decided_at;
    if let Some(to) = patch.status {
        if (bank_side && !to.is_bank_decision()) || (office_side && to != ApplicationStatus::Withdrawn) {
            return Err(AppError::Forbidden);
        }
        if !status.can_become(to) {
            return Err(AppError::Conflict(format!(
                "an application cannot go from {} to {}",
                status.as_str(),
                to.as_str()
            )));
        }
        if matches!(to, ApplicationStatus::Approved | ApplicationStatus::Rejected) {
            decided_at = Some(db::now());
        }
        status = to;
    }
    let programme = find_programme(conn, current.programme_id)?;
    let approved = patch.amount_approved_idr.or(current.amount_approved_idr);
    if let Some(amount) = patch.amount_approved_idr
        && !(1..=programme.max_amount_idr).contains(&amount)
    {
        return Err(AppError::invalid(
            "amount_approved_idr",
            "out_of_range",
            format!("must be between 1 and the programme's maximum of {}", programme.max_amount_idr),
        ));
    }
    if status == ApplicationStatus::Approved && approved.is_none() {
        return Err(AppError::invalid("amount_approved_idr", "required", "is required to approve"));
    }
    let purpose = match patch.purpose {
        Some(p) if current.status() != ApplicationStatus::Submitted => {
            let _ = p;
            return Err(AppError::Conflict(
                "the purpose can change only while the application is submitted".into(),
            ));
        }
        Some(p) if p.chars().count() > 1000 => {
            return Err(AppError::invalid("purpose", "too_long", "must be at most 1000 characters"));
        }
        Some(p) => Some(p),
        None => current.purpose.clone(),
    };
    let reference = patch.bank_reference.unwrap_or(current.bank_reference.clone());
    if reference.as_ref().is_some_and(|r| r.chars().count() > 100) {
        return Err(AppError::invalid("bank_reference", "too_long", "must be at most 100 characters"));
    }
    diesel::update(applications::table.find(id).filter(applications::version.eq(current.version)))
        .set((
            applications::status.eq(status.as_str()),
            applications::amount_approved_idr.eq(approved),
            applications::bank_reference.eq(reference),
            applications::financing_ends_on.eq(patch.financing_ends_on.unwrap_or(current.financing_ends_on)),
            applications::purpose.eq(purpose),
            applications::decided_at.eq(decided_at),
            applications::updated_at.eq(db::now()),
            applications::version.eq(current.version + 1),
        ))
        .execute(conn)?;
    let after = find_application(conn, id, scope)?;
    audit::record(conn, caller.id, Action::Update, "application", id, &audit::diff(&current, &after, &[]))?;
    Ok(with_verdicts(conn, vec![after])?.remove(0))
}

/// Move an application (JSON merge patch; honours `If-Match`): banks review, approve, reject
/// and disburse their own applications; office staff withdraw. Illegal transitions are 409 and
/// change nothing.
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The application's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = ApplicationPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed application", body = Application, headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "The transition is not allowed", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/applications/{id}")]
pub async fn update_application(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<ApplicationPatch>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin, Role::Officer, Role::Bank])?;
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let application = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| change_application(conn, &caller, scope, id, &if_match, body.0))
    })
    .await?;
    Ok(HttpResponse::Ok().insert_header(etag(application.version)).json(application))
}

// ---------------------------------------------------------------- the banks' pull

/// An eligible applicant as a bank checks it: the application and the applicant's data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EligibleApplicant {
    /// The application.
    pub application_id: i64,
    /// The programme.
    pub programme_id: i64,
    /// Amount asked for, rupiah.
    pub amount_requested_idr: i64,
    /// What the money is for.
    pub purpose: Option<String>,
    /// The application's status.
    pub status: ApplicationStatus,
    /// Amount approved, rupiah.
    pub amount_approved_idr: Option<i64>,
    /// The bank's reference.
    pub bank_reference: Option<String>,
    /// The applicant.
    pub business_id: i64,
    /// Business name.
    pub business_name: String,
    /// Owner's NIK (the applicant consented to share it with partner banks).
    pub owner_nik: String,
    /// Owner's name.
    pub owner_name: String,
    /// Address.
    pub address: String,
    /// Village.
    pub village: Option<String>,
    /// District code.
    pub district_code: String,
    /// NIB.
    pub nib: Option<String>,
    /// NPWP.
    pub npwp: Option<String>,
    /// KBLI 2020 code.
    pub kbli: String,
    /// Start date.
    pub established_on: Option<NaiveDate>,
    /// Annual sales, rupiah.
    pub annual_revenue_idr: Option<i64>,
    /// Capital, rupiah.
    pub capital_idr: Option<i64>,
    /// Workers.
    pub employees: Option<i32>,
    /// PP 7/2021 scale.
    pub scale: Option<Scale>,
    /// When the application last changed (the pull's order and `updated_since`).
    pub updated_at: DateTime<Utc>,
}

/// Paging of the pull.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// Only applications changed at or after this time: the incremental pull.
    pub updated_since: Option<DateTime<Utc>>,
    /// Only applications with this status.
    pub status: Option<ApplicationStatus>,
    /// Rows per page, 1 to 500 (default 50). Ignored by CSV and NDJSON exports.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Queryable)]
struct ApplicantData {
    id: i64,
    name: String,
    owner_nik: String,
    owner_name: String,
    address: String,
    village: Option<String>,
    district_code: String,
    nib: Option<String>,
    npwp: Option<String>,
    kbli: String,
    established_on: Option<NaiveDate>,
    annual_revenue_idr: Option<i64>,
    capital_idr: Option<i64>,
    employees: Option<i32>,
    scale: Option<String>,
}

/// One page of the pull: eligible applications to `bank`'s open programmes, by (updated_at, id).
fn pull_page(
    conn: &mut DbConnection,
    bank: i64,
    filter: &(Option<DateTime<Utc>>, Option<ApplicationStatus>),
    sort: &Sort<ApplicationSort>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<EligibleApplicant>, Option<String>)> {
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_owned);
    // Ineligible applications are skipped after the query, so a page may need several reads.
    loop {
        let mut q = visible(Some(bank)).filter(diesel::dsl::exists(
            financing_programmes::table
                .filter(financing_programmes::id.eq(applications::programme_id))
                .filter(financing_programmes::open.eq(true)),
        ));
        if let Some(since) = filter.0 {
            q = q.filter(applications::updated_at.ge(since.naive_utc()));
        }
        if let Some(status) = filter.1 {
            q = q.filter(applications::status.eq(status.as_str()));
        }
        if let Some(c) = &cursor {
            q = q.filter(sort.after(c)?);
        }
        for (field, dir) in &sort.keys {
            q = q.then_order_by(field.order(*dir));
        }
        let wanted = limit - i64::try_from(out.len()).unwrap_or(0);
        let rows: Vec<ApplicationRow> = q.limit(wanted + 1).select(ApplicationRow::as_select()).load(conn)?;
        let (rows, next) = page_of(rows, wanted, sort);
        let verdicts = verdicts(conn, &rows)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.business_id).collect();
        let mut data: HashMap<i64, ApplicantData> = HashMap::new();
        for chunk in ids.chunks(500) {
            let found: Vec<ApplicantData> = businesses::table
                .filter(businesses::id.eq_any(chunk))
                .select((
                    businesses::id,
                    businesses::name,
                    businesses::owner_nik,
                    businesses::owner_name,
                    businesses::address,
                    businesses::village,
                    businesses::district_code,
                    businesses::nib,
                    businesses::npwp,
                    businesses::kbli,
                    businesses::established_on,
                    businesses::annual_revenue_idr,
                    businesses::capital_idr,
                    businesses::employees,
                    businesses::scale,
                ))
                .load(conn)?;
            data.extend(found.into_iter().map(|b| (b.id, b)));
        }
        for (a, verdict) in rows.into_iter().zip(verdicts) {
            let Some(b) = data.get(&a.business_id).filter(|_| verdict.eligible) else { continue };
            out.push(EligibleApplicant {
                status: a.status(),
                application_id: a.id,
                programme_id: a.programme_id,
                amount_requested_idr: a.amount_requested_idr,
                purpose: a.purpose,
                amount_approved_idr: a.amount_approved_idr,
                bank_reference: a.bank_reference,
                business_id: b.id,
                business_name: b.name.clone(),
                owner_nik: b.owner_nik.clone(),
                owner_name: b.owner_name.clone(),
                address: b.address.clone(),
                village: b.village.clone(),
                district_code: b.district_code.clone(),
                nib: b.nib.clone(),
                npwp: b.npwp.clone(),
                kbli: b.kbli.clone(),
                established_on: b.established_on,
                annual_revenue_idr: b.annual_revenue_idr,
                capital_idr: b.capital_idr,
                employees: b.employees,
                scale: b.scale.as_deref().and_then(Scale::parse),
                updated_at: utc(a.updated_at),
            });
        }
        match next {
            Some(next) if i64::try_from(out.len()).unwrap_or(0) < limit => cursor = Some(next),
            Some(next) => return Ok((out, Some(next))),
            None => return Ok((out, None)),
        }
    }
}

const PULL_CSV: &str = "application_id,programme_id,amount_requested_idr,purpose,status,amount_approved_idr,\
bank_reference,business_id,business_name,owner_nik,owner_name,address,village,district_code,nib,npwp,kbli,\
established_on,annual_revenue_idr,capital_idr,employees,scale,updated_at\n";

/// The banks' pull: the eligible applications to this bank's open programmes, with the
/// applicant data a bank checks, only of businesses that consented to bank sharing. Ordered by
/// `updated_at` then id; `updated_since` gives an incremental pull. `Accept: text/csv` or
/// `application/x-ndjson` streams the whole batch. A bank user may pull only its own bank.
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The bank's id"), PullQuery),
    responses((status = 200, description = "A page of eligible applicants, or all of them as CSV or NDJSON",
        content((crate::http::list::Page<EligibleApplicant> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson")))),
)]
#[get("/bank-partners/{id}/eligible-applicants")]
pub async fn eligible_applicants(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<PullQuery>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin, Role::Officer, Role::Bank])?;
    let bank = id.into_inner();
    within(scope(&caller)?, bank)?;
    let exists = db::run(&state.pool, move |conn| {
        Ok(diesel::select(diesel::dsl::exists(bank_partners::table.find(bank))).get_result::<bool>(conn)?)
    })
    .await?;
    if !exists {
        return Err(AppError::NotFound);
    }
    let query = query.into_inner();
    let sort = Sort::<ApplicationSort>::parse(Some("updated_at,id"), "updated_at,id")?;
    let filter = (query.updated_since, query.status);
    let params = PageParams { limit: query.limit, cursor: query.cursor, count: false };
    list::respond(
        &req,
        &state.pool,
        params,
        PULL_CSV,
        move |conn, after, limit| pull_page(conn, bank, &filter, &sort, after, limit),
        |_| Ok(0),
    )
    .await
}
