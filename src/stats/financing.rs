//! Financing figures: applications and the amounts requested and approved, grouped by bank,
//! programme or status; a bank sees its own applications of consenting businesses only.

use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::db::DbConnection;
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::state::AppState;

use super::answer;

/// A grouping key of the financing statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinancingKey {
    /// By bank.
    Bank,
    /// By programme.
    Programme,
    /// By application status.
    Status,
}

/// The key of a financing group: a bank's or programme's id, or a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FinancingGroupKey {
    /// A bank's or a programme's id.
    Id(i64),
    /// An application status.
    Status(String),
}

/// Financing figures of one group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FinancingRow {
    /// The bank's id, the programme's id, or the status.
    pub key: FinancingGroupKey,
    /// The bank's code or the programme's name, for bank and programme groups.
    pub label: Option<String>,
    /// Applications.
    pub applications: i64,
    /// Sum requested, rupiah.
    pub requested_idr: i64,
    /// Sum approved, rupiah.
    pub approved_idr: i64,
}

/// `true` as the back end writes it.
fn sql_true(conn: &mut DbConnection) -> &'static str {
    match crate::db::backend(conn) {
        crate::db::Backend::Postgres => "true",
        crate::db::Backend::Sqlite => "1",
    }
}

/// The financing figures grouped by `key`, of the bank `bank` only when it is given.
pub(super) fn financing_rows(
    conn: &mut DbConnection,
    key: FinancingKey,
    bank: Option<i64>,
) -> AppResult<Vec<FinancingRow>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        k: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        label: Option<String>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        requested: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        approved: i64,
    }
    // From the statistics' summary (deltas included): applications by bank, programme, status
    // and consent. Labels are joined on the few groups, not on every application.
    let (column, label, join) = match key {
        FinancingKey::Bank => {
            ("s.bank_partner_id", "MAX(bp.code)", "JOIN bank_partners bp ON bp.id = s.bank_partner_id")
        }
        FinancingKey::Programme => {
            ("s.programme_id", "MAX(fp.name)", "JOIN financing_programmes fp ON fp.id = s.programme_id")
        }
        FinancingKey::Status => ("s.status", "NULL", ""),
    };
    // A bank's figures cover its own applications of consenting businesses, as its lists do.
    let scope = match bank {
        Some(id) => format!(" AND s.bank_partner_id = {id} AND s.consented = {}", sql_true(conn)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT CAST({column} AS TEXT) AS k, {label} AS label, CAST(SUM(s.n) AS BIGINT) AS n, \
         CAST(SUM(s.requested_idr) AS BIGINT) AS requested, \
         CAST(SUM(s.approved_idr) AS BIGINT) AS approved \
         FROM {source} s {join} WHERE 1 = 1{scope} GROUP BY {column} HAVING SUM(s.n) <> 0 ORDER BY {column}",
        source = crate::summary::applications_source(),
    );
    let rows: Vec<Row> = diesel::sql_query(sql).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| FinancingRow {
            key: match r.k.parse::<i64>() {
                Ok(id) if key != FinancingKey::Status => FinancingGroupKey::Id(id),
                _ => FinancingGroupKey::Status(r.k),
            },
            label: r.label,
            applications: r.n,
            requested_idr: r.requested,
            approved_idr: r.approved,
        })
        .collect())
}

/// Grouping of the financing statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FinancingStatsQuery {
    /// `bank`, `programme` or `status`.
    pub group_by: FinancingKey,
}

/// Financing figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FinancingStats {
    /// One row per group.
    pub rows: Vec<FinancingRow>,
}

/// Applications, requested and approved amounts grouped by bank, programme or status. A bank
/// sees its own applications only; retail users get 404.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(FinancingStatsQuery),
    responses((status = 200, description = "One row per group, or CSV", content((FinancingStats = "application/json"), (String = "text/csv", example = json!("key,label,applications,requested_idr,approved_idr\n1,BSI,23,693343000,297993000\n")), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
)]
#[get("/stats/financing")]
pub async fn financing_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<FinancingStatsQuery>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(&[Role::Retail])?;
    let bank = caller.bank_scope();
    let key = query.group_by;
    answer(&req, &state, Some("rows"), move |conn| {
        Ok(FinancingStats { rows: financing_rows(conn, key, bank)? })
    })
    .await
}
