//! CSRF protection for the HTML app: a random token bound to the session, sent back as the
//! `csrf_token` form field or the `X-CSRF-Token` header (htmx), plus a refusal of requests
//! that the browser marks as cross-site. Before login there is no session (a stored row
//! per anonymous visitor would let anyone fill the table): the login form's token is a MAC
//! of a random value kept in a cookie of its own, so it costs nothing to hand out.

use actix_session::{Session, SessionExt};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, web};

use super::errors::error_page;
use crate::crypto;
use crate::models::random_hex;
use crate::state::AppState;

const CSRF_KEY: &str = "csrf";
pub const HEADER: &str = "X-CSRF-Token";
pub const FIELD: &str = "csrf_token";
/// Form bodies of the HTML app are small; larger ones are refused before parsing.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The session's token, created on first use.
pub fn token(session: &Session) -> String {
    match session.get::<String>(CSRF_KEY).ok().flatten() {
        Some(token) => token,
        None => rotate(session),
    }
}

/// A fresh token (at sign-in).
pub fn rotate(session: &Session) -> String {
    let token = random_hex(32);
    let _ = session.insert(CSRF_KEY, &token);
    token
}

/// The pre-login cookie's name: `__Host-` prefixed when it is Secure, as browsers require.
pub fn prelogin_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-hookboard_csrf"
    } else {
        "hookboard_csrf"
    }
}

const PRELOGIN_PURPOSE: &str = "hookboard/csrf-before-login/v1";

/// A form's token for a page anyone may see (the login form): the session's token when
/// there is one, otherwise the MAC of the pre-login cookie's value, with the cookie to set
/// when the browser has none yet. Nothing is stored.
pub fn page_token(req: &HttpRequest, session: &Session) -> (String, Option<Cookie<'static>>) {
    if let Some(token) = session.get::<String>(CSRF_KEY).ok().flatten() {
        return (token, None);
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState registered");
    let secure = state.settings.secure_cookies;
    let name = prelogin_cookie_name(secure);
    match req
        .cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| is_nonce(v))
    {
        Some(nonce) => (crypto::tag(&state.secret_key, PRELOGIN_PURPOSE, &nonce), None),
        None => {
            let nonce = random_hex(32);
            let cookie = Cookie::build(name, nonce.clone())
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Strict)
                .finish();
            (
                crypto::tag(&state.secret_key, PRELOGIN_PURPOSE, &nonce),
                Some(cookie),
            )
        }
    }
}

/// The token a request may carry without a session: the MAC of its pre-login cookie.
fn prelogin_token(req: &ServiceRequest) -> Option<String> {
    let state = req.app_data::<web::Data<AppState>>()?;
    let cookie = req.cookie(prelogin_cookie_name(state.settings.secure_cookies))?;
    is_nonce(cookie.value()).then(|| crypto::tag(&state.secret_key, PRELOGIN_PURPOSE, cookie.value()))
}

fn is_nonce(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware for every HTML route (the JSON API authenticates with bearer keys instead).
pub async fn protect(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !is_unsafe(req.method()) {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    if let Some(reason) = cross_site(&req) {
        return Ok(refuse(req, reason));
    }
    let expected = req
        .get_session()
        .get::<String>(CSRF_KEY)
        .ok()
        .flatten()
        .or_else(|| prelogin_token(&req));
    let mut supplied = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let body = match req.extract::<Bytes>().await {
            Ok(body) if body.len() <= MAX_FORM_BYTES => body,
            _ => return Ok(refuse(req, "The form could not be read.")),
        };
        // PostgreSQL cannot store a NUL character; no field of any form needs one.
        if body.windows(3).any(|w| w == b"%00") {
            let (http_req, _) = req.into_parts();
            let page = error_page(
                StatusCode::BAD_REQUEST,
                "The form contains a NUL character, which no field accepts. Remove it and try again.",
            );
            return Ok(ServiceResponse::new(http_req, page));
        }
        if supplied.is_none() {
            supplied = form_urlencoded_value(&body, FIELD);
        }
        req.set_payload(actix_http::Payload::from(body));
    }
    match (expected, supplied) {
        (Some(expected), Some(supplied)) if constant_time_eq(expected.as_bytes(), supplied.as_bytes()) => {
            next.call(req).await.map(ServiceResponse::map_into_boxed_body)
        }
        _ => Ok(refuse(
            req,
            "This form has expired or did not come from Hookboard. Reload the page and try again.",
        )),
    }
}

/// Browsers say where a request comes from; anything cross-site is refused outright.
fn cross_site(req: &ServiceRequest) -> Option<&'static str> {
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site")
    {
        return Some("Requests from other sites are refused.");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())?;
    if origin == "null" {
        return Some("Requests from other sites are refused.");
    }
    let host = req.connection_info().host().to_owned();
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    (origin_host != host).then_some("Requests from other sites are refused.")
}

fn refuse(req: ServiceRequest, message: &str) -> ServiceResponse<BoxBody> {
    let (http_req, _) = req.into_parts();
    ServiceResponse::new(http_req, error_page(StatusCode::FORBIDDEN, message))
}

fn form_urlencoded_value(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
