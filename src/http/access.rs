//! The access log: one line per request with its id, the caller's user id, the route template,
//! the status and the time taken. Never the query string (search terms and filters can be
//! personal data) nor any header's value but the request id. With `LOG_FORMAT=json` each of
//! these is a field of the line's JSON object (see `crate::logging`).

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::X_REQUEST_ID;

/// The authenticated caller's user id, left in the request's extensions by the `Caller`
/// extractor for the access log.
#[derive(Debug, Clone, Copy)]
pub struct CallerId(pub i64);

/// The log target of access lines.
pub const TARGET: &str = "umkm_api::access";

/// Logs every request once answered (wrapped outside `request_id`, so its id is known).
pub async fn log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    // The socket's peer, not a Forwarded/X-Forwarded-For header a client could forge (behind a
    // proxy this is the proxy; its own log has the client).
    let peer = req.peer_addr().map_or_else(|| "-".to_owned(), |a| a.ip().to_string());
    let res = next.call(req).await?;
    let status = res.status().as_u16();
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let request_id = res.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let user = res.request().extensions().get::<CallerId>().map(|c| c.0);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let latency_ms = (ms * 1000.0).round() / 1000.0;
    // Two calls rather than one: a log field is present or absent, never "None".
    match user {
        Some(user_id) => log::info!(
            target: TARGET,
            request_id = request_id.as_str(), user_id = user_id, method = method.as_str(), route = route.as_str(),
            path = path.as_str(), status = status, latency_ms = latency_ms, peer = peer.as_str();
            "{peer} \"{method} {path}\" {status} {ms:.1}ms request_id={request_id} user_id={user_id} route={route}"
        ),
        None => log::info!(
            target: TARGET,
            request_id = request_id.as_str(), method = method.as_str(), route = route.as_str(),
            path = path.as_str(), status = status, latency_ms = latency_ms, peer = peer.as_str();
            "{peer} \"{method} {path}\" {status} {ms:.1}ms request_id={request_id} route={route}"
        ),
    }
    Ok(res)
}
