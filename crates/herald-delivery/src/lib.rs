//! Herald's delivery engine: from a committed event to a signed request at every matching
//! webhook, at least once, with retries, and with one slow webhook never delaying another.
//!
//! Layout, in the order an event flows through it (each module uses only those above it,
//! except [`engine`], the handle, which starts them all):
//! - [`request`]: render + sign + headers (pure). [`client`], [`send`]: the HTTP client and error
//!   kinds. [`guard`]: which destinations are allowed. [`cache`]: the one cache type.
//! - `dispatcher`: one lane per webhook with its own concurrency limit and a bounded queue,
//!   under a global limit; it runs jobs through a `Runner` and knows nothing of sending.
//! - `writes`: the writer's queue, and the one way to hand it a write and wait for the commit.
//! - `shared`: what every task shares (`Core`): store, settings, lanes, caches, the queue.
//! - `publish`: the engine decides who gets an event: matches it against the project's
//!   subscribed webhooks and commits it with one delivery per match. `trigger`: one event to one
//!   webhook now (Trigger now, the validation event).
//! - `writer`: the group commit. Publishes and attempt records from everywhere queue up and
//!   are written in one transaction per batch (one fsync), then leased deliveries are handed to
//!   the dispatcher straight from memory.
//! - `attempt`: one try: prepare, send, decide (success, retry when, give up, disable on 410).
//! - `poller`: claims due work the lanes do not already hold (retries, backlog, other nodes'
//!   expired leases). `pruner`: retention.
//! - [`engine`]: the handle the API uses (publish, trigger now, validate, wake) and start-up and
//!   shutdown of the tasks above.
//!
//! Durability: a delivery is in the database before its event is acknowledged; it is leased to
//! the node that will send it; its lease is cleared in the same transaction that records the
//! attempt. A node that dies leaves leases that expire, and the deliveries are claimed again —
//! with the same delivery id.

#![forbid(unsafe_code)]

mod attempt;
pub mod cache;
pub mod client;
mod dispatcher;
pub mod engine;
mod error;
pub mod guard;
mod poller;
mod pruner;
mod publish;
pub mod request;
pub mod send;
mod shared;
mod trigger;
mod writer;
mod writes;

pub use engine::{Engine, EngineConfig};
pub use error::EngineError;
