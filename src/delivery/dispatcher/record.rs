//! Writing results back: the writer task gathers finished attempts into batches (fewer,
//! larger commits) and writes each in one transaction: the webhooks locked in order, the
//! deliveries' new state and the attempts in one statement, the webhooks' counters, and
//! automatic disabling. What each result leads to is [`super::policy`]'s decision.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::conn::by_key;
use super::policy::{self, Alert, Attempt, Ended, Next, Tally};
use super::{Dispatcher, Finished};
use crate::db::prepared::prepared;
use crate::models::alert::Raised;
use crate::models::audit::{Actor, AuditEntry};
use crate::models::webhook::Status;

/// Results written back in one transaction, at most.
const WRITE_BATCH: usize = 1000;
/// How long the writer waits for attempts still in flight to join a batch.
const GATHER: Duration = Duration::from_millis(1);
/// Only a batch smaller than this waits to [`GATHER`] more: a larger one is worth its
/// commit already. (Waiting for every batch held each result's permit a millisecond
/// longer, and the lanes waited for permits: 1.11x instead of 1.18x the commit rate in
/// `make bench`.)
const GATHER_BELOW: usize = 32;

/// A result for the writer, with the permit it releases once written.
pub(super) type Unwritten = (Finished, Option<OwnedSemaphorePermit>);

/// The writer: writes what comes from `incoming` in batches until the lanes are gone.
/// `unwritten` has `unrecorded` permits in all, one held by each result not yet written.
/// Once an ordered delivery's result is written, the next delivery of its key may go: the
/// writer then wakes the loop through `next_of_key` to claim it.
pub(super) async fn write(
    dispatcher: &Dispatcher,
    mut incoming: mpsc::UnboundedReceiver<Unwritten>,
    unwritten: &Semaphore,
    unrecorded: usize,
    next_of_key: &Notify,
) {
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
        let ordered = finished.iter().any(|f| f.job.ordering_key.is_some());
        let finished = Arc::new(finished);
        // The database may be restarting: keep the batch and try again.
        loop {
            let now = dispatcher.clock.now();
            match dispatcher.record_blocking(Arc::clone(&finished), now).await {
                Ok(()) => {
                    // Written: these no longer count against the unwritten limit.
                    drop(permits);
                    if ordered {
                        next_of_key.notify_one();
                    }
                    break;
                }
                Err(err) => {
                    tracing::error!(error = %err, "writing delivery results failed; retrying");
                    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

impl Dispatcher {
    /// [`Dispatcher::record`] on a blocking thread.
    pub(super) async fn record_blocking(
        &self,
        finished: Arc<Vec<Finished>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let this = self.clone_handle();
        tokio::task::spawn_blocking(move || this.record(&finished, now)).await?
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
        by_key(conn, |conn| {
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
                .filter(|w| w.tally.changes_counters())
                .map(|w| w.id)
                .collect();
            #[derive(QueryableByName)]
            struct Shared {
                #[diesel(sql_type = Integer)]
                consecutive_failures: i32,
                #[diesel(sql_type = Integer)]
                failing_attempts: i32,
                #[diesel(sql_type = Text)]
                alert_state: String,
            }
            #[derive(QueryableByName)]
            struct Locked {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            let shared: Vec<Shared> = prepared(
                "SELECT consecutive_failures, failing_attempts, alert_state FROM webhooks
                 WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
            )
            .bind::<Array<BigInt>, _>(&webhook_ids)
            .load(conn)?;
            // A batch of successes to webhooks without failures changes no counter (the
            // usual case): no second lock, no round trip.
            let quiet =
                |w: &Shared| w.consecutive_failures == 0 && w.failing_attempts == 0 && w.alert_state == "ok";
            let touched: Vec<i64> = if failing.is_empty() && shared.iter().all(quiet) {
                Vec::new()
            } else {
                prepared(
                    "SELECT id FROM webhooks WHERE id = ANY($1)
                       AND (id = ANY($2) OR consecutive_failures > 0 OR failing_attempts > 0 OR alert_state <> 'ok')
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
                     UPDATE deliveries d SET (status, attempt_count, next_attempt_at, last_status_code, last_error,
                                              completed_at, done_on) = (
                         SELECT v.status, v.attempt_count, v.next_at, v.code, v.error,
                                CASE WHEN v.status IN ('succeeded', 'failed') THEN $7 END,
                                -- A finished delivery moves to the partition of the day it
                                -- finished on (migration `deliveries_by_day`).
                                CASE WHEN v.status IN ('pending', 'parked') THEN 'infinity'
                                     ELSE ($7 AT TIME ZONE 'UTC')::date END
                         FROM (SELECT ($2::text[])[n] AS status, ($3::int[])[n] AS attempt_count,
                                      ($4::timestamptz[])[n] AS next_at, ($5::int[])[n] AS code, ($6::text[])[n] AS error
                               FROM array_position($1::bigint[], d.id) AS n) v),
                         claimed_by = NULL, claimed_until = NULL, updated_at = $7
                     -- Found by id alone, whatever the waiting partition's statistics say
                     -- (see `by_key`), and each row's new state looked up in the batch by
                     -- its place: a join with the batch's rows was planned as a loop over
                     -- them for each delivery (24,000 rows compared, 16 ms a batch of 157).
                     WHERE d.id = ANY($1::bigint[]) AND d.claimed_by = $8 AND d.done_on = 'infinity'
                 )
                 INSERT INTO delivery_attempts (delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms,
                     status_code, succeeded, error_class, error_message, request_headers, response_headers, response_body)
                 SELECT v.* FROM unnest($9::bigint[], $10::bigint[], $11::bigint[], $12::int[], $13::timestamptz[], $14::int[],
                     $15::int[], $16::bool[], $17::text[], $18::text[], $19::jsonb[], $20::jsonb[], $21::bytea[])
                     AS v(delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms, status_code,
                          succeeded, error_class, error_message, request_headers, response_headers, response_body)
                 WHERE v.delivery_id = ANY(ARRAY(SELECT d.id FROM deliveries_waiting d WHERE d.id = ANY($9::bigint[])))")
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
                #[diesel(sql_type = Integer)]
                failing_attempts: i32,
                #[diesel(sql_type = Text)]
                alert_state: String,
                #[diesel(sql_type = Text)]
                url: String,
                #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
                connection_id: Option<i64>,
            }
            let counting: Vec<&WebhookPlan> =
                plan.webhooks.iter().filter(|w| touched.contains(&w.id)).collect();
            let counted: Vec<Counted> = if counting.is_empty() {
                Vec::new()
            } else {
                prepared("UPDATE webhooks w SET error_count = w.error_count + v.errors,
                     consecutive_failures = CASE WHEN v.reset THEN v.after ELSE w.consecutive_failures + v.after END,
                     failing_attempts = CASE WHEN v.reset THEN v.errors_after ELSE w.failing_attempts + v.errors_after END
                 FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::int[], $5::int[]) AS v(id, errors, reset, after, errors_after)
                 WHERE w.id = v.id
                 RETURNING w.id, w.tenant_id, w.number, w.consecutive_failures, w.retry_on_error, w.status,
                           w.failing_attempts, w.alert_state, w.url, w.connection_id")
            .bind::<Array<BigInt>, _>(counting.iter().map(|w| w.id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(counting.iter().map(|w| w.tally.errors).collect::<Vec<_>>())
            .bind::<Array<Bool>, _>(counting.iter().map(|w| w.tally.reset).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(counting.iter().map(|w| w.tally.failed_after).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(counting.iter().map(|w| w.tally.errors_after).collect::<Vec<_>>()).load(conn)?
            };

            let mut raised = Vec::new();
            for webhook in &counted {
                let planned = plan.webhooks.iter().find(|w| w.id == webhook.id);
                let mut disabled = None;
                if webhook.status == Status::Active.as_str() {
                    disabled = policy::disable_reason(
                        planned.and_then(|p| p.tally.disable.as_deref()),
                        webhook.retry_on_error,
                        webhook.consecutive_failures,
                    );
                    if let Some(reason) = &disabled {
                        disable(conn, webhook.id, webhook.tenant_id, webhook.number, reason, now)?;
                    }
                }
                let succeeded = planned.is_some_and(|p| p.tally.reset);
                let Some(alert) = policy::alert(
                    &webhook.alert_state,
                    disabled.is_some(),
                    succeeded,
                    webhook.failing_attempts,
                ) else {
                    continue;
                };
                let reason = match alert {
                    Alert::Disabled => disabled.unwrap_or_default(),
                    Alert::Failing => last_error(finished, webhook.id),
                    Alert::Recovered => "A delivery succeeded again".to_owned(),
                };
                raised.push(Raised {
                    tenant_id: webhook.tenant_id,
                    webhook_id: webhook.id,
                    webhook_number: webhook.number,
                    url: webhook.url.clone(),
                    connection_id: webhook.connection_id,
                    kind: alert.kind(),
                    state: alert.state(),
                    reason,
                    consecutive_failures: webhook.consecutive_failures,
                });
            }
            if !raised.is_empty() {
                // The alert worker (`delivery::alerts`, polling each second) publishes
                // their operational events and mails them.
                crate::models::alert::raise(conn, &raised, now)?;
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
                    "WITH retrying AS MATERIALIZED (
                         SELECT id, webhook_id, status FROM deliveries_waiting WHERE id = ANY($1) FOR NO KEY UPDATE
                     )
                     UPDATE deliveries_waiting SET status = 'parked'
                     WHERE id = ANY(ARRAY(SELECT r.id FROM retrying r JOIN webhooks w ON w.id = r.webhook_id
                                          WHERE r.status = 'pending' AND w.status <> 'active'))",
                )
                .bind::<Array<BigInt>, _>(retrying)
                .execute(conn)?;
            }
            Ok(())
        })
    }
}

/// What went wrong last for a webhook in a batch of results, in words.
fn last_error(finished: &[Finished], webhook_id: i64) -> String {
    finished
        .iter()
        .rev()
        .find(|f| f.job.webhook_id == webhook_id && !f.outcome.succeeded)
        .map(|f| match (&f.outcome.error_message, f.outcome.status) {
            (Some(message), _) => message.clone(),
            (None, Some(status)) => format!("HTTP {status} from the endpoint"),
            (None, None) => "The attempt failed".to_owned(),
        })
        .unwrap_or_else(|| "Attempts failed".to_owned())
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
    diesel::sql_query("UPDATE deliveries_waiting SET status = 'parked', updated_at = $2 WHERE webhook_id = $1 AND status = 'pending' AND claimed_by IS NULL")
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

/// The new state of one delivery.
struct DeliveryPlan {
    id: i64,
    status: &'static str,
    attempt_count: i32,
    next_at: DateTime<Utc>,
    code: Option<i32>,
    error: Option<String>,
}

/// What a batch does to one webhook.
struct WebhookPlan {
    id: i64,
    tally: Tally,
}

/// What a batch of results writes.
struct Plan {
    deliveries: Vec<DeliveryPlan>,
    webhooks: Vec<WebhookPlan>,
}

impl Plan {
    /// Asks the policy what follows each result, in the order they came.
    fn of(finished: &[Finished], schedule: &[Duration], now: DateTime<Utc>) -> Plan {
        let mut deliveries = Vec::with_capacity(finished.len());
        let mut webhooks: Vec<WebhookPlan> = Vec::new();
        for f in finished {
            let attempt = Attempt {
                number: f.job.attempt_count + 1,
                event_id: &f.job.event_id,
                retry_on_error: f.retry_on_error,
                ended: Ended::of(&f.outcome),
            };
            let jitter = rand::random::<f64>() * 2.0 - 1.0;
            let next: Next = policy::after(&attempt, schedule, jitter, now);
            let index = match webhooks.iter().position(|w| w.id == f.job.webhook_id) {
                Some(i) => i,
                None => {
                    webhooks.push(WebhookPlan {
                        id: f.job.webhook_id,
                        tally: Tally::default(),
                    });
                    webhooks.len() - 1
                }
            };
            webhooks[index].tally.count(&next);
            deliveries.push(DeliveryPlan {
                id: f.job.id,
                status: next.status(),
                attempt_count: attempt.number,
                next_at: next.next_at(now),
                code: f.outcome.status.map(i32::from),
                error: f.outcome.error_message.clone(),
            });
        }
        Plan { deliveries, webhooks }
    }
}
