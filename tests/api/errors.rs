use actix_web::http::Method;
use diesel::prelude::*;
use serde_json::json;
use umkm_api::db::schema::users;
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, business_json, spawn_app, spawn_app_with};

fn user_count(app: &TestApp) -> i64 {
    app.db(|c| users::table.count().get_result(c)).unwrap()
}

fn new_user() -> serde_json::Value {
    json!({"email": "new@test.example", "password": "a long enough password", "role": "viewer"})
}

#[actix_rt::test]
async fn a_viewer_calling_an_admin_endpoint_is_403() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Viewer).await;
    let before = user_count(&app);
    app.get("/api/v1/users").token(&token).send().await.assert_problem(403);
    app.post("/api/v1/users").token(&token).json(&new_user()).send().await.assert_problem(403);
    assert_eq!(user_count(&app), before);
}

#[actix_rt::test]
async fn malformed_json_is_400_and_writes_nothing() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    let before = user_count(&app);
    for body in [&b"{\"email\": "[..], b"not json", b"", b"{\"email\": \"a@b\",}"] {
        let reply =
            app.post("/api/v1/users").token(&token).raw("application/json", body.to_vec()).send().await;
        let problem = reply.assert_problem(400);
        assert!(problem["detail"].as_str().unwrap().contains("malformed JSON"), "{problem}");
    }
    assert_eq!(user_count(&app), before);
}

#[actix_rt::test]
async fn unknown_fields_and_wrong_types_are_422_naming_the_field() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    let before = user_count(&app);

    let mut body = new_user();
    body["is_superuser"] = json!(true);
    let problem = app.post("/api/v1/users").token(&token).json(&body).send().await.assert_problem(422);
    assert_eq!(
        problem["errors"],
        json!([{"field": "is_superuser", "code": "unknown_field",
        "message": "is not a field of this resource"}])
    );

    let mut body = new_user();
    body["role"] = json!("superuser");
    let problem = app.post("/api/v1/users").token(&token).json(&body).send().await.assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "role");

    let problem = app
        .post("/api/v1/users")
        .token(&token)
        .json(&json!({"email": "x@y", "role": "viewer"}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "password");
    assert_eq!(problem["errors"][0]["code"], "required");

    // serde would read an array as the fields in order: a body must be an object.
    let positional = json!(["x@y.test", "a long passphrase", "viewer"]);
    let problem = app.post("/api/v1/users").token(&token).json(&positional).send().await.assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "body");
    let admin_id = app.get("/api/v1/auth/me").token(&token).send().await.json()["id"].clone();
    for patch in [json!([]), json!("viewer"), json!(null)] {
        app.patch(&format!("/api/v1/users/{admin_id}"))
            .token(&token)
            .json(&patch)
            .send()
            .await
            .assert_problem(422);
    }
    // A null for a field a merge-patched record does not have is refused, not dropped.
    let bank = app
        .post("/api/v1/bank-partners")
        .token(&token)
        .json(&json!({"code": "TST", "name": "Bank Uji"}))
        .send()
        .await
        .json()["id"]
        .clone();
    let problem = app
        .patch(&format!("/api/v1/bank-partners/{bank}"))
        .token(&token)
        .json(&json!({"colour": null}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "colour");
    assert_eq!(user_count(&app), before);
}

#[actix_rt::test]
async fn validation_lists_every_bad_field_at_once() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    let problem = app
        .post("/api/v1/users")
        .token(&token)
        .json(&json!({"email": "not an email", "password": "short", "role": "officer", "bank_partner_id": 1}))
        .send()
        .await
        .assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "password", "bank_partner_id"]);
    assert_eq!(problem["detail"], "3 fields are invalid");
}

#[actix_rt::test]
async fn a_body_that_is_not_json_is_415() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    let before = user_count(&app);
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
        let reply = app.post("/api/v1/users").token(&token).raw(content_type, "email=a").send().await;
        reply.assert_problem(415);
    }
    let reply = app.post("/api/v1/auth/token").send().await;
    reply.assert_problem(415);
    assert_eq!(user_count(&app), before);
}

#[actix_rt::test]
async fn an_oversized_body_is_413() {
    // A small limit, so that the refused body fits the socket buffers and the client reads the answer.
    let app = spawn_app_with(|c| c.max_body_bytes = 16 * 1024).await;
    let token = app.token_for(Role::Admin).await;
    let mut body = new_user();
    body["email"] = json!("x".repeat(16 * 1024 + 1));
    let problem = app.post("/api/v1/users").token(&token).json(&body).send().await.assert_problem(413);
    assert!(problem["detail"].as_str().unwrap().contains("16384"));
    let csv = format!("name\n{}\n", "x".repeat(16 * 1024));
    app.post("/api/v1/businesses/import").token(&token).raw("text/csv", csv).send().await.assert_problem(413);
    assert_eq!(user_count(&app), 1);
}

#[actix_rt::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problems() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    app.get("/api/v1/no-such-thing").token(&token).send().await.assert_problem(404);
    app.get("/nothing/here").send().await.assert_problem(404);

    let reply = app.call(actix_web::http::Method::PUT, "/api/v1/users/1").token(&token).send().await;
    reply.assert_problem(405);
    assert_eq!(reply.header("allow").as_deref(), Some("GET, PATCH, DELETE"));
    let reply = app.delete("/api/v1/auth/token").send().await;
    reply.assert_problem(405);
    assert_eq!(reply.header("allow").as_deref(), Some("POST"));
}

#[actix_rt::test]
async fn bad_path_and_query_parameters_are_400() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    app.get("/api/v1/users/abc").token(&token).send().await.assert_problem(400);
    app.get("/api/v1/users/99999999999999999999").token(&token).send().await.assert_problem(400);
    let problem = app.get("/api/v1/users?colour=red").token(&token).send().await.assert_problem(400);
    assert!(problem["detail"].as_str().unwrap().contains("colour"));
    app.get("/api/v1/users?limit=many").token(&token).send().await.assert_problem(400);
    app.get("/api/v1/users?limit=501").token(&token).send().await.assert_problem(400);
    app.get("/api/v1/users?cursor=bm90LWEtY3Vyc29y").token(&token).send().await.assert_problem(400);
    app.get("/api/v1/regions?level=planet").token(&token).send().await.assert_problem(400);
    // A NUL, which PostgreSQL's text cannot hold (it was a 500 there), in a query or a path.
    let problem = app.get("/api/v1/regions?parent=35%0024").token(&token).send().await.assert_problem(400);
    assert!(problem["detail"].as_str().unwrap().contains("NUL"));
    app.get("/api/v1/regions/35%00").token(&token).send().await.assert_problem(400);
    // An injection attempt in a filter is only a value that matches nothing.
    let reply = app.get("/api/v1/regions?parent=35.24%27%20OR%20%271%27%3D%271").token(&token).send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["data"], json!([]));
}

#[actix_rt::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let echoed = app.get("/healthz").header("x-request-id", "client-id-123").send().await;
    assert_eq!(echoed.header("x-request-id").as_deref(), Some("client-id-123"));

    let fresh = app.get("/healthz").send().await;
    let id = fresh.header("x-request-id").unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    // A value that could forge log lines is replaced, not echoed.
    let replaced = app.get("/nothing").header("x-request-id", "evil id\tinjected").send().await;
    replaced.assert_problem(404);
    let id = replaced.header("x-request-id").unwrap();
    assert_ne!(id, "evil id\tinjected");
    assert_eq!(id.len(), 36);
    assert_eq!(replaced.header("x-content-type-options").as_deref(), Some("nosniff"));
}

#[actix_rt::test]
async fn cors_allows_only_the_configured_origins() {
    let app = spawn_app().await;
    let preflight = |origin: &str| {
        app.call(actix_web::http::Method::OPTIONS, "/api/v1/regions")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let allowed = preflight("https://app.example.test").send().await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin").as_deref(), Some("https://app.example.test"));

    // Refused, preflight or not: a problem document like every other answer, with its request id.
    let refused = preflight("https://evil.example").send().await;
    let problem = refused.assert_problem(400);
    assert!(problem["detail"].as_str().unwrap().contains("origin"), "{problem}");
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert!(refused.header("x-request-id").is_some());
    let simple = app.get("/api/v1/regions").header("origin", "https://evil.example").send().await;
    simple.assert_problem(400);
    assert_eq!(simple.header("access-control-allow-origin"), None);
    // Without an Origin (not a browser's cross-origin call) nothing changes.
    assert_eq!(app.get("/healthz").send().await.status, 200);
}

#[actix_rt::test]
async fn security_headers_on_every_kind_of_answer() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    app.create_business(&admin, &business_json(1)).await;
    let with_token = [
        app.get("/api/v1/businesses").token(&admin).send().await,
        app.get("/api/v1/businesses").token(&admin).header("accept", "text/csv").send().await,
        app.get("/api/v1/businesses/999999").token(&admin).send().await,
        app.post("/api/v1/businesses").token(&admin).json(&json!({"name": ""})).send().await,
        app.get("/api/v1/auth/me").token(&admin).send().await,
        app.get("/api/v1/businesses").token("not-a-token").send().await,
    ];
    for reply in &with_token {
        assert_eq!(reply.header("x-content-type-options").as_deref(), Some("nosniff"), "{}", reply.status);
        assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"), "{}", reply.status);
    }
    assert_eq!(
        with_token.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>(),
        [200, 200, 404, 422, 200, 401]
    );
    for path in ["/healthz", "/docs/", "/api/v1/businesses", "/nothing"] {
        let reply = app.get(path).send().await;
        assert_eq!(reply.header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
    }

    // A simple cross-origin request: the allowed origin is named back, any other is not.
    let allowed =
        app.get("/api/v1/regions").token(&admin).header("origin", "https://app.example.test").send().await;
    assert_eq!(allowed.header("access-control-allow-origin").as_deref(), Some("https://app.example.test"));
    let other =
        app.get("/api/v1/regions").token(&admin).header("origin", "https://evil.example").send().await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    // With no origins configured, no origin is allowed.
    let closed = spawn_app_with(|config| config.cors_allowed_origins.clear()).await;
    let reply = closed.get("/healthz").header("origin", "https://app.example.test").send().await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[actix_rt::test]
async fn a_wrong_method_on_a_literal_segment_is_405_not_a_bad_id() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Admin).await;
    for method in [Method::GET, Method::PATCH, Method::DELETE, Method::PUT] {
        let reply = app.call(method.clone(), "/api/v1/businesses/import").token(&token).send().await;
        let problem = reply.assert_problem(405);
        assert_eq!(reply.header("allow").as_deref(), Some("POST"), "{method}: {problem}");
    }
    let reply = app.get("/api/v1/trainings/1/selection").token(&token).send().await;
    reply.assert_problem(405);
    assert_eq!(reply.header("allow").as_deref(), Some("POST"));
    // A malformed id on a route that exists for that method is still a 400.
    app.get("/api/v1/businesses/abc").token(&token).send().await.assert_problem(400);
}

/// The fields of a 422, sorted.
fn bad_fields(problem: &serde_json::Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields
}

#[actix_rt::test]
async fn one_422_names_format_and_database_problems_together() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let tables = ["businesses", "products", "outlets", "financing_programmes", "applications", "curations"];
    let before: Vec<i64> = tables.iter().map(|t| app.count(t)).collect();

    let mut business = business_json(1);
    business["owner_nik"] = json!("12");
    business["district_code"] = json!("35.24.99");
    let problem =
        app.post("/api/v1/businesses").token(&officer).json(&business).send().await.assert_problem(422);
    assert_eq!(bad_fields(&problem), ["district_code", "owner_nik"]);

    let product = json!({"business_id": 999_999, "name": "", "category": "food"});
    let problem =
        app.post("/api/v1/products").token(&officer).json(&product).send().await.assert_problem(422);
    assert_eq!(bad_fields(&problem), ["business_id", "name"]);

    let outlet = json!({"code": "X1", "name": "", "district_code": "35.24.99"});
    let problem = app.post("/api/v1/outlets").token(&retail).json(&outlet).send().await.assert_problem(422);
    assert_eq!(bad_fields(&problem), ["district_code", "name"]);

    let programme = json!({"bank_partner_id": 999, "name": "", "kind": "commercial", "min_amount_idr": 1,
                           "max_amount_idr": 2, "interest_rate_bp": 900, "min_business_age_months": 0,
                           "eligible_scales": ["mikro"], "requires_nib": true, "open": true});
    let problem =
        app.post("/api/v1/programmes").token(&officer).json(&programme).send().await.assert_problem(422);
    assert_eq!(bad_fields(&problem), ["bank_partner_id", "name"]);

    let application = json!({"business_id": 999_999, "programme_id": 999, "amount_requested_idr": 0});
    let problem =
        app.post("/api/v1/applications").token(&officer).json(&application).send().await.assert_problem(422);
    assert_eq!(bad_fields(&problem), ["amount_requested_idr", "business_id", "programme_id"]);

    let curation = json!({"product_id": 999_999, "retail_partner_id": 999, "notes": "x".repeat(5000)});
    let problem =
        app.post("/api/v1/curations").token(&officer).json(&curation).send().await.assert_problem(422);
    assert_eq!(bad_fields(&problem), ["notes", "product_id", "retail_partner_id"]);

    let after: Vec<i64> = tables.iter().map(|t| app.count(t)).collect();
    assert_eq!(before, after, "a refused body changes nothing");
}

/// `Accept-Language: id`: the same problem in Bahasa Indonesia, codes and fields unchanged, as
/// an officer's app shows it; English otherwise. Every role gets it (a bank user here).
#[actix_rt::test]
async fn problems_come_in_bahasa_indonesia_when_asked() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut body = business_json(1);
    body.as_object_mut().unwrap().remove("name");
    body["owner_nik"] = json!("12");
    let english = app.post("/api/v1/businesses").token(&officer).json(&body).send().await;
    let indonesian = app
        .post("/api/v1/businesses")
        .token(&officer)
        .header("Accept-Language", "id-ID,id;q=0.9,en;q=0.8")
        .json(&body)
        .send()
        .await;
    assert_eq!(english.header("content-language").as_deref(), Some("en"));
    assert_eq!(indonesian.header("content-language").as_deref(), Some("id"));
    let (en, id) = (english.assert_problem(422), indonesian.assert_problem(422));
    assert_eq!(en["title"], "Validation failed");
    assert_eq!(id["title"], "Validasi gagal");
    assert_eq!(id["detail"], "2 isian tidak valid");
    assert_eq!(en["type"], id["type"]);
    let fields = |p: &serde_json::Value| {
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].clone(), e["code"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(&en), fields(&id), "fields and codes are not translated");
    let required = id["errors"].as_array().unwrap().iter().find(|e| e["field"] == "name").unwrap();
    assert_eq!(required["message"], "wajib diisi");
    for (e, i) in en["errors"].as_array().unwrap().iter().zip(id["errors"].as_array().unwrap()) {
        assert_ne!(e["message"], i["message"], "{e} has no Indonesian");
    }
    assert_eq!(app.count("businesses"), 0);

    let bank = crate::helpers::bank_token(&app, 1).await;
    let reply = app.get("/api/v1/businesses/1").token(&bank).header("Accept-Language", "id").send().await;
    assert_eq!(reply.header("content-language").as_deref(), Some("id"));
    assert_eq!(reply.assert_problem(404)["title"], "Tidak ditemukan");
    // English wins when it is preferred; a success carries no Content-Language.
    let reply =
        app.get("/api/v1/businesses/1").token(&bank).header("Accept-Language", "en, id;q=0.5").send().await;
    assert_eq!(reply.assert_problem(404)["title"], "Not found");
    let ok = app.get("/api/v1/regions").token(&bank).header("Accept-Language", "id").send().await;
    assert_eq!((ok.status.as_u16(), ok.header("content-language")), (200, None));
}

/// PostgreSQL cannot store a NUL (SQLite can): a NUL anywhere in a JSON body is refused by its
/// field, on both back ends alike, and the free texts refuse the other control characters
/// too. Found with applications' `purpose` and `bank_reference`, a user's e-mail and a login,
/// which answered 500 on PostgreSQL.
#[actix_rt::test]
async fn nul_and_control_characters_in_texts_are_422_and_change_nothing() {
    const BRI: i64 = 1;
    const BRI_KUR_MIKRO: i64 = 2;
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let business = crate::helpers::consenting_business(&app, &officer, 1).await;
    let filed = crate::helpers::apply(&app, &officer, business, BRI_KUR_MIKRO, 5_000_000).await;
    let application = format!("/api/v1/applications/{}", filed["id"]);
    let bri = crate::helpers::bank_token(&app, BRI).await;
    let users_before = user_count(&app);
    let mut named = business_json(2);
    named["name"] = json!("Kedai\u{0}Elok");
    let user = |field: &str, value: &str| {
        let mut user = new_user();
        user[field] = json!(value);
        user
    };
    let cases = [
        (Method::POST, "/api/v1/businesses", &officer, named, "name"),
        (
            Method::POST,
            "/api/v1/applications",
            &officer,
            json!({"business_id": business, "programme_id": BRI_KUR_MIKRO,
                   "amount_requested_idr": 1_000_000, "purpose": "modal\u{0}kerja"}),
            "purpose",
        ),
        (Method::PATCH, &application, &bri, json!({"bank_reference": "BRI\u{0}1"}), "bank_reference"),
        (Method::PATCH, &application, &bri, json!({"bank_reference": "BRI\u{1b}1"}), "bank_reference"),
        (Method::PATCH, &application, &officer, json!({"purpose": "modal\u{7}"}), "purpose"),
        (Method::POST, "/api/v1/users", &admin, user("email", "a\u{0}b@test.example"), "email"),
        (Method::POST, "/api/v1/users", &admin, user("email", "a\u{1}b@test.example"), "email"),
        (Method::POST, "/api/v1/users", &admin, user("password", "a long enough\u{0}password"), "password"),
    ];
    for (method, path, token, body, field) in cases {
        let reply = app.call(method.clone(), path).token(token).json(&body).send().await;
        let problem = reply.assert_problem(422);
        assert_eq!(problem["errors"][0]["field"], field, "{method} {path} {body}: {problem}");
        assert_eq!(problem["errors"][0]["code"], "invalid_format", "{method} {path}: {problem}");
    }
    assert_eq!(app.count("businesses"), 1);
    assert_eq!(app.count("applications"), 1);
    assert_eq!(user_count(&app), users_before);
    let kept = app.get(&application).token(&officer).send().await.json();
    assert_eq!((kept["purpose"].as_str(), kept["bank_reference"].as_str()), (Some("modal kerja"), None));

    // A login naming a NUL is a bad field, not an unknown user; a client id with one names no
    // client.
    let login = json!({"email": "admin\u{0}@test.example", "password": "whatever it is"});
    let problem = app.post("/api/v1/auth/token").json(&login).send().await.assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "email");
    let form = "grant_type=client_credentials&client_id=umkm%00x&client_secret=s";
    let reply = app
        .post("/api/v1/auth/token")
        .raw("application/x-www-form-urlencoded", form.as_bytes().to_vec())
        .send()
        .await;
    assert_eq!(reply.status, 401, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["error"], "invalid_client");
}

/// Issue 28, item 18: a cache between a browser and the API must key an answer to an allowed
/// origin by that origin, problems included: `Vary` names `Origin` beside `Accept-Language`.
#[actix_rt::test]
async fn problems_to_an_allowed_origin_vary_by_origin_and_language() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Viewer).await;
    let reply = app
        .get("/api/v1/businesses/999999")
        .token(&token)
        .header("origin", "https://app.example.test")
        .send()
        .await;
    reply.assert_problem(404);
    assert_eq!(reply.header("access-control-allow-origin").as_deref(), Some("https://app.example.test"));
    let vary: Vec<String> = reply
        .headers
        .get_all("vary")
        .flat_map(|v| v.to_str().unwrap().split(',').map(|s| s.trim().to_lowercase()).collect::<Vec<_>>())
        .collect();
    for needed in ["origin", "accept-language"] {
        assert!(vary.iter().any(|v| v == needed), "Vary {vary:?} lacks {needed}");
    }
}

/// Issue 28, item 17: a NUL in one field is one bad field among the others, in a create and in
/// each row of an import (`rows[N]`, N counting from 1), and nothing is written.
#[actix_rt::test]
async fn a_nul_is_one_bad_field_among_the_others() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut body = business_json(1);
    body["name"] = json!("Kedai\u{0}Elok");
    body["kbli"] = json!("nope");
    body["employees"] = json!(-4);
    let problem = app.post("/api/v1/businesses").token(&officer).json(&body).send().await.assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "kbli", "employees"], "{problem}");
    assert_eq!(problem["errors"][0]["code"], "invalid_format");

    let mut first = business_json(2);
    first["kbli"] = json!("nope");
    let mut second = business_json(3);
    second["owner_name"] = json!("Sri\u{0}");
    second["phone"] = json!("12");
    let problem = app
        .post("/api/v1/businesses/import")
        .token(&officer)
        .json(&json!([first, second]))
        .send()
        .await
        .assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["rows[1].kbli", "rows[2].owner_name", "rows[2].phone"], "{problem}");
    assert_eq!(app.count("businesses"), 0);
}
