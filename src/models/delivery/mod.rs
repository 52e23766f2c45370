//! Deliveries (one event to one webhook) and their attempts: the outbox the delivery
//! engine works through, and the log people read on the webhook page.

use chrono::{DateTime, Duration, DurationRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Int8, Timestamptz};
use serde::Serialize;

mod dashboard;
mod days;
mod log;
mod replay;
mod retention;
mod status;

use crate::db::prepared::prepared;
use crate::schema::{deliveries, delivery_attempts};
pub use dashboard::Backlog;
pub use days::{ATTEMPTS, Added, DAYS_AHEAD, DELIVERIES, History, add_days, add_days_ahead, day_start, days};
pub use log::{LOG_PAGE_SIZE, LogEntry, LogFilter, LogPage};
pub use replay::ReplayScope;
pub use retention::{Cleaned, clean_up};
pub use status::{DeliveryStatus, OUTCOMES};

/// The channel the dispatcher listens on; a notification means "new work is due".
pub const NOTIFY_CHANNEL: &str = "hookboard_deliveries";

/// `done_on` of a delivery still to send (pending or parked): the waiting partition
/// (migration `deliveries_by_day`). A filter on it keeps a statement to that partition; a
/// finished delivery's `done_on` is the UTC day it finished on.
pub fn waiting() -> Waiting {
    Waiting
}

/// The date `'infinity'` in SQL (chrono has no such date). A constant, unlike diesel's SQL
/// literals, so a statement that names it is still prepared once per connection, and a
/// generic plan of it kept.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId, diesel::expression::ValidGrouping)]
pub struct Waiting;

impl diesel::Expression for Waiting {
    type SqlType = Date;
}

impl<QS> diesel::AppearsOnTable<QS> for Waiting {}

impl<QS> diesel::SelectableExpression<QS> for Waiting {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for Waiting {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("'infinity'::date");
        Ok(())
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    pub id: i64,
    pub tenant_id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    #[diesel(deserialize_as = String)]
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The event's ordering key, when the webhook was ordered as the delivery was written.
    pub ordering_key: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = delivery_attempts, check_for_backend(diesel::pg::Pg))]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: i64,
    pub attempt_number: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub succeeded: bool,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    #[serde(skip)]
    pub response_body: Option<Vec<u8>>,
}

/// Bytes of a response a log page shows; the rest of the stored 64 KiB is loaded on demand.
pub const RESPONSE_PREVIEW_BYTES: usize = 4096;

impl Attempt {
    /// The stored start of the response, as text (binary bytes replaced).
    pub fn response_text(&self) -> String {
        self.response_body
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// The first [`RESPONSE_PREVIEW_BYTES`] of the stored response, as text.
    pub fn response_preview(&self) -> String {
        let bytes = self.response_body.as_deref().unwrap_or_default();
        String::from_utf8_lossy(&bytes[..bytes.len().min(RESPONSE_PREVIEW_BYTES)]).into_owned()
    }

    /// The stored response's size in bytes.
    pub fn response_bytes(&self) -> usize {
        self.response_body.as_ref().map_or(0, Vec::len)
    }

    /// Whether the preview is the whole stored response.
    pub fn response_is_whole(&self) -> bool {
        self.response_bytes() <= RESPONSE_PREVIEW_BYTES
    }
}

/// Succeeded and failed attempts of one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourHealth {
    pub hour: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(QueryableByName)]
struct HourRow {
    #[diesel(sql_type = Timestamptz)]
    hour: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    succeeded: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

#[derive(Insertable)]
#[diesel(table_name = deliveries)]
struct NewDelivery<'a> {
    tenant_id: i64,
    webhook_id: i64,
    event_id: &'a str,
    event_type: &'a str,
    status: &'a str,
    next_attempt_at: DateTime<Utc>,
}

impl Delivery {
    pub fn find(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<Delivery> {
        deliveries::table
            .filter(deliveries::tenant_id.eq(tenant_id))
            .filter(deliveries::id.eq(id))
            .select(Delivery::as_select())
            .first(conn)
    }

    /// Sends a delivery again, with the same event id: it becomes due at once and its
    /// attempts continue numbering from where they were.
    pub fn resend(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> QueryResult<Delivery> {
        let delivery = diesel::update(
            deliveries::table
                .filter(deliveries::tenant_id.eq(tenant_id))
                .filter(deliveries::id.eq(id))
                .filter(
                    deliveries::claimed_until
                        .is_null()
                        .or(deliveries::status.ne(DeliveryStatus::Pending.as_str())),
                ),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Pending.as_str()),
            deliveries::next_attempt_at.eq(now),
            deliveries::completed_at.eq(None::<DateTime<Utc>>),
            deliveries::done_on.eq(waiting()),
            deliveries::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .optional()?;
        match delivery {
            Some(delivery) => Ok(delivery),
            // Being attempted right now: it is already on its way.
            None => Delivery::find(conn, tenant_id, id),
        }
    }

    /// The delivery of an event to a webhook.
    pub fn of_event(
        conn: &mut PgConnection,
        tenant_id: i64,
        webhook_id: i64,
        event_id: &str,
    ) -> QueryResult<Delivery> {
        deliveries::table
            .filter(deliveries::tenant_id.eq(tenant_id))
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::event_id.eq(event_id))
            .select(Delivery::as_select())
            .first(conn)
    }

    /// Parks what waits for a webhook switched off: its pending deliveries stay, unsent,
    /// until a person switches it back on and resends or drops them.
    pub fn park_waiting(conn: &mut PgConnection, webhook_id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
        diesel::update(
            deliveries::table
                .filter(deliveries::done_on.eq(waiting()))
                .filter(deliveries::webhook_id.eq(webhook_id))
                .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str())),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Parked.as_str()),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)
    }

    /// Sends the parked deliveries of a webhook switched back on, due at once.
    pub fn resend_parked(conn: &mut PgConnection, webhook_id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
        diesel::update(
            deliveries::table
                .filter(deliveries::done_on.eq(waiting()))
                .filter(deliveries::webhook_id.eq(webhook_id))
                .filter(deliveries::status.eq(DeliveryStatus::Parked.as_str())),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Pending.as_str()),
            deliveries::next_attempt_at.eq(now),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)
    }

    /// Cancels the parked deliveries of a webhook switched back on: they are never sent.
    pub fn drop_parked(conn: &mut PgConnection, webhook_id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
        diesel::update(
            deliveries::table
                .filter(deliveries::done_on.eq(waiting()))
                .filter(deliveries::webhook_id.eq(webhook_id))
                .filter(deliveries::status.eq(DeliveryStatus::Parked.as_str())),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Cancelled.as_str()),
            deliveries::completed_at.eq(Some(now)),
            deliveries::done_on.eq(now.date_naive()),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)
    }

    /// How many deliveries wait parked for this webhook to be switched back on.
    /// Deliveries of a webhook waiting to go out: pending (due or retrying) or parked.
    pub fn waiting_count(conn: &mut PgConnection, webhook_id: i64) -> QueryResult<i64> {
        deliveries::table
            .filter(deliveries::done_on.eq(waiting()))
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(
                deliveries::status
                    .eq_any([DeliveryStatus::Pending.as_str(), DeliveryStatus::Parked.as_str()]),
            )
            .count()
            .get_result(conn)
    }

    pub fn parked_count(conn: &mut PgConnection, webhook_id: i64) -> QueryResult<i64> {
        deliveries::table
            .filter(deliveries::done_on.eq(waiting()))
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::status.eq(DeliveryStatus::Parked.as_str()))
            .count()
            .get_result(conn)
    }

    /// Deletes every delivery of a webhook with its attempts (the webhook is being deleted,
    /// and locked); returns how many were still waiting to be sent.
    pub fn delete_of_webhook(conn: &mut PgConnection, webhook_id: i64) -> QueryResult<i64> {
        let waiting: i64 = deliveries::table
            .filter(deliveries::done_on.eq(waiting()))
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(
                deliveries::status
                    .eq_any([DeliveryStatus::Pending.as_str(), DeliveryStatus::Parked.as_str()]),
            )
            .count()
            .get_result(conn)?;
        // No foreign keys cascade here (migration checked_by_writers): the attempts go
        // first, found through their deliveries.
        diesel::delete(
            delivery_attempts::table.filter(
                delivery_attempts::delivery_id.eq_any(
                    deliveries::table
                        .filter(deliveries::webhook_id.eq(webhook_id))
                        .select(deliveries::id),
                ),
            ),
        )
        .execute(conn)?;
        diesel::delete(deliveries::table.filter(deliveries::webhook_id.eq(webhook_id))).execute(conn)?;
        Ok(waiting)
    }

    /// After a webhook was switched to ordered (or back): its deliveries still waiting
    /// (pending or parked) take their event's ordering key (or lose it), so the new order
    /// holds for them too.
    pub fn set_ordering_of_waiting(
        conn: &mut PgConnection,
        webhook_id: i64,
        ordered: bool,
    ) -> QueryResult<usize> {
        let statement = if ordered {
            "UPDATE deliveries_waiting d SET ordering_key = e.ordering_key FROM events e
             WHERE d.webhook_id = $1 AND d.status IN ('pending', 'parked')
               AND e.id = d.event_id AND e.ordering_key IS NOT NULL"
        } else {
            "UPDATE deliveries_waiting SET ordering_key = NULL
             WHERE webhook_id = $1 AND status IN ('pending', 'parked') AND ordering_key IS NOT NULL"
        };
        diesel::sql_query(statement)
            .bind::<BigInt, _>(webhook_id)
            .execute(conn)
    }

    /// How many ordering keys of an ordered webhook have deliveries held back: waiting
    /// behind an earlier delivery of their key that has not gone out yet.
    pub fn held_keys(conn: &mut PgConnection, webhook_id: i64) -> QueryResult<i64> {
        #[derive(QueryableByName)]
        struct Held {
            #[diesel(sql_type = BigInt)]
            keys: i64,
        }
        prepared(
            "SELECT count(*) AS keys FROM (
                 SELECT ordering_key FROM deliveries_waiting
                 WHERE webhook_id = $1 AND status = 'pending' AND ordering_key IS NOT NULL
                 GROUP BY ordering_key HAVING count(*) > 1
             ) held",
        )
        .bind::<BigInt, _>(webhook_id)
        .get_result::<Held>(conn)
        .map(|held| held.keys)
    }

    /// Attempts of the last 24 hours by hour, oldest first, every hour present.
    pub fn health(
        conn: &mut PgConnection,
        webhook_id: i64,
        now: DateTime<Utc>,
    ) -> QueryResult<Vec<HourHealth>> {
        let current_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let since = current_hour - Duration::hours(23);
        // Kept per hour by a trigger on delivery_attempts (migration webhook_hours).
        let rows: Vec<HourRow> = prepared(
            "SELECT hour, succeeded, failed FROM webhook_hours WHERE webhook_id = $1 AND hour >= $2",
        )
        .bind::<Int8, _>(webhook_id)
        .bind::<Timestamptz, _>(since)
        .load(conn)?;
        Ok((0..24)
            .map(|i| {
                let hour = since + Duration::hours(i);
                let row = rows.iter().find(|r| r.hour == hour);
                HourHealth {
                    hour,
                    succeeded: row.map_or(0, |r| r.succeeded),
                    failed: row.map_or(0, |r| r.failed),
                }
            })
            .collect())
    }
}

#[derive(QueryableByName)]
struct QueueRow {
    #[diesel(sql_type = BigInt)]
    due: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest: f64,
    #[diesel(sql_type = BigInt)]
    parked: i64,
}

/// The queue as `/metrics` shows it: due now, the age of the oldest due, parked.
pub fn queue_gauges(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<crate::metrics::QueueGauges> {
    let row: QueueRow = prepared(
        "SELECT count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= $1) AS due,
                COALESCE(EXTRACT(EPOCH FROM $1 - min(next_attempt_at) FILTER (WHERE status = 'pending' AND next_attempt_at <= $1)), 0)::float8 AS oldest,
                count(*) FILTER (WHERE status = 'parked') AS parked
         FROM deliveries_waiting WHERE status IN ('pending', 'parked')",
    )
    .bind::<Timestamptz, _>(now)
    .get_result(conn)?;
    Ok(crate::metrics::QueueGauges {
        due: row.due,
        oldest_due_seconds: row.oldest,
        parked: row.parked,
    })
}

/// Wakes the dispatchers (delivered when the surrounding transaction commits).
pub fn notify(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("NOTIFY {NOTIFY_CHANNEL}"))
        .execute(conn)
        .map(drop)
}
