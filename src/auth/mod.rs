//! Authentication: who is calling. The [`Caller`] extractor that every protected handler takes,
//! the partner scope check, and the login (tokens and password hashes are `crate::crypto`).
//!
//! What it reads of the `users` table is `crate::accounts` (with the per-instance cache of
//! identities); managing users is `crate::users`, which depends on this module and not the
//! other way round.

pub mod clients;
pub mod login;
pub mod throttle;

use std::future::Future;
use std::pin::Pin;
use utoipa_actix_web::service_config::ServiceConfig;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

pub use throttle::{LOGIN_MAX_FAILURES, LOGIN_WINDOW};

use crate::accounts::Identity;
use crate::db;
use crate::disclosures::{Classes, Discloser, Entry, Preparing};
use crate::domain::role::Role;
use crate::domain::scope::Scope;
use crate::error::{AppError, AppResult};
use crate::http::RequestId;
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(login::issue_token).service(login::me);
}

/// The authenticated user of a request. Taking it as a handler argument makes the handler
/// require a valid bearer token of a user that exists and is not disabled. The role and
/// partner come from the database, not the token, through the instance's identity cache: a
/// change takes effect at once on the instance that made it and within
/// [`crate::accounts::IDENTITY_TTL`] on the others.
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
    /// 403 unless the caller is office staff (admin or officer): the check of every office write.
    pub fn require_office(&self) -> AppResult<()> {
        self.require(&[Role::Admin, Role::Officer])
    }

    /// 404 for callers of the `hidden` roles: for them the resource does not exist.
    pub fn hidden_from(&self, hidden: &[Role]) -> AppResult<()> {
        if hidden.contains(&self.role) { Err(AppError::NotFound) } else { Ok(()) }
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> AppResult<()> {
        if roles.contains(&self.role) { Ok(()) } else { Err(AppError::Forbidden) }
    }

    /// The bank a bank user's records and figures are confined to; `None` for everyone else.
    /// (A bank user without a bank, which the schema forbids, would be confined to none: -1.)
    pub fn bank_scope(&self) -> Option<i64> {
        (self.role == Role::Bank).then(|| self.bank_partner_id.unwrap_or(-1))
    }

    /// The retail partner a retail user is confined to; `None` for everyone else (-1 as above).
    pub fn retail_scope(&self) -> Option<i64> {
        (self.role == Role::Retail).then(|| self.retail_partner_id.unwrap_or(-1))
    }

    /// What records the persons that answers to `req` disclose to this caller, `classes` of
    /// their data (`crate::disclosures`).
    pub fn discloser(&self, req: &HttpRequest, classes: Classes) -> AppResult<Discloser> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| AppError::internal("application state missing"))?;
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let route =
            format!("{} {}", req.method(), req.match_pattern().unwrap_or_else(|| req.path().to_owned()));
        let entry = Entry {
            occurred_at: db::now(),
            user_id: self.id,
            bank_partner_id: self.bank_partner_id,
            retail_partner_id: self.retail_partner_id,
            route,
            request_id,
            classes,
            persons: Vec::new(),
        };
        let preparing = req.extensions_mut().remove::<Preparing>();
        Ok(Discloser::new(state.disclosures.clone(), entry, preparing))
    }

    /// Records that the answer to `req` discloses `classes` of `persons` to this caller, and
    /// returns once it is written: the handler answers after it, and not at all when it fails
    /// (503). Nothing is recorded for no persons.
    pub async fn disclose(
        &self,
        req: &HttpRequest,
        classes: Classes,
        persons: impl IntoIterator<Item = i64>,
    ) -> AppResult<()> {
        self.discloser(req, classes)?.disclose(persons).await
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

/// An API client's request: 403 unless a scope both held by the client now and granted to
/// its token reaches it.
fn allowed(req: &HttpRequest, held: &str, granted: Option<&str>) -> AppResult<()> {
    use crate::domain::scope::{Access, split};
    let held = split(held).unwrap_or_default();
    let granted = granted.map(|g| split(g).unwrap_or_default());
    match Scope::needed(req.method(), req.path()) {
        Access::Open => Ok(()),
        Access::Needs(scope) if held.contains(&scope) && granted.is_none_or(|g| g.contains(&scope)) => Ok(()),
        Access::Needs(scope) => Err(AppError::InsufficientScope(Some(scope.as_str()))),
        Access::Closed => Err(AppError::InsufficientScope(None)),
    }
}

impl FromRequest for Caller {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state missing"))?;
            let claims = state.keys.verify(&token?)?;
            let id: i64 =
                claims.sub.parse().map_err(|_| AppError::Unauthorized("the token is malformed".into()))?;
            // A token newer than the identity cached (a generation raised, a secret made on
            // another instance since it was read) reads it again rather than being refused; a
            // token of a secret known and revoked is refused from the cache.
            let stale = |user: &Identity| {
                user.token_generation < claims.generation
                    || (user.scopes.is_some() && claims.secret_id.is_some_and(|s| s > user.newest_secret))
            };
            let user = match state.identities.get(id) {
                Some(cached) if !cached.as_ref().is_some_and(stale) => cached,
                _ => {
                    let read = db::run(&state.pool, move |conn| Ok(Identity::by_id(conn, id)?)).await?;
                    state.identities.put(id, read.clone());
                    read
                }
            };
            match user {
                Some(user) if !user.disabled => {
                    if claims.generation != user.token_generation {
                        return Err(AppError::Unauthorized(
                            "the token was issued before the user's password, role, partner or state \
                             changed; log in again"
                                .into(),
                        ));
                    }
                    if let Some(held) = &user.scopes {
                        if !claims.secret_id.is_some_and(|s| user.live_secrets.contains(&s)) {
                            return Err(AppError::Unauthorized(
                                "the secret this token was granted with is revoked; get a new token".into(),
                            ));
                        }
                        allowed(&req, held, claims.scope.as_deref())?;
                    }
                    let mut extensions = actix_web::HttpMessage::extensions_mut(&req);
                    extensions.insert(crate::http::access::CallerId(user.id));
                    extensions.insert(crate::spool::Exporter::of(
                        user.id,
                        user.bank_partner_id,
                        user.retail_partner_id,
                    ));
                    // Counted until its disclosure is queued or the request ends, when it may
                    // disclose: what viewers get is masked and recorded nothing, but applications.
                    if may_disclose(user.role, req.path()) {
                        extensions.insert(state.disclosures.preparing());
                    }
                    drop(extensions);
                    Ok(Caller {
                        id: user.id,
                        email: user.email,
                        role: user.role,
                        bank_partner_id: user.bank_partner_id,
                        retail_partner_id: user.retail_partner_id,
                    })
                }
                _ => Err(AppError::Unauthorized("the token's user is disabled or no longer exists".into())),
            }
        })
    }
}

/// Whether a request of a `role` user to `path` may disclose a person's data: the disclosure
/// log's writer waits a moment for such requests' entries, not for the others.
fn may_disclose(role: Role, path: &str) -> bool {
    role != Role::Viewer || path.contains("/applications")
}
