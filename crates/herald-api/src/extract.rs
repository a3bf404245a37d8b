//! Request extractors that turn every malformed input into a problem naming the field:
//! JSON bodies ([`JsonBody`]), query strings ([`QueryParams`]), and the paging parameters
//! every list shares ([`PageParams`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_core::page::{Page, PageRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::problem::ApiError;

/// A JSON request body. Unknown fields, wrong types and missing fields are reported with the
/// path of the field (422); syntax errors as malformed JSON (400); a body over the limit as 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON request body that may be left out: an empty body is `None`, whatever its content
/// type, and so is `null`; anything else is checked exactly as [`JsonBody`] checks it.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        // A JSON `null` leaves the body out too.
        parse_json::<Option<T>>(&bytes).map(Self)
    }
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// How long a request's body may take to arrive once its handler reads it. The connection's
/// header and idle timeouts do not run while a request is served, so without this a client
/// sending its body a byte a minute held a connection (and a slot under the cap) for ever.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole body, within the configured limit (413 beyond it) and [`BODY_READ_TIMEOUT`] (408).
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(usize::MAX, |l| l.0);
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(req, state))
        .await
        .map_err(|_| ApiError::BodyTimeout {
            seconds: BODY_READ_TIMEOUT.as_secs(),
        })?;
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::MalformedJson(rejection.body_text())
        }
    })
}

/// Middleware: answers 400 in problem+json for a path that does not percent-decode to UTF-8.
/// axum's `Path` extractor refuses such a path with a plain-text 400; checked here first, the
/// answer is a problem like every other. (A path whose whole text decodes has every segment
/// decode too: segments are split at `/`, which no UTF-8 sequence contains.)
pub async fn decodable_path(request: Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    if percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .is_err()
    {
        return ApiError::UndecodablePath.into_response();
    }
    next.run(request).await
}

/// The configured body limit, put in request extensions so errors can quote it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Parses JSON, naming the field at fault.
///
/// A number with a zero fraction (`30.0`) is an integer to JSON Schema, and so to the OpenAPI
/// document and the clients made from it, but serde refuses it where it expects one. When the
/// parse fails on such a number, that number — only the one serde refused, where it wanted an
/// integer, so `2.0` in free-form data such as `custom_data` stays `2.0` — is read as an
/// integer and the parse tried again (only then: the common path parses once).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match parse_json_once(bytes) {
        Err(ApiError::Invalid(refused)) if is_float_refusal(&refused.message) => {
            let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                return Err(refused.into());
            };
            // One rewrite per refused number; a body has finitely many, and this bound keeps a
            // hostile one from looping long.
            for _ in 0..MAX_INTEGRAL_REWRITES {
                match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                    Ok(parsed) => return Ok(parsed),
                    Err(e) => {
                        let message = e.inner().to_string();
                        let Some(steps) = refused_float_at(e.path(), &message) else {
                            return Err(invalid_at(&e.path().to_string(), &message).into());
                        };
                        if !integral_float_as_integer(&mut value, &steps) {
                            return Err(refused.into());
                        }
                    }
                }
            }
            Err(refused.into())
        }
        other => other,
    }
}

/// Integral floats rewritten, at most, when a body is read again (see [`parse_json`]).
const MAX_INTEGRAL_REWRITES: usize = 64;

fn is_float_refusal(message: &str) -> bool {
    message.starts_with("invalid type: floating point")
}

/// One step of the way to a value in a JSON document.
enum Step {
    Key(String),
    Index(usize),
}

/// Where the float serde refused as an integer is, when that is what `message` says: `path`,
/// then the paths [`object_or_null`] put in front of an error from inside an object
/// (`inside `schedule_seconds[0]`: invalid type: floating point …`).
fn refused_float_at(path: &serde_path_to_error::Path, message: &str) -> Option<Vec<Step>> {
    use serde_path_to_error::Segment;
    let mut steps = path
        .iter()
        .map(|segment| match segment {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let mut rest = message;
    while let Some(nested) = rest.strip_prefix(NESTED) {
        let (inner, after) = nested.split_once("`: ")?;
        for part in inner.split('.').filter(|p| !p.is_empty()) {
            let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
            if !key.is_empty() {
                steps.push(Step::Key(key.to_owned()));
            }
            for index in indexes.split('[').filter(|i| !i.is_empty()) {
                steps.push(Step::Index(index.trim_end_matches(']').parse().ok()?));
            }
        }
        rest = after;
    }
    is_float_refusal(rest).then_some(steps)
}

/// Rewrites the number at `steps` from `1.0` to `1`, if it is an integral float within ±2^53
/// (where every integer is exact as an f64); says whether it did.
fn integral_float_as_integer(value: &mut serde_json::Value, steps: &[Step]) -> bool {
    let mut at = value;
    for step in steps {
        let next = match step {
            Step::Index(index) => at.get_mut(*index),
            Step::Key(key) => at.get_mut(key.as_str()),
        };
        match next {
            Some(next) => at = next,
            None => return false,
        }
    }
    let Some(f) = at.as_f64().filter(|_| at.is_f64()) else {
        return false;
    };
    if f.fract() != 0.0 || f.abs() > 9_007_199_254_740_992.0 {
        return false;
    }
    *at = serde_json::Value::from(f as i64);
    true
}

/// The top-level body must be an object: serde would also read a struct from a JSON array of
/// its fields' values, which no document describes.
fn parse_json_once<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Err(herald_core::InvalidField::new("body", "must be a JSON object").into());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let message = strip_position(&message);
                invalid_at(&path, message).into()
            }
            _ => ApiError::MalformedJson(inner.to_string()),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 9" to data errors; the field path says more.
fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// Builds the field error for a serde data error at `path`. serde_path_to_error's path already
/// ends at an unknown field, but stops at the parent of a missing or repeated one, so that name
/// is added.
fn invalid_at(path: &str, message: &str) -> herald_core::InvalidField {
    let parent = if path == "." { "" } else { path };
    // An error from inside a field read by `object_or_null`, which says where.
    if let Some((inner, message)) = message
        .strip_prefix(NESTED)
        .and_then(|rest| rest.split_once("`: "))
    {
        let path = match (parent, inner) {
            (parent, ".") => parent.to_owned(),
            ("", inner) => inner.to_owned(),
            (parent, inner) => format!("{parent}.{inner}"),
        };
        return invalid_at(&path, message);
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            parent.to_owned()
        };
        let expected = expected.trim_start_matches(',').trim();
        let message = if expected.is_empty() {
            "is not a known field".to_owned()
        } else {
            format!("is not a known field ({expected})")
        };
        return herald_core::InvalidField::new(field, message);
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return herald_core::InvalidField::new(field, "is given more than once");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return herald_core::InvalidField::new(field, "is required");
    }
    let field = if parent.is_empty() { "body" } else { parent };
    herald_core::InvalidField::new(field, message)
}

/// For optional fields holding a struct: serde reads a struct from a JSON array of its values
/// too, which no document describes; this takes only an object (or `null`, for none). Use with
/// `#[serde(default, deserialize_with = "object_or_null")]`.
pub fn object_or_null<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(None),
        Some(value @ serde_json::Value::Object(_)) => serde_path_to_error::deserialize(value)
            .map(Some)
            .map_err(|e| {
                // The path inside the object, for `invalid_at` to join to the field's.
                let inner = e.path().to_string();
                serde::de::Error::custom(format!("{NESTED}{inner}`: {}", e.into_inner()))
            }),
        Some(_) => Err(serde::de::Error::custom("must be a JSON object")),
    }
}

/// How [`object_or_null`] prefixes an error from inside the object with where it is.
const NESTED: &str = "inside `";

/// [`present`] for fields holding a struct: only an object, or `null`.
pub fn present_object<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    object_or_null(d).map(Some)
}

/// [`non_null`] for fields holding a struct: only an object.
pub fn non_null_object<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    match object_or_null(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(NOT_NULL)),
    }
}

/// For PATCH fields that can be cleared: tells a field sent as `null` (`Some(None)`) from one
/// not sent (`None`). Use with `#[serde(default, deserialize_with = "present")]`.
pub fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// For PATCH fields that cannot be cleared: absent is `None`, `null` is refused (422 naming the
/// field) rather than taken for absent. Use with `#[serde(default, deserialize_with =
/// "non_null")]` and `#[schema(nullable = false)]`, so the OpenAPI document agrees.
pub fn non_null<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    match Option::<T>::deserialize(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(NOT_NULL)),
    }
}

/// What [`non_null`] says of a `null`.
const NOT_NULL: &str = "may not be null (omit it to leave the value as it is)";

/// A query string, deserialised with the offending parameter named (400).
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = invalid_at(&path, &message);
                ApiError::BadQuery {
                    field: if field.field == "body" {
                        "query".into()
                    } else {
                        field.field
                    },
                    message: field.message,
                }
            })
    }
}

/// `?limit=&cursor=`, shared by every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 250 (default 50).
    #[param(schema_with = herald_core::openapi::page_limit)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        page_request(self.limit, self.cursor.as_deref())
    }
}

/// Reads `limit` and `cursor` for lists whose query has filters besides them (serde's `flatten`
/// does not work with query strings, so each such query repeats the two fields).
pub fn page_request(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    PageRequest::parse(limit, cursor).map_err(|e| ApiError::BadQuery {
        field: e.field,
        message: e.message,
    })
}

/// One page of a list, as every list endpoint answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn from_page<U>(page: Page<U>, view: impl FnMut(U) -> T) -> Self {
        let next_cursor = page.next.as_ref().map(herald_core::page::Cursor::encode);
        Self {
            data: page.items.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}
