//! The webhook table (`GET /webhooks`, SPEC 3, 3a): filters in the query string, pages of
//! 50, the rows htmx swaps after every change, and the Excel export of the filtered view.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::error::AppError;
use crate::models::connection::Connection;
use crate::models::event_type::EventType;
use crate::models::tenant::Tenant;
use crate::models::webhook::{Filter, Page, Webhook};
use crate::services::{self, TOOL_OFF_NOTICE};
use crate::state::AppState;
use crate::web::htmx::{Fragment, Hx};
use crate::web::session::CurrentUser;
use crate::web::views::{Chrome, format_time};
use crate::web::{download, render};

/// One row of the table as shown.
pub struct RowView {
    pub webhook: Webhook,
    pub connection: Option<String>,
    /// When an auto-disabled or inactive webhook was switched off, in the tenant's time.
    pub disabled_at: Option<String>,
    pub can_edit: bool,
    pub csrf_token: String,
}

impl RowView {
    /// The first event codes, and how many more there are.
    pub fn events_shown(&self) -> (&[String], usize) {
        let shown = self.webhook.events.len().min(3);
        (&self.webhook.events[..shown], self.webhook.events.len() - shown)
    }
}

/// The rows, the pager and the export link: what a filter change replaces.
#[derive(Template)]
#[template(path = "webhooks/results.html")]
pub struct Results {
    pub rows: Vec<RowView>,
    pub filter: Filter,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    /// All webhooks of the tenant, to tell "none yet" from "none match".
    pub tenant_total: i64,
    pub can_edit: bool,
    /// Render the pager and counters as out-of-band swaps (htmx responses).
    pub oob: bool,
}

impl Results {
    pub fn export_href(&self) -> String {
        with_query("/webhooks/export.xlsx", &self.filter.query())
    }

    pub fn page_href(&self, page: i64) -> String {
        with_query("/webhooks", &self.filter.query_with(None, Some(page)))
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

#[derive(Template)]
#[template(path = "webhooks/row.html")]
pub struct RowFragment {
    pub row: RowView,
}

#[derive(Template)]
#[template(path = "webhooks/table.html")]
pub struct TablePage {
    pub chrome: Chrome,
    pub results: Results,
    pub filter: Filter,
    pub event_types: Arc<[EventType]>,
    pub connections: Vec<Connection>,
    pub read_only: Option<&'static str>,
    /// A filter value of the address that does not parse, and was left out.
    pub filter_problem: Option<String>,
    pub can_edit: bool,
}

impl TablePage {
    pub fn sort_options(&self) -> [(&'static str, &'static str); 10] {
        [
            ("", "No, ascending"),
            ("-number", "No, descending"),
            ("url", "Endpoint A to Z"),
            ("-url", "Endpoint Z to A"),
            ("-events", "Most events"),
            ("events", "Fewest events"),
            ("-errors", "Most errors"),
            ("errors", "Fewest errors"),
            ("status", "Status A to Z"),
            ("-status", "Status Z to A"),
        ]
    }

    pub fn is_sort(&self, value: &str) -> bool {
        self.filter.sort == value
            || (value.is_empty() && self.filter.sort() == ("number", false) && self.filter.sort != "-number")
    }
}

/// The filters of the page an htmx action came from, so the table it answers with shows
/// the same view.
pub fn current_filter(hx: &Hx) -> Filter {
    hx.current_query("/webhooks")
        .and_then(|query| serde_urlencoded::from_str::<Filter>(&query).ok())
        .map(|filter| lenient(filter).0)
        .unwrap_or_default()
}

/// The view without a value that does not parse, and what was wrong with it: a
/// bookmarked link never breaks the page.
fn lenient(mut filter: Filter) -> (Filter, Option<String>) {
    let mut problems = Vec::new();
    while let Err((field, message)) = filter.check() {
        problems.push(message);
        filter = filter.without(field);
    }
    (filter, (!problems.is_empty()).then(|| problems.join(" ")))
}

pub fn row_view(
    webhook: Webhook,
    names: &HashMap<i64, String>,
    tenant: &Tenant,
    user: &CurrentUser,
) -> RowView {
    RowView {
        connection: webhook.connection_id.and_then(|id| names.get(&id).cloned()),
        disabled_at: webhook.disabled_at.map(|at| format_time(at, &tenant.timezone)),
        can_edit: user.manages_webhooks() && tenant.webhooks_enabled,
        csrf_token: user.csrf_token.clone(),
        webhook,
    }
}

/// The results of a filter, for htmx answers that replace the table.
pub async fn load_results(
    state: &AppState,
    user: &CurrentUser,
    filter: Filter,
    oob: bool,
) -> Result<Results, AppError> {
    let scope = user.webhooks_scope()?;
    let page = services::webhooks::list(state, scope, filter.clone()).await?;
    let (tenant_total, names) = state
        .db(move |conn| {
            Ok((
                Webhook::status_counts(conn, scope)?.total,
                Connection::names(conn, scope.tenant_id)?,
            ))
        })
        .await?;
    results(user, page, tenant_total, &names, filter, oob)
}

fn results(
    user: &CurrentUser,
    page: Page,
    tenant_total: i64,
    names: &HashMap<i64, String>,
    filter: Filter,
    oob: bool,
) -> Result<Results, AppError> {
    let tenant = user.webhooks_tenant()?;
    Ok(Results {
        rows: page
            .rows
            .into_iter()
            .map(|w| row_view(w, names, tenant, user))
            .collect(),
        page: page.page,
        pages: page.pages,
        total: page.total,
        tenant_total,
        filter,
        can_edit: user.manages_webhooks() && tenant.webhooks_enabled,
        oob,
    })
}

/// An htmx answer that replaces the table's results, whatever element asked.
pub fn table_fragment(results: &Results) -> Result<Fragment, AppError> {
    Ok(Fragment::of(results)?.retarget("#webhook-results", "outerHTML"))
}

/// `GET /webhooks`: the whole page, or just the results for an htmx filter change.
pub async fn index(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let (filter, filter_problem) = lenient(filter.into_inner());
    if hx.targets("webhook-results") {
        let results = load_results(&state, &user, filter, true).await?;
        return render(StatusCode::OK, &results);
    }
    let services::webhooks::Table {
        page,
        tenant_total,
        connections,
    } = services::webhooks::table(&state, user.scope()?, filter.clone()).await?;
    let event_types = match EventType::cached() {
        Some(types) => types,
        None => state.db(|conn| Ok(EventType::all(conn)?)).await?,
    };
    let names: HashMap<i64, String> = connections.iter().map(|c| (c.id, c.name.clone())).collect();
    let results = results(&user, page, tenant_total, &names, filter.clone(), false)?;
    let page = TablePage {
        chrome: user.chrome("Webhooks", "webhooks"),
        results,
        filter,
        event_types,
        connections,
        read_only: (!tenant.webhooks_enabled).then_some(TOOL_OFF_NOTICE),
        filter_problem,
        can_edit: user.manages_webhooks() && tenant.webhooks_enabled,
    };
    render(StatusCode::OK, &page)
}

/// `GET /webhooks/export.xlsx`: the filtered rows of all pages. Viewers may export.
pub async fn export_xlsx(
    state: web::Data<AppState>,
    user: CurrentUser,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let scope = user.scope()?;
    let filter = filter.into_inner();
    filter
        .check()
        .map_err(|(field, message)| AppError::validation(field, message))?;
    let file_name = services::export::file_name("Webhooks", &tenant.timezone, state.clock.now());
    let bytes = state
        .db(move |conn| Ok(services::export::webhooks(conn, scope, &filter)?))
        .await?;
    Ok(download(&file_name, bytes))
}
