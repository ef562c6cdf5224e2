use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use umkm_api::db::schema::{login_failures, users};
use umkm_api::domain::role::Role;

use umkm_api::accounts::IDENTITY_TTL;

use crate::helpers::{PASSWORD, TEST_SECRET, spawn_app};

#[actix_rt::test]
async fn login_returns_a_bearer_token_that_identifies_the_caller() {
    let app = spawn_app().await;
    let id = app.create_user("Officer@Disperindag.example", Role::Officer, None);

    let reply = app
        .post("/api/v1/auth/token")
        .json(&json!({"email": "OFFICER@disperindag.example", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();

    // The token carries the user id, role, partner, issue and expiry times and a unique id, signed with HS256.
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["sub"], id.to_string());
    assert_eq!(claims["role"], "officer");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

    let me = app.get("/api/v1/auth/me").token(token).send().await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.json(),
        json!({"id": id, "email": "officer@disperindag.example", "role": "officer",
               "bank_partner_id": null, "retail_partner_id": null})
    );
    assert_eq!(me.header("cache-control").as_deref(), Some("no-store"));
    let last_login: Option<chrono::NaiveDateTime> =
        app.db(|c| users::table.find(id).select(users::last_login_at).first(c)).unwrap();
    assert!(last_login.is_some());
}

#[actix_rt::test]
async fn a_bank_users_token_names_its_bank() {
    let app = spawn_app().await;
    app.create_user("analyst@bank.example", Role::Bank, Some(2));
    let token = app.login("analyst@bank.example", PASSWORD).await;
    let me = app.get("/api/v1/auth/me").token(&token).send().await.json();
    assert_eq!(me["role"], "bank");
    assert_eq!(me["bank_partner_id"], 2);
    assert_eq!(me["retail_partner_id"], serde_json::Value::Null);
}

#[actix_rt::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.create_user("viewer@test.example", Role::Viewer, None);

    let wrong = app
        .post("/api/v1/auth/token")
        .json(&json!({"email": "viewer@test.example", "password": "not the password"}))
        .send()
        .await;
    let unknown = app
        .post("/api/v1/auth/token")
        .json(&json!({"email": "nobody@test.example", "password": "not the password"}))
        .send()
        .await;
    let a = wrong.assert_problem(401);
    let b = unknown.assert_problem(401);
    assert_eq!(a["detail"], b["detail"]);
    assert!(!wrong.body.windows(5).any(|w| w == b"argon"), "no internals in the answer");
    let failures: i64 = app.db(|c| login_failures::table.count().get_result(c)).unwrap();
    assert_eq!(failures, 2);
}

#[actix_rt::test]
async fn five_failures_lock_the_email_with_429_and_retry_after() {
    let app = spawn_app().await;
    app.create_user("target@test.example", Role::Officer, None);
    let attempt = |password: &'static str| {
        app.post("/api/v1/auth/token").json(&json!({"email": "target@test.example", "password": password}))
    };
    for _ in 0..5 {
        attempt("guess guess guess").send().await.assert_problem(401);
    }
    // Even the right password is refused while locked.
    let locked = attempt(PASSWORD).send().await;
    locked.assert_problem(429);
    let retry_after: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");

    // Another e-mail is not affected.
    app.create_user("other@test.example", Role::Officer, None);
    app.login("other@test.example", PASSWORD).await;
}

#[actix_rt::test]
async fn a_successful_login_clears_earlier_failures() {
    let app = spawn_app().await;
    app.create_user("forgetful@test.example", Role::Officer, None);
    for _ in 0..4 {
        app.post("/api/v1/auth/token")
            .json(&json!({"email": "forgetful@test.example", "password": "wrong wrong wrong"}))
            .send()
            .await
            .assert_problem(401);
    }
    app.login("forgetful@test.example", PASSWORD).await;
    let failures: i64 = app.db(|c| login_failures::table.count().get_result(c)).unwrap();
    assert_eq!(failures, 0);
}

/// A token's claims as this deployment issues them (its `iss` and `aud`, generation 1).
fn claims(app: &crate::helpers::TestApp, sub: &str, iat: i64, exp: i64) -> serde_json::Value {
    let issuer = app.issuer();
    json!({"sub": sub, "role": "admin", "iat": iat, "exp": exp, "jti": "t", "iss": issuer, "aud": issuer,
           "generation": 1})
}

#[actix_rt::test]
async fn expired_tokens_are_refused() {
    let app = spawn_app().await;
    let id = app.create_user("admin@test.example", Role::Admin, None);
    let now = chrono::Utc::now().timestamp();
    let key = EncodingKey::from_secret(TEST_SECRET).unwrap();
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&app, &id.to_string(), now - 7200, now - 3600),
        &key,
    )
    .unwrap();
    let reply = app.get("/api/v1/auth/me").token(&expired).send().await;
    let body = reply.assert_problem(401);
    assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
    assert!(body["detail"].as_str().unwrap().contains("expired"));

    // The same claims, still valid, are accepted: the refusal above is the expiry.
    let valid = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&app, &id.to_string(), now, now + 600),
        &key,
    )
    .unwrap();
    assert_eq!(app.get("/api/v1/auth/me").token(&valid).send().await.status, 200);
}

#[actix_rt::test]
async fn tokens_signed_with_another_key_or_algorithm_are_refused() {
    let app = spawn_app().await;
    let id = app.create_user("admin@test.example", Role::Admin, None).to_string();
    let now = chrono::Utc::now().timestamp();

    let other_key = EncodingKey::from_secret(b"another-secret-that-is-also-32-bytes-long").unwrap();
    let forged =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(&app, &id, now, now + 600), &other_key)
            .unwrap();
    app.get("/api/v1/auth/me").token(&forged).send().await.assert_problem(401);

    // The right key with another HMAC algorithm: the algorithm is pinned to HS256.
    let key = EncodingKey::from_secret(TEST_SECRET).unwrap();
    let hs512 =
        jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims(&app, &id, now, now + 600), &key)
            .unwrap();
    app.get("/api/v1/auth/me").token(&hs512).send().await.assert_problem(401);

    // `alg: none`, unsigned.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&app, &id, now, now + 600)).unwrap());
    for unsigned in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        app.get("/api/v1/auth/me").token(&unsigned).send().await.assert_problem(401);
    }
}

#[actix_rt::test]
async fn missing_or_malformed_authorization_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    for header in [None, Some("Basic YWRtaW46YWRtaW4="), Some("Bearer"), Some("Bearer not.a.jwt")] {
        let mut call = app.get("/api/v1/regions");
        if let Some(value) = header {
            call = call.header("authorization", value);
        }
        let reply = call.send().await;
        reply.assert_problem(401);
        assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"), "{header:?}");
    }
}

#[actix_rt::test]
async fn disabling_a_user_revokes_its_tokens_at_once() {
    let app = spawn_app().await;
    let id = app.create_user("leaver@test.example", Role::Officer, None);
    let token = app.login("leaver@test.example", PASSWORD).await;
    assert_eq!(app.get("/api/v1/auth/me").token(&token).send().await.status, 200);

    let admin = app.token_for(Role::Admin).await;
    let path = format!("/api/v1/users/{id}");
    assert_eq!(app.patch(&path).token(&admin).json(&json!({"disabled": true})).send().await.status, 200);
    app.get("/api/v1/auth/me").token(&token).send().await.assert_problem(401);
    app.post("/api/v1/auth/token")
        .json(&json!({"email": "leaver@test.example", "password": PASSWORD}))
        .send()
        .await
        .assert_problem(401);
}

#[actix_rt::test]
async fn concurrent_guesses_get_five_attempts_not_more() {
    let app = spawn_app().await;
    app.create_user("target@test.example", Role::Officer, None);
    let guesses = (0..16).map(|i| {
        app.post("/api/v1/auth/token")
            .json(&json!({"email": "target@test.example", "password": format!("guess number {i}")}))
            .send()
    });
    let replies = futures_util::future::join_all(guesses).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [[401; 5].as_slice(), [429; 11].as_slice()].concat());
    let failures: i64 = app.db(|c| login_failures::table.count().get_result(c)).unwrap();
    assert_eq!(failures, 5);
}

#[actix_rt::test]
async fn concurrent_logins_with_the_right_password_all_succeed() {
    let app = spawn_app().await;
    app.create_user("system@bank.example", Role::Viewer, None);
    let logins = (0..16).map(|_| {
        app.post("/api/v1/auth/token")
            .json(&json!({"email": "system@bank.example", "password": PASSWORD}))
            .send()
    });
    let statuses: Vec<u16> =
        futures_util::future::join_all(logins).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200; 16]);
    let failures: i64 = app.db(|c| login_failures::table.count().get_result(c)).unwrap();
    assert_eq!(failures, 0);
}

/// Polls `path` with `token` on `instance` until it answers `status`; the time that took.
async fn until_status(
    instance: &crate::helpers::TestApp,
    token: &str,
    path: &str,
    status: u16,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        if instance.get(path).token(token).send().await.status.as_u16() == status {
            return started.elapsed();
        }
        assert!(started.elapsed() < IDENTITY_TTL * 3, "{path} never answered {status}");
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn a_change_of_user_reaches_every_instance_within_the_bound() {
    let app = spawn_app().await;
    let other = app.another_instance();
    let admin = app.token_for(Role::Admin).await;
    let id = app.create_user("staf@lamongan.example", Role::Officer, None);
    let token = app.login("staf@lamongan.example", PASSWORD).await;
    let path = format!("/api/v1/users/{id}");
    // Both instances have read the officer (and cached it).
    assert_eq!(app.get("/api/v1/audit-log").token(&token).send().await.status, 403);
    assert_eq!(app.get("/api/v1/businesses").token(&token).send().await.status, 200);
    assert_eq!(other.get("/api/v1/businesses").token(&token).send().await.status, 200);

    // A new role ends the token: at once on the instance that made the change, within the
    // bound on the other.
    let demoted =
        app.patch(&path).token(&admin).json(&json!({"role": "bank", "bank_partner_id": 1})).send().await;
    assert_eq!(demoted.status, 200);
    app.get("/api/v1/businesses").token(&token).send().await.assert_problem(401);
    let late = until_status(&other, &token, "/api/v1/businesses", 401).await;
    assert!(late <= IDENTITY_TTL + std::time::Duration::from_secs(1), "took {late:?}");
    // A new token has the new role on both at once (the other reads the user again for it).
    let token = app.login("staf@lamongan.example", PASSWORD).await;
    assert_eq!(app.get("/api/v1/auth/me").token(&token).send().await.status, 200);
    app.get("/api/v1/businesses").token(&token).send().await.assert_problem(404);
    other.get("/api/v1/businesses").token(&token).send().await.assert_problem(404);

    // Disabled: the same.
    assert_eq!(other.get("/api/v1/auth/me").token(&token).send().await.status, 200);
    assert_eq!(app.patch(&path).token(&admin).json(&json!({"disabled": true})).send().await.status, 200);
    app.get("/api/v1/auth/me").token(&token).send().await.assert_problem(401);
    let late = until_status(&other, &token, "/api/v1/auth/me", 401).await;
    assert!(late <= IDENTITY_TTL + std::time::Duration::from_secs(1), "took {late:?}");
}

/// Moves every recorded login failure a day into the past (beyond the throttle's window).
fn age_login_failures(app: &crate::helpers::TestApp) {
    app.db(|c| {
        let sql = match umkm_api::db::backend(c) {
            umkm_api::db::Backend::Postgres => {
                "UPDATE login_failures SET failed_at = failed_at - INTERVAL '1 day'"
            }
            umkm_api::db::Backend::Sqlite => {
                "UPDATE login_failures SET failed_at = datetime(failed_at, '-1 day')"
            }
        };
        diesel::sql_query(sql).execute(c).unwrap();
    });
}

/// Issue 28, item 1: a login key longer than any e-mail or client id is refused before any
/// database work and leaves nothing behind; a recorded failure keeps no e-mail; the expired
/// failures of every key are purged, not only the failing key's.
#[actix_rt::test]
async fn overlong_login_keys_are_refused_unrecorded_and_failures_keep_no_email() {
    let app = spawn_app().await;
    let long = format!("{}@test.example", "a".repeat(1024 * 1024));
    let reply =
        app.post("/api/v1/auth/token").json(&json!({"email": long, "password": "guess"})).send().await;
    let problem = reply.assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    let form = format!("grant_type=client_credentials&client_id={}&client_secret=x", "c".repeat(1024 * 1024));
    let reply = app.post("/api/v1/auth/token").raw("application/x-www-form-urlencoded", form).send().await;
    assert_eq!(reply.status, 401, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["error"], "invalid_client");
    assert_eq!(app.count("login_failures"), 0, "nothing recorded for keys no account can have");

    app.watch_sql("INSERT INTO");
    app.post("/api/v1/auth/token")
        .json(&json!({"email": "Someone.Else@Test.Example", "password": "guess guess"}))
        .send()
        .await
        .assert_problem(401);
    let insert = app.last_sql("INSERT INTO");
    assert!(insert.contains("login_failures"), "a failure was recorded: {insert}");
    assert!(!insert.to_lowercase().contains("someone.else"), "the e-mail is stored: {insert}");

    age_login_failures(&app);
    app.post("/api/v1/auth/token")
        .json(&json!({"email": "another@test.example", "password": "guess guess"}))
        .send()
        .await
        .assert_problem(401);
    assert_eq!(app.count("login_failures"), 1, "the other key's expired failure is gone");
}

/// Issue 28, item 3: failures from one source never lock the right password out for another.
#[actix_rt::test]
async fn a_persons_failures_from_one_source_do_not_lock_out_another() {
    let app = spawn_app().await;
    app.create_user("officer@test.example", Role::Officer, None);
    let attacker: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let attempt = |password: &'static str| {
        app.post("/api/v1/auth/token")
            .from(attacker)
            .json(&json!({"email": "officer@test.example", "password": password}))
    };
    for _ in 0..umkm_api::auth::LOGIN_MAX_FAILURES {
        attempt("guess guess guess").send().await.assert_problem(401);
    }
    attempt(PASSWORD).send().await.assert_problem(429);
    // The officer, at another machine, still logs in; the attacker stays locked.
    app.login("officer@test.example", PASSWORD).await;
    attempt(PASSWORD).send().await.assert_problem(429);
}

/// The throttle refuses passwords longer than any user can have without checking them; the two
/// bounds live in modules that must not depend on each other, so they are held together here.
#[test]
fn the_longest_password_checked_is_the_longest_a_user_can_set() {
    assert_eq!(umkm_api::auth::throttle::MAX_SECRET_CHARS, umkm_api::users::MAX_PASSWORD_CHARS);
}

/// Issue 28, item 5: a token ends with the event that should end it. A password change (by the
/// API or the command line), a new role and a disable each end the tokens issued before; a
/// user enabled again gets no old token back.
#[actix_rt::test]
async fn tokens_end_with_a_password_change_a_new_role_or_a_disable() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let id = app.create_user("staf@test.example", Role::Officer, None);
    let path = format!("/api/v1/users/{id}");
    let me = "/api/v1/auth/me";

    let before = app.login("staf@test.example", PASSWORD).await;
    let reply =
        app.patch(&path).token(&admin).json(&json!({"password": "another long passphrase"})).send().await;
    assert_eq!(reply.status, 200);
    app.get(me).token(&before).send().await.assert_problem(401);
    let after = app.login("staf@test.example", "another long passphrase").await;
    assert_eq!(app.get(me).token(&after).send().await.status, 200);

    // The command line's reset (another process: this instance learns of it within the bound).
    app.db(|c| umkm_api::users::reset_password(c, "staf@test.example", PASSWORD)).unwrap();
    until_status(&app, &after, me, 401).await;
    let current = app.login("staf@test.example", PASSWORD).await;

    let reply = app.patch(&path).token(&admin).json(&json!({"role": "viewer"})).send().await;
    assert_eq!(reply.status, 200);
    app.get(me).token(&current).send().await.assert_problem(401);
    let viewer = app.login("staf@test.example", PASSWORD).await;

    assert_eq!(app.patch(&path).token(&admin).json(&json!({"disabled": true})).send().await.status, 200);
    app.get(me).token(&viewer).send().await.assert_problem(401);
    assert_eq!(app.patch(&path).token(&admin).json(&json!({"disabled": false})).send().await.status, 200);
    let problem = app.get(me).token(&viewer).send().await.assert_problem(401);
    assert!(problem["detail"].as_str().unwrap().contains("log in again"), "{problem}");
    let fresh = app.login("staf@test.example", PASSWORD).await;
    assert_eq!(app.get(me).token(&fresh).send().await.json()["role"], "viewer");
}

/// Issue 28, item 7: a token names the deployment that issued it. Another deployment's database
/// with the same `JWT_SECRET` (a staging copy) refuses it, though a user of that id exists there.
#[actix_rt::test]
async fn a_token_of_one_deployment_is_refused_by_another_with_the_same_secret() {
    let production = spawn_app().await;
    let staging = spawn_app().await;
    let token = production.token_for(Role::Admin).await;
    let local = staging.token_for(Role::Admin).await;
    let (ours, theirs) = (
        production.get("/api/v1/auth/me").token(&token).send().await.json(),
        staging.get("/api/v1/auth/me").token(&local).send().await.json(),
    );
    assert_eq!(ours["id"], theirs["id"], "the same user id exists in both");
    let problem = staging.get("/api/v1/auth/me").token(&token).send().await.assert_problem(401);
    assert!(problem["detail"].as_str().unwrap().contains("deployment"), "{problem}");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert!(claims["iss"].as_str().is_some_and(|i| !i.is_empty()), "{claims}");
    assert_eq!(claims["aud"], claims["iss"], "{claims}");
}
