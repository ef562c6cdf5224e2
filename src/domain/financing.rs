//! Financing: who is eligible for a programme, and how an application moves.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::classification::Scale;

/// Loans above this amount need an NPWP (taxpayer number).
pub const NPWP_THRESHOLD_IDR: i64 = 50_000_000;

/// The kind of a financing programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgrammeKind {
    /// KUR Super Mikro: up to Rp10 million.
    KurSuperMikro,
    /// KUR Mikro: Rp10–100 million.
    KurMikro,
    /// KUR Kecil: Rp100–500 million.
    KurKecil,
    /// A bank's own commercial credit.
    Commercial,
}

impl ProgrammeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgrammeKind::KurSuperMikro => "kur_super_mikro",
            ProgrammeKind::KurMikro => "kur_mikro",
            ProgrammeKind::KurKecil => "kur_kecil",
            ProgrammeKind::Commercial => "commercial",
        }
    }

    /// The plafond band of a KUR kind, in rupiah (Permenko Perekonomian 1/2023): super mikro up
    /// to Rp10 million, mikro above that up to Rp100 million, kecil above that up to Rp500
    /// million. A programme of the kind lends only within it; commercial credit has no band.
    pub fn plafond(self) -> Option<std::ops::RangeInclusive<i64>> {
        const MILLION: i64 = 1_000_000;
        match self {
            ProgrammeKind::KurSuperMikro => Some(1..=10 * MILLION),
            ProgrammeKind::KurMikro => Some(10 * MILLION + 1..=100 * MILLION),
            ProgrammeKind::KurKecil => Some(100 * MILLION + 1..=500 * MILLION),
            ProgrammeKind::Commercial => None,
        }
    }
}

/// Why an application is not eligible, as stable codes, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The business's status is not `active`.
    BusinessNotActive,
    /// The owner has not consented to share data with banks.
    NoConsent,
    /// Younger than the programme's minimum age, or of unknown age (waived for KUR super mikro
    /// when the business attended a training).
    BusinessTooYoung,
    /// The business's scale is not one the programme serves (or is unknown).
    ScaleNotEligible,
    /// The programme requires a NIB.
    NibRequired,
    /// The amount requested is outside the programme's range.
    AmountOutOfRange,
    /// Over Rp50,000,000 needs an NPWP.
    NpwpRequired,
    /// An approved or disbursed financing at another bank has not ended.
    ActiveFinancingElsewhere,
}

/// The verdict on an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Eligibility {
    /// No rule failed.
    pub eligible: bool,
    /// The rules that failed.
    pub reasons: Vec<Reason>,
}

/// What eligibility needs to know about the business.
#[derive(Debug, Clone)]
pub struct Applicant {
    /// Status is `active`.
    pub active: bool,
    /// Consented to bank sharing.
    pub consented: bool,
    /// Start date, if known.
    pub established_on: Option<NaiveDate>,
    /// PP 7/2021 scale, if known.
    pub scale: Option<Scale>,
    /// Has a NIB.
    pub has_nib: bool,
    /// Has an NPWP.
    pub has_npwp: bool,
    /// Attended at least one training.
    pub attended_training: bool,
}

/// A programme's rules.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The lending bank.
    pub bank_partner_id: i64,
    /// Kind.
    pub kind: ProgrammeKind,
    /// Smallest amount.
    pub min_amount_idr: i64,
    /// Largest amount.
    pub max_amount_idr: i64,
    /// Minimum age of the business in whole months.
    pub min_business_age_months: i32,
    /// Scales served.
    pub eligible_scales: Vec<Scale>,
    /// NIB required.
    pub requires_nib: bool,
}

/// Another financing of the same business.
#[derive(Debug, Clone)]
pub struct OtherFinancing {
    /// Its bank.
    pub bank_partner_id: i64,
    /// Approved or disbursed.
    pub active_status: bool,
    /// When it ends, if known.
    pub ends_on: Option<NaiveDate>,
}

/// Whole months from `from` to `to` (0 when `to` is earlier).
pub fn months_between(from: NaiveDate, to: NaiveDate) -> i32 {
    let months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    let months = if to.day() < from.day() { months - 1 } else { months };
    months.max(0)
}

/// Checks every rule; the reasons come back in the order of [`Reason`].
pub fn eligibility(
    applicant: &Applicant,
    rules: &Rules,
    amount_idr: i64,
    others: &[OtherFinancing],
    today: NaiveDate,
) -> Eligibility {
    let mut reasons = Vec::new();
    if !applicant.active {
        reasons.push(Reason::BusinessNotActive);
    }
    if !applicant.consented {
        reasons.push(Reason::NoConsent);
    }
    let old_enough = applicant
        .established_on
        .is_some_and(|start| months_between(start, today) >= rules.min_business_age_months);
    let waived = rules.kind == ProgrammeKind::KurSuperMikro && applicant.attended_training;
    if !old_enough && !waived && rules.min_business_age_months > 0 {
        reasons.push(Reason::BusinessTooYoung);
    }
    if !rules.eligible_scales.is_empty()
        && !applicant.scale.is_some_and(|s| rules.eligible_scales.contains(&s))
    {
        reasons.push(Reason::ScaleNotEligible);
    }
    if rules.requires_nib && !applicant.has_nib {
        reasons.push(Reason::NibRequired);
    }
    if !(rules.min_amount_idr..=rules.max_amount_idr).contains(&amount_idr) {
        reasons.push(Reason::AmountOutOfRange);
    }
    if amount_idr > NPWP_THRESHOLD_IDR && !applicant.has_npwp {
        reasons.push(Reason::NpwpRequired);
    }
    let elsewhere = others.iter().any(|o| {
        o.bank_partner_id != rules.bank_partner_id
            && o.active_status
            && o.ends_on.is_none_or(|end| end >= today)
    });
    if elsewhere {
        reasons.push(Reason::ActiveFinancingElsewhere);
    }
    Eligibility { eligible: reasons.is_empty(), reasons }
}

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// Sent to the bank.
    Submitted,
    /// The bank is checking it.
    InReview,
    /// The bank approved it.
    Approved,
    /// The bank turned it down.
    Rejected,
    /// The money was paid out.
    Disbursed,
    /// The applicant withdrew it.
    Withdrawn,
}

impl ApplicationStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Submitted => "submitted",
            ApplicationStatus::InReview => "in_review",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
            ApplicationStatus::Disbursed => "disbursed",
            ApplicationStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<ApplicationStatus> {
        use ApplicationStatus::*;
        [Submitted, InReview, Approved, Rejected, Disbursed, Withdrawn]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// Whether the state machine allows `self → to`: submitted → in_review → approved or
    /// rejected; approved → disbursed; submitted or in_review → withdrawn.
    pub fn can_become(self, to: ApplicationStatus) -> bool {
        use ApplicationStatus::*;
        matches!(
            (self, to),
            (Submitted, InReview)
                | (InReview, Approved)
                | (InReview, Rejected)
                | (Approved, Disbursed)
                | (Submitted, Withdrawn)
                | (InReview, Withdrawn)
        )
    }

    /// Moves decided by the bank (the applicant's side withdraws).
    pub fn is_bank_decision(self) -> bool {
        !matches!(self, ApplicationStatus::Withdrawn | ApplicationStatus::Submitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const TODAY: (i32, u32, u32) = (2026, 11, 29);

    fn today() -> NaiveDate {
        day(TODAY.0, TODAY.1, TODAY.2)
    }

    fn good() -> Applicant {
        Applicant {
            active: true,
            consented: true,
            established_on: Some(day(2020, 1, 1)),
            scale: Some(Scale::Mikro),
            has_nib: true,
            has_npwp: true,
            attended_training: false,
        }
    }

    fn kur(kind: ProgrammeKind, min: i64, max: i64) -> Rules {
        Rules {
            bank_partner_id: 1,
            kind,
            min_amount_idr: min,
            max_amount_idr: max,
            min_business_age_months: 6,
            eligible_scales: vec![Scale::Mikro, Scale::Kecil],
            requires_nib: true,
        }
    }

    fn mikro() -> Rules {
        kur(ProgrammeKind::KurMikro, 10_000_001, 100_000_000)
    }

    fn reasons(applicant: &Applicant, rules: &Rules, amount: i64, others: &[OtherFinancing]) -> Vec<Reason> {
        eligibility(applicant, rules, amount, others, today()).reasons
    }

    #[test]
    fn a_good_applicant_is_eligible() {
        let verdict = eligibility(&good(), &mikro(), 50_000_000, &[], today());
        assert_eq!(verdict, Eligibility { eligible: true, reasons: vec![] });
    }

    #[test]
    fn each_reason_alone() {
        let r = mikro();
        assert_eq!(
            reasons(&Applicant { active: false, ..good() }, &r, 50_000_000, &[]),
            [Reason::BusinessNotActive]
        );
        assert_eq!(
            reasons(&Applicant { consented: false, ..good() }, &r, 50_000_000, &[]),
            [Reason::NoConsent]
        );
        assert_eq!(
            reasons(&Applicant { established_on: Some(day(2026, 6, 1)), ..good() }, &r, 50_000_000, &[]),
            [Reason::BusinessTooYoung]
        );
        assert_eq!(
            reasons(&Applicant { established_on: None, ..good() }, &r, 50_000_000, &[]),
            [Reason::BusinessTooYoung]
        );
        assert_eq!(
            reasons(&Applicant { scale: Some(Scale::Besar), ..good() }, &r, 50_000_000, &[]),
            [Reason::ScaleNotEligible]
        );
        assert_eq!(
            reasons(&Applicant { scale: None, ..good() }, &r, 50_000_000, &[]),
            [Reason::ScaleNotEligible]
        );
        assert_eq!(
            reasons(&Applicant { has_nib: false, ..good() }, &r, 50_000_000, &[]),
            [Reason::NibRequired]
        );
        assert_eq!(reasons(&good(), &r, 10_000_000, &[]), [Reason::AmountOutOfRange]);
        assert_eq!(reasons(&good(), &r, 100_000_001, &[]), [Reason::AmountOutOfRange]);
        assert_eq!(
            reasons(&Applicant { has_npwp: false, ..good() }, &r, 50_000_001, &[]),
            [Reason::NpwpRequired]
        );
        let elsewhere = OtherFinancing { bank_partner_id: 2, active_status: true, ends_on: None };
        assert_eq!(reasons(&good(), &r, 50_000_000, &[elsewhere]), [Reason::ActiveFinancingElsewhere]);
    }

    #[test]
    fn npwp_is_needed_only_above_50_million() {
        let no_npwp = Applicant { has_npwp: false, ..good() };
        assert!(reasons(&no_npwp, &mikro(), 50_000_000, &[]).is_empty());
        assert_eq!(reasons(&no_npwp, &mikro(), 50_000_001, &[]), [Reason::NpwpRequired]);
    }

    #[test]
    fn age_is_counted_in_whole_months() {
        assert_eq!(months_between(day(2026, 5, 29), today()), 6);
        assert_eq!(months_between(day(2026, 5, 30), today()), 5);
        assert_eq!(months_between(day(2027, 1, 1), today()), 0);
        let six = Applicant { established_on: Some(day(2026, 5, 29)), ..good() };
        assert!(reasons(&six, &mikro(), 50_000_000, &[]).is_empty());
        let five = Applicant { established_on: Some(day(2026, 5, 30)), ..good() };
        assert_eq!(reasons(&five, &mikro(), 50_000_000, &[]), [Reason::BusinessTooYoung]);
    }

    #[test]
    fn a_training_waives_the_age_rule_for_super_mikro_only() {
        let young_trained =
            Applicant { established_on: Some(day(2026, 10, 1)), attended_training: true, ..good() };
        let super_mikro = kur(ProgrammeKind::KurSuperMikro, 1, 10_000_000);
        assert!(reasons(&young_trained, &super_mikro, 5_000_000, &[]).is_empty());
        assert_eq!(reasons(&young_trained, &mikro(), 50_000_000, &[]), [Reason::BusinessTooYoung]);
        let young = Applicant { attended_training: false, ..young_trained };
        assert_eq!(reasons(&young, &super_mikro, 5_000_000, &[]), [Reason::BusinessTooYoung]);
    }

    #[test]
    fn only_live_financing_at_another_bank_counts() {
        let r = mikro();
        let same_bank = OtherFinancing { bank_partner_id: 1, active_status: true, ends_on: None };
        let ended =
            OtherFinancing { bank_partner_id: 2, active_status: true, ends_on: Some(day(2026, 11, 28)) };
        let ends_today = OtherFinancing { bank_partner_id: 2, active_status: true, ends_on: Some(today()) };
        let pending = OtherFinancing { bank_partner_id: 2, active_status: false, ends_on: None };
        assert!(reasons(&good(), &r, 50_000_000, &[same_bank, ended, pending]).is_empty());
        assert_eq!(reasons(&good(), &r, 50_000_000, &[ends_today]), [Reason::ActiveFinancingElsewhere]);
    }

    #[test]
    fn reasons_combine_in_a_stable_order() {
        let bad = Applicant {
            active: false,
            consented: false,
            established_on: None,
            scale: None,
            has_nib: false,
            has_npwp: false,
            attended_training: false,
        };
        let other = OtherFinancing { bank_partner_id: 3, active_status: true, ends_on: None };
        assert_eq!(
            reasons(&bad, &mikro(), 200_000_000, &[other]),
            [
                Reason::BusinessNotActive,
                Reason::NoConsent,
                Reason::BusinessTooYoung,
                Reason::ScaleNotEligible,
                Reason::NibRequired,
                Reason::AmountOutOfRange,
                Reason::NpwpRequired,
                Reason::ActiveFinancingElsewhere,
            ]
        );
    }

    #[test]
    fn every_transition_legal_and_illegal() {
        use ApplicationStatus::*;
        let all = [Submitted, InReview, Approved, Rejected, Disbursed, Withdrawn];
        let legal = [
            (Submitted, InReview),
            (InReview, Approved),
            (InReview, Rejected),
            (Approved, Disbursed),
            (Submitted, Withdrawn),
            (InReview, Withdrawn),
        ];
        for from in all {
            for to in all {
                assert_eq!(from.can_become(to), legal.contains(&(from, to)), "{from:?} → {to:?}");
            }
        }
        for s in all {
            assert_eq!(ApplicationStatus::parse(s.as_str()), Some(s));
        }
    }
}
