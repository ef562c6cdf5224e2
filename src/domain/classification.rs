//! Size classes: the UMKM scale of PP 7/2021 and the industry scale of Permenperin 64/2016.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::codes::Kbli;

/// One billion rupiah.
const BILLION: i64 = 1_000_000_000;

/// The size of a business under PP 7/2021 art. 35.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Usaha mikro.
    Mikro,
    /// Usaha kecil.
    Kecil,
    /// Usaha menengah.
    Menengah,
    /// Usaha besar: above the menengah ceiling.
    Besar,
}

/// Which criterion decided the scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScaleBasis {
    /// Annual sales (hasil penjualan tahunan), art. 35(5).
    Revenue,
    /// Business capital excluding land and buildings (modal usaha), art. 35(3).
    Capital,
}

impl Scale {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Mikro => "mikro",
            Scale::Kecil => "kecil",
            Scale::Menengah => "menengah",
            Scale::Besar => "besar",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Scale> {
        [Scale::Mikro, Scale::Kecil, Scale::Menengah, Scale::Besar].into_iter().find(|s| s.as_str() == name)
    }
}

impl ScaleBasis {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleBasis::Revenue => "revenue",
            ScaleBasis::Capital => "capital",
        }
    }
}

/// PP 7/2021 art. 35: annual sales up to Rp2 bn is mikro, up to Rp15 bn kecil, up to Rp50 bn
/// menengah (art. 35(5)); capital up to Rp1 bn is mikro, up to Rp5 bn kecil, up to Rp10 bn
/// menengah (art. 35(3)). Each ceiling belongs to the class below it ("sampai dengan").
/// Sales decide when they are known; capital otherwise; nothing when neither is.
pub fn umkm_scale(annual_revenue_idr: Option<i64>, capital_idr: Option<i64>) -> Option<(Scale, ScaleBasis)> {
    let by = |amount: i64, ceilings: [i64; 3]| match amount {
        a if a <= ceilings[0] => Scale::Mikro,
        a if a <= ceilings[1] => Scale::Kecil,
        a if a <= ceilings[2] => Scale::Menengah,
        _ => Scale::Besar,
    };
    match (annual_revenue_idr, capital_idr) {
        (Some(revenue), _) => {
            Some((by(revenue, [2 * BILLION, 15 * BILLION, 50 * BILLION]), ScaleBasis::Revenue))
        }
        (None, Some(capital)) => {
            Some((by(capital, [BILLION, 5 * BILLION, 10 * BILLION]), ScaleBasis::Capital))
        }
        (None, None) => None,
    }
}

/// An IKM (industri kecil dan menengah) is a manufacturing business: KBLI division 10–33.
pub fn is_ikm(kbli: &Kbli) -> bool {
    (10..=33).contains(&kbli.division())
}

/// The size of an industrial business under Permenperin 64/M-IND/PER/7/2016.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndustryScale {
    /// Industri kecil.
    Kecil,
    /// Industri menengah.
    Menengah,
}

impl IndustryScale {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IndustryScale::Kecil => "kecil",
            IndustryScale::Menengah => "menengah",
        }
    }
}

/// Permenperin 64/2016 art. 3: industri kecil employs at most 19 people with an investment
/// under Rp1 bn; industri menengah employs at most 19 with an investment of at least Rp1 bn, or
/// at least 20 with an investment of at most Rp15 bn. Anything else (or a business that is not
/// an IKM, or whose figures are unknown) has no industry scale.
pub fn industry_scale(ikm: bool, employees: Option<i32>, capital_idr: Option<i64>) -> Option<IndustryScale> {
    let (employees, capital) = (employees?, capital_idr?);
    if !ikm {
        return None;
    }
    match (employees <= 19, capital) {
        (true, c) if c < BILLION => Some(IndustryScale::Kecil),
        (true, _) => Some(IndustryScale::Menengah),
        (false, c) if c <= 15 * BILLION => Some(IndustryScale::Menengah),
        (false, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revenue_ceilings_belong_to_the_class_below() {
        let by_revenue = |r| umkm_scale(Some(r), Some(0)).unwrap();
        assert_eq!(by_revenue(0), (Scale::Mikro, ScaleBasis::Revenue));
        assert_eq!(by_revenue(2_000_000_000), (Scale::Mikro, ScaleBasis::Revenue));
        assert_eq!(by_revenue(2_000_000_001).0, Scale::Kecil);
        assert_eq!(by_revenue(15_000_000_000).0, Scale::Kecil);
        assert_eq!(by_revenue(15_000_000_001).0, Scale::Menengah);
        assert_eq!(by_revenue(50_000_000_000).0, Scale::Menengah);
        assert_eq!(by_revenue(50_000_000_001).0, Scale::Besar);
    }

    #[test]
    fn capital_decides_only_without_revenue() {
        let by_capital = |c| umkm_scale(None, Some(c)).unwrap();
        assert_eq!(by_capital(1_000_000_000), (Scale::Mikro, ScaleBasis::Capital));
        assert_eq!(by_capital(1_000_000_001).0, Scale::Kecil);
        assert_eq!(by_capital(5_000_000_000).0, Scale::Kecil);
        assert_eq!(by_capital(5_000_000_001).0, Scale::Menengah);
        assert_eq!(by_capital(10_000_000_000).0, Scale::Menengah);
        assert_eq!(by_capital(10_000_000_001).0, Scale::Besar);
        // Small sales win over large capital.
        assert_eq!(umkm_scale(Some(1), Some(20_000_000_000)), Some((Scale::Mikro, ScaleBasis::Revenue)));
        assert_eq!(umkm_scale(None, None), None);
    }

    #[test]
    fn ikm_is_manufacturing() {
        assert!(is_ikm(&Kbli::parse("10710").unwrap()));
        assert!(is_ikm(&Kbli::parse("33200").unwrap()));
        assert!(!is_ikm(&Kbli::parse("09900").unwrap()));
        assert!(!is_ikm(&Kbli::parse("47111").unwrap()));
    }

    #[test]
    fn industry_scale_by_workers_and_investment() {
        let b = 1_000_000_000;
        assert_eq!(industry_scale(true, Some(19), Some(b - 1)), Some(IndustryScale::Kecil));
        assert_eq!(industry_scale(true, Some(19), Some(b)), Some(IndustryScale::Menengah));
        assert_eq!(industry_scale(true, Some(20), Some(b - 1)), Some(IndustryScale::Menengah));
        assert_eq!(industry_scale(true, Some(20), Some(15 * b)), Some(IndustryScale::Menengah));
        assert_eq!(industry_scale(true, Some(20), Some(15 * b + 1)), None);
        assert_eq!(industry_scale(false, Some(5), Some(1)), None);
        assert_eq!(industry_scale(true, None, Some(1)), None);
        assert_eq!(industry_scale(true, Some(5), None), None);
    }
}
