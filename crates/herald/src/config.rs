//! Configuration: one typed struct, layered, validated once.
//!
//! Layers, later winning: compiled-in defaults → the TOML file given by `--config` /
//! `HERALD_CONFIG` → `HERALD_*` environment variables → command-line flags. The environment and
//! flags are read by clap (so `--help` lists both); the file and the defaults are merged by
//! figment. `herald.example.toml` at the repository root documents every key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use herald_store::StoreTarget;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The server's configuration, after all layers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// Folder for the embedded SQLite database (used when `database_url` is not set).
    #[serde(default = "defaults::data_dir")]
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL, or `sqlite://path`; unset: SQLite in `data_dir`.
    #[serde(default)]
    pub database_url: Option<SecretString>,
    /// Accept plain-http webhook URLs (development only).
    #[serde(default)]
    pub allow_http: bool,
    /// Largest request body accepted, in bytes.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// The first admin API key, used only when the store has no key yet; generated if unset.
    #[serde(default)]
    pub admin_key: Option<SecretString>,
    /// Milliseconds a client has to send a whole request header, from the connection's start
    /// or the first byte of its next request.
    #[serde(default = "defaults::header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Milliseconds a keep-alive connection may sit idle between requests before it is closed.
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connections served at once; past it, new ones wait to be accepted.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Log filter, in `RUST_LOG` syntax.
    #[serde(default = "defaults::log")]
    pub log: String,
    /// Seconds to let in-flight requests and sends finish on shutdown.
    #[serde(default = "defaults::shutdown_grace_seconds")]
    pub shutdown_grace_seconds: u64,
    /// Herald's public base URL, as receivers should see it (CloudBlue's `api_url`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Non-public networks (CIDR) deliveries may go to anyway, e.g. "10.0.0.0/8".
    #[serde(default)]
    pub allow_networks: Vec<String>,
    /// Concurrent sends per webhook.
    #[serde(default = "defaults::lane_concurrency")]
    pub lane_concurrency: usize,
    /// Deliveries held in memory per webhook beyond those being sent.
    #[serde(default = "defaults::lane_queue")]
    pub lane_queue: usize,
    /// Concurrent sends in all.
    #[serde(default = "defaults::global_concurrency")]
    pub global_concurrency: usize,
    /// Milliseconds between looks for due deliveries (retries, backlog, expired leases).
    #[serde(default = "defaults::poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Days events, deliveries and attempts are kept (projects may set their own).
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u32,
    /// The event type name of validation events (the case-management cloud uses "Webhook Validate").
    #[serde(default = "defaults::validation_event")]
    pub validation_event: String,
    /// Seconds a rotated-out webhook secret stays in use when the rotation does not say
    /// (0: switch at once; at most 30 days).
    #[serde(default = "defaults::rotation_grace_seconds")]
    pub rotation_grace_seconds: u64,
    /// This node's name in delivery leases (PostgreSQL). Unset: a new name each start, and a
    /// restarted node's old leases are claimed by any node once they expire. Set, stable and
    /// unique per node: a restart takes back its own leases at once. Two running nodes must
    /// never share a name.
    #[serde(default)]
    pub node_id: Option<String>,
}

mod defaults {
    use std::net::SocketAddr;
    use std::path::PathBuf;

    pub fn listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }
    pub fn data_dir() -> PathBuf {
        PathBuf::from("herald-data")
    }
    pub fn max_body_bytes() -> usize {
        1024 * 1024
    }
    pub fn header_read_timeout_ms() -> u64 {
        10_000
    }
    pub fn idle_timeout_ms() -> u64 {
        60_000
    }
    pub fn max_connections() -> usize {
        4096
    }
    pub fn log() -> String {
        "info".into()
    }
    pub fn shutdown_grace_seconds() -> u64 {
        10
    }
    pub fn lane_concurrency() -> usize {
        4
    }
    pub fn lane_queue() -> usize {
        64
    }
    pub fn global_concurrency() -> usize {
        512
    }
    pub fn poll_interval_ms() -> u64 {
        1000
    }
    pub fn retention_days() -> u32 {
        30
    }
    pub fn validation_event() -> String {
        "webhook.validate".into()
    }
    pub fn rotation_grace_seconds() -> u64 {
        herald_core::webhook::RotationGrace::DEFAULT_SECONDS
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: defaults::listen(),
            data_dir: defaults::data_dir(),
            database_url: None,
            allow_http: false,
            max_body_bytes: defaults::max_body_bytes(),
            admin_key: None,
            header_read_timeout_ms: defaults::header_read_timeout_ms(),
            idle_timeout_ms: defaults::idle_timeout_ms(),
            max_connections: defaults::max_connections(),
            log: defaults::log(),
            shutdown_grace_seconds: defaults::shutdown_grace_seconds(),
            public_url: None,
            allow_networks: Vec::new(),
            lane_concurrency: defaults::lane_concurrency(),
            lane_queue: defaults::lane_queue(),
            global_concurrency: defaults::global_concurrency(),
            poll_interval_ms: defaults::poll_interval_ms(),
            retention_days: defaults::retention_days(),
            validation_event: defaults::validation_event(),
            rotation_grace_seconds: defaults::rotation_grace_seconds(),
            node_id: None,
        }
    }
}

impl fmt::Debug for Config {
    /// Secrets stay hidden: the database URL shows without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("store", &self.store_target().ok())
            .field("allow_http", &self.allow_http)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<redacted>"))
            .field("header_read_timeout_ms", &self.header_read_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("max_connections", &self.max_connections)
            .field("log", &self.log)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .field("public_url", &self.public_url)
            .field("allow_networks", &self.allow_networks)
            .field("lane_concurrency", &self.lane_concurrency)
            .field("lane_queue", &self.lane_queue)
            .field("global_concurrency", &self.global_concurrency)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("retention_days", &self.retention_days)
            .field("validation_event", &self.validation_event)
            .field("rotation_grace_seconds", &self.rotation_grace_seconds)
            .field("node_id", &self.node_id)
            .finish()
    }
}

/// Settings given on the command line or in `HERALD_*` variables (flags win over variables).
/// Only those given are serialised, so unset ones leave the file's or the default value.
#[derive(Debug, Default, Clone, clap::Args, Serialize)]
pub struct ServeArgs {
    /// A TOML configuration file (see herald.example.toml).
    #[arg(long, env = "HERALD_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HERALD_LISTEN", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Folder for the embedded SQLite database [default: ./herald-data].
    #[arg(long, env = "HERALD_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Use this database instead: postgres://user@host/db or sqlite://path.
    #[arg(
        long,
        env = "HERALD_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Accept plain-http webhook URLs (development only).
    #[arg(long, env = "HERALD_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long, env = "HERALD_MAX_BODY_BYTES", value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// The first admin API key (only used when the store has none yet) [default: generated].
    #[arg(
        long,
        env = "HERALD_ADMIN_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_key: Option<String>,
    /// Milliseconds a client has to send a whole request header [default: 10000].
    #[arg(long, env = "HERALD_HEADER_READ_TIMEOUT_MS", value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout_ms: Option<u64>,
    /// Milliseconds an idle keep-alive connection is kept open [default: 60000].
    #[arg(long, env = "HERALD_IDLE_TIMEOUT_MS", value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// Connections served at once; past it, new ones wait to be accepted [default: 4096].
    #[arg(long, env = "HERALD_MAX_CONNECTIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Log filter, RUST_LOG syntax [default: info].
    #[arg(long, env = "HERALD_LOG", value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Seconds to let in-flight requests and sends finish on shutdown [default: 10].
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE_SECONDS", value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_seconds: Option<u64>,
    /// Herald's public base URL, as receivers see it [default: http://<listen>/v1/].
    #[arg(long, env = "HERALD_PUBLIC_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// A non-public network (CIDR) deliveries may go to anyway; repeat or comma-separate.
    /// Private, loopback and link-local destinations are refused otherwise.
    #[arg(
        long = "allow-network",
        env = "HERALD_ALLOW_NETWORKS",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_networks: Vec<String>,
    /// Concurrent sends per webhook [default: 4].
    #[arg(long, env = "HERALD_LANE_CONCURRENCY", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane_concurrency: Option<usize>,
    /// Deliveries held in memory per webhook beyond those being sent [default: 64].
    #[arg(long, env = "HERALD_LANE_QUEUE", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane_queue: Option<usize>,
    /// Concurrent sends in all [default: 512].
    #[arg(long, env = "HERALD_GLOBAL_CONCURRENCY", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_concurrency: Option<usize>,
    /// Milliseconds between looks for due deliveries [default: 1000].
    #[arg(long, env = "HERALD_POLL_INTERVAL_MS", value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    /// Days events, deliveries and attempts are kept [default: 30].
    #[arg(long, env = "HERALD_RETENTION_DAYS", value_name = "DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Event type name of validation events [default: webhook.validate].
    #[arg(long, env = "HERALD_VALIDATION_EVENT", value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_event: Option<String>,
    /// Seconds a rotated-out webhook secret stays in use, when a rotation does not say;
    /// 0 switches at once [default: 86400].
    #[arg(long, env = "HERALD_ROTATION_GRACE_SECONDS", value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_grace_seconds: Option<u64>,
    /// This node's name in delivery leases, stable across restarts and unique per node
    /// (PostgreSQL): a restart then takes back its own leases at once [default: new each start].
    #[arg(long, env = "HERALD_NODE_ID", value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// A configuration that cannot be used, saying which setting and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl Config {
    /// Merges the layers and validates the result.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = &args.config {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.clone()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Self = figment
            .merge(Serialized::defaults(args))
            .extract()
            .map_err(Box::new)?;
        config.validate()
    }

    /// Reads just a TOML file over the defaults (used to check the example file).
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let config: Self = Figment::new()
            .merge(Toml::file_exact(path))
            .extract()
            .map_err(Box::new)?;
        config.validate()
    }

    fn validate(self) -> Result<Self, ConfigError> {
        self.store_target()?;
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(ConfigError::Invalid {
                field: "max_body_bytes",
                message: "must be between 1024 and 67108864".into(),
            });
        }
        self.networks()?;
        for (field, n) in [
            ("lane_concurrency", self.lane_concurrency),
            ("global_concurrency", self.global_concurrency),
        ] {
            if !(1..=100_000).contains(&n) {
                return Err(ConfigError::Invalid {
                    field,
                    message: "must be between 1 and 100000".into(),
                });
            }
        }
        for (field, ms) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if !(10..=3_600_000).contains(&ms) {
                return Err(ConfigError::Invalid {
                    field,
                    message: "must be between 10 and 3600000".into(),
                });
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigError::Invalid {
                field: "max_connections",
                message: "must be between 1 and 1000000".into(),
            });
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err(ConfigError::Invalid {
                field: "retention_days",
                message: "must be between 1 and 3650".into(),
            });
        }
        if !(10..=3_600_000).contains(&self.poll_interval_ms) {
            return Err(ConfigError::Invalid {
                field: "poll_interval_ms",
                message: "must be between 10 and 3600000".into(),
            });
        }
        if herald_core::event_type::EventTypeName::parse(&self.validation_event).is_err() {
            return Err(ConfigError::Invalid {
                field: "validation_event",
                message: "must be a valid event type name".into(),
            });
        }
        self.rotation_grace()?;
        if let Some(name) = &self.node_id
            && (name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        {
            return Err(ConfigError::Invalid {
                field: "node_id",
                message: "must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
            });
        }
        if let Some(url) = &self.public_url {
            url::Url::parse(url).map_err(|e| ConfigError::Invalid {
                field: "public_url",
                message: e.to_string(),
            })?;
        }
        if let Some(key) = &self.admin_key {
            let key = key.expose_secret();
            if key.len() < 20 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::Invalid {
                    field: "admin_key",
                    message: "must be at least 20 visible ASCII characters".into(),
                });
            }
        }
        Ok(self)
    }

    /// The grace period of a rotation that does not give one.
    pub fn rotation_grace(&self) -> Result<herald_core::webhook::RotationGrace, ConfigError> {
        herald_core::webhook::RotationGrace::from_seconds(self.rotation_grace_seconds).map_err(
            |e| ConfigError::Invalid {
                field: "rotation_grace_seconds",
                message: e.message,
            },
        )
    }

    /// The networks deliveries may reach although they are not public.
    pub fn networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.allow_networks
            .iter()
            .map(|n| {
                n.trim().parse().map_err(|_| ConfigError::Invalid {
                    field: "allow_networks",
                    message: format!("\"{n}\" is not a CIDR network such as 10.0.0.0/8"),
                })
            })
            .collect()
    }

    /// The database to use: `database_url` if set, else SQLite in `data_dir`.
    pub fn store_target(&self) -> Result<StoreTarget, ConfigError> {
        match &self.database_url {
            None => Ok(StoreTarget::Sqlite {
                path: self.data_dir.join("herald.db"),
            }),
            Some(url) => {
                StoreTarget::from_url(url.expose_secret()).map_err(|message| ConfigError::Invalid {
                    field: "database_url",
                    message,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.toml");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    #[test]
    fn the_example_file_documents_valid_settings_equal_to_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../herald.example.toml");
        let config = Config::from_toml_file(&example).unwrap();
        let defaults = Config::default();
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.data_dir, defaults.data_dir);
        assert_eq!(config.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(config.allow_http, defaults.allow_http);
        assert_eq!(config.log, defaults.log);
        assert_eq!(
            config.header_read_timeout_ms,
            defaults.header_read_timeout_ms
        );
        assert_eq!(config.idle_timeout_ms, defaults.idle_timeout_ms);
        assert_eq!(config.max_connections, defaults.max_connections);
        assert_eq!(
            config.rotation_grace_seconds,
            defaults.rotation_grace_seconds
        );
        assert_eq!(defaults.rotation_grace_seconds, 86_400);
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let (_dir, path) =
            write("listen = \"127.0.0.1:9000\"\nlog = \"debug\"\nallow_http = true\n");
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..ServeArgs::default()
        };
        let config = Config::load(&args).unwrap();
        assert_eq!(config.listen.port(), 9100, "the flag wins");
        assert_eq!(config.log, "debug", "the file wins over the default");
        assert!(config.allow_http);
        assert_eq!(config.max_body_bytes, 1024 * 1024, "the default stays");
        assert_eq!(
            config.store_target().unwrap(),
            StoreTarget::Sqlite {
                path: PathBuf::from("herald-data/herald.db")
            }
        );
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let (_dir, path) = write("listen = \"nowhere\"\n");
        let err = Config::load(&ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let (_dir, path) = write("lisen = \"127.0.0.1:1\"\n");
        let err = Config::load(&ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = Config::load(&ServeArgs {
            database_url: Some("mysql://x".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
        let err = Config::load(&ServeArgs {
            admin_key: Some("short".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("admin_key"), "{err}");
        let err = Config::load(&ServeArgs {
            max_body_bytes: Some(1),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("max_body_bytes"), "{err}");
        let err = Config::load(&ServeArgs {
            rotation_grace_seconds: Some(31 * 24 * 3600),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("rotation_grace_seconds"), "{err}");
        for bad in ["", "two words", &"n".repeat(65)] {
            let err = Config::load(&ServeArgs {
                node_id: Some(bad.to_owned()),
                ..ServeArgs::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains("node_id"), "{bad:?}: {err}");
        }
        let named = Config::load(&ServeArgs {
            node_id: Some("herald-1.eu_west".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(named.node_id.as_deref(), Some("herald-1.eu_west"));
        let missing = ServeArgs {
            config: Some("/nonexistent/herald.toml".into()),
            ..ServeArgs::default()
        };
        assert!(matches!(
            Config::load(&missing),
            Err(ConfigError::MissingFile(_))
        ));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let args = ServeArgs {
            database_url: Some("postgres://herald:hunter2hunter2@db/herald".into()),
            admin_key: Some("hk_a_very_secret_admin_key_123".into()),
            ..ServeArgs::default()
        };
        let shown = format!("{:?}", Config::load(&args).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("a_very_secret"), "{shown}");
    }
}
