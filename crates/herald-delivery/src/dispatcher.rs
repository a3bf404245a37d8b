//! Lanes: one per webhook, each with its own concurrency limit and a bounded queue, all under a
//! global limit. A webhook that hangs fills only its own lane; every other lane keeps moving.
//!
//! There are no long-lived workers: submitting work to a lane with a free slot spawns a worker
//! that runs the lane's queued jobs one after another and ends when the queue is empty.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use herald_core::delivery::Delivery;
use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::request::Outbound;

/// What runs the jobs a dispatcher hands out (the engine's shared state): the dispatcher keeps
/// the lanes and their limits, and knows nothing of sending or the store.
pub(crate) trait Runner: Send + Sync + 'static {
    /// The dispatcher whose lanes this runner's jobs come from.
    fn dispatcher(&self) -> &Dispatcher;
    /// Sends one job and records it; says whether the receiver took it.
    fn run(self: &Arc<Self>, job: Job) -> impl Future<Output = bool> + Send;
    /// A lane that spilled deliveries to the store has drained to half: fetch them.
    fn refill(&self);
    /// Gives back the leases of jobs that will not run here.
    fn release(&self, deliveries: Vec<DeliveryId>);
}

/// A leased delivery, ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub delivery: Delivery,
    pub event: Arc<Outbound>,
    /// When this node's lease on the delivery ends; a job that cannot be sent and recorded
    /// before then is dropped (the delivery is claimed again), never sent twice.
    pub lease_until: Timestamp,
}

#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<Job>,
    running: usize,
    /// Room promised to deliveries being leased (a publish on its way to commit, a claim on its
    /// way back from the store), so two of them cannot both take the lane's last slot.
    reserved: usize,
    /// A delivery found the lane full and was left in the store unleased: once the lane has
    /// drained to half, the poller is woken to fetch it rather than at its next interval.
    spilled: bool,
}

impl Lane {
    fn used(&self) -> usize {
        self.queue.len() + self.running + self.reserved
    }

    fn is_idle(&self) -> bool {
        self.used() == 0
    }
}

type Lanes = Arc<Mutex<HashMap<WebhookId, Lane>>>;

fn lock(lanes: &Lanes) -> std::sync::MutexGuard<'_, HashMap<WebhookId, Lane>> {
    lanes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Room held in one webhook's lane until the jobs it was taken for are submitted; dropped
/// unsubmitted (the publish was a duplicate or failed, the claim found less), it is given back.
#[derive(Debug)]
pub(crate) struct Reservation {
    lanes: Lanes,
    webhook: WebhookId,
    count: usize,
}

impl Reservation {
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.count == 0 {
            return;
        }
        let mut lanes = lock(&self.lanes);
        if let Some(lane) = lanes.get_mut(&self.webhook) {
            lane.reserved = lane.reserved.saturating_sub(self.count);
            if lane.is_idle() {
                lanes.remove(&self.webhook);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Dispatcher {
    lanes: Lanes,
    global: Arc<Semaphore>,
    lane_concurrency: usize,
    lane_queue: usize,
    stopping: AtomicBool,
    pub tracker: TaskTracker,
}

impl Dispatcher {
    pub fn new(global: usize, lane_concurrency: usize, lane_queue: usize) -> Self {
        Self {
            lanes: Arc::new(Mutex::new(HashMap::new())),
            global: Arc::new(Semaphore::new(global)),
            lane_concurrency,
            lane_queue,
            stopping: AtomicBool::new(false),
            tracker: TaskTracker::new(),
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, HashMap<WebhookId, Lane>> {
        lock(&self.lanes)
    }

    /// Holds room for up to `wanted` more deliveries in the webhook's lane (queued, running and
    /// reserved count against its concurrency plus queue); the reservation may hold less, or none.
    pub fn reserve(&self, webhook: &WebhookId, wanted: usize) -> Reservation {
        let capacity = self.lane_concurrency + self.lane_queue;
        let mut lanes = self.lanes();
        let count = if self.stopping.load(Ordering::Acquire) {
            0
        } else {
            let used = lanes.get(webhook).map_or(0, Lane::used);
            wanted.min(capacity.saturating_sub(used))
        };
        if count > 0 {
            lanes.entry(webhook.clone()).or_default().reserved += count;
        }
        // What did not fit is not flagged `spilled` here but once it is committed (see
        // `spilled`): flagged now, the lane could ask for its refill before the delivery it
        // turned away was in the store, find nothing, and leave it for the next poll.
        Reservation {
            lanes: self.lanes.clone(),
            webhook: webhook.clone(),
            count,
        }
    }

    /// Notes that the webhook has more due work in the store than its lane took (a claim filled
    /// the lane, or a committed publish left a delivery the lane had no room for), so the poller
    /// is woken again once the lane has drained to half. A lane that has emptied meanwhile
    /// (between a publish finding it full and the publish's commit) is not woken for: it may be
    /// a failing webhook's, whose lane drains fast, and waking then would pull a dead
    /// endpoint's backlog at the pace of commits; the delivery waits for the next poll.
    pub fn spilled(&self, webhook: &WebhookId) {
        if let Some(lane) = self.lanes().get_mut(webhook) {
            lane.spilled = true;
        }
    }

    /// Queues leased jobs in their lanes, in the room their reservations held, and starts lane
    /// workers where a lane has a free slot.
    pub fn submit<R: Runner>(
        &self,
        runner: &Arc<R>,
        jobs: Vec<Job>,
        reservations: Vec<Reservation>,
    ) {
        let mut start = Vec::new();
        {
            let mut lanes = self.lanes();
            for mut reservation in reservations {
                if let Some(lane) = lanes.get_mut(&reservation.webhook) {
                    lane.reserved = lane.reserved.saturating_sub(reservation.count);
                }
                // Accounted for here, under the same lock as the jobs that take its place.
                reservation.count = 0;
            }
            if self.stopping.load(Ordering::Acquire) {
                lanes.retain(|_, lane| !lane.is_idle());
                drop(lanes);
                runner.release(jobs.into_iter().map(|j| j.delivery.id).collect());
                return;
            }
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
            let runner = runner.clone();
            self.tracker
                .spawn(async move { work(runner, webhook).await });
        }
    }

    /// Takes the lane's next job, or retires the calling worker. `refill` is told when the lane
    /// has drained to half after spilling deliveries to the store.
    fn next(&self, webhook: &WebhookId, refill: impl FnOnce()) -> Option<Job> {
        let mut lanes = self.lanes();
        let lane = lanes.get_mut(webhook)?;
        if lane.spilled && lane.queue.len() <= self.lane_queue / 2 {
            lane.spilled = false;
            refill();
        }
        if !self.stopping.load(Ordering::Acquire)
            && let Some(job) = lane.queue.pop_front()
        {
            return Some(job);
        }
        lane.running -= 1;
        if lane.is_idle() {
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

async fn work<R: Runner>(runner: Arc<R>, webhook: WebhookId) {
    // A webhook that is failing gets its spilled deliveries at the poll interval's pace, not as
    // fast as it can refuse them: a dead endpoint with a million queued must not keep the
    // writer busy with failures while healthy webhooks wait.
    let mut receiving = true;
    while let Some(job) = runner.dispatcher().next(&webhook, || {
        if receiving {
            runner.refill();
        }
    }) {
        let Ok(_permit) = runner.dispatcher().global.clone().acquire_owned().await else {
            return;
        };
        receiving = runner.run(job).await;
    }
}

#[cfg(test)]
mod tests {
    use herald_core::event::Event;

    use super::*;

    fn webhook() -> WebhookId {
        WebhookId::new()
    }

    #[test]
    fn reservations_never_promise_more_than_the_lane_holds() {
        // Concurrency 2 + queue 3: five deliveries in memory at most.
        let dispatcher = Dispatcher::new(100, 2, 3);
        let hook = webhook();
        let first = dispatcher.reserve(&hook, 4);
        assert_eq!(first.count(), 4);
        let second = dispatcher.reserve(&hook, 4);
        assert_eq!(second.count(), 1, "only the room the first left");
        let third = dispatcher.reserve(&hook, 1);
        assert_eq!(third.count(), 0, "a full lane promises nothing");
        // Another webhook's lane is untouched.
        assert_eq!(dispatcher.reserve(&webhook(), 5).count(), 5);
    }

    #[test]
    fn a_dropped_reservation_gives_its_room_back() {
        let dispatcher = Dispatcher::new(100, 1, 1);
        let hook = webhook();
        let held = dispatcher.reserve(&hook, 2);
        assert_eq!(dispatcher.reserve(&hook, 1).count(), 0);
        drop(held);
        assert_eq!(dispatcher.reserve(&hook, 2).count(), 2);
        assert_eq!(dispatcher.in_memory(), 0, "nothing queued or running");
    }

    #[test]
    fn a_lane_that_spilled_asks_for_a_refill_once_half_drained() {
        let dispatcher = Dispatcher::new(100, 1, 4);
        let hook = webhook();
        let held = dispatcher.reserve(&hook, 10);
        assert_eq!(held.count(), 5, "one running and four queued at most");
        assert!(
            !dispatcher.lanes()[&hook].spilled,
            "the other five are not in the store until their publish commits"
        );
        // Their publish committed.
        dispatcher.spilled(&hook);
        {
            let mut lanes = dispatcher.lanes();
            let lane = lanes.get_mut(&hook).unwrap();
            assert!(lane.spilled, "the other five were left in the store");
            // As after submitting: three queued, one running.
            lane.reserved = 0;
            lane.running = 1;
            lane.queue.extend((0..3).map(|_| job(&hook)));
        }
        let mut asked = 0;
        assert!(dispatcher.next(&hook, || asked += 1).is_some());
        assert_eq!(asked, 0, "three queued: more than half of four");
        assert!(dispatcher.next(&hook, || asked += 1).is_some());
        assert_eq!(asked, 1, "two queued: half drained, refill");
        assert!(dispatcher.next(&hook, || asked += 1).is_some());
        assert_eq!(asked, 1, "asked once per spill");
        drop(held);
    }

    fn job(hook: &WebhookId) -> Job {
        let now = herald_core::time::now();
        let event = Event {
            id: herald_core::event::EventId::generate(),
            project_id: herald_core::id::ProjectId::new(),
            event_type: herald_core::event_type::EventTypeName::parse("a.b").unwrap(),
            occurred_at: now,
            data: serde_json::json!({}),
            actor: None,
            created_at: now,
        };
        Job {
            delivery: Delivery::new(
                event.project_id.clone(),
                event.id.clone(),
                hook.clone(),
                now,
            ),
            event: Arc::new(Outbound::new(event)),
            lease_until: now,
        }
    }

    #[test]
    fn nothing_is_reserved_once_stopping() {
        let dispatcher = Dispatcher::new(100, 4, 4);
        let _ = dispatcher.stop();
        assert_eq!(dispatcher.reserve(&webhook(), 1).count(), 0);
    }
}
