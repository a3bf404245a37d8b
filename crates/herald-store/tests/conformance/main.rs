//! The store conformance suite: one story of everything the engine and the API ask of a store,
//! run against SQLite always and PostgreSQL whenever it is reachable (required in CI).

#![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

use std::collections::BTreeMap;
use std::sync::Arc;

use herald_core::api_key::ApiKey;
use herald_core::attempt::{
    Attempt, AttemptError, AttemptTrigger, ErrorKind, HeaderRecord, ReceivedResponse, SentRequest,
};
use herald_core::auth::Role;
use herald_core::delivery::{Delivery, DeliveryStatus};
use herald_core::event::{Actor, Event, EventId};
use herald_core::event_type::{EventSchema, EventType, EventTypeName};
use herald_core::filter::EventFilter;
use herald_core::id::AttemptId;
use herald_core::id::{ProjectId, WebhookId};
use herald_core::page::PageRequest;
use herald_core::project::{Project, ProjectName};
use herald_core::secret::{ApiKeyToken, SigningSecret};
use herald_core::shape::{Preset, Shape};
use herald_core::time::{self, Timestamp};
use herald_core::webhook::{
    CustomData, CustomHeaders, HttpMethod, RetryPolicy, RotationGrace, TargetUrl, Timeout, Webhook,
    WebhookStatus,
};
use herald_store::testing::TestDatabase;
use herald_store::{
    AttemptQuery, AttemptRecord, Claimed, Discarded, Lease, NewPublish, OutOfOrderRule, Published,
    StatusChange, Store, StoreError, WebhookQuery,
};
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
        previous_secret: None,
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

    let mut renamed = a.clone();
    renamed.name = ProjectName::parse("alpha-2").unwrap();
    renamed.settings.retention_days = Some(7);
    renamed.settings.require_validation = true;
    renamed.settings.validation_event = Some(EventTypeName::parse("Webhook Validate").unwrap());
    renamed.settings.retry_policy = Some(RetryPolicy {
        schedule_seconds: vec![1, 2],
        out_of_order_after_failures: Some(2),
        out_of_order_after_hours: None,
    });
    renamed.updated_at = at(10);
    store.update_project(&renamed).await.unwrap();
    assert_eq!(store.project(&a.id).await.unwrap(), renamed);
    let mut clash = renamed.clone();
    clash.name = b.name.clone();
    assert!(matches!(
        store.update_project(&clash).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut ghost = renamed.clone();
    ghost.id = ProjectId::new();
    ghost.name = ProjectName::parse("ghost").unwrap();
    assert!(matches!(
        store.update_project(&ghost).await,
        Err(StoreError::NotFound { entity: "project" })
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

    // A disabled webhook is still subscribed: its deliveries are made, and held.
    let subscribed = subscribed_ids(store, &p.id).await;
    assert_eq!(
        subscribed,
        vec![envs.id.clone(), all.id.clone(), files.id.clone()]
    );

    // A rotation's previous secret and its expiry round-trip, and clearing them sticks.
    let mut rotated = envs.clone();
    rotated.rotate_secret(
        SigningSecret::generate(),
        at(30),
        RotationGrace::from_seconds(3600).unwrap(),
    );
    rotated.updated_at = at(30);
    store.update_webhook(&rotated).await.unwrap();
    let read = store.webhook(&envs.id).await.unwrap();
    assert_eq!(read, rotated);
    assert_eq!(read.previous_secret.as_ref().unwrap().0, envs.secret);
    assert_eq!(
        read.previous_secret_expires_at(at(31)),
        Some(at(30 + 3_600_000))
    );
    let mut switched = rotated.clone();
    switched.rotate_secret(
        SigningSecret::generate(),
        at(40),
        RotationGrace::from_seconds(0).unwrap(),
    );
    store.update_webhook(&switched).await.unwrap();
    assert_eq!(store.webhook(&envs.id).await.unwrap(), switched);
    assert_eq!(switched.previous_secret, None);
    let mut born_rotating = webhook(&q.id, "born-rotating", None, 5);
    born_rotating.previous_secret = Some((SigningSecret::generate(), at(99)));
    store.create_webhook(&born_rotating).await.unwrap();
    assert_eq!(
        store.webhook(&born_rotating.id).await.unwrap(),
        born_rotating,
        "created with a previous secret"
    );
    store.update_webhook(&envs).await.unwrap();

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

    assert!(
        matches!(
            store.revoke_api_key(&admin.id, at(4)).await,
            Err(StoreError::LastAdminKey)
        ),
        "the last active admin key stays"
    );
    assert_eq!(
        store.api_key_by_token_hash(&token.hash()).await.unwrap(),
        admin,
        "and still works, unrevoked"
    );
    let second = ApiKey::issue(
        "second admin".into(),
        Role::Admin,
        None,
        ApiKeyToken::generate(),
        at(3),
    )
    .unwrap();
    store.create_api_key(&second).await.unwrap();
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
    // A non-admin key goes whatever the admin keys are; the now-last admin key does not.
    store.revoke_api_key(&viewer.id, at(6)).await.unwrap();
    assert!(matches!(
        store.revoke_api_key(&second.id, at(7)).await,
        Err(StoreError::LastAdminKey)
    ));
}

/// Two revocations of the last two active admin keys at once, again and again: exactly one
/// of each pair succeeds and one admin key is always left (on PostgreSQL the two run on two
/// connections, each in its own transaction).
async fn concurrent_revocations_leave_one_admin_key(store: Arc<dyn Store>) {
    let issue = |n: i64| {
        ApiKey::issue(
            format!("admin {n}"),
            Role::Admin,
            None,
            ApiKeyToken::generate(),
            at(n),
        )
        .unwrap()
    };
    let mut survivor = issue(0);
    store.create_api_key(&survivor).await.unwrap();
    for round in 1..=20 {
        let newcomer = issue(round);
        store.create_api_key(&newcomer).await.unwrap();
        let revoke = |key: &ApiKey| {
            let (store, id) = (store.clone(), key.id.clone());
            tokio::spawn(async move { store.revoke_api_key(&id, at(1000 + round)).await })
        };
        let (a, b) = (revoke(&survivor), revoke(&newcomer));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        match (&a, &b) {
            (Ok(_), Err(StoreError::LastAdminKey)) => survivor = newcomer,
            (Err(StoreError::LastAdminKey), Ok(_)) => {}
            _ => panic!("round {round}: exactly one revocation must succeed: {a:?} / {b:?}"),
        }
        let active: Vec<ApiKey> = store
            .list_api_keys(&PageRequest::first(250))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .collect();
        assert_eq!(active, vec![survivor.clone()], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_revocations_leave_one_admin_key() {
    let db = TestDatabase::sqlite();
    concurrent_revocations_leave_one_admin_key(db.connect().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_revocations_leave_one_admin_key() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    concurrent_revocations_leave_one_admin_key(db.connect().await).await;
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

    // A delivery for a webhook deleted since matching is dropped; the event is kept.
    let ghost = event(&p.id, "ghost", "environment.created", 40);
    let gone = vec![Delivery::new(
        p.id.clone(),
        ghost.id.clone(),
        WebhookId::new(),
        ghost.created_at,
    )];
    assert_eq!(
        store.publish(&ghost, &gone).await.unwrap(),
        Published::Created
    );
    let none = store
        .list_event_deliveries(&p.id, &ghost.id, &PageRequest::default())
        .await
        .unwrap();
    assert!(none.items.is_empty());

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
    // A publish into a project deleted since it was resolved stores nothing.
    let late = event(&p.id, "late", "environment.created", 50);
    assert!(matches!(
        store.publish(&late, &[]).await,
        Err(StoreError::NotFound { entity: "project" })
    ));
    assert!(matches!(
        store.event(&p.id, &late.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

fn attempt(d: &Delivery, number: u32, ms: i64, ok: bool) -> Attempt {
    Attempt {
        id: AttemptId::new(),
        delivery_id: d.id.clone(),
        webhook_id: d.webhook_id.clone(),
        project_id: d.project_id.clone(),
        number,
        trigger: AttemptTrigger::Scheduled,
        started_at: at(ms),
        duration_ms: 12,
        request: SentRequest {
            method: "POST".into(),
            url: "https://example.com/hook".into(),
            headers: HeaderRecord::of([("webhook-signature", "<redacted>")]),
        },
        response: Some(ReceivedResponse {
            status: if ok { 200 } else { 500 },
            headers: HeaderRecord::default(),
            body: "body".into(),
            truncated: false,
        }),
        error: (!ok).then(|| AttemptError {
            kind: ErrorKind::Status,
            message: "500".into(),
        }),
        succeeded: ok,
    }
}

fn record(d: &Delivery, a: Attempt, status: DeliveryStatus, next: Option<i64>) -> AttemptRecord {
    AttemptRecord {
        lease_owner: "node-b".into(),
        event_id: d.event_id.clone(),
        delivery_status: status,
        next_attempt_at: next.map(at),
        webhook_change: None,
        delivery_exhausted: status == DeliveryStatus::Failed,
        out_of_order: (!a.succeeded).then_some(OutOfOrderRule {
            after_failed_deliveries: Some(2),
            after_hours: None,
        }),
        attempt: a,
    }
}

fn lease(owner: &str, until: i64) -> Lease {
    Lease {
        owner: owner.into(),
        until: at(until),
    }
}

async fn delivery_engine(store: &dyn Store) {
    let p = project("engine", 1);
    store.create_project(&p).await.unwrap();
    let w = webhook(&p.id, "w", None, 1);
    let other = webhook(&p.id, "other", None, 2);
    store.create_webhook(&w).await.unwrap();
    store.create_webhook(&other).await.unwrap();

    // Leased at publish: nobody else may claim it until the lease ends.
    let e1 = event(&p.id, "e1", "a.b", 100);
    let d1 = Delivery::new(p.id.clone(), e1.id.clone(), w.id.clone(), e1.created_at);
    let publish = NewPublish {
        event: e1.clone(),
        deliveries: vec![(d1.clone(), Some(lease("node-a", 10_000)))],
    };
    let done = store.commit(&[publish], &[], at(100)).await.unwrap();
    assert_eq!(done.published, vec![Published::Created]);
    assert!(
        store
            .claim_due(&w.id, &lease("node-b", 20_000), at(200), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .webhooks_with_due_work(at(200), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // After the lease expires (the node died), another node claims it, with its event.
    assert_eq!(
        store
            .webhooks_with_due_work(at(10_001), None, 10)
            .await
            .unwrap(),
        vec![w.id.clone()]
    );
    let claimed = store
        .claim_due(&w.id, &lease("node-b", 40_000), at(10_001), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed,
        vec![Claimed {
            delivery: d1.clone(),
            event: e1.clone()
        }]
    );

    // A failed attempt schedules a retry and counts in the statistics.
    let a1 = attempt(&d1, 1, 10_002, false);
    let done = store
        .commit(
            &[],
            &[record(
                &d1,
                a1.clone(),
                DeliveryStatus::Retrying,
                Some(20_000),
            )],
            at(10_003),
        )
        .await
        .unwrap();
    assert!(done.out_of_order.is_empty());
    let d = store.delivery(&d1.id).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at),
        (DeliveryStatus::Retrying, 1, Some(at(20_000)))
    );
    let stats = store.webhook_stats(&w.id).await.unwrap();
    assert_eq!(
        (
            stats.events,
            stats.triggers,
            stats.failures,
            stats.failures_since_success
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.next_trigger_at, Some(at(20_000)));
    assert_eq!(stats.last_failure, Some((at(10_002), a1.id.clone())));
    assert_eq!(stats.last_event_at, Some(e1.created_at));
    assert!(
        store
            .claim_due(&w.id, &lease("node-b", 50_000), at(19_999), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_due(&w.id, &lease("node-b", 50_000), at(20_000), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Success clears the run of failures.
    let a2 = attempt(&d1, 2, 20_001, true);
    store
        .commit(
            &[],
            &[record(&d1, a2.clone(), DeliveryStatus::Succeeded, None)],
            at(20_002),
        )
        .await
        .unwrap();
    let stats = store.webhook_stats(&w.id).await.unwrap();
    assert_eq!(
        (
            stats.triggers,
            stats.successes,
            stats.failures,
            stats.failures_since_success
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(stats.last_success, Some((at(20_001), a2.id.clone())));
    assert_eq!(stats.next_trigger_at, None);
    assert_eq!(store.attempt(&a2.id).await.unwrap(), a2);
    let listed = store
        .list_attempts(
            &AttemptQuery::Delivery(d1.id.clone()),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items, vec![a2.clone(), a1.clone()]);
    let by_webhook = store
        .list_attempts(&AttemptQuery::Webhook(w.id.clone()), &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(by_webhook.items, vec![a2.clone()]);
    assert!(by_webhook.next.is_some());

    // Two deliveries failing for good in a row put the webhook out of order, once.
    let mut exhausted = Vec::new();
    for i in 0..2 {
        let e = event(&p.id, &format!("x{i}"), "a.b", 30_000 + i);
        let d = Delivery::new(p.id.clone(), e.id.clone(), w.id.clone(), e.created_at);
        store
            .commit(
                &[NewPublish {
                    event: e,
                    deliveries: vec![(d.clone(), None)],
                }],
                &[],
                at(30_000),
            )
            .await
            .unwrap();
        exhausted.push(record(
            &d,
            attempt(&d, 1, 30_100 + i, false),
            DeliveryStatus::Failed,
            None,
        ));
    }
    let done = store.commit(&[], &exhausted, at(30_200)).await.unwrap();
    assert_eq!(done.out_of_order, vec![w.id.clone()]);
    let gone = store.webhook(&w.id).await.unwrap();
    assert_eq!(gone.status, WebhookStatus::OutOfOrder);
    assert!(
        gone.status_reason
            .unwrap()
            .contains("2 deliveries failed in a row")
    );
    let stats = store.webhook_stats(&w.id).await.unwrap();
    assert_eq!(
        (
            stats.failed_deliveries_in_a_row,
            stats.failures_since_success
        ),
        (2, 2)
    );
    let failed = store
        .list_webhook_deliveries(&w.id, &[DeliveryStatus::Failed], &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 2);

    // Replay: failed deliveries since a time become due again.
    assert_eq!(
        store
            .replay_failed(&w.id, at(30_001), at(40_000))
            .await
            .unwrap(),
        1
    );
    let replayed = store.replay_delivery(&d1.id, at(40_000)).await.unwrap();
    assert_eq!(
        (replayed.status, replayed.attempts),
        (DeliveryStatus::Pending, 2)
    );
    let undelivered = store
        .list_webhook_deliveries(
            &w.id,
            &[DeliveryStatus::Pending, DeliveryStatus::Retrying],
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(undelivered.items.len(), 2);

    // A status change applies only from the listed statuses.
    let e = event(&p.id, "gone", "a.b", 50_000);
    let d = Delivery::new(p.id.clone(), e.id.clone(), other.id.clone(), e.created_at);
    store
        .commit(
            &[NewPublish {
                event: e,
                deliveries: vec![(d.clone(), None)],
            }],
            &[],
            at(50_000),
        )
        .await
        .unwrap();
    let mut r = record(
        &d,
        attempt(&d, 1, 50_001, false),
        DeliveryStatus::Failed,
        None,
    );
    r.webhook_change = Some(StatusChange {
        from: vec![WebhookStatus::Active],
        to: WebhookStatus::Disabled,
        reason: "410 Gone".into(),
    });
    r.out_of_order = None;
    store.commit(&[], &[r], at(50_002)).await.unwrap();
    let disabled = store.webhook(&other.id).await.unwrap();
    assert_eq!(
        (disabled.status, disabled.status_reason.as_deref()),
        (WebhookStatus::Disabled, Some("410 Gone"))
    );

    // Attempts for a delivery deleted meanwhile are dropped, not fatal.
    let orphan = Delivery::new(
        p.id.clone(),
        EventId::parse("nope").unwrap(),
        w.id.clone(),
        at(1),
    );
    store
        .commit(
            &[],
            &[record(
                &orphan,
                attempt(&orphan, 1, 60_000, true),
                DeliveryStatus::Succeeded,
                None,
            )],
            at(60_000),
        )
        .await
        .unwrap();

    // Leases can be given back, one by one or all at once.
    let e = event(&p.id, "lease", "a.b", 70_000);
    let d = Delivery::new(p.id.clone(), e.id.clone(), other.id.clone(), e.created_at);
    store
        .commit(
            &[NewPublish {
                event: e,
                deliveries: vec![(d.clone(), Some(lease("n", 99_999_999)))],
            }],
            &[],
            at(70_000),
        )
        .await
        .unwrap();
    // How many of `other`'s due deliveries `owner` can lease now.
    let claim = |owner: &'static str| {
        let webhook = other.id.clone();
        async move {
            store
                .claim_due(&webhook, &lease(owner, 99_999_999), at(70_001), 5)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(claim("m").await, 0);
    store
        .release("n", std::slice::from_ref(&d.id))
        .await
        .unwrap();
    assert_eq!(claim("m").await, 1);
    // A node restarting under its name takes back only its own leases.
    assert_eq!(store.release_leases_of("someone-else").await.unwrap(), 0);
    assert_eq!(claim("k").await, 0, "still leased to m");
    assert_eq!(store.release_leases_of("m").await.unwrap(), 1);
    assert_eq!(claim("m").await, 1);
    assert!(store.release_all_leases().await.unwrap() >= 1);
    assert_eq!(claim("k").await, 1);

    // The delivery is now leased to "k": a late record from "m", whose lease it no longer
    // holds, leaves it as it is (its attempt is still on record).
    let late = AttemptRecord {
        lease_owner: "m".into(),
        ..record(
            &d,
            attempt(&d, 1, 70_100, false),
            DeliveryStatus::Failed,
            None,
        )
    };
    store.commit(&[], &[late], at(70_200)).await.unwrap();
    let kept = store.delivery(&d.id).await.unwrap();
    assert_eq!((kept.status, kept.attempts), (DeliveryStatus::Pending, 0));

    // Retention: old events go with their deliveries and attempts — but never while a delivery
    // of theirs is still pending or retrying for an active webhook (w is enabled again: it went
    // out of order above). Before the cut-off: e1 (its delivery replayed, pending), x0
    // (failed), x1 (replayed, pending) and "gone" (failed).
    let mut enabled = store.webhook(&w.id).await.unwrap();
    enabled.status = WebhookStatus::Active;
    store.update_webhook(&enabled).await.unwrap();
    let cutoff = at(60_000 + 86_400_000);
    assert_eq!(
        store.prune(cutoff, 1, 1).await.unwrap(),
        1,
        "bounded by the batch size"
    );
    assert_eq!(
        store.prune(cutoff, 1, 1000).await.unwrap(),
        1,
        "x0 and gone, nothing else"
    );
    assert_eq!(store.prune(cutoff, 1, 1000).await.unwrap(), 0);
    assert!(matches!(
        store.attempt(&exhausted[0].attempt.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delivery(&exhausted[0].attempt.delivery_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.delivery(&d1.id).await.unwrap().status,
        DeliveryStatus::Pending
    );
    assert_eq!(store.event(&p.id, &e1.id).await.unwrap(), e1);
}

/// An edit based on a stale read is refused, so it cannot undo a change made meanwhile.
async fn stale_webhook_edits(store: &dyn Store) {
    let p = project("stale", 1);
    store.create_project(&p).await.unwrap();
    let w = webhook(&p.id, "w", None, 1);
    store.create_webhook(&w).await.unwrap();
    // Someone (the engine, on a 410) disables it...
    let mut disabled = w.clone();
    disabled.status = WebhookStatus::Disabled;
    disabled.updated_at = at(5);
    store
        .update_webhook_if_unchanged(&disabled, w.updated_at)
        .await
        .unwrap();
    // ...while a person edits the copy they read before.
    let mut renamed = w.clone();
    renamed.name = "renamed".into();
    renamed.updated_at = at(6);
    assert!(matches!(
        store
            .update_webhook_if_unchanged(&renamed, w.updated_at)
            .await,
        Err(StoreError::Changed { entity: "webhook" })
    ));
    assert_eq!(
        store.webhook(&w.id).await.unwrap().status,
        WebhookStatus::Disabled
    );
    let mut fresh = store.webhook(&w.id).await.unwrap();
    let seen = fresh.updated_at;
    fresh.name = "renamed".into();
    fresh.updated_at = at(7);
    store
        .update_webhook_if_unchanged(&fresh, seen)
        .await
        .unwrap();
    let mut ghost = w.clone();
    ghost.id = WebhookId::new();
    assert!(matches!(
        store
            .update_webhook_if_unchanged(&ghost, w.updated_at)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Two publishes of one id in the same group commit: the first is the event, the second a
/// duplicate of it.
async fn one_id_twice_in_one_batch(store: &dyn Store) {
    let p = project("twice", 1);
    store.create_project(&p).await.unwrap();
    let first = event(&p.id, "same", "a.b", 10);
    let mut second = event(&p.id, "same", "a.b", 11);
    second.data = json!({"other": true});
    let publishes = [
        NewPublish {
            event: first.clone(),
            deliveries: vec![],
        },
        NewPublish {
            event: second,
            deliveries: vec![],
        },
    ];
    let done = store.commit(&publishes, &[], at(20)).await.unwrap();
    assert_eq!(
        done.published,
        vec![
            Published::Created,
            Published::Duplicate(Box::new(first.clone()))
        ]
    );
    assert_eq!(store.event(&p.id, &first.id).await.unwrap(), first);
}

/// The webhooks with due work come a page at a time, in id order.
async fn due_work_is_paged(store: &dyn Store) {
    let p = project("paged", 1);
    store.create_project(&p).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let w = webhook(&p.id, &format!("w{i}"), None, 1);
        store.create_webhook(&w).await.unwrap();
        let e = event(&p.id, &format!("p{i}"), "a.b", 10);
        let d = Delivery::new(p.id.clone(), e.id.clone(), w.id.clone(), e.created_at);
        store
            .commit(
                &[NewPublish {
                    event: e,
                    deliveries: vec![(d, None)],
                }],
                &[],
                at(10),
            )
            .await
            .unwrap();
        ids.push(w.id);
    }
    ids.sort();
    let now = at(1_000_000_000);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .webhooks_with_due_work(now, after.as_ref(), 2)
            .await
            .unwrap();
        let done = page.len() < 2;
        after = page.last().cloned();
        seen.extend(page);
        if done {
            break;
        }
    }
    let mine: Vec<WebhookId> = seen.into_iter().filter(|w| ids.contains(w)).collect();
    assert_eq!(mine, ids, "every webhook once, in id order");
}

/// Claims running at the same time never hand out the same delivery.
async fn concurrent_claims_never_overlap(store: Arc<dyn Store>) {
    let p = project("claims", 1);
    store.create_project(&p).await.unwrap();
    let w = webhook(&p.id, "w", None, 1);
    store.create_webhook(&w).await.unwrap();
    let publishes: Vec<NewPublish> = (0..60)
        .map(|i| {
            let e = event(&p.id, &format!("c{i}"), "a.b", 100 + i);
            let d = Delivery::new(p.id.clone(), e.id.clone(), w.id.clone(), e.created_at);
            NewPublish {
                event: e,
                deliveries: vec![(d, None)],
            }
        })
        .collect();
    store.commit(&publishes, &[], at(200)).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..6 {
        let store = store.clone();
        let id = w.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_due(&id, &lease(&format!("node-{n}"), 1_000_000), at(300), 15)
                .await
                .unwrap()
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        for c in t.await.unwrap() {
            assert!(seen.insert(c.delivery.id.clone()), "claimed twice");
        }
    }
    assert_eq!(seen.len(), 60);
}

/// The account-level secret is stored by the first call and never changes after.
async fn account_secret(store: &dyn Store) {
    let first = SigningSecret::generate();
    let stored = store.account_secret(&first).await.unwrap();
    assert_eq!(stored, first, "the first call stores its candidate");
    let again = store
        .account_secret(&SigningSecret::generate())
        .await
        .unwrap();
    assert_eq!(again, first, "later calls keep the first secret");
    // An admin's rotation replaces it for every later reader.
    let rotated = SigningSecret::generate();
    store.set_account_secret(&rotated).await.unwrap();
    let read = store
        .account_secret(&SigningSecret::generate())
        .await
        .unwrap();
    assert_eq!(read, rotated);
}

/// The ids of a project's subscribed webhooks, in the store's order.
async fn subscribed_ids(store: &dyn Store, project: &ProjectId) -> Vec<WebhookId> {
    store
        .subscribed_webhooks(project)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect()
}

/// The whole story, in order, on one store.
async fn store_story(store: Arc<dyn Store>) {
    account_secret(store.as_ref()).await;
    projects(store.as_ref()).await;
    api_keys(store.as_ref()).await;
    event_types(store.as_ref()).await;
    webhooks(store.as_ref()).await;
    publishing(store.as_ref()).await;
    delivery_engine(store.as_ref()).await;
    one_id_twice_in_one_batch(store.as_ref()).await;
    stale_webhook_edits(store.as_ref()).await;
    due_work_is_paged(store.as_ref()).await;
    retention_per_project(store.as_ref()).await;
    held_deliveries(store.as_ref()).await;
    concurrent_claims_never_overlap(store).await;
}

/// A disabled or out-of-order webhook holds its deliveries: it is subscribed, its deliveries
/// are counted as held, nobody claims them, a person may discard them (only while they are
/// held, and not one being sent), and they keep no event past its retention.
async fn held_deliveries(store: &dyn Store) {
    const DAY: i64 = 86_400_000;
    let p = project("held", 1);
    store.create_project(&p).await.unwrap();
    let mut paused = webhook(&p.id, "paused", None, 1);
    paused.status = WebhookStatus::Disabled;
    let mut broken = webhook(&p.id, "broken", None, 2);
    broken.status = WebhookStatus::OutOfOrder;
    let live = webhook(&p.id, "live", None, 3);
    let mut waiting = webhook(&p.id, "waiting", None, 4);
    waiting.status = WebhookStatus::Pending;
    for w in [&paused, &broken, &live, &waiting] {
        store.create_webhook(w).await.unwrap();
    }
    let subscribed = subscribed_ids(store, &p.id).await;
    assert_eq!(
        subscribed,
        vec![paused.id.clone(), broken.id.clone(), live.id.clone()],
        "every status but pending (awaiting validation)"
    );

    // Three events, each delivered to the three subscribed webhooks.
    let mut deliveries: BTreeMap<&str, Vec<Delivery>> = BTreeMap::new();
    let mut events = Vec::new();
    for (i, ms) in [10, 20, 30].into_iter().enumerate() {
        let e = event(&p.id, &format!("held-{i}"), "a.b", ms);
        let made: Vec<(Delivery, Option<Lease>)> = [&paused, &broken, &live]
            .into_iter()
            .map(|w| {
                let d = Delivery::new(p.id.clone(), e.id.clone(), w.id.clone(), e.created_at);
                deliveries
                    .entry(w.name.as_str())
                    .or_default()
                    .push(d.clone());
                (d, None)
            })
            .collect();
        let publish = NewPublish {
            event: e.clone(),
            deliveries: made,
        };
        store.commit(&[publish], &[], at(ms)).await.unwrap();
        events.push(e);
    }
    let all_four = [
        paused.id.clone(),
        broken.id.clone(),
        live.id.clone(),
        waiting.id.clone(),
    ];
    let held = store.held_deliveries(&all_four).await.unwrap();
    assert_eq!(
        held,
        [(paused.id.clone(), 3), (broken.id.clone(), 3)].into(),
        "an active webhook holds nothing"
    );
    // Only the active webhook has work due: held deliveries wait.
    let due: Vec<WebhookId> = store
        .webhooks_with_due_work(at(1_000), None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|w| all_four.contains(w))
        .collect();
    assert_eq!(due, vec![live.id.clone()]);

    // Discarding before a time takes the held deliveries created before it, and only those.
    assert_eq!(
        store
            .discard_held(&paused.id, Some(at(20)), at(100))
            .await
            .unwrap(),
        Discarded::Count(1)
    );
    let first = store.delivery(&deliveries["paused"][0].id).await.unwrap();
    assert_eq!(
        (first.status, first.next_attempt_at),
        (DeliveryStatus::Discarded, None)
    );
    assert_eq!(
        store
            .delivery(&deliveries["paused"][1].id)
            .await
            .unwrap()
            .status,
        DeliveryStatus::Pending
    );
    // A late record cannot bring a discarded delivery back.
    let late = record(
        &first,
        attempt(&first, 1, 110, false),
        DeliveryStatus::Retrying,
        Some(5_000),
    );
    store.commit(&[], &[late], at(120)).await.unwrap();
    assert_eq!(
        store.delivery(&first.id).await.unwrap().status,
        DeliveryStatus::Discarded
    );
    // Nothing is held by an active or a pending webhook; a missing one is not found.
    assert_eq!(
        store.discard_held(&live.id, None, at(100)).await.unwrap(),
        Discarded::NotHeld(WebhookStatus::Active)
    );
    assert_eq!(
        store
            .discard_held(&waiting.id, None, at(100))
            .await
            .unwrap(),
        Discarded::NotHeld(WebhookStatus::Pending)
    );
    assert!(matches!(
        store.discard_held(&WebhookId::new(), None, at(100)).await,
        Err(StoreError::NotFound { .. })
    ));
    // A delivery under a live lease is being sent: discarding everything leaves it alone.
    let sending = store
        .claim_due(&broken.id, &lease("node-t", 10_000), at(100), 1)
        .await
        .unwrap();
    assert_eq!(sending.len(), 1);
    assert_eq!(
        store.discard_held(&broken.id, None, at(200)).await.unwrap(),
        Discarded::Count(2)
    );
    assert_eq!(
        store
            .delivery(&sending[0].delivery.id)
            .await
            .unwrap()
            .status,
        DeliveryStatus::Pending
    );
    let held = store.held_deliveries(&all_four).await.unwrap();
    assert_eq!(
        held,
        [(paused.id.clone(), 2), (broken.id.clone(), 1)].into()
    );
    // The bulk replay of failures leaves discarded deliveries be; replaying one brings it back.
    assert_eq!(
        store
            .replay_failed(&paused.id, at(0), at(300))
            .await
            .unwrap(),
        0
    );
    let back = store.replay_delivery(&first.id, at(300)).await.unwrap();
    assert_eq!(back.status, DeliveryStatus::Pending);
    assert_eq!(
        store.held_deliveries(&all_four).await.unwrap()[&paused.id],
        3
    );

    // Retention: the active webhook's pending deliveries keep the three events...
    let cutoff = at(30 + 2 * DAY);
    let kept = |e: &Event| {
        let (project, id) = (e.project_id.clone(), e.id.clone());
        async move { store.event(&project, &id).await.is_ok() }
    };
    while store.prune(cutoff, 1, 1000).await.unwrap() > 0 {}
    for e in &events {
        assert!(kept(e).await, "{} has a delivery on its way", e.id.as_str());
    }
    // ...and once those are delivered, the deliveries the paused webhooks hold do not.
    let delivered: Vec<AttemptRecord> = deliveries["live"]
        .iter()
        .map(|d| record(d, attempt(d, 1, 400, true), DeliveryStatus::Succeeded, None))
        .collect();
    store.commit(&[], &delivered, at(400)).await.unwrap();
    while store.prune(cutoff, 1, 1000).await.unwrap() > 0 {}
    for e in &events {
        assert!(!kept(e).await, "{} is past its retention", e.id.as_str());
    }
    assert!(store.held_deliveries(&all_four).await.unwrap().is_empty());
}

/// Each project's own retention, beside the server's default: an event older than the
/// shortest retention of all but within its own project's stays.
async fn retention_per_project(store: &dyn Store) {
    const DAY: i64 = 86_400_000;
    let now = 10_000 * DAY;
    let mut short = project("short-lived", now - 40 * DAY);
    short.settings.retention_days = Some(1);
    store.create_project(&short).await.unwrap();
    let long = project("long-lived", now - 40 * DAY);
    store.create_project(&long).await.unwrap();
    let events = [
        event(&short.id, "short-old", "a.b", now - 2 * DAY),
        event(&short.id, "short-new", "a.b", now - DAY / 2),
        event(&long.id, "long-mid", "a.b", now - 2 * DAY),
        event(&long.id, "long-old", "a.b", now - 31 * DAY),
    ];
    let publishes: Vec<NewPublish> = events
        .iter()
        .map(|e| NewPublish {
            event: e.clone(),
            deliveries: vec![],
        })
        .collect();
    store
        .commit(&publishes, &[], at(now - DAY / 2))
        .await
        .unwrap();
    while store.prune(at(now), 30, 1000).await.unwrap() > 0 {}
    let kept = |e: &Event| {
        let (project, id) = (e.project_id.clone(), e.id.clone());
        async move { store.event(&project, &id).await.is_ok() }
    };
    assert!(!kept(&events[0]).await, "past its project's one day");
    assert!(kept(&events[1]).await, "within its project's one day");
    assert!(
        kept(&events[2]).await,
        "past one day, within the default 30"
    );
    assert!(!kept(&events[3]).await, "past the default 30 days");
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
    let secret = SigningSecret::generate();
    {
        let store = db.connect().await;
        store.account_secret(&secret).await.unwrap();
    }
    let reopened = db.connect().await;
    assert_eq!(reopened.project(&p.id).await.unwrap(), p);
    let kept = reopened
        .account_secret(&SigningSecret::generate())
        .await
        .unwrap();
    assert_eq!(kept, secret, "the account secret survives a restart");
}

#[tokio::test]
async fn a_second_store_on_the_same_sqlite_file_is_refused_while_the_first_lives() {
    let db = TestDatabase::sqlite();
    let first = db.connect().await;
    let second = herald_store::connect(&db.target).await;
    assert!(
        matches!(second, Err(StoreError::InUse { .. })),
        "{second:?}"
    );
    drop(first);
    assert!(herald_store::connect(&db.target).await.is_ok());
}
