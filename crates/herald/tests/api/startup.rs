//! The binary's life cycle: the first start makes and prints one admin key, later starts do not;
//! SIGTERM and SIGINT stop it cleanly; `--help` documents the settings.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}

/// Starts `herald serve` on a fresh port, waits until it answers, stops it with `signal`, and
/// returns what it printed and whether it exited successfully.
fn serve_then_signal(dir: &std::path::Path, signal: &str) -> (String, bool) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = herald()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .env_remove("HERALD_ADMIN_KEY")
        .env("HERALD_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "herald did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "herald did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (out, status.success())
}

#[test]
fn the_first_start_prints_one_admin_key_and_later_starts_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (first, ok) = serve_then_signal(dir.path(), "-TERM");
    assert!(ok, "exit status after SIGTERM");
    let keys: Vec<&str> = first
        .split_whitespace()
        .filter(|w| w.starts_with("hk_"))
        .collect();
    assert_eq!(keys.len(), 1, "{first}");
    assert!(first.contains("shown only this once"), "{first}");

    let (second, ok) = serve_then_signal(dir.path(), "-INT");
    assert!(ok, "exit status after SIGINT");
    assert!(
        !second.contains("hk_"),
        "a second start prints no key: {second}"
    );
    assert!(
        dir.path().join("herald.db").exists(),
        "SQLite lives in the data directory"
    );
}

#[test]
fn help_documents_every_setting_with_its_environment_variable() {
    let out = herald().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--listen", "HERALD_LISTEN"),
        ("--data-dir", "HERALD_DATA_DIR"),
        ("--database-url", "HERALD_DATABASE_URL"),
        ("--allow-http", "HERALD_ALLOW_HTTP"),
        ("--allow-network", "HERALD_ALLOW_NETWORKS"),
        ("--max-body-bytes", "HERALD_MAX_BODY_BYTES"),
        ("--config", "HERALD_CONFIG"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} missing from --help"
        );
    }
}

#[test]
fn a_bad_setting_stops_the_start_with_a_message_naming_it() {
    let out = herald()
        .args(["serve", "--database-url", "mysql://nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database_url"), "{err}");
}
