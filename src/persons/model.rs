//! What a person is: the stored row, its identifying fields sealed (`crate::crypto::keyring`),
//! the API's view of it, and the one way a business's owner becomes a person ([`resolve`]) and
//! a person is corrected ([`update`]), each with its audit entry in the same transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::audit::{self, Action};
use crate::crypto::keyring::Keyring;
use crate::db::schema::{businesses, person_conflicts, persons};
use crate::db::{self, DbConnection};
use crate::domain::codes::{Email, Nik, Phone};
use crate::domain::masking;
use crate::error::{AppError, AppResult, OnConflict};
use crate::http::etag::IfMatch;
use crate::http::input::{Check, Field};
use crate::http::patch::require_object;

use super::owner::{Owner, OwnerRow, unopenable};

/// The associated data of each sealed column: a value copied into another column does not open.
pub const NIK: &str = "persons.nik";
/// See [`NIK`].
pub const PHONE: &str = "persons.phone";
/// See [`NIK`].
pub const EMAIL: &str = "persons.email";
/// See [`NIK`].
pub const CONFLICT: &str = "person_conflicts.value";
/// The blind index's domain: a NIK.
pub const NIK_INDEX: &str = "nik";

/// The answer to a change of an erased person: nothing of theirs is held to change.
pub const ERASED_PERSON: &str = "the person was erased: no data of theirs is held to change";

/// A person's fields redacted in the audit log.
pub const PII: [&str; 3] = ["nik", "phone", "email"];

/// A person as stored: NIK, phone and e-mail sealed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = persons)]
pub struct PersonRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) nik: String,
    pub(crate) phone: String,
    pub(crate) email: Option<String>,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
    pub(crate) version: i32,
    pub(crate) restricted_at: Option<NaiveDateTime>,
    pub(crate) erased_at: Option<NaiveDateTime>,
}

/// A business's owner as a client sent it, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerRecord {
    /// `owner_name`.
    pub owner_name: String,
    /// `owner_nik`, 16 digits.
    pub owner_nik: String,
    /// `phone`, as `+62…`.
    pub phone: String,
    /// `email`.
    pub email: Option<String>,
    /// Whether the client sent `email` (a value or `null`): a create that leaves it out keeps
    /// the known person's e-mail, a `null` clears it.
    #[serde(skip)]
    pub email_given: bool,
}

/// Names compare as a person would: case and runs of spaces aside.
pub(super) fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    norm(a) == norm(b)
}

/// Finds a person by NIK (under any index key); `None` when the NIK is nobody's.
pub fn find_by_nik(conn: &mut DbConnection, keys: &Keyring, nik: &str) -> AppResult<Option<PersonRow>> {
    let indexes = keys.blind_indexes(NIK_INDEX, nik).map_err(AppError::internal)?;
    Ok(persons::table
        .filter(persons::nik_index.eq_any(indexes))
        .select(PersonRow::as_select())
        .first(conn)
        .optional()?)
}

/// Finds a person.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<PersonRow> {
    persons::table.find(id).select(PersonRow::as_select()).first(conn)
}

/// The person a business's owner is: the one with `owner.owner_nik`, created when the NIK is
/// new. A known NIK with another name is a 409 naming the person (only office staff write
/// businesses, and they see NIKs); a new phone or e-mail of a known person replaces theirs
/// (an audited change of the person, which every one of their businesses shows), as the
/// newest contact the office was given. The person is locked until the transaction ends.
/// Returns the person, whether they changed (then their businesses follow: the caller moves
/// their versions and copies, `crate::businesses`, locking them in id order after the person).
pub fn resolve(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    owner: &OwnerRecord,
) -> AppResult<Resolved> {
    // A correction of the person's NIK can commit between the look-up and the lock: look up
    // again then (twice is plenty: each retry follows a committed correction).
    // With one index key (no re-keying under way) a NIK's index is unique: insert first, and
    // look up only when the NIK is known (a new owner costs one statement less). While an index
    // re-keying runs, a known NIK may be indexed under the old key only: look up first.
    if keys.index_ids().len() == 1
        && let Some(copy) = insert(conn, keys, user_id, owner)?
    {
        return Ok(Resolved { id: copy.id(), changed: false, new: true, copy });
    }
    for _ in 0..3 {
        let found = match find_by_nik(conn, keys, &owner.owner_nik)? {
            Some(person) => Some(person),
            None => match insert(conn, keys, user_id, owner)? {
                Some(copy) => return Ok(Resolved { id: copy.id(), changed: false, new: true, copy }),
                // A concurrent request registered the NIK between the look-up and the insert.
                None => find_by_nik(conn, keys, &owner.owner_nik)?,
            },
        };
        if let Some(person) = found
            && let Some(resolved) = follow(conn, keys, user_id, person.id, owner)?
        {
            return Ok(resolved);
        }
    }
    Err(AppError::Conflict("the owner_nik changed hands while this request ran; retry".into()))
}

/// The person an owner resolved to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Their id.
    pub id: i64,
    /// Whether a known person's contact changed (their businesses follow).
    pub changed: bool,
    /// Whether they were made now (no consent of theirs can exist yet).
    pub new: bool,
    /// What their businesses copy of them, as stored now.
    pub copy: OwnerRow,
}

/// Locks a person for a change of theirs (PostgreSQL; `NO KEY`: a business referring to them
/// may still be inserted meanwhile).
fn lock(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    if let DbConnection::Pg(pg) = conn {
        persons::table.find(id).select(persons::id).for_no_key_update().execute(pg)?;
    }
    Ok(())
}

/// Locks person `id` for a change of what they consented to (the lock [`resolve`] takes for a
/// new business of theirs, so that it shows their consents as they are); 404 when there is no
/// such person, 409 when they were erased (read under the lock: an erasure holds it).
pub fn lock_existing(conn: &mut DbConnection, id: i64) -> AppResult<()> {
    let erased = persons::table.find(id).select(persons::erased_at);
    let found: Option<Option<NaiveDateTime>> = match conn {
        DbConnection::Pg(pg) => erased.for_no_key_update().first(pg).optional()?,
        DbConnection::Sqlite(_) => erased.first(conn).optional()?,
    };
    match found {
        None => Err(AppError::NotFound),
        Some(Some(_)) => Err(AppError::Conflict(ERASED_PERSON.into())),
        Some(None) => Ok(()),
    }
}

/// `owner` given for person `id`, locked and read again: the same name, and a new contact
/// taken; `None` when the person no longer has that NIK (corrected meanwhile).
fn follow(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    id: i64,
    owner: &OwnerRecord,
) -> AppResult<Option<Resolved>> {
    lock(conn, id)?;
    let person = find(conn, id)?;
    let current = Owner::open(&person, keys)?;
    if current.nik != owner.owner_nik {
        return Ok(None);
    }
    if !same_name(&person.name, &owner.owner_name) {
        // Their name is not told here (the answer would disclose it unrecorded): reading the
        // person shows it, and records it.
        return Err(AppError::Conflict(format!(
            "the owner_nik is person {}'s, whose name is not \"{}\": read them at /api/v1/persons/{} and correct the person or the owner_name",
            person.id, owner.owner_name, person.id
        )));
    }
    let email = if owner.email_given { owner.email.clone() } else { current.email.clone() };
    if current.phone == owner.phone && current.email == email {
        return Ok(Some(Resolved { id: person.id, changed: false, new: false, copy: OwnerRow::of(&person) }));
    }
    let changes = PersonChanges {
        name: None,
        nik: None,
        phone: (current.phone != owner.phone).then(|| owner.phone.clone()),
        email: (current.email != email).then_some(email),
    };
    let changed = write_changes(conn, keys, user_id, &person, &current, &changes, &[])?;
    let copy = OwnerRow::find(conn, person.id)?;
    Ok(Some(Resolved { id: person.id, changed, new: false, copy }))
}

/// Inserts a new person for `owner`, with its audit entry: what its businesses copy, or `None`
/// when the NIK's index is taken (a known NIK, or a concurrent transaction's that committed).
fn insert(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    owner: &OwnerRecord,
) -> AppResult<Option<OwnerRow>> {
    let now = db::now();
    let seal = |column, value: &str| keys.seal(column, value).map_err(AppError::internal);
    let (nik, phone) = (seal(NIK, &owner.owner_nik)?, seal(PHONE, &owner.phone)?);
    let email = owner.email.as_deref().map(|e| seal(EMAIL, e)).transpose()?;
    let values = (
        persons::name.eq(&owner.owner_name),
        persons::nik.eq(&nik),
        persons::nik_index.eq(keys.blind_index(NIK_INDEX, &owner.owner_nik).map_err(AppError::internal)?),
        persons::phone.eq(&phone),
        persons::email.eq(&email),
        persons::created_at.eq(now),
        persons::updated_at.eq(now),
        persons::version.eq(1),
    );
    let id: Option<i64> = match conn {
        DbConnection::Pg(pg) => diesel::insert_into(persons::table)
            .values(values)
            .on_conflict(persons::nik_index)
            .do_nothing()
            .returning(persons::id)
            .get_result(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => diesel::insert_into(persons::table)
            .values(values)
            .on_conflict(persons::nik_index)
            .do_nothing()
            .returning(persons::id)
            .get_result(lite)
            .optional()?,
    };
    let Some(id) = id else { return Ok(None) };
    let snapshot =
        json!({"name": owner.owner_name, "nik": owner.owner_nik, "phone": owner.phone, "email": owner.email});
    audit::record(conn, user_id, Action::Create, "person", id, &audit::snapshot(&snapshot, &PII))?;
    Ok(Some(OwnerRow::new(id, owner.owner_name.clone(), nik, phone, email)))
}

/// The fields a person's correction changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
struct PersonChanges {
    name: Option<String>,
    nik: Option<String>,
    phone: Option<String>,
    email: Option<Option<String>>,
}

/// Writes `changes` of `person` (whose fields opened are `current`) if it still has the
/// version read, with its audit entry; whether anything changed (then the person's businesses
/// follow: the caller moves their versions and recomputes their banks' feed). A NIK another
/// person has is a 409. `settled`: the conflict fields a correction settles (a settlement alone
/// is a change too: versioned and audited).
fn write_changes(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    person: &PersonRow,
    current: &Owner,
    changes: &PersonChanges,
    settled: &[&str],
) -> AppResult<bool> {
    let seal = |column, value: &str| keys.seal(column, value).map_err(AppError::internal);
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    let nik = match &changes.nik {
        Some(nik) if *nik != current.nik => {
            if let Some(other) = find_by_nik(conn, keys, nik)?
                && other.id != person.id
            {
                return Err(AppError::Conflict(format!("the nik is person {}'s", other.id)));
            }
            before.insert("nik".into(), json!(current.nik));
            after.insert("nik".into(), json!(nik));
            Some((seal(NIK, nik)?, keys.blind_index(NIK_INDEX, nik).map_err(AppError::internal)?))
        }
        _ => None,
    };
    let name = changes.name.as_ref().filter(|n| **n != current.name);
    if let Some(name) = name {
        before.insert("name".into(), json!(current.name));
        after.insert("name".into(), json!(name));
    }
    let phone = changes.phone.as_ref().filter(|p| **p != current.phone);
    if let Some(phone) = phone {
        before.insert("phone".into(), json!(current.phone));
        after.insert("phone".into(), json!(phone));
    }
    let email = changes.email.as_ref().filter(|e| **e != current.email);
    if let Some(email) = email {
        before.insert("email".into(), json!(current.email));
        after.insert("email".into(), json!(email));
    }
    let settled: Vec<String> = if settled.is_empty() {
        Vec::new()
    } else {
        diesel::delete(
            person_conflicts::table
                .filter(person_conflicts::person_id.eq(person.id))
                .filter(person_conflicts::field.eq_any(settled)),
        )
        .returning(person_conflicts::field)
        .get_results(conn)?
    };
    if after.is_empty() && settled.is_empty() {
        return Ok(false);
    }
    let email = email.map(|e| e.as_deref().map(|e| seal(EMAIL, e)).transpose()).transpose()?;
    let nik_changed = nik.is_some();
    let values = (
        // The name is always set: a settlement alone still writes (version, `updated_at`).
        persons::name.eq(name.cloned().unwrap_or_else(|| person.name.clone())),
        nik.as_ref().map(|(sealed, _)| persons::nik.eq(sealed.clone())),
        nik.as_ref().map(|(_, index)| persons::nik_index.eq(index.clone())),
        nik_changed.then_some(persons::nik_version.eq(persons::nik_version + 1)),
        phone.map(|p| seal(PHONE, p)).transpose()?.map(|p| persons::phone.eq(p)),
        email.map(|e| persons::email.eq(e)),
    );
    // A concurrent correction to the same NIK: the unique index refuses the second.
    crate::versioned_update!(conn, persons, person.id, person.version, values)
        .on_conflict("the nik is another person's")?;
    let mut changes = audit::diff(&Value::Object(before), &Value::Object(after), &PII);
    if !settled.is_empty() {
        changes["settled"] = json!(settled);
    }
    audit::record(conn, user_id, Action::Update, "person", person.id, &changes)?;
    Ok(true)
}

/// Erases `person` (locked by the caller, at the version read): name `[erased]`, the sealed
/// NIK, phone and e-mail replaced by [`super::ERASED_MARKER`] (their ciphertexts gone), the NIK's
/// blind index by `erased.{id}` (no NIK hashes to it: a search by the NIK finds nobody), and
/// the conflicts other businesses gave for them deleted. Their businesses follow
/// (`crate::businesses::follow_owner`). Returns when.
pub fn erase(conn: &mut DbConnection, person: &PersonRow) -> AppResult<NaiveDateTime> {
    let now = db::now();
    let values = (
        persons::name.eq(audit::ERASED),
        persons::nik.eq(super::ERASED_MARKER),
        persons::nik_index.eq(format!("{}.{}", super::ERASED_MARKER, person.id)),
        persons::nik_version.eq(persons::nik_version + 1),
        persons::phone.eq(super::ERASED_MARKER),
        persons::email.eq(None::<String>),
        persons::erased_at.eq(Some(now)),
    );
    crate::versioned_update!(conn, persons, person.id, person.version, values)?;
    diesel::delete(person_conflicts::table.filter(person_conflicts::person_id.eq(person.id)))
        .execute(conn)?;
    audit::erase_fields(conn, "person", &[person.id], &["name", "nik", "phone", "email"])?;
    Ok(now)
}

/// A correction of a person (JSON merge patch): any of the four fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonPatch {
    /// Name as on the KTP, 1–200 characters. Sending it settles the person's name conflicts.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 200, example = "Sri Wahyuni")]
    pub name: Field<String>,
    /// NIK, 16 digits; another person's NIK is a 409.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "3524055203900002")]
    pub nik: Field<String>,
    /// Indonesian phone number; stored as `+62…`. Sending it settles the phone conflicts.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "0812-3456-789")]
    pub phone: Field<String>,
    /// E-mail, or `null`. Sending it settles the e-mail conflicts.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 254, example = "srikripik@example.com")]
    pub email: Field<String>,
}

/// Applies a correction to person `id` if it still has the version `if_match` names (or any,
/// without it): every field checked at once, one 422 naming them all. Returns the person and
/// whether it changed (then its businesses follow: see [`resolve`]).
pub fn update(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: &Value,
) -> AppResult<(PersonRow, bool)> {
    require_object(patch)?;
    let mut check = Check::default();
    // An unknown member is one bad field among the others, not the end of the checks.
    let mut known = patch.as_object().cloned().unwrap_or_default();
    known.retain(|field, _| {
        let ok = ["name", "nik", "phone", "email"].contains(&field.as_str());
        if !ok {
            check.fail(field, "unknown_field", "is not a field of this resource");
        }
        ok
    });
    let patch: PersonPatch = serde_json::from_value(Value::Object(known)).map_err(AppError::internal)?;
    let person = find(conn, id)?;
    if_match.check(person.version)?;
    if person.erased_at.is_some() {
        return Err(AppError::Conflict(ERASED_PERSON.into()));
    }
    let current = Owner::open(&person, keys)?;
    let mut settled = Vec::new();
    let name = match patch.name {
        Field::Absent => None,
        name => {
            settled.push("owner_name");
            check.text("name", name, 200)
        }
    };
    let nik = match patch.nik {
        Field::Absent => None,
        nik => {
            let nik = check.required("nik", nik);
            check.parse("nik", nik, |v| Nik::parse(&v)).map(|n| n.as_str().to_owned())
        }
    };
    let phone = match patch.phone {
        Field::Absent => None,
        phone => {
            settled.push("phone");
            let phone = check.required("phone", phone);
            check.parse("phone", phone, |v| Phone::parse(&v)).map(|p| p.as_str().to_owned())
        }
    };
    let email = match patch.email {
        Field::Absent => None,
        email => {
            settled.push("email");
            let email = check.optional_text("email", email, 254);
            Some(check.parse("email", email, |v| Email::parse(&v)).map(|e| e.into_string()))
        }
    };
    check.finish(|| Some(()))?;
    let changes = PersonChanges { name, nik, phone, email };
    let changed = write_changes(conn, keys, user_id, &person, &current, &changes, &settled)?;
    Ok((find(conn, id)?, changed))
}

/// A difference the move of the businesses' owners into persons found: another business of
/// the person gave this value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conflict {
    /// The business that gave it.
    #[schema(example = 1204)]
    pub business_id: i64,
    /// `owner_name`, `phone` or `email`.
    #[schema(example = "owner_name")]
    pub field: String,
    /// The value it gave.
    #[schema(example = "Budi Santoso")]
    pub value: String,
}

/// The conflicts of the persons `ids` (sealed values opened), by person.
pub fn conflicts_of(
    conn: &mut DbConnection,
    keys: &Keyring,
    ids: Option<&[i64]>,
) -> AppResult<Vec<(i64, Conflict)>> {
    let mut query = person_conflicts::table
        .select((
            person_conflicts::person_id,
            person_conflicts::business_id,
            person_conflicts::field,
            person_conflicts::value,
        ))
        .order((person_conflicts::person_id, person_conflicts::id))
        .into_boxed();
    if let Some(ids) = ids {
        query = query.filter(person_conflicts::person_id.eq_any(ids.to_vec()));
    }
    let rows: Vec<(i64, i64, String, String)> = query.load(conn)?;
    rows.into_iter()
        .map(|(person, business_id, field, value)| {
            let value = keys.open(CONFLICT, &value).map_err(unopenable)?;
            Ok((person, Conflict { business_id, field, value }))
        })
        .collect()
}

/// A person as the API shows it: masked for viewers as a business's owner fields are.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = PersonView)]
pub struct Person {
    /// Id.
    #[schema(example = 17)]
    pub id: i64,
    /// Name as on the KTP; masked (`S*** W***`) for viewers.
    #[schema(example = "Sri Wahyuni")]
    pub name: String,
    /// NIK; masked (`3524********0002`) for viewers.
    #[schema(example = "3524055203900002")]
    pub nik: String,
    /// Phone as `+62…`; masked for viewers.
    #[schema(example = "+628123456789")]
    pub phone: String,
    /// E-mail; masked for viewers.
    #[schema(example = "srikripik@example.com")]
    pub email: Option<String>,
    /// The businesses the person owns.
    #[schema(example = json!([1204, 1311]))]
    pub business_ids: Vec<i64>,
    /// What other businesses of the person said differently when owners became persons, for an
    /// officer to settle (a correction that sends the field settles it); office staff only,
    /// empty for viewers.
    pub conflicts: Vec<Conflict>,
    /// Created.
    #[schema(example = "2026-12-08T09:30:00Z")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[schema(example = "2026-12-08T09:30:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    #[schema(example = 1)]
    pub version: i32,
    /// The district the NIK's first six digits name, where the person first registered (office
    /// staff only), when the regions' tree knows it (a retired code too); `null` otherwise.
    pub nik_district: Option<crate::regions::Region>,
    /// Since when the processing of their data is restricted (UU 27/2022 Pasal 41): no bank
    /// sees them meanwhile. Null when it is not.
    pub restricted_at: Option<DateTime<Utc>>,
    /// When the person was erased (UU 27/2022 Pasal 43): every personal value is gone, the
    /// name reads `[erased]`, NIK and phone are empty. Null for everyone else.
    pub erased_at: Option<DateTime<Utc>>,
}

impl Person {
    /// The view of `row`, in full for office staff (`full`), else masked.
    pub fn of(conn: &mut DbConnection, keys: &Keyring, row: &PersonRow, full: bool) -> AppResult<Person> {
        let owner = Owner::open(row, keys)?;
        let business_ids: Vec<i64> = businesses::table
            .filter(businesses::owner_id.eq(row.id))
            .order(businesses::id)
            .select(businesses::id)
            .load(conn)?;
        let conflicts = if full {
            conflicts_of(conn, keys, Some(&[row.id]))?.into_iter().map(|(_, c)| c).collect()
        } else {
            Vec::new()
        };
        let nik_district = match owner.nik.get(..6) {
            Some(six) if full => crate::regions::district_of_nik(conn, six)?,
            _ => None,
        };
        let mask = |value: String, f: fn(&str) -> String| if full { value } else { f(&value) };
        Ok(Person {
            nik_district,
            id: row.id,
            name: mask(owner.name, masking::name),
            nik: mask(owner.nik, masking::nik),
            phone: mask(owner.phone, masking::phone),
            email: owner.email.map(|e| mask(e, masking::email)),
            business_ids,
            conflicts,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            version: row.version,
            restricted_at: row.restricted_at.map(|t| t.and_utc()),
            erased_at: row.erased_at.map(|t| t.and_utc()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_or_extra_spaces() {
        assert!(same_name("Sri  Wahyuni", "sri wahyuni "));
        assert!(!same_name("Yusuf Firmansyah", "Budi Santoso"));
    }
}
