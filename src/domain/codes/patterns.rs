//! The shapes the parsers accept, as the OpenAPI document declares them (ECMA-262 regular
//! expressions). A value of this shape can still be refused for what it says (a NIK's birth
//! date, a KBLI division that does not exist): the shape is what a form can check.

/// [`Nik`](super::Nik): 16 digits, separators anywhere.
pub const NIK: &str = concat!("^", sep!(), "([0-9]", sep!(), "){16}$");
/// [`Nib`](super::Nib): 13 digits.
pub const NIB: &str = concat!("^", sep!(), "([0-9]", sep!(), "){13}$");
/// [`Npwp`](super::Npwp): 15 or 16 digits.
pub const NPWP: &str = concat!("^", sep!(), "([0-9]", sep!(), "){15,16}$");
/// [`PirtNumber`](super::PirtNumber): 15 digits.
pub const PIRT: &str = concat!("^", sep!(), "([0-9]", sep!(), "){15}$");
/// [`Kbli`](super::Kbli): 5 digits.
pub const KBLI: &str = r"^\s*[0-9]{5}\s*$";
/// [`DistrictCode`](super::DistrictCode): `PP.RR.DD`.
pub const DISTRICT: &str = r"^\s*[0-9]{2}\.[0-9]{2}\.[0-9]{2}\s*$";
/// A village code, `PP.RR.DD.VVVV` (`crate::regions::villages::is_code`, on the trimmed text).
pub const VILLAGE: &str = r"^\s*[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}\s*$";
/// [`Phone`](super::Phone): `+62`, `62` or `0`, perhaps another `0`, then a mobile (`8` and
/// 8–11 more digits) or landline (8–11 digits from `2`–`7` or `9`) number.
pub const PHONE: &str = concat!(
    "^",
    sep!(),
    r"(\+",
    sep!(),
    "6",
    sep!(),
    "2",
    sep!(),
    "|6",
    sep!(),
    "2",
    sep!(),
    "|0",
    sep!(),
    ")(0",
    sep!(),
    ")?(8",
    sep!(),
    "([0-9]",
    sep!(),
    "){8,11}|[2-79]",
    sep!(),
    "([0-9]",
    sep!(),
    "){7,10})$"
);
/// [`Email`](super::Email): one `@`, no spaces or control characters, a domain not starting or
/// ending with a dot.
pub const EMAIL: &str = concat!(
    r"^\s*[^\s@\u0000-\u001F\u007F-\u009F]+@([^\s@.\u0000-\u001F\u007F-\u009F]|",
    r"[^\s@.\u0000-\u001F\u007F-\u009F][^\s@\u0000-\u001F\u007F-\u009F]*[^\s@.\u0000-\u001F\u007F-\u009F])\s*$"
);
/// [`BpomNumber`](super::BpomNumber): `MD` or `ML` and 12 digits, perhaps after `BPOM RI`.
pub const BPOM: &str = r"^\s*([Bb]\s*[Pp]\s*[Oo]\s*[Mm]\s*[Rr]\s*[Ii]\s*)?[Mm]\s*[DdLl]\s*([0-9]\s*){12}$";
/// [`HalalCertificate`](super::HalalCertificate): `ID` and 10 to 20 digits.
pub const HALAL: &str = r"^\s*[Ii]\s*[Dd]\s*([0-9]\s*){10,20}$";
/// A partner's code ([`is_partner_code`](super::is_partner_code)): 2 to 20 ASCII letters,
/// digits or dashes.
pub const PARTNER_CODE: &str = r"^\s*[A-Za-z0-9-]{2,20}\s*$";

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    /// Each declared shape holds what its parser accepts and refuses what it refuses for shape:
    /// `parse` ok ⇒ the pattern matches; the pattern does not match ⇒ `parse` fails.
    #[test]
    fn the_declared_patterns_fit_the_parsers() {
        type Parser = fn(&str) -> bool;
        let cases: [(&str, Parser, &[&str]); 12] = [
            (
                NIK,
                |v| Nik::parse(v).is_ok(),
                &[
                    "3524055203900002",
                    "3524-0552-0390-0002",
                    " 35.24.05 520390 0002",
                    "352405520390000",
                    "3524055203900002x",
                    "35240552039000021",
                ],
            ),
            (
                NIB,
                |v| Nib::parse(v).is_ok(),
                &["9120301234567", "912 030 123 4567", "912030123456", "9120301234567a"],
            ),
            (
                NPWP,
                |v| Npwp::parse(v).is_ok(),
                &[
                    "012345678901000",
                    "01.234.567.8-901.000",
                    "3524055203900002",
                    "01234567890100",
                    "01234567890100012",
                ],
            ),
            (
                PIRT,
                |v| PirtNumber::parse(v).is_ok(),
                &["206352401002025", "2063524-01-002025", "20635240100202", "2063524010020255"],
            ),
            (KBLI, |v| Kbli::parse(v).is_ok(), &["10750", " 10750 ", "1075", "107500", "1O750"]),
            (
                DISTRICT,
                |v| DistrictCode::parse(v).is_ok(),
                &["35.24.05", " 35.24.05", "35.24", "35-24-05", "35.24.5", "35.24.05.1"],
            ),
            (
                VILLAGE,
                |v| is_village_code(v.trim()),
                &[
                    "35.24.05.2001",
                    " 35.24.05.2001 ",
                    "35.24.05",
                    "35.24.05.201",
                    "35.24.05.2001.1",
                    "35-24-05-2001",
                ],
            ),
            (
                PHONE,
                |v| Phone::parse(v).is_ok(),
                &[
                    "0812-3456-789",
                    "+62 812 3456 789",
                    "62812345678",
                    "(0322) 321 456",
                    "+620812345678",
                    "0812",
                    "+1 212 555 0100",
                    "1812345678",
                    "08123456789012",
                    "0812a3456789",
                    "062812345678",
                ],
            ),
            (
                EMAIL,
                |v| Email::parse(v).is_ok(),
                &[
                    "a@b",
                    " Sri@Example.com ",
                    "a@b.",
                    "a@.b",
                    "@b",
                    "a@",
                    "a b@c",
                    "a@b@c",
                    "a\u{0}b@c",
                    "a@b\u{7f}",
                ],
            ),
            (
                BPOM,
                |v| BpomNumber::parse(v).is_ok(),
                &[
                    "MD224513001234",
                    "BPOM RI MD 224513001234",
                    "ml224513001234",
                    "MX224513001234",
                    "MD22451300123",
                    "MD2245130012345",
                ],
            ),
            (
                HALAL,
                |v| HalalCertificate::parse(v).is_ok(),
                &[
                    "ID35110000123450322",
                    "id 3511000012",
                    "ID351100001",
                    "ID123456789012345678901",
                    "IX3511000012",
                ],
            ),
            (
                PARTNER_CODE,
                |v| is_partner_code(v.trim()),
                &["BRI", "bank-jatim", "B", "ABCDEFGHIJKLMNOPQRSTU", "BR I", "ßß"],
            ),
        ];
        for (pattern, parses, samples) in cases {
            let shape = regex_lite::Regex::new(pattern).unwrap();
            for sample in samples {
                if parses(sample) {
                    assert!(shape.is_match(sample), "{pattern} refuses {sample:?}, which parses");
                }
                if !shape.is_match(sample) {
                    assert!(!parses(sample), "{pattern} refuses {sample:?}, which parses");
                }
            }
            // Both ways at least once, so that the pattern is not vacuous.
            assert!(
                samples.iter().any(|s| parses(s)) && samples.iter().any(|s| !shape.is_match(s)),
                "{pattern}"
            );
        }
    }
}
