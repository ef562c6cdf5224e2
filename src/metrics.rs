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
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
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

/// A metric's definition is a constant of this file; registering it can only fail on a
/// duplicate name, which would be a bug here.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        log::error!("metric not registered: {e}");
    }
    metric
}

fn labels() -> [&'static str; 3] {
    ["method", "route", "status"]
}

impl Metrics {
    /// The metrics of an instance using `pool`.
    pub fn new(pool: &Pool) -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help).map(|c| register(&registry, c)).unwrap_or_else(defined)
        };
        let gauge = |name: &str, help: &str| {
            IntGauge::new(name, help).map(|g| register(&registry, g)).unwrap_or_else(defined)
        };
        let requests = IntCounterVec::new(
            Opts::new(
                "umkm_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
            ),
            &labels(),
        )
        .map(|c| register(&registry, c))
        .unwrap_or_else(defined);
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "umkm_http_request_duration_seconds",
                "Time from the request's arrival to its answer's head, by method, route template and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &labels(),
        )
        .map(|h| register(&registry, h))
        .unwrap_or_else(defined);
        let pool_stats = pool.stats();
        register(&registry, pool_stats.checkout.clone());
        register(&registry, pool_stats.timeouts.clone());
        Metrics {
            requests,
            latency,
            in_flight: gauge("umkm_http_requests_in_flight", "Requests being served now."),
            unavailable: counter(
                "umkm_db_unavailable_responses_total",
                "503 answers: the database could not be reached or no connection was free in time.",
            ),
            login_failures: counter(
                "umkm_login_failures_total",
                "Logins refused for a wrong e-mail or password.",
            ),
            login_throttled: counter(
                "umkm_login_throttled_total",
                "Logins refused by the throttle (too many failures for the e-mail).",
            ),
            pool_size: gauge("umkm_db_pool_max_connections", "The pool's maximum number of connections."),
            pool_connections: gauge(
                "umkm_db_pool_connections",
                "Connections open in the pool (in use and idle).",
            ),
            pool_idle: gauge("umkm_db_pool_idle_connections", "Idle connections in the pool."),
            db_errors: IntCounterVec::new(
                Opts::new(
                    "umkm_db_errors_total",
                    "Database errors met by the process, by kind (unique and foreign-key violations \
                     answer 409; connection errors 503; other errors 500).",
                ),
                &["kind"],
            )
            .map(|c| register(&registry, c))
            .unwrap_or_else(defined),
            db_errors_seen: std::sync::Mutex::new([0; 5]),
            registry,
        }
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

/// Creating a metric fails only for an invalid name, help or label, all constants here.
fn defined<T>(_: prometheus::Error) -> T {
    unreachable!("a metric with a valid constant name, help and labels is always created")
}

/// The middleware that counts and times every request (outermost, so the time includes the
/// other middleware and the status is the one sent).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().as_str().to_owned();
    if let Some(m) = &metrics {
        m.in_flight.inc();
    }
    let result = next.call(req).await;
    if let Some(m) = &metrics {
        m.in_flight.dec();
        let (route, status) = match &result {
            Ok(res) => (res.request().match_pattern(), res.status().as_u16()),
            Err(e) => (None, e.as_response_error().status_code().as_u16()),
        };
        m.observe(&method, route.as_deref().unwrap_or(UNMATCHED), status, started.elapsed().as_secs_f64());
    }
    result
}

/// The metrics listener's application: `GET /metrics` and nothing else.
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
    App::new().app_data(metrics).app_data(web::Data::new(pool)).route(
        "/metrics",
        web::get().to(|metrics: web::Data<Metrics>, pool: web::Data<Pool>| async move {
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(metrics.render(&pool))
        }),
    )
}
