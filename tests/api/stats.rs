use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{PASSWORD, TestApp, business_json, spawn_app};

/// Six businesses whose figures are easy to add up by hand; returns their ids.
async fn dataset(app: &TestApp, officer: &str) -> Vec<i64> {
    let rows = [
        ("35.24.05", "10750", Some(300_000_000i64), Some(4), Some("2018-01-01"), "active"),
        ("35.24.05", "47111", Some(5_000_000_000), Some(10), Some("2018-06-01"), "active"),
        ("35.24.14", "10750", None, None, Some("2020-01-01"), "inactive"),
        ("35.24.14", "13912", Some(20_000_000_000), Some(25), Some("2020-02-02"), "active"),
        ("35.24.14", "10750", Some(60_000_000_000), Some(100), None, "active"),
        ("35.24.22", "47111", Some(1_000_000_000), Some(2), Some("2018-03-03"), "active"),
    ];
    let mut ids = Vec::new();
    for (n, (district, kbli, revenue, employees, established, status)) in rows.into_iter().enumerate() {
        let mut body = business_json(n);
        body["district_code"] = json!(district);
        body["kbli"] = json!(kbli);
        body["annual_revenue_idr"] = json!(revenue);
        body["capital_idr"] = Value::Null;
        body["employees"] = json!(employees);
        body["established_on"] = json!(established);
        body["status"] = json!(status);
        let id = app.create_business(officer, &body).await["id"].as_i64().unwrap();
        crate::helpers::consent_for(app, officer, id, None).await;
        ids.push(id);
    }
    ids
}

fn rows(value: &Value) -> Vec<Value> {
    value["rows"].as_array().unwrap().clone()
}

#[actix_rt::test]
async fn business_statistics_add_up_exactly() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    dataset(&app, &officer).await;
    let viewer = app.token_for(Role::Viewer).await;
    let get = |query: &'static str| {
        let (app, viewer) = (&app, viewer.clone());
        async move {
            let reply = app.get(&format!("/api/v1/stats/businesses?{query}")).token(&viewer).send().await;
            assert_eq!(reply.status, 200, "{query}: {}", String::from_utf8_lossy(&reply.body));
            reply.json()
        }
    };
    let by_district = get("group_by=district").await;
    assert_eq!(by_district["group_by"], json!(["district"]));
    assert_eq!(
        rows(&by_district),
        [
            json!({"district": "35.24.05", "district_name": "Babat", "count": 2, "employees": 14, "revenue_idr": 5_300_000_000i64}),
            json!({"district": "35.24.14", "district_name": "Paciran", "count": 3, "employees": 125, "revenue_idr": 80_000_000_000i64}),
            json!({"district": "35.24.22", "district_name": "Lamongan", "count": 1, "employees": 2, "revenue_idr": 1_000_000_000i64}),
        ]
    );
    let by_scale = get("group_by=scale").await;
    let counts: Vec<(Value, i64)> =
        rows(&by_scale).iter().map(|r| (r["scale"].clone(), r["count"].as_i64().unwrap())).collect();
    assert_eq!(
        counts,
        [
            (json!("besar"), 1),
            (json!("kecil"), 1),
            (json!("menengah"), 1),
            (json!("mikro"), 2),
            (Value::Null, 1)
        ]
    );
    let two_keys = get("group_by=is_ikm,established_year&status=active").await;
    assert_eq!(
        rows(&two_keys),
        [
            json!({"is_ikm": false, "established_year": 2018, "count": 2, "employees": 12, "revenue_idr": 6_000_000_000i64}),
            json!({"is_ikm": true, "established_year": 2018, "count": 1, "employees": 4, "revenue_idr": 300_000_000}),
            json!({"is_ikm": true, "established_year": 2020, "count": 1, "employees": 25, "revenue_idr": 20_000_000_000i64}),
            json!({"is_ikm": true, "established_year": null, "count": 1, "employees": 100, "revenue_idr": 60_000_000_000i64}),
        ]
    );
    let division = get("group_by=kbli_division,status&district=35.24.14").await;
    assert_eq!(
        rows(&division),
        [
            json!({"kbli_division": 10, "status": "active", "count": 1, "employees": 100, "revenue_idr": 60_000_000_000i64}),
            json!({"kbli_division": 10, "status": "inactive", "count": 1, "employees": 0, "revenue_idr": 0}),
            json!({"kbli_division": 13, "status": "active", "count": 1, "employees": 25, "revenue_idr": 20_000_000_000i64}),
        ]
    );
    // A filter that matches nothing gives no groups; groups without businesses are not listed.
    assert_eq!(rows(&get("group_by=scale&district=35.24.01").await), Vec::<Value>::new());

    let csv = app
        .get("/api/v1/stats/businesses?group_by=district")
        .token(&viewer)
        .header("accept", "text/csv")
        .send()
        .await;
    let text = String::from_utf8(csv.body).unwrap();
    assert_eq!(text.lines().next(), Some("district,district_name,count,employees,revenue_idr"));
    assert!(text.contains("35.24.14,Paciran,3,125,80000000000"));

    for bad in [
        "group_by=colour",
        "group_by=scale,",
        "group_by=district,scale,status",
        "group_by=scale&colour=red",
        "",
        "group_by=scale&scale=huge",
    ] {
        app.get(&format!("/api/v1/stats/businesses?{bad}")).token(&viewer).send().await.assert_problem(400);
    }
    let bank = app.token_for(Role::Bank).await;
    app.get("/api/v1/stats/businesses?group_by=scale").token(&bank).send().await.assert_problem(404);
}

#[actix_rt::test]
async fn the_overview_and_its_scoping() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let ids = dataset(&app, &officer).await;
    // Products: two of IKM business 0, one of business 1; one of business 0's passes Indomaret.
    let mut products = Vec::new();
    for (business, category) in [(ids[0], "food"), (ids[0], "beverage"), (ids[1], "craft")] {
        let reply = app
            .post("/api/v1/products")
            .token(&officer)
            .json(&json!({"business_id": business, "name": "P", "category": category}))
            .send()
            .await;
        products.push(reply.json()["id"].as_i64().unwrap());
    }
    let retail = app.token_for(Role::Retail).await;
    let curation = app
        .post("/api/v1/curations")
        .token(&officer)
        .json(&json!({"product_id": products[0], "retail_partner_id": 1}))
        .send()
        .await
        .json();
    app.patch(&format!("/api/v1/curations/{}", curation["id"]))
        .token(&retail)
        .json(&json!({"status": "passed"}))
        .send()
        .await;
    let mut outlets = Vec::new();
    for code in ["A", "B"] {
        let reply = app
            .post("/api/v1/outlets")
            .token(&retail)
            .json(&json!({"code": code, "name": code, "district_code": "35.24.05"}))
            .send()
            .await;
        outlets.push(reply.json()["id"].as_i64().unwrap());
    }
    app.post("/api/v1/placements")
        .token(&retail)
        .json(&json!({"product_id": products[0], "outlet_id": outlets[0]}))
        .send()
        .await;
    // Financing: two applications at BRI (one approved), one at BNI.
    let mut applications = Vec::new();
    for (business, programme, amount) in
        [(ids[0], 2, 50_000_000i64), (ids[5], 2, 20_000_000), (ids[1], 5, 30_000_000)]
    {
        let reply = app
            .post("/api/v1/applications")
            .token(&officer)
            .json(
                &json!({"business_id": business, "programme_id": programme, "amount_requested_idr": amount}),
            )
            .send()
            .await;
        applications.push(reply.json()["id"].as_i64().unwrap());
    }
    app.create_user("bri@bank.example", Role::Bank, Some(1));
    let bri = app.login("bri@bank.example", PASSWORD).await;
    app.patch(&format!("/api/v1/applications/{}", applications[0]))
        .token(&bri)
        .json(&json!({"status": "in_review"}))
        .send()
        .await;
    app.patch(&format!("/api/v1/applications/{}", applications[0]))
        .token(&bri)
        .json(&json!({"status": "approved", "amount_approved_idr": 40_000_000}))
        .send()
        .await;

    let viewer = app.token_for(Role::Viewer).await;
    let overview = app.get("/api/v1/stats/overview").token(&viewer).send().await.json();
    assert_eq!(
        overview["businesses"],
        json!({"total": 6, "active": 5, "ikm": 4, "by_scale": {"mikro": 2, "kecil": 1, "menengah": 1, "besar": 1, "unknown": 1}})
    );
    assert_eq!(overview["products"], json!({"total": 3, "curated_passed": 1, "curated_ikm_businesses": 1}));
    assert_eq!(overview["retail"], json!({"outlets": 2, "outlets_stocking_curated": 1}));
    assert_eq!(
        overview["financing"],
        json!({"applications": 3, "by_status": {"approved": 1, "submitted": 2}, "requested_idr": 100_000_000, "approved_idr": 40_000_000})
    );
    assert_eq!(
        overview["trainings"],
        json!({"trainings": 0, "registrants": 0, "selected": 0, "attended": 0})
    );

    // A bank sees its own financing only.
    let for_bri = app.get("/api/v1/stats/overview").token(&bri).send().await.json();
    assert_eq!(for_bri["businesses"], Value::Null);
    assert_eq!(for_bri["financing"]["applications"], 2);
    assert_eq!(for_bri["financing"]["requested_idr"], 70_000_000);
    let by_bank = app.get("/api/v1/stats/financing?group_by=bank").token(&officer).send().await.json();
    assert_eq!(
        rows(&by_bank),
        [
            json!({"key": 1, "label": "BRI", "applications": 2, "requested_idr": 70_000_000, "approved_idr": 40_000_000}),
            json!({"key": 2, "label": "BNI", "applications": 1, "requested_idr": 30_000_000, "approved_idr": 0}),
        ]
    );
    let bri_only = app.get("/api/v1/stats/financing?group_by=programme").token(&bri).send().await.json();
    assert_eq!(
        rows(&bri_only),
        [
            json!({"key": 2, "label": "KUR Mikro", "applications": 2, "requested_idr": 70_000_000, "approved_idr": 40_000_000})
        ]
    );
    app.get("/api/v1/stats/financing?group_by=district").token(&officer).send().await.assert_problem(400);
    app.get("/api/v1/stats/financing?group_by=bank").token(&retail).send().await.assert_problem(404);

    // A retail partner sees its own outlets and curations.
    let (alfamart, alfamart_token) = {
        let admin = app.token_for(Role::Admin).await;
        let id = app
            .post("/api/v1/retail-partners")
            .token(&admin)
            .json(&json!({"code": "ALF", "name": "Alfaria", "brand": "Alfamart"}))
            .send()
            .await
            .json()["id"]
            .as_i64()
            .unwrap();
        app.create_user("alf@retail.example", Role::Retail, Some(id));
        (id, app.login("alf@retail.example", PASSWORD).await)
    };
    let for_alfamart = app.get("/api/v1/stats/overview").token(&alfamart_token).send().await.json();
    assert_eq!(for_alfamart["retail"], json!({"outlets": 0, "outlets_stocking_curated": 0}));
    assert_eq!(for_alfamart["products"]["curated_passed"], 0);
    assert_eq!(for_alfamart["financing"], Value::Null);
    let retail_rows = app.get("/api/v1/stats/retail").token(&officer).send().await.json();
    assert_eq!(
        rows(&retail_rows),
        [
            json!({"retail_partner_id": 1, "brand": "Indomaret", "outlets": 2, "outlets_stocking_curated": 1, "curated_passed": 1, "curated_ikm_businesses": 1, "products_listed": 1}),
            json!({"retail_partner_id": alfamart, "brand": "Alfamart", "outlets": 0, "outlets_stocking_curated": 0, "curated_passed": 0, "curated_ikm_businesses": 0, "products_listed": 0}),
        ]
    );
    assert_eq!(rows(&app.get("/api/v1/stats/retail").token(&alfamart_token).send().await.json()).len(), 1);
    let products = app.get("/api/v1/stats/products").token(&viewer).send().await.json();
    assert_eq!(
        products["by_category"],
        json!([{"category": "beverage", "count": 1}, {"category": "craft", "count": 1}, {"category": "food", "count": 1}])
    );

    let csv = app.get("/api/v1/stats/overview").token(&viewer).header("accept", "text/csv").send().await;
    let text = String::from_utf8(csv.body).unwrap();
    assert!(text.starts_with("metric,value\n"));
    assert!(text.contains("businesses.by_scale.mikro,2\n"));
    assert!(text.contains("financing.approved_idr,40000000\n"));
}
