//! The database: one connection type over PostgreSQL and SQLite, its pool and the embedded migrations.

pub mod deployment;
pub mod replicas;
pub mod schema;
pub mod text;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, R2D2Connection};
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

/// The connection pool shared by all workers.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<Manager>,
    /// PostgreSQL only: connections that plan prepared statements once, for the list pages
    /// whose every plan is an index range ([`Pool::generic_plans`]).
    generic: Option<r2d2::Pool<Manager>>,
    /// Shared with the manager: its last attempt to connect failed.
    down: Arc<AtomicBool>,
    /// Set once, by the instance's metrics.
    observer: Arc<std::sync::OnceLock<CheckoutObserver>>,
    /// PostgreSQL read replicas (`DATABASE_READ_URLS`), for the reads that tolerate lag.
    replicas: Option<Arc<replicas::Replicas>>,
}

/// Connections of a [`Pool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Open.
    pub connections: u32,
    /// Open and not checked out.
    pub idle_connections: u32,
}

/// Called after every checkout with the time it took and whether it gave up (the metrics'
/// hook; the pool knows nothing of how it is recorded).
pub type CheckoutObserver = Box<dyn Fn(Duration, bool) + Send + Sync>;

impl Pool {
    /// A connection, waiting up to [`CHECKOUT_TIMEOUT`] for one to be free, or only
    /// [`CHECKOUT_TIMEOUT_WHILE_DOWN`] while the database is known to be down.
    pub fn get(&self) -> Result<Conn, r2d2::PoolError> {
        let wait =
            if self.down.load(Ordering::Relaxed) { CHECKOUT_TIMEOUT_WHILE_DOWN } else { CHECKOUT_TIMEOUT };
        match self.observer.get() {
            None => self.inner.get_timeout(wait),
            Some(observe) => {
                let started = std::time::Instant::now();
                let conn = self.inner.get_timeout(wait);
                observe(started.elapsed(), conn.is_err());
                conn
            }
        }
    }

    /// A connection within `wait`, for the replica checks: they must not wait a request's time.
    pub(crate) fn get_within(&self, wait: Duration) -> Result<Conn, r2d2::PoolError> {
        self.inner.get_timeout(wait)
    }

    /// Has `observer` called after every checkout from now on; a second observer is refused
    /// (returned), the first stays.
    pub fn observe_checkouts(&self, observer: CheckoutObserver) -> Result<(), CheckoutObserver> {
        self.observer.set(observer)
    }

    /// Connections open and idle now, of both pools on PostgreSQL.
    pub fn state(&self) -> PoolState {
        self.pools().map(r2d2::Pool::state).fold(PoolState::default(), |sum, s| PoolState {
            connections: sum.connections + s.connections,
            idle_connections: sum.idle_connections + s.idle_connections,
        })
    }

    /// The most connections the pool opens, both pools on PostgreSQL.
    pub fn max_size(&self) -> u32 {
        self.pools().map(r2d2::Pool::max_size).sum()
    }

    fn pools(&self) -> impl Iterator<Item = &r2d2::Pool<Manager>> {
        std::iter::once(&self.inner).chain(&self.generic)
    }

    /// This pool with read replicas at `urls` (`size` connections each, out of rotation when
    /// they lag more than `max_lag`); see [`replicas`].
    pub fn with_replicas(
        mut self,
        urls: &[String],
        size: u32,
        max_lag: Duration,
    ) -> crate::error::AppResult<Pool> {
        if !urls.is_empty() {
            self.replicas = Some(replicas::Replicas::start(&self, urls, size, max_lag)?);
        }
        Ok(self)
    }

    /// The read replicas, when there are any.
    pub fn replicas(&self) -> Option<&replicas::Replicas> {
        self.replicas.as_deref()
    }

    /// Whether [`Pool::generic_plans`] is a pool of its own (PostgreSQL).
    pub fn has_generic_plans(&self) -> bool {
        self.generic.is_some()
    }

    /// The pool for queries whose generic plan is as good as any custom one, whatever the
    /// values: on PostgreSQL, connections with `plan_cache_mode = force_generic_plan`, so a
    /// prepared statement is planned once instead of at every execution (a list page's query
    /// is otherwise planned anew each time: with `LIMIT $n` unknown its generic plan looks
    /// dear to the planner). Only for queries proven index-exact (see
    /// `BusinessFilter::index_exact`): a generic plan cannot see a value, so for a search or
    /// a range it may scan a whole table. SQLite has no plan cache: the pool itself.
    pub fn generic_plans(&self) -> Pool {
        match &self.generic {
            Some(generic) => Pool { inner: generic.clone(), generic: None, ..self.clone() },
            None => self.clone(),
        }
    }
}
/// A connection checked out of the pool.
pub type Conn = r2d2::PooledConnection<Manager>;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a request waits for a free connection before it is answered 503.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait instead while the last attempt to connect failed: with the database down, a request
/// is answered 503 at once rather than after the full wait (the pool keeps trying to connect).
pub const CHECKOUT_TIMEOUT_WHILE_DOWN: Duration = Duration::from_millis(250);

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

/// Opens connections of the back end its URL names. Unlike the derived
/// `MultiConnection::establish`, which tries each back end in turn, this never opens an SQLite
/// file named after an unreachable PostgreSQL URL, and it keeps the real connection error.
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
    /// The last attempt to connect failed.
    down: Arc<AtomicBool>,
    /// PostgreSQL: its connections use generic plans for prepared statements.
    generic_plans: bool,
}

impl Manager {
    /// A manager for `url` (`postgres://…`, or an SQLite path with an optional `sqlite://`).
    pub fn new(url: &str) -> Self {
        let backend = Backend::of_url(url);
        let url = match backend {
            Backend::Postgres => url.to_owned(),
            Backend::Sqlite => url.strip_prefix("sqlite://").unwrap_or(url).to_owned(),
        };
        Manager { url, backend, down: Arc::new(AtomicBool::new(false)), generic_plans: false }
    }

    fn open(&self) -> Result<DbConnection, r2d2::Error> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.url).map_err(r2d2::Error::ConnectionError)?;
                if self.generic_plans {
                    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
                        .map_err(r2d2::Error::QueryError)?;
                }
                Ok(DbConnection::Pg(conn))
            }
            Backend::Sqlite => {
                let mut conn =
                    SqliteConnection::establish(&self.url).map_err(r2d2::Error::ConnectionError)?;
                // Foreign keys enforced, WAL journal for concurrent readers, and a busy timeout
                // instead of an immediate "database is locked". No memory map (`mmap_size`): with
                // it, every checkpoint that grows the file remapped it (perf: unmapping, TLB
                // shoot-downs and page faults), creates lost 10 % and reads, which touch one
                // table since the businesses copy their owners, gained nothing measurable.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                text::sqlite_lower(&mut conn).map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        let opened = self.open();
        self.down.store(opened.is_err(), Ordering::Relaxed);
        opened
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Builds a pool for `url`. Connections are opened lazily: a database that is down at start-up
/// makes requests answer 503 until it is back, rather than keeping the server from starting.
pub fn pool(url: &str, size: u32) -> Result<Pool, r2d2::PoolError> {
    let manager = Manager::new(url);
    if manager.backend == Backend::Sqlite {
        // A file that cannot be made shows up as a clear connection error later.
        if let Err(e) = private_sqlite_files(Path::new(&manager.url)) {
            log::warn!("the database's files could not be made readable by their owner only: {e}");
        }
    }
    let down = manager.down.clone();
    let builder = || {
        r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .test_on_check_out(false)
    };
    let generic = match manager.backend {
        Backend::Postgres => Some(builder().build(Manager {
            url: manager.url.clone(),
            backend: Backend::Postgres,
            down: down.clone(),
            generic_plans: true,
        })?),
        Backend::Sqlite => None,
    };
    let inner = builder().build(manager)?;
    Ok(Pool { inner, generic, down, observer: Arc::default(), replicas: None })
}

/// The embedded database holds identity numbers, webhook secrets and password hashes: its
/// directory is made readable by the owner only (0700), and the database is created 0600
/// before SQLite opens it, so that its WAL and shared-memory files, which SQLite creates with
/// the database's permissions, are 0600 too. Files that exist already are narrowed to 0600;
/// a directory that exists is left as it is (it may be shared on purpose).
fn private_sqlite_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty()
        || path.to_str().is_some_and(|p| p.starts_with(':') || p.starts_with("file:"))
    {
        return Ok(()); // in memory, or a URI that names its own mode
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
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

/// Runs `f` with a pooled connection on the blocking thread pool: both the checkout and the
/// queries block, so neither may run on an async worker.
pub async fn run<T, F>(pool: &Pool, f: F) -> crate::error::AppResult<T>
where
    F: FnOnce(&mut DbConnection) -> crate::error::AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
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
