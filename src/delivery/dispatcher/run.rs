//! The running dispatcher: [`start`] puts the loop on an Arbiter of its own with the
//! listener thread beside it, and [`Handle`] stops them. The loop claims while there is
//! room, keeps the lanes busy, hands results to the writer, renews leases and cleans up;
//! [`Dispatcher::run_due_once`] takes the same steps once, for tests.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, mpsc};

use super::claim::Want;
use super::queue::{Held, Lanes};
use super::record::{self, Unwritten};
use super::{Dispatcher, HOLD_PER_WEBHOOK, PER_WEBHOOK, POLL_INTERVAL, Summary, UNRECORDED_PER_REQUEST};

/// The loop claims again after this many attempts ended (or when woken, or polling): half
/// a webhook's queue, so a busy webhook's lanes never run dry and a claim brings a batch
/// worth its cost. (Claims of 8, at about 2 ms each, were the largest cost of a delivery
/// in `make bench`.)
const CLAIM_AFTER: usize = HOLD_PER_WEBHOOK / 2;
/// How often the background clean-up of old attempts runs.
const CLEAN_UP_EVERY: Duration = Duration::from_secs(600);

impl Dispatcher {
    /// One step without waiting: sends every delivery due at `now` (each at most once)
    /// and records the results. Tests call it with a moved clock instead of sleeping.
    pub async fn run_due_once(&self, now: DateTime<Utc>) -> anyhow::Result<Summary> {
        let mut summary = Summary::default();
        let mut after = 0;
        loop {
            let want = Want {
                now,
                limit: self.concurrency,
                per_webhook: PER_WEBHOOK,
                held: HashMap::new(),
                after,
            };
            let claimed = self.claim_blocking(want).await?;
            after = claimed.next_after;
            let jobs = claimed.jobs;
            if jobs.is_empty() {
                return Ok(summary);
            }
            let finished = futures_util::future::join_all(
                jobs.into_iter().map(|(job, target)| self.attempt(job, target)),
            )
            .await;
            summary.attempted += finished.len();
            summary.succeeded += finished.iter().filter(|f| f.outcome.succeeded).count();
            summary.failed += finished.iter().filter(|f| !f.outcome.succeeded).count();
            self.record_blocking(Arc::new(finished), now).await?;
        }
    }
}

/// The running background dispatcher.
pub struct Handle {
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    done: std::sync::mpsc::Receiver<()>,
    arbiter: actix_rt::Arbiter,
    listener: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// Stops taking claims, lets attempts in flight finish (they are bounded by the
    /// delivery timeout), writes their results, and gives back anything still held.
    pub fn shutdown(mut self, grace: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        if self.done.recv_timeout(grace).is_err() {
            tracing::warn!("the dispatcher did not finish in time; its claims expire with their lease");
        }
        self.arbiter.stop();
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

/// Starts the dispatcher on an Arbiter of its own, and a thread that LISTENs for new work.
pub fn start(dispatcher: Dispatcher, database_url: &str) -> Handle {
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let (done_tx, done) = std::sync::mpsc::channel();
    let listener = {
        let (stop, wake, url) = (stop.clone(), wake.clone(), database_url.to_owned());
        std::thread::Builder::new()
            .name("hookboard-listen".into())
            .spawn(move || super::listen::listen(&url, &stop, &wake))
            .ok()
    };
    let arbiter = actix_rt::Arbiter::new();
    let (stop_loop, wake_loop) = (stop.clone(), wake.clone());
    // The alert worker beside the loop, on the same Arbiter.
    let (alerts, clock, stop_alerts) = (dispatcher.alerts.clone(), dispatcher.clock.clone(), stop.clone());
    arbiter.spawn(super::super::alerts::run(alerts, clock, stop_alerts));
    // The loop shares state through Rc/RefCell on the Arbiter's single thread.
    arbiter.spawn_fn(move || {
        actix_web::rt::spawn(async move {
            run(Rc::new(dispatcher), stop_loop, wake_loop).await;
            let _ = done_tx.send(());
        });
    });
    Handle {
        stop,
        wake,
        done,
        arbiter,
        listener,
    }
}

/// The loop: claim while there is room, keep up to [`PER_WEBHOOK`] lanes per webhook busy,
/// hand results to the writer, renew the leases of what is held.
async fn run(dispatcher: Rc<Dispatcher>, stop: Arc<AtomicBool>, wake: Arc<Notify>) {
    let held: Rc<RefCell<Held>> = Rc::default();
    let ended = Rc::new(Notify::new());
    let (results, incoming) = mpsc::unbounded_channel::<Unwritten>();
    let unrecorded = dispatcher.concurrency * UNRECORDED_PER_REQUEST;
    let unwritten = Arc::new(Semaphore::new(unrecorded));
    let writer = {
        let (dispatcher, unwritten, wake) = (dispatcher.clone(), unwritten.clone(), wake.clone());
        actix_web::rt::spawn(async move {
            record::write(&dispatcher, incoming, &unwritten, unrecorded, &wake).await;
        })
    };
    let lanes = Lanes {
        dispatcher: dispatcher.clone(),
        held: held.clone(),
        results,
        unwritten,
        ended: ended.clone(),
        stop: stop.clone(),
    };
    // Room to hold: the lanes' own deliveries and queues of about seven times as many.
    let budget = dispatcher.concurrency * 8;
    let renew_every = dispatcher.lease / 3;
    let mut last_renewal = Instant::now();
    let mut last_clean_up = Instant::now() - CLEAN_UP_EVERY + Duration::from_secs(30);
    let mut claim_now = true;
    let mut after = 0;
    while !stop.load(Ordering::SeqCst) {
        if last_clean_up.elapsed() >= CLEAN_UP_EVERY {
            last_clean_up = Instant::now();
            clean_up(&dispatcher).await;
        }
        if last_renewal.elapsed() >= renew_every {
            last_renewal = Instant::now();
            let ids = held.borrow().job_ids();
            renew(&dispatcher, ids).await;
        }
        let mut filled = false;
        let (free, counts) = {
            let held = held.borrow();
            (budget.saturating_sub(held.total()), held.counts())
        };
        if claim_now && free > 0 {
            held.borrow_mut().ended = 0;
            let want = Want {
                now: dispatcher.clock.now(),
                limit: free,
                per_webhook: HOLD_PER_WEBHOOK,
                held: counts,
                after,
            };
            match dispatcher.claim_blocking(want).await {
                Ok(claimed) => {
                    after = claimed.next_after;
                    filled = claimed.jobs.len() == free;
                    let (dropped, edited) = held.borrow_mut().take(claimed);
                    if !dropped.is_empty() || !edited.is_empty() {
                        give_back(&dispatcher, dropped, edited).await;
                        // What was given back is due again: claim it with the new settings.
                        filled = true;
                    }
                }
                Err(err) if super::conn::is_moved_row(&err) => {
                    tracing::debug!(error = %err, "a delivery finished elsewhere while it was claimed; claiming again");
                    continue;
                }
                Err(err) => {
                    tracing::error!(error = %err, "claiming deliveries failed; retrying");
                    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let start = held.borrow_mut().startable(dispatcher.concurrency);
        for job in start {
            lanes.start(job);
        }
        if filled {
            continue;
        }
        claim_now = tokio::select! {
            _ = wake.notified() => true,
            _ = ended.notified() => {
                let held = held.borrow();
                held.ended >= CLAIM_AFTER || held.total() == 0
            }
            _ = actix_web::rt::time::sleep(POLL_INTERVAL) => true,
        };
    }
    // Shutting down: the lanes finish their attempt in flight (bounded by the timeout) and
    // take nothing more; the writer writes; what stays queued is given back.
    while held.borrow().running > 0 {
        ended.notified().await;
    }
    drop(lanes);
    let _ = writer.await;
    match dispatcher.clone_handle().release_claims() {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "gave back unfinished claims"),
        Err(err) => tracing::warn!(error = %err, "could not give back claims; they expire with their lease"),
    }
}

/// Deletes what is older than the retention, on a blocking thread.
async fn clean_up(dispatcher: &Dispatcher) {
    let (this, now) = (dispatcher.clone_handle(), dispatcher.clock.now());
    match tokio::task::spawn_blocking(move || this.clean_up(now)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(deleted)) => {
            tracing::info!(deleted, "removed delivery attempts older than the retention")
        }
        Ok(Err(err)) => tracing::warn!(error = %err, "the retention clean-up failed"),
        Err(_) => {}
    }
}

/// Renews the leases of the queued deliveries `ids`, on a blocking thread.
async fn renew(dispatcher: &Dispatcher, ids: Vec<i64>) {
    if ids.is_empty() {
        return;
    }
    let (this, now) = (dispatcher.clone_handle(), dispatcher.clock.now());
    if let Ok(Err(err)) = tokio::task::spawn_blocking(move || this.renew(&ids, now)).await {
        tracing::warn!(error = %err, "renewing the lease of queued deliveries failed");
    }
}

/// Parks the queue of webhooks switched off and gives back that of webhooks edited, on a
/// blocking thread.
async fn give_back(dispatcher: &Dispatcher, dropped: Vec<i64>, edited: Vec<i64>) {
    let this = dispatcher.clone_handle();
    let given_back = tokio::task::spawn_blocking(move || this.give_back(&dropped, &edited)).await;
    if let Ok(Err(err)) = given_back {
        tracing::warn!(error = %err, "giving back the queue of a stopped or edited webhook failed; its lease runs out");
    }
}
