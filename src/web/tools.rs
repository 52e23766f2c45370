//! Apps > Tools: the Webhooks tool card with its Enable switch (seed 000).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::error::AppError;
use crate::models::tenant::Tenant;
use crate::services::accounts;
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;
use crate::web::{is_htmx, see_other};

/// The state the card shows.
pub struct WebhooksCard {
    pub enabled: bool,
    pub plan_allows: bool,
    pub can_edit: bool,
    pub csrf_token: String,
}

impl WebhooksCard {
    fn of(user: &CurrentUser, tenant: &Tenant) -> Self {
        WebhooksCard {
            enabled: tenant.webhooks_enabled,
            plan_allows: tenant.plan.has_webhooks(),
            can_edit: user.role().can_edit(),
            csrf_token: user.csrf_token.clone(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "tools/index.html")]
pub struct ToolsPage {
    pub chrome: Chrome,
    pub card: WebhooksCard,
}

/// The card alone, answered to the htmx switch.
#[derive(Template, WebTemplate)]
#[template(path = "tools/webhooks_card.html")]
pub struct WebhooksCardFragment {
    pub card: WebhooksCard,
}

pub async fn show(user: CurrentUser) -> Result<ToolsPage, AppError> {
    let tenant = user.tenant()?;
    Ok(ToolsPage {
        card: WebhooksCard::of(&user, tenant),
        chrome: user.chrome("Apps > Tools", "tools"),
    })
}

#[derive(Deserialize)]
pub struct ToggleForm {
    /// Present ("on") when the switch is on; absent when off, as browsers send checkboxes.
    enabled: Option<String>,
}

pub async fn toggle_webhooks(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<ToggleForm>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.require_editor()?.clone();
    if !tenant.plan.has_webhooks() {
        return Err(AppError::forbidden(crate::services::SCALE_PLAN_NOTICE));
    }
    let enabled = form.enabled.as_deref().is_some_and(|v| v == "on" || v == "true");
    let actor = user.actor();
    let tenant = state
        .db(move |conn| accounts::set_webhooks_enabled(conn, tenant.id, enabled, &actor))
        .await?;
    if is_htmx(&req) {
        let fragment = WebhooksCardFragment {
            card: WebhooksCard::of(&user, &tenant),
        };
        Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(fragment.render().map_err(anyhow::Error::from)?))
    } else {
        Ok(see_other("/apps/tools"))
    }
}
