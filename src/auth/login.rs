//! Logging in: the password check behind a per-e-mail throttle kept in the database (so every
//! instance counts the same attempts), and the caller's own view of itself.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Caller;
use crate::accounts::Account;
use crate::crypto::{Keys, verify_password};
use crate::db::schema::{login_failures, users};
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::parse_json;
use crate::state::AppState;

/// Failed logins for one e-mail within this window count towards the limit.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed logins allowed within the window; the next attempt is answered 429.
pub const LOGIN_MAX_FAILURES: usize = 5;

/// A login: e-mail and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The user's e-mail (case-insensitive).
    #[schema(example = "admin@localhost")]
    pub email: String,
    /// The user's password.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// An issued access token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer <access_token>`.
    #[schema(example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")]
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: i64,
}

/// When the throttle lets `email` try again, if it is locked now.
pub(super) fn locked_until(
    conn: &mut DbConnection,
    email: &str,
    now: NaiveDateTime,
) -> AppResult<Option<NaiveDateTime>> {
    let window = chrono::Duration::from_std(LOGIN_WINDOW).map_err(AppError::internal)?;
    let recent: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::email.eq(email))
        .filter(login_failures::failed_at.gt(now - window))
        .order(login_failures::failed_at.desc())
        .limit(i64::try_from(LOGIN_MAX_FAILURES).unwrap_or(i64::MAX))
        .select(login_failures::failed_at)
        .load(conn)?;
    Ok((recent.len() >= LOGIN_MAX_FAILURES).then(|| recent.last().map(|oldest| *oldest + window)).flatten())
}

pub(super) fn record_failure(conn: &mut DbConnection, email: &str, now: NaiveDateTime) -> AppResult<()> {
    let window = chrono::Duration::from_std(LOGIN_WINDOW).map_err(AppError::internal)?;
    diesel::delete(
        login_failures::table
            .filter(login_failures::email.eq(email))
            .filter(login_failures::failed_at.le(now - window)),
    )
    .execute(conn)?;
    diesel::insert_into(login_failures::table)
        .values((login_failures::email.eq(email), login_failures::failed_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Attempts on one e-mail take turns within this process: a lock per stripe of e-mails (an
/// unrelated e-mail shares a stripe 1 time in 64, and then only waits for one password check).
pub(super) fn take_turn(email: &str) -> std::sync::MutexGuard<'static, ()> {
    use std::hash::{Hash, Hasher};
    static STRIPES: [std::sync::Mutex<()>; 64] = [const { std::sync::Mutex::new(()) }; 64];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    email.hash(&mut hasher);
    let stripe = usize::try_from(hasher.finish() % 64).unwrap_or(0);
    STRIPES[stripe].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one attempt came to.
enum Attempt {
    Token(String),
    Wrong,
    Locked(Duration),
}

/// The login. Attempts on one e-mail take turns, across instances too (on PostgreSQL an
/// advisory lock on the e-mail, held by the transaction around the check; on SQLite the
/// process is the only server), so the count of failures read is still true when the
/// outcome is written: concurrent guesses cannot pass the limit, and concurrent logins with
/// the right password are not counted as failures.
fn login(conn: &mut DbConnection, keys: &Keys, email: &str, password: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    let _turn = take_turn(&email);
    let attempt = match db::backend(conn) {
        db::Backend::Postgres => conn.transaction(|conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind::<diesel::sql_types::Text, _>(&email)
                .execute(conn)?;
            attempt(conn, keys, &email, password)
        })?,
        db::Backend::Sqlite => attempt(conn, keys, &email, password)?,
    };
    match attempt {
        Attempt::Token(token) => Ok(token),
        Attempt::Wrong => Err(AppError::Unauthorized("the e-mail or password is wrong".into())),
        Attempt::Locked(retry_after) => Err(AppError::TooManyRequests { retry_after }),
    }
}

/// Checks the throttle, then the password, and records the outcome.
fn attempt(conn: &mut DbConnection, keys: &Keys, email: &str, password: &str) -> AppResult<Attempt> {
    let now = db::now();
    if let Some(until) = locked_until(conn, email, now)? {
        return Ok(Attempt::Locked((until - now).to_std().unwrap_or(Duration::from_secs(1))));
    }
    let user = Account::by_email(conn, email).optional()?;
    let hash = user.as_ref().map_or(keys.dummy_hash(), |u| u.password_hash.as_str());
    let password_ok = verify_password(password, hash);
    match user {
        Some(user) if password_ok && !user.disabled && user.scopes.is_none() => {
            diesel::delete(login_failures::table.filter(login_failures::email.eq(email))).execute(conn)?;
            // Not a change of the user record: no new version.
            diesel::update(users::table.find(user.id)).set(users::last_login_at.eq(now)).execute(conn)?;
            Ok(Attempt::Token(keys.issue(&user.subject())?))
        }
        _ => {
            record_failure(conn, email, now)?;
            Ok(Attempt::Wrong)
        }
    }
}

/// Get an access token. A person logs in with JSON `{email, password}`; a partner's system
/// (an API client) uses the OAuth 2.0 client credentials grant, form-encoded
/// (`grant_type=client_credentials`, optional `scope`), authenticating with HTTP Basic
/// (`client_secret_basic`) or `client_id` and `client_secret` in the form
/// (`client_secret_post`).
///
/// After five failed attempts for one e-mail or client within 15 minutes, further attempts are
/// answered 429 with `Retry-After` until the oldest of them is 15 minutes old, even with the
/// right password or secret. The grant's errors are OAuth's JSON (`{error, error_description}`,
/// RFC 6749 §5.2), not problem documents.
#[utoipa::path(
    tag = "auth",
    request_body(content(
        (TokenRequest = "application/json"),
        (super::clients::ClientCredentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A new access token (for a client, with the scopes granted)",
            content((TokenResponse = "application/json"), (super::clients::ClientToken = "application/json"))),
        (status = 400, description = "A malformed login (a problem document); for a client, `invalid_request`, `unsupported_grant_type` or `invalid_scope` (OAuth's error JSON)",
            content((crate::error::Problem = "application/problem+json"), (super::clients::OAuthError = "application/json"))),
        (status = 401, description = "Unknown e-mail, wrong password or a disabled user (one answer for all), a problem document; for a client, `invalid_client` (OAuth's error JSON)",
            content((crate::error::Problem = "application/problem+json"), (super::clients::OAuthError = "application/json"))),
        (status = 429, description = "Too many failed attempts for this e-mail or client",
            content((crate::error::Problem = "application/problem+json"), (super::clients::OAuthError = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds until the next attempt counts"))),
    ),
)]
#[post("/auth/token")]
pub async fn issue_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.essence_str() == "application/x-www-form-urlencoded");
    if form {
        return super::clients::grant(&req, &state, &body).await;
    }
    let json = req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_() == actix_web::mime::APPLICATION
            && (m.subtype() == actix_web::mime::JSON || m.suffix() == Some(actix_web::mime::JSON))
    });
    if !json {
        return Err(AppError::UnsupportedMediaType { expected: "application/json" });
    }
    let TokenRequest { email, password } = parse_json(&body)?;
    let keys = state.keys.clone();
    let ttl = keys.ttl_secs();
    let token = db::run(&state.pool, move |conn| login(conn, &keys, &email, &password)).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: ttl,
    }))
}

/// Who am I: the authenticated caller.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me)),
)]
#[get("/auth/me")]
pub async fn me(caller: Caller) -> web::Json<Me> {
    web::Json(Me {
        id: caller.id,
        email: caller.email,
        role: caller.role,
        bank_partner_id: caller.bank_partner_id,
        retail_partner_id: caller.retail_partner_id,
    })
}

/// The authenticated caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The user's id.
    pub id: i64,
    /// The user's e-mail.
    pub email: String,
    /// The user's role.
    pub role: Role,
    /// The bank partner of a `bank` user.
    pub bank_partner_id: Option<i64>,
    /// The retail partner of a `retail` user.
    pub retail_partner_id: Option<i64>,
}
