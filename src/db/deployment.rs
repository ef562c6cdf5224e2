//! Which deployment a database is: a random id made at its first start and made again by a
//! restore. Tokens name it (`iss` and `aud`), so that a token issued by one deployment is
//! refused by another that shares its `JWT_SECRET` (a staging copy) and by the same database
//! after a restore, whose user ids may name other people.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::deployment;

/// The deployment's id, made now if the database has none yet. Two instances starting at once
/// agree: the second insert does nothing and both read the first.
pub fn current(conn: &mut DbConnection) -> QueryResult<String> {
    use diesel::sql_types::{Text, Timestamp};
    let made = diesel::sql_query(
        "INSERT INTO deployment (singleton, id, started_at) VALUES (1, $1, $2) ON CONFLICT (singleton) DO NOTHING",
    )
    .bind::<Text, _>(new_id())
    .bind::<Timestamp, _>(super::now())
    .execute(conn)?;
    if made > 0 {
        log::info!("a new deployment of this database");
    }
    deployment::table.select(deployment::id).first(conn)
}

/// Gives the database a new deployment id (after a restore): every token issued before stops
/// working.
pub fn renew(conn: &mut DbConnection) -> QueryResult<String> {
    conn.transaction(|conn| {
        diesel::delete(deployment::table).execute(conn)?;
        current(conn)
    })
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
