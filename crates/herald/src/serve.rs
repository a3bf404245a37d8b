//! Herald's HTTP/1.1 server: the accept loop and each connection's life, around hyper.
//!
//! `axum::serve` closed no connection on its own: 1,100 idle connections exhausted the file
//! descriptors and every request timed out. Here, per connection:
//! - a **header timeout**: from the accept, and from the first byte of each later request,
//!   the whole header must arrive within `header_read_timeout` (a client sending nothing, or
//!   half a header, is closed);
//! - an **idle timeout**: a keep-alive connection between requests (no byte in either
//!   direction) is closed after `idle_timeout`;
//! - a **cap**: at most `max_connections` are served at once. Past it Herald stops accepting,
//!   so further clients wait in the listen backlog and are served as connections close;
//! - **no reset after an error**: a response after which the request's body was not read to
//!   its end (a 413, say) says `Connection: close`, and the connection is then closed
//!   politely — our side shut down, what the client still sends read and dropped for a moment
//!   (a "lingering close") — because closing a socket with unread bytes makes the kernel send
//!   a reset, which can destroy the response before the client reads it.
//!
//! hyper's own `header_read_timeout` is off: it runs from the end of one response to the end
//! of the next header, so it would also be the idle timeout, and the two are set apart here.
//! Both timeouts live in [`Watched`], the connection's socket, which the service tells when a
//! request is being served ([`Phase`]).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The server's limits on connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// How long a closing connection reads and drops what the client still sends, at most.
const LINGER: Duration = Duration::from_secs(2);

/// After an `accept` error (out of file descriptors, above all), wait this long before the
/// next: retrying at once would spin on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting, lets
/// every connection finish its request in flight (idle ones close at once), and returns once
/// all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        // The slot is taken before the accept: at the cap, connections wait in the backlog.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                // Responses are written whole; Nagle would only delay their last segment.
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(
                    stream,
                    router.clone(),
                    limits,
                    shutdown.clone(),
                    slot,
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    // New connections are refused from here on.
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// One connection, from accept to close. Holds its slot under the cap until it is closed.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let phase = Arc::new(Phase::default());
    let io = TokioIo::new(Watched::new(stream, limits, phase.clone()));
    let service = hyper::service::service_fn(move |request| {
        phase.set(Phase::SERVING);
        let (router, phase) = (router.clone(), phase.clone());
        Box::pin(async move {
            let response = respond(router, request).await;
            phase.set(Phase::RESPONDED);
            Ok::<_, Infallible>(response)
        })
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let mut conn = builder.serve_connection(io, service);
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let mut stopping = false;
    let served = std::future::poll_fn(|cx| {
        if !stopping && cancelled.as_mut().poll(cx).is_ready() {
            stopping = true;
            // Idle: closes now. Busy: finishes the request, answers `Connection: close`.
            Pin::new(&mut conn).graceful_shutdown();
        }
        conn.poll_without_shutdown(cx)
    })
    .await;
    let stream = conn.into_parts().io.into_inner();
    match served {
        Ok(()) => linger(stream.stream).await,
        Err(error) => {
            // A timeout, a reset by the peer, a malformed request hyper already answered:
            // nothing more is owed to this client.
            tracing::debug!(%error, "connection closed on an error");
        }
    }
}

/// Runs the request through the router. If the request's body was not read to its end, the
/// connection cannot carry another request: the answer says `Connection: close` (hyper then
/// closes it after the response).
async fn respond(router: Router, request: Request<Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let finished = Arc::new(AtomicBool::new(body.is_end_stream()));
    let body = Body::new(Tracked {
        inner: body,
        finished: finished.clone(),
    });
    let mut response = match router.oneshot(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Shuts our side down, then reads and drops what the client still sends until it closes
/// too, or [`LINGER`] has passed; then the socket is closed with nothing unread, so no reset.
async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 8192];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// What the connection is doing, as its service tells its socket.
#[derive(Debug, Default)]
struct Phase(AtomicU8);

impl Phase {
    /// Waiting for a request header (the first one, or after [`Self::RESPONDED`] was seen).
    const WAITING: u8 = 0;
    /// A request is being served: no timeout (its handler reads its body as it wants).
    const SERVING: u8 = 1;
    /// The response left the handler: the connection is idle once it is written.
    const RESPONDED: u8 = 2;

    fn set(&self, phase: u8) {
        self.0.store(phase, Ordering::Release);
    }
}

/// Which deadline runs on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    Off,
    /// The header must be complete by then.
    Header,
    /// Between requests: a byte must come (or go) by then.
    Idle,
}

/// The connection's socket, closing it (an error from `poll_read`, which ends hyper's
/// connection) when its deadline passes while hyper waits for bytes.
#[derive(Debug)]
struct Watched {
    stream: TcpStream,
    limits: Limits,
    phase: Arc<Phase>,
    deadline: Deadline,
    timer: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(stream: TcpStream, limits: Limits, phase: Arc<Phase>) -> Self {
        let mut watched = Self {
            stream,
            limits,
            phase,
            deadline: Deadline::Off,
            timer: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
        };
        // From the accept: a client that sends nothing has the header timeout to start.
        watched.arm(Deadline::Header);
        watched
    }

    fn arm(&mut self, deadline: Deadline) {
        let after = match deadline {
            Deadline::Off => {
                self.deadline = Deadline::Off;
                return;
            }
            Deadline::Header => self.limits.header_read_timeout,
            Deadline::Idle => self.limits.idle_timeout,
        };
        self.deadline = deadline;
        self.timer.as_mut().reset(Instant::now() + after);
    }

    /// Has the task woken when the deadline passes. hyper writes a response after its last
    /// read of the socket, and may not read again until the socket has bytes: the idle
    /// deadline armed by that write must wake it by itself, and the next read then fails.
    fn watch_timer(&mut self, cx: &mut Context<'_>) {
        if self.deadline != Deadline::Off {
            // Ready or not, the read that follows the wake-up decides.
            let _ = self.timer.as_mut().poll(cx);
        }
    }

    /// Follows what the service said since the socket was last used.
    fn follow_phase(&mut self) {
        match self.phase.0.load(Ordering::Acquire) {
            Phase::SERVING => self.arm(Deadline::Off),
            Phase::RESPONDED => {
                // Only this side moves RESPONDED on; a newer SERVING stays as it is.
                let _ = self.phase.0.compare_exchange(
                    Phase::RESPONDED,
                    Phase::WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                self.arm(Deadline::Idle);
            }
            _ => {}
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.follow_phase();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.deadline == Deadline::Idle {
                    // The next request has begun: its header has the header timeout.
                    this.arm(Deadline::Header);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.deadline != Deadline::Off && this.timer.as_mut().poll(cx).is_ready() {
                    let what = match this.deadline {
                        Deadline::Header => "no complete request header in time",
                        _ => "idle keep-alive connection timed out",
                    };
                    this.arm(Deadline::Off);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.follow_phase();
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, data));
        if matches!(written, Ok(n) if n > 0) && this.deadline == Deadline::Idle {
            // A slow reader of a long response is not idle.
            this.arm(Deadline::Idle);
        }
        this.watch_timer(cx);
        Poll::Ready(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.follow_phase();
        let flushed = ready!(Pin::new(&mut this.stream).poll_flush(cx));
        this.watch_timer(cx);
        Poll::Ready(flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that records whether it was read to its end.
#[derive(Debug)]
struct Tracked {
    inner: Incoming,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Raises the soft limit on open files to the hard limit (each connection, each outbound
/// connection and the database hold one; the soft limit is often 1,024). Returns the limit
/// now in force, or `None` where it cannot be read.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-files limit");
            None
        }
    }
}
