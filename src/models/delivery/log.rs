//! A webhook's delivery log: its filters, its pages (newest first, by keyset, with the
//! attempts of each delivery) and the whole filtered log for the Excel export.

use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};
use serde::{Deserialize, Serialize};

use super::{Attempt, Delivery, DeliveryStatus};
use crate::schema::{deliveries, delivery_attempts, events};

/// Deliveries on one page of a webhook's log.
pub const LOG_PAGE_SIZE: i64 = 25;
/// Characters of a request body a log page shows; the rest is loaded on demand, so a page
/// of large events stays small.
pub const BODY_PREVIEW_CHARS: i32 = 4096;

/// How much earlier than its delivery's creation, or later than its last write, an
/// attempt's start is still looked for, and how much earlier than its creation a delivery
/// may have finished: the database stamps a delivery's creation and the worker's clock its
/// attempts and the day it finished, and a day is one more partition to look in.
const CLOCK_MARGIN: chrono::Duration = chrono::Duration::days(1);

/// How many days before today a page of the log first looks for its deliveries, by the day
/// they finished (each day a partition, migration `deliveries_by_day`), before it looks
/// further back, and at last everywhere. What still waits to be sent is always looked at.
const LOG_REACH_DAYS: [u64; 2] = [2, 9];

/// Keeps a read of attempts to the days (partitions) attempts of deliveries created from
/// `created` and last written up to `updated` can have started on: an attempt starts after
/// its delivery was made, and is recorded in the statement that sets its delivery's
/// `updated_at` (later writes only move it on).
fn started_around(
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
) -> diesel::dsl::Between<delivery_attempts::started_at, DateTime<Utc>, DateTime<Utc>> {
    delivery_attempts::started_at.between(created - CLOCK_MARGIN, updated + CLOCK_MARGIN)
}

/// One delivery of the log, with its event and attempts.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub delivery: Delivery,
    pub event_type: String,
    /// The start of the body as sent (the event's, or the webhook's own when trimmed or
    /// localized): at most [`BODY_PREVIEW_CHARS`] characters.
    pub body_preview: String,
    /// The whole body's size in bytes.
    pub body_bytes: i64,
    pub attempts: Vec<Attempt>,
    /// For a delivery held back behind an earlier one of its ordering key: the event id of
    /// the delivery its key is waiting for (the earliest still to go out).
    pub waits_for: Option<String>,
}

impl LogEntry {
    /// Whether the preview is the whole body.
    pub fn body_is_whole(&self) -> bool {
        self.body_preview.len() as i64 >= self.body_bytes
    }
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
    pub fn outcome(&self) -> Option<DeliveryStatus> {
        self.outcome.parse().ok()
    }

    /// The first value that does not parse, as (query parameter, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.outcome.is_empty() {
            self.outcome
                .parse::<DeliveryStatus>()
                .map_err(|m| ("outcome", m))?;
        }
        if !self.before.trim().is_empty() && self.before().is_none() {
            return Err(("before", format!("`{}` is not a delivery id.", self.before)));
        }
        Ok(())
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

/// A page of the log, and the cursor of the next (older) page: none on the last page.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    pub next_before: Option<i64>,
}

/// The log's statements keep one generic plan each: see [`Delivery::log_page`].
const FORCE_GENERIC_PLAN: &str = "SET LOCAL plan_cache_mode = force_generic_plan";

/// A delivery with its event type, body preview and size, and when it was last written.
type LogRow = (Delivery, String, String, i32, DateTime<Utc>);

/// A delivery of a log page as read: with its event type, the start and size of its own
/// body (none when it sends its event's), and when it was last written.
type PageRow = (Delivery, String, Option<String>, Option<i32>, DateTime<Utc>);

// SQL functions as typed expressions, not SQL text: a query built from them keeps a static
// id, so diesel prepares it once per connection instead of at every page.
diesel::define_sql_function!(fn coalesce(own: Nullable<Text>, event: Text) -> Text);
diesel::define_sql_function!(fn left(text: Text, chars: Integer) -> Text);
diesel::define_sql_function!(fn octet_length(text: Text) -> Integer);
diesel::define_sql_function!(#[sql_name = "left"] fn left_of(text: Nullable<Text>, chars: Integer) -> Nullable<Text>);
diesel::define_sql_function!(#[sql_name = "octet_length"] fn octet_length_of(text: Nullable<Text>) -> Nullable<Integer>);

impl Delivery {
    /// A page of at most `limit` deliveries of a webhook made at `webhook_created`;
    /// `next_before` only when more follow (one more row is read to know), so a client is
    /// never sent to an empty page.
    ///
    /// Each day's finished deliveries are a partition (migration `deliveries_by_day`), and
    /// PostgreSQL plans a statement over every partition it may read (with their indexes,
    /// about 0.1 ms each), so the page first reads only what finished since a few days
    /// before `now` ([`LOG_REACH_DAYS`]) and what still waits, and reads further back only
    /// when that cannot be the whole page: when neither the webhook nor the page's last
    /// delivery was made after the days it read. Its one statement over the partitions is
    /// the export's ([`Delivery::for_each_in_log`]) with a bound; the events' bodies are read
    /// after it, from `events`.
    ///
    /// Its statements keep one generic plan each, which PostgreSQL prunes to the days read
    /// as it starts: planning them anew for every page, over the partitions left after
    /// pruning, cost the page twice as much.
    pub fn log_page(
        conn: &mut PgConnection,
        webhook: (i64, DateTime<Utc>),
        filter: &LogFilter,
        limit: i64,
        now: DateTime<Utc>,
    ) -> QueryResult<LogPage> {
        crate::db::transaction_with(conn, FORCE_GENERIC_PLAN, |conn| {
            Delivery::read_log_page(conn, webhook, filter, limit, now)
        })
    }

    /// Plans the statements of a log's first page on this connection, as [`Delivery::log_page`]
    /// keeps them, before any page is asked for: the pool runs it on each connection it
    /// opens (`db::connect_ready`). Their first plans load the catalog entries of every
    /// day's partition of deliveries and of attempts, about 30 ms in all, which would
    /// otherwise fall on the first page a connection serves. Each runs with a limit of no
    /// rows, so it reads none: a log of a webhook without deliveries would be read to its
    /// end.
    pub fn prepare_log(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<()> {
        crate::db::transaction_with(conn, FORCE_GENERIC_PLAN, |conn| {
            let today = now.date_naive();
            let default = LogFilter::default();
            for since in [Some(today), None] {
                Delivery::page_rows(conn, 0, &default, (since, today), 0)?;
            }
            Delivery::attempts_of(conn, Vec::new(), (now, now))?;
            Ok(())
        })
    }

    fn read_log_page(
        conn: &mut PgConnection,
        (webhook_id, webhook_created): (i64, DateTime<Utc>),
        filter: &LogFilter,
        limit: i64,
        now: DateTime<Utc>,
    ) -> QueryResult<LogPage> {
        let today = now.date_naive();
        // The days added ahead hold nothing yet (give or take the clocks).
        let until = today + Days::new(1);
        let mut reaches = LOG_REACH_DAYS
            .iter()
            .filter_map(|days| today.checked_sub_days(Days::new(*days)));
        let (mut rows, more) = loop {
            let since = reaches.next();
            let rows = Delivery::page_rows(conn, webhook_id, filter, (since, until), limit + 1)?;
            let more = rows.len() as i64 > limit;
            let Some(since) = since else {
                break (rows, more);
            };
            // What this read left out finished before `since`, so was made before it (give
            // or take the clocks), and has a lower id than anything made after.
            let made_after = |at: DateTime<Utc>| at >= super::days::midnight(since) + CLOCK_MARGIN;
            if made_after(webhook_created)
                || (more && rows.last().is_some_and(|row| made_after(row.0.created_at)))
            {
                break (rows, more);
            }
        };
        rows.truncate(limit as usize);
        let next_before = more.then(|| rows.last().map(|row| row.0.id)).flatten();
        let entries = Delivery::entries(conn, rows)?;
        Ok(LogPage { entries, next_before })
    }

    /// The newest `rows` deliveries of the log that finished from `since` to `until` or
    /// still wait, or of the whole log without `since`.
    fn page_rows(
        conn: &mut PgConnection,
        webhook_id: i64,
        filter: &LogFilter,
        (since, until): (Option<NaiveDate>, NaiveDate),
        rows: i64,
    ) -> QueryResult<Vec<PageRow>> {
        let mut query = Delivery::log_query(webhook_id, filter);
        if let Some(since) = since {
            query = query.filter(deliveries::done_on.ge(since)).filter(
                deliveries::done_on
                    .le(until)
                    .or(deliveries::done_on.eq(super::waiting())),
            );
        }
        query
            .order(deliveries::id.desc())
            .limit(rows)
            .select((
                Delivery::as_select(),
                deliveries::event_type,
                left_of(deliveries::body, BODY_PREVIEW_CHARS),
                octet_length_of(deliveries::body),
                deliveries::updated_at,
            ))
            .load(conn)
    }

    pub(super) fn log_query(
        webhook_id: i64,
        filter: &LogFilter,
    ) -> deliveries::BoxedQuery<'static, diesel::pg::Pg> {
        let mut query = deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .into_boxed();
        if let Some(outcome) = filter.outcome() {
            query = query.filter(deliveries::status.eq(outcome.as_str()));
        }
        if !filter.event.is_empty() {
            query = query.filter(deliveries::event_type.eq(filter.event.clone()));
        }
        if let Some(before) = filter.before() {
            query = query.filter(deliveries::id.lt(before));
        }
        query
    }

    /// The log's entries of these deliveries (newest first): with the start of the body
    /// each sends, its event's when it has none of its own, and their attempts.
    fn entries(conn: &mut PgConnection, rows: Vec<PageRow>) -> QueryResult<Vec<LogEntry>> {
        let (Some(oldest), Some(latest)) = (
            rows.iter().map(|row| row.0.created_at).min(),
            rows.iter().map(|row| row.4).max(),
        ) else {
            return Ok(Vec::new());
        };
        let mut of_events: Vec<&str> = rows
            .iter()
            .filter(|row| row.2.is_none())
            .map(|row| row.0.event_id.as_str())
            .collect();
        of_events.sort_unstable();
        of_events.dedup();
        let bodies: Vec<(String, String, i32)> = if of_events.is_empty() {
            Vec::new()
        } else {
            events::table
                .filter(events::id.eq_any(&of_events))
                .select((
                    events::id,
                    left(events::body, BODY_PREVIEW_CHARS),
                    octet_length(events::body),
                ))
                .load(conn)?
        };
        let rows: Vec<LogRow> = rows
            .into_iter()
            .map(|(delivery, event_type, own, own_bytes, updated)| {
                let (preview, bytes) = match own.zip(own_bytes) {
                    Some(body) => body,
                    None => bodies
                        .iter()
                        .find(|(event, ..)| *event == delivery.event_id)
                        .map(|(_, preview, bytes)| (preview.clone(), *bytes))
                        .unwrap_or_default(),
                };
                (delivery, event_type, preview, bytes, updated)
            })
            .collect();
        let ids: Vec<i64> = rows.iter().map(|row| row.0.id).collect();
        let mut attempts = Delivery::attempts_of(conn, ids, (oldest, latest))?;
        let heads = Delivery::heads_of(conn, &rows)?;
        Ok(rows
            .into_iter()
            .map(|(delivery, event_type, body_preview, body_bytes, _)| {
                let waiting = delivery.status == DeliveryStatus::Pending;
                let waits_for = delivery
                    .ordering_key
                    .as_ref()
                    .filter(|_| waiting)
                    .and_then(|key| {
                        heads
                            .iter()
                            .find(|(head_key, head_id, _)| head_key == key && *head_id < delivery.id)
                            .map(|(_, _, event_id)| event_id.clone())
                    });
                let (mine, rest): (Vec<Attempt>, Vec<Attempt>) =
                    attempts.drain(..).partition(|a| a.delivery_id == delivery.id);
                attempts = rest;
                LogEntry {
                    delivery,
                    event_type,
                    body_preview,
                    body_bytes: i64::from(body_bytes),
                    attempts: mine,
                    waits_for,
                }
            })
            .collect())
    }

    /// The attempts of these deliveries, made from `oldest` and last written up to
    /// `latest`, by delivery and newest first.
    fn attempts_of(
        conn: &mut PgConnection,
        ids: Vec<i64>,
        (oldest, latest): (DateTime<Utc>, DateTime<Utc>),
    ) -> QueryResult<Vec<Attempt>> {
        delivery_attempts::table
            .filter(delivery_attempts::delivery_id.eq_any(ids))
            .filter(started_around(oldest, latest))
            .order((
                delivery_attempts::delivery_id,
                delivery_attempts::attempt_number.desc(),
            ))
            .select(Attempt::as_select())
            .load(conn)
    }

    /// For the waiting ordered deliveries among `rows` (all of one webhook): the first
    /// delivery still waiting of each of their keys, as (key, delivery id, event id).
    fn heads_of(conn: &mut PgConnection, rows: &[LogRow]) -> QueryResult<Vec<(String, i64, String)>> {
        let mut keys: Vec<&str> = rows
            .iter()
            .filter(|(d, ..)| d.status == DeliveryStatus::Pending)
            .filter_map(|(d, ..)| d.ordering_key.as_deref())
            .collect();
        let Some((first, ..)) = rows.first() else {
            return Ok(Vec::new());
        };
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        keys.sort_unstable();
        keys.dedup();
        deliveries::table
            .filter(deliveries::done_on.eq(super::waiting()))
            .filter(deliveries::webhook_id.eq(first.webhook_id))
            .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str()))
            .filter(deliveries::ordering_key.eq_any(keys))
            .order((deliveries::ordering_key, deliveries::id))
            .distinct_on(deliveries::ordering_key)
            .select((
                deliveries::ordering_key.assume_not_null(),
                deliveries::id,
                deliveries::event_id,
            ))
            .load(conn)
    }

    /// The whole body a delivery of the tenant sends, loaded on demand from the log.
    pub fn body(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<String> {
        deliveries::table
            .inner_join(events::table.on(events::id.eq(deliveries::event_id)))
            .filter(deliveries::tenant_id.eq(tenant_id))
            .filter(deliveries::id.eq(id))
            // The body a delivery sends: its own (trimmed or localized) or its event's.
            .select(coalesce(deliveries::body, events::body))
            .first(conn)
    }

    /// One attempt of a delivery of the tenant, with its whole stored response.
    pub fn attempt(conn: &mut PgConnection, tenant_id: i64, id: i64, number: i32) -> QueryResult<Attempt> {
        let (created, updated): (DateTime<Utc>, DateTime<Utc>) = deliveries::table
            .filter(deliveries::tenant_id.eq(tenant_id))
            .filter(deliveries::id.eq(id))
            .select((deliveries::created_at, deliveries::updated_at))
            .first(conn)?;
        delivery_attempts::table
            .filter(delivery_attempts::delivery_id.eq(id))
            .filter(delivery_attempts::attempt_number.eq(number))
            .filter(started_around(created, updated))
            .select(Attempt::as_select())
            .first(conn)
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
}
