//! Attempts: one try of a delivery — the request sent, the response or error, how long it took.
//!
//! Recorded for every try, successful or not, so a subscriber can see exactly what their
//! endpoint was sent and what it answered. Secrets in request headers are redacted before an
//! attempt is stored.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

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
        serde_json::from_value(Value::String(s.to_owned())).ok()
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
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }
}

/// What was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    /// With signatures and secrets redacted.
    #[schema(value_type = BTreeMap<String, String>)]
    pub headers: HeaderRecord,
}

/// What came back, when anything did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceivedResponse {
    pub status: u16,
    #[schema(value_type = BTreeMap<String, String>)]
    pub headers: HeaderRecord,
    /// The body, read up to the cap and cut there (lossy UTF-8).
    pub body: String,
    /// Whether the body was longer than what is kept.
    pub truncated: bool,
}

/// Headers as an attempt records them: the JSON object of names and values they are stored
/// and shown as, written once, where the request was sent or the response read. Every attempt
/// is built, stored and dropped at delivery speed and read back rarely, so it holds that text
/// rather than a map of owned strings: at fan-out 10, building those maps on the lane workers,
/// serializing them on the group commit's thread and freeing them was about 5 % of Herald's
/// CPU.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HeaderRecord(Box<RawValue>);

/// What a secret header's value is recorded as.
pub const REDACTED: &str = "<redacted>";

impl HeaderRecord {
    /// The pairs in their order, with the values of `secret` names (compared without case)
    /// replaced by [`REDACTED`]. A name repeated right after itself (how an HTTP header map
    /// lists a field sent twice) has its values joined with ", ", HTTP's rule for combining
    /// fields; values that are not UTF-8 are kept lossily.
    pub fn redacted<N: AsRef<str>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (N, V)>,
        secret: &[impl AsRef<str>],
    ) -> Self {
        let mut json: Vec<u8> = Vec::with_capacity(256);
        json.push(b'{');
        let mut last: Option<N> = None;
        for (name, value) in pairs {
            let value = if secret
                .iter()
                .any(|s| s.as_ref().eq_ignore_ascii_case(name.as_ref()))
            {
                Cow::Borrowed(REDACTED)
            } else {
                String::from_utf8_lossy(value.as_ref())
            };
            match &last {
                Some(previous) if previous.as_ref() == name.as_ref() => {
                    // Into the string before it: its closing quote out, this one's opening
                    // quote out.
                    json.pop();
                    json.extend_from_slice(b", ");
                    let start = json.len();
                    push_string(&mut json, &value);
                    json.remove(start);
                }
                _ => {
                    if last.is_some() {
                        json.push(b',');
                    }
                    push_string(&mut json, name.as_ref());
                    json.push(b':');
                    push_string(&mut json, &value);
                }
            }
            last = Some(name);
        }
        json.push(b'}');
        let record = String::from_utf8(json)
            .ok()
            .and_then(|text| RawValue::from_string(text).ok());
        record.map_or_else(Self::default, Self)
    }

    /// The pairs as they are, nothing redacted.
    pub fn of<N: AsRef<str>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        Self::redacted(pairs, &[] as &[&str])
    }

    /// The headers as a map (for reading them; the record itself keeps their order).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// The value recorded for `name`, compared without case.
    pub fn get(&self, name: &str) -> Option<String> {
        self.to_map()
            .into_iter()
            .find_map(|(k, v)| k.eq_ignore_ascii_case(name).then_some(v))
    }
}

/// Request headers whose values every reader of an attempt is shown: those Herald sets itself
/// that carry nothing secret (and `x-herald-*`). Every other value — custom headers above all,
/// which often carry a receiver's credentials — is shown only to roles that may see secrets.
pub const PUBLIC_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "host",
    "webhook-id",
    "webhook-timestamp",
];

impl HeaderRecord {
    /// This record with every value but those of [`PUBLIC_REQUEST_HEADERS`] and Herald's own
    /// `x-herald-*` replaced by [`REDACTED`], names kept: for readers who may not see secrets.
    pub fn with_public_values_only(&self) -> Self {
        let pairs: serde_json::Map<String, Value> =
            serde_json::from_str(self.0.get()).unwrap_or_default();
        let public = |name: &str| {
            let lower = name.to_ascii_lowercase();
            PUBLIC_REQUEST_HEADERS.contains(&lower.as_str())
                || lower.starts_with(crate::webhook::HERALD_HEADER_PREFIX)
        };
        let hidden: Vec<&str> = pairs
            .keys()
            .map(String::as_str)
            .filter(|n| !public(n))
            .collect();
        Self::redacted(
            pairs.iter().map(|(name, value)| {
                (name.as_str(), value.as_str().unwrap_or_default().as_bytes())
            }),
            &hidden,
        )
    }
}

impl Default for HeaderRecord {
    fn default() -> Self {
        Self(RawValue::from_string("{}".to_owned()).expect("`{}` is JSON"))
    }
}

impl PartialEq for HeaderRecord {
    fn eq(&self, other: &Self) -> bool {
        self.to_map() == other.to_map()
    }
}

impl Eq for HeaderRecord {}

/// Appends `s` as a JSON string, quoted and escaped by serde_json (writing to a `Vec` cannot
/// fail).
fn push_string(json: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *json, s);
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
        let h = HeaderRecord::redacted(
            [("Webhook-Signature", "v1,abc"), ("X-Tenant", "t")],
            &["webhook-signature"],
        )
        .to_map();
        assert_eq!(h["Webhook-Signature"], "<redacted>");
        assert_eq!(h["X-Tenant"], "t");
    }

    #[test]
    fn readers_without_secrets_see_only_heralds_public_header_values() {
        let sent = HeaderRecord::redacted(
            [
                ("content-type", "application/json"),
                ("x-herald-delivery-id", "dlv_1"),
                ("webhook-id", "dlv_1"),
                ("webhook-signature", "v1,abc"),
                ("X-Api-Key", "receiver-password"),
                ("authorization", "Bearer abc"),
            ],
            &["webhook-signature"],
        );
        let shown = sent.with_public_values_only().to_map();
        assert_eq!(shown["content-type"], "application/json");
        assert_eq!(shown["x-herald-delivery-id"], "dlv_1");
        assert_eq!(shown["webhook-id"], "dlv_1");
        assert_eq!(shown["webhook-signature"], REDACTED);
        assert_eq!(
            shown["X-Api-Key"], REDACTED,
            "custom headers are credentials"
        );
        assert_eq!(shown["authorization"], REDACTED);
        assert_eq!(shown.len(), 6, "every name is still listed");
    }

    #[test]
    fn a_header_record_is_the_json_object_of_its_pairs() {
        let record = HeaderRecord::of([
            ("content-type", "application/json".as_bytes()),
            ("set-cookie", b"a=1"),
            ("set-cookie", b"b=2"),
            (
                "x-odd",
                "quote \" backslash \\ tab \t bell \u{7} caf\u{e9}".as_bytes(),
            ),
            ("x-not-utf8", b"ok \xff"),
        ]);
        let text = serde_json::to_string(&record).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "content-type": "application/json",
                "set-cookie": "a=1, b=2",
                "x-odd": "quote \" backslash \\ tab \t bell \u{7} caf\u{e9}",
                "x-not-utf8": "ok \u{fffd}",
            })
        );
        let back: HeaderRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
        assert_eq!(
            record.get("Content-Type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            serde_json::to_string(&HeaderRecord::default()).unwrap(),
            "{}"
        );
        assert_eq!(
            serde_json::to_string(&HeaderRecord::of::<&str, &str>([])).unwrap(),
            "{}"
        );
    }
}
