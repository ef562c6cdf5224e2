//! The keys of personal data at rest (issue 29): authenticated encryption of the values that
//! identify a person (NIK, phone, e-mail), and the keyed blind index through which a NIK is
//! looked up and kept unique.
//!
//! - **Encryption:** AES-256-GCM (RustCrypto's `aes-gcm`, AES-NI and carry-less multiplication
//!   where the processor has them), a random 96-bit nonce per value, under a subkey derived
//!   from the data key for this cipher alone (HMAC-SHA256 of a label); the cipher is set up once
//!   per key. The value's column is the associated data: a value copied into another column
//!   does not decrypt. Stored as text, `v2.<key id>.<base64url(nonce ‖ ciphertext)>`, so that
//!   each value names the key it needs and keys can be rotated value by value. Random 96-bit
//!   nonces stay safe for 2^32 values per key (NIST SP 800-38D): the office seals about a
//!   million (351,000 persons, three values each, and their changes), and a rotation starts
//!   afresh. Values of the first release of persons, `v1.…`, are XChaCha20-Poly1305 under the
//!   key itself (a 192-bit nonce): they still open, and a rotation seals them again as `v2`.
//!   XChaCha costs about five times as much to open a short value (1.3 µs against 0.26 µs for
//!   a NIK, measured on the bench machine), and a page of 50 businesses opens 150 values.
//! - **Blind index:** HMAC-SHA256 under a key of its own, never an unkeyed hash: Lamongan's
//!   possible NIKs number about 2×10^10, which an unkeyed hash would give up to an offline search.
//!   Stored as `<key id>.<hex>`.
//!
//! The keys are to live in a key file outside the database (wired with the persons of issue
//! 29, not yet), so that neither the database, its write-ahead log nor a backup holds them. The
//! file is text, one key a line:
//!
//! ```text
//! # umkm-api data keys: keep them outside the database and its backups
//! encryption 1 <base64 of 32 bytes>
//! encryption 2 <base64 of 32 bytes> active
//! index 1 <base64 of 32 bytes> active
//! ```
//!
//! The `active` key of each kind seals new values; the others still open the values sealed with
//! them until a rotation has re-encrypted those.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use aes_gcm::Aes256Gcm;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadInOut, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Bytes of every key.
const KEY_BYTES: usize = 32;
/// Bytes of a nonce: XChaCha20-Poly1305's (`v1`), AES-256-GCM's (`v2`).
const XNONCE_BYTES: usize = 24;
const NONCE_BYTES: usize = 12;
/// Bytes of an AES-256-GCM tag.
const TAG_BYTES: usize = 16;
/// The prefix of a sealed value: the format's version (`v2` seals, `v1` still opens).
const SEALED: &str = "v2";
const SEALED_V1: &str = "v1";
/// What the AES-256-GCM subkey of a data key is derived with.
const AES_LABEL: &[u8] = b"umkm-api data key: AES-256-GCM, sealed values v2";

/// Why a key file or a sealed value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// One kind of key: by id, and the one that seals (or indexes) new values.
#[derive(Clone, Default)]
struct Keys {
    keys: BTreeMap<u32, [u8; KEY_BYTES]>,
    /// Each key's AES-256-GCM, set up once (encryption keys only).
    ciphers: BTreeMap<u32, Aes256Gcm>,
    active: u32,
}

/// The AES-256-GCM of data key `key`: under its subkey for this cipher.
fn cipher_of(key: &[u8; KEY_BYTES]) -> Aes256Gcm {
    use hmac::{Hmac, KeyInit as _, Mac};
    // HMAC takes a key of any length: `new_from_slice` fails on none.
    let subkey = Hmac::<sha2::Sha256>::new_from_slice(key)
        .map(|mut mac| {
            mac.update(AES_LABEL);
            mac.finalize().into_bytes()
        })
        .unwrap_or_default();
    let subkey: [u8; KEY_BYTES] = subkey.into();
    Aes256Gcm::new(&subkey.into())
}

impl Keys {
    /// Adds key `id`; `false` when there is one with that id already.
    fn insert(&mut self, id: u32, key: [u8; KEY_BYTES]) -> bool {
        if self.keys.contains_key(&id) {
            return false;
        }
        self.ciphers.insert(id, cipher_of(&key));
        self.keys.insert(id, key);
        true
    }

    /// Removes key `id`; `false` when there is none.
    fn remove(&mut self, id: u32) -> bool {
        self.ciphers.remove(&id);
        self.keys.remove(&id).is_some()
    }

    fn get(&self, id: u32) -> Option<&[u8; KEY_BYTES]> {
        self.keys.get(&id)
    }

    /// The active key (a parsed or generated keyring always has it).
    fn active(&self) -> Result<(u32, &[u8; KEY_BYTES]), KeyError> {
        let key =
            self.keys.get(&self.active).ok_or_else(|| KeyError(format!("no active key {}", self.active)))?;
        Ok((self.active, key))
    }

    /// Adds a new key and makes it the active one; its id.
    fn rotate(&mut self) -> u32 {
        let id = self.add();
        self.active = id;
        id
    }

    /// Adds a new key, not active yet; its id.
    fn add(&mut self) -> u32 {
        let id = self.keys.keys().next_back().map_or(1, |last| last + 1);
        self.insert(id, random_key());
        id
    }

    /// Makes key `id` the active one.
    fn activate(&mut self, id: u32) -> Result<(), KeyError> {
        if !self.keys.contains_key(&id) {
            return Err(KeyError(format!("no key {id}")));
        }
        self.active = id;
        Ok(())
    }
}

/// The data keys: encryption keys and blind-index keys, each by id with one active.
#[derive(Clone)]
pub struct Keyring {
    encryption: Keys,
    index: Keys,
}

impl fmt::Debug for Keyring {
    /// Ids only: a key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("encryption", &self.encryption.keys.keys().collect::<Vec<_>>())
            .field("active_encryption", &self.encryption.active)
            .field("index", &self.index.keys.keys().collect::<Vec<_>>())
            .field("active_index", &self.index.active)
            .finish()
    }
}

fn random_key() -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    key
}

impl Keyring {
    /// A new keyring: one encryption key and one index key, both active.
    pub fn generate() -> Keyring {
        let mut keyring = Keyring { encryption: Keys::default(), index: Keys::default() };
        keyring.encryption.rotate();
        keyring.index.rotate();
        keyring
    }

    /// Reads a key file's text (see the module's documentation).
    pub fn parse(text: &str) -> Result<Keyring, KeyError> {
        let mut encryption = Keys::default();
        let mut index = Keys::default();
        let (mut active_encryption, mut active_index) = (None, None);
        for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| KeyError(format!("line {n}: {why}"));
            let words: Vec<&str> = line.split_whitespace().collect();
            let (kind, id, key, active) = match words.as_slice() {
                [kind, id, key] => (*kind, *id, *key, false),
                [kind, id, key, "active"] => (*kind, *id, *key, true),
                _ => return Err(bad("expected `<encryption|index> <id> <base64 key> [active]`")),
            };
            let id: u32 =
                id.parse().ok().filter(|id| *id > 0).ok_or_else(|| bad("the id is not a positive number"))?;
            let key: [u8; KEY_BYTES] = STANDARD
                .decode(key)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| bad("the key is not the base64 of 32 bytes"))?;
            let (keys, active_id) = match kind {
                "encryption" => (&mut encryption, &mut active_encryption),
                "index" => (&mut index, &mut active_index),
                _ => return Err(bad("the kind is neither `encryption` nor `index`")),
            };
            if !keys.insert(id, key) {
                return Err(bad(&format!("a second {kind} key {id}")));
            }
            if active {
                if active_id.is_some() {
                    return Err(bad(&format!("a second active {kind} key")));
                }
                *active_id = Some(id);
            }
        }
        encryption.active = active_encryption.ok_or_else(|| KeyError("no active encryption key".into()))?;
        index.active = active_index.ok_or_else(|| KeyError("no active index key".into()))?;
        Ok(Keyring { encryption, index })
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        let mut text = String::from(
            "# umkm-api data keys (NIK, phone and e-mail at rest): keep this file outside the\n\
             # database and its backups, readable by the server only. Losing it loses the data.\n",
        );
        for (kind, keys) in [("encryption", &self.encryption), ("index", &self.index)] {
            for (id, key) in &keys.keys {
                let active = if *id == keys.active { " active" } else { "" };
                text.push_str(&format!("{kind} {id} {}{active}\n", STANDARD.encode(key)));
            }
        }
        text
    }

    /// Reads the key file at `path`: a missing, unreadable or malformed file is an error that
    /// names it (a lost key file is never replaced by a new one here).
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError(format!("DATA_KEY_FILE {} cannot be read: {e}", path.display())))?;
        Keyring::parse(&text).map_err(|e| KeyError(format!("DATA_KEY_FILE {}: {e}", path.display())))
    }

    /// Writes a new key file at `path`, readable by its owner only; an existing file is an
    /// error (it may hold the only copy of the keys).
    pub fn create(path: &Path) -> Result<Keyring, KeyError> {
        let keyring = Keyring::generate();
        keyring.write_new(path)?;
        Ok(keyring)
    }

    /// Writes this keyring to a new file at `path` (owner-only; an existing file is an error).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        let cannot = |e: std::io::Error| KeyError(format!("{} cannot be written: {e}", path.display()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(cannot)?;
        file.write_all(self.to_text().as_bytes()).map_err(cannot)?;
        file.sync_all().map_err(cannot)
    }

    /// Replaces the key file at `path` with this keyring, atomically (a new file renamed over
    /// it, so that a crash leaves the old or the new file, never half of one).
    pub fn replace(&self, path: &Path) -> Result<(), KeyError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let next = path.with_file_name(format!(".{name}.next"));
        let _ = std::fs::remove_file(&next);
        self.write_new(&next)?;
        std::fs::rename(&next, path)
            .map_err(|e| KeyError(format!("{} cannot be replaced: {e}", path.display())))
    }

    /// The ids of the encryption keys.
    pub fn encryption_ids(&self) -> Vec<u32> {
        self.encryption.keys.keys().copied().collect()
    }

    /// The ids of the index keys.
    pub fn index_ids(&self) -> Vec<u32> {
        self.index.keys.keys().copied().collect()
    }

    /// The blind index of `value` of `column` under every index key, the active one first: a
    /// look-up matches a value indexed under any of them (while an index key is re-keyed).
    pub fn blind_indexes(&self, column: &str, value: &str) -> Result<Vec<String>, KeyError> {
        let mut all = vec![self.blind_index(column, value)?];
        for id in self.index_ids().into_iter().filter(|id| *id != self.index.active) {
            all.push(self.blind_index_with(id, column, value)?);
        }
        Ok(all)
    }

    /// `plain`, sealed for `column` with encryption key `id`.
    pub fn seal_with(&self, id: u32, column: &str, plain: &str) -> Result<String, KeyError> {
        let cipher =
            self.encryption.ciphers.get(&id).ok_or_else(|| KeyError(format!("no encryption key {id}")))?;
        let nonce = aes_gcm::Nonce::generate();
        // Only a message over 64 GiB fails.
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: column.as_bytes() })
            .map_err(|_| KeyError(format!("a value of {column} could not be encrypted")))?;
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED}.{id}.{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Whether `sealed` is in the format this release seals with key `key` (a rotation seals
    /// anything else again).
    pub fn is_current(sealed: &str, key: u32) -> bool {
        sealed.starts_with(SEALED) && Keyring::key_of(sealed) == Some(key)
    }

    /// The id of the key that seals new values.
    pub fn active_encryption(&self) -> u32 {
        self.encryption.active
    }

    /// The id of the key that indexes new values.
    pub fn active_index(&self) -> u32 {
        self.index.active
    }

    /// Whether the keyring holds encryption key `id`.
    pub fn has_encryption(&self, id: u32) -> bool {
        self.encryption.get(id).is_some()
    }

    /// Adds an encryption key and makes it the active one (values sealed before still open);
    /// its id.
    pub fn rotate_encryption(&mut self) -> u32 {
        self.encryption.rotate()
    }

    /// Adds a new encryption key (`index`: an index key) that does not seal (index) anything
    /// yet, so that every server can learn it before it does; its id.
    pub fn add_key(&mut self, index: bool) -> u32 {
        if index { self.index.add() } else { self.encryption.add() }
    }

    /// Makes encryption key `id` (`index`: index key `id`) the one new values use.
    pub fn activate_key(&mut self, index: bool, id: u32) -> Result<(), KeyError> {
        if index { self.index.activate(id) } else { self.encryption.activate(id) }
    }

    /// Adds an index key and makes it the active one; its id. Every stored index must then be
    /// computed again under it before the old one is removed.
    pub fn rotate_index(&mut self) -> u32 {
        self.index.rotate()
    }

    /// Removes encryption key `id` (not the active one), once no value needs it.
    pub fn remove_encryption(&mut self, id: u32) -> Result<(), KeyError> {
        if id == self.encryption.active {
            return Err(KeyError(format!("encryption key {id} is the active one")));
        }
        self.encryption.remove(id).then_some(()).ok_or_else(|| KeyError(format!("no encryption key {id}")))
    }

    /// Removes index key `id` (not the active one), once no index needs it.
    pub fn remove_index(&mut self, id: u32) -> Result<(), KeyError> {
        if id == self.index.active {
            return Err(KeyError(format!("index key {id} is the active one")));
        }
        self.index.remove(id).then_some(()).ok_or_else(|| KeyError(format!("no index key {id}")))
    }

    /// `plain`, sealed for `column` with the active key.
    pub fn seal(&self, column: &str, plain: &str) -> Result<String, KeyError> {
        self.seal_with(self.encryption.active, column, plain)
    }

    /// The id of the key a sealed value needs.
    pub fn key_of(sealed: &str) -> Option<u32> {
        let mut parts = sealed.splitn(3, '.');
        matches!(parts.next(), Some(SEALED | SEALED_V1)).then(|| parts.next()?.parse().ok()).flatten()
    }

    /// Opens a value sealed for `column`: an error when its key is not in the keyring, or when
    /// it was not sealed with that key for that column (a wrong key, a value moved or altered).
    pub fn open(&self, column: &str, sealed: &str) -> Result<String, KeyError> {
        let malformed = || KeyError(format!("a value of {column} is not one this release sealed"));
        let mut parts = sealed.splitn(3, '.');
        let v1 = match parts.next() {
            Some(SEALED) => false,
            Some(SEALED_V1) => true,
            _ => return Err(malformed()),
        };
        let id: u32 = parts.next().and_then(|id| id.parse().ok()).ok_or_else(malformed)?;
        let mut bytes = parts.next().and_then(|b| URL_SAFE_NO_PAD.decode(b).ok()).ok_or_else(malformed)?;
        if bytes.len() < if v1 { XNONCE_BYTES } else { NONCE_BYTES + TAG_BYTES } {
            return Err(malformed());
        }
        let missing = || {
            KeyError(format!(
                "a value of {column} needs encryption key {id}, which DATA_KEY_FILE does not hold"
            ))
        };
        let payload = |msg| Payload { msg, aad: column.as_bytes() };
        let opened = if v1 {
            let key = self.encryption.get(id).ok_or_else(missing)?;
            let (nonce, sealed) = bytes.split_at(XNONCE_BYTES);
            let nonce = XNonce::try_from(nonce).map_err(|_| malformed())?;
            XChaCha20Poly1305::new(key.into()).decrypt(&nonce, payload(sealed))
        } else {
            // Opened where it was decoded (a page of businesses opens 150 values): the nonce
            // and the tag are cut off the buffer, which becomes the text.
            let cipher = self.encryption.ciphers.get(&id).ok_or_else(missing)?;
            let (nonce, rest) = bytes.split_at_mut(NONCE_BYTES);
            let nonce = aes_gcm::Nonce::try_from(&*nonce).map_err(|_| malformed())?;
            let (text, tag) = rest.split_at_mut(rest.len() - TAG_BYTES);
            let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| malformed())?;
            let text_len = text.len();
            cipher.decrypt_inout_detached(&nonce, column.as_bytes(), text.into(), &tag).map(|()| {
                bytes.truncate(NONCE_BYTES + text_len);
                bytes.drain(..NONCE_BYTES);
                bytes
            })
        };
        let plain = opened.map_err(|_| {
            KeyError(format!(
                "a value of {column} does not open with encryption key {id}: a wrong key file, or an altered value"
            ))
        })?;
        String::from_utf8(plain).map_err(|_| malformed())
    }

    /// The blind index of `value` of `column` under the active index key.
    pub fn blind_index(&self, column: &str, value: &str) -> Result<String, KeyError> {
        let (id, key) = self.index.active()?;
        Ok(format!("{id}.{}", index_mac(key, column, value)?))
    }

    /// The blind index of `value` of `column` under index key `id`, if the keyring holds it.
    pub fn blind_index_with(&self, id: u32, column: &str, value: &str) -> Result<String, KeyError> {
        let key = self.index.get(id).ok_or_else(|| KeyError(format!("no index key {id}")))?;
        Ok(format!("{id}.{}", index_mac(key, column, value)?))
    }
}

fn index_mac(key: &[u8; KEY_BYTES], column: &str, value: &str) -> Result<String, KeyError> {
    use hmac::{Hmac, KeyInit as _, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|_| KeyError("an unusable index key".into()))?;
    mac.update(column.as_bytes());
    mac.update(b"\0");
    mac.update(value.as_bytes());
    Ok(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIK: &str = "3524012404970127";

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_column() {
        let keyring = Keyring::generate();
        let sealed = keyring.seal("persons.nik", NIK).unwrap();
        assert!(!sealed.contains(NIK) && sealed.starts_with("v2.1."), "{sealed}");
        assert_ne!(sealed, keyring.seal("persons.nik", NIK).unwrap(), "a fresh nonce each time");
        assert_eq!(keyring.open("persons.nik", &sealed).unwrap(), NIK);
        assert!(keyring.open("persons.phone", &sealed).is_err(), "moved to another column");
        let other = Keyring::generate();
        let refused = other.open("persons.nik", &sealed).unwrap_err().0;
        assert!(refused.contains("wrong key"), "{refused}");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(keyring.open("persons.nik", &String::from_utf8(altered).unwrap()).is_err());
        for bad in ["", "v1", "v1.1", "v1.x.abc", "v2.1.abc", "v1.1.!!", "v3.1.AAAA", NIK] {
            assert!(keyring.open("persons.nik", bad).is_err(), "{bad}");
        }
    }

    /// `plain` sealed as the first release of persons did (`v1`: XChaCha20-Poly1305 under the
    /// key itself).
    fn seal_v1(key: &[u8; KEY_BYTES], column: &str, plain: &str) -> String {
        let nonce = XNonce::generate();
        let sealed = XChaCha20Poly1305::new(key.into())
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: column.as_bytes() })
            .unwrap();
        format!("v1.1.{}", URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
    }

    #[test]
    fn values_of_the_first_format_still_open_and_count_as_due_for_sealing_again() {
        let keyring = Keyring::generate();
        let key = *keyring.encryption.get(1).unwrap();
        let old = seal_v1(&key, "persons.nik", NIK);
        assert_eq!(keyring.open("persons.nik", &old).unwrap(), NIK);
        assert!(keyring.open("persons.phone", &old).is_err(), "its column is still its associated data");
        assert_eq!(Keyring::key_of(&old), Some(1));
        assert!(!Keyring::is_current(&old, 1), "a rotation seals it again");
        let new = keyring.seal("persons.nik", NIK).unwrap();
        assert!(Keyring::is_current(&new, 1));
        // The AES subkey is not the key: a v2 value relabelled v1 opens with neither cipher.
        let relabelled = new.replacen("v2.", "v1.", 1);
        assert!(keyring.open("persons.nik", &relabelled).is_err());
    }

    #[test]
    fn rotation_keeps_old_values_open_until_their_key_is_removed() {
        let mut keyring = Keyring::generate();
        let old = keyring.seal("persons.phone", "+6281234567890").unwrap();
        assert_eq!(keyring.rotate_encryption(), 2);
        let new = keyring.seal("persons.phone", "+6281234567890").unwrap();
        assert_eq!((Keyring::key_of(&old), Keyring::key_of(&new)), (Some(1), Some(2)));
        assert_eq!(keyring.open("persons.phone", &old).unwrap(), "+6281234567890");
        assert!(keyring.remove_encryption(2).is_err(), "the active key stays");
        keyring.remove_encryption(1).unwrap();
        let refused = keyring.open("persons.phone", &old).unwrap_err().0;
        assert!(refused.contains("needs encryption key 1"), "{refused}");
        assert_eq!(keyring.open("persons.phone", &new).unwrap(), "+6281234567890");
    }

    #[test]
    fn the_blind_index_is_keyed_and_stable() {
        let mut keyring = Keyring::generate();
        let index = keyring.blind_index("persons.nik", NIK).unwrap();
        assert_eq!(index, keyring.blind_index("persons.nik", NIK).unwrap());
        assert_ne!(
            index,
            Keyring::generate().blind_index("persons.nik", NIK).unwrap(),
            "another key, another index"
        );
        assert_ne!(index, keyring.blind_index("persons.nik", "3524012404970128").unwrap());
        let unkeyed: String = {
            use sha2::Digest;
            sha2::Sha256::digest(NIK.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
        };
        assert!(!index.contains(&unkeyed));
        keyring.rotate_index();
        assert!(keyring.blind_index("persons.nik", NIK).unwrap().starts_with("2."));
        assert_eq!(keyring.blind_index_with(1, "persons.nik", NIK), Ok(index));
    }

    #[test]
    fn a_key_file_reads_back_and_bad_ones_are_refused_by_line() {
        let mut keyring = Keyring::generate();
        keyring.rotate_encryption();
        let text = keyring.to_text();
        let read = Keyring::parse(&text).unwrap();
        assert_eq!(read.to_text(), text);
        assert_eq!((read.active_encryption(), read.active_index()), (2, 1));
        let sealed = keyring.seal("persons.email", "siti@example.com").unwrap();
        assert_eq!(read.open("persons.email", &sealed).unwrap(), "siti@example.com");
        assert!(!format!("{read:?}").contains(&text.lines().nth(2).unwrap()[13..]), "no key in Debug");
        let key = STANDARD.encode([7u8; 32]);
        for (bad, why) in [
            (format!("encryption 1 {key}\n"), "no active encryption key"),
            (format!("encryption 1 {key} active\n"), "no active index key"),
            (
                format!("encryption 1 {key} active\nindex 1 {key} active\nencryption 1 {key}\n"),
                "line 3: a second",
            ),
            (format!("encryption 0 {key} active\n"), "line 1: the id"),
            ("encryption 1 c2hvcnQ= active\n".to_owned(), "line 1: the key"),
            (format!("signing 1 {key} active\n"), "line 1: the kind"),
            (format!("encryption 1 {key} active yes\n"), "line 1: expected"),
        ] {
            let refused = Keyring::parse(&bad).unwrap_err().0;
            assert!(refused.contains(why), "{bad:?}: {refused}");
        }
    }
}
