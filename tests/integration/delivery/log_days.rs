//! The log's pages over the deliveries' days: a page reads the days its deliveries can
//! have finished on (each day a partition), looks further back only when those cannot hold
//! the whole page, and shows the same deliveries, in the same order, either way.

use chrono::{DateTime, Days, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use hookboard::clock::Clock;
use hookboard::models::delivery::{Delivery, LogFilter, LogPage, add_days};

use super::retention::{day_at, days_read_by, deliveries_of};
use super::{Fixture, booking};
use crate::receiver::Receiver;

/// `count` deliveries of the webhook, of its one event, made at `created` and finished
/// (`status`) at `done`, numbered in the order they are written.
fn finished(
    conn: &mut PgConnection,
    webhook_id: i64,
    status: &str,
    (created, done): (DateTime<Utc>, DateTime<Utc>),
    count: i64,
) {
    diesel::sql_query(
        "INSERT INTO deliveries (tenant_id, webhook_id, event_id, event_type, status, attempt_count,
                                 created_at, updated_at, completed_at, done_on)
         SELECT w.tenant_id, w.id, e.id, e.event_type, $5, 1, $2, $3, $3, ($3 AT TIME ZONE 'UTC')::date
         FROM webhooks w, events e, generate_series(1, $4)
         WHERE w.id = $1 AND e.tenant_id = w.tenant_id",
    )
    .bind::<BigInt, _>(webhook_id)
    .bind::<Timestamptz, _>(created)
    .bind::<Timestamptz, _>(done)
    .bind::<BigInt, _>(count)
    .bind::<Text, _>(status)
    .execute(conn)
    .unwrap();
}

/// The webhook's delivery ids, newest first, as one unbounded statement reads them.
fn all_ids(conn: &mut PgConnection, webhook_id: i64) -> Vec<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query("SELECT id FROM deliveries WHERE webhook_id = $1 ORDER BY id DESC")
        .bind::<BigInt, _>(webhook_id)
        .load::<Id>(conn)
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect()
}

fn ids_of(page: &LogPage) -> Vec<i64> {
    page.entries.iter().map(|entry| entry.delivery.id).collect()
}

/// A month-old webhook with deliveries failed 20 days ago, one made then and finished only
/// today (after its retries), and today's: the first page is today's and reads no older
/// day; the next page needs the old day, reads it, and lists every delivery in order. A
/// filter that matches only the old deliveries finds them. A webhook made today has nothing
/// older, so even a page that is not full reads no older day.
#[actix_web::test]
async fn a_log_page_reads_the_days_its_deliveries_finished_on_and_only_those() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let webhook = fx.webhook(&receiver.url).await;
    fx.publish(&booking("bk-log-days")).await;
    let now = fx.app.clock.now();
    let today = now.date_naive();
    let old = today - Days::new(20);
    let webhook_id = webhook.id;
    let made = now - chrono::Duration::days(30);
    let ids = fx
        .app
        .with_conn(move |conn| {
            add_days(conn, old, today).unwrap();
            diesel::sql_query("DELETE FROM deliveries").execute(conn).unwrap();
            diesel::sql_query("UPDATE webhooks SET created_at = $2 WHERE id = $1")
                .bind::<BigInt, _>(webhook_id)
                .bind::<Timestamptz, _>(made)
                .execute(conn)
                .unwrap();
            finished(conn, webhook_id, "failed", (day_at(old, 8), day_at(old, 9)), 30);
            finished(conn, webhook_id, "succeeded", (day_at(old, 10), now), 1);
            finished(
                conn,
                webhook_id,
                "succeeded",
                (now - chrono::Duration::minutes(5), now),
                30,
            );
            all_ids(conn, webhook_id)
        })
        .await;
    assert_eq!(ids.len(), 61);

    let page_of = move |filter: LogFilter, created: DateTime<Utc>| {
        move |conn: &mut PgConnection| {
            days_read_by(conn, "deliveries", |conn| {
                Delivery::log_page(conn, (webhook_id, created), &filter, 25, now)
            })
        }
    };
    let (first, read) = fx.app.with_conn(page_of(LogFilter::default(), made)).await;
    assert_eq!(ids_of(&first), ids[..25], "today's 25 newest");
    assert_eq!(first.next_before, Some(ids[24]));
    assert!(read.contains(&deliveries_of(today)), "{read:?}");
    assert!(
        !read.contains(&deliveries_of(old)),
        "a page of today's deliveries reads no day 20 days old: {read:?}"
    );

    let before = LogFilter {
        before: ids[24].to_string(),
        ..LogFilter::default()
    };
    let (second, read) = fx.app.with_conn(page_of(before, made)).await;
    assert_eq!(
        ids_of(&second),
        ids[25..50],
        "today's last 5, the one made 20 days ago and finished today, then the old ones, by id"
    );
    assert_eq!(second.next_before, Some(ids[49]));
    assert!(read.contains(&deliveries_of(old)), "{read:?}");
    let done_today = &second.entries[5].delivery;
    assert_eq!(done_today.created_at, day_at(old, 10));

    // Nothing of the last days fits this filter: the page is found in the old day.
    let failed = LogFilter {
        outcome: "failed".into(),
        ..LogFilter::default()
    };
    let (third, read) = fx.app.with_conn(page_of(failed, made)).await;
    assert_eq!(ids_of(&third), ids[31..56]);
    assert!(read.contains(&deliveries_of(old)), "{read:?}");

    // Made today, the webhook can have nothing older: after today's 30 and the one that
    // finished today, the old day is not read (its rows break that rule on purpose).
    let after_today = LogFilter {
        before: ids[29].to_string(),
        ..LogFilter::default()
    };
    let (short, read) = fx.app.with_conn(page_of(after_today, now)).await;
    assert_eq!(ids_of(&short), [ids[30]]);
    assert_eq!(short.next_before, None);
    assert!(!read.contains(&deliveries_of(old)), "{read:?}");
}

/// A page of a webhook with a few deliveries on a busy day reads that day through the
/// webhook's index. The log's one generic plan took a walk of the day's btree on `id`
/// backwards, filtering on the webhook, where it expected the webhook's newest deliveries
/// near the top, and so read the whole day for a quiet webhook (129 ms over 345,000
/// deliveries); a day's index on `id` is now a hash index (migration
/// `delivery_day_id_hash`), which no plan can walk.
#[actix_web::test]
async fn a_quiet_webhooks_page_reads_a_busy_day_through_its_own_index() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let busy = fx.webhook(&receiver.url).await;
    let quiet = fx.webhook(&receiver.url).await;
    fx.publish(&booking("bk-quiet")).await;
    let now = fx.app.clock.now();
    let made = now - chrono::Duration::minutes(5);
    let (busy_id, quiet_id, quiet_created) = (busy.id, quiet.id, quiet.created_at);
    let (page, fetched) = fx
        .app
        .with_conn(move |conn| {
            add_days(conn, now.date_naive(), now.date_naive()).unwrap();
            diesel::sql_query("DELETE FROM deliveries").execute(conn).unwrap();
            finished(conn, quiet_id, "succeeded", (made, now), 3);
            finished(conn, busy_id, "succeeded", (made, now), 20_000);
            diesel::sql_query("VACUUM (ANALYZE) deliveries")
                .execute(conn)
                .unwrap();
            let today = deliveries_of(now.date_naive());
            rows_fetched_from(conn, &today, |conn| {
                Delivery::log_page(conn, (quiet_id, quiet_created), &LogFilter::default(), 25, now)
            })
        })
        .await;
    assert_eq!(page.entries.len(), 3);
    assert!(
        page.entries
            .iter()
            .all(|entry| entry.delivery.webhook_id == quiet_id),
        "only the quiet webhook's deliveries"
    );
    assert!(
        fetched <= 3,
        "the page fetched {fetched} rows of the day's 20,003 to find the quiet webhook's 3"
    );
}

/// What `read` returns, and how many rows it fetched from `table` through its indexes.
fn rows_fetched_from<T>(
    conn: &mut PgConnection,
    table: &str,
    read: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> (T, i64) {
    #[derive(QueryableByName)]
    struct Fetched {
        #[diesel(sql_type = BigInt)]
        rows: i64,
    }
    let fetched = |conn: &mut PgConnection| {
        diesel::sql_query(
            "SELECT coalesce(idx_tup_fetch, 0) AS rows FROM pg_stat_xact_user_tables WHERE relname = $1",
        )
        .bind::<Text, _>(table)
        .get_result::<Fetched>(conn)
        .map(|f| f.rows)
    };
    conn.transaction(|conn| {
        let before = fetched(conn)?;
        let read = read(conn)?;
        QueryResult::Ok((read, fetched(conn)? - before))
    })
    .unwrap()
}

/// The server's pool opens every connection before it is handed out, each with the
/// statements of a log's first page planned over every day's partition
/// (`Delivery::prepare_log`): a page served on any of them prepares and plans none of its
/// reads of deliveries and attempts anew, and still lists the webhook's deliveries with
/// their attempts.
#[actix_web::test]
async fn the_servers_pool_opens_its_connections_with_the_log_planned() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let webhook = fx.webhook(&receiver.url).await;
    fx.publish_many(3).await;
    assert_eq!(fx.run_due().await.succeeded, 3);
    let prepare: hookboard::db::Prepare = |conn| Delivery::prepare_log(conn, Utc::now());
    let pool = hookboard::db::connect_ready(&fx.app.database_url, 3, prepare).unwrap();
    assert_eq!(
        pool.state().connections,
        3,
        "all opened before the pool is returned"
    );
    let now = fx.app.clock.now();
    crate::helpers::tokio_block(move || {
        // Held at once, so these are the pool's three connections.
        let mut conns: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
        for conn in &mut conns {
            let planned = log_statements(conn);
            for table in ["deliveries", "delivery_attempts"] {
                assert!(
                    planned
                        .iter()
                        .any(|p| p.statement.contains(&format!("FROM \"{table}\"")) && p.generic_plans >= 1),
                    "a generic plan of a read of {table}: {planned:#?}"
                );
            }
        }
        let conn = &mut conns[1];
        let before = log_statements(conn);
        let page = Delivery::log_page(
            conn,
            (webhook.id, webhook.created_at),
            &LogFilter::default(),
            25,
            now,
        )
        .unwrap();
        assert_eq!(page.entries.len(), 3);
        assert!(page.entries.iter().all(|entry| entry.attempts.len() == 1));
        let after = log_statements(conn);
        assert_eq!(
            after.iter().map(|p| &p.statement).collect::<Vec<_>>(),
            before.iter().map(|p| &p.statement).collect::<Vec<_>>(),
            "no statement of the page's over deliveries and attempts prepared anew"
        );
        assert_eq!(
            after.iter().map(|p| p.generic_plans).sum::<i64>(),
            before.iter().map(|p| p.generic_plans).sum::<i64>() + 2,
            "the page's read of deliveries and of attempts ran on their kept plans: {after:#?}"
        );
    })
    .await;
}

/// A prepared statement of this session that reads deliveries or attempts.
#[derive(QueryableByName, Debug)]
struct Planned {
    #[diesel(sql_type = Text)]
    statement: String,
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
}

/// This session's prepared statements over deliveries and attempts, in the order prepared.
fn log_statements(conn: &mut PgConnection) -> Vec<Planned> {
    diesel::sql_query(
        "SELECT statement, generic_plans FROM pg_prepared_statements
         WHERE statement LIKE '%FROM \"deliveries\"%' OR statement LIKE '%FROM \"delivery_attempts\"%'
         ORDER BY prepare_time, name",
    )
    .load(conn)
    .unwrap()
}
