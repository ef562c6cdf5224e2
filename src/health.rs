//! Liveness and readiness probes, public so that a load balancer can call them.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db;
use crate::error::AppResult;
use crate::state::AppState;

/// A probe's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Alive: the process answers. Does not touch the database.
#[utoipa::path(tag = "health", responses((status = 200, description = "The process is up", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok".into() })
}

/// Ready: the database answers and every migration is applied. The answer says no more than
/// that (read replicas' hosts and errors are for operators: the metrics listener's `/readyz`).
#[utoipa::path(tag = "health", responses((status = 200, description = "Ready to serve", body = Health)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    db::readiness(&state.pool).await?;
    Ok(HttpResponse::Ok().json(Health { status: "ok".into() }))
}
