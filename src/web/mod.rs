//! The HTML door: server-rendered pages for tenant staff and operators, one module per
//! resource. Handlers call the services for every change and render askama templates;
//! htmx requests get fragments, everyone else whole pages, so every URL works without
//! JavaScript. Registered under the web scope by [`crate::routes`].

pub mod admin;
pub mod alerts;
pub mod api_keys;
pub mod api_reference;
pub mod assets;
pub mod audit;
pub mod audit_text;
pub mod catalog;
pub mod connections;
pub mod csrf;
pub mod dashboard;
pub mod errors;
pub mod health;
pub mod htmx;
pub mod login;
pub mod profile;
pub mod session;
pub mod session_store;
pub mod set_password;
pub mod tools;
pub mod users;
pub mod views;
pub mod webhooks;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::validation::{NUL_MESSAGE, has_encoded_nul};
use errors::ErrorMessage;
pub use errors::error_page;
pub use htmx::is_htmx;

/// Any address no page answers.
pub async fn not_found() -> HttpResponse {
    error_page(StatusCode::NOT_FOUND, "The page you asked for does not exist.")
}

/// Refuses addresses with an encoded NUL character (`%00`) before any handler sees them:
/// no page has a use for it, and PostgreSQL cannot store it.
pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if has_nul(&req) {
        let response = error_page(StatusCode::BAD_REQUEST, NUL_MESSAGE);
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether the path or query string holds an encoded NUL.
pub fn has_nul(req: &ServiceRequest) -> bool {
    let uri = req.uri();
    has_encoded_nul(uri.path()) || uri.query().is_some_and(has_encoded_nul)
}

/// A path segment that does not parse (`/webhooks/abc`) names nothing: 404.
pub fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    let response = error_page(StatusCode::NOT_FOUND, "The page you asked for does not exist.");
    actix_web::error::InternalError::from_response(err, response).into()
}

/// A query string that does not parse: 400 with the reason.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let message = format!("The query string is not understood: {err}");
    let response = error_page(StatusCode::BAD_REQUEST, &message);
    actix_web::error::InternalError::from_response(err, response).into()
}

/// A 303 redirect (after a form post).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// On htmx requests, errors become a toast in `#toasts` instead of a broken swap, and
/// "log in first" becomes a full redirect to the login page.
pub async fn htmx_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let htmx = req.headers().contains_key("HX-Request");
    let res = next.call(req).await?.map_into_boxed_body();
    if !htmx {
        return Ok(res);
    }
    if res.status() == StatusCode::SEE_OTHER
        && res.headers().get(header::LOCATION).is_some_and(|l| l == "/login")
    {
        let (req, _) = res.into_parts();
        let response = HttpResponse::Ok()
            .insert_header(("HX-Redirect", "/login"))
            .finish();
        return Ok(ServiceResponse::new(req, response));
    }
    let Some(message) = res.response().extensions().get::<ErrorMessage>().cloned() else {
        return Ok(res);
    };
    let status = res.status();
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, htmx::error_toast(status, &message.0)))
}

/// An exported file as a download.
pub fn download(file_name: &str, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(crate::services::export::XLSX_CONTENT_TYPE)
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(file_name.to_owned())],
        })
        .insert_header(("Cache-Control", "no-store"))
        .body(bytes)
}

/// A rendered template as an HTML response with the given status.
pub fn render(status: StatusCode, template: &impl Template) -> Result<HttpResponse, AppError> {
    let body = template.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}
