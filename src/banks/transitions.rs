//! Changing an application: the bank's decisions and the applicant's withdrawal move it through
//! its states (submitted → in review → approved or rejected, approved → disbursed; withdrawn
//! while submitted or in review), and office staff may correct the purpose while it is submitted.

use actix_web::{HttpResponse, patch, web};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use utoipa::ToSchema;

use super::applications::{Application, ApplicationRow, find_application};
use super::programmes::find_programme;
use super::scope;
use super::verdicts::with_verdict;
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::applications;
use crate::db::{self, DbConnection};
use crate::domain::financing::ApplicationStatus;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::etag::{IfMatch, ok};
use crate::http::input::Check;
use crate::state::AppState;

/// A change to an application: the bank's decision, or the applicant's withdrawal.
#[derive(Debug, Clone, Deserialize, ToSchema)]
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
    #[schema(value_type = Option<String>, max_length = 100)]
    pub bank_reference: Option<Option<String>>,
    /// When the financing ends.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub financing_ends_on: Option<Option<NaiveDate>>,
    /// What the money is for (office staff, while submitted).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub purpose: Option<String>,
}

/// A change to an application, checked: its new state whole.
#[derive(Debug, Clone)]
pub(crate) struct ApplicationChange {
    status: ApplicationStatus,
    amount_approved_idr: Option<i64>,
    bank_reference: Option<String>,
    financing_ends_on: Option<NaiveDate>,
    purpose: Option<String>,
    decided_at: Option<NaiveDateTime>,
}

/// Checks `patch` against `current` for `caller`: who may change what (403), which transitions
/// are legal (409), then every bad field together (422).
pub(crate) fn check_change(
    conn: &mut DbConnection,
    caller: &Caller,
    current: &ApplicationRow,
    patch: ApplicationPatch,
) -> AppResult<ApplicationChange> {
    let bank_side = caller.role == Role::Bank;
    let office_side = caller.role == Role::Officer;
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
    if !bank_side && patch.purpose.is_some() && current.status() != ApplicationStatus::Submitted {
        return Err(AppError::Conflict(
            "the purpose can change only while the application is submitted".into(),
        ));
    }
    let mut check = Check::default();
    let purpose = match patch.purpose {
        Some(_) if bank_side => {
            check.fail("purpose", "forbidden", "the applicant's purpose is not the bank's to change");
            None
        }
        Some(p) => check.trimmed("purpose", p, 1000),
        None => current.purpose.clone(),
    };
    let programme = find_programme(conn, current.programme_id)?;
    if let Some(amount) = patch.amount_approved_idr
        && !(1..=programme.max_amount_idr).contains(&amount)
    {
        check.fail(
            "amount_approved_idr",
            "out_of_range",
            format!("must be between 1 and the programme's maximum of {}", programme.max_amount_idr),
        );
    }
    let approved = patch.amount_approved_idr.or(current.amount_approved_idr);
    if status == ApplicationStatus::Approved && approved.is_none() {
        check.fail("amount_approved_idr", "required", "is required to approve");
    }
    let reference = match patch.bank_reference {
        Some(reference) => reference.and_then(|r| check.trimmed("bank_reference", r, 100)),
        None => current.bank_reference.clone(),
    };
    check.finish(|| {
        Some(ApplicationChange {
            status,
            amount_approved_idr: approved,
            bank_reference: reference,
            financing_ends_on: patch.financing_ends_on.unwrap_or(current.financing_ends_on),
            purpose,
            decided_at,
        })
    })
}

/// Writes `change` over `current` if the row still has `current`'s version (412 otherwise), and
/// the audit entry.
pub(crate) fn change_application(
    conn: &mut DbConnection,
    user: i64,
    current: &ApplicationRow,
    change: &ApplicationChange,
) -> AppResult<ApplicationRow> {
    // Lock order: the business, then its applications. A consent change holds the owner's
    // businesses while it moves their applications' consent; this write's feed refresh takes
    // the business at its end too, so it takes it first rather than after the application.
    super::feed::lock_businesses(conn, &[current.business_id])?;
    crate::versioned_update!(
        conn,
        applications,
        current.id,
        current.version,
        (
            applications::status.eq(change.status.as_str()),
            applications::amount_approved_idr.eq(change.amount_approved_idr),
            applications::bank_reference.eq(&change.bank_reference),
            applications::financing_ends_on.eq(change.financing_ends_on),
            applications::purpose.eq(&change.purpose),
            applications::decided_at.eq(change.decided_at),
        ),
    )?;
    let after = find_application(conn, current.id, None)?;
    // `current` is the row the update replaced (it matched the version read); its consent is
    // the one stored now (a consent change moves the stored one without a new version, and
    // this update holds the row: a change after it moves the new status).
    let consented = after.consented;
    let mut deltas = crate::summary::Deltas::new();
    let before = ApplicationRow { consented, ..current.clone() };
    deltas.application(&before.facts(), -1).application(&after.facts(), 1);
    deltas.apply(conn)?;
    let changes = audit::diff(&before, &after, &[]);
    audit::record(conn, user, Action::Update, "application", current.id, &changes)?;
    // The bank sees the applications of owners who consent to sharing with it only, and so
    // their events.
    if current.status != after.status && consented {
        let data = super::events::StatusChangedEvent {
            application_id: after.id,
            programme_id: after.programme_id,
            business_id: after.business_id,
            from: current.status(),
            to: after.status(),
            updated_at: after.updated_at.and_utc(),
        };
        let bank = crate::webhooks::Partner::Bank(after.bank_partner_id);
        crate::webhooks::emit(conn, bank, crate::webhooks::EventType::ApplicationStatusChanged, data)?;
    }
    // Its owner's other applications too, through any of their businesses: an approval here
    // is financing elsewhere there.
    super::feed::refresh_owners(conn, &[current.business_id])?;
    Ok(after)
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
        if_match.write(conn, |conn| {
            let current = find_application(conn, id, scope)?;
            if_match.check(current.version)?;
            let change = check_change(conn, &caller, &current, body.0.clone())?;
            let after = change_application(conn, caller.id, &current, &change)?;
            with_verdict(conn, after)
        })
    })
    .await?;
    Ok(ok(application.version, application))
}
