//! End-to-end tests of the `/v1` API: the real server on loopback, real databases.

mod helpers;

mod auth;
mod events;
mod openapi;
mod quick_start;
