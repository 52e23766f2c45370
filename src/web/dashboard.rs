//! The landing page after login.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::error::AppError;
use crate::models::webhook::Webhook;
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;

pub struct DashboardTenant {
    pub name: String,
    pub plan: String,
    pub webhooks_enabled: bool,
    pub webhook_count: i64,
    pub failing_webhook_count: i64,
    /// A partner counts its connection's webhooks and has no Apps > Tools.
    pub is_partner: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard/index.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub tenant: Option<DashboardTenant>,
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser) -> Result<DashboardPage, AppError> {
    let tenant = match user.tenant.clone() {
        None => None,
        Some(tenant) => {
            // A partner counts its connection's webhooks only.
            let scope = user.scope()?;
            let counts = state
                .db(move |conn| Ok(Webhook::status_counts(conn, scope)?))
                .await?;
            Some(DashboardTenant {
                name: tenant.name,
                plan: tenant.plan.to_string(),
                webhooks_enabled: tenant.webhooks_enabled,
                webhook_count: counts.total,
                failing_webhook_count: counts.auto_disabled,
                is_partner: scope.connection_id.is_some(),
            })
        }
    };
    Ok(DashboardPage {
        chrome: user.chrome("Dashboard", "dashboard"),
        tenant,
    })
}
