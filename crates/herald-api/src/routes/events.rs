//! `/v1/projects/{project}/events`: publishing, and reading events and their deliveries.
//!
//! Publishing validates the event (known, unarchived type; data matching the type's schema) and
//! hands it to the engine, which matches it against the project's subscribed webhooks (active,
//! disabled, out of order: a paused webhook's delivery is held until it is active again); the
//! answer is 202 only once the event and one delivery per matching webhook are committed. An event `id` is an idempotency
//! key: sending it again with the same type and data returns the first event and creates
//! nothing; with another type or data it is refused (409).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use herald_core::InvalidField;
use herald_core::auth::Action;
use herald_core::delivery::{Delivery, DeliveryStatus};
use herald_core::event::{Actor, Event, EventId};
use herald_core::event_type::EventTypeName;
use herald_core::id::{DeliveryId, ProjectId, WebhookId};
use herald_core::openapi;
use herald_core::time;
use herald_store::{Published, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApiState;
use crate::auth::Caller;
use crate::extract::{
    JsonBody, ListResponse, PageParams, QueryParams, object_or_null, page_request,
};
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    id: String,
    project_id: ProjectId,
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: DateTime<Utc>,
    data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Actor>,
    created_at: DateTime<Utc>,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.into(),
            project_id: e.project_id,
            event_type: e.event_type.into(),
            occurred_at: e.occurred_at,
            data: e.data,
            actor: e.actor,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Stable across every attempt: receivers can deduplicate on it.
    id: DeliveryId,
    event_id: String,
    webhook_id: WebhookId,
    status: DeliveryStatus,
    attempts: u32,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id.into(),
            webhook_id: d.webhook_id,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// Your id for the event (letters, digits, `-_.:~`, up to 128): the same id again returns
    /// the first event and creates nothing. Herald makes one (`evt_…`) when omitted.
    #[schema(schema_with = openapi::optional_event_id)]
    id: Option<String>,
    /// The event type's name; it must exist in the project and not be archived.
    #[serde(rename = "type")]
    #[schema(schema_with = openapi::event_type_name)]
    event_type: String,
    /// The event's data; must match the event type's schema, if it has one.
    data: Value,
    /// When it happened (RFC 3339); defaults to now.
    occurred_at: Option<DateTime<Utc>>,
    /// Who caused it.
    #[serde(default, deserialize_with = "object_or_null")]
    actor: Option<Actor>,
}

const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Publish an event: answered 202 once it and its deliveries are durably committed.
#[utoipa::path(post, operation_id = "publishEvent", path = "/v1/projects/{project}/events", tag = "events", request_body = PublishEvent,
    params(("project" = String, Path, description = "Project id or name")),
    responses(
        (status = 202, body = EventView, description = "Committed; `Idempotent-Replayed: true` when the id was seen before"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The id was already published with another type or data"),
        (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn publish(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(input): JsonBody<PublishEvent>,
) -> Result<Response, ApiError> {
    let project = caller.project(&state, &project, Action::Publish).await?;
    let id = match &input.id {
        Some(id) => EventId::parse(id)?,
        None => EventId::generate(),
    };
    let event_type = EventTypeName::parse(&input.event_type).map_err(|e| e.within("type"))?;
    let unknown = || {
        InvalidField::new(
            "type",
            format!(
                "\"{}\" is not an event type of this project",
                input.event_type
            ),
        )
    };
    let known = state
        .lookups
        .event_types
        .get_or_load(
            &(project.id.clone(), event_type.as_str().to_owned()),
            state.store.event_type(&project.id, &event_type),
        )
        .await;
    let known = match known {
        Ok(t) => t,
        Err(StoreError::NotFound { .. }) => return Err(unknown().into()),
        Err(e) => return Err(e.into()),
    };
    if known.archived {
        return Err(InvalidField::new(
            "type",
            format!("event type \"{}\" is archived", input.event_type),
        )
        .into());
    }
    if let Some(schema) = &known.schema {
        schema.check(&input.data)?;
    }
    let now = time::now();
    let event = Event {
        id,
        project_id: project.id.clone(),
        event_type,
        occurred_at: input
            .occurred_at
            .map(|t| time::within_rfc3339("occurred_at", t))
            .transpose()?
            .unwrap_or(now),
        data: input.data,
        actor: input.actor.map(Actor::validate).transpose()?,
        created_at: now,
    };
    match state.engine.publish(event.clone()).await? {
        Published::Created => {
            tracing::debug!(event_id = event.id.as_str(), "published");
            Ok((StatusCode::ACCEPTED, Json(EventView::from(event))).into_response())
        }
        Published::Duplicate(first) => {
            same_as_first(&first, &event)?;
            Ok((
                StatusCode::ACCEPTED,
                [(REPLAYED, HeaderValue::from_static("true"))],
                Json(EventView::from(*first)),
            )
                .into_response())
        }
    }
}

/// An id is an idempotency key for one event: sending it again with the same type and data is
/// a retry (answered with the first event), with another type or data a mistake the publisher
/// must hear of (409), not a silent replay of something else.
fn same_as_first(first: &Event, again: &Event) -> Result<(), ApiError> {
    let differs = if first.event_type != again.event_type {
        Some((
            "type",
            format!(
                "type \"{}\", not \"{}\"",
                first.event_type.as_str(),
                again.event_type.as_str()
            ),
        ))
    } else if first.data != again.data {
        Some(("data", "other data".to_owned()))
    } else {
        None
    };
    match differs {
        None => Ok(()),
        Some((field, what)) => Err(ApiError::StateConflict {
            kind: "idempotency-key-reused",
            title: "Idempotency key reused",
            detail: format!(
                "event id \"{}\" was already published with {what}; an id may be sent again only \
                 with the same type and data (give a new event a new id)",
                first.id.as_str()
            ),
            field: Some(field.to_owned()),
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEvents {
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = openapi::optional_event_type_name)]
    event_type: Option<String>,
    /// Items per page, 1 to 250 (default 50).
    #[param(schema_with = openapi::page_limit)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List a project's events, newest first.
#[utoipa::path(get, operation_id = "listEvents", path = "/v1/projects/{project}/events", tag = "events",
    params(("project" = String, Path, description = "Project id or name"), ListEvents),
    responses((status = 200, body = ListResponse<EventView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
    QueryParams(q): QueryParams<ListEvents>,
) -> Result<Json<ListResponse<EventView>>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let event_type = q
        .event_type
        .as_deref()
        .map(EventTypeName::parse)
        .transpose()
        .map_err(|e| ApiError::BadQuery {
            field: "type".into(),
            message: e.message,
        })?;
    let project = caller.project(&state, &project, Action::ReadEvents).await?;
    let found = state
        .store
        .list_events(&project.id, event_type.as_ref(), &page)
        .await?;
    Ok(Json(ListResponse::from_page(found, EventView::from)))
}

async fn load_event(
    state: &ApiState,
    caller: &Caller,
    project: &str,
    id: &str,
) -> Result<Event, ApiError> {
    let project = caller.project(state, project, Action::ReadEvents).await?;
    let id = EventId::parse(id).map_err(|_| ApiError::NotFound { entity: "event" })?;
    Ok(state.store.event(&project.id, &id).await?)
}

/// Get one event.
#[utoipa::path(get, operation_id = "getEvent", path = "/v1/projects/{project}/events/{id}", tag = "events",
    params(("project" = String, Path, description = "Project id or name"), ("id" = String, Path, description = "Event id")),
    responses((status = 200, body = EventView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(
        load_event(&state, &caller, &project, &id).await?.into(),
    ))
}

/// List an event's deliveries: one per webhook it matched when published.
#[utoipa::path(get, operation_id = "listEventDeliveries", path = "/v1/projects/{project}/events/{id}/deliveries", tag = "events",
    params(("project" = String, Path, description = "Project id or name"), ("id" = String, Path, description = "Event id"), PageParams),
    responses((status = 200, body = ListResponse<DeliveryView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn deliveries(
    State(state): State<ApiState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Json<ListResponse<DeliveryView>>, ApiError> {
    let page = params.request()?;
    let event = load_event(&state, &caller, &project, &id).await?;
    let found = state
        .store
        .list_event_deliveries(&event.project_id, &event.id, &page)
        .await?;
    Ok(Json(ListResponse::from_page(found, DeliveryView::from)))
}
