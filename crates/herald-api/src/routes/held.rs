//! `/v1/webhooks/{id}/held/discard`: letting go of what a paused webhook holds.
//!
//! While a webhook is disabled or out of order, the events it subscribes to still make
//! deliveries for it; they are *held* — kept, not sent — and flow, oldest first, when it is active
//! again (enable, a successful Trigger now). Nothing is lost by pausing a webhook. When the
//! receiver will never want them, a person discards them here, all or those created before a
//! time: they become `discarded`, are never sent, and stay listed (a replay of one brings it
//! back). An active webhook holds nothing, and the request is refused (409) rather than read as
//! "discard the queue": that is not what pausing promised to keep.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use herald_core::auth::Action;
use herald_core::time;
use herald_store::Discarded;
use serde::{Deserialize, Serialize};

use super::webhooks::load as load_webhook;
use crate::ApiState;
use crate::auth::Caller;
use crate::extract::OptionalJsonBody;
use crate::problem::{ApiError, Problem};

/// Which held deliveries to discard. The body may be left out.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscardHeld {
    /// Discard only the held deliveries created before this time (RFC 3339); every held
    /// delivery when left out or `null`.
    before: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiscardedCount {
    /// How many held deliveries are now `discarded`.
    discarded: u64,
}

/// Discard the deliveries a disabled or out-of-order webhook holds (all, or those created before
/// a time): they are marked `discarded` and never sent. A delivery being sent at this moment is
/// left to its attempt. 409 when the webhook holds nothing (it is active, or pending validation).
#[utoipa::path(post, operation_id = "discardHeldDeliveries", path = "/v1/webhooks/{id}/held/discard", tag = "webhooks",
    request_body(content = Option<DiscardHeld>, description = "Optional; `{}` or no body discards every held delivery."),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = DiscardedCount), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The webhook is not disabled or out of order: nothing is held"),
        (status = 422, body = Problem)))]
pub async fn discard(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<DiscardHeld>,
) -> Result<Json<DiscardedCount>, ApiError> {
    let webhook = load_webhook(&state, &caller, &id, Action::ManageWebhooks).await?;
    let before = input
        .and_then(|i| i.before)
        .map(|t| time::within_rfc3339("before", t))
        .transpose()?;
    // The status is checked inside the store's transaction, not from `webhook`: an enable
    // landing between the two must not let this discard what is now flowing.
    match state
        .store
        .discard_held(&webhook.id, before, time::now())
        .await?
    {
        Discarded::Count(discarded) => Ok(Json(DiscardedCount { discarded })),
        Discarded::NotHeld(status) => Err(ApiError::NotHeld { status }),
    }
}
