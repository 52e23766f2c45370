//! The webhook table and its actions (SPEC 3, 3a): list with filters, Add / Edit in one
//! form, the status switch, delete after a confirmation, and the Excel export. Every
//! action answers htmx with a fragment and everyone else with a full page or a redirect.

pub mod form;
pub mod page;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::export;
use crate::models::audit::AuditEntry;
use crate::models::connection::Connection;
use crate::models::event_type::EventType;
use crate::models::tenant::Tenant;
use crate::models::webhook::{Filter, Page, Parked, SaveError, Webhook};
use crate::state::AppState;
use crate::validation::webhook::{Context, validate};
use crate::web::session::{CurrentUser, TOOL_OFF_NOTICE};
use crate::web::views::{Chrome, format_time};
use crate::web::{is_htmx, render, see_other, toast_oob};
use form::{FormView, Submitted, group_events, no_errors};

impl From<SaveError> for AppError {
    fn from(err: SaveError) -> Self {
        match err {
            SaveError::LimitReached => AppError::Conflict(err.to_string()),
            SaveError::Database(err) => err.into(),
        }
    }
}

/// Creates a webhook (the plan's limit answers a conflict) and records it in the audit
/// log; returns it with its own API key. The form and the API both create through here.
pub fn create_webhook(
    conn: &mut diesel::PgConnection,
    tenant_id: i64,
    input: &crate::validation::webhook::Input,
    secrets: &crate::crypto::SecretBox,
    actor: &crate::models::audit::Actor,
) -> Result<(Webhook, String), AppError> {
    conn.build_transaction().run(|conn| {
        let (webhook, key) = Webhook::create(conn, tenant_id, input, secrets)?;
        AuditEntry::record(
            conn,
            Some(tenant_id),
            actor,
            "webhook.created",
            ("webhook", Some(&webhook.number.to_string())),
            serde_json::json!({ "url": webhook.url, "events": webhook.events }),
        )?;
        Ok((webhook, key))
    })
}

/// Saves a validated webhook over the stored one and records it in the audit log.
pub fn update_webhook(
    conn: &mut diesel::PgConnection,
    tenant_id: i64,
    id: i64,
    input: &crate::validation::webhook::Input,
    secrets: &crate::crypto::SecretBox,
    actor: &crate::models::audit::Actor,
) -> Result<Webhook, AppError> {
    conn.build_transaction().run(|conn| {
        let webhook = Webhook::update(conn, tenant_id, id, input, secrets)?;
        AuditEntry::record(
            conn,
            Some(tenant_id),
            actor,
            "webhook.updated",
            ("webhook", Some(&webhook.number.to_string())),
            serde_json::json!({ "url": webhook.url, "events": webhook.events, "status": webhook.status }),
        )?;
        Ok(webhook)
    })
}

/// Deletes a webhook, cancelling its waiting deliveries, and records it in the audit log;
/// returns its number and how many deliveries were cancelled.
pub fn delete_webhook(
    conn: &mut diesel::PgConnection,
    tenant_id: i64,
    id: i64,
    actor: &crate::models::audit::Actor,
) -> Result<(i32, i64), AppError> {
    conn.build_transaction().run(|conn| {
        let webhook = Webhook::find(conn, tenant_id, id)?;
        let cancelled = Webhook::delete(conn, tenant_id, id)?;
        AuditEntry::record(
            conn,
            Some(tenant_id),
            actor,
            "webhook.deleted",
            ("webhook", Some(&webhook.number.to_string())),
            serde_json::json!({ "url": webhook.url, "cancelled_deliveries": cancelled }),
        )?;
        Ok((webhook.number, cancelled))
    })
}

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
#[template(path = "partials/webhook_results.html")]
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
#[template(path = "partials/webhook_row.html")]
pub struct RowFragment {
    pub row: RowView,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct TablePage {
    pub chrome: Chrome,
    pub results: Results,
    pub filter: Filter,
    pub event_types: std::sync::Arc<[EventType]>,
    pub connections: Vec<Connection>,
    pub read_only: Option<&'static str>,
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
fn current_filter(req: &HttpRequest) -> Filter {
    req.headers()
        .get("HX-Current-URL")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok())
        .filter(|u| u.path() == "/webhooks")
        .and_then(|u| serde_urlencoded::from_str(u.query().unwrap_or("")).ok())
        .unwrap_or_default()
}

fn row_view(
    webhook: Webhook,
    names: &std::collections::HashMap<i64, String>,
    tenant: &Tenant,
    user: &CurrentUser,
) -> RowView {
    RowView {
        connection: webhook.connection_id.and_then(|id| names.get(&id).cloned()),
        disabled_at: webhook.disabled_at.map(|at| format_time(at, &tenant.timezone)),
        can_edit: user.role().can_edit() && tenant.webhooks_enabled,
        csrf_token: user.csrf_token.clone(),
        webhook,
    }
}

async fn load_results(
    state: &AppState,
    user: &CurrentUser,
    filter: Filter,
    oob: bool,
) -> Result<Results, AppError> {
    let tenant_id = user.webhooks_tenant()?.id;
    let query = filter.clone();
    let (listed, names) = state
        .db(move |conn| {
            let listed = Listed::load(conn, tenant_id, &query)?;
            Ok((listed, Webhook::connection_names(conn, tenant_id)?))
        })
        .await?;
    results(user, listed, &names, filter, oob)
}

/// One page of the table, read in one go.
struct Listed {
    page: Page,
    tenant_total: i64,
}

impl Listed {
    fn load(conn: &mut diesel::PgConnection, tenant_id: i64, filter: &Filter) -> diesel::QueryResult<Listed> {
        let page = Webhook::list(conn, tenant_id, filter)?;
        let tenant_total = if filter.is_filtered() {
            Webhook::count(conn, tenant_id)?
        } else {
            page.total
        };
        Ok(Listed { page, tenant_total })
    }
}

fn results(
    user: &CurrentUser,
    listed: Listed,
    names: &HashMap<i64, String>,
    filter: Filter,
    oob: bool,
) -> Result<Results, AppError> {
    let tenant = user.webhooks_tenant()?;
    let Listed { page, tenant_total } = listed;
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
        can_edit: user.role().can_edit() && tenant.webhooks_enabled,
        oob,
    })
}

/// `GET /webhooks`: the whole page, or just the results for an htmx filter change.
pub async fn index(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let filter = filter.into_inner();
    if is_htmx(&req)
        && req
            .headers()
            .get("HX-Target")
            .is_some_and(|t| t == "webhook-results")
    {
        let results = load_results(&state, &user, filter, true).await?;
        return render(StatusCode::OK, &results);
    }
    // The whole page in one trip to the pool: the table, the connections (for the filter
    // and the table's names) and the catalog (from memory).
    let (tenant_id, query) = (tenant.id, filter.clone());
    let (listed, connections, event_types) = state
        .db(move |conn| {
            Ok((
                Listed::load(conn, tenant_id, &query)?,
                Connection::list(conn, tenant_id)?,
                EventType::all(conn)?,
            ))
        })
        .await?;
    let names: HashMap<i64, String> = connections.iter().map(|c| (c.id, c.name.clone())).collect();
    let results = results(&user, listed, &names, filter.clone(), false)?;
    let page = TablePage {
        chrome: user.chrome("Webhooks", "webhooks"),
        results,
        filter,
        event_types,
        connections,
        read_only: (!tenant.webhooks_enabled).then_some(TOOL_OFF_NOTICE),
        can_edit: user.role().can_edit() && tenant.webhooks_enabled,
    };
    render(StatusCode::OK, &page)
}

/// The form on a page of its own, for browsers without JavaScript.
#[derive(Template)]
#[template(path = "webhook_form_page.html")]
pub struct FormPage {
    pub chrome: Chrome,
    pub form: FormView,
}

/// The form in a dialog over the table.
#[derive(Template)]
#[template(path = "partials/webhook_form_dialog.html")]
pub struct FormDialog {
    pub form: FormView,
}

async fn form_view(
    state: &AppState,
    user: &CurrentUser,
    action: String,
    title: String,
    values: Submitted,
    errors: crate::validation::webhook::FieldErrors,
    general_error: Option<String>,
) -> Result<FormView, AppError> {
    let tenant_id = user.tenant()?.id;
    let (types, connections) = state
        .db(move |conn| Ok((EventType::all(conn)?, Connection::list(conn, tenant_id)?)))
        .await?;
    Ok(FormView {
        action,
        title,
        values,
        errors,
        general_error,
        groups: group_events(&types),
        connections,
        csrf_token: user.csrf_token.clone(),
    })
}

fn answer_form(
    req: &HttpRequest,
    user: &CurrentUser,
    status: StatusCode,
    form: FormView,
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
        let mut response = render(status, &FormDialog { form })?;
        if status != StatusCode::OK {
            // The dialog re-renders with the errors; the table stays as it is.
            let headers = response.headers_mut();
            headers.insert("HX-Retarget".parse().unwrap(), "#dialog".parse().unwrap());
            headers.insert("HX-Reswap".parse().unwrap(), "innerHTML".parse().unwrap());
        }
        Ok(response)
    } else {
        let title = form.title.clone();
        render(
            status,
            &FormPage {
                chrome: user.chrome(title, "webhooks"),
                form,
            },
        )
    }
}

/// `GET /webhooks/new`
pub async fn new(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    user.webhooks_editor()?;
    let form = form_view(
        &state,
        &user,
        "/webhooks".into(),
        "Add Webhook".into(),
        Submitted::blank(),
        no_errors(),
        None,
    )
    .await?;
    answer_form(&req, &user, StatusCode::OK, form)
}

/// `GET /webhooks/{id}/edit`
pub async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let id = id.into_inner();
    let secrets = state.secrets();
    let webhook = state
        .db(move |conn| Ok(Webhook::find(conn, tenant_id, id)?))
        .await?;
    let headers = webhook
        .shown_headers(&secrets)
        .into_iter()
        .map(|h| (h.name, h.value))
        .collect();
    let values = Submitted::of(&webhook, headers);
    let form = form_view(
        &state,
        &user,
        format!("/webhooks/{id}"),
        format!("Edit Webhook No {}", webhook.number),
        values,
        no_errors(),
        None,
    )
    .await?;
    answer_form(&req, &user, StatusCode::OK, form)
}

/// Validates the submitted form; see [`validate_input`].
async fn check(
    state: &web::Data<AppState>,
    tenant_id: i64,
    submitted: &Submitted,
    existing: Option<&Webhook>,
) -> Result<Result<crate::validation::webhook::Input, crate::validation::webhook::FieldErrors>, AppError> {
    let mut input = submitted.to_input();
    if let Some(webhook) = existing {
        input.headers = webhook.restore_masked(input.headers, &state.secrets());
    }
    validate_input(state, tenant_id, input).await
}

/// Validates a webhook against the catalog, the tenant's connections and the SSRF rules,
/// resolving host names on a blocking thread: the one check behind the form and the API.
pub async fn validate_input(
    state: &AppState,
    tenant_id: i64,
    input: crate::validation::webhook::Input,
) -> Result<Result<crate::validation::webhook::Input, crate::validation::webhook::FieldErrors>, AppError> {
    let (known, connection_ids) = state
        .db(move |conn| {
            let known: Vec<String> = EventType::all(conn)?.iter().map(|t| t.code.clone()).collect();
            let ids: Vec<i64> = Connection::list(conn, tenant_id)?
                .into_iter()
                .map(|c| c.id)
                .collect();
            Ok((known, ids))
        })
        .await?;
    let allow_http = state.settings.allow_http_targets;
    let allowed = state.settings.allow_private_targets.clone();
    let checked = crate::state::blocking(move || {
        let ctx = Context {
            allow_http,
            allowed_private: &allowed,
            known_events: &known,
            tenant_connections: &connection_ids,
            resolve: true,
        };
        Ok(validate(input, &ctx))
    })
    .await?;
    Ok(checked)
}

/// The key of a newly created webhook, shown once.
#[derive(Template)]
#[template(path = "partials/webhook_created.html")]
pub struct Created {
    pub number: i32,
    pub id: i64,
    pub api_key: String,
}

#[derive(Template)]
#[template(path = "webhook_created_page.html")]
pub struct CreatedPage {
    pub chrome: Chrome,
    pub created: Created,
}

/// `POST /webhooks`
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let submitted = Submitted::parse(&body);
    let input = match check(&state, tenant_id, &submitted, None).await? {
        Ok(input) => input,
        Err(errors) => {
            let form = form_view(
                &state,
                &user,
                "/webhooks".into(),
                "Add Webhook".into(),
                submitted,
                errors,
                None,
            )
            .await?;
            return answer_form(&req, &user, StatusCode::UNPROCESSABLE_ENTITY, form);
        }
    };
    let secrets = state.secrets();
    let actor = user.actor();
    let saved = state
        .db(move |conn| create_webhook(conn, tenant_id, &input, &secrets, &actor))
        .await;
    let (webhook, api_key) = match saved {
        Ok(saved) => saved,
        Err(AppError::Conflict(message)) => {
            let form = form_view(
                &state,
                &user,
                "/webhooks".into(),
                "Add Webhook".into(),
                submitted,
                no_errors(),
                Some(message),
            )
            .await?;
            return answer_form(&req, &user, StatusCode::UNPROCESSABLE_ENTITY, form);
        }
        Err(err) => return Err(err),
    };
    let created = Created {
        number: webhook.number,
        id: webhook.id,
        api_key,
    };
    if is_htmx(&req) {
        // The table updates in place; the dialog now shows the API key, once.
        let results = load_results(&state, &user, current_filter(&req), true).await?;
        let body = format!(
            "{}<div id=\"dialog\" hx-swap-oob=\"innerHTML\">{}</div>",
            results.render().map_err(anyhow::Error::from)?,
            created.render().map_err(anyhow::Error::from)?
        );
        return Ok(table_response(body));
    }
    render(
        StatusCode::CREATED,
        &CreatedPage {
            chrome: user.chrome("Webhook created", "webhooks"),
            created,
        },
    )
}

/// An htmx answer that replaces the table's results, whatever element asked.
fn table_response(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("HX-Retarget", "#webhook-results"))
        .insert_header(("HX-Reswap", "outerHTML"))
        .body(body)
}

const CLOSE_DIALOG: &str = r#"<div id="dialog" hx-swap-oob="innerHTML"></div>"#;

/// `POST /webhooks/{id}`
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let id = id.into_inner();
    let current = state
        .db(move |conn| Ok(Webhook::find(conn, tenant_id, id)?))
        .await?;
    let submitted = Submitted::parse(&body);
    let input = match check(&state, tenant_id, &submitted, Some(&current)).await? {
        Ok(input) => input,
        Err(errors) => {
            let title = format!("Edit Webhook No {}", current.number);
            let form = form_view(
                &state,
                &user,
                format!("/webhooks/{id}"),
                title,
                submitted,
                errors,
                None,
            )
            .await?;
            return answer_form(&req, &user, StatusCode::UNPROCESSABLE_ENTITY, form);
        }
    };
    let secrets = state.secrets();
    let actor = user.actor();
    let webhook = state
        .db(move |conn| update_webhook(conn, tenant_id, id, &input, &secrets, &actor))
        .await?;
    if is_htmx(&req) {
        let results = load_results(&state, &user, current_filter(&req), true).await?;
        let body = format!(
            "{}{CLOSE_DIALOG}{}",
            results.render().map_err(anyhow::Error::from)?,
            toast_oob(&format!("Webhook No {} saved.", webhook.number))
        );
        return Ok(table_response(body));
    }
    Ok(see_other("/webhooks"))
}

/// The question asked when a webhook with parked deliveries is switched back on.
#[derive(Template)]
#[template(path = "partials/webhook_enable_dialog.html")]
pub struct EnableDialog {
    pub webhook: Webhook,
    pub parked: i64,
    pub csrf_token: String,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for EnableDialog {}

#[derive(Template)]
#[template(path = "webhook_enable_page.html")]
pub struct EnablePage {
    pub chrome: Chrome,
    pub dialog: EnableDialog,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ToggleForm {
    /// `resend` or `drop`, the answer to the parked-deliveries question.
    parked: String,
}

/// `POST /webhooks/{id}/toggle`: the Status switch.
pub async fn toggle(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<ToggleForm>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let tenant_id = tenant.id;
    let id = id.into_inner();
    let (current, parked) = state
        .db(move |conn| {
            let webhook = Webhook::find(conn, tenant_id, id)?;
            let parked = Webhook::parked_count(conn, webhook.id)?;
            Ok((webhook, parked))
        })
        .await?;
    let activate = !current.is_active();
    let choice = match form.parked.as_str() {
        "resend" => Parked::Resend,
        "drop" => Parked::Drop,
        _ => Parked::Keep,
    };
    if activate && parked > 0 && choice == Parked::Keep {
        let dialog = EnableDialog {
            webhook: current,
            parked,
            csrf_token: user.csrf_token.clone(),
        };
        if is_htmx(&req) {
            let mut response = render(StatusCode::OK, &dialog)?;
            response
                .headers_mut()
                .insert("HX-Retarget".parse().unwrap(), "#dialog".parse().unwrap());
            response
                .headers_mut()
                .insert("HX-Reswap".parse().unwrap(), "innerHTML".parse().unwrap());
            return Ok(response);
        }
        return render(
            StatusCode::OK,
            &EnablePage {
                chrome: user.chrome("Switch webhook on", "webhooks"),
                dialog,
            },
        );
    }
    let actor = user.actor();
    let was = current.status;
    let now = state.clock.now();
    let webhook = state
        .db(move |conn| {
            conn.build_transaction().run(|conn| {
                let webhook = Webhook::set_active(conn, tenant_id, id, activate, choice, now)?;
                let action = if activate {
                    "webhook.enabled"
                } else {
                    "webhook.disabled"
                };
                let mut details = serde_json::json!({ "from": was, "to": webhook.status });
                if activate && parked > 0 {
                    details["parked_deliveries"] =
                        serde_json::json!({ "count": parked, "choice": form.parked });
                }
                AuditEntry::record(
                    conn,
                    Some(tenant_id),
                    &actor,
                    action,
                    ("webhook", Some(&webhook.number.to_string())),
                    details,
                )?;
                Ok::<_, AppError>(webhook)
            })
        })
        .await?;
    if is_htmx(&req) {
        let names = {
            let tenant_id = tenant.id;
            state
                .db(move |conn| Ok(Webhook::connection_names(conn, tenant_id)?))
                .await?
        };
        let row = RowFragment {
            row: row_view(webhook, &names, &tenant, &user),
        };
        let mut body = row.render().map_err(anyhow::Error::from)?;
        if choice != Parked::Keep {
            body.push_str(CLOSE_DIALOG);
            let what = if choice == Parked::Resend {
                "are being resent"
            } else {
                "were dropped"
            };
            body.push_str(&toast_oob(&format!(
                "Webhook No {} is on; {parked} parked deliveries {what}.",
                row.row.webhook.number
            )));
        }
        let mut response = HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body);
        let target = format!("#webhook-row-{}", row.row.webhook.id);
        response
            .headers_mut()
            .insert("HX-Retarget".parse().unwrap(), target.parse().unwrap());
        response
            .headers_mut()
            .insert("HX-Reswap".parse().unwrap(), "outerHTML".parse().unwrap());
        return Ok(response);
    }
    Ok(see_other("/webhooks"))
}

/// The delete confirmation.
#[derive(Template)]
#[template(path = "partials/webhook_delete_dialog.html")]
pub struct DeleteDialog {
    pub webhook: Webhook,
    pub csrf_token: String,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for DeleteDialog {}

#[derive(Template)]
#[template(path = "webhook_delete_page.html")]
pub struct DeletePage {
    pub chrome: Chrome,
    pub dialog: DeleteDialog,
}

/// `GET /webhooks/{id}/delete`: asks first.
pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let id = id.into_inner();
    let webhook = state
        .db(move |conn| Ok(Webhook::find(conn, tenant_id, id)?))
        .await?;
    let dialog = DeleteDialog {
        webhook,
        csrf_token: user.csrf_token.clone(),
    };
    if is_htmx(&req) {
        return render(StatusCode::OK, &dialog);
    }
    render(
        StatusCode::OK,
        &DeletePage {
            chrome: user.chrome("Delete webhook", "webhooks"),
            dialog,
        },
    )
}

/// `POST /webhooks/{id}/delete` and `DELETE /webhooks/{id}`.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = user.webhooks_editor()?.id;
    let id = id.into_inner();
    let actor = user.actor();
    let (number, cancelled) = state
        .db(move |conn| delete_webhook(conn, tenant_id, id, &actor))
        .await?;
    if is_htmx(&req) {
        let results = load_results(&state, &user, current_filter(&req), true).await?;
        let message = match cancelled {
            0 => format!("Webhook No {number} deleted."),
            n => format!("Webhook No {number} deleted; {n} waiting deliveries were cancelled."),
        };
        let body = format!(
            "{}{CLOSE_DIALOG}{}",
            results.render().map_err(anyhow::Error::from)?,
            toast_oob(&message)
        );
        return Ok(table_response(body));
    }
    Ok(see_other("/webhooks"))
}

/// `GET /webhooks/export.xlsx`: the filtered rows of all pages. Viewers may export.
pub async fn export_xlsx(
    state: web::Data<AppState>,
    user: CurrentUser,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_tenant()?.clone();
    let filter = filter.into_inner();
    let now = state.clock.now();
    let file_name = export::file_name("Webhooks", &tenant.timezone, now);
    let bytes = state
        .db(move |conn| Ok(export::webhooks(conn, tenant.id, &filter)?))
        .await?;
    Ok(export::attachment(&file_name, bytes))
}
