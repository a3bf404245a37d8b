//! Event types: named kinds of event (`environment.suspended`, `Webhook Validate`), each with a
//! description and optionally a JSON Schema that every published event's `data` must satisfy.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::ProjectId;
use crate::time::Timestamp;
use crate::validation::InvalidField;

/// The name of an event type.
///
/// Dotted names (`environment.suspended`) are the norm, but the seed platforms also use
/// display names with spaces (`Webhook Validate`, `Site Plan Change`), so those are allowed too.
/// `*` is reserved for filters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventTypeName(String);

impl EventTypeName {
    pub const MAX_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, InvalidField> {
        let bad = |why: &str| InvalidField::new("", why);
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(bad("must be 1 to 128 characters"));
        }
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-:/ ".contains(*c)))
        {
            return Err(bad(&format!(
                "contains '{c}'; event type names may use letters, digits, spaces and . _ - : /"
            )));
        }
        if value.starts_with([' ', '.']) || value.ends_with([' ', '.']) || value.contains("..") {
            return Err(bad(
                "must not start or end with a space or '.', nor contain '..'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventTypeName {
    type Error = InvalidField;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventTypeName> for String {
    fn from(n: EventTypeName) -> String {
        n.0
    }
}

/// A JSON Schema that has been checked to compile, kept compiled: checking an event's data
/// against it costs no compilation.
#[derive(Clone)]
pub struct EventSchema {
    value: Value,
    validator: Arc<jsonschema::Validator>,
}

impl EventSchema {
    pub fn parse(schema: Value) -> Result<Self, InvalidField> {
        if !schema.is_object() && !schema.is_boolean() {
            return Err(InvalidField::new(
                "schema",
                "must be a JSON Schema (an object or a boolean)",
            ));
        }
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| InvalidField::new("schema", format!("is not a valid JSON Schema: {e}")))?;
        Ok(Self {
            value: schema,
            validator: Arc::new(validator),
        })
    }

    pub fn as_value(&self) -> &Value {
        &self.value
    }

    /// Checks an event's data against this schema; the error names the path inside `data`.
    pub fn check(&self, data: &Value) -> Result<(), InvalidField> {
        match self.validator.iter_errors(data).next() {
            None => Ok(()),
            Some(error) => {
                let pointer = error.instance_path().to_string();
                let field = if pointer.is_empty() {
                    "data".to_owned()
                } else {
                    format!("data{}", pointer.replace('/', "."))
                };
                Err(InvalidField::new(
                    field,
                    format!("does not match the event type's schema: {error}"),
                ))
            }
        }
    }
}

impl PartialEq for EventSchema {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl std::fmt::Debug for EventSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EventSchema").field(&self.value).finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventType {
    pub project_id: ProjectId,
    pub name: EventTypeName,
    pub description: Option<String>,
    pub schema: Option<EventSchema>,
    pub archived: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_allow_dots_and_display_names() {
        for ok in [
            "environment.suspended",
            "Webhook Validate",
            "file.uploaded",
            "a:b/c-d_e",
        ] {
            assert!(EventTypeName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.*", "*", ".a", "a.", "a..b", " a", "a\nb", "é"] {
            assert!(EventTypeName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schema_checks_name_the_path_inside_data() {
        let schema = EventSchema::parse(json!({
            "type": "object",
            "properties": {"amount": {"type": "integer"}},
            "required": ["amount"]
        }))
        .unwrap();
        assert!(schema.check(&json!({"amount": 3})).is_ok());
        assert_eq!(
            schema.check(&json!({"amount": "x"})).unwrap_err().field,
            "data.amount"
        );
        assert_eq!(schema.check(&json!({})).unwrap_err().field, "data");
    }

    #[test]
    fn invalid_schemas_are_refused() {
        assert!(EventSchema::parse(json!({"type": "no-such-type"})).is_err());
        assert!(EventSchema::parse(json!(3)).is_err());
    }
}
