//! A short-lived cache of what sending needs about a webhook: its settings, the retry policy
//! that applies (webhook, project, server), and its last success and failure times. Entries live
//! a couple of seconds, so changes made through another node reach this one quickly; changes made
//! through this node invalidate at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_core::id::WebhookId;
use herald_core::retry;
use herald_core::time::Timestamp;
use herald_core::webhook::{RetryPolicy, Webhook};
use herald_store::{Store, StoreError, StoreResult};

/// What the dispatcher knows about one webhook.
#[derive(Debug)]
pub(crate) struct WebhookEntry {
    pub webhook: Webhook,
    pub policy: RetryPolicy,
    /// Last success and failure, for payloads that carry them (CloudBlue's).
    pub last: Mutex<(Option<Timestamp>, Option<Timestamp>)>,
}

#[derive(Debug)]
pub(crate) struct WebhookCache {
    ttl: Duration,
    entries: Mutex<HashMap<WebhookId, (Instant, Arc<WebhookEntry>)>>,
    /// Bumped by every invalidation: an entry loaded across one is used once but not kept.
    epoch: std::sync::atomic::AtomicU64,
}

impl WebhookCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The webhook's entry, or `None` when it no longer exists.
    pub async fn get(
        &self,
        store: &dyn Store,
        server_policy: &RetryPolicy,
        id: &WebhookId,
    ) -> StoreResult<Option<Arc<WebhookEntry>>> {
        if let Some((at, entry)) = self.lock().get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(entry.clone()));
        }
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        let webhook = match store.webhook(id).await {
            Ok(w) => w,
            Err(StoreError::NotFound { .. }) => {
                self.lock().remove(id);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let project = store.project(&webhook.project_id).await.ok();
        let stats = store.webhook_stats(id).await.ok();
        let policy = retry::effective(
            webhook.retry_policy.as_ref(),
            webhook.shape.preset,
            project
                .as_ref()
                .and_then(|p| p.settings.retry_policy.as_ref()),
            server_policy,
        );
        let last = stats.map_or((None, None), |s| {
            (s.last_success.map(|l| l.0), s.last_failure.map(|l| l.0))
        });
        let entry = Arc::new(WebhookEntry {
            webhook,
            policy,
            last: Mutex::new(last),
        });
        let mut entries = self.lock();
        if self.epoch.load(std::sync::atomic::Ordering::Acquire) == epoch {
            entries.insert(id.clone(), (Instant::now(), entry.clone()));
        }
        Ok(Some(entry))
    }

    pub fn invalidate(&self, id: &WebhookId) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        entries.remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WebhookId, (Instant, Arc<WebhookEntry>)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
