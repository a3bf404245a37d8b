//! The server's connections, seen from raw TCP clients on loopback: slow and silent clients are
//! closed after the header timeout, idle keep-alive connections after the idle timeout, the
//! connection cap makes newcomers wait until a connection closes, and a response after which
//! the server closes (a 413) says `Connection: close` and ends in a clean EOF, never a reset.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};

async fn app(options: Options) -> TestApp {
    spawn_app_with(Backend::Sqlite, options).await.unwrap()
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// How a connection ended, seen by a client waiting to read.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// A clean close (FIN): `read` returned 0.
    Eof,
    Reset,
    /// Still open after the wait.
    Open,
}

/// Reads (and drops) until the connection ends or `within` passes.
async fn wait_for_end(stream: &mut TcpStream, within: Duration) -> End {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return End::Open,
            Ok(Ok(0)) => return End::Eof,
            Ok(Ok(_)) => continue,
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => return End::Reset,
            Ok(Err(e)) => panic!("unexpected read error: {e}"),
        }
    }
}

/// One response: its head (status line and headers, lower-cased) and body.
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .expect("the response reads without error");
        assert!(n > 0, "closed before a whole response head: {data:?}");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed inside the body");
        data.extend_from_slice(&buf[..n]);
    }
    (head, data[head_end..head_end + length].to_vec())
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: herald\r\n\r\n";

#[tokio::test]
async fn a_client_that_sends_nothing_or_half_a_header_is_closed_after_the_header_timeout() {
    let app = app(Options {
        header_read_timeout_ms: 300,
        idle_timeout_ms: 10_000,
        ..Options::default()
    })
    .await;

    let mut silent = connect(&app).await;
    let started = Instant::now();
    assert_eq!(
        wait_for_end(&mut silent, Duration::from_secs(5)).await,
        End::Eof
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");

    let mut half = connect(&app).await;
    let started = Instant::now();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: her")
        .await
        .unwrap();
    assert_eq!(
        wait_for_end(&mut half, Duration::from_secs(5)).await,
        End::Eof
    );
    assert!(started.elapsed() >= Duration::from_millis(250));

    // A slow drip does not push the deadline on: the whole header is due in 300 ms.
    let mut drip = connect(&app).await;
    let started = Instant::now();
    let closed = async {
        for byte in b"GET /health HTTP/1.1\r\nX-Slow: ".iter().cycle().take(40) {
            if drip.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    closed.await;
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "still written to after {:?}",
        started.elapsed()
    );
    let mut buf = [0u8; 64];
    assert!(matches!(drip.read(&mut buf).await, Ok(0) | Err(_)));

    // A prompt client is served as before.
    let mut prompt = connect(&app).await;
    prompt.write_all(HEALTH).await.unwrap();
    assert!(
        read_response(&mut prompt)
            .await
            .0
            .starts_with("http/1.1 200")
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let app = app(Options {
        header_read_timeout_ms: 300,
        idle_timeout_ms: 1_000,
        ..Options::default()
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(HEALTH).await.unwrap();
    assert!(
        read_response(&mut stream)
            .await
            .0
            .starts_with("http/1.1 200")
    );
    // Idle for twice the header timeout: still open, and serves the next request.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream.write_all(HEALTH).await.unwrap();
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let idle_since = Instant::now();
    assert_eq!(
        wait_for_end(&mut stream, Duration::from_secs(5)).await,
        End::Eof
    );
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "closed after {idle:?} idle"
    );
}

#[tokio::test]
async fn past_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let app = app(Options {
        max_connections: 2,
        ..Options::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&app).await;
        stream.write_all(HEALTH).await.unwrap();
        assert!(
            read_response(&mut stream)
                .await
                .0
                .starts_with("http/1.1 200")
        );
        held.push(stream);
    }
    // The kernel completes the handshake (the listen backlog), but Herald does not take it.
    let mut waiting = connect(&app).await;
    waiting.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf))
            .await
            .is_err(),
        "answered past the cap"
    );
    drop(held.pop());
    let (head, _) = read_response(&mut waiting).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // The one still held keeps working.
    let mut still = held.pop().unwrap();
    still.write_all(HEALTH).await.unwrap();
    assert!(
        read_response(&mut still)
            .await
            .0
            .starts_with("http/1.1 200")
    );
}

/// A keep-alive POST whose declared body is far over the limit, the whole body sent.
fn oversized_post(app: &TestApp, size: usize) -> Vec<u8> {
    let mut request = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n",
        app.admin
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b' ', size));
    request
}

#[tokio::test]
async fn a_413_says_connection_close_and_ends_in_a_clean_eof() {
    let app = app(Options {
        max_body_bytes: 1024,
        ..Options::default()
    })
    .await;
    let before = app.snapshot().await;
    for round in 0..5 {
        let stream = connect(&app).await;
        let (mut reader, mut writer) = stream.into_split();
        let request = oversized_post(&app, 256 * 1024);
        // Sent alongside the reads: the server answers before it has read the body.
        let sending = tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
            writer
        });
        let mut stream_reader = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            match tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await {
                Err(_) => break End::Open,
                Ok(Ok(0)) => break End::Eof,
                Ok(Ok(n)) => stream_reader.extend_from_slice(&buf[..n]),
                Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => break End::Reset,
                Ok(Err(e)) => panic!("{e}"),
            }
        };
        let _writer = sending.await.unwrap();
        let text = String::from_utf8_lossy(&stream_reader).to_lowercase();
        assert!(text.starts_with("http/1.1 413"), "round {round}: {text}");
        assert!(text.contains("connection: close"), "round {round}: {text}");
        assert!(
            text.contains("application/problem+json"),
            "round {round}: {text}"
        );
        assert_eq!(end, End::Eof, "round {round}: {text}");
    }
    assert_eq!(app.snapshot().await, before, "a 413 changes nothing");
}

#[tokio::test]
async fn a_keep_alive_client_sending_two_requests_after_a_413_gets_no_reset() {
    let app = app(Options {
        max_body_bytes: 1024,
        ..Options::default()
    })
    .await;
    for round in 0..5 {
        let mut stream = connect(&app).await;
        let mut requests = oversized_post(&app, 64 * 1024);
        requests.extend_from_slice(HEALTH);
        requests.extend_from_slice(HEALTH);
        stream.write_all(&requests).await.unwrap();
        let (head, body) = read_response(&mut stream).await;
        assert!(head.starts_with("http/1.1 413"), "round {round}: {head}");
        assert!(head.contains("connection: close"), "round {round}: {head}");
        assert!(!body.is_empty());
        // The two requests after it are not answered; the connection ends cleanly.
        assert_eq!(
            wait_for_end(&mut stream, Duration::from_secs(5)).await,
            End::Eof,
            "round {round}"
        );
        // The client's next write may fail (the server is gone), but never with a reset.
        match stream.write_all(HEALTH).await {
            Ok(()) => {}
            Err(e) => assert_ne!(e.kind(), ErrorKind::ConnectionReset, "round {round}"),
        }
    }
}

#[tokio::test]
async fn on_shutdown_idle_connections_close_at_once_and_a_request_in_flight_is_answered() {
    let app = app(Options::default()).await;
    let mut idle = connect(&app).await;
    idle.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut idle).await.0.starts_with("http/1.1 200"));

    // A request whose body is half sent when the shutdown begins.
    let body = br#"{"name": "late-project"}"#;
    let mut busy = connect(&app).await;
    busy.write_all(
        format!(
            "POST /v1/projects HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            app.admin,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    busy.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopping = Instant::now();
    app.stop();
    assert_eq!(
        wait_for_end(&mut idle, Duration::from_secs(2)).await,
        End::Eof
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopping.elapsed()
    );
    busy.write_all(&body[5..]).await.unwrap();
    let (head, answer) = read_response(&mut busy).await;
    assert!(
        head.starts_with("http/1.1 201"),
        "{head}{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        wait_for_end(&mut busy, Duration::from_secs(3)).await,
        End::Eof
    );
    // The listener is closed: nobody new is taken in.
    assert!(
        TcpStream::connect(app.base.trim_start_matches("http://"))
            .await
            .is_err()
    );
}

/// A body sent a trickle at a time once its headers are in: no connection timeout runs while a
/// request is served, so the handler's read of the body has a deadline of its own
/// (`BODY_READ_TIMEOUT`, 30 s). Slow by nature; other tests run beside it.
#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes() {
    let app = app(Options::default()).await;
    let before = app.snapshot().await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\"",
        app.admin
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A byte every few seconds, never the whole body: the header and idle timeouts do not
    // apply, and the answer comes when the body's deadline passes.
    let answer = loop {
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "no answer after 45 s"
        );
        let mut peek = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(3), stream.peek(&mut peek)).await {
            Ok(Ok(n)) if n > 0 => break read_response(&mut stream).await,
            Ok(Ok(_)) => panic!("closed without an answer"),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => {
                let _ = stream.write_all(b" ").await;
            }
        }
    };
    let (head, body) = answer;
    let waited = started.elapsed();
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["type"], "/problems/request-timeout");
    assert!(
        waited >= Duration::from_secs(29) && waited < Duration::from_secs(40),
        "{waited:?}"
    );
    assert_eq!(
        wait_for_end(&mut stream, Duration::from_secs(5)).await,
        End::Eof
    );
    assert_eq!(app.snapshot().await, before, "nothing was made");
}
