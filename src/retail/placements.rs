//! Placements: a curated product on the shelves of an outlet. Delisting sets `delisted_on` and
//! keeps the record, so an outlet's history stays readable; a product is listed at most once
//! at a time in an outlet.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::curations::passed;
use super::outlets::outlet_partner;
use super::{may_write, scope};
use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::{outlets, placements, products};
use crate::db::{self, DbConnection};
use crate::error::OnConflict;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::list::{self, PageParams, Sort, SortField};
use crate::state::AppState;
use crate::webhooks::{self, EventType, Partner};

/// What a second listing of a product in the same outlet is told.
const LISTED_ALREADY: &str = "the product is listed in this outlet already";

/// A placement as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = placements)]
pub struct PlacementRow {
    id: i64,
    product_id: i64,
    outlet_id: i64,
    listed_on: NaiveDate,
    delisted_on: Option<NaiveDate>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

/// A product stocked in an outlet; delisting keeps the history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Placement {
    /// Id.
    pub id: i64,
    /// The product.
    pub product_id: i64,
    /// The outlet.
    pub outlet_id: i64,
    /// First day on the shelf.
    pub listed_on: NaiveDate,
    /// Last day, once delisted.
    pub delisted_on: Option<NaiveDate>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl From<PlacementRow> for Placement {
    fn from(p: PlacementRow) -> Self {
        Placement {
            id: p.id,
            product_id: p.product_id,
            outlet_id: p.outlet_id,
            listed_on: p.listed_on,
            delisted_on: p.delisted_on,
            created_at: p.created_at.and_utc(),
            updated_at: p.updated_at.and_utc(),
            version: p.version,
        }
    }
}

/// Placing a product in an outlet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlacement {
    /// The product; it must have passed the curation of the outlet's partner (422 otherwise).
    #[serde(default)]
    #[schema(value_type = i64, required = true)]
    pub product_id: Field<i64>,
    /// The outlet (404 if it is not the caller's partner's).
    #[serde(default)]
    #[schema(value_type = i64, required = true)]
    pub outlet_id: Field<i64>,
    /// First day on the shelf (default today).
    #[serde(default)]
    #[schema(value_type = Option<NaiveDate>)]
    pub listed_on: Field<NaiveDate>,
}

/// Changing a placement's dates.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementPatch {
    /// First day on the shelf.
    #[serde(default)]
    pub listed_on: Option<NaiveDate>,
    /// Last day on the shelf, or `null` to list it again.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub delisted_on: Option<Option<NaiveDate>>,
}

/// A checked placement, ready to write.
#[derive(Debug, Serialize, Insertable)]
#[diesel(table_name = placements)]
struct PlacementRecord {
    product_id: i64,
    outlet_id: i64,
    listed_on: NaiveDate,
}

/// The placement `id` if its outlet is within `scope` (404 otherwise).
fn find_placement(conn: &mut DbConnection, id: i64, scope: Option<i64>) -> AppResult<PlacementRow> {
    let placement: PlacementRow = placements::table.find(id).select(PlacementRow::as_select()).first(conn)?;
    within(scope, outlet_partner(conn, placement.outlet_id)?)?;
    Ok(placement)
}

/// Checks every field of a new placement, the product, the outlet and the product's curation
/// by the outlet's partner included, and answers one 422 naming every bad field. An outlet
/// outside `scope` is 404.
fn check_placement(
    conn: &mut DbConnection,
    new: NewPlacement,
    scope: Option<i64>,
) -> AppResult<PlacementRecord> {
    let mut check = Check::default();
    let product_id = check.required("product_id", new.product_id);
    let outlet_id = check.required("outlet_id", new.outlet_id);
    let listed_on = check.optional("listed_on", new.listed_on);
    let partner = match outlet_id {
        Some(outlet) => outlet_partner(conn, outlet).optional()?,
        None => None,
    };
    if let Some(partner) = partner {
        within(scope, partner)?;
    }
    if let Some(product) = product_id {
        if !diesel::select(diesel::dsl::exists(products::table.find(product))).get_result::<bool>(conn)? {
            check.fail("product_id", "not_found", "no product has this id");
        } else if let Some(partner) = partner
            && !passed(conn, product, partner)?
        {
            check.fail(
                "product_id",
                "not_curated",
                "the product has not passed the curation of this outlet's partner",
            );
        }
    }
    if outlet_id.is_some() && partner.is_none() {
        check.fail("outlet_id", "not_found", "no outlet has this id");
    }
    check.finish(|| {
        Some(PlacementRecord {
            product_id: product_id?,
            outlet_id: outlet_id?,
            listed_on: listed_on.unwrap_or_else(|| db::now().date()),
        })
    })
}

/// Writes a new placement and its audit entry; 409 while the product is listed in the outlet.
fn insert_placement(conn: &mut DbConnection, user: i64, record: &PlacementRecord) -> AppResult<PlacementRow> {
    let id = crate::versioned_insert!(conn, placements, record).on_conflict(LISTED_ALREADY)?;
    audit::record(conn, user, Action::Create, "placement", id, &audit::snapshot(record, &[]))?;
    let row: PlacementRow = placements::table.find(id).select(PlacementRow::as_select()).first(conn)?;
    if row.delisted_on.is_none() {
        let partner = outlet_partner(conn, row.outlet_id)?;
        crate::summary::Deltas::new()
            .placement_listed(partner, row.outlet_id, row.product_id, 1)
            .apply(conn)?;
        webhooks::emit(
            conn,
            Partner::Retail(partner),
            EventType::PlacementListed,
            Placement::from(row.clone()),
        )?;
    }
    Ok(row)
}

/// Writes a placement's dates if it is still at the version read (412 otherwise) and they are
/// in order (422 otherwise), and the audit entry of the change. Delisting is such a change.
fn change_placement(
    conn: &mut DbConnection,
    user: i64,
    current: &PlacementRow,
    listed_on: NaiveDate,
    delisted_on: Option<NaiveDate>,
) -> AppResult<PlacementRow> {
    if delisted_on.is_some_and(|d| d < listed_on) {
        return Err(AppError::invalid("delisted_on", "out_of_range", "must be on or after listed_on"));
    }
    crate::versioned_update!(
        conn,
        placements,
        current.id,
        current.version,
        (placements::listed_on.eq(listed_on), placements::delisted_on.eq(delisted_on)),
    )
    .on_conflict(LISTED_ALREADY)?;
    let after: PlacementRow =
        placements::table.find(current.id).select(PlacementRow::as_select()).first(conn)?;
    if current.delisted_on.is_none() != after.delisted_on.is_none() {
        let sign = if after.delisted_on.is_none() { 1 } else { -1 };
        let partner = outlet_partner(conn, current.outlet_id)?;
        let mut deltas = crate::summary::Deltas::new();
        deltas.placement_listed(partner, current.outlet_id, current.product_id, sign).apply(conn)?;
        let event = if sign > 0 { EventType::PlacementListed } else { EventType::PlacementDelisted };
        webhooks::emit(conn, Partner::Retail(partner), event, Placement::from(after.clone()))?;
    }
    let changes = audit::diff(&Placement::from(current.clone()), &Placement::from(after.clone()), &[]);
    audit::record(conn, user, Action::Update, "placement", current.id, &changes)?;
    Ok(after)
}

/// Deletes the placements of `product_ids`, which are being deleted, each with its audit entry
/// (the database would cascade them without one). One still on a shelf leaves the counts in
/// `deltas` and is announced as delisted today. The caller holds the products locked.
pub(crate) fn delete_with_products(
    conn: &mut DbConnection,
    user: i64,
    product_ids: &[i64],
    deltas: &mut crate::summary::Deltas,
) -> AppResult<()> {
    let gone: Vec<PlacementRow> =
        diesel::delete(placements::table.filter(placements::product_id.eq_any(product_ids)))
            .returning((
                placements::id,
                placements::product_id,
                placements::outlet_id,
                placements::listed_on,
                placements::delisted_on,
                placements::created_at,
                placements::updated_at,
                placements::version,
            ))
            .get_results(conn)?;
    let listed: Vec<&PlacementRow> = gone.iter().filter(|p| p.delisted_on.is_none()).collect();
    let outlet_ids: Vec<i64> = listed.iter().map(|p| p.outlet_id).collect();
    let partners: std::collections::HashMap<i64, i64> = outlets::table
        .filter(outlets::id.eq_any(&outlet_ids))
        .select((outlets::id, outlets::retail_partner_id))
        .load(conn)?
        .into_iter()
        .collect();
    for row in listed {
        let partner = partners[&row.outlet_id];
        deltas.placement_listed(partner, row.outlet_id, row.product_id, -1);
        let today = db::now().date().max(row.listed_on);
        let placement = Placement { delisted_on: Some(today), ..Placement::from(row.clone()) };
        webhooks::emit(conn, Partner::Retail(partner), EventType::PlacementDelisted, placement)?;
    }
    let entries: Vec<(i64, serde_json::Value)> =
        gone.iter().map(|p| (p.id, serde_json::json!({"product_id": p.product_id}))).collect();
    audit::record_many(conn, user, Action::Delete, "placement", &entries)?;
    Ok(())
}

/// Filters and paging of the placement list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlacementQuery {
    /// Placements in this partner's outlets.
    pub retail_partner_id: Option<i64>,
    /// Placements in this outlet.
    pub outlet_id: Option<i64>,
    /// Placements of this product.
    pub product_id: Option<i64>,
    /// Placements of this business's products.
    pub business_id: Option<i64>,
    /// Placements in outlets of this district.
    pub district: Option<String>,
    /// Only listed (`true`) or only delisted (`false`) placements.
    pub active: Option<bool>,
    /// `id`, `listed_on` or `updated_at`; `-` for descending (default `id`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

/// Sortable placement columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementSort {
    /// `id`.
    Id,
    /// `listed_on`.
    ListedOn,
    /// `updated_at`.
    UpdatedAt,
}

impl SortField for PlacementSort {
    type Table = placements::table;
    type Row = PlacementRow;
    const ID: Self = PlacementSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[
        ("id", PlacementSort::Id),
        ("listed_on", PlacementSort::ListedOn),
        ("updated_at", PlacementSort::UpdatedAt),
    ];

    crate::sort_columns!(placements;
        PlacementSort::Id => (id, Int),
        PlacementSort::ListedOn => (listed_on, Date),
        PlacementSort::UpdatedAt => (updated_at, Time),
    );
}

impl PlacementQuery {
    fn query(&self, scope: Option<i64>) -> placements::BoxedQuery<'static, db::Db> {
        let mut q = placements::table.into_boxed();
        for partner in [scope, self.retail_partner_id].into_iter().flatten() {
            q =
                q.filter(placements::outlet_id.eq_any(
                    outlets::table.filter(outlets::retail_partner_id.eq(partner)).select(outlets::id),
                ));
        }
        if let Some(d) = &self.district {
            q = q.filter(
                placements::outlet_id
                    .eq_any(outlets::table.filter(outlets::district_code.eq(d.clone())).select(outlets::id)),
            );
        }
        if let Some(o) = self.outlet_id {
            q = q.filter(placements::outlet_id.eq(o));
        }
        if let Some(p) = self.product_id {
            q = q.filter(placements::product_id.eq(p));
        }
        if let Some(b) = self.business_id {
            q = q.filter(
                placements::product_id
                    .eq_any(products::table.filter(products::business_id.eq(b)).select(products::id)),
            );
        }
        match self.active {
            Some(true) => q = q.filter(placements::delisted_on.is_null()),
            Some(false) => q = q.filter(placements::delisted_on.is_not_null()),
            None => {}
        }
        q
    }
}

const PLACEMENT_CSV: &str = "id,product_id,outlet_id,listed_on,delisted_on,created_at,updated_at,version\n";

/// List placements (a retail user sees those in its partner's outlets).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(PlacementQuery),
    responses((status = 200, description = "A page of placements, or all as CSV or NDJSON",
        content((crate::http::list::Page<Placement> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/placements")]
pub async fn list_placements(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PlacementQuery>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let query = query.into_inner();
    list::check_filters(None, query.district.as_deref())?;
    let sort = Sort::<PlacementSort>::parse(query.sort.as_deref(), "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let counted = query.clone();
    list::respond(
        &req,
        &state.pool,
        params,
        PLACEMENT_CSV,
        move |conn, after, limit| {
            let q = query.query(scope);
            let (rows, next) = list::keyset(conn, q.select(PlacementRow::as_select()), &sort, after, limit)?;
            Ok((rows.into_iter().map(Placement::from).collect::<Vec<_>>(), next))
        },
        move |conn| Ok(counted.query(scope).count().get_result(conn)?),
    )
    .await
}

/// Place a product in an outlet. The product must have passed the curation of the outlet's own
/// partner (422 otherwise); an outlet outside the caller's partner is 404; a product already
/// listed there is 409.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    request_body = NewPlacement,
    responses(
        (status = 201, description = "The placement", body = Placement, headers(("Location" = String, description = "Its URL"))),
        (status = 409, description = "Already listed in this outlet", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/placements")]
pub async fn create_placement(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewPlacement>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let user = caller.id;
    let placement = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let record = check_placement(conn, body.0, scope)?;
            insert_placement(conn, user, &record)
        })
    })
    .await?;
    let placement = Placement::from(placement);
    Ok(created(format!("/api/v1/placements/{}", placement.id), placement.version, placement))
}

/// Change a placement's dates (honours `If-Match`).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The placement's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = PlacementPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed placement", body = Placement, headers(("ETag" = String, description = "The new version")))),
)]
#[patch("/placements/{id}")]
pub async fn update_placement(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<PlacementPatch>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let (id, user, patch) = (id.into_inner(), caller.id, body.0);
    let placement = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_placement(conn, id, scope)?;
            if_match.check(current.version)?;
            let listed_on = patch.listed_on.unwrap_or(current.listed_on);
            let delisted_on = patch.delisted_on.unwrap_or(current.delisted_on);
            change_placement(conn, user, &current, listed_on, delisted_on)
        })
    })
    .await?;
    let placement = Placement::from(placement);
    Ok(ok(placement.version, placement))
}

/// Delist a placement: sets `delisted_on` to today and keeps the record (409 if delisted already).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The placement's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses(
        (status = 204, description = "Delisted"),
        (status = 409, description = "Delisted already", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/placements/{id}")]
pub async fn delete_placement(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let (id, user) = (id.into_inner(), caller.id);
    db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_placement(conn, id, scope)?;
            if_match.check(current.version)?;
            if current.delisted_on.is_some() {
                return Err(AppError::Conflict("the placement is delisted already".into()));
            }
            let today = db::now().date().max(current.listed_on);
            change_placement(conn, user, &current, current.listed_on, Some(today))
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
