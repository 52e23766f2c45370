//! The web layer: one module per resource, all registered in [`configure`].

pub mod admin;
pub mod api;
pub mod api_keys;
pub mod api_reference;
pub mod assets;
pub mod audit;
pub mod catalog;
pub mod connections;
pub mod dashboard;
pub mod health;
pub mod login;
pub mod profile;
pub mod tools;
pub mod views;
pub mod webhooks;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::error::{ErrorMessage, error_page};
use crate::startup::AppState;
use views::Toast;

/// Who may use a route. The route table below is the single source of truth: it both
/// registers the routes and lets the tests walk every route with every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Any logged-in user.
    User,
    /// Tenant staff of any role (viewers included); operators are refused.
    Tenant,
    /// Tenant owners and admins.
    Editor,
    /// Platform operators only; everyone else gets 404.
    Operator,
    /// The JSON API: a bearer API key, never a session.
    Api,
}

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

macro_rules! route_table {
    ($( $access:ident $method:ident $path:literal => $handler:path ),* $(,)?) => {
        /// Every route of Hookboard, with who may use it.
        pub const ROUTES: &[Route] = &[
            $( Route { method: stringify!($method), path: $path, access: Access::$access } ),*
        ];

        /// Registers every route of [`ROUTES`].
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $( cfg.route($path, web::$method().to($handler)); )*
            cfg.default_service(web::to(not_found));
        }
    };
}

route_table! {
    Public   get  "/healthz" => health::healthz,
    Public   get  "/metrics" => health::metrics,
    Public   get  "/static/{path:.*}" => assets::asset,
    Public   get  "/login" => login::show,
    Public   post "/login" => login::submit,
    User     post "/logout" => login::logout,
    User     get  "/" => dashboard::show,
    User     get  "/profile" => profile::show,
    User     post "/profile/password" => profile::change_password,
    Tenant   get  "/apps/tools" => tools::show,
    Editor   post "/apps/tools/webhooks" => tools::toggle_webhooks,
    Tenant   get  "/audit" => audit::show,
    Tenant   get  "/events" => catalog::show,
    Tenant   get  "/connections" => connections::index,
    Editor   post "/connections" => connections::create,
    Editor   post "/connections/{id}" => connections::rename,
    Editor   post "/connections/{id}/delete" => connections::delete,
    Tenant   get  "/webhooks" => webhooks::index,
    Tenant   get  "/webhooks/export.xlsx" => webhooks::export_xlsx,
    Editor   get  "/webhooks/new" => webhooks::new,
    Editor   post "/webhooks" => webhooks::create,
    Tenant   get  "/webhooks/{id}" => webhooks::page::show,
    Editor   post "/webhooks/{id}" => webhooks::update,
    Editor   delete "/webhooks/{id}" => webhooks::delete,
    Editor   get  "/webhooks/{id}/edit" => webhooks::edit,
    Editor   post "/webhooks/{id}/toggle" => webhooks::toggle,
    Editor   get  "/webhooks/{id}/delete" => webhooks::confirm_delete,
    Editor   post "/webhooks/{id}/delete" => webhooks::delete,
    Editor   post "/webhooks/{id}/secret" => webhooks::page::reveal_secret,
    Editor   post "/webhooks/{id}/secret/rotate" => webhooks::page::rotate_secret,
    Editor   post "/webhooks/{id}/api-key" => webhooks::page::set_api_key,
    Editor   post "/webhooks/{id}/api-key/regenerate" => webhooks::page::regenerate_api_key,
    Editor   post "/webhooks/{id}/test" => webhooks::page::send_test,
    Tenant   get  "/webhooks/{id}/deliveries" => webhooks::page::deliveries,
    Tenant   get  "/webhooks/{id}/deliveries.xlsx" => webhooks::page::export_deliveries,
    Editor   post "/deliveries/{id}/resend" => webhooks::page::resend,
    Tenant   get  "/api-keys" => api_keys::index,
    User     get  "/api-reference" => api_reference::show,
    Editor   post "/api-keys" => api_keys::create,
    Editor   post "/api-keys/{id}/enabled" => api_keys::switch,
    Editor   post "/api-keys/{id}/delete" => api_keys::delete,
    Public   get  "/api/v1/openapi.json" => api::doc::openapi_json,
    Api      post "/api/v1/events" => api::events::create,
    Api      post "/api/v1/events/batch" => api::events::create_batch,
    Api      get  "/api/v1/events" => api::events::list,
    Api      get  "/api/v1/events/{id}" => api::events::show,
    Api      get  "/api/v1/event-types" => api::events::types,
    Api      get  "/api/v1/webhooks" => api::webhooks::list,
    Api      post "/api/v1/webhooks" => api::webhooks::create,
    Api      get  "/api/v1/webhooks/{id}" => api::webhooks::show,
    Api      patch "/api/v1/webhooks/{id}" => api::webhooks::update,
    Api      delete "/api/v1/webhooks/{id}" => api::webhooks::delete,
    Api      get  "/api/v1/webhooks/{id}/secret" => api::webhooks::secret,
    Api      post "/api/v1/webhooks/{id}/secret/rotate" => api::webhooks::rotate,
    Api      get  "/api/v1/connections" => api::webhooks::connections,
    Api      post "/api/v1/connections" => api::webhooks::create_connection,
    Api      delete "/api/v1/connections/{id}" => api::webhooks::delete_connection,
    Api      get  "/api/v1/webhooks/{id}/deliveries" => api::deliveries::list,
    Api      post "/api/v1/webhooks/{id}/test" => api::deliveries::test,
    Api      post "/api/v1/deliveries/{id}/resend" => api::deliveries::resend,
    Operator get  "/admin/tenants" => admin::tenants,
    Operator post "/admin/tenants" => admin::create_tenant,
    Operator get  "/admin/tenants/{id}" => admin::tenant,
    Operator post "/admin/tenants/{id}" => admin::update_tenant,
    Operator get  "/admin/users" => admin::users,
    Operator post "/admin/users" => admin::create_user,
    Operator post "/admin/users/{id}/disabled" => admin::set_user_disabled,
    Operator post "/admin/users/{id}/password" => admin::reset_password,
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/api/") {
        return actix_web::ResponseError::error_response(&api::not_found().await);
    }
    error_page(StatusCode::NOT_FOUND, "The page you asked for does not exist.")
}

/// Refuses addresses with an encoded NUL character (`%00`) before any handler sees them:
/// no route has a use for it, and PostgreSQL cannot store it.
pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let has_nul = |text: &str| text.as_bytes().windows(3).any(|w| w == b"%00");
    let uri = req.uri();
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        const MESSAGE: &str = "The address may not contain the NUL character (%00).";
        let response = if req.path().starts_with("/api/") {
            api::ApiError::new(StatusCode::BAD_REQUEST, "bad_request", MESSAGE).error_response()
        } else {
            error_page(StatusCode::BAD_REQUEST, MESSAGE)
        };
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A path segment that does not parse (`/webhooks/abc`) names nothing: 404, in JSON on the
/// API and as the error page elsewhere.
pub fn path_error(err: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    let response = if req.path().starts_with("/api/") {
        api::ApiError::not_found().error_response()
    } else {
        error_page(StatusCode::NOT_FOUND, "The page you asked for does not exist.")
    };
    actix_web::error::InternalError::from_response(err, response).into()
}

/// A query string that does not parse: 422 naming it on the API, 400 elsewhere.
pub fn query_error(err: actix_web::error::QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    let message = format!("The query string is not understood: {err}");
    let response = if req.path().starts_with("/api/") {
        api::ApiError::invalid("query", message).error_response()
    } else {
        error_page(StatusCode::BAD_REQUEST, &message)
    };
    actix_web::error::InternalError::from_response(err, response).into()
}

/// A 303 redirect (after a form post).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Whether a request comes from htmx (and so wants a fragment, not a page).
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("HX-Request")
}

/// On htmx requests, errors become a toast in `#toasts` instead of a broken swap, and
/// "log in first" becomes a full redirect to the login page.
pub async fn htmx_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let htmx = req.headers().contains_key("HX-Request");
    let res = next.call(req).await?.map_into_boxed_body();
    if !htmx {
        return Ok(res);
    }
    if res.status() == StatusCode::SEE_OTHER
        && res.headers().get(header::LOCATION).is_some_and(|l| l == "/login")
    {
        let (req, _) = res.into_parts();
        let response = HttpResponse::Ok()
            .insert_header(("HX-Redirect", "/login"))
            .finish();
        return Ok(ServiceResponse::new(req, response));
    }
    let Some(message) = res.response().extensions().get::<ErrorMessage>().cloned() else {
        return Ok(res);
    };
    let status = res.status();
    let (req, _) = res.into_parts();
    let body = Toast {
        kind: "error",
        message: &message.0,
    }
    .render()
    .unwrap_or(message.0);
    let mut response = HttpResponse::build(status).body(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::HeaderName::from_static("hx-retarget"),
        HeaderValue::from_static("#toasts"),
    );
    headers.insert(
        header::HeaderName::from_static("hx-reswap"),
        HeaderValue::from_static("beforeend"),
    );
    Ok(ServiceResponse::new(req, response))
}

/// Counts every answered request by route pattern (not the raw path, which has ids).
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        state
            .metrics
            .record_request(&method, &route, res.status().as_u16());
    }
    Ok(res)
}

/// A rendered template as an HTML response with the given status.
pub fn render(status: StatusCode, template: &impl Template) -> Result<HttpResponse, crate::error::AppError> {
    let body = template.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// A success toast appended to `#toasts` out of band, to add to an htmx response.
pub fn toast_oob(message: &str) -> String {
    let toast = Toast {
        kind: "success",
        message,
    }
    .render()
    .unwrap_or_default();
    format!(r#"<div id="toasts" hx-swap-oob="beforeend">{toast}</div>"#)
}
