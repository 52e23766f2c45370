//! Connections (`/connections`): a tenant's partner contracts and sales channels. A
//! webhook may be scoped to one; a connection in use cannot be deleted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::models::audit::{Actor, AuditEntry};
use crate::models::connection::{Connection, NewConnection};
use crate::state::AppState;
use crate::web::session::{CurrentUser, TOOL_OFF_NOTICE};
use crate::web::views::Chrome;
use crate::web::{render, see_other};

pub const MAX_NAME_CHARS: usize = 200;

pub struct ConnectionRow {
    pub connection: Connection,
    pub webhooks: i64,
}

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "connections.html")]
pub struct ConnectionsPage {
    pub chrome: Chrome,
    pub rows: Vec<ConnectionRow>,
    pub can_edit: bool,
    pub read_only: Option<&'static str>,
    pub error: Option<String>,
    pub name: String,
    pub external_id: String,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    error: Option<String>,
    name: String,
    external_id: String,
) -> Result<ConnectionsPage, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let tenant_id = tenant.id;
    let rows = state
        .db(move |conn| {
            Connection::list(conn, tenant_id)?
                .into_iter()
                .map(|c| {
                    Ok(ConnectionRow {
                        webhooks: Connection::webhook_count(conn, tenant_id, c.id)?,
                        connection: c,
                    })
                })
                .collect::<Result<Vec<_>, AppError>>()
        })
        .await?;
    Ok(ConnectionsPage {
        chrome: user.chrome("Connections", "connections"),
        rows,
        can_edit: user.role().can_edit() && tenant.webhooks_enabled,
        read_only: (!tenant.webhooks_enabled).then_some(TOOL_OFF_NOTICE),
        error,
        name,
        external_id,
    })
}

pub async fn index(state: web::Data<AppState>, user: CurrentUser) -> Result<ConnectionsPage, AppError> {
    page(&state, &user, None, String::new(), String::new()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConnectionForm {
    name: String,
    external_id: String,
}

pub fn check_text(label: &str, text: &str) -> Result<String, String> {
    let text = text.trim();
    match text.chars().count() {
        0 => Err(format!("Enter the {label}.")),
        n if n > MAX_NAME_CHARS => Err(format!(
            "The {label} may have at most {MAX_NAME_CHARS} characters (it has {n})."
        )),
        _ if text.chars().any(char::is_control) => Err(format!("The {label} may not contain line breaks.")),
        _ => Ok(text.to_owned()),
    }
}

/// Adds a connection, refusing a contract id the tenant has already, and records it in
/// the audit log. The page and the API both add connections through here.
pub fn add(
    conn: &mut diesel::PgConnection,
    tenant_id: i64,
    name: &str,
    external_id: &str,
    actor: &Actor,
) -> Result<Connection, AppError> {
    conn.build_transaction().run(|conn| {
        if Connection::find_by_external_id(conn, tenant_id, external_id)?.is_some() {
            return Err(AppError::validation(
                "external_id",
                format!("A connection with contract id {external_id} exists already."),
            ));
        }
        let connection = Connection::create(
            conn,
            NewConnection {
                tenant_id,
                name,
                external_id,
            },
        )?;
        AuditEntry::record(
            conn,
            Some(tenant_id),
            actor,
            "connection.created",
            ("connection", Some(&connection.external_id)),
            serde_json::json!({ "name": connection.name }),
        )?;
        Ok(connection)
    })
}

/// Deletes a connection unless webhooks use it (a conflict that says how many), and
/// records it in the audit log. The page and the API both delete through here.
pub fn remove(
    conn: &mut diesel::PgConnection,
    tenant_id: i64,
    id: i64,
    actor: &Actor,
) -> Result<(), AppError> {
    conn.build_transaction().run(|conn| {
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
        Connection::delete(conn, tenant_id, id)?;
        AuditEntry::record(
            conn,
            Some(tenant_id),
            actor,
            "connection.deleted",
            ("connection", Some(&connection.external_id)),
            serde_json::json!({ "name": connection.name }),
        )?;
        Ok(())
    })
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<ConnectionForm>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let form = form.into_inner();
    let checked = check_text("name", &form.name)
        .and_then(|name| Ok((name, check_text("contract id", &form.external_id)?)));
    let (name, external_id) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            let page = page(&state, &user, Some(message), form.name, form.external_id).await?;
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let actor = user.actor();
    let created = state
        .db(move |conn| add(conn, tenant_id, &name, &external_id, &actor))
        .await;
    match created {
        Ok(_) => Ok(see_other("/connections")),
        Err(AppError::Validation { message, .. }) => {
            let page = page(&state, &user, Some(message), form.name, form.external_id).await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(err) => Err(err),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RenameForm {
    name: String,
}

pub async fn rename(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<RenameForm>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let id = id.into_inner();
    let name = match check_text("name", &form.name) {
        Ok(name) => name,
        Err(message) => {
            state
                .db(move |conn| Ok(Connection::find(conn, tenant_id, id)?))
                .await?;
            let page = page(&state, &user, Some(message), String::new(), String::new()).await?;
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let actor = user.actor();
    state
        .db(move |conn| {
            conn.build_transaction().run(|conn| {
                let before = Connection::find(conn, tenant_id, id)?;
                let after = Connection::rename(conn, tenant_id, id, &name)?;
                AuditEntry::record(
                    conn,
                    Some(tenant_id),
                    &actor,
                    "connection.renamed",
                    ("connection", Some(&after.external_id)),
                    serde_json::json!({ "from": before.name, "to": after.name }),
                )?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    Ok(see_other("/connections"))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let id = id.into_inner();
    let actor = user.actor();
    let outcome = state.db(move |conn| remove(conn, tenant_id, id, &actor)).await;
    match outcome {
        Ok(()) => Ok(see_other("/connections")),
        Err(AppError::Conflict(message)) => {
            let page = page(&state, &user, Some(message), String::new(), String::new()).await?;
            render(StatusCode::CONFLICT, &page)
        }
        Err(err) => Err(err),
    }
}
