//! The JSON API (`/api/v1`): bearer-key authentication, one error shape
//! (`{"error": {"code", "message", "field"?}}`), and strict body reading (1 MiB at most).

pub mod deliveries;
pub mod events;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde::Serialize;

use crate::models::api_key::ApiKey;
use crate::models::tenant::Tenant;
use crate::models::webhook::Webhook;
use crate::startup::AppState;

/// Request bodies larger than this answer 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
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
            AppError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            AppError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
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

/// Who calls the API: a tenant key may do everything; a webhook's own key may only read
/// the events its webhook subscribes to.
#[derive(Debug, Clone)]
pub enum Caller {
    Tenant { tenant: Tenant, key: ApiKey },
    Webhook { tenant: Tenant, webhook: Box<Webhook> },
}

impl Caller {
    pub fn tenant(&self) -> &Tenant {
        match self {
            Caller::Tenant { tenant, .. } | Caller::Webhook { tenant, .. } => tenant,
        }
    }

    /// Everything but catching up on events needs a tenant key.
    pub fn require_tenant_key(&self) -> Result<&Tenant, ApiError> {
        match self {
            Caller::Tenant { tenant, .. } => Ok(tenant),
            Caller::Webhook { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "A webhook's API key may only read the events its webhook subscribes to; use a tenant API key from the API Keys page.",
            )),
        }
    }

    /// The plan gate of SPEC 2, for the API.
    pub fn require_scale(&self) -> Result<&Tenant, ApiError> {
        let tenant = self.tenant();
        if tenant.plan.has_webhooks() {
            Ok(tenant)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "plan",
                crate::auth::SCALE_PLAN_NOTICE,
            ))
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn authenticate(req: HttpRequest) -> Result<Caller, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().cloned().expect("app state");
    let token = bearer(&req)
        .ok_or_else(|| ApiError::unauthorized("Send an API key as `Authorization: Bearer <key>`."))?;
    if token.len() > 200 {
        return Err(ApiError::unauthorized("That API key is not known."));
    }
    let now = state.clock.now();
    let caller = state
        .db(move |conn| {
            use crate::error::AppError;
            if token.starts_with(crate::models::webhook::API_KEY_PREFIX) {
                let webhook = Webhook::find_by_api_key(conn, &token)?.ok_or_else(|| AppError::Unauthorized("That API key is not known.".into()))?;
                if !webhook.api_key_enabled {
                    return Err(AppError::Unauthorized(format!(
                        "The API key of webhook No {} is switched off. Switch it on on the webhook's page to use it again.",
                        webhook.number
                    )));
                }
                let tenant = Tenant::find(conn, webhook.tenant_id)?;
                return Ok(Caller::Webhook { tenant, webhook: Box::new(webhook) });
            }
            let key = ApiKey::find_by_secret(conn, &token)?.ok_or_else(|| AppError::Unauthorized("That API key is not known.".into()))?;
            if !key.enabled {
                return Err(AppError::Unauthorized(format!(
                    "The API key \"{}\" is switched off. Switch it on under API Keys to use it again.",
                    key.name
                )));
            }
            ApiKey::touch(conn, key.id, now)?;
            let tenant = Tenant::find(conn, key.tenant_id)?;
            Ok(Caller::Tenant { tenant, key })
        })
        .await?;
    Ok(caller)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}

/// Reads a JSON body of at most [`MAX_BODY_BYTES`] into `T`, refusing unknown fields and
/// naming the field of a type error.
pub async fn read_json<T: serde::de::DeserializeOwned>(mut payload: web::Payload) -> Result<T, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request body could not be read.",
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "The request body is larger than {} bytes (1 MiB).",
                    MAX_BODY_BYTES
                ),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    parse_json(&body)
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("The body is not valid JSON: {inner}"),
            );
        }
        let field = if path == "." { None } else { Some(path) };
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid",
            message: inner.to_string(),
            field,
        }
    })
}

/// Refuses requests whose `Content-Length` already says they are too large.
pub fn check_length(req: &HttpRequest) -> Result<(), ApiError> {
    let length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match length {
        Some(n) if n > MAX_BODY_BYTES => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("The request body is larger than {MAX_BODY_BYTES} bytes (1 MiB)."),
        )),
        _ => Ok(()),
    }
}

/// Unknown `/api/...` paths answer in JSON too.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such API endpoint; see GET /api/v1/openapi.json.",
    )
}
