//! Exports of lists: `Accept: text/csv` or `application/x-ndjson` returns every matching row,
//! read from the database in chunks and written as it goes, so memory stays bounded whatever the
//! number of rows; `Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`
//! returns them as one XLSX workbook (`super::xlsx`), sent once complete.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::db::{Checkout, DbConnection, Pool};
use crate::error::{AppError, AppResult};
use crate::spool::{self, Exporter, Slot};

/// Rows fetched per query while exporting.
pub const CHUNK: i64 = 1000;

/// The format of a list answer, from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON page (the default).
    Page,
    /// Every row as CSV with a header line.
    Csv,
    /// Every row as one JSON object per line.
    Ndjson,
    /// Every row in one XLSX worksheet.
    Xlsx,
}

impl Format {
    /// Chooses by `Accept`: a `text/csv`, `application/x-ndjson` or XLSX export, anything else a
    /// page.
    pub fn of(req: &HttpRequest) -> Format {
        let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        let wants = |media: &str| accept.split(',').any(|part| part.trim().starts_with(media));
        if wants("text/csv") {
            Format::Csv
        } else if wants("application/x-ndjson") {
            Format::Ndjson
        } else if wants(super::xlsx::MEDIA_TYPE) {
            Format::Xlsx
        } else {
            Format::Page
        }
    }
}

/// A CSV cell for a JSON value. Text that a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return: OWASP's CSV injection) gets a leading `'`,
/// which spreadsheets show as text and do not run. A signed number written as text (a phone
/// number `+6281…`) runs nothing and stays as it is, as numbers do; NDJSON and JSON keep every
/// text exact. Every CSV the API writes goes through here.
pub fn csv_cell(value: &serde_json::Value) -> std::borrow::Cow<'_, str> {
    use serde_json::Value;
    match value {
        Value::Null => "".into(),
        Value::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !signed_number(s) => {
            format!("'{s}").into()
        }
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

/// `+` or `-`, then digits with at most one decimal point: a number to a spreadsheet.
fn signed_number(s: &str) -> bool {
    let digits = &s[1..];
    s.starts_with(['+', '-'])
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
}

/// Encodes rows as CSV or NDJSON lines.
struct Encoder {
    format: Format,
    wrote_header: bool,
}

impl Encoder {
    fn encode<R: Serialize>(&mut self, rows: &[R]) -> AppResult<web::Bytes> {
        let mut out = Vec::with_capacity(rows.len() * 256);
        match self.format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(&mut out);
                for row in rows {
                    let row = serde_json::to_value(row).map_err(AppError::internal)?;
                    let fields =
                        row.as_object().ok_or_else(|| AppError::internal("a CSV row is not an object"))?;
                    if !self.wrote_header {
                        writer.write_record(fields.keys()).map_err(AppError::internal)?;
                        self.wrote_header = true;
                    }
                    let cells = fields.values().map(csv_cell);
                    writer.write_record(cells.map(|c| c.into_owned())).map_err(AppError::internal)?;
                }
                writer.flush().map_err(AppError::internal)?;
            }
            // An XLSX export is `workbook`'s, not a stream.
            Format::Ndjson | Format::Page | Format::Xlsx => {
                for row in rows {
                    serde_json::to_writer(&mut out, row).map_err(AppError::internal)?;
                    out.push(b'\n');
                }
            }
        }
        Ok(web::Bytes::from(out))
    }
}

/// Streams every row that `next_chunk` yields. `next_chunk(conn, after)` returns up to
/// [`CHUNK`] rows after the given key and the key of its last row. `header_row` is an empty
/// row used only to write the CSV header when there are no rows.
///
/// The rows are read as fast as the database gives them and the connection goes back once the
/// last is read, however slowly the client reads (`crate::spool`); an exporter has at most
/// [`crate::spool::AT_ONCE_PER_EXPORTER`] exports under way.
pub async fn stream<R, K, F>(
    req: &HttpRequest,
    pool: &Pool,
    format: Format,
    empty_csv_header: &'static str,
    mut next_chunk: F,
) -> AppResult<HttpResponse>
where
    R: Serialize + Send + 'static,
    K: Send + 'static,
    F: FnMut(&mut DbConnection, Option<&K>) -> AppResult<(Vec<R>, Option<K>)> + Send + 'static,
{
    let exports = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map(|state| state.exports.clone())
        .ok_or_else(|| AppError::internal("application state missing"))?;
    let exporter = actix_web::HttpMessage::extensions(req).get::<Exporter>().copied();
    let slot = exports.start(exporter.ok_or_else(|| AppError::internal("an export without a caller"))?)?;
    let reading = exports.reading().await?;
    let pool = crate::db::replicas::for_stream(pool);
    if format == Format::Xlsx {
        return workbook(pool, empty_csv_header, next_chunk, slot).await;
    }
    // Check a connection out before answering, so that an unavailable database is a 503.
    let turn = pool.turn().await?;
    let mut conn: Checkout = web::block(move || pool.get_in_turn(turn)).await??;
    let (mut spooler, body) = spool::spooler(slot);
    actix_web::rt::task::spawn_blocking(move || {
        let mut encoder = Encoder { format, wrote_header: false };
        let mut after: Option<K> = None;
        let ended = loop {
            let chunk = next_chunk(&mut conn, after.as_ref()).and_then(|(rows, last)| {
                let bytes = encoder.encode(&rows)?;
                Ok((bytes, rows.len(), last))
            });
            match chunk.and_then(|(bytes, n, last)| Ok((bytes.is_empty() || spooler.put(bytes)?, n, last))) {
                Ok((false, _, _)) => return, // The client went away.
                Ok((true, n, last)) => {
                    if i64::try_from(n).unwrap_or(0) < CHUNK || last.is_none() {
                        break None;
                    }
                    after = last;
                }
                Err(err) => {
                    log::error!("export stopped: {err}");
                    break Some(err);
                }
            }
        };
        let ended = match ended {
            None if format == Format::Csv && !encoder.wrote_header => {
                spooler.put(web::Bytes::from_static(empty_csv_header.as_bytes())).err()
            }
            ended => ended,
        };
        // The connection and the turn at reading go back before the client has read the rest.
        drop(conn);
        drop(reading);
        spooler.finish(ended);
    });
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        _ => "application/x-ndjson",
    };
    Ok(HttpResponse::Ok().content_type(content_type).streaming(body.into_stream()))
}

/// Every row that `next_chunk` yields, as one XLSX workbook (see [`stream`]): built in a
/// temporary file, at most [`super::xlsx::MAX_AT_ONCE`] at a time, then sent from the file.
async fn workbook<R, K, F>(
    pool: Pool,
    header: &'static str,
    mut next_chunk: F,
    slot: Slot,
) -> AppResult<HttpResponse>
where
    R: Serialize + Send + 'static,
    K: Send + 'static,
    F: FnMut(&mut DbConnection, Option<&K>) -> AppResult<(Vec<R>, Option<K>)> + Send + 'static,
{
    static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(super::xlsx::MAX_AT_ONCE);
    let turn = TURNS.acquire().await.map_err(AppError::internal)?;
    let pooled = pool.turn().await?;
    let mut conn: Checkout = web::block(move || pool.get_in_turn(pooled)).await??;
    let file = web::block(move || -> AppResult<std::fs::File> {
        // The columns are the rows' fields, as in CSV; the list's header line when it has none.
        let mut sheet: Option<super::xlsx::Sheet> = None;
        let mut after: Option<K> = None;
        loop {
            let (rows, last) = next_chunk(&mut conn, after.as_ref())?;
            for row in &rows {
                let row = serde_json::to_value(row).map_err(AppError::internal)?;
                let sheet = match &mut sheet {
                    Some(sheet) => sheet,
                    None => {
                        let names = row.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
                        sheet.insert(super::xlsx::Sheet::new(names)?)
                    }
                };
                sheet.push(&row)?;
            }
            if i64::try_from(rows.len()).unwrap_or(0) < CHUNK || last.is_none() {
                break;
            }
            after = last;
        }
        match sheet {
            Some(sheet) => sheet.finish_to_file(),
            None => super::xlsx::Sheet::with_csv_header(header)?.finish_to_file(),
        }
    })
    .await??;
    drop(turn);
    let length = file.metadata().map_err(AppError::internal)?.len();
    let body = spool::Body::of_file(file, slot).into_stream();
    Ok(HttpResponse::Ok()
        .content_type(super::xlsx::MEDIA_TYPE)
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"export.xlsx\""))
        .body(actix_web::body::SizedStream::new(length, body)))
}
