//! The banks' pull: the eligible applications to a bank's open programmes, with the applicant
//! data the bank checks, as pages or as one CSV or NDJSON export.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::applications::{ApplicationRow, ApplicationSort, visible};
use super::scope;
use super::verdicts::verdicts;
use crate::auth::{Caller, within};
use crate::db::schema::{applications, bank_partners, businesses, financing_programmes};
use crate::db::{self, DbConnection};
use crate::domain::classification::Scale;
use crate::domain::financing::ApplicationStatus;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::list::{self, PageParams, Sort};
use crate::state::AppState;

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
        let wanted = limit - i64::try_from(out.len()).unwrap_or(0);
        let (rows, next) =
            list::keyset(conn, q.select(ApplicationRow::as_select()), sort, cursor.as_deref(), wanted)?;
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
                updated_at: a.updated_at.and_utc(),
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
    let params = PageParams::new(query.limit, query.cursor.as_deref(), None);
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
