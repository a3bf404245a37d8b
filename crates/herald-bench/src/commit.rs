//! The `commit` scenario: the group commit alone, timed.
//!
//! At fan-out 10 the engine's limit is its one serial step, the group commit (the writer and
//! SQLite's thread taking turns on one transaction). Timed end to end, through HTTP, it drowns
//! in the 2-core VM's noise; timed here it does not. This drives the real store
//! (`SqliteStore`, with the pragmas `herald serve` uses) with the batches the engine's writer
//! makes at fan-out `--fanout`: per commit, `--events` publishes of one event with a leased
//! delivery to each webhook, and the records of the previous commit's deliveries (one
//! successful attempt each, request headers built by the engine's own `request::prepare`).
//! It prints the median and p90 wall time per commit, microseconds per delivery (each counted
//! once though it is written twice, inserted and then settled), and the process's CPU per
//! delivery (all of it is the store's: this process does nothing else).

use std::time::Instant;

use anyhow::Context;
use herald_core::event_type::EventTypeName;
use herald_core::project::{Project, ProjectName};
use herald_core::time;
use herald_store::Store;
use herald_store::sqlite::SqliteStore;
use serde_json::json;

use crate::soak::{bench_webhook, delivered_event};

/// Commits run before timing starts: the first ones create the B-trees' first pages.
const WARM_UP: usize = 20;

pub async fn run(commits: usize, fanout: u64, events_per_commit: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        commits > 0 && events_per_commit > 0,
        "--commits and --events-per-commit must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("herald.db"))
        .await
        .context("opening the SQLite store")?;
    let start_ms = time::now().timestamp_millis();
    let project = Project::new(ProjectName::parse("commit")?, time::from_millis(start_ms));
    store.create_project(&project).await?;
    let mut webhooks = Vec::new();
    for i in 0..fanout.max(1) {
        let webhook = bench_webhook(&project, &format!("w{i}"), time::from_millis(start_ms))?;
        store.create_webhook(&webhook).await?;
        webhooks.push(webhook);
    }
    let event_type = EventTypeName::parse("bench.event")?;

    let pid = std::process::id().to_string();
    let mut pending = Vec::new();
    let mut took_us: Vec<u64> = Vec::with_capacity(commits);
    let mut cpu_before = 0.0;
    let mut n = 0u64;
    for commit in 0..WARM_UP + commits {
        // 25 ms of simulated time per commit, about what one takes at fan-out 10.
        let at_ms = start_ms + commit as i64 * 25;
        let mut publishes = Vec::with_capacity(events_per_commit as usize);
        let mut records = Vec::new();
        for _ in 0..events_per_commit {
            let (publish, settled) = delivered_event(&webhooks, &event_type, n, at_ms)?;
            publishes.push(publish);
            records.extend(settled);
            n += 1;
        }
        if commit == WARM_UP {
            cpu_before = crate::cpu_seconds(&pid);
        }
        let began = Instant::now();
        store
            .commit(&publishes, &pending, time::from_millis(at_ms))
            .await?;
        if commit >= WARM_UP {
            took_us.push(began.elapsed().as_micros() as u64);
        }
        pending = records;
    }
    // The CPU includes building the batches (not the store's work); reported as it is.
    let cpu = crate::cpu_seconds(&pid) - cpu_before;
    took_us.sort_unstable();
    let at = |q: f64| crate::percentile(&took_us, q);
    let per_commit = (events_per_commit * webhooks.len() as u64) as f64;
    let line = json!({
        "scenario": "commit",
        "commits": took_us.len(),
        "fanout": fanout,
        "events_per_commit": events_per_commit,
        "deliveries_per_commit": per_commit,
        "commit_ms": {"p50": at(0.5), "p90": at(0.9), "max": at(1.0)},
        "us_per_delivery_p50": round3(at(0.5) * 1000.0 / per_commit),
        "cpu_us_per_delivery": round3(cpu * 1e6 / (per_commit * commits as f64)),
    });
    println!("{}", serde_json::to_string(&line)?);
    drop(store);
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
