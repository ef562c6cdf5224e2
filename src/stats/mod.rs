//! Statistics: aggregates computed in the database, for the dashboards. One file per family of
//! figures; this one routes them and holds what they share: who may see a figure, and the
//! answer as JSON or CSV.

mod businesses;
mod financing;
mod overview;
mod products_retail;
mod trainings;

use utoipa_actix_web::service_config::ServiceConfig;

use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;

use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};
use crate::http::export::Format;
use crate::state::AppState;

pub(crate) use businesses::BusinessKey;
pub use financing::FinancingKey;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(overview::overview_statistics)
        .service(businesses::business_statistics)
        .service(products_retail::product_statistics)
        .service(products_retail::retail_statistics)
        .service(financing::financing_statistics)
        .service(trainings::training_statistics);
}

/// Computes a statistic in the database with `compute` and answers it by [`respond`], with
/// `rows` as its table.
async fn answer<T: Serialize + Send + 'static>(
    req: &HttpRequest,
    state: &AppState,
    rows: Option<&str>,
    compute: impl Fn(&mut DbConnection) -> AppResult<T> + Send + Sync + 'static,
) -> AppResult<HttpResponse> {
    // Statistics tolerate lag: a replica serves them when one may.
    let stats = db::replicas::read(&state.pool, compute).await?;
    respond(req, &stats, rows)
}

/// Answers JSON, or with `Accept: text/csv` (or XLSX's media type) a table: the `rows` array
/// when there is one, else every figure as a `metric,value` line (`businesses.by_scale.mikro,12`).
fn respond(req: &HttpRequest, body: &impl Serialize, rows: Option<&str>) -> AppResult<HttpResponse> {
    let format = Format::of(req);
    if !matches!(format, Format::Csv | Format::Xlsx) {
        return Ok(HttpResponse::Ok().json(body));
    }
    let value = serde_json::to_value(body).map_err(AppError::internal)?;
    let (headers, table): (Vec<String>, Vec<Value>) =
        match rows.and_then(|field| value.get(field)).and_then(Value::as_array) {
            Some(rows) => {
                let headers = rows
                    .first()
                    .and_then(Value::as_object)
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                (headers, rows.clone())
            }
            None => {
                fn flatten(prefix: &str, v: &Value, out: &mut Vec<Value>) {
                    match v {
                        Value::Object(map) => {
                            for (k, v) in map {
                                let path =
                                    if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                                flatten(&path, v, out);
                            }
                        }
                        other => out.push(serde_json::json!({"metric": prefix, "value": other})),
                    }
                }
                let mut figures = Vec::new();
                flatten("", &value, &mut figures);
                (vec!["metric".into(), "value".into()], figures)
            }
        };
    if format == Format::Xlsx {
        let mut sheet = crate::http::xlsx::Sheet::new(headers)?;
        for row in &table {
            sheet.push(row)?;
        }
        return Ok(HttpResponse::Ok().content_type(crate::http::xlsx::MEDIA_TYPE).body(sheet.finish()?));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let cell = crate::http::export::csv_cell;
    writer.write_record(&headers).map_err(AppError::internal)?;
    for row in &table {
        let cells = headers.iter().map(|h| cell(&row[h]).into_owned());
        writer.write_record(cells).map_err(AppError::internal)?;
    }
    let bytes = writer.into_inner().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(bytes))
}
