//! The webhook page (`GET /webhooks/{id}`): configuration, the signing secret (reveal,
//! rotate), the webhook's API key (switch, regenerate), a 24-hour health chart, the
//! delivery log with every attempt, Resend and "Send test event".

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::export;
use crate::models::audit::AuditEntry;
use crate::models::connection::Connection;
use crate::models::delivery::{Delivery, HourHealth, LOG_PAGE_SIZE, LogEntry, LogFilter, OUTCOMES};
use crate::models::event_type::EventType;
use crate::models::webhook::{SECRET_OVERLAP_HOURS, ShownHeader, Webhook};
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};
use crate::web::{is_htmx, render, see_other, toast_oob};

/// The delivery log: a page of deliveries and the link to the next (older) page.
#[derive(Template)]
#[template(path = "partials/delivery_log.html")]
pub struct LogView {
    pub webhook_id: i64,
    pub number: i32,
    pub entries: Vec<LogEntry>,
    pub filter: LogFilter,
    pub next: Option<String>,
    pub timezone: String,
    pub can_edit: bool,
    pub csrf_token: String,
    pub event_types: std::sync::Arc<[EventType]>,
}

impl LogView {
    pub fn time(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        format_time(*at, &self.timezone)
    }

    pub fn outcomes(&self) -> [&'static str; 5] {
        OUTCOMES
    }

    pub fn export_href(&self) -> String {
        let query = self.filter.query();
        if query.is_empty() {
            format!("/webhooks/{}/deliveries.xlsx", self.webhook_id)
        } else {
            format!("/webhooks/{}/deliveries.xlsx?{query}", self.webhook_id)
        }
    }
}

/// The health chart: bars of succeeded and failed attempts per hour, as inline SVG.
pub struct Chart {
    pub hours: Vec<HourHealth>,
    pub max: i64,
    pub timezone: String,
}

/// One bar pair of the chart, in SVG units.
pub struct Bar {
    pub x: i64,
    pub ok_y: i64,
    pub ok_height: i64,
    pub failed_y: i64,
    pub failed_height: i64,
    pub label: String,
}

pub const CHART_HEIGHT: i64 = 120;

impl Chart {
    pub fn bars(&self) -> Vec<Bar> {
        let scale = |n: i64| {
            if self.max == 0 {
                0
            } else {
                (n * CHART_HEIGHT + self.max - 1) / self.max
            }
        };
        self.hours
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let ok_height = scale(h.succeeded);
                let failed_height = scale(h.failed).min(CHART_HEIGHT - ok_height);
                Bar {
                    x: i as i64 * 20 + 2,
                    ok_y: CHART_HEIGHT - ok_height,
                    ok_height,
                    failed_y: CHART_HEIGHT - ok_height - failed_height,
                    failed_height,
                    label: format!(
                        "{}: {} succeeded, {} failed",
                        format_time(h.hour, &self.timezone),
                        h.succeeded,
                        h.failed
                    ),
                }
            })
            .collect()
    }

    pub fn totals(&self) -> (i64, i64) {
        self.hours
            .iter()
            .fold((0, 0), |(ok, failed), h| (ok + h.succeeded, failed + h.failed))
    }
}

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "webhook.html")]
pub struct WebhookPage {
    pub chrome: Chrome,
    pub webhook: Webhook,
    pub connection: Option<Connection>,
    pub headers: Vec<ShownHeader>,
    pub disabled_at: Option<String>,
    pub previous_secret_until: Option<String>,
    pub overlap_hours: i64,
    pub chart: Chart,
    pub log: LogView,
    pub event_types: std::sync::Arc<[EventType]>,
    pub can_edit: bool,
    pub can_reveal: bool,
}

fn log_view(
    user: &CurrentUser,
    webhook: &Webhook,
    entries: Vec<LogEntry>,
    filter: LogFilter,
    types: std::sync::Arc<[EventType]>,
    timezone: &str,
) -> LogView {
    let mut entries = entries;
    let next = if entries.len() as i64 > LOG_PAGE_SIZE {
        entries.truncate(LOG_PAGE_SIZE as usize);
        entries.last().map(|e| filter.query_before(e.delivery.id))
    } else {
        None
    };
    LogView {
        webhook_id: webhook.id,
        number: webhook.number,
        entries,
        filter,
        next,
        timezone: timezone.to_owned(),
        can_edit: user.role().can_edit(),
        csrf_token: user.csrf_token.clone(),
        event_types: types,
    }
}

/// `GET /webhooks/{id}`
pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    filter: web::Query<LogFilter>,
) -> Result<WebhookPage, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let tenant_id = tenant.id;
    let id = id.into_inner();
    let filter = filter.into_inner();
    let now = state.clock.now();
    let query = filter.clone();
    let (webhook, connection, entries, hours, types) = state
        .db(move |conn| {
            let webhook = Webhook::find(conn, tenant_id, id)?;
            let connection = match webhook.connection_id {
                Some(cid) => Some(Connection::find(conn, tenant_id, cid)?),
                None => None,
            };
            let entries = Delivery::log(conn, webhook.id, &query, LOG_PAGE_SIZE + 1)?;
            let hours = Delivery::health(conn, webhook.id, now)?;
            Ok((webhook, connection, entries, hours, EventType::all(conn)?))
        })
        .await?;
    let secrets = state.secrets();
    let max = hours.iter().map(|h| h.succeeded + h.failed).max().unwrap_or(0);
    let can_edit = user.role().can_edit() && tenant.webhooks_enabled;
    Ok(WebhookPage {
        chrome: user.chrome(format!("Webhook No {}", webhook.number), "webhooks"),
        headers: webhook.shown_headers(&secrets),
        disabled_at: webhook.disabled_at.map(|at| format_time(at, &tenant.timezone)),
        previous_secret_until: webhook
            .previous_secret_expires_at
            .filter(|until| *until > now)
            .map(|until| format_time(until, &tenant.timezone)),
        overlap_hours: SECRET_OVERLAP_HOURS,
        chart: Chart {
            hours,
            max,
            timezone: tenant.timezone.clone(),
        },
        log: log_view(&user, &webhook, entries, filter, types.clone(), &tenant.timezone),
        event_types: types,
        connection,
        webhook,
        can_edit,
        can_reveal: user.role().can_edit(),
    })
}

/// `GET /webhooks/{id}/deliveries`: the log alone (htmx filter and paging); without htmx,
/// the whole page.
pub async fn deliveries(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    filter: web::Query<LogFilter>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let id = id.into_inner();
    if !is_htmx(&req) {
        let query = filter.into_inner().query();
        return Ok(see_other(&if query.is_empty() {
            format!("/webhooks/{id}")
        } else {
            format!("/webhooks/{id}?{query}")
        }));
    }
    let filter = filter.into_inner();
    let query = filter.clone();
    let tenant_id = tenant.id;
    let (webhook, entries, types) = state
        .db(move |conn| {
            let webhook = Webhook::find(conn, tenant_id, id)?;
            let entries = Delivery::log(conn, webhook.id, &query, LOG_PAGE_SIZE + 1)?;
            Ok((webhook, entries, EventType::all(conn)?))
        })
        .await?;
    render(
        StatusCode::OK,
        &log_view(&user, &webhook, entries, filter, types, &tenant.timezone),
    )
}

/// `GET /webhooks/{id}/deliveries.xlsx`
pub async fn export_deliveries(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    filter: web::Query<LogFilter>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let id = id.into_inner();
    let filter = filter.into_inner();
    let now = state.clock.now();
    let (number, bytes) = state
        .db(move |conn| {
            let webhook = Webhook::find(conn, tenant.id, id)?;
            let bytes = export::deliveries(conn, webhook.id, &filter, &tenant.timezone)?;
            Ok((webhook.number, bytes))
        })
        .await?;
    let timezone = user.tenant()?.timezone.clone();
    Ok(export::attachment(
        &export::file_name(&format!("Deliveries_{number}"), &timezone, now),
        bytes,
    ))
}

/// The secret, once revealed, or a newly generated API key: shown in place.
#[derive(Template)]
#[template(path = "partials/revealed.html")]
pub struct Revealed {
    pub label: &'static str,
    pub value: String,
    pub hint: String,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for Revealed {}

/// Records `action` on `webhook` in the audit log (the page and the API both use it).
pub async fn audit(
    state: &AppState,
    actor: crate::models::audit::Actor,
    tenant_id: i64,
    webhook: &Webhook,
    action: &'static str,
) -> Result<(), AppError> {
    let number = webhook.number.to_string();
    state
        .db(move |conn| {
            AuditEntry::record(
                conn,
                Some(tenant_id),
                &actor,
                action,
                ("webhook", Some(&number)),
                serde_json::json!({}),
            )?;
            Ok(())
        })
        .await
}

#[derive(Template)]
#[template(path = "revealed_page.html")]
pub struct RevealedPage {
    pub chrome: Chrome,
    pub webhook_id: i64,
    pub revealed: Revealed,
}

/// In place for htmx; on a page of its own (with the way back) without JavaScript.
fn show_revealed(
    req: &HttpRequest,
    user: &CurrentUser,
    webhook: &Webhook,
    revealed: Revealed,
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
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

/// `POST /webhooks/{id}/secret`: reveals the signing secret to an owner or admin (a POST,
/// so a CSRF token is needed and the audit log records who looked).
pub async fn reveal_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    user.require_editor()?;
    let id = id.into_inner();
    let webhook = state
        .db(move |conn| Ok(Webhook::find(conn, tenant.id, id)?))
        .await?;
    let secret = webhook.reveal_secret(&state.secrets())?;
    audit(
        &state,
        user.actor(),
        tenant.id,
        &webhook,
        "webhook.secret_revealed",
    )
    .await?;
    let revealed = Revealed {
        label: "Signing secret",
        value: secret,
        hint: "Use it to verify the webhook-signature header. Keep it out of source code.".into(),
    };
    show_revealed(&req, &user, &webhook, revealed)
}

/// `POST /webhooks/{id}/secret/rotate`
pub async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let id = id.into_inner();
    let secrets = state.secrets();
    let now = state.clock.now();
    let actor = user.actor();
    let webhook = state
        .db(move |conn| rotate_signing_secret(conn, tenant.id, id, &secrets, now, &actor))
        .await?;
    let secret = webhook.reveal_secret(&state.secrets())?;
    let until = format_time(
        now + chrono::Duration::hours(SECRET_OVERLAP_HOURS),
        &tenant.timezone,
    );
    let fragment = Revealed {
        label: "New signing secret",
        value: secret,
        hint: format!(
            "Deliveries are signed with both the new and the old secret until {until}; update your receiver before then."
        ),
    };
    show_revealed(&req, &user, &webhook, fragment)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ApiKeyForm {
    enabled: Option<String>,
}

/// `POST /webhooks/{id}/api-key`: switches the webhook's own key on or off.
pub async fn set_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<ApiKeyForm>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let id = id.into_inner();
    let enabled = form.enabled.as_deref().is_some_and(|v| v == "on" || v == "true");
    let webhook = state
        .db(move |conn| Ok(Webhook::set_api_key_enabled(conn, tenant.id, id, enabled)?))
        .await?;
    let action = if enabled {
        "webhook.api_key_enabled"
    } else {
        "webhook.api_key_disabled"
    };
    audit(&state, user.actor(), tenant.id, &webhook, action).await?;
    if is_htmx(&req) {
        let message = if enabled {
            "The webhook's API key is on."
        } else {
            "The webhook's API key is off; requests with it now get 401."
        };
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("HX-Reswap", "none"))
            .body(toast_oob(message)));
    }
    Ok(see_other(&format!("/webhooks/{id}")))
}

/// `POST /webhooks/{id}/api-key/regenerate`: the new key is shown once.
pub async fn regenerate_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let id = id.into_inner();
    let (webhook, key) = state
        .db(move |conn| Ok(Webhook::regenerate_api_key(conn, tenant.id, id)?))
        .await?;
    audit(
        &state,
        user.actor(),
        tenant.id,
        &webhook,
        "webhook.api_key_regenerated",
    )
    .await?;
    let revealed = Revealed {
        label: "New API key",
        value: key,
        hint: "Shown only now: copy it. The previous key stopped working.".into(),
    };
    show_revealed(&req, &user, &webhook, revealed)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TestForm {
    #[serde(rename = "type")]
    kind: String,
}

/// `POST /webhooks/{id}/test`: the catalog example of the chosen type, to this webhook.
pub async fn send_test(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let id = id.into_inner();
    let kind = form.into_inner().kind;
    let now = state.clock.now();
    let actor = user.actor();
    let sent = state
        .db(move |conn| send_test_event(conn, &tenant, id, &kind, &actor, now))
        .await?;
    let (number, event_id) = (sent.webhook_number, sent.event_id);
    if is_htmx(&req) {
        let body = toast_oob(&format!(
            "Test event {event_id} is on its way to webhook No {number}."
        ));
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("HX-Reswap", "none"))
            .insert_header(("HX-Trigger", "deliveries-changed"))
            .body(body));
    }
    Ok(see_other(&format!("/webhooks/{id}")))
}

/// A new signing secret (the old one keeps signing for 24 hours), recorded in the audit
/// log in the same transaction: the page and the API both rotate through here.
pub fn rotate_signing_secret(
    conn: &mut diesel::PgConnection,
    tenant_id: i64,
    id: i64,
    secrets: &crate::crypto::SecretBox,
    now: chrono::DateTime<chrono::Utc>,
    actor: &crate::models::audit::Actor,
) -> Result<Webhook, AppError> {
    conn.build_transaction().run(|conn| {
        let webhook = Webhook::rotate_secret(conn, tenant_id, id, secrets, now)?;
        AuditEntry::record(
            conn,
            Some(tenant_id),
            actor,
            "webhook.secret_rotated",
            ("webhook", Some(&webhook.number.to_string())),
            serde_json::json!({}),
        )?;
        Ok(webhook)
    })
}

/// A test event sent to one webhook.
pub struct TestSent {
    pub webhook_number: i32,
    pub event_id: String,
    pub delivery_id: i64,
}

/// Sends the catalog's example of `kind` to this webhook only, and records it in the
/// audit log: the page and the API both send test events through here.
pub fn send_test_event(
    conn: &mut diesel::PgConnection,
    tenant: &crate::models::tenant::Tenant,
    webhook_id: i64,
    kind: &str,
    actor: &crate::models::audit::Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TestSent, AppError> {
    let webhook = Webhook::find(conn, tenant.id, webhook_id)?;
    let event_type = EventType::find(conn, kind)?.ok_or_else(|| {
        AppError::validation("type", format!("`{kind}` is not an event type of the catalog."))
    })?;
    conn.build_transaction().run(|conn| {
        let (event, delivery) = Delivery::send_test(conn, tenant, &webhook, &event_type, now)?;
        AuditEntry::record(
            conn,
            Some(tenant.id),
            actor,
            "webhook.test_sent",
            ("webhook", Some(&webhook.number.to_string())),
            serde_json::json!({ "type": event_type.code, "event": event.id }),
        )?;
        Ok(TestSent {
            webhook_number: webhook.number,
            event_id: event.id,
            delivery_id: delivery.id,
        })
    })
}

/// Queues a delivery again (same event id, due at once) and records it in the audit log:
/// the page and the API both resend through here.
pub fn resend_delivery(
    conn: &mut diesel::PgConnection,
    tenant_id: i64,
    id: i64,
    actor: &crate::models::audit::Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Delivery, AppError> {
    conn.build_transaction().run(|conn| {
        let delivery = Delivery::resend(conn, tenant_id, id, now)?;
        AuditEntry::record(
            conn,
            Some(tenant_id),
            actor,
            "delivery.resent",
            ("delivery", Some(&delivery.id.to_string())),
            serde_json::json!({ "event": delivery.event_id }),
        )?;
        Ok(delivery)
    })
}

/// `POST /deliveries/{id}/resend`: the same event id, due at once.
pub async fn resend(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let id = id.into_inner();
    let actor = user.actor();
    let now = state.clock.now();
    let delivery = state
        .db(move |conn| resend_delivery(conn, tenant.id, id, &actor, now))
        .await?;
    if is_htmx(&req) {
        let body = toast_oob(&format!(
            "Delivery of {} will be sent again now.",
            delivery.event_id
        ));
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("HX-Reswap", "none"))
            .insert_header(("HX-Trigger", "deliveries-changed"))
            .body(body));
    }
    Ok(see_other(&format!("/webhooks/{}", delivery.webhook_id)))
}
