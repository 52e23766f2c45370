//! The JSON API (`/api/v1`): bearer-key authentication, one error shape
//! (`{"error": {"code", "message", "field"?}}`), and strict body reading (1 MiB at most).

pub mod connections;
pub mod deliveries;
pub mod doc;
pub mod errors;
pub mod events;
pub mod guard;
pub mod webhooks;

pub use errors::{ApiError, ErrorBody, not_found};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;

use crate::models::api_key::ApiKey;
use crate::models::tenant::Tenant;
use crate::models::webhook::Webhook;
use crate::state::AppState;

/// Request bodies larger than this answer 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A too-large body is still read (and dropped) up to this size, so the client, still
/// sending, gets the 413 instead of a reset connection; beyond it the connection closes.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

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

    /// A tenant key of a tenant on the Scale plan: what reading webhooks and their
    /// deliveries, and publishing events, need.
    pub fn reader(&self) -> Result<&Tenant, ApiError> {
        self.require_tenant_key()?;
        self.require_scale()
    }

    /// A reader whose Webhooks tool is switched on: what changing anything needs.
    pub fn writer(&self) -> Result<&Tenant, ApiError> {
        let tenant = self.reader()?;
        if tenant.webhooks_enabled {
            Ok(tenant)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tool_off",
                crate::services::TOOL_OFF_NOTICE,
            ))
        }
    }

    /// The plan gate of SPEC 2, for the API.
    fn require_scale(&self) -> Result<&Tenant, ApiError> {
        let tenant = self.tenant();
        if tenant.plan.has_webhooks() {
            Ok(tenant)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "plan",
                crate::services::SCALE_PLAN_NOTICE,
            ))
        }
    }
}

/// The key of an `Authorization: Bearer <key>` header.
fn bearer(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    let value = headers
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Finds who calls from the bearer key (once per request: the idempotency guard leaves the
/// caller it resolved in the request's extensions).
pub(super) async fn authenticate(req: HttpRequest) -> Result<Caller, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().cloned().expect("app state");
    let token = bearer(req.headers())
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
        use actix_web::HttpMessage;
        if let Some(caller) = req.extensions().get::<Caller>().cloned() {
            return Box::pin(std::future::ready(Ok(caller)));
        }
        Box::pin(authenticate(req.clone()))
    }
}

/// Reads a JSON body of at most [`MAX_BODY_BYTES`] into `T`, refusing unknown fields and
/// naming the field of a type error.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    parse_json(&read_body(req.headers(), payload).await?)
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]. A larger one answers 413; it is
/// still read (and dropped) up to [`DRAIN_BYTES`], so the client gets the answer rather
/// than a reset connection. The handlers and the idempotency guard both read through here.
pub async fn read_body<S>(
    headers: &actix_web::http::header::HeaderMap,
    mut payload: S,
) -> Result<web::Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    check_length(headers)?;
    let mut body = web::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request body could not be read.",
            )
        })?;
        seen += chunk.len();
        if seen > DRAIN_BYTES {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            body.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("The request body is larger than {MAX_BODY_BYTES} bytes (1 MiB)."),
        ));
    }
    Ok(body.freeze())
}

/// Parses a JSON body into `T`: 400 when it is not JSON, 422 naming the field when a field
/// is unknown, of the wrong type, or holds text with a NUL character (which PostgreSQL
/// cannot store).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("The body is not valid JSON: {err}"),
        )
    })?;
    if let Some(path) = nul_at(&value, "") {
        return Err(ApiError::invalid(
            path,
            "Text may not contain the NUL character (\\u0000).",
        ));
    }
    serde_path_to_error::deserialize(value)
        .map(|Object(body)| body)
        .map_err(|err| {
            let path = err.path().to_string();
            let field = if path == "." { None } else { Some(path) };
            ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid",
                message: err.into_inner().to_string(),
                field,
            }
        })
}

/// A body (or an item of one) that must be a JSON object. serde's derived structs also
/// take an array of their fields in order, so `["booking.created", {...}]` was published as
/// an event; the API documents objects only, and an array is refused as the wrong type.
/// `parse_json` applies it to every body; a struct nested in a body needs it on its field
/// (as the events of a batch have, `events::objects`).
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, fields: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(fields))
            }
        }
        deserializer
            .deserialize_map(Fields(std::marker::PhantomData))
            .map(Object)
    }
}

/// The path (`events[2].data.name`) of the first key or text in `value` that holds a NUL.
fn nul_at(value: &serde_json::Value, path: &str) -> Option<String> {
    let field = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(field(key))
            } else {
                nul_at(item, &field(key))
            }
        }),
        _ => None,
    }
}

/// Refuses requests whose `Content-Length` already says they are too large.
fn check_length(headers: &actix_web::http::header::HeaderMap) -> Result<(), ApiError> {
    let length = headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match length {
        Some(n) if n > DRAIN_BYTES => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("The request body is larger than {MAX_BODY_BYTES} bytes (1 MiB)."),
        )),
        _ => Ok(()),
    }
}
