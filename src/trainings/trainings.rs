//! Trainings themselves: the programme's title, dates, venue and seats, shown with their
//! counts of registrants and selected. A training may be created with its first registrations.

use std::collections::HashMap;

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::HIDDEN_FROM;
use super::registrations::{self, RegistrationInput, RegistrationStatus};
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{registrations as registrations_table, trainings};
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, ok};
use crate::http::idempotency::IdempotencyKey;
use crate::http::input::{Check, Field};
use crate::http::list::{self, Page, PageParams, Sort, SortField};
use crate::http::patch::merged;
use crate::state::AppState;
use crate::summary::{Deltas, Figure};

/// The most registrations a training may be created with in one request.
pub const MAX_NESTED_REGISTRATIONS: usize = 10_000;

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

/// The columns of a training a client fills, checked.
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
pub struct TrainingRow {
    pub(super) id: i64,
    title: String,
    theme: Option<String>,
    venue: Option<String>,
    pub(super) starts_on: NaiveDate,
    ends_on: NaiveDate,
    pub(super) capacity: i32,
    pub(super) registration_closes_at: Option<NaiveDateTime>,
    selected_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    pub(super) version: i32,
}

impl TrainingRow {
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

    /// Whether the training's first day has come at `now`.
    pub(super) fn has_started(&self, now: NaiveDateTime) -> bool {
        now.date() >= self.starts_on
    }

    fn view(self, counts: Counts) -> Training {
        Training {
            id: self.id,
            title: self.title,
            theme: self.theme,
            venue: self.venue,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            capacity: self.capacity,
            registration_closes_at: self.registration_closes_at.map(|x| x.and_utc()),
            selected_at: self.selected_at.map(|x| x.and_utc()),
            registrants: counts.registrants,
            selected: counts.selected,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            version: self.version,
        }
    }
}

/// A training as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = TrainingView)]
pub struct Training {
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

/// The fields of a training the server computes: a merge patch may not set them.
const COMPUTED: [&str; 3] = ["selected_at", "registrants", "selected"];

/// A training's registrations: all of them, and those with a seat.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    registrants: i64,
    selected: i64,
}

/// The trainings `rows` as the API shows them, their registration counts read with one grouped
/// query per 500 trainings (a page holds at most 500), not one query per training.
fn with_counts(conn: &mut DbConnection, rows: Vec<TrainingRow>) -> QueryResult<Vec<Training>> {
    let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
    let mut counts: HashMap<i64, Counts> = HashMap::new();
    for chunk in ids.chunks(500) {
        let grouped: Vec<(i64, String, i64)> = registrations_table::table
            .filter(registrations_table::training_id.eq_any(chunk))
            .group_by((registrations_table::training_id, registrations_table::status))
            .select((
                registrations_table::training_id,
                registrations_table::status,
                diesel::dsl::count_star(),
            ))
            .load(conn)?;
        for (training, status, n) in grouped {
            let entry = counts.entry(training).or_default();
            entry.registrants += n;
            if matches!(
                RegistrationStatus::parse(&status),
                RegistrationStatus::Selected | RegistrationStatus::Attended
            ) {
                entry.selected += n;
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|t| {
            let of_training = counts.get(&t.id).copied().unwrap_or_default();
            t.view(of_training)
        })
        .collect())
}

/// One training as the API shows it, through [`with_counts`].
fn shown(conn: &mut DbConnection, row: TrainingRow) -> AppResult<Training> {
    with_counts(conn, vec![row])?.pop().ok_or_else(|| AppError::internal("a training went missing"))
}

/// Finds a training.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<TrainingRow> {
    trainings::table.find(id).select(TrainingRow::as_select()).first(conn)
}

/// Creates a training and its first registrations (all or nothing); writes their audit
/// entries. One 422 names every bad field of the training and of its registrations.
pub fn create(conn: &mut DbConnection, user_id: i64, mut input: TrainingInput) -> AppResult<TrainingRow> {
    let mut check = Check::default();
    let nested = check.optional("registrations", std::mem::take(&mut input.registrations));
    let too_many = nested.as_ref().is_some_and(|r| r.len() > MAX_NESTED_REGISTRATIONS);
    if too_many {
        check.fail("registrations", "too_many", format!("at most {MAX_NESTED_REGISTRATIONS} registrations"));
    }
    // The closing time as sent, so that the registrations are checked against it even when
    // another field of the training is bad.
    let closes = match &input.registration_closes_at {
        Field::Value(t) => Some(t.naive_utc()),
        _ => None,
    };
    let record = check_training(input, &mut check);
    let nested = match nested {
        Some(list) if !too_many => {
            let inputs =
                list.into_iter().enumerate().map(|(i, v)| (format!("registrations[{i}]."), v)).collect();
            registrations::check_all(conn, &mut check, closes, inputs)?
        }
        _ => Vec::new(),
    };
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
    Deltas::new().count(Figure::Trainings, 0, "", 1).apply(conn)?;
    audit::record(conn, user_id, Action::Create, "training", id, &audit::snapshot(&record, &[]))?;
    registrations::insert_all(conn, user_id, id, nested)?;
    Ok(find(conn, id)?)
}

/// The fields of [`TrainingInput`] a merge patch may not carry: registrations are added
/// through their own resource.
pub const NOT_PATCHED: [&str; 1] = ["registrations"];

/// Applies a merge patch to training `id` if it still has the version `if_match` names; writes
/// its audit entry. Registrations are added through their own resource, not by a patch.
pub fn update(
    conn: &mut DbConnection,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: &Value,
) -> AppResult<TrainingRow> {
    if NOT_PATCHED.iter().any(|field| patch.get(field).is_some()) {
        return Err(AppError::invalid(
            NOT_PATCHED[0],
            "read_only",
            "add registrations with POST /trainings/{id}/registrations",
        ));
    }
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    // The counts are dropped with the other computed fields before the patch is merged.
    let input: TrainingInput = merged(&current.clone().view(Counts::default()), patch, &COMPUTED)?;
    let mut check = Check::default();
    let record = check_training(input, &mut check);
    let record = check.finish(|| record)?;
    crate::versioned_update!(conn, trainings, id, current.version, &record)?;
    audit::record(
        conn,
        user_id,
        Action::Update,
        "training",
        id,
        &audit::diff(&current.record(), &record, &[]),
    )?;
    Ok(find(conn, id)?)
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
    type Row = TrainingRow;
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
    responses((status = 200, description = "A page of trainings", body = Page<Training>)),
)]
#[get("/trainings")]
pub async fn list_trainings(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TrainingQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let query = query.into_inner();
    let sort = Sort::<TrainingSort>::parse(query.sort.as_deref(), "id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), None);
    let page = move |conn: &mut DbConnection, after: Option<&str>, limit| {
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
        let (rows, next) = list::keyset(conn, q.select(TrainingRow::as_select()), &sort, after, limit)?;
        Ok((with_counts(conn, rows)?, next))
    };
    list::json_page(&state.pool, params, page, |_| Ok(0)).await
}

/// Create a training, optionally with its first registrations (all or nothing).
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer")),
    request_body = TrainingInput,
    responses(
        (status = 201, description = "The new training", body = Training,
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
    create::once(&state.pool, state.data_keys.current(), user, "POST /trainings", key, body.0, move |conn| {
        let row = create(conn, user, input)?;
        let training = shown(conn, row)?;
        Ok(Created {
            location: format!("/api/v1/trainings/{}", training.id),
            version: training.version,
            body: serde_json::to_value(training).map_err(AppError::internal)?,
        })
    })
    .await
}

/// Get a training with its counts of registrants and selected.
#[utoipa::path(
    tag = "trainings",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The training's id")),
    responses((status = 200, description = "The training", body = Training, headers(("ETag" = String, description = "The version")))),
)]
#[get("/trainings/{id}")]
pub async fn get_training(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let id = id.into_inner();
    let training = db::run(&state.pool, move |conn| {
        let row = find(conn, id)?;
        shown(conn, row)
    })
    .await?;
    Ok(ok(training.version, training))
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
    responses((status = 200, description = "The changed training", body = Training, headers(("ETag" = String, description = "The new version")))),
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
    let training = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let row = update(conn, user, id, &if_match, &body.0)?;
            shown(conn, row)
        })
    })
    .await?;
    Ok(ok(training.version, training))
}
