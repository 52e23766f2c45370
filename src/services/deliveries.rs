//! Deliveries: a webhook's log, page by page, and sending one again.

use super::{Actor, AppError};
use crate::models::audit::AuditEntry;
use crate::models::delivery::{Delivery, LogFilter, LogPage, notify};
use crate::models::webhook::Webhook;
use crate::state::AppState;
use diesel::Connection as _;

/// At most this many deliveries on one page of the API's log.
pub const MAX_PAGE: i64 = 500;

/// A page of a webhook's log, newest first; `next_before` only when an older page exists.
/// A filter value that does not parse is refused.
pub async fn log(
    state: &AppState,
    tenant_id: i64,
    webhook_id: i64,
    filter: LogFilter,
    limit: i64,
) -> Result<(Webhook, LogPage), AppError> {
    filter
        .check()
        .map_err(|(field, message)| AppError::validation(field, message))?;
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("`limit` must be between 1 and {MAX_PAGE}."),
        ));
    }
    state
        .db(move |conn| {
            let webhook = Webhook::find(conn, tenant_id, webhook_id)?;
            let page = Delivery::log_page(conn, webhook.id, &filter, limit)?;
            Ok((webhook, page))
        })
        .await
}

/// Queues a delivery again: the same event id and body, due at once, its attempts
/// numbered on from where they were. One being attempted right now is left on its way.
pub async fn resend(state: &AppState, tenant_id: i64, id: i64, actor: Actor) -> Result<Delivery, AppError> {
    let now = state.clock.now();
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let delivery = Delivery::resend(conn, tenant_id, id, now)?;
                AuditEntry::record(
                    conn,
                    Some(tenant_id),
                    &actor,
                    "delivery.resent",
                    ("delivery", Some(&delivery.id.to_string())),
                    serde_json::json!({ "event": delivery.event_id }),
                )?;
                notify(conn)?;
                Ok(delivery)
            })
        })
        .await
}
