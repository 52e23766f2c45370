//! Connections: a tenant's partner contracts and sales channels. A webhook may be limited
//! to one; a connection in use cannot be deleted.

use diesel::Connection as _;
use diesel::PgConnection;

use super::{Actor, AppError, check_name};
use crate::models::audit::AuditEntry;
use crate::models::connection::{Connection, NewConnection};
use crate::models::user::User;
use crate::state::AppState;

pub const MAX_NAME_CHARS: usize = 200;

/// A connection's name or contract id as typed: 1 to 200 characters, one line.
pub fn check_text(label: &str, text: &str) -> Result<String, String> {
    check_name(label, text, MAX_NAME_CHARS)
}

/// A connection with the number of webhooks limited to it.
pub struct Listed {
    pub connection: Connection,
    pub webhooks: i64,
}

pub async fn list(state: &AppState, tenant_id: i64) -> Result<Vec<Listed>, AppError> {
    state
        .db(move |conn| {
            Connection::list(conn, tenant_id)?
                .into_iter()
                .map(|c| {
                    Ok(Listed {
                        webhooks: Connection::webhook_count(conn, tenant_id, c.id)?,
                        connection: c,
                    })
                })
                .collect()
        })
        .await
}

/// Adds a connection (name and contract id checked here), refusing a contract id the
/// tenant has already.
pub async fn add(
    state: &AppState,
    tenant_id: i64,
    name: &str,
    external_id: &str,
    actor: Actor,
) -> Result<Connection, AppError> {
    let name = check_text("name", name).map_err(|m| AppError::validation("name", m))?;
    let external_id =
        check_text("contract id", external_id).map_err(|m| AppError::validation("external_id", m))?;
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                if Connection::find_by_external_id(conn, tenant_id, &external_id)?.is_some() {
                    return Err(AppError::validation(
                        "external_id",
                        format!("A connection with contract id {external_id} exists already."),
                    ));
                }
                let connection = Connection::create(
                    conn,
                    NewConnection {
                        tenant_id,
                        name: &name,
                        external_id: &external_id,
                    },
                )?;
                record(
                    conn,
                    &actor,
                    &connection,
                    "connection.created",
                    serde_json::json!({
                        "name": connection.name,
                    }),
                )?;
                Ok(connection)
            })
        })
        .await
}

pub async fn rename(
    state: &AppState,
    tenant_id: i64,
    id: i64,
    name: &str,
    actor: Actor,
) -> Result<Connection, AppError> {
    let name = check_text("name", name).map_err(|m| AppError::validation("name", m))?;
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let before = Connection::find(conn, tenant_id, id)?;
                let after = Connection::rename(conn, tenant_id, id, &name)?;
                record(
                    conn,
                    &actor,
                    &after,
                    "connection.renamed",
                    serde_json::json!({
                        "from": before.name, "to": after.name,
                    }),
                )?;
                Ok(after)
            })
        })
        .await
}

/// Deletes a connection unless webhooks use it (a conflict that says how many).
pub async fn remove(state: &AppState, tenant_id: i64, id: i64, actor: Actor) -> Result<(), AppError> {
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let connection = Connection::find(conn, tenant_id, id)?;
                let used = Connection::webhook_count(conn, tenant_id, id)?;
                if used > 0 {
                    return Err(AppError::Conflict(format!(
                        "{} is used by {used} webhook{}. Change or delete {} first.",
                        connection.name,
                        if used == 1 { "" } else { "s" },
                        if used == 1 { "it" } else { "them" }
                    )));
                }
                let partners = User::partner_count(conn, id)?;
                if partners > 0 {
                    return Err(AppError::Conflict(format!(
                        "{} is the connection of {partners} partner login{}. Change {} role or remove {} on the Users page first.",
                        connection.name,
                        if partners == 1 { "" } else { "s" },
                        if partners == 1 { "its" } else { "their" },
                        if partners == 1 { "it" } else { "them" }
                    )));
                }
                Connection::delete(conn, tenant_id, id)?;
                record(
                    conn,
                    &actor,
                    &connection,
                    "connection.deleted",
                    serde_json::json!({
                        "name": connection.name,
                    }),
                )?;
                Ok(())
            })
        })
        .await
}

fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    connection: &Connection,
    action: &str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    AuditEntry::record(
        conn,
        Some(connection.tenant_id),
        actor,
        action,
        ("connection", Some(&connection.external_id)),
        details,
    )?;
    Ok(())
}
