//! Tenants, their logins and their API keys, each created and changed with its audit entry
//! in one transaction: the operator console, the API Keys and Apps > Tools pages, the
//! command line and the demo seeding all come through here. Plain functions of a
//! connection, so the command line (which has no web runtime) calls them as they are.

use diesel::Connection as _;
use diesel::PgConnection;

use super::{Actor, AppError, check_name};
use crate::models::api_key::ApiKey;
use crate::models::audit::AuditEntry;
use crate::models::connection::Connection;
use crate::models::session::Sessions;
use crate::models::tenant::{Plan, Tenant};
use crate::models::user::{NewUser, Role, User};
use crate::validation::is_plausible_email;

pub const MAX_TENANT_NAME_CHARS: usize = 200;
pub const MAX_KEY_NAME_CHARS: usize = 100;

/// A tenant's name as typed: 1 to 200 characters, one line.
pub fn check_tenant_name(name: &str) -> Result<String, String> {
    if name.trim().is_empty() {
        return Err("Give the tenant a name.".into());
    }
    check_name("tenant's name", name, MAX_TENANT_NAME_CHARS)
}

/// An API key's name as typed: 1 to 100 characters, one line.
pub fn check_key_name(name: &str) -> Result<String, String> {
    if name.trim().is_empty() {
        return Err("Give the key a name that says who uses it, e.g. \"Booking platform\".".into());
    }
    check_name("name", name, MAX_KEY_NAME_CHARS)
}

/// An email address as typed, trimmed; a light check of its form.
pub fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    if is_plausible_email(email) {
        Ok(email.to_owned())
    } else {
        Err(format!("`{email}` is not an email address."))
    }
}

pub fn create_tenant(
    conn: &mut PgConnection,
    name: &str,
    plan: Plan,
    actor: &Actor,
) -> Result<Tenant, AppError> {
    conn.transaction(|conn| {
        let tenant = Tenant::create(conn, name, plan)?;
        record(
            conn,
            &tenant,
            actor,
            "tenant.created",
            serde_json::json!({ "plan": plan }),
        )?;
        Ok(tenant)
    })
}

/// Renames a tenant and sets its plan, each recorded when it changes. A downgrade pauses
/// delivery (nothing is deleted); an upgrade resumes it.
pub fn update_tenant(
    conn: &mut PgConnection,
    id: i64,
    name: Option<&str>,
    plan: Option<Plan>,
    actor: &Actor,
) -> Result<Tenant, AppError> {
    conn.transaction(|conn| {
        let mut tenant = Tenant::find(conn, id)?;
        if let Some(name) = name.filter(|name| *name != tenant.name) {
            let before = std::mem::replace(&mut tenant, Tenant::rename(conn, id, name)?);
            record(
                conn,
                &tenant,
                actor,
                "tenant.renamed",
                serde_json::json!({
                    "from": before.name, "to": tenant.name,
                }),
            )?;
        }
        if let Some(plan) = plan.filter(|plan| *plan != tenant.plan) {
            let before = std::mem::replace(&mut tenant, Tenant::set_plan(conn, id, plan)?);
            record(
                conn,
                &tenant,
                actor,
                "tenant.plan_changed",
                serde_json::json!({
                    "from": before.plan, "to": tenant.plan,
                }),
            )?;
        }
        Ok(tenant)
    })
}

/// The Webhooks tool's switch (Apps > Tools): off, nothing is delivered and the pages are
/// read-only.
pub fn set_webhooks_enabled(
    conn: &mut PgConnection,
    id: i64,
    enabled: bool,
    actor: &Actor,
) -> Result<Tenant, AppError> {
    conn.transaction(|conn| {
        let tenant = Tenant::set_webhooks_enabled(conn, id, enabled)?;
        let action = if enabled {
            "tool.webhooks_enabled"
        } else {
            "tool.webhooks_disabled"
        };
        AuditEntry::record(
            conn,
            Some(id),
            actor,
            action,
            ("tool", Some("webhooks")),
            serde_json::json!({}),
        )?;
        Ok(tenant)
    })
}

/// Who is signed in: the user, their tenant (none for operators) and, for a partner, the
/// connection they manage.
pub struct SignedIn {
    pub user: User,
    pub tenant: Option<Tenant>,
    pub connection: Option<Connection>,
    /// Alerts the user has not seen under the bell.
    pub unread_alerts: i64,
}

/// A signed-in user, their tenant, their unseen alerts and a partner's connection: what
/// every page needs (one query, and a second for partners only).
pub fn signed_in(conn: &mut PgConnection, user_id: i64) -> Result<SignedIn, AppError> {
    let (user, tenant, unread_alerts) = User::find_with_tenant(conn, user_id)?;
    let connection = match (user.connection_id, &tenant) {
        (Some(id), Some(tenant)) => Some(Connection::find(conn, tenant.id, id)?),
        _ => None,
    };
    Ok(SignedIn {
        user,
        tenant,
        connection,
        unread_alerts,
    })
}

/// A login to create; the password is hashed by the caller, off the database connection.
pub struct NewAccount<'a> {
    pub tenant_id: Option<i64>,
    pub email: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    /// A partner's connection, by its contract ID (external id); no one else has one.
    pub connection: Option<&'a str>,
}

/// The connection a login of `role` in the tenant is bound to: a partner must name one of
/// the tenant's connections by its contract ID, and no one else may name any.
pub fn partner_connection(
    conn: &mut PgConnection,
    tenant_id: Option<i64>,
    role: Role,
    contract_id: Option<&str>,
) -> Result<Option<Connection>, AppError> {
    let contract_id = contract_id.map(str::trim).filter(|c| !c.is_empty());
    match (role, tenant_id, contract_id) {
        (Role::Partner, Some(tenant_id), Some(contract_id)) => {
            Connection::find_by_external_id(conn, tenant_id, contract_id)?
                .map(Some)
                .ok_or_else(|| {
                    AppError::validation(
                        "connection",
                        format!("`{contract_id}` is not the contract ID of one of the tenant's connections."),
                    )
                })
        }
        (Role::Partner, _, _) => Err(AppError::validation(
            "connection",
            "A partner login manages the webhooks of one connection: choose it (its contract ID).",
        )),
        (_, _, Some(_)) => Err(AppError::validation(
            "connection",
            "Only partner logins are bound to a connection; leave it empty for this role.",
        )),
        (_, _, None) => Ok(None),
    }
}

/// Creates a login, refusing an email that has one already, a tenant that does not exist
/// and a partner without a connection of its tenant.
pub fn create_user(
    conn: &mut PgConnection,
    account: NewAccount<'_>,
    actor: &Actor,
) -> Result<User, AppError> {
    conn.transaction(|conn| {
        if User::find_by_email(conn, account.email)?.is_some() {
            return Err(AppError::validation(
                "email",
                format!("A user with the email {} exists already.", account.email),
            ));
        }
        if let Some(id) = account.tenant_id {
            Tenant::find(conn, id)?;
        }
        let connection = partner_connection(conn, account.tenant_id, account.role, account.connection)?;
        let user = User::create(
            conn,
            NewUser {
                tenant_id: account.tenant_id,
                email: account.email,
                role: account.role,
                password_hash: account.password_hash,
                connection_id: connection.as_ref().map(|c| c.id),
            },
        )?;
        let details = match &connection {
            Some(c) => serde_json::json!({ "role": account.role, "connection": c.external_id }),
            None => serde_json::json!({ "role": account.role }),
        };
        AuditEntry::record(
            conn,
            account.tenant_id,
            actor,
            "user.created",
            ("user", Some(&user.email)),
            details,
        )?;
        Ok(user)
    })
}

/// Sets a user's password (hashed by the caller) and ends every session of theirs; an
/// unknown email is a clear error naming it.
pub fn set_password(
    conn: &mut PgConnection,
    email: &str,
    password_hash: &str,
    actor: &Actor,
) -> Result<User, AppError> {
    conn.transaction(|conn| {
        let user = User::find_by_email(conn, email)?.ok_or_else(|| {
            AppError::validation("email", format!("No user has the email {}.", email.trim()))
        })?;
        User::set_password(conn, user.id, password_hash)?;
        Sessions::delete_for_user(conn, user.id)?;
        AuditEntry::record(
            conn,
            user.tenant_id,
            actor,
            "user.password_set",
            ("user", Some(&user.email)),
            serde_json::json!({}),
        )?;
        Ok(user)
    })
}

/// Creates a tenant API key; the key itself is returned once and stored only hashed.
pub fn create_api_key(
    conn: &mut PgConnection,
    tenant_id: i64,
    name: &str,
    created_by: Option<i64>,
    actor: &Actor,
) -> Result<(ApiKey, String), AppError> {
    conn.transaction(|conn| {
        let (key, secret) = ApiKey::create(conn, tenant_id, name, created_by)?;
        record_key(conn, &key, actor, "api_key.created")?;
        Ok((key, secret))
    })
}

/// Switches a tenant API key off (it answers 401, nothing is deleted) or on again.
pub fn set_api_key_enabled(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    enabled: bool,
    actor: &Actor,
) -> Result<ApiKey, AppError> {
    conn.transaction(|conn| {
        let key = ApiKey::set_enabled(conn, tenant_id, id, enabled)?;
        let action = if enabled {
            "api_key.enabled"
        } else {
            "api_key.disabled"
        };
        record_key(conn, &key, actor, action)?;
        Ok(key)
    })
}

pub fn delete_api_key(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    actor: &Actor,
) -> Result<ApiKey, AppError> {
    conn.transaction(|conn| {
        let key = ApiKey::delete(conn, tenant_id, id)?;
        record_key(conn, &key, actor, "api_key.deleted")?;
        Ok(key)
    })
}

fn record(
    conn: &mut PgConnection,
    tenant: &Tenant,
    actor: &Actor,
    action: &str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    AuditEntry::record(
        conn,
        Some(tenant.id),
        actor,
        action,
        ("tenant", Some(&tenant.slug)),
        details,
    )?;
    Ok(())
}

/// A key is named in the log by its visible prefix, never by anything that opens it.
fn record_key(conn: &mut PgConnection, key: &ApiKey, actor: &Actor, action: &str) -> Result<(), AppError> {
    AuditEntry::record(
        conn,
        Some(key.tenant_id),
        actor,
        action,
        ("api_key", Some(&key.prefix)),
        serde_json::json!({ "name": key.name }),
    )?;
    Ok(())
}
