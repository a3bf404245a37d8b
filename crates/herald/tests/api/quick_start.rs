//! The README's quick start, as a user would do it: project, event type, webhook, a key of each
//! role, publish, and see the delivery recorded and then delivered.

use serde_json::json;

use crate::helpers::{TestApp, on_both_stores};
use crate::receiver::Receiver;

async fn a_new_user_publishes_an_event_and_sees_its_delivery(app: TestApp) {
    let receiver = Receiver::start().await;
    let admin = app.admin.clone();
    app.post("/v1/projects", &admin, json!({"name": "acme"}))
        .await
        .ok(201);
    app.post(
        "/v1/projects/acme/event-types",
        &admin,
        json!({"name": "environment.suspended", "description": "An environment was suspended",
               "schema": {"type": "object", "required": ["environmentId"]}}),
    )
    .await
    .ok(201);
    let hook = app
        .post(
            "/v1/webhooks",
            &admin,
            json!({"project": "acme", "name": "ops", "url": receiver.url, "events": ["environment.*"]}),
        )
        .await;
    let hook = hook.ok(201);
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(hook["status"], "active");

    let mut keys = Vec::new();
    for role in ["project_admin", "project_viewer", "publisher"] {
        keys.push(app.key(role, Some("acme")).await);
    }
    let me = app.get("/v1/me", &keys[2]).await;
    assert_eq!(me.ok(200)["role"], "publisher");

    let published = app
        .post(
            "/v1/projects/acme/events",
            &keys[2],
            json!({"type": "environment.suspended", "data": {"environmentId": "env-1"},
                   "actor": {"id": "u-1", "email": "pm@example.com"}}),
        )
        .await;
    let event = published.ok(202);
    let event_id = event["id"].as_str().unwrap();
    assert!(event_id.starts_with("evt_"));

    let arrived = receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(arrived[0].json()["data"], json!({"environmentId": "env-1"}));
    let path = format!("/v1/projects/acme/events/{event_id}/deliveries");
    let mut delivery = json!(null);
    for _ in 0..100 {
        let listed = app.get(&path, &keys[1]).await;
        let data = listed.ok(200)["data"].as_array().unwrap().clone();
        assert_eq!(data.len(), 1, "one delivery, for the one matching webhook");
        delivery = data[0].clone();
        if delivery["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(delivery["webhook_id"], hook["id"]);
    assert_eq!(delivery["status"], "succeeded");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(arrived[0].header("webhook-id"), delivery["id"].as_str());

    let events = app.get("/v1/projects/acme/events", &keys[0]).await;
    assert_eq!(
        events.ok(200)["data"][0]["actor"]["email"],
        "pm@example.com"
    );
}

on_both_stores!(a_new_user_publishes_an_event_and_sees_its_delivery);
