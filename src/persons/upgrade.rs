//! Migrations with the data keys: the schema's migrations, with the move of the businesses'
//! plaintext owner columns into sealed persons between the one that makes persons and the one
//! that drops those columns; and the start-up check that the key file is the one that sealed
//! the database's values.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::model::{CONFLICT, EMAIL, NIK, NIK_INDEX, PHONE, same_name};
use crate::crypto::keyring::Keyring;
use crate::db::schema::{data_key_checks, person_conflicts, persons};
use crate::db::{self, Backend, DbConnection};

/// The migration that gives businesses their village's code; the texts are matched after it.
const VILLAGE_CODES_MIGRATION: &str = "20261213000026";

/// The migration that makes persons; the next one drops the businesses' owner columns.
const PERSONS_MIGRATION: &str = "20261208000016";

/// The constant each key's probe seals (or indexes).
const PROBE: &str = "umkm-api data key check";
/// The associated data of a probe.
const PROBE_COLUMN: &str = "data_key_checks.probe";

/// Applies the pending migrations, moving the owners of the businesses into persons on the
/// way (sealed with `keys`); returns how many migrations ran. Businesses that gave one NIK
/// different names, phones or e-mails are listed in the log (and by `umkm-api persons
/// conflicts`).
pub fn migrate(conn: &mut DbConnection, keys: &Keyring) -> Result<usize, String> {
    let mut ran = db::run_migrations_through(conn, PERSONS_MIGRATION).map_err(|e| e.to_string())?;
    let moved =
        db::write(conn, |conn| adopt(conn, keys)).map_err(|e| format!("moving owners into persons: {e}"))?;
    if moved.businesses > 0 {
        log::info!(
            "moved the owners of {} businesses into {} persons; {} values differed among the businesses of one NIK \
             (`umkm-api persons conflicts` lists them)",
            moved.businesses,
            moved.persons,
            moved.conflicts
        );
    }
    let villages_coded = db::migration_applied(conn, VILLAGE_CODES_MIGRATION).map_err(|e| e.to_string())?;
    ran += db::run_migrations(conn).map_err(|e| e.to_string())?;
    if moved.plaintext {
        scrub(conn).map_err(|e| format!("rewriting the tables without their plaintext: {e}"))?;
    }
    verify_keys(conn, keys)?;
    if let Some(changes) =
        crate::regions::tree::load_if_missing(conn).map_err(|e| format!("loading the regions: {e}"))?
    {
        log::info!("loaded {} regions of Kepmendagri 300.2.2-2138/2025", changes.added.len());
    }
    if !villages_coded {
        let matched = db::write(conn, crate::regions::villages::match_texts)
            .map_err(|e| format!("matching the businesses' villages: {e}"))?;
        if matched.matched + matched.unmatched > 0 {
            log::info!(
                "gave {} businesses the code of the village their text names; {} named none of their district \
                 (`umkm-api regions unmatched` lists them)",
                matched.matched,
                matched.unmatched
            );
        }
    }
    Ok(ran)
}

/// What [`adopt`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Businesses given an owner.
    pub businesses: usize,
    /// Persons made.
    pub persons: usize,
    /// Values that differed from their person's.
    pub conflicts: usize,
    /// The owner columns were still there (the next migration drops them, and the pages that
    /// held them are rewritten after).
    pub plaintext: bool,
}

#[derive(QueryableByName)]
struct PlainOwner {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    owner_name: String,
    #[diesel(sql_type = Text)]
    owner_nik: String,
    #[diesel(sql_type = Text)]
    phone: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
}

/// Moves the plaintext owners of the businesses that have no `owner_id` into persons: one per
/// NIK, with the values of its most recently changed business; each other value one of its
/// businesses gave is kept, sealed, in `person_conflicts`. Nothing to do once the owner
/// columns are gone.
fn adopt(conn: &mut DbConnection, keys: &Keyring) -> QueryResult<Moved> {
    let owner_columns: i64 = match db::backend(conn) {
        Backend::Postgres => diesel::select(diesel::dsl::sql::<BigInt>(
            "(SELECT count(*) FROM information_schema.columns WHERE table_name = 'businesses' \
             AND column_name = 'owner_nik' AND table_schema = current_schema())",
        ))
        .get_result(conn)?,
        Backend::Sqlite => diesel::select(diesel::dsl::sql::<BigInt>(
            "(SELECT count(*) FROM pragma_table_info('businesses') WHERE name = 'owner_nik')",
        ))
        .get_result(conn)?,
    };
    if owner_columns == 0 {
        return Ok(Moved::default());
    }
    seal_stored_answers(conn, keys)?;
    // The banks' feed fingerprinted what each bank saw with an unkeyed hash that covered the
    // NIK: forgotten here (the first evaluation after the start fingerprints again, and moves
    // every listed applicant once: the fingerprint's fields changed anyway).
    diesel::sql_query("UPDATE bank_feed SET fingerprint = 'before-persons' WHERE fingerprint <> '-'")
        .execute(conn)?;
    let plain: Vec<PlainOwner> = diesel::sql_query(
        "SELECT id, owner_name, owner_nik, phone, email FROM businesses WHERE owner_id IS NULL \
         ORDER BY owner_nik, updated_at DESC, id DESC",
    )
    .load(conn)?;
    let mut by_nik: BTreeMap<&str, Vec<&PlainOwner>> = BTreeMap::new();
    for owner in &plain {
        by_nik.entry(owner.owner_nik.as_str()).or_default().push(owner);
    }
    let seal = |column: &str, value: &str| {
        keys.seal(column, value).map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))
    };
    let index = |nik: &str| {
        keys.blind_index(NIK_INDEX, nik).map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))
    };
    let now = db::now();
    let mut moved = Moved { businesses: plain.len(), persons: by_nik.len(), conflicts: 0, plaintext: true };
    for (nik, owners) in &by_nik {
        let newest = owners[0];
        let person: i64 = diesel::insert_into(persons::table)
            .values((
                persons::name.eq(&newest.owner_name),
                persons::nik.eq(seal(NIK, nik)?),
                persons::nik_index.eq(index(nik)?),
                persons::phone.eq(seal(PHONE, &newest.phone)?),
                persons::email.eq(newest.email.as_deref().map(|e| seal(EMAIL, e)).transpose()?),
                persons::created_at.eq(now),
                persons::updated_at.eq(now),
                persons::version.eq(1),
            ))
            .returning(persons::id)
            .get_result(conn)?;
        let ids: Vec<i64> = owners.iter().map(|o| o.id).collect();
        for chunk in ids.chunks(500) {
            diesel::update(crate::db::schema::businesses::table)
                .filter(crate::db::schema::businesses::id.eq_any(chunk))
                .set(crate::db::schema::businesses::owner_id.eq(person))
                .execute(conn)?;
        }
        for other in &owners[1..] {
            let differing = [
                ("owner_name", Some(&other.owner_name).filter(|n| !same_name(n, &newest.owner_name))),
                ("phone", Some(&other.phone).filter(|p| **p != newest.phone)),
                ("email", other.email.as_ref().filter(|e| Some(*e) != newest.email.as_ref())),
            ];
            for (field, value) in differing {
                let Some(value) = value else { continue };
                // Ids only: a log is no place for a name or a NIK.
                log::warn!(
                    "business {} gave person {person} another {field}; the person keeps its newest business's \
                     (`umkm-api persons conflicts`, settled by PATCH /api/v1/persons/{person})",
                    other.id
                );
                diesel::insert_into(person_conflicts::table)
                    .values((
                        person_conflicts::person_id.eq(person),
                        person_conflicts::business_id.eq(other.id),
                        person_conflicts::field.eq(field),
                        person_conflicts::value.eq(seal(CONFLICT, value)?),
                        person_conflicts::found_at.eq(now),
                    ))
                    .execute(conn)?;
                moved.conflicts += 1;
            }
        }
    }
    Ok(moved)
}

/// Seals the idempotent answers stored in clear by the release before (a business's answer
/// holds its owner's NIK, phone and e-mail).
fn seal_stored_answers(conn: &mut DbConnection, keys: &Keyring) -> QueryResult<()> {
    use crate::db::schema::idempotency_keys as k;
    let plain: Vec<(i64, String, String, String)> = k::table
        .filter(k::body.not_like("v_.%"))
        .select((k::user_id, k::endpoint, k::idempotency_key, k::body))
        .load(conn)?;
    for (user, endpoint, key, body) in plain {
        let sealed = keys
            .seal(crate::http::idempotency::BODY, &body)
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
        diesel::update(k::table.find((user, &endpoint, &key))).set(k::body.eq(sealed)).execute(conn)?;
    }
    Ok(())
}

/// After the owner columns were dropped, rewrites what still holds their old values: SQLite's
/// free pages and write-ahead log (VACUUM, then a truncating checkpoint); PostgreSQL's table
/// pages (a dropped column's values stay in the rows until they are rewritten; the stored
/// answers and the banks' feed, whose old fingerprints hashed NIKs, are rewritten too).
fn scrub(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Pg(pg) => {
            diesel::sql_query("VACUUM FULL businesses, idempotency_keys, bank_feed").execute(pg)?;
        }
        DbConnection::Sqlite(lite) => {
            diesel::sql_query("VACUUM").execute(lite)?;
            diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(lite)?;
        }
    }
    Ok(())
}

/// Checks that `keys` holds every key that sealed or indexed values of this database, and is
/// that key (its probe opens, or indexes the same); records probes of the active keys the
/// first time they are seen. A missing or wrong key is an error naming the key.
pub fn verify_keys(conn: &mut DbConnection, keys: &Keyring) -> Result<(), String> {
    let db_err = |e: diesel::result::Error| format!("reading the data key checks: {e}");
    let probes: Vec<(String, i32, String)> = data_key_checks::table
        .select((data_key_checks::kind, data_key_checks::key_id, data_key_checks::probe))
        .load(conn)
        .map_err(db_err)?;
    for (kind, id, probe) in &probes {
        let id = u32::try_from(*id).unwrap_or(0);
        let fits = match kind.as_str() {
            "encryption" => {
                if !keys.has_encryption(id) {
                    return Err(format!(
                        "encryption key {id} sealed personal data in this database and DATA_KEY_FILE does not hold it: \
                         restore the key file this database was written with"
                    ));
                }
                keys.open(PROBE_COLUMN, probe).is_ok_and(|p| p == PROBE)
            }
            _ => {
                if !keys.index_ids().contains(&id) {
                    return Err(format!(
                        "index key {id} indexed NIKs in this database and DATA_KEY_FILE does not hold it: \
                         restore the key file this database was written with"
                    ));
                }
                keys.blind_index_with(id, PROBE_COLUMN, PROBE).is_ok_and(|p| p == *probe)
            }
        };
        if !fits {
            return Err(format!(
                "{kind} key {id} of DATA_KEY_FILE is not the key that sealed this database's personal data: \
                 a wrong key file"
            ));
        }
    }
    let known =
        |kind: &str, id: u32| probes.iter().any(|(k, i, _)| k == kind && i64::from(*i) == i64::from(id));
    if !known("encryption", keys.active_encryption()) {
        record_probe(conn, keys, false, keys.active_encryption())?;
    }
    if !known("index", keys.active_index()) {
        record_probe(conn, keys, true, keys.active_index())?;
    }
    Ok(())
}

/// Records the probe of encryption key `id` (`index`: index key `id`) of `keys`, unless one is
/// there: from then on a start without that key is refused.
pub(super) fn record_probe(
    conn: &mut DbConnection,
    keys: &Keyring,
    index: bool,
    id: u32,
) -> Result<(), String> {
    let (kind, probe) = if index {
        ("index", keys.blind_index_with(id, PROBE_COLUMN, PROBE))
    } else {
        ("encryption", keys.seal_with(id, PROBE_COLUMN, PROBE))
    };
    let probe = probe.map_err(|e| e.to_string())?;
    let id = i32::try_from(id).map_err(|_| format!("{kind} key id {id} is too large"))?;
    let insert = diesel::insert_into(data_key_checks::table).values((
        data_key_checks::kind.eq(kind),
        data_key_checks::key_id.eq(id),
        data_key_checks::probe.eq(probe),
    ));
    // Two instances starting at once both insert: the second finds the first's probe.
    match conn {
        DbConnection::Pg(pg) => insert.on_conflict_do_nothing().execute(pg),
        DbConnection::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite),
    }
    .map_err(|e| format!("recording the data key checks: {e}"))?;
    Ok(())
}
