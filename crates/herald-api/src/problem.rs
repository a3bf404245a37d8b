//! The one error type at the HTTP edge, and its RFC 9457 problem+json rendering.
//!
//! Handlers return `Result<_, ApiError>`; store and domain errors convert into it with `?`.
//! Internal errors log their whole cause chain and tell the client nothing private.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_core::InvalidField;
use herald_store::StoreError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A value failed validation (422).
    #[error("{0}")]
    Invalid(#[from] InvalidField),
    /// The body is not well-formed JSON (400).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A query string parameter is malformed (400).
    #[error("bad query parameter {field}: {message}")]
    BadQuery { field: String, message: String },
    /// The path does not percent-decode to UTF-8 (400).
    #[error("the path does not percent-decode to UTF-8 text")]
    UndecodablePath,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than the {limit}-byte limit")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {seconds} seconds")]
    BodyTimeout { seconds: u64 },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("another {entity} already has this {field}")]
    Conflict {
        entity: &'static str,
        field: &'static str,
    },
    /// The request conflicts with the state of what it names (409); `detail` says what to do.
    #[error("{detail}")]
    StateConflict {
        /// The problem type's slug: `/problems/{kind}`.
        kind: &'static str,
        title: &'static str,
        detail: String,
        field: Option<String>,
    },
    #[error(
        "this is the last active admin key: create another admin key first (or, with every admin key lost, run `herald admin-key create` on the server)"
    )]
    LastAdminKey,
    #[error(
        "the {entity} was changed by someone else while this request ran; read it again and retry"
    )]
    Changed { entity: &'static str },
    /// Only a disabled or out-of-order webhook holds deliveries (409).
    #[error(
        "the webhook is {}: only a disabled or out-of-order webhook holds deliveries, so there are none to discard",
        status.as_str()
    )]
    NotHeld {
        status: herald_core::webhook::WebhookStatus,
    },
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: String },
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<herald_delivery::EngineError> for ApiError {
    fn from(e: herald_delivery::EngineError) -> Self {
        match e {
            herald_delivery::EngineError::Store(e) => e.into(),
            herald_delivery::EngineError::ShuttingDown => {
                Self::Unavailable("Herald is shutting down; try again")
            }
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // A failed group commit hands every waiter the same error, shared: it is answered
        // (and logged) as what it is underneath.
        match *e.underlying() {
            StoreError::NotFound { entity } => Self::NotFound { entity },
            StoreError::Conflict { entity, field } => Self::Conflict { entity, field },
            StoreError::Changed { entity } => Self::Changed { entity },
            StoreError::LastAdminKey => Self::LastAdminKey,
            _ => Self::Internal(Box::new(e)),
        }
    }
}

/// An RFC 9457 problem document, with `field` naming the part of the request at fault.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/invalid-field`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, as a path (`headers.X-Foo`, `events[1]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<String>) {
        use StatusCode as S;
        match self {
            Self::Invalid(e) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                Some(e.field.clone()),
            ),
            Self::MalformedJson(_) => (S::BAD_REQUEST, "malformed-json", "Malformed JSON", None),
            Self::BadQuery { field, .. } => (
                S::BAD_REQUEST,
                "invalid-query",
                "Invalid query parameter",
                Some(field.clone()),
            ),
            Self::UndecodablePath => (
                S::BAD_REQUEST,
                "invalid-path",
                "Invalid path",
                Some("path".to_owned()),
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                None,
            ),
            Self::PayloadTooLarge { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                None,
            ),
            Self::BodyTimeout { .. } => (
                S::REQUEST_TIMEOUT,
                "request-timeout",
                "Request timeout",
                None,
            ),
            Self::Unauthorized(_) => (S::UNAUTHORIZED, "unauthorized", "Unauthorized", None),
            Self::Forbidden(_) => (S::FORBIDDEN, "forbidden", "Forbidden", None),
            Self::NotFound { .. } => (S::NOT_FOUND, "not-found", "Not found", None),
            Self::Conflict { field, .. } => (
                S::CONFLICT,
                "conflict",
                "Conflict",
                Some((*field).to_owned()),
            ),
            Self::Changed { .. } => (S::CONFLICT, "changed-meanwhile", "Changed meanwhile", None),
            Self::StateConflict {
                kind, title, field, ..
            } => (S::CONFLICT, kind, title, field.clone()),
            Self::NotHeld { .. } => (S::CONFLICT, "not-held", "Nothing held", None),
            Self::LastAdminKey => (
                S::CONFLICT,
                "last-admin-key",
                "Last admin key",
                Some("id".to_owned()),
            ),
            Self::NoRoute { .. } => (S::NOT_FOUND, "no-such-route", "No such route", None),
            Self::MethodNotAllowed { .. } => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                None,
            ),
            Self::Unavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                None,
            ),
            Self::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
                None,
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug, title, field) = self.parts();
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field,
        }
    }
}

/// An error and every cause under it, as one line: `outer: inner: innermost`.
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            let chain = cause_chain(cause.as_ref());
            tracing::error!(error = %chain, "internal error while handling a request");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Route fallbacks, so unknown paths and methods answer in problem+json too.
pub async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_shared_store_error_is_answered_as_what_it_is_underneath() {
        let changed = StoreError::Shared(Arc::new(StoreError::Changed { entity: "webhook" }));
        assert!(matches!(
            ApiError::from(changed),
            ApiError::Changed { entity: "webhook" }
        ));
        // Any other failure stays what it was through the sharing: the log shows its cause,
        // not "corrupt data".
        let lost = StoreError::Shared(Arc::new(StoreError::InUse {
            path: "/var/lib/herald".into(),
        }));
        let ApiError::Internal(cause) = ApiError::from(lost) else {
            panic!("an internal error")
        };
        let chain = cause_chain(cause.as_ref());
        assert!(chain.contains("another Herald process"), "{chain}");
        assert!(!chain.contains("could not be read back"), "{chain}");
    }
}
