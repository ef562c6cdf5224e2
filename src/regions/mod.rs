//! Regions: Kemendagri administrative codes, province to village (Kepmendagri
//! 300.2.2-2138/2025, `tree`). Reference data; the installation's service area is marked.

pub mod tree;
pub mod villages;

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
    cfg.service(list_regions).service(get_region);
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
    /// Desa or kelurahan, e.g. `35.24.05.2001` Bedahan.
    Village,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::Regency => "regency",
            Level::District => "district",
            Level::Village => "village",
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
    /// `province`, `regency`, `district` or `village`.
    #[schema(example = "district")]
    pub level: String,
    /// The code of the region this one is part of.
    #[schema(example = "35.24")]
    pub parent_code: Option<String>,
    /// The latest decree loaded no longer lists this code; records that use it keep it.
    #[schema(example = false)]
    pub retired: bool,
    /// Part of the installation's service area (`SERVICE_AREA`): its businesses and outlets
    /// lie in such districts.
    #[schema(example = true)]
    #[diesel(column_name = served)]
    pub in_service_area: bool,
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
    /// Only the region of this code.
    pub code: Option<String>,
    /// Only regions whose name holds this text, case, accents and apostrophes folded
    /// (`q=sidomulyo`); at most 200 characters.
    pub q: Option<String>,
    /// `true`: only the service area's regions (`SERVICE_AREA`: its regencies or provinces and
    /// everything under them); `false`: only the others.
    pub in_service_area: Option<bool>,
    /// `true`: the page carries `total`, the number of regions the filters keep.
    pub count: Option<bool>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Whether `code` is a district of the service area (for validating `district_code`).
pub fn is_district(conn: &mut DbConnection, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        regions::table
            .filter(regions::code.eq(code))
            .filter(regions::level.eq(Level::District.as_str()))
            .filter(regions::served.eq(true)),
    ))
    .get_result(conn)
}

/// The district `six` (a NIK's first six digits, `352405`) names, when the tree has it.
pub fn district_of_nik(conn: &mut DbConnection, six: &str) -> QueryResult<Option<Region>> {
    if six.len() != 6 || !six.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let code = format!("{}.{}.{}", &six[..2], &six[2..4], &six[4..]);
    regions::table
        .find(code)
        .filter(regions::level.eq(Level::District.as_str()))
        .select(Region::as_select())
        .first(conn)
        .optional()
}

/// The districts of the service area, by code.
pub fn served_districts(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    regions::table
        .filter(regions::level.eq(Level::District.as_str()))
        .filter(regions::served.eq(true))
        .order(regions::code)
        .select((regions::code, regions::name))
        .load(conn)
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
    let query = std::sync::Arc::new(query.into_inner());
    list::check_filters(query.q.as_deref(), None)?;
    let sort = Sort::<RegionOrder>::parse(None, "code")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let counted = query.clone();
    let page = move |conn: &mut DbConnection, after: Option<&str>, limit| {
        list::keyset(conn, query.filtered().select(Region::as_select()), &sort, after, limit)
    };
    let count = move |conn: &mut DbConnection| Ok(counted.filtered().count().get_result(conn)?);
    list::json_page(&state.pool, params, page, count).await
}

impl RegionQuery {
    /// The regions the query's filters keep.
    fn filtered(&self) -> regions::BoxedQuery<'static, crate::db::Db> {
        let mut q = regions::table.into_boxed();
        if let Some(level) = self.level {
            q = q.filter(regions::level.eq(level.as_str()));
        }
        if let Some(parent) = self.parent.clone() {
            q = q.filter(regions::parent_code.eq(parent));
        }
        if let Some(code) = self.code.clone() {
            q = q.filter(regions::code.eq(code));
        }
        if let Some(text) = self.q.as_deref() {
            q = q.filter(
                regions::name_folded.like(crate::db::text::like_pattern(&tree::fold(text))).escape('\\'),
            );
        }
        if let Some(served) = self.in_service_area {
            q = q.filter(regions::served.eq(served));
        }
        q
    }
}

/// One region by its code.
#[utoipa::path(
    tag = "regions",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Kemendagri code, e.g. `35.24.05.2001`")),
    responses((status = 200, description = "The region", body = Region)),
)]
#[get("/regions/{code}")]
pub async fn get_region(
    state: web::Data<AppState>,
    _caller: Caller,
    code: web::Path<String>,
) -> AppResult<HttpResponse> {
    let code = code.into_inner();
    let region = crate::db::run(&state.pool, move |conn| {
        Ok(regions::table.find(code).select(Region::as_select()).first(conn).optional()?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(region.ok_or(crate::error::AppError::NotFound)?))
}

crate::key_order!(RegionOrder, regions, Region, code, Text);
