//! What keeps a slow reader of an export from holding the database: an export is read from the
//! database as fast as the database gives it, whatever the client's pace. Its chunks go to the
//! client through a short queue; once the client falls behind, the rest is written to a
//! temporary file (deleted when closed) and sent from there, so the connection goes back to the
//! pool as soon as the last row is read. Sending from the file holds no thread and no connection
//! between reads.
//!
//! Two bounds keep exports from crowding everything else out: at most half the pool's
//! connections read exports at once (the other requests always find the rest), and a caller has
//! at most [`AT_ONCE_PER_EXPORTER`] exports under way (a partner's users and API clients
//! together), so that neither one partner's slow system nor its many requests take what others
//! need; past it, 429.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use actix_web::web;
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult};

/// Exports one caller may have under way at once (being read or being sent).
pub const AT_ONCE_PER_EXPORTER: usize = 4;

/// Chunks queued for the client before the rest of an export goes to a file.
const QUEUED: usize = 4;

/// Bytes read from a spooled export per piece sent.
const PIECE: usize = 64 * 1024;

/// Whom an export counts against: a partner's users and API clients together, anyone else
/// alone. Left in the request's extensions by the `Caller` extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exporter {
    /// The users and clients of a bank partner.
    Bank(i64),
    /// The users and clients of a retail partner.
    Retail(i64),
    /// An office user or a viewer.
    User(i64),
}

impl Exporter {
    /// The exporter of user `id`, of a bank or retail partner when it has one.
    pub fn of(id: i64, bank_partner_id: Option<i64>, retail_partner_id: Option<i64>) -> Exporter {
        match (bank_partner_id, retail_partner_id) {
            (Some(bank), _) => Exporter::Bank(bank),
            (None, Some(retail)) => Exporter::Retail(retail),
            (None, None) => Exporter::User(id),
        }
    }
}

/// The exports of an instance under way: counted per exporter, and the turns at reading the
/// database.
pub struct Exports {
    under_way: Mutex<HashMap<Exporter, usize>>,
    reading: Arc<tokio::sync::Semaphore>,
}

impl Exports {
    /// Exports for a pool of `pool_size` connections: half of them, at least one, read exports.
    pub fn new(pool_size: u32) -> Arc<Exports> {
        let readers = usize::try_from(pool_size / 2).unwrap_or(1).max(1);
        Arc::new(Exports {
            under_way: Mutex::default(),
            reading: Arc::new(tokio::sync::Semaphore::new(readers)),
        })
    }

    /// A place for one more export of `exporter`, held until its last byte is sent or its
    /// client has gone; 429 when it has [`AT_ONCE_PER_EXPORTER`] already.
    pub fn start(self: &Arc<Self>, exporter: Exporter) -> AppResult<Slot> {
        let mut under_way = self.under_way.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = under_way.entry(exporter).or_default();
        if *count >= AT_ONCE_PER_EXPORTER {
            return Err(AppError::TooManyExports { at_once: AT_ONCE_PER_EXPORTER });
        }
        *count += 1;
        Ok(Slot { exports: self.clone(), exporter })
    }

    /// A turn at reading the database for an export, in the order asked.
    pub async fn reading(&self) -> AppResult<tokio::sync::OwnedSemaphorePermit> {
        self.reading.clone().acquire_owned().await.map_err(AppError::internal)
    }

    /// Exports of `exporter` under way now.
    pub fn under_way(&self, exporter: Exporter) -> usize {
        let under_way = self.under_way.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        under_way.get(&exporter).copied().unwrap_or(0)
    }
}

/// An export's place among its exporter's ([`Exports::start`]), given back when dropped.
pub struct Slot {
    exports: Arc<Exports>,
    exporter: Exporter,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut under_way = self.exports.under_way.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = under_way.get_mut(&self.exporter) {
            *count -= 1;
            if *count == 0 {
                under_way.remove(&self.exporter);
            }
        }
    }
}

/// The reading side of an export: [`Spooler::put`] each chunk, then [`Spooler::finish`].
pub struct Spooler {
    queue: mpsc::Sender<web::Bytes>,
    file: Option<std::fs::File>,
    tail: oneshot::Sender<Tail>,
}

/// What is left once the queue is sent: the spooled rest, and the error the export ended with.
struct Tail {
    file: Option<std::fs::File>,
    error: Option<AppError>,
}

/// A spooler and the body that sends what it is given, holding `slot` until the body is done.
pub fn spooler(slot: Slot) -> (Spooler, Body) {
    let (queue, rx) = mpsc::channel(QUEUED);
    let (tail, tail_rx) = oneshot::channel();
    let body = Body { queue: rx, tail: Some(tail_rx), file: None, error: None, _slot: slot };
    (Spooler { queue, file: None, tail }, body)
}

impl Spooler {
    /// Queues `bytes` for the client, or writes them to the file once the client is behind.
    /// False when the client has gone: the export may stop.
    pub fn put(&mut self, bytes: web::Bytes) -> AppResult<bool> {
        if self.queue.is_closed() {
            return Ok(false);
        }
        if let Some(file) = &mut self.file {
            file.write_all(&bytes).map_err(AppError::internal)?;
            return Ok(true);
        }
        match self.queue.try_send(bytes) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Full(bytes)) => {
                let mut file = tempfile::tempfile().map_err(AppError::internal)?;
                file.write_all(&bytes).map_err(AppError::internal)?;
                self.file = Some(file);
                Ok(true)
            }
        }
    }

    /// Ends the export, with `error` when it stopped short: the client gets what was put, then
    /// a broken body instead of a seemingly whole one.
    pub fn finish(self, error: Option<AppError>) {
        let file = self.file.and_then(|mut file| match file.seek(SeekFrom::Start(0)) {
            Ok(_) => Some(file),
            Err(e) => {
                log::error!("an export's spooled rest could not be read back: {e}");
                None
            }
        });
        let _ = self.tail.send(Tail { file, error });
    }
}

/// The answer's body: the queued chunks, then the spooled rest, then the error if any.
pub struct Body {
    queue: mpsc::Receiver<web::Bytes>,
    tail: Option<oneshot::Receiver<Tail>>,
    file: Option<std::fs::File>,
    error: Option<AppError>,
    _slot: Slot,
}

impl Body {
    /// A body that sends `file` from its start (a finished workbook), holding `slot`.
    pub fn of_file(file: std::fs::File, slot: Slot) -> Body {
        let (_, queue) = mpsc::channel(1);
        Body { queue, tail: None, file: Some(file), error: None, _slot: slot }
    }

    /// The body as a stream of pieces.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<web::Bytes, AppError>> {
        futures_util::stream::unfold(self, Body::next)
    }

    async fn next(mut self) -> Option<(Result<web::Bytes, AppError>, Body)> {
        if let Some(bytes) = self.queue.recv().await {
            return Some((Ok(bytes), self));
        }
        if let Some(tail) = self.tail.take() {
            match tail.await {
                Ok(tail) => (self.file, self.error) = (tail.file, tail.error),
                Err(_) => self.error = Some(AppError::internal("an export's reader ended without a word")),
            }
        }
        if let Some(mut file) = self.file.take() {
            let piece = web::block(move || -> std::io::Result<_> {
                let mut buffer = vec![0u8; PIECE];
                let n = file.read(&mut buffer)?;
                buffer.truncate(n);
                Ok((file, buffer))
            })
            .await;
            match piece {
                Ok(Ok((file, buffer))) if !buffer.is_empty() => {
                    self.file = Some(file);
                    return Some((Ok(web::Bytes::from(buffer)), self));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Some((Err(AppError::internal(e)), self)),
                Err(e) => return Some((Err(AppError::internal(e)), self)),
            }
        }
        self.error.take().map(|error| (Err(error), self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partners_users_and_clients_share_their_places_and_give_them_back() {
        let exports = Exports::new(10);
        let bank = |user| Exporter::of(user, Some(7), None);
        let held: Vec<Slot> = [11, 12, 13, 15].map(|user| exports.start(bank(user)).unwrap()).into();
        assert!(matches!(exports.start(bank(14)), Err(AppError::TooManyExports { at_once: 4 })));
        // Another bank, a retailer of the same id and an office user are counted apart.
        for other in
            [Exporter::of(11, Some(8), None), Exporter::of(11, None, Some(7)), Exporter::of(11, None, None)]
        {
            assert_eq!(exports.under_way(other), 0);
            drop(exports.start(other).unwrap());
        }
        assert_eq!(exports.under_way(bank(11)), 4);
        drop(held);
        assert_eq!(exports.under_way(bank(11)), 0);
        assert!(exports.start(bank(14)).is_ok());
    }
}
