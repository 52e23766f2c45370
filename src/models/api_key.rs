//! Tenant API keys: the booking platform's credentials for `/api/v1`. Only a SHA-256 of the
//! key is stored; the key itself is shown once, when it is created.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{random_hex, token_hash};
use crate::schema::api_keys;

/// Every tenant API key starts with this, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "hbk_";
/// How much of the key is kept in clear to tell keys apart.
const VISIBLE_CHARS: usize = 12;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKey {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub enabled: bool,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
struct NewApiKey<'a> {
    tenant_id: i64,
    name: &'a str,
    prefix: &'a str,
    key_hash: &'a str,
    created_by: Option<i64>,
}

impl ApiKey {
    /// Creates a key and returns it with the secret, which is never readable again.
    pub fn create(
        conn: &mut PgConnection,
        tenant_id: i64,
        name: &str,
        created_by: Option<i64>,
    ) -> QueryResult<(ApiKey, String)> {
        let secret = format!("{KEY_PREFIX}{}", random_hex(24));
        let key = diesel::insert_into(api_keys::table)
            .values(NewApiKey {
                tenant_id,
                name,
                prefix: &secret[..VISIBLE_CHARS],
                key_hash: &token_hash(&secret),
                created_by,
            })
            .returning(ApiKey::as_returning())
            .get_result(conn)?;
        Ok((key, secret))
    }

    pub fn list(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<ApiKey>> {
        api_keys::table
            .filter(api_keys::tenant_id.eq(tenant_id))
            .order(api_keys::created_at.desc())
            .select(ApiKey::as_select())
            .load(conn)
    }

    /// The key a bearer token belongs to, whether enabled or not.
    pub fn find_by_secret(conn: &mut PgConnection, secret: &str) -> QueryResult<Option<ApiKey>> {
        api_keys::table
            .filter(api_keys::key_hash.eq(token_hash(secret)))
            .select(ApiKey::as_select())
            .first(conn)
            .optional()
    }

    pub fn set_enabled(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        enabled: bool,
    ) -> QueryResult<ApiKey> {
        diesel::update(
            api_keys::table
                .filter(api_keys::tenant_id.eq(tenant_id))
                .filter(api_keys::id.eq(id)),
        )
        .set(api_keys::enabled.eq(enabled))
        .returning(ApiKey::as_returning())
        .get_result(conn)
    }

    pub fn delete(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<ApiKey> {
        diesel::delete(
            api_keys::table
                .filter(api_keys::tenant_id.eq(tenant_id))
                .filter(api_keys::id.eq(id)),
        )
        .returning(ApiKey::as_returning())
        .get_result(conn)
    }

    /// Notes a use, at most once a minute per key, so busy keys do not write on every call.
    pub fn touch(conn: &mut PgConnection, id: i64, now: DateTime<Utc>) -> QueryResult<()> {
        diesel::update(
            api_keys::table.filter(api_keys::id.eq(id)).filter(
                api_keys::last_used_at
                    .is_null()
                    .or(api_keys::last_used_at.lt(now - chrono::Duration::minutes(1))),
            ),
        )
        .set(api_keys::last_used_at.eq(now))
        .execute(conn)
        .map(drop)
    }
}
