//! Delivering events. Every instance runs a dispatcher; each delivery is sent by one of them:
//! a dispatcher *leases* the oldest undelivered delivery of an active subscription, sends it
//! after the lease committed, and records the outcome. A subscription has at most one delivery
//! in flight and its deliveries go in order; a dispatcher that dies mid-send leaves a lease that
//! expires, and the delivery is sent again (at least once, with the same `webhook-id`).
//!
//! Deliveries complete independently: each is sent and recorded on its own, and the dispatcher
//! leases the next one as soon as one finishes, so a receiver that takes seconds to answer
//! delays only its own subscription's queue. Leases are fair between partners: each lease takes
//! the partners' heads in turns (every partner's first, then every partner's second, …), a
//! partner has at most [`MAX_IN_FLIGHT_PER_PARTNER`] deliveries in flight across all instances
//! (leasing is serialized: an advisory lock on PostgreSQL, the write lock on SQLite), and an
//! instance at most [`MAX_IN_FLIGHT`].
//!
//! A failed delivery is retried with exponential backoff (2 s, 4 s, … at most an hour apart);
//! when its first attempt is 24 hours old, the subscription is disabled, with the reason, until
//! an admin enables it again. Events keep being queued for a subscription that is paused or
//! disabled, and are sent in order once it is active again (their 24 hours start again then);
//! every minute a queue over [`MAX_HELD`] undelivered events loses its oldest, counted in
//! `events_dropped`.
//! Targets are checked again before every attempt (`target.rs`), the connection goes to the
//! address checked, no redirect is followed, an attempt times out after [`TIMEOUT`], and at most
//! [`MAX_RESPONSE_BYTES`] of an answer are read.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::{sign, target};
use crate::db::schema::{webhook_deliveries, webhook_subscriptions};
use crate::db::{self, DbConnection, Pool};
use crate::error::{AppError, AppResult};

/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an answer is read (and kept in the delivery log).
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// How long a lease lasts: twice what an attempt can take, so a dispatcher that died (its
/// instance killed) holds its subscriptions' queues for at most this long.
const LEASE: Duration = Duration::from_secs(10);
/// Deliveries one instance has in flight at most.
pub const MAX_IN_FLIGHT: usize = 32;
/// Deliveries of one partner in flight at most, across instances.
pub const MAX_IN_FLIGHT_PER_PARTNER: i64 = 4;
/// Subscriptions one partner may have.
pub const MAX_SUBSCRIPTIONS_PER_PARTNER: i64 = 10;
/// Undelivered events one subscription holds at most (while paused, disabled or failing);
/// beyond it the oldest are dropped.
pub const MAX_HELD: i64 = 10_000;
/// How long a dispatcher with nothing to send waits before looking again.
const IDLE: Duration = Duration::from_millis(500);
/// How often the queues over [`MAX_HELD`] are trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// How long a failed round waits.
const AFTER_ERROR: Duration = Duration::from_secs(2);
/// How long deliveries are retried before the subscription is disabled.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// A leased delivery.
#[derive(Debug, Queryable)]
struct Leased {
    id: i64,
    subscription_id: i64,
    message_id: String,
    payload: String,
    attempts: i32,
    first_attempted_at: Option<NaiveDateTime>,
}

/// A candidate for a lease: a due head of an active subscription's queue.
#[derive(Debug, QueryableByName)]
struct Candidate {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Leases up to `free` due deliveries: the head of each active subscription's queue, the
/// partners in turns, none of a partner that has [`MAX_IN_FLIGHT_PER_PARTNER`] in flight. The
/// heads come from one pass over the partial index of undelivered rows (a per-row `min(id)` made
/// each lease cost the whole backlog: 0.6 s with 7,300 pending). Run inside `db::write`.
fn lease(conn: &mut DbConnection, free: usize) -> AppResult<Vec<(Leased, String, String)>> {
    let now = db::now();
    let until = now + chrono::Duration::from_std(LEASE).map_err(AppError::internal)?;
    if db::backend(conn) == db::Backend::Postgres {
        // One dispatcher leases at a time, so that the partners' in-flight counts hold.
        diesel::sql_query("SELECT pg_advisory_xact_lock(72418)::text").execute(conn)?;
    }
    let partner = "COALESCE(s.bank_partner_id, -s.retail_partner_id)";
    let candidates: Vec<Candidate> = diesel::sql_query(format!(
        "SELECT c.id FROM ( \
           SELECT d.id, {partner} AS partner, \
                  ROW_NUMBER() OVER (PARTITION BY {partner} ORDER BY d.id) AS turn \
           FROM webhook_deliveries d \
           JOIN (SELECT subscription_id, min(id) AS head FROM webhook_deliveries \
                 WHERE delivered_at IS NULL GROUP BY subscription_id) h ON h.head = d.id \
           JOIN webhook_subscriptions s ON s.id = d.subscription_id \
           WHERE s.active AND d.next_attempt_at <= $1 \
             AND (d.leased_until IS NULL OR d.leased_until < $1)) c \
         LEFT JOIN (SELECT {partner} AS partner, count(*) AS busy \
                    FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                    WHERE d.delivered_at IS NULL AND d.leased_until >= $1 GROUP BY {partner}) b \
           ON b.partner = c.partner \
         WHERE c.turn + COALESCE(b.busy, 0) <= $2 \
         ORDER BY c.turn, c.id LIMIT $3"
    ))
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(MAX_IN_FLIGHT_PER_PARTNER)
    .bind::<BigInt, _>(i64::try_from(free).unwrap_or(i64::MAX))
    .load(conn)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = candidates.iter().map(|c| c.id).collect();
    let leased: Vec<Leased> = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(&ids))
            .filter(webhook_deliveries::delivered_at.is_null())
            .filter(webhook_deliveries::leased_until.is_null().or(webhook_deliveries::leased_until.lt(now))),
    )
    .set(webhook_deliveries::leased_until.eq(until))
    .returning((
        webhook_deliveries::id,
        webhook_deliveries::subscription_id,
        webhook_deliveries::message_id,
        webhook_deliveries::payload,
        webhook_deliveries::attempts,
        webhook_deliveries::first_attempted_at,
    ))
    .get_results(conn)?;
    let subscriptions: Vec<i64> = leased.iter().map(|l| l.subscription_id).collect();
    let targets: HashMap<i64, (String, String)> = webhook_subscriptions::table
        .filter(webhook_subscriptions::id.eq_any(&subscriptions))
        .select((webhook_subscriptions::id, webhook_subscriptions::url, webhook_subscriptions::secret))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, url, secret)| (id, (url, secret)))
        .collect();
    let mut leased: Vec<(Leased, String, String)> = leased
        .into_iter()
        .filter_map(|l| targets.get(&l.subscription_id).cloned().map(|(url, secret)| (l, url, secret)))
        .collect();
    leased.sort_by_key(|(l, _, _)| l.id);
    Ok(leased)
}

/// Drops the oldest undelivered events of every queue holding more than [`MAX_HELD`] (none in
/// flight), counting them in the subscription's `events_dropped`. Run inside `db::write`.
pub fn trim(conn: &mut DbConnection) -> AppResult<i64> {
    use diesel::dsl::count_star;
    let now = db::now();
    if db::backend(conn) == db::Backend::Postgres {
        // No dispatcher leases meanwhile: a row chosen below is not in flight when deleted.
        diesel::sql_query("SELECT pg_advisory_xact_lock(72418)::text").execute(conn)?;
    }
    let over: Vec<(i64, i64)> = webhook_deliveries::table
        .filter(webhook_deliveries::delivered_at.is_null())
        .group_by(webhook_deliveries::subscription_id)
        .having(count_star().gt(MAX_HELD))
        .select((webhook_deliveries::subscription_id, count_star()))
        .load(conn)?;
    let mut dropped = 0;
    for (subscription, held) in over {
        let oldest: Vec<i64> = webhook_deliveries::table
            .filter(webhook_deliveries::subscription_id.eq(subscription))
            .filter(webhook_deliveries::delivered_at.is_null())
            .filter(webhook_deliveries::leased_until.is_null().or(webhook_deliveries::leased_until.lt(now)))
            .order(webhook_deliveries::id)
            .limit(held - MAX_HELD)
            .select(webhook_deliveries::id)
            .load(conn)?;
        let mut gone = 0;
        for chunk in oldest.chunks(1000) {
            let idle = webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(chunk)).filter(
                webhook_deliveries::leased_until.is_null().or(webhook_deliveries::leased_until.lt(now)),
            );
            gone += diesel::delete(idle).execute(conn)?;
        }
        let gone = i64::try_from(gone).unwrap_or(i64::MAX);
        diesel::update(webhook_subscriptions::table.find(subscription))
            .set((
                webhook_subscriptions::events_dropped.eq(webhook_subscriptions::events_dropped + gone),
                webhook_subscriptions::version.eq(webhook_subscriptions::version + 1),
            ))
            .execute(conn)?;
        log::warn!(
            "webhook subscription {subscription}: {gone} undelivered events dropped (over {MAX_HELD} held)"
        );
        dropped += gone;
    }
    Ok(dropped)
}

/// What one attempt came to.
#[derive(Debug)]
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The wait before attempt `attempts + 1`.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 12)).unwrap_or(12);
    Duration::from_secs(2u64.pow(exponent)).min(MAX_BACKOFF)
}

/// Records an attempt's outcome; disables the subscription when its delivery has failed for
/// [`GIVE_UP_AFTER`].
fn record(conn: &mut DbConnection, leased: &Leased, outcome: &Outcome) -> AppResult<()> {
    let now = db::now();
    let attempts = leased.attempts + 1;
    let status = outcome.status.map(i32::from);
    let row = webhook_deliveries::table.find(leased.id);
    if outcome.delivered() {
        diesel::update(row)
            .set((
                webhook_deliveries::attempts.eq(attempts),
                webhook_deliveries::delivered_at.eq(now),
                webhook_deliveries::leased_until.eq(None::<NaiveDateTime>),
                webhook_deliveries::last_status.eq(status),
                webhook_deliveries::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        return Ok(());
    }
    let next = now + chrono::Duration::from_std(backoff(attempts)).map_err(AppError::internal)?;
    let first = leased.first_attempted_at.unwrap_or(now);
    diesel::update(row)
        .set((
            webhook_deliveries::attempts.eq(attempts),
            webhook_deliveries::first_attempted_at.eq(first),
            webhook_deliveries::next_attempt_at.eq(next),
            webhook_deliveries::leased_until.eq(None::<NaiveDateTime>),
            webhook_deliveries::last_status.eq(status),
            webhook_deliveries::last_error.eq(&outcome.error),
        ))
        .execute(conn)?;
    let give_up = chrono::Duration::from_std(GIVE_UP_AFTER).map_err(AppError::internal)?;
    if now - first >= give_up {
        let last = match (&outcome.status, &outcome.error) {
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "no answer".into(),
        };
        diesel::update(webhook_subscriptions::table.find(leased.subscription_id))
            .set((
                webhook_subscriptions::active.eq(false),
                webhook_subscriptions::disabled_reason
                    .eq(format!("deliveries failed for 24 hours (last attempt: {last}); enable it again when the receiver is fixed")),
                webhook_subscriptions::updated_at.eq(now),
                webhook_subscriptions::version.eq(webhook_subscriptions::version + 1),
            ))
            .execute(conn)?;
        log::warn!(
            "webhook subscription {} disabled: deliveries failed for 24 hours",
            leased.subscription_id
        );
    }
    Ok(())
}

/// Sends one delivery.
async fn send(
    client: &awc::Client,
    leased: &Leased,
    url: &str,
    secret: &str,
    allow_private: bool,
) -> Outcome {
    let checked = {
        let url = url.to_owned();
        actix_web::web::block(move || target::check(&url, allow_private)).await
    };
    let target = match checked {
        Ok(Ok(target)) => target,
        Ok(Err(refused)) => {
            return Outcome { status: None, error: Some(format!("target refused: {}", refused.0)) };
        }
        Err(e) => return Outcome { status: None, error: Some(e.to_string()) },
    };
    let Some(address) = target.addresses.first().copied() else {
        return Outcome { status: None, error: Some("the target has no address".into()) };
    };
    let timestamp = chrono::Utc::now().timestamp();
    let Some(signature) = sign::signature(secret, &leased.message_id, timestamp, &leased.payload) else {
        return Outcome { status: None, error: Some("the subscription's secret is unusable".into()) };
    };
    let sent = client
        .post(url)
        .address(address)
        .insert_header(("webhook-id", leased.message_id.as_str()))
        .insert_header(("webhook-timestamp", timestamp.to_string()))
        .insert_header(("webhook-signature", signature))
        .content_type("application/json")
        .send_body(leased.payload.clone())
        .await;
    match sent {
        Ok(mut response) => {
            let status = response.status().as_u16();
            // Read a little of the answer, so the connection can be reused; never more.
            let _ = response.body().limit(MAX_RESPONSE_BYTES).await;
            let error = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
            Outcome { status: Some(status), error }
        }
        Err(e) => Outcome { status: None, error: Some(e.to_string()) },
    }
}

/// Sends one leased delivery and records its outcome. A failure to record leaves the lease to
/// expire: the delivery is sent again (at least once).
async fn deliver(pool: Pool, client: &awc::Client, allow_private: bool, leased: (Leased, String, String)) {
    let (leased, url, secret) = leased;
    let outcome = send(client, &leased, &url, &secret, allow_private).await;
    if !outcome.delivered() {
        log::info!(
            "webhook delivery {} to subscription {} failed: {}",
            leased.id,
            leased.subscription_id,
            outcome.error.as_deref().unwrap_or("")
        );
    }
    let id = leased.id;
    let recorded = db::run(&pool, move |conn| db::write(conn, |conn| record(conn, &leased, &outcome))).await;
    if let Err(err) = recorded {
        log::warn!("webhook delivery {id}: its outcome was not recorded, it will be sent again: {err}");
    }
}

/// Runs the dispatcher on the current actix system until the process ends: the deliveries,
/// and beside them the minutely trim of the queues over [`MAX_HELD`].
pub fn spawn(pool: Pool, allow_private: bool) {
    let trimming = pool.clone();
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(TRIM_EVERY).await;
            if let Err(err) = db::run(&trimming, |conn| db::write(conn, trim)).await {
                log::warn!("webhook queues not trimmed, will retry: {err}");
            }
        }
    });
    actix_web::rt::spawn(async move {
        use futures_util::future::{Either, select};
        let client = awc::Client::builder().timeout(TIMEOUT).max_redirects(0).finish();
        let mut flying = FuturesUnordered::new();
        loop {
            let free = MAX_IN_FLIGHT - flying.len();
            let mut pause = IDLE;
            if free > 0 {
                // The deliveries in flight go on while the lease waits for its turn.
                let mut leasing =
                    Box::pin(db::run(&pool, move |conn| db::write(conn, |conn| lease(conn, free))));
                let leased = loop {
                    if flying.is_empty() {
                        break leasing.await;
                    }
                    match select(leasing, flying.next()).await {
                        Either::Left((leased, _)) => break leased,
                        Either::Right((_, still)) => leasing = still,
                    }
                };
                match leased {
                    Ok(leased) => {
                        for one in leased {
                            flying.push(deliver(pool.clone(), &client, allow_private, one));
                        }
                    }
                    Err(err) => {
                        log::warn!("webhook dispatch failed, will retry: {err}");
                        pause = AFTER_ERROR;
                    }
                }
            }
            // Lease again as soon as a delivery finishes (its queue's next is due), or after
            // a pause for new events.
            let sleep = actix_web::rt::time::sleep(pause);
            if flying.is_empty() {
                sleep.await;
            } else {
                select(flying.next(), Box::pin(sleep)).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour_and_covers_a_day() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
        let total: u64 = (1..=40).map(|a| backoff(a).as_secs()).sum();
        assert!(total >= GIVE_UP_AFTER.as_secs(), "40 attempts span {total} s");
    }
}
