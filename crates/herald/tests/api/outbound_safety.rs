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

/// Creates one webhook per spelling in a new project, publishes one event, and returns each
/// webhook's first attempt by spelling once all are recorded.
async fn one_attempt_per_spelling(
    app: &TestApp,
    receiver: &Receiver,
) -> Vec<(&'static str, Value)> {
    let p = app.project("shop").await;
    app.event_type(&p, "order.paid").await;
    let mut hooks = Vec::new();
    for (spelling, url) in loopback_spellings(receiver.port()) {
        let hook = app
            .webhook(
                &p,
                spelling,
                json!({"url": url, "retry_policy": {"schedule_seconds": []}}),
            )
            .await;
        hooks.push((spelling, hook["id"].as_str().unwrap().to_owned()));
    }
    app.publish(&p, "order.paid", json!({})).await;
    let mut attempts = Vec::new();
    for (spelling, hook) in hooks {
        let path = format!("/v1/webhooks/{hook}/attempts");
        let listed = app
            .wait_for(&path, Duration::from_secs(5), |b| b["data"][0].is_object())
            .await;
        attempts.push((spelling, listed["data"][0].clone()));
    }
    attempts
}

#[tokio::test]
async fn every_spelling_of_a_loopback_destination_is_refused_when_no_network_is_allowed() {
    let options = Options {
        allow_networks: vec![],
        ..Default::default()
    };
    let app = spawn_app_with(Backend::Sqlite, options).await.unwrap();
    let receiver = Receiver::start().await;

    for (spelling, attempt) in one_attempt_per_spelling(&app, &receiver).await {
        assert_eq!(attempt["succeeded"], false, "{spelling}: {attempt:#}");
        assert_eq!(
            attempt["error"]["kind"], "refused_by_policy",
            "{spelling}: {attempt:#}"
        );
        let message = attempt["error"]["message"].as_str().unwrap();
        assert!(message.contains("loopback"), "{spelling}: {message}");
        assert!(attempt["response"].is_null());
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

    for (spelling, attempt) in one_attempt_per_spelling(&app, &receiver).await {
        if spelling == "v6" {
            assert_eq!(
                attempt["error"]["kind"], "refused_by_policy",
                "{spelling}: {attempt:#}"
            );
        } else {
            assert_eq!(attempt["succeeded"], true, "{spelling}: {attempt:#}");
            assert_eq!(attempt["response"]["status"], 200);
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
    let mut hooks = Vec::new();
    for (spelling, url) in spellings {
        let hook = app
            .webhook(
                &p,
                spelling,
                json!({"url": url, "retry_policy": {"schedule_seconds": []}}),
            )
            .await;
        hooks.push((spelling, hook["id"].as_str().unwrap().to_owned()));
    }
    app.publish(&p, "order.paid", json!({})).await;
    for (spelling, hook) in hooks {
        let path = format!("/v1/webhooks/{hook}/attempts");
        let listed = app
            .wait_for(&path, Duration::from_secs(5), |b| b["data"][0].is_object())
            .await;
        let attempt = &listed["data"][0];
        assert_eq!(
            attempt["error"]["kind"], "refused_by_policy",
            "{spelling}: {attempt:#}"
        );
        let message = attempt["error"]["message"].as_str().unwrap();
        assert!(message.contains("loopback"), "{spelling}: {message}");
    }
}
