//! Product and retail figures: products per category and the curated ones, and per retail
//! partner its outlets, curations and placements. A retail user sees its own partner's.

use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::db::DbConnection;
use crate::db::schema::retail_partners;
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::state::AppState;
use crate::summary::Figure;

use super::answer;
use super::overview::{Figures, ProductSection, product_section, retail_section};

/// Product figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductStats {
    /// Products, curated products and the IKM behind them.
    #[serde(flatten)]
    pub totals: ProductSection,
    /// Products per category.
    pub by_category: Vec<CategoryRow>,
}

/// Products of one category.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryRow {
    /// Category.
    #[schema(example = "food")]
    pub category: String,
    /// Products.
    pub count: i64,
}

/// Product figures: totals, curated products and the IKM behind them (for a retail user, its
/// own partner's curations), and products per category. Bank users get 404.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "Product figures, or CSV of the categories", content((ProductStats = "application/json"), (String = "text/csv", example = json!("category,count\nagriculture,188\nbeverage,89\n")), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/stats/products")]
pub async fn product_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<HttpResponse> {
    caller.hidden_from(&[Role::Bank])?;
    let retail = caller.retail_scope();
    answer(&req, &state, Some("by_category"), move |conn| product_stats(conn, retail)).await
}

/// The product figures, with the curations of every retail partner or of `retail` only.
fn product_stats(conn: &mut DbConnection, retail: Option<i64>) -> AppResult<ProductStats> {
    let totals = product_section(&Figures::load(conn)?, retail);
    // From the statistics' summary, deltas included.
    let rows = crate::summary::counts(conn, "figure = 'products'")?;
    Ok(ProductStats {
        totals,
        by_category: rows.into_iter().map(|r| CategoryRow { category: r.item, count: r.n }).collect(),
    })
}

/// One retail partner's figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetailRow {
    /// The partner.
    pub retail_partner_id: i64,
    /// Its brand.
    pub brand: String,
    /// Its outlets.
    pub outlets: i64,
    /// Its outlets with a product listed now.
    pub outlets_stocking_curated: i64,
    /// Products that passed its curation.
    pub curated_passed: i64,
    /// IKM businesses with a product that passed its curation.
    pub curated_ikm_businesses: i64,
    /// Products listed in its outlets now.
    pub products_listed: i64,
}

/// Retail figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetailStats {
    /// One row per partner (a retail user's own only).
    pub rows: Vec<RetailRow>,
}

/// Retail figures per partner: outlets, outlets stocking curated products, curated products and
/// the IKM behind them, products listed. A retail user sees its own partner; bank users get 404.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses((status = 200, description = "One row per partner, or CSV", content((RetailStats = "application/json"), (String = "text/csv", example = json!("retail_partner_id,brand,outlets,outlets_stocking_curated,curated_passed,curated_ikm_businesses,products_listed\n1,Indomaret,51,51,16,13,16\n")), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/stats/retail")]
pub async fn retail_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> AppResult<HttpResponse> {
    caller.hidden_from(&[Role::Bank])?;
    let own = caller.retail_scope();
    answer(&req, &state, Some("rows"), move |conn| retail_stats(conn, own)).await
}

/// The figures of every retail partner, or of a retail user's own partner (`own`) only.
fn retail_stats(conn: &mut DbConnection, own: Option<i64>) -> AppResult<RetailStats> {
    let mut q = retail_partners::table.into_boxed();
    if let Some(own) = own {
        q = q.filter(retail_partners::id.eq(own));
    }
    let partners: Vec<(i64, String)> =
        q.order(retail_partners::id).select((retail_partners::id, retail_partners::brand)).load(conn)?;
    let mut rows = Vec::new();
    let figures = Figures::load(conn)?;
    for (id, brand) in partners {
        let (products, retail) = (product_section(&figures, Some(id)), retail_section(&figures, Some(id)));
        let products_listed = figures.get(Figure::ProductsListed, id, "");
        rows.push(RetailRow {
            retail_partner_id: id,
            brand,
            outlets: retail.outlets,
            outlets_stocking_curated: retail.outlets_stocking_curated,
            curated_passed: products.curated_passed,
            curated_ikm_businesses: products.curated_ikm_businesses,
            products_listed,
        });
    }
    Ok(RetailStats { rows })
}
