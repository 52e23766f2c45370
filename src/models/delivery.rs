//! Deliveries (one event to one webhook) and their attempts: the outbox the delivery
//! engine works through, and the log people read on the webhook page.

use chrono::{DateTime, Duration, DurationRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int8, Timestamptz};
use serde::{Deserialize, Serialize};

use super::event::{Envelope, Event, NewEvent, new_event_id, wire_time};
use super::event_type::EventType;
use super::tenant::Tenant;
use super::webhook::Webhook;
use crate::schema::{deliveries, delivery_attempts, events, webhooks};

/// The channel the dispatcher listens on; a notification means "new work is due".
pub const NOTIFY_CHANNEL: &str = "hookboard_deliveries";
/// Deliveries on one page of a webhook's log.
pub const LOG_PAGE_SIZE: i64 = 25;
/// Outcomes a delivery can have, in the order the log filter offers them.
pub const OUTCOMES: [&str; 5] = ["pending", "succeeded", "failed", "parked", "cancelled"];

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    pub id: i64,
    pub tenant_id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
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

impl Attempt {
    /// The stored start of the response, as text (binary bytes replaced).
    pub fn response_text(&self) -> String {
        self.response_body
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

/// One delivery of the log, with its event and attempts.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub delivery: Delivery,
    pub event_type: String,
    /// The body as sent (the event's, or the webhook's own when trimmed or localized).
    pub body: String,
    pub attempts: Vec<Attempt>,
}

/// The filters of a webhook's delivery log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogFilter {
    /// One of [`OUTCOMES`].
    pub outcome: String,
    /// An event code.
    pub event: String,
    /// Keyset pagination: deliveries older than this id.
    pub before: String,
}

impl LogFilter {
    pub fn outcome(&self) -> Option<&'static str> {
        OUTCOMES.into_iter().find(|o| *o == self.outcome)
    }

    pub fn before(&self) -> Option<i64> {
        self.before.trim().parse().ok()
    }

    pub fn query_before(&self, before: i64) -> String {
        let before = before.to_string();
        let pairs: Vec<(&str, &str)> = [
            ("outcome", self.outcome.as_str()),
            ("event", self.event.as_str()),
            ("before", &before),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    pub fn query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [("outcome", self.outcome.as_str()), ("event", self.event.as_str())]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
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

type LogRow = (Delivery, String, String, Option<String>);

impl Delivery {
    pub fn find(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<Delivery> {
        deliveries::table
            .filter(deliveries::tenant_id.eq(tenant_id))
            .filter(deliveries::id.eq(id))
            .select(Delivery::as_select())
            .first(conn)
    }

    fn log_query(webhook_id: i64, filter: &LogFilter) -> deliveries::BoxedQuery<'static, diesel::pg::Pg> {
        let mut query = deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .into_boxed();
        if let Some(outcome) = filter.outcome() {
            query = query.filter(deliveries::status.eq(outcome));
        }
        if !filter.event.is_empty() {
            query = query.filter(deliveries::event_type.eq(filter.event.clone()));
        }
        if let Some(before) = filter.before() {
            query = query.filter(deliveries::id.lt(before));
        }
        query
    }

    /// A page of a webhook's log, newest first, each delivery with its attempts.
    pub fn log(
        conn: &mut PgConnection,
        webhook_id: i64,
        filter: &LogFilter,
        limit: i64,
    ) -> QueryResult<Vec<LogEntry>> {
        let ids: Vec<i64> = Delivery::log_query(webhook_id, filter)
            .order(deliveries::id.desc())
            .limit(limit)
            .select(deliveries::id)
            .load(conn)?;
        Delivery::entries(conn, &ids)
    }

    /// The deliveries with these ids, newest first, with their event and attempts.
    fn entries(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<LogEntry>> {
        let rows: Vec<LogRow> = deliveries::table
            .inner_join(events::table.on(events::id.eq(deliveries::event_id)))
            .filter(deliveries::id.eq_any(ids))
            .order(deliveries::id.desc())
            .select((
                Delivery::as_select(),
                events::event_type,
                events::body,
                deliveries::body,
            ))
            .load(conn)?;
        let mut attempts: Vec<Attempt> = delivery_attempts::table
            .filter(delivery_attempts::delivery_id.eq_any(ids))
            .order((
                delivery_attempts::delivery_id,
                delivery_attempts::attempt_number.desc(),
            ))
            .select(Attempt::as_select())
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(delivery, event_type, event_body, own_body)| {
                let (mine, rest): (Vec<Attempt>, Vec<Attempt>) =
                    attempts.drain(..).partition(|a| a.delivery_id == delivery.id);
                attempts = rest;
                LogEntry {
                    delivery,
                    event_type,
                    body: own_body.unwrap_or(event_body),
                    attempts: mine,
                }
            })
            .collect())
    }

    /// Every delivery of the filtered log with its event type (no bodies, no attempts),
    /// newest first, in keyset batches: the Excel export, in flat memory.
    pub fn for_each_in_log(
        conn: &mut PgConnection,
        webhook_id: i64,
        filter: &LogFilter,
        mut each: impl FnMut(&Delivery, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        const BATCH: i64 = 5000;
        let mut filter = filter.clone();
        loop {
            let rows: Vec<(Delivery, String)> = Delivery::log_query(webhook_id, &filter)
                .order(deliveries::id.desc())
                .limit(BATCH)
                .select((Delivery::as_select(), deliveries::event_type))
                .load(conn)?;
            for (delivery, event_type) in &rows {
                each(delivery, event_type)?;
            }
            match rows.last() {
                Some((last, _)) if rows.len() as i64 == BATCH => filter.before = last.id.to_string(),
                _ => return Ok(()),
            }
        }
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
                        .or(deliveries::status.ne("pending")),
                ),
        )
        .set((
            deliveries::status.eq("pending"),
            deliveries::next_attempt_at.eq(now),
            deliveries::completed_at.eq(None::<DateTime<Utc>>),
            deliveries::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .optional()?;
        match delivery {
            Some(delivery) => {
                notify(conn)?;
                Ok(delivery)
            }
            // Being attempted right now: it is already on its way.
            None => Delivery::find(conn, tenant_id, id),
        }
    }

    /// Publishes the catalog example of `event_type` to this one webhook.
    pub fn send_test(
        conn: &mut PgConnection,
        tenant: &Tenant,
        webhook: &Webhook,
        event_type: &EventType,
        now: DateTime<Utc>,
    ) -> QueryResult<(Event, Delivery)> {
        conn.transaction(|conn| {
            // The webhook's row first, locked with its count, so that it cannot be deleted
            // before the delivery is written (no foreign key checks that: migration
            // checked_by_writers).
            let counted = diesel::update(webhooks::table.find(webhook.id))
                .set(webhooks::event_count.eq(webhooks::event_count + 1))
                .execute(conn)?;
            if counted == 0 {
                return Err(diesel::result::Error::NotFound);
            }
            let id = new_event_id(now);
            let connection: Option<String> = match webhook.connection_id {
                Some(connection_id) => Some(
                    crate::schema::connections::table
                        .find(connection_id)
                        .select(crate::schema::connections::external_id)
                        .first(conn)?,
                ),
                None => None,
            };
            let body = Envelope {
                id: &id,
                kind: &event_type.code,
                timestamp: wire_time(now),
                tenant: &tenant.slug,
                connection: connection.as_deref(),
                data: &event_type.example_payload,
            }
            .to_body();
            let event = Event::insert(
                conn,
                NewEvent {
                    id: &id,
                    tenant_id: tenant.id,
                    event_type: &event_type.code,
                    connection_id: webhook.connection_id,
                    language: None,
                    occurred_at: now,
                    idempotency_key: None,
                    body: &body,
                },
            )?;
            let delivery = diesel::insert_into(deliveries::table)
                .values(NewDelivery {
                    tenant_id: tenant.id,
                    webhook_id: webhook.id,
                    event_id: &event.id,
                    event_type: &event_type.code,
                    status: "pending",
                    next_attempt_at: now,
                })
                .returning(Delivery::as_returning())
                .get_result(conn)?;
            notify(conn)?;
            Ok((event, delivery))
        })
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
        let rows: Vec<HourRow> = diesel::sql_query(
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

/// Deletes what is older than the retention: attempts, finished deliveries, and events
/// no delivery waits for any more. Returns the attempts deleted.
pub fn clean_up(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let attempts = diesel::delete(delivery_attempts::table.filter(delivery_attempts::started_at.lt(before))).execute(conn)?;
        diesel::sql_query("DELETE FROM webhook_hours WHERE hour < $1")
            .bind::<Timestamptz, _>(before)
            .execute(conn)?;
        // Their attempts started before they completed, so the first statement took them;
        // any left (a clock set back between the two) go with them, as no foreign key
        // cascades (migration checked_by_writers).
        diesel::sql_query(
            "WITH gone AS (
                 DELETE FROM deliveries
                 WHERE status IN ('succeeded', 'failed', 'cancelled') AND completed_at < $1
                 RETURNING id
             )
             DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM gone)",
        )
        .bind::<Timestamptz, _>(before)
        .execute(conn)?;
        diesel::sql_query(
            "DELETE FROM events e WHERE e.created_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)",
        )
        .bind::<Timestamptz, _>(before)
        .execute(conn)?;
        Ok(attempts)
    })
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
    let row: QueueRow = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= $1) AS due,
                COALESCE(EXTRACT(EPOCH FROM $1 - min(next_attempt_at) FILTER (WHERE status = 'pending' AND next_attempt_at <= $1)), 0)::float8 AS oldest,
                count(*) FILTER (WHERE status = 'parked') AS parked
         FROM deliveries WHERE status IN ('pending', 'parked')",
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
