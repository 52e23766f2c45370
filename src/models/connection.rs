//! Connections: a tenant's partner contracts and sales channels (seed 003). A webhook may
//! be scoped to one, and then receives only that connection's events.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{connections, webhooks};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = connections, check_for_backend(diesel::pg::Pg))]
pub struct Connection {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub external_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = connections)]
pub struct NewConnection<'a> {
    pub tenant_id: i64,
    pub name: &'a str,
    pub external_id: &'a str,
}

impl Connection {
    pub fn list(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<Connection>> {
        connections::table
            .filter(connections::tenant_id.eq(tenant_id))
            .order(connections::name.asc())
            .select(Connection::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<Connection> {
        connections::table
            .filter(connections::tenant_id.eq(tenant_id))
            .filter(connections::id.eq(id))
            .select(Connection::as_select())
            .first(conn)
    }

    pub fn find_by_external_id(
        conn: &mut PgConnection,
        tenant_id: i64,
        external_id: &str,
    ) -> QueryResult<Option<Connection>> {
        connections::table
            .filter(connections::tenant_id.eq(tenant_id))
            .filter(connections::external_id.eq(external_id))
            .select(Connection::as_select())
            .first(conn)
            .optional()
    }

    pub fn create(conn: &mut PgConnection, new: NewConnection<'_>) -> QueryResult<Connection> {
        diesel::insert_into(connections::table)
            .values(new)
            .returning(Connection::as_returning())
            .get_result(conn)
    }

    pub fn rename(conn: &mut PgConnection, tenant_id: i64, id: i64, name: &str) -> QueryResult<Connection> {
        diesel::update(
            connections::table
                .filter(connections::tenant_id.eq(tenant_id))
                .filter(connections::id.eq(id)),
        )
        .set((
            connections::name.eq(name),
            connections::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Connection::as_returning())
        .get_result(conn)
    }

    /// How many webhooks are scoped to the connection (a connection in use cannot go).
    /// Connection names by id, for showing a list of webhooks.
    pub fn names(
        conn: &mut PgConnection,
        tenant_id: i64,
    ) -> QueryResult<std::collections::HashMap<i64, String>> {
        Ok(connections::table
            .filter(connections::tenant_id.eq(tenant_id))
            .select((connections::id, connections::name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect())
    }

    pub fn webhook_count(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<i64> {
        webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .filter(webhooks::connection_id.eq(id))
            .count()
            .get_result(conn)
    }

    pub fn delete(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<usize> {
        diesel::delete(
            connections::table
                .filter(connections::tenant_id.eq(tenant_id))
                .filter(connections::id.eq(id)),
        )
        .execute(conn)
    }
}
