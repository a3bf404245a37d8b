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
use herald_core::delivery::Delivery;
use herald_core::event::{Event, EventId};
use herald_core::event_type::{EventType, EventTypeName};
use herald_core::id::{DeliveryId, ProjectId, WebhookId};
use herald_core::project::{Project, ProjectName};
use herald_core::secret::SigningSecret;
use herald_core::time::{self, Timestamp};
use herald_core::webhook::{RetryPolicy, Webhook, WebhookStatus};
use herald_store::{AttemptRecord, Lease, NewPublish, Published, Store, StoreError};
use ipnet::IpNet;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::WebhookCache;
use crate::dispatcher::{Dispatcher, Job};
use crate::guard::DestinationPolicy;
use crate::request::Outbound;
use crate::send::Sender;
use crate::writer::Op;

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

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Herald is shutting down")]
    ShuttingDown,
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] rustls::Error),
    #[error("could not start the writer thread: {0}")]
    WriterThread(#[from] std::io::Error),
}

/// What every task of the engine shares.
#[derive(Debug)]
pub(crate) struct Core {
    pub store: Arc<dyn Store>,
    pub config: EngineConfig,
    pub dispatcher: Dispatcher,
    pub cache: WebhookCache,
    pub sender: Sender,
    pub writes: mpsc::Sender<Op>,
    pub wake: Notify,
    pub shutdown: CancellationToken,
    pub system_project: ProjectId,
    /// Bumped whenever a webhook changes through this node, so caches of webhooks know to reload.
    pub generation: std::sync::atomic::AtomicU64,
    /// The runtime sends and API handlers run on (the writer may run on a thread of its own).
    pub runtime: tokio::runtime::Handle,
    /// The account-level secret as last read, and when.
    pub account_secret: std::sync::Mutex<(Option<SigningSecret>, std::time::Instant)>,
    /// Where sends may go (the operator's allowed networks).
    pub destinations: Arc<DestinationPolicy>,
    /// Bumped by every rotation through this node: a read of the store begun before a rotation
    /// must not put the replaced secret back.
    pub account_rotations: std::sync::atomic::AtomicU64,
}

/// How long this node signs with the account-level secret it read before reading it again: an
/// admin's rotation through another node reaches this one within it (as webhook changes do).
const ACCOUNT_SECRET_TTL: Duration = Duration::from_secs(2);

impl Core {
    /// Queues an attempt record for the group commit.
    pub async fn record(&self, record: AttemptRecord) {
        if self
            .writes
            .send(Op::Record {
                record,
                reply: None,
            })
            .await
            .is_err()
        {
            tracing::warn!(
                "the writer has stopped; the lease will expire and the delivery be retried"
            );
        }
    }

    /// The account-level secret to sign with (CloudShare's model), read again from the store
    /// once the copy in memory is older than [`ACCOUNT_SECRET_TTL`]. Only webhooks whose scheme
    /// uses it ask.
    pub async fn account_secret(&self) -> Option<SigningSecret> {
        let (known, read_at) = self
            .account_secret
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if read_at.elapsed() < ACCOUNT_SECRET_TTL {
            return known;
        }
        let rotations = self
            .account_rotations
            .load(std::sync::atomic::Ordering::Acquire);
        match self.store.account_secret(&SigningSecret::generate()).await {
            Ok(fresh) => {
                let mut known = self
                    .account_secret
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if self
                    .account_rotations
                    .load(std::sync::atomic::Ordering::Acquire)
                    != rotations
                {
                    // Rotated while this read ran: what it read may be the replaced secret.
                    return known.0.clone();
                }
                *known = (Some(fresh.clone()), std::time::Instant::now());
                Some(fresh)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the account-level secret again; signing with the one known");
                known
            }
        }
    }

    fn remember_account_secret(&self, secret: SigningSecret) {
        *self
            .account_secret
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (Some(secret), std::time::Instant::now());
    }

    /// Gives leases back in the background (nothing waits on it; if it fails they expire).
    pub fn release_later(self: &Core, deliveries: Vec<DeliveryId>) {
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

    /// Notes that some webhook changed (status, settings): caches reload.
    pub fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// A webhook went out of order in a commit: stop its lane and tell the system project.
    pub fn went_out_of_order(self: &Arc<Core>, webhook: WebhookId) {
        self.bump();
        self.cache.invalidate(&webhook);
        let drained = self.dispatcher.drain(&webhook);
        self.release_later(drained);
        let core = self.clone();
        tokio::spawn(async move {
            let Ok(w) = core.store.webhook(&webhook).await else {
                return;
            };
            tracing::warn!(webhook_id = %w.id, reason = w.status_reason.as_deref().unwrap_or(""), "webhook went out of order");
            let event = Event {
                id: EventId::generate(),
                project_id: core.system_project.clone(),
                event_type: out_of_order_type(),
                occurred_at: time::now(),
                data: json!({
                    "webhook_id": w.id,
                    "webhook_name": w.name,
                    "project_id": w.project_id,
                    "url": w.url.redacted(),
                    "reason": w.status_reason,
                }),
                actor: None,
                created_at: time::now(),
            };
            if let Err(e) = publish_matching(&core, event).await {
                tracing::error!(error = %e, "could not publish webhook.out_of_order");
            }
        });
    }
}

/// The name a webhook's validation event goes out under: its project's choice, else its
/// preset's (`Webhook Validate` for `event-data`, as the case-management cloud sends it), else
/// the server's.
fn validation_event_name(project: &Project, webhook: &Webhook, server: &str) -> EventTypeName {
    project
        .settings
        .validation_event
        .clone()
        .or_else(|| {
            webhook
                .shape
                .preset
                .and_then(|p| p.validation_event())
                .and_then(|name| EventTypeName::parse(name).ok())
        })
        .or_else(|| EventTypeName::parse(server).ok())
        .unwrap_or_else(out_of_order_type)
}

fn out_of_order_type() -> EventTypeName {
    EventTypeName::parse("webhook.out_of_order").unwrap_or_else(|_| unreachable!("a valid name"))
}

/// Publishes to the event's project, matching its subscribed webhooks (a paused one holds its
/// delivery).
async fn publish_matching(core: &Arc<Core>, event: Event) -> Result<Published, EngineError> {
    let webhooks = core.store.subscribed_webhooks(&event.project_id).await?;
    let matching: Vec<&Webhook> = webhooks
        .iter()
        .filter(|w| w.filter.matches(&event.event_type))
        .collect();
    publish(core, event, &matching).await
}

async fn publish(
    core: &Arc<Core>,
    event: Event,
    webhooks: &[&Webhook],
) -> Result<Published, EngineError> {
    let now = event.created_at;
    let mut deliveries = Vec::with_capacity(webhooks.len());
    let mut reservations = Vec::new();
    for webhook in webhooks {
        let delivery = Delivery::new(
            event.project_id.clone(),
            event.id.clone(),
            webhook.id.clone(),
            now,
        );
        if webhook.status.holds_deliveries() {
            // Held: committed unleased, it waits in the store (the poller claims only active
            // webhooks' work) and flows when the webhook is active again. No lane room.
            deliveries.push((delivery, None));
            continue;
        }
        let reservation = core.dispatcher.reserve(&webhook.id, 1);
        let lease = (reservation.count() > 0 && !core.shutdown.is_cancelled()).then(|| Lease {
            owner: core.config.node_id.clone(),
            until: core.lease_until(webhook, now),
        });
        if lease.is_some() {
            reservations.push(reservation);
        }
        deliveries.push((delivery, lease));
    }
    let (reply, answer) = oneshot::channel();
    let op = Op::Publish {
        publish: NewPublish { event, deliveries },
        dispatch: true,
        reservations,
        reply,
    };
    core.writes
        .send(op)
        .await
        .map_err(|_| EngineError::ShuttingDown)?;
    Ok(answer.await.map_err(|_| EngineError::ShuttingDown)??)
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
        let (writes, queue) = mpsc::channel(config.max_batch * 8);
        let core = Arc::new(Core {
            dispatcher: Dispatcher::new(
                config.global_concurrency,
                config.lane_concurrency,
                config.lane_queue,
            ),
            cache: WebhookCache::new(Duration::from_secs(2)),
            store,
            sender,
            writes,
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
            system_project,
            generation: std::sync::atomic::AtomicU64::new(0),
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

    /// Commits the event with one delivery per webhook given (the caller has matched them),
    /// answering once it is durable; the deliveries are then sent from memory — except those of
    /// a disabled or out-of-order webhook, which are held in the store until it is active.
    pub async fn publish(
        &self,
        event: Event,
        webhooks: &[&Webhook],
    ) -> Result<Published, EngineError> {
        publish(&self.core, event, webhooks).await
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
            engine
                .send_now_here(&webhook, event_type, data, trigger)
                .await
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    async fn send_now_here(
        &self,
        webhook: &Webhook,
        event_type: Option<EventTypeName>,
        data: Value,
        trigger: AttemptTrigger,
    ) -> Result<Attempt, EngineError> {
        let core = &self.core;
        let now = time::now();
        let name = match (event_type, trigger) {
            (Some(name), _) => name,
            (None, AttemptTrigger::Validation) => {
                let project = core.store.project(&webhook.project_id).await?;
                validation_event_name(&project, webhook, &core.config.validation_event)
            }
            (None, _) => {
                EventTypeName::parse("webhook.test").unwrap_or_else(|_| out_of_order_type())
            }
        };
        let event = Event {
            id: EventId::generate(),
            project_id: webhook.project_id.clone(),
            event_type: name,
            occurred_at: now,
            data,
            actor: None,
            created_at: now,
        };
        let delivery = Delivery::new(
            webhook.project_id.clone(),
            event.id.clone(),
            webhook.id.clone(),
            now,
        );
        // Leased to this node, but not handed to a lane: it is sent right here.
        let lease = Lease {
            owner: core.config.node_id.clone(),
            until: core.lease_until(webhook, now),
        };
        let (reply, answer) = oneshot::channel();
        let publish = NewPublish {
            event: event.clone(),
            deliveries: vec![(delivery.clone(), Some(lease.clone()))],
        };
        core.writes
            .send(Op::Publish {
                publish,
                dispatch: false,
                reservations: Vec::new(),
                reply,
            })
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        answer.await.map_err(|_| EngineError::ShuttingDown)??;

        let entry = crate::cache::WebhookEntry {
            webhook: webhook.clone(),
            policy: core.config.default_retry.clone(),
            last: std::sync::Mutex::new((None, None)),
        };
        let job = Job {
            delivery,
            event: Arc::new(Outbound::new(event)),
            lease_until: lease.until,
        };
        let (attempt, retry_after) = crate::attempt::try_once(core, &entry, &job, trigger).await;
        let record = crate::attempt::decide(core, &entry, &job, attempt.clone(), retry_after);
        let (reply, answer) = oneshot::channel();
        core.writes
            .send(Op::Record {
                record,
                reply: Some(reply),
            })
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        answer.await.map_err(|_| EngineError::ShuttingDown)??;
        self.webhook_changed(&webhook.id);
        Ok(attempt)
    }

    /// A webhook was just created: cached lists of webhooks are stale. It has no deliveries
    /// yet, so there is nothing for the poller to look for. (Every change starts here too.)
    pub fn webhook_created(&self, id: &WebhookId) {
        self.core.bump();
        self.core.cache.invalidate(id);
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

    /// Changes whenever a webhook changed through this node (created, updated, disabled, gone
    /// out of order, deleted): a cache of webhooks taken at another value is stale.
    pub fn webhooks_generation(&self) -> u64 {
        self.core
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces the installation's account-level secret (an admin's rotation). Deliveries signed
    /// with it switch at once on this node, and on the others once they read it again
    /// (within two seconds): its schemes carry one signature, so there is no grace period.
    pub async fn rotate_account_secret(&self, secret: SigningSecret) -> Result<(), EngineError> {
        self.core.store.set_account_secret(&secret).await?;
        self.core
            .account_rotations
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
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
        let (done, stopped) = oneshot::channel();
        if core.writes.send(Op::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
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
