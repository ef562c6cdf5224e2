//! Eligibility verdicts: a programme's rules checked against each applicant as it is now,
//! loaded for a whole page of applications in a few batched queries.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;

use super::applications::{Application, ApplicationRow, application_of};
use super::programmes::ProgrammeRow;
use crate::db::schema::{applications, businesses, financing_programmes, registrations};
use crate::db::{self, DbConnection};
use crate::domain::classification::Scale;
use crate::domain::financing::{self, Applicant, Eligibility, OtherFinancing, Rules};
use crate::error::{AppError, AppResult};

/// What eligibility needs of a business, from its row.
#[derive(Debug, Clone, Queryable)]
struct ApplicantRow {
    id: i64,
    owner_id: i64,
    status: String,
    established_on: Option<NaiveDate>,
    scale: Option<String>,
    nib: Option<String>,
    npwp: Option<String>,
}

/// The verdicts for `apps`, loading what they need in a few batched queries.
pub(crate) fn verdicts(conn: &mut DbConnection, apps: &[ApplicationRow]) -> AppResult<Vec<Eligibility>> {
    Ok(judged(conn, apps)?.0)
}

/// The verdicts for `apps`, and each application's owner (a person).
fn judged(conn: &mut DbConnection, apps: &[ApplicationRow]) -> AppResult<(Vec<Eligibility>, Vec<i64>)> {
    let business_ids: Vec<i64> =
        apps.iter().map(|a| a.business_id).collect::<HashSet<_>>().into_iter().collect();
    let programme_ids: Vec<i64> =
        apps.iter().map(|a| a.programme_id).collect::<HashSet<_>>().into_iter().collect();
    let mut applicants: HashMap<i64, ApplicantRow> = HashMap::new();
    // Per owner (a person: KUR allows one lender per debtor, across all their businesses):
    // their approved or disbursed applications, by application id.
    let mut others: HashMap<i64, Vec<(i64, OtherFinancing)>> = HashMap::new();
    let mut trained: HashSet<i64> = HashSet::new();
    for chunk in business_ids.chunks(500) {
        let rows: Vec<ApplicantRow> = businesses::table
            .filter(businesses::id.eq_any(chunk))
            .select((
                businesses::id,
                businesses::owner_id,
                businesses::status,
                businesses::established_on,
                businesses::scale,
                businesses::nib,
                businesses::npwp,
            ))
            .load(conn)?;
        let owners: Vec<i64> = rows.iter().map(|r| r.owner_id).collect::<HashSet<_>>().into_iter().collect();
        applicants.extend(rows.into_iter().map(|r| (r.id, r)));
        let financing: Vec<(i64, i64, i64, Option<NaiveDate>)> = applications::table
            .inner_join(businesses::table)
            .filter(businesses::owner_id.eq_any(&owners))
            .filter(applications::status.eq_any(["approved", "disbursed"]))
            .select((
                businesses::owner_id,
                applications::id,
                applications::bank_partner_id,
                applications::financing_ends_on,
            ))
            .load(conn)?;
        for (owner, id, bank, ends) in financing {
            let other = OtherFinancing { bank_partner_id: bank, active_status: true, ends_on: ends };
            let held = others.entry(owner).or_default();
            if !held.iter().any(|(seen, _)| *seen == id) {
                held.push((id, other));
            }
        }
        trained.extend(
            registrations::table
                .filter(registrations::business_id.eq_any(chunk))
                .filter(registrations::status.eq("attended"))
                .select(registrations::business_id)
                .load::<i64>(conn)?,
        );
    }
    let programmes: HashMap<i64, Rules> = financing_programmes::table
        .filter(financing_programmes::id.eq_any(&programme_ids))
        .select(ProgrammeRow::as_select())
        .load::<ProgrammeRow>(conn)?
        .into_iter()
        .map(|p| (p.id, p.rules()))
        .collect();
    let today = db::now().date();
    let mut owners = Vec::with_capacity(apps.len());
    let verdicts = apps
        .iter()
        .map(|a| {
            let b = applicants.get(&a.business_id).ok_or_else(|| AppError::internal("applicant missing"))?;
            let rules =
                programmes.get(&a.programme_id).ok_or_else(|| AppError::internal("programme missing"))?;
            owners.push(b.owner_id);
            let applicant = Applicant {
                active: b.status == "active",
                consented: a.consented,
                established_on: b.established_on,
                scale: b.scale.as_deref().and_then(Scale::parse),
                has_nib: b.nib.is_some(),
                has_npwp: b.npwp.is_some(),
                attended_training: trained.contains(&a.business_id),
            };
            let other: Vec<OtherFinancing> = others
                .get(&b.owner_id)
                .into_iter()
                .flatten()
                .filter(|(id, _)| *id != a.id)
                .map(|(_, other)| other.clone())
                .collect();
            Ok(financing::eligibility(&applicant, rules, a.amount_requested_idr, &other, today))
        })
        .collect::<AppResult<_>>()?;
    Ok((verdicts, owners))
}

/// `rows` as the API answers them, each with its verdict.
pub(crate) fn with_verdicts(
    conn: &mut DbConnection,
    rows: Vec<ApplicationRow>,
) -> AppResult<Vec<Application>> {
    let (verdicts, owners) = judged(conn, &rows)?;
    Ok(rows
        .into_iter()
        .zip(verdicts)
        .zip(owners)
        .map(|((a, e), owner)| application_of(a, e, owner))
        .collect())
}

/// `row` as the API answers it, with its verdict.
pub(crate) fn with_verdict(conn: &mut DbConnection, row: ApplicationRow) -> AppResult<Application> {
    with_verdicts(conn, vec![row])?.pop().ok_or_else(|| AppError::internal("an application lost its verdict"))
}
