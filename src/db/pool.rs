//! The connection pool: r2d2's, with the requests' turns in front of it, and the manager that
//! opens connections of either back end.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, R2D2Connection};
use diesel::sqlite::SqliteConnection;

use super::{Backend, DbConnection, replicas, text};
/// The connection pool shared by all workers.
#[derive(Clone)]
pub struct Pool {
    inner: Connections,
    /// PostgreSQL only: connections that plan prepared statements once, for the list pages
    /// whose every plan is an index range ([`Pool::generic_plans`]).
    generic: Option<Connections>,
    /// Shared with the manager: its last attempt to connect failed.
    down: Arc<AtomicBool>,
    /// Set once, by the instance's metrics.
    observer: Arc<std::sync::OnceLock<CheckoutObserver>>,
    /// PostgreSQL read replicas (`DATABASE_READ_URLS`), for the reads that tolerate lag.
    pub(super) replicas: Option<Arc<replicas::Replicas>>,
    /// The database's URL, for [`Pool::of_one`].
    url: Arc<str>,
}

/// An r2d2 pool and the queue of the requests waiting for its connections.
///
/// r2d2 hands a connection returned to whichever thread asks next, not to the one that waited
/// longest: with more requests than connections, a thread woken for a connection may find it
/// taken by a newcomer and wait again, for as long as newcomers keep coming (one of the causes
/// issue 32 looked at for by id's tail at 16 connections on a pool of 10; the others are in
/// `bench/README.md`). Requests therefore take a [`Turn`] first, in the
/// order they came (tokio's semaphore is first-in first-out), at most one per connection, and
/// wait for it as tasks rather than as blocked threads; a request with a turn finds a
/// connection free.
#[derive(Clone)]
struct Connections {
    pool: r2d2::Pool<Manager>,
    turns: Arc<tokio::sync::Semaphore>,
}

impl Connections {
    fn new(pool: r2d2::Pool<Manager>) -> Connections {
        let turns = Arc::new(tokio::sync::Semaphore::new(pool.max_size() as usize));
        Connections { pool, turns }
    }
}

/// A request's turn at one of a pool's connections ([`Pool::turn`]), held until the connection
/// is back in the pool.
pub struct Turn {
    _permit: tokio::sync::OwnedSemaphorePermit,
    /// When the request began to wait.
    queued: std::time::Instant,
    /// The wait it may still spend on the connection itself.
    deadline: std::time::Instant,
}

/// A request's connection ([`Pool::get_in_turn`]): back in the pool when dropped, and only
/// then is the turn passed on, so that the next request finds it free.
pub struct Checkout {
    conn: Conn,
    _turn: Turn,
}

impl std::ops::Deref for Checkout {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
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
    ///
    /// For the server's own work and the commands; a request takes its [`Pool::turn`] first.
    pub fn get(&self) -> Result<Conn, r2d2::PoolError> {
        let started = std::time::Instant::now();
        let conn = self.inner.pool.get_timeout(self.checkout_timeout());
        self.observe(started, conn.is_err());
        conn
    }

    fn checkout_timeout(&self) -> Duration {
        if self.down.load(Ordering::Relaxed) { CHECKOUT_TIMEOUT_WHILE_DOWN } else { CHECKOUT_TIMEOUT }
    }

    fn observe(&self, started: std::time::Instant, gave_up: bool) {
        if let Some(observe) = self.observer.get() {
            observe(started.elapsed(), gave_up);
        }
    }

    /// A request's turn at a connection: requests get theirs in the order they asked, within
    /// the checkout timeout (503 past it). Then [`Pool::get_in_turn`], on a thread that may
    /// block.
    pub async fn turn(&self) -> crate::error::AppResult<Turn> {
        let queued = std::time::Instant::now();
        let wait = self.checkout_timeout();
        let permit = tokio::time::timeout(wait, self.inner.turns.clone().acquire_owned()).await;
        match permit {
            Ok(Ok(permit)) => Ok(Turn { _permit: permit, queued, deadline: queued + wait }),
            Ok(Err(closed)) => Err(crate::error::AppError::internal(closed)),
            Err(_) => {
                self.observe(queued, true);
                Err(crate::error::AppError::Unavailable("timed out waiting for a database connection".into()))
            }
        }
    }

    /// The connection of a request that has its `turn` (normally free at once; one being
    /// opened, or held by the server's own work, is waited for until the checkout timeout).
    /// The checkout's time observed runs from the request's first wait for its turn.
    pub fn get_in_turn(&self, turn: Turn) -> Result<Checkout, r2d2::PoolError> {
        let left = turn.deadline.saturating_duration_since(std::time::Instant::now());
        let conn = self.inner.pool.get_timeout(left.max(Duration::from_millis(1)));
        self.observe(turn.queued, conn.is_err());
        Ok(Checkout { conn: conn?, _turn: turn })
    }

    /// A connection within `wait`, for the replica checks: they must not wait a request's time.
    pub(crate) fn get_within(&self, wait: Duration) -> Result<Conn, r2d2::PoolError> {
        self.inner.pool.get_timeout(wait)
    }

    /// A pool of one connection of its own, beside this one, for a thread that needs one at all
    /// times (the disclosure log's writer): the pool's connections stay the requests'. Its
    /// checkouts wait as long as this pool's ([`CHECKOUT_TIMEOUT`]), while the database is
    /// unreachable too.
    pub fn of_one(&self) -> Result<Pool, r2d2::PoolError> {
        let manager = Manager { down: self.down.clone(), ..Manager::new(&self.url) };
        let one = r2d2::Pool::builder()
            .max_size(1)
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .test_on_check_out(false)
            .build(manager)?;
        Ok(Pool {
            inner: Connections::new(one),
            generic: None,
            down: self.down.clone(),
            observer: Arc::default(),
            replicas: None,
            url: self.url.clone(),
        })
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
        std::iter::once(&self.inner).chain(&self.generic).map(|c| &c.pool)
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

    /// The back end of the pool's database.
    pub fn backend(&self) -> Backend {
        Backend::of_url(&self.url)
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

/// How long a request waits for a free connection before it is answered 503.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait instead while the last attempt to connect failed: with the database down, a request
/// is answered 503 at once rather than after the full wait (the pool keeps trying to connect).
pub const CHECKOUT_TIMEOUT_WHILE_DOWN: Duration = Duration::from_millis(250);

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
        Backend::Postgres => Some(Connections::new(builder().build(Manager {
            url: manager.url.clone(),
            backend: Backend::Postgres,
            down: down.clone(),
            generic_plans: true,
        })?)),
        Backend::Sqlite => None,
    };
    let inner = Connections::new(builder().build(manager)?);
    Ok(Pool { inner, generic, down, observer: Arc::default(), replicas: None, url: url.into() })
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
