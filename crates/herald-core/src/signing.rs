//! Signing: the headers that authenticate one request, for each [`SigningScheme`].
//!
//! [`sign`] is a pure function of the scheme, the keys, the delivery id, the time and the bytes
//! sent; the delivery engine calls it once per attempt, after [`crate::payload::render`]. The
//! receiver side of every scheme lives in the `herald-verify` crate, whose tests sign with this
//! module, so the two cannot drift apart.
//!
//! Which bytes are the key matters as much as the algorithm: a receiver written from a seed
//! document must verify unchanged. Herald's secrets look like `whsec_<base64>`, and:
//!
//! | scheme | key | because |
//! |---|---|---|
//! | Standard Webhooks | the base64-decoded part after `whsec_` ([`SigningSecret::key_bytes`]) | the Standard Webhooks spec and its libraries decode it |
//! | HMAC-SHA256 header | the secret string's UTF-8 bytes, `whsec_` included | GitHub's and CloudShare's receivers key HMAC with the secret as typed or pasted |
//! | JWT HS256 | the secret string's UTF-8 bytes | JWT libraries (PyJWT, jsonwebtoken) take the shared secret as a string |
//! | secret header | — (the string itself is sent) | the case-management receiver compares the header with the string |
//!
//! Rotation: Standard Webhooks carries one `v1,` signature per key, so it signs with every key the
//! webhook has (the new one and the old one in its grace period). The other schemes carry one
//! signature, so they keep signing with the *oldest* key still in its grace period and switch to
//! the new one when the grace period ends — issue 4's rule, which lets receivers move to the new
//! secret at their own pace. Rotating "at once" means the caller passes only the new key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::secret::SigningSecret;
use crate::shape::{DigestEncoding, SecretSource, SigningScheme};

/// The secrets a request may be signed with.
#[derive(Clone, Copy, Debug)]
pub struct SigningKeys<'a> {
    /// The webhook's secrets, current first, then any older one still inside its rotation grace
    /// period.
    pub webhook: &'a [SigningSecret],
    /// The installation's account-level secret (CloudShare's model).
    pub account: Option<&'a SigningSecret>,
}

/// Settings of [`sign_with`] that have a sensible default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignOptions {
    /// How long a JWT stays valid after it is issued: `exp = iat + jwt_lifetime_seconds`.
    pub jwt_lifetime_seconds: i64,
}

impl SignOptions {
    pub const DEFAULT_JWT_LIFETIME_SECONDS: i64 = 300;
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            jwt_lifetime_seconds: Self::DEFAULT_JWT_LIFETIME_SECONDS,
        }
    }
}

/// Why a request could not be signed. Each is a configuration problem, not a transient one:
/// retrying the same attempt gives the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the webhook has no signing secret")]
    NoWebhookSecret,
    #[error("the scheme signs with the account-level secret, and none is configured")]
    NoAccountSecret,
    #[error("JWT claims must be a JSON object, and this payload is {kind}")]
    PayloadNotObject { kind: &'static str },
}

/// Headers to add to the request, in order. `message_id` is the delivery id, `timestamp` unix
/// seconds, `payload` the rendered payload and `body` the exact bytes sent (empty for GET).
///
/// JWTs live for [`SignOptions::DEFAULT_JWT_LIFETIME_SECONDS`]; [`sign_with`] takes another.
pub fn sign(
    scheme: &SigningScheme,
    keys: &SigningKeys,
    message_id: &str,
    timestamp: i64,
    payload: &Value,
    body: &[u8],
) -> Result<Vec<(String, String)>, SigningError> {
    sign_with(
        scheme,
        keys,
        message_id,
        timestamp,
        payload,
        body,
        &SignOptions::default(),
    )
}

/// [`sign`] with explicit [`SignOptions`].
pub fn sign_with(
    scheme: &SigningScheme,
    keys: &SigningKeys,
    message_id: &str,
    timestamp: i64,
    payload: &Value,
    body: &[u8],
    options: &SignOptions,
) -> Result<Vec<(String, String)>, SigningError> {
    let header = |name: &str, value: String| (name.to_owned(), value);
    Ok(match scheme {
        SigningScheme::StandardWebhooks => {
            if keys.webhook.is_empty() {
                return Err(SigningError::NoWebhookSecret);
            }
            let signatures = keys
                .webhook
                .iter()
                .map(|secret| {
                    format!(
                        "v1,{}",
                        standard_webhooks_signature(
                            &secret.key_bytes(),
                            message_id,
                            timestamp,
                            body
                        )
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                header("webhook-id", message_id.to_owned()),
                header("webhook-timestamp", timestamp.to_string()),
                header("webhook-signature", signatures),
            ]
        }
        SigningScheme::HmacSha256 {
            header: name,
            encoding,
            prefix,
            secret,
        } => {
            let key = match secret {
                SecretSource::Webhook => single_webhook_key(keys)?,
                SecretSource::Account => keys.account.ok_or(SigningError::NoAccountSecret)?,
            };
            let digest = hmac_sha256(key.expose().as_bytes(), &[body]);
            let encoded = match encoding {
                DigestEncoding::Base64 => STANDARD.encode(digest),
                DigestEncoding::Hex => hex::encode(digest),
            };
            vec![header(name, format!("{prefix}{encoded}"))]
        }
        SigningScheme::SecretHeader { header: name } => {
            vec![header(name, single_webhook_key(keys)?.expose().to_owned())]
        }
        SigningScheme::JwtHs256 => {
            let Value::Object(payload) = payload else {
                return Err(SigningError::PayloadNotObject {
                    kind: json_kind(payload),
                });
            };
            // The payload's keys, then Herald's `iat` and `exp`, which replace any the payload
            // had: a receiver must be able to trust them.
            let mut claims = payload.clone();
            claims.shift_remove("iat");
            claims.shift_remove("exp");
            claims.insert("iat".into(), timestamp.into());
            claims.insert(
                "exp".into(),
                timestamp
                    .saturating_add(options.jwt_lifetime_seconds)
                    .into(),
            );
            let claims = Value::Object(claims).to_string();
            let token = jws_hs256(
                JWT_HEADER.as_bytes(),
                claims.as_bytes(),
                single_webhook_key(keys)?.expose().as_bytes(),
            );
            vec![header("Authorization", format!("Bearer {token}"))]
        }
        SigningScheme::None => Vec::new(),
    })
}

/// The JOSE header of every JWT Herald signs, byte for byte as CloudBlue's tokens start
/// (`eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9`).
pub const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// The key a one-signature scheme signs with: the oldest still valid (see the module doc).
fn single_webhook_key<'a>(keys: &SigningKeys<'a>) -> Result<&'a SigningSecret, SigningError> {
    keys.webhook.last().ok_or(SigningError::NoWebhookSecret)
}

/// Base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, the Standard Webhooks `v1` signature.
pub fn standard_webhooks_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    STANDARD.encode(hmac_sha256(
        key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    ))
}

/// A compact JWS (RFC 7515) signed with HS256 over exactly the given header and claims bytes.
pub fn jws_hs256(header: &[u8], claims: &[u8], key: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = hmac_sha256(key, &[signing_input.as_bytes()]);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(s: &str) -> SigningSecret {
        SigningSecret::from_stored(s.to_owned())
    }

    fn hmac_scheme(
        header: &str,
        encoding: DigestEncoding,
        prefix: &str,
        secret: SecretSource,
    ) -> SigningScheme {
        SigningScheme::HmacSha256 {
            header: header.into(),
            encoding,
            prefix: prefix.into(),
            secret,
        }
    }

    fn one(headers: Vec<(String, String)>) -> (String, String) {
        assert_eq!(headers.len(), 1, "{headers:?}");
        headers.into_iter().next().unwrap()
    }

    #[test]
    fn standard_webhooks_matches_the_spec_example() {
        // https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
        let keys = [secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
        let body = br#"{"test": 2432232314}"#;
        let headers = sign(
            &SigningScheme::StandardWebhooks,
            &SigningKeys {
                webhook: &keys,
                account: None,
            },
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            &json!({"test": 2_432_232_314_u64}),
            body,
        )
        .unwrap();
        let expected = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(headers, expected);
    }

    #[test]
    fn standard_webhooks_signs_with_every_key_in_its_grace_period() {
        let keys = [
            secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            SigningSecret::generate(),
        ];
        let headers = sign(
            &SigningScheme::StandardWebhooks,
            &SigningKeys {
                webhook: &keys,
                account: None,
            },
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            &Value::Null,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        let signatures: Vec<&str> = headers[2].1.split(' ').collect();
        assert_eq!(signatures.len(), 2);
        assert_eq!(
            signatures[0],
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(signatures[1].starts_with("v1,") && signatures[1] != signatures[0]);
    }

    #[test]
    fn github_hmac_matches_githubs_documented_example() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let keys = [secret("It's a Secret to Everybody")];
        let headers = sign(
            &hmac_scheme(
                "X-Hub-Signature-256",
                DigestEncoding::Hex,
                "sha256=",
                SecretSource::Webhook,
            ),
            &SigningKeys {
                webhook: &keys,
                account: None,
            },
            "dlv_x",
            0,
            &json!("Hello, World!"),
            b"Hello, World!",
        )
        .unwrap();
        assert_eq!(
            one(headers),
            (
                "X-Hub-Signature-256".to_owned(),
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                    .to_owned()
            )
        );
    }

    #[test]
    fn hmac_keys_with_the_whole_secret_string_not_its_decoded_bytes() {
        // RFC 4231 test case 2 ("Jefe"), base64 as CloudShare sends it. A `whsec_` secret is
        // used as typed, prefix and all, just as a receiver pasting it into HMAC code would.
        let keys = [secret("Jefe")];
        let scheme = hmac_scheme(
            "x-cloudshare-signature",
            DigestEncoding::Base64,
            "",
            SecretSource::Webhook,
        );
        let body = b"what do ya want for nothing?";
        let sig =
            |keys: &SigningKeys| one(sign(&scheme, keys, "id", 0, &Value::Null, body).unwrap()).1;
        assert_eq!(
            sig(&SigningKeys {
                webhook: &keys,
                account: None
            }),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
        let whsec = [secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
        let expected = STANDARD.encode(hmac_sha256(whsec[0].expose().as_bytes(), &[body]));
        assert_eq!(
            sig(&SigningKeys {
                webhook: &whsec,
                account: None
            }),
            expected
        );
        assert_ne!(
            expected,
            STANDARD.encode(hmac_sha256(&whsec[0].key_bytes(), &[body]))
        );
    }

    #[test]
    fn cloudshare_signs_with_the_account_secret_and_needs_one() {
        let (_, scheme) = crate::shape::Preset::Cloudshare.shape();
        let webhook = [secret("not this one")];
        let account = secret("Jefe");
        let body = b"what do ya want for nothing?";
        let headers = sign(
            &scheme,
            &SigningKeys {
                webhook: &webhook,
                account: Some(&account),
            },
            "id",
            0,
            &Value::Null,
            body,
        )
        .unwrap();
        assert_eq!(
            one(headers),
            (
                "x-cloudshare-signature".to_owned(),
                "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=".to_owned()
            )
        );
        let none = sign(
            &scheme,
            &SigningKeys {
                webhook: &webhook,
                account: None,
            },
            "id",
            0,
            &Value::Null,
            body,
        );
        assert_eq!(none, Err(SigningError::NoAccountSecret));
    }

    #[test]
    fn single_signature_schemes_keep_the_old_key_through_its_grace_period() {
        let scheme = SigningScheme::SecretHeader {
            header: "X-Webhook-Secret".into(),
        };
        let current = secret("new-secret");
        let old = secret("super-secret-key");
        let during = [current.clone(), old];
        let after = [current];
        let send = |webhook: &[SigningSecret]| {
            one(sign(
                &scheme,
                &SigningKeys {
                    webhook,
                    account: None,
                },
                "id",
                0,
                &Value::Null,
                b"",
            )
            .unwrap())
        };
        assert_eq!(
            send(&during),
            ("X-Webhook-Secret".to_owned(), "super-secret-key".to_owned())
        );
        assert_eq!(send(&after).1, "new-secret");
        assert_eq!(
            sign(
                &scheme,
                &SigningKeys {
                    webhook: &[],
                    account: None
                },
                "id",
                0,
                &Value::Null,
                b""
            ),
            Err(SigningError::NoWebhookSecret)
        );
    }

    #[test]
    fn jws_hs256_matches_rfc_7515_appendix_a1() {
        // https://www.rfc-editor.org/rfc/rfc7515#appendix-A.1 — the header and claims bytes
        // include CR LF and a space, exactly as the RFC prints them.
        let header = b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
        let claims =
            b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        assert_eq!(
            jws_hs256(header, claims, &key),
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
             .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
             .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn jwt_claims_are_the_payload_then_iat_and_exp() {
        let keys = [secret("jwt-secret")];
        let payload = json!({"webhook_id": "wh_1", "data": {"a": 1}, "exp": 1, "iat": 2});
        let sign_for = |options: &SignOptions| {
            let (name, value) = one(sign_with(
                &SigningScheme::JwtHs256,
                &SigningKeys {
                    webhook: &keys,
                    account: None,
                },
                "id",
                1_622_109_243,
                &payload,
                b"ignored",
                options,
            )
            .unwrap());
            assert_eq!(name, "Authorization");
            value.strip_prefix("Bearer ").unwrap().to_owned()
        };
        let token = sign_for(&SignOptions::default());
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(
            parts[0], "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9",
            "CloudBlue's header"
        );
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            r#"{"webhook_id":"wh_1","data":{"a":1},"iat":1622109243,"exp":1622109543}"#
        );
        let expected = jws_hs256(JWT_HEADER.as_bytes(), claims.as_bytes(), b"jwt-secret");
        assert_eq!(token, expected, "keyed by the secret string's bytes");

        let short = sign_for(&SignOptions {
            jwt_lifetime_seconds: 10,
        });
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(short.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["exp"], 1_622_109_253);
    }

    #[test]
    fn jwt_needs_an_object_payload() {
        let keys = [secret("s")];
        let err = sign(
            &SigningScheme::JwtHs256,
            &SigningKeys {
                webhook: &keys,
                account: None,
            },
            "id",
            0,
            &json!([1]),
            b"[1]",
        )
        .unwrap_err();
        assert_eq!(err, SigningError::PayloadNotObject { kind: "an array" });
    }

    #[test]
    fn none_adds_no_headers() {
        let headers = sign(
            &SigningScheme::None,
            &SigningKeys {
                webhook: &[],
                account: None,
            },
            "id",
            0,
            &Value::Null,
            b"",
        )
        .unwrap();
        assert!(headers.is_empty());
    }

    #[test]
    fn every_scheme_sets_exactly_the_headers_it_reserves() {
        let keys = [SigningSecret::generate()];
        let account = SigningSecret::generate();
        let schemes = [
            SigningScheme::StandardWebhooks,
            hmac_scheme("X-Sig", DigestEncoding::Hex, "", SecretSource::Webhook),
            hmac_scheme("X-Sig", DigestEncoding::Base64, "", SecretSource::Account),
            SigningScheme::SecretHeader {
                header: "X-Webhook-Secret".into(),
            },
            SigningScheme::JwtHs256,
            SigningScheme::None,
        ];
        for scheme in schemes {
            let headers = sign(
                &scheme,
                &SigningKeys {
                    webhook: &keys,
                    account: Some(&account),
                },
                "id",
                0,
                &json!({}),
                b"{}",
            )
            .unwrap();
            let names: std::collections::BTreeSet<String> = headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect();
            assert_eq!(names, scheme.headers_set(), "{scheme:?}");
        }
    }
}
