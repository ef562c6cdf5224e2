//! The test harness: every test gets the real application on a real port, over its own fresh
//! database — a temporary SQLite file, or with `TEST_DATABASE_URL` set, its own PostgreSQL
//! database copied from a migrated template — so the same tests run on both back ends, in
//! parallel.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use actix_web::http::{Method, StatusCode, header::HeaderMap};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::{Value, json};
use umkm_api::app::app;
use umkm_api::config::{Config, Secret};
use umkm_api::crypto::keyring::Keyring;
use umkm_api::db::{self, DbConnection, Pool};
use umkm_api::domain::role::Role;
use umkm_api::persons;
use umkm_api::state::AppState;
use umkm_api::users::{self, NewUser};

/// The secret tests sign with; a token signed with anything else must be refused.
pub const TEST_SECRET: &[u8] = b"test-secret-that-is-at-least-32-bytes-long";
/// The body limit of the test server (room for a 1,000-row import, small enough to exceed cheaply).
pub const TEST_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// The data keys of every test database (fixed, so that a PostgreSQL template built by an
/// earlier run still opens): test data only, never a deployment's.
pub const TEST_DATA_KEYS: &str = "encryption 1 G3NfyHjNZid7iBC7hF33PJbAMMsJVPGdemdU7/Ft4P4= active\nindex 1 awY7BaePo7geIPv51Iq2V6f2rK11DGyLeFXQNPwR5Jg= active\n";
/// A password good enough for test users.
pub const PASSWORD: &str = "correct horse battery staple";

/// Statements run, by the URL their connection was opened with. Every connection of the test
/// process counts into it (a diesel instrumentation installed once), so a test can count the
/// statements a request costs on its own database.
static STATEMENTS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

/// The text of the last statement whose SQL starts with one of these prefixes, by the URL its
/// connection was opened with (with its binds as diesel shows them); see [`TestApp::last_sql`].
static WATCHED: Mutex<Vec<(String, String, String)>> = Mutex::new(Vec::new());

struct StatementCounter {
    url: Option<String>,
}

impl diesel::connection::Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent;
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => self.url = Some(url.to_owned()),
            InstrumentationEvent::StartQuery { query, .. } => {
                if let Some(url) = &self.url {
                    let mut counts = STATEMENTS.lock().unwrap();
                    *counts.get_or_insert_with(HashMap::new).entry(url.clone()).or_default() += 1;
                    drop(counts);
                    let mut watched = WATCHED.lock().unwrap();
                    if watched.iter().any(|(u, _, _)| u == url) {
                        let text = query.to_string();
                        for (u, prefix, last) in watched.iter_mut() {
                            if u == url && text.starts_with(prefix.as_str()) {
                                *last = text.clone();
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn count_statements() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        diesel::connection::set_default_instrumentation(|| Some(Box::new(StatementCounter { url: None })))
            .expect("the statement counter is installed");
    });
}

/// A running application and its database.
pub struct TestApp {
    pub server: actix_test::TestServer,
    pub pool: Pool,
    /// The database URL the application's connections use.
    pub database_url: String,
    /// The instance's metrics (served on their own listener, see [`TestApp::scrape`]).
    pub metrics: std::sync::Arc<umkm_api::metrics::Metrics>,
    // Dropped last: removes the database (`None` on a second instance of the same database).
    _db: Option<TestDb>,
}

/// Every test ends with the statistics' summaries checked against the data its requests left:
/// each API write keeps them, so any test that writes through the API is also a test of that.
impl Drop for TestApp {
    fn drop(&mut self) {
        if self._db.is_none() || std::thread::panicking() {
            return;
        }
        let Ok(mut conn) = self.pool.get() else { return };
        let differences = umkm_api::summary::verify(&mut conn).expect("the summaries can be verified");
        assert!(differences.is_empty(), "the statistics' summaries disagree with the data: {differences:#?}");
    }
}

enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self
            && let Ok(mut conn) = PgConnection::establish(admin_url)
        {
            let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = diesel::sql_query(drop).execute(&mut conn);
        }
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// Asserts an RFC 9457 problem answer with `status`, and returns its body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type").as_deref(), Some("application/problem+json"));
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(body["type"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        body
    }
}

/// A request being built.
pub struct Call<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    from: Option<std::net::IpAddr>,
}

impl Call<'_> {
    /// Adds `Authorization: Bearer <token>`.
    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body.
    pub fn json(self, body: &Value) -> Self {
        self.raw("application/json", serde_json::to_vec(body).unwrap())
    }

    /// A body of any type.
    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers.push(("content-type".to_owned(), content_type.to_owned()));
        self.body = Some(body.into());
        self
    }

    /// Sends the request and reads the whole answer.
    /// Sends from another loopback address (127.0.0.2 …), as another client machine would
    /// (Linux answers on all of 127.0.0.0/8).
    pub fn from(mut self, source: std::net::IpAddr) -> Self {
        self.from = Some(source);
        self
    }

    /// Sends the request and reads the whole answer.
    pub async fn send(self) -> Reply {
        let url = self.app.server.url(&self.path);
        let mut request = match self.from {
            None => self.app.server.request(self.method, url),
            Some(source) => awc::Client::builder()
                .connector(awc::Connector::new().local_address(source))
                .finish()
                .request(self.method, url),
        };
        for (name, value) in &self.headers {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        let mut response = match self.body {
            Some(body) => request.send_body(body).await,
            None => request.send().await,
        }
        .expect("the server answers");
        let body = response.body().limit(64 * 1024 * 1024).await.expect("a readable body").to_vec();
        Reply { status: response.status(), headers: response.headers().clone(), body }
    }
}

impl TestApp {
    /// A request to `path`.
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call { app: self, method, path: path.to_owned(), headers: Vec::new(), body: None, from: None }
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Call<'_> {
        self.call(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(Method::DELETE, path)
    }

    /// Runs `f` on a database connection (for setting up and checking what was written).
    pub fn db<T>(&self, f: impl FnOnce(&mut DbConnection) -> T) -> T {
        let mut conn = self.pool.get().expect("a database connection");
        f(&mut conn)
    }

    /// Creates a user directly in the database (with a real argon2 hash); returns its id.
    pub fn create_user(&self, email: &str, role: Role, partner: Option<i64>) -> i64 {
        let new = NewUser {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            role,
            bank_partner_id: partner.filter(|_| role == Role::Bank),
            retail_partner_id: partner.filter(|_| role == Role::Retail),
            disabled: false,
        };
        self.db(|conn| users::create(conn, None, new)).expect("the user is created").id
    }

    /// Logs in through the API and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .post("/api/v1/auth/token")
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
        reply.json()["access_token"].as_str().expect("a token").to_owned()
    }

    /// Creates a user of `role` and returns a token for it.
    pub async fn token_for(&self, role: Role) -> String {
        let partner = match role {
            Role::Bank | Role::Retail => Some(1),
            _ => None,
        };
        let email = format!("{role}-{}@test.example", uuid::Uuid::new_v4().simple());
        self.create_user(&email, role, partner);
        self.login(&email, PASSWORD).await
    }
}

/// [`TEST_DATA_KEYS`].
pub fn test_keys() -> Keyring {
    Keyring::parse(TEST_DATA_KEYS).expect("the test data keys parse")
}

/// A key file holding [`TEST_DATA_KEYS`], written once per test process.
pub fn test_key_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let path = dir.join("data_keys");
        test_keys().write_new(&path).expect("the test key file is written");
        path
    })
    .clone()
}

/// [`migrate`] as a restore takes it.
pub fn migrate_with_test_keys(conn: &mut DbConnection) -> Result<usize, String> {
    persons::migrate(conn, &test_keys())
}

/// Applies the pending migrations as `umkm-api` does, with the test data keys.
pub fn migrate(conn: &mut DbConnection) -> usize {
    persons::migrate(conn, &test_keys()).expect("migrations apply")
}

fn test_config(database_url: String) -> Config {
    Config {
        database_url,
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        jwt_secret: Secret::new(TEST_SECRET.to_vec()),
        access_token_ttl: Duration::from_secs(3600),
        db_pool_size: 4,
        cors_allowed_origins: vec!["https://app.example.test".to_owned()],
        max_body_bytes: TEST_BODY_LIMIT,
        // Metrics recorded (the tests scrape them through `TestApp::scrape`, not this address).
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        webhook_allow_private_targets: true,
        database_read_urls: Vec::new(),
        replica_max_lag: Duration::from_secs(5),
        trusted_proxies: Vec::new(),
        disclosure_retention_days: 1826,
        service_area: vec!["35.24".to_owned()],
        dpo: Default::default(),
        data_key_file: test_key_file(),
        create_data_key_file: false,
    }
}

/// Starts the application on a fresh database of the back end under test.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with changes to the test configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let (url, test_db) = match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(admin_url) => {
            let name = fresh_pg_database(&admin_url);
            (replace_database(&admin_url, &name), TestDb::Postgres { admin_url, name })
        }
        None => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join("umkm.db");
            std::fs::copy(sqlite_template(), &path).expect("the template database copied");
            (path.to_string_lossy().into_owned(), TestDb::Sqlite(dir))
        }
    };
    count_statements();
    let pool = db::pool(&url, 4).expect("a pool");
    {
        let mut conn = pool.get().expect("a connection to the test database");
        migrate(&mut conn);
    }
    let mut config = test_config(url.clone());
    configure(&mut config);
    // As `umkm-api` does at each start, after migrating.
    umkm_api::regions::tree::serve(&mut pool.get().unwrap(), &config.service_area).expect("the service area");
    let pool = pool
        .with_replicas(&config.database_read_urls, config.db_pool_size, config.replica_max_lag)
        .expect("read replicas");
    let state = AppState::new(config, pool.clone()).expect("application state");
    let metrics = state.metrics.clone();
    let server = actix_test::start(move || app(state.clone()));
    TestApp { server, pool, database_url: url, metrics, _db: Some(test_db) }
}

impl TestApp {
    /// A second instance of the application on the same database, as another server behind a
    /// load balancer would be: its own pool and its own caches. Drop it before `self`.
    pub fn another_instance(&self) -> TestApp {
        let pool = db::pool(&self.database_url, 4).expect("a pool");
        let state =
            AppState::new(test_config(self.database_url.clone()), pool.clone()).expect("application state");
        let metrics = state.metrics.clone();
        let server = actix_test::start(move || app(state.clone()));
        TestApp { server, pool, database_url: self.database_url.clone(), metrics, _db: None }
    }
}

/// An empty database of the back end under test, nothing applied to it (an SQLite path whose
/// file does not exist yet, in a directory that does not either). Removed when dropped.
pub struct EmptyDb {
    pub url: String,
    _db: TestDb,
}

pub fn empty_database() -> EmptyDb {
    match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(admin_url) => {
            let name = format!("umkm_t_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::establish(&admin_url).expect("TEST_DATABASE_URL reachable");
            diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).unwrap();
            EmptyDb { url: replace_database(&admin_url, &name), _db: TestDb::Postgres { admin_url, name } }
        }
        None => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = dir.path().join("data").join("umkm.db").to_string_lossy().into_owned();
            EmptyDb { url, _db: TestDb::Sqlite(dir) }
        }
    }
}

impl TestApp {
    /// The application serving an existing database, as `umkm-api serve` would (pending
    /// migrations applied first). Drop it before whatever owns the database.
    pub fn serve(database_url: &str) -> TestApp {
        let pool = db::pool(database_url, 4).expect("a pool");
        migrate(&mut pool.get().expect("a connection"));
        let config = test_config(database_url.to_owned());
        umkm_api::regions::tree::serve(&mut pool.get().unwrap(), &config.service_area)
            .expect("the service area");
        let state = AppState::new(config, pool.clone()).expect("application state");
        let metrics = state.metrics.clone();
        let server = actix_test::start(move || app(state.clone()));
        TestApp { server, pool, database_url: database_url.to_owned(), metrics, _db: None }
    }
}

/// The same URL with another database name.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rsplit_once('/') {
        Some((server, _)) if server.contains("://") && server.len() > server.find("://").unwrap() + 3 => {
            server
        }
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A digest of the PostgreSQL migrations, naming the template they build.
fn migrations_digest() -> u64 {
    fn visit(dir: &Path, hasher: &mut DefaultHasher) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                visit(&path, hasher);
            } else {
                path.file_name().hash(hasher);
                std::fs::read(&path).unwrap().hash(hasher);
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The regions are loaded by the program after the migrations, from these files.
    for dir in ["migrations/postgres", "migrations/sqlite", "reference/regions"] {
        visit(&root.join(dir), &mut hasher);
    }
    hasher.finish()
}

/// A migrated SQLite database to copy (made once per migration set on this machine, as the
/// PostgreSQL template is): migrating anew, with the regions' 90,000 rows, took each test most
/// of a second.
fn sqlite_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let template =
            std::env::temp_dir().join(format!("umkm-test-template-{:016x}.db", migrations_digest()));
        if !template.exists() {
            // Built under a name of its own and renamed whole: other test processes may race.
            let building = template.with_extension(format!("{}.building", std::process::id()));
            {
                let pool = db::pool(&building.to_string_lossy(), 1).unwrap();
                let mut conn = pool.get().unwrap();
                migrate(&mut conn);
                diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).unwrap();
            }
            std::fs::rename(&building, &template).unwrap();
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", building.display()));
            }
        }
        template
    })
}

/// Makes (once per migration set, under an advisory lock) a migrated template database, and
/// returns the name of a new database copied from it.
fn fresh_pg_database(admin_url: &str) -> String {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let template = format!("umkm_tpl_{:016x}", migrations_digest());
        let mut admin = PgConnection::establish(admin_url).expect("TEST_DATABASE_URL reachable");
        diesel::sql_query("SELECT pg_advisory_lock(72417)").execute(&mut admin).unwrap();
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let found: Found =
            diesel::sql_query(format!("SELECT count(*) AS n FROM pg_database WHERE datname = '{template}'"))
                .get_result(&mut admin)
                .unwrap();
        if found.n == 0 {
            let building = format!("{template}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
                .execute(&mut admin)
                .unwrap();
            diesel::sql_query(format!("CREATE DATABASE \"{building}\"")).execute(&mut admin).unwrap();
            {
                let pool = db::pool(&replace_database(admin_url, &building), 1).unwrap();
                let mut conn = pool.get().unwrap();
                migrate(&mut conn);
            }
            diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""))
                .execute(&mut admin)
                .unwrap();
        }
        diesel::sql_query("SELECT pg_advisory_unlock(72417)").execute(&mut admin).unwrap();
        template
    });
    let name = format!("umkm_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(admin_url).expect("TEST_DATABASE_URL reachable");
    // Copies of one template may be made concurrently, but not while anyone is connected to it;
    // retry briefly if another test's copy is just finishing.
    let mut attempts = 0;
    loop {
        match diesel::sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
            .execute(&mut admin)
        {
            Ok(_) => return name,
            Err(err) if attempts < 50 => {
                attempts += 1;
                let _ = err;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(err) => panic!("cannot create a test database: {err}"),
        }
    }
}

/// A valid business, distinct for each `n` (NIK serial, NIB, name).
pub fn business_json(n: usize) -> Value {
    serde_json::json!({
        "name": format!("Usaha {n:05}"),
        "owner_name": format!("Pemilik {n}"),
        "owner_nik": format!("352405120390{:04}", n % 9999 + 1),
        "phone": format!("0812{:07}", n),
        "email": format!("owner{n}@example.com"),
        "nib": format!("9120{:09}", n),
        "kbli": "10750",
        "district_code": "35.24.14",
        "address": "Jl. Raya Paciran",
        "annual_revenue_idr": 300_000_000,
        "capital_idr": 50_000_000,
        "employees": 4,
        "established_on": "2018-05-01",
    })
}

impl TestApp {
    /// Creates a business through the API as `token`; returns its JSON.
    pub async fn create_business(&self, token: &str, body: &Value) -> Value {
        let reply = self.post("/api/v1/businesses").token(token).json(body).send().await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));
        reply.json()
    }

    /// Statements run so far on this test's database, by every connection.
    /// From now on, keeps the last statement of this database whose SQL starts with `prefix`.
    pub fn watch_sql(&self, prefix: &str) {
        WATCHED.lock().unwrap().push((self.database_url.clone(), prefix.to_owned(), String::new()));
    }

    /// The last statement watched with `prefix` ([`TestApp::watch_sql`]): its SQL and, after
    /// ` -- binds: `, its values.
    pub fn last_sql(&self, prefix: &str) -> String {
        let watched = WATCHED.lock().unwrap();
        let found = watched.iter().find(|(u, p, _)| *u == self.database_url && p == prefix);
        found.map(|(_, _, last)| last.clone()).unwrap_or_default()
    }

    pub fn statements(&self) -> usize {
        STATEMENTS.lock().unwrap().as_ref().and_then(|c| c.get(&self.database_url).copied()).unwrap_or(0)
    }

    /// Scrapes the instance's metrics listener (`METRICS_ADDR` in production): the exposition.
    pub async fn scrape(&self) -> String {
        let (metrics, pool) = (self.metrics.clone(), self.pool.clone());
        let exporter = actix_test::start(move || {
            umkm_api::metrics::exporter(actix_web::web::Data::from(metrics.clone()), pool.clone())
        });
        let mut reply = exporter.get("/metrics").send().await.expect("the metrics listener answers");
        assert_eq!(reply.status(), StatusCode::OK);
        let content_type =
            reply.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
        String::from_utf8(reply.body().limit(16 * 1024 * 1024).await.unwrap().to_vec()).unwrap()
    }

    /// `GET path` on the instance's operators' listener (`METRICS_ADDR` in production).
    pub async fn operator(&self, path: &str) -> Reply {
        let (metrics, pool) = (self.metrics.clone(), self.pool.clone());
        let exporter = actix_test::start(move || {
            umkm_api::metrics::exporter(actix_web::web::Data::from(metrics.clone()), pool.clone())
        });
        let mut reply = exporter.get(path).send().await.expect("the operators' listener answers");
        let body = reply.body().limit(16 * 1024 * 1024).await.unwrap().to_vec();
        Reply { status: reply.status(), headers: reply.headers().clone(), body }
    }

    /// The `iss` (and `aud`) of the tokens this deployment issues.
    pub fn issuer(&self) -> String {
        use umkm_api::db::schema::deployment;
        let id: String = self.db(|c| deployment::table.select(deployment::id).first(c)).unwrap();
        format!("urn:umkm-api:deployment:{id}")
    }

    /// Asserts that every business's copy of its owner's fields is the person's row
    /// (`crate::persons::OwnerRow`), ciphertexts included.
    pub fn assert_owner_copies(&self) {
        let stale = self.count(
            "businesses b JOIN persons p ON p.id = b.owner_id WHERE b.person_name <> p.name \
             OR b.person_nik <> p.nik OR b.person_phone <> p.phone \
             OR COALESCE(b.person_email, '') <> COALESCE(p.email, '')",
        );
        assert_eq!(stale, 0, "businesses whose owner copy is not their person's");
    }

    /// Counts the rows of a table.
    pub fn count(&self, table: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        self.db(|c| diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result::<N>(c))
            .unwrap()
            .n
    }
}

/// A bank user of `bank`, logged in.
pub async fn bank_token(app: &TestApp, bank: i64) -> String {
    let email = format!("analis{bank}@bank.example");
    app.create_user(&email, Role::Bank, Some(bank));
    app.login(&email, PASSWORD).await
}

/// A new business (`business_json(n)`) whose owner consents to sharing with every partner
/// bank; its id.
pub async fn consenting_business(app: &TestApp, officer: &str, n: usize) -> i64 {
    let id = app.create_business(officer, &business_json(n)).await["id"].as_i64().unwrap();
    consent_for(app, officer, id, None).await;
    id
}

/// The owner (a person) of business `business`.
pub async fn owner_of(app: &TestApp, officer: &str, business: i64) -> i64 {
    let reply = app.get(&format!("/api/v1/businesses/{business}")).token(officer).send().await;
    assert_eq!(reply.status, 200);
    reply.json()["owner_id"].as_i64().unwrap()
}

/// Records, as `officer`, the consent of business `business`'s owner to share their data with
/// `bank` (`None`: every partner bank), given 2026-01-01; the consent's JSON. An active one for
/// the same recipient is kept: that one's JSON.
pub async fn consent_for(app: &TestApp, officer: &str, business: i64, bank: Option<i64>) -> Value {
    let person = owner_of(app, officer, business).await;
    let body = json!({"bank_partner_id": bank, "channel": "paper_form", "evidence": format!("FORM/{business}"),
        "text_version": "v1", "given_at": "2026-01-01T00:00:00Z"});
    let reply =
        app.post(&format!("/api/v1/persons/{person}/consents")).token(officer).json(&body).send().await;
    if reply.status == 409 {
        let all = app.get(&format!("/api/v1/persons/{person}/consents")).token(officer).send().await.json();
        return all["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["active"] == json!(true) && c["bank_partner_id"] == json!(bank))
            .cloned()
            .unwrap();
    }
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

/// Withdraws, as `officer`, every consent in force of business `business`'s owner; how many.
pub async fn withdraw_consents(app: &TestApp, officer: &str, business: i64) -> usize {
    let person = owner_of(app, officer, business).await;
    let all = app.get(&format!("/api/v1/persons/{person}/consents")).token(officer).send().await.json();
    let mut withdrawn = 0;
    for consent in all["data"].as_array().unwrap().iter().filter(|c| c["active"] == json!(true)) {
        let path = format!("/api/v1/persons/{person}/consents/{}/withdrawal", consent["id"]);
        let reply = app.post(&path).token(officer).json(&json!({"channel": "letter"})).send().await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        withdrawn += 1;
    }
    withdrawn
}

/// Files an application as `officer`; its JSON.
pub async fn apply(app: &TestApp, officer: &str, business: i64, programme: i64, amount: i64) -> Value {
    let reply = app
        .post("/api/v1/applications")
        .token(officer)
        .json(&json!({"business_id": business, "programme_id": programme, "amount_requested_idr": amount, "purpose": "modal kerja"}))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

/// A product of business `business`, submitted to retail partner `partner`'s curation (that
/// partner's users then see the business); its id.
pub async fn curated_product(app: &TestApp, officer: &str, business: i64, partner: i64) -> i64 {
    let reply = app
        .post("/api/v1/products")
        .token(officer)
        .json(&json!({"business_id": business, "name": "Kerupuk Ikan", "category": "food"}))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let product = reply.json()["id"].as_i64().unwrap();
    crate::retail::submit(app, officer, product, partner).await;
    product
}
