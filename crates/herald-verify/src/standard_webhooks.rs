//! Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
//!
//! Follows the spec (<https://www.standardwebhooks.com/>) and its reference libraries: the
//! timestamp must be within the tolerance of now, in either direction, so a captured request
//! cannot be replayed later; the signature header may hold several space-separated
//! `version,signature` entries (Herald sends one per secret during a rotation), and the request
//! is genuine when any `v1` entry matches. Other versions are skipped, not errors.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Headers, Verified, VerifyError, malformed, required};

pub(crate) const ID: &str = "webhook-id";
pub(crate) const TIMESTAMP: &str = "webhook-timestamp";
pub(crate) const SIGNATURE: &str = "webhook-signature";
const SECRET_PREFIX: &str = "whsec_";

pub(crate) fn verify<H: Headers + ?Sized>(
    secret: &str,
    headers: &H,
    body: &[u8],
    now: i64,
    tolerance_seconds: u64,
) -> Result<Verified, VerifyError> {
    let id = required(headers, ID)?;
    let raw_timestamp = required(headers, TIMESTAMP)?;
    let signatures = required(headers, SIGNATURE)?;

    let timestamp: i64 = raw_timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp {
            value: raw_timestamp.to_owned(),
        })?;
    let tolerance = i64::try_from(tolerance_seconds).unwrap_or(i64::MAX);
    if now.saturating_sub(timestamp) > tolerance {
        return Err(VerifyError::TimestampTooOld {
            timestamp,
            now,
            tolerance_seconds,
        });
    }
    if timestamp.saturating_sub(now) > tolerance {
        return Err(VerifyError::TimestampTooNew {
            timestamp,
            now,
            tolerance_seconds,
        });
    }

    let key = key_bytes(secret);
    let mut saw_v1 = false;
    for entry in signatures.split(' ').filter(|e| !e.is_empty()) {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        saw_v1 = true;
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        let mut mac = new_mac(&key);
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&candidate).is_ok() {
            return Ok(Verified {
                message_id: Some(id.to_owned()),
                timestamp: Some(timestamp),
                claims: None,
            });
        }
    }
    if saw_v1 {
        Err(VerifyError::SignatureMismatch {
            header: SIGNATURE.to_owned(),
        })
    } else {
        Err(malformed(SIGNATURE, "holds no `v1,<base64>` signature"))
    }
}

/// The base64-decoded part after `whsec_`; a secret in any other form is used as its bytes
/// (as herald-core's `SigningSecret::key_bytes`, which signs).
fn key_bytes(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

pub(crate) fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use crate::{Scheme, Verifier, VerifyError};

    // The example of the Standard Webhooks spec.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const SENT: i64 = 1_614_265_330;

    fn headers(signature: &str) -> Vec<(&'static str, String)> {
        vec![
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            ("webhook-timestamp", SENT.to_string()),
            ("webhook-signature", signature.to_owned()),
        ]
    }

    fn verifier() -> Verifier {
        Verifier::new(Scheme::standard_webhooks(), SECRET)
    }

    #[test]
    fn the_spec_example_verifies_and_names_its_message() {
        let ok = verifier()
            .verify_at(&headers(SIGNATURE), BODY, SENT + 10)
            .unwrap();
        assert_eq!(
            ok.message_id.as_deref(),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        assert_eq!(ok.timestamp, Some(SENT));
    }

    #[test]
    fn any_v1_signature_may_match() {
        let many = format!("v2,abc v1,bm90IGl0 {SIGNATURE}");
        assert!(verifier().verify_at(&headers(&many), BODY, SENT).is_ok());
        assert_eq!(
            verifier().verify_at(&headers("v1,bm90IGl0 v1,%%%"), BODY, SENT),
            Err(VerifyError::SignatureMismatch {
                header: "webhook-signature".into()
            })
        );
        assert!(matches!(
            verifier().verify_at(&headers("v2,abc"), BODY, SENT),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn a_tampered_body_or_id_is_refused() {
        assert!(matches!(
            verifier().verify_at(&headers(SIGNATURE), br#"{"test": 2432232315}"#, SENT),
            Err(VerifyError::SignatureMismatch { .. })
        ));
        let mut h = headers(SIGNATURE);
        h[0].1 = "msg_other".into();
        assert!(matches!(
            verifier().verify_at(&h, BODY, SENT),
            Err(VerifyError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused_either_way() {
        assert!(
            verifier()
                .verify_at(&headers(SIGNATURE), BODY, SENT + 300)
                .is_ok()
        );
        assert!(
            verifier()
                .verify_at(&headers(SIGNATURE), BODY, SENT - 300)
                .is_ok()
        );
        let old = verifier().verify_at(&headers(SIGNATURE), BODY, SENT + 301);
        assert_eq!(
            old,
            Err(VerifyError::TimestampTooOld {
                timestamp: SENT,
                now: SENT + 301,
                tolerance_seconds: 300
            })
        );
        assert!(
            old.unwrap_err()
                .to_string()
                .starts_with("timestamp too old: sent at 1614265330, 301 s before now")
        );
        assert!(matches!(
            verifier().verify_at(&headers(SIGNATURE), BODY, SENT - 301),
            Err(VerifyError::TimestampTooNew { .. })
        ));
        let lenient = Verifier::new(
            Scheme::StandardWebhooks {
                tolerance_seconds: 3600,
            },
            SECRET,
        );
        assert!(
            lenient
                .verify_at(&headers(SIGNATURE), BODY, SENT + 3600)
                .is_ok()
        );
    }

    #[test]
    fn each_missing_or_bad_header_is_named() {
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let h: Vec<_> = headers(SIGNATURE)
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(
                verifier().verify_at(&h, BODY, SENT),
                Err(VerifyError::MissingHeader {
                    header: missing.into()
                })
            );
        }
        let mut h = headers(SIGNATURE);
        h[1].1 = "yesterday".into();
        assert_eq!(
            verifier().verify_at(&h, BODY, SENT),
            Err(VerifyError::BadTimestamp {
                value: "yesterday".into()
            })
        );
    }

    #[test]
    fn the_wrong_secret_does_not_verify() {
        let other = Verifier::new(
            Scheme::standard_webhooks(),
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
        assert!(matches!(
            other.verify_at(&headers(SIGNATURE), BODY, SENT),
            Err(VerifyError::SignatureMismatch { .. })
        ));
    }
}
