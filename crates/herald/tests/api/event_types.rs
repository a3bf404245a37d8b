//! Event types: creating them with a description and schema, display names with spaces,
//! changing and archiving them, and listing them.

#![allow(clippy::unwrap_used, reason = "a missing value fails the test")]

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, on_both_stores};

fn names(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

async fn an_event_type_is_created_with_a_description_and_a_schema(app: TestApp) {
    let project = app.project("acme").await;
    let schema = json!({
        "type": "object",
        "properties": {"environmentId": {"type": "string"}},
        "required": ["environmentId"]
    });
    let created = app
        .post(
            "/v1/projects/acme/event-types",
            &app.admin,
            json!({"name": "environment.suspended", "description": "An environment was suspended",
                   "schema": schema}),
        )
        .await;
    let created = created.ok(201).clone();
    assert_eq!(created["project_id"], project.as_str());
    assert_eq!(created["name"], "environment.suspended");
    assert_eq!(created["description"], "An environment was suspended");
    assert_eq!(created["schema"], schema);
    assert_eq!(created["archived"], false);
    assert!(created["created_at"].is_string());

    let got = app
        .get(
            &format!("/v1/projects/{project}/event-types/environment.suspended"),
            &app.admin,
        )
        .await;
    assert_eq!(got.ok(200), &created);

    // Description and schema are optional.
    let bare = app
        .post(
            "/v1/projects/acme/event-types",
            &app.admin,
            json!({"name": "file.uploaded"}),
        )
        .await;
    let bare = bare.ok(201);
    assert_eq!(bare["description"], Value::Null);
    assert_eq!(bare["schema"], Value::Null);
}

async fn event_type_names_may_be_display_names_with_spaces(app: TestApp) {
    app.project("cloud").await;
    let created = app
        .post(
            "/v1/projects/cloud/event-types",
            &app.admin,
            json!({"name": "Webhook Validate"}),
        )
        .await;
    assert_eq!(created.ok(201)["name"], "Webhook Validate");
    for name in ["Site Plan Change", "a:b-c_d", "UPPER.lower.123"] {
        app.post(
            "/v1/projects/cloud/event-types",
            &app.admin,
            json!({ "name": name }),
        )
        .await
        .ok(201);
    }

    let got = app
        .get(
            "/v1/projects/cloud/event-types/Webhook%20Validate",
            &app.admin,
        )
        .await;
    assert_eq!(got.ok(200)["name"], "Webhook Validate");
    let patched = app
        .patch(
            "/v1/projects/cloud/event-types/Webhook%20Validate",
            &app.admin,
            json!({"description": "Sent when a webhook is created"}),
        )
        .await;
    assert_eq!(
        patched.ok(200)["description"],
        "Sent when a webhook is created"
    );
    // Names are case-sensitive.
    app.get(
        "/v1/projects/cloud/event-types/webhook%20validate",
        &app.admin,
    )
    .await
    .problem(404, None);
}

async fn invalid_event_types_are_refused_naming_the_field_and_change_nothing(app: TestApp) {
    app.project("acme").await;
    app.event_type("acme", "environment.created").await;
    let before = app.snapshot().await;
    let path = "/v1/projects/acme/event-types";

    let too_long = "a".repeat(129);
    for bad in [
        "a.*",
        "*",
        "",
        " a",
        "a ",
        ".a",
        "a.",
        "a..b",
        "é",
        too_long.as_str(),
    ] {
        app.post(path, &app.admin, json!({ "name": bad }))
            .await
            .problem(422, Some("name"));
    }
    for schema in [json!({"type": "no-such-type"}), json!(3), json!("object")] {
        app.post(path, &app.admin, json!({"name": "x.y", "schema": schema}))
            .await
            .problem(422, Some("schema"));
    }
    app.post(
        path,
        &app.admin,
        json!({"name": "x.y", "description": "d".repeat(1001)}),
    )
    .await
    .problem(422, Some("description"));
    app.post(path, &app.admin, json!({"name": "x.y", "archived": true}))
        .await
        .problem(422, Some("archived"));
    app.post(path, &app.admin, json!({"description": "no name"}))
        .await
        .problem(422, Some("name"));
    let duplicate = app
        .post(path, &app.admin, json!({"name": "environment.created"}))
        .await;
    assert_eq!(
        duplicate.problem(409, Some("name"))["type"],
        "/problems/conflict"
    );
    app.post(
        "/v1/projects/nope/event-types",
        &app.admin,
        json!({"name": "x.y"}),
    )
    .await
    .problem(404, None);
    assert_eq!(app.snapshot().await, before);

    // The same name in another project is fine.
    app.project("other").await;
    app.event_type("other", "environment.created").await;
}

async fn patching_an_event_type_changes_only_what_is_sent(app: TestApp) {
    app.project("acme").await;
    let path = "/v1/projects/acme/event-types/order.paid";
    let schema = json!({"type": "object", "required": ["amount"]});
    app.post(
        "/v1/projects/acme/event-types",
        &app.admin,
        json!({"name": "order.paid", "description": "Paid", "schema": schema}),
    )
    .await
    .ok(201);

    let described = app
        .patch(
            path,
            &app.admin,
            json!({"description": "An order was paid"}),
        )
        .await;
    let described = described.ok(200).clone();
    assert_eq!(described["description"], "An order was paid");
    assert_eq!(described["schema"], schema);
    assert_eq!(described["archived"], false);

    let new_schema = json!({"type": "object", "required": ["amount", "currency"]});
    let reschemed = app
        .patch(path, &app.admin, json!({"schema": new_schema}))
        .await;
    let reschemed = reschemed.ok(200);
    assert_eq!(reschemed["schema"], new_schema);
    assert_eq!(reschemed["description"], "An order was paid");

    let cleared = app
        .patch(path, &app.admin, json!({"description": null}))
        .await;
    let cleared = cleared.ok(200);
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["schema"], new_schema, "schema kept");

    let unschemed = app.patch(path, &app.admin, json!({"schema": null})).await;
    assert_eq!(unschemed.ok(200)["schema"], Value::Null);

    let archived = app.patch(path, &app.admin, json!({"archived": true})).await;
    let archived = archived.ok(200).clone();
    assert_eq!(archived["archived"], true);
    let got = app.get(path, &app.admin).await;
    assert_eq!(got.ok(200), &archived, "GET shows what PATCH answered");

    let unchanged = app.patch(path, &app.admin, json!({})).await;
    assert_eq!(unchanged.ok(200)["archived"], true);

    let before = app.snapshot().await;
    app.patch(
        path,
        &app.admin,
        json!({"schema": {"type": "no-such-type"}}),
    )
    .await
    .problem(422, Some("schema"));
    app.patch(path, &app.admin, json!({"archived": "yes"}))
        .await
        .problem(422, Some("archived"));
    app.patch(path, &app.admin, json!({"name": "order.renamed"}))
        .await
        .problem(422, Some("name"));
    app.patch(
        path,
        &app.admin,
        json!({"description": "x", "schema": {"type": 7}}),
    )
    .await
    .problem(422, Some("schema"));
    app.patch(
        "/v1/projects/acme/event-types/order.unknown",
        &app.admin,
        json!({"description": "x"}),
    )
    .await
    .problem(404, None);
    assert_eq!(
        app.snapshot().await,
        before,
        "rejected patches change nothing"
    );
}

async fn archived_event_types_are_listed_only_when_asked_for(app: TestApp) {
    app.project("acme").await;
    for name in ["a.one", "a.two", "a.three"] {
        app.event_type("acme", name).await;
    }
    app.patch(
        "/v1/projects/acme/event-types/a.two",
        &app.admin,
        json!({"archived": true}),
    )
    .await
    .ok(200);

    let listed = app.get("/v1/projects/acme/event-types", &app.admin).await;
    let listed: BTreeSet<&str> = names(listed.ok(200)).into_iter().collect();
    assert_eq!(listed, BTreeSet::from(["a.one", "a.three"]));
    let explicit = app
        .get(
            "/v1/projects/acme/event-types?include_archived=false",
            &app.admin,
        )
        .await;
    assert_eq!(names(explicit.ok(200)).len(), 2);

    let all = app
        .get(
            "/v1/projects/acme/event-types?include_archived=true",
            &app.admin,
        )
        .await;
    let all: BTreeSet<&str> = names(all.ok(200)).into_iter().collect();
    assert_eq!(all, BTreeSet::from(["a.one", "a.two", "a.three"]));

    app.patch(
        "/v1/projects/acme/event-types/a.two",
        &app.admin,
        json!({"archived": false}),
    )
    .await
    .ok(200);
    let listed = app.get("/v1/projects/acme/event-types", &app.admin).await;
    assert_eq!(names(listed.ok(200)).len(), 3, "unarchived is listed again");

    app.get(
        "/v1/projects/acme/event-types?include_archived=maybe",
        &app.admin,
    )
    .await
    .problem(400, Some("include_archived"));
    app.get("/v1/projects/acme/event-types?colour=red", &app.admin)
        .await
        .problem(400, Some("colour"));
    app.get("/v1/projects/acme/event-types?limit=0", &app.admin)
        .await
        .problem(400, Some("limit"));
    app.get("/v1/projects/acme/event-types?cursor=nope", &app.admin)
        .await
        .problem(400, Some("cursor"));
    app.get("/v1/projects/nope/event-types", &app.admin)
        .await
        .problem(404, None);
}

async fn event_types_are_listed_one_page_at_a_time_each_exactly_once(app: TestApp) {
    app.project("acme").await;
    for name in ["t.1", "t.2", "t.3"] {
        app.event_type("acme", name).await;
    }
    let everything = app.get("/v1/projects/acme/event-types", &app.admin).await;
    let everything: Vec<String> = names(everything.ok(200))
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(everything.len(), 3);

    let mut walked = Vec::new();
    let mut path = "/v1/projects/acme/event-types?limit=1".to_owned();
    loop {
        let page = app.get(&path, &app.admin).await;
        let page = page.ok(200);
        assert_eq!(names(page).len(), 1, "{page:#}");
        walked.push(names(page)[0].to_owned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/projects/acme/event-types?limit=1&cursor={cursor}");
            }
            None => break,
        }
        assert!(walked.len() < 10, "the walk ends");
    }
    assert_eq!(walked, everything);
}

async fn unknown_event_types_are_not_found(app: TestApp) {
    app.project("acme").await;
    app.event_type("acme", "known.type").await;
    for name in ["unknown.type", "known", "a..b", "%20a"] {
        let reply = app
            .get(&format!("/v1/projects/acme/event-types/{name}"), &app.admin)
            .await;
        assert_eq!(reply.problem(404, None)["type"], "/problems/not-found");
    }
    app.get("/v1/projects/nope/event-types/known.type", &app.admin)
        .await
        .problem(404, None);
}

async fn archived_may_not_be_set_to_null(app: TestApp) {
    app.project("acme").await;
    app.event_type("acme", "order.paid").await;
    let path = "/v1/projects/acme/event-types/order.paid";
    let before = app.snapshot().await;
    for patch in [
        json!({"archived": null}),
        json!({"description": "Paid", "archived": null}),
    ] {
        let reply = app.patch(path, &app.admin, patch).await;
        let detail = reply.problem(422, Some("archived"))["detail"]
            .as_str()
            .unwrap();
        assert!(detail.contains("may not be null"), "{detail}");
    }
    assert_eq!(app.snapshot().await, before, "a null changes nothing");

    // `null` still clears the fields that can be cleared.
    let cleared = app
        .patch(
            path,
            &app.admin,
            json!({"description": null, "schema": null}),
        )
        .await;
    assert_eq!(cleared.ok(200)["archived"], false);
}

on_both_stores!(
    an_event_type_is_created_with_a_description_and_a_schema,
    event_type_names_may_be_display_names_with_spaces,
    invalid_event_types_are_refused_naming_the_field_and_change_nothing,
    patching_an_event_type_changes_only_what_is_sent,
    archived_event_types_are_listed_only_when_asked_for,
    event_types_are_listed_one_page_at_a_time_each_exactly_once,
    unknown_event_types_are_not_found,
    archived_may_not_be_set_to_null,
);
