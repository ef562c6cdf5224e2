//! An example on every request and response body that lacks one, put together from the
//! examples its schema's fields declare (`#[schema(example = …)]`), and, for problem answers,
//! the problem the server sends for that status. `tests/api/openapi_examples.rs` validates each
//! against its own schema, so an example a field gets wrong fails the build's tests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::RefOr;

use crate::error::{AppError, FieldError};

/// How deep `$ref`s are followed: deeper than any schema of the API, short of a cycle.
const MAX_DEPTH: usize = 12;

/// Sets `example` on every media type of every request and response body that has none.
pub fn add(doc: &mut Document) {
    let schemas: BTreeMap<String, Value> = doc
        .components
        .as_ref()
        .map(|c| {
            c.schemas.iter().filter_map(|(k, v)| Some((k.clone(), serde_json::to_value(v).ok()?))).collect()
        })
        .unwrap_or_default();
    let fields = field_examples(&schemas);
    let examples = Examples { schemas: &schemas, fields: &fields };
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
        for operation in operations.into_iter().flatten() {
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    let RefOr::T(content) = content else { continue };
                    if content.example.is_none() {
                        let schema = content.schema.as_ref().and_then(|s| serde_json::to_value(s).ok());
                        content.example = schema.and_then(|s| examples.of(&s, 0));
                    }
                }
            }
            let exports = matches!(operation.responses.responses.get("200"),
                Some(RefOr::T(ok)) if ok.content.contains_key("application/x-ndjson"));
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else { continue };
                let is_export = |m: &str| {
                    m == "text/csv" || m == "application/x-ndjson" || m == crate::http::xlsx::MEDIA_TYPE
                };
                for (media_type, content) in response.content.iter_mut() {
                    let RefOr::T(content) = content else { continue };
                    if content.example.is_some() || is_export(media_type) {
                        continue;
                    }
                    content.example = if media_type == crate::error::PROBLEM_JSON {
                        status.parse().ok().and_then(|status| problem(status, exports))
                    } else {
                        let schema = content.schema.as_ref().and_then(|s| serde_json::to_value(s).ok());
                        schema.and_then(|s| examples.of(&s, 0))
                    };
                }
                // An export is the rows of the JSON page, as CSV (the same fields, by serde) or
                // as one JSON object per line.
                let row = match response.content.get("application/json") {
                    Some(RefOr::T(page)) => page.example.as_ref().and_then(|e| e.pointer("/data/0")).cloned(),
                    _ => None,
                };
                for (media_type, content) in response.content.iter_mut() {
                    let RefOr::T(content) = content else { continue };
                    if content.example.is_none() && is_export(media_type) {
                        content.example = row.as_ref().and_then(|row| export(media_type, row));
                    }
                }
            }
        }
    }
}

/// One row of an export in `media_type`.
fn export(media_type: &str, row: &Value) -> Option<Value> {
    let fields = row.as_object()?;
    if media_type == crate::http::xlsx::MEDIA_TYPE {
        return None; // A zip archive: no text example.
    }
    if media_type == "application/x-ndjson" {
        return Some(Value::String(format!("{row}\n")));
    }
    let cell = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(fields.keys()).ok()?;
    writer.write_record(fields.values().map(cell).collect::<Option<Vec<_>>>()?).ok()?;
    String::from_utf8(writer.into_inner().ok()?).ok().map(Value::String)
}

/// The problem document the server answers with `status` (on a list that `exports`, its 429
/// is the exporter's).
fn problem(status: u16, exports: bool) -> Option<Value> {
    let error = match status {
        400 => AppError::BadRequest("invalid query string: limit: invalid digit found in string".into()),
        401 => AppError::Unauthorized("the token has expired".into()),
        403 => AppError::Forbidden,
        404 => AppError::NotFound,
        409 => AppError::Conflict("a business with this NIB exists".into()),
        412 => AppError::PreconditionFailed,
        413 => AppError::PayloadTooLarge { limit: 1 << 20 },
        415 => AppError::UnsupportedMediaType { expected: "application/json" },
        422 => AppError::Validation(vec![
            FieldError::new("owner_nik", "invalid_format", "must be 16 digits"),
            FieldError::new("name", "required", "is required"),
        ]),
        429 if exports => AppError::TooManyExports { at_once: crate::spool::AT_ONCE_PER_EXPORTER },
        429 => AppError::TooManyRequests { retry_after: Duration::from_secs(60) },
        500 => AppError::internal("example"),
        503 => AppError::Unavailable("example".into()),
        _ => return None,
    };
    serde_json::to_value(error.problem()).ok()
}

/// The example of each field name some schema gives one, for the schemas that have a field of
/// that name without (a view's `name` takes the example of its input's `name`).
fn field_examples(schemas: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    for schema in schemas.values() {
        for (name, property) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
            if let Some(example) = property.get("example") {
                fields.entry(name.clone()).or_insert_with(|| example.clone());
            }
        }
    }
    fields
}

/// What examples are made of: the components, and the examples by field name.
struct Examples<'a> {
    schemas: &'a BTreeMap<String, Value>,
    fields: &'a BTreeMap<String, Value>,
}

impl Examples<'_> {
    fn of(&self, schema: &Value, depth: usize) -> Option<Value> {
        example(schema, self, depth)
    }
}

/// A string property without constraints of its own, which another schema's example of a
/// field of the same name fits.
fn is_plain_string(property: &Value) -> bool {
    property.get("type").is_some_and(|t| t == "string" || t == &json!(["string", "null"]))
        && ["pattern", "format", "enum", "maxLength", "minLength"].iter().all(|k| property.get(k).is_none())
}

/// An example of `schema`: its own, else one made of its parts' examples; `None` when a part
/// has neither an example nor a shape that implies one.
fn example(schema: &Value, examples: &Examples, depth: usize) -> Option<Value> {
    let schemas = examples.schemas;
    if depth > MAX_DEPTH {
        return None;
    }
    if let Some(example) = schema.get("example") {
        return Some(example.clone());
    }
    if let Some(first) = schema.get("examples").and_then(Value::as_array).and_then(|e| e.first()) {
        return Some(first.clone());
    }
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.strip_prefix("#/components/schemas/")?;
        return example(schemas.get(name)?, examples, depth + 1);
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return Some(first.clone());
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(branches) = schema.get(combinator).and_then(Value::as_array) {
            let not_null = |b: &&Value| b.get("type").and_then(Value::as_str) != Some("null");
            return branches.iter().filter(not_null).find_map(|b| example(b, examples, depth + 1));
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in parts {
            match example(part, examples, depth + 1)? {
                Value::Object(fields) => merged.extend(fields),
                other => return Some(other),
            }
        }
        return Some(Value::Object(merged));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match types.iter().copied().find(|t| *t != "null") {
        Some("object") => {
            let mut object = Map::new();
            for (name, property) in schema.get("properties").and_then(Value::as_object).into_iter().flatten()
            {
                let value = example(property, examples, depth + 1)
                    .or_else(|| examples.fields.get(name).filter(|_| is_plain_string(property)).cloned())?;
                object.insert(name.clone(), value);
            }
            Some(Value::Object(object))
        }
        Some("array") => Some(json!([example(schema.get("items")?, examples, depth + 1)?])),
        Some("integer" | "number") => Some(schema.get("minimum").cloned().unwrap_or(json!(1))),
        Some("boolean") => Some(json!(true)),
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Some(json!("2024-03-04T08:30:00Z")),
            Some("date") => Some(json!("2024-03-04")),
            // A text that may be null and has no example of its own: null says least.
            _ if types.contains(&"null") => Some(Value::Null),
            _ => None,
        },
        Some(_) => None,
        None if types.contains(&"null") => Some(Value::Null),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every body of the document, as `(where, media type example, schema)`.
    fn bodies(doc: &Value) -> Vec<(String, Option<Value>, Value)> {
        let mut found = Vec::new();
        let mut collect = |place: String, contents: Option<&Value>| {
            for (media_type, content) in contents.and_then(Value::as_object).into_iter().flatten() {
                if media_type == crate::http::xlsx::MEDIA_TYPE {
                    continue; // A zip archive: no text to give as an example.
                }
                let schema = content.get("schema").cloned().unwrap_or(json!({}));
                found.push((format!("{place} {media_type}"), content.get("example").cloned(), schema));
            }
        };
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                collect(format!("{method} {path} request"), operation.pointer("/requestBody/content"));
                for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                    collect(format!("{method} {path} {status}"), response.get("content"));
                }
            }
        }
        found
    }

    #[test]
    fn every_body_has_an_example_valid_against_its_schema() {
        let doc = serde_json::to_value(crate::openapi::spec()).unwrap();
        let bodies = bodies(&doc);
        assert!(bodies.len() > 700, "{} bodies", bodies.len());
        let mut wrong = Vec::new();
        for (place, example, schema) in bodies {
            let Some(example) = example else {
                wrong.push(format!("{place}: no example"));
                continue;
            };
            // `#/components/schemas/…` resolves against the root: give the schema the document's.
            let mut root = schema.clone();
            if let Value::Object(map) = &mut root {
                map.insert("components".into(), doc["components"].clone());
            } else {
                root = json!({"allOf": [schema], "components": doc["components"]});
            }
            let validator = jsonschema::options().should_validate_formats(true).build(&root).unwrap();
            for error in validator.iter_errors(&example) {
                wrong.push(format!("{place}: {error} at {}", error.instance_path()));
            }
        }
        assert!(wrong.is_empty(), "{} bad examples:\n{}", wrong.len(), wrong.join("\n"));
    }

    #[test]
    fn a_bad_example_is_caught() {
        let schemas = BTreeMap::from([(
            "T".to_owned(),
            json!({"type": "object", "properties": {"n": {"type": "integer", "example": 3}, "s": {"type": "string"}}}),
        )]);
        let fields = BTreeMap::from([("s".to_owned(), json!("x"))]);
        let examples = Examples { schemas: &schemas, fields: &fields };
        assert_eq!(
            examples.of(&json!({"$ref": "#/components/schemas/T"}), 0),
            Some(json!({"n": 3, "s": "x"}))
        );
        let validator = jsonschema::validator_for(&json!({"type": "integer", "maximum": 2})).unwrap();
        assert!(!validator.is_valid(&json!(3)));
        assert_eq!(examples.of(&json!({"type": "string", "pattern": "^x$"}), 0), None, "no made-up strings");
    }
}
