//! Events over the API: publish one or a batch (the outbox), read them back, and the
//! catalog of event types.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, check_length, read_json};
use crate::delivery::outbox::{self, Accepted, MAX_BATCH, NewEvent, PublishError};
use crate::models::event::Event;
use crate::models::event_type::EventType;
use crate::startup::AppState;

/// The limit on `idempotency_key` and `language`.
const MAX_KEY_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Value,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    events: Vec<EventBody>,
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
    ] {
        if let Some(value) = value
            && (value.is_empty() || value.chars().count() > MAX_KEY_CHARS)
        {
            return Err(ApiError::invalid(
                format!("{prefix}{name}"),
                format!("`{name}` must have 1 to {MAX_KEY_CHARS} characters."),
            ));
        }
    }
    Ok(NewEvent {
        kind: body.kind,
        data: body.data,
        occurred_at: body.occurred_at,
        connection: body.connection,
        language: body.language,
        idempotency_key: body.idempotency_key,
    })
}

async fn publish(
    state: &AppState,
    caller: &Caller,
    events: Vec<NewEvent>,
    batch: bool,
) -> Result<Vec<Accepted>, ApiError> {
    let tenant = caller.require_tenant_key()?.clone();
    caller.require_scale()?;
    let now = state.clock.now();
    let pool = state.pool.clone();
    let result = web::block(move || {
        let mut conn = pool
            .get()
            .map_err(|e| PublishError::Database(diesel::result::Error::QueryBuilderError(Box::new(e))))?;
        outbox::publish(&mut conn, &tenant, &events, now)
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Hookboard is busy; please retry.",
        )
    })?;
    result.map_err(|err| match err {
        PublishError::Invalid {
            index,
            field,
            message,
        } => ApiError::invalid(
            if batch {
                format!("events[{index}].{field}")
            } else {
                field.to_owned()
            },
            message,
        ),
        PublishError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "The same idempotency_key was used by a request at the same moment; retry.",
        ),
        PublishError::Database(err) => ApiError::from(err),
    })
}

/// `POST /api/v1/events`
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req)?;
    let body: EventBody = read_json(payload).await?;
    let event = check(body, "")?;
    let mut accepted = publish(&state, &caller, vec![event], false).await?;
    Ok(HttpResponse::Accepted().json(accepted.remove(0)))
}

#[derive(Serialize)]
struct BatchAccepted {
    events: Vec<Accepted>,
}

/// `POST /api/v1/events/batch`: up to 500 events, all or none.
pub async fn create_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req)?;
    let body: BatchBody = read_json(payload).await?;
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

/// An event as the API returns it: its envelope, exactly as delivered.
#[derive(Serialize)]
struct EventView {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created_at: DateTime<Utc>,
    payload: serde_json::Value,
}

impl From<Event> for EventView {
    fn from(event: Event) -> Self {
        EventView {
            payload: serde_json::from_str(&event.body).unwrap_or(serde_json::Value::Null),
            id: event.id,
            kind: event.event_type,
            created_at: event.created_at,
        }
    }
}

/// The event types a caller may read: all for a tenant key, the subscribed ones for a
/// webhook's key.
fn readable(caller: &Caller) -> Option<Vec<String>> {
    match caller {
        Caller::Tenant { .. } => None,
        Caller::Webhook { webhook, .. } => Some(webhook.events.clone()),
    }
}

/// `GET /api/v1/events/{id}`
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant().id;
    let types = readable(&caller);
    let id = id.into_inner();
    let event = state
        .db(move |conn| Ok(Event::find(conn, tenant_id, &id)?))
        .await?;
    if types.is_some_and(|t| !t.contains(&event.event_type)) {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::Ok().json(EventView::from(event)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
struct EventPage {
    events: Vec<EventView>,
    /// Pass as `after` to read on; absent when there is nothing more yet.
    next_after: Option<String>,
}

/// `GET /api/v1/events?after=<event id>&limit=N`
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|err| ApiError::invalid("query", format!("The query string is not understood: {err}")))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "`limit` must be between 1 and 1000."));
    }
    let tenant_id = caller.tenant().id;
    let types = readable(&caller);
    let after = query.after;
    let events = state
        .db(move |conn| {
            Ok(Event::page(
                conn,
                tenant_id,
                after.as_deref(),
                types.as_deref(),
                limit,
            )?)
        })
        .await?;
    let next_after = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(EventPage {
        events: events.into_iter().map(EventView::from).collect(),
        next_after,
    }))
}

#[derive(Serialize)]
struct EventTypeView {
    code: String,
    category: String,
    label: String,
    description: String,
    example: serde_json::Value,
}

/// `GET /api/v1/event-types`
pub async fn types(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let all = state.db(|conn| Ok(EventType::all(conn)?)).await?;
    let view: Vec<EventTypeView> = all
        .into_iter()
        .map(|t| EventTypeView {
            code: t.code,
            category: t.category,
            label: t.label,
            description: t.description,
            example: t.example_payload,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "event_types": view })))
}
