//! The sink: a minimal HTTP/1.1 receiver on loopback standing in for customers' endpoints.
//!
//! `POST /hook` answers `200` with the headers a typical framework sends (`content-length`,
//! `date`) and notes each delivery's id and latency; `POST /hang` reads the request and never
//! answers (a hanging receiver, for the isolation scenario). Anything else gets `404`.
//!
//! Written on `httparse` rather than on a framework because the sink shares Herald's two cores:
//! every microsecond it spends per request is taken from the server being measured. With
//! axum it cost about 6 µs more per delivery (BENCHMARKS.md, sixth session). It speaks what
//! Herald sends — keep-alive requests with a `content-length` body — and closes the
//! connection on anything it does not understand.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::now_us;

/// What the sink saw.
#[derive(Default)]
pub struct Sink {
    pub latencies_us: Mutex<Vec<u64>>,
    delivery_ids: Mutex<Seen>,
    pub duplicates: AtomicU64,
    pub received: AtomicU64,
    pub last_us: AtomicU64,
}

/// Delivery ids seen: Herald's (`dlv_` and a ULID) as the ULID's 128 bits, anything else (the
/// raw scenario's) as its bytes. The sink shares the cores with the Herald it measures, and a
/// boxed copy of each id, hashed with SipHash, was a twentieth of its CPU.
#[derive(Default)]
struct Seen {
    ulids: HashSet<u128, foldhash::fast::RandomState>,
    others: HashSet<Box<[u8]>, foldhash::fast::RandomState>,
}

impl Seen {
    /// Whether the id is new.
    fn insert(&mut self, id: &[u8]) -> bool {
        let ulid = id
            .strip_prefix(b"dlv_")
            .and_then(|body| std::str::from_utf8(body).ok())
            .and_then(|body| ulid::Ulid::from_string(body).ok());
        match ulid {
            Some(ulid) => self.ulids.insert(ulid.0),
            None => self.others.insert(id.into()),
        }
    }

    fn len(&self) -> usize {
        self.ulids.len() + self.others.len()
    }
}

#[derive(serde::Deserialize)]
struct Delivered {
    data: DeliveredData,
}

#[derive(serde::Deserialize)]
struct DeliveredData {
    t: Option<u64>,
}

impl Sink {
    /// Notes one delivery: its id (a second sighting is a duplicate) and its latency from the
    /// publish time the bench put in the event's data.
    fn record(&self, delivery_id: &[u8], body: &[u8]) {
        let at = now_us();
        // Only the publish time is read (serde skips the rest without building it).
        let sent = serde_json::from_slice::<Delivered>(body)
            .ok()
            .and_then(|d| d.data.t)
            .unwrap_or(at);
        if !self.delivery_ids.lock().unwrap().insert(delivery_id) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.latencies_us
            .lock()
            .unwrap()
            .push(at.saturating_sub(sent));
        self.received.fetch_add(1, Ordering::Relaxed);
        self.last_us.fetch_max(at, Ordering::Relaxed);
    }

    /// Distinct deliveries received.
    pub fn unique(&self) -> u64 {
        self.delivery_ids.lock().unwrap().len() as u64
    }
}

/// Starts the sink on a free loopback port.
pub async fn start() -> anyhow::Result<(SocketAddr, Arc<Sink>)> {
    let sink = Arc::new(Sink::default());
    // Room for every connection Herald opens at once (`bind` would allow 128; the rest
    // waited a SYN retransmit, a second, and showed as the run's maximum latency).
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    let accepting = sink.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let sink = accepting.clone();
            tokio::spawn(async move {
                let _ = serve(stream, &sink).await;
            });
        }
    });
    Ok((addr, sink))
}

/// A request's head, copied out of the read buffer so the buffer can move on.
struct Head {
    /// Bytes of the request line and headers.
    length: usize,
    content_length: usize,
    route: Route,
    /// Where the `webhook-id` value is in the buffer parsed (empty if none came).
    delivery_id: std::ops::Range<usize>,
}

enum Route {
    Hook,
    Hang,
    NotFound,
}

/// Parses one request head; `None` while it is incomplete, `Err` if it is not HTTP/1.1 the
/// sink understands (the connection is then closed).
fn parse(buf: &[u8]) -> Result<Option<Head>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let length = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let mut content_length = 0;
    let mut delivery_id = 0..0;
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(())?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(());
        } else if h.name.eq_ignore_ascii_case("webhook-id") {
            // httparse's values are slices of `buf`.
            let at = h.value.as_ptr() as usize - buf.as_ptr() as usize;
            delivery_id = at..at + h.value.len();
        }
    }
    let route = match (request.method, request.path) {
        (Some("POST"), Some("/hook")) => Route::Hook,
        (Some("POST"), Some("/hang")) => Route::Hang,
        _ => Route::NotFound,
    };
    Ok(Some(Head {
        length,
        content_length,
        route,
        delivery_id,
    }))
}

/// The `date` header's value, formatted once per second as servers do (second 0, the epoch,
/// is never now: the first call formats).
#[derive(Default)]
struct Clock {
    second: u64,
    value: String,
}

impl Clock {
    fn date(&mut self) -> &str {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second {
            self.second = second;
            self.value = httpdate::fmt_http_date(now);
        }
        &self.value
    }
}

async fn serve(mut stream: TcpStream, sink: &Sink) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut start = 0;
    let mut clock = Clock::default();
    let mut response = Vec::with_capacity(128);
    loop {
        match parse(&buf[start..]) {
            Err(()) => return Ok(()),
            Ok(Some(head)) if buf.len() >= start + head.length + head.content_length => {
                let end = start + head.length + head.content_length;
                let body = &buf[start + head.length..end];
                response.clear();
                match head.route {
                    Route::Hook => {
                        sink.record(&buf[start..][head.delivery_id.clone()], body);
                        response
                            .extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: ");
                        response.extend_from_slice(clock.date().as_bytes());
                        response.extend_from_slice(b"\r\n\r\n");
                    }
                    Route::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return Ok(());
                    }
                    Route::NotFound => response
                        .extend_from_slice(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"),
                }
                stream.write_all(&response).await?;
                start = end;
                continue;
            }
            // Incomplete: keep the unread tail at the front of the buffer and read more.
            Ok(_) => {}
        }
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_deliveries_notes_duplicates_and_keeps_the_connection() {
        let (addr, sink) = start().await.unwrap();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let body = br#"{"type":"x","data":{"n":1,"t":1}}"#;
        let request = |id: &str| {
            let mut r = format!(
                "POST /hook HTTP/1.1\r\nhost: x\r\nwebhook-id: {id}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        };
        // Two requests in one write, the second split across two: both answered, in order.
        let mut both = request("msg_1");
        let second = request("msg_1");
        both.extend_from_slice(&second[..10]);
        stream.write_all(&both).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.write_all(&second[10..]).await.unwrap();
        let mut got = Vec::new();
        while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < 2 {
            let mut chunk = [0; 512];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the sink closed the connection");
            got.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
        assert!(text.contains("date: "), "{text}");
        assert_eq!(sink.received.load(Ordering::Relaxed), 2);
        assert_eq!(
            sink.duplicates.load(Ordering::Relaxed),
            1,
            "the same id twice"
        );

        // Another path is 404; a malformed request closes the connection.
        stream
            .write_all(b"POST /other HTTP/1.1\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut chunk = [0; 512];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(chunk[..n].starts_with(b"HTTP/1.1 404 "));
        stream.write_all(b"NOT HTTP\r\n\r\n").await.unwrap();
        assert_eq!(stream.read(&mut chunk).await.unwrap(), 0, "closed");
        assert_eq!(sink.received.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn herald_ids_and_others_are_each_seen_once() {
        let mut seen = Seen::default();
        let a = format!("dlv_{}", ulid::Ulid::new());
        let b = format!("dlv_{}", ulid::Ulid::new());
        assert!(seen.insert(a.as_bytes()));
        assert!(seen.insert(b.as_bytes()));
        assert!(!seen.insert(a.as_bytes()), "the same delivery twice");
        assert!(seen.insert(b"msg_1"));
        assert!(!seen.insert(b"msg_1"));
        // Not a ULID after the prefix: kept as bytes, not mistaken for another id.
        assert!(seen.insert(b"dlv_not-a-ulid"));
        assert!(seen.insert(&a.as_bytes()[4..]));
        assert_eq!(seen.len(), 5);
    }
}
