//! The one application builder: the server and the tests register the same routes and
//! middleware through [`build_server`]; the routes themselves are in [`crate::routes`].

use std::cell::Cell;
use std::future::Future as _;
use std::net::TcpListener;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_http::ConnectionType;
use actix_http::error::PayloadError;
use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::HttpMessage as _;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Key, SameSite, time};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};
use futures_util::Stream;
use tracing_actix_web::TracingLogger;

use crate::auth::connections::{ConnectionCounts, Slot};
use crate::state::AppState;
use crate::web as pages;
use crate::web::csrf;
use crate::web::session_store::PgSessionStore;
use crate::{api, routes};

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

/// Builds the HTTP server on an already bound listener: the JSON API in its own scope
/// (bearer keys, JSON errors, rate limit), the pages in theirs (sessions, CSRF, htmx error
/// toasts), and what both share (security headers, request metrics, tracing).
pub fn build_server(state: AppState, listener: TcpListener) -> anyhow::Result<Server> {
    let state = web::Data::new(state);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let limiter = web::Data::new(api::guard::RateLimiter::new(state.settings.api_rate_limit));
    let logins = web::Data::new(crate::auth::address_throttle::AddressThrottle::new(
        state.settings.login_failures_per_address,
    ));
    let connections = ConnectionCounts::new(state.settings.connections_per_address);
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
        let api_scope = web::scope(routes::API_SCOPE)
            .app_data(limiter.clone())
            .app_data(web::JsonConfig::default().limit(api::MAX_BODY_BYTES))
            .app_data(web::PathConfig::default().error_handler(api::errors::path_error))
            .app_data(web::QueryConfig::default().error_handler(api::errors::query_error))
            .configure(routes::configure_api)
            .wrap(from_fn(api::guard::guard))
            .wrap(from_fn(api::errors::refuse_nul));
        let web_scope = web::scope("")
            .app_data(logins.clone())
            .app_data(web::FormConfig::default().limit(256 * 1024))
            .app_data(web::PathConfig::default().error_handler(pages::path_error))
            .app_data(web::QueryConfig::default().error_handler(pages::query_error))
            .configure(routes::configure_web)
            .wrap(from_fn(csrf::protect))
            .wrap(from_fn(pages::htmx_errors))
            .wrap(sessions)
            .wrap(from_fn(pages::refuse_nul));
        App::new()
            .app_data(state.clone())
            .service(api_scope)
            .configure(routes::configure_sessionless)
            .service(web_scope)
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", CSP))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin"))
                    .add(("X-Frame-Options", "DENY")),
            )
            .wrap(from_fn(body_deadline))
            .wrap(from_fn(refuse_crowded))
            .wrap(from_fn(count_requests))
            .wrap(TracingLogger::default())
    })
    .on_connect(move |conn, extensions| {
        // Counted from the TCP peer; the slot goes back when the connection closes.
        if let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
            && let Ok(peer) = stream.peer_addr()
            && let Some(slot) = connections.open(peer.ip())
        {
            extensions.insert(slot);
        }
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Reads every request body under `HOOKBOARD_BODY_TIMEOUT`, counted from the end of the
/// headers (which `client_request_timeout` bounds): a client trickling a body would
/// otherwise hold its connection, and a worker's attention, for as long as it likes. Past
/// the deadline the body reads as an error, the request answers 408 (the error page, or
/// the API's JSON) and the connection closes.
async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let has_body = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.settings.body_timeout)
        .filter(|_| has_body);
    let Some(limit) = limit else {
        // Nothing to read (most GETs): no timer to set.
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let expired = Rc::new(Cell::new(false));
    let body = DeadlineBody {
        inner: req.take_payload(),
        deadline: Box::pin(actix_web::rt::time::sleep(limit)),
        expired: expired.clone(),
    };
    req.set_payload(actix_http::Payload::from(
        Box::pin(body) as actix_http::BoxedPayloadStream
    ));
    let is_api = in_api(&req);
    let result = next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    if !expired.get() {
        return result;
    }
    let message = "The request body did not arrive in time.";
    let response = closing_answer(is_api, StatusCode::REQUEST_TIMEOUT, "timeout", message);
    let res = result?;
    tracing::info!(path = res.request().path(), "request body not read in time");
    Ok(res.into_response(response))
}

/// Refuses every request of a connection over its address's cap
/// (`HOOKBOARD_CONNECTIONS_PER_ADDRESS`, see [`crate::auth::connections`]) and closes it.
async fn refuse_crowded(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !req.request().conn_data::<Slot>().is_some_and(|slot| slot.over) {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    let is_api = in_api(&req);
    tracing::info!(peer = ?req.peer_addr(), "connection over the per-address cap refused");
    let message = "Too many connections from your address at once; close some and try again.";
    let response = closing_answer(is_api, StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    Ok(req.into_response(response))
}

fn in_api(req: &ServiceRequest) -> bool {
    req.path()
        .strip_prefix(routes::API_SCOPE)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// An answer that also closes the connection: the API's JSON error or the error page.
fn closing_answer(is_api: bool, status: StatusCode, code: &'static str, message: &str) -> HttpResponse {
    let mut response = if is_api {
        actix_web::ResponseError::error_response(&api::errors::ApiError::new(status, code, message))
    } else {
        pages::error_page(status, message)
    };
    response.head_mut().set_connection_type(ConnectionType::Close);
    response
}

/// A request body that ends in an error once its deadline has passed.
struct DeadlineBody {
    inner: actix_http::Payload,
    deadline: Pin<Box<actix_web::rt::time::Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired.set(true);
                let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body timed out");
                Poll::Ready(Some(Err(PayloadError::Io(timed_out))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Counts every answered request by route pattern (not the raw path, which has ids).
async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        state
            .metrics
            .record_request(&method, &route, res.status().as_u16());
    }
    Ok(res)
}
