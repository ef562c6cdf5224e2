//! Trainings (pelatihan): programmes, the businesses that register, and the selection that
//! fills the seats. Attendance feeds the KUR super mikro eligibility waiver. Office staff
//! write them; bank and retail users do not see them (404 on reads; their writes are refused
//! by role, 403).

pub mod registrations;
pub mod selection;
#[allow(clippy::module_inception)]
pub mod trainings;

pub use registrations::{
    Registration, RegistrationInput, RegistrationPatch, RegistrationRow, RegistrationStatus,
};
pub use selection::SelectionResult;
pub use trainings::{MAX_NESTED_REGISTRATIONS, Training, TrainingInput, TrainingRow};

use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::role::Role;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(trainings::list_trainings)
        .service(trainings::create_training)
        .service(trainings::get_training)
        .service(trainings::update_training)
        .service(registrations::list_registrations)
        .service(registrations::create_registration)
        .service(registrations::update_registration)
        .service(selection::select_participants);
}

/// Trainings are the office's business: bank and retail users do not see them (404).
pub(super) const HIDDEN_FROM: &[Role] = &[Role::Bank, Role::Retail];
