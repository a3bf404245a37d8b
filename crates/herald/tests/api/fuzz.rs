//! The API fuzzer (issue 14): Schemathesis, from PyPI, generates requests from the served OpenAPI
//! document — valid ones and invalid ones — against a real Herald on SQLite, with every check on:
//! no 5xx, every status, content type, header and body as the document says, invalid input
//! refused, valid input accepted, and its stateful checks (what one answer links to works).
//!
//! It runs from the virtualenv `scripts/test` makes (`HERALD_TEST_PYTHON`, see
//! `python_receivers.rs`), with `tests/python/schemathesis.toml`; without the virtualenv the test
//! says so and passes, unless `HERALD_TEST_PYTHON_REQUIRED=required`. Bounded: the run's own
//! budget (`--max-time`, examples per operation) and a wall-clock limit after which the process is
//! killed and the test fails.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::python_receivers::python;

/// Schemathesis's budget for the whole run, in seconds.
const FUZZ_SECONDS: u64 = 100;
/// Killed after this, whatever it is doing.
const WALL_CLOCK: Duration = Duration::from_secs(240);
const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/schemathesis.toml"
);

#[tokio::test]
async fn the_api_fuzzer_finds_no_server_error_and_no_answer_the_document_does_not_describe() {
    let Some(python) = python() else { return };
    let schemathesis = python.with_file_name("schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: scripts/test installs it from tests/python/requirements.txt",
        schemathesis.display()
    );
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    // Real things for the fuzzer to reach: a project, an event type, a webhook (whose receiver
    // refuses connections, so its delivery stays undelivered), an event and its delivery.
    // By id: the fuzzer may rename it.
    let project = app.project("fuzzed").await;
    let project = project.as_str();
    app.event_type(project, "order.created").await;
    let webhook = app.webhook(project, "fuzzed", json!({})).await;
    let event = app.publish(project, "order.created", json!({"n": 1})).await;
    let event_id = event["id"].as_str().unwrap();
    let deliveries = app
        .get(
            &format!("/v1/projects/{project}/events/{event_id}/deliveries"),
            &app.admin,
        )
        .await;
    let delivery = deliveries.ok(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = app.key("admin", None).await;

    let workdir = tempfile::tempdir().unwrap();
    let seed = std::env::var("HERALD_FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let mut child = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(CONFIG)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", app.base))
        .args(["--url", &app.base])
        .args(["--checks", "all"])
        .args(["--max-time", &FUZZ_SECONDS.to_string()])
        .args(["--max-examples", "50"])
        .args(["--workers", "1"])
        .args(["--seed", &seed])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .current_dir(workdir.path())
        .env("HERALD_FUZZ_KEY", &key)
        .env("HERALD_FUZZ_PROJECT", project)
        .env("HERALD_FUZZ_EVENT_TYPE", "order.created")
        .env("HERALD_FUZZ_EVENT", event_id)
        .env("HERALD_FUZZ_WEBHOOK", webhook["id"].as_str().unwrap())
        .env("HERALD_FUZZ_DELIVERY", &delivery)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schemathesis starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        text + &err
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > WALL_CLOCK {
            // Ours, by its PID.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let output = out.join().unwrap();
    eprintln!("schemathesis ran {:?}:\n{output}", started.elapsed());
    match status {
        Some(status) => assert!(
            status.success(),
            "schemathesis found problems (seed {seed}):\n{output}"
        ),
        None => panic!("schemathesis ran past {WALL_CLOCK:?} and was killed:\n{output}"),
    }
    only_loopback_was_tried(&app).await;
}

/// Tests send only to loopback. The fuzzer can create webhooks and trigger them; random strings
/// are next to never absolute http(s) URLs, and this checks every attempt Herald made (a name
/// that failed to resolve is recorded too) went to 127.0.0.1.
async fn only_loopback_was_tried(app: &TestApp) {
    use herald_core::page::PageRequest;
    use herald_store::AttemptQuery;
    let first = PageRequest::first(PageRequest::MAX_LIMIT);
    let mut hooks = Vec::new();
    let mut page = first.clone();
    // Bounded: far more pages than a run of a few minutes can fill.
    for _ in 0..1000 {
        let found = app
            .store
            .list_webhooks(&Default::default(), &page)
            .await
            .unwrap();
        hooks.extend(found.items);
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    for hook in hooks {
        let query = AttemptQuery::Webhook(hook.id.clone());
        let mut page = first.clone();
        for _ in 0..1000 {
            let found = app.store.list_attempts(&query, &page).await.unwrap();
            for attempt in &found.items {
                let url = url::Url::parse(&attempt.request.url).unwrap();
                assert_eq!(
                    url.host_str(),
                    Some("127.0.0.1"),
                    "the fuzzer made Herald send to {}",
                    attempt.request.url
                );
            }
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
    }
}
