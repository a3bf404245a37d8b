//! What the engine does when deliveries fail: retries on the schedule, `Retry-After`, `410 Gone`,
//! out of order and its operational event, timeouts, refused connections, long bodies — and
//! statistics that agree with the attempts log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, on_both_stores};
use crate::receiver::{Receiver, Reply};

/// How long a test waits for something that should take a fraction of a second.
const WAIT: Duration = Duration::from_secs(5);

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn data(v: &Value) -> &Vec<Value> {
    v["data"].as_array().unwrap()
}

/// A project with one event type, `order.paid`.
async fn shop(app: &TestApp, name: &str) -> String {
    let p = app.project(name).await;
    app.event_type(&p, "order.paid").await;
    p
}

/// Waits until the webhook's only delivery is no longer pending or retrying; returns it.
async fn settled_delivery(app: &TestApp, hook: &str) -> Value {
    let path = format!("/v1/webhooks/{hook}/deliveries?status=all");
    let listed = app
        .wait_for(&path, WAIT, |b| {
            data(b).len() == 1
                && matches!(
                    b["data"][0]["status"].as_str(),
                    Some("succeeded" | "failed")
                )
        })
        .await;
    data(&listed)[0].clone()
}

/// The attempts of a webhook, oldest first.
async fn attempts(app: &TestApp, hook: &str) -> Vec<Value> {
    let listed = app
        .get(
            &format!("/v1/webhooks/{hook}/attempts?limit=250"),
            &app.admin,
        )
        .await;
    let mut attempts = data(listed.ok(200)).clone();
    attempts.reverse();
    attempts
}

async fn a_failing_delivery_is_retried_on_schedule_then_fails(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.always(Reply::status(500));
    let p = shop(&app, "shop").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": {"schedule_seconds": [1, 1]}}),
        )
        .await;
    let hook = id(&hook).to_owned();
    app.publish(&p, "order.paid", json!({})).await;

    // Three tries, each a second (± the 20 % jitter) after the one before, all one delivery.
    let got = receiver.wait_for(3, WAIT).await;
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(750) && gap < Duration::from_millis(2500),
            "{gap:?}"
        );
        assert_eq!(pair[0].header("webhook-id"), pair[1].header("webhook-id"));
    }
    let numbers: Vec<_> = got
        .iter()
        .map(|r| r.header("x-herald-attempt").unwrap())
        .collect();
    assert_eq!(numbers, ["1", "2", "3"]);

    // After the last one the delivery has failed, and nothing more is scheduled.
    let delivery = settled_delivery(&app, &hook).await;
    assert_eq!(delivery["status"], "failed", "{delivery:#}");
    assert_eq!(delivery["attempts"], 3);
    assert!(delivery["next_attempt_at"].is_null());
    let stats = app
        .get(&format!("/v1/webhooks/{hook}/stats"), &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (
            stats["triggers"].clone(),
            stats["failure_responses"].clone()
        ),
        (json!(3), json!(1 + 2)),
        "{stats:#}"
    );
    assert_eq!(stats["failures_since_last_success"], 3);
    assert_eq!(stats["failed_deliveries_in_a_row"], 1);
    assert!(stats["next_trigger_at"].is_null());
    let undelivered = app
        .get(&format!("/v1/webhooks/{hook}/deliveries"), &app.admin)
        .await;
    assert_eq!(undelivered.ok(200)["data"][0]["status"], "failed");
    assert_eq!(receiver.received().len(), 3);
}

async fn retry_after_on_a_429_replaces_a_long_scheduled_delay(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(429).with_header("retry-after", "1")]);
    let p = shop(&app, "shop").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": {"schedule_seconds": [3600]}}),
        )
        .await;
    app.publish(&p, "order.paid", json!({})).await;

    // The schedule says an hour; the receiver asked for a second.
    let got = receiver.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(950) && gap < Duration::from_secs(3),
        "{gap:?}"
    );
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let delivery = settled_delivery(&app, id(&hook)).await;
    assert_eq!(
        (delivery["status"].clone(), delivery["attempts"].clone()),
        (json!("succeeded"), json!(2))
    );
    let attempts = attempts(&app, id(&hook)).await;
    assert_eq!(attempts[0]["response"]["status"], 429);
    assert_eq!(attempts[0]["response"]["headers"]["retry-after"], "1");
}

async fn a_410_gone_disables_the_webhook_at_once(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.always(Reply::status(410));
    let p = shop(&app, "shop").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": {"schedule_seconds": [1, 1]}}),
        )
        .await;
    let hook = id(&hook).to_owned();
    app.publish(&p, "order.paid", json!({})).await;

    let path = format!("/v1/webhooks/{hook}");
    let disabled = app
        .wait_for(&path, WAIT, |w| w["status"] == "disabled")
        .await;
    assert!(
        disabled["status_reason"].as_str().unwrap().contains("410"),
        "{disabled:#}"
    );
    // The delivery failed on its first try, with no retry left scheduled despite the policy.
    let delivery = settled_delivery(&app, &hook).await;
    assert_eq!(
        (delivery["status"].clone(), delivery["attempts"].clone()),
        (json!("failed"), json!(1)),
        "{delivery:#}"
    );
    assert!(delivery["next_attempt_at"].is_null());
    assert_eq!(attempts(&app, &hook).await[0]["error"]["kind"], "status");
    // Later events are not sent to it: their deliveries are held until a person enables it.
    let later = app.publish(&p, "order.paid", json!({})).await;
    let made = app
        .get(
            &format!("/v1/projects/{p}/events/{}/deliveries", id(&later)),
            &app.admin,
        )
        .await;
    assert_eq!(data(made.ok(200))[0]["status"], "pending");
    assert_eq!(
        app.get(&path, &app.admin).await.ok(200)["held_deliveries"],
        1
    );
    assert_eq!(receiver.received().len(), 1);
}

async fn a_webhook_whose_deliveries_keep_failing_goes_out_of_order_and_the_system_project_hears(
    app: TestApp,
) {
    let failing = Receiver::start().await;
    failing.always(Reply::status(500));
    let ops = Receiver::start().await;
    let watcher = app
        .webhook(
            "system",
            "ops",
            json!({"url": ops.url, "events": ["webhook.out_of_order"]}),
        )
        .await;
    assert_eq!(watcher["status"], "active");
    let p = shop(&app, "shop").await;
    let policy = json!({"schedule_seconds": [], "out_of_order_after_failures": 2});
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": failing.url, "retry_policy": policy}),
        )
        .await;
    let hook = id(&hook).to_owned();

    // One failed delivery is not enough.
    app.publish(&p, "order.paid", json!({"n": 1})).await;
    settled_delivery(&app, &hook).await;
    let path = format!("/v1/webhooks/{hook}");
    assert_eq!(app.get(&path, &app.admin).await.ok(200)["status"], "active");

    // The second is.
    app.publish(&p, "order.paid", json!({"n": 2})).await;
    let gone = app
        .wait_for(&path, WAIT, |w| w["status"] == "out_of_order")
        .await;
    let reason = gone["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("out of order") && reason.contains('2'),
        "{reason}"
    );
    let stats = app
        .get(&format!("{path}/stats"), &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(stats["failed_deliveries_in_a_row"], 2, "{stats:#}");

    // The operations webhook hears of it, naming the webhook.
    let heard = ops.wait_for(1, WAIT).await;
    let event = heard[0].json();
    assert_eq!(event["type"], "webhook.out_of_order", "{event:#}");
    assert_eq!(event["data"]["webhook_id"], hook.as_str());
    assert_eq!(event["data"]["project_id"], p.as_str());
    assert!(
        event["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("out of order")
    );

    // Nothing more goes to the webhook: what is published for it is held.
    let later = app.publish(&p, "order.paid", json!({"n": 3})).await;
    let made = app
        .get(
            &format!("/v1/projects/{p}/events/{}/deliveries", id(&later)),
            &app.admin,
        )
        .await;
    assert_eq!(data(made.ok(200))[0]["status"], "pending");
    assert_eq!(
        app.get(&path, &app.admin).await.ok(200)["held_deliveries"],
        1
    );
    assert_eq!(failing.received().len(), 2);
}

async fn timeouts_refused_connections_and_long_bodies_are_recorded_as_such(app: TestApp) {
    let slow = Receiver::start().await;
    slow.always(Reply::status(200).after(Duration::from_secs(3)));
    let chatty = Receiver::start().await;
    chatty.always(Reply::status(200).body(&"x".repeat(100 * 1024)));
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let p = shop(&app, "shop").await;
    let no_retry = json!({"schedule_seconds": []});
    let slow_hook = app
        .webhook(
            &p,
            "slow",
            json!({"url": slow.url, "timeout_seconds": 1, "retry_policy": no_retry}),
        )
        .await;
    let closed_hook = app
        .webhook(
            &p,
            "closed",
            json!({"url": closed, "retry_policy": no_retry}),
        )
        .await;
    let chatty_hook = app
        .webhook(
            &p,
            "chatty",
            json!({"url": chatty.url, "retry_policy": no_retry}),
        )
        .await;
    app.publish(&p, "order.paid", json!({})).await;

    // No complete answer within the webhook's timeout of one second.
    let delivery = settled_delivery(&app, id(&slow_hook)).await;
    assert_eq!(delivery["status"], "failed");
    let timed_out = &attempts(&app, id(&slow_hook)).await[0];
    assert_eq!(timed_out["error"]["kind"], "timeout", "{timed_out:#}");
    assert!(timed_out["response"].is_null());
    let took = timed_out["duration_ms"].as_u64().unwrap();
    assert!((950..2900).contains(&took), "{took} ms");
    assert_eq!(slow.received().len(), 1);

    // Nobody listening.
    settled_delivery(&app, id(&closed_hook)).await;
    let refused = &attempts(&app, id(&closed_hook)).await[0];
    assert_eq!(refused["error"]["kind"], "connect", "{refused:#}");
    assert!(refused["response"].is_null());

    // A 2xx with a body over 64 KiB succeeds, and keeps only the first 64 KiB.
    let delivery = settled_delivery(&app, id(&chatty_hook)).await;
    assert_eq!(delivery["status"], "succeeded");
    let long = &attempts(&app, id(&chatty_hook)).await[0];
    assert_eq!(long["response"]["truncated"], true);
    assert_eq!(long["response"]["body"].as_str().unwrap().len(), 64 * 1024);
    assert!(long["error"].is_null());
}

async fn statistics_agree_with_the_attempts_log_after_concurrent_mixed_results(app: TestApp) {
    let receiver = Receiver::start().await;
    // Twelve first tries of which six fail; of the six retries, two fail again.
    let first = [500, 200, 200, 503, 200, 500, 404, 200, 200, 500, 200, 500];
    let retries = [500, 200, 200, 500, 200, 200];
    receiver.script(first.iter().chain(&retries).map(|s| Reply::status(*s)));
    let p = shop(&app, "shop").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": {"schedule_seconds": [1]}}),
        )
        .await;
    let hook = id(&hook).to_owned();

    let mut publishers = tokio::task::JoinSet::new();
    let app = std::sync::Arc::new(app);
    for n in 0..12 {
        let (app, p) = (app.clone(), p.clone());
        publishers.spawn(async move { app.publish(&p, "order.paid", json!({"n": n})).await });
    }
    while let Some(done) = publishers.join_next().await {
        done.unwrap();
    }
    receiver.wait_for(18, WAIT).await;
    let all = format!("/v1/webhooks/{hook}/deliveries?status=all");
    let settled = app
        .wait_for(&all, WAIT, |b| {
            data(b).len() == 12
                && data(b)
                    .iter()
                    .all(|d| matches!(d["status"].as_str(), Some("succeeded" | "failed")))
        })
        .await;
    let failed = data(&settled)
        .iter()
        .filter(|d| d["status"] == "failed")
        .count();
    assert_eq!(failed, 2);

    let log = attempts(&app, &hook).await;
    let successes = log.iter().filter(|a| a["succeeded"] == true).count();
    let failures = log.iter().filter(|a| a["succeeded"] == false).count();
    assert_eq!((log.len(), successes, failures), (18, 10, 8));
    let stats = app
        .get(&format!("/v1/webhooks/{hook}/stats"), &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(stats["events"], 12, "{stats:#}");
    assert_eq!(stats["triggers"], log.len());
    assert_eq!(stats["success_responses"], successes);
    assert_eq!(stats["failure_responses"], failures);
    assert!(stats["next_trigger_at"].is_null());
    assert!(stats["last_event_at"].is_string());
    for (which, succeeded) in [("last_success", true), ("last_failure", false)] {
        let link = stats[which]["link"].as_str().unwrap();
        let linked = app.get(link, &app.admin).await.ok(200).clone();
        assert_eq!(linked["succeeded"], succeeded, "{which}: {linked:#}");
        assert_eq!(linked["webhook_id"], hook.as_str());
        assert!(log.iter().any(|a| a["id"] == linked["id"]));
    }
}

on_both_stores!(
    a_failing_delivery_is_retried_on_schedule_then_fails,
    retry_after_on_a_429_replaces_a_long_scheduled_delay,
    a_410_gone_disables_the_webhook_at_once,
    a_webhook_whose_deliveries_keep_failing_goes_out_of_order_and_the_system_project_hears,
    timeouts_refused_connections_and_long_bodies_are_recorded_as_such,
    statistics_agree_with_the_attempts_log_after_concurrent_mixed_results,
);
