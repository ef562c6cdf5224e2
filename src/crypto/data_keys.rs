//! The data keys a server uses, kept in step with its key file: `umkm-api keys rotate` adds and
//! activates keys in the file while servers run, and each server reads the file again when it
//! changed (looked at no more than once a second, before a request uses the keys).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::keyring::{KeyError, Keyring};

/// How often a server looks at its key file.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What identifies one version of the key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
}

struct Loaded {
    keyring: Arc<Keyring>,
    stamp: Option<Stamp>,
    checked: Instant,
}

/// A server's data keys: the keyring last read from its key file.
pub struct DataKeys {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

impl DataKeys {
    /// Reads the key file at `path` (an error when it cannot be used).
    pub fn load(path: &Path) -> Result<DataKeys, KeyError> {
        let stamp = stamp(path);
        let keyring = Keyring::load(path)?;
        let loaded = Loaded { keyring: Arc::new(keyring), stamp, checked: Instant::now() };
        Ok(DataKeys { path: path.to_owned(), loaded: RwLock::new(loaded) })
    }

    /// The keys now: the file read again first if it changed since it was last read (looked at
    /// once a second at most). A file that cannot be read or parsed keeps the keys last read
    /// (a half-written file during a rotation is never read: it is renamed into place).
    pub fn current(&self) -> Arc<Keyring> {
        {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            if loaded.checked.elapsed() < RELOAD_EVERY {
                return loaded.keyring.clone();
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if loaded.checked.elapsed() >= RELOAD_EVERY {
            loaded.checked = Instant::now();
            let now = stamp(&self.path);
            if now != loaded.stamp {
                match Keyring::load(&self.path) {
                    Ok(keyring) => {
                        log::info!("data keys read again from {}: {keyring:?}", self.path.display());
                        loaded.keyring = Arc::new(keyring);
                        loaded.stamp = now;
                    }
                    Err(e) => log::warn!("data keys kept as they were: {e}"),
                }
            }
        }
        loaded.keyring.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_key_file_is_read_again_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data_keys");
        let mut keyring = Keyring::create(&path).unwrap();
        let keys = DataKeys::load(&path).unwrap();
        assert_eq!(keys.current().encryption_ids(), [1]);
        let added = keyring.add_key(false);
        keyring.replace(&path).unwrap();
        std::thread::sleep(RELOAD_EVERY + Duration::from_millis(50));
        assert_eq!(keys.current().encryption_ids(), [1, added]);
        std::fs::write(&path, "garbage\n").unwrap();
        std::thread::sleep(RELOAD_EVERY + Duration::from_millis(50));
        assert_eq!(keys.current().encryption_ids(), [1, added], "the keys last read stay");
    }
}
