//! The history's days: each UTC day's attempts, and the deliveries finished on it, in
//! partitions of their own, added ahead by the housekeeping, dropped whole by the retention
//! (their disk space given back); what no day holds kept in a DEFAULT partition, never
//! refused; the deliveries still to send in a partition of their own, kept however old.

use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use hookboard::clock::Clock;
use hookboard::models::delivery::{ATTEMPTS, DAYS_AHEAD, DELIVERIES, Delivery, add_days, clean_up, days};

use super::{Fixture, booking};
use crate::receiver::Receiver;

/// `count` attempts of the webhook started at `at` (for deliveries that need not exist: no
/// key ties them, migration `checked_by_writers`).
fn insert_attempts(conn: &mut PgConnection, tenant_id: i64, webhook_id: i64, at: DateTime<Utc>, count: i64) {
    diesel::sql_query(
        "INSERT INTO delivery_attempts (delivery_id, tenant_id, webhook_id, attempt_number, started_at,
                                        duration_ms, status_code, succeeded, request_headers, response_headers)
         SELECT 1000000 + g, $1, $2, 1, $3 + g * interval '1 second', 3, 204, true, '{}', '{\"server\": \"x\"}'
         FROM generate_series(0, $4 - 1) g",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(webhook_id)
    .bind::<Timestamptz, _>(at)
    .bind::<BigInt, _>(count)
    .execute(conn)
    .unwrap();
}

/// `count` deliveries of the webhook created at `created` in `status`, finished (when that
/// status is final) at `done`, written as the worker and the pages write them.
fn insert_deliveries(
    conn: &mut PgConnection,
    (tenant_id, webhook_id): (i64, i64),
    status: &str,
    created: DateTime<Utc>,
    done: Option<DateTime<Utc>>,
    count: i64,
) {
    diesel::sql_query(
        "INSERT INTO deliveries (tenant_id, webhook_id, event_id, event_type, status, created_at, updated_at,
                                 completed_at, done_on)
         SELECT $1, $2, 'evt_old_' || g, 'booking.created', $3, $4, coalesce($5, $4), $5,
                coalesce(($5 AT TIME ZONE 'UTC')::date, 'infinity')
         FROM generate_series(1, $6) g",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(webhook_id)
    .bind::<Text, _>(status)
    .bind::<Timestamptz, _>(created)
    .bind::<Nullable<Timestamptz>, _>(done)
    .bind::<BigInt, _>(count)
    .execute(conn)
    .unwrap();
}

/// The partition each row of `table` is in, with how many.
fn placed_in(conn: &mut PgConnection, table: &str) -> Vec<(String, i64)> {
    #[derive(QueryableByName)]
    struct Place {
        #[diesel(sql_type = Text)]
        partition: String,
        #[diesel(sql_type = BigInt)]
        rows: i64,
    }
    diesel::sql_query(format!(
        "SELECT tableoid::regclass::text AS partition, count(*) AS rows FROM {table} GROUP BY 1 ORDER BY 1"
    ))
    .load::<Place>(conn)
    .unwrap()
    .into_iter()
    .map(|p| (p.partition, p.rows))
    .collect()
}

/// The partition each attempt is in, with how many.
fn where_they_are(conn: &mut PgConnection) -> Vec<(String, i64)> {
    placed_in(conn, "delivery_attempts")
}

/// Bytes of a relation with its indexes, or none when it is gone.
fn bytes_of(conn: &mut PgConnection, name: &str) -> Option<i64> {
    #[derive(QueryableByName)]
    struct Bytes {
        #[diesel(sql_type = Nullable<BigInt>)]
        bytes: Option<i64>,
    }
    diesel::sql_query("SELECT pg_total_relation_size(to_regclass($1)) AS bytes")
        .bind::<Text, _>(name)
        .get_result::<Bytes>(conn)
        .unwrap()
        .bytes
}

fn name_of(day: NaiveDate) -> String {
    day.format("delivery_attempts_%Y_%m_%d").to_string()
}

pub(super) fn deliveries_of(day: NaiveDate) -> String {
    day.format("deliveries_%Y_%m_%d").to_string()
}

pub(super) fn day_at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, 0, 0).unwrap().and_utc()
}

/// A day past the retention goes whole, its attempts and the deliveries finished on it, in
/// one short transaction each, and its disk space with it; what the DEFAULT partitions hold
/// from before the limit goes by rows; a delivery still waiting stays however old; the day
/// that holds the limit, and everything after it, stays.
#[actix_web::test]
async fn the_retention_drops_a_day_past_it_whole_and_gives_its_space_back() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let webhook = fx.webhook(&receiver.url).await;
    let (tenant_id, webhook_id) = (fx.tenant.id, webhook.id);
    let today = fx.app.clock.now().date_naive();
    let old = today - Days::new(40);
    let (older, limit_day) = (today - Days::new(45), today - Days::new(30));
    let (before, after) = fx
        .app
        .with_conn(move |conn| {
            let added = add_days(conn, old, old).unwrap();
            assert_eq!(
                (added.added, added.failed.len()),
                (2, 0),
                "the attempts' and the deliveries' day"
            );
            // Again: nothing to add.
            assert_eq!(add_days(conn, old, old).unwrap().added, 0);
            add_days(conn, limit_day, limit_day).unwrap();
            insert_attempts(conn, tenant_id, webhook_id, day_at(old, 9), 3000);
            // A day without a partition of its own, and the limit's own day (kept: the
            // retention goes a whole day at a time).
            insert_attempts(conn, tenant_id, webhook_id, day_at(older, 9), 7);
            insert_attempts(conn, tenant_id, webhook_id, day_at(limit_day, 0), 5);
            insert_attempts(conn, tenant_id, webhook_id, day_at(today, 0), 2);
            let ids = (tenant_id, webhook_id);
            // Finished on the old day (created two days before), on a day without a
            // partition, and on the limit's day; and one waiting since long before all.
            insert_deliveries(
                conn,
                ids,
                "succeeded",
                day_at(old, 1) - chrono::Duration::days(2),
                Some(day_at(old, 9)),
                2000,
            );
            insert_deliveries(conn, ids, "failed", day_at(older, 1), Some(day_at(older, 9)), 3);
            insert_deliveries(
                conn,
                ids,
                "cancelled",
                day_at(old, 1),
                Some(day_at(limit_day, 1)),
                4,
            );
            insert_deliveries(conn, ids, "parked", day_at(older, 1), None, 1);
            assert_eq!(
                placed_in(conn, "deliveries"),
                vec![
                    (deliveries_of(old), 2000),
                    (deliveries_of(limit_day), 4),
                    ("deliveries_default".to_owned(), 3),
                    ("deliveries_waiting".to_owned(), 1),
                ]
            );
            let delivery_bytes = bytes_of(conn, &deliveries_of(old)).unwrap();
            assert!(
                delivery_bytes > 2000 * 50,
                "the day held its deliveries: {delivery_bytes} bytes"
            );
            assert_eq!(
                where_they_are(conn),
                vec![
                    (name_of(old), 3000),
                    (name_of(limit_day), 5),
                    (name_of(today), 2),
                    ("delivery_attempts_default".to_owned(), 7),
                ]
            );
            let before = bytes_of(conn, &name_of(old)).unwrap();
            let cleaned = clean_up(conn, day_at(limit_day, 12)).unwrap();
            assert_eq!(
                (
                    cleaned.attempts,
                    cleaned.deliveries,
                    cleaned.days_dropped,
                    cleaned.days_left
                ),
                (3007, 2003, 2, 0),
                "{cleaned:?}"
            );
            assert!(cleaned.last_failure.is_none());
            // The two tables' days dropped, their DEFAULT partitions' rows deleted (one
            // transaction each), the hours, and one walk of the events.
            assert_eq!(cleaned.transactions, 6, "{cleaned:?}");
            assert_eq!(
                bytes_of(conn, &deliveries_of(old)),
                None,
                "the deliveries' day is gone"
            );
            assert_eq!(
                placed_in(conn, "deliveries"),
                vec![
                    (deliveries_of(limit_day), 4),
                    ("deliveries_waiting".to_owned(), 1)
                ],
                "what finished on the limit's day, and what still waits"
            );
            (before, bytes_of(conn, &name_of(old)))
        })
        .await;
    assert!(before > 3000 * 50, "the day held its attempts: {before} bytes");
    assert_eq!(after, None, "the day's table is gone, and its space with it");
    let (left, kept) = fx
        .app
        .with_conn(move |conn| {
            (
                where_they_are(conn),
                (days(conn, ATTEMPTS).unwrap(), days(conn, DELIVERIES).unwrap()),
            )
        })
        .await;
    assert_eq!(left, vec![(name_of(limit_day), 5), (name_of(today), 2)]);
    for kept in [kept.0, kept.1] {
        assert!(!kept.contains(&old));
        assert!(kept.contains(&limit_day) && kept.contains(&today));
    }
}

/// The housekeeping adds today and the week ahead, and an attempt is written into its
/// day's partition; one for a day without a partition goes to the DEFAULT partition
/// instead of being refused, and that day is then not added (its attempts would not be in
/// it) while the others are.
#[actix_web::test]
async fn the_days_ahead_are_added_and_an_attempt_no_day_holds_is_kept_all_the_same() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let webhook = fx.webhook(&receiver.url).await;
    let (tenant_id, webhook_id) = (fx.tenant.id, webhook.id);
    let now = fx.app.clock.now();
    let today = now.date_naive();
    let far = today + Days::new(DAYS_AHEAD + 30);
    fx.app
        .with_conn(move |conn| {
            conn.batch_execute(&format!("DROP TABLE IF EXISTS {}", name_of(today + Days::new(3))))
                .unwrap()
        })
        .await;
    let engine = fx.engine();
    engine.clean_up(now).unwrap();
    let present = fx
        .app
        .with_conn(|conn| (days(conn, ATTEMPTS).unwrap(), days(conn, DELIVERIES).unwrap()))
        .await;
    for ahead in 0..=DAYS_AHEAD {
        let day = today + Days::new(ahead);
        assert!(present.0.contains(&day), "{day} is added");
        assert!(present.1.contains(&day), "{day} is added for the deliveries");
    }

    // A delivery sent now is written into today's partition.
    fx.publish(&booking("today")).await;
    assert_eq!(fx.run_due().await.succeeded, 1);
    let placed = fx.app.with_conn(where_they_are).await;
    assert_eq!(placed, vec![(name_of(today), 1)]);
    let placed = fx.app.with_conn(|conn| placed_in(conn, "deliveries")).await;
    assert_eq!(
        placed,
        vec![(deliveries_of(today), 1)],
        "the finished delivery too"
    );

    let added = fx
        .app
        .with_conn(move |conn| {
            insert_attempts(conn, tenant_id, webhook_id, day_at(far, 3), 4);
            add_days(conn, far - Days::new(1), far + Days::new(1)).unwrap()
        })
        .await;
    assert_eq!(
        added.added, 5,
        "the days around it are added, and the deliveries' three"
    );
    assert_eq!(added.failed.len(), 1, "{added:?}");
    assert_eq!(added.failed[0].0, far);
    assert!(
        added.failed[0].1.contains("default partition"),
        "says why: {}",
        added.failed[0].1
    );
    let placed = fx.app.with_conn(where_they_are).await;
    assert_eq!(
        placed,
        vec![(name_of(today), 1), ("delivery_attempts_default".to_owned(), 4)]
    );
}

/// Two processes adding the same day at once (two workers' housekeeping at midnight): the
/// second waits for the first and then answers that the day is there, not an error.
#[actix_web::test]
async fn a_day_added_by_two_processes_at_once_is_added_once_without_an_error() {
    let fx = Fixture::new().await;
    let day = fx.app.clock.now().date_naive() + Days::new(DAYS_AHEAD + 20);
    let mut first = PgConnection::establish(&fx.app.database_url).unwrap();
    first
        .batch_execute(&format!("BEGIN; SELECT add_attempt_day('{day}');"))
        .unwrap();
    // The second blocks on the first's new table until it commits.
    let url = fx.app.database_url.clone();
    let second = std::thread::spawn(move || {
        #[derive(QueryableByName)]
        struct Added {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            added: bool,
        }
        let mut conn = PgConnection::establish(&url).unwrap();
        diesel::sql_query("SELECT add_attempt_day($1) AS added")
            .bind::<diesel::sql_types::Date, _>(day)
            .get_result::<Added>(&mut conn)
            .map(|a| a.added)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    first.batch_execute("COMMIT").unwrap();
    assert_eq!(second.join().unwrap(), Ok(false), "the second sees the day there");
    let present = fx.app.with_conn(|conn| days(conn, ATTEMPTS).unwrap()).await;
    assert!(present.contains(&day));
}

/// A day whose table someone is reading is not waited for (the worker's writes would queue
/// behind the drop's lock): it stays, said so, and goes at the next pass.
#[actix_web::test]
async fn a_day_being_read_is_left_for_the_next_pass_instead_of_waited_for() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let webhook = fx.webhook(&receiver.url).await;
    let (tenant_id, webhook_id) = (fx.tenant.id, webhook.id);
    let old = fx.app.clock.now().date_naive() - Days::new(40);
    let limit = day_at(old + Days::new(10), 0);
    fx.app
        .with_conn(move |conn| {
            add_days(conn, old, old).unwrap();
            insert_attempts(conn, tenant_id, webhook_id, day_at(old, 1), 10);
        })
        .await;
    // A reader in a transaction holds the attempts' table.
    let mut reader = PgConnection::establish(&fx.app.database_url).unwrap();
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM delivery_attempts;")
        .unwrap();
    let cleaned = fx.app.with_conn(move |conn| clean_up(conn, limit).unwrap()).await;
    // The deliveries' day (nobody reads it) goes; the attempts' day stays.
    assert_eq!(
        (cleaned.days_dropped, cleaned.days_left, cleaned.attempts),
        (1, 1, 0)
    );
    let failure = cleaned.last_failure.unwrap();
    assert!(
        failure.contains(&old.to_string()) && failure.contains("lock timeout"),
        "{failure}"
    );
    assert!(
        fx.app
            .with_conn(move |conn| days(conn, ATTEMPTS).unwrap())
            .await
            .contains(&old)
    );

    reader.batch_execute("COMMIT").unwrap();
    let cleaned = fx.app.with_conn(move |conn| clean_up(conn, limit).unwrap()).await;
    assert_eq!(
        (cleaned.days_dropped, cleaned.days_left, cleaned.attempts),
        (1, 0, 10)
    );
}

/// The log shows a delivery's attempts whatever day each was made on: a retry the next day
/// is in the next day's partition. And it reads only the days they can be in.
#[actix_web::test]
async fn the_log_reads_a_deliverys_attempts_across_its_days() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let webhook = fx.webhook(&receiver.url).await;
    fx.publish(&booking("bk-days")).await;
    assert_eq!(fx.run_due().await.succeeded, 1);
    let today = fx.app.clock.now().date_naive();
    let tomorrow = today + Days::new(1);
    let (delivery_id, webhook_id) = fx
        .app
        .with_conn(move |conn| {
            #[derive(QueryableByName)]
            struct Ids {
                #[diesel(sql_type = BigInt)]
                id: i64,
                #[diesel(sql_type = BigInt)]
                tenant_id: i64,
                #[diesel(sql_type = BigInt)]
                webhook_id: i64,
            }
            let ids: Ids = diesel::sql_query("SELECT id, tenant_id, webhook_id FROM deliveries")
                .get_result(conn)
                .unwrap();
            diesel::sql_query(
                "INSERT INTO delivery_attempts (delivery_id, tenant_id, webhook_id, attempt_number, started_at,
                                                duration_ms, status_code, succeeded)
                 VALUES ($1, $2, $3, 2, $4, 5, 204, true)",
            )
            .bind::<BigInt, _>(ids.id)
            .bind::<BigInt, _>(ids.tenant_id)
            .bind::<BigInt, _>(ids.webhook_id)
            .bind::<Timestamptz, _>(day_at(tomorrow, 1))
            .execute(conn)
            .unwrap();
            // As the worker records an attempt: with its delivery's last write.
            diesel::sql_query("UPDATE deliveries SET updated_at = $2 WHERE id = $1")
                .bind::<BigInt, _>(ids.id)
                .bind::<Timestamptz, _>(day_at(tomorrow, 1) + chrono::Duration::milliseconds(40))
                .execute(conn)
                .unwrap();
            // Other deliveries' attempts 20 days before and 5 days after, in days of their own.
            let (far, later) = (today - Days::new(20), today + Days::new(5));
            add_days(conn, far, later).unwrap();
            insert_attempts(conn, ids.tenant_id, ids.webhook_id, day_at(far, 5), 1);
            insert_attempts(conn, ids.tenant_id, ids.webhook_id, day_at(later, 5), 1);
            (ids.id, ids.webhook_id)
        })
        .await;
    let (made, now) = (webhook.created_at, fx.app.clock.now());
    let (page, scanned) = fx
        .app
        .with_conn(move |conn| {
            days_read_by(conn, "delivery_attempts", |conn| {
                Delivery::log_page(conn, (webhook_id, made), &Default::default(), 25, now)
            })
        })
        .await;
    assert!(scanned.contains(&name_of(today)), "{scanned:?}");
    assert!(scanned.contains(&name_of(tomorrow)), "{scanned:?}");
    assert!(
        !scanned.contains(&name_of(today - Days::new(20))),
        "the day 20 days before the delivery is not read: {scanned:?}"
    );
    assert!(
        !scanned.contains(&name_of(today + Days::new(5))),
        "the day 4 days after the delivery's last write is not read: {scanned:?}"
    );
    assert!(
        scanned.len() <= 5,
        "the days around the delivery's only: {scanned:?}"
    );
    assert_eq!(page.entries.len(), 1);
    let entry = &page.entries[0];
    assert_eq!(entry.delivery.id, delivery_id);
    let numbers: Vec<i32> = entry.attempts.iter().map(|a| a.attempt_number).collect();
    assert_eq!(numbers, vec![2, 1], "both days' attempts, newest first");
    assert_eq!(webhook.id, webhook_id);

    // One attempt with its whole response: the retry the next day, from the same few days.
    let tenant_id = fx.tenant.id;
    let (attempt, scanned) = fx
        .app
        .with_conn(move |conn| {
            days_read_by(conn, "delivery_attempts", |conn| {
                hookboard::models::delivery::Delivery::attempt(conn, tenant_id, delivery_id, 2)
            })
        })
        .await;
    assert_eq!((attempt.delivery_id, attempt.attempt_number), (delivery_id, 2));
    assert!(scanned.contains(&name_of(tomorrow)), "{scanned:?}");
    assert!(
        !scanned.contains(&name_of(today - Days::new(20)))
            && !scanned.contains(&name_of(today + Days::new(5))),
        "only the days around the delivery: {scanned:?}"
    );
    assert!(scanned.len() <= 5, "{scanned:?}");
    // Another tenant finds nothing.
    let other = fx.app.scale_tenant("Bergsteiger Reisen").await.id;
    let stranger = fx
        .app
        .with_conn(move |conn| hookboard::models::delivery::Delivery::attempt(conn, other, delivery_id, 2))
        .await;
    assert!(
        matches!(stranger, Err(diesel::result::Error::NotFound)),
        "{stranger:?}"
    );
}

/// What `read` returns, with the partitions of `history` (`delivery_attempts` or
/// `deliveries`) it read. The scans of each table this backend counted and has not reported
/// yet (earlier transactions' too) are read before and after it, in one transaction.
pub(super) fn days_read_by<T>(
    conn: &mut PgConnection,
    history: &str,
    read: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> (T, Vec<String>) {
    #[derive(QueryableByName, PartialEq)]
    struct Scans {
        #[diesel(sql_type = Text)]
        relname: String,
        #[diesel(sql_type = BigInt)]
        scans: i64,
    }
    let scans = |conn: &mut PgConnection| {
        diesel::sql_query(
            "SELECT relname::text, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans
             FROM pg_stat_xact_user_tables WHERE relname LIKE $1 || '%'",
        )
        .bind::<Text, _>(history)
        .load::<Scans>(conn)
    };
    conn.transaction(|conn| {
        let before = scans(conn)?;
        let read = read(conn)?;
        let mut scanned: Vec<String> = scans(conn)?
            .into_iter()
            .filter(|after| !before.contains(after))
            .map(|after| after.relname)
            .collect();
        scanned.sort();
        QueryResult::Ok((read, scanned))
    })
    .unwrap()
}

/// A delivery moves to the day it finished on in the statement that finishes it, and back
/// to the waiting partition when it is sent again; a statement that finished one without
/// naming its day is refused rather than leaving it among those still to send.
#[actix_web::test]
async fn a_delivery_moves_to_its_day_when_it_finishes_and_back_when_it_is_resent() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    fx.webhook(&receiver.url).await;
    fx.publish(&booking("bk-move")).await;
    let today = fx.app.clock.now().date_naive();
    let waiting = fx.app.with_conn(|conn| placed_in(conn, "deliveries")).await;
    assert_eq!(waiting, vec![("deliveries_waiting".to_owned(), 1)]);
    assert_eq!(fx.run_due().await.succeeded, 1);
    let done = fx.app.with_conn(|conn| placed_in(conn, "deliveries")).await;
    assert_eq!(done, vec![(deliveries_of(today), 1)]);

    let (tenant_id, now) = (fx.tenant.id, fx.app.clock.now());
    let (resent, placed) = fx
        .app
        .with_conn(move |conn| {
            let id: i64 = hookboard::schema::deliveries::table
                .select(hookboard::schema::deliveries::id)
                .first(conn)
                .unwrap();
            let resent = Delivery::resend(conn, tenant_id, id, now).unwrap();
            (resent, placed_in(conn, "deliveries"))
        })
        .await;
    assert_eq!(resent.status.as_str(), "pending");
    assert_eq!(placed, vec![("deliveries_waiting".to_owned(), 1)]);
    assert_eq!(fx.run_due().await.succeeded, 1);
    let done = fx.app.with_conn(|conn| placed_in(conn, "deliveries")).await;
    assert_eq!(
        done,
        vec![(deliveries_of(today), 1)],
        "sent again, and back in its day"
    );

    let refused = fx
        .app
        .with_conn(|conn| {
            diesel::sql_query("UPDATE deliveries SET status = 'pending', completed_at = NULL").execute(conn)
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("deliveries_done_on_check"), "{refused}");
}
