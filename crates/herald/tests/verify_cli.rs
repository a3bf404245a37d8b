//! `herald verify` as a user runs it: the built binary, saved requests on disk, exit codes and
//! verdicts. Requests are signed with herald-core's `sign`, as the delivery engine signs them.

#![allow(clippy::unwrap_used, reason = "a failed step fails the test")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use herald_core::secret::SigningSecret;
use herald_core::shape::Preset;
use herald_core::signing::{SigningKeys, sign};
use serde_json::{Value, json};

const SENT: i64 = 1_714_557_243;

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("verify")
        .args(args)
        .env_remove("HERALD_VERIFY_SECRET")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Writes a saved request as the help describes it: request line, headers, blank line, body.
fn saved(headers: &[(String, String)], body: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, "POST /hook HTTP/1.1\r\n").unwrap();
    for (k, v) in headers {
        write!(file, "{k}: {v}\r\n").unwrap();
    }
    write!(file, "Content-Type: application/json\r\n\r\n").unwrap();
    file.write_all(body).unwrap();
    file
}

fn path(file: &tempfile::NamedTempFile) -> &str {
    file.path().to_str().unwrap()
}

/// A delivery signed for `preset` with `secret`, as headers and body.
fn signed(
    preset: Preset,
    secret: &SigningSecret,
    payload: &Value,
) -> (Vec<(String, String)>, Vec<u8>) {
    let (_, scheme) = preset.shape();
    let body = serde_json::to_vec(payload).unwrap();
    let headers = sign(
        &scheme,
        &SigningKeys {
            webhook: std::slice::from_ref(secret),
            account: Some(secret),
        },
        "dlv_01J0000000000000000000000",
        SENT,
        payload,
        &body,
    )
    .unwrap();
    (headers, body)
}

#[test]
fn a_standard_webhooks_request_is_valid_until_it_is_too_old() {
    let secret = SigningSecret::generate();
    let payload = json!({"type": "file.uploaded", "timestamp": "2024-05-01T10:00:00Z", "data": {"path": "/a"}});
    let (headers, body) = signed(Preset::Standard, &secret, &payload);
    let file = saved(&headers, &body);
    let now = (SENT + 60).to_string();

    let ok = herald(&[
        path(&file),
        "--scheme",
        "standard-webhooks",
        "--secret",
        secret.expose(),
        "--now",
        &now,
    ]);
    assert_eq!(stdout(&ok), "valid");
    assert_eq!(ok.status.code(), Some(0));

    let by_preset = herald(&[
        path(&file),
        "--scheme",
        "standard",
        "--secret",
        secret.expose(),
        "--now",
        &now,
    ]);
    assert_eq!(stdout(&by_preset), "valid");

    let late = (SENT + 301).to_string();
    let old = herald(&[
        path(&file),
        "--scheme",
        "standard",
        "--secret",
        secret.expose(),
        "--now",
        &late,
    ]);
    assert_eq!(old.status.code(), Some(1));
    assert!(
        stdout(&old).starts_with("invalid: timestamp too old"),
        "{}",
        stdout(&old)
    );

    let lenient = herald(&[
        path(&file),
        "--scheme",
        "standard",
        "--secret",
        secret.expose(),
        "--now",
        &late,
        "--tolerance",
        "600",
    ]);
    assert_eq!(stdout(&lenient), "valid");
}

#[test]
fn a_tampered_body_is_a_signature_mismatch() {
    let secret = SigningSecret::generate();
    let (headers, body) = signed(Preset::Standard, &secret, &json!({"data": {"amount": 10}}));
    let tampered = String::from_utf8(body).unwrap().replace("10", "1000");
    let file = saved(&headers, tampered.as_bytes());
    let o = herald(&[
        path(&file),
        "--scheme",
        "standard",
        "--secret",
        secret.expose(),
        "--now",
        &SENT.to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "invalid: signature mismatch: no signature in `webhook-signature` matches this request and secret"
    );
}

#[test]
fn a_missing_header_is_named() {
    let secret = SigningSecret::generate();
    let (headers, body) = signed(Preset::Standard, &secret, &json!({}));
    let without: Vec<_> = headers
        .into_iter()
        .filter(|(k, _)| k != "webhook-signature")
        .collect();
    let file = saved(&without, &body);
    let o = herald(&[
        path(&file),
        "--scheme",
        "standard",
        "--secret",
        secret.expose(),
        "--now",
        &SENT.to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "invalid: missing header `webhook-signature`");
}

#[test]
fn githubs_example_verifies_by_preset_and_by_explicit_flags() {
    let file = saved(
        &[(
            "X-Hub-Signature-256".into(),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into(),
        )],
        b"Hello, World!",
    );
    let secret = "It's a Secret to Everybody";
    assert_eq!(
        stdout(&herald(&[
            path(&file),
            "--scheme",
            "github",
            "--secret",
            secret
        ])),
        "valid"
    );
    let explicit = herald(&[
        path(&file),
        "--scheme",
        "hmac-sha256",
        "--header",
        "x-hub-signature-256",
        "--encoding",
        "hex",
        "--prefix",
        "sha256=",
        "--secret",
        secret,
    ]);
    assert_eq!(stdout(&explicit), "valid");
    let wrong = herald(&[
        path(&file),
        "--scheme",
        "github",
        "--secret",
        "It's a secret to everybody",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stdout(&wrong).starts_with("invalid: signature mismatch"));
}

#[test]
fn a_cloudshare_request_verifies_with_the_account_secret() {
    let account = SigningSecret::generate();
    let (headers, body) = signed(
        Preset::Cloudshare,
        &account,
        &json!({"Event": "environment.suspended"}),
    );
    let file = saved(&headers, &body);
    assert_eq!(
        stdout(&herald(&[
            path(&file),
            "--scheme",
            "cloudshare",
            "--secret",
            account.expose()
        ])),
        "valid"
    );
}

#[test]
fn a_connect_bearer_verifies_and_then_expires() {
    let secret = SigningSecret::generate();
    let payload = json!({"webhook_id": "wh_1", "object_class": "fulfillment_requests", "data": {"purpose": "demo"}});
    let (headers, body) = signed(Preset::Connect, &secret, &payload);
    let file = saved(&headers, &body);
    let at = |t: i64| {
        herald(&[
            path(&file),
            "--scheme",
            "connect",
            "--secret",
            secret.expose(),
            "--now",
            &t.to_string(),
        ])
    };
    assert_eq!(stdout(&at(SENT + 10)), "valid");
    let expired = at(SENT + 300);
    assert_eq!(expired.status.code(), Some(1));
    assert_eq!(
        stdout(&expired),
        format!(
            "invalid: token expired at {}; now is {}",
            SENT + 300,
            SENT + 300
        )
    );
}

#[test]
fn a_secret_header_request_read_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["verify", "-", "--scheme", "event-data"])
        .env("HERALD_VERIFY_SECRET", "super-secret-key")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"X-Webhook-Secret: super-secret-key\n\n{\"event\":\"Webhook Validate\",\"data\":{}}",
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "valid");

    let file = saved(&[("X-Webhook-Secret".into(), "guess".into())], b"{}");
    let o = herald(&[
        path(&file),
        "--scheme",
        "secret-header",
        "--secret",
        "super-secret-key",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "invalid: secret mismatch: `X-Webhook-Secret` does not hold the expected secret"
    );
}

#[test]
fn unreadable_requests_and_flags_that_do_not_fit_exit_2() {
    let o = herald(&[
        "/nonexistent/request.txt",
        "--scheme",
        "github",
        "--secret",
        "s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /nonexistent/request.txt"));

    let file = saved(&[], b"{}");
    let o = herald(&[
        path(&file),
        "--scheme",
        "hmac-sha256",
        "--header",
        "X-Sig",
        "--secret",
        "s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --encoding"));

    let o = herald(&[
        path(&file),
        "--scheme",
        "github",
        "--prefix",
        "x",
        "--secret",
        "s",
    ]);
    assert_eq!(o.status.code(), Some(2));

    let mut garbled = tempfile::NamedTempFile::new().unwrap();
    garbled
        .write_all(b"webhook-id: 1\n{\"no\": \"blank line\"}")
        .unwrap();
    let o = herald(&[path(&garbled), "--scheme", "standard", "--secret", "s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2 is not `Name: value`"));
}

#[test]
fn help_documents_the_saved_request_format() {
    let o = herald(&["--help"]);
    let help = stdout(&o);
    assert!(help.contains("then a blank line, then the body"), "{help}");
    assert!(help.contains("--scheme"));
    assert!(help.contains("exits 1"));
}
