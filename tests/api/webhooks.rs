//! Webhooks: a bank's subscription gets its events, signed, in order, at least once, through a
//! real HTTP receiver on loopback; a receiver that fails is retried; what the bank may not see
//! is never sent; a retailer gets its curation and placement events; admins manage every
//! subscription, a partner's users their own only. (The signatures are checked with the
//! third-party `standardwebhooks` package in `tests/faults/webhooks.py`; here with our code.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use serde_json::{Value, json};
use umkm_api::domain::role::Role;
use umkm_api::webhooks::{dispatch, sign};

use crate::helpers::{TestApp, apply, bank_token, consenting_business, spawn_app};
use crate::retail::{outlet, product, submit};

const BRI: i64 = 1;
const BNI: i64 = 2;
const BRI_KUR_MIKRO: i64 = 2;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A webhook receiver on loopback: answers `fail_first` requests with 500, then 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        Receiver::answering_after(fail_first, Duration::ZERO)
    }

    /// A receiver that takes `delay` to answer each request (a slow partner system).
    fn answering_after(fail_first: usize, delay: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(0usize));
        let (store, count) = (got.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (store, count) = (store.clone(), count.clone());
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut headers = Vec::new();
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            headers.push(line.trim_end().to_owned());
                        }
                        let header = |name: &str| {
                            headers
                                .iter()
                                .find_map(|h| {
                                    h.split_once(':')
                                        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                                        .map(|(_, v)| v.trim().to_owned())
                                })
                                .unwrap_or_default()
                        };
                        let length: usize = header("content-length").parse().unwrap_or(0);
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let n = {
                            let mut c = count.lock().unwrap();
                            *c += 1;
                            *c
                        };
                        std::thread::sleep(delay);
                        let status = if n <= fail_first { "500 Internal Server Error" } else { "200 OK" };
                        if n > fail_first {
                            store.lock().unwrap().push(Received {
                                id: header("webhook-id"),
                                timestamp: header("webhook-timestamp"),
                                signature: header("webhook-signature"),
                                body: String::from_utf8(body).unwrap(),
                            });
                        }
                        let _ = writer
                            .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes());
                    }
                });
            }
        });
        Receiver { url, got }
    }

    /// Waits until `n` deliveries arrived (at most 20 s); what arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n || started.elapsed() > Duration::from_secs(20) {
                return got;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn subscribe(app: &TestApp, admin: &str, bank: i64, url: &str) -> (i64, String) {
    let body = json!({"bank_partner_id": bank, "url": url, "event_types":
        ["applicant.eligible", "applicant.updated", "applicant.left", "application.status_changed"]});
    let reply = app.post("/api/v1/webhook-subscriptions").token(admin).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let answer = reply.json();
    (answer["subscription"]["id"].as_i64().unwrap(), answer["secret"].as_str().unwrap().to_owned())
}

fn types(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["type"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_rt::test]
async fn a_banks_events_arrive_signed_in_order_and_a_failing_receiver_is_retried() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let bri = bank_token(&app, BRI).await;
    let receiver = Receiver::start(1);
    let (subscription, secret) = subscribe(&app, &admin, BRI, &receiver.url).await;
    let other = Receiver::start(0);
    subscribe(&app, &admin, BNI, &other.url).await;
    dispatch::spawn(app.pool.clone(), true);

    let business = consenting_business(&app, &officer, 1).await;
    let application =
        apply(&app, &officer, business, BRI_KUR_MIKRO, 40_000_000).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/businesses/{business}");
    let reply = app.patch(&path).token(&officer).json(&json!({"address": "Jl. Baru 1"})).send().await;
    assert_eq!(reply.status, 200);
    let reply = app
        .patch(&format!("/api/v1/applications/{application}"))
        .token(&bri)
        .json(&json!({"status": "in_review"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(crate::helpers::withdraw_consents(&app, &officer, business).await, 1);
    // Not consenting: a status change the bank may not see sends nothing.
    let reply = app
        .patch(&format!("/api/v1/applications/{application}"))
        .token(&officer)
        .json(&json!({"status": "withdrawn"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));

    // The review's two events come in the order its transaction wrote them.
    let expected = [
        "applicant.eligible",
        "applicant.updated",
        "application.status_changed",
        "applicant.updated",
        "applicant.left",
    ];
    let got = receiver.wait_for(expected.len()).await;
    assert_eq!(types(&got), expected, "in the order of the writes, the first one retried after a 500");
    for r in &got {
        let timestamp: i64 = r.timestamp.parse().unwrap();
        assert_eq!(sign::signature(&secret, &r.id, timestamp, &r.body).unwrap(), r.signature);
        assert!(r.id.starts_with("msg_"));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["data"]["application_id"], application);
        assert!(body["data"].get("owner_nik").is_none(), "events carry no personal data");
    }
    let left: Value = serde_json::from_str(&got[4].body).unwrap();
    assert_eq!(left["data"]["left_reason"], "consent_withdrawn");
    let changed: Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(
        (changed["data"]["from"].as_str(), changed["data"]["to"].as_str()),
        (Some("submitted"), Some("in_review"))
    );
    // The first delivery took two attempts; the log says so. BNI got nothing of BRI's.
    let log = app
        .get(&format!("/api/v1/webhook-subscriptions/{subscription}/deliveries"))
        .token(&admin)
        .send()
        .await
        .json();
    let first = log.as_array().unwrap().last().unwrap();
    assert_eq!((first["attempts"].as_i64(), first["last_status"].as_i64()), (Some(2), Some(200)));
    assert!(other.got.lock().unwrap().is_empty());

    // A redelivery repeats the message id.
    let delivery = first["id"].as_i64().unwrap();
    let reply = app
        .post(&format!("/api/v1/webhook-subscriptions/{subscription}/deliveries/{delivery}/redeliver"))
        .token(&admin)
        .send()
        .await;
    assert_eq!(reply.status, 202);
    let again = receiver.wait_for(expected.len() + 1).await;
    assert_eq!(again.last().unwrap().id, got[0].id);
}

#[actix_rt::test]
async fn subscriptions_refuse_unsafe_targets_and_only_admins_manage_them() {
    let app = spawn_app_strict().await;
    let admin = app.token_for(Role::Admin).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest",
        "ftp://x/",
        "nope",
    ] {
        let body = json!({"bank_partner_id": BRI, "url": url, "event_types": ["applicant.left"]});
        let problem = app
            .post("/api/v1/webhook-subscriptions")
            .token(&admin)
            .json(&body)
            .send()
            .await
            .assert_problem(422);
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
    for body in [
        json!({"retail_partner_id": 1, "url": "https://example.com/h", "event_types": ["applicant.left"]}),
        json!({"bank_partner_id": BRI, "url": "https://example.com/h", "event_types": []}),
        json!({"url": "https://example.com/h", "event_types": ["applicant.left"]}),
    ] {
        app.post("/api/v1/webhook-subscriptions").token(&admin).json(&body).send().await.assert_problem(422);
    }
    for role in [Role::Officer, Role::Viewer] {
        let token = app.token_for(role).await;
        app.get("/api/v1/webhook-subscriptions").token(&token).send().await.assert_problem(403);
        let body = json!({"bank_partner_id": BRI, "url": "https://example.com/h", "event_types": ["applicant.left"]});
        app.post("/api/v1/webhook-subscriptions").token(&token).json(&body).send().await.assert_problem(403);
    }
}

/// A bank's user manages its own bank's subscriptions and sees no other partner's.
#[actix_rt::test]
async fn a_partners_user_manages_only_its_own_subscriptions() {
    let app = spawn_app_strict().await;
    let admin = app.token_for(Role::Admin).await;
    let bri = bank_token(&app, BRI).await;
    let bni = bank_token(&app, BNI).await;
    let retail = app.token_for(Role::Retail).await;
    // An address literal: this machine resolves no names.
    let url = "https://93.184.216.34/hooks";
    // The bank may leave its partner out; it is its own.
    let reply = app
        .post("/api/v1/webhook-subscriptions")
        .token(&bri)
        .json(&json!({"url": url, "event_types": ["applicant.eligible"]}))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let own = reply.json()["subscription"].clone();
    assert_eq!(own["bank_partner_id"], BRI);
    let id = own["id"].as_i64().unwrap();
    // Another bank, a retailer's events, or a retail partner: refused, and nothing written.
    for body in [
        json!({"bank_partner_id": BNI, "url": url, "event_types": ["applicant.eligible"]}),
        json!({"retail_partner_id": 1, "url": url, "event_types": ["curation.submitted"]}),
        json!({"url": url, "event_types": ["curation.submitted"]}),
    ] {
        app.post("/api/v1/webhook-subscriptions").token(&bri).json(&body).send().await.assert_problem(422);
    }
    assert_eq!(app.count("webhook_subscriptions"), 1);
    let listed = app.get("/api/v1/webhook-subscriptions").token(&bri).send().await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // BNI and the retailer: BRI's subscription does not exist for them.
    for token in [&bni, &retail] {
        let path = format!("/api/v1/webhook-subscriptions/{id}");
        app.get(&path).token(token).send().await.assert_problem(404);
        app.get(&format!("{path}/deliveries")).token(token).send().await.assert_problem(404);
        app.patch(&path).token(token).json(&json!({"active": false})).send().await.assert_problem(404);
        app.delete(&path).token(token).send().await.assert_problem(404);
        let listed = app.get("/api/v1/webhook-subscriptions").token(token).send().await.json();
        assert_eq!(listed, json!([]));
    }
    assert_eq!(
        app.get(&format!("/api/v1/webhook-subscriptions/{id}")).token(&admin).send().await.status,
        200
    );
    let reply = app
        .patch(&format!("/api/v1/webhook-subscriptions/{id}"))
        .token(&bri)
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["active"], false);
    assert_eq!(
        app.delete(&format!("/api/v1/webhook-subscriptions/{id}")).token(&bri).send().await.status,
        204
    );
    assert_eq!(app.count("webhook_subscriptions"), 0);
}

/// A retailer's subscription: its curations submitted and decided, its placements listed and
/// delisted (a product deleted off the shelf too), each with the record the retailer reads.
#[actix_rt::test]
async fn a_retailers_events_follow_its_curations_and_placements() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let receiver = Receiver::start(0);
    let types_wanted = ["curation.submitted", "curation.decided", "placement.listed", "placement.delisted"];
    let reply = app
        .post("/api/v1/webhook-subscriptions")
        .token(&retail)
        .json(&json!({"url": receiver.url, "event_types": types_wanted}))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let partner = reply.json()["subscription"]["retail_partner_id"].as_i64().unwrap();
    // A bank's events are not a retailer's.
    let body = json!({"url": receiver.url, "event_types": ["applicant.left"]});
    app.post("/api/v1/webhook-subscriptions").token(&retail).json(&body).send().await.assert_problem(422);
    dispatch::spawn(app.pool.clone(), true);

    let (_, first) = product(&app, &officer, 1).await;
    let (_, second) = product(&app, &officer, 2).await;
    let shop = outlet(&app, &retail, None, "W1", "35.24.05").await;
    let mut placements = Vec::new();
    for product in [first, second] {
        let curation = submit(&app, &officer, product, partner).await;
        let reply = app
            .patch(&format!("/api/v1/curations/{curation}"))
            .token(&retail)
            .json(&json!({"status": "passed"}))
            .send()
            .await;
        assert_eq!(reply.status, 200);
        let reply = app
            .post("/api/v1/placements")
            .token(&retail)
            .json(&json!({"product_id": product, "outlet_id": shop}))
            .send()
            .await;
        assert_eq!(reply.status, 201);
        placements.push(reply.json()["id"].as_i64().unwrap());
    }
    let reply = app.delete(&format!("/api/v1/placements/{}", placements[0])).token(&retail).send().await;
    assert_eq!(reply.status, 204);
    let reply = app.delete(&format!("/api/v1/products/{second}")).token(&admin).send().await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));

    let expected = [
        "curation.submitted",
        "curation.decided",
        "placement.listed",
        "curation.submitted",
        "curation.decided",
        "placement.listed",
        "placement.delisted",
        "placement.delisted",
    ];
    let got = receiver.wait_for(expected.len()).await;
    assert_eq!(types(&got), expected);
    let data = |n: usize| serde_json::from_str::<Value>(&got[n].body).unwrap()["data"].clone();
    assert_eq!(
        (data(0)["product_id"].as_i64(), data(0)["status"].as_str()),
        (Some(first), Some("submitted"))
    );
    assert_eq!(data(1)["status"], "passed");
    assert_eq!((data(2)["id"].as_i64(), data(2)["delisted_on"].is_null()), (Some(placements[0]), true));
    assert_eq!(data(6)["id"], placements[0]);
    assert!(data(6)["delisted_on"].is_string());
    assert_eq!((data(7)["id"].as_i64(), data(7)["product_id"].as_i64()), (Some(placements[1]), Some(second)));
    assert!(data(7)["delisted_on"].is_string(), "a deleted product leaves the shelf");
}

/// The application as production runs it: private targets refused.
async fn spawn_app_strict() -> TestApp {
    crate::helpers::spawn_app_with(|config| config.webhook_allow_private_targets = false).await
}

/// Two instances' dispatchers over one database: each event is sent once (a lease taken with
/// `FOR UPDATE SKIP LOCKED` on PostgreSQL), and a subscription's events arrive in order.
#[actix_rt::test]
async fn two_instances_send_each_event_once_and_in_order() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let receiver = Receiver::start(0);
    subscribe(&app, &admin, BRI, &receiver.url).await;
    let other = app.another_instance();
    dispatch::spawn(app.pool.clone(), true);
    dispatch::spawn(other.pool.clone(), true);
    let mut applications = Vec::new();
    for n in 0..12 {
        let business = consenting_business(&app, &officer, n).await;
        applications
            .push(apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await["id"].as_i64().unwrap());
    }
    receiver.wait_for(applications.len()).await;
    actix_rt::time::sleep(Duration::from_millis(1500)).await; // time for a duplicate to show
    let got = receiver.got.lock().unwrap().clone();
    let delivered: Vec<i64> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"]["application_id"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, applications, "each event once, in the order written");
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), applications.len());
    drop(other);
}

/// A retailer's subscription to the curation events, made by its user.
async fn subscribe_retailer(app: &TestApp, retail: &str, url: &str) -> Value {
    let body = json!({"url": url, "event_types": ["curation.submitted", "curation.decided"]});
    let reply = app.post("/api/v1/webhook-subscriptions").token(retail).json(&body).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["subscription"].clone()
}

/// Issue 28, item 14: what happens while a subscription is paused is held, and sent in order
/// once it is active again.
#[actix_rt::test]
async fn a_paused_subscription_holds_its_events_and_resumes_in_order() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let receiver = Receiver::start(0);
    let subscription = subscribe_retailer(&app, &retail, &receiver.url).await;
    let (id, partner) =
        (subscription["id"].as_i64().unwrap(), subscription["retail_partner_id"].as_i64().unwrap());
    let path = format!("/api/v1/webhook-subscriptions/{id}");
    let reply = app.patch(&path).token(&retail).json(&json!({"active": false})).send().await;
    assert_eq!((reply.status.as_u16(), reply.json()["active"].as_bool()), (200, Some(false)));
    dispatch::spawn(app.pool.clone(), true);

    let mut products = Vec::new();
    for n in 1..=3 {
        let (_, product_id) = product(&app, &officer, n).await;
        submit(&app, &officer, product_id, partner).await;
        products.push(product_id);
    }
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.got.lock().unwrap().is_empty(), "nothing is sent while paused");
    assert_eq!(app.get(&path).token(&retail).send().await.json()["pending"], 3, "held");

    let reply = app.patch(&path).token(&retail).json(&json!({"active": true})).send().await;
    assert_eq!(reply.status, 200);
    let got = receiver.wait_for(3).await;
    let sent: Vec<i64> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"]["product_id"].as_i64().unwrap())
        .collect();
    assert_eq!(sent, products, "every held event, in the order written");
}

/// Issue 28, item 4: a partner whose receiver is slow delays no other partner's deliveries.
/// Three of a bank's subscriptions go to a receiver that takes 4 s per answer, with a backlog;
/// a retailer's four events still arrive within a few seconds.
#[actix_rt::test]
async fn a_slow_partner_does_not_delay_another_partners_deliveries() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let slow = Receiver::answering_after(0, Duration::from_secs(4));
    for _ in 0..3 {
        subscribe(&app, &admin, BRI, &slow.url).await;
    }
    for n in 0..6 {
        let business = consenting_business(&app, &officer, 100 + n).await;
        apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await;
    }
    let fast = Receiver::start(0);
    let partner = subscribe_retailer(&app, &retail, &fast.url).await["retail_partner_id"].as_i64().unwrap();
    let mut products = Vec::new();
    for n in 1..=2 {
        products.push(product(&app, &officer, n).await.1);
    }
    for product_id in products {
        let curation = submit(&app, &officer, product_id, partner).await;
        let reply = app
            .patch(&format!("/api/v1/curations/{curation}"))
            .token(&retail)
            .json(&json!({"status": "passed"}))
            .send()
            .await;
        assert_eq!(reply.status, 200);
    }
    dispatch::spawn(app.pool.clone(), true);
    let started = Instant::now();
    let got = fast.wait_for(4).await;
    let took = started.elapsed();
    assert_eq!(got.len(), 4, "the retailer's events arrive");
    assert!(took < Duration::from_secs(5), "the retailer waited {took:?} behind the slow bank");
}

/// Issue 28, item 4: subscriptions per partner and redeliveries are bounded.
#[actix_rt::test]
async fn subscriptions_per_partner_and_redeliveries_are_bounded() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let max = usize::try_from(dispatch::MAX_SUBSCRIPTIONS_PER_PARTNER).unwrap();
    let receiver = Receiver::start(0);
    let mut first = 0;
    for n in 0..max {
        let (id, _) = subscribe(&app, &admin, BRI, &receiver.url).await;
        if n == 0 {
            first = id;
        }
    }
    let body = json!({"bank_partner_id": BRI, "url": receiver.url, "event_types": ["applicant.left"]});
    let problem =
        app.post("/api/v1/webhook-subscriptions").token(&admin).json(&body).send().await.assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().contains(&max.to_string()), "{problem}");
    assert_eq!(app.count("webhook_subscriptions"), i64::try_from(max).unwrap());
    let other = json!({"bank_partner_id": BNI, "url": receiver.url, "event_types": ["applicant.left"]});
    assert_eq!(app.post("/api/v1/webhook-subscriptions").token(&admin).json(&other).send().await.status, 201);

    // An event not yet delivered (no dispatcher runs) is queued once: asking again is 409.
    let business = consenting_business(&app, &officer, 1).await;
    apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await;
    let log =
        app.get(&format!("/api/v1/webhook-subscriptions/{first}/deliveries")).token(&admin).send().await;
    let delivery = log.json()[0]["id"].as_i64().unwrap();
    let redeliver = format!("/api/v1/webhook-subscriptions/{first}/deliveries/{delivery}/redeliver");
    app.post(&redeliver).token(&admin).send().await.assert_problem(409);
    let pending = app.get(&format!("/api/v1/webhook-subscriptions/{first}")).token(&admin).send().await;
    assert_eq!(pending.json()["pending"], 1);
}

/// Issue 28, item 15: a subscription has a version and an `ETag`; a stale `If-Match` is 412
/// and changes nothing.
#[actix_rt::test]
async fn subscriptions_have_versions() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let (id, _) = subscribe(&app, &admin, BRI, "http://127.0.0.1:9/hook").await;
    let path = format!("/api/v1/webhook-subscriptions/{id}");
    let read = app.get(&path).token(&admin).send().await;
    let version = read.json()["version"].as_i64().expect("a version");
    assert_eq!(read.header("etag"), Some(format!("\"{version}\"")));
    let paused = app
        .patch(&path)
        .token(&admin)
        .header("if-match", &format!("\"{version}\""))
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(paused.status, 200);
    assert_eq!(paused.header("etag"), Some(format!("\"{}\"", version + 1)));
    let stale = format!("\"{version}\"");
    let reply =
        app.patch(&path).token(&admin).header("if-match", &stale).json(&json!({"active": true})).send().await;
    reply.assert_problem(412);
    app.delete(&path).token(&admin).header("if-match", &stale).send().await.assert_problem(412);
    assert_eq!(app.get(&path).token(&admin).send().await.json()["active"], false);
}

/// The bounds hold under concurrent requests (on PostgreSQL, READ COMMITTED): 16 creates at once
/// leave the partner its 10 subscriptions, 8 redeliveries of one event queue it once.
#[actix_rt::test]
async fn concurrent_creates_and_redeliveries_stay_within_the_bounds() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let officer = app.token_for(Role::Officer).await;
    let body = json!({"bank_partner_id": BRI, "url": "http://127.0.0.1:9/hook", "event_types": ["applicant.eligible"]});
    let creates = (0..16).map(|_| app.post("/api/v1/webhook-subscriptions").token(&admin).json(&body).send());
    let statuses: Vec<u16> = join_all(creates).await.iter().map(|r| r.status.as_u16()).collect();
    let max = usize::try_from(dispatch::MAX_SUBSCRIPTIONS_PER_PARTNER).unwrap();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), max, "{statuses:?}");
    assert!(statuses.iter().all(|s| [201, 409].contains(s)), "{statuses:?}");
    assert_eq!(app.count("webhook_subscriptions"), i64::try_from(max).unwrap());

    // An event delivered (marked so here: no dispatcher runs), then redelivered 8 times at once.
    let business = consenting_business(&app, &officer, 1).await;
    apply(&app, &officer, business, BRI_KUR_MIKRO, 20_000_000).await;
    let subscription =
        app.get("/api/v1/webhook-subscriptions").token(&admin).send().await.json()[0]["id"].as_i64().unwrap();
    app.db(|c| {
        diesel::sql_query("UPDATE webhook_deliveries SET delivered_at = created_at").execute(c).unwrap()
    });
    let log = app
        .get(&format!("/api/v1/webhook-subscriptions/{subscription}/deliveries"))
        .token(&admin)
        .send()
        .await;
    let delivery = log.json()[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/webhook-subscriptions/{subscription}/deliveries/{delivery}/redeliver");
    let statuses: Vec<u16> = join_all((0..8).map(|_| app.post(&path).token(&admin).send()))
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    let pending =
        app.get(&format!("/api/v1/webhook-subscriptions/{subscription}")).token(&admin).send().await;
    assert_eq!(pending.json()["pending"], 1);
}

/// Issue 28, item 14: the bound of a held queue. Over 10,000 undelivered events, the oldest are
/// dropped (the dispatcher trims every minute) and counted in `events_dropped`.
#[actix_rt::test]
async fn a_queue_over_its_bound_drops_its_oldest_events_and_counts_them() {
    let app = spawn_app().await;
    let admin = app.token_for(Role::Admin).await;
    let (id, _) = subscribe(&app, &admin, BRI, "http://127.0.0.1:9/hook").await;
    let over = dispatch::MAX_HELD + 5;
    app.db(|c| {
        diesel::sql_query(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {over}) \
             INSERT INTO webhook_deliveries (subscription_id, message_id, event_type, payload, created_at, \
             next_attempt_at, attempts) SELECT {id}, 'msg_' || i, 'applicant.left', '{{}}', \
             '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0 FROM n"
        ))
        .execute(c)
        .unwrap()
    });
    // The newest delivered: a redelivery of it would hold more than the bound, so it is refused.
    let last = format!("msg_{over}");
    app.db(|c| {
        diesel::sql_query(format!(
            "UPDATE webhook_deliveries SET delivered_at = created_at WHERE message_id = '{last}'"
        ))
        .execute(c)
        .unwrap()
    });
    let delivered: i64 = {
        use diesel::prelude::*;
        use umkm_api::db::schema::webhook_deliveries as d;
        app.db(|c| d::table.filter(d::message_id.eq(&last)).select(d::id).first(c)).unwrap()
    };
    let redeliver = format!("/api/v1/webhook-subscriptions/{id}/deliveries/{delivered}/redeliver");
    let problem = app.post(&redeliver).token(&admin).send().await.assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().contains("10000 undelivered"), "{problem}");

    assert_eq!(app.db(dispatch::trim).unwrap(), 4);
    let shown = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).token(&admin).send().await.json();
    assert_eq!(
        (shown["pending"].as_i64(), shown["events_dropped"].as_i64()),
        (Some(dispatch::MAX_HELD), Some(4))
    );
    let oldest = app.count("webhook_deliveries WHERE message_id IN ('msg_1', 'msg_4')");
    assert_eq!((oldest, app.count("webhook_deliveries WHERE message_id = 'msg_5'")), (0, 1));
    assert_eq!(app.db(dispatch::trim).unwrap(), 0, "within the bound: nothing more");
}
