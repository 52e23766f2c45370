//! Deliveries over the API: a webhook's log with its attempts, resend, and test events.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, check_length, read_json};
use crate::models::audit::{Actor, AuditEntry};
use crate::models::delivery::{Attempt, Delivery, LogFilter};
use crate::models::event_type::EventType;
use crate::models::webhook::Webhook;
use crate::startup::AppState;

fn api_actor(caller: &Caller) -> Actor {
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

#[derive(Serialize)]
struct AttemptView {
    number: i32,
    started_at: chrono::DateTime<chrono::Utc>,
    duration_ms: i32,
    status_code: Option<i32>,
    succeeded: bool,
    error_class: Option<String>,
    error_message: Option<String>,
    response_body: String,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        AttemptView {
            response_body: a.response_text(),
            number: a.attempt_number,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            succeeded: a.succeeded,
            error_class: a.error_class,
            error_message: a.error_message,
        }
    }
}

#[derive(Serialize)]
struct DeliveryView {
    id: i64,
    event_id: String,
    event_type: String,
    status: String,
    attempt_count: i32,
    next_attempt_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
    attempts: Vec<AttemptView>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    outcome: Option<String>,
    event: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/webhooks/{id}/deliveries?outcome=&event=&before=&limit=`: newest first.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.require_tenant_key()?.id;
    caller.require_scale()?;
    let query: LogQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|err| ApiError::invalid("query", format!("The query string is not understood: {err}")))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "`limit` must be between 1 and 500."));
    }
    if let Some(outcome) = &query.outcome
        && !crate::models::delivery::OUTCOMES.contains(&outcome.as_str())
    {
        return Err(ApiError::invalid(
            "outcome",
            "`outcome` is one of pending, succeeded, failed, parked, cancelled.",
        ));
    }
    let filter = LogFilter {
        outcome: query.outcome.unwrap_or_default(),
        event: query.event.unwrap_or_default(),
        before: query.before.map(|b| b.to_string()).unwrap_or_default(),
    };
    let id = id.into_inner();
    let entries = state
        .db(move |conn| {
            let webhook = Webhook::find(conn, tenant_id, id)?;
            Ok(Delivery::log(conn, webhook.id, &filter, limit)?)
        })
        .await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.delivery.id))
        .flatten();
    let deliveries: Vec<DeliveryView> = entries
        .into_iter()
        .map(|e| DeliveryView {
            id: e.delivery.id,
            event_id: e.delivery.event_id,
            event_type: e.event_type,
            status: e.delivery.status,
            attempt_count: e.delivery.attempt_count,
            next_attempt_at: e.delivery.next_attempt_at,
            created_at: e.delivery.created_at,
            completed_at: e.delivery.completed_at,
            attempts: e.attempts.into_iter().map(AttemptView::from).collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deliveries": deliveries, "next_before": next_before })))
}

/// `POST /api/v1/deliveries/{id}/resend`
pub async fn resend(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require_tenant_key()?.clone();
    caller.require_scale()?;
    if !tenant.webhooks_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tool_off",
            crate::auth::TOOL_OFF_NOTICE,
        ));
    }
    let id = id.into_inner();
    let now = state.clock.now();
    let actor = api_actor(&caller);
    let delivery = state
        .db(move |conn| {
            conn.build_transaction().run(|conn| {
                let delivery = Delivery::resend(conn, tenant.id, id, now)?;
                AuditEntry::record(
                    conn,
                    Some(tenant.id),
                    &actor,
                    "delivery.resent",
                    ("delivery", Some(&delivery.id.to_string())),
                    serde_json::json!({ "event": delivery.event_id }),
                )?;
                Ok::<_, crate::error::AppError>(delivery)
            })
        })
        .await?;
    Ok(HttpResponse::Accepted().json(
        serde_json::json!({ "id": delivery.id, "event_id": delivery.event_id, "status": delivery.status }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    #[serde(rename = "type")]
    kind: String,
}

/// `POST /api/v1/webhooks/{id}/test {"type"}`: the catalog example to this webhook only.
pub async fn test(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req)?;
    let tenant = caller.require_tenant_key()?.clone();
    caller.require_scale()?;
    if !tenant.webhooks_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tool_off",
            crate::auth::TOOL_OFF_NOTICE,
        ));
    }
    let body: TestBody = read_json(payload).await?;
    let id = id.into_inner();
    let now = state.clock.now();
    let actor = api_actor(&caller);
    let (event_id, delivery_id) = state
        .db(move |conn| {
            let webhook = Webhook::find(conn, tenant.id, id)?;
            let event_type = EventType::find(conn, &body.kind)?.ok_or_else(|| {
                crate::error::AppError::validation(
                    "type",
                    format!("`{}` is not an event type of the catalog.", body.kind),
                )
            })?;
            conn.build_transaction().run(|conn| {
                let (event, delivery) = Delivery::send_test(conn, &tenant, &webhook, &event_type, now)?;
                AuditEntry::record(
                    conn,
                    Some(tenant.id),
                    &actor,
                    "webhook.test_sent",
                    ("webhook", Some(&webhook.number.to_string())),
                    serde_json::json!({ "type": event_type.code, "event": event.id }),
                )?;
                Ok::<_, crate::error::AppError>((event.id, delivery.id))
            })
        })
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "id": event_id, "delivery": delivery_id })))
}
