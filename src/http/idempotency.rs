//! `Idempotency-Key` on creates: a retry with the same key and body gets the first answer
//! instead of a second record; the same key with another body is 422.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::crypto::keyring::Keyring;
use crate::db::schema::idempotency_keys;
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};

/// The longest `Idempotency-Key` accepted.
pub const MAX_KEY_LENGTH: usize = 255;

/// The `Idempotency-Key` header of a request, if it sent one (1–255 visible ASCII characters).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = match req.headers().get("idempotency-key") {
            None => Ok(IdempotencyKey(None)),
            Some(value) => value
                .to_str()
                .ok()
                .filter(|v| {
                    (1..=MAX_KEY_LENGTH).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
                })
                .map(|v| IdempotencyKey(Some(v.to_owned())))
                .ok_or_else(|| {
                    AppError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
                }),
        };
        ready(key)
    }
}

/// The associated data of a stored answer, sealed with the data keys: the answer to a create
/// of a business holds its owner's NIK, phone and e-mail.
pub const BODY: &str = "idempotency_keys.body";

/// A stored first answer.
#[derive(Debug, Clone)]
pub struct Stored {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Stored {
    /// The answer's body, as stored.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The answer as it was first given.
    pub fn response(&self) -> HttpResponse {
        let mut response =
            HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::CREATED));
        response.insert_header((header::CONTENT_TYPE, "application/json"));
        response.insert_header(("idempotent-replayed", "true"));
        if let Some(location) = &self.location {
            response.insert_header((header::LOCATION, location.as_str()));
        }
        if let Some(version) = serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["version"].as_i64())
            .and_then(|v| i32::try_from(v).ok())
        {
            response.insert_header(crate::http::etag::etag(version));
        }
        response.body(self.body.clone())
    }
}

/// A fingerprint of a request body.
pub fn fingerprint(body: &serde_json::Value) -> String {
    let digest = Sha256::digest(body.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored answer for `key`, if any; 422 if the key was used with another body.
pub fn lookup(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    endpoint: &str,
    key: &str,
    fingerprint: &str,
) -> AppResult<Option<Stored>> {
    let row: Option<(String, i32, Option<String>, String)> = idempotency_keys::table
        .find((user_id, endpoint, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::status,
            idempotency_keys::location,
            idempotency_keys::body,
        ))
        .first(conn)
        .optional()?;
    match row {
        None => Ok(None),
        Some((hash, _, _, _)) if hash != fingerprint => Err(AppError::invalid(
            "Idempotency-Key",
            "key_reused",
            "this key was already used with a different request body",
        )),
        Some((_, status, location, body)) => {
            // Sealed since issue 29 (an answer may hold a NIK); one stored before is plain JSON.
            let body = match Keyring::key_of(&body) {
                Some(_) => keys.open(BODY, &body).map_err(AppError::internal)?,
                None => body,
            };
            Ok(Some(Stored { status: u16::try_from(status).unwrap_or(201), location, body }))
        }
    }
}

/// Rewrites with `change` the stored answers of the creates at `locations` (sealed again): an
/// erasure takes a person's values out of them (`crate::rights::erasure`), and a retry of such
/// a create is still answered as the first was, without them, instead of creating again.
pub fn rewrite_answers(
    conn: &mut DbConnection,
    keys: &Keyring,
    locations: &[String],
    change: impl Fn(&mut serde_json::Value),
) -> AppResult<usize> {
    let mut rewritten = 0;
    for chunk in locations.chunks(500) {
        let rows: Vec<(i64, String, String, String)> = idempotency_keys::table
            .filter(idempotency_keys::location.eq_any(chunk))
            .select((
                idempotency_keys::user_id,
                idempotency_keys::endpoint,
                idempotency_keys::idempotency_key,
                idempotency_keys::body,
            ))
            .load(conn)?;
        for (user_id, endpoint, key, body) in rows {
            let plain = match Keyring::key_of(&body) {
                Some(_) => keys.open(BODY, &body).map_err(AppError::internal)?,
                None => body,
            };
            let mut answer: serde_json::Value = serde_json::from_str(&plain).map_err(AppError::internal)?;
            change(&mut answer);
            let sealed = keys.seal(BODY, &answer.to_string()).map_err(AppError::internal)?;
            diesel::update(idempotency_keys::table.find((user_id, &endpoint, &key)))
                .set(idempotency_keys::body.eq(sealed))
                .execute(conn)?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// Stores the first answer for `key`.
#[allow(clippy::too_many_arguments)]
pub fn store(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    endpoint: &str,
    key: &str,
    fingerprint: &str,
    status: StatusCode,
    location: Option<&str>,
    body: &str,
) -> AppResult<()> {
    let body = keys.seal(BODY, body).map_err(AppError::internal)?;
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::user_id.eq(user_id),
            idempotency_keys::endpoint.eq(endpoint),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::request_hash.eq(fingerprint),
            idempotency_keys::status.eq(i32::from(status.as_u16())),
            idempotency_keys::location.eq(location),
            idempotency_keys::body.eq(&body),
            idempotency_keys::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}
