//! Restriction of processing (UU 27/2022 Pasal 41): while it holds, the office keeps the
//! person's record (marked `restricted_at`), but no bank sees them — each of their applications
//! leaves its bank's pull and feed (`left_reason: restricted`, an `applicant.left` event), the
//! bank's reads of their applications are 404 — and no new application names them. Lifting it
//! lists them again where they are eligible.

use actix_web::{HttpResponse, delete, put, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{businesses, persons};
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Whether a person's data is restricted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Restriction {
    /// The person.
    pub person_id: i64,
    /// Since when the processing of their data is restricted; null when it is not.
    pub restricted_at: Option<DateTime<Utc>>,
}

/// The routes of this module.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(restrict_person).service(lift_person_restriction);
}

/// Sets or clears person `id`'s restriction; 409 when it already is so. Their applications'
/// feed follows in the same transaction.
fn set(conn: &mut DbConnection, user: i64, id: i64, restricted: bool) -> AppResult<Restriction> {
    db::write(conn, |conn| {
        // The person's row lock: a new application's check of the owner waits for it.
        db::lock_row(conn, "persons", id)?;
        let (before, erased, version): (Option<chrono::NaiveDateTime>, Option<chrono::NaiveDateTime>, i32) =
            persons::table
                .find(id)
                .select((persons::restricted_at, persons::erased_at, persons::version))
                .first(conn)?;
        if erased.is_some() {
            return Err(AppError::Conflict(crate::persons::ERASED_PERSON.into()));
        }
        match (before, restricted) {
            (Some(_), true) => {
                return Err(AppError::Conflict("the person's data is already restricted".into()));
            }
            (None, false) => return Err(AppError::Conflict("the person's data is not restricted".into())),
            _ => {}
        }
        let after = restricted.then_some(db::now());
        crate::versioned_update!(conn, persons, id, version, persons::restricted_at.eq(after))?;
        let changes = serde_json::json!({"restricted_at": {"from": before, "to": after}});
        audit::record(conn, user, Action::Update, "person", id, &changes)?;
        let theirs: Vec<i64> =
            businesses::table.filter(businesses::owner_id.eq(id)).select(businesses::id).load(conn)?;
        crate::banks::feed::refresh(conn, &theirs)?;
        Ok(Restriction { person_id: id, restricted_at: after.map(|t| t.and_utc()) })
    })
}

/// Restrict the processing of a person's data (office staff; UU 27/2022 Pasal 41).
///
/// The record stays, marked; every bank that listed the person's applications sees them leave
/// (`left_reason: restricted`, an `applicant.left` event), and a new application for a
/// business of theirs is refused (422) until the restriction is lifted. Already restricted: 409.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses(
        (status = 200, description = "Restricted", body = Restriction),
        (status = 404, description = "No such person", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already restricted", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/persons/{id}/restriction")]
pub async fn restrict_person(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(super::HIDDEN_FROM)?;
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let answer = db::run(&state.pool, move |conn| set(conn, user, id, true)).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Lift a person's restriction (office staff): their applications are listed again where they
/// are eligible. Not restricted: 409.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses(
        (status = 200, description = "Lifted", body = Restriction),
        (status = 404, description = "No such person", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not restricted", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/persons/{id}/restriction")]
pub async fn lift_person_restriction(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(super::HIDDEN_FROM)?;
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let answer = db::run(&state.pool, move |conn| set(conn, user, id, false)).await?;
    Ok(HttpResponse::Ok().json(answer))
}
