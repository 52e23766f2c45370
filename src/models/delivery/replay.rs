//! Replay: the finished deliveries of one webhook in a time range, counted or sent again
//! through the normal retry path (the same rows, so the same event ids and bodies).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{Delivery, DeliveryStatus};
use crate::schema::deliveries;

/// Which deliveries a replay takes: those of `webhook_id` created in `[since, until)`,
/// in one of `statuses`, of one of `event_types` (every type when empty).
#[derive(Debug, Clone)]
pub struct ReplayScope<'a> {
    pub webhook_id: i64,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub statuses: &'a [DeliveryStatus],
    pub event_types: &'a [String],
}

fn statuses(scope: &ReplayScope) -> Vec<&'static str> {
    scope.statuses.iter().map(|s| s.as_str()).collect()
}

/// The matching deliveries, as a boxed query of their ids: counting and sending again
/// read the same filter. A delivery some worker holds is never taken (it is not finished).
fn matching<'a>(tenant_id: i64, scope: &'a ReplayScope<'a>) -> deliveries::BoxedQuery<'a, diesel::pg::Pg> {
    let mut query = deliveries::table
        .filter(deliveries::tenant_id.eq(tenant_id))
        .filter(deliveries::webhook_id.eq(scope.webhook_id))
        .filter(deliveries::status.eq_any(statuses(scope)))
        .filter(deliveries::created_at.ge(scope.since))
        .filter(deliveries::created_at.lt(scope.until))
        .filter(deliveries::claimed_by.is_null())
        .into_boxed();
    if !scope.event_types.is_empty() {
        query = query.filter(deliveries::event_type.eq_any(scope.event_types));
    }
    query
}

impl Delivery {
    /// How many deliveries a replay of `scope` would send again.
    pub fn replay_count(conn: &mut PgConnection, tenant_id: i64, scope: &ReplayScope) -> QueryResult<i64> {
        matching(tenant_id, scope).count().get_result(conn)
    }

    /// Sends the deliveries of `scope` again, as [`Delivery::resend`] does one: pending,
    /// due at `now`, their attempts numbered on from where they were. Returns how many.
    pub fn replay(
        conn: &mut PgConnection,
        tenant_id: i64,
        scope: &ReplayScope,
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        // The status and the claim again on the rows themselves: PostgreSQL checks them
        // once more on a row changed meanwhile (resent, or claimed), and leaves it be.
        diesel::update(deliveries::table)
            .filter(deliveries::id.eq_any(matching(tenant_id, scope).select(deliveries::id)))
            .filter(deliveries::status.eq_any(statuses(scope)))
            .filter(deliveries::claimed_by.is_null())
            .set((
                deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                deliveries::next_attempt_at.eq(now),
                deliveries::completed_at.eq(None::<DateTime<Utc>>),
                deliveries::done_on.eq(super::waiting()),
                deliveries::updated_at.eq(now),
            ))
            .execute(conn)
    }
}
