//! The dashboard: one object with a section per area (businesses, products, retail, financing,
//! trainings), each computed by the database and limited to what the caller may see.

use std::collections::HashMap;

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
use crate::summary::Figure;

use super::answer;
use super::financing::{FinancingGroupKey, FinancingKey, financing_rows};

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

/// The figures of the sections `role` may see: a bank's financing is its own (`bank`), a retail
/// partner's curations, outlets and placements its own (`retail`).
fn overview(
    conn: &mut DbConnection,
    role: Role,
    bank: Option<i64>,
    retail: Option<i64>,
) -> AppResult<Overview> {
    let mut out = Overview::default();
    let figures = Figures::load(conn)?;
    if role != Role::Bank {
        out.businesses = Some(business_section(conn)?);
        out.products = Some(product_section(&figures, retail));
        out.retail = Some(retail_section(&figures, retail));
    }
    if role != Role::Retail {
        out.financing = Some(financing_section(conn, bank)?);
    }
    if !matches!(role, Role::Bank | Role::Retail) {
        let registrations = |status| figures.get(Figure::Registrations, 0, status);
        out.trainings = Some(TrainingTotals {
            trainings: figures.get(Figure::Trainings, 0, ""),
            registrants: figures.sum(Figure::Registrations, Some(0)),
            selected: registrations("selected") + registrations("attended"),
            attended: registrations("attended"),
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

/// The counts of the statistics' summary that the overview and the retail figures read: every
/// figure but the registrations per training, by figure, scope and item, deltas included. One
/// query, a few dozen rows.
pub(super) struct Figures(HashMap<(String, i64, String), i64>);

impl Figures {
    pub(super) fn load(conn: &mut DbConnection) -> QueryResult<Figures> {
        let rows = crate::summary::counts(conn, "figure <> 'registrations' OR scope = 0")?;
        Ok(Figures(rows.into_iter().map(|c| ((c.figure, c.scope, c.item), c.n)).collect()))
    }

    /// The sum of `figure` over the scope `scope` (every scope when `None`) and every item.
    pub(super) fn sum(&self, figure: Figure, scope: Option<i64>) -> i64 {
        self.0
            .iter()
            .filter(|((f, s, _), _)| f == figure.as_str() && scope.is_none_or(|scope| *s == scope))
            .map(|(_, n)| n)
            .sum()
    }

    /// `figure` in `scope` for `item`.
    pub(super) fn get(&self, figure: Figure, scope: i64, item: &str) -> i64 {
        self.0.get(&(figure.as_str().to_owned(), scope, item.to_owned())).copied().unwrap_or(0)
    }
}

/// Products, and the curated ones of every retail partner (scope 0) or of `retail` only.
pub(super) fn product_section(figures: &Figures, retail: Option<i64>) -> ProductSection {
    let scope = retail.unwrap_or(0);
    ProductSection {
        total: figures.sum(Figure::Products, Some(0)),
        curated_passed: figures.get(Figure::CuratedPassed, scope, ""),
        curated_ikm_businesses: figures.get(Figure::CuratedIkmBusinesses, scope, ""),
    }
}

/// The outlets of every retail partner or of `retail` only, and those stocking a product now.
pub(super) fn retail_section(figures: &Figures, retail: Option<i64>) -> RetailSection {
    RetailSection {
        outlets: figures.sum(Figure::Outlets, retail),
        outlets_stocking_curated: figures.get(Figure::StockingOutlets, retail.unwrap_or(0), ""),
    }
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
        content((Overview = "application/json"), (String = "text/csv", example = json!("metric,value\nbusinesses.total,540\nbusinesses.active,496\n")), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
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
