//! The hourly aggregates of attempts, kept by statement-level triggers on
//! `delivery_attempts` (migrations `webhook_hours` and `dashboard_aggregates`): attempts
//! per webhook and hour, their durations in buckets, and failed attempts per event type.
//! The operations dashboard reads these instead of the attempts, so its cost depends on
//! the number of webhooks and hours, never on the traffic. Hours that are over are also
//! summed per tenant ([`roll_up`], migration `tenant_hours`), so a tenant's week costs
//! one row an hour however many webhooks it has, and every aggregate row carries its
//! tenant, so a tenant's latest hours are one range of an index ([`Whose::Tenant`]).

use std::ops::Range;

use chrono::{DateTime, Duration, DurationRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, SmallInt, Text, Timestamptz};

use crate::db::prepared::prepared;

/// The upper bounds (milliseconds, exclusive) of the latency buckets, in the order of
/// `attempt_latency_bucket` in the migration: bucket `i` holds durations under
/// `LATENCY_BOUNDS_MS[i]`, the last bucket those of 60 s and more.
pub const LATENCY_BOUNDS_MS: [i64; 12] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

/// Attempts of some webhooks in one hour, added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct HourTotal {
    #[diesel(sql_type = Timestamptz)]
    pub hour: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
}

/// Attempts of one latency bucket (see [`LATENCY_BOUNDS_MS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct LatencyBucket {
    #[diesel(sql_type = SmallInt)]
    pub bucket: i16,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
}

/// Failed attempts of one event type.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct FailingType {
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
}

/// Whose attempts a read of the aggregates sums.
#[derive(Debug, Clone, Copy)]
pub enum Whose<'a> {
    /// A tenant's: all its webhooks, one range of the aggregates' tenant index however
    /// many webhooks it has (migration `tenant_aggregate_reads`).
    Tenant(i64),
    /// Some webhooks' (a partner's dashboard: its connection's): one probe of each
    /// webhook's key. (A webhook's page reads its own hours, `Delivery::health`.)
    Webhooks(&'a [i64]),
}

/// Attempts by hour from `since` (whole UTC hours), summed over the webhooks; hours
/// without attempts are absent.
pub fn hour_totals(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    since: DateTime<Utc>,
) -> QueryResult<Vec<HourTotal>> {
    match whose {
        Whose::Tenant(tenant_id) => prepared(TENANT_HOUR_TOTALS)
            .bind::<BigInt, _>(tenant_id)
            .bind::<Timestamptz, _>(since)
            .load(conn),
        Whose::Webhooks(webhook_ids) => prepared(
            "SELECT hour, sum(succeeded)::int8 AS succeeded, sum(failed)::int8 AS failed
             FROM webhook_hours WHERE webhook_id = ANY($1) AND hour >= $2
             GROUP BY hour ORDER BY hour",
        )
        .bind::<Array<BigInt>, _>(webhook_ids)
        .bind::<Timestamptz, _>(since)
        .load(conn),
    }
}

/// The statement of a tenant's [`hour_totals`] (its plan is tested): the tenant, since
/// when. The hours rolled up come from `tenant_hours`, one row each, as they are; the later
/// ones are summed from the webhooks' rows. The two sides of the roll-up's mark hold other
/// hours, and one snapshot reads both, so an hour is counted once even while the mark
/// moves. Hours rolled up keep the attempts of webhooks deleted since.
///
/// Only the hours past the mark are grouped: with the week's 168 rolled-up rows grouped
/// again (sums over `bigint` are `numeric` in PostgreSQL) the statement took 0.24 ms a
/// dashboard load in `make bench`, 0.10 ms without.
///
/// The mark is read as a value, not joined: until it is analysed (a one-row table rarely
/// is) PostgreSQL guesses a table at 2,200 rows, and a join multiplied the webhooks' hours
/// by that guess into a plan worth compiling (JIT, 100 ms and more).
pub const TENANT_HOUR_TOTALS: &str = "SELECT t.hour, t.succeeded, t.failed FROM tenant_hours t
     WHERE t.tenant_id = $1 AND t.hour >= $2 AND t.hour < (SELECT until FROM tenant_hours_rolled)
   UNION ALL
     SELECT h.hour, sum(h.succeeded)::int8, sum(h.failed)::int8 FROM webhook_hours h
     WHERE h.tenant_id = $1 AND h.hour >= greatest($2, (SELECT until FROM tenant_hours_rolled))
     GROUP BY h.hour
   ORDER BY hour";

/// How long after an hour is over it gets rolled up: an attempt is counted in the hour
/// it started, and recorded when its request ends, within a timeout of seconds.
const ROLL_UP_AFTER: Duration = Duration::hours(1);

/// Sums the webhooks' hours per tenant into `tenant_hours`, for the hours over by
/// [`ROLL_UP_AFTER`] at `now` and not rolled up yet, and moves the mark past them. Workers
/// sharing the database take turns (the mark's row lock). Returns the tenant hours written.
pub fn roll_up(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    let until = (now - ROLL_UP_AFTER)
        .duration_trunc(Duration::hours(1))
        .unwrap_or(now);
    conn.transaction(|conn| {
        // The lock first, in a statement of its own: the next one's snapshot then sees the
        // mark as the worker before us left it.
        diesel::sql_query("SELECT 1 FROM tenant_hours_rolled FOR UPDATE").execute(conn)?;
        // The sums replace what a row may hold, so even a pass over hours done before
        // writes only what the webhooks' rows say.
        let written = diesel::sql_query(
            "INSERT INTO tenant_hours (tenant_id, hour, succeeded, failed)
             SELECT h.tenant_id, h.hour, sum(h.succeeded), sum(h.failed)
             FROM webhook_hours h
             WHERE h.hour >= (SELECT until FROM tenant_hours_rolled) AND h.hour < $1
             GROUP BY h.tenant_id, h.hour
             ON CONFLICT (tenant_id, hour) DO UPDATE
             SET succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed",
        )
        .bind::<Timestamptz, _>(until)
        .execute(conn)?;
        diesel::sql_query("UPDATE tenant_hours_rolled SET until = greatest(until, $1)")
            .bind::<Timestamptz, _>(until)
            .execute(conn)?;
        Ok(written)
    })
}

/// Attempts by latency bucket in the hours `within`.
///
/// The hours are bounded on both sides, here and in [`failing_types`]: PostgreSQL plans a
/// prepared statement once for any values when that plan looks as cheap as one made for
/// the values, and for `hour >= $2` alone it guesses a third of the table, which made it
/// plan the statement anew at every load (0.06 ms, more than reading the rows, over a
/// month of one tenant's history in `make bench`).
pub fn latency_buckets(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    within: Range<DateTime<Utc>>,
) -> QueryResult<Vec<LatencyBucket>> {
    match whose {
        Whose::Tenant(tenant_id) => prepared(
            "SELECT bucket, sum(attempts)::int8 AS attempts
             FROM webhook_latency_hours WHERE tenant_id = $1 AND hour >= $2 AND hour < $3
             GROUP BY bucket ORDER BY bucket",
        )
        .bind::<BigInt, _>(tenant_id)
        .bind::<Timestamptz, _>(within.start)
        .bind::<Timestamptz, _>(within.end)
        .load(conn),
        Whose::Webhooks(webhook_ids) => prepared(
            "SELECT bucket, sum(attempts)::int8 AS attempts
             FROM webhook_latency_hours WHERE webhook_id = ANY($1) AND hour >= $2 AND hour < $3
             GROUP BY bucket ORDER BY bucket",
        )
        .bind::<Array<BigInt>, _>(webhook_ids)
        .bind::<Timestamptz, _>(within.start)
        .bind::<Timestamptz, _>(within.end)
        .load(conn),
    }
}

/// The event types with the most failed attempts in the hours `within`, most first, at
/// most `limit`.
pub fn failing_types(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    within: Range<DateTime<Utc>>,
    limit: i64,
) -> QueryResult<Vec<FailingType>> {
    match whose {
        Whose::Tenant(tenant_id) => prepared(
            "SELECT event_type, sum(failed)::int8 AS failed
             FROM webhook_failure_hours WHERE tenant_id = $1 AND hour >= $2 AND hour < $3
             GROUP BY event_type ORDER BY failed DESC, event_type LIMIT $4",
        )
        .bind::<BigInt, _>(tenant_id)
        .bind::<Timestamptz, _>(within.start)
        .bind::<Timestamptz, _>(within.end)
        .bind::<BigInt, _>(limit)
        .load(conn),
        Whose::Webhooks(webhook_ids) => prepared(
            "SELECT event_type, sum(failed)::int8 AS failed
             FROM webhook_failure_hours WHERE webhook_id = ANY($1) AND hour >= $2 AND hour < $3
             GROUP BY event_type ORDER BY failed DESC, event_type LIMIT $4",
        )
        .bind::<Array<BigInt>, _>(webhook_ids)
        .bind::<Timestamptz, _>(within.start)
        .bind::<Timestamptz, _>(within.end)
        .bind::<BigInt, _>(limit)
        .load(conn),
    }
}

/// The upper bound (ms) of the bucket that holds the `quantile` of the attempts (0.95 for
/// the p95), `None` without attempts; a quantile in the last, open bucket reads as its
/// lower bound (60 s). A bound, not an exact figure: the buckets grow by about 2.5 times.
pub fn quantile_bound_ms(buckets: &[LatencyBucket], quantile: f64) -> Option<i64> {
    let total: i64 = buckets.iter().map(|b| b.attempts).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * quantile).ceil().max(1.0) as i64;
    let mut sorted = buckets.to_vec();
    sorted.sort_by_key(|b| b.bucket);
    let mut seen = 0;
    for b in &sorted {
        seen += b.attempts;
        if seen >= rank {
            let i = b.bucket.max(0) as usize;
            return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(LATENCY_BOUNDS_MS[11]));
        }
    }
    Some(LATENCY_BOUNDS_MS[11])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(bucket: i16, attempts: i64) -> LatencyBucket {
        LatencyBucket { bucket, attempts }
    }

    #[test]
    fn the_p95_is_the_bound_of_the_bucket_that_holds_the_95th_percent() {
        assert_eq!(quantile_bound_ms(&[], 0.95), None);
        // 94 fast (under 50 ms), 6 slow (250..500 ms): the 95th is slow.
        assert_eq!(quantile_bound_ms(&[bucket(2, 94), bucket(5, 6)], 0.95), Some(500));
        assert_eq!(quantile_bound_ms(&[bucket(2, 95), bucket(5, 5)], 0.95), Some(50));
        assert_eq!(quantile_bound_ms(&[bucket(12, 1)], 0.95), Some(60000));
    }
}
