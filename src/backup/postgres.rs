//! PostgreSQL: `pg_dump --format=custom` run in the snapshot the manifest's row counts were read
//! in; restored by `pg_restore` through `psql` in
//! one transaction that also checks every table's rows before it commits.
//!
//! The password of `DATABASE_URL` reaches the client programs in `PGPASSWORD`, never on their
//! command line, where every user of the machine could read it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::tables::{self, MIGRATIONS_TABLE};
use super::{BackupError, Manifest, Progress, Restored, Result, Unit, archive};
use crate::db::{Backend, DbConnection};

/// `DATABASE_URL` split for the client programs: the URL without its password, and the password.
struct Server {
    url: String,
    password: Option<String>,
}

impl Server {
    fn parse(url: &str) -> Self {
        let (url, password) = split_password(url);
        Server { url, password }
    }

    /// A client program pointed at this server.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command
    }
}

/// `postgres://user:secret@host/db` → (`postgres://user@host/db`, `secret`, percent-decoded);
/// a `password=` query parameter moves out the same way.
fn split_password(url: &str) -> (String, Option<String>) {
    let (url, from_userinfo) = split_userinfo_password(url);
    let Some((base, query)) = url.split_once('?') else { return (url, from_userinfo) };
    let mut password = from_userinfo;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("password=") {
            Some(value) => {
                password = Some(percent_decode(value));
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    (url, password)
}

fn split_userinfo_password(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return (url.to_owned(), None) };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else { return (url.to_owned(), None) };
    let Some(colon) = authority[..at].find(':') else { return (url.to_owned(), None) };
    let stripped = format!("{}{}{}", &url[..scheme_end], &authority[..colon], &rest[at..]);
    (stripped, Some(percent_decode(&authority[colon + 1..at])))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn connect(url: &str) -> Result<PgConnection> {
    PgConnection::establish(url).map_err(|e| BackupError::new(format!("cannot connect to PostgreSQL: {e}")))
}

fn server_major(conn: &mut PgConnection) -> Result<u32> {
    let n = diesel::sql_query("SELECT (current_setting('server_version_num')::int / 10000)::bigint AS n")
        .get_result::<Number>(conn)?
        .n;
    Ok(u32::try_from(n).unwrap_or(0))
}

/// Checks that a PostgreSQL client program is installed and, given the server's major version,
/// not older than the server (`pg_dump` refuses to dump a newer server).
fn tool(program: &str, server_major: Option<u32>) -> Result<()> {
    let package =
        server_major.map_or_else(|| "postgresql-client".to_owned(), |m| format!("postgresql-client-{m}"));
    let output = match Command::new(program).arg("--version").output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::new(format!(
                "{program} was not found on PATH: install PostgreSQL's client programs (Debian: {package})"
            )));
        }
        Err(e) => return Err(BackupError::new(format!("cannot run {program}: {e}"))),
    };
    // "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    let text = String::from_utf8_lossy(&output.stdout);
    let major = text.split_whitespace().find_map(|w| w.split('.').next()?.parse::<u32>().ok());
    match (major, server_major) {
        (Some(tool), Some(server)) if tool < server => Err(BackupError::new(format!(
            "{program} {tool} is older than the server (PostgreSQL {server}): install {package} or newer"
        ))),
        _ => Ok(()),
    }
}

/// A file to take a child's standard error, read once it has exited (a pipe left unread could
/// fill up and stall it).
struct ErrorLog(File);

impl ErrorLog {
    fn new() -> Result<Self> {
        tempfile::tempfile()
            .map(ErrorLog)
            .map_err(|e| BackupError::new(format!("cannot make a temporary file: {e}")))
    }

    fn stdio(&self) -> Result<Stdio> {
        self.0.try_clone().map(Stdio::from).map_err(|e| BackupError::new(e.to_string()))
    }

    /// The first line that reports an error, else the last line, else `fallback`.
    fn first_error(mut self, fallback: &str) -> String {
        let mut text = String::new();
        let _ = self.0.rewind().and_then(|()| self.0.read_to_string(&mut text));
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        lines
            .iter()
            .find(|l| l.contains("error") || l.contains("ERROR") || l.contains("FATAL"))
            .or(lines.last())
            .map_or_else(|| fallback.to_owned(), |l| (*l).to_owned())
    }
}

fn spawn(command: &mut Command, program: &str) -> Result<std::process::Child> {
    command.spawn().map_err(|e| BackupError::new(format!("cannot run {program}: {e}")))
}

pub(super) fn backup(url: &str, out: &Path, progress: &dyn Fn(Progress)) -> Result<Manifest> {
    let server = Server::parse(url);
    let mut pg = connect(url)?;
    tool("pg_dump", Some(server_major(&mut pg)?))?;

    // The counts and the dump see one snapshot: this transaction exports it, pg_dump imports it.
    pg.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
    let snapshot = diesel::sql_query("SELECT pg_export_snapshot() AS name").get_result::<Name>(&mut pg)?.name;
    let mut conn = DbConnection::Pg(pg);
    let names = tables::list(&mut conn)?;
    let manifest =
        Manifest::new(Backend::Postgres, tables::migration(&mut conn)?, tables::count(&mut conn, &names)?);

    let staging = super::staging_beside(out)?;
    let dump = staging.path().join(archive::data_member(Backend::Postgres));
    let mut child = spawn(
        server
            .command("pg_dump")
            .args(["--format=custom", "--no-owner", "--no-privileges", "--verbose", "--snapshot", &snapshot])
            .arg("--file")
            .arg(&dump)
            .arg("--dbname")
            .arg(&server.url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "pg_dump",
    )?;
    // pg_dump --verbose names each table as it dumps its rows: the progress, in tables.
    let total = names.len() as u64 + 1;
    let mut done = 0;
    let mut errors = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(std::io::Result::ok) {
            if line.contains("dumping contents of table") {
                done += 1;
                progress(Progress { done: done.min(total), total, unit: Unit::Tables });
            } else if line.contains("error:") || line.contains("detail:") {
                errors.push(line);
            }
        }
    }
    let status = child.wait().map_err(|e| BackupError::new(format!("pg_dump: {e}")))?;
    if !status.success() {
        let reason = errors.first().cloned().unwrap_or_else(|| format!("pg_dump ended with {status}"));
        return Err(BackupError::new(format!("the backup failed: {reason}")));
    }
    conn.batch_execute("COMMIT")?;
    progress(Progress { done: total, total, unit: Unit::Tables });

    let mut manifest = manifest;
    manifest.sha256 = archive::sha256(&dump)
        .map_err(|e| BackupError::new(format!("cannot read {}: {e}", dump.display())))?;
    let packed = staging.path().join("umkm.backup");
    archive::pack(&manifest, &dump, &packed)?;
    super::publish(&packed, out)?;
    Ok(manifest)
}

pub(super) fn verify(file: &Path) -> Result<Manifest> {
    let scratch = tempfile::tempdir()
        .map_err(|e| BackupError::new(format!("cannot make a temporary directory: {e}")))?;
    let (manifest, dump) = archive::unpack(file, scratch.path())?;
    tool("pg_restore", None)?;
    let (counts, migration) = read_rows(&dump, file)?;
    manifest.check_counts(&counts, "in the backup")?;
    if migration != manifest.migration {
        return Err(BackupError::new(format!(
            "{}: the manifest records migration {}, the backup holds {migration}",
            file.display(),
            manifest.migration
        )));
    }
    Ok(manifest)
}

/// Reads every row of the dump (`pg_restore --data-only` writes each table's rows as a COPY
/// block, one line per row) and counts them per table; also the newest migration recorded.
fn read_rows(dump: &Path, file: &Path) -> Result<(BTreeMap<String, i64>, String)> {
    let errors = ErrorLog::new()?;
    let mut child = spawn(
        Command::new("pg_restore")
            .args(["--data-only", "--file=-"])
            .arg(dump)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(errors.stdio()?),
        "pg_restore",
    )?;
    let mut counts = BTreeMap::new();
    let mut migration = String::new();
    let mut table: Option<String> = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).split(b'\n') {
            let line = line.map_err(|e| BackupError::new(format!("pg_restore: {e}")))?;
            match &table {
                None => {
                    if let Some(name) = copy_target(&line) {
                        counts.insert(name.clone(), 0);
                        table = Some(name);
                    }
                }
                Some(_) if line == b"\\." => table = None,
                Some(name) => {
                    *counts.entry(name.clone()).or_insert(0) += 1;
                    if name == MIGRATIONS_TABLE {
                        let version =
                            String::from_utf8_lossy(line.split(|b| *b == b'\t').next().unwrap_or_default());
                        if *version > *migration {
                            migration = version.into_owned();
                        }
                    }
                }
            }
        }
    }
    let status = child.wait().map_err(|e| BackupError::new(format!("pg_restore: {e}")))?;
    if !status.success() {
        return Err(BackupError::new(format!(
            "{} is damaged: {}",
            file.display(),
            errors.first_error("pg_restore could not read it")
        )));
    }
    counts.remove(MIGRATIONS_TABLE);
    Ok((counts, migration))
}

/// `COPY public.businesses (id, …) FROM stdin;` → `businesses`.
fn copy_target(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("COPY ")?;
    if !rest.ends_with("FROM stdin;") {
        return None;
    }
    let qualified = rest.split(' ').next()?;
    let name = qualified.strip_prefix("public.")?.trim_matches('"');
    Some(name.to_owned())
}

pub(super) fn restore(url: &str, migrate: &super::Migrate, from: &Path, force: bool) -> Result<Restored> {
    let server = Server::parse(url);
    archive::manifest(from)?.check_restorable(Backend::Postgres)?;
    let mut pg = connect(url)?;
    let major = server_major(&mut pg)?;
    tool("pg_restore", Some(major))?;
    tool("psql", None)?;
    let mut conn = DbConnection::Pg(pg);
    if !force && let Some(table) = tables::holding_data(&mut conn)? {
        return Err(BackupError::new(format!(
            "the database already holds data (table {table}); a restore goes into an empty database: \
             create a new one, or pass --force to replace everything in it"
        )));
    }

    // A damaged archive is refused before anything is touched.
    let scratch = tempfile::tempdir()
        .map_err(|e| BackupError::new(format!("cannot make a temporary directory: {e}")))?;
    let (manifest, dump) = archive::unpack(from, scratch.path())?;
    let errors = ErrorLog::new()?;
    let listed = Command::new("pg_restore")
        .arg("--list")
        .arg(&dump)
        .stdout(Stdio::null())
        .stderr(errors.stdio()?)
        .status()
        .map_err(|e| BackupError::new(format!("cannot run pg_restore: {e}")))?;
    if !listed.success() {
        return Err(BackupError::new(format!(
            "{} is damaged: {}",
            from.display(),
            errors.first_error("pg_restore cannot read it")
        )));
    }

    // One transaction: clear the schema, restore, check every table's rows. It commits only if
    // all of that succeeded; psql reaching the end of its input without COMMIT rolls it back.
    let psql_errors = ErrorLog::new()?;
    let mut psql = spawn(
        server
            .command("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname"])
            .arg(&server.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(psql_errors.stdio()?),
        "psql",
    )?;
    let restore_errors = ErrorLog::new()?;
    let mut pg_restore = spawn(
        Command::new("pg_restore")
            .args(["--no-owner", "--no-privileges", "--file=-"])
            .arg(&dump)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(restore_errors.stdio()?),
        "pg_restore",
    )?;
    let fed = feed(psql.stdin.take(), pg_restore.stdout.take(), &manifest, || {
        pg_restore.wait().is_ok_and(|s| s.success())
    });
    let _ = pg_restore.wait();
    let finished = psql.wait().map_err(|e| BackupError::new(format!("psql: {e}")))?;
    match fed {
        Feed::RestoreFailed => {
            return Err(BackupError::new(format!(
                "{} could not be read whole ({}); nothing was changed",
                from.display(),
                restore_errors.first_error("pg_restore failed")
            )));
        }
        Feed::Written | Feed::PsqlGone if !finished.success() => {
            return Err(BackupError::new(format!(
                "the restore failed and was rolled back: {}",
                psql_errors.first_error("psql failed")
            )));
        }
        Feed::PsqlGone => return Err(BackupError::new("psql stopped reading; the restore was rolled back")),
        Feed::Written => {}
    }
    let migrations_applied = migrate(&mut conn)
        .map_err(|e| BackupError::new(format!("the migrations after the restore failed: {e}")))?;
    Ok(Restored { manifest, migrations_applied })
}

/// How feeding psql ended.
enum Feed {
    /// Everything, COMMIT included, was written.
    Written,
    /// pg_restore failed: COMMIT was not written.
    RestoreFailed,
    /// psql stopped reading (it met an error).
    PsqlGone,
}

/// Writes to psql: the schema reset, pg_restore's script, the row checks and COMMIT — the last
/// two only if pg_restore succeeded (`restored`, called after its output ended).
fn feed(
    input: Option<std::process::ChildStdin>,
    script: Option<std::process::ChildStdout>,
    manifest: &Manifest,
    restored: impl FnOnce() -> bool,
) -> Feed {
    let (Some(mut input), Some(mut script)) = (input, script) else { return Feed::PsqlGone };
    // A server still using the database would make DROP SCHEMA wait for ever: give up after 10 s.
    let prologue = "SET client_min_messages = warning;\nSET lock_timeout = '10s';\nBEGIN;\n\
                    DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n";
    if input.write_all(prologue.as_bytes()).is_err() || std::io::copy(&mut script, &mut input).is_err() {
        return Feed::PsqlGone;
    }
    drop(script);
    if !restored() {
        return Feed::RestoreFailed;
    }
    let mut epilogue = String::new();
    for (table, rows) in &manifest.tables {
        // Table names passed `plain_name` when the manifest was read.
        epilogue.push_str(&format!(
            "DO $$ DECLARE n bigint; BEGIN SELECT count(*) INTO n FROM public.\"{table}\"; \
             IF n <> {rows} THEN RAISE EXCEPTION 'table {table}: % rows restored, the backup recorded {rows}', n; \
             END IF; END $$;\n"
        ));
    }
    epilogue.push_str("COMMIT;\n");
    if input.write_all(epilogue.as_bytes()).is_err() {
        return Feed::PsqlGone;
    }
    Feed::Written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let (url, password) =
            split_password("postgres://umkm:s%40cret:x@db.example:5432/umkm?sslmode=require");
        assert_eq!(url, "postgres://umkm@db.example:5432/umkm?sslmode=require");
        assert_eq!(password.as_deref(), Some("s@cret:x"));
        let (url, password) = split_password("postgres://postgres@127.0.0.1/umkm");
        assert_eq!(url, "postgres://postgres@127.0.0.1/umkm");
        assert_eq!(password, None);
        let (url, password) = split_password("postgres://u@db/umkm?sslmode=require&password=p%26q");
        assert_eq!(url, "postgres://u@db/umkm?sslmode=require");
        assert_eq!(password.as_deref(), Some("p&q"));
    }

    #[test]
    fn copy_lines_name_their_table() {
        assert_eq!(
            copy_target(b"COPY public.businesses (id, name) FROM stdin;").as_deref(),
            Some("businesses")
        );
        assert_eq!(
            copy_target(b"COPY public.\"__diesel_schema_migrations\" (version) FROM stdin;").as_deref(),
            Some("__diesel_schema_migrations")
        );
        assert_eq!(copy_target(b"1\tCOPY public.x FROM stdin;"), None);
    }
}
