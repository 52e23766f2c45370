//! Alerts: a webhook's changes of state (failing, switched off automatically, recovered),
//! written by the delivery worker with the results that caused them. Each is the outbox of
//! its own follow-ups: an operational event (`published_at`) and a mail to the tenant's
//! recipients (`mail_due_at` until `mailed_at`), each taken with `FOR UPDATE SKIP LOCKED`
//! so several processes share them. The bell of the pages reads them too.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};

use crate::db::prepared::prepared;
use crate::schema::alerts;

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = alerts, check_for_backend(Pg))]
pub struct Alert {
    pub id: i64,
    pub tenant_id: i64,
    pub webhook_id: i64,
    pub webhook_number: i32,
    pub url: String,
    pub connection_id: Option<i64>,
    /// `failing`, `disabled` or `recovered`.
    pub kind: String,
    pub reason: String,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub mail_due_at: Option<DateTime<Utc>>,
    pub mail_attempts: i32,
    pub mail_error: Option<String>,
    pub mailed_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// The endpoint's host, as subjects name it.
    pub fn host(&self) -> String {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.url.clone())
    }

    /// "is failing", "was switched off", "has recovered".
    pub fn headline(&self) -> &'static str {
        match self.kind.as_str() {
            "failing" => "is failing",
            "disabled" => "was disabled automatically",
            _ => "has recovered",
        }
    }
}

/// An alert to raise.
pub struct Raised {
    pub tenant_id: i64,
    pub webhook_id: i64,
    pub webhook_number: i32,
    pub url: String,
    pub connection_id: Option<i64>,
    pub kind: &'static str,
    /// The webhook's alert state after it: `ok`, `failing` or `disabled`.
    pub state: &'static str,
    pub reason: String,
    pub consecutive_failures: i32,
}

/// Writes alerts and the webhooks' new alert states, in the caller's transaction. A mail is
/// due at once; whether it goes (recipients, SMTP) is the sender's question.
pub fn raise(conn: &mut PgConnection, raised: &[Raised], now: DateTime<Utc>) -> QueryResult<usize> {
    if raised.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "UPDATE webhooks w SET alert_state = v.state
         FROM unnest($1::bigint[], $2::text[]) AS v(id, state) WHERE w.id = v.id",
    )
    .bind::<Array<BigInt>, _>(raised.iter().map(|r| r.webhook_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(raised.iter().map(|r| r.state).collect::<Vec<_>>())
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO alerts (tenant_id, webhook_id, webhook_number, url, connection_id, kind, reason,
                             consecutive_failures, created_at, mail_due_at)
         SELECT v.tenant_id, v.webhook_id, v.number, v.url, v.connection_id, v.kind, v.reason, v.failures, $9, $9
         FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::int[])
             AS v(tenant_id, webhook_id, number, url, connection_id, kind, reason, failures)",
    )
    .bind::<Array<BigInt>, _>(raised.iter().map(|r| r.tenant_id).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(raised.iter().map(|r| r.webhook_id).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(raised.iter().map(|r| r.webhook_number).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(raised.iter().map(|r| r.url.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(raised.iter().map(|r| r.connection_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(raised.iter().map(|r| r.kind).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(raised.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(raised.iter().map(|r| r.consecutive_failures).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(now)
    .execute(conn)
}

/// The oldest alerts whose operational event is not published yet, locked (others skip
/// them) until the caller's transaction ends.
pub fn take_unpublished(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<Alert>> {
    alerts::table
        .filter(alerts::published_at.is_null())
        .order(alerts::id)
        .limit(limit)
        .select(Alert::as_select())
        .for_update()
        .skip_locked()
        .load(conn)
}

pub fn mark_published(conn: &mut PgConnection, id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(alerts::table.find(id))
        .set(alerts::published_at.eq(now))
        .execute(conn)
}

/// Claims alerts whose mail is due, with a lease: a sender that dies leaves them to be
/// taken again once it runs out.
pub fn claim_mail(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Alert>> {
    prepared(
        "UPDATE alerts SET mail_claimed_until = $2
         WHERE id = ANY(ARRAY(
             SELECT id FROM alerts
             WHERE mail_due_at <= $1 AND (mail_claimed_until IS NULL OR mail_claimed_until < $1)
             ORDER BY mail_due_at LIMIT $3
             FOR UPDATE SKIP LOCKED))
         RETURNING id, tenant_id, webhook_id, webhook_number, url, connection_id, kind, reason,
                   consecutive_failures, created_at, published_at, mail_due_at, mail_attempts,
                   mail_error, mailed_at",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(lease_until)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// The mail went out (`error` None), or is tried again at `retry_at`, or is given up
/// (`retry_at` None with an error: no recipients, mail switched off, or too old).
pub fn mail_done(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> QueryResult<usize> {
    let sent = error.is_none();
    diesel::update(alerts::table.find(id))
        .set((
            alerts::mail_attempts.eq(alerts::mail_attempts + 1),
            alerts::mail_claimed_until.eq(None::<DateTime<Utc>>),
            alerts::mail_due_at.eq(retry_at),
            alerts::mail_error.eq(error),
            alerts::mailed_at.eq(sent.then_some(now)),
        ))
        .execute(conn)
}

/// Deletes the alerts raised before `before` (the retention's limit) that are settled:
/// their operational event published, their mail sent or given up. The bell and `/alerts`
/// keep what the delivery history they point to still shows. A few rows per webhook and
/// change of state: one statement.
pub fn clean_up(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(
        alerts::table
            .filter(alerts::created_at.lt(before))
            .filter(alerts::published_at.is_not_null())
            .filter(alerts::mail_due_at.is_null()),
    )
    .execute(conn)
}

/// The latest alerts of a tenant (of one connection's webhooks for a partner).
pub fn recent(
    conn: &mut PgConnection,
    tenant_id: i64,
    connection_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Alert>> {
    let mut query = alerts::table.filter(alerts::tenant_id.eq(tenant_id)).into_boxed();
    if let Some(id) = connection_id {
        query = query.filter(alerts::connection_id.eq(id));
    }
    query
        .order(alerts::id.desc())
        .limit(limit)
        .select(Alert::as_select())
        .load(conn)
}
