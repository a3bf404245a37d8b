//! `/v1/api-keys`: bearer keys with a role and a project scope (admin only). The token is shown
//! once, in the create answer; Herald keeps only its hash.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::api_key::ApiKey;
use herald_core::auth::{Action, Role};
use herald_core::id::{ApiKeyId, ProjectId};
use herald_core::openapi;
use herald_core::secret::ApiKeyToken;
use herald_core::time;
use herald_core::validation::{NAME_MAX_LEN, text};
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::auth::Caller;
use crate::extract::{JsonBody, ListResponse, PageParams, QueryParams};
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    id: ApiKeyId,
    name: String,
    role: Role,
    /// The project the key is scoped to; `null` for admin keys.
    project_id: Option<ProjectId>,
    /// The token's first characters, to tell keys apart.
    prefix: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    /// The bearer token: present only in the answer that created the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role,
            project_id: k.project,
            prefix: k.token_prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            token: None,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(schema_with = openapi::name)]
    name: String,
    /// `admin`, `project_admin`, `project_viewer` or `publisher`.
    role: Role,
    /// Project id or name: required for every role but `admin`, which takes none.
    project: Option<String>,
}

/// Create an API key; the answer holds its token, shown this once.
#[utoipa::path(post, operation_id = "createApiKey", path = "/v1/api-keys", tag = "API keys", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(input): JsonBody<CreateApiKey>,
) -> Result<(StatusCode, Json<ApiKeyView>), ApiError> {
    caller.require(Action::ManageApiKeys)?;
    let name = text("name", &input.name, NAME_MAX_LEN)?;
    let project = match &input.project {
        Some(reference) => Some(
            caller
                .project(&state, reference, Action::ManageApiKeys)
                .await?
                .id,
        ),
        None => None,
    };
    let token = ApiKeyToken::generate();
    let key = ApiKey::issue(name, input.role, project, token.clone(), time::now())?;
    state.store.create_api_key(&key).await?;
    let mut view = ApiKeyView::from(key);
    view.token = Some(token.expose().to_owned());
    Ok((StatusCode::CREATED, Json(view)))
}

/// List API keys, newest first, revoked ones included.
#[utoipa::path(get, operation_id = "listApiKeys", path = "/v1/api-keys", tag = "API keys", params(PageParams),
    responses((status = 200, body = ListResponse<ApiKeyView>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Json<ListResponse<ApiKeyView>>, ApiError> {
    caller.require(Action::ManageApiKeys)?;
    let page = params.request()?;
    let found = state.store.list_api_keys(&page).await?;
    Ok(Json(ListResponse::from_page(found, ApiKeyView::from)))
}

/// Revoke an API key: it stops working at once. Revoking twice is harmless. The last active
/// admin key cannot be revoked (409), so the installation always keeps one.
#[utoipa::path(delete, operation_id = "revokeApiKey", path = "/v1/api-keys/{id}", tag = "API keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    caller.require(Action::ManageApiKeys)?;
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::NotFound { entity: "API key" })?;
    let revoked = state.store.revoke_api_key(&id, time::now()).await?;
    // The key must stop working at once: forget every cached key.
    state.lookups.keys.clear();
    Ok(Json(revoked.into()))
}
