//! The statistics' summary tables: kept by every write, in the same transaction, so that they
//! always equal a recomputation from the data (`umkm_api::summary::verify`); the statistics read
//! from them answer what a scan of the businesses answers.

use diesel::prelude::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use umkm_api::domain::role::Role;
use umkm_api::summary;

use crate::helpers::{
    PASSWORD, TestApp, business_json, consenting_business, empty_database, owner_of, spawn_app,
};

/// Districts, KBLI codes (IKM and not), sales, statuses the generated businesses take.
pub(crate) const DISTRICTS: [&str; 3] = ["35.24.05", "35.24.14", "35.24.01"];
pub(crate) const KBLI: [&str; 3] = ["10750", "47111", "13112"];
pub(crate) const REVENUE: [Option<i64>; 4] =
    [None, Some(250_000_000), Some(3_000_000_000), Some(60_000_000_000)];
pub(crate) const STATUS: [&str; 3] = ["active", "inactive", "closed"];
pub(crate) const CATEGORIES: [&str; 3] = ["food", "craft", "beverage"];

/// What a generated business is.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    district: usize,
    kbli: usize,
    revenue: usize,
    employees: Option<i32>,
    year: Option<i32>,
    status: usize,
}

impl Spec {
    pub(crate) fn body(&self, n: usize) -> Value {
        let mut body = business_json(n);
        body["district_code"] = json!(DISTRICTS[self.district]);
        body["kbli"] = json!(KBLI[self.kbli]);
        body["annual_revenue_idr"] = json!(REVENUE[self.revenue]);
        body["capital_idr"] = json!(null);
        body["employees"] = json!(self.employees);
        body["established_on"] = json!(self.year.map(|y| format!("{y}-06-01")));
        body["status"] = json!(STATUS[self.status]);
        body
    }
}

pub(crate) fn spec() -> impl Strategy<Value = Spec> {
    (
        0..3usize,
        0..3usize,
        0..4usize,
        proptest::option::of(0..30i32),
        proptest::option::of(1990..2026i32),
        0..3usize,
    )
        .prop_map(|(district, kbli, revenue, employees, year, status)| Spec {
            district,
            kbli,
            revenue,
            employees,
            year,
            status,
        })
}

/// Businesses of every kind the generated specs make, through the import.
async fn varied(app: &TestApp, officer: &str, n: usize) {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            Spec {
                district: i % 3,
                kbli: (i / 3) % 3,
                revenue: i % 4,
                employees: (i % 5 != 0).then_some(i as i32),
                year: (i % 7 != 0).then_some(2000 + (i % 4) as i32 * 6),
                status: (i / 2) % 3,
            }
            .body(i)
        })
        .collect();
    let reply = app.post("/api/v1/businesses/import").token(officer).json(&json!(rows)).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
}

#[actix_rt::test]
async fn statistics_from_the_summary_equal_a_scan_of_the_businesses() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    varied(&app, &officer, 60).await;
    let groupings =
        ["district", "scale", "kbli_division,is_ikm", "established_year", "status,scale", "district,scale"];
    let filters = [
        "",
        "&district=35.24.05",
        "&scale=unknown",
        "&scale=kecil&status=active",
        "&is_ikm=true",
        "&kbli=47",
        "&established_from=2006-01-01&established_to=2012-12-31",
        "&established_to=2011-12-31",
    ];
    // `updated_since` is not a key of the summary: with it the same question is answered by
    // scanning the businesses (all of which changed after 2000).
    let scan = "&updated_since=2000-01-01T00:00:00Z";
    for group_by in groupings {
        for filter in filters {
            let path = format!("/api/v1/stats/businesses?group_by={group_by}{filter}");
            let summary = app.get(&path).token(&officer).send().await.json();
            let scanned = app.get(&format!("{path}{scan}")).token(&officer).send().await.json();
            assert_eq!(summary, scanned, "{path}");
            assert!(!summary["rows"].as_array().unwrap().is_empty() || !filter.is_empty(), "{path}");
        }
    }
    for filter in filters {
        let path = format!("/api/v1/businesses?count=true&limit=1{filter}");
        let summary = app.get(&path).token(&officer).send().await.json()["total"].clone();
        let scanned = app.get(&format!("{path}{scan}")).token(&officer).send().await.json()["total"].clone();
        assert_eq!(summary, scanned, "{path}");
    }
    let total = app.get("/api/v1/businesses?count=true&limit=1").token(&officer).send().await.json();
    assert_eq!(total["total"], 60);
    let overview = app.get("/api/v1/stats/overview").token(&officer).send().await.json();
    assert_eq!(overview["businesses"]["total"], 60, "{overview}");
    // Not whole years, a KBLI code and a name: scanned (and the same answers as before).
    for filter in ["&established_from=2006-02-01", "&kbli=47111", "&q=usaha"] {
        let path = format!("/api/v1/stats/businesses?group_by=status{filter}");
        assert_eq!(app.get(&path).token(&officer).send().await.status, 200, "{path}");
    }
}

#[actix_rt::test]
async fn verify_names_a_wrong_group_and_rebuild_repairs_it() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    varied(&app, &officer, 12).await;
    assert_eq!(app.db(summary::verify).unwrap(), [], "kept by the import");
    assert!(app.db(summary::fold).unwrap(), "the fold ran");
    assert_eq!(app.count("summary_businesses_delta"), 0, "the deltas folded");
    assert!(app.count("summary_businesses") > 0);
    assert_eq!(app.db(summary::verify).unwrap(), [], "the same after the fold");

    // A summary row changed behind the application's back is found, by its key.
    app.db(|c| {
        diesel::sql_query("UPDATE summary_businesses SET n = n + 1 WHERE district_code = '35.24.05'")
            .execute(c)
    })
    .unwrap();
    let wrong = app.db(summary::verify).unwrap();
    assert!(!wrong.is_empty());
    assert!(
        wrong.iter().all(|d| d.table == "summary_businesses" && d.key.contains("district_code=35.24.05"))
    );
    assert!(wrong.iter().all(|d| d.stored[0] == d.expected[0] + 1), "{wrong:#?}");

    let rows = app.db(summary::rebuild).unwrap();
    assert!(rows > 0);
    assert_eq!(app.db(summary::verify).unwrap(), []);
    // And the answers are what they were.
    let overview = app.get("/api/v1/stats/overview").token(&officer).send().await.json();
    assert_eq!(overview["businesses"]["total"], 12);
}

#[actix_rt::test]
async fn the_migration_summarises_what_an_older_database_holds() {
    use umkm_api::db::{self, Backend};
    let empty = empty_database();
    let pool = db::pool(&empty.url, 2).unwrap();
    let mut conn = pool.get().unwrap();
    let backend = db::backend(&conn);
    let versions = db::migration_versions(backend);
    let before = &versions[versions.iter().position(|v| v.starts_with("20261129000009")).unwrap() - 1];
    db::run_migrations_through(&mut conn, before).unwrap();
    let t = if backend == Backend::Postgres { "TRUE" } else { "1" };
    for sql in [
        format!(
            "INSERT INTO businesses (id, name, owner_name, owner_nik, phone, kbli, kbli_division, district_code, \
             address, annual_revenue_idr, employees, established_on, status, consented_to_bank_sharing_at, scale, \
             is_ikm, created_at, updated_at) VALUES \
             (1, 'A', 'a', '3524051203900001', '+6281200000001', '10750', 10, '35.24.05', 'x', 300000000, 4, \
              '2019-03-01', 'active', '2026-01-01 00:00:00', 'mikro', {t}, '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
             (2, 'B', 'b', '3524051203900002', '+6281200000002', '47111', 47, '35.24.05', 'x', NULL, NULL, \
              NULL, 'closed', NULL, NULL, NOT {t}, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        ),
        "INSERT INTO products (business_id, name, category, created_at, updated_at) VALUES \
         (1, 'P', 'food', '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
         (2, 'Q', 'craft', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            .to_owned(),
        "INSERT INTO applications (business_id, programme_id, bank_partner_id, amount_requested_idr, status, \
         amount_approved_idr, created_at, updated_at) VALUES \
         (1, 2, 1, 25000000, 'approved', 20000000, '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
         (2, 1, 1, 5000000, 'submitted', NULL, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            .to_owned(),
        "INSERT INTO trainings (id, title, venue, starts_on, ends_on, capacity, created_at, updated_at) VALUES \
         (1, 'T', 'V', '2026-01-05', '2026-01-05', 10, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            .to_owned(),
        "INSERT INTO registrations (training_id, business_id, status, registered_at, created_at, updated_at) VALUES \
         (1, 1, 'selected', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
         (1, 2, 'waitlisted', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            .to_owned(),
    ] {
        diesel::sql_query(&sql).execute(&mut conn).unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    assert_eq!(
        crate::helpers::migrate(&mut conn),
        versions.len() - versions.iter().position(|v| v == before).unwrap() - 1
    );
    assert_eq!(
        summary::verify(&mut conn).unwrap(),
        [],
        "the migration filled the summaries as a rebuild would"
    );
    drop(conn);
    drop(pool);
    let app = TestApp::serve(&empty.url);
    let officer = app.token_for(Role::Officer).await;
    let overview = app.get("/api/v1/stats/overview").token(&officer).send().await.json();
    assert_eq!(overview["businesses"]["total"], 2, "{overview}");
    assert_eq!(overview["businesses"]["ikm"], 1, "{overview}");
    assert_eq!(overview["products"]["total"], 2, "{overview}");
    assert_eq!(overview["financing"]["applications"], 2, "{overview}");
    assert_eq!(overview["financing"]["approved_idr"], 20_000_000, "{overview}");
    drop(app);
}

#[actix_rt::test]
async fn consent_changes_racing_application_transitions_keep_the_summary_exact() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    app.create_user("analis@bri.example", Role::Bank, Some(1));
    let bri = app.login("analis@bri.example", PASSWORD).await;
    let mut applications = Vec::new();
    let mut businesses = Vec::new();
    let mut persons = Vec::new();
    for n in 0..4 {
        let business = consenting_business(&app, &officer, n).await;
        businesses.push(business);
        persons.push(owner_of(&app, &officer, business).await);
        for _ in 0..2 {
            let body =
                json!({"business_id": business, "programme_id": 2, "amount_requested_idr": 25_000_000});
            let reply = app.post("/api/v1/applications").token(&officer).json(&body).send().await;
            assert_eq!(reply.status, 201);
            applications.push(reply.json()["id"].as_i64().unwrap());
        }
    }
    for application in &applications {
        for body in
            [json!({"status": "in_review"}), json!({"status": "approved", "amount_approved_idr": 20_000_000})]
        {
            let path = format!("/api/v1/applications/{application}");
            assert_eq!(app.patch(&path).token(&bri).json(&body).send().await.status, 200);
        }
    }
    // Consents withdrawn and given again (twice each at once: one of each pair is 409) while the
    // bank changes the approved amounts of the same owners' applications: all move the same
    // summary groups.
    let consent = json!({"channel": "paper_form", "evidence": "FORM/1", "text_version": "v1",
        "given_at": "2026-01-01T00:00:00Z"});
    let (mut gave, mut withdrew) = (0, 0);
    for round in 0..8 {
        let mut calls = Vec::new();
        for person in &persons {
            let all =
                app.get(&format!("/api/v1/persons/{person}/consents")).token(&officer).send().await.json();
            let active =
                all["data"].as_array().unwrap().iter().find(|c| c["active"] == true).map(|c| c["id"].clone());
            for _ in 0..2 {
                calls.push(match &active {
                    Some(id) => app
                        .post(&format!("/api/v1/persons/{person}/consents/{id}/withdrawal"))
                        .token(&officer)
                        .json(&json!({"channel": "letter"})),
                    None => {
                        app.post(&format!("/api/v1/persons/{person}/consents")).token(&officer).json(&consent)
                    }
                });
            }
        }
        for application in &applications {
            let body = json!({"amount_approved_idr": 20_000_000 + round * 1_000});
            calls.push(app.patch(&format!("/api/v1/applications/{application}")).token(&bri).json(&body));
        }
        let replies = join_all(calls.into_iter().map(|c| c.send())).await;
        for r in &replies {
            assert!(r.status.as_u16() < 500, "no 5xx: {}", String::from_utf8_lossy(&r.body));
        }
        let consents = &replies[..2 * persons.len()];
        assert!(consents.iter().all(|r| [200, 201, 409].contains(&r.status.as_u16())));
        // Of each pair exactly one took effect.
        for pair in consents.chunks(2) {
            assert_eq!(pair.iter().filter(|r| r.status != 409).count(), 1, "one of two identical changes");
        }
        gave += consents.iter().filter(|r| r.status == 201).count();
        withdrew += consents.iter().filter(|r| r.status == 200).count();
        assert_eq!(app.db(summary::verify).unwrap(), []);
    }
    assert_eq!((gave, withdrew), (16, 16));
    // The bank sees, and the database holds, every application as consenting again (round 8 gave).
    let seen = app.get("/api/v1/applications?limit=100").token(&bri).send().await.json();
    assert_eq!(seen["data"].as_array().unwrap().len(), applications.len());
}

#[actix_rt::test]
async fn curation_decisions_racing_deletes_and_moves_neither_deadlock_nor_miscount() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await; // Indomaret
    let mut businesses = Vec::new();
    for n in 0..6 {
        businesses.push(app.create_business(&officer, &business_json(n)).await["id"].as_i64().unwrap());
    }
    let mut curations = Vec::new();
    for (i, business) in businesses.iter().enumerate() {
        for _ in 0..2 {
            let body = json!({"business_id": business, "name": format!("Produk {i}"), "category": "food"});
            let product = app.post("/api/v1/products").token(&officer).json(&body).send().await.json()["id"]
                .as_i64()
                .unwrap();
            let body = json!({"product_id": product, "retail_partner_id": 1});
            let curation =
                app.post("/api/v1/curations").token(&officer).json(&body).send().await.json()["id"]
                    .as_i64()
                    .unwrap();
            curations.push((business, product, curation));
        }
    }
    // At once: each curation passed, while its product moves to the next business or is
    // deleted, and every other business is deleted with its products.
    let mut calls = Vec::new();
    for (i, (_, product, curation)) in curations.iter().enumerate() {
        calls.push(
            app.patch(&format!("/api/v1/curations/{curation}"))
                .token(&retail)
                .json(&json!({"status": "passed"})),
        );
        calls.push(match i % 2 {
            0 => app.delete(&format!("/api/v1/products/{product}")).token(&officer),
            _ => app
                .patch(&format!("/api/v1/products/{product}"))
                .token(&officer)
                .json(&json!({"business_id": businesses[(i / 2 + 1) % businesses.len()]})),
        });
    }
    for business in businesses.iter().step_by(2) {
        calls.push(app.delete(&format!("/api/v1/businesses/{business}")).token(&officer));
    }
    let replies = join_all(calls.into_iter().map(|c| c.send())).await;
    let errors: Vec<String> = replies
        .iter()
        .filter(|r| r.status.as_u16() >= 500)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(app.db(summary::verify).unwrap(), []);
}
