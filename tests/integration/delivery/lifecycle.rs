//! The engine's life: the background worker wakes on LISTEN and stops cleanly, shutdown
//! gives back its queue, old attempts are cleaned up, statements are prepared once.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use hookboard::clock::Clock;

use super::{Fixture, booking, wait_for};
use crate::receiver::{Behaviour, Receiver};

#[actix_web::test]
async fn the_background_worker_delivers_at_once_and_stops_cleanly() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    fx.webhook(&receiver.url).await;
    let worker = fx.start_worker();
    // Give the listener a moment to LISTEN, then publish and watch it arrive.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    fx.publish(&booking("live")).await;
    while receiver.requests().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the worker never delivered"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await;
    assert_eq!(fx.still_claimed().await, 0, "nothing left claimed after shutdown");
}

/// Shutting down lets the attempts in flight finish and gives back everything queued, so
/// another process takes it at once instead of after the lease.
#[actix_web::test]
async fn shutdown_finishes_what_is_in_flight_and_gives_back_the_queue() {
    let fx = Fixture::new().await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(150)));
    let webhook = fx.webhook(&receiver.url).await;
    fx.publish_many(120).await;
    let worker = fx.start_worker();
    wait_for(&receiver, 8).await;
    worker.stop().await;
    let sent = receiver.requests().len();
    let counts = fx.count_by_status(webhook.id).await;
    assert_eq!(counts.get("succeeded").copied().unwrap_or(0), sent, "{counts:?}");
    assert_eq!(
        counts.get("pending").copied().unwrap_or(0),
        120 - sent,
        "{counts:?}"
    );
    assert!(sent < 120, "shutdown stopped before the queue ran dry");
    assert_eq!(fx.still_claimed().await, 0, "the queue was given back");

    // Another worker picks the rest up at once.
    let summary = fx.run_due().await;
    assert_eq!(summary.succeeded, 120 - sent);
}

#[actix_web::test]
async fn attempts_older_than_the_retention_are_cleaned_up() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    fx.webhook(&receiver.url).await;
    fx.publish(&booking("old")).await;
    let engine = fx.engine();
    engine.run_due_once(fx.app.clock.now()).await.unwrap();
    assert_eq!(fx.row_counts().await, (1, 1, 1));
    assert_eq!(
        engine
            .clean_up(fx.app.clock.now() + chrono::Duration::days(29))
            .unwrap(),
        0,
        "kept within 30 days"
    );
    assert_eq!(
        engine
            .clean_up(fx.app.clock.now() + chrono::Duration::days(31))
            .unwrap(),
        1
    );
    assert_eq!(fx.row_counts().await, (0, 0, 0));
}

/// A busy day past the retention goes in transactions of at most 10,000 rows, not one
/// long DELETE; what still waits stays however old, and so does what is newer.
#[actix_web::test]
async fn the_retention_deletes_a_busy_day_in_short_transactions_and_keeps_what_waits() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    let webhook = fx.webhook(&receiver.url).await;
    let (tenant_id, webhook_id, now) = (fx.tenant.id, webhook.id, fx.app.clock.now());
    let cleaned = fx
        .app
        .with_conn(move |conn| {
            // 25,000 events 40 days old, each with a delivery and its attempt: 5 deliveries
            // still pending and 5 parked, the rest succeeded; then 100 of yesterday.
            diesel::sql_query(
                "INSERT INTO events (id, tenant_id, event_type, occurred_at, body, created_at)
                 SELECT 'E' || lpad(g::text, 6, '0'), $1, 'booking.created', t, '{}', t
                 FROM generate_series(1, 25100) g,
                      LATERAL (SELECT $2 - CASE WHEN g > 25000 THEN interval '1 day' ELSE interval '40 days' END AS t) s",
            )
            .bind::<diesel::sql_types::BigInt, _>(tenant_id)
            .bind::<diesel::sql_types::Timestamptz, _>(now)
            .execute(conn)
            .unwrap();
            diesel::sql_query(
                "INSERT INTO deliveries (tenant_id, webhook_id, event_id, event_type, status, attempt_count,
                                         created_at, updated_at, completed_at, next_attempt_at, done_on)
                 SELECT tenant_id, $1, id, event_type, st, 1, created_at, created_at,
                        CASE WHEN st = 'succeeded' THEN created_at END, created_at,
                        CASE WHEN st = 'succeeded' THEN (created_at AT TIME ZONE 'UTC')::date ELSE 'infinity' END
                 FROM events,
                      LATERAL (SELECT CASE WHEN id <= 'E000005' THEN 'pending'
                                           WHEN id <= 'E000010' THEN 'parked'
                                           ELSE 'succeeded' END AS st) s
                 ORDER BY id",
            )
            .bind::<diesel::sql_types::BigInt, _>(webhook_id)
            .execute(conn)
            .unwrap();
            diesel::sql_query(
                "INSERT INTO delivery_attempts (delivery_id, tenant_id, webhook_id, attempt_number, started_at,
                                                duration_ms, status_code, succeeded, request_headers, response_headers)
                 SELECT id, tenant_id, webhook_id, 1, created_at, 3, 204, true, '{}', '{}' FROM deliveries",
            )
            .execute(conn)
            .unwrap();
            hookboard::models::delivery::clean_up(conn, now - chrono::Duration::days(30)).unwrap()
        })
        .await;
    assert_eq!(
        (cleaned.attempts, cleaned.deliveries, cleaned.events),
        (25_000, 24_990, 24_990)
    );
    // Attempts 10,000 + 10,000 + 5,000; the hourly aggregates; deliveries and events each
    // walked 10,000 + 10,000 + 5,100 (the last batch reaches yesterday's, and stops).
    assert_eq!(cleaned.transactions, 10, "{cleaned:?}");
    assert_eq!(fx.row_counts().await, (100, 110, 110));
    let again = fx
        .app
        .with_conn(move |conn| {
            hookboard::models::delivery::clean_up(conn, now - chrono::Duration::days(30)).unwrap()
        })
        .await;
    assert_eq!((again.attempts, again.deliveries, again.events), (0, 0, 0));
    assert_eq!(fx.row_counts().await, (100, 110, 110));
}

/// The dispatcher's statements are prepared once per connection (diesel leaves hand-written
/// SQL unprepared, so PostgreSQL parsed and planned each one on every call), and each
/// keeps one plan, the claim too (its planning cost a quarter of a claim in `make bench`).
#[actix_web::test]
async fn the_dispatchers_statements_are_prepared_once_per_connection() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    fx.webhook(&receiver.url).await;
    // One connection, so that every statement runs in the session inspected below.
    let pool = hookboard::db::connect(&fx.app.database_url, 1).unwrap();
    let engine = fx.engine_on(pool.clone(), true, "2s");
    for round in 0..3 {
        fx.publish_many(2).await;
        let summary = engine.run_due_once(fx.app.clock.now()).await.unwrap();
        assert_eq!(summary.succeeded, 2, "round {round}");
    }
    // The engine keeps its connection between transactions: dropped, it goes back.
    drop(engine);
    #[derive(QueryableByName, Debug)]
    struct Prepared {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic_plans: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        custom_plans: i64,
    }
    let prepared: Vec<Prepared> = crate::helpers::tokio_block(move || {
        diesel::sql_query("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            .load(&mut pool.get().unwrap())
            .unwrap()
    })
    .await;
    let find = |part: &str| {
        let found: Vec<&Prepared> = prepared.iter().filter(|p| p.statement.contains(part)).collect();
        assert_eq!(
            found.len(),
            1,
            "one prepared statement with {part:?}: {prepared:#?}"
        );
        found[0]
    };
    for part in [
        "due_webhooks",
        "INSERT INTO delivery_attempts",
        "UPDATE deliveries d SET (status, attempt_count",
        "ORDER BY id FOR KEY SHARE",
    ] {
        let statement = find(part);
        assert!(
            statement.generic_plans >= 3 && statement.custom_plans == 0,
            "{statement:?}"
        );
    }
    assert_eq!(receiver.requests().len(), 6);
}

/// A backlog is claimed by primary key even when the statistics say nothing waits. With
/// `status = 'pending'` beside the ids, PostgreSQL read the whole due index on every
/// claim and filtered it by id instead (to a vacuum taken while nothing waited, that index
/// looks empty), so a backlog cost its length squared to claim: 27 ms a claim over 20,000
/// waiting deliveries and a month of history, and 104,521 entries of the due index read to
/// claim 1,000 deliveries here (28,060 by key).
///
/// The same statistics made the claim walk the index on `event_id` whole when it was
/// joined with the events, and the result statement walk `(webhook_id, event_type, id)`
/// with an index-only scan (4,757 and 8,429 rows a batch over 6,000,000 deliveries of
/// history): every read of the waiting deliveries, in both, starts from an index condition.
/// The worker also analyzes the waiting deliveries when a claim finds more of them than
/// the statistics say there are (`WaitingStatistics::check`).
#[actix_web::test]
async fn a_backlog_is_claimed_by_key_when_the_statistics_say_nothing_waits() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    fx.webhook(&receiver.url).await;
    fx.publish_many(1).await;
    assert_eq!(fx.run_due().await.succeeded, 1);
    // One connection, so that the claim is prepared in the session inspected below.
    let pool = hookboard::db::connect(&fx.app.database_url, 1).unwrap();
    // Finished deliveries, vacuumed and analyzed while nothing waits.
    let setup = pool.clone();
    crate::helpers::tokio_block(move || {
        let conn = &mut setup.get().unwrap();
        diesel::sql_query(
            "INSERT INTO deliveries (tenant_id, webhook_id, event_id, event_type, status, attempt_count,
                                     last_status_code, created_at, completed_at, next_attempt_at, done_on)
             SELECT tenant_id, webhook_id, event_id, event_type, status, attempt_count, last_status_code,
                    created_at, completed_at, next_attempt_at, done_on
             FROM deliveries CROSS JOIN generate_series(1, 20000)",
        )
        .execute(conn)
        .unwrap();
        // A queue drained but for one (parked) delivery: the waiting partition keeps its
        // pages, and its statistics say it holds one row.
        conn.batch_execute(
            "INSERT INTO deliveries (tenant_id, webhook_id, event_id, event_type, status, created_at)
             SELECT tenant_id, webhook_id, event_id, event_type, 'parked', created_at
             FROM deliveries CROSS JOIN generate_series(1, 20000) LIMIT 20000;
             DELETE FROM deliveries_waiting WHERE id < (SELECT max(id) FROM deliveries_waiting);",
        )
        .unwrap();
        diesel::sql_query("VACUUM (ANALYZE) deliveries")
            .execute(conn)
            .unwrap();
    })
    .await;
    fx.publish_many(1_000).await;
    let engine = fx.engine_on(pool.clone(), true, "2s");
    let summary = engine.run_due_once(fx.app.clock.now()).await.unwrap();
    assert_eq!(summary.succeeded, 1_000);
    drop(engine);

    let (estimate, claim, result) = crate::helpers::tokio_block(move || {
        let conn = &mut pool.get().unwrap();
        #[derive(QueryableByName)]
        struct Estimate {
            #[diesel(sql_type = diesel::sql_types::Float)]
            rows: f32,
        }
        // What the worker's first claim left: it found the statistics behind it.
        let estimate = diesel::sql_query(
            "SELECT reltuples AS rows FROM pg_class WHERE oid = 'deliveries_waiting'::regclass",
        )
        .get_result::<Estimate>(conn)
        .unwrap()
        .rows;
        // And the plans under statistics that say nothing waits, as they were.
        diesel::sql_query("VACUUM (ANALYZE) deliveries")
            .execute(conn)
            .unwrap();
        (
            estimate,
            worker_plan(conn, "WITH RECURSIVE busy AS%"),
            worker_plan(conn, "WITH finished AS%"),
        )
    })
    .await;
    assert!(
        estimate >= 50.0,
        "the worker analyzed the waiting deliveries when a claim found more than they said: {estimate}"
    );
    // The claim's reads of the due index start at a webhook; none reads it whole.
    let mut due_index_reads = Vec::new();
    reads_of(
        &claim,
        "Index Name",
        "deliveries_due_by_webhook_idx",
        &mut due_index_reads,
    );
    assert!(
        !due_index_reads.is_empty(),
        "the claim reads the due index: {claim:#}"
    );
    for (name, plan) in [("claim", &claim), ("result statement", &result)] {
        let mut reads = Vec::new();
        reads_of(plan, "Relation Name", "deliveries_waiting", &mut reads);
        // Its scans (an update names the table it writes too).
        reads.retain(|node| {
            node["Node Type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("Scan"))
        });
        assert!(
            !reads.is_empty(),
            "the {name} reads the waiting deliveries: {plan:#}"
        );
        for read in reads {
            assert!(
                read.get("Index Cond").is_some() && read["Node Type"] != "Index Only Scan",
                "the {name} reads the waiting deliveries other than by an index condition: {read:#}"
            );
            // By id through the index that starts with it: another index that holds `id`
            // takes the same condition, on a column after its first, and is read whole.
            if read["Index Cond"]
                .as_str()
                .is_some_and(|cond| cond.starts_with("(id "))
            {
                assert_eq!(
                    read["Index Name"], "deliveries_waiting_id_key",
                    "the {name} looks ids up through another index: {read:#}"
                );
            }
        }
    }
}

/// The generic plan of the worker's prepared statement whose text is `LIKE` `pattern`, as
/// its transactions plan it ([`hookboard::delivery::dispatcher::BY_KEY_SETTINGS`]).
fn worker_plan(conn: &mut PgConnection, pattern: &str) -> serde_json::Value {
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Json, column_name = "QUERY PLAN")]
        plan: serde_json::Value,
    }
    conn.transaction(|conn| {
        let statement: Statement = diesel::sql_query(
            "SELECT name, parameter_types::text[] AS types FROM pg_prepared_statements WHERE statement LIKE $1",
        )
        .bind::<diesel::sql_types::Text, _>(pattern)
        .get_result(conn)?;
        // Any value of each parameter's type (diesel gives each placeholder's occurrence
        // a parameter of its own): a generic plan does not depend on them.
        let values: Vec<&str> = statement
            .types
            .iter()
            .map(|kind| match kind.as_str() {
                "timestamp with time zone" => "now()",
                "text" => "'worker'",
                "bigint" => "8",
                array if array.ends_with("[]") => "'{}'",
                other => panic!("a parameter of type {other} in {pattern}"),
            })
            .collect();
        conn.batch_execute(hookboard::delivery::dispatcher::BY_KEY_SETTINGS)?;
        diesel::sql_query(format!(
            "EXPLAIN (FORMAT JSON) EXECUTE {}({})",
            statement.name,
            values.join(", ")
        ))
        .get_result::<Plan>(conn)
    })
    .unwrap()
    .plan
}

/// A prepared statement's name and parameter types.
#[derive(QueryableByName)]
struct Statement {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    types: Vec<String>,
}

/// The nodes of an EXPLAIN (FORMAT JSON) plan whose `key` is `value` (an index's or a
/// table's name).
fn reads_of<'a>(plan: &'a serde_json::Value, key: &str, value: &str, found: &mut Vec<&'a serde_json::Value>) {
    match plan {
        serde_json::Value::Object(node) => {
            if node.get(key).and_then(|name| name.as_str()) == Some(value) {
                found.push(plan);
            }
            for item in node.values() {
                reads_of(item, key, value, found);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                reads_of(item, key, value, found);
            }
        }
        _ => {}
    }
}
