//! Alerts for people: the bell's page (the latest alerts, marked seen on opening) and who
//! gets the tenant's alert mails (`/settings/alerts`, owners and admins).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::models::alert::Alert;
use crate::services;
use crate::state::AppState;
use crate::web::render;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};

#[derive(Template)]
#[template(path = "alerts/index.html")]
pub struct AlertsPage {
    pub chrome: Chrome,
    pub alerts: Vec<(Alert, String)>,
}

/// `GET /alerts`: the latest alerts of the tenant (a partner's: its connection's).
pub async fn index(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let scope = user.scope()?;
    let alerts = services::alerts::recent_and_seen(&state, scope, user.user.id).await?;
    let mut chrome = user.chrome("Alerts", "alerts");
    if let Some(shown) = chrome.user.as_mut() {
        // Seen now: the bell of this page is already clear.
        shown.unread_alerts = 0;
    }
    let alerts = alerts
        .into_iter()
        .map(|a| {
            let when = format_time(a.created_at, &tenant.timezone);
            (a, when)
        })
        .collect();
    render(StatusCode::OK, &AlertsPage { chrome, alerts })
}

#[derive(Template)]
#[template(path = "alerts/settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub emails: String,
    /// Where mail goes, or `None` while mail is off.
    pub mail_via: Option<String>,
    pub from: String,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub max: usize,
}

fn mail_via(state: &AppState) -> Option<String> {
    state.settings.smtp_url.as_deref().map(|url| {
        url::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or(25)
                )
            })
            .unwrap_or_default()
    })
}

fn page(
    state: &AppState,
    user: &CurrentUser,
    emails: String,
    outcome: Result<Option<String>, String>,
) -> SettingsPage {
    let (notice, error) = match outcome {
        Ok(notice) => (notice, None),
        Err(error) => (None, Some(error)),
    };
    SettingsPage {
        chrome: user.chrome("Alert settings", "alert-settings"),
        emails,
        mail_via: mail_via(state),
        from: state.settings.smtp_from.clone(),
        notice,
        error,
        max: services::alerts::MAX_RECIPIENTS,
    }
}

/// `GET /settings/alerts`
pub async fn settings(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    let tenant_id = user.require_editor()?.id;
    let emails = state
        .db(move |conn| services::alerts::recipients(conn, tenant_id))
        .await?;
    render(StatusCode::OK, &page(&state, &user, emails.join("\n"), Ok(None)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RecipientsForm {
    emails: String,
}

/// `POST /settings/alerts`
pub async fn save(
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<RecipientsForm>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.require_editor()?.id;
    let (text, actor) = (form.into_inner().emails, user.actor());
    let typed = text.clone();
    let saved = state
        .db(move |conn| services::alerts::set_recipients(conn, tenant_id, &typed, &actor))
        .await;
    match saved {
        Ok(emails) => {
            let notice = match emails.len() {
                0 => "Saved: nobody gets alert mails.".to_owned(),
                1 => "Saved: 1 address gets alert mails.".to_owned(),
                n => format!("Saved: {n} addresses get alert mails."),
            };
            render(
                StatusCode::OK,
                &page(&state, &user, emails.join("\n"), Ok(Some(notice))),
            )
        }
        Err(AppError::Validation { message, .. }) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &user, text, Err(message)),
        ),
        Err(other) => Err(other),
    }
}
