//! Whose webhooks a query sees: a tenant's, or one connection's of it.

use super::Webhook;

/// Whose webhooks a caller sees and may change: a whole tenant's (its staff, its API keys),
/// or those of one of its connections (a partner login, SPEC 9e). A webhook outside the
/// scope is "not found", never "forbidden": its existence is not given away. A tenant id
/// alone is the scope of the whole tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub tenant_id: i64,
    /// A partner's connection: only webhooks bound to it.
    pub connection_id: Option<i64>,
}

impl Scope {
    pub fn tenant(tenant_id: i64) -> Scope {
        Scope {
            tenant_id,
            connection_id: None,
        }
    }

    /// Whether a webhook is inside the scope.
    pub fn admits(&self, webhook: &Webhook) -> bool {
        webhook.tenant_id == self.tenant_id && self.admits_connection(webhook.connection_id)
    }

    /// Whether a webhook of the scope's tenant bound to `connection_id` is inside it.
    pub fn admits_connection(&self, connection_id: Option<i64>) -> bool {
        self.connection_id.is_none_or(|id| connection_id == Some(id))
    }
}

impl From<i64> for Scope {
    fn from(tenant_id: i64) -> Scope {
        Scope::tenant(tenant_id)
    }
}
