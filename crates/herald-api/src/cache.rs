//! Short-lived caches of what every publish reads: the API key, the project, the event type and
//! the project's subscribed webhooks (all but those pending validation). Without them a publish costs four database reads; with them,
//! none in steady state.
//!
//! Changes made through this node invalidate at once (so a revoked key, a disabled webhook or an
//! archived event type take effect on the next request here). Changes made through another node
//! sharing the database take effect within the time-to-live, a second or two.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use herald_core::auth::Principal;
use herald_core::event_type::EventType;
use herald_core::id::ProjectId;
use herald_core::project::Project;
use herald_core::webhook::Webhook;

/// A map whose entries expire; bounded by clearing when full (entries are cheap to reload).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Bumped by every invalidation: a value loaded across one is not cached, so a load that
    /// read the row just before a revoke cannot put the old value back.
    epoch: std::sync::atomic::AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached value, or `load`'s (cached when it succeeds).
    pub async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        self.get_fresh(key, |_| true, load).await
    }

    /// Like [`get_or_load`](Self::get_or_load), but a cached value that `fresh` rejects is
    /// reloaded too.
    pub async fn get_fresh<E, F>(
        &self,
        key: &K,
        fresh: impl Fn(&V) -> bool,
        load: F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some((at, value)) = self.lock().get(key)
            && at.elapsed() < self.ttl
            && fresh(value)
        {
            return Ok(value.clone());
        }
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        let value = load.await?;
        let mut entries = self.lock();
        if self.epoch.load(std::sync::atomic::Ordering::Acquire) != epoch {
            return Ok(value);
        }
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key.clone(), (Instant::now(), value.clone()));
        Ok(value)
    }

    pub fn remove(&self, key: &K) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        entries.remove(key);
    }

    pub fn clear(&self) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        entries.clear();
    }
}

/// The API's read caches.
#[derive(Debug)]
pub struct Lookups {
    /// Token hash → the key's principal.
    pub keys: TtlCache<String, Principal>,
    /// `{project}` as written in the path (id or name) → the project.
    pub projects: TtlCache<String, Project>,
    /// (project, event type name) → the event type.
    pub event_types: TtlCache<(ProjectId, String), EventType>,
    /// Project → its subscribed webhooks (active, disabled, out of order), with the engine's
    /// webhook generation when read.
    pub webhooks: TtlCache<ProjectId, (u64, Arc<Vec<Webhook>>)>,
}

impl Default for Lookups {
    fn default() -> Self {
        Self {
            keys: TtlCache::new(Duration::from_secs(2), 10_000),
            projects: TtlCache::new(Duration::from_secs(2), 10_000),
            event_types: TtlCache::new(Duration::from_secs(2), 10_000),
            webhooks: TtlCache::new(Duration::from_secs(1), 10_000),
        }
    }
}
