//! The signed-in user's own page: role, tenant plan, password change.

use actix_session::Session;
use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use diesel::Connection as _;
use serde::Deserialize;

use crate::auth::{hashing, password};
use crate::error::AppError;
use crate::models::audit::AuditEntry;
use crate::models::session::Sessions;
use crate::models::user::{PasswordCheck, User};
use crate::state::AppState;
use crate::web::session::{CurrentUser, sign_in};
use crate::web::views::Chrome;

/// Shown while wrong current passwords have paused the account's password checks.
pub const PASSWORD_CHECKS_PAUSED: &str =
    "Too many wrong passwords: password checks for this account are paused for a few minutes.";

#[derive(Template, WebTemplate)]
#[template(path = "account/profile.html")]
pub struct ProfilePage {
    pub chrome: Chrome,
    pub email: String,
    pub role: String,
    pub tenant_name: Option<String>,
    pub plan: Option<String>,
    pub error: Option<String>,
    pub saved: bool,
}

impl ProfilePage {
    fn of(user: &CurrentUser, error: Option<String>, saved: bool) -> Self {
        ProfilePage {
            chrome: user.chrome("Profile", "profile"),
            email: user.user.email.clone(),
            role: user.user.role.to_string(),
            tenant_name: user.tenant.as_ref().map(|t| t.name.clone()),
            plan: user.tenant.as_ref().map(|t| t.plan.label().to_owned()),
            error,
            saved,
        }
    }
}

pub async fn show(user: CurrentUser) -> ProfilePage {
    ProfilePage::of(&user, None, false)
}

/// Missing fields read as empty, so authorization (not a 400) answers first and
/// validation explains what is missing.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// Changing the password ends every session of the user, then signs this one in anew.
pub async fn change_password(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<PasswordForm>,
) -> Result<actix_web::HttpResponse, AppError> {
    let form = form.into_inner();
    let refuse = |message: &str| -> Result<actix_web::HttpResponse, AppError> {
        let page = ProfilePage::of(&user, Some(message.to_owned()), false);
        Ok(actix_web::HttpResponse::UnprocessableEntity()
            .content_type("text/html; charset=utf-8")
            .body(page.render().map_err(anyhow::Error::from)?))
    };
    if let Err(message) = password::validate(&form.new_password) {
        return refuse(&message);
    }
    if form.new_password != form.confirm_password {
        return refuse("The new password and its confirmation differ.");
    }
    let user_id = user.user.id;
    let tenant_id = user.user.tenant_id;
    let actor = user.actor();
    let now = state.clock.now();
    // The same per-account throttle as the login: claimed before hashing, and no pooled
    // connection held while argon2 runs.
    let claim = state
        .db(move |conn| Ok(User::claim_password_check(conn, user_id, now)?))
        .await?;
    let PasswordCheck::Check {
        user: stored,
        attempt,
    } = claim
    else {
        return refuse(PASSWORD_CHECKS_PAUSED);
    };
    let current = form.current_password;
    let matches = hashing::run(move || password::verify(&stored.password_hash, &current)).await?;
    state.metrics.record_password_check();
    if !matches {
        return refuse("The current password is not right.");
    }
    let finished = state
        .db(move |conn| Ok(User::finish_matching_check(conn, user_id, attempt, now)?))
        .await?;
    if !finished {
        return refuse(PASSWORD_CHECKS_PAUSED);
    }
    let new_password = form.new_password;
    let hash = hashing::run(move || password::hash(&new_password)).await??;
    state
        .db(move |conn| {
            conn.transaction(|conn| {
                User::set_password(conn, user_id, &hash)?;
                Sessions::delete_for_user(conn, user_id)?;
                AuditEntry::record(
                    conn,
                    tenant_id,
                    &actor,
                    "user.password_changed",
                    ("user", Some(&actor.label)),
                    serde_json::json!({}),
                )
            })?;
            Ok(())
        })
        .await?;
    sign_in(&session, user_id, state.clock.now())?;
    let mut page = ProfilePage::of(&user, None, true);
    page.chrome.csrf_token = crate::web::csrf::token(&session);
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(anyhow::Error::from)?))
}
