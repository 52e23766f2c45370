//! Template structs shared by every page: the layout's data and the error page.

use askama::Template;

/// What the layout (`base.html`) needs on every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// The active sidebar item, e.g. "webhooks"; "" for none.
    pub nav: &'static str,
    pub user: Option<ChromeUser>,
    pub csrf_token: String,
}

#[derive(Debug, Clone)]
pub struct ChromeUser {
    pub email: String,
    pub role: String,
    pub is_operator: bool,
    pub is_partner: bool,
    pub tenant_name: Option<String>,
    pub plan: Option<String>,
    /// A partner's connection: (name, contract ID).
    pub connection: Option<(String, String)>,
    /// Alerts not yet seen, for the bell.
    pub unread_alerts: i64,
}

impl Chrome {
    /// The layout for a visitor who is not signed in.
    pub fn anonymous(title: impl Into<String>) -> Self {
        Chrome {
            title: title.into(),
            nav: "",
            user: None,
            csrf_token: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "layout/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub message: String,
}

/// An error shown as a toast, for htmx requests.
#[derive(Template)]
#[template(path = "layout/toast.html")]
pub struct Toast<'a> {
    pub kind: &'a str,
    pub message: &'a str,
}

/// A time as the tenant reads it: `2026-11-22 11:52` in their timezone (UTC if unknown).
pub fn format_time(at: chrono::DateTime<chrono::Utc>, timezone: &str) -> String {
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// A set-password link just issued, shown once (the operator console, the Users page).
pub struct LinkView {
    pub email: String,
    pub url: String,
    pub expires_at: String,
}

impl LinkView {
    /// The absolute URL of the link, on the host the person issuing it is using.
    pub fn new(req: &actix_web::HttpRequest, issued: &crate::services::password_links::IssuedLink) -> Self {
        let info = req.connection_info();
        LinkView {
            email: issued.user.email.clone(),
            url: format!(
                "{}://{}/set-password/{}",
                info.scheme(),
                info.host(),
                issued.token
            ),
            expires_at: issued.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}
