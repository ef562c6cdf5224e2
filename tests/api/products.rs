use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{business_json, spawn_app};

#[actix_rt::test]
async fn products_are_created_checked_changed_and_deleted() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let business = app.create_business(&officer, &business_json(1)).await;
    let business_id = business["id"].as_i64().unwrap();

    let body = json!({"business_id": business_id, "name": "Kripik Tenggiri 250 g", "category": "food",
        "price_idr": 25000, "unit": "pack", "pirt_number": "2063524-01-002025", "bpom_number": "BPOM RI MD 224513001234",
        "halal_certificate": "ID35110000123450322"});
    let reply = app.post("/api/v1/products").token(&officer).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let product = reply.json();
    let id = product["id"].as_i64().unwrap();
    assert_eq!(reply.header("location"), Some(format!("/api/v1/products/{id}")));
    assert_eq!(product["pirt_number"], "206352401002025");
    assert_eq!(product["bpom_number"], "MD224513001234");
    assert_eq!(product["sni_certified"], false);

    let bad = json!({"business_id": 999_999, "name": "", "category": "gadget", "price_idr": -1,
        "pirt_number": "206990001002025", "bpom_number": "XX1", "halal_certificate": "35110000123450322"});
    let problem = app.post("/api/v1/products").token(&officer).json(&bad).send().await.assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["business_id", "name", "category", "price_idr", "pirt_number", "bpom_number", "halal_certificate"]
    );
    let missing = json!({"business_id": 999_999, "name": "A", "category": "food"});
    let problem =
        app.post("/api/v1/products").token(&officer).json(&missing).send().await.assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "not_found");
    assert_eq!(app.count("products"), 1);

    let path = format!("/api/v1/products/{id}");
    let changed = app
        .patch(&path)
        .token(&officer)
        .header("if-match", "\"1\"")
        .json(&json!({"bpom_number": null, "sni_certified": true, "price_idr": 27500}))
        .send()
        .await;
    assert_eq!(changed.status, 200);
    let changed = changed.json();
    assert_eq!(
        (changed["bpom_number"].clone(), changed["sni_certified"].clone()),
        (Value::Null, json!(true))
    );
    assert_eq!(changed["price_idr"], 27500);
    assert_eq!(changed["pirt_number"], "206352401002025");
    app.patch(&path)
        .token(&officer)
        .header("if-match", "\"1\"")
        .json(&json!({"unit": "kg"}))
        .send()
        .await
        .assert_problem(412);

    let retail = app.token_for(Role::Retail).await;
    assert_eq!(app.get(&path).token(&retail).send().await.json()["name"], "Kripik Tenggiri 250 g");
    app.delete(&path).token(&retail).send().await.assert_problem(403);
    let bank = app.token_for(Role::Bank).await;
    app.get(&path).token(&bank).send().await.assert_problem(404);
    app.get("/api/v1/products").token(&bank).send().await.assert_problem(404);

    assert_eq!(app.delete(&path).token(&officer).send().await.status, 204);
    app.get(&path).token(&officer).send().await.assert_problem(404);
    assert_eq!(app.count("products"), 0);
}

#[actix_rt::test]
async fn product_lists_filter_by_business_category_and_certification() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let a = app.create_business(&officer, &business_json(1)).await["id"].as_i64().unwrap();
    let b = app.create_business(&officer, &business_json(2)).await["id"].as_i64().unwrap();
    let products = [
        (a, "Kripik Ikan", "food", Some("206352401002025"), None),
        (a, "Sirup Markisa", "beverage", None, Some("ID35110000123450322")),
        (b, "Batik Tulis Sendang", "fashion", None, None),
        (b, "Kerupuk Udang", "food", Some("206352401012025"), Some("ID35110000123450323")),
    ];
    for (business, name, category, pirt, halal) in products {
        let reply = app
            .post("/api/v1/products")
            .token(&officer)
            .json(&json!({"business_id": business, "name": name, "category": category, "pirt_number": pirt, "halal_certificate": halal}))
            .send()
            .await;
        assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    }
    let names = |query: String| {
        let (app, officer) = (&app, officer.clone());
        async move {
            let reply = app.get(&format!("/api/v1/products?sort=name&{query}")).token(&officer).send().await;
            assert_eq!(reply.status, 200, "{query}");
            reply.json()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("category=food".into()).await, ["Kerupuk Udang", "Kripik Ikan"]);
    assert_eq!(names("has_pirt=true&has_halal=true".into()).await, ["Kerupuk Udang"]);
    assert_eq!(names("has_pirt=false".into()).await, ["Batik Tulis Sendang", "Sirup Markisa"]);
    assert_eq!(names(format!("business_id={b}")).await, ["Batik Tulis Sendang", "Kerupuk Udang"]);
    assert_eq!(names("q=KRI".into()).await, ["Kripik Ikan"]);

    let of_a =
        app.get(&format!("/api/v1/businesses/{a}/products?count=true")).token(&officer).send().await.json();
    assert_eq!(of_a["total"], 2);
    assert!(of_a["data"].as_array().unwrap().iter().all(|p| p["business_id"] == a));
    app.get("/api/v1/businesses/999999/products").token(&officer).send().await.assert_problem(404);
    app.get("/api/v1/products?category=gadget").token(&officer).send().await.assert_problem(400);
    app.get("/api/v1/products?sort=price_idr").token(&officer).send().await.assert_problem(400);

    let csv = app
        .get("/api/v1/products?category=food&sort=name")
        .token(&officer)
        .header("accept", "text/csv")
        .send()
        .await;
    let text = String::from_utf8(csv.body).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().nth(1).unwrap().contains("Kerupuk Udang"));
}
