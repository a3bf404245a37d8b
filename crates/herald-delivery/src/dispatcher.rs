//! Lanes: one per webhook, each with its own concurrency limit and a bounded queue, all under a
//! global limit. A webhook that hangs fills only its own lane; every other lane keeps moving.
//!
//! There are no long-lived workers: submitting work to a lane with a free slot spawns a worker
//! that runs the lane's queued jobs one after another and ends when the queue is empty.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use herald_core::delivery::Delivery;
use herald_core::event::Event;
use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::engine::Core;

/// A leased delivery, ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub delivery: Delivery,
    pub event: Arc<Event>,
    /// When this node's lease on the delivery ends; a job that cannot be sent and recorded
    /// before then is dropped (the delivery is claimed again), never sent twice.
    pub lease_until: Timestamp,
}

#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<Job>,
    running: usize,
}

#[derive(Debug)]
pub(crate) struct Dispatcher {
    lanes: Mutex<HashMap<WebhookId, Lane>>,
    global: Arc<Semaphore>,
    lane_concurrency: usize,
    lane_queue: usize,
    stopping: AtomicBool,
    pub tracker: TaskTracker,
}

impl Dispatcher {
    pub fn new(global: usize, lane_concurrency: usize, lane_queue: usize) -> Self {
        Self {
            lanes: Mutex::new(HashMap::new()),
            global: Arc::new(Semaphore::new(global)),
            lane_concurrency,
            lane_queue,
            stopping: AtomicBool::new(false),
            tracker: TaskTracker::new(),
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, HashMap<WebhookId, Lane>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many more deliveries the webhook's lane takes now (queued plus running).
    pub fn room(&self, webhook: &WebhookId) -> usize {
        let capacity = self.lane_concurrency + self.lane_queue;
        let used = self
            .lanes()
            .get(webhook)
            .map_or(0, |l| l.queue.len() + l.running);
        capacity.saturating_sub(used)
    }

    pub fn submit(&self, core: &Arc<Core>, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        if self.stopping.load(Ordering::Acquire) {
            core.release_later(jobs.into_iter().map(|j| j.delivery.id).collect());
            return;
        }
        let mut start = Vec::new();
        {
            let mut lanes = self.lanes();
            for job in jobs {
                let id = job.delivery.webhook_id.clone();
                let lane = lanes.entry(id.clone()).or_default();
                lane.queue.push_back(job);
                if lane.running < self.lane_concurrency {
                    lane.running += 1;
                    start.push(id);
                }
            }
        }
        for webhook in start {
            let core = core.clone();
            self.tracker.spawn(async move { work(core, webhook).await });
        }
    }

    /// Takes the lane's next job, or retires the calling worker.
    fn next(&self, webhook: &WebhookId) -> Option<Job> {
        let mut lanes = self.lanes();
        let lane = lanes.get_mut(webhook)?;
        if !self.stopping.load(Ordering::Acquire)
            && let Some(job) = lane.queue.pop_front()
        {
            return Some(job);
        }
        lane.running -= 1;
        if lane.running == 0 && lane.queue.is_empty() {
            lanes.remove(webhook);
        }
        None
    }

    /// Removes what is queued (not running) for a webhook; returns the deliveries to release.
    pub fn drain(&self, webhook: &WebhookId) -> Vec<DeliveryId> {
        let mut lanes = self.lanes();
        let Some(lane) = lanes.get_mut(webhook) else {
            return Vec::new();
        };
        lane.queue.drain(..).map(|j| j.delivery.id).collect()
    }

    /// Stops starting jobs; returns every queued delivery so its lease can be given back.
    pub fn stop(&self) -> Vec<DeliveryId> {
        self.stopping.store(true, Ordering::Release);
        self.tracker.close();
        let mut lanes = self.lanes();
        lanes
            .values_mut()
            .flat_map(|l| l.queue.drain(..))
            .map(|j| j.delivery.id)
            .collect()
    }

    pub fn in_memory(&self) -> usize {
        self.lanes()
            .values()
            .map(|l| l.queue.len() + l.running)
            .sum()
    }
}

async fn work(core: Arc<Core>, webhook: WebhookId) {
    while let Some(job) = core.dispatcher.next(&webhook) {
        let Ok(_permit) = core.dispatcher.global.clone().acquire_owned().await else {
            return;
        };
        crate::attempt::run(&core, job).await;
    }
}
