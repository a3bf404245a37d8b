//! Claims due work the lanes do not already hold: retries whose time has come, deliveries left
//! unleased because their lane was full, and deliveries whose lease expired because the node
//! holding them died. Runs every poll interval, or at once when woken (a replay, an enable).

use std::sync::Arc;

use herald_core::time;
use herald_core::webhook::WebhookStatus;
use herald_store::Lease;

use crate::dispatcher::Job;
use crate::request::Outbound;
use crate::shared::Core;

pub(crate) async fn run(core: Arc<Core>) {
    loop {
        tokio::select! {
            _ = core.shutdown.cancelled() => return,
            _ = tokio::time::sleep(core.config.poll_interval) => {}
            _ = core.wake.notified() => {}
        }
        if let Err(e) = poll_once(&core).await {
            tracing::warn!(error = %e, "polling for due deliveries failed; trying again next interval");
        }
    }
}

/// One pass: every webhook with due, unleased work gets as much as its lane has room for.
pub(crate) async fn poll_once(core: &Arc<Core>) -> herald_store::StoreResult<usize> {
    const PAGE: u32 = 500;
    let now = time::now();
    let mut claimed = 0;
    let mut after: Option<herald_core::id::WebhookId> = None;
    // Page through every webhook with due work, so webhooks past the first page (behind many
    // whose lanes are full) are not starved.
    loop {
        let page = core
            .store
            .webhooks_with_due_work(now, after.as_ref(), PAGE)
            .await?;
        let full_page = page.len() == PAGE as usize;
        after = page.last().cloned();
        for webhook in page {
            use tracing::Instrument as _;
            let span = tracing::info_span!("claim", webhook_id = %webhook, claimed = tracing::field::Empty);
            claimed += claim_for(core, webhook, now).instrument(span).await?;
        }
        if !full_page {
            return Ok(claimed);
        }
    }
}

/// Claims as much of one webhook's due work as its lane has room for.
async fn claim_for(
    core: &Arc<Core>,
    webhook: herald_core::id::WebhookId,
    now: time::Timestamp,
) -> herald_store::StoreResult<usize> {
    let room = core.dispatcher.reserve(
        &webhook,
        core.config.lane_concurrency + core.config.lane_queue,
    );
    if room.count() == 0 {
        return Ok(0);
    }
    let Some(entry) = core.webhook(&webhook).await? else {
        return Ok(0);
    };
    if entry.webhook.status != WebhookStatus::Active {
        return Ok(0);
    }
    let lease = Lease {
        owner: core.config.node_id.clone(),
        until: core.lease_until(&entry.webhook, now),
    };
    let jobs: Vec<Job> = core
        .store
        .claim_due(
            &webhook,
            &lease,
            now,
            u32::try_from(room.count()).unwrap_or(u32::MAX),
        )
        .await?
        .into_iter()
        .map(|c| Job {
            delivery: c.delivery,
            event: Arc::new(Outbound::new(c.event)),
            lease_until: lease.until,
        })
        .collect();
    let claimed = jobs.len();
    tracing::Span::current().record("claimed", claimed);
    let filled = claimed == room.count();
    core.dispatcher.submit(core, jobs, vec![room]);
    if filled {
        // Maybe more where these came from: look again when the lane has room, not a poll later.
        core.dispatcher.spilled(&webhook);
    }
    Ok(claimed)
}
