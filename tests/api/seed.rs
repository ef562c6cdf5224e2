use serde_json::{Value, json};
use umkm_api::domain::role::Role;
use umkm_api::seed::{self, Options, SeedError};

use crate::helpers::{spawn_app, test_keys};

fn rows(body: &Value) -> Vec<Value> {
    body["rows"].as_array().cloned().unwrap_or_default()
}

#[actix_rt::test]
async fn the_demo_tells_the_articles_story_through_the_api() {
    let app = spawn_app().await;
    let summary = app.db(|conn| seed::demo(conn, &test_keys(), false)).unwrap();
    assert_eq!((summary.businesses, summary.outlets, summary.trainings), (540, 51, 2));
    let viewer = app.token_for(Role::Viewer).await;

    let overview = app.get("/api/v1/stats/overview").token(&viewer).send().await.json();
    assert_eq!(overview["businesses"]["total"], 540);
    assert_eq!(overview["products"]["curated_passed"], 16);
    assert_eq!(overview["products"]["curated_ikm_businesses"], 13);
    assert_eq!(overview["retail"], json!({"outlets": 51, "outlets_stocking_curated": 51}));
    assert_eq!(overview["financing"]["applications"], summary.applications);

    let districts = app.get("/api/v1/stats/businesses?group_by=district").token(&viewer).send().await.json();
    let districts = rows(&districts);
    assert_eq!(districts.len(), 27);
    assert!(districts.iter().all(|row| row["count"] == 20), "{districts:?}");

    let retail = app.get("/api/v1/stats/retail").token(&viewer).send().await.json();
    assert_eq!(rows(&retail)[0]["brand"], "Indomaret");
    assert_eq!(rows(&retail)[0]["products_listed"], 16);

    let trainings = app.get("/api/v1/stats/trainings").token(&viewer).send().await.json();
    let article = &trainings["by_training"][0];
    assert_eq!((article["registrants"].clone(), article["selected"].clone()), (json!(234), json!(100)));
    assert_eq!(article["waitlisted"], 134);

    let banks = app.get("/api/v1/stats/financing?group_by=bank").token(&viewer).send().await.json();
    assert!(rows(&banks).len() >= 4, "applications reach most banks: {banks}");

    // A second demo would double everything: refused without --force, nothing written.
    let again = app.db(|conn| seed::demo(conn, &test_keys(), false));
    assert!(matches!(again, Err(SeedError::NotEmpty(540))), "{again:?}");
    assert_eq!(app.count("businesses"), 540);
    assert_eq!(app.count("registrations"), summary.registrations as i64);
}

#[actix_rt::test]
async fn generated_data_is_valid_deterministic_and_in_proportion() {
    let app = spawn_app().await;
    let options = Options { businesses: 3_000, seed: 7, force: false };
    let summary = app.db(|conn| seed::generate(conn, &test_keys(), &options, |_| ())).unwrap();
    assert_eq!(summary.businesses, 3_000);
    assert_eq!(app.count("businesses"), 3_000);
    assert_eq!(app.count("products"), summary.products as i64);
    assert!((5_400..=6_600).contains(&summary.products), "about two products each: {summary}");
    assert!((300..=560).contains(&summary.applications), "about one in seven applies: {summary}");
    assert_eq!(app.count("registrations"), summary.registrations as i64);
    assert_eq!(app.count("placements"), summary.placements as i64);

    let admin = app.token_for(Role::Admin).await;
    let overview = app.get("/api/v1/stats/overview").token(&admin).send().await.json();
    let ikm = overview["businesses"]["ikm"].as_i64().unwrap();
    assert!((90..=220).contains(&ikm), "IKM about 5 %: {ikm}");
    assert!(overview["businesses"]["by_scale"]["mikro"].as_i64().unwrap() > 2_800);
    assert!(overview["businesses"]["by_scale"]["kecil"].as_i64().unwrap() > 0);

    // Every generated business is one the API itself accepts: send a sample back as new
    // businesses (without the unique NIB) and expect 201 for each.
    for id in [1, 2, 777, 1_500, 3_000] {
        let mut business = app.get(&format!("/api/v1/businesses/{id}")).token(&admin).send().await.json();
        assert_eq!(business["id"], id);
        let object = business.as_object_mut().unwrap();
        for derived in [
            "id",
            "owner_id",
            "nib",
            "scale",
            "scale_basis",
            "is_ikm",
            "industry_scale",
            "consented_to_bank_sharing_at",
            "created_at",
            "updated_at",
            "version",
        ] {
            object.remove(derived);
        }
        app.create_business(&admin, &business).await;
    }
    // The API hands out ids after the generated ones.
    let created = app.create_business(&admin, &crate::helpers::business_json(1)).await;
    assert!(created["id"].as_i64().unwrap() > 3_000);

    // The same seed on another empty database gives the same rows.
    let other = spawn_app().await;
    other.db(|conn| seed::generate(conn, &test_keys(), &options, |_| ())).unwrap();
    let names = |app: &crate::helpers::TestApp| {
        app.db(|conn| {
            use diesel::prelude::*;
            use umkm_api::db::schema::{businesses, persons};
            // NIKs are sealed with random nonces; their blind indexes are the same.
            businesses::table
                .inner_join(persons::table)
                .filter(businesses::id.le(3_000))
                .order(businesses::id)
                .select((
                    businesses::name,
                    businesses::owner_id,
                    persons::nik_index,
                    businesses::annual_revenue_idr,
                ))
                .load::<(String, i64, String, Option<i64>)>(conn)
                .unwrap()
        })
    };
    assert_eq!(names(&app), names(&other));

    // Seeding again needs --force, and then adds after the existing ids.
    assert!(matches!(
        app.db(|conn| seed::generate(conn, &test_keys(), &options, |_| ())),
        Err(SeedError::NotEmpty(_))
    ));
    let more = Options { businesses: 100, seed: 8, force: true };
    app.db(|conn| seed::generate(conn, &test_keys(), &more, |_| ())).unwrap();
    assert_eq!(app.count("businesses"), 3_000 + 5 + 1 + 100);
}
