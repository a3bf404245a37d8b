-- Deliveries keyed by their ids alone (WITHOUT ROWID): a rowid table keeps a second B-tree,
-- the automatic index on the text primary key, which every insert wrote and every update by
-- id went through — twice per delivery in the group commit, the engine's one serial step.
-- Attempts stay a rowid table: their rows (request and response, up to 64 KiB of body) are
-- far over the 1/20 of a page SQLite advises for WITHOUT ROWID rows. PostgreSQL's tables have
-- no rowid; nothing to do there.
--
-- SQLite's way to change a table's kind: build the new one, copy, drop, rename. This runs in
-- the migration's transaction, where foreign keys cannot be switched off, so attempts are
-- rebuilt too and the order matters: the new attempts refer to the new deliveries (renaming
-- that table renames the reference), and dropping the old deliveries cascades only to the old
-- attempts, already gone.

CREATE TABLE deliveries_new (
    id               TEXT PRIMARY KEY NOT NULL,
    project_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_attempt_at  INTEGER,
    FOREIGN KEY (project_id, event_id) REFERENCES events (project_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO deliveries_new (id, project_id, event_id, webhook_id, status, attempts,
    next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at, last_attempt_at)
SELECT id, project_id, event_id, webhook_id, status, attempts,
    next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at, last_attempt_at
FROM deliveries;
CREATE TABLE attempts_new (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL REFERENCES deliveries_new (id) ON DELETE CASCADE,
    webhook_id    TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    number        INTEGER NOT NULL,
    trigger_kind  TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    request       TEXT NOT NULL,
    response      TEXT,
    error_kind    TEXT,
    error_message TEXT,
    succeeded     BOOLEAN NOT NULL
);
INSERT INTO attempts_new SELECT id, delivery_id, webhook_id, project_id, number, trigger_kind,
    started_at, duration_ms, request, response, error_kind, error_message, succeeded
FROM attempts;
DROP TABLE attempts;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
ALTER TABLE attempts_new RENAME TO attempts;

CREATE INDEX deliveries_by_event ON deliveries (project_id, event_id, created_at, id);
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, created_at, id);
CREATE INDEX deliveries_due_by_webhook ON deliveries (webhook_id, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, started_at, id);
CREATE INDEX attempts_by_webhook ON attempts (webhook_id, started_at, id);
