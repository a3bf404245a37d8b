//! [`VerifyError`]: which check a request failed, precisely enough to act on.
//!
//! One variant per check, never a flattened string: a receiver can answer 401 to a signature
//! mismatch and log a clock problem differently, and `herald verify` prints the message as is.

/// Why a request did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header `{header}`")]
    MissingHeader { header: String },
    #[error("header `{header}` is malformed: {reason}")]
    MalformedHeader { header: String, reason: String },
    #[error("bad timestamp `{value}`: expected whole unix seconds")]
    BadTimestamp { value: String },
    #[error(
        "timestamp too old: sent at {timestamp}, {age} s before now ({now}), over the {tolerance_seconds} s tolerance",
        age = .now.saturating_sub(*.timestamp)
    )]
    TimestampTooOld {
        timestamp: i64,
        now: i64,
        tolerance_seconds: u64,
    },
    #[error(
        "timestamp too new: sent at {timestamp}, {ahead} s after now ({now}), over the {tolerance_seconds} s tolerance",
        ahead = .timestamp.saturating_sub(*.now)
    )]
    TimestampTooNew {
        timestamp: i64,
        now: i64,
        tolerance_seconds: u64,
    },
    #[error("signature mismatch: no signature in `{header}` matches this request and secret")]
    SignatureMismatch { header: String },
    #[error("secret mismatch: `{header}` does not hold the expected secret")]
    SecretMismatch { header: String },
    #[error("malformed token: {reason}")]
    MalformedToken { reason: String },
    #[error("unsupported token algorithm `{alg}`: only HS256 is accepted")]
    UnsupportedAlgorithm { alg: String },
    #[error("token is missing the `{claim}` claim")]
    MissingClaim { claim: &'static str },
    #[error("token expired at {exp}; now is {now}")]
    TokenExpired { exp: i64, now: i64 },
    #[error("token not yet valid: `{claim}` is {at}; now is {now}")]
    TokenNotYetValid {
        claim: &'static str,
        at: i64,
        now: i64,
    },
    #[error("body mismatch: the body is not the payload the token's claims vouch for")]
    BodyMismatch,
}
