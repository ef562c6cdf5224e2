//! The disclosure log (UU 27/2022 Pasal 31 and 32): every answer that carries a person's data
//! unmasked records who received it (the user or API client, and their partner), which persons,
//! which classes of data, the route, the request's id and the time.
//!
//! It fails closed: a handler records before it answers, and an answer whose entry could not
//! be written is not sent (503). The entries of concurrent answers are written together, in one
//! transaction, by one thread of the process (a group commit): each answer waits for its
//! batch, so the log costs a read a share of one write, not a write of its own.
//!
//! Masked answers to office staff (viewers) record nothing; a retail partner's masked answers are
//! recorded, marked `masked`: a masked owner beside their business's name and village is
//! pseudonymised, not anonymous, and the partner is a third party.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{self, Pool};
use crate::error::{AppError, AppResult};

mod store;

pub use store::{Disclosure, Exposure, exposure, of_person, prune, spawn_retention, spawn_upkeep};

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
    /// A person's name and a business's address: what the audit log keeps of them.
    pub const NAME_ADDRESS: Classes = Classes(0b0101);

    /// These classes and `other`'s.
    pub const fn with(self, other: Classes) -> Classes {
        Classes(self.0 | other.0)
    }

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
    preparing: Arc<AtomicUsize>,
}

/// An answer in preparation that may record a disclosure, counted until its entry is queued or
/// it ends ([`Log::preparing`]).
pub struct Preparing(Arc<AtomicUsize>);

impl Drop for Preparing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl Log {
    /// Starts the writer, which writes through `pool` (the primary) until the log is dropped.
    pub fn start(pool: Pool) -> std::io::Result<Log> {
        // A connection of its own: the readers waiting for it may hold every one of the pool.
        let pool = pool.of_one().map_err(std::io::Error::other)?;
        let (queue, waiting) = sync_channel(MAX_WAITING);
        let preparing = Arc::new(AtomicUsize::new(0));
        let counted = preparing.clone();
        std::thread::Builder::new()
            .name("disclosures".into())
            .spawn(move || write_batches(&pool, &waiting, &counted))?;
        Ok(Log { queue, preparing })
    }

    /// Counts an answer whose entry may soon come (`crate::auth::Caller` makes one per request
    /// that may disclose): while such answers are being prepared, the writer waits for their
    /// entries to commit them together, rather than commit each alone.
    pub fn preparing(&self) -> Preparing {
        self.preparing.fetch_add(1, Ordering::AcqRel);
        Preparing(self.preparing.clone())
    }

    /// Writes `entry` (with the entries waiting beside it) and returns once it is written; a
    /// 503 when it could not be (the answer it stands for must not be sent then).
    pub async fn write(&self, entry: Entry, preparing: Option<Preparing>) -> AppResult<()> {
        let written = self.enqueue(entry, preparing)?.await;
        Log::outcome(written.map_err(|_| ()))
    }

    /// [`Log::write`], from a thread that may block.
    pub fn write_blocking(&self, entry: Entry, preparing: Option<Preparing>) -> AppResult<()> {
        let written = self.enqueue(entry, preparing)?.blocking_recv();
        Log::outcome(written.map_err(|_| ()))
    }

    /// Queues `entry`; its answer is no longer `preparing` once it is.
    fn enqueue(&self, entry: Entry, preparing: Option<Preparing>) -> AppResult<Written> {
        let (written, answer) = tokio::sync::oneshot::channel();
        // No longer in preparation before the entry is queued: a writer that sees the count
        // fall to zero finds the entry there, or takes it first in its next batch.
        drop(preparing);
        let queued = self.queue.try_send(Waiting { entry, written });
        match queued {
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
    log: Arc<Log>,
    entry: Entry,
    /// The answer's count among those in preparation, until its first entry is queued.
    preparing: Arc<std::sync::Mutex<Option<Preparing>>>,
    /// While deferring ([`Discloser::defer`]): the entries queued and not yet known written.
    deferred: Arc<std::sync::Mutex<Option<Vec<Written>>>>,
}

impl std::fmt::Debug for Discloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discloser").field("route", &self.entry.route).finish_non_exhaustive()
    }
}

impl Discloser {
    /// What `entry` (its persons aside) says, written through `log`; `preparing` is the
    /// answer's count ([`Log::preparing`]), if it has one.
    pub fn new(log: Arc<Log>, entry: Entry, preparing: Option<Preparing>) -> Discloser {
        let preparing = Arc::new(std::sync::Mutex::new(preparing));
        Discloser { log, entry, preparing, deferred: Arc::default() }
    }

    /// From now on [`Discloser::disclose_blocking`] queues its entry and returns at once;
    /// [`Discloser::settle`] then waits until they are written. For an answer prepared whole
    /// before it is sent (a page), so that its database connection goes back to the pool
    /// without waiting for the log's commit; the answer waits for it, not the connection.
    pub fn defer(&self) {
        if let Ok(mut deferred) = self.deferred.lock() {
            deferred.get_or_insert_with(Vec::new);
        }
    }

    /// Returns once every entry queued since [`Discloser::defer`] is written (a 503 if one
    /// could not be: the answer must not be sent then), and stops deferring.
    pub async fn settle(&self) -> AppResult<()> {
        let queued = self.deferred.lock().ok().and_then(|mut d| d.take()).unwrap_or_default();
        for written in queued {
            Log::outcome(written.await.map_err(|_| ()))?;
        }
        Ok(())
    }

    fn prepared(&self) -> Option<Preparing> {
        self.preparing.lock().ok().and_then(|mut p| p.take())
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
            Some(entry) => self.log.write(entry, self.prepared()).await,
            None => Ok(()),
        }
    }

    /// [`Discloser::disclose`], from a thread that may block (an export's).
    ///
    /// While deferring ([`Discloser::defer`]) it only queues the entry.
    pub fn disclose_blocking(&self, persons: impl IntoIterator<Item = i64>) -> AppResult<()> {
        let Some(entry) = self.entry(persons) else { return Ok(()) };
        let mut deferred = self.deferred.lock().map_err(|_| unrecorded("a deferring answer failed"))?;
        match deferred.as_mut() {
            Some(queued) => {
                queued.push(self.log.enqueue(entry, self.prepared())?);
                Ok(())
            }
            None => {
                drop(deferred);
                self.log.write_blocking(entry, self.prepared())
            }
        }
    }
}

/// The writer: takes an entry, then the entries of the answers still in preparation as they
/// come, until none is left in preparation (or [`MAX_LINGER`] passed, or [`MAX_BATCH`] are
/// taken); writes the batch in one statement, tells each answer, and again. `pool` is its own
/// pool of one connection ([`Pool::of_one`]).
fn write_batches(pool: &Pool, waiting: &Receiver<Waiting>, preparing: &AtomicUsize) {
    let mut held: Option<db::Conn> = None;
    while let Ok(first) = waiting.recv() {
        let batch = gather(first, waiting, preparing);
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

/// The batch that starts with `first`: while other answers that may disclose are in
/// preparation, their entries are taken as they come, so that they share one commit (a commit
/// costs the database about as much as fifteen entries: its WAL flush, the statement's round
/// trip). The wait ends when the last of them queued its entry or ended without one, and at
/// [`MAX_LINGER`] whatever is still in preparation (a long export's chunk, a request held by a
/// lock).
fn gather(first: Waiting, waiting: &Receiver<Waiting>, preparing: &AtomicUsize) -> Vec<Waiting> {
    let deadline = Instant::now() + MAX_LINGER;
    let mut batch = vec![first];
    loop {
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if batch.len() >= MAX_BATCH || preparing.load(Ordering::Acquire) == 0 || now >= deadline {
            return batch;
        }
        // Woken by the next entry; a request that ends without one is noticed within a slice.
        match waiting.recv_timeout((deadline - now).min(SLICE)) {
            Ok(next) => batch.push(next),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return batch,
        }
    }
}

/// The longest the writer holds a batch open for answers in preparation (`bench/ab.py`,
/// PostgreSQL, 16 connections: 2 ms read 5,194-5,425 by id a second, 300 µs 5,059-6,549; the
/// answers held back cost more than the commits saved).
const MAX_LINGER: Duration = Duration::from_micros(300);
/// How often a writer waiting for answers in preparation looks at their count when no entry
/// comes (an answer may end without one: a 404, a masked view).
const SLICE: Duration = Duration::from_micros(200);

/// Writes `entries` on the connection `held` (or a new one from `pool`, the writer's pool of
/// one), which is kept for the next batch when it worked.
fn write_on(held: &mut Option<db::Conn>, pool: &Pool, entries: &[&Entry]) -> Result<(), String> {
    let mut conn = match held.take() {
        Some(conn) => conn,
        None => pool.get().map_err(|e| e.to_string())?,
    };
    if let Err(err) = store::insert(&mut conn, entries) {
        db::discard(&mut conn);
        return Err(err.to_string());
    }
    *held = Some(conn);
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
