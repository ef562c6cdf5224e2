use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{
    TestApp, apply, bank_token, business_json, consenting_business, spawn_app, withdraw_consents,
};

/// Seeded by the migrations: BRI is bank 1 with KUR programmes 1 (super mikro), 2 (mikro) and
/// 3 (kecil); BNI is bank 2 with programmes 4, 5 and 6.
const BRI: i64 = 1;
const BNI: i64 = 2;
const BRI_KUR_MIKRO: i64 = 2;
const BNI_KUR_MIKRO: i64 = 5;

async fn pull(app: &TestApp, token: &str, bank: i64, query: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/bank-partners/{bank}/eligible-applicants?{query}"))
        .token(token)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["data"].as_array().unwrap().clone()
}

#[actix_rt::test]
async fn apply_pull_review_approve_disburse() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let application = apply(&app, &officer, business, BRI_KUR_MIKRO, 50_000_000).await;
    assert_eq!(application["status"], "submitted");
    assert_eq!(application["bank_partner_id"], BRI);
    assert_eq!(application["eligibility"], json!({"eligible": true, "reasons": []}));
    let id = application["id"].as_i64().unwrap();
    let path = format!("/api/v1/applications/{id}");

    let pulled = pull(&app, &bri, BRI, "").await;
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0]["application_id"], id);
    assert_eq!(pulled[0]["owner_nik"], business_json(1)["owner_nik"], "consenting applicants' NIK is shared");
    assert_eq!(pulled[0]["nib"], business_json(1)["nib"]);
    assert_eq!(pulled[0]["scale"], "mikro");
    assert_eq!(pulled[0]["status"], "submitted");

    // The officer may not decide; the bank may not approve before reviewing.
    app.patch(&path).token(&officer).json(&json!({"status": "in_review"})).send().await.assert_problem(403);
    app.patch(&path)
        .token(&bri)
        .json(&json!({"status": "approved", "amount_approved_idr": 1}))
        .send()
        .await
        .assert_problem(409);
    for (step, body) in [
        ("in_review", json!({"status": "in_review", "bank_reference": "BRI-KUR-0001"})),
        (
            "approved",
            json!({"status": "approved", "amount_approved_idr": 45_000_000, "financing_ends_on": "2029-12-31"}),
        ),
        ("disbursed", json!({"status": "disbursed"})),
    ] {
        let reply = app.patch(&path).token(&bri).json(&body).send().await;
        assert_eq!(reply.status, 200, "{step}: {}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["status"], step);
        assert_eq!(pull(&app, &bri, BRI, "").await[0]["status"], step, "the pull shows {step}");
        let listed =
            app.get(&format!("/api/v1/applications?status={step}")).token(&officer).send().await.json();
        assert_eq!(listed["data"][0]["id"], id, "the list shows {step}");
    }
    let done = app.get(&path).token(&bri).send().await.json();
    assert_eq!(done["amount_approved_idr"], 45_000_000);
    assert_eq!(done["bank_reference"], "BRI-KUR-0001");
    assert!(done["decided_at"].is_string());
    // Disbursed is final.
    app.patch(&path).token(&bri).json(&json!({"status": "rejected"})).send().await.assert_problem(409);
    app.patch(&path).token(&officer).json(&json!({"status": "withdrawn"})).send().await.assert_problem(409);

    // The approved financing at BRI now makes the business ineligible at BNI.
    let at_bni = apply(&app, &officer, business, BNI_KUR_MIKRO, 20_000_000).await;
    assert_eq!(at_bni["eligibility"], json!({"eligible": false, "reasons": ["active_financing_elsewhere"]}));
    let bni = bank_token(&app, BNI).await;
    assert!(pull(&app, &bni, BNI, "").await.is_empty());
    let history =
        app.get(&format!("/api/v1/businesses/{business}/applications")).token(&officer).send().await.json();
    assert_eq!(history["data"].as_array().unwrap().len(), 2);
}

#[actix_rt::test]
async fn eligibility_reasons_and_bad_decisions() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let mut body = business_json(2);
    body["nib"] = Value::Null;
    body["established_on"] = Value::Null;
    let business = app.create_business(&officer, &body).await["id"].as_i64().unwrap();
    let application = apply(&app, &officer, business, BRI_KUR_MIKRO, 60_000_000).await;
    assert_eq!(
        application["eligibility"]["reasons"],
        json!(["no_consent", "business_too_young", "nib_required", "npwp_required"])
    );
    // Without consent the bank sees nothing of it.
    app.get(&format!("/api/v1/applications/{}", application["id"]))
        .token(&bri)
        .send()
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/businesses/{business}/applications"))
        .token(&bri)
        .send()
        .await
        .assert_problem(404);

    let ok = consenting_business(&app, &officer, 3).await;
    let id = apply(&app, &officer, ok, BRI_KUR_MIKRO, 50_000_000).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/applications/{id}");
    app.patch(&path).token(&bri).json(&json!({"status": "in_review"})).send().await;
    let problem = app
        .patch(&path)
        .token(&bri)
        .json(&json!({"status": "approved", "amount_approved_idr": 100_000_001}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "amount_approved_idr");
    app.patch(&path).token(&bri).json(&json!({"status": "approved"})).send().await.assert_problem(422);
    app.patch(&path).token(&bri).json(&json!({"status": "withdrawn"})).send().await.assert_problem(403);
    app.patch(&path)
        .token(&bri)
        .header("if-match", "\"1\"")
        .json(&json!({"status": "rejected"}))
        .send()
        .await
        .assert_problem(412);
    let current = app.get(&path).token(&bri).send().await.json();
    assert_eq!((current["status"].clone(), current["version"].clone()), (json!("in_review"), json!(2)));
    let withdrawn = app.patch(&path).token(&officer).json(&json!({"status": "withdrawn"})).send().await;
    assert_eq!(withdrawn.json()["status"], "withdrawn");

    let bad = app
        .post("/api/v1/applications")
        .token(&officer)
        .json(&json!({"business_id": 999_999, "programme_id": 999, "amount_requested_idr": 0}))
        .send()
        .await;
    assert_eq!(bad.assert_problem(422)["errors"].as_array().unwrap().len(), 3);
    app.post("/api/v1/applications")
        .token(&bri)
        .json(&json!({"business_id": ok, "programme_id": 2, "amount_requested_idr": 5}))
        .send()
        .await
        .assert_problem(403);
}

#[actix_rt::test]
async fn a_bank_sees_and_changes_nothing_of_another_bank() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let bni = bank_token(&app, BNI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let at_bri = apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await["id"].as_i64().unwrap();

    app.get(&format!("/api/v1/applications/{at_bri}")).token(&bni).send().await.assert_problem(404);
    app.patch(&format!("/api/v1/applications/{at_bri}"))
        .token(&bni)
        .json(&json!({"status": "in_review"}))
        .send()
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants"))
        .token(&bni)
        .send()
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/bank-partners/{BRI}")).token(&bni).send().await.assert_problem(404);
    app.get(&format!("/api/v1/programmes/{BRI_KUR_MIKRO}")).token(&bni).send().await.assert_problem(404);
    app.get(&format!("/api/v1/businesses/{business}/applications"))
        .token(&bni)
        .send()
        .await
        .assert_problem(404);
    assert_eq!(app.get("/api/v1/applications").token(&bni).send().await.json()["data"], json!([]));
    let programmes = app.get("/api/v1/programmes?count=true").token(&bni).send().await.json();
    assert_eq!(programmes["total"], 3);
    assert!(programmes["data"].as_array().unwrap().iter().all(|p| p["bank_partner_id"] == BNI));
    assert_eq!(
        app.get("/api/v1/bank-partners").token(&bni).send().await.json()["data"].as_array().unwrap().len(),
        1
    );
    // The application is untouched, and BRI sees it.
    let seen = app.get(&format!("/api/v1/applications/{at_bri}")).token(&bri).send().await.json();
    assert_eq!((seen["status"].clone(), seen["version"].clone()), (json!("submitted"), json!(1)));
    // Retail users see no banking at all.
    let retail = app.token_for(Role::Retail).await;
    app.get("/api/v1/applications").token(&retail).send().await.assert_problem(404);
}

#[actix_rt::test]
async fn withdrawn_consent_leaves_the_pull_at_once_and_incremental_pulls_return_changes() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let mut ids = Vec::new();
    let mut businesses = Vec::new();
    for n in 0..5 {
        let business = consenting_business(&app, &officer, n).await;
        businesses.push(business);
        ids.push(
            apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000 + n as i64).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let all = pull(&app, &bri, BRI, "limit=2").await;
    assert_eq!(all.len(), 2);
    let everything = pull(&app, &bri, BRI, "limit=500").await;
    assert_eq!(everything.len(), 5);
    let since = everything[4]["updated_at"].as_str().unwrap().to_owned();

    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(withdraw_consents(&app, &officer, businesses[1]).await, 1);
    let after = pull(&app, &bri, BRI, "limit=500").await;
    assert_eq!(after.len(), 4);
    assert!(after.iter().all(|a| a["business_id"] != businesses[1]));
    app.get(&format!("/api/v1/applications/{}", ids[1])).token(&bri).send().await.assert_problem(404);

    // Change two applications; an incremental pull returns exactly them (and the bound row).
    let reviewed = app
        .patch(&format!("/api/v1/applications/{}", ids[3]))
        .token(&bri)
        .json(&json!({"status": "in_review"}))
        .send()
        .await
        .json();
    app.patch(&format!("/api/v1/applications/{}", ids[0]))
        .token(&bri)
        .json(&json!({"bank_reference": "X-1"}))
        .send()
        .await;
    let since_changes = reviewed["updated_at"].as_str().unwrap().replace('+', "%2B");
    let changed: Vec<i64> = pull(&app, &bri, BRI, &format!("updated_since={since_changes}"))
        .await
        .iter()
        .map(|a| a["application_id"].as_i64().unwrap())
        .collect();
    assert_eq!(changed, [ids[3], ids[0]]);
    let old: Vec<(i64, bool)> =
        pull(&app, &bri, BRI, &format!("updated_since={}", since.replace('+', "%2B")))
            .await
            .iter()
            .map(|a| (a["application_id"].as_i64().unwrap(), a["left"].as_bool().unwrap()))
            .collect();
    assert_eq!(
        old,
        [(ids[4], false), (ids[1], true), (ids[3], false), (ids[0], false)],
        "the last row of the first pull, the applicant that withdrew consent, and the two changes"
    );

    // Paging by cursor visits every eligible applicant once.
    let mut seen = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = app
            .get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants?{query}"))
            .token(&bri)
            .send()
            .await
            .json();
        seen.extend(page["data"].as_array().unwrap().iter().map(|a| a["application_id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=1&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    let mut expected: Vec<i64> = ids.iter().copied().filter(|id| *id != ids[1]).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[actix_rt::test]
async fn csv_and_ndjson_pulls_match_the_json() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    for n in 0..7 {
        let business = consenting_business(&app, &officer, n).await;
        apply(&app, &officer, business, BRI_KUR_MIKRO, 30_000_000).await;
    }
    let json = pull(&app, &bri, BRI, "limit=500").await;
    assert_eq!(json.len(), 7);
    let path = format!("/api/v1/bank-partners/{BRI}/eligible-applicants");
    let ndjson = app.get(&path).token(&bri).header("accept", "application/x-ndjson").send().await;
    let lines: Vec<Value> =
        String::from_utf8(ndjson.body).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, json);
    let csv = app.get(&path).token(&bri).header("accept", "text/csv").send().await;
    let mut reader = csv::Reader::from_reader(csv.body.as_slice());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 7);
    for (row, value) in rows.iter().zip(&json) {
        for (name, cell) in headers.iter().zip(row.iter()) {
            let expected = match &value[name] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(cell, expected, "{name}");
        }
    }
}

#[actix_rt::test]
async fn a_retried_application_is_filed_once() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let business = consenting_business(&app, &officer, 1).await;
    let body =
        json!({"business_id": business, "programme_id": BRI_KUR_MIKRO, "amount_requested_idr": 25_000_000});
    let first = app
        .post("/api/v1/applications")
        .token(&officer)
        .header("idempotency-key", "bri-0001")
        .json(&body)
        .send()
        .await;
    let second = app
        .post("/api/v1/applications")
        .token(&officer)
        .header("idempotency-key", "bri-0001")
        .json(&body)
        .send()
        .await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (201, 201));
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(app.count("applications"), 1);
    // A business with applications cannot be deleted.
    app.delete(&format!("/api/v1/businesses/{business}")).token(&officer).send().await.assert_problem(409);
}

#[actix_rt::test]
async fn programmes_are_kept_by_office_staff() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let kur = app.get("/api/v1/programmes?bank_partner_id=4&count=true").token(&officer).send().await.json();
    assert_eq!(kur["total"], 3);
    let kinds: Vec<&str> =
        kur["data"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["kur_super_mikro", "kur_mikro", "kur_kecil"]);
    assert_eq!(kur["data"][0]["max_amount_idr"], 10_000_000);
    let reply = app
        .post("/api/v1/programmes")
        .token(&officer)
        .json(&json!({"bank_partner_id": 5, "name": "Kredit Usaha Lamongan", "kind": "commercial", "min_amount_idr": 5_000_000,
                      "max_amount_idr": 200_000_000, "interest_rate_bp": 900, "eligible_scales": ["mikro", "kecil"]}))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let id = reply.json()["id"].as_i64().unwrap();
    let closed = app
        .patch(&format!("/api/v1/programmes/{id}"))
        .token(&officer)
        .json(&json!({"open": false}))
        .send()
        .await
        .json();
    assert_eq!(
        (closed["open"].clone(), closed["name"].clone()),
        (json!(false), json!("Kredit Usaha Lamongan"))
    );
    let business = consenting_business(&app, &officer, 1).await;
    let problem = app
        .post("/api/v1/applications")
        .token(&officer)
        .json(&json!({"business_id": business, "programme_id": id, "amount_requested_idr": 10_000_000}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "closed");
    let bad = app.post("/api/v1/programmes").token(&officer).json(&json!({"bank_partner_id": 99, "name": "", "kind": "x", "min_amount_idr": 5, "max_amount_idr": 1, "interest_rate_bp": -1})).send().await;
    assert_eq!(bad.assert_problem(422)["errors"].as_array().unwrap().len(), 5);
    let viewer = app.token_for(Role::Viewer).await;
    app.post("/api/v1/programmes").token(&viewer).json(&json!({})).send().await.assert_problem(403);
}

#[actix_rt::test]
async fn a_kur_programme_lends_only_within_its_plafond_band() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let programme = |kind: &str, min: i64, max: i64| {
        json!({"bank_partner_id": 5, "name": "Uji Plafon", "kind": kind, "min_amount_idr": min,
               "max_amount_idr": max, "interest_rate_bp": 600})
    };
    let before = app.count("financing_programmes");
    // Outside the band: a super mikro of Rp50 m, a mikro from Rp10 m (its band starts above),
    // a kecil up to Rp600 m.
    for (kind, min, max, field) in [
        ("kur_super_mikro", 1_000_000, 50_000_000, "max_amount_idr"),
        ("kur_mikro", 10_000_000, 100_000_000, "min_amount_idr"),
        ("kur_kecil", 100_000_001, 600_000_000, "max_amount_idr"),
    ] {
        let problem = app
            .post("/api/v1/programmes")
            .token(&officer)
            .json(&programme(kind, min, max))
            .send()
            .await
            .assert_problem(422);
        assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{kind}: {problem}");
        assert_eq!(
            (problem["errors"][0]["field"].as_str(), problem["errors"][0]["code"].as_str()),
            (Some(field), Some("out_of_range"))
        );
    }
    assert_eq!(app.count("financing_programmes"), before, "nothing was created");
    // The bands' edges, and commercial credit of any size.
    for (kind, min, max) in [
        ("kur_super_mikro", 1, 10_000_000),
        ("kur_mikro", 10_000_001, 100_000_000),
        ("kur_kecil", 100_000_001, 500_000_000),
        ("commercial", 1, 2_000_000_000),
    ] {
        let reply =
            app.post("/api/v1/programmes").token(&officer).json(&programme(kind, min, max)).send().await;
        assert_eq!(reply.status, 201, "{kind}: {}", String::from_utf8_lossy(&reply.body));
    }
    // A change of kind is checked against the new kind's band, and refused changes nothing.
    let path = format!("/api/v1/programmes/{BRI_KUR_MIKRO}");
    let current = app.get(&path).token(&officer).send().await;
    let etag = current.header("etag").unwrap();
    let problem = app
        .patch(&path)
        .token(&officer)
        .header("If-Match", &etag)
        .json(&json!({"kind": "kur_super_mikro"}))
        .send()
        .await
        .assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["min_amount_idr", "max_amount_idr"]);
    assert_eq!(app.get(&path).token(&officer).send().await.json()["kind"], "kur_mikro");
}

#[actix_rt::test]
async fn a_programme_stays_with_its_bank() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let path = format!("/api/v1/programmes/{BRI_KUR_MIKRO}");
    let problem = app
        .patch(&path)
        .token(&officer)
        .json(&json!({"bank_partner_id": BNI}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "bank_partner_id");
    assert_eq!(problem["errors"][0]["code"], "read_only");
    let programme = app.get(&path).token(&officer).send().await.json();
    assert_eq!((programme["bank_partner_id"].as_i64(), programme["version"].as_i64()), (Some(BRI), Some(1)));
    // Sending back what was read is fine.
    let reply =
        app.patch(&path).token(&officer).json(&json!({"bank_partner_id": BRI, "open": false})).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["open"], false);
}
