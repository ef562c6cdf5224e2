//! The OAuth 2.0 client credentials grant (RFC 6749 §4.4): a partner's system exchanges its
//! client id and secret for an access token, with `client_secret_basic` (HTTP Basic) or
//! `client_secret_post` (in the form). Errors are OAuth's own JSON (§5.2), not problem
//! documents, so that OAuth client libraries read them.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::login::TokenResponse;
use super::throttle::{self, MAX_ACCOUNT_CHARS, MAX_SECRET_CHARS, Reservation};
use crate::crypto::Subject;
use crate::db::schema::{client_secrets, users};
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::domain::scope::{self, Scope};
use crate::error::{AppError, AppResult};

/// The token request of the client credentials grant, form-encoded.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientCredentials {
    /// `client_credentials`.
    #[schema(example = "client_credentials")]
    pub grant_type: String,
    /// The scopes wanted (space-separated); all of the client's when absent.
    #[schema(example = "applicants:read")]
    pub scope: Option<String>,
    /// With `client_secret_post`: the client's id.
    pub client_id: Option<String>,
    /// With `client_secret_post`: the client's secret.
    pub client_secret: Option<String>,
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type` or `invalid_scope`.
    #[schema(example = "invalid_client")]
    pub error: String,
    /// What was wrong, for a person reading it.
    #[schema(example = "unknown client or wrong secret")]
    pub error_description: String,
}

/// Why a grant failed.
#[derive(Debug)]
enum Refusal {
    Request(String),
    Client { basic: bool },
    GrantType,
    Scope(String),
    Throttled(std::time::Duration),
}

impl Refusal {
    fn answer(self) -> HttpResponse {
        let (status, error, description) = match &self {
            Refusal::Request(why) => (StatusCode::BAD_REQUEST, "invalid_request", why.clone()),
            Refusal::Client { .. } => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client, wrong secret or revoked client".into(),
            ),
            Refusal::GrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is granted here; people log in with JSON {email, password}".into(),
            ),
            Refusal::Scope(why) => (StatusCode::BAD_REQUEST, "invalid_scope", why.clone()),
            Refusal::Throttled(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_client",
                format!(
                    "too many failed attempts for this client; try again in {} seconds",
                    wait.as_secs().max(1)
                ),
            ),
        };
        let mut response = HttpResponse::build(status);
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        match self {
            Refusal::Client { basic: true } => {
                response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"umkm-api\""));
            }
            Refusal::Throttled(wait) => {
                response.insert_header((header::RETRY_AFTER, wait.as_secs().max(1)));
            }
            _ => {}
        }
        let mut response = response.json(OAuthError { error: error.into(), error_description: description });
        response.extensions_mut().insert(crate::http::OwnErrorShape);
        response
    }
}

/// The client id and secret of an HTTP Basic header, each form-decoded (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, Refusal> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let malformed = || Refusal::Client { basic: true };
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else { return Err(malformed()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::Request("client authentication is HTTP Basic or in the form".into()));
    }
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let form_decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8().map(|c| c.into_owned())
    };
    Ok(Some((form_decode(id).map_err(|_| malformed())?, form_decode(secret).map_err(|_| malformed())?)))
}

/// A checked grant request: who, with what secret, for which scopes (`None`: all).
struct Grant {
    client_id: String,
    secret: String,
    scope: Option<Vec<Scope>>,
    basic: bool,
}

fn read_grant(req: &HttpRequest, body: &[u8]) -> Result<Grant, Refusal> {
    let form: ClientCredentials = serde_urlencoded::from_bytes(body)
        .map_err(|e| Refusal::Request(format!("the form is not a token request: {e}")))?;
    if form.grant_type != "client_credentials" {
        return Err(Refusal::GrantType);
    }
    let scope = match form.scope.as_deref() {
        None => None,
        Some(list) => Some(scope::split(list).map_err(|s| Refusal::Scope(format!("unknown scope {s:?}")))?),
    };
    let basic = basic_credentials(req)?;
    let (client_id, secret, basic) = match (basic, form.client_id, form.client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(Refusal::Request("authenticate the client one way: HTTP Basic or the form".into()));
        }
        (Some((id, secret)), None, None) => (id, secret, true),
        (None, Some(id), Some(secret)) => (id, secret, false),
        (None, _, _) => return Err(Refusal::Client { basic: false }),
    };
    // No client's id holds a NUL (and PostgreSQL could not compare one), or is longer than an
    // account name can be; no secret is that long either. Refused before any database work,
    // and not recorded by the throttle.
    if client_id.contains('\0')
        || client_id.chars().count() > MAX_ACCOUNT_CHARS
        || secret.chars().count() > MAX_SECRET_CHARS
    {
        return Err(Refusal::Client { basic });
    }
    Ok(Grant { client_id, secret, scope, basic })
}

/// The client a grant names, as stored.
#[derive(Debug, Queryable)]
struct Client {
    id: i64,
    role: String,
    bank_partner_id: Option<i64>,
    retail_partner_id: Option<i64>,
    disabled: bool,
    scopes: Option<String>,
    token_generation: i32,
}

/// The ids and argon2 hashes of a client's secrets that are not revoked.
type Secrets = Vec<(i64, String)>;

/// The client a grant names, if it exists, with its secrets that are not revoked.
fn load_client(conn: &mut DbConnection, key: &str) -> AppResult<(Option<Client>, Secrets)> {
    let client: Option<Client> = users::table
        .filter(users::email.eq(key))
        .filter(users::scopes.is_not_null())
        .select((
            users::id,
            users::role,
            users::bank_partner_id,
            users::retail_partner_id,
            users::disabled,
            users::scopes,
            users::token_generation,
        ))
        .first(conn)
        .optional()?;
    let secrets = match &client {
        Some(c) => client_secrets::table
            .filter(client_secrets::user_id.eq(c.id))
            .filter(client_secrets::revoked_at.is_null())
            .select((client_secrets::id, client_secrets::secret_hash))
            .load(conn)?,
        None => Vec::new(),
    };
    Ok((client, secrets))
}

/// The scopes a token gets: those asked for, all held by the client, or all it holds.
fn granted(client: &Client, wanted: Option<&Vec<Scope>>) -> Result<Vec<Scope>, Refusal> {
    let held = scope::split(client.scopes.as_deref().unwrap_or("")).unwrap_or_default();
    match wanted {
        None => Ok(held),
        Some(wanted) => match wanted.iter().find(|s| !held.contains(s)) {
            Some(missing) => {
                Err(Refusal::Scope(format!("the client does not hold the scope {}", missing.as_str())))
            }
            None => Ok(wanted.clone()),
        },
    }
}

/// Answers a form-encoded token request: the client credentials grant.
pub(super) async fn grant(
    req: &HttpRequest,
    state: &crate::state::AppState,
    body: &[u8],
) -> AppResult<HttpResponse> {
    let grant = match read_grant(req, body) {
        Ok(grant) => grant,
        Err(refusal) => return Ok(refusal.answer()),
    };
    let attempt = throttle::attempt(state, req, grant.client_id.to_lowercase(), load_client).await?;
    let key = attempt.key.clone();
    let (client, secrets) = match attempt.reservation {
        Reservation::Locked(wait) => return Ok(Refusal::Throttled(wait).answer()),
        Reservation::Counted(found) => found,
    };
    // An unknown client costs one hash check too, as a wrong secret does.
    let mut matched = None;
    if secrets.is_empty() {
        throttle::check(&state.hashing, grant.secret.clone(), state.keys.dummy_hash().to_owned()).await?;
    }
    for (id, hash) in secrets {
        if throttle::check(&state.hashing, grant.secret.clone(), hash).await? {
            matched = Some(id);
            break;
        }
    }
    let (Some(client), Some(secret_id)) = (client.filter(|c| !c.disabled), matched) else {
        return Ok(Refusal::Client { basic: grant.basic }.answer());
    };
    // The client authenticated: not a failure, whatever it asked for.
    let scopes = granted(&client, grant.scope.as_ref());
    let (client_id, granted_any) = (client.id, scopes.is_ok());
    db::run(&state.pool, move |conn| {
        throttle::succeeded(conn, &key)?;
        if granted_any {
            let now = db::now();
            diesel::update(users::table.find(client_id)).set(users::last_login_at.eq(now)).execute(conn)?;
            diesel::update(client_secrets::table.find(secret_id))
                .set(client_secrets::last_used_at.eq(now))
                .execute(conn)?;
        }
        Ok(())
    })
    .await?;
    let scopes = match scopes {
        Ok(scopes) => scopes,
        Err(refusal) => return Ok(refusal.answer()),
    };
    let role = Role::parse(&client.role).ok_or_else(|| AppError::internal("a client of an unknown role"))?;
    let scope = scope::join(&scopes);
    let token = state.keys.issue(&Subject {
        id: client.id,
        role,
        bank_partner_id: client.bank_partner_id,
        retail_partner_id: client.retail_partner_id,
        scope: Some(&scope),
        generation: client.token_generation,
        secret_id: Some(secret_id),
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: state.keys.ttl_secs(),
            scope: Some(scope),
        }))
}
