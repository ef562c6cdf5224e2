//! What a backup records of itself: the release and migration that made it and the rows of
//! every table, so that a check and a restore can prove it whole.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BackupError, Result};
use crate::db::{self, Backend};

/// The `format` of every umkm-api backup.
const FORMAT: &str = "umkm-api backup";
/// The newest layout this release writes and reads.
const FORMAT_VERSION: u32 = 1;

/// A backup's record of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `umkm-api backup`.
    pub format: String,
    /// The layout of the backup (1).
    pub format_version: u32,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// When the backup's snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// The umkm-api release that made it.
    pub app_version: String,
    /// The newest migration applied to the database it was taken of.
    pub migration: String,
    /// Rows per table in the snapshot, by table name.
    pub tables: BTreeMap<String, i64>,
    /// The SHA-256 (hex) of the archive's database copy.
    pub sha256: String,
}

impl Manifest {
    /// The manifest of a snapshot just counted.
    pub(super) fn new(backend: Backend, migration: String, tables: BTreeMap<String, i64>) -> Self {
        Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            backend: backend_name(backend).to_owned(),
            created_at: Utc::now(),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            migration,
            tables,
            sha256: String::new(),
        }
    }

    /// The back end the backup was taken of.
    pub fn backend(&self) -> Result<Backend> {
        match self.backend.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            other => Err(BackupError::new(format!("the manifest names an unknown back end {other:?}"))),
        }
    }

    /// Rows in all tables.
    pub fn rows(&self) -> i64 {
        self.tables.values().sum()
    }

    /// Reads the manifest stored in `file`, refusing anything that is not one of ours.
    pub(super) fn parse(json: &str, file: &std::path::Path) -> Result<Self> {
        let foreign = || BackupError::new(format!("{} is not an umkm-api backup", file.display()));
        let value: serde_json::Value = serde_json::from_str(json).map_err(|_| foreign())?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(foreign());
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| {
            BackupError::new(format!("{}: the backup's manifest is damaged ({e})", file.display()))
        })?;
        if manifest.format_version > FORMAT_VERSION {
            return Err(BackupError::new(format!(
                "{} was made by a newer umkm-api ({}, backup format {}): upgrade umkm-api to read it",
                file.display(),
                manifest.app_version,
                manifest.format_version
            )));
        }
        manifest.backend().map_err(|e| BackupError::new(format!("{}: {e}", file.display())))?;
        if let Some(bad) = manifest.tables.keys().find(|t| !plain_name(t)) {
            return Err(BackupError::new(format!(
                "{}: the manifest names a table {bad:?} that no umkm-api database has",
                file.display()
            )));
        }
        Ok(manifest)
    }

    /// Compares the rows found in a backup (or a restored database) with the recorded ones.
    pub(super) fn check_counts(&self, found: &BTreeMap<String, i64>, what: &str) -> Result<()> {
        let mut differences = Vec::new();
        for table in self.tables.keys().chain(found.keys().filter(|t| !self.tables.contains_key(*t))) {
            let recorded = self.tables.get(table);
            let present = found.get(table);
            if recorded != present {
                let show = |n: Option<&i64>| n.map_or_else(|| "no table".to_owned(), |n| format!("{n} rows"));
                differences.push(format!("{table}: {} recorded, {} {what}", show(recorded), show(present)));
            }
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(BackupError::new(format!("the row counts differ: {}", differences.join("; "))))
        }
    }

    /// Refuses a backup made at a migration newer than this release knows: its data may use
    /// columns this release would not keep.
    pub(super) fn check_restorable(&self, backend: Backend) -> Result<()> {
        let versions = db::migration_versions(backend);
        match versions.last() {
            Some(latest) if self.migration.as_str() > latest.as_str() => Err(BackupError::new(format!(
                "the backup was made by a newer umkm-api ({}, migration {}; this release knows up to {latest}): \
                 restore it with that release or a newer one",
                self.app_version, self.migration
            ))),
            _ => Ok(()),
        }
    }
}

/// A table name as our schema spells them: lower-case ASCII, digits and underscores. Names
/// from a manifest are checked against this before they are put into SQL.
pub(super) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}
