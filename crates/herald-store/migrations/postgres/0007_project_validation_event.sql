-- The name of a project's validation event (the case-management cloud's `Webhook Validate`);
-- NULL: the webhook's preset's, else the server's.
-- Keep in step with the other backend's 0007_project_validation_event.sql.
ALTER TABLE projects ADD COLUMN validation_event TEXT;
