//! The audit log: every create, update and delete, written in the same transaction as the
//! change, with personal data redacted. Read by admins.

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::db::schema::audit_log;
use crate::db::{self, DbConnection};
use crate::disclosures::Classes;
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::http::list::{self, Page, PageParams, Sort};
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_audit_log);
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A record was created; `changes` holds its fields.
    Create,
    /// A record was changed; `changes` holds `{field: {from, to}}` for each changed field.
    Update,
    /// A record was deleted; `changes` holds its last fields.
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// The value written in place of personal data.
pub const REDACTED: &str = "[redacted]";

fn redact(mut fields: Map<String, Value>, pii: &[&str]) -> Map<String, Value> {
    for field in pii {
        if let Some(value) = fields.get_mut(*field)
            && !value.is_null()
        {
            *value = json!(REDACTED);
        }
    }
    fields
}

/// The value written in place of an erased person's data (`crate::rights::erasure`).
pub const ERASED: &str = "[erased]";

/// Replaces the values of `fields` in every entry about the `entity` records `ids` with
/// [`ERASED`] (a field's value, or both ends of its change): an erased person's values leave
/// the log, the entries stay. Returns how many entries changed.
pub fn erase_fields(
    conn: &mut DbConnection,
    entity: &str,
    ids: &[i64],
    fields: &[&str],
) -> QueryResult<usize> {
    let mut changed = 0;
    for chunk in ids.chunks(500) {
        let entries: Vec<(i64, String)> = audit_log::table
            .filter(audit_log::entity.eq(entity))
            .filter(audit_log::entity_id.eq_any(chunk))
            .select((audit_log::id, audit_log::changes))
            .load(conn)?;
        for (id, text) in entries {
            let Ok(Value::Object(mut entry)) = serde_json::from_str::<Value>(&text) else { continue };
            let mut erased = false;
            for field in fields {
                if let Some(value) = entry.get_mut(*field) {
                    erased |= erase_value(value);
                }
            }
            if erased {
                diesel::update(audit_log::table.find(id))
                    .set(audit_log::changes.eq(Value::Object(entry).to_string()))
                    .execute(conn)?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// The businesses whose entries name person `owner` as their owner — created with them, moved
/// to or from them, deleted while theirs — whether or not they still exist or are theirs.
pub fn businesses_of_owner(conn: &mut DbConnection, owner: i64) -> QueryResult<Vec<i64>> {
    // Narrowed in the database by text, settled by reading each entry.
    let rows: Vec<(i64, String)> = audit_log::table
        .filter(audit_log::entity.eq("business"))
        .filter(audit_log::changes.like("%\"owner_id\":%"))
        .filter(audit_log::changes.like(format!("%{owner}%")))
        .select((audit_log::entity_id, audit_log::changes))
        .load(conn)?;
    let mut ids: Vec<i64> =
        rows.into_iter().filter(|(_, text)| owners_named(text).contains(&owner)).map(|(id, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The owners a business's entry names: its `owner_id`, or both ends of its change.
fn owners_named(changes: &str) -> Vec<i64> {
    let Ok(entry) = serde_json::from_str::<Value>(changes) else { return Vec::new() };
    let owner = &entry["owner_id"];
    [owner.as_i64(), owner["from"].as_i64(), owner["to"].as_i64()].into_iter().flatten().collect()
}

/// [`erase_fields`] of one value: a change's two ends, or the value itself; whether it changed.
fn erase_value(value: &mut Value) -> bool {
    match value {
        Value::Object(change) if change.contains_key("from") || change.contains_key("to") => {
            let mut erased = false;
            for end in change.values_mut() {
                erased |= erase_value(end);
            }
            erased
        }
        Value::Null => false,
        Value::String(s) if s == ERASED || s == REDACTED => false,
        other => {
            *other = json!(ERASED);
            true
        }
    }
}

/// The fields of a record for the log: its JSON form without bookkeeping, PII redacted.
pub fn snapshot(record: &impl Serialize, pii: &[&str]) -> Value {
    let mut fields = match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for bookkeeping in ["id", "created_at", "updated_at", "version"] {
        fields.remove(bookkeeping);
    }
    Value::Object(redact(fields, pii))
}

/// `{field: {from, to}}` for every field that differs, PII redacted.
pub fn diff(before: &impl Serialize, after: &impl Serialize, pii: &[&str]) -> Value {
    let (Value::Object(before), Value::Object(after)) = (snapshot(before, &[]), snapshot(after, &[])) else {
        return json!({});
    };
    let mut changes = Map::new();
    for (field, to) in &after {
        let from = before.get(field).cloned().unwrap_or(Value::Null);
        if &from != to {
            let (from, to) = if pii.contains(&field.as_str()) {
                (json!(REDACTED), json!(REDACTED))
            } else {
                (from, to.clone())
            };
            changes.insert(field.clone(), json!({"from": from, "to": to}));
        }
    }
    Value::Object(changes)
}

/// Writes one entry, made by the user `user_id`.
pub fn record(
    conn: &mut DbConnection,
    user_id: i64,
    action: Action,
    entity: &str,
    entity_id: i64,
    changes: &Value,
) -> QueryResult<()> {
    record_by(conn, Some(user_id), action, entity, entity_id, changes)
}

/// Writes one entry; `user_id` is `None` for a change made from the command line.
pub fn record_by(
    conn: &mut DbConnection,
    user_id: Option<i64>,
    action: Action,
    entity: &str,
    entity_id: i64,
    changes: &Value,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::occurred_at.eq(db::now()),
            audit_log::user_id.eq(user_id),
            audit_log::action.eq(action.as_str()),
            audit_log::entity.eq(entity),
            audit_log::entity_id.eq(entity_id),
            audit_log::changes.eq(changes.to_string()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes one entry per `(entity_id, changes)`, as a single multi-row INSERT on PostgreSQL
/// (for imports of thousands of records).
pub fn record_many(
    conn: &mut DbConnection,
    user_id: i64,
    action: Action,
    entity: &str,
    entries: &[(i64, Value)],
) -> QueryResult<()> {
    let at = db::now();
    let rows: Vec<_> = entries
        .iter()
        .map(|(id, changes)| {
            (
                audit_log::occurred_at.eq(at),
                audit_log::user_id.eq(user_id),
                audit_log::action.eq(action.as_str()),
                audit_log::entity.eq(entity),
                audit_log::entity_id.eq(*id),
                audit_log::changes.eq(changes.to_string()),
            )
        })
        .collect();
    match conn {
        // One row as a single-row INSERT, which diesel prepares once per connection.
        DbConnection::Pg(pg) if rows.len() > 1 => {
            for chunk in rows.chunks(1000) {
                diesel::insert_into(audit_log::table).values(chunk).execute(pg)?;
            }
        }
        _ => {
            for row in rows {
                diesel::insert_into(audit_log::table).values(row).execute(conn)?;
            }
        }
    }
    Ok(())
}

/// An audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Id; entries are numbered in the order they were written.
    pub id: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who (the user's id).
    pub user_id: Option<i64>,
    /// What was done.
    #[schema(example = "update")]
    pub action: String,
    /// The kind of record: `business`, `product`, …
    #[schema(example = "business")]
    pub entity: String,
    /// The record's id.
    pub entity_id: i64,
    /// The fields written (create, delete) or changed (update), personal data redacted.
    #[schema(value_type = Object)]
    pub changes: Value,
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this kind of record.
    pub entity: Option<String>,
    /// Only entries about the record with this id.
    pub entity_id: Option<i64>,
    /// Only entries by this user.
    pub user_id: Option<i64>,
    /// Only entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub to: Option<DateTime<Utc>>,
    /// Rows per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An entry as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    id: i64,
    occurred_at: chrono::NaiveDateTime,
    user_id: Option<i64>,
    action: String,
    entity: String,
    entity_id: i64,
    changes: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            occurred_at: r.occurred_at.and_utc(),
            user_id: r.user_id,
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id,
            changes: serde_json::from_str(&r.changes).unwrap_or(Value::Null),
        }
    }
}

crate::key_order!(AuditOrder, audit_log, AuditRow, id, Int);

/// Read the audit log, newest first.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, description = "A page of entries, newest first", body = Page<AuditEntry>)),
)]
#[get("/audit-log")]
pub async fn list_audit_log(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    // The entries keep persons' names and businesses' addresses (identifiers and contact are
    // redacted): each page records whom it names.
    let disclosing = caller.discloser(&req, Classes::NAME_ADDRESS)?;
    let query = query.into_inner();
    let sort = Sort::<AuditOrder>::parse(None, "-id")?;
    let params = PageParams::new(query.limit, query.cursor.as_deref(), None).recorded_by(&disclosing);
    let page = move |conn: &mut DbConnection, after: Option<&str>, limit| {
        let mut q = audit_log::table.into_boxed();
        if let Some(entity) = query.entity.clone() {
            q = q.filter(audit_log::entity.eq(entity));
        }
        if let Some(id) = query.entity_id {
            q = q.filter(audit_log::entity_id.eq(id));
        }
        if let Some(user) = query.user_id {
            q = q.filter(audit_log::user_id.eq(user));
        }
        if let Some(from) = query.from {
            q = q.filter(audit_log::occurred_at.ge(from.naive_utc()));
        }
        if let Some(to) = query.to {
            q = q.filter(audit_log::occurred_at.lt(to.naive_utc()));
        }
        let (rows, next) = list::keyset(conn, q.select(AuditRow::as_select()), &sort, after, limit)?;
        disclosing.disclose_blocking(persons_named(conn, &rows)?)?;
        Ok((rows.into_iter().map(AuditEntry::from).collect::<Vec<_>>(), next))
    };
    list::json_page(&state.pool, params, page, |_| Ok(0)).await
}

/// The persons whose values `rows` hold: a person's entries, and a business's (the owners it
/// names; for an entry that names none, the business's owner now).
fn persons_named(conn: &mut DbConnection, rows: &[AuditRow]) -> QueryResult<Vec<i64>> {
    use crate::db::schema::businesses;
    let mut persons: Vec<i64> = rows.iter().filter(|r| r.entity == "person").map(|r| r.entity_id).collect();
    let mut owned = Vec::new();
    for r in rows.iter().filter(|r| r.entity == "business") {
        match owners_named(&r.changes) {
            named if named.is_empty() => owned.push(r.entity_id),
            named => persons.extend(named),
        }
    }
    if !owned.is_empty() {
        let owners: Vec<i64> =
            businesses::table.filter(businesses::id.eq_any(owned)).select(businesses::owner_id).load(conn)?;
        persons.extend(owners);
    }
    Ok(persons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_changed_fields_and_hide_personal_data() {
        let before = json!({"id": 1, "name": "A", "owner_nik": "3524051203900001", "version": 1});
        let after = json!({"id": 1, "name": "B", "owner_nik": "3524051203900002", "version": 2});
        assert_eq!(
            diff(&before, &after, &["owner_nik"]),
            json!({"name": {"from": "A", "to": "B"}, "owner_nik": {"from": REDACTED, "to": REDACTED}})
        );
        assert_eq!(snapshot(&after, &["owner_nik"]), json!({"name": "B", "owner_nik": REDACTED}));
    }
}
