//! Read-your-writes across replicas and instances. With read replicas configured, a successful
//! write answers `Consistency-Token: <WAL position>.<time>.<MAC>`: the primary's position after
//! it committed, when, and a MAC of both under a key derived from `JWT_SECRET` and the
//! deployment, so that a client can send back only what a write gave it. A client that sends the
//! token back on a later request is served its reads by a replica only once that replica has
//! replayed the position, else by the primary, so it sees its own write through any instance.
//!
//! A token holds for [`TOKEN_TTL`], or `REPLICA_MAX_LAG_MS` and 5 seconds when that is longer:
//! by then every replica in rotation has replayed it, and an older one is ignored. One that is
//! malformed or whose MAC is not this deployment's is refused with 400 on either back end;
//! without replicas no token is given.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::crypto::Keys;
use crate::db::replicas::{self, Lsn};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The header that carries the token, both ways.
pub const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static("consistency-token");

/// How long a token holds at least.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);

/// How long a token holds with replicas that may lag `max_lag`: past it, every replica in
/// rotation has replayed it.
pub fn token_ttl(max_lag: Duration) -> Duration {
    TOKEN_TTL.max(max_lag + Duration::from_secs(5))
}

/// The token for position `lsn`, made at `now` (seconds since the epoch).
pub fn seal(keys: &Keys, lsn: Lsn, now: i64) -> AppResult<String> {
    let body = format!("{lsn}.{now}");
    Ok(format!("{body}.{}", keys.consistency_mac(body.as_bytes())?))
}

/// The position a token sent at `now` asks reads to see: `Lsn(0)` once it is older than `ttl`;
/// `None` when it is malformed or not this deployment's.
pub fn open(keys: &Keys, token: &str, now: i64, ttl: Duration) -> Option<Lsn> {
    let (body, mac) = token.rsplit_once('.')?;
    let (lsn, made) = body.split_once('.')?;
    let (lsn, made) = (Lsn::parse(lsn)?, made.parse::<i64>().ok()?);
    if !keys.consistency_mac_matches(body.as_bytes(), mac) {
        return None;
    }
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    Some(if now.saturating_sub(made) > ttl { Lsn::default() } else { lsn })
}

/// Reads the request's token (400 if malformed or forged), runs the request with it, and gives
/// a successful write's answer its token.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let token = match (req.headers().get(&CONSISTENCY_TOKEN), &state) {
        (None, _) | (_, None) => Lsn::default(),
        (Some(value), Some(state)) => match value.to_str().ok().and_then(|t| {
            open(&state.keys, t, chrono::Utc::now().timestamp(), token_ttl(state.config.replica_max_lag))
        }) {
            Some(lsn) => lsn,
            None => {
                let problem = AppError::BadRequest(
                    "Consistency-Token must be a value a write of this deployment answered with".into(),
                );
                return Ok(req.into_response(problem.error_response()).map_into_right_body());
            }
        },
    };
    let replicated = state.filter(|state| state.pool.replicas().is_some());
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut res = replicas::reading_after(token, next.call(req)).await?;
    if let Some(state) = replicated.filter(|_| write && res.status().is_success()) {
        // The handler has committed: the primary's position now is at or past its commit.
        match crate::db::run(&state.pool, replicas::primary_position).await {
            Ok(lsn) => match seal(&state.keys, lsn, chrono::Utc::now().timestamp()) {
                Ok(token) => {
                    if let Ok(value) = HeaderValue::from_str(&token) {
                        res.headers_mut().insert(CONSISTENCY_TOKEN, value);
                    }
                }
                Err(e) => log::warn!("no consistency token for a write: {e}"),
            },
            Err(e) => log::warn!("no consistency token for a write: {e}"),
        }
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keys(secret: &[u8], deployment: &str) -> Keys {
        Keys::new(&Secret::new(secret.to_vec()), Duration::from_secs(60), deployment).unwrap()
    }

    #[test]
    fn a_token_opens_only_with_its_deployments_key_and_only_for_its_time() {
        let ours = keys(b"a-secret-that-is-at-least-32-bytes-long!", "one");
        let lsn = Lsn::parse("16/B374D848").unwrap();
        let token = seal(&ours, lsn, 1_000).unwrap();
        assert!(token.starts_with("16/B374D848.1000."), "{token}");
        assert_eq!(open(&ours, &token, 1_000, TOKEN_TTL), Some(lsn));
        assert_eq!(open(&ours, &token, 1_060, TOKEN_TTL), Some(lsn));
        assert_eq!(open(&ours, &token, 1_061, TOKEN_TTL), Some(Lsn::default()), "past its time, ignored");
        // Replicas allowed to lag 10 minutes: the token holds as long.
        let long = token_ttl(Duration::from_secs(600));
        assert_eq!(long, Duration::from_secs(605));
        assert_eq!(open(&ours, &token, 1_600, long), Some(lsn));
        // Another deployment with the same secret, another secret, a changed position or time.
        assert_eq!(
            open(&keys(b"a-secret-that-is-at-least-32-bytes-long!", "two"), &token, 1_000, TOKEN_TTL),
            None
        );
        assert_eq!(
            open(&keys(b"another-secret-at-least-32-bytes-long!!!", "one"), &token, 1_000, TOKEN_TTL),
            None
        );
        let mac = token.rsplit_once('.').unwrap().1;
        for forged in [
            format!("FFFFFFFF/FFFFFFFF.1000.{mac}"),
            format!("16/B374D848.9999.{mac}"),
            "16/B374D848".to_owned(),
            "16/B374D848.1000".to_owned(),
            "16/B374D848.1000.".to_owned(),
            format!("16/B374D848.x.{mac}"),
        ] {
            assert_eq!(open(&ours, &forged, 1_000, TOKEN_TTL), None, "{forged}");
        }
    }
}
