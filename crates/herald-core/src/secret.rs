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
    fn tokens_hash_stably_and_hide_in_debug() {
        let t = ApiKeyToken::generate();
        assert_eq!(t.hash(), hash_token(t.expose()));
        assert_eq!(t.hash().len(), 64);
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
