//! The store conformance suite: one story of everything the engine and the API ask of a store,
//! run against SQLite always and PostgreSQL whenever it is reachable (required in CI).

use std::collections::BTreeMap;
use std::sync::Arc;

use herald_core::api_key::ApiKey;
use herald_core::auth::Role;
use herald_core::delivery::{Delivery, DeliveryStatus};
use herald_core::event::{Actor, Event, EventId};
use herald_core::event_type::{EventSchema, EventType, EventTypeName};
use herald_core::filter::EventFilter;
use herald_core::id::{ProjectId, WebhookId};
use herald_core::page::PageRequest;
use herald_core::project::{Project, ProjectName};
use herald_core::secret::{ApiKeyToken, SigningSecret};
use herald_core::shape::{Preset, Shape};
use herald_core::time::{self, Timestamp};
use herald_core::webhook::{
    CustomData, CustomHeaders, HttpMethod, RetryPolicy, TargetUrl, Timeout, Webhook, WebhookStatus,
};
use herald_store::testing::TestDatabase;
use herald_store::{Published, Store, StoreError, WebhookQuery};
use serde_json::json;

fn at(ms: i64) -> Timestamp {
    time::from_millis(1_700_000_000_000 + ms)
}

fn project(name: &str, ms: i64) -> Project {
    Project::new(ProjectName::parse(name).unwrap(), at(ms))
}

fn webhook(project: &ProjectId, name: &str, events: Option<&[&str]>, ms: i64) -> Webhook {
    let shape = Shape::resolve(Some(Preset::Github), None, None);
    let events: Option<Vec<String>> = events.map(|e| e.iter().map(|s| s.to_string()).collect());
    Webhook {
        id: WebhookId::new(),
        project_id: project.clone(),
        name: name.into(),
        description: Some("desc".into()),
        url: TargetUrl::parse("https://example.com/hook?a=1", false).unwrap(),
        method: HttpMethod::Get,
        filter: EventFilter::parse(events.as_deref()).unwrap(),
        headers: CustomHeaders::parse(BTreeMap::from([("X-Tenant".into(), "t1".into())]), &shape)
            .unwrap(),
        custom_data: CustomData::parse(json!({"purpose": "demo"})).unwrap(),
        shape,
        timeout: Timeout::from_seconds(12).unwrap(),
        retry_policy: Some(RetryPolicy {
            schedule_seconds: vec![5, 300],
            out_of_order_after_failures: Some(3),
            out_of_order_after_hours: None,
        }),
        status: WebhookStatus::Active,
        status_reason: None,
        secret: SigningSecret::generate(),
        created_at: at(ms),
        updated_at: at(ms),
    }
}

fn event(project: &ProjectId, id: &str, event_type: &str, ms: i64) -> Event {
    Event {
        id: EventId::parse(id).unwrap(),
        project_id: project.clone(),
        event_type: EventTypeName::parse(event_type).unwrap(),
        occurred_at: at(ms - 5),
        data: json!({"environmentId": "env-1", "n": 1.5}),
        actor: Some(Actor {
            id: Some("u1".into()),
            email: Some("a@b.c".into()),
        }),
        created_at: at(ms),
    }
}

async fn projects(store: &dyn Store) {
    let a = project("alpha", 1);
    let b = project("beta", 2);
    store.create_project(&a).await.unwrap();
    store.create_project(&b).await.unwrap();
    assert_eq!(store.project(&a.id).await.unwrap(), a);
    assert_eq!(store.project_by_name(&a.name).await.unwrap(), a);
    assert!(matches!(
        store.create_project(&project("alpha", 3)).await,
        Err(StoreError::Conflict { field: "name", .. })
    ));

    let page = store
        .list_projects(None, &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(page.items, vec![b.clone()], "newest first");
    let next = PageRequest {
        limit: 1,
        after: page.next,
    };
    let page = store.list_projects(None, &next).await.unwrap();
    assert_eq!(page.items, vec![a.clone()]);
    assert!(page.next.is_none());
    let only = store
        .list_projects(Some(&a.id), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(only.items, vec![a.clone()]);

    let renamed = store
        .rename_project(&a.id, &ProjectName::parse("alpha-2").unwrap(), at(10))
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "alpha-2");
    assert_eq!(renamed.updated_at, at(10));
    assert!(matches!(
        store.rename_project(&a.id, &b.name, at(11)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .rename_project(&ProjectId::new(), &b.name, at(11))
            .await,
        Err(StoreError::NotFound { entity: "project" }) | Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.project(&ProjectId::new()).await,
        Err(StoreError::NotFound { entity: "project" })
    ));
}

async fn event_types(store: &dyn Store) {
    let p = project("types", 1);
    store.create_project(&p).await.unwrap();
    let mut t = EventType {
        project_id: p.id.clone(),
        name: EventTypeName::parse("environment.suspended").unwrap(),
        description: Some("An environment was suspended".into()),
        schema: Some(EventSchema::parse(json!({"type": "object"})).unwrap()),
        archived: false,
        created_at: at(1),
        updated_at: at(1),
    };
    store.create_event_type(&t).await.unwrap();
    assert!(matches!(
        store.create_event_type(&t).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.event_type(&p.id, &t.name).await.unwrap(), t);

    let mut other = t.clone();
    other.name = EventTypeName::parse("Webhook Validate").unwrap();
    other.created_at = at(2);
    other.schema = None;
    store.create_event_type(&other).await.unwrap();

    t.archived = true;
    t.description = None;
    t.updated_at = at(5);
    store.update_event_type(&t).await.unwrap();
    assert_eq!(store.event_type(&p.id, &t.name).await.unwrap(), t);

    let live = store
        .list_event_types(&p.id, false, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(live.items, vec![other.clone()]);
    let all = store
        .list_event_types(&p.id, true, &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(all.items, vec![other.clone()]);
    let rest = store
        .list_event_types(
            &p.id,
            true,
            &PageRequest {
                limit: 1,
                after: all.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![t.clone()]);

    let missing = ProjectId::new();
    let mut orphan = t.clone();
    orphan.project_id = missing;
    assert!(matches!(
        store.create_event_type(&orphan).await,
        Err(StoreError::NotFound { entity: "project" })
    ));
}

async fn webhooks(store: &dyn Store) {
    let p = project("hooks", 1);
    let q = project("hooks-other", 2);
    store.create_project(&p).await.unwrap();
    store.create_project(&q).await.unwrap();
    let envs = webhook(&p.id, "envs", Some(&["environment.*"]), 1);
    let all = webhook(&p.id, "all", None, 2);
    let files = webhook(&p.id, "files", Some(&["file.uploaded"]), 3);
    let elsewhere = webhook(&q.id, "envs", Some(&["environment.*"]), 4);
    for w in [&envs, &all, &files, &elsewhere] {
        store.create_webhook(w).await.unwrap();
    }
    assert_eq!(
        store.webhook(&envs.id).await.unwrap(),
        envs,
        "every field round-trips"
    );
    assert!(matches!(
        store.create_webhook(&webhook(&p.id, "envs", None, 9)).await,
        Err(StoreError::Conflict { field: "name", .. })
    ));

    let in_p = WebhookQuery {
        project: Some(p.id.clone()),
        ..Default::default()
    };
    let listed = store
        .list_webhooks(&in_p, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![files.clone(), all.clone(), envs.clone()]);

    let by_type = WebhookQuery {
        project: Some(p.id.clone()),
        event_type: Some(EventTypeName::parse("environment.created").unwrap()),
        ..Default::default()
    };
    let first = store
        .list_webhooks(&by_type, &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(first.items, vec![all.clone()]);
    let second = store
        .list_webhooks(
            &by_type,
            &PageRequest {
                limit: 1,
                after: first.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items, vec![envs.clone()]);
    assert!(second.next.is_none());

    let mut disabled = files.clone();
    disabled.status = WebhookStatus::Disabled;
    disabled.status_reason = Some("disabled by key_x".into());
    disabled.name = "files-renamed".into();
    disabled.updated_at = at(20);
    store.update_webhook(&disabled).await.unwrap();
    assert_eq!(store.webhook(&files.id).await.unwrap(), disabled);
    let only_disabled = WebhookQuery {
        status: Some(WebhookStatus::Disabled),
        ..Default::default()
    };
    let listed = store
        .list_webhooks(&only_disabled, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![disabled.clone()]);

    let active: Vec<WebhookId> = store
        .active_webhooks(&p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(active, vec![envs.id.clone(), all.id.clone()]);

    let mut clash = disabled.clone();
    clash.name = "envs".into();
    assert!(matches!(
        store.update_webhook(&clash).await,
        Err(StoreError::Conflict { .. })
    ));
    store.delete_webhook(&all.id).await.unwrap();
    assert!(matches!(
        store.webhook(&all.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_webhook(&all.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn api_keys(store: &dyn Store) {
    assert!(!store.has_api_keys().await.unwrap());
    let p = project("keys", 1);
    store.create_project(&p).await.unwrap();
    let token = ApiKeyToken::generate();
    let admin = ApiKey::issue("admin".into(), Role::Admin, None, token.clone(), at(1)).unwrap();
    let viewer = ApiKey::issue(
        "viewer".into(),
        Role::ProjectViewer,
        Some(p.id.clone()),
        ApiKeyToken::generate(),
        at(2),
    )
    .unwrap();
    store.create_api_key(&admin).await.unwrap();
    store.create_api_key(&viewer).await.unwrap();
    assert!(store.has_api_keys().await.unwrap());
    assert_eq!(
        store.api_key_by_token_hash(&token.hash()).await.unwrap(),
        admin
    );
    let listed = store.list_api_keys(&PageRequest::default()).await.unwrap();
    assert_eq!(listed.items, vec![viewer.clone(), admin.clone()]);

    let revoked = store.revoke_api_key(&admin.id, at(5)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at(5)));
    let again = store.revoke_api_key(&admin.id, at(9)).await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at(5)),
        "the first revocation time stays"
    );
    assert!(matches!(
        store.api_key_by_token_hash(&token.hash()).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn publishing(store: &dyn Store) {
    let p = project("events", 1);
    store.create_project(&p).await.unwrap();
    let w1 = webhook(&p.id, "one", None, 1);
    let w2 = webhook(&p.id, "two", None, 2);
    store.create_webhook(&w1).await.unwrap();
    store.create_webhook(&w2).await.unwrap();

    let e = event(&p.id, "order-1", "environment.suspended", 10);
    let deliveries = vec![
        Delivery::new(p.id.clone(), e.id.clone(), w1.id.clone(), e.created_at),
        Delivery::new(p.id.clone(), e.id.clone(), w2.id.clone(), e.created_at),
    ];
    assert_eq!(
        store.publish(&e, &deliveries).await.unwrap(),
        Published::Created
    );
    assert_eq!(store.event(&p.id, &e.id).await.unwrap(), e);

    let mut replay = event(&p.id, "order-1", "other.type", 20);
    replay.data = json!({"different": true});
    let more = vec![Delivery::new(
        p.id.clone(),
        replay.id.clone(),
        w1.id.clone(),
        replay.created_at,
    )];
    assert_eq!(
        store.publish(&replay, &more).await.unwrap(),
        Published::Duplicate(Box::new(e.clone())),
        "the same id returns the first event"
    );

    let listed = store
        .list_event_deliveries(&p.id, &e.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2, "the duplicate created no delivery");
    assert!(
        listed
            .items
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0)
    );
    let mut ids: Vec<_> = listed.items.iter().map(|d| d.id.clone()).collect();
    let mut expected: Vec<_> = deliveries.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);

    // Many deliveries in one event: more than one insert batch.
    let wide = event(&p.id, "wide", "environment.created", 30);
    let hooks: Vec<Webhook> = (0..3)
        .map(|i| webhook(&p.id, &format!("w{i}"), None, 30 + i))
        .collect();
    for h in &hooks {
        store.create_webhook(h).await.unwrap();
    }
    let many: Vec<Delivery> = (0..1200)
        .map(|i| {
            Delivery::new(
                p.id.clone(),
                wide.id.clone(),
                hooks[i % 3].id.clone(),
                wide.created_at,
            )
        })
        .collect();
    store.publish(&wide, &many).await.unwrap();
    let mut seen = 0;
    let mut page = PageRequest::first(250);
    loop {
        let got = store
            .list_event_deliveries(&p.id, &wide.id, &page)
            .await
            .unwrap();
        seen += got.items.len();
        match got.next {
            Some(next) => {
                page = PageRequest {
                    limit: 250,
                    after: Some(next),
                }
            }
            None => break,
        }
    }
    assert_eq!(seen, 1200, "pagination visits every delivery exactly once");

    let events = store
        .list_events(&p.id, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        events
            .items
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["wide", "order-1"]
    );
    let by_type = store
        .list_events(
            &p.id,
            Some(&EventTypeName::parse("environment.suspended").unwrap()),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(by_type.items, vec![e.clone()]);

    // A publish whose delivery names a webhook that is gone commits nothing.
    let ghost = event(&p.id, "ghost", "environment.created", 40);
    let bad = vec![Delivery::new(
        p.id.clone(),
        ghost.id.clone(),
        WebhookId::new(),
        ghost.created_at,
    )];
    assert!(store.publish(&ghost, &bad).await.is_err());
    assert!(matches!(
        store.event(&p.id, &ghost.id).await,
        Err(StoreError::NotFound { .. })
    ));

    // Deleting the project removes everything in it.
    store.delete_project(&p.id).await.unwrap();
    assert!(matches!(
        store.event(&p.id, &e.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.webhook(&w1.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .list_event_deliveries(&p.id, &e.id, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        store.delete_project(&p.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The whole story, in order, on one store.
async fn store_story(store: Arc<dyn Store>) {
    projects(store.as_ref()).await;
    api_keys(store.as_ref()).await;
    event_types(store.as_ref()).await;
    webhooks(store.as_ref()).await;
    publishing(store.as_ref()).await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_the_whole_story() {
    let db = TestDatabase::sqlite();
    store_story(db.connect().await).await;
}

#[tokio::test]
async fn the_postgres_store_keeps_the_whole_story() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    store_story(db.connect().await).await;
}

#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let db = TestDatabase::sqlite();
    let p = project("durable", 1);
    {
        let store = db.connect().await;
        store.create_project(&p).await.unwrap();
    }
    let reopened = db.connect().await;
    assert_eq!(reopened.project(&p.id).await.unwrap(), p);
}
