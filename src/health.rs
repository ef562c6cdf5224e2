//! Liveness and readiness probes, public so that a load balancer can call them.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A probe's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: String,
    /// `/readyz` with read replicas (`DATABASE_READ_URLS`): each one, and whether it is in
    /// rotation. A replica out of rotation does not make the instance unready: the primary
    /// serves its reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<crate::db::replicas::ReplicaHealth>>,
}

/// Alive: the process answers. Does not touch the database.
#[utoipa::path(tag = "health", responses((status = 200, description = "The process is up", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok".into(), replicas: None })
}

/// Ready: the database answers and every migration is applied. With read replicas, the answer
/// lists each and whether it is in rotation.
#[utoipa::path(tag = "health", responses((status = 200, description = "Ready to serve", body = Health)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let current = db::run(&state.pool, |conn| {
        db::migrations_current(conn).map_err(|e| AppError::Unavailable(e.to_string()))
    })
    .await?;
    // The list pages' pool of generic plans (PostgreSQL) must reach the database too; a
    // connection that died with the server is dropped here, as the main pool's is above.
    if state.pool.has_generic_plans() {
        db::run(&state.pool.generic_plans(), |conn| {
            use diesel::r2d2::R2D2Connection;
            Ok(conn.ping()?)
        })
        .await?;
    }
    if current {
        let replicas = state.pool.replicas().map(|r| r.health());
        Ok(HttpResponse::Ok().json(Health { status: "ok".into(), replicas }))
    } else {
        Err(AppError::Unavailable("migrations are pending".into()))
    }
}
