//! The error every parser in this crate returns: which field is wrong, and why.
//!
//! Field names are JSON paths as the client wrote them (`headers.X-Foo`, `events[2]`), so the
//! problem+json answer can point at the exact spot.

use std::fmt;

/// A value the client sent that Herald will not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidField {
    /// Path of the offending field, e.g. `retry_policy.schedule_seconds[1]`.
    pub field: String,
    /// What is wrong with it, in a sentence a user can act on.
    pub message: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Places this error under a parent field: `name` under `webhook` becomes `webhook.name`;
    /// an index path such as `[2]` is appended without a dot.
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The most characters of a free-text name (webhooks, API keys).
pub const NAME_MAX_LEN: usize = 100;
/// The most characters of a description.
pub const DESCRIPTION_MAX_LEN: usize = 1000;

/// Checks a free-text field: trimmed length within `1..=max` characters and no control characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, InvalidField> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(InvalidField::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Like [`text`] for optional fields; an empty string clears the value.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, InvalidField> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_read_as_paths() {
        let e = InvalidField::new("[1]", "bad").within("events");
        assert_eq!(e.field, "events[1]");
        let e = InvalidField::new("header", "bad").within("signing");
        assert_eq!(e.field, "signing.header");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("name", "  a b ", 3).unwrap(), "a b");
        assert_eq!(text("name", "   ", 3).unwrap_err().field, "name");
        assert!(text("name", "abcd", 3).is_err());
        assert!(text("name", "a\u{7}", 3).is_err());
    }
}
