//! Outbound safety: a destination is judged by the address it resolves to, however the URL
//! spells it — a name, a decimal or octal IPv4 literal, an IPv4-mapped IPv6 address — and a
//! non-public one is refused unless the operator allowed its network.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use crate::receiver::Receiver;

/// Every spelling of a loopback destination, for a receiver on `port`.
fn loopback_spellings(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("dotted", format!("http://127.0.0.1:{port}/hook")),
        ("name", format!("http://localhost:{port}/hook")),
        ("decimal", format!("http://2130706433:{port}/hook")),
        ("octal", format!("http://0177.0.0.1:{port}/hook")),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/hook")),
        ("v6", format!("http://[::1]:{port}/hook")),
    ]
}

/// What became of one spelling: refused when the webhook was created (the 422's detail), or
/// the first attempt of its delivery.
enum Fate {
    RefusedAtCreate(String),
    Attempted(Value),
}

/// Creates one webhook per spelling in a new project (with retries, which a refusal by policy
/// must not use), publishes one event, and returns what became of each spelling once every
/// created webhook's first attempt is recorded.
async fn one_attempt_per_spelling(app: &TestApp, receiver: &Receiver) -> Vec<(&'static str, Fate)> {
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let mut hooks = Vec::new();
    for (spelling, url) in loopback_spellings(receiver.port()) {
        let reply = app
            .post(
                "/v1/webhooks",
                &app.admin,
                json!({"project": p, "name": spelling, "url": url,
                       "retry_policy": {"schedule_seconds": [1, 1, 1]}}),
            )
            .await;
        if reply.status.as_u16() == 422 {
            let detail = reply.problem(422, Some("url"))["detail"]
                .as_str()
                .unwrap()
                .to_owned();
            hooks.push((spelling, Err(detail)));
        } else {
            hooks.push((
                spelling,
                Ok(reply.ok(201)["id"].as_str().unwrap().to_owned()),
            ));
        }
    }
    app.publish(&p, "order.paid", json!({})).await;
    let mut fates = Vec::new();
    for (spelling, hook) in hooks {
        let hook = match hook {
            Ok(hook) => hook,
            Err(detail) => {
                fates.push((spelling, Fate::RefusedAtCreate(detail)));
                continue;
            }
        };
        let path = format!("/v1/webhooks/{hook}/attempts");
        let listed = app
            .wait_for(&path, Duration::from_secs(5), |b| b["data"][0].is_object())
            .await;
        fates.push((spelling, Fate::Attempted(listed["data"][0].clone())));
    }
    fates
}

#[tokio::test]
async fn every_spelling_of_a_loopback_destination_is_refused_when_no_network_is_allowed() {
    let options = Options {
        allow_networks: vec![],
        ..Default::default()
    };
    let app = spawn_app_with(Backend::Sqlite, options).await.unwrap();
    let receiver = Receiver::start().await;

    for (spelling, fate) in one_attempt_per_spelling(&app, &receiver).await {
        match fate {
            // A literal address is refused when the webhook is made: it could never be
            // delivered. The answer names the setting that would allow it.
            Fate::RefusedAtCreate(detail) => {
                assert_ne!(spelling, "name", "a name is judged after DNS, when sending");
                assert!(detail.contains("loopback"), "{spelling}: {detail}");
                assert!(detail.contains("--allow-network"), "{spelling}: {detail}");
            }
            // A name is refused at send time, by what it resolves to, and the delivery fails
            // at once with that reason instead of retrying for ever.
            Fate::Attempted(attempt) => {
                assert_eq!(spelling, "name", "{attempt:#}");
                assert_eq!(attempt["succeeded"], false, "{spelling}: {attempt:#}");
                assert_eq!(
                    attempt["error"]["kind"], "refused_by_policy",
                    "{spelling}: {attempt:#}"
                );
                let message = attempt["error"]["message"].as_str().unwrap();
                assert!(message.contains("loopback"), "{spelling}: {message}");
                assert!(attempt["response"].is_null());
                let delivery = app
                    .get(
                        &format!(
                            "/v1/deliveries/{}",
                            attempt["delivery_id"].as_str().unwrap()
                        ),
                        &app.admin,
                    )
                    .await;
                let delivery = delivery.ok(200);
                assert_eq!(
                    (delivery["status"].clone(), delivery["attempts"].clone()),
                    (json!("failed"), json!(1)),
                    "{delivery:#}"
                );
            }
        }
    }
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
}

#[tokio::test]
async fn an_allowed_network_is_delivered_to_by_every_spelling_that_lands_in_it() {
    // The default test options allow 127.0.0.0/8, and only that: ::1 is still refused.
    let app = spawn_app_with(Backend::Sqlite, Options::default())
        .await
        .unwrap();
    let receiver = Receiver::start().await;

    for (spelling, fate) in one_attempt_per_spelling(&app, &receiver).await {
        match (spelling, fate) {
            ("v6", Fate::RefusedAtCreate(detail)) => {
                assert!(detail.contains("::1"), "{detail}");
            }
            (_, Fate::Attempted(attempt)) if spelling != "v6" => {
                assert_eq!(attempt["succeeded"], true, "{spelling}: {attempt:#}");
                assert_eq!(attempt["response"]["status"], 200);
            }
            (spelling, _) => panic!("{spelling} went the wrong way"),
        }
    }
    assert_eq!(receiver.received().len(), 5);
}

/// IPv6 spellings that carry 127.0.0.1 through a translator or tunnel rather than the kernel's
/// IPv4-mapped form: each must be refused as loopback, not tried.
#[tokio::test]
async fn ipv6_addresses_that_embed_a_loopback_ipv4_address_are_refused_as_loopback() {
    let app = spawn_app_with(Backend::Sqlite, Options::default())
        .await
        .unwrap();
    let p = app.project("tunnels").await;
    app.event_type(&p, "order.paid").await;
    let spellings = [
        ("translated", "http://[::ffff:0:127.0.0.1]:9/hook"),
        ("compatible", "http://[::127.0.0.1]:9/hook"),
        ("nat64", "http://[64:ff9b::127.0.0.1]:9/hook"),
        ("six-to-four", "http://[2002:7f00:1::1]:9/hook"),
        (
            "teredo",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:9/hook",
        ),
    ];
    // Literal addresses: refused when the webhook is saved, as the loopback they reach (the
    // allowed 127.0.0.0/8 lets only the ordinary IPv4-mapped form through).
    let before = app.snapshot().await;
    for (spelling, url) in spellings {
        let reply = app
            .post(
                "/v1/webhooks",
                &app.admin,
                json!({"project": p, "name": spelling, "url": url}),
            )
            .await;
        let problem = reply.problem(422, Some("url"));
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("loopback"), "{spelling}: {detail}");
    }
    assert_eq!(app.snapshot().await, before);
}
