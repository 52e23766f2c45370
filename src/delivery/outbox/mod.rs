//! Publishing: the event and one delivery per matching webhook are written in the same
//! transaction (the outbox), so an event the API accepted is never lost and a rolled-back
//! one is never sent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

mod rows;

use super::filtering::{Tally, passes};
use super::payload::{Published, tailor};
use crate::models::delivery::notify;
use crate::models::event::{Envelope, new_event_id, wire_time};
use crate::models::tenant::Tenant;
use crate::models::webhook::{Status, Webhook};
use crate::schema::{connections, deliveries, events};
use rows::{DeliveryRow, EventRow, add_counts, insert_deliveries, insert_events, lock_webhooks};

/// At most this many events in one batch request.
pub const MAX_BATCH: usize = 500;

/// One event as the platform publishes it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: String,
    pub data: serde_json::Value,
    pub occurred_at: Option<DateTime<Utc>>,
    /// The external id of one of the tenant's connections.
    pub connection: Option<String>,
    pub language: Option<String>,
    pub idempotency_key: Option<String>,
    /// Deliveries of one key to an `ordered` webhook go out one at a time, in publish order.
    pub ordering_key: Option<String>,
}

/// What publishing one event did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(example = json!({"id": "01JD3Q7Z8K4V6X9B2N5M8P1R3T", "type": "booking.created", "deliveries": 2}))]
pub struct Accepted {
    /// The event id (a ULID): the `id` of every delivery's envelope.
    pub id: String,
    /// The event type code.
    #[serde(rename = "type")]
    pub kind: String,
    /// How many deliveries the event fanned out to (parked ones included).
    pub deliveries: i64,
}

/// Why an event was refused; `index` is its position in a batch.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{message}")]
    Invalid {
        index: usize,
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl From<PublishError> for crate::error::AppError {
    fn from(err: PublishError) -> Self {
        use crate::error::AppError;
        match err {
            PublishError::Invalid {
                index,
                field,
                message,
            } => AppError::InvalidItem {
                index,
                field,
                message,
            },
            // Two requests with one idempotency key at the same moment: the second lost.
            PublishError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => AppError::Conflict(
                "The same idempotency_key was used by a request at the same moment; retry.".into(),
            ),
            PublishError::Database(err) => err.into(),
        }
    }
}

/// Whether a webhook receives an event of this type and connection.
fn matches(webhook: &Webhook, kind: &str, connection_id: Option<i64>) -> bool {
    webhook.events.iter().any(|e| e == kind)
        && webhook.connection_id.is_none_or(|id| Some(id) == connection_id)
}

/// Who an event goes to: every webhook subscribed to it, or one webhook whatever it
/// subscribes to (a test event).
#[derive(Clone, Copy)]
enum Audience {
    Subscribers,
    Only,
}

/// What a batch writes, worked out before anything is written.
struct FanOut<'a> {
    accepted: Vec<Accepted>,
    events: Vec<EventRow<'a>>,
    deliveries: Vec<DeliveryRow>,
    /// What the batch did to each webhook touched, by webhook id.
    per_webhook: Vec<(i64, Tally)>,
}

/// Validates a batch and works out its events and deliveries for the webhooks in
/// `receiving`. Reads only (earlier events with the same idempotency keys).
fn fan_out<'a>(
    conn: &mut PgConnection,
    tenant: &Tenant,
    batch: &'a [NewEvent],
    receiving: &[Webhook],
    audience: Audience,
    now: DateTime<Utc>,
) -> Result<FanOut<'a>, PublishError> {
    let known = crate::models::event_type::EventType::all(conn)?;
    let tenant_connections: HashMap<String, (i64, String)> = connections::table
        .filter(connections::tenant_id.eq(tenant.id))
        .select((connections::external_id, connections::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .map(|(external, id)| (external.clone(), (id, external)))
        .collect();
    let mut accepted = Vec::with_capacity(batch.len());
    let mut event_rows = Vec::new();
    let mut delivery_rows = Vec::new();
    let mut per_webhook: HashMap<i64, Tally> = HashMap::new();
    for (index, event) in batch.iter().enumerate() {
        if !known.iter().any(|t| t.code == event.kind) {
            return Err(PublishError::Invalid {
                index,
                field: "type",
                message: format!(
                    "`{}` is not an event type of the catalog (see GET /api/v1/event-types).",
                    event.kind
                ),
            });
        }
        if let Some(key) = &event.idempotency_key {
            let earlier: Option<(String, String)> = events::table
                .filter(events::tenant_id.eq(tenant.id))
                .filter(events::idempotency_key.eq(key))
                .select((events::id, events::event_type))
                .first(conn)
                .optional()?;
            if let Some((id, kind)) = earlier {
                let count = deliveries::table
                    .filter(deliveries::event_id.eq(&id))
                    .count()
                    .get_result(conn)?;
                accepted.push(Accepted {
                    id,
                    kind,
                    deliveries: count,
                });
                continue;
            }
            if batch[..index]
                .iter()
                .any(|e| e.idempotency_key.as_ref() == Some(key))
            {
                let first = accepted[batch
                    .iter()
                    .position(|e| e.idempotency_key.as_ref() == Some(key))
                    .unwrap_or(0)]
                .clone();
                accepted.push(first);
                continue;
            }
        }
        let connection = match &event.connection {
            None => None,
            Some(external) => {
                Some(
                    tenant_connections
                        .get(external)
                        .ok_or_else(|| PublishError::Invalid {
                            index,
                            field: "connection",
                            message: format!(
                                "`{external}` is not the contract id of one of your connections."
                            ),
                        })?,
                )
            }
        };
        let occurred_at = event.occurred_at.unwrap_or(now);
        let id = new_event_id(now);
        let published = Published {
            id: &id,
            kind: &event.kind,
            occurred_at,
            tenant: &tenant.slug,
            connection: connection.map(|(_, external)| external.as_str()),
            data: &event.data,
            language: event.language.as_deref(),
        };
        let body = Envelope {
            id: &id,
            kind: &event.kind,
            timestamp: wire_time(occurred_at),
            tenant: &tenant.slug,
            connection: published.connection,
            data: &event.data,
        }
        .to_body();
        let mut count = 0;
        let mut converted = None;
        // A test event goes to its one webhook whatever its filter: it was sent on purpose.
        for webhook in receiving {
            let w = webhook;
            let receives = match audience {
                Audience::Subscribers => {
                    matches(w, &event.kind, connection.map(|(id, _)| *id))
                        && match passes(
                            w,
                            (
                                &event.kind,
                                &event.data,
                                published.connection,
                                event.language.as_deref(),
                            ),
                            &mut converted,
                        ) {
                            Ok(true) => true,
                            Ok(false) => {
                                per_webhook.entry(w.id).or_default().skipped += 1;
                                false
                            }
                            Err(message) => {
                                let tally = per_webhook.entry(w.id).or_default();
                                tally.skipped += 1;
                                tally.errors += 1;
                                tally.last_error = Some(message);
                                false
                            }
                        }
                }
                Audience::Only => true,
            };
            if !receives {
                continue;
            }
            delivery_rows.push(DeliveryRow {
                webhook_id: webhook.id,
                event_id: id.clone(),
                event_type: event.kind.clone(),
                status: if webhook.status == Status::Active {
                    "pending"
                } else {
                    "parked"
                },
                body: tailor(&published, &webhook.capabilities, webhook.use_customer_language),
                ordering_key: event.ordering_key.clone().filter(|_| webhook.ordered),
            });
            per_webhook.entry(webhook.id).or_default().events += 1;
            count += 1;
        }
        accepted.push(Accepted {
            id: id.clone(),
            kind: event.kind.clone(),
            deliveries: count,
        });
        event_rows.push(EventRow {
            id,
            event_type: &event.kind,
            connection_id: connection.map(|(id, _)| *id),
            language: event.language.as_deref(),
            occurred_at,
            idempotency_key: event.idempotency_key.as_deref(),
            ordering_key: event.ordering_key.as_deref(),
            body,
        });
    }
    let mut per_webhook: Vec<(i64, Tally)> = per_webhook.into_iter().collect();
    per_webhook.sort_unstable_by_key(|(id, _)| *id);
    Ok(FanOut {
        accepted,
        events: event_rows,
        deliveries: delivery_rows,
        per_webhook,
    })
}

/// Publishes events in one transaction. Nothing is written unless every event is valid.
pub fn publish(
    conn: &mut PgConnection,
    tenant: &Tenant,
    batch: &[NewEvent],
    now: DateTime<Utc>,
) -> Result<Vec<Accepted>, PublishError> {
    conn.transaction(|conn| {
        // Webhooks receive only while the plan includes them and the tool is on.
        let receiving: Vec<Webhook> = if tenant.plan.has_webhooks() && tenant.webhooks_enabled {
            Webhook::list_all(conn, tenant.id)?
        } else {
            Vec::new()
        };
        write(conn, tenant, batch, receiving, Audience::Subscribers, now)
    })
}

/// Publishes one event to this webhook only, whatever it subscribes to: a test event, shaped
/// like any other (the webhook's capabilities and customer language applied) and delivered
/// the same way. A webhook switched off gets it parked.
pub fn publish_to(
    conn: &mut PgConnection,
    tenant: &Tenant,
    webhook: Webhook,
    event: &NewEvent,
    now: DateTime<Utc>,
) -> Result<Accepted, PublishError> {
    conn.transaction(|conn| {
        let mut accepted = write(
            conn,
            tenant,
            std::slice::from_ref(event),
            vec![webhook],
            Audience::Only,
            now,
        )?;
        match accepted.pop() {
            Some(accepted) if accepted.deliveries == 1 => Ok(accepted),
            // The webhook was deleted meanwhile.
            _ => Err(PublishError::Database(diesel::result::Error::NotFound)),
        }
    })
}

/// Publishes an operational event about webhook `about` (SPEC 9a) to every webhook
/// subscribed to its type, except `about` itself: a webhook never receives an event about
/// itself, so a failing endpoint cannot feed its own failures back to itself.
pub fn publish_about(
    conn: &mut PgConnection,
    tenant: &Tenant,
    event: &NewEvent,
    about: i64,
    now: DateTime<Utc>,
) -> Result<Accepted, PublishError> {
    conn.transaction(|conn| {
        let receiving: Vec<Webhook> = if tenant.plan.has_webhooks() && tenant.webhooks_enabled {
            Webhook::list_all(conn, tenant.id)?
                .into_iter()
                .filter(|w| w.id != about)
                .collect()
        } else {
            Vec::new()
        };
        let mut accepted = write(
            conn,
            tenant,
            std::slice::from_ref(event),
            receiving,
            Audience::Subscribers,
            now,
        )?;
        accepted
            .pop()
            .ok_or(PublishError::Database(diesel::result::Error::NotFound))
    })
}

/// Writes a validated batch for the webhooks in `receiving`, inside the caller's transaction.
fn write(
    conn: &mut PgConnection,
    tenant: &Tenant,
    batch: &[NewEvent],
    mut receiving: Vec<Webhook>,
    audience: Audience,
    now: DateTime<Utc>,
) -> Result<Vec<Accepted>, PublishError> {
    loop {
        let planned = fan_out(conn, tenant, batch, &receiving, audience, now)?;
        // The webhooks written to are locked before their deliveries are written: one
        // deleted meanwhile gets none (no foreign key checks that: migration
        // checked_by_writers), and the fan-out is worked out again without it.
        let ids: Vec<i64> = planned.per_webhook.iter().map(|(id, _)| *id).collect();
        let present = lock_webhooks(conn, &ids)?;
        if present.len() < ids.len() {
            receiving.retain(|w| present.contains(&w.id));
            continue;
        }
        add_counts(conn, &planned.per_webhook, now)?;
        if !planned.events.is_empty() {
            insert_events(conn, tenant.id, &planned.events)?;
        }
        if !planned.deliveries.is_empty() {
            insert_deliveries(conn, tenant.id, &planned.deliveries, now)?;
            notify(conn)?;
        }
        return Ok(planned.accepted);
    }
}
