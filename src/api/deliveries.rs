//! Deliveries over the API: a webhook's log with its attempts, resend, and test events.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, ErrorBody, read_json};
use crate::models::delivery::{Attempt, LogFilter, LogPage};
use crate::services;
use crate::state::AppState;

/// One HTTP attempt of a delivery.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// 1 for the first attempt.
    number: i32,
    started_at: chrono::DateTime<chrono::Utc>,
    duration_ms: i32,
    /// The endpoint's HTTP status; null when no answer came (timeout, refused, ...).
    status_code: Option<i32>,
    succeeded: bool,
    /// Why it failed: `timeout`, `connect`, `ssrf`, `request`, `redirect`, `http_status`
    /// or `signing`; null on success.
    error_class: Option<String>,
    error_message: Option<String>,
    /// The start of the endpoint's answer (at most 64 KiB, never decompressed).
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

/// One event's delivery to one webhook.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    id: i64,
    event_id: String,
    event_type: String,
    #[schema(value_type = String, example = "succeeded", pattern = "^(pending|succeeded|failed|parked|cancelled)$")]
    status: String,
    attempt_count: i32,
    next_attempt_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The event's ordering key, when the webhook is ordered.
    ordering_key: Option<String>,
    /// A delivery held back behind an earlier one of its ordering key: the event id of the
    /// delivery its key waits for.
    waits_for: Option<String>,
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; null on the last page.
    next_before: Option<i64>,
}

/// A webhook's deliveries, newest first
///
/// Each delivery comes with all its attempts.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "Deliveries", operation_id = "listDeliveries",
    params(
        ("id" = i64, Path, description = "The webhook id"),
        ("outcome" = Option<String>, Query, description = "pending, succeeded, failed, parked or cancelled"),
        ("event" = Option<String>, Query, description = "Only this event type code"),
        ("before" = Option<i64>, Query, description = "Only deliveries older than this delivery id (the previous page's `next_before`)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 50)"),
    ),
    responses((status = 200, description = "A page of deliveries", body = DeliveryPage)),
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.reader()?.id;
    let query: LogQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|err| ApiError::invalid("query", format!("The query string is not understood: {err}")))?;
    let filter = LogFilter {
        outcome: query.outcome.unwrap_or_default(),
        event: query.event.unwrap_or_default(),
        before: query.before.map(|b| b.to_string()).unwrap_or_default(),
    };
    let limit = query.limit.unwrap_or(50);
    let (_, page) = services::deliveries::log(&state, tenant_id, id.into_inner(), filter, limit).await?;
    let LogPage { entries, next_before } = page;
    let deliveries: Vec<DeliveryView> = entries
        .into_iter()
        .map(|e| DeliveryView {
            id: e.delivery.id,
            event_id: e.delivery.event_id,
            event_type: e.event_type,
            status: e.delivery.status.to_string(),
            attempt_count: e.delivery.attempt_count,
            next_attempt_at: e.delivery.next_attempt_at,
            created_at: e.delivery.created_at,
            completed_at: e.delivery.completed_at,
            ordering_key: e.delivery.ordering_key,
            waits_for: e.waits_for,
            attempts: e.attempts.into_iter().map(AttemptView::from).collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryPage {
        deliveries,
        next_before,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Resent {
    /// The delivery, queued again.
    id: i64,
    event_id: String,
    #[schema(example = "pending")]
    status: String,
}

/// Resend a delivery
///
/// The same envelope, byte for byte, is queued again for its webhook.
#[utoipa::path(
    post, path = "/api/v1/deliveries/{id}/resend", tag = "Deliveries", operation_id = "resendDelivery",
    params(("id" = i64, Path, description = "The delivery id")),
    responses((status = 202, description = "Queued again", body = Resent)),
)]
pub async fn resend(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.writer()?.id;
    let actor = super::webhooks::actor(&caller);
    let delivery = services::deliveries::resend(&state, tenant_id, id.into_inner(), actor).await?;
    Ok(HttpResponse::Accepted().json(Resent {
        id: delivery.id,
        event_id: delivery.event_id,
        status: delivery.status.to_string(),
    }))
}

/// Which test event to send.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "booking.created"}))]
pub struct TestBody {
    /// An event type code of the catalog; its example payload is sent.
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TestSent {
    /// The test event's id.
    id: String,
    /// The delivery to this webhook.
    delivery: i64,
}

/// Send a test event
///
/// The catalog's example of the chosen type goes to this webhook only, signed like any
/// other delivery.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/test", tag = "Deliveries", operation_id = "sendTestEvent",
    params(("id" = i64, Path, description = "The webhook id")),
    request_body = TestBody,
    responses((status = 202, description = "Queued", body = TestSent)),
)]
pub async fn test(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.writer()?.id;
    let body: TestBody = read_json(&req, payload).await?;
    let actor = super::webhooks::actor(&caller);
    let sent = services::deliveries::send_test(&state, tenant_id, id.into_inner(), body.kind, actor).await?;
    Ok(HttpResponse::Accepted().json(TestSent {
        id: sent.event_id,
        delivery: sent.delivery_id,
    }))
}

/// Which deliveries of a webhook to send again.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "since": "2026-11-22T02:00:00Z", "until": "2026-11-22T04:00:00Z",
    "outcome": "failed", "event_types": ["booking.created"], "dry_run": true
}))]
pub struct ReplayBody {
    /// Deliveries created at or after this time (RFC 3339).
    #[schema(value_type = String, format = DateTime, required = true)]
    since: Option<String>,
    /// ... and before this time (RFC 3339); later than `since`.
    #[schema(value_type = String, format = DateTime, required = true)]
    until: Option<String>,
    /// `failed` (the default), `succeeded`, or `any` (either). Pending, parked and
    /// cancelled deliveries are never replayed.
    #[schema(value_type = Option<String>, pattern = "^(failed|succeeded|any)$")]
    outcome: Option<String>,
    /// Only these event types; all when absent or empty.
    event_types: Option<Vec<String>>,
    /// Count only: answers 200 and changes nothing.
    dry_run: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplayCount {
    /// Deliveries sent again (or, in a dry run, that would be).
    count: i64,
}

/// Replay a webhook's deliveries
///
/// Sends again, through the normal retry path, every delivery of the webhook created in
/// [`since`, `until`) with the chosen outcome and event types: the same delivery, so the
/// same `webhook-id` and body, its attempts continuing from where they were. At most
/// 100,000 per call (more: 422, narrow the range). A webhook that is switched off answers
/// 409. With `dry_run`, only counts.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/replay", tag = "Deliveries", operation_id = "replayDeliveries",
    params(("id" = i64, Path, description = "The webhook id")),
    request_body = ReplayBody,
    responses(
        (status = 200, description = "Dry run: how many would be sent again", body = ReplayCount),
        (status = 202, description = "Queued again", body = ReplayCount),
        (status = 409, description = "The webhook is switched off: switch it on first", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or not valid (`field` names it), or more than 100,000 deliveries match (narrow the range)", body = ErrorBody),
    ),
)]
pub async fn replay(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.writer()?.id;
    let body: ReplayBody = read_json(&req, payload).await?;
    let ask = services::replay::Ask {
        since: body.since.unwrap_or_default(),
        until: body.until.unwrap_or_default(),
        outcome: body.outcome.unwrap_or_default(),
        event_types: body.event_types.unwrap_or_default(),
        times: services::replay::Times::Rfc3339,
    };
    let dry_run = body.dry_run.unwrap_or(false);
    let actor = super::webhooks::actor(&caller);
    let replayed = services::replay::replay(&state, tenant_id, id.into_inner(), ask, dry_run, actor).await?;
    let answer = ReplayCount {
        count: replayed.count,
    };
    Ok(if dry_run {
        HttpResponse::Ok().json(answer)
    } else {
        HttpResponse::Accepted().json(answer)
    })
}
