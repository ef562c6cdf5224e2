//! Erasure as anonymisation (issue 30, UU 27/2022 Pasal 43–44): the person's values leave the
//! database, the statistics do not move, the bank that listed them is told, and it is refused
//! while their financing runs.

use actix_web::http::Method;
use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, apply, bank_token, business_json, consent_for, owner_of, spawn_app};

const BRI: i64 = 1;
const BRI_KUR_MIKRO: i64 = 2;

/// A consenting business with an NPWP; its id and the owner's NIK and name.
async fn business(app: &TestApp, officer: &str, n: usize) -> (i64, String, String) {
    let mut body = business_json(n);
    body["npwp"] = json!("012345678901234");
    body["address"] = json!("Jl. Melati Gang Buntu 7");
    let created = app.create_business(officer, &body).await;
    let id = created["id"].as_i64().unwrap();
    consent_for(app, officer, id, None).await;
    (id, body["owner_nik"].as_str().unwrap().to_owned(), body["owner_name"].as_str().unwrap().to_owned())
}

/// What every office figure says now.
async fn figures(app: &TestApp, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/api/v1/stats/overview",
        "/api/v1/stats/businesses?group_by=district",
        "/api/v1/stats/financing?group_by=status",
    ] {
        let reply = app.get(path).token(token).send().await;
        assert_eq!(reply.status, 200, "{path}: {}", String::from_utf8_lossy(&reply.body));
        all.push(reply.json());
    }
    all
}

#[actix_rt::test]
async fn an_erased_person_is_gone_but_the_statistics_and_the_businesses_stay() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let bri = bank_token(&app, BRI).await;
    let (business, nik, name) = business(&app, &officer, 1).await;
    let person = owner_of(&app, &officer, business).await;
    let application =
        apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await["id"].as_i64().unwrap();
    let subscription =
        json!({"bank_partner_id": BRI, "url": "http://127.0.0.1:9/hook", "event_types": ["applicant.left"]});
    assert_eq!(
        app.post("/api/v1/webhook-subscriptions").token(&admin).json(&subscription).send().await.status,
        201
    );
    let path = format!("/api/v1/persons/{person}/erasure");

    // Refused while the financing runs: the application is named, nothing is written.
    let audit = app.count("audit_log");
    let refused = app.post(&path).token(&admin).send().await.assert_problem(409);
    assert!(refused["detail"].as_str().unwrap().contains(&application.to_string()), "{refused}");
    assert_eq!(app.count("audit_log"), audit);
    assert_eq!(app.count(&format!("persons WHERE id = {person} AND erased_at IS NULL")), 1);
    let application_path = format!("/api/v1/applications/{application}");
    for body in [
        json!({"status": "in_review"}),
        json!({"status": "approved", "amount_approved_idr": 20_000_000, "financing_ends_on": "2029-12-31"}),
    ] {
        let reply = app.patch(&application_path).token(&bri).json(&body).send().await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    }
    app.post(&path).token(&admin).send().await.assert_problem(409);
    // Ended yesterday: no longer kept for it. (The bank records when the financing ends.)
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    let reply = app
        .patch(&application_path)
        .token(&bri)
        .json(&json!({"status": "disbursed", "financing_ends_on": yesterday}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let listed = app
        .get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants?updated_since=2000-01-01T00:00:00Z"))
        .token(&bri)
        .send()
        .await
        .json();
    assert_eq!(listed["data"][0]["left"], false, "the bank lists the disbursed applicant: {listed}");

    // Who may: administrators alone.
    app.post(&path).token(&officer).send().await.assert_problem(403);
    app.post(&path).token(&app.token_for(Role::Viewer).await).send().await.assert_problem(403);
    app.post(&path).token(&bri).send().await.assert_problem(404);
    app.post(&path).token(&app.token_for(Role::Retail).await).send().await.assert_problem(404);
    app.post("/api/v1/persons/999999/erasure").token(&admin).send().await.assert_problem(404);
    app.post(&path).token(&admin).header("If-Match", "\"999\"").send().await.assert_problem(412);

    // A business of theirs moved to another owner, and one deleted (made with an
    // Idempotency-Key, so its answer is stored): their entries keep the person's values too.
    let mut moved = business_json(3);
    (moved["owner_nik"], moved["owner_name"]) = (json!(nik), json!(name));
    let moved = app.create_business(&officer, &moved).await["id"].as_i64().unwrap();
    let to_another =
        json!({"owner_nik": "3524051203909999", "owner_name": "Orang Lain", "phone": "081299990000"});
    let reply = app
        .patch(&format!("/api/v1/businesses/{moved}"))
        .token(&officer)
        .raw("application/merge-patch+json", to_another.to_string())
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_ne!(reply.json()["owner_id"], json!(person));
    let mut deleted_body = business_json(4);
    (deleted_body["owner_nik"], deleted_body["owner_name"]) = (json!(nik), json!(name));
    // A create answered and stored under its key, sent again after the erasure.
    let create_deleted = || {
        let create = app.post("/api/v1/businesses").token(&officer);
        create.header("Idempotency-Key", "erasure-4").json(&deleted_body).send()
    };
    let reply = create_deleted().await;
    assert_eq!(reply.status, 201);
    let deleted = reply.json()["id"].as_i64().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/businesses/{deleted}")).token(&officer).send().await.status, 204);
    let stored = format!("idempotency_keys WHERE location = '/api/v1/businesses/{deleted}'");
    assert_eq!(app.count(&stored), 1);

    let before = figures(&app, &admin).await;
    let erased = app.post(&path).token(&admin).send().await;
    assert_eq!(erased.status, 200, "{}", String::from_utf8_lossy(&erased.body));
    let erased = erased.json();
    assert_eq!((erased["name"].clone(), erased["nik"].clone()), (json!("[erased]"), json!("")), "{erased}");
    assert_eq!((erased["phone"].clone(), erased["email"].clone()), (json!(""), Value::Null));
    assert!(erased["erased_at"].is_string());
    assert_eq!(erased["business_ids"], json!([business]));
    // The stored answer is kept, without them: a retry is answered as the first, creating nothing.
    assert_eq!(app.count(&stored), 1);
    let businesses = app.count("businesses");
    let retried = create_deleted().await;
    assert_eq!(retried.status, 201);
    assert_eq!(retried.header("idempotent-replayed").as_deref(), Some("true"));
    let replayed = retried.json();
    assert_eq!((replayed["id"].clone(), replayed["owner_name"].clone()), (json!(deleted), json!("[erased]")));
    assert_eq!((replayed["owner_nik"].clone(), replayed["email"].clone()), (json!(""), Value::Null));
    assert_eq!(app.count("businesses"), businesses);
    assert_eq!(
        app.count(&format!("audit_log WHERE entity = 'business' AND entity_id = {business} AND changes LIKE '%owner_erased_at%'")),
        1,
        "the business's change is audited"
    );

    // The statistics are the same, and agree with the data.
    assert_eq!(figures(&app, &admin).await, before);
    let differences = app.db(|c| umkm_api::summary::verify(c).unwrap());
    assert!(differences.is_empty(), "{differences:?}");

    // Nobody finds them by NIK; the business keeps its facts, not its owner's.
    let found = app.get(&format!("/api/v1/persons?nik={nik}")).token(&officer).send().await.json();
    assert_eq!(found["data"], json!([]), "{found}");
    let kept = app.get(&format!("/api/v1/businesses/{business}")).token(&officer).send().await.json();
    assert_eq!(kept["owner_name"], "[erased]", "{kept}");
    assert_eq!((kept["owner_nik"].clone(), kept["phone"].clone()), (json!(""), json!("")));
    assert_eq!((kept["address"].clone(), kept["npwp"].clone()), (json!("[erased]"), Value::Null));
    assert_eq!(
        (kept["name"].clone(), kept["district_code"].clone()),
        (json!("Usaha 00001"), json!("35.24.14"))
    );
    assert_eq!(kept["employees"], 4);
    // Nothing of theirs anywhere in the database: the sealed values and the index are markers,
    // the audit log holds no value of theirs.
    assert_eq!(app.count(&format!("persons WHERE id = {person} AND nik = 'erased' AND phone = 'erased' AND email IS NULL AND nik_index = 'erased.{person}'")), 1);
    for value in [name.as_str(), nik.as_str(), "Melati", "012345678901234", "owner1@example.com"] {
        assert_eq!(
            app.count(&format!("audit_log WHERE changes LIKE '%{value}%'")),
            0,
            "{value} in the audit log"
        );
        assert_eq!(
            app.count(&format!("businesses WHERE address LIKE '%{value}%' OR person_name LIKE '%{value}%'")),
            0
        );
    }
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE entity = 'person' AND entity_id = {person} AND changes LIKE '%erased_at%'"
        )),
        1
    );

    // The bank saw them leave, and was told.
    let left = app
        .get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants?updated_since=2000-01-01T00:00:00Z"))
        .token(&bri)
        .send()
        .await
        .json();
    assert_eq!(left["data"][0]["left"], true, "{left}");
    assert_eq!(left["data"][0]["left_reason"], "erased");
    let events: Vec<String> = app.db(|c| {
        use diesel::prelude::*;
        use umkm_api::db::schema::webhook_deliveries as w;
        w::table.filter(w::event_type.eq("applicant.left")).select(w::payload).load(c).unwrap()
    });
    assert!(events.iter().any(|e| e.contains("\"erased\"")), "{events:?}");

    // Nothing more happens to them: 409 for a second erasure, a correction, a restriction, a
    // consent; a new application for the business is 422; the data export shows what is left.
    app.post(&path).token(&admin).send().await.assert_problem(409);
    let correction = app
        .patch(&format!("/api/v1/persons/{person}"))
        .token(&officer)
        .raw("application/merge-patch+json", json!({"name": "Someone"}).to_string())
        .send()
        .await;
    correction.assert_problem(409);
    app.call(Method::PUT, &format!("/api/v1/persons/{person}/restriction"))
        .token(&officer)
        .send()
        .await
        .assert_problem(409);
    let consent = json!({"channel": "paper_form", "evidence": "FORM/9", "text_version": "v1",
        "given_at": "2026-01-01T00:00:00Z"});
    let consents = app.count("consents");
    app.post(&format!("/api/v1/persons/{person}/consents"))
        .token(&officer)
        .json(&consent)
        .send()
        .await
        .assert_problem(409);
    assert_eq!(app.count("consents"), consents);
    let applications = app.count("applications");
    let refused = app
        .post("/api/v1/applications")
        .token(&officer)
        .json(&json!({"business_id": business, "programme_id": BRI_KUR_MIKRO, "amount_requested_idr": 5_000_000}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(refused["errors"][0]["code"], "owner_erased", "{refused}");
    assert_eq!(app.count("applications"), applications);
    let export = app.get(&format!("/api/v1/persons/{person}/data-export")).token(&officer).send().await;
    assert_eq!(export.status, 200);
    assert_eq!(export.json()["person"]["name"], "[erased]");

    // Their NIK given again is a new person.
    let mut again = business_json(2);
    again["owner_nik"] = json!(nik);
    again["owner_name"] = json!(name);
    let created = app.create_business(&officer, &again).await;
    assert_ne!(created["owner_id"], json!(person), "{created}");
}

#[actix_rt::test]
async fn applications_racing_an_erasure_either_stop_it_or_are_refused() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let (business, _, _) = business(&app, &officer, 1).await;
    let person = owner_of(&app, &officer, business).await;
    let body =
        json!({"business_id": business, "programme_id": BRI_KUR_MIKRO, "amount_requested_idr": 5_000_000});
    let applying = (0..8).map(|_| app.post("/api/v1/applications").token(&officer).json(&body).send());
    let erasing = app.post(&format!("/api/v1/persons/{person}/erasure")).token(&admin).send();
    let (applied, erased) =
        futures_util::future::join(futures_util::future::join_all(applying), erasing).await;
    let written = applied.iter().filter(|r| r.status == 201).count();
    for reply in &applied {
        assert!(reply.status == 201 || reply.status == 422, "{}", String::from_utf8_lossy(&reply.body));
    }
    // Either an application got in first (its financing has not ended: the erasure is refused)
    // or the erasure did (every application after it is refused).
    match erased.status.as_u16() {
        200 => assert_eq!(written, 0),
        409 => assert!(written > 0),
        other => panic!("erasure answered {other}"),
    }
    assert_eq!(
        app.count(&format!("applications WHERE business_id = {business}")),
        i64::try_from(written).unwrap()
    );
}
