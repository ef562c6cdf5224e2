use std::process::Command;

use serde_json::Value;

use crate::helpers::spawn_app;

/// `openapi/openapi.json` must be exactly what `umkm-api openapi` prints and what the server
/// serves. Regenerate it with `cargo run -- openapi > openapi/openapi.json`.
#[actix_rt::test]
async fn the_committed_document_matches_the_served_one() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .expect("openapi/openapi.json exists");
    let output = Command::new(env!("CARGO_BIN_EXE_umkm-api")).arg("openapi").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed == committed,
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json`"
    );

    let app = spawn_app().await;
    let served = app.get("/api-docs/openapi.json").send().await;
    assert_eq!(served.status, 200);
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(served.json(), committed);
}

#[actix_rt::test]
async fn every_operation_documents_its_problems_and_security() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").send().await.json();
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let public = ["/healthz", "/readyz", "/api/v1/auth/token"].contains(&path.as_str());
            // Public operations say so (`security: []`); every other needs the bearer token.
            let security =
                op["security"].as_array().unwrap_or_else(|| panic!("{method} {path} has no security"));
            assert_eq!(security.is_empty(), public, "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            if !public {
                assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
            assert!(op["operationId"].is_string(), "{method} {path}");
        }
    }
    assert!(operations >= 10);
    // Where clients are served from, the licence's text, and no schema nothing refers to.
    assert_eq!(doc["servers"][0]["url"], "/");
    assert!(doc["info"]["license"]["url"].is_string());
    let text = doc.to_string();
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(text.contains(&format!("\"#/components/schemas/{name}\"")), "{name} is not referred to");
    }
}

/// Every role's answer to every read without path parameters is a status its operation
/// documents: a bank user's 404 on the businesses, a retail user's on the applications.
/// Fuzzing as an admin never sees those.
#[actix_rt::test]
async fn every_role_gets_only_documented_statuses_from_the_reads() {
    use umkm_api::domain::role::Role;
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").send().await.json();
    let mut undocumented = Vec::new();
    for role in [Role::Admin, Role::Officer, Role::Viewer, Role::Bank, Role::Retail] {
        let token = app.token_for(role).await;
        for (path, item) in doc["paths"].as_object().unwrap() {
            let Some(op) = item.get("get") else { continue };
            if path.contains('{') {
                continue;
            }
            // The required query parameters, with a value each can take.
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" && p["required"] == true {
                    let value = p["schema"]["enum"][0].as_str().or(p["example"].as_str()).unwrap_or("1");
                    query.push(format!("{}={value}", p["name"].as_str().unwrap()));
                }
            }
            let url = if query.is_empty() { path.clone() } else { format!("{path}?{}", query.join("&")) };
            let status = app.get(&url).token(&token).send().await.status.as_u16().to_string();
            if !op["responses"].as_object().unwrap().contains_key(&status) {
                undocumented.push(format!("{role} GET {url} -> {status}"));
            }
        }
    }
    assert!(undocumented.is_empty(), "statuses the document does not list:\n{}", undocumented.join("\n"));
}

/// The shared parameters declare the constraints the server enforces, and the server holds to
/// them: `limit` within its bounds, `If-Match` of its declared shape (400 otherwise; a
/// well-formed but stale one is 412), a KBLI filter's pattern.
#[actix_rt::test]
async fn shared_parameters_declare_what_the_server_enforces() {
    use umkm_api::http::list::MAX_LIMIT;
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").send().await.json();
    let (mut limits, mut if_matches) = (0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                match p["name"].as_str().unwrap() {
                    "limit" => {
                        limits += 1;
                        assert_eq!(p["schema"]["minimum"], 1, "{method} {path}");
                        assert_eq!(p["schema"]["maximum"], MAX_LIMIT, "{method} {path}");
                    }
                    "If-Match" => {
                        if_matches += 1;
                        assert!(p["schema"]["pattern"].is_string(), "{method} {path}");
                    }
                    "kbli" => assert_eq!(p["schema"]["pattern"], "^([0-9]{2}|[0-9]{5})$", "{method} {path}"),
                    _ => {}
                }
            }
        }
    }
    assert!(limits >= 15 && if_matches >= 10, "{limits} limits, {if_matches} If-Match");

    let admin = app.token_for(umkm_api::domain::role::Role::Admin).await;
    for (limit, status) in [(0, 400), (1, 200), (MAX_LIMIT, 200), (MAX_LIMIT + 1, 400), (i64::MIN, 400)] {
        let reply = app.get(&format!("/api/v1/regions?limit={limit}")).token(&admin).send().await;
        assert_eq!(reply.status, status, "limit={limit}");
    }
    // An empty cursor (a form's empty field) is the first page.
    let first = app.get("/api/v1/regions?limit=3").token(&admin).send().await.json();
    assert_eq!(app.get("/api/v1/regions?limit=3&cursor=").token(&admin).send().await.json(), first);
    let business =
        app.create_business(&admin, &crate::helpers::business_json(1)).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/businesses/{business}");
    for (if_match, status) in [("null", 400), ("1", 400), ("\"9\"", 412), ("W/\"1\"", 412), ("\"1\"", 200)] {
        let reply = app
            .patch(&path)
            .token(&admin)
            .header("if-match", if_match)
            .json(&serde_json::json!({"address": "Jl. Pola 1"}))
            .send()
            .await;
        assert_eq!(reply.status, status, "If-Match: {if_match}");
    }
}

/// Issue 28, item 16: what the document says a login's 200 holds, a person's login and a
/// client's grant both answer: every field it requires is there, and `scope` (a client's
/// only) is not required.
#[actix_rt::test]
async fn both_kinds_of_login_answer_what_the_document_requires() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").send().await.json();
    let content =
        &doc["paths"]["/api/v1/auth/token"]["post"]["responses"]["200"]["content"]["application/json"];
    let schemas: Vec<&Value> = match content["schema"].get("oneOf") {
        Some(Value::Array(options)) => options.iter().collect(),
        _ => vec![&content["schema"]],
    };
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => doc["components"]["schemas"][r.rsplit('/').next().unwrap()].clone(),
            None => schema.clone(),
        }
    };
    let admin = app.token_for(umkm_api::domain::role::Role::Admin).await;
    app.create_user("person@test.example", umkm_api::domain::role::Role::Viewer, None);
    let person = app
        .post("/api/v1/auth/token")
        .json(&serde_json::json!({"email": "person@test.example", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .json();
    let issued = app
        .post("/api/v1/api-clients")
        .token(&admin)
        .json(&serde_json::json!({"bank_partner_id": 1, "scopes": ["applicants:read"]}))
        .send()
        .await
        .json();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        issued["client"]["client_id"].as_str().unwrap(),
        issued["client_secret"].as_str().unwrap()
    );
    let client =
        app.post("/api/v1/auth/token").raw("application/x-www-form-urlencoded", form).send().await.json();
    assert!(client["scope"].is_string(), "{client}");
    for (who, answer) in [("a person", &person), ("a client", &client)] {
        let fits = schemas.iter().map(|s| resolve(s)).any(|schema| {
            schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .all(|field| answer.get(field.as_str().unwrap()).is_some())
        });
        assert!(fits, "{who}'s login {answer} lacks a field the document requires: {content}");
    }
}

#[actix_rt::test]
async fn the_data_protection_officer_is_the_documents_contact() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").send().await.json();
    assert_eq!(doc["info"]["contact"]["email"], "ppdp@example.org");
    let app = crate::helpers::spawn_app_with(|c| {
        c.dpo = umkm_api::config::Dpo {
            name: "PPDP Disperindag Lamongan".into(),
            email: "ppdp@lamongan.example".into(),
        }
    })
    .await;
    let doc = app.get("/api-docs/openapi.json").send().await.json();
    assert_eq!(doc["info"]["contact"]["email"], "ppdp@lamongan.example");
    assert!(doc["info"]["contact"]["name"].as_str().unwrap().starts_with("PPDP Disperindag Lamongan"));
    assert_eq!(doc["info"]["title"], "umkm-api", "the rest of the document is the same");
    assert!(doc["paths"]["/api/v1/persons/{id}/data-export"].is_object());
}

#[actix_rt::test]
async fn types_of_the_same_name_do_not_share_a_schema() {
    // A consent's channel and a data request's are different lists: each keeps its own.
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").send().await.json();
    let schemas = &doc["components"]["schemas"];
    let consent = schemas["Channel"]["enum"].as_array().unwrap();
    assert!(consent.contains(&Value::from("paper_form")), "{consent:?}");
    let request = schemas["RequestChannel"]["enum"].as_array().unwrap();
    assert!(request.contains(&Value::from("web")) && !request.contains(&Value::from("paper_form")));
}
