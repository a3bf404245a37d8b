//! The OpenAPI document is generated from the same route list as the router: every documented
//! operation is served, and no route is registered around it.

use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let doc = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    let doc = doc.ok(200).clone();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = app
                .call(method.clone(), &concrete, Some(&app.admin), None)
                .await;
            let kind = reply.body["type"].as_str().unwrap_or_default();
            assert_ne!(
                kind, "/problems/no-such-route",
                "{method} {path} is documented but not served"
            );
            assert_ne!(
                reply.status.as_u16(),
                405,
                "{method} {path} is documented but not served"
            );
            operations += 1;
        }
    }
    assert!(operations >= 25, "only {operations} operations documented");
    for schema in [
        "Problem",
        "WebhookView",
        "CreateWebhook",
        "EventView",
        "PublishEvent",
        "ApiKeyView",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "schema {schema} is missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn undocumented_routes_answer_404_in_problem_json() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.get("/v1/not-a-route", &app.admin)
        .await
        .problem(404, None);
    app.call(Method::PUT, "/v1/projects", Some(&app.admin), None)
        .await
        .problem(405, None);
}

/// Routes must be added with `utoipa_axum::routes!`, which documents them; a plain
/// `.route(...)` or a second `Router` would serve something the document does not show.
#[test]
fn no_route_is_registered_outside_the_openapi_router() {
    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let api_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../herald-api/src");
    let mut files = Vec::new();
    rust_files(&api_src, &mut files);
    assert!(files.len() > 5, "found the API sources");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for forbidden in [".route(", ".nest(", "Router::new(", ".merge("] {
            assert!(
                !text.contains(forbidden),
                "{} uses `{forbidden}`: register routes with routes!()",
                file.display()
            );
        }
    }
    let doc: Value = serde_json::to_value(herald_api::openapi()).unwrap();
    assert!(doc["paths"].as_object().unwrap().len() >= 15);
}

/// SDK generators name methods after operationIds: each operation has one, unique, camelCase.
/// And every operation documents the problem answers the server can give it, as
/// `application/problem+json`.
#[test]
fn operations_have_unique_ids_and_document_their_problem_answers() {
    let doc: Value = serde_json::to_value(herald_api::openapi()).unwrap();
    assert!(doc["servers"][0]["url"].is_string(), "a servers entry");
    let responses = &doc["components"]["responses"];
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: operationId {id:?} is not camelCase"
            );
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            let answers = op["responses"].as_object().unwrap();
            let public = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.as_object().unwrap().is_empty()));
            let mut expected = vec!["414", "431"];
            if !public {
                expected.push("401");
                if id != "getMe" {
                    expected.push("403");
                }
            }
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            if path.contains('{') {
                expected.extend(["400", "404"]);
            }
            let has_query = op["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            if has_query {
                expected.push("400");
            }
            for status in expected {
                assert!(
                    answers.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
            for (status, answer) in answers.iter().filter(|(s, _)| s.as_str() >= "400") {
                let name = answer["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/responses/"))
                    .unwrap_or_else(|| panic!("{method} {path} {status} is not a shared answer"));
                let content = &responses[name]["content"];
                if !["414", "431"].contains(&status.as_str()) {
                    assert_eq!(
                        content["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                    assert!(content.get("application/json").is_none());
                }
            }
        }
    }
    assert!(ids.contains("listWebhooks") && ids.len() >= 38, "{ids:?}");
}

/// The rules the server enforces are in the document, from the same constants.
#[test]
fn the_document_carries_the_servers_limits() {
    let doc: Value = serde_json::to_value(herald_api::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let project = &schemas["CreateProject"]["properties"];
    assert_eq!(project["name"]["maxLength"], 64);
    assert!(project["name"]["pattern"].is_string());
    assert_eq!(project["retention_days"]["maximum"], 3650);
    let webhook = &schemas["CreateWebhook"]["properties"];
    assert_eq!(webhook["timeout_seconds"]["maximum"], 600);
    assert_eq!(webhook["url"]["maxLength"], 2048);
    assert_eq!(webhook["events"]["maxItems"], 250);
    assert!(webhook["name"]["pattern"].is_string());
    let publish = &schemas["PublishEvent"]["properties"];
    assert_eq!(publish["id"]["maxLength"], 128);
    assert_eq!(publish["type"]["maxLength"], 128);
    let limit = doc["paths"]["/v1/webhooks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], 250);
    assert_eq!(limit["schema"]["minimum"], 1);
}

/// What the API fuzzer found, kept: the server answers as the document says.
#[tokio::test]
async fn inputs_the_document_allows_or_refuses_are_answered_so() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    // `30.0` is an integer to JSON Schema.
    let created = app
        .post(
            "/v1/projects",
            &app.admin,
            serde_json::json!({"name": "floats", "retention_days": 30.0,
                "retry_policy": {"schedule_seconds": [5.0, 60]}}),
        )
        .await;
    let created = created.ok(201);
    assert_eq!(created["retention_days"], 30);
    assert_eq!(
        created["retry_policy"]["schedule_seconds"],
        serde_json::json!([5, 60])
    );
    // Only the numbers read as integers are rewritten: free-form data keeps its `2.0`.
    let hook = app
        .post(
            "/v1/webhooks",
            &app.admin,
            serde_json::json!({"project": "floats", "name": "h", "url": "https://example.com/h",
                "timeout_seconds": 30.0, "custom_data": {"ratio": 2.0, "n": [1.0]}}),
        )
        .await;
    let hook = hook.ok(201);
    assert_eq!(hook["timeout_seconds"], 30);
    assert_eq!(hook["custom_data"]["ratio"].to_string(), "2.0", "{hook:#}");
    assert_eq!(hook["custom_data"]["n"][0].to_string(), "1.0", "{hook:#}");
    let before = app.snapshot().await;
    // Not an integer, still refused, naming the field.
    app.post(
        "/v1/projects",
        &app.admin,
        serde_json::json!({"name": "halves", "retention_days": 30.5}),
    )
    .await
    .problem(422, Some("retention_days"));
    // serde would read a struct from an array of its values; the document says object.
    app.post("/v1/projects", &app.admin, serde_json::json!(["arrays"]))
        .await
        .problem(422, Some("body"));
    assert_eq!(
        app.snapshot().await,
        before,
        "refused input changes nothing"
    );
    app.event_type("floats", "order.created").await;
    let before_publish = app.snapshot().await;
    app.post(
        "/v1/projects/floats/events",
        &app.admin,
        serde_json::json!({"type": "order.created", "data": {}, "actor": [null, null]}),
    )
    .await
    .problem(422, Some("actor"));
    // Fields inside such an object are still named by their path.
    app.post(
        "/v1/projects/floats/events",
        &app.admin,
        serde_json::json!({"type": "order.created", "data": {}, "actor": {"id": 7}}),
    )
    .await
    .problem(422, Some("actor.id"));
    for (patch, field) in [
        (serde_json::json!({"retry_policy": [[5]]}), "retry_policy"),
        (
            serde_json::json!({"retry_policy": {"schedule_seconds": [5], "x": 1}}),
            "retry_policy.x",
        ),
    ] {
        app.patch("/v1/projects/floats", &app.admin, patch)
            .await
            .problem(422, Some(field));
    }
    assert_eq!(
        app.snapshot().await,
        before_publish,
        "refused input changes nothing"
    );
    // A path that does not decode to UTF-8: a problem, not axum's plain text.
    app.get("/v1/webhooks/%FF", &app.admin)
        .await
        .problem(400, Some("path"));
    // `null` is no body, for the operations whose body is optional.
    let hook = app.webhook("floats", "ops", serde_json::json!({})).await;
    let id = hook["id"].as_str().unwrap();
    let rotated = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/secret/rotate"),
            Some(&app.admin),
            Some(&Value::Null),
        )
        .await;
    assert_ne!(rotated.ok(200)["secret"], hook["secret"]);
}
