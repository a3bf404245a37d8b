//! Herald's domain, free of I/O.
//!
//! Everything here is a value that is valid by construction: the HTTP edge parses requests into
//! these types (returning an [`InvalidField`] naming the field at fault), and storage and delivery
//! only ever see valid values.
//!
//! Layout:
//! - [`id`]: prefixed, time-sortable identifiers (`prj_…`, `wh_…`).
//! - [`validation`]: the one error type for bad input, naming the field.
//! - [`project`], [`event_type`], [`event`], [`webhook`], [`delivery`], [`api_key`]: the concepts
//!   of DESIGN.md, one module each.
//! - [`filter`]: which event types a webhook subscribes to.
//! - [`retry`], [`decision`]: the retry schedule, and what follows an attempt (retry, give up,
//!   change the webhook's status).
//! - [`shape`]: payload formats, signing schemes and the presets that name a pair of them.
//! - [`payload`]: rendering one try of a delivery in its webhook's format.
//! - [`signing`]: the headers that authenticate a request, per signing scheme.
//! - [`auth`]: roles, what each may do, and the principal a request acts as.
//! - [`page`]: cursor pagination.
//! - [`secret`]: generation of signing secrets and API key tokens.

#![forbid(unsafe_code)]

pub mod api_key;
pub mod attempt;
pub mod auth;
pub mod decision;
pub mod delivery;
pub mod event;
pub mod event_type;
pub mod filter;
pub mod id;
pub mod openapi;
pub mod page;
pub mod payload;
pub mod project;
pub mod retry;
pub mod secret;
pub mod shape;
pub mod signing;
pub mod time;
pub mod validation;
pub mod webhook;

pub use validation::InvalidField;
