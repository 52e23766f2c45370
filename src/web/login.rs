//! Logging in and out.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::address_throttle::AddressThrottle;
use crate::auth::{hashing, password};
use crate::error::AppError;
use crate::models::session::Sessions;
use crate::models::user::{PasswordCheck, User};
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
    pub notice: Option<&'static str>,
    pub next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// Set by the set-password page after it worked.
    password_set: Option<String>,
}

/// Shown on the login page a set-password link leads to.
pub const PASSWORD_SET: &str = "Your password is set. Log in with it.";

pub async fn show(
    req: HttpRequest,
    session: Session,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let next = query.next.unwrap_or_default();
    let notice = query.password_set.is_some().then_some(PASSWORD_SET);
    login_page(
        &req,
        &session,
        StatusCode::OK,
        String::new(),
        (None, notice),
        next,
    )
}

/// The login form, with a token that costs no stored session (see [`csrf::page_token`]).
fn login_page(
    req: &HttpRequest,
    session: &Session,
    status: StatusCode,
    email: String,
    (error, notice): (Option<String>, Option<&'static str>),
    next: String,
) -> Result<HttpResponse, AppError> {
    let (token, cookie) = csrf::page_token(req, session);
    let mut chrome = Chrome::anonymous("Log in");
    chrome.csrf_token = token;
    let page = LoginPage {
        chrome,
        email,
        error,
        notice,
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

/// A login: the client address and then the account are throttled before any password
/// is hashed; argon2 runs on a hashing thread without a pooled connection, between the
/// claim and the write.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    addresses: web::Data<AddressThrottle>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let LoginForm {
        email,
        password: typed,
        next,
    } = form.into_inner();
    let now = state.clock.now();
    // The TCP peer: a forwarded-for header is the client's own say.
    let peer = req.peer_addr().map(|address| address.ip());
    let user = if peer.is_some_and(|ip| addresses.is_blocked(ip, now)) {
        None
    } else {
        let lookup_email = email.clone();
        let claim = state
            .db(move |conn| {
                let Some(user) = User::find_by_email(conn, &lookup_email)? else {
                    return Ok(None);
                };
                Ok(Some(User::claim_password_check(conn, user.id, now)?))
            })
            .await?;
        let checked = hashing::run(move || match claim {
            Some(PasswordCheck::Check { user, attempt }) => {
                let matches = password::verify(&user.password_hash, &typed);
                Some((user, attempt, matches))
            }
            // Unknown, paused or disabled: the same work and the same answer.
            _ => {
                password::verify_dummy(&typed);
                None
            }
        })
        .await?;
        match checked {
            Some((user, attempt, matches)) => {
                state.metrics.record_password_check();
                let user_id = user.id;
                let finished = matches
                    && state
                        .db(move |conn| Ok(User::finish_matching_check(conn, user_id, attempt, now)?))
                        .await?;
                finished.then_some(user)
            }
            None => None,
        }
    };
    if user.is_none()
        && let Some(ip) = peer
    {
        addresses.record_failure(ip, now);
    }

    let Some(user) = user else {
        tracing::info!(email = %email, "login refused");
        let refused = Some(LOGIN_REFUSED.into());
        return login_page(
            &req,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            email,
            (refused, None),
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

/// Where to go after logging in: a path of this site, read the way a browser reads a
/// `Location` (WHATWG URL: C0 controls and spaces trimmed, tab/CR/LF dropped anywhere, `\`
/// as `/`), so that what we answer is what the browser follows. Anything that resolves to
/// another origin, or to a path a browser would take as `//host`, goes to `/`.
fn safe_next(next: &str) -> String {
    static BASE: std::sync::LazyLock<url::Url> =
        std::sync::LazyLock::new(|| url::Url::parse("http://h.invalid/").expect("a valid base"));
    let Ok(resolved) = BASE.join(next) else {
        return "/".into();
    };
    let path = resolved.path();
    if resolved.origin() != BASE.origin() || !path.starts_with('/') || path.starts_with("//") {
        return "/".into();
    }
    match resolved.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn local_paths_are_followed_after_login_with_their_query() {
        for (next, expected) in [
            ("/webhooks?status=active", "/webhooks?status=active"),
            ("/webhooks/12", "/webhooks/12"),
            ("/", "/"),
            ("", "/"),
            ("/a b", "/a%20b"),
            ("/webhooks#frag", "/webhooks"),
            ("  /webhooks  ", "/webhooks"),
            ("/web\\hooks", "/web/hooks"),
            ("\\webhooks", "/webhooks"),
            ("/web\thooks", "/webhooks"),
            ("http:webhooks", "/webhooks"),
            ("webhooks", "/webhooks"),
            ("/x/../webhooks", "/webhooks"),
            ("http://h.invalid/webhooks", "/webhooks"),
        ] {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
    }

    #[test]
    fn anything_a_browser_would_read_as_another_origin_goes_home() {
        for next in [
            "//evil.example/",
            "///evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/127.0.0.1:8080/x",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            "\u{0}//evil.example",
            " //evil.example",
            "\u{1f}\\\\evil.example",
            "/./\t/evil.example",
            "/.//evil.example",
            "/x/..//evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "mailto:a@b.example",
            "http://h.invalid:81/",
            "https://h.invalid/",
            "http://user@h.invalid.evil.example/",
        ] {
            assert_eq!(safe_next(next), "/", "{next:?}");
        }
    }

    #[test]
    fn what_is_followed_is_a_valid_header_value() {
        for next in ["/a\u{7f}b", "/é?q=ü", "/a\nb", "/%0d%0aSet-Cookie:x"] {
            let out = safe_next(next);
            assert!(
                actix_web::http::header::HeaderValue::from_str(&out).is_ok(),
                "{next:?} -> {out:?}"
            );
            assert!(out.starts_with('/') && !out.starts_with("//"), "{out}");
        }
    }
}
