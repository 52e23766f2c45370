//! Webhooks: create, edit, switch on and off, delete, the signing secret and the webhook's
//! own API key, test events. The pages and the API both come through here, so both check,
//! store, audit and wake the worker the same way.

use chrono::{DateTime, Utc};
use diesel::Connection as _;
use diesel::PgConnection;

use super::{Actor, AppError};
use crate::models::audit::AuditEntry;
use crate::models::connection::Connection;
use crate::models::delivery::{Delivery, notify};
use crate::models::event_type::EventType;
use crate::models::webhook::{Filter, Page, SaveError, Scope, Webhook};
use crate::state::{AppState, blocking};
use crate::validation::webhook::{Context, Input, Valid, validate};

/// What to do with parked deliveries when a webhook is switched back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parked {
    /// Leave them parked (they can still be resent one by one).
    #[default]
    Keep,
    /// Send them now.
    Resend,
    /// Cancel them: they are never sent.
    Drop,
}

impl std::str::FromStr for Parked {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "" | "keep" => Ok(Parked::Keep),
            "resend" => Ok(Parked::Resend),
            "drop" => Ok(Parked::Drop),
            other => Err(format!(
                "`{other}` is not a choice for parked deliveries (use resend, drop or keep)."
            )),
        }
    }
}

impl Parked {
    pub fn as_str(self) -> &'static str {
        match self {
            Parked::Keep => "keep",
            Parked::Resend => "resend",
            Parked::Drop => "drop",
        }
    }
}

/// A webhook switched on or off, and what happened to its parked deliveries.
#[derive(Debug, Clone)]
pub struct Switched {
    pub webhook: Webhook,
    /// Parked deliveries found when switching on, and what was done with them.
    pub parked: i64,
    pub choice: Parked,
}

impl From<SaveError> for AppError {
    fn from(err: SaveError) -> Self {
        match err {
            SaveError::LimitReached => AppError::Conflict(err.to_string()),
            SaveError::Database(err) => err.into(),
        }
    }
}

/// Validates a webhook against the catalog, the tenant's connections and the SSRF rules,
/// resolving host names on a blocking thread without holding a database connection. A
/// draft of an existing webhook gets its masked header values back first.
pub async fn check(
    state: &AppState,
    tenant_id: i64,
    mut draft: Input,
    existing: Option<&Webhook>,
) -> Result<Valid, AppError> {
    if let Some(webhook) = existing {
        draft.headers = webhook.restore_masked(draft.headers, &state.secrets())?;
    }
    let (known, examples, connection_ids) = state
        .db(move |conn| {
            let catalog = EventType::all(conn)?;
            let known: Vec<String> = catalog.iter().map(|t| t.code.clone()).collect();
            let examples: Vec<(String, serde_json::Value)> = catalog
                .iter()
                .map(|t| (t.code.clone(), t.example_payload.clone()))
                .collect();
            let ids: Vec<i64> = Connection::list(conn, tenant_id)?
                .into_iter()
                .map(|c| c.id)
                .collect();
            Ok((known, examples, ids))
        })
        .await?;
    let allow_http = state.settings.allow_http_targets;
    let allowed = state.settings.allow_private_targets.clone();
    blocking(move || {
        let ctx = Context {
            allow_http,
            allowed_private: &allowed,
            known_events: &known,
            examples: &examples,
            tenant_connections: &connection_ids,
            resolve: true,
        };
        validate(draft, &ctx).map_err(AppError::Fields)
    })
    .await
}

/// A webhook of the scope; any other answers `NotFound`.
pub async fn find(state: &AppState, scope: impl Into<Scope>, id: i64) -> Result<Webhook, AppError> {
    let scope = scope.into();
    state.db(move |conn| Ok(Webhook::find(conn, scope, id)?)).await
}

/// One page of the table. A filter value that does not parse is refused (the page shows
/// the message, the API answers 422).
pub async fn list(state: &AppState, scope: impl Into<Scope>, filter: Filter) -> Result<Page, AppError> {
    let scope = scope.into();
    filter
        .check()
        .map_err(|(field, message)| AppError::validation(field, message))?;
    state
        .db(move |conn| Ok(Webhook::list(conn, scope, &filter)?))
        .await
}

/// What the webhook table shows, read in one trip to the database: a page, how many
/// webhooks the scope has (to tell "none yet" from "none match"), the connections to
/// filter by (a partner's own only).
pub struct Table {
    pub page: Page,
    pub tenant_total: i64,
    pub connections: Vec<Connection>,
}

/// The table's view; a filter value that does not parse is refused, like [`list`].
pub async fn table(state: &AppState, scope: impl Into<Scope>, filter: Filter) -> Result<Table, AppError> {
    let scope = scope.into();
    filter
        .check()
        .map_err(|(field, message)| AppError::validation(field, message))?;
    state
        .db(move |conn| {
            let page = Webhook::list(conn, scope, &filter)?;
            let tenant_total = if filter.is_filtered() {
                Webhook::status_counts(conn, scope)?.total
            } else {
                page.total
            };
            let connections = Connection::list(conn, scope.tenant_id)?
                .into_iter()
                .filter(|c| scope.connection_id.is_none_or(|id| id == c.id))
                .collect();
            Ok(Table {
                page,
                tenant_total,
                connections,
            })
        })
        .await
}

/// Creates a webhook from a draft (checked here); returns it with its API key, shown once.
/// A partner's webhook belongs to its connection, whatever the draft says.
pub async fn create(
    state: &AppState,
    scope: impl Into<Scope>,
    mut draft: Input,
    actor: Actor,
) -> Result<(Webhook, String), AppError> {
    let scope = scope.into();
    let tenant_id = scope.tenant_id;
    if let Some(id) = scope.connection_id {
        draft.connection_id = Some(id);
    }
    let input = check(state, tenant_id, draft, None).await?;
    let secrets = state.secrets();
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let (webhook, key) = Webhook::create(conn, tenant_id, &input, &secrets)?;
                record(
                    conn,
                    &actor,
                    &webhook,
                    "webhook.created",
                    serde_json::json!({
                        "url": webhook.url, "events": webhook.events,
                    }),
                )?;
                Ok((webhook, key))
            })
        })
        .await
}

/// Saves an edited webhook. A change of its Active field switches it like the status
/// switch does (same rules, same audit entry), with `parked` for what was parked.
pub async fn update(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    mut draft: Input,
    parked: Parked,
    actor: Actor,
) -> Result<Webhook, AppError> {
    let scope = scope.into();
    let tenant_id = scope.tenant_id;
    if let Some(id) = scope.connection_id {
        draft.connection_id = Some(id);
    }
    let current = find(state, scope, id).await?;
    let input = check(state, tenant_id, draft, Some(&current)).await?;
    let (secrets, now) = (state.secrets(), state.clock.now());
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let before = Webhook::lock(conn, scope, id)?;
                let mut webhook = Webhook::update(conn, tenant_id, id, &input, &secrets)?;
                // What waits takes the new order: keyed when switched to ordered, free
                // of its key when switched off.
                if before.ordered != input.ordered {
                    Delivery::set_ordering_of_waiting(conn, webhook.id, input.ordered)?;
                }
                if changes_settings(&before, &input, &secrets) {
                    let mut details = serde_json::json!({
                        "url": webhook.url, "events": webhook.events, "ordered": webhook.ordered,
                        "filter": webhook.filter,
                    });
                    details["changes"] = changes(conn, &before, &webhook, &secrets)?;
                    record(conn, &actor, &webhook, "webhook.updated", details)?;
                }
                // The key's switch is recorded as the webhook page's switch records it.
                if before.api_key_enabled != input.api_key_enabled {
                    let action = if input.api_key_enabled {
                        "webhook.api_key_enabled"
                    } else {
                        "webhook.api_key_disabled"
                    };
                    record(conn, &actor, &webhook, action, serde_json::json!({}))?;
                }
                if input.active != webhook.is_active() {
                    webhook = switch_locked(conn, scope, id, input.active, parked, &actor, now)?.webhook;
                }
                // Deliveries a worker already queued take the new settings.
                notify(conn)?;
                Ok(webhook)
            })
        })
        .await
}

/// Whether a checked draft changes more than the switches (Active, the API key): a draft
/// that only switches is recorded as the switch alone, as the pages' switches record it.
fn changes_settings(webhook: &Webhook, input: &Valid, secrets: &crate::crypto::SecretBox) -> bool {
    webhook.url != input.url
        || webhook.description != input.description
        || webhook.events != input.events
        || webhook.connection_id != input.connection_id
        || webhook.retry_on_error != input.retry_on_error
        || webhook.use_customer_language != input.use_customer_language
        || webhook.capabilities != input.capabilities
        || webhook.ordered != input.ordered
        || webhook.filter != input.filter
        || webhook.headers(secrets).ok().as_ref() != Some(&input.headers)
}

/// What an edit changed, field by field, as `{"field": {"from", "to"}}` for the audit
/// log. Headers are named, never their values (they may be credentials); a connection by
/// its contract ID.
fn changes(
    conn: &mut PgConnection,
    before: &Webhook,
    after: &Webhook,
    secrets: &crate::crypto::SecretBox,
) -> Result<serde_json::Value, AppError> {
    use serde_json::{Value, json};
    let mut changed = serde_json::Map::new();
    let mut note = |field: &str, from: Value, to: Value| {
        if from != to {
            changed.insert(field.to_owned(), json!({ "from": from, "to": to }));
        }
    };
    note("url", json!(before.url), json!(after.url));
    note("description", json!(before.description), json!(after.description));
    note("events", json!(before.events), json!(after.events));
    if before.connection_id != after.connection_id {
        let mut contract = |id: Option<i64>| -> Result<Value, AppError> {
            Ok(match id {
                Some(id) => json!(Connection::find(conn, after.tenant_id, id)?.external_id),
                None => Value::Null,
            })
        };
        let (from, to) = (contract(before.connection_id)?, contract(after.connection_id)?);
        note("connection", from, to);
    }
    note(
        "retry_on_error",
        json!(before.retry_on_error),
        json!(after.retry_on_error),
    );
    note(
        "use_customer_language",
        json!(before.use_customer_language),
        json!(after.use_customer_language),
    );
    note(
        "capabilities",
        json!(before.capabilities),
        json!(after.capabilities),
    );
    note("ordered", json!(before.ordered), json!(after.ordered));
    note("filter", json!(before.filter), json!(after.filter));
    let headers = |w: &Webhook| w.headers(secrets).unwrap_or_default();
    let (old, new) = (headers(before), headers(after));
    if old != new {
        let names = |h: &[(String, String)]| h.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        changed.insert(
            "headers".to_owned(),
            json!({ "from": names(&old), "to": names(&new) }),
        );
    }
    Ok(Value::Object(changed))
}

/// How many deliveries wait parked for this webhook, to ask before switching it on.
pub async fn parked(state: &AppState, scope: impl Into<Scope>, id: i64) -> Result<(Webhook, i64), AppError> {
    let scope = scope.into();
    state
        .db(move |conn| {
            let webhook = Webhook::find(conn, scope, id)?;
            let parked = Delivery::parked_count(conn, webhook.id)?;
            Ok((webhook, parked))
        })
        .await
}

/// Switches a webhook on (resending, dropping or keeping what was parked) or off (its
/// waiting deliveries are parked).
pub async fn switch(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    active: bool,
    parked: Parked,
    actor: Actor,
) -> Result<Switched, AppError> {
    let (scope, now) = (scope.into(), state.clock.now());
    state
        .db(move |conn| switch_in(conn, scope, id, active, parked, &actor, now))
        .await
}

/// [`switch`] on a connection the caller holds (the command line, tests).
pub fn switch_in(
    conn: &mut PgConnection,
    scope: impl Into<Scope>,
    id: i64,
    active: bool,
    choice: Parked,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Switched, AppError> {
    let scope = scope.into();
    conn.transaction(|conn| {
        let switched = switch_locked(conn, scope, id, active, choice, actor, now)?;
        notify(conn)?;
        Ok(switched)
    })
}

/// The switch, inside the caller's transaction.
fn switch_locked(
    conn: &mut PgConnection,
    scope: Scope,
    id: i64,
    active: bool,
    choice: Parked,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Switched, AppError> {
    let before = Webhook::lock(conn, scope, id)?;
    let webhook = Webhook::set_status(conn, scope.tenant_id, id, active, now)?;
    let mut details = serde_json::json!({ "from": before.status, "to": webhook.status });
    let mut parked = 0;
    if active {
        parked = Delivery::parked_count(conn, id)?;
        match choice {
            Parked::Resend => Delivery::resend_parked(conn, id, now)?,
            Parked::Drop => Delivery::drop_parked(conn, id, now)?,
            Parked::Keep => 0,
        };
        if parked > 0 {
            details["parked_deliveries"] = serde_json::json!({ "count": parked, "choice": choice.as_str() });
        }
    } else {
        Delivery::park_waiting(conn, id, now)?;
    }
    let action = if active {
        "webhook.enabled"
    } else {
        "webhook.disabled"
    };
    if before.status != webhook.status {
        record(conn, actor, &webhook, action, details)?;
    }
    Ok(Switched {
        webhook,
        parked,
        choice,
    })
}

/// Deletes a webhook for good with its deliveries; returns its number and how many
/// deliveries were still waiting (they are never sent).
pub async fn delete(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    actor: Actor,
) -> Result<(i32, i64), AppError> {
    let scope = scope.into();
    state.db(move |conn| delete_in(conn, scope, id, &actor)).await
}

/// [`delete`] on a connection the caller holds (the command line, tests).
pub fn delete_in(
    conn: &mut PgConnection,
    scope: impl Into<Scope>,
    id: i64,
    actor: &Actor,
) -> Result<(i32, i64), AppError> {
    let scope = scope.into();
    conn.transaction(|conn| {
        // Locked first: publishing and the worker's writer take this row before they write
        // deliveries or attempts of the webhook, so none are added meanwhile.
        let webhook = Webhook::lock(conn, scope, id)?;
        let cancelled = Delivery::delete_of_webhook(conn, webhook.id)?;
        Webhook::delete_row(conn, scope.tenant_id, webhook.id)?;
        record(
            conn,
            actor,
            &webhook,
            "webhook.deleted",
            serde_json::json!({
                "url": webhook.url, "cancelled_deliveries": cancelled,
            }),
        )?;
        // A worker drops what it queued for this webhook.
        notify(conn)?;
        Ok((webhook.number, cancelled))
    })
}

/// Records `action` on `webhook` in the audit log, in the caller's transaction.
pub(super) fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    webhook: &Webhook,
    action: &str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    AuditEntry::record(
        conn,
        Some(webhook.tenant_id),
        actor,
        action,
        ("webhook", Some(&webhook.number.to_string())),
        details,
    )?;
    Ok(())
}
