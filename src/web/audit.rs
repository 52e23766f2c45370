//! The tenant's audit log: who changed what, when.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::error::AppError;
use crate::models::audit::AuditEntry;
use crate::state::AppState;
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};

const PAGE_SIZE: i64 = 50;

pub struct AuditRow {
    pub when: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// What changed, as a sentence.
    pub summary: String,
    /// The stored details, as JSON, one click away.
    pub details: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/index.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub rows: Vec<AuditRow>,
    pub next_before: Option<i64>,
    pub timezone: String,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<AuditQuery>,
) -> Result<AuditPage, AppError> {
    let tenant = user.tenant()?.clone();
    let before = query.before;
    let tenant_id = tenant.id;
    let entries = state
        .db(move |conn| Ok(AuditEntry::list(conn, tenant_id, before, PAGE_SIZE + 1)?))
        .await?;
    let next_before = (entries.len() as i64 > PAGE_SIZE).then(|| entries[PAGE_SIZE as usize - 1].id);
    let rows = entries
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|e| AuditRow {
            summary: super::audit_text::describe(&e.action, &e.details),
            when: format_time(e.created_at, &tenant.timezone),
            actor: e.actor,
            action: e.action,
            target: match e.target_id {
                Some(id) => format!("{} {id}", e.target_type),
                None => e.target_type,
            },
            details: if e.details.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                serde_json::to_string_pretty(&e.details).unwrap_or_default()
            },
        })
        .collect();
    Ok(AuditPage {
        chrome: user.chrome("Audit log", "audit"),
        rows,
        next_before,
        timezone: tenant.timezone,
    })
}
