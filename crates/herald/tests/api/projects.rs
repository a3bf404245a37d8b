//! Projects: creating, naming, finding, renaming, deleting and listing them.

#![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, on_both_stores};

async fn an_admin_creates_a_project_and_finds_it_by_id_or_by_name(app: TestApp) {
    let created = app
        .post(
            "/v1/projects",
            &app.admin,
            json!({"name": "acme-prod.eu_1"}),
        )
        .await;
    let created = created.ok(201).clone();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("prj_"), "{id}");
    assert_eq!(created["name"], "acme-prod.eu_1");
    assert!(created["created_at"].is_string());
    assert_eq!(created["created_at"], created["updated_at"]);

    let by_id = app.get(&format!("/v1/projects/{id}"), &app.admin).await;
    assert_eq!(by_id.ok(200), &created);
    let by_name = app.get("/v1/projects/acme-prod.eu_1", &app.admin).await;
    assert_eq!(by_name.ok(200), &created);

    app.get("/v1/projects/nope", &app.admin)
        .await
        .problem(404, None);
    app.get("/v1/projects/prj_01JD3ZZZZZZZZZZZZZZZZZZZZZ", &app.admin)
        .await
        .problem(404, None);
}

async fn project_names_must_be_unique_url_safe_slugs(app: TestApp) {
    app.project("acme").await;
    let before = app.snapshot().await;
    let too_long = "a".repeat(65);
    for bad in [
        "Acme",
        "",
        "a b",
        "prj_x",
        "-acme",
        "acme!",
        too_long.as_str(),
    ] {
        let reply = app
            .post("/v1/projects", &app.admin, json!({ "name": bad }))
            .await;
        reply.problem(422, Some("name"));
    }
    let duplicate = app
        .post("/v1/projects", &app.admin, json!({"name": "acme"}))
        .await;
    assert_eq!(
        duplicate.problem(409, Some("name"))["type"],
        "/problems/conflict"
    );
    assert_eq!(app.snapshot().await, before, "no rejected name was stored");

    // 64 characters is still fine.
    let longest = "a".repeat(64);
    let created = app
        .post("/v1/projects", &app.admin, json!({ "name": longest }))
        .await;
    assert_eq!(created.ok(201)["name"], longest.as_str());
}

async fn renaming_a_project_frees_the_old_name_and_keeps_the_id(app: TestApp) {
    let id = app.project("old-name").await;
    app.project("taken").await;

    let renamed = app
        .patch(
            "/v1/projects/old-name",
            &app.admin,
            json!({"name": "new-name"}),
        )
        .await;
    let renamed = renamed.ok(200).clone();
    assert_eq!(renamed["id"], id.as_str());
    assert_eq!(renamed["name"], "new-name");

    app.get("/v1/projects/old-name", &app.admin)
        .await
        .problem(404, None);
    let by_new_name = app.get("/v1/projects/new-name", &app.admin).await;
    assert_eq!(by_new_name.ok(200), &renamed);
    let by_id = app.get(&format!("/v1/projects/{id}"), &app.admin).await;
    assert_eq!(by_id.ok(200)["name"], "new-name");

    let before = app.snapshot().await;
    app.patch(
        &format!("/v1/projects/{id}"),
        &app.admin,
        json!({"name": "taken"}),
    )
    .await
    .problem(409, Some("name"));
    app.patch(
        &format!("/v1/projects/{id}"),
        &app.admin,
        json!({"name": "Not A Slug"}),
    )
    .await
    .problem(422, Some("name"));
    app.patch("/v1/projects/old-name", &app.admin, json!({"name": "x"}))
        .await
        .problem(404, None);
    assert_eq!(
        app.snapshot().await,
        before,
        "rejected renames change nothing"
    );

    // The old name can be used again.
    app.project("old-name").await;
}

async fn deleting_a_project_deletes_everything_in_it(app: TestApp) {
    let doomed = app.project("doomed").await;
    let kept = app.project("kept").await;
    for project in [&doomed, &kept] {
        app.event_type(project, "thing.happened").await;
    }
    let doomed_hook = app.webhook(&doomed, "hook", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept_hook = app.webhook(&kept, "hook", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/projects/{doomed}/events"),
        &app.admin,
        json!({"id": "e-1", "type": "thing.happened", "data": {}}),
    )
    .await
    .ok(202);
    let doomed_key = app.key("project_admin", Some(&doomed)).await;

    let deleted = app.delete("/v1/projects/doomed", &app.admin).await;
    deleted.ok(204);
    assert_eq!(deleted.body, Value::Null);

    for path in [
        format!("/v1/projects/{doomed}"),
        "/v1/projects/doomed".to_owned(),
        format!("/v1/webhooks/{doomed_hook}"),
        format!("/v1/projects/{doomed}/events"),
        format!("/v1/projects/{doomed}/events/e-1"),
        format!("/v1/projects/{doomed}/event-types"),
        format!("/v1/projects/{doomed}/event-types/thing.happened"),
    ] {
        app.get(&path, &app.admin).await.problem(404, None);
    }
    app.get("/v1/projects", &doomed_key)
        .await
        .problem(401, None);
    app.delete(&format!("/v1/projects/{doomed}"), &app.admin)
        .await
        .problem(404, None);

    // The other project is untouched.
    app.get(&format!("/v1/webhooks/{kept_hook}"), &app.admin)
        .await
        .ok(200);
    app.get(
        &format!("/v1/projects/{kept}/event-types/thing.happened"),
        &app.admin,
    )
    .await
    .ok(200);
    let hooks = app.get("/v1/webhooks", &app.admin).await;
    assert_eq!(hooks.ok(200)["data"].as_array().unwrap().len(), 1);
}

async fn projects_are_listed_one_page_at_a_time_each_exactly_once(app: TestApp) {
    // The system project (operational events) exists from the first start.
    let system = app.get("/v1/projects/system", &app.admin).await;
    let mut created = BTreeSet::from([system.ok(200)["id"].as_str().unwrap().to_owned()]);
    for name in ["p-1", "p-2", "p-3", "p-4"] {
        created.insert(app.project(name).await);
    }
    let everything = app.get("/v1/projects", &app.admin).await;
    let everything = everything.ok(200).clone();
    assert_eq!(everything["next_cursor"], Value::Null);
    let all_ids: Vec<String> = everything["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all_ids.iter().cloned().collect::<BTreeSet<_>>(), created);

    let mut walked = Vec::new();
    let mut path = "/v1/projects?limit=1".to_owned();
    loop {
        let page = app.get(&path, &app.admin).await;
        let page = page.ok(200);
        let data = page["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{page:#}");
        walked.push(data[0]["id"].as_str().unwrap().to_owned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/projects?limit=1&cursor={cursor}"),
            None => break,
        }
        assert!(walked.len() < 10, "the walk ends");
    }
    assert_eq!(walked, all_ids, "every project once, in list order");

    let two = app.get("/v1/projects?limit=2", &app.admin).await;
    let two = two.ok(200);
    assert_eq!(two["data"].as_array().unwrap().len(), 2);
    assert!(two["next_cursor"].is_string());
}

async fn bad_list_queries_are_refused_naming_the_parameter(app: TestApp) {
    app.project("p").await;
    for limit in ["0", "251", "abc", "-1"] {
        app.get(&format!("/v1/projects?limit={limit}"), &app.admin)
            .await
            .problem(400, Some("limit"));
    }
    for cursor in ["garbage", "!!!", "bm9wZQ"] {
        let reply = app
            .get(&format!("/v1/projects?cursor={cursor}"), &app.admin)
            .await;
        assert_eq!(
            reply.problem(400, Some("cursor"))["type"],
            "/problems/invalid-query"
        );
    }
    app.get("/v1/projects?colour=red", &app.admin)
        .await
        .problem(400, Some("colour"));
    app.get("/v1/projects?limit=250", &app.admin).await.ok(200);
}

async fn malformed_request_bodies_are_refused_and_change_nothing(app: TestApp) {
    app.project("p").await;
    let before = app.snapshot().await;

    app.post(
        "/v1/projects",
        &app.admin,
        json!({"name": "fine", "colour": "red"}),
    )
    .await
    .problem(422, Some("colour"));
    app.post("/v1/projects", &app.admin, json!({}))
        .await
        .problem(422, Some("name"));
    app.post("/v1/projects", &app.admin, json!({"name": 7}))
        .await
        .problem(422, Some("name"));
    app.patch("/v1/projects/p", &app.admin, json!({"name": "q", "x": 1}))
        .await
        .problem(422, Some("x"));

    let malformed = app
        .raw(
            Method::POST,
            "/v1/projects",
            &app.admin,
            "application/json",
            b"{\"name\": ".to_vec(),
        )
        .await;
    assert_eq!(
        malformed.problem(400, None)["type"],
        "/problems/malformed-json"
    );
    let trailing = app
        .raw(
            Method::POST,
            "/v1/projects",
            &app.admin,
            "application/json",
            b"{\"name\": \"fine\"} x".to_vec(),
        )
        .await;
    assert_eq!(
        trailing.problem(400, None)["type"],
        "/problems/malformed-json"
    );
    let not_json = app
        .raw(
            Method::POST,
            "/v1/projects",
            &app.admin,
            "text/plain",
            b"{\"name\": \"fine\"}".to_vec(),
        )
        .await;
    assert_eq!(
        not_json.problem(415, None)["type"],
        "/problems/unsupported-media-type"
    );
    assert_eq!(app.snapshot().await, before);

    // A JSON media type with parameters is fine.
    app.raw(
        Method::POST,
        "/v1/projects",
        &app.admin,
        "application/json; charset=utf-8",
        b"{\"name\": \"fine\"}".to_vec(),
    )
    .await
    .ok(201);
}

async fn a_repeated_parameter_is_refused_naming_it(app: TestApp) {
    app.project("p").await;
    for (path, field) in [
        ("/v1/projects?limit=1&limit=2", "limit"),
        ("/v1/projects?limit=1&cursor=a&cursor=b", "cursor"),
        ("/v1/webhooks?status=active&status=disabled", "status"),
        (
            "/v1/projects/p/event-types?include_archived=true&include_archived=false",
            "include_archived",
        ),
    ] {
        let reply = app.get(path, &app.admin).await;
        let problem = reply.problem(400, Some(field));
        assert_eq!(problem["type"], "/problems/invalid-query");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("more than once"), "{detail}");
    }

    // The same goes for a field repeated in a JSON body.
    let before = app.snapshot().await;
    let repeated = app
        .raw(
            Method::POST,
            "/v1/projects",
            &app.admin,
            "application/json",
            br#"{"name": "one", "name": "two"}"#.to_vec(),
        )
        .await;
    assert_eq!(
        repeated.problem(422, Some("name"))["type"],
        "/problems/invalid-field"
    );
    assert_eq!(app.snapshot().await, before);
}

async fn null_is_refused_for_project_fields_that_cannot_be_cleared(app: TestApp) {
    app.project("p").await;
    let before = app.snapshot().await;
    for field in ["name", "require_validation"] {
        let reply = app
            .patch("/v1/projects/p", &app.admin, json!({ field: null }))
            .await;
        let detail = reply.problem(422, Some(field))["detail"].as_str().unwrap();
        assert!(detail.contains("may not be null"), "{detail}");
        app.patch(
            "/v1/projects/p",
            &app.admin,
            json!({"retention_days": 7, field: null}),
        )
        .await
        .problem(422, Some(field));
    }
    assert_eq!(app.snapshot().await, before, "a null changes nothing");

    // `null` still returns the settings that have defaults to them.
    let reset = app
        .patch(
            "/v1/projects/p",
            &app.admin,
            json!({"retry_policy": null, "retention_days": null}),
        )
        .await;
    let reset = reset.ok(200);
    assert_eq!(reset["name"], "p");
    assert_eq!(reset["require_validation"], false);
}

on_both_stores!(
    an_admin_creates_a_project_and_finds_it_by_id_or_by_name,
    project_names_must_be_unique_url_safe_slugs,
    renaming_a_project_frees_the_old_name_and_keeps_the_id,
    deleting_a_project_deletes_everything_in_it,
    projects_are_listed_one_page_at_a_time_each_exactly_once,
    bad_list_queries_are_refused_naming_the_parameter,
    malformed_request_bodies_are_refused_and_change_nothing,
    a_repeated_parameter_is_refused_naming_it,
    null_is_refused_for_project_fields_that_cannot_be_cleared,
);
