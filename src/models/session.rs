//! Server-side sessions. Rows are keyed by the SHA-256 of the cookie's session key and
//! carry the user id, so every session of a user can be ended at once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::sessions;

#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = sessions)]
pub struct SessionRow<'a> {
    pub key_hash: &'a str,
    pub user_id: Option<i64>,
    pub state: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

/// Queries on the `sessions` table.
pub struct Sessions;

impl Sessions {
    /// The state of a session that has not expired.
    pub fn load(
        conn: &mut PgConnection,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<Option<serde_json::Value>> {
        sessions::table
            .filter(sessions::key_hash.eq(key_hash))
            .filter(sessions::expires_at.gt(now))
            .select(sessions::state)
            .first(conn)
            .optional()
    }

    pub fn insert(conn: &mut PgConnection, row: &SessionRow<'_>) -> QueryResult<usize> {
        diesel::insert_into(sessions::table).values(row).execute(conn)
    }

    /// Replaces the state; answers 0 when the session is gone (revoked or expired).
    pub fn update(conn: &mut PgConnection, row: &SessionRow<'_>) -> QueryResult<usize> {
        diesel::update(sessions::table.find(row.key_hash))
            .set((row, sessions::last_seen_at.eq(diesel::dsl::now)))
            .execute(conn)
    }

    pub fn extend(conn: &mut PgConnection, key_hash: &str, expires_at: DateTime<Utc>) -> QueryResult<usize> {
        diesel::update(sessions::table.find(key_hash))
            .set((
                sessions::expires_at.eq(expires_at),
                sessions::last_seen_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
    }

    pub fn delete(conn: &mut PgConnection, key_hash: &str) -> QueryResult<usize> {
        diesel::delete(sessions::table.find(key_hash)).execute(conn)
    }

    /// Ends every session of a user: logout everywhere, disabling, a password change.
    pub fn delete_for_user(conn: &mut PgConnection, user_id: i64) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
    }

    pub fn purge_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)
    }

    pub fn count_for_user(conn: &mut PgConnection, user_id: i64) -> QueryResult<i64> {
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .count()
            .get_result(conn)
    }
}
