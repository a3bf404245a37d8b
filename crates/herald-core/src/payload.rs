//! Rendering: what one try of a delivery carries, as JSON, for each payload [`Format`].
//!
//! The delivery engine builds a [`DeliveryContext`] per attempt, calls [`render`], serialises the
//! value once, and hands both the value and the bytes to [`crate::signing::sign`]. GET webhooks
//! send the same value as query parameters ([`query_params`]). Nothing here does I/O, reads the
//! clock or draws random numbers: every input is in the context, so a payload is a function of
//! it and tests pin it exactly.
//!
//! Invariants:
//! - Keys come out in the order each seed document shows them (serde_json's `preserve_order`).
//! - Custom data never overwrites what the event said: it only adds keys the event data lacks
//!   (see [`merge_custom`]).
//! - Every timestamp is RFC 3339 in UTC. `standard` and `cloudshare` write them as the management
//!   API does (`2024-05-01T09:54:03.120Z`); `connect` as its document shows
//!   (`2021-05-27T09:54:03+00:00`, whole seconds); templates as `connect` but keeping any
//!   milliseconds, so a template can reproduce the CloudBlue body.

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use crate::event::Event;
use crate::id::DeliveryId;
use crate::shape::{Format, Template, placeholders};
use crate::time::Timestamp;
use crate::webhook::Webhook;

/// Everything one try of a delivery is rendered from.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryContext<'a> {
    pub event: &'a Event,
    pub webhook: &'a Webhook,
    pub delivery_id: &'a DeliveryId,
    /// 1-based number of this try.
    pub attempt: u32,
    /// When this try is sent.
    pub triggered_at: Timestamp,
    pub last_success_at: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    /// Herald's public base URL, for the `connect` format's `api_url`.
    pub api_url: &'a str,
}

/// The key of the webhook's custom data that the `connect` format lifts to `product_id`.
pub const CONNECT_PRODUCT_ID_KEY: &str = "product_id";

/// The payload as JSON, shaped by the webhook's format, with its custom data merged in.
///
/// | format | payload | custom data goes |
/// |---|---|---|
/// | `standard` | `{"type","timestamp","data"}`; `timestamp` is when the event occurred | into `data` |
/// | `cloudshare` | `{"Event","CreatedAt","CreatedById","CreatedByEmail","Attempt","Payload"}`; the `CreatedBy*` from the event's actor (or null) | into `Payload` |
/// | `event-data` | `{"event","data"}` | into `data` |
/// | `connect` | the CloudBlue body (below) | into `data`, except `product_id` |
/// | `raw` | the event data as is | into it, when it is an object |
/// | `custom` | the template, filled ([`fill_template`]) | as `{{ custom.* }}` only |
///
/// `connect` fills CloudBlue's keys from Herald's concepts: `webhook_id`/`webhook_name` are the
/// webhook's, `object_class` is the event type, `account_id` the project id, `product_id` the
/// custom data's `product_id` (else null), `api_url` the context's, `processing_timeout` the
/// webhook's timeout in seconds, and `data` the event data.
pub fn render(ctx: &DeliveryContext) -> Value {
    let event = ctx.event;
    let custom = ctx.webhook.custom_data.as_map();
    match &ctx.webhook.shape.format {
        Format::Standard => json!({
            "type": event.event_type.as_str(),
            "timestamp": api_time(&event.occurred_at),
            "data": merge_custom(event.data.clone(), custom, &[]),
        }),
        Format::Cloudshare => {
            let actor = event.actor.as_ref();
            json!({
                "Event": event.event_type.as_str(),
                "CreatedAt": api_time(&event.occurred_at),
                "CreatedById": actor.and_then(|a| a.id.as_deref()),
                "CreatedByEmail": actor.and_then(|a| a.email.as_deref()),
                "Attempt": ctx.attempt,
                "Payload": merge_custom(event.data.clone(), custom, &[]),
            })
        }
        Format::EventData => json!({
            "event": event.event_type.as_str(),
            "data": merge_custom(event.data.clone(), custom, &[]),
        }),
        Format::Connect => json!({
            "webhook_id": ctx.webhook.id.as_str(),
            "webhook_name": ctx.webhook.name,
            "object_class": event.event_type.as_str(),
            "account_id": event.project_id.as_str(),
            "product_id": custom.get(CONNECT_PRODUCT_ID_KEY).cloned().unwrap_or(Value::Null),
            "api_url": ctx.api_url,
            "triggered_at": connect_time(&ctx.triggered_at),
            "last_success_at": ctx.last_success_at.as_ref().map(connect_time),
            "last_failure_at": ctx.last_failure_at.as_ref().map(connect_time),
            "processing_timeout": ctx.webhook.timeout.duration().as_secs(),
            "data": merge_custom(event.data.clone(), custom, &[CONNECT_PRODUCT_ID_KEY]),
        }),
        Format::Raw => merge_custom(event.data.clone(), custom, &[]),
        Format::Custom { template } => fill_template(template, ctx),
    }
}

/// Adds the custom data's keys to `data`, after the event's own keys, skipping `except`.
///
/// - The event wins a conflict: a key the event data already has keeps the event's value, so a
///   webhook's static configuration can never mask what actually happened.
/// - Null data with custom data to add becomes the custom data object (the validation event and
///   data-less events still carry the webhook's additional data).
/// - Data that is neither an object nor null (an array, a string) cannot take keys and is left
///   as is; custom data then reaches a receiver only through a custom template.
pub fn merge_custom(data: Value, custom: &Map<String, Value>, except: &[&str]) -> Value {
    let mut extra = custom
        .iter()
        .filter(|(k, _)| !except.contains(&k.as_str()))
        .peekable();
    if extra.peek().is_none() {
        return data;
    }
    match data {
        Value::Object(mut map) => {
            for (k, v) in extra {
                if !map.contains_key(k) {
                    map.insert(k.clone(), v.clone());
                }
            }
            Value::Object(map)
        }
        Value::Null => Value::Object(extra.map(|(k, v)| (k.clone(), v.clone())).collect()),
        other => other,
    }
}

/// Fills a custom template.
///
/// A string that is exactly one placeholder (`"{{ event.data }}"`) becomes the typed value: an
/// object stays an object, a number a number, a missing value `null`. Placeholders inside a
/// longer string are spliced in as text: strings as they are, `null` as nothing, anything else as
/// compact JSON. Object keys are never filled. Paths below `event.data` and `custom` walk object
/// keys and array indexes (`event.data.items.0.sku`).
pub fn fill_template(template: &Template, ctx: &DeliveryContext) -> Value {
    fill(template.as_value(), ctx)
}

fn fill(value: &Value, ctx: &DeliveryContext) -> Value {
    match value {
        Value::String(s) => fill_string(s, ctx),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, ctx)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), fill(v, ctx))).collect())
        }
        other => other.clone(),
    }
}

fn fill_string(s: &str, ctx: &DeliveryContext) -> Value {
    // A saved template was checked by `Template::parse`; should an unclosed `{{` reach here
    // anyway, the string goes out as written rather than half-filled.
    let Ok(found) = placeholders(s) else {
        return Value::String(s.to_owned());
    };
    if found.len() == 1 && s.starts_with("{{") && s.find("}}") == Some(s.len() - 2) {
        return lookup(found[0], ctx);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        match lookup(after[..end].trim(), ctx) {
            Value::Null => {}
            Value::String(text) => out.push_str(&text),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}

/// The value of one placeholder path, or null when there is none.
fn lookup(path: &str, ctx: &DeliveryContext) -> Value {
    let event = ctx.event;
    let actor = event.actor.as_ref();
    let text = |s: &str| Value::String(s.to_owned());
    let time = |t: &Option<Timestamp>| t.as_ref().map_or(Value::Null, |t| text(&template_time(t)));
    match path {
        "event.id" => text(event.id.as_str()),
        "event.type" => text(event.event_type.as_str()),
        "event.occurred_at" => text(&template_time(&event.occurred_at)),
        "event.project_id" => text(event.project_id.as_str()),
        "event.actor.id" => actor
            .and_then(|a| a.id.as_deref())
            .map_or(Value::Null, text),
        "event.actor.email" => actor
            .and_then(|a| a.email.as_deref())
            .map_or(Value::Null, text),
        "webhook.id" => text(ctx.webhook.id.as_str()),
        "webhook.name" => text(&ctx.webhook.name),
        "webhook.project_id" => text(ctx.webhook.project_id.as_str()),
        "webhook.last_success_at" => time(&ctx.last_success_at),
        "webhook.last_failure_at" => time(&ctx.last_failure_at),
        "webhook.timeout_seconds" => Value::from(ctx.webhook.timeout.duration().as_secs()),
        "delivery.id" => text(ctx.delivery_id.as_str()),
        "attempt.number" => Value::from(ctx.attempt),
        "attempt.triggered_at" => text(&template_time(&ctx.triggered_at)),
        "event.data" => event.data.clone(),
        "custom" => Value::Object(ctx.webhook.custom_data.as_map().clone()),
        _ => {
            if let Some(rest) = path.strip_prefix("event.data.") {
                walk(&event.data, rest)
            } else if let Some(rest) = path.strip_prefix("custom.") {
                walk_map(ctx.webhook.custom_data.as_map(), rest)
            } else {
                Value::Null
            }
        }
    }
}

fn walk_map(map: &Map<String, Value>, dotted: &str) -> Value {
    let (first, rest) = dotted.split_once('.').unwrap_or((dotted, ""));
    match map.get(first) {
        Some(v) if rest.is_empty() => v.clone(),
        Some(v) => walk(v, rest),
        None => Value::Null,
    }
}

fn walk(value: &Value, dotted: &str) -> Value {
    let mut at = value;
    for segment in dotted.split('.') {
        let next = match at {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return Value::Null,
        }
    }
    at.clone()
}

/// As the management API shows timestamps: `Z`, milliseconds only when there are any.
fn api_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// As CloudBlue's document shows them: `+00:00`, whole seconds.
fn connect_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// In templates: `+00:00` like `connect`, keeping milliseconds when there are any.
fn template_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// The payload as query parameters, for GET webhooks, in the payload's key order.
///
/// Top-level strings go as they are, numbers and booleans as their JSON text, `null` as an empty
/// value, and nested objects and arrays as compact JSON. A payload that is not an object (a
/// `raw` array, say) goes as one parameter named `payload` holding its compact JSON.
pub fn query_params(payload: &Value) -> Vec<(String, String)> {
    let as_param = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match payload {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), as_param(v))).collect(),
        other => vec![("payload".to_owned(), other.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, EventId};
    use crate::event_type::EventTypeName;
    use crate::filter::EventFilter;
    use crate::id::{ProjectId, WebhookId};
    use crate::secret::SigningSecret;
    use crate::shape::{Preset, Shape};
    use crate::time::from_millis;
    use crate::webhook::{
        CustomData, CustomHeaders, HttpMethod, TargetUrl, Timeout, WebhookStatus,
    };

    // 2021-05-27T09:54:03Z and friends, the instants of CloudBlue's example.
    const TRIGGERED_MS: i64 = 1_622_109_243_000;
    const LAST_FAILURE_MS: i64 = 1_622_109_152_000;

    fn event(data: Value) -> Event {
        Event {
            id: EventId::parse("evt_1").unwrap(),
            project_id: ProjectId::parse("prj_01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap(),
            event_type: EventTypeName::parse("environment.suspended").unwrap(),
            occurred_at: from_millis(TRIGGERED_MS - 60_000 + 120),
            data,
            actor: Some(Actor {
                id: Some("u-42".into()),
                email: Some("pm@example.com".into()),
            }),
            created_at: from_millis(TRIGGERED_MS),
        }
    }

    fn webhook(format: Format, custom: Value) -> Webhook {
        Webhook {
            id: WebhookId::parse("wh_01HYYYYYYYYYYYYYYYYYYYYYYY").unwrap(),
            project_id: ProjectId::parse("prj_01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap(),
            name: "Tutorial Webhook".into(),
            description: None,
            url: TargetUrl::parse("https://example.com/hook", false).unwrap(),
            method: HttpMethod::Post,
            filter: EventFilter::parse(None).unwrap(),
            headers: CustomHeaders::default(),
            custom_data: CustomData::parse(custom).unwrap(),
            shape: Shape::resolve(None, Some(format), None),
            timeout: Timeout::from_seconds(600).unwrap(),
            retry_policy: None,
            status: WebhookStatus::Active,
            status_reason: None,
            secret: SigningSecret::generate(),
            previous_secret: None,
            created_at: from_millis(0),
            updated_at: from_millis(0),
        }
    }

    fn render_with(format: Format, data: Value, custom: Value) -> Value {
        let event = event(data);
        let webhook = webhook(format, custom);
        let delivery_id = DeliveryId::parse("dlv_01HXXXXXXXXXXXXXXXXXXXXXXX").unwrap();
        render(&DeliveryContext {
            event: &event,
            webhook: &webhook,
            delivery_id: &delivery_id,
            attempt: 3,
            triggered_at: from_millis(TRIGGERED_MS + 456),
            last_success_at: None,
            last_failure_at: Some(from_millis(LAST_FAILURE_MS)),
            api_url: "https://herald.example.com/v1/",
        })
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn standard_is_type_timestamp_data_with_custom_data_in_data() {
        let p = render_with(
            Format::Standard,
            json!({"b": 1, "a": 2}),
            json!({"tenant": "t1"}),
        );
        assert_eq!(keys(&p), ["type", "timestamp", "data"]);
        assert_eq!(p["type"], "environment.suspended");
        assert_eq!(p["timestamp"], "2021-05-27T09:53:03.120Z");
        assert_eq!(
            keys(&p["data"]),
            ["b", "a", "tenant"],
            "event keys keep their order"
        );
        assert_eq!(
            p.to_string(),
            r#"{"type":"environment.suspended","timestamp":"2021-05-27T09:53:03.120Z","data":{"b":1,"a":2,"tenant":"t1"}}"#
        );
    }

    #[test]
    fn cloudshare_is_its_envelope_with_the_actor_and_attempt() {
        let p = render_with(
            Format::Cloudshare,
            json!({"environmentId": "env-1"}),
            json!({"region": "eu"}),
        );
        assert_eq!(
            keys(&p),
            [
                "Event",
                "CreatedAt",
                "CreatedById",
                "CreatedByEmail",
                "Attempt",
                "Payload"
            ]
        );
        assert_eq!(p["Event"], "environment.suspended");
        assert_eq!(p["CreatedAt"], "2021-05-27T09:53:03.120Z");
        assert_eq!(p["CreatedById"], "u-42");
        assert_eq!(p["CreatedByEmail"], "pm@example.com");
        assert_eq!(p["Attempt"], 3);
        assert_eq!(
            p["Payload"],
            json!({"environmentId": "env-1", "region": "eu"})
        );
    }

    #[test]
    fn cloudshare_without_an_actor_says_null() {
        let mut e = event(json!({}));
        e.actor = None;
        let w = webhook(Format::Cloudshare, Value::Null);
        let d = DeliveryId::new();
        let p = render(&DeliveryContext {
            event: &e,
            webhook: &w,
            delivery_id: &d,
            attempt: 1,
            triggered_at: from_millis(0),
            last_success_at: None,
            last_failure_at: None,
            api_url: "",
        });
        assert_eq!(p["CreatedById"], Value::Null);
        assert_eq!(p["CreatedByEmail"], Value::Null);
        assert_eq!(p["Attempt"], 1);
    }

    #[test]
    fn event_data_is_event_and_data_only() {
        let p = render_with(Format::EventData, json!({}), Value::Null);
        assert_eq!(
            p.to_string(),
            r#"{"event":"environment.suspended","data":{}}"#
        );
    }

    #[test]
    fn connect_reproduces_the_cloudblue_body() {
        let p = render_with(
            Format::Connect,
            json!({"purpose": "demo"}),
            json!({"product_id": "PRD-578-226-824", "audience": "partners"}),
        );
        assert_eq!(
            keys(&p),
            [
                "webhook_id",
                "webhook_name",
                "object_class",
                "account_id",
                "product_id",
                "api_url",
                "triggered_at",
                "last_success_at",
                "last_failure_at",
                "processing_timeout",
                "data"
            ]
        );
        assert_eq!(
            p,
            json!({
                "webhook_id": "wh_01HYYYYYYYYYYYYYYYYYYYYYYY",
                "webhook_name": "Tutorial Webhook",
                "object_class": "environment.suspended",
                "account_id": "prj_01HZZZZZZZZZZZZZZZZZZZZZZZ",
                "product_id": "PRD-578-226-824",
                "api_url": "https://herald.example.com/v1/",
                "triggered_at": "2021-05-27T09:54:03+00:00",
                "last_success_at": null,
                "last_failure_at": "2021-05-27T09:52:32+00:00",
                "processing_timeout": 600,
                "data": {"purpose": "demo", "audience": "partners"}
            })
        );
    }

    #[test]
    fn connect_without_a_product_id_says_null() {
        let p = render_with(Format::Connect, json!({}), Value::Null);
        assert_eq!(p["product_id"], Value::Null);
        assert_eq!(p["data"], json!({}));
    }

    #[test]
    fn raw_is_the_data_with_custom_data_merged_only_into_objects() {
        let p = render_with(Format::Raw, json!({"ref": "main"}), json!({"x": 1}));
        assert_eq!(p, json!({"ref": "main", "x": 1}));
        let p = render_with(Format::Raw, json!([1, 2]), json!({"x": 1}));
        assert_eq!(p, json!([1, 2]));
        let p = render_with(Format::Raw, json!({"ref": "main"}), Value::Null);
        assert_eq!(p, json!({"ref": "main"}));
    }

    #[test]
    fn the_event_wins_over_custom_data_and_null_data_takes_it_whole() {
        let custom = Map::from_iter([
            ("a".to_owned(), json!("custom")),
            ("b".to_owned(), json!(2)),
        ]);
        assert_eq!(
            merge_custom(json!({"a": "event"}), &custom, &[]),
            json!({"a": "event", "b": 2})
        );
        assert_eq!(merge_custom(Value::Null, &custom, &["a"]), json!({"b": 2}));
        assert_eq!(merge_custom(Value::Null, &Map::new(), &[]), Value::Null);
        assert_eq!(merge_custom(json!("text"), &custom, &[]), json!("text"));
    }

    fn custom(template: Value) -> Format {
        Format::Custom {
            template: Template::parse(template).unwrap(),
        }
    }

    #[test]
    fn templates_keep_types_for_whole_placeholders_and_splice_text_otherwise() {
        let t = custom(json!({
            "whole": "{{ event.data }}",
            "deep": "{{event.data.items.1.sku}}",
            "n": "{{ attempt.number }}",
            "missing": "{{ event.data.nope }}",
            "text": "#{{attempt.number}} of {{ event.type }} by {{event.actor.email}}{{custom.none}}!",
            "obj_in_text": "d={{ event.data.items.0 }}",
            "list": ["{{ custom.tier }}", 7, null, true],
            "brace_after": "{{ attempt.number }}}}",
            "{{ event.id }}": "keys are not filled",
        }));
        let p = render_with(
            t,
            json!({"items": [{"sku": "a"}, {"sku": "b"}]}),
            json!({"tier": {"level": 2}}),
        );
        assert_eq!(p["whole"], json!({"items": [{"sku": "a"}, {"sku": "b"}]}));
        assert_eq!(p["deep"], "b");
        assert_eq!(p["n"], 3);
        assert_eq!(p["missing"], Value::Null);
        assert_eq!(p["text"], "#3 of environment.suspended by pm@example.com!");
        assert_eq!(p["obj_in_text"], r#"d={"sku":"a"}"#);
        assert_eq!(p["list"], json!([{"level": 2}, 7, null, true]));
        assert_eq!(
            p["brace_after"], "3}}",
            "one placeholder, but not the whole string"
        );
        assert_eq!(p["{{ event.id }}"], "keys are not filled");
    }

    #[test]
    fn a_template_reproduces_the_cloudblue_body() {
        let t = custom(json!({
            "webhook_id": "{{ webhook.id }}",
            "webhook_name": "{{ webhook.name }}",
            "object_class": "{{ event.type }}",
            "account_id": "{{ event.project_id }}",
            "product_id": "{{ custom.product_id }}",
            "api_url": "https://herald.example.com/v1/",
            "triggered_at": "{{ attempt.triggered_at }}",
            "last_success_at": "{{ webhook.last_success_at }}",
            "last_failure_at": "{{ webhook.last_failure_at }}",
            "processing_timeout": "{{ webhook.timeout_seconds }}",
            "data": "{{ event.data }}",
        }));
        let mut from_template = render_with(t, json!({"purpose": "demo"}), Value::Null);
        let from_format = render_with(Format::Connect, json!({"purpose": "demo"}), Value::Null);
        // The template keeps the attempt's milliseconds; the format, as its document, drops them.
        assert_eq!(
            from_template["triggered_at"],
            "2021-05-27T09:54:03.456+00:00"
        );
        from_template["triggered_at"] = from_format["triggered_at"].clone();
        assert_eq!(from_template.to_string(), from_format.to_string());
    }

    #[test]
    fn every_known_placeholder_is_filled() {
        let template: Map<String, Value> = Template::PLACEHOLDERS
            .iter()
            .map(|(p, _)| ((*p).to_owned(), Value::String(format!("{{{{{p}}}}}"))))
            .collect();
        let p = render_with(
            custom(Value::Object(template)),
            json!({"k": 1}),
            json!({"c": 1}),
        );
        for (path, _) in Template::PLACEHOLDERS {
            let nullable = *path == "webhook.last_success_at";
            assert_eq!(
                p[*path].is_null(),
                nullable,
                "{path} rendered as {}",
                p[*path]
            );
        }
        assert_eq!(p["delivery.id"], "dlv_01HXXXXXXXXXXXXXXXXXXXXXXX");
        assert_eq!(p["event.id"], "evt_1");
        assert_eq!(p["webhook.timeout_seconds"], 600);
        assert_eq!(p["event.occurred_at"], "2021-05-27T09:53:03.120+00:00");
    }

    #[test]
    fn query_params_flatten_one_level() {
        let p = json!({"b": "text", "a": 1, "n": null, "t": true, "o": {"x": [1, 2]}});
        assert_eq!(
            query_params(&p),
            [
                ("b", "text"),
                ("a", "1"),
                ("n", ""),
                ("t", "true"),
                ("o", r#"{"x":[1,2]}"#)
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            query_params(&json!([1, "a"])),
            [("payload".to_owned(), r#"[1,"a"]"#.to_owned())]
        );
    }

    #[test]
    fn presets_render_their_formats() {
        let (format, _) = Preset::Github.shape();
        let p = render_with(format, json!({"zen": "ok"}), Value::Null);
        assert_eq!(p, json!({"zen": "ok"}));
    }
}
