//! The Status switch and Delete: in place over the table with htmx, on pages of their own
//! without JavaScript. Switching back on with parked deliveries asks first (resend them or
//! drop them); deleting asks for confirmation.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::table::{RowFragment, current_filter, load_results, row_view, table_fragment};
use crate::error::AppError;
use crate::models::connection::Connection;
use crate::models::webhook::Webhook;
use crate::services::webhooks::{self as service, Parked};
use crate::state::AppState;
use crate::web::htmx::{CLOSE_DIALOG, Fragment, Hx};
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;
use crate::web::{render, see_other};

/// The question asked when a webhook with parked deliveries is switched back on.
#[derive(Template)]
#[template(path = "webhooks/enable_dialog.html")]
pub struct EnableDialog {
    pub webhook: Webhook,
    pub parked: i64,
    pub csrf_token: String,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for EnableDialog {}

#[derive(Template)]
#[template(path = "webhooks/enable_page.html")]
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
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<ToggleForm>,
) -> Result<HttpResponse, AppError> {
    let tenant = user.webhooks_editor()?.clone();
    let scope = user.scope()?;
    let choice: Parked = form
        .parked
        .parse()
        .map_err(|message: String| AppError::validation("parked", message))?;
    let (current, parked) = service::parked(&state, scope, id.into_inner()).await?;
    let activate = !current.is_active();
    if activate && parked > 0 && choice == Parked::Keep {
        let dialog = EnableDialog {
            webhook: current,
            parked,
            csrf_token: user.csrf_token.clone(),
        };
        if hx.is_htmx {
            return Ok(Fragment::of(&dialog)?
                .retarget("#dialog", "innerHTML")
                .into_response());
        }
        let chrome = user.chrome("Switch webhook on", "webhooks");
        return render(StatusCode::OK, &EnablePage { chrome, dialog });
    }
    let switched = service::switch(&state, scope, current.id, activate, choice, user.actor()).await?;
    if !hx.is_htmx {
        return Ok(see_other("/webhooks"));
    }
    let tenant_id = tenant.id;
    let names = state
        .db(move |conn| Ok(Connection::names(conn, tenant_id)?))
        .await?;
    let row = RowFragment {
        row: row_view(switched.webhook, &names, &tenant, &user),
    };
    let target = format!("#webhook-row-{}", row.row.webhook.id);
    let number = row.row.webhook.number;
    let mut fragment = Fragment::of(&row)?.retarget(target, "outerHTML");
    if switched.choice != Parked::Keep {
        let what = if switched.choice == Parked::Resend {
            "are being resent"
        } else {
            "were dropped"
        };
        fragment = fragment.and(CLOSE_DIALOG).and_toast(&format!(
            "Webhook No {number} is on; {} parked deliveries {what}.",
            switched.parked
        ));
    }
    Ok(fragment.into_response())
}

/// The delete confirmation.
#[derive(Template)]
#[template(path = "webhooks/delete_dialog.html")]
pub struct DeleteDialog {
    pub webhook: Webhook,
    pub csrf_token: String,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for DeleteDialog {}

#[derive(Template)]
#[template(path = "webhooks/delete_page.html")]
pub struct DeletePage {
    pub chrome: Chrome,
    pub dialog: DeleteDialog,
}

/// `GET /webhooks/{id}/delete`: asks first.
pub async fn confirm_delete(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let webhook = service::find(&state, scope, id.into_inner()).await?;
    let dialog = DeleteDialog {
        webhook,
        csrf_token: user.csrf_token.clone(),
    };
    if hx.is_htmx {
        return render(StatusCode::OK, &dialog);
    }
    let chrome = user.chrome("Delete webhook", "webhooks");
    render(StatusCode::OK, &DeletePage { chrome, dialog })
}

/// `POST /webhooks/{id}/delete` and `DELETE /webhooks/{id}`.
pub async fn delete(
    hx: Hx,
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let scope = user.webhooks_editor_scope()?;
    let (number, cancelled) = service::delete(&state, scope, id.into_inner(), user.actor()).await?;
    if !hx.is_htmx {
        return Ok(see_other("/webhooks"));
    }
    let results = load_results(&state, &user, current_filter(&hx), true).await?;
    let message = match cancelled {
        0 => format!("Webhook No {number} deleted."),
        n => format!("Webhook No {number} deleted; {n} waiting deliveries were cancelled."),
    };
    Ok(table_fragment(&results)?
        .and(CLOSE_DIALOG)
        .and_toast(&message)
        .into_response())
}
