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
