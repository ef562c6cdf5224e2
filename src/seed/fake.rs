//! Plausible, valid values for generated records: Javanese names, NIKs of Lamongan districts,
//! KBLI codes from the sectors UMKM work in, revenues spread over the PP 7/2021 scales.

use std::collections::HashMap;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rand::Rng;
use rand::rngs::StdRng;

use super::rows::{BusinessRow, ProductRow};
use crate::domain::classification::{industry_scale, umkm_scale};

/// Lamongan's 27 districts with a weight roughly following where its businesses are
/// (the town, the north-coast fishing districts and Babat are the busiest).
pub const DISTRICTS: [(&str, u32); 27] = [
    ("35.24.01", 2),
    ("35.24.02", 2),
    ("35.24.03", 2),
    ("35.24.04", 3),
    ("35.24.05", 6),
    ("35.24.06", 3),
    ("35.24.07", 5),
    ("35.24.08", 3),
    ("35.24.09", 3),
    ("35.24.10", 3),
    ("35.24.11", 2),
    ("35.24.12", 4),
    ("35.24.13", 3),
    ("35.24.14", 6),
    ("35.24.15", 3),
    ("35.24.16", 4),
    ("35.24.17", 4),
    ("35.24.18", 3),
    ("35.24.19", 3),
    ("35.24.20", 3),
    ("35.24.21", 4),
    ("35.24.22", 8),
    ("35.24.23", 3),
    ("35.24.24", 2),
    ("35.24.25", 3),
    ("35.24.26", 3),
    ("35.24.27", 2),
];

/// Manufacturing KBLI codes (divisions 10–33) that small industry in Lamongan works in, with the
/// product category and words to name the products.
const IKM_SECTORS: [(&str, &str, &[&str]); 10] = [
    ("10710", "food", &["Roti", "Kue Kering", "Bolu"]),
    ("10792", "food", &["Kerupuk Ikan", "Kerupuk Udang", "Rengginang"]),
    ("10794", "food", &["Wingko", "Jenang", "Dodol"]),
    ("10213", "food", &["Ikan Asap", "Ikan Asin", "Terasi"]),
    ("11040", "beverage", &["Sirup Jeruk", "Minuman Jahe", "Kopi Bubuk"]),
    ("13134", "fashion", &["Batik Tulis", "Batik Cap", "Kain Tenun"]),
    ("14111", "fashion", &["Kaos Sablon", "Seragam", "Gamis"]),
    ("16291", "craft", &["Anyaman Bambu", "Kerajinan Kayu", "Tikar Pandan"]),
    ("31001", "craft", &["Kursi Jati", "Lemari Kayu", "Meja Ukir"]),
    ("15202", "fashion", &["Sepatu Kulit", "Sandal", "Tas Kulit"]),
];

/// Non-manufacturing KBLI codes: trade, food service, farming, fishing and services.
const OTHER_SECTORS: [(&str, &str, &[&str]); 10] = [
    ("47111", "other", &["Sembako", "Minyak Goreng", "Gula Pasir"]),
    ("56102", "food", &["Soto Lamongan", "Pecel Lele", "Nasi Boranan"]),
    ("56303", "beverage", &["Es Teh", "Kopi Tubruk", "Es Dawet"]),
    ("01131", "agriculture", &["Cabai", "Bawang Merah", "Sayur Segar"]),
    ("01461", "agriculture", &["Telur Ayam", "Ayam Potong", "Bebek"]),
    ("03221", "agriculture", &["Bandeng", "Udang Vaname", "Lele"]),
    ("96021", "service", &["Potong Rambut", "Rias Pengantin", "Salon"]),
    ("45201", "service", &["Servis Motor", "Ganti Oli", "Tambal Ban"]),
    ("47721", "other", &["Obat Herbal", "Jamu", "Minyak Kayu Putih"]),
    ("47911", "other", &["Pulsa", "Paket Data", "Aksesoris HP"]),
];

const FIRST_NAMES_MEN: [&str; 16] = [
    "Ahmad", "Budi", "Slamet", "Sugeng", "Joko", "Agus", "Bambang", "Hadi", "Imam", "Rudi", "Wahyu",
    "Sutrisno", "Mohammad", "Eko", "Didik", "Yusuf",
];
const FIRST_NAMES_WOMEN: [&str; 16] = [
    "Siti", "Sri", "Dewi", "Endang", "Nur", "Wulan", "Lestari", "Rina", "Yuli", "Aminah", "Khoirul",
    "Fatimah", "Ratna", "Umi", "Eni", "Lilik",
];
const LAST_NAMES: [&str; 16] = [
    "Santoso",
    "Wahyudi",
    "Rahmawati",
    "Hidayat",
    "Susanti",
    "Prasetyo",
    "Maulana",
    "Kurniawan",
    "Handayani",
    "Setiawan",
    "Fauzi",
    "Wibowo",
    "Anggraini",
    "Saputra",
    "Hasanah",
    "Firmansyah",
];
const NAME_PREFIXES: [&str; 8] = ["UD", "CV", "Toko", "Warung", "Usaha", "Kedai", "Rumah", "Sentra"];
const NAME_WORDS: [&str; 16] = [
    "Sumber Rejeki",
    "Barokah",
    "Maju Jaya",
    "Sido Mulyo",
    "Berkah",
    "Lancar",
    "Makmur",
    "Sinar",
    "Tunas Harapan",
    "Mekar Sari",
    "Rukun",
    "Sejahtera",
    "Karya Mandiri",
    "Amanah",
    "Sari Rasa",
    "Mulia",
];
const VILLAGES: [&str; 12] = [
    "Sidomulyo",
    "Sukorejo",
    "Banjarmadu",
    "Karangasem",
    "Tlogoanyar",
    "Sumberwudi",
    "Kemantren",
    "Blimbing",
    "Pangkatrejo",
    "Sendangrejo",
    "Waru",
    "Jotosanur",
];
const STREETS: [&str; 8] = [
    "Jl. Raya",
    "Jl. Veteran",
    "Jl. Sunan Drajat",
    "Jl. Kusuma Bangsa",
    "Jl. Panglima Sudirman",
    "Jl. Desa",
    "Jl. Pahlawan",
    "Jl. Mastrip",
];
const UNITS: [&str; 6] = ["pcs", "bungkus", "kg", "botol", "pack", "lembar"];

/// One draw from a weighted list.
pub fn weighted<'a, T>(rng: &mut StdRng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (item, weight) in items {
        if pick < *weight {
            return item;
        }
        pick -= weight;
    }
    &items[items.len() - 1].0
}

/// A value spread evenly on a log scale between `low` and `high`: many small amounts, few large.
pub fn log_uniform(rng: &mut StdRng, low: i64, high: i64) -> i64 {
    let (l, h) = ((low.max(1)) as f64, high as f64);
    let value = (l.ln() + rng.random::<f64>() * (h.ln() - l.ln())).exp();
    // Whole thousands of rupiah, as people report them.
    ((value / 1000.0).round() as i64 * 1000).clamp(low, high)
}

/// A random day in `[from, to)`.
pub fn day_between(rng: &mut StdRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let days = (to - from).num_days().max(1);
    from + Duration::days(rng.random_range(0..days))
}

/// A generated person's fields, before they are sealed.
#[derive(Debug, Clone)]
pub struct PlainPerson {
    /// Name.
    pub name: String,
    /// NIK.
    pub nik: String,
    /// Phone, `+62…`.
    pub phone: String,
    /// E-mail.
    pub email: Option<String>,
}

/// Builds person, business and product rows.
pub struct Faker {
    /// The random source; seeded, so the same seed gives the same data.
    pub rng: StdRng,
    /// The villages of each district of the service area, `(code, name)` by code.
    pub villages: HashMap<String, Vec<(String, String)>>,
    /// The service area's districts, weighted ([`district_weights`]).
    pub districts: Vec<(String, u32)>,
}

/// The districts of the service area with the weight of each: Lamongan's as [`DISTRICTS`]
/// has them, any other district's as an average one of Lamongan's.
pub fn district_weights<'a>(served: impl Iterator<Item = &'a str>) -> Vec<(String, u32)> {
    served
        .map(|code| {
            let weight = DISTRICTS.iter().find(|(d, _)| *d == code).map_or(3, |(_, w)| *w);
            (code.to_owned(), weight)
        })
        .collect()
}

impl Faker {
    /// A faker seeded with `seed`, placing businesses in the `served` districts (`(code, name)`)
    /// and their `villages`.
    pub fn new(
        seed: u64,
        villages: HashMap<String, Vec<(String, String)>>,
        served: &[(String, String)],
    ) -> Faker {
        use rand::SeedableRng;
        let districts = district_weights(served.iter().map(|(code, _)| code.as_str()));
        Faker { rng: StdRng::seed_from_u64(seed), villages, districts }
    }

    /// A district of the service area, by weight.
    pub fn district(&mut self) -> String {
        weighted(&mut self.rng, &self.districts).clone()
    }

    /// A person with id `id` born in `district`: name, NIK, phone and e-mail, in clear.
    pub fn person(&mut self, id: i64, district: &str) -> PlainPerson {
        let rng = &mut self.rng;
        let female = rng.random_bool(0.45);
        let first = if female {
            FIRST_NAMES_WOMEN[rng.random_range(0..16)]
        } else {
            FIRST_NAMES_MEN[rng.random_range(0..16)]
        };
        let name = format!("{first} {}", LAST_NAMES[rng.random_range(0..16)]);
        let born = day_between(
            rng,
            NaiveDate::from_ymd_opt(1960, 1, 1).unwrap_or_default(),
            NaiveDate::from_ymd_opt(2004, 1, 1).unwrap_or_default(),
        );
        let day = born.day() + if female { 40 } else { 0 };
        let nik = format!(
            "{}{:02}{:02}{:02}{:04}",
            district.replace('.', ""),
            day,
            born.month(),
            born.year() % 100,
            rng.random_range(1..10_000)
        );
        let phone = format!("+628{}{:08}", rng.random_range(1..10), rng.random_range(0..100_000_000));
        let email = rng.random_bool(0.35).then(|| format!("pemilik{id}@contoh.co.id"));
        PlainPerson { name, nik, phone, email }
    }

    /// A business with id `id` owned by person `owner_id` in `district`, manufacturing (IKM)
    /// when `ikm`, created at `at`.
    pub fn business(
        &mut self,
        id: i64,
        owner_id: i64,
        district: &str,
        ikm: bool,
        at: NaiveDateTime,
    ) -> BusinessRow {
        let rng = &mut self.rng;
        let sectors = if ikm { &IKM_SECTORS } else { &OTHER_SECTORS };
        let (kbli, _, words) = sectors[rng.random_range(0..sectors.len())];
        let name = format!(
            "{} {} {}",
            NAME_PREFIXES[rng.random_range(0..NAME_PREFIXES.len())],
            NAME_WORDS[rng.random_range(0..NAME_WORDS.len())],
            words[rng.random_range(0..words.len())]
        );
        // About 0.3 % of Indonesian UMKM are small or medium by revenue; manufacturing a bit more.
        let tier = rng.random::<f64>();
        let big = if ikm { 4.0 } else { 1.0 };
        let (revenue_range, capital_range, employees) = if tier < 0.002 * big {
            ((15_000_000_001, 50_000_000_000), (5_000_000_001, 10_000_000_000), rng.random_range(20..100))
        } else if tier < 0.013 * big {
            ((2_000_000_001, 15_000_000_000), (1_000_000_001, 5_000_000_000), rng.random_range(5..20))
        } else {
            ((10_000_000, 2_000_000_000), (1_000_000, 1_000_000_000), rng.random_range(1..5))
        };
        let basis = rng.random::<f64>();
        let annual_revenue_idr = (basis >= 0.10).then(|| log_uniform(rng, revenue_range.0, revenue_range.1));
        // 9 % known by capital only, 1 % by neither (no scale), the rest by revenue.
        let capital_idr = (basis < 0.09 || (basis >= 0.10 && rng.random_bool(0.6)))
            .then(|| log_uniform(rng, capital_range.0, capital_range.1));
        let (scale, scale_basis) = match umkm_scale(annual_revenue_idr, capital_idr) {
            Some((scale, basis)) => (Some(scale.as_str().to_owned()), Some(basis.as_str().to_owned())),
            None => (None, None),
        };
        let employees = Some(employees);
        let status = match rng.random_range(0..100) {
            0..90 => "active",
            90..97 => "inactive",
            _ => "closed",
        };
        let established_on = day_between(
            rng,
            NaiveDate::from_ymd_opt(1995, 1, 1).unwrap_or_default(),
            NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default(),
        );
        // A real village of the district (a made-up name where the tree has none).
        let (village_code, village) = match self.villages.get(district).filter(|v| !v.is_empty()) {
            Some(villages) => {
                let (code, name) = &villages[rng.random_range(0..villages.len())];
                (Some(code.clone()), name.clone())
            }
            None => (None, VILLAGES[rng.random_range(0..VILLAGES.len())].to_owned()),
        };
        BusinessRow {
            id,
            name,
            owner_id,
            // 13 digits, unique because the id is.
            nib: rng.random_bool(0.8).then(|| format!("{:013}", 8_120_000_000_000 + id)),
            npwp: rng.random_bool(0.3).then(|| format!("{:016}", 3_524_000_000_000_000 + id)),
            kbli: kbli.to_owned(),
            kbli_division: kbli[..2].parse().unwrap_or(0),
            district_code: district.to_owned(),
            village: Some(village.clone()),
            village_code,
            address: format!(
                "{} No. {}, Desa {village}",
                STREETS[rng.random_range(0..STREETS.len())],
                rng.random_range(1..200)
            ),
            capital_idr,
            annual_revenue_idr,
            employees,
            established_on: Some(established_on),
            status: status.to_owned(),
            consented_to_bank_sharing_at: rng.random_bool(0.6).then_some(at),
            scale,
            scale_basis,
            is_ikm: ikm,
            industry_scale: industry_scale(ikm, employees, capital_idr).map(|s| s.as_str().to_owned()),
            created_at: at,
            updated_at: at,
            version: 1,
            // Filled from the owner by the seeder.
            person_name: String::new(),
            person_nik: String::new(),
            person_phone: String::new(),
            person_email: None,
        }
    }

    /// A product with id `id` of `business`, with certificates as such products carry them.
    pub fn product(&mut self, id: i64, business: &BusinessRow) -> ProductRow {
        let rng = &mut self.rng;
        let (category, words) = IKM_SECTORS
            .iter()
            .chain(OTHER_SECTORS.iter())
            .find(|(kbli, _, _)| *kbli == business.kbli)
            .map(|(_, category, words)| (*category, *words))
            .unwrap_or(("other", &["Produk"]));
        let food = matches!(category, "food" | "beverage");
        let word = words[rng.random_range(0..words.len())];
        let name = match rng.random_range(0..3) {
            0 => format!("{word} Khas Lamongan"),
            1 => format!("{word} {}", ["Original", "Premium", "Super", "Spesial"][rng.random_range(0..4)]),
            _ => word.to_owned(),
        };
        ProductRow {
            id,
            business_id: business.id,
            name,
            category: category.to_owned(),
            description: rng.random_bool(0.5).then(|| format!("{word} buatan {}", business.name)),
            price_idr: Some(log_uniform(rng, 2_000, 2_000_000)),
            unit: Some(UNITS[rng.random_range(0..UNITS.len())].to_owned()),
            pirt_number: (food && rng.random_bool(0.4)).then(|| {
                format!("{}3524{:08}", rng.random_range(100..1000), rng.random_range(0..100_000_000))
            }),
            bpom_number: (food && rng.random_bool(0.05))
                .then(|| format!("MD{:012}", rng.random_range(0..1_000_000_000_000_i64))),
            halal_certificate: (food && rng.random_bool(0.3))
                .then(|| format!("ID3524{:010}", rng.random_range(0..10_000_000_000_i64))),
            sni_certified: rng.random_bool(0.05),
            created_at: business.created_at,
            updated_at: business.created_at,
            version: 1,
        }
    }
}

/// The trainings' titles and themes, in turn.
pub(crate) const TRAINING_THEMES: [(&str, &str); 6] = [
    ("Pelatihan Pengemasan Produk", "kemasan"),
    ("Pelatihan Pemasaran Digital", "pemasaran digital"),
    ("Pelatihan Sertifikasi Halal dan P-IRT", "sertifikasi"),
    ("Pelatihan Pembukuan Sederhana", "keuangan"),
    ("Pelatihan Desain Batik", "desain"),
    ("Pelatihan Diversifikasi Olahan Ikan", "produksi"),
];
