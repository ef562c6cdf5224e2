//! `umkm-api seed`: the article's small demo dataset, or a generated one at the reference scale.
//!
//! Both write whole rows with their ids straight into the tables (no HTTP, no audit entries):
//! `COPY … (FORMAT binary)` on PostgreSQL, multi-row `INSERT` on SQLite, one transaction per batch
//! of businesses and their products, curations, placements and applications. Every value is one the
//! API itself would accept, and the derived fields (scale, IKM, industry scale) come from the same
//! domain functions the API uses. A seed is deterministic: the same `--seed` on an empty database
//! gives the same rows.

mod demo;
mod fake;
mod owners;
mod rows;
mod seeder;

use chrono::{Duration, NaiveDate};
use rand::Rng;
use rand::seq::index;

use crate::crypto::keyring::Keyring;
use crate::db::DbConnection;

pub use demo::demo;
use fake::TRAINING_THEMES;
use rows::Batch;
use seeder::{Seeder, as_of, midnight, take};

/// Businesses written per transaction (with their products, curations, placements, applications).
const BATCH: usize = 10_000;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Seeding on top of existing businesses needs `--force`.
    #[error("the database already holds {0} businesses; pass --force to add to them")]
    NotEmpty(i64),
    /// Reference data the seed builds on is missing.
    #[error("missing reference data: {0}")]
    Missing(&'static str),
    /// The database refused.
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    /// The data keys could not seal a value.
    #[error("sealing personal data: {0}")]
    Keys(String),
    /// The banks' change feed could not be filled.
    #[error("filling the banks' change feed: {0}")]
    Feed(String),
}

/// How many rows of each kind a seed wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub persons: usize,
    pub businesses: usize,
    pub products: usize,
    pub outlets: usize,
    pub curations: usize,
    pub placements: usize,
    pub applications: usize,
    pub trainings: usize,
    pub registrations: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} persons, {} businesses, {} products, {} outlets, {} curations, {} placements, {} applications, \
             {} trainings, {} registrations",
            self.persons,
            self.businesses,
            self.products,
            self.outlets,
            self.curations,
            self.placements,
            self.applications,
            self.trainings,
            self.registrations
        )
    }
}

/// Options of `seed --generate`.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many businesses (the reference scale is 351,000).
    pub businesses: usize,
    /// The random seed.
    pub seed: u64,
    /// Add to a database that already has businesses.
    pub force: bool,
}

/// `seed --generate`: `options.businesses` businesses with about two products each and
/// applications, outlets, curations, placements, trainings and registrations in the proportions
/// of the reference dataset (Lamongan: 351,000 businesses, 5 % IKM). `progress` is told how many businesses were written.
pub fn generate(
    conn: &mut DbConnection,
    keys: &Keyring,
    options: &Options,
    mut progress: impl FnMut(usize),
) -> Result<Summary, SeedError> {
    let mut seeder = Seeder::new(conn, keys, options.seed, options.force)?;
    let n = options.businesses;
    // The reference dataset's proportions at 351,000 businesses: 500 outlets of 2 partners,
    // 50,000 applications, one training of ~234 registrants per 1,500 businesses.
    let outlet_count = (n * 500 / 351_000).max(10);
    let idm = Seeder::retail_partner(conn, "IDM", "PT Indomarco Prismatama", "Indomaret")?;
    let alf = Seeder::retail_partner(conn, "ALF", "PT Sumber Alfaria Trijaya Tbk", "Alfamart")?;
    let idm_outlets = seeder.outlets(idm, "IDM", outlet_count * 3 / 5);
    let alf_outlets = seeder.outlets(alf, "ALF", outlet_count - outlet_count * 3 / 5);
    let outlet_ids: [(i64, Vec<i64>); 2] = [
        (idm, idm_outlets.iter().filter(|o| o.status == "open").map(|o| o.id).collect()),
        (alf, alf_outlets.iter().filter(|o| o.status == "open").map(|o| o.id).collect()),
    ];
    seeder.write_outlets(conn, &idm_outlets)?;
    seeder.write_outlets(conn, &alf_outlets)?;

    let training_count = (n / 1_500).max(1);
    let first_start = NaiveDate::from_ymd_opt(2024, 1, 8).unwrap_or_default();
    let span = (NaiveDate::from_ymd_opt(2027, 3, 1).unwrap_or_default() - first_start).num_days();
    let training_rows = (0..training_count)
        .map(|i| {
            let (title, theme) = TRAINING_THEMES[i % TRAINING_THEMES.len()];
            let starts_on = first_start + Duration::days(span * i as i64 / training_count as i64);
            let capacity = [50, 100, 100, 150][i % 4];
            seeder.training(&format!("{title} Angkatan {}", i + 1), theme, starts_on, capacity)
        })
        .collect::<Vec<_>>();
    seeder.write_trainings(conn, &training_rows)?;

    let start = midnight(NaiveDate::from_ymd_opt(2023, 1, 2).unwrap_or_default());
    let span_secs = (midnight(as_of()) - start).num_seconds();
    let mut written = 0;
    while written < n {
        let size = BATCH.min(n - written);
        let mut batch = Batch::default();
        for i in written..written + size {
            let at = start + Duration::seconds(span_secs * i as i64 / n as i64);
            let district = seeder.faker.district();
            let district = district.as_str();
            let ikm = seeder.rng().random_bool(0.05);
            let id = take(&mut seeder.ids.business);
            // One owner in twelve has another business too (the one before).
            let again = seeder.rng().random_bool(1.0 / 12.0);
            let owner = seeder.owner(district, at, again)?;
            let business = seeder.faker.business(id, owner, district, ikm, at);
            let business = seeder.owned(business);
            for _ in 0..seeder.rng().random_range(0..=4) {
                let product_id = take(&mut seeder.ids.product);
                let product = seeder.faker.product(product_id, &business);
                if seeder.rng().random_bool(0.01) {
                    let (partner, open_outlets) = &outlet_ids[seeder.rng().random_range(0..2)];
                    let status =
                        *fake::weighted(seeder.rng(), &[("passed", 60), ("rejected", 25), ("submitted", 15)]);
                    let curation = seeder.curation(&product, *partner, status);
                    if status == "passed" && !open_outlets.is_empty() {
                        let k = seeder.rng().random_range(1..=8).min(open_outlets.len());
                        let picks = index::sample(seeder.rng(), open_outlets.len(), k).into_vec();
                        for pick in picks {
                            let delisted = seeder.rng().random_bool(0.1);
                            let placement = seeder.placement(&curation, open_outlets[pick], delisted);
                            batch.placements.push(placement);
                        }
                    }
                    batch.curations.push(curation);
                }
                batch.products.push(product);
            }
            if seeder.rng().random_bool(50.0 / 351.0) {
                let application = seeder.application(&business);
                batch.applications.push(application);
            }
            if seeder.rng().random_bool(234.0 / 1_500.0) {
                let t = seeder.rng().random_range(0..training_count);
                seeder.register(t, &business, &training_rows[t]);
            }
            batch.businesses.push(business);
        }
        seeder.write_batch(conn, batch)?;
        written += size;
        progress(written);
    }
    seeder.write_registrations(conn, &training_rows)?;
    Seeder::finish(conn)?;
    crate::banks::feed::reevaluate(conn).map_err(|e| SeedError::Feed(e.to_string()))?;
    Ok(seeder.summary)
}
