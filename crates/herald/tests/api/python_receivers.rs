//! Receivers nobody here wrote (issue 4): Herald's real deliveries, verified by the receiver
//! libraries and the receiver code the seed platforms' documents give, in Python.
//!
//! Two ways a delivery reaches a receiver, both real: Herald sends to the case-management
//! document's Flask app, run as a server on 127.0.0.1; or Herald sends to the in-test
//! [`Receiver`], which hands the exact headers and body it got to a Python receiver through
//! `tests/python/receive.py` (so a test can also tamper with them and see the receiver refuse).
//!
//! The Python comes from the virtualenv `scripts/test` makes (`.venv`, with the libraries pinned in
//! `tests/python/requirements.txt`) and names in `HERALD_TEST_PYTHON`. Without it these tests say
//! so and pass, unless `HERALD_TEST_PYTHON_REQUIRED=required` (as `.ci/run` sets), when they fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_core::time::Timestamp;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, on_both_stores, spawn_app};
use crate::receiver::{Received, Receiver};

const WAIT: Duration = Duration::from_secs(15);
const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// The first bytes of every JWT Herald signs: `{"typ":"JWT","alg":"HS256"}`, as CloudBlue's
/// example token starts (`eyJ0eXAiO…`).
const CLOUDBLUE_JWT_HEADER: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9";

/// The CloudBlue body's keys, in the document's order.
const CONNECT_KEYS: [&str; 11] = [
    "webhook_id",
    "webhook_name",
    "object_class",
    "account_id",
    "product_id",
    "api_url",
    "triggered_at",
    "last_success_at",
    "last_failure_at",
    "processing_timeout",
    "data",
];

/// The virtualenv's Python, or `None` (with a note) when the tests are to be skipped.
pub(crate) fn python() -> Option<PathBuf> {
    match std::env::var_os("HERALD_TEST_PYTHON").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.exists(),
                "HERALD_TEST_PYTHON={} does not exist",
                path.display()
            );
            Some(path)
        }
        None => {
            assert_ne!(
                std::env::var("HERALD_TEST_PYTHON_REQUIRED").as_deref(),
                Ok("required"),
                "HERALD_TEST_PYTHON_REQUIRED=required, but HERALD_TEST_PYTHON is not set: \
                 run the suite with scripts/test, which makes the virtualenv"
            );
            eprintln!(
                "note: HERALD_TEST_PYTHON is not set: the Python receiver test is SKIPPED \
                 (scripts/test sets it up)"
            );
            None
        }
    }
}

/// A request as a receiver gets it: header names in lower case, the body byte for byte.
#[derive(Clone, Debug)]
struct Request {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl From<&Received> for Request {
    fn from(r: &Received) -> Self {
        Self {
            headers: r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: r.body.to_vec(),
        }
    }
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The same request with `from` replaced by `to` in the body (which must contain it once).
    fn tampered_body(&self, from: &str, to: &str) -> Self {
        let body = String::from_utf8(self.body.clone()).unwrap();
        assert_eq!(body.matches(from).count(), 1, "{from:?} once in {body}");
        Self {
            headers: self.headers.clone(),
            body: body.replace(from, to).into_bytes(),
        }
    }

    /// The same request with one header's value replaced.
    fn with_header(&self, name: &str, value: &str) -> Self {
        let mut out = self.clone();
        for (k, v) in &mut out.headers {
            if k.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
            }
        }
        out
    }
}

/// What a Python receiver made of a request.
#[derive(Debug)]
struct Verdict {
    valid: bool,
    payload: Value,
    error: String,
}

/// Hands `request` to `tests/python/<receiver>_receiver.py` with `secret`, its clock moved on by
/// `clock_offset` seconds.
async fn receive(
    python: &Path,
    receiver: &str,
    secret: &str,
    request: &Request,
    clock_offset: i64,
) -> Verdict {
    let hex: String = request.body.iter().map(|b| format!("{b:02x}")).collect();
    let input = json!({"headers": request.headers, "body_hex": hex}).to_string();
    let mut command = Command::new(python);
    command
        .arg(format!("{PYTHON_DIR}/receive.py"))
        .args([receiver, secret])
        .arg(format!("--clock-offset={clock_offset}"))
        .current_dir(PYTHON_DIR)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let receiver = receiver.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("the virtualenv's Python starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "receive.py {receiver} failed: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("receive.py {receiver} printed {stdout:?}: {e}"));
    Verdict {
        valid: line["valid"] == true,
        payload: line["payload"].clone(),
        error: line["error"].as_str().unwrap_or_default().to_owned(),
    }
}

#[track_caller]
fn accepted(v: Verdict) -> Value {
    assert!(v.valid, "the receiver refused: {}", v.error);
    v.payload
}

#[track_caller]
fn refused(v: Verdict) -> String {
    assert!(!v.valid, "the receiver accepted: {}", v.payload);
    v.error
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn timestamp(v: &Value) -> Timestamp {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}"))
}

fn id_of(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

async fn publish(app: &TestApp, project: &str, body: Value) {
    app.post(&format!("/v1/projects/{project}/events"), &app.admin, body)
        .await
        .ok(202);
}

/// A project with one event type, and a receiver.
async fn setup(app: &TestApp, project: &str, event_type: &str) -> (String, Receiver) {
    let p = app.project(project).await;
    app.event_type(&p, event_type).await;
    (p, Receiver::start().await)
}

async fn rotate(app: &TestApp, hook: &str, body: Option<Value>) -> Value {
    app.call(
        reqwest::Method::POST,
        &format!("/v1/webhooks/{hook}/secret/rotate"),
        Some(&app.admin),
        body.as_ref(),
    )
    .await
    .ok(200)
    .clone()
}

// --- One preset each, as its platform's document shows it, verified by its receiver. ---

#[tokio::test]
async fn the_standard_preset_is_verified_by_the_standardwebhooks_package() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (p, receiver) = setup(&app, "std", "order.paid").await;
    let hook = app
        .webhook(
            &p,
            "orders",
            json!({"url": receiver.url, "preset": "standard"}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap();
    publish(
        &app,
        &p,
        json!({"type": "order.paid", "data": {"order": "o-1", "total": 12}}),
    )
    .await;

    let got = Request::from(&receiver.wait_for(1, WAIT).await[0]);
    let body = got.json();
    assert_eq!(keys(&body), ["type", "timestamp", "data"]);
    assert_eq!(body["type"], "order.paid");
    assert_eq!(body["data"], json!({"order": "o-1", "total": 12}));
    timestamp(&body["timestamp"]);
    assert!(got.header("webhook-id").starts_with("dlv_"));
    assert!(got.header("webhook-signature").starts_with("v1,"));

    // `Webhook(secret).verify(body, headers)` returns the parsed payload.
    let payload = accepted(receive(&python, "standard_webhooks", secret, &got, 0).await);
    assert_eq!(payload, body);

    let tampered = got.tampered_body("\"total\":12", "\"total\":1200");
    let error = refused(receive(&python, "standard_webhooks", secret, &tampered, 0).await);
    assert!(error.contains("No matching signature"), "{error}");
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    refused(receive(&python, "standard_webhooks", other, &got, 0).await);
    // Replayed too late, the timestamp gives it away.
    let error = refused(receive(&python, "standard_webhooks", secret, &got, 600).await);
    assert!(error.contains("too old"), "{error}");
}

#[tokio::test]
async fn the_cloudshare_preset_is_signed_with_the_account_secret_as_document_000_says() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (p, receiver) = setup(&app, "training", "environment.suspended").await;
    let hook = app
        .webhook(
            &p,
            "tray.io",
            json!({"url": receiver.url, "preset": "cloudshare"}),
        )
        .await;
    let account = app.get("/v1/account/secret", &app.admin).await;
    let account = account.ok(200)["secret"].as_str().unwrap().to_owned();
    publish(
        &app,
        &p,
        json!({
            "type": "environment.suspended",
            "data": {"environmentId": "env-1", "environmentName": "Demo", "ownerEmail": "o@example.com"},
            "actor": {"id": "u-42", "email": "pm@example.com"},
        }),
    )
    .await;

    let got = Request::from(&receiver.wait_for(1, WAIT).await[0]);
    let body = got.json();
    assert_eq!(
        keys(&body),
        [
            "Event",
            "CreatedAt",
            "CreatedById",
            "CreatedByEmail",
            "Attempt",
            "Payload"
        ]
    );
    assert_eq!(body["Event"], "environment.suspended");
    assert_eq!(
        (
            &body["CreatedById"],
            &body["CreatedByEmail"],
            &body["Attempt"]
        ),
        (&json!("u-42"), &json!("pm@example.com"), &json!(1))
    );
    assert_eq!(body["Payload"]["environmentId"], "env-1");
    timestamp(&body["CreatedAt"]);

    let payload = accepted(receive(&python, "cloudshare", &account, &got, 0).await);
    assert_eq!(payload, body);
    refused(
        receive(
            &python,
            "cloudshare",
            &account,
            &got.tampered_body("env-1", "env-2"),
            0,
        )
        .await,
    );
    // The secret the webhook shows — where a CloudShare user copies it from — is the one that
    // signs: the account's.
    let id = hook["id"].as_str().unwrap();
    let shown = hook["secret"].as_str().unwrap().to_owned();
    assert_eq!(shown, account, "the create answer shows the account secret");
    let read = app
        .get(&format!("/v1/webhooks/{id}/secret"), &app.admin)
        .await;
    assert_eq!(read.ok(200)["secret"], account.as_str());
    assert_eq!(read.ok(200)["source"], "account");
    accepted(receive(&python, "cloudshare", &shown, &got, 0).await);
    let got_view = app.get(&format!("/v1/webhooks/{id}"), &app.admin).await;
    assert_eq!(got_view.ok(200)["secret"], account.as_str());

    // "The secret key cannot be changed or regenerated" on the webhook.
    let before = app.snapshot().await;
    let rotate = app
        .post(
            &format!("/v1/webhooks/{id}/secret/rotate"),
            &app.admin,
            json!({}),
        )
        .await;
    let problem = rotate.problem(409, None);
    assert_eq!(problem["type"], "/problems/secret-not-rotatable");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/account/secret/rotate"),
        "{problem}"
    );
    app.patch(
        &format!("/v1/webhooks/{id}"),
        &app.admin,
        json!({"secret": "super-secret-key"}),
    )
    .await
    .problem(422, Some("secret"));
    assert_eq!(app.snapshot().await, before, "nothing changed");

    // The account secret signs every project's cloudshare webhooks: a project admin neither
    // sees it on the webhook nor reads it.
    let project_admin = app.key("project_admin", Some(&p)).await;
    let seen = app.get(&format!("/v1/webhooks/{id}"), &project_admin).await;
    assert!(seen.ok(200).get("secret").is_none(), "{:#}", seen.body);
    app.get(&format!("/v1/webhooks/{id}/secret"), &project_admin)
        .await
        .problem(403, None);

    // Rotating the account secret is the admin's: the webhook shows the new one, and the next
    // delivery is signed with it alone.
    let rotated = app
        .post("/v1/account/secret/rotate", &app.admin, json!({}))
        .await;
    let new = rotated.ok(200)["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, account);
    let read = app
        .get(&format!("/v1/webhooks/{id}/secret"), &app.admin)
        .await;
    assert_eq!(read.ok(200)["secret"], new.as_str());
    app.post("/v1/account/secret/rotate", &project_admin, json!({}))
        .await
        .problem(403, None);
    publish(
        &app,
        &p,
        json!({"type": "environment.suspended", "data": {"environmentId": "env-2"}}),
    )
    .await;
    let next = Request::from(&receiver.wait_for(2, WAIT).await[1]);
    accepted(receive(&python, "cloudshare", &new, &next, 0).await);
    refused(receive(&python, "cloudshare", &account, &next, 0).await);
}

#[tokio::test]
async fn the_event_data_preset_is_received_by_the_flask_app_of_document_004() {
    let Some(python) = python() else { return };
    // No server setting names the validation event: the preset sends `Webhook Validate`.
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let project = app
        .post(
            "/v1/projects",
            &app.admin,
            json!({"name": "cases", "require_validation": true}),
        )
        .await;
    let p = project.ok(201)["id"].as_str().unwrap().to_owned();
    app.event_type(&p, "Site Plan Change").await;

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/webhook");
    let hook = app
        .webhook(
            &p,
            "case management",
            // The document's user writes their own secret into both systems.
            json!({"url": url, "preset": "event-data", "events": ["Site Plan Change"],
                   "secret": "super-secret-key"}),
        )
        .await;
    assert_eq!(hook["status"], "pending", "{hook:#}");
    assert_eq!(hook["secret"], "super-secret-key");
    let flask = FlaskApp::start(&python, port).await;

    // Validate: the app answers "Webhook Validate" with OK, and the webhook becomes active.
    let id = id_of(&hook);
    let attempt = app
        .post(
            &format!("/v1/webhooks/{id}/validate"),
            &app.admin,
            json!({}),
        )
        .await;
    let attempt = attempt.ok(200);
    assert_eq!(
        attempt["succeeded"],
        true,
        "{attempt:#}\n{}",
        flask.output()
    );
    assert_eq!(attempt["response"]["status"], 200);
    flask.wait_for("Event: Webhook Validate\nData: {}\n").await;
    let got = app.get(&format!("/v1/webhooks/{id}"), &app.admin).await;
    assert_eq!(got.ok(200)["status"], "active");

    // Later events reach it too.
    publish(
        &app,
        &p,
        json!({"type": "Site Plan Change", "data": {"site": "s-1", "plan": "pro"}}),
    )
    .await;
    flask
        .wait_for("Event: Site Plan Change\nData: {'site': 's-1', 'plan': 'pro'}\n")
        .await;
    let deliveries = wait_for_delivery(&app, id, "succeeded").await;
    assert_eq!(deliveries["attempts"], 1);

    // The app's X-Webhook-Secret check is real: another webhook's secret gets 401.
    let stranger = app
        .webhook(
            &p,
            "stranger",
            json!({"url": url, "preset": "event-data", "events": ["Site Plan Change"]}),
        )
        .await;
    let refused = app
        .post(
            &format!("/v1/webhooks/{}/validate", id_of(&stranger)),
            &app.admin,
            json!({}),
        )
        .await;
    let refused = refused.ok(200);
    assert_eq!(refused["succeeded"], false);
    assert_eq!(refused["response"]["status"], 401);
    let stranger_id = id_of(&stranger);
    let got = app
        .get(&format!("/v1/webhooks/{stranger_id}"), &app.admin)
        .await;
    assert_eq!(got.ok(200)["status"], "pending");

    // "Use the edit option to update that": the secret typed in takes effect at once.
    let edited = app
        .patch(
            &format!("/v1/webhooks/{stranger_id}"),
            &app.admin,
            json!({"secret": "super-secret-key"}),
        )
        .await;
    assert_eq!(edited.ok(200)["secret"], "super-secret-key");
    let accepted = app
        .post(
            &format!("/v1/webhooks/{stranger_id}/validate"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(accepted.ok(200)["succeeded"], true, "{}", flask.output());
    let got = app
        .get(&format!("/v1/webhooks/{stranger_id}"), &app.admin)
        .await;
    assert_eq!(got.ok(200)["status"], "active");
}

#[tokio::test]
async fn the_connect_preset_bearer_is_accepted_by_pyjwt_and_expired_or_tampered_tokens_are_not() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (p, receiver) = setup(&app, "connect", "fulfillment_requests").await;
    let hook = app
        .webhook(
            &p,
            "Tutorial Webhook",
            json!({
                "url": receiver.url,
                "preset": "connect",
                "custom_data": {"product_id": "PRD-578-226-824", "audience": "partners"},
            }),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap();
    publish(
        &app,
        &p,
        json!({"type": "fulfillment_requests", "data": {"purpose": "demo"}}),
    )
    .await;

    let got = Request::from(&receiver.wait_for(1, WAIT).await[0]);
    let body = got.json();
    assert_eq!(keys(&body), CONNECT_KEYS);
    assert_eq!(body["webhook_id"], hook["id"]);
    assert_eq!(body["webhook_name"], "Tutorial Webhook");
    assert_eq!(body["object_class"], "fulfillment_requests");
    assert_eq!(body["account_id"], p.as_str());
    assert_eq!(body["product_id"], "PRD-578-226-824");
    assert_eq!(body["api_url"], format!("{}/v1/", app.base));
    assert_cloudblue_time(&body["triggered_at"]);
    assert_eq!(
        (&body["last_success_at"], &body["last_failure_at"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(body["processing_timeout"], 30);
    assert_eq!(
        body["data"],
        json!({"purpose": "demo", "audience": "partners"})
    );

    let authorization = got.header("authorization");
    let token = authorization.strip_prefix("Bearer ").unwrap();
    assert!(token.starts_with(CLOUDBLUE_JWT_HEADER), "{token}");

    // `jwt.decode(token, secret, algorithms=["HS256"])`: the claims are the body plus iat, exp.
    let mut claims = accepted(receive(&python, "cloudblue", secret, &got, 0).await);
    let claims = claims.as_object_mut().unwrap();
    let exp = claims.shift_remove("exp").unwrap().as_i64().unwrap();
    let iat = claims.shift_remove("iat").unwrap().as_i64().unwrap();
    assert_eq!(exp - iat, 300);
    assert_eq!(Value::Object(claims.clone()), body);

    // Still valid a little later; expired once `exp` has passed on the receiver's clock.
    accepted(receive(&python, "cloudblue", secret, &got, 290).await);
    let error = refused(receive(&python, "cloudblue", secret, &got, 301).await);
    assert!(error.starts_with("ExpiredSignatureError"), "{error}");
    // A changed claim or signature, or another secret, fails the HS256 check.
    for forged in [tamper_segment(token, 1), tamper_segment(token, 2)] {
        let request = got.with_header("authorization", &format!("Bearer {forged}"));
        let error = refused(receive(&python, "cloudblue", secret, &request, 0).await);
        assert!(error.starts_with("InvalidSignatureError"), "{error}");
    }
    let error = refused(receive(&python, "cloudblue", "not-the-secret", &got, 0).await);
    assert!(error.starts_with("InvalidSignatureError"), "{error}");
}

#[tokio::test]
async fn a_connect_webhook_retries_after_five_minutes_and_a_regenerated_secret_signs_at_once() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (p, receiver) = setup(&app, "connect-retries", "fulfillment_requests").await;
    receiver.always(crate::receiver::Reply::status(500));
    let hook = app
        .webhook(
            &p,
            "Tutorial Webhook",
            json!({"url": receiver.url, "preset": "connect"}),
        )
        .await;
    let id = id_of(&hook).to_owned();
    publish(
        &app,
        &p,
        json!({"type": "fulfillment_requests", "data": {"purpose": "demo"}}),
    )
    .await;
    receiver.wait_for(1, WAIT).await;

    // "The interval between consequent requests is not less than 5 min."
    let retrying = wait_for_delivery(&app, &id, "retrying").await;
    let attempts = app
        .get(&format!("/v1/webhooks/{id}/attempts"), &app.admin)
        .await;
    let first_try = timestamp(&attempts.ok(200)["data"][0]["started_at"]);
    let next = timestamp(&retrying["next_attempt_at"]);
    let wait = (next - first_try).num_seconds();
    assert!(
        (300..=370).contains(&wait),
        "next try {wait} s after the first"
    );
    let stats = app
        .get(&format!("/v1/webhooks/{id}/stats"), &app.admin)
        .await;
    assert_eq!(timestamp(&stats.ok(200)["next_trigger_at"]), next);

    // A policy of the webhook's own still wins.
    let quick = app
        .webhook(
            &p,
            "Quick Webhook",
            json!({"url": receiver.url, "preset": "connect",
                   "retry_policy": {"schedule_seconds": [1, 1]}}),
        )
        .await;
    publish(
        &app,
        &p,
        json!({"type": "fulfillment_requests", "data": {"purpose": "again"}}),
    )
    .await;
    // One more for the connect webhook, three for the quick one (the first and two retries).
    receiver.wait_for(1 + 1 + 3, WAIT).await;
    wait_for_delivery(&app, id_of(&quick), "failed").await;

    // "Generate a new value": the new secret is in force at once.
    receiver.always(crate::receiver::Reply::status(200));
    let old = hook["secret"].as_str().unwrap().to_owned();
    let rotated = rotate(&app, &id, None).await;
    assert_eq!(rotated["previous_secret_expires_at"], Value::Null);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let attempt = app
        .post(&format!("/v1/webhooks/{id}/trigger"), &app.admin, json!({}))
        .await;
    assert_eq!(attempt.ok(200)["succeeded"], true);
    let got = receiver.received();
    let triggered = Request::from(got.last().unwrap());
    accepted(receive(&python, "cloudblue", &new, &triggered, 0).await);
    refused(receive(&python, "cloudblue", &old, &triggered, 0).await);
    // A grace period is still there for the asking: the old secret keeps signing through it.
    let graced = rotate(&app, &id, Some(json!({"grace_seconds": 3600}))).await;
    assert!(
        graced["previous_secret_expires_at"].is_string(),
        "{graced:#}"
    );
}

#[tokio::test]
async fn the_github_preset_is_verified_by_a_github_style_receiver() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (p, receiver) = setup(&app, "repos", "push").await;
    let hook = app
        .webhook(&p, "ci", json!({"url": receiver.url, "preset": "github"}))
        .await;
    let secret = hook["secret"].as_str().unwrap();
    let data = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/app"}});
    publish(&app, &p, json!({"type": "push", "data": data})).await;

    let got = Request::from(&receiver.wait_for(1, WAIT).await[0]);
    assert_eq!(got.json(), data, "the event data as is");
    assert!(got.header("x-hub-signature-256").starts_with("sha256="));
    let payload = accepted(receive(&python, "github", secret, &got, 0).await);
    assert_eq!(payload, data);
    let error = refused(
        receive(
            &python,
            "github",
            secret,
            &got.tampered_body("acme/app", "evil/app"),
            0,
        )
        .await,
    );
    assert!(error.contains("didn't match"), "{error}");
}

#[tokio::test]
async fn a_custom_template_reproduces_the_cloudblue_body_without_a_preset() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (p, receiver) = setup(&app, "template", "fulfillment_requests").await;
    let product = json!({"product_id": "PRD-578-226-824"});
    let preset = app
        .webhook(
            &p,
            "Tutorial Webhook",
            json!({"url": receiver.url, "preset": "connect", "custom_data": product}),
        )
        .await;
    let template = json!({
        "webhook_id": "{{ webhook.id }}",
        "webhook_name": "{{ webhook.name }}",
        "object_class": "{{ event.type }}",
        "account_id": "{{ event.project_id }}",
        "product_id": "{{ custom.product_id }}",
        "api_url": "{{ custom.api_url }}",
        "triggered_at": "{{ attempt.triggered_at }}",
        "last_success_at": "{{ webhook.last_success_at }}",
        "last_failure_at": "{{ webhook.last_failure_at }}",
        "processing_timeout": "{{ webhook.timeout_seconds }}",
        "data": "{{ event.data }}",
    });
    let custom = app
        .webhook(
            &p,
            "Template Webhook",
            json!({
                "url": receiver.url,
                "format": "custom",
                "template": template,
                "signing": {"scheme": "jwt-hs256"},
                "custom_data": {"product_id": "PRD-578-226-824", "api_url": format!("{}/v1/", app.base)},
            }),
        )
        .await;
    assert_eq!(custom["preset"], Value::Null);
    publish(
        &app,
        &p,
        json!({"type": "fulfillment_requests", "data": {"purpose": "demo", "audience": "partners"}}),
    )
    .await;

    let got = receiver.wait_for(2, WAIT).await;
    let from = |hook: &Value| {
        let r = got
            .iter()
            .find(|r| r.json()["webhook_id"] == hook["id"])
            .unwrap_or_else(|| panic!("a delivery to {}", hook["name"]));
        Request::from(r)
    };
    let (by_preset, by_template) = (from(&preset).json(), from(&custom).json());
    assert_eq!(keys(&by_template), CONNECT_KEYS);
    for key in CONNECT_KEYS {
        match key {
            "webhook_id" | "webhook_name" => assert_ne!(by_template[key], by_preset[key]),
            // Both RFC 3339 UTC with `+00:00`; the template keeps milliseconds.
            "triggered_at" => {
                let (a, b) = (timestamp(&by_template[key]), timestamp(&by_preset[key]));
                assert!((a - b).num_seconds().abs() <= 2, "{a} vs {b}");
                assert!(by_template[key].as_str().unwrap().ends_with("+00:00"));
            }
            _ => assert_eq!(by_template[key], by_preset[key], "{key}"),
        }
    }
    assert_eq!(by_template["processing_timeout"], 30, "typed, not text");

    // And it is signed the CloudBlue way, PyJWT agreeing.
    let secret = custom["secret"].as_str().unwrap();
    let mut claims = accepted(receive(&python, "cloudblue", secret, &from(&custom), 0).await);
    let claims = claims.as_object_mut().unwrap();
    claims.shift_remove("iat");
    claims.shift_remove("exp");
    assert_eq!(Value::Object(claims.clone()), by_template);
}

// --- Rotation ---

async fn rotation_keeps_standard_webhooks_verifying_across_the_switch(app: TestApp) {
    let Some(python) = python() else { return };
    let (p, receiver) = setup(&app, "rotating", "order.paid").await;
    let hook = app
        .webhook(&p, "orders", json!({"url": receiver.url}))
        .await;
    let id = id_of(&hook);
    let first = hook["secret"].as_str().unwrap().to_owned();
    let mut sent = 0;
    let mut next = async || {
        sent += 1;
        publish(&app, &p, json!({"type": "order.paid", "data": {"n": sent}})).await;
        Request::from(&receiver.wait_for(sent, WAIT).await[sent - 1])
    };
    let verifies = async |secret: &str, request: &Request| {
        receive(&python, "standard_webhooks", secret, request, 0)
            .await
            .valid
    };

    // Rotated with a grace period: both signatures go out. A receiver still holding the old
    // secret verifies, and so does one given the new secret at once.
    let rotated = rotate(&app, id, Some(json!({"grace_seconds": 3600}))).await;
    let second = rotated["secret"].as_str().unwrap().to_owned();
    let got = next().await;
    assert_eq!(got.header("webhook-signature").split(' ').count(), 2);
    assert!(
        verifies(&first, &got).await,
        "the old secret, in its grace period"
    );
    assert!(verifies(&second, &got).await, "the new secret, at once");

    // Rotated "at once": only the new secret signs.
    let rotated = rotate(&app, id, Some(json!({"grace_seconds": 0}))).await;
    assert_eq!(rotated["previous_secret_expires_at"], Value::Null);
    let third = rotated["secret"].as_str().unwrap().to_owned();
    let got = next().await;
    assert_eq!(got.header("webhook-signature").split(' ').count(), 1);
    assert!(verifies(&third, &got).await);
    assert!(!verifies(&second, &got).await);
    assert!(!verifies(&first, &got).await);

    // A short grace period: both until it ends, then the new one alone.
    let rotated = rotate(&app, id, Some(json!({"grace_seconds": 2}))).await;
    let fourth = rotated["secret"].as_str().unwrap().to_owned();
    let ends = timestamp(&rotated["previous_secret_expires_at"]);
    let got = next().await;
    assert!(verifies(&third, &got).await && verifies(&fourth, &got).await);
    sleep_past(ends).await;
    let got = next().await;
    assert_eq!(got.header("webhook-signature").split(' ').count(), 1);
    assert!(verifies(&fourth, &got).await);
    assert!(!verifies(&third, &got).await, "the grace period is over");
}

on_both_stores!(rotation_keeps_standard_webhooks_verifying_across_the_switch);

#[tokio::test]
async fn single_signature_schemes_switch_to_the_new_secret_when_the_grace_period_ends() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (p, receiver) = setup(&app, "switching", "push").await;
    let hook = app
        .webhook(&p, "ci", json!({"url": receiver.url, "preset": "github"}))
        .await;
    let old = hook["secret"].as_str().unwrap().to_owned();
    let rotated = rotate(&app, id_of(&hook), Some(json!({"grace_seconds": 2}))).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    let ends = timestamp(&rotated["previous_secret_expires_at"]);

    publish(&app, &p, json!({"type": "push", "data": {"n": 1}})).await;
    let during = Request::from(&receiver.wait_for(1, WAIT).await[0]);
    accepted(receive(&python, "github", &old, &during, 0).await);
    refused(receive(&python, "github", &new, &during, 0).await);

    sleep_past(ends).await;
    publish(&app, &p, json!({"type": "push", "data": {"n": 2}})).await;
    let after = Request::from(&receiver.wait_for(2, WAIT).await[1]);
    accepted(receive(&python, "github", &new, &after, 0).await);
    refused(receive(&python, "github", &old, &after, 0).await);
}

// --- The API around them (no Python needed) ---

#[tokio::test]
async fn rotating_answers_the_new_secret_and_when_the_old_one_expires() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let p = app.project("answers").await;
    let hook = app.webhook(&p, "ops", json!({})).await;
    let id = id_of(&hook);

    // No body at all: the server's grace period (a day by default).
    let before = herald_core::time::now();
    let rotated = rotate(&app, id, None).await;
    assert_ne!(rotated["secret"], hook["secret"]);
    let ends = timestamp(&rotated["previous_secret_expires_at"]);
    let grace = (ends - before).num_seconds();
    assert!((86_395..=86_405).contains(&grace), "{grace}");
    let shown = app
        .get(&format!("/v1/webhooks/{id}/secret"), &app.admin)
        .await;
    let shown = shown.ok(200);
    assert_eq!(shown["secret"], rotated["secret"]);
    assert_eq!(
        shown["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );

    let given = rotate(&app, id, Some(json!({"grace_seconds": 60}))).await;
    let grace = (timestamp(&given["previous_secret_expires_at"]) - before).num_seconds();
    assert!((55..=65).contains(&grace), "{grace}");

    let path = format!("/v1/webhooks/{id}/secret/rotate");
    app.post(&path, &app.admin, json!({"grace_seconds": 2_592_001}))
        .await
        .problem(422, Some("grace_seconds"));
    app.post(&path, &app.admin, json!({"grace": 1}))
        .await
        .problem(422, Some("grace"));
    let unchanged = app
        .get(&format!("/v1/webhooks/{id}/secret"), &app.admin)
        .await;
    assert_eq!(unchanged.ok(200)["secret"], given["secret"]);
}

#[tokio::test]
async fn only_admins_read_the_account_secret() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let p = app.project("roles").await;
    let first = app.get("/v1/account/secret", &app.admin).await;
    let secret = first.ok(200)["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let again = app.get("/v1/account/secret", &app.admin).await;
    assert_eq!(
        again.ok(200)["secret"],
        secret.as_str(),
        "never regenerated"
    );
    for role in ["project_admin", "project_viewer", "publisher"] {
        let key = app.key(role, Some(&p)).await;
        app.get("/v1/account/secret", &key).await.problem(403, None);
    }
}

// --- Helpers ---

/// Sleeps until just after `instant`.
async fn sleep_past(instant: Timestamp) {
    let left = (instant - herald_core::time::now())
        .num_milliseconds()
        .max(0);
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(left).unwrap_or(0) + 250,
    ))
    .await;
}

/// Whether a time is written as CloudBlue's document writes it: `2021-05-27T09:54:03+00:00`.
#[track_caller]
fn assert_cloudblue_time(v: &Value) {
    let s = v.as_str().unwrap();
    timestamp(v);
    assert_eq!(s.len(), "2021-05-27T09:54:03+00:00".len(), "{s}");
    assert!(s.ends_with("+00:00"), "{s}");
}

/// The token with one character of one segment (1: claims, 2: signature) changed.
fn tamper_segment(token: &str, segment: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let part = &mut parts[segment];
    let at = part.len() / 2;
    let swapped = if &part[at..=at] == "A" { "B" } else { "A" };
    part.replace_range(at..=at, swapped);
    parts.join(".")
}

async fn wait_for_delivery(app: &TestApp, hook: &str, status: &str) -> Value {
    let path = format!("/v1/webhooks/{hook}/deliveries?status=all");
    for _ in 0..200 {
        let listed = app.get(&path, &app.admin).await;
        let first = listed.ok(200)["data"][0].clone();
        if first["status"] == status {
            return first;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {status} delivery for {hook}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Document 004's Flask app, as printed there, with only its port changed, running
/// in its own process group (its debug reloader starts a second process) and killed with it.
struct FlaskApp {
    child: Child,
    /// What the app printed (stdout), kept apart from the server's request log (stderr): the
    /// log line of a request can land between two lines the app prints for it.
    printed: Arc<Mutex<String>>,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl FlaskApp {
    async fn start(python: &Path, port: u16) -> Self {
        let printed =
            std::fs::read_to_string(format!("{PYTHON_DIR}/case_management_flask_app.py")).unwrap();
        let changes = [(
            "app.run(debug=True)",
            format!("app.run(debug=True, port={port})"),
        )];
        let mut program = printed.clone();
        for (from, to) in &changes {
            assert_eq!(program.matches(from).count(), 1, "{from} once in the app");
            program = program.replace(from, to);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.py");
        std::fs::write(&path, program).unwrap();
        let mut child = Command::new(python)
            .arg(&path)
            .current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("the Flask app starts");
        let (printed, log) = Default::default();
        collect(child.stdout.take().unwrap(), Arc::clone(&printed));
        collect(child.stderr.take().unwrap(), Arc::clone(&log));
        let app = Self {
            child,
            printed,
            log,
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Flask app did not listen on {port}:\n{}",
                app.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app
    }

    /// Everything it wrote: what it printed, then its log.
    fn output(&self) -> String {
        format!(
            "{}{}",
            self.printed.lock().unwrap(),
            self.log.lock().unwrap()
        )
    }

    /// Waits until the app has printed `text`.
    async fn wait_for(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.printed.lock().unwrap().contains(text) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Flask app did not print {text:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FlaskApp {
    fn drop(&mut self) {
        // The whole group: the app and its reloader's child.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a process's output, line by line, into `into`.
fn collect(from: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let mut out = into.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
}
