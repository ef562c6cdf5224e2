//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! The client sees a stable `type`, a `title` and a `detail` written for it; the log sees the
//! cause. A 500 says nothing internal.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name, dotted for nested fields (`registrations[2].business_id`).
    #[schema(example = "email")]
    pub field: String,
    /// A stable, machine-readable code (`required`, `invalid_format`, `out_of_range`, …).
    #[schema(example = "invalid_format")]
    pub code: String,
    /// What is wrong, for a person.
    #[schema(example = "must be an e-mail address")]
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code: code.into(), message: message.into() }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[schema(example = "urn:umkm-api:problem:validation")]
    pub r#type: String,
    /// A short summary of the kind of problem.
    #[schema(example = "Validation failed")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// What happened, for this request.
    #[schema(example = "2 fields are invalid")]
    pub detail: String,
    /// For validation problems: every bad field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: malformed JSON, query string or path.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: missing, malformed, badly signed or expired credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: the caller's role may not do this.
    #[error("forbidden")]
    Forbidden,
    /// 403: an API client's token lacks the scope this request needs (`None`: no scope
    /// reaches it).
    #[error("insufficient scope")]
    InsufficientScope(Option<&'static str>),
    /// 404: no such resource, or not in the caller's scope.
    #[error("not found")]
    NotFound,
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods the path accepts.
        allow: Vec<String>,
    },
    /// 409: a unique value is taken or the state does not allow this.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 412: `If-Match` names another version.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: the body is larger than `MAX_BODY_BYTES`.
    #[error("payload too large")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415: the body is not of a media type this endpoint takes.
    #[error("unsupported media type")]
    UnsupportedMediaType {
        /// The media types accepted.
        expected: &'static str,
    },
    /// 422: the body parsed but some fields are invalid.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// 429: too many failed logins.
    #[error("too many requests")]
    TooManyRequests {
        /// How long until a new attempt is counted.
        retry_after: Duration,
    },
    /// 429: the caller's exports under way are as many as it may have at once.
    #[error("too many exports at once")]
    TooManyExports {
        /// How many a caller may have.
        at_once: usize,
    },
    /// 503: the database cannot be reached.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: a fault of ours; the message goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for handler results.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A 422 for one field.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, code, message)])
    }

    /// A 500 carrying its cause for the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            AppError::BadRequest(_) => ("bad-request", "Bad request"),
            AppError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            AppError::Forbidden => ("forbidden", "Forbidden"),
            AppError::InsufficientScope(_) => ("insufficient_scope", "Insufficient scope"),
            AppError::NotFound => ("not-found", "Not found"),
            AppError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            AppError::Conflict(_) => ("conflict", "Conflict"),
            AppError::PreconditionFailed => ("precondition-failed", "Precondition failed"),
            AppError::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            AppError::UnsupportedMediaType { .. } => ("unsupported-media-type", "Unsupported media type"),
            AppError::Validation(_) => ("validation", "Validation failed"),
            AppError::TooManyRequests { .. } | AppError::TooManyExports { .. } => {
                ("too-many-requests", "Too many requests")
            }
            AppError::Unavailable(_) => ("unavailable", "Service unavailable"),
            AppError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// What the client is told: specific for its own mistakes, nothing internal for ours.
    fn detail(&self) -> String {
        match self {
            AppError::BadRequest(m) | AppError::Unauthorized(m) | AppError::Conflict(m) => m.clone(),
            AppError::Forbidden => "your role may not do this".into(),
            AppError::InsufficientScope(Some(scope)) => format!("the client's token lacks the scope {scope}"),
            AppError::InsufficientScope(None) => "no scope of an API client reaches this".into(),
            AppError::NotFound => "no such resource".into(),
            AppError::MethodNotAllowed { allow } => {
                format!("this path accepts {}", allow.join(", "))
            }
            AppError::PreconditionFailed => {
                "the resource has changed since the version named in If-Match".into()
            }
            AppError::PayloadTooLarge { limit } => {
                format!("the request body is larger than {limit} bytes")
            }
            AppError::UnsupportedMediaType { expected } => {
                format!("the request body must be {expected}")
            }
            AppError::Validation(errors) if errors.len() == 1 => "1 field is invalid".into(),
            AppError::Validation(errors) => format!("{} fields are invalid", errors.len()),
            AppError::TooManyRequests { retry_after } => {
                format!("too many attempts; try again in {} seconds", retry_after.as_secs().max(1))
            }
            AppError::TooManyExports { at_once } => {
                format!("{at_once} of your exports are under way; start another once one has ended")
            }
            AppError::Unavailable(_) => "the database is unavailable; try again shortly".into(),
            AppError::Internal(_) => "an internal error occurred; quote the X-Request-Id".into(),
        }
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.kind();
        Problem {
            r#type: format!("urn:umkm-api:problem:{slug}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            errors: match self {
                AppError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } | AppError::TooManyExports { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            AppError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.join(", ")));
            }
            AppError::TooManyRequests { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.as_secs().max(1)));
            }
            AppError::Unavailable(_) | AppError::TooManyExports { .. } => {
                response.insert_header((header::RETRY_AFTER, 5));
            }
            _ => {}
        }
        match serde_json::to_vec(&self.problem()) {
            Ok(body) => response.body(body),
            Err(_) => response.finish(),
        }
    }
}

/// Database errors this process met, by kind, for the metrics (`umkm_db_errors_total`).
pub mod db_errors {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The kinds counted, in a fixed order.
    pub const KINDS: [&str; 5] =
        ["unique_violation", "foreign_key_violation", "serialization_failure", "connection", "other"];
    static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

    pub(super) fn record(kind: usize) {
        if let Some(count) = COUNTS.get(kind) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Each kind with its count so far.
    pub fn counts() -> [(&'static str, u64); 5] {
        std::array::from_fn(|i| (KINDS[i], COUNTS[i].load(Ordering::Relaxed)))
    }
}

impl From<DieselError> for AppError {
    fn from(err: DieselError) -> Self {
        let kind = match &err {
            DieselError::NotFound => None,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Some(0),
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => Some(1),
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Some(2),
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Some(3),
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if is_busy_or_down(info.message()) =>
            {
                Some(3)
            }
            _ => Some(4),
        };
        if let Some(kind) = kind {
            db_errors::record(kind);
        }
        match err {
            DieselError::NotFound => AppError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                log::info!("unique violation: {}", info.message());
                AppError::Conflict(conflict_detail(info.constraint_name(), info.message()))
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                log::info!("foreign key violation: {}", info.message());
                AppError::Conflict("the record is referenced by, or refers to, a missing record".into())
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => AppError::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                AppError::Conflict(format!(
                    "a concurrent change conflicted with this one; retry ({})",
                    info.message().split(':').next().unwrap_or("serialization failure")
                ))
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if is_busy_or_down(info.message()) =>
            {
                AppError::Unavailable(info.message().to_owned())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Gives a 409 from the database (a unique value taken, a row still referenced) a detail the
/// client can act on, at the call site; every other outcome passes unchanged.
pub trait OnConflict<T> {
    /// 409 with `detail` instead of the generic conflict.
    fn on_conflict(self, detail: impl Into<String>) -> AppResult<T>;
}

impl<T, E: Into<AppError>> OnConflict<T> for Result<T, E> {
    fn on_conflict(self, detail: impl Into<String>) -> AppResult<T> {
        self.map_err(|e| match e.into() {
            AppError::Conflict(_) => AppError::Conflict(detail.into()),
            other => other,
        })
    }
}

/// Names the duplicate value's field without echoing the database's message.
fn conflict_detail(constraint: Option<&str>, message: &str) -> String {
    // PostgreSQL names the constraint (`users_email_key`); SQLite names the column in its
    // message (`UNIQUE constraint failed: users.email`).
    let source = constraint.unwrap_or(message);
    let field = source
        .rsplit(['.', ' '])
        .next()
        .map(|s| s.trim_end_matches("_key").rsplit('_').next().unwrap_or(s).to_owned());
    match field {
        Some(field) if !field.is_empty() => format!("a record with this {field} already exists"),
        _ => "a record with the same unique value already exists".into(),
    }
}

fn is_busy_or_down(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["database is locked", "terminating connection", "server closed the connection", "connection"]
        .iter()
        .any(|m| message.contains(m))
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        AppError::Unavailable(err.to_string())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        AppError::internal(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_name_the_field_not_the_sql() {
        assert_eq!(
            conflict_detail(Some("users_email_key"), "duplicate key value violates …"),
            "a record with this email already exists"
        );
        assert_eq!(
            conflict_detail(None, "UNIQUE constraint failed: users.email"),
            "a record with this email already exists"
        );
    }

    #[test]
    fn internal_errors_say_nothing_internal() {
        let problem = AppError::internal("relation \"users\" does not exist").problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("users"));
    }

    #[test]
    fn on_conflict_rewrites_only_conflicts() {
        let taken: Result<(), AppError> = Err(AppError::Conflict("unique violation".into()));
        assert!(matches!(taken.on_conflict("taken"), Err(AppError::Conflict(d)) if d == "taken"));
        let stale: Result<(), AppError> = Err(AppError::PreconditionFailed);
        assert!(matches!(stale.on_conflict("taken"), Err(AppError::PreconditionFailed)));
        let missing: Result<(), diesel::result::Error> = Err(diesel::result::Error::NotFound);
        assert!(matches!(missing.on_conflict("taken"), Err(AppError::NotFound)));
        assert!(Ok::<_, AppError>(1).on_conflict("taken").is_ok_and(|n| n == 1));
    }
}
