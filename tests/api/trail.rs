//! The disclosure log (issue 30): every answer that carries a person's data unmasked is in
//! their trail, with who got it, through which route and request, and which classes of data;
//! masked answers are not; an answer whose entry cannot be written is not sent.

use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, apply, bank_token, business_json, consenting_business, owner_of, spawn_app};

const BRI: i64 = 1;
const BRI_KUR_MIKRO: i64 = 2;

/// Person `person`'s trail as `officer` reads it, newest first.
async fn trail(app: &TestApp, officer: &str, person: i64) -> Vec<Value> {
    let reply =
        app.get(&format!("/api/v1/persons/{person}/disclosures?limit=500")).token(officer).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["data"].as_array().unwrap().clone()
}

#[actix_rt::test]
async fn each_unmasked_answer_is_in_the_persons_trail_with_who_and_what() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let viewer = app.token_for(Role::Viewer).await;
    let bri = bank_token(&app, BRI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let person = owner_of(&app, &officer, business).await;
    let other = app.create_business(&officer, &business_json(2)).await;
    let before = trail(&app, &officer, person).await.len();

    // An officer reads the record: the entry names them, the route, the request and the classes.
    let read = app.get(&format!("/api/v1/businesses/{business}")).token(&officer).send().await;
    assert_eq!(read.status, 200);
    let officer_id = app.get("/api/v1/auth/me").token(&officer).send().await.json()["id"].clone();
    let entries = trail(&app, &officer, person).await;
    assert_eq!(entries.len(), before + 1);
    let entry = &entries[0];
    assert_eq!(entry["user_id"], officer_id);
    assert_eq!(entry["route"], "GET /api/v1/businesses/{id}");
    assert_eq!(entry["request_id"], json!(read.header("x-request-id").unwrap()));
    assert_eq!(entry["classes"], json!(["identity", "contact", "address"]));
    assert_eq!(entry["bank_partner_id"], Value::Null);

    // A viewer's masked answers (a record, a list page) disclose nothing.
    let masked = app.get(&format!("/api/v1/businesses/{business}")).token(&viewer).send().await;
    assert_eq!(masked.status, 200);
    app.get("/api/v1/businesses?limit=50").token(&viewer).send().await;
    assert_eq!(trail(&app, &officer, person).await.len(), before + 1);

    // An admin's list page and CSV export carry both owners: one entry each, in both trails.
    let page = app.get("/api/v1/businesses?limit=50").token(&admin).send().await;
    assert_eq!(page.status, 200);
    let csv = app.get("/api/v1/businesses").token(&admin).header("accept", "text/csv").send().await;
    assert_eq!(csv.status, 200);
    let entries = trail(&app, &officer, person).await;
    assert_eq!(entries.len(), before + 3);
    assert!(entries[..2].iter().all(|e| e["route"] == "GET /api/v1/businesses"), "{entries:?}");
    assert_eq!(entries[1]["request_id"], json!(page.header("x-request-id").unwrap()));
    let other_trail = trail(&app, &officer, other["owner_id"].as_i64().unwrap()).await;
    assert_eq!(other_trail.len(), 3, "its create's answer, the page, the export: {other_trail:?}");
    assert_eq!(other_trail[2]["route"], "POST /api/v1/businesses");

    // The bank pulls a page with the applicant: its user and bank, the financing with it.
    let application = apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await["id"].clone();
    let pulled =
        app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants")).token(&bri).send().await;
    assert_eq!(pulled.status, 200);
    assert_eq!(pulled.json()["data"][0]["business_id"], json!(business));
    let entries = trail(&app, &officer, person).await;
    let bank = entries.iter().find(|e| e["bank_partner_id"] == json!(BRI)).expect("the pull is in the trail");
    assert_eq!(bank["route"], "GET /api/v1/bank-partners/{id}/eligible-applicants");
    assert_eq!(bank["classes"], json!(["identity", "address", "financing"]));
    assert_eq!(bank["request_id"], json!(pulled.header("x-request-id").unwrap()));

    // The bank reads the application, a viewer lists applications: financing, theirs.
    let financing = app.get(&format!("/api/v1/applications/{application}")).token(&bri).send().await;
    assert_eq!(financing.status, 200);
    app.get("/api/v1/applications").token(&viewer).send().await;
    let entries = trail(&app, &officer, person).await;
    assert_eq!(entries[1]["route"], "GET /api/v1/applications/{id}");
    assert_eq!(entries[1]["classes"], json!(["financing"]));
    assert_eq!(entries[1]["bank_partner_id"], json!(BRI));
    assert_eq!(entries[0]["route"], "GET /api/v1/applications");
    let viewer_id = app.get("/api/v1/auth/me").token(&viewer).send().await.json()["id"].clone();
    assert_eq!(entries[0]["user_id"], viewer_id);

    // The person read by NIK and by id, by office staff: entries of the person's fields.
    let nik = read.json()["owner_nik"].as_str().unwrap().to_owned();
    let found = app.get(&format!("/api/v1/persons?nik={nik}")).token(&officer).send().await;
    assert_eq!(found.json()["data"][0]["id"], json!(person));
    app.get(&format!("/api/v1/persons/{person}")).token(&viewer).send().await;
    let entries = trail(&app, &officer, person).await;
    assert_eq!(entries[0]["route"], "GET /api/v1/persons");
    assert_eq!(entries[0]["classes"], json!(["identity", "contact"]));
    // In the database: as many entries name the person as the trail lists.
    assert_eq!(entries_naming(&app, person), entries.len());
}

#[actix_rt::test]
async fn writes_answers_replays_and_audit_reads_are_in_the_trail_too() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let create_once = || {
        app.post("/api/v1/businesses")
            .token(&officer)
            .header("Idempotency-Key", "trail-1")
            .json(&business_json(1))
    };
    let created = create_once().send().await;
    assert_eq!(created.status, 201);
    let (business, person) = (created.json()["id"].clone(), created.json()["owner_id"].as_i64().unwrap());
    // A second business of the same NIK, e-mail left out: the answer shows the person's stored
    // e-mail, which the caller did not send.
    let mut same = business_json(2);
    same["owner_nik"] = business_json(1)["owner_nik"].clone();
    same["owner_name"] = business_json(1)["owner_name"].clone();
    same.as_object_mut().unwrap().remove("email");
    let second = app.post("/api/v1/businesses").token(&officer).json(&same).send().await;
    assert_eq!(second.status, 201);
    assert_eq!(second.json()["email"], "owner1@example.com");
    // The first create replayed: the stored answer is a disclosure of its own.
    let replayed = create_once().send().await;
    assert_eq!(replayed.header("idempotent-replayed").as_deref(), Some("true"));
    let changed = app
        .patch(&format!("/api/v1/businesses/{business}"))
        .token(&officer)
        .raw("application/merge-patch+json", json!({"employees": 5}).to_string())
        .send()
        .await;
    assert_eq!(changed.status, 200);
    // The audit log keeps the person's name: an admin's page of it names them.
    let audit = app.get("/api/v1/audit-log?entity=business").token(&admin).send().await;
    assert_eq!(audit.status, 200);
    let entries = trail(&app, &officer, person).await;
    let routes: Vec<&str> = entries.iter().map(|e| e["route"].as_str().unwrap()).collect();
    assert_eq!(
        routes,
        [
            "GET /api/v1/audit-log",
            "PATCH /api/v1/businesses/{id}",
            "POST /api/v1/businesses",
            "POST /api/v1/businesses",
            "POST /api/v1/businesses"
        ],
        "{entries:?}"
    );
    assert_eq!(entries[0]["classes"], json!(["identity", "address"]));
    assert_eq!(entries[2]["request_id"], json!(replayed.header("x-request-id").unwrap()));
}

#[actix_rt::test]
async fn the_trail_is_for_office_staff_and_pages_newest_first() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let viewer = app.token_for(Role::Viewer).await;
    let bri = bank_token(&app, BRI).await;
    let created = app.create_business(&officer, &business_json(1)).await;
    let (business, person) = (created["id"].as_i64().unwrap(), created["owner_id"].as_i64().unwrap());
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/api/v1/businesses/{business}")).token(&officer).send().await.status,
            200
        );
    }
    let path = format!("/api/v1/persons/{person}/disclosures");
    let first = app.get(&format!("{path}?limit=2")).token(&officer).send().await.json();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("{path}?limit=2&cursor={cursor}")).token(&officer).send().await.json();
    let ids: Vec<i64> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["data"].as_array().unwrap())
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.len() >= 3 && ids.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats: {ids:?}");

    app.get(&path).token(&viewer).send().await.assert_problem(403);
    app.get(&path).token(&bri).send().await.assert_problem(404);
    app.get("/api/v1/persons/999999/disclosures").token(&officer).send().await.assert_problem(404);
    app.get(&format!("{path}?cursor=abc")).token(&officer).send().await.assert_problem(400);
    app.get(&format!("{path}?limit=0")).token(&officer).send().await.assert_problem(400);
}

#[actix_rt::test]
async fn an_answer_whose_entry_cannot_be_written_is_not_sent() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let created = app.create_business(&officer, &business_json(1)).await;
    let business = created["id"].as_i64().unwrap();
    let entries = app.count("disclosures");
    // The log refuses every new entry (as a full disk or a broken connection would).
    let refuse = match app.db(|c| umkm_api::db::backend(c)) {
        umkm_api::db::Backend::Postgres => {
            "ALTER TABLE disclosures ADD CONSTRAINT full_disk CHECK (classes < 0) NOT VALID"
        }
        umkm_api::db::Backend::Sqlite => {
            "CREATE TRIGGER full_disk BEFORE INSERT ON disclosures BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        }
    };
    app.db(|c| diesel::RunQueryDsl::execute(diesel::sql_query(refuse), c)).unwrap();

    let read = app.get(&format!("/api/v1/businesses/{business}")).token(&officer).send().await;
    read.assert_problem(503);
    let body = String::from_utf8_lossy(&read.body).to_string();
    assert!(!body.contains(created["owner_nik"].as_str().unwrap()), "{body}");
    let page = app.get("/api/v1/businesses").token(&officer).send().await;
    page.assert_problem(503);
    assert!(!String::from_utf8_lossy(&page.body).contains(created["owner_nik"].as_str().unwrap()));
    assert_eq!(app.count("disclosures"), entries, "nothing half-written");
    // Masked answers need no entry and are still sent.
    let viewer = app.token_for(Role::Viewer).await;
    assert_eq!(app.get(&format!("/api/v1/businesses/{business}")).token(&viewer).send().await.status, 200);
}

#[actix_rt::test]
async fn entries_past_the_retention_are_removed_with_their_persons_rows() {
    use diesel::prelude::*;
    use umkm_api::db::schema::disclosures;
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let created = app.create_business(&officer, &business_json(1)).await;
    let (business, person) = (created["id"].as_i64().unwrap(), created["owner_id"].as_i64().unwrap());
    for _ in 0..2 {
        assert_eq!(
            app.get(&format!("/api/v1/businesses/{business}")).token(&officer).send().await.status,
            200
        );
    }
    // The first entry (the create's answer) made six years ago.
    let first = trail(&app, &officer, person).await.last().unwrap()["id"].as_i64().unwrap();
    let six_years_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(6 * 365);
    app.db(|c| {
        diesel::update(disclosures::table.find(first))
            .set(disclosures::occurred_at.eq(six_years_ago))
            .execute(c)
    })
    .unwrap();

    let five_years_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(1826);
    let removed = app.db(|c| umkm_api::disclosures::prune(c, five_years_ago)).unwrap();
    assert_eq!(removed, 1);
    let left = trail(&app, &officer, person).await;
    assert_eq!(left.len(), 2, "the two reads: {left:?}");
    assert!(left.iter().all(|e| e["id"] != json!(first)));
    assert_eq!(entries_naming(&app, person), 2, "the removed entry is gone from the database");
    if app.db(|c| umkm_api::db::backend(c)) == umkm_api::db::Backend::Sqlite {
        use umkm_api::db::schema::disclosed_persons;
        let links = app.db(|c| {
            disclosed_persons::table
                .filter(disclosed_persons::disclosure_id.eq(first))
                .count()
                .get_result::<i64>(c)
        });
        assert_eq!(links.unwrap(), 0, "no person's row of the removed entry is left");
    }
}

#[actix_rt::test]
async fn concurrent_answers_each_have_their_own_entry() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let created = app.create_business(&officer, &business_json(1)).await;
    let (business, person) = (created["id"].as_i64().unwrap(), created["owner_id"].as_i64().unwrap());
    // 16 reads at once: their entries are written in batches, each answer after its own.
    let path = format!("/api/v1/businesses/{business}");
    let reads = (0..16).map(|_| app.get(&path).token(&officer).send());
    let replies = futures_util::future::join_all(reads).await;
    let mut answered: Vec<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200);
            r.header("x-request-id").unwrap()
        })
        .collect();
    let mut recorded: Vec<String> = trail(&app, &officer, person)
        .await
        .iter()
        .filter(|e| e["route"] == "GET /api/v1/businesses/{id}")
        .map(|e| e["request_id"].as_str().unwrap().to_owned())
        .collect();
    answered.sort();
    recorded.sort();
    assert_eq!(recorded, answered, "one entry per answer, each with its own request");
}

/// How many entries of the log name `person`, read off the table itself.
fn entries_naming(app: &TestApp, person: i64) -> usize {
    use diesel::prelude::*;
    use umkm_api::db::schema::disclosures;
    let persons: Vec<String> = app.db(|c| disclosures::table.select(disclosures::persons).load(c)).unwrap();
    persons.iter().filter(|p| p.split(',').any(|p| p == person.to_string())).count()
}

/// Many more readers than connections (the test pool has 4): every one is answered, in its
/// turn, and every answer has its entry — a page's written while its connection is already
/// back in the pool, a record's after its read.
#[actix_rt::test]
async fn readers_past_the_pool_are_all_answered_each_with_its_entry() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let business = app.create_business(&officer, &business_json(1)).await["id"].as_i64().unwrap();
    let entries = app.count("disclosures");
    let record = format!("/api/v1/businesses/{business}");
    let reads = (0..48).map(|n| {
        let path = if n % 2 == 0 { record.as_str() } else { "/api/v1/businesses?limit=5" };
        app.get(path).token(&officer).send()
    });
    let statuses: Vec<u16> =
        futures_util::future::join_all(reads).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, vec![200; 48]);
    assert_eq!(app.count("disclosures"), entries + 48, "one entry an answer");
}
