//! Attempts: one try of a delivery — the request sent, the response or error, how long it took.
//!
//! Recorded for every try, successful or not, so a subscriber can see exactly what their
//! endpoint was sent and what it answered. Secrets in request headers are redacted before an
//! attempt is stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::{AttemptId, DeliveryId, ProjectId, WebhookId};
use crate::time::Timestamp;

/// Why this attempt was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptTrigger {
    /// The delivery engine, on schedule (first try or a retry).
    Scheduled,
    /// A person pressed "Trigger now".
    Manual,
    /// The webhook's validation event.
    Validation,
}

/// How an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No complete response within the webhook's timeout.
    Timeout,
    /// The TCP connection could not be made (refused, reset, unreachable).
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The host name did not resolve.
    Dns,
    /// The receiver answered, but not with a 2xx.
    Status,
    /// Herald refused to send: the destination is not allowed (private address, plain http).
    RefusedByPolicy,
}

impl AttemptTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Manual => "manual",
            Self::Validation => "validation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Dns => "dns",
            Self::Status => "status",
            Self::RefusedByPolicy => "refused_by_policy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// What was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    /// With signatures and secrets redacted.
    pub headers: BTreeMap<String, String>,
}

/// What came back, when anything did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceivedResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// The body, read up to the cap and cut there (lossy UTF-8).
    pub body: String,
    /// Whether the body was longer than what is kept.
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub project_id: ProjectId,
    /// 1-based: the first try of a delivery is attempt 1.
    pub number: u32,
    pub trigger: AttemptTrigger,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub request: SentRequest,
    pub response: Option<ReceivedResponse>,
    pub error: Option<AttemptError>,
    pub succeeded: bool,
}

impl Attempt {
    /// The receiver's status code, when it answered.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }
}

/// Header values that must never be stored or shown: signatures, tokens, secrets. Takes the
/// headers by value: they were sent, and are kept now (no copy of each).
pub fn redact_headers(
    headers: impl IntoIterator<Item = (String, String)>,
    secret_headers: &[impl AsRef<str>],
) -> BTreeMap<String, String> {
    headers
        .into_iter()
        .map(|(name, value)| {
            if secret_headers
                .iter()
                .any(|s| s.as_ref().eq_ignore_ascii_case(&name))
            {
                (name, "<redacted>".to_owned())
            } else {
                (name, value)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            ErrorKind::Timeout,
            ErrorKind::RefusedByPolicy,
            ErrorKind::Status,
        ] {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::RefusedByPolicy.as_str(), "refused_by_policy");
        assert_eq!(
            AttemptTrigger::parse("manual"),
            Some(AttemptTrigger::Manual)
        );
    }

    #[test]
    fn secret_headers_are_redacted() {
        let h = redact_headers(
            [("Webhook-Signature", "v1,abc"), ("X-Tenant", "t")]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            &["webhook-signature".to_owned()],
        );
        assert_eq!(h["Webhook-Signature"], "<redacted>");
        assert_eq!(h["X-Tenant"], "t");
    }
}
