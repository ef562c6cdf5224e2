//! The rules of the domain as pure functions and types, with no I/O: the identity and
//! registration numbers a record may hold, the size classes the regulations define, and what a
//! caller without clearance sees of personal data.

pub mod classification;
pub mod codes;
pub mod financing;
pub mod masking;
pub mod role;
pub mod scope;
pub mod selection;

/// A rule a value broke: a stable code and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Machine-readable (`invalid_format`, `out_of_range`, …).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Invalid {
    /// An `invalid_format` problem.
    pub fn format(message: impl Into<String>) -> Self {
        Invalid { code: "invalid_format", message: message.into() }
    }

    /// An `out_of_range` problem.
    pub fn range(message: impl Into<String>) -> Self {
        Invalid { code: "out_of_range", message: message.into() }
    }
}
