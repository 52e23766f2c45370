//! A tenant's logins, managed by its owners and admins on the Users page: invite (a
//! one-time set-password link), change the role (partners bound to a connection), disable
//! and enable, issue a new link. Owners only may touch owners, nobody changes their own
//! role or account here, and a tenant always keeps an owner. Each change is audited.

use chrono::{DateTime, Utc};
use diesel::Connection as _;
use diesel::PgConnection;

use super::accounts::{self, NewAccount, partner_connection};
use super::password_links::{self, IssuedLink};
use super::{Actor, AppError};
use crate::models::audit::AuditEntry;
use crate::models::connection::Connection;
use crate::models::session::Sessions;
use crate::models::user::{Role, User};

/// Who manages: a signed-in owner or admin of the tenant.
pub struct Manager {
    pub tenant_id: i64,
    pub user_id: i64,
    pub role: Role,
    pub actor: Actor,
}

impl Manager {
    /// Owners and admins manage logins; owners only may give or touch the owner role.
    fn may_touch(&self, target: Role) -> Result<(), AppError> {
        match (self.role, target) {
            (Role::Owner, _) => Ok(()),
            (Role::Admin, Role::Owner) => Err(AppError::forbidden(
                "Only an owner may invite, change or disable an owner.",
            )),
            (Role::Admin, _) => Ok(()),
            _ => Err(AppError::forbidden("Only owners and admins manage users.")),
        }
    }
}

/// A login as the Users page lists it, with a partner's connection.
pub struct Listed {
    pub user: User,
    pub connection: Option<Connection>,
}

/// The tenant's logins, by email, and its connections (for binding partners).
pub fn list(conn: &mut PgConnection, tenant_id: i64) -> Result<(Vec<Listed>, Vec<Connection>), AppError> {
    let connections = Connection::list(conn, tenant_id)?;
    let users = User::list_for_tenant(conn, tenant_id)?
        .into_iter()
        .map(|user| Listed {
            connection: user
                .connection_id
                .and_then(|id| connections.iter().find(|c| c.id == id).cloned()),
            user,
        })
        .collect();
    Ok((users, connections))
}

/// Invites a login to the tenant: created without a usable password (`password_hash`
/// hashes a secret nobody keeps), with a one-time link to choose one.
pub fn invite(
    conn: &mut PgConnection,
    manager: &Manager,
    email: &str,
    role: Role,
    connection: Option<&str>,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<IssuedLink, AppError> {
    if role == Role::Operator {
        return Err(AppError::validation(
            "role",
            "Choose owner, admin, viewer or partner.",
        ));
    }
    manager.may_touch(role)?;
    let email = accounts::check_email(email).map_err(|m| AppError::validation("email", m))?;
    let account = NewAccount {
        tenant_id: Some(manager.tenant_id),
        email: &email,
        role,
        password_hash,
        connection,
    };
    password_links::invite(conn, account, &manager.actor, now)
}

/// Gives a login another role (a partner: bound to `connection`, a contract ID).
pub fn set_role(
    conn: &mut PgConnection,
    manager: &Manager,
    id: i64,
    role: Role,
    connection: Option<&str>,
) -> Result<User, AppError> {
    if role == Role::Operator {
        return Err(AppError::validation(
            "role",
            "Choose owner, admin, viewer or partner.",
        ));
    }
    conn.transaction(|conn| {
        let target = User::find_in_tenant(conn, manager.tenant_id, id)?;
        if target.id == manager.user_id {
            return Err(AppError::forbidden(
                "You cannot change your own role; ask another owner.",
            ));
        }
        manager.may_touch(target.role)?;
        manager.may_touch(role)?;
        let bound = partner_connection(conn, Some(manager.tenant_id), role, connection)?;
        if target.role == Role::Owner && role != Role::Owner {
            keep_an_owner(conn, manager.tenant_id)?;
        }
        let changed = User::set_role(conn, target.id, role, bound.as_ref().map(|c| c.id))?;
        AuditEntry::record(
            conn,
            Some(manager.tenant_id),
            &manager.actor,
            "user.role_changed",
            ("user", Some(&changed.email)),
            serde_json::json!({
                "from": target.role,
                "to": role,
                "connection": bound.map(|c| c.external_id),
            }),
        )?;
        Ok(changed)
    })
}

/// Disables a login (its sessions end at once) or enables it again.
pub fn set_disabled(
    conn: &mut PgConnection,
    manager: &Manager,
    id: i64,
    disabled: bool,
) -> Result<User, AppError> {
    conn.transaction(|conn| {
        let target = User::find_in_tenant(conn, manager.tenant_id, id)?;
        if target.id == manager.user_id {
            return Err(AppError::forbidden("You cannot disable your own account."));
        }
        manager.may_touch(target.role)?;
        if disabled && target.role == Role::Owner && !target.disabled {
            keep_an_owner(conn, manager.tenant_id)?;
        }
        User::set_disabled(conn, target.id, disabled)?;
        if disabled {
            Sessions::delete_for_user(conn, target.id)?;
        }
        AuditEntry::record(
            conn,
            Some(manager.tenant_id),
            &manager.actor,
            if disabled { "user.disabled" } else { "user.enabled" },
            ("user", Some(&target.email)),
            serde_json::json!({}),
        )?;
        Ok(target)
    })
}

/// A new one-time set-password link for a login of the tenant (earlier ones stop working).
pub fn new_link(
    conn: &mut PgConnection,
    manager: &Manager,
    id: i64,
    now: DateTime<Utc>,
) -> Result<IssuedLink, AppError> {
    let target = User::find_in_tenant(conn, manager.tenant_id, id)?;
    manager.may_touch(target.role)?;
    password_links::issue(conn, target.id, &manager.actor, now)
}

/// Refuses a change that would leave the tenant without an enabled owner (besides the one
/// being changed).
fn keep_an_owner(conn: &mut PgConnection, tenant_id: i64) -> Result<(), AppError> {
    let owners = User::list_for_tenant(conn, tenant_id)?
        .into_iter()
        .filter(|u| u.role == Role::Owner && !u.disabled)
        .count();
    if owners <= 1 {
        return Err(AppError::Conflict(
            "The tenant needs an owner: make someone else owner first.".into(),
        ));
    }
    Ok(())
}
