//! Events: one occurrence of an event type in a project, with its data and optional actor.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event_type::EventTypeName;
use crate::id::ProjectId;
use crate::time::Timestamp;
use crate::validation::InvalidField;

/// An event's id: given by the publisher (and then the idempotency key), or made by Herald
/// (`evt_<ULID>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub const MAX_LEN: usize = 128;

    pub fn generate() -> Self {
        Self(crate::id::fresh("evt_"))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidField> {
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(InvalidField::new("id", "must be 1 to 128 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:~".contains(&b))
        {
            return Err(InvalidField::new(
                "id",
                "may contain only letters, digits and - _ . : ~",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = InvalidField;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

/// Who caused the event, when the publisher says.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::actor_id)]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::actor_email)]
    pub email: Option<String>,
}

impl Actor {
    pub const MAX_ID_LEN: usize = 255;
    /// In characters.
    pub const MAX_EMAIL_LEN: usize = 320;

    pub fn validate(self) -> Result<Self, InvalidField> {
        if let Some(id) = &self.id {
            crate::validation::text("actor.id", id, Self::MAX_ID_LEN)?;
        }
        if let Some(email) = &self.email {
            let (local, domain) = email.split_once('@').unwrap_or(("", ""));
            if email.chars().count() > Self::MAX_EMAIL_LEN
                || local.is_empty()
                || domain.is_empty()
                || email.contains(' ')
            {
                return Err(InvalidField::new("actor.email", "must be an email address"));
            }
        }
        Ok(self)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub project_id: ProjectId,
    pub event_type: EventTypeName,
    pub occurred_at: Timestamp,
    pub data: Value,
    pub actor: Option<Actor>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_url_safe() {
        assert!(EventId::parse("order-123:v2").is_ok());
        assert!(EventId::parse("a/b").is_err());
        assert!(EventId::parse("").is_err());
        assert!(EventId::generate().as_str().starts_with("evt_"));
    }

    #[test]
    fn actors_need_plausible_emails() {
        let a = |e: &str| {
            Actor {
                id: None,
                email: Some(e.into()),
            }
            .validate()
        };
        assert!(a("a@b.c").is_ok());
        assert_eq!(a("nope").unwrap_err().field, "actor.email");
    }
}
