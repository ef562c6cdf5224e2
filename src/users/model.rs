//! Users as stored, and the one create, update and delete of a user: each checks every field,
//! writes the row and its audit entry in one transaction. The audit entry never holds the
//! password or its hash, only that the password changed.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::audit::{self, Action};
use crate::crypto;
use crate::db::schema::{bank_partners, retail_partners, users};
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult, FieldError};
use crate::http::etag::IfMatch;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost grows with length).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A user as stored (the row of `users`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
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
    /// Raised by a password change, a new role or partner and a disable: older tokens end.
    pub token_generation: i32,
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// E-mail; stored lower-cased.
    #[schema(example = "analis@bankjatim.co.id")]
    pub email: String,
    /// 12 to 256 characters (no NUL).
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
    /// New password: 12 to 256 characters (no NUL).
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

/// Finds a user (a person: API clients are `crate::users::clients`' and not found here).
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<UserRow> {
    users::table.find(id).filter(users::scopes.is_null()).select(UserRow::as_select()).first(conn)
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

/// The role/partner rule, checked against the database: a `bank` user needs an existing bank
/// partner and a `retail` user an existing retail partner; other roles have none.
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

/// What the audit log keeps of a user.
#[derive(Serialize)]
struct Audited<'a> {
    email: &'a str,
    role: Role,
    bank_partner_id: Option<i64>,
    retail_partner_id: Option<i64>,
    disabled: bool,
}

impl<'a> From<&'a UserRow> for Audited<'a> {
    fn from(u: &'a UserRow) -> Self {
        Audited {
            email: &u.email,
            role: u.role,
            bank_partner_id: u.bank_partner_id,
            retail_partner_id: u.retail_partner_id,
            disabled: u.disabled,
        }
    }
}

/// The audit entry of a change: the changed fields, and `password` (redacted) when it changed.
fn changes(before: &UserRow, after: &UserRow) -> Value {
    let mut changes = audit::diff(&Audited::from(before), &Audited::from(after), &[]);
    if before.password_hash != after.password_hash
        && let Value::Object(map) = &mut changes
    {
        map.insert("password".into(), json!({"from": audit::REDACTED, "to": audit::REDACTED}));
    }
    changes
}

/// Creates a user after checking every field (all problems in one answer). `actor` is the
/// admin who asked, `None` for the command line.
pub fn create(conn: &mut DbConnection, actor: Option<i64>, new: NewUser) -> AppResult<UserRow> {
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
        let hash = crypto::hash_password(&new.password)?;
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
        let user = find(conn, id)?;
        audit::record_by(
            conn,
            actor,
            Action::Create,
            "user",
            id,
            &audit::snapshot(&Audited::from(&user), &[]),
        )?;
        Ok(user)
    })
}

/// Applies a merge patch to a user, checking `If-Match` and every field. `actor` (an admin)
/// cannot change their own role or disable themselves.
pub fn update(
    conn: &mut DbConnection,
    actor: i64,
    id: i64,
    if_match: &IfMatch,
    patch: UserPatch,
) -> AppResult<UserRow> {
    if_match.write(conn, |conn| {
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
        if id == actor && (role != current.role || patch.disabled == Some(true)) {
            return Err(AppError::Conflict("you cannot change your own role or disable yourself".into()));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let hash = patch.password.as_deref().map(crypto::hash_password).transpose()?;
        let disabled = patch.disabled.unwrap_or(current.disabled);
        // What ends the tokens issued so far: a new password, role or partner, or a disable (and
        // an enable gives none of them back).
        let ends_tokens = hash.is_some()
            || role != current.role
            || bank != current.bank_partner_id
            || retail != current.retail_partner_id
            || disabled != current.disabled;
        crate::versioned_update!(
            conn,
            users,
            id,
            current.version,
            (
                users::email.eq(email.unwrap_or_else(|| current.email.clone())),
                users::password_hash.eq(hash.unwrap_or_else(|| current.password_hash.clone())),
                users::role.eq(role.as_str()),
                users::bank_partner_id.eq(bank),
                users::retail_partner_id.eq(retail),
                users::disabled.eq(disabled),
                users::token_generation.eq(current.token_generation + i32::from(ends_tokens)),
            )
        )?;
        let after = find(conn, id)?;
        audit::record(conn, actor, Action::Update, "user", id, &changes(&current, &after))?;
        Ok(after)
    })
}

/// Deletes a user (checking `If-Match`); an admin cannot delete their own account.
pub fn delete(conn: &mut DbConnection, actor: i64, id: i64, if_match: &IfMatch) -> AppResult<()> {
    if id == actor {
        return Err(AppError::Conflict("you cannot delete your own account".into()));
    }
    if_match.write(conn, |conn| {
        let current = find(conn, id)?;
        if_match.check(current.version)?;
        crate::versioned_delete!(conn, users, id, current.version)?;
        audit::record(
            conn,
            actor,
            Action::Delete,
            "user",
            id,
            &audit::snapshot(&Audited::from(&current), &[]),
        )?;
        Ok(())
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
        None,
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

/// Sets a new password (the `user reset-password` command; the audit entry has no acting user).
pub fn reset_password(conn: &mut DbConnection, email: &str, password: &str) -> AppResult<()> {
    check_password(password).map_err(|m| AppError::invalid("password", "invalid_length", m))?;
    let hash = crypto::hash_password(password)?;
    db::write(conn, |conn| {
        let current: UserRow = users::table
            .filter(users::email.eq(email.trim().to_lowercase()))
            .filter(users::scopes.is_null())
            .select(UserRow::as_select())
            .first(conn)?;
        crate::versioned_update!(
            conn,
            users,
            current.id,
            current.version,
            (users::password_hash.eq(&hash), users::token_generation.eq(current.token_generation + 1))
        )?;
        let after = find(conn, current.id)?;
        audit::record_by(conn, None, Action::Update, "user", current.id, &changes(&current, &after))?;
        Ok(())
    })
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
