//! Invariant 3 — a slow or failing webhook never delays deliveries to other webhooks — and the
//! two ways a delivery travels: a POST with a JSON body, or a GET with the payload in the query.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, on_both_stores, spawn_app_with};
use crate::receiver::{Receiver, Reply};

/// The test app's concurrent sends per webhook (`Options::default().lane_concurrency`).
const LANE_CONCURRENCY: usize = 4;

async fn deliveries_to_hanging_webhooks_do_not_delay_healthy_ones(app: TestApp) {
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let mut hanging = Vec::new();
    let mut healthy = Vec::new();
    for i in 0..4 {
        let receiver = Receiver::start().await;
        receiver.always(Reply::status(200).after(Duration::from_secs(10)));
        app.webhook(
            &p,
            &format!("hanging-{i}"),
            json!({"url": receiver.url, "timeout_seconds": 5}),
        )
        .await;
        hanging.push(receiver);
        let receiver = Receiver::start().await;
        app.webhook(
            &p,
            &format!("healthy-{i}"),
            json!({"url": receiver.url, "timeout_seconds": 5}),
        )
        .await;
        healthy.push(receiver);
    }

    for n in 0..20 {
        app.publish(&p, "order.paid", json!({"n": n})).await;
    }

    // Every healthy webhook has all twenty long before the hanging ones' first timeout (5 s).
    for receiver in &healthy {
        let got = receiver.wait_for(20, Duration::from_secs(3)).await;
        let mut seen: Vec<i64> = got
            .iter()
            .map(|r| r.json()["data"]["n"].as_i64().unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }
    // Meanwhile each hanging webhook holds no more than its lane's share of sends.
    for receiver in &hanging {
        receiver
            .wait_for(LANE_CONCURRENCY, Duration::from_secs(1))
            .await;
    }
    for receiver in &hanging {
        assert_eq!(receiver.received().len(), LANE_CONCURRENCY);
    }
}

fn query(r: &crate::receiver::Received) -> HashMap<String, String> {
    url::form_urlencoded::parse(r.query.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

async fn a_get_webhook_receives_the_payload_as_query_parameters_and_a_post_one_as_json(
    app: TestApp,
) {
    let by_get = Receiver::start().await;
    let by_post = Receiver::start().await;
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let get_hook = app
        .webhook(&p, "by-get", json!({"url": by_get.url, "method": "GET"}))
        .await;
    assert_eq!(get_hook["method"], "GET");
    let post_hook = app
        .webhook(&p, "by-post", json!({"url": by_post.url}))
        .await;
    assert_eq!(post_hook["method"], "POST");
    let payload = json!({"total": 12, "currency": "EUR"});
    app.publish(&p, "order.paid", payload.clone()).await;

    let got = by_get.wait_for(1, Duration::from_secs(5)).await;
    let get = &got[0];
    assert_eq!(get.method, "GET");
    assert_eq!(get.path, "/hook");
    assert!(get.body.is_empty());
    let params = query(get);
    assert_eq!(params["type"], "order.paid", "{params:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&params["data"]).unwrap(),
        payload
    );
    assert!(!params["timestamp"].is_empty(), "{params:?}");
    assert!(get.header("webhook-id").unwrap().starts_with("dlv_"));
    assert!(get.header("webhook-signature").unwrap().starts_with("v1,"));

    let got = by_post.wait_for(1, Duration::from_secs(5)).await;
    let post = &got[0];
    assert_eq!(post.method, "POST");
    assert!(post.query.is_none());
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.json()["type"], "order.paid");
    assert_eq!(post.json()["data"], payload);

    // The attempt records the request as sent: method and the URL with its query.
    let path = format!("/v1/webhooks/{}/attempts", get_hook["id"].as_str().unwrap());
    let attempts = app
        .wait_for(&path, Duration::from_secs(5), |b| b["data"][0].is_object())
        .await;
    let request = &attempts["data"][0]["request"];
    assert_eq!(request["method"], "GET");
    assert!(
        request["url"].as_str().unwrap().contains("type=order.paid"),
        "{request:#}"
    );
}

on_both_stores!(
    deliveries_to_hanging_webhooks_do_not_delay_healthy_ones,
    a_get_webhook_receives_the_payload_as_query_parameters_and_a_post_one_as_json,
);

/// An app whose lanes hold three deliveries (one sending, two queued) and whose poller looks
/// only hourly, with one webhook answering `reply` after `delay_ms`, sent `events` events.
async fn burst_into_a_small_lane(
    backend: Backend,
    reply: Reply,
    delay_ms: u64,
    events: u64,
) -> Option<(TestApp, Receiver)> {
    let options = Options {
        lane_concurrency: 1,
        lane_queue: 2,
        poll_interval_ms: 3_600_000,
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await?;
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let receiver = Receiver::start().await;
    receiver.always(reply.after(Duration::from_millis(delay_ms)));
    app.webhook(&p, "small-lane", json!({"url": receiver.url}))
        .await;
    for n in 0..events {
        app.publish(&p, "order.paid", json!({"n": n})).await;
    }
    Some((app, receiver))
}

/// A burst larger than the webhook's lane (concurrency + queue) spills to the store unleased; it
/// is fetched as the lane drains, not at the next poll (an hour away here).
async fn a_burst_larger_than_the_lane_flows_without_waiting_for_the_poller(backend: Backend) {
    let Some((_app, receiver)) = burst_into_a_small_lane(backend, Reply::status(200), 20, 40).await
    else {
        return;
    };
    let got = receiver.wait_for(40, Duration::from_secs(10)).await;
    let mut seen: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..40).collect::<Vec<_>>(), "all forty, each once");
}

#[tokio::test]
async fn a_burst_larger_than_the_lane_flows_without_waiting_for_the_poller_sqlite() {
    a_burst_larger_than_the_lane_flows_without_waiting_for_the_poller(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_burst_larger_than_the_lane_flows_without_waiting_for_the_poller_postgres() {
    a_burst_larger_than_the_lane_flows_without_waiting_for_the_poller(Backend::Postgres).await;
}

/// The other side of the refill: a webhook that is failing gets what spilled to the store at
/// the poll interval's pace (an hour here), not as fast as it can refuse it.
async fn a_failing_webhook_is_not_refilled_faster_than_the_poll_interval(backend: Backend) {
    let Some((_app, receiver)) =
        burst_into_a_small_lane(backend, Reply::status(500), 300, 20).await
    else {
        return;
    };
    // The lane's three (one sending, two queued) are tried; the other seventeen wait.
    receiver.wait_for(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn a_failing_webhook_is_not_refilled_faster_than_the_poll_interval_sqlite() {
    a_failing_webhook_is_not_refilled_faster_than_the_poll_interval(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_failing_webhook_is_not_refilled_faster_than_the_poll_interval_postgres() {
    a_failing_webhook_is_not_refilled_faster_than_the_poll_interval(Backend::Postgres).await;
}
