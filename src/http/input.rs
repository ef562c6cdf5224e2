//! Request fields that are checked all at once. [`Field`] keeps a field's shape problem instead
//! of failing the whole body, and [`Check`] collects every problem of a request so that a 422
//! names all the bad fields together.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::domain::Invalid;
use crate::error::{AppError, FieldError};

/// The characters a text field may hold, as the OpenAPI document declares it: anything but the
/// control characters (Unicode `Cc`) other than tab and newline.
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$";

/// Any string a client sends: no NUL ([`nul_fields`]).
pub const NO_NUL_PATTERN: &str = r"^[^\u0000]*$";

/// A required text: [`TEXT_PATTERN`]'s characters, at least one of them kept by trimming (not
/// white space as `char::is_whitespace` has it: tab, newline, space, U+00A0, U+1680,
/// U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
pub const REQUIRED_TEXT_PATTERN: &str = concat!(
    r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
);

/// Where a JSON document holds a NUL character (`\u0000`), which no text of this API takes
/// and PostgreSQL cannot store: the path of every string or key that holds one, as serde's
/// paths read (`rows[2].name`). Empty when there is none, or the document is not JSON (its
/// parse says so).
pub fn nul_fields(body: &[u8]) -> Vec<String> {
    const ESCAPE: &[u8] = b"\\u0000";
    // An escape only where the backslash is not itself escaped: an odd run of them.
    let escaped = body.windows(ESCAPE.len()).enumerate().any(|(at, window)| {
        window == ESCAPE && body[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    });
    if !escaped {
        return Vec::new();
    }
    serde_json::from_slice(body).map(|value| nul_paths(&value)).unwrap_or_default()
}

/// The paths of the strings and keys of `value` that hold a NUL, in document order.
pub fn nul_paths(value: &serde_json::Value) -> Vec<String> {
    fn visit(value: &serde_json::Value, path: String, found: &mut Vec<String>) {
        let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
        match value {
            serde_json::Value::String(text) if text.contains('\0') => found.push(path),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    visit(item, format!("{path}[{i}]"), found);
                }
            }
            serde_json::Value::Object(fields) => {
                for (key, item) in fields {
                    if key.contains('\0') {
                        found.push(join(&key.replace('\0', "")));
                    } else {
                        visit(item, join(key), found);
                    }
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    visit(value, String::new(), &mut found);
    found
}

/// `value` with every NUL taken out of its strings and keys: what is checked of a document
/// whose NULs were already recorded as bad fields, so that its other fields are checked too.
pub fn without_nul(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(text.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (k.replace('\0', ""), without_nul(v))).collect())
        }
        other => other,
    }
}

/// One field of a request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    /// Not sent.
    #[default]
    Absent,
    /// Sent as `null`.
    Null,
    /// Sent with a value of the right type.
    Value(T),
    /// Sent with a value of the wrong type; serde's message.
    Invalid(String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Null => Field::Null,
            value => match serde_json::from_value::<T>(value) {
                Ok(v) => Field::Value(v),
                Err(e) => Field::Invalid(e.to_string()),
            },
        })
    }
}

/// Collects the problems of one request (or one row of an import).
#[derive(Debug, Default)]
pub struct Check {
    prefix: String,
    /// The problems found so far.
    pub errors: Vec<FieldError>,
}

impl Check {
    /// A check whose field names start with `prefix` (`rows[3].`).
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Check { prefix: prefix.into(), errors: Vec::new() }
    }

    /// The name `field`'s problems are recorded under (`rows[3].name`).
    pub fn field_name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// Records a problem with `field`.
    pub fn fail(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(format!("{}{field}", self.prefix), code, message));
    }

    /// Records a broken rule.
    pub fn invalid(&mut self, field: &str, invalid: Invalid) {
        self.fail(field, invalid.code, invalid.message);
    }

    /// A field that must be present and not null.
    pub fn required<T>(&mut self, field: &str, value: Field<T>) -> Option<T> {
        match value {
            Field::Value(v) => Some(v),
            Field::Absent | Field::Null => {
                self.fail(field, "required", "is required");
                None
            }
            Field::Invalid(message) => {
                self.fail(field, "invalid_type", message);
                None
            }
        }
    }

    /// A field that may be absent or null (both meaning "none").
    pub fn optional<T>(&mut self, field: &str, value: Field<T>) -> Option<T> {
        match value {
            Field::Value(v) => Some(v),
            Field::Absent | Field::Null => None,
            Field::Invalid(message) => {
                self.fail(field, "invalid_type", message);
                None
            }
        }
    }

    /// A required text of at most `max` characters, trimmed, not blank
    /// ([`REQUIRED_TEXT_PATTERN`]).
    pub fn text(&mut self, field: &str, value: Field<String>, max: usize) -> Option<String> {
        let text = self.required(field, value)?;
        self.shape(field, &text, max)?;
        let text = text.trim();
        if text.is_empty() {
            self.fail(field, "required", "must not be empty");
            return None;
        }
        Some(text.to_owned())
    }

    /// An optional text of at most `max` characters, trimmed; blank means none.
    pub fn optional_text(&mut self, field: &str, value: Field<String>, max: usize) -> Option<String> {
        let text = self.optional(field, value)?;
        self.trimmed(field, text, max)
    }

    /// A text sent as an optional field's new value ([`optional_text`](Self::optional_text)
    /// for fields read without [`Field`]): checked, trimmed, and `None` when blank or refused.
    pub fn trimmed(&mut self, field: &str, text: String, max: usize) -> Option<String> {
        self.shape(field, &text, max)?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// What the document declares of a text, checked on the text as sent (before trimming):
    /// no control characters but tab and newline ([`TEXT_PATTERN`]), at most `max` characters
    /// (`maxLength`).
    fn shape(&mut self, field: &str, text: &str, max: usize) -> Option<()> {
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            self.fail(field, "invalid_format", "must not contain control characters");
            None
        } else if text.chars().count() > max {
            self.fail(field, "too_long", format!("must be at most {max} characters"));
            None
        } else {
            Some(())
        }
    }

    /// Parses a present value with a domain parser.
    pub fn parse<T, U>(
        &mut self,
        field: &str,
        value: Option<T>,
        parser: impl FnOnce(T) -> Result<U, Invalid>,
    ) -> Option<U> {
        match parser(value?) {
            Ok(parsed) => Some(parsed),
            Err(invalid) => {
                self.invalid(field, invalid);
                None
            }
        }
    }

    /// A whole number in `range`.
    pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        field: &str,
        value: Option<T>,
        range: std::ops::RangeInclusive<T>,
    ) -> Option<T> {
        let v = value?;
        if range.contains(&v) {
            Some(v)
        } else {
            self.fail(
                field,
                "out_of_range",
                format!("must be between {} and {}", range.start(), range.end()),
            );
            None
        }
    }

    /// 422 with every problem, or `ok` when there were none.
    pub fn finish<T>(self, ok: impl FnOnce() -> Option<T>) -> Result<T, AppError> {
        if !self.errors.is_empty() {
            return Err(AppError::Validation(self.errors));
        }
        ok().ok_or_else(|| AppError::internal("a checked field is missing without an error"))
    }
}

/// Distinguishes a field sent as `null` (`Some(None)`) from an absent one (`None`), for
/// `#[serde(default, deserialize_with = "present")]` fields of typed patches.
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default)]
        a: Field<i64>,
        #[serde(default)]
        b: Field<String>,
        #[serde(default)]
        c: Field<i64>,
    }

    #[test]
    fn fields_keep_their_problems_and_checks_collect_them() {
        let body: Body = serde_json::from_value(json!({"a": "x", "b": null})).unwrap();
        assert!(matches!(body.a, Field::Invalid(_)));
        assert_eq!(body.b, Field::Null);
        assert_eq!(body.c, Field::Absent);
        let mut check = Check::with_prefix("rows[2].");
        check.required("a", body.a);
        check.text("b", body.b, 10);
        check.optional("c", body.c);
        let fields: Vec<_> = check.errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(fields, [("rows[2].a", "invalid_type"), ("rows[2].b", "required")]);
    }

    #[test]
    fn texts_refuse_what_their_pattern_refuses() {
        let pattern = regex_lite::Regex::new(TEXT_PATTERN).unwrap();
        for (text, ok) in [
            ("Jl. Raya\tNo. 12\n", true),
            (" Kripik ", true),
            ("a\u{1}b", false),
            ("abc\r", false),
            ("\u{85}", false),
            ("x\u{7f}", false),
        ] {
            assert_eq!(pattern.is_match(text), ok, "{text:?}");
            let mut check = Check::default();
            assert_eq!(
                check.optional_text("t", Field::Value(text.to_owned()), 100).is_some(),
                ok,
                "{text:?}"
            );
        }
    }

    #[test]
    fn required_texts_refuse_what_their_pattern_refuses() {
        let pattern = regex_lite::Regex::new(REQUIRED_TEXT_PATTERN).unwrap();
        // Every white space character `trim` removes, and a few it keeps.
        let blanks: Vec<char> =
            (0..=0x3000u32).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        assert_eq!(blanks.len(), 25, "{blanks:?}");
        for c in blanks {
            let text = format!(" {c}\t");
            assert!(!pattern.is_match(&text), "{text:?}");
            assert!(Check::default().text("t", Field::Value(text.clone()), 10).is_none(), "{text:?}");
        }
        for (text, ok) in [
            (" Kripik ", true),
            ("\u{feff}", true),
            ("\u{200b}", true),
            ("x", true),
            ("", false),
            ("a\u{1}b", false),
            (" \u{85} ", false),
        ] {
            assert_eq!(pattern.is_match(text), ok, "{text:?}");
            assert_eq!(
                Check::default().text("t", Field::Value(text.to_owned()), 10).is_some(),
                ok,
                "{text:?}"
            );
        }
    }

    #[test]
    fn lengths_count_the_text_as_sent() {
        let mut check = Check::default();
        assert_eq!(check.text("a", Field::Value(" abc ".into()), 5).as_deref(), Some("abc"));
        assert_eq!(check.text("b", Field::Value(" abcd ".into()), 5), None);
        assert_eq!(check.optional_text("c", Field::Value("      ".into()), 5), None);
        let fields: Vec<_> = check.errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(fields, [("b", "too_long"), ("c", "too_long")]);
    }
}
