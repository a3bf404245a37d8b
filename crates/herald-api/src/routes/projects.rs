//! `/v1/projects`: create, list, get, rename, delete. Projects are referenced by id or name.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::auth::Action;
use herald_core::event_type::EventTypeName;
use herald_core::id::ProjectId;
use herald_core::openapi;
use herald_core::project::{Project, ProjectName, ProjectSettings};
use herald_core::time;
use herald_core::webhook::RetryPolicy;
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::auth::Caller;
use crate::extract::{
    JsonBody, ListResponse, PageParams, QueryParams, non_null, object_or_null, present,
    present_object,
};
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    id: ProjectId,
    name: String,
    /// Retry policy for webhooks that set none and whose preset brings none (`connect` has its
    /// own); `null`: the server's default.
    retry_policy: Option<RetryPolicy>,
    /// Days events, deliveries and attempts are kept; `null`: the server's default.
    retention_days: Option<u32>,
    /// New webhooks start `pending` until their validation event succeeds.
    require_validation: bool,
    /// The name validation events go out under; `null`: the webhook's preset's
    /// (`Webhook Validate` for `event-data`), else the server's (`webhook.validate` unless
    /// configured).
    validation_event: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        Self {
            id: p.id,
            name: p.name.into(),
            retry_policy: p.settings.retry_policy,
            retention_days: p.settings.retention_days,
            require_validation: p.settings.require_validation,
            validation_event: p.settings.validation_event.map(Into::into),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(schema_with = openapi::project_name)]
    name: String,
    #[serde(default, deserialize_with = "object_or_null")]
    retry_policy: Option<RetryPolicy>,
    #[schema(schema_with = openapi::retention_days)]
    retention_days: Option<u32>,
    require_validation: Option<bool>,
    /// The name validation events go out under (an event type name, e.g. `Webhook Validate`);
    /// it need not be an event type of the project.
    #[schema(schema_with = openapi::optional_event_type_name)]
    validation_event: Option<String>,
}

/// Fields absent stay as they are; `null` returns `retry_policy`, `retention_days` and
/// `validation_event` to their defaults, and is refused for `name` and `require_validation`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    #[serde(default, deserialize_with = "non_null")]
    #[schema(schema_with = openapi::project_name)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present_object")]
    #[schema(value_type = Option<RetryPolicy>)]
    retry_policy: Option<Option<RetryPolicy>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = openapi::retention_days)]
    retention_days: Option<Option<u32>>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    require_validation: Option<bool>,
    /// `null` returns it to the preset's, else the server's name.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = openapi::optional_event_type_name)]
    validation_event: Option<Option<String>>,
}

fn retry_policy(p: Option<RetryPolicy>) -> Result<Option<RetryPolicy>, ApiError> {
    Ok(
        p.map(|p| p.validate().map_err(|e| e.within("retry_policy")))
            .transpose()?,
    )
}

fn validation_event(name: Option<String>) -> Result<Option<EventTypeName>, ApiError> {
    Ok(name
        .map(|n| EventTypeName::parse(&n).map_err(|e| e.within("validation_event")))
        .transpose()?)
}

fn retention(days: Option<u32>) -> Result<Option<u32>, ApiError> {
    Ok(days.map(ProjectSettings::check_retention).transpose()?)
}

/// Create a project (admin).
#[utoipa::path(post, operation_id = "createProject", path = "/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(input): JsonBody<CreateProject>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require(Action::ManageProjects)?;
    let mut project = Project::new(ProjectName::parse(&input.name)?, time::now());
    project.settings = ProjectSettings {
        retry_policy: retry_policy(input.retry_policy)?,
        retention_days: retention(input.retention_days)?,
        require_validation: input.require_validation.unwrap_or(false),
        validation_event: validation_event(input.validation_event)?,
    };
    state.store.create_project(&project).await?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// List projects, newest first. Scoped keys see only their own project.
#[utoipa::path(get, operation_id = "listProjects", path = "/v1/projects", tag = "projects", params(PageParams),
    responses((status = 200, body = ListResponse<ProjectView>), (status = 400, body = Problem)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Json<ListResponse<ProjectView>>, ApiError> {
    caller.require(Action::ReadProjects)?;
    let page = params.request()?;
    let found = state
        .store
        .list_projects(caller.0.project.as_ref(), &page)
        .await?;
    Ok(Json(ListResponse::from_page(found, ProjectView::from)))
}

/// Get a project by id or name.
#[utoipa::path(get, operation_id = "getProject", path = "/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = ProjectView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    let project = caller
        .project(&state, &project, Action::ReadProjects)
        .await?;
    Ok(Json(project.into()))
}

/// Rename a project or change its settings (admin).
#[utoipa::path(patch, operation_id = "updateProject", path = "/v1/projects/{project}", tag = "projects", request_body = UpdateProject,
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = ProjectView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(input): JsonBody<UpdateProject>,
) -> Result<Json<ProjectView>, ApiError> {
    let mut project = caller
        .project(&state, &project, Action::ManageProjects)
        .await?;
    if let Some(name) = &input.name {
        project.name = ProjectName::parse(name)?;
    }
    if let Some(policy) = input.retry_policy {
        project.settings.retry_policy = retry_policy(policy)?;
    }
    if let Some(days) = input.retention_days {
        project.settings.retention_days = retention(days)?;
    }
    if let Some(required) = input.require_validation {
        project.settings.require_validation = required;
    }
    if let Some(name) = input.validation_event {
        project.settings.validation_event = validation_event(name)?;
    }
    project.updated_at = time::now();
    state.store.update_project(&project).await?;
    state.lookups.projects.clear();
    Ok(Json(project.into()))
}

/// Delete a project and everything in it: event types, webhooks, events, deliveries, and the
/// keys scoped to it (admin).
#[utoipa::path(delete, operation_id = "deleteProject", path = "/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<StatusCode, ApiError> {
    let project = caller
        .project(&state, &project, Action::ManageProjects)
        .await?;
    state.store.delete_project(&project.id).await?;
    state.lookups.projects.clear();
    state.lookups.keys.clear();
    Ok(StatusCode::NO_CONTENT)
}
