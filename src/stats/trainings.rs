//! Training figures: registrants, selected and attended, in total and per training.

use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::db::DbConnection;
use crate::db::schema::trainings;
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::state::AppState;

use super::answer;

/// Training figures: the article's "234 registrants, 100 selected".
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct TrainingStats {
    /// Trainings.
    pub trainings: i64,
    /// Registrations, all statuses.
    pub registrants: i64,
    /// Registrations given a seat (`selected`, or `attended` since).
    pub selected: i64,
    /// Registrations that attended.
    pub attended: i64,
    /// The same figures per training, by id.
    pub by_training: Vec<TrainingRow>,
}

/// One training's figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrainingRow {
    /// The training.
    pub training_id: i64,
    /// Its title.
    pub title: String,
    /// Its seats.
    pub capacity: i32,
    /// Registrations.
    pub registrants: i64,
    /// Selected or attended.
    pub selected: i64,
    /// Waitlisted.
    pub waitlisted: i64,
    /// Attended.
    pub attended: i64,
}

/// Computes the training figures with one grouped query.
pub fn training_stats(conn: &mut DbConnection) -> QueryResult<TrainingStats> {
    let all: Vec<(i64, String, i32)> = trainings::table
        .order(trainings::id)
        .select((trainings::id, trainings::title, trainings::capacity))
        .load(conn)?;
    // Registrations by training and status, from the statistics' summary (deltas included).
    let counts: Vec<(i64, String, i64)> = crate::summary::counts(conn, "figure = 'registrations'")?
        .into_iter()
        .map(|c| (c.scope, c.item, c.n))
        .collect();
    let mut stats = TrainingStats { trainings: i64::try_from(all.len()).unwrap_or(0), ..Default::default() };
    for (id, title, capacity) in all {
        let mut row = TrainingRow {
            training_id: id,
            title,
            capacity,
            registrants: 0,
            selected: 0,
            waitlisted: 0,
            attended: 0,
        };
        for (_, status, n) in counts.iter().filter(|(t, _, _)| *t == id) {
            row.registrants += n;
            match status.as_str() {
                "selected" => row.selected += n,
                "attended" => {
                    row.selected += n;
                    row.attended += n;
                }
                "waitlisted" => row.waitlisted += n,
                _ => {}
            }
        }
        stats.registrants += row.registrants;
        stats.selected += row.selected;
        stats.attended += row.attended;
        stats.by_training.push(row);
    }
    Ok(stats)
}

/// Training figures: trainings, registrants, selected and attended, in total and per training.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "Training figures, or CSV per training", content((TrainingStats = "application/json"), (String = "text/csv", example = json!("training_id,title,capacity,registrants,selected,waitlisted,attended\n1,Pelatihan Peningkatan Mutu dan Kemasan Produk IKM,100,234,100,134,93\n")), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/stats/trainings")]
pub async fn training_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<HttpResponse> {
    caller.hidden_from(&[Role::Bank, Role::Retail])?;
    answer(&req, &state, Some("by_training"), |conn| Ok(training_stats(conn)?)).await
}
