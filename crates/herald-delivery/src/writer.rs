//! The group commit.
//!
//! Every write on the hot path — a publish, an attempt's record — is an [`Op`] on one queue.
//! The writer takes everything queued (up to a batch limit), commits it in ONE transaction (one
//! fsync for the lot), answers each waiter, and hands the deliveries leased in that transaction
//! to the dispatcher. While a commit is on disk the next batch gathers, so the busier Herald is,
//! the larger the batches and the cheaper each write. If a batch fails, its ops are retried one
//! by one so a single bad one cannot sink the others.

use std::sync::Arc;

use herald_store::{AttemptRecord, NewPublish, Published, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::dispatcher::{Job, Reservation};
use crate::request::Outbound;
use crate::shared::Core;
use crate::writes::Op;

/// Runs the writer on a thread of its own, with a single-threaded runtime, so its turn after
/// each round trip to the store does not wait behind the sends its last commit released. The
/// returned task lives on the main runtime for as long as the writer should: when the main
/// runtime ends (without a shutdown), the task is dropped and the writer thread stops too.
pub(crate) fn start_thread(
    core: Arc<Core>,
    queue: mpsc::Receiver<Op>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (alive, main_gone) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("herald-writer".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    () = run(core, queue) => {}
                    _ = main_gone => {}
                }
            });
        })?;
    Ok(tokio::spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await;
    }))
}

pub(crate) async fn run(core: Arc<Core>, mut queue: mpsc::Receiver<Op>) {
    let max = core.config.max_batch;
    let mut batch = Vec::with_capacity(max);
    loop {
        let Some(first) = queue.recv().await else {
            return;
        };
        batch.push(first);
        while batch.len() < max {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        // A Stop is answered after everything in its batch (even ops queued behind it) commits.
        let stop = batch
            .iter()
            .position(|op| matches!(op, Op::Stop(_)))
            .map(|i| batch.remove(i));
        // Every line logged about this batch carries its size.
        let span = tracing::info_span!("commit", writes = batch.len());
        commit(&core, std::mem::take(&mut batch))
            .instrument(span)
            .await;
        if let Some(Op::Stop(done)) = stop {
            let _ = done.send(());
            return;
        }
    }
}

async fn commit(core: &Arc<Core>, ops: Vec<Op>) {
    if ops.is_empty() {
        return;
    }
    // Split the ops into what the store writes and what is answered afterwards, without copying
    // any payload.
    let mut publishes = Vec::new();
    let mut after_publish = Vec::new();
    let mut records = Vec::new();
    let mut after_record = Vec::new();
    for op in ops {
        match op {
            Op::Publish {
                publish,
                dispatch,
                reservations,
                reply,
            } => {
                publishes.push(publish);
                after_publish.push((dispatch, reservations, reply));
            }
            Op::Record { record, reply } => {
                records.push(record);
                after_record.push(reply);
            }
            Op::Stop(_) => {}
        }
    }
    let now = herald_core::time::now();
    match core.store.commit(&publishes, &records, now).await {
        Ok(committed) => {
            // Lane workers and the rest are spawned on the main runtime, wherever this runs.
            let _main = core.runtime.enter();
            let mut published = committed.published.into_iter();
            // Publishes not dispatched (duplicates, Trigger now): freed with the records.
            let mut undispatched = Vec::new();
            for (publish, (dispatch, reservations, reply)) in
                publishes.into_iter().zip(after_publish)
            {
                let outcome = published.next().unwrap_or(Published::Created);
                if outcome == Published::Created && dispatch {
                    let event = Arc::new(Outbound::new(publish.event));
                    let mut jobs = Vec::with_capacity(publish.deliveries.len());
                    for (delivery, lease) in publish.deliveries {
                        match lease {
                            Some(lease) => jobs.push(Job {
                                delivery,
                                event: event.clone(),
                                lease_until: lease.until,
                            }),
                            // Committed without a lease: its lane had no room for it (or its
                            // webhook holds it, when the lane, if any, is only finishing sends
                            // and the poller skips a paused webhook). Now that it is in the
                            // store, the lane may ask for it.
                            None => core.dispatcher.spilled(&delivery.webhook_id),
                        }
                    }
                    core.dispatcher.submit(core, jobs, reservations);
                } else {
                    undispatched.push(publish);
                }
                let _ = reply.send(Ok(outcome));
            }
            for (record, reply) in records.iter().zip(after_record) {
                if record.webhook_change.is_some() {
                    core.webhook_changed(&record.attempt.webhook_id);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
            for webhook in committed.out_of_order {
                crate::publish::went_out_of_order(core, webhook);
            }
            // Freeing a batch (every event's data, every attempt's headers and body) is a few
            // percent of the writer's time; a runtime worker does it, off the serial step.
            tokio::spawn(async move { drop((undispatched, records)) });
        }
        Err(e) if publishes.len() + records.len() > 1 => {
            tracing::warn!(error = %e, writes = publishes.len() + records.len(), "group commit failed; committing one by one");
            for op in rejoin(publishes, after_publish, records, after_record) {
                let span = tracing::info_span!("commit", writes = 1);
                Box::pin(commit(core, vec![op])).instrument(span).await;
            }
        }
        Err(e) => {
            let ops = rejoin(publishes, after_publish, records, after_record);
            fail(ops, e);
        }
    }
}

type AfterPublish = (
    bool,
    Vec<Reservation>,
    oneshot::Sender<StoreResult<Published>>,
);

/// Puts split ops back together, to retry them one by one or report their failure.
fn rejoin(
    publishes: Vec<NewPublish>,
    after_publish: Vec<AfterPublish>,
    records: Vec<AttemptRecord>,
    after_record: Vec<Option<oneshot::Sender<StoreResult<()>>>>,
) -> Vec<Op> {
    publishes
        .into_iter()
        .zip(after_publish)
        .map(|(publish, (dispatch, reservations, reply))| Op::Publish {
            publish,
            dispatch,
            reservations,
            reply,
        })
        .chain(
            records
                .into_iter()
                .zip(after_record)
                .map(|(record, reply)| Op::Record { record, reply }),
        )
        .collect()
}

/// A lone op that could not be committed: its waiter hears why, as the store said it (a lost
/// connection stays a lost connection, not "corrupt data"). A record that is lost this way
/// leaves its delivery leased; the lease expires and the delivery is tried again.
fn fail(ops: Vec<Op>, error: StoreError) {
    tracing::error!(error = %error, "a write could not be committed");
    let error = Arc::new(error);
    for op in ops {
        match op {
            Op::Publish { publish, reply, .. } => {
                tracing::warn!(
                    event_id = publish.event.id.as_str(),
                    "publish not committed"
                );
                let _ = reply.send(Err(StoreError::Shared(error.clone())));
            }
            Op::Record { record, reply } => {
                let attempt = &record.attempt;
                tracing::warn!(
                    webhook_id = %attempt.webhook_id,
                    delivery_id = %attempt.delivery_id,
                    attempt_id = %attempt.id,
                    "attempt record not committed; the lease will expire and the delivery be tried again"
                );
                if let Some(reply) = reply {
                    let _ = reply.send(Err(StoreError::Shared(error.clone())));
                }
            }
            Op::Stop(_) => {}
        }
    }
}
