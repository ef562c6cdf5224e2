//! Delivering events. Every instance runs a dispatcher; each delivery is sent by one of them:
//! a dispatcher *leases* the oldest undelivered delivery of each active subscription
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two instances never take the same row), sends it
//! after the lease committed, and records the outcome. A subscription has at most one delivery
//! in flight and its deliveries go in order; a dispatcher that dies mid-send leaves a lease that
//! expires, and the delivery is sent again (at least once, with the same `webhook-id`).
//!
//! A failed delivery is retried with exponential backoff (2 s, 4 s, … at most an hour apart);
//! when its first attempt is 24 hours old, the subscription is disabled, with the reason, until
//! an admin enables it again. Targets are checked again before every attempt (`target.rs`),
//! the connection goes to the address checked, no redirect is followed, an attempt times out
//! after [`TIMEOUT`], and at most [`MAX_RESPONSE_BYTES`] of an answer are read.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

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
/// Deliveries leased per round.
const BATCH: i64 = 16;
/// How long deliveries are retried before the subscription is disabled.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// A leased delivery.
#[derive(Debug, QueryableByName)]
struct Leased {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    subscription_id: i64,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
}

/// Leases the oldest undelivered, due delivery of up to [`BATCH`] active subscriptions. The
/// heads of the queues come from one pass over the partial index of undelivered rows (a
/// per-row `min(id)` made each lease cost the whole backlog: 0.6 s with 7,300 pending).
fn lease(conn: &mut DbConnection) -> AppResult<Vec<(Leased, String, String)>> {
    let now = db::now();
    let until = now + chrono::Duration::from_std(LEASE).map_err(AppError::internal)?;
    let skip_locked = db::locking(conn, " FOR UPDATE OF d SKIP LOCKED");
    let leased: Vec<Leased> = diesel::sql_query(format!(
        "UPDATE webhook_deliveries SET leased_until = $1 WHERE id IN ( \
           SELECT d.id FROM webhook_deliveries d \
           JOIN (SELECT subscription_id, min(id) AS head FROM webhook_deliveries \
                 WHERE delivered_at IS NULL GROUP BY subscription_id) h ON h.head = d.id \
           JOIN webhook_subscriptions s ON s.id = d.subscription_id \
           WHERE s.active AND d.next_attempt_at <= $2 \
             AND (d.leased_until IS NULL OR d.leased_until < $2) \
           ORDER BY d.id LIMIT $3{skip_locked}) \
         RETURNING id, subscription_id, message_id, payload, attempts, created_at"
    ))
    .bind::<Timestamp, _>(until)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(BATCH)
    .load(conn)?;
    let ids: Vec<i64> = leased.iter().map(|l| l.subscription_id).collect();
    let targets: HashMap<i64, (String, String)> = webhook_subscriptions::table
        .filter(webhook_subscriptions::id.eq_any(&ids))
        .select((webhook_subscriptions::id, webhook_subscriptions::url, webhook_subscriptions::secret))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, url, secret)| (id, (url, secret)))
        .collect();
    Ok(leased
        .into_iter()
        .filter_map(|l| targets.get(&l.subscription_id).cloned().map(|(url, secret)| (l, url, secret)))
        .collect())
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
    diesel::update(row)
        .set((
            webhook_deliveries::attempts.eq(attempts),
            webhook_deliveries::next_attempt_at.eq(next),
            webhook_deliveries::leased_until.eq(None::<NaiveDateTime>),
            webhook_deliveries::last_status.eq(status),
            webhook_deliveries::last_error.eq(&outcome.error),
        ))
        .execute(conn)?;
    let give_up = chrono::Duration::from_std(GIVE_UP_AFTER).map_err(AppError::internal)?;
    if now - leased.created_at >= give_up {
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

/// One round: lease, send, record. The number of deliveries attempted.
async fn round(pool: &Pool, client: &awc::Client, allow_private: bool) -> AppResult<usize> {
    let leased = db::run(pool, |conn| db::write(conn, lease)).await?;
    let attempts = leased.len();
    let sends = leased.into_iter().map(|(l, url, secret)| async move {
        let outcome = send(client, &l, &url, &secret, allow_private).await;
        (l, outcome)
    });
    for (leased, outcome) in futures_util::future::join_all(sends).await {
        if !outcome.delivered() {
            log::info!(
                "webhook delivery {} to subscription {} failed: {}",
                leased.id,
                leased.subscription_id,
                outcome.error.as_deref().unwrap_or("")
            );
        }
        db::run(pool, move |conn| db::write(conn, |conn| record(conn, &leased, &outcome))).await?;
    }
    Ok(attempts)
}

/// Runs the dispatcher on the current actix system until the process ends.
pub fn spawn(pool: Pool, allow_private: bool) {
    actix_web::rt::spawn(async move {
        let client = awc::Client::builder().timeout(TIMEOUT).max_redirects(0).finish();
        loop {
            match round(&pool, &client, allow_private).await {
                Ok(0) => actix_web::rt::time::sleep(Duration::from_millis(500)).await,
                Ok(_) => {}
                Err(err) => {
                    log::warn!("webhook dispatch failed, will retry: {err}");
                    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
                }
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
