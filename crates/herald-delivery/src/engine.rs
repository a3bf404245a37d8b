//! The engine's handle and its life cycle.
//!
//! [`Engine::start`] opens nothing new: it takes the store, frees stale leases (SQLite only: one
//! process owns the file), makes sure the system project exists, and starts the writer, the
//! poller and the pruner. [`Engine::shutdown`] stops claiming, gives back the leases of queued
//! work, lets in-flight sends finish within the deadline, and commits every record before the
//! writer stops.

use std::sync::Arc;
use std::time::Duration;

use herald_core::attempt::{Attempt, AttemptTrigger};
use herald_core::event::Event;
use herald_core::event_type::{EventType, EventTypeName};
use herald_core::id::{ProjectId, WebhookId};
use herald_core::project::{Project, ProjectName};
use herald_core::secret::SigningSecret;
use herald_core::time;
use herald_core::webhook::{RetryPolicy, Webhook, WebhookStatus};
use herald_store::{Published, Store, StoreError};
use ipnet::IpNet;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::dispatcher::Dispatcher;
use crate::error::EngineError;
use crate::guard::DestinationPolicy;
use crate::publish::out_of_order_type;
use crate::send::Sender;
use crate::shared::{CACHED, Core, SUBSCRIPTIONS_TTL, WEBHOOK_TTL};
use crate::writes::Writes;

/// The engine's settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This node's name in leases: unique per start, unless the operator named the node.
    pub node_id: String,
    /// The operator named this node (`node_id`), so leases under that name left by a previous
    /// run of this node are taken back at start.
    pub node_id_is_stable: bool,
    /// Concurrent sends per webhook.
    pub lane_concurrency: usize,
    /// Deliveries held in memory per webhook beyond those being sent.
    pub lane_queue: usize,
    /// Concurrent sends in all.
    pub global_concurrency: usize,
    /// How often due work is looked for in the store.
    pub poll_interval: Duration,
    pub default_retry: RetryPolicy,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// Herald's public base URL (CloudBlue's `api_url`).
    pub api_url: String,
    /// The installation's account-level signing secret (CloudShare's model).
    pub account_secret: Option<SigningSecret>,
    pub allow_http: bool,
    /// Non-public networks deliveries may go to anyway.
    pub allowed_networks: Vec<IpNet>,
    pub retention_days: u32,
    pub prune_interval: Duration,
    pub prune_batch: u32,
    /// Most writes per group commit.
    pub max_batch: usize,
    /// The event type name of validation events.
    pub validation_event: String,
    /// The project operational events (`webhook.out_of_order`) are published to.
    pub system_project: String,
    /// How long shutdown waits for in-flight sends.
    pub shutdown_deadline: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: format!("node_{}", ulid::Ulid::new()),
            node_id_is_stable: false,
            lane_concurrency: 4,
            lane_queue: 64,
            global_concurrency: 512,
            poll_interval: Duration::from_secs(1),
            default_retry: herald_core::retry::server_default(),
            max_retry_after: Duration::from_secs(3600),
            api_url: "http://127.0.0.1:8080/v1/".into(),
            account_secret: None,
            allow_http: false,
            allowed_networks: Vec::new(),
            retention_days: 30,
            prune_interval: Duration::from_secs(60),
            prune_batch: 500,
            max_batch: 1024,
            validation_event: "webhook.validate".into(),
            system_project: "system".into(),
            shutdown_deadline: Duration::from_secs(10),
        }
    }
}

/// The running engine. Cheap to clone; every clone drives the same engine.
#[derive(Clone, Debug)]
pub struct Engine {
    core: Arc<Core>,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Engine {
    pub async fn start(store: Arc<dyn Store>, config: EngineConfig) -> Result<Self, EngineError> {
        let freed = if store.owned_by_one_process() {
            store.release_all_leases().await?
        } else if config.node_id_is_stable {
            store.release_leases_of(&config.node_id).await?
        } else {
            0
        };
        if freed > 0 {
            tracing::info!(
                deliveries = freed,
                "took back deliveries leased by a previous run"
            );
        }
        let system_project = ensure_system_project(store.as_ref(), &config.system_project).await?;
        // One policy for where sends may go: the client checks every address it connects to,
        // and the API asks it of a webhook's URL when it is saved.
        let destinations = Arc::new(DestinationPolicy {
            allowed: config.allowed_networks.clone(),
        });
        let sender = Sender::new(
            destinations.clone(),
            config.allow_http,
            // Many webhooks often share one receiver host; every send in flight may come back
            // to the pool, so it keeps as many idle connections as can be in flight — and,
            // across all hosts, twice that: enough for the busy ones, bounded however many
            // hosts there are.
            config.global_concurrency.max(8),
            config.global_concurrency.max(8) * 2,
        )?;
        let (writes, queue) = Writes::channel(config.max_batch * 8);
        let core = Arc::new(Core {
            dispatcher: Dispatcher::new(
                config.global_concurrency,
                config.lane_concurrency,
                config.lane_queue,
            ),
            webhooks: Cache::new(WEBHOOK_TTL, CACHED),
            subscriptions: Cache::new(SUBSCRIPTIONS_TTL, CACHED),
            store,
            sender,
            writes,
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
            system_project,
            runtime: tokio::runtime::Handle::current(),
            account_secret: std::sync::Mutex::new((
                config.account_secret.clone(),
                std::time::Instant::now(),
            )),
            account_rotations: std::sync::atomic::AtomicU64::new(0),
            destinations,
            config,
        });
        let mut tasks = vec![tokio::spawn(crate::pruner::run(core.clone()))];
        if core.store.wants_writer_thread() {
            tasks.push(crate::writer::start_thread(core.clone(), queue)?);
        } else {
            tasks.push(tokio::spawn(crate::writer::run(core.clone(), queue)));
        }
        // What is already due (retries, deliveries a previous run left) is claimed before
        // Herald answers anything, not at the poller's first turn, whenever the runtime gets
        // to it: a late first turn found work published since and filled lanes the lane rules
        // had left alone (a failing webhook refilled at once).
        if let Err(e) = crate::poller::poll_once(&core).await {
            tracing::warn!(error = %e, "looking for due deliveries at start failed; the poller tries again");
        }
        tasks.push(tokio::spawn(crate::poller::run(core.clone())));
        Ok(Self {
            core,
            tasks: Arc::new(std::sync::Mutex::new(tasks)),
        })
    }

    /// Publishes the event to its project's subscribed webhooks whose filter matches it,
    /// answering once the event and one delivery per match are durable; the deliveries are
    /// then sent from memory — except those of a disabled or out-of-order webhook, which are
    /// held in the store until it is active. An event id seen before is answered with the
    /// first event ([`Published::Duplicate`]) and creates nothing.
    pub async fn publish(&self, event: Event) -> Result<Published, EngineError> {
        crate::publish::publish(&self.core, event).await
    }

    /// Sends one event to one webhook now, whatever its filter and status, and returns the
    /// attempt once it is recorded. `Manual` (Trigger now) reactivates an out-of-order webhook
    /// on success; `Validation` activates a pending one.
    pub async fn send_now(
        &self,
        webhook: &Webhook,
        event_type: Option<EventTypeName>,
        data: Value,
        trigger: AttemptTrigger,
    ) -> Result<Attempt, EngineError> {
        // Run to completion even if the caller goes away (a client that hangs up): the attempt
        // is then still recorded, and never left to be re-sent as a scheduled delivery.
        let engine = self.clone();
        let webhook = webhook.clone();
        tokio::spawn(async move {
            let attempt =
                crate::trigger::send_now(&engine.core, &webhook, event_type, data, trigger).await?;
            engine.webhook_changed(&webhook.id);
            Ok(attempt)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// A webhook was just created: cached lists of webhooks are stale. It has no deliveries
    /// yet, so there is nothing for the poller to look for. (Every change starts here too.)
    pub fn webhook_created(&self, id: &WebhookId) {
        self.core.webhook_changed(id);
    }

    /// A webhook was changed through this node: forget the cached copy; if it can no longer
    /// receive, give back what its lane holds (its deliveries are held); if it is active (an
    /// enable, a successful Trigger now or Validate), wake the poller so what it held flows at
    /// once, oldest first.
    pub fn webhook_changed(&self, id: &WebhookId) {
        self.webhook_created(id);
        let core = self.core.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let active =
                matches!(core.store.webhook(&id).await, Ok(w) if w.status == WebhookStatus::Active);
            if active {
                core.wake.notify_one();
            } else {
                let drained = core.dispatcher.drain(&id);
                core.release_later(drained);
            }
        });
    }

    /// Replaces the installation's account-level secret (an admin's rotation). Deliveries signed
    /// with it switch at once on this node, and on the others once they read it again
    /// (within two seconds): its schemes carry one signature, so there is no grace period.
    pub async fn rotate_account_secret(&self, secret: SigningSecret) -> Result<(), EngineError> {
        self.core.store.set_account_secret(&secret).await?;
        self.core.remember_account_secret(secret);
        Ok(())
    }

    /// Why Herald would refuse to send to `url`, when its host is an IP literal the outbound
    /// guard refuses (private, loopback, link-local, metadata…): such a webhook could never be
    /// delivered. Names are judged when sending, by the addresses they resolve to then.
    pub fn refused_destination(&self, url: &url::Url) -> Option<crate::guard::Refused> {
        crate::guard::check_literal(&self.core.destinations, &url.host()?).err()
    }

    /// Looks for due work now rather than at the next poll (after a replay, say).
    pub fn wake(&self) {
        self.core.wake.notify_one();
    }

    /// Deliveries held in memory (queued or being sent).
    pub fn in_memory(&self) -> usize {
        self.core.dispatcher.in_memory()
    }

    pub fn system_project(&self) -> &ProjectId {
        &self.core.system_project
    }

    pub fn node_id(&self) -> &str {
        &self.core.config.node_id
    }

    /// Stops the engine: no new claims, queued leases given back, in-flight sends finished
    /// within the deadline, every record committed.
    pub async fn shutdown(&self) {
        let core = &self.core;
        core.shutdown.cancel();
        let queued = core.dispatcher.stop();
        if !queued.is_empty()
            && let Err(e) = core.store.release(&core.config.node_id, &queued).await
        {
            tracing::warn!(error = %e, "could not give back queued leases; they will expire");
        }
        if tokio::time::timeout(
            core.config.shutdown_deadline,
            core.dispatcher.tracker.wait(),
        )
        .await
        .is_err()
        {
            tracing::warn!(
                "sends still in flight at the shutdown deadline; their leases will expire"
            );
        }
        core.writes.stop().await;
        let tasks: Vec<JoinHandle<()>> = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            task.abort();
        }
    }
}

/// The project operational events go to, with the event types users can subscribe to.
async fn ensure_system_project(store: &dyn Store, name: &str) -> Result<ProjectId, EngineError> {
    let name = ProjectName::parse(name).map_err(|e| StoreError::Corrupt {
        what: "system project name",
        source: Box::new(e),
    })?;
    let project = match store.project_by_name(&name).await {
        Ok(p) => p,
        Err(StoreError::NotFound { .. }) => {
            let p = Project::new(name.clone(), time::now());
            match store.create_project(&p).await {
                Ok(()) => p,
                // Another node made it first.
                Err(StoreError::Conflict { .. }) => store.project_by_name(&name).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let name = out_of_order_type();
    if let Err(StoreError::NotFound { .. }) = store.event_type(&project.id, &name).await {
        let now = time::now();
        let event_type = EventType {
            project_id: project.id.clone(),
            name,
            description: Some("A webhook went out of order: its deliveries kept failing and Herald stopped sending to it.".into()),
            schema: None,
            archived: false,
            created_at: now,
            updated_at: now,
        };
        match store.create_event_type(&event_type).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(project.id)
}
