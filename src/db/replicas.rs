//! PostgreSQL read replicas (`DATABASE_READ_URLS`): which one may serve a read, and the check
//! that keeps a replica that is down or lags out of rotation.
//!
//! A read that tolerates lag ([`read`]: the lists, exports, statistics and the banks' pull)
//! goes to a healthy replica that has replayed at least the caller's consistency token (the
//! WAL position a write answered with, see `crate::http::consistency`), else to the primary.
//! Everything else, writes and the reads inside them included, uses the primary. A replica
//! whose read fails is taken out at once and the read runs on the primary, so a replica that
//! stops costs no request.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DbConnection, Pool};
use crate::error::{AppError, AppResult};

/// How often each replica's position is read.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A position in PostgreSQL's write-ahead log (`pg_lsn`), as a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's text form, `16/B374D848`.
    pub fn parse(text: &str) -> Option<Lsn> {
        let (high, low) = text.split_once('/')?;
        let (high, low) = (u32::from_str_radix(high, 16).ok()?, u32::from_str_radix(low, 16).ok()?);
        Some(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

tokio::task_local! {
    /// The WAL position the current request's reads must see (its consistency token).
    static READ_AFTER: Lsn;
}

/// Runs `future` (a request) with reads that see at least `lsn`.
pub async fn reading_after<F: Future>(lsn: Lsn, future: F) -> F::Output {
    READ_AFTER.scope(lsn, future).await
}

/// What `/readyz` says of a replica.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplicaHealth {
    /// Its host, port and database (no credentials).
    pub name: String,
    /// In rotation: reachable, replaying, and lagging at most `REPLICA_MAX_LAG_MS`.
    pub healthy: bool,
    /// How far behind the primary it is, in milliseconds, when known.
    pub lag_ms: Option<u64>,
    /// The WAL position it has replayed, when known.
    pub replayed: Option<String>,
    /// Why it is out of rotation.
    pub reason: Option<String>,
}

#[derive(Debug, Default)]
struct Status {
    healthy: bool,
    replayed: Lsn,
    lag: Option<Duration>,
    reason: Option<String>,
}

/// One replica.
struct Replica {
    name: String,
    pool: Pool,
    status: Mutex<Status>,
}

impl Replica {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take_out(&self, reason: String) {
        let mut status = self.status();
        status.healthy = false;
        status.reason = Some(reason);
    }
}

/// The replicas of a primary, and which of them are in rotation.
pub struct Replicas {
    members: Vec<Replica>,
    next: AtomicUsize,
    max_lag: Duration,
}

impl Replicas {
    /// Pools for `urls` (of `size` connections each) and a thread that checks them every
    /// [`CHECK_EVERY`] against `primary` while they are in use. Every replica starts out of
    /// rotation until its first check.
    pub fn start(primary: &Pool, urls: &[String], size: u32, max_lag: Duration) -> AppResult<Arc<Replicas>> {
        let members = urls
            .iter()
            .map(|url| {
                let pool = super::pool(url, size).map_err(AppError::internal)?;
                let status =
                    Mutex::new(Status { reason: Some("not checked yet".into()), ..Status::default() });
                Ok(Replica { name: name_of(url), pool, status })
            })
            .collect::<AppResult<Vec<_>>>()?;
        let replicas = Arc::new(Replicas { members, next: AtomicUsize::new(0), max_lag });
        let (watched, primary) = (Arc::downgrade(&replicas), primary.clone());
        std::thread::Builder::new()
            .name("replica-check".into())
            .spawn(move || watch(&watched, &primary))
            .map_err(AppError::internal)?;
        Ok(replicas)
    }

    /// A replica in rotation, taking turns, preferring one known to have replayed `at_least`;
    /// with it, whether it must be asked first if it has (its last known position is older).
    fn pick(&self, at_least: Lsn) -> Option<(&Replica, bool)> {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let turn = || (0..n).map(|i| &self.members[(start + i) % n]);
        let known = turn().find(|r| {
            let status = r.status();
            status.healthy && status.replayed >= at_least
        });
        known.map(|r| (r, false)).or_else(|| turn().find(|r| r.status().healthy).map(|r| (r, true)))
    }

    /// What `/readyz` reports.
    pub fn health(&self) -> Vec<ReplicaHealth> {
        self.members
            .iter()
            .map(|r| {
                let status = r.status();
                ReplicaHealth {
                    name: r.name.clone(),
                    healthy: status.healthy,
                    lag_ms: status.lag.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
                    replayed: (status.replayed != Lsn(0)).then(|| status.replayed.to_string()),
                    reason: status.reason.clone(),
                }
            })
            .collect()
    }
}

/// `host:port/database` of a URL, without its credentials or options.
fn name_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

#[derive(diesel::QueryableByName)]
struct Position {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    lsn: Option<String>,
}

fn position(conn: &mut DbConnection, sql: &str) -> Result<Option<Lsn>, String> {
    let row: Position = diesel::sql_query(sql).get_result(conn).map_err(|e| e.to_string())?;
    Ok(row.lsn.as_deref().and_then(Lsn::parse))
}

/// The primary's WAL position now (its insert position: at or past every commit so far).
pub fn primary_position(conn: &mut DbConnection) -> AppResult<Lsn> {
    position(conn, "SELECT pg_current_wal_insert_lsn()::text AS lsn")
        .map_err(AppError::Unavailable)?
        .ok_or_else(|| AppError::internal("the primary has no WAL position"))
}

/// The checking thread: ends when the replicas are dropped.
fn watch(replicas: &Weak<Replicas>, primary: &Pool) {
    // The primary's positions lately, oldest first: a replica that has replayed `r` lags by
    // the age of the oldest sample past `r`.
    let mut samples: VecDeque<(Instant, Lsn)> = VecDeque::new();
    while let Some(replicas) = replicas.upgrade() {
        let now = Instant::now();
        let primary_at = primary
            .get_within(CHECK_EVERY * 4)
            .map_err(|e| e.to_string())
            .and_then(|mut c| position(&mut c, "SELECT pg_current_wal_lsn()::text AS lsn"));
        if let Ok(Some(lsn)) = primary_at {
            samples.push_back((now, lsn));
        }
        let keep = replicas.max_lag * 2 + Duration::from_secs(1);
        while samples.front().is_some_and(|(t, _)| now.duration_since(*t) > keep) {
            samples.pop_front();
        }
        for replica in &replicas.members {
            let replayed = replica
                .pool
                .get_within(CHECK_EVERY)
                .map_err(|e| e.to_string())
                .and_then(|mut c| position(&mut c, "SELECT pg_last_wal_replay_lsn()::text AS lsn"));
            let mut status = replica.status();
            match replayed {
                Ok(Some(replayed)) => {
                    let behind = samples.iter().find(|(_, lsn)| *lsn > replayed);
                    let lag = behind.map_or(Duration::ZERO, |(t, _)| now.duration_since(*t));
                    status.replayed = status.replayed.max(replayed);
                    status.lag = Some(lag);
                    status.healthy = lag <= replicas.max_lag;
                    status.reason = (!status.healthy).then(|| format!("lags {} ms", lag.as_millis()));
                }
                Ok(None) => {
                    *status =
                        Status { reason: Some("not replaying: not a standby".into()), ..Status::default() };
                }
                Err(error) => {
                    status.healthy = false;
                    status.lag = None;
                    status.reason = Some(format!("unreachable: {error}"));
                }
            }
        }
        drop(replicas);
        std::thread::sleep(CHECK_EVERY);
    }
}

/// Runs a read that tolerates lag: on a replica in rotation that has replayed the request's
/// consistency token (asking it first when its position known is older: replay on a nearby
/// replica takes about a millisecond, the check four times a second), else on the primary. A
/// replica that fails is taken out of rotation and the read runs again on the primary; so
/// does one whose query recovery cancelled.
pub async fn read<T, F>(pool: &Pool, f: F) -> AppResult<T>
where
    F: Fn(&mut DbConnection) -> AppResult<T> + Send + Sync + 'static,
    T: Send + 'static,
{
    let f = Arc::new(f);
    if let Some(replicas) = pool.replicas.clone() {
        let at_least = READ_AFTER.try_with(|lsn| *lsn).unwrap_or_default();
        if let Some((replica, ask)) = replicas.pick(at_least) {
            let g = f.clone();
            // The list pages' pool of generic plans has its like on the replica.
            let target =
                if !pool.has_generic_plans() { replica.pool.generic_plans() } else { replica.pool.clone() };
            let answer = super::run(&target, move |conn| {
                if ask {
                    let replayed = position(conn, "SELECT pg_last_wal_replay_lsn()::text AS lsn")
                        .map_err(AppError::Unavailable)?
                        .unwrap_or_default();
                    if replayed < at_least {
                        return Ok(None);
                    }
                }
                g(conn).map(Some)
            })
            .await;
            match answer {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {} // Behind the token: the primary has it.
                Err(AppError::Unavailable(why)) => {
                    log::warn!("replica {} failed a read, out of rotation: {why}", replica.name);
                    replica.take_out(why);
                }
                Err(AppError::Conflict(why)) => {
                    log::info!("replica {} cancelled a read ({why}); read on the primary", replica.name);
                }
                Err(other) => return Err(other),
            }
        }
    }
    super::run(pool, move |conn| f(conn)).await
}

/// The pool a streamed read (an export) uses: a replica's as [`read`] picks it, or the primary's.
pub fn for_stream(pool: &Pool) -> Pool {
    let at_least = READ_AFTER.try_with(|lsn| *lsn).unwrap_or_default();
    match pool.replicas.as_ref().and_then(|r| r.pick(at_least)) {
        Some((replica, false)) => replica.pool.clone(),
        _ => pool.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_back_and_order() {
        let lsn = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!(Lsn::parse("0/1").unwrap() < Lsn::parse("1/0").unwrap());
        for bad in ["", "16", "x/1", "1/2/3", "/1", "123456789/0"] {
            assert_eq!(Lsn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_replicas_name_has_no_credentials() {
        assert_eq!(name_of("postgres://app:s3cret@10.0.0.2:5433/umkm?sslmode=require"), "10.0.0.2:5433/umkm");
        assert_eq!(name_of("postgres://replica/umkm"), "replica/umkm");
    }
}
