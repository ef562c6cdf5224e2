//! What a backup counts, and what makes a database "hold data", on either back end.

use std::collections::BTreeMap;

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::Result;
use super::manifest::plain_name;
use crate::db::{self, Backend, DbConnection};

/// Diesel's record of the migrations applied.
pub(super) const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";
/// Tables the migrations fill with reference data, and the deployment id a first start makes:
/// rows there alone are not "data" that a restore would overwrite.
const REFERENCE_TABLES: [&str; 5] =
    ["regions", "bank_partners", "retail_partners", "financing_programmes", "deployment"];

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = Nullable<Text>)]
    version: Option<String>,
}

/// Every table of the database (SQLite's own and the migration record aside).
fn all(conn: &mut DbConnection) -> Result<Vec<String>> {
    let query = match db::backend(conn) {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        }
    };
    let names = diesel::sql_query(query).load::<Name>(conn)?;
    Ok(names.into_iter().map(|n| n.name).filter(|n| n != MIGRATIONS_TABLE).collect())
}

/// The tables a backup counts: ours, whose names are plain (the only names put into SQL).
pub(super) fn list(conn: &mut DbConnection) -> Result<Vec<String>> {
    Ok(all(conn)?.into_iter().filter(|n| plain_name(n)).collect())
}

/// Rows per table.
pub(super) fn count(conn: &mut DbConnection, tables: &[String]) -> Result<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    for table in tables {
        // `table` passed `plain_name`: safe to put into SQL as an identifier.
        let n =
            diesel::sql_query(format!("SELECT count(*) AS n FROM \"{table}\"")).get_result::<Count>(conn)?.n;
        counts.insert(table.clone(), n);
    }
    Ok(counts)
}

/// The newest migration applied; refuses a database that has no umkm-api schema.
pub(super) fn migration(conn: &mut DbConnection) -> Result<String> {
    let query = match db::backend(conn) {
        Backend::Sqlite => "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = $1"
        }
    };
    let found = diesel::sql_query(query).bind::<Text, _>(MIGRATIONS_TABLE).get_result::<Count>(conn)?.n;
    if found == 0 {
        return Err(super::BackupError::new(
            "the database has no umkm-api schema (no migration was ever applied): is DATABASE_URL right?",
        ));
    }
    let query = format!("SELECT max(version) AS version FROM {MIGRATIONS_TABLE}");
    let version = diesel::sql_query(query).get_result::<Version>(conn)?.version;
    Ok(version.unwrap_or_default())
}

/// The first table holding rows other than the migrations' reference data, if any.
pub(super) fn holding_data(conn: &mut DbConnection) -> Result<Option<String>> {
    for table in all(conn)? {
        // Reference data, and the statistics' summaries (derived from the other tables; their
        // deltas may outlive the rows they describe until the next fold).
        if REFERENCE_TABLES.contains(&table.as_str()) || table.starts_with("summary_") {
            continue;
        }
        if !plain_name(&table) {
            // Not one of ours, so not empty for all we know: a wrong DATABASE_URL, most likely.
            return Ok(Some(table));
        }
        let query = format!("SELECT count(*) AS n FROM (SELECT 1 FROM \"{table}\" LIMIT 1) AS t");
        if diesel::sql_query(query).get_result::<Count>(conn)?.n > 0 {
            return Ok(Some(table));
        }
    }
    Ok(None)
}
