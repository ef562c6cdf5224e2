//! The owners of businesses as persons (`crate::persons`): one looked up by exact NIK, read,
//! corrected once for all their businesses, and their businesses listed.
//!
//! Who sees what: office staff everything; viewers the person masked as a business's owner
//! fields are (and no NIK look-up: they do not see NIKs); retail and bank users no person
//! (404), as they see no business's owner in full.

use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::db::{self, DbConnection};
use crate::disclosures::{self, Classes, Disclosure};
use crate::domain::codes::Nik;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::etag::{IfMatch, ok};
use crate::http::list::Page;
use crate::persons::{self, Person, PersonRow};
use crate::state::AppState;

use super::model::{Business, View, views};

/// Persons are the owners of businesses, which these roles do not see in full.
const HIDDEN_FROM: &[Role] = &[Role::Bank, Role::Retail];

/// The most businesses a person's list answers in one page (a person owns a handful).
const MAX_OWNED: i64 = 500;

/// `GET /persons`: an exact NIK, nothing else.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PersonQuery {
    /// The person's NIK, exactly (16 digits). Persons cannot be listed or searched otherwise.
    pub nik: Option<String>,
}

/// Find a person by NIK.
///
/// Exact look-up only, for office staff (viewers, who see NIKs masked, get 403). The answer
/// holds the one person with this NIK, or none.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(PersonQuery),
    responses(
        (status = 200, description = "The person with this NIK (none or one)", body = Page<Person>),
        (status = 400, description = "No NIK, or not a NIK", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/persons")]
pub async fn find_persons(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PersonQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    caller.require_office()?;
    let nik = query
        .into_inner()
        .nik
        .ok_or_else(|| AppError::BadRequest("persons are found by exact NIK only: give nik".into()))?;
    let nik = Nik::parse(&nik).map_err(|e| AppError::BadRequest(format!("nik {}", e.message)))?;
    let keys = state.data_keys.current();
    let found = db::run(&state.pool, move |conn| {
        let Some(row) = persons::find_by_nik(conn, &keys, nik.as_str())? else { return Ok(Vec::new()) };
        Ok(vec![Person::of(conn, &keys, &row, true)?])
    })
    .await?;
    caller.disclose(&req, Classes::PERSON, found.iter().map(|p| p.id)).await?;
    Ok(HttpResponse::Ok().json(Page { data: found, next_cursor: None, total: None }))
}

fn person(conn: &mut DbConnection, id: i64) -> AppResult<PersonRow> {
    Ok(persons::find(conn, id)?)
}

/// Get a person: their identifying fields, their businesses, and what is left to settle.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses((status = 200, description = "The person", body = Person,
        headers(("ETag" = String, description = "The version")))),
)]
#[get("/persons/{id}")]
pub async fn get_person(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    let (id, full) = (id.into_inner(), View::of(caller.role) == View::Full);
    let keys = state.data_keys.current();
    let found = db::run(&state.pool, move |conn| {
        let row = person(conn, id)?;
        Person::of(conn, &keys, &row, full)
    })
    .await?;
    if full {
        caller.disclose(&req, Classes::PERSON, [id]).await?;
    }
    Ok(ok(found.version, found))
}

/// Correct a person (JSON merge patch; honours `If-Match`).
///
/// Every business of theirs follows: their owner fields change, and so their version and
/// `updated_at`. Sending a field settles its conflicts. A NIK that is another person's is 409.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The person's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the person changed since"),
    ),
    request_body(content = persons::PersonPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The corrected person", body = Person,
            headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "The NIK is another person's", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/persons/{id}")]
pub async fn update_person(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    caller.require_office()?;
    let (id, user) = (id.into_inner(), caller.id);
    let keys = state.data_keys.current();
    let found = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let (row, changed) = persons::update(conn, &keys, user, id, &if_match, &body.0)?;
            if changed {
                let followed = follow_owner(conn, id, None)?;
                crate::banks::feed::refresh(conn, &followed)?;
            }
            Person::of(conn, &keys, &row, true)
        })
    })
    .await?;
    caller.disclose(&req, Classes::PERSON, [id]).await?;
    Ok(ok(found.version, found))
}

/// A person's businesses, masked as in the business list for the caller.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses((status = 200, description = "Their businesses, by id", body = Page<Business>)),
)]
#[get("/persons/{id}/businesses")]
pub async fn businesses_of_person(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    use crate::db::schema::businesses;
    use diesel::prelude::*;
    caller.hidden_from(HIDDEN_FROM)?;
    let (id, view) = (id.into_inner(), View::of(caller.role));
    let keys = state.data_keys.current();
    let found = db::run(&state.pool, move |conn| {
        person(conn, id)?;
        let rows = businesses::table
            .filter(businesses::owner_id.eq(id))
            .order(businesses::id)
            .limit(MAX_OWNED)
            .select(super::BusinessRow::as_select())
            .load(conn)?;
        views(&keys, rows, view)
    })
    .await?;
    if let Some(classes) = view.recorded().filter(|_| !found.is_empty()) {
        caller.disclose(&req, classes, [id]).await?;
    }
    Ok(HttpResponse::Ok().json(Page { data: found, next_cursor: None, total: None }))
}

/// `GET /persons/{id}/disclosures`: a page at a time.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrailQuery {
    /// Entries per page, 1–500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A person's disclosures, newest first: every answer that carried their data unmasked, to
/// whom (user or API client, and partner), through which route, with which classes of data
/// (`crate::disclosures`). Office staff only (viewers 403; retail and bank users 404).
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id"), TrailQuery),
    responses((status = 200, description = "A page of disclosures, newest first", body = Page<Disclosure>)),
)]
#[get("/persons/{id}/disclosures")]
pub async fn disclosures_of_person(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<TrailQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    caller.require_office()?;
    let (id, query) = (id.into_inner(), query.into_inner());
    let limit = crate::http::list::limit(query.limit)?;
    let before = crate::http::list::id_cursor(query.cursor.as_deref())?;
    let mut found = db::run(&state.pool, move |conn| {
        person(conn, id)?;
        Ok(disclosures::of_person(conn, id, before, limit + 1)?)
    })
    .await?;
    let next_cursor = crate::http::list::trim_to(&mut found, limit, |d| d.id);
    Ok(HttpResponse::Ok().json(Page { data: found, next_cursor, total: None }))
}

/// The businesses of person `owner`, whose fields they show, follow a change of the person:
/// locked in id order (after the person, which the change holds: persons, then businesses in id
/// order, then the banks' clocks, `crate::banks::feed`), their copy of the person's fields
/// written (`crate::persons::OwnerRow`), and their version and `updated_at` moved so that
/// incremental pulls see the owner's new fields, all but `writing`'s (the business its caller
/// writes, which moves its own). Their ids, whose banks' feed the caller recomputes.
pub fn follow_owner(conn: &mut DbConnection, owner: i64, writing: Option<i64>) -> AppResult<Vec<i64>> {
    use crate::db::schema::businesses;
    use crate::persons::OwnerRow;
    use diesel::prelude::*;
    let owned = db::lock_rows_of(conn, "businesses", "owner_id", owner)?;
    let person = OwnerRow::find(conn, owner)?;
    let others: Vec<i64> = owned.iter().copied().filter(|id| Some(*id) != writing).collect();
    for chunk in others.chunks(500) {
        diesel::update(businesses::table.filter(businesses::id.eq_any(chunk)))
            .set((
                person.copy(),
                businesses::updated_at.eq(db::now()),
                businesses::version.eq(businesses::version + 1),
            ))
            .execute(conn)?;
    }
    if let Some(id) = writing.filter(|id| owned.contains(id)) {
        diesel::update(businesses::table.find(id)).set(person.copy()).execute(conn)?;
    }
    Ok(owned)
}

/// The businesses `ids` of an erased owner (`crate::rights::erasure`) lose their own personal
/// fields: the street address (a micro business is often its owner's home) and the NPWP (a
/// person's is their NIK since 2024); each with an audit entry. The district, the village and
/// every figure stay: the statistics do not move. Call it after [`follow_owner`], which locked
/// them and moved their versions.
pub fn erase_owner_fields(
    conn: &mut DbConnection,
    user: i64,
    ids: &[i64],
    at: chrono::NaiveDateTime,
) -> AppResult<()> {
    use crate::audit::{self, Action};
    use crate::db::schema::businesses;
    use diesel::prelude::*;
    for chunk in ids.chunks(500) {
        diesel::update(businesses::table.filter(businesses::id.eq_any(chunk)))
            .set((businesses::address.eq(audit::ERASED), businesses::npwp.eq(None::<String>)))
            .execute(conn)?;
    }
    let change = serde_json::json!({"owner_erased_at": {"from": null, "to": at}});
    let entries: Vec<(i64, Value)> = ids.iter().map(|id| (*id, change.clone())).collect();
    audit::record_many(conn, user, Action::Update, "business", &entries)?;
    Ok(())
}
