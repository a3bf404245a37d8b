//! Timestamps: UTC, millisecond precision, as stored and as shown.
//!
//! Storage keeps milliseconds since the Unix epoch in a 64-bit integer on both databases, so
//! ordering and arithmetic are the same everywhere; the API shows RFC 3339.

use chrono::{DateTime, TimeZone, Utc};

pub type Timestamp = DateTime<Utc>;

/// Now, truncated to whole milliseconds so a value survives a round trip through storage unchanged.
pub fn now() -> Timestamp {
    from_millis(Utc::now().timestamp_millis())
}

pub fn from_millis(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn to_millis(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}
