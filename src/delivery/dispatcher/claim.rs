//! Claiming due deliveries: one statement takes them with a lease (`FOR UPDATE SKIP
//! LOCKED`, so workers sharing the database never take the same one), webhooks taking turns
//! so no backlog keeps another webhook waiting; then the webhooks are read once for what
//! the attempts need. Deliveries of webhooks switched off since are parked at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz};

use super::conn::by_key;
use super::{Dispatcher, Job, Target};
use crate::db::prepared::prepared;
use crate::models::webhook::{Status, Webhook};

/// What a claim asks for: due deliveries at `now`, at most `limit`, and at most
/// `per_webhook` held per webhook (those already held counted in `held`), the round of
/// webhooks starting after webhook `after` (the previous claim's [`Claimed::next_after`]).
pub(super) struct Want {
    pub now: DateTime<Utc>,
    pub limit: usize,
    pub per_webhook: usize,
    pub held: HashMap<i64, usize>,
    pub after: i64,
}

/// What one claim brought.
#[derive(Default)]
pub(super) struct Claimed {
    pub jobs: Vec<(Job, Arc<Target>)>,
    /// Webhooks held before that are no longer active (or were deleted): drop what is
    /// queued for them.
    pub stopped: Vec<i64>,
    /// Claimed deliveries of webhooks no longer active, already parked.
    pub refused: Vec<i64>,
    /// The `updated_at` of each active webhook held or claimed.
    pub versions: HashMap<i64, DateTime<Utc>>,
    /// Where the next claim's round of webhooks starts: after the last webhook served
    /// when this claim had more webhooks with due deliveries than room, else from the
    /// beginning.
    pub next_after: i64,
}

impl Dispatcher {
    /// [`Dispatcher::claim`] on a blocking thread.
    pub(super) async fn claim_blocking(&self, want: Want) -> anyhow::Result<Claimed> {
        let this = self.clone_handle();
        tokio::task::spawn_blocking(move || this.claim(&want)).await?
    }

    /// Claims due deliveries as [`Want`] says. Webhooks with due deliveries take turns:
    /// each gets its first delivery before any gets a second, and so on, and the round
    /// starts after webhook `after`, so no backlog, however long, keeps another webhook
    /// waiting. Also re-reads the webhooks of `held`, so that the loop can drop what it
    /// queued for a webhook switched off since.
    fn claim(&self, want: &Want) -> anyhow::Result<Claimed> {
        self.kept.with(&self.pool, |conn| self.claim_on(conn, want))
    }

    fn claim_on(&self, conn: &mut PgConnection, want: &Want) -> anyhow::Result<Claimed> {
        let Want {
            now,
            limit,
            per_webhook,
            ref held,
            after,
        } = *want;
        let (busy_ids, busy_counts): (Vec<i64>, Vec<i32>) =
            held.iter().map(|(id, n)| (*id, *n as i32)).unzip();
        let lease_until = now + chrono::Duration::from_std(self.lease)?;
        let claim = prepared("WITH RECURSIVE busy AS (
                     SELECT * FROM unnest($3::bigint[], $4::int[]) AS b(webhook_id, held)
                 ), due_webhooks(webhook_id) AS (
                     -- The webhooks with due deliveries, in id order from `after`: one
                     -- step down the (webhook, due time) index each, however long their
                     -- queues.
                     SELECT (SELECT d.webhook_id FROM deliveries_waiting d
                             WHERE d.status = 'pending' AND d.webhook_id > $5 AND d.next_attempt_at <= $1
                             ORDER BY d.webhook_id LIMIT 1)
                   UNION ALL
                     SELECT (SELECT d.webhook_id FROM deliveries_waiting d
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
                         FROM deliveries_waiting d
                         WHERE d.webhook_id = w.webhook_id AND d.status = 'pending' AND d.next_attempt_at <= $1
                           AND (d.claimed_until IS NULL OR d.claimed_until < $1)
                           -- An ordered delivery goes only as the first of its key still
                           -- waiting, and only while none of its key is being sent.
                           AND (d.ordering_key IS NULL OR NOT EXISTS (
                               SELECT 1 FROM deliveries_waiting o
                               WHERE o.webhook_id = d.webhook_id AND o.ordering_key = d.ordering_key
                                 AND o.status = 'pending' AND o.id <> d.id
                                 AND (o.id < d.id OR o.claimed_until >= $1)))
                         ORDER BY d.next_attempt_at
                         LIMIT least(w.room, $7)
                     ) c
                     ORDER BY c.turn, w.webhook_id
                     LIMIT $7
                 ), picked AS MATERIALIZED (
                     -- Locked by primary key (`= ANY(ARRAY(...))`), never a join the
                     -- planner could turn into a scan of the whole table when its estimates
                     -- are off, and with no condition on the status here (see `by_key`).
                     SELECT d.id, d.webhook_id, d.status, d.claimed_until, d.ordering_key FROM deliveries_waiting d
                     WHERE d.id = ANY(ARRAY(SELECT t.id FROM turns t))
                     FOR UPDATE OF d SKIP LOCKED
                 ), claimable AS (
                     -- What the locks returned is each row as it is now: one finished or
                     -- claimed elsewhere since the statement began is left.
                     SELECT p.id FROM picked p
                     WHERE p.status = 'pending' AND (p.claimed_until IS NULL OR p.claimed_until < $1)
                       -- One claim at a time per key, until this transaction ends: see
                       -- `keep_order`.
                       AND (p.ordering_key IS NULL
                            OR pg_try_advisory_xact_lock(hashtextextended(p.ordering_key, p.webhook_id)))
                 ), claimed AS (
                     -- By key alone too: joined with the events here, the planner may walk
                     -- the index on `event_id` whole for the join's order (see `by_key`).
                     UPDATE deliveries_waiting d SET claimed_by = $2, claimed_until = $8
                     WHERE d.id = ANY(ARRAY(SELECT c.id FROM claimable c))
                     RETURNING d.id, d.webhook_id, d.tenant_id, d.event_id, d.attempt_count, d.body, d.ordering_key
                 )
                 SELECT c.id, c.webhook_id, c.tenant_id, c.event_id, e.event_type, c.attempt_count,
                        COALESCE(c.body, e.body) AS body, e.language, c.ordering_key
                 FROM claimed c JOIN events e ON e.id = c.event_id")
            .bind::<Timestamptz, _>(now)
            .bind::<Text, _>(&self.worker_id)
            .bind::<Array<BigInt>, _>(&busy_ids)
            .bind::<Array<Integer>, _>(&busy_counts)
            .bind::<BigInt, _>(after)
            .bind::<BigInt, _>(per_webhook as i64)
            .bind::<BigInt, _>(limit as i64)
            .bind::<Timestamptz, _>(lease_until);
        let jobs: Vec<Job> = by_key(conn, |conn| {
            let jobs: Vec<Job> = claim.load(conn)?;
            keep_order(conn, jobs, now)
        })?;
        self.statistics.check(conn, jobs.len())?;
        let claimed_for: HashSet<i64> = jobs.iter().map(|j| j.webhook_id).collect();
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
                url: super::super::http::parse(&webhook.url),
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
}

/// Gives back the ordered deliveries of a claim that may not go yet, inside the claim's
/// transaction, and returns the rest.
///
/// The claim statement judges "first of its key, none of its key being sent" on the
/// snapshot it started with, which a claim by another worker committed meanwhile, or a
/// resent older delivery, may have outdated. So it also took a transaction-level advisory
/// lock per key (only one claim holds a key's lock; another skips the key), and this check
/// runs after those locks were taken, in a statement of its own and so on a fresh snapshot:
/// every claim of the key committed before ours is visible to it. Any delivery it finds
/// behind an earlier one still waiting, or beside one of its key being sent, is released.
/// Hence no two deliveries of one key are ever claimed at once, by any workers, and each
/// key's deliveries go in delivery id order: the order they were published in (publishing
/// locks the webhook, so ids of one webhook's deliveries are given in commit order).
fn keep_order(conn: &mut PgConnection, jobs: Vec<Job>, now: DateTime<Utc>) -> anyhow::Result<Vec<Job>> {
    let ordered: Vec<i64> = jobs
        .iter()
        .filter(|job| job.ordering_key.is_some())
        .map(|job| job.id)
        .collect();
    if ordered.is_empty() {
        return Ok(jobs);
    }
    #[derive(QueryableByName)]
    struct Released {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let released: HashSet<i64> = prepared(
        "UPDATE deliveries_waiting d SET claimed_by = NULL, claimed_until = NULL
         WHERE d.id = ANY($1) AND EXISTS (
             SELECT 1 FROM deliveries_waiting o
             WHERE o.webhook_id = d.webhook_id AND o.ordering_key = d.ordering_key
               AND o.status = 'pending' AND o.id <> d.id
               AND (o.id < d.id OR o.claimed_until >= $2))
         RETURNING d.id",
    )
    .bind::<Array<BigInt>, _>(&ordered)
    .bind::<Timestamptz, _>(now)
    .load::<Released>(conn)?
    .into_iter()
    .map(|r| r.id)
    .collect();
    if released.is_empty() {
        return Ok(jobs);
    }
    Ok(jobs
        .into_iter()
        .filter(|job| !released.contains(&job.id))
        .collect())
}
