//! Pure helpers for the group commit: folding a batch's attempt records into one statistics
//! change per webhook, so a batch of a thousand attempts costs one UPDATE per webhook rather
//! than one per attempt.

use std::collections::BTreeMap;

use crate::{AttemptRecord, OutOfOrderRule};

/// One webhook's statistics change from one batch, in the order its attempts finished; it
/// borrows the attempts' ids from the batch (the fold runs on the group commit's serial step,
/// where a copy per attempt showed).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StatsDelta<'a> {
    pub triggers: i64,
    pub successes: i64,
    pub failures: i64,
    /// Whether any attempt in the batch succeeded: counters "since the last success" restart.
    pub reset: bool,
    /// Failures after the batch's last success (or all, when none succeeded).
    pub failures_after: i64,
    /// Deliveries that failed for good after the batch's last success.
    pub exhausted_after: i64,
    /// The first failure after the batch's last success, in ms.
    pub failing_since: Option<i64>,
    pub last_success: Option<(i64, &'a str)>,
    pub last_failure: Option<(i64, &'a str)>,
    pub rule: Option<OutOfOrderRule>,
}

/// Folds records (in order) into one delta per webhook, by webhook id.
pub(crate) fn fold<'a>(
    records: impl IntoIterator<Item = &'a AttemptRecord>,
) -> BTreeMap<&'a str, StatsDelta<'a>> {
    let mut out: BTreeMap<&str, StatsDelta> = BTreeMap::new();
    for r in records {
        let a = &r.attempt;
        let at = a.started_at.timestamp_millis();
        let d = out.entry(a.webhook_id.as_str()).or_default();
        d.triggers += 1;
        if a.succeeded {
            d.successes += 1;
            d.reset = true;
            d.failures_after = 0;
            d.exhausted_after = 0;
            d.failing_since = None;
            d.last_success = Some((at, a.id.as_str()));
        } else {
            d.failures += 1;
            d.failures_after += 1;
            d.failing_since.get_or_insert(at);
            d.last_failure = Some((at, a.id.as_str()));
            if r.delivery_exhausted {
                d.exhausted_after += 1;
            }
            if r.out_of_order.is_some() {
                d.rule = r.out_of_order;
            }
        }
    }
    out
}

/// Whether a webhook with these counters has crossed its out-of-order thresholds (decided in
/// herald-core, with the rule).
pub(crate) fn is_out_of_order(
    rule: &OutOfOrderRule,
    failed_deliveries_in_a_row: i64,
    failing_since_ms: Option<i64>,
    now_ms: i64,
) -> bool {
    rule.is_crossed(failed_deliveries_in_a_row, failing_since_ms, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_by_count_and_by_time() {
        let rule = OutOfOrderRule {
            after_failed_deliveries: Some(3),
            after_hours: Some(2),
        };
        assert!(!is_out_of_order(&rule, 2, Some(0), 3_600_000));
        assert!(is_out_of_order(&rule, 3, None, 0));
        assert!(is_out_of_order(&rule, 0, Some(0), 7_200_000));
        let never = OutOfOrderRule {
            after_failed_deliveries: None,
            after_hours: None,
        };
        assert!(!is_out_of_order(&never, 1000, Some(0), i64::MAX / 2));
    }
}
