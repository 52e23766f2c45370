//! Connections (`/connections`): a tenant's partner contracts and sales channels. A
//! webhook may be scoped to one; a connection in use cannot be deleted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::services;
use crate::services::TOOL_OFF_NOTICE;
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;
use crate::web::{render, see_other};

pub use services::connections::Listed as ConnectionRow;

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "connections/index.html")]
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
    // The tenant's staff only: a partner sees its own connection in the header.
    user.tenant()?;
    let tenant = user.webhooks_tenant()?.clone();
    let tenant_id = tenant.id;
    let rows = services::connections::list(state, tenant_id).await?;
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

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<ConnectionForm>,
) -> Result<HttpResponse, AppError> {
    user.tenant()?;
    let tenant_id = user.webhooks_editor()?.id;
    let form = form.into_inner();
    let created =
        services::connections::add(&state, tenant_id, &form.name, &form.external_id, user.actor()).await;
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
    user.tenant()?;
    let tenant_id = user.webhooks_editor()?.id;
    let renamed =
        services::connections::rename(&state, tenant_id, id.into_inner(), &form.name, user.actor()).await;
    match renamed {
        Ok(_) => Ok(see_other("/connections")),
        Err(AppError::Validation { message, .. }) => {
            let page = page(&state, &user, Some(message), String::new(), String::new()).await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(err) => Err(err),
    }
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.tenant()?;
    let tenant_id = user.webhooks_editor()?.id;
    match services::connections::remove(&state, tenant_id, id.into_inner(), user.actor()).await {
        Ok(()) => Ok(see_other("/connections")),
        Err(AppError::Conflict(message)) => {
            let page = page(&state, &user, Some(message), String::new(), String::new()).await?;
            render(StatusCode::CONFLICT, &page)
        }
        Err(err) => Err(err),
    }
}
