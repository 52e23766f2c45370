//! Logging in and out.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::password;
use crate::auth::throttle::Record;
use crate::error::AppError;
use crate::models::session::Sessions;
use crate::models::user::User;
use crate::state::AppState;
use crate::web::session::{CurrentUser, sign_in};
use crate::web::views::Chrome;
use crate::web::{csrf, render};

/// One message for every refusal, so the answer does not tell whether an account exists.
pub const LOGIN_REFUSED: &str = "That email and password do not match an active account, or the \
                                 account is paused for a few minutes after repeated failures.";

#[derive(Template)]
#[template(path = "account/login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub email: String,
    pub error: Option<String>,
    pub next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    session: Session,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = query.into_inner().next.unwrap_or_default();
    login_page(&req, &session, StatusCode::OK, String::new(), None, next)
}

/// The login form, with a token that costs no stored session (see [`csrf::page_token`]).
fn login_page(
    req: &HttpRequest,
    session: &Session,
    status: StatusCode,
    email: String,
    error: Option<String>,
    next: String,
) -> Result<HttpResponse, AppError> {
    let (token, cookie) = csrf::page_token(req, session);
    let mut chrome = Chrome::anonymous("Log in");
    chrome.csrf_token = token;
    let page = LoginPage {
        chrome,
        email,
        error,
        next,
    };
    let mut response = render(status, &page)?;
    if let Some(cookie) = cookie {
        response
            .add_cookie(&cookie)
            .map_err(|err| AppError::Unexpected(anyhow::anyhow!("cannot set the CSRF cookie: {err}")))?;
    }
    Ok(response)
}

/// Missing fields read as empty, so authorization (not a 400) answers first and
/// validation explains what is missing.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: String,
    next: String,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let LoginForm {
        email,
        password: typed,
        next,
    } = form.into_inner();
    let now = state.clock.now();
    let lookup_email = email.trim().to_owned();
    let user = state
        .db(move |conn| {
            let Some(user) = User::find_by_email(conn, &lookup_email)? else {
                password::verify_dummy(&typed);
                return Ok(None);
            };
            let record = user.throttle_record();
            let matches = password::verify(&user.password_hash, &typed);
            if record.is_locked(now) || user.disabled {
                return Ok(None);
            }
            if !matches {
                User::save_throttle_record(conn, user.id, record.after_failure(now))?;
                return Ok(None);
            }
            let cleared = Record {
                failures: 0,
                first_failed_at: None,
                locked_until: None,
            };
            User::save_throttle_record(conn, user.id, cleared)?;
            Ok(Some(user))
        })
        .await?;

    let Some(user) = user else {
        tracing::info!(email = %email, "login refused");
        let refused = Some(LOGIN_REFUSED.into());
        return login_page(
            &req,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            email,
            refused,
            next,
        );
    };
    sign_in(&session, user.id, now)?;
    tracing::info!(user_id = user.id, "logged in");
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, safe_next(&next)))
        .finish())
}

/// Logging out ends every session of the user, on every device.
pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let user_id = user.user.id;
    state
        .db(move |conn| Ok(Sessions::delete_for_user(conn, user_id)?))
        .await?;
    session.purge();
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, "/login"))
        .finish())
}

/// Only paths on this site; never `//other.host` or an absolute URL.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(
            super::safe_next("/webhooks?status=active"),
            "/webhooks?status=active"
        );
        assert_eq!(super::safe_next("//evil.example/"), "/");
        assert_eq!(super::safe_next("https://evil.example/"), "/");
        assert_eq!(super::safe_next("/\\evil.example"), "/");
        assert_eq!(super::safe_next(""), "/");
    }
}
