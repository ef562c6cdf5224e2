//! Issue 28, item 9: what each role receives of a business is what the README's role × field
//! table says (the same table is the OpenAPI document's description of `BusinessView`), in a
//! single record, a list page and an export; a retail user sees only the businesses with a
//! product in its partner's curations.

use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, bank_token, business_json, spawn_app};

const ROLES: [&str; 5] = ["admin", "officer", "viewer", "retail", "bank"];

/// One row of the table: its fields and what each of [`ROLES`] gets of them.
#[derive(Debug)]
struct Row {
    line: String,
    fields: Vec<String>,
    seen: Vec<String>,
}

/// The role × field table of `text`: the rows after its header line.
fn table(text: &str) -> Vec<Row> {
    let header = "| field | admin | officer | viewer | retail | bank |";
    let start = text.lines().position(|l| l.trim() == header).expect("the role × field table");
    text.lines()
        .skip(start + 2)
        .map(str::trim)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let fields = cells[0].split(',').map(|f| f.trim().trim_matches('`').to_owned()).collect();
            Row { line: line.to_owned(), fields, seen: cells[1..].iter().map(|c| (*c).to_owned()).collect() }
        })
        .collect()
}

async fn token(app: &TestApp, role: &str) -> String {
    match role {
        "admin" => app.token_for(Role::Admin).await,
        "officer" => app.token_for(Role::Officer).await,
        "viewer" => app.token_for(Role::Viewer).await,
        "retail" => app.token_for(Role::Retail).await, // retail partner 1
        _ => bank_token(app, 1).await,
    }
}

#[actix_rt::test]
async fn each_role_receives_what_the_role_field_table_says() {
    let rows = table(include_str!("../../README.md"));
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut full = business_json(1);
    full["npwp"] = json!("012345678901000");
    full["village"] = json!("Paciran");
    let curated = app.create_business(&officer, &full).await["id"].as_i64().unwrap();
    crate::helpers::consent_for(&app, &officer, curated, None).await;
    let other = app.create_business(&officer, &business_json(2)).await["id"].as_i64().unwrap();
    crate::helpers::curated_product(&app, &officer, curated, 1).await;

    let admin = token(&app, "admin").await;
    let stored = app.get(&format!("/api/v1/businesses/{curated}")).token(&admin).send().await.json();
    let named: Vec<&String> = rows.iter().flat_map(|r| &r.fields).collect();
    let mut keys: Vec<&String> = stored.as_object().unwrap().keys().collect();
    let mut sorted = named.clone();
    sorted.sort();
    keys.sort();
    assert_eq!(sorted, keys, "the table names every field of a business, once");
    for field in &named {
        assert!(!stored[field.as_str()].is_null(), "{field} is set, so that the test can tell");
    }

    for (column, role) in ROLES.iter().enumerate() {
        let token = token(&app, role).await;
        let one = app.get(&format!("/api/v1/businesses/{curated}")).token(&token).send().await;
        if rows.iter().all(|r| r.seen[column] == "404") {
            one.assert_problem(404);
            app.get("/api/v1/businesses").token(&token).send().await.assert_problem(404);
            continue;
        }
        assert_eq!(one.status, 200, "{role}");
        let got = one.json();
        for row in &rows {
            for field in &row.fields {
                let (value, full) = (&got[field.as_str()], &stored[field.as_str()]);
                match row.seen[column].as_str() {
                    "shown" => assert_eq!(value, full, "{role} {field}"),
                    "masked" => assert!(
                        value.as_str().is_some_and(|v| v.contains('*') && Some(v) != full.as_str()),
                        "{role} {field}: {value} (stored {full})"
                    ),
                    "withheld" => assert!(value.is_null(), "{role} {field}: {value}"),
                    other => panic!("{role} {field}: the table says {other:?}"),
                }
            }
        }
        // A list page and an export give the same record.
        let page = app.get(&format!("/api/v1/businesses?q={}", "Usaha")).token(&token).send().await.json();
        let listed: Vec<&Value> = page["data"].as_array().unwrap().iter().collect();
        assert!(listed.iter().any(|b| **b == got), "{role}: the list shows the record as the record does");
        let export =
            app.get("/api/v1/businesses").token(&token).header("accept", "application/x-ndjson").send().await;
        let exported: Vec<Value> = String::from_utf8(export.body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(exported.contains(&got), "{role}: the export shows the record as the record does");
        // A retail user's businesses are those its partner curates a product of.
        let others = app.get(&format!("/api/v1/businesses/{other}")).token(&token).send().await;
        if *role == "retail" {
            others.assert_problem(404);
            // Nor through its products, nor the statistics' name search over sales.
            app.get(&format!("/api/v1/businesses/{other}/products"))
                .token(&token)
                .send()
                .await
                .assert_problem(404);
            let own = app.get(&format!("/api/v1/businesses/{curated}/products")).token(&token).send().await;
            assert_eq!(own.status, 200);
            let stats = format!("/api/v1/stats/businesses?group_by=status&q={}", "Usaha");
            app.get(&stats).token(&token).send().await.assert_problem(404);
            assert_eq!(listed.len(), 1, "{role}: {page}");
            assert_eq!(exported.len(), 1, "{role}");
            let counted = app.get("/api/v1/businesses?count=true").token(&token).send().await.json();
            assert_eq!(counted["total"], 1);
        } else {
            assert_eq!(others.status, 200, "{role}");
            assert_eq!(listed.len(), 2, "{role}");
        }
    }

    // The OpenAPI document's description of a business holds the same table.
    let document = app.get("/api-docs/openapi.json").send().await.json();
    let described =
        document["components"]["schemas"]["BusinessView"]["description"].as_str().unwrap().to_owned();
    for row in &rows {
        assert!(described.contains(&row.line), "the document lacks {:?}", row.line);
    }
}
