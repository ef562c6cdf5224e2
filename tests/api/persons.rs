//! Persons (issue 29): one per NIK, what identifies them sealed at rest (the database file, its
//! write-ahead log, a backup, a dump), corrected once for all their businesses, seen by role;
//! the move of an older release's owners into persons; the data keys checked at start.

use std::io::Read;

use diesel::prelude::*;
use futures_util::future::join_all;
use serde_json::{Value, json};
use umkm_api::backup;
use umkm_api::crypto::keyring::Keyring;
use umkm_api::db::{self, Backend, DbConnection};
use umkm_api::domain::role::Role;
use umkm_api::persons;

use crate::helpers::{TestApp, business_json, empty_database, migrate, spawn_app, test_keys};

fn backend(app: &TestApp) -> Backend {
    Backend::of_url(&app.database_url)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A database's rows as text: `pg_dump --data-only` of a live database, `pg_restore -f -` of a
/// custom-format dump file.
fn pg_text(program: &str, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(program).args(args).output().expect("the PostgreSQL client runs");
    assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[actix_rt::test]
async fn identity_numbers_phones_and_emails_appear_nowhere_in_clear() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut secrets = Vec::new();
    let mut names = Vec::new();
    for n in 0..3 {
        let body = business_json(700 + n);
        // One create with an Idempotency-Key: its stored answer holds the owner's fields too.
        let reply = app
            .post("/api/v1/businesses")
            .token(&officer)
            .header("idempotency-key", &format!("create-{n}"))
            .json(&body)
            .send()
            .await;
        assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
        secrets.push(body["owner_nik"].as_str().unwrap().to_owned());
        // The phone's digits after the leading 0, as stored (+62…) and as sent.
        secrets.push(body["phone"].as_str().unwrap()[1..].to_owned());
        secrets.push(body["email"].as_str().unwrap().to_owned());
        names.push(body["owner_name"].as_str().unwrap().to_owned());
    }
    // A correction too: a person's new phone and e-mail go through the write-ahead log.
    let owner = app.get("/api/v1/businesses/1").token(&officer).send().await.json()["owner_id"].clone();
    let reply = app
        .patch(&format!("/api/v1/persons/{owner}"))
        .token(&officer)
        .json(&json!({"phone": "0813-9876-5432", "email": "koreksi@example.com"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    secrets.extend(["81398765432".to_owned(), "koreksi@example.com".to_owned()]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("umkm.backup");
    backup::backup(&app.database_url, &file, &|_| {}).unwrap();
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&file).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name.ends_with(".pgdump") {
            // pg_dump's custom format compresses the rows: read them back as SQL.
            let dump = dir.path().join("rows.pgdump");
            std::fs::write(&dump, &bytes).unwrap();
            bytes = pg_text("pg_restore", &["--data-only", "-f", "-", dump.to_str().unwrap()]);
        }
        places.push((format!("backup member {name}"), bytes));
    }
    match backend(&app) {
        Backend::Sqlite => {
            places.push(("database file".into(), std::fs::read(&app.database_url).unwrap()));
            let wal = std::fs::read(format!("{}-wal", app.database_url)).unwrap_or_default();
            assert!(!wal.is_empty(), "the write-ahead log holds the latest writes");
            places.push(("write-ahead log".into(), wal));
        }
        Backend::Postgres => {
            places.push(("pg_dump".into(), pg_text("pg_dump", &["--data-only", &app.database_url])));
        }
    }
    for (place, bytes) in &places {
        for secret in &secrets {
            assert!(!contains(bytes, secret), "{secret} is in clear in the {place}");
        }
    }
    // The search can find what is there: the owners' names are not sealed. (The database file
    // itself may not have them yet: they are in its write-ahead log until a checkpoint.)
    for (place, bytes) in places.iter().filter(|(p, _)| !p.contains("manifest") && p != "database file") {
        assert!(
            names.iter().any(|n| contains(bytes, n)),
            "no owner name in the {place}: the search is blind"
        );
    }
}

#[actix_rt::test]
async fn one_person_per_nik_and_another_name_for_it_is_refused() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut first = business_json(1);
    first["owner_nik"] = json!("3524012404970127");
    first["owner_name"] = json!("Yusuf Firmansyah");
    let first = app.create_business(&officer, &first).await;
    let person = first["owner_id"].as_i64().unwrap();

    // Another name for the same NIK: 409 naming the person's id, nothing written.
    let mut other = business_json(2);
    other["owner_nik"] = json!("3524012404970127");
    other["owner_name"] = json!("Budi Santoso");
    let reply = app.post("/api/v1/businesses").token(&officer).json(&other).send().await;
    let problem = reply.assert_problem(409);
    let detail = problem["detail"].as_str().unwrap();
    // The person is named by id, not by their name: reading them shows it, and records it.
    assert!(detail.contains(&format!("/api/v1/persons/{person}")) && !detail.contains("Yusuf"), "{detail}");
    assert_eq!(app.count("businesses"), 1);
    assert_eq!(app.count("persons"), 1);
    // The same in an import: the row is named, and nothing of the import is written.
    let rows = json!([business_json(3), other]);
    let reply = app.post("/api/v1/businesses/import").token(&officer).json(&rows).send().await;
    let problem = reply.assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().starts_with("rows[2]: "), "{problem}");
    assert_eq!((app.count("businesses"), app.count("persons")), (1, 1));

    // The same name (case and spacing aside) links the business to the person.
    other["owner_name"] = json!("YUSUF  Firmansyah");
    let second = app.create_business(&officer, &other).await;
    assert_eq!(second["owner_id"], json!(person));
    assert_eq!(second["owner_name"], "Yusuf Firmansyah", "the person's name, as corrected once");
    let read = app.get(&format!("/api/v1/businesses/{}", second["id"])).token(&officer).send().await;
    assert_eq!(read.json(), second, "the create answers what a read gives, for a known owner too");
    assert_eq!(app.count("persons"), 1);
}

#[actix_rt::test]
async fn persons_are_read_by_role_and_corrected_once_for_all_their_businesses() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let first = app.create_business(&officer, &business_json(1)).await;
    let mut body = business_json(2);
    body["owner_nik"] = business_json(1)["owner_nik"].clone();
    body["owner_name"] = business_json(1)["owner_name"].clone();
    body["phone"] = business_json(1)["phone"].clone();
    body["email"] = business_json(1)["email"].clone();
    let second = app.create_business(&officer, &body).await;
    let id = first["owner_id"].as_i64().unwrap();
    let path = format!("/api/v1/persons/{id}");
    let nik = business_json(1)["owner_nik"].as_str().unwrap().to_owned();
    // A third business of theirs sent without an e-mail keeps the person's (an import from a
    // sheet without that column erases nothing); it is removed again below.
    let mut third = body.clone();
    third["nib"] = json!("9120000000077");
    third.as_object_mut().unwrap().remove("email");
    let third = app.create_business(&officer, &third).await;
    assert_eq!(third["email"], business_json(1)["email"]);
    let reply = app.delete(&format!("/api/v1/businesses/{}", third["id"])).token(&officer).send().await;
    assert_eq!(reply.status, 204);

    // Office staff see the person whole; viewers masked; retail and bank users no person.
    let full = app.get(&path).token(&officer).send().await;
    assert_eq!(full.status, 200);
    assert_eq!(full.header("etag").as_deref(), Some("\"1\""));
    let full = full.json();
    assert_eq!(full["nik"], nik.as_str());
    assert_eq!(full["business_ids"], json!([first["id"], second["id"]]));
    let viewer = app.token_for(Role::Viewer).await;
    let masked = app.get(&path).token(&viewer).send().await.json();
    assert_eq!(masked["nik"], "3524********0002");
    assert!(masked["name"].as_str().unwrap().contains('*'), "{masked}");
    assert_eq!(masked["conflicts"], json!([]));
    // Where the NIK was first registered, for office staff: Babat (35.24.05).
    assert_eq!(
        (full["nik_district"]["code"].as_str(), full["nik_district"]["name"].as_str()),
        (Some("35.24.05"), Some("Babat"))
    );
    assert_eq!(masked["nik_district"], Value::Null);
    // A NIK of a province since retired (54, Timor Timur) is no reason to refuse; no district shown.
    let mut elsewhere = business_json(5);
    elsewhere["owner_nik"] = json!("5401051203900001");
    let elsewhere = app.create_business(&officer, &elsewhere).await;
    let them =
        app.get(&format!("/api/v1/persons/{}", elsewhere["owner_id"])).token(&officer).send().await.json();
    assert_eq!((them["nik"].as_str(), them["nik_district"].clone()), (Some("5401051203900001"), Value::Null));
    app.delete(&format!("/api/v1/businesses/{}", elsewhere["id"])).token(&officer).send().await;
    for role in [Role::Retail, Role::Bank] {
        let token = app.token_for(role).await;
        app.get(&path).token(&token).send().await.assert_problem(404);
        app.get(&format!("/api/v1/persons?nik={nik}")).token(&token).send().await.assert_problem(404);
    }
    // A person's businesses, masked for a viewer as in the business list.
    let owned = app.get(&format!("{path}/businesses")).token(&viewer).send().await.json();
    assert_eq!(owned["data"].as_array().unwrap().len(), 2);
    assert_eq!(owned["data"][0]["owner_nik"], "3524********0002");

    // Exact look-up by NIK, for office staff only.
    let found = app.get(&format!("/api/v1/persons?nik={nik}")).token(&officer).send().await.json();
    assert_eq!(found["data"][0]["id"], json!(id));
    let none = app.get("/api/v1/persons?nik=3524051203900099").token(&officer).send().await.json();
    assert_eq!(none["data"], json!([]));
    app.get(&format!("/api/v1/persons?nik={nik}")).token(&viewer).send().await.assert_problem(403);
    for bad in ["/api/v1/persons", "/api/v1/persons?nik=12345", "/api/v1/persons?name=Sri"] {
        app.get(bad).token(&officer).send().await.assert_problem(400);
    }

    // A correction: every business follows (its owner fields, its version and updated_at).
    let reply = app
        .patch(&path)
        .token(&officer)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Pemilik Satu Benar"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));
    for business in [&first, &second] {
        let now =
            app.get(&format!("/api/v1/businesses/{}", business["id"])).token(&officer).send().await.json();
        assert_eq!(now["owner_name"], "Pemilik Satu Benar");
        assert_eq!(now["version"], json!(business["version"].as_i64().unwrap() + 1));
    }
    // A stale ETag, a viewer, a bad field, another person's NIK: refused, nothing changed.
    app.patch(&path)
        .token(&officer)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .assert_problem(412);
    app.patch(&path).token(&viewer).json(&json!({"name": "X"})).send().await.assert_problem(403);
    let problem = app
        .patch(&path)
        .token(&officer)
        .json(&json!({"nik": "123", "phone": "12", "email": "nope", "age": 3}))
        .send()
        .await
        .assert_problem(422);
    assert!(problem["errors"].as_array().unwrap().len() >= 3, "{problem}");
    let other = app.create_business(&officer, &business_json(3)).await;
    let taken = business_json(3)["owner_nik"].clone();
    let problem =
        app.patch(&path).token(&officer).json(&json!({"nik": taken})).send().await.assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().contains(&format!("person {}", other["owner_id"])));
    let after = app.get(&path).token(&officer).send().await.json();
    assert_eq!((after["version"].clone(), after["nik"].clone()), (json!(2), json!(nik)));
    // The audit log keeps the change and no NIK.
    let changes: Vec<String> = app.db(|conn| {
        use umkm_api::db::schema::audit_log;
        audit_log::table
            .filter(audit_log::entity.eq("person"))
            .select(audit_log::changes)
            .load::<String>(conn)
            .unwrap()
    });
    assert!(changes.iter().any(|c| c.contains("Pemilik Satu Benar")), "{changes:?}");
    assert!(changes.iter().all(|c| !c.contains(&nik)), "{changes:?}");
    app.assert_owner_copies();
}

#[actix_rt::test]
async fn concurrent_creates_for_one_new_owner_make_one_person() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let calls = (0..16).map(|n| {
        let mut body = business_json(100 + n);
        body["owner_nik"] = json!("3524015508910003");
        body["owner_name"] = json!("Siti Aminah");
        body["phone"] = json!(format!("0812{:07}", n % 2));
        let call = app.post("/api/v1/businesses").token(&officer).json(&body);
        call.send()
    });
    let replies = join_all(calls).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let owners: std::collections::BTreeSet<i64> =
        replies.iter().map(|r| r.json()["owner_id"].as_i64().unwrap()).collect();
    assert_eq!(owners.len(), 1, "one person");
    assert_eq!(app.count("persons"), 1);
    assert_eq!(app.count("audit_log WHERE entity = 'person' AND action = 'create'"), 1);
}

/// The last migration before persons.
const BEFORE_PERSONS: &str = "20261207000015";

#[actix_rt::test]
async fn a_database_of_the_release_before_becomes_persons_with_its_conflicts_listed() {
    let empty = empty_database();
    let pool = db::pool(&empty.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    db::run_migrations_through(&mut conn, BEFORE_PERSONS).unwrap();
    // Two businesses give NIK 3524012404970127 two names (and two phones); a third has its own.
    diesel::sql_query(
        "INSERT INTO businesses (id, name, owner_name, owner_nik, phone, email, kbli, kbli_division, district_code, \
         address, status, is_ikm, consented_to_bank_sharing_at, created_at, updated_at, version) VALUES \
         (1, 'Toko Yusuf', 'Yusuf Firmansyah', '3524012404970127', '+6281211111111', 'yusuf@example.com', '47111', 47, \
          '35.24.01', 'Jl. A', 'active', false, NULL, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1), \
         (2, 'Warung Budi', 'Budi Santoso', '3524012404970127', '+6281222222222', NULL, '47111', 47, \
          '35.24.01', 'Jl. B', 'active', false, '2026-02-05 00:00:00', '2026-02-01 00:00:00', '2026-02-01 00:00:00', 1), \
         (3, 'Kripik Sri', 'Sri Wahyuni', '3524055203900002', '+6281233333333', 'sri@example.com', '10750', 10, \
          '35.24.05', 'Jl. C', 'active', true, NULL, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)",
    )
    .execute(&mut conn)
    .unwrap();

    assert!(migrate(&mut conn) >= 2);
    assert_eq!(count(&mut conn, "persons"), 2);
    let keys = test_keys();
    let owner_of = |conn: &mut DbConnection, id: i64| -> i64 {
        use umkm_api::db::schema::businesses;
        businesses::table.find(id).select(businesses::owner_id).first(conn).unwrap()
    };
    let (a, b, c) = (owner_of(&mut conn, 1), owner_of(&mut conn, 2), owner_of(&mut conn, 3));
    assert_eq!(a, b, "one NIK, one person");
    assert_ne!(a, c);
    // The person keeps the newest business's values; the others are listed, sealed, not lost.
    let person = persons::find(&mut conn, a).unwrap();
    let owner = persons::Owner::open(&person, &keys).unwrap();
    assert_eq!(
        (owner.name.as_str(), owner.nik.as_str(), owner.phone.as_str(), owner.email.as_deref()),
        ("Budi Santoso", "3524012404970127", "+6281222222222", None)
    );
    let conflicts: Vec<(i64, i64, String, String)> = persons::conflicts_of(&mut conn, &keys, None)
        .unwrap()
        .into_iter()
        .map(|(p, c)| (p, c.business_id, c.field, c.value))
        .collect();
    assert_eq!(
        conflicts,
        [
            (a, 1, "owner_name".into(), "Yusuf Firmansyah".into()),
            (a, 1, "phone".into(), "+6281211111111".into()),
            (a, 1, "email".into(), "yusuf@example.com".into()),
        ]
    );
    let sri = persons::Owner::open(&persons::find(&mut conn, c).unwrap(), &keys).unwrap();
    assert_eq!((sri.nik.as_str(), sri.email.as_deref()), ("3524055203900002", Some("sri@example.com")));
    // The plaintext columns are gone.
    let gone = diesel::sql_query("SELECT owner_nik FROM businesses").execute(&mut conn);
    assert!(gone.is_err(), "owner_nik is still a column");
    // Migrating again changes nothing.
    assert_eq!(migrate(&mut conn), 0);
    assert_eq!(count(&mut conn, "person_conflicts"), 3);

    // The served API shows the person, and settles a conflict with a correction.
    drop(conn);
    let app = TestApp::serve(&empty.url);
    let officer = app.token_for(Role::Officer).await;
    let person = app.get(&format!("/api/v1/persons/{a}")).token(&officer).send().await.json();
    assert_eq!(person["conflicts"].as_array().unwrap().len(), 3, "{person}");
    let reply = app
        .patch(&format!("/api/v1/persons/{a}"))
        .token(&officer)
        .json(&json!({"name": "Yusuf Firmansyah"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["conflicts"].as_array().unwrap().len(), 2, "the name is settled");
    let business = app.get("/api/v1/businesses/2").token(&officer).send().await.json();
    assert_eq!(business["owner_name"], "Yusuf Firmansyah");
    app.assert_owner_copies();
    // Business 2's consent flag became its person's consent to every bank, which business 1,
    // the same person's, now shows too; Sri, who never consented, has none.
    let consents = app.get(&format!("/api/v1/persons/{a}/consents")).token(&officer).send().await.json();
    assert_eq!(consents["data"].as_array().unwrap().len(), 1, "{consents}");
    assert_eq!(consents["data"][0]["channel"], "migrated");
    assert_eq!(consents["data"][0]["given_at"], "2026-02-05T00:00:00Z");
    assert!(consents["data"][0]["bank_partner_id"].is_null());
    for id in [1, 2] {
        let business = app.get(&format!("/api/v1/businesses/{id}")).token(&officer).send().await.json();
        assert_eq!(business["consented_to_bank_sharing_at"], "2026-02-05T00:00:00Z", "{business}");
    }
    let sri = app.get("/api/v1/businesses/3").token(&officer).send().await.json();
    assert!(sri["consented_to_bank_sharing_at"].is_null());
    drop(app);
}

fn count(conn: &mut DbConnection, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result::<N>(conn).unwrap().n
}

#[actix_rt::test]
async fn a_missing_or_wrong_key_stops_the_start_and_writes_nothing() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    app.create_business(&officer, &business_json(1)).await;
    let checks = app.count("data_key_checks");

    // Another key file: its key 1 is not the key that sealed the data.
    let wrong = Keyring::generate();
    let refused = app.db(|conn| persons::migrate(conn, &wrong)).unwrap_err();
    assert!(refused.contains("not the key that sealed"), "{refused}");
    // A key file without the key the data needs.
    let mut rotated = test_keys();
    rotated.rotate_encryption();
    rotated.remove_encryption(1).unwrap();
    let refused = app.db(|conn| persons::migrate(conn, &rotated)).unwrap_err();
    assert!(refused.contains("encryption key 1") && refused.contains("does not hold it"), "{refused}");
    assert_eq!(app.count("data_key_checks"), checks, "nothing written");
    // A key file that is not there, or not one.
    let dir = tempfile::tempdir().unwrap();
    let missing = Keyring::load(&dir.path().join("data_keys")).unwrap_err().to_string();
    assert!(missing.contains("DATA_KEY_FILE") && missing.contains("data_keys"), "{missing}");
    std::fs::write(dir.path().join("garbage"), "encryption one key\n").unwrap();
    let garbage = Keyring::load(&dir.path().join("garbage")).unwrap_err().to_string();
    assert!(garbage.contains("line 1"), "{garbage}");
    // The right keys still serve.
    let reply = app.get("/api/v1/businesses/1").token(&officer).send().await;
    assert_eq!(reply.status, 200);
    let _: Value = reply.json();
}

#[actix_rt::test]
async fn keys_rotate_while_serving_and_the_old_ones_can_then_go() {
    // A key file of this test's own: the rotation rewrites it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_keys");
    test_keys().write_new(&path).unwrap();
    let file = path.clone();
    let app = crate::helpers::spawn_app_with(move |config| config.data_key_file = file).await;
    let officer = app.token_for(Role::Officer).await;
    for n in 0..30 {
        let reply = app
            .post("/api/v1/businesses")
            .token(&officer)
            .header("idempotency-key", &format!("k{n}"))
            .json(&business_json(n))
            .send()
            .await;
        assert_eq!(reply.status, 201);
    }
    let settle = umkm_api::crypto::data_keys::RELOAD_EVERY + std::time::Duration::from_millis(200);

    // Retiring a key still in use is refused, with the count.
    let refused = app.db(|conn| persons::retire(conn, &path, false, 1)).unwrap_err();
    assert!(refused.contains("still need encryption key 1"), "{refused}");

    let rotated = app.db(|conn| persons::rotate(conn, &path, false, settle, &|_| {})).unwrap();
    assert_eq!(rotated.key, 2);
    // 30 persons (NIK, phone and e-mail each) and 30 stored answers.
    assert_eq!(rotated.rows, 30 + 30);
    assert_eq!(app.db(|conn| persons::still_needing(conn, false, 1)).unwrap(), 0);
    // The server read the new file: it opens what key 2 sealed, and seals with it.
    let reply = app.get("/api/v1/businesses/8").token(&officer).send().await.json();
    assert_eq!(reply["owner_nik"], business_json(7)["owner_nik"]);
    app.create_business(&officer, &business_json(31)).await;
    assert_eq!(app.db(|conn| persons::still_needing(conn, false, 1)).unwrap(), 0);

    // The old key goes; the file without it still opens everything, and starts.
    app.db(|conn| persons::retire(conn, &path, false, 1)).unwrap();
    let keys = Keyring::load(&path).unwrap();
    assert_eq!(keys.encryption_ids(), [2]);
    app.db(|conn| persons::migrate(conn, &keys)).unwrap();
    app.db(|conn| persons::retire(conn, &path, false, 2)).unwrap_err();

    // The blind index's key too: NIK look-ups work throughout.
    let rotated = app.db(|conn| persons::rotate(conn, &path, true, settle, &|_| {})).unwrap();
    assert_eq!((rotated.key, rotated.rows), (2, 31));
    app.db(|conn| persons::retire(conn, &path, true, 1)).unwrap();
    std::thread::sleep(settle);
    let nik = business_json(12)["owner_nik"].as_str().unwrap().to_owned();
    let found = app.get(&format!("/api/v1/persons?nik={nik}")).token(&officer).send().await.json();
    assert_eq!(found["data"][0]["nik"], nik.as_str());
    // A create of a known NIK still finds its person under the new index.
    let mut again = business_json(40);
    again["owner_nik"] = json!(nik);
    again["owner_name"] = business_json(12)["owner_name"].clone();
    app.create_business(&officer, &again).await;
    assert_eq!(app.count("persons"), 31, "no second person for a known NIK");
    app.assert_owner_copies();
    let keys = Keyring::load(&path).unwrap();
    assert_eq!((keys.encryption_ids(), keys.index_ids()), (vec![2], vec![2]));
    app.db(|conn| persons::migrate(conn, &keys)).unwrap();
}

#[actix_rt::test]
async fn the_businesses_copies_of_their_owner_follow_concurrent_corrections_and_writes() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let first = app.create_business(&officer, &business_json(1)).await;
    let person = first["owner_id"].as_i64().unwrap();
    let same_owner = |n: usize| {
        let mut body = business_json(n);
        body["owner_nik"] = business_json(1)["owner_nik"].clone();
        body["owner_name"] = business_json(1)["owner_name"].clone();
        body
    };
    app.create_business(&officer, &same_owner(2)).await;
    // Corrections of the person, new businesses of theirs (some with a new phone: a change of
    // the person), and edits of their businesses, all at once.
    let mut calls = Vec::new();
    for i in 0..6 {
        let phone = format!("0813{:07}", 5_000_000 + i);
        calls.push(
            app.patch(&format!("/api/v1/persons/{person}")).token(&officer).json(&json!({"phone": phone})),
        );
        let mut body = same_owner(10 + i);
        if i % 2 == 0 {
            body["phone"] = json!(format!("0814{:07}", 6_000_000 + i));
        }
        calls.push(app.post("/api/v1/businesses").token(&officer).json(&body));
        calls.push(
            app.patch(&format!("/api/v1/businesses/{}", first["id"]))
                .token(&officer)
                .json(&json!({"address": format!("Jl. {i}")})),
        );
    }
    let replies = join_all(calls.into_iter().map(|c| c.send())).await;
    for reply in &replies {
        assert!([200, 201].contains(&reply.status.as_u16()), "{}", String::from_utf8_lossy(&reply.body));
    }
    app.assert_owner_copies();
    // What every business shows is the person's phone now.
    let phone =
        app.get(&format!("/api/v1/persons/{person}")).token(&officer).send().await.json()["phone"].clone();
    let owned = app.get(&format!("/api/v1/persons/{person}/businesses")).token(&officer).send().await.json();
    assert_eq!(owned["data"].as_array().unwrap().len(), 8);
    assert!(owned["data"].as_array().unwrap().iter().all(|b| b["phone"] == phone), "{owned}");
}
