//! What every request handler and service needs, shared by all workers: the pool, the
//! settings, the clock, the metrics and the secret key. It knows nothing of the web.

use std::sync::Arc;

use diesel::PgConnection;

use crate::clock::Clock;
use crate::crypto::SecretBox;
use crate::db::DbPool;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::settings::Settings;

pub struct AppState {
    pub pool: DbPool,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// The resolved `HOOKBOARD_SECRET_KEY`.
    pub secret_key: [u8; 32],
}

impl AppState {
    /// The AEAD box for secrets at rest, keyed from `HOOKBOARD_SECRET_KEY`.
    pub fn secrets(&self) -> SecretBox {
        SecretBox::new(&self.secret_key)
    }

    /// Runs one unit of database work on the blocking pool, with a pooled connection.
    pub async fn db<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
    }
}

/// Runs blocking work (a transaction, a DNS lookup) off the async threads. Password hashes
/// have threads of their own ([`crate::auth::hashing`]).
pub async fn blocking<T, F>(work: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
{
    actix_web::rt::task::spawn_blocking(work)
        .await
        .map_err(|err| AppError::Unexpected(anyhow::anyhow!("blocking task failed: {err}")))?
}
