//! Erasure as anonymisation (UU 27/2022 Pasal 43–44): the person's identity and contact become
//! irreversibly anonymous — name `[erased]`, the sealed NIK, phone and e-mail and the NIK's blind
//! index gone (`crate::persons::erase`), their businesses' copies, street addresses and NPWPs
//! with them, and every audit entry about the person or their businesses stripped of those
//! values. What is not personal stays, so every statistic is unchanged: the businesses (sector,
//! district, village, scale, figures, status), their products, applications and registrations,
//! the consents (the record of what the processing rested on), the data requests, and the
//! disclosure trail (ids, not values). Each bank that listed an application of theirs sees it
//! leave (`left_reason: erased`, an `applicant.left` event).
//!
//! Refused (409, naming the applications) while the person's financing has not ended: an
//! application still submitted or in review, or one approved or disbursed whose financing has
//! no end date or ends today or later — the banking law keeps the data of a running credit.

use actix_web::{HttpResponse, post, web};
use chrono::Utc;
use diesel::prelude::*;
use serde_json::json;

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::crypto::keyring::Keyring;
use crate::db::schema::{applications, businesses};
use crate::db::{self, DbConnection};
use crate::domain::financing::ApplicationStatus;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::etag::{IfMatch, ok};
use crate::persons::{self, Person};
use crate::state::AppState;

/// The routes of this module.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(erase_person);
}

/// The business fields erased with their owner, as the audit log names them.
const BUSINESS_FIELDS: [&str; 6] = ["owner_name", "owner_nik", "phone", "email", "address", "npwp"];

/// The applications of person `id`'s businesses whose financing has not ended, by id. Every
/// application of theirs is read under a share lock on PostgreSQL (a bank's change of one, an
/// extension of its financing, waits for the erasure or is seen by it) and judged here: a row
/// a filter skipped before a concurrent change would not be looked at again.
fn still_financed(conn: &mut DbConnection, id: i64) -> QueryResult<Vec<i64>> {
    use ApplicationStatus::{Approved, Disbursed, InReview, Submitted};
    let today = Utc::now().date_naive();
    let owned = businesses::table.filter(businesses::owner_id.eq(id)).select(businesses::id);
    let theirs = applications::table
        .filter(applications::business_id.eq_any(owned))
        .order(applications::id)
        .select((applications::id, applications::status, applications::financing_ends_on));
    let rows: Vec<(i64, String, Option<chrono::NaiveDate>)> = match conn {
        DbConnection::Pg(pg) => theirs.for_share().load(pg)?,
        DbConnection::Sqlite(_) => theirs.load(conn)?,
    };
    let pending = [Submitted.as_str(), InReview.as_str()];
    let running = [Approved.as_str(), Disbursed.as_str()];
    Ok(rows
        .into_iter()
        .filter(|(_, status, ends)| {
            pending.contains(&status.as_str())
                || (running.contains(&status.as_str()) && ends.is_none_or(|e| e >= today))
        })
        .map(|(id, _, _)| id)
        .collect())
}

/// A business's stored create answer without the values of its owner `person` (one it was
/// created with: a business made by another and moved to them later keeps its answer).
fn erase_answer(answer: &mut serde_json::Value, person: i64) {
    if answer["owner_id"] != json!(person) {
        return;
    }
    for (field, erased) in [
        ("owner_name", json!(audit::ERASED)),
        ("owner_nik", json!("")),
        ("phone", json!("")),
        ("email", json!(null)),
        ("address", json!(audit::ERASED)),
        ("npwp", json!(null)),
    ] {
        answer[field] = erased;
    }
}

/// Erases person `id` in one transaction, under the person's lock (a new application for a
/// business of theirs takes its share of it, `crate::persons::owner_hold`, and so is either
/// seen here as financing not ended, or refused after).
fn erase(
    conn: &mut DbConnection,
    keys: &Keyring,
    user: i64,
    id: i64,
    if_match: &IfMatch,
) -> AppResult<Person> {
    db::lock_row(conn, "persons", id)?;
    let person = persons::find(conn, id)?;
    if_match.check(person.version)?;
    if person.erased_at.is_some() {
        return Err(AppError::Conflict("the person was already erased".into()));
    }
    let financed = still_financed(conn, id)?;
    if !financed.is_empty() {
        let list = financed.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        return Err(AppError::Conflict(format!(
            "the person's financing has not ended (applications {list}): their data is kept until it has"
        )));
    }
    let at = persons::erase(conn, &person)?;
    let owned = crate::businesses::follow_owner(conn, id, None)?;
    crate::businesses::erase_owner_fields(conn, user, &owned, at)?;
    // The log keeps their values in the entries of every business that was theirs: theirs now,
    // and those moved to another owner or deleted since.
    let mut theirs = audit::businesses_of_owner(conn, id)?;
    theirs.extend(&owned);
    theirs.sort_unstable();
    theirs.dedup();
    audit::erase_fields(conn, "business", &theirs, &BUSINESS_FIELDS)?;
    // The stored answers to those businesses' creations hold their values: a retry of such a
    // create is answered without them (and still creates nothing).
    let created: Vec<String> = theirs.iter().map(|b| format!("/api/v1/businesses/{b}")).collect();
    crate::http::idempotency::rewrite_answers(conn, keys, &created, |answer| erase_answer(answer, id))?;
    audit::record(conn, user, Action::Update, "person", id, &json!({"erased_at": {"from": null, "to": at}}))?;
    crate::banks::feed::refresh(conn, &owned)?;
    let row = persons::find(conn, id)?;
    Person::of(conn, keys, &row, true)
}

/// Erase a person (administrators; UU 27/2022 Pasal 43–44; honours `If-Match`).
///
/// Irreversible: their name, NIK, phone and e-mail, their businesses' addresses and NPWPs, and
/// those values in the audit log are gone; a search by their NIK finds nobody. Their
/// businesses and everything the statistics count stay. Each bank that listed an application of
/// theirs sees it leave (`left_reason: erased`, `applicant.left`). A new business with their NIK
/// is a new person. 409 while their financing has not ended (naming the applications), or when
/// they already were erased.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The person's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the person changed since"),
    ),
    responses(
        (status = 200, description = "Erased: what is left of the person", body = Person,
            headers(("ETag" = String, description = "The new version"))),
        (status = 403, description = "Not an administrator", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Financing not ended, or already erased", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/persons/{id}/erasure")]
pub async fn erase_person(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.hidden_from(super::HIDDEN_FROM)?;
    caller.require(&[Role::Admin])?;
    let (id, user) = (id.into_inner(), caller.id);
    let keys = state.data_keys.current();
    let erased =
        db::run(&state.pool, move |conn| db::write(conn, |conn| erase(conn, &keys, user, id, &if_match)))
            .await?;
    Ok(ok(erased.version, erased))
}
