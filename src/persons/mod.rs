//! Persons (issue 29): the people behind the businesses, one per NIK, their identifying fields
//! sealed at rest. `model` holds what a person is and the one way a business's owner becomes
//! a person or a person is corrected; `upgrade` the migrations that move the businesses'
//! owners into persons and the start-up check of the data keys; `rotate` new data keys while
//! the servers serve; `consents` their consents to share their data, as evidence. The endpoints are the
//! businesses' (`crate::businesses::owners`): a person is seen as an owner of businesses.

pub mod consents;
mod model;
mod owner;
mod rotate;
mod upgrade;

pub use model::{
    Conflict, EMAIL, ERASED_PERSON, NIK, NIK_INDEX, OwnerRecord, PHONE, PII, Person, PersonPatch, PersonRow,
    conflicts_of, erase, find, find_by_nik, lock_existing, resolve, update,
};
pub use owner::{
    ERASED_MARKER, Owner, OwnerCopy, OwnerHold, OwnerRow, open, owner_hold, restricted, restricted_among,
};
pub use rotate::{Rotated, retire, rotate, settle_time, still_needing};
pub use upgrade::{Moved, migrate, verify_keys};

/// `umkm-api persons …`.
#[derive(Debug, clap::Subcommand)]
pub enum PersonsCommand {
    /// List what the move of the businesses' owners into persons found different among the
    /// businesses of one NIK, for an officer to settle (PATCH /api/v1/persons/{id}).
    Conflicts,
}

/// Runs a `persons` command; what it prints. `conflicts`: one line per value that differed,
/// the person first.
pub fn command(
    conn: &mut crate::db::DbConnection,
    keys: &crate::crypto::keyring::Keyring,
    command: PersonsCommand,
) -> Result<String, String> {
    use std::fmt::Write;
    let PersonsCommand::Conflicts = command;
    let found = conflicts_of(conn, keys, None).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for (person, c) in &found {
        let _ = writeln!(out, "person {person}: business {} gave {} {:?}", c.business_id, c.field, c.value);
    }
    let _ = writeln!(out, "{} conflict(s); settle each with PATCH /api/v1/persons/{{id}}", found.len());
    Ok(out)
}
