//! Consent as evidence (issue 29): a person's consent to share their data with every partner
//! bank or with one, recorded with its evidence and withdrawn; the businesses' flag, what each
//! bank sees, the statistics and the audit log follow it. On both back ends.

use serde_json::{Value, json};
use umkm_api::domain::role::Role;
use umkm_api::summary;

use crate::helpers::{TestApp, apply, bank_token, business_json, owner_of, spawn_app};

const BRI: i64 = 1;
const BNI: i64 = 2;
const BRI_KUR_MIKRO: i64 = 2;
const BNI_KUR_MIKRO: i64 = 5;

fn consent(bank: Option<i64>) -> Value {
    json!({"bank_partner_id": bank, "channel": "paper_form", "evidence": "FORM-2026/0153",
        "text_version": "persetujuan-bank-v2", "given_at": "2026-03-04T05:06:07Z"})
}

async fn pull(app: &TestApp, token: &str, bank: i64) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/bank-partners/{bank}/eligible-applicants?limit=500"))
        .token(token)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["data"].as_array().unwrap().clone()
}

async fn business(app: &TestApp, officer: &str, id: i64) -> Value {
    app.get(&format!("/api/v1/businesses/{id}")).token(officer).send().await.json()
}

#[actix_rt::test]
async fn a_consent_to_every_bank_opens_all_the_persons_businesses_and_its_withdrawal_closes_them() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let me = app.get("/api/v1/auth/me").token(&officer).send().await.json()["id"].clone();
    let bri = bank_token(&app, BRI).await;
    // One person, two businesses; an application at BRI through the second.
    let first = app.create_business(&officer, &business_json(1)).await;
    let mut body = business_json(2);
    body["owner_nik"] = business_json(1)["owner_nik"].clone();
    body["owner_name"] = business_json(1)["owner_name"].clone();
    let second = app.create_business(&officer, &body).await;
    let person = first["owner_id"].as_i64().unwrap();
    assert_eq!(second["owner_id"], person);
    let (first, second) = (first["id"].as_i64().unwrap(), second["id"].as_i64().unwrap());
    let application = apply(&app, &officer, second, BRI_KUR_MIKRO, 40_000_000).await;
    assert_eq!(application["eligibility"]["reasons"], json!(["no_consent"]));
    assert!(pull(&app, &bri, BRI).await.is_empty());
    let path = format!("/api/v1/applications/{}", application["id"]);
    app.get(&path).token(&bri).send().await.assert_problem(404);
    let versions = [business(&app, &officer, first).await["version"].clone()];

    let reply = app
        .post(&format!("/api/v1/persons/{person}/consents"))
        .token(&officer)
        .json(&consent(None))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let given = reply.json();
    let id = given["id"].as_i64().unwrap();
    assert_eq!(reply.header("location").unwrap(), format!("/api/v1/persons/{person}/consents/{id}"));
    assert_eq!(reply.header("etag").as_deref(), Some("\"1\""));
    for (field, value) in [
        ("person_id", json!(person)),
        ("purpose", json!("bank_sharing")),
        ("bank_partner_id", Value::Null),
        ("channel", json!("paper_form")),
        ("evidence", json!("FORM-2026/0153")),
        ("text_version", json!("persetujuan-bank-v2")),
        ("given_at", json!("2026-03-04T05:06:07Z")),
        ("recorded_by", me.clone()),
        ("active", json!(true)),
        ("withdrawn_at", Value::Null),
    ] {
        assert_eq!(given[field], value, "{field}: {given}");
    }
    // Both businesses show it, with a new version; BRI sees the applicant.
    for b in [first, second] {
        assert_eq!(business(&app, &officer, b).await["consented_to_bank_sharing_at"], "2026-03-04T05:06:07Z");
    }
    assert_ne!(business(&app, &officer, first).await["version"], versions[0]);
    let listed = pull(&app, &bri, BRI).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["business_id"], second);
    assert_eq!(app.get(&path).token(&bri).send().await.status, 200);
    assert_eq!(app.get(&path).token(&officer).send().await.json()["eligibility"]["reasons"], json!([]));

    // A second consent to every bank while this one holds: 409 naming it, nothing written.
    let again = app
        .post(&format!("/api/v1/persons/{person}/consents"))
        .token(&officer)
        .json(&consent(None))
        .send()
        .await;
    let problem = again.assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().contains(&format!("consent {id}")), "{problem}");
    assert_eq!(app.count("consents"), 1);

    // Withdrawn: the flag goes, the applicant leaves BRI's pull, BRI's reads are 404.
    let withdrawal = format!("/api/v1/persons/{person}/consents/{id}/withdrawal");
    let reply = app
        .post(&withdrawal)
        .token(&officer)
        .json(&json!({"channel": "letter", "evidence": "SURAT-2026/0031"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));
    let withdrawn = reply.json();
    assert_eq!(withdrawn["active"], false);
    assert_eq!(withdrawn["withdrawal_channel"], "letter");
    assert_eq!(withdrawn["withdrawal_evidence"], "SURAT-2026/0031");
    assert_eq!(withdrawn["withdrawal_recorded_by"], me);
    assert!(withdrawn["withdrawn_at"].is_string());
    for b in [first, second] {
        assert!(business(&app, &officer, b).await["consented_to_bank_sharing_at"].is_null());
    }
    let left = app
        .get(&format!(
            "/api/v1/bank-partners/{BRI}/eligible-applicants?updated_since=2000-01-01T00:00:00Z&limit=500"
        ))
        .token(&bri)
        .send()
        .await
        .json();
    assert_eq!(left["data"][0]["left"], true, "{left}");
    assert_eq!(left["data"][0]["left_reason"], "consent_withdrawn");
    app.get(&path).token(&bri).send().await.assert_problem(404);
    // Withdrawn twice: 409; the record stays, as evidence.
    let twice = app.post(&withdrawal).token(&officer).json(&json!({"channel": "letter"})).send().await;
    twice.assert_problem(409);
    let all = app.get(&format!("/api/v1/persons/{person}/consents")).token(&officer).send().await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    assert_eq!(all["data"][0]["withdrawn_at"], withdrawn["withdrawn_at"]);
    // Each step is in the audit log; the statistics' summary is exact.
    assert_eq!(app.count("audit_log WHERE entity = 'consent' AND action = 'create'"), 1);
    assert_eq!(app.count("audit_log WHERE entity = 'consent' AND action = 'update'"), 1);
    assert_eq!(app.db(summary::verify).unwrap(), []);
}

#[actix_rt::test]
async fn a_consent_to_a_named_bank_opens_the_applicant_to_that_bank_only() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let (bri, bni) = (bank_token(&app, BRI).await, bank_token(&app, BNI).await);
    let id = app.create_business(&officer, &business_json(1)).await["id"].as_i64().unwrap();
    let at_bri = apply(&app, &officer, id, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    let at_bni = apply(&app, &officer, id, BNI_KUR_MIKRO, 30_000_000).await["id"].as_i64().unwrap();
    let person = owner_of(&app, &officer, id).await;
    let reply = app
        .post(&format!("/api/v1/persons/{person}/consents"))
        .token(&officer)
        .json(&consent(Some(BRI)))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["bank_partner_id"], BRI);

    // Not every bank: the business shows no consent; BRI sees its applicant, BNI does not.
    assert!(business(&app, &officer, id).await["consented_to_bank_sharing_at"].is_null());
    assert_eq!(pull(&app, &bri, BRI).await.len(), 1);
    assert!(pull(&app, &bni, BNI).await.is_empty());
    assert_eq!(app.get(&format!("/api/v1/applications/{at_bri}")).token(&bri).send().await.status, 200);
    app.get(&format!("/api/v1/applications/{at_bni}")).token(&bni).send().await.assert_problem(404);
    let verdict = |id: i64| {
        let app = &app;
        let officer = &officer;
        async move {
            app.get(&format!("/api/v1/applications/{id}")).token(officer).send().await.json()["eligibility"]
                ["reasons"]
                .clone()
        }
    };
    assert_eq!(verdict(at_bri).await, json!([]));
    assert_eq!(verdict(at_bni).await, json!(["no_consent"]));
    // A bank's statistics count the applications it may see.
    let financed = |token: String| {
        let app = &app;
        async move {
            let stats = app.get("/api/v1/stats/financing?group_by=status").token(&token).send().await.json();
            stats["rows"].as_array().unwrap().iter().map(|r| r["applications"].as_i64().unwrap()).sum::<i64>()
        }
    };
    assert_eq!((financed(bri.clone()).await, financed(bni.clone()).await), (1, 0));
    // A consent to BNI too is another recipient: recorded beside it.
    let reply = app
        .post(&format!("/api/v1/persons/{person}/consents"))
        .token(&officer)
        .json(&consent(Some(BNI)))
        .send()
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(pull(&app, &bni, BNI).await.len(), 1);
    assert_eq!((financed(bri.clone()).await, financed(bni.clone()).await), (1, 1));
    assert_eq!(app.db(summary::verify).unwrap(), []);
}

#[actix_rt::test]
async fn bad_consents_and_withdrawals_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let id = app.create_business(&officer, &business_json(1)).await["id"].as_i64().unwrap();
    let person = owner_of(&app, &officer, id).await;
    let path = format!("/api/v1/persons/{person}/consents");
    let future = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let mut cases: Vec<(Value, &str, &str)> = Vec::new();
    let with = |field: &str, value: Value| {
        let mut body = consent(None);
        if value == json!("<absent>") {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body
    };
    cases.push((with("evidence", json!("<absent>")), "evidence", "required"));
    cases.push((with("evidence", json!("   ")), "evidence", "required"));
    cases.push((with("evidence", json!("x".repeat(201))), "evidence", "too_long"));
    cases.push((with("text_version", json!("<absent>")), "text_version", "required"));
    cases.push((with("given_at", json!("<absent>")), "given_at", "required"));
    cases.push((with("given_at", json!(future)), "given_at", "out_of_range"));
    cases.push((with("given_at", json!("yesterday")), "given_at", "invalid_type"));
    cases.push((with("channel", json!("migrated")), "channel", "invalid_value"));
    cases.push((with("channel", json!("pigeon")), "channel", "invalid_type"));
    cases.push((with("bank_partner_id", json!(999)), "bank_partner_id", "not_found"));
    cases.push((with("purpose", json!("marketing")), "purpose", "invalid_value"));
    cases.push((with("owner", json!("x")), "owner", "unknown_field"));
    for (body, field, code) in cases {
        let problem = app.post(&path).token(&officer).json(&body).send().await.assert_problem(422);
        let errors = problem["errors"].as_array().unwrap();
        assert!(errors.iter().any(|e| e["field"] == field && e["code"] == code), "{field} {code}: {problem}");
    }
    app.post(&path).token(&officer).json(&json!([1])).send().await.assert_problem(422);
    app.post("/api/v1/persons/999999/consents")
        .token(&officer)
        .json(&consent(None))
        .send()
        .await
        .assert_problem(404);
    assert_eq!(app.count("consents"), 0);
    assert!(business(&app, &officer, id).await["consented_to_bank_sharing_at"].is_null());

    let given = app.post(&path).token(&officer).json(&consent(None)).send().await.json();
    let withdrawal = format!("{path}/{}/withdrawal", given["id"]);
    for (body, field, code) in [
        (json!({}), "channel", "required"),
        (
            json!({"channel": "letter", "withdrawn_at": "2026-01-01T00:00:00Z"}),
            "withdrawn_at",
            "out_of_range",
        ),
        (json!({"channel": "letter", "withdrawn_at": future}), "withdrawn_at", "out_of_range"),
        (json!({"channel": "letter", "evidence": "x".repeat(201)}), "evidence", "too_long"),
    ] {
        let problem = app.post(&withdrawal).token(&officer).json(&body).send().await.assert_problem(422);
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert_eq!(problem["errors"][0]["code"], code, "{problem}");
    }
    // Another person's consent under this path is not found.
    let other = app.create_business(&officer, &business_json(2)).await["owner_id"].as_i64().unwrap();
    let foreign = format!("/api/v1/persons/{other}/consents/{}/withdrawal", given["id"]);
    app.post(&foreign).token(&officer).json(&json!({"channel": "letter"})).send().await.assert_problem(404);
    let still = app.get(&format!("{path}/{}", given["id"])).token(&officer).send().await.json();
    assert_eq!(still["active"], true);
    assert_eq!(still["version"], 1);
}

#[actix_rt::test]
async fn the_business_flag_is_derived_and_a_write_of_it_is_refused() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut body = business_json(1);
    body["consented_to_bank_sharing_at"] = json!("2026-01-01T00:00:00Z");
    let problem = app.post("/api/v1/businesses").token(&officer).json(&body).send().await.assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "consented_to_bank_sharing_at");
    assert_eq!(problem["errors"][0]["code"], "read_only");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("/consents"));
    let import = app.post("/api/v1/businesses/import").token(&officer).json(&json!([body])).send().await;
    import.assert_problem(422);
    assert_eq!(app.count("businesses"), 0);

    // `null` (nothing asserted) is accepted; so is sending back the value read.
    body["consented_to_bank_sharing_at"] = Value::Null;
    let id = app.create_business(&officer, &body).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/businesses/{id}");
    let reply = app
        .patch(&path)
        .token(&officer)
        .json(&json!({"consented_to_bank_sharing_at": null, "address": "Jl. A"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let problem = app
        .patch(&path)
        .token(&officer)
        .json(&json!({"consented_to_bank_sharing_at": "2026-01-01T00:00:00Z", "address": "Jl. B"}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "read_only");
    assert_eq!(business(&app, &officer, id).await["address"], "Jl. A", "nothing written");
    crate::helpers::consent_for(&app, &officer, id, None).await;
    let shown = business(&app, &officer, id).await["consented_to_bank_sharing_at"].clone();
    let reply = app
        .patch(&path)
        .token(&officer)
        .json(&json!({"consented_to_bank_sharing_at": shown, "address": "Jl. C"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    app.patch(&path)
        .token(&officer)
        .json(&json!({"consented_to_bank_sharing_at": null}))
        .send()
        .await
        .assert_problem(422);

    // A new business of a consenting person shows their consent at once.
    let mut again = business_json(3);
    again["owner_nik"] = body["owner_nik"].clone();
    again["owner_name"] = body["owner_name"].clone();
    let created = app.create_business(&officer, &again).await;
    assert_eq!(created["consented_to_bank_sharing_at"], shown);
    let read = app.get(&format!("/api/v1/businesses/{}", created["id"])).token(&officer).send().await;
    assert_eq!(read.json(), created, "the create answers what a read gives");
}

#[actix_rt::test]
async fn a_business_moving_to_another_owner_takes_the_new_owners_consent() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let consenting = crate::helpers::consenting_business(&app, &officer, 1).await;
    let id = app.create_business(&officer, &business_json(2)).await["id"].as_i64().unwrap();
    apply(&app, &officer, id, BRI_KUR_MIKRO, 40_000_000).await;
    assert!(pull(&app, &bri, BRI).await.is_empty());
    // The business's owner corrected to the consenting person.
    let patch =
        json!({"owner_nik": business_json(1)["owner_nik"], "owner_name": business_json(1)["owner_name"]});
    let reply = app.patch(&format!("/api/v1/businesses/{id}")).token(&officer).json(&patch).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(
        reply.json()["consented_to_bank_sharing_at"],
        business(&app, &officer, consenting).await["consented_to_bank_sharing_at"]
    );
    assert_eq!(pull(&app, &bri, BRI).await.len(), 1);
    // And back to a person who does not consent: out again.
    let patch =
        json!({"owner_nik": business_json(2)["owner_nik"], "owner_name": business_json(2)["owner_name"]});
    let reply = app.patch(&format!("/api/v1/businesses/{id}")).token(&officer).json(&patch).send().await;
    assert!(reply.json()["consented_to_bank_sharing_at"].is_null());
    assert!(pull(&app, &bri, BRI).await.is_empty());
    assert_eq!(app.db(summary::verify).unwrap(), []);
}

#[actix_rt::test]
async fn who_records_and_reads_consents() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let id = app.create_business(&officer, &business_json(1)).await["id"].as_i64().unwrap();
    let person = owner_of(&app, &officer, id).await;
    let path = format!("/api/v1/persons/{person}/consents");
    let admin = app.token_for(Role::Admin).await;
    let reply = app.post(&path).token(&admin).json(&consent(Some(BNI))).send().await;
    assert_eq!(reply.status, 201);
    let one = format!("{path}/{}", reply.json()["id"]);
    // Viewers read (the office's record), but do not record.
    let viewer = app.token_for(Role::Viewer).await;
    assert_eq!(app.get(&path).token(&viewer).send().await.json()["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&one).token(&viewer).send().await.status, 200);
    app.post(&path).token(&viewer).json(&consent(None)).send().await.assert_problem(403);
    app.post(&format!("{one}/withdrawal"))
        .token(&viewer)
        .json(&json!({"channel": "letter"}))
        .send()
        .await
        .assert_problem(403);
    // Banks and retailers see no person, and so no consent.
    for token in [app.token_for(Role::Bank).await, app.token_for(Role::Retail).await] {
        app.get(&path).token(&token).send().await.assert_problem(404);
        app.get(&one).token(&token).send().await.assert_problem(404);
        app.post(&path).token(&token).json(&consent(None)).send().await.assert_problem(404);
        app.post(&format!("{one}/withdrawal"))
            .token(&token)
            .json(&json!({"channel": "letter"}))
            .send()
            .await
            .assert_problem(404);
    }
    assert_eq!(app.count("consents"), 1);
    assert_eq!(app.count("consents WHERE withdrawn_at IS NULL"), 1);
}

#[actix_rt::test]
async fn a_repeated_idempotency_key_records_one_consent() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let id = app.create_business(&officer, &business_json(1)).await["id"].as_i64().unwrap();
    let person = owner_of(&app, &officer, id).await;
    let path = format!("/api/v1/persons/{person}/consents");
    let send =
        || app.post(&path).token(&officer).header("idempotency-key", "consent-1").json(&consent(None)).send();
    let (first, second) = (send().await, send().await);
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (201, 201));
    assert_eq!(first.json(), second.json());
    assert_eq!(app.count("consents"), 1);
    // The same key for another person is another request: refused, not replayed.
    let other = app.create_business(&officer, &business_json(2)).await["owner_id"].as_i64().unwrap();
    let reply = app
        .post(&format!("/api/v1/persons/{other}/consents"))
        .token(&officer)
        .header("idempotency-key", "consent-1")
        .json(&consent(None))
        .send()
        .await;
    assert_eq!(reply.status, 422, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(app.count("consents"), 1);
}

#[actix_rt::test]
async fn applications_filed_while_consents_change_end_as_the_consents_say() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let id = app.create_business(&officer, &business_json(1)).await["id"].as_i64().unwrap();
    let person = owner_of(&app, &officer, id).await;
    let path = format!("/api/v1/persons/{person}/consents");
    let body = json!({"business_id": id, "programme_id": BRI_KUR_MIKRO, "amount_requested_idr": 20_000_000});
    for round in 0..6 {
        // Give (or withdraw) the consent to every bank while six applications are filed.
        let active = app.get(&path).token(&officer).send().await.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["active"] == true)
            .map(|c| c["id"].clone());
        let change = match &active {
            Some(consent) => app
                .post(&format!("{path}/{consent}/withdrawal"))
                .token(&officer)
                .json(&json!({"channel": "letter"})),
            None => app.post(&path).token(&officer).json(&consent(None)),
        };
        let mut calls = vec![change];
        for _ in 0..6 {
            calls.push(app.post("/api/v1/applications").token(&officer).json(&body));
        }
        let replies = join_all(calls.into_iter().map(|c| c.send())).await;
        for reply in &replies {
            assert!(
                [200, 201].contains(&reply.status.as_u16()),
                "round {round}: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
        // Every application carries the consent as it now stands; the statistics agree.
        let consenting = active.is_none();
        let expected = app.count("applications");
        let matching = app.count(&format!(
            "applications WHERE consented = {}",
            if consenting { "(1 = 1)" } else { "(1 = 0)" }
        ));
        assert_eq!(matching, expected, "round {round}: every application {consenting}");
        assert_eq!(app.db(summary::verify).unwrap(), [], "round {round}");
    }
}
