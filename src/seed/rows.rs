//! Whole rows with their ids, as the seeder writes them, and the one way it writes them:
//! `COPY … FROM STDIN (FORMAT binary)` on PostgreSQL, multi-row `INSERT` on SQLite.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{
    applications, businesses, consents, curations, outlets, persons, placements, products, registrations,
    trainings,
};

pub(crate) use crate::db::write_rows;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = persons, treat_none_as_default_value = false)]
pub struct PersonRow {
    pub id: i64,
    pub name: String,
    pub nik: String,
    pub nik_index: String,
    pub phone: String,
    pub email: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

/// A person's consent to every partner bank (the database numbers it).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = consents, treat_none_as_default_value = false)]
pub struct ConsentRow {
    pub person_id: i64,
    pub purpose: &'static str,
    pub bank_partner_id: Option<i64>,
    pub channel: &'static str,
    pub evidence: String,
    pub text_version: &'static str,
    pub given_at: NaiveDateTime,
    pub recorded_by: Option<i64>,
    pub recorded_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = businesses, treat_none_as_default_value = false)]
pub struct BusinessRow {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub nib: Option<String>,
    pub npwp: Option<String>,
    pub kbli: String,
    pub kbli_division: i32,
    pub district_code: String,
    pub village: Option<String>,
    pub village_code: Option<String>,
    pub address: String,
    pub capital_idr: Option<i64>,
    pub annual_revenue_idr: Option<i64>,
    pub employees: Option<i32>,
    pub established_on: Option<NaiveDate>,
    pub status: String,
    pub consented_to_bank_sharing_at: Option<NaiveDateTime>,
    pub scale: Option<String>,
    pub scale_basis: Option<String>,
    pub is_ikm: bool,
    pub industry_scale: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
    /// The owner's name and sealed fields, copied from the person (`Seeder::owned`).
    pub person_name: String,
    pub person_nik: String,
    pub person_phone: String,
    pub person_email: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = products, treat_none_as_default_value = false)]
pub struct ProductRow {
    pub id: i64,
    pub business_id: i64,
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub price_idr: Option<i64>,
    pub unit: Option<String>,
    pub pirt_number: Option<String>,
    pub bpom_number: Option<String>,
    pub halal_certificate: Option<String>,
    pub sni_certified: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outlets, treat_none_as_default_value = false)]
pub struct OutletRow {
    pub id: i64,
    pub retail_partner_id: i64,
    pub code: String,
    pub name: String,
    pub address: Option<String>,
    pub district_code: String,
    pub opened_on: Option<NaiveDate>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = curations, treat_none_as_default_value = false)]
pub struct CurationRow {
    pub id: i64,
    pub product_id: i64,
    pub retail_partner_id: i64,
    pub status: String,
    pub notes: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub decided_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = placements, treat_none_as_default_value = false)]
pub struct PlacementRow {
    pub id: i64,
    pub product_id: i64,
    pub outlet_id: i64,
    pub listed_on: NaiveDate,
    pub delisted_on: Option<NaiveDate>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = applications, treat_none_as_default_value = false)]
pub struct ApplicationRow {
    pub id: i64,
    pub business_id: i64,
    pub programme_id: i64,
    pub bank_partner_id: i64,
    pub amount_requested_idr: i64,
    pub purpose: Option<String>,
    pub status: String,
    pub amount_approved_idr: Option<i64>,
    pub bank_reference: Option<String>,
    pub financing_ends_on: Option<NaiveDate>,
    pub decided_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
    pub consented: bool,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = trainings, treat_none_as_default_value = false)]
pub struct TrainingRow {
    pub id: i64,
    pub title: String,
    pub theme: Option<String>,
    pub venue: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub capacity: i32,
    pub registration_closes_at: Option<NaiveDateTime>,
    pub selected_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = registrations, treat_none_as_default_value = false)]
pub struct RegistrationRow {
    pub id: i64,
    pub training_id: i64,
    pub business_id: i64,
    pub status: String,
    pub registered_at: NaiveDateTime,
    pub selection_rank: Option<i32>,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

/// Rows of one transaction.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) businesses: Vec<BusinessRow>,
    pub(crate) products: Vec<ProductRow>,
    pub(crate) curations: Vec<CurationRow>,
    pub(crate) placements: Vec<PlacementRow>,
    pub(crate) applications: Vec<ApplicationRow>,
}
