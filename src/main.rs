//! The `umkm-api` command: serve the API, migrate, print the OpenAPI document, manage users.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use umkm_api::app::app;
use umkm_api::backup::{self as backups, Manifest, Progress, Unit};
use umkm_api::config::Config;
use umkm_api::crypto::keyring::Keyring;
use umkm_api::domain::role::Role;
use umkm_api::error::AppError;
use umkm_api::state::AppState;
use umkm_api::users::{self, NewUser};
use umkm_api::{config, db, openapi, persons};

/// mimalloc instead of glibc's malloc: a page of 50 businesses allocates and frees thousands of
/// small strings, and glibc's arenas spent a tenth of the server's time in them (`perf record`
/// under wrk: `malloc_consolidate`, `_int_malloc`, `_int_free`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "JSON REST backend for UMKM data", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Load data: the article's demo dataset, or a generated one at the reference scale.
    Seed(SeedArgs),
    /// Take an online backup of DATABASE_URL while the server keeps serving, or check one.
    Backup(BackupArgs),
    /// Restore a backup into DATABASE_URL (an empty database), then apply newer migrations.
    /// Stop the servers that use the database first.
    Restore(RestoreArgs),
    /// The statistics' summary tables: check them against the data, or recompute them.
    #[command(subcommand)]
    Stats(StatsCommand),
    /// The data keys that seal NIKs, phones and e-mails at rest (DATA_KEY_FILE).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Persons: the owners of the businesses.
    #[command(subcommand)]
    Persons(persons::PersonsCommand),
    /// Data protection (UU 27/2022): what the disclosure log says an account received.
    #[command(subcommand)]
    Pdp(umkm_api::rights::PdpCommand),
    /// The regions' tree: replace it by a newer decree's files.
    #[command(subcommand)]
    Regions(umkm_api::regions::tree::RegionsCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new key file (readable by its owner only) for DATA_KEY_FILE; an existing file
    /// is never overwritten.
    Init {
        /// Where to write it.
        file: PathBuf,
    },
    /// Add a new encryption key to DATA_KEY_FILE, make it the active one and seal every stored
    /// value with it, while the servers serve and write (they read the file again).
    Rotate {
        /// Rotate the blind index's key instead: every NIK is indexed again.
        #[arg(long)]
        index: bool,
    },
    /// Remove an old key from DATA_KEY_FILE once no stored value needs it.
    #[command(group = clap::ArgGroup::new("key").required(true).args(["encryption", "index"]))]
    Retire {
        /// The encryption key's id.
        #[arg(long)]
        encryption: Option<u32>,
        /// The index key's id.
        #[arg(long)]
        index: Option<u32>,
    },
}

#[derive(Subcommand)]
enum StatsCommand {
    /// Recompute every summary from the base tables and compare; exits non-zero and prints
    /// the groups that differ.
    Verify,
    /// Recompute every summary from the base tables, in one transaction (writers wait for it).
    Rebuild,
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("action").required(true).args(["out", "verify"]))]
struct BackupArgs {
    /// Where to write the backup; the file must not exist yet.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Check a backup instead: readable, whole, and holding the rows it recorded.
    #[arg(long, value_name = "FILE")]
    verify: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RestoreArgs {
    /// The backup to restore.
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// Replace a database that already holds data (everything in it is lost).
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("kind").required(true).args(["demo", "generate"]))]
struct SeedArgs {
    /// The small demo dataset: 27 districts, 5 banks, Indomaret's 51 outlets stocking 16 curated
    /// products of 13 IKM, a training that selected 100 of 234 registrants.
    #[arg(long)]
    demo: bool,
    /// A generated dataset of --businesses businesses with products, applications, outlets,
    /// curations, placements, trainings and registrations in proportion.
    #[arg(long)]
    generate: bool,
    /// How many businesses to generate (the Lamongan reference scale by default).
    #[arg(long, default_value_t = 351_000, conflicts_with = "demo", value_parser = clap::value_parser!(u32).range(1..))]
    businesses: u32,
    /// The random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 1, conflicts_with = "demo")]
    seed: u64,
    /// Add to a database that already has businesses.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input (prompted on a terminal).
    Create {
        /// The user's e-mail.
        #[arg(long)]
        email: String,
        /// admin, officer, bank, retail or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The bank partner id (bank users).
        #[arg(long)]
        bank_partner: Option<i64>,
        /// The retail partner id (retail users).
        #[arg(long)]
        retail_partner: Option<i64>,
    },
    /// Set a user's password, read from standard input (prompted on a terminal).
    ResetPassword {
        /// The user's e-mail.
        #[arg(long)]
        email: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "expected admin, officer, bank, retail or viewer".into())
}

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    match umkm_api::logging::Format::from_env() {
        Ok(format) => umkm_api::logging::init(format),
        Err(e) => {
            eprintln!("umkm-api: {e}");
            return ExitCode::FAILURE;
        }
    }
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => print_openapi(),
        Command::Serve => serve(),
        Command::Migrate => connect().map(|_| ()),
        Command::User(command) => user(command),
        Command::Seed(args) => seed(args),
        Command::Backup(args) => backup(args),
        Command::Restore(args) => restore(args),
        Command::Stats(command) => stats(command),
        Command::Keys(command) => keys(command),
        Command::Persons(command) => on_database(|conn, _, keys| persons::command(conn, keys, command)),
        Command::Pdp(command) => on_database(|conn, _, _| umkm_api::rights::pdp(conn, command)),
        Command::Regions(command) => on_database(|conn, config, _| {
            umkm_api::regions::tree::command(conn, &config.service_area, command)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("umkm-api: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_openapi() -> Result<(), String> {
    let json = openapi::spec().to_pretty_json().map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

/// Reads the configuration and the data keys, opens the pool and applies pending migrations
/// (which check the keys against the database).
fn connect() -> Result<(Config, db::Pool, Keyring), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let generated = config.create_data_key_file && !config.data_key_file.exists();
    if generated {
        // The embedded default's keys, made on the first start like its JWT secret, in the
        // same private directory.
        use std::os::unix::fs::DirBuilderExt;
        if let Some(dir) = config.data_key_file.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("DATA_KEY_FILE unset, and {} cannot be created: {e}", dir.display()))?;
        }
        Keyring::create(&config.data_key_file).map_err(|e| format!("DATA_KEY_FILE unset, and {e}"))?;
    }
    let keys = Keyring::load(&config.data_key_file).map_err(|e| e.to_string())?;
    let pool = db::pool(&config.database_url, config.db_pool_size).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    let applied = persons::migrate(&mut conn, &keys).map_err(|e| {
        if generated {
            // The key file was missing and a new one was just made, but this database's data
            // was sealed with the lost one: the new file goes, so that restoring the old one
            // is all it takes.
            let _ = std::fs::remove_file(&config.data_key_file);
            format!(
                "{} was missing and this database's personal data is sealed with the keys it held: \
                 restore that file (a new one is made for a new database only)",
                config.data_key_file.display()
            )
        } else {
            format!("migrations failed: {e}")
        }
    })?;
    if applied > 0 {
        log::info!("applied {applied} migration(s)");
    }
    umkm_api::regions::tree::serve(&mut conn, &config.service_area).map_err(describe)?;
    drop(conn);
    let pool = pool
        .with_replicas(&config.database_read_urls, config.db_pool_size, config.replica_max_lag)
        .map_err(|e| format!("read replicas: {e}"))?;
    Ok((config, pool, keys))
}

fn describe(err: AppError) -> String {
    match err {
        AppError::Validation(errors) => {
            errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
        }
        AppError::NotFound => "no such user".into(),
        other => other.to_string(),
    }
}

fn serve() -> Result<(), String> {
    let (config, pool, _) = connect()?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    let admin = users::ensure_first_admin(
        &mut conn,
        std::env::var("UMKM_ADMIN_EMAIL").ok(),
        std::env::var("UMKM_ADMIN_PASSWORD").ok(),
    )
    .map_err(|e| format!("cannot create the first admin: {}", describe(e)))?;
    drop(conn);
    let addr = config.bind_addr;
    umkm_api::summary::spawn_folder(pool.clone())
        .map_err(|e| format!("cannot start the statistics' fold: {e}"))?;
    // The banks' feed is current before the first pull (after an upgrade, or a day's change of
    // the time-based rules while no instance ran), then re-evaluated every day.
    umkm_api::banks::feed::run_logged(&pool);
    umkm_api::banks::feed::spawn_daily(pool.clone())
        .map_err(|e| format!("cannot start the bank feed's daily run: {e}"))?;
    umkm_api::disclosures::spawn_retention(pool.clone(), config.disclosure_retention_days)
        .map_err(|e| format!("cannot start the disclosure log's retention: {e}"))?;
    umkm_api::disclosures::spawn_upkeep(pool.clone())
        .map_err(|e| format!("cannot start the disclosure log's index upkeep: {e}"))?;
    let state = AppState::new(config, pool).map_err(describe)?;

    let base = format!("http://{addr}");
    println!("umkm-api {} listening on {base}", env!("CARGO_PKG_VERSION"));
    println!("  API docs:  {base}/docs/");
    println!("  OpenAPI:   {base}/api-docs/openapi.json");
    match admin {
        Some((email, Some(password))) => {
            // Shown once, on the console only; never logged.
            println!("  First admin created: {email} / {password}");
            println!("  (change it with `umkm-api user reset-password --email {email}`)");
        }
        Some((email, None)) => {
            println!("  First admin created: {email} (password from UMKM_ADMIN_PASSWORD)")
        }
        None => {}
    }
    println!(
        "  Log in:    curl -s -X POST {base}/api/v1/auth/token -H 'Content-Type: application/json' \
         -d '{{\"email\":\"…\",\"password\":\"…\"}}'"
    );

    actix_web::rt::System::new().block_on(async move {
        umkm_api::webhooks::dispatch::spawn(state.pool.clone(), state.config.webhook_allow_private_targets);
        let exporter = match state.config.metrics_addr {
            None => None,
            Some(metrics_addr) => {
                let (metrics, pool) = (state.metrics.clone(), state.pool.clone());
                println!("  Metrics:   http://{metrics_addr}/metrics");
                let server = actix_web::HttpServer::new(move || {
                    umkm_api::metrics::exporter(actix_web::web::Data::from(metrics.clone()), pool.clone())
                })
                .workers(1)
                .bind(metrics_addr)
                .map_err(|e| format!("cannot listen on {metrics_addr} (METRICS_ADDR): {e}"))?
                .run();
                Some(server)
            }
        };
        let api = actix_web::HttpServer::new(move || app(state.clone()))
            .shutdown_timeout(30)
            .bind(addr)
            .map_err(|e| format!("cannot listen on {addr} (BIND_ADDR): {e}"))?
            .run();
        match exporter {
            None => api.await,
            // Both stop on the same signal; the API's answer is the one that counts.
            Some(exporter) => futures_util::future::join(api, exporter).await.0,
        }
        .map_err(|e| e.to_string())
    })
}

/// Reads a password: prompted twice on a terminal, else the first line of standard input.
fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

fn user(command: UserCommand) -> Result<(), String> {
    let (_, pool, _) = connect()?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    match command {
        UserCommand::Create { email, role, bank_partner, retail_partner } => {
            let password = read_password()?;
            let user = users::create(
                &mut conn,
                None,
                NewUser {
                    email,
                    password,
                    role,
                    bank_partner_id: bank_partner,
                    retail_partner_id: retail_partner,
                    disabled: false,
                },
            )
            .map_err(describe)?;
            println!("created user {} ({}) with id {}", user.email, user.role, user.id);
        }
        UserCommand::ResetPassword { email } => {
            let password = read_password()?;
            users::reset_password(&mut conn, &email, &password).map_err(describe)?;
            println!("password changed for {}", email.trim().to_lowercase());
        }
    }
    Ok(())
}

fn stats(command: StatsCommand) -> Result<(), String> {
    let (_, pool, _) = connect()?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    match command {
        StatsCommand::Verify => {
            let differences = umkm_api::summary::verify(&mut conn).map_err(|e| e.to_string())?;
            for difference in &differences {
                println!("{difference}");
            }
            if !differences.is_empty() {
                return Err(format!(
                    "{} summary group(s) differ from the data; `umkm-api stats rebuild` recomputes them",
                    differences.len()
                ));
            }
            println!("the statistics' summaries match the data");
        }
        StatsCommand::Rebuild => {
            let rows = umkm_api::summary::rebuild(&mut conn).map_err(|e| e.to_string())?;
            println!("recomputed the statistics' summaries: {rows} rows");
        }
    }
    Ok(())
}

fn keys(command: KeysCommand) -> Result<(), String> {
    if let KeysCommand::Init { file } = &command {
        Keyring::create(file).map_err(|e| e.to_string())?;
        println!("wrote new data keys to {}; keep a copy apart from the database's backups", file.display());
        return Ok(());
    }
    let (config, pool, _) = connect()?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    let path = &config.data_key_file;
    match command {
        KeysCommand::Init { .. } => Ok(()),
        KeysCommand::Rotate { index } => {
            let started = std::time::Instant::now();
            let bar = progress_bar();
            let rotated = persons::rotate(&mut conn, path, index, persons::settle_time(), &|n| {
                bar.set_position(n as u64)
            })?;
            bar.finish_and_clear();
            let kind = if index { "index" } else { "encryption" };
            println!(
                "{kind} key {} is active in {}; {} rows {} again in {} pass(es), {:.1} s",
                rotated.key,
                path.display(),
                rotated.rows,
                if index { "indexed" } else { "sealed" },
                rotated.passes,
                started.elapsed().as_secs_f64()
            );
            println!("the older {kind} keys can go: `umkm-api keys retire --{kind} ID`");
            Ok(())
        }
        KeysCommand::Retire { encryption, index } => {
            let (is_index, key) = match (encryption, index) {
                (Some(key), _) => (false, key),
                (None, Some(key)) => (true, key),
                (None, None) => return Err("give --encryption ID or --index ID".into()),
            };
            persons::retire(&mut conn, path, is_index, key)?;
            println!(
                "removed {} key {key} from {}",
                if is_index { "index" } else { "encryption" },
                path.display()
            );
            Ok(())
        }
    }
}

/// A command of the library run on the migrated database, printing what it returns.
fn on_database(
    run: impl FnOnce(&mut db::DbConnection, &Config, &Keyring) -> Result<String, String>,
) -> Result<(), String> {
    let (config, pool, keys) = connect()?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    run(&mut conn, &config, &keys).map(|out| print!("{out}"))
}

fn seed(args: SeedArgs) -> Result<(), String> {
    let (_, pool, keys) = connect()?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    let started = std::time::Instant::now();
    let summary = if args.demo {
        umkm_api::seed::demo(&mut conn, &keys, args.force)
    } else {
        let bar = indicatif::ProgressBar::new(u64::from(args.businesses)).with_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} businesses ({per_sec}, {eta} left)",
            )
            .map_err(|e| e.to_string())?,
        );
        let options = umkm_api::seed::Options {
            businesses: args.businesses as usize,
            seed: args.seed,
            force: args.force,
        };
        let summary =
            umkm_api::seed::generate(&mut conn, &keys, &options, |done| bar.set_position(done as u64));
        bar.finish_and_clear();
        summary
    }
    .map_err(|e| e.to_string())?;
    println!("seeded {summary} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A progress bar on standard error, drawn only on a terminal.
fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Rows per table, one line each (`  TABLE ROWS`), then their sum.
fn print_tables(manifest: &Manifest) {
    let width = manifest.tables.keys().map(String::len).max().unwrap_or(5).max(5);
    println!("  {:<width$} {:>12}", "table", "rows");
    for (table, rows) in &manifest.tables {
        println!("  {table:<width$} {rows:>12}");
    }
    println!("  {:<width$} {:>12}", "(all)", manifest.rows());
}

fn backup(args: BackupArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    if let Some(file) = args.verify {
        let manifest = backups::verify(&file).map_err(|e| e.to_string())?;
        println!(
            "ok: {} is a whole {} backup made by umkm-api {} on {} at migration {}, holding {} rows in {} tables",
            file.display(),
            manifest.backend,
            manifest.app_version,
            manifest.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            manifest.migration,
            manifest.rows(),
            manifest.tables.len()
        );
        return Ok(());
    }
    let Some(out) = args.out else { return Err("give --out FILE or --verify FILE".into()) };
    let url = config::database_url().map_err(|e| e.to_string())?;
    let bar = progress_bar();
    let report = |p: Progress| {
        if bar.length() != Some(p.total) {
            let template = match p.unit {
                Unit::Bytes => "{elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} copied",
                Unit::Tables => "{elapsed_precise} [{wide_bar}] {pos}/{len} tables dumped",
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_length(p.total);
        }
        bar.set_position(p.done);
    };
    let manifest = backups::backup(&url, &out, &report);
    bar.finish_and_clear();
    let manifest = manifest.map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    println!("backup of {} at migration {}:", manifest.backend, manifest.migration);
    print_tables(&manifest);
    println!(
        "written to {} ({:.1} MB) in {:.1} s",
        out.display(),
        size as f64 / 1_000_000.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn restore(args: RestoreArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    let url = config::database_url().map_err(|e| e.to_string())?;
    // The keys the database's values are sealed with: the backup holds none.
    let (key_file, _) = config::data_key_file(&url).map_err(|e| e.to_string())?;
    let keys = Keyring::load(&key_file).map_err(|e| e.to_string())?;
    let migrate = move |conn: &mut db::DbConnection| persons::migrate(conn, &keys);
    let restored = backups::restore(&url, &migrate, &args.from, args.force).map_err(|e| e.to_string())?;
    let manifest = &restored.manifest;
    println!(
        "restored {} (umkm-api {}, {}, migration {}):",
        args.from.display(),
        manifest.app_version,
        manifest.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        manifest.migration
    );
    print_tables(manifest);
    println!(
        "every table holds the rows the backup recorded; {} newer migration(s) applied; {:.1} s",
        restored.migrations_applied,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
