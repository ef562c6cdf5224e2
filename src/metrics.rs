//! Prometheus metrics of one instance, in its own registry, served at `/metrics` on a separate
//! listen address (`METRICS_ADDR`) so that they are never reachable through the API's port.
//!
//! Requests are labelled by method, **route template** (`/api/v1/businesses/{id}`, never the
//! raw path: ids would make a series per record) and status; the pool's figures are read when
//! scraped.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, web};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::db::Pool;

/// Latency buckets, in seconds: from a cached read (under a millisecond) to a slow export.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// The route label of a request that matched no route.
const UNMATCHED: &str = "unmatched";
/// The login route: its 401s are failed logins, its 429s throttled ones.
const LOGIN_ROUTE: &str = "/api/v1/auth/token";

/// The instance's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    unavailable: IntCounter,
    login_failures: IntCounter,
    login_throttled: IntCounter,
    pool_size: IntGauge,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    db_errors: IntCounterVec,
    /// The process-wide database error counts already added to `db_errors`.
    db_errors_seen: std::sync::Mutex<[u64; 5]>,
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn labels() -> [&'static str; 3] {
    ["method", "route", "status"]
}

impl Metrics {
    /// The metrics of an instance using `pool`. Fails only if a definition here is invalid.
    pub fn new(pool: &Pool) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| register(&registry, IntCounter::new(name, help)?);
        let gauge = |name: &str, help: &str| register(&registry, IntGauge::new(name, help)?);
        let vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let histogram = |name: &str, help: &str| {
            register(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))?,
            )
        };
        let checkout = histogram(
            "umkm_db_pool_checkout_seconds",
            "Time to get a connection from the pool, waiting for a free one included.",
        )?;
        let timeouts = counter(
            "umkm_db_pool_checkout_timeouts_total",
            "Checkouts that gave up: no connection free in time, or the database unreachable.",
        )?;
        let observed = (checkout.clone(), timeouts.clone());
        // One observer per pool: a second instance's metrics on the same pool leave the first's.
        let _ = pool.observe_checkouts(Box::new(move |took, gave_up| {
            observed.0.observe(took.as_secs_f64());
            if gave_up {
                observed.1.inc();
            }
        }));
        Ok(Metrics {
            requests: vec(
                "umkm_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
                &labels(),
            )?,
            latency: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "umkm_http_request_duration_seconds",
                        "Time from the request's arrival to its answer's head, by method, route template and status.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &labels(),
                )?,
            )?,
            in_flight: gauge("umkm_http_requests_in_flight", "Requests being served now.")?,
            unavailable: counter(
                "umkm_db_unavailable_responses_total",
                "503 answers: the database could not be reached or no connection was free in time.",
            )?,
            login_failures: counter("umkm_login_failures_total", "Logins refused for a wrong e-mail or password.")?,
            login_throttled: counter(
                "umkm_login_throttled_total",
                "Logins refused by the throttle (too many failures for the e-mail).",
            )?,
            pool_size: gauge("umkm_db_pool_max_connections", "The pool's maximum number of connections.")?,
            pool_connections: gauge("umkm_db_pool_connections", "Connections open in the pool (in use and idle).")?,
            pool_idle: gauge("umkm_db_pool_idle_connections", "Idle connections in the pool.")?,
            db_errors: vec(
                "umkm_db_errors_total",
                "Database errors met by the process, by kind (unique and foreign-key violations \
                 answer 409; connection errors 503; other errors 500).",
                &["kind"],
            )?,
            db_errors_seen: std::sync::Mutex::new([0; 5]),
            registry,
        })
    }

    /// Records one answered request.
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status_text = status.to_string();
        let values = [method, route, status_text.as_str()];
        self.requests.with_label_values(&values).inc();
        self.latency.with_label_values(&values).observe(seconds);
        match (route, status) {
            (_, 503) => self.unavailable.inc(),
            (LOGIN_ROUTE, 401) => self.login_failures.inc(),
            (LOGIN_ROUTE, 429) => self.login_throttled.inc(),
            _ => {}
        }
    }

    /// The exposition in Prometheus' text format, the pool's figures read now.
    pub fn render(&self, pool: &Pool) -> String {
        let state = pool.state();
        self.pool_size.set(i64::from(pool.max_size()));
        self.pool_connections.set(i64::from(state.connections));
        self.pool_idle.set(i64::from(state.idle_connections));
        let mut seen = self.db_errors_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, (kind, count)) in crate::error::db_errors::counts().into_iter().enumerate() {
            // Every kind is exported, at 0 until it happens.
            self.db_errors.with_label_values(&[kind]).inc_by(count.saturating_sub(seen[i]));
            seen[i] = count;
        }
        drop(seen);
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_else(|e| {
            log::error!("metrics not rendered: {e}");
            String::new()
        })
    }
}

/// The method as a label: the standard ones, `other` for any other name a client sends (a
/// label per invented method would grow the series without bound).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts a request in flight until dropped: also when actix drops the handler (the client
/// went away, shutdown), so the gauge never creeps up.
struct InFlight(std::sync::Arc<Metrics>);

impl InFlight {
    fn new(metrics: std::sync::Arc<Metrics>) -> Self {
        metrics.in_flight.inc();
        InFlight(metrics)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// The middleware that counts and times every request (outermost, so the time includes the
/// other middleware and the status is the one sent).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(metrics) = req.app_data::<web::Data<Metrics>>().map(|m| m.clone().into_inner()) else {
        return next.call(req).await;
    };
    let method = method_label(req.method());
    let in_flight = InFlight::new(metrics.clone());
    let result = next.call(req).await;
    drop(in_flight);
    let (route, status) = match &result {
        Ok(res) => (res.request().match_pattern(), res.status().as_u16()),
        Err(e) => (None, e.as_response_error().status_code().as_u16()),
    };
    metrics.observe(method, route.as_deref().unwrap_or(UNMATCHED), status, started.elapsed().as_secs_f64());
    result
}

/// The operators' readiness (`GET /readyz` on `METRICS_ADDR`): the public `/readyz`'s checks, and
/// with read replicas (`DATABASE_READ_URLS`) each one, whether it is in rotation and why not. A
/// replica out of rotation does not make the instance unready: the primary serves its reads.
async fn readyz_detail(pool: web::Data<Pool>) -> Result<HttpResponse, crate::error::AppError> {
    crate::db::readiness(&pool).await?;
    let mut answer = serde_json::json!({"status": "ok"});
    if let Some(replicas) = pool.replicas() {
        answer["replicas"] = serde_json::json!(replicas.health());
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// The metrics listener's application, for operators: `GET /metrics`, and `GET /readyz` with
/// the read replicas' detail.
pub fn exporter(
    metrics: web::Data<Metrics>,
    pool: Pool,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(metrics)
        .app_data(web::Data::new(pool))
        .route(
            "/metrics",
            web::get().to(|metrics: web::Data<Metrics>, pool: web::Data<Pool>| async move {
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4; charset=utf-8")
                    .body(metrics.render(&pool))
            }),
        )
        .route("/readyz", web::get().to(readyz_detail))
}
