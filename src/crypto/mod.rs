//! The cryptography of the service, with no knowledge of users or requests: argon2id password
//! hashes and HS256 access tokens (authentication, user management and the application state
//! build on them), and the keys of personal data at rest (`keyring`).

pub mod data_keys;
pub mod keyring;
mod password;
mod tokens;

pub use password::{concurrent_checks, hash_password, verify_password};
pub use tokens::{Claims, Keys, Subject};
