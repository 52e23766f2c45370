//! The event catalog: fixed data shipped in a migration.

use diesel::prelude::*;
use serde::Serialize;

use crate::schema::event_types;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = event_types, check_for_backend(diesel::pg::Pg))]
pub struct EventType {
    pub code: String,
    pub category: String,
    pub label: String,
    pub description: String,
    pub example_payload: serde_json::Value,
    pub position: i32,
}

impl EventType {
    pub fn all(conn: &mut PgConnection) -> QueryResult<Vec<EventType>> {
        event_types::table
            .order(event_types::position.asc())
            .select(EventType::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut PgConnection, code: &str) -> QueryResult<Option<EventType>> {
        event_types::table
            .find(code)
            .select(EventType::as_select())
            .first(conn)
            .optional()
    }
}
