//! The writer's queue: what the rest of the engine hands the group commit, and the one way to
//! hand it something and wait for the commit.

use herald_store::{AttemptRecord, NewPublish, Published, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::dispatcher::Reservation;
use crate::error::EngineError;

pub(crate) enum Op {
    Publish {
        publish: NewPublish,
        /// Whether the publish's leased deliveries go to their lanes once committed (a Trigger
        /// now sends its one delivery itself), in the lane room the reservations hold. Their
        /// jobs are made then, from the committed publish: its deliveries and its event move
        /// into them instead of being cloned for them beforehand.
        dispatch: bool,
        reservations: Vec<Reservation>,
        reply: oneshot::Sender<StoreResult<Published>>,
    },
    Record {
        record: AttemptRecord,
        /// Told once the record is committed, for callers that wait (Trigger now).
        reply: Option<oneshot::Sender<StoreResult<()>>>,
    },
    /// Everything queued before this is committed; then the writer stops.
    Stop(oneshot::Sender<()>),
}

/// The sending end of the writer's queue.
#[derive(Debug, Clone)]
pub(crate) struct Writes(mpsc::Sender<Op>);

impl Writes {
    /// A queue holding up to `capacity` ops, and its receiving end for the writer.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Op>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (Self(sender), receiver)
    }

    /// Commits a publish; answers once it is durable.
    pub async fn publish(
        &self,
        publish: NewPublish,
        dispatch: bool,
        reservations: Vec<Reservation>,
    ) -> Result<Published, EngineError> {
        self.commit(|reply| Op::Publish {
            publish,
            dispatch,
            reservations,
            reply,
        })
        .await
    }

    /// Commits an attempt's record; answers once it is durable.
    pub async fn record_and_wait(&self, record: AttemptRecord) -> Result<(), EngineError> {
        self.commit(|reply| Op::Record {
            record,
            reply: Some(reply),
        })
        .await
    }

    /// Queues an attempt's record without waiting for it: if it is lost, the delivery's lease
    /// expires and the delivery is tried again.
    pub async fn record(&self, record: AttemptRecord) {
        if self
            .0
            .send(Op::Record {
                record,
                reply: None,
            })
            .await
            .is_err()
        {
            tracing::warn!(
                "the writer has stopped; the lease will expire and the delivery be retried"
            );
        }
    }

    /// Commits everything queued so far, then stops the writer.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.0.send(Op::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }

    async fn commit<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Op,
    ) -> Result<T, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(op(reply))
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        Ok(answer.await.map_err(|_| EngineError::ShuttingDown)??)
    }
}
