//! Writing events: [`emit`] adds one delivery per subscription that wants the event, in the
//! transaction of the change it reports — no event without its change, no change without its
//! event. The dispatcher (`dispatch.rs`) sends them.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::{webhook_deliveries, webhook_subscriptions};
use crate::db::{self, DbConnection};
use crate::error::AppResult;

/// The events a partner can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// An applicant entered the bank's pull (became eligible, consent given again, the
    /// programme reopened).
    #[serde(rename = "applicant.eligible")]
    ApplicantEligible,
    /// What the bank sees of an applicant in its pull changed.
    #[serde(rename = "applicant.updated")]
    ApplicantUpdated,
    /// An applicant left the bank's pull (no longer eligible, consent withdrawn, programme
    /// closed).
    #[serde(rename = "applicant.left")]
    ApplicantLeft,
    /// One of the bank's applications changed status.
    #[serde(rename = "application.status_changed")]
    ApplicationStatusChanged,
    /// A product was submitted to the retailer's curation.
    #[serde(rename = "curation.submitted")]
    CurationSubmitted,
    /// One of the retailer's curations was decided (passed or rejected).
    #[serde(rename = "curation.decided")]
    CurationDecided,
    /// A product went on the shelf of one of the retailer's outlets (placed, or listed again).
    #[serde(rename = "placement.listed")]
    PlacementListed,
    /// A product left the shelf of one of the retailer's outlets (delisted, or its product
    /// deleted).
    #[serde(rename = "placement.delisted")]
    PlacementDelisted,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 8] = [
        EventType::ApplicantEligible,
        EventType::ApplicantUpdated,
        EventType::ApplicantLeft,
        EventType::ApplicationStatusChanged,
        EventType::CurationSubmitted,
        EventType::CurationDecided,
        EventType::PlacementListed,
        EventType::PlacementDelisted,
    ];

    /// The name (`applicant.eligible`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ApplicantEligible => "applicant.eligible",
            EventType::ApplicantUpdated => "applicant.updated",
            EventType::ApplicantLeft => "applicant.left",
            EventType::ApplicationStatusChanged => "application.status_changed",
            EventType::CurationSubmitted => "curation.submitted",
            EventType::CurationDecided => "curation.decided",
            EventType::PlacementListed => "placement.listed",
            EventType::PlacementDelisted => "placement.delisted",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether a subscription of a bank (`true`) or of a retailer (`false`) may want it: a
    /// payload holds only what its partner may see.
    pub fn fits(self, bank: bool) -> bool {
        let for_banks = matches!(
            self,
            EventType::ApplicantEligible
                | EventType::ApplicantUpdated
                | EventType::ApplicantLeft
                | EventType::ApplicationStatusChanged
        );
        for_banks == bank
    }
}

/// The body of every event: `{"type", "timestamp", "data"}` (Standard Webhooks' shape).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Event<T> {
    /// The event type.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the event happened.
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// What happened.
    pub data: T,
}

/// Whom an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partner {
    /// A bank partner.
    Bank(i64),
    /// A retail partner.
    Retail(i64),
}

/// Writes `event` with `data` for every subscription of `partner` that wants it, active or not:
/// a paused or disabled subscription holds its events until it is active again. The body sent
/// is `{"type", "timestamp", "data"}`; `data` must hold only what the partner may see.
pub fn emit(
    conn: &mut DbConnection,
    partner: Partner,
    event: EventType,
    data: impl Serialize,
) -> AppResult<usize> {
    let mut q = webhook_subscriptions::table.into_boxed();
    q = match partner {
        Partner::Bank(id) => q.filter(webhook_subscriptions::bank_partner_id.eq(id)),
        Partner::Retail(id) => q.filter(webhook_subscriptions::retail_partner_id.eq(id)),
    };
    let subscriptions: Vec<(i64, String)> =
        q.select((webhook_subscriptions::id, webhook_subscriptions::event_types)).load(conn)?;
    let wanted: Vec<i64> = subscriptions
        .into_iter()
        .filter(|(_, types)| types.split_ascii_whitespace().any(|t| t == event.as_str()))
        .map(|(id, _)| id)
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let now = db::now();
    let message_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let body = serde_json::to_string(&Event { kind: event, timestamp: now.and_utc(), data })
        .map_err(crate::error::AppError::internal)?;
    for subscription in &wanted {
        queue(conn, *subscription, &message_id, event.as_str(), &body, now)?;
    }
    Ok(wanted.len())
}

/// Queues a delivery of an event (its `webhook-id`, type and body) at the end of `subscription`'s
/// queue, due `now`; its id. An event's first delivery and every redelivery come through here.
pub fn queue(
    conn: &mut DbConnection,
    subscription: i64,
    message_id: &str,
    event_type: &str,
    payload: &str,
    now: chrono::NaiveDateTime,
) -> AppResult<i64> {
    Ok(diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::subscription_id.eq(subscription),
            webhook_deliveries::message_id.eq(message_id),
            webhook_deliveries::event_type.eq(event_type),
            webhook_deliveries::payload.eq(payload),
            webhook_deliveries::created_at.eq(now),
            webhook_deliveries::next_attempt_at.eq(now),
        ))
        .returning(webhook_deliveries::id)
        .get_result(conn)?)
}
