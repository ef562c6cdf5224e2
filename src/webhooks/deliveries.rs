//! A subscription's delivery log, and sending one of its deliveries again.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{EventType, dispatch, find_visible, may_manage};
use crate::auth::Caller;
use crate::db;
use crate::db::schema::webhook_deliveries;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// One delivery of one event to one subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// Id (the order of delivery within the subscription).
    pub id: i64,
    /// The `webhook-id` sent (the same on a redelivery).
    #[schema(example = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")]
    pub message_id: String,
    /// The event type.
    pub event_type: EventType,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: i32,
    /// When it was delivered (a 2xx answer).
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while undelivered.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status.
    pub last_status: Option<i32>,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// The delivery log of a subscription (admins; a partner's user, its own partner's): its
/// latest 100 deliveries, newest first.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The subscription's id")),
    responses((status = 200, description = "The latest deliveries", body = Vec<Delivery>)),
)]
#[get("/webhook-subscriptions/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    may_manage(&caller)?;
    let id = id.into_inner();
    let deliveries = db::run(&state.pool, move |conn| {
        find_visible(conn, &caller, id)?;
        type Row = (
            i64,
            String,
            String,
            NaiveDateTime,
            i32,
            Option<NaiveDateTime>,
            NaiveDateTime,
            Option<i32>,
            Option<String>,
        );
        let rows: Vec<Row> = webhook_deliveries::table
            .filter(webhook_deliveries::subscription_id.eq(id))
            .order(webhook_deliveries::id.desc())
            .limit(100)
            .select((
                webhook_deliveries::id,
                webhook_deliveries::message_id,
                webhook_deliveries::event_type,
                webhook_deliveries::created_at,
                webhook_deliveries::attempts,
                webhook_deliveries::delivered_at,
                webhook_deliveries::next_attempt_at,
                webhook_deliveries::last_status,
                webhook_deliveries::last_error,
            ))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, message_id, kind, created, attempts, delivered, next, status, error)| {
                Some(Delivery {
                    id,
                    message_id,
                    event_type: EventType::parse(&kind)?,
                    created_at: created.and_utc(),
                    attempts,
                    delivered_at: delivered.map(|t| t.and_utc()),
                    next_attempt_at: delivered.is_none().then(|| next.and_utc()),
                    last_status: status,
                    last_error: error,
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(deliveries))
}

/// Send a delivery again (admins; a partner's user, its own partner's): a new delivery of the
/// same event, with the same `webhook-id`, at the end of the subscription's queue; refused while
/// that event is still queued.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The subscription's id"), ("delivery_id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Queued again", body = Delivery),
        (status = 409, description = "The event is still queued for the subscription, or the subscription holds 10,000 undelivered events",
            body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/webhook-subscriptions/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    may_manage(&caller)?;
    let (id, delivery) = path.into_inner();
    let queued = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            find_visible(conn, &caller, id)?;
            // The subscription's row, locked: two redeliveries at once cannot both pass the checks.
            db::lock_row(conn, "webhook_subscriptions", id)?;
            let (message_id, kind, payload): (String, String, String) = webhook_deliveries::table
                .find(delivery)
                .filter(webhook_deliveries::subscription_id.eq(id))
                .select((
                    webhook_deliveries::message_id,
                    webhook_deliveries::event_type,
                    webhook_deliveries::payload,
                ))
                .first(conn)?;
            let undelivered = webhook_deliveries::table
                .filter(webhook_deliveries::subscription_id.eq(id))
                .filter(webhook_deliveries::delivered_at.is_null());
            let queued: bool = diesel::select(diesel::dsl::exists(
                undelivered.filter(webhook_deliveries::message_id.eq(&message_id)),
            ))
            .get_result(conn)?;
            if queued {
                return Err(AppError::Conflict(
                    "this event is already queued for the subscription; it is sent in turn".into(),
                ));
            }
            let held: i64 = undelivered.count().get_result(conn)?;
            if held >= dispatch::MAX_HELD {
                return Err(AppError::Conflict(format!(
                    "the subscription holds {} undelivered events, the most it may; wait for them",
                    dispatch::MAX_HELD
                )));
            }
            let now = db::now();
            let new_id = super::outbox::queue(conn, id, &message_id, &kind, &payload, now)?;
            let event_type =
                EventType::parse(&kind).ok_or_else(|| AppError::internal("unknown event type"))?;
            Ok::<_, AppError>(Delivery {
                id: new_id,
                message_id,
                event_type,
                created_at: now.and_utc(),
                attempts: 0,
                delivered_at: None,
                next_attempt_at: Some(now.and_utc()),
                last_status: None,
                last_error: None,
            })
        })
    })
    .await?;
    Ok(HttpResponse::Accepted().json(queued))
}
