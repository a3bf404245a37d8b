//! Logging: `tracing` is the only logger. One initialiser for the binary and the tests (silent in
//! tests unless `TEST_LOG` is set).

use tracing_subscriber::EnvFilter;

/// Logs to stderr at `filter` (`RUST_LOG`, when set, wins). Calling it twice is harmless.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// For tests: logs only when `TEST_LOG` is set.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init("info,herald=debug");
    }
}
