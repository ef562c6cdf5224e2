//! Signed events pushed to partners (webhooks): subscriptions, the outbox every write adds its
//! events to (`outbox.rs`), the dispatcher that delivers them (`dispatch.rs`), Standard Webhooks
//! signatures (`sign.rs`) and the check of where a webhook may go (`target.rs`).
//!
//! Admins manage the subscriptions of every partner; a bank or retail user (or an API client
//! with the `webhooks:manage` scope) manages its own partner's, and sees no other (404). A
//! subscription's signing secret is shown once, when it is made.

pub mod deliveries;
pub mod dispatch;
pub mod outbox;
pub mod sign;
pub mod target;

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub use deliveries::Delivery;
pub use outbox::{EventType, Partner, emit};

use crate::auth::Caller;
use crate::db::schema::{bank_partners, retail_partners, webhook_deliveries, webhook_subscriptions};
use crate::db::{self, DbConnection};
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::http::Json;
use crate::http::etag::{self, IfMatch};
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(create_subscription)
        .service(list_subscriptions)
        .service(get_subscription)
        .service(update_subscription)
        .service(delete_subscription)
        .service(deliveries::list_deliveries)
        .service(deliveries::redeliver);
}

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// The bank the events are for (exactly one of the two partners).
    pub bank_partner_id: Option<i64>,
    /// The retail partner the events are for.
    pub retail_partner_id: Option<i64>,
    /// Where to POST the events: an `https` URL of a public host.
    #[schema(example = "https://kur.bank.example/webhooks/umkm")]
    pub url: String,
    /// The events wanted.
    #[schema(example = json!(["applicant.eligible", "applicant.updated", "applicant.left"]))]
    pub event_types: Vec<EventType>,
}

/// A subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    /// Id.
    pub id: i64,
    /// Its bank.
    pub bank_partner_id: Option<i64>,
    /// Its retail partner.
    pub retail_partner_id: Option<i64>,
    /// Where events go.
    pub url: String,
    /// The events it wants.
    pub event_types: Vec<EventType>,
    /// Deliveries are sent (`false`: disabled, see `disabled_reason`).
    pub active: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Deliveries not yet made: held while it is not active; every minute a queue over 10,000
    /// loses its oldest.
    pub pending: i64,
    /// Events dropped from a queue that held more than 10,000 undelivered: re-read them (a
    /// bank's feed, the retailer's curations and placements).
    pub events_dropped: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Starts at 1, +1 on each change (the dispatcher's disabling it or dropping its events
    /// included; not `pending`, which moves with every delivery); also the `ETag`.
    pub version: i32,
}

/// A new subscription with its signing secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewSubscriptionAnswer {
    /// The subscription.
    pub subscription: Subscription,
    /// The Standard Webhooks signing secret (`whsec_…`).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// A change of a subscription: enable it again after it was disabled, or disable it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    /// Send deliveries (`true`) or hold them (`false`).
    pub active: bool,
}

type SubscriptionRow =
    (i64, Option<i64>, Option<i64>, String, String, bool, Option<String>, NaiveDateTime, i32, i64);

/// The subscriptions `query` selects, by id, each with its count of undelivered deliveries:
/// two queries however many there are.
fn load(
    conn: &mut DbConnection,
    query: webhook_subscriptions::BoxedQuery<'static, db::Db>,
) -> AppResult<Vec<Subscription>> {
    let rows: Vec<SubscriptionRow> = query
        .order(webhook_subscriptions::id)
        .select((
            webhook_subscriptions::id,
            webhook_subscriptions::bank_partner_id,
            webhook_subscriptions::retail_partner_id,
            webhook_subscriptions::url,
            webhook_subscriptions::event_types,
            webhook_subscriptions::active,
            webhook_subscriptions::disabled_reason,
            webhook_subscriptions::created_at,
            webhook_subscriptions::version,
            webhook_subscriptions::events_dropped,
        ))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let pending: std::collections::HashMap<i64, i64> = webhook_deliveries::table
        .filter(webhook_deliveries::subscription_id.eq_any(&ids))
        .filter(webhook_deliveries::delivered_at.is_null())
        .group_by(webhook_deliveries::subscription_id)
        .select((webhook_deliveries::subscription_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|(id, bank, retail, url, types, active, reason, created, version, dropped)| Subscription {
            id,
            bank_partner_id: bank,
            retail_partner_id: retail,
            url,
            event_types: types.split_ascii_whitespace().filter_map(EventType::parse).collect(),
            active,
            disabled_reason: reason,
            pending: pending.get(&id).copied().unwrap_or(0),
            events_dropped: dropped,
            created_at: created.and_utc(),
            version,
        })
        .collect())
}

fn find(conn: &mut DbConnection, id: i64) -> AppResult<Subscription> {
    let query = webhook_subscriptions::table.filter(webhook_subscriptions::id.eq(id)).into_boxed();
    load(conn, query)?.into_iter().next().ok_or(AppError::NotFound)
}

/// 403 unless the caller may manage subscriptions: admins, and bank and retail users for their
/// own partner.
fn may_manage(caller: &Caller) -> AppResult<()> {
    caller.require(&[Role::Admin, Role::Bank, Role::Retail])
}

/// 404 unless subscription `id` is the caller's to see: any for an admin, its own partner's
/// for a bank or retail user.
fn find_visible(conn: &mut DbConnection, caller: &Caller, id: i64) -> AppResult<Subscription> {
    let subscription = find(conn, id)?;
    let own = match caller.role {
        Role::Admin => true,
        Role::Bank => subscription.bank_partner_id.is_some_and(|b| Some(b) == caller.bank_partner_id),
        Role::Retail => subscription.retail_partner_id.is_some_and(|r| Some(r) == caller.retail_partner_id),
        _ => false,
    };
    if own { Ok(subscription) } else { Err(AppError::NotFound) }
}

/// Subscribe a partner's system to events: admins for any partner, a bank or retail user for
/// its own (which it may leave out). The URL must be `https` on a public host (plain `http` and
/// private addresses only where `WEBHOOK_ALLOW_PRIVATE_TARGETS` allows them). The answer shows
/// the signing secret once.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = NewSubscription,
    responses(
        (status = 201, description = "The subscription and its signing secret", body = NewSubscriptionAnswer,
            headers(("Location" = String, description = "The subscription's URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The partner has 10 subscriptions, the most it may have",
            body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/webhook-subscriptions")]
pub async fn create_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewSubscription>,
) -> AppResult<HttpResponse> {
    may_manage(&caller)?;
    let NewSubscription { mut bank_partner_id, mut retail_partner_id, url, event_types } = body.0;
    // A partner's user subscribes its own partner: named or left out. Another partner is one it
    // cannot see, as if it did not exist.
    match caller.role {
        Role::Bank if retail_partner_id.is_none() => {
            if bank_partner_id.is_some_and(|b| Some(b) != caller.bank_partner_id) {
                return Err(AppError::invalid("bank_partner_id", "unknown", "no such partner"));
            }
            bank_partner_id = caller.bank_partner_id;
        }
        Role::Retail if bank_partner_id.is_none() => {
            if retail_partner_id.is_some_and(|r| Some(r) != caller.retail_partner_id) {
                return Err(AppError::invalid("retail_partner_id", "unknown", "no such partner"));
            }
            retail_partner_id = caller.retail_partner_id;
        }
        Role::Bank => return Err(AppError::invalid("retail_partner_id", "unknown", "no such partner")),
        Role::Retail => return Err(AppError::invalid("bank_partner_id", "unknown", "no such partner")),
        _ => {}
    }
    let bank = match (bank_partner_id, retail_partner_id) {
        (Some(_), None) => true,
        (None, Some(_)) => false,
        _ => {
            return Err(AppError::invalid(
                "bank_partner_id",
                "required",
                "give exactly one of bank_partner_id and retail_partner_id",
            ));
        }
    };
    if event_types.is_empty() {
        return Err(AppError::invalid("event_types", "required", "give at least one event type"));
    }
    if let Some(wrong) = event_types.iter().find(|e| !e.fits(bank)) {
        return Err(AppError::invalid(
            "event_types",
            "not_allowed",
            format!("{} is not an event for this kind of partner", wrong.as_str()),
        ));
    }
    let allow_private = state.config.webhook_allow_private_targets;
    let checked = web::block(move || target::check(&url, allow_private)).await.map_err(AppError::internal)?;
    let url = checked.map_err(|r| AppError::invalid("url", "not_allowed", r.0))?.url;
    let mut types: Vec<&str> = event_types.iter().map(|e| e.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let types = types.join(" ");
    let secret = sign::new_secret();
    let stored_secret = secret.clone();
    let user = caller.id;
    let subscription = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let exists = match (bank_partner_id, retail_partner_id) {
                (Some(b), _) => {
                    diesel::select(diesel::dsl::exists(bank_partners::table.find(b))).get_result(conn)?
                }
                (_, Some(r)) => {
                    diesel::select(diesel::dsl::exists(retail_partners::table.find(r))).get_result(conn)?
                }
                _ => false,
            };
            if !exists {
                let field = if bank_partner_id.is_some() { "bank_partner_id" } else { "retail_partner_id" };
                return Err(AppError::invalid(field, "unknown", "no such partner"));
            }
            // The partner's row, locked: two creates at once cannot both pass the count.
            let (table, partner) = match (bank_partner_id, retail_partner_id) {
                (Some(b), _) => ("bank_partners", b),
                (_, r) => ("retail_partners", r.unwrap_or_default()),
            };
            db::lock_row(conn, table, partner)?;
            let held: i64 = webhook_subscriptions::table
                .filter(
                    webhook_subscriptions::bank_partner_id
                        .eq(bank_partner_id)
                        .or(webhook_subscriptions::retail_partner_id.eq(retail_partner_id)),
                )
                .count()
                .get_result(conn)?;
            if held >= dispatch::MAX_SUBSCRIPTIONS_PER_PARTNER {
                return Err(AppError::Conflict(format!(
                    "the partner has {} subscriptions, the most it may have; delete one first",
                    dispatch::MAX_SUBSCRIPTIONS_PER_PARTNER
                )));
            }
            let now = db::now();
            let id: i64 = diesel::insert_into(webhook_subscriptions::table)
                .values((
                    webhook_subscriptions::bank_partner_id.eq(bank_partner_id),
                    webhook_subscriptions::retail_partner_id.eq(retail_partner_id),
                    webhook_subscriptions::url.eq(&url),
                    webhook_subscriptions::event_types.eq(&types),
                    webhook_subscriptions::secret.eq(&stored_secret),
                    webhook_subscriptions::active.eq(true),
                    webhook_subscriptions::created_at.eq(now),
                    webhook_subscriptions::updated_at.eq(now),
                ))
                .returning(webhook_subscriptions::id)
                .get_result(conn)?;
            let snapshot = serde_json::json!({"url": url, "event_types": types,
                "bank_partner_id": bank_partner_id, "retail_partner_id": retail_partner_id});
            crate::audit::record(
                conn,
                user,
                crate::audit::Action::Create,
                "webhook_subscription",
                id,
                &snapshot,
            )?;
            find(conn, id)
        })
    })
    .await?;
    let location = format!("/api/v1/webhook-subscriptions/{}", subscription.id);
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::LOCATION, location))
        .insert_header(etag::etag(subscription.version))
        .json(NewSubscriptionAnswer { subscription, secret }))
}

/// List the subscriptions, by id: every one for admins, its partner's for a bank or retail user.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 200, description = "Every subscription", body = Vec<Subscription>)),
)]
#[get("/webhook-subscriptions")]
pub async fn list_subscriptions(state: web::Data<AppState>, caller: Caller) -> AppResult<HttpResponse> {
    may_manage(&caller)?;
    let (bank, retail) = (caller.bank_scope(), caller.retail_scope());
    let all = db::run(&state.pool, move |conn| {
        let mut q = webhook_subscriptions::table.into_boxed();
        if let Some(own) = bank {
            q = q.filter(webhook_subscriptions::bank_partner_id.eq(own));
        }
        if let Some(own) = retail {
            q = q.filter(webhook_subscriptions::retail_partner_id.eq(own));
        }
        load(conn, q)
    })
    .await?;
    Ok(HttpResponse::Ok().json(all))
}

/// One subscription (admins; a partner's user, its own partner's).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The subscription's id")),
    responses((status = 200, description = "The subscription", body = Subscription,
        headers(("ETag" = String, description = "The subscription's version")))),
)]
#[get("/webhook-subscriptions/{id}")]
pub async fn get_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    may_manage(&caller)?;
    let id = id.into_inner();
    let subscription = db::run(&state.pool, move |conn| find_visible(conn, &caller, id)).await?;
    Ok(etag::ok(subscription.version, subscription))
}

/// Enable a subscription again (after 24 hours of failed deliveries disabled it), or pause it
/// (admins; a partner's user, its own partner's). While it is not active its events are held
/// (at most 10,000, then the oldest are dropped and counted in `events_dropped`); enabled
/// again, it resumes with its oldest undelivered event, in order.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The subscription's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the subscription changed since"),
    ),
    request_body(content = SubscriptionPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The subscription", body = Subscription,
        headers(("ETag" = String, description = "The subscription's new version")))),
)]
#[patch("/webhook-subscriptions/{id}")]
pub async fn update_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<SubscriptionPatch>,
) -> AppResult<HttpResponse> {
    may_manage(&caller)?;
    let (id, active, user) = (id.into_inner(), body.0.active, caller.id);
    let subscription = db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_visible(conn, &caller, id)?;
            if_match.check(current.version)?;
            let now = db::now();
            crate::versioned_update!(
                conn,
                webhook_subscriptions,
                id,
                current.version,
                (
                    webhook_subscriptions::active.eq(active),
                    webhook_subscriptions::disabled_reason.eq(None::<String>)
                )
            )?;
            if active {
                // Resume now, not at the backed-off time of the last failure.
                diesel::update(
                    webhook_deliveries::table
                        .filter(webhook_deliveries::subscription_id.eq(id))
                        .filter(webhook_deliveries::delivered_at.is_null()),
                )
                .set((
                    webhook_deliveries::next_attempt_at.eq(now),
                    // A held event's day of retries starts now, not when it was written.
                    webhook_deliveries::first_attempted_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            }
            let changes = serde_json::json!({"active": active});
            crate::audit::record(
                conn,
                user,
                crate::audit::Action::Update,
                "webhook_subscription",
                id,
                &changes,
            )?;
            find(conn, id)
        })
    })
    .await?;
    Ok(etag::ok(subscription.version, subscription))
}

/// Delete a subscription and its delivery log (admins; a partner's user, its own partner's);
/// undelivered events are dropped.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The subscription's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the subscription changed since"),
    ),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/webhook-subscriptions/{id}")]
pub async fn delete_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    may_manage(&caller)?;
    let (id, user) = (id.into_inner(), caller.id);
    db::run(&state.pool, move |conn| {
        if_match.write(conn, |conn| {
            let current = find_visible(conn, &caller, id)?;
            if_match.check(current.version)?;
            diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::subscription_id.eq(id)))
                .execute(conn)?;
            crate::versioned_delete!(conn, webhook_subscriptions, id, current.version)?;
            crate::audit::record(
                conn,
                user,
                crate::audit::Action::Delete,
                "webhook_subscription",
                id,
                &serde_json::json!({}),
            )?;
            Ok::<_, AppError>(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
