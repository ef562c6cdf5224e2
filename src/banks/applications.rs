//! Applications: office staff file them for a business, the bank decides them, office staff may
//! withdraw them. Every answer carries the server's eligibility verdict. A bank user sees only
//! the applications to its own bank, of businesses that consented to bank sharing.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::programmes::find_programme;
use super::verdicts::with_verdicts;
use super::{scope, utc};
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{applications, businesses};
use crate::db::{self, DbConnection};
use crate::domain::financing::{ApplicationStatus, Eligibility};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, etag};
use crate::http::idempotency::IdempotencyKey;
use crate::http::input::Check;
use crate::http::list::{Sort, SortField, page_of};
use crate::state::AppState;

/// An application as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = applications)]
pub struct ApplicationRow {
    pub(super) id: i64,
    pub(super) business_id: i64,
    pub(super) programme_id: i64,
    pub(super) bank_partner_id: i64,
    pub(super) amount_requested_idr: i64,
    pub(super) purpose: Option<String>,
    pub(super) status: String,
    pub(super) amount_approved_idr: Option<i64>,
    pub(super) bank_reference: Option<String>,
    pub(super) financing_ends_on: Option<NaiveDate>,
    pub(super) decided_at: Option<NaiveDateTime>,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
    pub(super) version: i32,
}

impl ApplicationRow {
    pub(super) fn status(&self) -> ApplicationStatus {
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

pub(super) fn application_of(a: ApplicationRow, eligibility: Eligibility) -> Application {
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

/// Applications a caller may see: a bank sees its own, of consenting businesses only.
pub(super) fn visible(scope: Option<i64>) -> applications::BoxedQuery<'static, db::Db> {
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
