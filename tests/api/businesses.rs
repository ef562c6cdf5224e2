use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{business_json, spawn_app};

#[actix_rt::test]
async fn an_officer_creates_a_business_that_the_server_classifies() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut body = business_json(1);
    body["annual_revenue_idr"] = json!(2_000_000_001i64);
    body["capital_idr"] = json!(900_000_000);
    body["employees"] = json!(19);
    body["phone"] = json!("+62 812-3456-7890");
    let reply = app.post("/api/v1/businesses").token(&officer).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let created = reply.json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(reply.header("location"), Some(format!("/api/v1/businesses/{id}")));
    assert_eq!(reply.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(created["scale"], "kecil", "one rupiah over Rp2 bn of sales");
    assert_eq!(created["scale_basis"], "revenue");
    assert_eq!(created["is_ikm"], true);
    assert_eq!(created["industry_scale"], "kecil");
    assert_eq!(created["phone"], "+6281234567890");
    assert_eq!(created["status"], "active");
    assert_eq!(created["owner_nik"], body["owner_nik"], "officers see personal data");
    assert_eq!(created["version"], 1);

    let read = app.get(&format!("/api/v1/businesses/{id}")).token(&officer).send().await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), created);
    assert_eq!(app.count("businesses"), 1);
}

#[actix_rt::test]
async fn viewers_and_retail_read_masked_and_banks_see_nothing() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let created = app.create_business(&officer, &business_json(7)).await;
    let path = format!("/api/v1/businesses/{}", created["id"]);
    // A retail user sees the businesses its partner curates a product of (tests/api/disclosure.rs).
    crate::helpers::curated_product(&app, &officer, created["id"].as_i64().unwrap(), 1).await;

    for role in [Role::Viewer, Role::Retail] {
        let token = app.token_for(role).await;
        let one = app.get(&path).token(&token).send().await.json();
        assert_eq!(one["owner_nik"], "3524********0008", "{role}");
        assert_eq!(one["phone"], "+62812****007", "{role}");
        assert_eq!(one["email"], "o***@example.com", "{role}");
        assert_eq!(one["name"], created["name"]);
        let list = app.get("/api/v1/businesses").token(&token).send().await.json();
        assert_eq!(list["data"][0]["owner_nik"], "3524********0008");
        app.post("/api/v1/businesses").token(&token).json(&business_json(8)).send().await.assert_problem(403);
        app.patch(&path).token(&token).json(&json!({"name": "x"})).send().await.assert_problem(403);
        app.delete(&path).token(&token).send().await.assert_problem(403);
    }
    let bank = app.token_for(Role::Bank).await;
    app.get(&path).token(&bank).send().await.assert_problem(404);
    app.get("/api/v1/businesses").token(&bank).send().await.assert_problem(404);
    app.get(&format!("{path}/products")).token(&bank).send().await.assert_problem(404);
    assert_eq!(app.count("businesses"), 1);
}

#[actix_rt::test]
async fn every_invalid_field_is_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let body = json!({
        "name": "", "owner_nik": "3524057203900001", "phone": "12345", "email": "not-mail",
        "nib": "123", "npwp": "12", "kbli": "04100", "district_code": "35.24.99",
        "address": "Jl. A", "capital_idr": -5, "employees": "many", "established_on": "2999-01-01"
    });
    let problem = app.post("/api/v1/businesses").token(&officer).json(&body).send().await.assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "owner_name",
            "owner_nik",
            "phone",
            "email",
            "nib",
            "npwp",
            "kbli",
            "capital_idr",
            "employees",
            "established_on",
            "district_code"
        ]
    );
    // The district is checked against /regions, with the other fields or alone.
    let mut body = business_json(1);
    body["district_code"] = json!("35.24.99");
    let problem = app.post("/api/v1/businesses").token(&officer).json(&body).send().await.assert_problem(422);
    assert_eq!(
        problem["errors"],
        json!([{"field": "district_code", "code": "not_found", "message": "no district has this code in /regions"}])
    );
    // Derived fields are the server's.
    let mut body = business_json(1);
    body["scale"] = json!("mikro");
    let problem = app.post("/api/v1/businesses").token(&officer).json(&body).send().await.assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "scale");
    assert_eq!(problem["errors"][0]["code"], "unknown_field");
    assert_eq!(app.count("businesses"), 0);
    assert_eq!(app.count("audit_log WHERE entity <> 'user'"), 0);
}

#[actix_rt::test]
async fn a_taken_nib_is_409() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    app.create_business(&officer, &business_json(1)).await;
    let mut again = business_json(2);
    again["nib"] = business_json(1)["nib"].clone();
    let problem =
        app.post("/api/v1/businesses").token(&officer).json(&again).send().await.assert_problem(409);
    assert_eq!(problem["detail"], "a record with this nib already exists");
    assert_eq!(app.count("businesses"), 1);
}

#[actix_rt::test]
async fn a_merge_patch_keeps_clears_and_reclassifies() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let created = app.create_business(&officer, &business_json(1)).await;
    let path = format!("/api/v1/businesses/{}", created["id"]);
    assert_eq!(created["scale"], "mikro");

    let reply = app
        .patch(&path)
        .token(&officer)
        .header("if-match", "\"1\"")
        .raw(
            "application/merge-patch+json",
            r#"{"email": null, "annual_revenue_idr": 20000000000, "status": "inactive"}"#,
        )
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));
    let changed = reply.json();
    assert_eq!(changed["email"], Value::Null);
    assert_eq!(changed["scale"], "menengah");
    assert_eq!(changed["status"], "inactive");
    assert_eq!(changed["owner_nik"], created["owner_nik"]);
    assert_eq!(changed["version"], 2);

    // Without revenue the capital decides.
    let changed =
        app.patch(&path).token(&officer).json(&json!({"annual_revenue_idr": null})).send().await.json();
    assert_eq!(
        (changed["scale"].clone(), changed["scale_basis"].clone()),
        (json!("mikro"), json!("capital"))
    );

    app.patch(&path)
        .token(&officer)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .assert_problem(412);
    let problem = app
        .patch(&path)
        .token(&officer)
        .json(&json!({"owner_nik": "123", "kbli": "x"}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    app.patch(&path).token(&officer).json(&json!({"name": null})).send().await.assert_problem(422);
    app.patch(&path).token(&officer).json(&json!([1])).send().await.assert_problem(422);
    let now = app.get(&path).token(&officer).send().await.json();
    assert_eq!(now["version"], 3);
    assert_eq!(now["name"], created["name"]);
}

#[actix_rt::test]
async fn deleting_a_business_takes_its_products_and_is_audited() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let business = app.create_business(&officer, &business_json(1)).await;
    let id = business["id"].as_i64().unwrap();
    for name in ["Kripik", "Terasi"] {
        let reply = app
            .post("/api/v1/products")
            .token(&officer)
            .json(&json!({"business_id": id, "name": name, "category": "food"}))
            .send()
            .await;
        assert_eq!(reply.status, 201);
    }
    app.patch(&format!("/api/v1/businesses/{id}"))
        .token(&officer)
        .json(&json!({"owner_nik": "3524055203900002", "village": "Blimbing"}))
        .send()
        .await;
    app.delete(&format!("/api/v1/businesses/{id}"))
        .token(&officer)
        .header("if-match", "\"1\"")
        .send()
        .await
        .assert_problem(412);
    let reply = app
        .delete(&format!("/api/v1/businesses/{id}"))
        .token(&officer)
        .header("if-match", "\"2\"")
        .send()
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(app.count("businesses"), 0);
    assert_eq!(app.count("products"), 0);
    app.get(&format!("/api/v1/businesses/{id}")).token(&officer).send().await.assert_problem(404);

    let log = app
        .get(&format!("/api/v1/audit-log?entity=business&entity_id={id}"))
        .token(&admin)
        .send()
        .await
        .json();
    let entries = log["data"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["delete", "update", "create"], "newest first");
    let update = &entries[1]["changes"];
    assert_eq!(update["owner_nik"], json!({"from": "[redacted]", "to": "[redacted]"}));
    assert_eq!(update["village"], json!({"from": null, "to": "Blimbing"}));
    assert!(update.get("name").is_none(), "only changed fields");
    let created = &entries[2]["changes"];
    assert_eq!(created["owner_nik"], "[redacted]");
    assert_eq!(created["phone"], "[redacted]");
    assert_eq!(created["name"], business["name"]);
    assert!(!log.to_string().contains("3524051203900002"), "no NIK anywhere in the log");
    let products = app.get("/api/v1/audit-log?entity=product").token(&admin).send().await.json();
    assert_eq!(products["data"].as_array().unwrap().len(), 4, "two creates and two deletes");
    app.get("/api/v1/audit-log").token(&officer).send().await.assert_problem(403);
}

#[actix_rt::test]
async fn a_retried_create_with_the_same_key_returns_the_first_answer() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let send = |body: Value, key: &'static str| {
        app.post("/api/v1/businesses").token(&officer).header("idempotency-key", key).json(&body)
    };
    let first = send(business_json(1), "abc-123").send().await;
    assert_eq!(first.status, 201);
    let again = send(business_json(1), "abc-123").send().await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(app.count("businesses"), 1);

    let other = send(business_json(2), "abc-123").send().await;
    assert_eq!(other.assert_problem(422)["errors"][0]["code"], "key_reused");
    assert_eq!(app.count("businesses"), 1);
    // Another key is another create.
    assert_eq!(send(business_json(2), "abc-124").send().await.status, 201);
    assert_eq!(app.count("businesses"), 2);
}
