//! Users: accounts, their roles and partner bindings. Managed by admins.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{self, Caller};
use crate::db::schema::{bank_partners, retail_partners, users};
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult, FieldError};
use crate::http::Json;
use crate::http::etag::{IfMatch, etag};
use crate::http::list::{self, Page};
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_users).service(create_user).service(get_user).service(update_user).service(delete_user);
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost grows with length).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A user as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Lower-cased e-mail.
    pub email: String,
    /// argon2id hash.
    pub password_hash: String,
    /// Role.
    #[diesel(deserialize_as = String)]
    pub role: Role,
    /// Bank partner of a `bank` user.
    pub bank_partner_id: Option<i64>,
    /// Retail partner of a `retail` user.
    pub retail_partner_id: Option<i64>,
    /// A disabled user cannot log in, and its tokens stop working.
    pub disabled: bool,
    /// Last successful login.
    pub last_login_at: Option<NaiveDateTime>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Starts at 1, +1 on each change.
    pub version: i32,
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
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

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
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

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// E-mail; stored lower-cased.
    #[schema(example = "analis@bankjatim.co.id")]
    pub email: String,
    /// At least 12 characters.
    #[schema(example = "a long passphrase")]
    pub password: String,
    /// Role.
    pub role: Role,
    /// Required for `bank` users, forbidden otherwise.
    #[serde(default)]
    pub bank_partner_id: Option<i64>,
    /// Required for `retail` users, forbidden otherwise.
    #[serde(default)]
    pub retail_partner_id: Option<i64>,
    /// Create the user disabled.
    #[serde(default)]
    pub disabled: bool,
}

/// Changes to a user, as a JSON merge patch (RFC 7396): an absent field is kept, `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// New password (at least 12 characters).
    #[serde(default)]
    pub password: Option<String>,
    /// New role; the partner fields must fit it after the patch.
    #[serde(default)]
    pub role: Option<Role>,
    /// New bank partner, or `null` to clear.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<i64>)]
    pub bank_partner_id: Option<Option<i64>>,
    /// New retail partner, or `null` to clear.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<i64>)]
    pub retail_partner_id: Option<Option<i64>>,
    /// Disable or enable the user.
    #[serde(default)]
    pub disabled: Option<bool>,
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

/// Finds a user by id.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<User> {
    users::table.find(id).select(User::as_select()).first(conn)
}

/// Finds a user by lower-cased e-mail.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<User> {
    users::table.filter(users::email.eq(email)).select(User::as_select()).first(conn)
}

/// Records a successful login.
pub fn touch_last_login(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id)).set(users::last_login_at.eq(at)).execute(conn)
}

/// Whether any user exists (for the first start).
pub fn any_exist(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.select(users::id))).get_result(conn)
}

/// Normalises and checks an e-mail address.
pub fn parse_email(raw: &str) -> Result<String, String> {
    crate::domain::codes::Email::parse(raw).map(|e| e.into_string()).map_err(|e| e.message)
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if n > MAX_PASSWORD_CHARS {
        Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"))
    } else {
        Ok(())
    }
}

/// The role/partner rule of SPEC §3, checked against the database: a `bank` user needs an
/// existing bank partner and a `retail` user an existing retail partner; other roles have none.
fn check_binding(
    conn: &mut DbConnection,
    role: Role,
    bank: Option<i64>,
    retail: Option<i64>,
    errors: &mut Vec<FieldError>,
) -> QueryResult<()> {
    match (role, bank) {
        (Role::Bank, None) => {
            errors.push(FieldError::new("bank_partner_id", "required", "is required for bank users"))
        }
        (Role::Bank, Some(id)) => {
            let exists: bool =
                diesel::select(diesel::dsl::exists(bank_partners::table.find(id))).get_result(conn)?;
            if !exists {
                errors.push(FieldError::new("bank_partner_id", "not_found", "no bank partner has this id"));
            }
        }
        (_, Some(_)) => errors.push(FieldError::new(
            "bank_partner_id",
            "forbidden",
            format!("must be null for {role} users"),
        )),
        (_, None) => {}
    }
    match (role, retail) {
        (Role::Retail, None) => {
            errors.push(FieldError::new("retail_partner_id", "required", "is required for retail users"))
        }
        (Role::Retail, Some(id)) => {
            let exists: bool =
                diesel::select(diesel::dsl::exists(retail_partners::table.find(id))).get_result(conn)?;
            if !exists {
                errors.push(FieldError::new(
                    "retail_partner_id",
                    "not_found",
                    "no retail partner has this id",
                ));
            }
        }
        (_, Some(_)) => errors.push(FieldError::new(
            "retail_partner_id",
            "forbidden",
            format!("must be null for {role} users"),
        )),
        (_, None) => {}
    }
    Ok(())
}

/// Creates a user after checking every field; all problems are reported at once.
pub fn create(conn: &mut DbConnection, new: NewUser) -> AppResult<User> {
    let mut errors = Vec::new();
    let email =
        parse_email(&new.email).map_err(|m| errors.push(FieldError::new("email", "invalid_format", m))).ok();
    if let Err(m) = check_password(&new.password) {
        errors.push(FieldError::new("password", "invalid_length", m));
    }
    db::write(conn, |conn| {
        check_binding(conn, new.role, new.bank_partner_id, new.retail_partner_id, &mut errors)?;
        let Some(email) = email.filter(|_| errors.is_empty()) else {
            return Err(AppError::Validation(std::mem::take(&mut errors)));
        };
        let now = db::now();
        let hash = auth::hash_password(&new.password)?;
        let id: i64 = diesel::insert_into(users::table)
            .values((
                users::email.eq(&email),
                users::password_hash.eq(hash),
                users::role.eq(new.role.as_str()),
                users::bank_partner_id.eq(new.bank_partner_id),
                users::retail_partner_id.eq(new.retail_partner_id),
                users::disabled.eq(new.disabled),
                users::created_at.eq(now),
                users::updated_at.eq(now),
                users::version.eq(1),
            ))
            .returning(users::id)
            .get_result(conn)?;
        Ok(find(conn, id)?)
    })
}

/// Applies a merge patch to a user, checking `If-Match` and every field.
pub fn update(
    conn: &mut DbConnection,
    caller_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: UserPatch,
) -> AppResult<User> {
    db::write(conn, |conn| {
        let current = find(conn, id)?;
        if_match.check(current.version)?;
        let mut errors = Vec::new();
        let email = match &patch.email {
            Some(raw) => {
                parse_email(raw).map_err(|m| errors.push(FieldError::new("email", "invalid_format", m))).ok()
            }
            None => None,
        };
        if let Some(Err(m)) = patch.password.as_deref().map(check_password) {
            errors.push(FieldError::new("password", "invalid_length", m));
        }
        let role = patch.role.unwrap_or(current.role);
        let bank = patch.bank_partner_id.unwrap_or(current.bank_partner_id);
        let retail = patch.retail_partner_id.unwrap_or(current.retail_partner_id);
        check_binding(conn, role, bank, retail, &mut errors)?;
        if id == caller_id && (role != current.role || patch.disabled == Some(true)) {
            return Err(AppError::Conflict("you cannot change your own role or disable yourself".into()));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let hash = patch.password.as_deref().map(auth::hash_password).transpose()?;
        let updated = diesel::update(users::table.find(id).filter(users::version.eq(current.version)))
            .set((
                users::email.eq(email.unwrap_or(current.email)),
                users::password_hash.eq(hash.unwrap_or(current.password_hash)),
                users::role.eq(role.as_str()),
                users::bank_partner_id.eq(bank),
                users::retail_partner_id.eq(retail),
                users::disabled.eq(patch.disabled.unwrap_or(current.disabled)),
                users::updated_at.eq(db::now()),
                users::version.eq(current.version + 1),
            ))
            .execute(conn)?;
        if updated == 0 {
            return Err(AppError::PreconditionFailed);
        }
        Ok(find(conn, id)?)
    })
}

/// On a database without users, creates the first admin: `email` and `password` when given,
/// else `admin@localhost` with a random password, which is returned so it can be shown once.
pub fn ensure_first_admin(
    conn: &mut DbConnection,
    email: Option<String>,
    password: Option<String>,
) -> AppResult<Option<(String, Option<String>)>> {
    if any_exist(conn)? {
        return Ok(None);
    }
    let (email, password, generated) = match (email, password) {
        (Some(email), Some(password)) => (email, password, false),
        _ => ("admin@localhost".to_owned(), crate::config::random_token(20), true),
    };
    let user = create(
        conn,
        NewUser {
            email,
            password: password.clone(),
            role: Role::Admin,
            bank_partner_id: None,
            retail_partner_id: None,
            disabled: false,
        },
    )?;
    Ok(Some((user.email, generated.then_some(password))))
}

/// Sets a new password (for the `user reset-password` command).
pub fn reset_password(conn: &mut DbConnection, email: &str, password: &str) -> AppResult<()> {
    check_password(password).map_err(|m| AppError::invalid("password", "invalid_length", m))?;
    let hash = auth::hash_password(password)?;
    let changed = diesel::update(users::table.filter(users::email.eq(email.trim().to_lowercase())))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(db::now()),
            users::version.eq(users::version + 1),
        ))
        .execute(conn)?;
    if changed == 0 { Err(AppError::NotFound) } else { Ok(()) }
}

fn user_response(status: actix_web::http::StatusCode, user: User) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header(etag(user.version));
    if status == actix_web::http::StatusCode::CREATED {
        response.insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)));
    }
    response.json(UserView::from(user))
}

/// List users.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(UserQuery),
    responses((status = 200, description = "A page of users, by id", body = Page<UserView>)),
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UserQuery>,
) -> AppResult<web::Json<Page<UserView>>> {
    caller.require(&[Role::Admin])?;
    let query = query.into_inner();
    let limit = list::limit(query.limit)?;
    let after: Option<i64> = query.cursor.as_deref().map(list::decode_cursor).transpose()?;
    let page = db::run(&state.pool, move |conn| {
        let filtered = || {
            let mut q = users::table.into_boxed();
            if let Some(role) = query.role {
                q = q.filter(users::role.eq(role.as_str()));
            }
            if let Some(disabled) = query.disabled {
                q = q.filter(users::disabled.eq(disabled));
            }
            q
        };
        let total = if query.count == Some(true) { Some(filtered().count().get_result(conn)?) } else { None };
        let mut q = filtered();
        if let Some(after) = after {
            q = q.filter(users::id.gt(after));
        }
        let rows: Vec<User> =
            q.order(users::id.asc()).limit(limit + 1).select(User::as_select()).load(conn)?;
        let (rows, next_cursor) = list::paginate(rows, limit, |u| u.id);
        Ok(Page { data: rows.into_iter().map(UserView::from).collect(), next_cursor, total })
    })
    .await?;
    Ok(web::Json(page))
}

/// Create a user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = UserView,
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
    let user = db::run(&state.pool, move |conn| create(conn, body.0)).await?;
    Ok(user_response(actix_web::http::StatusCode::CREATED, user))
}

/// Get a user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    responses((status = 200, description = "The user", body = UserView,
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
    Ok(user_response(actix_web::http::StatusCode::OK, user))
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
        (status = 200, description = "The changed user", body = UserView,
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
    let user = db::run(&state.pool, move |conn| update(conn, caller.id, id, &if_match, body.0)).await?;
    Ok(user_response(actix_web::http::StatusCode::OK, user))
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
    if id == caller.id {
        return Err(AppError::Conflict("you cannot delete your own account".into()));
    }
    db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let current = find(conn, id)?;
            if_match.check(current.version)?;
            diesel::delete(users::table.find(id)).execute(conn)?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(parse_email(" Admin@Localhost ").unwrap(), "admin@localhost");
        assert_eq!(parse_email("a.b@dinas.go.id").unwrap(), "a.b@dinas.go.id");
        for bad in ["", "no-at", "@domain", "local@", "a b@c", "a@b@c", "a@.b"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_bounded_length() {
        assert!(check_password(&"x".repeat(MIN_PASSWORD_CHARS - 1)).is_err());
        assert!(check_password(&"x".repeat(MIN_PASSWORD_CHARS)).is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }
}
