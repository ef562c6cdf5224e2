//! What a client sends for a business and how it is checked: every field at once, the
//! classification derived, and the values that the database checks need kept even when another
//! field is bad, so that a create, an update or an import row answers one 422 naming them all.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::db::schema::businesses;
use crate::domain::Invalid;
use crate::domain::classification;
use crate::domain::codes::{DistrictCode, Email, Kbli, Nib, Nik, Npwp, Phone};
use crate::error::{AppError, AppResult};
use crate::http::input::{self, Check, Field};
use crate::persons::{OwnerRecord, OwnerRow};

use super::BusinessStatus;
use super::model::BusinessRow;

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
    #[schema(value_type = Option<String>, max_length = 254, example = "srikripik@example.com")]
    pub email: Field<String>,
    /// NIB from OSS: 13 digits, unique.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 20, example = "9120301234567")]
    pub nib: Field<String>,
    /// NPWP: 15 digits, or 16 since 2024.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 30, example = "012345678901000")]
    pub npwp: Field<String>,
    /// Main sector as a 5-digit KBLI 2020 code; divisions 10–33 make the business an IKM.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "10750")]
    pub kbli: Field<String>,
    /// The district (kecamatan) code, which must exist in `/regions`.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "35.24.14")]
    pub district_code: Field<String>,
    /// Village (desa or kelurahan) as text. With `village_code` it is the decree's name (what
    /// is sent is replaced); alone, it gets the code of the village of the district it names
    /// (case, accents and a `Desa`/`Ds.`/`Kelurahan` prefix aside), or stays as typed.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 100, example = "Blimbing")]
    pub village: Field<String>,
    /// The village's code in `/regions`, which must be a village of `district_code` (422
    /// naming both otherwise). A change of district needs the new district's village (or
    /// `null`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "35.24.14.2001")]
    pub village_code: Field<String>,
    /// Street address.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 500, example = "Jl. Raya Paciran No. 12")]
    pub address: Field<String>,
    /// Capital excluding land and buildings (modal usaha), whole rupiah, 0 to 10^15.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_000i64, example = 150000000)]
    pub capital_idr: Field<i64>,
    /// Annual sales (hasil penjualan tahunan), whole rupiah, 0 to 10^15.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_000i64, example = 480000000)]
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
    /// Read-only: since when the owner consents to share their data with every partner bank,
    /// derived from their consent records (`/persons/{id}/consents`, Law 27/2022). A create may
    /// send `null` and a change the value it read; anything else is 422.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub consented_to_bank_sharing_at: Field<DateTime<Utc>>,
}

/// Why a client may not set `consented_to_bank_sharing_at`.
pub const CONSENT_IS_DERIVED: &str = "is derived from the owner's consent records: record consent with POST /api/v1/persons/{id}/consents and withdraw it there";

/// A business as checked: its owner (a person, `crate::persons`) and its own columns.
#[derive(Debug, Clone, Serialize)]
pub struct BusinessRecord {
    /// The owner's fields.
    #[serde(flatten)]
    pub owner: OwnerRecord,
    /// The business's columns.
    #[serde(flatten)]
    pub columns: BusinessColumns,
}

/// The columns a client's fields and the derived classification fill (the owner is a person:
/// `owner_id`, set by the write).
#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
// An absent field is bound as NULL in an INSERT as in an UPDATE (not written as `DEFAULT`):
// the statement is then the same for every business, and prepared once per connection.
#[diesel(table_name = businesses, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct BusinessColumns {
    name: String,
    nib: Option<String>,
    npwp: Option<String>,
    kbli: String,
    #[serde(skip)]
    kbli_division: i32,
    district_code: String,
    village: Option<String>,
    village_code: Option<String>,
    address: String,
    capital_idr: Option<i64>,
    annual_revenue_idr: Option<i64>,
    employees: Option<i32>,
    established_on: Option<NaiveDate>,
    status: String,
    scale: Option<String>,
    scale_basis: Option<String>,
    is_ikm: bool,
    industry_scale: Option<String>,
}

impl BusinessRecord {
    /// What a business with this record contributes to the statistics' summary.
    pub fn facts(&self) -> crate::summary::BusinessFacts {
        self.columns.facts()
    }
}

impl BusinessColumns {
    /// The district, and the village as code and as text (for settling them against the tree,
    /// `crate::regions::villages`).
    pub(super) fn village_parts(&mut self) -> (&str, &mut Option<String>, &mut Option<String>) {
        (&self.district_code, &mut self.village_code, &mut self.village)
    }

    /// The row business `id` is once these columns are inserted for `owner` (whose copy it
    /// holds) at `now`: what a read of it would give, without the read.
    pub(super) fn inserted(
        &self,
        id: i64,
        owner: &OwnerRow,
        consented: Option<NaiveDateTime>,
        now: NaiveDateTime,
    ) -> BusinessRow {
        let (person_name, person_nik, person_phone, person_email) = owner.stored();
        BusinessRow {
            id,
            name: self.name.clone(),
            owner_id: owner.id(),
            nib: self.nib.clone(),
            npwp: self.npwp.clone(),
            kbli: self.kbli.clone(),
            district_code: self.district_code.clone(),
            village: self.village.clone(),
            village_code: self.village_code.clone(),
            address: self.address.clone(),
            capital_idr: self.capital_idr,
            annual_revenue_idr: self.annual_revenue_idr,
            employees: self.employees,
            established_on: self.established_on,
            status: self.status.clone(),
            consented_to_bank_sharing_at: consented,
            scale: self.scale.clone(),
            scale_basis: self.scale_basis.clone(),
            is_ikm: self.is_ikm,
            industry_scale: self.industry_scale.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
            person_name: person_name.to_owned(),
            person_nik: person_nik.to_owned(),
            person_phone: person_phone.to_owned(),
            person_email: person_email.map(str::to_owned),
        }
    }

    /// What a business with these columns contributes to the statistics' summary.
    pub fn facts(&self) -> crate::summary::BusinessFacts {
        crate::summary::BusinessFacts::new(
            &self.district_code,
            self.scale.as_deref(),
            &self.kbli,
            self.is_ikm,
            self.established_on,
            &self.status,
            self.employees,
            self.annual_revenue_idr,
        )
    }
}

/// What checking a business's fields gave: the record to write when every field is good, and
/// the parsed values that the checks needing the database look up even when another field is
/// bad (so that their problems join the same 422).
#[derive(Debug, Default)]
pub struct Checked {
    /// The record, when every field parsed.
    pub record: Option<BusinessRecord>,
    /// The district code, when it parsed: it must exist in `/regions`.
    pub district_code: Option<String>,
    /// The NIB, when one was given and it parsed: it must be unique.
    pub nib: Option<String>,
}

/// Checks every field of `input`, collecting all problems into `check`, and derives the
/// classification. The district's existence and the NIB's uniqueness are the caller's checks.
pub fn check_fields(input: BusinessInput, check: &mut Check, now: NaiveDateTime) -> Checked {
    let name = check.text("name", input.name, 200);
    let owner_name = check.text("owner_name", input.owner_name, 200);
    let nik = check.required("owner_nik", input.owner_nik);
    let owner_nik = check.parse("owner_nik", nik, |v| Nik::parse(&v));
    let phone = check.required("phone", input.phone);
    let phone = check.parse("phone", phone, |v| Phone::parse(&v));
    let email_given = !matches!(input.email, Field::Absent);
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
    let village_code = check.optional_text("village_code", input.village_code, 13);
    let village_code = check.parse("village_code", village_code, |v| {
        use crate::regions::villages::{CODE_FORMAT, is_code};
        if is_code(&v) { Ok(v) } else { Err(Invalid::format(CODE_FORMAT)) }
    });
    let address = check.text("address", input.address, 500);
    let capital = check.optional("capital_idr", input.capital_idr);
    let capital = check.in_range("capital_idr", capital, 0..=crate::summary::MAX_IDR);
    let revenue = check.optional("annual_revenue_idr", input.annual_revenue_idr);
    let revenue = check.in_range("annual_revenue_idr", revenue, 0..=crate::summary::MAX_IDR);
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
    if check.optional("consented_to_bank_sharing_at", input.consented_to_bank_sharing_at).is_some() {
        check.fail("consented_to_bank_sharing_at", "read_only", CONSENT_IS_DERIVED);
    }

    let district_code = district.as_ref().map(|d| d.as_str().to_owned());
    let nib = nib.map(|n| n.as_str().to_owned());
    let record = match (name, owner_name, owner_nik, phone, kbli, district_code.clone(), address) {
        (
            Some(name),
            Some(owner_name),
            Some(owner_nik),
            Some(phone),
            Some(kbli),
            Some(district_code),
            Some(address),
        ) => {
            let scale = classification::umkm_scale(revenue, capital);
            let is_ikm = classification::is_ikm(&kbli);
            let owner = OwnerRecord {
                owner_name,
                owner_nik: owner_nik.as_str().to_owned(),
                phone: phone.as_str().to_owned(),
                email: email.map(|e| e.into_string()),
                email_given,
            };
            let columns = BusinessColumns {
                name,
                nib: nib.clone(),
                npwp: npwp.map(|n| n.as_str().to_owned()),
                kbli_division: i32::from(kbli.division()),
                kbli: kbli.as_str().to_owned(),
                district_code,
                village,
                village_code,
                address,
                capital_idr: capital,
                annual_revenue_idr: revenue,
                employees,
                established_on: established,
                status: status.as_str().to_owned(),
                scale: scale.map(|(s, _)| s.as_str().to_owned()),
                scale_basis: scale.map(|(_, b)| b.as_str().to_owned()),
                is_ikm,
                industry_scale: classification::industry_scale(is_ikm, employees, capital)
                    .map(|s| s.as_str().to_owned()),
            };
            Some(BusinessRecord { owner, columns })
        }
        _ => None,
    };
    Checked { record, district_code, nib }
}

/// Reads `body` as a [`BusinessInput`]. A member that is not a field is recorded in `check` as
/// an unknown field and dropped from `body`, so that the other fields are still checked (and
/// looked up) and join the same 422. A body that is not an object is recorded and gives `None`
/// (serde would read an array as the fields in order).
pub fn read_input(body: &mut Value, check: &mut Check) -> AppResult<Option<BusinessInput>> {
    let Value::Object(map) = body else {
        check.fail("body", "invalid_type", "must be a JSON object");
        return Ok(None);
    };
    loop {
        // serde names the first unknown field only: drop it and read again.
        let text = serde_json::to_string(map).map_err(AppError::internal)?;
        let errors = match crate::http::parse_json::<BusinessInput>(text.as_bytes()) {
            Ok(input) => return Ok(Some(input)),
            Err(AppError::Validation(errors)) => errors,
            Err(other) => return Err(other),
        };
        let unknown = !errors.is_empty()
            && errors.iter().all(|e| e.code == "unknown_field" && map.contains_key(&e.field));
        for e in errors {
            if unknown {
                map.remove(&e.field);
            }
            check.fail(&e.field, &e.code, e.message);
        }
        if !unknown {
            return Ok(None);
        }
    }
}

/// Reads and checks a business as a client sent it (a create or a row of an import): its shape
/// and every field, all into `check`.
///
/// A NUL (which no text takes) is one bad field among the others: recorded, taken out, and the
/// rest checked as usual; a field's NUL is its only problem named.
pub fn check_input(mut body: Value, check: &mut Check, now: NaiveDateTime) -> AppResult<Checked> {
    let nul: Vec<String> = input::nul_paths(&body).iter().map(|field| check.field_name(field)).collect();
    if !nul.is_empty() {
        check.errors.extend(nul.iter().map(|field| crate::http::nul_error(field)));
        body = input::without_nul(body);
    }
    let checked = match read_input(&mut body, check)? {
        Some(input) => check_fields(input, check, now),
        None => Checked::default(),
    };
    let mut named = std::collections::HashSet::new();
    check.errors.retain(|e| !nul.contains(&e.field) || named.insert(e.field.clone()));
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::error::FieldError;
    use serde_json::json;

    fn valid() -> Value {
        json!({"name": "Kripik Ikan Bu Sri", "owner_name": "Sri Wahyuni", "owner_nik": "3524055203900002",
               "phone": "0812-3456-789", "kbli": "10750", "district_code": "35.24.14",
               "address": "Jl. Raya Paciran 12", "annual_revenue_idr": 2_000_000_000i64,
               "capital_idr": 900_000_000i64, "employees": 6})
    }

    fn checked(value: Value) -> (Checked, Vec<FieldError>) {
        let mut check = Check::default();
        let checked = check_input(value, &mut check, db::now()).unwrap();
        (checked, check.errors)
    }

    #[test]
    fn a_valid_business_is_classified() {
        let (checked, errors) = checked(valid());
        assert!(errors.is_empty(), "{errors:?}");
        let record = checked.record.unwrap();
        assert_eq!(record.owner.phone, "+628123456789");
        assert_eq!(record.columns.scale.as_deref(), Some("mikro"));
        assert_eq!(record.columns.scale_basis.as_deref(), Some("revenue"));
        assert!(record.columns.is_ikm);
        assert_eq!(record.columns.industry_scale.as_deref(), Some("kecil"));
        assert_eq!(record.columns.kbli_division, 10);
        assert_eq!(record.columns.status, "active");
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
        let (_, errors) = checked(body);
        let fields: Vec<String> = errors.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "owner_nik", "phone", "kbli", "capital_idr", "employees"]);
    }

    #[test]
    fn unknown_fields_join_the_other_problems_and_the_lookups_still_run() {
        let mut body = valid();
        body["colour"] = json!("red");
        body["scale"] = json!("mikro");
        body["name"] = json!("");
        body["nib"] = json!("9120301234567");
        let (checked, errors) = checked(body);
        let fields: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(fields, [("colour", "unknown_field"), ("scale", "unknown_field"), ("name", "required")]);
        assert!(checked.record.is_none());
        assert_eq!(checked.district_code.as_deref(), Some("35.24.14"), "the district is still looked up");
        assert_eq!(checked.nib.as_deref(), Some("9120301234567"), "the NIB is still looked up");

        let mut check = Check::with_prefix("rows[2].");
        let checked = check_input(json!([1]), &mut check, db::now()).unwrap();
        assert!(checked.record.is_none() && checked.district_code.is_none());
        assert_eq!(check.errors[0].field, "rows[2].body");
    }
}
