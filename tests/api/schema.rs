//! The hand-written `src/db/schema.rs` must describe exactly what the migrations of the back end
//! under test create: the same tables, the same columns, each with the declared type and
//! nullability. A column added to one migrations folder and not to the schema (or the other way
//! round) fails here, on the back end that drifted.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use umkm_api::db::{self, Backend};

use crate::helpers::spawn_app;

/// `table -> column -> (type, nullable)`.
type Tables = BTreeMap<String, BTreeMap<String, (String, bool)>>;

/// The tables of `schema.rs`, read from its `diesel::table!` blocks.
fn declared() -> Tables {
    let source = include_str!("../../src/db/schema.rs");
    let mut tables = Tables::new();
    let mut current: Option<String> = None;
    for line in source.lines().map(str::trim) {
        if let Some(name) =
            line.split_once(" (").map(|(n, _)| n).filter(|n| line.ends_with('{') && !n.contains(' '))
        {
            current = Some(name.to_owned());
            tables.entry(name.to_owned()).or_default();
        } else if let (Some(table), Some((column, kind))) = (&current, line.split_once(" -> ")) {
            let kind = kind.trim_end_matches(',');
            let (kind, nullable) = match kind.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>'), true),
                None => (kind, false),
            };
            tables.get_mut(table).unwrap().insert(column.to_owned(), (kind.to_owned(), nullable));
        } else if line == "}" {
            current = None;
        }
    }
    tables
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = BigInt)]
    nullable: i64,
}

/// The diesel type a column of the database maps to.
fn diesel_type(backend: Backend, data_type: &str) -> String {
    let t = data_type.to_ascii_lowercase();
    let kind = match (backend, t.as_str()) {
        (Backend::Postgres, "bigint") => "BigInt",
        (Backend::Postgres, "integer") => "Integer",
        (Backend::Sqlite, "bigint") => "BigInt",
        // SQLite's rowid primary keys are INTEGER and hold 64 bits.
        (Backend::Sqlite, "integer") => "Integer|BigInt",
        (_, "text") => "Text",
        (_, "timestamp without time zone") | (Backend::Sqlite, "timestamp") => "Timestamp",
        (_, "date") => "Date",
        (_, "boolean") => "Bool",
        _ => return format!("? {data_type}"),
    };
    kind.to_owned()
}

/// The tables the migrations created, with the diesel type each column maps to.
fn created(conn: &mut db::DbConnection) -> Tables {
    let backend = db::backend(conn);
    let columns: Vec<Column> = match backend {
        Backend::Postgres => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
             data_type::text AS data_type, (CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END)::int8 AS nullable \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations'",
        )
        .load(conn)
        .unwrap(),
        // A primary key is never null, although SQLite does not mark a TEXT key NOT NULL.
        Backend::Sqlite => diesel::sql_query(
            "SELECT m.name AS table_name, c.name AS column_name, c.type AS data_type, \
             CAST(c.\"notnull\" = 0 AND c.pk = 0 AS BIGINT) AS nullable \
             FROM sqlite_schema m JOIN pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND m.name <> '__diesel_schema_migrations'",
        )
        .load(conn)
        .unwrap(),
    };
    let mut tables = Tables::new();
    for c in columns {
        tables
            .entry(c.table_name)
            .or_default()
            .insert(c.column_name, (diesel_type(backend, &c.data_type), c.nullable == 1));
    }
    tables
}

#[actix_rt::test]
async fn schema_rs_matches_the_migrated_database() {
    let app = spawn_app().await;
    let mut declared = declared();
    assert!(declared.len() >= 14 && declared.contains_key("businesses"), "parsed {:?}", declared.keys());
    let created = app.db(created);
    if app.db(|c| db::backend(c)) == Backend::Postgres {
        // SQLite's row per person per disclosure; PostgreSQL has a GIN index over
        // `disclosures.persons` instead (migration 000021).
        declared.remove("disclosed_persons");
    }
    assert_eq!(
        declared.keys().collect::<Vec<_>>(),
        created.keys().collect::<Vec<_>>(),
        "the tables of schema.rs and of the migrations"
    );
    let mut drift = Vec::new();
    for (table, columns) in &declared {
        let actual = &created[table];
        for (column, (kind, nullable)) in columns {
            match actual.get(column) {
                None => drift.push(format!("{table}.{column} is not in the database")),
                Some((actual_kind, actual_nullable)) => {
                    if !actual_kind.split('|').any(|k| k == kind) {
                        drift.push(format!("{table}.{column}: schema.rs {kind}, database {actual_kind}"));
                    }
                    // SQLite cannot add NOT NULL to an existing column: businesses.owner_id is
                    // kept set by triggers there (migration 000017), and the test below holds it.
                    let enforced_by_triggers = table == "businesses" && column == "owner_id" && !nullable;
                    if nullable != actual_nullable && !enforced_by_triggers {
                        drift.push(format!("{table}.{column}: nullable {nullable} in schema.rs, {actual_nullable} in the database"));
                    }
                }
            }
        }
        for column in actual.keys().filter(|c| !columns.contains_key(*c)) {
            drift.push(format!("{table}.{column} is not in schema.rs"));
        }
    }
    assert!(drift.is_empty(), "schema.rs has drifted:\n{}", drift.join("\n"));
}
