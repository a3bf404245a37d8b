//! Publishing events: matching, durability before 202, idempotency, and every bad input.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, on_both_stores, spawn_app_with};

async fn deliveries_of(app: &TestApp, project: &str, event: &str) -> BTreeSet<String> {
    let reply = app
        .get(
            &format!("/v1/projects/{project}/events/{event}/deliveries"),
            &app.admin,
        )
        .await;
    reply.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn publishing_commits_one_delivery_per_matching_subscribed_webhook(app: TestApp) {
    let p = app.project("shop").await;
    for t in ["environment.suspended", "file.uploaded"] {
        app.event_type(&p, t).await;
    }
    let id = |v: serde_json::Value| v["id"].as_str().unwrap().to_owned();
    let all = id(app.webhook(&p, "all", json!({})).await);
    let envs = id(app
        .webhook(&p, "envs", json!({"events": ["environment.*"]}))
        .await);
    let _files = id(app
        .webhook(&p, "files", json!({"events": ["file.uploaded"]}))
        .await);
    let off = id(app.webhook(&p, "off", json!({"enabled": false})).await);
    let paused = id(app.webhook(&p, "paused", json!({})).await);
    app.post(
        &format!("/v1/webhooks/{paused}/disable"),
        &app.admin,
        json!({}),
    )
    .await
    .ok(200);

    let reply = app
        .post(
            &format!("/v1/projects/{p}/events"),
            &app.admin,
            json!({"id": "e1", "type": "environment.suspended", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(reply.ok(202)["id"], "e1");
    assert!(reply.headers.get("idempotent-replayed").is_none());
    // Disabled webhooks are matched too: their deliveries are held, not lost.
    assert_eq!(
        deliveries_of(&app, &p, "e1").await,
        BTreeSet::from([all.clone(), envs, off.clone(), paused.clone()])
    );

    // Enabling again takes effect for the next event.
    app.post(
        &format!("/v1/webhooks/{paused}/enable"),
        &app.admin,
        json!({}),
    )
    .await
    .ok(200);
    app.post(
        &format!("/v1/projects/{p}/events"),
        &app.admin,
        json!({"id": "e2", "type": "file.uploaded", "data": {}}),
    )
    .await
    .ok(202);
    assert_eq!(
        deliveries_of(&app, &p, "e2").await.len(),
        4,
        "all, files, the re-enabled one and the disabled one"
    );
}

async fn the_same_event_id_returns_the_first_event_and_creates_nothing(app: TestApp) {
    let p = app.project("idem").await;
    app.event_type(&p, "a.b").await;
    app.webhook(&p, "h", json!({})).await;
    let first = app
        .post(
            &format!("/v1/projects/{p}/events"),
            &app.admin,
            json!({"id": "order-7", "type": "a.b", "data": {"v": 1}}),
        )
        .await;
    let first = first.ok(202).clone();
    let before = app.snapshot().await;
    let again = app
        .post(
            &format!("/v1/projects/{p}/events"),
            &app.admin,
            json!({"id": "order-7", "type": "a.b", "data": {"v": 1}}),
        )
        .await;
    assert_eq!(again.ok(202), &first, "the first event comes back");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(app.snapshot().await, before, "nothing new was written");
    assert_eq!(deliveries_of(&app, &p, "order-7").await.len(), 1);

    // A retry is a retry however its numbers are written: floats read back from the store are
    // the floats sent (about a third of random doubles came back one bit off before).
    let floats = json!({"id": "order-8", "type": "a.b",
        "data": {"x": 1.0715660391465826e-75, "y": -1.603964615428183e143, "z": -1.81996730402717e-179}});
    app.post(
        &format!("/v1/projects/{p}/events"),
        &app.admin,
        floats.clone(),
    )
    .await
    .ok(202);
    let again = app
        .post(&format!("/v1/projects/{p}/events"), &app.admin, floats)
        .await;
    assert_eq!(again.ok(202)["id"], "order-8");
    assert_eq!(again.headers["idempotent-replayed"], "true");

    // The same id with other data, or another type, is a mistake the publisher hears of.
    app.event_type(&p, "a.c").await;
    let before = app.snapshot().await;
    for (body, field) in [
        (
            json!({"id": "order-7", "type": "a.b", "data": {"v": 2}}),
            "data",
        ),
        (
            json!({"id": "order-7", "type": "a.c", "data": {"v": 1}}),
            "type",
        ),
    ] {
        let reply = app
            .post(&format!("/v1/projects/{p}/events"), &app.admin, body)
            .await;
        let problem = reply.problem(409, Some(field));
        assert_eq!(problem["type"], "/problems/idempotency-key-reused");
        assert!(
            problem["detail"].as_str().unwrap().contains("order-7"),
            "{problem}"
        );
    }
    assert_eq!(app.snapshot().await, before, "nothing was written");

    // The same id in another project is another event.
    let q = app.project("idem-2").await;
    app.event_type(&q, "a.b").await;
    let other = app
        .post(
            &format!("/v1/projects/{q}/events"),
            &app.admin,
            json!({"id": "order-7", "type": "a.b", "data": {"v": 3}}),
        )
        .await;
    assert_eq!(other.ok(202)["data"]["v"], 3);
}

async fn bad_events_are_refused_with_the_field_and_change_nothing(app: TestApp) {
    let p = app.project("bad").await;
    app.post(
        &format!("/v1/projects/{p}/event-types"),
        &app.admin,
        json!({"name": "payment.made", "schema": {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}}),
    )
    .await
    .ok(201);
    app.event_type(&p, "old.thing").await;
    app.patch(
        &format!("/v1/projects/{p}/event-types/old.thing"),
        &app.admin,
        json!({"archived": true}),
    )
    .await
    .ok(200);
    app.webhook(&p, "h", json!({})).await;
    let path = format!("/v1/projects/{p}/events");
    let before = app.snapshot().await;

    let cases = [
        (json!({"type": "no.such", "data": {}}), "type"),
        (json!({"type": "bad*name", "data": {}}), "type"),
        (json!({"type": "old.thing", "data": {}}), "type"),
        (
            json!({"type": "payment.made", "data": {"amount": "ten"}}),
            "data.amount",
        ),
        (json!({"type": "payment.made", "data": {}}), "data"),
        (json!({"type": "payment.made"}), "data"),
        (json!({"data": {"amount": 1}}), "type"),
        (
            json!({"id": "has space", "type": "payment.made", "data": {"amount": 1}}),
            "id",
        ),
        (
            json!({"id": "", "type": "payment.made", "data": {"amount": 1}}),
            "id",
        ),
        (
            json!({"type": "payment.made", "data": {"amount": 1}, "occurred_at": "yesterday"}),
            "occurred_at",
        ),
        (
            json!({"type": "payment.made", "data": {"amount": 1}, "occurred_at": "+10000-01-01T00:00:00Z"}),
            "occurred_at",
        ),
        (
            json!({"type": "payment.made", "data": {"amount": 1}, "occurred_at": "0000-06-01T00:00:00Z"}),
            "occurred_at",
        ),
        (
            json!({"type": "payment.made", "data": {"amount": 1}, "actor": {"email": "nope"}}),
            "actor.email",
        ),
        (
            json!({"type": "payment.made", "data": {"amount": 1}, "actor": {"name": "x"}}),
            "actor.name",
        ),
        (
            json!({"type": "payment.made", "data": {"amount": 1}, "extra": true}),
            "extra",
        ),
        (json!({"type": 7, "data": {"amount": 1}}), "type"),
    ];
    for (body, field) in cases {
        let reply = app.post(&path, &app.admin, body.clone()).await;
        reply.problem(422, Some(field));
        assert!(!reply.body["detail"].as_str().unwrap().is_empty(), "{body}");
    }
    let malformed = app
        .raw(
            Method::POST,
            &path,
            &app.admin,
            "application/json",
            b"{\"type\": ".to_vec(),
        )
        .await;
    assert_eq!(
        malformed.problem(400, None)["type"],
        "/problems/malformed-json"
    );
    let trailing = app
        .raw(
            Method::POST,
            &path,
            &app.admin,
            "application/json",
            br#"{"type": "payment.made", "data": {"amount": 1}} trailing"#.to_vec(),
        )
        .await;
    trailing.problem(400, None);
    let not_json = app
        .raw(
            Method::POST,
            &path,
            &app.admin,
            "text/plain",
            b"hello".to_vec(),
        )
        .await;
    not_json.problem(415, None);
    app.post(
        "/v1/projects/no-such-project/events",
        &app.admin,
        json!({"type": "payment.made", "data": {"amount": 1}}),
    )
    .await
    .problem(404, None);
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413_and_change_nothing() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            max_body_bytes: 2048,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let p = app.project("big").await;
    app.event_type(&p, "a.b").await;
    let before = app.snapshot().await;
    let big = json!({"type": "a.b", "data": {"blob": "x".repeat(4096)}});
    let reply = app
        .post(&format!("/v1/projects/{p}/events"), &app.admin, big)
        .await;
    assert!(
        reply.problem(413, None)["detail"]
            .as_str()
            .unwrap()
            .contains("2048")
    );
    assert_eq!(app.snapshot().await, before);
    let small = json!({"type": "a.b", "data": {"blob": "x".repeat(100)}});
    app.post(&format!("/v1/projects/{p}/events"), &app.admin, small)
        .await
        .ok(202);
}

async fn events_can_be_read_back_filtered_and_paged(app: TestApp) {
    let p = app.project("read").await;
    app.event_type(&p, "a.one").await;
    app.event_type(&p, "a.two").await;
    let occurred = "2024-05-27T09:54:03.250Z";
    for i in 0..5 {
        let t = if i % 2 == 0 { "a.one" } else { "a.two" };
        app.post(
            &format!("/v1/projects/{p}/events"),
            &app.admin,
            json!({"id": format!("e{i}"), "type": t, "data": {"i": i}, "occurred_at": occurred}),
        )
        .await
        .ok(202);
    }
    let one = app
        .get(&format!("/v1/projects/{p}/events/e3"), &app.admin)
        .await;
    let one = one.ok(200);
    assert_eq!(one["type"], "a.two");
    assert_eq!(one["data"], json!({"i": 3}));
    assert_eq!(one["occurred_at"], occurred);

    let filtered = app
        .get(&format!("/v1/projects/{p}/events?type=a.one"), &app.admin)
        .await;
    let ids: Vec<&str> = filtered.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| ["e0", "e2", "e4"].contains(id)));

    let mut seen = Vec::new();
    let mut url = format!("/v1/projects/{p}/events?limit=2");
    loop {
        let page = app.get(&url, &app.admin).await;
        let page = page.ok(200).clone();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/v1/projects/{p}/events?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4"]);

    app.get(&format!("/v1/projects/{p}/events/nope"), &app.admin)
        .await
        .problem(404, None);
    app.get(
        &format!("/v1/projects/{p}/events/nope/deliveries"),
        &app.admin,
    )
    .await
    .problem(404, None);
    app.get(&format!("/v1/projects/{p}/events?type=bad*"), &app.admin)
        .await
        .problem(400, Some("type"));
    app.get(&format!("/v1/projects/{p}/events?limit=0"), &app.admin)
        .await
        .problem(400, Some("limit"));
    app.get(&format!("/v1/projects/{p}/events?cursor=abc"), &app.admin)
        .await
        .problem(400, Some("cursor"));
}

on_both_stores!(
    publishing_commits_one_delivery_per_matching_subscribed_webhook,
    the_same_event_id_returns_the_first_event_and_creates_nothing,
    bad_events_are_refused_with_the_field_and_change_nothing,
    events_can_be_read_back_filtered_and_paged,
);
