//! `seed --demo`: a small dataset that tells the article's story, so that every endpoint has
//! something to show: 540 businesses over the 27 districts, Indomaret's 51 outlets stocking 16
//! curated products from 13 IKM, a training that selected 100 of its 234 registrants, and
//! applications to the five banks' KUR programmes at every stage.

use chrono::NaiveDate;
use rand::Rng;
use rand::seq::index;

use super::{Batch, SeedError, Seeder, Summary, midnight};
use crate::crypto::keyring::Keyring;
use crate::db::DbConnection;

/// Businesses per district.
const PER_DISTRICT: usize = 20;
/// IKM per district (the first businesses of each district).
const IKM_PER_DISTRICT: usize = 2;
/// The article's figures.
const OUTLETS: usize = 51;
const CURATED_IKM: usize = 13;
const CURATED_PRODUCTS: usize = 16;
const REGISTRANTS: usize = 234;
const SEATS: i32 = 100;

/// Writes the demo dataset; refuses a database that already has businesses unless `force`.
pub fn demo(conn: &mut DbConnection, keys: &Keyring, force: bool) -> Result<Summary, SeedError> {
    let mut seeder = Seeder::new(conn, keys, 2026, force)?;
    let idm = Seeder::retail_partner(conn, "IDM", "PT Indomarco Prismatama", "Indomaret")?;
    let mut outlets = seeder.outlets(idm, "IDM", OUTLETS);
    for outlet in &mut outlets {
        outlet.status = "open".to_owned();
    }
    seeder.write_outlets(conn, &outlets)?;

    let mut batch = Batch::default();
    let start = midnight(NaiveDate::from_ymd_opt(2024, 2, 5).unwrap_or_default());
    let mut ikm = Vec::new();
    for (d, (district, _)) in seeder.faker.districts.clone().iter().enumerate() {
        for j in 0..PER_DISTRICT {
            let at = start + chrono::Duration::hours((d * PER_DISTRICT + j) as i64 * 13);
            let id = super::take(&mut seeder.ids.business);
            let is_ikm = j < IKM_PER_DISTRICT;
            // Every fifth owner has a second business (the one before, in the same district).
            let owner = seeder.owner(district, at, j % 5 == 4)?;
            let business = seeder.faker.business(id, owner, district, is_ikm, at);
            let business = seeder.owned(business);
            let products = if is_ikm { 2..=3 } else { 0..=3 };
            let mut own = Vec::new();
            for _ in 0..seeder.rng().random_range(products) {
                let product_id = super::take(&mut seeder.ids.product);
                own.push(seeder.faker.product(product_id, &business));
            }
            if is_ikm {
                ikm.push(own.clone());
            }
            if business.consented_to_bank_sharing_at.is_some() && seeder.rng().random_bool(0.3) {
                let application = seeder.application(&business);
                batch.applications.push(application);
            }
            batch.products.extend(own);
            batch.businesses.push(business);
        }
    }

    // 16 products of 13 IKM passed Indomaret's curation (the first product of each, the second
    // of the first three) and are stocked in all 51 outlets; six more were rejected and four
    // wait for a decision.
    let mut passed = Vec::new();
    for (i, products) in ikm.iter().take(CURATED_IKM).enumerate() {
        let extra = usize::from(i < CURATED_PRODUCTS - CURATED_IKM);
        for product in products.iter().take(1 + extra) {
            passed.push(seeder.curation(product, idm, "passed"));
        }
    }
    for (i, products) in ikm.iter().skip(CURATED_IKM).take(10).enumerate() {
        let status = if i < 6 { "rejected" } else { "submitted" };
        batch.curations.push(seeder.curation(&products[0], idm, status));
    }
    for curation in &passed {
        for outlet in &outlets {
            let placement = seeder.placement(curation, outlet.id, false);
            batch.placements.push(placement);
        }
    }
    batch.curations.extend(passed);

    // The article's training (selection has run: 100 of 234) and one still open.
    let done = seeder.training(
        "Pelatihan Peningkatan Mutu dan Kemasan Produk IKM",
        "kemasan",
        NaiveDate::from_ymd_opt(2026, 10, 12).unwrap_or_default(),
        SEATS,
    );
    let open = seeder.training(
        "Pelatihan Pemasaran Digital UMKM",
        "pemasaran digital",
        NaiveDate::from_ymd_opt(2027, 1, 18).unwrap_or_default(),
        40,
    );
    let picks = index::sample(seeder.rng(), batch.businesses.len(), REGISTRANTS + 25).into_vec();
    for (n, pick) in picks.into_iter().enumerate() {
        let (t, training) = if n < REGISTRANTS { (0, &done) } else { (1, &open) };
        seeder.register(t, &batch.businesses[pick], training);
    }

    let trainings = [done, open];
    seeder.write_trainings(conn, &trainings)?;
    seeder.write_batch(conn, batch)?;
    seeder.write_registrations(conn, &trainings)?;
    Seeder::finish(conn)?;
    crate::banks::feed::reevaluate(conn).map_err(|e| super::SeedError::Feed(e.to_string()))?;
    Ok(seeder.summary)
}
