//! End-to-end tests of the `/v1` API: the real server on loopback, real databases.

#![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

mod helpers;
mod receiver;

mod auth;
mod connections;
mod crash;
mod delivery;
mod delivery_failures;
mod delivery_isolation;
mod delivery_ops;
mod event_types;
mod events;
mod fuzz;
mod held;
mod openapi;
mod outbound_safety;
mod projects;
mod python_receivers;
mod quick_start;
mod startup;
mod webhooks;
