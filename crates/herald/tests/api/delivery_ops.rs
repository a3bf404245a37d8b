//! Operations on a webhook through the API: Trigger now, Validate, Replay (one delivery, or every
//! failed one since a time), Enable/Disable on queued work, the undelivered list, and who may do
//! each of them.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, on_both_stores, spawn_app_with};
use crate::receiver::{Receiver, Reply};

/// How long a test waits for something that should take a fraction of a second.
const WAIT: Duration = Duration::from_secs(5);

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn data(v: &Value) -> &Vec<Value> {
    v["data"].as_array().unwrap()
}

/// POSTs with no body at all (Validate and Replay take none).
async fn post_empty(app: &TestApp, path: &str, key: &str) -> crate::helpers::Reply {
    app.call(Method::POST, path, Some(key), None).await
}

async fn trigger_now_sends_at_once_whatever_the_filter_and_answers_with_the_attempt(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(202).body("thanks")]);
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "events": ["order.paid"]}),
        )
        .await;
    let hook = id(&hook);
    let trigger = format!("/v1/webhooks/{hook}/trigger");

    // No payload given: a test event, outside the webhook's filter, answered synchronously.
    let first = app
        .post(&trigger, &app.admin, json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(first["succeeded"], true, "{first:#}");
    assert_eq!(first["trigger"], "manual");
    assert_eq!(first["number"], 1);
    assert_eq!(first["webhook_id"], hook);
    assert_eq!(first["response"]["status"], 202);
    assert_eq!(first["response"]["body"], "thanks");
    assert!(first["error"].is_null());
    let got = receiver.received();
    assert_eq!(got.len(), 1, "the receiver has it before the answer comes");
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert_eq!(got[0].json()["data"], json!({}));
    assert_eq!(got[0].header("webhook-id"), first["delivery_id"].as_str());

    // A payload given: sent as is, under a type that is neither in the filter nor known.
    let second = app
        .post(
            &trigger,
            &app.admin,
            json!({"type": "inventory.low", "data": {"sku": "A-1"}}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(second["succeeded"], true, "{second:#}");
    assert_eq!(second["response"]["status"], 200);
    assert_ne!(second["delivery_id"], first["delivery_id"]);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["type"], "inventory.low");
    assert_eq!(got[1].json()["data"], json!({"sku": "A-1"}));

    // Both count as events and triggers, and the statistics link to the last one.
    let stats = app
        .get(&format!("/v1/webhooks/{hook}/stats"), &app.admin)
        .await;
    let stats = stats.ok(200).clone();
    assert_eq!(stats["events"], 2, "{stats:#}");
    assert_eq!(stats["triggers"], 2);
    assert_eq!(
        (
            stats["success_responses"].clone(),
            stats["failure_responses"].clone()
        ),
        (json!(2), json!(0))
    );
    assert_eq!(stats["last_success"]["attempt_id"], second["id"]);
    assert!(stats["last_failure"].is_null());
    let link = stats["last_success"]["link"].as_str().unwrap();
    assert_eq!(link, format!("/v1/attempts/{}", id(&second)));
    let linked = app.get(link, &app.admin).await.ok(200).clone();
    for field in [
        "id",
        "delivery_id",
        "webhook_id",
        "trigger",
        "succeeded",
        "response",
    ] {
        assert_eq!(linked[field], second[field], "{field} of {linked:#}");
    }
}

async fn a_successful_trigger_now_brings_an_out_of_order_webhook_back(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(500)]);
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let policy = json!({"schedule_seconds": [], "out_of_order_after_failures": 1});
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": policy}),
        )
        .await;
    let hook = id(&hook).to_owned();
    let path = format!("/v1/webhooks/{hook}");
    app.publish(&p, "order.paid", json!({"n": 1})).await;
    let gone = app
        .wait_for(&path, WAIT, |w| w["status"] == "out_of_order")
        .await;
    assert!(
        gone["status_reason"]
            .as_str()
            .unwrap()
            .contains("out of order"),
        "{gone:#}"
    );

    // A Trigger now that fails changes nothing.
    let trigger = format!("/v1/webhooks/{hook}/trigger");
    let failed = app
        .post(&trigger, &app.admin, json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(failed["succeeded"], false, "{failed:#}");
    assert_eq!(failed["response"]["status"], 500);
    assert_eq!(failed["error"]["kind"], "status");
    assert_eq!(
        app.get(&path, &app.admin).await.ok(200)["status"],
        "out_of_order"
    );

    // One that succeeds reactivates the webhook, and published events flow again.
    let ok = app
        .post(&trigger, &app.admin, json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(ok["succeeded"], true, "{ok:#}");
    let back = app.get(&path, &app.admin).await.ok(200).clone();
    assert_eq!(back["status"], "active", "{back:#}");
    assert!(
        back["status_reason"]
            .as_str()
            .unwrap()
            .contains("Trigger now"),
        "{back:#}"
    );
    app.publish(&p, "order.paid", json!({"n": 2})).await;
    let got = receiver.wait_for(4, WAIT).await;
    assert_eq!(got[3].json()["data"], json!({"n": 2}));
}

async fn only_a_2xx_to_the_validation_event_activates_a_pending_webhook(app: TestApp) {
    let receiver = Receiver::start().await;
    let created = app
        .post(
            "/v1/projects",
            &app.admin,
            json!({"name": "cases", "require_validation": true}),
        )
        .await;
    let p = id(created.ok(201)).to_owned();
    app.event_type(&p, "case.opened").await;
    let hook = app.webhook(&p, "cases", json!({"url": receiver.url})).await;
    assert_eq!(hook["status"], "pending", "{hook:#}");
    let hook = id(&hook).to_owned();
    let path = format!("/v1/webhooks/{hook}");

    // While pending it is not matched: a published event makes no delivery for it.
    let event = app.publish(&p, "case.opened", json!({"case": 1})).await;
    let deliveries = app
        .get(
            &format!("/v1/projects/{p}/events/{}/deliveries", id(&event)),
            &app.admin,
        )
        .await;
    assert_eq!(data(deliveries.ok(200)).len(), 0);

    // Enabling (or pausing) it is no way round its validation: a webhook that never answered
    // one would get what it held, or what comes, without it.
    let before = app.snapshot().await;
    for verb in ["enable", "disable"] {
        let refused = post_empty(&app, &format!("{path}/{verb}"), &app.admin).await;
        let problem = refused.problem(409, None);
        assert_eq!(problem["type"], "/problems/not-validated", "{problem:#}");
        assert!(
            problem["detail"].as_str().unwrap().contains("/validate"),
            "{problem:#}"
        );
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "still pending, nothing changed"
    );

    // A validation the receiver refuses leaves it pending.
    receiver.script([Reply::status(500)]);
    let validate = format!("/v1/webhooks/{hook}/validate");
    let refused = post_empty(&app, &validate, &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(refused["succeeded"], false, "{refused:#}");
    assert_eq!(refused["trigger"], "validation");
    assert_eq!(refused["response"]["status"], 500);
    assert_eq!(
        app.get(&path, &app.admin).await.ok(200)["status"],
        "pending"
    );

    // One it accepts activates it.
    let accepted = post_empty(&app, &validate, &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(accepted["succeeded"], true, "{accepted:#}");
    let got = receiver.received();
    assert_eq!(got.len(), 2, "the published event was never sent");
    assert!(got.iter().all(|r| r.json()["type"] == "webhook.validate"));
    let active = app.get(&path, &app.admin).await.ok(200).clone();
    assert_eq!(active["status"], "active", "{active:#}");
    assert!(
        active["status_reason"]
            .as_str()
            .unwrap()
            .contains("validation"),
        "{active:#}"
    );

    // From now on it receives what is published.
    app.publish(&p, "case.opened", json!({"case": 2})).await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got[2].json()["type"], "case.opened");
    assert_eq!(got[2].json()["data"], json!({"case": 2}));
}

#[tokio::test]
async fn the_validation_event_goes_out_under_its_configured_name() {
    let options = Options {
        validation_event: "Webhook Validate".into(),
        ..Default::default()
    };
    let app = spawn_app_with(Backend::Sqlite, options).await.unwrap();
    let receiver = Receiver::start().await;
    let created = app
        .post(
            "/v1/projects",
            &app.admin,
            json!({"name": "cases", "require_validation": true}),
        )
        .await;
    let p = id(created.ok(201)).to_owned();
    let hook = app
        .webhook(
            &p,
            "cases",
            json!({"url": receiver.url, "preset": "event-data"}),
        )
        .await;
    assert_eq!(hook["status"], "pending");

    let validate = format!("/v1/webhooks/{}/validate", id(&hook));
    let attempt = post_empty(&app, &validate, &app.admin)
        .await
        .ok(200)
        .clone();
    assert_eq!(attempt["succeeded"], true, "{attempt:#}");
    let got = receiver.received();
    assert_eq!(
        got[0].json(),
        json!({"event": "Webhook Validate", "data": {}})
    );
    assert_eq!(got[0].header("x-webhook-secret"), hook["secret"].as_str());
    let now = app
        .get(&format!("/v1/webhooks/{}", id(&hook)), &app.admin)
        .await;
    assert_eq!(now.ok(200)["status"], "active");
}

async fn a_project_names_its_validation_event_for_every_preset(app: TestApp) {
    let receiver = Receiver::start().await;
    let created = app
        .post(
            "/v1/projects",
            &app.admin,
            json!({"name": "sites", "require_validation": true, "validation_event": "Site Validate"}),
        )
        .await;
    let project = created.ok(201).clone();
    assert_eq!(project["validation_event"], "Site Validate");
    let p = id(&project).to_owned();
    for preset in ["standard", "event-data"] {
        let hook = app
            .webhook(&p, preset, json!({"url": receiver.url, "preset": preset}))
            .await;
        let validate = format!("/v1/webhooks/{}/validate", id(&hook));
        post_empty(&app, &validate, &app.admin).await.ok(200);
    }
    let got = receiver.received();
    assert_eq!(got[0].json()["type"], "Site Validate");
    assert_eq!(got[1].json(), json!({"event": "Site Validate", "data": {}}));

    // Cleared, the preset's name applies again (event-data: "Webhook Validate"), and the
    // server's for the others.
    let path = format!("/v1/projects/{p}");
    let cleared = app
        .patch(&path, &app.admin, json!({"validation_event": null}))
        .await;
    assert_eq!(cleared.ok(200)["validation_event"], Value::Null);
    for preset in ["event-data", "standard"] {
        let hook = app
            .webhook(
                &p,
                &format!("{preset}-2"),
                json!({"url": receiver.url, "preset": preset}),
            )
            .await;
        let validate = format!("/v1/webhooks/{}/validate", id(&hook));
        post_empty(&app, &validate, &app.admin).await.ok(200);
    }
    let got = receiver.received();
    assert_eq!(got[2].json()["event"], "Webhook Validate");
    assert_eq!(got[3].json()["type"], "webhook.validate");

    // A name that is no event type name is refused, and changes nothing.
    let before = app.snapshot().await;
    for bad in [json!(""), json!("bad*name"), json!(7), json!(" lead")] {
        app.patch(&path, &app.admin, json!({"validation_event": bad}))
            .await
            .problem(422, Some("validation_event"));
        app.post(
            "/v1/projects",
            &app.admin,
            json!({"name": "other", "validation_event": bad}),
        )
        .await
        .problem(422, Some("validation_event"));
    }
    assert_eq!(app.snapshot().await, before);
}

async fn replaying_a_delivery_sends_it_again_with_the_same_delivery_id(app: TestApp) {
    let receiver = Receiver::start().await;
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let hook = app
        .webhook(&p, "orders", json!({"url": receiver.url}))
        .await;
    let hook = id(&hook).to_owned();
    app.publish(&p, "order.paid", json!({"total": 12})).await;
    receiver.wait_for(1, WAIT).await;
    let done = format!("/v1/webhooks/{hook}/deliveries?status=succeeded");
    let listed = app.wait_for(&done, WAIT, |b| data(b).len() == 1).await;
    let delivery = id(&data(&listed)[0]).to_owned();

    let replayed = post_empty(
        &app,
        &format!("/v1/deliveries/{delivery}/replay"),
        &app.admin,
    )
    .await;
    let replayed = replayed.ok(200);
    assert_eq!(replayed["id"], delivery.as_str());
    assert_eq!(replayed["status"], "pending");

    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.header("webhook-id"), Some(delivery.as_str()));
        assert_eq!(r.header("x-herald-delivery-id"), Some(delivery.as_str()));
        assert_eq!(r.json()["data"], json!({"total": 12}));
    }
    assert_eq!(got[1].header("x-herald-attempt"), Some("2"));
    let path = format!("/v1/deliveries/{delivery}");
    let again = app
        .wait_for(&path, WAIT, |d| {
            d["status"] == "succeeded" && d["attempts"] == 2
        })
        .await;
    assert_eq!(again["webhook_id"], hook.as_str());
    let attempts = app.get(&format!("{path}/attempts"), &app.admin).await;
    let attempts = data(attempts.ok(200)).clone();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts
            .iter()
            .all(|a| a["delivery_id"] == delivery.as_str() && a["succeeded"] == true)
    );
}

async fn failed_deliveries_are_listed_as_undelivered_and_replayed_since_a_time(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(500), Reply::status(500)]);
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": {"schedule_seconds": []}}),
        )
        .await;
    let hook = id(&hook).to_owned();
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");

    // Three deliveries fail for good; the replay will take the last two.
    app.publish(&p, "order.paid", json!({"n": 1})).await;
    receiver.wait_for(1, WAIT).await;
    let second = app.publish(&p, "order.paid", json!({"n": 2})).await;
    app.publish(&p, "order.paid", json!({"n": 3})).await;
    receiver.wait_for(3, WAIT).await;
    let failed = app
        .wait_for(&deliveries, WAIT, |b| {
            data(b).len() == 3 && data(b).iter().all(|d| d["status"] == "failed")
        })
        .await;
    let mut all_ids: Vec<String> = data(&failed).iter().map(|d| id(d).to_owned()).collect();

    // The undelivered list (the default) and each status filter.
    let count = |b: &Value| data(b).len();
    let list = |q: &'static str| {
        let path = format!("{deliveries}{q}");
        let app = &app;
        async move { app.get(&path, &app.admin).await }
    };
    assert_eq!(count(list("?status=all").await.ok(200)), 3);
    assert_eq!(count(list("?status=failed").await.ok(200)), 3);
    assert_eq!(count(list("?status=succeeded").await.ok(200)), 0);
    assert_eq!(count(list("?status=pending,retrying").await.ok(200)), 0);
    list("?status=delivered").await.problem(400, Some("status"));

    let replay = format!("/v1/webhooks/{hook}/replay");
    let replayed = app
        .post(&replay, &app.admin, json!({"since": second["created_at"]}))
        .await;
    assert_eq!(replayed.ok(200)["replayed"], 2);
    let got = receiver.wait_for(5, WAIT).await;
    let mut resent: Vec<Value> = got[3..]
        .iter()
        .map(|r| r.json()["data"]["n"].clone())
        .collect();
    resent.sort_by_key(|n| n.as_i64());
    assert_eq!(resent, [json!(2), json!(3)]);

    // Now two have succeeded and only the first is still undelivered.
    let succeeded = format!("{deliveries}?status=succeeded");
    let succeeded = app.wait_for(&succeeded, WAIT, |b| data(b).len() == 2).await;
    assert!(data(&succeeded).iter().all(|d| d["attempts"] == 2));
    let undelivered = list("").await.ok(200).clone();
    assert_eq!(count(&undelivered), 1, "{undelivered:#}");
    assert_eq!(data(&undelivered)[0]["status"], "failed");
    let everything = list("?status=all").await.ok(200).clone();
    let mut ids: Vec<String> = data(&everything).iter().map(|d| id(d).to_owned()).collect();
    ids.sort();
    all_ids.sort();
    assert_eq!(ids, all_ids, "replaying made no new deliveries");
    let again = app
        .post(&replay, &app.admin, json!({"since": second["created_at"]}))
        .await;
    assert_eq!(again.ok(200)["replayed"], 0, "nothing failed since");
}

async fn disabling_holds_queued_deliveries_and_enabling_sends_them(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(500)]);
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "retry_policy": {"schedule_seconds": [2]}}),
        )
        .await;
    let hook = id(&hook).to_owned();
    app.publish(&p, "order.paid", json!({"n": 1})).await;
    app.publish(&p, "order.paid", json!({"n": 2})).await;
    let first = receiver.wait_for(2, WAIT).await;

    // Disabled while both wait for their retry (due 1.6 to 2.4 s after the failure).
    let disabled = app
        .post(
            &format!("/v1/webhooks/{hook}/disable"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(disabled.ok(200)["status"], "disabled");
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    let waiting = app
        .wait_for(&deliveries, WAIT, |b| {
            data(b).len() == 2 && data(b).iter().all(|d| d["status"] == "retrying")
        })
        .await;
    assert!(
        data(&waiting)
            .iter()
            .all(|d| d["attempts"] == 1 && d["next_attempt_at"].is_string())
    );

    // Their time comes and goes, and nothing is sent.
    let retry_due = first[1].at + Duration::from_millis(2400 + 400);
    receiver.stays_at(2, retry_due.into()).await;
    let still = app.get(&deliveries, &app.admin).await.ok(200).clone();
    assert!(
        data(&still).iter().all(|d| d["status"] == "retrying"),
        "{still:#}"
    );

    // Enabled: both go out at once, with the delivery ids they had.
    let enabled = app
        .post(
            &format!("/v1/webhooks/{hook}/enable"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(enabled.ok(200)["status"], "active");
    let got = receiver.wait_for(4, WAIT).await;
    let mut before: Vec<&str> = got[..2]
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    let mut after: Vec<&str> = got[2..]
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    before.sort_unstable();
    after.sort_unstable();
    assert_eq!(before, after);
    app.wait_for(&deliveries, WAIT, |b| data(b).is_empty())
        .await;
}

async fn bad_input_to_the_operations_is_refused_naming_the_field_and_changes_nothing(app: TestApp) {
    let receiver = Receiver::start().await;
    let p = app.project("shop").await;
    let hook = app
        .webhook(&p, "orders", json!({"url": receiver.url}))
        .await;
    let hook = id(&hook).to_owned();
    let before = app.snapshot().await;

    let trigger = format!("/v1/webhooks/{hook}/trigger");
    let bad_trigger = [
        (json!({"typ": "x.y"}), "typ"),
        (json!({"type": "no good!"}), "type"),
        (json!({"type": ".leading.dot"}), "type"),
        (json!({"type": 7}), "type"),
    ];
    for (body, field) in bad_trigger {
        app.post(&trigger, &app.admin, body)
            .await
            .problem(422, Some(field));
    }
    let replay = format!("/v1/webhooks/{hook}/replay");
    let bad_replay = [
        (json!({}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": "2024-13-01T00:00:00Z"}), "since"),
        (
            json!({"since": "2024-01-01T00:00:00Z", "status": "failed"}),
            "status",
        ),
    ];
    for (body, field) in bad_replay {
        app.post(&replay, &app.admin, body)
            .await
            .problem(422, Some(field));
    }
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    app.get(&format!("{deliveries}?status=pending,nope"), &app.admin)
        .await
        .problem(400, Some("status"));
    app.get(&format!("{deliveries}?state=failed"), &app.admin)
        .await
        .problem(400, Some("state"));
    app.get(&format!("/v1/webhooks/{hook}/attempts?limit=0"), &app.admin)
        .await
        .problem(400, Some("limit"));

    // Ids that name nothing are not found.
    let unknown = "wh_01J00000000000000000000000";
    for (path, body) in [
        (format!("/v1/webhooks/{unknown}/trigger"), json!({})),
        (format!("/v1/webhooks/{unknown}/validate"), json!({})),
        (
            format!("/v1/webhooks/{unknown}/replay"),
            json!({"since": "2024-01-01T00:00:00Z"}),
        ),
        (
            "/v1/deliveries/dlv_01J00000000000000000000000/replay".to_owned(),
            json!({}),
        ),
        ("/v1/deliveries/not-an-id/replay".to_owned(), json!({})),
    ] {
        app.post(&path, &app.admin, body).await.problem(404, None);
    }
    for path in [
        format!("/v1/webhooks/{unknown}/stats"),
        format!("/v1/webhooks/{unknown}/attempts"),
        format!("/v1/webhooks/{unknown}/deliveries"),
        "/v1/attempts/att_01J00000000000000000000000".to_owned(),
        "/v1/attempts/nonsense".to_owned(),
    ] {
        app.get(&path, &app.admin).await.problem(404, None);
    }

    assert_eq!(app.snapshot().await, before);
    assert!(receiver.received().is_empty());
}

async fn the_operations_are_scoped_to_the_key_s_project_and_role(app: TestApp) {
    let receiver = Receiver::start().await;
    let a = app.project("project-a").await;
    let b = app.project("project-b").await;
    app.event_type(&a, "order.paid").await;
    let hook = app
        .webhook(&a, "orders", json!({"url": receiver.url}))
        .await;
    let hook = id(&hook).to_owned();
    app.publish(&a, "order.paid", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    let attempts = format!("/v1/webhooks/{hook}/attempts");
    let attempt = app.wait_for(&attempts, WAIT, |b| data(b).len() == 1).await;
    let attempt = data(&attempt)[0].clone();
    let delivery = attempt["delivery_id"].as_str().unwrap().to_owned();

    let reads = [
        format!("/v1/webhooks/{hook}/stats"),
        attempts.clone(),
        format!("/v1/webhooks/{hook}/deliveries?status=all"),
        format!("/v1/deliveries/{delivery}"),
        format!("/v1/deliveries/{delivery}/attempts"),
        format!("/v1/attempts/{}", id(&attempt)),
    ];
    let writes = [
        (format!("/v1/webhooks/{hook}/trigger"), Some(json!({}))),
        (format!("/v1/webhooks/{hook}/validate"), None),
        (
            format!("/v1/webhooks/{hook}/replay"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (format!("/v1/deliveries/{delivery}/replay"), None),
    ];
    let other = app.key("project_admin", Some(&b)).await;
    let viewer = app.key("project_viewer", Some(&a)).await;
    let before = app.snapshot().await;

    // Another project's admin learns nothing: everything is not found.
    for path in &reads {
        app.get(path, &other).await.problem(404, None);
    }
    for (path, body) in &writes {
        app.call(Method::POST, path, Some(&other), body.as_ref())
            .await
            .problem(404, None);
    }

    // The project's viewer reads everything and operates nothing.
    for path in &reads {
        app.get(path, &viewer).await.ok(200);
    }
    let link = app.get(&reads[0], &viewer).await.ok(200)["last_success"]["link"].clone();
    app.get(link.as_str().unwrap(), &viewer).await.ok(200);
    for (path, body) in &writes {
        app.call(Method::POST, path, Some(&viewer), body.as_ref())
            .await
            .problem(403, None);
    }

    assert_eq!(app.snapshot().await, before);
    assert_eq!(receiver.received().len(), 1, "nothing was sent again");
    let delivery = app
        .get(&format!("/v1/deliveries/{delivery}"), &app.admin)
        .await;
    assert_eq!(delivery.ok(200)["attempts"], 1);
}

on_both_stores!(
    trigger_now_sends_at_once_whatever_the_filter_and_answers_with_the_attempt,
    a_successful_trigger_now_brings_an_out_of_order_webhook_back,
    only_a_2xx_to_the_validation_event_activates_a_pending_webhook,
    a_project_names_its_validation_event_for_every_preset,
    replaying_a_delivery_sends_it_again_with_the_same_delivery_id,
    failed_deliveries_are_listed_as_undelivered_and_replayed_since_a_time,
    disabling_holds_queued_deliveries_and_enabling_sends_them,
    bad_input_to_the_operations_is_refused_naming_the_field_and_changes_nothing,
    the_operations_are_scoped_to_the_key_s_project_and_role,
);

#[tokio::test]
async fn trigger_now_needs_no_body() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.unwrap();
    let receiver = Receiver::start().await;
    let p = app.project("bare").await;
    let hook = app.webhook(&p, "h", json!({"url": receiver.url})).await;
    let trigger = format!("/v1/webhooks/{}/trigger", id(&hook));
    let reply = app
        .call(Method::POST, &trigger, Some(&app.admin), None)
        .await;
    assert_eq!(reply.ok(200)["succeeded"], true);
    assert_eq!(receiver.received()[0].json()["type"], "webhook.test");
    let missing = app
        .call(
            Method::POST,
            "/v1/webhooks/wh_nope/trigger",
            Some(&app.admin),
            None,
        )
        .await;
    missing.problem(404, None);
}
