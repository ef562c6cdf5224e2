//! The payloads of the banks' events (`crate::webhooks`): what a bank's subscription is told.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `applicant.eligible`, `applicant.updated`, `applicant.left`: an applicant entered, changed
/// in, or left the bank's pull. Thin on purpose: read the applicant with an incremental pull
/// (`updated_since` = `updated_at`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicantEvent {
    /// The application.
    pub application_id: i64,
    /// Its programme.
    pub programme_id: i64,
    /// The applicant.
    pub business_id: i64,
    /// The pull's `updated_at` of this change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Why it left (`applicant.left` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_reason: Option<super::feed::LeftReason>,
}

/// `application.status_changed`: one of the bank's applications moved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusChangedEvent {
    /// The application.
    pub application_id: i64,
    /// Its programme.
    pub programme_id: i64,
    /// The applicant.
    pub business_id: i64,
    /// The status before.
    pub from: crate::domain::financing::ApplicationStatus,
    /// The status now.
    pub to: crate::domain::financing::ApplicationStatus,
    /// When it changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}
