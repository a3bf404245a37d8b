//! What every task of the engine shares ([`Core`]), and the reads they share through it: the
//! webhook a send needs (with the retry policy that applies) and a project's subscribed
//! webhooks a publish is matched against.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use herald_core::id::{DeliveryId, ProjectId, WebhookId};
use herald_core::retry;
use herald_core::secret::SigningSecret;
use herald_core::time::{self, Timestamp};
use herald_core::webhook::{RetryPolicy, Webhook};
use herald_store::{AttemptRecord, Store, StoreError, StoreResult};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::dispatcher::Dispatcher;
use crate::engine::EngineConfig;
use crate::guard::DestinationPolicy;
use crate::send::Sender;
use crate::writes::Writes;

/// What a send needs about one webhook.
#[derive(Debug)]
pub(crate) struct WebhookEntry {
    pub webhook: Webhook,
    /// The retry policy that applies: the webhook's, its preset's, its project's or the
    /// server's.
    pub policy: RetryPolicy,
    /// Last success and failure, for payloads that carry them (CloudBlue's).
    pub last: Mutex<(Option<Timestamp>, Option<Timestamp>)>,
}

/// What every task of the engine shares.
#[derive(Debug)]
pub(crate) struct Core {
    pub store: Arc<dyn Store>,
    pub config: EngineConfig,
    pub dispatcher: Dispatcher,
    /// Webhook → what sending to it needs.
    pub webhooks: Cache<WebhookId, Arc<WebhookEntry>>,
    /// Project → its subscribed webhooks (active, disabled, out of order; not pending).
    pub subscriptions: Cache<ProjectId, Arc<Vec<Webhook>>>,
    pub sender: Sender,
    pub writes: Writes,
    pub wake: Notify,
    pub shutdown: CancellationToken,
    pub system_project: ProjectId,
    /// The runtime sends and API handlers run on (the writer may run on a thread of its own).
    pub runtime: tokio::runtime::Handle,
    /// The account-level secret as last read, and when.
    pub account_secret: Mutex<(Option<SigningSecret>, Instant)>,
    /// Where sends may go (the operator's allowed networks).
    pub destinations: Arc<DestinationPolicy>,
    /// Bumped by every rotation through this node: a read of the store begun before a rotation
    /// must not put the replaced secret back.
    pub account_rotations: AtomicU64,
}

/// How long this node signs with the account-level secret it read before reading it again: an
/// admin's rotation through another node reaches this one within it (as webhook changes do).
const ACCOUNT_SECRET_TTL: Duration = Duration::from_secs(2);

/// How long this node uses a webhook, or a project's list of them, as read: changes made
/// through another node reach this one within it; changes through this node at once.
pub(crate) const WEBHOOK_TTL: Duration = Duration::from_secs(2);
pub(crate) const SUBSCRIPTIONS_TTL: Duration = Duration::from_secs(1);
/// Webhooks and projects kept in memory; past it the coldest are read again when needed.
pub(crate) const CACHED: usize = 10_000;

impl Core {
    /// What sending to a webhook needs, or `None` when it no longer exists.
    pub async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<Arc<WebhookEntry>>> {
        match self.webhooks.get_or_load(id, self.load_webhook(id)).await {
            Ok(entry) => Ok(Some(entry)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn load_webhook(&self, id: &WebhookId) -> StoreResult<Arc<WebhookEntry>> {
        let webhook = self.store.webhook(id).await?;
        let project = self.store.project(&webhook.project_id).await.ok();
        let stats = self.store.webhook_stats(id).await.ok();
        let policy = retry::effective(
            webhook.retry_policy.as_ref(),
            webhook.shape.preset,
            project
                .as_ref()
                .and_then(|p| p.settings.retry_policy.as_ref()),
            &self.config.default_retry,
        );
        let last = stats.map_or((None, None), |s| {
            (s.last_success.map(|l| l.0), s.last_failure.map(|l| l.0))
        });
        Ok(Arc::new(WebhookEntry {
            webhook,
            policy,
            last: Mutex::new(last),
        }))
    }

    /// The project's subscribed webhooks, the ones a publish is matched against.
    pub async fn subscribed(&self, project: &ProjectId) -> StoreResult<Arc<Vec<Webhook>>> {
        self.subscriptions
            .get_or_load(project, async {
                Ok(Arc::new(self.store.subscribed_webhooks(project).await?))
            })
            .await
    }

    /// A webhook changed through this node (created, updated, disabled, gone out of order,
    /// deleted): what was read of it, and every project's list of subscribed webhooks, is
    /// stale.
    pub fn webhook_changed(&self, id: &WebhookId) {
        self.webhooks.remove(id);
        self.subscriptions.clear();
    }

    /// Queues an attempt record for the group commit.
    pub async fn record(&self, record: AttemptRecord) {
        self.writes.record(record).await;
    }

    /// The account-level secret to sign with (CloudShare's model), read again from the store
    /// once the copy in memory is older than [`ACCOUNT_SECRET_TTL`]. Only webhooks whose scheme
    /// uses it ask.
    pub async fn account_secret(&self) -> Option<SigningSecret> {
        let (known, read_at) = self
            .account_secret
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if read_at.elapsed() < ACCOUNT_SECRET_TTL {
            return known;
        }
        let rotations = self.account_rotations.load(Ordering::Acquire);
        match self.store.account_secret(&SigningSecret::generate()).await {
            Ok(fresh) => {
                let mut known = self
                    .account_secret
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if self.account_rotations.load(Ordering::Acquire) != rotations {
                    // Rotated while this read ran: what it read may be the replaced secret.
                    return known.0.clone();
                }
                *known = (Some(fresh.clone()), Instant::now());
                Some(fresh)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the account-level secret again; signing with the one known");
                known
            }
        }
    }

    /// Signs with `secret` from now on (an admin rotated it through this node).
    pub fn remember_account_secret(&self, secret: SigningSecret) {
        self.account_rotations.fetch_add(1, Ordering::AcqRel);
        *self
            .account_secret
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (Some(secret), Instant::now());
    }

    /// Gives leases back in the background (nothing waits on it; if it fails they expire).
    pub fn release_later(&self, deliveries: Vec<DeliveryId>) {
        if deliveries.is_empty() {
            return;
        }
        let store = self.store.clone();
        let owner = self.config.node_id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.release(&owner, &deliveries).await {
                tracing::warn!(error = %e, "could not give back leases; they will expire");
            }
        });
    }

    /// Long enough for the lane's queue ahead of it and the send itself, with margin.
    pub fn lease_until(&self, webhook: &Webhook, now: Timestamp) -> Timestamp {
        let rounds = (self.config.lane_queue / self.config.lane_concurrency.max(1)) as u32 + 2;
        let span = webhook.timeout.duration() * rounds + Duration::from_secs(30);
        time::from_millis(
            now.timestamp_millis() + i64::try_from(span.as_millis()).unwrap_or(i64::MAX / 2),
        )
    }
}
