//! API keys: bearer tokens with a role and, except for admins, one project scope.
//! Only the token's hash is stored.

use crate::auth::{Principal, Role};
use crate::id::{ApiKeyId, ProjectId};
use crate::secret::ApiKeyToken;
use crate::time::Timestamp;
use crate::validation::InvalidField;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub role: Role,
    pub project: Option<ProjectId>,
    pub token_hash: String,
    pub token_prefix: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    /// Makes a key and its token; the token is returned once and never stored.
    pub fn issue(
        name: String,
        role: Role,
        project: Option<ProjectId>,
        token: ApiKeyToken,
        now: Timestamp,
    ) -> Result<Self, InvalidField> {
        match (role.is_global(), &project) {
            (true, Some(_)) => {
                return Err(InvalidField::new(
                    "project",
                    "admin keys are installation-wide and take no project",
                ));
            }
            (false, None) => {
                return Err(InvalidField::new(
                    "project",
                    format!("is required for the {} role", role.as_str()),
                ));
            }
            _ => {}
        }
        Ok(Self {
            id: ApiKeyId::new(),
            name,
            role,
            project,
            token_hash: token.hash(),
            token_prefix: token.display_prefix(),
            created_at: now,
            revoked_at: None,
        })
    }

    pub fn principal(&self) -> Principal {
        Principal {
            key_id: self.id.clone(),
            role: self.role,
            project: self.project.clone(),
        }
    }
}
