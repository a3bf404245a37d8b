//! The binary's life cycle: the first start makes and prints one admin key, later starts do not,
//! and a first start that cannot listen makes none; SIGTERM and SIGINT stop it cleanly, even
//! with its standard output gone; `--help` documents the settings; `herald admin-key create`
//! recovers an installation whose admin keys were lost.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `signal` to `child` and waits (at most 15 s) for it to exit; returns its status.
fn stop(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if stopping.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("herald did not stop on {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most 20 s) until something accepts connections on `port`.
fn wait_until_listening(port: u16, child: &mut std::process::Child) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("herald exited before listening: {status}");
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("herald did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET /v1/me` with `key`, over a raw connection; returns the status code.
fn me_status(port: u16, key: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /v1/me HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// The one `hk_…` token in `text`.
fn the_key_in(text: &str) -> String {
    let keys: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with("hk_"))
        .collect();
    assert_eq!(keys.len(), 1, "{text}");
    keys[0].to_owned()
}

/// Starts `herald serve` on the data directory `dir` and `port` (stdout piped, logs discarded).
fn serve(dir: &std::path::Path, port: u16) -> std::process::Child {
    herald()
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
        .unwrap()
}

/// Starts `herald serve` on a fresh port, waits until it answers, stops it with `signal`, and
/// returns what it printed and whether it exited successfully.
fn serve_then_signal(dir: &std::path::Path, signal: &str) -> (String, bool) {
    let port = free_port();
    let mut child = serve(dir, port);
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
        ("--header-read-timeout-ms", "HERALD_HEADER_READ_TIMEOUT_MS"),
        ("--idle-timeout-ms", "HERALD_IDLE_TIMEOUT_MS"),
        ("--max-connections", "HERALD_MAX_CONNECTIONS"),
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

#[test]
fn a_first_start_that_cannot_listen_leaves_no_key_and_the_next_start_prints_one() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let failed = herald()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("HERALD_ADMIN_KEY")
        .env("HERALD_LOG", "error")
        .output()
        .unwrap();
    assert!(!failed.status.success(), "the port is taken");
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(!stdout.contains("hk_"), "no key shown: {stdout}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("listening on"), "{stderr}");
    drop(taken);

    let (second, ok) = serve_then_signal(dir.path(), "-TERM");
    assert!(ok);
    the_key_in(&second);
    assert!(second.contains("shown only this once"), "{second}");
}

#[test]
fn admin_key_create_recovers_an_sqlite_installation_once_its_server_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = serve(dir.path(), port);
    wait_until_listening(port, &mut server);

    // While the server holds the data directory: refused, saying what to do, nothing written.
    let refused = herald()
        .args(["admin-key", "create", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("server is running") && stderr.contains("stop the server"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("hk_"));
    assert!(stop(&mut server, "-TERM").success());
    let mut printed = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    let first = the_key_in(&printed);

    // The data directory as the server's configuration file gives it.
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", dir.path().to_str().unwrap()),
    )
    .unwrap();
    let made = herald()
        .args(["admin-key", "create", "--name", "ops recovery", "--config"])
        .arg(&config)
        .env_remove("HERALD_DATA_DIR")
        .env_remove("HERALD_DATABASE_URL")
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let recovered = the_key_in(&String::from_utf8_lossy(&made.stdout));
    assert_ne!(recovered, first);

    let port = free_port();
    let mut server = serve(dir.path(), port);
    wait_until_listening(port, &mut server);
    assert_eq!(me_status(port, &recovered), 200, "the recovered key works");
    assert_eq!(me_status(port, &first), 200, "the old key is untouched");
    assert_eq!(me_status(port, "hk_nothing_like_a_key"), 401);
    assert!(stop(&mut server, "-TERM").success());
}

#[test]
fn admin_key_create_on_a_folder_without_a_database_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let out = herald()
        .args(["admin-key", "create", "--data-dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no Herald database"), "{stderr}");
    assert!(!missing.exists(), "no database was made");
}

#[tokio::test]
async fn admin_key_create_works_beside_running_postgres_nodes() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let url = app.database_url();
    let out = tokio::task::spawn_blocking(move || {
        herald()
            .args(["admin-key", "create", "--database-url", &url])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = the_key_in(&String::from_utf8_lossy(&out.stdout));
    let me = app.get("/v1/me", &key).await;
    assert_eq!(me.ok(200)["role"], "admin");
}

/// Runs the binary with `args`, its standard output a pipe whose reading end is closed at once.
fn spawn_with_stdout_closed(args: &[&str]) -> std::process::Child {
    let mut child = herald()
        .args(args)
        .env_remove("HERALD_ADMIN_KEY")
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child
}

#[test]
fn herald_openapi_into_a_closed_pipe_exits_without_a_panic() {
    let mut child = spawn_with_stdout_closed(&["openapi"]);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "openapi hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status}: {stderr}");
}

#[test]
fn a_server_whose_stdout_is_gone_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data_dir = dir.path().to_str().unwrap();
    let mut child =
        spawn_with_stdout_closed(&["serve", "--listen", &listen, "--data-dir", data_dir]);
    wait_until_listening(port, &mut child);
    assert_eq!(me_status(port, "hk_nothing_like_a_key"), 401, "it serves");
    let stopping = Instant::now();
    let status = stop(&mut child, "-TERM");
    assert!(stopping.elapsed() < Duration::from_secs(10));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("herald admin-key create"),
        "the lost first key is reported: {stderr}"
    );
}

/// "Max open files" soft and hard limits of a running process, from /proc.
#[cfg(target_os = "linux")]
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

#[cfg(target_os = "linux")]
#[test]
fn serve_raises_its_open_files_soft_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Started with a soft limit of 256 (below the hard one, whatever that is here).
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_herald"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("HERALD_ADMIN_KEY")
        .env("HERALD_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_listening(port, &mut child);
    let (soft, hard) = open_files_limits(child.id());
    assert!(stop(&mut child, "-TERM").success());
    let (_, own_hard) = open_files_limits(std::process::id());
    assert_eq!(hard, own_hard, "the hard limit is left as it was");
    assert_eq!(soft, hard, "the soft limit is raised to the hard limit");
    assert_ne!(soft, "256");
}
