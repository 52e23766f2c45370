//! Set-password links: an operator never chooses a user's password (SPEC 2, "not even
//! through a user they create"). Creating a user or resetting a password issues a one-time
//! link instead; the user opens it and chooses the password. The token is returned once
//! and never written to the audit log.

use chrono::{DateTime, Utc};
use diesel::Connection as _;
use diesel::PgConnection;

use super::accounts::{self, NewAccount};
use super::{Actor, AppError};
use crate::models::audit::AuditEntry;
use crate::models::password_link::PasswordLink;
use crate::models::session::Sessions;
use crate::models::user::User;

/// How long a link works after it is issued.
pub const LINK_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(72);

/// A link just issued: the token (shown once) and when it stops working.
pub struct IssuedLink {
    pub user: User,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues a link for a user; earlier unused links of theirs stop working.
pub fn issue(
    conn: &mut PgConnection,
    user_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssuedLink, AppError> {
    conn.transaction(|conn| {
        let user = User::find(conn, user_id)?;
        issue_for(conn, user, actor, now)
    })
}

/// Creates a login without a usable password (`account.password_hash` hashes a random
/// secret nobody keeps) and issues its link, in one transaction.
pub fn invite(
    conn: &mut PgConnection,
    account: NewAccount<'_>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssuedLink, AppError> {
    conn.transaction(|conn| {
        let user = accounts::create_user(conn, account, actor)?;
        issue_for(conn, user, actor, now)
    })
}

fn issue_for(
    conn: &mut PgConnection,
    user: User,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssuedLink, AppError> {
    let expires_at = now + LINK_LIFETIME;
    let (_, token) = PasswordLink::issue(conn, user.id, actor.user_id, now, expires_at)?;
    AuditEntry::record(
        conn,
        user.tenant_id,
        actor,
        "user.password_link_created",
        ("user", Some(&user.email)),
        serde_json::json!({ "expires_at": expires_at }),
    )?;
    Ok(IssuedLink {
        user,
        token,
        expires_at,
    })
}

/// The user a link is for, while it is unused and unexpired; otherwise `NotFound`.
pub fn peek(conn: &mut PgConnection, token: &str, now: DateTime<Utc>) -> Result<User, AppError> {
    let link = PasswordLink::find_usable(conn, token, now)?.ok_or(AppError::NotFound)?;
    Ok(User::find(conn, link.user_id)?)
}

/// Uses a link: sets the password (hashed by the caller, off the connection), marks the
/// link used and ends the user's sessions, in one transaction that holds the link's row.
pub fn redeem(
    conn: &mut PgConnection,
    token: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<User, AppError> {
    conn.transaction(|conn| {
        let link = PasswordLink::lock_usable(conn, token, now)?.ok_or(AppError::NotFound)?;
        let user = User::find(conn, link.user_id)?;
        User::set_password(conn, user.id, password_hash)?;
        PasswordLink::mark_used(conn, link.id, now)?;
        Sessions::delete_for_user(conn, user.id)?;
        let actor = Actor {
            user_id: Some(user.id),
            label: user.email.clone(),
        };
        AuditEntry::record(
            conn,
            user.tenant_id,
            &actor,
            "user.password_set_by_link",
            ("user", Some(&user.email)),
            serde_json::json!({}),
        )?;
        Ok(user)
    })
}
