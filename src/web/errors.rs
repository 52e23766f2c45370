//! How the pages show a service error: the error page in the layout for a page load, a
//! toast for htmx (see [`super::htmx_errors`]), the login page when no one is signed in.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::views::{Chrome, ErrorPage};
use crate::error::AppError;

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::LoginRequired => StatusCode::SEE_OTHER,
            AppError::Validation { .. } | AppError::InvalidItem { .. } | AppError::Fields(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Unexpected(err) => tracing::error!(error = ?err, "request failed"),
            AppError::LoginRequired => {
                return HttpResponse::SeeOther()
                    .insert_header((LOCATION, "/login"))
                    .finish();
            }
            _ => {}
        }
        let mut response = error_page(self.status_code(), &self.to_string());
        if matches!(self, AppError::Unavailable) {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        AppError::Unexpected(anyhow::anyhow!("blocking task failed: {err}"))
    }
}

/// The error page in the layout. Errors on htmx requests are turned into toasts by the
/// `htmx_errors` middleware, which keeps this page for full-page loads.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let page = ErrorPage {
        chrome: Chrome::anonymous(status.canonical_reason().unwrap_or("Error")),
        status: status.as_u16(),
        message: message.to_owned(),
    };
    let body = page.render().unwrap_or_else(|_| message.to_owned());
    let mut response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    response.extensions_mut().insert(ErrorMessage(message.to_owned()));
    response
}

/// The human message of an error response, for middleware that re-renders it.
#[derive(Clone)]
pub struct ErrorMessage(pub String);
