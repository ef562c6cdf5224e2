//! Retail partners, their outlets, the curation of UMKM products and their placement in
//! outlets: the article's 16 products from 13 IKM in 51 outlets.
//!
//! A `retail` user is bound to one partner: it sees and changes only that partner's outlets,
//! curations and placements; anything else answers 404. Bank users read none of this (404),
//! and their writes are refused by role (403) before any record is looked up.

mod curations;
mod outlets;
mod partners;
mod placements;

pub(crate) use outlets::OutletSort;
pub(crate) use placements::PlacementSort;
pub(crate) use placements::delete_with_products as delete_placements_of_products;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(partners::list_retail_partners)
        .service(partners::create_retail_partner)
        .service(partners::get_retail_partner)
        .service(partners::update_retail_partner)
        .service(outlets::list_outlets)
        .service(outlets::create_outlet)
        .service(outlets::get_outlet)
        .service(outlets::update_outlet)
        .service(outlets::delete_outlet)
        .service(curations::list_curations)
        .service(curations::create_curation)
        .service(curations::get_curation)
        .service(curations::decide_curation)
        .service(placements::list_placements)
        .service(placements::create_placement)
        .service(placements::update_placement)
        .service(placements::delete_placement);
}

/// The partner a caller is confined to: `Some` for retail users, `None` for the office.
/// Bank users are refused here with 404.
fn scope(caller: &Caller) -> AppResult<Option<i64>> {
    match caller.role {
        Role::Bank => Err(AppError::NotFound),
        Role::Retail => caller.retail_partner_id.map(Some).ok_or(AppError::NotFound),
        _ => Ok(None),
    }
}

/// Outlets, curation decisions and placements are written by the office and by retail users.
fn may_write(caller: &Caller) -> AppResult<()> {
    caller.require(&[Role::Admin, Role::Officer, Role::Retail])
}
