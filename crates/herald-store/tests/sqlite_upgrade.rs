//! An SQLite data directory written by an earlier Herald opens under this one with its data
//! intact: migration 0005 rebuilds `deliveries` (WITHOUT ROWID) and `attempts`, inside the
//! migration's transaction where foreign keys stay on, so a wrong order of its steps would
//! cascade-delete every attempt.

#![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

use herald_core::delivery::DeliveryStatus;
use herald_core::id::{AttemptId, DeliveryId, ProjectId, WebhookId};
use herald_core::page::PageRequest;
use herald_store::sqlite::SqliteStore;
use herald_store::{AttemptQuery, Store};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

#[tokio::test]
async fn deliveries_and_attempts_survive_the_rebuild_and_still_cascade() {
    let dir = tempfile::tempdir().unwrap();
    // The migrations an earlier Herald had run: 0001 to 0004.
    let earlier = dir.path().join("migrations");
    std::fs::create_dir(&earlier).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0005" {
            std::fs::copy(&path, earlier.join(&name)).unwrap();
        }
    }
    let file = dir.path().join("herald.db");
    let (project, webhook) = (ProjectId::new(), WebhookId::new());
    let deliveries = [DeliveryId::new(), DeliveryId::new()];
    let attempt = AttemptId::new();
    {
        let mut old = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .foreign_keys(true)
            .connect()
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(earlier.as_path())
            .await
            .unwrap()
            .run(&mut old)
            .await
            .unwrap();
        let rows = [
            format!(
                "INSERT INTO projects (id, name, created_at, updated_at) VALUES ('{project}', 'p', 1, 1)"
            ),
            format!(
                "INSERT INTO webhooks (id, project_id, name, url, method, headers, custom_data, format, \
                 scheme, timeout_ms, status, secret, created_at, updated_at) VALUES ('{webhook}', \
                 '{project}', 'w', 'https://example.com/hook', 'POST', '{{}}', '{{}}', 'standard', \
                 'standard_webhooks', 30000, 'active', 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0', 1, 1)"
            ),
            format!(
                "INSERT INTO events (project_id, id, event_type, occurred_at, data, created_at) \
                 VALUES ('{project}', 'e1', 'order.paid', 1, '{{\"n\":1}}', 1)"
            ),
            format!(
                "INSERT INTO deliveries (id, project_id, event_id, webhook_id, status, attempts, \
                 next_attempt_at, created_at, updated_at, last_attempt_at) VALUES \
                 ('{}', '{project}', 'e1', '{webhook}', 'succeeded', 1, NULL, 1, 2, 2), \
                 ('{}', '{project}', 'e1', '{webhook}', 'retrying', 1, 5000, 1, 2, 2)",
                deliveries[0], deliveries[1]
            ),
            format!(
                "INSERT INTO attempts (id, delivery_id, webhook_id, project_id, number, trigger_kind, \
                 started_at, duration_ms, request, response, error_kind, error_message, succeeded) \
                 VALUES ('{attempt}', '{}', '{webhook}', '{project}', 1, 'scheduled', 2, 3, \
                 '{{\"method\":\"POST\",\"url\":\"https://example.com/hook\",\"headers\":{{}}}}', \
                 '{{\"status\":200,\"headers\":{{}},\"body\":\"ok\",\"truncated\":false}}', NULL, NULL, TRUE)",
                deliveries[0]
            ),
        ];
        for row in rows {
            sqlx::query(&row).execute(&mut old).await.unwrap();
        }
    }

    let store = SqliteStore::open(&file).await.unwrap();
    let done = store.delivery(&deliveries[0]).await.unwrap();
    assert_eq!((done.status, done.attempts), (DeliveryStatus::Succeeded, 1));
    let due = store.delivery(&deliveries[1]).await.unwrap();
    assert_eq!(due.status, DeliveryStatus::Retrying);
    assert_eq!(due.next_attempt_at.unwrap().timestamp_millis(), 5000);
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let kept = store
        .list_attempts(&AttemptQuery::Delivery(deliveries[0].clone()), &page)
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 1, "the attempt survived the rebuild");
    assert_eq!(kept.items[0].id, attempt);
    assert_eq!(kept.items[0].response.as_ref().unwrap().body, "ok");

    // The rebuilt tables keep their foreign keys: deleting the webhook takes its deliveries,
    // and they take their attempts.
    store.delete_webhook(&webhook).await.unwrap();
    assert!(store.delivery(&deliveries[0]).await.is_err());
    let by_webhook = store
        .list_attempts(&AttemptQuery::Webhook(webhook.clone()), &page)
        .await
        .unwrap();
    assert!(by_webhook.items.is_empty());
}

/// A plain connection with SQLite's defaults, creating the file if needed.
async fn plain_connection(file: &std::path::Path) -> sqlx::SqliteConnection {
    SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap()
}

async fn page_size(file: &std::path::Path) -> i64 {
    sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut plain_connection(file).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_database_gets_the_larger_pages_and_an_earlier_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.db");
    let store = SqliteStore::open(&new).await.unwrap();
    assert_eq!(
        page_size(&new).await,
        i64::from(herald_store::sqlite::PAGE_SIZE)
    );
    drop(store);

    // A database an earlier Herald made, with SQLite's default pages, opens and works as it is.
    let earlier = dir.path().join("earlier.db");
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(&mut plain_connection(&earlier).await)
        .await
        .unwrap();
    assert_eq!(page_size(&earlier).await, 4096);
    let store = SqliteStore::open(&earlier).await.unwrap();
    let project = herald_core::project::Project::new(
        herald_core::project::ProjectName::parse("kept").unwrap(),
        herald_core::time::now(),
    );
    store.create_project(&project).await.unwrap();
    assert_eq!(store.project(&project.id).await.unwrap(), project);
    assert_eq!(page_size(&earlier).await, 4096);
}
