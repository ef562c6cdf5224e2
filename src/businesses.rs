//! Businesses: the UMKM the office coaches. Validated on the way in, classified on every
//! write (PP 7/2021 scale, IKM, Permenperin 64/2016 industry scale), masked on the way out for
//! callers without clearance for personal data.

use std::collections::HashSet;
use utoipa_actix_web::service_config::ServiceConfig;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::db::schema::{businesses, products, regions};
use crate::db::{self, Db, DbConnection};
use crate::domain::classification::{self, Scale};
use crate::domain::codes::{DistrictCode, Email, Kbli, Nib, Nik, Npwp, Phone};
use crate::domain::role::Role;
use crate::domain::{Invalid, masking};
use crate::error::{AppError, AppResult, FieldError};
use crate::http::Json;
use crate::http::create::{self, Created};
use crate::http::etag::{IfMatch, etag};
use crate::http::export::{self, Format};
use crate::http::idempotency::IdempotencyKey;
use crate::http::input::{Check, Field};
use crate::http::list::{self, Page};
use crate::http::list::{Condition, Sort, SortField, page_of};
use crate::http::patch::merge_patch;
use crate::state::AppState;

/// The routes of this module, mounted under `/api/v1` by `crate::app`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_businesses)
        .service(create_business)
        .service(import_businesses)
        .service(get_business)
        .service(update_business)
        .service(delete_business);
}

/// Fields holding personal data: masked for viewers and retail users, redacted in the audit log.
pub const PII: [&str; 3] = ["owner_nik", "phone", "email"];
/// The most rows one import may carry.
pub const MAX_IMPORT_ROWS: usize = 50_000;

/// Whether a business is trading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BusinessStatus {
    /// Trading.
    Active,
    /// Not trading for now.
    Inactive,
    /// Closed for good.
    Closed,
}

impl BusinessStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            BusinessStatus::Active => "active",
            BusinessStatus::Inactive => "inactive",
            BusinessStatus::Closed => "closed",
        }
    }
}

/// A business as a client sends it (create, import, and the fields a merge patch may change).
/// Scale, IKM and industry scale are derived by the server and cannot be sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessInput {
    /// The business's name, 1–200 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, example = "Kripik Ikan Bu Sri")]
    pub name: Field<String>,
    /// The owner's name as on the KTP.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, example = "Sri Wahyuni")]
    pub owner_name: Field<String>,
    /// The owner's NIK: 16 digits, district code, birth date DDMMYY (day + 40 for women), serial. Personal data.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "3524055203900002")]
    pub owner_nik: Field<String>,
    /// Indonesian mobile or landline number; stored as `+62…`. Personal data.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "0812-3456-789")]
    pub phone: Field<String>,
    /// E-mail. Personal data.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "srikripik@example.com")]
    pub email: Field<String>,
    /// NIB from OSS: 13 digits, unique.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "9120301234567")]
    pub nib: Field<String>,
    /// NPWP: 15 digits, or 16 since 2024.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "012345678901000")]
    pub npwp: Field<String>,
    /// Main sector as a 5-digit KBLI 2020 code; divisions 10–33 make the business an IKM.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "10750")]
    pub kbli: Field<String>,
    /// The district (kecamatan) code, which must exist in `/regions`.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "35.24.14")]
    pub district_code: Field<String>,
    /// Village (desa or kelurahan).
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 100, example = "Blimbing")]
    pub village: Field<String>,
    /// Street address.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 500, example = "Jl. Raya Paciran No. 12")]
    pub address: Field<String>,
    /// Capital excluding land and buildings (modal usaha), whole rupiah, ≥ 0.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, example = 150000000)]
    pub capital_idr: Field<i64>,
    /// Annual sales (hasil penjualan tahunan), whole rupiah, ≥ 0.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, example = 480000000)]
    pub annual_revenue_idr: Field<i64>,
    /// Number of workers, 0 to 1,000,000.
    #[serde(default)]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 1000000, example = 6)]
    pub employees: Field<i32>,
    /// The date the business started; not in the future.
    #[serde(default)]
    #[schema(value_type = Option<NaiveDate>, example = "2016-03-01")]
    pub established_on: Field<NaiveDate>,
    /// Trading status; `active` when not given.
    #[serde(default)]
    #[schema(value_type = Option<BusinessStatus>)]
    pub status: Field<BusinessStatus>,
    /// When the owner consented to share their data with partner banks (Law 27/2022); `null`
    /// withdraws consent. Without it no bank sees the business.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub consented_to_bank_sharing_at: Field<DateTime<Utc>>,
}

/// The columns a client's fields and the derived classification fill.
#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = businesses, treat_none_as_null = true)]
pub struct BusinessRecord {
    name: String,
    owner_name: String,
    owner_nik: String,
    phone: String,
    email: Option<String>,
    nib: Option<String>,
    npwp: Option<String>,
    kbli: String,
    #[serde(skip)]
    kbli_division: i32,
    district_code: String,
    village: Option<String>,
    address: String,
    capital_idr: Option<i64>,
    annual_revenue_idr: Option<i64>,
    employees: Option<i32>,
    established_on: Option<NaiveDate>,
    status: String,
    consented_to_bank_sharing_at: Option<NaiveDateTime>,
    scale: Option<String>,
    scale_basis: Option<String>,
    is_ikm: bool,
    industry_scale: Option<String>,
}

/// Checks every field of `input`, collecting all problems into `check`; on success the
/// record to write, classification included. The district's existence is checked by the caller.
pub fn check_input(input: BusinessInput, check: &mut Check, now: NaiveDateTime) -> Option<BusinessRecord> {
    let name = check.text("name", input.name, 200);
    let owner_name = check.text("owner_name", input.owner_name, 200);
    let nik = check.required("owner_nik", input.owner_nik);
    let owner_nik = check.parse("owner_nik", nik, |v| Nik::parse(&v));
    let phone = check.required("phone", input.phone);
    let phone = check.parse("phone", phone, |v| Phone::parse(&v));
    let email = check.optional_text("email", input.email, 254);
    let email = check.parse("email", email, |v| Email::parse(&v));
    let nib = check.optional_text("nib", input.nib, 20);
    let nib = check.parse("nib", nib, |v| Nib::parse(&v));
    let npwp = check.optional_text("npwp", input.npwp, 30);
    let npwp = check.parse("npwp", npwp, |v| Npwp::parse(&v));
    let kbli = check.required("kbli", input.kbli);
    let kbli = check.parse("kbli", kbli, |v| Kbli::parse(&v));
    let district = check.required("district_code", input.district_code);
    let district = check.parse("district_code", district, |v| DistrictCode::parse(&v));
    let village = check.optional_text("village", input.village, 100);
    let address = check.text("address", input.address, 500);
    let capital = check.optional("capital_idr", input.capital_idr);
    let capital = check.in_range("capital_idr", capital, 0..=i64::MAX);
    let revenue = check.optional("annual_revenue_idr", input.annual_revenue_idr);
    let revenue = check.in_range("annual_revenue_idr", revenue, 0..=i64::MAX);
    let employees = check.optional("employees", input.employees);
    let employees = check.in_range("employees", employees, 0..=1_000_000);
    let established = check.optional("established_on", input.established_on);
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
    let established = check.parse("established_on", established, |d| {
        if d < earliest || d > now.date() {
            Err(Invalid::range("must be between 1900-01-01 and today"))
        } else {
            Ok(d)
        }
    });
    let status = check.optional("status", input.status).unwrap_or(BusinessStatus::Active);
    let consent = check.optional("consented_to_bank_sharing_at", input.consented_to_bank_sharing_at);
    let consent = check.parse("consented_to_bank_sharing_at", consent, |t| {
        let t = t.naive_utc();
        // A minute of clock skew between the client and us is tolerated.
        if t > now + chrono::Duration::minutes(1) {
            Err(Invalid::range("must not be in the future"))
        } else {
            Ok(t)
        }
    });

    let (kbli, district) = (kbli?, district?);
    let scale = classification::umkm_scale(revenue, capital);
    let is_ikm = classification::is_ikm(&kbli);
    Some(BusinessRecord {
        name: name?,
        owner_name: owner_name?,
        owner_nik: owner_nik?.as_str().to_owned(),
        phone: phone?.as_str().to_owned(),
        email: email.map(|e| e.into_string()),
        nib: nib.map(|n| n.as_str().to_owned()),
        npwp: npwp.map(|n| n.as_str().to_owned()),
        kbli_division: i32::from(kbli.division()),
        kbli: kbli.as_str().to_owned(),
        district_code: district.as_str().to_owned(),
        village,
        address: address?,
        capital_idr: capital,
        annual_revenue_idr: revenue,
        employees,
        established_on: established,
        status: status.as_str().to_owned(),
        consented_to_bank_sharing_at: consent,
        scale: scale.map(|(s, _)| s.as_str().to_owned()),
        scale_basis: scale.map(|(_, b)| b.as_str().to_owned()),
        is_ikm,
        industry_scale: classification::industry_scale(is_ikm, employees, capital)
            .map(|s| s.as_str().to_owned()),
    })
}

/// A business as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = businesses)]
pub struct Business {
    id: i64,
    name: String,
    owner_name: String,
    owner_nik: String,
    phone: String,
    email: Option<String>,
    nib: Option<String>,
    npwp: Option<String>,
    kbli: String,
    district_code: String,
    village: Option<String>,
    address: String,
    capital_idr: Option<i64>,
    annual_revenue_idr: Option<i64>,
    employees: Option<i32>,
    established_on: Option<NaiveDate>,
    status: String,
    consented_to_bank_sharing_at: Option<NaiveDateTime>,
    scale: Option<String>,
    scale_basis: Option<String>,
    is_ikm: bool,
    industry_scale: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

impl Business {
    /// The record's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The fields a client could send, as JSON: the base a merge patch applies to.
    fn input_json(&self) -> Value {
        let mut value = json!({
            "name": self.name, "owner_name": self.owner_name, "owner_nik": self.owner_nik,
            "phone": self.phone, "email": self.email, "nib": self.nib, "npwp": self.npwp,
            "kbli": self.kbli, "district_code": self.district_code, "village": self.village,
            "address": self.address, "capital_idr": self.capital_idr,
            "annual_revenue_idr": self.annual_revenue_idr, "employees": self.employees,
            "established_on": self.established_on, "status": self.status,
            "consented_to_bank_sharing_at": self.consented_to_bank_sharing_at.map(|t| t.and_utc()),
        });
        if let Value::Object(map) = &mut value {
            map.retain(|_, v| !v.is_null());
        }
        value
    }
}

/// A business as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BusinessView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Owner's name.
    pub owner_name: String,
    /// Owner's NIK; masked (`3524********0002`) for viewers and retail users.
    pub owner_nik: String,
    /// Phone as `+62…`; masked (`+62812****789`) for viewers and retail users.
    pub phone: String,
    /// E-mail; masked for viewers and retail users.
    pub email: Option<String>,
    /// NIB.
    pub nib: Option<String>,
    /// NPWP.
    pub npwp: Option<String>,
    /// KBLI 2020 code.
    pub kbli: String,
    /// District code.
    pub district_code: String,
    /// Village.
    pub village: Option<String>,
    /// Address.
    pub address: String,
    /// Capital excluding land and buildings, rupiah.
    pub capital_idr: Option<i64>,
    /// Annual sales, rupiah.
    pub annual_revenue_idr: Option<i64>,
    /// Workers.
    pub employees: Option<i32>,
    /// Start date.
    pub established_on: Option<NaiveDate>,
    /// Trading status.
    pub status: BusinessStatus,
    /// Consent to share data with partner banks.
    pub consented_to_bank_sharing_at: Option<DateTime<Utc>>,
    /// PP 7/2021 scale: by annual sales when known, else by capital; `null` when neither is known.
    pub scale: Option<Scale>,
    /// `revenue` or `capital`: what decided `scale`.
    pub scale_basis: Option<classification::ScaleBasis>,
    /// Manufacturing (KBLI division 10–33).
    pub is_ikm: bool,
    /// Permenperin 64/2016 industry scale of an IKM, when its workers and capital place it.
    pub industry_scale: Option<classification::IndustryScale>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version; also the `ETag`.
    pub version: i32,
}

fn parse_stored<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

impl BusinessView {
    /// The view of `b` for a caller who does (`pii`) or does not see personal data.
    pub fn of(b: Business, pii: bool) -> BusinessView {
        let mask = |value: String, f: fn(&str) -> String| if pii { value } else { f(&value) };
        BusinessView {
            id: b.id,
            name: b.name,
            owner_name: b.owner_name,
            owner_nik: mask(b.owner_nik, masking::nik),
            phone: mask(b.phone, masking::phone),
            email: b.email.map(|e| mask(e, masking::email)),
            nib: b.nib,
            npwp: b.npwp,
            kbli: b.kbli,
            district_code: b.district_code,
            village: b.village,
            address: b.address,
            capital_idr: b.capital_idr,
            annual_revenue_idr: b.annual_revenue_idr,
            employees: b.employees,
            established_on: b.established_on,
            status: parse_stored(&b.status).unwrap_or(BusinessStatus::Active),
            consented_to_bank_sharing_at: b.consented_to_bank_sharing_at.map(|t| t.and_utc()),
            scale: b.scale.as_deref().and_then(Scale::parse),
            scale_basis: b.scale_basis.as_deref().and_then(parse_stored),
            is_ikm: b.is_ikm,
            industry_scale: b.industry_scale.as_deref().and_then(parse_stored),
            created_at: b.created_at.and_utc(),
            updated_at: b.updated_at.and_utc(),
            version: b.version,
        }
    }
}

/// Who may read businesses: everyone but bank users, who see businesses only as applicants
/// through their own endpoints; for them the businesses do not exist (404).
fn require_reader(caller: &Caller) -> AppResult<()> {
    if caller.role == Role::Bank { Err(AppError::NotFound) } else { Ok(()) }
}

/// Finds a business.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Business> {
    businesses::table.find(id).select(Business::as_select()).first(conn)
}

fn district_exists(conn: &mut DbConnection, code: &str, check: &mut Check) -> QueryResult<()> {
    if !crate::regions::is_district(conn, code)? {
        check.fail("district_code", "not_found", "no district has this code in /regions");
    }
    Ok(())
}

/// Creates a business after checking every field; writes its audit entry.
pub fn create(conn: &mut DbConnection, user_id: i64, input: BusinessInput) -> AppResult<Business> {
    let now = db::now();
    let mut check = Check::default();
    let record = check_input(input, &mut check, now);
    if let Some(record) = &record {
        district_exists(conn, &record.district_code, &mut check)?;
    }
    let record = check.finish(|| record)?;
    let id: i64 = diesel::insert_into(businesses::table)
        .values((
            &record,
            businesses::created_at.eq(now),
            businesses::updated_at.eq(now),
            businesses::version.eq(1),
        ))
        .returning(businesses::id)
        .get_result(conn)?;
    audit::record(conn, user_id, Action::Create, "business", id, &audit::snapshot(&record, &PII))?;
    Ok(find(conn, id)?)
}

/// Applies a JSON merge patch after checking `If-Match`; the merged record is checked whole.
pub fn update(
    conn: &mut DbConnection,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: &Value,
) -> AppResult<Business> {
    if !patch.is_object() {
        return Err(AppError::invalid("body", "invalid_type", "a merge patch must be a JSON object"));
    }
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    let mut merged = current.input_json();
    merge_patch(&mut merged, patch);
    let input: BusinessInput = crate::http::parse_json(merged.to_string().as_bytes())?;
    let now = db::now();
    let mut check = Check::default();
    let record = check_input(input, &mut check, now);
    if let Some(record) = &record
        && record.district_code != current.district_code
    {
        district_exists(conn, &record.district_code, &mut check)?;
    }
    let record = check.finish(|| record)?;
    let before = BusinessRecordRef::from(&current);
    let changed = diesel::update(businesses::table.find(id).filter(businesses::version.eq(current.version)))
        .set((&record, businesses::updated_at.eq(now), businesses::version.eq(current.version + 1)))
        .execute(conn)?;
    if changed == 0 {
        return Err(AppError::PreconditionFailed);
    }
    audit::record(conn, user_id, Action::Update, "business", id, &audit::diff(&before, &record, &PII))?;
    Ok(find(conn, id)?)
}

/// The stored values of a business in the shape of a [`BusinessRecord`], for diffs.
#[derive(Serialize)]
struct BusinessRecordRef {
    #[serde(flatten)]
    fields: Value,
}

impl From<&Business> for BusinessRecordRef {
    fn from(b: &Business) -> Self {
        let mut fields = serde_json::to_value(b).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut fields {
            for derived in ["id", "created_at", "updated_at", "version"] {
                map.remove(derived);
            }
            if let Some(t) = b.consented_to_bank_sharing_at {
                map.insert("consented_to_bank_sharing_at".into(), json!(t));
            }
        }
        BusinessRecordRef { fields }
    }
}

/// Deletes a business and its products (409 while financing applications refer to it).
pub fn delete(conn: &mut DbConnection, user_id: i64, id: i64, if_match: &IfMatch) -> AppResult<()> {
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    let product_ids: Vec<i64> =
        products::table.filter(products::business_id.eq(id)).select(products::id).load(conn)?;
    diesel::delete(businesses::table.find(id)).execute(conn).map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => {
            AppError::Conflict("the business has financing applications; it cannot be deleted".into())
        }
        other => other,
    })?;
    for product_id in product_ids {
        audit::record(conn, user_id, Action::Delete, "product", product_id, &json!({"business_id": id}))?;
    }
    audit::record(
        conn,
        user_id,
        Action::Delete,
        "business",
        id,
        &audit::snapshot(&BusinessRecordRef::from(&current), &PII),
    )?;
    Ok(())
}

/// The columns a business list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessSort {
    /// `id`.
    Id,
    /// `name`.
    Name,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`: with `updated_since`, the incremental pull.
    UpdatedAt,
    /// `district_code`.
    DistrictCode,
}

impl SortField for BusinessSort {
    type Table = businesses::table;
    type Row = Business;
    const ID: Self = BusinessSort::Id;
    const ALL: &'static [(&'static str, Self)] = &[
        ("id", BusinessSort::Id),
        ("name", BusinessSort::Name),
        ("created_at", BusinessSort::CreatedAt),
        ("updated_at", BusinessSort::UpdatedAt),
        ("district_code", BusinessSort::DistrictCode),
    ];

    crate::sort_columns!(businesses;
        BusinessSort::Id => (id, Int),
        BusinessSort::Name => (name, Text),
        BusinessSort::CreatedAt => (created_at, Time),
        BusinessSort::UpdatedAt => (updated_at, Time),
        BusinessSort::DistrictCode => (district_code, Text),
    );
}

/// Filters of the business list, the exports and the business statistics.
#[derive(Debug, Clone, Default)]
pub struct BusinessFilter {
    /// District code.
    pub district: Option<String>,
    /// Scale, or `unknown` for none.
    pub scale: Option<ScaleFilter>,
    /// IKM or not.
    pub is_ikm: Option<bool>,
    /// Status.
    pub status: Option<BusinessStatus>,
    /// A 5-digit KBLI code, or a 2-digit division.
    pub kbli: Option<String>,
    /// Case-insensitive substring of the name.
    pub q: Option<String>,
    /// Started on or after.
    pub established_from: Option<NaiveDate>,
    /// Started on or before.
    pub established_to: Option<NaiveDate>,
    /// Changed at or after.
    pub updated_since: Option<DateTime<Utc>>,
}

/// A `scale` filter value: a scale, or `unknown` for businesses without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScaleFilter {
    /// Mikro.
    Mikro,
    /// Kecil.
    Kecil,
    /// Menengah.
    Menengah,
    /// Besar.
    Besar,
    /// Neither revenue nor capital known.
    Unknown,
}

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `\` as the escape character.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl BusinessFilter {
    /// Checks values that the query's types alone cannot.
    pub fn validate(&self) -> AppResult<()> {
        if let Some(kbli) = &self.kbli
            && !(matches!(kbli.len(), 2 | 5) && kbli.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(AppError::BadRequest("kbli must be a 5-digit code or a 2-digit division".into()));
        }
        if let Some(district) = &self.district {
            DistrictCode::parse(district)
                .map_err(|e| AppError::BadRequest(format!("district {}", e.message)))?;
        }
        if self.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(AppError::BadRequest("q must be at most 200 characters".into()));
        }
        Ok(())
    }

    /// The filtered query.
    pub fn query(&self) -> businesses::BoxedQuery<'static, Db> {
        businesses::table.filter(self.condition()).into_boxed()
    }

    /// The filters as one condition (for queries that group rather than page).
    pub fn condition(&self) -> Condition<businesses::table> {
        use businesses::dsl as b;
        let mut all: Vec<Condition<businesses::table>> = Vec::new();
        if let Some(district) = &self.district {
            all.push(Box::new(b::district_code.eq(district.clone())));
        }
        match self.scale {
            None => {}
            Some(ScaleFilter::Unknown) => all.push(Box::new(b::scale.is_null())),
            Some(s) => {
                let name = match s {
                    ScaleFilter::Mikro => "mikro",
                    ScaleFilter::Kecil => "kecil",
                    ScaleFilter::Menengah => "menengah",
                    _ => "besar",
                };
                all.push(Box::new(b::scale.assume_not_null().eq(name)));
            }
        }
        if let Some(ikm) = self.is_ikm {
            all.push(Box::new(b::is_ikm.eq(ikm)));
        }
        if let Some(status) = self.status {
            all.push(Box::new(b::status.eq(status.as_str())));
        }
        if let Some(kbli) = &self.kbli {
            all.push(match kbli.len() {
                2 => Box::new(b::kbli_division.eq(kbli.parse::<i32>().unwrap_or(-1))),
                _ => Box::new(b::kbli.eq(kbli.clone())),
            });
        }
        if let Some(text) = self.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            all.push(Box::new(lower(b::name).like(like_pattern(text)).escape('\\')));
        }
        if let Some(from) = self.established_from {
            all.push(Box::new(b::established_on.assume_not_null().ge(from)));
        }
        if let Some(to) = self.established_to {
            all.push(Box::new(b::established_on.assume_not_null().le(to)));
        }
        if let Some(since) = self.updated_since {
            all.push(Box::new(b::updated_at.ge(since.naive_utc())));
        }
        all.into_iter()
            .reduce(|a, b| Box::new(a.and(b)))
            .unwrap_or_else(|| Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 1")))
    }
}

/// Filters, sort and paging of the business list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BusinessQuery {
    /// District code (`35.24.05`).
    pub district: Option<String>,
    /// PP 7/2021 scale, or `unknown`.
    pub scale: Option<ScaleFilter>,
    /// Manufacturing businesses only (`true`) or none of them (`false`).
    pub is_ikm: Option<bool>,
    /// Trading status.
    pub status: Option<BusinessStatus>,
    /// A 5-digit KBLI code, or a 2-digit division (`10` for food manufacturing).
    pub kbli: Option<String>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// Started on or after this date.
    pub established_from: Option<NaiveDate>,
    /// Started on or before this date.
    pub established_to: Option<NaiveDate>,
    /// Changed at or after this time; with `sort=updated_at`, an incremental pull.
    pub updated_since: Option<DateTime<Utc>>,
    /// Comma-separated keys, `-` for descending: `id`, `name`, `created_at`, `updated_at`,
    /// `district_code` (default `id`).
    pub sort: Option<String>,
    /// Rows per page, 1 to 500 (default 50). Ignored by CSV and NDJSON exports.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (issued for the same `sort`).
    pub cursor: Option<String>,
    /// Add the exact `total` of matching rows.
    pub count: Option<bool>,
}

impl BusinessQuery {
    fn filter(&self) -> BusinessFilter {
        BusinessFilter {
            district: self.district.clone(),
            scale: self.scale,
            is_ikm: self.is_ikm,
            status: self.status,
            kbli: self.kbli.clone(),
            q: self.q.clone(),
            established_from: self.established_from,
            established_to: self.established_to,
            updated_since: self.updated_since,
        }
    }
}

/// One page (or chunk) of businesses after `after`.
pub fn page(
    conn: &mut DbConnection,
    filter: &BusinessFilter,
    sort: &Sort<BusinessSort>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<Business>, Option<String>)> {
    let mut q = filter.query();
    if let Some(cursor) = after {
        q = q.filter(sort.after(cursor)?);
    }
    for (field, dir) in &sort.keys {
        q = q.then_order_by(field.order(*dir));
    }
    let rows: Vec<Business> = q.limit(limit + 1).select(Business::as_select()).load(conn)?;
    Ok(page_of(rows, limit, sort))
}

/// The header line of an empty CSV export.
const CSV_HEADER: &str = "id,name,owner_name,owner_nik,phone,email,nib,npwp,kbli,district_code,village,address,\
capital_idr,annual_revenue_idr,employees,established_on,status,consented_to_bank_sharing_at,scale,scale_basis,\
is_ikm,industry_scale,created_at,updated_at,version\n";

/// List businesses (or export them all).
///
/// With `Accept: text/csv` or `Accept: application/x-ndjson` every matching row is streamed
/// (no page limit) in the same order. Bank users get 404: they see businesses only as
/// applicants. Viewers and retail users see personal data masked.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(BusinessQuery),
    responses((status = 200, description = "A page of businesses, or all of them as CSV or NDJSON",
        content(
            (Page<BusinessView> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ))),
)]
#[get("/businesses")]
pub async fn list_businesses(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<BusinessQuery>,
) -> AppResult<HttpResponse> {
    require_reader(&caller)?;
    let query = query.into_inner();
    let filter = query.filter();
    filter.validate()?;
    let sort = Sort::<BusinessSort>::parse(query.sort.as_deref(), "id")?;
    let pii = caller.sees_pii();
    let format = Format::of(&req);
    if format != Format::Page {
        let start = query.cursor.clone();
        return export::stream(&state.pool, format, CSV_HEADER, move |conn, after: Option<&String>| {
            let after = after.or(start.as_ref()).map(String::as_str);
            let (rows, next) = page(conn, &filter, &sort, after, export::CHUNK)?;
            Ok((rows.into_iter().map(|b| BusinessView::of(b, pii)).collect::<Vec<_>>(), next))
        })
        .await;
    }
    let limit = list::limit(query.limit)?;
    let count = query.count == Some(true);
    let result = db::run(&state.pool, move |conn| {
        let total = if count { Some(filter.query().count().get_result(conn)?) } else { None };
        let (rows, next_cursor) = page(conn, &filter, &sort, query.cursor.as_deref(), limit)?;
        let data = rows.into_iter().map(|b| BusinessView::of(b, pii)).collect();
        Ok(Page { data, next_cursor, total })
    })
    .await?;
    Ok(HttpResponse::Ok().json(result))
}

fn business_response(status: StatusCode, business: Business, pii: bool) -> HttpResponse {
    HttpResponse::build(status).insert_header(etag(business.version)).json(BusinessView::of(business, pii))
}

/// Create a business. `Idempotency-Key` makes a retried create return the first answer.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the key on a retry to get the first answer instead of a second business")),
    request_body = BusinessInput,
    responses(
        (status = 201, description = "The new business", body = BusinessView,
            headers(("Location" = String, description = "The business's URL"), ("ETag" = String, description = "The version"))),
        (status = 409, description = "The NIB is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/businesses")]
pub async fn create_business(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let input: BusinessInput = crate::http::parse_json(body.0.to_string().as_bytes())?;
    let user = caller.id;
    create::once(&state.pool, user, "POST /businesses", key, body.0, move |conn| {
        let business = create(conn, user, input)?;
        Ok(Created {
            location: format!("/api/v1/businesses/{}", business.id),
            version: business.version,
            body: serde_json::to_value(BusinessView::of(business, true)).map_err(AppError::internal)?,
        })
    })
    .await
}

/// Get a business.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The business's id")),
    responses((status = 200, description = "The business", body = BusinessView,
        headers(("ETag" = String, description = "The version")))),
)]
#[get("/businesses/{id}")]
pub async fn get_business(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    require_reader(&caller)?;
    let id = id.into_inner();
    let business = db::run(&state.pool, move |conn| Ok(find(conn, id)?)).await?;
    Ok(business_response(StatusCode::OK, business, caller.sees_pii()))
}

/// Change a business (JSON merge patch; `null` clears a field; honours `If-Match`).
///
/// The patch is applied to the stored fields and the result is checked as a whole, so a 422
/// lists every field that would be invalid. The classification is derived again.
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The business's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the business changed since"),
    ),
    request_body(content = BusinessInput, content_type = "application/merge-patch+json",
        description = "Any subset of the fields of a business"),
    responses(
        (status = 200, description = "The changed business", body = BusinessView,
            headers(("ETag" = String, description = "The new version"))),
        (status = 409, description = "The NIB is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/businesses/{id}")]
pub async fn update_business(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let id = id.into_inner();
    let user = caller.id;
    let business =
        db::run(&state.pool, move |conn| db::write(conn, |conn| update(conn, user, id, &if_match, &body.0)))
            .await?;
    Ok(business_response(StatusCode::OK, business, true))
}

/// Delete a business and its products (honours `If-Match`).
#[utoipa::path(
    tag = "businesses",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "The business's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    responses(
        (status = 204, description = "Deleted, with its products"),
        (status = 409, description = "The business has financing applications", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/businesses/{id}")]
pub async fn delete_business(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> AppResult<HttpResponse> {
    caller.require_office()?;
    let id = id.into_inner();
    let user = caller.id;
    db::run(&state.pool, move |conn| db::write(conn, |conn| delete(conn, user, id, &if_match))).await?;
    Ok(HttpResponse::NoContent().finish())
}

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

/// Checks and creates all rows in one transaction; nothing is written if any row is bad.
pub fn import(conn: &mut DbConnection, user_id: i64, rows: Vec<Value>) -> AppResult<usize> {
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(AppError::invalid(
            "rows",
            "too_many",
            format!("at most {MAX_IMPORT_ROWS} rows per import"),
        ));
    }
    let now = db::now();
    let districts: HashSet<String> = regions::table
        .filter(regions::level.eq("district"))
        .select(regions::code)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut errors: Vec<FieldError> = Vec::new();
    let mut records = Vec::with_capacity(rows.len());
    let mut nibs: HashSet<String> = HashSet::new();
    for (i, row) in rows.into_iter().enumerate() {
        let prefix = format!("rows[{}].", i + 1);
        let input: BusinessInput = match crate::http::parse_json(row.to_string().as_bytes()) {
            Ok(input) => input,
            Err(AppError::Validation(problems)) => {
                errors.extend(
                    problems.into_iter().map(|e| FieldError { field: format!("{prefix}{}", e.field), ..e }),
                );
                continue;
            }
            Err(other) => return Err(other),
        };
        let mut check = Check::with_prefix(prefix);
        if let Some(record) = check_input(input, &mut check, now) {
            if !districts.contains(&record.district_code) {
                check.fail("district_code", "not_found", "no district has this code in /regions");
            }
            if let Some(nib) = &record.nib
                && !nibs.insert(nib.clone())
            {
                check.fail("nib", "duplicate", "another row has this NIB");
            }
            if check.errors.is_empty() {
                records.push((i + 1, record));
            }
        }
        errors.extend(check.errors);
    }
    // NIBs already registered.
    let wanted: Vec<String> = nibs.into_iter().collect();
    let mut taken: HashSet<String> = HashSet::new();
    for chunk in wanted.chunks(500) {
        taken.extend(
            businesses::table
                .filter(businesses::nib.eq_any(chunk))
                .select(businesses::nib.assume_not_null())
                .load::<String>(conn)?,
        );
    }
    for (row, record) in &records {
        if record.nib.as_ref().is_some_and(|n| taken.contains(n)) {
            errors.push(FieldError::new(
                format!("rows[{row}].nib"),
                "duplicate",
                "a business with this NIB exists",
            ));
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| row_number(&e.field));
        return Err(AppError::Validation(errors));
    }
    let count = records.len();
    for chunk in records.chunks(500) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(_, r)| {
                (r, businesses::created_at.eq(now), businesses::updated_at.eq(now), businesses::version.eq(1))
            })
            .collect();
        // One multi-row INSERT on PostgreSQL; SQLite, in process, takes the rows one by one
        // (diesel's multi-back-end connection has no batch insert).
        let ids: Vec<i64> = match conn {
            DbConnection::Pg(pg) => diesel::insert_into(businesses::table)
                .values(values)
                .returning(businesses::id)
                .get_results(pg)?,
            DbConnection::Sqlite(sqlite) => values
                .into_iter()
                .map(|row| {
                    diesel::insert_into(businesses::table)
                        .values(row)
                        .returning(businesses::id)
                        .get_result(sqlite)
                })
                .collect::<QueryResult<_>>()?,
        };
        let entries: Vec<(i64, Value)> =
            ids.iter().zip(chunk).map(|(id, (_, record))| (*id, audit::snapshot(record, &PII))).collect();
        audit::record_many(conn, user_id, Action::Create, "business", &entries)?;
    }
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
        content((Vec<BusinessInput> = "application/json"), (String = "text/csv")),
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
        match crate::http::parse_json::<Value>(&body)? {
            Value::Array(rows) => rows,
            _ => return Err(AppError::invalid("body", "invalid_type", "must be a JSON array of businesses")),
        }
    } else {
        return Err(AppError::UnsupportedMediaType { expected: "text/csv or application/json" });
    };
    let user = caller.id;
    let created = db::run(&state.pool, move |conn| db::write(conn, |conn| import(conn, user, rows))).await?;
    Ok(HttpResponse::Created().json(ImportResult { created }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        json!({"name": "Kripik Ikan Bu Sri", "owner_name": "Sri Wahyuni", "owner_nik": "3524055203900002",
               "phone": "0812-3456-789", "kbli": "10750", "district_code": "35.24.14",
               "address": "Jl. Raya Paciran 12", "annual_revenue_idr": 2_000_000_000i64,
               "capital_idr": 900_000_000i64, "employees": 6})
    }

    fn checked(value: Value) -> Result<BusinessRecord, Vec<FieldError>> {
        let input: BusinessInput = serde_json::from_value(value).unwrap();
        let mut check = Check::default();
        let record = check_input(input, &mut check, db::now());
        check.finish(|| record).map_err(|e| match e {
            AppError::Validation(errors) => errors,
            other => panic!("{other}"),
        })
    }

    #[test]
    fn a_valid_business_is_classified() {
        let record = checked(valid()).unwrap();
        assert_eq!(record.phone, "+628123456789");
        assert_eq!(record.scale.as_deref(), Some("mikro"));
        assert_eq!(record.scale_basis.as_deref(), Some("revenue"));
        assert!(record.is_ikm);
        assert_eq!(record.industry_scale.as_deref(), Some("kecil"));
        assert_eq!(record.kbli_division, 10);
        assert_eq!(record.status, "active");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut body = valid();
        body["owner_nik"] = json!("3524057203900002");
        body["phone"] = json!("12345");
        body["kbli"] = json!("04100");
        body["capital_idr"] = json!(-1);
        body["employees"] = json!("many");
        body["name"] = json!("");
        let fields: Vec<String> = checked(body).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "owner_nik", "phone", "kbli", "capital_idr", "employees"]);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_A\\"), "%50\\%\\_a\\\\%");
    }
}
