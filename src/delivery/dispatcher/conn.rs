//! The connections and transactions the dispatcher's statements run in: connections kept
//! between transactions (no check-out query before every claim and batch of results), and
//! transactions that find rows by key only, each statement with one plan for every call.
//! Shared by the claim, the leases and the writer, so it is a step of its own.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::prelude::*;

use crate::db::{DbConn, DbPool};

/// The connections the claim and the writer keep between their transactions. One taken
/// from here skips the pool's check-out query (`SELECT 1`: a round trip before every claim
/// and every batch of results), and one is kept only after its work went through, so a
/// connection that broke goes back to the pool, which tests it before handing it out.
#[derive(Clone, Default)]
pub(super) struct Kept(Arc<Mutex<Vec<DbConn>>>);

impl Kept {
    /// One for the claim and one for the writer, which may work at the same time.
    const AT_MOST: usize = 2;

    pub(super) fn with<R>(
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

/// When this worker last compared the waiting partition's statistics with a claim: see
/// [`WaitingStatistics::check`].
#[derive(Clone, Default)]
pub(super) struct WaitingStatistics(Arc<Mutex<Option<Instant>>>);

impl WaitingStatistics {
    /// A claim this large is evidence enough: as many as one webhook is sent at once.
    const CLAIMED: usize = super::PER_WEBHOOK;
    /// How often a worker compares, at most.
    const EVERY: Duration = Duration::from_secs(10);

    /// Analyzes the waiting partition when its statistics say it holds fewer deliveries
    /// than a claim of `claimed` just took from it.
    ///
    /// Statistics taken while the queue was drained say the partition holds a row or
    /// none, and to them reading any index that holds `id` whole costs no more than
    /// looking the ids up: [`by_key`] rules out the kinds of scan that would, but not an
    /// index whose condition is on a column after its first. Autovacuum analyzes the
    /// partition again only at its next round, up to a minute later. Over the bench's
    /// month of history such plans held the worker at 531-741 deliveries/s for 30-60 s
    /// after a `VACUUM (ANALYZE)` (the claim and the result statement reading 47,000-49,000
    /// blocks a call through `(webhook_id, event_type, id)`), against 11,000/s after.
    /// An `ANALYZE` takes milliseconds here, and the plans made again after it look ids
    /// up. It waits for no lock: while autovacuum holds the partition, it is left to it.
    pub(super) fn check(&self, conn: &mut PgConnection, claimed: usize) -> anyhow::Result<()> {
        if claimed < Self::CLAIMED {
            return Ok(());
        }
        {
            let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < Self::EVERY) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        #[derive(QueryableByName)]
        struct Estimate {
            #[diesel(sql_type = diesel::sql_types::Float)]
            rows: f32,
        }
        let estimate: Estimate = crate::db::prepared::prepared(
            "SELECT reltuples AS rows FROM pg_class WHERE oid = 'deliveries_waiting'::regclass",
        )
        .get_result(conn)?;
        if estimate.rows >= claimed as f32 {
            return Ok(());
        }
        let analyzed = crate::db::transaction_with(conn, "SET LOCAL lock_timeout = 1", |conn| {
            diesel::sql_query("ANALYZE deliveries_waiting").execute(conn)
        });
        match analyzed {
            Ok(_) => tracing::info!(
                estimate = estimate.rows,
                claimed,
                "the waiting deliveries' statistics were behind a claim: analyzed"
            ),
            Err(err) => tracing::debug!(error = %err, "the waiting deliveries were not analyzed"),
        }
        Ok(())
    }
}

/// Runs the dispatcher's statements in one transaction that finds rows by key only, each
/// with the one plan it keeps for every call.
///
/// They are prepared once per connection and each keeps one plan. (Left to choose,
/// PostgreSQL kept planning the result statements on every call: with a few results their
/// custom plans look cheaper. The claim was planned for every call until `make bench`'s
/// statement profile showed 1.2 ms of planning a claim against 4.0 ms of executing it; with
/// whole-table and bitmap scans off, nothing is left in its plan that depends on how long
/// the queue is.)
///
/// That one plan may be made while its statistics were far off: on a fresh install (an
/// empty table), or after a burst (autovacuum re-analyzes a large table only after a tenth
/// of it changed). Every row these statements touch is found through an index by id,
/// webhook or due time, which is right at every table size: whole-table and bitmap scans
/// are off for them. (A bitmap over every due delivery took a fifth of the database's CPU
/// in `make bench` once; a claim planned on an empty table read the whole due index for
/// every claim later, 8.7 ms instead of 1.4 ms over 20,000 due deliveries.)
///
/// A statement that finds deliveries by id checks their status on the rows it found (in a
/// step after the lookup), never beside the id. With `status = 'pending'` next to
/// `id = ANY(...)` the planner may read the whole due index (partial, on what is pending)
/// and filter it by id instead: to statistics from a vacuum while little was waiting, that
/// index looks empty however many deliveries wait now. Over a month of history (5,000,000
/// finished deliveries, 20,000 waiting) such a claim took 27 ms where by key it took 2.4 ms.
///
/// For the same reason a lookup by id is never joined with another table in the same step
/// (the join's order makes every index of the deliveries a candidate, walked whole), and
/// index-only scans are off: any index that holds `id` could otherwise be read whole and
/// filtered. The statistics that make such a walk look cheap are those of a waiting
/// partition analyzed while the queue was drained (migration `deliveries_by_day`): to them
/// it holds one row. Over 6,000,000 deliveries of history, the claim walked the index on
/// `event_id` and the result statement the one on `(webhook_id, event_type, id)`, 4,757 and
/// 8,429 rows a batch, although the unique index on `id` was there.
pub(super) fn by_key<R>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    crate::db::transaction_with(conn, BY_KEY_SETTINGS, work)
}

/// The settings of [`by_key`]'s transactions (public for the tests that plan the worker's
/// statements as it does).
pub const BY_KEY_SETTINGS: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
     SET LOCAL enable_indexonlyscan = off; SET LOCAL plan_cache_mode = force_generic_plan";

/// Whether `err` is PostgreSQL's serialization failure. At READ COMMITTED, the dispatcher's
/// level, that means a row it went to lock had moved to another partition in a transaction
/// that committed after its statement began: a delivery another worker finished meanwhile
/// (migration `deliveries_by_day`). The same statement run again sees it where it is now.
pub(super) fn is_moved_row(err: &anyhow::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        err.downcast_ref::<Error>(),
        Some(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _))
    )
}
