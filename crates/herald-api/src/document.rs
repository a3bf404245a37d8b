//! What the OpenAPI document says besides the routes' own annotations: the server entry, and the
//! error answers every operation can get.
//!
//! The error answers are added here, in one place, from the shape of each operation rather than
//! listed in every annotation: an operation that reads a JSON body can answer 400, 408, 413, 415
//! and 422; one with query parameters 400; one with path parameters 400 (a path that does not
//! percent-decode to UTF-8) and 404; an authenticated one 401, and 403 unless every role may call
//! it. Statuses that depend on what the handler does (a 404 for a project named in the body, a
//! 409) stay in its annotation; this module only makes them point at the shared problem answer.
//! Every answer is `application/problem+json` ([`crate::problem::Problem`]), except 414 and 431,
//! which hyper gives with an empty body before Herald sees the request.

use std::collections::BTreeSet;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};

use crate::problem::PROBLEM_JSON;

/// Operations any authenticated key may call, whatever its role (so no 403).
const ANY_ROLE: &[&str] = &["getMe"];

/// An error answer: status, the name of its shared response in `components.responses`, what it
/// means, and whether it carries a problem document.
struct ErrorAnswer {
    status: u16,
    name: &'static str,
    description: &'static str,
    problem: bool,
}

const ANSWERS: &[ErrorAnswer] = &[
    ErrorAnswer {
        status: 400,
        name: "BadRequest",
        description: "The body is not well-formed JSON, a query parameter is malformed or unknown \
            (`field` names it), or the path does not decode to UTF-8.",
        problem: true,
    },
    ErrorAnswer {
        status: 401,
        name: "Unauthorized",
        description: "No API key, a malformed `Authorization` header, or an unknown or revoked key.",
        problem: true,
    },
    ErrorAnswer {
        status: 403,
        name: "Forbidden",
        description: "The key's role may not do this.",
        problem: true,
    },
    ErrorAnswer {
        status: 404,
        name: "NotFound",
        description: "Something the request names does not exist, or is outside the key's project \
            (the same answer either way).",
        problem: true,
    },
    ErrorAnswer {
        status: 409,
        name: "Conflict",
        description: "Another resource already has this name (`field` says which), or the resource \
            changed while the request ran (`/problems/changed-meanwhile`: read it again and retry).",
        problem: true,
    },
    ErrorAnswer {
        status: 408,
        name: "RequestTimeout",
        description: "The body did not arrive within 30 seconds of the request's headers; the \
            connection is then closed.",
        problem: true,
    },
    ErrorAnswer {
        status: 413,
        name: "PayloadTooLarge",
        description: "The body is larger than the server's limit (`--max-body-bytes`).",
        problem: true,
    },
    ErrorAnswer {
        status: 414,
        name: "UriTooLong",
        description: "The request line is too long; answered by the HTTP layer, with no body.",
        problem: false,
    },
    ErrorAnswer {
        status: 415,
        name: "UnsupportedMediaType",
        description: "The body is not declared as JSON (`Content-Type: application/json`).",
        problem: true,
    },
    ErrorAnswer {
        status: 422,
        name: "UnprocessableContent",
        description: "A field is missing, unknown, of the wrong type or not acceptable; `field` is \
            its path (`events[1]`, `retry_policy.schedule_seconds[0]`).",
        problem: true,
    },
    ErrorAnswer {
        status: 431,
        name: "RequestHeaderFieldsTooLarge",
        description: "The request's headers are too large; answered by the HTTP layer, with no body.",
        problem: false,
    },
];

/// Completes the generated document: servers, shared error answers, and each operation's.
pub fn complete(doc: &mut OpenApi) {
    doc.servers = Some(vec![
        ServerBuilder::new()
            .url("/")
            .description(Some(
                "The Herald serving this document (its paths start with /v1).",
            ))
            .build(),
    ]);
    let components = doc.components.get_or_insert_with(Default::default);
    for answer in ANSWERS {
        components
            .responses
            .insert(answer.name.to_owned(), RefOr::T(answer.response()));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            let statuses = error_statuses(path, operation);
            let responses = &mut operation.responses.responses;
            responses.retain(|status, _| !status.starts_with(['4', '5']));
            for answer in ANSWERS.iter().filter(|a| statuses.contains(&a.status)) {
                responses.insert(
                    answer.status.to_string(),
                    RefOr::Ref(Ref::from_response_name(answer.name)),
                );
            }
        }
    }
}

impl ErrorAnswer {
    fn response(&self) -> Response {
        let mut response = ResponseBuilder::new().description(self.description);
        if self.problem {
            let schema = RefOr::Ref(Ref::from_schema_name("Problem"));
            response = response.content(PROBLEM_JSON, Content::new(Some(schema)));
        }
        if self.status == 401 {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(<String as utoipa::PartialSchema>::schema())
                    .description(Some("`Bearer`"))
                    .build(),
            );
        }
        response.build()
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The error statuses an operation can answer: those its annotation names, and those that
/// follow from what it reads.
fn error_statuses(path: &str, operation: &Operation) -> BTreeSet<u16> {
    let mut statuses: BTreeSet<u16> = operation
        .responses
        .responses
        .keys()
        .filter_map(|s| s.parse().ok())
        .filter(|s| *s >= 400)
        .collect();
    // Any request line or header section can be too large for the HTTP layer.
    statuses.extend([414, 431]);
    if operation.request_body.is_some() {
        statuses.extend([400, 408, 413, 415, 422]);
    }
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    if has_query {
        statuses.insert(400);
    }
    if path.contains('{') {
        statuses.extend([400, 404]);
    }
    let public = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().any(|r| *r == Default::default()));
    if !public {
        statuses.insert(401);
        let any_role = operation
            .operation_id
            .as_deref()
            .is_some_and(|id| ANY_ROLE.contains(&id));
        if !any_role {
            statuses.insert(403);
        }
    }
    statuses
}
