//! Deliveries and their attempts: what was sent where, what came back, and replaying.
//!
//! `/v1/webhooks/{id}/deliveries` (undelivered ones by default: pending, retrying, failed; `held`
//! for those a paused webhook holds),
//! `/v1/webhooks/{id}/attempts`, `/v1/deliveries/{id}` with its attempts and replay, and
//! `/v1/attempts/{id}` — the link the statistics give for the last success and failure.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use herald_core::attempt::{Attempt, AttemptError, AttemptTrigger, ReceivedResponse, SentRequest};
use herald_core::auth::Action;
use herald_core::delivery::{Delivery, DeliveryStatus};
use herald_core::id::{AttemptId, DeliveryId, ProjectId, WebhookId};
use herald_core::openapi;
use herald_core::page::PageRequest;
use herald_core::time;
use herald_core::webhook::{WebhookStatus, redact_url_password};
use herald_store::AttemptQuery;
use serde::{Deserialize, Serialize};

use super::events::DeliveryView;
use super::webhooks::load as load_webhook;
use crate::ApiState;
use crate::auth::Caller;
use crate::extract::{ListResponse, PageParams, QueryParams, page_request};
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    id: AttemptId,
    delivery_id: DeliveryId,
    webhook_id: WebhookId,
    project_id: ProjectId,
    /// 1 for the first try of a delivery.
    number: u32,
    trigger: AttemptTrigger,
    started_at: DateTime<Utc>,
    duration_ms: u64,
    succeeded: bool,
    /// What was sent. Signatures and the URL's password are always redacted; to roles that may
    /// not see secrets, every header value Herald did not set itself reads `<redacted>` too.
    request: SentRequest,
    /// What came back, if anything did (the body is cut at 64 KiB).
    response: Option<ReceivedResponse>,
    /// Why it failed: timeout, connect, tls, dns, status, refused_by_policy.
    error: Option<AttemptError>,
}

impl AttemptView {
    /// Signatures were redacted when the attempt was recorded, and the URL's password is here.
    /// With `secrets` (a role that may see them) the headers are shown as sent; without, the
    /// value of every header Herald did not set itself (custom headers are credentials) reads
    /// `<redacted>`.
    pub(crate) fn new(mut a: Attempt, secrets: bool) -> Self {
        // A password in the URL is never shown here, as it never is in lists.
        a.request.url = redact_url_password(&a.request.url);
        if !secrets {
            a.request.headers = a.request.headers.with_public_values_only();
        }
        Self {
            id: a.id,
            delivery_id: a.delivery_id,
            webhook_id: a.webhook_id,
            project_id: a.project_id,
            number: a.number,
            trigger: a.trigger,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            succeeded: a.succeeded,
            request: a.request,
            response: a.response,
            error: a.error,
        }
    }

    pub(crate) fn for_caller(a: Attempt, caller: &Caller) -> Self {
        Self::new(a, caller.0.may(Action::SeeSecrets))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveries {
    /// Comma-separated statuses: pending, retrying, succeeded, failed, discarded, `held`
    /// (the pending and retrying ones while the webhook is disabled or out of order: a held
    /// delivery keeps its own status and scheduled time), or `all` (default: the undelivered
    /// ones, `pending,retrying,failed`).
    #[param(schema_with = openapi::delivery_statuses)]
    status: Option<String>,
    /// Items per page, 1 to 250 (default 50).
    #[param(schema_with = openapi::page_limit)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// What a deliveries list asks for: these statuses (every one when empty, for `all`), and
/// whether the held ones too.
#[derive(Debug, Default, PartialEq)]
struct StatusFilter {
    statuses: Vec<DeliveryStatus>,
    held: bool,
}

impl StatusFilter {
    fn parse(list: Option<&str>) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        match list {
            None => {
                filter.statuses = vec![
                    DeliveryStatus::Pending,
                    DeliveryStatus::Retrying,
                    DeliveryStatus::Failed,
                ];
            }
            Some("all") => {}
            Some(list) => {
                for s in list.split(',').map(str::trim) {
                    if s == "held" {
                        filter.held = true;
                    } else {
                        filter.statuses.push(DeliveryStatus::parse(s).ok_or_else(|| {
                            ApiError::BadQuery {
                                field: "status".into(),
                                message: format!(
                                    "unknown status \"{s}\"; use pending, retrying, succeeded, failed, discarded, held or all"
                                ),
                            }
                        })?);
                    }
                }
            }
        }
        Ok(filter)
    }

    /// The statuses to read for a webhook in `status`, or `None` when nothing can match (only
    /// `held` asked of a webhook that holds nothing). Held deliveries are the pending and
    /// retrying ones of a paused webhook.
    fn for_webhook(mut self, status: WebhookStatus) -> Option<Vec<DeliveryStatus>> {
        if self.held {
            if status.holds_deliveries() {
                for s in [DeliveryStatus::Pending, DeliveryStatus::Retrying] {
                    if !self.statuses.contains(&s) {
                        self.statuses.push(s);
                    }
                }
            } else if self.statuses.is_empty() {
                return None;
            }
        }
        Some(self.statuses)
    }
}

/// A webhook's deliveries, newest first: by default the undelivered ones; `?status=held` for those
/// a disabled or out-of-order webhook holds.
#[utoipa::path(get, operation_id = "listWebhookDeliveries", path = "/v1/webhooks/{id}/deliveries", tag = "deliveries",
    params(("id" = String, Path, description = "Webhook id"), ListDeliveries),
    responses((status = 200, body = ListResponse<DeliveryView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list_for_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<ListDeliveries>,
) -> Result<Json<ListResponse<DeliveryView>>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let filter = StatusFilter::parse(q.status.as_deref())?;
    let webhook = load_webhook(&state, &caller, &id, Action::ReadWebhooks).await?;
    let Some(statuses) = filter.for_webhook(webhook.status) else {
        return Ok(Json(ListResponse {
            data: Vec::new(),
            next_cursor: None,
        }));
    };
    let found = state
        .store
        .list_webhook_deliveries(&webhook.id, &statuses, &page)
        .await?;
    Ok(Json(ListResponse::from_page(found, DeliveryView::from)))
}

/// A webhook's attempts, newest first, each with its request and response.
#[utoipa::path(get, operation_id = "listWebhookAttempts", path = "/v1/webhooks/{id}/attempts", tag = "deliveries",
    params(("id" = String, Path, description = "Webhook id"), PageParams),
    responses((status = 200, body = ListResponse<AttemptView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn attempts_for_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Json<ListResponse<AttemptView>>, ApiError> {
    let page = params.request()?;
    let webhook = load_webhook(&state, &caller, &id, Action::ReadWebhooks).await?;
    attempts_page(&state, &caller, AttemptQuery::Webhook(webhook.id), &page).await
}

/// A page of attempts, as the API shows them.
async fn attempts_page(
    state: &ApiState,
    caller: &Caller,
    query: AttemptQuery,
    page: &PageRequest,
) -> Result<Json<ListResponse<AttemptView>>, ApiError> {
    let found = state.store.list_attempts(&query, page).await?;
    Ok(Json(ListResponse::from_page(found, |a| {
        AttemptView::for_caller(a, caller)
    })))
}

async fn load(state: &ApiState, caller: &Caller, id: &str) -> Result<Delivery, ApiError> {
    caller.require(Action::ReadEvents)?;
    let id = DeliveryId::parse(id).map_err(|_| ApiError::NotFound { entity: "delivery" })?;
    let delivery = state.store.delivery(&id).await?;
    caller.scope(&delivery.project_id, "delivery")?;
    Ok(delivery)
}

/// One delivery.
#[utoipa::path(get, operation_id = "getDelivery", path = "/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(load(&state, &caller, &id).await?.into()))
}

/// A delivery's attempts, newest first.
#[utoipa::path(get, operation_id = "listDeliveryAttempts", path = "/v1/deliveries/{id}/attempts", tag = "deliveries",
    params(("id" = String, Path, description = "Delivery id"), PageParams),
    responses((status = 200, body = ListResponse<AttemptView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn attempts(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Json<ListResponse<AttemptView>>, ApiError> {
    let page = params.request()?;
    let delivery = load(&state, &caller, &id).await?;
    attempts_page(&state, &caller, AttemptQuery::Delivery(delivery.id), &page).await
}

/// Replay one delivery (whatever its status, a discarded one too): it is sent again at once, with
/// the same delivery id — or held, while its webhook is disabled or out of order.
#[utoipa::path(post, operation_id = "replayDelivery", path = "/v1/deliveries/{id}/replay", tag = "deliveries",
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    let delivery = load(&state, &caller, &id).await?;
    let replayed = state
        .store
        .replay_delivery(&delivery.id, time::now())
        .await?;
    state.engine.wake();
    Ok(Json(replayed.into()))
}

/// One attempt, with the request sent and the response received.
#[utoipa::path(get, operation_id = "getAttempt", path = "/v1/attempts/{id}", tag = "deliveries",
    params(("id" = String, Path, description = "Attempt id")),
    responses((status = 200, body = AttemptView), (status = 404, body = Problem)))]
pub async fn attempt(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AttemptView>, ApiError> {
    caller.require(Action::ReadWebhooks)?;
    let id = AttemptId::parse(&id).map_err(|_| ApiError::NotFound { entity: "attempt" })?;
    let attempt = state.store.attempt(&id).await?;
    caller.scope(&attempt.project_id, "attempt")?;
    Ok(Json(AttemptView::for_caller(attempt, &caller)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_means_pending_and_retrying_of_a_paused_webhook_only() {
        let held = StatusFilter::parse(Some("held")).unwrap();
        assert_eq!(
            held.for_webhook(WebhookStatus::Disabled),
            Some(vec![DeliveryStatus::Pending, DeliveryStatus::Retrying])
        );
        let held = StatusFilter::parse(Some("held")).unwrap();
        assert_eq!(held.for_webhook(WebhookStatus::Active), None);
        let mixed = StatusFilter::parse(Some("failed, held")).unwrap();
        assert_eq!(
            mixed.for_webhook(WebhookStatus::Active),
            Some(vec![DeliveryStatus::Failed])
        );
        let mixed = StatusFilter::parse(Some("pending,held")).unwrap();
        assert_eq!(
            mixed.for_webhook(WebhookStatus::OutOfOrder),
            Some(vec![DeliveryStatus::Pending, DeliveryStatus::Retrying])
        );
        let all = StatusFilter::parse(Some("all")).unwrap();
        assert_eq!(all.for_webhook(WebhookStatus::Active), Some(vec![]));
        assert!(StatusFilter::parse(Some("held,nope")).is_err());
    }
}
