//! Backups an office can trust: an online, consistent copy of the database taken while the
//! server keeps serving and writing, a check of a copy, and a restore into an empty database
//! followed by any newer migrations, so that a backup made by an older release restores into
//! a newer one.
//!
//! A backup is one tar archive (see [`archive`]): a manifest (release, migration, rows per
//! table, SHA-256 of the copy) and the database's own copy:
//! - **SQLite**: written by `VACUUM INTO` inside one read transaction of the live database
//!   (never a file copy, which a concurrent writer can tear);
//! - **PostgreSQL**: `pg_dump`'s custom format, taken in the snapshot the manifest's row counts
//!   were read in.
//!
//! Files are written in a hidden temporary directory beside their destination and published
//! whole (a no-clobber link for backups, a rename for restored SQLite files), so a run that
//! fails or is killed leaves nothing under the final name.

mod archive;
mod manifest;
mod postgres;
mod sqlite;
mod tables;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use manifest::Manifest;

use crate::db::Backend;

/// Why a backup, check or restore failed: one line for the operator, never a password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackupError(pub String);

impl BackupError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        BackupError(message.into())
    }
}

impl From<diesel::result::Error> for BackupError {
    fn from(e: diesel::result::Error) -> Self {
        BackupError(format!("database error: {e}"))
    }
}

/// The result of the backup functions.
pub type Result<T> = std::result::Result<T, BackupError>;

/// How far a long step has come, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all (an estimate for bytes: free pages are not copied).
    pub total: u64,
    /// What the units count.
    pub unit: Unit,
}

/// What a [`Progress`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of the copy written (SQLite).
    Bytes,
    /// Tables dumped (PostgreSQL).
    Tables,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The backup's manifest: what it held and was checked to hold after the restore.
    pub manifest: Manifest,
    /// Migrations newer than the backup, applied after it.
    pub migrations_applied: usize,
}

/// Backs up the database at `database_url` to `out`, which must not exist yet; returns the
/// manifest (rows per table) that the backup records. The server may keep serving meanwhile.
pub fn backup(database_url: &str, out: &Path, progress: &dyn Fn(Progress)) -> Result<Manifest> {
    if out.symlink_metadata().is_ok() {
        return Err(BackupError::new(format!(
            "{} exists; a backup never overwrites a file: choose another name",
            out.display()
        )));
    }
    match Backend::of_url(database_url) {
        Backend::Sqlite => sqlite::backup(&sqlite_path(database_url), out, progress),
        Backend::Postgres => postgres::backup(database_url, out, progress),
    }
}

/// Checks a backup without restoring it; returns its manifest.
pub fn verify(file: &Path) -> Result<Manifest> {
    match archive::manifest(file)?.backend()? {
        Backend::Sqlite => sqlite::verify(file),
        Backend::Postgres => postgres::verify(file),
    }
}

/// What a restore runs after loading the copy: the migrations newer than the backup, with
/// whatever they need (`crate::persons::migrate` and the data keys); how many ran.
pub type Migrate = dyn Fn(&mut crate::db::DbConnection) -> std::result::Result<usize, String>;

/// Restores `from` into the database at `database_url`, which must hold no data unless `force`
/// (then everything in it is replaced), and applies the migrations newer than the backup.
/// Stop the servers using that database first.
///
/// The restored database is a new deployment (`crate::db::deployment`): tokens issued before,
/// whose user ids may now name other people, are refused.
pub fn restore(database_url: &str, migrate: &Migrate, from: &Path, force: bool) -> Result<Restored> {
    let restored = match (Backend::of_url(database_url), archive::manifest(from)?.backend()?) {
        (Backend::Sqlite, Backend::Sqlite) => {
            sqlite::restore(&sqlite_path(database_url), migrate, from, force)?
        }
        (Backend::Postgres, Backend::Postgres) => postgres::restore(database_url, migrate, from, force)?,
        (Backend::Sqlite, Backend::Postgres) => {
            return Err(BackupError::new(format!(
                "{} is a PostgreSQL backup, and DATABASE_URL names an SQLite database",
                from.display()
            )));
        }
        (Backend::Postgres, Backend::Sqlite) => {
            return Err(BackupError::new(format!(
                "{} is an SQLite backup, and DATABASE_URL names a PostgreSQL database",
                from.display()
            )));
        }
    };
    let renewed = crate::db::pool(database_url, 1)
        .map_err(|e| e.to_string())
        .and_then(|pool| pool.get().map_err(|e| e.to_string()))
        .and_then(|mut conn| crate::db::deployment::renew(&mut conn).map_err(|e| e.to_string()));
    renewed.map_err(|e| {
        BackupError::new(format!("restored, but the new deployment id could not be written: {e}"))
    })?;
    Ok(restored)
}

/// The SQLite file a database URL names.
fn sqlite_path(database_url: &str) -> PathBuf {
    PathBuf::from(database_url.strip_prefix("sqlite://").unwrap_or(database_url))
}

/// A hidden temporary directory beside `destination`, on its file system, so that a file made
/// in it can be published under the destination's name whole. Removed when dropped.
fn staging_beside(destination: &Path) -> Result<tempfile::TempDir> {
    let parent = match destination.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".umkm-backup-")
        .tempdir_in(parent)
        .map_err(|e| BackupError::new(format!("cannot write in {}: {e}", parent.display())))
}

/// Makes the finished file `staged` durable and gives it the name `out`, failing rather than
/// replacing a file that appeared meanwhile.
fn publish(staged: &Path, out: &Path) -> Result<()> {
    let io = |e: std::io::Error| BackupError::new(format!("cannot write {}: {e}", out.display()));
    File::open(staged).and_then(|f| f.sync_all()).map_err(io)?;
    std::fs::hard_link(staged, out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::new(format!(
            "{} appeared while the backup ran; the backup was not written",
            out.display()
        )),
        _ => io(e),
    })?;
    sync_parent(out).map_err(io)
}

/// Makes a new name in a directory durable (a rename or link is a change of the directory).
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => File::open(p)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}
