//! The login throttle, shared by a person's login and a client's grant: failed attempts on one
//! account (an e-mail or a client id) from one source (an IPv4 address or an IPv6 /64, see
//! `crate::http::client_ip`), kept in the database so that every instance counts the same.
//!
//! Attackers shape it (issue 28):
//! - its key is an HMAC of account and source ([`crate::crypto::Keys::throttle_key`]): fixed
//!   length whatever a client sends, no e-mail kept, and a name longer than any account's is
//!   refused before it gets here ([`MAX_ACCOUNT_CHARS`]);
//! - one source's failures never refuse the right password or secret from another: knowing a
//!   bank's client id (not a secret, RFC 6749 §2.2) or an officer's e-mail locks out no one
//!   but the guesser;
//! - the password or secret is checked with no database connection held, and at most
//!   `crate::crypto::concurrent_checks` checks run at once, so a flood of logins leaves the
//!   pool and a core to everyone else;
//! - an attempt is counted as a failure before its check and cleared if it succeeds: no lock is
//!   held while hashing, yet concurrent guesses on every instance stay within the limit.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::Semaphore;

use crate::crypto::verify_password;
use crate::db::schema::login_failures;
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};

/// Failed logins for one key within this window count towards the limit.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed logins allowed within the window; the next attempt is answered 429.
pub const LOGIN_MAX_FAILURES: usize = 5;
/// The longest account name a login may give: an e-mail's longest (RFC 5321), and longer than
/// any client id. A longer one is refused before any database work, and not recorded.
pub const MAX_ACCOUNT_CHARS: usize = 254;
/// The longest password or secret checked: a user's password is at most
/// `crate::users::MAX_PASSWORD_CHARS`, a client's secret shorter.
pub const MAX_SECRET_CHARS: usize = 256;
/// Expired failures removed per attempt at most (of any key), so that none stay for good.
const PURGE_BATCH: i64 = 100;

/// What a reservation came to.
pub enum Reservation<T> {
    /// The key is locked for this long.
    Locked(Duration),
    /// The attempt is counted; what `load` read for it.
    Counted(T),
}

/// Attempts on one key take turns within this process, waiting without a thread or a
/// connection: a lock per stripe of keys (an unrelated key shares a stripe 1 time in 1,024).
/// Without it, concurrent attempts of one key, all counted before they are checked, would
/// lock out the right password sent several times at once.
pub async fn take_turn(key: &str) -> tokio::sync::MutexGuard<'static, ()> {
    use std::hash::{Hash, Hasher};
    const STRIPES_N: u64 = 1024;
    static STRIPES: [tokio::sync::Mutex<()>; 1024] = [const { tokio::sync::Mutex::const_new(()) }; 1024];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    let stripe = usize::try_from(hasher.finish() % STRIPES_N).unwrap_or(0);
    STRIPES[stripe].lock().await
}

/// An attempt on one account from one source, counted: its throttle key, its turn (held until
/// the attempt is over) and what [`reserve`] decided.
pub struct Attempt<T> {
    /// The throttle's key of account and source (for [`succeeded`]).
    pub key: String,
    /// Locked, or counted with what the attempt needs.
    pub reservation: Reservation<T>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Starts an attempt on `account` (an e-mail or a client id, lower-cased) from the request's
/// source (`crate::http::client_ip`): waits for the key's turn, then [`reserve`]s it, reading
/// what the attempt needs with `load`. The login and the client credentials grant both begin
/// here.
pub async fn attempt<T: Send + 'static>(
    state: &crate::state::AppState,
    req: &actix_web::HttpRequest,
    account: String,
    load: impl FnOnce(&mut DbConnection, &str) -> AppResult<T> + Send + 'static,
) -> AppResult<Attempt<T>> {
    let source = crate::http::client_ip::source(req, &state.config.trusted_proxies);
    let key = state.keys.throttle_key(&account, &source)?;
    let turn = take_turn(&key).await;
    let reservation = {
        let key = key.clone();
        db::run(&state.pool, move |conn| reserve(conn, &key, |conn| load(conn, &account))).await?
    };
    Ok(Attempt { key, reservation, _turn: turn })
}

/// In one short transaction holding the key's lock (an advisory lock on PostgreSQL, the write
/// lock on SQLite), so that the count read is still true when the attempt is written: refuses
/// while the key has [`LOGIN_MAX_FAILURES`] failures in the window; otherwise records this
/// attempt as a failure (cleared by [`succeeded`]) and reads what the attempt needs.
pub fn reserve<T>(
    conn: &mut DbConnection,
    key: &str,
    load: impl FnOnce(&mut DbConnection) -> AppResult<T>,
) -> AppResult<Reservation<T>> {
    let now = db::now();
    let window = chrono::Duration::from_std(LOGIN_WINDOW).map_err(AppError::internal)?;
    db::write(conn, |conn| {
        if db::backend(conn) == db::Backend::Postgres {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind::<diesel::sql_types::Text, _>(key)
                .execute(conn)?;
        }
        purge(conn, now - window)?;
        if let Some(until) = locked_until(conn, key, now, window)? {
            let wait = (until - now).to_std().unwrap_or(Duration::from_secs(1));
            return Ok(Reservation::Locked(wait));
        }
        diesel::insert_into(login_failures::table)
            .values((login_failures::key_hash.eq(key), login_failures::failed_at.eq(now)))
            .execute(conn)?;
        Ok(Reservation::Counted(load(conn)?))
    })
}

/// The attempt on `key` succeeded: its failures, this attempt's included, are forgotten.
pub fn succeeded(conn: &mut DbConnection, key: &str) -> AppResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::key_hash.eq(key))).execute(conn)?;
    Ok(())
}

/// Whether `secret` matches the argon2 `hash`: on the blocking pool, with no connection held,
/// once one of the `permits` is free.
pub async fn check(permits: &Semaphore, secret: String, hash: String) -> AppResult<bool> {
    let _permit = permits.acquire().await.map_err(AppError::internal)?;
    Ok(actix_web::web::block(move || verify_password(&secret, &hash)).await?)
}

/// When the key's lock ends, if it is locked now.
fn locked_until(
    conn: &mut DbConnection,
    key: &str,
    now: NaiveDateTime,
    window: chrono::Duration,
) -> AppResult<Option<NaiveDateTime>> {
    let recent: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::key_hash.eq(key))
        .filter(login_failures::failed_at.gt(now - window))
        .order(login_failures::failed_at.desc())
        .limit(i64::try_from(LOGIN_MAX_FAILURES).unwrap_or(i64::MAX))
        .select(login_failures::failed_at)
        .load(conn)?;
    Ok((recent.len() >= LOGIN_MAX_FAILURES).then(|| recent.last().map(|oldest| *oldest + window)).flatten())
}

/// Removes failures older than `before`, of every key, a batch at a time.
fn purge(conn: &mut DbConnection, before: NaiveDateTime) -> AppResult<()> {
    let expired = login_failures::table
        .filter(login_failures::failed_at.le(before))
        .select(login_failures::id)
        .limit(PURGE_BATCH);
    let ids: Vec<i64> = expired.load(conn)?;
    if !ids.is_empty() {
        diesel::delete(login_failures::table.filter(login_failures::id.eq_any(ids))).execute(conn)?;
    }
    Ok(())
}
