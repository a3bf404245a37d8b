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
