//! `/v1/projects`: create, list, get, rename, delete. Projects are referenced by id or name.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::auth::Action;
use herald_core::id::ProjectId;
use herald_core::project::{Project, ProjectName};
use herald_core::time;
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::auth::Caller;
use crate::extract::{JsonBody, ListResponse, PageParams, QueryParams};
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    id: ProjectId,
    name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        Self {
            id: p.id,
            name: p.name.into(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    /// A URL-safe slug (lower-case letters, digits, `-`, `_`, `.`), usable in place of the id.
    name: String,
}

impl ProjectInput {
    fn name(&self) -> Result<ProjectName, ApiError> {
        Ok(ProjectName::parse(&self.name)?)
    }
}

/// Create a project (admin).
#[utoipa::path(post, path = "/v1/projects", tag = "projects", request_body = ProjectInput,
    responses((status = 201, body = ProjectView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(input): JsonBody<ProjectInput>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require(Action::ManageProjects)?;
    let project = Project::new(input.name()?, time::now());
    state.store.create_project(&project).await?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// List projects, newest first. Scoped keys see only their own project.
#[utoipa::path(get, path = "/v1/projects", tag = "projects", params(PageParams),
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
#[utoipa::path(get, path = "/v1/projects/{project}", tag = "projects",
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

/// Rename a project (admin).
#[utoipa::path(patch, path = "/v1/projects/{project}", tag = "projects", request_body = ProjectInput,
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = ProjectView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rename(
    State(state): State<ApiState>,
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(input): JsonBody<ProjectInput>,
) -> Result<Json<ProjectView>, ApiError> {
    let project = caller
        .project(&state, &project, Action::ManageProjects)
        .await?;
    let renamed = state
        .store
        .rename_project(&project.id, &input.name()?, time::now())
        .await?;
    Ok(Json(renamed.into()))
}

/// Delete a project and everything in it: event types, webhooks, events, deliveries, and the
/// keys scoped to it (admin).
#[utoipa::path(delete, path = "/v1/projects/{project}", tag = "projects",
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
    Ok(StatusCode::NO_CONTENT)
}
