//! Webhooks over the API (SPEC 6): list with the table's filters, create, read, change,
//! delete, and the signing secret. The same validation as the form (one module serves
//! both), the same plan gate, tool switch and audit log.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::{ApiError, Caller, ErrorBody, read_json};
use crate::crypto::SecretBox;
use crate::models::audit::Actor;
use crate::models::connection::Connection;
use crate::models::webhook::{Filter, Webhook};
use crate::services::{self, webhooks::Parked};
use crate::state::AppState;
use crate::validation::webhook::Input;

/// The webhook as the API shows it, field for field as SPEC 6 names them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Webhook, example = json!({
    "id": 42, "number": 3, "url": "https://crm.alpine-tours.example/hooks/bookings",
    "description": "Bookings to the CRM", "events": ["booking.created", "booking.cancelled"],
    "connection": "CT-001", "active": true, "status": "active", "disabled_reason": null,
    "api_key_enabled": true, "headers": {"X-Team": "sales", "Authorization": "••••••"},
    "retry_on_error": true, "use_customer_language": false, "capabilities": ["customer"],
    "ordered": true, "filter": "data.product.id in [12, 15] && data.pax >= 2",
    "filtered_count": 310, "filter_error_count": 0, "filter_last_error": null,
    "event_count": 1280, "error_count": 0,
    "created_at": "2026-11-02T09:15:00Z", "updated_at": "2026-11-20T16:40:12Z"
}))]
pub struct WebhookJson {
    pub id: i64,
    /// The "No" of the dashboard's table, per tenant.
    pub number: i32,
    pub url: String,
    pub description: String,
    /// Event type codes it subscribes to.
    pub events: Vec<String>,
    /// The connection's contract id, or null for all connections.
    pub connection: Option<String>,
    pub active: bool,
    pub status: crate::models::webhook::Status,
    /// Why and since when it was disabled automatically, if it was.
    pub disabled_reason: Option<String>,
    /// Whether the webhook's own API key (for reading missed events) works.
    pub api_key_enabled: bool,
    /// Custom headers sent with every delivery; credentials are masked.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub retry_on_error: bool,
    pub use_customer_language: bool,
    pub capabilities: Vec<String>,
    /// Deliveries of one `ordering_key` go out one at a time, in publish order.
    pub ordered: bool,
    /// A CEL expression over `type`, `data`, `connection` and `language`: only events for
    /// which it is true are delivered. Null: every event of its types and connection.
    pub filter: Option<String>,
    /// Events of its types and connection its filter skipped (failures included).
    pub filtered_count: i64,
    /// Events its filter failed on (each counted as false).
    pub filter_error_count: i64,
    /// The last failure of its filter, if any.
    pub filter_last_error: Option<String>,
    /// Events fanned out to it so far.
    pub event_count: i64,
    /// Failed deliveries in a row (resets on success).
    pub error_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookJson {
    pub fn of(webhook: &Webhook, connections: &[Connection], secrets: &SecretBox) -> WebhookJson {
        WebhookJson {
            id: webhook.id,
            number: webhook.number,
            url: webhook.url.clone(),
            description: webhook.description.clone(),
            events: webhook.events.clone(),
            connection: webhook
                .connection_id
                .and_then(|id| connections.iter().find(|c| c.id == id))
                .map(|c| c.external_id.clone()),
            active: webhook.is_active(),
            status: webhook.status,
            disabled_reason: webhook.disabled_reason.clone(),
            api_key_enabled: webhook.api_key_enabled,
            headers: webhook
                .shown_headers(secrets)
                .into_iter()
                .map(|h| (h.name, serde_json::Value::String(h.value)))
                .collect(),
            retry_on_error: webhook.retry_on_error,
            use_customer_language: webhook.use_customer_language,
            capabilities: webhook.capabilities.clone(),
            ordered: webhook.ordered,
            filter: webhook.filter.clone(),
            filtered_count: webhook.filtered_count,
            filter_error_count: webhook.filter_error_count,
            filter_last_error: webhook.filter_last_error.clone(),
            event_count: webhook.event_count,
            error_count: webhook.error_count,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
        }
    }
}

/// Present-and-null vs absent, for PATCH.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A webhook to create (`url` and `events` required), or the fields to change (PATCH:
/// absent fields stay as they are).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://crm.alpine-tours.example/hooks/bookings",
    "description": "Bookings to the CRM",
    "events": ["booking.created", "booking.cancelled"],
    "headers": {"X-Team": "sales"}
}))]
pub struct WebhookBody {
    /// Absolute `https://` URL (at most 2,048 characters, no credentials, a public address).
    #[schema(max_length = 2048)]
    url: Option<String>,
    /// At most 500 characters.
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Event type codes of the catalog; at least one.
    events: Option<Vec<String>>,
    /// A connection's contract id; null for all connections.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    connection: Option<Option<String>>,
    /// Default true.
    active: Option<bool>,
    /// Default true.
    api_key_enabled: Option<bool>,
    /// Custom headers: at most 20, 4 KiB each, RFC 7230 token names, no reserved names.
    /// Send a masked value back unchanged to keep the stored one.
    headers: Option<std::collections::BTreeMap<String, String>>,
    /// Default true.
    retry_on_error: Option<bool>,
    /// Default false.
    use_customer_language: Option<bool>,
    /// Parts of `data` to include: `customer`, `pricing`, `units`, `payment`, `questions`.
    capabilities: Option<Vec<String>>,
    /// Default false. When true, events with the same `ordering_key` reach it one at a
    /// time, in publish order; a retry holds back only the later events of its own key.
    ordered: Option<bool>,
    /// A CEL filter (at most 2,000 characters), e.g. `data.product.id in [12, 15] &&
    /// data.pax >= 2`; null or empty removes it. Refused with its position when it does not
    /// parse, uses other names than `type`, `data`, `connection`, `language`, or is not
    /// true or false on the example payloads of the webhook's events.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    filter: Option<Option<String>>,
    /// When `active` switches the webhook back on: what to do with the deliveries parked
    /// while it was off: `resend` them, `drop` them, or `keep` them parked (the default).
    #[schema(value_type = Option<String>, pattern = "^(resend|drop|keep)$")]
    parked_deliveries: Option<String>,
}

pub fn actor(caller: &Caller) -> Actor {
    match caller {
        Caller::Tenant { key, .. } => Actor {
            user_id: None,
            label: format!("API key {}", key.name),
        },
        Caller::Webhook { webhook, .. } => Actor {
            user_id: None,
            label: format!("webhook No {} key", webhook.number),
        },
    }
}

/// Applies `body` on top of `base`: the draft the service checks like the form's.
async fn draft(state: &AppState, tenant_id: i64, body: &WebhookBody, base: Input) -> Result<Input, ApiError> {
    let mut input = base;
    if let Some(connection) = &body.connection {
        input.connection_id = match connection {
            None => None,
            Some(external) => {
                let external = external.clone();
                let found = state
                    .db(move |conn| Ok(Connection::find_by_external_id(conn, tenant_id, &external)?))
                    .await?;
                Some(found.map(|c| c.id).ok_or_else(|| {
                    ApiError::invalid(
                        "connection",
                        format!(
                            "`{}` is not the contract id of one of your connections.",
                            connection.as_deref().unwrap_or("")
                        ),
                    )
                })?)
            }
        };
    }
    if let Some(url) = &body.url {
        input.url = url.clone();
    }
    if let Some(description) = &body.description {
        input.description = description.clone();
    }
    if let Some(events) = &body.events {
        input.events = events.clone();
    }
    if let Some(headers) = &body.headers {
        input.headers = headers.clone().into_iter().collect();
    }
    if let Some(capabilities) = &body.capabilities {
        input.capabilities = capabilities.clone();
    }
    if let Some(filter) = &body.filter {
        input.filter = filter.clone();
    }
    for (flag, value) in [
        (&mut input.active, body.active),
        (&mut input.api_key_enabled, body.api_key_enabled),
        (&mut input.retry_on_error, body.retry_on_error),
        (&mut input.use_customer_language, body.use_customer_language),
        (&mut input.ordered, body.ordered),
    ] {
        if let Some(value) = value {
            *flag = value;
        }
    }
    Ok(input)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookPage {
    /// At most 50 a page.
    webhooks: Vec<WebhookJson>,
    /// Webhooks matching the filters, on all pages.
    total: i64,
    page: i64,
    pages: i64,
}

/// List webhooks
///
/// The same filters as the dashboard's table; 50 a page.
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "Webhooks", operation_id = "listWebhooks",
    params(
        ("url" = Option<String>, Query, description = "Part of the endpoint URL, any case"),
        ("event" = Option<String>, Query, description = "Only webhooks subscribed to this event type code"),
        ("status" = Option<String>, Query, description = "`active`, `inactive` or `auto_disabled`"),
        ("connection" = Option<String>, Query, description = "A connection id, or `none` for webhooks of all connections"),
        ("sort" = Option<String>, Query, description = "`number`, `url`, `events`, `errors` or `status`; a leading `-` sorts descending"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
    ),
    responses((status = 200, description = "A page of webhooks", body = WebhookPage)),
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.reader()?.id;
    let secrets = state.secrets();
    let page = services::webhooks::list(&state, tenant_id, filter.into_inner()).await?;
    let connections = state
        .db(move |conn| Ok(Connection::list(conn, tenant_id)?))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookPage {
        webhooks: page
            .rows
            .iter()
            .map(|w| WebhookJson::of(w, &connections, &secrets))
            .collect(),
        total: page.total,
        page: page.page,
        pages: page.pages,
    }))
}

/// Read a webhook
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}", tag = "Webhooks", operation_id = "getWebhook",
    params(("id" = i64, Path, description = "The webhook id")),
    responses((status = 200, description = "The webhook", body = WebhookJson)),
)]
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.reader()?.id;
    let id = id.into_inner();
    let secrets = state.secrets();
    let (webhook, connections) = state
        .db(move |conn| {
            Ok((
                Webhook::find(conn, tenant_id, id)?,
                Connection::list(conn, tenant_id)?,
            ))
        })
        .await?;
    Ok(HttpResponse::Ok().json(WebhookJson::of(&webhook, &connections, &secrets)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    webhook: WebhookJson,
    /// The webhook's own API key, for reading missed events: shown only in this answer.
    api_key: String,
}

/// Create a webhook
///
/// Validated like the dashboard's form, with the same messages. The answer carries the
/// webhook's own API key, shown only this once.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "Webhooks", operation_id = "createWebhook",
    request_body = WebhookBody,
    responses(
        (status = 201, description = "Created", body = CreatedWebhook,
            headers(("Location" = String, description = "The new webhook's API URL"))),
        (status = 409, description = "The plan's limit of 100 webhooks is reached", body = ErrorBody),
    ),
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.writer()?.clone();
    let body: WebhookBody = read_json(&req, payload).await?;
    if body.url.is_none() {
        return Err(ApiError::invalid(
            "url",
            "Enter the endpoint URL that will receive the POST requests.",
        ));
    }
    if body.events.is_none() {
        return Err(ApiError::invalid("events", "Choose at least one event to send."));
    }
    let input = draft(&state, tenant.id, &body, Input::default()).await?;
    let (webhook, key) = services::webhooks::create(&state, tenant.id, input, actor(&caller)).await?;
    let tenant_id = tenant.id;
    let connections = state
        .db(move |conn| Ok(Connection::list(conn, tenant_id)?))
        .await?;
    let json = WebhookJson::of(&webhook, &connections, &state.secrets());
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/webhooks/{}", webhook.id)))
        .json(CreatedWebhook {
            webhook: json,
            api_key: key,
        }))
}

/// The stored webhook as a draft; credentials in headers masked, as the service expects
/// them back ("unchanged").
fn input_of(webhook: &Webhook, secrets: &SecretBox) -> Input {
    Input {
        url: webhook.url.clone(),
        description: webhook.description.clone(),
        events: webhook.events.clone(),
        connection_id: webhook.connection_id,
        capabilities: webhook.capabilities.clone(),
        headers: webhook
            .shown_headers(secrets)
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        active: webhook.is_active(),
        api_key_enabled: webhook.api_key_enabled,
        retry_on_error: webhook.retry_on_error,
        use_customer_language: webhook.use_customer_language,
        ordered: webhook.ordered,
        filter: webhook.filter.clone(),
    }
}

/// Change a webhook
///
/// Only the fields sent change; the result is validated like the form.
#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "Webhooks", operation_id = "updateWebhook",
    params(("id" = i64, Path, description = "The webhook id")),
    request_body(content = WebhookBody, example = json!({"active": false, "events": ["booking.created"]})),
    responses((status = 200, description = "The changed webhook", body = WebhookJson)),
)]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.writer()?.clone();
    let body: WebhookBody = read_json(&req, payload).await?;
    let (tenant_id, id) = (tenant.id, id.into_inner());
    let parked: Parked = body
        .parked_deliveries
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(|message: String| ApiError::invalid("parked_deliveries", message))?;
    let current = services::webhooks::find(&state, tenant_id, id).await?;
    let input = draft(&state, tenant_id, &body, input_of(&current, &state.secrets())).await?;
    let webhook = services::webhooks::update(&state, tenant_id, id, input, parked, actor(&caller)).await?;
    let connections = state
        .db(move |conn| Ok(Connection::list(conn, tenant_id)?))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookJson::of(&webhook, &connections, &state.secrets())))
}

/// Delete a webhook
///
/// Its waiting deliveries are cancelled.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "Webhooks", operation_id = "deleteWebhook",
    params(("id" = i64, Path, description = "The webhook id")),
    responses((status = 204, description = "Deleted")),
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.writer()?.clone();
    services::webhooks::delete(&state, tenant.id, id.into_inner(), actor(&caller)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "previous_secret_expires_at": null}))]
pub struct SecretJson {
    /// The signing secret (`whsec_` and base64 of 32 bytes), as Standard Webhooks uses it.
    secret: String,
    /// While set, the previous secret also signs (24 hours after a rotation).
    previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// Read the signing secret
///
/// Each reveal is written to the audit log.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/secret", tag = "Webhooks", operation_id = "getWebhookSecret",
    params(("id" = i64, Path, description = "The webhook id")),
    responses((status = 200, description = "The secret", body = SecretJson)),
)]
pub async fn secret(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.reader()?.id;
    let (webhook, secret) =
        services::credentials::reveal_secret(&state, tenant_id, id.into_inner(), actor(&caller)).await?;
    let now = state.clock.now();
    Ok(HttpResponse::Ok().json(SecretJson {
        secret,
        previous_secret_expires_at: webhook.previous_secret_expires_at.filter(|t| *t > now),
    }))
}

/// Rotate the signing secret
///
/// For 24 hours deliveries are signed with both the new and the previous secret, so the
/// receiver can switch without losing any.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/secret/rotate", tag = "Webhooks", operation_id = "rotateWebhookSecret",
    params(("id" = i64, Path, description = "The webhook id")),
    responses((status = 200, description = "The new secret", body = SecretJson)),
)]
pub async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.writer()?.id;
    let (webhook, secret, _) =
        services::credentials::rotate_secret(&state, tenant_id, id.into_inner(), actor(&caller)).await?;
    Ok(HttpResponse::Ok().json(SecretJson {
        secret,
        previous_secret_expires_at: webhook.previous_secret_expires_at,
    }))
}
