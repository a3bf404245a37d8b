//! Sending one prepared request and classifying what happened.
//!
//! One pooled HTTP client for every webhook (keep-alive connections per host), redirects never
//! followed, destinations checked by the [`guard`](crate::guard), the response body read only up
//! to a cap — stopping while reading, so a receiver streaming gigabytes costs nothing.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::attempt::{AttemptError, ErrorKind, ReceivedResponse};
use herald_core::retry::parse_retry_after;

use crate::guard::{DestinationPolicy, DnsFailure, GuardedResolver, Refused, check_url};
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

    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }
}

/// The shared HTTP client.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<DestinationPolicy>,
    allow_http: bool,
}

impl Sender {
    pub fn new(
        policy: DestinationPolicy,
        allow_http: bool,
        max_idle_per_host: usize,
    ) -> reqwest::Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // One attempt is one request: Herald's retry policy does the retrying, and records
            // it. (reqwest's own policy also copied every request's headers in case of a retry.)
            .retry(reqwest::retry::never().max_retries_per_request(0))
            // A proxy would resolve and connect on our behalf, past the address guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            client,
            policy,
            allow_http,
        })
    }

    /// Sends `request`, giving up after `timeout` (connecting, sending and reading all count).
    pub async fn send(&self, request: &Prepared, timeout: Duration) -> Outcome {
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
        if let Err(r) = check_url(&self.policy, &request.url) {
            return refused(r.to_string());
        }
        let method = match request.method {
            herald_core::webhook::HttpMethod::Post => reqwest::Method::POST,
            herald_core::webhook::HttpMethod::Get => reqwest::Method::GET,
        };
        let mut builder = self.client.request(method, request.url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let exchange = async {
            let mut response = builder.send().await?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let retry_after = if status == 429 || status == 503 {
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, chrono_now()))
            } else {
                None
            };
            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = response.chunk().await? {
                let room = RESPONSE_BODY_CAP - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((
                ReceivedResponse {
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    truncated,
                },
                retry_after,
            ))
        };
        match tokio::time::timeout(timeout, exchange).await {
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
            Ok(Ok((response, retry_after))) => {
                let error = (!(200..300).contains(&response.status)).then(|| AttemptError {
                    kind: ErrorKind::Status,
                    message: format!("the receiver answered {}", response.status),
                });
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

/// Names the failure by walking the error's causes.
fn classify(error: &reqwest::Error) -> AttemptError {
    let mut chain = error.to_string();
    let mut kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        if cause.downcast_ref::<Refused>().is_some() {
            kind = ErrorKind::RefusedByPolicy;
        } else if cause.downcast_ref::<DnsFailure>().is_some() && kind != ErrorKind::RefusedByPolicy
        {
            kind = ErrorKind::Dns;
        }
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    if kind == ErrorKind::Connect
        && (lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake"))
    {
        kind = ErrorKind::Tls;
    }
    AttemptError {
        kind,
        message: chain,
    }
}
