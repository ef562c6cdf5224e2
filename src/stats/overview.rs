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

/// Businesses in one pass: counts per scale with the active and IKM counts beside.
fn business_section(conn: &mut DbConnection) -> QueryResult<BusinessSection> {
    use crate::db::schema::businesses;
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;
    let by: Vec<(Option<String>, i64, i64, i64)> = businesses::table
        .group_by(businesses::scale)
        .select((
            businesses::scale,
            sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"),
            sql::<BigInt>("CAST(SUM(CASE WHEN businesses.status = 'active' THEN 1 ELSE 0 END) AS BIGINT)"),
            sql::<BigInt>("CAST(SUM(CASE WHEN businesses.is_ikm THEN 1 ELSE 0 END) AS BIGINT)"),
        ))
        .load(conn)?;
    let mut section = BusinessSection::default();
    for (scale, n, active, ikm) in by {
        section.total += n;
        section.active += active;
        section.ikm += ikm;
        let slot = match scale.as_deref() {
            Some("mikro") => &mut section.by_scale.mikro,
            Some("kecil") => &mut section.by_scale.kecil,
            Some("menengah") => &mut section.by_scale.menengah,
            Some("besar") => &mut section.by_scale.besar,
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
        total: count(conn, "SELECT COUNT(*) AS n FROM products")?,
        curated_passed: count(
            conn,
            &format!("SELECT COUNT(DISTINCT c.product_id) AS n FROM curations c WHERE {passed}"),
        )?,
        curated_ikm_businesses: count(
            conn,
            &format!(
                "SELECT COUNT(DISTINCT p.business_id) AS n FROM curations c JOIN products p ON p.id = c.product_id \
                 JOIN businesses b ON b.id = p.business_id WHERE {passed} AND {ikm_true}"
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
