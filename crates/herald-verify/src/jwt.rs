//! JWT HS256 bearer tokens (`Authorization: Bearer <JWT>`), as CloudBlue Connect sends them.
//!
//! Checked in this order, each with its own error: the header's form, the token's three parts,
//! the JOSE header's `alg` (only `HS256`: `none` and every other algorithm are refused, so a
//! token cannot choose how it is checked), the signature (constant time), the claims' form, `exp`
//! (required: a token without one would be valid forever), `nbf` and `iat` (when present, not in
//! the future), and optionally the body against the claims.
//!
//! Written by hand with `hmac` rather than with the `jsonwebtoken` crate: HS256 is one HMAC and
//! three base64url strings, and the crate would bring a second crypto stack into a library meant
//! to be embedded anywhere. RFC 7515's example is a test below.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde_json::{Map, Value};

use crate::standard_webhooks::new_mac;
use crate::{Headers, Verified, VerifyError, malformed, required};

const AUTHORIZATION: &str = "Authorization";

pub(crate) fn verify<H: Headers + ?Sized>(
    secret: &str,
    headers: &H,
    body: &[u8],
    now: i64,
    leeway_seconds: u64,
    check_body: bool,
) -> Result<Verified, VerifyError> {
    let value = required(headers, AUTHORIZATION)?.trim();
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| malformed(AUTHORIZATION, "is not `Bearer <token>`"))?;
    let claims = verify_token(token, secret.as_bytes())?;

    let leeway = i64::try_from(leeway_seconds).unwrap_or(i64::MAX);
    let exp = time_claim(&claims, "exp")?.ok_or(VerifyError::MissingClaim { claim: "exp" })?;
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::TokenExpired { exp, now });
    }
    for claim in ["nbf", "iat"] {
        if let Some(at) = time_claim(&claims, claim)?
            && at > now.saturating_add(leeway)
        {
            return Err(VerifyError::TokenNotYetValid { claim, at, now });
        }
    }

    if check_body && !body.iter().all(u8::is_ascii_whitespace) {
        let without_times = |mut m: Map<String, Value>| {
            m.remove("iat");
            m.remove("exp");
            m
        };
        let Ok(Value::Object(sent)) = serde_json::from_slice::<Value>(body) else {
            return Err(VerifyError::BodyMismatch);
        };
        if without_times(sent) != without_times(claims.clone()) {
            return Err(VerifyError::BodyMismatch);
        }
    }
    Ok(Verified {
        message_id: None,
        timestamp: None,
        claims: Some(claims),
    })
}

/// Checks a compact JWS's algorithm and HS256 signature and returns its claims, unchecked for
/// time.
pub(crate) fn verify_token(token: &str, key: &[u8]) -> Result<Map<String, Value>, VerifyError> {
    let bad = |reason: &str| VerifyError::MalformedToken {
        reason: reason.to_owned(),
    };
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected three dot-separated parts"));
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| bad("the header is not base64url JSON"))?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {}
        Some(other) => {
            return Err(VerifyError::UnsupportedAlgorithm {
                alg: other.to_owned(),
            });
        }
        None => return Err(bad("the header has no `alg`")),
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| bad("the signature is not base64url"))?;
    let signing_input_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
    let mut mac = new_mac(key);
    mac.update(&token.as_bytes()[..signing_input_len]);
    mac.verify_slice(&signature)
        .map_err(|_| VerifyError::SignatureMismatch {
            header: AUTHORIZATION.to_owned(),
        })?;
    match URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        Some(Value::Object(claims)) => Ok(claims),
        _ => Err(bad("the claims are not a base64url JSON object")),
    }
}

/// A NumericDate claim (RFC 7519 §2) as whole seconds, if present.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            // Fractional dates are allowed by the RFC; the whole second before is close enough.
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| VerifyError::MalformedToken {
                reason: format!("the `{name}` claim is not a number"),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scheme, Verifier};

    /// RFC 7515 appendix A.1: an HS256 JWS and its key.
    const RFC_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
        .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
        .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_KEY: &str =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    const RFC_EXP: i64 = 1_300_819_380;

    #[test]
    fn the_rfc_7515_example_verifies_before_it_expires() {
        let key = URL_SAFE_NO_PAD.decode(RFC_KEY).unwrap();
        let claims = verify_token(RFC_TOKEN, &key).unwrap();
        assert_eq!(claims["iss"], "joe");
        assert_eq!(claims["exp"], RFC_EXP);
        // The same token with "dBjf…" signature turned into "eBjf…".
        let tampered = RFC_TOKEN.replace(".dBjf", ".eBjf");
        assert_ne!(tampered, RFC_TOKEN);
        assert!(matches!(
            verify_token(&tampered, &key),
            Err(VerifyError::SignatureMismatch { .. })
        ));
    }

    fn bearer(token: &str) -> Vec<(String, String)> {
        vec![("authorization".into(), format!("Bearer {token}"))]
    }

    fn hs256(header: &str, claims: &str, key: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut mac = new_mac(key);
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn expiry_and_future_issue_are_checked_with_leeway() {
        let token = hs256(
            r#"{"alg":"HS256"}"#,
            r#"{"a":1,"iat":1000,"exp":1300}"#,
            b"s",
        );
        let strict = Verifier::new(Scheme::jwt_hs256(), "s");
        assert!(strict.verify_at(&bearer(&token), b"", 1299).is_ok());
        assert_eq!(
            strict.verify_at(&bearer(&token), b"", 1300),
            Err(VerifyError::TokenExpired {
                exp: 1300,
                now: 1300
            })
        );
        assert_eq!(
            strict.verify_at(&bearer(&token), b"", 999),
            Err(VerifyError::TokenNotYetValid {
                claim: "iat",
                at: 1000,
                now: 999
            })
        );
        let lenient = Verifier::new(
            Scheme::JwtHs256 {
                leeway_seconds: 10,
                check_body: true,
            },
            "s",
        );
        assert!(lenient.verify_at(&bearer(&token), b"", 1309).is_ok());
        assert!(lenient.verify_at(&bearer(&token), b"", 990).is_ok());
    }

    #[test]
    fn other_algorithms_and_missing_exp_are_refused() {
        let v = Verifier::new(Scheme::jwt_hs256(), "s");
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"exp":9999999999}"#)
        );
        assert_eq!(
            v.verify_at(&bearer(&none), b"", 0),
            Err(VerifyError::UnsupportedAlgorithm { alg: "none".into() })
        );
        let no_exp = hs256(r#"{"alg":"HS256"}"#, r#"{"a":1}"#, b"s");
        assert_eq!(
            v.verify_at(&bearer(&no_exp), b"", 0),
            Err(VerifyError::MissingClaim { claim: "exp" })
        );
        let text_exp = hs256(r#"{"alg":"HS256"}"#, r#"{"exp":"soon"}"#, b"s");
        assert!(matches!(
            v.verify_at(&bearer(&text_exp), b"", 0),
            Err(VerifyError::MalformedToken { .. })
        ));
        assert!(matches!(
            v.verify_at(&bearer("a.b"), b"", 0),
            Err(VerifyError::MalformedToken { .. })
        ));
        assert!(matches!(
            v.verify_at(&[("Authorization", "Basic dTpw")][..], b"", 0),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn the_body_must_be_the_claims_unless_told_otherwise() {
        let token = hs256(
            r#"{"alg":"HS256"}"#,
            r#"{"a":1,"b":[2],"iat":1000,"exp":1300}"#,
            b"s",
        );
        let v = Verifier::new(Scheme::jwt_hs256(), "s");
        assert!(
            v.verify_at(&bearer(&token), br#"{"b":[2],"a":1}"#, 1100)
                .is_ok()
        );
        assert_eq!(
            v.verify_at(&bearer(&token), br#"{"a":2,"b":[2]}"#, 1100),
            Err(VerifyError::BodyMismatch)
        );
        assert_eq!(
            v.verify_at(&bearer(&token), b"not json", 1100),
            Err(VerifyError::BodyMismatch)
        );
        let unchecked = Verifier::new(
            Scheme::JwtHs256 {
                leeway_seconds: 0,
                check_body: false,
            },
            "s",
        );
        assert!(
            unchecked
                .verify_at(&bearer(&token), br#"{"a":2}"#, 1100)
                .is_ok()
        );
    }
}
