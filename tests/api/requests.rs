//! Data subjects' requests (issue 30): recorded with their channel and a 72-hour deadline,
//! moved through their states once each, audited, listed when overdue; office staff only.

use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, bank_token, business_json, spawn_app};

async fn person(app: &TestApp, officer: &str) -> i64 {
    app.create_business(officer, &business_json(1)).await["owner_id"].as_i64().unwrap()
}

async fn request(app: &TestApp, officer: &str, body: Value) -> Value {
    let reply = app.post("/api/v1/data-requests").token(officer).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let created = reply.json();
    assert_eq!(reply.header("location").unwrap(), format!("/api/v1/data-requests/{}", created["id"]));
    assert_eq!(reply.header("etag").unwrap(), format!("\"{}\"", created["version"]));
    created
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[actix_rt::test]
async fn a_request_is_due_72_hours_after_it_came_and_is_listed_when_overdue() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let person = person(&app, &officer).await;

    let fresh =
        request(&app, &officer, json!({"person_id": person, "kind": "access", "channel": "in_person"})).await;
    assert_eq!(fresh["status"], "received");
    assert_eq!(fresh["overdue"], false);
    assert_eq!(time(&fresh["due_at"]) - time(&fresh["received_at"]), chrono::Duration::hours(72));
    let four_days_ago = (chrono::Utc::now() - chrono::Duration::days(4)).to_rfc3339();
    let late = request(
        &app,
        &officer,
        json!({"person_id": person, "kind": "erasure", "channel": "letter", "received_at": four_days_ago,
               "note": "surat tertanggal 3 Desember"}),
    )
    .await;
    assert_eq!(late["overdue"], true);

    let overdue = app.get("/api/v1/data-requests?overdue=true").token(&admin).send().await.json();
    let ids: Vec<&Value> = overdue["data"].as_array().unwrap().iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, vec![&late["id"]]);
    let all =
        app.get(&format!("/api/v1/data-requests?person_id={person}")).token(&officer).send().await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    assert_eq!(all["data"][0]["id"], late["id"], "newest first");

    // Closed, it is no longer overdue; every step is in the audit log.
    let path = format!("/api/v1/data-requests/{}", late["id"]);
    let taken = app.patch(&path).token(&officer).json(&json!({"status": "in_progress"})).send().await;
    assert_eq!(taken.status, 200);
    assert_eq!(taken.json()["version"], 2);
    let refused = app
        .patch(&path)
        .token(&officer)
        .header("if-match", "\"2\"")
        .json(&json!({"status": "refused", "refusal_reason": "financing runs until 2027"}))
        .send()
        .await;
    assert_eq!(refused.status, 200, "{}", String::from_utf8_lossy(&refused.body));
    let refused = refused.json();
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["overdue"], false);
    assert!(refused["closed_at"].is_string());
    assert_eq!(refused["note"], "surat tertanggal 3 Desember", "kept");
    let overdue = app.get("/api/v1/data-requests?overdue=true").token(&admin).send().await.json();
    assert!(overdue["data"].as_array().unwrap().is_empty());
    let audit = app
        .get(&format!("/api/v1/audit-log?entity=data_request&entity_id={}", late["id"]))
        .token(&admin)
        .send()
        .await;
    let actions: Vec<Value> =
        audit.json()["data"].as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
    assert_eq!(actions, vec![json!("update"), json!("update"), json!("create")]);

    // The person's data export lists both.
    let export =
        app.get(&format!("/api/v1/persons/{person}/data-export")).token(&officer).send().await.json();
    assert_eq!(export["requests"].as_array().unwrap().len(), 2);
    assert!(export["writes"].as_array().unwrap().iter().any(|w| w["entity"] == "data_request"));
}

#[actix_rt::test]
async fn bad_requests_and_steps_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let person = person(&app, &officer).await;
    let before = app.count("data_requests");
    for (body, status) in [
        (json!({"person_id": 999_999, "kind": "access", "channel": "email"}), 422),
        (json!({"person_id": person, "kind": "access"}), 422),
        (json!({"person_id": person, "kind": "access", "channel": "pigeon"}), 422),
        (json!({"person_id": person, "kind": "everything", "channel": "email"}), 422),
        (
            json!({"person_id": person, "kind": "access", "channel": "email", "received_at": "2999-01-01T00:00:00Z"}),
            422,
        ),
        (json!({"person_id": person, "kind": "access", "channel": "email", "note": "x".repeat(2001)}), 422),
        (json!({"person_id": person, "kind": "access", "channel": "email", "extra": 1}), 422),
    ] {
        let reply = app.post("/api/v1/data-requests").token(&officer).json(&body).send().await;
        let problem = reply.assert_problem(reply.status.as_u16());
        assert_eq!(reply.status, status, "{body}: {problem}");
    }
    assert_eq!(app.count("data_requests"), before, "nothing written");

    let created =
        request(&app, &officer, json!({"person_id": person, "kind": "correction", "channel": "phone"})).await;
    let path = format!("/api/v1/data-requests/{}", created["id"]);
    for body in [
        json!({"status": "refused"}),
        json!({"status": "done", "refusal_reason": "no"}),
        json!({"status": "received"}),
        json!({"status": "lost"}),
    ] {
        let reply = app.patch(&path).token(&officer).json(&body).send().await;
        assert!(reply.status == 422 || reply.status == 400, "{body}: {}", reply.status);
    }
    app.patch(&path)
        .token(&officer)
        .header("if-match", "\"7\"")
        .json(&json!({"status": "done"}))
        .send()
        .await
        .assert_problem(412);
    assert_eq!(app.patch(&path).token(&officer).json(&json!({"status": "done"})).send().await.status, 200);
    let closed = app.patch(&path).token(&officer).json(&json!({"status": "in_progress"})).send().await;
    assert!(closed.assert_problem(409)["detail"].as_str().unwrap().contains("closed"));
    let stored = app.get(&path).token(&officer).send().await.json();
    assert_eq!((stored["status"].clone(), stored["version"].clone()), (json!("done"), json!(2)));
    app.get("/api/v1/data-requests/999999").token(&officer).send().await.assert_problem(404);
    app.get("/api/v1/data-requests?cursor=zz").token(&officer).send().await.assert_problem(400);
}

#[actix_rt::test]
async fn requests_are_for_office_staff() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let person = person(&app, &officer).await;
    let created =
        request(&app, &officer, json!({"person_id": person, "kind": "objection", "channel": "web"})).await;
    let path = format!("/api/v1/data-requests/{}", created["id"]);
    let body = json!({"person_id": person, "kind": "access", "channel": "web"});
    let viewer = app.token_for(Role::Viewer).await;
    let retail = app.token_for(Role::Retail).await;
    let bank = bank_token(&app, 1).await;
    let admin = app.token_for(Role::Admin).await;
    assert_eq!(app.get(&path).token(&admin).send().await.status, 200);
    for (token, status) in [(&viewer, 403), (&retail, 404), (&bank, 404)] {
        app.get(&path).token(token).send().await.assert_problem(status);
        app.get("/api/v1/data-requests").token(token).send().await.assert_problem(status);
        app.post("/api/v1/data-requests").token(token).json(&body).send().await.assert_problem(status);
        app.patch(&path).token(token).json(&json!({"status": "done"})).send().await.assert_problem(status);
    }
    app.get("/api/v1/data-requests").send().await.assert_problem(401);
    assert_eq!(app.get(&path).token(&officer).send().await.json()["status"], "received");
}

#[actix_rt::test]
async fn concurrent_steps_take_a_request_on_once() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let person = person(&app, &officer).await;
    let created =
        request(&app, &officer, json!({"person_id": person, "kind": "access", "channel": "email"})).await;
    let path = format!("/api/v1/data-requests/{}", created["id"]);
    // Eight officers take it up at once, without If-Match: one moves it, the others are told
    // it already moved; with If-Match of the same version, one wins and the others get 412.
    let steps =
        (0..8).map(|_| app.patch(&path).token(&officer).json(&json!({"status": "in_progress"})).send());
    let replies = futures_util::future::join_all(steps).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 409, 409, 409, 409, 409, 409, 409]);
    let steps = (0..8).map(|_| {
        app.patch(&path).token(&officer).header("if-match", "\"2\"").json(&json!({"status": "done"})).send()
    });
    let replies = futures_util::future::join_all(steps).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200);
    assert!(statuses[1..].iter().all(|s| *s == 412 || *s == 409), "{statuses:?}");
    let stored = app.get(&path).token(&officer).send().await.json();
    assert_eq!((stored["status"].clone(), stored["version"].clone()), (json!("done"), json!(3)));
    // One audit entry per step that happened: the creation and two updates.
    let admin = app.token_for(Role::Admin).await;
    let audit = app
        .get(&format!("/api/v1/audit-log?entity=data_request&entity_id={}", created["id"]))
        .token(&admin)
        .send()
        .await
        .json();
    assert_eq!(audit["data"].as_array().unwrap().len(), 3, "{audit}");
}
