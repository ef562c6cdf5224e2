//! Metrics (`METRICS_ADDR`): every request counted and timed once, by method, route template
//! and status; login failures and throttles; the pool's figures; nothing on the API's port.

use actix_web::http::StatusCode;
use umkm_api::domain::role::Role;

use crate::helpers::*;

/// The value of the sample `series` (`name{labels}`), if the exposition has it.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn requests(method: &str, route: &str, status: u16) -> String {
    format!(r#"umkm_http_requests_total{{method="{method}",route="{route}",status="{status}"}}"#)
}

#[actix_rt::test]
async fn each_request_is_counted_once_by_route_template_and_status() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Officer).await;
    let id = app.create_business(&token, &business_json(1)).await["id"].as_i64().unwrap();
    let by_id = requests("GET", "/api/v1/businesses/{id}", 200);
    assert_eq!(sample(&app.scrape().await, &by_id), None);

    // 23 reads at once, 5 of records that do not exist, one unknown path.
    let path = format!("/api/v1/businesses/{id}");
    let reads: Vec<_> = (0..23).map(|_| app.get(&path).token(&token).send()).collect();
    for reply in futures_util::future::join_all(reads).await {
        assert_eq!(reply.status, StatusCode::OK);
    }
    for missing in 990_001..990_006 {
        let reply = app.get(&format!("/api/v1/businesses/{missing}")).token(&token).send().await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.get("/api/v1/no-such-thing/7").send().await.status, StatusCode::NOT_FOUND);
    // An invented method is labelled `other`, not by its name (no series per invented method).
    let invented = actix_web::http::Method::from_bytes(b"BREW").unwrap();
    assert!(app.call(invented, "/api/v1/regions").send().await.status.is_client_error());
    // Wrong passwords until the throttle answers.
    app.create_user("watched@metrics.test", Role::Viewer, None);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let body = serde_json::json!({"email": "watched@metrics.test", "password": "not the password"});
        statuses.push(app.post("/api/v1/auth/token").json(&body).send().await.status.as_u16());
    }
    let failed = statuses.iter().filter(|s| **s == 401).count() as f64;
    let throttled = statuses.iter().filter(|s| **s == 429).count() as f64;
    assert!(failed >= 1.0 && throttled >= 1.0 && failed + throttled == 7.0, "{statuses:?}");

    let after = app.scrape().await;
    assert_eq!(sample(&after, &by_id), Some(23.0), "{after}");
    let timed = r#"umkm_http_request_duration_seconds_count{method="GET",route="/api/v1/businesses/{id}",status="200"}"#;
    assert_eq!(sample(&after, timed), Some(23.0));
    assert_eq!(sample(&after, &requests("GET", "/api/v1/businesses/{id}", 404)), Some(5.0));
    assert_eq!(sample(&after, &requests("GET", "unmatched", 404)), Some(1.0));
    assert_eq!(sample(&after, &requests("POST", "/api/v1/businesses", 201)), Some(1.0));
    assert_eq!(sample(&after, &requests("POST", "/api/v1/auth/token", 401)), Some(failed));
    assert_eq!(sample(&after, "umkm_login_failures_total"), Some(failed));
    assert_eq!(sample(&after, "umkm_login_throttled_total"), Some(throttled));
    assert_eq!(sample(&after, "umkm_db_unavailable_responses_total"), Some(0.0));
    assert_eq!(sample(&after, "umkm_http_requests_in_flight"), Some(0.0));
    assert!(
        after.contains(r#"method="other",route="/api/v1/regions""#) && !after.contains("BREW"),
        "{after}"
    );
    // Route templates only: no id and no raw path in any label.
    for raw in [format!("/api/v1/businesses/{id}\""), "990001".to_owned(), "no-such-thing".to_owned()] {
        assert!(!after.contains(&raw), "{raw} in the metrics");
    }
    // The pool: its size (on PostgreSQL with the pool of generic plans, as large), and a
    // checkout timed for every database call.
    let pools = if umkm_api::db::Backend::of_url(&app.database_url) == umkm_api::db::Backend::Postgres {
        2.0
    } else {
        1.0
    };
    assert_eq!(sample(&after, "umkm_db_pool_max_connections"), Some(4.0 * pools));
    assert!(sample(&after, "umkm_db_pool_checkout_seconds_count").is_some_and(|n| n >= 29.0), "{after}");
    assert_eq!(sample(&after, "umkm_db_pool_checkout_timeouts_total"), Some(0.0));
    // No password, token or personal data in the exposition.
    assert!(!after.contains(&token) && !after.contains("watched@metrics.test"));

    // The API's own port does not serve them.
    assert_eq!(app.get("/metrics").send().await.status, StatusCode::NOT_FOUND);
}

#[actix_rt::test]
async fn database_errors_are_counted_by_kind() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Officer).await;
    let unique = r#"umkm_db_errors_total{kind="unique_violation"}"#;
    let before = app.scrape().await;
    // Every kind is exported from the start.
    for kind in ["unique_violation", "foreign_key_violation", "serialization_failure", "connection", "other"]
    {
        assert!(sample(&before, &format!(r#"umkm_db_errors_total{{kind="{kind}"}}"#)).is_some(), "{kind}");
    }
    app.create_business(&token, &business_json(1)).await;
    // The same NIB again: the database refuses it, the client gets 409.
    let again = app.post("/api/v1/businesses").token(&token).json(&business_json(1)).send().await;
    again.assert_problem(409);
    // Counted per process: other tests running at once may add theirs.
    let after = app.scrape().await;
    assert!(sample(&after, unique).unwrap() >= sample(&before, unique).unwrap() + 1.0, "{after}");
}

#[actix_rt::test]
async fn two_instances_count_apart() {
    let app = spawn_app().await;
    let other = app.another_instance();
    let token = app.token_for(Role::Admin).await;
    for _ in 0..3 {
        assert_eq!(other.get("/api/v1/regions").token(&token).send().await.status, StatusCode::OK);
    }
    let series = requests("GET", "/api/v1/regions", 200);
    assert_eq!(sample(&other.scrape().await, &series), Some(3.0));
    assert_eq!(sample(&app.scrape().await, &series), None);
    drop(other);
}
