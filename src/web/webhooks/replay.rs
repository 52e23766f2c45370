//! The webhook page's Replay dialog (SPEC 9c): a time range, an outcome and event types;
//! "Count deliveries" shows how many would be sent again, and only then a button sends
//! them. Every step answers htmx in place (errors next to their field) and works as plain
//! pages without JavaScript. The rules are [`services::replay`]'s, as for the API.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::models::tenant::Tenant;
use crate::models::webhook::Webhook;
use crate::services::{self, replay::Outcome};
use crate::state::AppState;
use crate::web::htmx::{Fragment, Hx};
use crate::web::render;
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;

/// The dialog's form and, after a step, the count or the result.
#[derive(Template)]
#[template(path = "webhooks/replay_body.html")]
pub struct ReplayBody {
    pub webhook_id: i64,
    pub number: i32,
    pub active: bool,
    pub status_label: &'static str,
    pub csrf_token: String,
    pub timezone: String,
    pub since: String,
    pub until: String,
    pub outcome: String,
    pub event_types: Vec<String>,
    /// The webhook's event types and any chosen besides.
    pub offered_types: Vec<String>,
    /// The field at fault ("" for the whole form) and what is wrong.
    pub error: Option<(&'static str, String)>,
    pub counted: Option<i64>,
    pub sent: Option<i64>,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for ReplayBody {}

impl ReplayBody {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn outcomes(&self) -> [Outcome; 3] {
        Outcome::ALL
    }

    pub fn is_chosen(&self, code: &str) -> bool {
        self.event_types.iter().any(|c| c == code)
    }

    pub fn thousands(&self, n: &i64) -> String {
        services::replay::thousands(*n)
    }
}

#[derive(Template)]
#[template(path = "webhooks/replay_dialog.html")]
pub struct ReplayDialog {
    pub body: ReplayBody,
}

impl askama::filters::HtmlSafe for ReplayDialog {}

#[derive(Template)]
#[template(path = "webhooks/replay_page.html")]
pub struct ReplayPage {
    pub chrome: Chrome,
    pub dialog: ReplayDialog,
}

/// The form as posted (`event_types` repeats, so it is read by hand).
fn parse(body: &[u8]) -> services::replay::Ask {
    let mut ask = services::replay::Ask::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "since" => ask.since = value.into_owned(),
            "until" => ask.until = value.into_owned(),
            "outcome" => ask.outcome = value.into_owned(),
            "event_types" => ask.event_types.push(value.into_owned()),
            _ => {}
        }
    }
    ask
}

/// A time as a `datetime-local` input shows it, in the tenant's timezone.
fn local_input(at: DateTime<Utc>, timezone: &str) -> String {
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string(),
        Err(_) => at.format("%Y-%m-%dT%H:%M").to_string(),
    }
}

fn body(user: &CurrentUser, tenant: &Tenant, webhook: &Webhook, ask: services::replay::Ask) -> ReplayBody {
    let mut offered_types = webhook.events.clone();
    for code in &ask.event_types {
        if !offered_types.contains(code) && code.len() <= 100 {
            offered_types.push(code.clone());
        }
    }
    ReplayBody {
        webhook_id: webhook.id,
        number: webhook.number,
        active: webhook.is_active(),
        status_label: webhook.status_label(),
        csrf_token: user.csrf_token.clone(),
        timezone: tenant.timezone.clone(),
        since: ask.since,
        until: ask.until,
        outcome: if ask.outcome.is_empty() {
            Outcome::default().as_str().to_owned()
        } else {
            ask.outcome
        },
        event_types: ask.event_types,
        offered_types,
        error: None,
        counted: None,
        sent: None,
    }
}

/// In place for htmx (the dialog, or its body after a step); a page of its own otherwise.
fn answer(
    hx: &Hx,
    user: &CurrentUser,
    body: ReplayBody,
    status: StatusCode,
    whole: bool,
) -> Result<HttpResponse, AppError> {
    let refresh = body.sent.is_some_and(|n| n > 0);
    if hx.is_htmx {
        let fragment = if whole {
            Fragment::of(&ReplayDialog { body })?
        } else {
            Fragment::of(&body)?
        };
        let fragment = fragment.status(status);
        return Ok(if refresh {
            fragment.trigger("deliveries-changed").into_response()
        } else {
            fragment.into_response()
        });
    }
    let chrome = user.chrome(format!("Replay · Webhook No {}", body.number), "webhooks");
    render(
        status,
        &ReplayPage {
            chrome,
            dialog: ReplayDialog { body },
        },
    )
}

/// `GET /webhooks/{id}/replay`: the dialog, with the last 24 hours chosen.
pub async fn show(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let webhook = services::replay::webhook(&state, user.scope()?, id.into_inner()).await?;
    let now = state.clock.now();
    let ask = services::replay::Ask {
        since: local_input(now - chrono::Duration::hours(24), &tenant.timezone),
        // The next minute, so that what was created this minute is in the range.
        until: local_input(now + chrono::Duration::minutes(1), &tenant.timezone),
        ..services::replay::Ask::default()
    };
    answer(
        &hx,
        &user,
        body(&user, &tenant, &webhook, ask),
        StatusCode::OK,
        true,
    )
}

/// `POST /webhooks/{id}/replay/count`: how many deliveries the choices take; nothing changes.
pub async fn count(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: Bytes,
) -> Result<HttpResponse, AppError> {
    step(hx, state, user, id.into_inner(), form, true).await
}

/// `POST /webhooks/{id}/replay`: sends the counted deliveries again.
pub async fn replay(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: Bytes,
) -> Result<HttpResponse, AppError> {
    step(hx, state, user, id.into_inner(), form, false).await
}

async fn step(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: i64,
    form: Bytes,
    dry_run: bool,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let scope = user.scope()?;
    // Another tenant's (or, for a partner, another connection's) id answers 404 before
    // anything is read from the form.
    let webhook = services::replay::webhook(&state, scope, id).await?;
    let mut ask = parse(&form);
    ask.times = services::replay::Times::Local {
        timezone: tenant.timezone.clone(),
    };
    let done = services::replay::replay(&state, scope, webhook.id, ask.clone(), dry_run, user.actor()).await;
    let mut body = body(&user, &tenant, &webhook, ask);
    let status = match done {
        Ok(replayed) if dry_run => {
            body.counted = Some(replayed.count);
            StatusCode::OK
        }
        Ok(replayed) => {
            body.sent = Some(replayed.count);
            StatusCode::OK
        }
        Err(AppError::Validation { field, message }) => {
            body.error = Some((field.unwrap_or(""), message));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(AppError::Conflict(message)) => {
            body.error = Some(("", message));
            StatusCode::CONFLICT
        }
        Err(other) => return Err(other),
    };
    answer(&hx, &user, body, status, false)
}
