//! The selection run: reads a training's registrations and who attended a training before,
//! applies the rule of [`crate::domain::selection`] and writes each registration's new status
//! and rank.

use std::collections::{HashMap, HashSet};

use actix_web::{post, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::registrations::{RegistrationRow, RegistrationStatus};
use super::trainings::find as find_training;
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{businesses, registrations, trainings};
use crate::db::{self, DbConnection};
use crate::domain::selection::{self, Candidate, Outcome};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::summary::{Deltas, Figure};

/// What a selection did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SelectionResult {
    /// Registrations given a seat.
    pub selected: i64,
    /// Registrations put on the waitlist.
    pub waitlisted: i64,
    /// Registrations left out (`rejected` or `attended`).
    pub skipped: i64,
}

/// Runs the selection rule of [`crate::domain::selection`] over the training's registrations
/// that are `registered`, `selected` or `waitlisted`; writes an audit entry per registration
/// it changed.
fn run_selection(conn: &mut DbConnection, user_id: i64, id: i64) -> AppResult<SelectionResult> {
    let training = find_training(conn, id)?;
    let now = db::now();
    if training.has_started(now) {
        return Err(AppError::Conflict("the training has started; its selection is final".into()));
    }
    // The training's own write comes first: on PostgreSQL it locks the row, so a concurrent
    // PATCH of the training (its capacity, say) waits and then finds a new version (412), and a
    // concurrent selection waits and then finds the training changed (409: run it again).
    crate::versioned_update!(conn, trainings, id, training.version, trainings::selected_at.eq(now))
        .map_err(changed_meanwhile)?;
    let rows: Vec<(RegistrationRow, Option<String>)> = registrations::table
        .inner_join(businesses::table)
        .filter(registrations::training_id.eq(id))
        .select((RegistrationRow::as_select(), businesses::scale))
        .load(conn)?;
    let business_ids: Vec<i64> = rows.iter().map(|(r, _)| r.business_id).collect();
    let mut trained: HashSet<i64> = HashSet::new();
    for chunk in business_ids.chunks(500) {
        trained.extend(
            registrations::table
                .filter(registrations::business_id.eq_any(chunk))
                .filter(registrations::status.eq(RegistrationStatus::Attended.as_str()))
                .filter(registrations::training_id.ne(id))
                .select(registrations::business_id)
                .load::<i64>(conn)?,
        );
    }
    let read: HashMap<i64, &RegistrationRow> = rows.iter().map(|(r, _)| (r.id, r)).collect();
    let mut skipped = 0;
    let mut candidates = Vec::new();
    for (r, scale) in &rows {
        match RegistrationStatus::parse(&r.status) {
            RegistrationStatus::Rejected | RegistrationStatus::Attended => skipped += 1,
            _ => candidates.push(Candidate {
                registration_id: r.id,
                micro: scale.as_deref() == Some("mikro"),
                trained_before: trained.contains(&r.business_id),
                registered_at: r.registered_at,
            }),
        }
    }
    let capacity = usize::try_from(training.capacity).unwrap_or(0);
    let (mut selected, mut waitlisted) = (0, 0);
    let mut changes = Vec::new();
    let mut deltas = Deltas::new();
    for (registration, outcome, rank) in selection::select(candidates, capacity) {
        let status = match outcome {
            Outcome::Selected => {
                selected += 1;
                RegistrationStatus::Selected
            }
            Outcome::Waitlisted => {
                waitlisted += 1;
                RegistrationStatus::Waitlisted
            }
        };
        let Some(current) = read.get(&registration) else { continue };
        if current.status == status.as_str() && current.selection_rank == Some(rank) {
            continue;
        }
        // Only the registration as it was read: one changed meanwhile (an office PATCH that
        // rejected it, say) is not overwritten; the whole run is refused instead.
        crate::versioned_update!(
            conn,
            registrations,
            registration,
            current.version,
            (registrations::status.eq(status.as_str()), registrations::selection_rank.eq(rank)),
        )
        .map_err(changed_meanwhile)?;
        deltas.count(Figure::Registrations, id, &current.status, -1).count(
            Figure::Registrations,
            id,
            status.as_str(),
            1,
        );
        changes.push((
            registration,
            serde_json::json!({"status": {"to": status}, "selection_rank": {"to": rank}}),
        ));
    }
    deltas.apply(conn)?;
    audit::record_many(conn, user_id, Action::Update, "registration", &changes)?;
    Ok(SelectionResult { selected, waitlisted, skipped })
}

/// A row the selection read changed before it was written: 409, run it again. Any other
/// error passes unchanged.
fn changed_meanwhile(err: AppError) -> AppError {
    match err {
        AppError::PreconditionFailed => AppError::Conflict(
            "the training or its registrations changed while the selection ran; run it again".into(),
        ),
        other => other,
    }
}

/// Run the selection: fill `capacity` seats from the registrations that are `registered`,
/// `selected` or `waitlisted`, the rest waitlisted. Micro businesses come first, then
/// businesses that never attended a training, then earlier registrations, then lower ids.
/// Deterministic: running it again without changes gives the same result. `rejected` and
/// `attended` registrations are left alone. 409 once the training has started.
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The training's id")),
    responses(
        (status = 200, description = "What the selection did", body = SelectionResult),
        (status = 409, description = "The training has started", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/trainings/{id}/selection")]
pub async fn select_participants(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<web::Json<SelectionResult>> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let result =
        db::run(&state.pool, move |conn| db::write(conn, |conn| run_selection(conn, user, id))).await?;
    Ok(web::Json(result))
}
