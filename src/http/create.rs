//! Creates that honour `Idempotency-Key`: the create, its audit entry and the stored first
//! answer are written in one transaction.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::Value;

use std::sync::Arc;

use crate::crypto::keyring::Keyring;
use crate::db::{self, DbConnection, Pool};
use crate::error::{AppError, AppResult};
use crate::http::idempotency::{self, IdempotencyKey, Stored};

/// What a create produced: where the record lives and its JSON form.
pub struct Created {
    /// The record's URL.
    pub location: String,
    /// The record as the caller sees it.
    pub body: Value,
    /// Its version, for the `ETag`.
    pub version: i32,
}

enum Outcome {
    Created(Created),
    Replayed(Stored),
}

/// Runs `create` once per `Idempotency-Key` (per user and endpoint) and answers 201, or the
/// stored first answer when the key was seen with the same request.
pub async fn once(
    pool: &Pool,
    keys: Arc<Keyring>,
    user_id: i64,
    endpoint: &'static str,
    key: IdempotencyKey,
    request: Value,
    create: impl FnOnce(&mut DbConnection) -> AppResult<Created> + Send + 'static,
) -> AppResult<HttpResponse> {
    Ok(answered(pool, keys, user_id, endpoint, key, request, create).await?.0)
}

/// [`once`], with the body answered (the created record's JSON, or the stored first answer's):
/// for a caller that records whom the answer discloses (`crate::disclosures`) before sending it.
pub async fn answered(
    pool: &Pool,
    keys: Arc<Keyring>,
    user_id: i64,
    endpoint: &'static str,
    key: IdempotencyKey,
    request: Value,
    create: impl FnOnce(&mut DbConnection) -> AppResult<Created> + Send + 'static,
) -> AppResult<(HttpResponse, Value)> {
    let outcome = db::run(pool, move |conn| {
        let fingerprint = idempotency::fingerprint(&request);
        let attempt = db::write(conn, |conn| {
            if let Some(key) = &key.0
                && let Some(stored) = idempotency::lookup(conn, &keys, user_id, endpoint, key, &fingerprint)?
            {
                return Ok(Outcome::Replayed(stored));
            }
            let created = create(conn)?;
            if let Some(key) = &key.0 {
                let body = created.body.to_string();
                idempotency::store(
                    conn,
                    &keys,
                    user_id,
                    endpoint,
                    key,
                    &fingerprint,
                    StatusCode::CREATED,
                    Some(&created.location),
                    &body,
                )?;
            }
            Ok::<_, AppError>(Outcome::Created(created))
        });
        match (attempt, &key.0) {
            // A concurrent request with the same key committed first: answer as it did.
            (Err(AppError::Conflict(detail)), Some(key)) => {
                match idempotency::lookup(conn, &keys, user_id, endpoint, key, &fingerprint)? {
                    Some(stored) => Ok(Outcome::Replayed(stored)),
                    None => Err(AppError::Conflict(detail)),
                }
            }
            (result, _) => result,
        }
    })
    .await?;
    Ok(match outcome {
        Outcome::Replayed(stored) => {
            // A stored answer that does not parse was not written by this server: 500.
            (stored.response(), serde_json::from_str(stored.body()).map_err(AppError::internal)?)
        }
        Outcome::Created(created) => {
            let body = created.body.clone();
            (crate::http::etag::created(created.location, created.version, created.body), body)
        }
    })
}
