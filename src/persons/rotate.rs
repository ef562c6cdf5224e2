//! `umkm-api keys rotate` and `keys retire`: a new data key while the servers serve and write,
//! and an old one removed once nothing needs it.
//!
//! A rotation writes the key file three times apart, each write renamed into place:
//! 1. the new key is added, not yet used, and the servers read the file again (each looks at it
//!    once a second, `crate::crypto::data_keys`): from then on they can open what it seals;
//! 2. it becomes the active key: new values are sealed (or NIKs indexed) with it;
//! 3. every stored value sealed (indexed) with another key is sealed (indexed) again with it,
//!    in batches, each row written only if it still holds the value read (a server's write in
//!    between wins, and the next pass takes the row again), until a pass finds none left.
//!
//! The values' versions do not move: what they say is the same. `keys retire` then removes
//! the old key from the file, once no value needs it, and its start-up probe.

use std::path::Path;
use std::time::Duration;

use diesel::prelude::*;

use super::model::{CONFLICT, EMAIL, NIK, NIK_INDEX, PHONE};
use crate::crypto::data_keys::RELOAD_EVERY;
use crate::crypto::keyring::{KeyError, Keyring};
use crate::db::schema::{businesses, data_key_checks, idempotency_keys, person_conflicts, persons};
use crate::db::{self, DbConnection};
use crate::http::idempotency::BODY;

/// Rows read and written per transaction.
const BATCH: i64 = 500;
/// The most passes a rotation makes before it gives up (a server that never reads the new
/// key file keeps sealing with the old key).
const MAX_PASSES: usize = 20;

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// The new key's id.
    pub key: u32,
    /// Rows whose values were sealed (or indexed) again.
    pub rows: usize,
    /// Passes over the tables.
    pub passes: usize,
}

fn key_error(e: KeyError) -> String {
    e.to_string()
}

fn db_error(e: diesel::result::Error) -> String {
    format!("database error: {e}")
}

/// Rotates the encryption key (`index`: the blind index's key) of the key file at `path` for
/// the database behind `conn`; `settle` is how long the servers get to read each change of the
/// file (more than their look-up interval). `progress` hears the values done so far.
pub fn rotate(
    conn: &mut DbConnection,
    path: &Path,
    index: bool,
    settle: Duration,
    progress: &dyn Fn(usize),
) -> Result<Rotated, String> {
    let _only_one = exclusive(path)?;
    let mut keyring = Keyring::load(path).map_err(key_error)?;
    super::verify_keys(conn, &keyring)?;
    let key = keyring.add_key(index);
    // The new key's probe before anything uses the key: a start without it is refused.
    super::upgrade::record_probe(conn, &keyring, index, key)?;
    keyring.replace(path).map_err(key_error)?;
    std::thread::sleep(settle);
    keyring.activate_key(index, key).map_err(key_error)?;
    keyring.replace(path).map_err(key_error)?;
    std::thread::sleep(settle);
    let mut done = 0;
    for pass in 1..=MAX_PASSES {
        let (changed, left) = if index {
            reindex_pass(conn, &keyring, key, &|n| progress(done + n))?
        } else {
            reseal_pass(conn, &keyring, key, &|n| progress(done + n))?
        };
        done += changed;
        if changed == 0 && left == 0 {
            return Ok(Rotated { key, rows: done, passes: pass });
        }
    }
    Err(format!(
        "values were still sealed with older keys after {MAX_PASSES} passes: does every server read DATA_KEY_FILE?"
    ))
}

/// Holds the key file's lock (a file beside it) until dropped: two rotations (or a rotation and
/// a retirement) at once would each add a key with the same id.
fn exclusive(path: &Path) -> Result<std::fs::File, String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{} cannot be opened: {e}", lock_path.display()))?;
    file.lock().map_err(|e| format!("{} cannot be locked: {e}", lock_path.display()))?;
    Ok(file)
}

/// How long the servers get to read a change of the key file.
pub fn settle_time() -> Duration {
    RELOAD_EVERY * 2 + Duration::from_millis(500)
}

/// Runs `f` over batches of rows in id order: `load(conn, after)` gives the next batch, `f`
/// rewrites one row and says whether it changed it (`Some`) or the row needed no change
/// (`None`, and `Some(false)` when a concurrent write beat it). Returns (changed, left).
fn passes<R>(
    conn: &mut DbConnection,
    load: impl Fn(&mut DbConnection, &str) -> QueryResult<Vec<R>>,
    cursor: impl Fn(&R) -> String,
    rewrite: impl Fn(&mut DbConnection, &R) -> Result<Option<bool>, String>,
    progress: &dyn Fn(usize),
    counts: &mut (usize, usize),
) -> Result<(), String> {
    let mut after = String::new();
    loop {
        let rows = load(conn, &after).map_err(db_error)?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = cursor(last);
        // A batch can meet a server's write in a deadlock (rows locked in another order): the
        // database undoes the batch, and it runs again.
        let mut attempt = 0;
        let outcomes = loop {
            attempt += 1;
            let written = db::write(conn, |conn| {
                rows.iter()
                    .map(|row| rewrite(conn, row))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(WriteError::Key)
            });
            match written {
                Ok(outcomes) => break outcomes,
                Err(e) if attempt < 5 => {
                    log::warn!("a batch of the rotation is retried: {e}");
                    std::thread::sleep(Duration::from_millis(100 * attempt));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        for outcome in outcomes {
            match outcome {
                Some(true) => counts.0 += 1,
                Some(false) => counts.1 += 1,
                None => {}
            }
        }
        progress(counts.0);
    }
}

/// A batch's failure: the database's, or a value that does not open.
#[derive(Debug)]
enum WriteError {
    Db(diesel::result::Error),
    Key(String),
}

impl From<diesel::result::Error> for WriteError {
    fn from(e: diesel::result::Error) -> Self {
        WriteError::Db(e)
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Db(e) => write!(f, "database error: {e}"),
            WriteError::Key(e) => f.write_str(e),
        }
    }
}

/// `sealed` sealed again with key `key`, when another key (or the first format, `v1`) sealed it.
fn resealed(keys: &Keyring, key: u32, column: &str, sealed: &str) -> Result<Option<String>, String> {
    // An erased person's marker holds nothing to seal again.
    if Keyring::is_current(sealed, key) || sealed == super::ERASED_MARKER {
        return Ok(None);
    }
    let plain = keys.open(column, sealed).map_err(key_error)?;
    keys.seal_with(key, column, &plain).map(Some).map_err(key_error)
}

type PersonSealed = (i64, String, String, Option<String>);

/// One pass sealing every person's, conflict's and stored answer's value with `key`.
fn reseal_pass(
    conn: &mut DbConnection,
    keys: &Keyring,
    key: u32,
    progress: &dyn Fn(usize),
) -> Result<(usize, usize), String> {
    let mut counts = (0, 0);
    passes(
        conn,
        |conn, after| {
            let after: i64 = after.parse().unwrap_or(0);
            persons::table
                .filter(persons::id.gt(after))
                .order(persons::id)
                .limit(BATCH)
                .select((persons::id, persons::nik, persons::phone, persons::email))
                .load::<PersonSealed>(conn)
        },
        |row| row.0.to_string(),
        |conn, (id, nik, phone, email)| {
            let new_nik = resealed(keys, key, NIK, nik)?;
            let new_phone = resealed(keys, key, PHONE, phone)?;
            let new_email = email.as_deref().map(|e| resealed(keys, key, EMAIL, e)).transpose()?.flatten();
            if new_nik.is_none() && new_phone.is_none() && new_email.is_none() {
                return Ok(None);
            }
            let target =
                persons::table.find(id).filter(persons::nik.eq(nik)).filter(persons::phone.eq(phone));
            let values = (
                persons::nik.eq(new_nik.unwrap_or_else(|| nik.clone())),
                persons::phone.eq(new_phone.unwrap_or_else(|| phone.clone())),
                persons::email.eq(new_email.or_else(|| email.clone())),
            );
            let written = match email {
                Some(e) => diesel::update(target.filter(persons::email.eq(e))).set(values).execute(conn),
                None => diesel::update(target.filter(persons::email.is_null())).set(values).execute(conn),
            }
            .map_err(db_error)?;
            if written == 1 {
                // Their businesses' copies, under the person's lock the update holds (persons,
                // then businesses, as every writer of the copies).
                let person = super::OwnerRow::find(conn, *id).map_err(db_error)?;
                diesel::update(businesses::table.filter(businesses::owner_id.eq(id)))
                    .set(person.copy())
                    .execute(conn)
                    .map_err(db_error)?;
            }
            Ok(Some(written == 1))
        },
        progress,
        &mut counts,
    )?;
    passes(
        conn,
        |conn, after| {
            let after: i64 = after.parse().unwrap_or(0);
            person_conflicts::table
                .filter(person_conflicts::id.gt(after))
                .order(person_conflicts::id)
                .limit(BATCH)
                .select((person_conflicts::id, person_conflicts::value))
                .load::<(i64, String)>(conn)
        },
        |row| row.0.to_string(),
        |conn, (id, value)| {
            let Some(new) = resealed(keys, key, CONFLICT, value)? else { return Ok(None) };
            let target = person_conflicts::table.find(id).filter(person_conflicts::value.eq(value));
            let written = diesel::update(target)
                .set(person_conflicts::value.eq(new))
                .execute(conn)
                .map_err(db_error)?;
            Ok(Some(written == 1))
        },
        progress,
        &mut counts,
    )?;
    // Stored answers: few (a day's), keyed by user, endpoint and key; one batch each pass.
    let stored: Vec<(i64, String, String, String)> = idempotency_keys::table
        .filter(idempotency_keys::body.like("v_.%"))
        .filter(idempotency_keys::body.not_like(format!("v2.{key}.%")))
        .select((
            idempotency_keys::user_id,
            idempotency_keys::endpoint,
            idempotency_keys::idempotency_key,
            idempotency_keys::body,
        ))
        .load(conn)
        .map_err(db_error)?;
    for (user, endpoint, idempotency_key, body) in stored {
        let Some(new) = resealed(keys, key, BODY, &body)? else { continue };
        let target = idempotency_keys::table
            .find((user, &endpoint, &idempotency_key))
            .filter(idempotency_keys::body.eq(&body));
        let written =
            diesel::update(target).set(idempotency_keys::body.eq(new)).execute(conn).map_err(db_error)?;
        if written == 1 {
            counts.0 += 1;
        }
    }
    Ok(counts)
}

/// One pass indexing every person's NIK with index key `key`.
fn reindex_pass(
    conn: &mut DbConnection,
    keys: &Keyring,
    key: u32,
    progress: &dyn Fn(usize),
) -> Result<(usize, usize), String> {
    let mut counts = (0, 0);
    let prefix = format!("{key}.");
    passes(
        conn,
        |conn, after| {
            let after: i64 = after.parse().unwrap_or(0);
            persons::table
                .filter(persons::id.gt(after))
                .order(persons::id)
                .limit(BATCH)
                .select((persons::id, persons::nik, persons::nik_index))
                .load::<(i64, String, String)>(conn)
        },
        |row| row.0.to_string(),
        |conn, (id, nik, index)| {
            if index.starts_with(&prefix) || nik == super::ERASED_MARKER {
                return Ok(None);
            }
            let plain = keys.open(NIK, nik).map_err(key_error)?;
            let new = keys.blind_index_with(key, NIK_INDEX, &plain).map_err(key_error)?;
            let target = persons::table.find(id).filter(persons::nik_index.eq(index));
            let written =
                diesel::update(target).set(persons::nik_index.eq(new)).execute(conn).map_err(db_error)?;
            Ok(Some(written == 1))
        },
        progress,
        &mut counts,
    )?;
    Ok(counts)
}

/// The values that still need encryption key `key` (`index`: index key `key`).
pub fn still_needing(conn: &mut DbConnection, index: bool, key: u32) -> Result<i64, String> {
    let count = |conn: &mut DbConnection, sql: String| -> Result<i64, String> {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&sql)).get_result(conn).map_err(db_error)
    };
    if index {
        return count(conn, format!("(SELECT count(*) FROM persons WHERE nik_index LIKE '{key}.%')"));
    }
    // Either format (`v1` or `v2`) under the key.
    let sealed = format!("'v_.{key}.%'");
    count(
        conn,
        format!(
            "(SELECT count(*) FROM persons WHERE nik LIKE {sealed} OR phone LIKE {sealed} OR email LIKE {sealed}) \
             + (SELECT count(*) FROM businesses WHERE person_nik LIKE {sealed} OR person_phone LIKE {sealed} \
                OR person_email LIKE {sealed}) \
             + (SELECT count(*) FROM person_conflicts WHERE value LIKE {sealed}) \
             + (SELECT count(*) FROM idempotency_keys WHERE body LIKE {sealed})"
        ),
    )
}

/// Removes encryption key `key` (`index`: index key `key`) from the key file at `path`, once no
/// value of the database needs it; its probe goes first (a start without the key is then fine).
pub fn retire(conn: &mut DbConnection, path: &Path, index: bool, key: u32) -> Result<(), String> {
    let _only_one = exclusive(path)?;
    let mut keyring = Keyring::load(path).map_err(key_error)?;
    let left = still_needing(conn, index, key)?;
    let kind = if index { "index" } else { "encryption" };
    if left > 0 {
        return Err(format!(
            "{left} values still need {kind} key {key}: `umkm-api keys rotate{}` first",
            if index { " --index" } else { "" }
        ));
    }
    if index { keyring.remove_index(key) } else { keyring.remove_encryption(key) }.map_err(key_error)?;
    let id = i32::try_from(key).map_err(|_| format!("no {kind} key {key}"))?;
    diesel::delete(data_key_checks::table.find((kind, id))).execute(conn).map_err(db_error)?;
    keyring.replace(path).map_err(key_error)
}
