//! Roles, what each may do, and the principal a request acts as.
//!
//! The four roles of DESIGN.md. `admin` keys are installation-wide; every other role is scoped to
//! one project and never sees anything outside it.

use serde::{Deserialize, Serialize};

use crate::id::{ApiKeyId, ProjectId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including projects, API keys, deletes and secrets (the seeds' Account Manager).
    Admin,
    /// Manages its project's event types and webhooks, and sees their secrets (self-service portal).
    ProjectAdmin,
    /// Reads its project's webhooks, events, deliveries and statistics; never a secret
    /// (the seeds' Project Manager).
    ProjectViewer,
    /// Publishes events to its project, nothing else.
    Publisher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::ProjectAdmin => "project_admin",
            Self::ProjectViewer => "project_viewer",
            Self::Publisher => "publisher",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// Whether keys of this role are installation-wide (no project scope).
    pub fn is_global(self) -> bool {
        self == Self::Admin
    }

    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Self::Admin => true,
            Self::ProjectAdmin => matches!(
                action,
                ReadProjects
                    | ReadEventTypes
                    | ManageEventTypes
                    | ReadWebhooks
                    | ManageWebhooks
                    | SeeSecrets
                    | Publish
                    | ReadEvents
            ),
            Self::ProjectViewer => {
                matches!(
                    action,
                    ReadProjects | ReadEventTypes | ReadWebhooks | ReadEvents
                )
            }
            Self::Publisher => matches!(action, Publish),
        }
    }
}

/// Everything a request can ask to do, as far as permissions go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ReadProjects,
    ManageProjects,
    ReadEventTypes,
    ManageEventTypes,
    ReadWebhooks,
    ManageWebhooks,
    SeeSecrets,
    Publish,
    ReadEvents,
    ManageApiKeys,
    /// Read the installation's account-level signing secret (CloudShare's model): admins only.
    ReadAccountSecret,
}

/// Who a request acts as: the API key it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: ApiKeyId,
    pub role: Role,
    /// `None` for admin keys.
    pub project: Option<ProjectId>,
}

impl Principal {
    pub fn may(&self, action: Action) -> bool {
        self.role.may(action)
    }

    /// Whether this principal may know that anything in `project` exists.
    pub fn sees(&self, project: &ProjectId) -> bool {
        self.project.as_ref().is_none_or(|p| p == project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_never_see_secrets_and_publishers_only_publish() {
        assert!(!Role::ProjectViewer.may(Action::SeeSecrets));
        assert!(!Role::ProjectViewer.may(Action::ManageWebhooks));
        assert!(Role::Publisher.may(Action::Publish));
        for a in [
            Action::ReadWebhooks,
            Action::ReadEvents,
            Action::ReadEventTypes,
        ] {
            assert!(!Role::Publisher.may(a));
        }
        assert!(!Role::ProjectAdmin.may(Action::ManageApiKeys));
        assert!(!Role::ProjectAdmin.may(Action::ManageProjects));
        for role in [Role::ProjectAdmin, Role::ProjectViewer, Role::Publisher] {
            assert!(!role.may(Action::ReadAccountSecret), "{role:?}");
        }
        assert!(Role::Admin.may(Action::ReadAccountSecret));
    }

    #[test]
    fn scoped_principals_see_only_their_project() {
        let a = ProjectId::new();
        let p = Principal {
            key_id: ApiKeyId::new(),
            role: Role::ProjectViewer,
            project: Some(a.clone()),
        };
        assert!(p.sees(&a));
        assert!(!p.sees(&ProjectId::new()));
    }
}
