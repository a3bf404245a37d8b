//! The outbound HTTP/1.1 client: connections made past the address guard, kept alive in a pool
//! per origin, and driven by the task that sends on them.
//!
//! Built on hyper's connection-level client rather than a full client library: the send path is
//! the hottest code in Herald, and a pooled client that runs each connection in a task of its
//! own pays a hand-off between tasks, and layers (redirects, retries, proxies, decompression)
//! Herald does not want, on every request. Here the sending task polls its connection itself
//! while it waits for the response, and puts the connection back in the pool when the
//! response is fully read. On loopback this doubled what one core sends (see BENCHMARKS.md).
//!
//! What it keeps from a full client: names resolved and every address checked by the
//! [`guard`](crate::guard) at connect time; TLS with the web PKI roots; a connect timeout;
//! credentials in the URL sent as basic auth; an idle connection that the receiver closed is
//! noticed before it is used, and a request that could not be written on a reused connection
//! is sent once on a fresh one.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::{TrySendError, http1};
use hyper::header::{HeaderMap, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::guard::{DestinationPolicy, DnsFailure, Refused, check_literal};

type Stream = Either<TcpStream, TlsStream<TcpStream>>;
type Driver = http1::Connection<TokioIo<Stream>, Full<Bytes>>;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    // Display names only this error, not its causes: `send` adds the chain once.
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Dns(#[from] DnsFailure),
    #[error("could not connect to {host}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to {host} within {} ms", .after.as_millis())]
    ConnectTimeout { host: String, after: Duration },
    #[error("TLS handshake with {host} failed")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the request could not be built: {0}")]
    Request(String),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// One request to send.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub method: hyper::Method,
    pub url: &'a url::Url,
    /// Moved into the request: the send copies no header.
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

/// A response read up to the body cap.
#[derive(Debug)]
pub struct Received {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The body went on past the cap (the rest was not read).
    pub truncated: bool,
}

/// The shared client (cheap to clone).
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Arc<DestinationPolicy>,
    tls: TlsConnector,
    pool: Mutex<Pool>,
    max_idle_per_origin: usize,
    /// Across all origins: a Herald sending to many hosts keeps at most this many sockets
    /// open between requests, whatever each host's share.
    max_idle_total: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Inner {
    /// The pool, locked; a panic while it was held leaves nothing half-done worth refusing.
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limits(&self) -> (usize, usize) {
        (self.max_idle_per_origin, self.max_idle_total)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("policy", &self.policy)
            .field("max_idle_per_origin", &self.max_idle_per_origin)
            .field("max_idle_total", &self.max_idle_total)
            .field("idle_timeout", &self.idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// Where a connection goes: scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Origin {
    https: bool,
    host: url::Host<String>,
    port: u16,
}

/// Idle connections by origin, most recently used last, and how many there are in all (kept
/// here, by these methods only, so the cap is checked without counting). Methods that drop
/// connections hand them back: the caller closes them once the lock is released.
#[derive(Default)]
struct Pool {
    by_origin: HashMap<Origin, VecDeque<Idle>>,
    total: usize,
}

impl Pool {
    /// The origin's most recently used connection; an origin left with none leaves the map,
    /// which eviction scans.
    fn take_newest(&mut self, origin: &Origin) -> Option<Idle> {
        let waiting = self.by_origin.get_mut(origin)?;
        let idle = waiting.pop_back()?;
        if waiting.is_empty() {
            self.by_origin.remove(origin);
        }
        self.total -= 1;
        Some(idle)
    }

    /// Keeps `idle` unless its origin has `limits.0` already, then closes the connections idle
    /// longest beyond `limits.1` in all.
    fn keep(&mut self, origin: Origin, idle: Idle, limits: (usize, usize)) -> Vec<Idle> {
        let waiting = self.by_origin.entry(origin).or_default();
        if waiting.len() >= limits.0 {
            return vec![idle];
        }
        waiting.push_back(idle);
        self.total += 1;
        self.evict_beyond(limits.1)
    }

    /// Puts back what a sweep found alive, in front of what was checked in meanwhile (it is
    /// older), within both limits.
    fn put_back(
        &mut self,
        swept: HashMap<Origin, VecDeque<Idle>>,
        limits: (usize, usize),
    ) -> Vec<Idle> {
        let mut evicted = Vec::new();
        for (origin, mut living) in swept {
            let waiting = self.by_origin.entry(origin).or_default();
            living.extend(waiting.drain(..));
            // Over the per-origin limit, the ones idle longest (in front) go.
            let excess = living.len().saturating_sub(limits.0.max(1));
            evicted.extend(living.drain(..excess));
            *waiting = living;
        }
        self.total = self.by_origin.values().map(VecDeque::len).sum();
        evicted.extend(self.evict_beyond(limits.1));
        evicted
    }

    /// Takes out the connections idle longest until at most `cap` are left.
    fn evict_beyond(&mut self, cap: usize) -> Vec<Idle> {
        let mut evicted = Vec::new();
        while self.total > cap {
            let oldest = self
                .by_origin
                .iter()
                .filter_map(|(origin, idle)| Some((idle.front()?.since, origin)))
                .min_by_key(|(since, _)| *since)
                .map(|(_, origin)| origin.clone());
            let Some(origin) = oldest else { break };
            let Some(waiting) = self.by_origin.get_mut(&origin) else {
                break;
            };
            if let Some(idle) = waiting.pop_front() {
                evicted.push(idle);
                self.total -= 1;
            }
            if waiting.is_empty() {
                self.by_origin.remove(&origin);
            }
        }
        evicted
    }
}

/// A keep-alive connection between two requests.
struct Idle {
    conn: Conn,
    since: Instant,
}

impl std::fmt::Debug for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idle").field("since", &self.since).finish()
    }
}

/// An HTTP/1.1 connection: the handle requests go through, and the state machine that reads
/// and writes the socket, which whoever is using the connection polls.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended. Dropped then, not kept: a request still queued
    /// on it hears at once that it was never sent, rather than waiting for a driver no one
    /// polls any more. Boxed (it is most of a kilobyte and a half): a connection moves in and
    /// out of the pool and through the send's future on every request.
    driver: Option<Box<Driver>>,
}

impl Conn {
    /// Polls the connection (unless it has ended), then `f`: the connection makes progress
    /// while the caller waits for what it wants from it.
    fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut http1::SendRequest<Full<Bytes>>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        poll_driver(&mut self.driver, cx);
        f(&mut self.sender, cx)
    }

    fn ended(&self) -> bool {
        self.driver.is_none()
    }

    /// Whether an idle connection can take a request: the receiver has not closed it.
    fn still_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let _ = self.poll_with(&mut cx, |_, _| Poll::Ready(()));
        !self.ended() && !self.sender.is_closed() && self.sender.is_ready()
    }
}

impl Client {
    /// A client that keeps up to `max_idle_per_origin` idle connections to each origin and
    /// `max_idle_total` in all (the ones idle longest are closed first).
    pub fn new(
        policy: Arc<DestinationPolicy>,
        max_idle_per_origin: usize,
        max_idle_total: usize,
    ) -> Result<Self, rustls::Error> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = Self {
            inner: Arc::new(Inner {
                policy,
                tls: TlsConnector::from(Arc::new(tls)),
                pool: Mutex::new(Pool::default()),
                max_idle_per_origin,
                max_idle_total,
                idle_timeout: Duration::from_secs(90),
                connect_timeout: Duration::from_secs(10),
            }),
        };
        client.start_sweeping();
        Ok(client)
    }

    /// Closes, every 30 s, pooled connections idle past the idle timeout or closed by their
    /// receiver; stops once the client is gone.
    fn start_sweeping(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            every.tick().await;
            loop {
                every.tick().await;
                let Some(inner) = inner.upgrade() else { return };
                let now = Instant::now();
                // Taken out and probed outside the lock; the living go back in front of any
                // checked in meanwhile (they are older).
                let mut swept = std::mem::take(&mut *inner.pool()).by_origin;
                swept.retain(|_, idle| {
                    idle.retain_mut(|i| {
                        now.duration_since(i.since) < inner.idle_timeout && i.conn.still_open()
                    });
                    !idle.is_empty()
                });
                let evicted = inner.pool().put_back(swept, inner.limits());
                // Closed outside the lock.
                drop(evicted);
            }
        });
    }

    /// Sends `request` and reads the response, its body up to `cap` bytes.
    pub async fn exchange(
        &self,
        request: Outgoing<'_>,
        cap: usize,
    ) -> Result<Received, ClientError> {
        let origin = Origin::of(request.url)?;
        let built = build(request)?;
        let (mut conn, reused) = match self.checkout(&origin) {
            Some(conn) => (conn, true),
            None => (self.connect(&origin).await?, false),
        };
        let response = match send(&mut conn, built).await {
            Ok(response) => response,
            // Never written: the receiver closed the idle connection as it was taken. Once
            // more, on a new connection.
            Err(mut e) if reused && e.message().is_some() => {
                let Some(built) = e.take_message() else {
                    return Err(e.into_error().into());
                };
                conn = self.connect(&origin).await?;
                send(&mut conn, built)
                    .await
                    .map_err(|e| ClientError::Http(e.into_error()))?
            }
            Err(e) => return Err(e.into_error().into()),
        };
        let status = response.status().as_u16();
        let (parts, mut body) = response.into_parts();
        let mut bytes = Vec::new();
        let mut truncated = false;
        // Read to its end: `None` from the body, never an error (a body cut short is one).
        let mut complete = false;
        loop {
            let frame = std::future::poll_fn(|cx| {
                conn.poll_with(cx, |_, cx| Pin::new(&mut body).poll_frame(cx))
            })
            .await;
            let Some(frame) = frame else {
                complete = true;
                break;
            };
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            let room = cap - bytes.len();
            if data.len() > room {
                bytes.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            bytes.extend_from_slice(&data);
        }
        // A body left unread makes the connection useless for the next request. (Not
        // `is_end_stream`: a chunked body never says so, even once read.)
        if complete && !truncated {
            self.checkin(origin, conn);
        }
        Ok(Received {
            status,
            headers: parts.headers,
            body: bytes,
            truncated,
        })
    }

    fn checkout(&self, origin: &Origin) -> Option<Conn> {
        loop {
            // The most recently used first: it is the least likely to have been closed. Probed
            // outside the lock (a read, perhaps a close), which every send takes.
            let mut candidate = self.inner.pool().take_newest(origin)?;
            if candidate.since.elapsed() < self.inner.idle_timeout && candidate.conn.still_open() {
                return Some(candidate.conn);
            }
        }
    }

    /// Returns a connection whose last response was read to its end, if it can take another.
    fn checkin(&self, origin: Origin, mut conn: Conn) {
        let mut cx = Context::from_waker(Waker::noop());
        let ready = conn.poll_with(&mut cx, |sender, cx| sender.poll_ready(cx));
        if !matches!(ready, Poll::Ready(Ok(()))) || conn.ended() {
            return;
        }
        let idle = Idle {
            conn,
            since: Instant::now(),
        };
        let evicted = self.inner.pool().keep(origin, idle, self.inner.limits());
        // Closed outside the lock.
        drop(evicted);
    }

    async fn connect(&self, origin: &Origin) -> Result<Conn, ClientError> {
        let inner = &self.inner;
        let addresses = resolve(&inner.policy, origin).await?;
        let tcp = tokio::time::timeout(
            inner.connect_timeout,
            connect_any(&addresses, inner.connect_timeout),
        )
        .await
        .map_err(|_| ClientError::ConnectTimeout {
            host: origin.host.to_string(),
            after: inner.connect_timeout,
        })?
        .map_err(|source| ClientError::Connect {
            host: origin.host.to_string(),
            source,
        })?;
        let _ = tcp.set_nodelay(true);
        let stream = if origin.https {
            use rustls::pki_types::ServerName;
            let name = match &origin.host {
                url::Host::Domain(name) => ServerName::try_from(name.clone())
                    .map_err(|e| ClientError::Request(e.to_string()))?,
                url::Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(*ip).into()),
                url::Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(*ip).into()),
            };
            let tls = tokio::time::timeout(inner.connect_timeout, inner.tls.connect(name, tcp))
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "no handshake within {} ms",
                            inner.connect_timeout.as_millis()
                        ),
                    ))
                })
                .map_err(|source| ClientError::Tls {
                    host: origin.host.to_string(),
                    source,
                })?;
            Either::Right(tls)
        } else {
            Either::Left(tcp)
        };
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        Ok(Conn {
            sender,
            driver: Some(Box::new(driver)),
        })
    }
}

/// Sends on `conn`, driving it until the response head arrives.
async fn send(
    conn: &mut Conn,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Incoming>, TrySendError<hyper::Request<Full<Bytes>>>> {
    let mut response = std::pin::pin!(conn.sender.try_send_request(request));
    std::future::poll_fn(|cx| {
        poll_driver(&mut conn.driver, cx);
        response.as_mut().poll(cx)
    })
    .await
}

/// Lets the connection read and write; drops it once it has ended.
fn poll_driver(driver: &mut Option<Box<Driver>>, cx: &mut Context<'_>) {
    if let Some(running) = driver
        && Pin::new(&mut **running).poll(cx).is_ready()
    {
        *driver = None;
    }
}

impl Origin {
    fn of(url: &url::Url) -> Result<Self, ClientError> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(ClientError::Request(format!("unsupported scheme {other}"))),
        };
        let host = url
            .host()
            .ok_or_else(|| ClientError::Request("the URL has no host".into()))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        Ok(Self { https, host, port })
    }
}

/// The request as hyper takes it: origin-form target, `Host`, basic auth from the URL's
/// credentials, then the prepared headers.
fn build(request: Outgoing<'_>) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
    let url = request.url;
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let mut built = hyper::Request::builder()
        .method(request.method)
        .uri(target)
        .body(Full::new(request.body.unwrap_or_default()))
        .map_err(|e| ClientError::Request(e.to_string()))?;
    let headers = built.headers_mut();
    headers.reserve(request.headers.len() + 2);
    // As the URL has it: the port only when it is not the scheme's default.
    let host = HeaderValue::from_str(&url[url::Position::BeforeHost..url::Position::AfterPort])
        .map_err(|e| ClientError::Request(e.to_string()))?;
    headers.insert(hyper::header::HOST, host);
    // URL credentials as basic auth, unless the request carries its own `authorization` (a
    // JWT scheme's bearer token, a custom header): one is sent, never both.
    let has_authorization = request.headers.contains_key(hyper::header::AUTHORIZATION);
    if !has_authorization && (!url.username().is_empty() || url.password().is_some()) {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = format!(
            "{}:{}",
            decode(url.username()),
            decode(url.password().unwrap_or_default())
        );
        let mut value = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ))
        .map_err(|e| ClientError::Request(e.to_string()))?;
        value.set_sensitive(true);
        headers.insert(hyper::header::AUTHORIZATION, value);
    }
    // After `host` (the first field line, as RFC 9110 asks), moved in as they are.
    headers.extend(request.headers);
    Ok(built)
}

/// The addresses `origin` goes to that the policy allows: an IP literal (in whatever form the
/// URL spelled it; the URL parser normalised it), or what a name resolves to.
async fn resolve(
    policy: &DestinationPolicy,
    origin: &Origin,
) -> Result<Vec<SocketAddr>, ClientError> {
    let name = match &origin.host {
        url::Host::Domain(name) => name,
        literal => {
            let ip = check_literal(policy, literal)?;
            return Ok(ip
                .map(|ip| SocketAddr::new(ip, origin.port))
                .into_iter()
                .collect());
        }
    };
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), origin.port))
        .await
        .map_err(|source| DnsFailure {
            name: name.clone(),
            source,
        })?
        .collect();
    let mut refused = None;
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|a| match policy.check(a.ip()) {
            Ok(()) => true,
            Err(r) => {
                refused.get_or_insert(r);
                false
            }
        })
        .collect();
    match (allowed.is_empty(), refused) {
        (true, Some(r)) => Err(r.into()),
        (true, None) => Err(DnsFailure {
            name: name.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        }
        .into()),
        (false, _) => Ok(allowed),
    }
}

/// Connects to the first address that answers, giving each its share of `budget`, so one
/// that silently drops packets (an unreachable IPv6 address, say) leaves time for the rest.
async fn connect_any(addresses: &[SocketAddr], budget: Duration) -> std::io::Result<TcpStream> {
    let share = budget / u32::try_from(addresses.len().max(1)).unwrap_or(u32::MAX);
    let mut last = None;
    for address in addresses {
        match tokio::time::timeout(share, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{address} did not answer within {} ms", share.as_millis()),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses")))
}
