//! Fresh databases for tests: a temporary SQLite file, or a PostgreSQL database created for the
//! test and dropped when it ends (even when it panics).
//!
//! PostgreSQL comes from `HERALD_TEST_DATABASE_URL` (default: the local `test` database as user
//! `postgres`). When it cannot be reached, PostgreSQL tests are skipped — unless
//! `HERALD_TEST_POSTGRES=required` (as `.ci/run` sets), when they fail.

use std::sync::Arc;

use crate::{Store, StoreTarget};

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store on a fresh database, removed on drop.
#[derive(Debug)]
pub struct TestDatabase {
    pub target: StoreTarget,
    _cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Self::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime, which cannot block on itself: use a thread
            // with a runtime of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut conn) =
                            <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await
                        {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .execute(&mut conn)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Self {
            target: StoreTarget::Sqlite {
                path: dir.path().join("herald.db"),
            },
            _cleanup: Cleanup::Dir(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a note on stderr) when PostgreSQL is not
    /// reachable and not required.
    pub async fn postgres() -> Option<Self> {
        let admin_url =
            std::env::var("HERALD_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
        let required = std::env::var("HERALD_TEST_POSTGRES").is_ok_and(|v| v == "required");
        let mut conn = match <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) if !required => {
                eprintln!(
                    "PostgreSQL unreachable ({e}); skipping the PostgreSQL variant of this test"
                );
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL is required (HERALD_TEST_POSTGRES=required) but unreachable: {e}"
            ),
        };
        let name = format!(
            "herald_test_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE for a test");
        let mut url = url::Url::parse(&admin_url).expect("HERALD_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Some(Self {
            target: StoreTarget::Postgres {
                url: url.to_string(),
            },
            _cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    pub async fn connect(&self) -> Arc<dyn Store> {
        crate::connect(&self.target)
            .await
            .expect("the test store opens")
    }
}
