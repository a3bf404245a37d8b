//! Health, the OpenAPI document, and "who am I".

use axum::Json;
use axum::response::IntoResponse;
use herald_core::auth::Role;
use herald_core::id::ProjectId;
use serde::Serialize;

use crate::auth::Caller;
use crate::problem::ApiError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    status: &'static str,
}

/// Liveness: answers without authentication.
#[utoipa::path(get, operation_id = "getHealth", path = "/health", tag = "meta", security(()),
    responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, operation_id = "getOpenApiDocument", path = "/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    Json(crate::openapi())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    key_id: String,
    role: Role,
    /// The project the key is scoped to; `null` for admin keys.
    project_id: Option<ProjectId>,
}

/// The API key making the request: its id, role and scope.
#[utoipa::path(get, operation_id = "getMe", path = "/v1/me", tag = "meta",
    responses((status = 200, body = Me), (status = 401, body = crate::problem::Problem)))]
pub async fn whoami(Caller(p): Caller) -> Result<Json<Me>, ApiError> {
    Ok(Json(Me {
        key_id: p.key_id.to_string(),
        role: p.role,
        project_id: p.project,
    }))
}
