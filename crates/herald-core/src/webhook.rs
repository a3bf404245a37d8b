//! Webhooks: subscriptions of a target to a project's events, with everything that shapes how
//! deliveries to it are made (method, headers, custom data, format, scheme, timeout, retries).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::filter::EventFilter;
use crate::id::{ProjectId, WebhookId};
use crate::secret::SigningSecret;
use crate::shape::Shape;
use crate::time::Timestamp;
use crate::validation::InvalidField;

/// Headers HTTP itself manages; no scheme or custom header may set them.
pub const TRANSPORT_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "user-agent",
    "proxy-authorization",
    "proxy-connection",
];

/// Standard Webhooks' id and timestamp headers, refused as custom headers whatever the scheme:
/// an attempt's record shows their values to every reader (they carry nothing secret when
/// Herald sets them), so a custom header under either name could show a credential.
pub const STANDARD_WEBHOOKS_ID_HEADERS: &[&str] = &["webhook-id", "webhook-timestamp"];

/// Herald's own headers on every delivery start with this.
pub const HERALD_HEADER_PREFIX: &str = "x-herald-";

/// RFC 9110 `token`: the characters allowed in a header name.
pub fn is_header_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Created; waiting for its validation event to succeed.
    Pending,
    Active,
    /// Stopped by a person.
    Disabled,
    /// Stopped by Herald after its retry policy gave up on it.
    OutOfOrder,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::OutOfOrder => "out_of_order",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }

    /// Whether published events make deliveries for a webhook in this status: every status but
    /// `pending` (a webhook awaiting validation is not subscribed yet). A disabled or
    /// out-of-order webhook gets its deliveries too, held until it is active again, so pausing
    /// a webhook loses nothing.
    pub fn is_subscribed(self) -> bool {
        !matches!(self, Self::Pending)
    }

    /// Whether a webhook in this status holds its deliveries (disabled or out of order): they
    /// are kept, unsent, and flow when it is active again, unless a person discards them.
    pub fn holds_deliveries(self) -> bool {
        matches!(self, Self::Disabled | Self::OutOfOrder)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Post,
    /// The payload travels as query parameters.
    Get,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }
}

/// Where deliveries go: an absolute http(s) URL, https unless the operator allows plain http.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUrl(url::Url);

impl TargetUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(value: &str, allow_http: bool) -> Result<Self, InvalidField> {
        let bad = |why: String| InvalidField::new("url", why);
        if value.chars().count() > Self::MAX_LEN {
            return Err(bad(format!("must be at most {} characters", Self::MAX_LEN)));
        }
        let url = url::Url::parse(value).map_err(|e| bad(format!("is not a valid URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => {
                return Err(bad(
                    "must use https (plain http is refused unless the server runs with --allow-http)"
                        .into(),
                ));
            }
            other => return Err(bad(format!("must be an http(s) URL, not {other}:"))),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("must name a host".into()));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a #fragment".into()));
        }
        Ok(Self(url))
    }

    /// Reads back a stored URL without re-applying the https policy it passed when saved.
    pub fn from_stored(value: &str) -> Result<Self, url::ParseError> {
        url::Url::parse(value).map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL with its password, if it has one, replaced by `redacted` (the username is kept),
    /// for readers who may not see secrets.
    pub fn redacted(&self) -> String {
        redact_url_password(self.0.as_str())
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

/// Replaces the password of a URL, if it has one, by `redacted`; anything that is not a URL with
/// a password comes back unchanged.
pub fn redact_url_password(value: &str) -> String {
    let Ok(mut url) = url::Url::parse(value) else {
        return value.to_owned();
    };
    if url.password().is_none() || url.set_password(Some("redacted")).is_err() {
        return value.to_owned();
    }
    url.into()
}

/// Extra headers sent with every delivery, in the case the user wrote them.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomHeaders(BTreeMap<String, String>);

impl CustomHeaders {
    pub const MAX_COUNT: usize = 50;
    pub const MAX_NAME_LEN: usize = 128;
    pub const MAX_VALUE_LEN: usize = 4096;

    /// Checks names and values and refuses the headers Herald sets itself for this shape.
    pub fn parse(headers: BTreeMap<String, String>, shape: &Shape) -> Result<Self, InvalidField> {
        if headers.len() > Self::MAX_COUNT {
            return Err(InvalidField::new(
                "headers",
                format!("may hold at most {} headers", Self::MAX_COUNT),
            ));
        }
        let reserved = shape.scheme.headers_set();
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in &headers {
            let field = format!("headers.{name}");
            let lower = name.to_ascii_lowercase();
            if !is_header_token(name) || name.len() > Self::MAX_NAME_LEN {
                return Err(InvalidField::new(field, "is not a valid HTTP header name"));
            }
            if TRANSPORT_HEADERS.contains(&lower.as_str()) {
                return Err(InvalidField::new(
                    field,
                    "is managed by HTTP and cannot be set as a custom header",
                ));
            }
            if reserved.contains(&lower) || STANDARD_WEBHOOKS_ID_HEADERS.contains(&lower.as_str()) {
                return Err(InvalidField::new(
                    field,
                    "is set by Herald for this webhook's signing scheme and cannot be overridden",
                ));
            }
            if lower.starts_with(HERALD_HEADER_PREFIX) {
                return Err(InvalidField::new(
                    field,
                    "X-Herald-* headers are reserved for Herald",
                ));
            }
            if !seen.insert(lower) {
                return Err(InvalidField::new(
                    field,
                    "is given twice (header names are case-insensitive)",
                ));
            }
            if value.len() > Self::MAX_VALUE_LEN
                || !value
                    .bytes()
                    .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
            {
                return Err(InvalidField::new(
                    field,
                    "value must be at most 4096 visible ASCII characters",
                ));
            }
        }
        Ok(Self(headers))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// A JSON object merged into every payload (CloudBlue's "additional data").
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomData(Map<String, Value>);

impl CustomData {
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn parse(value: Value) -> Result<Self, InvalidField> {
        match value {
            Value::Object(map) => {
                if Value::Object(map.clone()).to_string().len() > Self::MAX_BYTES {
                    return Err(InvalidField::new("custom_data", "must be at most 64 KiB"));
                }
                Ok(Self(map))
            }
            Value::Null => Ok(Self::default()),
            _ => Err(InvalidField::new("custom_data", "must be a JSON object")),
        }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// How long one attempt may take: 1 second to 10 minutes, 30 seconds by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(Duration);

impl Timeout {
    pub const DEFAULT_SECONDS: u64 = 30;
    pub const MAX_SECONDS: u64 = 600;

    pub fn from_seconds(seconds: u64) -> Result<Self, InvalidField> {
        if !(1..=Self::MAX_SECONDS).contains(&seconds) {
            return Err(InvalidField::new(
                "timeout_seconds",
                "must be between 1 and 600 seconds",
            ));
        }
        Ok(Self(Duration::from_secs(seconds)))
    }

    pub fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

impl Default for Timeout {
    fn default() -> Self {
        Self(Duration::from_secs(Self::DEFAULT_SECONDS))
    }
}

/// When to try again, and when to give up on a webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay before each retry, in seconds; the delivery fails after the last one.
    #[schema(schema_with = crate::openapi::retry_schedule)]
    pub schedule_seconds: Vec<u32>,
    /// Consecutive failed deliveries after which the webhook goes `out_of_order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::out_of_order_after)]
    pub out_of_order_after_failures: Option<u32>,
    /// Hours of continuous failure after which the webhook goes `out_of_order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::out_of_order_after)]
    pub out_of_order_after_hours: Option<u32>,
}

impl RetryPolicy {
    pub const MAX_RETRIES: usize = 50;
    pub const MAX_DELAY_SECONDS: u32 = 7 * 24 * 3600;

    pub fn validate(self) -> Result<Self, InvalidField> {
        if self.schedule_seconds.len() > Self::MAX_RETRIES {
            return Err(InvalidField::new(
                "schedule_seconds",
                format!("may hold at most {} retries", Self::MAX_RETRIES),
            ));
        }
        for (i, d) in self.schedule_seconds.iter().enumerate() {
            if *d == 0 || *d > Self::MAX_DELAY_SECONDS {
                return Err(InvalidField::new(
                    format!("schedule_seconds[{i}]"),
                    "must be between 1 second and 7 days",
                ));
            }
        }
        if self.out_of_order_after_failures == Some(0) {
            return Err(InvalidField::new(
                "out_of_order_after_failures",
                "must be at least 1 (omit it to never go out of order by count)",
            ));
        }
        if self.out_of_order_after_hours == Some(0) {
            return Err(InvalidField::new(
                "out_of_order_after_hours",
                "must be at least 1 (omit it to never go out of order by time)",
            ));
        }
        Ok(self)
    }
}

/// A webhook's display name: free text, unique within its project.
pub fn webhook_name(value: &str) -> Result<String, InvalidField> {
    crate::validation::text("name", value, crate::validation::NAME_MAX_LEN)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: Option<String>,
    pub url: TargetUrl,
    pub method: HttpMethod,
    pub filter: EventFilter,
    pub headers: CustomHeaders,
    pub custom_data: CustomData,
    pub shape: Shape,
    pub timeout: Timeout,
    /// `None`: the project's, then the server's default policy applies.
    pub retry_policy: Option<RetryPolicy>,
    pub status: WebhookStatus,
    /// Why the status last changed, and by whom (`disabled by key_…`, `410 Gone from target`).
    pub status_reason: Option<String>,
    pub secret: SigningSecret,
    /// The secret this one replaced, and when it stops being used: until then deliveries are
    /// signed with both (Standard Webhooks) or still with the old one (single-signature schemes).
    pub previous_secret: Option<(SigningSecret, Timestamp)>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How long a replaced secret stays in use after a rotation: 0 (switch at once) to 30 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationGrace(Duration);

impl RotationGrace {
    pub const DEFAULT_SECONDS: u64 = 24 * 3600;
    pub const MAX_SECONDS: u64 = 30 * 24 * 3600;

    pub fn from_seconds(seconds: u64) -> Result<Self, InvalidField> {
        if seconds > Self::MAX_SECONDS {
            return Err(InvalidField::new(
                "grace_seconds",
                format!(
                    "must be between 0 (switch at once) and {} seconds (30 days)",
                    Self::MAX_SECONDS
                ),
            ));
        }
        Ok(Self(Duration::from_secs(seconds)))
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

impl Default for RotationGrace {
    fn default() -> Self {
        Self(Duration::from_secs(Self::DEFAULT_SECONDS))
    }
}

impl Webhook {
    /// Replaces the signing secret with `new`. The old one stays in use for `grace` from `now`
    /// (no grace: it is dropped at once). Only one previous secret is kept: rotating again
    /// within a grace period ends the older secret's grace there and then.
    pub fn rotate_secret(&mut self, new: SigningSecret, now: Timestamp, grace: RotationGrace) {
        let old = std::mem::replace(&mut self.secret, new);
        let grace_ms = i64::try_from(grace.duration().as_millis()).unwrap_or(i64::MAX / 2);
        self.previous_secret = (grace_ms > 0).then(|| {
            (
                old,
                crate::time::from_millis(now.timestamp_millis().saturating_add(grace_ms)),
            )
        });
    }

    /// When the previous secret stops being used, if it is still in use at `now`.
    pub fn previous_secret_expires_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.previous_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| now < *until)
    }

    /// The secrets to sign with at `now`, as [`crate::signing::SigningKeys::webhook`] takes
    /// them: the current one, then the previous one while its grace period lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<SigningSecret> {
        let mut secrets = vec![self.secret.clone()];
        if let Some((old, until)) = &self.previous_secret
            && now < *until
        {
            secrets.push(old.clone());
        }
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_unless_allowed() {
        assert!(TargetUrl::parse("https://example.com/hook", false).is_ok());
        assert!(TargetUrl::parse("http://example.com/hook", false).is_err());
        assert!(TargetUrl::parse("http://127.0.0.1:9/hook", true).is_ok());
        assert!(TargetUrl::parse("ftp://example.com", true).is_err());
        assert!(TargetUrl::parse("not a url", true).is_err());
        assert!(TargetUrl::parse("https://example.com/#x", true).is_err());
    }

    #[test]
    fn url_passwords_are_redacted_and_usernames_kept() {
        let url = TargetUrl::parse("https://user:pa55@example.com/x?q=1", false).unwrap();
        assert_eq!(url.as_str(), "https://user:pa55@example.com/x?q=1");
        assert_eq!(url.redacted(), "https://user:redacted@example.com/x?q=1");
        let plain = TargetUrl::parse("https://user@example.com/x", false).unwrap();
        assert_eq!(plain.redacted(), "https://user@example.com/x");
        let encoded = TargetUrl::parse("https://u:p%40ss@example.com/", false).unwrap();
        assert_eq!(encoded.redacted(), "https://u:redacted@example.com/");
        assert_eq!(redact_url_password("not a url"), "not a url");
    }

    #[test]
    fn headers_herald_sets_cannot_be_overridden() {
        let shape = Shape::default();
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(CustomHeaders::parse(one("X-Tenant", "a"), &shape).is_ok());
        assert!(CustomHeaders::parse(one("Authorization", "Basic x"), &shape).is_ok());
        for bad in [
            "Webhook-Signature",
            "content-type",
            "X-Herald-Foo",
            "bad header",
        ] {
            let e = CustomHeaders::parse(one(bad, "v"), &shape).unwrap_err();
            assert_eq!(e.field, format!("headers.{bad}"));
        }
        assert!(CustomHeaders::parse(one("X-A", "line\nbreak"), &shape).is_err());
        let connect = Shape::resolve(Some(crate::shape::Preset::Connect), None, None);
        assert!(CustomHeaders::parse(one("Authorization", "x"), &connect).is_err());
        // Shown to every reader of an attempt, so never a custom header, whatever the scheme.
        for name in ["Webhook-Id", "webhook-timestamp"] {
            assert!(CustomHeaders::parse(one(name, "token"), &connect).is_err());
        }
    }

    fn a_webhook() -> Webhook {
        let now = crate::time::from_millis(1_700_000_000_000);
        Webhook {
            id: WebhookId::new(),
            project_id: ProjectId::new(),
            name: "w".into(),
            description: None,
            url: TargetUrl::parse("https://example.com/hook", false).unwrap(),
            method: HttpMethod::Post,
            filter: EventFilter::All,
            headers: CustomHeaders::default(),
            custom_data: CustomData::default(),
            shape: Shape::default(),
            timeout: Timeout::default(),
            retry_policy: None,
            status: WebhookStatus::Active,
            status_reason: None,
            secret: SigningSecret::from_stored("old".into()),
            previous_secret: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_rotated_secret_keeps_the_old_one_through_its_grace_period() {
        let at = |s: i64| crate::time::from_millis(1_700_000_000_000 + s * 1000);
        let mut w = a_webhook();
        assert_eq!(w.signing_secrets(at(0)).len(), 1);
        w.rotate_secret(
            SigningSecret::from_stored("new".into()),
            at(0),
            RotationGrace::from_seconds(60).unwrap(),
        );
        let exposed = |w: &Webhook, t| -> Vec<String> {
            w.signing_secrets(t)
                .iter()
                .map(|s| s.expose().to_owned())
                .collect()
        };
        assert_eq!(
            exposed(&w, at(59)),
            ["new", "old"],
            "current first, then the old"
        );
        assert_eq!(w.previous_secret_expires_at(at(59)), Some(at(60)));
        assert_eq!(exposed(&w, at(60)), ["new"], "dropped when the grace ends");
        assert_eq!(w.previous_secret_expires_at(at(60)), None);

        // Rotating again keeps only the secret just replaced.
        w.rotate_secret(
            SigningSecret::from_stored("newer".into()),
            at(10),
            RotationGrace::default(),
        );
        assert_eq!(exposed(&w, at(11)), ["newer", "new"]);
        // No grace: the old secret is gone at once.
        w.rotate_secret(
            SigningSecret::from_stored("newest".into()),
            at(12),
            RotationGrace::from_seconds(0).unwrap(),
        );
        assert_eq!(w.previous_secret, None);
        assert_eq!(exposed(&w, at(12)), ["newest"]);
        assert_eq!(
            RotationGrace::from_seconds(RotationGrace::MAX_SECONDS + 1)
                .unwrap_err()
                .field,
            "grace_seconds"
        );
    }

    #[test]
    fn retry_policies_are_bounded() {
        let p = |s: Vec<u32>| RetryPolicy {
            schedule_seconds: s,
            out_of_order_after_failures: None,
            out_of_order_after_hours: None,
        };
        assert!(p(vec![5, 300]).validate().is_ok());
        assert_eq!(
            p(vec![5, 0]).validate().unwrap_err().field,
            "schedule_seconds[1]"
        );
        assert!(Timeout::from_seconds(0).is_err());
        assert!(Timeout::from_seconds(601).is_err());
    }
}
