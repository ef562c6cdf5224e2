use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, business_json, spawn_app, spawn_app_with};

/// Every row of one of the decree's files shipped in `reference/regions/`: `(code, parent, name)`.
fn decree(file: &str) -> Vec<(String, Option<String>, String)> {
    let path = format!("{}/reference/regions/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            match r.len() {
                2 => (r[0].to_owned(), None, r[1].to_owned()),
                _ => (r[0].to_owned(), Some(r[1].to_owned()), r[2].to_owned()),
            }
        })
        .collect()
}

async fn total(app: &TestApp, token: &str, query: &str) -> i64 {
    let reply = app.get(&format!("/api/v1/regions?{query}&count=true&limit=1")).token(token).send().await;
    assert_eq!(reply.status, 200, "{query}: {}", String::from_utf8_lossy(&reply.body));
    reply.json()["total"].as_i64().unwrap()
}

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
                assert_eq!(region["in_service_area"], true);
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
async fn the_tree_holds_the_decrees_regions_level_by_level() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Viewer).await;
    let files = [
        ("province", "provinces.csv"),
        ("regency", "regencies.csv"),
        ("district", "districts.csv"),
        ("village", "villages.csv"),
    ];
    for (level, file) in files {
        let rows = decree(file);
        assert_eq!(total(&app, &token, &format!("level={level}")).await, rows.len() as i64, "{level}");
        // The first, the last and a few between, each read back by its code.
        let step = (rows.len() / 5).max(1);
        for (code, parent, name) in rows.iter().step_by(step).chain(rows.last()) {
            let reply = app.get(&format!("/api/v1/regions/{code}")).token(&token).send().await;
            assert_eq!(reply.status, 200, "{code}");
            let region = reply.json();
            assert_eq!(region["name"], name.as_str(), "{code}");
            assert_eq!(region["level"], level, "{code}");
            assert_eq!(region["parent_code"], json!(parent), "{code}");
            assert_eq!(region["retired"], false, "{code}");
            assert_eq!(region["in_service_area"], code.starts_with("35.24"), "{code}");
        }
    }
    assert_eq!([38, 514, 7_285, 83_762], files.map(|(_, f)| decree(f).len()));
    // Lamongan (the default service area): the regency, 27 districts and 474 villages.
    assert_eq!(total(&app, &token, "level=village&in_service_area=true").await, 474);
    assert_eq!(total(&app, &token, "in_service_area=true").await, 1 + 27 + 474);
    assert_eq!(
        total(&app, &token, "parent=35.24.05").await,
        decree("villages.csv").iter().filter(|v| v.1.as_deref() == Some("35.24.05")).count() as i64
    );
    let page = app.get("/api/v1/regions?code=35.24.05").token(&token).send().await.json();
    assert_eq!(page["data"][0]["name"], "Babat");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
}

#[actix_rt::test]
async fn names_are_found_with_case_accents_and_apostrophes_folded() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Retail).await;
    // "Regapu’u" (typographic apostrophe) by a plain apostrophe, in capitals.
    let page = app.get("/api/v1/regions?q=REGAPU%27U").token(&token).send().await.json();
    let codes: Vec<&str> =
        page["data"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["53.07.01.2021"]);
    assert_eq!(page["data"][0]["name"], "Regapu’u");
    // An accent the name does not have, and a search within the service area's villages.
    let expected: Vec<String> = decree("villages.csv")
        .into_iter()
        .filter(|(code, _, name)| code.starts_with("35.24.") && name.to_lowercase().contains("sidomulyo"))
        .map(|(code, _, _)| code)
        .collect();
    assert!(!expected.is_empty());
    let page = app
        .get("/api/v1/regions?q=sid%C3%B3mulyo&level=village&in_service_area=true&limit=500")
        .token(&token)
        .send()
        .await
        .json();
    let codes: Vec<&str> =
        page["data"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, expected);
}

#[actix_rt::test]
async fn bad_region_queries_are_clear_errors() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Officer).await;
    app.get("/api/v1/regions/99.99").token(&token).send().await.assert_problem(404);
    for bad in ["level=hamlet", "in_service_area=maybe", "color=red", &format!("q={}", "a".repeat(201))] {
        app.get(&format!("/api/v1/regions?{bad}")).token(&token).send().await.assert_problem(400);
    }
    // Nobody's session, nobody's regions.
    app.get("/api/v1/regions/35.24").send().await.assert_problem(401);
}

#[actix_rt::test]
async fn businesses_lie_in_the_service_area() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    // Surabaya's first district exists in the tree, but not in Lamongan's service area.
    let mut outside = business_json(1);
    outside["district_code"] = json!("35.78.01");
    let reply = app.post("/api/v1/businesses").token(&officer).json(&outside).send().await;
    let problem = reply.assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "district_code");
    assert_eq!(app.count("businesses"), 0);
    assert_eq!(
        app.create_business(&officer, &business_json(2)).await["district_code"],
        business_json(2)["district_code"]
    );
}

#[actix_rt::test]
async fn an_installation_for_surabaya_serves_surabaya_and_refuses_lamongan() {
    let app = spawn_app_with(|config| config.service_area = vec!["35.78".to_owned()]).await;
    let token = app.token_for(Role::Officer).await;
    let surabaya = decree("districts.csv").into_iter().filter(|d| d.1.as_deref() == Some("35.78")).count();
    assert_eq!(total(&app, &token, "level=district&in_service_area=true").await, surabaya as i64);
    let mut lamongan = business_json(1);
    lamongan["district_code"] = json!("35.24.05");
    app.post("/api/v1/businesses").token(&token).json(&lamongan).send().await.assert_problem(422);
    let mut own = business_json(2);
    own["district_code"] = json!("35.78.01");
    assert_eq!(app.create_business(&token, &own).await["district_code"], "35.78.01");
    assert_eq!(app.count("businesses"), 1);
    // Its generated data lies in its own districts and their villages.
    let options = umkm_api::seed::Options { businesses: 300, seed: 3, force: true };
    app.db(|conn| umkm_api::seed::generate(conn, &crate::helpers::test_keys(), &options, |_| ())).unwrap();
    let placed: Vec<(String, Option<String>)> = app.db(|conn| {
        use diesel::prelude::*;
        use umkm_api::db::schema::businesses as b;
        b::table.order(b::id).select((b::district_code, b::village_code)).load(conn).unwrap()
    });
    assert_eq!(placed.len(), 301);
    let villages = decree("villages.csv");
    for (district, village) in &placed[1..] {
        assert!(district.starts_with("35.78."), "{district}");
        let village = village.as_deref().unwrap();
        assert!(
            villages.iter().any(|v| v.0 == village && v.1.as_deref() == Some(district.as_str())),
            "{village}"
        );
    }
    let districts: std::collections::HashSet<&String> = placed.iter().map(|p| &p.0).collect();
    assert!(districts.len() > 20, "{} districts", districts.len());
}

#[actix_rt::test]
async fn a_service_area_that_names_no_region_is_refused_at_start() {
    let app = spawn_app().await;
    for area in ["99.99", "35.24.05"] {
        let mut conn = app.pool.get().unwrap();
        let err = umkm_api::regions::tree::serve(&mut conn, &[area.to_owned()]).unwrap_err();
        assert!(err.to_string().contains(&format!("SERVICE_AREA names {area}")), "{err}");
    }
    // Nothing changed: Lamongan is still the area served.
    let mut conn = app.pool.get().unwrap();
    assert!(umkm_api::regions::is_district(&mut conn, "35.24.05").unwrap());
}

#[actix_rt::test]
async fn a_newer_decree_adds_renames_and_retires_codes_and_records_keep_theirs() {
    use umkm_api::regions::tree::{self, Decree};
    // A retired code keeps working for the records that use it.
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let business = app.create_business(&officer, &business_json(1)).await;
    let district = business["district_code"].as_str().unwrap().to_owned();
    // The newer decree: that district and its villages gone, a village added, one renamed.
    let dir = tempfile::tempdir().unwrap();
    let source = format!("{}/reference/regions", env!("CARGO_MANIFEST_DIR"));
    for file in ["provinces.csv", "regencies.csv", "districts.csv", "villages.csv"] {
        let text = std::fs::read_to_string(format!("{source}/{file}")).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{district},")) && !l.starts_with(&format!("{district}.")))
            .map(str::to_owned)
            .collect();
        if file == "villages.csv" {
            let babat = lines.iter().position(|l| l.starts_with("35.24.05.")).unwrap();
            lines[babat] =
                format!("{},Desa Berganti Nama", &lines[babat][..lines[babat].rfind(',').unwrap()]);
            lines.push("35.24.05.2999,35.24.05,Desa Baru".to_owned());
        }
        std::fs::write(dir.path().join(file), lines.join("\n") + "\n").unwrap();
    }
    let gone: Vec<String> = decree("villages.csv")
        .into_iter()
        .filter(|v| v.1.as_deref() == Some(district.as_str()))
        .map(|v| v.0)
        .chain([district.clone()])
        .collect();
    let renamed = decree("villages.csv").into_iter().find(|v| v.0.starts_with("35.24.05.")).unwrap();
    let mut expected_gone = gone.clone();
    expected_gone.sort();
    let mut expected = vec!["added\t35.24.05.2999".to_owned()];
    expected.push(format!("renamed\t{}: {} -> Desa Berganti Nama", renamed.0, renamed.2));
    expected.extend(expected_gone.iter().map(|code| format!("retired\t{code}")));
    // `umkm-api regions import`, first as a dry run that changes nothing.
    let import = |dry_run: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_umkm-api"));
        command.args(["regions", "import"]).arg(dir.path());
        if dry_run {
            command.arg("--dry-run");
        }
        let run = command
            .env("DATABASE_URL", &app.database_url)
            .env("DATA_KEY_FILE", crate::helpers::test_key_file())
            .env("JWT_SECRET", std::str::from_utf8(crate::helpers::TEST_SECRET).unwrap())
            .env("SERVICE_AREA", "35.24")
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8(run.stdout).unwrap()
    };
    let summary = format!("1 added, 1 renamed, {} retired, 0 restored", gone.len());
    let dry = import(true);
    assert_eq!(
        dry.lines().collect::<Vec<_>>(),
        [expected.clone(), vec![format!("{summary} (a dry run: nothing changed)")]].concat()
    );
    app.get("/api/v1/regions/35.24.05.2999").token(&officer).send().await.assert_problem(404);
    let done = import(false);
    assert_eq!(done.lines().collect::<Vec<_>>(), [expected, vec![summary]].concat());

    // The business keeps its district, which reads as retired; the new village is there.
    let read = app.get(&format!("/api/v1/businesses/{}", business["id"])).token(&officer).send().await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["district_code"], district.as_str());
    let region = app.get(&format!("/api/v1/regions/{district}")).token(&officer).send().await.json();
    assert_eq!(region["retired"], true);
    let added = app.get("/api/v1/regions/35.24.05.2999").token(&officer).send().await.json();
    assert_eq!((added["name"].as_str(), added["in_service_area"].as_bool()), (Some("Desa Baru"), Some(true)));

    // The shipped decree again: everything restored, the added village retired in turn.
    let changes = app.db(|conn| tree::load(conn, &Decree::shipped().unwrap())).unwrap();
    assert_eq!(changes.restored, expected_gone);
    assert_eq!(changes.retired, ["35.24.05.2999"]);
    assert!(changes.added.is_empty());
}
