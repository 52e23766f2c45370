//! Events: what the booking platform published, stored with the exact body that goes on
//! the wire, so every attempt sends the same bytes.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use rand::RngCore;
use serde::Serialize;

use crate::schema::events;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    pub id: String,
    pub tenant_id: i64,
    pub event_type: String,
    pub connection_id: Option<i64>,
    pub language: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub ordering_key: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub tenant_id: i64,
    pub event_type: &'a str,
    pub connection_id: Option<i64>,
    pub language: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
    pub idempotency_key: Option<&'a str>,
    pub body: &'a str,
}

/// The Event Notification Payload around the Event Data Payload (seed 002), in the field
/// order of the wire format.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub timestamp: String,
    pub tenant: &'a str,
    pub connection: Option<&'a str>,
    pub data: &'a serde_json::Value,
}

impl Envelope<'_> {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("an envelope serializes")
    }
}

/// RFC 3339 in UTC with whole seconds: `2026-11-22T10:00:00Z`.
pub fn wire_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `evt_` + a ULID: 48 bits of milliseconds and 80 random bits in Crockford base32, so ids
/// sort by time and `after=<id>` pages through them.
///
/// Within one process the ids are strictly increasing (monotonic ULIDs: inside the same
/// millisecond the random part counts up), so a reader paging with `after` misses nothing
/// this process published.
pub fn new_event_id(at: DateTime<Utc>) -> String {
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let millis = at.timestamp_millis().max(0) as u128 & ((1 << 48) - 1);
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    let fresh = (millis << 80) | random.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let value = {
        let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let value = if fresh > *last { fresh } else { *last + 1 };
        *last = value;
        value
    };
    let mut id = String::with_capacity(30);
    id.push_str("evt_");
    for i in (0..26).rev() {
        id.push(CROCKFORD[((value >> (i * 5)) & 0x1f) as usize] as char);
    }
    id
}

impl Event {
    pub fn insert(conn: &mut PgConnection, new: NewEvent<'_>) -> QueryResult<Event> {
        diesel::insert_into(events::table)
            .values(new)
            .returning(Event::as_returning())
            .get_result(conn)
    }

    /// One event of the tenant, if it is in `scope`.
    pub fn find(conn: &mut PgConnection, tenant_id: i64, id: &str, scope: &EventScope) -> QueryResult<Event> {
        scope
            .apply(
                events::table
                    .filter(events::tenant_id.eq(tenant_id))
                    .filter(events::id.eq(id.to_owned()))
                    .select(Event::as_select())
                    .into_boxed(),
            )
            .first(conn)
    }
}

/// Which of a tenant's events a caller may read: all of them (a tenant key), or what one
/// webhook would receive (a webhook's key): its event types, when it is scoped to a
/// connection only that connection's events, and when it has a filter only those its
/// filter passes. Types and connection are applied in the query; the filter, a CEL
/// expression the store does not evaluate, by the events service on what the query
/// returns. A read outside the scope is "not found" like any other id.
#[derive(Debug, Clone, Default)]
pub struct EventScope {
    pub types: Option<Vec<String>>,
    /// A connection scope: only events of this connection (never those of none).
    pub connection_id: Option<i64>,
    /// The webhook's filter (SPEC 9d).
    pub filter: Option<String>,
}

impl EventScope {
    fn apply<'a, ST>(
        &self,
        mut query: events::BoxedQuery<'a, diesel::pg::Pg, ST>,
    ) -> events::BoxedQuery<'a, diesel::pg::Pg, ST> {
        if let Some(types) = &self.types {
            query = query.filter(events::event_type.eq_any(types.clone()));
        }
        if let Some(connection_id) = self.connection_id {
            query = query.filter(events::connection_id.eq(connection_id));
        }
        query
    }
}

// A typed SQL function keeps the query's static id: prepared once per connection.
diesel::define_sql_function!(fn octet_length(text: diesel::sql_types::Text) -> diesel::sql_types::Integer);

/// An event's id and the size of its stored body: what a page is planned with before any
/// body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sized {
    pub id: String,
    pub bytes: i64,
}

impl Event {
    /// The ids and body sizes of the events after `after` (an event id) in id order,
    /// within `scope`, at most `limit`: how a receiver's catch-up page is planned.
    pub fn sizes_after(
        conn: &mut PgConnection,
        tenant_id: i64,
        after: Option<&str>,
        scope: &EventScope,
        limit: i64,
    ) -> QueryResult<Vec<Sized>> {
        let mut query = events::table
            .filter(events::tenant_id.eq(tenant_id))
            .order(events::id.asc())
            .limit(limit)
            .select((events::id, octet_length(events::body)))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(events::id.gt(after.to_owned()));
        }
        let rows: Vec<(String, i32)> = scope.apply(query).load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(id, bytes)| Sized {
                id,
                bytes: i64::from(bytes),
            })
            .collect())
    }

    /// The tenant's events with these ids, in id order.
    pub fn with_ids(conn: &mut PgConnection, tenant_id: i64, ids: &[String]) -> QueryResult<Vec<Event>> {
        events::table
            .filter(events::tenant_id.eq(tenant_id))
            .filter(events::id.eq_any(ids))
            .order(events::id.asc())
            .select(Event::as_select())
            .load(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_ulids_that_sort_by_time() {
        let early = new_event_id("2026-11-22T10:00:00Z".parse().unwrap());
        let late = new_event_id("2026-11-22T10:00:01Z".parse().unwrap());
        assert!(early.starts_with("evt_") && early.len() == 30, "{early}");
        assert!(early < late);
        assert_ne!(new_event_id(Utc::now()), new_event_id(Utc::now()));
    }

    #[test]
    fn the_envelope_keeps_the_wire_order() {
        let data = serde_json::json!({"booking": {"id": 7}});
        let body = Envelope {
            id: "evt_1",
            kind: "booking.created",
            timestamp: wire_time("2026-11-22T10:00:00.123Z".parse().unwrap()),
            tenant: "alpine-tours",
            connection: None,
            data: &data,
        }
        .to_body();
        assert_eq!(
            body,
            r#"{"id":"evt_1","type":"booking.created","timestamp":"2026-11-22T10:00:00Z","tenant":"alpine-tours","connection":null,"data":{"booking":{"id":7}}}"#
        );
    }
}
