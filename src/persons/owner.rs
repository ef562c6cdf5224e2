//! What a business shows of its owner: the person's name and sealed fields, and their copies
//! on the person's businesses.
//!
//! Each business keeps a copy of its owner's name and of their sealed NIK, phone and e-mail
//! (the same ciphertexts as the person's row, opened with the same keys and associated data):
//! a business is read, listed and exported from its own row, without reading `persons`. The
//! person's row is the truth. Every write of a person's fields writes the copies of all their
//! businesses in the same transaction, with the person and those businesses locked
//! (`crate::businesses::follow_owner`); a new business or a business moving to another owner
//! copies its owner's row as it writes; a key rotation copies what it sealed again.

use diesel::prelude::*;
use serde::Serialize;

use super::model::{EMAIL, NIK, PHONE, PersonRow};
use crate::crypto::keyring::Keyring;
use crate::db::DbConnection;
use crate::db::schema::{businesses, persons};
use crate::error::{AppError, AppResult};

/// A person's name and sealed fields: what a business copies of its owner.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = persons)]
pub struct OwnerRow {
    id: i64,
    name: String,
    nik: String,
    phone: String,
    email: Option<String>,
}

/// The copy columns of a business, set to an owner's values (for an insert or an update).
pub type OwnerCopy<'a> = (
    diesel::dsl::Eq<businesses::person_name, &'a str>,
    diesel::dsl::Eq<businesses::person_nik, &'a str>,
    diesel::dsl::Eq<businesses::person_phone, &'a str>,
    diesel::dsl::Eq<businesses::person_email, Option<&'a str>>,
);

impl OwnerRow {
    /// What a business copies of `person`, as stored.
    pub fn of(person: &PersonRow) -> OwnerRow {
        OwnerRow {
            id: person.id,
            name: person.name.clone(),
            nik: person.nik.clone(),
            phone: person.phone.clone(),
            email: person.email.clone(),
        }
    }

    /// A person's name and sealed fields as just written.
    pub(super) fn new(id: i64, name: String, nik: String, phone: String, email: Option<String>) -> OwnerRow {
        OwnerRow { id, name, nik, phone, email }
    }

    /// The person's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The name and the sealed NIK, phone and e-mail, as stored.
    pub fn stored(&self) -> (&str, &str, &str, Option<&str>) {
        (&self.name, &self.nik, &self.phone, self.email.as_deref())
    }

    /// The business columns that copy this owner.
    pub fn copy(&self) -> OwnerCopy<'_> {
        (
            businesses::person_name.eq(self.name.as_str()),
            businesses::person_nik.eq(self.nik.as_str()),
            businesses::person_phone.eq(self.phone.as_str()),
            businesses::person_email.eq(self.email.as_deref()),
        )
    }

    /// Owner `id`, as stored.
    pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<OwnerRow> {
        persons::table.find(id).select(OwnerRow::as_select()).first(conn)
    }
}

/// A person's identifying fields, opened: what a business shows of its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The person's id.
    #[serde(skip)]
    pub id: i64,
    /// Name as on the KTP.
    pub name: String,
    /// NIK.
    pub nik: String,
    /// Phone as `+62…`.
    pub phone: String,
    /// E-mail.
    pub email: Option<String>,
}

/// A sealed value that does not open: the key file does not match the database (start-up
/// checks this; a value altered in the database gets here).
pub(super) fn unopenable(e: crate::crypto::keyring::KeyError) -> AppError {
    AppError::internal(e)
}

impl Owner {
    /// Opens `row`'s sealed fields.
    pub fn open(row: &PersonRow, keys: &Keyring) -> AppResult<Owner> {
        Owner::of(row.id, row.name.clone(), &row.nik, &row.phone, row.email.as_deref(), keys)
    }

    /// Opens an owner's sealed fields: a person's, or their copy on a business (person `id`).
    pub fn of(
        id: i64,
        name: String,
        nik: &str,
        phone: &str,
        email: Option<&str>,
        keys: &Keyring,
    ) -> AppResult<Owner> {
        Ok(Owner {
            id,
            name,
            nik: keys.open(NIK, nik).map_err(unopenable)?,
            phone: keys.open(PHONE, phone).map_err(unopenable)?,
            email: email.map(|e| keys.open(EMAIL, e)).transpose().map_err(unopenable)?,
        })
    }
}

/// Whether the owner of business `business` has restricted the processing of their data
/// (`crate::rights::restriction`), read under a share lock of the person on PostgreSQL: a
/// restriction being set waits for the caller's transaction, and one set before is seen.
pub fn owner_restricted(conn: &mut crate::db::DbConnection, business: i64) -> crate::error::AppResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        restricted: bool,
    }
    let sql = format!(
        "SELECT p.restricted_at IS NOT NULL AS restricted FROM businesses b JOIN persons p ON p.id = b.owner_id \
         WHERE b.id = $1{}",
        crate::db::locking(conn, " FOR SHARE OF p")
    );
    let found: Vec<Found> = diesel::RunQueryDsl::load(
        diesel::sql_query(sql).bind::<diesel::sql_types::BigInt, _>(business),
        conn,
    )?;
    Ok(found.first().is_some_and(|f| f.restricted))
}
