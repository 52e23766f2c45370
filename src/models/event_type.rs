//! The event catalog: fixed data shipped in a migration.

use std::sync::Arc;

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

/// The catalog as read once per process: it only changes with a migration, and `serve`
/// runs migrations before it answers anything.
static CATALOG: std::sync::OnceLock<Arc<[EventType]>> = std::sync::OnceLock::new();

impl EventType {
    /// Every event type in catalog order, from memory after the first read.
    pub fn all(conn: &mut PgConnection) -> QueryResult<Arc<[EventType]>> {
        if let Some(catalog) = CATALOG.get() {
            return Ok(catalog.clone());
        }
        let loaded: Vec<EventType> = event_types::table
            .order(event_types::position.asc())
            .select(EventType::as_select())
            .load(conn)?;
        Ok(CATALOG.get_or_init(|| loaded.into()).clone())
    }

    /// The catalog if it was read already.
    pub fn cached() -> Option<Arc<[EventType]>> {
        CATALOG.get().cloned()
    }

    /// One event type of the catalog, by code (from the catalog in memory).
    pub fn find(conn: &mut PgConnection, code: &str) -> QueryResult<Option<EventType>> {
        Ok(EventType::all(conn)?.iter().find(|t| t.code == code).cloned())
    }
}
