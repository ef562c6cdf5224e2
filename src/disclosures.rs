//! The disclosure log (UU 27/2022 Pasal 31 and 32): every answer that carries a person's data
//! unmasked records who received it (the user or API client, and their partner), which persons,
//! which classes of data, the route, the request's id and the time.
//!
//! It fails closed: a handler records before it answers, and an answer whose entry could not
//! be written is not sent (503). The entries of concurrent answers are written together, in one
//! transaction, by one thread of the process (a group commit): each answer waits for its
//! batch, so the log costs a read a share of one write, not a write of its own.
//!
//! Masked answers record nothing: what a viewer or a retail user gets does not identify.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::{disclosed_persons, disclosures};
use crate::db::{self, DbConnection, Pool};
use crate::error::{AppError, AppResult};

/// The most entries written in one transaction.
const MAX_BATCH: usize = 512;
/// The most entries waiting for the writer; past it an answer is refused (503) rather than
/// held while the database does not keep up.
const MAX_WAITING: usize = 16_384;

/// A class of personal data an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// The owner's name, NIK, NPWP.
    Identity,
    /// Phone, e-mail.
    Contact,
    /// Address.
    Address,
    /// Applications for financing: amounts, purposes, statuses, decisions.
    Financing,
}

impl DataClass {
    const ALL: [DataClass; 4] =
        [DataClass::Identity, DataClass::Contact, DataClass::Address, DataClass::Financing];

    fn bit(self) -> i32 {
        1 << (self as i32)
    }
}

/// The classes an answer carries, as stored (a set of bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classes(i32);

impl Classes {
    /// A business's owner fields: name, NIK and NPWP, phone and e-mail, address.
    pub const OWNER: Classes = Classes(0b0111);
    /// A person's fields: name and NIK, phone and e-mail.
    pub const PERSON: Classes = Classes(0b0011);
    /// A bank's applicant: name, NIK and NPWP, address, and the financing.
    pub const APPLICANT: Classes = Classes(0b1101);
    /// Applications alone.
    pub const FINANCING: Classes = Classes(0b1000);

    /// The classes, named.
    pub fn named(self) -> Vec<DataClass> {
        DataClass::ALL.into_iter().filter(|c| self.0 & c.bit() != 0).collect()
    }
}

/// One answer's entry, before it is written (`crate::auth::Caller::disclose` makes it).
#[derive(Debug, Clone)]
pub struct Entry {
    /// When.
    pub occurred_at: NaiveDateTime,
    /// The user or API client that receives the answer.
    pub user_id: i64,
    /// Their bank partner.
    pub bank_partner_id: Option<i64>,
    /// Their retail partner.
    pub retail_partner_id: Option<i64>,
    /// `METHOD /route/{pattern}`.
    pub route: String,
    /// The request's id.
    pub request_id: String,
    /// What the answer carries.
    pub classes: Classes,
    /// Whose, once each, in id order.
    pub persons: Vec<i64>,
}

struct Waiting {
    entry: Entry,
    written: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The process's writer of disclosure entries (one thread; see the module's documentation).
pub struct Log {
    queue: SyncSender<Waiting>,
}

impl Log {
    /// Starts the writer, which writes through `pool` (the primary) until the log is dropped.
    pub fn start(pool: Pool) -> std::io::Result<Log> {
        let (queue, waiting) = sync_channel(MAX_WAITING);
        std::thread::Builder::new()
            .name("disclosures".into())
            .spawn(move || write_batches(&pool, &waiting))?;
        Ok(Log { queue })
    }

    /// Writes `entry` (with the entries waiting beside it) and returns once it is written; a
    /// 503 when it could not be (the answer it stands for must not be sent then).
    pub async fn write(&self, entry: Entry) -> AppResult<()> {
        let written = self.enqueue(entry)?.await;
        Log::outcome(written.map_err(|_| ()))
    }

    /// [`Log::write`], from a thread that may block.
    pub fn write_blocking(&self, entry: Entry) -> AppResult<()> {
        let written = self.enqueue(entry)?.blocking_recv();
        Log::outcome(written.map_err(|_| ()))
    }

    fn enqueue(&self, entry: Entry) -> AppResult<Written> {
        let (written, answer) = tokio::sync::oneshot::channel();
        match self.queue.try_send(Waiting { entry, written }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(unrecorded("too many entries waiting")),
            Err(TrySendError::Disconnected(_)) => Err(unrecorded("the writer stopped")),
        }
    }

    fn outcome(written: Result<Result<(), String>, ()>) -> AppResult<()> {
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(unrecorded(&why)),
            Err(()) => Err(unrecorded("the writer stopped")),
        }
    }
}

/// What an entry's writing came to, once written.
type Written = tokio::sync::oneshot::Receiver<Result<(), String>>;

fn unrecorded(why: &str) -> AppError {
    log::error!("an answer was withheld: its disclosure could not be recorded: {why}");
    AppError::Unavailable("the disclosure log could not record this answer".into())
}

/// Records what answers to one request disclose to its caller (`crate::auth::Caller::discloser`
/// makes it): a page at a time for a list, a chunk at a time for an export.
#[derive(Clone)]
pub struct Discloser {
    log: std::sync::Arc<Log>,
    entry: Entry,
}

impl Discloser {
    /// What `entry` (its persons aside) says, written through `log`.
    pub fn new(log: std::sync::Arc<Log>, entry: Entry) -> Discloser {
        Discloser { log, entry }
    }

    fn entry(&self, persons: impl IntoIterator<Item = i64>) -> Option<Entry> {
        let mut persons: Vec<i64> = persons.into_iter().collect();
        persons.sort_unstable();
        persons.dedup();
        (!persons.is_empty()).then(|| Entry { occurred_at: db::now(), persons, ..self.entry.clone() })
    }

    /// Records that `persons` are disclosed, once it is written (nothing for none).
    pub async fn disclose(&self, persons: impl IntoIterator<Item = i64>) -> AppResult<()> {
        match self.entry(persons) {
            Some(entry) => self.log.write(entry).await,
            None => Ok(()),
        }
    }

    /// [`Discloser::disclose`], from a thread that may block (an export's).
    pub fn disclose_blocking(&self, persons: impl IntoIterator<Item = i64>) -> AppResult<()> {
        match self.entry(persons) {
            Some(entry) => self.log.write_blocking(entry),
            None => Ok(()),
        }
    }
}

/// The writer: takes what waits (up to [`MAX_BATCH`]), writes it in one transaction, tells each
/// answer, and again. It keeps a connection of its own: the readers waiting for it may hold
/// every other connection of the pool.
fn write_batches(pool: &Pool, waiting: &Receiver<Waiting>) {
    let mut held: Option<db::Conn> = None;
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let entries: Vec<&Entry> = batch.iter().map(|w| &w.entry).collect();
        let reused = held.is_some();
        let mut written = write_on(&mut held, pool, &entries);
        if written.is_err() && reused {
            // The connection held may have died while idle (the database restarted): once more
            // on a fresh one. A commit lost with its connection may then be written twice: an
            // entry too many, never one too few.
            written = write_on(&mut held, pool, &entries);
        }
        for w in batch {
            // An answer no longer waited for (its client left) needs no word.
            let _ = w.written.send(written.clone());
        }
    }
}

/// Writes `entries` in one transaction on the connection `held` (or a new one from `pool`),
/// which is kept for the next batch when it worked.
fn write_on(held: &mut Option<db::Conn>, pool: &Pool, entries: &[&Entry]) -> Result<(), String> {
    let mut conn = match held.take() {
        Some(conn) => conn,
        None => pool.get().map_err(|e| e.to_string())?,
    };
    if let Err(err) = db::write(&mut conn, |conn| insert(conn, entries)) {
        db::discard(&mut conn);
        return Err(err.to_string());
    }
    *held = Some(conn);
    Ok(())
}

fn insert(conn: &mut DbConnection, entries: &[&Entry]) -> QueryResult<()> {
    let persons = |e: &Entry| e.persons.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    match conn {
        DbConnection::Pg(pg) => {
            // The whole batch in one statement of fixed text, its values as arrays: a multi-row
            // VALUES list is parsed and planned anew for every batch, row by row, which cost
            // the writer's backend more than the rows themselves.
            use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};
            diesel::sql_query(
                "WITH d AS (INSERT INTO disclosures (occurred_at, user_id, bank_partner_id, retail_partner_id, route, \
                 request_id, classes, persons) SELECT * FROM unnest($1::timestamp[], $2::bigint[], $3::bigint[], \
                 $4::bigint[], $5::text[], $6::text[], $7::int[], $8::text[]) RETURNING id, persons) \
                 INSERT INTO disclosed_persons (person_id, disclosure_id) \
                 SELECT p::bigint, d.id FROM d, unnest(string_to_array(d.persons, ',')) AS p",
            )
            .bind::<Array<Timestamp>, _>(entries.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(entries.iter().map(|e| e.user_id).collect::<Vec<_>>())
            .bind::<Array<Nullable<BigInt>>, _>(entries.iter().map(|e| e.bank_partner_id).collect::<Vec<_>>())
            .bind::<Array<Nullable<BigInt>>, _>(entries.iter().map(|e| e.retail_partner_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(entries.iter().map(|e| e.route.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(entries.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(entries.iter().map(|e| e.classes.0).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(entries.iter().map(|e| persons(e)).collect::<Vec<_>>())
            .execute(pg)?;
        }
        DbConnection::Sqlite(_) => {
            // In process, row by row: each statement prepared once.
            for e in entries {
                let id: i64 = diesel::insert_into(disclosures::table)
                    .values((
                        disclosures::occurred_at.eq(e.occurred_at),
                        disclosures::user_id.eq(Some(e.user_id)),
                        disclosures::bank_partner_id.eq(e.bank_partner_id),
                        disclosures::retail_partner_id.eq(e.retail_partner_id),
                        disclosures::route.eq(e.route.as_str()),
                        disclosures::request_id.eq(e.request_id.as_str()),
                        disclosures::classes.eq(e.classes.0),
                        disclosures::persons.eq(persons(e)),
                    ))
                    .returning(disclosures::id)
                    .get_result(conn)?;
                for person in &e.persons {
                    diesel::insert_into(disclosed_persons::table)
                        .values((
                            disclosed_persons::person_id.eq(*person),
                            disclosed_persons::disclosure_id.eq(id),
                        ))
                        .execute(conn)?;
                }
            }
        }
    }
    Ok(())
}

/// One disclosure of a person, as their trail shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Disclosure {
    /// The entry's id; entries are numbered in the order they were written.
    pub id: i64,
    /// When the answer was given.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// The user or API client that received it.
    pub user_id: Option<i64>,
    /// Their bank partner, for a bank's user or client.
    pub bank_partner_id: Option<i64>,
    /// Their retail partner, for a retail partner's user or client.
    pub retail_partner_id: Option<i64>,
    /// The route that answered, e.g. `GET /api/v1/businesses/{id}`.
    #[schema(example = "GET /api/v1/businesses/{id}")]
    pub route: String,
    /// The request's id (its `X-Request-Id`).
    #[schema(example = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f")]
    pub request_id: String,
    /// What the answer carried of the person.
    pub classes: Vec<DataClass>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = disclosures)]
struct DisclosureRow {
    id: i64,
    occurred_at: NaiveDateTime,
    user_id: Option<i64>,
    bank_partner_id: Option<i64>,
    retail_partner_id: Option<i64>,
    route: String,
    request_id: String,
    classes: i32,
}

impl From<DisclosureRow> for Disclosure {
    fn from(row: DisclosureRow) -> Disclosure {
        Disclosure {
            id: row.id,
            occurred_at: row.occurred_at.and_utc(),
            user_id: row.user_id,
            bank_partner_id: row.bank_partner_id,
            retail_partner_id: row.retail_partner_id,
            route: row.route,
            request_id: row.request_id,
            classes: Classes(row.classes).named(),
        }
    }
}

/// Person `person`'s disclosures, newest first, from before entry `before` (all when `None`),
/// at most `limit`.
pub fn of_person(
    conn: &mut DbConnection,
    person: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Disclosure>> {
    let ids = disclosed_persons::table
        .filter(disclosed_persons::person_id.eq(person))
        .filter(disclosed_persons::disclosure_id.lt(before.unwrap_or(i64::MAX)))
        .order(disclosed_persons::disclosure_id.desc())
        .limit(limit)
        .select(disclosed_persons::disclosure_id);
    let rows = disclosures::table
        .filter(disclosures::id.eq_any(ids))
        .order(disclosures::id.desc())
        .select(DisclosureRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Disclosure::from).collect())
}

/// Entries removed per transaction by [`prune`].
const PRUNE_BATCH: i64 = 1_000;

/// Removes the entries older than `before` (with their persons' rows), a batch per
/// transaction; how many.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    let mut removed = 0;
    loop {
        let old: Vec<(i64, String)> = disclosures::table
            .filter(disclosures::occurred_at.lt(before))
            .order(disclosures::occurred_at)
            .limit(PRUNE_BATCH)
            .select((disclosures::id, disclosures::persons))
            .load(conn)?;
        if old.is_empty() {
            return Ok(removed);
        }
        db::write(conn, |conn| {
            for (id, persons) in &old {
                // Each person's row found by its key: the rows of one person lie together.
                let persons: Vec<i64> = persons.split(',').filter_map(|p| p.parse().ok()).collect();
                diesel::delete(
                    disclosed_persons::table
                        .filter(disclosed_persons::disclosure_id.eq(id))
                        .filter(disclosed_persons::person_id.eq_any(persons)),
                )
                .execute(conn)?;
            }
            let ids: Vec<i64> = old.iter().map(|(id, _)| *id).collect();
            diesel::delete(disclosures::table.filter(disclosures::id.eq_any(ids))).execute(conn)
        })?;
        removed += old.len();
    }
}

/// Starts the thread that removes, every day, the entries older than `retention_days`.
pub fn spawn_retention(pool: Pool, retention_days: u32) -> std::io::Result<()> {
    std::thread::Builder::new().name("disclosure-retention".into()).spawn(move || {
        loop {
            let before = db::now() - chrono::Duration::days(i64::from(retention_days));
            match pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut c| prune(&mut c, before).map_err(|e| e.to_string()))
            {
                Ok(0) => {}
                Ok(n) => log::info!("disclosure log: {n} entries older than {retention_days} days removed"),
                Err(err) => {
                    log::warn!("disclosure log: old entries not removed, the next run retries: {err}")
                }
            }
            std::thread::sleep(std::time::Duration::from_secs(24 * 3600));
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_name_their_bits_in_order() {
        use DataClass::*;
        assert_eq!(Classes::OWNER.named(), vec![Identity, Contact, Address]);
        assert_eq!(Classes::PERSON.named(), vec![Identity, Contact]);
        assert_eq!(Classes::APPLICANT.named(), vec![Identity, Address, Financing]);
        assert_eq!(Classes::FINANCING.named(), vec![Financing]);
        assert_eq!(Classes(0).named(), vec![]);
    }
}
