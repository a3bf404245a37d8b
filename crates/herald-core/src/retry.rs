//! When to try a failed delivery again, and when to give up on a webhook.
//!
//! Pure: the caller passes the attempt number, the policy and a random source, and gets a
//! decision. The server default follows the seeds' spirit: a few quick tries, then growing
//! intervals of minutes to hours (CloudBlue asks for intervals that grow with each request).

use std::time::Duration;

use crate::webhook::RetryPolicy;

/// The policy used when neither the webhook nor its project sets one.
pub fn server_default() -> RetryPolicy {
    RetryPolicy {
        // 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about a day.
        schedule_seconds: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
        out_of_order_after_failures: Some(5),
        out_of_order_after_hours: Some(24),
    }
}

/// Picks the policy that applies: the webhook's own, else its preset's (a preset reproduces a
/// platform, retry rhythm included: [`crate::shape::Preset::default_retry_policy`]), else the
/// project's, else the server's.
pub fn effective(
    webhook: Option<&RetryPolicy>,
    preset: Option<crate::shape::Preset>,
    project: Option<&RetryPolicy>,
    server: &RetryPolicy,
) -> RetryPolicy {
    webhook
        .cloned()
        .or_else(|| preset.and_then(crate::shape::Preset::default_retry_policy))
        .or_else(|| project.cloned())
        .unwrap_or_else(|| server.clone())
}

/// What to do after attempt number `attempt` (1-based) of a delivery failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    RetryIn(Duration),
    GiveUp,
}

/// Spreads retries over up to `JITTER_PERCENT` more than the scheduled delay, so that a burst
/// of failures does not retry in a burst. Only ever longer: a schedule's delays are minimums
/// (CloudBlue's "not less than 5 min"), and a growing schedule whose steps grow by more than
/// this stays growing.
pub const JITTER_PERCENT: u64 = 20;

/// What a receiver's `Retry-After` does to the scheduled wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// It replaces the scheduled delay, sooner or later (a policy the webhook, its project or
    /// the server set: the receiver knows when it will be back).
    Replaces,
    /// It may only lengthen it: the schedule is the platform's floor (a preset's own policy —
    /// CloudBlue's "not less than 5 min").
    Lengthens,
}

impl RetryAfter {
    /// The rule for a webhook with this policy of its own and this preset: a preset's policy,
    /// when it is the one that applies, is a floor.
    pub fn for_webhook(own: Option<&RetryPolicy>, preset: Option<crate::shape::Preset>) -> Self {
        let preset_policy = preset.and_then(crate::shape::Preset::default_retry_policy);
        if own.is_none() && preset_policy.is_some() {
            Self::Lengthens
        } else {
            Self::Replaces
        }
    }
}

/// The decision after a failed attempt. `unit_random` is a number in [0, 1) (the caller's
/// randomness, so tests can pin it); `retry_after` is the receiver's `Retry-After`, already
/// clamped by the caller, which replaces the scheduled delay or only lengthens it, as `rule`
/// says.
pub fn after_failure(
    policy: &RetryPolicy,
    attempt: u32,
    unit_random: f64,
    retry_after: Option<Duration>,
    rule: RetryAfter,
) -> AfterFailure {
    let Some(&base) = policy
        .schedule_seconds
        .get(attempt.saturating_sub(1) as usize)
    else {
        return AfterFailure::GiveUp;
    };
    let base_ms = u64::from(base) * 1000;
    let spread = base_ms * JITTER_PERCENT / 100;
    let scheduled =
        Duration::from_millis(base_ms + (unit_random.clamp(0.0, 1.0) * spread as f64) as u64);
    AfterFailure::RetryIn(match (retry_after, rule) {
        (Some(wait), RetryAfter::Replaces) => wait,
        (Some(wait), RetryAfter::Lengthens) => wait.max(scheduled),
        (None, _) => scheduled,
    })
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date relative to `now_unix`.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value)
        .ok()?
        .timestamp();
    Some(Duration::from_secs(
        u64::try_from(at - now_unix).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(s: Vec<u32>) -> RetryPolicy {
        RetryPolicy {
            schedule_seconds: s,
            out_of_order_after_failures: None,
            out_of_order_after_hours: None,
        }
    }

    #[test]
    fn the_schedule_is_followed_with_bounded_jitter_then_gives_up() {
        let p = policy(vec![10, 60]);
        assert_eq!(
            after_failure(&p, 1, 0.5, None, RetryAfter::Replaces),
            AfterFailure::RetryIn(Duration::from_secs(11))
        );
        assert_eq!(
            after_failure(&p, 1, 0.0, None, RetryAfter::Replaces),
            AfterFailure::RetryIn(Duration::from_secs(10)),
            "never sooner than the schedule says"
        );
        assert_eq!(
            after_failure(&p, 2, 0.999_999, None, RetryAfter::Replaces),
            AfterFailure::RetryIn(Duration::from_millis(71_999))
        );
        assert_eq!(
            after_failure(&p, 3, 0.5, None, RetryAfter::Replaces),
            AfterFailure::GiveUp
        );
        assert_eq!(
            after_failure(&policy(vec![]), 1, 0.5, None, RetryAfter::Replaces),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn retry_after_replaces_the_scheduled_delay_but_not_the_count() {
        let p = policy(vec![10]);
        let wait = Some(Duration::from_secs(120));
        assert_eq!(
            after_failure(&p, 1, 0.5, wait, RetryAfter::Replaces),
            AfterFailure::RetryIn(Duration::from_secs(120))
        );
        assert_eq!(
            after_failure(&p, 2, 0.5, wait, RetryAfter::Replaces),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn connect_webhooks_wait_at_least_five_minutes_longer_each_time() {
        use crate::shape::Preset;
        let server = server_default();
        let connect = effective(None, Some(Preset::Connect), None, &server);
        let mut previous = Duration::ZERO;
        for attempt in 1..=connect.schedule_seconds.len() as u32 {
            // The shortest and the longest wait the jitter allows.
            let AfterFailure::RetryIn(least) =
                after_failure(&connect, attempt, 0.0, None, RetryAfter::Replaces)
            else {
                panic!("gave up after {attempt}")
            };
            let AfterFailure::RetryIn(most) =
                after_failure(&connect, attempt, 1.0, None, RetryAfter::Replaces)
            else {
                panic!("gave up after {attempt}")
            };
            assert!(
                least >= Duration::from_secs(300),
                "attempt {attempt}: {least:?}"
            );
            assert!(
                least > previous,
                "attempt {attempt}: {least:?} after {previous:?}"
            );
            previous = most;
        }
        assert_eq!(connect.out_of_order_after_failures, Some(1));
        // A receiver's Retry-After may lengthen the wait, never shorten it below 5 minutes.
        let rule = RetryAfter::for_webhook(None, Some(Preset::Connect));
        assert_eq!(rule, RetryAfter::Lengthens);
        let soon = Some(Duration::from_secs(1));
        assert_eq!(
            after_failure(&connect, 1, 0.0, soon, rule),
            AfterFailure::RetryIn(Duration::from_secs(300))
        );
        let late = Some(Duration::from_secs(3600));
        assert_eq!(
            after_failure(&connect, 1, 0.0, late, rule),
            AfterFailure::RetryIn(Duration::from_secs(3600))
        );
        // A policy of the webhook's own wins; the project's does not replace the preset's.
        let own = RetryPolicy {
            schedule_seconds: vec![5],
            out_of_order_after_failures: None,
            out_of_order_after_hours: None,
        };
        assert_eq!(
            effective(Some(&own), Some(Preset::Connect), None, &server),
            own
        );
        assert_eq!(
            RetryAfter::for_webhook(Some(&own), Some(Preset::Connect)),
            RetryAfter::Replaces,
            "a policy of the webhook's own lets the receiver ask for sooner"
        );
        assert_eq!(
            RetryAfter::for_webhook(None, Some(Preset::Standard)),
            RetryAfter::Replaces
        );
        assert_eq!(
            effective(None, Some(Preset::Connect), Some(&own), &server),
            connect
        );
        assert_eq!(
            effective(None, Some(Preset::Standard), Some(&own), &server),
            own
        );
        assert_eq!(effective(None, None, None, &server), server);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .timestamp();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn the_most_specific_policy_wins() {
        let (w, p, s) = (policy(vec![1]), policy(vec![2]), server_default());
        assert_eq!(effective(Some(&w), None, Some(&p), &s), w);
        assert_eq!(effective(None, None, Some(&p), &s), p);
        assert_eq!(effective(None, None, None, &s), s);
        assert!(s.clone().validate().is_ok());
    }
}
