//! Projects: the scope events belong to and webhooks subscribe in; the unit of tenant isolation.

use serde::{Deserialize, Serialize};

use crate::event_type::EventTypeName;
use crate::id::ProjectId;
use crate::time::Timestamp;
use crate::validation::InvalidField;
use crate::webhook::RetryPolicy;

/// A project's name: a short slug usable in URLs in place of the id (`acme-prod`).
///
/// Lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most 64
/// characters, and never shaped like a project id so that `/v1/projects/{id or name}` is
/// unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_LEN: usize = 64;
    /// Names may not start with this: it marks project ids.
    pub const RESERVED_PREFIX: &str = concat!("prj", "_");

    pub fn parse(value: &str) -> Result<Self, InvalidField> {
        let bad = |why: &str| InvalidField::new("name", why);
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(bad("must be 1 to 64 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        {
            return Err(bad(
                "may contain only lower-case letters, digits, '-', '_' and '.'",
            ));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(bad("must start with a letter or a digit"));
        }
        if value.starts_with(Self::RESERVED_PREFIX) {
            return Err(bad("must not start with 'prj_', which marks project ids"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProjectName {
    type Error = InvalidField;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ProjectName> for String {
    fn from(n: ProjectName) -> String {
        n.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: ProjectName,
    pub settings: ProjectSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Project {
    pub fn new(name: ProjectName, now: Timestamp) -> Self {
        Self {
            id: ProjectId::new(),
            name,
            settings: ProjectSettings::default(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// Defaults a project sets for its webhooks and data.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProjectSettings {
    /// Retry policy for webhooks that set none; `None`: the server's.
    pub retry_policy: Option<RetryPolicy>,
    /// Days events, deliveries and attempts are kept; `None`: the server's default.
    pub retention_days: Option<u32>,
    /// New webhooks start `pending` and must pass validation before receiving events.
    pub require_validation: bool,
    /// The validation event's name for the project's webhooks; `None`: the webhook's preset's
    /// (`Webhook Validate` for `event-data`), else the server's.
    pub validation_event: Option<EventTypeName>,
}

impl ProjectSettings {
    pub const MAX_RETENTION_DAYS: u32 = 3650;

    pub fn check_retention(days: u32) -> Result<u32, InvalidField> {
        if (1..=Self::MAX_RETENTION_DAYS).contains(&days) {
            Ok(days)
        } else {
            Err(InvalidField::new(
                "retention_days",
                "must be between 1 and 3650",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_url_safe_slugs() {
        assert!(ProjectName::parse("acme-prod.eu_1").is_ok());
        assert!(ProjectName::parse("Acme").is_err());
        assert!(ProjectName::parse("-acme").is_err());
        assert!(ProjectName::parse("a b").is_err());
        assert!(ProjectName::parse("").is_err());
        assert!(ProjectName::parse("prj_x").is_err());
        assert!(ProjectName::parse(&"a".repeat(65)).is_err());
    }
}
