//! Event filters: which event types a webhook subscribes to.
//!
//! A filter is either "all", or a list of patterns, each an exact event type name or a prefix
//! wildcard `environment.*` that matches every type under `environment.`.

use serde::{Deserialize, Serialize};

use crate::event_type::EventTypeName;
use crate::validation::InvalidField;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventPattern {
    Exact(EventTypeName),
    /// `prefix.*`; holds `prefix`.
    Prefix(EventTypeName),
}

impl EventPattern {
    pub fn parse(value: &str) -> Result<Self, InvalidField> {
        match value.strip_suffix(".*") {
            Some(prefix) => EventTypeName::parse(prefix)
                .map(Self::Prefix)
                .map_err(|e| InvalidField::new("", format!("bad wildcard prefix: {}", e.message))),
            None => EventTypeName::parse(value).map(Self::Exact),
        }
    }

    pub fn matches(&self, event_type: &EventTypeName) -> bool {
        match self {
            Self::Exact(name) => name == event_type,
            Self::Prefix(prefix) => event_type
                .as_str()
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
        }
    }
}

impl TryFrom<String> for EventPattern {
    type Error = InvalidField;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventPattern> for String {
    fn from(p: EventPattern) -> String {
        match p {
            EventPattern::Exact(n) => n.into(),
            EventPattern::Prefix(n) => format!("{}.*", n.as_str()),
        }
    }
}

/// What a webhook subscribes to.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum EventFilter {
    #[default]
    All,
    Only(Vec<EventPattern>),
}

impl EventFilter {
    pub const MAX_PATTERNS: usize = 250;

    /// Parses the API's `events` field: absent or `["*"]` means all.
    pub fn parse(patterns: Option<&[String]>) -> Result<Self, InvalidField> {
        let Some(patterns) = patterns else {
            return Ok(Self::All);
        };
        if patterns.len() == 1 && patterns[0] == "*" {
            return Ok(Self::All);
        }
        if patterns.is_empty() {
            return Err(InvalidField::new(
                "events",
                "must list at least one event type; omit it (or use [\"*\"]) for all",
            ));
        }
        if patterns.len() > Self::MAX_PATTERNS {
            return Err(InvalidField::new(
                "events",
                format!("may list at most {} patterns", Self::MAX_PATTERNS),
            ));
        }
        let mut parsed = Vec::with_capacity(patterns.len());
        for (i, p) in patterns.iter().enumerate() {
            let pattern = EventPattern::parse(p).map_err(|e| e.within(&format!("events[{i}]")))?;
            if parsed.contains(&pattern) {
                return Err(InvalidField::new(format!("events[{i}]"), "is listed twice"));
            }
            parsed.push(pattern);
        }
        Ok(Self::Only(parsed))
    }

    pub fn matches(&self, event_type: &EventTypeName) -> bool {
        match self {
            Self::All => true,
            Self::Only(patterns) => patterns.iter().any(|p| p.matches(event_type)),
        }
    }

    /// The patterns as the API shows them; `None` for all.
    pub fn to_strings(&self) -> Option<Vec<String>> {
        match self {
            Self::All => None,
            Self::Only(p) => Some(p.iter().cloned().map(String::from).collect()),
        }
    }

    /// The exact names listed, with their index, so the caller can check they exist.
    pub fn exact_names(&self) -> impl Iterator<Item = (usize, &EventTypeName)> {
        let patterns: &[EventPattern] = match self {
            Self::All => &[],
            Self::Only(p) => p,
        };
        patterns.iter().enumerate().filter_map(|(i, p)| match p {
            EventPattern::Exact(n) => Some((i, n)),
            EventPattern::Prefix(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> EventTypeName {
        EventTypeName::parse(s).unwrap()
    }

    fn filter(p: &[&str]) -> Result<EventFilter, InvalidField> {
        let owned: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        EventFilter::parse(Some(&owned))
    }

    #[test]
    fn wildcards_match_whole_segments_only() {
        let f = filter(&["environment.*", "file.uploaded"]).unwrap();
        assert!(f.matches(&name("environment.suspended")));
        assert!(f.matches(&name("environment.a.b")));
        assert!(!f.matches(&name("environments.x")));
        assert!(!f.matches(&name("environment")));
        assert!(f.matches(&name("file.uploaded")));
        assert!(!f.matches(&name("file.deleted")));
    }

    #[test]
    fn absent_or_star_means_all() {
        assert_eq!(EventFilter::parse(None).unwrap(), EventFilter::All);
        assert_eq!(filter(&["*"]).unwrap(), EventFilter::All);
        assert!(EventFilter::All.matches(&name("anything")));
    }

    #[test]
    fn bad_patterns_name_their_index() {
        assert_eq!(filter(&[]).unwrap_err().field, "events");
        assert_eq!(filter(&["a", "b*"]).unwrap_err().field, "events[1]");
        assert_eq!(filter(&["a", "a"]).unwrap_err().field, "events[1]");
        assert_eq!(filter(&["a", "*.*"]).unwrap_err().field, "events[1]");
    }
}
