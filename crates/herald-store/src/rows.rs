//! Database rows and their conversion to and from domain types.
//!
//! Rows hold only what both databases decode the same way (text, 64-bit integers, booleans), so
//! one set of row types serves both backends. Anything that fails to convert back is reported as
//! [`StoreError::Corrupt`] rather than a panic.

use herald_core::api_key::ApiKey;
use herald_core::attempt::{
    Attempt, AttemptError, AttemptTrigger, ErrorKind, ReceivedResponse, SentRequest,
};
use herald_core::auth::Role;
use herald_core::delivery::{Delivery, DeliveryStatus};
use herald_core::event::{Actor, Event, EventId};
use herald_core::event_type::{EventSchema, EventType, EventTypeName};
use herald_core::filter::{EventFilter, EventPattern};
use herald_core::id::AttemptId;
use herald_core::id::{ApiKeyId, DeliveryId, ProjectId, WebhookId};
use herald_core::page::Cursor;
use herald_core::project::{Project, ProjectName, ProjectSettings};
use herald_core::secret::SigningSecret;
use herald_core::shape::{Format, Preset, Shape, SigningScheme};
use herald_core::time::{Timestamp, from_millis, to_millis};
use herald_core::webhook::{
    CustomData, CustomHeaders, HttpMethod, RetryPolicy, TargetUrl, Timeout, Webhook, WebhookStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{StoreError, StoreResult, WebhookStats};

fn corrupt<E>(what: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::Corrupt {
        what,
        source: Box::new(e),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown value `{0}`")]
struct UnknownValue(String);

fn known<T>(what: &'static str, value: &str, parse: impl Fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(value).ok_or_else(|| corrupt(what)(UnknownValue(value.to_owned())))
}

fn json<T: DeserializeOwned>(what: &'static str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(corrupt(what))
}

/// Serialises a value for a TEXT column. Domain types always serialise.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn ms(t: &Timestamp) -> i64 {
    to_millis(t)
}

/// The cursor value that sorts after every row: used when no cursor was given, so queries can
/// always bind one.
pub(crate) fn start_position(cursor: Option<&Cursor>) -> (i64, String) {
    cursor.map_or((i64::MAX, String::new()), |c| {
        (c.created_at_ms, c.id.clone())
    })
}

/// The columns of a [`ProjectRow`], as a literal for `concat!`.
macro_rules! project_columns {
    () => {
        "id, name, retry_policy, retention_days, require_validation, validation_event, \
         created_at, updated_at"
    };
}
pub(crate) use project_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct ProjectRow {
    id: String,
    name: String,
    retry_policy: Option<String>,
    retention_days: Option<i64>,
    require_validation: bool,
    validation_event: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ProjectRow> for Project {
    type Error = StoreError;
    fn try_from(r: ProjectRow) -> StoreResult<Self> {
        Ok(Self {
            id: ProjectId::parse(&r.id).map_err(corrupt("project id"))?,
            name: ProjectName::parse(&r.name).map_err(corrupt("project name"))?,
            settings: ProjectSettings {
                retry_policy: r
                    .retry_policy
                    .map(|p| json::<RetryPolicy>("project retry policy", &p))
                    .transpose()?,
                retention_days: r.retention_days.and_then(|d| u32::try_from(d).ok()),
                require_validation: r.require_validation,
                validation_event: r
                    .validation_event
                    .map(|n| EventTypeName::parse(&n).map_err(corrupt("validation event name")))
                    .transpose()?,
            },
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

/// The columns of an [`AttemptRow`], as a literal for `concat!`.
macro_rules! attempt_columns {
    () => {
        "id, delivery_id, webhook_id, project_id, number, trigger_kind, started_at, duration_ms, \
         request, response, error_kind, error_message, succeeded"
    };
}
pub(crate) use attempt_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct AttemptRow {
    id: String,
    delivery_id: String,
    webhook_id: String,
    project_id: String,
    number: i64,
    trigger_kind: String,
    started_at: i64,
    duration_ms: i64,
    request: String,
    response: Option<String>,
    error_kind: Option<String>,
    error_message: Option<String>,
    succeeded: bool,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = StoreError;
    fn try_from(r: AttemptRow) -> StoreResult<Self> {
        let error = match (r.error_kind, r.error_message) {
            (Some(kind), message) => Some(AttemptError {
                kind: known("attempt error kind", &kind, ErrorKind::parse)?,
                message: message.unwrap_or_default(),
            }),
            (None, _) => None,
        };
        Ok(Self {
            id: AttemptId::parse(&r.id).map_err(corrupt("attempt id"))?,
            delivery_id: DeliveryId::parse(&r.delivery_id).map_err(corrupt("delivery id"))?,
            webhook_id: WebhookId::parse(&r.webhook_id).map_err(corrupt("webhook id"))?,
            project_id: ProjectId::parse(&r.project_id).map_err(corrupt("project id"))?,
            number: u32::try_from(r.number).unwrap_or(0),
            trigger: known("attempt trigger", &r.trigger_kind, AttemptTrigger::parse)?,
            started_at: from_millis(r.started_at),
            duration_ms: u64::try_from(r.duration_ms).unwrap_or(0),
            request: json::<SentRequest>("attempt request", &r.request)?,
            response: r
                .response
                .map(|t| json::<ReceivedResponse>("attempt response", &t))
                .transpose()?,
            error,
            succeeded: r.succeeded,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StatsRow {
    events: i64,
    triggers: i64,
    successes: i64,
    failures: i64,
    failures_since_success: i64,
    last_event_at: Option<i64>,
    last_success_at: Option<i64>,
    last_success_attempt: Option<String>,
    last_failure_at: Option<i64>,
    last_failure_attempt: Option<String>,
    failed_deliveries_in_a_row: i64,
    failing_since: Option<i64>,
    next_trigger_at: Option<i64>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn stamped(at: Option<i64>, id: Option<String>) -> StoreResult<Option<(Timestamp, AttemptId)>> {
    match (at, id) {
        (Some(at), Some(id)) => Ok(Some((
            from_millis(at),
            AttemptId::parse(&id).map_err(corrupt("attempt id"))?,
        ))),
        _ => Ok(None),
    }
}

impl TryFrom<StatsRow> for WebhookStats {
    type Error = StoreError;
    fn try_from(r: StatsRow) -> StoreResult<Self> {
        Ok(Self {
            events: count(r.events),
            triggers: count(r.triggers),
            successes: count(r.successes),
            failures: count(r.failures),
            failures_since_success: count(r.failures_since_success),
            last_event_at: r.last_event_at.map(from_millis),
            next_trigger_at: r.next_trigger_at.map(from_millis),
            last_success: stamped(r.last_success_at, r.last_success_attempt)?,
            last_failure: stamped(r.last_failure_at, r.last_failure_attempt)?,
            failed_deliveries_in_a_row: count(r.failed_deliveries_in_a_row),
            failing_since: r.failing_since.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventTypeRow {
    project_id: String,
    name: String,
    description: Option<String>,
    schema: Option<String>,
    archived: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<EventTypeRow> for EventType {
    type Error = StoreError;
    fn try_from(r: EventTypeRow) -> StoreResult<Self> {
        Ok(Self {
            project_id: ProjectId::parse(&r.project_id).map_err(corrupt("project id"))?,
            name: EventTypeName::parse(&r.name).map_err(corrupt("event type name"))?,
            description: r.description,
            schema: r
                .schema
                .map(|s| {
                    json("event type schema", &s)
                        .and_then(|v| EventSchema::parse(v).map_err(corrupt("event type schema")))
                })
                .transpose()?,
            archived: r.archived,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

/// The columns of a [`WebhookRow`], as a literal for `concat!`.
macro_rules! webhook_columns {
    () => {
        "id, project_id, name, description, url, method, filter, headers, custom_data, preset, \
         format, scheme, timeout_ms, retry_policy, status, status_reason, secret, \
         previous_secret, previous_secret_expires_at, created_at, updated_at"
    };
}
pub(crate) use webhook_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct WebhookRow {
    id: String,
    project_id: String,
    name: String,
    description: Option<String>,
    url: String,
    method: String,
    filter: Option<String>,
    headers: String,
    custom_data: String,
    preset: Option<String>,
    format: String,
    scheme: String,
    timeout_ms: i64,
    retry_policy: Option<String>,
    status: String,
    status_reason: Option<String>,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;
    fn try_from(r: WebhookRow) -> StoreResult<Self> {
        let filter = match r.filter {
            None => EventFilter::All,
            Some(text) => EventFilter::Only(json::<Vec<EventPattern>>("webhook filter", &text)?),
        };
        Ok(Self {
            id: WebhookId::parse(&r.id).map_err(corrupt("webhook id"))?,
            project_id: ProjectId::parse(&r.project_id).map_err(corrupt("project id"))?,
            name: r.name,
            description: r.description,
            url: TargetUrl::from_stored(&r.url).map_err(corrupt("webhook url"))?,
            method: known("webhook method", &r.method, HttpMethod::parse)?,
            filter,
            headers: json::<CustomHeaders>("webhook headers", &r.headers)?,
            custom_data: json::<CustomData>("webhook custom data", &r.custom_data)?,
            shape: Shape {
                preset: r
                    .preset
                    .map(|p| known("webhook preset", &p, |s| Preset::from_name(s).ok()))
                    .transpose()?,
                format: json::<Format>("webhook format", &r.format)?,
                scheme: json::<SigningScheme>("webhook scheme", &r.scheme)?,
            },
            timeout: Timeout::from_millis(u64::try_from(r.timeout_ms).unwrap_or(0)),
            retry_policy: r
                .retry_policy
                .map(|p| json::<RetryPolicy>("webhook retry policy", &p))
                .transpose()?,
            status: known("webhook status", &r.status, WebhookStatus::parse)?,
            status_reason: r.status_reason,
            secret: SigningSecret::from_stored(r.secret),
            // Written together; a half-written pair (never made by Herald) means no grace.
            previous_secret: match (r.previous_secret, r.previous_secret_expires_at) {
                (Some(old), Some(until)) => {
                    Some((SigningSecret::from_stored(old), from_millis(until)))
                }
                _ => None,
            },
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

/// A webhook's columns as bound for INSERT and UPDATE, in `webhook_columns!()` order.
pub(crate) struct WebhookValues {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub method: &'static str,
    pub filter: Option<String>,
    pub headers: String,
    pub custom_data: String,
    pub preset: Option<&'static str>,
    pub format: String,
    pub scheme: String,
    pub timeout_ms: i64,
    pub retry_policy: Option<String>,
    pub status: &'static str,
    pub status_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&Webhook> for WebhookValues {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id.to_string(),
            project_id: w.project_id.to_string(),
            name: w.name.clone(),
            description: w.description.clone(),
            url: w.url.as_str().to_owned(),
            method: w.method.as_str(),
            filter: w.filter.to_strings().map(|p| to_json(&p)),
            headers: to_json(&w.headers),
            custom_data: to_json(&w.custom_data),
            preset: w.shape.preset.map(Preset::name),
            format: to_json(&w.shape.format),
            scheme: to_json(&w.shape.scheme),
            timeout_ms: i64::try_from(w.timeout.duration().as_millis()).unwrap_or(i64::MAX),
            retry_policy: w.retry_policy.as_ref().map(to_json),
            status: w.status.as_str(),
            status_reason: w.status_reason.clone(),
            secret: w.secret.expose().to_owned(),
            previous_secret: w
                .previous_secret
                .as_ref()
                .map(|(s, _)| s.expose().to_owned()),
            previous_secret_expires_at: w.previous_secret.as_ref().map(|(_, until)| ms(until)),
            created_at: ms(&w.created_at),
            updated_at: ms(&w.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: String,
    name: String,
    role: String,
    project_id: Option<String>,
    token_hash: String,
    token_prefix: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> StoreResult<Self> {
        Ok(Self {
            id: ApiKeyId::parse(&r.id).map_err(corrupt("API key id"))?,
            name: r.name,
            role: known("API key role", &r.role, Role::parse)?,
            project: r
                .project_id
                .map(|p| ProjectId::parse(&p).map_err(corrupt("project id")))
                .transpose()?,
            token_hash: r.token_hash,
            token_prefix: r.token_prefix,
            created_at: from_millis(r.created_at),
            revoked_at: r.revoked_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    project_id: String,
    id: String,
    event_type: String,
    occurred_at: i64,
    data: String,
    actor_id: Option<String>,
    actor_email: Option<String>,
    created_at: i64,
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;
    fn try_from(r: EventRow) -> StoreResult<Self> {
        let actor = (r.actor_id.is_some() || r.actor_email.is_some()).then_some(Actor {
            id: r.actor_id,
            email: r.actor_email,
        });
        Ok(Self {
            id: EventId::parse(&r.id).map_err(corrupt("event id"))?,
            project_id: ProjectId::parse(&r.project_id).map_err(corrupt("project id"))?,
            event_type: EventTypeName::parse(&r.event_type).map_err(corrupt("event type"))?,
            occurred_at: from_millis(r.occurred_at),
            data: json("event data", &r.data)?,
            actor,
            created_at: from_millis(r.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: String,
    project_id: String,
    event_id: String,
    webhook_id: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> StoreResult<Self> {
        Ok(Self {
            id: DeliveryId::parse(&r.id).map_err(corrupt("delivery id"))?,
            project_id: ProjectId::parse(&r.project_id).map_err(corrupt("project id"))?,
            event_id: EventId::parse(&r.event_id).map_err(corrupt("event id"))?,
            webhook_id: WebhookId::parse(&r.webhook_id).map_err(corrupt("webhook id"))?,
            status: known("delivery status", &r.status, DeliveryStatus::parse)?,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            next_attempt_at: r.next_attempt_at.map(from_millis),
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

/// Converts rows, keeping the first failure.
pub(crate) fn convert<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Maps a write's failure: a unique violation is a conflict on `field`, a foreign-key violation
/// means the parent (`parent`) is gone; anything else stays a database error.
pub(crate) fn write_error(
    entity: &'static str,
    field: &'static str,
    parent: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict { entity, field }
        }
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::NotFound { entity: parent }
        }
        _ => StoreError::Database(e),
    }
}

/// Turns a missing row into [`StoreError::NotFound`] and converts a present one.
pub(crate) fn found<R, T>(entity: &'static str, row: Option<R>) -> StoreResult<T>
where
    T: TryFrom<R, Error = StoreError>,
{
    row.ok_or(StoreError::NotFound { entity })
        .and_then(T::try_from)
}
