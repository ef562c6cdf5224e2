//! Read-your-writes across replicas and instances. With read replicas configured, a successful
//! write answers `Consistency-Token: <WAL position>` (the primary's position after it
//! committed); a client that sends the token back on a later request is served its reads by a
//! replica only once that replica has replayed the position, else by the primary, so it sees
//! its own write through any instance. Without replicas no token is given and one sent is only
//! checked for form.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::db::replicas::{self, Lsn};
use crate::error::AppError;
use crate::state::AppState;

/// The header that carries the token, both ways.
pub const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static("consistency-token");

/// Reads the request's token (400 if malformed), runs the request with it, and gives a
/// successful write's answer its token.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let token = match req.headers().get(&CONSISTENCY_TOKEN) {
        None => Lsn::default(),
        Some(value) => match value.to_str().ok().and_then(Lsn::parse) {
            Some(lsn) => lsn,
            None => {
                let problem = AppError::BadRequest(
                    "Consistency-Token must be a value a write answered with, e.g. 16/B374D848".into(),
                );
                return Ok(req.into_response(problem.error_response()).map_into_right_body());
            }
        },
    };
    let replicated = req
        .app_data::<web::Data<AppState>>()
        .filter(|state| state.pool.replicas().is_some())
        .map(|state| state.pool.clone());
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut res = replicas::reading_after(token, next.call(req)).await?;
    if let Some(pool) = replicated.filter(|_| write && res.status().is_success()) {
        // The handler has committed: the primary's position now is at or past its commit.
        match crate::db::run(&pool, replicas::primary_position).await {
            Ok(lsn) => {
                if let Ok(value) = HeaderValue::from_str(&lsn.to_string()) {
                    res.headers_mut().insert(CONSISTENCY_TOKEN, value);
                }
            }
            Err(e) => log::warn!("no consistency token for a write: {e}"),
        }
    }
    Ok(res.map_into_left_body())
}
