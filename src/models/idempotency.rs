//! Remembered answers to API POSTs sent with an `Idempotency-Key` header (24 hours).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::schema::idempotency_keys;

/// How long a key's first answer is replayed.
pub const KEEP_HOURS: i64 = 24;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys, check_for_backend(diesel::pg::Pg))]
pub struct StoredAnswer {
    pub tenant_id: i64,
    pub key: String,
    pub request_hash: String,
    pub status: i32,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl StoredAnswer {
    /// The answer kept for `key`, if it is younger than 24 hours.
    pub fn find(
        conn: &mut PgConnection,
        tenant_id: i64,
        key: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<Option<StoredAnswer>> {
        idempotency_keys::table
            .filter(idempotency_keys::tenant_id.eq(tenant_id))
            .filter(idempotency_keys::key.eq(key))
            .filter(idempotency_keys::created_at.gt(now - Duration::hours(KEEP_HOURS)))
            .select(StoredAnswer::as_select())
            .first(conn)
            .optional()
    }

    /// Keeps the first answer; an expired one under the same key is replaced.
    pub fn keep(conn: &mut PgConnection, answer: &StoredAnswer) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Text, Timestamptz};
        diesel::sql_query(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
                     body = EXCLUDED.body, created_at = EXCLUDED.created_at
                 WHERE idempotency_keys.created_at <= $7",
        )
        .bind::<BigInt, _>(answer.tenant_id)
        .bind::<Text, _>(&answer.key)
        .bind::<Text, _>(&answer.request_hash)
        .bind::<Integer, _>(answer.status)
        .bind::<Text, _>(&answer.body)
        .bind::<Timestamptz, _>(answer.created_at)
        .bind::<Timestamptz, _>(answer.created_at - Duration::hours(KEEP_HOURS))
        .execute(conn)
        .map(drop)
    }
}
