//! The `soak` scenario: does the SQLite database level off under retention?
//!
//! A soak in real time would take days, so this drives the real store (`SqliteStore`, the same
//! code and pragmas `herald serve` uses) directly with a simulated clock: every simulated hour
//! it commits `--per-hour` events, each with one delivery leased to this "node" and one
//! successful attempt record carrying the request headers the engine would store (Standard
//! Webhooks signature, redacted), in group commits of up to 1,024 writes like the engine's
//! writer (512 new publishes and the 512 attempt records of the previous ones). After each hour
//! it prunes as the engine's pruner does (`Store::prune(now, retention_days, 500)` until a
//! batch comes back short). No WAL checkpoint is forced: the engine does none either.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use herald_core::attempt::{Attempt, AttemptTrigger, HeaderRecord, ReceivedResponse, SentRequest};
use herald_core::delivery::Delivery;
use herald_core::event::{Actor, Event, EventId};
use herald_core::event_type::{EventType, EventTypeName};
use herald_core::filter::EventFilter;
use herald_core::id::{AttemptId, WebhookId};
use herald_core::project::{Project, ProjectName};
use herald_core::secret::SigningSecret;
use herald_core::shape::Shape;
use herald_core::time::{self, Timestamp};
use herald_core::webhook::{
    CustomData, CustomHeaders, HttpMethod, TargetUrl, Timeout, Webhook, WebhookStatus,
};
use herald_store::sqlite::SqliteStore;
use herald_store::{AttemptRecord, Lease, NewPublish, Store};
use serde_json::json;
use sqlx::{ConnectOptions, Connection};

/// Writes per group commit, as the engine's writer (`EngineConfig::max_batch`).
const GROUP_COMMIT: usize = 1024;
/// Events deleted per prune call, as the engine's pruner (`EngineConfig::prune_batch`).
const PRUNE_BATCH: u32 = 500;
const HOUR_MS: i64 = 3_600_000;
const NODE: &str = "bench-soak-node";

pub async fn run(days: u32, per_hour: u64, retention_days: u32) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("herald.db");
    let store = SqliteStore::open(&path)
        .await
        .context("opening the SQLite store")?;
    let began = Instant::now();
    // Whole hours, so simulated days line up with the hour loop.
    let start_ms = time::now().timestamp_millis() / HOUR_MS * HOUR_MS;
    let start = time::from_millis(start_ms);

    let project = Project::new(ProjectName::parse("soak")?, start);
    store.create_project(&project).await?;
    let event_type = EventTypeName::parse("environment.suspended")?;
    store
        .create_event_type(&EventType {
            project_id: project.id.clone(),
            name: event_type.clone(),
            description: Some("An environment was suspended".into()),
            schema: None,
            archived: false,
            created_at: start,
            updated_at: start,
        })
        .await?;
    let webhook = bench_webhook(&project, "soak", start)?;
    store.create_webhook(&webhook).await?;

    let per_commit = GROUP_COMMIT / 2;
    let mut committed: u64 = 0;
    let mut pruned_total: u64 = 0;
    let mut sizes: Vec<u64> = Vec::new();
    for day in 1..=days {
        let mut pruned_today = 0;
        for hour in 0..24 {
            let hour_start = start_ms + (i64::from(day - 1) * 24 + hour) * HOUR_MS;
            // Records lag their publishes by one group commit, as in the engine's steady state.
            let mut pending_records: Vec<AttemptRecord> = Vec::new();
            let mut n = 0;
            while n < per_hour {
                let count = (per_hour - n).min(per_commit as u64);
                let mut publishes = Vec::with_capacity(count as usize);
                let mut records = Vec::with_capacity(count as usize);
                let mut last = hour_start;
                for k in n..n + count {
                    let at_ms = hour_start + (k as i64) * HOUR_MS / per_hour as i64;
                    last = at_ms;
                    let (publish, settled) =
                        delivered_event(std::slice::from_ref(&webhook), &event_type, k, at_ms)?;
                    publishes.push(publish);
                    records.extend(settled);
                }
                store
                    .commit(&publishes, &pending_records, time::from_millis(last))
                    .await?;
                committed += count;
                pending_records = records;
                n += count;
            }
            if !pending_records.is_empty() {
                store
                    .commit(
                        &[],
                        &pending_records,
                        time::from_millis(hour_start + HOUR_MS - 1),
                    )
                    .await?;
            }
            // The pruner's pass at the end of the hour.
            let now = time::from_millis(hour_start + HOUR_MS);
            loop {
                let deleted = store.prune(now, retention_days, PRUNE_BATCH).await?;
                pruned_today += deleted;
                if deleted < u64::from(PRUNE_BATCH) {
                    break;
                }
            }
        }
        pruned_total += pruned_today;
        let files = files_on_disk(dir.path(), "herald.db");
        let live = live_rows(&path).await?;
        sizes.push(files.total);
        let line = json!({
            "scenario": "soak",
            "day": day,
            "deliveries_committed": committed,
            "live_events": live.events,
            "live_deliveries": live.deliveries,
            "live_attempts": live.attempts,
            "pruned_events": pruned_total,
            "bytes_on_disk": files.total,
            "bytes": {"db": files.db, "wal": files.wal, "shm": files.shm},
            "free_pages": live.free_pages,
            "pages": live.pages,
            "bytes_per_live_delivery": (files.total as f64 / live.deliveries.max(1) as f64).round(),
            "seconds": (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        });
        println!("{}", serde_json::to_string(&line)?);
    }

    // The first day whose end is past the retention: by then the pruner has been deleting for a
    // day, and the database should hold what it will hold from then on.
    let first_past = retention_days as usize + 1;
    let (reference, levelled_off, growth) = if sizes.len() > first_past {
        let reference = sizes[first_past - 1];
        let last = *sizes.last().unwrap_or(&0);
        let growth = (last as f64 - reference as f64) / reference.max(1) as f64;
        (Some(reference), Some(growth.abs() <= 0.10), Some(growth))
    } else {
        (None, None, None)
    };
    let summary = json!({
        "scenario": "soak summary",
        "days": days,
        "per_hour": per_hour,
        "retention_days": retention_days,
        "deliveries_committed": committed,
        "pruned_events": pruned_total,
        "reference_day": (reference.is_some()).then_some(first_past),
        "bytes_at_reference_day": reference,
        "bytes_at_last_day": sizes.last(),
        "growth_since_reference_pct": growth.map(|g| (g * 10_000.0).round() / 100.0),
        "levelled_off": levelled_off,
        "criterion": "last day's bytes on disk (db + wal + shm) within 10 % of the first day past the retention",
        "seconds": (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    println!("{}", serde_json::to_string(&summary)?);
    if levelled_off.is_none() {
        println!(
            "(--days must be at least --retention-days + 2 to compare a later day with the first day past the retention)"
        );
    }
    drop(store);
    Ok(())
}

/// An active webhook with the server's defaults, as the API would create it.
pub(crate) fn bench_webhook(
    project: &Project,
    name: &str,
    at: Timestamp,
) -> anyhow::Result<Webhook> {
    Ok(Webhook {
        id: WebhookId::new(),
        project_id: project.id.clone(),
        name: name.into(),
        description: None,
        url: TargetUrl::parse("https://hooks.example.com/herald/events", false)?,
        method: HttpMethod::Post,
        filter: EventFilter::parse(None)?,
        headers: CustomHeaders::default(),
        custom_data: CustomData::default(),
        shape: Shape::resolve(None, None, None),
        timeout: Timeout::default(),
        retry_policy: None,
        status: WebhookStatus::Active,
        status_reason: None,
        secret: SigningSecret::generate(),
        previous_secret: None,
        created_at: at,
        updated_at: at,
    })
}

/// One event with a delivery to each webhook (leased to this node, as a publish whose lanes
/// have room), and the records of their one successful attempt each, as the engine would build
/// them at `at_ms`. The webhooks share a project.
pub(crate) fn delivered_event(
    webhooks: &[Webhook],
    event_type: &EventTypeName,
    n: u64,
    at_ms: i64,
) -> anyhow::Result<(NewPublish, Vec<AttemptRecord>)> {
    let project_id = &webhooks.first().context("at least one webhook")?.project_id;
    let created = time::from_millis(at_ms);
    let event = Event {
        id: EventId::generate(),
        project_id: project_id.clone(),
        event_type: event_type.clone(),
        occurred_at: time::from_millis(at_ms - 40),
        data: json!({"environmentId": format!("env-{}", n % 5000), "reason": "idle", "n": n}),
        actor: Some(Actor {
            id: Some(format!("u-{}", n % 300)),
            email: Some(format!("user{}@example.com", n % 300)),
        }),
        created_at: created,
    };
    let mut deliveries = Vec::with_capacity(webhooks.len());
    let mut records = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        let delivery = Delivery::new(
            project_id.clone(),
            event.id.clone(),
            webhook.id.clone(),
            created,
        );
        records.push(attempt_record(webhook, &event, &delivery, at_ms)?);
        let lease = Lease {
            owner: NODE.into(),
            until: time::from_millis(at_ms + 300_000),
        };
        deliveries.push((delivery, Some(lease)));
    }
    Ok((NewPublish { event, deliveries }, records))
}

/// The record of one successful attempt of `delivery`, sent 2 ms after `at_ms`.
fn attempt_record(
    webhook: &Webhook,
    event: &Event,
    delivery: &Delivery,
    at_ms: i64,
) -> anyhow::Result<AttemptRecord> {
    let sent_at = time::from_millis(at_ms + 2);
    let request = request_headers(webhook, event, delivery, sent_at)?;
    let attempt = Attempt {
        id: AttemptId::new(),
        delivery_id: delivery.id.clone(),
        webhook_id: webhook.id.clone(),
        project_id: webhook.project_id.clone(),
        number: 1,
        trigger: AttemptTrigger::Scheduled,
        started_at: sent_at,
        duration_ms: 35,
        request: SentRequest {
            method: webhook.method.as_str().to_owned(),
            url: webhook.url.as_str().to_owned(),
            headers: request,
        },
        response: Some(ReceivedResponse {
            status: 200,
            headers: HeaderRecord::of([
                ("content-length", "0".to_owned()),
                (
                    "date",
                    sent_at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                ),
            ]),
            body: String::new(),
            truncated: false,
        }),
        error: None,
        succeeded: true,
    };
    Ok(AttemptRecord::settling(
        attempt,
        NODE.into(),
        event.id.clone(),
    ))
}

/// The request headers as the engine stores them: built by its own `request::prepare`, secrets
/// redacted.
fn request_headers(
    webhook: &Webhook,
    event: &Event,
    delivery: &Delivery,
    now: Timestamp,
) -> anyhow::Result<HeaderRecord> {
    let prepared = herald_delivery::request::prepare(
        webhook,
        event,
        herald_delivery::request::Try {
            delivery_id: &delivery.id,
            attempt: 1,
            now,
            last_success_at: None,
            last_failure_at: None,
            api_url: "https://herald.example.com/v1/",
            account_secret: None,
        },
    )?;
    Ok(prepared.redacted_headers())
}

struct Files {
    db: u64,
    wal: u64,
    shm: u64,
    total: u64,
}

/// Sizes of the database, its WAL and its shared-memory file.
fn files_on_disk(dir: &Path, name: &str) -> Files {
    let len = |suffix: &str| {
        std::fs::metadata(dir.join(format!("{name}{suffix}")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let (db, wal, shm) = (len(""), len("-wal"), len("-shm"));
    Files {
        db,
        wal,
        shm,
        total: db + wal + shm,
    }
}

struct Live {
    events: i64,
    deliveries: i64,
    attempts: i64,
    pages: i64,
    free_pages: i64,
}

/// Counts what the database holds, on a read-only connection of its own (the store's pools
/// are private to it).
async fn live_rows(path: &Path) -> anyhow::Result<Live> {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let live = Live {
        events: count("SELECT count(*) FROM events")
            .fetch_one(&mut conn)
            .await?,
        deliveries: count("SELECT count(*) FROM deliveries")
            .fetch_one(&mut conn)
            .await?,
        attempts: count("SELECT count(*) FROM attempts")
            .fetch_one(&mut conn)
            .await?,
        pages: count("PRAGMA page_count").fetch_one(&mut conn).await?,
        free_pages: count("PRAGMA freelist_count").fetch_one(&mut conn).await?,
    };
    conn.close().await?;
    Ok(live)
}
