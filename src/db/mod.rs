//! The database: where it is (embedded or `DATABASE_URL`), the connection pool, migrations.

pub mod embedded;
pub mod prepared;

use std::time::Duration;

use anyhow::Context;
use diesel::PgConnection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::settings::Settings;
use embedded::{EmbeddedOptions, EmbeddedPostgres};

pub type DbPool = Pool<ConnectionManager<PgConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The database Hookboard uses, and the embedded server behind it when there is one.
pub struct Database {
    pub url: String,
    /// Kept alive for as long as the database is used; dropping it stops the server.
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// `DATABASE_URL` when set; otherwise the embedded server under `HOOKBOARD_DATA_DIR`.
    pub fn open(settings: &Settings) -> anyhow::Result<Self> {
        match &settings.database_url {
            Some(url) => Ok(Database {
                url: url.clone(),
                embedded: None,
            }),
            None => {
                let server = EmbeddedPostgres::start(&EmbeddedOptions {
                    data_dir: settings.data_dir.clone(),
                    unsafe_fast: false,
                    statement_stats: false,
                })?;
                Ok(Database {
                    url: server.url("hookboard"),
                    embedded: Some(server),
                })
            }
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }
}

/// Builds a pool whose connections open as they are needed, from one, and checks that the
/// database answers, with a message that names the setting when it does not: for the
/// commands and tools, which use a few. The server's pool is [`connect_ready`].
pub fn connect(url: &str, size: u32) -> anyhow::Result<DbPool> {
    build(url, size, 1, SessionSettings { prepare: None })
}

/// The server's pool: every connection is opened, and `prepare` run on it, before the pool
/// is returned, and the pool keeps them all (one that reaches its lifetime is replaced in
/// the background). So a request never waits for a connection to open, nor for the first
/// plans of its session: a new PostgreSQL session plans its first statement over a
/// partitioned table with every partition's catalog entries still to load (16 ms for the
/// delivery log over 41 days, 3 ms once they are loaded), and a pool that opens
/// connections as needed opens them in a burst, when requests queue for them.
pub fn connect_ready(url: &str, size: u32, prepare: Prepare) -> anyhow::Result<DbPool> {
    build(
        url,
        size,
        size,
        SessionSettings {
            prepare: Some(prepare),
        },
    )
}

/// Work run on each of the server's connections as it opens: see [`connect_ready`].
pub type Prepare = fn(&mut PgConnection) -> diesel::QueryResult<()>;

fn build(url: &str, size: u32, open: u32, settings: SessionSettings) -> anyhow::Result<DbPool> {
    let manager = ConnectionManager::<PgConnection>::new(url);
    Pool::builder()
        .max_size(size)
        // `build` returns once these are open (and prepared).
        .min_idle(Some(open))
        // Connections kept open are kept however long they idle.
        .idle_timeout((open < size).then_some(Duration::from_secs(10 * 60)))
        // A connection the server closed is found at check-out, not by a failed query
        // (diesel cannot tell a closed one otherwise); `/healthz` relies on this.
        .test_on_check_out(true)
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(settings))
        .build(manager)
        .with_context(|| format!("cannot connect to the database at {}", redact_url(url)))
}

/// What every pooled connection sets when it is opened, and the pool's own preparation.
///
/// No JIT compilation: Hookboard's statements read a few rows by index, and compiling one
/// takes 10-200 ms, which PostgreSQL starts on a cost estimate alone (a table it has no
/// statistics for is guessed at thousands of rows).
#[derive(Debug)]
struct SessionSettings {
    prepare: Option<Prepare>,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("SET jit = off")
            .map_err(diesel::r2d2::Error::QueryError)?;
        match self.prepare {
            Some(prepare) => prepare(conn).map_err(diesel::r2d2::Error::QueryError),
            None => Ok(()),
        }
    }
}

/// Runs `work` in a transaction begun together with `settings` (`SET LOCAL` statements, which
/// last until it ends) in one round trip, committed when `work` succeeds and rolled back
/// when it fails. Inside a transaction already, `work` runs in a savepoint, and the
/// settings last until the outer transaction ends.
pub fn transaction_with<R, E: From<diesel::result::Error>>(
    conn: &mut PgConnection,
    settings: &str,
    work: impl FnOnce(&mut PgConnection) -> Result<R, E>,
) -> Result<R, E> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let depth = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth()?;
    if depth.is_some() {
        return diesel::Connection::transaction(conn, |conn| {
            conn.batch_execute(settings)?;
            work(conn)
        });
    }
    AnsiTransactionManager::begin_transaction_sql(conn, &format!("BEGIN; {settings}"))?;
    match work(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => match AnsiTransactionManager::rollback_transaction(conn) {
            // A broken connection explains less than what broke it.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(err),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Runs the migrations that have not run yet.
pub fn run_migrations(conn: &mut PgConnection) -> anyhow::Result<()> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|err| anyhow::anyhow!("database migration failed: {err}"))?;
    for version in applied {
        tracing::info!(%version, "applied migration");
    }
    Ok(())
}

/// The URL with its password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db.example:5432/hookboard"),
            "postgres://app:***@db.example:5432/hookboard"
        );
        assert_eq!(super::redact_url("postgres://app@db/hb"), "postgres://app@db/hb");
    }
}
