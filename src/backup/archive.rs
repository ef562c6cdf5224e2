//! The backup file: a tar archive of `manifest.json` and the database's own copy
//! (`database.sqlite3`, or `database.pgdump` in pg_dump's custom format), with the copy's
//! SHA-256 in the manifest. SQLite keeps no checksums of its pages, so without this a flipped
//! byte in a record's text would pass `integrity_check`; with it, any change to the copy is
//! found before it is restored. `tar -xf FILE` gives back files that `sqlite3` or `pg_restore`
//! read without umkm-api.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{BackupError, Manifest, Result};
use crate::db::Backend;

const MANIFEST_MEMBER: &str = "manifest.json";

/// The archive member holding the database's copy.
pub(super) fn data_member(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "database.sqlite3",
        Backend::Postgres => "database.pgdump",
    }
}

/// The SHA-256 of a file, in hex.
pub(super) fn sha256(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut HashWriter(&mut hasher))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Creates `path` readable and writable by its owner only: a backup holds personal data.
pub(super) fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Writes the archive `packed`: the manifest first, so that a reader meets it before the data.
pub(super) fn pack(manifest: &Manifest, data: &Path, packed: &Path) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(manifest)?;
        let mut builder = tar::Builder::new(create_private(packed)?);
        let mut header = tar::Header::new_ustar();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(u64::try_from(manifest.created_at.timestamp()).unwrap_or(0));
        builder.append_data(&mut header, MANIFEST_MEMBER, json.as_slice())?;
        let backend = if manifest.backend == "sqlite" { Backend::Sqlite } else { Backend::Postgres };
        builder.append_path_with_name(data, data_member(backend))?;
        builder.into_inner()?.sync_all()
    };
    write().map_err(|e| BackupError::new(format!("cannot write {}: {e}", packed.display())))
}

/// Opens `file` as a backup archive, or says in one line what else it is.
fn open(file: &Path) -> Result<tar::Archive<File>> {
    let mut head = Vec::with_capacity(512);
    let unreadable = |e: std::io::Error| BackupError::new(format!("cannot read {}: {e}", file.display()));
    File::open(file).and_then(|f| f.take(512).read_to_end(&mut head)).map_err(unreadable)?;
    if head.len() == 512 && &head[257..262] == b"ustar" {
        return File::open(file).map(tar::Archive::new).map_err(unreadable);
    }
    let what = if head.starts_with(b"SQLite format 3\0") {
        "is an SQLite database, not an umkm-api backup (make one with `umkm-api backup --out FILE`)"
    } else {
        "is not an umkm-api backup"
    };
    Err(BackupError::new(format!("{} {what}", file.display())))
}

fn damaged(file: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::new(format!("{} is damaged or not an umkm-api backup: {e}", file.display()))
}

/// The backup's manifest, read from the start of the archive alone.
pub(super) fn manifest(file: &Path) -> Result<Manifest> {
    let mut archive = open(file)?;
    let mut entries = archive.entries().map_err(damaged(file))?;
    match entries.next() {
        Some(entry) => read_manifest(entry.map_err(damaged(file))?, file),
        None => Err(BackupError::new(format!("{} is not an umkm-api backup", file.display()))),
    }
}

fn read_manifest(mut entry: tar::Entry<'_, File>, file: &Path) -> Result<Manifest> {
    let member = entry.path().map_err(damaged(file))?.to_string_lossy().into_owned();
    if member != MANIFEST_MEMBER {
        return Err(BackupError::new(format!("{} is not an umkm-api backup", file.display())));
    }
    let mut json = String::new();
    entry.by_ref().take(1 << 20).read_to_string(&mut json).map_err(damaged(file))?;
    Manifest::parse(&json, file)
}

/// Extracts the database's copy into the directory `into`, checking its size and SHA-256
/// against the manifest on the way; returns the manifest and the extracted file.
pub(super) fn unpack(file: &Path, into: &Path) -> Result<(Manifest, PathBuf)> {
    let mut archive = open(file)?;
    let mut entries = archive.entries().map_err(damaged(file))?;
    let manifest = match entries.next() {
        Some(entry) => read_manifest(entry.map_err(damaged(file))?, file)?,
        None => return Err(BackupError::new(format!("{} is not an umkm-api backup", file.display()))),
    };
    let member = data_member(manifest.backend()?);
    let truncated =
        || BackupError::new(format!("{} is truncated: it holds no whole {member}", file.display()));
    let Some(entry) = entries.next() else { return Err(truncated()) };
    let mut entry = entry.map_err(damaged(file))?;
    if entry.path().map_err(damaged(file))?.to_string_lossy() != member {
        return Err(truncated());
    }
    let expected = entry.header().size().map_err(damaged(file))?;
    let path = into.join(member);
    let mut target = create_private(&path)
        .map_err(|e| BackupError::new(format!("cannot write {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut copied = 0u64;
    loop {
        let n = entry.read(&mut buffer).map_err(damaged(file))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        target
            .write_all(&buffer[..n])
            .map_err(|e| BackupError::new(format!("cannot write {}: {e}", path.display())))?;
        copied += n as u64;
    }
    if copied != expected {
        return Err(truncated());
    }
    if hex(&hasher.finalize()) != manifest.sha256 {
        return Err(BackupError::new(format!(
            "{} is damaged: its {member} does not have the SHA-256 its manifest records",
            file.display()
        )));
    }
    target.sync_all().map_err(|e| BackupError::new(format!("cannot write {}: {e}", path.display())))?;
    Ok((manifest, path))
}
