//! Herald as a library: the configuration and the application that `herald serve` runs.
//!
//! `main` is thin: it loads a [`config::Config`], builds an [`app::App`] and runs it until a
//! signal cancels the shutdown token. Tests build the very same `App` on `127.0.0.1:0`.

#![forbid(unsafe_code)]

pub mod admin_key;
pub mod app;
pub mod config;
pub mod serve;
pub mod telemetry;
