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

    /// A required text of `min..=max` characters, trimmed.
    pub fn text(&mut self, field: &str, value: Field<String>, max: usize) -> Option<String> {
        let text = self.required(field, value)?;
        self.no_control(field, &text)?;
        self.length(field, text.trim().to_owned(), max)
    }

    /// An optional text of at most `max` characters, trimmed; empty means none.
    pub fn optional_text(&mut self, field: &str, value: Field<String>, max: usize) -> Option<String> {
        let text = self.optional(field, value)?;
        self.no_control(field, &text)?;
        let text = text.trim().to_owned();
        if text.is_empty() { None } else { self.length(field, text, max) }
    }

    /// Control characters other than tab and newline are refused anywhere in a text, before
    /// it is trimmed, as [`TEXT_PATTERN`] declares.
    fn no_control(&mut self, field: &str, text: &str) -> Option<()> {
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            self.fail(field, "invalid_format", "must not contain control characters");
            None
        } else {
            Some(())
        }
    }

    fn length(&mut self, field: &str, text: String, max: usize) -> Option<String> {
        let n = text.chars().count();
        if n == 0 {
            self.fail(field, "required", "must not be empty");
            None
        } else if n > max {
            self.fail(field, "too_long", format!("must be at most {max} characters"));
            None
        } else {
            Some(text)
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
}
