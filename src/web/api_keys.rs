//! API Keys (`/api-keys`): the booking platform's credentials for `/api/v1`. A key is shown
//! once when created, stored hashed with a visible prefix, can be switched off (it then
//! answers 401, nothing is deleted) and deleted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::models::api_key::ApiKey;
use crate::models::audit::AuditEntry;
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};
use crate::web::{render, see_other};

pub const MAX_NAME_CHARS: usize = 100;

pub struct KeyRow {
    pub key: ApiKey,
    pub created: String,
    pub last_used: Option<String>,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
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
    let name = form.name.trim().to_owned();
    let problem = match name.chars().count() {
        0 => Some("Give the key a name that says who uses it, e.g. \"Booking platform\".".to_owned()),
        n if n > MAX_NAME_CHARS => Some(format!(
            "The name may have at most {MAX_NAME_CHARS} characters (it has {n})."
        )),
        _ if name.chars().any(char::is_control) => Some("The name may not contain line breaks.".to_owned()),
        _ => None,
    };
    if let Some(message) = problem {
        let page = page(&state, &user, Some(message), form.name.clone(), None).await?;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let actor = user.actor();
    let user_id = user.user.id;
    let (key, secret) = state
        .db(move |conn| {
            conn.build_transaction().run(|conn| {
                let (key, secret) = ApiKey::create(conn, tenant_id, &name, Some(user_id))?;
                AuditEntry::record(
                    conn,
                    Some(tenant_id),
                    &actor,
                    "api_key.created",
                    ("api_key", Some(&key.prefix)),
                    serde_json::json!({ "name": key.name }),
                )?;
                Ok::<_, AppError>((key, secret))
            })
        })
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
    let id = id.into_inner();
    let enabled = form.enabled.as_deref().is_some_and(|v| v == "on" || v == "true");
    let actor = user.actor();
    state
        .db(move |conn| {
            conn.build_transaction().run(|conn| {
                let key = ApiKey::set_enabled(conn, tenant_id, id, enabled)?;
                let action = if enabled {
                    "api_key.enabled"
                } else {
                    "api_key.disabled"
                };
                AuditEntry::record(
                    conn,
                    Some(tenant_id),
                    &actor,
                    action,
                    ("api_key", Some(&key.prefix)),
                    serde_json::json!({ "name": key.name }),
                )?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    Ok(see_other("/api-keys"))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.require_editor()?.id;
    let id = id.into_inner();
    let actor = user.actor();
    state
        .db(move |conn| {
            conn.build_transaction().run(|conn| {
                let key = ApiKey::delete(conn, tenant_id, id)?;
                AuditEntry::record(
                    conn,
                    Some(tenant_id),
                    &actor,
                    "api_key.deleted",
                    ("api_key", Some(&key.prefix)),
                    serde_json::json!({ "name": key.name }),
                )?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    Ok(see_other("/api-keys"))
}
