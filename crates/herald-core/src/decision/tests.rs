//! Every branch of [`decide`], with the time and the random draw pinned.

use super::*;

const NODE: &str = "node_a";

fn now() -> Timestamp {
    time::from_millis(1_700_000_000_000)
}

fn ms_after_now(ms: i64) -> Option<Timestamp> {
    Some(time::from_millis(now().timestamp_millis() + ms))
}

fn policy(schedule_seconds: Vec<u32>) -> RetryPolicy {
    RetryPolicy {
        schedule_seconds,
        out_of_order_after_failures: Some(3),
        out_of_order_after_hours: Some(24),
    }
}

fn rules(policy: &RetryPolicy, retry_after: RetryAfter) -> RetryRules<'_> {
    RetryRules {
        policy,
        retry_after,
        max_retry_after: Duration::from_secs(3600),
    }
}

/// A scheduled attempt the receiver answered with `status`.
fn answered(trigger: AttemptTrigger, number: u32, status: u16) -> AttemptOutcome {
    let succeeded = (200..300).contains(&status);
    AttemptOutcome {
        trigger,
        number,
        succeeded,
        status: Some(status),
        error: (!succeeded).then_some(ErrorKind::Status),
        retry_after: None,
    }
}

/// A first scheduled attempt answered 503 with `Retry-After: wait`.
fn asking(wait: u64) -> AttemptOutcome {
    AttemptOutcome {
        retry_after: Some(Duration::from_secs(wait)),
        ..answered(AttemptTrigger::Scheduled, 1, 503)
    }
}

fn failed_with(kind: ErrorKind) -> AttemptOutcome {
    AttemptOutcome {
        trigger: AttemptTrigger::Scheduled,
        number: 1,
        succeeded: false,
        status: None,
        error: Some(kind),
        retry_after: None,
    }
}

fn decide_at(outcome: &AttemptOutcome, rules: &RetryRules<'_>, unit_random: f64) -> Decision {
    decide(outcome, rules, NODE, now(), unit_random)
}

fn gone_change() -> Option<StatusChange> {
    Some(StatusChange {
        from: vec![
            WebhookStatus::Active,
            WebhookStatus::Pending,
            WebhookStatus::OutOfOrder,
        ],
        to: WebhookStatus::Disabled,
        reason: "disabled by Herald (node_a): the target answered 410 Gone".into(),
    })
}

/// A success that makes a webhook in status `from` active.
fn activates(from: WebhookStatus, reason: &str) -> Decision {
    Decision {
        webhook_change: Some(StatusChange {
            from: vec![from],
            to: WebhookStatus::Active,
            reason: reason.into(),
        }),
        ..Decision::settles(true)
    }
}

#[test]
fn a_scheduled_success_settles_the_delivery_and_leaves_the_webhook_alone() {
    let p = policy(vec![10]);
    let decision = decide_at(
        &answered(AttemptTrigger::Scheduled, 1, 204),
        &rules(&p, RetryAfter::Replaces),
        0.5,
    );
    assert_eq!(decision, Decision::settles(true));
    assert_eq!(decision.delivery_status, DeliveryStatus::Succeeded);
}

#[test]
fn a_failure_retries_on_the_schedule_with_jitter_of_up_to_a_fifth_more() {
    let p = policy(vec![10, 60]);
    let r = rules(&p, RetryAfter::Replaces);
    let least = decide_at(&answered(AttemptTrigger::Scheduled, 1, 500), &r, 0.0);
    assert_eq!(
        least,
        Decision {
            delivery_status: DeliveryStatus::Retrying,
            next_attempt_at: ms_after_now(10_000),
            webhook_change: None,
            delivery_exhausted: false,
            out_of_order: Some(OutOfOrderRule {
                after_failed_deliveries: Some(3),
                after_hours: Some(24),
            }),
        }
    );
    let most = decide_at(&answered(AttemptTrigger::Scheduled, 2, 500), &r, 0.999_999);
    assert_eq!(most.next_attempt_at, ms_after_now(71_999));
    let whole_fifth = decide_at(&answered(AttemptTrigger::Scheduled, 2, 500), &r, 1.0);
    assert_eq!(whole_fifth.next_attempt_at, ms_after_now(72_000));
    let timeout = decide_at(&failed_with(ErrorKind::Timeout), &r, 0.0);
    assert_eq!(timeout, least, "an error retries as a bad status does");
}

#[test]
fn the_delivery_fails_for_good_when_the_schedule_is_exhausted() {
    let p = policy(vec![10]);
    let decision = decide_at(
        &answered(AttemptTrigger::Scheduled, 2, 503),
        &rules(&p, RetryAfter::Replaces),
        0.5,
    );
    assert_eq!(
        decision,
        Decision {
            delivery_status: DeliveryStatus::Failed,
            next_attempt_at: None,
            webhook_change: None,
            delivery_exhausted: true,
            out_of_order: Some(OutOfOrderRule::of(&p)),
        }
    );
    let none = policy(vec![]);
    let first = decide_at(
        &answered(AttemptTrigger::Scheduled, 1, 500),
        &rules(&none, RetryAfter::Replaces),
        0.5,
    );
    assert!(
        first.delivery_exhausted,
        "an empty schedule gives up at once"
    );
}

/// Checks when a first scheduled attempt answered `Retry-After: wait` is due again, under
/// `rule` and a 300 s schedule: each case is (wait in s, random draw, expected delay in ms, why).
fn assert_retry_after_waits(rule: RetryAfter, cases: &[(u64, f64, i64, &str)]) {
    let p = policy(vec![300]);
    let r = rules(&p, rule);
    for &(wait, unit_random, delay_ms, why) in cases {
        assert_eq!(
            decide_at(&asking(wait), &r, unit_random).next_attempt_at,
            ms_after_now(delay_ms),
            "{rule:?}, Retry-After {wait}, draw {unit_random}: {why}"
        );
    }
}

#[test]
fn retry_after_is_bounded_to_between_a_second_and_the_maximum() {
    assert_retry_after_waits(
        RetryAfter::Replaces,
        &[
            (7200, 0.0, 3_600_000, "at most the maximum"),
            (0, 0.0, 1_000, "at least a second"),
            (120, 0.9, 120_000, "no jitter on the receiver's own time"),
        ],
    );
    assert_retry_after_waits(
        RetryAfter::Lengthens,
        &[(7200, 0.0, 3_600_000, "at most the maximum")],
    );
}

#[test]
fn retry_after_replaces_the_schedule_unless_a_presets_policy_makes_it_a_floor() {
    assert_retry_after_waits(
        RetryAfter::Replaces,
        &[
            (5, 0.0, 5_000, "sooner than the schedule"),
            (1800, 0.0, 1_800_000, "later than the schedule"),
        ],
    );
    assert_retry_after_waits(
        RetryAfter::Lengthens,
        &[
            (5, 0.0, 300_000, "never sooner than the preset's schedule"),
            (5, 1.0, 360_000, "the schedule keeps its jitter"),
            (1800, 0.0, 1_800_000, "later than the schedule"),
        ],
    );
}

#[test]
fn gone_fails_the_delivery_and_disables_the_webhook_whatever_the_trigger() {
    let p = policy(vec![10]);
    let r = rules(&p, RetryAfter::Replaces);
    for trigger in [
        AttemptTrigger::Scheduled,
        AttemptTrigger::Manual,
        AttemptTrigger::Validation,
    ] {
        assert_eq!(
            decide_at(&answered(trigger, 1, 410), &r, 0.5),
            Decision {
                webhook_change: gone_change(),
                ..Decision::settles(false)
            },
            "{trigger:?}: no retry, not counted toward out of order"
        );
    }
}

#[test]
fn a_send_herald_refused_fails_at_once_without_counting_toward_out_of_order() {
    let p = policy(vec![10]);
    assert_eq!(
        decide_at(
            &failed_with(ErrorKind::RefusedByPolicy),
            &rules(&p, RetryAfter::Replaces),
            0.5,
        ),
        Decision::settles(false)
    );
}

#[test]
fn a_validation_activates_a_pending_webhook_when_it_succeeds_and_only_fails_when_not() {
    let p = policy(vec![10]);
    let r = rules(&p, RetryAfter::Replaces);
    assert_eq!(
        decide_at(&answered(AttemptTrigger::Validation, 1, 200), &r, 0.5),
        activates(
            WebhookStatus::Pending,
            "activated: the validation event succeeded"
        )
    );
    assert_eq!(
        decide_at(&answered(AttemptTrigger::Validation, 1, 500), &r, 0.5),
        Decision::settles(false),
        "no retry, the webhook stays as it is"
    );
}

#[test]
fn trigger_now_reactivates_an_out_of_order_webhook_when_it_succeeds_and_only_fails_when_not() {
    let p = policy(vec![10]);
    let r = rules(&p, RetryAfter::Replaces);
    assert_eq!(
        decide_at(&answered(AttemptTrigger::Manual, 1, 200), &r, 0.5),
        activates(
            WebhookStatus::OutOfOrder,
            "reactivated: Trigger now succeeded"
        )
    );
    let timed_out = AttemptOutcome {
        trigger: AttemptTrigger::Manual,
        ..failed_with(ErrorKind::Timeout)
    };
    assert_eq!(
        decide_at(&timed_out, &r, 0.5),
        Decision::settles(false),
        "no retry, the webhook stays as it is"
    );
}

#[test]
fn out_of_order_by_count_of_exhausted_deliveries_or_by_hours_of_failure() {
    let rule = OutOfOrderRule::of(&RetryPolicy {
        schedule_seconds: vec![],
        out_of_order_after_failures: Some(3),
        out_of_order_after_hours: Some(2),
    });
    assert_eq!(
        rule,
        OutOfOrderRule {
            after_failed_deliveries: Some(3),
            after_hours: Some(2),
        }
    );
    let hour = 3_600_000;
    assert!(!rule.is_crossed(2, Some(0), hour), "under both thresholds");
    assert!(rule.is_crossed(3, None, 0), "by count");
    assert!(
        !rule.is_crossed(0, Some(0), 2 * hour - 1),
        "not yet by time"
    );
    assert!(rule.is_crossed(0, Some(0), 2 * hour), "by time");
    assert!(!rule.is_crossed(0, None, i64::MAX / 2), "not failing");
    let never = OutOfOrderRule {
        after_failed_deliveries: None,
        after_hours: None,
    };
    assert!(!never.is_crossed(1000, Some(0), i64::MAX / 2));
}

#[test]
fn a_record_carries_the_decision() {
    let attempt = Attempt {
        id: crate::id::AttemptId::new(),
        delivery_id: crate::id::DeliveryId::new(),
        webhook_id: crate::id::WebhookId::new(),
        project_id: crate::id::ProjectId::new(),
        number: 1,
        trigger: AttemptTrigger::Scheduled,
        started_at: now(),
        duration_ms: 3,
        request: crate::attempt::SentRequest {
            method: "POST".into(),
            url: "https://example.com/".into(),
            headers: Default::default(),
        },
        response: None,
        error: Some(crate::attempt::AttemptError {
            kind: ErrorKind::Timeout,
            message: "timed out".into(),
        }),
        succeeded: false,
    };
    let outcome = AttemptOutcome::of(&attempt, Some(Duration::from_secs(7)));
    assert_eq!(
        outcome,
        AttemptOutcome {
            retry_after: Some(Duration::from_secs(7)),
            ..failed_with(ErrorKind::Timeout)
        }
    );
    let p = policy(vec![10]);
    let decision = decide_at(&outcome, &rules(&p, RetryAfter::Replaces), 0.0);
    let event_id = EventId::generate();
    let record = AttemptRecord::decided(attempt, NODE.into(), event_id.clone(), decision.clone());
    assert_eq!(record.lease_owner, NODE);
    assert_eq!(record.event_id, event_id);
    assert_eq!(record.delivery_status, DeliveryStatus::Retrying);
    assert_eq!(record.next_attempt_at, decision.next_attempt_at);
    assert_eq!(record.webhook_change, None);
    assert!(!record.delivery_exhausted);
    assert_eq!(record.out_of_order, decision.out_of_order);
    let settled = AttemptRecord::settling(record.attempt, NODE.into(), event_id);
    assert_eq!(settled.delivery_status, DeliveryStatus::Failed);
    assert_eq!(settled.next_attempt_at, None);
    assert_eq!(settled.out_of_order, None);
}
