//! Secrets Herald generates: webhook signing secrets and API key tokens.
//!
//! Signing secrets follow Standard Webhooks' `whsec_<base64>` form. API key tokens are random and
//! long enough that a fast hash (SHA-256) is a safe way to store them: there is nothing to brute
//! force, so a slow password hash would only cost time on every request.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A webhook's signing secret. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            STANDARD.encode(random_bytes::<32>())
        ))
    }

    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// Fewest and most characters of a secret a user chooses (case management's
    /// `super-secret-key`, typed into both systems).
    pub const CHOSEN_MIN_LEN: usize = 8;
    pub const CHOSEN_MAX_LEN: usize = 256;
    /// Key bytes a Standard Webhooks secret chosen by a user must carry, as the spec's
    /// libraries expect (`whsec_` + base64 of 24 to 64 bytes).
    pub const STANDARD_KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

    /// A secret the user chose, checked for the scheme that signs with it; `field` is where the
    /// request carried it.
    ///
    /// Standard Webhooks receivers base64-decode what follows `whsec_`, so only that form can
    /// verify there. The other schemes use the string as typed: it must be 8 to 256 visible
    /// ASCII characters (it may travel in a header, as `X-Webhook-Secret` does). A scheme that
    /// signs with the account-level secret has no secret of its own to choose.
    pub fn chosen(
        value: &str,
        scheme: &crate::shape::SigningScheme,
        field: &str,
    ) -> Result<Self, crate::InvalidField> {
        use crate::shape::{SecretSource, SigningScheme};
        let bad = |why: String| crate::InvalidField::new(field, why);
        match scheme {
            SigningScheme::HmacSha256 {
                secret: SecretSource::Account,
                ..
            } => Err(bad(
                "this webhook signs with the account-level secret, which it cannot replace; \
                 an admin changes that secret with POST /v1/account/secret/rotate"
                    .into(),
            )),
            SigningScheme::StandardWebhooks => {
                let key = value
                    .strip_prefix(Self::PREFIX)
                    .and_then(|b64| STANDARD.decode(b64).ok());
                match key {
                    Some(key) if Self::STANDARD_KEY_BYTES.contains(&key.len()) => {
                        Ok(Self(value.to_owned()))
                    }
                    _ => Err(bad(format!(
                        "a Standard Webhooks secret must be \"whsec_\" followed by the standard \
                         base64 of {} to {} random bytes",
                        Self::STANDARD_KEY_BYTES.start(),
                        Self::STANDARD_KEY_BYTES.end()
                    ))),
                }
            }
            _ => {
                let len = value.chars().count();
                if !(Self::CHOSEN_MIN_LEN..=Self::CHOSEN_MAX_LEN).contains(&len)
                    || !value.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(bad(format!(
                        "must be {} to {} visible ASCII characters (letters, digits and \
                         punctuation; no spaces)",
                        Self::CHOSEN_MIN_LEN,
                        Self::CHOSEN_MAX_LEN
                    )));
                }
                Ok(Self(value.to_owned()))
            }
        }
    }

    /// Whether this secret can sign for `scheme` as its receivers verify: a Standard Webhooks
    /// receiver needs the `whsec_` form; every other scheme takes any string.
    pub fn fits(&self, scheme: &crate::shape::SigningScheme) -> bool {
        match scheme {
            crate::shape::SigningScheme::StandardWebhooks => {
                Self::chosen(&self.0, scheme, "secret").is_ok()
            }
            _ => true,
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key bytes: base64-decoded after `whsec_` when in that form, else the string's bytes.
    pub fn key_bytes(&self) -> Vec<u8> {
        self.0
            .strip_prefix(Self::PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .unwrap_or_else(|| self.0.as_bytes().to_vec())
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

/// A freshly made API key token, shown once to its creator and then only kept hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyToken(String);

impl ApiKeyToken {
    pub const PREFIX: &'static str = "hk_";

    pub fn generate() -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            URL_SAFE_NO_PAD.encode(random_bytes::<32>())
        ))
    }

    /// Takes a token given by the operator (`HERALD_ADMIN_KEY`).
    pub fn from_given(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: hex SHA-256 of the token.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }

    /// The first characters, safe to show in lists so people can tell keys apart.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(10).collect()
    }
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyToken(<redacted>)")
    }
}

/// Hex SHA-256 of a presented bearer token.
pub fn hash_token(token: &str) -> String {
    hex_lower(&Sha256::digest(token.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_secrets_are_whsec_with_32_key_bytes() {
        let s = SigningSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(s.key_bytes().len(), 32);
        assert_ne!(s, SigningSecret::generate());
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn chosen_secrets_follow_their_scheme() {
        use crate::shape::{Preset, SigningScheme};
        let scheme = |p: Preset| p.shape().1;
        let event_data = scheme(Preset::EventData);
        let ok = SigningSecret::chosen("super-secret-key", &event_data, "secret").unwrap();
        assert_eq!(ok.expose(), "super-secret-key");
        for bad in ["short", "has space in it", "tab\there!!", &"x".repeat(257)] {
            let e = SigningSecret::chosen(bad, &event_data, "secret").unwrap_err();
            assert_eq!(e.field, "secret");
            assert!(e.message.contains("8 to 256"), "{}", e.message);
        }
        assert!(SigningSecret::chosen("super-secret-key", &scheme(Preset::Connect), "s").is_ok());
        assert!(SigningSecret::chosen("super-secret-key", &scheme(Preset::Github), "s").is_ok());

        let standard = SigningScheme::StandardWebhooks;
        let generated = SigningSecret::generate();
        assert!(SigningSecret::chosen(generated.expose(), &standard, "secret").is_ok());
        assert!(generated.fits(&standard));
        let e = SigningSecret::chosen("super-secret-key", &standard, "secret").unwrap_err();
        assert!(e.message.contains("whsec_"), "{}", e.message);
        assert!(!SigningSecret::from_stored("super-secret-key".into()).fits(&standard));
        // 16 bytes is too few key bytes for the spec's libraries.
        let short = format!("whsec_{}", STANDARD.encode([7u8; 16]));
        assert!(SigningSecret::chosen(&short, &standard, "secret").is_err());

        let e = SigningSecret::chosen("super-secret-key", &scheme(Preset::Cloudshare), "secret")
            .unwrap_err();
        assert!(e.message.contains("account-level"), "{}", e.message);
    }

    #[test]
    fn tokens_hash_stably_and_hide_in_debug() {
        let t = ApiKeyToken::generate();
        assert_eq!(t.hash(), hash_token(t.expose()));
        assert_eq!(t.hash().len(), 64);
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
