//! API Keys (`/api-keys`): the booking platform's credentials for `/api/v1`. A key is shown
//! once when created, stored hashed with a visible prefix, can be switched off (it then
//! answers 401, nothing is deleted) and deleted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::models::api_key::ApiKey;
use crate::services::accounts;
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};
use crate::web::{render, see_other};

pub struct KeyRow {
    pub key: ApiKey,
    pub created: String,
    pub last_used: Option<String>,
}

#[derive(Template)]
#[template(path = "api_keys/index.html")]
pub struct ApiKeysPage {
    pub chrome: Chrome,
    pub rows: Vec<KeyRow>,
    pub can_edit: bool,
    pub error: Option<String>,
    pub name: String,
    /// A key just created: shown this once.
    pub new_key: Option<(String, String)>,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    error: Option<String>,
    name: String,
    new_key: Option<(String, String)>,
) -> Result<ApiKeysPage, AppError> {
    let tenant = user.tenant()?.clone();
    let tenant_id = tenant.id;
    let keys = state.db(move |conn| Ok(ApiKey::list(conn, tenant_id)?)).await?;
    Ok(ApiKeysPage {
        chrome: user.chrome("API Keys", "api-keys"),
        rows: keys
            .into_iter()
            .map(|key| KeyRow {
                created: format_time(key.created_at, &tenant.timezone),
                last_used: key.last_used_at.map(|at| format_time(at, &tenant.timezone)),
                key,
            })
            .collect(),
        can_edit: user.role().can_edit(),
        error,
        name,
        new_key,
    })
}

pub async fn index(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    let page = page(&state, &user, None, String::new(), None).await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KeyForm {
    name: String,
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.require_editor()?.id;
    let name = match accounts::check_key_name(&form.name) {
        Ok(name) => name,
        Err(message) => {
            let page = page(&state, &user, Some(message), form.name.clone(), None).await?;
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let (actor, user_id) = (user.actor(), user.user.id);
    let (key, secret) = state
        .db(move |conn| accounts::create_api_key(conn, tenant_id, &name, Some(user_id), &actor))
        .await?;
    let page = page(&state, &user, None, String::new(), Some((key.name, secret))).await?;
    render(StatusCode::CREATED, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SwitchForm {
    enabled: Option<String>,
}

pub async fn switch(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.require_editor()?.id;
    let (id, actor) = (id.into_inner(), user.actor());
    let enabled = form.enabled.as_deref().is_some_and(|v| v == "on" || v == "true");
    state
        .db(move |conn| accounts::set_api_key_enabled(conn, tenant_id, id, enabled, &actor))
        .await?;
    Ok(see_other("/api-keys"))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.require_editor()?.id;
    let (id, actor) = (id.into_inner(), user.actor());
    state
        .db(move |conn| accounts::delete_api_key(conn, tenant_id, id, &actor))
        .await?;
    Ok(see_other("/api-keys"))
}
