//! Products: what the businesses make, with their food-safety and standards certifications.
//! Office staff write them; every other role except bank users reads them.

mod model;

pub(crate) use model::delete_dependants;
pub use model::{Category, Product, ProductInput, ProductRow};

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::db::schema::products;
use crate::db::text::{like_pattern, lower};
use crate::db::{self, Db, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, ok};
use crate::http::idempotency::IdempotencyKey;
use crate::http::list::{self, Page, PageParams, Sort, SortField};
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_business_products)
        .service(list_products)
        .service(create_product)
        .service(get_product)
        .service(update_product)
        .service(delete_product);
}

/// Bank users see products only through their applicants; for them products do not exist (404).
const HIDDEN_FROM: &[Role] = &[Role::Bank];

/// The columns a product list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSort {
    /// `id`.
    Id,
    /// `name`.
    Name,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `business_id`.
    BusinessId,
}

impl SortField for ProductSort {
    type Table = products::table;
    type Row = ProductRow;
    const ID: Self = ProductSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[
        ("id", ProductSort::Id),
        ("name", ProductSort::Name),
        ("created_at", ProductSort::CreatedAt),
        ("updated_at", ProductSort::UpdatedAt),
        ("business_id", ProductSort::BusinessId),
    ];

    crate::sort_columns!(products;
        ProductSort::Id => (id, Int),
        ProductSort::Name => (name, Text),
        ProductSort::CreatedAt => (created_at, Time),
        ProductSort::UpdatedAt => (updated_at, Time),
        ProductSort::BusinessId => (business_id, Int),
    );
}

/// Filters, sort and paging of the product list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Products of this business.
    pub business_id: Option<i64>,
    /// Category.
    pub category: Option<Category>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// With (`true`) or without (`false`) a P-IRT number.
    pub has_pirt: Option<bool>,
    /// With or without a BPOM number.
    pub has_bpom: Option<bool>,
    /// With or without a halal certificate.
    pub has_halal: Option<bool>,
    /// SNI certified or not.
    pub sni_certified: Option<bool>,
    /// Changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Comma-separated keys, `-` for descending: `id`, `name`, `created_at`, `updated_at`,
    /// `business_id` (default `id`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50). Ignored by CSV and NDJSON exports.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total` of matching rows.
    pub count: Option<bool>,
}

impl ProductQuery {
    fn query(&self) -> AppResult<products::BoxedQuery<'static, Db>> {
        use products::dsl as p;
        list::check_filters(self.q.as_deref(), None)?;
        let mut q = products::table.into_boxed();
        if let Some(business) = self.business_id {
            q = q.filter(p::business_id.eq(business));
        }
        if let Some(category) = self.category {
            q = q.filter(p::category.eq(category.as_str()));
        }
        if let Some(text) = self.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            q = q.filter(lower(p::name).like(like_pattern(text)).escape('\\'));
        }
        macro_rules! presence {
            ($flag:expr, $col:expr) => {
                match $flag {
                    Some(true) => q = q.filter($col.is_not_null()),
                    Some(false) => q = q.filter($col.is_null()),
                    None => {}
                }
            };
        }
        presence!(self.has_pirt, p::pirt_number);
        presence!(self.has_bpom, p::bpom_number);
        presence!(self.has_halal, p::halal_certificate);
        if let Some(sni) = self.sni_certified {
            q = q.filter(p::sni_certified.eq(sni));
        }
        if let Some(since) = self.updated_since {
            q = q.filter(p::updated_at.ge(since.naive_utc()));
        }
        Ok(q)
    }
}

/// One page of the products `query` selects, after the cursor `after`.
fn page(
    conn: &mut DbConnection,
    query: &ProductQuery,
    sort: &Sort<ProductSort>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<Product>, Option<String>)> {
    let q = query.query()?;
    let (rows, next) = list::keyset(conn, q.select(ProductRow::as_select()), sort, after, limit)?;
    Ok((rows.into_iter().map(Product::from).collect(), next))
}

const CSV_HEADER: &str = "id,business_id,name,category,description,price_idr,unit,pirt_number,bpom_number,\
halal_certificate,sni_certified,created_at,updated_at,version\n";

async fn list(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    query: ProductQuery,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    query.query()?;
    let sort = Sort::<ProductSort>::parse(query.sort.as_deref(), "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let counted = query.clone();
    list::respond(
        req,
        &state.pool,
        params,
        CSV_HEADER,
        move |conn, after, limit| page(conn, &query, &sort, after, limit),
        move |conn| Ok(counted.query()?.count().get_result(conn)?),
    )
    .await
}

/// List products (or export them all with `Accept: text/csv` or `application/x-ndjson`).
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(ProductQuery),
    responses((status = 200, description = "A page of products, or all of them as CSV or NDJSON",
        content((Page<Product> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/products")]
pub async fn list_products(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ProductQuery>,
) -> AppResult<HttpResponse> {
    list(&req, &state, &caller, query.into_inner()).await
}

/// Filters, sort and paging of a business's products.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BusinessProductsQuery {
    /// Comma-separated sort keys (as for `/products`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

/// List the products of one business (404 if there is no such business, or for a retail user
/// one its partner curates no product of).
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The business's id"), BusinessProductsQuery),
    responses((status = 200, description = "A page of the business's products",
        content((Page<Product> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/businesses/{id}/products")]
pub async fn list_business_products(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<BusinessProductsQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let (id, curated_by) = (id.into_inner(), caller.retail_scope());
    // A business a retail user does not curate from is not there for it, as `GET /businesses/{id}`.
    let exists = db::run(&state.pool, move |conn| {
        Ok(model::business_exists(conn, id)?
            && curated_by.map_or(Ok(true), |r| model::curates(conn, r, id))?)
    })
    .await?;
    if !exists {
        return Err(AppError::NotFound);
    }
    let q = query.into_inner();
    let query = ProductQuery {
        business_id: Some(id),
        sort: q.sort,
        limit: q.limit,
        cursor: q.cursor,
        count: q.count,
        ..Default::default()
    };
    list(&req, &state, &caller, query).await
}

/// Create a product. `Idempotency-Key` makes a retried create return the first answer.
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer")),
    request_body = ProductInput,
    responses((status = 201, description = "The new product", body = Product,
        headers(("Location" = String, description = "The product's URL"), ("ETag" = String, description = "The version")))),
)]
#[post("/products")]
pub async fn create_product(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let input: ProductInput = crate::http::parse_json(body.0.to_string().as_bytes())?;
    let user = caller.id;
    create::once(&state.pool, state.data_keys.current(), user, "POST /products", key, body.0, move |conn| {
        let product = Product::from(model::create(conn, user, input)?);
        Ok(Created {
            location: format!("/api/v1/products/{}", product.id),
            version: product.version,
            body: serde_json::to_value(product).map_err(AppError::internal)?,
        })
    })
    .await
}

/// Get a product.
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The product's id")),
    responses((status = 200, description = "The product", body = Product, headers(("ETag" = String, description = "The version")))),
)]
#[get("/products/{id}")]
pub async fn get_product(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let id = id.into_inner();
    let product = db::run(&state.pool, move |conn| Ok(model::find(conn, id)?)).await?;
    Ok(ok(product.version, Product::from(product)))
}

/// Change a product (JSON merge patch; honours `If-Match`).
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The product's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the product changed since"),
    ),
    request_body(content = ProductInput, content_type = "application/merge-patch+json", description = "Any subset of the fields of a product"),
    responses((status = 200, description = "The changed product", body = Product, headers(("ETag" = String, description = "The new version")))),
)]
#[patch("/products/{id}")]
pub async fn update_product(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let product = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| model::update(conn, user, id, &if_match, &body.0))
    })
    .await?;
    Ok(ok(product.version, Product::from(product)))
}

/// Delete a product (honours `If-Match`).
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The product's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/products/{id}")]
pub async fn delete_product(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    db::run(&state.pool, move |conn| if_match.write(conn, |conn| model::delete(conn, user, id, &if_match)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
