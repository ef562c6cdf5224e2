//! Data subjects' requests (UU 27/2022 Pasal 32–44): each right a person exercises, recorded
//! with when and through which channel it came, answered within 3 × 24 hours (`due_at`).
//!
//! States: `received` → `in_progress` → `done` | `refused` (with a reason); a received request
//! may also be closed at once. A closed request does not move again. Every step is audited.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{data_requests, persons};
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult, FieldError};
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::list::Page;
use crate::state::AppState;

/// What the law gives the office to answer a request in.
pub const DEADLINE_HOURS: i64 = 72;
/// The first day a request under the law can have come: UU 27/2022 took effect on 17 October
/// 2022 (and a date before what the databases store is refused rather than a 500).
fn law_in_force() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2022, 10, 17).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default()
}

/// The longest note or refusal reason.
const MAX_TEXT: usize = 2_000;

/// Which right the person exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Their data and its processing trail (Pasal 32).
    Access,
    /// Correct what is wrong (Pasal 30).
    Correction,
    /// Stop the processing for a while (Pasal 41).
    Restriction,
    /// Erase (Pasal 43–44).
    Erasure,
    /// Object to a processing (Pasal 38).
    Objection,
    /// Withdraw a consent (Pasal 40).
    ConsentWithdrawal,
}

/// How the request reached the office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestChannel {
    /// At the office's counter.
    InPerson,
    /// By letter.
    Letter,
    /// By e-mail.
    Email,
    /// By telephone.
    Phone,
    /// Through a web form.
    Web,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Recorded, not yet taken up.
    Received,
    /// Being worked on.
    InProgress,
    /// Answered.
    Done,
    /// Refused, with a reason.
    Refused,
}

/// The text a value is stored as (its JSON name).
fn text(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The value stored as `text`.
fn parsed<T: serde::de::DeserializeOwned>(text: &str) -> AppResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| AppError::internal(format!("a data request holds an unknown value {text:?}")))
}

impl RequestStatus {
    fn is_open(self) -> bool {
        matches!(self, RequestStatus::Received | RequestStatus::InProgress)
    }
}

/// A data subject's request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataRequest {
    /// Id.
    pub id: i64,
    /// Whose.
    pub person_id: i64,
    /// Which right.
    pub kind: RequestKind,
    /// How it came.
    pub channel: RequestChannel,
    /// When it came.
    pub received_at: DateTime<Utc>,
    /// When it must be answered: 72 hours after it came.
    pub due_at: DateTime<Utc>,
    /// Where it stands.
    pub status: RequestStatus,
    /// Whether it is open past its deadline now.
    pub overdue: bool,
    /// Why it was refused.
    #[schema(example = "financing with Bank BRI runs until 2027-06-30: the law requires keeping the data")]
    pub refusal_reason: Option<String>,
    /// The office's note.
    #[schema(example = "asked at the counter; identity checked against the KTP")]
    pub note: Option<String>,
    /// The user who recorded it.
    pub recorded_by: Option<i64>,
    /// When it was closed (done or refused).
    pub closed_at: Option<DateTime<Utc>>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Version (the ETag).
    pub version: i32,
}

/// A request as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = data_requests)]
pub struct DataRequestRow {
    id: i64,
    person_id: i64,
    kind: String,
    channel: String,
    received_at: NaiveDateTime,
    due_at: NaiveDateTime,
    status: String,
    refusal_reason: Option<String>,
    note: Option<String>,
    recorded_by: Option<i64>,
    closed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

impl DataRequestRow {
    fn answer(self, now: NaiveDateTime) -> AppResult<DataRequest> {
        let status: RequestStatus = parsed(&self.status)?;
        Ok(DataRequest {
            id: self.id,
            person_id: self.person_id,
            kind: parsed(&self.kind)?,
            channel: parsed(&self.channel)?,
            received_at: self.received_at.and_utc(),
            due_at: self.due_at.and_utc(),
            status,
            overdue: status.is_open() && self.due_at < now,
            refusal_reason: self.refusal_reason,
            note: self.note,
            recorded_by: self.recorded_by,
            closed_at: self.closed_at.map(|t| t.and_utc()),
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            version: self.version,
        })
    }
}

/// A new request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRequestInput {
    /// Whose (the person's id).
    pub person_id: i64,
    /// Which right.
    pub kind: RequestKind,
    /// How it came.
    pub channel: RequestChannel,
    /// When it came (now when absent); not in the future. The deadline runs from it.
    pub received_at: Option<DateTime<Utc>>,
    /// The office's note (at most 2,000 characters).
    #[schema(example = "asked at the counter; identity checked against the KTP")]
    pub note: Option<String>,
}

/// A step of a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRequestPatch {
    /// The new state: `in_progress`, `done` or `refused`.
    pub status: Option<RequestStatus>,
    /// Why it is refused: required with `refused`, refused otherwise (at most 2,000 characters).
    #[schema(example = "financing with Bank BRI runs until 2027-06-30: the law requires keeping the data")]
    pub refusal_reason: Option<String>,
    /// The office's note, replaced (at most 2,000 characters; null or absent keeps it).
    #[schema(example = "export handed over on a USB stick")]
    pub note: Option<String>,
}

/// The routes of this module.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_request).service(list_requests).service(get_request).service(update_request);
}

fn bounded(field: &str, value: &Option<String>) -> Result<(), FieldError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(FieldError::new(field, "empty", "must not be empty")),
        Some(v) if v.chars().count() > MAX_TEXT => {
            Err(FieldError::new(field, "too_long", format!("must be at most {MAX_TEXT} characters")))
        }
        _ => Ok(()),
    }
}

/// Record a data subject's request (office staff).
///
/// Its deadline (`due_at`) is 72 hours after `received_at`. An unknown person is 422.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    request_body = DataRequestInput,
    responses(
        (status = 201, description = "The request recorded", body = DataRequest,
            headers(("Location" = String, description = "The request's URL"), ("ETag" = String, description = "The version"))),
    ),
)]
#[post("/data-requests")]
pub async fn create_request(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<DataRequestInput>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(super::HIDDEN_FROM)?;
    caller.require_office()?;
    let (input, user) = (body.0, caller.id);
    let now = db::now();
    let received = input.received_at.map(|t| t.naive_utc()).unwrap_or(now);
    let mut errors = Vec::new();
    if received > now + chrono::Duration::minutes(5) {
        errors.push(FieldError::new("received_at", "in_future", "must not be in the future"));
    } else if received < law_in_force() {
        errors.push(FieldError::new(
            "received_at",
            "out_of_range",
            "must not be before 2022-10-17 (UU 27/2022)",
        ));
    }
    errors.extend(bounded("note", &input.note).err());
    let row = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            // Read in the transaction that inserts: the insert's foreign key holds the person.
            let known: i64 =
                persons::table.filter(persons::id.eq(input.person_id)).count().get_result(conn)?;
            if known == 0 {
                errors.push(FieldError::new("person_id", "not_found", "no such person"));
            }
            if !errors.is_empty() {
                return Err(AppError::Validation(std::mem::take(&mut errors)));
            }
            let id: i64 = diesel::insert_into(data_requests::table)
                .values((
                    data_requests::person_id.eq(input.person_id),
                    data_requests::kind.eq(text(input.kind)),
                    data_requests::channel.eq(text(input.channel)),
                    data_requests::received_at.eq(received),
                    data_requests::due_at.eq(received + chrono::Duration::hours(DEADLINE_HOURS)),
                    data_requests::status.eq(text(RequestStatus::Received)),
                    data_requests::note.eq(input.note.as_deref()),
                    data_requests::recorded_by.eq(Some(user)),
                    data_requests::created_at.eq(now),
                    data_requests::updated_at.eq(now),
                ))
                .returning(data_requests::id)
                .get_result(conn)?;
            let row = find(conn, id)?;
            audit::record(conn, user, Action::Create, "data_request", row.id, &audit::snapshot(&row, &[]))?;
            Ok(row)
        })
    })
    .await?;
    let (id, version) = (row.id, row.version);
    Ok(created(format!("/api/v1/data-requests/{id}"), version, row.answer(now)?))
}

/// `GET /data-requests` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Only open requests past their deadline, oldest recorded first.
    pub overdue: Option<bool>,
    /// Only this person's.
    pub person_id: Option<i64>,
    /// Only requests in this state.
    pub status: Option<RequestStatus>,
    /// Rows per page, 1–500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List data subjects' requests, newest first; with `overdue=true`, the open ones past their
/// deadline, oldest recorded first (office staff).
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(RequestQuery),
    responses((status = 200, description = "A page of requests", body = Page<DataRequest>)),
)]
#[get("/data-requests")]
pub async fn list_requests(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<RequestQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(super::HIDDEN_FROM)?;
    caller.require_office()?;
    let query = query.into_inner();
    let limit = crate::http::list::limit(query.limit)?;
    let after = crate::http::list::id_cursor(query.cursor.as_deref())?;
    let overdue = query.overdue.unwrap_or(false);
    let now = db::now();
    let mut rows = db::run(&state.pool, move |conn| {
        let mut q = data_requests::table.select(DataRequestRow::as_select()).into_boxed();
        if let Some(person) = query.person_id {
            q = q.filter(data_requests::person_id.eq(person));
        }
        if let Some(status) = query.status {
            q = q.filter(data_requests::status.eq(text(status)));
        }
        if overdue {
            // Ordered by id too: the cursor is the id, and the deadline follows the id's order
            // for requests recorded as they came; a request recorded late sorts by its id.
            q = q
                .filter(
                    data_requests::status
                        .eq_any([text(RequestStatus::Received), text(RequestStatus::InProgress)]),
                )
                .filter(data_requests::due_at.lt(now));
            if let Some(after) = after {
                q = q.filter(data_requests::id.gt(after));
            }
            q = q.order(data_requests::id.asc());
        } else {
            if let Some(after) = after {
                q = q.filter(data_requests::id.lt(after));
            }
            q = q.order(data_requests::id.desc());
        }
        Ok(q.limit(limit + 1).load::<DataRequestRow>(conn)?)
    })
    .await?;
    let next_cursor = crate::http::list::trim_to(&mut rows, limit, |r| r.id);
    let data = rows.into_iter().map(|r| r.answer(now)).collect::<AppResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(Page { data, next_cursor, total: None }))
}

fn find(conn: &mut DbConnection, id: i64) -> AppResult<DataRequestRow> {
    Ok(data_requests::table.find(id).select(DataRequestRow::as_select()).first(conn)?)
}

/// Get a data subject's request (office staff).
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The request's id")),
    responses((status = 200, description = "The request", body = DataRequest,
        headers(("ETag" = String, description = "The version")))),
)]
#[get("/data-requests/{id}")]
pub async fn get_request(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(super::HIDDEN_FROM)?;
    caller.require_office()?;
    let id = id.into_inner();
    let row = db::run(&state.pool, move |conn| find(conn, id)).await?;
    Ok(ok(row.version, row.answer(db::now())?))
}

/// Move a request on, or replace its note (office staff; honours `If-Match`). The body names
/// what changes; an absent or null field keeps its value.
///
/// `received` → `in_progress` → `done` | `refused`; a received request may be closed at once.
/// `refused` needs a `refusal_reason`. A closed request, or a step back, is 409.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The request's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the request changed since"),
    ),
    request_body = DataRequestPatch,
    responses(
        (status = 200, description = "The request", body = DataRequest,
            headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "The request is closed, or the step goes back", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/data-requests/{id}")]
pub async fn update_request(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<DataRequestPatch>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(super::HIDDEN_FROM)?;
    caller.require_office()?;
    let (id, user, patch) = (id.into_inner(), caller.id, body.0);
    let mut errors: Vec<FieldError> =
        [bounded("refusal_reason", &patch.refusal_reason), bounded("note", &patch.note)]
            .into_iter()
            .filter_map(Result::err)
            .collect();
    match (patch.status, &patch.refusal_reason) {
        (Some(RequestStatus::Refused), None) => {
            errors.push(FieldError::new("refusal_reason", "required", "is required to refuse"))
        }
        (status, Some(_)) if status != Some(RequestStatus::Refused) => {
            errors.push(FieldError::new("refusal_reason", "not_allowed", "only goes with status refused"))
        }
        (Some(RequestStatus::Received), _) => {
            errors.push(FieldError::new("status", "invalid", "must be in_progress, done or refused"))
        }
        _ => {}
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let now = db::now();
    let row = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let before = find(conn, id)?;
            if_match.check(before.version)?;
            let current: RequestStatus = parsed(&before.status)?;
            let next = patch.status.unwrap_or(current);
            if patch.status.is_some() && !current.is_open() {
                return Err(AppError::Conflict(format!("the request is closed ({})", before.status)));
            }
            if patch.status == Some(current) {
                return Err(AppError::Conflict(format!("the request is already {}", before.status)));
            }
            let closing = !next.is_open() && current.is_open();
            // The version read is the one replaced: a writer in between makes this a 412
            // (and, without If-Match, the change runs again on what it wrote).
            let updated = diesel::update(
                data_requests::table
                    .filter(data_requests::id.eq(id))
                    .filter(data_requests::version.eq(before.version)),
            )
            .set((
                data_requests::status.eq(text(next)),
                data_requests::refusal_reason
                    .eq(patch.refusal_reason.clone().or(before.refusal_reason.clone())),
                data_requests::note.eq(patch.note.clone().or(before.note.clone())),
                data_requests::closed_at.eq(if closing { Some(now) } else { before.closed_at }),
                data_requests::updated_at.eq(now),
                data_requests::version.eq(before.version + 1),
            ))
            .execute(conn)?;
            if updated == 0 {
                return Err(AppError::PreconditionFailed);
            }
            let after = find(conn, id)?;
            audit::record(
                conn,
                user,
                Action::Update,
                "data_request",
                id,
                &audit::diff(&before, &after, &[]),
            )?;
            Ok(after)
        })
    })
    .await?;
    Ok(ok(row.version, row.answer(now)?))
}

/// Person `person`'s requests, oldest first (the data export's).
pub fn of_person(conn: &mut DbConnection, person: i64) -> AppResult<Vec<DataRequest>> {
    let now = db::now();
    data_requests::table
        .filter(data_requests::person_id.eq(person))
        .order(data_requests::id)
        .select(DataRequestRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| r.answer(now))
        .collect()
}
