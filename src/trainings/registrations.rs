//! Registrations: a business's place in a training, from `registered` through the selection
//! (`selected`, `waitlisted`) to `attended`, or `rejected` by an officer.

use std::collections::HashSet;

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::HIDDEN_FROM;
use super::trainings::find as find_training;
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{businesses, registrations};
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult, FieldError, OnConflict};
use crate::http::Json;
use crate::http::etag::{IfMatch, created, ok};
use crate::http::input::{Check, Field};
use crate::http::list::{self, Page, PageParams, Sort};
use crate::state::AppState;
use crate::summary::{Deltas, Figure};

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// Registered, not yet selected.
    Registered,
    /// Has a seat.
    Selected,
    /// Next in line.
    Waitlisted,
    /// Turned down; left out of the selection.
    Rejected,
    /// Took part (only once the training has started).
    Attended,
}

impl RegistrationStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Registered => "registered",
            RegistrationStatus::Selected => "selected",
            RegistrationStatus::Waitlisted => "waitlisted",
            RegistrationStatus::Rejected => "rejected",
            RegistrationStatus::Attended => "attended",
        }
    }

    /// The status stored as `name` (`registered` for a name this version does not know).
    pub(super) fn parse(name: &str) -> RegistrationStatus {
        serde_json::from_value(Value::String(name.to_owned())).unwrap_or(RegistrationStatus::Registered)
    }
}

/// A registration as a client sends it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationInput {
    /// The business registering.
    #[serde(default)]
    #[schema(value_type = i64, required = true, example = 1)]
    pub business_id: Field<i64>,
    /// When it registered (default now; an officer may record a paper form's time). Not in
    /// the future, not after `registration_closes_at`.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub registered_at: Field<DateTime<Utc>>,
    /// A note.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub note: Field<String>,
}

/// A registration checked and ready to write.
#[derive(Debug, Clone)]
pub(super) struct RegistrationRecord {
    business_id: i64,
    registered_at: NaiveDateTime,
    note: Option<String>,
}

/// A registration as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = registrations)]
pub struct RegistrationRow {
    pub(super) id: i64,
    training_id: i64,
    pub(super) business_id: i64,
    pub(super) status: String,
    pub(super) registered_at: NaiveDateTime,
    pub(super) selection_rank: Option<i32>,
    note: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    pub(super) version: i32,
}

/// A registration as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RegistrationView)]
pub struct Registration {
    /// Id.
    pub id: i64,
    /// The training.
    pub training_id: i64,
    /// The business.
    pub business_id: i64,
    /// Where it stands.
    pub status: RegistrationStatus,
    /// When it registered.
    pub registered_at: DateTime<Utc>,
    /// Its place in the last selection (1 = first), if it took part.
    pub selection_rank: Option<i32>,
    /// A note.
    pub note: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

impl From<RegistrationRow> for Registration {
    fn from(r: RegistrationRow) -> Self {
        Registration {
            id: r.id,
            training_id: r.training_id,
            business_id: r.business_id,
            status: RegistrationStatus::parse(&r.status),
            registered_at: r.registered_at.and_utc(),
            selection_rank: r.selection_rank,
            note: r.note,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
            version: r.version,
        }
    }
}

/// Finds a registration.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<RegistrationRow> {
    registrations::table.find(id).select(RegistrationRow::as_select()).first(conn)
}

/// Checks registrations for a training whose registrations close at `closes`, adding every
/// problem to `check` (each input's prefix names its place in the request): the shape of each
/// body, its times, and that its business exists and is not registered twice in the request.
pub(super) fn check_all(
    conn: &mut DbConnection,
    check: &mut Check,
    closes: Option<NaiveDateTime>,
    inputs: Vec<(String, Value)>,
) -> AppResult<Vec<RegistrationRecord>> {
    let now = db::now();
    let mut records = Vec::with_capacity(inputs.len());
    let mut seen = HashSet::new();
    for (prefix, value) in inputs {
        let input: RegistrationInput = match crate::http::parse_json(value.to_string().as_bytes()) {
            Ok(input) => input,
            Err(AppError::Validation(problems)) => {
                check.errors.extend(
                    problems.into_iter().map(|e| FieldError { field: format!("{prefix}{}", e.field), ..e }),
                );
                continue;
            }
            Err(other) => return Err(other),
        };
        let mut one = Check::with_prefix(prefix);
        let business = one.required("business_id", input.business_id);
        let at = one.optional("registered_at", input.registered_at).map_or(now, |t| t.naive_utc());
        let note = one.optional_text("note", input.note, 1000);
        if at > now + chrono::Duration::minutes(1) {
            one.fail("registered_at", "out_of_range", "must not be in the future");
        } else if closes.is_some_and(|closes| at > closes) {
            one.fail("registered_at", "registration_closed", "registration closed before this time");
        }
        if let Some(business) = business {
            let exists: bool =
                diesel::select(diesel::dsl::exists(businesses::table.find(business))).get_result(conn)?;
            if !exists {
                one.fail("business_id", "not_found", "no business has this id");
            } else if !seen.insert(business) {
                one.fail("business_id", "duplicate", "the business is registered twice in this request");
            }
            if one.errors.is_empty() {
                records.push(RegistrationRecord { business_id: business, registered_at: at, note });
            }
        }
        check.errors.extend(one.errors);
    }
    Ok(records)
}

/// Inserts checked registrations of training `training_id` and their audit entries. A business
/// registered already is 409.
pub(super) fn insert_all(
    conn: &mut DbConnection,
    user_id: i64,
    training_id: i64,
    records: Vec<RegistrationRecord>,
) -> AppResult<Vec<i64>> {
    let now = db::now();
    let mut ids = Vec::with_capacity(records.len());
    for record in records {
        let business = record.business_id;
        let id: i64 = diesel::insert_into(registrations::table)
            .values((
                registrations::training_id.eq(training_id),
                registrations::business_id.eq(business),
                registrations::status.eq(RegistrationStatus::Registered.as_str()),
                registrations::registered_at.eq(record.registered_at),
                registrations::note.eq(&record.note),
                registrations::created_at.eq(now),
                registrations::updated_at.eq(now),
                registrations::version.eq(1),
            ))
            .returning(registrations::id)
            .get_result(conn)
            .on_conflict(format!("business {business} is already registered for this training"))?;
        ids.push(id);
    }
    let registered = RegistrationStatus::Registered.as_str();
    let n = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    Deltas::new().count(Figure::Registrations, training_id, registered, n).apply(conn)?;
    let entries: Vec<(i64, Value)> = ids
        .iter()
        .map(|id| (*id, serde_json::json!({"training_id": training_id, "status": "registered"})))
        .collect();
    audit::record_many(conn, user_id, Action::Create, "registration", &entries)?;
    Ok(ids)
}

/// Registers a business for training `training_id`; writes its audit entry.
pub fn create(
    conn: &mut DbConnection,
    user_id: i64,
    training_id: i64,
    body: Value,
) -> AppResult<RegistrationRow> {
    let training = find_training(conn, training_id)?;
    let mut check = Check::default();
    let records = check_all(conn, &mut check, training.registration_closes_at, vec![(String::new(), body)])?;
    let records = check.finish(|| Some(records))?;
    let ids = insert_all(conn, user_id, training.id, records)?;
    let id = ids.first().copied().ok_or_else(|| AppError::internal("no registration created"))?;
    Ok(find(conn, id)?)
}

/// An officer's change to a registration.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationPatch {
    /// New status. `attended` only once the training has started.
    #[serde(default)]
    pub status: Option<RegistrationStatus>,
    /// New note, or `null` to clear it.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub note: Option<Option<String>>,
}

/// Applies `patch` to registration `id` if it still has the version `if_match` names; writes
/// its audit entry. `attended` is 409 before the training has started.
pub fn update(
    conn: &mut DbConnection,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: RegistrationPatch,
) -> AppResult<RegistrationRow> {
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    let training = find_training(conn, current.training_id)?;
    if patch.status == Some(RegistrationStatus::Attended) && !training.has_started(db::now()) {
        return Err(AppError::Conflict(
            "a registration can be marked attended once the training has started".into(),
        ));
    }
    let mut check = Check::default();
    let note = match patch.note {
        Some(note) => note.and_then(|n| check.trimmed("note", n, 1000)),
        None => current.note.clone(),
    };
    check.finish(|| Some(()))?;
    let status = patch.status.map_or(current.status.clone(), |s| s.as_str().to_owned());
    crate::versioned_update!(
        conn,
        registrations,
        id,
        current.version,
        (registrations::status.eq(&status), registrations::note.eq(&note)),
    )?;
    let after = find(conn, id)?;
    let mut deltas = Deltas::new();
    deltas.count(Figure::Registrations, current.training_id, &current.status, -1).count(
        Figure::Registrations,
        current.training_id,
        &after.status,
        1,
    );
    deltas.apply(conn)?;
    audit::record(conn, user_id, Action::Update, "registration", id, &audit::diff(&current, &after, &[]))?;
    // An attended training waives a KUR super mikro programme's minimum age.
    if current.status != after.status {
        crate::banks::feed::refresh(conn, &[current.business_id])?;
    }
    Ok(after)
}

/// Filters and paging of a training's registrations.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegistrationQuery {
    /// Only registrations with this status.
    pub status: Option<RegistrationStatus>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Add the exact `total`.
    pub count: Option<bool>,
}

/// List a training's registrations, by id.
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The training's id"), RegistrationQuery),
    responses((status = 200, description = "A page of registrations", body = Page<Registration>)),
)]
#[get("/trainings/{id}/registrations")]
pub async fn list_registrations(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<RegistrationQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let id = id.into_inner();
    let query = query.into_inner();
    let sort = Sort::<RegistrationOrder>::parse(None, "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), query.count);
    let status = query.status;
    let filtered = move || {
        let mut q = registrations::table.filter(registrations::training_id.eq(id)).into_boxed();
        if let Some(status) = status {
            q = q.filter(registrations::status.eq(status.as_str()));
        }
        q
    };
    list::json_page(
        &state.pool,
        params,
        move |conn, after, limit| {
            find_training(conn, id)?;
            let (rows, next) =
                list::keyset(conn, filtered().select(RegistrationRow::as_select()), &sort, after, limit)?;
            Ok((rows.into_iter().map(Registration::from).collect::<Vec<_>>(), next))
        },
        move |conn| Ok(filtered().count().get_result(conn)?),
    )
    .await
}

crate::key_order!(RegistrationOrder, registrations, RegistrationRow, id, Int);

/// Register a business for a training (409 if it is registered already; 422 after
/// `registration_closes_at`).
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The training's id")),
    request_body = RegistrationInput,
    responses(
        (status = 201, description = "The registration", body = Registration,
            headers(("Location" = String, description = "The registration's URL"), ("ETag" = String, description = "The version"))),
        (status = 409, description = "The business is already registered", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/trainings/{id}/registrations")]
pub async fn create_registration(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let registration =
        db::run(&state.pool, move |conn| db::write(conn, |conn| create(conn, user, id, body.0))).await?;
    Ok(created(
        format!("/api/v1/registrations/{}", registration.id),
        registration.version,
        Registration::from(registration),
    ))
}

/// Override one registration (after the selection, for example); honours `If-Match`.
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The registration's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    request_body(content = RegistrationPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed registration", body = Registration, headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "`attended` before the training started", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/registrations/{id}")]
pub async fn update_registration(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<RegistrationPatch>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let registration = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| update(conn, user, id, &if_match, body.0.clone()))
    })
    .await?;
    Ok(ok(registration.version, Registration::from(registration)))
}
