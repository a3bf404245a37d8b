//! Authentication, roles and tenant isolation.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, on_both_stores};

async fn requests_without_a_valid_key_are_unauthorized(app: TestApp) {
    let no_key = app.call(Method::GET, "/v1/projects", None, None).await;
    no_key.problem(401, None);
    assert_eq!(no_key.headers["www-authenticate"], "Bearer");
    app.get("/v1/projects", "hk_not_a_real_key")
        .await
        .problem(401, None);
    let basic = app
        .client
        .get(format!("{}/v1/projects", app.base))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    let project = app.project("p").await;
    let key = app.key("project_viewer", Some(&project)).await;
    app.get("/v1/projects", &key).await.ok(200);
    let keys = app.get("/v1/api-keys", &app.admin).await;
    let id = keys.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "project_viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = app.delete(&format!("/v1/api-keys/{id}"), &app.admin).await;
    assert!(revoked.ok(200)["revoked_at"].is_string());
    app.get("/v1/projects", &key).await.problem(401, None);

    // Health and the OpenAPI document need no key.
    app.call(Method::GET, "/health", None, None).await.ok(200);
    app.call(Method::GET, "/v1/openapi.json", None, None)
        .await
        .ok(200);
}

async fn a_key_scoped_to_one_project_can_neither_read_nor_change_nor_learn_of_another(
    app: TestApp,
) {
    let a = app.project("project-a").await;
    let b = app.project("project-b").await;
    app.event_type(&b, "thing.happened").await;
    let hook_b = app.webhook(&b, "b-hook", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/projects/{b}/events"),
        &app.admin,
        json!({"id": "b-1", "type": "thing.happened", "data": {}}),
    )
    .await
    .ok(202);
    let key = app.key("project_admin", Some(&a)).await;
    let before = app.snapshot().await;

    // Everything about B answers exactly as if it did not exist.
    let missing_project = app.get("/v1/projects/project-zzz", &key).await;
    let missing_body = missing_project.problem(404, None).clone();
    for path in [
        format!("/v1/projects/{b}"),
        "/v1/projects/project-b".to_owned(),
        format!("/v1/projects/{b}/event-types"),
        format!("/v1/projects/{b}/event-types/thing.happened"),
        format!("/v1/projects/{b}/events"),
        format!("/v1/projects/{b}/events/b-1"),
        format!("/v1/projects/{b}/events/b-1/deliveries"),
        format!("/v1/webhooks?project={b}"),
    ] {
        let reply = app.get(&path, &key).await;
        assert_eq!(reply.body, missing_body, "{path}");
    }
    app.get(&format!("/v1/webhooks/{hook_b}"), &key)
        .await
        .problem(404, None);
    app.get(&format!("/v1/webhooks/{hook_b}/secret"), &key)
        .await
        .problem(404, None);
    app.patch(
        &format!("/v1/webhooks/{hook_b}"),
        &key,
        json!({"name": "mine now"}),
    )
    .await
    .problem(404, None);
    app.post(&format!("/v1/webhooks/{hook_b}/disable"), &key, json!({}))
        .await
        .problem(404, None);
    app.post(
        &format!("/v1/webhooks/{hook_b}/secret/rotate"),
        &key,
        json!({}),
    )
    .await
    .problem(404, None);
    app.delete(&format!("/v1/webhooks/{hook_b}"), &key)
        .await
        .problem(404, None);
    app.post(
        &format!("/v1/projects/{b}/events"),
        &key,
        json!({"type": "thing.happened", "data": {}}),
    )
    .await
    .problem(404, None);
    app.post(
        &format!("/v1/projects/{b}/event-types"),
        &key,
        json!({"name": "x.y"}),
    )
    .await
    .problem(404, None);
    app.post(
        "/v1/webhooks",
        &key,
        json!({"project": b, "name": "sneaky", "url": "http://127.0.0.1:9/"}),
    )
    .await
    .problem(404, None);

    // Lists show only A.
    let projects = app.get("/v1/projects", &key).await;
    let ids: Vec<&str> = projects.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    let hooks = app.get("/v1/webhooks", &key).await;
    assert_eq!(hooks.ok(200)["data"], json!([]));
    assert_eq!(app.snapshot().await, before, "nothing in B changed");

    // A scoped key creating a webhook without naming a project gets its own.
    app.event_type(&a, "thing.happened").await;
    let own = app
        .post(
            "/v1/webhooks",
            &key,
            json!({"name": "mine", "url": "http://127.0.0.1:9/"}),
        )
        .await;
    assert_eq!(own.ok(201)["project_id"], a.as_str());
}

async fn a_publisher_publishes_and_reads_nothing(app: TestApp) {
    let p = app.project("pub").await;
    app.event_type(&p, "a.b").await;
    let hook = app.webhook(&p, "h", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = app.key("publisher", Some(&p)).await;
    app.post(
        &format!("/v1/projects/{p}/events"),
        &key,
        json!({"id": "e1", "type": "a.b", "data": {}}),
    )
    .await
    .ok(202);
    for path in [
        "/v1/webhooks".to_owned(),
        format!("/v1/webhooks/{hook}"),
        format!("/v1/projects/{p}/events"),
        format!("/v1/projects/{p}/events/e1"),
        format!("/v1/projects/{p}/event-types"),
        format!("/v1/projects/{p}"),
        "/v1/api-keys".to_owned(),
    ] {
        app.get(&path, &key).await.problem(403, None);
    }
}

async fn a_project_viewer_never_sees_a_secret(app: TestApp) {
    let p = app.project("view").await;
    let hook = app.webhook(&p, "h", json!({})).await;
    let id = hook["id"].as_str().unwrap();
    let secret = hook["secret"].as_str().unwrap();
    let viewer = app.key("project_viewer", Some(&p)).await;
    let got = app.get(&format!("/v1/webhooks/{id}"), &viewer).await;
    assert!(got.ok(200).get("secret").is_none());
    let listed = app.get("/v1/webhooks", &viewer).await;
    assert!(!listed.ok(200).to_string().contains(secret));
    app.get(&format!("/v1/webhooks/{id}/secret"), &viewer)
        .await
        .problem(403, None);
    app.post(
        &format!("/v1/webhooks/{id}/secret/rotate"),
        &viewer,
        json!({}),
    )
    .await
    .problem(403, None);
    app.patch(&format!("/v1/webhooks/{id}"), &viewer, json!({"name": "x"}))
        .await
        .problem(403, None);
    app.post(
        "/v1/webhooks",
        &viewer,
        json!({"name": "x", "url": "http://127.0.0.1:9/"}),
    )
    .await
    .problem(403, None);

    // The project admin does see it.
    let admin = app.key("project_admin", Some(&p)).await;
    let got = app.get(&format!("/v1/webhooks/{id}/secret"), &admin).await;
    assert_eq!(got.ok(200)["secret"], secret);
}

async fn only_admins_manage_projects_and_keys(app: TestApp) {
    let p = app.project("adm").await;
    let project_admin = app.key("project_admin", Some(&p)).await;
    let before = app.snapshot().await;
    app.post("/v1/projects", &project_admin, json!({"name": "new"}))
        .await
        .problem(403, None);
    app.patch(
        &format!("/v1/projects/{p}"),
        &project_admin,
        json!({"name": "renamed"}),
    )
    .await
    .problem(403, None);
    app.delete(&format!("/v1/projects/{p}"), &project_admin)
        .await
        .problem(403, None);
    app.post(
        "/v1/api-keys",
        &project_admin,
        json!({"name": "k", "role": "admin"}),
    )
    .await
    .problem(403, None);
    app.get("/v1/api-keys", &project_admin)
        .await
        .problem(403, None);
    assert_eq!(app.snapshot().await, before);
}

async fn api_keys_are_validated_and_shown_once(app: TestApp) {
    let p = app.project("keys").await;
    let before = app.snapshot().await;
    let admin = app.admin.clone();
    app.post(
        "/v1/api-keys",
        &admin,
        json!({"name": "k", "role": "admin", "project": p}),
    )
    .await
    .problem(422, Some("project"));
    app.post(
        "/v1/api-keys",
        &admin,
        json!({"name": "k", "role": "publisher"}),
    )
    .await
    .problem(422, Some("project"));
    app.post("/v1/api-keys", &admin, json!({"name": "k", "role": "root"}))
        .await
        .problem(422, Some("role"));
    app.post("/v1/api-keys", &admin, json!({"name": "", "role": "admin"}))
        .await
        .problem(422, Some("name"));
    app.post(
        "/v1/api-keys",
        &admin,
        json!({"name": "k", "role": "publisher", "project": "nope"}),
    )
    .await
    .problem(404, None);
    app.delete("/v1/api-keys/key_nope", &admin)
        .await
        .problem(404, None);
    assert_eq!(app.snapshot().await, before);

    let created = app
        .post(
            "/v1/api-keys",
            &admin,
            json!({"name": "k", "role": "publisher", "project": "keys"}),
        )
        .await;
    let created = created.ok(201).clone();
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with(created["prefix"].as_str().unwrap()));
    let listed = app.get("/v1/api-keys", &admin).await;
    assert!(
        !listed.ok(200).to_string().contains(token),
        "the token is never shown again"
    );
}

/// The id of the admin key whose token is `token`, read through `/v1/me`.
async fn key_id(app: &TestApp, token: &str) -> String {
    let me = app.get("/v1/me", token).await;
    me.ok(200)["key_id"].as_str().unwrap().to_owned()
}

async fn the_last_active_admin_key_cannot_be_revoked(app: TestApp) {
    let first = key_id(&app, &app.admin).await;
    let before = app.snapshot().await;
    let refused = app
        .delete(&format!("/v1/api-keys/{first}"), &app.admin)
        .await;
    assert_eq!(
        refused.problem(409, Some("id"))["type"],
        "/problems/last-admin-key"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused revocation changes nothing"
    );
    app.get("/v1/me", &app.admin).await.ok(200);

    // With a second admin key either may go, but not both.
    let second_token = app.key("admin", None).await;
    let second = key_id(&app, &second_token).await;
    app.delete(&format!("/v1/api-keys/{first}"), &second_token)
        .await
        .ok(200);
    app.get("/v1/me", &app.admin).await.problem(401, None);
    app.delete(&format!("/v1/api-keys/{second}"), &second_token)
        .await
        .problem(409, Some("id"));
    app.get("/v1/me", &second_token).await.ok(200);
}

on_both_stores!(
    the_last_active_admin_key_cannot_be_revoked,
    requests_without_a_valid_key_are_unauthorized,
    a_key_scoped_to_one_project_can_neither_read_nor_change_nor_learn_of_another,
    a_publisher_publishes_and_reads_nothing,
    a_project_viewer_never_sees_a_secret,
    only_admins_manage_projects_and_keys,
    api_keys_are_validated_and_shown_once,
);
