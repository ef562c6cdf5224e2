//! Logging to standard error: text lines (the default) or, with `LOG_FORMAT=json`, one JSON
//! object per line — `time`, `level`, `target`, `message` and the line's fields (the access log
//! adds `request_id`, `user_id`, `method`, `route`, `path`, `status`, `latency_ms`, `peer`).
//! The filter is `RUST_LOG` (default `info`). No secret or personal data is ever logged: the
//! code logs none, and the access log leaves out query strings and header values.

use std::io::Write;

use crate::config::ConfigError;

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `LOG_FORMAT=text` or unset.
    Text,
    /// `LOG_FORMAT=json`.
    Json,
}

impl Format {
    /// `LOG_FORMAT` from the environment.
    pub fn from_env() -> Result<Format, ConfigError> {
        match std::env::var("LOG_FORMAT").ok().as_deref().map(str::trim) {
            None | Some("") | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => {
                Err(ConfigError { var: "LOG_FORMAT", reason: format!("{other:?} is not text or json") })
            }
        }
    }
}

/// Starts logging in `format`.
pub fn init(format: Format) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == Format::Json {
        builder.format(|buf, record| {
            let line = json_line(record, chrono::Utc::now());
            writeln!(buf, "{line}")
        });
    }
    builder.init();
}

/// A record as one JSON object.
pub fn json_line(record: &log::Record<'_>, time: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let mut line = serde_json::Map::new();
    line.insert("time".into(), time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
    line.insert("level".into(), record.level().as_str().into());
    line.insert("target".into(), record.target().into());
    line.insert("message".into(), record.args().to_string().into());
    let mut fields = Fields(&mut line);
    let _ = record.key_values().visit(&mut fields);
    serde_json::Value::Object(line)
}

struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(x) = value.to_f64() {
            x.into()
        } else if let Some(b) = value.to_bool() {
            b.into()
        } else {
            value.to_string().into()
        };
        self.0.insert(key.as_str().to_owned(), json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_one_json_object_with_its_fields() {
        let kvs: [(&str, log::kv::Value<'_>); 3] =
            [("request_id", "abc-1".into()), ("status", 200u16.into()), ("latency_ms", 1.5f64.into())];
        let record = log::Record::builder()
            .level(log::Level::Info)
            .target("umkm_api::access")
            .args(format_args!("GET /api/v1/regions 200"))
            .key_values(&kvs)
            .build();
        let time = chrono::DateTime::from_timestamp(1_764_400_000, 0).unwrap_or_default();
        let line = json_line(&record, time);
        assert_eq!(line["time"], "2025-11-29T07:06:40.000000Z");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "umkm_api::access");
        assert_eq!(line["message"], "GET /api/v1/regions 200");
        assert_eq!(line["request_id"], "abc-1");
        assert_eq!(line["status"], 200);
        assert_eq!(line["latency_ms"], 1.5);
        assert!(!line.to_string().contains('\n'));
    }
}
