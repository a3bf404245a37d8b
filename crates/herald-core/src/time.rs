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

/// The earliest and latest instants RFC 3339 can write: years 0001 to 9999.
pub fn rfc3339_bounds() -> (Timestamp, Timestamp) {
    (
        Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
            + chrono::Duration::milliseconds(999),
    )
}

/// Checks that a client-given time is within RFC 3339's years 0001 to 9999 (chrono reads
/// `+10000-01-01T00:00:00Z` and year 0, which no RFC 3339 reader could take back), and keeps
/// it to the millisecond, as stored.
pub fn within_rfc3339(
    field: &str,
    t: Timestamp,
) -> Result<Timestamp, crate::validation::InvalidField> {
    let (earliest, latest) = rfc3339_bounds();
    if t < earliest || t > latest {
        return Err(crate::validation::InvalidField::new(
            field,
            "must be an RFC 3339 time between the years 0001 and 9999",
        ));
    }
    Ok(from_millis(t.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_times_stay_within_rfc3339_years() {
        let parse = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(within_rfc3339("t", parse("0001-01-01T00:00:00Z")).is_ok());
        assert!(within_rfc3339("t", parse("9999-12-31T23:59:59.999Z")).is_ok());
        assert_eq!(
            within_rfc3339("occurred_at", parse("+10000-01-01T00:00:00Z"))
                .unwrap_err()
                .field,
            "occurred_at"
        );
        assert!(within_rfc3339("t", parse("0000-12-31T23:59:59Z")).is_err());
        assert!(within_rfc3339("t", parse("-0001-01-01T00:00:00Z")).is_err());
    }
}
