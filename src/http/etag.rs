//! Versions on the wire: every versioned record answers with a strong `ETag` of its version,
//! and writes honour `If-Match`. These are the only ways a handler answers with a version.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};

use crate::error::{AppError, AppResult};

/// What an `If-Match` header may be: `*` or a list of ETags (anything else is 400).
pub const IF_MATCH_PATTERN: &str = r#"^(\*|(W/)?"[^",]*"( *, *(W/)?"[^",]*")*)$"#;

/// Whether `value` has the shape [`IF_MATCH_PATTERN`] declares.
fn well_formed(value: &str) -> bool {
    let last = value.matches(',').count();
    value == "*"
        || value.split(',').enumerate().all(|(i, tag)| {
            let tag = if i > 0 { tag.trim_start_matches(' ') } else { tag };
            let tag = if i < last { tag.trim_end_matches(' ') } else { tag };
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag.len() >= 2
                && tag.starts_with('"')
                && tag.ends_with('"')
                && !tag[1..tag.len() - 1].contains('"')
        })
}

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

/// The versions a client named in `If-Match`, if it sent the header. A malformed header is
/// kept, not refused at once: it is answered 400 where the precondition is evaluated, after the
/// record was found, so that a missing record is 404 whatever the header says.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(Option<Result<header::IfMatch, ()>>);

impl IfMatch {
    /// 412 unless the header is absent, `*`, or names `version`; 400 if it is malformed.
    pub fn check(&self, version: i32) -> AppResult<()> {
        let current = header::EntityTag::new_strong(version.to_string());
        match &self.0 {
            None | Some(Ok(header::IfMatch::Any)) => Ok(()),
            Some(Ok(header::IfMatch::Items(tags))) if tags.iter().any(|t| t.strong_eq(&current)) => Ok(()),
            Some(Ok(_)) => Err(AppError::PreconditionFailed),
            Some(Err(())) => Err(AppError::BadRequest("If-Match must be \"*\" or a list of ETags".into())),
        }
    }
}

/// How many times a write without `If-Match` runs again after another writer got in first.
/// Each round some writer commits, so `n` concurrent writers need at most `n - 1` runs more.
const RERUNS_WITHOUT_IF_MATCH: usize = 64;

impl IfMatch {
    /// Runs the versioned change `f` in a write transaction (`crate::db::write`). Without
    /// `If-Match` the client named no version, so another writer changing the record between
    /// this read and this write (PostgreSQL's READ COMMITTED lets both read the same version)
    /// is no failed precondition of the client's: the whole change (read, merge patch, checks,
    /// write) runs again on what is stored then, until it lands. With `If-Match`, the first 412
    /// is the answer.
    pub fn write<T>(
        &self,
        conn: &mut crate::db::DbConnection,
        mut f: impl FnMut(&mut crate::db::DbConnection) -> AppResult<T>,
    ) -> AppResult<T> {
        let mut reruns = 0;
        loop {
            match crate::db::write(conn, &mut f) {
                Err(AppError::PreconditionFailed) if self.0.is_none() && reruns < RERUNS_WITHOUT_IF_MATCH => {
                    reruns += 1;
                }
                done => return done,
            }
        }
    }
}

impl FromRequest for IfMatch {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let malformed = req.headers().get_all(header::IF_MATCH).any(|v| !v.to_str().is_ok_and(well_formed));
        let parsed = if malformed {
            Some(Err(()))
        } else if req.headers().contains_key(header::IF_MATCH) {
            Some(<header::IfMatch as header::Header>::parse(req).map_err(|_| ()))
        } else {
            None
        };
        std::future::ready(Ok(IfMatch(parsed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_is_star_or_a_list_of_etags() {
        for good in ["*", "\"1\"", "W/\"1\"", "\"1\", \"2\"", "\"1\" ,W/\"x\"", "\"\""] {
            assert!(well_formed(good), "{good}");
        }
        for bad in ["", "null", "1", " \"1\"", "\"1\" ", "\"1\",", "\"a\"b\"", "**", "\"1\" \"2\""] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn if_match_passes_only_the_named_version() {
        assert!(IfMatch(None).check(3).is_ok());
        assert!(IfMatch(Some(Ok(header::IfMatch::Any))).check(3).is_ok());
        let named =
            IfMatch(Some(Ok(header::IfMatch::Items(vec![header::EntityTag::new_strong("3".into())]))));
        assert!(named.check(3).is_ok());
        assert!(matches!(named.check(4), Err(AppError::PreconditionFailed)));
        assert!(matches!(IfMatch(Some(Err(()))).check(3), Err(AppError::BadRequest(_))));
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
