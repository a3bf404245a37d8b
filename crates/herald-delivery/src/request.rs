//! Building the HTTP request for one attempt: render the payload in the webhook's format, sign
//! it with its scheme, add custom and Herald headers, and note which headers hold secrets so the
//! stored attempt can redact them. Pure: no I/O.

use std::borrow::Cow;
use std::mem::Discriminant;
use std::sync::{Arc, Mutex};

use herald_core::attempt::HeaderRecord;
use herald_core::event::Event;
use herald_core::id::DeliveryId;
use herald_core::payload::{DeliveryContext, query_params, render};
use herald_core::secret::SigningSecret;
use herald_core::shape::{Format, SigningScheme};
use herald_core::signing::{SigningError, SigningKeys, sign};
use herald_core::time::Timestamp;
use herald_core::webhook::{HttpMethod, Webhook};
use hyper::header::{
    CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT as USER_AGENT_HEADER,
};
use serde_json::Value;

pub const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// Everything needed to send one attempt.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub method: HttpMethod,
    pub url: url::Url,
    /// As they go on the wire (names lower-case), built once: Herald's own names are static,
    /// the values own the strings they were made from, and the send moves the map into the
    /// request.
    pub headers: HeaderMap,
    /// Shared, not copied, by each send of it.
    pub body: Option<bytes::Bytes>,
    /// Lower-case names of headers whose values must not be stored.
    pub secret_headers: Vec<Cow<'static, str>>,
}

impl Prepared {
    /// The headers as stored with the attempt: secrets redacted.
    pub fn redacted_headers(&self) -> HeaderRecord {
        HeaderRecord::redacted(
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
            &self.secret_headers,
        )
    }
}

/// Why an attempt's request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("could not sign: {0}")]
    Signing(#[from] SigningError),
    /// A custom or signature header that HTTP cannot carry (custom headers are checked when a
    /// webhook is saved, so this is a webhook stored by an older, laxer Herald).
    #[error("header {name} cannot be sent: {reason}")]
    Header { name: String, reason: String },
}

const DELIVERY_ID: HeaderName = HeaderName::from_static("x-herald-delivery-id");
const ATTEMPT: HeaderName = HeaderName::from_static("x-herald-attempt");

/// The names Standard Webhooks (the default scheme) signs with, static: any other name is
/// copied into a header name of its own for every attempt.
const STANDARD_WEBHOOKS: [HeaderName; 3] = [
    HeaderName::from_static("webhook-id"),
    HeaderName::from_static("webhook-timestamp"),
    HeaderName::from_static("webhook-signature"),
];

/// One header from strings: the value keeps the string's buffer rather than copying it.
fn header(name: &str, value: String) -> Result<(HeaderName, HeaderValue), PrepareError> {
    let header_name = match STANDARD_WEBHOOKS
        .iter()
        .find(|known| known.as_str() == name)
    {
        Some(known) => known.clone(),
        None => HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(name, &e))?,
    };
    Ok((header_name, value_of(name, value)?))
}

fn value_of(name: &str, value: String) -> Result<HeaderValue, PrepareError> {
    HeaderValue::try_from(value).map_err(|e| bad(name, &e))
}

fn bad(name: &str, reason: &dyn std::fmt::Display) -> PrepareError {
    PrepareError::Header {
        name: name.to_owned(),
        reason: reason.to_string(),
    }
}

/// What the request is about, beyond the webhook and the event.
#[derive(Clone, Copy, Debug)]
pub struct Try<'a> {
    pub delivery_id: &'a DeliveryId,
    pub attempt: u32,
    pub now: Timestamp,
    pub last_success_at: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    pub api_url: &'a str,
    pub account_secret: Option<&'a SigningSecret>,
}

/// An event on its way to its webhooks, with the bodies rendered for it so far. Formats whose
/// body depends only on the event and the webhook's custom data (standard, event-data, raw) are
/// rendered once and shared by every webhook with the same format and custom data: at fan-out
/// 10, rendering and encoding were a third of the time spent preparing requests.
#[derive(Debug)]
pub struct Outbound {
    pub event: Event,
    rendered: Mutex<Vec<Rendered>>,
}

#[derive(Debug)]
struct Rendered {
    format: Discriminant<Format>,
    custom_data: serde_json::Map<String, Value>,
    payload: Arc<Value>,
    body: bytes::Bytes,
}

impl Outbound {
    pub fn new(event: Event) -> Self {
        Self {
            event,
            rendered: Mutex::new(Vec::new()),
        }
    }

    /// The payload and its JSON for this webhook, rendered now or by an earlier webhook with
    /// the same format and custom data; `None` if the body depends on more (the attempt, the
    /// webhook, the time).
    fn shared_body(&self, webhook: &Webhook, t: &Try<'_>) -> Option<(Arc<Value>, bytes::Bytes)> {
        let format = &webhook.shape.format;
        if !matches!(format, Format::Standard | Format::EventData | Format::Raw) {
            return None;
        }
        let key = std::mem::discriminant(format);
        let custom_data = webhook.custom_data.as_map();
        let mut rendered = self
            .rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = rendered
            .iter()
            .find(|r| r.format == key && r.custom_data == *custom_data)
        {
            return Some((r.payload.clone(), r.body.clone()));
        }
        let payload = Arc::new(render(&context(webhook, &self.event, t)));
        let body = encode(&payload);
        rendered.push(Rendered {
            format: key,
            custom_data: custom_data.clone(),
            payload: payload.clone(),
            body: body.clone(),
        });
        Some((payload, body))
    }
}

impl std::ops::Deref for Outbound {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

fn context<'a>(webhook: &'a Webhook, event: &'a Event, t: &Try<'a>) -> DeliveryContext<'a> {
    DeliveryContext {
        event,
        webhook,
        delivery_id: t.delivery_id,
        attempt: t.attempt,
        triggered_at: t.now,
        last_success_at: t.last_success_at,
        last_failure_at: t.last_failure_at,
        api_url: t.api_url,
    }
}

fn encode(payload: &Value) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(payload).unwrap_or_default())
}

/// The request for one attempt of `event`, rendered for this webhook alone.
pub fn prepare(webhook: &Webhook, event: &Event, t: Try<'_>) -> Result<Prepared, PrepareError> {
    let payload = render(&context(webhook, event, &t));
    let body = match webhook.method {
        HttpMethod::Post => Some(encode(&payload)),
        HttpMethod::Get => None,
    };
    finish(webhook, &payload, body, t)
}

/// [`prepare`], sharing the rendered body with the event's other webhooks where it can.
pub fn prepare_outbound(
    webhook: &Webhook,
    outbound: &Outbound,
    t: Try<'_>,
) -> Result<Prepared, PrepareError> {
    match outbound.shared_body(webhook, &t) {
        Some((payload, body)) => finish(webhook, &payload, Some(body), t),
        None => prepare(webhook, &outbound.event, t),
    }
}

/// Signs the rendered payload and adds the headers; `body` is its JSON (ignored for GET, whose
/// payload goes in the query).
fn finish(
    webhook: &Webhook,
    payload: &Value,
    body: Option<bytes::Bytes>,
    t: Try<'_>,
) -> Result<Prepared, PrepareError> {
    let mut url = webhook.url.url().clone();
    let body = match webhook.method {
        HttpMethod::Post => body,
        HttpMethod::Get => {
            url.query_pairs_mut().extend_pairs(query_params(payload));
            None
        }
    };
    // The current secret, then the one a rotation replaced while its grace period lasts (once
    // it has passed, the old secret is dropped here, whatever the row still holds).
    let secrets = webhook.signing_secrets(t.now);
    let keys = SigningKeys {
        webhook: &secrets,
        account: t.account_secret,
    };
    let signature = sign(
        &webhook.shape.scheme,
        &keys,
        t.delivery_id.as_str(),
        t.now.timestamp(),
        payload,
        body.as_deref().unwrap_or_default(),
    )?;
    let mut headers =
        HeaderMap::with_capacity(8 + webhook.headers.as_map().len() + signature.len());
    headers.append(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
    if body.is_some() {
        headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    for (name, value) in webhook.headers.iter() {
        let (name, value) = header(name, value.clone())?;
        headers.append(name, value);
    }
    for (name, value) in signature {
        let (name, value) = header(&name, value)?;
        headers.append(name, value);
    }
    let delivery_id = value_of(DELIVERY_ID.as_str(), t.delivery_id.to_string())?;
    headers.append(DELIVERY_ID, delivery_id);
    headers.append(ATTEMPT, HeaderValue::from(t.attempt));
    Ok(Prepared {
        method: webhook.method,
        url,
        headers,
        body,
        secret_headers: secret_headers(&webhook.shape.scheme),
    })
}

fn secret_headers(scheme: &SigningScheme) -> Vec<Cow<'static, str>> {
    let mut names = Vec::with_capacity(3);
    names.extend([
        Cow::Borrowed("authorization"),
        Cow::Borrowed("proxy-authorization"),
    ]);
    match scheme {
        SigningScheme::StandardWebhooks => names.push(Cow::Borrowed("webhook-signature")),
        SigningScheme::HmacSha256 { header, .. } | SigningScheme::SecretHeader { header } => {
            names.push(Cow::Owned(header.to_ascii_lowercase()));
        }
        SigningScheme::JwtHs256 | SigningScheme::None => {}
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

    use herald_core::event::EventId;
    use herald_core::event_type::EventTypeName;
    use herald_core::filter::EventFilter;
    use herald_core::id::{ProjectId, WebhookId};
    use herald_core::shape::{Preset, Shape};
    use herald_core::time::from_millis;
    use herald_core::webhook::{
        CustomData, CustomHeaders, RotationGrace, TargetUrl, Timeout, WebhookStatus,
    };
    use serde_json::json;

    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn rotated(preset: Preset) -> (Webhook, Event) {
        let project = ProjectId::new();
        let mut webhook = Webhook {
            id: WebhookId::new(),
            project_id: project.clone(),
            name: "w".into(),
            description: None,
            url: TargetUrl::parse("https://example.com/hook", false).unwrap(),
            method: HttpMethod::Post,
            filter: EventFilter::All,
            headers: CustomHeaders::default(),
            custom_data: CustomData::default(),
            shape: Shape::resolve(Some(preset), None, None),
            timeout: Timeout::default(),
            retry_policy: None,
            status: WebhookStatus::Active,
            status_reason: None,
            secret: SigningSecret::from_stored("old-secret".into()),
            previous_secret: None,
            created_at: from_millis(T0),
            updated_at: from_millis(T0),
        };
        webhook.rotate_secret(
            SigningSecret::from_stored("new-secret".into()),
            from_millis(T0),
            RotationGrace::from_seconds(60).unwrap(),
        );
        let event = Event {
            id: EventId::generate(),
            project_id: project,
            event_type: EventTypeName::parse("thing.happened").unwrap(),
            occurred_at: from_millis(T0),
            data: json!({"n": 1}),
            actor: None,
            created_at: from_millis(T0),
        };
        (webhook, event)
    }

    fn header(webhook: &Webhook, event: &Event, at_ms: i64, name: &str) -> String {
        let id = DeliveryId::new();
        let prepared = prepare(
            webhook,
            event,
            Try {
                delivery_id: &id,
                attempt: 1,
                now: from_millis(at_ms),
                last_success_at: None,
                last_failure_at: None,
                api_url: "http://127.0.0.1/v1/",
                account_secret: None,
            },
        )
        .unwrap();
        prepared.headers[name].to_str().unwrap().to_owned()
    }

    fn body(prepared: &Prepared) -> Value {
        serde_json::from_slice(prepared.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn a_body_is_shared_only_by_webhooks_it_is_the_same_for() {
        let (plain, event) = rotated(Preset::Standard);
        let mut same = plain.clone();
        same.id = WebhookId::new();
        let mut with_data = plain.clone();
        with_data.custom_data = CustomData::parse(json!({"tenant": "t1"})).unwrap();
        let mut other_format = plain.clone();
        other_format.shape = Shape::resolve(None, Some(Format::Cloudshare), None);
        let outbound = Outbound::new(event.clone());
        for attempt in [1, 2] {
            for webhook in [&plain, &same, &with_data, &other_format] {
                let id = DeliveryId::new();
                let t = Try {
                    delivery_id: &id,
                    attempt,
                    now: from_millis(T0 + 1_000),
                    last_success_at: None,
                    last_failure_at: None,
                    api_url: "http://127.0.0.1/v1/",
                    account_secret: None,
                };
                let shared = prepare_outbound(webhook, &outbound, t).unwrap();
                let alone = prepare(webhook, &event, t).unwrap();
                assert_eq!(body(&shared), body(&alone), "{:?}", webhook.shape.format);
                assert_eq!(
                    shared.headers, alone.headers,
                    "same signature, same headers"
                );
            }
        }
        // One body without custom data, one with; CloudShare's carries the attempt: not shared.
        assert_eq!(outbound.rendered.lock().unwrap().len(), 2);
        let id = DeliveryId::new();
        let t = Try {
            delivery_id: &id,
            attempt: 1,
            now: from_millis(T0),
            last_success_at: None,
            last_failure_at: None,
            api_url: "",
            account_secret: None,
        };
        let tenant = body(&prepare_outbound(&with_data, &outbound, t).unwrap());
        assert_eq!(tenant["data"], json!({"n": 1, "tenant": "t1"}));
    }

    #[test]
    fn standard_webhooks_signs_with_both_secrets_until_the_grace_period_ends() {
        let (webhook, event) = rotated(Preset::Standard);
        let during = header(&webhook, &event, T0 + 59_999, "webhook-signature");
        assert_eq!(during.split(' ').count(), 2, "{during}");
        let after = header(&webhook, &event, T0 + 60_000, "webhook-signature");
        assert_eq!(after.split(' ').count(), 1, "{after}");
    }

    #[test]
    fn single_signature_schemes_switch_when_the_grace_period_ends() {
        let (webhook, event) = rotated(Preset::EventData);
        let during = header(&webhook, &event, T0 + 59_999, "X-Webhook-Secret");
        assert_eq!(during, "old-secret");
        let after = header(&webhook, &event, T0 + 60_000, "X-Webhook-Secret");
        assert_eq!(after, "new-secret");
    }
}
