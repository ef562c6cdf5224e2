//! Data subjects' rights (issue 30): a person's data export holds everything the office keeps
//! about them and its trail — each write, and each answer that carried their data, with who
//! received it and when.

use actix_web::http::Method;
use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{
    apply, bank_token, business_json, consenting_business, curated_product, owner_of, spawn_app,
};

const BRI: i64 = 1;
const BRI_KUR_MIKRO: i64 = 2;

#[actix_rt::test]
async fn a_data_export_holds_the_persons_data_writes_and_disclosures() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let bri = bank_token(&app, BRI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let person = owner_of(&app, &officer, business).await;
    let someone_else = app.create_business(&officer, &business_json(2)).await;
    let application = apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await["id"].clone();
    let product = app
        .post("/api/v1/products")
        .token(&officer)
        .json(&json!({"business_id": business, "name": "Keripik Tempe", "category": "food"}))
        .send()
        .await;
    assert_eq!(product.status, 201, "{}", String::from_utf8_lossy(&product.body));

    // An officer reads the record, the bank pulls a page with the applicant.
    let read = app.get(&format!("/api/v1/businesses/{business}")).token(&officer).send().await;
    assert_eq!(read.status, 200);
    let pulled =
        app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants")).token(&bri).send().await;
    assert_eq!(pulled.status, 200);
    assert_eq!(pulled.json()["data"][0]["business_id"], json!(business));
    // A retailer whose curation holds the product exports its businesses: the owner masked,
    // recorded as such.
    crate::retail::submit(&app, &officer, product.json()["id"].as_i64().unwrap(), 1).await;
    let retail = app.token_for(Role::Retail).await;
    let exported = app.get("/api/v1/businesses").token(&retail).header("Accept", "text/csv").send().await;
    assert_eq!(exported.status, 200);
    let csv = String::from_utf8_lossy(&exported.body).into_owned();
    assert!(csv.contains("Usaha 00001") && csv.contains("3524********0002"), "{csv}");
    assert!(!csv.contains(business_json(1)["owner_nik"].as_str().unwrap()), "{csv}");

    let reply = app.get(&format!("/api/v1/persons/{person}/data-export")).token(&admin).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let export = reply.json();
    assert_eq!(export["person"]["id"], json!(person));
    assert_eq!(export["person"]["nik"], read.json()["owner_nik"], "unmasked");
    let ids = |key: &str| -> Vec<Value> {
        export[key].as_array().unwrap().iter().map(|r| r["id"].clone()).collect()
    };
    assert_eq!(ids("businesses"), vec![json!(business)], "only theirs");
    assert_eq!(ids("applications"), vec![application.clone()]);
    assert_eq!(ids("products"), vec![product.json()["id"].clone()]);
    assert_eq!(export["consents"].as_array().unwrap().len(), 1);
    assert!(!export.to_string().contains(someone_else["owner_nik"].as_str().unwrap()), "nobody else's data");

    // The writes: the person's and the business's creation, the consent, the application,
    // the product, each with who wrote it.
    let officer_id = app.get("/api/v1/auth/me").token(&officer).send().await.json()["id"].clone();
    let writes = export["writes"].as_array().unwrap();
    for (entity, id) in [
        ("person", json!(person)),
        ("business", json!(business)),
        ("application", application),
        ("product", product.json()["id"].clone()),
    ] {
        let write = writes
            .iter()
            .find(|w| w["entity"] == entity && w["entity_id"] == id && w["action"] == "create")
            .unwrap_or_else(|| panic!("the {entity}'s creation is among the writes: {writes:?}"));
        assert_eq!(write["user_id"], officer_id);
    }
    assert!(writes.iter().any(|w| w["entity"] == "consent"), "{writes:?}");

    // The disclosures: the officer's read and the bank's pull, with who, when and what.
    let disclosures = export["disclosures"].as_array().unwrap();
    let officers_read = disclosures
        .iter()
        .find(|d| d["request_id"] == json!(read.header("x-request-id").unwrap()))
        .expect("the officer's read is in the export");
    assert_eq!(officers_read["user_id"], officer_id);
    assert_eq!(officers_read["route"], "GET /api/v1/businesses/{id}");
    assert!(officers_read["occurred_at"].as_str().is_some());
    let banks_pull = disclosures
        .iter()
        .find(|d| d["request_id"] == json!(pulled.header("x-request-id").unwrap()))
        .expect("the bank's pull is in the export");
    assert_eq!(banks_pull["bank_partner_id"], json!(BRI));
    assert_eq!(banks_pull["masked"], false);
    let retailers_export = disclosures
        .iter()
        .find(|d| d["request_id"] == json!(exported.header("x-request-id").unwrap()))
        .expect("the retailer's export is in the export");
    assert_eq!(retailers_export["retail_partner_id"], 1);
    assert_eq!(retailers_export["route"], "GET /api/v1/businesses");
    assert_eq!(retailers_export["masked"], true);
    assert!(retailers_export["occurred_at"].is_string() && retailers_export["user_id"].is_i64());
    assert_eq!(export["disclosures_complete"], json!(true));

    // The export is itself a disclosure of everything, in the trail after it.
    let trail = app.get(&format!("/api/v1/persons/{person}/disclosures")).token(&officer).send().await.json();
    assert_eq!(trail["data"][0]["route"], "GET /api/v1/persons/{id}/data-export");
    assert_eq!(trail["data"][0]["request_id"], json!(reply.header("x-request-id").unwrap()));
    assert_eq!(trail["data"][0]["classes"], json!(["identity", "contact", "address", "financing"]));
}

#[actix_rt::test]
async fn a_data_export_is_for_office_staff_and_known_persons() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let created = app.create_business(&officer, &business_json(1)).await;
    let path = format!("/api/v1/persons/{}/data-export", created["owner_id"]);
    let entries = app.count("disclosures");

    assert_eq!(app.get(&path).token(&officer).send().await.status, 200);
    app.get(&path).token(&app.token_for(Role::Viewer).await).send().await.assert_problem(403);
    app.get(&path).token(&app.token_for(Role::Retail).await).send().await.assert_problem(404);
    app.get(&path).token(&bank_token(&app, BRI).await).send().await.assert_problem(404);
    app.get(&path).send().await.assert_problem(401);
    app.get("/api/v1/persons/999999/data-export").token(&officer).send().await.assert_problem(404);
    app.get("/api/v1/persons/abc/data-export").token(&officer).send().await.assert_problem(400);
    assert_eq!(app.count("disclosures"), entries + 1, "only the officer's export was recorded");
}

#[actix_rt::test]
async fn pdp_exposure_lists_whom_an_account_received_and_what() {
    use umkm_api::rights::{ExposureArgs, PdpCommand, pdp};
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let person = owner_of(&app, &officer, business).await;
    let other = app.create_business(&officer, &business_json(2)).await;
    apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await;
    for read in [business, other["id"].as_i64().unwrap()] {
        assert_eq!(app.get(&format!("/api/v1/businesses/{read}")).token(&officer).send().await.status, 200);
    }
    assert_eq!(
        app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants")).token(&bri).send().await.status,
        200
    );
    let officer_id = app.get("/api/v1/auth/me").token(&officer).send().await.json()["id"].as_i64().unwrap();
    let bank_email =
        app.get("/api/v1/auth/me").token(&bri).send().await.json()["email"].as_str().unwrap().to_owned();
    let run = |actor: String, since: &str, until: Option<&str>, json: bool| {
        let command = PdpCommand::Exposure(ExposureArgs {
            actor,
            since: since.into(),
            until: until.map(Into::into),
            json,
        });
        app.db(|c| pdp(c, command))
    };

    // The officer: both owners, with what the reads carried, as CSV.
    let csv = run(officer_id.to_string(), "2020-01-01", None, false).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "person_id,classes,disclosures,first_at,last_at");
    let mine = lines.iter().find(|l| l.starts_with(&format!("{person},"))).expect("the first owner");
    let fields: Vec<&str> = mine.split(',').collect();
    assert_eq!(fields[1], "identity;contact;address", "{mine}");
    assert!(fields[2].parse::<u64>().unwrap() >= 1, "{mine}");
    assert!(fields[3] <= fields[4] && fields[4].ends_with('Z'), "{mine}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("{},", other["owner_id"]))), "{csv}");

    // The bank's user, by e-mail, as JSON: the applicant, with the financing.
    let json: serde_json::Value =
        serde_json::from_str(&run(bank_email, "2020-01-01T00:00:00Z", None, true).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json[0]["person_id"], json!(person));
    assert_eq!(json[0]["classes"], json!(["identity", "address", "financing"]));

    // A period before any of it: nobody. Bad input: a clear error.
    assert_eq!(
        run(officer_id.to_string(), "2020-01-01", Some("2020-02-01"), false).unwrap().lines().count(),
        1
    );
    assert!(run("nobody@example.org".into(), "2020-01-01", None, false).unwrap_err().contains("no user"));
    assert!(run(officer_id.to_string(), "yesterday", None, false).unwrap_err().contains("--since"));
    assert!(
        run(officer_id.to_string(), "2030-01-01", Some("2020-01-01"), false).unwrap_err().contains("after")
    );
}

/// BRI's incremental pull since the beginning: every application it was ever shown.
async fn pulled_since_ever(app: &crate::helpers::TestApp, bri: &str) -> Value {
    app.get(&format!(
        "/api/v1/bank-partners/{BRI}/eligible-applicants?updated_since=2000-01-01T00:00:00Z&limit=500"
    ))
    .token(bri)
    .send()
    .await
    .json()
}

#[actix_rt::test]
async fn a_restricted_person_leaves_the_banks_pull_and_comes_back_when_lifted() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let bri = bank_token(&app, BRI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let person = owner_of(&app, &officer, business).await;
    let application = apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await["id"].clone();
    let subscription =
        json!({"bank_partner_id": BRI, "url": "http://127.0.0.1:9/hook", "event_types": ["applicant.left"]});
    assert_eq!(
        app.post("/api/v1/webhook-subscriptions").token(&admin).json(&subscription).send().await.status,
        201
    );
    let listed = pulled_since_ever(&app, &bri).await;
    assert_eq!(listed["data"][0]["application_id"], application, "{listed}");
    assert_eq!(listed["data"][0]["left"], false);
    // A retailer curates a product of theirs.
    curated_product(&app, &officer, business, 1).await;
    let retail = app.token_for(Role::Retail).await;
    let retail_path = format!("/api/v1/businesses/{business}");
    assert_eq!(app.get(&retail_path).token(&retail).send().await.status, 200);

    let path = format!("/api/v1/persons/{person}/restriction");
    let restricted = app.call(Method::PUT, &path).token(&officer).send().await;
    assert_eq!(restricted.status, 200, "{}", String::from_utf8_lossy(&restricted.body));
    assert!(restricted.json()["restricted_at"].is_string());
    // Gone from the pull, with the reason, and the bank is told.
    let left = pulled_since_ever(&app, &bri).await;
    assert_eq!(left["data"][0]["left"], true, "{left}");
    assert_eq!(left["data"][0]["left_reason"], "restricted");
    assert!(left["data"][0]["owner_nik"].is_null(), "nothing of the person: {left}");
    let current =
        app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants")).token(&bri).send().await.json();
    assert!(current["data"].as_array().unwrap().is_empty(), "{current}");
    // Nor can the bank read its application meanwhile.
    let application_path = format!("/api/v1/applications/{application}");
    app.get(&application_path).token(&bri).send().await.assert_problem(404);
    let listed_apps = app.get("/api/v1/applications").token(&bri).send().await.json();
    assert!(listed_apps["data"].as_array().unwrap().is_empty(), "{listed_apps}");
    // Nor does the retailer see their business.
    app.get(&retail_path).token(&retail).send().await.assert_problem(404);
    let retail_list = app.get("/api/v1/businesses").token(&retail).send().await.json();
    assert!(retail_list["data"].as_array().unwrap().is_empty(), "{retail_list}");
    // An office export holds the business with its owner masked, and discloses nobody; the
    // office's own page still shows the record in full.
    let nik = business_json(1)["owner_nik"].as_str().unwrap().to_owned();
    let entries = app.count("disclosures WHERE route LIKE '%/businesses'");
    for media in ["text/csv", "application/x-ndjson"] {
        let export = app.get("/api/v1/businesses").token(&officer).header("Accept", media).send().await;
        assert_eq!(export.status, 200);
        let body = String::from_utf8_lossy(&export.body).into_owned();
        assert!(body.contains("Usaha 00001") && body.contains("3524********0002"), "{body}");
        assert!(!body.contains(&nik), "{body}");
    }
    assert_eq!(app.count("disclosures WHERE route LIKE '%/businesses'"), entries);
    let page = app.get("/api/v1/businesses").token(&officer).send().await.json();
    assert_eq!(page["data"][0]["owner_nik"], nik.as_str());
    let events: Vec<String> = app.db(|c| {
        use diesel::prelude::*;
        use umkm_api::db::schema::webhook_deliveries as w;
        w::table.filter(w::event_type.eq("applicant.left")).select(w::payload).load(c).unwrap()
    });
    assert_eq!(events.len(), 1);
    assert!(events[0].contains("\"restricted\""), "{}", events[0]);
    // The office keeps the record, marked; a second restriction is 409; a new application
    // naming the person is refused and nothing is written.
    let marked = app.get(&format!("/api/v1/persons/{person}")).token(&officer).send().await.json();
    assert!(marked["restricted_at"].is_string());
    app.call(Method::PUT, &path).token(&officer).send().await.assert_problem(409);
    let applications = app.count("applications");
    let refused = app
        .post("/api/v1/applications")
        .token(&officer)
        .json(&json!({"business_id": business, "programme_id": BRI_KUR_MIKRO, "amount_requested_idr": 5_000_000}))
        .send()
        .await;
    let problem = refused.assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "restricted", "{problem}");
    assert_eq!(app.count("applications"), applications);

    // Lifted: listed again.
    let lifted = app.delete(&path).token(&officer).send().await;
    assert_eq!(lifted.status, 200);
    assert!(lifted.json()["restricted_at"].is_null());
    let back = pulled_since_ever(&app, &bri).await;
    assert_eq!(back["data"][0]["left"], false, "{back}");
    assert_eq!(app.get(&application_path).token(&bri).send().await.status, 200);
    assert!(back["data"][0]["owner_nik"].is_string());
    assert_eq!(app.get(&retail_path).token(&retail).send().await.status, 200);
    app.delete(&path).token(&officer).send().await.assert_problem(409);

    // Roles and unknown persons.
    app.call(Method::PUT, &path).token(&app.token_for(Role::Viewer).await).send().await.assert_problem(403);
    app.call(Method::PUT, &path).token(&bri).send().await.assert_problem(404);
    app.call(Method::PUT, &path).token(&app.token_for(Role::Retail).await).send().await.assert_problem(404);
    app.call(Method::PUT, "/api/v1/persons/999999/restriction")
        .token(&officer)
        .send()
        .await
        .assert_problem(404);
    let audit = app.count(&format!(
        "audit_log WHERE entity = 'person' AND entity_id = {person} AND changes LIKE '%restricted_at%'"
    ));
    assert_eq!(audit, 2, "the restriction and its lifting are audited");
}

#[actix_rt::test]
async fn applications_racing_a_restriction_never_leave_the_person_listed() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let person = owner_of(&app, &officer, business).await;
    // Eight applications and the restriction at once: each application is either refused or
    // written before the restriction, which then takes it out of the pull.
    let body =
        json!({"business_id": business, "programme_id": BRI_KUR_MIKRO, "amount_requested_idr": 5_000_000});
    let applying = (0..8).map(|_| app.post("/api/v1/applications").token(&officer).json(&body).send());
    let restricting =
        app.call(Method::PUT, &format!("/api/v1/persons/{person}/restriction")).token(&officer).send();
    let (applied, restricted) =
        futures_util::future::join(futures_util::future::join_all(applying), restricting).await;
    assert_eq!(restricted.status, 200);
    for reply in &applied {
        assert!(reply.status == 201 || reply.status == 422, "{}", String::from_utf8_lossy(&reply.body));
    }
    let written = applied.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        app.count(&format!("applications WHERE business_id = {business}")),
        i64::try_from(written).unwrap()
    );
    assert_eq!(app.count(&format!("bank_feed WHERE business_id = {business} AND listed")), 0);
    let current =
        app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants")).token(&bri).send().await.json();
    assert!(current["data"].as_array().unwrap().is_empty(), "{current}");
}
