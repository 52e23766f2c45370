//! The event catalog (`GET /events`): every event type by category, with its description
//! and example payload.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::error::AppError;
use crate::models::event_type::EventType;
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;
use crate::web::webhooks::form::{EventGroup, group_events};

#[derive(Template, WebTemplate)]
#[template(path = "catalog/index.html")]
pub struct CatalogPage {
    pub chrome: Chrome,
    pub groups: Vec<EventGroup>,
}

impl CatalogPage {
    pub fn example(&self, event_type: &EventType) -> String {
        serde_json::to_string_pretty(&event_type.example_payload).unwrap_or_default()
    }
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser) -> Result<CatalogPage, AppError> {
    // Partners see the catalog too: it is what their webhooks subscribe to.
    user.member_tenant()?;
    let types = state.db(|conn| Ok(EventType::all(conn)?)).await?;
    Ok(CatalogPage {
        chrome: user.chrome("Event catalog", "events"),
        groups: group_events(&types),
    })
}
