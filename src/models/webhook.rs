//! Webhooks: a tenant's endpoints and what each subscribes to.

use diesel::prelude::*;

use crate::schema::webhooks;

/// Queries on the `webhooks` table. (The read model grows with the webhook pages.)
pub struct Webhook;

/// How many webhooks a tenant has, and how many Hookboard switched off.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusCounts {
    pub total: i64,
    pub auto_disabled: i64,
}

impl Webhook {
    pub fn status_counts(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<StatusCounts> {
        let rows: Vec<(String, i64)> = webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .group_by(webhooks::status)
            .select((webhooks::status, diesel::dsl::count_star()))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .fold(StatusCounts::default(), |mut counts, (status, n)| {
                counts.total += n;
                if status == "auto_disabled" {
                    counts.auto_disabled += n;
                }
                counts
            }))
    }
}
