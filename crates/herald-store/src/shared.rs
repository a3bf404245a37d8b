// The SQL both backends run, written once.
//
// This file is `include!`d into `sqlite.rs` and `postgres.rs`, each of which defines `Db` (the
// sqlx database), `ThisStore` (its store type, with `writer()` and `reader()` pools) and
// `BACKEND`. Every statement here is valid on both: `$N` placeholders (sqlx's SQLite driver
// accepts them too), `ON CONFLICT`, `RETURNING`, row-value comparisons for pagination.
// Backend-specific work (pragmas, pools, migrations, and later lease claims) stays in the
// backend module.

use async_trait::async_trait;
use herald_core::api_key::ApiKey;
use herald_core::delivery::Delivery;
use herald_core::event::{Event, EventId};
use herald_core::event_type::{EventType, EventTypeName};
use herald_core::id::{ApiKeyId, ProjectId, WebhookId};
use herald_core::page::{Cursor, Page, PageRequest};
use herald_core::project::{Project, ProjectName};
use herald_core::time::Timestamp;
use herald_core::webhook::Webhook;

use crate::rows::{
    ApiKeyRow, DeliveryRow, EventRow, EventTypeRow, ProjectRow, WebhookRow, WebhookValues,
    convert, found, ms, start_position, to_json, webhook_columns, write_error,
};
use crate::{Published, Store, StoreError, StoreResult, WebhookQuery};


fn page_of<R, T>(rows: Vec<R>, page: &PageRequest, position: impl Fn(&T) -> Cursor) -> StoreResult<Page<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    Ok(Page::from_rows(convert(rows)?, page.limit, position))
}

fn limit_plus_one(page: &PageRequest) -> i64 {
    i64::from(page.limit) + 1
}

impl ThisStore {
    /// One page of webhooks matching the project and status filters (not the event type one).
    async fn webhook_rows(
        &self,
        query: &WebhookQuery,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Webhook>> {
        let (at, id) = start_position(after);
        let rows = sqlx::query_as::<Db, WebhookRow>(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR status = $2) \
             AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(query.project.as_ref().map(ProjectId::as_str))
        .bind(query.status.map(|s| s.as_str()))
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }
}

#[async_trait]
impl Store for ThisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn has_api_keys(&self) -> StoreResult<bool> {
        let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM api_keys)")
            .fetch_one(self.reader())
            .await?;
        Ok(any)
    }

    async fn create_project(&self, p: &Project) -> StoreResult<()> {
        sqlx::query("INSERT INTO projects (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(p.id.as_str())
            .bind(p.name.as_str())
            .bind(ms(&p.created_at))
            .bind(ms(&p.updated_at))
            .execute(self.writer())
            .await
            .map_err(write_error("project", "name", "project"))?;
        Ok(())
    }

    async fn project(&self, id: &ProjectId) -> StoreResult<Project> {
        let row = sqlx::query_as::<Db, ProjectRow>(
            "SELECT id, name, created_at, updated_at FROM projects WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("project", row)
    }

    async fn project_by_name(&self, name: &ProjectName) -> StoreResult<Project> {
        let row = sqlx::query_as::<Db, ProjectRow>(
            "SELECT id, name, created_at, updated_at FROM projects WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("project", row)
    }

    async fn list_projects(
        &self,
        only: Option<&ProjectId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>> {
        let (at, id) = start_position(page.after.as_ref());
        let rows = sqlx::query_as::<Db, ProjectRow>(
            "SELECT id, name, created_at, updated_at FROM projects \
             WHERE ($1 IS NULL OR id = $1) AND (created_at, id) < ($2, $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(only.map(ProjectId::as_str))
        .bind(at)
        .bind(id)
        .bind(limit_plus_one(page))
        .fetch_all(self.reader())
        .await?;
        page_of(rows, page, |p: &Project| Cursor::after(&p.created_at, p.id.as_str()))
    }

    async fn rename_project(
        &self,
        id: &ProjectId,
        name: &ProjectName,
        at: Timestamp,
    ) -> StoreResult<Project> {
        let row = sqlx::query_as::<Db, ProjectRow>(
            "UPDATE projects SET name = $2, updated_at = $3 WHERE id = $1 \
             RETURNING id, name, created_at, updated_at",
        )
        .bind(id.as_str())
        .bind(name.as_str())
        .bind(ms(&at))
        .fetch_optional(self.writer())
        .await
        .map_err(write_error("project", "name", "project"))?;
        found("project", row)
    }

    async fn delete_project(&self, id: &ProjectId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id.as_str())
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "project" });
        }
        Ok(())
    }

    async fn create_event_type(&self, t: &EventType) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO event_types (project_id, name, description, schema, archived, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.project_id.as_str())
        .bind(t.name.as_str())
        .bind(t.description.as_deref())
        .bind(t.schema.as_ref().map(|s| to_json(s.as_value())))
        .bind(t.archived)
        .bind(ms(&t.created_at))
        .bind(ms(&t.updated_at))
        .execute(self.writer())
        .await
        .map_err(write_error("event type", "name", "project"))?;
        Ok(())
    }

    async fn event_type(&self, project: &ProjectId, name: &EventTypeName) -> StoreResult<EventType> {
        let row = sqlx::query_as::<Db, EventTypeRow>(
            "SELECT project_id, name, description, schema, archived, created_at, updated_at \
             FROM event_types WHERE project_id = $1 AND name = $2",
        )
        .bind(project.as_str())
        .bind(name.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("event type", row)
    }

    async fn list_event_types(
        &self,
        project: &ProjectId,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<EventType>> {
        let (at, name) = start_position(page.after.as_ref());
        let rows = sqlx::query_as::<Db, EventTypeRow>(
            "SELECT project_id, name, description, schema, archived, created_at, updated_at \
             FROM event_types WHERE project_id = $1 AND ($2 OR NOT archived) \
             AND (created_at, name) < ($3, $4) ORDER BY created_at DESC, name DESC LIMIT $5",
        )
        .bind(project.as_str())
        .bind(include_archived)
        .bind(at)
        .bind(name)
        .bind(limit_plus_one(page))
        .fetch_all(self.reader())
        .await?;
        page_of(rows, page, |t: &EventType| Cursor::after(&t.created_at, t.name.as_str()))
    }

    async fn update_event_type(&self, t: &EventType) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE event_types SET description = $3, schema = $4, archived = $5, updated_at = $6 \
             WHERE project_id = $1 AND name = $2",
        )
        .bind(t.project_id.as_str())
        .bind(t.name.as_str())
        .bind(t.description.as_deref())
        .bind(t.schema.as_ref().map(|s| to_json(s.as_value())))
        .bind(t.archived)
        .bind(ms(&t.updated_at))
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "event type" });
        }
        Ok(())
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let v = WebhookValues::from(w);
        sqlx::query(concat!(
            "INSERT INTO webhooks (",
            webhook_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(v.id)
        .bind(v.project_id)
        .bind(v.name)
        .bind(v.description)
        .bind(v.url)
        .bind(v.method)
        .bind(v.filter)
        .bind(v.headers)
        .bind(v.custom_data)
        .bind(v.preset)
        .bind(v.format)
        .bind(v.scheme)
        .bind(v.timeout_ms)
        .bind(v.retry_policy)
        .bind(v.status)
        .bind(v.status_reason)
        .bind(v.secret)
        .bind(v.created_at)
        .bind(v.updated_at)
        .execute(self.writer())
        .await
        .map_err(write_error("webhook", "name", "project"))?;
        Ok(())
    }

    async fn webhook(&self, id: &WebhookId) -> StoreResult<Webhook> {
        let row = sqlx::query_as::<Db, WebhookRow>(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("webhook", row)
    }

    async fn list_webhooks(
        &self,
        query: &WebhookQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Webhook>> {
        let position = |w: &Webhook| Cursor::after(&w.created_at, w.id.as_str());
        let Some(event_type) = &query.event_type else {
            let rows = self
                .webhook_rows(query, page.after.as_ref(), limit_plus_one(page))
                .await?;
            return Ok(Page::from_rows(rows, page.limit, position));
        };
        // Filters are patterns, matched here rather than in SQL: read batches until the page
        // (plus one, to know whether another follows) is full or the rows run out.
        let batch = limit_plus_one(page).max(100);
        let mut matching = Vec::new();
        let mut after = page.after.clone();
        loop {
            let rows = self.webhook_rows(query, after.as_ref(), batch).await?;
            let exhausted = (rows.len() as i64) < batch;
            after = rows.last().map(position);
            matching.extend(rows.into_iter().filter(|w| w.filter.matches(event_type)));
            if exhausted || matching.len() > page.limit as usize {
                break;
            }
        }
        Ok(Page::from_rows(matching, page.limit, position))
    }

    async fn update_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let v = WebhookValues::from(w);
        let done = sqlx::query(
            "UPDATE webhooks SET name = $2, description = $3, url = $4, method = $5, filter = $6, \
             headers = $7, custom_data = $8, preset = $9, format = $10, scheme = $11, \
             timeout_ms = $12, retry_policy = $13, status = $14, status_reason = $15, \
             secret = $16, updated_at = $17 WHERE id = $1",
        )
        .bind(v.id)
        .bind(v.name)
        .bind(v.description)
        .bind(v.url)
        .bind(v.method)
        .bind(v.filter)
        .bind(v.headers)
        .bind(v.custom_data)
        .bind(v.preset)
        .bind(v.format)
        .bind(v.scheme)
        .bind(v.timeout_ms)
        .bind(v.retry_policy)
        .bind(v.status)
        .bind(v.status_reason)
        .bind(v.secret)
        .bind(v.updated_at)
        .execute(self.writer())
        .await
        .map_err(write_error("webhook", "name", "project"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "webhook" });
        }
        Ok(())
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id.as_str())
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "webhook" });
        }
        Ok(())
    }

    async fn active_webhooks(&self, project: &ProjectId) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query_as::<Db, WebhookRow>(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE project_id = $1 AND status = 'active' ORDER BY created_at, id"
        ))
        .bind(project.as_str())
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }

    async fn create_api_key(&self, k: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, project_id, token_hash, token_prefix, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(k.id.as_str())
        .bind(&k.name)
        .bind(k.role.as_str())
        .bind(k.project.as_ref().map(ProjectId::as_str))
        .bind(&k.token_hash)
        .bind(&k.token_prefix)
        .bind(ms(&k.created_at))
        .bind(k.revoked_at.as_ref().map(ms))
        .execute(self.writer())
        .await
        .map_err(write_error("API key", "token", "project"))?;
        Ok(())
    }

    async fn api_key_by_token_hash(&self, token_hash: &str) -> StoreResult<ApiKey> {
        let row = sqlx::query_as::<Db, ApiKeyRow>(
            "SELECT id, name, role, project_id, token_hash, token_prefix, created_at, revoked_at \
             FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await?;
        found("API key", row)
    }

    async fn list_api_keys(&self, page: &PageRequest) -> StoreResult<Page<ApiKey>> {
        let (at, id) = start_position(page.after.as_ref());
        let rows = sqlx::query_as::<Db, ApiKeyRow>(
            "SELECT id, name, role, project_id, token_hash, token_prefix, created_at, revoked_at \
             FROM api_keys WHERE (created_at, id) < ($1, $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(at)
        .bind(id)
        .bind(limit_plus_one(page))
        .fetch_all(self.reader())
        .await?;
        page_of(rows, page, |k: &ApiKey| Cursor::after(&k.created_at, k.id.as_str()))
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<ApiKey> {
        let row = sqlx::query_as::<Db, ApiKeyRow>(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING id, name, role, project_id, token_hash, token_prefix, created_at, revoked_at",
        )
        .bind(id.as_str())
        .bind(ms(&at))
        .fetch_optional(self.writer())
        .await?;
        found("API key", row)
    }

    async fn publish(&self, event: &Event, deliveries: &[Delivery]) -> StoreResult<Published> {
        let mut tx = self.writer().begin().await?;
        let actor = event.actor.as_ref();
        let inserted = sqlx::query(
            "INSERT INTO events (project_id, id, event_type, occurred_at, data, actor_id, actor_email, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (project_id, id) DO NOTHING",
        )
        .bind(event.project_id.as_str())
        .bind(event.id.as_str())
        .bind(event.event_type.as_str())
        .bind(ms(&event.occurred_at))
        .bind(to_json(&event.data))
        .bind(actor.and_then(|a| a.id.as_deref()))
        .bind(actor.and_then(|a| a.email.as_deref()))
        .bind(ms(&event.created_at))
        .execute(&mut *tx)
        .await
        .map_err(write_error("event", "id", "project"))?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let existing = self.event(&event.project_id, &event.id).await?;
            return Ok(Published::Duplicate(Box::new(existing)));
        }
        // Bounded batches keep each statement under SQLite's bind-parameter limit.
        for chunk in deliveries.chunks(500) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO deliveries (id, project_id, event_id, webhook_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, d| {
                row.push_bind(d.id.as_str())
                    .push_bind(d.project_id.as_str())
                    .push_bind(d.event_id.as_str())
                    .push_bind(d.webhook_id.as_str())
                    .push_bind(d.status.as_str())
                    .push_bind(i64::from(d.attempts))
                    .push_bind(d.next_attempt_at.as_ref().map(ms))
                    .push_bind(ms(&d.created_at))
                    .push_bind(ms(&d.updated_at));
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(write_error("delivery", "id", "webhook"))?;
        }
        tx.commit().await?;
        Ok(Published::Created)
    }

    async fn event(&self, project: &ProjectId, id: &EventId) -> StoreResult<Event> {
        let row = sqlx::query_as::<Db, EventRow>(
            "SELECT project_id, id, event_type, occurred_at, data, actor_id, actor_email, created_at \
             FROM events WHERE project_id = $1 AND id = $2",
        )
        .bind(project.as_str())
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("event", row)
    }

    async fn list_events(
        &self,
        project: &ProjectId,
        event_type: Option<&EventTypeName>,
        page: &PageRequest,
    ) -> StoreResult<Page<Event>> {
        let (at, id) = start_position(page.after.as_ref());
        let rows = sqlx::query_as::<Db, EventRow>(
            "SELECT project_id, id, event_type, occurred_at, data, actor_id, actor_email, created_at \
             FROM events WHERE project_id = $1 AND ($2 IS NULL OR event_type = $2) \
             AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(project.as_str())
        .bind(event_type.map(EventTypeName::as_str))
        .bind(at)
        .bind(id)
        .bind(limit_plus_one(page))
        .fetch_all(self.reader())
        .await?;
        page_of(rows, page, |e: &Event| Cursor::after(&e.created_at, e.id.as_str()))
    }

    async fn list_event_deliveries(
        &self,
        project: &ProjectId,
        event: &EventId,
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        let (at, id) = start_position(page.after.as_ref());
        let rows = sqlx::query_as::<Db, DeliveryRow>(
            "SELECT id, project_id, event_id, webhook_id, status, attempts, next_attempt_at, created_at, updated_at \
             FROM deliveries WHERE project_id = $1 AND event_id = $2 \
             AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(project.as_str())
        .bind(event.as_str())
        .bind(at)
        .bind(id)
        .bind(limit_plus_one(page))
        .fetch_all(self.reader())
        .await?;
        page_of(rows, page, |d: &Delivery| Cursor::after(&d.created_at, d.id.as_str()))
    }
}
