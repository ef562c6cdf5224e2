use std::collections::HashSet;

use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{PASSWORD, TestApp, business_json, spawn_app};

/// Indomaret, seeded by the migrations.
const INDOMARET: i64 = 1;

pub(crate) async fn product(app: &TestApp, officer: &str, n: usize) -> (i64, i64) {
    let business = app.create_business(officer, &business_json(n)).await["id"].as_i64().unwrap();
    let reply = app
        .post("/api/v1/products")
        .token(officer)
        .json(&json!({"business_id": business, "name": format!("Produk {n}"), "category": "food"}))
        .send()
        .await;
    assert_eq!(reply.status, 201);
    (business, reply.json()["id"].as_i64().unwrap())
}

pub(crate) async fn outlet(
    app: &TestApp,
    token: &str,
    partner: Option<i64>,
    code: &str,
    district: &str,
) -> i64 {
    let mut body = json!({"code": code, "name": format!("Gerai {code}"), "district_code": district});
    if let Some(p) = partner {
        body["retail_partner_id"] = json!(p);
    }
    let reply = app.post("/api/v1/outlets").token(token).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["id"].as_i64().unwrap()
}

pub(crate) async fn submit(app: &TestApp, officer: &str, product: i64, partner: i64) -> i64 {
    let reply = app
        .post("/api/v1/curations")
        .token(officer)
        .json(&json!({"product_id": product, "retail_partner_id": partner}))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["id"].as_i64().unwrap()
}

async fn second_partner(app: &TestApp) -> (i64, String) {
    let admin = app.token_for(Role::Admin).await;
    let reply = app
        .post("/api/v1/retail-partners")
        .token(&admin)
        .json(&json!({"code": "alf", "name": "PT Sumber Alfaria Trijaya Tbk", "brand": "Alfamart"}))
        .send()
        .await;
    assert_eq!(reply.status, 201);
    let id = reply.json()["id"].as_i64().unwrap();
    assert_eq!(reply.json()["code"], "ALF");
    app.create_user("staff@alfamart.example", Role::Retail, Some(id));
    (id, app.login("staff@alfamart.example", PASSWORD).await)
}

#[actix_rt::test]
async fn submit_pass_place_and_delist() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await; // Indomaret staff
    let (business, product) = product(&app, &officer, 1).await;
    let babat = outlet(&app, &retail, None, "TBBT", "35.24.05").await;
    let paciran = outlet(&app, &retail, None, "TPCR", "35.24.14").await;

    let curation = submit(&app, &officer, product, INDOMARET).await;
    // A second open submission to the same partner is refused.
    let again = app
        .post("/api/v1/curations")
        .token(&officer)
        .json(&json!({"product_id": product, "retail_partner_id": INDOMARET}))
        .send()
        .await;
    again.assert_problem(409);
    // Retail users decide; they do not submit.
    app.post("/api/v1/curations")
        .token(&retail)
        .json(&json!({"product_id": product, "retail_partner_id": INDOMARET}))
        .send()
        .await
        .assert_problem(403);

    let decided = app
        .patch(&format!("/api/v1/curations/{curation}"))
        .token(&retail)
        .header("if-match", "\"1\"")
        .json(&json!({"status": "passed", "notes": "lolos kurasi"}))
        .send()
        .await;
    assert_eq!(decided.status, 200, "{}", String::from_utf8_lossy(&decided.body));
    let decided = decided.json();
    assert_eq!(decided["status"], "passed");
    assert!(decided["decided_at"].is_string());
    assert!(decided["decided_by"].is_i64());
    let twice = app
        .patch(&format!("/api/v1/curations/{curation}"))
        .token(&retail)
        .json(&json!({"status": "rejected"}))
        .send()
        .await;
    twice.assert_problem(409);

    for outlet in [babat, paciran] {
        let reply = app
            .post("/api/v1/placements")
            .token(&retail)
            .json(&json!({"product_id": product, "outlet_id": outlet, "listed_on": "2021-09-01"}))
            .send()
            .await;
        assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    }
    app.post("/api/v1/placements")
        .token(&retail)
        .json(&json!({"product_id": product, "outlet_id": babat}))
        .send()
        .await
        .assert_problem(409);

    let listed = app
        .get(&format!("/api/v1/placements?business_id={business}&active=true&count=true"))
        .token(&officer)
        .send()
        .await
        .json();
    assert_eq!(listed["total"], 2);
    let in_babat = app.get("/api/v1/placements?district=35.24.05").token(&officer).send().await.json();
    assert_eq!(in_babat["data"].as_array().unwrap().len(), 1);
    let placement = in_babat["data"][0]["id"].as_i64().unwrap();

    assert_eq!(
        app.delete(&format!("/api/v1/placements/{placement}")).token(&retail).send().await.status,
        204
    );
    app.delete(&format!("/api/v1/placements/{placement}")).token(&retail).send().await.assert_problem(409);
    let history =
        app.get(&format!("/api/v1/placements?outlet_id={babat}")).token(&officer).send().await.json();
    assert!(history["data"][0]["delisted_on"].is_string(), "delisting keeps the record");
    let active = app
        .get(&format!("/api/v1/placements?product_id={product}&active=true&count=true"))
        .token(&officer)
        .send()
        .await
        .json();
    assert_eq!(active["total"], 1);
    // Listed again in Babat: a new placement beside the old one.
    let reply = app
        .post("/api/v1/placements")
        .token(&retail)
        .json(&json!({"product_id": product, "outlet_id": babat}))
        .send()
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(app.count("placements"), 3);
    // An outlet with placements is closed, not deleted.
    app.delete(&format!("/api/v1/outlets/{babat}")).token(&retail).send().await.assert_problem(409);
}

#[actix_rt::test]
async fn rejected_and_uncurated_products_cannot_be_placed() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let (_, rejected) = product(&app, &officer, 1).await;
    let (_, uncurated) = product(&app, &officer, 2).await;
    let outlet = outlet(&app, &retail, None, "T001", "35.24.22").await;
    let curation = submit(&app, &officer, rejected, INDOMARET).await;
    let reply = app
        .patch(&format!("/api/v1/curations/{curation}"))
        .token(&retail)
        .json(&json!({"status": "rejected", "notes": "kemasan belum layak"}))
        .send()
        .await;
    assert_eq!(reply.json()["status"], "rejected");

    for product in [rejected, uncurated] {
        let problem = app
            .post("/api/v1/placements")
            .token(&retail)
            .json(&json!({"product_id": product, "outlet_id": outlet}))
            .send()
            .await
            .assert_problem(422);
        assert_eq!(problem["errors"][0]["code"], "not_curated");
    }
    // Passing with another partner does not count for Indomaret's outlets.
    let (other, _) = second_partner(&app).await;
    let elsewhere = submit(&app, &officer, uncurated, other).await;
    app.patch(&format!("/api/v1/curations/{elsewhere}"))
        .token(&officer)
        .json(&json!({"status": "passed"}))
        .send()
        .await;
    app.post("/api/v1/placements")
        .token(&retail)
        .json(&json!({"product_id": uncurated, "outlet_id": outlet}))
        .send()
        .await
        .assert_problem(422);
    // After a rejection the product may be submitted again.
    submit(&app, &officer, rejected, INDOMARET).await;
    assert_eq!(app.count("placements"), 0);
}

#[actix_rt::test]
async fn a_retail_user_sees_and_changes_only_its_own_partner() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let indomaret = app.token_for(Role::Retail).await;
    let (alfamart_id, alfamart) = second_partner(&app).await;
    let (_, product) = product(&app, &officer, 1).await;
    let ours = outlet(&app, &indomaret, None, "A1", "35.24.05").await;
    let theirs = outlet(&app, &alfamart, None, "B1", "35.24.05").await;
    let curation = submit(&app, &officer, product, alfamart_id).await;
    app.patch(&format!("/api/v1/curations/{curation}"))
        .token(&alfamart)
        .json(&json!({"status": "passed"}))
        .send()
        .await;

    // Indomaret staff: Alfamart's records do not exist.
    app.get(&format!("/api/v1/outlets/{theirs}")).token(&indomaret).send().await.assert_problem(404);
    app.patch(&format!("/api/v1/outlets/{theirs}"))
        .token(&indomaret)
        .json(&json!({"status": "closed"}))
        .send()
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/curations/{curation}")).token(&indomaret).send().await.assert_problem(404);
    app.patch(&format!("/api/v1/curations/{curation}"))
        .token(&indomaret)
        .json(&json!({"notes": "x"}))
        .send()
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/retail-partners/{alfamart_id}"))
        .token(&indomaret)
        .send()
        .await
        .assert_problem(404);
    app.post("/api/v1/placements")
        .token(&indomaret)
        .json(&json!({"product_id": product, "outlet_id": theirs}))
        .send()
        .await
        .assert_problem(404);
    let problem = app
        .post("/api/v1/outlets")
        .token(&indomaret)
        .json(
            &json!({"retail_partner_id": alfamart_id, "code": "X", "name": "X", "district_code": "35.24.05"}),
        )
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "forbidden");

    let own = app.get("/api/v1/outlets?count=true").token(&indomaret).send().await.json();
    assert_eq!(own["total"], 1);
    assert_eq!(own["data"][0]["id"], ours);
    let filtered = app
        .get(&format!("/api/v1/outlets?retail_partner_id={alfamart_id}"))
        .token(&indomaret)
        .send()
        .await
        .json();
    assert_eq!(filtered["data"], json!([]));
    assert_eq!(app.get("/api/v1/curations").token(&indomaret).send().await.json()["data"], json!([]));
    assert_eq!(
        app.get("/api/v1/retail-partners").token(&indomaret).send().await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Alfamart staff place the product in their own outlet.
    let reply = app
        .post("/api/v1/placements")
        .token(&alfamart)
        .json(&json!({"product_id": product, "outlet_id": theirs}))
        .send()
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(app.get("/api/v1/placements").token(&indomaret).send().await.json()["data"], json!([]));
    // Office staff see both partners; banks see none of it.
    assert_eq!(app.get("/api/v1/outlets?count=true").token(&officer).send().await.json()["total"], 2);
    let bank = app.token_for(Role::Bank).await;
    for path in ["/api/v1/outlets", "/api/v1/curations", "/api/v1/placements", "/api/v1/retail-partners"] {
        app.get(path).token(&bank).send().await.assert_problem(404);
    }
}

#[actix_rt::test]
async fn outlet_lists_filter_sort_and_export() {
    let app = spawn_app().await;
    let retail = app.token_for(Role::Retail).await;
    for (i, district) in ["35.24.05", "35.24.05", "35.24.14", "35.24.22"].iter().enumerate() {
        outlet(&app, &retail, Some(INDOMARET), &format!("C{i}"), district).await;
    }
    let id = app.get("/api/v1/outlets?district=35.24.14").token(&retail).send().await.json()["data"][0]["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .patch(&format!("/api/v1/outlets/{id}"))
        .token(&retail)
        .json(&json!({"status": "closed"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "closed");
    let count = |q: &'static str| {
        let (app, retail) = (&app, retail.clone());
        async move {
            app.get(&format!("/api/v1/outlets?count=true&{q}")).token(&retail).send().await.json()["total"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count("district=35.24.05").await, 2);
    assert_eq!(count("status=open").await, 3);
    assert_eq!(count("q=gerai%20c3").await, 1);
    let sorted = app.get("/api/v1/outlets?sort=-code&limit=2").token(&retail).send().await.json();
    assert_eq!(sorted["data"][0]["code"], "C3");
    let next = app
        .get(&format!(
            "/api/v1/outlets?sort=-code&limit=2&cursor={}",
            sorted["next_cursor"].as_str().unwrap()
        ))
        .token(&retail)
        .send()
        .await
        .json();
    assert_eq!(next["data"][1]["code"], "C0");
    let csv = app.get("/api/v1/outlets?sort=code").token(&retail).header("accept", "text/csv").send().await;
    assert_eq!(String::from_utf8(csv.body).unwrap().lines().count(), 5);
    let duplicate = app
        .post("/api/v1/outlets")
        .token(&retail)
        .json(&json!({"code": "C0", "name": "X", "district_code": "35.24.05"}))
        .send()
        .await;
    duplicate.assert_problem(409);
    let bad = app
        .post("/api/v1/outlets")
        .token(&retail)
        .json(&json!({"code": "", "name": "X", "district_code": "35.24.99"}))
        .send()
        .await;
    assert_eq!(bad.assert_problem(422)["errors"].as_array().unwrap().len(), 2);
}

/// The article: 16 products from 13 IKM passed a modern retailer's curation and are sold in 51
/// of its outlets. Rebuilt through the API and read back from the lists.
#[actix_rt::test]
async fn the_articles_16_products_from_13_ikm_in_51_outlets() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let mut products = Vec::new();
    for n in 0..13 {
        let business = app.create_business(&officer, &business_json(n)).await;
        assert_eq!(business["is_ikm"], true);
        let count = if n < 3 { 2 } else { 1 };
        for k in 0..count {
            let reply = app
                .post("/api/v1/products")
                .token(&officer)
                .json(&json!({"business_id": business["id"], "name": format!("Produk {n}-{k}"), "category": "food"}))
                .send()
                .await;
            products.push(reply.json()["id"].as_i64().unwrap());
        }
    }
    assert_eq!(products.len(), 16);
    let mut outlets = Vec::new();
    for i in 0..51 {
        outlets.push(
            outlet(&app, &retail, None, &format!("G{i:02}"), &format!("35.24.{:02}", i % 27 + 1)).await,
        );
    }
    for product in &products {
        let curation = submit(&app, &officer, *product, INDOMARET).await;
        let reply = app
            .patch(&format!("/api/v1/curations/{curation}"))
            .token(&retail)
            .json(&json!({"status": "passed"}))
            .send()
            .await;
        assert_eq!(reply.status, 200);
    }
    // Every outlet stocks at least one product: product i goes to outlets i, i+16, i+32, i+48.
    for (i, outlet) in outlets.iter().enumerate() {
        let product = products[i % 16];
        let reply = app
            .post("/api/v1/placements")
            .token(&retail)
            .json(&json!({"product_id": product, "outlet_id": outlet}))
            .send()
            .await;
        assert_eq!(reply.status, 201);
    }

    let passed = app
        .get("/api/v1/curations?status=passed&retail_partner_id=1&limit=500&count=true")
        .token(&officer)
        .send()
        .await
        .json();
    assert_eq!(passed["total"], 16);
    let curated: HashSet<i64> =
        passed["data"].as_array().unwrap().iter().map(|c| c["product_id"].as_i64().unwrap()).collect();
    let mut ikm = HashSet::new();
    for product in &curated {
        let p = app.get(&format!("/api/v1/products/{product}")).token(&officer).send().await.json();
        let b =
            app.get(&format!("/api/v1/businesses/{}", p["business_id"])).token(&officer).send().await.json();
        assert_eq!(b["is_ikm"], true);
        ikm.insert(b["id"].as_i64().unwrap());
    }
    assert_eq!(ikm.len(), 13);
    let placements = app
        .get("/api/v1/placements?retail_partner_id=1&active=true&limit=500")
        .token(&officer)
        .send()
        .await
        .json();
    let stocking: HashSet<i64> =
        placements["data"].as_array().unwrap().iter().map(|p| p["outlet_id"].as_i64().unwrap()).collect();
    assert_eq!(stocking.len(), 51);
    let outlets_listed =
        app.get("/api/v1/outlets?retail_partner_id=1&count=true").token(&officer).send().await.json();
    assert_eq!(outlets_listed["total"], Value::from(51));
}

#[actix_rt::test]
async fn an_outlet_stays_with_its_partner() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let (alfamart, _) = second_partner(&app).await;
    let id = outlet(&app, &admin, Some(INDOMARET), "TLMG", "35.24.01").await;
    let path = format!("/api/v1/outlets/{id}");
    let problem = app
        .patch(&path)
        .token(&admin)
        .json(&json!({"retail_partner_id": alfamart}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "read_only");
    assert_eq!(app.get(&path).token(&admin).send().await.json()["retail_partner_id"], INDOMARET);
}

#[actix_rt::test]
async fn deleting_a_business_records_everything_it_takes_with_it() {
    use diesel::prelude::*;
    use umkm_api::db::schema::audit_log;
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let (business, product) = product(&app, &officer, 1).await;
    let babat = outlet(&app, &retail, None, "TBBT", "35.24.05").await;
    let curation = submit(&app, &officer, product, INDOMARET).await;
    let decided = app
        .patch(&format!("/api/v1/curations/{curation}"))
        .token(&retail)
        .json(&json!({"status": "passed"}))
        .send()
        .await;
    assert_eq!(decided.status, 200);
    let placed = app
        .post("/api/v1/placements")
        .token(&retail)
        .json(&json!({"product_id": product, "outlet_id": babat}))
        .send()
        .await;
    assert_eq!(placed.status, 201);
    let starts = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let training = json!({"title": "Pelatihan", "venue": "Aula", "starts_on": starts, "ends_on": starts,
                          "capacity": 5, "registrations": [{"business_id": business}]});
    assert_eq!(app.post("/api/v1/trainings").token(&officer).json(&training).send().await.status, 201);

    let reply = app.delete(&format!("/api/v1/businesses/{business}")).token(&officer).send().await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    for table in ["products", "curations", "placements", "registrations"] {
        assert_eq!(app.count(table), 0, "{table}");
    }
    let mut deleted: Vec<String> = app
        .db(|c| {
            audit_log::table
                .filter(audit_log::action.eq("delete"))
                .select(audit_log::entity)
                .load::<String>(c)
        })
        .unwrap();
    deleted.sort();
    assert_eq!(deleted, ["business", "curation", "placement", "product", "registration"]);
}
