//! Trainings (pelatihan): programmes, the businesses that register, and the selection that
//! fills the seats. Attendance feeds the KUR super mikro eligibility waiver.

use std::collections::HashSet;
use utoipa_actix_web::service_config::ServiceConfig;

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{businesses, registrations, trainings};
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::domain::selection::{self, Candidate, Outcome};
use crate::error::{AppError, AppResult, FieldError};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, etag};
use crate::http::idempotency::IdempotencyKey;
use crate::http::input::{Check, Field};
use crate::http::list::{self, Page};
use crate::http::list::{Sort, SortField, page_of};
use crate::http::patch::merge_patch;
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_trainings)
        .service(create_training)
        .service(get_training)
        .service(update_training)
        .service(list_registrations)
        .service(create_registration)
        .service(update_registration)
        .service(select_participants);
}

/// The most registrations a training may be created with in one request.
pub const MAX_NESTED_REGISTRATIONS: usize = 10_000;

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

    fn parse(name: &str) -> RegistrationStatus {
        serde_json::from_value(Value::String(name.to_owned())).unwrap_or(RegistrationStatus::Registered)
    }
}

/// A training as a client sends it; `registrations` only on create.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingInput {
    /// Title, 1–200 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, example = "Pelatihan Kewirausahaan Mandiri UMKM")]
    pub title: Field<String>,
    /// Theme.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 500, example = "Strategi UMKM bertahan di masa pandemi")]
    pub theme: Field<String>,
    /// Venue.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 300, example = "Aula Gajah Mada Setda Lamongan")]
    pub venue: Field<String>,
    /// First day.
    #[serde(default)]
    #[schema(value_type = NaiveDate, required = true, example = "2021-09-29")]
    pub starts_on: Field<NaiveDate>,
    /// Last day, on or after `starts_on`.
    #[serde(default)]
    #[schema(value_type = NaiveDate, required = true, example = "2021-09-30")]
    pub ends_on: Field<NaiveDate>,
    /// Seats, 1 to 100,000.
    #[serde(default)]
    #[schema(value_type = i32, required = true, minimum = 1, example = 100)]
    pub capacity: Field<i32>,
    /// Registrations after this time are refused (422).
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub registration_closes_at: Field<DateTime<Utc>>,
    /// First registrations, created with the training in one transaction (create only).
    #[serde(default)]
    #[schema(value_type = Option<Vec<RegistrationInput>>)]
    pub registrations: Field<Vec<Value>>,
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

#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = trainings, treat_none_as_null = true)]
struct TrainingRecord {
    title: String,
    theme: Option<String>,
    venue: Option<String>,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    capacity: i32,
    registration_closes_at: Option<NaiveDateTime>,
}

fn check_training(input: TrainingInput, check: &mut Check) -> Option<TrainingRecord> {
    let title = check.text("title", input.title, 200);
    let theme = check.optional_text("theme", input.theme, 500);
    let venue = check.optional_text("venue", input.venue, 300);
    let starts_on = check.required("starts_on", input.starts_on);
    let ends_on = check.required("ends_on", input.ends_on);
    let capacity = check.required("capacity", input.capacity);
    let capacity = check.in_range("capacity", capacity, 1..=100_000);
    let closes =
        check.optional("registration_closes_at", input.registration_closes_at).map(|t| t.naive_utc());
    if let (Some(s), Some(e)) = (starts_on, ends_on)
        && e < s
    {
        check.fail("ends_on", "out_of_range", "must be on or after starts_on");
    }
    Some(TrainingRecord {
        title: title?,
        theme,
        venue,
        starts_on: starts_on?,
        ends_on: ends_on?,
        capacity: capacity?,
        registration_closes_at: closes,
    })
}

/// A training as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = trainings)]
pub struct Training {
    id: i64,
    title: String,
    theme: Option<String>,
    venue: Option<String>,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    capacity: i32,
    registration_closes_at: Option<NaiveDateTime>,
    selected_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

impl Training {
    fn record(&self) -> TrainingRecord {
        TrainingRecord {
            title: self.title.clone(),
            theme: self.theme.clone(),
            venue: self.venue.clone(),
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            capacity: self.capacity,
            registration_closes_at: self.registration_closes_at,
        }
    }

    fn has_started(&self, now: NaiveDateTime) -> bool {
        now.date() >= self.starts_on
    }
}

/// A training as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrainingView {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Theme.
    pub theme: Option<String>,
    /// Venue.
    pub venue: Option<String>,
    /// First day.
    pub starts_on: NaiveDate,
    /// Last day.
    pub ends_on: NaiveDate,
    /// Seats.
    pub capacity: i32,
    /// Registrations close.
    pub registration_closes_at: Option<DateTime<Utc>>,
    /// When the selection last ran.
    pub selected_at: Option<DateTime<Utc>>,
    /// Registrations, all statuses.
    pub registrants: i64,
    /// Registrations with a seat (`selected` or `attended`).
    pub selected: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

fn training_view(conn: &mut DbConnection, t: Training) -> QueryResult<TrainingView> {
    let statuses: Vec<String> = registrations::table
        .filter(registrations::training_id.eq(t.id))
        .select(registrations::status)
        .load(conn)?;
    let selected = statuses.iter().filter(|s| matches!(s.as_str(), "selected" | "attended")).count();
    Ok(TrainingView {
        id: t.id,
        title: t.title,
        theme: t.theme,
        venue: t.venue,
        starts_on: t.starts_on,
        ends_on: t.ends_on,
        capacity: t.capacity,
        registration_closes_at: t.registration_closes_at.map(|x| x.and_utc()),
        selected_at: t.selected_at.map(|x| x.and_utc()),
        registrants: i64::try_from(statuses.len()).unwrap_or(i64::MAX),
        selected: i64::try_from(selected).unwrap_or(i64::MAX),
        created_at: t.created_at.and_utc(),
        updated_at: t.updated_at.and_utc(),
        version: t.version,
    })
}

/// A registration as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = registrations)]
pub struct Registration {
    id: i64,
    training_id: i64,
    business_id: i64,
    status: String,
    registered_at: NaiveDateTime,
    selection_rank: Option<i32>,
    note: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

/// A registration as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistrationView {
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

impl From<Registration> for RegistrationView {
    fn from(r: Registration) -> Self {
        RegistrationView {
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

/// Trainings are the office's business: bank and retail users do not see them (404).
fn require_reader(caller: &Caller) -> AppResult<()> {
    if matches!(caller.role, Role::Bank | Role::Retail) { Err(AppError::NotFound) } else { Ok(()) }
}

fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Training> {
    trainings::table.find(id).select(Training::as_select()).first(conn)
}

fn find_registration(conn: &mut DbConnection, id: i64) -> QueryResult<Registration> {
    registrations::table.find(id).select(Registration::as_select()).first(conn)
}

/// Checks registrations for `training`, collecting every problem (`prefix` names their place in
/// the request), and inserts them. A business registered twice is 409.
fn register(
    conn: &mut DbConnection,
    user_id: i64,
    training: &Training,
    inputs: Vec<(String, Value)>,
) -> AppResult<Vec<i64>> {
    let now = db::now();
    let mut errors: Vec<FieldError> = Vec::new();
    let mut rows = Vec::with_capacity(inputs.len());
    let mut seen = HashSet::new();
    for (prefix, value) in inputs {
        let input: RegistrationInput = match crate::http::parse_json(value.to_string().as_bytes()) {
            Ok(input) => input,
            Err(AppError::Validation(problems)) => {
                errors.extend(
                    problems.into_iter().map(|e| FieldError { field: format!("{prefix}{}", e.field), ..e }),
                );
                continue;
            }
            Err(other) => return Err(other),
        };
        let mut check = Check::with_prefix(prefix);
        let business = check.required("business_id", input.business_id);
        let at = check.optional("registered_at", input.registered_at).map_or(now, |t| t.naive_utc());
        let note = check.optional_text("note", input.note, 1000);
        if at > now + chrono::Duration::minutes(1) {
            check.fail("registered_at", "out_of_range", "must not be in the future");
        } else if training.registration_closes_at.is_some_and(|closes| at > closes) {
            check.fail("registered_at", "registration_closed", "registration closed before this time");
        }
        if let Some(business) = business {
            let exists: bool =
                diesel::select(diesel::dsl::exists(businesses::table.find(business))).get_result(conn)?;
            if !exists {
                check.fail("business_id", "not_found", "no business has this id");
            } else if !seen.insert(business) {
                check.fail("business_id", "duplicate", "the business is registered twice in this request");
            }
            if check.errors.is_empty() {
                rows.push((business, at, note));
            }
        }
        errors.extend(check.errors);
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let mut ids = Vec::with_capacity(rows.len());
    for (business, at, note) in rows {
        let id: i64 = diesel::insert_into(registrations::table)
            .values((
                registrations::training_id.eq(training.id),
                registrations::business_id.eq(business),
                registrations::status.eq(RegistrationStatus::Registered.as_str()),
                registrations::registered_at.eq(at),
                registrations::note.eq(&note),
                registrations::created_at.eq(now),
                registrations::updated_at.eq(now),
                registrations::version.eq(1),
            ))
            .returning(registrations::id)
            .get_result(conn)
            .map_err(|e| match AppError::from(e) {
                AppError::Conflict(_) => {
                    AppError::Conflict(format!("business {business} is already registered for this training"))
                }
                other => other,
            })?;
        ids.push(id);
    }
    let entries: Vec<(i64, Value)> = ids
        .iter()
        .map(|id| (*id, serde_json::json!({"training_id": training.id, "status": "registered"})))
        .collect();
    audit::record_many(conn, user_id, Action::Create, "registration", &entries)?;
    Ok(ids)
}

fn create(conn: &mut DbConnection, user_id: i64, mut input: TrainingInput) -> AppResult<Training> {
    let mut check = Check::default();
    let registrations = check.optional("registrations", std::mem::take(&mut input.registrations));
    if registrations.as_ref().is_some_and(|r| r.len() > MAX_NESTED_REGISTRATIONS) {
        check.fail("registrations", "too_many", format!("at most {MAX_NESTED_REGISTRATIONS} registrations"));
    }
    let record = check_training(input, &mut check);
    let record = check.finish(|| record)?;
    let now = db::now();
    let id: i64 = diesel::insert_into(trainings::table)
        .values((
            &record,
            trainings::created_at.eq(now),
            trainings::updated_at.eq(now),
            trainings::version.eq(1),
        ))
        .returning(trainings::id)
        .get_result(conn)?;
    audit::record(conn, user_id, Action::Create, "training", id, &audit::snapshot(&record, &[]))?;
    let training = find(conn, id)?;
    if let Some(list) = registrations {
        let inputs = list.into_iter().enumerate().map(|(i, v)| (format!("registrations[{i}]."), v)).collect();
        register(conn, user_id, &training, inputs)?;
    }
    Ok(training)
}

fn update(
    conn: &mut DbConnection,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: &Value,
) -> AppResult<Training> {
    if !patch.is_object() {
        return Err(AppError::invalid("body", "invalid_type", "a merge patch must be a JSON object"));
    }
    if patch.get("registrations").is_some() {
        return Err(AppError::invalid(
            "registrations",
            "read_only",
            "add registrations with POST /trainings/{id}/registrations",
        ));
    }
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    let before = current.record();
    let mut merged = serde_json::to_value(&before).map_err(AppError::internal)?;
    if let Some(closes) = current.registration_closes_at {
        merged["registration_closes_at"] = serde_json::json!(closes.and_utc());
    }
    if let Value::Object(map) = &mut merged {
        map.retain(|_, v| !v.is_null());
    }
    merge_patch(&mut merged, patch);
    let input: TrainingInput = crate::http::parse_json(merged.to_string().as_bytes())?;
    let mut check = Check::default();
    let record = check_training(input, &mut check);
    let record = check.finish(|| record)?;
    let changed = diesel::update(trainings::table.find(id).filter(trainings::version.eq(current.version)))
        .set((&record, trainings::updated_at.eq(db::now()), trainings::version.eq(current.version + 1)))
        .execute(conn)?;
    if changed == 0 {
        return Err(AppError::PreconditionFailed);
    }
    audit::record(conn, user_id, Action::Update, "training", id, &audit::diff(&before, &record, &[]))?;
    Ok(find(conn, id)?)
}

/// What a selection did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SelectionResult {
    /// Registrations given a seat.
    pub selected: i64,
    /// Registrations put on the waitlist.
    pub waitlisted: i64,
    /// Registrations left out (`rejected` or `attended`).
    pub skipped: i64,
}

/// Runs the selection rule of [`crate::domain::selection`] over the training's registrations
/// that are `registered`, `selected` or `waitlisted`.
fn run_selection(conn: &mut DbConnection, user_id: i64, id: i64) -> AppResult<SelectionResult> {
    let training = find(conn, id)?;
    let now = db::now();
    if training.has_started(now) {
        return Err(AppError::Conflict("the training has started; its selection is final".into()));
    }
    let rows: Vec<(Registration, Option<String>)> = registrations::table
        .inner_join(businesses::table)
        .filter(registrations::training_id.eq(id))
        .select((Registration::as_select(), businesses::scale))
        .load(conn)?;
    let business_ids: Vec<i64> = rows.iter().map(|(r, _)| r.business_id).collect();
    let mut trained: HashSet<i64> = HashSet::new();
    for chunk in business_ids.chunks(500) {
        trained.extend(
            registrations::table
                .filter(registrations::business_id.eq_any(chunk))
                .filter(registrations::status.eq(RegistrationStatus::Attended.as_str()))
                .filter(registrations::training_id.ne(id))
                .select(registrations::business_id)
                .load::<i64>(conn)?,
        );
    }
    let mut skipped = 0;
    let mut candidates = Vec::new();
    for (r, scale) in &rows {
        match RegistrationStatus::parse(&r.status) {
            RegistrationStatus::Rejected | RegistrationStatus::Attended => skipped += 1,
            _ => candidates.push(Candidate {
                registration_id: r.id,
                micro: scale.as_deref() == Some("mikro"),
                trained_before: trained.contains(&r.business_id),
                registered_at: r.registered_at,
            }),
        }
    }
    let capacity = usize::try_from(training.capacity).unwrap_or(0);
    let (mut selected, mut waitlisted) = (0, 0);
    let mut changes = Vec::new();
    for (registration, outcome, rank) in selection::select(candidates, capacity) {
        let status = match outcome {
            Outcome::Selected => {
                selected += 1;
                RegistrationStatus::Selected
            }
            Outcome::Waitlisted => {
                waitlisted += 1;
                RegistrationStatus::Waitlisted
            }
        };
        let changed =
            diesel::update(registrations::table.find(registration).filter(
                registrations::status.ne(status.as_str()).or(registrations::selection_rank.ne(rank)),
            ))
            .set((
                registrations::status.eq(status.as_str()),
                registrations::selection_rank.eq(rank),
                registrations::updated_at.eq(now),
                registrations::version.eq(registrations::version + 1),
            ))
            .execute(conn)?;
        if changed > 0 {
            changes.push((
                registration,
                serde_json::json!({"status": {"to": status}, "selection_rank": {"to": rank}}),
            ));
        }
    }
    audit::record_many(conn, user_id, Action::Update, "registration", &changes)?;
    diesel::update(trainings::table.find(id)).set(trainings::selected_at.eq(now)).execute(conn)?;
    Ok(SelectionResult { selected, waitlisted, skipped })
}

/// The columns a training list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingSort {
    /// `id`.
    Id,
    /// `starts_on`.
    StartsOn,
    /// `updated_at`.
    UpdatedAt,
}

impl SortField for TrainingSort {
    type Table = trainings::table;
    type Row = Training;
    const ID: Self = TrainingSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[
        ("id", TrainingSort::Id),
        ("starts_on", TrainingSort::StartsOn),
        ("updated_at", TrainingSort::UpdatedAt),
    ];

    crate::sort_columns!(trainings;
        TrainingSort::Id => (id, Int),
        TrainingSort::StartsOn => (starts_on, Date),
        TrainingSort::UpdatedAt => (updated_at, Time),
    );
}

/// Filters and paging of the training list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrainingQuery {
    /// Starting on or after this date.
    pub from: Option<NaiveDate>,
    /// Starting on or before this date.
    pub to: Option<NaiveDate>,
    /// Changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// `id`, `starts_on` or `updated_at`, `-` for descending (default `id`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List trainings.
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(TrainingQuery),
    responses((status = 200, description = "A page of trainings", body = Page<TrainingView>)),
)]
#[get("/trainings")]
pub async fn list_trainings(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TrainingQuery>,
) -> AppResult<web::Json<Page<TrainingView>>> {
    require_reader(&caller)?;
    let query = query.into_inner();
    let sort = Sort::<TrainingSort>::parse(query.sort.as_deref(), "id")?;
    let limit = list::limit(query.limit)?;
    let page = db::run(&state.pool, move |conn| {
        let mut q = trainings::table.into_boxed();
        if let Some(from) = query.from {
            q = q.filter(trainings::starts_on.ge(from));
        }
        if let Some(to) = query.to {
            q = q.filter(trainings::starts_on.le(to));
        }
        if let Some(since) = query.updated_since {
            q = q.filter(trainings::updated_at.ge(since.naive_utc()));
        }
        if let Some(cursor) = &query.cursor {
            q = q.filter(sort.after(cursor)?);
        }
        for (field, dir) in &sort.keys {
            q = q.then_order_by(field.order(*dir));
        }
        let rows: Vec<Training> = q.limit(limit + 1).select(Training::as_select()).load(conn)?;
        let (rows, next_cursor) = page_of(rows, limit, &sort);
        let data = rows.into_iter().map(|t| training_view(conn, t)).collect::<QueryResult<_>>()?;
        Ok(Page { data, next_cursor, total: None })
    })
    .await?;
    Ok(web::Json(page))
}

/// Create a training, optionally with its first registrations (all or nothing).
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer")),
    request_body = TrainingInput,
    responses(
        (status = 201, description = "The new training", body = TrainingView,
            headers(("Location" = String, description = "The training's URL"), ("ETag" = String, description = "The version"))),
        (status = 409, description = "A business is registered twice", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/trainings")]
pub async fn create_training(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let input: TrainingInput = crate::http::parse_json(body.0.to_string().as_bytes())?;
    let user = caller.id;
    create::once(&state.pool, user, "POST /trainings", key, body.0, move |conn| {
        let training = create(conn, user, input)?;
        let view = training_view(conn, training)?;
        Ok(Created {
            location: format!("/api/v1/trainings/{}", view.id),
            version: view.version,
            body: serde_json::to_value(view).map_err(AppError::internal)?,
        })
    })
    .await
}

fn training_response(view: TrainingView) -> HttpResponse {
    HttpResponse::Ok().insert_header(etag(view.version)).json(view)
}

/// Get a training with its counts of registrants and selected.
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The training's id")),
    responses((status = 200, description = "The training", body = TrainingView, headers(("ETag" = String, description = "The version")))),
)]
#[get("/trainings/{id}")]
pub async fn get_training(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    require_reader(&caller)?;
    let id = id.into_inner();
    let view = db::run(&state.pool, move |conn| {
        let training = find(conn, id)?;
        Ok(training_view(conn, training)?)
    })
    .await?;
    Ok(training_response(view))
}

/// Change a training (JSON merge patch; honours `If-Match`).
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The training's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    request_body(content = TrainingInput, content_type = "application/merge-patch+json", description = "Any subset of the fields, without registrations"),
    responses((status = 200, description = "The changed training", body = TrainingView, headers(("ETag" = String, description = "The new version")))),
)]
#[patch("/trainings/{id}")]
pub async fn update_training(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let view = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let training = update(conn, user, id, &if_match, &body.0)?;
            Ok(training_view(conn, training)?)
        })
    })
    .await?;
    Ok(training_response(view))
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
    responses((status = 200, description = "A page of registrations", body = Page<RegistrationView>)),
)]
#[get("/trainings/{id}/registrations")]
pub async fn list_registrations(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<RegistrationQuery>,
) -> AppResult<web::Json<Page<RegistrationView>>> {
    require_reader(&caller)?;
    let id = id.into_inner();
    let query = query.into_inner();
    let limit = list::limit(query.limit)?;
    let after: Option<i64> = query.cursor.as_deref().map(list::decode_cursor).transpose()?;
    let page = db::run(&state.pool, move |conn| {
        find(conn, id)?;
        let filtered = || {
            let mut q = registrations::table.filter(registrations::training_id.eq(id)).into_boxed();
            if let Some(status) = query.status {
                q = q.filter(registrations::status.eq(status.as_str()));
            }
            q
        };
        let total = if query.count == Some(true) { Some(filtered().count().get_result(conn)?) } else { None };
        let mut q = filtered();
        if let Some(after) = after {
            q = q.filter(registrations::id.gt(after));
        }
        let rows: Vec<Registration> =
            q.order(registrations::id.asc()).limit(limit + 1).select(Registration::as_select()).load(conn)?;
        let (rows, next_cursor) = list::paginate(rows, limit, |r| r.id);
        Ok(Page { data: rows.into_iter().map(RegistrationView::from).collect(), next_cursor, total })
    })
    .await?;
    Ok(web::Json(page))
}

/// Register a business for a training (409 if it is registered already; 422 after
/// `registration_closes_at`).
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The training's id")),
    request_body = RegistrationInput,
    responses(
        (status = 201, description = "The registration", body = RegistrationView,
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
    let registration = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let training = find(conn, id)?;
            let ids = register(conn, user, &training, vec![(String::new(), body.0)])?;
            let first = ids.first().copied().ok_or_else(|| AppError::internal("no registration created"))?;
            Ok(find_registration(conn, first)?)
        })
    })
    .await?;
    Ok(crate::http::etag::created(
        format!("/api/v1/registrations/{}", registration.id),
        registration.version,
        RegistrationView::from(registration),
    ))
}

/// An officer's change to a registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationPatch {
    /// New status. `attended` only once the training has started.
    #[serde(default)]
    pub status: Option<RegistrationStatus>,
    /// New note, or `null` to clear it.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
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
        (status = 200, description = "The changed registration", body = RegistrationView, headers(("ETag" = String, description = "The new version"))),
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
    let patch = body.0;
    let registration = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let current = find_registration(conn, id)?;
            if_match.check(current.version)?;
            let training = find(conn, current.training_id)?;
            if patch.status == Some(RegistrationStatus::Attended) && !training.has_started(db::now()) {
                return Err(AppError::Conflict(
                    "a registration can be marked attended once the training has started".into(),
                ));
            }
            let note = match patch.note {
                Some(Some(n)) if n.chars().count() > 1000 => {
                    return Err(AppError::invalid("note", "too_long", "must be at most 1000 characters"));
                }
                Some(n) => n,
                None => current.note.clone(),
            };
            let status = patch.status.map_or(current.status.clone(), |s| s.as_str().to_owned());
            diesel::update(registrations::table.find(id).filter(registrations::version.eq(current.version)))
                .set((
                    registrations::status.eq(&status),
                    registrations::note.eq(&note),
                    registrations::updated_at.eq(db::now()),
                    registrations::version.eq(current.version + 1),
                ))
                .execute(conn)?;
            let after = find_registration(conn, id)?;
            audit::record(
                conn,
                user,
                Action::Update,
                "registration",
                id,
                &audit::diff(&current, &after, &[]),
            )?;
            Ok(after)
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(registration.version))
        .json(RegistrationView::from(registration)))
}

/// Run the selection: fill `capacity` seats from the registrations that are `registered`,
/// `selected` or `waitlisted`, the rest waitlisted. Micro businesses come first, then
/// businesses that never attended a training, then earlier registrations, then lower ids.
/// Deterministic: running it again without changes gives the same result. `rejected` and
/// `attended` registrations are left alone. 409 once the training has started.
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The training's id")),
    responses(
        (status = 200, description = "What the selection did", body = SelectionResult),
        (status = 409, description = "The training has started", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/trainings/{id}/selection")]
pub async fn select_participants(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<web::Json<SelectionResult>> {
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let result =
        db::run(&state.pool, move |conn| db::write(conn, |conn| run_selection(conn, user, id))).await?;
    Ok(web::Json(result))
}
