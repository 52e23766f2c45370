//! A webhook's credentials: its signing secret (revealed to owners, admins and tenant
//! keys, each reveal audited; rotated with a 24-hour overlap) and its own API key (switched,
//! regenerated and shown once).

use chrono::{DateTime, Duration, Utc};
use diesel::Connection as _;

use super::webhooks::record;
use super::{Actor, AppError};
use crate::models::delivery::notify;
use crate::models::webhook::{SECRET_OVERLAP_HOURS, Scope, Webhook};
use crate::state::AppState;

/// The signing secret in clear, for an owner, an admin or a tenant key; each reveal is
/// recorded in the audit log.
pub async fn reveal_secret(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    actor: Actor,
) -> Result<(Webhook, String), AppError> {
    let (scope, secrets) = (scope.into(), state.secrets());
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let webhook = Webhook::find(conn, scope, id)?;
                let secret = webhook.reveal_secret(&secrets)?;
                record(
                    conn,
                    &actor,
                    &webhook,
                    "webhook.secret_revealed",
                    serde_json::json!({}),
                )?;
                Ok((webhook, secret))
            })
        })
        .await
}

/// A new signing secret signs at once; the previous one keeps signing for 24 hours.
/// Returns the webhook, the new secret and until when the previous one signs.
pub async fn rotate_secret(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    actor: Actor,
) -> Result<(Webhook, String, DateTime<Utc>), AppError> {
    let (scope, secrets, now) = (scope.into(), state.secrets(), state.clock.now());
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let webhook = Webhook::rotate_secret(conn, scope, id, &secrets, now)?;
                record(
                    conn,
                    &actor,
                    &webhook,
                    "webhook.secret_rotated",
                    serde_json::json!({}),
                )?;
                // Deliveries a worker already queued are signed with the new secret too.
                notify(conn)?;
                let secret = webhook.reveal_secret(&secrets)?;
                Ok((webhook, secret, now + Duration::hours(SECRET_OVERLAP_HOURS)))
            })
        })
        .await
}

/// Switches the webhook's own API key on or off.
pub async fn set_api_key(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    enabled: bool,
    actor: Actor,
) -> Result<Webhook, AppError> {
    let scope = scope.into();
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let webhook = Webhook::set_api_key_enabled(conn, scope, id, enabled)?;
                let action = if enabled {
                    "webhook.api_key_enabled"
                } else {
                    "webhook.api_key_disabled"
                };
                record(conn, &actor, &webhook, action, serde_json::json!({}))?;
                Ok(webhook)
            })
        })
        .await
}

/// Replaces the webhook's API key; the new key is returned once.
pub async fn regenerate_api_key(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    actor: Actor,
) -> Result<(Webhook, String), AppError> {
    let scope = scope.into();
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let (webhook, key) = Webhook::regenerate_api_key(conn, scope, id)?;
                record(
                    conn,
                    &actor,
                    &webhook,
                    "webhook.api_key_regenerated",
                    serde_json::json!({}),
                )?;
                Ok((webhook, key))
            })
        })
        .await
}
