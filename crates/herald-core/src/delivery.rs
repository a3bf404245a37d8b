//! Deliveries: one event for one webhook. The id is stable across every attempt, so receivers
//! can deduplicate on it.

use serde::{Deserialize, Serialize};

use crate::event::EventId;
use crate::id::{DeliveryId, ProjectId, WebhookId};
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not tried yet. While its webhook is disabled or out of order it is *held*: kept, not
    /// sent, until the webhook is active again.
    Pending,
    /// Tried and failed; another attempt is scheduled (held, like a pending one, while its
    /// webhook is disabled or out of order; its time is kept).
    Retrying,
    Succeeded,
    /// Every attempt the retry policy allows has failed.
    Failed,
    /// Held while its webhook was disabled or out of order, then discarded by a person
    /// (`POST /v1/webhooks/{id}/held/discard`): never sent. A replay of this one delivery
    /// brings it back.
    Discarded,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub project_id: ProjectId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Delivery {
    /// A new delivery, due at once.
    pub fn new(
        project_id: ProjectId,
        event_id: EventId,
        webhook_id: WebhookId,
        now: Timestamp,
    ) -> Self {
        Self {
            id: DeliveryId::new(),
            project_id,
            event_id,
            webhook_id,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }
}
