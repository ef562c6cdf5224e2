//! Data subjects' rights under UU 27/2022: a person's data export with its processing trail
//! (Pasal 32; here), their requests with deadlines (`requests`), restriction (`restriction`),
//! erasure as anonymisation (`erasure`),
//! and `umkm-api pdp exposure`, whom an account received (Pasal 46; here).

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::{AuditEntry, AuditRow};
use crate::auth::Caller;
use crate::banks::applications::{Application, ApplicationRow};
use crate::businesses::{Business, BusinessRow, View, views};
use crate::db::schema::{applications, audit_log, businesses, consents, products, registrations};
use crate::db::{self, DbConnection};
use crate::disclosures::{self, Classes, Disclosure};
use crate::domain::role::Role;
use crate::error::AppResult;
use crate::persons::consents::{Consent, ConsentRow};
use crate::persons::{self, Person};
use crate::products::{Product, ProductRow};
use crate::state::AppState;
use crate::trainings::{Registration, RegistrationRow};

/// The most disclosures an export lists (the newest); a longer trail is read in full, a page at
/// a time, at `GET /persons/{id}/disclosures`.
pub const MAX_EXPORTED_DISCLOSURES: i64 = 100_000;

/// The rights are the office's work: partners do not see them (404), nor persons at all.
const HIDDEN_FROM: &[Role] = &[Role::Bank, Role::Retail];

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(export_person_data)
        .configure(requests::routes)
        .configure(restriction::routes)
        .configure(erasure::routes);
}

pub mod erasure;
pub mod requests;
pub mod restriction;

/// Everything the office holds about a person, and what it did with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataExport {
    /// When this export was made.
    pub generated_at: DateTime<Utc>,
    /// The person, unmasked.
    pub person: Person,
    /// Their businesses, unmasked.
    pub businesses: Vec<Business>,
    /// Their businesses' products.
    pub products: Vec<Product>,
    /// Their businesses' applications for financing.
    pub applications: Vec<Application>,
    /// Their businesses' registrations for trainings.
    pub registrations: Vec<Registration>,
    /// Their consents, withdrawn ones included.
    pub consents: Vec<Consent>,
    /// The requests they made of their rights, oldest first.
    pub requests: Vec<requests::DataRequest>,
    /// Every write the audit log holds about the person and all of the above, oldest first
    /// (personal values redacted as the audit log keeps them).
    pub writes: Vec<AuditEntry>,
    /// Every answer that carried their data unmasked: to whom, when, through which route, which
    /// classes of data; newest first, at most 100,000.
    pub disclosures: Vec<Disclosure>,
    /// Whether `disclosures` is the whole trail (false past 100,000 entries: page through
    /// `GET /persons/{id}/disclosures` for the rest).
    pub disclosures_complete: bool,
}

/// Export a person's data (UU 27/2022 Pasal 32), for the office to hand to them.
///
/// Everything held about the person — the person, their businesses, products, applications,
/// registrations, consents and requests — and its processing trail: every write from the audit log and
/// every disclosure (who received their data, when, through which route, which classes), as
/// one JSON document. Office staff only (viewers 403; retail and bank users 404). The export
/// is itself a disclosure, recorded before it is sent.
#[utoipa::path(
    tag = "persons",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses(
        (status = 200, description = "The person's data and its trail", body = DataExport),
        (status = 404, description = "No such person", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/persons/{id}/data-export")]
pub async fn export_person_data(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.hidden_from(HIDDEN_FROM)?;
    caller.require_office()?;
    let id = id.into_inner();
    let keys = state.data_keys.current();
    let export = db::run(&state.pool, move |conn| export_of(conn, &keys, id)).await?;
    caller.disclose(&req, Classes::OWNER.with(Classes::FINANCING), [id]).await?;
    Ok(HttpResponse::Ok().json(export))
}

/// Person `id`'s export, read in one transaction (one snapshot on PostgreSQL).
fn export_of(
    conn: &mut DbConnection,
    keys: &crate::crypto::keyring::Keyring,
    id: i64,
) -> AppResult<DataExport> {
    db::write(conn, |conn| {
        if let DbConnection::Pg(pg) = conn {
            // One snapshot for the whole document (each statement would see its own otherwise).
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(pg)?;
        }
        let row = persons::find(conn, id)?;
        let person = Person::of(conn, keys, &row, true)?;
        let business_rows: Vec<BusinessRow> = businesses::table
            .filter(businesses::owner_id.eq(id))
            .order(businesses::id)
            .select(BusinessRow::as_select())
            .load(conn)?;
        let business_ids: Vec<i64> = business_rows.iter().map(BusinessRow::id).collect();
        let businesses = views(keys, business_rows, View::Full)?;
        let products: Vec<Product> = products::table
            .filter(products::business_id.eq_any(&business_ids))
            .order(products::id)
            .select(ProductRow::as_select())
            .load(conn)?
            .into_iter()
            .map(Product::from)
            .collect();
        let application_rows: Vec<ApplicationRow> = applications::table
            .filter(applications::business_id.eq_any(&business_ids))
            .order(applications::id)
            .select(ApplicationRow::as_select())
            .load(conn)?;
        let applications = crate::banks::verdicts::with_verdicts(conn, application_rows)?;
        let registrations: Vec<Registration> = registrations::table
            .filter(registrations::business_id.eq_any(&business_ids))
            .order(registrations::id)
            .select(RegistrationRow::as_select())
            .load(conn)?
            .into_iter()
            .map(Registration::from)
            .collect();
        let consents: Vec<Consent> = consents::table
            .filter(consents::person_id.eq(id))
            .order(consents::id)
            .select(ConsentRow::as_select())
            .load(conn)?
            .into_iter()
            .map(Consent::from)
            .collect();
        let requests = requests::of_person(conn, id)?;
        let concerned = [
            ("person", vec![id]),
            ("business", business_ids.clone()),
            ("product", products.iter().map(|p| p.id).collect()),
            ("application", applications.iter().map(|a| a.id).collect()),
            ("registration", registrations.iter().map(|r| r.id).collect()),
            ("consent", consents.iter().map(|c| c.id).collect()),
            ("data_request", requests.iter().map(|r| r.id).collect()),
        ];
        let mut writes: Vec<AuditEntry> = Vec::new();
        for (entity, ids) in concerned {
            for chunk in ids.chunks(500).filter(|c| !c.is_empty()) {
                let rows: Vec<AuditRow> = audit_log::table
                    .filter(audit_log::entity.eq(entity))
                    .filter(audit_log::entity_id.eq_any(chunk))
                    .select(AuditRow::as_select())
                    .load(conn)?;
                writes.extend(rows.into_iter().map(AuditEntry::from));
            }
        }
        writes.sort_by_key(|w| w.id);
        let mut disclosures = disclosures::of_person(conn, id, None, MAX_EXPORTED_DISCLOSURES + 1)?;
        let disclosures_complete =
            i64::try_from(disclosures.len()).unwrap_or(i64::MAX) <= MAX_EXPORTED_DISCLOSURES;
        disclosures.truncate(usize::try_from(MAX_EXPORTED_DISCLOSURES).unwrap_or(usize::MAX));
        Ok(DataExport {
            generated_at: Utc::now(),
            person,
            businesses,
            products,
            applications,
            registrations,
            consents,
            requests,
            writes,
            disclosures,
            disclosures_complete,
        })
    })
}

/// `umkm-api pdp …`: data protection (UU 27/2022) at the command line.
#[derive(Debug, clap::Subcommand)]
pub enum PdpCommand {
    /// The persons and classes of data one user or API client received over a period, from the
    /// disclosure log (Pasal 46: whom a breach of that account concerns). CSV on standard
    /// output, or JSON.
    Exposure(ExposureArgs),
}

/// `umkm-api pdp exposure`.
#[derive(Debug, clap::Args)]
pub struct ExposureArgs {
    /// The user or API client: its id or its e-mail.
    #[arg(long)]
    pub actor: String,
    /// From (inclusive): an RFC 3339 time or a date (UTC midnight).
    #[arg(long)]
    pub since: String,
    /// Until (exclusive), as `--since`; now when absent.
    #[arg(long)]
    pub until: Option<String>,
    /// JSON instead of CSV.
    #[arg(long)]
    pub json: bool,
}

/// Runs `command` on `conn`; what it prints.
pub fn pdp(conn: &mut DbConnection, command: PdpCommand) -> Result<String, String> {
    let PdpCommand::Exposure(args) = command;
    let user = actor(conn, &args.actor)?;
    let since = instant(&args.since, "--since")?;
    let until = match &args.until {
        Some(until) => instant(until, "--until")?,
        None => db::now(),
    };
    if until <= since {
        return Err("--until must be after --since".into());
    }
    let found = disclosures::exposure(conn, user, since, until).map_err(|e| e.to_string())?;
    if args.json {
        return serde_json::to_string_pretty(&found).map_err(|e| e.to_string());
    }
    let mut csv = String::from("person_id,classes,disclosures,first_at,last_at\n");
    for e in &found {
        let classes: Vec<String> = e.classes.iter().map(|c| format!("{c:?}").to_lowercase()).collect();
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            e.person_id,
            classes.join(";"),
            e.disclosures,
            e.first_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.last_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    Ok(csv)
}

/// The user an `--actor` names: an id or an e-mail, which must exist.
fn actor(conn: &mut DbConnection, actor: &str) -> Result<i64, String> {
    use crate::db::schema::users;
    let found: Option<i64> = match actor.parse::<i64>() {
        Ok(id) => users::table.find(id).select(users::id).first(conn).optional(),
        Err(_) => users::table
            .filter(users::email.eq(actor.trim().to_lowercase()))
            .select(users::id)
            .first(conn)
            .optional(),
    }
    .map_err(|e| e.to_string())?;
    found.ok_or_else(|| format!("--actor {actor:?}: no user or API client has this id or e-mail"))
}

/// An RFC 3339 time or a date, as UTC.
fn instant(value: &str, flag: &str) -> Result<chrono::NaiveDateTime, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc).naive_utc());
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| format!("{flag} {value:?}: expected an RFC 3339 time or a date (YYYY-MM-DD)"))
}
