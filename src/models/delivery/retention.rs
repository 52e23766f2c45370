//! The retention: what is older than `HOOKBOARD_RETENTION_DAYS` goes, a UTC day at a time,
//! in short transactions, on the worker's housekeeping schedule.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};

/// Rows the retention deletes in one transaction, at most: none of its transactions holds
/// a busy day's rows locked, or the vacuum's horizon back, for long. (One DELETE of a day
/// of 670,000 deliveries and attempts took 7 to 9 s in `make bench`.)
const RETENTION_BATCH: i64 = 10_000;

/// What a pass of the retention deleted, in how many transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub attempts: usize,
    /// Days' partitions (of the attempts and of the deliveries) dropped whole, and those
    /// past the retention left for the next pass (their lock not had in time), with why for
    /// the last of those.
    pub days_dropped: usize,
    pub days_left: usize,
    pub last_failure: Option<String>,
    pub deliveries: usize,
    pub events: usize,
    pub transactions: usize,
    /// The longest of them.
    pub longest: std::time::Duration,
}

impl Cleaned {
    /// Runs one of the pass's transactions, timed.
    pub(super) fn batch<T>(
        &mut self,
        conn: &mut PgConnection,
        work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let started = std::time::Instant::now();
        let done = conn.transaction(work)?;
        self.transactions += 1;
        self.longest = self.longest.max(started.elapsed());
        Ok(done)
    }
}

/// Deletes what is older than the retention, a UTC day at a time: what was before the
/// start of `before`'s day. Attempts go by the day they started on and finished deliveries
/// by the day they finished on, their days' partitions dropped whole; what the DEFAULT
/// partitions hold and events no delivery waits for any more go in transactions of at most
/// [`RETENTION_BATCH`] rows. A delivery still waiting, however old, stays.
///
/// Events are walked in id order (ids grow with creation) from the oldest, up to the first
/// batch holding one created after the limit. An event created just before the limit but
/// numbered after a newer one is left for the next pass.
pub fn clean_up(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<Cleaned> {
    let before = super::days::day_start(before);
    let mut cleaned = Cleaned::default();
    super::days::drop_days_before(conn, before, &mut cleaned)?;
    // Every row of the deliveries' DEFAULT partition is finished (their `done_on` is a day).
    for (default, when) in [
        (super::days::ATTEMPTS.default, "started_at < $1"),
        (super::days::DELIVERIES.default, "completed_at < $1"),
    ] {
        loop {
            let deleted = cleaned.batch(conn, |conn| {
                diesel::sql_query(format!(
                    "DELETE FROM {default} WHERE id IN (SELECT id FROM {default} WHERE {when} LIMIT $2)"
                ))
                .bind::<Timestamptz, _>(before)
                .bind::<BigInt, _>(RETENTION_BATCH)
                .execute(conn)
            })?;
            if default == super::days::ATTEMPTS.default {
                cleaned.attempts += deleted;
            } else {
                cleaned.deliveries += deleted;
            }
            if (deleted as i64) < RETENTION_BATCH {
                break;
            }
        }
    }
    // The hourly aggregates the trigger keeps with them (see `models::hourly`): an hour a
    // row, a small table.
    cleaned.batch(conn, |conn| {
        for table in [
            "webhook_hours",
            "webhook_latency_hours",
            "webhook_failure_hours",
            "tenant_hours",
        ] {
            diesel::sql_query(format!("DELETE FROM {table} WHERE hour < $1"))
                .bind::<Timestamptz, _>(before)
                .execute(conn)?;
        }
        Ok(())
    })?;
    let mut after = String::new();
    loop {
        let walk: EventWalk = cleaned.batch(conn, |conn| {
            diesel::sql_query(
                "WITH batch AS (
                     SELECT id, created_at FROM events WHERE id > $2 ORDER BY id LIMIT $3
                 ), gone AS (
                     DELETE FROM events e USING batch b
                     WHERE e.id = b.id AND b.created_at < $1
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                     RETURNING e.id
                 )
                 SELECT count(*) AS walked, max(b.id) AS last,
                        bool_and(b.created_at < $1) AS all_old,
                        (SELECT count(*) FROM gone) AS deleted
                 FROM batch b",
            )
            .bind::<Timestamptz, _>(before)
            .bind::<Text, _>(&after)
            .bind::<BigInt, _>(RETENTION_BATCH)
            .get_result(conn)
        })?;
        cleaned.events += walk.deleted as usize;
        match next_start(walk.walked, walk.all_old, walk.last) {
            Some(last) => after = last,
            None => break,
        }
    }
    Ok(cleaned)
}

/// Where a walk in id order goes on after a batch (`walked` rows, the last of them `last`):
/// after its last row, while the batch was full and all of it older than the limit.
fn next_start<Id>(walked: i64, all_old: Option<bool>, last: Option<Id>) -> Option<Id> {
    last.filter(|_| walked == RETENTION_BATCH && all_old == Some(true))
}

/// One batch of the retention's walk over events in id order.
#[derive(QueryableByName)]
struct EventWalk {
    #[diesel(sql_type = BigInt)]
    walked: i64,
    #[diesel(sql_type = Nullable<Text>)]
    last: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    all_old: Option<bool>,
    #[diesel(sql_type = BigInt)]
    deleted: i64,
}
