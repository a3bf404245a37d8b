//! The shape of what a webhook sends: a payload *format* and a signing *scheme*, and the
//! *presets* that name a pair of them to reproduce one seed platform exactly.
//!
//! A preset is data (a row of [`Preset::shape`]), not a code path: rendering and signing only ever
//! look at the resolved [`Format`] and [`SigningScheme`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validation::InvalidField;
use crate::webhook::{HERALD_HEADER_PREFIX, is_header_token};

/// How the body of a delivery is built from the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Format {
    /// `{"type","timestamp","data"}` (Standard Webhooks).
    Standard,
    /// `{"Event","CreatedAt","CreatedById","CreatedByEmail","Attempt","Payload"}` (CloudShare).
    Cloudshare,
    /// `{"event","data"}` (the case-management cloud).
    EventData,
    /// The CloudBlue Connect body.
    Connect,
    /// The event data as is.
    Raw,
    /// A JSON template with `{{placeholders}}`.
    Custom { template: Template },
}

impl Format {
    pub const NAMES: &'static [&'static str] = &[
        "standard",
        "cloudshare",
        "event-data",
        "connect",
        "raw",
        "custom",
    ];

    /// Builds a format from its API name; `custom` needs a template.
    pub fn from_name(name: &str, template: Option<Value>) -> Result<Self, InvalidField> {
        let format = match name {
            "standard" => Self::Standard,
            "cloudshare" => Self::Cloudshare,
            "event-data" => Self::EventData,
            "connect" => Self::Connect,
            "raw" => Self::Raw,
            "custom" => {
                let template = template.ok_or_else(|| {
                    InvalidField::new("template", "is required when format is \"custom\"")
                })?;
                return Ok(Self::Custom {
                    template: Template::parse(template)?,
                });
            }
            other => {
                return Err(InvalidField::new(
                    "format",
                    format!(
                        "unknown format \"{other}\"; expected one of {}",
                        Self::NAMES.join(", ")
                    ),
                ));
            }
        };
        if template.is_some() {
            return Err(InvalidField::new(
                "template",
                "is only allowed when format is \"custom\"",
            ));
        }
        Ok(format)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Cloudshare => "cloudshare",
            Self::EventData => "event-data",
            Self::Connect => "connect",
            Self::Raw => "raw",
            Self::Custom { .. } => "custom",
        }
    }

    pub fn template(&self) -> Option<&Template> {
        match self {
            Self::Custom { template } => Some(template),
            _ => None,
        }
    }
}

/// Encoding of an HMAC digest in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DigestEncoding {
    Base64,
    Hex,
}

/// Which secret signs: the webhook's own, or the installation's account-level secret
/// (CloudShare's model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    #[default]
    Webhook,
    Account,
}

/// How a delivery is authenticated to its receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SigningScheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    StandardWebhooks,
    /// HMAC-SHA256 of the body in a header of the user's choosing.
    HmacSha256 {
        header: String,
        encoding: DigestEncoding,
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        secret: SecretSource,
    },
    /// The secret itself, verbatim, in a header (`X-Webhook-Secret`).
    SecretHeader { header: String },
    /// `Authorization: Bearer <JWT HS256>` whose claims are the payload plus `iat` and `exp`.
    JwtHs256,
    /// No authentication.
    None,
}

impl SigningScheme {
    /// Checks the parameters a user may set (header names, prefix).
    pub fn validate(self) -> Result<Self, InvalidField> {
        let header_ok = |h: &str| -> Result<(), InvalidField> {
            if h.is_empty() || h.len() > 128 || !is_header_token(h) {
                return Err(InvalidField::new(
                    "header",
                    "must be a valid HTTP header name of at most 128 characters",
                ));
            }
            let lower = h.to_ascii_lowercase();
            if crate::webhook::TRANSPORT_HEADERS.contains(&lower.as_str()) {
                return Err(InvalidField::new(
                    "header",
                    format!("\"{h}\" is set by HTTP itself and cannot carry a signature"),
                ));
            }
            if lower.starts_with(HERALD_HEADER_PREFIX) {
                return Err(InvalidField::new(
                    "header",
                    "X-Herald-* headers are reserved for Herald",
                ));
            }
            Ok(())
        };
        match &self {
            Self::HmacSha256 { header, prefix, .. } => {
                header_ok(header)?;
                if prefix.len() > 64 || !prefix.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(InvalidField::new(
                        "prefix",
                        "must be at most 64 visible ASCII characters",
                    ));
                }
            }
            Self::SecretHeader { header } => header_ok(header)?,
            Self::StandardWebhooks | Self::JwtHs256 | Self::None => {}
        }
        Ok(self)
    }

    /// Whether deliveries are signed with the installation's account-level secret (CloudShare's
    /// model) rather than the webhook's own.
    pub fn uses_account_secret(&self) -> bool {
        matches!(
            self,
            Self::HmacSha256 {
                secret: SecretSource::Account,
                ..
            }
        )
    }

    /// Whether a delivery can carry a signature per secret (Standard Webhooks' list of `v1,`
    /// signatures), so an old secret can sign beside a new one through a rotation's grace
    /// period. The other schemes carry one signature: a grace keeps the old secret alone.
    pub fn signs_with_several_secrets(&self) -> bool {
        matches!(self, Self::StandardWebhooks)
    }

    /// Lower-case names of the headers this scheme sets, which custom headers may not override.
    pub fn headers_set(&self) -> BTreeSet<String> {
        match self {
            Self::StandardWebhooks => ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .map(String::from)
                .into(),
            Self::HmacSha256 { header, .. } | Self::SecretHeader { header } => {
                [header.to_ascii_lowercase()].into()
            }
            Self::JwtHs256 => ["authorization".to_owned()].into(),
            Self::None => BTreeSet::new(),
        }
    }
}

/// A named (format, scheme) pair reproducing one seed platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Standard,
    Cloudshare,
    EventData,
    Connect,
    Github,
}

impl Preset {
    pub const NAMES: &'static [&'static str] =
        &["standard", "cloudshare", "event-data", "connect", "github"];

    pub fn from_name(name: &str) -> Result<Self, InvalidField> {
        serde_json::from_value(Value::String(name.to_owned())).map_err(|_| {
            InvalidField::new(
                "preset",
                format!(
                    "unknown preset \"{name}\"; expected one of {}",
                    Self::NAMES.join(", ")
                ),
            )
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The retry policy a webhook of this preset follows when it sets none itself (before the
    /// project's and the server's): CloudBlue Connect's document says "the interval between
    /// consequent requests is not less than 5 min and it increases with each request", and that
    /// after a limit the webhook is "out of order". Jitter only ever lengthens a delay
    /// ([`crate::retry::after_failure`]), so 5 minutes stays the floor.
    pub fn default_retry_policy(self) -> Option<crate::webhook::RetryPolicy> {
        match self {
            // 5, 10, 20, 40 min, then 1.5, 3, 6 and 12 h: nine tries over about a day, each wait
            // longer than the one before even with the jitter (at most +20 %).
            Self::Connect => Some(crate::webhook::RetryPolicy {
                schedule_seconds: vec![300, 600, 1200, 2400, 5400, 10800, 21600, 43200],
                out_of_order_after_failures: Some(1),
                out_of_order_after_hours: Some(24),
            }),
            _ => None,
        }
    }

    /// The validation event's name for webhooks of this preset, unless their project names
    /// one: the case-management cloud's document sends `Webhook Validate`, and its receiver
    /// answers exactly that name.
    pub fn validation_event(self) -> Option<&'static str> {
        match self {
            Self::EventData => Some("Webhook Validate"),
            _ => None,
        }
    }

    /// The table of DESIGN.md, "Payload formats and signing".
    pub fn shape(self) -> (Format, SigningScheme) {
        match self {
            Self::Standard => (Format::Standard, SigningScheme::StandardWebhooks),
            Self::Cloudshare => (
                Format::Cloudshare,
                SigningScheme::HmacSha256 {
                    header: "x-cloudshare-signature".into(),
                    encoding: DigestEncoding::Base64,
                    prefix: String::new(),
                    secret: SecretSource::Account,
                },
            ),
            Self::EventData => (
                Format::EventData,
                SigningScheme::SecretHeader {
                    header: "X-Webhook-Secret".into(),
                },
            ),
            Self::Connect => (Format::Connect, SigningScheme::JwtHs256),
            Self::Github => (
                Format::Raw,
                SigningScheme::HmacSha256 {
                    header: "X-Hub-Signature-256".into(),
                    encoding: DigestEncoding::Hex,
                    prefix: "sha256=".into(),
                    secret: SecretSource::Webhook,
                },
            ),
        }
    }
}

/// A webhook's resolved shape. `preset` records the name the user chose, if any; `format` and
/// `scheme` are what is actually used (a preset's pair, with any explicit override applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub preset: Option<Preset>,
    pub format: Format,
    pub scheme: SigningScheme,
}

impl Default for Shape {
    fn default() -> Self {
        Self::resolve(Some(Preset::Standard), None, None)
    }
}

impl Shape {
    /// With no preset and nothing explicit, the `standard` preset applies.
    pub fn resolve(
        preset: Option<Preset>,
        format: Option<Format>,
        scheme: Option<SigningScheme>,
    ) -> Self {
        let preset = match (preset, &format, &scheme) {
            (None, None, None) => Some(Preset::Standard),
            _ => preset,
        };
        let (base_format, base_scheme) = preset.unwrap_or(Preset::Standard).shape();
        let format = format.unwrap_or(base_format);
        let scheme = scheme.unwrap_or(base_scheme);
        // `preset` names the pair only while the webhook really is that preset's pair.
        let preset = preset.filter(|p| p.shape() == (format.clone(), scheme.clone()));
        Self {
            preset,
            format,
            scheme,
        }
    }
}

/// A custom payload template: any JSON document whose strings may hold `{{placeholders}}`.
///
/// A string that is exactly one placeholder is replaced by the typed value (an object stays an
/// object, a number a number); a placeholder inside a longer string is spliced in as text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Template(Value);

impl Template {
    /// The roots a placeholder may start from, with whether deeper paths are allowed below them.
    pub const PLACEHOLDERS: &'static [(&'static str, bool)] = &[
        ("event.id", false),
        ("event.type", false),
        ("event.occurred_at", false),
        ("event.project_id", false),
        ("event.actor.id", false),
        ("event.actor.email", false),
        ("event.data", true),
        ("webhook.id", false),
        ("webhook.name", false),
        ("webhook.project_id", false),
        ("webhook.last_success_at", false),
        ("webhook.last_failure_at", false),
        ("webhook.timeout_seconds", false),
        ("delivery.id", false),
        ("attempt.number", false),
        ("attempt.triggered_at", false),
        ("custom", true),
    ];

    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn parse(template: Value) -> Result<Self, InvalidField> {
        if template.to_string().len() > Self::MAX_BYTES {
            return Err(InvalidField::new("template", "must be at most 64 KiB"));
        }
        check_placeholders(&template, "template")?;
        Ok(Self(template))
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// Whether `path` (without braces) is a placeholder Herald can fill.
    pub fn knows(path: &str) -> bool {
        Self::PLACEHOLDERS.iter().any(|(root, deeper)| {
            path == *root
                || (*deeper
                    && path
                        .strip_prefix(root)
                        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.')))
        })
    }
}

impl TryFrom<Value> for Template {
    type Error = InvalidField;
    fn try_from(v: Value) -> Result<Self, Self::Error> {
        Self::parse(v)
    }
}

impl From<Template> for Value {
    fn from(t: Template) -> Value {
        t.0
    }
}

/// Yields each `{{ path }}` in a string, trimmed, or an error for an unclosed `{{`.
pub fn placeholders(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "has a \"{{\" that is never closed".to_owned())?;
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    Ok(out)
}

fn check_placeholders(value: &Value, path: &str) -> Result<(), InvalidField> {
    match value {
        Value::String(s) => {
            for p in placeholders(s).map_err(|m| InvalidField::new(path, m))? {
                if !Template::knows(p) {
                    return Err(InvalidField::new(
                        path,
                        format!(
                            "unknown placeholder \"{{{{{p}}}}}\"; known: {} (event.data.* and custom.* reach deeper)",
                            Template::PLACEHOLDERS
                                .iter()
                                .map(|(r, _)| *r)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_placeholders(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_placeholders(v, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn presets_resolve_to_the_design_table() {
        let s = Shape::resolve(Some(Preset::Github), None, None);
        assert_eq!(s.format, Format::Raw);
        assert!(s.scheme.headers_set().contains("x-hub-signature-256"));
        let s = Shape::resolve(None, None, None);
        assert_eq!(s.preset, Some(Preset::Standard));
        assert_eq!(s.scheme, SigningScheme::StandardWebhooks);
        let s = Shape::resolve(None, Some(Format::Raw), None);
        assert_eq!(s.preset, None);
        let s = Shape::resolve(Some(Preset::Github), Some(Format::Standard), None);
        assert_eq!(
            s.preset, None,
            "an overridden preset is no longer that preset"
        );
        let s = Shape::resolve(Some(Preset::Connect), Some(Format::Connect), None);
        assert_eq!(s.preset, Some(Preset::Connect));
        assert_eq!(s.scheme, SigningScheme::JwtHs256);
        for (i, name) in Preset::NAMES.iter().enumerate() {
            let p = Preset::from_name(name).unwrap();
            assert_eq!(p as usize, i);
            assert_eq!(p.name(), *name);
        }
        assert_eq!(Preset::from_name("svix").unwrap_err().field, "preset");
    }

    #[test]
    fn templates_name_the_bad_placeholder() {
        let ok = json!({"id": "{{ webhook.id }}", "d": "{{event.data.a.b}}", "x": ["at {{event.occurred_at}}"]});
        assert!(Template::parse(ok).is_ok());
        let bad = json!({"a": [1, {"b": "{{ event.nope }}"}]});
        assert_eq!(Template::parse(bad).unwrap_err().field, "template.a[1].b");
        let unclosed = json!({"a": "{{ event.id"});
        assert_eq!(Template::parse(unclosed).unwrap_err().field, "template.a");
        assert!(Template::parse(json!({"a": "{{custom.}}"})).is_err());
    }

    #[test]
    fn signing_headers_may_not_be_herald_or_transport_headers() {
        let hmac = |header: &str| SigningScheme::HmacSha256 {
            header: header.into(),
            encoding: DigestEncoding::Hex,
            prefix: String::new(),
            secret: SecretSource::Webhook,
        };
        let secret = |header: &str| SigningScheme::SecretHeader {
            header: header.into(),
        };
        for bad in [
            "X-Herald-Event",
            "x-herald-signature",
            "Content-Type",
            "",
            "a b",
        ] {
            assert_eq!(hmac(bad).validate().unwrap_err().field, "header", "{bad}");
            assert_eq!(secret(bad).validate().unwrap_err().field, "header", "{bad}");
        }
        assert!(hmac("X-Heralded").validate().is_ok());
        assert!(secret("X-Webhook-Secret").validate().is_ok());
    }

    #[test]
    fn format_names_and_templates_go_together() {
        assert_eq!(
            Format::from_name("custom", None).unwrap_err().field,
            "template"
        );
        assert_eq!(
            Format::from_name("raw", Some(json!({}))).unwrap_err().field,
            "template"
        );
        assert_eq!(Format::from_name("xml", None).unwrap_err().field, "format");
    }
}
