//! Herald signs, herald-verify checks: for every preset and scheme, a request rendered and
//! signed by herald-core verifies, and a tampered, replayed or wrongly keyed one does not.
//!
//! These tests pin the contract between the two crates (which bytes are the key, what is
//! signed, which headers carry it), so a change on either side that a real receiver would
//! notice fails here first.

#![allow(clippy::unwrap_used, reason = "a failed step fails the test")]

use herald_core::event::{Actor, Event, EventId};
use herald_core::event_type::EventTypeName;
use herald_core::filter::EventFilter;
use herald_core::id::{DeliveryId, ProjectId, WebhookId};
use herald_core::payload::{DeliveryContext, render};
use herald_core::secret::SigningSecret;
use herald_core::shape::{DigestEncoding, Preset, SecretSource, Shape, SigningScheme};
use herald_core::signing::{SigningKeys, sign};
use herald_core::time::from_millis;
use herald_core::webhook::{
    CustomData, CustomHeaders, HttpMethod, TargetUrl, Timeout, Webhook, WebhookStatus,
};
use herald_verify::{Encoding, Scheme, Verifier, VerifyError};
use serde_json::{Value, json};

const NOW: i64 = 1_622_109_243;

/// One delivery as the engine would send it: headers and body.
struct Request {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        &self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .1
    }
}

fn webhook(shape: Shape, secret: SigningSecret) -> Webhook {
    Webhook {
        id: WebhookId::new(),
        project_id: ProjectId::new(),
        name: "Tutorial Webhook".into(),
        description: None,
        url: TargetUrl::parse("https://example.com/hook", false).unwrap(),
        method: HttpMethod::Post,
        filter: EventFilter::All,
        headers: CustomHeaders::default(),
        custom_data: CustomData::parse(json!({"product_id": "PRD-578-226-824", "purpose": "demo"}))
            .unwrap(),
        shape,
        timeout: Timeout::from_seconds(600).unwrap(),
        retry_policy: None,
        status: WebhookStatus::Active,
        status_reason: None,
        secret,
        previous_secret: None,
        created_at: from_millis(0),
        updated_at: from_millis(0),
    }
}

/// Renders and signs as the delivery engine does, at `NOW`.
fn send(webhook: &Webhook, secrets: &[SigningSecret], account: Option<&SigningSecret>) -> Request {
    let event = Event {
        id: EventId::generate(),
        project_id: webhook.project_id.clone(),
        event_type: EventTypeName::parse("environment.suspended").unwrap(),
        occurred_at: from_millis(NOW * 1000 - 5_000),
        data: json!({"environmentId": "env-1", "audience": "partners"}),
        actor: Some(Actor {
            id: Some("u-1".into()),
            email: Some("am@example.com".into()),
        }),
        created_at: from_millis(NOW * 1000),
    };
    let delivery_id = DeliveryId::new();
    let payload = render(&DeliveryContext {
        event: &event,
        webhook,
        delivery_id: &delivery_id,
        attempt: 1,
        triggered_at: from_millis(NOW * 1000),
        last_success_at: None,
        last_failure_at: None,
        api_url: "https://herald.example.com/v1/",
    });
    let body = serde_json::to_vec(&payload).unwrap();
    let headers = sign(
        &webhook.shape.scheme,
        &SigningKeys {
            webhook: secrets,
            account,
        },
        delivery_id.as_str(),
        NOW,
        &payload,
        &body,
    )
    .unwrap();
    Request { headers, body }
}

fn preset(preset: Preset) -> Shape {
    Shape::resolve(Some(preset), None, None)
}

fn tampered(body: &[u8]) -> Vec<u8> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .replace("env-1", "env-2")
        .into_bytes()
}

#[test]
fn standard_preset_verifies_and_refuses_tampering_and_replays() {
    let secret = SigningSecret::generate();
    let w = webhook(preset(Preset::Standard), secret.clone());
    let r = send(&w, std::slice::from_ref(&secret), None);
    let v = Verifier::new(Scheme::standard_webhooks(), secret.expose());

    let ok = v.verify_at(&r.headers, &r.body, NOW + 1).unwrap();
    assert_eq!(ok.message_id.as_deref(), Some(r.header("webhook-id")));
    assert!(matches!(
        v.verify_at(&r.headers, &tampered(&r.body), NOW),
        Err(VerifyError::SignatureMismatch { .. })
    ));
    assert!(matches!(
        v.verify_at(&r.headers, &r.body, NOW + 301),
        Err(VerifyError::TimestampTooOld { .. })
    ));
    // Moving the timestamp forward to dodge the replay check breaks the signature instead.
    let mut replayed = r.headers.clone();
    for (k, value) in &mut replayed {
        if k == "webhook-timestamp" {
            *value = (NOW + 3600).to_string();
        }
    }
    assert!(matches!(
        v.verify_at(&replayed, &r.body, NOW + 3600),
        Err(VerifyError::SignatureMismatch { .. })
    ));
    let stranger = Verifier::new(
        Scheme::standard_webhooks(),
        SigningSecret::generate().expose(),
    );
    assert!(stranger.verify_at(&r.headers, &r.body, NOW).is_err());
}

#[test]
fn during_a_rotation_both_the_new_and_the_old_standard_secret_verify() {
    let new = SigningSecret::generate();
    let old = SigningSecret::generate();
    let w = webhook(preset(Preset::Standard), new.clone());
    let r = send(&w, &[new.clone(), old.clone()], None);
    for secret in [&new, &old] {
        let v = Verifier::new(Scheme::standard_webhooks(), secret.expose());
        assert!(v.verify_at(&r.headers, &r.body, NOW).is_ok());
    }
    let after = send(&w, std::slice::from_ref(&new), None);
    let v = Verifier::new(Scheme::standard_webhooks(), old.expose());
    assert!(v.verify_at(&after.headers, &after.body, NOW).is_err());
}

#[test]
fn cloudshare_preset_verifies_with_the_account_secret_only() {
    let account = SigningSecret::generate();
    let own = SigningSecret::generate();
    let w = webhook(preset(Preset::Cloudshare), own.clone());
    let r = send(&w, std::slice::from_ref(&own), Some(&account));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["Event"], "environment.suspended");
    assert_eq!(body["Payload"]["environmentId"], "env-1");

    let v = Verifier::new(Scheme::cloudshare(), account.expose());
    assert!(v.verify_at(&r.headers, &r.body, NOW).is_ok());
    assert!(matches!(
        v.verify_at(&r.headers, &tampered(&r.body), NOW),
        Err(VerifyError::SignatureMismatch { .. })
    ));
    let with_own = Verifier::new(Scheme::cloudshare(), own.expose());
    assert!(with_own.verify_at(&r.headers, &r.body, NOW).is_err());
}

#[test]
fn github_preset_verifies_with_the_secret_as_typed() {
    let secret = SigningSecret::generate();
    let w = webhook(preset(Preset::Github), secret.clone());
    let r = send(&w, std::slice::from_ref(&secret), None);
    assert!(r.header("X-Hub-Signature-256").starts_with("sha256="));
    let v = Verifier::new(Scheme::github(), secret.expose());
    assert!(v.verify_at(&r.headers, &r.body, NOW).is_ok());
    assert!(matches!(
        v.verify_at(&r.headers, &tampered(&r.body), NOW),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn event_data_preset_sends_the_secret_the_receiver_compares() {
    let secret = SigningSecret::from_stored("super-secret-key".into());
    let w = webhook(preset(Preset::EventData), secret.clone());
    let r = send(&w, std::slice::from_ref(&secret), None);
    assert_eq!(r.header("X-Webhook-Secret"), "super-secret-key");
    assert!(
        Verifier::new(Scheme::event_data(), "super-secret-key")
            .verify_at(&r.headers, &r.body, NOW)
            .is_ok()
    );
    assert!(matches!(
        Verifier::new(Scheme::event_data(), "other").verify_at(&r.headers, &r.body, NOW),
        Err(VerifyError::SecretMismatch { .. })
    ));
}

#[test]
fn connect_preset_bearer_carries_the_body_and_expires() {
    let secret = SigningSecret::generate();
    let w = webhook(preset(Preset::Connect), secret.clone());
    let r = send(&w, std::slice::from_ref(&secret), None);
    let v = Verifier::new(Scheme::jwt_hs256(), secret.expose());

    let claims = v
        .verify_at(&r.headers, &r.body, NOW + 1)
        .unwrap()
        .claims
        .unwrap();
    for key in [
        "webhook_id",
        "webhook_name",
        "object_class",
        "account_id",
        "product_id",
        "api_url",
        "triggered_at",
        "last_success_at",
        "last_failure_at",
        "processing_timeout",
        "data",
        "iat",
        "exp",
    ] {
        assert!(claims.contains_key(key), "claims lack {key}: {claims:?}");
    }
    assert_eq!(claims["product_id"], "PRD-578-226-824");
    assert_eq!(claims["exp"], NOW + 300);

    assert_eq!(
        v.verify_at(&r.headers, &r.body, NOW + 300),
        Err(VerifyError::TokenExpired {
            exp: NOW + 300,
            now: NOW + 300
        })
    );
    assert_eq!(
        v.verify_at(&r.headers, &tampered(&r.body), NOW),
        Err(VerifyError::BodyMismatch)
    );
    // A GET delivery has no body: the token alone carries the payload.
    assert!(v.verify_at(&r.headers, b"", NOW).is_ok());
    let stranger = Verifier::new(Scheme::jwt_hs256(), "not the secret");
    assert!(matches!(
        stranger.verify_at(&r.headers, &r.body, NOW),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn a_configured_hmac_header_round_trips_in_both_encodings() {
    for (encoding, theirs) in [
        (DigestEncoding::Base64, Encoding::Base64),
        (DigestEncoding::Hex, Encoding::Hex),
    ] {
        let scheme = SigningScheme::HmacSha256 {
            header: "X-Signature".into(),
            encoding,
            prefix: "v1=".into(),
            secret: SecretSource::Webhook,
        };
        let secret = SigningSecret::generate();
        let w = webhook(Shape::resolve(None, None, Some(scheme)), secret.clone());
        let r = send(&w, std::slice::from_ref(&secret), None);
        let v = Verifier::new(
            Scheme::HmacSha256 {
                header: "x-signature".into(),
                encoding: theirs,
                prefix: "v1=".into(),
            },
            secret.expose(),
        );
        assert!(
            v.verify_at(&r.headers, &r.body, NOW).is_ok(),
            "{encoding:?}"
        );
        assert!(v.verify_at(&r.headers, &tampered(&r.body), NOW).is_err());
    }
}
