//! The disclosure log's storage: a batch written, a person's trail, an actor's exposure, the
//! retention's prune.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Classes, DataClass, Entry};
use crate::db::schema::{disclosed_persons, disclosures};
use crate::db::{self, DbConnection, Pool};

fn persons_text(entry: &Entry) -> String {
    entry.persons.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Writes a batch, all or nothing.
pub(super) fn insert(conn: &mut DbConnection, entries: &[&Entry]) -> QueryResult<()> {
    match conn {
        // One statement (atomic alone: no BEGIN and COMMIT round trips), prepared once per
        // connection; the persons are found through the GIN index over `persons`.
        DbConnection::Pg(pg) => PgBatch::new(entries).execute(pg).map(drop),
        // In process, row by row (each statement prepared once), with a row per person for the
        // trail: SQLite has no inverted index.
        DbConnection::Sqlite(_) => db::write(conn, |conn| {
            for e in entries {
                let id: i64 = diesel::insert_into(disclosures::table)
                    .values((
                        disclosures::occurred_at.eq(e.occurred_at),
                        disclosures::user_id.eq(Some(e.user_id)),
                        disclosures::bank_partner_id.eq(e.bank_partner_id),
                        disclosures::retail_partner_id.eq(e.retail_partner_id),
                        disclosures::route.eq(e.route.as_str()),
                        disclosures::request_id.eq(e.request_id.as_str()),
                        disclosures::classes.eq(e.classes.0),
                        disclosures::persons.eq(persons_text(e)),
                    ))
                    .returning(disclosures::id)
                    .get_result(conn)?;
                for person in &e.persons {
                    diesel::insert_into(disclosed_persons::table)
                        .values((
                            disclosed_persons::person_id.eq(*person),
                            disclosed_persons::disclosure_id.eq(id),
                        ))
                        .execute(conn)?;
                }
            }
            Ok(())
        }),
    }
}

/// A batch of entries as one PostgreSQL statement of fixed text, its values as arrays, so that
/// the connection prepares it once (`diesel::sql_query` is never prepared, and a multi-row
/// VALUES list differs with every batch's size): parsing and planning each batch anew cost the
/// database more than the rows themselves.
struct PgBatch {
    occurred_at: Vec<NaiveDateTime>,
    user_id: Vec<i64>,
    bank_partner_id: Vec<Option<i64>>,
    retail_partner_id: Vec<Option<i64>>,
    route: Vec<String>,
    request_id: Vec<String>,
    classes: Vec<i32>,
    persons: Vec<String>,
}

impl PgBatch {
    fn new(entries: &[&Entry]) -> PgBatch {
        PgBatch {
            occurred_at: entries.iter().map(|e| e.occurred_at).collect(),
            user_id: entries.iter().map(|e| e.user_id).collect(),
            bank_partner_id: entries.iter().map(|e| e.bank_partner_id).collect(),
            retail_partner_id: entries.iter().map(|e| e.retail_partner_id).collect(),
            route: entries.iter().map(|e| e.route.clone()).collect(),
            request_id: entries.iter().map(|e| e.request_id.clone()).collect(),
            classes: entries.iter().map(|e| e.classes.0).collect(),
            persons: entries.iter().map(|e| persons_text(e)).collect(),
        }
    }
}

impl diesel::query_builder::QueryId for PgBatch {
    type QueryId = PgBatch;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for PgBatch {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};
        out.push_sql(
            "INSERT INTO disclosures (occurred_at, user_id, bank_partner_id, retail_partner_id, route, request_id, \
             classes, persons) SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Timestamp>, _>(&self.occurred_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.bank_partner_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.retail_partner_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.route)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.request_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.classes)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.persons)?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<diesel::PgConnection> for PgBatch {}

/// One disclosure of a person, as their trail shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Disclosure {
    /// The entry's id; entries are numbered in the order they were written.
    pub id: i64,
    /// When the answer was given.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// The user or API client that received it.
    pub user_id: Option<i64>,
    /// Their bank partner, for a bank's user or client.
    pub bank_partner_id: Option<i64>,
    /// Their retail partner, for a retail partner's user or client.
    pub retail_partner_id: Option<i64>,
    /// The route that answered, e.g. `GET /api/v1/businesses/{id}`.
    #[schema(example = "GET /api/v1/businesses/{id}")]
    pub route: String,
    /// The request's id (its `X-Request-Id`).
    #[schema(example = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f")]
    pub request_id: String,
    /// What the answer carried of the person.
    pub classes: Vec<DataClass>,
    /// Whether it carried them masked (`S*** W***`, `3524********0002`): a retail partner's
    /// user receives a business's owner only so.
    pub masked: bool,
}

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = disclosures)]
struct DisclosureRow {
    id: i64,
    occurred_at: NaiveDateTime,
    user_id: Option<i64>,
    bank_partner_id: Option<i64>,
    retail_partner_id: Option<i64>,
    route: String,
    request_id: String,
    classes: i32,
}

impl From<DisclosureRow> for Disclosure {
    fn from(row: DisclosureRow) -> Disclosure {
        Disclosure {
            id: row.id,
            occurred_at: row.occurred_at.and_utc(),
            user_id: row.user_id,
            bank_partner_id: row.bank_partner_id,
            retail_partner_id: row.retail_partner_id,
            route: row.route,
            request_id: row.request_id,
            classes: Classes(row.classes).named(),
            masked: row.retail_partner_id.is_some(),
        }
    }
}

/// Person `person`'s disclosures, newest first, from before entry `before` (all when `None`),
/// at most `limit`.
pub fn of_person(
    conn: &mut DbConnection,
    person: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Disclosure>> {
    let before = before.unwrap_or(i64::MAX);
    let rows: Vec<DisclosureRow> = match conn {
        DbConnection::Pg(pg) => {
            use diesel::sql_types::BigInt;
            // The person's entries through the GIN index, then the newest: planned as it reads,
            // the query would walk the primary key backwards testing every entry's persons.
            diesel::sql_query(
                "WITH mine AS MATERIALIZED (SELECT id, occurred_at, user_id, bank_partner_id, retail_partner_id, \
                 route, request_id, classes FROM disclosures \
                 WHERE string_to_array(persons, ',')::bigint[] @> ARRAY[$1] AND id < $2) \
                 SELECT * FROM mine ORDER BY id DESC LIMIT $3",
            )
            .bind::<BigInt, _>(person)
            .bind::<BigInt, _>(before)
            .bind::<BigInt, _>(limit)
            .load(pg)?
        }
        DbConnection::Sqlite(_) => {
            let ids = disclosed_persons::table
                .filter(disclosed_persons::person_id.eq(person))
                .filter(disclosed_persons::disclosure_id.lt(before))
                .order(disclosed_persons::disclosure_id.desc())
                .limit(limit)
                .select(disclosed_persons::disclosure_id);
            disclosures::table
                .filter(disclosures::id.eq_any(ids))
                .order(disclosures::id.desc())
                .select(DisclosureRow::as_select())
                .load(conn)?
        }
    };
    Ok(rows.into_iter().map(Disclosure::from).collect())
}

/// What one actor received of one person over a period (`umkm-api pdp exposure`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    /// The person.
    pub person_id: i64,
    /// Every class of their data the actor received.
    pub classes: Vec<DataClass>,
    /// In how many entries of the log (an answer; a streamed export, one per chunk).
    pub disclosures: u64,
    /// The first of them.
    pub first_at: chrono::DateTime<chrono::Utc>,
    /// The last of them.
    pub last_at: chrono::DateTime<chrono::Utc>,
}

/// Entries read per query by [`exposure`].
const EXPOSURE_PAGE: i64 = 10_000;

/// The persons user (or API client) `user_id` received, with what of them, from `since`
/// (inclusive) to `until` (exclusive), by person id.
pub fn exposure(
    conn: &mut DbConnection,
    user_id: i64,
    since: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<Exposure>> {
    let mut by_person: std::collections::BTreeMap<i64, (i32, u64, NaiveDateTime, NaiveDateTime)> =
        std::collections::BTreeMap::new();
    let mut after = 0;
    loop {
        let rows: Vec<(i64, NaiveDateTime, i32, String)> = disclosures::table
            .filter(disclosures::user_id.eq(user_id))
            .filter(disclosures::occurred_at.ge(since))
            .filter(disclosures::occurred_at.lt(until))
            .filter(disclosures::id.gt(after))
            .order(disclosures::id)
            .limit(EXPOSURE_PAGE)
            .select((disclosures::id, disclosures::occurred_at, disclosures::classes, disclosures::persons))
            .load(conn)?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (_, at, classes, persons) in &rows {
            for person in persons.split(',').filter_map(|p| p.parse::<i64>().ok()) {
                let seen = by_person.entry(person).or_insert((0, 0, *at, *at));
                seen.0 |= classes;
                seen.1 += 1;
                seen.2 = seen.2.min(*at);
                seen.3 = seen.3.max(*at);
            }
        }
    }
    Ok(by_person
        .into_iter()
        .map(|(person_id, (classes, disclosures, first, last))| Exposure {
            person_id,
            classes: Classes(classes).named(),
            disclosures,
            first_at: first.and_utc(),
            last_at: last.and_utc(),
        })
        .collect())
}

/// Entries removed per transaction by [`prune`].
const PRUNE_BATCH: i64 = 1_000;

/// Removes the entries older than `before` (with their persons' rows on SQLite), a batch per
/// transaction; how many.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    let mut removed = 0;
    loop {
        let old: Vec<(i64, String)> = disclosures::table
            .filter(disclosures::occurred_at.lt(before))
            .order(disclosures::occurred_at)
            .limit(PRUNE_BATCH)
            .select((disclosures::id, disclosures::persons))
            .load(conn)?;
        if old.is_empty() {
            return Ok(removed);
        }
        db::write(conn, |conn| {
            if matches!(conn, DbConnection::Sqlite(_)) {
                for (id, persons) in &old {
                    // Each person's row found by its key: the rows of one person lie together.
                    let persons: Vec<i64> = persons.split(',').filter_map(|p| p.parse().ok()).collect();
                    diesel::delete(
                        disclosed_persons::table
                            .filter(disclosed_persons::disclosure_id.eq(id))
                            .filter(disclosed_persons::person_id.eq_any(persons)),
                    )
                    .execute(conn)?;
                }
            }
            let ids: Vec<i64> = old.iter().map(|(id, _)| *id).collect();
            diesel::delete(disclosures::table.filter(disclosures::id.eq_any(ids))).execute(conn)
        })?;
        removed += old.len();
    }
}

/// Starts the thread that removes, every day, the entries older than `retention_days`.
pub fn spawn_retention(pool: Pool, retention_days: u32) -> std::io::Result<()> {
    std::thread::Builder::new().name("disclosure-retention".into()).spawn(move || {
        loop {
            let before = db::now() - chrono::Duration::days(i64::from(retention_days));
            match pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut c| prune(&mut c, before).map_err(|e| e.to_string()))
            {
                Ok(0) => {}
                Ok(n) => log::info!("disclosure log: {n} entries older than {retention_days} days removed"),
                Err(err) => {
                    log::warn!("disclosure log: old entries not removed, the next run retries: {err}")
                }
            }
            std::thread::sleep(std::time::Duration::from_secs(24 * 3600));
        }
    })?;
    Ok(())
}

/// How often [`spawn_upkeep`] empties the persons index's pending list.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts, on PostgreSQL, the thread that moves the persons index's pending list into the index
/// every [`UPKEEP_EVERY`] (`gin_clean_pending_list`). A GIN index takes new entries into a
/// pending list and merges it when it outgrows `gin_pending_list_limit` (4 MB), in whichever
/// transaction crosses the limit: the log's writer, so every answer waiting for that batch
/// waited for the merge too (issue 32: the batch's INSERT 0.23 ms on average, 49-106 ms at
/// most). Merged here, away from the answers: 0.15 ms on average, 5.3 ms at most, the merge
/// about 10 ms a second of the database's time while entries are written, nothing otherwise.
pub fn spawn_upkeep(pool: Pool) -> std::io::Result<()> {
    if pool.backend() != db::Backend::Postgres {
        return Ok(()); // SQLite keeps `disclosed_persons` rows instead: nothing to do
    }
    std::thread::Builder::new().name("disclosure-index".into()).spawn(move || {
        let mut failing = false;
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            let merged = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                diesel::sql_query("SELECT gin_clean_pending_list('disclosures_persons'::regclass)")
                    .execute(&mut conn)
                    .map_err(|e| e.to_string())
            });
            match merged {
                Ok(_) => failing = false,
                // Said once per outage, not every second.
                Err(err) if !failing => {
                    failing = true;
                    log::warn!("disclosure log: the persons index's pending list was not merged: {err}");
                }
                Err(_) => {}
            }
        }
    })?;
    Ok(())
}
