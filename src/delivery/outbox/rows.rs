//! The statements a publish writes with: the events and deliveries of a batch (one
//! prepared statement each, whatever the batch size), the webhooks locked before their
//! deliveries are written, and their counters.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};

use crate::db::prepared::prepared;
use crate::delivery::filtering::Tally;

pub(super) struct EventRow<'a> {
    pub(super) id: String,
    pub(super) event_type: &'a str,
    pub(super) connection_id: Option<i64>,
    pub(super) language: Option<&'a str>,
    pub(super) occurred_at: DateTime<Utc>,
    pub(super) idempotency_key: Option<&'a str>,
    pub(super) ordering_key: Option<&'a str>,
    pub(super) body: String,
}

pub(super) struct DeliveryRow {
    pub(super) webhook_id: i64,
    pub(super) event_id: String,
    pub(super) event_type: String,
    pub(super) status: &'static str,
    pub(super) body: Option<String>,
    /// The event's ordering key, for an ordered webhook only.
    pub(super) ordering_key: Option<String>,
}

/// Writes the events of a batch: one prepared statement, whatever the batch size.
pub(super) fn insert_events(
    conn: &mut PgConnection,
    tenant_id: i64,
    rows: &[EventRow<'_>],
) -> QueryResult<usize> {
    prepared("INSERT INTO events (id, tenant_id, event_type, connection_id, language, occurred_at, idempotency_key, body, ordering_key)
             SELECT v.id, $1, v.event_type, v.connection_id, v.language, v.occurred_at, v.idempotency_key, v.body, v.ordering_key
             FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[])
                 AS v(id, event_type, connection_id, language, occurred_at, idempotency_key, body, ordering_key)")
        .bind::<BigInt, _>(tenant_id)
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.event_type).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.connection_id).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.language).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.idempotency_key).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.ordering_key).collect::<Vec<_>>())
    .execute(conn)
}

/// Writes the deliveries of a batch, all due at `now`: one prepared statement.
pub(super) fn insert_deliveries(
    conn: &mut PgConnection,
    tenant_id: i64,
    rows: &[DeliveryRow],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    prepared(
        "INSERT INTO deliveries_waiting (tenant_id, webhook_id, event_id, event_type, status, body, next_attempt_at, ordering_key)
             SELECT $1, v.webhook_id, v.event_id, v.event_type, v.status, v.body, $2, v.ordering_key
             FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                 AS v(webhook_id, event_id, event_type, status, body, ordering_key)",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Timestamptz, _>(now)
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.webhook_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.event_type.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.body.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.ordering_key.as_deref()).collect::<Vec<_>>())
    .execute(conn)
}

/// Locks webhook rows, in id order as every writer locks them (no deadlocks), until the
/// transaction ends. Returns the ids of those that still exist.
pub(super) fn lock_webhooks(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let locked: Vec<Locked> =
        prepared("SELECT id FROM webhooks WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind::<Array<BigInt>, _>(ids)
            .load(conn)?;
    Ok(locked.into_iter().map(|l| l.id).collect())
}

/// Adds a batch's counts to its webhooks in one statement: events fanned out, events
/// their filters skipped and failed on, with the last failure (at `now`).
pub(super) fn add_counts(
    conn: &mut PgConnection,
    per_webhook: &[(i64, Tally)],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    if per_webhook.is_empty() {
        return Ok(0);
    }
    prepared(
        "UPDATE webhooks w SET event_count = w.event_count + v.events,
             filtered_count = w.filtered_count + v.skipped,
             filter_error_count = w.filter_error_count + v.errors,
             filter_last_error = COALESCE(v.last_error, w.filter_last_error),
             filter_last_error_at = CASE WHEN v.last_error IS NULL THEN w.filter_last_error_at ELSE $1 END
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
             AS v(id, events, skipped, errors, last_error)
         WHERE w.id = v.id",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<Array<BigInt>, _>(per_webhook.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(per_webhook.iter().map(|(_, t)| t.events).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(per_webhook.iter().map(|(_, t)| t.skipped).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(per_webhook.iter().map(|(_, t)| t.errors).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(
        per_webhook
            .iter()
            .map(|(_, t)| t.last_error.as_deref())
            .collect::<Vec<_>>(),
    )
    .execute(conn)
}
