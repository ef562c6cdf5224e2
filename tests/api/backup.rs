//! Backups (`umkm-api backup`, `restore`): taken of a live database, checked, restored into an
//! empty database that then serves the same records; a backup made at the previous migration
//! restores and serves under the latest; damaged and foreign files are refused and change
//! nothing. On the back end under test (PostgreSQL needs pg_dump, pg_restore and psql).

use std::collections::BTreeMap;
use std::path::Path;

use actix_web::http::StatusCode;
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use umkm_api::backup::{self, Progress};
use umkm_api::db::{self, Backend, DbConnection};
use umkm_api::domain::role::Role;

use crate::helpers::*;

fn quietly(_: Progress) {}

/// Rows per table of a database, as the backup counts them (all tables but the migrations').
fn table_counts(app: &TestApp, tables: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    tables.keys().map(|t| (t.clone(), app.count(t))).collect()
}

fn backend_of(url: &str) -> Backend {
    Backend::of_url(url)
}

#[actix_rt::test]
async fn a_backup_restores_into_an_empty_database_that_serves_the_same_records() {
    let app = spawn_app().await;
    app.create_user("office@backup.test", Role::Admin, None);
    let token = app.login("office@backup.test", PASSWORD).await;
    let created = app.create_business(&token, &business_json(1)).await;
    let id = created["id"].as_i64().unwrap();
    let product = app
        .post("/api/v1/products")
        .token(&token)
        .json(&serde_json::json!({"business_id": id, "name": "Kerupuk Ikan", "category": "food", "price_idr": 15000}))
        .send()
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&product.body));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("umkm.backup");
    let manifest = backup::backup(&app.database_url, &file, &quietly).unwrap();
    let latest = db::migration_versions(backend_of(&app.database_url)).pop().unwrap();
    assert_eq!(manifest.migration, latest);
    assert_eq!(manifest.tables["businesses"], 1);
    assert_eq!(manifest.tables["products"], 1);
    assert!(!manifest.tables.contains_key("__diesel_schema_migrations"));
    assert_eq!(table_counts(&app, &manifest.tables), manifest.tables, "the manifest counts what is there");
    // Nothing is left beside the backup.
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("umkm.backup")]);
    assert_eq!(backup::verify(&file).unwrap(), manifest);
    // Personal data inside: readable by its owner only.
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // A second backup never overwrites the first.
    let before = std::fs::read(&file).unwrap();
    let refused = backup::backup(&app.database_url, &file, &quietly).unwrap_err().to_string();
    assert!(refused.contains("exists"), "{refused}");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    let target = empty_database();
    let restored = backup::restore(&target.url, &migrate_with_test_keys, &file, false).unwrap();
    assert_eq!(restored.migrations_applied, 0);
    assert_eq!(restored.manifest, manifest);
    let copy = TestApp::serve(&target.url);
    assert_eq!(table_counts(&copy, &manifest.tables), manifest.tables);
    // The same record, read through the restored server by the same user (its argon2 hash came along).
    let token = copy.login("office@backup.test", PASSWORD).await;
    let read = copy.get(&format!("/api/v1/businesses/{id}")).token(&token).send().await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json(), created);
    // New records continue the old ids: the sequences came along too.
    let next = copy.create_business(&token, &business_json(2)).await;
    assert!(next["id"].as_i64().unwrap() > id, "{next}");

    // The restored database now holds data: a second restore is refused and changes nothing.
    let counts = table_counts(&copy, &manifest.tables);
    let refused =
        backup::restore(&target.url, &migrate_with_test_keys, &file, false).unwrap_err().to_string();
    assert!(refused.contains("already holds data"), "{refused}");
    assert_eq!(table_counts(&copy, &manifest.tables), counts);
    drop(copy);
}

#[actix_rt::test]
async fn restore_with_force_replaces_what_the_database_held() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    app.create_business(&token, &business_json(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.backup");
    let manifest = backup::backup(&app.database_url, &file, &quietly).unwrap();

    let target = empty_database();
    {
        let other = TestApp::serve(&target.url);
        let token = other.token_for(Role::Admin).await;
        for n in 10..13 {
            other.create_business(&token, &business_json(n)).await;
        }
    }
    let refused =
        backup::restore(&target.url, &migrate_with_test_keys, &file, false).unwrap_err().to_string();
    assert!(refused.contains("--force"), "{refused}");
    backup::restore(&target.url, &migrate_with_test_keys, &file, true).unwrap();
    let copy = TestApp::serve(&target.url);
    assert_eq!(table_counts(&copy, &manifest.tables), manifest.tables);
    assert_eq!(copy.count("businesses"), 1);
    drop(copy);
}

#[actix_rt::test]
async fn a_backup_made_at_the_previous_migration_restores_and_serves_under_the_latest() {
    let source = empty_database();
    let backend = backend_of(&source.url);
    let versions = db::migration_versions(backend);
    let previous = versions[versions.len() - 2].clone();
    {
        // The database as the previous release left it, with what that release wrote.
        let pool = db::pool(&source.url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        assert_eq!(db::run_migrations_through(&mut conn, &previous).unwrap(), versions.len() - 1);
        assert!(!db::migrations_current(&mut conn).unwrap());
        let yes = if backend == Backend::Postgres { "TRUE" } else { "1" };
        // Its owner a person, sealed under the keys, and the business's copy of them.
        let keys = crate::helpers::test_keys();
        let (nik, phone) = ("3524054105900001", "+6281234567890");
        let (nik, phone) = (
            keys.seal(umkm_api::persons::NIK, nik).unwrap(),
            keys.seal(umkm_api::persons::PHONE, phone).unwrap(),
        );
        conn.batch_execute(&format!(
            "INSERT INTO persons (id, name, nik, nik_index, phone, created_at, updated_at) VALUES (1, 'Sri Wahyuni', \
             '{nik}', '{}', '{phone}', '2026-01-02 03:04:05', '2026-01-02 03:04:05'); \
             INSERT INTO businesses (name, owner_id, person_name, person_nik, person_phone, kbli, kbli_division, \
             district_code, address, status, is_ikm, created_at, updated_at, version) VALUES ('Kerupuk Ikan Bu Sri', 1, \
             'Sri Wahyuni', '{nik}', '{phone}', '10750', 10, '35.24.14', 'Jl. Raya Paciran', 'active', {yes}, \
             '2026-01-02 03:04:05', '2026-01-02 03:04:05', 1)",
            keys.blind_index(umkm_api::persons::NIK_INDEX, "3524054105900001").unwrap(),
        ))
        .unwrap();
        // That release's user row (today's `users::create` writes columns it did not have).
        let hash = umkm_api::crypto::hash_password(PASSWORD).unwrap();
        conn.batch_execute(&format!(
            "INSERT INTO users (email, password_hash, role, disabled, created_at, updated_at, version) VALUES \
             ('office@older.test', '{hash}', 'officer', {no}, '2026-01-02 03:04:05', '2026-01-02 03:04:05', 1)",
            no = if backend == Backend::Postgres { "FALSE" } else { "0" }
        ))
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("older.backup");
    let manifest = backup::backup(&source.url, &file, &quietly).unwrap();
    assert_eq!(manifest.migration, previous);

    let target = empty_database();
    let restored = backup::restore(&target.url, &migrate_with_test_keys, &file, false).unwrap();
    assert_eq!(restored.migrations_applied, 1, "the latest migration is applied after the restore");
    let copy = TestApp::serve(&target.url);
    // The row above went in as SQL, around the statistics' summary that release kept with
    // every write: the summary is made the way `stats rebuild` does.
    copy.db(umkm_api::summary::rebuild).unwrap();
    assert!(copy.db(db::migrations_current).unwrap());
    let token = copy.login("office@older.test", PASSWORD).await;
    let list = copy.get("/api/v1/businesses?count=true").token(&token).send().await;
    assert_eq!(list.status, StatusCode::OK);
    let body = list.json();
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["data"][0]["name"], "Kerupuk Ikan Bu Sri");
    assert_eq!(body["data"][0]["owner_nik"], "3524054105900001");
    assert_eq!(body["data"][0]["phone"], "+6281234567890");
    copy.assert_owner_copies();
    drop(copy);
}

/// One line naming the file: what an operator reads.
#[track_caller]
fn assert_one_line(message: &str, file: &Path) {
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(&file.display().to_string()), "{message}");
}

#[actix_rt::test]
async fn damaged_and_foreign_files_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    app.create_business(&token, &business_json(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.backup");
    let manifest = backup::backup(&app.database_url, &good, &quietly).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let mut bad = Vec::new();
    let mut write = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        bad.push(path);
    };
    write("empty.backup", b"");
    write("text.backup", b"hello, this is not a backup\n");
    write("half.backup", &bytes[..bytes.len() / 2]);
    // The archive ends with 1,024 bytes of zeros (and padding): cut into the data itself.
    write("tail-cut.backup", &bytes[..bytes.len() - 2048]);
    let mut flipped = bytes.clone();
    // Damage past the header (the SQLite header is 100 bytes; a tar header 512).
    for b in &mut flipped[bytes.len() / 3..bytes.len() / 3 + 64] {
        *b ^= 0x5a;
    }
    write("flipped.backup", &flipped);
    // An SQLite database that is not a backup, and a tar archive that is not one either.
    let plain = dir.path().join("plain.sqlite");
    {
        use diesel::Connection;
        let mut c = diesel::SqliteConnection::establish(plain.to_str().unwrap()).unwrap();
        c.batch_execute("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');").unwrap();
    }
    bad.push(plain);
    let tarball = dir.path().join("other.tar");
    {
        let mut builder = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        header.set_cksum();
        builder.append_data(&mut header, "notes.txt", &b"hi"[..]).unwrap();
        builder.finish().unwrap();
    }
    bad.push(tarball);

    let before = table_counts(&app, &manifest.tables);
    for file in &bad {
        let verified = backup::verify(file);
        let message = verified.as_ref().map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert!(verified.is_err(), "{} passed the check", file.display());
        assert_one_line(&message, file);
        for force in [false, true] {
            let refused = backup::restore(&app.database_url, &migrate_with_test_keys, file, force);
            assert!(refused.is_err(), "{} was restored (force {force})", file.display());
        }
        assert_eq!(table_counts(&app, &manifest.tables), before, "{} changed the database", file.display());
    }
    // Still serving what it held.
    let list = app.get("/api/v1/businesses").token(&token).send().await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()["data"].as_array().unwrap().len(), 1);
    // And the good backup still checks out.
    backup::verify(&good).unwrap();
}

#[actix_rt::test]
async fn a_backup_taken_while_writes_go_on_holds_each_write_whole() {
    // Writers keep creating businesses (each with its audit entry, in one transaction) while
    // the backup runs: the backup's counts are of one moment, so the audit entries of
    // business creations equal the businesses, and verify agrees with the manifest.
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    for n in 0..20 {
        app.create_business(&token, &business_json(n)).await;
    }
    let url = app.database_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.backup");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let server_url = app.server.url("/api/v1/businesses");
            let token = token.clone();
            std::thread::spawn(move || {
                let rt = actix_rt::System::new();
                rt.block_on(async move {
                    let client = awc::Client::default();
                    let mut created = 0;
                    for i in 0..15 {
                        let reply = client
                            .post(&server_url)
                            .insert_header(("authorization", format!("Bearer {token}")))
                            .send_json(&business_json(1000 + w * 100 + i))
                            .await
                            .unwrap();
                        assert_eq!(reply.status(), StatusCode::CREATED);
                        created += 1;
                    }
                    created
                })
            })
        })
        .collect();
    let manifest = backup::backup(&url, &file, &quietly).unwrap();
    let created: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(created, 60);
    let businesses = manifest.tables["businesses"];
    assert!((20..=80).contains(&businesses), "{businesses}");
    assert_eq!(backup::verify(&file).unwrap(), manifest);
    // Each business came with its audit entry in the same transaction: the snapshot has both or neither.
    let target = empty_database();
    backup::restore(&target.url, &migrate_with_test_keys, &file, false).unwrap();
    let copy = TestApp::serve(&target.url);
    let audited = copy.db(|c: &mut DbConnection| {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "SELECT count(*) AS n FROM audit_log WHERE entity = 'business' AND action = 'create'",
        )
        .get_result::<N>(c)
        .unwrap()
        .n
    });
    assert_eq!(audited, businesses);
    drop(copy);
}

#[test]
fn a_failed_backup_leaves_nothing_under_its_name() {
    // A file that is not a database: the copy fails once it has begun.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("not-a-database.db");
    std::fs::write(&source, vec![b'x'; 8192]).unwrap();
    let out = dir.path().join("out").join("umkm.backup");
    std::fs::create_dir(out.parent().unwrap()).unwrap();
    let failed = backup::backup(source.to_str().unwrap(), &out, &quietly).unwrap_err().to_string();
    assert!(failed.contains("not a database"), "{failed}");
    assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 0, "nothing is left behind");
}

#[actix_rt::test]
async fn pg_dump_missing_or_older_than_the_server_is_refused_in_one_line() {
    let app = spawn_app().await;
    if backend_of(&app.database_url) != Backend::Postgres {
        return; // The client programs only matter on PostgreSQL.
    }
    let dir = tempfile::tempdir().unwrap();
    // A PATH with no PostgreSQL programs, then one whose pg_dump is PostgreSQL 12's.
    let empty = dir.path().join("empty");
    let old = dir.path().join("old");
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(&old).unwrap();
    let fake = old.join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.22'\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (path, expected) in
        [(&empty, "pg_dump was not found on PATH"), (&old, "pg_dump 12 is older than the server")]
    {
        let out = dir.path().join("umkm.backup");
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_umkm-api"))
            .args(["backup", "--out"])
            .arg(&out)
            .env("DATABASE_URL", &app.database_url)
            .env("PATH", path)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(!run.status.success());
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("umkm-api: ") && stderr.contains(expected), "{stderr}");
        assert!(!out.exists());
    }
}

/// Issue 28, item 7: a restore starts a new deployment. A token issued before it is refused
/// after, even when its user id now names someone else (the officer created next).
#[actix_rt::test]
async fn tokens_issued_before_a_restore_are_refused_after_it() {
    let target = empty_database();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("before.backup");
    let viewer_token = {
        let first = TestApp::serve(&target.url);
        first.token_for(Role::Admin).await;
        backup::backup(&target.url, &file, &quietly).unwrap();
        let viewer = first.create_user("viewer@restore.test", Role::Viewer, None);
        let token = first.login("viewer@restore.test", PASSWORD).await;
        assert_eq!(first.get("/api/v1/auth/me").token(&token).send().await.json()["id"], viewer);
        token
    };
    backup::restore(&target.url, &migrate_with_test_keys, &file, true).unwrap();
    let again = TestApp::serve(&target.url);
    let officer = again.create_user("officer@restore.test", Role::Officer, None);
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            viewer_token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], officer.to_string(), "the old token's id names the new officer");
    again.get("/api/v1/auth/me").token(&viewer_token).send().await.assert_problem(401);
    drop(again);
}
