//! The application: store, API and listener, built from a [`Config`] and run until shutdown.
//!
//! `App::build` does everything that can fail at start (open and migrate the store, bind the
//! port, start the engine, and last of all create the first admin key) so that `run` only
//! serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_api::{ApiSettings, ApiState};
use herald_core::api_key::ApiKey;
use herald_core::auth::Role;
use herald_core::secret::{ApiKeyToken, SigningSecret};
use herald_core::time;
use herald_delivery::{Engine, EngineConfig};
use herald_store::Store;
use secrecy::ExposeSecret;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    store: Arc<dyn Store>,
    router: axum::Router,
    engine: Engine,
    first_admin_key: Option<FirstAdminKey>,
    shutdown_grace: Duration,
    limits: crate::serve::Limits,
}

/// The admin key made on a first start.
#[derive(Debug, Clone)]
pub struct FirstAdminKey {
    pub token: ApiKeyToken,
    /// Whether Herald generated it (and must show it once), or took it from the configuration.
    pub generated: bool,
}

/// Connections the kernel holds for Herald before it accepts them (Linux caps it at
/// `net.core.somaxconn`, 4096 by default).
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `address` with room for a burst of new connections. `TcpListener::bind` asks for
/// a backlog of 128: when a few hundred clients connected at once, the rest were turned away
/// and each waited a SYN retransmit (a second) before it was accepted.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

impl App {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let target = config.store_target()?;
        let store = herald_store::connect(&target)
            .await
            .with_context(|| format!("opening the store at {target:?}"))?;
        // Bound before the first admin key is made: a first start that cannot listen (the port
        // is taken) must not leave a store holding a key nobody was ever shown.
        let listener =
            listen(config.listen).with_context(|| format!("listening on {}", config.listen))?;
        let address = listener.local_addr()?;
        // CloudShare's account-level secret: made on the first start, the same ever after.
        let account_secret = store
            .account_secret(&SigningSecret::generate())
            .await
            .context("reading the account-level signing secret")?;
        let engine_config = EngineConfig {
            account_secret: Some(account_secret),
            ..engine_config(config, address)?
        };
        let engine = Engine::start(store.clone(), engine_config)
            .await
            .context("starting the delivery engine")?;
        // The last step that can fail: whatever failed before left no key behind.
        let first_admin_key = bootstrap_admin_key(store.as_ref(), config).await?;
        let state = ApiState {
            store: store.clone(),
            engine: engine.clone(),
            lookups: Default::default(),
            settings: Arc::new(ApiSettings {
                allow_http: config.allow_http,
                max_body_bytes: config.max_body_bytes,
                rotation_grace: config.rotation_grace()?,
            }),
        };
        tracing::info!(%address, store = %store.backend(), node = engine.node_id(), "Herald is ready");
        Ok(Self {
            listener,
            store,
            router: herald_api::router(state),
            engine,
            first_admin_key,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_seconds),
            limits: crate::serve::Limits {
                header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
                idle_timeout: Duration::from_millis(config.idle_timeout_ms),
                max_connections: config.max_connections,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    /// The admin key created by this start, if the store had none.
    pub fn first_admin_key(&self) -> Option<&FirstAdminKey> {
        self.first_admin_key.as_ref()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish within the
    /// grace period, then stops the delivery engine (in-flight sends finish, records commit).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let grace = self.shutdown_grace;
        let engine = self.engine.clone();
        let stopping = shutdown.clone();
        let served = tokio::spawn(crate::serve::serve(
            self.listener,
            self.router,
            self.limits,
            stopping,
        ));
        shutdown.cancelled().await;
        match tokio::time::timeout(grace, served).await {
            Ok(joined) => joined.context("the server task")?,
            Err(_) => tracing::warn!(
                ?grace,
                "requests still in flight after the grace period; stopping anyway"
            ),
        }
        engine.shutdown().await;
        tracing::info!("Herald stopped");
        Ok(())
    }
}

fn engine_config(config: &Config, address: SocketAddr) -> anyhow::Result<EngineConfig> {
    Ok(EngineConfig {
        lane_concurrency: config.lane_concurrency,
        lane_queue: config.lane_queue,
        global_concurrency: config.global_concurrency,
        poll_interval: Duration::from_millis(config.poll_interval_ms),
        api_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}/v1/")),
        allow_http: config.allow_http,
        allowed_networks: config.networks()?,
        retention_days: config.retention_days,
        validation_event: config.validation_event.clone(),
        shutdown_deadline: Duration::from_secs(config.shutdown_grace_seconds),
        ..match &config.node_id {
            Some(name) => EngineConfig {
                node_id: name.clone(),
                node_id_is_stable: true,
                ..EngineConfig::default()
            },
            None => EngineConfig::default(),
        }
    })
}

/// On a first start (no API key at all), creates the admin key: the configured one, or a new one.
async fn bootstrap_admin_key(
    store: &dyn Store,
    config: &Config,
) -> anyhow::Result<Option<FirstAdminKey>> {
    if store.has_api_keys().await? {
        return Ok(None);
    }
    let (token, generated) = match &config.admin_key {
        Some(given) => (
            ApiKeyToken::from_given(given.expose_secret().to_owned()),
            false,
        ),
        None => (ApiKeyToken::generate(), true),
    };
    let key = ApiKey::issue(
        "admin".into(),
        Role::Admin,
        None,
        token.clone(),
        time::now(),
    )?;
    store.create_api_key(&key).await?;
    Ok(Some(FirstAdminKey { token, generated }))
}

/// A token cancelled by SIGINT or SIGTERM. The handlers are installed before this returns, so a
/// signal that arrives at any later moment stops Herald cleanly.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        tokio::spawn(async move {
            match streams {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    tracing::warn!(
                        "could not install signal handlers; falling back to Ctrl-C only"
                    );
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            tracing::info!("shutdown requested");
            trigger.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        trigger.cancel();
    });
    token
}
