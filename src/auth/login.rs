//! Logging in: the password check behind the login throttle (`super::throttle`), and the
//! caller's own view of itself.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Caller;
use super::throttle::{self, MAX_ACCOUNT_CHARS, MAX_SECRET_CHARS, Reservation};
use crate::accounts::Account;
use crate::db;
use crate::db::schema::users;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::parse_json;
use crate::state::AppState;

/// A login: e-mail and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The user's e-mail (case-insensitive).
    #[schema(example = "admin@localhost", max_length = 254)]
    pub email: String,
    /// The user's password.
    #[schema(example = "correct horse battery staple", max_length = 256)]
    pub password: String,
}

/// An issued access token: a person's, or an API client's with the scopes granted (RFC 6749
/// §5.1). One schema for both, so that a client generated from the document reads either.
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
    /// An API client's token only: the scopes granted (space-separated). Absent for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "applicants:read stats:read")]
    pub scope: Option<String>,
}

/// Get an access token. A person logs in with JSON `{email, password}`; a partner's system
/// (an API client) uses the OAuth 2.0 client credentials grant, form-encoded
/// (`grant_type=client_credentials`, optional `scope`), authenticating with HTTP Basic
/// (`client_secret_basic`) or `client_id` and `client_secret` in the form
/// (`client_secret_post`).
///
/// After five failed attempts on one e-mail or client from one source (an IPv4 address, an
/// IPv6 /64; behind `TRUSTED_PROXIES`, the client they name) within 15 minutes, further
/// attempts from that source are answered 429 with `Retry-After` until the oldest of them is 15
/// minutes old, even with the right password or secret; other sources are not affected. The grant's errors are OAuth's JSON (`{error, error_description}`,
/// RFC 6749 §5.2), not problem documents.
#[utoipa::path(
    tag = "auth",
    request_body(content(
        (TokenRequest = "application/json"),
        (super::clients::ClientCredentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A new access token (for a client, with the scopes granted)",
            body = TokenResponse),
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
    // Refused before any database work and not recorded: no account has such a name. Counted
    // as sent, as the document's maxLength counts.
    for (field, value, max) in
        [("email", &email, MAX_ACCOUNT_CHARS), ("password", &password, MAX_SECRET_CHARS)]
    {
        if value.chars().count() > max {
            return Err(AppError::invalid(field, "too_long", format!("must be at most {max} characters")));
        }
    }
    let email = email.trim().to_lowercase();
    let attempt =
        throttle::attempt(&state, &req, email, |conn, email| Ok(Account::by_email(conn, email).optional()?))
            .await?;
    let key = attempt.key.clone();
    let user = match attempt.reservation {
        Reservation::Locked(retry_after) => return Err(AppError::TooManyRequests { retry_after }),
        Reservation::Counted(user) => user,
    };
    // An unknown e-mail costs one hash check too, as a wrong password does.
    let hash = user.as_ref().map_or_else(|| state.keys.dummy_hash().to_owned(), |u| u.password_hash.clone());
    let password_ok = throttle::check(&state.hashing, password, hash).await?;
    let user = match user {
        Some(user) if password_ok && !user.disabled && user.scopes.is_none() => user,
        _ => return Err(AppError::Unauthorized("the e-mail or password is wrong".into())),
    };
    let token = state.keys.issue(&user.subject())?;
    db::run(&state.pool, move |conn| {
        throttle::succeeded(conn, &key)?;
        // Not a change of the user record: no new version.
        diesel::update(users::table.find(user.id)).set(users::last_login_at.eq(db::now())).execute(conn)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: state.keys.ttl_secs(),
        scope: None,
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
