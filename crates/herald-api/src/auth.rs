//! Who is calling: the bearer API key, resolved to a [`Principal`], and the checks every handler
//! makes with it.
//!
//! Order of checks, everywhere: the role must allow the action at all (else 403, which says
//! nothing about any resource), then the resource must exist *and* be in the key's scope (else
//! 404, the same answer either way, so a scoped key cannot learn what other projects hold).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use herald_core::auth::{Action, Principal};
use herald_core::id::ProjectId;
use herald_core::project::{Project, ProjectName};
use herald_core::secret::hash_token;
use herald_store::StoreError;

use crate::ApiState;
use crate::problem::ApiError;

/// The caller, authenticated.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "missing API key: send it as `Authorization: Bearer <key>`",
            ))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <key>`",
            ))?;
        let hash = hash_token(token);
        let found = state
            .lookups
            .keys
            .get_or_load(&hash, async {
                state
                    .store
                    .api_key_by_token_hash(&hash)
                    .await
                    .map(|k| k.principal())
            })
            .await;
        match found {
            Ok(principal) => Ok(Self(principal)),
            Err(StoreError::NotFound { .. }) => {
                Err(ApiError::Unauthorized("unknown or revoked API key"))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Caller {
    /// 403 unless the caller's role may do `action` at all.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.0.may(action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                self.0.role.as_str()
            )))
        }
    }

    /// 404 unless the caller may see things in `project`.
    pub fn scope(&self, project: &ProjectId, entity: &'static str) -> Result<(), ApiError> {
        if self.0.sees(project) {
            Ok(())
        } else {
            Err(ApiError::NotFound { entity })
        }
    }

    /// Resolves `{project}` (an id or a name) for `action`, hiding projects out of scope.
    pub async fn project(
        &self,
        state: &ApiState,
        reference: &str,
        action: Action,
    ) -> Result<Project, ApiError> {
        self.require(action)?;
        let found = state
            .lookups
            .projects
            .get_or_load(&reference.to_owned(), async {
                if let Ok(id) = ProjectId::parse(reference) {
                    state.store.project(&id).await
                } else if let Ok(name) = ProjectName::parse(reference) {
                    state.store.project_by_name(&name).await
                } else {
                    Err(StoreError::NotFound { entity: "project" })
                }
            })
            .await?;
        self.scope(&found.id, "project")?;
        Ok(found)
    }
}
