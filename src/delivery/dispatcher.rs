//! The dispatcher: claims due deliveries in batches (`FOR UPDATE SKIP LOCKED` plus a lease,
//! so any number of Hookboard processes can share one PostgreSQL and a dead process's claims
//! are taken over when its lease runs out), sends them with bounded concurrency (at most 8
//! per webhook, so one slow endpoint cannot starve the others), and writes the results back
//! in batches. At most `HOOKBOARD_WORKER_CONCURRENCY` requests are in flight; a delivery
//! counts as unrecorded from the moment it is sent until its result is committed, and at
//! most [`UNRECORDED_PER_REQUEST`] times as many are, so a crash makes at most that many
//! deliveries go out twice. It runs on an actix Arbiter of its own, woken by LISTEN/NOTIFY
//! with polling as the fallback; [`Dispatcher::run_due_once`] drives the same steps for tests.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::http::{self, Outcome};
use super::retry::{self, MAX_CONSECUTIVE_FAILURES, MAX_RETRIES};
use super::sign::signature_header;
use super::ssrf::Cidr;
use crate::clock::Clock;
use crate::crypto::SecretBox;
use crate::db::prepared::prepared;
use crate::db::{DbConn, DbPool};
use crate::metrics::Metrics;
use crate::models::audit::{Actor, AuditEntry};
use crate::models::delivery::NOTIFY_CHANNEL;
use crate::models::webhook::{Status, Webhook};
use crate::settings::Settings;

/// Requests sent to one webhook at the same time, at most.
pub const PER_WEBHOOK: usize = 8;
/// Deliveries of one webhook a worker holds at most: the ones in flight plus a queue that
/// the next attempts are taken from without a round trip to the database.
pub const HOLD_PER_WEBHOOK: usize = 256;
/// The loop claims again after this many attempts ended (or when woken, or polling): half
/// a webhook's queue, so a busy webhook's lanes never run dry and a claim brings a batch
/// worth its cost. (Claims of 8, at about 2 ms each, were the largest cost of a delivery
/// in `make bench`.)
const CLAIM_AFTER: usize = HOLD_PER_WEBHOOK / 2;
/// How often the dispatcher looks for due work when nothing wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries sent and not yet recorded, at most, per request the worker may have in
/// flight (`HOOKBOARD_WORKER_CONCURRENCY`): room for the lanes to go on sending while the
/// writer commits the previous results. All a crash can make anyone send twice. (With
/// room for only one batch, lanes waited for every commit: 8,800 deliveries/s in
/// `make bench`, 10,200/s with four.)
pub const UNRECORDED_PER_REQUEST: usize = 4;
/// Results written back in one transaction, at most.
const WRITE_BATCH: usize = 1000;
/// How long the writer waits for attempts still in flight to join a batch.
const GATHER: Duration = Duration::from_millis(1);
/// Only a batch smaller than this waits to [`GATHER`] more: a larger one is worth its
/// commit already. (Waiting for every batch held each result's permit a millisecond
/// longer, and the lanes waited for permits: 1.11x instead of 1.18x the commit rate in
/// `make bench`.)
const GATHER_BELOW: usize = 32;

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
}

/// What an attempt needs to know of its webhook.
#[derive(Debug, Clone)]
struct Target {
    /// The webhook's `updated_at` when this was read: queued deliveries of a webhook edited
    /// since are given back and claimed again with the new settings.
    version: DateTime<Utc>,
    url: String,
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

/// What one claim brought.
#[derive(Default)]
struct Claimed {
    jobs: Vec<(Job, Arc<Target>)>,
    /// Webhooks held before that are no longer active (or were deleted): drop what is
    /// queued for them.
    stopped: Vec<i64>,
    /// Claimed deliveries of webhooks no longer active, already parked.
    refused: Vec<i64>,
    /// The `updated_at` of each active webhook held or claimed.
    versions: HashMap<i64, DateTime<Utc>>,
    /// Where the next claim's round of webhooks starts: after the last webhook served
    /// when this claim had more webhooks with due deliveries than room, else from the
    /// beginning.
    next_after: i64,
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
}

/// The connections the claim and the writer keep between their transactions. One taken
/// from here skips the pool's check-out query (`SELECT 1`: a round trip before every claim
/// and every batch of results), and one is kept only after its work went through, so a
/// connection that broke goes back to the pool, which tests it before handing it out.
#[derive(Clone, Default)]
struct Kept(Arc<std::sync::Mutex<Vec<DbConn>>>);

impl Kept {
    /// One for the claim and one for the writer, which may work at the same time.
    const AT_MOST: usize = 2;

    fn with<R>(
        &self,
        pool: &DbPool,
        work: impl FnOnce(&mut PgConnection) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match kept {
            Some(conn) => conn,
            None => pool.get()?,
        };
        let done = work(&mut conn);
        if done.is_ok() {
            let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.len() < Self::AT_MOST {
                kept.push(conn);
            }
        }
        done
    }
}

/// How often the background clean-up of old attempts runs.
const CLEAN_UP_EVERY: Duration = Duration::from_secs(600);

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
            pool,
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
        })
    }

    /// Deletes attempts and finished deliveries older than `HOOKBOARD_RETENTION_DAYS`.
    pub fn clean_up(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut conn = self.pool.get()?;
        Ok(crate::models::delivery::clean_up(
            &mut conn,
            now - self.retention,
        )?)
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Claims due deliveries, at most `limit`, and at most `per_webhook` held per webhook
    /// (those already held are counted in `held`). Webhooks with due deliveries take turns:
    /// each gets its first delivery before any gets a second, and so on, and the round
    /// starts after webhook `after` (the previous claim's [`Claimed::next_after`]), so no
    /// backlog, however long, keeps another webhook waiting. Also re-reads the webhooks of
    /// `held`, so that the loop can drop what it queued for a webhook switched off since.
    fn claim(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_webhook: usize,
        held: &HashMap<i64, usize>,
        after: i64,
    ) -> anyhow::Result<Claimed> {
        self.kept.with(&self.pool, |conn| {
            self.claim_on(conn, now, limit, per_webhook, held, after)
        })
    }

    fn claim_on(
        &self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        limit: usize,
        per_webhook: usize,
        held: &HashMap<i64, usize>,
        after: i64,
    ) -> anyhow::Result<Claimed> {
        let (busy_ids, busy_counts): (Vec<i64>, Vec<i32>) =
            held.iter().map(|(id, n)| (*id, *n as i32)).unzip();
        let lease_until = now + chrono::Duration::from_std(self.lease)?;
        let claim = prepared("WITH RECURSIVE busy AS (
                     SELECT * FROM unnest($3::bigint[], $4::int[]) AS b(webhook_id, held)
                 ), due_webhooks(webhook_id) AS (
                     -- The webhooks with due deliveries, in id order from `after`: one
                     -- step down the (webhook, due time) index each, however long their
                     -- queues.
                     SELECT (SELECT d.webhook_id FROM deliveries d
                             WHERE d.status = 'pending' AND d.webhook_id > $5 AND d.next_attempt_at <= $1
                             ORDER BY d.webhook_id LIMIT 1)
                   UNION ALL
                     SELECT (SELECT d.webhook_id FROM deliveries d
                             WHERE d.status = 'pending' AND d.webhook_id > w.webhook_id AND d.next_attempt_at <= $1
                             ORDER BY d.webhook_id LIMIT 1)
                     FROM due_webhooks w WHERE w.webhook_id IS NOT NULL
                 ), wanted AS (
                     SELECT w.webhook_id, $6 - COALESCE(b.held, 0) AS room
                     FROM due_webhooks w LEFT JOIN busy b ON b.webhook_id = w.webhook_id
                     WHERE w.webhook_id IS NOT NULL AND $6 - COALESCE(b.held, 0) > 0
                     LIMIT $7
                 ), turns AS (
                     -- Each webhook's oldest due deliveries, taken in turns.
                     SELECT c.id FROM wanted w
                     CROSS JOIN LATERAL (
                         -- A ROWS frame: with the default frame PostgreSQL 15 read every
                         -- delivery due at the same moment (a whole published batch) first.
                         SELECT d.id, row_number() OVER (ORDER BY d.next_attempt_at ROWS UNBOUNDED PRECEDING) AS turn
                         FROM deliveries d
                         WHERE d.webhook_id = w.webhook_id AND d.status = 'pending' AND d.next_attempt_at <= $1
                           AND (d.claimed_until IS NULL OR d.claimed_until < $1)
                         ORDER BY d.next_attempt_at
                         LIMIT least(w.room, $7)
                     ) c
                     ORDER BY c.turn, w.webhook_id
                     LIMIT $7
                 ), picked AS (
                     -- By primary key (`= ANY(ARRAY(...))`), never a join the planner
                     -- could turn into a scan of the whole table when its estimates are off.
                     SELECT d.id FROM deliveries d
                     WHERE d.id = ANY(ARRAY(SELECT t.id FROM turns t))
                       AND d.status = 'pending'
                       AND (d.claimed_until IS NULL OR d.claimed_until < $1)
                     FOR UPDATE OF d SKIP LOCKED
                 )
                 UPDATE deliveries d SET claimed_by = $2, claimed_until = $8
                 FROM events e
                 WHERE d.id = ANY(ARRAY(SELECT p.id FROM picked p)) AND e.id = d.event_id
                 RETURNING d.id, d.webhook_id, d.tenant_id, d.event_id, e.event_type, d.attempt_count,
                           COALESCE(d.body, e.body) AS body, e.language")
            .bind::<Timestamptz, _>(now)
            .bind::<Text, _>(&self.worker_id)
            .bind::<Array<BigInt>, _>(&busy_ids)
            .bind::<Array<Integer>, _>(&busy_counts)
            .bind::<BigInt, _>(after)
            .bind::<BigInt, _>(per_webhook as i64)
            .bind::<BigInt, _>(limit as i64)
            .bind::<Timestamptz, _>(lease_until);
        let jobs: Vec<Job> = by_key(conn, Planning::EachCall, |conn| Ok(claim.load(conn)?))?;
        let claimed_for: std::collections::HashSet<i64> = jobs.iter().map(|j| j.webhook_id).collect();
        let next_after = if claimed_for.len() >= limit {
            claimed_for.iter().copied().max().unwrap_or(0)
        } else {
            0
        };
        let mut ids: Vec<i64> = claimed_for.iter().chain(&busy_ids).copied().collect();
        if ids.is_empty() {
            return Ok(Claimed::default());
        }
        ids.sort_unstable();
        ids.dedup();
        // A held webhook that is no longer active, or no longer exists, is stopped. Only
        // webhooks with new jobs need their secrets opened.
        let mut targets = HashMap::new();
        let mut versions = HashMap::new();
        for webhook in Webhook::by_ids(conn, &ids)? {
            if webhook.status != Status::Active {
                continue;
            }
            versions.insert(webhook.id, webhook.updated_at);
            if !claimed_for.contains(&webhook.id) {
                continue;
            }
            let target = Target {
                version: webhook.updated_at,
                headers: webhook.headers(&self.secrets)?,
                secrets: webhook.signing_secrets(&self.secrets, now)?,
                url: webhook.url.clone(),
                retry_on_error: webhook.retry_on_error,
                use_customer_language: webhook.use_customer_language,
            };
            targets.insert(webhook.id, Arc::new(target));
        }
        let mut claimed = Claimed {
            stopped: busy_ids
                .into_iter()
                .filter(|id| !versions.contains_key(id))
                .collect(),
            next_after,
            versions,
            ..Claimed::default()
        };
        for job in jobs {
            match targets.get(&job.webhook_id) {
                Some(target) => claimed.jobs.push((job, target.clone())),
                None => claimed.refused.push(job.id),
            }
        }
        if !claimed.refused.is_empty() {
            self.park(conn, &claimed.refused)?;
        }
        Ok(claimed)
    }

    /// Parks deliveries this worker holds but will not send (their webhook was switched
    /// off or disabled after they were claimed): kept, waiting for the webhook to return.
    fn park(&self, conn: &mut PgConnection, ids: &[i64]) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        by_key(conn, Planning::Cached, |conn| {
            share_webhooks_of(conn, ids)?;
            Ok(prepared(
                "UPDATE deliveries SET status = 'parked', claimed_by = NULL, claimed_until = NULL
                 WHERE id = ANY($1) AND claimed_by = $2 AND status IN ('pending', 'parked')",
            )
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Text, _>(&self.worker_id)
            .execute(conn)?)
        })
    }

    /// Gives back deliveries this worker holds but will not send as they are (their webhook
    /// was edited after they were claimed, or the worker stops): due again at once, for
    /// the next claim here or elsewhere.
    fn release(&self, ids: &[i64]) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool.get()?;
        by_key(&mut conn, Planning::Cached, |conn| {
            share_webhooks_of(conn, ids)?;
            Ok(prepared(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL
                 WHERE id = ANY($1) AND claimed_by = $2 AND status = 'pending'",
            )
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Text, _>(&self.worker_id)
            .execute(conn)?)
        })
    }

    /// Extends the lease of what this worker holds, so queued deliveries are never taken
    /// over while they wait.
    fn renew(&self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut conn = self.pool.get()?;
        let until = now + chrono::Duration::from_std(self.lease)?;
        by_key(&mut conn, Planning::Cached, |conn| {
            share_webhooks_of(conn, ids)?;
            Ok(prepared(
                "UPDATE deliveries SET claimed_until = $3
                 WHERE id = ANY($1) AND claimed_by = $2 AND status = 'pending'",
            )
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Text, _>(&self.worker_id)
            .bind::<Timestamptz, _>(until)
            .execute(conn)?)
        })
    }

    /// Sends one claimed delivery.
    async fn attempt(&self, job: Job, target: Arc<Target>) -> Finished {
        let started_at = self.clock.now();
        let timestamp = started_at.timestamp();
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), job.event_id.clone()),
            ("webhook-timestamp".into(), timestamp.to_string()),
            ("x-hookboard-event".into(), job.event_type.clone()),
        ];
        match signature_header(&target.secrets, &job.event_id, timestamp, job.body.as_bytes()) {
            Ok(signature) => headers.push(("webhook-signature".into(), signature)),
            Err(err) => {
                let outcome = Outcome {
                    status: None,
                    succeeded: false,
                    duration: Duration::ZERO,
                    error_class: Some("signing"),
                    error_message: Some(format!("The signing secret could not be used: {err}")),
                    response_body: Vec::new(),
                    response_headers: serde_json::json!({}),
                    retry_after: None,
                };
                let retry_on_error = target.retry_on_error;
                return Finished {
                    job,
                    started_at,
                    outcome,
                    request_headers: serde_json::json!({}),
                    retry_on_error,
                };
            }
        }
        if target.use_customer_language
            && let Some(language) = job.language.clone().or_else(|| body_language(&job.body))
        {
            headers.push(("content-language".into(), language));
        }
        let shown: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .chain(
                target
                    .headers
                    .iter()
                    .map(|(k, _)| (k.clone(), serde_json::Value::String("(custom header)".into()))),
            )
            .collect();
        headers.extend(target.headers.iter().cloned());
        let body = bytes::Bytes::from(job.body.clone());
        let outcome = http::send(&self.client, &target.url, headers, body, &self.allowed).await;
        self.metrics.record_attempt(outcome.succeeded, outcome.duration);
        Finished {
            job,
            started_at,
            outcome,
            request_headers: serde_json::Value::Object(shown),
            retry_on_error: target.retry_on_error,
        }
    }

    /// One step without waiting: sends every delivery due at `now` (each at most once)
    /// and records the results. Tests call it with a moved clock instead of sleeping.
    pub async fn run_due_once(&self, now: DateTime<Utc>) -> anyhow::Result<Summary> {
        let mut summary = Summary::default();
        let mut after = 0;
        loop {
            let claimed = self
                .claim_blocking(now, self.concurrency, PER_WEBHOOK, HashMap::new(), after)
                .await?;
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

    async fn claim_blocking(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_webhook: usize,
        held: HashMap<i64, usize>,
        after: i64,
    ) -> anyhow::Result<Claimed> {
        let this = self.clone_handle();
        tokio::task::spawn_blocking(move || this.claim(now, limit, per_webhook, &held, after)).await?
    }

    async fn record_blocking(&self, finished: Arc<Vec<Finished>>, now: DateTime<Utc>) -> anyhow::Result<()> {
        let this = self.clone_handle();
        tokio::task::spawn_blocking(move || this.record(&finished, now)).await?
    }

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
        })
    }

    /// Writes a batch of results in one transaction: the attempts, each delivery's new
    /// state (done, failed, or the next retry), the webhooks' counters, and automatic
    /// disabling (410 Gone, 10 failed retries, or 11 failed deliveries without retry).
    pub fn record(&self, finished: &[Finished], now: DateTime<Utc>) -> anyhow::Result<()> {
        if finished.is_empty() {
            return Ok(());
        }
        let plan = Plan::of(finished, &self.schedule, now);
        self.kept
            .with(&self.pool, |conn| self.record_on(conn, finished, &plan, now))?;
        for delivery in &plan.deliveries {
            self.metrics.record_delivery(delivery.status);
        }
        Ok(())
    }

    fn record_on(
        &self,
        conn: &mut PgConnection,
        finished: &[Finished],
        plan: &Plan,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        by_key(conn, Planning::Cached, |conn| {
            // Webhook rows first, in id order, as every writer of deliveries takes them, so
            // no two writers wait for each other's delivery rows: `FOR KEY SHARE` for every
            // webhook of the batch (a user switching off, editing or deleting a webhook
            // takes `FOR UPDATE`, then its deliveries), and `FOR NO KEY UPDATE` for those
            // whose counters change (failures, or a success after failures). Publishing
            // counts a webhook's events in the same row with an UPDATE, which the share lock
            // does not hold up (a batch of successes used to lock the row for update:
            // publishing 20,000 events took 0.92 s instead of 0.70 s in `make bench`).
            let mut webhook_ids: Vec<i64> = plan.webhooks.iter().map(|w| w.id).collect();
            webhook_ids.sort_unstable();
            let failing: Vec<i64> = plan
                .webhooks
                .iter()
                .filter(|w| w.changes_counters())
                .map(|w| w.id)
                .collect();
            #[derive(QueryableByName)]
            struct Shared {
                #[diesel(sql_type = Integer)]
                consecutive_failures: i32,
            }
            #[derive(QueryableByName)]
            struct Locked {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            let shared: Vec<Shared> = prepared(
                "SELECT consecutive_failures FROM webhooks WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
            )
            .bind::<Array<BigInt>, _>(&webhook_ids)
            .load(conn)?;
            // A batch of successes to webhooks without failures changes no counter (the
            // usual case): no second lock, no round trip.
            let touched: Vec<i64> =
                if failing.is_empty() && shared.iter().all(|w| w.consecutive_failures == 0) {
                    Vec::new()
                } else {
                    prepared(
                    "SELECT id FROM webhooks WHERE id = ANY($1) AND (id = ANY($2) OR consecutive_failures > 0)
                     ORDER BY id FOR NO KEY UPDATE",
                )
                .bind::<Array<BigInt>, _>(&webhook_ids)
                .bind::<Array<BigInt>, _>(&failing)
                .load::<Locked>(conn)?
                .into_iter()
                .map(|l| l.id)
                .collect()
                };
            // The deliveries' new state and the attempts, in one statement. An attempt is
            // kept while its delivery exists (its webhook may have been deleted since the
            // claim); the delivery changes only while this worker holds its claim.
            prepared("WITH finished AS (
                     UPDATE deliveries d SET status = v.status, attempt_count = v.attempt_count, next_attempt_at = v.next_at,
                         last_status_code = v.code, last_error = v.error, claimed_by = NULL, claimed_until = NULL,
                         completed_at = CASE WHEN v.status IN ('succeeded', 'failed') THEN $7 ELSE NULL END, updated_at = $7
                     FROM unnest($1::bigint[], $2::text[], $3::int[], $4::timestamptz[], $5::int[], $6::text[])
                         AS v(id, status, attempt_count, next_at, code, error)
                     WHERE d.id = v.id AND d.claimed_by = $8
                 )
                 INSERT INTO delivery_attempts (delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms,
                     status_code, succeeded, error_class, error_message, request_headers, response_headers, response_body)
                 SELECT v.* FROM unnest($9::bigint[], $10::bigint[], $11::bigint[], $12::int[], $13::timestamptz[], $14::int[],
                     $15::int[], $16::bool[], $17::text[], $18::text[], $19::jsonb[], $20::jsonb[], $21::bytea[])
                     AS v(delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms, status_code,
                          succeeded, error_class, error_message, request_headers, response_headers, response_body)
                 WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.delivery_id)")
            .bind::<Array<BigInt>, _>(plan.deliveries.iter().map(|d| d.id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(plan.deliveries.iter().map(|d| d.status).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(plan.deliveries.iter().map(|d| d.attempt_count).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(plan.deliveries.iter().map(|d| d.next_at).collect::<Vec<_>>())
            .bind::<Array<Nullable<Integer>>, _>(plan.deliveries.iter().map(|d| d.code).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(plan.deliveries.iter().map(|d| d.error.clone()).collect::<Vec<_>>())
            .bind::<Timestamptz, _>(now)
            .bind::<Text, _>(&self.worker_id)
            .bind::<Array<BigInt>, _>(finished.iter().map(|f| f.job.id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(finished.iter().map(|f| f.job.tenant_id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(finished.iter().map(|f| f.job.webhook_id).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(finished.iter().map(|f| f.job.attempt_count + 1).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(finished.iter().map(|f| f.started_at).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(finished.iter().map(|f| f.outcome.duration.as_millis().min(i32::MAX as u128) as i32).collect::<Vec<_>>())
            .bind::<Array<Nullable<Integer>>, _>(finished.iter().map(|f| f.outcome.status.map(i32::from)).collect::<Vec<_>>())
            .bind::<Array<Bool>, _>(finished.iter().map(|f| f.outcome.succeeded).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(finished.iter().map(|f| f.outcome.error_class.map(str::to_owned)).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(finished.iter().map(|f| f.outcome.error_message.clone()).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(finished.iter().map(|f| f.request_headers.clone()).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(finished.iter().map(|f| f.outcome.response_headers.clone()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Bytea>>, _>(finished.iter().map(|f| Some(f.outcome.response_body.clone())).collect::<Vec<_>>())
            .execute(conn)?;

            #[derive(QueryableByName)]
            struct Counted {
                #[diesel(sql_type = BigInt)]
                id: i64,
                #[diesel(sql_type = BigInt)]
                tenant_id: i64,
                #[diesel(sql_type = Integer)]
                number: i32,
                #[diesel(sql_type = Integer)]
                consecutive_failures: i32,
                #[diesel(sql_type = Bool)]
                retry_on_error: bool,
                #[diesel(sql_type = Text)]
                status: String,
            }
            let counting: Vec<&WebhookPlan> =
                plan.webhooks.iter().filter(|w| touched.contains(&w.id)).collect();
            let counted: Vec<Counted> = if counting.is_empty() {
                Vec::new()
            } else {
                prepared("UPDATE webhooks w SET error_count = w.error_count + v.errors,
                     consecutive_failures = CASE WHEN v.reset THEN v.after ELSE w.consecutive_failures + v.after END
                 FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::int[]) AS v(id, errors, reset, after)
                 WHERE w.id = v.id
                 RETURNING w.id, w.tenant_id, w.number, w.consecutive_failures, w.retry_on_error, w.status")
            .bind::<Array<BigInt>, _>(counting.iter().map(|w| w.id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(counting.iter().map(|w| w.errors).collect::<Vec<_>>())
            .bind::<Array<Bool>, _>(counting.iter().map(|w| w.reset).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(counting.iter().map(|w| w.failed_after).collect::<Vec<_>>()).load(conn)?
            };

            for webhook in counted.iter().filter(|w| w.status == Status::Active.as_str()) {
                let planned = plan.webhooks.iter().find(|w| w.id == webhook.id);
                let reason = planned.and_then(|p| p.disable_reason.clone()).or_else(|| {
                    (!webhook.retry_on_error && webhook.consecutive_failures >= MAX_CONSECUTIVE_FAILURES).then(|| {
                        format!("{MAX_CONSECUTIVE_FAILURES} deliveries in a row failed (retry on error is off)")
                    })
                });
                if let Some(reason) = reason {
                    disable(conn, webhook.id, webhook.tenant_id, webhook.number, &reason, now)?;
                }
            }

            // Retries of webhooks that were switched off meanwhile wait, parked.
            let retrying: Vec<i64> = plan
                .deliveries
                .iter()
                .filter(|d| d.status == "pending")
                .map(|d| d.id)
                .collect();
            if !retrying.is_empty() {
                prepared(
                    "UPDATE deliveries SET status = 'parked' WHERE id = ANY($1) AND status = 'pending'
                       AND webhook_id IN (SELECT id FROM webhooks WHERE status <> 'active')",
                )
                .bind::<Array<BigInt>, _>(retrying)
                .execute(conn)?;
            }
            Ok(())
        })
    }

    /// Gives back what this worker still holds (at shutdown): due again at once, elsewhere.
    pub fn release_claims(&self) -> anyhow::Result<usize> {
        use crate::schema::deliveries;
        let held: Vec<i64> = deliveries::table
            .filter(deliveries::claimed_by.eq(&self.worker_id))
            .filter(deliveries::status.eq("pending"))
            .select(deliveries::id)
            .load(&mut self.pool.get()?)?;
        self.release(&held)
    }
}

/// Takes `FOR KEY SHARE` on the webhooks of these deliveries, in id order, before their
/// rows are written: the order every writer keeps (see [`Dispatcher::record`]).
fn share_webhooks_of(conn: &mut PgConnection, deliveries: &[i64]) -> anyhow::Result<()> {
    prepared(
        "SELECT w.id FROM webhooks w
         WHERE w.id IN (SELECT d.webhook_id FROM deliveries d WHERE d.id = ANY($1))
         ORDER BY w.id FOR KEY SHARE OF w",
    )
    .bind::<Array<BigInt>, _>(deliveries)
    .execute(conn)?;
    Ok(())
}

/// How PostgreSQL plans a prepared statement of the dispatcher.
#[derive(Clone, Copy)]
enum Planning {
    /// One plan for every call. (Left to choose, PostgreSQL kept planning the result
    /// statements on every call: with a few results their custom plans look cheaper.)
    Cached,
    /// A plan for each call, made with the table's size at that moment: for the claim,
    /// whose best plan depends on how long the queue is.
    EachCall,
}

/// Runs the dispatcher's statements in one transaction that finds rows by key only.
///
/// They are prepared once per connection, and PostgreSQL may settle on a generic plan made
/// while its statistics were far off: on a fresh install (an empty table), or after a burst
/// (autovacuum re-analyzes a large table only after a tenth of it changed). Every row these
/// statements touch is found through an index by id, webhook or due time, which is right
/// at every table size: whole-table and bitmap scans are off for them. (A bitmap over every
/// due delivery took a fifth of the database's CPU in `make bench` once; a claim planned
/// on an empty table read the whole due index for every claim later, 8.7 ms instead of
/// 1.4 ms over 20,000 due deliveries.)
fn by_key<R>(
    conn: &mut PgConnection,
    planning: Planning,
    work: impl FnOnce(&mut PgConnection) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    // The settings go with BEGIN, in one round trip.
    let begin = match planning {
        Planning::Cached => {
            "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
             SET LOCAL plan_cache_mode = force_generic_plan"
        }
        Planning::EachCall => {
            "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
             SET LOCAL plan_cache_mode = force_custom_plan"
        }
    };
    AnsiTransactionManager::begin_transaction_sql(conn, begin)?;
    match work(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => match AnsiTransactionManager::rollback_transaction(conn) {
            // A broken connection explains less than what broke it.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(err),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Switches a webhook off automatically, parks its waiting deliveries, and says so in the
/// audit log.
fn disable(
    conn: &mut PgConnection,
    webhook_id: i64,
    tenant_id: i64,
    number: i32,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    diesel::sql_query("UPDATE webhooks SET status = 'auto_disabled', disabled_reason = $2, disabled_at = $3, updated_at = $3 WHERE id = $1 AND status = 'active'")
        .bind::<BigInt, _>(webhook_id)
        .bind::<Text, _>(reason)
        .bind::<Timestamptz, _>(now)
        .execute(conn)?;
    diesel::sql_query("UPDATE deliveries SET status = 'parked', updated_at = $2 WHERE webhook_id = $1 AND status = 'pending' AND claimed_by IS NULL")
        .bind::<BigInt, _>(webhook_id)
        .bind::<Timestamptz, _>(now)
        .execute(conn)?;
    // Every worker drops what it queued for this webhook.
    crate::models::delivery::notify(conn)?;
    AuditEntry::record(
        conn,
        Some(tenant_id),
        &Actor::system(),
        "webhook.auto_disabled",
        ("webhook", Some(&number.to_string())),
        serde_json::json!({ "reason": reason }),
    )?;
    tracing::warn!(webhook_id, reason, "webhook disabled automatically");
    Ok(())
}

/// `customer.language` of an envelope, for the Content-Language header.
fn body_language(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["data"]["customer"]["language"]
        .as_str()
        .filter(|l| !l.is_empty() && l.len() <= 35)
        .map(str::to_owned)
}

/// The new state of one delivery.
struct DeliveryPlan {
    id: i64,
    status: &'static str,
    attempt_count: i32,
    next_at: DateTime<Utc>,
    code: Option<i32>,
    error: Option<String>,
}

/// What a batch does to one webhook's counters.
struct WebhookPlan {
    id: i64,
    errors: i64,
    /// A success happened: the consecutive count restarts from `failed_after`.
    reset: bool,
    /// Deliveries that failed for good after the last success.
    failed_after: i32,
    disable_reason: Option<String>,
}

impl WebhookPlan {
    /// Whether the batch adds to the webhook's error counts (a success alone only resets
    /// them, which matters only when they are not zero).
    fn changes_counters(&self) -> bool {
        self.errors > 0 || self.failed_after > 0 || self.disable_reason.is_some()
    }
}

struct Plan {
    deliveries: Vec<DeliveryPlan>,
    webhooks: Vec<WebhookPlan>,
}

impl Plan {
    fn of(finished: &[Finished], schedule: &[Duration], now: DateTime<Utc>) -> Plan {
        let mut deliveries = Vec::with_capacity(finished.len());
        let mut webhooks: Vec<WebhookPlan> = Vec::new();
        for f in finished {
            let attempt = f.job.attempt_count + 1;
            let outcome = &f.outcome;
            let index = match webhooks.iter().position(|w| w.id == f.job.webhook_id) {
                Some(i) => i,
                None => {
                    webhooks.push(WebhookPlan {
                        id: f.job.webhook_id,
                        errors: 0,
                        reset: false,
                        failed_after: 0,
                        disable_reason: None,
                    });
                    webhooks.len() - 1
                }
            };
            let webhook = &mut webhooks[index];
            let mut plan = DeliveryPlan {
                id: f.job.id,
                status: "succeeded",
                attempt_count: attempt,
                next_at: now,
                code: outcome.status.map(i32::from),
                error: outcome.error_message.clone(),
            };
            if outcome.succeeded {
                webhook.reset = true;
                webhook.failed_after = 0;
            } else {
                webhook.errors += 1;
                let retries_done = (attempt - 1) as usize;
                if outcome.status == Some(410) {
                    plan.status = "failed";
                    webhook.failed_after += 1;
                    webhook.disable_reason =
                        Some("The endpoint answered 410 Gone: it asked to receive no more events".into());
                } else if f.retry_on_error && retries_done < MAX_RETRIES {
                    let retry_after = matches!(outcome.status, Some(429) | Some(503))
                        .then(|| {
                            outcome
                                .retry_after
                                .as_deref()
                                .and_then(|v| retry::parse_retry_after(v, now))
                        })
                        .flatten();
                    let jitter = rand::random::<f64>() * 2.0 - 1.0;
                    let delay = retry::delay(schedule, retries_done + 1, jitter, retry_after);
                    plan.status = "pending";
                    plan.next_at =
                        now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
                } else {
                    plan.status = "failed";
                    webhook.failed_after += 1;
                    if f.retry_on_error && retries_done == MAX_RETRIES {
                        let last = outcome
                            .error_message
                            .clone()
                            .unwrap_or_else(|| "no answer".into());
                        webhook.disable_reason = Some(format!(
                            "All {MAX_RETRIES} retries of event {} failed; the last error was: {last}",
                            f.job.event_id
                        ));
                    }
                }
            }
            deliveries.push(plan);
        }
        Plan { deliveries, webhooks }
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
            .spawn(move || listen(&url, &stop, &wake))
            .ok()
    };
    let arbiter = actix_rt::Arbiter::new();
    let (stop_loop, wake_loop) = (stop.clone(), wake.clone());
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

/// Turns NOTIFYs into wake-ups. Reconnects by itself when PostgreSQL goes away.
fn listen(url: &str, stop: &AtomicBool, wake: &Notify) {
    use diesel::Connection;
    while !stop.load(Ordering::SeqCst) {
        let mut conn = match PgConnection::establish(url) {
            Ok(conn) => conn,
            Err(_) => {
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if diesel::sql_query(format!("LISTEN {NOTIFY_CHANNEL}"))
            .execute(&mut conn)
            .is_err()
        {
            continue;
        }
        let mut last_check = std::time::Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let mut woke = false;
            let mut broken = false;
            // On a broken connection the iterator yields errors without end: stop at the first.
            for notification in conn.notifications_iter() {
                match notification {
                    Ok(_) => woke = true,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            if woke {
                wake.notify_one();
            }
            // notifications_iter cannot tell a dead connection from a quiet one: ask now and then.
            if broken
                || (last_check.elapsed() > Duration::from_secs(5)
                    && diesel::sql_query("SELECT 1").execute(&mut conn).is_err())
            {
                break;
            }
            if last_check.elapsed() > Duration::from_secs(5) {
                last_check = std::time::Instant::now();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// What the loop holds: per webhook, the attempts in flight and the claimed deliveries
/// queued behind them. Shared through `Rc<RefCell<_>>` on the Arbiter's single thread.
#[derive(Default)]
struct Held {
    in_flight: HashMap<i64, usize>,
    queued: HashMap<i64, VecDeque<(Job, Arc<Target>)>>,
    /// Attempts in flight, all webhooks.
    running: usize,
    /// Attempts ended since the last claim.
    ended: usize,
}

impl Held {
    fn counts(&self) -> HashMap<i64, usize> {
        let mut counts = self.in_flight.clone();
        for (id, queue) in &self.queued {
            *counts.entry(*id).or_default() += queue.len();
        }
        counts
    }

    fn total(&self) -> usize {
        self.running + self.queued.values().map(VecDeque::len).sum::<usize>()
    }

    fn job_ids(&self) -> Vec<i64> {
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
    fn take(&mut self, claimed: Claimed) -> (Vec<i64>, Vec<i64>) {
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
    fn startable(&mut self, concurrency: usize) -> Vec<(Job, Arc<Target>)> {
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
struct Lanes {
    dispatcher: Rc<Dispatcher>,
    held: Rc<RefCell<Held>>,
    /// Results for the writer, each with the permit it releases once written.
    results: mpsc::UnboundedSender<(Finished, Option<OwnedSemaphorePermit>)>,
    /// Deliveries sent and not yet written, at most `HOOKBOARD_WORKER_CONCURRENCY` x
    /// [`UNRECORDED_PER_REQUEST`]: all a crash of this process can make anyone send twice.
    unwritten: Arc<Semaphore>,
    ended: Rc<Notify>,
    stop: Arc<AtomicBool>,
}

impl Lanes {
    fn start(&self, first: (Job, Arc<Target>)) {
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

/// The loop: claim while there is room, keep up to [`PER_WEBHOOK`] lanes per webhook busy,
/// hand results to the writer, renew the leases of what is held.
async fn run(dispatcher: Rc<Dispatcher>, stop: Arc<AtomicBool>, wake: Arc<Notify>) {
    let held: Rc<RefCell<Held>> = Rc::default();
    let ended = Rc::new(Notify::new());
    let (results, mut incoming) = mpsc::unbounded_channel::<(Finished, Option<OwnedSemaphorePermit>)>();
    let unrecorded = dispatcher.concurrency * UNRECORDED_PER_REQUEST;
    let unwritten = Arc::new(Semaphore::new(unrecorded));
    let writer = {
        let (dispatcher, unwritten) = (dispatcher.clone(), unwritten.clone());
        actix_web::rt::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut batch = vec![first];
                // Results of attempts still in flight join this batch if they come within
                // GATHER: fewer, larger commits.
                let gathered_by = tokio::time::Instant::now() + GATHER;
                while batch.len() < WRITE_BATCH {
                    let pending = unrecorded - unwritten.available_permits();
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) if pending > batch.len() && batch.len() < GATHER_BELOW => {
                            match tokio::time::timeout_at(gathered_by, incoming.recv()).await {
                                Ok(Some(next)) => batch.push(next),
                                _ => break,
                            }
                        }
                        Err(_) => break,
                    }
                }
                let (finished, permits): (Vec<Finished>, Vec<Option<OwnedSemaphorePermit>>) =
                    batch.into_iter().unzip();
                // Shared with each try, not copied.
                let finished = Arc::new(finished);
                // The database may be restarting: keep the batch and try again.
                loop {
                    let now = dispatcher.clock.now();
                    match dispatcher.record_blocking(Arc::clone(&finished), now).await {
                        Ok(()) => {
                            // Written: these no longer count against the unwritten limit.
                            drop(permits);
                            break;
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "writing delivery results failed; retrying");
                            actix_web::rt::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            }
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
    let mut last_renewal = std::time::Instant::now();
    let mut last_clean_up = std::time::Instant::now() - CLEAN_UP_EVERY + Duration::from_secs(30);
    let mut claim_now = true;
    let mut after = 0;
    while !stop.load(Ordering::SeqCst) {
        if last_clean_up.elapsed() >= CLEAN_UP_EVERY {
            last_clean_up = std::time::Instant::now();
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
        if last_renewal.elapsed() >= renew_every {
            last_renewal = std::time::Instant::now();
            let ids = held.borrow().job_ids();
            if !ids.is_empty() {
                let (this, now) = (dispatcher.clone_handle(), dispatcher.clock.now());
                if let Ok(Err(err)) = tokio::task::spawn_blocking(move || this.renew(&ids, now)).await {
                    tracing::warn!(error = %err, "renewing the lease of queued deliveries failed");
                }
            }
        }
        let mut filled = false;
        let (free, counts) = {
            let held = held.borrow();
            (budget.saturating_sub(held.total()), held.counts())
        };
        if claim_now && free > 0 {
            held.borrow_mut().ended = 0;
            match dispatcher
                .claim_blocking(dispatcher.clock.now(), free, HOLD_PER_WEBHOOK, counts, after)
                .await
            {
                Ok(claimed) => {
                    after = claimed.next_after;
                    filled = claimed.jobs.len() == free;
                    let (dropped, edited) = held.borrow_mut().take(claimed);
                    if !dropped.is_empty() || !edited.is_empty() {
                        let this = dispatcher.clone_handle();
                        let given_back = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                            let mut conn = this.pool.get()?;
                            this.park(&mut conn, &dropped)?;
                            this.release(&edited)?;
                            Ok(())
                        })
                        .await;
                        if let Ok(Err(err)) = given_back {
                            tracing::warn!(error = %err, "giving back the queue of a stopped or edited webhook failed; its lease runs out");
                        }
                        // What was given back is due again: claim it with the new settings.
                        filled = true;
                    }
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
