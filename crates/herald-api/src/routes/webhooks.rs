//! `/v1/webhooks`: subscriptions of a URL to a project's events.
//!
//! Create and PATCH share one validation path: a PATCH overlays its fields on the stored webhook
//! (re-expressed as a [`Draft`]) and the whole result is validated as a create would be, so no
//! combination of partial updates can produce a webhook a create would refuse.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_core::InvalidField;
use herald_core::attempt::AttemptTrigger;
use herald_core::auth::Action;
use herald_core::event_type::EventTypeName;
use herald_core::filter::EventFilter;
use herald_core::id::{AttemptId, ProjectId, WebhookId};
use herald_core::openapi;
use herald_core::project::Project;
use herald_core::secret::SigningSecret;
use herald_core::shape::{Format, Preset, SecretSource, Shape, SigningScheme};
use herald_core::time;
use herald_core::validation::{DESCRIPTION_MAX_LEN, optional_text};
use herald_core::webhook::{
    CustomData, CustomHeaders, HttpMethod, RetryPolicy, RotationGrace, TargetUrl, Timeout, Webhook,
    WebhookStatus, webhook_name,
};
use herald_store::{StoreError, WebhookQuery};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApiState;
use crate::auth::Caller;
use crate::extract::{
    JsonBody, ListResponse, OptionalJsonBody, QueryParams, non_null, non_null_object,
    object_or_null, page_request, present, present_object,
};
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    id: WebhookId,
    project_id: ProjectId,
    name: String,
    description: Option<String>,
    /// Its password, if it has one, reads `redacted` in lists and to roles that may not see
    /// secrets.
    url: String,
    method: HttpMethod,
    /// Event types subscribed to: exact names and `prefix.*` wildcards; `["*"]` for all.
    events: Vec<String>,
    /// Extra headers sent with every delivery. They often carry the receiver's credentials:
    /// their values read `redacted` in lists and to roles that may not see secrets.
    headers: BTreeMap<String, String>,
    custom_data: Value,
    /// The preset this webhook's format and signing match, if any.
    preset: Option<Preset>,
    format: String,
    /// The JSON template, when `format` is `custom`.
    template: Option<Value>,
    signing: SigningScheme,
    timeout_seconds: u64,
    /// `null`: the project's, then the server's default policy applies.
    retry_policy: Option<RetryPolicy>,
    status: WebhookStatus,
    /// Why the status last changed, and who or what changed it.
    status_reason: Option<String>,
    /// Deliveries waiting while the webhook is disabled or out of order: they flow, oldest
    /// first, when it is active again, unless discarded (`POST …/held/discard`). Always 0 for an
    /// active webhook.
    held_deliveries: u64,
    /// The secret deliveries are signed with: shown only to roles that may see it, never in
    /// lists. For a webhook that signs with the account-level secret (the `cloudshare` preset)
    /// that is the account's secret, which only admins may see.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A value shown in place of a credential to readers who may not see it.
const REDACTED: &str = "redacted";

impl WebhookView {
    /// With `credentials`, the URL's password and the custom headers' values are shown;
    /// without, they read `redacted`. `secret` is the signing secret to show, if any.
    fn new(w: Webhook, credentials: bool, secret: Option<String>) -> Self {
        Self {
            secret,
            url: if credentials {
                w.url.as_str().to_owned()
            } else {
                w.url.redacted()
            },
            headers: if credentials {
                w.headers.as_map().clone()
            } else {
                w.headers
                    .iter()
                    .map(|(name, _)| (name.clone(), REDACTED.to_owned()))
                    .collect()
            },
            events: w.filter.to_strings().unwrap_or_else(|| vec!["*".into()]),
            preset: w.shape.preset,
            format: w.shape.format.name().to_owned(),
            template: w.shape.format.template().map(|t| t.as_value().clone()),
            signing: w.shape.scheme,
            id: w.id,
            project_id: w.project_id,
            name: w.name,
            description: w.description,
            method: w.method,
            custom_data: Value::Object(w.custom_data.as_map().clone()),
            timeout_seconds: w.timeout.duration().as_secs(),
            retry_policy: w.retry_policy,
            status: w.status,
            status_reason: w.status_reason,
            held_deliveries: 0,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }

    /// As `caller` may see it: the credentials and the signing secret for roles that may see
    /// secrets — the account-level secret, when the webhook signs with it, only for admins.
    async fn for_caller(state: &ApiState, w: Webhook, caller: &Caller) -> Result<Self, ApiError> {
        let credentials = caller.0.may(Action::SeeSecrets);
        let secret = match signing_secret(state, &w, caller).await {
            Ok(shown) => Some(shown.secret),
            Err(ApiError::Forbidden(_)) => None,
            Err(e) => return Err(e),
        };
        Ok(Self::new(w, credentials, secret))
    }

    /// The view with its held deliveries counted: only a disabled or out-of-order webhook holds
    /// any, so an active one costs no query.
    async fn counting_held(mut self, state: &ApiState) -> Result<Self, ApiError> {
        if self.status.holds_deliveries() {
            let held = state
                .store
                .held_deliveries(std::slice::from_ref(&self.id))
                .await?;
            self.held_deliveries = held.get(&self.id).copied().unwrap_or(0);
        }
        Ok(self)
    }
}

/// The secret a webhook's deliveries are signed with, as `caller` may see it: the webhook's own
/// to roles that may see secrets, or — for a scheme that signs with the account-level secret
/// (CloudShare's model) — the account's, to admins only (it signs every such webhook of every
/// project). Anyone else gets 403.
async fn signing_secret(
    state: &ApiState,
    w: &Webhook,
    caller: &Caller,
) -> Result<SecretView, ApiError> {
    caller.require(Action::SeeSecrets)?;
    if w.shape.scheme.uses_account_secret() {
        if !caller.0.may(Action::ReadAccountSecret) {
            return Err(ApiError::Forbidden(
                "this webhook is signed with the account-level secret, which only admins may see"
                    .into(),
            ));
        }
        let account = state
            .store
            .account_secret(&SigningSecret::generate())
            .await?;
        return Ok(SecretView {
            secret: account.expose().to_owned(),
            source: SecretSource::Account,
            previous_secret_expires_at: None,
        });
    }
    Ok(SecretView {
        secret: w.secret.expose().to_owned(),
        source: SecretSource::Webhook,
        previous_secret_expires_at: w.previous_secret_expires_at(time::now()),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Project id or name. Optional for project-scoped keys (their project).
    project: Option<String>,
    #[schema(schema_with = openapi::name)]
    name: String,
    #[schema(schema_with = openapi::description)]
    description: Option<String>,
    /// Where deliveries go: https (http only when the server allows it).
    #[schema(schema_with = openapi::target_url)]
    url: String,
    /// `POST` (JSON body, the default) or `GET` (payload as query parameters).
    method: Option<HttpMethod>,
    /// Event types to receive: exact names and `prefix.*` wildcards. Omit for all.
    #[schema(schema_with = openapi::event_patterns)]
    events: Option<Vec<String>>,
    /// Extra headers sent with every delivery.
    #[schema(schema_with = openapi::optional_custom_headers)]
    headers: Option<BTreeMap<String, String>>,
    /// A JSON object merged into every payload.
    #[schema(value_type = Option<Object>)]
    custom_data: Option<Value>,
    /// `standard` (default), `cloudshare`, `event-data`, `connect` or `github`: sets format and
    /// signing together; `format` and `signing` given alongside override it.
    preset: Option<String>,
    /// `standard`, `cloudshare`, `event-data`, `connect`, `raw` or `custom`.
    format: Option<String>,
    /// The JSON template for `format: custom`; `{{placeholders}}` are filled per delivery.
    template: Option<Value>,
    #[serde(default, deserialize_with = "object_or_null")]
    signing: Option<SigningScheme>,
    /// 1 to 600 seconds (default 30).
    #[schema(schema_with = openapi::timeout_seconds)]
    timeout_seconds: Option<u64>,
    /// `null`: the preset's (`connect`: 5 minutes, growing), else the project's, else the
    /// server's default policy.
    #[serde(default, deserialize_with = "object_or_null")]
    retry_policy: Option<RetryPolicy>,
    /// Start disabled with `false` (default true).
    enabled: Option<bool>,
    /// A signing secret of your choosing (e.g. the one your receiver already checks); Herald
    /// makes one when omitted. Standard Webhooks: `whsec_` + base64 of 24 to 64 bytes; other
    /// schemes: 8 to 256 visible ASCII characters. Not for schemes that sign with the
    /// account-level secret.
    #[schema(schema_with = openapi::optional_secret)]
    secret: Option<String>,
}

/// Fields absent stay as they are; `null` clears `description`, `custom_data`, `retry_policy`,
/// and sets `events` back to all, and is refused for every other field. `headers` replaces the
/// whole set.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, deserialize_with = "non_null")]
    #[schema(schema_with = openapi::name)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = openapi::description)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(schema_with = openapi::target_url)]
    url: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    method: Option<HttpMethod>,
    /// Exact names added here must be event types of the project that are not archived; names
    /// the webhook already has are kept even if their type has been archived since.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = openapi::event_patterns)]
    events: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(schema_with = openapi::custom_headers_not_null)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    custom_data: Option<Option<Value>>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    preset: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    format: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    template: Option<Value>,
    #[serde(default, deserialize_with = "non_null_object")]
    #[schema(nullable = false)]
    signing: Option<SigningScheme>,
    #[serde(default, deserialize_with = "non_null")]
    #[schema(schema_with = openapi::timeout_seconds_not_null)]
    timeout_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present_object")]
    #[schema(value_type = Option<RetryPolicy>)]
    retry_policy: Option<Option<RetryPolicy>>,
    /// Replaces the signing secret at once (no grace period; rotate for one), with one of your
    /// choosing, under the rules of `secret` on create.
    #[serde(default, deserialize_with = "non_null")]
    #[schema(schema_with = openapi::secret)]
    secret: Option<String>,
}

/// A webhook's user-settable fields before validation.
struct Draft {
    name: String,
    description: Option<String>,
    url: String,
    method: HttpMethod,
    events: Option<Vec<String>>,
    headers: BTreeMap<String, String>,
    custom_data: Value,
    preset: Option<Preset>,
    format: Option<Format>,
    signing: Option<SigningScheme>,
    timeout_seconds: u64,
    retry_policy: Option<RetryPolicy>,
    /// A secret the user chose, checked once the shape is known.
    secret: Option<String>,
    /// Exact event names the stored filter already holds. They are kept without a check, so that
    /// archiving an event type does not freeze every webhook that names it; a create has none.
    kept_events: BTreeSet<EventTypeName>,
}

/// The validated settable fields.
struct Settings {
    name: String,
    description: Option<String>,
    url: TargetUrl,
    method: HttpMethod,
    filter: EventFilter,
    headers: CustomHeaders,
    custom_data: CustomData,
    shape: Shape,
    timeout: Timeout,
    retry_policy: Option<RetryPolicy>,
    secret: Option<SigningSecret>,
}

fn parse_preset(preset: Option<&str>) -> Result<Option<Preset>, InvalidField> {
    preset.map(Preset::from_name).transpose()
}

impl Draft {
    fn from_create(input: CreateWebhook) -> Result<Self, InvalidField> {
        Ok(Self {
            name: input.name,
            description: input.description,
            url: input.url,
            method: input.method.unwrap_or(HttpMethod::Post),
            events: input.events,
            headers: input.headers.unwrap_or_default(),
            custom_data: input.custom_data.unwrap_or(Value::Null),
            preset: parse_preset(input.preset.as_deref())?,
            format: match (input.format, input.template) {
                (Some(name), template) => Some(Format::from_name(&name, template)?),
                (None, Some(_)) => {
                    return Err(InvalidField::new(
                        "template",
                        "needs \"format\": \"custom\"",
                    ));
                }
                (None, None) => None,
            },
            signing: input.signing,
            timeout_seconds: input.timeout_seconds.unwrap_or(Timeout::DEFAULT_SECONDS),
            retry_policy: input.retry_policy,
            secret: input.secret,
            kept_events: BTreeSet::new(),
        })
    }

    fn from_stored(w: &Webhook) -> Self {
        Self {
            name: w.name.clone(),
            description: w.description.clone(),
            url: w.url.as_str().to_owned(),
            method: w.method,
            events: w.filter.to_strings(),
            headers: w.headers.as_map().clone(),
            custom_data: Value::Object(w.custom_data.as_map().clone()),
            preset: w.shape.preset,
            format: Some(w.shape.format.clone()),
            signing: Some(w.shape.scheme.clone()),
            timeout_seconds: w.timeout.duration().as_secs(),
            retry_policy: w.retry_policy.clone(),
            secret: None,
            kept_events: w.filter.exact_names().map(|(_, n)| n.clone()).collect(),
        }
    }

    fn apply(mut self, patch: UpdateWebhook) -> Result<Self, InvalidField> {
        if let Some(name) = patch.name {
            self.name = name;
        }
        if let Some(description) = patch.description {
            self.description = description;
        }
        if let Some(url) = patch.url {
            self.url = url;
        }
        if let Some(method) = patch.method {
            self.method = method;
        }
        if let Some(events) = patch.events {
            self.events = events;
        }
        if let Some(headers) = patch.headers {
            self.headers = headers;
        }
        if let Some(custom_data) = patch.custom_data {
            self.custom_data = custom_data.unwrap_or(Value::Null);
        }
        if let Some(preset) = patch.preset {
            // A new preset brings its own format and signing unless they are given too.
            self.preset = parse_preset(Some(&preset))?;
            self.format = None;
            self.signing = None;
        }
        match (patch.format, patch.template) {
            (Some(name), template) => self.format = Some(Format::from_name(&name, template)?),
            (None, Some(template)) => match self.format {
                Some(Format::Custom { .. }) => {
                    self.format = Some(Format::from_name("custom", Some(template))?);
                }
                _ => {
                    return Err(InvalidField::new(
                        "template",
                        "needs \"format\": \"custom\"",
                    ));
                }
            },
            (None, None) => {}
        }
        if let Some(signing) = patch.signing {
            self.signing = Some(signing);
        }
        if let Some(timeout) = patch.timeout_seconds {
            self.timeout_seconds = timeout;
        }
        if let Some(policy) = patch.retry_policy {
            self.retry_policy = policy;
        }
        if let Some(secret) = patch.secret {
            self.secret = Some(secret);
        }
        Ok(self)
    }

    async fn validate(self, state: &ApiState, project: &ProjectId) -> Result<Settings, ApiError> {
        let filter = EventFilter::parse(self.events.as_deref())?;
        let signing = self
            .signing
            .map(|s| s.validate().map_err(|e| e.within("signing")))
            .transpose()?;
        let shape = Shape::resolve(self.preset, self.format, signing);
        let secret = self
            .secret
            .map(|v| SigningSecret::chosen(&v, &shape.scheme, "secret"))
            .transpose()?;
        let settings = Settings {
            name: webhook_name(&self.name)?,
            description: optional_text(
                "description",
                self.description.as_deref(),
                DESCRIPTION_MAX_LEN,
            )?,
            url: deliverable_url(state, &self.url)?,
            method: self.method,
            headers: CustomHeaders::parse(self.headers, &shape)?,
            custom_data: CustomData::parse(self.custom_data)?,
            shape,
            timeout: Timeout::from_seconds(self.timeout_seconds)?,
            retry_policy: self
                .retry_policy
                .map(|p| p.validate().map_err(|e| e.within("retry_policy")))
                .transpose()?,
            secret,
            filter,
        };
        check_event_types_exist(state, project, &settings.filter, &self.kept_events).await?;
        Ok(settings)
    }
}

/// A target URL Herald could deliver to: http(s) as the server allows, and not an address the
/// outbound guard refuses (a name is checked again, after DNS, at every send).
fn deliverable_url(state: &ApiState, value: &str) -> Result<TargetUrl, InvalidField> {
    let url = TargetUrl::parse(value, state.settings.allow_http)?;
    if let Some(refused) = state.engine.refused_destination(url.url()) {
        return Err(InvalidField::new(
            "url",
            format!(
                "points at {} ({}), where Herald does not deliver; an operator can \
                 allow its network with --allow-network (HERALD_ALLOW_NETWORKS)",
                refused.ip, refused.why
            ),
        ));
    }
    Ok(url)
}

/// Exact names in a filter must be known, unarchived event types of the project, except those in
/// `kept` (already in the stored filter, so checked when they were added).
async fn check_event_types_exist(
    state: &ApiState,
    project: &ProjectId,
    filter: &EventFilter,
    kept: &BTreeSet<EventTypeName>,
) -> Result<(), ApiError> {
    for (i, name) in filter.exact_names().filter(|(_, n)| !kept.contains(n)) {
        let field = format!("events[{i}]");
        match state.store.event_type(project, name).await {
            Ok(t) if t.archived => {
                return Err(InvalidField::new(
                    field,
                    format!("event type \"{}\" is archived", name.as_str()),
                )
                .into());
            }
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(InvalidField::new(
                    field,
                    format!("\"{}\" is not an event type of this project", name.as_str()),
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Loads a webhook the caller may see for `action`, or 404.
pub(crate) async fn load(
    state: &ApiState,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<Webhook, ApiError> {
    caller.require(action)?;
    let id = WebhookId::parse(id).map_err(|_| ApiError::NotFound { entity: "webhook" })?;
    let webhook = state.store.webhook(&id).await?;
    caller.scope(&webhook.project_id, "webhook")?;
    if action == Action::ManageWebhooks {
        may_manage_account_signed(caller, &webhook.shape)?;
    }
    Ok(webhook)
}

/// Only admins (CloudShare's Account Manager) manage a webhook signed with the account-level
/// secret: it signs every such webhook of every project, so whoever chooses where one sends, or
/// what it sends (a Trigger now with their own data), could have that secret sign what they
/// like and replay it to another tenant's receiver.
fn may_manage_account_signed(caller: &Caller, shape: &Shape) -> Result<(), ApiError> {
    if shape.scheme.uses_account_secret() && !caller.0.may(Action::ReadAccountSecret) {
        return Err(ApiError::Forbidden(
            "this webhook is signed with the account-level secret: only admins may create or \
             manage such a webhook"
                .into(),
        ));
    }
    Ok(())
}

/// The project a create targets: as named, or the scoped key's own.
async fn target_project(
    state: &ApiState,
    caller: &Caller,
    named: Option<&str>,
) -> Result<Project, ApiError> {
    match (named, &caller.0.project) {
        (Some(reference), _) => {
            caller
                .project(state, reference, Action::ManageWebhooks)
                .await
        }
        (None, Some(own)) => {
            caller
                .project(state, own.as_str(), Action::ManageWebhooks)
                .await
        }
        (None, None) => {
            caller.require(Action::ManageWebhooks)?;
            Err(InvalidField::new("project", "is required for keys not scoped to a project").into())
        }
    }
}

/// Create a webhook. The answer includes its signing secret for roles that may see it.
#[utoipa::path(post, operation_id = "createWebhook", path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(input): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let project = target_project(&state, &caller, input.project.as_deref()).await?;
    let enabled = input.enabled.unwrap_or(true);
    let s = Draft::from_create(input)?
        .validate(&state, &project.id)
        .await?;
    may_manage_account_signed(&caller, &s.shape)?;
    let now = time::now();
    let (status, status_reason) = if project.settings.require_validation {
        (
            WebhookStatus::Pending,
            Some(
                "waiting for its validation event to succeed (POST /v1/webhooks/{id}/validate)"
                    .to_owned(),
            ),
        )
    } else if enabled {
        (WebhookStatus::Active, None)
    } else {
        (
            WebhookStatus::Disabled,
            Some(format!("created disabled by {}", caller.0.key_id)),
        )
    };
    let webhook = Webhook {
        id: WebhookId::new(),
        project_id: project.id,
        name: s.name,
        description: s.description,
        url: s.url,
        method: s.method,
        filter: s.filter,
        headers: s.headers,
        custom_data: s.custom_data,
        shape: s.shape,
        timeout: s.timeout,
        retry_policy: s.retry_policy,
        status,
        status_reason,
        secret: s.secret.unwrap_or_else(SigningSecret::generate),
        previous_secret: None,
        created_at: now,
        updated_at: now,
    };
    state.store.create_webhook(&webhook).await?;
    state.engine.webhook_created(&webhook.id);
    Ok((
        StatusCode::CREATED,
        Json(WebhookView::for_caller(&state, webhook, &caller).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListWebhooks {
    /// Only this project's webhooks (id or name).
    project: Option<String>,
    /// Only webhooks in this status.
    status: Option<WebhookStatus>,
    /// Only webhooks that would receive this event type.
    #[param(schema_with = openapi::optional_event_type_name)]
    event_type: Option<String>,
    /// Items per page, 1 to 250 (default 50).
    #[param(schema_with = openapi::page_limit)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List webhooks, newest first. Scoped keys see only their project's.
#[utoipa::path(get, operation_id = "listWebhooks", path = "/v1/webhooks", tag = "webhooks", params(ListWebhooks),
    responses((status = 200, body = ListResponse<WebhookView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListWebhooks>,
) -> Result<Json<ListResponse<WebhookView>>, ApiError> {
    caller.require(Action::ReadWebhooks)?;
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let event_type = q
        .event_type
        .as_deref()
        .map(EventTypeName::parse)
        .transpose()
        .map_err(|e| ApiError::BadQuery {
            field: "event_type".into(),
            message: e.message,
        })?;
    let project = match (&q.project, &caller.0.project) {
        (Some(reference), _) => Some(
            caller
                .project(&state, reference, Action::ReadWebhooks)
                .await?
                .id,
        ),
        (None, own) => own.clone(),
    };
    let query = WebhookQuery {
        project,
        status: q.status,
        event_type,
    };
    let found = state.store.list_webhooks(&query, &page).await?;
    // One count for the page's paused webhooks (active ones hold nothing).
    let paused: Vec<WebhookId> = found
        .items
        .iter()
        .filter(|w| w.status.holds_deliveries())
        .map(|w| w.id.clone())
        .collect();
    let held = if paused.is_empty() {
        Default::default()
    } else {
        state.store.held_deliveries(&paused).await?
    };
    Ok(Json(ListResponse::from_page(found, |w| {
        let held_deliveries = held.get(&w.id).copied().unwrap_or(0);
        WebhookView {
            held_deliveries,
            ..WebhookView::new(w, false, None)
        }
    })))
}

/// Get a webhook; its secret is included for roles that may see it.
#[utoipa::path(get, operation_id = "getWebhook", path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let webhook = load(&state, &caller, &id, Action::ReadWebhooks).await?;
    Ok(Json(
        WebhookView::for_caller(&state, webhook, &caller)
            .await?
            .counting_held(&state)
            .await?,
    ))
}

/// Change some of a webhook's settings.
#[utoipa::path(patch, operation_id = "updateWebhook", path = "/v1/webhooks/{id}", tag = "webhooks", request_body = UpdateWebhook,
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UpdateWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    let mut webhook = load(&state, &caller, &id, Action::ManageWebhooks).await?;
    let seen = webhook.updated_at;
    let s = Draft::from_stored(&webhook)
        .apply(patch)?
        .validate(&state, &webhook.project_id)
        .await?;
    may_manage_account_signed(&caller, &s.shape)?;
    webhook.name = s.name;
    webhook.description = s.description;
    webhook.url = s.url;
    webhook.method = s.method;
    webhook.filter = s.filter;
    webhook.headers = s.headers;
    webhook.custom_data = s.custom_data;
    webhook.shape = s.shape;
    webhook.timeout = s.timeout;
    webhook.retry_policy = s.retry_policy;
    match s.secret {
        Some(secret) => {
            // An edit sets the secret, as the case-management cloud's edit does: at once.
            caller.require(Action::SeeSecrets)?;
            webhook.secret = secret;
            webhook.previous_secret = None;
        }
        None if !webhook.secret.fits(&webhook.shape.scheme) => {
            return Err(InvalidField::new(
                "secret",
                "the webhook's secret is not a Standard Webhooks secret (\"whsec_\" + base64), \
                 which Standard Webhooks receivers need; give one in \"secret\" with this change",
            )
            .into());
        }
        None => {}
    }
    webhook.updated_at = time::now();
    state
        .store
        .update_webhook_if_unchanged(&webhook, seen)
        .await?;
    state.engine.webhook_changed(&webhook.id);
    Ok(Json(
        WebhookView::for_caller(&state, webhook, &caller)
            .await?
            .counting_held(&state)
            .await?,
    ))
}

/// Delete a webhook and its deliveries.
#[utoipa::path(delete, operation_id = "deleteWebhook", path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let webhook = load(&state, &caller, &id, Action::ManageWebhooks).await?;
    state.store.delete_webhook(&webhook.id).await?;
    state.engine.webhook_changed(&webhook.id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &ApiState,
    caller: &Caller,
    id: &str,
    status: WebhookStatus,
    verb: &str,
) -> Result<Json<WebhookView>, ApiError> {
    let mut webhook = load(state, caller, id, Action::ManageWebhooks).await?;
    let seen = webhook.updated_at;
    if webhook.status == WebhookStatus::Pending {
        // A pending webhook receives nothing until a validation succeeds. Enabling it would
        // skip that; pausing it would make it collect held deliveries that an enable later
        // sends to a receiver that never answered a validation.
        return Err(ApiError::StateConflict {
            kind: "not-validated",
            title: "Not validated yet",
            detail: "this webhook is pending: it becomes active once its validation event \
                     succeeds (POST /v1/webhooks/{id}/validate), and cannot be enabled or \
                     disabled before"
                .into(),
            field: None,
        });
    }
    if webhook.status != status {
        webhook.status = status;
        webhook.status_reason = Some(format!("{verb} by {}", caller.0.key_id));
        webhook.updated_at = time::now();
        state
            .store
            .update_webhook_if_unchanged(&webhook, seen)
            .await?;
        state.engine.webhook_changed(&webhook.id);
    }
    Ok(Json(
        WebhookView::for_caller(state, webhook, caller)
            .await?
            .counting_held(state)
            .await?,
    ))
}

/// Enable a webhook (from disabled or out of order): the deliveries it held flow at once, oldest
/// first.
#[utoipa::path(post, operation_id = "enableWebhook", path = "/v1/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn enable(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    set_status(&state, &caller, &id, WebhookStatus::Active, "enabled").await
}

/// Disable a webhook: nothing is sent to it until it is enabled. Events published meanwhile are
/// not lost: their deliveries are held (`held_deliveries`) and flow when it is enabled again.
#[utoipa::path(post, operation_id = "disableWebhook", path = "/v1/webhooks/{id}/disable", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn disable(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    set_status(&state, &caller, &id, WebhookStatus::Disabled, "disabled").await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretView {
    /// The secret deliveries are signed with.
    secret: String,
    /// `webhook`: the webhook's own; `account`: the installation's account-level secret
    /// (CloudShare's model), which every webhook of that scheme shares and no webhook can
    /// change (an admin rotates it with `POST /v1/account/secret/rotate`).
    source: SecretSource,
    /// While the secret a rotation replaced is still in use, when it stops: until then Standard
    /// Webhooks deliveries carry a signature with each secret, and single-signature schemes
    /// (HMAC header, secret header, JWT) still sign with the old one. `null` otherwise.
    previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// Get the secret a webhook's deliveries are signed with (admins and project admins; the
/// account-level secret, for webhooks that sign with it, to admins only).
#[utoipa::path(get, operation_id = "getWebhookSecret", path = "/v1/webhooks/{id}/secret", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = SecretView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let webhook = load(&state, &caller, &id, Action::SeeSecrets).await?;
    Ok(Json(signing_secret(&state, &webhook, &caller).await?))
}

/// How to rotate a webhook's signing secret. The body may be left out.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the replaced secret stays in use, in seconds: 0 (switch at once) to 2592000
    /// (30 days). Default: for Standard Webhooks, which signs with both secrets meanwhile, the
    /// server's `rotation_grace_seconds` (86400 unless configured); for the single-signature
    /// schemes (JWT, HMAC header, secret header) 0: the new secret is in force at once.
    #[schema(schema_with = openapi::grace_seconds)]
    grace_seconds: Option<u64>,
    /// The new secret, of your choosing (the rules of `secret` on create); Herald makes one
    /// when omitted.
    #[schema(schema_with = openapi::optional_secret)]
    secret: Option<String>,
}

/// Replace a webhook's signing secret with a new one, returned here. For Standard Webhooks the
/// old secret keeps signing beside the new one for a grace period (the server's, by default);
/// the single-signature schemes switch at once unless a grace period is asked for, during which
/// they keep signing with the old one. Webhooks signed with the account-level secret have none
/// of their own to rotate (409).
#[utoipa::path(post, operation_id = "rotateWebhookSecret", path = "/v1/webhooks/{id}/secret/rotate", tag = "webhooks",
    request_body(content = Option<RotateSecret>, description = "Optional; `{}` or no body uses the server's grace period."),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = SecretView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<RotateSecret>,
) -> Result<Json<SecretView>, ApiError> {
    caller.require(Action::SeeSecrets)?;
    let mut webhook = load(&state, &caller, &id, Action::ManageWebhooks).await?;
    let seen = webhook.updated_at;
    if webhook.shape.scheme.uses_account_secret() {
        return Err(ApiError::StateConflict {
            kind: "secret-not-rotatable",
            title: "Secret cannot be rotated",
            detail:
                "this webhook is signed with the account-level secret, which cannot be changed \
                     or regenerated per webhook; an admin rotates it for every such webhook with \
                     POST /v1/account/secret/rotate"
                    .into(),
            field: None,
        });
    }
    let input = input.unwrap_or_default();
    let scheme = &webhook.shape.scheme;
    let grace = match input.grace_seconds {
        Some(seconds) => RotationGrace::from_seconds(seconds)?,
        None if scheme.signs_with_several_secrets() => state.settings.rotation_grace,
        None => RotationGrace::from_seconds(0)?,
    };
    let new = match input.secret {
        Some(chosen) => SigningSecret::chosen(&chosen, scheme, "secret")?,
        None => SigningSecret::generate(),
    };
    let now = time::now();
    webhook.rotate_secret(new, now, grace);
    webhook.updated_at = now;
    state
        .store
        .update_webhook_if_unchanged(&webhook, seen)
        .await?;
    state.engine.webhook_changed(&webhook.id);
    Ok(Json(signing_secret(&state, &webhook, &caller).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StampedAttempt {
    at: DateTime<Utc>,
    attempt_id: AttemptId,
    /// Where the attempt, with its request and response, can be read.
    link: String,
}

/// CloudBlue's statistics list for one webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    /// Events that triggered the webhook (deliveries made for it, held ones included).
    events: u64,
    /// Attempts made, retries included.
    triggers: u64,
    success_responses: u64,
    failure_responses: u64,
    failures_since_last_success: u64,
    last_event_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, if any delivery is waiting; `null` while the webhook is
    /// disabled or out of order (its deliveries are held: none is due).
    next_trigger_at: Option<DateTime<Utc>>,
    last_success: Option<StampedAttempt>,
    last_failure: Option<StampedAttempt>,
    /// Deliveries that exhausted their retries since the last success.
    failed_deliveries_in_a_row: u64,
    /// Deliveries waiting while the webhook is disabled or out of order (0 when active).
    held_deliveries: u64,
}

fn stamped(s: Option<(DateTime<Utc>, AttemptId)>) -> Option<StampedAttempt> {
    s.map(|(at, id)| StampedAttempt {
        link: format!("/v1/attempts/{id}"),
        at,
        attempt_id: id,
    })
}

/// The webhook's statistics: events, triggers, successes, failures, and the last of each.
#[utoipa::path(get, operation_id = "getWebhookStats", path = "/v1/webhooks/{id}/stats", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = StatsView), (status = 404, body = Problem)))]
pub async fn stats(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StatsView>, ApiError> {
    let webhook = load(&state, &caller, &id, Action::ReadWebhooks).await?;
    let s = state.store.webhook_stats(&webhook.id).await?;
    let held = if webhook.status.holds_deliveries() {
        state
            .store
            .held_deliveries(std::slice::from_ref(&webhook.id))
            .await?
    } else {
        Default::default()
    };
    Ok(Json(StatsView {
        events: s.events,
        triggers: s.triggers,
        success_responses: s.successes,
        failure_responses: s.failures,
        failures_since_last_success: s.failures_since_success,
        last_event_at: s.last_event_at,
        next_trigger_at: s
            .next_trigger_at
            .filter(|_| !webhook.status.holds_deliveries()),
        last_success: stamped(s.last_success),
        last_failure: stamped(s.last_failure),
        failed_deliveries_in_a_row: s.failed_deliveries_in_a_row,
        held_deliveries: held.get(&webhook.id).copied().unwrap_or(0),
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerInput {
    /// The event type to send as (default `webhook.test`); need not exist.
    #[serde(rename = "type")]
    #[schema(schema_with = openapi::optional_event_type_name)]
    event_type: Option<String>,
    /// The data to send (default `{}`).
    data: Option<Value>,
}

/// Trigger now: send a test event (or the given payload) to this webhook at once, whatever its
/// filter, and answer with the attempt. Success reactivates an out-of-order webhook, and the
/// deliveries it held flow.
#[utoipa::path(post, operation_id = "triggerWebhook", path = "/v1/webhooks/{id}/trigger", tag = "webhooks",
    request_body(content = Option<TriggerInput>, description = "Optional; no body sends an empty `webhook.test` event."),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = crate::routes::deliveries::AttemptView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn trigger(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<TriggerInput>,
) -> Result<Json<crate::routes::deliveries::AttemptView>, ApiError> {
    let input = input.unwrap_or_default();
    let webhook = load(&state, &caller, &id, Action::ManageWebhooks).await?;
    let event_type = input
        .event_type
        .as_deref()
        .map(EventTypeName::parse)
        .transpose()
        .map_err(|e| e.within("type"))?;
    let data = input
        .data
        .unwrap_or_else(|| Value::Object(Default::default()));
    let attempt = state
        .engine
        .send_now(&webhook, event_type, data, AttemptTrigger::Manual)
        .await?;
    Ok(Json(crate::routes::deliveries::AttemptView::for_caller(
        attempt, &caller,
    )))
}

/// Validate: send the validation event; a 2xx moves a `pending` webhook to `active`.
#[utoipa::path(post, operation_id = "validateWebhook", path = "/v1/webhooks/{id}/validate", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = crate::routes::deliveries::AttemptView), (status = 404, body = Problem)))]
pub async fn validate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::routes::deliveries::AttemptView>, ApiError> {
    let webhook = load(&state, &caller, &id, Action::ManageWebhooks).await?;
    let data = Value::Object(Default::default());
    let attempt = state
        .engine
        .send_now(&webhook, None, data, AttemptTrigger::Validation)
        .await?;
    Ok(Json(crate::routes::deliveries::AttemptView::for_caller(
        attempt, &caller,
    )))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayInput {
    /// Replay every failed delivery created at or after this time (RFC 3339).
    since: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayCount {
    /// How many failed deliveries are due again.
    replayed: u64,
}

/// Replay every failed delivery of the webhook since a time; they are sent again at once.
#[utoipa::path(post, operation_id = "replayWebhookDeliveries", path = "/v1/webhooks/{id}/replay", tag = "webhooks", request_body = ReplayInput,
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = ReplayCount), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ReplayInput>,
) -> Result<Json<ReplayCount>, ApiError> {
    let webhook = load(&state, &caller, &id, Action::ManageWebhooks).await?;
    let since = time::within_rfc3339("since", input.since)?;
    let replayed = state
        .store
        .replay_failed(&webhook.id, since, time::now())
        .await?;
    state.engine.wake();
    Ok(Json(ReplayCount { replayed }))
}
