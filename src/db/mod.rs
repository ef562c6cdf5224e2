//! The database: one connection type over PostgreSQL and SQLite, its pool and the embedded migrations.

pub mod deployment;
mod pool;
pub mod replicas;
pub mod schema;
pub mod text;

pub use pool::{
    CHECKOUT_TIMEOUT, CHECKOUT_TIMEOUT_WHILE_DOWN, Checkout, CheckoutObserver, Conn, Manager, Pool,
    PoolState, Turn, pool,
};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// A connection to either back end; every query in the crate is written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// Production: PostgreSQL 15 or newer.
    Pg(PgConnection),
    /// The embedded default: a local SQLite file.
    Sqlite(SqliteConnection),
}

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Which back end a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// Anything else: a file path, optionally behind `sqlite://`.
    Sqlite,
}

impl Backend {
    /// The back end a URL selects.
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Error type of migration runs.
pub type MigrationError = Box<dyn std::error::Error + Send + Sync>;

/// Applies the pending migrations of the connection's back end; returns how many ran.
pub fn run_migrations(conn: &mut DbConnection) -> Result<usize, MigrationError> {
    let applied = match conn {
        DbConnection::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS)?.len(),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS)?.len(),
    };
    Ok(applied)
}

/// Applies the pending migrations up to and including version `last` (e.g. `20261129000007`);
/// returns how many ran. For building a database as an older release left it (upgrade tests).
pub fn run_migrations_through(conn: &mut DbConnection, last: &str) -> Result<usize, MigrationError> {
    fn through<C, B>(c: &mut C, source: EmbeddedMigrations, last: &str) -> Result<usize, MigrationError>
    where
        B: diesel::backend::Backend,
        C: MigrationHarness<B>,
        EmbeddedMigrations: diesel::migration::MigrationSource<B>,
    {
        use diesel::migration::MigrationSource;
        let applied: Vec<String> = c.applied_migrations()?.iter().map(ToString::to_string).collect();
        let mut ran = 0;
        for migration in source.migrations()? {
            let version = migration.name().version().to_string();
            if version.as_str() <= last && !applied.contains(&version) {
                c.run_migration(&migration)?;
                ran += 1;
            }
        }
        Ok(ran)
    }
    match conn {
        DbConnection::Pg(c) => through(c, PG_MIGRATIONS, last),
        DbConnection::Sqlite(c) => through(c, SQLITE_MIGRATIONS, last),
    }
}

/// The versions of the embedded migrations of `backend`, oldest first (e.g. `20261129000001`).
pub fn migration_versions(backend: Backend) -> Vec<String> {
    use diesel::migration::MigrationSource;
    let versions = match backend {
        Backend::Postgres => MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect::<Vec<_>>()),
        Backend::Sqlite => MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect::<Vec<_>>()),
    };
    // The embedded list is compiled in; reading it cannot fail.
    let mut versions = versions.unwrap_or_default();
    versions.sort();
    versions
}

/// Whether the migration of `version` (a constant, e.g. `20261213000026`) has been applied.
pub fn migration_applied(conn: &mut DbConnection, version: &'static str) -> diesel::QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = format!("SELECT count(*) AS n FROM __diesel_schema_migrations WHERE version = '{version}'");
    let found: Found = diesel::RunQueryDsl::get_result(diesel::sql_query(query), conn)?;
    Ok(found.n > 0)
}

/// Whether every embedded migration has been applied (for `/readyz`).
pub fn migrations_current(conn: &mut DbConnection) -> Result<bool, MigrationError> {
    let pending = match conn {
        DbConnection::Pg(c) => c.has_pending_migration(PG_MIGRATIONS)?,
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS)?,
    };
    Ok(!pending)
}

/// The back end of a live connection.
pub fn backend(conn: &DbConnection) -> Backend {
    match conn {
        DbConnection::Pg(_) => Backend::Postgres,
        DbConnection::Sqlite(_) => Backend::Sqlite,
    }
}

/// On PostgreSQL, locks row `id` of `table` until the transaction ends, so that nothing can
/// insert a row referring to it meanwhile (the insert's foreign-key check waits for the lock):
/// what a delete cascades to is then what it read. On SQLite the write transaction already
/// keeps every other writer out. `table` is one of the schema's table names, never input.
pub fn lock_row(conn: &mut DbConnection, table: &'static str, id: i64) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if backend(conn) == Backend::Postgres {
        diesel::sql_query(format!("SELECT id::text FROM {table} WHERE id = $1 FOR UPDATE"))
            .bind::<diesel::sql_types::BigInt, _>(id)
            .execute(conn)?;
    }
    Ok(())
}

/// The current UTC time at the microsecond precision both back ends store, so that a value
/// written and the same value read back compare equal.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// `clause` (` FOR UPDATE`, ` FOR SHARE`) on PostgreSQL, nothing on SQLite, whose write
/// transaction already holds the whole database.
pub fn locking(conn: &DbConnection, clause: &'static str) -> &'static str {
    match conn {
        DbConnection::Pg(_) => clause,
        DbConnection::Sqlite(_) => "",
    }
}

/// Locks, on PostgreSQL, the rows of `table` whose `column` is `value`, in id order (on SQLite
/// the write transaction already holds the database), and returns their ids. `table` and
/// `column` are the caller's constants, never client text.
pub fn lock_rows_of(
    conn: &mut DbConnection,
    table: &str,
    column: &str,
    value: i64,
) -> diesel::QueryResult<Vec<i64>> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    use diesel::RunQueryDsl;
    let lock = locking(conn, " FOR UPDATE");
    let ids: Vec<Id> =
        diesel::sql_query(format!("SELECT id FROM {table} WHERE {column} = $1 ORDER BY id{lock}"))
            .bind::<diesel::sql_types::BigInt, _>(value)
            .load(conn)?;
    Ok(ids.into_iter().map(|i| i.id).collect())
}

/// Runs `f` with a pooled connection on the blocking thread pool, once the request's turn
/// came ([`Pool::turn`]): both the checkout and the queries block, so neither may run on an
/// async worker.
pub async fn run<T, F>(pool: &Pool, f: F) -> crate::error::AppResult<T>
where
    F: FnOnce(&mut DbConnection) -> crate::error::AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let turn = pool.turn().await?;
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get_in_turn(turn)?;
        let result = f(&mut conn);
        if let Err(crate::error::AppError::Unavailable(_)) = &result {
            discard(&mut conn);
        }
        result
    })
    .await?
}

/// Has the pool drop `conn` when it comes back instead of handing it out again: it may have
/// died with the server (a read outside a transaction would otherwise leave diesel's connection
/// looking healthy).
pub fn discard(conn: &mut DbConnection) {
    if let DbConnection::Pg(c) = conn {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        AnsiTransactionManager::transaction_manager_status_mut(c).set_in_error();
    }
}

/// Runs `f` in a write transaction: committed when it returns `Ok`, rolled back otherwise.
///
/// On SQLite the transaction begins `IMMEDIATE`, taking the write lock before the first read:
/// a deferred transaction that reads and then writes cannot wait for a concurrent writer (SQLite
/// answers "database is locked" at once instead of applying `busy_timeout`), so under concurrent
/// writes most requests would fail. PostgreSQL needs nothing special.
pub fn write<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    // SQLite allows one writer at a time; waiting writers poll the lock with growing sleeps
    // (busy_timeout), so under many concurrent writes some starve past the timeout (measured:
    // 16 of ~2,200 creates answered 503 after 5 s with 16 clients). Writers of this process
    // queue on a mutex instead and take the database lock in turn; busy_timeout still covers
    // other processes. With several SQLite databases in one process (the test suite), their
    // writes take turns too.
    static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let mut _turn = None;
    let begun = match conn {
        DbConnection::Sqlite(inner) => {
            let outermost = AnsiTransactionManager::transaction_manager_status_mut(inner)
                .transaction_depth()
                .ok()
                .flatten()
                .is_none();
            if outermost {
                // Only the outermost transaction queues: a nested one already holds the turn.
                _turn = Some(SQLITE_WRITER.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
                AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE").map(|_| true)
            } else {
                Ok(false)
            }
        }
        DbConnection::Pg(_) => Ok(false),
    }?;
    if !begun {
        Manager::begin_transaction(conn)?;
    }
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            // The error that ended the transaction is the one to report; a failed rollback
            // leaves the connection broken, which the pool notices on its next checkout.
            let _ = Manager::rollback_transaction(conn);
            Err(err)
        }
    }
}

/// The back end type of [`DbConnection`], for boxed queries and expressions.
pub type Db = <DbConnection as diesel::Connection>::Backend;

/// Ready to serve, or why not (`/readyz`): the database answers and every migration is applied.
pub async fn readiness(pool: &Pool) -> crate::error::AppResult<()> {
    use crate::error::AppError;
    let current =
        run(pool, |conn| migrations_current(conn).map_err(|e| AppError::Unavailable(e.to_string()))).await?;
    // The list pages' pool of generic plans (PostgreSQL) must reach the database too; a
    // connection that died with the server is dropped here, as the main pool's is above.
    if pool.has_generic_plans() {
        run(&pool.generic_plans(), |conn| Ok(conn.ping()?)).await?;
    }
    if current { Ok(()) } else { Err(AppError::Unavailable("migrations are pending".into())) }
}

/// Writes `rows` (a slice of `Insertable` rows of one table) into `table` on either back end:
/// `COPY … FROM STDIN (FORMAT binary)` on PostgreSQL, multi-row `INSERT` on SQLite (the
/// seeder's rows, the regions' tree).
macro_rules! write_rows {
    ($conn:expr, $table:path, $rows:expr) => {{
        let rows = $rows;
        match $conn {
            $crate::db::DbConnection::Pg(c) => {
                diesel::copy_from($table).from_insertable(rows).execute(c).map(|_| ())
            }
            $crate::db::DbConnection::Sqlite(c) => {
                // SQLite allows 32,766 bound values per statement; no row type has 30 columns.
                rows.chunks(1000)
                    .try_for_each(|chunk| diesel::insert_into($table).values(chunk).execute(c).map(|_| ()))
            }
        }
    }};
}
pub(crate) use write_rows;
