-- Herald's schema on PostgreSQL. Timestamps are milliseconds since the Unix epoch; JSON is TEXT.
-- Keep in step with migrations/sqlite: the shared queries in src/shared.rs run on both.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX projects_by_position ON projects (created_at, id);

CREATE TABLE event_types (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    schema      TEXT,
    archived    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);
CREATE INDEX event_types_by_position ON event_types (project_id, created_at, name);

CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT,
    url           TEXT NOT NULL,
    method        TEXT NOT NULL,
    filter        TEXT,
    headers       TEXT NOT NULL,
    custom_data   TEXT NOT NULL,
    preset        TEXT,
    format        TEXT NOT NULL,
    scheme        TEXT NOT NULL,
    timeout_ms    BIGINT NOT NULL,
    retry_policy  TEXT,
    status        TEXT NOT NULL,
    status_reason TEXT,
    secret        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX webhooks_by_position ON webhooks (created_at, id);
CREATE INDEX webhooks_by_project ON webhooks (project_id, status);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    project_id   TEXT REFERENCES projects (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_by_position ON api_keys (created_at, id);

CREATE TABLE events (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    data        TEXT NOT NULL,
    actor_id    TEXT,
    actor_email TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX events_by_position ON events (project_id, created_at, id);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    FOREIGN KEY (project_id, event_id) REFERENCES events (project_id, id) ON DELETE CASCADE
);
CREATE INDEX deliveries_by_event ON deliveries (project_id, event_id, created_at, id);
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, created_at, id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'retrying');
