//! What a worker holds and for how long: renewing the lease of queued deliveries so they
//! are never taken over while they wait, parking those whose webhook was switched off,
//! giving back those whose webhook was edited, and giving back everything at shutdown.
//! Every statement here share-locks the deliveries' webhooks first: the locking order.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};

use super::Dispatcher;
use super::conn::by_key;
use crate::db::prepared::{Prepared, prepared};

impl Dispatcher {
    /// Parks deliveries this worker holds but will not send (their webhook was switched
    /// off or disabled after they were claimed): kept, waiting for the webhook to return.
    pub(super) fn park(&self, conn: &mut PgConnection, ids: &[i64]) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.update_held(
            conn,
            ids,
            "UPDATE deliveries_waiting SET status = 'parked', claimed_by = NULL, claimed_until = NULL
                 WHERE id = ANY($1) AND claimed_by = $2 AND status IN ('pending', 'parked')",
            |statement| statement,
        )
    }

    /// Gives back deliveries this worker holds but will not send as they are (their webhook
    /// was edited after they were claimed, or the worker stops): due again at once, for
    /// the next claim here or elsewhere.
    fn release(&self, ids: &[i64]) -> anyhow::Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool.get()?;
        self.update_held(
            &mut conn,
            ids,
            "WITH held AS MATERIALIZED (
                 SELECT id, claimed_by, status FROM deliveries_waiting WHERE id = ANY($1) FOR NO KEY UPDATE
             )
             UPDATE deliveries_waiting SET claimed_by = NULL, claimed_until = NULL
             WHERE id = ANY(ARRAY(SELECT id FROM held WHERE claimed_by = $2 AND status = 'pending'))",
            |statement| statement,
        )
    }

    /// Extends the lease of what this worker holds, so queued deliveries are never taken
    /// over while they wait.
    pub(super) fn renew(&self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut conn = self.pool.get()?;
        let until = now + chrono::Duration::from_std(self.lease)?;
        self.update_held(
            &mut conn,
            ids,
            "WITH held AS MATERIALIZED (
                 SELECT id, claimed_by, status FROM deliveries_waiting WHERE id = ANY($1) FOR NO KEY UPDATE
             )
             UPDATE deliveries_waiting SET claimed_until = $3
             WHERE id = ANY(ARRAY(SELECT id FROM held WHERE claimed_by = $2 AND status = 'pending'))",
            |statement| statement.bind::<Timestamptz, _>(until),
        )
    }

    /// Runs `sql` on deliveries this worker holds, `$1` bound to their `ids` and `$2` to the
    /// worker (`more` binds the rest), after share-locking their webhooks. The statements
    /// lock the rows by id first and check the holder and status on what the locks return
    /// (see [`by_key`]).
    fn update_held<'a>(
        &'a self,
        conn: &mut PgConnection,
        ids: &'a [i64],
        sql: &'static str,
        more: impl FnOnce(Prepared<'a>) -> Prepared<'a>,
    ) -> anyhow::Result<usize> {
        by_key(conn, |conn| {
            share_webhooks_of(conn, ids)?;
            let statement = prepared(sql)
                .bind::<Array<BigInt>, _>(ids)
                .bind::<Text, _>(&self.worker_id);
            Ok(more(statement).execute(conn)?)
        })
    }

    /// Parks the queued deliveries of webhooks switched off (`stopped`) and gives back
    /// those of webhooks edited since their claim (`edited`).
    pub(super) fn give_back(&self, stopped: &[i64], edited: &[i64]) -> anyhow::Result<()> {
        let mut conn = self.pool.get()?;
        self.park(&mut conn, stopped)?;
        self.release(edited)?;
        Ok(())
    }

    /// Gives back what this worker still holds (at shutdown): due again at once, elsewhere.
    pub fn release_claims(&self) -> anyhow::Result<usize> {
        use crate::schema::deliveries;
        let held: Vec<i64> = deliveries::table
            .filter(deliveries::done_on.eq(crate::models::delivery::waiting()))
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
         WHERE w.id = ANY(ARRAY(SELECT d.webhook_id FROM deliveries_waiting d WHERE d.id = ANY($1)))
         ORDER BY w.id FOR KEY SHARE OF w",
    )
    .bind::<Array<BigInt>, _>(deliveries)
    .execute(conn)?;
    Ok(())
}
