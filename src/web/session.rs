//! Who is signed in to the pages, with which role in which tenant. The tenant always comes from the signed-in user, never from the request.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, Utc};

use super::csrf;
use super::session_store::USER_ID_KEY;
use crate::error::AppError;
use crate::models::connection::Connection;
use crate::models::tenant::Tenant;
use crate::models::user::{Role, User};
use crate::models::webhook::Scope;
use crate::services::accounts::SignedIn;
use crate::services::{SCALE_PLAN_NOTICE, TOOL_OFF_NOTICE};
use crate::state::AppState;
use crate::web::views::{Chrome, ChromeUser};

/// Why a viewer cannot change anything.
pub const VIEWER_REFUSAL: &str =
    "Your role (viewer) can look but not change anything. Ask an owner or admin.";

const SIGNED_IN_AT_KEY: &str = "signed_in_at";
const LAST_SEEN_KEY: &str = "last_seen_at";
/// How stale `last_seen_at` may get before a request writes it again.
const LAST_SEEN_RESOLUTION_SECONDS: i64 = 60;

/// The signed-in user of a request, with their tenant. Extracting it from a request
/// without a valid session answers "log in first".
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub tenant: Option<Tenant>,
    /// A partner's connection: the only webhooks they see and manage.
    pub connection: Option<Connection>,
    /// Alerts not yet seen, for the bell.
    pub unread_alerts: i64,
    pub csrf_token: String,
}

impl CurrentUser {
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The tenant of its staff. Operators have none, and tenant pages are not theirs; for a
    /// partner the tenant's own pages do not exist (404).
    pub fn tenant(&self) -> Result<&Tenant, AppError> {
        if self.user.role == Role::Partner {
            return Err(AppError::NotFound);
        }
        self.member_tenant()
    }

    /// The tenant of its staff or of a partner: for the webhook pages, which a partner sees
    /// for its connection ([`CurrentUser::scope`]).
    pub fn member_tenant(&self) -> Result<&Tenant, AppError> {
        self.tenant.as_ref().ok_or_else(|| {
            AppError::forbidden("This page belongs to a tenant's staff; operators use the console.")
        })
    }

    /// Whose webhooks this user sees: the tenant's, or a partner's connection's. Every
    /// webhook page asks the services within it.
    pub fn scope(&self) -> Result<Scope, AppError> {
        let tenant = self.member_tenant()?;
        Ok(Scope {
            tenant_id: tenant.id,
            connection_id: self.user.connection_id,
        })
    }

    /// Whether this user may change webhooks (of their scope).
    pub fn manages_webhooks(&self) -> bool {
        self.user.role.manages_webhooks()
    }

    /// Owners and admins change things; viewers get a clear refusal.
    pub fn require_editor(&self) -> Result<&Tenant, AppError> {
        let tenant = self.tenant()?;
        if self.user.role.can_edit() {
            Ok(tenant)
        } else {
            Err(AppError::forbidden(VIEWER_REFUSAL))
        }
    }

    /// The tenant, when its plan includes webhooks (403 with the upgrade notice otherwise).
    pub fn webhooks_tenant(&self) -> Result<&Tenant, AppError> {
        let tenant = self.member_tenant()?;
        if tenant.plan.has_webhooks() {
            Ok(tenant)
        } else {
            Err(AppError::forbidden(SCALE_PLAN_NOTICE))
        }
    }

    /// Changing webhooks, connections or their keys: an editor, on the Scale plan, with the
    /// Webhooks tool switched on.
    pub fn webhooks_editor(&self) -> Result<&Tenant, AppError> {
        let tenant = self.webhooks_tenant()?;
        if !self.manages_webhooks() {
            return Err(AppError::forbidden(VIEWER_REFUSAL));
        }
        if tenant.webhooks_enabled {
            Ok(tenant)
        } else {
            Err(AppError::forbidden(TOOL_OFF_NOTICE))
        }
    }

    /// [`CurrentUser::scope`] for the webhook pages: on the Scale plan.
    pub fn webhooks_scope(&self) -> Result<Scope, AppError> {
        self.webhooks_tenant()?;
        self.scope()
    }

    /// [`CurrentUser::scope`] for changing webhooks: see [`CurrentUser::webhooks_editor`].
    pub fn webhooks_editor_scope(&self) -> Result<Scope, AppError> {
        self.webhooks_editor()?;
        self.scope()
    }

    pub fn require_operator(&self) -> Result<(), AppError> {
        if self.user.role == Role::Operator {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    pub fn actor(&self) -> crate::models::audit::Actor {
        crate::models::audit::Actor {
            user_id: Some(self.user.id),
            label: self.user.email.clone(),
        }
    }

    /// The layout's data for a page of this user.
    pub fn chrome(&self, title: impl Into<String>, nav: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            nav,
            user: Some(ChromeUser {
                email: self.user.email.clone(),
                role: self.user.role.to_string(),
                is_operator: self.user.role == Role::Operator,
                is_partner: self.user.role == Role::Partner,
                tenant_name: self.tenant.as_ref().map(|t| t.name.clone()),
                plan: self.tenant.as_ref().map(|t| t.plan.to_string()),
                connection: self
                    .connection
                    .as_ref()
                    .map(|c| (c.name.clone(), c.external_id.clone())),
                unread_alerts: self.unread_alerts,
            }),
            csrf_token: self.csrf_token.clone(),
        }
    }
}

/// Starts a signed-in session: a new session id (no fixation), a new CSRF token.
pub fn sign_in(session: &Session, user_id: i64, now: DateTime<Utc>) -> Result<(), AppError> {
    session.renew();
    session.purge_keep_nothing();
    let result = session
        .insert(USER_ID_KEY, user_id)
        .and_then(|_| session.insert(SIGNED_IN_AT_KEY, now.timestamp()))
        .and_then(|_| session.insert(LAST_SEEN_KEY, now.timestamp()));
    result.map_err(|err| AppError::Unexpected(anyhow::anyhow!("cannot write the session: {err}")))?;
    csrf::rotate(session);
    Ok(())
}

trait PurgeKeepNothing {
    fn purge_keep_nothing(&self);
}

impl PurgeKeepNothing for Session {
    /// Clears the state but keeps the (renewed) session alive, unlike `purge`.
    fn purge_keep_nothing(&self) {
        self.clear();
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState registered")
                .clone();
            let session = req.get_session();
            let user_id = session
                .get::<i64>(USER_ID_KEY)
                .ok()
                .flatten()
                .ok_or(AppError::LoginRequired)?;
            let now = state.clock.now();
            let signed_in_at = session.get::<i64>(SIGNED_IN_AT_KEY).ok().flatten().unwrap_or(0);
            let last_seen_at = session.get::<i64>(LAST_SEEN_KEY).ok().flatten().unwrap_or(0);
            let idle = state.settings.session_idle_timeout.as_secs() as i64;
            let absolute = state.settings.session_absolute_timeout.as_secs() as i64;
            if now.timestamp() - last_seen_at > idle || now.timestamp() - signed_in_at > absolute {
                session.purge();
                return Err(AppError::LoginRequired);
            }
            let SignedIn {
                user,
                tenant,
                connection,
                unread_alerts,
            } = state
                .db(move |conn| crate::services::accounts::signed_in(conn, user_id))
                .await
                .map_err(|err| match err {
                    AppError::NotFound => AppError::LoginRequired,
                    other => other,
                })?;
            if user.disabled {
                session.purge();
                return Err(AppError::LoginRequired);
            }
            if now.timestamp() - last_seen_at >= LAST_SEEN_RESOLUTION_SECONDS {
                let _ = session.insert(LAST_SEEN_KEY, now.timestamp());
            }
            let csrf_token = csrf::token(&session);
            Ok(CurrentUser {
                user,
                tenant,
                connection,
                unread_alerts,
                csrf_token,
            })
        })
    }
}
