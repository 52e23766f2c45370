//! What a running worker holds between claims: per webhook, the attempts in flight and the
//! claimed deliveries queued behind them ([`Held`]), and the lanes that work through those
//! queues ([`Lanes`]): at most [`PER_WEBHOOK`] per webhook and the worker's concurrency in
//! all, each lane sending one delivery of its webhook after another without a round trip.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, Semaphore, mpsc};

use super::claim::Claimed;
use super::record::Unwritten;
use super::{Dispatcher, Job, PER_WEBHOOK, Target};

/// What the loop holds: per webhook, the attempts in flight and the claimed deliveries
/// queued behind them. Shared through `Rc<RefCell<_>>` on the Arbiter's single thread.
#[derive(Default)]
pub(super) struct Held {
    in_flight: HashMap<i64, usize>,
    queued: HashMap<i64, VecDeque<(Job, Arc<Target>)>>,
    /// Attempts in flight, all webhooks.
    pub running: usize,
    /// Attempts ended since the last claim.
    pub ended: usize,
}

impl Held {
    /// Deliveries held per webhook, in flight or queued: what the claim counts as taken.
    pub(super) fn counts(&self) -> HashMap<i64, usize> {
        let mut counts = self.in_flight.clone();
        for (id, queue) in &self.queued {
            *counts.entry(*id).or_default() += queue.len();
        }
        counts
    }

    /// Deliveries held, in flight or queued.
    pub(super) fn total(&self) -> usize {
        self.running + self.queued.values().map(VecDeque::len).sum::<usize>()
    }

    /// The queued deliveries, whose leases the loop renews.
    pub(super) fn job_ids(&self) -> Vec<i64> {
        self.queued.values().flatten().map(|(job, _)| job.id).collect()
    }

    /// The next queued delivery of `webhook_id`, if any.
    fn next_of(&mut self, webhook_id: i64) -> Option<(Job, Arc<Target>)> {
        let queue = self.queued.get_mut(&webhook_id)?;
        let next = queue.pop_front();
        if queue.is_empty() {
            self.queued.remove(&webhook_id);
        }
        next
    }

    /// Takes what a claim brought. Returns the queued deliveries to park (their webhook
    /// is no longer active, or gone) and those to give back (their webhook was edited: they
    /// would go out with the old address, headers or secret).
    pub(super) fn take(&mut self, claimed: Claimed) -> (Vec<i64>, Vec<i64>) {
        let mut dropped = Vec::new();
        for id in &claimed.stopped {
            if let Some(queue) = self.queued.remove(id) {
                dropped.extend(queue.into_iter().map(|(job, _)| job.id));
            }
        }
        let edited: Vec<i64> = self
            .queued
            .iter()
            .filter(|(id, queue)| {
                let version = claimed.versions.get(id);
                queue.iter().any(|(_, target)| Some(&target.version) != version)
            })
            .map(|(id, _)| *id)
            .collect();
        let mut given_back = Vec::new();
        for id in edited {
            if let Some(queue) = self.queued.remove(&id) {
                given_back.extend(queue.into_iter().map(|(job, _)| job.id));
            }
        }
        for (job, target) in claimed.jobs {
            self.queued
                .entry(job.webhook_id)
                .or_default()
                .push_back((job, target));
        }
        (dropped, given_back)
    }

    /// Queued deliveries that may start now, within both limits.
    pub(super) fn startable(&mut self, concurrency: usize) -> Vec<(Job, Arc<Target>)> {
        let mut start = Vec::new();
        let ids: Vec<i64> = self.queued.keys().copied().collect();
        for id in ids {
            while self.running < concurrency && self.in_flight.get(&id).copied().unwrap_or(0) < PER_WEBHOOK {
                let Some(next) = self.next_of(id) else { break };
                *self.in_flight.entry(id).or_default() += 1;
                self.running += 1;
                start.push(next);
            }
        }
        start
    }

    /// An attempt of `webhook_id` ended and no other follows in its lane.
    fn lane_ended(&mut self, webhook_id: i64) {
        if let Some(n) = self.in_flight.get_mut(&webhook_id) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(&webhook_id);
            }
        }
        self.running -= 1;
    }

    /// An attempt of `webhook_id` ended: the delivery its lane sends next, unless the
    /// worker is `stopping` or the webhook's queue is empty, in which case the lane ends.
    fn after_attempt(&mut self, webhook_id: i64, stopping: bool) -> Option<(Job, Arc<Target>)> {
        self.ended += 1;
        let next = if stopping { None } else { self.next_of(webhook_id) };
        if next.is_none() {
            self.lane_ended(webhook_id);
        }
        next
    }
}

/// Everything a lane needs: it sends one delivery after another of one webhook, taking the
/// next from the queue as soon as an attempt ends.
#[derive(Clone)]
pub(super) struct Lanes {
    pub dispatcher: Rc<Dispatcher>,
    pub held: Rc<RefCell<Held>>,
    /// Results for the writer, each with the permit it releases once written.
    pub results: mpsc::UnboundedSender<Unwritten>,
    /// Deliveries sent and not yet written, at most `HOOKBOARD_WORKER_CONCURRENCY` x
    /// [`super::UNRECORDED_PER_REQUEST`]: all a crash of this process can make anyone send
    /// twice.
    pub unwritten: Arc<Semaphore>,
    pub ended: Rc<Notify>,
    pub stop: Arc<AtomicBool>,
}

impl Lanes {
    pub(super) fn start(&self, first: (Job, Arc<Target>)) {
        let lanes = self.clone();
        actix_web::rt::spawn(async move {
            let mut next = Some(first);
            while let Some((job, target)) = next.take() {
                let webhook_id = job.webhook_id;
                // The semaphore is never closed: acquiring only waits for the writer.
                let permit = lanes.unwritten.clone().acquire_owned().await.ok();
                let finished = lanes.dispatcher.attempt(job, target).await;
                let _ = lanes.results.send((finished, permit));
                let stopping = lanes.stop.load(Ordering::SeqCst);
                next = lanes.held.borrow_mut().after_attempt(webhook_id, stopping);
                lanes.ended.notify_one();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn target(version: DateTime<Utc>) -> Arc<Target> {
        Arc::new(Target {
            version,
            url: super::super::http::parse("https://hooks.example.com/in"),
            headers: Vec::new(),
            secrets: Vec::new(),
            retry_on_error: true,
            use_customer_language: false,
        })
    }

    /// A claim of deliveries `ids` of `webhook_id` (its version `at(1)`), which also found
    /// the webhooks `active` still active at `at(1)`.
    fn claim(webhook_id: i64, ids: std::ops::RangeInclusive<i64>, active: &[i64]) -> Claimed {
        let jobs = ids
            .map(|id| {
                let job = Job {
                    id,
                    webhook_id,
                    tenant_id: 1,
                    event_id: format!("evt_{id}"),
                    event_type: "booking.created".into(),
                    attempt_count: 0,
                    body: "{}".into(),
                    language: None,
                    ordering_key: None,
                };
                (job, target(at(1)))
            })
            .collect::<Vec<_>>();
        let versions = active.iter().chain(jobs.first().map(|(job, _)| &job.webhook_id));
        Claimed {
            versions: versions.map(|id| (*id, at(1))).collect(),
            jobs,
            ..Claimed::default()
        }
    }

    /// Holds what `claims` brought, in order.
    fn held(claims: Vec<Claimed>) -> Held {
        let mut held = Held::default();
        for claimed in claims {
            assert_eq!(held.take(claimed), (vec![], vec![]));
        }
        held
    }

    fn ids(jobs: &[(Job, Arc<Target>)]) -> Vec<i64> {
        jobs.iter().map(|(job, _)| job.id).collect()
    }

    fn of(jobs: &[(Job, Arc<Target>)], webhook_id: i64) -> usize {
        jobs.iter()
            .filter(|(job, _)| job.webhook_id == webhook_id)
            .count()
    }

    fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
        ids.sort_unstable();
        ids
    }

    #[test]
    fn one_webhook_gets_at_most_per_webhook_lanes_in_claim_order() {
        let mut held = held(vec![claim(1, 1..=20, &[])]);
        let started = held.startable(64);
        assert_eq!(ids(&started), (1..=PER_WEBHOOK as i64).collect::<Vec<_>>());
        assert_eq!(held.running, PER_WEBHOOK);
        assert_eq!(
            held.counts(),
            HashMap::from([(1, 20)]),
            "in flight and queued count as held"
        );
        assert_eq!(held.total(), 20);
        assert_eq!(
            sorted(held.job_ids()),
            (9..=20).collect::<Vec<_>>(),
            "only the queue is renewed"
        );
        assert!(held.startable(64).is_empty(), "no ninth lane");
    }

    #[test]
    fn a_long_queue_leaves_the_other_webhooks_their_lanes() {
        let mut held = held(vec![claim(1, 1..=100, &[]), claim(2, 101..=103, &[1])]);
        let started = held.startable(64);
        assert_eq!((of(&started, 1), of(&started, 2)), (PER_WEBHOOK, 3));
    }

    #[test]
    fn the_worker_concurrency_caps_the_lanes_of_all_webhooks() {
        let mut held = held(vec![
            claim(1, 1..=5, &[]),
            claim(2, 6..=10, &[1]),
            claim(3, 11..=15, &[1, 2]),
        ]);
        let started = held.startable(10);
        assert_eq!(started.len(), 10);
        assert!((1..=3).all(|webhook| of(&started, webhook) <= 5));
        assert!(held.startable(10).is_empty());
        assert_eq!(held.total(), 15);
    }

    #[test]
    fn a_lane_sends_its_webhooks_queue_in_order_then_ends() {
        let mut held = held(vec![claim(1, 1..=10, &[])]);
        held.startable(64);
        assert_eq!(held.after_attempt(1, false).map(|(job, _)| job.id), Some(9));
        assert_eq!(held.after_attempt(1, false).map(|(job, _)| job.id), Some(10));
        assert_eq!(held.running, PER_WEBHOOK, "the lanes went on");
        assert!(held.after_attempt(1, false).is_none());
        assert_eq!((held.running, held.ended), (PER_WEBHOOK - 1, 3));
        assert_eq!(held.counts(), HashMap::from([(1, PER_WEBHOOK - 1)]));
        for _ in 1..PER_WEBHOOK {
            assert!(held.after_attempt(1, false).is_none());
        }
        assert_eq!((held.running, held.total()), (0, 0));
        assert!(
            held.counts().is_empty(),
            "a webhook without lanes or queue is not held"
        );
    }

    #[test]
    fn a_later_claim_queues_behind_what_is_held_and_fills_freed_lanes() {
        let mut held = held(vec![claim(1, 1..=9, &[])]);
        held.startable(64);
        assert_eq!(held.take(claim(1, 10..=11, &[])), (vec![], vec![]));
        assert_eq!(held.after_attempt(1, false).map(|(job, _)| job.id), Some(9));
        assert_eq!(held.after_attempt(1, false).map(|(job, _)| job.id), Some(10));
        assert!(held.startable(64).is_empty(), "all lanes still busy");
        held.lane_ended(1);
        assert_eq!(ids(&held.startable(64)), vec![11]);
    }

    #[test]
    fn a_stopping_worker_ends_each_lane_after_its_attempt_and_keeps_the_queue() {
        let mut held = held(vec![claim(1, 1..=10, &[])]);
        held.startable(64);
        assert!(held.after_attempt(1, true).is_none());
        assert_eq!(held.running, PER_WEBHOOK - 1);
        assert_eq!(sorted(held.job_ids()), vec![9, 10], "given back at shutdown");
    }

    #[test]
    fn the_queue_of_a_webhook_switched_off_is_parked_and_its_lanes_run_dry() {
        let mut held = held(vec![claim(1, 1..=12, &[]), claim(2, 13..=14, &[1])]);
        held.startable(64);
        let claimed = Claimed {
            stopped: vec![1],
            versions: HashMap::from([(2, at(1))]),
            ..Claimed::default()
        };
        let (parked, given_back) = held.take(claimed);
        assert_eq!((sorted(parked), given_back), ((9..=12).collect(), vec![]));
        assert!(
            held.after_attempt(1, false).is_none(),
            "nothing more for its lanes"
        );
        assert_eq!(held.counts(), HashMap::from([(1, PER_WEBHOOK - 1), (2, 2)]));
        assert_eq!(held.job_ids(), Vec::<i64>::new(), "webhook 2 is all in flight");
    }

    #[test]
    fn the_queue_of_a_webhook_edited_since_its_claim_is_given_back() {
        let mut held = held(vec![claim(1, 1..=10, &[]), claim(2, 11..=20, &[1])]);
        // Webhook 1 was edited: the claim reads it at a new version and brings two more
        // deliveries with the new settings.
        let mut edited = claim(1, 21..=22, &[2]);
        for (_, queued) in &mut edited.jobs {
            *queued = target(at(2));
        }
        edited.versions.insert(1, at(2));
        let (parked, given_back) = held.take(edited);
        assert_eq!((parked, sorted(given_back)), (vec![], (1..=10).collect()));
        let kept: Vec<i64> = (11..=22).collect();
        assert_eq!(
            sorted(held.job_ids()),
            kept,
            "the new claim queues with the new settings"
        );
        // A queue whose webhook the claim did not read at all is given back too.
        let (_, given_back) = held.take(Claimed::default());
        assert_eq!(sorted(given_back), kept);
        assert_eq!(held.total(), 0);
    }
}
