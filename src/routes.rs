//! Every route of Hookboard in one table: who may use it and which handler answers. The
//! table registers the pages and the API (each in its own scope, see [`crate::startup`])
//! and lets the tests walk every route with every role.

use actix_web::web;

/// The JSON API lives under this prefix, in a scope of its own with its own error answers.
pub const API_SCOPE: &str = "/api";

fn in_api(path: &str) -> bool {
    path.strip_prefix(API_SCOPE)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Routes that never read a session: health checks, metrics and static files answer
/// without a trip to the session store (a logged-in browser sends its cookie with every
/// stylesheet and script).
fn sessionless(path: &str) -> bool {
    matches!(path, "/healthz" | "/metrics" | "/favicon.ico") || path.starts_with("/static/")
}

/// Who may use a route. The route table below is the single source of truth: it both
/// registers the routes and lets the tests walk every route with every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Any logged-in user.
    User,
    /// Tenant staff of any role (viewers included); operators are refused, and partners
    /// get 404 (the tenant's own pages do not exist for them).
    Tenant,
    /// The webhook pages: tenant staff of any role, and partners, who see their
    /// connection's webhooks only (any other answers 404).
    Webhooks,
    /// Tenant owners and admins.
    Editor,
    /// Changing webhooks: owners, admins, and partners (their connection's webhooks only).
    WebhookEditor,
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

        /// Registers the pages: every route of [`ROUTES`] outside [`API_SCOPE`] that
        /// reads the session.
        pub fn configure_web(cfg: &mut web::ServiceConfig) {
            $( if !in_api($path) && !sessionless($path) { cfg.route($path, web::$method().to($handler)); } )*
            cfg.default_service(web::to(crate::web::not_found));
        }

        /// Registers the routes that read no session, each refusing NUL like the pages.
        pub fn configure_sessionless(cfg: &mut web::ServiceConfig) {
            $( if sessionless($path) {
                cfg.service(
                    web::resource($path)
                        .wrap(actix_web::middleware::from_fn(crate::web::refuse_nul))
                        .route(web::$method().to($handler)),
                );
            } )*
        }

        /// Registers the JSON API inside [`API_SCOPE`], with paths relative to it.
        pub fn configure_api(cfg: &mut web::ServiceConfig) {
            $( if in_api($path) { cfg.route(&$path[API_SCOPE.len()..], web::$method().to($handler)); } )*
            cfg.default_service(web::to(crate::api::not_found));
        }
    };
}

route_table! {
    Public        get    "/healthz" => crate::web::health::healthz,
    Public        get    "/metrics" => crate::web::health::metrics,
    Public        get    "/static/{path:.*}" => crate::web::assets::asset,
    Public        get    "/favicon.ico" => crate::web::assets::favicon,
    Public        get    "/login" => crate::web::login::show,
    Public        post   "/login" => crate::web::login::submit,
    Public        get    "/set-password/{token}" => crate::web::set_password::show,
    Public        post   "/set-password/{token}" => crate::web::set_password::submit,
    User          post   "/logout" => crate::web::login::logout,
    User          get    "/" => crate::web::dashboard::show,
    WebhookEditor post   "/dashboard/switch-on/{id}" => crate::web::dashboard::switch_on,
    User          get    "/profile" => crate::web::profile::show,
    User          post   "/profile/password" => crate::web::profile::change_password,
    Tenant        get    "/apps/tools" => crate::web::tools::show,
    Editor        post   "/apps/tools/webhooks" => crate::web::tools::toggle_webhooks,
    Tenant        get    "/audit" => crate::web::audit::show,
    Webhooks      get    "/events" => crate::web::catalog::show,
    Tenant        get    "/connections" => crate::web::connections::index,
    Editor        post   "/connections" => crate::web::connections::create,
    Editor        post   "/connections/{id}" => crate::web::connections::rename,
    Editor        post   "/connections/{id}/delete" => crate::web::connections::delete,
    Webhooks      get    "/webhooks" => crate::web::webhooks::table::index,
    Webhooks      get    "/webhooks/export.xlsx" => crate::web::webhooks::table::export_xlsx,
    WebhookEditor get    "/webhooks/new" => crate::web::webhooks::editing::new,
    WebhookEditor post   "/webhooks" => crate::web::webhooks::editing::create,
    WebhookEditor post   "/webhooks/filter/test" => crate::web::webhooks::editing::test_filter,
    Webhooks      get    "/webhooks/{id}" => crate::web::webhooks::page::show,
    WebhookEditor post   "/webhooks/{id}" => crate::web::webhooks::editing::update,
    WebhookEditor delete "/webhooks/{id}" => crate::web::webhooks::switching::delete,
    WebhookEditor get    "/webhooks/{id}/edit" => crate::web::webhooks::editing::edit,
    WebhookEditor post   "/webhooks/{id}/toggle" => crate::web::webhooks::switching::toggle,
    WebhookEditor get    "/webhooks/{id}/delete" => crate::web::webhooks::switching::confirm_delete,
    WebhookEditor post   "/webhooks/{id}/delete" => crate::web::webhooks::switching::delete,
    WebhookEditor post   "/webhooks/{id}/secret" => crate::web::webhooks::actions::reveal_secret,
    WebhookEditor post   "/webhooks/{id}/secret/rotate" => crate::web::webhooks::actions::rotate_secret,
    WebhookEditor post   "/webhooks/{id}/api-key" => crate::web::webhooks::actions::set_api_key,
    WebhookEditor post   "/webhooks/{id}/api-key/regenerate" => crate::web::webhooks::actions::regenerate_api_key,
    WebhookEditor post   "/webhooks/{id}/test" => crate::web::webhooks::actions::send_test,
    WebhookEditor get    "/webhooks/{id}/replay" => crate::web::webhooks::replay::show,
    WebhookEditor post   "/webhooks/{id}/replay/count" => crate::web::webhooks::replay::count,
    WebhookEditor post   "/webhooks/{id}/replay" => crate::web::webhooks::replay::replay,
    Webhooks      get    "/webhooks/{id}/deliveries" => crate::web::webhooks::page::deliveries,
    Webhooks      get    "/webhooks/{id}/deliveries.xlsx" => crate::web::webhooks::page::export_deliveries,
    WebhookEditor post   "/deliveries/{id}/resend" => crate::web::webhooks::actions::resend,
    Webhooks      get    "/deliveries/{id}/body" => crate::web::webhooks::page::delivery_body,
    Webhooks      get    "/deliveries/{id}/attempts/{number}/response" => crate::web::webhooks::page::attempt_response,
    Tenant        get    "/api-keys" => crate::web::api_keys::index,
    User          get    "/api-reference" => crate::web::api_reference::show,
    Editor        post   "/api-keys" => crate::web::api_keys::create,
    Editor        post   "/api-keys/{id}/enabled" => crate::web::api_keys::switch,
    Editor        post   "/api-keys/{id}/delete" => crate::web::api_keys::delete,
    Webhooks      get    "/alerts" => crate::web::alerts::index,
    Editor        get    "/settings/alerts" => crate::web::alerts::settings,
    Editor        post   "/settings/alerts" => crate::web::alerts::save,
    Editor        get    "/users" => crate::web::users::index,
    Editor        post   "/users" => crate::web::users::invite,
    Editor        post   "/users/{id}/role" => crate::web::users::set_role,
    Editor        post   "/users/{id}/disabled" => crate::web::users::set_disabled,
    Editor        post   "/users/{id}/password" => crate::web::users::new_link,
    Public        get    "/api/v1/openapi.json" => crate::api::doc::openapi_json,
    Api           post   "/api/v1/events" => crate::api::events::create,
    Api           post   "/api/v1/events/batch" => crate::api::events::create_batch,
    Api           get    "/api/v1/events" => crate::api::events::list,
    Api           get    "/api/v1/events/{id}" => crate::api::events::show,
    Api           get    "/api/v1/event-types" => crate::api::events::types,
    Api           get    "/api/v1/webhooks" => crate::api::webhooks::list,
    Api           post   "/api/v1/webhooks" => crate::api::webhooks::create,
    Api           get    "/api/v1/webhooks/{id}" => crate::api::webhooks::show,
    Api           patch  "/api/v1/webhooks/{id}" => crate::api::webhooks::update,
    Api           delete "/api/v1/webhooks/{id}" => crate::api::webhooks::delete,
    Api           get    "/api/v1/webhooks/{id}/secret" => crate::api::webhooks::secret,
    Api           post   "/api/v1/webhooks/{id}/secret/rotate" => crate::api::webhooks::rotate,
    Api           get    "/api/v1/connections" => crate::api::connections::list,
    Api           post   "/api/v1/connections" => crate::api::connections::create_connection,
    Api           delete "/api/v1/connections/{id}" => crate::api::connections::delete_connection,
    Api           get    "/api/v1/webhooks/{id}/deliveries" => crate::api::deliveries::list,
    Api           post   "/api/v1/webhooks/{id}/test" => crate::api::deliveries::test,
    Api           post   "/api/v1/deliveries/{id}/resend" => crate::api::deliveries::resend,
    Api           post   "/api/v1/webhooks/{id}/replay" => crate::api::deliveries::replay,
    Operator      get    "/admin/tenants" => crate::web::admin::tenants,
    Operator      post   "/admin/tenants" => crate::web::admin::create_tenant,
    Operator      get    "/admin/tenants/{id}" => crate::web::admin::tenant,
    Operator      post   "/admin/tenants/{id}" => crate::web::admin::update_tenant,
    Operator      get    "/admin/users" => crate::web::admin::users,
    Operator      post   "/admin/users" => crate::web::admin::create_user,
    Operator      post   "/admin/users/{id}/disabled" => crate::web::admin::set_user_disabled,
    Operator      post   "/admin/users/{id}/password" => crate::web::admin::send_password_link,
}
