//! Sending one event to one webhook now, whatever its filter and status: Trigger now (a user's
//! test, which reactivates an out-of-order webhook when it succeeds) and the validation event
//! (which activates a pending webhook). The event and its delivery are committed first, then
//! sent here rather than by a lane, and the attempt is recorded before the caller is answered.

use std::sync::Arc;

use herald_core::attempt::{Attempt, AttemptTrigger};
use herald_core::delivery::Delivery;
use herald_core::event::{Event, EventId};
use herald_core::event_type::EventTypeName;
use herald_core::time;
use herald_core::webhook::Webhook;
use herald_store::{Lease, NewPublish};
use serde_json::Value;
use tracing::Instrument as _;

use crate::dispatcher::Job;
use crate::error::EngineError;
use crate::publish::{out_of_order_type, validation_event_name};
use crate::request::Outbound;
use crate::shared::{Core, WebhookEntry};

/// Sends and records one attempt of a new event to `webhook`.
pub(crate) async fn send_now(
    core: &Arc<Core>,
    webhook: &Webhook,
    event_type: Option<EventTypeName>,
    data: Value,
    trigger: AttemptTrigger,
) -> Result<Attempt, EngineError> {
    let now = time::now();
    let name = match (event_type, trigger) {
        (Some(name), _) => name,
        (None, AttemptTrigger::Validation) => {
            let project = core.store.project(&webhook.project_id).await?;
            validation_event_name(&project, webhook, &core.config.validation_event)
        }
        (None, _) => EventTypeName::parse("webhook.test").unwrap_or_else(|_| out_of_order_type()),
    };
    let event = Event {
        id: EventId::generate(),
        project_id: webhook.project_id.clone(),
        event_type: name,
        occurred_at: now,
        data,
        actor: None,
        created_at: now,
    };
    let delivery = Delivery::new(
        webhook.project_id.clone(),
        event.id.clone(),
        webhook.id.clone(),
        now,
    );
    let span = tracing::info_span!("send_now", ?trigger, webhook_id = %webhook.id, delivery_id = %delivery.id, event_id = %event.id.as_str());
    async {
        // Leased to this node, but not handed to a lane: it is sent right here.
        let lease = Lease {
            owner: core.config.node_id.clone(),
            until: core.lease_until(webhook, now),
        };
        let publish = NewPublish {
            event: event.clone(),
            deliveries: vec![(delivery.clone(), Some(lease.clone()))],
        };
        core.writes.publish(publish, false, Vec::new()).await?;

        let entry = WebhookEntry {
            webhook: webhook.clone(),
            policy: core.config.default_retry.clone(),
            last: std::sync::Mutex::new((None, None)),
        };
        let job = Job {
            delivery,
            event: Arc::new(Outbound::new(event)),
            lease_until: lease.until,
        };
        let (attempt, retry_after) = crate::attempt::try_once(core, &entry, &job, trigger).await;
        let record = crate::attempt::decide(core, &entry, &job, attempt.clone(), retry_after);
        core.writes.record_and_wait(record).await?;
        Ok(attempt)
    }
    .instrument(span)
    .await
}
