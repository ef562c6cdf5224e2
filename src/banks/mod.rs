//! Partner banks, their financing programmes (KUR above all), the businesses' applications,
//! their eligibility, and the banks' pull of eligible applicants.
//!
//! A `bank` user is bound to one bank: it sees that bank's programmes and the applications to
//! them — only of owners who consent to sharing with that bank — and nothing else (404).

pub mod applications;
pub mod consented;
pub mod events;
pub mod feed;
pub mod partners;
pub mod programmes;
pub mod pull;
pub mod transitions;
pub(crate) mod verdicts;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(partners::list_bank_partners)
        .service(partners::create_bank_partner)
        .service(pull::eligible_applicants)
        .service(partners::get_bank_partner)
        .service(partners::update_bank_partner)
        .service(programmes::list_programmes)
        .service(programmes::create_programme)
        .service(programmes::get_programme)
        .service(programmes::update_programme)
        .service(applications::list_applications)
        .service(applications::create_application)
        .service(applications::get_application)
        .service(transitions::update_application)
        .service(applications::list_business_applications);
}

/// The bank a caller is confined to: `Some` for bank users, `None` for office staff and viewers.
/// Retail users see none of this (404).
fn scope(caller: &Caller) -> AppResult<Option<i64>> {
    match caller.role {
        Role::Retail => Err(AppError::NotFound),
        Role::Bank => caller.bank_partner_id.map(Some).ok_or(AppError::NotFound),
        _ => Ok(None),
    }
}
