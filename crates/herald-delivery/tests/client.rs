//! The outbound client against real sockets on loopback: a hand-rolled HTTP/1.1 server that
//! answers exactly what each test scripts (keep-alive or not, chunked, long bodies, closing
//! idle connections, not speaking HTTP at all) and notes what it was sent.

#![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use herald_delivery::client::{Client, ClientError, Outgoing};
use herald_delivery::guard::DestinationPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted server does after each response.
#[derive(Clone, Copy)]
enum After {
    KeepAlive,
    /// Closes the connection right after the response.
    Close,
    /// Keeps the connection a moment, then closes it without having said so in the response
    /// (as a server whose keep-alive timeout passed does).
    Linger,
}

struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Answers every request with `response` (raw bytes), then does `after`.
    async fn start(response: &'static [u8], after: After) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                tokio::spawn(serve(stream, response, after, seen));
            }
        });
        Self {
            port,
            connections,
            requests,
        }
    }

    fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{}{path}", self.port)).unwrap()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    response: &'static [u8],
    after: After,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut buffer = Vec::new();
    loop {
        // One request: its head, then as many body bytes as it announced.
        let head_end = loop {
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
        buffer.drain(..head_end + length);
        seen.lock().unwrap().push(format!("{head}{body}"));
        if stream.write_all(response).await.is_err() {
            return;
        }
        match after {
            After::KeepAlive => {}
            After::Close => return,
            After::Linger => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return;
            }
        }
    }
}

fn client() -> Client {
    client_keeping(8, 64)
}

fn client_keeping(per_origin: usize, total: usize) -> Client {
    let policy = DestinationPolicy {
        allowed: vec!["127.0.0.0/8".parse().unwrap()],
    };
    Client::new(Arc::new(policy), per_origin, total).unwrap()
}

async fn post(
    client: &Client,
    url: &url::Url,
) -> Result<herald_delivery::client::Received, ClientError> {
    let mut headers = hyper::HeaderMap::new();
    headers.append(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    client
        .exchange(
            Outgoing {
                method: hyper::Method::POST,
                url,
                headers,
                body: Some(Bytes::from_static(b"{\"n\":1}")),
            },
            64,
        )
        .await
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let server = Server::start(OK, After::KeepAlive).await;
    let client = client();
    for _ in 0..5 {
        let received = post(&client, &server.url("/hook")).await.unwrap();
        assert_eq!(received.status, 200);
        assert_eq!(received.body, b"ok");
        assert!(!received.truncated);
    }
    assert_eq!(server.connections(), 1);
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    let first = &requests[0];
    assert!(first.starts_with("POST /hook HTTP/1.1\r\n"), "{first}");
    assert!(
        first.contains(&format!("host: 127.0.0.1:{}\r\n", server.port)),
        "{first}"
    );
    assert!(first.contains("content-length: 7\r\n"), "{first}");
    assert!(first.ends_with("\r\n\r\n{\"n\":1}"), "{first}");
}

#[tokio::test]
async fn idle_connections_across_origins_are_capped_and_the_oldest_closed_first() {
    let (a, b, c) = (
        Server::start(OK, After::KeepAlive).await,
        Server::start(OK, After::KeepAlive).await,
        Server::start(OK, After::KeepAlive).await,
    );
    let client = client_keeping(8, 2);
    for server in [&a, &b, &c] {
        post(&client, &server.url("/")).await.unwrap();
    }
    // Keeping c's connection made three: a's, idle longest, was closed.
    post(&client, &b.url("/")).await.unwrap();
    post(&client, &c.url("/")).await.unwrap();
    post(&client, &a.url("/")).await.unwrap();
    assert_eq!(
        (a.connections(), b.connections(), c.connections()),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn a_connection_the_receiver_closed_while_idle_is_not_used_again() {
    let server = Server::start(OK, After::Linger).await;
    let client = client();
    for _ in 0..3 {
        let received = post(&client, &server.url("/hook")).await.unwrap();
        assert_eq!(received.status, 200);
        // The connection went back to the pool; now the receiver closes it.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.connections(), 3);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn connection_close_in_the_response_is_honoured() {
    let server = Server::start(
        b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
        After::Close,
    )
    .await;
    let client = client();
    for _ in 0..3 {
        // No pause: the client must not even try the closed connection.
        assert_eq!(post(&client, &server.url("/")).await.unwrap().status, 204);
    }
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn chunked_bodies_are_read_and_long_bodies_cut_at_the_cap() {
    let chunked = Server::start(
        b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        After::KeepAlive,
    )
    .await;
    let client = client();
    for _ in 0..2 {
        let received = post(&client, &chunked.url("/")).await.unwrap();
        assert_eq!(received.status, 500);
        assert_eq!(received.body, b"hello world");
        assert_eq!(received.headers["transfer-encoding"], "chunked");
        assert!(!received.truncated);
    }
    // Read to its end, a chunked body leaves its connection reusable.
    assert_eq!(chunked.connections(), 1);

    // 100 bytes against a cap of 64: cut, and the connection (its body unread) not reused.
    static LONG: &[u8] = concat!(
        "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
    )
    .as_bytes();
    let long = Server::start(LONG, After::KeepAlive).await;
    for _ in 0..2 {
        let received = post(&client, &long.url("/")).await.unwrap();
        assert_eq!(received.body.len(), 64);
        assert!(received.truncated);
    }
    assert_eq!(long.connections(), 2);
}

#[tokio::test]
async fn credentials_in_the_url_are_sent_as_basic_auth() {
    let server = Server::start(OK, After::KeepAlive).await;
    let url = url::Url::parse(&format!(
        "http://us%40er:p%3Ass@127.0.0.1:{}/hook?x=1",
        server.port
    ))
    .unwrap();
    post(&client(), &url).await.unwrap();
    let request = &server.requests()[0];
    assert!(
        request.starts_with("POST /hook?x=1 HTTP/1.1\r\n"),
        "{request}"
    );
    // base64("us@er:p:ss")
    assert!(
        request.contains("authorization: Basic dXNAZXI6cDpzcw==\r\n"),
        "{request}"
    );

    // A request with its own authorization (a JWT scheme's token) sends that one alone.
    let mut headers = hyper::HeaderMap::new();
    headers.append(
        hyper::header::AUTHORIZATION,
        hyper::header::HeaderValue::from_static("Bearer t0k3n"),
    );
    client()
        .exchange(
            Outgoing {
                method: hyper::Method::GET,
                url: &url,
                headers,
                body: None,
            },
            64,
        )
        .await
        .unwrap();
    let request = &server.requests()[1];
    assert!(
        request.starts_with("GET /hook?x=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert_eq!(request.matches("authorization:").count(), 1, "{request}");
    assert!(
        request.contains("authorization: Bearer t0k3n\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn https_to_a_server_that_does_not_speak_tls_is_a_tls_error() {
    // Answers whatever comes with a plain HTTP error, as a plain HTTP server would.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}/hook")).unwrap();
    let error = post(&client(), &url).await.unwrap_err();
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn refused_destinations_and_closed_ports_fail_before_sending() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let error = post(&client(), &url).await.unwrap_err();
    assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");

    // ::1 is not in the allowed 127.0.0.0/8.
    let url = url::Url::parse(&format!("http://[::1]:{port}/")).unwrap();
    let error = post(&client(), &url).await.unwrap_err();
    assert!(matches!(error, ClientError::Refused(_)), "{error:?}");

    let url = url::Url::parse("http://name-that-does-not-resolve.invalid/").unwrap();
    let error = post(&client(), &url).await.unwrap_err();
    assert!(matches!(error, ClientError::Dns(_)), "{error:?}");
}
