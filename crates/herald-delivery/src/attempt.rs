//! One try of one delivery: prepare the request, send it, decide what follows, and queue the
//! record for the group commit.
//!
//! The decision — a 2xx succeeds; `410 Gone` fails the delivery and disables the webhook;
//! anything else retries on the webhook's policy or at the receiver's `Retry-After` until the
//! policy gives up — is herald-core's ([`herald_core::decision`]); this module gives it the
//! clock and the randomness.

use std::sync::Arc;

use herald_core::attempt::{Attempt, AttemptError, AttemptTrigger, ErrorKind, SentRequest};
use herald_core::decision::{self, AttemptOutcome, AttemptRecord, RetryRules};
use herald_core::id::AttemptId;
use herald_core::retry::RetryAfter;
use herald_core::time;
use herald_core::webhook::WebhookStatus;

use crate::dispatcher::Job;
use crate::request::{Try, prepare_outbound};
use crate::send::Outcome;
use crate::shared::{Core, WebhookEntry};

/// Runs a scheduled attempt from a lane.
/// Sends one leased delivery and queues its record; says whether the receiver took it.
pub(crate) async fn run(core: &Arc<Core>, job: Job) -> bool {
    let webhook_id = job.delivery.webhook_id.clone();
    let entry = match core.webhook(&webhook_id).await {
        Ok(Some(entry)) if entry.webhook.status == WebhookStatus::Active => entry,
        Ok(_) => {
            // Deleted, disabled or out of order since it was queued: the delivery is held (or
            // goes with its webhook) and the lease is given back.
            core.release_later(vec![job.delivery.id]);
            return false;
        }
        Err(e) => {
            tracing::warn!(error = %e, webhook_id = %webhook_id, "could not load the webhook; the lease will expire and the delivery be retried");
            return false;
        }
    };
    // Too late to send and record within the lease (it waited long in a full lane): leave it
    // to whoever claims it next rather than risk sending it twice.
    let must_finish_by = time::now().timestamp_millis()
        + i64::try_from(entry.webhook.timeout.duration().as_millis()).unwrap_or(i64::MAX / 4)
        + 5_000;
    if must_finish_by > job.lease_until.timestamp_millis() {
        tracing::debug!(delivery_id = %job.delivery.id, "lease too close to its end; leaving the delivery to be claimed again");
        return false;
    }
    let (attempt, retry_after) = try_once(core, &entry, &job, AttemptTrigger::Scheduled).await;
    let succeeded = attempt.succeeded;
    let record = decide(core, &entry, &job, attempt, retry_after);
    core.record(record).await;
    succeeded
}

/// Sends one attempt and builds its record (not yet decided), with the `Retry-After` the
/// receiver asked for, if it did.
pub(crate) async fn try_once(
    core: &Core,
    entry: &WebhookEntry,
    job: &Job,
    trigger: AttemptTrigger,
) -> (Attempt, Option<std::time::Duration>) {
    let webhook = &entry.webhook;
    let number = job.delivery.attempts + 1;
    let started_at = time::now();
    let (last_success_at, last_failure_at) = *entry
        .last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let account_secret = if webhook.shape.scheme.uses_account_secret() {
        core.account_secret().await
    } else {
        None
    };
    let prepared = prepare_outbound(
        webhook,
        &job.event,
        Try {
            delivery_id: &job.delivery.id,
            attempt: number,
            now: started_at,
            last_success_at,
            last_failure_at,
            api_url: &core.config.api_url,
            account_secret: account_secret.as_ref(),
        },
    );
    let (request, mut outcome) = match prepared {
        Ok(prepared) => {
            // Recorded as it goes out: the send takes the headers.
            let request = SentRequest {
                method: webhook.method.as_str().to_owned(),
                url: prepared.url.to_string(),
                headers: prepared.redacted_headers(),
            };
            let outcome = core.sender.send(prepared, webhook.timeout.duration()).await;
            (request, outcome)
        }
        Err(e) => (
            SentRequest {
                method: webhook.method.as_str().to_owned(),
                url: webhook.url.as_str().to_owned(),
                headers: Default::default(),
            },
            Outcome {
                response: None,
                error: Some(AttemptError {
                    kind: ErrorKind::RefusedByPolicy,
                    message: e.to_string(),
                }),
                retry_after: None,
                duration: std::time::Duration::ZERO,
            },
        ),
    };
    let succeeded = outcome.succeeded();
    {
        let mut last = entry
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if succeeded {
            last.0 = Some(started_at);
        } else {
            last.1 = Some(started_at);
        }
    }
    let id = AttemptId::new();
    tracing::Span::current().record("attempt_id", tracing::field::display(&id));
    let attempt = Attempt {
        id,
        delivery_id: job.delivery.id.clone(),
        webhook_id: webhook.id.clone(),
        project_id: webhook.project_id.clone(),
        number,
        trigger,
        started_at,
        duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        request,
        // Moved, not copied: only the Retry-After is read from the outcome after this.
        response: outcome.response.take(),
        error: outcome.error.take(),
        succeeded,
    };
    (attempt, outcome.retry_after)
}

/// What follows an attempt, scheduled or sent now: decided by herald-core
/// ([`decision::decide`]) with this node's clock and a random draw for the retry's jitter.
pub(crate) fn decide(
    core: &Core,
    entry: &WebhookEntry,
    job: &Job,
    attempt: Attempt,
    retry_after: Option<std::time::Duration>,
) -> AttemptRecord {
    let webhook = &entry.webhook;
    let rules = RetryRules {
        policy: &entry.policy,
        retry_after: RetryAfter::for_webhook(webhook.retry_policy.as_ref(), webhook.shape.preset),
        max_retry_after: core.config.max_retry_after,
    };
    let decision = decision::decide(
        &AttemptOutcome::of(&attempt, retry_after),
        &rules,
        &core.config.node_id,
        time::now(),
        rand::random::<f64>(),
    );
    AttemptRecord::decided(
        attempt,
        core.config.node_id.clone(),
        job.event.id.clone(),
        decision,
    )
}

/// Lanes run their jobs here.
impl crate::dispatcher::Runner for Core {
    fn dispatcher(&self) -> &crate::dispatcher::Dispatcher {
        &self.dispatcher
    }

    fn run(self: &Arc<Self>, job: Job) -> impl Future<Output = bool> + Send {
        use tracing::Instrument as _;
        // One attempt's story: every line logged while it is prepared, sent and recorded
        // carries these ids.
        let span = tracing::info_span!(
            "attempt",
            webhook_id = %job.delivery.webhook_id,
            delivery_id = %job.delivery.id,
            number = job.delivery.attempts + 1,
            attempt_id = tracing::field::Empty,
        );
        run(self, job).instrument(span)
    }

    fn refill(&self) {
        self.wake.notify_one();
    }

    fn release(&self, deliveries: Vec<herald_core::id::DeliveryId>) {
        self.release_later(deliveries);
    }
}
