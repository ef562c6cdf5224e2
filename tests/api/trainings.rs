use chrono::{Duration, Utc};
use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, business_json, spawn_app};

/// Imports `n` businesses (every third one kecil, the rest mikro); returns their ids.
async fn businesses(app: &TestApp, token: &str, n: usize) -> Vec<i64> {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            let mut b = business_json(i);
            if i % 3 == 0 {
                b["annual_revenue_idr"] = json!(5_000_000_000i64);
            }
            b
        })
        .collect();
    let reply = app.post("/api/v1/businesses/import").token(token).json(&json!(rows)).send().await;
    assert_eq!(reply.status, 201);
    let list = app.get("/api/v1/businesses?limit=500").token(token).send().await.json();
    list["data"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect()
}

fn training(days_ahead: i64, capacity: i32) -> Value {
    let starts = (Utc::now() + Duration::days(days_ahead)).date_naive();
    json!({"title": "Pelatihan Kewirausahaan Mandiri UMKM", "theme": "Strategi UMKM bertahan di masa pandemi",
           "venue": "Aula Gajah Mada Setda Lamongan", "starts_on": starts, "ends_on": starts, "capacity": capacity})
}

async fn statuses(app: &TestApp, token: &str, training: i64) -> Vec<(i64, String, i64)> {
    let page = app
        .get(&format!("/api/v1/trainings/{training}/registrations?limit=500"))
        .token(token)
        .send()
        .await
        .json();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
                r["selection_rank"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn the_articles_training_selects_100_of_234_the_same_way_twice() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let ids = businesses(&app, &officer, 234).await;
    let mut body = training(30, 100);
    body["registrations"] = json!(ids.iter().map(|id| json!({"business_id": id})).collect::<Vec<_>>());
    let reply = app.post("/api/v1/trainings").token(&officer).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let created = reply.json();
    assert_eq!(created["registrants"], 234);
    assert_eq!(created["selected"], 0);
    let id = created["id"].as_i64().unwrap();

    let selection = app.post(&format!("/api/v1/trainings/{id}/selection")).token(&officer).send().await;
    assert_eq!(selection.status, 200, "{}", String::from_utf8_lossy(&selection.body));
    assert_eq!(selection.json(), json!({"selected": 100, "waitlisted": 134, "skipped": 0}));
    let first = statuses(&app, &officer, id).await;
    assert_eq!(first.iter().filter(|r| r.1 == "selected").count(), 100);
    assert_eq!(first.iter().filter(|r| r.1 == "waitlisted").count(), 134);
    // 156 of the 234 are mikro: the 100 seats all go to mikro businesses, earliest first.
    let selected_businesses: Vec<usize> =
        first.iter().enumerate().filter(|(_, r)| r.1 == "selected").map(|(i, _)| i).collect();
    assert!(selected_businesses.iter().all(|i| i % 3 != 0), "kecil businesses wait");

    let again = app.post(&format!("/api/v1/trainings/{id}/selection")).token(&officer).send().await.json();
    assert_eq!(again, json!({"selected": 100, "waitlisted": 134, "skipped": 0}));
    assert_eq!(statuses(&app, &officer, id).await, first, "the same result on a second run");
    // Each run changes the training (its selected_at), so its ETag moves on.
    let training = app.get(&format!("/api/v1/trainings/{id}")).token(&officer).send().await;
    assert_eq!(training.header("etag").as_deref(), Some("\"3\""));
    assert!(training.json()["selected_at"].is_string());

    // An officer overrides one registration afterwards.
    let (waiting, _, _) = first.iter().find(|r| r.1 == "waitlisted").unwrap().clone();
    let reply = app
        .patch(&format!("/api/v1/registrations/{waiting}"))
        .token(&officer)
        .json(&json!({"status": "selected", "note": "moved up by the head of office"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "selected");
    let reply = app
        .patch(&format!("/api/v1/registrations/{waiting}"))
        .token(&officer)
        .json(&json!({"status": "attended"}))
        .send()
        .await;
    reply.assert_problem(409);

    let stats =
        app.get("/api/v1/stats/trainings").token(&app.token_for(Role::Viewer).await).send().await.json();
    assert_eq!(
        (stats["trainings"].clone(), stats["registrants"].clone(), stats["selected"].clone()),
        (json!(1), json!(234), json!(101))
    );
    assert_eq!(stats["by_training"][0]["waitlisted"], 133);
    let page = app
        .get(&format!("/api/v1/trainings/{id}/registrations?status=selected&count=true&limit=1"))
        .token(&officer)
        .send()
        .await
        .json();
    assert_eq!(page["total"], 101);
}

#[actix_rt::test]
async fn a_nested_create_with_one_bad_registration_writes_nothing() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let ids = businesses(&app, &officer, 5).await;
    let mut body = training(10, 3);
    body["registrations"] = json!([
        {"business_id": ids[0]}, {"business_id": 999_999}, {"business_id": ids[1], "colour": "red"},
        {"business_id": ids[2]}, {"business_id": ids[0]}
    ]);
    let problem = app.post("/api/v1/trainings").token(&officer).json(&body).send().await.assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["registrations[1].business_id", "registrations[2].colour", "registrations[4].business_id"]
    );
    assert_eq!(app.count("trainings"), 0);
    assert_eq!(app.count("registrations"), 0);

    let mut body = training(10, 0);
    body["ends_on"] = json!("2000-01-01");
    let problem = app.post("/api/v1/trainings").token(&officer).json(&body).send().await.assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["capacity", "ends_on"]);
    assert_eq!(app.count("trainings"), 0);
}

#[actix_rt::test]
async fn late_and_duplicate_registrations_are_refused() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let ids = businesses(&app, &officer, 3).await;
    let mut body = training(10, 2);
    body["registration_closes_at"] = json!((Utc::now() + Duration::days(1)).to_rfc3339());
    let id =
        app.post("/api/v1/trainings").token(&officer).json(&body).send().await.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/trainings/{id}/registrations");

    let reply = app.post(&path).token(&officer).json(&json!({"business_id": ids[0]})).send().await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["status"], "registered");
    let problem = app
        .post(&path)
        .token(&officer)
        .json(&json!({"business_id": ids[0]}))
        .send()
        .await
        .assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().contains("already registered"));

    // Close registration, then try again.
    let closed = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let reply = app
        .patch(&format!("/api/v1/trainings/{id}"))
        .token(&officer)
        .json(&json!({"registration_closes_at": closed}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let problem = app
        .post(&path)
        .token(&officer)
        .json(&json!({"business_id": ids[1]}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "registration_closed");
    assert_eq!(app.count("registrations"), 1);

    // A viewer reads; bank and retail users do not see trainings.
    let viewer = app.token_for(Role::Viewer).await;
    assert_eq!(
        app.get(&format!("/api/v1/trainings/{id}")).token(&viewer).send().await.json()["registrants"],
        1
    );
    app.post(&path).token(&viewer).json(&json!({"business_id": ids[2]})).send().await.assert_problem(403);
    for role in [Role::Bank, Role::Retail] {
        app.get("/api/v1/trainings").token(&app.token_for(role).await).send().await.assert_problem(404);
    }
}

#[actix_rt::test]
async fn selection_is_closed_once_the_training_has_started_and_attendance_opens() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let ids = businesses(&app, &officer, 2).await;
    let mut body = training(0, 1);
    body["registrations"] = json!([{"business_id": ids[0]}, {"business_id": ids[1]}]);
    let id =
        app.post("/api/v1/trainings").token(&officer).json(&body).send().await.json()["id"].as_i64().unwrap();
    app.post(&format!("/api/v1/trainings/{id}/selection")).token(&officer).send().await.assert_problem(409);
    let registrations = statuses(&app, &officer, id).await;
    assert!(registrations.iter().all(|r| r.1 == "registered"), "nothing changed");
    let reply = app
        .patch(&format!("/api/v1/registrations/{}", registrations[0].0))
        .token(&officer)
        .json(&json!({"status": "attended"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let trainings = app.get("/api/v1/trainings?sort=-starts_on").token(&officer).send().await.json();
    assert_eq!(trainings["data"][0]["selected"], 1);
}

#[actix_rt::test]
async fn the_training_list_costs_the_same_statements_for_two_rows_or_twelve() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let ids = businesses(&app, &officer, 3).await;
    let mut cost = Vec::new();
    for round in 0..2 {
        let n = if round == 0 { 2 } else { 10 };
        for _ in 0..n {
            let mut body = training(30, 2);
            body["registrations"] =
                json!(ids.iter().map(|id| json!({"business_id": id})).collect::<Vec<_>>());
            let reply = app.post("/api/v1/trainings").token(&officer).json(&body).send().await;
            assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
        }
        let before = app.statements();
        let list = app.get("/api/v1/trainings?limit=50").token(&officer).send().await;
        cost.push(app.statements() - before);
        let data = list.json()["data"].as_array().unwrap().clone();
        assert_eq!(data.len(), if round == 0 { 2 } else { 12 });
        assert!(data.iter().all(|t| t["registrants"] == 3 && t["selected"] == 0), "{data:?}");
    }
    assert_eq!(cost[0], cost[1], "statements for 2 rows and for 12: {cost:?}");
}
