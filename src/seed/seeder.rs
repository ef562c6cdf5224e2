//! The seeder: the rows it generates for each kind of record, and how each batch is written.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, Months, NaiveDate, NaiveDateTime, NaiveTime};
use diesel::dsl::{count_star, max};
use diesel::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;

use super::fake::{self, Faker};
use super::rows::{
    ApplicationRow, Batch, BusinessRow, ConsentRow, CurationRow, OutletRow, PersonRow, PlacementRow,
    ProductRow, RegistrationRow, TrainingRow, write_rows,
};
use super::{SeedError, Summary};
use crate::crypto::keyring::Keyring;
use crate::db::schema::{
    applications, bank_partners, businesses, consents, curations, financing_programmes, outlets, persons,
    placements, products, registrations, retail_partners, trainings,
};
use crate::db::{self, Backend, DbConnection};
use crate::domain::selection::{self, Candidate, Outcome};
use crate::summary::{ApplicationFacts, BusinessFacts, Deltas, Figure};

/// The day generated data is "as of", fixed so that a seed gives the same rows on any day.
pub(super) fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
}

pub(super) fn midnight(day: NaiveDate) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN)
}

/// An open KUR programme with its bank.
pub(super) struct Programme {
    pub(super) id: i64,
    pub(super) bank_partner_id: i64,
    pub(super) bank_code: String,
    pub(super) kind: String,
    pub(super) min: i64,
    pub(super) max: i64,
}

/// A registration waiting for its training's selection.
pub(super) struct Registrant {
    pub(super) training: usize,
    pub(super) business_id: i64,
    pub(super) micro: bool,
    pub(super) registered_at: NaiveDateTime,
}

/// The next free id of every table the seed writes.
#[derive(Debug, Default)]
pub(super) struct Ids {
    pub(super) person: i64,
    pub(super) business: i64,
    pub(super) product: i64,
    pub(super) outlet: i64,
    pub(super) curation: i64,
    pub(super) placement: i64,
    pub(super) application: i64,
    pub(super) training: i64,
    pub(super) registration: i64,
}

impl Ids {
    pub(super) fn read(conn: &mut DbConnection) -> QueryResult<Ids> {
        macro_rules! next {
            ($table:ident) => {
                $table::table.select(max($table::id)).first::<Option<i64>>(conn)?.unwrap_or(0) + 1
            };
        }
        Ok(Ids {
            person: next!(persons),
            business: next!(businesses),
            product: next!(products),
            outlet: next!(outlets),
            curation: next!(curations),
            placement: next!(placements),
            application: next!(applications),
            training: next!(trainings),
            registration: next!(registrations),
        })
    }
}

pub(super) fn take(id: &mut i64) -> i64 {
    let current = *id;
    *id += 1;
    current
}

/// The state of one seed run.
pub(super) struct Seeder {
    pub(super) faker: Faker,
    pub(super) ids: Ids,
    pub(super) programmes: Vec<Programme>,
    pub(super) registrants: Vec<Registrant>,
    /// District names by code, from the regions reference data.
    pub(super) district_names: HashMap<String, String>,
    pub(super) summary: Summary,
    /// The data keys the persons are sealed with.
    pub(super) keys: Keyring,
    /// The NIKs' blind indexes taken (in the database and by this run).
    pub(super) nik_indexes: HashSet<String>,
    /// Persons and their consents made since the last batch was written.
    pub(super) persons: Vec<PersonRow>,
    pub(super) consents: Vec<ConsentRow>,
    /// The person made last: id, consent to every bank (`None`: none of theirs made yet), and
    /// name and sealed fields as their businesses copy them.
    pub(super) last_person: Option<i64>,
    pub(super) last_consent: Option<Option<NaiveDateTime>>,
    pub(super) last_copy: Option<(String, String, String, Option<String>)>,
}

impl Seeder {
    pub(super) fn new(
        conn: &mut DbConnection,
        keys: &Keyring,
        seed: u64,
        force: bool,
    ) -> Result<Seeder, SeedError> {
        let existing: i64 = businesses::table.select(count_star()).first(conn)?;
        if existing > 0 && !force {
            return Err(SeedError::NotEmpty(existing));
        }
        let programmes = financing_programmes::table
            .inner_join(bank_partners::table)
            .filter(financing_programmes::open.eq(true))
            .filter(financing_programmes::kind.ne("commercial"))
            .order(financing_programmes::id)
            .select((
                financing_programmes::id,
                financing_programmes::bank_partner_id,
                bank_partners::code,
                financing_programmes::kind,
                financing_programmes::min_amount_idr,
                financing_programmes::max_amount_idr,
            ))
            .load::<(i64, i64, String, String, i64, i64)>(conn)?
            .into_iter()
            .map(|(id, bank_partner_id, bank_code, kind, min, max)| Programme {
                id,
                bank_partner_id,
                bank_code,
                kind,
                min,
                max,
            })
            .collect::<Vec<_>>();
        if programmes.is_empty() {
            return Err(SeedError::Missing("no open KUR programme (see migration 000005)"));
        }
        let served = crate::regions::served_districts(conn)?;
        if served.is_empty() {
            return Err(SeedError::Missing("no district in the service area (SERVICE_AREA)"));
        }
        Ok(Seeder {
            faker: Faker::new(seed, crate::regions::villages::served_by_district(conn)?, &served),
            ids: Ids::read(conn)?,
            programmes,
            registrants: Vec::new(),
            district_names: served.into_iter().collect(),
            summary: Summary::default(),
            keys: keys.clone(),
            nik_indexes: persons::table
                .select(persons::nik_index)
                .load::<String>(conn)?
                .into_iter()
                .collect(),
            persons: Vec::new(),
            last_person: None,
            last_consent: None,
            consents: Vec::new(),
            last_copy: None,
        })
    }

    pub(super) fn rng(&mut self) -> &mut StdRng {
        &mut self.faker.rng
    }

    /// The id of the retail partner `code`, created with `name` and `brand` when missing.
    pub(super) fn retail_partner(
        conn: &mut DbConnection,
        code: &str,
        name: &str,
        brand: &str,
    ) -> QueryResult<i64> {
        let found = retail_partners::table
            .filter(retail_partners::code.eq(code))
            .select(retail_partners::id)
            .first::<i64>(conn)
            .optional()?;
        if let Some(id) = found {
            return Ok(id);
        }
        let now = db::now();
        diesel::insert_into(retail_partners::table)
            .values((
                retail_partners::code.eq(code),
                retail_partners::name.eq(name),
                retail_partners::brand.eq(brand),
                retail_partners::created_at.eq(now),
                retail_partners::updated_at.eq(now),
            ))
            .returning(retail_partners::id)
            .get_result(conn)
    }

    /// `count` outlets of a partner, coded `<prefix>-<number>` and spread over the districts.
    pub(super) fn outlets(&mut self, partner: i64, prefix: &str, count: usize) -> Vec<OutletRow> {
        (0..count)
            .map(|i| {
                let id = take(&mut self.ids.outlet);
                let district = self.faker.district();
                let opened_on = fake::day_between(
                    self.rng(),
                    NaiveDate::from_ymd_opt(2010, 1, 1).unwrap_or_default(),
                    as_of(),
                );
                let at = midnight(opened_on);
                OutletRow {
                    id,
                    retail_partner_id: partner,
                    code: format!("{prefix}-{id:05}"),
                    name: format!(
                        "{prefix} {} {}",
                        self.district_names.get(&district).map_or(district.as_str(), String::as_str),
                        i + 1
                    ),
                    address: Some(format!("Jl. Raya No. {}", self.rng().random_range(1..300))),
                    district_code: district.clone(),
                    opened_on: Some(opened_on),
                    status: if self.rng().random_bool(0.97) { "open" } else { "closed" }.to_owned(),
                    created_at: at,
                    updated_at: at,
                    version: 1,
                }
            })
            .collect()
    }

    /// A training of `capacity` seats starting on `starts_on`; selection has run when it started
    /// before [`as_of`].
    pub(super) fn training(
        &mut self,
        title: &str,
        theme: &str,
        starts_on: NaiveDate,
        capacity: i32,
    ) -> TrainingRow {
        let closes = midnight(starts_on - Duration::days(7));
        let created = midnight(starts_on - Duration::days(45));
        let selected_at = (starts_on <= as_of()).then(|| closes + Duration::hours(10));
        TrainingRow {
            id: take(&mut self.ids.training),
            title: title.to_owned(),
            theme: Some(theme.to_owned()),
            venue: Some("Gedung Pusat Kegiatan Masyarakat, Lamongan".to_owned()),
            starts_on,
            ends_on: starts_on + Duration::days(2),
            capacity,
            registration_closes_at: Some(closes),
            selected_at,
            created_at: created,
            updated_at: selected_at.unwrap_or(created),
            version: if selected_at.is_some() { 2 } else { 1 },
        }
    }

    /// A curation of `product` by `partner` in `status`, decided three weeks after submission.
    pub(super) fn curation(&mut self, product: &ProductRow, partner: i64, status: &str) -> CurationRow {
        let decided_at = (status != "submitted").then(|| product.created_at + Duration::days(21));
        CurationRow {
            id: take(&mut self.ids.curation),
            product_id: product.id,
            retail_partner_id: partner,
            status: status.to_owned(),
            notes: (status == "rejected").then(|| "Kemasan dan label belum memenuhi standar".to_owned()),
            decided_at,
            decided_by: None,
            created_at: product.created_at,
            updated_at: decided_at.unwrap_or(product.created_at),
            version: if decided_at.is_some() { 2 } else { 1 },
        }
    }

    /// A placement of a passed product in an outlet, a week after the curation passed.
    pub(super) fn placement(&mut self, curation: &CurationRow, outlet: i64, delisted: bool) -> PlacementRow {
        let at = curation.decided_at.unwrap_or(curation.created_at) + Duration::days(7);
        let listed_on = at.date();
        PlacementRow {
            id: take(&mut self.ids.placement),
            product_id: curation.product_id,
            outlet_id: outlet,
            listed_on,
            delisted_on: delisted.then(|| listed_on + Duration::days(90)),
            created_at: at,
            updated_at: at,
            version: if delisted { 2 } else { 1 },
        }
    }

    /// An application of `business` to a KUR programme that fits its scale, at some stage.
    pub(super) fn application(&mut self, business: &BusinessRow) -> ApplicationRow {
        let want = match business.scale.as_deref() {
            Some("mikro") | None => {
                if self.rng().random_bool(0.4) {
                    "kur_super_mikro"
                } else {
                    "kur_mikro"
                }
            }
            _ => "kur_kecil",
        };
        let fitting: Vec<usize> =
            (0..self.programmes.len()).filter(|&i| self.programmes[i].kind == want).collect();
        let all = self.programmes.len();
        let pick = if fitting.is_empty() {
            self.rng().random_range(0..all)
        } else {
            fitting[self.rng().random_range(0..fitting.len())]
        };
        let (programme_id, bank_partner_id, bank_code, min, max) = {
            let p = &self.programmes[pick];
            (p.id, p.bank_partner_id, p.bank_code.clone(), p.min, p.max)
        };
        let id = take(&mut self.ids.application);
        let amount = fake::log_uniform(self.rng(), min.max(1_000_000), max);
        let status = *fake::weighted(
            self.rng(),
            &[
                ("submitted", 25),
                ("in_review", 20),
                ("approved", 15),
                ("disbursed", 25),
                ("rejected", 10),
                ("withdrawn", 5),
            ],
        );
        let created_at = business.created_at + Duration::days(self.rng().random_range(1..60));
        let decided = matches!(status, "approved" | "disbursed" | "rejected");
        let granted = matches!(status, "approved" | "disbursed");
        let decided_at = decided.then(|| created_at + Duration::days(14));
        let term = self.rng().random_range(12..=36);
        ApplicationRow {
            id,
            business_id: business.id,
            programme_id,
            bank_partner_id,
            amount_requested_idr: amount,
            purpose: Some("Modal kerja dan pembelian bahan baku".to_owned()),
            status: status.to_owned(),
            amount_approved_idr: granted.then_some(amount),
            bank_reference: granted.then(|| format!("{bank_code}/KUR/{id:08}")),
            financing_ends_on: granted.then(|| decided_at.map(|d| d.date() + Months::new(term))).flatten(),
            decided_at,
            created_at,
            updated_at: decided_at.unwrap_or(created_at),
            version: match status {
                "submitted" => 1,
                "in_review" | "withdrawn" => 2,
                "disbursed" => 4,
                _ => 3,
            },
            // The seeds' consents are to every bank.
            consented: business.consented_to_bank_sharing_at.is_some(),
        }
    }

    /// Queues `business` for `training`; the registrations are written after selection.
    pub(super) fn register(&mut self, training: usize, business: &BusinessRow, training_row: &TrainingRow) {
        let closes = training_row.registration_closes_at.unwrap_or(training_row.created_at);
        let window = (closes - training_row.created_at).num_minutes().max(1);
        let registered_at = training_row.created_at + Duration::minutes(self.rng().random_range(0..window));
        self.registrants.push(Registrant {
            training,
            business_id: business.id,
            micro: business.scale.as_deref() == Some("mikro"),
            registered_at,
        });
    }

    /// Writes one batch of rows in one transaction.
    pub(super) fn write_batch(&mut self, conn: &mut DbConnection, batch: Batch) -> QueryResult<()> {
        let persons = std::mem::take(&mut self.persons);
        let consents = std::mem::take(&mut self.consents);
        conn.transaction(|conn| {
            write_rows!(conn, persons::table, persons.as_slice())?;
            write_rows!(conn, consents::table, consents.as_slice())?;
            write_rows!(conn, businesses::table, batch.businesses.as_slice())?;
            write_rows!(conn, products::table, batch.products.as_slice())?;
            write_rows!(conn, curations::table, batch.curations.as_slice())?;
            write_rows!(conn, placements::table, batch.placements.as_slice())?;
            write_rows!(conn, applications::table, batch.applications.as_slice())?;
            batch_deltas(conn, &batch)?.apply(conn)
        })?;
        self.summary.persons += persons.len();
        self.summary.businesses += batch.businesses.len();
        self.summary.products += batch.products.len();
        self.summary.curations += batch.curations.len();
        self.summary.placements += batch.placements.len();
        self.summary.applications += batch.applications.len();
        Ok(())
    }

    pub(super) fn write_outlets(&mut self, conn: &mut DbConnection, rows: &[OutletRow]) -> QueryResult<()> {
        conn.transaction(|conn| {
            write_rows!(conn, outlets::table, rows)?;
            let mut deltas = Deltas::new();
            for o in rows {
                deltas.count(Figure::Outlets, o.retail_partner_id, "", 1);
            }
            deltas.apply(conn)
        })?;
        self.summary.outlets += rows.len();
        Ok(())
    }

    pub(super) fn write_trainings(
        &mut self,
        conn: &mut DbConnection,
        rows: &[TrainingRow],
    ) -> QueryResult<()> {
        conn.transaction(|conn| {
            write_rows!(conn, trainings::table, rows)?;
            let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            Deltas::new().count(Figure::Trainings, 0, "", n).apply(conn)
        })?;
        self.summary.trainings += rows.len();
        Ok(())
    }

    /// Runs each training's selection by the API's own rule over its queued registrants and
    /// writes the registrations: selected or waitlisted (attended, mostly, once the training
    /// ended), or still registered when the training has not started.
    pub(super) fn write_registrations(
        &mut self,
        conn: &mut DbConnection,
        trainings: &[TrainingRow],
    ) -> QueryResult<()> {
        let mut per_training: HashMap<usize, Vec<Registrant>> = HashMap::new();
        for r in std::mem::take(&mut self.registrants) {
            per_training.entry(r.training).or_default().push(r);
        }
        let mut rows = Vec::new();
        for (index, training) in trainings.iter().enumerate() {
            let Some(registrants) = per_training.remove(&index) else { continue };
            let first_id = self.ids.registration;
            let candidates = registrants
                .iter()
                .enumerate()
                .map(|(i, r)| Candidate {
                    registration_id: first_id + i as i64,
                    micro: r.micro,
                    trained_before: false,
                    registered_at: r.registered_at,
                })
                .collect::<Vec<_>>();
            self.ids.registration += registrants.len() as i64;
            let outcomes: HashMap<i64, (Outcome, i32)> = match training.selected_at {
                Some(_) => selection::select(candidates, usize::try_from(training.capacity).unwrap_or(0))
                    .into_iter()
                    .map(|(id, outcome, rank)| (id, (outcome, rank)))
                    .collect(),
                None => HashMap::new(),
            };
            let ended = training.ends_on < as_of();
            for (i, r) in registrants.iter().enumerate() {
                let id = first_id + i as i64;
                let (status, rank) = match outcomes.get(&id) {
                    Some((Outcome::Selected, rank)) => {
                        let attended = ended && self.rng().random_bool(0.9);
                        (if attended { "attended" } else { "selected" }, Some(*rank))
                    }
                    Some((_, rank)) => ("waitlisted", Some(*rank)),
                    None => ("registered", None),
                };
                let updated_at = training.selected_at.unwrap_or(r.registered_at);
                rows.push(RegistrationRow {
                    id,
                    training_id: training.id,
                    business_id: r.business_id,
                    status: status.to_owned(),
                    registered_at: r.registered_at,
                    selection_rank: rank,
                    note: None,
                    created_at: r.registered_at,
                    updated_at,
                    version: if rank.is_some() { 2 } else { 1 },
                });
            }
        }
        for chunk in rows.chunks(50_000) {
            conn.transaction(|conn| {
                write_rows!(conn, registrations::table, chunk)?;
                let mut deltas = Deltas::new();
                for r in chunk {
                    deltas.count(Figure::Registrations, r.training_id, &r.status, 1);
                }
                deltas.apply(conn)
            })?;
        }
        self.summary.registrations += rows.len();
        Ok(())
    }

    /// After a bulk load: the statistics' deltas folded into the summary, identity sequences past
    /// the ids written, the visibility map set (counts from covering indexes), planner statistics.
    pub(super) fn finish(conn: &mut DbConnection) -> QueryResult<()> {
        use diesel::connection::SimpleConnection;
        crate::summary::fold(conn)?;
        match db::backend(conn) {
            Backend::Postgres => {
                let tables = [
                    "persons",
                    "businesses",
                    "products",
                    "outlets",
                    "curations",
                    "placements",
                    "applications",
                    "trainings",
                    "registrations",
                ];
                let mut sql = String::new();
                for t in tables {
                    sql.push_str(&format!(
                        "SELECT setval(pg_get_serial_sequence('{t}', 'id'), \
                         GREATEST((SELECT max(id) FROM {t}), 1));\n"
                    ));
                }
                conn.batch_execute(&sql)?;
                // On its own: VACUUM cannot run inside the implicit transaction of a
                // multi-statement string.
                conn.batch_execute("VACUUM (ANALYZE)")
            }
            Backend::Sqlite => conn.batch_execute("ANALYZE;"),
        }
    }
}

/// What a batch adds to the statistics' summary: its businesses, products and applications.
fn batch_deltas(conn: &mut DbConnection, batch: &Batch) -> QueryResult<Deltas> {
    let mut deltas = Deltas::new();
    for b in &batch.businesses {
        let facts = BusinessFacts::new(
            &b.district_code,
            b.scale.as_deref(),
            &b.kbli,
            b.is_ikm,
            b.established_on,
            &b.status,
            b.employees,
            b.annual_revenue_idr,
        );
        deltas.business(&facts, 1);
    }
    let mut business_of = HashMap::with_capacity(batch.products.len());
    for p in &batch.products {
        deltas.count(Figure::Products, 0, &p.category, 1);
        business_of.insert(p.id, p.business_id);
    }
    let ikm: HashMap<i64, bool> = batch.businesses.iter().map(|b| (b.id, b.is_ikm)).collect();
    for c in batch.curations.iter().filter(|c| c.status == "passed") {
        match business_of.get(&c.product_id).and_then(|b| Some((*b, *ikm.get(b)?))) {
            Some((business, is_ikm)) => {
                deltas.passed_curation(c.retail_partner_id, c.product_id, business, is_ikm, 1)
            }
            None => deltas.curation_passed(conn, c.retail_partner_id, c.product_id, 1)?,
        };
    }
    if batch.placements.iter().any(|p| p.delisted_on.is_none()) {
        let partners: HashMap<i64, i64> = outlets::table
            .select((outlets::id, outlets::retail_partner_id))
            .load(conn)?
            .into_iter()
            .collect();
        for p in batch.placements.iter().filter(|p| p.delisted_on.is_none()) {
            let partner = partners.get(&p.outlet_id).copied().unwrap_or_default();
            deltas.placement_listed(partner, p.outlet_id, p.product_id, 1);
        }
    }
    for a in &batch.applications {
        let facts = ApplicationFacts::new(
            a.bank_partner_id,
            a.programme_id,
            &a.status,
            a.consented,
            a.amount_requested_idr,
            a.amount_approved_idr,
        );
        deltas.application(&facts, 1);
    }
    Ok(deltas)
}
