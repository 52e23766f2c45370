//! Deliveries: a webhook's log, page by page, sending one again, and test events.

use chrono::{DateTime, Utc};
use diesel::PgConnection;

use super::webhooks::record;
use super::{Actor, AppError};
use crate::delivery::outbox::{self, NewEvent};
use crate::models::audit::AuditEntry;
use crate::models::connection::Connection;
use crate::models::delivery::{Attempt, Delivery, HourHealth, LogFilter, LogPage, notify};
use crate::models::event_type::EventType;
use crate::models::tenant::Tenant;
use crate::models::webhook::{Scope, Webhook};
use crate::state::AppState;
use diesel::Connection as _;

/// At most this many deliveries on one page of the API's log.
pub const MAX_PAGE: i64 = 500;

/// A page of a webhook's log, newest first; `next_before` only when an older page exists.
/// A filter value that does not parse is refused.
pub async fn log(
    state: &AppState,
    scope: impl Into<Scope>,
    webhook_id: i64,
    filter: LogFilter,
    limit: i64,
) -> Result<(Webhook, LogPage), AppError> {
    check_log(&filter, limit)?;
    let (scope, now) = (scope.into(), state.clock.now());
    state
        .db(move |conn| log_in(conn, scope, webhook_id, &filter, limit, now))
        .await
}

/// What the webhook page shows, read in one trip to the database: the webhook, its
/// connection, a page of its log and its last 24 hours.
pub struct Overview {
    pub webhook: Webhook,
    pub connection: Option<Connection>,
    pub log: LogPage,
    pub hours: Vec<HourHealth>,
    /// Of an ordered webhook: the ordering keys with deliveries held back.
    pub held_keys: i64,
}

pub async fn overview(
    state: &AppState,
    scope: impl Into<Scope>,
    webhook_id: i64,
    filter: LogFilter,
    limit: i64,
) -> Result<Overview, AppError> {
    check_log(&filter, limit)?;
    let (scope, now) = (scope.into(), state.clock.now());
    state
        .db(move |conn| {
            let (webhook, log) = log_in(conn, scope, webhook_id, &filter, limit, now)?;
            let connection = webhook
                .connection_id
                .map(|id| Connection::find(conn, scope.tenant_id, id))
                .transpose()?;
            let hours = Delivery::health(conn, webhook.id, now)?;
            let held_keys = if webhook.ordered {
                Delivery::held_keys(conn, webhook.id)?
            } else {
                0
            };
            Ok(Overview {
                webhook,
                connection,
                log,
                hours,
                held_keys,
            })
        })
        .await
}

fn check_log(filter: &LogFilter, limit: i64) -> Result<(), AppError> {
    filter
        .check()
        .map_err(|(field, message)| AppError::validation(field, message))?;
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("`limit` must be between 1 and {MAX_PAGE}."),
        ));
    }
    Ok(())
}

fn log_in(
    conn: &mut PgConnection,
    scope: Scope,
    webhook_id: i64,
    filter: &LogFilter,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<(Webhook, LogPage), AppError> {
    let webhook = Webhook::find(conn, scope, webhook_id)?;
    let page = Delivery::log_page(conn, (webhook.id, webhook.created_at), filter, limit, now)?;
    Ok((webhook, page))
}

/// Queues a delivery again: the same event id and body, due at once, its attempts
/// numbered on from where they were. One being attempted right now is left on its way.
pub async fn resend(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    actor: Actor,
) -> Result<Delivery, AppError> {
    let (scope, now) = (scope.into(), state.clock.now());
    let tenant_id = scope.tenant_id;
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                visible(conn, scope, id)?;
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

/// A delivery of a webhook in the scope; any other answers `NotFound`.
fn visible(conn: &mut PgConnection, scope: Scope, id: i64) -> Result<Delivery, AppError> {
    let delivery = Delivery::find(conn, scope.tenant_id, id)?;
    Webhook::find(conn, scope, delivery.webhook_id)?;
    Ok(delivery)
}

/// The whole body a delivery sends, which the log shows only the start of.
pub async fn body(state: &AppState, scope: impl Into<Scope>, id: i64) -> Result<String, AppError> {
    let scope = scope.into();
    state
        .db(move |conn| {
            visible(conn, scope, id)?;
            Ok(Delivery::body(conn, scope.tenant_id, id)?)
        })
        .await
}

/// One attempt of a delivery, with its whole stored response.
pub async fn attempt(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    number: i32,
) -> Result<Attempt, AppError> {
    let scope = scope.into();
    state
        .db(move |conn| {
            visible(conn, scope, id)?;
            Ok(Delivery::attempt(conn, scope.tenant_id, id, number)?)
        })
        .await
}

/// A webhook's delivery log as an Excel file: its number and the file.
pub async fn export(
    state: &AppState,
    scope: impl Into<Scope>,
    webhook_id: i64,
    filter: LogFilter,
    timezone: String,
) -> Result<(i32, Vec<u8>), AppError> {
    filter
        .check()
        .map_err(|(field, message)| AppError::validation(field, message))?;
    let scope = scope.into();
    state
        .db(move |conn| {
            let webhook = Webhook::find(conn, scope, webhook_id)?;
            let bytes = super::export::deliveries(conn, webhook.id, &filter, &timezone)?;
            Ok((webhook.number, bytes))
        })
        .await
}

/// A test event sent to one webhook.
#[derive(Debug, Clone)]
pub struct TestSent {
    pub webhook_number: i32,
    pub event_id: String,
    pub delivery_id: i64,
}

/// Publishes the catalog's example of `kind` to this webhook only, through the outbox like
/// any event: its capabilities and customer language apply, and it is signed and retried
/// the same way.
pub async fn send_test(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    kind: String,
    actor: Actor,
) -> Result<TestSent, AppError> {
    let (scope, now) = (scope.into(), state.clock.now());
    state
        .db(move |conn| send_test_in(conn, scope, id, &kind, &actor, now))
        .await
}

/// [`send_test`] on a connection the caller holds (tests). A partner's scope sends only to
/// its connection's webhooks.
pub fn send_test_in(
    conn: &mut PgConnection,
    scope: impl Into<Scope>,
    id: i64,
    kind: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<TestSent, AppError> {
    let scope = scope.into();
    let tenant = Tenant::find(conn, scope.tenant_id)?;
    let webhook = Webhook::find(conn, scope, id)?;
    let event_type = EventType::find(conn, kind)?.ok_or_else(|| {
        AppError::validation("type", format!("`{kind}` is not an event type of the catalog."))
    })?;
    let connection = match webhook.connection_id {
        Some(cid) => Some(Connection::find(conn, tenant.id, cid)?.external_id),
        None => None,
    };
    let event = NewEvent {
        kind: event_type.code.clone(),
        data: event_type.example_payload.clone(),
        occurred_at: None,
        connection,
        language: None,
        idempotency_key: None,
        ordering_key: None,
    };
    conn.transaction(|conn| {
        let accepted = outbox::publish_to(conn, &tenant, webhook.clone(), &event, now)?;
        let delivery = Delivery::of_event(conn, tenant.id, webhook.id, &accepted.id)?;
        record(
            conn,
            actor,
            &webhook,
            "webhook.test_sent",
            serde_json::json!({
                "type": event_type.code, "event": accepted.id,
            }),
        )?;
        Ok(TestSent {
            webhook_number: webhook.number,
            event_id: accepted.id,
            delivery_id: delivery.id,
        })
    })
}
