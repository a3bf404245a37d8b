//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through exactly one connection, held behind a mutex, so writers queue in Herald
//! rather than fail with `SQLITE_BUSY`; reads use a separate pool and never wait for writes. (Not
//! a one-connection pool: a pool hands a connection back through a spawned task, and on a busy
//! runtime that task's turn came milliseconds later, stalling every group commit behind it.) Commits are
//! durable before they return (`synchronous = FULL`): invariant 1 holds on power loss too.
//!
//! The group commit runs with SQLite's foreign-key enforcement off: each of its inserts already
//! says `WHERE EXISTS` for the row it refers to (so that a row deleted meanwhile drops what
//! refers to it instead of failing the batch), and the enforcement only looked the same rows up
//! again — three B-tree look-ups per delivery in the engine's one serial step. Every other write
//! runs with it on, because the schema's `ON DELETE CASCADE`s need it — except lease updates,
//! the frequent writes between commits, which leave the setting as it is: they change only
//! lease columns, which no foreign key involves, and every switch makes SQLite expire the
//! connection's prepared statements (the group commit's large ones would be parsed again).

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqlitePool};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

type Db = sqlx::Sqlite;
type ThisStore = SqliteStore;
const BACKEND: crate::Backend = crate::Backend::Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: Arc<Mutex<WriterConnection>>,
    reader: SqlitePool,
    /// An exclusive lock on `<db>.lock`, held while the store lives: a second process on the
    /// same file would free this one's leases at its start and send the same deliveries.
    _lock: Arc<std::fs::File>,
}

/// Pages of a new database. Twice SQLite's default: the group commit writes half as many WAL
/// frames (each a `pwrite` of its header and one of the page) and its B-trees are shallower;
/// `--scenario commit` pairs gave 4–11 % shorter commits and 7 % less CPU per delivery. 16 KiB
/// gained nothing more (moving cells within larger pages costs as much as it saves).
pub const PAGE_SIZE: u32 = 8192;

/// The one writing connection and whether it enforces foreign keys (`None`: unknown, when a
/// switch was cancelled half-way; the next use sets it again).
#[derive(Debug)]
struct WriterConnection {
    connection: SqliteConnection,
    foreign_keys: Option<bool>,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) and migrates the database at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(sqlx::Error::Io)?;
        if lock.try_lock().is_err() {
            return Err(StoreError::InUse {
                path: path.to_owned(),
            });
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // For a new database only: an existing one keeps its page size.
            .page_size(PAGE_SIZE)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let mut writer = base
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .connect()
            .await?;
        MIGRATOR.run(&mut writer).await?;
        // A multi-row statement inside a transaction keeps a statement journal, to undo itself
        // alone if it fails; past 64 KiB SQLite spills it to a temporary file, and those writes
        // were 12 % of the SQLite thread's time. In memory they cost a copy. Set only after the
        // migrations: with it, the sorts of a migration's CREATE INDEX over a large table
        // would be held in memory too (hundreds of MiB for a few million rows).
        sqlx::query("PRAGMA temp_store = MEMORY")
            .execute(&mut writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            // The ping before each acquire is one more round trip to the connection's thread; a
            // local file does not go stale like a network connection.
            .test_before_acquire(false)
            .connect_with(base)
            .await?;
        Ok(Self {
            writer: Arc::new(Mutex::new(WriterConnection {
                connection: writer,
                foreign_keys: Some(true),
            })),
            reader,
            _lock: Arc::new(lock),
        })
    }

    async fn writer(&self) -> StoreResult<MappedMutexGuard<'_, SqliteConnection>> {
        self.writer_enforcing_keys(Some(true)).await
    }

    /// The writer for the group commit, whose statements guard their own references.
    async fn commit_writer(&self) -> StoreResult<MappedMutexGuard<'_, SqliteConnection>> {
        self.writer_enforcing_keys(Some(false)).await
    }

    /// The writer for statements that change only lease columns: the same whatever the
    /// foreign-key setting, so it is left as it is.
    async fn lease_writer(&self) -> StoreResult<MappedMutexGuard<'_, SqliteConnection>> {
        self.writer_enforcing_keys(None).await
    }

    /// The writer, with foreign keys switched to `keys` first (`None`: left as they are).
    async fn writer_enforcing_keys(
        &self,
        keys: Option<bool>,
    ) -> StoreResult<MappedMutexGuard<'_, SqliteConnection>> {
        let mut writer = self.writer.lock().await;
        if let Some(on) = keys
            && writer.foreign_keys != Some(on)
        {
            // A no-op inside a transaction; none is open between uses of the writer.
            writer.foreign_keys = None;
            let pragma = if on {
                "PRAGMA foreign_keys = ON"
            } else {
                "PRAGMA foreign_keys = OFF"
            };
            sqlx::query(pragma).execute(&mut writer.connection).await?;
            writer.foreign_keys = Some(on);
        }
        Ok(MutexGuard::map(writer, |w| &mut w.connection))
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

/// Leases a webhook's due deliveries. The single writer connection serialises claims.
const CLAIM_DUE: &str = "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2 \
    WHERE id IN (SELECT id FROM deliveries WHERE webhook_id = $3 \
      AND status IN ('pending', 'retrying') AND next_attempt_at <= $4 \
      AND (lease_expires_at IS NULL OR lease_expires_at < $4) \
      ORDER BY next_attempt_at LIMIT $5) \
    RETURNING id, project_id, event_id, webhook_id, status, attempts, next_attempt_at, created_at, updated_at";

/// See [`Store::wants_writer_thread`].
const WRITER_THREAD: bool = true;

/// Whether the backend has row locks that concurrent writers must take in one order.
const ROW_LOCKS: bool = false;

/// The group commit's multi-row writes say `OR FAIL`: a constraint broken half-way stops the
/// statement without undoing its earlier rows, so SQLite keeps no statement journal for them
/// (with the default, `ABORT`, every such statement copies each page it first changes into
/// one). Nothing is left half-done: any error fails the commit, whose transaction rolls back.
const OR_FAIL: &str = " OR FAIL";

/// Row locks for a read that decides a write; SQLite has none (its one writer serialises).
const FOR_UPDATE: &str = "";

include!("shared.rs");
