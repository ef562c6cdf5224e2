//! The banks' change feed: for every application, whether it is in its bank's pull, a
//! fingerprint of what the bank sees of it there, and when that last changed.
//!
//! What a bank sees of an applicant depends on much more than the application row: the
//! business's fields and consent, its attended trainings, its financing at other banks, the
//! programme's rules and whether it is open, and today's date. So the pull does not compare the
//! application's own `updated_at`: it reads `bank_feed`, which [`refresh`] recomputes at the end
//! of every write that can change any of these, in the same transaction, and which
//! [`reevaluate`] recomputes for everything once a day for the rules that change with time
//! alone (a business reaching a programme's minimum age, financing elsewhere ending).
//!
//! `changed_at` moves only when the fingerprint changes. Exactness under concurrency rests on
//! two locks, both held until the writing transaction commits (PostgreSQL; SQLite has one
//! writer at a time):
//! - **The business row.** A refresh locks the businesses it recomputes *before* it reads
//!   anything, and every write of data a verdict reads is made before that write's own
//!   refresh. Of two transactions changing what a bank sees of one business, the second to
//!   take the lock computes from the first's committed data and its own: the last refresh to
//!   commit is computed from everything.
//! - **The bank's clock** (`bank_feed_clocks`). A refresh that moves a bank's feed takes the
//!   bank's clock row and gives `changed_at` = later of now and the clock plus a microsecond.
//!   Moves of one bank's feed therefore commit in `changed_at` order, so a pull that sees a
//!   change also sees every change with an earlier time, and `updated_since` misses nothing.
//!
//! Locks are always taken businesses first (in id order), then clocks (in bank order), and a
//! refresh is the last step of its transaction: no cycle can form.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::applications::ApplicationRow;
use super::verdicts::verdicts;
use crate::db::schema::{
    applications, bank_feed, bank_feed_clocks, businesses, financing_programmes, persons,
};
use crate::db::{self, DbConnection, Pool};
use crate::domain::financing::Reason;
use crate::error::{AppError, AppResult};

/// Why an applicant left a bank's pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// An eligibility rule fails now (the business stopped trading, its age or scale, the
    /// amount, NIB or NPWP, an active financing at another bank).
    NotEligible,
    /// The owner withdrew consent to share data with banks: the bank sees nothing more of it.
    ConsentWithdrawn,
    /// The programme closed.
    ProgrammeClosed,
    /// Its status is no longer the one the pull asked for (`status`).
    OtherStatus,
    /// The owner restricted the processing of their data (UU 27/2022 Pasal 41): no bank sees
    /// them until the restriction is lifted.
    Restricted,
    /// The owner was erased (UU 27/2022 Pasal 43): nothing of them is held any more.
    Erased,
}

impl LeftReason {
    /// The stored name.
    fn as_str(self) -> &'static str {
        match self {
            LeftReason::NotEligible => "not_eligible",
            LeftReason::ConsentWithdrawn => "consent_withdrawn",
            LeftReason::ProgrammeClosed => "programme_closed",
            LeftReason::OtherStatus => "other_status",
            LeftReason::Restricted => "restricted",
            LeftReason::Erased => "erased",
        }
    }

    /// The stored name read back; `None` for an empty (listed) one.
    pub(super) fn parse(name: &str) -> Option<LeftReason> {
        [
            LeftReason::NotEligible,
            LeftReason::ConsentWithdrawn,
            LeftReason::ProgrammeClosed,
            LeftReason::OtherStatus,
            LeftReason::Restricted,
            LeftReason::Erased,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// A row of `bank_feed`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bank_feed)]
pub(super) struct FeedRow {
    pub(super) application_id: i64,
    pub(super) business_id: i64,
    pub(super) programme_id: i64,
    pub(super) listed: bool,
    pub(super) shown: bool,
    pub(super) left_reason: String,
    pub(super) fingerprint: String,
    pub(super) changed_at: NaiveDateTime,
}

/// The applicant's fields a bank checks in its pull.
#[derive(Debug, Clone, Queryable, Serialize)]
pub(super) struct ApplicantData {
    pub(super) id: i64,
    pub(super) name: String,
    /// The owner (a person): their NIK is opened by the pull; its version stands for it in the
    /// fingerprint (so the feed moves when the NIK is corrected, never for a new phone or
    /// e-mail, a rotation of the keys or a re-keyed index).
    pub(super) owner_id: i64,
    pub(super) owner_nik_version: i32,
    pub(super) owner_name: String,
    pub(super) address: String,
    pub(super) village: Option<String>,
    pub(super) district_code: String,
    pub(super) nib: Option<String>,
    pub(super) npwp: Option<String>,
    pub(super) kbli: String,
    pub(super) established_on: Option<NaiveDate>,
    pub(super) annual_revenue_idr: Option<i64>,
    pub(super) capital_idr: Option<i64>,
    pub(super) employees: Option<i32>,
    pub(super) scale: Option<String>,
    /// The owner's sealed NIK, as the business copies it: the pull opens it; the fingerprint
    /// leaves it out (a key rotation seals it again and changes nothing the bank sees).
    #[serde(skip)]
    pub(super) owner_nik_sealed: String,
    /// Whether the owner's data is restricted: the application is then not listed at all.
    #[serde(skip)]
    pub(super) owner_restricted: bool,
    /// Whether the owner was erased: the application is then not listed at all.
    #[serde(skip)]
    pub(super) owner_erased: bool,
}

/// The columns of an [`ApplicantData`]; the owner's NIK version and state as given (the
/// person's, or placeholders where nothing reads them).
macro_rules! applicant_columns {
    ($nik_version:expr, $restricted:expr, $erased:expr) => {
        (
            businesses::id,
            businesses::name,
            businesses::owner_id,
            $nik_version,
            businesses::person_name,
            businesses::address,
            businesses::village,
            businesses::district_code,
            businesses::nib,
            businesses::npwp,
            businesses::kbli,
            businesses::established_on,
            businesses::annual_revenue_idr,
            businesses::capital_idr,
            businesses::employees,
            businesses::scale,
            businesses::person_nik,
            $restricted,
            $erased,
        )
    };
}

/// The feed's fields of the businesses `ids`, by id, with their owners' NIK version and state
/// (what the fingerprint and the listing read).
pub(super) fn applicant_data(conn: &mut DbConnection, ids: &[i64]) -> AppResult<HashMap<i64, ApplicantData>> {
    let mut data = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let found: Vec<ApplicantData> = businesses::table
            .inner_join(persons::table)
            .filter(businesses::id.eq_any(chunk))
            .select(applicant_columns!(
                persons::nik_version,
                persons::restricted_at.is_not_null(),
                persons::erased_at.is_not_null()
            ))
            .load(conn)?;
        data.extend(found.into_iter().map(|b| (b.id, b)));
    }
    Ok(data)
}

/// The pull's fields of the businesses `ids`, by id: the businesses' own columns only (the
/// owner's copy is in them). The owner's NIK version and state read false and 0: the pull
/// lists only what the feed listed, and the feed lists no restricted or erased owner's
/// application. Half the pages a pull page reads of [`applicant_data`] (issue 32: 393 buffers
/// for 100 applicants instead of 793).
pub(super) fn pulled_data(conn: &mut DbConnection, ids: &[i64]) -> AppResult<HashMap<i64, ApplicantData>> {
    use diesel::sql_types::{Bool, Integer};
    let found: Vec<ApplicantData> = businesses::table
        .filter(businesses::id.eq_any(ids))
        .select(applicant_columns!(
            0.into_sql::<Integer>(),
            false.into_sql::<Bool>(),
            false.into_sql::<Bool>()
        ))
        .load(conn)?;
    Ok(found.into_iter().map(|b| (b.id, b)).collect())
}

/// The fingerprint of an application that is not in its bank's pull: what the bank sees of it
/// then does not change until it is listed again.
const UNLISTED: &str = "-";

/// SHA-256, in hex, of what the bank sees of a listed application: its own fields and the
/// applicant's.
fn fingerprint(a: &ApplicationRow, b: &ApplicantData) -> String {
    #[derive(Serialize)]
    struct Seen<'a> {
        programme_id: i64,
        amount_requested_idr: i64,
        purpose: &'a Option<String>,
        status: &'a str,
        amount_approved_idr: Option<i64>,
        bank_reference: &'a Option<String>,
        applicant: &'a ApplicantData,
    }
    let seen = Seen {
        programme_id: a.programme_id,
        amount_requested_idr: a.amount_requested_idr,
        purpose: &a.purpose,
        status: &a.status,
        amount_approved_idr: a.amount_approved_idr,
        bank_reference: &a.bank_reference,
        applicant: b,
    };
    let bytes = serde_json::to_vec(&seen).unwrap_or_default();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What the feed says of one application now.
struct Now {
    listed: bool,
    left_reason: &'static str,
    fingerprint: String,
}

/// [`refresh`] for `businesses` and every other business of their owners: a financing
/// approved, disbursed or ended through one business is financing elsewhere for the others
/// (KUR: one lender per debtor, a person).
pub(crate) fn refresh_owners(conn: &mut DbConnection, businesses: &[i64]) -> AppResult<usize> {
    let owners: Vec<i64> = businesses::table
        .filter(businesses::id.eq_any(businesses))
        .select(businesses::owner_id)
        .load(conn)?;
    let all: Vec<i64> =
        businesses::table.filter(businesses::owner_id.eq_any(owners)).select(businesses::id).load(conn)?;
    refresh(conn, &all)
}

/// Recomputes the feed of every application of `businesses`, moving `changed_at` where what
/// its bank sees changed. Call it as the last step of a write that changed anything a verdict
/// or the pull reads of these businesses (see the module's comment); it locks them.
pub(crate) fn refresh(conn: &mut DbConnection, businesses: &[i64]) -> AppResult<usize> {
    let ids: Vec<i64> = businesses.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let mut changed = 0;
    for chunk in ids.chunks(500) {
        changed += refresh_chunk(conn, chunk)?;
    }
    Ok(changed)
}

/// [`refresh`] for the businesses of the applications to `programme` (its rules or its opening
/// changed).
pub(crate) fn refresh_programme(conn: &mut DbConnection, programme: i64) -> AppResult<usize> {
    let ids: Vec<i64> = applications::table
        .filter(applications::programme_id.eq(programme))
        .select(applications::business_id)
        .distinct()
        .load(conn)?;
    refresh(conn, &ids)
}

/// Locks `ids` (sorted) on PostgreSQL, `FOR NO KEY UPDATE`: the lock a business's own update
/// takes, so refreshes and updates of one business take turns, while the key-share locks that
/// rows referring to the business take (a new application, registration or product) do not
/// conflict with it: a write that inserted such a row and refreshes after cannot deadlock
/// with one that updated the business.
pub(super) fn lock_businesses(conn: &mut DbConnection, ids: &[i64]) -> AppResult<()> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT id FROM businesses WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(ids)
            .execute(pg)?;
    }
    Ok(())
}

fn refresh_chunk(conn: &mut DbConnection, ids: &[i64]) -> AppResult<usize> {
    lock_businesses(conn, ids)?;
    let apps: Vec<ApplicationRow> = applications::table
        .filter(applications::business_id.eq_any(ids))
        .order(applications::id)
        .select(ApplicationRow::as_select())
        .load(conn)?;
    if apps.is_empty() {
        return Ok(0);
    }
    let verdicts = verdicts(conn, &apps)?;
    let programmes: HashSet<i64> = apps.iter().map(|a| a.programme_id).collect();
    let open: HashSet<i64> = financing_programmes::table
        .filter(financing_programmes::id.eq_any(programmes))
        .filter(financing_programmes::open.eq(true))
        .select(financing_programmes::id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let data = applicant_data(conn, ids)?;
    let app_ids: Vec<i64> = apps.iter().map(|a| a.id).collect();
    let stored: HashMap<i64, FeedRow> = bank_feed::table
        .filter(bank_feed::application_id.eq_any(&app_ids))
        .select(FeedRow::as_select())
        .load::<FeedRow>(conn)?
        .into_iter()
        .map(|f| (f.application_id, f))
        .collect();

    // What changed, by bank: the clocks are taken in bank order.
    let mut moves: BTreeMap<i64, Vec<(&ApplicationRow, Now)>> = BTreeMap::new();
    for (a, verdict) in apps.iter().zip(verdicts) {
        let b = data.get(&a.business_id).ok_or_else(|| AppError::internal("applicant missing"))?;
        let left = if b.owner_erased {
            Some(LeftReason::Erased)
        } else if b.owner_restricted {
            Some(LeftReason::Restricted)
        } else if verdict.reasons.contains(&Reason::NoConsent) {
            Some(LeftReason::ConsentWithdrawn)
        } else if !verdict.eligible {
            Some(LeftReason::NotEligible)
        } else if !open.contains(&a.programme_id) {
            Some(LeftReason::ProgrammeClosed)
        } else {
            None
        };
        let now = match left {
            None => Now { listed: true, left_reason: "", fingerprint: fingerprint(a, b) },
            Some(reason) => Now { listed: false, left_reason: reason.as_str(), fingerprint: UNLISTED.into() },
        };
        if stored.get(&a.id).is_none_or(|s| s.fingerprint != now.fingerprint) {
            moves.entry(a.bank_partner_id).or_default().push((a, now));
        }
    }
    let mut changed = 0;
    for (bank, rows) in moves {
        let at = tick(conn, bank)?;
        for (a, now) in rows {
            announce(conn, a, stored.get(&a.id).is_some_and(|s| s.listed), &now, at)?;
            match stored.get(&a.id) {
                Some(old) => {
                    diesel::update(bank_feed::table.find(a.id))
                        .set((
                            bank_feed::listed.eq(now.listed),
                            bank_feed::shown.eq(old.shown || now.listed),
                            bank_feed::left_reason.eq(now.left_reason),
                            bank_feed::fingerprint.eq(&now.fingerprint),
                            bank_feed::changed_at.eq(at),
                        ))
                        .execute(conn)?;
                }
                None => {
                    diesel::insert_into(bank_feed::table)
                        .values((
                            bank_feed::application_id.eq(a.id),
                            bank_feed::bank_partner_id.eq(a.bank_partner_id),
                            bank_feed::business_id.eq(a.business_id),
                            bank_feed::programme_id.eq(a.programme_id),
                            bank_feed::listed.eq(now.listed),
                            bank_feed::shown.eq(now.listed),
                            bank_feed::left_reason.eq(now.left_reason),
                            bank_feed::fingerprint.eq(&now.fingerprint),
                            bank_feed::changed_at.eq(at),
                        ))
                        .execute(conn)?;
                }
            }
            changed += 1;
        }
    }
    Ok(changed)
}

/// The bank's event for a move of its feed, in the same transaction: an applicant entered
/// the pull, changed in it, or left it. Events are thin (ids and the time): the bank reads the
/// data with an incremental pull from that time.
fn announce(
    conn: &mut DbConnection,
    a: &ApplicationRow,
    was: bool,
    now: &Now,
    at: NaiveDateTime,
) -> AppResult<()> {
    use crate::webhooks::{EventType, Partner, emit};
    let event = match (was, now.listed) {
        (false, true) => EventType::ApplicantEligible,
        (true, true) => EventType::ApplicantUpdated,
        (true, false) => EventType::ApplicantLeft,
        (false, false) => return Ok(()),
    };
    let data = super::events::ApplicantEvent {
        application_id: a.id,
        programme_id: a.programme_id,
        business_id: a.business_id,
        updated_at: at.and_utc(),
        left_reason: LeftReason::parse(now.left_reason),
    };
    emit(conn, Partner::Bank(a.bank_partner_id), event, data)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Clock {
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    changed_at: NaiveDateTime,
}

/// Takes `bank`'s clock until the transaction ends and moves it: the later of now and a
/// microsecond after the last time it gave.
fn tick(conn: &mut DbConnection, bank: i64) -> AppResult<NaiveDateTime> {
    let epoch = NaiveDateTime::default();
    diesel::sql_query(
        "INSERT INTO bank_feed_clocks (bank_partner_id, changed_at) VALUES ($1, $2) \
         ON CONFLICT (bank_partner_id) DO NOTHING",
    )
    .bind::<diesel::sql_types::BigInt, _>(bank)
    .bind::<diesel::sql_types::Timestamp, _>(epoch)
    .execute(conn)?;
    let lock = db::locking(conn, " FOR UPDATE");
    let last = diesel::sql_query(format!(
        "SELECT changed_at FROM bank_feed_clocks WHERE bank_partner_id = $1{lock}"
    ))
    .bind::<diesel::sql_types::BigInt, _>(bank)
    .get_result::<Clock>(conn)?
    .changed_at;
    let at = db::now().max(last + chrono::Duration::microseconds(1));
    diesel::update(bank_feed_clocks::table.find(bank))
        .set(bank_feed_clocks::changed_at.eq(at))
        .execute(conn)?;
    Ok(at)
}

/// How many businesses one transaction of [`reevaluate`] recomputes.
const REEVALUATE_BATCH: i64 = 200;

/// Recomputes the whole feed, a batch of businesses per transaction: the time-based rules'
/// daily turn, and the filling of the feed after an upgrade or a bulk load. Idempotent, and
/// safe to run on several instances at once (each batch takes the locks a write takes). The
/// number of applications whose feed moved.
pub fn reevaluate(conn: &mut DbConnection) -> AppResult<usize> {
    let mut after = 0_i64;
    let mut changed = 0;
    loop {
        let batch: Vec<i64> = applications::table
            .filter(applications::business_id.gt(after))
            .select(applications::business_id)
            .distinct()
            .order(applications::business_id)
            .limit(REEVALUATE_BATCH)
            .load(conn)?;
        let Some(&last) = batch.last() else { return Ok(changed) };
        changed += db::write(conn, |conn| refresh(conn, &batch))?;
        after = last;
    }
}

/// When the daily re-evaluation runs: this long after midnight UTC, the day the date-based
/// rules read (`db::now().date()`) turns.
const DAILY_AT: Duration = Duration::from_secs(60);

/// Starts the thread that re-evaluates the feed every day just after midnight UTC.
pub fn spawn_daily(pool: Pool) -> std::io::Result<()> {
    std::thread::Builder::new().name("bank-feed".into()).spawn(move || {
        loop {
            std::thread::sleep(until_next_run(db::now()));
            run_logged(&pool);
        }
    })?;
    Ok(())
}

/// Re-evaluates the feed and logs what it did.
pub fn run_logged(pool: &Pool) {
    let started = Instant::now();
    match pool.get().map_err(AppError::from).and_then(|mut conn| reevaluate(&mut conn)) {
        Ok(changed) => log::info!(
            "bank feed re-evaluated in {} ms: {changed} application(s) changed",
            started.elapsed().as_millis()
        ),
        Err(err) => log::warn!("re-evaluating the bank feed failed, the next run retries: {err}"),
    }
}

/// From `now` to the next run.
fn until_next_run(now: NaiveDateTime) -> Duration {
    let midnight = now.date().and_hms_opt(0, 0, 0).unwrap_or(now);
    let today = midnight + chrono::Duration::from_std(DAILY_AT).unwrap_or_default();
    let next = if today > now { today } else { today + chrono::Duration::days(1) };
    (next - now).to_std().unwrap_or(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn the_daily_run_is_just_after_midnight_utc() {
        assert_eq!(until_next_run(at("2026-12-03 00:00:00")), Duration::from_secs(60));
        assert_eq!(until_next_run(at("2026-12-03 00:01:00")), Duration::from_secs(86_400));
        assert_eq!(until_next_run(at("2026-12-03 23:59:00")), Duration::from_secs(120));
    }

    #[test]
    fn left_reasons_read_back() {
        for r in [LeftReason::NotEligible, LeftReason::ConsentWithdrawn, LeftReason::ProgrammeClosed] {
            assert_eq!(LeftReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(LeftReason::parse(""), None);
    }
}
