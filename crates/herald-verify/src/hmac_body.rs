//! HMAC-SHA256 of the body in one header: GitHub's `X-Hub-Signature-256: sha256=<hex>`,
//! CloudShare's `x-cloudshare-signature: <base64>`, or any header, encoding and prefix a webhook
//! is configured with.
//!
//! The key is the secret string's bytes as shown (a `whsec_…` secret included, prefix and all),
//! which is what a receiver written from GitHub's or CloudShare's documentation does. These
//! schemes carry no timestamp, so they cannot detect a replay; Standard Webhooks can.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;

use crate::standard_webhooks::new_mac;
use crate::{Encoding, Headers, VerifyError, malformed, required};

pub(crate) fn verify<H: Headers + ?Sized>(
    secret: &str,
    headers: &H,
    body: &[u8],
    header: &str,
    encoding: Encoding,
    prefix: &str,
) -> Result<(), VerifyError> {
    let value = required(headers, header)?.trim();
    let encoded = value
        .strip_prefix(prefix)
        .ok_or_else(|| malformed(header, format!("does not start with `{prefix}`")))?;
    let digest = match encoding {
        Encoding::Hex => hex::decode(encoded).map_err(|_| malformed(header, "is not hex"))?,
        Encoding::Base64 => STANDARD
            .decode(encoded)
            .map_err(|_| malformed(header, "is not base64"))?,
    };
    let mut mac = new_mac(secret.as_bytes());
    mac.update(body);
    // `verify_slice` compares in constant time (and refuses a digest of the wrong length).
    mac.verify_slice(&digest)
        .map_err(|_| VerifyError::SignatureMismatch {
            header: header.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use crate::{Encoding, Scheme, Verifier, VerifyError};

    const GITHUB: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_example_verifies() {
        let v = Verifier::new(Scheme::github(), "It's a Secret to Everybody");
        assert!(
            v.verify(&[("x-hub-signature-256", GITHUB)][..], b"Hello, World!")
                .is_ok()
        );
        let upper = GITHUB.replace("757107ea", "757107EA");
        assert!(
            v.verify(
                &[("X-Hub-Signature-256", upper.as_str())][..],
                b"Hello, World!"
            )
            .is_ok()
        );
        assert_eq!(
            v.verify(&[("X-Hub-Signature-256", GITHUB)][..], b"Hello, World"),
            Err(VerifyError::SignatureMismatch {
                header: "X-Hub-Signature-256".into()
            })
        );
    }

    #[test]
    fn rfc_4231_in_base64_verifies_as_cloudshare_sends_it() {
        let v = Verifier::new(Scheme::cloudshare(), "Jefe");
        let h = [(
            "x-cloudshare-signature",
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=",
        )];
        assert!(v.verify(&h[..], b"what do ya want for nothing?").is_ok());
        assert!(matches!(
            Verifier::new(Scheme::cloudshare(), "jefe")
                .verify(&h[..], b"what do ya want for nothing?"),
            Err(VerifyError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn a_wrong_prefix_or_encoding_is_named() {
        let v = Verifier::new(Scheme::github(), "It's a Secret to Everybody");
        let no_prefix = GITHUB.trim_start_matches("sha256=");
        assert_eq!(
            v.verify(&[("X-Hub-Signature-256", no_prefix)][..], b"Hello, World!"),
            Err(VerifyError::MalformedHeader {
                header: "X-Hub-Signature-256".into(),
                reason: "does not start with `sha256=`".into()
            })
        );
        assert!(matches!(
            v.verify(&[("X-Hub-Signature-256", "sha256=zz")][..], b""),
            Err(VerifyError::MalformedHeader { .. })
        ));
        let b64 = Verifier::new(
            Scheme::HmacSha256 {
                header: "X-Sig".into(),
                encoding: Encoding::Base64,
                prefix: String::new(),
            },
            "k",
        );
        assert!(matches!(
            b64.verify(&[("X-Sig", "not base64!")][..], b""),
            Err(VerifyError::MalformedHeader { .. })
        ));
        assert!(matches!(
            b64.verify(&[("X-Sig", "c2hvcnQ=")][..], b""),
            Err(VerifyError::SignatureMismatch { .. })
        ));
    }
}
