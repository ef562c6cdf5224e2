//! Applications: office staff file them for a business, and they are read and listed here (the
//! bank's decisions and withdrawals are in `transitions`). Every answer carries the server's
//! eligibility verdict. A bank user sees only the applications to its own bank, of businesses
//! that consented to bank sharing.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::programmes::find_programme;
use super::scope;
use super::verdicts::{with_verdict, with_verdicts};
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{applications, businesses, financing_programmes};
use crate::db::{self, DbConnection};
use crate::disclosures::{Classes, Discloser};
use crate::domain::financing::{ApplicationStatus, Eligibility};
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::ok;
use crate::http::idempotency::IdempotencyKey;
use crate::http::input::{Check, Field};
use crate::http::list::{self, PageParams, Sort, SortField};
use crate::persons::OwnerHold;
use crate::state::AppState;

/// An application as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = applications)]
pub struct ApplicationRow {
    pub(crate) id: i64,
    pub(crate) business_id: i64,
    pub(crate) programme_id: i64,
    pub(crate) bank_partner_id: i64,
    pub(crate) amount_requested_idr: i64,
    pub(crate) purpose: Option<String>,
    pub(crate) status: String,
    pub(crate) amount_approved_idr: Option<i64>,
    pub(crate) bank_reference: Option<String>,
    pub(crate) financing_ends_on: Option<NaiveDate>,
    pub(crate) decided_at: Option<NaiveDateTime>,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
    pub(crate) version: i32,
    /// Whether the owner consents to sharing with this bank (`super::consented`).
    pub(crate) consented: bool,
}

impl ApplicationRow {
    /// What this application contributes to the statistics' summary.
    pub(crate) fn facts(&self) -> crate::summary::ApplicationFacts {
        crate::summary::ApplicationFacts::new(
            self.bank_partner_id,
            self.programme_id,
            &self.status,
            self.consented,
            self.amount_requested_idr,
            self.amount_approved_idr,
        )
    }

    pub(crate) fn status(&self) -> ApplicationStatus {
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
    /// The business's owner, whose financing this discloses (`crate::disclosures`); not part
    /// of the answer.
    #[serde(skip)]
    #[schema(ignore)]
    pub owner_id: i64,
}

pub(crate) fn application_of(a: ApplicationRow, eligibility: Eligibility, owner_id: i64) -> Application {
    Application {
        owner_id,
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
        decided_at: a.decided_at.map(|t| t.and_utc()),
        eligibility,
        created_at: a.created_at.and_utc(),
        updated_at: a.updated_at.and_utc(),
        version: a.version,
    }
}

/// Applications a caller may see: a bank sees its own, of owners who consent to sharing with
/// it and have not restricted the processing of their data, only.
pub(crate) fn visible(scope: Option<i64>) -> applications::BoxedQuery<'static, db::Db> {
    let mut q = applications::table.into_boxed();
    if let Some(bank) = scope {
        // Nor those of an owner who restricted the processing of their data (few: the
        // subquery reads a partial index of them).
        let restricted = businesses::table
            .inner_join(crate::db::schema::persons::table)
            .filter(crate::db::schema::persons::restricted_at.is_not_null())
            .select(businesses::id);
        q = q
            .filter(applications::bank_partner_id.eq(bank))
            .filter(applications::consented.eq(true))
            .filter(applications::business_id.ne_all(restricted));
    }
    q
}

pub(crate) fn find_application(
    conn: &mut DbConnection,
    id: i64,
    scope: Option<i64>,
) -> AppResult<ApplicationRow> {
    Ok(visible(scope).filter(applications::id.eq(id)).select(ApplicationRow::as_select()).first(conn)?)
}

/// A new application, filed by office staff for a business.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// The applicant.
    #[serde(default)]
    #[schema(value_type = i64, required = true)]
    pub business_id: Field<i64>,
    /// The programme (open).
    #[serde(default)]
    #[schema(value_type = i64, required = true)]
    pub programme_id: Field<i64>,
    /// Amount asked for, rupiah (> 0).
    #[serde(default)]
    #[schema(value_type = i64, required = true)]
    pub amount_requested_idr: Field<i64>,
    /// What the money is for.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub purpose: Field<String>,
}

/// A new application's checked values, as written.
#[derive(Debug, Clone)]
pub(crate) struct ApplicationRecord {
    business_id: i64,
    programme_id: i64,
    bank_partner_id: i64,
    amount_requested_idr: i64,
    purpose: Option<String>,
}

/// Checks every field of `new`, the ones that need the database included, into one 422.
pub(crate) fn check_application(
    conn: &mut DbConnection,
    new: NewApplication,
) -> AppResult<ApplicationRecord> {
    let mut check = Check::default();
    let business = check.required("business_id", new.business_id);
    if let Some(b) = business
        && !diesel::select(diesel::dsl::exists(businesses::table.find(b))).get_result::<bool>(conn)?
    {
        check.fail("business_id", "not_found", "no business has this id");
    }
    let programme_id = check.required("programme_id", new.programme_id);
    let programme = programme_id.map(|p| find_programme(conn, p).optional()).transpose()?.flatten();
    match (programme_id, &programme) {
        (Some(_), None) => check.fail("programme_id", "not_found", "no programme has this id"),
        (_, Some(p)) if !p.open => check.fail("programme_id", "closed", "the programme is closed"),
        _ => {}
    }
    let amount = check.required("amount_requested_idr", new.amount_requested_idr);
    if amount.is_some_and(|a| a <= 0) {
        check.fail("amount_requested_idr", "out_of_range", "must be more than 0");
    }
    let purpose = check.optional_text("purpose", new.purpose, 1000);
    check.finish(|| {
        Some(ApplicationRecord {
            business_id: business?,
            programme_id: programme_id?,
            bank_partner_id: programme?.bank_partner_id,
            amount_requested_idr: amount?,
            purpose,
        })
    })
}

/// Writes a new application, submitted, and its audit entry.
pub(crate) fn insert_application(
    conn: &mut DbConnection,
    user: i64,
    record: &ApplicationRecord,
) -> AppResult<ApplicationRow> {
    // The programme must still be open at the write. This no-op update takes the programme's row
    // lock on PostgreSQL: a concurrent PATCH closing it either committed first (and no row
    // matches here) or waits until this application is in.
    let open = diesel::update(
        financing_programmes::table.find(record.programme_id).filter(financing_programmes::open.eq(true)),
    )
    .set(financing_programmes::open.eq(true))
    .execute(conn)?;
    if open == 0 {
        return Err(AppError::invalid("programme_id", "closed", "the programme is closed"));
    }
    match crate::persons::owner_hold(conn, record.business_id)? {
        Some(OwnerHold::Restricted) => {
            return Err(AppError::invalid(
                "business_id",
                "restricted",
                "the business's owner has restricted the processing of their data",
            ));
        }
        Some(OwnerHold::Erased) => {
            return Err(AppError::invalid(
                "business_id",
                "owner_erased",
                "the business's owner was erased: record its owner again first",
            ));
        }
        None => {}
    }
    let consented = super::consented::consent_of(conn, record.business_id, record.bank_partner_id)?;
    let now = db::now();
    let id: i64 = diesel::insert_into(applications::table)
        .values((
            applications::consented.eq(consented),
            applications::business_id.eq(record.business_id),
            applications::programme_id.eq(record.programme_id),
            applications::bank_partner_id.eq(record.bank_partner_id),
            applications::amount_requested_idr.eq(record.amount_requested_idr),
            applications::purpose.eq(&record.purpose),
            applications::status.eq(ApplicationStatus::Submitted.as_str()),
            applications::created_at.eq(now),
            applications::updated_at.eq(now),
        ))
        .returning(applications::id)
        .get_result(conn)?;
    let row = find_application(conn, id, None)?;
    crate::summary::Deltas::new().application(&row.facts(), 1).apply(conn)?;
    audit::record(conn, user, Action::Create, "application", id, &audit::snapshot(&row, &[]))?;
    super::feed::refresh(conn, &[row.business_id])?;
    Ok(row)
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
pub async fn create_application(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let new: NewApplication = crate::http::parse_json(body.0.to_string().as_bytes())?;
    let user = caller.id;
    create::once(
        &state.pool,
        state.data_keys.current(),
        user,
        "POST /applications",
        key,
        body.0,
        move |conn| {
            let record = check_application(conn, new)?;
            let row = insert_application(conn, user, &record)?;
            let application = with_verdict(conn, row)?;
            Ok(Created {
                location: format!("/api/v1/applications/{}", application.id),
                version: application.version,
                body: serde_json::to_value(application).map_err(AppError::internal)?,
            })
        },
    )
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

async fn list_page(
    state: &AppState,
    disclosing: Discloser,
    scope: Option<i64>,
    query: ApplicationQuery,
) -> AppResult<HttpResponse> {
    let sort = Sort::<ApplicationSort>::parse(query.sort.as_deref(), "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count).recorded_by(&disclosing);
    let counted = query.clone();
    list::json_page(
        &state.pool,
        params,
        move |conn, after, limit| {
            let q = query.query(scope).select(ApplicationRow::as_select());
            let (rows, next) = list::keyset(conn, q, &sort, after, limit)?;
            let page = with_verdicts(conn, rows)?;
            // Financing is shown unmasked to every role that reads applications.
            disclosing.disclose_blocking(page.iter().map(|a| a.owner_id))?;
            Ok((page, next))
        },
        move |conn| Ok(counted.query(scope).count().get_result(conn)?),
    )
    .await
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
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ApplicationQuery>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    list_page(&state, caller.discloser(&req, Classes::FINANCING)?, scope, query.into_inner()).await
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
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<BusinessApplicationsQuery>,
) -> AppResult<HttpResponse> {
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
    list_page(
        &state,
        caller.discloser(&req, Classes::FINANCING)?,
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
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let application = db::run(&state.pool, move |conn| {
        let row = find_application(conn, id, scope)?;
        with_verdict(conn, row)
    })
    .await?;
    caller.disclose(&req, Classes::FINANCING, [application.owner_id]).await?;
    Ok(ok(application.version, application))
}
