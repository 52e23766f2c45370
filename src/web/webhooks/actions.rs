//! The webhook page's buttons: reveal and rotate the signing secret, switch and regenerate
//! the webhook's API key, send a test event, resend a delivery. Each answers htmx in place
//! (a revealed value, a toast) and everyone else with a page or a redirect.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::models::webhook::Webhook;
use crate::services;
use crate::state::AppState;
use crate::web::htmx::{Fragment, Hx, toast_oob};
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};
use crate::web::{render, see_other};

/// The secret, once revealed, or a newly generated API key: shown in place.
#[derive(Template)]
#[template(path = "webhooks/revealed.html")]
pub struct Revealed {
    pub label: &'static str,
    pub value: String,
    pub hint: String,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for Revealed {}

#[derive(Template)]
#[template(path = "webhooks/revealed_page.html")]
pub struct RevealedPage {
    pub chrome: Chrome,
    pub webhook_id: i64,
    pub revealed: Revealed,
}

/// In place for htmx; on a page of its own (with the way back) without JavaScript.
fn show_revealed(
    hx: &Hx,
    user: &CurrentUser,
    webhook: &Webhook,
    revealed: Revealed,
) -> Result<HttpResponse, AppError> {
    if hx.is_htmx {
        return render(StatusCode::OK, &revealed);
    }
    let chrome = user.chrome(format!("Webhook No {}", webhook.number), "webhooks");
    render(
        StatusCode::OK,
        &RevealedPage {
            chrome,
            webhook_id: webhook.id,
            revealed,
        },
    )
}

/// A toast for htmx (the page stays as it is, the log reloads when asked), a redirect to
/// the webhook page otherwise.
fn done(hx: &Hx, webhook_id: i64, message: &str, refresh_log: bool) -> HttpResponse {
    if !hx.is_htmx {
        return see_other(&format!("/webhooks/{webhook_id}"));
    }
    let fragment = Fragment::oob_only(toast_oob(message));
    if refresh_log {
        fragment.trigger("deliveries-changed").into_response()
    } else {
        fragment.into_response()
    }
}

/// `POST /webhooks/{id}/secret`: reveals the signing secret to an owner or admin (a POST,
/// so a CSRF token is needed and the audit log records who looked).
pub async fn reveal_secret(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_scope()?;
    if !user.manages_webhooks() {
        return Err(AppError::forbidden(crate::web::session::VIEWER_REFUSAL));
    }
    let (webhook, secret) =
        services::credentials::reveal_secret(&state, scope, id.into_inner(), user.actor()).await?;
    let revealed = Revealed {
        label: "Signing secret",
        value: secret,
        hint: "Use it to verify the webhook-signature header. Keep it out of source code.".into(),
    };
    show_revealed(&hx, &user, &webhook, revealed)
}

/// `POST /webhooks/{id}/secret/rotate`
pub async fn rotate_secret(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let (webhook, secret, until) =
        services::credentials::rotate_secret(&state, user.scope()?, id.into_inner(), user.actor()).await?;
    let until = format_time(until, &tenant.timezone);
    let revealed = Revealed {
        label: "New signing secret",
        value: secret,
        hint: format!(
            "Deliveries are signed with both the new and the old secret until {until}; update your receiver before then."
        ),
    };
    show_revealed(&hx, &user, &webhook, revealed)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ApiKeyForm {
    enabled: Option<String>,
}

/// `POST /webhooks/{id}/api-key`: switches the webhook's own key on or off.
pub async fn set_api_key(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<ApiKeyForm>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let enabled = form.enabled.as_deref().is_some_and(|v| v == "on" || v == "true");
    let webhook =
        services::credentials::set_api_key(&state, scope, id.into_inner(), enabled, user.actor()).await?;
    let message = if enabled {
        "The webhook's API key is on."
    } else {
        "The webhook's API key is off; requests with it now get 401."
    };
    Ok(done(&hx, webhook.id, message, false))
}

/// `POST /webhooks/{id}/api-key/regenerate`: the new key is shown once.
pub async fn regenerate_api_key(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let (webhook, key) =
        services::credentials::regenerate_api_key(&state, scope, id.into_inner(), user.actor()).await?;
    let revealed = Revealed {
        label: "New API key",
        value: key,
        hint: "Shown only now: copy it. The previous key stopped working.".into(),
    };
    show_revealed(&hx, &user, &webhook, revealed)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TestForm {
    #[serde(rename = "type")]
    kind: String,
}

/// `POST /webhooks/{id}/test`: the catalog example of the chosen type, to this webhook.
pub async fn send_test(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, AppError> {
    user.webhooks_editor()?;
    let id = id.into_inner();
    let sent =
        services::deliveries::send_test(&state, user.scope()?, id, form.into_inner().kind, user.actor())
            .await?;
    let message = format!(
        "Test event {} is on its way to webhook No {}.",
        sent.event_id, sent.webhook_number
    );
    Ok(done(&hx, id, &message, true))
}

/// `POST /deliveries/{id}/resend`: the same event id, due at once.
pub async fn resend(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let delivery = services::deliveries::resend(&state, scope, id.into_inner(), user.actor()).await?;
    let message = format!("Delivery of {} will be sent again now.", delivery.event_id);
    Ok(done(&hx, delivery.webhook_id, &message, true))
}
