//! Users: accounts, their roles and partner bindings. Managed by admins; the handlers here
//! call the one create, update and delete of `model`.

pub mod clients;
mod model;

pub use model::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, NewUser, UserPatch, UserRow, any_exist, check_password, create,
    ensure_first_admin, find, parse_email, reset_password,
};

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::db;
use crate::db::schema::users;
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::http::Json;
use crate::http::etag::{self, IfMatch};
use crate::http::list::{self, Page, PageParams, Sort};
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_users).service(create_user).service(get_user).service(update_user).service(delete_user);
    cfg.service(clients::create_api_client)
        .service(clients::list_api_clients)
        .service(clients::get_api_client)
        .service(clients::add_api_client_secret)
        .service(clients::get_api_client_secret)
        .service(clients::revoke_api_client_secret)
        .service(clients::revoke_api_client);
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = UserView)]
pub struct User {
    /// Id.
    #[schema(example = 1)]
    pub id: i64,
    /// E-mail, lower-cased; unique regardless of case.
    #[schema(example = "officer@disperindag.lamongankab.go.id")]
    pub email: String,
    /// Role.
    pub role: Role,
    /// The bank partner of a `bank` user; `null` for other roles.
    pub bank_partner_id: Option<i64>,
    /// The retail partner of a `retail` user; `null` for other roles.
    pub retail_partner_id: Option<i64>,
    /// A disabled user cannot log in, and its tokens stop working at once.
    pub disabled: bool,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Starts at 1, +1 on each change; also the `ETag`.
    pub version: i32,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        User {
            id: u.id,
            email: u.email,
            role: u.role,
            bank_partner_id: u.bank_partner_id,
            retail_partner_id: u.retail_partner_id,
            disabled: u.disabled,
            last_login_at: u.last_login_at.map(|t| t.and_utc()),
            created_at: u.created_at.and_utc(),
            updated_at: u.updated_at.and_utc(),
            version: u.version,
        }
    }
}

/// Filters and paging of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users with this role.
    pub role: Option<Role>,
    /// Only disabled (`true`) or enabled (`false`) users.
    pub disabled: Option<bool>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total` of matching rows.
    pub count: Option<bool>,
}

/// List users.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(UserQuery),
    responses((status = 200, description = "A page of users, by id", body = Page<User>)),
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UserQuery>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let query = query.into_inner();
    let sort = Sort::<UserOrder>::parse(None, "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let filtered = move || {
        // People only: API clients are listed under `/api-clients`.
        let mut q = users::table.filter(users::scopes.is_null()).into_boxed();
        if let Some(role) = query.role {
            q = q.filter(users::role.eq(role.as_str()));
        }
        if let Some(disabled) = query.disabled {
            q = q.filter(users::disabled.eq(disabled));
        }
        q
    };
    let count = filtered;
    list::json_page(
        &state.pool,
        params,
        move |conn, after, limit| {
            let (rows, next) =
                list::keyset(conn, filtered().select(UserRow::as_select()), &sort, after, limit)?;
            Ok((rows.into_iter().map(User::from).collect::<Vec<_>>(), next))
        },
        move |conn| Ok(count().count().get_result(conn)?),
    )
    .await
}

crate::key_order!(UserOrder, users, UserRow, id, Int);

/// Create a user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = User,
            headers(("Location" = String, description = "The user's URL"), ("ETag" = String, description = "The user's version"))),
        (status = 409, description = "The e-mail is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewUser>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let user = db::run(&state.pool, move |conn| create(conn, Some(caller.id), body.0)).await?;
    Ok(etag::created(format!("/api/v1/users/{}", user.id), user.version, User::from(user)))
}

/// Get a user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    responses((status = 200, description = "The user", body = User,
        headers(("ETag" = String, description = "The user's version")))),
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let id = id.into_inner();
    let user = db::run(&state.pool, move |conn| Ok(find(conn, id)?)).await?;
    Ok(etag::ok(user.version, User::from(user)))
}

/// Change a user (JSON merge patch; honours `If-Match`).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; the change is refused with 412 if the user has changed since"),
    ),
    request_body(content = UserPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed user", body = User,
            headers(("ETag" = String, description = "The user's new version"))),
        (status = 409, description = "The e-mail is taken, or an admin tried to demote or disable themselves",
            body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<UserPatch>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let id = id.into_inner();
    let user =
        db::run(&state.pool, move |conn| model::update(conn, caller.id, id, &if_match, body.0)).await?;
    // Its role, partner or state may have changed: this instance reads it again at once.
    state.identities.forget(id);
    Ok(etag::ok(user.version, User::from(user)))
}

/// Delete a user (honours `If-Match`). Admins cannot delete themselves.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Admins cannot delete themselves", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/users/{id}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let id = id.into_inner();
    db::run(&state.pool, move |conn| model::delete(conn, caller.id, id, &if_match)).await?;
    state.identities.forget(id);
    Ok(HttpResponse::NoContent().finish())
}
