//! Data subjects' rights (issue 30): a person's data export holds everything the office keeps
//! about them and its trail — each write, and each answer that carried their data, with who
//! received it and when.

use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{apply, bank_token, business_json, consenting_business, owner_of, spawn_app};

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
