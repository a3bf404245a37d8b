-- The delivery engine: leases, attempts, per-webhook statistics, project settings.
-- Keep in step with migrations/sqlite/0002_delivery.sql.

ALTER TABLE projects ADD COLUMN retry_policy TEXT;
ALTER TABLE projects ADD COLUMN retention_days BIGINT;
ALTER TABLE projects ADD COLUMN require_validation BOOLEAN NOT NULL DEFAULT FALSE;

-- A delivery is leased to the node that will send it; an expired lease means the node died.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE deliveries ADD COLUMN last_attempt_at BIGINT;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due_by_webhook ON deliveries (webhook_id, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_leased ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX events_by_age ON events (created_at);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    webhook_id       TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    number           BIGINT NOT NULL,
    trigger_kind     TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    request          TEXT NOT NULL,
    response         TEXT,
    error_kind       TEXT,
    error_message    TEXT,
    succeeded        BOOLEAN NOT NULL
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, started_at, id);
CREATE INDEX attempts_by_webhook ON attempts (webhook_id, started_at, id);

-- CloudBlue's statistics list, kept in the same transactions as the attempts they count.
CREATE TABLE webhook_stats (
    webhook_id                 TEXT PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    events                     BIGINT NOT NULL DEFAULT 0,
    triggers                   BIGINT NOT NULL DEFAULT 0,
    successes                  BIGINT NOT NULL DEFAULT 0,
    failures                   BIGINT NOT NULL DEFAULT 0,
    failures_since_success     BIGINT NOT NULL DEFAULT 0,
    last_event_at              BIGINT,
    last_success_at            BIGINT,
    last_success_attempt       TEXT,
    last_failure_at            BIGINT,
    last_failure_attempt       TEXT,
    failed_deliveries_in_a_row BIGINT NOT NULL DEFAULT 0,
    failing_since              BIGINT
);
INSERT INTO webhook_stats (webhook_id) SELECT id FROM webhooks;
