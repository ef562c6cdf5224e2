//! Changing a stored record: a JSON merge patch (RFC 7396) is merged into the record as stored
//! and the result is checked whole, like a create; the write is then made only if the row still
//! has the version that was read.
//!
//! PostgreSQL runs READ COMMITTED, so a version compared after a read does not hold at the write:
//! two requests with the same `If-Match` can both pass it. The write itself therefore carries the
//! condition (`UPDATE … WHERE id = ? AND version = ?`), and a write that changed no row is 412
//! and the transaction, with whatever else it wrote, is rolled back. [`versioned_update!`] and
//! [`versioned_delete!`] are the only ways a versioned row is changed. (Two writes touch a
//! versioned row without changing its record, so without a new version: a login's
//! `last_login_at`, and the no-op update with which an application locks its open programme.)

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{AppError, AppResult, FieldError};

/// Fields a client never sends: the server sets them.
const SERVER_FIELDS: [&str; 4] = ["id", "created_at", "updated_at", "version"];

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(changes) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(map) = target {
                for (key, value) in changes {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// 422 unless `patch` is a JSON object (the only merge patch that keeps a record a record).
pub fn require_object(patch: &Value) -> AppResult<()> {
    if patch.is_object() {
        Ok(())
    } else {
        Err(AppError::invalid("body", "invalid_type", "a merge patch must be a JSON object"))
    }
}

/// The input a client would send to create `current` as it is now with `patch` applied:
/// `current` is serialized, the server's fields and `read_only` are dropped, `patch` is merged,
/// and the result is parsed strictly as `I` (a field the client may not change is then an
/// unknown field, 422).
pub fn merged<I: DeserializeOwned>(
    current: &impl Serialize,
    patch: &Value,
    read_only: &[&str],
) -> AppResult<I> {
    require_object(patch)?;
    let mut doc = serde_json::to_value(current).map_err(AppError::internal)?;
    if let Value::Object(map) = &mut doc {
        for field in SERVER_FIELDS.iter().chain(read_only) {
            map.remove(*field);
        }
    }
    merge_patch(&mut doc, patch);
    // Merging drops a field set to null without a trace; kept as null, a field `I` does not
    // have is refused like any unknown field, and one it has reads as absent.
    if let (Value::Object(map), Value::Object(changes)) = (&mut doc, patch) {
        for (field, _) in changes.iter().filter(|(_, v)| v.is_null()) {
            map.insert(field.clone(), Value::Null);
        }
    }
    crate::http::parse_json(doc.to_string().as_bytes())
}

/// 422 naming each of `fields` that `patch` would change: fields a record keeps for life (the
/// bank a programme belongs to, the partner an outlet belongs to). Sending the current value
/// is allowed, so a client may send back what it read.
pub fn refuse_changes(current: &impl Serialize, patch: &Value, fields: &[&str]) -> AppResult<()> {
    let current = serde_json::to_value(current).map_err(AppError::internal)?;
    let errors: Vec<FieldError> = fields
        .iter()
        .filter(|f| patch.get(**f).is_some_and(|v| Some(v) != current.get(**f)))
        .map(|f| FieldError::new(*f, "read_only", "cannot be changed"))
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(AppError::Validation(errors)) }
}

/// The outcome of a write conditioned on a version: 412 when it changed no row, because another
/// request changed (or deleted) the row since it was read.
pub fn versioned(changed: usize) -> AppResult<()> {
    if changed == 0 { Err(AppError::PreconditionFailed) } else { Ok(()) }
}

/// `INSERT INTO table (values…, created_at, updated_at, version) VALUES (…, now, now, 1)
/// RETURNING id`: a new versioned row. Expands to a `QueryResult<i64>`.
#[macro_export]
macro_rules! versioned_insert {
    ($conn:expr, $table:ident, $values:expr $(,)?) => {{
        use diesel::prelude::*;
        let now = $crate::db::now();
        diesel::insert_into($table::table)
            .values(($values, $table::created_at.eq(now), $table::updated_at.eq(now), $table::version.eq(1)))
            .returning($table::id)
            .get_result::<i64>($conn)
    }};
}

/// `UPDATE table SET values, updated_at = now, version = version + 1 WHERE id = ? AND version = ?`;
/// `Err(412)` when no row had that version. Expands to an `AppResult<()>`.
#[macro_export]
macro_rules! versioned_update {
    ($conn:expr, $table:ident, $id:expr, $version:expr, $values:expr $(,)?) => {{
        use diesel::prelude::*;
        let version: i32 = $version;
        diesel::update($table::table.find($id).filter($table::version.eq(version)))
            .set(($values, $table::updated_at.eq($crate::db::now()), $table::version.eq(version + 1)))
            .execute($conn)
            .map_err($crate::error::AppError::from)
            .and_then($crate::http::patch::versioned)
    }};
}

/// `DELETE FROM table WHERE id = ? AND version = ?`; `Err(412)` when no row had that version.
/// Expands to an `AppResult<()>`; a foreign-key refusal comes back as the usual 409.
#[macro_export]
macro_rules! versioned_delete {
    ($conn:expr, $table:ident, $id:expr, $version:expr $(,)?) => {{
        use diesel::prelude::*;
        let version: i32 = $version;
        diesel::delete($table::table.find($id).filter($table::version.eq(version)))
            .execute($conn)
            .map_err($crate::error::AppError::from)
            .and_then($crate::http::patch::versioned)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": 1});
        merge_patch(&mut doc, &json!({"b": [1], "a": null}));
        assert_eq!(doc, json!({"b": [1]}));
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Input {
        name: String,
        note: Option<String>,
    }

    #[test]
    fn merged_drops_server_fields_and_refuses_read_only_ones() {
        let current = json!({"id": 1, "version": 3, "created_at": "x", "updated_at": "y",
                             "code": "BRI", "name": "a", "note": "n"});
        let input: Input = merged(&current, &json!({"name": "b", "note": null}), &["code"]).unwrap();
        assert_eq!(input, Input { name: "b".into(), note: None });
        let err = merged::<Input>(&current, &json!({"code": "BNI"}), &[]).unwrap_err();
        assert!(matches!(err, AppError::Validation(ref e) if e[0].field == "code"), "{err:?}");
        assert!(matches!(merged::<Input>(&current, &json!([1]), &["code"]), Err(AppError::Validation(_))));
        // A null for a field the input does not have is refused, not dropped unseen.
        for unknown in [json!({"": null}), json!({"colour": null, "name": "b"})] {
            let err = merged::<Input>(&current, &unknown, &["code"]).unwrap_err();
            assert!(matches!(err, AppError::Validation(_)), "{unknown}: {err:?}");
        }
    }

    #[test]
    fn fixed_fields_may_be_resent_but_not_changed() {
        let current = json!({"bank_partner_id": 1, "name": "a"});
        assert!(
            refuse_changes(&current, &json!({"bank_partner_id": 1, "name": "b"}), &["bank_partner_id"])
                .is_ok()
        );
        let err = refuse_changes(&current, &json!({"bank_partner_id": 2}), &["bank_partner_id"]).unwrap_err();
        assert!(matches!(err, AppError::Validation(ref e) if e[0].code == "read_only"), "{err:?}");
        let err =
            refuse_changes(&current, &json!({"bank_partner_id": null}), &["bank_partner_id"]).unwrap_err();
        assert!(matches!(err, AppError::Validation(_)));
    }

    #[test]
    fn a_write_that_changed_nothing_is_412() {
        assert!(versioned(1).is_ok());
        assert!(matches!(versioned(0), Err(AppError::PreconditionFailed)));
    }
}
