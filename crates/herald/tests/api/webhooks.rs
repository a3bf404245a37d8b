//! Webhooks: every setting on create and PATCH, presets, formats and signing, validation of each
//! field, status changes, lists and their filters, secrets, and deletion.

#![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, on_both_stores, spawn_app_with};

/// A made-up but well-formed webhook id.
const NO_SUCH_WEBHOOK: &str = "wh_01JD3ZZZZZZZZZZZZZZZZZZZZZ";

fn id_of(body: &Value) -> String {
    body["id"].as_str().unwrap().to_owned()
}

fn ids(list: &Value) -> BTreeSet<String> {
    list["data"].as_array().unwrap().iter().map(id_of).collect()
}

/// The body without the fields that change on every write.
fn settled(body: &Value) -> Value {
    let mut body = body.clone();
    let map = body.as_object_mut().unwrap();
    map.remove("updated_at");
    body
}

async fn my_key_id(app: &TestApp, key: &str) -> String {
    app.get("/v1/me", key).await.ok(200)["key_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_webhook_is_created_with_every_field_and_read_back_unchanged(app: TestApp) {
    let project = app.project("acme").await;
    app.event_type(&project, "environment.created").await;
    let created = app
        .post(
            "/v1/webhooks",
            &app.admin,
            json!({
                "project": "acme",
                "name": "Billing sync",
                "description": "Tells billing about environments",
                "url": "https://billing.example.com/hooks?source=herald",
                "method": "GET",
                "events": ["environment.created", "file.*"],
                "headers": {"X-Tenant": "t-1", "X-Api-Version": "2"},
                "custom_data": {"tenant": "t-1", "tier": 3, "tags": ["a", "b"]},
                "preset": "connect",
                "timeout_seconds": 45,
                "retry_policy": {"schedule_seconds": [5, 60, 3600], "out_of_order_after_failures": 10},
                "enabled": false
            }),
        )
        .await;
    let created = created.ok(201).clone();
    assert!(created["id"].as_str().unwrap().starts_with("wh_"));
    assert_eq!(created["project_id"], project.as_str());
    assert_eq!(created["name"], "Billing sync");
    assert_eq!(created["description"], "Tells billing about environments");
    assert_eq!(
        created["url"],
        "https://billing.example.com/hooks?source=herald"
    );
    assert_eq!(created["method"], "GET");
    assert_eq!(created["events"], json!(["environment.created", "file.*"]));
    assert_eq!(
        created["headers"],
        json!({"X-Tenant": "t-1", "X-Api-Version": "2"})
    );
    assert_eq!(
        created["custom_data"],
        json!({"tenant": "t-1", "tier": 3, "tags": ["a", "b"]})
    );
    assert_eq!(created["preset"], "connect");
    assert_eq!(created["format"], "connect");
    assert_eq!(created["template"], Value::Null);
    assert_eq!(created["signing"], json!({"scheme": "jwt-hs256"}));
    assert_eq!(created["timeout_seconds"], 45);
    assert_eq!(
        created["retry_policy"],
        json!({"schedule_seconds": [5, 60, 3600], "out_of_order_after_failures": 10})
    );
    assert_eq!(created["status"], "disabled");
    let admin_key = my_key_id(&app, &app.admin).await;
    assert!(
        created["status_reason"]
            .as_str()
            .unwrap()
            .contains(&admin_key),
        "{:#}",
        created["status_reason"]
    );
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));

    let got = app
        .get(&format!("/v1/webhooks/{}", id_of(&created)), &app.admin)
        .await;
    assert_eq!(got.ok(200), &created);
}

async fn a_webhook_given_only_a_name_and_url_gets_the_defaults(app: TestApp) {
    let project = app.project("acme").await;
    let created = app
        .post(
            "/v1/webhooks",
            &app.admin,
            json!({"project": project, "name": "  ops  ", "url": "https://example.com/hook"}),
        )
        .await;
    let created = created.ok(201).clone();
    assert_eq!(created["name"], "ops", "names are trimmed");
    assert_eq!(created["description"], Value::Null);
    assert_eq!(created["method"], "POST");
    assert_eq!(created["events"], json!(["*"]));
    assert_eq!(created["headers"], json!({}));
    assert_eq!(created["custom_data"], json!({}));
    assert_eq!(created["preset"], "standard");
    assert_eq!(created["format"], "standard");
    assert_eq!(created["template"], Value::Null);
    assert_eq!(created["signing"], json!({"scheme": "standard-webhooks"}));
    assert_eq!(created["timeout_seconds"], 30);
    assert_eq!(created["retry_policy"], Value::Null);
    assert_eq!(created["status"], "active");
    assert_eq!(created["status_reason"], Value::Null);
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > "whsec_".len());

    // `["*"]` is the same as leaving events out.
    let star = app
        .webhook(&project, "star", json!({"events": ["*"]}))
        .await;
    assert_eq!(star["events"], json!(["*"]));
    // Every webhook has its own secret.
    assert_ne!(star["secret"], created["secret"]);

    // Standard signing leaves Authorization free for the receiver's own credentials.
    let authorized = app
        .webhook(
            &project,
            "authorized",
            json!({"headers": {"Authorization": "Basic eDp5"}}),
        )
        .await;
    assert_eq!(
        authorized["headers"],
        json!({"Authorization": "Basic eDp5"})
    );
}

async fn each_preset_sets_its_format_and_signing(app: TestApp) {
    let project = app.project("acme").await;
    let cases = [
        (
            "standard",
            "standard",
            json!({"scheme": "standard-webhooks"}),
        ),
        (
            "github",
            "raw",
            json!({"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "encoding": "hex",
                   "prefix": "sha256=", "secret": "webhook"}),
        ),
        (
            "cloudshare",
            "cloudshare",
            json!({"scheme": "hmac-sha256", "header": "x-cloudshare-signature", "encoding": "base64",
                   "prefix": "", "secret": "account"}),
        ),
        (
            "event-data",
            "event-data",
            json!({"scheme": "secret-header", "header": "X-Webhook-Secret"}),
        ),
        ("connect", "connect", json!({"scheme": "jwt-hs256"})),
    ];
    for (preset, format, signing) in cases {
        let hook = app
            .webhook(&project, preset, json!({ "preset": preset }))
            .await;
        assert_eq!(hook["preset"], preset);
        assert_eq!(hook["format"], format, "{preset}");
        assert_eq!(hook["signing"], signing, "{preset}");
        let got = app
            .get(&format!("/v1/webhooks/{}", id_of(&hook)), &app.admin)
            .await;
        assert_eq!(got.ok(200), &hook, "{preset}");
    }
}

async fn an_explicit_format_or_signing_overrides_the_preset_which_is_then_reported_as_none(
    app: TestApp,
) {
    let project = app.project("acme").await;
    let overridden = app
        .webhook(
            &project,
            "github-ish",
            json!({"preset": "github", "format": "standard"}),
        )
        .await;
    assert_eq!(overridden["preset"], Value::Null);
    assert_eq!(overridden["format"], "standard");
    assert_eq!(overridden["signing"]["scheme"], "hmac-sha256");
    assert_eq!(overridden["signing"]["header"], "X-Hub-Signature-256");

    let raw_only = app.webhook(&project, "raw", json!({"format": "raw"})).await;
    assert_eq!(raw_only["preset"], Value::Null);
    assert_eq!(raw_only["format"], "raw");
    assert_eq!(raw_only["signing"], json!({"scheme": "standard-webhooks"}));

    let custom_signing = app
        .webhook(
            &project,
            "signed",
            json!({"preset": "event-data",
                   "signing": {"scheme": "hmac-sha256", "header": "X-Signature", "encoding": "base64"}}),
        )
        .await;
    assert_eq!(custom_signing["preset"], Value::Null);
    assert_eq!(custom_signing["format"], "event-data");
    assert_eq!(
        custom_signing["signing"],
        json!({"scheme": "hmac-sha256", "header": "X-Signature", "encoding": "base64",
               "prefix": "", "secret": "webhook"})
    );

    // Naming exactly the preset's own format keeps the preset.
    let same = app
        .webhook(
            &project,
            "same",
            json!({"preset": "connect", "format": "connect"}),
        )
        .await;
    assert_eq!(same["preset"], "connect");

    let unsigned = app
        .webhook(&project, "unsigned", json!({"signing": {"scheme": "none"}}))
        .await;
    assert_eq!(unsigned["preset"], Value::Null);
    assert_eq!(unsigned["format"], "standard");
    assert_eq!(unsigned["signing"], json!({"scheme": "none"}));
}

async fn a_custom_format_carries_its_template(app: TestApp) {
    let project = app.project("acme").await;
    let template = json!({
        "kind": "{{ event.type }}",
        "id": "{{event.id}}",
        "amount": "{{ event.data.order.amount }}",
        "hook": {"name": "{{ webhook.name }}", "tenant": "{{ custom.tenant }}"},
        "line": ["at {{ event.occurred_at }} try {{ attempt.number }}"]
    });
    let hook = app
        .webhook(
            &project,
            "custom",
            json!({"format": "custom", "template": template}),
        )
        .await;
    assert_eq!(hook["format"], "custom");
    assert_eq!(hook["template"], template);
    assert_eq!(hook["preset"], Value::Null);
    assert_eq!(hook["signing"], json!({"scheme": "standard-webhooks"}));
    let got = app
        .get(&format!("/v1/webhooks/{}", id_of(&hook)), &app.admin)
        .await;
    assert_eq!(got.ok(200)["template"], template);

    // PATCHing only the template of a custom webhook replaces it.
    let new_template = json!({"t": "{{ event.type }}"});
    let patched = app
        .patch(
            &format!("/v1/webhooks/{}", id_of(&hook)),
            &app.admin,
            json!({ "template": new_template }),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["format"], "custom");
    assert_eq!(patched["template"], new_template);
}

async fn invalid_webhooks_are_refused_naming_the_field_and_change_nothing(app: TestApp) {
    let project = app.project("acme").await;
    app.event_type(&project, "environment.created").await;
    app.event_type(&project, "environment.retired").await;
    app.patch(
        "/v1/projects/acme/event-types/environment.retired",
        &app.admin,
        json!({"archived": true}),
    )
    .await
    .ok(200);
    app.webhook(&project, "taken", json!({})).await;
    let too_many_retries = vec![1; 51];
    let before = app.snapshot().await;

    let with = |extra: Value| {
        let mut body = json!({"project": "acme", "name": "new", "url": "https://example.com/hook"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        // url
        (json!({"url": "not a url"}), "url"),
        (json!({"url": ""}), "url"),
        (json!({"url": "ftp://example.com/hook"}), "url"),
        (json!({"url": "https://example.com/hook#frag"}), "url"),
        (json!({"url": 7}), "url"),
        // name and description
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": "line\nbreak"}), "name"),
        (json!({"description": "d".repeat(1001)}), "description"),
        // events
        (
            json!({"events": ["environment.created", "no.such.type"]}),
            "events[1]",
        ),
        (json!({"events": []}), "events"),
        (
            json!({"events": ["environment.created", "env*"]}),
            "events[1]",
        ),
        (json!({"events": ["*.*"]}), "events[0]"),
        (json!({"events": ["environment.*", "*"]}), "events[1]"),
        (
            json!({"events": ["environment.created", "environment.created"]}),
            "events[1]",
        ),
        (json!({"events": ["environment.retired"]}), "events[0]"),
        (json!({"events": "environment.created"}), "events"),
        // headers
        (
            json!({"headers": {"webhook-signature": "v1,forged"}}),
            "headers.webhook-signature",
        ),
        (
            json!({"headers": {"Webhook-Id": "x"}}),
            "headers.Webhook-Id",
        ),
        (
            json!({"preset": "connect", "headers": {"Authorization": "Bearer x"}}),
            "headers.Authorization",
        ),
        (
            json!({"preset": "github", "headers": {"x-hub-signature-256": "x"}}),
            "headers.x-hub-signature-256",
        ),
        (
            json!({"preset": "event-data", "headers": {"X-Webhook-Secret": "x"}}),
            "headers.X-Webhook-Secret",
        ),
        (
            json!({"headers": {"bad header": "v"}}),
            "headers.bad header",
        ),
        (
            json!({"headers": {"Content-Type": "text/plain"}}),
            "headers.Content-Type",
        ),
        (
            json!({"headers": {"X-Herald-Foo": "v"}}),
            "headers.X-Herald-Foo",
        ),
        (json!({"headers": {"X-A": "line\nbreak"}}), "headers.X-A"),
        (json!({"headers": {"X-A": "1", "x-a": "2"}}), "headers.x-a"),
        (json!({"headers": {"X-A": 1}}), "headers.X-A"),
        // custom data
        (json!({"custom_data": [1, 2]}), "custom_data"),
        (json!({"custom_data": "text"}), "custom_data"),
        // timeout
        (json!({"timeout_seconds": 0}), "timeout_seconds"),
        (json!({"timeout_seconds": 601}), "timeout_seconds"),
        (json!({"timeout_seconds": -1}), "timeout_seconds"),
        // retry policy
        (
            json!({"retry_policy": {"schedule_seconds": [5, 0]}}),
            "retry_policy.schedule_seconds[1]",
        ),
        (
            json!({"retry_policy": {"schedule_seconds": [5, 604_801]}}),
            "retry_policy.schedule_seconds[1]",
        ),
        (
            json!({"retry_policy": {"schedule_seconds": [5], "out_of_order_after_failures": 0}}),
            "retry_policy.out_of_order_after_failures",
        ),
        (
            json!({"retry_policy": {"schedule_seconds": too_many_retries}}),
            "retry_policy.schedule_seconds",
        ),
        (json!({"retry_policy": {}}), "retry_policy.schedule_seconds"),
        // preset, format, template, signing
        (json!({"preset": "svix"}), "preset"),
        (json!({"format": "xml"}), "format"),
        (json!({"format": "custom"}), "template"),
        (
            json!({"format": "custom", "template": {"a": [1, {"b": "{{ event.nope }}"}]}}),
            "template.a[1].b",
        ),
        (
            json!({"format": "custom", "template": {"a": "{{ event.id"}}),
            "template.a",
        ),
        (json!({"template": {"a": "{{ event.id }}"}}), "template"),
        (
            json!({"format": "raw", "template": {"a": "{{ event.id }}"}}),
            "template",
        ),
        (
            json!({"signing": {"scheme": "hmac-sha256", "header": "bad header", "encoding": "hex"}}),
            "signing.header",
        ),
        (
            json!({"signing": {"scheme": "secret-header", "header": "Content-Length"}}),
            "signing.header",
        ),
        (
            json!({"signing": {"scheme": "hmac-sha256", "header": "X-Sig", "encoding": "hex", "prefix": "has space"}}),
            "signing.prefix",
        ),
        // method and unknown fields
        (json!({"method": "PUT"}), "method"),
        (json!({"method": "post"}), "method"),
        (json!({"colour": "red"}), "colour"),
        (json!({"enabled": "yes"}), "enabled"),
    ];
    for (extra, field) in cases {
        let body = with(extra.clone());
        let reply = app.post("/v1/webhooks", &app.admin, body).await;
        let problem = reply.problem(422, Some(field));
        assert_eq!(problem["type"], "/problems/invalid-field", "{extra}");
    }
    for missing in ["name", "url"] {
        let mut body = with(json!({}));
        body.as_object_mut().unwrap().remove(missing);
        app.post("/v1/webhooks", &app.admin, body)
            .await
            .problem(422, Some(missing));
    }
    app.post("/v1/webhooks", &app.admin, with(json!({"name": "taken"})))
        .await
        .problem(409, Some("name"));
    assert_eq!(
        app.snapshot().await,
        before,
        "no rejected webhook was stored"
    );
}

async fn webhook_names_are_unique_within_a_project_only(app: TestApp) {
    let a = app.project("a").await;
    let b = app.project("b").await;
    app.webhook(&a, "ops", json!({})).await;
    let before = app.snapshot().await;
    let duplicate = app
        .post(
            "/v1/webhooks",
            &app.admin,
            json!({"project": a, "name": "ops", "url": "https://example.com/other"}),
        )
        .await;
    assert_eq!(
        duplicate.problem(409, Some("name"))["type"],
        "/problems/conflict"
    );
    let trimmed_duplicate = app
        .post(
            "/v1/webhooks",
            &app.admin,
            json!({"project": a, "name": " ops ", "url": "https://example.com/other"}),
        )
        .await;
    trimmed_duplicate.problem(409, Some("name"));
    assert_eq!(app.snapshot().await, before);

    let elsewhere = app.webhook(&b, "ops", json!({})).await;
    assert_eq!(elsewhere["project_id"], b.as_str());
}

async fn an_admin_must_name_an_existing_project_for_a_new_webhook(app: TestApp) {
    app.project("acme").await;
    let before = app.snapshot().await;
    app.post(
        "/v1/webhooks",
        &app.admin,
        json!({"name": "h", "url": "https://example.com/hook"}),
    )
    .await
    .problem(422, Some("project"));
    for project in ["nope", "prj_01JD3ZZZZZZZZZZZZZZZZZZZZZ", "Not A Name"] {
        let reply = app
            .post(
                "/v1/webhooks",
                &app.admin,
                json!({"project": project, "name": "h", "url": "https://example.com/hook"}),
            )
            .await;
        assert_eq!(reply.problem(404, None)["type"], "/problems/not-found");
    }
    assert_eq!(app.snapshot().await, before);

    let by_name = app
        .post(
            "/v1/webhooks",
            &app.admin,
            json!({"project": "acme", "name": "h", "url": "https://example.com/hook"}),
        )
        .await;
    by_name.ok(201);
}

async fn patching_a_webhook_changes_only_the_fields_sent(app: TestApp) {
    let project = app.project("acme").await;
    app.event_type(&project, "environment.created").await;
    let hook = app
        .webhook(
            &project,
            "ops",
            json!({
                "description": "Ops channel",
                "events": ["environment.created", "file.*"],
                "headers": {"X-Tenant": "t-1"},
                "custom_data": {"tenant": "t-1"},
                "preset": "github",
                "timeout_seconds": 10,
                "retry_policy": {"schedule_seconds": [5, 60]}
            }),
        )
        .await;
    let path = format!("/v1/webhooks/{}", id_of(&hook));

    let renamed = app
        .patch(&path, &app.admin, json!({"name": "ops-renamed"}))
        .await;
    let renamed = renamed.ok(200).clone();
    let mut expected = settled(&hook);
    expected["name"] = json!("ops-renamed");
    assert_eq!(settled(&renamed), expected, "only the name changed");
    let got = app.get(&path, &app.admin).await;
    assert_eq!(got.ok(200), &renamed);

    let changed = app
        .patch(
            &path,
            &app.admin,
            json!({"url": "https://example.com/v2", "method": "GET", "timeout_seconds": 600,
                   "headers": {"X-Other": "o"}, "custom_data": {"x": 1}}),
        )
        .await;
    let changed = changed.ok(200).clone();
    assert_eq!(changed["url"], "https://example.com/v2");
    assert_eq!(changed["method"], "GET");
    assert_eq!(changed["timeout_seconds"], 600);
    assert_eq!(
        changed["headers"],
        json!({"X-Other": "o"}),
        "headers replaced"
    );
    assert_eq!(changed["custom_data"], json!({"x": 1}));
    assert_eq!(changed["description"], "Ops channel");
    assert_eq!(changed["preset"], "github");
    assert_eq!(changed["events"], json!(["environment.created", "file.*"]));
    assert_eq!(changed["secret"], hook["secret"], "the secret is kept");

    let cleared = app
        .patch(
            &path,
            &app.admin,
            json!({"description": null, "events": null, "custom_data": null, "retry_policy": null}),
        )
        .await;
    let cleared = cleared.ok(200).clone();
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["events"], json!(["*"]));
    assert_eq!(cleared["custom_data"], json!({}));
    assert_eq!(cleared["retry_policy"], Value::Null);
    assert_eq!(cleared["url"], "https://example.com/v2");
    assert_eq!(cleared["headers"], json!({"X-Other": "o"}));

    let nothing = app.patch(&path, &app.admin, json!({})).await;
    assert_eq!(settled(nothing.ok(200)), settled(&cleared));

    let described = app
        .patch(
            &path,
            &app.admin,
            json!({"description": "Back", "events": ["file.*"],
                   "retry_policy": {"schedule_seconds": [1], "out_of_order_after_hours": 24}}),
        )
        .await;
    let described = described.ok(200);
    assert_eq!(described["description"], "Back");
    assert_eq!(described["events"], json!(["file.*"]));
    assert_eq!(
        described["retry_policy"],
        json!({"schedule_seconds": [1], "out_of_order_after_hours": 24})
    );
    let empty_description = app
        .patch(&path, &app.admin, json!({"description": ""}))
        .await;
    assert_eq!(empty_description.ok(200)["description"], Value::Null);
}

async fn switching_preset_resets_format_and_signing(app: TestApp) {
    let project = app.project("acme").await;
    let github = app
        .webhook(
            &project,
            "gh",
            json!({"preset": "github", "format": "standard"}),
        )
        .await;
    assert_eq!(github["preset"], Value::Null);
    let path = format!("/v1/webhooks/{}", id_of(&github));

    let connect = app
        .patch(&path, &app.admin, json!({"preset": "connect"}))
        .await;
    let connect = connect.ok(200);
    assert_eq!(connect["preset"], "connect");
    assert_eq!(connect["format"], "connect");
    assert_eq!(connect["signing"], json!({"scheme": "jwt-hs256"}));

    let custom = app
        .webhook(
            &project,
            "custom",
            json!({"format": "custom", "template": {"t": "{{ event.type }}"},
                   "signing": {"scheme": "none"}}),
        )
        .await;
    let path = format!("/v1/webhooks/{}", id_of(&custom));
    let standard = app
        .patch(&path, &app.admin, json!({"preset": "standard"}))
        .await;
    let standard = standard.ok(200);
    assert_eq!(standard["preset"], "standard");
    assert_eq!(standard["format"], "standard");
    assert_eq!(standard["template"], Value::Null);
    assert_eq!(standard["signing"], json!({"scheme": "standard-webhooks"}));

    // A preset and an override in the same PATCH: the override wins, the preset is no longer named.
    let mixed = app
        .patch(
            &path,
            &app.admin,
            json!({"preset": "cloudshare", "format": "raw"}),
        )
        .await;
    let mixed = mixed.ok(200);
    assert_eq!(mixed["preset"], Value::Null);
    assert_eq!(mixed["format"], "raw");
    assert_eq!(mixed["signing"]["header"], "x-cloudshare-signature");

    // Changing only the signing of a preset webhook un-names the preset but keeps its format.
    let hook = app
        .webhook(&project, "ed", json!({"preset": "event-data"}))
        .await;
    let path = format!("/v1/webhooks/{}", id_of(&hook));
    let resigned = app
        .patch(
            &path,
            &app.admin,
            json!({"signing": {"scheme": "secret-header", "header": "X-Token"}}),
        )
        .await;
    let resigned = resigned.ok(200);
    assert_eq!(resigned["preset"], Value::Null);
    assert_eq!(resigned["format"], "event-data");
    assert_eq!(
        resigned["signing"],
        json!({"scheme": "secret-header", "header": "X-Token"})
    );
}

async fn a_rejected_patch_changes_nothing(app: TestApp) {
    let project = app.project("acme").await;
    let other = app.project("other").await;
    app.event_type(&project, "environment.created").await;
    app.webhook(&project, "taken", json!({})).await;
    app.webhook(&other, "elsewhere", json!({})).await;
    let hook = app
        .webhook(
            &project,
            "ops",
            json!({"headers": {"Authorization": "Basic eDp5"}, "events": ["environment.created"]}),
        )
        .await;
    let path = format!("/v1/webhooks/{}", id_of(&hook));
    let before = app.snapshot().await;

    let cases: Vec<(Value, &str)> = vec![
        (json!({"url": "not a url"}), "url"),
        (json!({"name": ""}), "name"),
        (json!({"events": []}), "events"),
        (
            json!({"events": ["environment.created", "nope.nope"]}),
            "events[1]",
        ),
        // The stored Authorization header clashes with connect's signing.
        (json!({"preset": "connect"}), "headers.Authorization"),
        (json!({"preset": "svix"}), "preset"),
        (json!({"format": "xml"}), "format"),
        (json!({"format": "custom"}), "template"),
        (json!({"template": {"a": "{{ event.id }}"}}), "template"),
        (
            json!({"headers": {"webhook-signature": "x"}}),
            "headers.webhook-signature",
        ),
        (json!({"custom_data": 3}), "custom_data"),
        (json!({"timeout_seconds": 0}), "timeout_seconds"),
        (json!({"timeout_seconds": 601}), "timeout_seconds"),
        (
            json!({"retry_policy": {"schedule_seconds": [5, 0]}}),
            "retry_policy.schedule_seconds[1]",
        ),
        (json!({"method": "PUT"}), "method"),
        (json!({"enabled": false}), "enabled"),
        (json!({"project": "other"}), "project"),
        (json!({"secret": "whsec_mine"}), "secret"),
        (json!({"status": "active"}), "status"),
        // A good change alongside a bad one is not applied either.
        (json!({"name": "renamed", "url": "ftp://x"}), "url"),
    ];
    for (patch, field) in cases {
        let reply = app.patch(&path, &app.admin, patch.clone()).await;
        reply.problem(422, Some(field));
    }
    app.patch(&path, &app.admin, json!({"name": "taken"}))
        .await
        .problem(409, Some("name"));
    app.patch(&path, &app.admin, json!({"name": " taken "}))
        .await
        .problem(409, Some("name"));
    assert_eq!(
        app.snapshot().await,
        before,
        "no rejected patch changed anything"
    );

    // A name used in another project is fine; so is connect once the header goes.
    app.patch(&path, &app.admin, json!({"name": "elsewhere"}))
        .await
        .ok(200);
    let connect = app
        .patch(
            &path,
            &app.admin,
            json!({"preset": "connect", "headers": {}}),
        )
        .await;
    assert_eq!(connect.ok(200)["preset"], "connect");
}

async fn disabling_and_enabling_a_webhook_records_which_key_did_it(app: TestApp) {
    let project = app.project("acme").await;
    let hook = app.webhook(&project, "ops", json!({})).await;
    let id = id_of(&hook);
    let key = app.key("project_admin", Some(&project)).await;
    let key_id = my_key_id(&app, &key).await;

    let disabled = app
        .post(&format!("/v1/webhooks/{id}/disable"), &key, json!({}))
        .await;
    let disabled = disabled.ok(200).clone();
    assert_eq!(disabled["status"], "disabled");
    let reason = disabled["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("disabled") && reason.contains(&key_id),
        "{reason}"
    );
    let got = app.get(&format!("/v1/webhooks/{id}"), &app.admin).await;
    assert_eq!(got.ok(200)["status"], "disabled");

    // Disabling again is a no-op that keeps the first reason.
    let again = app
        .post(&format!("/v1/webhooks/{id}/disable"), &app.admin, json!({}))
        .await;
    assert_eq!(again.ok(200)["status_reason"], disabled["status_reason"]);

    // A PATCH does not touch the status.
    let patched = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            &key,
            json!({"name": "ops-2"}),
        )
        .await;
    assert_eq!(patched.ok(200)["status"], "disabled");

    let admin_id = my_key_id(&app, &app.admin).await;
    let enabled = app
        .post(&format!("/v1/webhooks/{id}/enable"), &app.admin, json!({}))
        .await;
    let enabled = enabled.ok(200);
    assert_eq!(enabled["status"], "active");
    let reason = enabled["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("enabled") && reason.contains(&admin_id),
        "{reason}"
    );

    // A webhook created disabled is enabled the same way.
    let created_disabled = app
        .webhook(&project, "later", json!({"enabled": false}))
        .await;
    assert_eq!(created_disabled["status"], "disabled");
    let enabled = app
        .post(
            &format!("/v1/webhooks/{}/enable", id_of(&created_disabled)),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(enabled.ok(200)["status"], "active");

    // Viewers may not change the status.
    let viewer = app.key("project_viewer", Some(&project)).await;
    app.post(&format!("/v1/webhooks/{id}/disable"), &viewer, json!({}))
        .await
        .problem(403, None);
}

async fn webhooks_are_listed_by_status_event_type_and_project(app: TestApp) {
    let acme = app.project("acme").await;
    let other = app.project("other").await;
    for project in [&acme, &other] {
        app.event_type(project, "environment.created").await;
        app.event_type(project, "file.uploaded").await;
    }
    let all = id_of(&app.webhook(&acme, "all", json!({})).await);
    let exact = id_of(
        &app.webhook(&acme, "exact", json!({"events": ["environment.created"]}))
            .await,
    );
    let wildcard = id_of(
        &app.webhook(&acme, "wildcard", json!({"events": ["environment.*"]}))
            .await,
    );
    let files = id_of(
        &app.webhook(&acme, "files", json!({"events": ["file.uploaded"]}))
            .await,
    );
    let disabled = id_of(
        &app.webhook(
            &acme,
            "disabled",
            json!({"events": ["file.*"], "enabled": false}),
        )
        .await,
    );
    let elsewhere = id_of(&app.webhook(&other, "elsewhere", json!({})).await);

    let listed = app.get("/v1/webhooks", &app.admin).await;
    let listed = listed.ok(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 6);
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w.get("secret").is_none()),
        "lists never show secrets"
    );

    let by_status = app.get("/v1/webhooks?status=disabled", &app.admin).await;
    assert_eq!(ids(by_status.ok(200)), BTreeSet::from([disabled.clone()]));
    let active = app.get("/v1/webhooks?status=active", &app.admin).await;
    assert_eq!(ids(active.ok(200)).len(), 5);

    let by_type = app
        .get("/v1/webhooks?event_type=environment.created", &app.admin)
        .await;
    assert_eq!(
        ids(by_type.ok(200)),
        BTreeSet::from([
            all.clone(),
            exact.clone(),
            wildcard.clone(),
            elsewhere.clone()
        ])
    );
    let by_file = app
        .get(
            "/v1/webhooks?event_type=file.uploaded&project=acme",
            &app.admin,
        )
        .await;
    assert_eq!(
        ids(by_file.ok(200)),
        BTreeSet::from([all.clone(), files.clone(), disabled.clone()])
    );
    let combined = app
        .get(
            "/v1/webhooks?event_type=file.uploaded&status=active&project=acme",
            &app.admin,
        )
        .await;
    assert_eq!(ids(combined.ok(200)), BTreeSet::from([all.clone(), files]));
    // An event type that does not exist still matches the catch-all webhooks.
    let unknown = app
        .get("/v1/webhooks?event_type=never.seen", &app.admin)
        .await;
    assert_eq!(
        ids(unknown.ok(200)),
        BTreeSet::from([all, elsewhere.clone()])
    );

    let by_name = app.get("/v1/webhooks?project=other", &app.admin).await;
    assert_eq!(ids(by_name.ok(200)), BTreeSet::from([elsewhere.clone()]));
    let by_id = app
        .get(&format!("/v1/webhooks?project={other}"), &app.admin)
        .await;
    assert_eq!(ids(by_id.ok(200)), BTreeSet::from([elsewhere]));
    let acme_only = app.get("/v1/webhooks?project=acme", &app.admin).await;
    assert_eq!(ids(acme_only.ok(200)).len(), 5);

    app.get("/v1/webhooks?project=nope", &app.admin)
        .await
        .problem(404, None);
    app.get("/v1/webhooks?status=paused", &app.admin)
        .await
        .problem(400, Some("status"));
    app.get("/v1/webhooks?event_type=a..b", &app.admin)
        .await
        .problem(400, Some("event_type"));
    app.get("/v1/webhooks?colour=red", &app.admin)
        .await
        .problem(400, Some("colour"));
    app.get("/v1/webhooks?limit=251", &app.admin)
        .await
        .problem(400, Some("limit"));
    app.get("/v1/webhooks?cursor=nope", &app.admin)
        .await
        .problem(400, Some("cursor"));
}

async fn webhooks_are_listed_one_page_at_a_time_each_exactly_once(app: TestApp) {
    let project = app.project("acme").await;
    let mut created = BTreeSet::new();
    for name in ["one", "two", "three"] {
        created.insert(id_of(&app.webhook(&project, name, json!({})).await));
    }
    let everything = app.get("/v1/webhooks", &app.admin).await;
    let order: Vec<String> = everything.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();

    let first = app.get("/v1/webhooks?limit=2", &app.admin).await;
    let first = first.ok(200).clone();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/v1/webhooks?limit=2&cursor={cursor}"), &app.admin)
        .await;
    let second = second.ok(200);
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let walked: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(id_of)
        .collect();
    assert_eq!(walked, order);
    assert_eq!(walked.into_iter().collect::<BTreeSet<_>>(), created);

    // Filtered lists page the same way.
    let mut walked = Vec::new();
    let mut path = "/v1/webhooks?event_type=any.thing&limit=1".to_owned();
    loop {
        let page = app.get(&path, &app.admin).await;
        let page = page.ok(200);
        walked.extend(page["data"].as_array().unwrap().iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/webhooks?event_type=any.thing&limit=1&cursor={cursor}");
            }
            None => break,
        }
        assert!(walked.len() < 10, "the walk ends");
    }
    assert_eq!(walked, order);
}

async fn rotating_the_secret_replaces_it(app: TestApp) {
    let project = app.project("acme").await;
    let hook = app.webhook(&project, "ops", json!({})).await;
    let id = id_of(&hook);
    let old = hook["secret"].as_str().unwrap();

    let shown = app
        .get(&format!("/v1/webhooks/{id}/secret"), &app.admin)
        .await;
    assert_eq!(shown.ok(200)["secret"], old);

    let rotated = app
        .post(
            &format!("/v1/webhooks/{id}/secret/rotate"),
            &app.admin,
            json!({}),
        )
        .await;
    let new = rotated.ok(200)["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_"), "{new}");
    assert_ne!(new, old);

    let shown = app
        .get(&format!("/v1/webhooks/{id}/secret"), &app.admin)
        .await;
    assert_eq!(shown.ok(200)["secret"], new.as_str());
    let got = app.get(&format!("/v1/webhooks/{id}"), &app.admin).await;
    let got = got.ok(200);
    assert_eq!(got["secret"], new.as_str());
    assert_eq!(got["status"], "active", "rotating leaves the rest alone");

    // A project admin may rotate too.
    let key = app.key("project_admin", Some(&project)).await;
    let again = app
        .post(&format!("/v1/webhooks/{id}/secret/rotate"), &key, json!({}))
        .await;
    assert_ne!(again.ok(200)["secret"], new.as_str());
}

async fn a_deleted_webhook_is_gone(app: TestApp) {
    let project = app.project("acme").await;
    let hook = app.webhook(&project, "ops", json!({})).await;
    let kept = app.webhook(&project, "kept", json!({})).await;
    let id = id_of(&hook);

    let deleted = app.delete(&format!("/v1/webhooks/{id}"), &app.admin).await;
    deleted.ok(204);
    assert_eq!(deleted.body, Value::Null);

    app.get(&format!("/v1/webhooks/{id}"), &app.admin)
        .await
        .problem(404, None);
    app.delete(&format!("/v1/webhooks/{id}"), &app.admin)
        .await
        .problem(404, None);
    app.patch(
        &format!("/v1/webhooks/{id}"),
        &app.admin,
        json!({"name": "x"}),
    )
    .await
    .problem(404, None);
    let listed = app.get("/v1/webhooks", &app.admin).await;
    assert_eq!(ids(listed.ok(200)), BTreeSet::from([id_of(&kept)]));

    // Its name can be used again.
    app.webhook(&project, "ops", json!({})).await;
}

async fn ids_that_are_not_webhook_ids_are_not_found(app: TestApp) {
    let project = app.project("acme").await;
    app.webhook(&project, "ops", json!({})).await;
    let before = app.snapshot().await;
    for id in [
        "nope",
        project.as_str(),
        "wh_",
        "wh_not-a-ulid",
        "WH_01JD3ZZZZZZZZZZZZZZZZZZZZZ",
        "ops",
        NO_SUCH_WEBHOOK,
    ] {
        let path = format!("/v1/webhooks/{id}");
        let reply = app.get(&path, &app.admin).await;
        assert_eq!(
            reply.problem(404, None)["type"],
            "/problems/not-found",
            "{id}"
        );
        app.patch(&path, &app.admin, json!({"name": "x"}))
            .await
            .problem(404, None);
        app.delete(&path, &app.admin).await.problem(404, None);
        app.post(&format!("{path}/enable"), &app.admin, json!({}))
            .await
            .problem(404, None);
        app.post(&format!("{path}/disable"), &app.admin, json!({}))
            .await
            .problem(404, None);
        app.get(&format!("{path}/secret"), &app.admin)
            .await
            .problem(404, None);
        app.post(&format!("{path}/secret/rotate"), &app.admin, json!({}))
            .await
            .problem(404, None);
    }
    assert_eq!(app.snapshot().await, before);
}

async fn signing_headers_may_not_use_herald_s_reserved_prefix(app: TestApp) {
    let project = app.project("acme").await;
    let hook = app.webhook(&project, "ops", json!({})).await;
    let path = format!("/v1/webhooks/{}", id_of(&hook));
    let before = app.snapshot().await;

    for signing in [
        json!({"scheme": "secret-header", "header": "X-Herald-Event"}),
        json!({"scheme": "secret-header", "header": "x-herald-secret"}),
        json!({"scheme": "hmac-sha256", "header": "X-Herald-Signature", "encoding": "hex"}),
        json!({"scheme": "hmac-sha256", "header": "X-HERALD-ATTEMPT", "encoding": "base64"}),
    ] {
        let created = app
            .post(
                "/v1/webhooks",
                &app.admin,
                json!({"project": project, "name": "h", "url": "https://example.com/hook",
                       "signing": signing}),
            )
            .await;
        let detail = created.problem(422, Some("signing.header"))["detail"]
            .as_str()
            .unwrap();
        assert!(detail.contains("X-Herald-"), "{detail}");
        app.patch(&path, &app.admin, json!({ "signing": signing }))
            .await
            .problem(422, Some("signing.header"));
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "no reserved header was stored"
    );

    // A header that merely starts alike is the user's to choose.
    let resigned = app
        .patch(
            &path,
            &app.admin,
            json!({"signing": {"scheme": "secret-header", "header": "X-Heraldry"}}),
        )
        .await;
    assert_eq!(resigned.ok(200)["signing"]["header"], "X-Heraldry");
}

async fn archiving_an_event_type_does_not_freeze_the_webhooks_that_name_it(app: TestApp) {
    let project = app.project("acme").await;
    for name in ["env.created", "env.deleted", "env.retired"] {
        app.event_type(&project, name).await;
    }
    let types = "/v1/projects/acme/event-types";
    app.patch(
        &format!("{types}/env.retired"),
        &app.admin,
        json!({"archived": true}),
    )
    .await
    .ok(200);
    let hook = app
        .webhook(&project, "ops", json!({"events": ["env.created", "env.*"]}))
        .await;
    let path = format!("/v1/webhooks/{}", id_of(&hook));
    app.patch(
        &format!("{types}/env.created"),
        &app.admin,
        json!({"archived": true}),
    )
    .await
    .ok(200);

    // Names already in the filter are kept as they are; only new ones are checked.
    let renamed = app
        .patch(&path, &app.admin, json!({"name": "renamed"}))
        .await;
    let renamed = renamed.ok(200);
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["events"], json!(["env.created", "env.*"]));
    let added = app
        .patch(
            &path,
            &app.admin,
            json!({"events": ["env.deleted", "env.created"]}),
        )
        .await;
    assert_eq!(
        added.ok(200)["events"],
        json!(["env.deleted", "env.created"])
    );

    let before = app.snapshot().await;
    for (events, field) in [
        (json!(["env.created", "env.retired"]), "events[1]"),
        (json!(["env.created", "no.such.type"]), "events[1]"),
    ] {
        let reply = app
            .patch(&path, &app.admin, json!({ "events": events }))
            .await;
        reply.problem(422, Some(field));
    }
    // A create still checks every name.
    app.post(
        "/v1/webhooks",
        &app.admin,
        json!({"project": project, "name": "new", "url": "https://example.com/hook",
               "events": ["env.created"]}),
    )
    .await
    .problem(422, Some("events[0]"));
    assert_eq!(
        app.snapshot().await,
        before,
        "rejected changes change nothing"
    );

    // Once dropped, an archived name cannot come back.
    app.patch(&path, &app.admin, json!({"events": ["env.deleted"]}))
        .await
        .ok(200);
    app.patch(
        &path,
        &app.admin,
        json!({"events": ["env.deleted", "env.created"]}),
    )
    .await
    .problem(422, Some("events[1]"));
}

async fn null_is_refused_for_webhook_fields_that_cannot_be_cleared(app: TestApp) {
    let project = app.project("acme").await;
    let hook = app
        .webhook(
            &project,
            "ops",
            json!({"format": "custom", "template": {"t": "{{ event.type }}"}}),
        )
        .await;
    let path = format!("/v1/webhooks/{}", id_of(&hook));
    let before = app.snapshot().await;

    for field in [
        "name",
        "url",
        "method",
        "headers",
        "preset",
        "format",
        "template",
        "signing",
        "timeout_seconds",
    ] {
        let reply = app.patch(&path, &app.admin, json!({ field: null })).await;
        let detail = reply.problem(422, Some(field))["detail"].as_str().unwrap();
        assert!(detail.contains("may not be null"), "{detail}");
        // Alongside a good change too.
        app.patch(&path, &app.admin, json!({"description": "d", field: null}))
            .await
            .problem(422, Some(field));
    }
    assert_eq!(app.snapshot().await, before, "no null changed anything");

    // The fields that can be cleared still can.
    let cleared = app
        .patch(
            &path,
            &app.admin,
            json!({"description": null, "events": null, "custom_data": null, "retry_policy": null}),
        )
        .await;
    assert_eq!(cleared.ok(200)["name"], "ops");
}

async fn url_passwords_are_shown_only_to_roles_that_may_see_secrets(app: TestApp) {
    let project = app.project("acme").await;
    let full = "https://user:pa55@example.com/x?q=1";
    let redacted = "https://user:redacted@example.com/x?q=1";
    let hook = app.webhook(&project, "ops", json!({ "url": full })).await;
    assert_eq!(hook["url"], full, "the admin who created it sees it");
    let plain = app
        .webhook(
            &project,
            "plain",
            json!({"url": "https://user@example.com/y"}),
        )
        .await;
    let path = format!("/v1/webhooks/{}", id_of(&hook));

    let viewer = app.key("project_viewer", Some(&project)).await;
    let seen = app.get(&path, &viewer).await;
    let seen = seen.ok(200);
    assert_eq!(seen["url"], redacted);
    assert_eq!(seen.get("secret"), None);
    for key in [&app.admin, &viewer] {
        let listed = app.get("/v1/webhooks", key).await;
        let listed = listed.ok(200)["data"].as_array().unwrap().clone();
        let urls: BTreeSet<&str> = listed.iter().map(|w| w["url"].as_str().unwrap()).collect();
        assert_eq!(
            urls,
            BTreeSet::from([redacted, "https://user@example.com/y"]),
            "lists never show the password"
        );
    }
    assert_eq!(
        app.get(&format!("/v1/webhooks/{}", id_of(&plain)), &viewer)
            .await
            .ok(200)["url"],
        "https://user@example.com/y",
        "a URL without a password is shown as it is"
    );

    let project_admin = app.key("project_admin", Some(&project)).await;
    for key in [&app.admin, &project_admin] {
        assert_eq!(app.get(&path, key).await.ok(200)["url"], full);
    }
    let patched = app
        .patch(&path, &project_admin, json!({"name": "renamed"}))
        .await;
    assert_eq!(patched.ok(200)["url"], full, "a PATCH keeps the password");
}

async fn attempts_do_not_show_the_url_password(app: TestApp) {
    let project = app.project("acme").await;
    // Nothing listens on port 9: the attempt fails at once, and is recorded.
    let hook = app
        .webhook(
            &project,
            "ops",
            json!({"url": "http://user:pa55@127.0.0.1:9/hook"}),
        )
        .await;
    let id = id_of(&hook);
    let attempt = app
        .post(&format!("/v1/webhooks/{id}/trigger"), &app.admin, json!({}))
        .await;
    let attempt = attempt.ok(200).clone();
    assert_eq!(
        attempt["request"]["url"],
        "http://user:redacted@127.0.0.1:9/hook"
    );
    let viewer = app.key("project_viewer", Some(&project)).await;
    let listed = app
        .get(&format!("/v1/webhooks/{id}/attempts"), &viewer)
        .await;
    let listed = listed.ok(200);
    assert_eq!(listed["data"][0]["id"], attempt["id"]);
    assert_eq!(
        listed["data"][0]["request"]["url"],
        "http://user:redacted@127.0.0.1:9/hook"
    );
}

#[tokio::test]
async fn a_server_that_refuses_plain_http_accepts_only_https_targets() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            allow_http: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let project = app.project("acme").await;
    let before = app.snapshot().await;
    let refused = app
        .post(
            "/v1/webhooks",
            &app.admin,
            json!({"project": project, "name": "h", "url": "http://example.com/hook"}),
        )
        .await;
    let detail = refused.problem(422, Some("url"))["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("https"), "{detail}");
    assert_eq!(app.snapshot().await, before);

    let created = app
        .post(
            "/v1/webhooks",
            &app.admin,
            json!({"project": project, "name": "h", "url": "https://example.com/hook"}),
        )
        .await;
    let created = created.ok(201).clone();
    assert_eq!(created["url"], "https://example.com/hook");

    let path = format!("/v1/webhooks/{}", id_of(&created));
    let before = app.snapshot().await;
    app.patch(&path, &app.admin, json!({"url": "http://example.com/hook"}))
        .await
        .problem(422, Some("url"));
    assert_eq!(app.snapshot().await, before);
    app.patch(&path, &app.admin, json!({"url": "https://example.com/v2"}))
        .await
        .ok(200);
}

async fn custom_header_values_are_shown_only_to_roles_that_may_see_secrets(app: TestApp) {
    let project = app.project("acme").await;
    let receiver = crate::receiver::Receiver::start().await;
    let hook = app
        .webhook(
            &project,
            "ops",
            json!({"url": receiver.url, "headers": {"X-Api-Key": "receiver-password", "X-Tenant": "t-1"}}),
        )
        .await;
    let id = id_of(&hook);
    assert_eq!(hook["headers"]["X-Api-Key"], "receiver-password");
    let attempt = app
        .post(&format!("/v1/webhooks/{id}/trigger"), &app.admin, json!({}))
        .await;
    assert_eq!(
        attempt.ok(200)["request"]["headers"]["x-api-key"],
        "receiver-password"
    );
    assert_eq!(
        receiver.received()[0].header("x-api-key"),
        Some("receiver-password")
    );

    let viewer = app.key("project_viewer", Some(&project)).await;
    let project_admin = app.key("project_admin", Some(&project)).await;
    let seen = app.get(&format!("/v1/webhooks/{id}"), &viewer).await;
    assert_eq!(
        seen.ok(200)["headers"],
        json!({"X-Api-Key": "redacted", "X-Tenant": "redacted"}),
        "names shown, values not"
    );
    for key in [&app.admin, &viewer] {
        let listed = app.get("/v1/webhooks", key).await;
        assert_eq!(
            listed.ok(200)["data"][0]["headers"]["X-Api-Key"],
            "redacted"
        );
    }
    let shown = app.get(&format!("/v1/webhooks/{id}"), &project_admin).await;
    assert_eq!(shown.ok(200)["headers"]["X-Api-Key"], "receiver-password");

    // The attempts' recorded request headers follow the same rule; Herald's own stay readable.
    let as_viewer = app
        .get(&format!("/v1/webhooks/{id}/attempts"), &viewer)
        .await;
    let headers = as_viewer.ok(200)["data"][0]["request"]["headers"].clone();
    assert_eq!(headers["x-api-key"], "<redacted>", "{headers:#}");
    assert_eq!(headers["x-tenant"], "<redacted>");
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["webhook-id"].as_str().unwrap().starts_with("dlv_"),
        "{headers:#}"
    );
    let attempt_id = as_viewer.ok(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = app
        .get(&format!("/v1/attempts/{attempt_id}"), &viewer)
        .await;
    assert_eq!(one.ok(200)["request"]["headers"]["x-api-key"], "<redacted>");
    let as_admin = app
        .get(&format!("/v1/webhooks/{id}/attempts"), &project_admin)
        .await;
    assert_eq!(
        as_admin.ok(200)["data"][0]["request"]["headers"]["x-api-key"],
        "receiver-password"
    );
}

async fn a_secret_of_the_user_s_choosing_is_checked_for_its_scheme(app: TestApp) {
    let project = app.project("acme").await;
    let before = app.snapshot().await;
    let cases = [
        (
            json!({"preset": "event-data", "secret": "short"}),
            "8 to 256",
        ),
        (
            json!({"preset": "event-data", "secret": "has a space!"}),
            "8 to 256",
        ),
        (json!({"preset": "connect", "secret": 7}), ""),
        (
            json!({"preset": "standard", "secret": "super-secret-key"}),
            "whsec_",
        ),
        (
            json!({"preset": "standard", "secret": "whsec_c2hvcnQ="}),
            "24 to 64",
        ),
        (
            json!({"preset": "cloudshare", "secret": "super-secret-key"}),
            "account-level",
        ),
    ];
    for (extra, says) in cases {
        let mut body = json!({"project": project, "name": "h", "url": "https://example.com/hook"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let reply = app.post("/v1/webhooks", &app.admin, body).await;
        let problem = reply.problem(422, Some("secret"));
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{problem:#}"
        );
    }
    assert_eq!(app.snapshot().await, before, "nothing was created");

    // Good ones, on create, edit and rotation.
    let standard = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let hook = app
        .webhook(
            &project,
            "std",
            json!({"url": "https://example.com/a", "secret": standard}),
        )
        .await;
    assert_eq!(hook["secret"], standard);
    let id = id_of(&hook);
    let hook = app
        .webhook(
            &project,
            "cases",
            json!({"url": "https://example.com/b", "preset": "event-data", "secret": "super-secret-key"}),
        )
        .await;
    let cases = id_of(&hook);
    let edited = app
        .patch(
            &format!("/v1/webhooks/{cases}"),
            &app.admin,
            json!({"secret": "another-secret"}),
        )
        .await;
    assert_eq!(edited.ok(200)["secret"], "another-secret");
    let read = app
        .get(&format!("/v1/webhooks/{cases}/secret"), &app.admin)
        .await;
    assert_eq!(
        (
            read.ok(200)["secret"].clone(),
            read.ok(200)["previous_secret_expires_at"].clone()
        ),
        (json!("another-secret"), Value::Null),
        "an edit switches at once"
    );
    let rotated = app
        .post(
            &format!("/v1/webhooks/{cases}/secret/rotate"),
            &app.admin,
            json!({"secret": "third-secret-value"}),
        )
        .await;
    assert_eq!(rotated.ok(200)["secret"], "third-secret-value");
    assert_eq!(rotated.ok(200)["previous_secret_expires_at"], Value::Null);

    // Bad ones on edit and rotation change nothing.
    let viewer = app.key("project_viewer", Some(&project)).await;
    let before = app.snapshot().await;
    app.patch(
        &format!("/v1/webhooks/{cases}"),
        &app.admin,
        json!({"secret": "tiny"}),
    )
    .await
    .problem(422, Some("secret"));
    app.patch(
        &format!("/v1/webhooks/{cases}"),
        &app.admin,
        json!({"secret": null}),
    )
    .await
    .problem(422, Some("secret"));
    app.post(
        &format!("/v1/webhooks/{id}/secret/rotate"),
        &app.admin,
        json!({"secret": "super-secret-key"}),
    )
    .await
    .problem(422, Some("secret"));
    // A webhook whose secret only fits its old scheme cannot become Standard Webhooks without
    // a secret that fits.
    app.patch(
        &format!("/v1/webhooks/{cases}"),
        &app.admin,
        json!({"preset": "standard"}),
    )
    .await
    .problem(422, Some("secret"));
    app.patch(
        &format!("/v1/webhooks/{cases}"),
        &viewer,
        json!({"secret": "viewer-secret"}),
    )
    .await
    .problem(403, None);
    assert_eq!(app.snapshot().await, before, "nothing changed");
    let switched = app
        .patch(
            &format!("/v1/webhooks/{cases}"),
            &app.admin,
            json!({"preset": "standard", "secret": standard}),
        )
        .await;
    assert_eq!(switched.ok(200)["secret"], standard);
}

async fn only_admins_create_or_manage_webhooks_signed_with_the_account_secret(app: TestApp) {
    let project = app.project("acme").await;
    let receiver = crate::receiver::Receiver::start().await;
    let project_admin = app.key("project_admin", Some(&project)).await;
    let own = app
        .post(
            "/v1/webhooks",
            &project_admin,
            json!({"name": "mine", "url": receiver.url}),
        )
        .await;
    let own = id_of(own.ok(201)).to_owned();
    let account_signing = json!({"scheme": "hmac-sha256", "header": "X-Sig",
                                 "encoding": "base64", "secret": "account"});
    let before = app.snapshot().await;
    // Whoever chose where such a webhook sends, or what (Trigger now takes any data), could
    // have the installation's secret sign it and replay it to another tenant's receiver.
    for body in [
        json!({"name": "cs", "url": receiver.url, "preset": "cloudshare"}),
        json!({"name": "cs", "url": receiver.url, "signing": account_signing}),
    ] {
        app.post("/v1/webhooks", &project_admin, body)
            .await
            .problem(403, None);
    }
    app.patch(
        &format!("/v1/webhooks/{own}"),
        &project_admin,
        json!({"preset": "cloudshare"}),
    )
    .await
    .problem(403, None);
    let admins = app
        .webhook(
            &project,
            "tray.io",
            json!({"url": receiver.url, "preset": "cloudshare"}),
        )
        .await;
    let cs = id_of(&admins).to_owned();
    let before_admins = app.snapshot().await;
    assert_ne!(before, before_admins);
    let path = |tail: &str| format!("/v1/webhooks/{cs}{tail}");
    app.patch(
        &path(""),
        &project_admin,
        json!({"url": "http://127.0.0.1:9/mine"}),
    )
    .await
    .problem(403, None);
    for tail in ["/trigger", "/validate", "/disable", "/enable"] {
        app.post(&path(tail), &project_admin, json!({}))
            .await
            .problem(403, None);
    }
    app.delete(&path(""), &project_admin)
        .await
        .problem(403, None);
    assert_eq!(app.snapshot().await, before_admins, "nothing changed");
    assert!(receiver.received().is_empty(), "nothing was sent");
    // They still read it (without the secret), as viewers of their project do.
    let seen = app.get(&path(""), &project_admin).await;
    assert_eq!(seen.ok(200)["preset"], "cloudshare");
    assert!(seen.ok(200).get("secret").is_none());
    // Admins manage it.
    let triggered = app.post(&path("/trigger"), &app.admin, json!({})).await;
    assert_eq!(triggered.ok(200)["succeeded"], true);
}

on_both_stores!(
    a_webhook_is_created_with_every_field_and_read_back_unchanged,
    a_webhook_given_only_a_name_and_url_gets_the_defaults,
    each_preset_sets_its_format_and_signing,
    an_explicit_format_or_signing_overrides_the_preset_which_is_then_reported_as_none,
    a_custom_format_carries_its_template,
    invalid_webhooks_are_refused_naming_the_field_and_change_nothing,
    webhook_names_are_unique_within_a_project_only,
    an_admin_must_name_an_existing_project_for_a_new_webhook,
    patching_a_webhook_changes_only_the_fields_sent,
    switching_preset_resets_format_and_signing,
    a_rejected_patch_changes_nothing,
    disabling_and_enabling_a_webhook_records_which_key_did_it,
    webhooks_are_listed_by_status_event_type_and_project,
    webhooks_are_listed_one_page_at_a_time_each_exactly_once,
    rotating_the_secret_replaces_it,
    a_deleted_webhook_is_gone,
    ids_that_are_not_webhook_ids_are_not_found,
    signing_headers_may_not_use_herald_s_reserved_prefix,
    archiving_an_event_type_does_not_freeze_the_webhooks_that_name_it,
    null_is_refused_for_webhook_fields_that_cannot_be_cleared,
    url_passwords_are_shown_only_to_roles_that_may_see_secrets,
    attempts_do_not_show_the_url_password,
    custom_header_values_are_shown_only_to_roles_that_may_see_secrets,
    a_secret_of_the_user_s_choosing_is_checked_for_its_scheme,
    only_admins_create_or_manage_webhooks_signed_with_the_account_secret,
);
