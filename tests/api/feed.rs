//! The banks' incremental pull is exact: after any sequence of writes, and of days passing, a
//! bank that keeps a copy by pulling `updated_since` the largest `updated_at` it has seen (and
//! deleting what comes as `left`) holds exactly what a full pull gives. On both back ends.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use umkm_api::banks::feed;
use umkm_api::domain::role::Role;

use crate::helpers::{
    TestApp, apply, bank_token, business_json, consent_for, consenting_business, spawn_app, withdraw_consents,
};

/// Seeded by the migrations: BRI is bank 1 (KUR mikro is programme 2), BNI bank 2 (KUR mikro 5).
const BRI: i64 = 1;
const BNI: i64 = 2;
const BRI_KUR_MIKRO: i64 = 2;
const BNI_KUR_MIKRO: i64 = 5;

/// Every page of a pull (two rows a page, to cross cursors), in order.
async fn pull_all(app: &TestApp, token: &str, bank: i64, since: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = String::from("limit=2");
        if let Some(since) = since {
            query.push_str(&format!("&updated_since={since}"));
        }
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let reply = app
            .get(&format!("/api/v1/bank-partners/{bank}/eligible-applicants?{query}"))
            .token(token)
            .send()
            .await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let page = reply.json();
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
}

/// A bank's copy of its pull, kept by incremental pulls.
struct Copy {
    bank: i64,
    token: String,
    rows: BTreeMap<i64, Value>,
    since: String,
}

impl Copy {
    /// A copy replayed from the very start.
    fn new(bank: i64, token: &str) -> Copy {
        Copy { bank, token: token.to_owned(), rows: BTreeMap::new(), since: "1970-01-01T00:00:00Z".into() }
    }

    /// Applies an incremental pull; the entries it got that are new since the last one (the
    /// pull is inclusive: the entry at the boundary time comes again).
    async fn sync(&mut self, app: &TestApp) -> Vec<Value> {
        let boundary = self.since.clone();
        let entries = pull_all(app, &self.token, self.bank, Some(&self.since)).await;
        for entry in &entries {
            let id = entry["application_id"].as_i64().unwrap();
            if entry["left"] == true {
                self.rows.remove(&id);
            } else {
                self.rows.insert(id, entry.clone());
            }
            let at = entry["updated_at"].as_str().unwrap();
            if at > self.since.as_str() {
                self.since = at.to_owned();
            }
        }
        entries.into_iter().filter(|e| e["updated_at"].as_str().unwrap() > boundary.as_str()).collect()
    }

    /// Syncs, then checks the copy against a full pull and a copy replayed from the start.
    async fn sync_and_check(&mut self, app: &TestApp) -> Vec<Value> {
        let entries = self.sync(app).await;
        let full: BTreeMap<i64, Value> = pull_all(app, &self.token, self.bank, None)
            .await
            .into_iter()
            .map(|e| {
                assert_eq!(e["left"], false, "a full pull lists no departures");
                (e["application_id"].as_i64().unwrap(), e)
            })
            .collect();
        assert_eq!(self.rows, full, "the incrementally kept copy is the full pull");
        let mut replayed = Copy::new(self.bank, &self.token);
        replayed.sync(app).await;
        assert_eq!(replayed.rows, full, "an incremental pull replayed from the start is the full pull");
        entries
    }
}

fn ids(entries: &[Value]) -> Vec<(i64, bool)> {
    entries.iter().map(|e| (e["application_id"].as_i64().unwrap(), e["left"].as_bool().unwrap())).collect()
}

fn reevaluate(app: &TestApp) -> usize {
    app.db(feed::reevaluate).expect("the re-evaluation")
}

#[actix_rt::test]
async fn an_applicant_that_becomes_eligible_by_a_business_change_reaches_the_incremental_pull() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let mut copy = Copy::new(BRI, &bri);
    let mut body = business_json(1);
    body.as_object_mut().unwrap().remove("nib");
    let business = app.create_business(&officer, &body).await["id"].as_i64().unwrap();
    consent_for(&app, &officer, business, None).await;
    let application = apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await;
    assert_eq!(application["eligibility"], json!({"eligible": false, "reasons": ["nib_required"]}));
    let id = application["id"].as_i64().unwrap();
    assert!(
        copy.sync_and_check(&app).await.is_empty(),
        "a never-eligible application is not shown to the bank"
    );

    let patched = app
        .patch(&format!("/api/v1/businesses/{business}"))
        .token(&officer)
        .json(&json!({"nib": "9999000011113"}))
        .send()
        .await;
    assert_eq!(patched.status, 200);
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(id, false)]);
    assert_eq!(got[0]["nib"], "9999000011113");
    assert_eq!(got[0]["status"], "submitted");

    // Nothing changed: the next incremental pull repeats only the boundary entry.
    assert_eq!(ids(&pull_all(&app, &bri, BRI, Some(&copy.since)).await), [(id, false)]);
    assert!(copy.sync_and_check(&app).await.is_empty());
}

#[actix_rt::test]
async fn changed_applicant_data_and_consent_withdrawn_and_given_again_reach_the_incremental_pull() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let bni = bank_token(&app, BNI).await;
    let mut copy = Copy::new(BRI, &bri);
    let mut bni_copy = Copy::new(BNI, &bni);
    let business = consenting_business(&app, &officer, 1).await;
    let other = consenting_business(&app, &officer, 2).await;
    let id = apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    let other_id = apply(&app, &officer, other, BRI_KUR_MIKRO, 20_000_000).await["id"].as_i64().unwrap();
    let mut got = ids(&copy.sync_and_check(&app).await);
    got.sort();
    assert_eq!(got, [(id, false), (other_id, false)]);
    let path = format!("/api/v1/businesses/{business}");

    // The address and the revenue a bank checks.
    let reply = app
        .patch(&path)
        .token(&officer)
        .json(&json!({"address": "Jl. Baru 7", "annual_revenue_idr": 900_000_000}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(id, false)], "only the changed applicant moves");
    assert_eq!(got[0]["address"], "Jl. Baru 7");
    assert_eq!(got[0]["annual_revenue_idr"], 900_000_000);

    // A change the bank does not see (the phone) does not move the feed.
    let reply = app.patch(&path).token(&officer).json(&json!({"phone": "081299998888"})).send().await;
    assert_eq!(reply.status, 200);
    assert!(copy.sync_and_check(&app).await.is_empty(), "the phone is not in the pull");

    // Consent withdrawn: the applicant leaves, with nothing of it but its ids.
    assert_eq!(withdraw_consents(&app, &officer, business).await, 1);
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(id, true)]);
    assert_eq!(got[0]["left_reason"], "consent_withdrawn");
    assert_eq!(got[0]["business_id"], business);
    for hidden in ["owner_nik", "owner_name", "address", "business_name", "nib", "amount_requested_idr"] {
        assert_eq!(got[0][hidden], Value::Null, "{hidden} of an applicant that withdrew consent");
    }
    assert!(!copy.rows.contains_key(&id));

    // Consent given again: back in, with its data.
    consent_for(&app, &officer, business, None).await;
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(id, false)]);
    assert_eq!(got[0]["owner_nik"], business_json(1)["owner_nik"]);

    // Another bank saw none of it.
    assert!(bni_copy.sync_and_check(&app).await.is_empty());
}

#[actix_rt::test]
async fn reaching_the_minimum_age_with_time_alone_reaches_the_incremental_pull_after_the_daily_run() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let mut copy = Copy::new(BRI, &bri);
    let mut body = business_json(1);
    let young = (chrono::Utc::now().date_naive() - chrono::Days::new(60)).to_string();
    body["established_on"] = json!(young);
    let business = app.create_business(&officer, &body).await["id"].as_i64().unwrap();
    consent_for(&app, &officer, business, None).await;
    let application = apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await;
    assert_eq!(application["eligibility"]["reasons"], json!(["business_too_young"]));
    let id = application["id"].as_i64().unwrap();
    assert!(copy.sync_and_check(&app).await.is_empty());

    // Time passes: moving the start date back seven months in the database, behind the API's
    // back, is what seven months do to this business's age. No write tells the feed.
    let older = (chrono::Utc::now().date_naive() - chrono::Months::new(7)).to_string();
    app.db(|conn| {
        use diesel::prelude::*;
        use umkm_api::db::schema::businesses;
        diesel::update(businesses::table.find(business))
            .set(
                businesses::established_on.eq(chrono::NaiveDate::parse_from_str(&older, "%Y-%m-%d").unwrap()),
            )
            .execute(conn)
    })
    .unwrap();
    assert!(copy.sync_and_check(&app).await.is_empty(), "nothing moves before the daily run");

    assert_eq!(reevaluate(&app), 1, "the daily run moves the applicant that became eligible");
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(id, false)]);
    assert_eq!(got[0]["established_on"], older);
    assert_eq!(reevaluate(&app), 0, "the daily run is idempotent");
}

#[actix_rt::test]
async fn financing_elsewhere_takes_an_applicant_out_and_its_end_brings_it_back() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let bni = bank_token(&app, BNI).await;
    let mut copy = Copy::new(BRI, &bri);
    let business = consenting_business(&app, &officer, 1).await;
    let at_bri = apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    let at_bni = apply(&app, &officer, business, BNI_KUR_MIKRO, 30_000_000).await["id"].as_i64().unwrap();
    assert_eq!(ids(&copy.sync_and_check(&app).await), [(at_bri, false)]);

    // BNI approves: at BRI the applicant now has active financing elsewhere and leaves.
    let path = format!("/api/v1/applications/{at_bni}");
    let ends = (chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string();
    for body in [
        json!({"status": "in_review"}),
        json!({"status": "approved", "amount_approved_idr": 30_000_000, "financing_ends_on": ends}),
    ] {
        let reply = app.patch(&path).token(&bni).json(&body).send().await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    }
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(at_bri, true)]);
    assert_eq!(got[0]["left_reason"], "not_eligible");

    // The financing ends with time alone (the end date moved into the past in the database:
    // what the days up to it do); the daily run brings the applicant back.
    let ended = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    app.db(|conn| {
        use diesel::prelude::*;
        use umkm_api::db::schema::applications;
        diesel::update(applications::table.find(at_bni))
            .set(applications::financing_ends_on.eq(ended))
            .execute(conn)
    })
    .unwrap();
    assert!(copy.sync_and_check(&app).await.is_empty(), "nothing moves before the daily run");
    assert_eq!(reevaluate(&app), 1);
    assert_eq!(ids(&copy.sync_and_check(&app).await), [(at_bri, false)]);
}

#[actix_rt::test]
async fn a_closed_programme_takes_its_applicants_out_and_a_status_change_moves_them() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let admin = app.token_for(Role::Admin).await;
    let bri = bank_token(&app, BRI).await;
    let mut copy = Copy::new(BRI, &bri);
    let business = consenting_business(&app, &officer, 1).await;
    let id = apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    copy.sync_and_check(&app).await;

    // The bank reviews it: the status it sees moves the feed.
    let reply = app
        .patch(&format!("/api/v1/applications/{id}"))
        .token(&bri)
        .json(&json!({"status": "in_review"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(id, false)]);
    assert_eq!(got[0]["status"], "in_review");
    let submitted = pull_all(&app, &bri, BRI, Some(&copy.since)).await;
    assert_eq!(ids(&submitted), [(id, false)]);
    let reply = app
        .get(&format!(
            "/api/v1/bank-partners/{BRI}/eligible-applicants?status=submitted&updated_since={}",
            copy.since
        ))
        .token(&bri)
        .send()
        .await;
    assert_eq!(reply.json()["data"][0]["left_reason"], "other_status", "left the view of submitted ones");

    let programme = format!("/api/v1/programmes/{BRI_KUR_MIKRO}");
    let reply = app.patch(&programme).token(&admin).json(&json!({"open": false})).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(id, true)]);
    assert_eq!(got[0]["left_reason"], "programme_closed");

    let reply = app.patch(&programme).token(&admin).json(&json!({"open": true})).send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(ids(&copy.sync_and_check(&app).await), [(id, false)]);
    assert_eq!(reevaluate(&app), 0, "every write kept the feed current");
}

/// Writes that change what a bank sees of one business, all at once: its data, new
/// applications, and an approval at another bank that makes the applications at this one
/// ineligible. On PostgreSQL (READ COMMITTED) each refresh must compute from the data the others
/// committed: afterwards a re-evaluation from scratch finds nothing to move, and the bank's
/// incrementally kept copy is the full pull.
#[actix_rt::test]
async fn concurrent_writes_to_one_business_leave_the_feed_exact() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let bni = bank_token(&app, BNI).await;
    let business = consenting_business(&app, &officer, 1).await;
    let at_bni = apply(&app, &officer, business, BNI_KUR_MIKRO, 30_000_000).await["id"].as_i64().unwrap();
    let reply = app
        .patch(&format!("/api/v1/applications/{at_bni}"))
        .token(&bni)
        .json(&json!({"status": "in_review"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let mut copy = Copy::new(BRI, &bri);
    let first = apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    assert_eq!(ids(&copy.sync_and_check(&app).await), [(first, false)]);

    let business_path = format!("/api/v1/businesses/{business}");
    let approval_path = format!("/api/v1/applications/{at_bni}");
    let ends = (chrono::Utc::now().date_naive() + chrono::Days::new(90)).to_string();
    let mut calls = Vec::new();
    for i in 0..8 {
        calls.push(
            app.patch(&business_path)
                .token(&officer)
                .json(&json!({"address": format!("Jl. Serentak {i}")}))
                .send(),
        );
        calls.push(
            app.post("/api/v1/applications")
                .token(&officer)
                .json(&json!({"business_id": business, "programme_id": BRI_KUR_MIKRO, "amount_requested_idr": 20_000_000 + i}))
                .send(),
        );
    }
    calls.push(
        app.patch(&approval_path)
            .token(&bni)
            .json(
                &json!({"status": "approved", "amount_approved_idr": 30_000_000, "financing_ends_on": ends}),
            )
            .send(),
    );
    let statuses: Vec<u16> = join_all(calls).await.iter().map(|r| r.status.as_u16()).collect();
    // A PATCH without `If-Match` may still lose to another that committed after it read: 412.
    assert!(statuses.iter().all(|s| matches!(s, 200 | 201 | 412)), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 8, "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 200, "the approval");

    assert_eq!(reevaluate(&app), 0, "every refresh computed from what the others committed");
    let got = copy.sync_and_check(&app).await;
    // Financed at BNI now: every application at BRI is out. The first left; a new one created
    // before the approval committed was listed for a moment and left too.
    assert!(ids(&got).contains(&(first, true)), "{got:?}");
    assert!(got.iter().all(|e| e["left"] == true), "{got:?}");
    assert!(copy.rows.is_empty());
}

#[actix_rt::test]
async fn kur_is_one_lender_per_person_across_their_businesses() {
    // Issue 29: a person with two businesses, financed at BNI through one, holds active
    // financing elsewhere at BRI through the other: in verdicts, the pull and the feed.
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let bni = bank_token(&app, BNI).await;
    let mut copy = Copy::new(BRI, &bri);
    let first = consenting_business(&app, &officer, 1).await;
    // The same owner (NIK and name), a second business of theirs.
    let mut body = business_json(2);
    body["owner_nik"] = business_json(1)["owner_nik"].clone();
    body["owner_name"] = business_json(1)["owner_name"].clone();
    let second = app.create_business(&officer, &body).await;
    assert!(second["consented_to_bank_sharing_at"].is_string(), "the person's consent: {second}");
    let first_owner =
        app.get(&format!("/api/v1/businesses/{first}")).token(&officer).send().await.json()["owner_id"]
            .clone();
    assert_eq!(second["owner_id"], first_owner, "one person owns both");
    let second = second["id"].as_i64().unwrap();

    let at_bri = apply(&app, &officer, second, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    let at_bni = apply(&app, &officer, first, BNI_KUR_MIKRO, 30_000_000).await["id"].as_i64().unwrap();
    assert_eq!(ids(&copy.sync_and_check(&app).await), [(at_bri, false)]);

    let ends = (chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string();
    for body in [
        json!({"status": "in_review"}),
        json!({"status": "approved", "amount_approved_idr": 30_000_000, "financing_ends_on": ends}),
    ] {
        let reply = app.patch(&format!("/api/v1/applications/{at_bni}")).token(&bni).json(&body).send().await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    }
    // The verdict at BRI, through the other business.
    let verdict = app.get(&format!("/api/v1/applications/{at_bri}")).token(&officer).send().await.json();
    assert_eq!(verdict["eligibility"], json!({"eligible": false, "reasons": ["active_financing_elsewhere"]}));
    // The pull and the feed: the applicant leaves BRI's pull at once.
    let got = copy.sync_and_check(&app).await;
    assert_eq!(ids(&got), [(at_bri, true)]);
    assert_eq!(got[0]["left_reason"], "not_eligible");
    let full = pull_all(&app, &bri, BRI, None).await;
    assert!(full.is_empty(), "{full:?}");
}
