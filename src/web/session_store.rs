//! An actix-session store backed by PostgreSQL. The cookie store cannot revoke sessions;
//! this one can, by deleting rows.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use actix_web::web;
use chrono::Utc;

use crate::db::DbPool;
use crate::models::session::{SessionRow, Sessions};
use crate::models::{random_hex, token_hash};

/// The session state key under which the signed-in user's id is kept.
pub const USER_ID_KEY: &str = "user_id";

#[derive(Clone)]
pub struct PgSessionStore {
    pool: DbPool,
}

impl PgSessionStore {
    pub fn new(pool: DbPool) -> Self {
        PgSessionStore { pool }
    }

    async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut diesel::PgConnection) -> diesel::QueryResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || -> anyhow::Result<T> { Ok(work(&mut *pool.get()?)?) }).await?
    }
}

fn to_row<'a>(key_hash: &'a str, state: &HashMap<String, String>, ttl: &Duration) -> SessionRow<'a> {
    let user_id = state
        .get(USER_ID_KEY)
        .and_then(|v| serde_json::from_str::<i64>(v).ok());
    SessionRow {
        key_hash,
        user_id,
        state: serde_json::to_value(state).unwrap_or_default(),
        expires_at: Utc::now() + chrono::Duration::seconds(ttl.whole_seconds()),
    }
}

impl SessionStore for PgSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let key_hash = token_hash(session_key.as_ref());
        let state = self
            .run(move |conn| Sessions::load(conn, &key_hash, Utc::now()))
            .await
            .map_err(LoadError::Other)?;
        state
            .map(serde_json::from_value)
            .transpose()
            .map_err(|err| LoadError::Deserialization(err.into()))
    }

    async fn save(&self, state: HashMap<String, String>, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = random_hex(32);
        let key_hash = token_hash(&key);
        let ttl = *ttl;
        self.run(move |conn| Sessions::insert(conn, &to_row(&key_hash, &state, &ttl)))
            .await
            .map_err(SaveError::Other)?;
        SessionKey::try_from(key).map_err(|err| SaveError::Other(err.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let key_hash = token_hash(session_key.as_ref());
        let ttl = *ttl;
        // When the row is gone (the session was revoked meanwhile) nothing is updated: a
        // revoked session is never brought back under its old key.
        self.run(move |conn| Sessions::update(conn, &to_row(&key_hash, &state, &ttl)))
            .await
            .map_err(UpdateError::Other)?;
        Ok(session_key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let key_hash = token_hash(session_key.as_ref());
        let expires_at = Utc::now() + chrono::Duration::seconds(ttl.whole_seconds());
        self.run(move |conn| Sessions::extend(conn, &key_hash, expires_at))
            .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let key_hash = token_hash(session_key.as_ref());
        self.run(move |conn| Sessions::delete(conn, &key_hash)).await?;
        Ok(())
    }
}
