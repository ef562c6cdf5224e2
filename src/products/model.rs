//! A product as stored and as shown, and the one create, update and delete of a product, each
//! writing its audit entry in the same transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::audit::{self, Action};
use crate::db::schema::{businesses, curations, products};
use crate::db::{self, DbConnection};
use crate::domain::codes::{BpomNumber, HalalCertificate, PirtNumber};
use crate::error::AppResult;
use crate::http::etag::IfMatch;
use crate::http::input::{Check, Field};
use crate::http::patch::merged;
use crate::summary::{Deltas, Figure};

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
    #[schema(value_type = Option<String>, max_length = 30, example = "206352401002025")]
    pub pirt_number: Field<String>,
    /// BPOM number: `MD` or `ML` and 12 digits.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 30, example = "MD224513001234")]
    pub bpom_number: Field<String>,
    /// BPJPH halal certificate: `ID` and 10–20 digits.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 30, example = "ID35110000123450322")]
    pub halal_certificate: Field<String>,
    /// SNI certified; `false` when not given.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub sni_certified: Field<bool>,
}

/// The columns of a product a client fills, checked.
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

/// A product as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub(super) id: i64,
    pub(super) business_id: i64,
    pub(super) name: String,
    pub(super) category: String,
    pub(super) description: Option<String>,
    pub(super) price_idr: Option<i64>,
    pub(super) unit: Option<String>,
    pub(super) pirt_number: Option<String>,
    pub(super) bpom_number: Option<String>,
    pub(super) halal_certificate: Option<String>,
    pub(super) sni_certified: bool,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
    pub(super) version: i32,
}

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ProductView)]
pub struct Product {
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

impl From<ProductRow> for Product {
    fn from(p: ProductRow) -> Self {
        Product {
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

impl ProductRow {
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

/// Finds a product.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<ProductRow> {
    products::table.find(id).select(ProductRow::as_select()).first(conn)
}

/// Whether retail partner `partner` curates a product of business `business` (any status).
pub(super) fn curates(conn: &mut DbConnection, partner: i64, business: i64) -> QueryResult<bool> {
    use crate::db::schema::curations;
    let curated = products::table
        .inner_join(curations::table)
        .filter(curations::retail_partner_id.eq(partner))
        .filter(products::business_id.eq(business));
    diesel::select(diesel::dsl::exists(curated.select(products::id))).get_result(conn)
}

/// Whether a business with id `id` exists.
pub(super) fn business_exists(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(businesses::table.find(id))).get_result(conn)
}

/// Checks `input` whole: every bad field in one 422, the business included (looked up unless
/// it is `current_business`, the one the product already belongs to).
fn checked(
    conn: &mut DbConnection,
    input: ProductInput,
    current_business: Option<i64>,
) -> AppResult<ProductRecord> {
    let mut check = Check::default();
    let business_id = check.required("business_id", input.business_id);
    if let Some(business) = business_id
        && Some(business) != current_business
        && !business_exists(conn, business)?
    {
        check.fail("business_id", "not_found", "no business has this id");
    }
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
    check.finish(|| {
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
    })
}

/// Creates a product; writes its audit entry.
pub fn create(conn: &mut DbConnection, user_id: i64, input: ProductInput) -> AppResult<ProductRow> {
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
    Deltas::new().count(Figure::Products, 0, &record.category, 1).apply(conn)?;
    audit::record(conn, user_id, Action::Create, "product", id, &audit::snapshot(&record, &[]))?;
    Ok(find(conn, id)?)
}

/// Applies a merge patch to product `id` if it still has the version `if_match` names; writes
/// its audit entry.
pub fn update(
    conn: &mut DbConnection,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: &Value,
) -> AppResult<ProductRow> {
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    let input: ProductInput = merged(&Product::from(current.clone()), patch, &[])?;
    let record = checked(conn, input, Some(current.business_id))?;
    if record.business_id != current.business_id {
        // A move: both businesses before the product (see `summary::lock_product`).
        let (low, high) =
            (current.business_id.min(record.business_id), current.business_id.max(record.business_id));
        crate::summary::business_is_ikm(conn, low)?;
        crate::summary::business_is_ikm(conn, high)?;
    }
    crate::versioned_update!(conn, products, id, current.version, &record)?;
    if record.business_id != current.business_id {
        Deltas::new().product_moved(conn, id, current.business_id, record.business_id)?.apply(conn)?;
    }
    if record.category != current.category {
        let mut deltas = Deltas::new();
        deltas.count(Figure::Products, 0, &current.category, -1).count(
            Figure::Products,
            0,
            &record.category,
            1,
        );
        deltas.apply(conn)?;
    }
    audit::record(
        conn,
        user_id,
        Action::Update,
        "product",
        id,
        &audit::diff(&current.record(), &record, &[]),
    )?;
    Ok(find(conn, id)?)
}

/// Deletes product `id` if it still has the version `if_match` names; writes its audit entry.
pub fn delete(conn: &mut DbConnection, user_id: i64, id: i64, if_match: &IfMatch) -> AppResult<()> {
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    // Its business first, then the product (see `summary::lock_product`).
    crate::summary::lock_product(conn, id, "FOR UPDATE")?;
    delete_dependants(conn, user_id, &[id])?;
    crate::versioned_delete!(conn, products, id, current.version)?;
    Deltas::new().count(Figure::Products, 0, &current.category, -1).apply(conn)?;
    audit::record(conn, user_id, Action::Delete, "product", id, &audit::snapshot(&current.record(), &[]))?;
    Ok(())
}

/// Deletes what deleting `products` takes with it, their placements (see
/// [`crate::retail::delete_placements_of_products`]) and curations, each with its audit entry:
/// the database would cascade them without one. The caller holds the products (or
/// their business) locked.
pub(crate) fn delete_dependants(conn: &mut DbConnection, user_id: i64, product_ids: &[i64]) -> AppResult<()> {
    let mut deltas = Deltas::new();
    for chunk in product_ids.chunks(500) {
        crate::retail::delete_placements_of_products(conn, user_id, chunk, &mut deltas)?;
        let gone: Vec<(i64, i64, i64, String)> =
            diesel::delete(curations::table.filter(curations::product_id.eq_any(chunk)))
                .returning((
                    curations::id,
                    curations::product_id,
                    curations::retail_partner_id,
                    curations::status,
                ))
                .get_results(conn)?;
        for (_, product, partner, status) in &gone {
            if status == "passed" {
                deltas.curation_passed(conn, *partner, *product, -1)?;
            }
        }
        let entries: Vec<(i64, Value)> =
            gone.iter().map(|(id, p, _, _)| (*id, json!({"product_id": p}))).collect();
        audit::record_many(conn, user_id, Action::Delete, "curation", &entries)?;
    }
    deltas.apply(conn)?;
    Ok(())
}
