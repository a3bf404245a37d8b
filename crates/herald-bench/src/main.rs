//! `herald-bench`: Herald's benchmark (not a test: it measures, it does not judge).
//!
//! It starts its own sink (a minimal HTTP/1.1 server on loopback, `sink.rs`, that answers 200
//! and notes when each delivery arrived) and a `herald serve` process on a temporary SQLite data directory (or
//! PostgreSQL with `--database-url`), creates webhooks pointing at the sink, publishes events
//! from concurrent publishers — one event per request — and reports publish rate, end-to-end
//! deliveries per second, publish→delivery latency, duplicates, losses, and Herald's RSS.
//!
//! With `--database-url postgres://…` every run gets a fresh database on that server,
//! `herald_bench_<pid>_<run>`: the URL's own database is only the admin connection that
//! creates it and, after the run (also when the run fails or is interrupted), drops it
//! `WITH (FORCE)`. So `--runs N` works on PostgreSQL as on SQLite.
//!
//! Scenarios:
//! - `fanout`: N events, each to `--fanout` webhooks, as fast as the publishers go.
//! - `rate`: a fixed publish rate (`--rate` events/s for `--seconds`), for latency.
//! - `backlog`: `--events` deliveries queued for an unreachable webhook, then a healthy
//!   webhook's events: memory, and whether healthy deliveries still flow.
//! - `hanging`: half the webhooks hang until their timeout; healthy ones' latency is compared
//!   with a baseline run with no hanging webhooks.
//! - `soak`: whether the SQLite database levels off under retention. No server and no clock:
//!   it drives the real `SqliteStore` with simulated time, committing `--per-hour` events an
//!   hour (each with a delivery and a successful attempt with realistic request headers, in
//!   group commits like the engine's) for `--days` days and pruning after each hour as the
//!   engine's pruner does with `--retention-days`. One JSON line per simulated day (deliveries
//!   so far, live rows, bytes of database + WAL + shared memory), then a summary saying whether
//!   the size levelled off. SQLite only; `--runs` does not apply.
//! - `raw`: no Herald at all: the publishers POST `--events` delivery-shaped bodies straight
//!   to the sink with Herald's own HTTP client. What loopback HTTP alone does on this machine
//!   right now, to read the other figures against (the machine's speed drifts between
//!   sessions).

#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::too_many_arguments)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::http::StatusCode;
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use crate::fresh_database::FreshDatabase;
use crate::sink::Sink;

/// The allocator Herald runs with: the sink and the publishers share the machine's two cores
/// with the Herald they measure, and glibc's `malloc` and `free` were a twentieth of the
/// bench's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commit;
mod fresh_database;
mod sink;
mod soak;

/// Deliveries a lane queues per concurrent send when `--lane-queue` is not given: Herald's own
/// defaults hold 64 queued for 4 sends. With eight, a lane of 32 sends spilled to the store
/// whenever sending fell 256 deliveries behind publishing, and the poller's claims to fetch
/// them back cost the group commit time (runs with spills were the slow ones, max latency
/// 340–520 ms against 105–195 ms with sixteen).
const QUEUED_PER_SEND: u64 = 16;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    Fanout,
    Rate,
    Backlog,
    Hanging,
    Soak,
    Raw,
    Commit,
}

#[derive(Debug, Parser)]
#[command(about = "Herald's benchmark: publish through a real Herald to a real sink and measure.")]
struct Args {
    #[arg(long, value_enum, default_value = "fanout")]
    scenario: Scenario,
    /// Events to publish (fanout, backlog).
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Webhooks each event goes to (fanout, commit; hanging: the healthy ones).
    #[arg(long, default_value_t = 1)]
    fanout: u64,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 32)]
    publishers: u64,
    /// Events per second (rate).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds to publish for (rate, hanging).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Concurrent sends per webhook in Herald (Herald's own default, 4, suits real receivers,
    /// not one local sink taking everything). 32 keeps fan-out × lane concurrency within
    /// Herald's global limit of 512 sends up to fan-out 16; past it, lane workers queue for
    /// global permits and the CPU goes to waking them.
    #[arg(long, default_value_t = 32)]
    lane_concurrency: u64,
    /// Deliveries each lane holds in memory beyond those being sent (Herald's
    /// `HERALD_LANE_QUEUE`); by default sixteen times the lane concurrency, the ratio of
    /// Herald's own defaults (64 queued for 4 sends). What does not fit is left in the store and
    /// claimed back when the lane has drained.
    #[arg(long)]
    lane_queue: Option<u64>,
    /// PostgreSQL instead of the embedded SQLite: a postgres:// URL whose database is used
    /// only as the admin connection. Each run creates a fresh database
    /// `herald_bench_<pid>_<run>` on that server (the role needs CREATEDB), points Herald at
    /// it, and drops it `WITH (FORCE)` afterwards, also when the run fails.
    #[arg(long)]
    database_url: Option<String>,
    /// The herald binary (default: next to this one).
    #[arg(long)]
    herald: Option<PathBuf>,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Runs of the scenario, each on a fresh Herald; the summary gives the median of each figure.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Group commits to time (commit).
    #[arg(long, default_value_t = 400)]
    commits: usize,
    /// Publishes per group commit (commit): 60 is what the writer gathered at fan-out 10 and
    /// 128 publishers in the sixth session's timing.
    #[arg(long, default_value_t = 60)]
    events_per_commit: u64,
    /// Simulated days to run (soak).
    #[arg(long, default_value_t = 6)]
    days: u32,
    /// Events (each with one delivery and one attempt) per simulated hour (soak).
    #[arg(long, default_value_t = 10_000)]
    per_hour: u64,
    /// Retention in days: older events, deliveries and attempts are pruned (soak).
    #[arg(long, default_value_t = 2)]
    retention_days: u32,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

struct Herald {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    key: String,
    dir: tempfile::TempDir,
    /// On the embedded SQLite (in `dir`), not PostgreSQL.
    sqlite: bool,
}

impl Herald {
    /// Bytes the SQLite data directory takes on disk (database, WAL and shared memory files);
    /// `None` on PostgreSQL.
    fn bytes_on_disk(&self) -> Option<u64> {
        if !self.sqlite {
            return None;
        }
        let bytes = std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        Some(bytes)
    }

    /// Resident set size now and at its peak, in MiB, from /proc.
    fn rss_mib(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// CPU seconds (user + system) a process has used so far, from /proc; 0 if it cannot be read.
/// Linux counts them in clock ticks of 1/100 s on every architecture Herald builds for.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// What is read off Herald and the bench before the load, to report the run against.
#[derive(Clone, Copy)]
struct Before {
    idle_rss_mib: f64,
    herald_cpu_s: f64,
    bench_cpu_s: f64,
}

impl Before {
    fn read(herald: &Herald) -> Self {
        Self {
            idle_rss_mib: herald.rss_mib().0,
            herald_cpu_s: cpu_seconds(&herald.pid.to_string()),
            bench_cpu_s: cpu_seconds("self"),
        }
    }
}

async fn start_herald(
    args: &Args,
    database_url: Option<&str>,
    client: &reqwest::Client,
) -> anyhow::Result<Herald> {
    let binary = match &args.herald {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("herald"),
    };
    if !binary.exists() {
        bail!(
            "no herald binary at {} (build it: cargo build --release -p herald)",
            binary.display()
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let key = "hk_bench_admin_key_0123456789abcdef".to_owned();
    let mut command = tokio::process::Command::new(&binary);
    command
        .arg("serve")
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env("HERALD_DATA_DIR", dir.path())
        .env("HERALD_ADMIN_KEY", &key)
        .env("HERALD_ALLOW_HTTP", "true")
        .env("HERALD_ALLOW_NETWORKS", "127.0.0.0/8")
        .env("HERALD_LANE_CONCURRENCY", args.lane_concurrency.to_string())
        .env(
            "HERALD_LANE_QUEUE",
            args.lane_queue
                .unwrap_or(args.lane_concurrency * QUEUED_PER_SEND)
                .to_string(),
        )
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.env("HERALD_DATABASE_URL", url);
    }
    let child = command.spawn().context("starting herald")?;
    let pid = child.id().unwrap_or(0);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("herald did not start within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Herald {
        child,
        pid,
        base,
        key,
        dir,
        sqlite: args.database_url.is_none(),
    })
}

async fn post(
    client: &reqwest::Client,
    herald: &Herald,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(format!("{}{path}", herald.base))
        .bearer_auth(&herald.key)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path} answered {status}: {body}");
    }
    Ok(body)
}

/// Creates the project, the event type and the webhooks: `urls` one per webhook.
async fn setup(
    client: &reqwest::Client,
    herald: &Herald,
    urls: &[String],
    timeout_seconds: u64,
) -> anyhow::Result<()> {
    post(client, herald, "/v1/projects", json!({"name": "bench"})).await?;
    post(
        client,
        herald,
        "/v1/projects/bench/event-types",
        json!({"name": "bench.event"}),
    )
    .await?;
    for (i, url) in urls.iter().enumerate() {
        post(
            client,
            herald,
            "/v1/webhooks",
            json!({"project": "bench", "name": format!("w{i}"), "url": url, "timeout_seconds": timeout_seconds}),
        )
        .await?;
    }
    Ok(())
}

/// Publishes `count` events from `publishers` tasks, paced to `rate` events/s if given.
async fn publish(
    client: &reqwest::Client,
    herald: &Herald,
    count: u64,
    publishers: u64,
    rate: Option<u64>,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let (client, next) = (client.clone(), next.clone());
        let url = format!("{}/v1/projects/bench/events", herald.base);
        let key = herald.key.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_micros(n * 1_000_000 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let body = json!({"id": format!("e{n}"), "type": "bench.event", "data": {"n": n, "t": now_us()}});
                let response = client.post(&url).bearer_auth(&key).json(&body).send().await?;
                if response.status() != StatusCode::ACCEPTED {
                    bail!("publish answered {}", response.status());
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

async fn wait_for(sink: &Sink, expected: u64, timeout: Duration) -> bool {
    let started = Instant::now();
    while sink.received.load(Ordering::Relaxed) < expected {
        if started.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// One run's figures. `stored`: deliveries the database holds (those of hanging or unreachable
/// webhooks too), for the bytes on disk per delivery.
fn report(
    name: &str,
    sink: &Sink,
    expected: u64,
    stored: u64,
    publish_time: Duration,
    events: u64,
    start_us: u64,
    herald: &Herald,
    before: Before,
) -> Value {
    let mut lat = sink.latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    let unique = sink.unique();
    let elapsed_s = (sink
        .last_us
        .load(Ordering::Relaxed)
        .saturating_sub(start_us)) as f64
        / 1e6;
    let (rss, peak) = herald.rss_mib();
    let idle = before.idle_rss_mib;
    // Over everything since `before` (setup included, a few requests), per delivery received.
    let per_delivery = |cpu_s: f64| (cpu_s * 1e6 / unique.max(1) as f64 * 10.0).round() / 10.0;
    let herald_cpu = per_delivery(cpu_seconds(&herald.pid.to_string()) - before.herald_cpu_s);
    let bench_cpu = per_delivery(cpu_seconds("self") - before.bench_cpu_s);
    let result = json!({
        "scenario": name,
        "events": events,
        "expected_deliveries": expected,
        "received": sink.received.load(Ordering::Relaxed),
        "unique_deliveries": unique,
        "duplicates": sink.duplicates.load(Ordering::Relaxed),
        "lost": expected.saturating_sub(unique),
        "publish_per_s": (events as f64 / publish_time.as_secs_f64()).round(),
        "deliveries_per_s": (unique as f64 / elapsed_s.max(1e-9)).round(),
        "latency_ms": {"p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
        "rss_mib": {"idle": (idle * 10.0).round() / 10.0, "now": (rss * 10.0).round() / 10.0, "peak": (peak * 10.0).round() / 10.0},
        "cpu_us_per_delivery": {"herald": herald_cpu, "bench": bench_cpu},
        "sqlite_bytes_per_delivery": herald.bytes_on_disk().map(|b| (b as f64 / stored.max(1) as f64).round()),
    });
    println!("{}", serde_json::to_string(&result).unwrap());
    result
}

/// The median of each numeric figure across runs (same shape as one run's result).
fn median(runs: &[Value]) -> Value {
    fn at(values: &[&Value]) -> Value {
        match values.first() {
            Some(Value::Object(first)) => Value::Object(
                first
                    .keys()
                    .map(|k| {
                        (
                            k.clone(),
                            at(&values.iter().map(|v| &v[k]).collect::<Vec<_>>()),
                        )
                    })
                    .collect(),
            ),
            Some(Value::Number(_)) => {
                let mut xs: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
                xs.sort_by(f64::total_cmp);
                json!(xs[xs.len() / 2])
            }
            Some(other) => (*other).clone(),
            None => Value::Null,
        }
    }
    at(&runs.iter().collect::<Vec<_>>())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Scenario::Soak = args.scenario {
        if args.database_url.is_some() {
            bail!(
                "the soak scenario drives the SQLite store directly; --database-url does not apply"
            );
        }
        return soak::run(args.days, args.per_hour, args.retention_days).await;
    }
    if let Scenario::Commit = args.scenario {
        if args.database_url.is_some() {
            bail!(
                "the commit scenario drives the SQLite store directly; --database-url does not apply"
            );
        }
        return commit::run(args.commits, args.fanout, args.events_per_commit).await;
    }
    let mut results = Vec::new();
    for i in 1..=args.runs.max(1) {
        let database = match &args.database_url {
            Some(url) => Some(FreshDatabase::create(url, i).await?),
            None => None,
        };
        // Interrupted: the run (and with it Herald, killed on drop) ends here, and the
        // database is still dropped.
        let outcome = tokio::select! {
            outcome = run(&args, database.as_ref().map(|d| d.url.as_str())) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        if let Some(database) = database
            && let Err(e) = database.drop_database().await
        {
            eprintln!("warning: {e:#}");
        }
        results.push(outcome?);
    }
    if results.len() > 1 {
        println!(
            "median of {} runs: {}",
            results.len(),
            serde_json::to_string(&median(&results))?
        );
    }
    Ok(())
}

async fn run(args: &Args, database_url: Option<&str>) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let (sink_addr, sink) = sink::start().await?;
    let hook = format!("http://{sink_addr}/hook");
    if let Scenario::Raw = args.scenario {
        return raw(&hook, &sink, args).await;
    }
    let mut herald = start_herald(args, database_url, &client).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = Before::read(&herald);
    let timeout = Duration::from_secs(args.timeout);
    let result = match args.scenario {
        Scenario::Fanout => {
            let urls = vec![hook.clone(); args.fanout as usize];
            setup(&client, &herald, &urls, 30).await?;
            let expected = args.events * args.fanout;
            let start = now_us();
            let publish_time =
                publish(&client, &herald, args.events, args.publishers, None).await?;
            if !wait_for(&sink, expected, timeout).await {
                println!("timed out waiting for deliveries");
            }
            report(
                "fanout",
                &sink,
                expected,
                expected,
                publish_time,
                args.events,
                start,
                &herald,
                before,
            )
        }
        Scenario::Rate | Scenario::Hanging => {
            // `rate` is `hanging`'s baseline: the same healthy webhooks, without the hanging ones.
            let hanging = matches!(args.scenario, Scenario::Hanging);
            let mut urls = vec![hook.clone(); args.fanout as usize];
            if hanging {
                let hang = format!("http://{sink_addr}/hang");
                urls.extend(std::iter::repeat_n(hang, args.fanout as usize));
            }
            setup(&client, &herald, &urls, 10).await?;
            let events = args.rate * args.seconds;
            let start = now_us();
            let publish_time =
                publish(&client, &herald, events, args.publishers, Some(args.rate)).await?;
            wait_for(&sink, events * args.fanout, timeout).await;
            report(
                if hanging {
                    "hanging (healthy half)"
                } else {
                    "rate"
                },
                &sink,
                events * args.fanout,
                urls.len() as u64 * events,
                publish_time,
                events,
                start,
                &herald,
                before,
            )
        }
        Scenario::Backlog => {
            // A port nothing listens on: every attempt fails fast and is retried later.
            let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            setup(&client, &herald, &[format!("http://{dead}/gone")], 5).await?;
            let publish_time =
                publish(&client, &herald, args.events, args.publishers, None).await?;
            println!(
                "queued {} deliveries for an unreachable webhook in {:.1} s",
                args.events,
                publish_time.as_secs_f64()
            );
            // Now a healthy webhook in another project, and its events.
            post(&client, &herald, "/v1/projects", json!({"name": "healthy"})).await?;
            post(
                &client,
                &herald,
                "/v1/projects/healthy/event-types",
                json!({"name": "bench.event"}),
            )
            .await?;
            post(
                &client,
                &herald,
                "/v1/webhooks",
                json!({"project": "healthy", "name": "ok", "url": hook}),
            )
            .await?;
            let start = now_us();
            let url = format!("{}/v1/projects/healthy/events", herald.base);
            let healthy = 2000u64;
            let begun = Instant::now();
            for n in 0..healthy {
                let body = json!({"type": "bench.event", "data": {"n": n, "t": now_us()}});
                client
                    .post(&url)
                    .bearer_auth(&herald.key)
                    .json(&body)
                    .send()
                    .await?;
            }
            let publish_time = begun.elapsed();
            wait_for(&sink, healthy, timeout).await;
            report(
                "backlog (healthy webhook while 1 webhook has a backlog)",
                &sink,
                healthy,
                healthy + args.events * args.fanout,
                publish_time,
                healthy,
                start,
                &herald,
                before,
            )
        }
        Scenario::Soak | Scenario::Raw | Scenario::Commit => {
            unreachable!("handled before Herald starts")
        }
    };
    let _ = herald.child.start_kill();
    let _ = herald.child.wait().await;
    Ok(result)
}

/// Loopback HTTP with no Herald between: `--publishers` tasks POST `--events` bodies shaped
/// like a delivery (with a `webhook-id`) straight to the sink, with the HTTP client Herald sends
/// with.
async fn raw(hook: &str, sink: &Sink, args: &Args) -> anyhow::Result<Value> {
    let policy = herald_delivery::guard::DestinationPolicy {
        allowed: vec!["127.0.0.0/8".parse()?],
    };
    let client = herald_delivery::client::Client::new(Arc::new(policy), 1024, 1024)?;
    let hook = url::Url::parse(hook)?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.publishers {
        let (client, next, hook, count) = (client.clone(), next.clone(), hook.clone(), args.events);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = json!({"type": "bench.event", "timestamp": "2026-11-23T00:00:00Z", "data": {"n": n, "t": now_us()}});
                let mut headers = axum::http::HeaderMap::with_capacity(2);
                headers.append(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
                headers.append("webhook-id", axum::http::HeaderValue::try_from(format!("msg_{n}"))?);
                let received = client
                    .exchange(
                        herald_delivery::client::Outgoing {
                            method: axum::http::Method::POST,
                            url: &hook,
                            headers,
                            body: Some(serde_json::to_vec(&body)?.into()),
                        },
                        64 * 1024,
                    )
                    .await?;
                if received.status != 200 {
                    bail!("sink answered {}", received.status);
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = sink.latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    let result = json!({
        "scenario": "raw",
        "requests": args.events,
        "received": sink.received.load(Ordering::Relaxed),
        "requests_per_s": (args.events as f64 / elapsed).round(),
        "latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99)},
    });
    println!("{}", serde_json::to_string(&result)?);
    Ok(result)
}
