//! API clients: partner banks' and retailers' systems, which sign in with OAuth 2.0 client
//! credentials (`crate::auth::clients`). Admins create them bound to one partner with scopes;
//! a secret is shown once and stored as an argon2id hash; a second secret can be made for a
//! rotation (two at most are active), and either revoked; revoking the client stops its tokens.
//!
//! A client is stored as a user of its partner's role with `scopes` set, so that its tokens
//! never do more than its partner's users can, and the audit log, the disabling of tokens and
//! the identity cache treat it as they treat people. `/users` lists people only.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::config::random_token;
use crate::crypto::hash_password;
use crate::db::schema::{bank_partners, client_secrets, retail_partners, users};
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::domain::scope::{self, Scope};
use crate::error::{AppError, AppResult, OnConflict};
use crate::http::Json;
use crate::http::etag::{self, IfMatch};
use crate::state::AppState;

/// Active secrets a client may hold at once: the current one and, during a rotation, the next.
pub const MAX_ACTIVE_SECRETS: i64 = 2;

/// A new API client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiClient {
    /// The bank the client acts for (exactly one of the two partners).
    pub bank_partner_id: Option<i64>,
    /// The retail partner the client acts for.
    pub retail_partner_id: Option<i64>,
    /// What its tokens may do: `applicants:read`, `applications:write` and `stats:read` for a
    /// bank's client; `products:read`, `curations:write`, `outlets:write` and `stats:read` for
    /// a retailer's; `webhooks:manage` (the partner's own subscriptions) for either.
    #[schema(example = json!(["applicants:read"]))]
    pub scopes: Vec<Scope>,
}

/// A client's secret, without the secret.
#[derive(Debug, Serialize, Deserialize, ToSchema, Queryable)]
pub struct SecretView {
    /// The secret's id.
    pub id: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last used to get a token.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked (it no longer gets tokens).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An API client.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiClient {
    /// The client's id in this API (its `/users/{id}` too).
    pub id: i64,
    /// The OAuth `client_id`.
    #[schema(example = "bjtm-kur-feed")]
    pub client_id: String,
    /// `bank` or `retail`.
    pub role: Role,
    /// Its bank.
    pub bank_partner_id: Option<i64>,
    /// Its retail partner.
    pub retail_partner_id: Option<i64>,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// Revoked: its secrets get no tokens and its tokens stopped working.
    pub revoked: bool,
    /// When it last got a token.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Its secrets, newest first.
    pub secrets: Vec<SecretView>,
    /// Starts at 1, +1 on each change (a secret made or revoked included; not `last_used_at`,
    /// which every token moves); also the `ETag`.
    pub version: i32,
}

/// A secret, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedSecret {
    /// The client.
    pub client: ApiClient,
    /// The new secret's id.
    pub secret_id: i64,
    /// The secret: shown this once, stored only as a hash.
    #[schema(example = "cs_6QkXh2pT9vR4mW8yZ1bN3cL5dF7gJ0aS")]
    pub client_secret: String,
}

type ClientRow =
    (i64, String, String, Option<i64>, Option<i64>, bool, Option<String>, Option<NaiveDateTime>, i32);

fn find(conn: &mut DbConnection, id: i64) -> AppResult<ApiClient> {
    let row: ClientRow = users::table
        .find(id)
        .filter(users::scopes.is_not_null())
        .select((
            users::id,
            users::email,
            users::role,
            users::bank_partner_id,
            users::retail_partner_id,
            users::disabled,
            users::scopes,
            users::last_login_at,
            users::version,
        ))
        .first(conn)?;
    let secrets: Vec<(i64, NaiveDateTime, Option<NaiveDateTime>, Option<NaiveDateTime>)> =
        client_secrets::table
            .filter(client_secrets::user_id.eq(id))
            .order(client_secrets::id.desc())
            .select((
                client_secrets::id,
                client_secrets::created_at,
                client_secrets::last_used_at,
                client_secrets::revoked_at,
            ))
            .load(conn)?;
    let (id, client_id, role, bank, retail, disabled, scopes, last_used, version) = row;
    Ok(ApiClient {
        id,
        client_id,
        role: Role::parse(&role).ok_or_else(|| AppError::internal("a client of an unknown role"))?,
        bank_partner_id: bank,
        retail_partner_id: retail,
        scopes: scope::split(scopes.as_deref().unwrap_or("")).unwrap_or_default(),
        revoked: disabled,
        last_used_at: last_used.map(|t| t.and_utc()),
        secrets: secrets
            .into_iter()
            .map(|(id, created, used, revoked)| SecretView {
                id,
                created_at: created.and_utc(),
                last_used_at: used.map(|t| t.and_utc()),
                revoked_at: revoked.map(|t| t.and_utc()),
            })
            .collect(),
        version,
    })
}

/// A change of client `id`'s secrets is a change of the client: a new version.
fn bump_version(conn: &mut DbConnection, id: i64) -> AppResult<()> {
    diesel::update(users::table.find(id))
        .set((users::version.eq(users::version + 1), users::updated_at.eq(db::now())))
        .execute(conn)?;
    Ok(())
}

/// A new secret for client `id`: 409 when it already has [`MAX_ACTIVE_SECRETS`] active.
fn add_secret(conn: &mut DbConnection, user: i64, id: i64) -> AppResult<(i64, String)> {
    // The client's row, locked: two rotations at once cannot both pass the count.
    db::lock_row(conn, "users", id)?;
    let active: i64 = client_secrets::table
        .filter(client_secrets::user_id.eq(id))
        .filter(client_secrets::revoked_at.is_null())
        .count()
        .get_result(conn)?;
    if active >= MAX_ACTIVE_SECRETS {
        return Err(AppError::Conflict(format!(
            "the client has {MAX_ACTIVE_SECRETS} active secrets; revoke one before making another"
        )));
    }
    let secret = random_token(40);
    let secret_id: i64 = diesel::insert_into(client_secrets::table)
        .values((
            client_secrets::user_id.eq(id),
            client_secrets::secret_hash.eq(hash_password(&secret)?),
            client_secrets::created_at.eq(db::now()),
        ))
        .returning(client_secrets::id)
        .get_result(conn)?;
    audit::record(conn, user, Action::Create, "client_secret", secret_id, &json!({"client": id}))?;
    Ok((secret_id, secret))
}

/// Create an API client for a partner (admins). The answer shows its secret once.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = NewApiClient,
    responses((status = 201, description = "The client, with its first secret", body = IssuedSecret)),
)]
#[post("/api-clients")]
pub async fn create_api_client(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewApiClient>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let NewApiClient { bank_partner_id, retail_partner_id, scopes } = body.0;
    let role = match (bank_partner_id, retail_partner_id) {
        (Some(_), None) => Role::Bank,
        (None, Some(_)) => Role::Retail,
        _ => {
            return Err(AppError::invalid(
                "bank_partner_id",
                "required",
                "give exactly one of bank_partner_id and retail_partner_id",
            ));
        }
    };
    if scopes.is_empty() {
        return Err(AppError::invalid("scopes", "required", "give at least one scope"));
    }
    if let Some(wrong) = scopes.iter().find(|s| !s.fits(role)) {
        return Err(AppError::invalid(
            "scopes",
            "not_allowed",
            format!("a {role} partner's client cannot hold {}", wrong.as_str()),
        ));
    }
    let user = caller.id;
    let issued = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let partner_exists = match (bank_partner_id, retail_partner_id) {
                (Some(bank), _) => diesel::select(diesel::dsl::exists(bank_partners::table.find(bank)))
                    .get_result::<bool>(conn)?,
                (_, Some(retail)) => diesel::select(diesel::dsl::exists(retail_partners::table.find(retail)))
                    .get_result::<bool>(conn)?,
                _ => false,
            };
            if !partner_exists {
                let field = if bank_partner_id.is_some() { "bank_partner_id" } else { "retail_partner_id" };
                return Err(AppError::invalid(field, "unknown", "no such partner"));
            }
            let client_id = format!("umkm-{}", random_token(20).to_lowercase());
            let now = db::now();
            let id: i64 = diesel::insert_into(users::table)
                .values((
                    users::email.eq(&client_id),
                    // Never checked: a client signs in with its secrets, not a password.
                    users::password_hash.eq(hash_password(&random_token(32))?),
                    users::role.eq(role.as_str()),
                    users::bank_partner_id.eq(bank_partner_id),
                    users::retail_partner_id.eq(retail_partner_id),
                    users::scopes.eq(scope::join(&scopes)),
                    users::created_at.eq(now),
                    users::updated_at.eq(now),
                ))
                .returning(users::id)
                .get_result(conn)
                .on_conflict("a client with this id exists; try again")?;
            let snapshot = json!({"client_id": client_id, "role": role, "bank_partner_id": bank_partner_id,
                "retail_partner_id": retail_partner_id, "scopes": scope::join(&scopes)});
            audit::record(conn, user, Action::Create, "api_client", id, &snapshot)?;
            let (secret_id, client_secret) = add_secret(conn, user, id)?;
            Ok(IssuedSecret { client: find(conn, id)?, secret_id, client_secret })
        })
    })
    .await?;
    let location = format!("/api/v1/api-clients/{}", issued.client.id);
    Ok(HttpResponse::Created().insert_header((actix_web::http::header::LOCATION, location)).json(issued))
}

/// List the API clients (admins), by id.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, description = "Every API client", body = Vec<ApiClient>)),
)]
#[get("/api-clients")]
pub async fn list_api_clients(state: web::Data<AppState>, caller: Caller) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let clients = db::run(&state.pool, |conn| {
        let ids: Vec<i64> =
            users::table.filter(users::scopes.is_not_null()).order(users::id).select(users::id).load(conn)?;
        ids.into_iter().map(|id| find(conn, id)).collect::<AppResult<Vec<_>>>()
    })
    .await?;
    Ok(HttpResponse::Ok().json(clients))
}

/// One API client (admins).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The client's id")),
    responses((status = 200, description = "The client", body = ApiClient,
        headers(("ETag" = String, description = "The client's version")))),
)]
#[get("/api-clients/{id}")]
pub async fn get_api_client(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let id = id.into_inner();
    let client = db::run(&state.pool, move |conn| find(conn, id)).await?;
    Ok(etag::ok(client.version, client))
}

/// One of a client's secrets, without the secret (admins).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The client's id"), ("secret_id" = i64, Path, description = "The secret's id")),
    responses((status = 200, description = "The secret, without the secret", body = SecretView)),
)]
#[get("/api-clients/{id}/secrets/{secret_id}")]
pub async fn get_api_client_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let (id, secret_id) = path.into_inner();
    let client = db::run(&state.pool, move |conn| find(conn, id)).await?;
    let secret = client.secrets.into_iter().find(|s| s.id == secret_id).ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok().json(secret))
}

/// Make another secret for a client, for a rotation (admins): both work until the old one is
/// revoked. 409 while two are active. The answer shows the new secret once.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The client's id"),
        ("If-Match" = Option<String>, Header, description = "The client's ETag last read; 412 if it changed since"),
    ),
    responses(
        (status = 201, description = "The client, with the new secret", body = IssuedSecret,
            headers(("Location" = String, description = "The new secret's URL"), ("ETag" = String, description = "The client's new version"))),
        (status = 409, description = "Two secrets are active, or the client is revoked",
            body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/api-clients/{id}/secrets")]
pub async fn add_api_client_secret(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let (id, user) = (id.into_inner(), caller.id);
    let issued = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            db::lock_row(conn, "users", id)?;
            let client = find(conn, id)?;
            if_match.check(client.version)?;
            if client.revoked {
                return Err(AppError::Conflict("the client is revoked".into()));
            }
            let (secret_id, client_secret) = add_secret(conn, user, id)?;
            bump_version(conn, id)?;
            Ok(IssuedSecret { client: find(conn, id)?, secret_id, client_secret })
        })
    })
    .await?;
    let location = format!("/api/v1/api-clients/{id}/secrets/{}", issued.secret_id);
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::LOCATION, location))
        .insert_header(etag::etag(issued.client.version))
        .json(issued))
}

/// Revoke one of a client's secrets (admins): it gets no more tokens, and the tokens it got
/// stop working at once on this instance and within 5 seconds on the others; tokens of the
/// client's other secret keep working.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The client's id"),
        ("secret_id" = i64, Path, description = "The secret's id"),
        ("If-Match" = Option<String>, Header, description = "The client's ETag last read; 412 if it changed since"),
    ),
    responses((status = 204, description = "Revoked")),
)]
#[delete("/api-clients/{id}/secrets/{secret_id}")]
pub async fn revoke_api_client_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let ((id, secret_id), user) = (path.into_inner(), caller.id);
    db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            db::lock_row(conn, "users", id)?;
            if_match.check(find(conn, id)?.version)?;
            let revoked = diesel::update(
                client_secrets::table
                    .find(secret_id)
                    .filter(client_secrets::user_id.eq(id))
                    .filter(client_secrets::revoked_at.is_null()),
            )
            .set(client_secrets::revoked_at.eq(db::now()))
            .execute(conn)?;
            if revoked == 0 {
                return Err(AppError::NotFound);
            }
            audit::record(conn, user, Action::Delete, "client_secret", secret_id, &json!({"client": id}))?;
            bump_version(conn, id)?;
            Ok::<_, AppError>(())
        })
    })
    .await?;
    // The tokens of that secret end: at once here, within the identity cache's bound elsewhere.
    state.identities.forget(id);
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke a client (admins): its secrets get no tokens, and the tokens it has stop working at
/// once on this instance and within 5 seconds on the others. It stays listed, revoked.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The client's id"),
        ("If-Match" = Option<String>, Header, description = "The client's ETag last read; 412 if it changed since"),
    ),
    responses((status = 204, description = "Revoked")),
)]
#[delete("/api-clients/{id}")]
pub async fn revoke_api_client(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let (id, user) = (id.into_inner(), caller.id);
    db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            db::lock_row(conn, "users", id)?;
            if_match.check(find(conn, id)?.version)?;
            let now = db::now();
            diesel::update(users::table.find(id))
                .set((
                    users::disabled.eq(true),
                    users::updated_at.eq(now),
                    users::version.eq(users::version + 1),
                    users::token_generation.eq(users::token_generation + 1),
                ))
                .execute(conn)?;
            diesel::update(client_secrets::table.filter(client_secrets::user_id.eq(id)))
                .filter(client_secrets::revoked_at.is_null())
                .set(client_secrets::revoked_at.eq(now))
                .execute(conn)?;
            audit::record(conn, user, Action::Delete, "api_client", id, &json!({"revoked": true}))?;
            Ok::<_, AppError>(())
        })
    })
    .await?;
    state.identities.forget(id);
    Ok(HttpResponse::NoContent().finish())
}
