-- Secret rotation with a grace period, and installation-wide settings (the account secret).
-- Keep in step with migrations/postgres/0003_rotation.sql.

-- The secret a rotation replaced, and when it stops being used (milliseconds since the epoch).
ALTER TABLE webhooks ADD COLUMN previous_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at INTEGER;

-- One row per installation-wide setting, written once (e.g. `account_secret`, CloudShare's
-- account-level signing secret, made on first start and never regenerated).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
