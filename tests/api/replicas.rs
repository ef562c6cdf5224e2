//! Read replicas (`DATABASE_READ_URLS`) as this suite can build them: a "replica" that is not a
//! standby and one that is down stay out of rotation, `/readyz` says why, every read is served
//! by the primary and a client reads its own write. (A real streaming replica, its lag and its
//! failures are `tests/faults/cluster.py`'s.) The consistency token's form and signature are
//! checked on both back ends.

use std::time::Duration;

use serde_json::Value;
use umkm_api::db::replicas::Lsn;
use umkm_api::domain::role::Role;

use crate::helpers::{business_json, spawn_app, spawn_app_with};

#[actix_rt::test]
async fn without_replicas_no_token_is_given_and_a_malformed_one_is_refused() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let reply = app.post("/api/v1/businesses").token(&officer).json(&business_json(1)).send().await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("consistency-token"), None);
    for bad in ["yesterday", "1/2/3", "G/0", ""] {
        let problem = app
            .get("/api/v1/businesses")
            .token(&officer)
            .header("Consistency-Token", bad)
            .send()
            .await
            .assert_problem(400);
        assert!(problem["detail"].as_str().unwrap().contains("Consistency-Token"), "{bad:?}");
    }
}

#[actix_rt::test]
async fn replicas_out_of_rotation_leave_every_read_to_the_primary() {
    let Some(primary) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        return; // Replicas are PostgreSQL's.
    };
    let down = "postgres://postgres@127.0.0.1:1/nowhere".to_owned();
    let app = spawn_app_with(|config| config.database_read_urls = vec![primary.clone(), down]).await;
    let officer = app.token_for(Role::Officer).await;
    actix_rt::time::sleep(Duration::from_millis(1000)).await; // the first checks
    assert_eq!(app.get("/readyz").send().await.status, 200, "the primary serves: ready");
    let ready = app.operator("/readyz").await;
    assert_eq!(ready.status, 200);
    let replicas = ready.json()["replicas"].as_array().unwrap().clone();
    assert_eq!(replicas.len(), 2);
    assert!(replicas.iter().all(|r| r["healthy"] == false));
    assert!(replicas[0]["reason"].as_str().unwrap().contains("not a standby"), "{replicas:?}");
    assert!(replicas[1]["reason"].as_str().unwrap().starts_with("unreachable"), "{replicas:?}");
    assert_eq!(replicas[1]["name"], "127.0.0.1:1/nowhere");
    let body = String::from_utf8(ready.body.clone()).unwrap();
    assert!(!body.contains("postgres@") && !body.contains("://"), "no credentials in /readyz: {body}");

    let reply = app.post("/api/v1/businesses").token(&officer).json(&business_json(7)).send().await;
    assert_eq!(reply.status, 201);
    let token = reply.header("consistency-token").expect("a write answers its position");
    let lsn = token.split('.').next().and_then(Lsn::parse);
    assert!(lsn.is_some_and(|l| l > Lsn(0)), "{token}");
    let id = reply.json()["id"].clone();
    for path in ["/api/v1/businesses", "/api/v1/stats/overview"] {
        let reply = app.get(path).token(&officer).header("Consistency-Token", &token).send().await;
        assert_eq!(reply.status, 200, "{path}");
    }
    let list: Value =
        app.get("/api/v1/businesses").token(&officer).header("Consistency-Token", &token).send().await.json();
    assert!(list["data"].as_array().unwrap().iter().any(|b| b["id"] == id), "the client reads its write");
    let export = app.get("/api/v1/businesses").token(&officer).header("Accept", "text/csv").send().await;
    assert_eq!(export.status, 200);
}

/// Issue 28, item 8: a Consistency-Token is what a write answered, not any position: one made
/// up (the farthest position there is, which would send every read to the primary) is refused
/// on both back ends.
#[actix_rt::test]
async fn a_made_up_consistency_token_is_refused() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    // A bare position, and one in the token's form with a MAC of no deployment.
    let now = chrono::Utc::now().timestamp();
    let shaped = format!("FFFFFFFF/FFFFFFFF.{now}.AAAAAAAAAAAAAAAAAAAAAA");
    for forged in ["FFFFFFFF/FFFFFFFF", "0/16B3740", shaped.as_str()] {
        let problem = app
            .get("/api/v1/businesses")
            .token(&officer)
            .header("Consistency-Token", forged)
            .send()
            .await
            .assert_problem(400);
        assert!(problem["detail"].as_str().unwrap().contains("Consistency-Token"), "{forged}: {problem}");
    }
}

/// Issue 28, item 12: the public `/readyz` says ready or not, and nothing of the replicas'
/// hosts, ports or errors; the operators' listener (`METRICS_ADDR`) has the detail.
#[actix_rt::test]
async fn readyz_keeps_the_replicas_detail_for_operators() {
    let Some(primary) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        return; // Replicas are PostgreSQL's.
    };
    let down = "postgres://postgres@127.0.0.1:1/nowhere".to_owned();
    let app = spawn_app_with(|config| config.database_read_urls = vec![primary.clone(), down]).await;
    actix_rt::time::sleep(Duration::from_millis(1000)).await; // the first checks
    let public = app.get("/readyz").send().await;
    assert_eq!(public.status, 200);
    let body = String::from_utf8(public.body.clone()).unwrap();
    for secret in ["127.0.0.1:1", "nowhere", "unreachable", "standby", "reason"] {
        assert!(!body.contains(secret), "the public /readyz tells {secret:?}: {body}");
    }
    let detail = app.operator("/readyz").await;
    assert_eq!(detail.status, 200);
    let replicas = detail.json()["replicas"].as_array().cloned().unwrap_or_default();
    assert_eq!(replicas.len(), 2, "{}", String::from_utf8_lossy(&detail.body));
    assert_eq!(replicas[1]["name"], "127.0.0.1:1/nowhere");
    assert!(replicas[1]["reason"].as_str().unwrap().starts_with("unreachable"), "{replicas:?}");
}
