//! Versions on the wire: every versioned record answers with a strong `ETag` of its version,
//! and writes honour `If-Match`. These are the only ways a handler answers with a version.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};

use crate::error::{AppError, AppResult};

/// 201 with the record's `Location` and `ETag`.
pub fn created(location: String, version: i32, body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header(etag(version))
        .json(body)
}

/// 200 with the record's `ETag`.
pub fn ok(version: i32, body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok().insert_header(etag(version)).json(body)
}

/// The `ETag` of a record at `version`.
pub fn etag(version: i32) -> header::ETag {
    header::ETag(header::EntityTag::new_strong(version.to_string()))
}

/// The versions a client named in `If-Match`, if it sent the header.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(Option<header::IfMatch>);

impl IfMatch {
    /// 412 unless the header is absent, `*`, or names `version`.
    pub fn check(&self, version: i32) -> AppResult<()> {
        let current = header::EntityTag::new_strong(version.to_string());
        match &self.0 {
            None | Some(header::IfMatch::Any) => Ok(()),
            Some(header::IfMatch::Items(tags)) if tags.iter().any(|t| t.strong_eq(&current)) => Ok(()),
            Some(_) => Err(AppError::PreconditionFailed),
        }
    }
}

impl FromRequest for IfMatch {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = if req.headers().contains_key(header::IF_MATCH) {
            <header::IfMatch as header::Header>::parse(req)
                .map(|h| IfMatch(Some(h)))
                .map_err(|_| AppError::BadRequest("If-Match must be \"*\" or a list of ETags".into()))
        } else {
            Ok(IfMatch(None))
        };
        std::future::ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_passes_only_the_named_version() {
        assert!(IfMatch(None).check(3).is_ok());
        assert!(IfMatch(Some(header::IfMatch::Any)).check(3).is_ok());
        let named = IfMatch(Some(header::IfMatch::Items(vec![header::EntityTag::new_strong("3".into())])));
        assert!(named.check(3).is_ok());
        assert!(matches!(named.check(4), Err(AppError::PreconditionFailed)));
    }

    #[test]
    fn answers_carry_the_version() {
        let res = ok(7, serde_json::json!({"id": 1}));
        assert_eq!(res.headers().get(header::ETAG).unwrap(), "\"7\"");
        let res = created("/x/1".into(), 1, serde_json::json!({"id": 1}));
        assert_eq!(res.status(), actix_web::http::StatusCode::CREATED);
        assert_eq!(res.headers().get(header::LOCATION).unwrap(), "/x/1");
        assert_eq!(res.headers().get(header::ETAG).unwrap(), "\"1\"");
    }
}
