//! The Users page of a tenant (owners and admins): its logins, invitations with a one-time
//! set-password link, roles (partners bound to a connection), disabling. The rules are
//! `services::users`; every answer is the whole page with what happened on top.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::{hashing, password};
use crate::error::AppError;
use crate::models::connection::Connection;
use crate::models::user::Role;
use crate::services::users::{self, Listed, Manager};
use crate::state::AppState;
use crate::web::render;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, LinkView};

#[derive(Template)]
#[template(path = "users/index.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub users: Vec<Listed>,
    pub connections: Vec<Connection>,
    /// The roles this manager may give (owners only give the owner role).
    pub roles: Vec<Role>,
    pub me: i64,
    pub manager_is_owner: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub link: Option<LinkView>,
}

impl UsersPage {
    /// Whether this manager may change a login of `role` (not themselves).
    pub fn may_change(&self, id: &i64, role: &Role) -> bool {
        *id != self.me && (self.manager_is_owner || *role != Role::Owner)
    }
}

fn manager(user: &CurrentUser) -> Result<Manager, AppError> {
    let tenant = user.require_editor()?;
    Ok(Manager {
        tenant_id: tenant.id,
        user_id: user.user.id,
        role: user.role(),
        actor: user.actor(),
    })
}

/// The page with what happened: `Ok(notice, link)` or the refusal, shown on top.
async fn page(
    state: &AppState,
    user: &CurrentUser,
    outcome: Result<(Option<String>, Option<LinkView>), AppError>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.require_editor()?.id;
    let (status, notice, link, error) = match outcome {
        Ok((notice, link)) => (StatusCode::OK, notice, link, None),
        Err(AppError::Validation { message, .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, None, None, Some(message))
        }
        Err(AppError::Conflict(message)) => (StatusCode::CONFLICT, None, None, Some(message)),
        Err(AppError::Forbidden(message)) => (StatusCode::FORBIDDEN, None, None, Some(message)),
        Err(other) => return Err(other),
    };
    let (listed, connections) = state.db(move |conn| users::list(conn, tenant_id)).await?;
    let manager_is_owner = user.role() == Role::Owner;
    let roles = Role::TENANT_ROLES
        .into_iter()
        .filter(|role| manager_is_owner || *role != Role::Owner)
        .collect();
    render(
        status,
        &UsersPage {
            chrome: user.chrome("Users", "users"),
            users: listed,
            connections,
            roles,
            me: user.user.id,
            manager_is_owner,
            notice,
            error,
            link,
        },
    )
}

/// `GET /users`
pub async fn index(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    manager(&user)?;
    page(&state, &user, Ok((None, None))).await
}

/// Missing fields read as empty, so authorization (not a 400) answers first and
/// validation explains what is missing.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteForm {
    email: String,
    role: String,
    connection: String,
}

fn role_of(text: &str) -> Result<Role, AppError> {
    text.parse::<Role>()
        .map_err(|_| AppError::validation("role", "Choose owner, admin, viewer or partner."))
}

fn contract(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|c| !c.is_empty())
}

/// `POST /users`: invites a login; its one-time link is shown once.
pub async fn invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let manager = manager(&user)?;
    let form = form.into_inner();
    let now = state.clock.now();
    let outcome = async {
        let role = role_of(&form.role)?;
        // Until the link is used the login has a password nobody knows; hashed off the
        // database connection.
        let hash = hashing::run(|| password::hash(&crate::models::random_hex(32))).await??;
        let issued = state
            .db(move |conn| {
                users::invite(
                    conn,
                    &manager,
                    &form.email,
                    role,
                    contract(&form.connection).as_deref(),
                    &hash,
                    now,
                )
            })
            .await?;
        let notice = format!(
            "{} was invited as {}. Send them this one-time link to choose their password.",
            issued.user.email, issued.user.role
        );
        Ok((Some(notice), Some(LinkView::new(&req, &issued))))
    }
    .await;
    page(&state, &user, outcome).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RoleForm {
    role: String,
    connection: String,
}

/// `POST /users/{id}/role`
pub async fn set_role(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let manager = manager(&user)?;
    let (id, form) = (id.into_inner(), form.into_inner());
    let outcome = async {
        let role = role_of(&form.role)?;
        let changed = state
            .db(move |conn| users::set_role(conn, &manager, id, role, contract(&form.connection).as_deref()))
            .await?;
        Ok((Some(format!("{} is now {}.", changed.email, changed.role)), None))
    }
    .await;
    page(&state, &user, outcome).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DisabledForm {
    disabled: String,
}

/// `POST /users/{id}/disabled`: disabling ends the login's sessions at once.
pub async fn set_disabled(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<DisabledForm>,
) -> Result<HttpResponse, AppError> {
    let manager = manager(&user)?;
    let (id, disabled) = (id.into_inner(), form.disabled == "true");
    let outcome = state
        .db(move |conn| users::set_disabled(conn, &manager, id, disabled))
        .await
        .map(|target| {
            let what = if disabled {
                "disabled; their sessions ended"
            } else {
                "enabled"
            };
            (Some(format!("{} was {what}.", target.email)), None)
        });
    page(&state, &user, outcome).await
}

/// `POST /users/{id}/password`: a new one-time set-password link, shown once.
pub async fn new_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let manager = manager(&user)?;
    let (id, now) = (id.into_inner(), state.clock.now());
    let outcome = state
        .db(move |conn| users::new_link(conn, &manager, id, now))
        .await
        .map(|issued| {
            let notice = format!(
                "Send {} this one-time link to choose a new password; earlier links no longer work.",
                issued.user.email
            );
            (Some(notice), Some(LinkView::new(&req, &issued)))
        });
    page(&state, &user, outcome).await
}
