//! Problem documents in Bahasa Indonesia. A request whose `Accept-Language` prefers Indonesian
//! (`id`) gets its problem's `title`, `detail` and every `errors[].message` translated from the
//! catalog `messages_id.tsv`; `type`, `status`, `errors[].field` and `errors[].code` are never
//! translated. English stays the default; every problem says which it is in
//! `Content-Language`.
//!
//! The catalog holds each English text as the code writes it, a dynamic part as `{}` (or `{0}`,
//! `{1}` when the Indonesian takes them in another order). A text it does not know stays
//! English; the test below keeps every message the code writes in it.

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use serde_json::Value;

const CATALOG: &str = include_str!("messages_id.tsv");

/// One part of a template: text, or the dynamic part with this index.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(&'static str),
    Slot(usize),
}

#[derive(Debug)]
struct Template {
    /// The English text around its dynamic parts (one more than there are parts).
    english: Vec<&'static str>,
    indonesian: Vec<Part>,
}

/// Splits a template at its `{}` / `{n}` placeholders.
fn parts(template: &'static str) -> Vec<Part> {
    let mut out = Vec::new();
    let (mut rest, mut next) = (template, 0);
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
        let inside = &rest[open + 1..close];
        let slot = if inside.is_empty() { Some(next) } else { inside.parse::<usize>().ok() };
        match slot {
            Some(slot) => {
                out.push(Part::Text(&rest[..open]));
                out.push(Part::Slot(slot));
                next += 1;
            }
            None => out.push(Part::Text(&rest[..=close])), // a literal `{id}`
        }
        rest = &rest[close + 1..];
    }
    out.push(Part::Text(rest));
    out
}

struct Catalog {
    exact: HashMap<&'static str, &'static str>,
    /// Templates with dynamic parts, the most literal text first (the most specific wins).
    templates: Vec<Template>,
}

static CATALOG_PARSED: LazyLock<Catalog> = LazyLock::new(|| {
    let mut exact = HashMap::new();
    let mut templates = Vec::new();
    for line in CATALOG.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut columns = line.split('\t');
        let (Some(_kind), Some(english), Some(indonesian)) = (columns.next(), columns.next(), columns.next())
        else {
            continue;
        };
        let english_parts = parts(english);
        if english_parts.iter().all(|p| matches!(p, Part::Text(_))) {
            exact.insert(english, indonesian);
            continue;
        }
        // Merge the English into text pieces between slots (slots in order).
        let (mut pieces, mut current) = (Vec::new(), String::new());
        for part in english_parts {
            match part {
                Part::Text(t) => current.push_str(t),
                Part::Slot(_) => pieces.push(std::mem::take(&mut current)),
            }
        }
        pieces.push(current);
        let pieces: Vec<&'static str> = pieces.into_iter().map(|p| &*Box::leak(p.into_boxed_str())).collect();
        templates.push(Template { english: pieces, indonesian: parts(indonesian) });
    }
    templates.sort_by_key(|t| std::cmp::Reverse(t.english.iter().map(|p| p.len()).sum::<usize>()));
    Catalog { exact, templates }
});

impl Template {
    /// The dynamic parts of `text` if it is this template.
    fn capture<'t>(&self, text: &'t str) -> Option<Vec<&'t str>> {
        let (first, rest) = self.english.split_first()?;
        let (last, middle) = rest.split_last()?;
        let mut body = text.strip_prefix(first)?.strip_suffix(last)?;
        let mut slots = Vec::new();
        for piece in middle {
            let at = if piece.is_empty() { 0 } else { body.find(piece)? };
            slots.push(&body[..at]);
            body = &body[at + piece.len()..];
        }
        slots.push(body);
        Some(slots)
    }
}

/// `text` in Indonesian, if the catalog knows it.
pub fn indonesian(text: &str) -> Option<String> {
    let catalog = &*CATALOG_PARSED;
    if let Some(known) = catalog.exact.get(text) {
        return Some((*known).to_owned());
    }
    catalog.templates.iter().find_map(|template| {
        let slots = template.capture(text)?;
        let mut out = String::with_capacity(text.len() + 16);
        for part in &template.indonesian {
            match part {
                Part::Text(t) => out.push_str(t),
                // A dynamic part may itself be a message (`district {}` around a code's).
                Part::Slot(i) => {
                    let slot = slots.get(*i)?;
                    match indonesian(slot) {
                        Some(inner) if !slot.is_empty() => out.push_str(&inner),
                        _ => out.push_str(slot),
                    }
                }
            }
        }
        Some(out)
    })
}

/// Whether `Accept-Language` prefers Indonesian (`id`, or the old `in`) to English.
pub fn prefers_indonesian(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut best: Option<(f32, bool)> = None;
    for range in value.split(',') {
        let mut fields = range.split(';');
        let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = fields
            .find_map(|f| f.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let ours = match primary {
            "id" | "in" => true,
            "en" | "*" => false,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, ours));
        }
    }
    best.is_some_and(|(_, ours)| ours)
}

/// Translates a problem document's texts in place.
fn translate(problem: &mut Value) {
    for key in ["title", "detail"] {
        if let Some(text) = problem.get(key).and_then(Value::as_str).and_then(indonesian) {
            problem[key] = Value::String(text);
        }
    }
    if let Some(errors) = problem.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors {
            if let Some(text) = error.get("message").and_then(Value::as_str).and_then(indonesian) {
                error["message"] = Value::String(text);
            }
        }
    }
}

/// The middleware: says the language of every problem answer and translates it when the
/// request prefers Indonesian.
pub async fn localize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let indonesian = prefers_indonesian(req.headers());
    let mut res = next.call(req).await?.map_into_boxed_body();
    let problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(crate::error::PROBLEM_JSON.as_bytes()));
    if !problem {
        return Ok(res);
    }
    // Appended: CORS has said `Vary: Origin` already for an allowed origin.
    res.headers_mut().append(header::VARY, HeaderValue::from_static("Accept-Language"));
    if !indonesian {
        res.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static("en"));
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (mut res, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.map_err(actix_web::error::ErrorInternalServerError)?;
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut problem) => {
            translate(&mut problem);
            serde_json::to_vec(&problem).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    };
    res.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static("id"));
    Ok(ServiceResponse::new(req, res.set_body(BoxBody::new(body))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn the_preferred_language_is_read_with_its_weights() {
        for yes in ["id", "id-ID", "id-ID,id;q=0.9,en;q=0.8", "en;q=0.5, id", "in", "jv, id;q=0.8"] {
            assert!(prefers_indonesian(&headers(yes)), "{yes}");
        }
        for no in ["en", "en-US,en;q=0.9,id;q=0.8", "*", "fr", "id;q=0", "de, *;q=0.5, id;q=0.2"] {
            assert!(!prefers_indonesian(&headers(no)), "{no}");
        }
        assert!(!prefers_indonesian(&HeaderMap::new()));
    }

    #[test]
    fn templates_carry_their_dynamic_parts() {
        assert_eq!(indonesian("Validation failed").as_deref(), Some("Validasi gagal"));
        assert_eq!(indonesian("3 fields are invalid").as_deref(), Some("3 isian tidak valid"));
        assert_eq!(
            indonesian("too many attempts; try again in 7 seconds").as_deref(),
            Some("terlalu banyak percobaan; coba lagi dalam 7 detik")
        );
        assert_eq!(indonesian("not in the catalog"), None);
    }

    /// The message-making calls of the code and the message they pass, as written.
    fn messages_in(code: &str) -> Vec<String> {
        const CALLS: [&str; 9] = [
            ".fail(",
            "AppError::invalid(",
            "FieldError::new(",
            "AppError::BadRequest(",
            "AppError::Conflict(",
            "AppError::Unauthorized(",
            "Invalid::new(",
            "invalid_format(",
            "out_of_range(",
        ];
        let mut found = Vec::new();
        for call in CALLS {
            for (at, _) in code.match_indices(call) {
                // The call's arguments, up to its closing parenthesis.
                let args = &code[at + call.len()..];
                let mut depth = 1;
                let end = args
                    .char_indices()
                    .find(|(_, c)| {
                        match c {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map_or(args.len(), |(i, _)| i);
                let literals: Vec<String> = string_literals(&args[..end]);
                // Field and code have no spaces: the first text with one is the message.
                if let Some(message) = literals.iter().find(|m| m.trim().contains(' ')) {
                    found.push(message.clone());
                }
            }
        }
        found
    }

    /// The string literals of some code, continuation lines joined.
    fn string_literals(code: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut chars = code.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '"' {
                continue;
            }
            let mut text = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('\n') => {
                            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                                chars.next();
                            }
                        }
                        Some('n') => text.push('\n'),
                        Some(other) => text.push(other),
                        None => {}
                    },
                    other => text.push(other),
                }
            }
            out.push(text);
        }
        out
    }

    /// A message as the client sees it: each `{…}` of a format string filled in.
    fn sample(message: &str) -> String {
        let mut out = String::new();
        let mut rest = message;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
            let inside = &rest[open + 1..close];
            out.push_str(&rest[..open]);
            // `{id}` in a path is text; a format argument is an identifier or empty.
            let argument = inside.is_empty()
                || inside.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '?' | '.'));
            out.push_str(if argument && !message.contains("/{") { "X" } else { &rest[open..=close] });
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_message_the_code_writes_has_both_languages() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut seen = 0;
        let mut missing = Vec::new();
        for file in files.into_iter().filter(|f| !f.ends_with("http/i18n.rs")) {
            let code = std::fs::read_to_string(&file).unwrap();
            let code = code.split("#[cfg(test)]").next().unwrap_or_default();
            for message in messages_in(code) {
                seen += 1;
                if indonesian(&sample(&message)).is_none() {
                    missing.push(format!("{}: {message}", file.strip_prefix(&root).unwrap().display()));
                }
            }
        }
        assert!(seen > 80, "the scan found only {seen} messages: has the code's style changed?");
        assert!(missing.is_empty(), "messages without Indonesian:\n{}", missing.join("\n"));
    }

    #[test]
    fn every_problem_title_and_fixed_detail_has_both_languages() {
        use crate::error::AppError;
        use std::time::Duration;
        let errors = [
            AppError::BadRequest("the request body is not valid JSON".into()),
            AppError::Unauthorized("the token has expired".into()),
            AppError::Forbidden,
            AppError::InsufficientScope(None),
            AppError::NotFound,
            AppError::MethodNotAllowed { allow: vec!["GET".into()] },
            AppError::Conflict("the record was changed".into()),
            AppError::PreconditionFailed,
            AppError::PayloadTooLarge { limit: 1024 },
            AppError::UnsupportedMediaType { expected: "application/json" },
            AppError::Validation(vec![]),
            AppError::TooManyRequests { retry_after: Duration::from_secs(3) },
            AppError::TooManyExports { at_once: 3 },
            AppError::Unavailable("down".into()),
            AppError::Internal("boom".into()),
        ];
        for error in errors {
            let problem = error.problem();
            assert!(indonesian(&problem.title).is_some(), "title {}", problem.title);
            if !matches!(error, AppError::BadRequest(_) | AppError::Unauthorized(_) | AppError::Conflict(_)) {
                assert!(indonesian(&problem.detail).is_some(), "detail {}", problem.detail);
            }
        }
    }
}
