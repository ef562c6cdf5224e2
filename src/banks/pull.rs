//! The banks' pull: the eligible applications to a bank's open programmes, with the applicant
//! data the bank checks, as pages or as one CSV or NDJSON export.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::applications::ApplicationRow;
use super::feed::{ApplicantData, FeedRow, LeftReason, pulled_data};
use super::scope;
use crate::auth::{Caller, within};
use crate::crypto::keyring::Keyring;
use crate::db::schema::{applications, bank_feed, bank_partners};
use crate::db::{self, DbConnection};
use crate::disclosures::Classes;
use crate::domain::classification::Scale;
use crate::domain::financing::ApplicationStatus;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::list::{self, PageParams, Sort, SortField};
use crate::persons::NIK;
use crate::state::AppState;

/// An applicant in a bank's pull: the application and the applicant's data.
///
/// In an incremental pull (`updated_since`) an applicant that **left** the pull since (it is no
/// longer eligible, its owner withdrew consent, its programme closed) comes as `left: true`
/// with `left_reason`, its ids and `updated_at`, and every other field null: the bank deletes
/// it from its copy. Applying every entry of an incremental pull in order (upsert, or delete
/// where `left`) gives exactly what a full pull gives.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EligibleApplicant {
    /// The application.
    pub application_id: i64,
    /// The programme.
    pub programme_id: i64,
    /// Amount asked for, rupiah.
    pub amount_requested_idr: Option<i64>,
    /// What the money is for.
    pub purpose: Option<String>,
    /// The application's status.
    pub status: Option<ApplicationStatus>,
    /// Amount approved, rupiah.
    pub amount_approved_idr: Option<i64>,
    /// The bank's reference.
    pub bank_reference: Option<String>,
    /// The applicant.
    pub business_id: i64,
    /// Business name.
    pub business_name: Option<String>,
    /// Owner's NIK (the applicant consented to share it with partner banks).
    pub owner_nik: Option<String>,
    /// Owner's name.
    pub owner_name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Village.
    pub village: Option<String>,
    /// District code.
    pub district_code: Option<String>,
    /// NIB.
    pub nib: Option<String>,
    /// NPWP.
    pub npwp: Option<String>,
    /// KBLI 2020 code.
    pub kbli: Option<String>,
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
    /// When what the bank sees of this applicant last changed: its eligibility, the
    /// application, or the applicant's data above. The pull's order and `updated_since`.
    pub updated_at: DateTime<Utc>,
    /// The applicant left the pull (incremental pulls only): delete it.
    pub left: bool,
    /// Why it left.
    pub left_reason: Option<LeftReason>,
    /// The owner a listed applicant discloses (`crate::disclosures`); not part of the answer.
    #[serde(skip)]
    #[schema(ignore)]
    pub owner_id: Option<i64>,
}

impl EligibleApplicant {
    /// A listed applicant.
    fn listed(f: &FeedRow, a: &ApplicationRow, b: &ApplicantData, owner_nik: String) -> EligibleApplicant {
        EligibleApplicant {
            application_id: f.application_id,
            programme_id: f.programme_id,
            amount_requested_idr: Some(a.amount_requested_idr),
            purpose: a.purpose.clone(),
            status: Some(a.status()),
            amount_approved_idr: a.amount_approved_idr,
            bank_reference: a.bank_reference.clone(),
            business_id: f.business_id,
            business_name: Some(b.name.clone()),
            owner_nik: Some(owner_nik),
            owner_name: Some(b.owner_name.clone()),
            address: Some(b.address.clone()),
            village: b.village.clone(),
            district_code: Some(b.district_code.clone()),
            nib: b.nib.clone(),
            npwp: b.npwp.clone(),
            kbli: Some(b.kbli.clone()),
            established_on: b.established_on,
            annual_revenue_idr: b.annual_revenue_idr,
            capital_idr: b.capital_idr,
            employees: b.employees,
            scale: b.scale.as_deref().and_then(Scale::parse),
            updated_at: f.changed_at.and_utc(),
            left: false,
            left_reason: None,
            owner_id: Some(b.owner_id),
        }
    }

    /// An applicant that left, for `reason`.
    fn left(f: &FeedRow, reason: Option<LeftReason>) -> EligibleApplicant {
        EligibleApplicant {
            application_id: f.application_id,
            programme_id: f.programme_id,
            amount_requested_idr: None,
            purpose: None,
            status: None,
            amount_approved_idr: None,
            bank_reference: None,
            business_id: f.business_id,
            business_name: None,
            owner_nik: None,
            owner_name: None,
            address: None,
            village: None,
            district_code: None,
            nib: None,
            npwp: None,
            kbli: None,
            established_on: None,
            annual_revenue_idr: None,
            capital_idr: None,
            employees: None,
            scale: None,
            updated_at: f.changed_at.and_utc(),
            left: true,
            left_reason: reason,
            owner_id: None,
        }
    }
}

/// Paging of the pull.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// The incremental pull: what changed at or after this time, the applicants that left
    /// included (`left: true`). Pass the largest `updated_at` of the previous pull.
    pub updated_since: Option<DateTime<Utc>>,
    /// Only applications with this status (in an incremental pull, one whose status became
    /// another comes as left, `left_reason: other_status`).
    pub status: Option<ApplicationStatus>,
    /// Rows per page, 1 to 500 (default 50). Ignored by CSV and NDJSON exports.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The pull's order: when what the bank sees changed, then the application's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedSort {
    Id,
    ChangedAt,
}

impl SortField for FeedSort {
    type Table = bank_feed::table;
    type Row = FeedRow;
    const ID: Self = FeedSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[("id", FeedSort::Id), ("updated_at", FeedSort::ChangedAt)];

    crate::sort_columns!(bank_feed;
        FeedSort::Id => (application_id, Int),
        FeedSort::ChangedAt => (changed_at, Time),
    );
}

/// What a pull asks for.
#[derive(Debug, Clone, Copy)]
struct PullFilter {
    since: Option<DateTime<Utc>>,
    status: Option<ApplicationStatus>,
}

/// One page of the pull of `bank`, in (`changed_at`, id) order: the listed applicants, and in
/// an incremental pull also the ones that left.
fn pull_page(
    conn: &mut DbConnection,
    keys: &Keyring,
    bank: i64,
    filter: PullFilter,
    sort: &Sort<FeedSort>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<EligibleApplicant>, Option<String>)> {
    let mut q = bank_feed::table.filter(bank_feed::bank_partner_id.eq(bank)).into_boxed();
    q = match filter.since {
        // Only what the bank was ever shown can leave it: an application that was never
        // listed stays unknown to the bank.
        Some(since) => {
            q.filter(bank_feed::shown.eq(true)).filter(bank_feed::changed_at.ge(since.naive_utc()))
        }
        None => q.filter(bank_feed::listed.eq(true)),
    };
    if let (None, Some(status)) = (filter.since, filter.status) {
        q = q.filter(diesel::dsl::exists(
            applications::table
                .filter(applications::id.eq(bank_feed::application_id))
                .filter(applications::status.eq(status.as_str())),
        ));
    }
    let (rows, next) = list::keyset(conn, q.select(FeedRow::as_select()), sort, after, limit)?;
    let listed: Vec<i64> = rows.iter().filter(|f| f.listed).map(|f| f.application_id).collect();
    let apps: HashMap<i64, ApplicationRow> = applications::table
        .filter(applications::id.eq_any(&listed))
        .select(ApplicationRow::as_select())
        .load::<ApplicationRow>(conn)?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let business_ids: Vec<i64> = rows.iter().filter(|f| f.listed).map(|f| f.business_id).collect();
    let data = pulled_data(conn, &business_ids)?;
    let entries = rows
        .iter()
        .map(|f| {
            let found = apps.get(&f.application_id).zip(data.get(&f.business_id));
            Ok(match found.filter(|_| f.listed) {
                Some((a, _)) if filter.status.is_some_and(|s| s != a.status()) => {
                    EligibleApplicant::left(f, Some(LeftReason::OtherStatus))
                }
                Some((a, b)) => {
                    let nik = crate::persons::open(keys, NIK, &b.owner_nik_sealed)?;
                    EligibleApplicant::listed(f, a, b, nik)
                }
                None => EligibleApplicant::left(f, LeftReason::parse(&f.left_reason)),
            })
        })
        .collect::<AppResult<_>>()?;
    Ok((entries, next))
}

const PULL_CSV: &str = "application_id,programme_id,amount_requested_idr,purpose,status,amount_approved_idr,\
bank_reference,business_id,business_name,owner_nik,owner_name,address,village,district_code,nib,npwp,kbli,\
established_on,annual_revenue_idr,capital_idr,employees,scale,updated_at,left,left_reason\n";

/// The banks' pull: the eligible applications to this bank's open programmes, with the
/// applicant data a bank checks, only of businesses that consented to bank sharing. Ordered by
/// `updated_at` (when what the bank sees of the applicant last changed) then id.
/// `updated_since` gives an incremental pull that also lists the applicants that left
/// (`left: true`): applied in order to the bank's copy, it gives exactly the full pull.
/// `Accept: text/csv` or `application/x-ndjson` streams the whole batch. A bank user may pull
/// only its own bank.
#[utoipa::path(
    tag = "banks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The bank's id"), PullQuery),
    responses((status = 200, description = "A page of eligible applicants, or all of them as CSV or NDJSON",
        content((crate::http::list::Page<EligibleApplicant> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
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
    let sort = Sort::<FeedSort>::parse(Some("updated_at,id"), "updated_at,id")?;
    let filter = PullFilter { since: query.updated_since, status: query.status };
    let keys = state.data_keys.current();
    // Each page (each chunk of an export) is recorded before it is answered.
    let disclosing = caller.discloser(&req, Classes::APPLICANT)?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), None).recorded_by(&disclosing);
    list::respond(
        &req,
        &state.pool,
        params,
        PULL_CSV,
        move |conn, after, limit| {
            let (applicants, next) = pull_page(conn, &keys, bank, filter, &sort, after, limit)?;
            disclosing.disclose_blocking(applicants.iter().filter_map(|a| a.owner_id))?;
            Ok((applicants, next))
        },
        |_| Ok(0),
    )
    .await
}
