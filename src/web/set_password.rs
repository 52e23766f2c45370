//! The one-time set-password pages (`/set-password/{token}`): where a user an operator
//! created or reset chooses their own password. Nobody is signed in here, so the form's
//! CSRF token is the pre-login one (see [`csrf::page_token`]). A link that is unknown,
//! used or expired answers 404 and says so.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::{hashing, password};
use crate::error::AppError;
use crate::services::password_links;
use crate::state::AppState;
use crate::web::views::Chrome;
use crate::web::{csrf, error_page, render};

const LINK_UNUSABLE: &str = "This set-password link is unknown, has been used or has expired. \
                             Ask your platform operator for a new one.";

#[derive(Template)]
#[template(path = "account/set_password.html")]
pub struct SetPasswordPage {
    pub chrome: Chrome,
    pub email: String,
    pub error: Option<String>,
}

fn page(
    req: &HttpRequest,
    session: &Session,
    status: StatusCode,
    email: String,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (token, cookie) = csrf::page_token(req, session);
    let mut chrome = Chrome::anonymous("Set your password");
    chrome.csrf_token = token;
    let mut response = render(status, &SetPasswordPage { chrome, email, error })?;
    // The address holds the link's token: keep the page out of every cache.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, "no-store".parse().expect("a valid header value"));
    if let Some(cookie) = cookie {
        response
            .add_cookie(&cookie)
            .map_err(|err| AppError::Unexpected(anyhow::anyhow!("cannot set the CSRF cookie: {err}")))?;
    }
    Ok(response)
}

/// The email a usable link is for, or the 404 answer.
async fn usable(state: &AppState, token: String) -> Result<Result<String, HttpResponse>, AppError> {
    let now = state.clock.now();
    match state
        .db(move |conn| password_links::peek(conn, &token, now))
        .await
    {
        Ok(user) => Ok(Ok(user.email)),
        Err(AppError::NotFound) => Ok(Err(error_page(StatusCode::NOT_FOUND, LINK_UNUSABLE))),
        Err(err) => Err(err),
    }
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    match usable(&state, token.into_inner()).await? {
        Ok(email) => page(&req, &session, StatusCode::OK, email, None),
        Err(not_found) => Ok(not_found),
    }
}

/// Missing fields read as empty, so validation explains what is missing.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SetPasswordForm {
    password: String,
    password_confirm: String,
}

/// Sets the password: the link is checked before the (slow) hash and again, locked, when
/// it is used, so it works once. The user's sessions end; they log in with it.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
    form: web::Form<SetPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let form = form.into_inner();
    let email = match usable(&state, token.clone()).await? {
        Ok(email) => email,
        Err(not_found) => return Ok(not_found),
    };
    let checked = password::validate(&form.password).and_then(|()| {
        (form.password == form.password_confirm)
            .then_some(())
            .ok_or_else(|| "The two passwords differ. Type the same password twice.".to_owned())
    });
    if let Err(message) = checked {
        return page(
            &req,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            email,
            Some(message),
        );
    }
    let hash = hashing::run(move || password::hash(&form.password)).await??;
    let now = state.clock.now();
    match state
        .db(move |conn| password_links::redeem(conn, &token, &hash, now))
        .await
    {
        Ok(user) => {
            tracing::info!(user_id = user.id, "password set by link");
            Ok(HttpResponse::SeeOther()
                .insert_header((LOCATION, "/login?password_set=1"))
                .finish())
        }
        Err(AppError::NotFound) => Ok(error_page(StatusCode::NOT_FOUND, LINK_UNUSABLE)),
        Err(err) => Err(err),
    }
}
