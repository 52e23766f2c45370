//! The operator console: tenants (create, rename, set plan) and users (create, disable,
//! send a set-password link). Operators see no tenant secrets: none of these pages show
//! any, and they never choose a user's password (a user they chose it for would open the
//! tenant's secrets to them): new users and resets get a one-time set-password link.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use diesel::Connection as _;
use serde::Deserialize;

use crate::auth::{hashing, password};
use crate::error::AppError;
use crate::models::audit::{Actor, AuditEntry};
use crate::models::session::Sessions;
use crate::models::tenant::{Plan, Tenant};
use crate::models::user::{Role, User};
use crate::services::accounts;
use crate::services::password_links;
use crate::state::AppState;
use crate::web::see_other;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, LinkView};

#[derive(Template, WebTemplate)]
#[template(path = "admin/tenants.html")]
pub struct TenantsPage {
    pub chrome: Chrome,
    pub tenants: Vec<Tenant>,
    pub error: Option<String>,
    pub name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tenant.html")]
pub struct TenantPage {
    pub chrome: Chrome,
    pub tenant: Tenant,
    pub users: Vec<User>,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub users: Vec<UserRow>,
    pub tenants: Vec<Tenant>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub link: Option<LinkView>,
}

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub tenant: String,
    pub disabled: bool,
}

fn render_with(status: actix_web::http::StatusCode, page: impl Template) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(anyhow::Error::from)?))
}

async fn tenants_page(
    state: &AppState,
    user: &CurrentUser,
    error: Option<String>,
    name: String,
) -> Result<TenantsPage, AppError> {
    let tenants = state.db(|conn| Ok(Tenant::list(conn)?)).await?;
    Ok(TenantsPage {
        chrome: user.chrome("Tenants", "admin-tenants"),
        tenants,
        error,
        name,
    })
}

pub async fn tenants(state: web::Data<AppState>, user: CurrentUser) -> Result<TenantsPage, AppError> {
    user.require_operator()?;
    tenants_page(&state, &user, None, String::new()).await
}

/// Missing fields read as empty, so authorization (not a 400) answers first and
/// validation explains what is missing.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TenantForm {
    name: String,
    plan: String,
}

pub async fn create_tenant(
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<TenantForm>,
) -> Result<HttpResponse, AppError> {
    user.require_operator()?;
    let form = form.into_inner();
    let checked =
        accounts::check_tenant_name(&form.name).and_then(|name| Ok((name, form.plan.parse::<Plan>()?)));
    let (name, plan) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            let page = tenants_page(&state, &user, Some(message), form.name).await?;
            return render_with(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, page);
        }
    };
    let actor = user.actor();
    let tenant = state
        .db(move |conn| accounts::create_tenant(conn, &name, plan, &actor))
        .await?;
    Ok(see_other(&format!("/admin/tenants/{}", tenant.id)))
}

async fn tenant_page(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    error: Option<String>,
) -> Result<TenantPage, AppError> {
    let (tenant, users) = state
        .db(move |conn| Ok((Tenant::find(conn, id)?, User::list_for_tenant(conn, id)?)))
        .await?;
    Ok(TenantPage {
        chrome: user.chrome(tenant.name.clone(), "admin-tenants"),
        tenant,
        users,
        error,
    })
}

pub async fn tenant(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<TenantPage, AppError> {
    user.require_operator()?;
    tenant_page(&state, &user, id.into_inner(), None).await
}

/// Renames and/or changes the plan. A downgrade pauses delivery (nothing is deleted).
pub async fn update_tenant(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<TenantForm>,
) -> Result<HttpResponse, AppError> {
    user.require_operator()?;
    let id = id.into_inner();
    let form = form.into_inner();
    let checked =
        accounts::check_tenant_name(&form.name).and_then(|name| Ok((name, form.plan.parse::<Plan>()?)));
    let (name, plan) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            let page = tenant_page(&state, &user, id, Some(message)).await?;
            return render_with(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, page);
        }
    };
    let actor = user.actor();
    state
        .db(move |conn| accounts::update_tenant(conn, id, Some(&name), Some(plan), &actor))
        .await?;
    Ok(see_other(&format!("/admin/tenants/{id}")))
}

async fn users_page(
    state: &AppState,
    user: &CurrentUser,
    error: Option<String>,
    link: Option<LinkView>,
) -> Result<UsersPage, AppError> {
    let (users, tenants) = state
        .db(|conn| Ok((User::list_all(conn)?, Tenant::list(conn)?)))
        .await?;
    let rows = users
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            tenant: u
                .tenant_id
                .and_then(|id| tenants.iter().find(|t| t.id == id))
                .map(|t| t.name.clone())
                .unwrap_or_else(|| "(platform)".into()),
            email: u.email,
            role: u.role.to_string(),
            disabled: u.disabled,
        })
        .collect();
    Ok(UsersPage {
        chrome: user.chrome("Users", "admin-users"),
        users: rows,
        tenants,
        error,
        notice: None,
        link,
    })
}

pub async fn users(state: web::Data<AppState>, user: CurrentUser) -> Result<UsersPage, AppError> {
    user.require_operator()?;
    users_page(&state, &user, None, None).await
}

/// Missing fields read as empty, so authorization (not a 400) answers first and
/// validation explains what is missing. There is no password: the new user chooses it
/// through the one-time link this answers with.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewUserForm {
    email: String,
    role: String,
    tenant: String,
    /// For a partner: the contract ID of the tenant's connection it manages.
    connection: String,
}

pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, AppError> {
    user.require_operator()?;
    let form = form.into_inner();
    let email = form.email.trim().to_owned();
    let checked = (|| -> Result<(Role, Option<i64>), String> {
        accounts::check_email(&email)?;
        let role: Role = form.role.parse()?;
        let tenant = match (role, form.tenant.parse::<i64>().ok()) {
            (Role::Operator, _) => None,
            (_, Some(id)) => Some(id),
            (_, None) => return Err("Choose the tenant this user belongs to.".into()),
        };
        Ok((role, tenant))
    })();
    let (role, tenant_id) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            let page = users_page(&state, &user, Some(message), None).await?;
            return render_with(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, page);
        }
    };
    let connection = Some(form.connection.trim().to_owned()).filter(|c| !c.is_empty());
    let actor = user.actor();
    let now = state.clock.now();
    // Until the link is used the account has a password nobody knows. Hashing runs between
    // two units of database work, never holding a connection.
    let hash = hashing::run(|| password::hash(&crate::models::random_hex(32))).await??;
    let invited = state
        .db(move |conn| {
            let account = accounts::NewAccount {
                tenant_id,
                email: &email,
                role,
                password_hash: &hash,
                connection: connection.as_deref(),
            };
            match password_links::invite(conn, account, &actor, now) {
                Ok(issued) => Ok(Ok(issued)),
                Err(AppError::Validation { message, .. }) => Ok(Err(message)),
                Err(err) => Err(err),
            }
        })
        .await?;
    match invited {
        Ok(issued) => {
            let mut page = users_page(&state, &user, None, Some(LinkView::new(&req, &issued))).await?;
            page.notice = Some(format!(
                "{} was created. Send them this one-time link to choose their password.",
                issued.user.email
            ));
            render_with(actix_web::http::StatusCode::OK, page)
        }
        Err(message) => {
            let page = users_page(&state, &user, Some(message), None).await?;
            render_with(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, page)
        }
    }
}

/// Missing fields read as empty, so authorization (not a 400) answers first and
/// validation explains what is missing.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DisabledForm {
    disabled: String,
}

/// Disabling a user ends all their sessions at once.
pub async fn set_user_disabled(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<DisabledForm>,
) -> Result<HttpResponse, AppError> {
    user.require_operator()?;
    let id = id.into_inner();
    if id == user.user.id {
        return Err(AppError::forbidden("You cannot disable your own account."));
    }
    let disabled = form.disabled == "true";
    let actor = user.actor();
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                let target = User::find(conn, id)?;
                User::set_disabled(conn, id, disabled)?;
                if disabled {
                    Sessions::delete_for_user(conn, id)?;
                }
                let action = if disabled { "user.disabled" } else { "user.enabled" };
                record_user_change(conn, &target, &actor, action)
            })
        })
        .await?;
    Ok(see_other("/admin/users"))
}

/// Issues a one-time set-password link for a user (earlier unused links stop working).
/// The password stays as it is until the link is used; using it ends the user's sessions.
pub async fn send_password_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require_operator()?;
    let id = id.into_inner();
    let actor = user.actor();
    let now = state.clock.now();
    let issued = state
        .db(move |conn| password_links::issue(conn, id, &actor, now))
        .await?;
    let mut page = users_page(&state, &user, None, Some(LinkView::new(&req, &issued))).await?;
    page.notice = Some(format!(
        "Send {} this one-time link to choose a new password; earlier links no longer work.",
        issued.user.email
    ));
    render_with(actix_web::http::StatusCode::OK, page)
}

fn record_user_change(
    conn: &mut diesel::PgConnection,
    target: &User,
    actor: &Actor,
    action: &str,
) -> Result<(), AppError> {
    Ok(AuditEntry::record(
        conn,
        target.tenant_id,
        actor,
        action,
        ("user", Some(&target.email)),
        serde_json::json!({}),
    )?)
}
