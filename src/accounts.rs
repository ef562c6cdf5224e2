//! Who a user is to authentication: the [`Account`] read at login and the [`Identity`] every
//! authenticated request needs, with the per-instance cache of identities that spares each
//! request a query.
//!
//! The cache's bound on staleness is [`IDENTITY_TTL`]: a user disabled, deleted, or given
//! another role or partner through this instance stops working at once here (the write
//! forgets the entry), and on every other instance within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::crypto::Subject;
use crate::db::DbConnection;
use crate::db::schema::{client_secrets, users};
use crate::domain::role::Role;

/// How long an instance trusts an identity it read: the bound on how late another instance's
/// change of a user (disabled, deleted, new role or partner) takes effect here.
pub const IDENTITY_TTL: Duration = Duration::from_secs(5);

/// Identities kept at most; a full cache starts again empty.
const MAX_ENTRIES: usize = 10_000;

/// What authentication reads of a user at login: identity, credentials, role and partner.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Account {
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
    /// An API client's scopes; a client signs in with client credentials, never a password.
    pub scopes: Option<String>,
    /// Raised by a password change, a new role or partner and a disable: older tokens end.
    pub token_generation: i32,
}

impl Account {
    /// Whom a token for this account is issued to.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            id: self.id,
            role: self.role,
            bank_partner_id: self.bank_partner_id,
            retail_partner_id: self.retail_partner_id,
            scope: None,
            generation: self.token_generation,
            secret_id: None,
        }
    }

    /// The account with the lower-cased e-mail `email`.
    pub fn by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Account> {
        users::table.filter(users::email.eq(email)).select(Account::as_select()).first(conn)
    }
}

/// The row [`Identity`] is read from.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
struct IdentityRow {
    id: i64,
    email: String,
    #[diesel(deserialize_as = String)]
    role: Role,
    bank_partner_id: Option<i64>,
    retail_partner_id: Option<i64>,
    disabled: bool,
    scopes: Option<String>,
    token_generation: i32,
}

/// What an authenticated request needs of its user (no credentials).
#[derive(Debug, Clone)]
pub struct Identity {
    /// Id.
    pub id: i64,
    /// Lower-cased e-mail.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Bank partner of a `bank` user.
    pub bank_partner_id: Option<i64>,
    /// Retail partner of a `retail` user.
    pub retail_partner_id: Option<i64>,
    /// A disabled user's tokens stop working.
    pub disabled: bool,
    /// An API client's scopes (space-separated); `None` for a person.
    pub scopes: Option<String>,
    /// Tokens of another generation are refused.
    pub token_generation: i32,
    /// An API client's secrets that are not revoked: a token granted with another is refused.
    pub live_secrets: Vec<i64>,
    /// An API client's newest secret, revoked or not (0 for none): a token of a newer one was
    /// granted after this was read.
    pub newest_secret: i64,
}

impl Identity {
    /// The identity of user `id`, if the user exists.
    pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Identity>> {
        let Some(row) = users::table.find(id).select(IdentityRow::as_select()).first(conn).optional()? else {
            return Ok(None);
        };
        let secrets: Vec<(i64, bool)> = if row.scopes.is_some() {
            client_secrets::table
                .filter(client_secrets::user_id.eq(id))
                .select((client_secrets::id, client_secrets::revoked_at.is_null()))
                .load(conn)?
        } else {
            Vec::new()
        };
        let live_secrets = secrets.iter().filter(|(_, live)| *live).map(|(id, _)| *id).collect();
        let newest_secret = secrets.iter().map(|(id, _)| *id).max().unwrap_or(0);
        Ok(Some(Identity {
            id: row.id,
            email: row.email,
            role: row.role,
            bank_partner_id: row.bank_partner_id,
            retail_partner_id: row.retail_partner_id,
            disabled: row.disabled,
            scopes: row.scopes,
            token_generation: row.token_generation,
            live_secrets,
            newest_secret,
        }))
    }
}

/// The identities this instance read lately, each trusted for [`IDENTITY_TTL`].
#[derive(Debug)]
pub struct IdentityCache {
    ttl: Duration,
    entries: Mutex<HashMap<i64, (Instant, Option<Identity>)>>,
}

impl Default for IdentityCache {
    fn default() -> Self {
        IdentityCache::new(IDENTITY_TTL)
    }
}

impl IdentityCache {
    /// A cache trusting what it read for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        IdentityCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (Instant, Option<Identity>)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What was read of user `id` within the TTL: `Some(None)` for a user known not to exist,
    /// `None` when it must be read.
    pub fn get(&self, id: i64) -> Option<Option<Identity>> {
        let entries = self.entries();
        entries.get(&id).filter(|(read, _)| read.elapsed() < self.ttl).map(|(_, identity)| identity.clone())
    }

    /// Remembers what was read of user `id` now.
    pub fn put(&self, id: i64, identity: Option<Identity>) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(id, (Instant::now(), identity));
    }

    /// Forgets user `id`: its next request reads it again (after a change made here).
    pub fn forget(&self, id: i64) {
        self.entries().remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: i64) -> Identity {
        Identity {
            id,
            email: format!("u{id}@x"),
            role: Role::Viewer,
            bank_partner_id: None,
            retail_partner_id: None,
            disabled: false,
            scopes: None,
            token_generation: 1,
            live_secrets: Vec::new(),
            newest_secret: 0,
        }
    }

    #[test]
    fn identities_are_trusted_for_the_ttl_and_forgotten_on_demand() {
        let cache = IdentityCache::new(Duration::from_millis(50));
        assert!(cache.get(1).is_none());
        cache.put(1, Some(identity(1)));
        cache.put(2, None);
        assert_eq!(cache.get(1).flatten().map(|i| i.id), Some(1));
        assert!(matches!(cache.get(2), Some(None)), "a missing user is remembered as missing");
        cache.forget(1);
        assert!(cache.get(1).is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(2).is_none(), "stale after the ttl");
    }
}
