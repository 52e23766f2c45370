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
                let mut held = lanes.held.borrow_mut();
                held.ended += 1;
                if !lanes.stop.load(Ordering::SeqCst) {
                    next = held.next_of(webhook_id);
                }
                if next.is_none() {
                    held.lane_ended(webhook_id);
                }
                drop(held);
                lanes.ended.notify_one();
            }
        });
    }
}
