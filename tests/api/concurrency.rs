//! Versioned writes under concurrency: 16 requests carrying the same `If-Match` at once give
//! exactly one success and 15 × 412, the version rises by one and one audit entry is written.
//! On PostgreSQL (READ COMMITTED) this holds only when the write itself carries the version
//! condition; a check made after the read lets every request through.

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{PASSWORD, TestApp, business_json, spawn_app};

const RACERS: usize = 16;

/// The version in a record's `ETag`.
async fn version(app: &TestApp, token: &str, path: &str) -> i64 {
    let reply = app.get(path).token(token).send().await;
    assert_eq!(reply.status, 200, "{path}: {}", String::from_utf8_lossy(&reply.body));
    let etag = reply.header("etag").expect("an ETag");
    etag.trim_matches('"').parse().expect("a numeric ETag")
}

/// Audit entries of one record and action.
fn audit_entries(app: &TestApp, entity: &str, id: i64, action: &str) -> i64 {
    use diesel::prelude::*;
    use umkm_api::db::schema::audit_log;
    app.db(|conn| {
        audit_log::table
            .filter(audit_log::entity.eq(entity))
            .filter(audit_log::entity_id.eq(id))
            .filter(audit_log::action.eq(action))
            .count()
            .get_result::<i64>(conn)
    })
    .unwrap()
}

/// Sends `RACERS` requests at once with `If-Match: "<version>"`, each with its own body, and
/// asserts one 2xx and the rest 412. A DELETE that arrives after the winner's has committed finds
/// no record: 404 is then as right as 412.
async fn race(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    version: i64,
    body: impl Fn(usize) -> Value,
) {
    let calls = (0..RACERS).map(|i| {
        let call = app.call(method.clone(), path).token(token).header("if-match", &format!("\"{version}\""));
        let call = if method == Method::DELETE { call } else { call.json(&body(i)) };
        call.send()
    });
    let replies = join_all(calls).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    let won = statuses.iter().filter(|s| (200..300).contains(*s)).count();
    let gone = if method == Method::DELETE { 404 } else { 412 };
    let lost = statuses.iter().filter(|s| **s == 412 || **s == gone).count();
    assert_eq!((won, lost), (1, RACERS - 1), "{method} {path}: {statuses:?}");
}

/// A PATCH race on `path`: one winner, version + 1, one `update` audit entry.
async fn patch_race(app: &TestApp, token: &str, path: &str, entity: &str, body: impl Fn(usize) -> Value) {
    let before = version(app, token, path).await;
    race(app, token, Method::PATCH, path, before, body).await;
    assert_eq!(version(app, token, path).await, before + 1, "{path}");
    let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(audit_entries(app, entity, id, "update"), 1, "{entity} {id}");
}

/// A DELETE race on `path`: one winner, the record gone, one `delete` audit entry.
async fn delete_race(app: &TestApp, token: &str, path: &str, entity: &str) {
    let before = version(app, token, path).await;
    race(app, token, Method::DELETE, path, before, |_| Value::Null).await;
    app.get(path).token(token).send().await.assert_problem(404);
    let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(audit_entries(app, entity, id, "delete"), 1, "{entity} {id}");
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> i64 {
    let reply = app.post(path).token(token).json(&body).send().await;
    assert_eq!(reply.status, 201, "{path}: {}", String::from_utf8_lossy(&reply.body));
    reply.json()["id"].as_i64().unwrap()
}

#[actix_rt::test]
async fn businesses_and_products_have_one_winner() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let created_business = app.create_business(&officer, &business_json(1)).await;
    let business = created_business["id"].as_i64().unwrap();
    let path = format!("/api/v1/businesses/{business}");
    patch_race(&app, &officer, &path, "business", |i| json!({"name": format!("Usaha Balapan {i}")})).await;
    // Its owner, a person: one correction wins.
    let person = format!("/api/v1/persons/{}", created_business["owner_id"]);
    patch_race(&app, &officer, &person, "person", |i| json!({"name": format!("Pemilik Balapan {i}")})).await;
    let product = created(
        &app,
        &officer,
        "/api/v1/products",
        json!({"business_id": business, "name": "Wingko", "category": "food"}),
    )
    .await;
    let product_path = format!("/api/v1/products/{product}");
    patch_race(&app, &officer, &product_path, "product", |i| json!({"name": format!("Wingko {i}")})).await;
    delete_race(&app, &officer, &product_path, "product").await;
    delete_race(&app, &officer, &path, "business").await;
}

#[actix_rt::test]
async fn bank_partners_programmes_and_applications_have_one_winner() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    patch_race(
        &app,
        &admin,
        "/api/v1/bank-partners/1",
        "bank_partner",
        |i| json!({"name": format!("Bank Balapan {i}")}),
    )
    .await;
    patch_race(
        &app,
        &officer,
        "/api/v1/programmes/2",
        "programme",
        |i| json!({"name": format!("KUR Balapan {i}")}),
    )
    .await;
    let business = crate::helpers::consenting_business(&app, &officer, 2).await;
    let application = created(
        &app,
        &officer,
        "/api/v1/applications",
        json!({"business_id": business, "programme_id": 2, "amount_requested_idr": 25_000_000, "purpose": "modal"}),
    )
    .await;
    let path = format!("/api/v1/applications/{application}");
    patch_race(&app, &officer, &path, "application", |i| json!({"purpose": format!("modal kerja {i}")}))
        .await;
    // The bank's side: sixteen reviewers moving the same application.
    app.create_user("analis@bri.example", Role::Bank, Some(1));
    let bri = app.login("analis@bri.example", PASSWORD).await;
    let before = version(&app, &bri, &path).await;
    race(
        &app,
        &bri,
        Method::PATCH,
        &path,
        before,
        |i| json!({"status": "in_review", "bank_reference": format!("R-{i}")}),
    )
    .await;
    assert_eq!(version(&app, &bri, &path).await, before + 1);
    assert_eq!(audit_entries(&app, "application", application, "update"), 2);
}

#[actix_rt::test]
async fn retail_partners_outlets_curations_and_placements_have_one_winner() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await; // Indomaret staff
    patch_race(
        &app,
        &admin,
        "/api/v1/retail-partners/1",
        "retail_partner",
        |i| json!({"name": format!("Ritel {i}")}),
    )
    .await;
    let outlet = created(
        &app,
        &retail,
        "/api/v1/outlets",
        json!({"code": "TBBT", "name": "Gerai", "district_code": "35.24.05"}),
    )
    .await;
    let outlet_path = format!("/api/v1/outlets/{outlet}");
    patch_race(&app, &retail, &outlet_path, "outlet", |i| json!({"name": format!("Gerai {i}")})).await;

    let business = app.create_business(&officer, &business_json(3)).await["id"].as_i64().unwrap();
    let product = created(
        &app,
        &officer,
        "/api/v1/products",
        json!({"business_id": business, "name": "Kerupuk", "category": "food"}),
    )
    .await;
    let curation =
        created(&app, &officer, "/api/v1/curations", json!({"product_id": product, "retail_partner_id": 1}))
            .await;
    let curation_path = format!("/api/v1/curations/{curation}");
    patch_race(
        &app,
        &retail,
        &curation_path,
        "curation",
        |i| json!({"status": "passed", "notes": format!("lolos {i}")}),
    )
    .await;

    // Placements have no single GET: their versions are read from the outlet's list.
    let placement =
        created(&app, &retail, "/api/v1/placements", json!({"product_id": product, "outlet_id": outlet}))
            .await;
    let placement_path = format!("/api/v1/placements/{placement}");
    let placed = format!("/api/v1/placements?outlet_id={outlet}");
    race(
        &app,
        &retail,
        Method::PATCH,
        &placement_path,
        1,
        |i| json!({"listed_on": format!("2026-01-{:02}", i + 1)}),
    )
    .await;
    let list = app.get(&placed).token(&retail).send().await.json();
    assert_eq!(list["data"][0]["version"], 2, "{list}");
    assert_eq!(audit_entries(&app, "placement", placement, "update"), 1);
    // Deleting a placement delists it (the record stays): the If-Match is checked first, so the
    // losers get 412 rather than "delisted already".
    race(&app, &retail, Method::DELETE, &placement_path, 2, |_| Value::Null).await;
    let list = app.get(&placed).token(&retail).send().await.json();
    assert_eq!(list["data"][0]["version"], 3, "{list}");
    assert!(list["data"][0]["delisted_on"].is_string(), "{list}");
    assert_eq!(audit_entries(&app, "placement", placement, "update"), 2);
    // The outlet with the placement cannot be deleted (409); an empty one can, once.
    let empty = created(
        &app,
        &retail,
        "/api/v1/outlets",
        json!({"code": "TPCR", "name": "Gerai", "district_code": "35.24.14"}),
    )
    .await;
    delete_race(&app, &retail, &format!("/api/v1/outlets/{empty}"), "outlet").await;
}

#[actix_rt::test]
async fn trainings_and_registrations_have_one_winner() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let starts = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let training = created(
        &app,
        &officer,
        "/api/v1/trainings",
        json!({"title": "Pelatihan Kemasan", "venue": "Aula", "starts_on": starts, "ends_on": starts, "capacity": 10}),
    )
    .await;
    let path = format!("/api/v1/trainings/{training}");
    patch_race(&app, &officer, &path, "training", |i| json!({"title": format!("Pelatihan Kemasan {i}")}))
        .await;
    let business = app.create_business(&officer, &business_json(4)).await["id"].as_i64().unwrap();
    let registration = created(
        &app,
        &officer,
        &format!("/api/v1/trainings/{training}/registrations"),
        json!({"business_id": business}),
    )
    .await;
    let registrations = app.get(&format!("{path}/registrations")).token(&officer).send().await.json();
    let version = registrations["data"][0]["version"].as_i64().expect("registrations show their version");
    let registration_path = format!("/api/v1/registrations/{registration}");
    race(
        &app,
        &officer,
        Method::PATCH,
        &registration_path,
        version,
        |i| json!({"note": format!("catatan {i}")}),
    )
    .await;
    let registrations = app.get(&format!("{path}/registrations")).token(&officer).send().await.json();
    assert_eq!(registrations["data"][0]["version"].as_i64(), Some(version + 1));
    assert_eq!(audit_entries(&app, "registration", registration, "update"), 1);
}

#[actix_rt::test]
async fn users_have_one_winner() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let user = app.create_user("staf@lamongan.example", Role::Viewer, None);
    let path = format!("/api/v1/users/{user}");
    patch_race(&app, &admin, &path, "user", |i| json!({"email": format!("staf{i}@lamongan.example")})).await;
    delete_race(&app, &admin, &path, "user").await;
}

/// Issue 28, item 13: a precondition the client never sent cannot fail. `RACERS` PATCHes
/// without `If-Match` at once all land, one after another: every answer 200, the version up by
/// `RACERS`, one audit entry each (on PostgreSQL too, where the write re-reads and re-applies
/// the merge patch when another writer got in first).
#[actix_rt::test]
async fn patches_without_if_match_all_land() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let created_business = app.create_business(&officer, &business_json(1)).await;
    let business = created_business["id"].as_i64().unwrap();
    let product = created(
        &app,
        &officer,
        "/api/v1/products",
        json!({"business_id": business, "name": "Wingko", "category": "food"}),
    )
    .await;
    let outlet = created(
        &app,
        &retail,
        "/api/v1/outlets",
        json!({"code": "TBBT", "name": "Gerai", "district_code": "35.24.05"}),
    )
    .await;
    let records = [
        (format!("/api/v1/businesses/{business}"), "business", &officer),
        (format!("/api/v1/products/{product}"), "product", &officer),
        (format!("/api/v1/outlets/{outlet}"), "outlet", &retail),
        ("/api/v1/programmes/2".to_owned(), "programme", &officer),
        (format!("/api/v1/persons/{}", created_business["owner_id"]), "person", &officer),
    ];
    for (path, entity, token) in records {
        let before = version(&app, token, &path).await;
        let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
        let audited = audit_entries(&app, entity, id, "update");
        let calls = (0..RACERS)
            .map(|i| app.patch(&path).token(token).json(&json!({"name": format!("Nama {i}")})).send());
        let statuses: Vec<u16> = join_all(calls).await.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses, [200; RACERS], "{path}");
        assert_eq!(version(&app, token, &path).await, before + RACERS as i64, "{path}");
        assert_eq!(audit_entries(&app, entity, id, "update"), audited + RACERS as i64, "{path}");
    }
}
