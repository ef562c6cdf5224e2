//! Financing programmes (KUR above all): a bank's terms, which the eligibility of every
//! application to it is checked against. A bank user sees only its own bank's.

use std::collections::HashSet;

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::scope;
use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::{bank_partners, financing_programmes};
use crate::db::{self, DbConnection};
use crate::domain::classification::Scale;
use crate::domain::financing::{ProgrammeKind, Rules};
use crate::error::AppResult;
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::list::{self, PageParams, Sort};
use crate::http::patch::{merged, refuse_changes};
use crate::state::AppState;

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
    #[schema(value_type = String, required = true, max_length = 200, example = "KUR Mikro")]
    pub name: Field<String>,
    /// Kind.
    #[serde(default)]
    #[schema(value_type = ProgrammeKind, required = true)]
    pub kind: Field<ProgrammeKind>,
    /// Smallest amount, rupiah. A KUR programme lends within its kind's plafond band: super
    /// mikro 1 to 10,000,000; mikro 10,000,001 to 100,000,000; kecil 100,000,001 to
    /// 500,000,000 (422 `out_of_range` outside it); commercial credit any amount.
    #[serde(default)]
    #[schema(value_type = i64, required = true, minimum = 0, example = 10000001)]
    pub min_amount_idr: Field<i64>,
    /// Largest amount, rupiah; at least the smallest, and within the kind's plafond band.
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

/// A programme's checked values, as written.
#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = financing_programmes)]
pub(crate) struct ProgrammeRecord {
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
pub(crate) struct ProgrammeRow {
    pub(crate) id: i64,
    pub(crate) bank_partner_id: i64,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) min_amount_idr: i64,
    pub(crate) max_amount_idr: i64,
    pub(crate) interest_rate_bp: i32,
    pub(crate) min_business_age_months: i32,
    pub(crate) eligible_scales: String,
    pub(crate) requires_nib: bool,
    pub(crate) open: bool,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
    pub(crate) version: i32,
}

impl ProgrammeRow {
    fn scales(&self) -> Vec<Scale> {
        self.eligible_scales.split(',').filter_map(Scale::parse).collect()
    }

    fn kind(&self) -> ProgrammeKind {
        serde_json::from_value(Value::String(self.kind.clone())).unwrap_or(ProgrammeKind::Commercial)
    }

    pub(crate) fn rules(&self) -> Rules {
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
            created_at: p.created_at.and_utc(),
            updated_at: p.updated_at.and_utc(),
            version: p.version,
        }
    }
}

pub(crate) fn find_programme(conn: &mut DbConnection, id: i64) -> QueryResult<ProgrammeRow> {
    financing_programmes::table.find(id).select(ProgrammeRow::as_select()).first(conn)
}

/// Checks every field of `input`, the bank partner's existence included, into one 422.
pub(crate) fn check_programme(conn: &mut DbConnection, input: ProgrammeInput) -> AppResult<ProgrammeRecord> {
    let mut check = Check::default();
    let bank = check.required("bank_partner_id", input.bank_partner_id);
    if let Some(b) = bank
        && !diesel::select(diesel::dsl::exists(bank_partners::table.find(b))).get_result::<bool>(conn)?
    {
        check.fail("bank_partner_id", "not_found", "no bank partner has this id");
    }
    let name = check.text("name", input.name, 200);
    let kind = check.required("kind", input.kind);
    // A KUR programme lends within its kind's plafond band; commercial credit anything.
    let band = kind.and_then(ProgrammeKind::plafond).unwrap_or(0..=i64::MAX);
    let min = check.required("min_amount_idr", input.min_amount_idr);
    let min = check.in_range("min_amount_idr", min, band.clone());
    let max = check.required("max_amount_idr", input.max_amount_idr);
    let max = check.in_range("max_amount_idr", max, band);
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
    let mut seen = HashSet::new();
    scales.retain(|scale| seen.insert(*scale));
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

/// Writes a new programme and its audit entry.
pub(crate) fn insert_programme(
    conn: &mut DbConnection,
    user: i64,
    record: &ProgrammeRecord,
) -> AppResult<ProgrammeRow> {
    let id = crate::versioned_insert!(conn, financing_programmes, record)?;
    audit::record(conn, user, Action::Create, "programme", id, &audit::snapshot(record, &[]))?;
    Ok(find_programme(conn, id)?)
}

/// Writes `record` over `current` if the row still has `current`'s version (412 otherwise), and
/// the audit entry.
pub(crate) fn change_programme(
    conn: &mut DbConnection,
    user: i64,
    current: &ProgrammeRow,
    record: &ProgrammeRecord,
) -> AppResult<ProgrammeRow> {
    crate::versioned_update!(conn, financing_programmes, current.id, current.version, record)?;
    let changes = audit::diff(&current.record(), record, &[]);
    audit::record(conn, user, Action::Update, "programme", current.id, &changes)?;
    super::feed::refresh_programme(conn, current.id)?;
    Ok(find_programme(conn, current.id)?)
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
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let query = query.into_inner();
    let sort = Sort::<ProgrammeOrder>::parse(None, "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let counted = query.clone();
    list::json_page(
        &state.pool,
        params,
        move |conn, after, limit| {
            let q = query.query(scope).select(ProgrammeRow::as_select());
            let (rows, next) = list::keyset(conn, q, &sort, after, limit)?;
            Ok((rows.into_iter().map(Programme::from).collect::<Vec<_>>(), next))
        },
        move |conn| Ok(counted.query(scope).count().get_result(conn)?),
    )
    .await
}

crate::key_order!(ProgrammeOrder, financing_programmes, ProgrammeRow, id, Int);

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
            insert_programme(conn, user, &record)
        })
    })
    .await?;
    Ok(created(format!("/api/v1/programmes/{}", programme.id), programme.version, Programme::from(programme)))
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
    Ok(ok(programme.version, Programme::from(programme)))
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
        if_match.write(conn, |conn| {
            let current = find_programme(conn, id)?;
            if_match.check(current.version)?;
            // Applications keep the bank of their programme: a programme cannot change banks.
            let view = Programme::from(current.clone());
            refuse_changes(&view, &body.0, &["bank_partner_id"])?;
            let input = merged(&view, &body.0, &[])?;
            let record = check_programme(conn, input)?;
            change_programme(conn, user, &current, &record)
        })
    })
    .await?;
    Ok(ok(programme.version, Programme::from(programme)))
}
