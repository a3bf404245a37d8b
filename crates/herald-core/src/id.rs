//! Prefixed, time-sortable identifiers.
//!
//! Every Herald-made id is a type prefix and a ULID (`wh_01JD3…`): people can tell a webhook id
//! from a delivery id in a log line, and ids sort by creation time. Each kind is its own type, so
//! a project id cannot be passed where a webhook id is wanted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// An id that does not have the expected prefix or ULID body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}_` followed by a ULID)")]
pub struct BadId {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

/// `prefix` and a new ULID in one allocation (`format!` with the ULID's `Display` made two:
/// ids are minted for every delivery and attempt).
pub(crate) fn fresh(prefix: &str) -> String {
    let mut body = [0u8; ulid::ULID_LEN];
    let mut id = String::with_capacity(prefix.len() + ulid::ULID_LEN);
    id.push_str(prefix);
    id.push_str(Ulid::new().array_to_str(&mut body));
    id
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(fresh(concat!($prefix, "_")))
            }

            pub fn parse(value: &str) -> Result<Self, BadId> {
                value
                    .strip_prefix(concat!($prefix, "_"))
                    .filter(|body| Ulid::from_string(body).is_ok() && body.len() == 26)
                    .map(|_| Self(value.to_owned()))
                    .ok_or_else(|| BadId { kind: $kind, prefix: $prefix, value: value.to_owned() })
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("A ", $kind, " id: `", $prefix, "_` and a ULID.")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// Identifies a project.
    ProjectId, "prj", "project"
);
prefixed_id!(
    /// Identifies a webhook (a subscription).
    WebhookId, "wh", "webhook"
);
prefixed_id!(
    /// Identifies a delivery: one event for one webhook. Stable across every attempt.
    DeliveryId, "dlv", "delivery"
);
prefixed_id!(
    /// Identifies an API key (not the secret token itself).
    ApiKeyId, "key", "API key"
);
prefixed_id!(
    /// Identifies one attempt (one HTTP request) of a delivery.
    AttemptId, "att", "attempt"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_check_their_prefix() {
        let id = WebhookId::new();
        assert!(id.as_str().starts_with("wh_"));
        assert_eq!(WebhookId::parse(id.as_str()).unwrap(), id);
        assert!(ProjectId::parse(id.as_str()).is_err());
        assert!(WebhookId::parse("wh_nope").is_err());
        assert!(WebhookId::parse("").is_err());
    }
}
