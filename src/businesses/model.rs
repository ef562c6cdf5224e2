//! What a business is: the stored row and the API's view, and the one create, update and
//! delete, each writing its audit entry after the record in the same transaction. The handlers,
//! the import and other modules write businesses only through these.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::audit::{self, Action};
use crate::crypto::keyring::Keyring;
use crate::db::schema::{businesses, products, registrations};
use crate::db::{self, DbConnection};
use crate::disclosures::Classes;
use crate::domain::classification::{self, Scale};
use crate::domain::masking;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult, OnConflict};
use crate::http::etag::IfMatch;
use crate::http::input::Check;
use crate::http::patch::{merged, require_object};
use crate::persons::{self as persons_model, Owner, OwnerRow};
use crate::summary::{BusinessFacts, Deltas, Figure};

use super::input::{BusinessInput, BusinessRecord, check_fields, check_input, read_input};
use super::place::{district_exists, rematch_text_alone, settle_village};

/// Fields holding personal data: masked for viewers and retail users, redacted in the audit log.
pub const PII: [&str; 3] = ["owner_nik", "phone", "email"];

/// Fields of the API's view that the server derives: a client cannot send them (`owner_id`
/// follows `owner_nik`).
const DERIVED: [&str; 6] =
    ["owner_id", "scale", "scale_basis", "is_ikm", "industry_scale", "consented_to_bank_sharing_at"];

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

/// A business as stored, personal data unmasked. Its fields are seen only inside
/// `crate::businesses`; answers are built through [`Business`], which masks personal data for
/// callers without clearance.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = businesses)]
pub struct BusinessRow {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) owner_id: i64,
    pub(super) nib: Option<String>,
    pub(super) npwp: Option<String>,
    pub(super) kbli: String,
    pub(super) district_code: String,
    pub(super) village: Option<String>,
    pub(super) village_code: Option<String>,
    pub(super) address: String,
    pub(super) capital_idr: Option<i64>,
    pub(super) annual_revenue_idr: Option<i64>,
    pub(super) employees: Option<i32>,
    pub(super) established_on: Option<NaiveDate>,
    pub(super) status: String,
    pub(super) consented_to_bank_sharing_at: Option<NaiveDateTime>,
    pub(super) scale: Option<String>,
    pub(super) scale_basis: Option<String>,
    pub(super) is_ikm: bool,
    pub(super) industry_scale: Option<String>,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
    pub(super) version: i32,
    /// The owner's name and sealed fields, copied from the person (`crate::persons::OwnerRow`).
    #[serde(skip)]
    pub(super) person_name: String,
    #[serde(skip)]
    pub(super) person_nik: String,
    #[serde(skip)]
    pub(super) person_phone: String,
    #[serde(skip)]
    pub(super) person_email: Option<String>,
}

impl BusinessRow {
    /// Its owner, opened from the business's copy (which it leaves empty).
    pub fn take_owner(&mut self, keys: &Keyring) -> AppResult<Owner> {
        Owner::of(
            self.owner_id,
            std::mem::take(&mut self.person_name),
            &self.person_nik,
            &self.person_phone,
            self.person_email.as_deref(),
            keys,
        )
    }

    /// The record's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Its owner's id (a person).
    pub fn owner_id(&self) -> i64 {
        self.owner_id
    }

    /// What this business contributes to the statistics' summary.
    pub fn facts(&self) -> BusinessFacts {
        BusinessFacts::new(
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

/// A business as the API shows it. What each role sees of it (masked: `S*** W***`,
/// `3524********0002`, `+62812****789`, `s***@example.com`, `Jl. ***`, `01**********000`;
/// withheld: `null`):
///
/// | field | admin | officer | viewer | retail | bank |
/// | --- | --- | --- | --- | --- | --- |
/// | `id`, `name`, `nib`, `kbli`, `district_code`, `village`, `village_code`, `employees`, `established_on`, `status`, `scale`, `scale_basis`, `is_ikm`, `industry_scale`, `created_at`, `updated_at`, `version` | shown | shown | shown | shown | 404 |
/// | `owner_name`, `owner_nik`, `phone`, `email`, `address` | shown | shown | masked | masked | 404 |
/// | `npwp` | shown | shown | masked | withheld | 404 |
/// | `owner_id`, `capital_idr`, `annual_revenue_idr`, `consented_to_bank_sharing_at` | shown | shown | shown | withheld | 404 |
///
/// A retail user sees only the businesses with a product in its partner's curations (any
/// other is 404, and absent from its lists and exports); a bank's user sees businesses only as
/// applicants, with consent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = BusinessView)]
pub struct Business {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The owner, a person (`/persons/{owner_id}`): the four owner fields are theirs; `null` for
    /// retail users (a curation needs no link between one owner's businesses).
    pub owner_id: Option<i64>,
    /// Owner's name; masked (`S*** W***`) for viewers and retail users.
    pub owner_name: String,
    /// Owner's NIK; masked (`3524********0002`) for viewers and retail users.
    pub owner_nik: String,
    /// Phone as `+62…`; masked (`+62812****789`) for viewers and retail users.
    pub phone: String,
    /// E-mail; masked for viewers and retail users.
    pub email: Option<String>,
    /// NIB.
    pub nib: Option<String>,
    /// NPWP; masked for viewers, `null` for retail users.
    pub npwp: Option<String>,
    /// KBLI 2020 code.
    pub kbli: String,
    /// District code.
    pub district_code: String,
    /// Village: the decree's name when `village_code` is set, else the text as typed.
    pub village: Option<String>,
    /// The village's code in `/regions`; `null` when none is known.
    pub village_code: Option<String>,
    /// Address; masked (`Jl. ***`) for viewers and retail users.
    pub address: String,
    /// Capital excluding land and buildings, rupiah; `null` for retail users.
    pub capital_idr: Option<i64>,
    /// Annual sales, rupiah; `null` for retail users.
    pub annual_revenue_idr: Option<i64>,
    /// Workers.
    pub employees: Option<i32>,
    /// Start date.
    pub established_on: Option<NaiveDate>,
    /// Trading status.
    pub status: BusinessStatus,
    /// Consent to share data with partner banks; `null` for retail users.
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

/// The enum value stored as `name` (its serde name), read without allocating: a list page
/// parses three per row.
fn parse_stored<'a, T: Deserialize<'a>>(name: &'a str) -> Option<T> {
    use serde::de::IntoDeserializer;
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
}

/// How much of a business a caller sees: the role × field table of the README and of
/// [`Business`]'s documentation (`tests/api/disclosure.rs` holds the answers to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Office staff: every field as stored.
    Full,
    /// Viewers: the owner's name, NIK, phone, e-mail and NPWP and the address masked.
    Masked,
    /// Retail users, for a curation: masked as viewers, and neither the money, nor the NPWP,
    /// nor the consent to banks.
    Curation,
}

impl View {
    /// The view of a caller of `role` (a bank's user sees no business: 404 before this).
    pub fn of(role: Role) -> View {
        match role {
            Role::Admin | Role::Officer => View::Full,
            Role::Retail => View::Curation,
            Role::Viewer | Role::Bank => View::Masked,
        }
    }

    /// What an answer in this view records of its owners (`crate::disclosures`): to office
    /// staff in full; to a retail partner masked (a third party: a masked owner beside their
    /// business's name and village is pseudonymised, not anonymous; the entry shows `masked`);
    /// nothing for a viewer's.
    pub fn recorded(self) -> Option<Classes> {
        match self {
            View::Full => Some(Classes::OWNER),
            View::Curation => Some(Classes::OWNER),
            View::Masked => None,
        }
    }
}

impl Business {
    /// The view of `b`, owned by `owner`, for a caller who sees it as `view`.
    pub fn of(b: BusinessRow, owner: Owner, view: View) -> Business {
        let full = view == View::Full;
        let curation = view == View::Curation;
        let mask = |value: String, f: fn(&str) -> String| if full { value } else { f(&value) };
        Business {
            id: b.id,
            name: b.name,
            owner_id: Some(b.owner_id).filter(|_| !curation),
            owner_name: mask(owner.name, masking::name),
            owner_nik: mask(owner.nik, masking::nik),
            phone: mask(owner.phone, masking::phone),
            email: owner.email.map(|e| mask(e, masking::email)),
            nib: b.nib,
            npwp: b.npwp.filter(|_| !curation).map(|n| mask(n, masking::npwp)),
            kbli: b.kbli,
            district_code: b.district_code,
            village: b.village,
            village_code: b.village_code,
            address: mask(b.address, masking::address),
            capital_idr: b.capital_idr.filter(|_| !curation),
            annual_revenue_idr: b.annual_revenue_idr.filter(|_| !curation),
            employees: b.employees,
            established_on: b.established_on,
            status: parse_stored(&b.status).unwrap_or(BusinessStatus::Active),
            consented_to_bank_sharing_at: b
                .consented_to_bank_sharing_at
                .filter(|_| !curation)
                .map(|t| t.and_utc()),
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

/// Finds a business.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<BusinessRow> {
    businesses::table.find(id).select(BusinessRow::as_select()).first(conn)
}

/// Finds a business and its owner, opened.
pub fn find_owned(conn: &mut DbConnection, keys: &Keyring, id: i64) -> AppResult<(BusinessRow, Owner)> {
    let mut business = find(conn, id)?;
    let owner = business.take_owner(keys)?;
    Ok((business, owner))
}

/// The views of `rows` for `view`, their owners opened from their copies.
pub fn views(keys: &Keyring, rows: Vec<BusinessRow>, view: View) -> AppResult<Vec<Business>> {
    views_withholding(keys, rows, view, &HashSet::new())
}

/// [`views`], the businesses of the owners `withheld` masked whatever `view` is.
pub fn views_withholding(
    keys: &Keyring,
    rows: Vec<BusinessRow>,
    view: View,
    withheld: &HashSet<i64>,
) -> AppResult<Vec<Business>> {
    rows.into_iter()
        .map(|mut b| {
            let view = if view == View::Full && withheld.contains(&b.owner_id) { View::Masked } else { view };
            let owner = b.take_owner(keys)?;
            Ok(Business::of(b, owner, view))
        })
        .collect()
}

/// Checks a new business whole: every field, and its district against `/regions`, in one 422.
pub fn check_new(conn: &mut DbConnection, body: Value) -> AppResult<BusinessRecord> {
    let mut check = Check::default();
    let mut checked = check_input(body, &mut check, db::now())?;
    if let Some(code) = &checked.district_code {
        district_exists(conn, code, &mut check)?;
    }
    settle_village(conn, &mut checked, &mut check)?;
    check.finish(|| checked.record)
}

/// Creates businesses from checked records, each with its audit entry and its part of the
/// statistics' summary; the new rows, in order. The one way a business is created.
pub fn create(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    records: &[BusinessRecord],
) -> AppResult<Vec<BusinessRow>> {
    let now = db::now();
    let (mut created, mut deltas, mut touched) =
        (Vec::with_capacity(records.len()), Deltas::new(), Vec::new());
    let mut owners = vec![0; records.len()];
    let mut copies = std::collections::HashMap::new();
    let mut known = Vec::new();
    // Owners are resolved (and locked) in NIK order, whatever the rows' order: two imports
    // naming the same persons take their locks in one order and cannot deadlock.
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|a, b| records[*a].owner.owner_nik.cmp(&records[*b].owner.owner_nik));
    for row in order {
        let record = &records[row];
        let resolved = persons_model::resolve(conn, keys, user_id, &record.owner).map_err(|e| match e {
            // An import's row names its conflict.
            AppError::Conflict(why) if records.len() > 1 => {
                AppError::Conflict(format!("rows[{}]: {}", row + 1, why))
            }
            other => other,
        })?;
        owners[row] = resolved.id;
        if resolved.changed {
            touched.extend(super::owners::follow_owner(conn, resolved.id, None)?);
        }
        if !resolved.new {
            known.push(resolved.id);
        }
        // The copy as the owner stands after this row (a later row may give a new contact).
        copies.insert(resolved.id, resolved.copy);
    }
    for record in records {
        deltas.business(&record.facts(), 1);
    }
    // A new business shows its owner's consent to every bank (their consents are locked with
    // them: a consent change takes the person's lock; a person made now has none), and a copy
    // of its owner's fields as resolved (and locked).
    let consents = crate::persons::consents::in_force(conn, &known)?;
    let consent_of = |owner: &i64| consents.get(owner).and_then(|c| c.every_bank_since);
    let copy_of = |owner: &i64| copies.get(owner).ok_or_else(|| AppError::internal("an owner vanished"));
    for (chunk, owners) in records.chunks(500).zip(owners.chunks(500)) {
        let values: Vec<_> = chunk
            .iter()
            .zip(owners)
            .map(|(r, owner)| {
                Ok((
                    &r.columns,
                    businesses::owner_id.eq(*owner),
                    copy_of(owner)?.copy(),
                    businesses::consented_to_bank_sharing_at.eq(consent_of(owner)),
                    businesses::created_at.eq(now),
                    businesses::updated_at.eq(now),
                    businesses::version.eq(1),
                ))
            })
            .collect::<AppResult<_>>()?;
        // One multi-row INSERT on PostgreSQL; SQLite, in process, takes the rows one by one
        // (diesel's multi-back-end connection has no batch insert).
        // A single record as a single-row INSERT, which diesel prepares once per connection.
        let ids: Vec<i64> = match conn {
            DbConnection::Pg(pg) if values.len() > 1 => diesel::insert_into(businesses::table)
                .values(values)
                .returning(businesses::id)
                .get_results(pg)?,
            _ => values
                .into_iter()
                .map(|row| {
                    diesel::insert_into(businesses::table)
                        .values(row)
                        .returning(businesses::id)
                        .get_result(conn)
                })
                .collect::<QueryResult<_>>()?,
        };
        let entries: Vec<(i64, Value)> = ids
            .iter()
            .zip(chunk.iter().zip(owners))
            .map(|(id, (record, owner))| {
                let mut entry = audit::snapshot(record, &PII);
                entry["owner_id"] = json!(owner);
                (*id, entry)
            })
            .collect();
        audit::record_many(conn, user_id, Action::Create, "business", &entries)?;
        for (id, (record, owner)) in ids.into_iter().zip(chunk.iter().zip(owners)) {
            created.push(record.columns.inserted(id, copy_of(owner)?, consent_of(owner), now));
        }
    }
    deltas.apply(conn)?;
    // The other businesses of an owner whose contact changed: what their banks see follows.
    crate::banks::feed::refresh(conn, &touched)?;
    Ok(created)
}

/// Applies a JSON merge patch: `If-Match` first, then the merged business is checked whole
/// (every field, and a changed district against `/regions`, in one 422) and written only if
/// the row still has the version read; the audit entry holds the changed fields.
pub fn update(
    conn: &mut DbConnection,
    keys: &Keyring,
    user_id: i64,
    id: i64,
    if_match: &IfMatch,
    patch: &Value,
) -> AppResult<(BusinessRow, Owner)> {
    let (current, owner) = find_owned(conn, keys, id)?;
    if_match.check(current.version)?;
    require_object(patch)?;
    let mut check = Check::default();
    let mut known = patch.clone();
    if let Some(sent) = known.as_object_mut().and_then(|m| m.remove("consented_to_bank_sharing_at")) {
        let sent: Option<Option<DateTime<Utc>>> = serde_json::from_value(sent).ok();
        if sent != Some(current.consented_to_bank_sharing_at.map(|t| t.and_utc())) {
            check.fail("consented_to_bank_sharing_at", "read_only", super::input::CONSENT_IS_DERIVED);
        }
    }
    read_input(&mut known, &mut check)?;
    rematch_text_alone(&mut known);
    let input: BusinessInput =
        merged(&Business::of(current.clone(), owner.clone(), View::Full), &known, &DERIVED)?;
    let mut checked = check_fields(input, &mut check, db::now());
    if let Some(code) = &checked.district_code
        && *code != current.district_code
    {
        district_exists(conn, code, &mut check)?;
    }
    settle_village(conn, &mut checked, &mut check)?;
    let record = check.finish(|| checked.record)?;
    let unchanged = record.owner.owner_nik == owner.nik
        && record.owner.owner_name == owner.name
        && record.owner.phone == owner.phone
        && record.owner.email == owner.email;
    // The owner's copy is written when the owner (or their contact) changed.
    let (owner_id, mut touched, copy) = if unchanged {
        (current.owner_id, Vec::new(), None)
    } else {
        let resolved = persons_model::resolve(conn, keys, user_id, &record.owner)?;
        let followed = if resolved.changed {
            super::owners::follow_owner(conn, resolved.id, Some(id))?
        } else {
            Vec::new()
        };
        (resolved.id, followed, Some(resolved.copy))
    };
    crate::versioned_update!(
        conn,
        businesses,
        id,
        current.version,
        (&record.columns, businesses::owner_id.eq(owner_id), copy.as_ref().map(OwnerRow::copy))
    )?;
    // `current` is the row the update replaced (it matched the version read): the summary moves
    // the business from its group to the new one.
    let mut deltas = Deltas::new();
    deltas.business_changed(&current.facts(), &record.facts());
    if current.is_ikm != record.facts().key.is_ikm {
        deltas.ikm_changed(conn, id, !current.is_ikm)?;
    }
    deltas.apply(conn)?;
    touched.push(id);
    if owner_id != current.owner_id {
        // Another owner, another consent: the business shows the new owner's, and its
        // applications are seen by the banks the new owner consents to.
        super::consents::settle(conn, &[id], Some(id))?;
        // Another owner: the financing of the old owner's and of the new owner's other
        // businesses is elsewhere (or no longer) for this one's applications, and back.
        let siblings: Vec<i64> = businesses::table
            .filter(businesses::owner_id.eq_any([current.owner_id, owner_id]))
            .select(businesses::id)
            .load(conn)?;
        touched.extend(siblings);
    }
    // The audit entry holds what changed as stored (a name that differs from the person's in
    // case only is the person's, unchanged).
    let (row, stored_owner) = find_owned(conn, keys, id)?;
    let (before, after) =
        (BusinessRecordRef::of(&current, Some(&owner)), BusinessRecordRef::of(&row, Some(&stored_owner)));
    audit::record(conn, user_id, Action::Update, "business", id, &audit::diff(&before, &after, &PII))?;
    crate::banks::feed::refresh(conn, &touched)?;
    Ok((row, stored_owner))
}

/// The stored values of a business in the shape of a [`BusinessRecord`], for diffs.
#[derive(Serialize)]
struct BusinessRecordRef {
    #[serde(flatten)]
    fields: Value,
}

impl BusinessRecordRef {
    /// `b`'s stored fields, with its owner's when given.
    fn of(b: &BusinessRow, owner: Option<&Owner>) -> Self {
        let mut fields = serde_json::to_value(b).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut fields {
            for derived in ["id", "created_at", "updated_at", "version"] {
                map.remove(derived);
            }
            if let Some(t) = b.consented_to_bank_sharing_at {
                map.insert("consented_to_bank_sharing_at".into(), json!(t));
            }
            if let Some(owner) = owner {
                map.insert("owner_name".into(), json!(owner.name));
                map.insert("owner_nik".into(), json!(owner.nik));
                map.insert("phone".into(), json!(owner.phone));
                map.insert("email".into(), json!(owner.email));
            }
        }
        BusinessRecordRef { fields }
    }
}

/// Deletes a business and its products if the row still has the version read (409 while
/// financing applications refer to it); audit entries for the products and the business.
pub fn delete(conn: &mut DbConnection, user_id: i64, id: i64, if_match: &IfMatch) -> AppResult<()> {
    let current = find(conn, id)?;
    if_match.check(current.version)?;
    // What the delete takes with it is deleted here, each row with its audit entry, with the
    // business locked so that nothing new refers to it meanwhile.
    db::lock_row(conn, "businesses", id)?;
    let mut deltas = Deltas::new();
    let gone: Vec<(i64, i64, String)> =
        diesel::delete(registrations::table.filter(registrations::business_id.eq(id)))
            .returning((registrations::id, registrations::training_id, registrations::status))
            .get_results(conn)?;
    for (_, training, status) in &gone {
        deltas.count(Figure::Registrations, *training, status, -1);
    }
    let entries: Vec<(i64, Value)> =
        gone.iter().map(|(r, t, _)| (*r, json!({"business_id": id, "training_id": t}))).collect();
    audit::record_many(conn, user_id, Action::Delete, "registration", &entries)?;
    let product_ids = db::lock_rows_of(conn, "products", "business_id", id)?;
    crate::products::delete_dependants(conn, user_id, &product_ids)?;
    let categories: Vec<String> = diesel::delete(products::table.filter(products::business_id.eq(id)))
        .returning(products::category)
        .get_results(conn)?;
    for category in &categories {
        deltas.count(Figure::Products, 0, category, -1);
    }
    let entries: Vec<(i64, Value)> = product_ids.iter().map(|p| (*p, json!({"business_id": id}))).collect();
    audit::record_many(conn, user_id, Action::Delete, "product", &entries)?;
    crate::versioned_delete!(conn, businesses, id, current.version)
        .on_conflict("the business has financing applications; it cannot be deleted")?;
    deltas.business(&current.facts(), -1).apply(conn)?;
    audit::record(
        conn,
        user_id,
        Action::Delete,
        "business",
        id,
        &audit::snapshot(&BusinessRecordRef::of(&current, None), &PII),
    )?;
    Ok(())
}
