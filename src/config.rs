//! Configuration, read once from the environment at start-up. A bad value stops start-up with
//! one line that names the variable; secrets are never printed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::db::Backend;

/// Where the embedded default keeps its files.
pub const DATA_DIR: &str = "data";
/// The embedded default database, used when `DATABASE_URL` is not set.
pub const DEFAULT_SQLITE_PATH: &str = "data/umkm.db";
/// The shortest JWT secret accepted: 256 bits, the size of the HS256 key.
pub const MIN_SECRET_BYTES: usize = 32;

/// The server's settings.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`: `postgres://…` or an SQLite path.
    pub database_url: String,
    /// `BIND_ADDR`: where the server listens.
    pub bind_addr: SocketAddr,
    /// `JWT_SECRET`: the HS256 signing key.
    pub jwt_secret: Secret,
    /// `ACCESS_TOKEN_TTL`: lifetime of an access token, in seconds.
    pub access_token_ttl: Duration,
    /// `DB_POOL_SIZE`: connections in the pool.
    pub db_pool_size: u32,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins allowed to call the API from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// `MAX_BODY_BYTES`: the largest request body accepted.
    pub max_body_bytes: usize,
    /// `METRICS_ADDR`: where `/metrics` is served (Prometheus text format); off when unset.
    /// Never the API's address: metrics are for the operators' network only.
    pub metrics_addr: Option<SocketAddr>,
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS`: webhooks may go to plain `http` and to private,
    /// loopback and link-local addresses (tests, closed networks). Off by default.
    pub webhook_allow_private_targets: bool,
    /// `DATABASE_READ_URLS`: comma-separated PostgreSQL read replicas of `DATABASE_URL`, for
    /// the reads that tolerate lag (lists, exports, statistics, the banks' pull). None by default.
    pub database_read_urls: Vec<String>,
    /// `REPLICA_MAX_LAG_MS`: a replica lagging more than this leaves the rotation until it
    /// catches up.
    pub replica_max_lag: Duration,
    /// `TRUSTED_PROXIES`: comma-separated addresses or blocks (`10.0.0.0/8`) of the proxies in
    /// front of the server, whose `X-Forwarded-For` names the client (the login throttle
    /// counts by it). None by default: the socket's peer is the client.
    pub trusted_proxies: Vec<Network>,
    /// `DISCLOSURE_RETENTION_DAYS`: how long the disclosure log keeps an entry
    /// (`crate::disclosures`); a daily job removes older ones. Five years by default.
    pub disclosure_retention_days: u32,
    /// `SERVICE_AREA`: comma-separated codes of the regencies or provinces the installation
    /// serves (`35.24` Lamongan by default): its businesses and outlets lie in their districts.
    pub service_area: Vec<String>,
    /// `DPO_NAME` and `DPO_EMAIL`: the data protection officer (UU 27/2022 Pasal 53), named in
    /// the OpenAPI document's `info.contact` and so on the docs page.
    pub dpo: Dpo,
    /// `DATA_KEY_FILE`: the keys that seal personal data at rest (`crate::crypto::keyring`),
    /// outside the database and its backups. Required with PostgreSQL; with the embedded
    /// default `data/data_keys`, generated on the first start.
    pub data_key_file: PathBuf,
    /// Whether `data_key_file` is the embedded default's, made when missing.
    pub create_data_key_file: bool,
}

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a bare address is its own block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an address or block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be between 0 and {max}"))?,
        };
        // An IPv4 block written as IPv6 (`::ffff:10.0.0.0/104`) is that IPv4 block.
        match (addr, canonical(addr)) {
            (IpAddr::V6(_), IpAddr::V4(v4)) if prefix >= 96 => {
                Ok(Network { addr: IpAddr::V4(v4), prefix: prefix - 96 })
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => {
                Err(format!("{s:?}: an IPv4-mapped block needs a prefix of 96 or more"))
            }
            _ => Ok(Network { addr, prefix }),
        }
    }
}

impl Network {
    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A secret value whose `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps raw bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The bytes, for the one place that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &Backend::of_url(&self.database_url))
            .field("bind_addr", &self.bind_addr)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("db_pool_size", &self.db_pool_size)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("metrics_addr", &self.metrics_addr)
            .field("webhook_allow_private_targets", &self.webhook_allow_private_targets)
            .field("read_replicas", &self.database_read_urls.len())
            .field("replica_max_lag", &self.replica_max_lag)
            .field("disclosure_retention_days", &self.disclosure_retention_days)
            .field("service_area", &self.service_area)
            .field("dpo", &self.dpo)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// A configuration variable with a bad value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// What is wrong with it (never the value of a secret).
    pub reason: String,
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { var, reason: reason.into() }
}

/// Reads a variable; unset and empty are the same.
fn var(name: &'static str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(invalid(name, "not valid UTF-8")),
    }
}

/// The data protection officer's contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpo {
    /// Who (an office or a person).
    pub name: String,
    /// Where to write.
    pub email: String,
}

impl Dpo {
    /// The demo's: an installation names its own (the README's configuration table says so).
    pub const DEFAULT_NAME: &'static str = "Pejabat Pelindungan Data Pribadi (data protection officer)";
    /// The demo's, at a reserved domain.
    pub const DEFAULT_EMAIL: &'static str = "ppdp@example.org";
}

impl Dpo {
    /// From `DPO_NAME` and `DPO_EMAIL` (the default's where absent), checked.
    fn checked(name: Option<String>, email: Option<String>) -> Result<Dpo, ConfigError> {
        let name = name.unwrap_or_else(|| Dpo::DEFAULT_NAME.to_owned());
        let email = email.unwrap_or_else(|| Dpo::DEFAULT_EMAIL.to_owned());
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(invalid("DPO_NAME", "must be 1 to 200 characters, none of them control characters"));
        }
        let shaped = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !shaped {
            return Err(invalid("DPO_EMAIL", "must be an e-mail address"));
        }
        Ok(Dpo { name, email })
    }
}

impl Default for Dpo {
    fn default() -> Dpo {
        Dpo { name: Dpo::DEFAULT_NAME.into(), email: Dpo::DEFAULT_EMAIL.into() }
    }
}

/// `35.24,35.78`: province (`35`) or regency (`35.24`) codes; whether each names a region is
/// checked against the database at start (`crate::regions::tree::serve`).
fn parse_service_area(list: &str) -> Result<Vec<String>, String> {
    let codes: Vec<String> =
        list.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect();
    if codes.is_empty() {
        return Err("names no region: give a regency (35.24) or province (35) code".into());
    }
    for code in &codes {
        let segments: Vec<&str> = code.split('.').collect();
        if segments.len() > 2
            || segments.iter().any(|s| s.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("{code:?} is not a province (35) or regency (35.24) code"));
        }
    }
    Ok(codes)
}

fn parsed<T: std::str::FromStr>(
    name: &'static str,
    default: T,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    let value = match var(name)? {
        None => default,
        Some(raw) => raw.parse::<T>().map_err(|e| invalid(name, format!("{e} ({raw:?})")))?,
    };
    check(&value).map_err(|reason| invalid(name, reason))?;
    Ok(value)
}

/// `DATABASE_URL`, or the embedded default: all that the operator commands (backup, restore)
/// need of the configuration.
pub fn database_url() -> Result<String, ConfigError> {
    Ok(var("DATABASE_URL")?.unwrap_or_else(|| DEFAULT_SQLITE_PATH.to_owned()))
}

/// `DATA_KEY_FILE`, for commands that read no other setting (`restore`): required with a
/// PostgreSQL `database_url`, else the embedded default's `data/data_keys`. Whether it is that
/// default (made on the first start when missing).
pub fn data_key_file(database_url: &str) -> Result<(PathBuf, bool), ConfigError> {
    match var("DATA_KEY_FILE")? {
        Some(path) => Ok((PathBuf::from(path), false)),
        None if Backend::of_url(database_url) == Backend::Postgres => Err(invalid(
            "DATA_KEY_FILE",
            "is required with a PostgreSQL DATABASE_URL (make one with `umkm-api keys init FILE`)",
        )),
        None => Ok((Path::new(DATA_DIR).join("data_keys"), true)),
    }
}

impl Config {
    /// Reads the configuration from the environment (after `.env`, if present).
    pub fn from_env() -> Result<Config, ConfigError> {
        let database_url = database_url()?;
        let bind_addr = parsed("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)), |_| Ok(()))?;
        let ttl = parsed("ACCESS_TOKEN_TTL", 3600u64, |s| {
            if (60..=7 * 24 * 3600).contains(s) {
                Ok(())
            } else {
                Err("must be between 60 and 604800 seconds".into())
            }
        })?;
        let db_pool_size = parsed("DB_POOL_SIZE", 10u32, |n| {
            if (1..=1000).contains(n) { Ok(()) } else { Err("must be between 1 and 1000".into()) }
        })?;
        let max_body_bytes = parsed("MAX_BODY_BYTES", 16usize * 1024 * 1024, |n| {
            if (1024..=1024 * 1024 * 1024).contains(n) {
                Ok(())
            } else {
                Err("must be between 1024 and 1073741824".into())
            }
        })?;
        let cors_allowed_origins = match var("CORS_ALLOWED_ORIGINS")? {
            None => Vec::new(),
            Some(list) => parse_origins(&list).map_err(|r| invalid("CORS_ALLOWED_ORIGINS", r))?,
        };
        let metrics_addr = match var("METRICS_ADDR")? {
            None => None,
            Some(raw) => {
                let addr = raw
                    .parse::<SocketAddr>()
                    .map_err(|e| invalid("METRICS_ADDR", format!("{e} ({raw:?}); e.g. 127.0.0.1:9464")))?;
                if addr == bind_addr {
                    return Err(invalid(
                        "METRICS_ADDR",
                        "must differ from BIND_ADDR: metrics are not served with the API",
                    ));
                }
                Some(addr)
            }
        };
        let webhook_allow_private_targets = parsed("WEBHOOK_ALLOW_PRIVATE_TARGETS", false, |_| Ok(()))?;
        let database_read_urls: Vec<String> = var("DATABASE_READ_URLS")?
            .map(|list| list.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        if !database_read_urls.is_empty() && Backend::of_url(&database_url) != Backend::Postgres {
            return Err(invalid("DATABASE_READ_URLS", "needs a PostgreSQL DATABASE_URL"));
        }
        if database_read_urls.iter().any(|u| Backend::of_url(u) != Backend::Postgres) {
            return Err(invalid("DATABASE_READ_URLS", "each replica must be a postgres:// URL"));
        }
        let replica_max_lag = parsed("REPLICA_MAX_LAG_MS", 5000u64, |n| {
            if (100..=3_600_000).contains(n) { Ok(()) } else { Err("must be between 100 and 3600000".into()) }
        })?;
        let disclosure_retention_days = parsed("DISCLOSURE_RETENTION_DAYS", 1826u32, |n| {
            if (1..=36_525).contains(n) { Ok(()) } else { Err("must be between 1 and 36525 days".into()) }
        })?;
        let dpo = Dpo::checked(var("DPO_NAME")?, var("DPO_EMAIL")?)?;
        let trusted_proxies = match var("TRUSTED_PROXIES")? {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|reason| invalid("TRUSTED_PROXIES", reason))?,
        };
        let jwt_secret = match var("JWT_SECRET")? {
            Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                return Err(invalid("JWT_SECRET", format!("must be at least {MIN_SECRET_BYTES} bytes long")));
            }
            Some(secret) => Secret::new(secret.into_bytes()),
            None if Backend::of_url(&database_url) == Backend::Postgres => {
                return Err(invalid("JWT_SECRET", "is required with a PostgreSQL DATABASE_URL"));
            }
            None => local_secret(Path::new(DATA_DIR))
                .map_err(|e| invalid("JWT_SECRET", format!("unset, and {e}")))?,
        };
        let service_area = match var("SERVICE_AREA")? {
            None => vec!["35.24".to_owned()],
            Some(list) => parse_service_area(&list).map_err(|r| invalid("SERVICE_AREA", r))?,
        };
        let (data_key_file, create_data_key_file) = data_key_file(&database_url)?;
        Ok(Config {
            service_area,
            data_key_file,
            create_data_key_file,
            database_url,
            bind_addr,
            jwt_secret,
            access_token_ttl: Duration::from_secs(ttl),
            db_pool_size,
            cors_allowed_origins,
            max_body_bytes,
            metrics_addr,
            webhook_allow_private_targets,
            database_read_urls,
            replica_max_lag: Duration::from_millis(replica_max_lag),
            trusted_proxies,
            disclosure_retention_days,
            dpo,
        })
    }
}

fn parse_origins(list: &str) -> Result<Vec<String>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let valid = (o.starts_with("http://") || o.starts_with("https://"))
                && !o.ends_with('/')
                && !o.contains(char::is_whitespace);
            if valid || o == "*" {
                Ok(o.to_owned())
            } else {
                Err(format!("{o:?} is not an origin like https://app.example.go.id"))
            }
        })
        .collect()
}

/// The embedded default's secret: generated on first start and kept in `dir/jwt_secret`,
/// readable by the owner only, so tokens survive a restart.
fn local_secret(dir: &Path) -> Result<Secret, String> {
    let path: PathBuf = dir.join("jwt_secret");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= MIN_SECRET_BYTES => return Ok(Secret::new(bytes)),
        Ok(_) => {
            return Err(format!("{} is shorter than {MIN_SECRET_BYTES} bytes", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{} cannot be read: {e}", path.display())),
    }
    // Readable by the owner only, like the database beside it (`crate::db::pool`).
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{} cannot be created: {e}", dir.display()))?;
    let secret = random_token(48);
    write_private(&path, secret.as_bytes())
        .map_err(|e| format!("{} cannot be written: {e}", path.display()))?;
    Ok(Secret::new(secret.into_bytes()))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A random URL-safe string of `len` characters from the OS's generator.
pub fn random_token(len: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert_eq!(
            parse_origins("https://a.example, http://localhost:3000").ok(),
            Some(vec!["https://a.example".to_owned(), "http://localhost:3000".to_owned()])
        );
        assert!(parse_origins("a.example").is_err());
        assert!(parse_origins("https://a.example/").is_err());
    }

    #[test]
    fn a_service_area_is_province_or_regency_codes() {
        assert_eq!(
            parse_service_area(" 35.24, 35.78 ").ok(),
            Some(vec!["35.24".to_owned(), "35.78".to_owned()])
        );
        assert_eq!(parse_service_area("35").ok(), Some(vec!["35".to_owned()]));
        for bad in ["", " , ", "35.24.05", "35.2", "Lamongan", "35-24"] {
            assert!(parse_service_area(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_data_protection_officer_is_checked() {
        assert_eq!(Dpo::checked(None, None).ok(), Some(Dpo::default()));
        let named = Dpo::checked(Some("PPDP Disperindag".into()), Some("ppdp@lamongan.example".into()));
        assert_eq!(named.ok().map(|d| d.email), Some("ppdp@lamongan.example".to_owned()));
        assert!(Dpo::checked(Some(String::new()), None).is_err());
        assert!(Dpo::checked(Some("a\nb".into()), None).is_err());
        assert!(Dpo::checked(Some("x".repeat(201)), None).is_err());
        for email in ["ppdp", "@example.org", "ppdp@localhost", "pp dp@example.org", ""] {
            assert!(Dpo::checked(None, Some(email.into())).is_err(), "{email}");
        }
    }

    #[test]
    fn local_secret_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = local_secret(dir.path()).unwrap();
        let second = local_secret(dir.path()).unwrap();
        assert_eq!(first.expose(), second.expose());
        assert!(first.expose().len() >= MIN_SECRET_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt_secret")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
