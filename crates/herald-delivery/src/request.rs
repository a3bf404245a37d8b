//! Building the HTTP request for one attempt: render the payload in the webhook's format, sign
//! it with its scheme, add custom and Herald headers, and note which headers hold secrets so the
//! stored attempt can redact them. Pure: no I/O.

use std::borrow::Cow;

use herald_core::attempt::redact_headers;
use herald_core::event::Event;
use herald_core::id::DeliveryId;
use herald_core::payload::{DeliveryContext, query_params, render};
use herald_core::secret::SigningSecret;
use herald_core::shape::SigningScheme;
use herald_core::signing::{SigningError, SigningKeys, sign};
use herald_core::time::Timestamp;
use herald_core::webhook::{HttpMethod, Webhook};

pub const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// Everything needed to send one attempt.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub method: HttpMethod,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    /// Shared, not copied, by each send of it.
    pub body: Option<bytes::Bytes>,
    /// Lower-case names of headers whose values must not be stored.
    pub secret_headers: Vec<Cow<'static, str>>,
}

impl Prepared {
    /// The headers as stored with the attempt, once sent: secrets redacted.
    pub fn into_redacted_headers(self) -> std::collections::BTreeMap<String, String> {
        redact_headers(self.headers, &self.secret_headers)
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

pub fn prepare(webhook: &Webhook, event: &Event, t: Try<'_>) -> Result<Prepared, SigningError> {
    let ctx = DeliveryContext {
        event,
        webhook,
        delivery_id: t.delivery_id,
        attempt: t.attempt,
        triggered_at: t.now,
        last_success_at: t.last_success_at,
        last_failure_at: t.last_failure_at,
        api_url: t.api_url,
    };
    let payload = render(&ctx);
    let mut url = webhook.url.url().clone();
    let body = match webhook.method {
        HttpMethod::Post => Some(bytes::Bytes::from(
            serde_json::to_vec(&payload).unwrap_or_default(),
        )),
        HttpMethod::Get => {
            url.query_pairs_mut().extend_pairs(query_params(&payload));
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
        &payload,
        body.as_deref().unwrap_or_default(),
    )?;
    let mut headers: Vec<(String, String)> = Vec::with_capacity(8 + webhook.headers.as_map().len());
    headers.push(("user-agent".into(), USER_AGENT.into()));
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    headers.extend(webhook.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers.extend(signature);
    headers.push(("x-herald-delivery-id".into(), t.delivery_id.to_string()));
    headers.push(("x-herald-attempt".into(), t.attempt.to_string()));
    Ok(Prepared {
        method: webhook.method,
        url,
        headers,
        body,
        secret_headers: secret_headers(&webhook.shape.scheme),
    })
}

fn secret_headers(scheme: &SigningScheme) -> Vec<Cow<'static, str>> {
    let mut names = vec![
        Cow::Borrowed("authorization"),
        Cow::Borrowed("proxy-authorization"),
    ];
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
        prepared
            .headers
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .unwrap()
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
