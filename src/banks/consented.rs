//! Whether an application's bank may see its applicant: `applications.consented`, true while
//! the owner of its business has a consent in force to share their data with every partner
//! bank or with that bank (`crate::persons::consents`). Kept by every write that changes it (a
//! new application, a consent given or withdrawn, a business changing owner), and read by the
//! bank's views, the verdicts, the feed and the statistics.
//!
//! Exactness under concurrency rests on the business row: a consent change locks the owner's
//! businesses (in id order, after the person) before it writes, and a new application reads the
//! consent with its business locked ([`consent_of`]); so one of them waits for the other and
//! reads what it committed.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{applications, businesses};
use crate::error::AppResult;
use crate::persons::consents;
use crate::summary::{ApplicationFacts, Deltas};

/// Whether the owner of business `business_id` consents to sharing with `bank`, for a new
/// application. On PostgreSQL the business row is locked `FOR NO KEY UPDATE` first (not `FOR
/// SHARE`: the same write takes this lock again for the banks' feed at its end,
/// `super::feed::refresh`, and two transactions that each upgrade a share lock deadlock).
pub(crate) fn consent_of(conn: &mut DbConnection, business_id: i64, bank: i64) -> AppResult<bool> {
    let owner: i64 = match conn {
        DbConnection::Pg(pg) => businesses::table
            .find(business_id)
            .select(businesses::owner_id)
            .for_no_key_update()
            .get_result(pg)?,
        DbConnection::Sqlite(_) => {
            businesses::table.find(business_id).select(businesses::owner_id).get_result(conn)?
        }
    };
    let in_force = consents::in_force(conn, &[owner])?;
    Ok(in_force.get(&owner).is_some_and(|c| c.covers(bank)))
}

/// Brings `applications.consented` of every application of `businesses` (locked by the caller)
/// in line with their owners' consents in force, moving the statistics of each that changes.
/// The businesses whose applications changed (their banks' feed is the caller's to refresh).
pub(crate) fn settle(conn: &mut DbConnection, businesses: &[i64]) -> AppResult<Vec<i64>> {
    type Row = (i64, i64, i64, i64, String, i64, Option<i64>, bool, i64);
    let mut deltas = Deltas::new();
    let mut moved = Vec::new();
    for chunk in businesses.chunks(500) {
        let rows: Vec<Row> = applications::table
            .inner_join(businesses::table)
            .filter(applications::business_id.eq_any(chunk))
            .select((
                applications::id,
                applications::business_id,
                applications::bank_partner_id,
                applications::programme_id,
                applications::status,
                applications::amount_requested_idr,
                applications::amount_approved_idr,
                applications::consented,
                businesses::owner_id,
            ))
            .load(conn)?;
        let owners: Vec<i64> = rows.iter().map(|r| r.8).collect();
        let in_force: HashMap<i64, consents::InForce> = consents::in_force(conn, &owners)?;
        for (id, business, bank, programme, status, requested, approved, was, owner) in rows {
            let is = in_force.get(&owner).is_some_and(|c| c.covers(bank));
            if is == was {
                continue;
            }
            diesel::update(applications::table.find(id)).set(applications::consented.eq(is)).execute(conn)?;
            deltas
                .application(&ApplicationFacts::new(bank, programme, &status, was, requested, approved), -1)
                .application(&ApplicationFacts::new(bank, programme, &status, is, requested, approved), 1);
            moved.push(business);
        }
    }
    deltas.apply(conn)?;
    moved.sort_unstable();
    moved.dedup();
    Ok(moved)
}
