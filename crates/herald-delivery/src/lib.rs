//! Herald's delivery engine: from a committed event to a signed request at every matching
//! webhook, at least once, with retries, and with one slow webhook never delaying another.
//!
//! Layout, in the order an event flows through it:
//! - [`engine`]: the handle the API uses (publish, trigger now, validate, wake) and start-up and
//!   shutdown of the tasks below.
//! - `writer`: the group commit. Publishes and attempt records from everywhere queue up and
//!   are written in one transaction per batch (one fsync), then leased deliveries are handed to
//!   the dispatcher straight from memory.
//! - `dispatcher`: one lane per webhook with its own concurrency limit and a bounded queue,
//!   under a global limit; workers run attempts.
//! - `attempt`: one try: prepare, send, decide (success, retry when, give up, disable on 410).
//! - [`request`]: render + sign + headers (pure). [`send`]: the HTTP client and error kinds.
//!   [`guard`]: which destinations are allowed.
//! - `poller`: claims due work the lanes do not already hold (retries, backlog, other nodes'
//!   expired leases). `pruner`: retention.
//!
//! Durability: a delivery is in the database before its event is acknowledged; it is leased to
//! the node that will send it; its lease is cleared in the same transaction that records the
//! attempt. A node that dies leaves leases that expire, and the deliveries are claimed again —
//! with the same delivery id.

#![forbid(unsafe_code)]

mod attempt;
mod cache;
pub mod client;
mod dispatcher;
pub mod engine;
pub mod guard;
mod poller;
mod pruner;
pub mod request;
pub mod send;
mod writer;

pub use engine::{Engine, EngineConfig, EngineError};
