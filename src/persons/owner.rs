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
            nik: open(keys, NIK, nik)?,
            phone: open(keys, PHONE, phone)?,
            email: email.map(|e| open(keys, EMAIL, e)).transpose()?,
        })
    }
}

/// What an erased person's sealed fields hold instead of a value (`crate::rights::erasure`):
/// no key opens it, and it opens to nothing.
pub const ERASED_MARKER: &str = "erased";

/// A sealed value of a person (or their copy), opened; empty for an erased person's.
pub fn open(keys: &Keyring, column: &str, sealed: &str) -> AppResult<String> {
    if sealed == ERASED_MARKER {
        return Ok(String::new());
    }
    keys.open(column, sealed).map_err(unopenable)
}

/// Why no new application may name a business's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerHold {
    /// They restricted the processing of their data (`crate::rights::restriction`).
    Restricted,
    /// They were erased (`crate::rights::erasure`): the business has no owner to process.
    Erased,
}

/// Whether the owner of business `business` holds its processing ([`OwnerHold`]), read under
/// a share lock of the person on PostgreSQL: a restriction or an erasure being written waits
/// for the caller's transaction, and one written before is seen.
pub fn owner_hold(conn: &mut crate::db::DbConnection, business: i64) -> AppResult<Option<OwnerHold>> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        restricted: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        erased: bool,
    }
    let sql = format!(
        "SELECT p.restricted_at IS NOT NULL AS restricted, p.erased_at IS NOT NULL AS erased \
         FROM businesses b JOIN persons p ON p.id = b.owner_id WHERE b.id = $1{}",
        crate::db::locking(conn, " FOR SHARE OF p")
    );
    let found: Vec<Found> = diesel::RunQueryDsl::load(
        diesel::sql_query(sql).bind::<diesel::sql_types::BigInt, _>(business),
        conn,
    )?;
    Ok(found.first().and_then(|f| {
        if f.erased { Some(OwnerHold::Erased) } else { f.restricted.then_some(OwnerHold::Restricted) }
    }))
}

/// The ids of the persons who restricted the processing of their data, as a subquery (few: it
/// reads the partial index of them). A retail partner sees none of their businesses, an
/// export masks them (UU 27/2022 Pasal 41).
pub fn restricted() -> Restricted {
    persons::table.filter(persons::restricted_at.is_not_null()).select(persons::id)
}

/// [`restricted`]'s query.
pub type Restricted = diesel::dsl::Select<
    diesel::dsl::Filter<persons::table, diesel::dsl::IsNotNull<persons::restricted_at>>,
    persons::id,
>;

/// Which of the persons `ids` have restricted the processing of their data.
pub fn restricted_among(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<std::collections::HashSet<i64>> {
    let mut found = std::collections::HashSet::new();
    for chunk in ids.chunks(1000) {
        found.extend(restricted().filter(persons::id.eq_any(chunk)).load::<i64>(conn)?);
    }
    Ok(found)
}
