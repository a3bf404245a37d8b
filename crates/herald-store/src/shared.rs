// The SQL both backends run, written once.
//
// This file is `include!`d into `sqlite.rs` and `postgres.rs`, each of which defines `Db` (the
// sqlx database), `ThisStore` (its store type, with `writer()`, `commit_writer()`,
// `lease_writer()` and `reader()`) and
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
use herald_core::secret::SigningSecret;
use herald_core::time::Timestamp;
use herald_core::webhook::{Webhook, WebhookStatus};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use herald_core::attempt::Attempt;
use herald_core::delivery::DeliveryStatus;
use herald_core::id::{AttemptId, DeliveryId};

use crate::rows::{
    ApiKeyRow, AttemptRow, DeliveryRow, EventRow, EventTypeRow, ProjectRow, StatsRow, WebhookRow,
    WebhookValues, attempt_columns, convert, found, ms, project_columns, start_position, to_json,
    webhook_columns, write_error,
};
use crate::{
    AttemptQuery, AttemptRecord, Claimed, Committed, Discarded, Lease, NewPublish, Published, Store,
    StoreError, StoreResult, WebhookQuery, WebhookStats,
};


/// The webhook statuses that hold deliveries, as an SQL list for `concat!`; the same as
/// `WebhookStatus::holds_deliveries` (the conformance suite checks both of them).
macro_rules! holding_statuses {
    () => {
        "('disabled', 'out_of_order')"
    };
}

/// A subquery finding a delivery of the event aliased `$event` that is still to be sent to an
/// active webhook (pending or retrying): such an event is kept past its retention. Deliveries a
/// paused webhook holds do not count.
macro_rules! in_flight_delivery_of {
    ($event:literal) => {
        concat!(
            "SELECT 1 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.project_id = ", $event, ".project_id AND d.event_id = ", $event, ".id \
             AND d.status IN ('pending', 'retrying') AND w.status = 'active'"
        )
    };
}

/// Rows per multi-row statement of the group commit; a power of two (see [`padded`]).
const PADDED_CHUNK: usize = 256;

/// A chunk's rows padded with `None` up to the next power of two. The statements bind NULLs
/// for a `None` row, which their WHERE clause drops (a NULL id matches nothing); so nine
/// statement texts serve every batch size, each parsed once and kept prepared, where a text
/// per row count was parsed afresh for every batch.
fn padded<T>(rows: &[T]) -> impl Iterator<Item = Option<&T>> {
    let len = rows.len().next_power_of_two();
    rows.iter()
        .map(Some)
        .chain(std::iter::repeat_n(None, len - rows.len()))
}

fn page_of<R, T>(rows: Vec<R>, page: &PageRequest, position: impl Fn(&T) -> Cursor) -> StoreResult<Page<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    Ok(Page::from_rows(convert(rows)?, page.limit, position))
}

/// The `settings` row holding the account-level signing secret.
const ACCOUNT_SECRET_KEY: &str = "account_secret";

fn limit_plus_one(page: &PageRequest) -> i64 {
    i64::from(page.limit) + 1
}

/// Runs `statements` in order in `tx`, each one built (its rows bound, here) while the database
/// runs the one before it: on SQLite that is another thread, on PostgreSQL another process, so
/// the group commit — the engine's one serial step — takes about the longer of the two instead
/// of their sum.
async fn execute_overlapped<'q>(
    tx: &mut sqlx::Transaction<'_, Db>,
    mut statements: impl Iterator<Item = sqlx::QueryBuilder<'q, Db>>,
) -> StoreResult<()> {
    let Some(mut current) = statements.next() else {
        return Ok(());
    };
    loop {
        // `join!` polls the statement first, which hands it to the database, then builds the
        // next one while the first runs.
        let (done, next) = tokio::join!(current.build().execute(&mut **tx), async {
            statements.next()
        });
        done?;
        match next {
            Some(statement) => current = statement,
            None => return Ok(()),
        }
    }
}

/// Events: one multi-row insert per chunk; RETURNING says which were new. An event of a
/// project deleted since it was matched is not inserted, and fails the batch in `commit`.
/// Returns the ids the inserts created, by project, for `commit` to look up without allocating.
async fn insert_events(
    tx: &mut sqlx::Transaction<'_, Db>,
    publishes: &[NewPublish],
) -> StoreResult<HashMap<String, HashSet<String>>> {
    let mut inserted: HashMap<String, HashSet<String>> = HashMap::new();
    // Only the first publish of an id in the batch is offered: with two rows of one key in one
    // statement, PostgreSQL may insert either (its plan need not keep the VALUES order), and
    // the caller counts the first as the event and any later one as its duplicate.
    let mut offered: HashSet<(&str, &str)> = HashSet::with_capacity(publishes.len());
    let firsts: Vec<&NewPublish> = publishes
        .iter()
        .filter(|p| offered.insert((p.event.project_id.as_str(), p.event.id.as_str())))
        .collect();
    for chunk in firsts.chunks(PADDED_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(format!(
            "INSERT{OR_FAIL} INTO events (project_id, id, event_type, occurred_at, data, actor_id, actor_email, created_at) \
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8 FROM ("
        ));
        insert.push_values(padded(chunk), |mut row, p| {
            let e = p.map(|p| &p.event);
            let actor = e.and_then(|e| e.actor.as_ref());
            row.push_bind(e.map(|e| e.project_id.as_str()))
                .push_bind(e.map(|e| e.id.as_str()))
                .push_bind(e.map(|e| e.event_type.as_str()))
                .push_bind(e.map(|e| ms(&e.occurred_at)))
                .push_bind(e.map(|e| to_json(&e.data)))
                .push_bind(actor.and_then(|a| a.id.as_deref()))
                .push_bind(actor.and_then(|a| a.email.as_deref()))
                .push_bind(e.map(|e| ms(&e.created_at)));
        });
        insert.push(
            ") AS v WHERE EXISTS (SELECT 1 FROM projects p WHERE p.id = v.column1) \
             ON CONFLICT (project_id, id) DO NOTHING RETURNING project_id, id",
        );
        let rows: Vec<(String, String)> = insert
            .build_query_as()
            .fetch_all(&mut **tx)
            .await
            .map_err(write_error("event", "id", "project"))?;
        for (project, id) in rows {
            inserted.entry(project).or_default().insert(id);
        }
    }
    Ok(inserted)
}

/// New deliveries, some leased to this node. A webhook deleted since its deliveries were matched
/// takes them with it (WHERE EXISTS), rather than failing the batch. Bounded chunks keep each
/// statement under SQLite's bind-parameter limit; padded ones (see `padded`) are parsed once and
/// kept prepared.
fn insert_deliveries<'a>(chunk: &'a [&'a (Delivery, Option<Lease>)]) -> sqlx::QueryBuilder<'a, Db> {
    let mut insert = sqlx::QueryBuilder::<Db>::new(format!(
        "INSERT{OR_FAIL} INTO deliveries (id, project_id, event_id, webhook_id, status, attempts, \
         next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
         v.column8, v.column9, v.column10, v.column11 FROM ("
    ));
    insert.push_values(padded(chunk), |mut row, pair| {
        let d = pair.map(|(d, _)| d);
        let lease = pair.and_then(|(_, lease)| lease.as_ref());
        row.push_bind(d.map(|d| d.id.as_str()))
            .push_bind(d.map(|d| d.project_id.as_str()))
            .push_bind(d.map(|d| d.event_id.as_str()))
            .push_bind(d.map(|d| d.webhook_id.as_str()))
            .push_bind(d.map(|d| d.status.as_str()))
            .push_bind(d.map(|d| i64::from(d.attempts)))
            .push_bind(d.and_then(|d| d.next_attempt_at.as_ref().map(ms)))
            .push_bind(d.map(|d| ms(&d.created_at)))
            .push_bind(d.map(|d| ms(&d.updated_at)))
            .push_bind(lease.map(|l| l.owner.as_str()))
            .push_bind(lease.map(|l| ms(&l.until)));
    });
    insert.push(") AS v WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = v.column4)");
    insert
}

/// Attempts; one whose delivery was deleted while it was being sent is dropped.
fn insert_attempts(chunk: &[AttemptRecord]) -> sqlx::QueryBuilder<'_, Db> {
    let mut insert = sqlx::QueryBuilder::<Db>::new(
        String::from("INSERT")
            + OR_FAIL
            + concat!(
                " INTO attempts (", attempt_columns!(), ") SELECT v.column1, v.column2, v.column3, \
                 v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10, v.column11, \
                 v.column12, v.column13 FROM ("
            ),
    );
    insert.push_values(padded(chunk), |mut row, r| {
        let a = r.map(|r| &r.attempt);
        let error = a.and_then(|a| a.error.as_ref());
        row.push_bind(a.map(|a| a.id.as_str()))
            .push_bind(a.map(|a| a.delivery_id.as_str()))
            .push_bind(a.map(|a| a.webhook_id.as_str()))
            .push_bind(a.map(|a| a.project_id.as_str()))
            .push_bind(a.map(|a| i64::from(a.number)))
            .push_bind(a.map(|a| a.trigger.as_str()))
            .push_bind(a.map(|a| ms(&a.started_at)))
            .push_bind(a.map(|a| i64::try_from(a.duration_ms).unwrap_or(i64::MAX)))
            .push_bind(a.map(|a| to_json(&a.request)))
            .push_bind(a.and_then(|a| a.response.as_ref().map(to_json)))
            .push_bind(error.map(|e| e.kind.as_str()))
            .push_bind(error.map(|e| e.message.clone()))
            .push_bind(a.map(|a| a.succeeded));
    });
    insert.push(") AS v WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.column2)");
    insert
}

/// The deliveries' state after their attempts, while they are still this node's to settle.
fn settle_deliveries<'a>(chunk: &'a [&'a AttemptRecord]) -> sqlx::QueryBuilder<'a, Db> {
    let mut update = sqlx::QueryBuilder::<Db>::new(format!(
        "UPDATE{OR_FAIL} deliveries SET status = v.column2, \
         attempts = CASE WHEN deliveries.attempts < v.column3 THEN v.column3 ELSE deliveries.attempts END, \
         next_attempt_at = v.column4, last_attempt_at = v.column5, updated_at = v.column5, \
         lease_owner = NULL, lease_expires_at = NULL FROM ("
    ));
    update.push_values(padded(chunk), |mut row, r| {
        let r = r.copied();
        let finished = r.map(|r| ms(&r.attempt.started_at) + i64::try_from(r.attempt.duration_ms).unwrap_or(0));
        row.push_bind(r.map(|r| r.attempt.delivery_id.as_str()))
            .push_bind(r.map(|r| r.delivery_status.as_str()))
            .push_bind(r.map(|r| i64::from(r.attempt.number)))
            .push_bind(r.and_then(|r| r.next_attempt_at.as_ref().map(ms)))
            .push_bind(finished)
            .push_bind(r.map(|r| r.lease_owner.as_str()));
    });
    update.push(
        ") AS v WHERE deliveries.id = v.column1 \
         AND deliveries.status IN ('pending', 'retrying') \
         AND (deliveries.lease_owner IS NULL OR deliveries.lease_owner = v.column6)",
    );
    update
}

impl ThisStore {
    /// The batch's statistics in one UPDATE for every webhook it touched; webhooks whose
    /// failures crossed their out-of-order thresholds move to `out_of_order`.
    async fn count_in_stats(
        &self,
        tx: &mut sqlx::Transaction<'_, Db>,
        events_per_webhook: &BTreeMap<&str, (i64, i64)>,
        deltas: BTreeMap<&str, crate::batch::StatsDelta<'_>>,
        now: Timestamp,
        committed: &mut Committed,
    ) -> StoreResult<()> {
        let none = crate::batch::StatsDelta::default();
        let deltas: HashMap<&str, &crate::batch::StatsDelta> = deltas.iter().map(|(w, d)| (*w, d)).collect();
        let mut touched: BTreeSet<&str> = events_per_webhook.keys().copied().collect();
        touched.extend(deltas.keys().copied());
        if touched.is_empty() {
            return Ok(());
        }
        let touched: Vec<&str> = touched.into_iter().collect();
        let rules: HashMap<&str, crate::OutOfOrderRule> = deltas
            .iter()
            .filter_map(|(w, d)| Some((*w, d.rule?)))
            .collect();
        let mut moved_out: Vec<(String, i64, Option<i64>)> = Vec::new();
        for chunk in touched.chunks(PADDED_CHUNK) {
            if ROW_LOCKS {
                // Two nodes' batches lock the statistics rows they share in the same (id) order,
                // so they cannot deadlock; the UPDATE below may visit them in any order.
                let mut lock = sqlx::QueryBuilder::<Db>::new("SELECT webhook_id FROM webhook_stats WHERE webhook_id IN (");
                let mut ids = lock.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                lock.push(") ORDER BY webhook_id FOR UPDATE");
                lock.build().persistent(false).execute(&mut **tx).await?;
            }
            let mut update = sqlx::QueryBuilder::<Db>::new(format!(
                "UPDATE{OR_FAIL} webhook_stats SET events = events + v.column2, \
                 last_event_at = CASE WHEN v.column3 IS NOT NULL AND (last_event_at IS NULL OR last_event_at < v.column3) \
                   THEN v.column3 ELSE last_event_at END, \
                 triggers = triggers + v.column4, successes = successes + v.column5, \
                 failures = failures + v.column6, \
                 failures_since_success = CASE WHEN v.column7 THEN v.column8 ELSE failures_since_success + v.column8 END, \
                 last_success_attempt = CASE WHEN v.column9 IS NOT NULL AND (last_success_at IS NULL OR last_success_at <= v.column9) \
                   THEN v.column10 ELSE last_success_attempt END, \
                 last_success_at = CASE WHEN v.column9 IS NOT NULL AND (last_success_at IS NULL OR last_success_at <= v.column9) \
                   THEN v.column9 ELSE last_success_at END, \
                 last_failure_attempt = CASE WHEN v.column11 IS NOT NULL AND (last_failure_at IS NULL OR last_failure_at <= v.column11) \
                   THEN v.column12 ELSE last_failure_attempt END, \
                 last_failure_at = CASE WHEN v.column11 IS NOT NULL AND (last_failure_at IS NULL OR last_failure_at <= v.column11) \
                   THEN v.column11 ELSE last_failure_at END, \
                 failed_deliveries_in_a_row = CASE WHEN v.column7 THEN v.column13 ELSE failed_deliveries_in_a_row + v.column13 END, \
                 failing_since = CASE WHEN v.column7 THEN v.column14 ELSE COALESCE(failing_since, v.column14) END \
                 FROM ("
            ));
            // Padded like the other statements of the commit (a NULL webhook id matches no
            // row), so the statement is parsed once, not for every commit: it was the one
            // statement of the serial step that SQLite parsed afresh each time.
            update.push_values(padded(chunk), |mut row, webhook| {
                let (events, last_event) = webhook
                    .and_then(|w| events_per_webhook.get(w).copied())
                    .map_or((0, None), |(n, at)| (n, Some(at)));
                let d = webhook.and_then(|w| deltas.get(w).copied()).unwrap_or(&none);
                let present = |n: i64| webhook.map(|_| n);
                row.push_bind(webhook.copied())
                    .push_bind(present(events))
                    .push_bind(last_event)
                    .push_bind(present(d.triggers))
                    .push_bind(present(d.successes))
                    .push_bind(present(d.failures))
                    .push_bind(webhook.map(|_| d.reset))
                    .push_bind(present(d.failures_after))
                    .push_bind(d.last_success.as_ref().map(|s| s.0))
                    .push_bind(d.last_success.map(|s| s.1))
                    .push_bind(d.last_failure.as_ref().map(|s| s.0))
                    .push_bind(d.last_failure.map(|s| s.1))
                    .push_bind(present(d.exhausted_after))
                    .push_bind(d.failing_since);
            });
            update.push(") AS v WHERE webhook_stats.webhook_id = v.column1 RETURNING webhook_id, failed_deliveries_in_a_row, failing_since");
            let counted: Vec<(String, i64, Option<i64>)> =
                update.build_query_as().fetch_all(&mut **tx).await?;
            moved_out.extend(counted.into_iter().filter(|(webhook, in_a_row, since)| {
                rules
                    .get(webhook.as_str())
                    .is_some_and(|rule| crate::batch::is_out_of_order(rule, *in_a_row, *since, ms(&now)))
            }));
        }
        moved_out.sort();
        for (webhook, counted, since) in moved_out {
            let reason = format!(
                "out of order: {counted} deliveries failed in a row{}",
                since.map(|s| format!(", failing since {}", herald_core::time::from_millis(s).to_rfc3339()))
                    .unwrap_or_default()
            );
            let moved = sqlx::query(
                "UPDATE webhooks SET status = 'out_of_order', status_reason = $2, updated_at = $3 \
                 WHERE id = $1 AND status = 'active'",
            )
            .bind(webhook.as_str())
            .bind(reason)
            .bind(ms(&now))
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if moved > 0 {
                committed.out_of_order.push(WebhookId::parse(&webhook).map_err(|e| StoreError::Corrupt { what: "webhook id", source: Box::new(e) })?);
            }
        }
        Ok(())
    }

    /// UPDATE of every column; with `seen`, only if `updated_at` is still that.
    async fn save_webhook(&self, w: &Webhook, seen: Option<i64>) -> StoreResult<()> {
        let v = WebhookValues::from(w);
        // Every column in `webhook_columns!()` order, so one binding serves INSERT and UPDATE;
        // `project_id` and `created_at` are set to the values they already have.
        let update = sqlx::query(
            "UPDATE webhooks SET project_id = $2, name = $3, description = $4, url = $5, \
             method = $6, filter = $7, headers = $8, custom_data = $9, preset = $10, format = $11, \
             scheme = $12, timeout_ms = $13, retry_policy = $14, status = $15, \
             status_reason = $16, secret = $17, previous_secret = $18, \
             previous_secret_expires_at = $19, created_at = $20, updated_at = $21 \
             WHERE id = $1 AND ($22 IS NULL OR updated_at = $22)",
        );
        let done = bind_webhook(update, v)
            .bind(seen)
            .execute(&mut *self.writer().await?)
            .await
            .map_err(write_error("webhook", "name", "project"))?;
        if done.rows_affected() == 0 {
            return Err(match (seen, self.webhook(&w.id).await) {
                (Some(_), Ok(_)) => StoreError::Changed { entity: "webhook" },
                _ => StoreError::NotFound { entity: "webhook" },
            });
        }
        Ok(())
    }

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
    fn backend(&self) -> crate::Backend {
        BACKEND
    }

    fn wants_writer_thread(&self) -> bool {
        WRITER_THREAD
    }

    async fn has_api_keys(&self) -> StoreResult<bool> {
        let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM api_keys)")
            .fetch_one(self.reader())
            .await?;
        Ok(any)
    }

    async fn create_project(&self, p: &Project) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO projects (",
            project_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(p.id.as_str())
        .bind(p.name.as_str())
        .bind(p.settings.retry_policy.as_ref().map(to_json))
        .bind(p.settings.retention_days.map(i64::from))
        .bind(p.settings.require_validation)
        .bind(p.settings.validation_event.as_ref().map(EventTypeName::as_str))
        .bind(ms(&p.created_at))
        .bind(ms(&p.updated_at))
        .execute(&mut *self.writer().await?)
        .await
        .map_err(write_error("project", "name", "project"))?;
        Ok(())
    }

    async fn project(&self, id: &ProjectId) -> StoreResult<Project> {
        let row = sqlx::query_as::<Db, ProjectRow>(concat!(
            "SELECT ",
            project_columns!(),
            " FROM projects WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("project", row)
    }

    async fn project_by_name(&self, name: &ProjectName) -> StoreResult<Project> {
        let row = sqlx::query_as::<Db, ProjectRow>(concat!(
            "SELECT ",
            project_columns!(),
            " FROM projects WHERE name = $1"
        ))
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
        let rows = sqlx::query_as::<Db, ProjectRow>(concat!(
            "SELECT ",
            project_columns!(),
            " FROM projects WHERE ($1 IS NULL OR id = $1) AND (created_at, id) < ($2, $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(only.map(ProjectId::as_str))
        .bind(at)
        .bind(id)
        .bind(limit_plus_one(page))
        .fetch_all(self.reader())
        .await?;
        page_of(rows, page, |p: &Project| Cursor::after(&p.created_at, p.id.as_str()))
    }

    async fn update_project(&self, p: &Project) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE projects SET name = $2, retry_policy = $3, retention_days = $4, \
             require_validation = $5, validation_event = $7, updated_at = $6 WHERE id = $1",
        )
        .bind(p.id.as_str())
        .bind(p.name.as_str())
        .bind(p.settings.retry_policy.as_ref().map(to_json))
        .bind(p.settings.retention_days.map(i64::from))
        .bind(p.settings.require_validation)
        .bind(ms(&p.updated_at))
        .bind(p.settings.validation_event.as_ref().map(EventTypeName::as_str))
        .execute(&mut *self.writer().await?)
        .await
        .map_err(write_error("project", "name", "project"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "project" });
        }
        Ok(())
    }

    async fn delete_project(&self, id: &ProjectId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.writer().await?)
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
        .execute(&mut *self.writer().await?)
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
        .execute(&mut *self.writer().await?)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "event type" });
        }
        Ok(())
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let v = WebhookValues::from(w);
        let mut writer = self.writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *writer).await?;
        let insert = sqlx::query(concat!(
            "INSERT INTO webhooks (",
            webhook_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21)"
        ));
        bind_webhook(insert, v)
        .execute(&mut *tx)
        .await
        .map_err(write_error("webhook", "name", "project"))?;
        sqlx::query("INSERT INTO webhook_stats (webhook_id) VALUES ($1)")
            .bind(w.id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        self.save_webhook(w, None).await
    }

    async fn update_webhook_if_unchanged(&self, w: &Webhook, seen: Timestamp) -> StoreResult<()> {
        self.save_webhook(w, Some(ms(&seen))).await
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.writer().await?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "webhook" });
        }
        Ok(())
    }

    async fn subscribed_webhooks(&self, project: &ProjectId) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query_as::<Db, WebhookRow>(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE project_id = $1 AND status <> 'pending' ORDER BY created_at, id"
        ))
        .bind(project.as_str())
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }

    async fn held_deliveries(&self, webhooks: &[WebhookId]) -> StoreResult<HashMap<WebhookId, u64>> {
        let mut held = HashMap::new();
        for chunk in webhooks.chunks(500) {
            // Counted on the partial due index (pending and retrying rows only).
            let mut select = sqlx::QueryBuilder::<Db>::new(concat!(
                "SELECT d.webhook_id, COUNT(*) FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE w.status IN ",
                holding_statuses!(),
                " AND d.status IN ('pending', 'retrying') AND d.webhook_id IN ("
            ));
            let mut ids = select.separated(", ");
            for id in chunk {
                ids.push_bind(id.as_str());
            }
            select.push(") GROUP BY d.webhook_id");
            let rows: Vec<(String, i64)> = select
                .build_query_as()
                .persistent(false)
                .fetch_all(self.reader())
                .await?;
            for (id, n) in rows {
                let id = WebhookId::parse(&id)
                    .map_err(|e| StoreError::Corrupt { what: "webhook id", source: Box::new(e) })?;
                held.insert(id, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(held)
    }

    async fn discard_held(
        &self,
        webhook: &WebhookId,
        before: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Discarded> {
        let mut writer = self.writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *writer).await?;
        // On PostgreSQL the webhook's row stays locked until the discard commits, so an enable
        // (which updates that row) runs wholly before — and the status read here says nothing is
        // held — or wholly after, when the poller it wakes finds the discarded deliveries gone.
        // Otherwise a claim after the enable could lease a delivery this statement then
        // discards. On SQLite the single writer connection serialises the two anyway.
        let lock = if ROW_LOCKS {
            "SELECT status FROM webhooks WHERE id = $1 FOR UPDATE"
        } else {
            "SELECT status FROM webhooks WHERE id = $1"
        };
        let (status,): (String,) = sqlx::query_as(lock)
            .bind(webhook.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound { entity: "webhook" })?;
        let status = WebhookStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: "webhook status",
            source: format!("unknown value `{status}`").into(),
        })?;
        if !status.holds_deliveries() {
            return Ok(Discarded::NotHeld(status));
        }
        // A delivery under a live lease is being sent right now (a send that began before the
        // webhook was paused, or a Trigger now): its attempt settles it, not this. Leaving those
        // rows alone also means this never waits on a row the group commit is settling.
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'discarded', next_attempt_at = NULL, updated_at = $3, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE webhook_id = $1 AND status IN ('pending', 'retrying') AND created_at < $2 \
             AND (lease_expires_at IS NULL OR lease_expires_at < $3)",
        )
        .bind(webhook.as_str())
        .bind(before.as_ref().map_or(i64::MAX, ms))
        .bind(ms(&now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Discarded::Count(done.rows_affected()))
    }

    async fn account_secret(&self, candidate: &SigningSecret) -> StoreResult<SigningSecret> {
        const SELECT: &str = "SELECT value FROM settings WHERE key = $1";
        let stored: Option<(String,)> = sqlx::query_as(SELECT)
            .bind(ACCOUNT_SECRET_KEY)
            .fetch_optional(self.reader())
            .await?;
        if let Some((value,)) = stored {
            return Ok(SigningSecret::from_stored(value));
        }
        // The first writer wins: nodes starting together each offer a secret, one is kept.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(ACCOUNT_SECRET_KEY)
        .bind(candidate.expose())
        .execute(&mut *self.writer().await?)
        .await?;
        let (value,): (String,) = sqlx::query_as(SELECT)
            .bind(ACCOUNT_SECRET_KEY)
            .fetch_one(&mut *self.writer().await?)
            .await?;
        Ok(SigningSecret::from_stored(value))
    }

    async fn set_account_secret(&self, secret: &SigningSecret) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(ACCOUNT_SECRET_KEY)
        .bind(secret.expose())
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
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
        .execute(&mut *self.writer().await?)
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
        let mut writer = self.writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *writer).await?;
        // The active admin keys, locked (PostgreSQL; SQLite's one writer already serialises
        // this) in id order: two revocations at once then take the locks one after the other,
        // and the second reads the admin keys again once the first has committed. Checked and
        // revoked in one transaction, two nodes revoking the last two admin keys at once cannot
        // both succeed.
        let admins: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT id FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL ORDER BY id{FOR_UPDATE}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        if let [(only,)] = admins.as_slice()
            && only == id.as_str()
        {
            return Err(StoreError::LastAdminKey);
        }
        let row = sqlx::query_as::<Db, ApiKeyRow>(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING id, name, role, project_id, token_hash, token_prefix, created_at, revoked_at",
        )
        .bind(id.as_str())
        .bind(ms(&at))
        .fetch_optional(&mut *tx)
        .await?;
        let key = found("API key", row)?;
        tx.commit().await?;
        Ok(key)
    }

    async fn publish(&self, event: &Event, deliveries: &[Delivery]) -> StoreResult<Published> {
        let one = NewPublish {
            event: event.clone(),
            deliveries: deliveries.iter().map(|d| (d.clone(), None)).collect(),
        };
        let mut committed = self.commit(std::slice::from_ref(&one), &[], event.created_at).await?;
        Ok(committed.published.pop().unwrap_or(Published::Created))
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

    async fn commit(
        &self,
        publishes: &[NewPublish],
        records: &[AttemptRecord],
        now: Timestamp,
    ) -> StoreResult<Committed> {
        // Few statements per batch whatever its size: on SQLite every statement is a round trip
        // to the connection's thread, and the writer is the one serial step of the engine.
        // Every insert below guards its own references (WHERE EXISTS): see `commit_writer`.
        let mut writer = self.commit_writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *writer).await?;
        let mut committed = Committed::default();

        // The records' statistics are folded while SQLite runs the events insert.
        let (inserted, deltas) = tokio::join!(insert_events(&mut tx, publishes), async {
            crate::batch::fold(records)
        });
        let mut inserted = inserted?;
        let mut events_per_webhook: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        let mut new_deliveries: Vec<&(Delivery, Option<Lease>)> = Vec::new();
        for p in publishes {
            let e = &p.event;
            // The first publish of an id in this batch takes it; any later one is a duplicate.
            if !inserted
                .get_mut(e.project_id.as_str())
                .is_some_and(|ids| ids.remove(e.id.as_str()))
            {
                let row = sqlx::query_as::<Db, EventRow>(
                    "SELECT project_id, id, event_type, occurred_at, data, actor_id, actor_email, created_at \
                     FROM events WHERE project_id = $1 AND id = $2",
                )
                .bind(e.project_id.as_str())
                .bind(e.id.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound { entity: "project" })?;
                committed.published.push(Published::Duplicate(Box::new(Event::try_from(row)?)));
                continue;
            }
            for pair in &p.deliveries {
                let entry = events_per_webhook.entry(pair.0.webhook_id.as_str()).or_insert((0, 0));
                entry.0 += 1;
                entry.1 = entry.1.max(ms(&e.created_at));
                new_deliveries.push(pair);
            }
            committed.published.push(Published::Created);
        }
        // Rows in delivery id order, for the same lock-order reason as the statistics below.
        let mut by_delivery: Vec<&AttemptRecord> = records.iter().collect();
        by_delivery.sort_by(|a, b| a.attempt.delivery_id.cmp(&b.attempt.delivery_id));
        let statements = new_deliveries
            .chunks(PADDED_CHUNK)
            .map(insert_deliveries)
            .chain(records.chunks(PADDED_CHUNK).map(insert_attempts))
            .chain(by_delivery.chunks(PADDED_CHUNK).map(settle_deliveries));
        execute_overlapped(&mut tx, statements).await?;
        for r in records {
            let Some(change) = &r.webhook_change else { continue };
            let mut update = sqlx::QueryBuilder::<Db>::new("UPDATE webhooks SET status = ");
            update
                .push_bind(change.to.as_str())
                .push(", status_reason = ")
                .push_bind(change.reason.as_str())
                .push(", updated_at = ")
                .push_bind(ms(&now))
                .push(" WHERE id = ")
                .push_bind(r.attempt.webhook_id.as_str())
                .push(" AND status IN (");
            let mut from = update.separated(", ");
            for status in &change.from {
                from.push_bind(status.as_str());
            }
            update.push(")");
            update.build().execute(&mut *tx).await?;
        }
        self.count_in_stats(&mut tx, &events_per_webhook, deltas, now, &mut committed)
            .await?;
        tx.commit().await?;
        Ok(committed)
    }

    async fn claim_due(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>> {
        let rows = sqlx::query_as::<Db, DeliveryRow>(CLAIM_DUE)
            .bind(lease.owner.as_str())
            .bind(ms(&lease.until))
            .bind(webhook.as_str())
            .bind(ms(&now))
            .bind(i64::from(limit))
            .fetch_all(&mut *self.lease_writer().await?)
            .await?;
        let mut deliveries: Vec<Delivery> = convert(rows)?;
        // Oldest due first, as the lane will send them: the statement picks the oldest, but an
        // UPDATE's RETURNING comes in no particular order (on PostgreSQL, the heap's), and a
        // webhook enabled again must get what it held in the order it was published.
        deliveries.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at).cmp(&(b.next_attempt_at, b.created_at))
        });
        let Some(first) = deliveries.first() else {
            return Ok(Vec::new());
        };
        let mut select = sqlx::QueryBuilder::<Db>::new(
            "SELECT project_id, id, event_type, occurred_at, data, actor_id, actor_email, created_at \
             FROM events WHERE project_id = ",
        );
        select.push_bind(first.project_id.as_str()).push(" AND id IN (");
        let mut ids = select.separated(", ");
        for d in &deliveries {
            ids.push_bind(d.event_id.as_str());
        }
        select.push(")");
        // Events are written once and committed before their deliveries can be claimed: any
        // connection reads them, and the writer goes back to the group commit.
        let events: Vec<Event> = convert(select.build_query_as::<EventRow>().fetch_all(self.reader()).await?)?;
        let by_id: HashMap<&str, &Event> = events.iter().map(|e| (e.id.as_str(), e)).collect();
        Ok(deliveries
            .into_iter()
            .filter_map(|d| {
                let event = (*by_id.get(d.event_id.as_str())?).clone();
                Some(Claimed { delivery: d, event })
            })
            .collect())
    }

    async fn release(&self, owner: &str, deliveries: &[DeliveryId]) -> StoreResult<()> {
        for chunk in deliveries.chunks(500) {
            let mut update = sqlx::QueryBuilder::<Db>::new(
                "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ",
            );
            update.push_bind(owner).push(" AND id IN (");
            let mut ids = update.separated(", ");
            for id in chunk {
                ids.push_bind(id.as_str());
            }
            update.push(")");
            update.build().execute(&mut *self.lease_writer().await?).await?;
        }
        Ok(())
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        let done = sqlx::query(
            // Leased rows are pending or retrying: the condition lets the partial due index serve.
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE status IN ('pending', 'retrying') AND lease_owner IS NOT NULL",
        )
        .execute(&mut *self.lease_writer().await?)
        .await?;
        Ok(done.rows_affected())
    }

    async fn release_leases_of(&self, owner: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE status IN ('pending', 'retrying') AND lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut *self.lease_writer().await?)
        .await?;
        Ok(done.rows_affected())
    }

    async fn webhooks_with_due_work(
        &self,
        now: Timestamp,
        after: Option<&WebhookId>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookId>> {
        // A loose index scan (one index probe per webhook), so a webhook with a million queued
        // deliveries costs the same as one with a single delivery.
        let rows: Vec<(String,)> = sqlx::query_as(
            "WITH RECURSIVE w(id) AS ( \
               SELECT MIN(webhook_id) FROM deliveries WHERE status IN ('pending', 'retrying') \
                 AND webhook_id > $3 \
               UNION ALL \
               SELECT (SELECT MIN(d.webhook_id) FROM deliveries d \
                       WHERE d.status IN ('pending', 'retrying') AND d.webhook_id > w.id) \
               FROM w WHERE w.id IS NOT NULL) \
             SELECT w.id FROM w JOIN webhooks h ON h.id = w.id AND h.status = 'active' \
             WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id \
               AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $1 \
               AND (d.lease_expires_at IS NULL OR d.lease_expires_at < $1)) \
             ORDER BY w.id LIMIT $2",
        )
        .bind(ms(&now))
        .bind(i64::from(limit))
        .bind(after.map_or("", WebhookId::as_str))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter()
            .map(|(id,)| {
                WebhookId::parse(&id).map_err(|e| StoreError::Corrupt { what: "webhook id", source: Box::new(e) })
            })
            .collect()
    }

    async fn delivery(&self, id: &DeliveryId) -> StoreResult<Delivery> {
        let row = sqlx::query_as::<Db, DeliveryRow>(
            "SELECT id, project_id, event_id, webhook_id, status, attempts, next_attempt_at, created_at, updated_at \
             FROM deliveries WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("delivery", row)
    }

    async fn list_webhook_deliveries(
        &self,
        webhook: &WebhookId,
        statuses: &[DeliveryStatus],
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        let (at, id) = start_position(page.after.as_ref());
        let mut select = sqlx::QueryBuilder::<Db>::new(
            "SELECT id, project_id, event_id, webhook_id, status, attempts, next_attempt_at, created_at, updated_at \
             FROM deliveries WHERE webhook_id = ",
        );
        select.push_bind(webhook.as_str());
        if !statuses.is_empty() {
            select.push(" AND status IN (");
            let mut list = select.separated(", ");
            for s in statuses {
                list.push_bind(s.as_str());
            }
            select.push(")");
        }
        select
            .push(" AND (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(") ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(limit_plus_one(page));
        let rows = select.build_query_as::<DeliveryRow>().fetch_all(self.reader()).await?;
        page_of(rows, page, |d: &Delivery| Cursor::after(&d.created_at, d.id.as_str()))
    }

    async fn replay_delivery(&self, id: &DeliveryId, now: Timestamp) -> StoreResult<Delivery> {
        let row = sqlx::query_as::<Db, DeliveryRow>(
            "UPDATE deliveries SET status = CASE WHEN status = 'retrying' THEN 'retrying' ELSE 'pending' END, \
             next_attempt_at = $2, updated_at = $2 WHERE id = $1 \
             RETURNING id, project_id, event_id, webhook_id, status, attempts, next_attempt_at, created_at, updated_at",
        )
        .bind(id.as_str())
        .bind(ms(&now))
        .fetch_optional(&mut *self.writer().await?)
        .await?;
        found("delivery", row)
    }

    async fn replay_failed(&self, webhook: &WebhookId, since: Timestamp, now: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $3, updated_at = $3 \
             WHERE webhook_id = $1 AND status = 'failed' AND created_at >= $2",
        )
        .bind(webhook.as_str())
        .bind(ms(&since))
        .bind(ms(&now))
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(done.rows_affected())
    }

    async fn attempt(&self, id: &AttemptId) -> StoreResult<Attempt> {
        let row = sqlx::query_as::<Db, AttemptRow>(concat!("SELECT ", attempt_columns!(), " FROM attempts WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?;
        found("attempt", row)
    }

    async fn list_attempts(&self, query: &AttemptQuery, page: &PageRequest) -> StoreResult<Page<Attempt>> {
        let (at, id) = start_position(page.after.as_ref());
        let (sql, key) = match query {
            AttemptQuery::Webhook(w) => (
                concat!(
                    "SELECT ",
                    attempt_columns!(),
                    " FROM attempts WHERE webhook_id = $1 AND (started_at, id) < ($2, $3) \
                     ORDER BY started_at DESC, id DESC LIMIT $4"
                ),
                w.as_str(),
            ),
            AttemptQuery::Delivery(d) => (
                concat!(
                    "SELECT ",
                    attempt_columns!(),
                    " FROM attempts WHERE delivery_id = $1 AND (started_at, id) < ($2, $3) \
                     ORDER BY started_at DESC, id DESC LIMIT $4"
                ),
                d.as_str(),
            ),
        };
        let rows = sqlx::query_as::<Db, AttemptRow>(sql)
            .bind(key)
            .bind(at)
            .bind(id)
            .bind(limit_plus_one(page))
            .fetch_all(self.reader())
            .await?;
        page_of(rows, page, |a: &Attempt| Cursor::after(&a.started_at, a.id.as_str()))
    }

    async fn webhook_stats(&self, webhook: &WebhookId) -> StoreResult<WebhookStats> {
        let row = sqlx::query_as::<Db, StatsRow>(
            "SELECT events, triggers, successes, failures, failures_since_success, last_event_at, \
             last_success_at, last_success_attempt, last_failure_at, last_failure_attempt, \
             failed_deliveries_in_a_row, failing_since, \
             (SELECT MIN(d.next_attempt_at) FROM deliveries d WHERE d.webhook_id = s.webhook_id \
              AND d.status IN ('pending', 'retrying')) AS next_trigger_at \
             FROM webhook_stats s WHERE webhook_id = $1",
        )
        .bind(webhook.as_str())
        .fetch_optional(self.reader())
        .await?;
        found("webhook", row)
    }

    async fn prune(&self, now: Timestamp, default_days: u32, limit: u32) -> StoreResult<u64> {
        // Found on a reader, deleted by the writer: the search may pass over many events it
        // must keep (those with a delivery still pending, say a paused webhook's month-old
        // backlog), and the writer — the group commit's — is held only for the deletes.
        //
        // The first bound is the latest cutoff of any project, a constant: the scan of
        // `events_by_age` stops there. Without it nothing bounded the scan (each project's
        // cutoff is per row), and with a million events none of them old enough, every prune
        // read all of them: 1.3 s, once a minute, then on the writer.
        //
        // What keeps an event is a delivery still on its way to an active webhook. One held by
        // a disabled or out-of-order webhook does not: retention applies to it like to any
        // other, or a webhook paused for good would keep its events forever.
        let found: Vec<(String, String)> = sqlx::query_as(concat!(
            "SELECT e.project_id, e.id FROM events e JOIN projects p ON p.id = e.project_id \
             WHERE e.created_at < (SELECT $1 - MIN(COALESCE(retention_days, $2)) * 86400000 FROM projects) \
             AND e.created_at < $1 - COALESCE(p.retention_days, $2) * 86400000 \
             AND NOT EXISTS (",
            in_flight_delivery_of!("e"),
            ") ORDER BY e.created_at LIMIT $3"
        ))
        .bind(ms(&now))
        .bind(i64::from(default_days))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        let mut deleted = 0;
        for chunk in found.chunks(PADDED_CHUNK) {
            // Checked again as it is deleted: a delivery may have been replayed since.
            let mut delete = sqlx::QueryBuilder::<Db>::new("DELETE FROM events WHERE (project_id, id) IN (");
            delete.push_values(chunk, |mut row, (project, id)| {
                row.push_bind(project.as_str()).push_bind(id.as_str());
            });
            delete.push(concat!(") AND NOT EXISTS (", in_flight_delivery_of!("events"), ")"));
            deleted += delete
                .build()
                .persistent(false)
                .execute(&mut *self.writer().await?)
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }
}

type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// Binds a webhook's values in `webhook_columns!()` order.
fn bind_webhook(query: Query<'_>, v: WebhookValues) -> Query<'_> {
    query
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
        .bind(v.previous_secret)
        .bind(v.previous_secret_expires_at)
        .bind(v.created_at)
        .bind(v.updated_at)
}
