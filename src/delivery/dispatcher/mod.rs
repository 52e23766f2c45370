//! The dispatcher: claims due deliveries in batches (`FOR UPDATE SKIP LOCKED` plus a lease,
//! so any number of Hookboard processes can share one PostgreSQL and a dead process's claims
//! are taken over when its lease runs out), sends them with bounded concurrency (at most 8
//! per webhook, so one slow endpoint cannot starve the others), and writes the results back
//! in batches. At most `HOOKBOARD_WORKER_CONCURRENCY` requests are in flight; a delivery
//! counts as unrecorded from the moment it is sent until its result is committed, and at
//! most [`UNRECORDED_PER_REQUEST`] times as many are, so a crash makes at most that many
//! deliveries go out twice. It runs on an actix Arbiter of its own, woken by LISTEN/NOTIFY
//! with polling as the fallback; [`Dispatcher::run_due_once`] drives the same steps for tests.
//!
//! One file a step: `claim.rs` takes due deliveries, `queue.rs` holds them per webhook and
//! keeps the lanes busy, `attempt.rs` sends one, `record.rs` writes results back after
//! `policy.rs` decided what comes next, `lease.rs` renews and gives back what is held,
//! `listen.rs` turns NOTIFYs into wake-ups and `run.rs` is the loop that ties them together.
//! `conn.rs` holds the connections and transactions the statements run in.
//! This file holds the dispatcher itself, its settings and what it hands around.

mod attempt;
mod claim;
mod conn;
mod lease;
mod listen;
mod policy;
mod queue;
mod record;
mod run;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

use super::http::{self, Outcome};
use crate::clock::Clock;
use crate::crypto::SecretBox;
use crate::db::DbPool;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::validation::ssrf::Cidr;
use conn::{Kept, WaitingStatistics};

pub use conn::BY_KEY_SETTINGS;
pub use run::{Handle, start};

/// Requests sent to one webhook at the same time, at most.
pub const PER_WEBHOOK: usize = 8;
/// Deliveries of one webhook a worker holds at most: the ones in flight plus a queue that
/// the next attempts are taken from without a round trip to the database.
pub const HOLD_PER_WEBHOOK: usize = 256;
/// How often the dispatcher looks for due work when nothing wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries sent and not yet recorded, at most, per request the worker may have in
/// flight (`HOOKBOARD_WORKER_CONCURRENCY`): room for the lanes to go on sending while the
/// writer commits the previous results. All a crash can make anyone send twice. (With
/// room for only one batch, lanes waited for every commit: 8,800 deliveries/s in
/// `make bench`, 10,200/s with four.)
pub const UNRECORDED_PER_REQUEST: usize = 4;

/// A claimed delivery, ready to send.
#[derive(Debug, Clone, QueryableByName)]
pub struct Job {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub webhook_id: i64,
    #[diesel(sql_type = BigInt)]
    pub tenant_id: i64,
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Integer)]
    pub attempt_count: i32,
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub language: Option<String>,
    /// Set when the webhook is ordered and the event has a key: see `claim::keep_order`.
    #[diesel(sql_type = Nullable<Text>)]
    pub ordering_key: Option<String>,
}

/// What an attempt needs to know of its webhook.
#[derive(Debug, Clone)]
struct Target {
    /// The webhook's `updated_at` when this was read: queued deliveries of a webhook edited
    /// since are given back and claimed again with the new settings.
    version: DateTime<Utc>,
    /// Parsed once for all the claim's attempts, or why it does not parse.
    url: Result<reqwest::Url, String>,
    headers: Vec<(String, String)>,
    secrets: Vec<String>,
    retry_on_error: bool,
    use_customer_language: bool,
}

/// One finished attempt.
#[derive(Debug, Clone)]
pub struct Finished {
    pub job: Job,
    pub started_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub request_headers: serde_json::Value,
    /// Whether the webhook retries failed deliveries.
    pub retry_on_error: bool,
}

/// Counts of one step, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub attempted: usize,
    pub succeeded: usize,
    pub failed: usize,
}

pub struct Dispatcher {
    pool: DbPool,
    client: reqwest::Client,
    secrets: SecretBox,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    worker_id: String,
    schedule: Vec<Duration>,
    lease: Duration,
    concurrency: usize,
    allowed: Arc<Vec<Cidr>>,
    retention: chrono::Duration,
    kept: Kept,
    statistics: WaitingStatistics,
    /// The alert worker, which runs beside the loop.
    alerts: super::alerts::Alerts,
}

impl Dispatcher {
    pub fn new(
        pool: DbPool,
        settings: &Settings,
        secrets: SecretBox,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        Ok(Dispatcher {
            client: http::client(settings.delivery_timeout, settings.allow_private_targets.clone())?,
            secrets,
            clock,
            metrics,
            worker_id: format!("{}-{}", std::process::id(), crate::models::random_hex(4)),
            schedule: settings.retry_schedule.clone(),
            // At least twice the attempt timeout, so a live worker never loses its claim.
            lease: settings.delivery_timeout * 2 + Duration::from_secs(5),
            concurrency: settings.worker_concurrency.max(1),
            allowed: Arc::new(settings.allow_private_targets.clone()),
            retention: chrono::Duration::days(i64::from(settings.retention_days)),
            kept: Kept::default(),
            statistics: WaitingStatistics::default(),
            alerts: super::alerts::Alerts::new(pool.clone(), settings)?,
            pool,
        })
    }

    /// Housekeeping on the worker's schedule: the attempts' days ahead added, the hours
    /// that are over summed per tenant, delivery history and settled alerts past the
    /// retention, and sessions past their expiry. Returns the attempts deleted.
    pub fn clean_up(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut conn = self.pool.get()?;
        add_history_days(&mut conn, now)?;
        let sessions = crate::models::session::Sessions::purge_expired(&mut conn, now)?;
        if sessions > 0 {
            tracing::info!(sessions, "expired sessions purged");
        }
        crate::models::hourly::roll_up(&mut conn, now)?;
        let before = now - self.retention;
        let cleaned = crate::models::delivery::clean_up(&mut conn, before)?;
        if let Some(failure) = &cleaned.last_failure {
            tracing::warn!(days = cleaned.days_left, "{failure}");
        }
        let alerts = crate::models::alert::clean_up(&mut conn, before)?;
        if alerts > 0 {
            tracing::info!(alerts, "alerts past the retention deleted");
        }
        Ok(cleaned.attempts)
    }

    /// One pass of the alert worker at `now` (tests drive it with a moved clock).
    pub async fn run_alerts_once(&self, now: DateTime<Utc>) -> anyhow::Result<super::alerts::Done> {
        self.alerts.run_once(now).await
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// A second dispatcher sharing this one's pool, client, identity and kept connections:
    /// what a blocking task takes along.
    fn clone_handle(&self) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            pool: self.pool.clone(),
            client: self.client.clone(),
            secrets: self.secrets.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            worker_id: self.worker_id.clone(),
            schedule: self.schedule.clone(),
            lease: self.lease,
            concurrency: self.concurrency,
            allowed: self.allowed.clone(),
            retention: self.retention,
            kept: self.kept.clone(),
            statistics: self.statistics.clone(),
            alerts: self.alerts.clone(),
        })
    }
}

/// Adds the history's days (the attempts' and the finished deliveries') from `now`'s on
/// (`models::delivery::add_days_ahead`), saying which could not be added; at start-up and
/// on the housekeeping's schedule.
pub fn add_history_days(conn: &mut diesel::PgConnection, now: DateTime<Utc>) -> anyhow::Result<()> {
    let days = crate::models::delivery::add_days_ahead(conn, now.date_naive())?;
    if days.added > 0 {
        tracing::info!(days = days.added, "added the history's days ahead");
    }
    for (day, err) in &days.failed {
        tracing::warn!(%day, error = %err, "the history's day could not be added: its rows go to the default partition");
    }
    Ok(())
}
