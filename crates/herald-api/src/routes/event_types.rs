//! `/v1/projects/{project}/event-types`: the named kinds of event a project publishes, each
//! optionally with a JSON Schema for its data. Event types are archived, never deleted, so old
//! events keep their meaning.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::auth::Action;
use herald_core::event_type::{EventSchema, EventType, EventTypeName};
use herald_core::id::ProjectId;
use herald_core::openapi;
use herald_core::time;
use herald_core::validation::{DESCRIPTION_MAX_LEN, optional_text};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApiState;
use crate::auth::Caller;
use crate::extract::{JsonBody, ListResponse, QueryParams, non_null, page_request, present};
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventTypeView {
    project_id: ProjectId,
    /// e.g. `environment.suspended` or `Webhook Validate`.
    name: String,
    description: Option<String>,
    /// JSON Schema every event's `data` must satisfy.
    schema: Option<Value>,
    archived: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EventType> for EventTypeView {
    fn from(t: EventType) -> Self {
        Self {
            project_id: t.project_id,
            name: t.name.into(),
            description: t.description,
            schema: t.schema.map(|s| s.as_value().clone()),
            archived: t.archived,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    #[schema(schema_with = openapi::event_type_name)]
    name: String,
    #[schema(schema_with = openapi::description)]
    description: Option<String>,
    #[schema(schema_with = openapi::json_schema)]
    schema: Option<Value>,
}

/// Fields absent from a PATCH stay as they are; `null` clears `description` or `schema`, and is
/// refused for `archived`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventType {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = openapi::description)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = openapi::json_schema)]
    schema: Option<Option<Value>>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    archived: Option<bool>,
}

fn parse_name(name: &str) -> Result<EventTypeName, ApiError> {
    Ok(EventTypeName::parse(name).map_err(|e| e.within("name"))?)
}

fn parse_schema(schema: Option<Value>) -> Result<Option<EventSchema>, ApiError> {
    Ok(schema.map(EventSchema::parse).transpose()?)
}

/// Create an event type.
#[utoipa::path(post, operation_id = "createEventType", path = "/v1/projects/{project}/event-types", tag = "event types",
    request_body = CreateEventType,
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 201, body = EventTypeView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(input): JsonBody<CreateEventType>,
) -> Result<(StatusCode, Json<EventTypeView>), ApiError> {
    let project = caller
        .project(&state, &project, Action::ManageEventTypes)
        .await?;
    let now = time::now();
    let event_type = EventType {
        project_id: project.id,
        name: parse_name(&input.name)?,
        description: optional_text(
            "description",
            input.description.as_deref(),
            DESCRIPTION_MAX_LEN,
        )?,
        schema: parse_schema(input.schema)?,
        archived: false,
        created_at: now,
        updated_at: now,
    };
    state.store.create_event_type(&event_type).await?;
    state.lookups.event_types.remove(&(
        event_type.project_id.clone(),
        event_type.name.as_str().to_owned(),
    ));
    Ok((StatusCode::CREATED, Json(event_type.into())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEventTypes {
    /// Include archived event types (default false).
    include_archived: Option<bool>,
    /// Items per page, 1 to 250 (default 50).
    #[param(schema_with = openapi::page_limit)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List a project's event types, newest first.
#[utoipa::path(get, operation_id = "listEventTypes", path = "/v1/projects/{project}/event-types", tag = "event types",
    params(("project" = String, Path, description = "Project id or name"), ListEventTypes),
    responses((status = 200, body = ListResponse<EventTypeView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
    QueryParams(q): QueryParams<ListEventTypes>,
) -> Result<Json<ListResponse<EventTypeView>>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let project = caller
        .project(&state, &project, Action::ReadEventTypes)
        .await?;
    let found = state
        .store
        .list_event_types(&project.id, q.include_archived.unwrap_or(false), &page)
        .await?;
    Ok(Json(ListResponse::from_page(found, EventTypeView::from)))
}

/// Get one event type.
#[utoipa::path(get, operation_id = "getEventType", path = "/v1/projects/{project}/event-types/{name}", tag = "event types",
    params(("project" = String, Path, description = "Project id or name"), ("name" = String, Path, description = "Event type name")),
    responses((status = 200, body = EventTypeView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> Result<Json<EventTypeView>, ApiError> {
    let project = caller
        .project(&state, &project, Action::ReadEventTypes)
        .await?;
    let name = EventTypeName::parse(&name).map_err(|_| ApiError::NotFound {
        entity: "event type",
    })?;
    Ok(Json(
        state.store.event_type(&project.id, &name).await?.into(),
    ))
}

/// Change an event type's description or schema, or archive / unarchive it.
#[utoipa::path(patch, operation_id = "updateEventType", path = "/v1/projects/{project}/event-types/{name}", tag = "event types",
    request_body = UpdateEventType,
    params(("project" = String, Path, description = "Project id or name"), ("name" = String, Path, description = "Event type name")),
    responses((status = 200, body = EventTypeView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
    JsonBody(input): JsonBody<UpdateEventType>,
) -> Result<Json<EventTypeView>, ApiError> {
    let project = caller
        .project(&state, &project, Action::ManageEventTypes)
        .await?;
    let name = EventTypeName::parse(&name).map_err(|_| ApiError::NotFound {
        entity: "event type",
    })?;
    let mut event_type = state.store.event_type(&project.id, &name).await?;
    if let Some(description) = input.description {
        event_type.description =
            optional_text("description", description.as_deref(), DESCRIPTION_MAX_LEN)?;
    }
    if let Some(schema) = input.schema {
        event_type.schema = parse_schema(schema)?;
    }
    if let Some(archived) = input.archived {
        event_type.archived = archived;
    }
    event_type.updated_at = time::now();
    state.store.update_event_type(&event_type).await?;
    state.lookups.event_types.remove(&(
        event_type.project_id.clone(),
        event_type.name.as_str().to_owned(),
    ));
    Ok(Json(event_type.into()))
}
