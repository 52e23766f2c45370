//! The one application builder: the server and the tests register the same routes and
//! middleware through [`build_server`].

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite, time};
use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::auth::csrf;
use crate::auth::session_store::PgSessionStore;
use crate::clock::Clock;
use crate::db::DbPool;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::routes;
use crate::settings::Settings;
use diesel::PgConnection;

/// Everything a request handler may need, shared by all workers.
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
    pub fn secrets(&self) -> crate::crypto::SecretBox {
        crate::crypto::SecretBox::new(&self.secret_key)
    }

    /// Runs one unit of database work on the blocking pool, with a pooled connection.
    pub async fn db<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }
}

pub const SESSION_COOKIE: &str = "hookboard_session";

/// The session cookie's name: `__Host-` prefixed when it is Secure, as browsers require.
pub fn session_cookie_name(secure: bool) -> String {
    if secure {
        format!("__Host-{SESSION_COOKIE}")
    } else {
        SESSION_COOKIE.to_owned()
    }
}

/// Content-Security-Policy: no inline script or style, nothing from other origins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// Builds the HTTP server on an already bound listener.
pub fn build_server(state: AppState, listener: TcpListener) -> anyhow::Result<Server> {
    let state = web::Data::new(state);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let limiter = web::Data::new(routes::api::guard::RateLimiter::new(
        state.settings.api_rate_limit,
    ));
    let logins = web::Data::new(crate::auth::address_throttle::AddressThrottle::new(
        state.settings.login_failures_per_address,
    ));
    let server = HttpServer::new(move || {
        let settings = &state.settings;
        let sessions = SessionMiddleware::builder(
            PgSessionStore::new(state.pool.clone()),
            Key::derive_from(&state.secret_key),
        )
        .cookie_name(session_cookie_name(settings.secure_cookies))
        .cookie_secure(settings.secure_cookies)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".into())
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(time::Duration::seconds(
                    settings.session_idle_timeout.as_secs() as i64
                ))
                .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
        )
        .build();
        App::new()
            .app_data(state.clone())
            .app_data(limiter.clone())
            .app_data(logins.clone())
            .app_data(web::FormConfig::default().limit(256 * 1024))
            .app_data(web::JsonConfig::default().limit(1024 * 1024))
            .app_data(web::PathConfig::default().error_handler(routes::path_error))
            .app_data(web::QueryConfig::default().error_handler(routes::query_error))
            .configure(routes::configure)
            .wrap(from_fn(routes::api::guard::guard))
            .wrap(from_fn(csrf::protect))
            .wrap(from_fn(routes::htmx_errors))
            .wrap(sessions)
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", CSP))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin"))
                    .add(("X-Frame-Options", "DENY")),
            )
            .wrap(from_fn(routes::refuse_nul))
            .wrap(from_fn(routes::count_requests))
            .wrap(TracingLogger::default())
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}
