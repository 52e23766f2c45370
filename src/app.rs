//! `hookboard serve`: bind, open the database, migrate, seed the demo, serve until a signal.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::auth::password;
use crate::clock::SystemClock;
use crate::db::{self, Database};
use crate::delivery::dispatcher::{self, Dispatcher};
use crate::metrics::Metrics;
use crate::models::audit::Actor;
use crate::models::delivery::Delivery;
use crate::models::random_hex;
use crate::models::tenant::{Plan, Tenant};
use crate::models::user::Role;
use crate::services::accounts;
use crate::settings::Settings;
use crate::startup::build_server;
use crate::state::AppState;

pub const DEMO_OWNER_EMAIL: &str = "owner@demo.hookboard.test";

pub fn serve(settings: Settings) -> anyhow::Result<()> {
    // Bind first: a port in use fails before anything is started or written.
    let listener = bind(&settings)?;
    let database = Database::open(&settings)?;
    {
        // One connection to set the database up; the server's pool prepares its
        // connections for tables that exist only after the migrations.
        let mut conn = db::connect(&database.url, 1)?.get()?;
        db::run_migrations(&mut conn)?;
        crate::delivery::dispatcher::add_history_days(&mut conn, chrono::Utc::now())?;
        if database.is_embedded() {
            seed_demo(&mut conn)?;
        }
        for warning in durability_warnings(&mut conn)? {
            tracing::warn!("{warning}");
            eprintln!("\n  WARNING: {warning}\n");
        }
    }
    let pool = db::connect_ready(&database.url, settings.db_pool_size, |conn| {
        Delivery::prepare_log(conn, chrono::Utc::now())
    })?;
    let secret_key = resolve_secret_key(&settings)?;
    let address = listener.local_addr()?;
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
    let metrics = Arc::new(Metrics::default());
    let grace = settings.delivery_timeout + std::time::Duration::from_secs(2);
    let worker = if settings.worker {
        let secrets = crate::crypto::SecretBox::new(&secret_key);
        Some(Dispatcher::new(
            pool.clone(),
            &settings,
            secrets,
            clock.clone(),
            metrics.clone(),
        )?)
    } else {
        tracing::info!("HOOKBOARD_WORKER=off: this process delivers nothing");
        None
    };
    let database_url = database.url.clone();
    let state = AppState {
        pool,
        settings,
        clock,
        metrics,
        secret_key,
    };
    tracing::info!(%address, "Hookboard is listening");
    println!("Hookboard is running at http://{address}/ (Ctrl-C stops it)");
    let served = actix_web::rt::System::new().block_on(async move {
        // The worker runs on an Arbiter of its own, inside this System.
        let dispatcher = worker.map(|worker| dispatcher::start(worker, &database_url));
        let server = build_server(state, listener)?;
        let served = server.await.context("the web server failed");
        tracing::info!("web server stopped");
        if let Some(handle) = dispatcher {
            handle.shutdown(grace);
            tracing::info!("delivery worker stopped");
        }
        served
    });
    served?;
    if let Some(server) = database.embedded {
        if server.started_here() {
            tracing::info!("stopping the embedded PostgreSQL");
        }
        server.stop();
    }
    Ok(())
}

fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    TcpListener::bind(settings.bind).map_err(|err| match err.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "{} is already in use by another program; stop it, or set HOOKBOARD_BIND to another \
             address (e.g. HOOKBOARD_BIND=127.0.0.1:8081)",
            settings.bind
        ),
        _ => anyhow::Error::new(err).context(format!("cannot listen on HOOKBOARD_BIND={}", settings.bind)),
    })
}

/// `HOOKBOARD_SECRET_KEY`, or the key generated once and kept in the data directory.
pub fn resolve_secret_key(settings: &Settings) -> anyhow::Result<[u8; 32]> {
    if let Some(key) = settings.secret_key {
        return Ok(key);
    }
    fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create the data directory {}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("secret_key");
    if !path.exists() {
        write_new_key(&path)?;
        tracing::warn!(path = %path.display(), "HOOKBOARD_SECRET_KEY is not set; generated one and kept it in the data directory");
    }
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = hex::decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .with_context(|| {
            format!(
                "{} does not hold 64 hex characters; remove it or set HOOKBOARD_SECRET_KEY",
                path.display()
            )
        })?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

fn write_new_key(path: &Path) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", random_hex(32))?;
    Ok(())
}

/// Hookboard answers 2xx only once an event is committed; that promise holds only if
/// PostgreSQL flushes commits to disk. Returns what is wrong with the server's settings.
pub fn durability_warnings(conn: &mut diesel::PgConnection) -> anyhow::Result<Vec<String>> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Durability {
        #[diesel(sql_type = diesel::sql_types::Text)]
        fsync: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        synchronous_commit: String,
    }
    let settings: Durability = diesel::sql_query(
        "SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit",
    )
    .get_result(conn)?;
    let mut warnings = Vec::new();
    if settings.fsync != "on" {
        warnings.push(
            "PostgreSQL runs with fsync=off: a crash of its machine can lose events Hookboard \
             already accepted. Turn fsync on for anything but throwaway tests."
                .to_owned(),
        );
    }
    if settings.synchronous_commit == "off" {
        warnings.push(
            "PostgreSQL runs with synchronous_commit=off: a crash can lose the last events \
             Hookboard accepted. Turn synchronous_commit on."
                .to_owned(),
        );
    }
    Ok(warnings)
}

/// On the first start with an empty embedded database: a demo tenant on the Scale plan and
/// its owner, whose login is printed once.
fn seed_demo(conn: &mut diesel::PgConnection) -> anyhow::Result<()> {
    use diesel::Connection;
    if Tenant::count(conn)? > 0 {
        return Ok(());
    }
    let demo_password = format!("demo-{}", random_hex(8));
    let hash = password::hash(&demo_password)?;
    // Only logins, on the hashing threads, keep argon2 memory around.
    password::release_memory();
    // Both or neither: a tenant without its owner would never be seeded again.
    let tenant = conn.transaction(|conn| -> anyhow::Result<_> {
        let system = Actor::system();
        let tenant = accounts::create_tenant(conn, "Demo Travel Co", Plan::Scale, &system)?;
        let account = accounts::NewAccount {
            tenant_id: Some(tenant.id),
            email: DEMO_OWNER_EMAIL,
            role: Role::Owner,
            password_hash: &hash,
            connection: None,
        };
        accounts::create_user(conn, account, &system)
            .with_context(|| format!("the demo owner {DEMO_OWNER_EMAIL} cannot be created"))?;
        Ok(tenant)
    })?;
    println!();
    println!(
        "  Created the demo tenant \"{}\" on the Scale plan. Log in with:",
        tenant.name
    );
    println!("    email:    {DEMO_OWNER_EMAIL}");
    println!("    password: {demo_password}");
    println!("  (shown only this once; a new one any time with");
    println!("   `hookboard user set-password --email {DEMO_OWNER_EMAIL}`, password on stdin)");
    println!();
    Ok(())
}
