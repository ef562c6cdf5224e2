//! The HTTP kit every resource shares: the JSON body extractor, query and path error
//! handling, request ids and the problem answers for unknown routes live here; versions and
//! `ETag`s, field checks, merge patches, lists, exports and idempotent creates in the
//! submodules. It depends on `db`, `domain` and `error` only.

pub mod access;
pub mod client_ip;
pub mod consistency;
pub mod create;
pub mod etag;
pub mod export;
pub mod i18n;
pub mod idempotency;
pub mod input;
pub mod list;
pub mod patch;
pub mod xlsx;

pub use etag::IfMatch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, Next};
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult, FieldError, PROBLEM_JSON};

/// The request id header, echoed on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, available to handlers through the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Largest accepted request body, set from `MAX_BODY_BYTES`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body, deserialized strictly: unknown fields are rejected, and a field of the
/// wrong type is reported by its path. Accepts `application/json`, any `+json` type (such as
/// `application/merge-patch+json`), and nothing else; the document must be an object.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_object(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(Json) })
    }
}

/// A JSON object read as a `Value` with its NULs kept, for the handlers that check every field
/// themselves (`crate::businesses`): a NUL is then one bad field among the others of the 422
/// (`input::nul_paths`), not the only one named. The same media types and limits as [`Json`].
#[derive(Debug)]
pub struct Document(pub serde_json::Value);

impl FromRequest for Document {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_object(req, payload);
        Box::pin(async move { parse_document(&body.await?).map(Document) })
    }
}

/// Reads a JSON request body whole, within the body limit: 415 unless JSON, 413 when too
/// large, 400 or 422 unless an object.
fn read_object(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = AppResult<web::BytesMut>> + use<> {
    let limit = req.app_data::<BodyLimit>().map_or(256 * 1024, |l| l.0);
    let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_() == mime_type::APPLICATION
            && (m.subtype() == mime_type::JSON || m.suffix() == Some(mime_type::JSON))
    });
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        if !is_json {
            return Err(AppError::UnsupportedMediaType { expected: "application/json" });
        }
        if declared_length.is_some_and(|n| n > limit) {
            return Err(AppError::PayloadTooLarge { limit });
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(AppError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        // Every JSON body this API takes is an object; serde would read an array as a
        // struct's fields in order.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            parse_json::<serde_json::Value>(&body)?;
            return Err(AppError::invalid("body", "invalid_type", "must be a JSON object"));
        }
        Ok(body)
    }
}

/// Actix's `mime` re-export, named for readability above.
mod mime_type {
    pub use actix_web::mime::{APPLICATION, JSON};
}

/// Parses a JSON document into `T`: a syntax error is 400, a document of the wrong shape is 422
/// naming the field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> AppResult<T> {
    let nul = input::nul_fields(body);
    if !nul.is_empty() {
        return Err(AppError::Validation(nul.iter().map(|field| nul_error(field)).collect()));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                AppError::Validation(vec![shape_error(&path, &inner.to_string())])
            }
            _ => AppError::BadRequest(format!("malformed JSON: {inner}")),
        }
    })
}

/// The problem of a field that holds a NUL.
pub fn nul_error(field: &str) -> FieldError {
    FieldError::new(field, "invalid_format", "must not contain control characters")
}

/// Parses a JSON document into a `Value`, NULs kept: for a handler that checks every field
/// itself and reports a NUL as one bad field among the others (see [`Document`]).
pub fn parse_document(body: &[u8]) -> AppResult<serde_json::Value> {
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))
}

/// Turns serde's message about a document of the wrong shape into a field error.
fn shape_error(path: &str, message: &str) -> FieldError {
    // serde_json appends " at line L column C"; the path already says where.
    let message = message.split(" at line ").next().unwrap_or(message);
    let quoted = message.split('`').nth(1).unwrap_or_default();
    let parent = if path == "." { String::new() } else { format!("{path}.") };
    if message.starts_with("unknown field") {
        // The path already ends at the unknown field.
        let field = if path.ends_with(quoted) { path.to_owned() } else { format!("{parent}{quoted}") };
        FieldError::new(field, "unknown_field", "is not a field of this resource")
    } else if message.starts_with("missing field") {
        FieldError::new(format!("{parent}{quoted}"), "required", "is required")
    } else {
        let field = if path == "." { "body" } else { path };
        FieldError::new(field, "invalid_type", message)
    }
}

/// Query-string errors are 400 problems that say which parameter is wrong.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = err.to_string();
        let detail = detail.strip_prefix("Query deserialize error: ").unwrap_or(&detail);
        AppError::BadRequest(format!("invalid query string: {detail}")).into()
    })
}

/// Path-parameter errors (`/users/abc`) are 400 problems, except on a path that names a route
/// literally (`PATCH /businesses/import` is matched by `/businesses/{id}` for PATCH, but the
/// client meant the import): that is 405 with the literal route's `Allow`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| {
        let literal = req.app_data::<RouteTable>().map(|t| t.literal_methods(req.path())).unwrap_or_default();
        if !literal.is_empty() {
            return AppError::MethodNotAllowed { allow: literal.iter().map(ToString::to_string).collect() }
                .into();
        }
        let detail = err.to_string();
        let detail = detail.strip_prefix("Path deserialize error: ").unwrap_or(&detail);
        AppError::BadRequest(format!("invalid path parameter: {detail}")).into()
    })
}

/// Refuses a query string or path that encodes a NUL character (`%00`) with a 400 problem:
/// no text the API stores or filters by may hold one, and PostgreSQL's text cannot (its error
/// would otherwise surface as a 500 from deep inside a query).
pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let uri = req.uri();
    let nul = |s: &str| s.contains("%00");
    if nul(uri.path()) || uri.query().is_some_and(nul) {
        let problem = AppError::BadRequest("the path and query string must not contain NUL (%00)".into());
        return Ok(req.into_response(problem.error_response()).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// A request id is echoed only when it is short and plain; anything else gets a fresh one.
fn sane_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The origins CORS allows (`CORS_ALLOWED_ORIGINS`; `*` allows any).
#[derive(Debug, Clone)]
pub struct AllowedOrigins(pub Vec<String>);

/// Refuses a request from an origin that CORS does not allow with a problem document, before
/// actix-cors would refuse it with a plain-text body. The rule is actix-cors's own: `*` allows
/// every origin, otherwise the `Origin` header must be one of the list. (A preflight from an
/// allowed origin asking for a method or header that is not allowed is still actix-cors's
/// plain-text 400.)
pub async fn refuse_foreign_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let foreign = match (req.headers().get(header::ORIGIN), req.app_data::<AllowedOrigins>()) {
        (Some(origin), Some(allowed)) => {
            !allowed.0.iter().any(|a| a == "*" || a.as_bytes() == origin.as_bytes())
        }
        _ => false,
    };
    if foreign {
        let problem =
            AppError::BadRequest("this origin may not call the API (see CORS_ALLOWED_ORIGINS)".into());
        return Ok(req.into_response(problem.error_response()).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Gives every request an id (the client's `X-Request-Id` when sane), puts it on the response,
/// logs server errors with it and their cause, and adds the headers every response carries.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    let mut res = next.call(req).await?;
    if res.status().is_server_error() {
        match res.response().error() {
            Some(err) => log::error!("request_id={id} status={} error: {err}", res.status()),
            None => log::error!("request_id={id} status={}", res.status()),
        }
    }
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if authenticated {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// Marks an error response whose shape a standard fixes (OAuth 2.0's token errors, RFC 6749
/// §5.2): [`problemize`] leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct OwnErrorShape;

/// Rewrites any error response that is not already a problem document (actix's own 404s,
/// 405s and 413s, the documentation server's) into one, so clients parse a single error shape.
pub fn problemize<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem || res.response().extensions().contains::<OwnErrorShape>() {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let error = match status {
        StatusCode::NOT_FOUND => AppError::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge { limit: res.request().app_data::<BodyLimit>().map_or(0, |l| l.0) }
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType { expected: "application/json" },
        StatusCode::METHOD_NOT_ALLOWED => {
            AppError::MethodNotAllowed { allow: allowed_methods(res.headers()) }
        }
        s if s.is_server_error() => AppError::Internal(format!("{s} from an inner service")),
        s => AppError::BadRequest(s.canonical_reason().unwrap_or("bad request").to_owned()),
    };
    let (req, old) = res.into_parts();
    let mut new = error.error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, new).map_into_right_body()))
}

fn allowed_methods(headers: &HeaderMap) -> Vec<String> {
    headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|m| m.trim().to_owned()).collect())
        .unwrap_or_default()
}

/// The API's routes as `(template, method)`, taken from the OpenAPI document so that the
/// answer to an unknown route agrees with the documentation: a known path with another
/// method is 405 with `Allow`, anything else 404.
#[derive(Debug, Clone, Default)]
pub struct RouteTable(Arc<Vec<(Vec<String>, Vec<Method>)>>);

impl RouteTable {
    /// Builds the table from the OpenAPI paths.
    pub fn from_spec(spec: &utoipa::openapi::OpenApi) -> Self {
        let routes = spec
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let ops = [
                    (Method::GET, item.get.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                ];
                (segments, ops.into_iter().filter(|(_, on)| *on).map(|(m, _)| m).collect())
            })
            .collect();
        RouteTable(Arc::new(routes))
    }

    /// The methods a concrete path accepts (empty when no route has that shape). A route that
    /// names the path literally wins over templates with parameters (`/businesses/import` is
    /// the import, not a business).
    pub fn methods_for(&self, path: &str) -> Vec<Method> {
        let literal = self.literal_methods(path);
        if !literal.is_empty() {
            return literal;
        }
        self.collect(path, |t, s| t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty()))
    }

    /// The methods of the routes whose template is exactly `path`, without parameters.
    pub fn literal_methods(&self, path: &str) -> Vec<Method> {
        self.collect(path, |t, s| t == s)
    }

    fn collect(&self, path: &str, segment_matches: impl Fn(&str, &str) -> bool) -> Vec<Method> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut methods: Vec<Method> = Vec::new();
        for (template, ops) in self.0.iter() {
            let matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| segment_matches(t, s));
            if matches {
                methods.extend(ops.iter().filter(|m| !methods.contains(m)).cloned().collect::<Vec<_>>());
            }
        }
        methods
    }
}

/// The default service: 405 for a known path with another method, 404 otherwise.
pub async fn fallback(req: HttpRequest) -> AppResult<actix_web::HttpResponse> {
    let methods = req.app_data::<RouteTable>().map(|t| t.methods_for(req.path())).unwrap_or_default();
    if methods.is_empty() {
        Err(AppError::NotFound)
    } else {
        Err(AppError::MethodNotAllowed { allow: methods.iter().map(ToString::to_string).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: i64,
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = parse_json::<Body>(br#"{"name": "a", "count": 1, "colour": "red"}"#).unwrap_err();
        let AppError::Validation(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors[0].field, "colour");
        assert_eq!(errors[0].code, "unknown_field");

        let err = parse_json::<Body>(br#"{"name": "a", "count": "many"}"#).unwrap_err();
        let AppError::Validation(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors[0].field, "count");

        let err = parse_json::<Body>(br#"{"name": "a"}"#).unwrap_err();
        let AppError::Validation(errors) = err else { panic!("{err:?}") };
        assert_eq!((errors[0].field.as_str(), errors[0].code.as_str()), ("count", "required"));

        assert!(matches!(parse_json::<Body>(br#"{"name": "#), Err(AppError::BadRequest(_))));
    }

    #[test]
    fn a_nul_anywhere_in_a_text_is_refused_by_its_field() {
        for (body, field) in [
            (r#"{"name": "a\u0000b", "count": 1}"#, "name"),
            (r#"{"name": "a", "rows": [{}, {"x": ["", "\u0000"]}]}"#, "rows[1].x[1]"),
            (r#"{"a\u0000": 1}"#, "a"),
        ] {
            let err = parse_json::<serde_json::Value>(body.as_bytes()).unwrap_err();
            let AppError::Validation(errors) = err else { panic!("{err:?}") };
            assert_eq!(
                (errors[0].field.as_str(), errors[0].code.as_str()),
                (field, "invalid_format"),
                "{body}"
            );
        }
        // Every field holding one is named.
        let err =
            parse_json::<serde_json::Value>(br#"{"a": "\u0000", "b": "ok", "c": ["\u0000"]}"#).unwrap_err();
        let AppError::Validation(errors) = err else { panic!("{err:?}") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "c[0]"]);
        // An escaped backslash before `u0000` is text, not a NUL.
        for body in [r#"{"name": "a\\u0000", "count": 1}"#, r#"{"name": "\\\\u0000", "count": 1}"#] {
            assert!(parse_json::<Body>(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn request_ids_are_echoed_only_when_plain() {
        assert!(sane_request_id("b7c1e7d2-7f5e-4c0e-9e2a-1f6b9d0c2a11"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id(&"x".repeat(129)));
    }

    #[test]
    fn route_table_matches_templates() {
        let table = RouteTable(Arc::new(vec![(
            "/api/v1/users/{id}".split('/').map(str::to_owned).collect(),
            vec![Method::GET, Method::DELETE],
        )]));
        assert_eq!(table.methods_for("/api/v1/users/7"), vec![Method::GET, Method::DELETE]);
        assert!(table.methods_for("/api/v1/users/7/x").is_empty());
        assert!(table.methods_for("/api/v1/users/").is_empty());
    }

    #[test]
    fn a_literal_route_wins_over_a_template() {
        let route = |t: &str, m: Vec<Method>| (t.split('/').map(str::to_owned).collect(), m);
        let table = RouteTable(Arc::new(vec![
            route("/b/{id}", vec![Method::GET, Method::PATCH]),
            route("/b/import", vec![Method::POST]),
        ]));
        assert_eq!(table.methods_for("/b/import"), vec![Method::POST]);
        assert_eq!(table.literal_methods("/b/import"), vec![Method::POST]);
        assert_eq!(table.methods_for("/b/7"), vec![Method::GET, Method::PATCH]);
        assert!(table.literal_methods("/b/7").is_empty());
    }
}
