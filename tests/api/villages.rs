//! Villages as codes (issue 31): a business's `village_code` belongs to its district, a text
//! finds its code, and a database of the release before is matched once, losing nothing.

use diesel::connection::SimpleConnection;
use serde_json::json;
use umkm_api::db::{self, Backend};
use umkm_api::domain::role::Role;
use umkm_api::regions::villages;

use crate::helpers::{business_json, empty_database, migrate, spawn_app, test_keys};

/// The first villages of district `district` in the shipped decree: `(code, name)`.
fn villages_of(district: &str) -> Vec<(String, String)> {
    let path = format!("{}/reference/regions/villages.csv", env!("CARGO_MANIFEST_DIR"));
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[1] == district)
        .map(|r| (r[0].to_owned(), r[2].to_owned()))
        .collect()
}

#[actix_rt::test]
async fn a_village_is_a_code_of_the_businesss_district() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let district = business_json(1)["district_code"].as_str().unwrap().to_owned();
    let own = villages_of(&district);
    let (code, name) = own[0].clone();

    // By code: the text becomes the decree's name.
    let mut body = business_json(1);
    body["village_code"] = json!(code);
    body["village"] = json!("whatever was typed");
    let created = app.create_business(&officer, &body).await;
    assert_eq!(
        (created["village_code"].as_str(), created["village"].as_str()),
        (Some(code.as_str()), Some(name.as_str()))
    );

    // By text alone, with a prefix and in capitals: the code is found.
    let mut body = business_json(2);
    body["village"] = json!(format!("Ds. {}", own[1].1.to_uppercase()));
    let matched = app.create_business(&officer, &body).await;
    assert_eq!(matched["village_code"], own[1].0.as_str());
    assert_eq!(matched["village"], own[1].1.as_str());

    // A text that names no village of the district stays as typed, without a code, and is listed.
    let mut body = business_json(3);
    body["village"] = json!("Dusun Krajan Kidul");
    let unmatched = app.create_business(&officer, &body).await;
    assert_eq!(
        (unmatched["village_code"].clone(), unmatched["village"].clone()),
        (json!(null), json!("Dusun Krajan Kidul"))
    );
    let listed = app.db(villages::unmatched).unwrap();
    assert_eq!(
        listed,
        [(unmatched["id"].as_i64().unwrap(), district.clone(), "Dusun Krajan Kidul".to_owned())]
    );

    // Every role filters by village; the export carries the code.
    for role in [Role::Admin, Role::Viewer] {
        let token = app.token_for(role).await;
        let page = app.get(&format!("/api/v1/businesses?village={code}")).token(&token).send().await.json();
        let ids: Vec<i64> =
            page["data"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [created["id"].as_i64().unwrap()], "{role}");
    }
    let csv = app.get("/api/v1/businesses?sort=id").token(&officer).header("accept", "text/csv").send().await;
    let text = String::from_utf8(csv.body).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "village_code").unwrap();
    assert_eq!(text.lines().nth(1).unwrap().split(',').nth(at), Some(code.as_str()));
}

#[actix_rt::test]
async fn a_village_of_another_district_or_none_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let district = business_json(1)["district_code"].as_str().unwrap().to_owned();
    let (elsewhere, _) = villages_of("35.24.05")[0].clone();
    assert_ne!(district, "35.24.05");
    let cases = [
        (
            json!(elsewhere),
            "not_in_district",
            format!("{elsewhere} is a village of 35.24.05, not of district_code {district}"),
        ),
        (json!("35.24.05.9999"), "not_found", "no village has the code 35.24.05.9999 in /regions".to_owned()),
        (json!("35.24.05.1"), "invalid_format", "must be a village code like 35.24.14.2001".to_owned()),
    ];
    for (code, slug, message) in cases {
        let mut body = business_json(1);
        body["village_code"] = code.clone();
        let problem =
            app.post("/api/v1/businesses").token(&officer).json(&body).send().await.assert_problem(422);
        let error = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == "village_code")
            .unwrap()
            .clone();
        assert_eq!(
            (error["code"].as_str(), error["message"].as_str()),
            (Some(slug), Some(message.as_str())),
            "{code}"
        );
    }
    assert_eq!(app.count("businesses"), 0);
    // The same in an import names the row, and writes no row.
    let mut row = business_json(4);
    row["village_code"] = json!(elsewhere);
    let problem = app
        .post("/api/v1/businesses/import")
        .token(&officer)
        .json(&json!([business_json(3), row]))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "rows[2].village_code");
    assert_eq!(app.count("businesses"), 0);
    // A malformed village filter.
    app.get("/api/v1/businesses?village=35.24").token(&officer).send().await.assert_problem(400);
}

#[actix_rt::test]
async fn moving_a_business_needs_a_village_of_its_new_district() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let district = business_json(1)["district_code"].as_str().unwrap().to_owned();
    let mut body = business_json(1);
    body["village_code"] = json!(villages_of(&district)[0].0);
    let created = app.create_business(&officer, &body).await;
    let path = format!("/api/v1/businesses/{}", created["id"]);
    let etag = format!("\"{}\"", created["version"]);
    // The district alone: the village read is of the old one.
    let patch = json!({"district_code": "35.24.05"});
    let problem = app
        .patch(&path)
        .token(&officer)
        .header("if-match", &etag)
        .json(&patch)
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["code"], "not_in_district");
    // With the new district's village, by text: matched anew.
    let (code, name) = villages_of("35.24.05")[2].clone();
    let patch = json!({"district_code": "35.24.05", "village": name.to_lowercase()});
    let reply = app.patch(&path).token(&officer).header("if-match", &etag).json(&patch).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(
        (reply.json()["village_code"].as_str(), reply.json()["village"].as_str()),
        (Some(code.as_str()), Some(name.as_str()))
    );
}

#[actix_rt::test]
async fn a_database_of_the_release_before_gets_its_villages_matched_once_and_loses_nothing() {
    let target = empty_database();
    let pool = db::pool(&target.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    // The schema as the release before left it (regions: Lamongan's districts only).
    db::run_migrations_through(&mut conn, "20261213000025").unwrap();
    let keys = test_keys();
    let yes = if db::backend(&conn) == Backend::Postgres { "TRUE" } else { "1" };
    let nik = keys.seal(umkm_api::persons::NIK, "3524054105900001").unwrap();
    let phone = keys.seal(umkm_api::persons::PHONE, "+6281234567890").unwrap();
    let index = keys.blind_index(umkm_api::persons::NIK_INDEX, "3524054105900001").unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO persons (id, name, nik, nik_index, phone, created_at, updated_at) VALUES (1, 'Sri Wahyuni', \
         '{nik}', '{index}', '{phone}', '2026-01-02 03:04:05', '2026-01-02 03:04:05')"
    ))
    .unwrap();
    let babat = villages_of("35.24.05");
    let texts = [
        (1, "35.24.05", babat[0].1.clone()),
        (2, "35.24.05", format!("Ds. {}", babat[0].1)),
        (3, "35.24.05", format!(" {} ", babat[1].1.to_lowercase())),
        (4, "35.24.05", "Dusun Krajan".to_owned()),
        // A village of another district of Lamongan's, named under the wrong district.
        (5, "35.24.06", babat[1].1.clone()),
    ];
    for (id, district, text) in &texts {
        conn.batch_execute(&format!(
            "INSERT INTO businesses (id, name, owner_id, person_name, person_nik, person_phone, kbli, kbli_division, \
             district_code, village, address, status, is_ikm, created_at, updated_at, version) VALUES ({id}, 'Usaha {id}', 1, \
             'Sri Wahyuni', '{nik}', '{phone}', '10750', 10, '{district}', '{}', 'Jl. Raya', 'active', {yes}, \
             '2026-01-02 03:04:05', '2026-01-02 03:04:05', 1)",
            text.replace('\'', "''")
        ))
        .unwrap();
    }
    umkm_api::summary::rebuild(&mut conn).unwrap();

    // Today's release migrates it: the tree loaded, then the texts matched.
    migrate(&mut conn);
    let stored: Vec<(i64, Option<String>, Option<String>)> = {
        use diesel::prelude::*;
        use umkm_api::db::schema::businesses as b;
        b::table.order(b::id).select((b::id, b::village_code, b::village)).load(&mut conn).unwrap()
    };
    let sixth_text = texts[4].2.clone();
    assert_eq!(
        stored,
        [
            (1, Some(babat[0].0.clone()), Some(babat[0].1.clone())),
            (2, Some(babat[0].0.clone()), Some(babat[0].1.clone())),
            (3, Some(babat[1].0.clone()), Some(babat[1].1.clone())),
            (4, None, Some("Dusun Krajan".to_owned())),
            (
                5,
                villages_of("35.24.06").iter().find(|v| v.1 == sixth_text).map(|v| v.0.clone()),
                Some(sixth_text.clone())
            ),
        ]
    );
    let unmatched = villages::unmatched(&mut conn).unwrap();
    assert!(unmatched.contains(&(4, "35.24.05".to_owned(), "Dusun Krajan".to_owned())));
    assert!(umkm_api::summary::verify(&mut conn).unwrap().is_empty());
    // Once: a text made unmatched after the migration stays as it is at the next start.
    conn.batch_execute("UPDATE businesses SET village_code = NULL WHERE id = 1").unwrap();
    migrate(&mut conn);
    let again = villages::unmatched(&mut conn).unwrap();
    assert!(again.iter().any(|(id, _, _)| *id == 1));
}

#[actix_rt::test]
async fn an_outlets_village_is_a_code_of_its_district() {
    let app = spawn_app().await;
    // A retail user opens outlets for its own partner (1).
    let retail = app.token_for(Role::Retail).await;
    let (own, _) = villages_of("35.24.05")[0].clone();
    let (elsewhere, _) = villages_of("35.24.06")[0].clone();
    let body = json!({"code": "V1", "name": "Gerai V1", "district_code": "35.24.05", "village_code": own});
    let reply = app.post("/api/v1/outlets").token(&retail).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["village_code"], own.as_str());
    let before = app.count("outlets");
    for (code, slug) in [(json!(elsewhere), "not_in_district"), (json!("35.24.05.1"), "invalid_format")] {
        let body =
            json!({"code": "V2", "name": "Gerai V2", "district_code": "35.24.05", "village_code": code});
        let problem = app.post("/api/v1/outlets").token(&retail).json(&body).send().await.assert_problem(422);
        assert_eq!(
            (problem["errors"][0]["field"].as_str(), problem["errors"][0]["code"].as_str()),
            (Some("village_code"), Some(slug))
        );
    }
    assert_eq!(app.count("outlets"), before);
}
