//! Consent as evidence (UU 27/2022 Pasal 22, 24): a person's consent to share their data with
//! partner banks, a record per person × purpose × recipient (every bank, or a named one) with
//! who recorded it, when, through which channel, the evidence and the text consented to, and
//! its withdrawal. What the consents decide (the businesses' `consented_to_bank_sharing_at`,
//! which applications a bank sees) is kept by `crate::businesses`, which holds the locks.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::schema::{bank_partners, consents};
use crate::error::{AppError, AppResult};
use crate::http::input::{Check, Field};

/// The purposes a person consents to (one so far).
pub const BANK_SHARING: &str = "bank_sharing";

/// The longest evidence reference and text version.
const MAX_EVIDENCE: usize = 200;
const MAX_TEXT_VERSION: usize = 50;

/// How a consent, or its withdrawal, reached the office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A signed paper form.
    PaperForm,
    /// In person at the office, before an officer.
    InPerson,
    /// An online form.
    OnlineForm,
    /// A letter.
    Letter,
    /// An e-mail.
    Email,
    /// A phone call (withdrawals).
    Phone,
    /// Made from a business's consent flag by the migration that introduced these records.
    Migrated,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::PaperForm => "paper_form",
            Channel::InPerson => "in_person",
            Channel::OnlineForm => "online_form",
            Channel::Letter => "letter",
            Channel::Email => "email",
            Channel::Phone => "phone",
            Channel::Migrated => "migrated",
        }
    }

    fn parse(name: &str) -> Option<Channel> {
        [
            Channel::PaperForm,
            Channel::InPerson,
            Channel::OnlineForm,
            Channel::Letter,
            Channel::Email,
            Channel::Phone,
            Channel::Migrated,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }
}

/// A consent as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub(crate) id: i64,
    pub(crate) person_id: i64,
    pub(crate) purpose: String,
    pub(crate) bank_partner_id: Option<i64>,
    pub(crate) channel: String,
    pub(crate) evidence: String,
    pub(crate) text_version: String,
    pub(crate) given_at: NaiveDateTime,
    pub(crate) recorded_by: Option<i64>,
    pub(crate) recorded_at: NaiveDateTime,
    pub(crate) withdrawn_at: Option<NaiveDateTime>,
    pub(crate) withdrawal_channel: Option<String>,
    pub(crate) withdrawal_evidence: Option<String>,
    pub(crate) withdrawal_recorded_by: Option<i64>,
    pub(crate) withdrawal_recorded_at: Option<NaiveDateTime>,
    pub(crate) version: i32,
}

/// A person's consent to share their data, and its withdrawal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Consent {
    #[schema(example = 7)]
    pub id: i64,
    /// The person who consented.
    #[schema(example = 12)]
    pub person_id: i64,
    /// What the data may be used for: `bank_sharing`, shown to partner banks as applicants.
    #[schema(example = "bank_sharing")]
    pub purpose: String,
    /// The one bank the consent names; `null`: every partner bank.
    #[schema(example = json!(null))]
    pub bank_partner_id: Option<i64>,
    /// How the consent reached the office.
    pub channel: Channel,
    /// The evidence: a reference to the signed form, letter or record the office keeps.
    #[schema(example = "FORM-2026/0153")]
    pub evidence: String,
    /// The version of the text the person consented to.
    #[schema(example = "persetujuan-bank-v2")]
    pub text_version: String,
    /// When the person consented.
    pub given_at: DateTime<Utc>,
    /// The user who recorded it (`null` for consents the upgrade made from businesses' flags,
    /// channel `migrated`, and for generated demonstration data).
    #[schema(example = 1)]
    pub recorded_by: Option<i64>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Whether it still holds (not withdrawn).
    pub active: bool,
    /// When the person withdrew it.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// How the withdrawal reached the office.
    pub withdrawal_channel: Option<Channel>,
    /// The withdrawal's evidence, if the office keeps one.
    #[schema(example = json!(null))]
    pub withdrawal_evidence: Option<String>,
    /// The user who recorded the withdrawal.
    #[schema(example = json!(null))]
    pub withdrawal_recorded_by: Option<i64>,
    /// When the withdrawal was recorded.
    pub withdrawal_recorded_at: Option<DateTime<Utc>>,
    #[schema(example = 1)]
    pub version: i32,
}

impl From<ConsentRow> for Consent {
    fn from(c: ConsentRow) -> Consent {
        let channel = |name: &str| Channel::parse(name).unwrap_or(Channel::Migrated);
        Consent {
            id: c.id,
            person_id: c.person_id,
            active: c.withdrawn_at.is_none(),
            channel: channel(&c.channel),
            purpose: c.purpose,
            bank_partner_id: c.bank_partner_id,
            evidence: c.evidence,
            text_version: c.text_version,
            given_at: c.given_at.and_utc(),
            recorded_by: c.recorded_by,
            recorded_at: c.recorded_at.and_utc(),
            withdrawn_at: c.withdrawn_at.map(|t| t.and_utc()),
            withdrawal_channel: c.withdrawal_channel.as_deref().map(channel),
            withdrawal_evidence: c.withdrawal_evidence,
            withdrawal_recorded_by: c.withdrawal_recorded_by,
            withdrawal_recorded_at: c.withdrawal_recorded_at.map(|t| t.and_utc()),
            version: c.version,
        }
    }
}

/// A consent to record.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// `bank_sharing` (the default and, so far, the only purpose).
    #[schema(value_type = Option<String>, example = "bank_sharing")]
    #[serde(default)]
    pub purpose: Field<String>,
    /// One partner bank; absent or `null`: every partner bank.
    #[schema(value_type = Option<i64>, example = json!(null))]
    #[serde(default)]
    pub bank_partner_id: Field<i64>,
    /// How it reached the office (not `migrated`).
    #[schema(value_type = Channel)]
    #[serde(default)]
    pub channel: Field<Channel>,
    /// The evidence the office keeps: a reference to the signed form, letter or record.
    #[schema(value_type = String, example = "FORM-2026/0153", max_length = 200)]
    #[serde(default)]
    pub evidence: Field<String>,
    /// The version of the text the person consented to.
    #[schema(value_type = String, example = "persetujuan-bank-v2", max_length = 50)]
    #[serde(default)]
    pub text_version: Field<String>,
    /// When the person consented (not in the future).
    #[schema(value_type = DateTime<Utc>)]
    #[serde(default)]
    pub given_at: Field<DateTime<Utc>>,
}

/// A withdrawal to record.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalInput {
    /// How it reached the office (not `migrated`).
    #[schema(value_type = Channel)]
    #[serde(default)]
    pub channel: Field<Channel>,
    /// The evidence, if the office keeps one (a withdrawal needs no form).
    #[schema(value_type = Option<String>, example = "SURAT-2026/0031", max_length = 200)]
    #[serde(default)]
    pub evidence: Field<String>,
    /// When the person withdrew; absent: now. Not before the consent, not in the future.
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default)]
    pub withdrawn_at: Field<DateTime<Utc>>,
}

/// A checked consent.
#[derive(Debug, Clone)]
pub struct NewConsent {
    bank_partner_id: Option<i64>,
    channel: Channel,
    evidence: String,
    text_version: String,
    given_at: NaiveDateTime,
}

fn channel(check: &mut Check, value: Field<Channel>) -> Option<Channel> {
    match check.required("channel", value)? {
        Channel::Migrated => {
            check.fail(
                "channel",
                "invalid_value",
                "migrated is the upgrade's own channel, not one to record",
            );
            None
        }
        c => Some(c),
    }
}

fn not_future(
    check: &mut Check,
    field: &str,
    at: Option<DateTime<Utc>>,
    now: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let at = at?.naive_utc();
    if at > now {
        check.fail(field, "out_of_range", "must not be in the future");
        return None;
    }
    Some(at)
}

/// Checks a consent whole (every field, and the bank against the partners), in one 422.
pub fn check_new(conn: &mut DbConnection, input: ConsentInput, now: NaiveDateTime) -> AppResult<NewConsent> {
    let mut check = Check::default();
    if let Some(purpose) = check.optional("purpose", input.purpose)
        && purpose != BANK_SHARING
    {
        check.fail("purpose", "invalid_value", "must be bank_sharing");
    }
    let bank = check.optional("bank_partner_id", input.bank_partner_id);
    if let Some(bank) = bank {
        let known: bool =
            diesel::select(diesel::dsl::exists(bank_partners::table.find(bank))).get_result(conn)?;
        if !known {
            check.fail("bank_partner_id", "not_found", "no partner bank has this id");
        }
    }
    let channel = channel(&mut check, input.channel);
    let evidence = check.text("evidence", input.evidence, MAX_EVIDENCE);
    let text_version = check.text("text_version", input.text_version, MAX_TEXT_VERSION);
    let given_at = check.required("given_at", input.given_at);
    let given_at = not_future(&mut check, "given_at", given_at, now);
    check.finish(|| {
        Some(NewConsent {
            bank_partner_id: bank,
            channel: channel?,
            evidence: evidence?,
            text_version: text_version?,
            given_at: given_at?,
        })
    })
}

/// Records `consent` for person `person` (which the caller holds locked). An active consent
/// for the same recipient is a 409 naming it.
pub fn insert(
    conn: &mut DbConnection,
    user: i64,
    person: i64,
    consent: &NewConsent,
) -> AppResult<ConsentRow> {
    // The person is locked: an active consent found now is there at the insert (the unique
    // index is the database's own guard all the same).
    if let Some(active) = active_for(conn, person, consent.bank_partner_id)? {
        return Err(AppError::Conflict(format!(
            "person {person} already has an active consent for {}: consent {active}; withdraw it first to record another",
            recipient(consent.bank_partner_id),
        )));
    }
    let now = crate::db::now();
    let inserted = diesel::insert_into(consents::table)
        .values((
            consents::person_id.eq(person),
            consents::purpose.eq(BANK_SHARING),
            consents::bank_partner_id.eq(consent.bank_partner_id),
            consents::channel.eq(consent.channel.as_str()),
            consents::evidence.eq(&consent.evidence),
            consents::text_version.eq(&consent.text_version),
            consents::given_at.eq(consent.given_at),
            consents::recorded_by.eq(user),
            consents::recorded_at.eq(now),
        ))
        .returning(consents::id)
        .get_result::<i64>(conn);
    match inserted {
        Ok(id) => find(conn, person, id),
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            Err(AppError::Conflict(format!(
                "person {person} already has an active consent for {}; withdraw it first to record another",
                recipient(consent.bank_partner_id),
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn recipient(bank: Option<i64>) -> String {
    bank.map_or_else(|| "every partner bank".to_owned(), |b| format!("bank partner {b}"))
}

fn active_for(conn: &mut DbConnection, person: i64, bank: Option<i64>) -> QueryResult<Option<i64>> {
    let q = consents::table
        .filter(consents::person_id.eq(person))
        .filter(consents::withdrawn_at.is_null())
        .select(consents::id)
        .into_boxed();
    let q = match bank {
        Some(b) => q.filter(consents::bank_partner_id.eq(b)),
        None => q.filter(consents::bank_partner_id.is_null()),
    };
    q.first(conn).optional()
}

/// Withdraws consent `id` of person `person` (both locked by the caller). A consent already
/// withdrawn is a 409.
pub fn withdraw(
    conn: &mut DbConnection,
    user: i64,
    person: i64,
    id: i64,
    input: WithdrawalInput,
) -> AppResult<(ConsentRow, ConsentRow)> {
    let current = find(conn, person, id)?;
    let now = crate::db::now();
    let mut check = Check::default();
    let channel = channel(&mut check, input.channel);
    let evidence = check.optional_text("evidence", input.evidence, MAX_EVIDENCE);
    let at = match check.optional("withdrawn_at", input.withdrawn_at) {
        None => Some(now),
        at => not_future(&mut check, "withdrawn_at", at, now),
    };
    if let Some(at) = at
        && at < current.given_at
    {
        check.fail("withdrawn_at", "out_of_range", "must not be before the consent was given");
    }
    let (channel, at) = check.finish(|| Some((channel?, at?)))?;
    if let Some(when) = current.withdrawn_at {
        return Err(AppError::Conflict(format!(
            "consent {id} was withdrawn at {}",
            when.and_utc().to_rfc3339()
        )));
    }
    let updated = diesel::update(consents::table.find(id).filter(consents::withdrawn_at.is_null()))
        .set((
            consents::withdrawn_at.eq(at),
            consents::withdrawal_channel.eq(channel.as_str()),
            consents::withdrawal_evidence.eq(evidence),
            consents::withdrawal_recorded_by.eq(user),
            consents::withdrawal_recorded_at.eq(now),
            consents::version.eq(consents::version + 1),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(AppError::Conflict(format!("consent {id} was withdrawn meanwhile")));
    }
    Ok((current, find(conn, person, id)?))
}

/// Consent `id` of person `person` (404 when it is another person's).
pub fn find(conn: &mut DbConnection, person: i64, id: i64) -> AppResult<ConsentRow> {
    Ok(consents::table
        .filter(consents::id.eq(id))
        .filter(consents::person_id.eq(person))
        .select(ConsentRow::as_select())
        .first(conn)?)
}

/// Every consent of person `person`, the newest first.
pub fn of_person(conn: &mut DbConnection, person: i64) -> QueryResult<Vec<ConsentRow>> {
    consents::table
        .filter(consents::person_id.eq(person))
        .order(consents::id.desc())
        .select(ConsentRow::as_select())
        .load(conn)
}

/// What the active consents of `persons` allow: by person, since when every bank may see
/// their data, and the banks named one by one.
pub fn in_force(
    conn: &mut DbConnection,
    persons: &[i64],
) -> QueryResult<std::collections::HashMap<i64, InForce>> {
    let mut found: std::collections::HashMap<i64, InForce> = std::collections::HashMap::new();
    for chunk in persons.chunks(500) {
        let rows: Vec<(i64, Option<i64>, NaiveDateTime)> = consents::table
            .filter(consents::person_id.eq_any(chunk))
            .filter(consents::purpose.eq(BANK_SHARING))
            .filter(consents::withdrawn_at.is_null())
            .select((consents::person_id, consents::bank_partner_id, consents::given_at))
            .load(conn)?;
        for (person, bank, given) in rows {
            let entry = found.entry(person).or_default();
            match bank {
                None => entry.every_bank_since = Some(given),
                Some(bank) => entry.banks.push(bank),
            }
        }
    }
    Ok(found)
}

/// A person's consents to bank sharing in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InForce {
    /// Since when every partner bank may see their data (`None`: not every bank).
    pub every_bank_since: Option<NaiveDateTime>,
    /// The banks named by a consent of their own.
    pub banks: Vec<i64>,
}

impl InForce {
    /// Whether bank `bank` may see the person's data.
    pub fn covers(&self, bank: i64) -> bool {
        self.every_bank_since.is_some() || self.banks.contains(&bank)
    }
}
