//! The rules of this crate's parsers as OpenAPI (JSON Schema) constraints, built from the same
//! constants the parsers check, so that the API document — and every client generated from it —
//! refuses what the server refuses and nothing else.
//!
//! The API's request types point at these with `#[schema(schema_with = …)]`. Patterns are
//! written for both ECMA-262 (what OpenAPI names) and Python's `re` (what generated clients and
//! the API fuzzer use): plain classes, `\uXXXX` escapes and one negative lookahead. The tests
//! below check each pattern against its parser on the edge cases.

use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};

use crate::event::EventId;
use crate::event_type::EventTypeName;
use crate::page::PageRequest;
use crate::project::{ProjectName, ProjectSettings};
use crate::webhook::{RetryPolicy, RotationGrace, TargetUrl, Timeout};

/// What `str::trim` removes: Unicode's White_Space, as the inside of a regex class.
const WHITESPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// What `char::is_control` is: the Cc category, as the inside of a regex class.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

fn string(nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new().schema_type(kind)
}

fn integer(min: u64, max: u64, nullable: bool) -> Object {
    let kind = if nullable {
        SchemaType::from_iter([Type::Integer, Type::Null])
    } else {
        SchemaType::new(Type::Integer)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .minimum(Some(usize::try_from(min).unwrap_or(usize::MAX)))
        .maximum(Some(usize::try_from(max).unwrap_or(usize::MAX)))
        .build()
}

/// The pattern of [`crate::validation::text`] with `max` characters: once trimmed, 1 to `max`
/// characters, none of them a control character (the trimmed edges may hold any whitespace).
/// With `empty`, also blank text ([`crate::validation::optional_text`], which reads it as none).
pub fn text_pattern(max: usize, empty: bool) -> String {
    let edge = format!("[^{WHITESPACE}{CONTROL}]");
    let inner = format!("[^{CONTROL}]{{0,{}}}", max.saturating_sub(2));
    let core = format!("{edge}(?:{inner}{edge})?");
    let core = if empty { format!("(?:{core})?") } else { core };
    format!("^[{WHITESPACE}]*{core}[{WHITESPACE}]*$")
}

/// A required free-text field ([`crate::validation::text`]).
pub fn text(max: usize) -> ObjectBuilder {
    string(false).pattern(Some(text_pattern(max, false)))
}

/// An optional free-text field that `null` or blank text clears
/// ([`crate::validation::optional_text`]).
pub fn optional_text(max: usize) -> ObjectBuilder {
    string(true).pattern(Some(text_pattern(max, true)))
}

/// A webhook's or API key's name ([`crate::validation::NAME_MAX_LEN`]).
pub fn name() -> Object {
    text(crate::validation::NAME_MAX_LEN).build()
}

/// A description; `null` or blank text clears it ([`crate::validation::DESCRIPTION_MAX_LEN`]).
pub fn description() -> Object {
    optional_text(crate::validation::DESCRIPTION_MAX_LEN).build()
}

/// A project name ([`ProjectName::parse`]).
pub fn project_name() -> Object {
    string(false)
        .min_length(Some(1))
        .max_length(Some(ProjectName::MAX_LEN))
        .pattern(Some(format!(
            "^(?!{})[a-z0-9][a-z0-9._-]{{0,{}}}$",
            ProjectName::RESERVED_PREFIX,
            ProjectName::MAX_LEN - 1
        )))
        .description(Some(
            "A URL-safe slug (lower-case letters, digits, `-`, `_`, `.`), usable in place of the \
             id; not starting with `prj_`, which marks ids.",
        ))
        .build()
}

/// The regex of an event type name ([`EventTypeName::parse`]), without anchors.
fn event_type_name_regex() -> String {
    let edge = "[A-Za-z0-9_:/-]";
    let inner = "[A-Za-z0-9._:/ -]";
    format!(
        "(?!.*\\.\\.){edge}(?:{inner}{{0,{}}}{edge})?",
        EventTypeName::MAX_LEN - 2
    )
}

fn event_type_name_schema(nullable: bool) -> Object {
    string(nullable)
        .min_length(Some(1))
        .max_length(Some(EventTypeName::MAX_LEN))
        .pattern(Some(format!("^{}$", event_type_name_regex())))
        .build()
}

/// An event type name ([`EventTypeName::parse`]).
pub fn event_type_name() -> Object {
    event_type_name_schema(false)
}

/// An event type name, or `null`.
pub fn optional_event_type_name() -> Object {
    event_type_name_schema(true)
}

/// A webhook's `events` ([`crate::filter::EventFilter::parse`]): 1 to 250 distinct names or
/// `prefix.*` wildcards, or `["*"]` alone for all; `null` also means all.
pub fn event_patterns() -> Array {
    let item = string(false)
        .pattern(Some(format!(
            "^(?:\\*|{}(?:\\.\\*)?)$",
            event_type_name_regex()
        )))
        .build();
    let kind = SchemaType::from_iter([Type::Array, Type::Null]);
    ArrayBuilder::new()
        .schema_type(kind)
        .items(item)
        .min_items(Some(1))
        .max_items(Some(crate::filter::EventFilter::MAX_PATTERNS))
        .unique_items(true)
        .description(Some(
            "Event types to receive: exact names and `prefix.*` wildcards; `[\"*\"]` or null for \
             all.",
        ))
        .build()
}

/// An event type's JSON Schema ([`crate::event_type::EventSchema::parse`]): an object or a
/// boolean (`true` accepts any data, `false` none); `null` for none.
pub fn json_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::Object,
            Type::Boolean,
            Type::Null,
        ]))
        .description(Some("A JSON Schema every event's `data` must satisfy."))
        .build()
}

/// A publisher's event id ([`EventId::parse`]), or `null` for one made by Herald.
pub fn optional_event_id() -> Object {
    string(true)
        .min_length(Some(1))
        .max_length(Some(EventId::MAX_LEN))
        .pattern(Some(format!(
            "^[A-Za-z0-9_.:~-]{{1,{}}}$",
            EventId::MAX_LEN
        )))
        .build()
}

/// A webhook's target URL ([`TargetUrl::parse`]): the length is checked here; that it is an
/// absolute http(s) URL with a host and no fragment, by the server.
pub fn target_url() -> Object {
    string(false).max_length(Some(TargetUrl::MAX_LEN)).build()
}

/// A webhook's custom headers ([`crate::webhook::CustomHeaders::parse`]): at most 50, each name
/// an HTTP token of up to 128 characters, each value up to 4096 visible ASCII characters (or
/// tabs). Which names a signing scheme reserves the document cannot say: those answer 422.
fn custom_headers(nullable: bool) -> Object {
    use crate::webhook::CustomHeaders;
    let kind = if nullable {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::new(Type::Object)
    };
    let value = string(false)
        .max_length(Some(CustomHeaders::MAX_VALUE_LEN))
        .pattern(Some(r"^[\t -~]*$"));
    let name = string(false)
        .min_length(Some(1))
        .max_length(Some(CustomHeaders::MAX_NAME_LEN))
        .pattern(Some(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"));
    ObjectBuilder::new()
        .schema_type(kind)
        .max_properties(Some(CustomHeaders::MAX_COUNT))
        .property_names(Some(name))
        .additional_properties(Some(value))
        .build()
}

/// Custom headers on create, where `null` means none.
pub fn optional_custom_headers() -> Object {
    custom_headers(true)
}

/// Custom headers on PATCH, where `null` is refused.
pub fn custom_headers_not_null() -> Object {
    custom_headers(false)
}

/// An event's `actor.id` ([`crate::event::Actor::validate`]), or `null`.
pub fn actor_id() -> Object {
    string(true)
        .pattern(Some(text_pattern(crate::event::Actor::MAX_ID_LEN, false)))
        .build()
}

/// An event's `actor.email` ([`crate::event::Actor::validate`]), or `null`.
pub fn actor_email() -> Object {
    string(true)
        .max_length(Some(crate::event::Actor::MAX_EMAIL_LEN))
        .pattern(Some("^[^ @]+@[^ ]+$".to_owned()))
        .build()
}

/// `?limit=` of every list ([`PageRequest::parse`]).
pub fn page_limit() -> Object {
    integer(1, u64::from(PageRequest::MAX_LIMIT), true)
}

/// A project's `retention_days` ([`ProjectSettings::check_retention`]); `null`: the default.
pub fn retention_days() -> Object {
    integer(1, u64::from(ProjectSettings::MAX_RETENTION_DAYS), true)
}

/// A webhook's `timeout_seconds` ([`Timeout::from_seconds`]).
pub fn timeout_seconds() -> Object {
    integer(1, Timeout::MAX_SECONDS, true)
}

/// A webhook's `timeout_seconds` in a change, where `null` is refused.
pub fn timeout_seconds_not_null() -> Object {
    integer(1, Timeout::MAX_SECONDS, false)
}

/// `?status=` of a webhook's deliveries: `all`, or a comma-separated list of statuses (each
/// trimmed).
pub fn delivery_statuses() -> Object {
    let status = "(?:pending|retrying|succeeded|failed|discarded|held)";
    let item = format!("[{WHITESPACE}]*{status}[{WHITESPACE}]*");
    string(true)
        .pattern(Some(format!("^(?:all|{item}(?:,{item})*)$")))
        .build()
}

/// A signing secret the user chooses ([`crate::secret::SigningSecret::chosen`]): 8 to 256
/// visible ASCII characters. What the document cannot say — that Standard Webhooks needs
/// `whsec_` and base64, and that the account-level secret has none to choose — is answered 422.
fn chosen_secret(nullable: bool) -> Object {
    use crate::secret::SigningSecret;
    string(nullable)
        .min_length(Some(SigningSecret::CHOSEN_MIN_LEN))
        .max_length(Some(SigningSecret::CHOSEN_MAX_LEN))
        .pattern(Some("^[!-~]+$"))
        .build()
}

/// A chosen secret that may be left out with `null` (create, rotate).
pub fn optional_secret() -> Object {
    chosen_secret(true)
}

/// A chosen secret where `null` is refused (PATCH).
pub fn secret() -> Object {
    chosen_secret(false)
}

/// A rotation's `grace_seconds` ([`RotationGrace::from_seconds`]).
pub fn grace_seconds() -> Object {
    integer(0, RotationGrace::MAX_SECONDS, true)
}

/// A retry policy's delays ([`RetryPolicy::validate`]).
pub fn retry_schedule() -> Array {
    ArrayBuilder::new()
        .items(integer(1, u64::from(RetryPolicy::MAX_DELAY_SECONDS), false))
        .max_items(Some(RetryPolicy::MAX_RETRIES))
        .description(Some(
            "Delay before each retry, in seconds; the delivery fails after the last one.",
        ))
        .build()
}

/// A retry policy's `out_of_order_after_*` ([`RetryPolicy::validate`]): at least 1, or `null`.
pub fn out_of_order_after() -> Object {
    integer(1, u64::from(u32::MAX), true)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// Whether `value` is valid against `schema`, as a JSON Schema validator sees it.
    fn valid(
        schema: impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
        value: &Value,
    ) -> bool {
        let schema = serde_json::to_value(schema.into()).unwrap();
        jsonschema::validator_for(&schema).unwrap().is_valid(value)
    }

    #[test]
    fn text_patterns_agree_with_text() {
        let cases = [
            "a",
            " a ",
            "a b",
            "\ta\n",
            "\u{3000}a\u{85}",
            "",
            " ",
            "\n",
            "a\nb",
            "a\u{1}",
            "\u{85}",
            "a\u{85}b",
            "abc",
            "abcd",
            "  abc  ",
            "a b\u{2028}c",
        ];
        for case in cases {
            let required = crate::validation::text("f", case, 3).is_ok();
            let optional = crate::validation::optional_text("f", Some(case), 3).is_ok();
            assert_eq!(
                valid(text(3).build(), &json!(case)),
                required,
                "text {case:?}"
            );
            assert_eq!(
                valid(optional_text(3).build(), &json!(case)),
                optional,
                "optional_text {case:?}"
            );
        }
        assert!(valid(optional_text(3).build(), &Value::Null));
    }

    #[test]
    fn custom_header_and_secret_schemas_agree_with_the_parsers() {
        use std::collections::BTreeMap;

        use crate::secret::SigningSecret;
        use crate::shape::{Preset, Shape};
        use crate::webhook::CustomHeaders;
        // The secret header scheme sets X-Webhook-Secret, which no schema can know of; the
        // standard shape reserves names this test does not use.
        let shape = Shape::default();
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("X-{i}"), "v".into())).collect();
        let cases: Vec<BTreeMap<String, String>> = vec![
            [("X-Tenant".into(), "t-1".into())].into(),
            [("X-Tab".into(), "a\tb".into())].into(),
            [("bad name".into(), "v".into())].into(),
            [("X-A".into(), "line\nbreak".into())].into(),
            [("X-A".into(), "é".into())].into(),
            [("X-A".into(), "v".repeat(4097))].into(),
            [("a".repeat(129), "v".into())].into(),
            [("".into(), "v".into())].into(),
            many,
        ];
        for case in cases {
            assert_eq!(
                valid(optional_custom_headers(), &json!(case)),
                CustomHeaders::parse(case.clone(), &shape).is_ok(),
                "headers {case:?}"
            );
        }
        let scheme = Preset::EventData.shape().1;
        for case in [
            "super-secret-key",
            "short",
            "has space!",
            "é-secret-key",
            &"x".repeat(257),
        ] {
            assert_eq!(
                valid(secret(), &json!(case)),
                SigningSecret::chosen(case, &scheme, "secret").is_ok(),
                "secret {case:?}"
            );
        }
    }

    #[test]
    fn name_patterns_agree_with_the_parsers() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for case in [
            "acme", "a-b.c_d", "0", "Acme", "-a", "prj_x", "prj", "", &long, &too_long, "a b",
        ] {
            assert_eq!(
                valid(project_name(), &json!(case)),
                ProjectName::parse(case).is_ok(),
                "project name {case:?}"
            );
        }
        let long = "a".repeat(128);
        let too_long = "a".repeat(129);
        for case in [
            "order.created",
            "Webhook Validate",
            "a:b/c-d_e",
            "",
            "a.*",
            "*",
            ".a",
            "a.",
            "a..b",
            " a",
            "a ",
            "a\nb",
            "é",
            "a",
            &long,
            &too_long,
        ] {
            assert_eq!(
                valid(event_type_name(), &json!(case)),
                EventTypeName::parse(case).is_ok(),
                "event type name {case:?}"
            );
        }
        for case in [
            "a.*",
            "a.b.*",
            "*",
            "a",
            ".*",
            "a..*",
            &format!("{long}.*"),
            &format!("{too_long}.*"),
        ] {
            let parsed = crate::filter::EventFilter::parse(Some(&[case.to_owned()])).is_ok();
            assert_eq!(
                valid(event_patterns(), &json!([case])),
                parsed,
                "pattern {case:?}"
            );
        }
        for case in ["order-1:v2", "a~b", "a/b", "", &"a".repeat(129)] {
            assert_eq!(
                valid(optional_event_id(), &json!(case)),
                EventId::parse(case).is_ok(),
                "event id {case:?}"
            );
        }
    }

    #[test]
    fn numeric_ranges_are_the_parsers() {
        assert!(valid(page_limit(), &json!(250)) && !valid(page_limit(), &json!(251)));
        assert!(!valid(page_limit(), &json!(0)));
        assert!(valid(timeout_seconds(), &json!(600)) && !valid(timeout_seconds(), &json!(601)));
        assert!(Timeout::from_seconds(600).is_ok() && Timeout::from_seconds(601).is_err());
        let max = RotationGrace::MAX_SECONDS;
        assert!(valid(grace_seconds(), &json!(max)) && !valid(grace_seconds(), &json!(max + 1)));
        assert!(valid(grace_seconds(), &json!(0)));
        assert!(valid(retention_days(), &json!(3650)) && !valid(retention_days(), &json!(3651)));
        assert!(ProjectSettings::check_retention(3650).is_ok());
        let week = RetryPolicy::MAX_DELAY_SECONDS;
        assert!(valid(retry_schedule(), &json!([1, week])));
        assert!(
            !valid(retry_schedule(), &json!([0])) && !valid(retry_schedule(), &json!([week + 1]))
        );
    }
}
