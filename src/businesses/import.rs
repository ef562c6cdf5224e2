//! The import: many businesses at once from CSV or a JSON array, all or nothing, each row
//! checked like a create and written through the same [`model::create`].

use std::collections::HashSet;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::crypto::keyring::Keyring;
use crate::db::schema::businesses;
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult, FieldError};
use crate::http::input::Check;
use crate::state::AppState;

use super::input::{self, BusinessInput};
use super::model;

/// The most rows one import may carry.
pub const MAX_IMPORT_ROWS: usize = 50_000;

/// The answer to an import.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    /// Businesses created.
    #[schema(example = 1000)]
    pub created: usize,
}

/// Columns of a CSV import that hold numbers.
const NUMERIC_COLUMNS: [&str; 3] = ["capital_idr", "annual_revenue_idr", "employees"];

/// Turns CSV text into JSON objects, one per row; empty cells are absent fields.
fn csv_rows(body: &[u8]) -> AppResult<Vec<Value>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(body);
    let headers =
        reader.headers().map_err(|e| AppError::BadRequest(format!("malformed CSV header: {e}")))?.clone();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| AppError::BadRequest(format!("malformed CSV at data row {}: {e}", i + 1)))?;
        let mut object = serde_json::Map::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            let value = match cell.parse::<i64>() {
                Ok(n) if NUMERIC_COLUMNS.contains(&name) => json!(n),
                _ => json!(cell),
            };
            object.insert(name.to_owned(), value);
        }
        rows.push(Value::Object(object));
    }
    Ok(rows)
}

/// Checks and creates all rows in one transaction; nothing is written if any row is bad. Every
/// row is checked whole: its fields, its district against `/regions` and its NIB against the
/// other rows and the stored businesses, even when another of its fields is bad.
pub fn import(conn: &mut DbConnection, keys: &Keyring, user_id: i64, rows: Vec<Value>) -> AppResult<usize> {
    // An empty import is a mistake (a CSV with a header only, or none that names a field).
    if rows.is_empty() {
        return Err(AppError::invalid("rows", "required", "an import needs at least one business"));
    }
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(AppError::invalid(
            "rows",
            "too_many",
            format!("at most {MAX_IMPORT_ROWS} rows per import"),
        ));
    }
    let now = db::now();
    let districts: HashSet<String> =
        crate::regions::served_districts(conn)?.into_iter().map(|(code, _)| code).collect();
    // The service area's villages, and those the rows name wherever they lie (a refusal names
    // a code's own district).
    let villages = {
        let served: Vec<&str> = districts.iter().map(String::as_str).collect();
        let named: Vec<&str> = rows.iter().filter_map(|r| r.get("village_code")?.as_str()).collect();
        let mut villages = crate::regions::villages::Villages::of(conn, &served, &[])?;
        for chunk in named.chunks(10_000) {
            villages.extend(crate::regions::villages::Villages::of(conn, &[], chunk)?);
        }
        villages
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let mut records = Vec::with_capacity(rows.len());
    // The first row to name each NIB, to look up among the stored businesses.
    let mut nibs: Vec<(usize, String)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, row) in rows.into_iter().enumerate() {
        let mut check = Check::with_prefix(format!("rows[{}].", i + 1));
        let mut checked = input::check_input(row, &mut check, now)?;
        if let Some(code) = &checked.district_code
            && !districts.contains(code)
        {
            check.fail("district_code", "not_found", "no district has this code in /regions");
        }
        if let Some(record) = checked.record.as_mut() {
            super::place::settle_with(&villages, &mut record.columns, &mut check);
        }
        if let Some(nib) = checked.nib {
            if seen.insert(nib.clone()) {
                nibs.push((i + 1, nib));
            } else {
                check.fail("nib", "duplicate", "another row has this NIB");
            }
        }
        match checked.record {
            Some(record) if check.errors.is_empty() => records.push(record),
            _ => errors.extend(check.errors),
        }
    }
    // NIBs already registered.
    let mut taken: HashSet<String> = HashSet::new();
    for chunk in nibs.chunks(500) {
        let wanted: Vec<&str> = chunk.iter().map(|(_, nib)| nib.as_str()).collect();
        taken.extend(
            businesses::table
                .filter(businesses::nib.eq_any(wanted))
                .select(businesses::nib.assume_not_null())
                .load::<String>(conn)?,
        );
    }
    for (row, nib) in &nibs {
        if taken.contains(nib) {
            errors.push(FieldError::new(
                format!("rows[{row}].nib"),
                "duplicate",
                "a business with this NIB exists",
            ));
        }
    }
    if !errors.is_empty() {
        // Stable: a row's problems keep their order.
        errors.sort_by_key(|e| row_number(&e.field));
        return Err(AppError::Validation(errors));
    }
    let count = model::create(conn, keys, user_id, &records)?.len();
    // Fresh statistics after a bulk load: without them PostgreSQL plans the next queries for
    // the table it knew before (seen: NIB look-ups of the next import scanning 250,000 rows).
    if count >= 1000
        && let DbConnection::Pg(pg) = conn
    {
        diesel::sql_query("ANALYZE businesses").execute(pg)?;
    }
    Ok(count)
}

fn row_number(field: &str) -> usize {
    field.strip_prefix("rows[").and_then(|r| r.split(']').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Import businesses from CSV (header row with the JSON field names) or a JSON array.
///
/// All or nothing, in one transaction, up to 50,000 rows. A 422 lists every bad field of every
/// bad row as `rows[N].field`, N counting data rows from 1.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    request_body(
        description = "A JSON array of businesses, or CSV with a header row of the same field names",
        content((Vec<BusinessInput> = "application/json"), (String = "text/csv", example = json!("name,owner_name,owner_nik,phone,kbli,district_code,address,employees\nKripik Ikan Bu Sri,Sri Wahyuni,3524055203900002,0812-3456-789,10750,35.24.14,Jl. Raya Paciran No. 12,6\n"))),
    ),
    responses(
        (status = 201, description = "Every row was created", body = ImportResult),
        (status = 409, description = "A concurrent request registered one of the NIBs first (NIBs already \
registered before are 422, `rows[N].nib`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/businesses/import")]
pub async fn import_businesses(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let rows: Vec<Value> = if content_type.starts_with("text/csv") {
        csv_rows(&body)?
    } else if content_type.starts_with("application/json") {
        // NULs kept: each row's checks name them among its other bad fields.
        match crate::http::parse_document(&body)? {
            Value::Array(rows) => rows,
            _ => return Err(AppError::invalid("body", "invalid_type", "must be a JSON array of businesses")),
        }
    } else {
        return Err(AppError::UnsupportedMediaType { expected: "text/csv or application/json" });
    };
    let user = caller.id;
    let keys = state.data_keys.current();
    let created =
        db::run(&state.pool, move |conn| db::write(conn, |conn| import(conn, &keys, user, rows))).await?;
    Ok(HttpResponse::Created().json(ImportResult { created }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_become_fields_and_numbers_stay_numbers() {
        let rows = csv_rows(b"name,employees,nib,village\nA,6,0012300000001,\n").unwrap();
        assert_eq!(rows, [json!({"name": "A", "employees": 6, "nib": "0012300000001"})]);
    }

    #[test]
    fn problems_sort_by_row() {
        assert_eq!(row_number("rows[12].nib"), 12);
        assert_eq!(row_number("body"), 0);
    }
}
