//! Herald's durable store: the one place state lives.
//!
//! [`Store`] is shaped by what the API and the delivery engine need, in domain types. Two
//! implementations: [`sqlite::SqliteStore`] (embedded, the default) and
//! [`postgres::PostgresStore`] (several Herald nodes on one database). Both run the same SQL —
//! written once in `shared.rs` and compiled for each backend — so they cannot drift apart; the
//! conformance suite in `tests/` runs against both to prove it.
//!
//! Layout:
//! - `lib.rs`: the trait, its errors and query types, and [`connect`].
//! - `rows.rs`: database rows and their conversion into domain types.
//! - `shared.rs`: the SQL both backends run (included into each backend module).
//! - `sqlite.rs`, `postgres.rs`: connection set-up, pragmas, migrations.
//! - `testing.rs` (feature `testing`): fresh databases for tests, dropped afterwards.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use herald_core::api_key::ApiKey;
use herald_core::attempt::Attempt;
use herald_core::delivery::Delivery;
use herald_core::delivery::DeliveryStatus;
use herald_core::event::{Event, EventId};
use herald_core::event_type::{EventType, EventTypeName};
use herald_core::id::{ApiKeyId, ProjectId, WebhookId};
use herald_core::id::{AttemptId, DeliveryId};
use herald_core::page::{Page, PageRequest};
use herald_core::project::{Project, ProjectName};
use herald_core::secret::SigningSecret;
use herald_core::time::Timestamp;
use herald_core::webhook::{Webhook, WebhookStatus};

mod batch;
pub mod postgres;
mod rows;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

// What an attempt decided is herald-core's (`decision`); the store records it.
pub use herald_core::decision::{AttemptRecord, OutOfOrderRule, StatusChange};

/// The database behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the store reports that callers branch on. Database failures keep their cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("another {entity} already has this {field}")]
    Conflict {
        entity: &'static str,
        field: &'static str,
    },
    #[error("another Herald process is using {}; one process owns an SQLite data directory (use PostgreSQL for several nodes)", path.display())]
    InUse { path: PathBuf },
    #[error("this is the last active admin key; create another admin key before revoking it")]
    LastAdminKey,
    #[error("the {entity} changed since it was read")]
    Changed { entity: &'static str },
    #[error("stored {what} could not be read back")]
    Corrupt {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// One failure reported to several waiters (every write of a group commit that failed):
    /// each gets the same error, cause and all.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

impl StoreError {
    /// The error itself, through any [`StoreError::Shared`] wrapping it.
    pub fn underlying(&self) -> &StoreError {
        match self {
            Self::Shared(inner) => inner.underlying(),
            other => other,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database backs the store, and where.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// An SQLite file, created if missing.
    Sqlite { path: PathBuf },
    /// A PostgreSQL database URL.
    Postgres { url: String },
}

impl StoreTarget {
    /// Reads a `--database-url`: `postgres://…`, `postgresql://…` or `sqlite://path`.
    pub fn from_url(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres {
                url: url.to_owned(),
            })
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Self::Sqlite { path: path.into() })
        } else {
            Err("must start with postgres://, postgresql:// or sqlite://".into())
        }
    }
}

impl fmt::Debug for StoreTarget {
    /// Never shows a password that a PostgreSQL URL may carry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            Self::Postgres { url } => match url::Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("redacted"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://<unparseable>"),
            },
        }
    }
}

/// Opens (creating if needed) and migrates the store.
pub async fn connect(target: &StoreTarget) -> StoreResult<Arc<dyn Store>> {
    Ok(match target {
        StoreTarget::Sqlite { path } => Arc::new(sqlite::SqliteStore::open(path).await?),
        StoreTarget::Postgres { url } => Arc::new(postgres::PostgresStore::open(url).await?),
    })
}

/// Which webhooks to list.
#[derive(Clone, Debug, Default)]
pub struct WebhookQuery {
    pub project: Option<ProjectId>,
    pub status: Option<WebhookStatus>,
    /// Only webhooks whose filter matches this event type.
    pub event_type: Option<EventTypeName>,
}

/// What publishing an event did.
#[derive(Clone, Debug, PartialEq)]
pub enum Published {
    /// The event and its deliveries are committed.
    Created,
    /// An event with this id already existed in the project; nothing was written. Holds it.
    Duplicate(Box<Event>),
}

/// A delivery lease: which node may send it, until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: Timestamp,
}

/// One publish in a group commit.
#[derive(Clone, Debug)]
pub struct NewPublish {
    pub event: Event,
    /// Each delivery with an optional lease: a leased delivery belongs to this node from the
    /// same transaction on, so it can be sent straight from memory; an unleased one waits for
    /// whichever node claims it first.
    pub deliveries: Vec<(Delivery, Option<Lease>)>,
}

/// What [`Store::discard_held`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discarded {
    /// This many held deliveries are now discarded.
    Count(u64),
    /// The webhook is in this status, which holds nothing (active, or pending validation).
    NotHeld(WebhookStatus),
}

/// What a group commit did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Committed {
    /// One per publish, in order.
    pub published: Vec<Published>,
    /// Webhooks this commit moved to `out_of_order`.
    pub out_of_order: Vec<WebhookId>,
}

/// A delivery claimed for sending, with its event.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    pub delivery: Delivery,
    pub event: Event,
}

/// CloudBlue's statistics for one webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookStats {
    pub events: u64,
    pub triggers: u64,
    pub successes: u64,
    pub failures: u64,
    pub failures_since_success: u64,
    pub last_event_at: Option<Timestamp>,
    pub next_trigger_at: Option<Timestamp>,
    pub last_success: Option<(Timestamp, AttemptId)>,
    pub last_failure: Option<(Timestamp, AttemptId)>,
    pub failed_deliveries_in_a_row: u64,
    pub failing_since: Option<Timestamp>,
}

/// Which attempts to list.
#[derive(Clone, Debug)]
pub enum AttemptQuery {
    Webhook(WebhookId),
    Delivery(DeliveryId),
}

#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Whether one process owns the store (SQLite: its lock file), so any lease found at start
    /// was left by a process that died and can be freed at once.
    fn owned_by_one_process(&self) -> bool {
        self.backend() == Backend::Sqlite
    }

    /// Whether the group-commit writer should run on a thread of its own. True for SQLite:
    /// its connection already lives on a thread, each commit is a few round trips to it, and on
    /// a busy runtime the writer's turn after each round trip came only after the burst of
    /// sends its last commit released. (PostgreSQL connections belong to the runtime that
    /// opened them, so its writer stays on the main runtime.)
    fn wants_writer_thread(&self) -> bool {
        false
    }

    /// Whether no API key was ever made (a first start).
    async fn has_api_keys(&self) -> StoreResult<bool>;

    async fn create_project(&self, project: &Project) -> StoreResult<()>;
    async fn project(&self, id: &ProjectId) -> StoreResult<Project>;
    async fn project_by_name(&self, name: &ProjectName) -> StoreResult<Project>;
    /// Lists projects; `only` restricts the list to one project (a scoped key's view).
    async fn list_projects(
        &self,
        only: Option<&ProjectId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>>;
    /// Saves a project's name and settings.
    async fn update_project(&self, project: &Project) -> StoreResult<()>;
    /// Deletes a project and everything in it.
    async fn delete_project(&self, id: &ProjectId) -> StoreResult<()>;

    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    async fn event_type(&self, project: &ProjectId, name: &EventTypeName)
    -> StoreResult<EventType>;
    async fn list_event_types(
        &self,
        project: &ProjectId,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<EventType>>;
    /// Saves description, schema and archived flag.
    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()>;

    async fn create_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn webhook(&self, id: &WebhookId) -> StoreResult<Webhook>;
    async fn list_webhooks(
        &self,
        query: &WebhookQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Webhook>>;
    /// Saves every mutable field of the webhook.
    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    /// Saves every mutable field, but only if nothing changed the webhook since it was read
    /// with `updated_at = seen` (else [`StoreError::Changed`]): a person's edit cannot undo a
    /// status the engine set meanwhile, or a rotation made by someone else.
    async fn update_webhook_if_unchanged(
        &self,
        webhook: &Webhook,
        seen: Timestamp,
    ) -> StoreResult<()>;
    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<()>;
    /// The project's subscribed webhooks (every status but `pending`), to match a published
    /// event against: a disabled or out-of-order webhook gets its deliveries too, held.
    async fn subscribed_webhooks(&self, project: &ProjectId) -> StoreResult<Vec<Webhook>>;

    /// How many deliveries each of these webhooks holds: pending or retrying while the webhook
    /// is disabled or out of order. Webhooks holding none are left out.
    async fn held_deliveries(&self, webhooks: &[WebhookId])
    -> StoreResult<HashMap<WebhookId, u64>>;

    /// Marks the webhook's held deliveries created before `before` (all, without it) as
    /// discarded: never sent. One under a live lease is being sent at this moment (a send
    /// begun before the pause, a Trigger now) and is left for its attempt to settle. Checked and done in one transaction that locks the webhook's row,
    /// so an enable running at the same time comes either before (nothing is held: the answer
    /// is [`Discarded::NotHeld`]) or after (the discarded deliveries stay discarded).
    async fn discard_held(
        &self,
        webhook: &WebhookId,
        before: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Discarded>;

    /// The installation's account-level signing secret (CloudShare's model). The first call on
    /// a new database stores `candidate`; every later call, on any node, returns what was stored
    /// first, so the secret is made once and never changes.
    async fn account_secret(&self, candidate: &SigningSecret) -> StoreResult<SigningSecret>;
    /// Replaces the account-level secret (an admin's rotation): every node signs with the new
    /// one once it has read it again.
    async fn set_account_secret(&self, secret: &SigningSecret) -> StoreResult<()>;

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// The unrevoked key whose token hashes to `token_hash`.
    async fn api_key_by_token_hash(&self, token_hash: &str) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, page: &PageRequest) -> StoreResult<Page<ApiKey>>;
    /// Revokes a key (revoking it again keeps the first time). The last active admin key is
    /// not revoked ([`StoreError::LastAdminKey`]): the check and the revocation are one
    /// transaction, so concurrent revocations on any number of nodes always leave one.
    async fn revoke_api_key(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<ApiKey>;

    /// Commits the event and its deliveries in one transaction, or — if the project already has
    /// an event with this id — writes nothing and returns the existing event.
    async fn publish(&self, event: &Event, deliveries: &[Delivery]) -> StoreResult<Published>;
    async fn event(&self, project: &ProjectId, id: &EventId) -> StoreResult<Event>;
    async fn list_events(
        &self,
        project: &ProjectId,
        event_type: Option<&EventTypeName>,
        page: &PageRequest,
    ) -> StoreResult<Page<Event>>;
    async fn list_event_deliveries(
        &self,
        project: &ProjectId,
        event: &EventId,
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>>;

    // --- The delivery engine ---

    /// The group commit: every publish and every attempt record in one transaction (one fsync).
    /// Publishes whose event id already exists write nothing and report the existing event.
    async fn commit(
        &self,
        publishes: &[NewPublish],
        records: &[AttemptRecord],
        now: Timestamp,
    ) -> StoreResult<Committed>;

    /// Leases up to `limit` of the webhook's due deliveries whose lease is free or expired,
    /// oldest due first. On PostgreSQL, nodes claiming at once never get the same delivery.
    async fn claim_due(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>>;

    /// Gives back leases `owner` holds without having sent (shutdown, webhook disabled); leases
    /// another node holds by now are left alone.
    async fn release(&self, owner: &str, deliveries: &[DeliveryId]) -> StoreResult<()>;

    /// Frees every lease. Only for SQLite at start: one process owns the file, so any lease
    /// left is from a process that died.
    async fn release_all_leases(&self) -> StoreResult<u64>;

    /// Frees every lease held by `owner`: a node restarting under a stable name takes back
    /// what its previous run held, at once, instead of waiting for those leases to expire.
    async fn release_leases_of(&self, owner: &str) -> StoreResult<u64>;

    /// Webhooks with deliveries due at `now` and no live lease, in id order, after `after`:
    /// where a poll should look, a page at a time.
    async fn webhooks_with_due_work(
        &self,
        now: Timestamp,
        after: Option<&WebhookId>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookId>>;

    async fn delivery(&self, id: &DeliveryId) -> StoreResult<Delivery>;
    /// A webhook's deliveries in the given statuses (all statuses when empty), newest first.
    async fn list_webhook_deliveries(
        &self,
        webhook: &WebhookId,
        statuses: &[DeliveryStatus],
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    /// Makes a delivery due now again, whatever its state (its id and attempt count stay).
    async fn replay_delivery(&self, id: &DeliveryId, now: Timestamp) -> StoreResult<Delivery>;
    /// Makes every failed delivery of the webhook created since `since` due now; returns how many.
    async fn replay_failed(
        &self,
        webhook: &WebhookId,
        since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64>;

    async fn attempt(&self, id: &AttemptId) -> StoreResult<Attempt>;
    async fn list_attempts(
        &self,
        query: &AttemptQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    async fn webhook_stats(&self, webhook: &WebhookId) -> StoreResult<WebhookStats>;

    /// Deletes up to `limit` events (with their deliveries and attempts) older than their
    /// project's retention, or `default_days`, and none with a delivery still pending or
    /// retrying for an active webhook; returns how many. Deliveries held by a disabled or
    /// out-of-order webhook do not keep their event: past retention they go with it. The search
    /// holds no write lock, only the deletes do.
    async fn prune(&self, now: Timestamp, default_days: u32, limit: u32) -> StoreResult<u64>;
}
