//! Cursor pagination, newest first.
//!
//! A cursor is an opaque token naming the last item of a page by its (created_at, id) position;
//! the next page is everything strictly before it. Positions are unique, so no item is skipped or
//! shown twice however many are created meanwhile.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::time::{Timestamp, from_millis, to_millis};
use crate::validation::InvalidField;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn after(created_at: &Timestamp, id: &str) -> Self {
        Self {
            created_at_ms: to_millis(created_at),
            id: id.to_owned(),
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("1:{}:{}", self.created_at_ms, self.id))
    }

    pub fn decode(token: &str) -> Result<Self, InvalidField> {
        let bad = || InvalidField::new("cursor", "is not a cursor this server issued");
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let rest = raw.strip_prefix("1:").ok_or_else(bad)?;
        let (ms, id) = rest.split_once(':').ok_or_else(bad)?;
        let created_at_ms = ms.parse::<i64>().map_err(|_| bad())?;
        if id.is_empty() || from_millis(created_at_ms).timestamp_millis() != created_at_ms {
            return Err(bad());
        }
        Ok(Self {
            created_at_ms,
            id: id.to_owned(),
        })
    }
}

/// Which page to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 250;

    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, InvalidField> {
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(n) if (1..=i64::from(Self::MAX_LIMIT)).contains(&n) => n as u32,
            Some(_) => {
                return Err(InvalidField::new(
                    "limit",
                    format!("must be between 1 and {}", Self::MAX_LIMIT),
                ));
            }
        };
        let after = cursor.map(Cursor::decode).transpose()?;
        Ok(Self { limit, after })
    }

    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of items and the cursor for the next, if there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows read newest first: the extra row only says that
    /// another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, position: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(position)
        } else {
            None
        };
        Self { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            created_at_ms: 1_700_000_000_123,
            id: "wh_01".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "!!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("1:x:wh")] {
            assert_eq!(Cursor::decode(bad).unwrap_err().field, "cursor");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(251), None).is_err());
    }

    #[test]
    fn an_extra_row_means_another_page() {
        let p = Page::from_rows(vec![1, 2, 3], 2, |n| Cursor {
            created_at_ms: *n,
            id: "x".into(),
        });
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next.unwrap().created_at_ms, 2);
        let p = Page::from_rows(vec![1, 2], 2, |n| Cursor {
            created_at_ms: *n,
            id: "x".into(),
        });
        assert!(p.next.is_none());
    }
}
