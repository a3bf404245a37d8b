//! [`Headers`]: read a request's headers from whatever HTTP library the receiver uses.
//!
//! Names are compared without regard to case, as HTTP requires. Implemented for slices and
//! vectors of name/value pairs and for the standard maps; anything else (an `http::HeaderMap`,
//! a framework's request) takes a three-line impl, which keeps this crate free of HTTP stacks.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Header lookup by case-insensitive name. With repeated headers, the first one counts.
pub trait Headers {
    fn get_header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.as_slice().get_header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S: BuildHasher> Headers for HashMap<K, V, S> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for BTreeMap<K, V> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case_and_the_first_wins() {
        let pairs = vec![
            ("Webhook-Id".to_owned(), "a".to_owned()),
            ("webhook-id".to_owned(), "b".to_owned()),
        ];
        assert_eq!(pairs.get_header("WEBHOOK-ID"), Some("a"));
        assert_eq!(pairs.get_header("webhook-signature"), None);
        let map = HashMap::from([("X-Hub-Signature-256", "sha256=00")]);
        assert_eq!(map.get_header("x-hub-signature-256"), Some("sha256=00"));
        let map = BTreeMap::from([("authorization", "Bearer t")]);
        assert_eq!(map.get_header("Authorization"), Some("Bearer t"));
    }
}
