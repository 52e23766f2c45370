//! The landing page after login: a tenant's operations dashboard (SPEC 9a), or the
//! operator console's cards. The dashboard's body is one fragment, `#dashboard-panel`,
//! which htmx asks for again every 30 seconds (unless paused) and the page embeds.

mod chart;

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::AppError;
use crate::services::dashboard::{self as service, FAILURE_LIMIT, Overview};
use crate::services::webhooks::{self as webhooks, Parked};
use crate::services::{SCALE_PLAN_NOTICE, TOOL_OFF_NOTICE};
use crate::state::AppState;
use crate::web::htmx::{Fragment, Hx};
use crate::web::see_other;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};
pub use chart::Chart;

/// The id of the fragment that refreshes itself.
pub const PANEL_ID: &str = "dashboard-panel";

#[derive(Template, WebTemplate)]
#[template(path = "dashboard/index.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    /// Operators see their console's cards instead.
    pub operator: bool,
    /// The plan gate, or the tool switched off (then the page is read-only).
    pub notice: Option<&'static str>,
    pub panel: Option<Panel>,
}

/// Everything below the heading that refreshes itself.
#[derive(Template)]
#[template(path = "dashboard/panel.html")]
pub struct Panel {
    pub hours: Chart,
    pub days: Chart,
    pub success_rate: String,
    pub latency_p95: String,
    pub due: i64,
    pub oldest_due: String,
    pub at_risk: Vec<AtRiskRow>,
    pub switched_off: Vec<SwitchedOffRow>,
    pub failing_types: Vec<(String, i64)>,
    pub webhooks: usize,
    /// Owners, admins and partners with the tool on may switch webhooks back on.
    pub can_switch: bool,
    pub csrf_token: String,
    pub updated_at: String,
    pub limit: i32,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for Panel {}

pub struct AtRiskRow {
    pub id: i64,
    pub number: i32,
    pub url: String,
    pub failures: i32,
    /// Failed attempts since the last success.
    pub attempts: i32,
    pub last_error: String,
    pub next_retry: String,
}

pub struct SwitchedOffRow {
    pub id: i64,
    pub number: i32,
    pub url: String,
    pub disabled_at: String,
    pub reason: String,
    pub parked: i64,
}

/// `GET /`: the dashboard, or only its panel when htmx refreshes it.
pub async fn show(hx: Hx, state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    let chrome = user.chrome("Dashboard", "dashboard");
    let Some(tenant) = user.tenant.clone() else {
        return page(DashboardPage {
            chrome,
            operator: true,
            notice: None,
            panel: None,
        });
    };
    if !tenant.plan.has_webhooks() {
        return page(DashboardPage {
            chrome,
            operator: false,
            notice: Some(SCALE_PLAN_NOTICE),
            panel: None,
        });
    }
    let scope = user.scope()?;
    let overview = service::overview(&state, scope, &tenant.timezone).await?;
    let can_switch = user.manages_webhooks() && tenant.webhooks_enabled;
    let panel = panel(overview, can_switch, &user.csrf_token);
    if hx.targets(PANEL_ID) {
        return Ok(Fragment::of(&panel)?.into_response());
    }
    page(DashboardPage {
        chrome,
        operator: false,
        notice: (!tenant.webhooks_enabled).then_some(TOOL_OFF_NOTICE),
        panel: Some(panel),
    })
}

fn page(page: DashboardPage) -> Result<HttpResponse, AppError> {
    crate::web::render(actix_web::http::StatusCode::OK, &page)
}

fn panel(o: Overview, can_switch: bool, csrf_token: &str) -> Panel {
    let tz = o.timezone.name();
    let at = |t: Option<DateTime<Utc>>| t.map(|t| format_time(t, tz));
    Panel {
        hours: Chart::hours(&o.hours, o.timezone),
        days: Chart::days(&o.days, o.timezone),
        success_rate: o
            .success_rate
            .map_or("No attempts".to_owned(), |r| format!("{:.1}%", r * 100.0)),
        latency_p95: o.latency_p95_ms.map_or("No attempts".to_owned(), |ms| {
            if ms >= 1000 {
                format!("≤ {} s", ms / 1000)
            } else {
                format!("≤ {ms} ms")
            }
        }),
        due: o.due,
        oldest_due: o.oldest_due.map_or("Nothing waiting".to_owned(), |since| {
            format!("oldest due for {}", age(o.now, since))
        }),
        at_risk: o
            .at_risk
            .into_iter()
            .map(|r| AtRiskRow {
                id: r.webhook.id,
                number: r.webhook.number,
                url: r.webhook.url,
                failures: r.webhook.consecutive_failures,
                attempts: r.failed_attempts,
                last_error: r.last_error.unwrap_or_else(|| "—".to_owned()),
                next_retry: at(r.next_retry).unwrap_or_else(|| "Nothing waiting".to_owned()),
            })
            .collect(),
        switched_off: o
            .switched_off
            .into_iter()
            .map(|s| SwitchedOffRow {
                id: s.webhook.id,
                number: s.webhook.number,
                url: s.webhook.url,
                disabled_at: at(s.webhook.disabled_at).unwrap_or_default(),
                reason: s.webhook.disabled_reason.unwrap_or_default(),
                parked: s.parked,
            })
            .collect(),
        failing_types: o
            .failing_types
            .into_iter()
            .map(|t| (t.event_type, t.failed))
            .collect(),
        webhooks: o.webhooks,
        can_switch,
        csrf_token: csrf_token.to_owned(),
        updated_at: format_time(o.now, tz),
        limit: FAILURE_LIMIT,
    }
}

/// How long ago `since` was, to the minute: `just now`, `12 min`, `3 h 5 min`, `2 d 4 h`.
fn age(now: DateTime<Utc>, since: DateTime<Utc>) -> String {
    let minutes = (now - since).num_minutes().max(0);
    match minutes {
        0 => "less than a minute".to_owned(),
        m if m < 60 => format!("{m} min"),
        m if m < 24 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (24 * 60), (m / 60) % 24),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SwitchOnForm {
    /// `resend` or `drop` the parked deliveries (`keep` when there are none).
    parked: String,
}

/// `POST /dashboard/switch-on/{id}`: switches a webhook Hookboard switched off back on,
/// from the **Recently switched off** section; its row leaves the section in place.
pub async fn switch_on(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<SwitchOnForm>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let choice: Parked = form
        .parked
        .parse()
        .map_err(|message: String| AppError::validation("parked", message))?;
    let switched = webhooks::switch(&state, scope, id.into_inner(), true, choice, user.actor()).await?;
    if !hx.is_htmx {
        return Ok(see_other("/"));
    }
    let number = switched.webhook.number;
    let message = match (switched.choice, switched.parked) {
        (Parked::Resend, n) if n > 0 => {
            format!("Webhook No {number} is on; {n} parked deliveries are being resent.")
        }
        (Parked::Drop, n) if n > 0 => {
            format!("Webhook No {number} is on; {n} parked deliveries were dropped.")
        }
        _ => format!("Webhook No {number} is on."),
    };
    // The empty answer replaces the row: it leaves the section.
    Ok(Fragment::new(String::new()).and_toast(&message).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_minutes_hours_and_days() {
        let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        let ago = |m| age(now, now - chrono::Duration::minutes(m));
        assert_eq!(ago(0), "less than a minute");
        assert_eq!(ago(12), "12 min");
        assert_eq!(ago(185), "3 h 5 min");
        assert_eq!(ago(2 * 1440 + 240), "2 d 4 h");
    }
}
