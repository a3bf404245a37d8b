//! Sending one prepared request and classifying what happened.
//!
//! One pooled HTTP client for every webhook (keep-alive connections per host, see
//! [`client`](crate::client)), redirects never followed, destinations checked by the
//! [`guard`](crate::guard), the response body read only up to a cap — stopping while reading, so
//! a receiver streaming gigabytes costs nothing.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::attempt::{AttemptError, ErrorKind, HeaderRecord, ReceivedResponse};
use herald_core::retry::parse_retry_after;

use crate::client::{Client, ClientError, Outgoing};
use crate::guard::DestinationPolicy;
use crate::request::Prepared;

/// How much of a response body is read and kept.
pub const RESPONSE_BODY_CAP: usize = 64 * 1024;

/// What one attempt produced.
#[derive(Debug)]
pub struct Outcome {
    pub response: Option<ReceivedResponse>,
    pub error: Option<AttemptError>,
    /// The receiver's `Retry-After` on 429 or 503.
    pub retry_after: Option<Duration>,
    pub duration: Duration,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self
                .response
                .as_ref()
                .is_some_and(|r| (200..300).contains(&r.status))
    }
}

/// Sends attempts: the https-only rule, then the shared [`Client`].
#[derive(Clone, Debug)]
pub struct Sender {
    client: Client,
    allow_http: bool,
}

impl Sender {
    pub fn new(
        policy: Arc<DestinationPolicy>,
        allow_http: bool,
        max_idle_per_host: usize,
        max_idle_total: usize,
    ) -> Result<Self, rustls::Error> {
        Ok(Self {
            client: Client::new(policy, max_idle_per_host, max_idle_total)?,
            allow_http,
        })
    }

    /// Sends `request`, giving up after `timeout` (connecting, sending and reading all count).
    pub async fn send(&self, request: Prepared, timeout: Duration) -> Outcome {
        let started = Instant::now();
        let refused = |message: String| Outcome {
            response: None,
            error: Some(AttemptError {
                kind: ErrorKind::RefusedByPolicy,
                message,
            }),
            retry_after: None,
            duration: started.elapsed(),
        };
        if request.url.scheme() == "http" && !self.allow_http {
            return refused("plain http is not allowed; use https".into());
        }
        // Where it may go is the client's to check, for every address it connects to (IP
        // literals and resolved names alike).
        let outgoing = Outgoing {
            method: match request.method {
                herald_core::webhook::HttpMethod::Post => hyper::Method::POST,
                herald_core::webhook::HttpMethod::Get => hyper::Method::GET,
            },
            url: &request.url,
            headers: request.headers,
            body: request.body,
        };
        match tokio::time::timeout(timeout, self.client.exchange(outgoing, RESPONSE_BODY_CAP)).await
        {
            Err(_) => Outcome {
                response: None,
                error: Some(AttemptError {
                    kind: ErrorKind::Timeout,
                    message: format!("no complete response within {} ms", timeout.as_millis()),
                }),
                retry_after: None,
                duration: started.elapsed(),
            },
            Ok(Err(e)) => Outcome {
                response: None,
                error: Some(classify(&e)),
                retry_after: None,
                duration: started.elapsed(),
            },
            Ok(Ok(received)) => {
                let status = received.status;
                let retry_after = if status == 429 || status == 503 {
                    received
                        .headers
                        .get(hyper::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, chrono_now()))
                } else {
                    None
                };
                let error = (!(200..300).contains(&status)).then(|| AttemptError {
                    kind: ErrorKind::Status,
                    message: format!("the receiver answered {status}"),
                });
                let response = ReceivedResponse {
                    status,
                    headers: HeaderRecord::of(
                        received
                            .headers
                            .iter()
                            .map(|(name, value)| (name.as_str(), value.as_bytes())),
                    ),
                    body: String::from_utf8_lossy(&received.body).into_owned(),
                    truncated: received.truncated,
                };
                Outcome {
                    response: Some(response),
                    error,
                    retry_after,
                    duration: started.elapsed(),
                }
            }
        }
    }
}

fn chrono_now() -> i64 {
    herald_core::time::now().timestamp()
}

/// Names the failure.
fn classify(error: &ClientError) -> AttemptError {
    let kind = match error {
        ClientError::Refused(_) | ClientError::Request(_) => ErrorKind::RefusedByPolicy,
        ClientError::Dns(_) => ErrorKind::Dns,
        ClientError::Tls { .. } => ErrorKind::Tls,
        ClientError::ConnectTimeout { .. } => ErrorKind::Timeout,
        ClientError::Connect { .. } | ClientError::Http(_) => ErrorKind::Connect,
    };
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    AttemptError { kind, message }
}
