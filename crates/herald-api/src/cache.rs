//! The API's read caches: what every request reads before it can act — the API key, the
//! project, the event type — kept a second or two. Without them a publish costs three database
//! reads; with them, none in steady state. (The project's subscribed webhooks a publish is
//! matched against are the engine's: it decides who gets an event.)
//!
//! Changes made through this node invalidate at once (so a revoked key or an archived event
//! type take effect on the next request here). Changes made through another node sharing the
//! database take effect within the time-to-live.

use std::time::Duration;

use herald_core::auth::Principal;
use herald_core::event_type::EventType;
use herald_core::id::ProjectId;
use herald_core::project::Project;
use herald_delivery::cache::Cache;

/// How long a key, project or event type read here is used without reading it again.
const TTL: Duration = Duration::from_secs(2);
/// Entries kept per cache; past it the coldest are read again when needed.
const CAPACITY: usize = 10_000;

/// The API's read caches.
#[derive(Debug)]
pub struct Lookups {
    /// Token hash → the key's principal.
    pub keys: Cache<String, Principal>,
    /// `{project}` as written in the path (id or name) → the project.
    pub projects: Cache<String, Project>,
    /// (project, event type name) → the event type.
    pub event_types: Cache<(ProjectId, String), EventType>,
}

impl Default for Lookups {
    fn default() -> Self {
        Self {
            keys: Cache::new(TTL, CAPACITY),
            projects: Cache::new(TTL, CAPACITY),
            event_types: Cache::new(TTL, CAPACITY),
        }
    }
}
