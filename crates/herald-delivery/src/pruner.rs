//! Retention: events older than their project's retention (or the server's default), with their
//! deliveries and attempts, are deleted in the background in small batches, with a pause between
//! batches so the single writer is never held for long.

use std::sync::Arc;
use std::time::Duration;

use herald_core::time;

use crate::shared::Core;

pub(crate) async fn run(core: Arc<Core>) {
    loop {
        tokio::select! {
            _ = core.shutdown.cancelled() => return,
            _ = tokio::time::sleep(core.config.prune_interval) => {}
        }
        let mut total = 0;
        loop {
            match core
                .store
                .prune(
                    time::now(),
                    core.config.retention_days,
                    core.config.prune_batch,
                )
                .await
            {
                Ok(n) => {
                    total += n;
                    if n < u64::from(core.config.prune_batch) || core.shutdown.is_cancelled() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning old events failed; trying again next interval");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(events = total, "pruned events past their retention");
        }
    }
}
