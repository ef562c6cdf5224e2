//! Random sequences of API writes of every kind that changes a statistic (proptest): after each
//! sequence the statistics' summaries equal their recomputation from the data.

use diesel::prelude::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use umkm_api::domain::role::Role;
use umkm_api::summary;

use crate::helpers::{PASSWORD, spawn_app};
use crate::summary::{CATEGORIES, DISTRICTS, KBLI, REVENUE, STATUS, Spec, spec};
/// One API write (targets are indexes into what exists, taken modulo its length).
#[derive(Debug, Clone)]
enum Op {
    Create(Spec),
    Import(Vec<Spec>),
    /// A patch that moves the business between groups.
    Patch(usize, Value),
    /// The owner's consent to every bank given (or kept) or withdrawn: it moves their
    /// businesses' applications.
    Consent(usize, bool),
    Delete(usize),
    Product(usize, usize),
    ProductCategory(usize, usize),
    DeleteProduct(usize),
    Apply(usize, usize),
    Transition(usize, usize),
    Training(Vec<usize>),
    Register(usize, usize),
    Select(usize),
    RegistrationStatus(usize, usize),
    Curate(usize),
    Decide(usize, bool),
    /// A curation submitted and passed at once (so that the figures that need a passed
    /// product are reached often).
    Pass(usize),
    Place(usize),
    Delist(usize),
    MoveProduct(usize, usize),
    Fold,
}

fn patch() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0..3usize).prop_map(|d| json!({"district_code": DISTRICTS[d]})),
        (0..3usize).prop_map(|k| json!({"kbli": KBLI[k]})),
        (0..4usize).prop_map(|r| json!({"annual_revenue_idr": REVENUE[r]})),
        proptest::option::of(0..30i32).prop_map(|e| json!({"employees": e})),
        proptest::option::of(1990..2026i32)
            .prop_map(|y| json!({"established_on": y.map(|y| format!("{y}-01-15"))})),
        (0..3usize).prop_map(|s| json!({"status": STATUS[s]})),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => spec().prop_map(Op::Create),
        1 => proptest::collection::vec(spec(), 1..4).prop_map(Op::Import),
        4 => (any::<usize>(), patch()).prop_map(|(t, p)| Op::Patch(t, p)),
        // Consent given or withdrawn: it moves the business's applications.
        2 => (any::<usize>(), any::<bool>()).prop_map(|(t, c)| Op::Consent(t, c)),
        1 => any::<usize>().prop_map(Op::Delete),
        2 => (any::<usize>(), 0..3usize).prop_map(|(t, c)| Op::Product(t, c)),
        1 => (any::<usize>(), 0..3usize).prop_map(|(t, c)| Op::ProductCategory(t, c)),
        1 => any::<usize>().prop_map(Op::DeleteProduct),
        3 => (any::<usize>(), 0..3usize).prop_map(|(t, p)| Op::Apply(t, p)),
        3 => (any::<usize>(), 0..5usize).prop_map(|(t, s)| Op::Transition(t, s)),
        1 => proptest::collection::vec(any::<usize>(), 0..4).prop_map(Op::Training),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(t, b)| Op::Register(t, b)),
        1 => any::<usize>().prop_map(Op::Select),
        1 => (any::<usize>(), 0..2usize).prop_map(|(t, s)| Op::RegistrationStatus(t, s)),
        1 => any::<usize>().prop_map(Op::Curate),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(t, p)| Op::Decide(t, p)),
        3 => any::<usize>().prop_map(Op::Pass),
        // The KBLI of a business, IKM or not: moves it in and out of the curated IKM businesses.
        2 => (any::<usize>(), 0..3usize).prop_map(|(t, k)| Op::Patch(t, json!({"kbli": KBLI[k]}))),
        2 => any::<usize>().prop_map(Op::Place),
        1 => any::<usize>().prop_map(Op::Delist),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(p, b)| Op::MoveProduct(p, b)),
        1 => Just(Op::Fold),
    ]
}

/// Programmes applied to: BRI's KUR Super Mikro and KUR Mikro, BNI's KUR Super Mikro (with an
/// amount in each one's band).
const PROGRAMMES: [(i64, i64); 3] = [(1, 5_000_000), (2, 25_000_000), (4, 5_000_000)];

/// What the sequence has made so far, by id.
#[derive(Default)]
struct World {
    businesses: Vec<i64>,
    products: Vec<i64>,
    applications: Vec<i64>,
    trainings: Vec<i64>,
    registrations: Vec<i64>,
    curations: Vec<i64>,
    placements: Vec<i64>,
    passed: Vec<i64>,
    outlet: i64,
    serial: usize,
}

fn pick(ids: &[i64], at: usize) -> Option<i64> {
    (!ids.is_empty()).then(|| ids[at % ids.len()])
}

/// The id of a 201 answer, or `None` for an answer that changed nothing (a 4xx that the
/// sequence ran into, such as an illegal transition or a duplicate registration).
fn made(reply: &crate::helpers::Reply, what: &str) -> Option<i64> {
    assert!(reply.status.as_u16() < 500, "{what}: {} {}", reply.status, String::from_utf8_lossy(&reply.body));
    (reply.status.as_u16() == 201).then(|| reply.json()["id"].as_i64().expect("an id"))
}

fn refused_or_ok(reply: &crate::helpers::Reply, what: &str) {
    assert!(reply.status.as_u16() < 500, "{what}: {} {}", reply.status, String::from_utf8_lossy(&reply.body));
}

/// Runs `ops` through the API and returns the summary's differences from a recomputation.
async fn run(ops: Vec<Op>) -> Vec<summary::Difference> {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await; // Indomaret
    app.create_user("analis@bri.example", Role::Bank, Some(1));
    app.create_user("analis@bni.example", Role::Bank, Some(2));
    let banks =
        [app.login("analis@bri.example", PASSWORD).await, app.login("analis@bni.example", PASSWORD).await];
    let mut w = World::default();
    let outlet = app
        .post("/api/v1/outlets")
        .token(&retail)
        .json(&json!({"code": "TPRP", "name": "Gerai Uji", "district_code": "35.24.05"}))
        .send()
        .await;
    w.outlet = made(&outlet, "outlet").expect("an outlet");
    let future = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    for op in ops {
        match op {
            Op::Create(spec) => {
                w.serial += 1;
                let reply =
                    app.post("/api/v1/businesses").token(&officer).json(&spec.body(w.serial)).send().await;
                w.businesses.extend(made(&reply, "create"));
            }
            Op::Import(specs) => {
                let rows: Vec<Value> = specs
                    .iter()
                    .map(|s| {
                        w.serial += 1;
                        s.body(w.serial)
                    })
                    .collect();
                let reply =
                    app.post("/api/v1/businesses/import").token(&officer).json(&json!(rows)).send().await;
                refused_or_ok(&reply, "import");
                if reply.status == 201 {
                    let list =
                        app.get("/api/v1/businesses?limit=500&sort=-id").token(&officer).send().await.json();
                    let newest: Vec<i64> =
                        list["data"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect();
                    w.businesses.extend(newest.iter().take(rows.len()));
                }
            }
            Op::Patch(at, body) => {
                let Some(id) = pick(&w.businesses, at) else { continue };
                let reply =
                    app.patch(&format!("/api/v1/businesses/{id}")).token(&officer).json(&body).send().await;
                refused_or_ok(&reply, "patch");
            }
            Op::Consent(at, give) => {
                let Some(id) = pick(&w.businesses, at) else { continue };
                if give {
                    crate::helpers::consent_for(&app, &officer, id, None).await;
                } else {
                    crate::helpers::withdraw_consents(&app, &officer, id).await;
                }
            }
            Op::Delete(at) => {
                let Some(id) = pick(&w.businesses, at) else { continue };
                let reply = app.delete(&format!("/api/v1/businesses/{id}")).token(&officer).send().await;
                refused_or_ok(&reply, "delete");
                if reply.status == 204 {
                    w.businesses.retain(|b| *b != id);
                    let left: Vec<i64> = app.db(|c| {
                        use umkm_api::db::schema::products;
                        products::table.select(products::id).load(c).unwrap()
                    });
                    w.products.retain(|p| left.contains(p));
                }
            }
            Op::Product(at, category) => {
                let Some(business) = pick(&w.businesses, at) else { continue };
                let body =
                    json!({"business_id": business, "name": "Produk Uji", "category": CATEGORIES[category]});
                let reply = app.post("/api/v1/products").token(&officer).json(&body).send().await;
                w.products.extend(made(&reply, "product"));
            }
            Op::ProductCategory(at, category) => {
                let Some(id) = pick(&w.products, at) else { continue };
                let body = json!({"category": CATEGORIES[category]});
                let reply =
                    app.patch(&format!("/api/v1/products/{id}")).token(&officer).json(&body).send().await;
                refused_or_ok(&reply, "product patch");
            }
            Op::DeleteProduct(at) => {
                let Some(id) = pick(&w.products, at) else { continue };
                let reply = app.delete(&format!("/api/v1/products/{id}")).token(&officer).send().await;
                refused_or_ok(&reply, "product delete");
                if reply.status == 204 {
                    w.products.retain(|p| *p != id);
                }
            }
            Op::Apply(at, programme) => {
                let Some(business) = pick(&w.businesses, at) else { continue };
                let (programme, amount) = PROGRAMMES[programme];
                let body = json!({"business_id": business, "programme_id": programme, "amount_requested_idr": amount});
                let reply = app.post("/api/v1/applications").token(&officer).json(&body).send().await;
                w.applications.extend(made(&reply, "application"));
            }
            Op::Transition(at, step) => {
                let Some(id) = pick(&w.applications, at) else { continue };
                let path = format!("/api/v1/applications/{id}");
                let (token, body) = match step {
                    0 => (&banks[id as usize % 2], json!({"status": "in_review"})),
                    1 => (
                        &banks[id as usize % 2],
                        json!({"status": "approved", "amount_approved_idr": 4_000_000}),
                    ),
                    2 => (&banks[id as usize % 2], json!({"status": "rejected"})),
                    3 => (&banks[id as usize % 2], json!({"status": "disbursed"})),
                    _ => (&officer, json!({"status": "withdrawn"})),
                };
                // Both banks try, so that each application's own bank moves it now and then.
                for token in [token, &banks[(id as usize + 1) % 2]] {
                    let reply = app.patch(&path).token(token).json(&body).send().await;
                    refused_or_ok(&reply, "transition");
                }
            }
            Op::Training(registrants) => {
                let registrations: Vec<Value> = registrants
                    .iter()
                    .filter_map(|at| pick(&w.businesses, *at))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .map(|b| json!({"business_id": b}))
                    .collect();
                let body = json!({"title": "Pelatihan Uji", "venue": "Aula", "starts_on": future,
                                  "ends_on": future, "capacity": 2, "registrations": registrations});
                let reply = app.post("/api/v1/trainings").token(&officer).json(&body).send().await;
                w.trainings.extend(made(&reply, "training"));
            }
            Op::Register(training, at) => {
                let (Some(training), Some(business)) =
                    (pick(&w.trainings, training), pick(&w.businesses, at))
                else {
                    continue;
                };
                let reply = app
                    .post(&format!("/api/v1/trainings/{training}/registrations"))
                    .token(&officer)
                    .json(&json!({"business_id": business}))
                    .send()
                    .await;
                w.registrations.extend(made(&reply, "registration"));
            }
            Op::Select(training) => {
                let Some(training) = pick(&w.trainings, training) else { continue };
                let reply =
                    app.post(&format!("/api/v1/trainings/{training}/selection")).token(&officer).send().await;
                refused_or_ok(&reply, "selection");
            }
            Op::RegistrationStatus(at, status) => {
                let Some(id) = pick(&w.registrations, at) else { continue };
                let body = json!({"status": (["rejected", "registered"][status])});
                let reply = app
                    .patch(&format!("/api/v1/registrations/{id}"))
                    .token(&officer)
                    .json(&body)
                    .send()
                    .await;
                refused_or_ok(&reply, "registration patch");
            }
            Op::Curate(at) => {
                let Some(product) = pick(&w.products, at) else { continue };
                let body = json!({"product_id": product, "retail_partner_id": 1});
                let reply = app.post("/api/v1/curations").token(&officer).json(&body).send().await;
                w.curations.extend(made(&reply, "curation"));
            }
            Op::Decide(at, passed) => {
                let Some(id) = pick(&w.curations, at) else { continue };
                let body = json!({"status": if passed { "passed" } else { "rejected" }});
                let reply =
                    app.patch(&format!("/api/v1/curations/{id}")).token(&retail).json(&body).send().await;
                refused_or_ok(&reply, "curation decision");
            }
            Op::Pass(at) => {
                let Some(product) = pick(&w.products, at) else { continue };
                let body = json!({"product_id": product, "retail_partner_id": 1});
                let reply = app.post("/api/v1/curations").token(&officer).json(&body).send().await;
                let Some(curation) = made(&reply, "curation") else { continue };
                let path = format!("/api/v1/curations/{curation}");
                let reply = app.patch(&path).token(&retail).json(&json!({"status": "passed"})).send().await;
                refused_or_ok(&reply, "pass");
                w.passed.push(product);
            }
            Op::Place(at) => {
                let Some(product) = pick(&w.passed, at).or_else(|| pick(&w.products, at)) else { continue };
                let body = json!({"product_id": product, "outlet_id": w.outlet});
                let reply = app.post("/api/v1/placements").token(&retail).json(&body).send().await;
                w.placements.extend(made(&reply, "placement"));
            }
            Op::Delist(at) => {
                let Some(id) = pick(&w.placements, at) else { continue };
                let reply = app.delete(&format!("/api/v1/placements/{id}")).token(&retail).send().await;
                refused_or_ok(&reply, "delisting");
            }
            Op::MoveProduct(at, to) => {
                let product = pick(&w.passed, at).or_else(|| pick(&w.products, at));
                let (Some(id), Some(business)) = (product, pick(&w.businesses, to)) else { continue };
                let body = json!({"business_id": business});
                let reply =
                    app.patch(&format!("/api/v1/products/{id}")).token(&officer).json(&body).send().await;
                refused_or_ok(&reply, "product move");
            }
            Op::Fold => {
                app.db(summary::fold).expect("the fold runs");
            }
        }
    }
    let differences = app.db(summary::verify).expect("verify runs");
    // And once folded, the same.
    app.db(summary::fold).expect("the fold runs");
    let mut after_fold = app.db(summary::verify).expect("verify runs");
    after_fold.extend(differences);
    after_fold
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random sequences of API writes of every kind that changes a figure: after each
    /// sequence the summary equals its recomputation from the data, before and after a fold.
    #[test]
    fn the_summary_follows_every_sequence_of_writes(ops in proptest::collection::vec(op(), 10..60)) {
        let differences = actix_rt::System::new().block_on(run(ops));
        prop_assert!(differences.is_empty(), "{differences:#?}");
    }
}
