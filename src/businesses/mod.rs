//! Businesses: the UMKM the office coaches. Validated on the way in, classified on every
//! write (PP 7/2021 scale, IKM, Permenperin 64/2016 industry scale), masked on the way out for
//! callers without clearance for personal data.
//!
//! This file holds the routes and the handlers of one business and of the list; `model` what a
//! business is and the one create, update and delete; `input` what a client sends and its
//! checks; `filter` the filters shared with the statistics; `import` the bulk import.

mod consents;
mod filter;
mod import;
mod input;
mod model;
mod owners;
mod place;

use utoipa_actix_web::service_config::ServiceConfig;

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::db::schema::businesses;
use crate::db::{self, DbConnection};
use crate::disclosures::Classes;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, ok};
use crate::http::export::Format;
use crate::http::idempotency::IdempotencyKey;
use crate::http::list::{self, Page, PageParams, Sort, SortField};
use crate::http::{Document, Json};
use crate::state::AppState;

pub(crate) use filter::business_filter;
#[cfg(test)]
pub(crate) use filter::tests::{EVERY_FILTER, assert_every_filter};
pub use filter::{BusinessFilter, KBLI_FILTER_PATTERN, ScaleFilter, SliceValue, SummarySlice};
pub use input::BusinessInput;
pub use model::{
    Business, BusinessRow, BusinessStatus, PII, View, find, find_owned, views, views_withholding,
};
pub use owners::{erase_owner_fields, follow_owner};

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_businesses)
        .service(create_business)
        .service(import::import_businesses)
        .service(get_business)
        .service(update_business)
        .service(delete_business)
        .service(owners::find_persons)
        .service(owners::get_person)
        .service(owners::update_person)
        .service(owners::businesses_of_person)
        .service(owners::disclosures_of_person)
        .service(consents::list_consents)
        .service(consents::create_consent)
        .service(consents::get_consent)
        .service(consents::withdraw_consent);
}

/// Bank users see businesses only as applicants, through their own endpoints; for them the
/// businesses do not exist (404).
const HIDDEN_FROM: &[Role] = &[Role::Bank];

/// The columns a business list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessSort {
    /// `id`.
    Id,
    /// `name`.
    Name,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`: with `updated_since`, the incremental pull.
    UpdatedAt,
    /// `district_code`.
    DistrictCode,
}

impl SortField for BusinessSort {
    type Table = businesses::table;
    type Row = BusinessRow;
    const ID: Self = BusinessSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[
        ("id", BusinessSort::Id),
        ("name", BusinessSort::Name),
        ("created_at", BusinessSort::CreatedAt),
        ("updated_at", BusinessSort::UpdatedAt),
        ("district_code", BusinessSort::DistrictCode),
    ];

    crate::sort_columns!(businesses;
        BusinessSort::Id => (id, Int),
        BusinessSort::Name => (name, Text),
        BusinessSort::CreatedAt => (created_at, Time),
        BusinessSort::UpdatedAt => (updated_at, Time),
        BusinessSort::DistrictCode => (district_code, Text),
    );
}

business_filter! {
    /// Filters, sort and paging of the business list.
    #[derive(Debug, Deserialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    pub struct BusinessQuery {
        ..BusinessFilter,
        /// Comma-separated keys, `-` for descending: `id`, `name`, `created_at`, `updated_at`,
        /// `district_code` (default `id`). `sort=updated_at` with `updated_since` is an
        /// incremental pull.
        pub sort: Option<String>,
        /// Rows per page, 1 to 500 (default 50). Ignored by CSV and NDJSON exports.
        pub limit: Option<i64>,
        /// The `next_cursor` of the previous page (issued for the same `sort`).
        pub cursor: Option<String>,
        /// Add the exact `total` of matching rows.
        pub count: Option<bool>,
    }
}

/// One page (or chunk) of businesses after `after`: of the businesses `curated_by` a retail
/// partner only, when given.
fn page(
    conn: &mut DbConnection,
    filter: &BusinessFilter,
    curated_by: Option<i64>,
    sort: &Sort<BusinessSort>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<BusinessRow>, Option<String>)> {
    let q = confined(filter.query(), curated_by);
    list::keyset(conn, q.select(BusinessRow::as_select()), sort, after, limit)
}

/// `query`, of the businesses with a product in retail partner `curated_by`'s curations when
/// given (a retail user's businesses).
fn confined(
    query: businesses::BoxedQuery<'static, db::Db>,
    curated_by: Option<i64>,
) -> businesses::BoxedQuery<'static, db::Db> {
    use crate::db::schema::{curations, products};
    match curated_by {
        None => query,
        // Nor those of an owner who restricted the processing of their data (few: the
        // subquery reads the partial index of them).
        Some(partner) => query
            .filter(
                businesses::id.eq_any(
                    products::table
                        .inner_join(curations::table)
                        .filter(curations::retail_partner_id.eq(partner))
                        .select(products::business_id),
                ),
            )
            .filter(businesses::owner_id.ne_all(crate::persons::restricted())),
    }
}

/// 404 unless a retail user's partner curates a product of business `id` (`curated_by`, the
/// caller's `retail_scope`); nothing to check for anyone else.
fn within_curations(conn: &mut DbConnection, id: i64, curated_by: Option<i64>) -> AppResult<()> {
    use crate::db::schema::{curations, products};
    let Some(partner) = curated_by else { return Ok(()) };
    let curated = products::table
        .inner_join(curations::table)
        .filter(curations::retail_partner_id.eq(partner))
        .filter(products::business_id.eq(id));
    let seen: bool = diesel::select(diesel::dsl::exists(curated.select(products::id))).get_result(conn)?;
    let restricted: bool = diesel::select(diesel::dsl::exists(
        businesses::table.find(id).filter(businesses::owner_id.eq_any(crate::persons::restricted())),
    ))
    .get_result(conn)?;
    if seen && !restricted { Ok(()) } else { Err(AppError::NotFound) }
}

/// The header line of an empty CSV export.
const CSV_HEADER: &str = "id,name,owner_id,owner_name,owner_nik,phone,email,nib,npwp,kbli,district_code,village,village_code,address,\
capital_idr,annual_revenue_idr,employees,established_on,status,consented_to_bank_sharing_at,scale,scale_basis,\
is_ikm,industry_scale,created_at,updated_at,version\n";

/// List businesses (or export them all).
///
/// With `Accept: text/csv` or `Accept: application/x-ndjson` every matching row is streamed
/// (no page limit) in the same order. Bank users get 404: they see businesses only as
/// applicants. Viewers and retail users see personal data masked, and a retail user only the
/// businesses with a product in its partner's curations (`BusinessView` has the table of who
/// sees which field).
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(BusinessQuery),
    responses((status = 200, description = "A page of businesses, or all of them as CSV or NDJSON",
        content(
            (Page<Business> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ))),
)]
#[get("/businesses")]
pub async fn list_businesses(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<BusinessQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let query = query.into_inner();
    let filter = query.filter();
    filter.validate()?;
    let sort = Sort::<BusinessSort>::parse(query.sort.as_deref(), "id")?;
    let (view, curated_by) = (View::of(caller.role), caller.retail_scope());
    let mut params = PageParams::new(query.limit, query.cursor.as_deref(), query.count)
        .with_generic_plans(sort.by_id() && filter.index_exact() && curated_by.is_none());
    let counted = filter.clone();
    let keys = state.data_keys.current();
    // Each page (each chunk of an export) is recorded before it is answered. An export carries
    // no data of a person who restricted its processing (UU 27/2022 Pasal 41): their
    // businesses are in it, masked as a viewer sees them, and not recorded as disclosed.
    let disclosing = view.recorded().map(|classes| caller.discloser(&req, classes)).transpose()?;
    if let Some(disclosing) = &disclosing {
        params = params.recorded_by(disclosing);
    }
    let exporting = view == View::Full && Format::of(&req) != Format::Page;
    list::respond(
        &req,
        &state.pool,
        params,
        CSV_HEADER,
        move |conn, after, limit| {
            let (rows, next) = page(conn, &filter, curated_by, &sort, after, limit)?;
            let withheld = if exporting {
                let owners: Vec<i64> = rows.iter().map(BusinessRow::owner_id).collect();
                crate::persons::restricted_among(conn, &owners)?
            } else {
                HashSet::new()
            };
            if let Some(disclosing) = &disclosing {
                let owners = rows.iter().map(BusinessRow::owner_id).filter(|o| !withheld.contains(o));
                disclosing.disclose_blocking(owners)?;
            }
            Ok((model::views_withholding(&keys, rows, view, &withheld)?, next))
        },
        move |conn| match curated_by {
            None => Ok(counted.count(conn)?),
            Some(_) => Ok(confined(counted.query(), curated_by).count().get_result(conn)?),
        },
    )
    .await
}

/// Create a business. `Idempotency-Key` makes a retried create return the first answer.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer instead of a second business")),
    request_body = BusinessInput,
    responses(
        (status = 201, description = "The new business", body = Business,
            headers(("Location" = String, description = "The business's URL"), ("ETag" = String, description = "The version"))),
        (status = 409, description = "The NIB is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/businesses")]
pub async fn create_business(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: Document,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let user = caller.id;
    let request = body.0.clone();
    let keys = state.data_keys.current();
    let (answer, body) = create::answered(
        &state.pool,
        state.data_keys.current(),
        user,
        "POST /businesses",
        key,
        request,
        move |conn| {
            let record = model::check_new(conn, body.0)?;
            let created = model::create(conn, &keys, user, std::slice::from_ref(&record))?;
            let mut business =
                created.into_iter().next().ok_or_else(|| AppError::internal("the insert gave no row"))?;
            let (id, owner) = (business.id, business.take_owner(&keys)?);
            Ok(Created {
                location: format!("/api/v1/businesses/{id}"),
                version: business.version,
                body: serde_json::to_value(Business::of(business, owner, View::Full))
                    .map_err(AppError::internal)?,
            })
        },
    )
    .await?;
    // The answer shows the owner as stored: a known person's contact too (and a replay the
    // first answer's).
    if let Some(owner) = body["owner_id"].as_i64() {
        caller.disclose(&req, Classes::OWNER, [owner]).await?;
    }
    Ok(answer)
}

/// Get a business.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The business's id")),
    responses((status = 200, description = "The business", body = Business,
        headers(("ETag" = String, description = "The version")))),
)]
#[get("/businesses/{id}")]
pub async fn get_business(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let (id, curated_by, view) = (id.into_inner(), caller.retail_scope(), View::of(caller.role));
    let keys = state.data_keys.current();
    let (business, owner) = db::run(&state.pool, move |conn| {
        within_curations(conn, id, curated_by)?;
        model::find_owned(conn, &keys, id)
    })
    .await?;
    if let Some(classes) = view.recorded() {
        caller.disclose(&req, classes, [business.owner_id()]).await?;
    }
    Ok(ok(business.version, Business::of(business, owner, view)))
}

/// Change a business (JSON merge patch; `null` clears a field; honours `If-Match`).
///
/// The patch is applied to the stored fields and the result is checked as a whole, so a 422
/// lists every field that would be invalid. The classification is derived again.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The business's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the business changed since"),
    ),
    request_body(content = BusinessInput, content_type = "application/merge-patch+json",
        description = "Any subset of the fields of a business"),
    responses(
        (status = 200, description = "The changed business", body = Business,
            headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "The NIB is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/businesses/{id}")]
pub async fn update_business(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let id = id.into_inner();
    let user = caller.id;
    let keys = state.data_keys.current();
    let (business, owner) = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| model::update(conn, &keys, user, id, &if_match, &body.0))
    })
    .await?;
    caller.disclose(&req, Classes::OWNER, [business.owner_id()]).await?;
    Ok(ok(business.version, Business::of(business, owner, View::Full)))
}

/// Delete a business and its products (honours `If-Match`).
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The business's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    responses(
        (status = 204, description = "Deleted, with its products"),
        (status = 409, description = "The business has financing applications", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/businesses/{id}")]
pub async fn delete_business(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let id = id.into_inner();
    let user = caller.id;
    db::run(&state.pool, move |conn| if_match.write(conn, |conn| model::delete(conn, user, id, &if_match)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_query_takes_every_filter_and_refuses_unknown_parameters() {
        let raw = format!("{}&sort=-name&limit=20&cursor=abc&count=true", EVERY_FILTER);
        let query = web::Query::<BusinessQuery>::from_query(&raw).unwrap().into_inner();
        assert_every_filter(&query.filter());
        assert_eq!(query.sort.as_deref(), Some("-name"));
        assert_eq!(query.limit, Some(20));
        assert_eq!(query.cursor.as_deref(), Some("abc"));
        assert_eq!(query.count, Some(true));

        let err = web::Query::<BusinessQuery>::from_query(&format!("{raw}&colour=red")).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
        assert!(web::Query::<BusinessQuery>::from_query("is_ikm=maybe").is_err());
        assert!(web::Query::<BusinessQuery>::from_query("limit=x").is_err());
    }
}
