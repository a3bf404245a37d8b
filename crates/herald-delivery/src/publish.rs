//! Publishing: the engine decides who gets an event. An event is matched against its project's
//! subscribed webhooks and committed with one delivery per match — leased to this node and
//! sent from memory when its lane has room, left in the store otherwise (a full lane; a
//! disabled or out-of-order webhook, whose delivery is held until it is active again).
//!
//! The engine's own operational events (`webhook.out_of_order`, to the system project) take
//! the same path.

use std::sync::Arc;

use herald_core::delivery::Delivery;
use herald_core::event::{Event, EventId};
use herald_core::event_type::EventTypeName;
use herald_core::id::WebhookId;
use herald_core::project::Project;
use herald_core::time;
use herald_core::webhook::Webhook;
use herald_store::{Lease, NewPublish, Published};
use serde_json::json;
use tracing::Instrument as _;

use crate::error::EngineError;
use crate::shared::Core;

/// Matches the event against its project's subscribed webhooks and commits it with their
/// deliveries; answers once it is durable.
pub(crate) async fn publish(core: &Arc<Core>, event: Event) -> Result<Published, EngineError> {
    let span = tracing::info_span!("publish", event_id = %event.id.as_str(), project_id = %event.project_id, deliveries = tracing::field::Empty);
    async {
        let subscribed = core.subscribed(&event.project_id).await?;
        let matching: Vec<&Webhook> = subscribed
            .iter()
            .filter(|w| w.filter.matches(&event.event_type))
            .collect();
        tracing::Span::current().record("deliveries", matching.len());
        commit(core, event, &matching).await
    }
    .instrument(span)
    .await
}

/// Commits the event with one delivery per webhook given.
async fn commit(
    core: &Arc<Core>,
    event: Event,
    webhooks: &[&Webhook],
) -> Result<Published, EngineError> {
    let now = event.created_at;
    let mut deliveries = Vec::with_capacity(webhooks.len());
    let mut reservations = Vec::new();
    for webhook in webhooks {
        let delivery = Delivery::new(
            event.project_id.clone(),
            event.id.clone(),
            webhook.id.clone(),
            now,
        );
        if webhook.status.holds_deliveries() {
            // Held: committed unleased, it waits in the store (the poller claims only active
            // webhooks' work) and flows when the webhook is active again. No lane room.
            deliveries.push((delivery, None));
            continue;
        }
        let reservation = core.dispatcher.reserve(&webhook.id, 1);
        let lease = (reservation.count() > 0 && !core.shutdown.is_cancelled()).then(|| Lease {
            owner: core.config.node_id.clone(),
            until: core.lease_until(webhook, now),
        });
        if lease.is_some() {
            reservations.push(reservation);
        }
        deliveries.push((delivery, lease));
    }
    core.writes
        .publish(NewPublish { event, deliveries }, true, reservations)
        .await
}

/// A webhook went out of order in a commit: stop its lane and tell the system project.
pub(crate) fn went_out_of_order(core: &Arc<Core>, webhook: WebhookId) {
    core.webhook_changed(&webhook);
    let drained = core.dispatcher.drain(&webhook);
    core.release_later(drained);
    let core = core.clone();
    tokio::spawn(async move {
        let Ok(w) = core.store.webhook(&webhook).await else {
            return;
        };
        tracing::warn!(webhook_id = %w.id, reason = w.status_reason.as_deref().unwrap_or(""), "webhook went out of order");
        let event = Event {
            id: EventId::generate(),
            project_id: core.system_project.clone(),
            event_type: out_of_order_type(),
            occurred_at: time::now(),
            data: json!({
                "webhook_id": w.id,
                "webhook_name": w.name,
                "project_id": w.project_id,
                "url": w.url.redacted(),
                "reason": w.status_reason,
            }),
            actor: None,
            created_at: time::now(),
        };
        if let Err(e) = publish(&core, event).await {
            tracing::error!(error = %e, "could not publish webhook.out_of_order");
        }
    });
}

/// The name a webhook's validation event goes out under: its project's choice, else its
/// preset's (`Webhook Validate` for `event-data`, as the case-management cloud sends it), else
/// the server's.
pub(crate) fn validation_event_name(
    project: &Project,
    webhook: &Webhook,
    server: &str,
) -> EventTypeName {
    project
        .settings
        .validation_event
        .clone()
        .or_else(|| {
            webhook
                .shape
                .preset
                .and_then(|p| p.validation_event())
                .and_then(|name| EventTypeName::parse(name).ok())
        })
        .or_else(|| EventTypeName::parse(server).ok())
        .unwrap_or_else(out_of_order_type)
}

/// The event type of the engine's own event when a webhook goes out of order.
pub(crate) fn out_of_order_type() -> EventTypeName {
    EventTypeName::parse("webhook.out_of_order").unwrap_or_else(|_| unreachable!("a valid name"))
}
