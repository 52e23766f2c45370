//! The audit log: who did what to which webhook, connection, API key or setting, and when.
//! Features call [`AuditEntry::record`] in the same transaction as the change itself.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::schema::audit_log;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Who acted: a signed-in person, an API key, or Hookboard itself.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub label: String,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            user_id: None,
            label: "system".into(),
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditEntry<'a> {
    tenant_id: Option<i64>,
    actor_user_id: Option<i64>,
    actor: &'a str,
    action: &'a str,
    target_type: &'a str,
    target_id: Option<&'a str>,
    details: serde_json::Value,
}

impl AuditEntry {
    pub fn record(
        conn: &mut PgConnection,
        tenant_id: Option<i64>,
        actor: &Actor,
        action: &str,
        target: (&str, Option<&str>),
        details: serde_json::Value,
    ) -> QueryResult<()> {
        diesel::insert_into(audit_log::table)
            .values(NewAuditEntry {
                tenant_id,
                actor_user_id: actor.user_id,
                actor: &actor.label,
                action,
                target_type: target.0,
                target_id: target.1,
                details,
            })
            .execute(conn)
            .map(drop)
    }

    /// The newest entries of one tenant, before `before` (an id) when paging.
    pub fn list(
        conn: &mut PgConnection,
        tenant_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<AuditEntry>> {
        let mut query = audit_log::table
            .filter(audit_log::tenant_id.eq(tenant_id))
            .select(AuditEntry::as_select())
            .order(audit_log::id.desc())
            .limit(limit)
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(audit_log::id.lt(before));
        }
        query.load(conn)
    }
}
