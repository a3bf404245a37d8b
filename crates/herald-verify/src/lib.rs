//! Verify, on the receiving side, that a webhook request came from Herald and was not altered.
//!
//! This crate is for the people who *receive* Herald's webhooks, and for `herald verify`. It has
//! no async runtime and no server dependencies (only HMAC, SHA-256, base64/hex and serde_json),
//! so any receiver can embed it.
//!
//! ```
//! use herald_verify::{Scheme, Verifier};
//!
//! let verifier = Verifier::new(Scheme::github(), "It's a Secret to Everybody");
//! let headers = [(
//!     "X-Hub-Signature-256",
//!     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
//! )];
//! assert!(verifier.verify(&headers[..], b"Hello, World!").is_ok());
//! assert!(verifier.verify(&headers[..], b"Hello, World?").is_err());
//! ```
//!
//! Layout:
//! - this file: [`Scheme`] (what to check), [`Verifier`] (a scheme and a secret), [`Verified`].
//! - [`headers`]: the [`Headers`] trait, so requests from any HTTP library can be checked.
//! - [`error`]: [`VerifyError`], one variant per check that can fail.
//! - `standard_webhooks`, `hmac_body`, `jwt`: one module per scheme.
//!
//! Keys, as herald-core's `signing` module signs: Standard Webhooks uses the base64-decoded part
//! of a `whsec_…` secret; every other scheme uses the secret string's bytes exactly as shown.
//! Comparisons of signatures and secrets take constant time.

#![forbid(unsafe_code)]

pub mod error;
pub mod headers;
mod hmac_body;
mod jwt;
mod standard_webhooks;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

pub use error::VerifyError;
pub use headers::Headers;

/// How a digest is written in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Base64,
    /// Lower or upper case.
    Hex,
}

/// What to check: one per signing scheme Herald can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64> …`, with the
    /// timestamp at most `tolerance_seconds` away from now (in either direction) against replays.
    StandardWebhooks { tolerance_seconds: u64 },
    /// HMAC-SHA256 of the body, in `header`, as `prefix` then the encoded digest.
    HmacSha256 {
        header: String,
        encoding: Encoding,
        prefix: String,
    },
    /// The secret itself in `header`.
    SecretHeader { header: String },
    /// `Authorization: Bearer <JWT>` signed HS256, unexpired. `leeway_seconds` forgives clock
    /// skew on `exp`, `iat` and `nbf`. With `check_body`, a non-empty body must be the JSON of the
    /// token's claims (less `iat` and `exp`): the token then vouches for the body too.
    JwtHs256 {
        leeway_seconds: u64,
        check_body: bool,
    },
}

impl Scheme {
    /// The tolerance the Standard Webhooks spec suggests: five minutes.
    pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

    /// Standard Webhooks with the default tolerance (Herald's `standard` preset).
    pub fn standard_webhooks() -> Self {
        Self::StandardWebhooks {
            tolerance_seconds: Self::DEFAULT_TOLERANCE_SECONDS,
        }
    }

    /// `X-Hub-Signature-256: sha256=<hex>` (Herald's `github` preset).
    pub fn github() -> Self {
        Self::HmacSha256 {
            header: "X-Hub-Signature-256".into(),
            encoding: Encoding::Hex,
            prefix: "sha256=".into(),
        }
    }

    /// `x-cloudshare-signature: <base64>`, keyed by the account-level secret (Herald's
    /// `cloudshare` preset).
    pub fn cloudshare() -> Self {
        Self::HmacSha256 {
            header: "x-cloudshare-signature".into(),
            encoding: Encoding::Base64,
            prefix: String::new(),
        }
    }

    /// `X-Webhook-Secret: <secret>` (Herald's `event-data` preset).
    pub fn event_data() -> Self {
        Self::SecretHeader {
            header: "X-Webhook-Secret".into(),
        }
    }

    /// JWT HS256 bearer with no leeway, checking the body (Herald's `connect` preset).
    pub fn jwt_hs256() -> Self {
        Self::JwtHs256 {
            leeway_seconds: 0,
            check_body: true,
        }
    }
}

/// What a successful verification learnt about the request.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Verified {
    /// Standard Webhooks' `webhook-id`: Herald's delivery id, the same on every retry, so a
    /// receiver can drop duplicates.
    pub message_id: Option<String>,
    /// Standard Webhooks' `webhook-timestamp`, unix seconds.
    pub timestamp: Option<i64>,
    /// A JWT's claims.
    pub claims: Option<Map<String, Value>>,
}

/// A scheme and the secret it checks with.
#[derive(Clone)]
pub struct Verifier {
    scheme: Scheme,
    secret: String,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Verifier {
    /// `secret` as Herald shows it (`whsec_…` for a webhook's secret).
    pub fn new(scheme: Scheme, secret: impl Into<String>) -> Self {
        Self {
            scheme,
            secret: secret.into(),
        }
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Checks a request against the system clock.
    pub fn verify<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(headers, body, now)
    }

    /// Checks a request as if the time were `now` (unix seconds).
    pub fn verify_at<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        match &self.scheme {
            Scheme::StandardWebhooks { tolerance_seconds } => {
                standard_webhooks::verify(&self.secret, headers, body, now, *tolerance_seconds)
            }
            Scheme::HmacSha256 {
                header,
                encoding,
                prefix,
            } => hmac_body::verify(&self.secret, headers, body, header, *encoding, prefix)
                .map(|()| Verified::default()),
            Scheme::SecretHeader { header } => {
                let given = required(headers, header)?;
                if bool::from(given.as_bytes().ct_eq(self.secret.as_bytes())) {
                    Ok(Verified::default())
                } else {
                    Err(VerifyError::SecretMismatch {
                        header: header.clone(),
                    })
                }
            }
            Scheme::JwtHs256 {
                leeway_seconds,
                check_body,
            } => jwt::verify(
                &self.secret,
                headers,
                body,
                now,
                *leeway_seconds,
                *check_body,
            ),
        }
    }
}

/// A header's value, or [`VerifyError::MissingHeader`].
fn required<'h, H: Headers + ?Sized>(headers: &'h H, name: &str) -> Result<&'h str, VerifyError> {
    headers
        .get_header(name)
        .ok_or_else(|| VerifyError::MissingHeader {
            header: name.to_owned(),
        })
}

fn malformed(header: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::MalformedHeader {
        header: header.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_header_is_compared_whole() {
        let v = Verifier::new(Scheme::event_data(), "super-secret-key");
        assert!(
            v.verify(&[("x-webhook-secret", "super-secret-key")][..], b"{}")
                .is_ok()
        );
        for wrong in [
            "super-secret-ke",
            "super-secret-key ",
            "SUPER-SECRET-KEY",
            "",
        ] {
            assert_eq!(
                v.verify(&[("X-Webhook-Secret", wrong)][..], b"{}"),
                Err(VerifyError::SecretMismatch {
                    header: "X-Webhook-Secret".into()
                })
            );
        }
        assert_eq!(
            v.verify(&[("X-Other", "super-secret-key")][..], b"{}"),
            Err(VerifyError::MissingHeader {
                header: "X-Webhook-Secret".into()
            })
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let v = Verifier::new(Scheme::github(), "hunter2");
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
