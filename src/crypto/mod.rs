//! The cryptography of logging in, with no knowledge of users or requests: argon2id password
//! hashes and HS256 access tokens. Authentication (`crate::auth`), user management and the
//! application state build on it.

mod password;
mod tokens;

pub use password::{concurrent_checks, hash_password, verify_password};
pub use tokens::{Claims, Keys, Subject};
