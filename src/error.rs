//! The one error type of the web layer. Handlers return `Result<_, AppError>`; database
//! and blocking-pool failures convert into it with `?`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::routes::views::{Chrome, ErrorPage};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("The page or item you asked for does not exist.")]
    NotFound,
    #[error("Please log in to continue.")]
    LoginRequired,
    #[error("{message}")]
    Validation {
        field: Option<&'static str>,
        message: String,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached just now (restarting, pool exhausted): nothing was
    /// changed and the same request can be sent again.
    #[error("The database is not reachable just now; nothing was changed. Please try again in a moment.")]
    Unavailable,
    #[error("Something went wrong on our side. It has been logged; please try again.")]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => AppError::Validation {
                field: None,
                message: format!(
                    "That already exists ({}).",
                    info.constraint_name().unwrap_or("unique")
                ),
            },
            other if connection_lost(&other) => {
                tracing::warn!(error = %other, "the database connection was lost");
                AppError::Unavailable
            }
            other => AppError::Unexpected(other.into()),
        }
    }
}

/// Whether a query failed because the connection to PostgreSQL went away (a restart, a
/// crash, an administrator ending backends) rather than because of the query itself.
pub fn connection_lost(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        // SQLSTATE 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now) and a
        // server that closed the socket arrive as plain messages.
        Error::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("terminating connection")
                || message.contains("server closed the connection")
                || message.contains("the database system is")
                || message.contains("no connection to the server")
        }
        _ => false,
    }
}

impl From<r2d2::Error> for AppError {
    fn from(err: r2d2::Error) -> Self {
        tracing::warn!(error = %err, "no database connection available");
        AppError::Unavailable
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        AppError::Unexpected(anyhow::anyhow!("blocking task failed: {err}"))
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::LoginRequired => StatusCode::SEE_OTHER,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
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
                    .insert_header((actix_web::http::header::LOCATION, "/login"))
                    .finish();
            }
            _ => {}
        }
        let mut response = error_page(self.status_code(), &self.to_string());
        if matches!(self, AppError::Unavailable) {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("2"),
            );
        }
        response
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
