//! The API's one error shape, `{"error": {"code", "message", "field"?}}`, and the answers
//! of its scope for what no handler sees: unknown paths, paths and query strings that do
//! not parse, addresses with a NUL.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::validation::{NUL_MESSAGE, has_encoded_nul};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The blocking pool could not take the work (shutting down or overloaded).
    pub fn busy() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Hookboard is busy; please retry.",
        )
    }

    /// The database cannot be reached just now; nothing was changed.
    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The database is not reachable just now; nothing was changed. Retry shortly.",
        )
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such item in your account.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every error of the API has this shape.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error, example = json!({"error": {"code": "invalid", "message": "Choose at least one event to send.", "field": "events"}}))]
pub struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorFields<'a> {
    /// A stable code: `bad_request`, `bad_json`, `unauthorized`, `plan`, `tool_off`,
    /// `forbidden`, `not_found`, `conflict`, `too_large`, `invalid`,
    /// `idempotency_mismatch`, `rate_limited`, `busy` or `internal`.
    code: &'a str,
    /// What went wrong and what to do, in plain words.
    message: &'a str,
    /// The field at fault, when there is one (`url`, `events[2]`, `events[3].type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "2"));
        }
        response.json(ErrorBody {
            error: ErrorFields {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        })
    }
}

impl From<crate::error::AppError> for ApiError {
    fn from(err: crate::error::AppError) -> Self {
        use crate::error::AppError;
        match err {
            AppError::NotFound => ApiError::not_found(),
            AppError::Validation { field, message } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid",
                message,
                field: field.map(str::to_owned),
            },
            AppError::InvalidItem { field, message, .. } => ApiError::invalid(field, message),
            AppError::Fields(errors) => match errors.into_iter().next() {
                Some((field, message)) => ApiError::invalid(field, message),
                None => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "Please check the fields.",
                ),
            },
            AppError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            AppError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            AppError::Unavailable => ApiError::unavailable(),
            AppError::Unauthorized(m) => ApiError::unauthorized(m),
            AppError::LoginRequired => {
                ApiError::unauthorized("Send an API key as `Authorization: Bearer <key>`.")
            }
            AppError::Unexpected(err) => {
                tracing::error!(error = ?err, "API request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong on our side. It has been logged; please try again.",
                )
            }
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        crate::error::AppError::from(err).into()
    }
}

/// Unknown `/api/...` paths answer in JSON too.
pub async fn not_found() -> HttpResponse {
    not_found_error().error_response()
}

fn not_found_error() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such API endpoint; see GET /api/v1/openapi.json.",
    )
}

/// A path segment that does not parse (`/api/v1/webhooks/abc`) names nothing: 404.
pub fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    actix_web::error::InternalError::from_response(err, ApiError::not_found().error_response()).into()
}

/// A query string that does not parse: 422 naming it.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let message = format!("The query string is not understood: {err}");
    let response = ApiError::invalid("query", message).error_response();
    actix_web::error::InternalError::from_response(err, response).into()
}

/// Refuses addresses with an encoded NUL character (`%00`): no endpoint has a use for it.
pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let uri = req.uri();
    if has_encoded_nul(uri.path()) || uri.query().is_some_and(has_encoded_nul) {
        let error = ApiError::new(StatusCode::BAD_REQUEST, "bad_request", NUL_MESSAGE);
        return Ok(req.into_response(error.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
