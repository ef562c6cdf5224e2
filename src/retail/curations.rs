//! Curations: office staff submit a UMKM product to a retail partner, and the partner (or the
//! office) passes or rejects it. Only a product that passed a partner's curation may be placed in
//! that partner's outlets; a rejected product may be submitted again.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{may_write, scope};
use crate::audit::{self, Action};
use crate::auth::{Caller, within};
use crate::db::schema::{curations, products, retail_partners};
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::list::{self, PageParams, Sort};
use crate::state::AppState;
use crate::webhooks::{self, EventType, Partner};

/// Where a curation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CurationStatus {
    /// Waiting for the partner's decision.
    Submitted,
    /// The product may be placed in the partner's outlets.
    Passed,
    /// Turned down; the product may be submitted again.
    Rejected,
}

impl CurationStatus {
    fn as_str(self) -> &'static str {
        match self {
            CurationStatus::Submitted => "submitted",
            CurationStatus::Passed => "passed",
            CurationStatus::Rejected => "rejected",
        }
    }
}

/// A curation as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = curations)]
pub struct CurationRow {
    id: i64,
    product_id: i64,
    retail_partner_id: i64,
    status: String,
    notes: Option<String>,
    decided_at: Option<NaiveDateTime>,
    decided_by: Option<i64>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

/// A curation: a product submitted to one retail partner.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Curation {
    /// Id.
    pub id: i64,
    /// The product.
    pub product_id: i64,
    /// The partner deciding.
    pub retail_partner_id: i64,
    /// `submitted`, `passed` or `rejected`.
    #[schema(value_type = CurationStatus)]
    pub status: String,
    /// Notes.
    pub notes: Option<String>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided (user id).
    pub decided_by: Option<i64>,
    /// Submitted.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl From<CurationRow> for Curation {
    fn from(c: CurationRow) -> Self {
        Curation {
            id: c.id,
            product_id: c.product_id,
            retail_partner_id: c.retail_partner_id,
            status: c.status,
            notes: c.notes,
            decided_at: c.decided_at.map(|t| t.and_utc()),
            decided_by: c.decided_by,
            created_at: c.created_at.and_utc(),
            updated_at: c.updated_at.and_utc(),
            version: c.version,
        }
    }
}

/// Submitting a product to a partner's curation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCuration {
    /// The product.
    #[serde(default)]
    #[schema(value_type = i64, required = true)]
    pub product_id: Field<i64>,
    /// The partner.
    #[serde(default)]
    #[schema(value_type = i64, required = true)]
    pub retail_partner_id: Field<i64>,
    /// Notes for the partner.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Field<String>,
}

/// A decision, or a change of notes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurationDecision {
    /// `passed` or `rejected`; a decided curation cannot be decided again (409).
    #[serde(default)]
    pub status: Option<CurationStatus>,
    /// Notes, or `null` to clear them.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
}

/// A checked submission, ready to write.
#[derive(Debug, Insertable)]
#[diesel(table_name = curations)]
struct CurationRecord {
    product_id: i64,
    retail_partner_id: i64,
    status: String,
    notes: Option<String>,
}

/// A checked decision (or change of notes), ready to write.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = curations, treat_none_as_null = true)]
struct CurationDecisionRecord {
    status: String,
    notes: Option<String>,
    decided_at: Option<NaiveDateTime>,
    decided_by: Option<i64>,
}

fn find_curation(conn: &mut DbConnection, id: i64) -> QueryResult<CurationRow> {
    curations::table.find(id).select(CurationRow::as_select()).first(conn)
}

/// Whether `product` passed the curation of `partner`.
pub(super) fn passed(conn: &mut DbConnection, product: i64, partner: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        curations::table
            .filter(curations::product_id.eq(product))
            .filter(curations::retail_partner_id.eq(partner))
            .filter(curations::status.eq(CurationStatus::Passed.as_str())),
    ))
    .get_result(conn)
}

/// Checks every field of a submission, the product and partner against the database included,
/// and answers one 422 naming every bad field.
fn check_new_curation(conn: &mut DbConnection, new: NewCuration) -> AppResult<CurationRecord> {
    let mut check = Check::default();
    let product_id = check.required("product_id", new.product_id);
    let partner_id = check.required("retail_partner_id", new.retail_partner_id);
    let notes = check.optional_text("notes", new.notes, 2000);
    if let Some(p) = product_id
        && !diesel::select(diesel::dsl::exists(products::table.find(p))).get_result::<bool>(conn)?
    {
        check.fail("product_id", "not_found", "no product has this id");
    }
    if let Some(p) = partner_id
        && !diesel::select(diesel::dsl::exists(retail_partners::table.find(p))).get_result::<bool>(conn)?
    {
        check.fail("retail_partner_id", "not_found", "no retail partner has this id");
    }
    check.finish(|| {
        Some(CurationRecord {
            product_id: product_id?,
            retail_partner_id: partner_id?,
            status: CurationStatus::Submitted.as_str().to_owned(),
            notes,
        })
    })
}

/// Writes a new submission and its audit entry; 409 while the product's curation with the
/// partner is open or passed.
fn insert_curation(conn: &mut DbConnection, user: i64, record: &CurationRecord) -> AppResult<CurationRow> {
    let open: Vec<String> = curations::table
        .filter(curations::product_id.eq(record.product_id))
        .filter(curations::retail_partner_id.eq(record.retail_partner_id))
        .filter(curations::status.ne(CurationStatus::Rejected.as_str()))
        .select(curations::status)
        .load(conn)?;
    if let Some(status) = open.first() {
        return Err(AppError::Conflict(format!(
            "the product's curation with this partner is {status} already"
        )));
    }
    let id = crate::versioned_insert!(conn, curations, record)?;
    let changes = json!({
        "product_id": record.product_id,
        "retail_partner_id": record.retail_partner_id,
        "status": record.status,
    });
    audit::record(conn, user, Action::Create, "curation", id, &changes)?;
    let row = find_curation(conn, id)?;
    webhooks::emit(
        conn,
        Partner::Retail(row.retail_partner_id),
        EventType::CurationSubmitted,
        Curation::from(row.clone()),
    )?;
    Ok(row)
}

/// Writes a curation's decision if it is still at the version read (412 otherwise), and the
/// audit entry of the change.
fn change_curation(
    conn: &mut DbConnection,
    user: i64,
    current: &CurationRow,
    record: &CurationDecisionRecord,
) -> AppResult<CurationRow> {
    // The product's business and the product are locked before the curation (see
    // `summary::lock_product`): the order in which their deletes lock them.
    let passed = CurationStatus::Passed.as_str();
    let mut deltas = crate::summary::Deltas::new();
    if (current.status == passed) != (record.status == passed) {
        let sign = if record.status == passed { 1 } else { -1 };
        deltas.curation_passed(conn, current.retail_partner_id, current.product_id, sign)?;
    }
    crate::versioned_update!(conn, curations, current.id, current.version, record)?;
    deltas.apply(conn)?;
    let after = find_curation(conn, current.id)?;
    let changes = audit::diff(&Curation::from(current.clone()), &Curation::from(after.clone()), &[]);
    audit::record(conn, user, Action::Update, "curation", current.id, &changes)?;
    if after.status != current.status {
        let partner = Partner::Retail(after.retail_partner_id);
        webhooks::emit(conn, partner, EventType::CurationDecided, Curation::from(after.clone()))?;
    }
    Ok(after)
}

/// Filters and paging of the curation list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CurationQuery {
    /// Curations by this partner.
    pub retail_partner_id: Option<i64>,
    /// Curations of this product.
    pub product_id: Option<i64>,
    /// Curations of this business's products.
    pub business_id: Option<i64>,
    /// Status.
    pub status: Option<CurationStatus>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

impl CurationQuery {
    fn query(&self, scope: Option<i64>) -> curations::BoxedQuery<'static, db::Db> {
        let mut q = curations::table.into_boxed();
        if let Some(own) = scope {
            q = q.filter(curations::retail_partner_id.eq(own));
        }
        if let Some(p) = self.retail_partner_id {
            q = q.filter(curations::retail_partner_id.eq(p));
        }
        if let Some(p) = self.product_id {
            q = q.filter(curations::product_id.eq(p));
        }
        if let Some(b) = self.business_id {
            q = q.filter(
                curations::product_id
                    .eq_any(products::table.filter(products::business_id.eq(b)).select(products::id)),
            );
        }
        if let Some(s) = self.status {
            q = q.filter(curations::status.eq(s.as_str()));
        }
        q
    }
}

const CURATION_CSV: &str =
    "id,product_id,retail_partner_id,status,notes,decided_at,decided_by,created_at,updated_at,version\n";

/// List curations, by id (a retail user sees those submitted to its partner).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(CurationQuery),
    responses((status = 200, description = "A page of curations, or all as CSV or NDJSON",
        content((crate::http::list::Page<Curation> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/curations")]
pub async fn list_curations(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CurationQuery>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let query = query.into_inner();
    let sort = Sort::<CurationOrder>::parse(None, "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let counted = query.clone();
    list::respond(
        &req,
        &state.pool,
        params,
        CURATION_CSV,
        move |conn, after, limit| {
            let q = query.query(scope).select(CurationRow::as_select());
            let (rows, next) = list::keyset(conn, q, &sort, after, limit)?;
            Ok((rows.into_iter().map(Curation::from).collect::<Vec<_>>(), next))
        },
        move |conn| Ok(counted.query(scope).count().get_result(conn)?),
    )
    .await
}

crate::key_order!(CurationOrder, curations, CurationRow, id, Int);

/// Submit a product to a retail partner's curation (office staff). One open curation per
/// product and partner (409); a product that passed already is 409 too.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    request_body = NewCuration,
    responses(
        (status = 201, description = "The submitted curation", body = Curation, headers(("Location" = String, description = "Its URL"))),
        (status = 409, description = "Already submitted or passed", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/curations")]
pub async fn create_curation(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewCuration>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let user = caller.id;
    let curation = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let record = check_new_curation(conn, body.0)?;
            insert_curation(conn, user, &record)
        })
    })
    .await?;
    let curation = Curation::from(curation);
    Ok(created(format!("/api/v1/curations/{}", curation.id), curation.version, curation))
}

/// Get a curation.
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The curation's id")),
    responses((status = 200, description = "The curation", body = Curation, headers(("ETag" = String, description = "The version")))),
)]
#[get("/curations/{id}")]
pub async fn get_curation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let scope = scope(&caller)?;
    let id = id.into_inner();
    let curation = db::run(&state.pool, move |conn| Ok(find_curation(conn, id)?)).await?;
    within(scope, curation.retail_partner_id)?;
    let curation = Curation::from(curation);
    Ok(ok(curation.version, curation))
}

/// Decide a curation (`passed` or `rejected`, by the partner's retail users or office staff),
/// or change its notes. A decided curation cannot be decided again (409).
#[utoipa::path(
    tag = "retail",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The curation's id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body(content = CurationDecision, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The decided curation", body = Curation, headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "Already decided", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/curations/{id}")]
pub async fn decide_curation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<CurationDecision>,
) -> AppResult<HttpResponse> {
    may_write(&caller)?;
    let scope = scope(&caller)?;
    let (id, user) = (id.into_inner(), caller.id);
    let decision = body.0;
    let mut check = Check::default();
    let notes = decision.notes.map(|notes| notes.and_then(|n| check.trimmed("notes", n, 2000)));
    check.finish(|| Some(()))?;
    let curation = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_curation(conn, id)?;
            within(scope, current.retail_partner_id)?;
            if_match.check(current.version)?;
            let (status, decided_at, decided_by) = match decision.status {
                None => (current.status.clone(), current.decided_at, current.decided_by),
                Some(CurationStatus::Submitted) => {
                    return Err(AppError::invalid(
                        "status",
                        "invalid_transition",
                        "must be passed or rejected",
                    ));
                }
                Some(_) if current.status != CurationStatus::Submitted.as_str() => {
                    return Err(AppError::Conflict(format!("the curation is {} already", current.status)));
                }
                Some(s) => (s.as_str().to_owned(), Some(db::now()), Some(user)),
            };
            let notes = notes.clone().unwrap_or_else(|| current.notes.clone());
            let record = CurationDecisionRecord { status, notes, decided_at, decided_by };
            change_curation(conn, user, &current, &record)
        })
    })
    .await?;
    let curation = Curation::from(curation);
    Ok(ok(curation.version, curation))
}
