//! Nothing is lost while a webhook is paused: a disabled or out-of-order webhook's deliveries are
//! made and held, shown, sent in publish order with their delivery ids once it is active again
//! (enable, a successful Trigger now), or discarded by a person — and who may do that, and what
//! is refused.

use std::time::Duration;

use herald_core::time::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use crate::receiver::{Receiver, Reply};

/// How long a test waits for something that should take a fraction of a second.
const WAIT: Duration = Duration::from_secs(5);

/// How long a test watches for something that must not happen: ten poll intervals.
const QUIET: Duration = Duration::from_millis(500);

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn data(v: &Value) -> &Vec<Value> {
    v["data"].as_array().unwrap()
}

/// One send at a time per webhook, so the order deliveries start in is the order they arrive.
fn one_at_a_time() -> Options {
    Options {
        lane_concurrency: 1,
        ..Default::default()
    }
}

/// Runs each scenario on SQLite and on PostgreSQL, with lanes of one.
macro_rules! on_both_stores_one_lane {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    let app = crate::helpers::spawn_app_with(
                        crate::helpers::Backend::Sqlite, super::one_at_a_time()).await.unwrap();
                    super::$scenario(app).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(app) = crate::helpers::spawn_app_with(
                        crate::helpers::Backend::Postgres, super::one_at_a_time()).await {
                        super::$scenario(app).await;
                    }
                }
            }
        )*
    };
}

/// A project with the event type `order.paid` and one webhook to `url`; returns both ids.
async fn shop(app: &TestApp, url: &str, extra: Value) -> (String, String) {
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let mut body = json!({"url": url});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let hook = app.webhook(&p, "orders", body).await;
    (p, id(&hook).to_owned())
}

/// Publishes `order.paid` with `{"n": n}` for each n, one millisecond apart at least (the order
/// of deliveries is the order of their creation times, to the millisecond); returns the events.
async fn publish_in_order(
    app: &TestApp,
    project: &str,
    ns: impl IntoIterator<Item = i64>,
) -> Vec<Value> {
    let mut events = Vec::new();
    for n in ns {
        let event = app.publish(project, "order.paid", json!({"n": n})).await;
        let created: Timestamp = event["created_at"].as_str().unwrap().parse().unwrap();
        // Bounded: the clock passes a millisecond within a few turns.
        for _ in 0..100 {
            if herald_core::time::now().timestamp_millis() > created.timestamp_millis() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        events.push(event);
    }
    events
}

/// The one delivery each event made, in the events' order; each is the webhook's and pending.
async fn delivery_ids(app: &TestApp, project: &str, hook: &str, events: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for event in events {
        let path = format!("/v1/projects/{project}/events/{}/deliveries", id(event));
        let listed = app.get(&path, &app.admin).await.ok(200).clone();
        assert_eq!(data(&listed).len(), 1, "a delivery was made: {listed:#}");
        let delivery = &data(&listed)[0];
        assert_eq!(delivery["webhook_id"], hook);
        assert_eq!(delivery["status"], "pending", "{delivery:#}");
        ids.push(id(delivery).to_owned());
    }
    ids
}

/// The `n` of each request's event data, and its delivery id.
fn sent(got: &[crate::receiver::Received]) -> Vec<(Value, String)> {
    got.iter()
        .map(|r| {
            (
                r.json()["data"]["n"].clone(),
                r.header("webhook-id").unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_disabled_webhook_holds_its_deliveries_and_enabling_sends_them_in_order(app: TestApp) {
    let receiver = Receiver::start().await;
    let (p, hook) = shop(&app, &receiver.url, json!({})).await;
    let path = format!("/v1/webhooks/{hook}");
    let disabled = app
        .post(&format!("{path}/disable"), &app.admin, json!({}))
        .await;
    assert_eq!(disabled.ok(200)["held_deliveries"], 0);

    // Events published while it is disabled make deliveries for it, which it holds.
    let events = publish_in_order(&app, &p, 1..=3).await;
    let ids = delivery_ids(&app, &p, &hook, &events).await;
    let shown = app.get(&path, &app.admin).await.ok(200).clone();
    assert_eq!(
        (shown["status"].clone(), shown["held_deliveries"].clone()),
        (json!("disabled"), json!(3)),
        "{shown:#}"
    );
    let listed = app.get("/v1/webhooks?status=disabled", &app.admin).await;
    assert_eq!(data(listed.ok(200))[0]["held_deliveries"], 3);
    let stats = app
        .get(&format!("{path}/stats"), &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (stats["held_deliveries"].clone(), stats["events"].clone()),
        (json!(3), json!(3)),
        "{stats:#}"
    );
    assert!(
        stats["next_trigger_at"].is_null(),
        "nothing is due: {stats:#}"
    );
    let held = app
        .get(&format!("{path}/deliveries?status=held"), &app.admin)
        .await
        .ok(200)
        .clone();
    let mut listed_ids: Vec<&str> = data(&held).iter().map(id).collect();
    listed_ids.reverse();
    assert_eq!(listed_ids, ids, "newest first");
    receiver
        .stays_at(0, tokio::time::Instant::now() + QUIET)
        .await;

    // Enabled: all three go at once, oldest first, each with the delivery id it was made with.
    let enabled = app
        .post(&format!("{path}/enable"), &app.admin, json!({}))
        .await;
    let enabled = enabled.ok(200).clone();
    assert_eq!(
        (
            enabled["status"].clone(),
            enabled["held_deliveries"].clone()
        ),
        (json!("active"), json!(0))
    );
    let got = receiver.wait_for(3, WAIT).await;
    let expected: Vec<(Value, String)> = (1..=3).map(Value::from).zip(ids.clone()).collect();
    assert_eq!(sent(&got), expected);
    let done = format!("{path}/deliveries?status=succeeded");
    app.wait_for(&done, WAIT, |b| data(b).len() == 3).await;
    let none_held = app
        .get(&format!("{path}/deliveries?status=held"), &app.admin)
        .await;
    assert!(data(none_held.ok(200)).is_empty());
    assert_eq!(receiver.received().len(), 3, "each sent once");
}

async fn an_out_of_order_webhook_holds_its_deliveries_until_a_trigger_now_succeeds(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);
    let policy = json!({"schedule_seconds": [], "out_of_order_after_failures": 1});
    let (p, hook) = shop(&app, &receiver.url, json!({"retry_policy": policy})).await;
    let path = format!("/v1/webhooks/{hook}");
    app.publish(&p, "order.paid", json!({"n": 0})).await;
    app.wait_for(&path, WAIT, |w| w["status"] == "out_of_order")
        .await;

    let events = publish_in_order(&app, &p, 1..=3).await;
    let ids = delivery_ids(&app, &p, &hook, &events).await;
    let shown = app.get(&path, &app.admin).await.ok(200).clone();
    assert_eq!(shown["held_deliveries"], 3, "{shown:#}");
    receiver
        .stays_at(1, tokio::time::Instant::now() + QUIET)
        .await;

    // A Trigger now that succeeds brings it back, and what it held follows, in order.
    let triggered = app
        .post(&format!("{path}/trigger"), &app.admin, json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(triggered["succeeded"], true, "{triggered:#}");
    let got = receiver.wait_for(5, WAIT).await;
    assert_eq!(got[1].json()["type"], "webhook.test");
    let expected: Vec<(Value, String)> = (1..=3).map(Value::from).zip(ids).collect();
    assert_eq!(sent(&got[2..]), expected);
    let back = app.get(&path, &app.admin).await.ok(200).clone();
    assert_eq!(
        (back["status"].clone(), back["held_deliveries"].clone()),
        (json!("active"), json!(0))
    );
    // The delivery that failed for good before is not sent again.
    let failed = app
        .get(&format!("{path}/deliveries?status=failed"), &app.admin)
        .await;
    assert_eq!(data(failed.ok(200)).len(), 1);
    receiver
        .stays_at(5, tokio::time::Instant::now() + QUIET)
        .await;
}

async fn held_deliveries_are_discarded_all_or_before_a_time_and_never_sent(app: TestApp) {
    let receiver = Receiver::start().await;
    let (p, hook) = shop(&app, &receiver.url, json!({})).await;
    let path = format!("/v1/webhooks/{hook}");
    app.post(&format!("{path}/disable"), &app.admin, json!({}))
        .await
        .ok(200);
    let events = publish_in_order(&app, &p, 1..=3).await;
    let ids = delivery_ids(&app, &p, &hook, &events).await;
    let discard = format!("{path}/held/discard");

    // Those created before a time: here, before the second event.
    let first = app
        .post(
            &discard,
            &app.admin,
            json!({"before": events[1]["created_at"]}),
        )
        .await;
    assert_eq!(first.ok(200), &json!({"discarded": 1}));
    assert_eq!(
        app.get(&path, &app.admin).await.ok(200)["held_deliveries"],
        2
    );
    let discarded = app
        .get(&format!("{path}/deliveries?status=discarded"), &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(data(&discarded).len(), 1);
    assert_eq!(id(&data(&discarded)[0]), ids[0]);
    assert_eq!(data(&discarded)[0]["status"], "discarded");
    assert!(data(&discarded)[0]["next_attempt_at"].is_null());

    // With no body: all the others.
    let rest = app
        .call(Method::POST, &discard, Some(&app.admin), None)
        .await;
    assert_eq!(rest.ok(200), &json!({"discarded": 2}));
    let again = app.post(&discard, &app.admin, json!({})).await;
    assert_eq!(again.ok(200), &json!({"discarded": 0}));
    let shown = app.get(&path, &app.admin).await.ok(200).clone();
    assert_eq!(shown["held_deliveries"], 0);
    let all = app
        .get(&format!("{path}/deliveries?status=all"), &app.admin)
        .await
        .ok(200)
        .clone();
    assert!(
        data(&all).len() == 3 && data(&all).iter().all(|d| d["status"] == "discarded"),
        "{all:#}"
    );

    // Enabled again, nothing discarded is sent...
    app.post(&format!("{path}/enable"), &app.admin, json!({}))
        .await
        .ok(200);
    receiver
        .stays_at(0, tokio::time::Instant::now() + QUIET)
        .await;
    // ...unless a person replays it, with its delivery id.
    let replay = format!("/v1/deliveries/{}/replay", ids[2]);
    let replayed = app
        .call(Method::POST, &replay, Some(&app.admin), None)
        .await;
    assert_eq!(replayed.ok(200)["status"], "pending");
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(sent(&got), vec![(json!(3), ids[2].clone())]);
}

async fn discarding_is_refused_when_nothing_is_held_for_bad_input_and_other_roles(app: TestApp) {
    let receiver = Receiver::start().await;
    let (p, hook) = shop(&app, &receiver.url, json!({})).await;
    let other = app.project("elsewhere").await;
    let path = format!("/v1/webhooks/{hook}");
    let discard = format!("{path}/held/discard");

    // An active webhook holds nothing: 409, saying so.
    let refused = app.post(&discard, &app.admin, json!({})).await;
    let problem = refused.problem(409, None);
    assert_eq!(problem["type"], "/problems/not-held");
    assert!(
        problem["detail"].as_str().unwrap().contains("active"),
        "{problem:#}"
    );

    app.post(&format!("{path}/disable"), &app.admin, json!({}))
        .await
        .ok(200);
    app.publish(&p, "order.paid", json!({"n": 1})).await;
    let viewer = app.key("project_viewer", Some(&p)).await;
    let publisher = app.key("publisher", Some(&p)).await;
    let stranger = app.key("project_admin", Some(&other)).await;
    let before = app.snapshot().await;
    let bad = [
        (json!({"before": "yesterday"}), "before"),
        (json!({"before": 5}), "before"),
        (json!({"before": "2024-13-01T00:00:00Z"}), "before"),
        (json!({"befor": "2024-01-01T00:00:00Z"}), "befor"),
        (json!([]), ""),
    ];
    for (body, field) in bad {
        let reply = app.post(&discard, &app.admin, body.clone()).await;
        let field = (!field.is_empty()).then_some(field);
        reply.problem(422, field);
    }
    app.raw(
        Method::POST,
        &discard,
        &app.admin,
        "application/json",
        b"{".to_vec(),
    )
    .await
    .problem(400, None);
    app.raw(
        Method::POST,
        &discard,
        &app.admin,
        "text/plain",
        b"all".to_vec(),
    )
    .await
    .problem(415, None);

    // Only those who may manage the project's webhooks; other projects see nothing.
    for key in [&viewer, &publisher] {
        app.post(&discard, key, json!({})).await.problem(403, None);
    }
    app.post(&discard, &stranger, json!({}))
        .await
        .problem(404, None);
    for unknown in ["wh_01J00000000000000000000000", "nonsense"] {
        app.post(
            &format!("/v1/webhooks/{unknown}/held/discard"),
            &app.admin,
            json!({}),
        )
        .await
        .problem(404, None);
    }
    assert_eq!(app.snapshot().await, before);
    assert_eq!(
        app.get(&path, &app.admin).await.ok(200)["held_deliveries"],
        1
    );

    // The project's admin may.
    let owner = app.key("project_admin", Some(&p)).await;
    let done = app.post(&discard, &owner, json!({})).await;
    assert_eq!(done.ok(200), &json!({"discarded": 1}));

    // A webhook pending validation holds nothing either (it is not subscribed yet).
    let strict = app
        .post(
            "/v1/projects",
            &app.admin,
            json!({"name": "strict", "require_validation": true}),
        )
        .await;
    let strict = id(strict.ok(201)).to_owned();
    let waiting = app
        .webhook(&strict, "waiting", json!({"url": receiver.url}))
        .await;
    assert_eq!(waiting["status"], "pending");
    let refused = app
        .post(
            &format!("/v1/webhooks/{}/held/discard", id(&waiting)),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(refused.problem(409, None)["type"], "/problems/not-held");
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_disabled_operations_webhook_gets_the_out_of_order_event_once_enabled() {
    let app = spawn_app_with(Backend::Sqlite, Options::default())
        .await
        .unwrap();
    let ops = Receiver::start().await;
    let watcher = app
        .webhook(
            "system",
            "ops",
            json!({"url": ops.url, "events": ["webhook.out_of_order"], "enabled": false}),
        )
        .await;
    let watcher = format!("/v1/webhooks/{}", id(&watcher));
    let failing = Receiver::start().await;
    failing.always(Reply::status(500));
    let policy = json!({"schedule_seconds": [], "out_of_order_after_failures": 1});
    let (p, hook) = shop(&app, &failing.url, json!({"retry_policy": policy})).await;
    app.publish(&p, "order.paid", json!({"n": 1})).await;
    app.wait_for(&format!("/v1/webhooks/{hook}"), WAIT, |w| {
        w["status"] == "out_of_order"
    })
    .await;

    // The system event is published to the watcher while it is disabled: held, not lost.
    app.wait_for(&watcher, WAIT, |w| w["held_deliveries"] == 1)
        .await;
    ops.stays_at(0, tokio::time::Instant::now() + QUIET).await;
    app.post(&format!("{watcher}/enable"), &app.admin, json!({}))
        .await
        .ok(200);
    let heard = ops.wait_for(1, WAIT).await;
    assert_eq!(heard[0].json()["type"], "webhook.out_of_order");
    assert_eq!(heard[0].json()["data"]["webhook_id"], hook.as_str());
}

#[tokio::test]
async fn the_held_filter_of_an_active_webhook_lists_nothing() {
    let app = spawn_app_with(Backend::Sqlite, Options::default())
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    receiver.always(Reply::status(500));
    let policy = json!({"schedule_seconds": [60]});
    let (p, hook) = shop(&app, &receiver.url, json!({"retry_policy": policy})).await;
    app.publish(&p, "order.paid", json!({"n": 1})).await;
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    // Retrying, but on an active webhook: on its way, not held.
    app.wait_for(&deliveries, WAIT, |b| {
        data(b).len() == 1 && data(b)[0]["status"] == "retrying"
    })
    .await;
    let held = app
        .get(&format!("{deliveries}?status=held"), &app.admin)
        .await;
    assert!(data(held.ok(200)).is_empty());
    let mixed = app
        .get(&format!("{deliveries}?status=held,retrying"), &app.admin)
        .await;
    assert_eq!(data(mixed.ok(200)).len(), 1);
    app.get(&format!("{deliveries}?status=held,kept"), &app.admin)
        .await
        .problem(400, Some("status"));
}

on_both_stores_one_lane!(
    a_disabled_webhook_holds_its_deliveries_and_enabling_sends_them_in_order,
    an_out_of_order_webhook_holds_its_deliveries_until_a_trigger_now_succeeds,
    held_deliveries_are_discarded_all_or_before_a_time_and_never_sent,
    discarding_is_refused_when_nothing_is_held_for_bad_input_and_other_roles,
);
