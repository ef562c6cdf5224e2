//! Regions: Kemendagri administrative codes (province, regency, district). Reference data.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::db::DbConnection;
use crate::db::schema::regions;
use crate::error::AppResult;
use crate::http::list::{self, Page, PageParams, Sort};
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_regions);
}

/// The level of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Provinsi, e.g. `35` Jawa Timur.
    Province,
    /// Kabupaten or kota, e.g. `35.24` Lamongan.
    Regency,
    /// Kecamatan, e.g. `35.24.05` Babat.
    District,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::Regency => "regency",
            Level::District => "district",
        }
    }
}

/// A region.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = regions)]
pub struct Region {
    /// Kemendagri code.
    #[schema(example = "35.24.05")]
    pub code: String,
    /// Name.
    #[schema(example = "Babat")]
    pub name: String,
    /// `province`, `regency` or `district`.
    #[schema(example = "district")]
    pub level: String,
    /// The code of the region this one is part of.
    #[schema(example = "35.24")]
    pub parent_code: Option<String>,
}

/// Filters and paging of the region list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegionQuery {
    /// Only regions of this level.
    pub level: Option<Level>,
    /// Only regions directly under this code (`35.24` for Lamongan's districts).
    pub parent: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Whether `code` is a district (for validating `district_code`).
pub fn is_district(conn: &mut DbConnection, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        regions::table.filter(regions::code.eq(code)).filter(regions::level.eq(Level::District.as_str())),
    ))
    .get_result(conn)
}

/// List regions, ordered by code.
#[utoipa::path(
    tag = "regions",
    security(("bearer" = [])),
    params(RegionQuery),
    responses((status = 200, description = "A page of regions, by code", body = Page<Region>)),
)]
#[get("/regions")]
pub async fn list_regions(
    state: web::Data<AppState>,
    _caller: Caller,
    query: web::Query<RegionQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner();
    let sort = Sort::<RegionOrder>::parse(None, "code")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), None);
    let page = move |conn: &mut DbConnection, after: Option<&str>, limit| {
        let mut q = regions::table.into_boxed();
        if let Some(level) = query.level {
            q = q.filter(regions::level.eq(level.as_str()));
        }
        if let Some(parent) = query.parent.clone() {
            q = q.filter(regions::parent_code.eq(parent));
        }
        list::keyset(conn, q.select(Region::as_select()), &sort, after, limit)
    };
    list::json_page(&state.pool, params, page, |_| Ok(0)).await
}

crate::key_order!(RegionOrder, regions, Region, code, Text);
