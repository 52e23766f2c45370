//! The webhook page (`GET /webhooks/{id}`): configuration, a 24-hour health chart and the
//! delivery log with every attempt, filtered and paged by keyset; the log's Excel export.
//! Its buttons (secret, API key, test event, resend) are in [`super::actions`].

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::error::AppError;
use crate::models::connection::Connection;
use crate::models::delivery::{HourHealth, LOG_PAGE_SIZE, LogEntry, LogFilter, LogPage, OUTCOMES};
use crate::models::event_type::EventType;
use crate::models::webhook::{SECRET_OVERLAP_HOURS, ShownHeader, Webhook};
use crate::services;
use crate::state::AppState;
use crate::web::htmx::Hx;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};
use crate::web::{download, render, see_other};

/// The delivery log: a page of deliveries and the link to the next (older) page.
#[derive(Template)]
#[template(path = "webhooks/delivery_log.html")]
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
#[template(path = "webhooks/page.html")]
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
    /// Of an ordered webhook: the ordering keys with deliveries held back.
    pub held_keys: i64,
}

fn log_view(
    user: &CurrentUser,
    webhook: &Webhook,
    log: LogPage,
    filter: LogFilter,
    types: std::sync::Arc<[EventType]>,
    timezone: &str,
) -> LogView {
    LogView {
        webhook_id: webhook.id,
        number: webhook.number,
        next: log.next_before.map(|before| filter.query_before(before)),
        entries: log.entries,
        filter,
        timezone: timezone.to_owned(),
        can_edit: user.manages_webhooks(),
        csrf_token: user.csrf_token.clone(),
        event_types: types,
    }
}

/// The log's filter as the page reads it: a value that does not parse is left out (the
/// log shows everything rather than an error page).
fn lenient(mut filter: LogFilter) -> LogFilter {
    while let Err((field, _)) = filter.check() {
        match field {
            "outcome" => filter.outcome.clear(),
            _ => filter.before.clear(),
        }
    }
    filter
}

/// The catalog: from memory once it was read (no trip to the database then).
async fn catalog(state: &AppState) -> Result<std::sync::Arc<[EventType]>, AppError> {
    if let Some(types) = EventType::cached() {
        return Ok(types);
    }
    state.db(|conn| Ok(EventType::all(conn)?)).await
}

/// `GET /webhooks/{id}`
pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    filter: web::Query<LogFilter>,
) -> Result<WebhookPage, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let scope = user.scope()?;
    let id = id.into_inner();
    let filter = lenient(filter.into_inner());
    let now = state.clock.now();
    let services::deliveries::Overview {
        webhook,
        connection,
        log,
        hours,
        held_keys,
    } = services::deliveries::overview(&state, scope, id, filter.clone(), LOG_PAGE_SIZE).await?;
    let types = catalog(&state).await?;
    let secrets = state.secrets();
    let max = hours.iter().map(|h| h.succeeded + h.failed).max().unwrap_or(0);
    let can_edit = user.manages_webhooks() && tenant.webhooks_enabled;
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
        log: log_view(&user, &webhook, log, filter, types.clone(), &tenant.timezone),
        event_types: types,
        connection,
        webhook,
        can_edit,
        can_reveal: user.manages_webhooks(),
        held_keys,
    })
}

/// `GET /webhooks/{id}/deliveries`: the log alone (htmx filter and paging); without htmx,
/// the whole page.
pub async fn deliveries(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    filter: web::Query<LogFilter>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let id = id.into_inner();
    if !hx.is_htmx {
        // Only to a webhook this user may see: any other is not found here either.
        services::webhooks::find(&state, user.scope()?, id).await?;
        let query = filter.into_inner().query();
        return Ok(see_other(&if query.is_empty() {
            format!("/webhooks/{id}")
        } else {
            format!("/webhooks/{id}?{query}")
        }));
    }
    let filter = lenient(filter.into_inner());
    let (webhook, log) =
        services::deliveries::log(&state, user.scope()?, id, filter.clone(), LOG_PAGE_SIZE).await?;
    let types = catalog(&state).await?;
    render(
        StatusCode::OK,
        &log_view(&user, &webhook, log, filter, types, &tenant.timezone),
    )
}

/// `GET /webhooks/{id}/deliveries.xlsx`
pub async fn export_deliveries(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    filter: web::Query<LogFilter>,
) -> Result<HttpResponse, AppError> {
    let timezone = user.webhooks_tenant()?.timezone.clone();
    let now = state.clock.now();
    let (number, bytes) = services::deliveries::export(
        &state,
        user.scope()?,
        id.into_inner(),
        filter.into_inner(),
        timezone.clone(),
    )
    .await?;
    Ok(download(
        &services::export::file_name(&format!("Deliveries_{number}"), &timezone, now),
        bytes,
    ))
}

/// A whole stored text, in place for htmx and as plain text otherwise.
#[derive(Template)]
#[template(source = r#"<pre class="{{ class }}">{{ text }}</pre>"#, ext = "html")]
struct Whole<'a> {
    class: &'a str,
    text: &'a str,
}

fn whole(hx: &Hx, class: &str, text: &str, content_type: &str) -> Result<HttpResponse, AppError> {
    if hx.is_htmx {
        return render(StatusCode::OK, &Whole { class, text });
    }
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Disposition", "inline"))
        .body(text.to_owned()))
}

/// `GET /deliveries/{id}/body`: the whole body of a delivery, which the log shows only the
/// start of.
pub async fn delivery_body(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_scope()?;
    let body = services::deliveries::body(&state, scope, id.into_inner()).await?;
    whole(&hx, "payload", &body, "application/json")
}

/// `GET /deliveries/{id}/attempts/{number}/response`: the whole stored response (at most
/// 64 KiB) of one attempt.
pub async fn attempt_response(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(i64, i32)>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_scope()?;
    let (id, number) = path.into_inner();
    let attempt = services::deliveries::attempt(&state, scope, id, number).await?;
    whole(
        &hx,
        "response",
        &attempt.response_text(),
        "text/plain; charset=utf-8",
    )
}
