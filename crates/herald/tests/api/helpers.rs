//! The test harness: the real app on 127.0.0.1:0 over a fresh database, and a client.
//!
//! `spawn_app(Store::Sqlite)` always works; `spawn_app(Store::Postgres)` returns `None` when
//! PostgreSQL is unreachable and not required. [`on_both_stores!`] turns one scenario into a
//! test per store.

use std::sync::Arc;

use herald::app::App;
use herald::config::Config;
use herald_store::testing::TestDatabase;
use herald_store::{Store, StoreTarget};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    /// The database the app runs on, as `--database-url` takes it.
    database_url: String,
    /// The admin key made on first start.
    pub admin: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    shutdown: CancellationToken,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What a test sees of a response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts a problem+json answer with this status and (if given) field, and returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, field: Option<&str>) -> &Value {
        assert_eq!(self.status.as_u16(), status, "status of {:#}", self.body);
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            content_type,
            Some("application/problem+json"),
            "{:#}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("/problems/"))
        );
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        if let Some(field) = field {
            assert_eq!(self.body["field"], field, "field of {:#}", self.body);
        }
        &self.body
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "status of {:#}", self.body);
        &self.body
    }
}

pub struct Options {
    pub allow_http: bool,
    pub max_body_bytes: usize,
    /// Loopback is allowed by default, as receivers in tests live there.
    pub allow_networks: Vec<String>,
    pub lane_concurrency: usize,
    pub lane_queue: usize,
    pub poll_interval_ms: u64,
    pub validation_event: String,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_connections: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_http: true,
            max_body_bytes: 1024 * 1024,
            allow_networks: vec!["127.0.0.0/8".into()],
            lane_concurrency: 4,
            lane_queue: 64,
            poll_interval_ms: 50,
            validation_event: "webhook.validate".into(),
            header_read_timeout_ms: Config::default().header_read_timeout_ms,
            idle_timeout_ms: Config::default().idle_timeout_ms,
            max_connections: Config::default().max_connections,
        }
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> Option<TestApp> {
    herald::telemetry::init_for_tests();
    let db = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await?,
    };
    let admin = format!("hk_test_admin_{}", ulid::Ulid::new());
    let database_url = match &db.target {
        StoreTarget::Sqlite { path } => format!("sqlite://{}", path.display()),
        StoreTarget::Postgres { url } => url.clone(),
    };
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(SecretString::from(database_url.clone())),
        allow_http: options.allow_http,
        max_body_bytes: options.max_body_bytes,
        admin_key: Some(SecretString::from(admin.clone())),
        allow_networks: options.allow_networks,
        lane_concurrency: options.lane_concurrency,
        lane_queue: options.lane_queue,
        poll_interval_ms: options.poll_interval_ms,
        validation_event: options.validation_event,
        header_read_timeout_ms: options.header_read_timeout_ms,
        idle_timeout_ms: options.idle_timeout_ms,
        max_connections: options.max_connections,
        shutdown_grace_seconds: 2,
        ..Config::default()
    };
    let app = App::build(&config).await.expect("the app builds");
    let base = format!("http://{}", app.local_addr());
    let store = app.store();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    Some(TestApp {
        base,
        database_url,
        admin,
        client: reqwest::Client::new(),
        store,
        shutdown,
        _db: db,
    })
}

impl TestApp {
    /// Starts the app's graceful shutdown (as SIGTERM would).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends raw bytes with a given content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(&body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(key), Some(&body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Creates a project as admin; returns its id.
    pub async fn project(&self, name: &str) -> String {
        let reply = self
            .post("/v1/projects", &self.admin, json!({"name": name}))
            .await;
        reply.ok(201)["id"].as_str().unwrap().to_owned()
    }

    pub async fn event_type(&self, project: &str, name: &str) {
        self.post(
            &format!("/v1/projects/{project}/event-types"),
            &self.admin,
            json!({"name": name}),
        )
        .await
        .ok(201);
    }

    /// Creates a webhook as admin with the given extra fields; returns its body.
    pub async fn webhook(&self, project: &str, name: &str, extra: Value) -> Value {
        let mut body = json!({"project": project, "name": name, "url": "http://127.0.0.1:9/hook"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/v1/webhooks", &self.admin, body)
            .await
            .ok(201)
            .clone()
    }

    /// Creates an API key as admin; returns its token.
    pub async fn key(&self, role: &str, project: Option<&str>) -> String {
        let reply = self
            .post(
                "/v1/api-keys",
                &self.admin,
                json!({"name": format!("{role} key"), "role": role, "project": project}),
            )
            .await;
        reply.ok(201)["token"].as_str().unwrap().to_owned()
    }

    /// Everything the store holds, as text: equal before and after means nothing changed.
    pub async fn snapshot(&self) -> String {
        use herald_core::page::PageRequest;
        let all = PageRequest::first(250);
        let store = self.store.as_ref();
        let mut out = String::new();
        let projects = store.list_projects(None, &all).await.unwrap().items;
        out.push_str(&format!("{projects:?}\n"));
        for p in &projects {
            let types = store
                .list_event_types(&p.id, true, &all)
                .await
                .unwrap()
                .items;
            let events = store.list_events(&p.id, None, &all).await.unwrap().items;
            out.push_str(&format!("{types:?}\n{events:?}\n"));
            for e in &events {
                // Which deliveries exist, not their progress: the engine works on them meanwhile.
                let deliveries: Vec<(String, String)> = store
                    .list_event_deliveries(&p.id, &e.id, &all)
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|d| (d.id.to_string(), d.webhook_id.to_string()))
                    .collect();
                out.push_str(&format!("{deliveries:?}\n"));
            }
        }
        let hooks = store
            .list_webhooks(&Default::default(), &all)
            .await
            .unwrap()
            .items;
        let secrets: Vec<&str> = hooks.iter().map(|w| w.secret.expose()).collect();
        out.push_str(&format!("{hooks:?}\n{secrets:?}\n"));
        let keys = store.list_api_keys(&all).await.unwrap().items;
        out.push_str(&format!("{keys:?}\n"));
        out
    }
}

/// Runs each named scenario `async fn(TestApp)` as two tests: on SQLite and on PostgreSQL.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await.unwrap();
                    super::$scenario(app).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await {
                        super::$scenario(app).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both_stores;

impl TestApp {
    /// Publishes an event as admin and returns it (202 asserted).
    pub async fn publish(&self, project: &str, event_type: &str, data: Value) -> Value {
        self.post(
            &format!("/v1/projects/{project}/events"),
            &self.admin,
            json!({"type": event_type, "data": data}),
        )
        .await
        .ok(202)
        .clone()
    }

    /// Reads `path` as admin in short steps until `done` holds for the body, and returns it;
    /// panics with the last body read after `within`.
    pub async fn wait_for(
        &self,
        path: &str,
        within: std::time::Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let body = self.get(path, &self.admin).await.ok(200).clone();
            if done(&body) {
                return body;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("waited {within:?} on {path}; last read: {body:#}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}
