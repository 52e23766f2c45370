//! Hand-written SQL that PostgreSQL parses and plans once per connection.
//!
//! diesel's `sql_query` marks every statement unsafe to cache, because its text may be
//! built at run time, so PostgreSQL parses, analyses and plans it again on every call. For
//! the statements run for every delivery (claims, results, publishing) that was the largest
//! single cost in the profile of `make bench`: about a fifth of the database's CPU; for the
//! dashboard's reads, 0.75 ms of planning in a load of about 3 ms.
//! [`prepared`] takes a fixed text and its bind values; diesel keeps the statement prepared
//! per connection, keyed by its text and bind types. Hand-written SQL run per request, per
//! page load or per delivery goes through it; `sql_query` is for statements whose text is
//! built at run time or that run rarely (start-up checks, retention, the hourly roll-up).

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, result::Error};

/// A statement with `$1`, `$2`, ... placeholders, run as a prepared statement.
#[must_use = "Queries are only executed when calling `load`, `get_result` or similar."]
pub struct Prepared<'a> {
    sql: &'static str,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + 'a>>,
}

/// A statement whose text is fixed (each distinct text stays prepared for the connection's
/// lifetime). Bind `$1`, `$2`, ... in order with [`Prepared::bind`].
pub fn prepared<'a>(sql: &'static str) -> Prepared<'a> {
    Prepared {
        sql,
        binds: Vec::new(),
    }
}

impl<'a> Prepared<'a> {
    /// Binds the next placeholder.
    pub fn bind<ST, U>(mut self, value: U) -> Self
    where
        Pg: HasSqlType<ST>,
        U: ToSql<ST, Pg> + Send + 'a,
        ST: 'a,
    {
        self.binds.push(Box::new(Bind::<ST, U> {
            value,
            sql_type: PhantomData,
        }));
        self
    }
}

/// One bind value. It goes out the way diesel's own query builder binds values, which
/// keeps the statement cacheable (the binds of `sql_query` mark it unsafe to cache).
struct Bind<ST, U> {
    value: U,
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST, U> QueryFragment<Pg> for Bind<ST, U>
where
    Pg: HasSqlType<ST>,
    U: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        pass.push_bind_param::<ST, U>(&self.value)
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    /// The text with each `$n` replaced by the bind diesel numbers in order (a value used
    /// twice is sent twice); the result is the same for every call, so the cache keeps it.
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                pass.push_sql(&rest[..=at]);
                rest = &rest[at + 1..];
                continue;
            }
            pass.push_sql(&rest[..at]);
            let number: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
            let bind = number
                .checked_sub(1)
                .and_then(|index| self.binds.get(index))
                .ok_or_else(|| Error::QueryBuilderError(format!("${number} has no bound value").into()))?;
            bind.walk_ast(pass.reborrow())?;
            rest = &rest[at + 1 + digits..];
        }
        pass.push_sql(rest);
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    /// Cached by text and bind types, as diesel does for queries without a static id.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use diesel::pg::Pg;
    use diesel::query_builder::QueryFragment;
    use diesel::sql_types::{BigInt, Text};

    use super::prepared;

    #[test]
    fn placeholders_become_diesels_binds_and_the_statement_is_cacheable() {
        let query = prepared("SELECT $1::bigint, $2::text WHERE $1 > 0 AND 'a$' <> $2")
            .bind::<BigInt, _>(7_i64)
            .bind::<Text, _>("x");
        assert!(query.is_safe_to_cache_prepared(&Pg).unwrap());
        // `execute` hands diesel a reference, whose QueryFragment impl walks the AST.
        let by_reference = &query;
        assert!(
            <&_ as QueryFragment<Pg>>::is_safe_to_cache_prepared(&by_reference, &Pg).unwrap(),
            "also when run by reference"
        );
        let shown = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            shown.starts_with(
                "SELECT $1::bigint, $2::text WHERE $3 > 0 AND 'a$' <> $4 -- binds: [7, \"x\", 7, \"x\"]"
            ),
            "{shown}"
        );
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error() {
        let query = prepared("SELECT $1, $2").bind::<BigInt, _>(1_i64);
        let error = query.is_safe_to_cache_prepared(&Pg).unwrap_err();
        assert!(error.to_string().contains("$2 has no bound value"), "{error}");
    }
}
