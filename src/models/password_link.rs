//! One-time set-password links: a user created or reset by an operator chooses their own
//! password through one, so the operator never knows it. Only the SHA-256 of the token is
//! stored; the token itself is shown once, to the operator who asked for it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{random_hex, token_hash};
use crate::schema::password_links;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = password_links, check_for_backend(diesel::pg::Pg))]
pub struct PasswordLink {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub created_by_user_id: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = password_links)]
struct NewPasswordLink<'a> {
    user_id: i64,
    token_hash: &'a str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    created_by_user_id: Option<i64>,
}

impl PasswordLink {
    /// Creates a link for `user_id` valid until `expires_at`, and returns it with the token,
    /// which is never readable again. Earlier unused links of the user stop working.
    pub fn issue(
        conn: &mut PgConnection,
        user_id: i64,
        created_by: Option<i64>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> QueryResult<(PasswordLink, String)> {
        diesel::delete(
            password_links::table
                .filter(password_links::user_id.eq(user_id))
                .filter(password_links::used_at.is_null()),
        )
        .execute(conn)?;
        let token = random_hex(32);
        let link = diesel::insert_into(password_links::table)
            .values(NewPasswordLink {
                user_id,
                token_hash: &token_hash(&token),
                created_at: now,
                expires_at,
                created_by_user_id: created_by,
            })
            .returning(PasswordLink::as_returning())
            .get_result(conn)?;
        Ok((link, token))
    }

    /// The unused, unexpired link of `token`, if any.
    pub fn find_usable(
        conn: &mut PgConnection,
        token: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<Option<PasswordLink>> {
        // Outside a transaction the lock ends with the statement: a plain read.
        Self::lock_usable(conn, token, now)
    }

    /// As [`Self::find_usable`], locking the row until the transaction ends, so two uses
    /// of one link cannot both succeed.
    pub fn lock_usable(
        conn: &mut PgConnection,
        token: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<Option<PasswordLink>> {
        password_links::table
            .filter(password_links::token_hash.eq(token_hash(token)))
            .filter(password_links::used_at.is_null())
            .filter(password_links::expires_at.gt(now))
            .select(PasswordLink::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    pub fn mark_used(conn: &mut PgConnection, id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
        diesel::update(password_links::table.find(id))
            .set(password_links::used_at.eq(now))
            .execute(conn)
    }
}
