//! SQLite: the archive's copy is written by `VACUUM INTO`.
//!
//! `VACUUM INTO` copies the database as one read transaction sees it: in WAL mode the server's
//! writers go on meanwhile, and the copy holds exactly the transactions committed before it
//! began. SQLite's online backup API was the other candidate; it restarts whenever another
//! connection writes, so under steady writes it may never finish.

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, RunQueryDsl, SqliteConnection};

use super::{BackupError, Manifest, Progress, Restored, Result, Unit};
use super::{archive, tables};
use crate::db::{Backend, DbConnection};

/// Opens an SQLite file read-write without creating it, waiting for locks like the server does.
fn open(path: &Path) -> Result<SqliteConnection> {
    open_uri(path, "rw")
}

/// Opens an SQLite file that must not be changed.
fn open_read_only(path: &Path) -> Result<SqliteConnection> {
    open_uri(path, "ro")
}

fn open_uri(path: &Path, mode: &str) -> Result<SqliteConnection> {
    let text =
        path.to_str().ok_or_else(|| BackupError::new(format!("{} is not a UTF-8 path", path.display())))?;
    // A URI filename, so that the mode applies; `%`, `?` and `#` would end or escape the path.
    let escaped = text.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
    let mut conn = SqliteConnection::establish(&format!("file:{escaped}?mode={mode}"))
        .map_err(|e| BackupError::new(format!("cannot open {}: {e}", path.display())))?;
    conn.batch_execute("PRAGMA busy_timeout = 5000;")
        .map_err(|e| BackupError::new(format!("cannot open {}: {e}", path.display())))?;
    Ok(conn)
}

#[derive(diesel::QueryableByName)]
struct Size {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

#[derive(diesel::QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

pub(super) fn backup(database: &Path, out: &Path, progress: &dyn Fn(Progress)) -> Result<Manifest> {
    if !database.is_file() {
        return Err(BackupError::new(format!("there is no SQLite database at {}", database.display())));
    }
    let mut source = open(database)?;
    let total = diesel::sql_query(
        "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()",
    )
    .get_result::<Size>(&mut source)
    .map_err(|e| BackupError::new(format!("cannot read {}: {e}", database.display())))?
    .bytes
    .max(0) as u64;

    let staging = super::staging_beside(out)?;
    let copy = staging.path().join(archive::data_member(Backend::Sqlite));
    let target = copy
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| BackupError::new(format!("{} is not a UTF-8 path", staging.path().display())))?;
    // The copy runs on its own thread while this one reports its growing size.
    let copying = std::thread::spawn(move || {
        diesel::sql_query("VACUUM INTO ?").bind::<Text, _>(target).execute(&mut source).map(drop)
    });
    while !copying.is_finished() {
        let done = std::fs::metadata(&copy).map_or(0, |m| m.len());
        progress(Progress { done: done.min(total), total, unit: Unit::Bytes });
        std::thread::sleep(Duration::from_millis(100));
    }
    copying
        .join()
        .map_err(|_| BackupError::new("the copy stopped unexpectedly"))?
        .map_err(|e| BackupError::new(format!("cannot copy {}: {e}", database.display())))?;
    progress(Progress { done: total, total, unit: Unit::Bytes });

    // The copy is the snapshot: what it holds is what the manifest counts.
    let mut manifest = {
        let mut conn = DbConnection::Sqlite(open_read_only(&copy)?);
        let names = tables::list(&mut conn)?;
        Manifest::new(Backend::Sqlite, tables::migration(&mut conn)?, tables::count(&mut conn, &names)?)
    };
    manifest.sha256 = archive::sha256(&copy)
        .map_err(|e| BackupError::new(format!("cannot read {}: {e}", copy.display())))?;
    let packed = staging.path().join("umkm.backup");
    archive::pack(&manifest, &copy, &packed)?;
    super::publish(&packed, out)?;
    Ok(manifest)
}

/// Checks an extracted copy against its manifest: SQLite's own integrity check, the rows of
/// every table, the migration.
fn check(copy: &Path, manifest: &Manifest, file: &Path) -> Result<()> {
    let damaged = |e: diesel::result::Error| BackupError::new(format!("{} is damaged: {e}", file.display()));
    let mut conn = DbConnection::Sqlite(open_read_only(copy)?);
    let problems = diesel::sql_query("PRAGMA integrity_check").load::<Check>(&mut conn).map_err(damaged)?;
    if let Some(problem) = problems.iter().map(|c| c.integrity_check.as_str()).find(|c| *c != "ok") {
        // SQLite's report may span lines ("*** in database main ***\n…"): one line for the operator.
        let problem = problem.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(BackupError::new(format!("{} is damaged: {problem}", file.display())));
    }
    let names = tables::list(&mut conn).map_err(|e| BackupError::new(format!("{}: {e}", file.display())))?;
    manifest.check_counts(&tables::count(&mut conn, &names)?, "in the backup")?;
    let migration = tables::migration(&mut conn)?;
    if migration != manifest.migration {
        return Err(BackupError::new(format!(
            "{}: the manifest records migration {}, the backup holds {migration}",
            file.display(),
            manifest.migration
        )));
    }
    Ok(())
}

pub(super) fn verify(file: &Path) -> Result<Manifest> {
    let scratch = tempfile::tempdir()
        .map_err(|e| BackupError::new(format!("cannot make a temporary directory: {e}")))?;
    let (manifest, copy) = archive::unpack(file, scratch.path())?;
    check(&copy, &manifest, file)?;
    Ok(manifest)
}

pub(super) fn restore(target: &Path, migrate: &super::Migrate, from: &Path, force: bool) -> Result<Restored> {
    archive::manifest(from)?.check_restorable(Backend::Sqlite)?;
    if target.exists() && !force {
        let occupied = open(target).and_then(|c| tables::holding_data(&mut DbConnection::Sqlite(c)));
        match occupied {
            Ok(None) => {}
            Ok(Some(table)) => {
                return Err(BackupError::new(format!(
                    "{} already holds data (table {table}); a restore goes into an empty database: \
                     move the file away, or pass --force to replace it",
                    target.display()
                )));
            }
            Err(e) => {
                return Err(BackupError::new(format!(
                    "{} is not a database this release can read ({e}); pass --force to replace it",
                    target.display()
                )));
            }
        }
    }

    // Everything happens to a copy beside the target, which replaces it only when complete.
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackupError::new(format!("cannot create {}: {e}", dir.display())))?;
    }
    let staging = super::staging_beside(target)?;
    let (manifest, copy) = archive::unpack(from, staging.path())?;
    check(&copy, &manifest, from)?;
    let mut conn = DbConnection::Sqlite(open(&copy)?);
    let migrations_applied = migrate(&mut conn)
        .map_err(|e| BackupError::new(format!("the migrations after the restore failed: {e}")))?;
    drop(conn);
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(|e| BackupError::new(format!("cannot write {}: {e}", copy.display())))?;

    // An old write-ahead log must not outlive its database: SQLite would replay it into the
    // restored one.
    for suffix in ["-wal", "-shm"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(BackupError::new(format!("cannot remove {}: {e}", Path::new(&side).display())));
            }
        }
    }
    // The restored file keeps the permissions of the one it replaces (else it stays 0600).
    if let Ok(old) = std::fs::metadata(target) {
        std::fs::set_permissions(&copy, old.permissions())
            .map_err(|e| BackupError::new(format!("cannot write {}: {e}", copy.display())))?;
    }
    std::fs::rename(&copy, target)
        .and_then(|()| super::sync_parent(target))
        .map_err(|e| BackupError::new(format!("cannot write {}: {e}", target.display())))?;
    Ok(Restored { manifest, migrations_applied })
}
