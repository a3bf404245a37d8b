//! What follows an attempt: the delivery's next state, when it is due again, and any change to
//! its webhook's status — decided once, here, for scheduled attempts and for those a person
//! asked for (Trigger now, validation).
//!
//! Pure: the caller passes the time and a random draw, so every branch can be pinned in a test.
//! The engine records the result ([`AttemptRecord`]) in the group commit, which applies it and,
//! after a failed scheduled attempt, checks the webhook's [`OutOfOrderRule`] against the
//! statistics it keeps (the count of failed deliveries in a row and since when it has been
//! failing live in the store, not in one attempt).

use std::time::Duration;

use crate::attempt::{Attempt, AttemptTrigger, ErrorKind};
use crate::delivery::DeliveryStatus;
use crate::event::EventId;
use crate::retry::{self, AfterFailure, RetryAfter};
use crate::time::{self, Timestamp};
use crate::webhook::{RetryPolicy, WebhookStatus};

#[cfg(test)]
mod tests;

/// A webhook status change that applies only from the listed statuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub from: Vec<WebhookStatus>,
    pub to: WebhookStatus,
    pub reason: String,
}

/// The thresholds after which a webhook whose deliveries keep failing goes out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfOrderRule {
    pub after_failed_deliveries: Option<u32>,
    pub after_hours: Option<u32>,
}

impl OutOfOrderRule {
    /// The thresholds a retry policy sets.
    pub fn of(policy: &RetryPolicy) -> Self {
        Self {
            after_failed_deliveries: policy.out_of_order_after_failures,
            after_hours: policy.out_of_order_after_hours,
        }
    }

    /// Whether a webhook whose statistics read this — deliveries failed for good in a row,
    /// and the first failure since its last success, in ms — has crossed the thresholds.
    pub fn is_crossed(
        &self,
        failed_deliveries_in_a_row: i64,
        failing_since_ms: Option<i64>,
        now_ms: i64,
    ) -> bool {
        let by_count = self
            .after_failed_deliveries
            .is_some_and(|n| failed_deliveries_in_a_row >= i64::from(n));
        let by_time = match (self.after_hours, failing_since_ms) {
            (Some(hours), Some(since)) => now_ms - since >= i64::from(hours) * 3_600_000,
            _ => false,
        };
        by_count || by_time
    }
}

/// How an attempt ended, as far as what follows depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub trigger: AttemptTrigger,
    /// 1-based: the first try of a delivery is attempt 1.
    pub number: u32,
    pub succeeded: bool,
    /// The receiver's status code, when it answered.
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// The receiver's `Retry-After`, parsed but not yet bounded.
    pub retry_after: Option<Duration>,
}

impl AttemptOutcome {
    pub fn of(attempt: &Attempt, retry_after: Option<Duration>) -> Self {
        Self {
            trigger: attempt.trigger,
            number: attempt.number,
            succeeded: attempt.succeeded,
            status: attempt.status(),
            error: attempt.error.as_ref().map(|e| e.kind),
            retry_after,
        }
    }
}

/// The retry rules a webhook's scheduled attempts follow.
#[derive(Clone, Copy, Debug)]
pub struct RetryRules<'a> {
    /// The policy that applies ([`retry::effective`]), out-of-order thresholds included.
    pub policy: &'a RetryPolicy,
    /// What a receiver's `Retry-After` does to the schedule ([`RetryAfter::for_webhook`]).
    pub retry_after: RetryAfter,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

/// What follows one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The delivery's state after this attempt, and when it is due again.
    pub delivery_status: DeliveryStatus,
    pub next_attempt_at: Option<Timestamp>,
    /// e.g. `410 Gone` disables the webhook; a successful validation activates it.
    pub webhook_change: Option<StatusChange>,
    /// Whether this attempt was the delivery's last (it has now failed for good).
    pub delivery_exhausted: bool,
    /// The webhook's out-of-order thresholds, for the commit to check after a failed
    /// scheduled attempt.
    pub out_of_order: Option<OutOfOrderRule>,
}

impl Decision {
    /// The attempt settles its delivery — succeeded if it did, failed if not — and nothing
    /// else follows.
    pub fn settles(succeeded: bool) -> Self {
        Self {
            delivery_status: if succeeded {
                DeliveryStatus::Succeeded
            } else {
                DeliveryStatus::Failed
            },
            next_attempt_at: None,
            webhook_change: None,
            delivery_exhausted: false,
            out_of_order: None,
        }
    }
}

/// Decides what follows an attempt made by `node`, at `now`, with `unit_random` a draw in
/// [0, 1) for the retry's jitter.
///
/// - A success settles the delivery; a successful validation activates a pending webhook, and
///   a successful Trigger now reactivates an out-of-order one.
/// - `410 Gone` fails the delivery and disables the webhook at once (Standard Webhooks' rule),
///   whatever the trigger.
/// - Any other failure of an attempt a person asked for only fails its delivery: it was a
///   one-off, with no schedule to follow.
/// - A scheduled attempt Herald refused to send fails at once: where Herald may send does not
///   change between tries, so trying again would only be refused again. It does not count
///   toward out of order: one DNS answer pointing somewhere private should not stop a webhook
///   whose other deliveries go through.
/// - Any other failed scheduled attempt retries on the policy — or at the receiver's
///   `Retry-After`, bounded to [1 s, `max_retry_after`] — until the policy gives up, and
///   counts toward out of order.
pub fn decide(
    outcome: &AttemptOutcome,
    rules: &RetryRules<'_>,
    node: &str,
    now: Timestamp,
    unit_random: f64,
) -> Decision {
    let settled = Decision::settles(outcome.succeeded);
    if outcome.succeeded {
        return Decision {
            webhook_change: succeeded_change(outcome.trigger),
            ..settled
        };
    }
    if outcome.status == Some(410) {
        return Decision {
            webhook_change: Some(gone(node)),
            ..settled
        };
    }
    if outcome.trigger != AttemptTrigger::Scheduled
        || outcome.error == Some(ErrorKind::RefusedByPolicy)
    {
        return settled;
    }
    let retry_after = outcome
        .retry_after
        .map(|d| d.clamp(Duration::from_secs(1), rules.max_retry_after));
    let out_of_order = Some(OutOfOrderRule::of(rules.policy));
    match retry::after_failure(
        rules.policy,
        outcome.number,
        unit_random,
        retry_after,
        rules.retry_after,
    ) {
        AfterFailure::RetryIn(delay) => Decision {
            delivery_status: DeliveryStatus::Retrying,
            next_attempt_at: Some(time::from_millis(
                now.timestamp_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
            )),
            out_of_order,
            ..settled
        },
        AfterFailure::GiveUp => Decision {
            delivery_exhausted: true,
            out_of_order,
            ..settled
        },
    }
}

/// What a successful attempt a person asked for does to its webhook.
fn succeeded_change(trigger: AttemptTrigger) -> Option<StatusChange> {
    match trigger {
        AttemptTrigger::Validation => Some(StatusChange {
            from: vec![WebhookStatus::Pending],
            to: WebhookStatus::Active,
            reason: "activated: the validation event succeeded".into(),
        }),
        AttemptTrigger::Manual => Some(StatusChange {
            from: vec![WebhookStatus::OutOfOrder],
            to: WebhookStatus::Active,
            reason: "reactivated: Trigger now succeeded".into(),
        }),
        AttemptTrigger::Scheduled => None,
    }
}

/// `410 Gone`: the receiver says the endpoint is gone for good.
fn gone(node: &str) -> StatusChange {
    StatusChange {
        from: vec![
            WebhookStatus::Active,
            WebhookStatus::Pending,
            WebhookStatus::OutOfOrder,
        ],
        to: WebhookStatus::Disabled,
        reason: format!("disabled by Herald ({node}): the target answered 410 Gone"),
    }
}

/// One finished attempt to record, with what it decided.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub attempt: Attempt,
    /// The node that made the attempt under its lease. The delivery is updated only while it
    /// is still pending or retrying and not leased to another node, so a late record from a
    /// node whose lease expired cannot undo what the next holder did.
    pub lease_owner: String,
    pub event_id: EventId,
    // What the attempt decided, as in [`Decision`]: spelled out rather than nested, because
    // the store's SQL reads each field of every record of a batch.
    pub delivery_status: DeliveryStatus,
    pub next_attempt_at: Option<Timestamp>,
    pub webhook_change: Option<StatusChange>,
    pub delivery_exhausted: bool,
    pub out_of_order: Option<OutOfOrderRule>,
}

impl AttemptRecord {
    /// The record of an attempt and what it decided.
    pub fn decided(
        attempt: Attempt,
        lease_owner: String,
        event_id: EventId,
        decision: Decision,
    ) -> Self {
        let Decision {
            delivery_status,
            next_attempt_at,
            webhook_change,
            delivery_exhausted,
            out_of_order,
        } = decision;
        Self {
            attempt,
            lease_owner,
            event_id,
            delivery_status,
            next_attempt_at,
            webhook_change,
            delivery_exhausted,
            out_of_order,
        }
    }

    /// The record of an attempt that settles its delivery: succeeded if the attempt did,
    /// failed if not; no retry, no change to the webhook. Callers set what else follows.
    pub fn settling(attempt: Attempt, lease_owner: String, event_id: EventId) -> Self {
        let decision = Decision::settles(attempt.succeeded);
        Self::decided(attempt, lease_owner, event_id, decision)
    }
}
