//! Products: what the businesses make, with their food-safety and standards certifications.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::businesses::{like_pattern, lower};
use crate::db::schema::{businesses, products};
use crate::db::{self, Db, DbConnection};
use crate::domain::codes::{BpomNumber, HalalCertificate, PirtNumber};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, etag};
use crate::http::export::{self, Format};
use crate::http::idempotency::IdempotencyKey;
use crate::http::input::{Check, Field};
use crate::http::list::{self, Page};
use crate::http::list::{Sort, SortField, page_of};
use crate::http::patch::merge_patch;
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

/// What kind of product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Processed food.
    Food,
    /// Drinks.
    Beverage,
    /// Handicraft.
    Craft,
    /// Clothing, batik, accessories.
    Fashion,
    /// Farm and fishery produce.
    Agriculture,
    /// A service.
    Service,
    /// Anything else.
    Other,
}

impl Category {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Food => "food",
            Category::Beverage => "beverage",
            Category::Craft => "craft",
            Category::Fashion => "fashion",
            Category::Agriculture => "agriculture",
            Category::Service => "service",
            Category::Other => "other",
        }
    }
}

/// A product as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// The business that makes it.
    #[serde(default)]
    #[schema(value_type = i64, required = true, example = 1)]
    pub business_id: Field<i64>,
    /// Name, 1–200 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, example = "Kripik Ikan Tenggiri 250 g")]
    pub name: Field<String>,
    /// Category.
    #[serde(default)]
    #[schema(value_type = Category, required = true)]
    pub category: Field<Category>,
    /// Description, up to 2,000 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Field<String>,
    /// Price in whole rupiah, ≥ 0.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, example = 25000)]
    pub price_idr: Field<i64>,
    /// Unit of sale (`pack`, `kg`, `pcs`).
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 50, example = "pack")]
    pub unit: Field<String>,
    /// P-IRT number: 15 digits, digits 4–7 the issuing regency's code.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "206352401002025")]
    pub pirt_number: Field<String>,
    /// BPOM number: `MD` or `ML` and 12 digits.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "MD224513001234")]
    pub bpom_number: Field<String>,
    /// BPJPH halal certificate: `ID` and 10–20 digits.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "ID35110000123450322")]
    pub halal_certificate: Field<String>,
    /// SNI certified; `false` when not given.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub sni_certified: Field<bool>,
}

/// The columns of a product a client fills.
#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = products, treat_none_as_null = true)]
pub struct ProductRecord {
    business_id: i64,
    name: String,
    category: String,
    description: Option<String>,
    price_idr: Option<i64>,
    unit: Option<String>,
    pirt_number: Option<String>,
    bpom_number: Option<String>,
    halal_certificate: Option<String>,
    sni_certified: bool,
}

fn check_input(input: ProductInput, check: &mut Check) -> Option<ProductRecord> {
    let business_id = check.required("business_id", input.business_id);
    let name = check.text("name", input.name, 200);
    let category = check.required("category", input.category);
    let description = check.optional_text("description", input.description, 2000);
    let price = check.optional("price_idr", input.price_idr);
    let price = check.in_range("price_idr", price, 0..=i64::MAX);
    let unit = check.optional_text("unit", input.unit, 50);
    let pirt = check.optional_text("pirt_number", input.pirt_number, 30);
    let pirt = check.parse("pirt_number", pirt, |v| PirtNumber::parse(&v));
    let bpom = check.optional_text("bpom_number", input.bpom_number, 30);
    let bpom = check.parse("bpom_number", bpom, |v| BpomNumber::parse(&v));
    let halal = check.optional_text("halal_certificate", input.halal_certificate, 30);
    let halal = check.parse("halal_certificate", halal, |v| HalalCertificate::parse(&v));
    let sni = check.optional("sni_certified", input.sni_certified).unwrap_or(false);
    Some(ProductRecord {
        business_id: business_id?,
        name: name?,
        category: category?.as_str().to_owned(),
        description,
        price_idr: price,
        unit,
        pirt_number: pirt.map(|p| p.as_str().to_owned()),
        bpom_number: bpom.map(|b| b.as_str().to_owned()),
        halal_certificate: halal.map(|h| h.as_str().to_owned()),
        sni_certified: sni,
    })
}

/// A product as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = products)]
pub struct Product {
    id: i64,
    business_id: i64,
    name: String,
    category: String,
    description: Option<String>,
    price_idr: Option<i64>,
    unit: Option<String>,
    pirt_number: Option<String>,
    bpom_number: Option<String>,
    halal_certificate: Option<String>,
    sni_certified: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductView {
    /// Id.
    pub id: i64,
    /// The business that makes it.
    pub business_id: i64,
    /// Name.
    pub name: String,
    /// Category.
    pub category: Category,
    /// Description.
    pub description: Option<String>,
    /// Price, rupiah.
    pub price_idr: Option<i64>,
    /// Unit of sale.
    pub unit: Option<String>,
    /// P-IRT number.
    pub pirt_number: Option<String>,
    /// BPOM number.
    pub bpom_number: Option<String>,
    /// Halal certificate.
    pub halal_certificate: Option<String>,
    /// SNI certified.
    pub sni_certified: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        ProductView {
            id: p.id,
            business_id: p.business_id,
            name: p.name,
            category: serde_json::from_value(Value::String(p.category)).unwrap_or(Category::Other),
            description: p.description,
            price_idr: p.price_idr,
            unit: p.unit,
            pirt_number: p.pirt_number,
            bpom_number: p.bpom_number,
            halal_certificate: p.halal_certificate,
            sni_certified: p.sni_certified,
            created_at: p.created_at.and_utc(),
            updated_at: p.updated_at.and_utc(),
            version: p.version,
        }
    }
}

impl Product {
    fn record(&self) -> ProductRecord {
        ProductRecord {
            business_id: self.business_id,
            name: self.name.clone(),
            category: self.category.clone(),
            description: self.description.clone(),
            price_idr: self.price_idr,
            unit: self.unit.clone(),
            pirt_number: self.pirt_number.clone(),
            bpom_number: self.bpom_number.clone(),
            halal_certificate: self.halal_certificate.clone(),
            sni_certified: self.sni_certified,
        }
    }
}

/// Bank users see products only through their applicants; for them products do not exist.
fn require_reader(caller: &Caller) -> AppResult<()> {
    if caller.role == Role::Bank { Err(AppError::NotFound) } else { Ok(()) }
}

/// Finds a product.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Product> {
    products::table.find(id).select(Product::as_select()).first(conn)
}

fn checked(
    conn: &mut DbConnection,
    input: ProductInput,
    current_business: Option<i64>,
) -> AppResult<ProductRecord> {
    let mut check = Check::default();
    let record = check_input(input, &mut check);
    if let Some(record) = &record
        && Some(record.business_id) != current_business
    {
        let exists: bool = diesel::select(diesel::dsl::exists(businesses::table.find(record.business_id)))
            .get_result(conn)?;
        if !exists {
            check.fail("business_id", "not_found", "no business has this id");
        }
    }
    check.finish(|| record)
}

/// Creates a product; writes its audit entry.
pub fn create(conn: &mut DbConnection, user_id: i64, input: ProductInput) -> AppResult<Product> {
    let record = checked(conn, input, None)?;
    let now = db::now();
    let id: i64 = diesel::insert_into(products::table)
        .values((
            &record,
            products::created_at.eq(now),
            products::updated_at.eq(now),
            products::version.eq(1),
        ))
        .returning(products::id)
        .get_result(conn)?;
    audit::record(conn, user_id, Action::Create, "product", id, &audit::snapshot(&record, &[]))?;
    Ok(find(conn, id)?)
}

fn update(
    conn: &mut DbConnection,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: &Value,
) -> AppResult<Product> {
    if !patch.is_object() {
        return Err(AppError::invalid("body", "invalid_type", "a merge patch must be a JSON object"));
    }
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    let before = current.record();
    let mut merged = serde_json::to_value(&before).map_err(AppError::internal)?;
    if let Value::Object(map) = &mut merged {
        map.retain(|_, v| !v.is_null());
    }
    merge_patch(&mut merged, patch);
    let input: ProductInput = crate::http::parse_json(merged.to_string().as_bytes())?;
    let record = checked(conn, input, Some(current.business_id))?;
    let changed = diesel::update(products::table.find(id).filter(products::version.eq(current.version)))
        .set((&record, products::updated_at.eq(db::now()), products::version.eq(current.version + 1)))
        .execute(conn)?;
    if changed == 0 {
        return Err(AppError::PreconditionFailed);
    }
    audit::record(conn, user_id, Action::Update, "product", id, &audit::diff(&before, &record, &[]))?;
    Ok(find(conn, id)?)
}

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
    type Row = Product;
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
#[derive(Debug, Default, Deserialize, IntoParams)]
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
        if self.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(AppError::BadRequest("q must be at most 200 characters".into()));
        }
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

fn page(
    conn: &mut DbConnection,
    query: &ProductQuery,
    sort: &Sort<ProductSort>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<Product>, Option<String>)> {
    let mut q = query.query()?;
    if let Some(cursor) = after {
        q = q.filter(sort.after(cursor)?);
    }
    for (field, dir) in &sort.keys {
        q = q.then_order_by(field.order(*dir));
    }
    let rows: Vec<Product> = q.limit(limit + 1).select(Product::as_select()).load(conn)?;
    Ok(page_of(rows, limit, sort))
}

const CSV_HEADER: &str = "id,business_id,name,category,description,price_idr,unit,pirt_number,bpom_number,\
halal_certificate,sni_certified,created_at,updated_at,version\n";

async fn list(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    query: ProductQuery,
) -> AppResult<HttpResponse> {
    require_reader(caller)?;
    query.query()?;
    let sort = Sort::<ProductSort>::parse(query.sort.as_deref(), "id")?;
    let format = Format::of(req);
    if format != Format::Page {
        let start = query.cursor.clone();
        return export::stream(&state.pool, format, CSV_HEADER, move |conn, after: Option<&String>| {
            let after = after.or(start.as_ref()).map(String::as_str);
            let (rows, next) = page(conn, &query, &sort, after, export::CHUNK)?;
            Ok((rows.into_iter().map(ProductView::from).collect::<Vec<_>>(), next))
        })
        .await;
    }
    let limit = list::limit(query.limit)?;
    let result = db::run(&state.pool, move |conn| {
        let total =
            if query.count == Some(true) { Some(query.query()?.count().get_result(conn)?) } else { None };
        let (rows, next_cursor) = page(conn, &query, &sort, query.cursor.as_deref(), limit)?;
        Ok(Page { data: rows.into_iter().map(ProductView::from).collect(), next_cursor, total })
    })
    .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// List products (or export them all with `Accept: text/csv` or `application/x-ndjson`).
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(ProductQuery),
    responses((status = 200, description = "A page of products, or all of them as CSV or NDJSON",
        content((Page<ProductView> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson")))),
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

/// List the products of one business (404 if there is no such business).
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The business's id"), BusinessProductsQuery),
    responses((status = 200, description = "A page of the business's products",
        content((Page<ProductView> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson")))),
)]
#[get("/businesses/{id}/products")]
pub async fn list_business_products(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<BusinessProductsQuery>,
) -> AppResult<HttpResponse> {
    require_reader(&caller)?;
    let id = id.into_inner();
    let exists = db::run(&state.pool, move |conn| {
        Ok(diesel::select(diesel::dsl::exists(businesses::table.find(id))).get_result::<bool>(conn)?)
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

fn product_response(status: StatusCode, product: Product) -> HttpResponse {
    HttpResponse::build(status).insert_header(etag(product.version)).json(ProductView::from(product))
}

/// Create a product. `Idempotency-Key` makes a retried create return the first answer.
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer")),
    request_body = ProductInput,
    responses((status = 201, description = "The new product", body = ProductView,
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
    create::once(&state.pool, user, "POST /products", key, body.0, move |conn| {
        let product = create(conn, user, input)?;
        Ok(Created {
            location: format!("/api/v1/products/{}", product.id),
            version: product.version,
            body: serde_json::to_value(ProductView::from(product)).map_err(AppError::internal)?,
        })
    })
    .await
}

/// Get a product.
#[utoipa::path(
    tag = "products",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The product's id")),
    responses((status = 200, description = "The product", body = ProductView, headers(("ETag" = String, description = "The version")))),
)]
#[get("/products/{id}")]
pub async fn get_product(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    require_reader(&caller)?;
    let id = id.into_inner();
    let product = db::run(&state.pool, move |conn| Ok(find(conn, id)?)).await?;
    Ok(product_response(StatusCode::OK, product))
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
    responses((status = 200, description = "The changed product", body = ProductView, headers(("ETag" = String, description = "The new version")))),
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
    let product =
        db::run(&state.pool, move |conn| db::write(conn, |conn| update(conn, user, id, &if_match, &body.0)))
            .await?;
    Ok(product_response(StatusCode::OK, product))
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
    db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let current = find(conn, id)?;
            if_match.check(current.version)?;
            diesel::delete(products::table.find(id)).execute(conn)?;
            audit::record(
                conn,
                user,
                Action::Delete,
                "product",
                id,
                &audit::snapshot(&current.record(), &[]),
            )?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
