//! The one cache type of Herald's read paths: what a publish or a send reads about keys,
//! projects, event types and webhooks, kept a second or two.
//!
//! Bounded by `quick_cache` (S3-FIFO: what is old and cold is evicted when it is full, not
//! everything at once); each value carries its load time and is reloaded past the
//! time-to-live, so a change made through another node sharing the database reaches this one
//! within it. A change made through this node invalidates at once, and an epoch guards the
//! race between the two: a value loaded across an invalidation is returned but not kept, so a
//! load that read a row just before a revoke cannot put the old value back.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A bounded map whose entries expire.
pub struct Cache<K, V> {
    ttl: Duration,
    entries: quick_cache::sync::Cache<K, (Instant, V)>,
    epoch: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("ttl", &self.ttl)
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    /// Entries live `ttl`; about `capacity` are kept.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            epoch: AtomicU64::new(0),
        }
    }

    /// The cached value, or `load`'s (kept when it succeeds; an error is never kept).
    pub async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some((at, value)) = self.entries.get(key)
            && at.elapsed() < self.ttl
        {
            return Ok(value);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let value = load.await?;
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.entries
                .insert(key.clone(), (Instant::now(), value.clone()));
            // An invalidation between the check and the insert must still win.
            if self.epoch.load(Ordering::Acquire) != epoch {
                self.entries.remove(key);
            }
        }
        Ok(value)
    }

    /// Forgets one entry (it changed through this node).
    pub fn remove(&self, key: &K) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(key);
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_loaded_once_within_its_time_to_live() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let first: Result<u32, ()> = cache.get_or_load(&"a", async { Ok(1) }).await;
        let second: Result<u32, ()> = cache.get_or_load(&"a", async { Ok(2) }).await;
        assert_eq!((first, second), (Ok(1), Ok(1)));
    }

    #[tokio::test]
    async fn an_expired_value_is_loaded_again() {
        let cache = Cache::new(Duration::ZERO, 10);
        let _: Result<u32, ()> = cache.get_or_load(&"a", async { Ok(1) }).await;
        let again: Result<u32, ()> = cache.get_or_load(&"a", async { Ok(2) }).await;
        assert_eq!(again, Ok(2));
    }

    #[tokio::test]
    async fn an_error_is_not_kept() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let failed: Result<u32, &str> = cache.get_or_load(&"a", async { Err("down") }).await;
        let loaded: Result<u32, &str> = cache.get_or_load(&"a", async { Ok(2) }).await;
        assert_eq!((failed, loaded), (Err("down"), Ok(2)));
    }

    #[tokio::test]
    async fn a_removed_or_cleared_value_is_loaded_again() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let _: Result<u32, ()> = cache.get_or_load(&"a", async { Ok(1) }).await;
        let _: Result<u32, ()> = cache.get_or_load(&"b", async { Ok(1) }).await;
        cache.remove(&"a");
        let a: Result<u32, ()> = cache.get_or_load(&"a", async { Ok(2) }).await;
        cache.clear();
        let b: Result<u32, ()> = cache.get_or_load(&"b", async { Ok(3) }).await;
        assert_eq!((a, b), (Ok(2), Ok(3)));
    }

    #[tokio::test]
    async fn a_value_loaded_across_an_invalidation_is_returned_but_not_kept() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let stale: Result<u32, ()> = cache
            .get_or_load(&"key", async {
                // A revoke lands while the old row is being read.
                cache.remove(&"key");
                Ok(1)
            })
            .await;
        let fresh: Result<u32, ()> = cache.get_or_load(&"key", async { Ok(2) }).await;
        assert_eq!((stale, fresh), (Ok(1), Ok(2)));
    }

    #[tokio::test]
    async fn when_full_it_evicts_some_entries_not_all() {
        let cache = Cache::new(Duration::from_secs(60), 100);
        for i in 0..1_000u32 {
            let _: Result<u32, ()> = cache.get_or_load(&i, async { Ok(i) }).await;
        }
        let kept = (0..1_000u32)
            .filter(|i| cache.entries.get(i).is_some())
            .count();
        assert!(
            kept > 0 && kept <= 200,
            "{kept} kept of 1,000 with room for 100"
        );
    }
}
