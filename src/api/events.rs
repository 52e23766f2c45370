//! Events over the API: publish one or a batch (the outbox), read them back, and the
//! catalog of event types.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use serde_json::value::RawValue;

use super::{ApiError, Caller, Object, read_json};
use crate::delivery::outbox::{Accepted, MAX_BATCH, NewEvent};
use crate::error::AppError;
use crate::models::event::{Event, EventScope};
use crate::models::event_type::EventType;
use crate::services;
use crate::state::AppState;

/// The limit on `idempotency_key`, `ordering_key`, `language` and `connection`.
const MAX_KEY_CHARS: usize = 200;

/// One event to publish.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "type": "booking.created",
    "data": {"booking_id": "BK-10023", "product": "Sunset kayak tour", "participants": 2},
    "connection": "CT-001",
    "idempotency_key": "booking-10023-created",
    "ordering_key": "BK-10023"
}))]
pub struct EventBody {
    /// An event type code of the catalog (`GET /api/v1/event-types`).
    #[serde(rename = "type")]
    kind: String,
    /// The event's data: a JSON object, delivered as the envelope's `data`.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    /// When it happened; defaults to now.
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    /// The connection's contract id: only webhooks of that connection (or of all
    /// connections) receive it.
    #[serde(default)]
    #[schema(max_length = 200)]
    connection: Option<String>,
    /// The customer's language (e.g. `de`), for webhooks that use it.
    #[serde(default)]
    #[schema(max_length = 200)]
    language: Option<String>,
    /// Publishing again with the same key returns the first result and sends nothing new.
    #[serde(default)]
    #[schema(max_length = 200)]
    idempotency_key: Option<String>,
    /// Events with the same key (a booking reference, say) reach an `ordered` webhook one
    /// at a time, in the order they were published: a retry holds back only later events
    /// of its own key. Without a key an event is not ordered.
    #[serde(default)]
    #[schema(max_length = 200)]
    ordering_key: Option<String>,
}

/// Up to 500 events, published all together or not at all.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    #[schema(min_items = 1, max_items = 500)]
    #[serde(deserialize_with = "objects")]
    events: Vec<EventBody>,
}

/// Each event of a batch as a JSON object (see [`Object`]).
fn objects<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<EventBody>, D::Error> {
    let events: Vec<Object<EventBody>> = Deserialize::deserialize(deserializer)?;
    Ok(events.into_iter().map(|Object(event)| event).collect())
}

fn check(body: EventBody, prefix: &str) -> Result<NewEvent, ApiError> {
    if !body.data.is_object() {
        return Err(ApiError::invalid(
            format!("{prefix}data"),
            "`data` must be a JSON object.",
        ));
    }
    for (name, value) in [
        ("idempotency_key", &body.idempotency_key),
        ("language", &body.language),
        ("connection", &body.connection),
        ("ordering_key", &body.ordering_key),
    ] {
        if let Some(value) = value {
            if value.is_empty() || value.chars().count() > MAX_KEY_CHARS {
                return Err(ApiError::invalid(
                    format!("{prefix}{name}"),
                    format!("`{name}` must have 1 to {MAX_KEY_CHARS} characters."),
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    format!("{prefix}{name}"),
                    format!("`{name}` may not contain control characters such as line breaks."),
                ));
            }
        }
    }
    Ok(NewEvent {
        kind: body.kind,
        data: body.data,
        occurred_at: body.occurred_at,
        connection: body.connection,
        language: body.language,
        idempotency_key: body.idempotency_key,
        ordering_key: body.ordering_key,
    })
}

async fn publish(
    state: &AppState,
    caller: &Caller,
    events: Vec<NewEvent>,
    batch: bool,
) -> Result<Vec<Accepted>, ApiError> {
    let tenant = caller.reader()?.clone();
    services::events::publish(state, &tenant, events)
        .await
        .map_err(|err| match err {
            // A batch names the event at fault: `events[3].type`.
            AppError::InvalidItem {
                index,
                field,
                message,
            } if batch => ApiError::invalid(format!("events[{index}].{field}"), message),
            other => other.into(),
        })
}

/// Publish an event
///
/// The event and one delivery per matching webhook are stored in one transaction before
/// the answer; delivery follows at once in the background.
#[utoipa::path(
    post, path = "/api/v1/events", tag = "Events", operation_id = "publishEvent",
    request_body = EventBody,
    responses((status = 202, description = "Accepted: stored and queued for delivery", body = Accepted)),
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Who may publish is settled before the body is read: a webhook's key gets its 403,
    // not a remark on the body.
    caller.reader()?;
    let body: EventBody = read_json(&req, payload).await?;
    let event = check(body, "")?;
    let mut accepted = publish(&state, &caller, vec![event], false).await?;
    Ok(HttpResponse::Accepted().json(accepted.remove(0)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    /// One answer per event, in the order sent.
    events: Vec<Accepted>,
}

/// Publish up to 500 events at once
///
/// All or none: one refused event refuses the batch, and the error's `field` names it
/// (`events[3].type`).
#[utoipa::path(
    post, path = "/api/v1/events/batch", tag = "Events", operation_id = "publishEvents",
    request_body = BatchBody,
    responses((status = 202, description = "Accepted: all stored and queued", body = BatchAccepted)),
)]
pub async fn create_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.reader()?;
    let body: BatchBody = read_json(&req, payload).await?;
    if body.events.is_empty() || body.events.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "events",
            format!("Send 1 to {MAX_BATCH} events (there are {}).", body.events.len()),
        ));
    }
    let events = body
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| check(e, &format!("events[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    let accepted = publish(&state, &caller, events, true).await?;
    Ok(HttpResponse::Accepted().json(BatchAccepted { events: accepted }))
}

/// An event as the API returns it, with its envelope exactly as delivered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventView {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created_at: DateTime<Utc>,
    /// The key it was published with, if any.
    ordering_key: Option<String>,
    /// The envelope `{id, type, timestamp, tenant, connection, data}`, byte for byte as
    /// delivered (copied as stored, never parsed and written again).
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
}

impl TryFrom<Event> for EventView {
    type Error = ApiError;

    fn try_from(event: Event) -> Result<Self, ApiError> {
        let payload = RawValue::from_string(event.body).map_err(|err| {
            ApiError::from(AppError::Unexpected(anyhow::anyhow!(
                "event {}: the stored body is not JSON: {err}",
                event.id
            )))
        })?;
        Ok(EventView {
            payload,
            id: event.id,
            kind: event.event_type,
            created_at: event.created_at,
            ordering_key: event.ordering_key,
        })
    }
}

/// The events a caller may read: all for a tenant key; for a webhook's key, what that
/// webhook would receive (its types, its connection, its filter); and only on the Scale plan, like every webhook API call (SPEC 2), for
/// either kind of key.
fn readable(caller: &Caller) -> Result<EventScope, ApiError> {
    caller.require_scale()?;
    Ok(match caller {
        Caller::Tenant { .. } => EventScope::default(),
        Caller::Webhook { webhook, .. } => EventScope {
            types: Some(webhook.events.clone()),
            connection_id: webhook.connection_id,
            filter: webhook.filter.clone(),
        },
    })
}

/// Read one event
///
/// A webhook's own API key may read only what its webhook would receive: its event types,
/// when it is limited to a connection that connection's events, and when it has a filter
/// the events its filter passes.
#[utoipa::path(
    get, path = "/api/v1/events/{id}", tag = "Events", operation_id = "getEvent",
    params(("id" = String, Path, description = "The event id")),
    responses((status = 200, description = "The event", body = EventView)),
)]
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant().id;
    let scope = readable(&caller)?;
    let event = services::events::find(&state, tenant_id, id.into_inner(), scope).await?;
    Ok(HttpResponse::Ok().json(EventView::try_from(event)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventPage {
    events: Vec<EventView>,
    /// Pass as `after` to read on; null when there is nothing more yet. A page holds at
    /// most `limit` events and at most 5 MiB of event bodies. For a webhook's key with a
    /// filter a page may hold fewer events (even none) while `next_after` goes on: the
    /// events its filter skips are passed over, at most 10,000 a page.
    next_after: Option<String>,
}

/// List events, oldest first
///
/// For catching up: a receiver passes the last event id it has as `after`.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "Events", operation_id = "listEvents",
    params(
        ("after" = Option<String>, Query, description = "Only events after this event id"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)"),
    ),
    responses((status = 200, description = "A page of events", body = EventPage)),
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|err| ApiError::invalid("query", format!("The query string is not understood: {err}")))?;
    let tenant_id = caller.tenant().id;
    let scope = readable(&caller)?;
    let limit = query.limit.unwrap_or(100);
    let page = services::events::page(&state, tenant_id, query.after, scope, limit).await?;
    let events = page
        .events
        .into_iter()
        .map(EventView::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(EventPage {
        events,
        next_after: page.next_after,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventTypeView {
    /// The code used in `events` and as an event's `type`, e.g. `booking.created`.
    code: String,
    category: String,
    label: String,
    description: String,
    /// An example `data` object.
    #[schema(value_type = Object)]
    example: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventTypeList {
    event_types: Vec<EventTypeView>,
}

/// The event catalog
///
/// Every event type a webhook can subscribe to, with an example payload.
#[utoipa::path(
    get, path = "/api/v1/event-types", tag = "Catalog", operation_id = "listEventTypes",
    responses((status = 200, description = "The catalog", body = EventTypeList)),
)]
pub async fn types(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let all = state.db(|conn| Ok(EventType::all(conn)?)).await?;
    let view: Vec<EventTypeView> = all
        .iter()
        .map(|t| EventTypeView {
            code: t.code.clone(),
            category: t.category.clone(),
            label: t.label.clone(),
            description: t.description.clone(),
            example: t.example_payload.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(EventTypeList { event_types: view }))
}
