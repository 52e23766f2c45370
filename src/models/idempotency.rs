//! Remembered answers to API POSTs sent with an `Idempotency-Key` header (24 hours).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::db::prepared::prepared;
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

/// The `status` of a key whose first request is still being answered.
pub const IN_PROGRESS: i32 = 0;
/// A key held "in progress" longer than this was left by a process that died mid-request;
/// the next request with it may take it over.
pub const ABANDONED_AFTER_SECONDS: i64 = 60;

/// What a POST with an `Idempotency-Key` may do.
#[derive(Debug)]
pub enum Reservation {
    /// This request holds the key: answer it, then [`StoredAnswer::finish`] or
    /// [`StoredAnswer::release`].
    Mine,
    /// An earlier request was answered; replay its answer (when the request is the same).
    Answered(StoredAnswer),
    /// An earlier request with this key is being answered right now.
    InProgress { request_hash: String },
}

impl StoredAnswer {
    /// Takes the key for this request, atomically: of two requests sent at the same moment
    /// with the same key, only one is answered; the other learns it is in progress. A key
    /// older than 24 hours, or abandoned in progress, is taken over.
    pub fn reserve(
        conn: &mut PgConnection,
        tenant_id: i64,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<Reservation> {
        use diesel::sql_types::{BigInt, Integer, Text, Timestamptz};
        let taken = prepared(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, body, created_at)
             VALUES ($1, $2, $3, $4, '', $5)
             ON CONFLICT (tenant_id, key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
                     body = '', created_at = EXCLUDED.created_at
                 WHERE idempotency_keys.created_at <= $6
                    OR (idempotency_keys.status = $4 AND idempotency_keys.created_at <= $7)",
        )
        .bind::<BigInt, _>(tenant_id)
        .bind::<Text, _>(key)
        .bind::<Text, _>(request_hash)
        .bind::<Integer, _>(IN_PROGRESS)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(now - Duration::hours(KEEP_HOURS))
        .bind::<Timestamptz, _>(now - Duration::seconds(ABANDONED_AFTER_SECONDS))
        .execute(conn)?;
        if taken == 1 {
            return Ok(Reservation::Mine);
        }
        let held: Option<StoredAnswer> = idempotency_keys::table
            .filter(idempotency_keys::tenant_id.eq(tenant_id))
            .filter(idempotency_keys::key.eq(key))
            .select(StoredAnswer::as_select())
            .first(conn)
            .optional()?;
        Ok(match held {
            Some(answer) if answer.status != IN_PROGRESS => Reservation::Answered(answer),
            Some(answer) => Reservation::InProgress {
                request_hash: answer.request_hash,
            },
            // Released between the two statements: the holder failed; so may this one.
            None => Reservation::InProgress {
                request_hash: request_hash.to_owned(),
            },
        })
    }

    /// Keeps the answer of the request that holds the key.
    pub fn finish(conn: &mut PgConnection, answer: &StoredAnswer) -> QueryResult<()> {
        diesel::update(
            idempotency_keys::table
                .filter(idempotency_keys::tenant_id.eq(answer.tenant_id))
                .filter(idempotency_keys::key.eq(&answer.key))
                .filter(idempotency_keys::request_hash.eq(&answer.request_hash))
                .filter(idempotency_keys::status.eq(IN_PROGRESS)),
        )
        .set((
            idempotency_keys::status.eq(answer.status),
            idempotency_keys::body.eq(&answer.body),
        ))
        .execute(conn)
        .map(drop)
    }

    /// Gives the key back unanswered (the request failed on our side), so a retry runs.
    pub fn release(
        conn: &mut PgConnection,
        tenant_id: i64,
        key: &str,
        request_hash: &str,
    ) -> QueryResult<()> {
        diesel::delete(
            idempotency_keys::table
                .filter(idempotency_keys::tenant_id.eq(tenant_id))
                .filter(idempotency_keys::key.eq(key))
                .filter(idempotency_keys::request_hash.eq(request_hash))
                .filter(idempotency_keys::status.eq(IN_PROGRESS)),
        )
        .execute(conn)
        .map(drop)
    }
}
