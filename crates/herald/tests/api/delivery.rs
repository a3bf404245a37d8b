//! The delivery engine end to end: real receivers on loopback, real databases.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, on_both_stores};
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(10);

async fn a_published_event_arrives_signed_and_is_retried_with_the_same_delivery_id(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(503)]);
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": {"schedule_seconds": [1, 1, 1]}}),
        )
        .await;
    app.post(
        &format!("/v1/projects/{p}/events"),
        &app.admin,
        json!({"id": "o-1", "type": "order.paid", "data": {"total": 12}}),
    )
    .await
    .ok(202);

    let got = receiver.wait_for(3, WAIT).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0] && id.starts_with("dlv_")),
        "{ids:?}"
    );
    assert_eq!(got[2].json()["type"], "order.paid");
    assert_eq!(got[2].json()["data"], json!({"total": 12}));
    assert!(
        got[2]
            .header("webhook-signature")
            .unwrap()
            .starts_with("v1,")
    );
    assert_eq!(got[2].header("x-herald-attempt"), Some("3"));

    // The third try succeeded: the delivery is done, and every try is on record.
    let hook_id = hook["id"].as_str().unwrap();
    let mut delivery = json!(null);
    for _ in 0..100 {
        let listed = app
            .get(
                &format!("/v1/webhooks/{hook_id}/deliveries?status=all"),
                &app.admin,
            )
            .await;
        delivery = listed.ok(200)["data"][0].clone();
        if delivery["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivery["status"], "succeeded");
    assert_eq!(delivery["attempts"], 3);
    let attempts = app
        .get(
            &format!(
                "/v1/deliveries/{}/attempts",
                delivery["id"].as_str().unwrap()
            ),
            &app.admin,
        )
        .await;
    let attempts = attempts.ok(200)["data"].as_array().unwrap().clone();
    let statuses: Vec<_> = attempts
        .iter()
        .map(|a| a["response"]["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(200), json!(503), json!(500)]);
    assert_eq!(attempts[1]["error"]["kind"], "status");
    assert_eq!(
        attempts[0]["request"]["headers"]["webhook-signature"],
        "<redacted>"
    );
    // The rest as sent, for the try it was (newest first: the third).
    let sent = &attempts[0]["request"]["headers"];
    assert_eq!(sent["x-herald-delivery-id"], delivery["id"]);
    assert_eq!(sent["webhook-id"], delivery["id"]);
    assert_eq!(sent["x-herald-attempt"], "3");
    assert_eq!(sent["content-type"], "application/json");
    assert!(
        sent["user-agent"].as_str().unwrap().starts_with("Herald/"),
        "{sent}"
    );
    assert!(
        attempts[0]["response"]["headers"]["content-length"].is_string(),
        "{}",
        attempts[0]["response"]
    );

    let stats = app
        .get(&format!("/v1/webhooks/{hook_id}/stats"), &app.admin)
        .await;
    let stats = stats.ok(200);
    assert_eq!(
        (stats["events"].clone(), stats["triggers"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(
        (
            stats["success_responses"].clone(),
            stats["failure_responses"].clone()
        ),
        (json!(1), json!(2))
    );
    assert_eq!(stats["failures_since_last_success"], 0);
    assert_eq!(stats["last_success"]["attempt_id"], attempts[0]["id"]);
    assert_eq!(stats["last_failure"]["attempt_id"], attempts[1]["id"]);
}

on_both_stores!(a_published_event_arrives_signed_and_is_retried_with_the_same_delivery_id);
