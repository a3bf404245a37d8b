//! One module per resource of the `/v1` API.

pub mod account;
pub mod api_keys;
pub mod deliveries;
pub mod event_types;
pub mod events;
pub mod held;
pub mod meta;
pub mod projects;
pub mod webhooks;
