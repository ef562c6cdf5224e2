//! A person's consents to share their data with partner banks (`crate::persons::consents`):
//! recorded with their evidence, listed, withdrawn; and what follows from them, kept here
//! because it spans the person's businesses: each business's `consented_to_bank_sharing_at`
//! (since when every bank may see it) and which banks see each of its applications
//! (`crate::banks::consented`), with the banks' feed and events.
//!
//! Lock order, as for every change of a person: the person, then their businesses in id
//! order, then (the feed) the banks' clocks. The change itself is written after the locks, so
//! that a new application or business of the person waits for it or is seen by it.

use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::businesses;
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::create::{self, Created};
use crate::http::etag::ok;
use crate::http::idempotency::IdempotencyKey;
use crate::http::list::Page;
use crate::http::{Document, Json};
use crate::persons::consents::{self, Consent, ConsentInput, WithdrawalInput};
use crate::persons::{self};
use crate::state::AppState;

/// Consents are a person's, whom these roles do not see.
const HIDDEN_FROM: &[Role] = &[Role::Bank, Role::Retail];

/// Runs `change` for person `person` with the person and their businesses locked, then brings
/// their businesses, applications and the banks' feed in line with the consents it left.
fn changing<T>(
    conn: &mut DbConnection,
    person: i64,
    change: impl FnOnce(&mut DbConnection) -> AppResult<T>,
) -> AppResult<T> {
    persons::lock_existing(conn, person)?;
    let owned = db::lock_rows_of(conn, "businesses", "owner_id", person)?;
    let changed = change(conn)?;
    settle(conn, &owned, None)?;
    crate::banks::feed::refresh(conn, &owned)?;
    Ok(changed)
}

/// Brings the consent that `ids` (businesses locked by the caller) show, and that their
/// applications carry, in line with their owners' consents in force. A business whose
/// `consented_to_bank_sharing_at` moves gets a new version and `updated_at` (incremental
/// reads see it), except `writing`, which its caller is writing. The banks' feed of these
/// businesses is the caller's to refresh.
pub(super) fn settle(conn: &mut DbConnection, ids: &[i64], writing: Option<i64>) -> AppResult<()> {
    for chunk in ids.chunks(500) {
        let rows: Vec<(i64, i64, Option<chrono::NaiveDateTime>)> = businesses::table
            .filter(businesses::id.eq_any(chunk))
            .select((businesses::id, businesses::owner_id, businesses::consented_to_bank_sharing_at))
            .load(conn)?;
        let owners: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let in_force = consents::in_force(conn, &owners)?;
        for (id, owner, shown) in rows {
            let since = in_force.get(&owner).and_then(|c| c.every_bank_since);
            if since == shown {
                continue;
            }
            let flag = businesses::consented_to_bank_sharing_at.eq(since);
            let target = businesses::table.find(id);
            if Some(id) == writing {
                diesel::update(target).set(flag).execute(conn)?;
            } else {
                diesel::update(target)
                    .set((
                        flag,
                        businesses::updated_at.eq(db::now()),
                        businesses::version.eq(businesses::version + 1),
                    ))
                    .execute(conn)?;
            }
        }
    }
    crate::banks::consented::settle(conn, ids)?;
    Ok(())
}

/// A person's consents, the newest first (withdrawn ones included: they are the evidence).
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses((status = 200, description = "Their consents", body = Page<Consent>)),
)]
#[get("/persons/{id}/consents")]
pub async fn list_consents(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let id = id.into_inner();
    let found = db::run(&state.pool, move |conn| {
        persons::find(conn, id)?;
        Ok(consents::of_person(conn, id)?.into_iter().map(Consent::from).collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(Page { data: found, next_cursor: None, total: None }))
}

/// Record a person's consent (office staff), with its evidence.
///
/// To every partner bank (`bank_partner_id` absent or `null`) or to one. Each business of the
/// person then shows `consented_to_bank_sharing_at` (a consent to every bank), and the banks
/// it names see the person's applications to them, in their pull, feed and events. A second
/// active consent for the same recipient is 409. `Idempotency-Key` makes a retry return the
/// first answer.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The person's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer instead of a second record"),
    ),
    request_body = ConsentInput,
    responses(
        (status = 201, description = "The consent recorded", body = Consent,
            headers(("Location" = String, description = "The consent's URL"), ("ETag" = String, description = "The version"))),
        (status = 409, description = "An active consent for this recipient exists", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/persons/{id}/consents")]
pub async fn create_consent(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    key: IdempotencyKey,
    body: Document,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    caller.require_office()?;
    let (person, user) = (id.into_inner(), caller.id);
    // The person is part of what a repeated key must repeat.
    let request = serde_json::json!({"person": person, "body": body.0.clone()});
    create::once(
        &state.pool,
        state.data_keys.current(),
        user,
        "POST /persons/{id}/consents",
        key,
        request,
        move |conn| {
            let input: ConsentInput = crate::http::parse_json(body.0.to_string().as_bytes())?;
            persons::find(conn, person)?;
            let checked = consents::check_new(conn, input, db::now())?;
            let row = changing(conn, person, |conn| {
                let row = consents::insert(conn, user, person, &checked)?;
                audit::record(conn, user, Action::Create, "consent", row.id, &audit::snapshot(&row, &[]))?;
                Ok(row)
            })?;
            Ok(Created {
                location: format!("/api/v1/persons/{person}/consents/{}", row.id),
                version: row.version,
                body: serde_json::to_value(Consent::from(row)).map_err(AppError::internal)?,
            })
        },
    )
    .await
}

/// Get one of a person's consents.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id"), ("consent_id" = i64, Path, description = "The consent's id")),
    responses((status = 200, description = "The consent", body = Consent,
        headers(("ETag" = String, description = "The version")))),
)]
#[get("/persons/{id}/consents/{consent_id}")]
pub async fn get_consent(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let (person, id) = path.into_inner();
    let found = db::run(&state.pool, move |conn| consents::find(conn, person, id)).await?;
    Ok(ok(found.version, Consent::from(found)))
}

/// Record the withdrawal of a person's consent (office staff).
///
/// From then on the banks it covered see nothing more of the person's applications (unless
/// another consent in force covers them): each leaves their pull with `left_reason:
/// consent_withdrawn` and an `applicant.left` event. The record stays, as evidence. A consent
/// already withdrawn is 409.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id"), ("consent_id" = i64, Path, description = "The consent's id")),
    request_body = WithdrawalInput,
    responses(
        (status = 200, description = "The consent, withdrawn", body = Consent,
            headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "Already withdrawn", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/persons/{id}/consents/{consent_id}/withdrawal")]
pub async fn withdraw_consent(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
    body: Json<WithdrawalInput>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    caller.require_office()?;
    let ((person, id), user) = (path.into_inner(), caller.id);
    let found = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            // A consent that is not this person's is 404 from the withdrawal's own read.
            changing(conn, person, |conn| {
                let (before, after) = consents::withdraw(conn, user, person, id, body.0)?;
                audit::record(conn, user, Action::Update, "consent", id, &audit::diff(&before, &after, &[]))?;
                Ok(after)
            })
        })
    })
    .await?;
    Ok(ok(found.version, Consent::from(found)))
}
