//! Indonesian identity and registration numbers, parsed once at the edge into types that
//! cannot hold an invalid value.

use chrono::NaiveDate;

use super::Invalid;

fn digits_only(raw: &str) -> bool {
    !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())
}

/// Removes the separators people type in numbers (spaces, dots, dashes, slashes, parentheses).
fn strip_separators(raw: &str) -> String {
    raw.chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '/' | '(' | ')')).collect()
}

/// The separators [`strip_separators`] drops, as a regular-expression class, for the patterns
/// the OpenAPI document declares.
macro_rules! sep {
    () => {
        r"[ ./()\-]*"
    };
}

pub mod patterns;

/// Whether `code` (trimmed) is a partner code: 2 to 20 ASCII letters, digits or dashes.
pub fn is_partner_code(code: &str) -> bool {
    (2..=20).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Province codes (Kemendagri), the first two digits of every region code.
const PROVINCES: [u8; 38] = [
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65, 71, 72,
    73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96,
];

fn two(digits: &str, at: usize) -> u32 {
    digits[at..at + 2].parse().unwrap_or(0)
}

/// Whether `code` (4 digits) names a regency: a province code and a non-zero regency number.
fn is_regency_code(code: &str) -> bool {
    let province = u8::try_from(two(code, 0)).unwrap_or(0);
    PROVINCES.contains(&province) && two(code, 2) != 0
}

/// Whether `code` is shaped as a village code, `PP.RR.DD.VVVV` ([`patterns::VILLAGE`] on the
/// trimmed text).
pub fn is_village_code(code: &str) -> bool {
    let segments: Vec<&str> = code.split('.').collect();
    segments.iter().map(|s| s.len()).eq([2, 2, 2, 4]) && segments.iter().all(|s| digits_only(s))
}

/// Nomor Induk Kependudukan: 16 digits — the district of the person's first registration
/// (province, regency, district: digits 1–6, any code, retired ones included), birth date as DDMMYY (digits 7–12, day + 40 for women) and
/// a serial number (digits 13–16). There is no check digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nik(String);

impl Nik {
    /// Parses a NIK; separators typed between the digits are ignored.
    pub fn parse(raw: &str) -> Result<Nik, Invalid> {
        let nik = strip_separators(raw);
        if nik.len() != 16 || !digits_only(&nik) {
            return Err(Invalid::format("must be 16 digits"));
        }
        // Digits 1-6 are never refused: the district of a first registration may be anywhere,
        // and a code since retired (issue 31); officers see the district when the tree knows it.
        if Nik::birth_day_month(&nik).is_none() {
            return Err(Invalid::format("digits 7–12 must be a birth date DDMMYY (day + 40 for women)"));
        }
        if &nik[12..] == "0000" {
            return Err(Invalid::format("digits 13–16 must be a serial number from 0001"));
        }
        Ok(Nik(nik))
    }

    /// Day and month of birth if digits 7–12 form a date that exists in some year ending in YY.
    fn birth_day_month(nik: &str) -> Option<(u32, u32)> {
        let day = match two(nik, 6) {
            d @ 1..=31 => d,
            d @ 41..=71 => d - 40,
            _ => return None,
        };
        let month = two(nik, 8);
        let yy = i32::try_from(two(nik, 10)).ok()?;
        // 29 February exists for YY divisible by 4 (2000 was a leap year), in one century or the other.
        [1900 + yy, 2000 + yy]
            .iter()
            .any(|year| NaiveDate::from_ymd_opt(*year, month, day).is_some())
            .then_some((day, month))
    }

    /// Whether the NIK is a woman's (day of birth + 40).
    pub fn is_female(&self) -> bool {
        two(&self.0, 6) > 40
    }

    /// The district code of registration, as `PP.RR.DD`.
    pub fn district_code(&self) -> String {
        format!("{}.{}.{}", &self.0[0..2], &self.0[2..4], &self.0[4..6])
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Nomor Induk Berusaha from OSS: 13 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nib(String);

impl Nib {
    /// Parses a NIB.
    pub fn parse(raw: &str) -> Result<Nib, Invalid> {
        let nib = strip_separators(raw);
        if nib.len() == 13 && digits_only(&nib) {
            Ok(Nib(nib))
        } else {
            Err(Invalid::format("must be 13 digits"))
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Nomor Pokok Wajib Pajak: 15 digits, or 16 since 2024 (the NIK-based form). Dots and
/// dashes of the printed form (`01.234.567.8-901.000`) are accepted and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Npwp(String);

impl Npwp {
    /// Parses an NPWP.
    pub fn parse(raw: &str) -> Result<Npwp, Invalid> {
        let npwp = strip_separators(raw);
        if matches!(npwp.len(), 15 | 16) && digits_only(&npwp) {
            Ok(Npwp(npwp))
        } else {
            Err(Invalid::format("must be 15 or 16 digits"))
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The divisions (first two digits) of KBLI 2020, section by section.
const KBLI_DIVISIONS: &[std::ops::RangeInclusive<u8>] = &[
    1..=3,   // A agriculture, forestry, fishing
    5..=9,   // B mining
    10..=33, // C manufacturing
    35..=35, // D electricity, gas
    36..=39, // E water, waste
    41..=43, // F construction
    45..=47, // G trade
    49..=53, // H transport
    55..=56, // I accommodation, food service
    58..=63, // J information, communication
    64..=66, // K finance
    68..=68, // L real estate
    69..=75, // M professional services
    77..=82, // N administrative services
    84..=84, // O public administration
    85..=85, // P education
    86..=88, // Q health
    90..=93, // R arts, recreation
    94..=96, // S other services
    97..=98, // T households
    99..=99, // U international bodies
];

/// A five-digit KBLI 2020 code (Klasifikasi Baku Lapangan Usaha Indonesia).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kbli(String);

impl Kbli {
    /// Parses a KBLI code; its division must exist in KBLI 2020.
    pub fn parse(raw: &str) -> Result<Kbli, Invalid> {
        let kbli = raw.trim();
        if kbli.len() != 5 || !digits_only(kbli) {
            return Err(Invalid::format("must be a 5-digit KBLI 2020 code"));
        }
        let division = u8::try_from(two(kbli, 0)).unwrap_or(0);
        if !KBLI_DIVISIONS.iter().any(|r| r.contains(&division)) {
            return Err(Invalid::format(format!("{division:02} is not a KBLI 2020 division")));
        }
        Ok(Kbli(kbli.to_owned()))
    }

    /// The two-digit division (`10`–`33` is manufacturing).
    pub fn division(&self) -> u8 {
        u8::try_from(two(&self.0, 0)).unwrap_or(0)
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Kemendagri district (kecamatan) code, `PP.RR.DD`. Whether it exists is a question for the
/// `regions` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistrictCode(String);

impl DistrictCode {
    /// Parses the shape of a district code.
    pub fn parse(raw: &str) -> Result<DistrictCode, Invalid> {
        let code = raw.trim();
        let parts: Vec<&str> = code.split('.').collect();
        let shaped = parts.len() == 3 && parts.iter().all(|p| p.len() == 2 && digits_only(p));
        if shaped {
            Ok(DistrictCode(code.to_owned()))
        } else {
            Err(Invalid::format("must be a district code like 35.24.05"))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Indonesian phone number, normalised to `+62` and the national number without its
/// leading 0: mobile (`8…`, 9–12 digits) or landline (area code and number, 8–11 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Parses `0812-3456-789`, `+62 812 3456 789`, `62812…`, `(0322) 321 456` and the like.
    pub fn parse(raw: &str) -> Result<Phone, Invalid> {
        let compact = strip_separators(raw);
        let national = if let Some(rest) = compact.strip_prefix("+62") {
            rest
        } else if let Some(rest) = compact.strip_prefix("62") {
            rest
        } else if let Some(rest) = compact.strip_prefix('0') {
            rest
        } else {
            return Err(Invalid::format("must be an Indonesian number: 08…, +62… or an area code"));
        };
        let national = national.strip_prefix('0').unwrap_or(national);
        if !digits_only(national) {
            return Err(Invalid::format("must contain only digits after +62"));
        }
        let valid = match national.as_bytes()[0] {
            b'8' => (9..=12).contains(&national.len()),
            b'2'..=b'7' | b'9' => (8..=11).contains(&national.len()),
            _ => false,
        };
        if valid {
            Ok(Phone(format!("+62{national}")))
        } else {
            Err(Invalid::format("is not a valid Indonesian mobile or landline number"))
        }
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an address: one `@`, something on each side, no spaces or control characters, at
    /// most 254 characters.
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.contains(|c: char| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid { Ok(Email(email)) } else { Err(Invalid::format("must be an e-mail address")) }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A P-IRT number (Pangan Industri Rumah Tangga): 15 digits, digits 4–7 the code of the
/// regency that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PirtNumber(String);

impl PirtNumber {
    /// Parses a P-IRT number; separators are ignored.
    pub fn parse(raw: &str) -> Result<PirtNumber, Invalid> {
        let pirt = strip_separators(raw);
        if pirt.len() != 15 || !digits_only(&pirt) {
            return Err(Invalid::format("must be 15 digits"));
        }
        if !is_regency_code(&pirt[3..7]) {
            return Err(Invalid::format("digits 4–7 must be a regency code such as 3524"));
        }
        Ok(PirtNumber(pirt))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A BPOM registration number for processed food: `MD` (domestic) or `ML` (imported) and 12
/// digits. `BPOM RI MD 123…` as printed on packs is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpomNumber(String);

impl BpomNumber {
    /// Parses a BPOM number.
    pub fn parse(raw: &str) -> Result<BpomNumber, Invalid> {
        let compact: String = raw.to_uppercase().split_whitespace().collect();
        let compact = compact.strip_prefix("BPOMRI").unwrap_or(&compact);
        let valid = (compact.starts_with("MD") || compact.starts_with("ML"))
            && compact.len() == 14
            && digits_only(&compact[2..]);
        if valid {
            Ok(BpomNumber(compact.to_owned()))
        } else {
            Err(Invalid::format("must be MD or ML followed by 12 digits"))
        }
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A halal certificate number from BPJPH: `ID` followed by 10 to 20 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HalalCertificate(String);

impl HalalCertificate {
    /// Parses a certificate number.
    pub fn parse(raw: &str) -> Result<HalalCertificate, Invalid> {
        let compact: String = raw.to_uppercase().split_whitespace().collect();
        let valid = compact
            .strip_prefix("ID")
            .is_some_and(|digits| (10..=20).contains(&digits.len()) && digits_only(digits));
        if valid {
            Ok(HalalCertificate(compact))
        } else {
            Err(Invalid::format("must be ID followed by 10 to 20 digits (BPJPH)"))
        }
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nik_checks_birth_date_and_serial_never_the_region() {
        let man = Nik::parse("3524051203900001").unwrap();
        assert!(!man.is_female());
        assert_eq!(man.district_code(), "35.24.05");
        // Day 41–71 is a woman's date: 52 is the 12th.
        let woman = Nik::parse("3524055203900002").unwrap();
        assert!(woman.is_female());
        assert!(Nik::parse("3524057103900002").is_ok(), "day 71 = 31st");
        assert!(Nik::parse("3524054103900002").is_ok(), "day 41 = 1st");
        assert!(Nik::parse("3524057203900002").is_err(), "day 72 is no date");
        assert!(Nik::parse("3524054003900002").is_err(), "day 40 is no date");
        assert!(Nik::parse("3524053203900002").is_err(), "day 32 is no date");
        assert!(Nik::parse("3524050003900002").is_err(), "day 0 is no date");
        assert!(Nik::parse("3524053102900002").is_err(), "31 February");
        assert!(Nik::parse("3524052902000002").is_ok(), "29 February 2000");
        assert!(Nik::parse("3524052902010002").is_err(), "29 February 2001");
        assert!(Nik::parse("3524051213900002").is_err(), "month 13");
        assert!(Nik::parse("3524051203900000").is_err(), "serial 0000");
        // Any district, a province since retired (54, Timor Timur) included.
        for prefix in ["540105", "350005", "352400"] {
            assert!(Nik::parse(&format!("{prefix}1203900001")).is_ok(), "{prefix}");
        }
        assert!(Nik::parse("352405120390000").is_err(), "15 digits");
        assert!(Nik::parse("35240512039000012").is_err(), "17 digits");
        assert!(Nik::parse("35240512039O0001").is_err(), "a letter");
        assert_eq!(Nik::parse("3524 0512 0390 0001").unwrap().as_str(), "3524051203900001");
    }

    #[test]
    fn nib_npwp_and_kbli_formats() {
        assert!(Nib::parse("1234567890123").is_ok());
        assert!(Nib::parse("123456789012").is_err());
        assert!(Nib::parse("12345678901234").is_err());
        assert_eq!(Npwp::parse("01.234.567.8-901.000").unwrap().as_str(), "012345678901000");
        assert!(Npwp::parse("3524051203900001").is_ok(), "16 digits since 2024");
        assert!(Npwp::parse("01234567890100").is_err());
        assert_eq!(Kbli::parse("10710").unwrap().division(), 10);
        assert!(Kbli::parse("04100").is_err(), "division 04 does not exist");
        assert!(Kbli::parse("1071").is_err());
        assert!(Kbli::parse("1071a").is_err());
    }

    #[test]
    fn phones_are_normalised_to_plus_62() {
        for raw in ["0812-3456-789", "+62 812 3456 789", "628123456789", "+62 0812 3456 789"] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), "+628123456789", "{raw}");
        }
        assert_eq!(Phone::parse("(0322) 321456").unwrap().as_str(), "+62322321456");
        assert!(Phone::parse("0812345").is_err(), "too short");
        assert!(Phone::parse("0812345678901234").is_err(), "too long");
        assert!(Phone::parse("+1 415 555 0100").is_err(), "not Indonesian");
        assert!(Phone::parse("0112345678").is_err(), "no area code starts with 1");
        assert!(Phone::parse("0812abc4567").is_err());
    }

    #[test]
    fn product_certifications() {
        assert!(PirtNumber::parse("206352401002025").is_ok());
        assert!(PirtNumber::parse("206990001002025").is_err(), "no regency 9900");
        assert!(PirtNumber::parse("20635240100202").is_err(), "14 digits");
        assert_eq!(BpomNumber::parse("BPOM RI MD 224513001234").unwrap().as_str(), "MD224513001234");
        assert!(BpomNumber::parse("ML123456789012").is_ok());
        assert!(BpomNumber::parse("MK123456789012").is_err());
        assert!(BpomNumber::parse("MD12345678901").is_err());
        assert!(HalalCertificate::parse("ID35110000123450322").is_ok());
        assert!(HalalCertificate::parse("35110000123450322").is_err());
        assert!(HalalCertificate::parse("ID123").is_err());
    }

    #[test]
    fn district_codes_and_emails() {
        assert!(DistrictCode::parse("35.24.05").is_ok());
        for bad in ["35.24", "35.24.5", "35-24-05", "35.24.05.01", "ab.cd.ef"] {
            assert!(DistrictCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Email::parse(" Budi@Example.COM ").unwrap().as_str(), "budi@example.com");
        for bad in ["", "no-at", "@d", "l@", "a b@c", "a@b@c", "a@.b", "a@b."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
