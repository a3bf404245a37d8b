//! Herald's HTTP edge: the `/v1` management and publishing API.
//!
//! Handlers are thin: parse the request into domain types (errors name the field), check the
//! caller's role and scope, call the store, render a view. Every route is registered through
//! `utoipa_axum::routes!`, so the OpenAPI document at `/v1/openapi.json` is generated from the
//! same list as the router and cannot miss one.
//!
//! Layout:
//! - [`problem`]: the one error type and its problem+json rendering.
//! - [`extract`]: JSON body, query string and paging extractors.
//! - [`auth`]: the bearer key, roles and project scope.
//! - `routes/`: one module per resource (projects, event types, webhooks, API keys, events,
//!   deliveries, a paused webhook's held deliveries).

#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use herald_store::Store;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod auth;
pub mod cache;
mod document;
pub mod extract;
pub mod problem;
mod routes;

/// What the API needs from the rest of Herald.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    /// Publishing and sending go through the delivery engine.
    pub engine: herald_delivery::Engine,
    pub settings: Arc<ApiSettings>,
    /// Read caches for the publish path; see [`cache`].
    pub lookups: Arc<cache::Lookups>,
}

/// The API's share of the server configuration.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Accept `http://` webhook URLs (development only).
    pub allow_http: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a rotated-out signing secret stays in use when the rotation does not say.
    pub rotation_grace: herald_core::webhook::RotationGrace,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            max_body_bytes: 1024 * 1024,
            rotation_grace: Default::default(),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "A self-hosted webhook platform: publish events, Herald signs and delivers them.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(problem::Problem)),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route with its OpenAPI description.
fn api_routes() -> OpenApiRouter<ApiState> {
    use routes::{
        account, api_keys, deliveries, event_types, events, held, meta, projects, webhooks,
    };
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(meta::health))
        .routes(routes!(meta::openapi_json))
        .routes(routes!(meta::whoami))
        .routes(routes!(projects::create, projects::list))
        .routes(routes!(projects::get, projects::update, projects::delete))
        .routes(routes!(event_types::create, event_types::list))
        .routes(routes!(event_types::get, event_types::update))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::enable))
        .routes(routes!(webhooks::disable))
        .routes(routes!(webhooks::secret))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::stats))
        .routes(routes!(webhooks::trigger))
        .routes(routes!(webhooks::validate))
        .routes(routes!(webhooks::replay))
        .routes(routes!(held::discard))
        .routes(routes!(deliveries::list_for_webhook))
        .routes(routes!(deliveries::attempts_for_webhook))
        .routes(routes!(deliveries::get))
        .routes(routes!(deliveries::attempts))
        .routes(routes!(deliveries::replay))
        .routes(routes!(deliveries::attempt))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(account::secret))
        .routes(routes!(account::rotate_secret))
        .routes(routes!(events::publish, events::list))
        .routes(routes!(events::get))
        .routes(routes!(events::deliveries))
}

/// The OpenAPI 3.1 document for every route, with the error answers each can give.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_routes().split_for_parts().1;
    document::complete(&mut doc);
    doc
}

/// The whole API as an axum router.
pub fn router(state: ApiState) -> Router {
    let limit = state.settings.max_body_bytes;
    let (router, _) = api_routes().split_for_parts();
    router
        .fallback(problem::no_route)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn(extract::decodable_path))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(extract::BodyLimit(limit)))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
