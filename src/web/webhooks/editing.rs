//! Add and Edit, one form for both (seed 001): in a dialog over the table with htmx, on a
//! page of its own without JavaScript. Errors come back next to their fields with the typed
//! values kept; a saved form updates the table in place.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::{FormView, Submitted, group_events, no_errors};
use super::table::{current_filter, load_results, table_fragment};
use crate::error::AppError;
use crate::models::connection::Connection;
use crate::models::event_type::EventType;
use crate::services::filters::{self, FilterOutcome};
use crate::services::webhooks::{self as service, Parked};
use crate::state::AppState;
use crate::validation::webhook::FieldErrors;
use crate::web::htmx::{CLOSE_DIALOG, Fragment, Hx};
use crate::web::render;
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;

/// The form on a page of its own, for browsers without JavaScript.
#[derive(Template)]
#[template(path = "webhooks/form_page.html")]
pub struct FormPage {
    pub chrome: Chrome,
    pub form: FormView,
}

/// The form in a dialog over the table.
#[derive(Template)]
#[template(path = "webhooks/form_dialog.html")]
pub struct FormDialog {
    pub form: FormView,
}

/// The key of a newly created webhook, shown once.
#[derive(Template)]
#[template(path = "webhooks/created.html")]
pub struct Created {
    pub number: i32,
    pub id: i64,
    pub api_key: String,
}

#[derive(Template)]
#[template(path = "webhooks/created_page.html")]
pub struct CreatedPage {
    pub chrome: Chrome,
    pub created: Created,
}

/// Where a form posts and what it is called.
struct Target {
    action: String,
    title: String,
}

impl Target {
    fn new() -> Target {
        Target {
            action: "/webhooks".into(),
            title: "Add Webhook".into(),
        }
    }

    fn edit(id: i64, number: i32) -> Target {
        Target {
            action: format!("/webhooks/{id}"),
            title: format!("Edit Webhook No {number}"),
        }
    }
}

/// Renders the form with these values and errors: a dialog for htmx (re-targeted there
/// when it comes back with errors), a page otherwise.
async fn answer(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
    target: Target,
    values: Submitted,
    error: Option<AppError>,
) -> Result<HttpResponse, AppError> {
    let (errors, general_error) = match error {
        None => (no_errors(), None),
        Some(AppError::Fields(errors)) => (errors, None),
        Some(AppError::Validation {
            field: Some(field),
            message,
        }) => (FieldErrors::from([(field, message)]), None),
        Some(AppError::Conflict(message) | AppError::Validation { field: None, message }) => {
            (no_errors(), Some(message))
        }
        Some(other) => return Err(other),
    };
    let status = if errors.is_empty() && general_error.is_none() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let scope = user.scope()?;
    let (types, connections) = state
        .db(move |conn| Ok((EventType::all(conn)?, Connection::list(conn, scope.tenant_id)?)))
        .await?;
    // A partner's webhooks belong to its connection: the only choice offered.
    let connections = connections
        .into_iter()
        .filter(|c| scope.connection_id.is_none_or(|id| id == c.id))
        .collect();
    let form = FormView {
        action: target.action,
        title: target.title,
        values,
        errors,
        general_error,
        groups: group_events(&types),
        connections,
        connection_fixed: scope.connection_id.is_some(),
        csrf_token: user.csrf_token.clone(),
    };
    if Hx::of(req).is_htmx {
        let fragment = Fragment::of(&FormDialog { form })?.status(status);
        // With errors the dialog re-renders; the table stays as it is.
        let fragment = if status == StatusCode::OK {
            fragment
        } else {
            fragment.retarget("#dialog", "innerHTML")
        };
        return Ok(fragment.into_response());
    }
    let title = form.title.clone();
    render(
        status,
        &FormPage {
            chrome: user.chrome(title, "webhooks"),
            form,
        },
    )
}

/// `GET /webhooks/new`
pub async fn new(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    user.webhooks_editor()?;
    answer(&req, &state, &user, Target::new(), Submitted::blank(), None).await
}

/// `GET /webhooks/{id}/edit`: the current values, credentials masked.
pub async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let webhook = service::find(&state, scope, id.into_inner()).await?;
    let headers = webhook
        .shown_headers(&state.secrets())
        .into_iter()
        .map(|h| (h.name, h.value))
        .collect();
    let values = Submitted::of(&webhook, headers);
    answer(
        &req,
        &state,
        &user,
        Target::edit(webhook.id, webhook.number),
        values,
        None,
    )
    .await
}

/// `POST /webhooks`
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let submitted = Submitted::parse(&body);
    let (webhook, api_key) = match service::create(&state, scope, submitted.to_input(), user.actor()).await {
        Ok(created) => created,
        Err(err) => return answer(&req, &state, &user, Target::new(), submitted, Some(err)).await,
    };
    let created = Created {
        number: webhook.number,
        id: webhook.id,
        api_key,
    };
    let hx = Hx::of(&req);
    if hx.is_htmx {
        // The table updates in place; the dialog now shows the API key, once.
        let results = load_results(&state, &user, current_filter(&hx), true).await?;
        let dialog = format!(
            "<div id=\"dialog\" hx-swap-oob=\"innerHTML\">{}</div>",
            created.render().map_err(anyhow::Error::from)?
        );
        return Ok(table_fragment(&results)?.and(&dialog).into_response());
    }
    render(
        StatusCode::CREATED,
        &CreatedPage {
            chrome: user.chrome("Webhook created", "webhooks"),
            created,
        },
    )
}

/// `POST /webhooks/{id}`
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let current = service::find(&state, scope, id.into_inner()).await?;
    let submitted = Submitted::parse(&body);
    let saved = service::update(
        &state,
        scope,
        current.id,
        submitted.to_input(),
        Parked::Keep,
        user.actor(),
    )
    .await;
    let webhook = match saved {
        Ok(webhook) => webhook,
        Err(err) => {
            let target = Target::edit(current.id, current.number);
            return answer(&req, &state, &user, target, submitted, Some(err)).await;
        }
    };
    let hx = Hx::of(&req);
    if hx.is_htmx {
        let results = load_results(&state, &user, current_filter(&hx), true).await?;
        return Ok(table_fragment(&results)?
            .and(CLOSE_DIALOG)
            .and_toast(&format!("Webhook No {} saved.", webhook.number))
            .into_response());
    }
    Ok(crate::web::see_other("/webhooks"))
}

/// What "Test filter" says, in place under the filter.
#[derive(Template)]
#[template(path = "webhooks/filter_test.html")]
pub struct FilterTest {
    pub kind: String,
    pub outcome: FilterOutcome,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for FilterTest {}

#[derive(Template)]
#[template(path = "webhooks/filter_test_page.html")]
pub struct FilterTestPage {
    pub chrome: Chrome,
    pub filter: String,
    pub result: FilterTest,
}

/// `POST /webhooks/filter/test`: the form's `filter` on the catalog example of
/// `filter_event` (the whole form may come along; the rest is ignored). In place for htmx,
/// on a page of its own without JavaScript.
pub async fn test_filter(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    user.webhooks_editor()?;
    let (mut filter, mut kind) = (String::new(), String::new());
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "filter" => filter = value.into_owned(),
            "filter_event" => kind = value.into_owned(),
            _ => {}
        }
    }
    let outcome = filters::test(&state, filter.clone(), kind.clone()).await?;
    let result = FilterTest { kind, outcome };
    if hx.is_htmx {
        return render(StatusCode::OK, &result);
    }
    let chrome = user.chrome("Test filter", "webhooks");
    render(
        StatusCode::OK,
        &FilterTestPage {
            chrome,
            filter,
            result,
        },
    )
}
