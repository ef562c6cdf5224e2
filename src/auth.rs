//! Authentication: argon2id passwords, HS256 access tokens, the login throttle and the
//! [`Caller`] extractor that every protected handler takes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::config::Secret;
use crate::db::schema::login_failures;
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::users::{self, User};

/// What a user may do (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users and the audit log.
    Admin,
    /// Office staff: reads and writes the office's records, sees PII.
    Officer,
    /// A partner bank's system or staff, bound to one bank partner.
    Bank,
    /// A retail partner's staff, bound to one retail partner.
    Retail,
    /// Read-only, PII masked.
    Viewer,
}

impl Role {
    /// Every role, in the order of the table in SPEC §4.
    pub const ALL: [Role; 5] = [Role::Admin, Role::Officer, Role::Bank, Role::Retail, Role::Viewer];

    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Officer => "officer",
            Role::Bank => "bank",
            Role::Retail => "retail",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id, as a string (RFC 7519).
    pub sub: String,
    /// The user's role when the token was issued.
    pub role: Role,
    /// The bank partner of a `bank` user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_partner_id: Option<i64>,
    /// The retail partner of a `retail` user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retail_partner_id: Option<i64>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// A unique token id.
    pub jti: String,
}

/// Signing and verification keys, made once at start-up.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// A real hash of a random password, verified against when the e-mail is unknown so that
    /// the answer takes as long as for a known one.
    dummy_hash: String,
}

impl Keys {
    /// Keys for `secret`, issuing tokens that live `ttl`.
    pub fn new(secret: &Secret, ttl: Duration) -> AppResult<Keys> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        validation.leeway = 30;
        Ok(Keys {
            encoding: EncodingKey::from_secret(secret.expose()).map_err(AppError::internal)?,
            decoding: DecodingKey::from_secret(secret.expose()).map_err(AppError::internal)?,
            validation,
            ttl,
            dummy_hash: hash_password(&crate::config::random_token(24))?,
        })
    }

    /// Seconds a new token lives.
    pub fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// A signed token for `user`.
    pub fn issue(&self, user: &User) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            bank_partner_id: user.bank_partner_id,
            retail_partner_id: user.retail_partner_id,
            iat: now,
            exp: now + self.ttl_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// Verifies a token's signature, algorithm (HS256 only) and expiry.
    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                let reason = match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "the token must be signed with HS256"
                    }
                    _ => "the token is malformed",
                };
                AppError::Unauthorized(reason.into())
            })
    }
}

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

/// Whether `password` matches a stored argon2 hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// The authenticated user of a request. Taking it as a handler argument makes the handler
/// require a valid bearer token of a user that exists and is not disabled; the role and
/// partner are read from the database, so a change takes effect at once.
#[derive(Debug, Clone)]
pub struct Caller {
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

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> AppResult<()> {
        if roles.contains(&self.role) { Ok(()) } else { Err(AppError::Forbidden) }
    }

    /// Whether the caller may see personal data unmasked.
    pub fn sees_pii(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Officer)
    }
}

/// 404 unless a record of `partner` is within `scope` (the partner a bank or retail user is
/// bound to; `None` for office staff, who see every partner).
pub fn within(scope: Option<i64>, partner: i64) -> AppResult<()> {
    match scope {
        Some(own) if own != partner => Err(AppError::NotFound),
        _ => Ok(()),
    }
}

fn bearer_token(req: &HttpRequest) -> AppResult<String> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthorized("an Authorization: Bearer token is required".into()))?;
    let value =
        value.to_str().map_err(|_| AppError::Unauthorized("the Authorization header is malformed".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_owned())
        }
        _ => Err(AppError::Unauthorized("the Authorization header must be \"Bearer <token>\"".into())),
    }
}

impl FromRequest for Caller {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state missing"))?;
            let claims = state.keys.verify(&token?)?;
            let id: i64 =
                claims.sub.parse().map_err(|_| AppError::Unauthorized("the token is malformed".into()))?;
            let user = db::run(&state.pool, move |conn| Ok(users::find(conn, id).optional()?)).await?;
            match user {
                Some(user) if !user.disabled => Ok(Caller {
                    id: user.id,
                    email: user.email,
                    role: user.role,
                    bank_partner_id: user.bank_partner_id,
                    retail_partner_id: user.retail_partner_id,
                }),
                _ => Err(AppError::Unauthorized("the token's user is disabled or no longer exists".into())),
            }
        })
    }
}

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
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: i64,
}

/// When the throttle lets `email` try again, if it is locked now.
fn locked_until(
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

fn record_failure(conn: &mut DbConnection, email: &str, now: NaiveDateTime) -> AppResult<()> {
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

/// The login: checks the throttle, then the password, and records the outcome.
fn login(conn: &mut DbConnection, keys: &Keys, email: &str, password: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    let now = db::now();
    if let Some(until) = locked_until(conn, &email, now)? {
        let wait = (until - now).to_std().unwrap_or(Duration::from_secs(1));
        return Err(AppError::TooManyRequests { retry_after: wait });
    }
    let user = users::find_by_email(conn, &email).optional()?;
    let hash = user.as_ref().map_or(keys.dummy_hash.as_str(), |u| u.password_hash.as_str());
    let password_ok = verify_password(password, hash);
    match user {
        Some(user) if password_ok && !user.disabled => {
            diesel::delete(login_failures::table.filter(login_failures::email.eq(&email))).execute(conn)?;
            users::touch_last_login(conn, user.id, now)?;
            keys.issue(&user)
        }
        _ => {
            record_failure(conn, &email, now)?;
            Err(AppError::Unauthorized("the e-mail or password is wrong".into()))
        }
    }
}

/// Log in: exchange an e-mail and password for an access token.
///
/// After five failed attempts for one e-mail within 15 minutes, further attempts are answered
/// 429 with `Retry-After` until the oldest of them is 15 minutes old, even with the right
/// password.
#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A new access token", body = TokenResponse),
        (status = 401, description = "Unknown e-mail, wrong password or a disabled user (one answer for all)",
            body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts for this e-mail",
            body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the next attempt counts"))),
    ),
)]
#[post("/auth/token")]
pub async fn issue_token(state: web::Data<AppState>, body: Json<TokenRequest>) -> AppResult<HttpResponse> {
    let TokenRequest { email, password } = body.0;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_through_argon2id() {
        let hash = hash_password("a long enough password").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("a long enough password", &hash));
        assert!(!verify_password("another password", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
