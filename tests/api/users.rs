use diesel::prelude::*;
use serde_json::{Value, json};
use umkm_api::db::schema::users;
use umkm_api::domain::role::Role;

use crate::helpers::{PASSWORD, spawn_app};

#[actix_rt::test]
async fn an_admin_creates_reads_changes_and_deletes_a_user() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;

    let created = app
        .post("/api/v1/users")
        .token(&token)
        .json(&json!({"email": "Analis@BankJatim.example", "password": "a long enough password",
                      "role": "bank", "bank_partner_id": 4}))
        .send()
        .await;
    assert_eq!(created.status, 201);
    let user = created.json();
    let id = user["id"].as_i64().unwrap();
    assert_eq!(created.header("location"), Some(format!("/api/v1/users/{id}")));
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(user["email"], "analis@bankjatim.example");
    assert_eq!(user["role"], "bank");
    assert_eq!(user["bank_partner_id"], 4);
    assert_eq!(user["version"], 1);
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    let hash: String = app.db(|c| users::table.find(id).select(users::password_hash).first(c)).unwrap();
    assert!(hash.starts_with("$argon2id$"));

    let read = app.get(&format!("/api/v1/users/{id}")).token(&token).send().await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), user);

    // The new user can log in with its password.
    app.login("analis@bankjatim.example", "a long enough password").await;

    let changed = app
        .patch(&format!("/api/v1/users/{id}"))
        .token(&token)
        .header("if-match", "\"1\"")
        .raw(
            "application/merge-patch+json",
            r#"{"role": "viewer", "bank_partner_id": null, "disabled": true}"#,
        )
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", String::from_utf8_lossy(&changed.body));
    assert_eq!(changed.header("etag").as_deref(), Some("\"2\""));
    let body = changed.json();
    assert_eq!(
        (body["role"].clone(), body["bank_partner_id"].clone(), body["disabled"].clone()),
        (json!("viewer"), Value::Null, json!(true))
    );
    assert_eq!(body["email"], "analis@bankjatim.example", "absent fields are kept");
    assert_eq!(body["version"], 2);

    let deleted =
        app.delete(&format!("/api/v1/users/{id}")).token(&token).header("if-match", "\"2\"").send().await;
    assert_eq!(deleted.status, 204);
    app.get(&format!("/api/v1/users/{id}")).token(&token).send().await.assert_problem(404);
    let left: i64 = app.db(|c| users::table.filter(users::id.eq(id)).count().get_result(c)).unwrap();
    assert_eq!(left, 0);
}

#[actix_rt::test]
async fn role_and_partner_must_fit_together() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    let cases = [
        (json!({"role": "bank"}), "bank_partner_id", "required"),
        (json!({"role": "bank", "bank_partner_id": 999}), "bank_partner_id", "not_found"),
        (json!({"role": "retail"}), "retail_partner_id", "required"),
        (json!({"role": "retail", "retail_partner_id": 999}), "retail_partner_id", "not_found"),
        (json!({"role": "officer", "retail_partner_id": 1}), "retail_partner_id", "forbidden"),
        (json!({"role": "viewer", "bank_partner_id": 1}), "bank_partner_id", "forbidden"),
    ];
    for (fields, field, code) in cases {
        let mut body = json!({"email": "someone@test.example", "password": "a long enough password"});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let problem = app.post("/api/v1/users").token(&token).json(&body).send().await.assert_problem(422);
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
        assert_eq!(problem["errors"][0]["code"], code, "{body}");
    }
    let n: i64 = app
        .db(|c| users::table.filter(users::email.eq("someone@test.example")).count().get_result(c))
        .unwrap();
    assert_eq!(n, 0);

    // Changing a bank user into an officer without clearing its bank is refused too.
    let id = app.create_user("bank@test.example", Role::Bank, Some(1));
    let problem = app
        .patch(&format!("/api/v1/users/{id}"))
        .token(&token)
        .json(&json!({"role": "officer"}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "bank_partner_id");
}

#[actix_rt::test]
async fn emails_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    app.create_user("taken@test.example", Role::Viewer, None);
    let problem = app
        .post("/api/v1/users")
        .token(&token)
        .json(&json!({"email": "TAKEN@test.example", "password": "a long enough password", "role": "viewer"}))
        .send()
        .await
        .assert_problem(409);
    assert_eq!(problem["detail"], "a record with this email already exists");
}

#[actix_rt::test]
async fn stale_if_match_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    let id = app.create_user("v@test.example", Role::Viewer, None);
    let path = format!("/api/v1/users/{id}");

    let first = app
        .patch(&path)
        .token(&token)
        .header("if-match", "\"1\"")
        .json(&json!({"disabled": true}))
        .send()
        .await;
    assert_eq!(first.status, 200);
    let stale = app
        .patch(&path)
        .token(&token)
        .header("if-match", "\"1\"")
        .json(&json!({"disabled": false}))
        .send()
        .await;
    stale.assert_problem(412);
    app.delete(&path).token(&token).header("if-match", "\"1\"").send().await.assert_problem(412);

    let (disabled, version): (bool, i32) =
        app.db(|c| users::table.find(id).select((users::disabled, users::version)).first(c)).unwrap();
    assert_eq!((disabled, version), (true, 2));

    // `*` and a list containing the current version both match.
    let any =
        app.patch(&path).token(&token).header("if-match", "*").json(&json!({"disabled": false})).send().await;
    assert_eq!(any.status, 200);
    let listed =
        app.patch(&path).token(&token).header("if-match", "\"1\", \"3\"").json(&json!({})).send().await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["version"], 4);
}

#[actix_rt::test]
async fn a_password_change_takes_effect_and_admins_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let admin_id = app.create_user("boss@test.example", Role::Admin, None);
    let token = app.login("boss@test.example", PASSWORD).await;
    let id = app.create_user("staff@test.example", Role::Officer, None);

    let reply = app
        .patch(&format!("/api/v1/users/{id}"))
        .token(&token)
        .json(&json!({"password": "a brand new passphrase"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    app.login("staff@test.example", "a brand new passphrase").await;

    let short = app
        .patch(&format!("/api/v1/users/{id}"))
        .token(&token)
        .json(&json!({"password": "short"}))
        .send()
        .await;
    assert_eq!(short.assert_problem(422)["errors"][0]["field"], "password");

    let own = format!("/api/v1/users/{admin_id}");
    app.delete(&own).token(&token).send().await.assert_problem(409);
    app.patch(&own).token(&token).json(&json!({"disabled": true})).send().await.assert_problem(409);
    app.patch(&own).token(&token).json(&json!({"role": "viewer"})).send().await.assert_problem(409);
    assert_eq!(app.get("/api/v1/auth/me").token(&token).send().await.json()["role"], "admin");
}

#[actix_rt::test]
async fn the_user_list_pages_through_every_user_once_and_filters() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    for n in 0..6 {
        app.create_user(&format!("viewer{n}@test.example"), Role::Viewer, None);
    }
    app.create_user("bank@test.example", Role::Bank, Some(3));

    let first = app.get("/api/v1/users?limit=3&count=true").token(&token).send().await.json();
    assert_eq!(first["total"], 8);
    let mut seen: Vec<i64> =
        first["data"].as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect();
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    // A user added between pages appears once, at the end.
    app.create_user("late@test.example", Role::Viewer, None);
    while let Some(c) = cursor {
        let page = app.get(&format!("/api/v1/users?limit=3&cursor={c}")).token(&token).send().await.json();
        assert!(page.get("total").is_none());
        seen.extend(page["data"].as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let all: Vec<i64> = app.db(|c| users::table.select(users::id).order(users::id).load(c)).unwrap();
    assert_eq!(seen, all);

    let banks = app.get("/api/v1/users?role=bank").token(&token).send().await.json();
    assert_eq!(banks["data"].as_array().unwrap().len(), 1);
    assert_eq!(banks["data"][0]["bank_partner_id"], 3);
    assert_eq!(banks["next_cursor"], Value::Null);
}

/// The audit entries of one user: (action, acting user, changes).
fn user_audit(app: &crate::helpers::TestApp, id: i64) -> Vec<(String, Option<i64>, Value)> {
    use umkm_api::db::schema::audit_log;
    let rows: Vec<(String, Option<i64>, String)> = app
        .db(|c| {
            audit_log::table
                .filter(audit_log::entity.eq("user"))
                .filter(audit_log::entity_id.eq(id))
                .order(audit_log::id.asc())
                .select((audit_log::action, audit_log::user_id, audit_log::changes))
                .load(c)
        })
        .unwrap();
    rows.into_iter().map(|(a, u, c)| (a, u, serde_json::from_str(&c).unwrap())).collect()
}

#[actix_rt::test]
async fn every_user_change_is_audited_without_passwords_or_hashes() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    let admin: i64 =
        app.db(|c| users::table.filter(users::role.eq("admin")).select(users::id).first(c)).unwrap();
    let secret = "a long enough password";
    let created = app
        .post("/api/v1/users")
        .token(&token)
        .json(&json!({"email": "staf@lamongan.example", "password": secret, "role": "viewer"}))
        .send()
        .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/users/{id}");
    let changed = app
        .patch(&path)
        .token(&token)
        .json(&json!({"role": "officer", "password": "another long password"}))
        .send()
        .await;
    assert_eq!(changed.status, 200);
    assert_eq!(app.patch(&path).token(&token).json(&json!({"disabled": true})).send().await.status, 200);
    // The command line's password reset, with no acting user.
    app.db(|c| umkm_api::users::reset_password(c, "staf@lamongan.example", "a third long password")).unwrap();
    assert_eq!(app.delete(&path).token(&token).send().await.status, 204);

    let entries = user_audit(&app, id);
    let actions: Vec<(&str, Option<i64>)> = entries.iter().map(|(a, u, _)| (a.as_str(), *u)).collect();
    assert_eq!(
        actions,
        [
            ("create", Some(admin)),
            ("update", Some(admin)),
            ("update", Some(admin)),
            ("update", None),
            ("delete", Some(admin))
        ]
    );
    assert_eq!(entries[0].2["email"], "staf@lamongan.example");
    assert_eq!(entries[0].2["role"], "viewer");
    assert_eq!(entries[1].2["role"], json!({"from": "viewer", "to": "officer"}));
    assert!(entries[1].2.get("password").is_some(), "a password change is recorded: {}", entries[1].2);
    assert_eq!(entries[2].2["disabled"], json!({"from": false, "to": true}));
    assert!(entries[3].2.get("password").is_some());
    for (_, _, changes) in &entries {
        let text = changes.to_string();
        assert!(
            !text.contains("argon2") && !text.contains("password\":\"a") && !text.contains("long password"),
            "{text}"
        );
        assert!(changes.get("password_hash").is_none(), "{text}");
    }
}
