//! Invariant 4: after `kill -9` at any moment and a restart, every accepted delivery still
//! arrives; the only duplicates are deliveries that were in flight (leased) when the process died.
//!
//! The real `herald` binary runs as a child process, on an SQLite data directory or on a
//! PostgreSQL database (there under a stable `node_id`, so each restart takes back the leases its
//! killed predecessor held); it is SIGKILLed ten times at random moments while publishers keep
//! publishing and deliveries keep flowing.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_store::StoreTarget;
use herald_store::testing::TestDatabase;
use serde_json::json;

use crate::receiver::Receiver;

const KEY: &str = "hk_crash_test_admin_key_0123456789";
const LANE_CONCURRENCY: usize = 4;
const LANE_QUEUE: usize = 16;

struct Server {
    child: Child,
    base: String,
}

fn start(dir: &std::path::Path, port: u16) -> Server {
    start_on(&Store::Sqlite(dir.to_owned()), port)
}

/// Where the server under test keeps its data.
enum Store {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

fn start_on(store: &Store, port: u16) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    match store {
        Store::Sqlite(dir) => command.env("HERALD_DATA_DIR", dir),
        Store::Postgres(url) => command
            .env("HERALD_DATABASE_URL", url)
            .env("HERALD_NODE_ID", "crash-test-node"),
    };
    let child = command
        .arg("serve")
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env("HERALD_ADMIN_KEY", KEY)
        .env("HERALD_ALLOW_HTTP", "true")
        .env("HERALD_ALLOW_NETWORKS", "127.0.0.0/8")
        .env("HERALD_LANE_CONCURRENCY", LANE_CONCURRENCY.to_string())
        .env("HERALD_LANE_QUEUE", LANE_QUEUE.to_string())
        .env("HERALD_POLL_INTERVAL_MS", "50")
        .env("HERALD_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the herald binary starts");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("herald did not come up at {base}");
}

#[tokio::test]
async fn every_accepted_delivery_arrives_after_ten_kill_9s_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    ten_kills(Store::Sqlite(dir.path().to_owned())).await;
}

#[tokio::test]
async fn every_accepted_delivery_arrives_after_ten_kill_9s_postgres() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let StoreTarget::Postgres { url } = &db.target else {
        unreachable!("a PostgreSQL test database")
    };
    ten_kills(Store::Postgres(url.clone())).await;
}

async fn ten_kills(store: Store) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver = Receiver::start().await;
    let client = reqwest::Client::new();

    let mut server = start_on(&store, port);
    wait_ready(&client, &server.base).await;
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{}{path}", server.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    post("/v1/projects", json!({"name": "crash"}))
        .await
        .unwrap();
    post(
        "/v1/projects/crash/event-types",
        json!({"name": "thing.happened"}),
    )
    .await
    .unwrap();
    let hook = post(
        "/v1/webhooks",
        json!({"project": "crash", "name": "sink", "url": receiver.url, "retry_policy": {"schedule_seconds": [1, 1, 1, 1, 1]}}),
    )
    .await
    .unwrap();
    assert_eq!(hook.status(), 201);

    let accepted: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let mut next = 0u64;
    for round in 0..10u64 {
        // Publish from four tasks while the server runs; kill it at a random moment.
        let stop_at =
            tokio::time::Instant::now() + Duration::from_millis(300 + rand_ms(round) % 600);
        let mut publishers = Vec::new();
        for lane in 0..4u64 {
            let (client, accepted) = (client.clone(), accepted.clone());
            let url = format!("{}/v1/projects/crash/events", server.base);
            let first = next + lane * 100_000;
            publishers.push(tokio::spawn(async move {
                let mut n = first;
                while tokio::time::Instant::now() < stop_at + Duration::from_millis(200) {
                    let body =
                        json!({"id": format!("e{n}"), "type": "thing.happened", "data": {"n": n}});
                    match client.post(&url).bearer_auth(KEY).json(&body).send().await {
                        Ok(r) if r.status() == 202 => {
                            accepted.lock().unwrap().insert(n);
                        }
                        _ => {}
                    }
                    n += 1;
                }
            }));
        }
        tokio::time::sleep_until(stop_at).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().unwrap();
        for p in publishers {
            p.await.unwrap();
        }
        next += 1_000_000;
        server = start_on(&store, port);
        wait_ready(&client, &server.base).await;
    }

    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() > 200,
        "only {} events were accepted",
        accepted.len()
    );
    // After the final restart every accepted event arrives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let arrived = loop {
        let got = receiver.received();
        let arrived: HashSet<u64> = got
            .iter()
            .filter_map(|r| r.json()["data"]["n"].as_u64())
            .collect();
        if accepted.is_subset(&arrived) || tokio::time::Instant::now() > deadline {
            break arrived;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let missing: Vec<_> = accepted.difference(&arrived).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} accepted events never arrived, e.g. {missing:?}",
        accepted.difference(&arrived).count()
    );

    // Only deliveries a dead node held in memory (leased, at most concurrency + queue per lane)
    // can arrive twice.
    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        *per_delivery
            .entry(r.header("webhook-id").unwrap().to_owned())
            .or_default() += 1;
    }
    let duplicates: usize = per_delivery.values().map(|n| n - 1).sum();
    let bound = 10 * (LANE_CONCURRENCY + LANE_QUEUE);
    eprintln!(
        "crash test: {} accepted, {} deliveries received, {duplicates} duplicates (bound {bound})",
        accepted.len(),
        per_delivery.len()
    );
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates, more than the {bound} that can be in flight across 10 kills"
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// A cheap deterministic spread of kill moments, different each round.
fn rand_ms(round: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos ^ (round.wrapping_mul(0x9E37_79B9_7F4A_7C15))) % 1000
}

/// SIGTERM lets a send in flight finish and records it; deliveries still queued are given back
/// and sent after the restart — each exactly once.
#[tokio::test]
async fn a_graceful_shutdown_finishes_sends_in_flight_and_gives_back_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver = Receiver::start().await;
    receiver.always(crate::receiver::Reply::status(200).after(Duration::from_millis(1500)));
    let client = reqwest::Client::new();
    let mut server = start(dir.path(), port);
    wait_ready(&client, &server.base).await;
    let post = |base: String, path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    post(server.base.clone(), "/v1/projects", json!({"name": "calm"}))
        .await
        .unwrap();
    post(
        server.base.clone(),
        "/v1/projects/calm/event-types",
        json!({"name": "a.b"}),
    )
    .await
    .unwrap();
    post(
        server.base.clone(),
        "/v1/webhooks",
        json!({"project": "calm", "name": "slow", "url": receiver.url}),
    )
    .await
    .unwrap();
    // More events than the lane sends at once: some are in flight, the rest queued.
    let events = LANE_CONCURRENCY + 3;
    for n in 0..events {
        let body = json!({"id": format!("g{n}"), "type": "a.b", "data": {"n": n}});
        let r = post(server.base.clone(), "/v1/projects/calm/events", body)
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "herald exits cleanly on SIGTERM");

    let mut server = start(dir.path(), port);
    wait_ready(&client, &server.base).await;
    let got = receiver.wait_for(events, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_event: HashMap<u64, usize> = HashMap::new();
    for r in receiver.received() {
        *per_event
            .entry(r.json()["data"]["n"].as_u64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_event.len(), events, "every event arrived: {got:?}");
    assert!(
        per_event.values().all(|n| *n == 1),
        "each exactly once: {per_event:?}"
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
}
