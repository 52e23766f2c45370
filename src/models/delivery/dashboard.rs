//! What the operations dashboard reads of deliveries, each bounded by the scope's webhooks
//! (at most 100) and an index: the backlog through `deliveries_due_by_webhook_idx`, the
//! pending deliveries of the charts with a limit per webhook, the last error through
//! `deliveries_webhook_status_log_idx`. Nothing here scans a webhook's history.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};

use super::Delivery;
use crate::db::prepared::prepared;

/// The waiting deliveries of one webhook.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Backlog {
    #[diesel(sql_type = BigInt)]
    pub webhook_id: i64,
    /// Pending deliveries whose time has come (being sent, or waiting for a lane).
    #[diesel(sql_type = BigInt)]
    pub due: i64,
    /// Since when the longest-waiting due delivery has been due.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub oldest_due: Option<DateTime<Utc>>,
    /// The earliest next attempt of any pending delivery (a retry may lie ahead).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_attempt: Option<DateTime<Utc>>,
}

/// Pending deliveries created in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct PendingHour {
    #[diesel(sql_type = Timestamptz)]
    pub hour: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
}

/// The error of a webhook's latest failed delivery.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct LastError {
    #[diesel(sql_type = BigInt)]
    pub webhook_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
}

impl Delivery {
    /// The backlog of each of these webhooks that has pending deliveries, read from the
    /// partial index of pending deliveries by webhook and time.
    pub fn backlogs(
        conn: &mut PgConnection,
        webhook_ids: &[i64],
        now: DateTime<Utc>,
    ) -> QueryResult<Vec<Backlog>> {
        prepared(
            "SELECT webhook_id,
                    count(*) FILTER (WHERE next_attempt_at <= $2) AS due,
                    min(next_attempt_at) FILTER (WHERE next_attempt_at <= $2) AS oldest_due,
                    min(next_attempt_at) AS next_attempt
             FROM deliveries_waiting
             WHERE webhook_id = ANY($1) AND status = 'pending'
             GROUP BY webhook_id",
        )
        .bind::<Array<BigInt>, _>(webhook_ids)
        .bind::<Timestamptz, _>(now)
        .load(conn)
    }

    /// Deliveries of these webhooks created since `since` and still pending, by UTC hour
    /// of creation; at most `per_webhook` of each webhook are counted, so a huge backlog
    /// costs no more than that.
    pub fn pending_by_hour(
        conn: &mut PgConnection,
        webhook_ids: &[i64],
        since: DateTime<Utc>,
        per_webhook: i64,
    ) -> QueryResult<Vec<PendingHour>> {
        if webhook_ids.is_empty() {
            return Ok(Vec::new());
        }
        prepared(
            "SELECT date_trunc('hour', p.created_at, 'UTC') AS hour, count(*) AS pending
             FROM unnest($1::int8[]) AS w(id)
             CROSS JOIN LATERAL (
                 SELECT d.created_at FROM deliveries_waiting d
                 WHERE d.webhook_id = w.id AND d.status = 'pending' AND d.created_at >= $2
                 LIMIT $3
             ) p
             GROUP BY 1 ORDER BY 1",
        )
        .bind::<Array<BigInt>, _>(webhook_ids)
        .bind::<Timestamptz, _>(since)
        .bind::<BigInt, _>(per_webhook)
        .load(conn)
    }

    /// The last error of each of these webhooks' latest failed delivery (one index probe
    /// per webhook); webhooks without a failed delivery are absent. Without webhooks it
    /// asks nothing: PostgreSQL would plan the statement anew for an empty list every time
    /// (a plan for no rows is cheaper than the one it keeps for any list).
    pub fn last_errors(conn: &mut PgConnection, webhook_ids: &[i64]) -> QueryResult<Vec<LastError>> {
        if webhook_ids.is_empty() {
            return Ok(Vec::new());
        }
        prepared(
            "SELECT w.id AS webhook_id, l.last_error
             FROM unnest($1::int8[]) AS w(id)
             CROSS JOIN LATERAL (
                 SELECT d.last_error FROM deliveries d
                 WHERE d.webhook_id = w.id AND d.status = 'failed'
                 ORDER BY d.id DESC LIMIT 1
             ) l",
        )
        .bind::<Array<BigInt>, _>(webhook_ids)
        .load(conn)
    }
}
