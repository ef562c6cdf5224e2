//! The dashboard: one object with a section per area (businesses, products, retail, financing,
//! trainings), each computed by the database and limited to what the caller may see.

use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::db::{self, Backend, DbConnection};
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::state::AppState;

use super::financing::{FinancingGroupKey, FinancingKey, financing_rows};
use super::trainings::training_stats;
use super::{answer, count};

/// Businesses by scale.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ByScale {
    /// Mikro.
    pub mikro: i64,
    /// Kecil.
    pub kecil: i64,
    /// Menengah.
    pub menengah: i64,
    /// Besar.
    pub besar: i64,
    /// Neither revenue nor capital known.
    pub unknown: i64,
}

/// The businesses section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct BusinessSection {
    /// Businesses.
    pub total: i64,
    /// Active ones.
    pub active: i64,
    /// IKM (manufacturing) ones.
    pub ikm: i64,
    /// By PP 7/2021 scale.
    pub by_scale: ByScale,
}

/// The products section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ProductSection {
    /// Products.
    pub total: i64,
    /// Products that passed a curation (of the caller's partner, for retail users).
    pub curated_passed: i64,
    /// IKM businesses with a product that passed a curation.
    pub curated_ikm_businesses: i64,
}

/// The retail section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RetailSection {
    /// Outlets.
    pub outlets: i64,
    /// Outlets with at least one product listed now.
    pub outlets_stocking_curated: i64,
}

/// The financing section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct FinancingSection {
    /// Applications.
    pub applications: i64,
    /// Applications by status.
    #[schema(value_type = Object)]
    pub by_status: serde_json::Map<String, Value>,
    /// Sum requested, rupiah.
    pub requested_idr: i64,
    /// Sum approved, rupiah.
    pub approved_idr: i64,
}

/// The dashboard's figures. Sections outside the caller's scope are `null`: a bank sees its own
/// financing; a retail partner its own curations, outlets and placements.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    /// Businesses (not for bank users).
    pub businesses: Option<BusinessSection>,
    /// Products (not for bank users).
    pub products: Option<ProductSection>,
    /// Retail (not for bank users).
    pub retail: Option<RetailSection>,
    /// Financing (not for retail users).
    pub financing: Option<FinancingSection>,
    /// Trainings (office staff and viewers).
    pub trainings: Option<TrainingTotals>,
}

/// The trainings section of the overview.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct TrainingTotals {
    /// Trainings.
    pub trainings: i64,
    /// Registrations.
    pub registrants: i64,
    /// Selected or attended.
    pub selected: i64,
    /// Attended.
    pub attended: i64,
}

/// The partner clause of a statistic: `AND <column> = <id>` for a scoped caller. The id is a
/// number from the caller's own account, never client text.
fn partner_clause(column: &str, partner: Option<i64>) -> String {
    partner.map_or(String::new(), |id| format!(" AND {column} = {id}"))
}

/// The figures of the sections `role` may see: a bank's financing is its own (`bank`), a retail
/// partner's curations, outlets and placements its own (`retail`).
fn overview(
    conn: &mut DbConnection,
    role: Role,
    bank: Option<i64>,
    retail: Option<i64>,
) -> AppResult<Overview> {
    let mut out = Overview::default();
    if role != Role::Bank {
        out.businesses = Some(business_section(conn)?);
        out.products = Some(product_section(conn, retail)?);
        out.retail = Some(retail_section(conn, retail)?);
    }
    if role != Role::Retail {
        out.financing = Some(financing_section(conn, bank)?);
    }
    if !matches!(role, Role::Bank | Role::Retail) {
        let t = training_stats(conn)?;
        out.trainings = Some(TrainingTotals {
            trainings: t.trainings,
            registrants: t.registrants,
            selected: t.selected,
            attended: t.attended,
        });
    }
    Ok(out)
}

/// Businesses from the statistics' summary: counts per scale with the active and IKM counts
/// beside.
fn business_section(conn: &mut DbConnection) -> QueryResult<BusinessSection> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        scale: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        active: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        ikm: i64,
    }
    let ikm = if db::backend(conn) == Backend::Postgres { "is_ikm" } else { "is_ikm = 1" };
    let by: Vec<Row> = diesel::sql_query(format!(
        "SELECT scale, CAST(SUM(n) AS BIGINT) AS n, \
         CAST(SUM(CASE WHEN status = 'active' THEN n ELSE 0 END) AS BIGINT) AS active, \
         CAST(SUM(CASE WHEN {ikm} THEN n ELSE 0 END) AS BIGINT) AS ikm \
         FROM {} s GROUP BY scale",
        crate::summary::businesses_for(&["scale", "is_ikm", "status"])
    ))
    .load(conn)?;
    let mut section = BusinessSection::default();
    for Row { scale, n, active, ikm } in by {
        section.total += n;
        section.active += active;
        section.ikm += ikm;
        let slot = match scale.as_str() {
            "mikro" => &mut section.by_scale.mikro,
            "kecil" => &mut section.by_scale.kecil,
            "menengah" => &mut section.by_scale.menengah,
            "besar" => &mut section.by_scale.besar,
            _ => &mut section.by_scale.unknown,
        };
        *slot += n;
    }
    Ok(section)
}

/// Products, and the curated ones of every retail partner or of `retail` only.
pub(super) fn product_section(conn: &mut DbConnection, retail: Option<i64>) -> QueryResult<ProductSection> {
    let passed = format!("c.status = 'passed'{}", partner_clause("c.retail_partner_id", retail));
    let ikm_true = if db::backend(conn) == Backend::Postgres { "b.is_ikm" } else { "b.is_ikm = 1" };
    Ok(ProductSection {
        total: count(
            conn,
            &format!(
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM {} s WHERE figure = 'products'",
                crate::summary::counts_source()
            ),
        )?,
        curated_passed: count(
            conn,
            &format!("SELECT COUNT(DISTINCT c.product_id) AS n FROM curations c WHERE {passed}"),
        )?,
        curated_ikm_businesses: count(
            conn,
            &format!(
                "SELECT COUNT(DISTINCT p.business_id) AS n FROM products p \
                 JOIN businesses b ON b.id = p.business_id \
                 WHERE p.id IN (SELECT c.product_id FROM curations c WHERE {passed}) AND {ikm_true}"
            ),
        )?,
    })
}

/// The outlets of every retail partner or of `retail` only, and those stocking a product now.
pub(super) fn retail_section(conn: &mut DbConnection, retail: Option<i64>) -> QueryResult<RetailSection> {
    Ok(RetailSection {
        outlets: count(
            conn,
            &format!(
                "SELECT COUNT(*) AS n FROM outlets o WHERE 1 = 1{}",
                partner_clause("o.retail_partner_id", retail)
            ),
        )?,
        outlets_stocking_curated: count(
            conn,
            &format!(
                "SELECT COUNT(DISTINCT pl.outlet_id) AS n FROM placements pl JOIN outlets o ON o.id = pl.outlet_id \
                 WHERE pl.delisted_on IS NULL{}",
                partner_clause("o.retail_partner_id", retail)
            ),
        )?,
    })
}

/// Applications of every bank or of `bank` only, by status.
fn financing_section(conn: &mut DbConnection, bank: Option<i64>) -> AppResult<FinancingSection> {
    let mut section = FinancingSection::default();
    for row in financing_rows(conn, FinancingKey::Status, bank)? {
        section.applications += row.applications;
        section.requested_idr += row.requested_idr;
        section.approved_idr += row.approved_idr;
        let status = match row.key {
            FinancingGroupKey::Status(status) => status,
            FinancingGroupKey::Id(id) => id.to_string(),
        };
        section.by_status.insert(status, Value::from(row.applications));
    }
    Ok(section)
}

/// The dashboard: one object with a section per area, each computed by the database.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "The figures, or CSV lines of metric and value",
        content((Overview = "application/json"), (String = "text/csv")))),
)]
#[get("/stats/overview")]
pub async fn overview_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<HttpResponse> {
    let (role, bank, retail) = (caller.role, caller.bank_scope(), caller.retail_scope());
    answer(&req, &state, None, move |conn| overview(conn, role, bank, retail)).await
}
