//! The shared store: PostgreSQL, for several Herald nodes on one database.
//!
//! One pool serves reads and writes; PostgreSQL's own locking lets nodes share the work.
//! Commits are durable with the server's default `synchronous_commit = on`.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

type Db = sqlx::Postgres;
type ThisStore = PostgresStore;
const BACKEND: crate::Backend = crate::Backend::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and migrates (migrations take an advisory lock, so nodes starting
    /// together do not race).
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, 16).await
    }

    pub async fn open_with(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn writer(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// The same as [`Self::writer`] (see the SQLite store's).
    async fn lease_writer(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.writer().await
    }

    /// The same as [`Self::writer`]: PostgreSQL keeps checking foreign keys in the group commit
    /// (only a superuser could switch that off, and its look-ups are not the limit there).
    async fn commit_writer(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.writer().await
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

/// Leases a webhook's due deliveries. `SKIP LOCKED` lets nodes claim side by side.
const CLAIM_DUE: &str = "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2 \
    WHERE id IN (SELECT id FROM deliveries WHERE webhook_id = $3 \
      AND status IN ('pending', 'retrying') AND next_attempt_at <= $4 \
      AND (lease_expires_at IS NULL OR lease_expires_at < $4) \
      ORDER BY next_attempt_at LIMIT $5 FOR UPDATE SKIP LOCKED) \
    RETURNING id, project_id, event_id, webhook_id, status, attempts, next_attempt_at, created_at, updated_at";

/// See [`Store::wants_writer_thread`].
const WRITER_THREAD: bool = false;

/// Whether the backend has row locks that concurrent writers must take in one order.
const ROW_LOCKS: bool = true;

/// SQLite's conflict clause for the group commit's writes (see `sqlite.rs`); PostgreSQL keeps
/// no statement journal and has no such clause.
const OR_FAIL: &str = "";

/// Row locks for a read that decides a write (the last admin key's revocation).
const FOR_UPDATE: &str = " FOR UPDATE";

include!("shared.rs");
