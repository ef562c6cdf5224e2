use serde_json::Value;
use umkm_api::domain::role::Role;

use crate::helpers::spawn_app;

#[actix_rt::test]
async fn every_role_reads_lamongans_27_districts_page_by_page() {
    let app = spawn_app().await;
    for role in [Role::Viewer, Role::Bank, Role::Retail] {
        let token = app.token_for(role).await;
        let mut codes = Vec::new();
        let mut path = "/api/v1/regions?parent=35.24&limit=10".to_owned();
        loop {
            let reply = app.get(&path).token(&token).send().await;
            assert_eq!(reply.status, 200);
            let page = reply.json();
            for region in page["data"].as_array().unwrap() {
                assert_eq!(region["level"], "district");
                assert_eq!(region["parent_code"], "35.24");
                codes.push(region["code"].as_str().unwrap().to_owned());
            }
            match &page["next_cursor"] {
                Value::String(cursor) => {
                    path = format!("/api/v1/regions?parent=35.24&limit=10&cursor={cursor}")
                }
                _ => break,
            }
        }
        let expected: Vec<String> = (1..=27).map(|n| format!("35.24.{n:02}")).collect();
        assert_eq!(codes, expected, "{role}");
    }
}

#[actix_rt::test]
async fn regions_filter_by_level_and_carry_their_names() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Officer).await;
    let page = app.get("/api/v1/regions?level=regency").token(&token).send().await.json();
    assert_eq!(
        page["data"],
        serde_json::json!([{"code": "35.24", "name": "Lamongan", "level": "regency", "parent_code": "35"}])
    );
    let page = app.get("/api/v1/regions?parent=35.24&limit=500").token(&token).send().await.json();
    let babat = page["data"].as_array().unwrap().iter().find(|r| r["code"] == "35.24.05").unwrap();
    assert_eq!(babat["name"], "Babat");
    assert_eq!(page["next_cursor"], Value::Null);
}
