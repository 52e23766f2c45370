//! The operations dashboard (SPEC 9a): a scope's deliveries of the last 24 hours and 7
//! days, success rate, attempt latency p95, backlog, the webhooks at risk and those
//! switched off, and the event types that fail most; in one trip to the database.
//!
//! What it reads, and why it stays cheap however busy the tenant is:
//! - succeeded and failed attempts, and the latency p95, come from the hourly aggregates
//!   the triggers keep (`models::hourly`): at most 7 × 24 rows per webhook;
//! - the latency p95 is the bound of the bucket of `webhook_latency_hours` holding the
//!   95th percent of the last 24 hours' attempts (buckets about 2.5 times apart), rather
//!   than `percentile_disc` over attempts, which would read every attempt of the window;
//! - the top failing event types come from `webhook_failure_hours`, a per-event-type
//!   counter of failed attempts (migration `dashboard_aggregates`), for the same reason;
//! - pending deliveries, the backlog and the last errors come from the partial and
//!   per-webhook indexes of deliveries, bounded per webhook (`models::delivery::dashboard`).

use chrono::{DateTime, Duration, DurationRound, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;

use super::AppError;
use crate::delivery::retry::MAX_CONSECUTIVE_FAILURES;
use crate::models::delivery::Delivery;
use crate::models::hourly::{self, FailingType, Whose};
use crate::models::webhook::{Glance, Scope, Status, Webhook};
use crate::state::AppState;

/// Pending deliveries counted per webhook for the charts; the backlog counts them all.
const PENDING_PER_WEBHOOK: i64 = 10_000;
/// How many failing event types the dashboard names.
const TOP_FAILING_TYPES: i64 = 5;

/// One bar of a chart: from `start` for an hour or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    /// Succeeded attempts.
    pub succeeded: i64,
    /// Failed attempts (each retry counts).
    pub failed: i64,
    /// Deliveries created in the bucket and still waiting to be sent.
    pub pending: i64,
}

/// A webhook whose latest deliveries keep failing.
#[derive(Debug, Clone)]
pub struct AtRisk {
    pub webhook: Glance,
    /// Failed attempts since its last success (a delivery being retried counts each).
    pub failed_attempts: i32,
    /// The error of its latest failed delivery.
    pub last_error: Option<String>,
    /// When its next pending delivery is (re)tried.
    pub next_retry: Option<DateTime<Utc>>,
}

/// A webhook Hookboard switched off, and what it parked since.
#[derive(Debug, Clone)]
pub struct SwitchedOff {
    pub webhook: Glance,
    pub parked: i64,
}

/// Everything the dashboard shows, in the tenant's timezone where it matters.
#[derive(Debug, Clone)]
pub struct Overview {
    pub timezone: Tz,
    /// The last 24 hours, oldest first, the current hour last.
    pub hours: Vec<Bucket>,
    /// The last 7 days of the tenant's calendar, oldest first, today last.
    pub days: Vec<Bucket>,
    /// Succeeded attempts of the last 24 hours, of all attempts (0..=1).
    pub success_rate: Option<f64>,
    /// Attempt latency p95 of the last 24 hours, as a bucket's upper bound in ms.
    pub latency_p95_ms: Option<i64>,
    /// Pending deliveries whose time has come.
    pub due: i64,
    /// Since when the longest-waiting of them has been due.
    pub oldest_due: Option<DateTime<Utc>>,
    pub at_risk: Vec<AtRisk>,
    pub switched_off: Vec<SwitchedOff>,
    /// Failed attempts of the last 24 hours by event type, most first.
    pub failing_types: Vec<FailingType>,
    pub webhooks: usize,
    pub now: DateTime<Utc>,
}

/// How many failed deliveries in a row an at-risk webhook may have before it is switched
/// off (SPEC: "n of 11").
pub const FAILURE_LIMIT: i32 = MAX_CONSECUTIVE_FAILURES;

/// The dashboard of a scope (a tenant, or a partner's connection).
pub async fn overview(
    state: &AppState,
    scope: impl Into<Scope>,
    timezone: &str,
) -> Result<Overview, AppError> {
    let (scope, now) = (scope.into(), state.clock.now());
    let timezone = timezone.parse::<Tz>().unwrap_or(chrono_tz::UTC);
    state
        .db(move |conn| overview_in(conn, scope, timezone, now))
        .await
}

/// [`overview`] on a connection the caller holds (tests, benchmarks).
pub fn overview_in(
    conn: &mut PgConnection,
    scope: impl Into<Scope>,
    timezone: Tz,
    now: DateTime<Utc>,
) -> Result<Overview, AppError> {
    let scope = scope.into();
    let webhooks = Glance::all(conn, scope)?;
    let ids: Vec<i64> = webhooks.iter().map(|w| w.id).collect();

    let hour_starts = last_hours(now);
    let day_starts = last_days(now, timezone);
    // The first UTC hour that touches the oldest day (whole hours: a timezone with a
    // half-hour offset counts that day's first half hour in the day before).
    let since = day_starts[0]
        .duration_trunc(Duration::hours(1))
        .unwrap_or(day_starts[0]);
    let day_before = hour_starts[0];

    // A tenant's staff see all its webhooks: their hours are read per tenant, one range of
    // an index however many webhooks it has; a partner's, per webhook.
    let whose = match scope.connection_id {
        None => Whose::Tenant(scope.tenant_id),
        Some(_) => Whose::Webhooks(&ids),
    };
    let attempts = hourly::hour_totals(conn, whose, since)?;
    // The backlog first: the pending deliveries by hour are then read only of the webhooks
    // that have any (usually none), one index probe fewer per webhook.
    let backlogs = Delivery::backlogs(conn, &ids, now)?;
    let waiting: Vec<i64> = backlogs.iter().map(|b| b.webhook_id).collect();
    let pending = Delivery::pending_by_hour(conn, &waiting, since, PENDING_PER_WEBHOOK)?;
    let mut hours: Vec<Bucket> = hour_starts.iter().map(|&start| empty(start)).collect();
    let mut days: Vec<Bucket> = day_starts.iter().map(|&start| empty(start)).collect();
    for a in &attempts {
        for bucket in [find(&mut hours, a.hour), find(&mut days, a.hour)]
            .into_iter()
            .flatten()
        {
            bucket.succeeded += a.succeeded;
            bucket.failed += a.failed;
        }
    }
    for p in &pending {
        for bucket in [find(&mut hours, p.hour), find(&mut days, p.hour)]
            .into_iter()
            .flatten()
        {
            bucket.pending += p.pending;
        }
    }
    let (ok, failed) = hours
        .iter()
        .fold((0, 0), |(ok, failed), h| (ok + h.succeeded, failed + h.failed));
    let success_rate = (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64);
    // The last 24 hours, the current one included.
    let day = day_before..day_before + Duration::hours(24);
    let latency = hourly::latency_buckets(conn, whose, day.clone())?;
    let failing_types = hourly::failing_types(conn, whose, day, TOP_FAILING_TYPES)?;

    let due = backlogs.iter().map(|b| b.due).sum();
    let oldest_due = backlogs.iter().filter_map(|b| b.oldest_due).min();

    // At risk: deliveries failed for good in a row, or attempts failing since the last
    // success (a delivery on its retries: the first sign of trouble).
    let attempts = Webhook::failing_attempts(conn, &ids)?;
    let failing = |id: i64| attempts.iter().find(|(w, _)| *w == id).map_or(0, |(_, n)| *n);
    let mut risky: Vec<Glance> = webhooks
        .iter()
        .filter(|w| w.status == Status::Active && (w.consecutive_failures > 0 || failing(w.id) > 0))
        .cloned()
        .collect();
    risky.sort_by_key(|w| (std::cmp::Reverse(w.consecutive_failures), w.number));
    let risky_ids: Vec<i64> = risky.iter().map(|w| w.id).collect();
    let errors = Delivery::last_errors(conn, &risky_ids)?;
    let at_risk = risky
        .into_iter()
        .map(|webhook| AtRisk {
            failed_attempts: failing(webhook.id),
            last_error: errors
                .iter()
                .find(|e| e.webhook_id == webhook.id)
                .and_then(|e| e.last_error.clone()),
            next_retry: backlogs
                .iter()
                .find(|b| b.webhook_id == webhook.id)
                .and_then(|b| b.next_attempt),
            webhook,
        })
        .collect();

    let mut off: Vec<Glance> = webhooks
        .iter()
        .filter(|w| w.status == Status::AutoDisabled)
        .cloned()
        .collect();
    off.sort_by_key(|w| (std::cmp::Reverse(w.disabled_at), w.number));
    let switched_off = off
        .into_iter()
        .map(|webhook| {
            let parked = Delivery::parked_count(conn, webhook.id)?;
            Ok(SwitchedOff { webhook, parked })
        })
        .collect::<Result<_, AppError>>()?;

    Ok(Overview {
        timezone,
        hours,
        days,
        success_rate,
        latency_p95_ms: hourly::quantile_bound_ms(&latency, 0.95),
        due,
        oldest_due,
        at_risk,
        switched_off,
        failing_types,
        webhooks: webhooks.len(),
        now,
    })
}

fn empty(start: DateTime<Utc>) -> Bucket {
    Bucket {
        start,
        succeeded: 0,
        failed: 0,
        pending: 0,
    }
}

/// The bucket `at` falls in (buckets sorted by start, each lasting until the next; the
/// last one until now).
fn find(buckets: &mut [Bucket], at: DateTime<Utc>) -> Option<&mut Bucket> {
    let i = buckets.partition_point(|b| b.start <= at);
    if i == 0 { None } else { buckets.get_mut(i - 1) }
}

/// The starts of the last 24 hours, the current hour last.
pub fn last_hours(now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let current = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    (0..24).rev().map(|i| current - Duration::hours(i)).collect()
}

/// The starts (local midnight, or the first time of a day that skips it) of the last 7
/// days of `timezone`'s calendar, today last.
pub fn last_days(now: DateTime<Utc>, timezone: Tz) -> Vec<DateTime<Utc>> {
    let today = now.with_timezone(&timezone).date_naive();
    (0..7)
        .rev()
        .map(|i| {
            let day = today - Duration::days(i);
            let midnight = day.and_time(NaiveTime::MIN);
            timezone
                .from_local_datetime(&midnight)
                .earliest()
                .or_else(|| {
                    timezone
                        .from_local_datetime(&(midnight + Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| midnight.and_utc())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_days_start_at_the_tenants_midnight() {
        let now: DateTime<Utc> = "2026-11-28T10:30:00Z".parse().unwrap();
        let days = last_days(now, chrono_tz::Europe::Vienna);
        assert_eq!(days.len(), 7);
        assert_eq!(days[6], "2026-11-27T23:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(days[0], "2026-11-21T23:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let hours = last_hours(now);
        assert_eq!(
            hours[23],
            "2026-11-28T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(hours[0], "2026-11-27T11:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn an_hour_lands_in_the_bucket_that_started_last_before_it() {
        let hours: Vec<Bucket> = last_hours("2026-11-28T10:30:00Z".parse().unwrap())
            .into_iter()
            .map(empty)
            .collect();
        let mut hours = hours;
        assert!(find(&mut hours, "2026-11-27T10:00:00Z".parse().unwrap()).is_none());
        let at = "2026-11-28T09:00:00Z".parse().unwrap();
        assert_eq!(find(&mut hours, at).unwrap().start, at);
    }
}
