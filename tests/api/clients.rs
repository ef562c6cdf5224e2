//! API clients and the OAuth 2.0 client credentials grant: a partner's system gets a token with
//! its client id and secret, its token reaches only what its scopes and its partner allow,
//! secrets rotate and are revoked, and the grant's errors are OAuth's JSON.

use base64::Engine;
use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{Reply, TestApp, apply, consenting_business, spawn_app};

const BRI: i64 = 1;
const BNI: i64 = 2;
const BRI_KUR_MIKRO: i64 = 2;
const TOKEN: &str = "/api/v1/auth/token";
const FORM: &str = "application/x-www-form-urlencoded";

async fn create_client(app: &TestApp, admin: &str, body: Value) -> Value {
    let reply = app.post("/api/v1/api-clients").token(admin).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

/// A grant with `client_secret_basic`.
async fn grant_basic(app: &TestApp, id: &str, secret: &str, form: &str) -> Reply {
    app.post(TOKEN).header("authorization", &basic(id, secret)).raw(FORM, form.to_owned()).send().await
}

fn assert_oauth_error(reply: &Reply, status: u16, error: &str) {
    assert_eq!(reply.status, status, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[actix_rt::test]
async fn a_bank_client_gets_a_token_and_reaches_only_its_scopes_and_its_bank() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let business = consenting_business(&app, &officer, 1).await;
    let application =
        apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    let issued =
        create_client(&app, &admin, json!({"bank_partner_id": BRI, "scopes": ["applicants:read"]})).await;
    let (id, secret) =
        (issued["client"]["client_id"].as_str().unwrap(), issued["client_secret"].as_str().unwrap());
    assert_eq!(issued["client"]["role"], "bank");
    assert_eq!(issued["client"]["scopes"], json!(["applicants:read"]));
    let stored: String = app
        .db(|conn| {
            use diesel::prelude::*;
            use umkm_api::db::schema::client_secrets;
            client_secrets::table.select(client_secrets::secret_hash).first(conn)
        })
        .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(secret), "stored as a hash only");
    let listed =
        app.get(&format!("/api/v1/api-clients/{}", issued["client"]["id"])).token(&admin).send().await.json();
    assert!(!listed.to_string().contains(secret), "the secret is shown once");

    // client_secret_basic.
    let reply = grant_basic(&app, id, secret, "grant_type=client_credentials").await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "applicants:read");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    let token = body["access_token"].as_str().unwrap().to_owned();

    let pull =
        app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants")).token(&token).send().await;
    assert_eq!(pull.status, 200);
    assert_eq!(pull.json()["data"][0]["application_id"], application);
    app.get(&format!("/api/v1/bank-partners/{BNI}/eligible-applicants"))
        .token(&token)
        .send()
        .await
        .assert_problem(404);
    // A scope it lacks, and what no scope reaches.
    let problem = app
        .patch(&format!("/api/v1/applications/{application}"))
        .token(&token)
        .json(&json!({"status": "in_review"}))
        .send()
        .await
        .assert_problem(403);
    assert_eq!(problem["type"], "urn:umkm-api:problem:insufficient_scope");
    assert!(problem["detail"].as_str().unwrap().contains("applications:write"));
    app.get("/api/v1/users").token(&token).send().await.assert_problem(403);
    app.get("/api/v1/stats/financing?group_by=status").token(&token).send().await.assert_problem(403);
    assert_eq!(app.get("/api/v1/auth/me").token(&token).send().await.json()["role"], "bank");

    // client_secret_post, asking for fewer scopes than held is fine; more is invalid_scope.
    let form = format!(
        "grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=applicants%3Aread"
    );
    let reply = app.post(TOKEN).raw(FORM, form).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let reply =
        grant_basic(&app, id, secret, "grant_type=client_credentials&scope=applications%3Awrite").await;
    assert_oauth_error(&reply, 400, "invalid_scope");

    // A person's login with the client id gets nothing.
    let reply = app.post(TOKEN).json(&json!({"email": id, "password": secret})).send().await;
    reply.assert_problem(401);
    // `/users` lists people only.
    let users = app.get("/api/v1/users").token(&admin).send().await.json();
    assert!(users["data"].as_array().unwrap().iter().all(|u| u["email"] != id));
}

#[actix_rt::test]
async fn wrong_secrets_rotation_and_revocation() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let issued = create_client(
        &app,
        &admin,
        json!({"bank_partner_id": BRI, "scopes": ["applicants:read", "stats:read"]}),
    )
    .await;
    let client = issued["client"]["id"].as_i64().unwrap();
    let id = issued["client"]["client_id"].as_str().unwrap().to_owned();
    let first = issued["client_secret"].as_str().unwrap().to_owned();
    let first_id = issued["secret_id"].as_i64().unwrap();

    let reply = grant_basic(&app, &id, "not-the-secret", "grant_type=client_credentials").await;
    assert_oauth_error(&reply, 401, "invalid_client");
    assert_eq!(reply.header("www-authenticate").as_deref(), Some("Basic realm=\"umkm-api\""));
    let reply = grant_basic(&app, "umkm-nobody", &first, "grant_type=client_credentials").await;
    assert_oauth_error(&reply, 401, "invalid_client");

    // Rotation: a second secret, both work; a third is refused while two are active.
    let path = format!("/api/v1/api-clients/{client}/secrets");
    let rotated = app.post(&path).token(&admin).send().await;
    assert_eq!(rotated.status, 201);
    let second = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    for secret in [&first, &second] {
        assert_eq!(grant_basic(&app, &id, secret, "grant_type=client_credentials").await.status, 200);
    }
    app.post(&path).token(&admin).send().await.assert_problem(409);
    let reply = app.delete(&format!("{path}/{first_id}")).token(&admin).send().await;
    assert_eq!(reply.status, 204);
    let reply = grant_basic(&app, &id, &first, "grant_type=client_credentials").await;
    assert_oauth_error(&reply, 401, "invalid_client");
    let reply = grant_basic(&app, &id, &second, "grant_type=client_credentials").await;
    assert_eq!(reply.status, 200);
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let shown = app.get(&format!("/api/v1/api-clients/{client}")).token(&admin).send().await.json();
    let secrets = shown["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(secrets.iter().any(|s| s["id"] == first_id && s["revoked_at"].is_string()));
    assert!(shown["last_used_at"].is_string());

    // Revoking the client stops its token and its secrets.
    assert_eq!(app.get("/api/v1/stats/financing?group_by=status").token(&token).send().await.status, 200);
    let reply = app.delete(&format!("/api/v1/api-clients/{client}")).token(&admin).send().await;
    assert_eq!(reply.status, 204);
    app.get("/api/v1/stats/financing?group_by=status").token(&token).send().await.assert_problem(401);
    let reply = grant_basic(&app, &id, &second, "grant_type=client_credentials").await;
    assert_oauth_error(&reply, 401, "invalid_client");
    let listed = app.get("/api/v1/api-clients").token(&admin).send().await.json();
    assert_eq!(listed[0]["revoked"], true);
}

#[actix_rt::test]
async fn malformed_grants_get_oauth_errors_and_only_admins_manage_clients() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let issued =
        create_client(&app, &admin, json!({"retail_partner_id": 1, "scopes": ["curations:write"]})).await;
    let id = issued["client"]["client_id"].as_str().unwrap().to_owned();
    let secret = issued["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(issued["client"]["role"], "retail");

    let reply = grant_basic(&app, &id, &secret, "grant_type=password&username=x&password=y").await;
    assert_oauth_error(&reply, 400, "unsupported_grant_type");
    let reply = app.post(TOKEN).raw(FORM, "grant_type=client_credentials").send().await;
    assert_oauth_error(&reply, 401, "invalid_client");
    let both = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let reply = app.post(TOKEN).header("authorization", &basic(&id, &secret)).raw(FORM, both).send().await;
    assert_oauth_error(&reply, 400, "invalid_request");
    let reply =
        grant_basic(&app, &id, &secret, "grant_type=client_credentials&grant_type=client_credentials").await;
    assert_oauth_error(&reply, 400, "invalid_request");
    let reply = grant_basic(&app, &id, &secret, "grant_type=client_credentials&scope=root").await;
    assert_oauth_error(&reply, 400, "invalid_scope");
    let reply = app
        .post(TOKEN)
        .header("authorization", "Basic !!!")
        .raw(FORM, "grant_type=client_credentials")
        .send()
        .await;
    assert_oauth_error(&reply, 401, "invalid_client");
    // Another media type is still a problem document.
    app.post(TOKEN).raw("text/plain", "grant_type=client_credentials").send().await.assert_problem(415);

    // Creating: a scope of the other partner kind, no partner, both partners, an unknown partner.
    for body in [
        json!({"retail_partner_id": 1, "scopes": ["applicants:read"]}),
        json!({"scopes": ["stats:read"]}),
        json!({"bank_partner_id": BRI, "retail_partner_id": 1, "scopes": ["stats:read"]}),
        json!({"bank_partner_id": 999, "scopes": ["stats:read"]}),
        json!({"bank_partner_id": BRI, "scopes": []}),
        json!({"bank_partner_id": BRI, "scopes": ["root"]}),
    ] {
        app.post("/api/v1/api-clients").token(&admin).json(&body).send().await.assert_problem(422);
    }
    assert_eq!(app.get("/api/v1/api-clients").token(&admin).send().await.json().as_array().unwrap().len(), 1);
    for role in [Role::Officer, Role::Bank, Role::Retail, Role::Viewer] {
        let token = app.token_for(role).await;
        let body = json!({"bank_partner_id": BRI, "scopes": ["stats:read"]});
        app.post("/api/v1/api-clients").token(&token).json(&body).send().await.assert_problem(403);
        app.get("/api/v1/api-clients").token(&token).send().await.assert_problem(403);
    }
}

/// Eight rotations at once for a client with one active secret: exactly one gets a second
/// secret, the others 409 (on PostgreSQL the client's row is locked before the count).
#[actix_rt::test]
async fn concurrent_rotations_leave_at_most_two_active_secrets() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let issued = create_client(&app, &admin, json!({"bank_partner_id": BRI, "scopes": ["stats:read"]})).await;
    let path = format!("/api/v1/api-clients/{}/secrets", issued["client"]["id"]);
    let replies = join_all((0..8).map(|_| app.post(&path).token(&admin).send())).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.count("client_secrets WHERE revoked_at IS NULL"), 2);
}

/// Issue 28, item 3: a client id is not a secret (RFC 6749 §2.2). Whoever knows it and sends
/// wrong secrets locks out their own source, never the bank's system with the right secret.
#[actix_rt::test]
async fn wrong_secrets_from_one_source_do_not_lock_the_bank_out() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let issued =
        create_client(&app, &admin, json!({"bank_partner_id": BRI, "scopes": ["applicants:read"]})).await;
    let id = issued["client"]["client_id"].as_str().unwrap().to_owned();
    let secret = issued["client_secret"].as_str().unwrap().to_owned();
    let attacker: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let from_attacker = |secret: String| {
        app.post(TOKEN)
            .from(attacker)
            .header("authorization", &basic(&id, &secret))
            .raw(FORM, "grant_type=client_credentials")
            .send()
    };
    for _ in 0..umkm_api::auth::LOGIN_MAX_FAILURES {
        assert_oauth_error(&from_attacker("wrong".into()).await, 401, "invalid_client");
    }
    assert_oauth_error(&from_attacker(secret.clone()).await, 429, "invalid_client");
    let reply = grant_basic(&app, &id, &secret, "grant_type=client_credentials").await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
}

/// Issue 28, item 5: a token minted with a secret stops working when that secret is revoked;
/// a token of the client's other secret keeps working.
#[actix_rt::test]
async fn a_token_ends_with_the_secret_that_minted_it() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let issued = create_client(&app, &admin, json!({"bank_partner_id": BRI, "scopes": ["stats:read"]})).await;
    let (client, id) =
        (issued["client"]["id"].as_i64().unwrap(), issued["client"]["client_id"].as_str().unwrap());
    let (first, first_id) =
        (issued["client_secret"].as_str().unwrap(), issued["secret_id"].as_i64().unwrap());
    let rotated =
        app.post(&format!("/api/v1/api-clients/{client}/secrets")).token(&admin).send().await.json();
    let second = rotated["client_secret"].as_str().unwrap();
    let token = |reply: Reply| reply.json()["access_token"].as_str().unwrap().to_owned();
    let old = token(grant_basic(&app, id, first, "grant_type=client_credentials").await);
    let new = token(grant_basic(&app, id, second, "grant_type=client_credentials").await);
    let stats = "/api/v1/stats/financing?group_by=status";
    assert_eq!(app.get(stats).token(&old).send().await.status, 200);

    let path = format!("/api/v1/api-clients/{client}/secrets/{first_id}");
    assert_eq!(app.delete(&path).token(&admin).send().await.status, 204);
    app.get(stats).token(&old).send().await.assert_problem(401);
    assert_eq!(app.get(stats).token(&new).send().await.status, 200);
}

/// Issue 28, item 6: `/users/{id}` manages people; an API client is not one (404), so it can
/// neither be un-revoked, moved to another bank nor made an admin there.
#[actix_rt::test]
async fn the_users_endpoints_do_not_reach_api_clients() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let issued =
        create_client(&app, &admin, json!({"bank_partner_id": BRI, "scopes": ["applicants:read"]})).await;
    let client = issued["client"]["id"].as_i64().unwrap();
    let (id, secret) =
        (issued["client"]["client_id"].as_str().unwrap(), issued["client_secret"].as_str().unwrap());
    let token = grant_basic(&app, id, secret, "grant_type=client_credentials").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/users/{client}");
    app.get(&path).token(&admin).send().await.assert_problem(404);
    for patch in [json!({"bank_partner_id": BNI}), json!({"role": "admin"}), json!({"disabled": false})] {
        app.patch(&path).token(&admin).json(&patch).send().await.assert_problem(404);
    }
    app.delete(&path).token(&admin).send().await.assert_problem(404);
    let shown = app.get(&format!("/api/v1/api-clients/{client}")).token(&admin).send().await.json();
    assert_eq!((shown["role"].as_str(), shown["bank_partner_id"].as_i64()), (Some("bank"), Some(BRI)));
    let pull =
        app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants")).token(&token).send().await;
    assert_eq!(pull.status, 200);

    // Revoked, it stays revoked: `/users` cannot enable it again.
    assert_eq!(app.delete(&format!("/api/v1/api-clients/{client}")).token(&admin).send().await.status, 204);
    app.patch(&path).token(&admin).json(&json!({"disabled": false})).send().await.assert_problem(404);
    let shown = app.get(&format!("/api/v1/api-clients/{client}")).token(&admin).send().await.json();
    assert_eq!(shown["revoked"], true);
    app.get(&format!("/api/v1/bank-partners/{BRI}/eligible-applicants"))
        .token(&token)
        .send()
        .await
        .assert_problem(401);
}

/// Issue 28, item 15: an API client has a version and an `ETag`; a stale `If-Match` is 412 and
/// changes nothing; a new secret answers 201 with its `Location`.
#[actix_rt::test]
async fn api_clients_have_versions_and_a_new_secret_has_a_location() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let issued = create_client(&app, &admin, json!({"bank_partner_id": BRI, "scopes": ["stats:read"]})).await;
    let client = issued["client"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/api-clients/{client}");
    let read = app.get(&path).token(&admin).send().await;
    let version = read.json()["version"].as_i64().expect("a version");
    assert_eq!((version, read.header("etag")), (1, Some("\"1\"".to_owned())), "a new client is at 1");

    let rotated = app.post(&format!("{path}/secrets")).token(&admin).send().await;
    assert_eq!(rotated.status, 201);
    let secret_id = rotated.json()["secret_id"].as_i64().unwrap();
    assert_eq!(rotated.header("location"), Some(format!("{path}/secrets/{secret_id}")));
    let shown = app.get(&format!("{path}/secrets/{secret_id}")).token(&admin).send().await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json()["id"], secret_id);
    let now = app.get(&path).token(&admin).send().await.json()["version"].as_i64().unwrap();
    assert!(now > version, "a new secret changes the client");

    let stale = format!("\"{version}\"");
    let revoke_secret = format!("{path}/secrets/{secret_id}");
    app.delete(&revoke_secret).token(&admin).header("if-match", &stale).send().await.assert_problem(412);
    app.delete(&path).token(&admin).header("if-match", &stale).send().await.assert_problem(412);
    let shown = app.get(&path).token(&admin).send().await.json();
    assert_eq!(shown["revoked"], false);
    assert!(shown["secrets"].as_array().unwrap().iter().all(|s| s["revoked_at"].is_null()));
    let reply = app.delete(&path).token(&admin).header("if-match", &format!("\"{now}\"")).send().await;
    assert_eq!(reply.status, 204);
}
