//! Replay (SPEC 9c) through the API: the dry run's count is what is then sent, the same
//! deliveries with the same `webhook-id`s and bodies, signed, at a real receiver; the range,
//! outcome and event type choices; the checks; other tenants' webhooks; the audit entry.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::audit::AuditEntry;
use hookboard::models::webhook::Webhook;
use serde_json::json;

use super::{Fixture, booking, post, tenant_key};
use crate::receiver::{Behaviour, Receiver};

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn replay_path(webhook: &Webhook) -> String {
    format!("/api/v1/webhooks/{}/replay", webhook.id)
}

/// Status, attempts, next attempt and event id of each delivery of a webhook, oldest first.
pub async fn rows(fx: &Fixture, webhook_id: i64) -> Vec<(i64, String, i32, DateTime<Utc>, String)> {
    fx.app
        .with_conn(move |conn| {
            use hookboard::schema::deliveries as d;
            d::table
                .filter(d::webhook_id.eq(webhook_id))
                .order(d::id)
                .select((
                    d::id,
                    d::status,
                    d::attempt_count,
                    d::next_attempt_at,
                    d::event_id,
                ))
                .load(conn)
                .unwrap()
        })
        .await
}

/// Sets a delivery's status and creation time (arranging a log as an outage left it).
pub async fn set_delivery(fx: &Fixture, id: i64, status: &str, created_at: DateTime<Utc>) {
    let status = status.to_owned();
    fx.app
        .with_conn(move |conn| {
            use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
            let completed = (status == "failed" || status == "succeeded").then_some(created_at);
            // A finished one in the partition of its day (migration `deliveries_by_day`).
            diesel::sql_query(
                "UPDATE deliveries SET status = $2, created_at = $3, completed_at = $4,
                     done_on = CASE WHEN $2 IN ('pending', 'parked') THEN 'infinity'
                                    ELSE ($3 AT TIME ZONE 'UTC')::date END
                 WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(&status)
            .bind::<Timestamptz, _>(created_at)
            .bind::<Nullable<Timestamptz>, _>(completed)
            .execute(conn)
            .unwrap()
        })
        .await;
}

/// The receiver's requests as (webhook-id, body), sorted.
fn received(receiver: &Receiver, from: usize) -> Vec<(String, Vec<u8>)> {
    let mut got: Vec<(String, Vec<u8>)> = receiver.requests()[from..]
        .iter()
        .map(|r| (r.headers["webhook-id"].clone(), r.body.clone()))
        .collect();
    got.sort();
    got
}

#[actix_web::test]
async fn a_dry_run_counts_what_the_replay_then_sends_again_with_the_same_ids_bodies_and_signatures() {
    // Arrange: the receiver is down for four bookings, back for two more.
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(503);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.retry_on_error = false)
        .await;
    for i in 0..4 {
        assert_eq!(fx.publish(&booking(&format!("down-{i}"))).await.0, 202);
    }
    fx.run_due().await;
    receiver.set(Behaviour::Answer(200, Vec::new(), Vec::new()));
    for i in 0..2 {
        assert_eq!(fx.publish(&booking(&format!("up-{i}"))).await.0, 202);
    }
    fx.run_due().await;
    let failed_first: Vec<(String, Vec<u8>)> = {
        let mut got: Vec<_> = receiver.requests()[..4]
            .iter()
            .map(|r| (r.headers["webhook-id"].clone(), r.body.clone()))
            .collect();
        got.sort();
        got
    };
    assert_eq!(fx.count_by_status(webhook.id).await["failed"], 4);
    let now = Utc::now();
    let range = json!({"since": at(now - Duration::hours(1)), "until": at(now + Duration::hours(1))});

    // Act 1: a dry run.
    let mut dry = range.clone();
    dry["dry_run"] = json!(true);
    let before = rows(&fx, webhook.id).await;
    let (status, counted) = fx.post(&replay_path(&webhook), &dry).await;

    // Assert 1: the count of the failed ones, and nothing changed.
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted, json!({"count": 4}));
    assert_eq!(rows(&fx, webhook.id).await, before, "a dry run changes nothing");

    // Act 2: the replay, then one pass of the engine.
    let (status, replayed) = fx.post(&replay_path(&webhook), &range).await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed, json!({"count": 4}));
    let pending: Vec<_> = rows(&fx, webhook.id)
        .await
        .into_iter()
        .filter(|r| r.1 == "pending")
        .collect();
    assert_eq!(pending.len(), 4);
    assert!(pending.iter().all(|r| r.3 <= fx.app.clock.now()), "due at once");
    let summary = fx.run_due().await;

    // Assert 2: the same four deliveries again, byte for byte, and signed.
    assert_eq!(summary.attempted, 4);
    assert_eq!(summary.succeeded, 4);
    assert_eq!(receiver.requests().len(), 10);
    assert_eq!(
        received(&receiver, 6),
        failed_first,
        "the same webhook-ids and bodies"
    );
    let verifier =
        standardwebhooks::Webhook::new(&webhook.reveal_secret(&fx.app.secrets()).unwrap()).unwrap();
    for request in &receiver.requests()[6..] {
        let mut headers = http::HeaderMap::new();
        for (k, v) in &request.headers {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        verifier
            .verify(&request.body, &headers)
            .expect("the signature verifies");
    }
    let after = rows(&fx, webhook.id).await;
    assert!(after.iter().all(|r| r.1 == "succeeded"), "{after:?}");
    let attempts: Vec<i32> = after.iter().map(|r| r.2).collect();
    assert_eq!(
        attempts,
        [2, 2, 2, 2, 1, 1],
        "the first attempts are kept in the history"
    );

    // The audit log says who replayed what.
    let tenant_id = fx.tenant.id;
    let entries = fx
        .app
        .with_conn(move |conn| AuditEntry::list(conn, tenant_id, None, 10).unwrap())
        .await;
    let entry = entries
        .iter()
        .find(|e| e.action == "webhook.replayed")
        .expect("an audit entry");
    assert_eq!(
        entry.target_id.as_deref(),
        Some(webhook.number.to_string().as_str())
    );
    assert_eq!(entry.details["count"], 4);
    assert_eq!(entry.details["outcome"], "failed");
    assert_eq!(entry.details["event_types"], json!([]));
    assert!(entry.details["since"].is_string() && entry.details["until"].is_string());
    assert_eq!(
        entries.iter().filter(|e| e.action == "webhook.replayed").count(),
        1,
        "the dry run is not audited"
    );
}

#[actix_web::test]
async fn the_range_outcome_and_event_types_choose_and_pending_parked_or_cancelled_deliveries_are_never_touched()
 {
    // Arrange: seven deliveries, as an outage and its aftermath left them.
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    let types = ["booking.created", "booking.cancelled", "payment.completed"];
    let webhook = fx.webhook_with(&receiver.url, &types, |_| {}).await;
    let kinds = [
        "booking.created",
        "booking.created",
        "booking.cancelled",
        "payment.completed",
        "booking.created",
        "booking.cancelled",
        "booking.created",
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let (status, _) = fx.publish(&json!({"type": kind, "data": {"id": i}})).await;
        assert_eq!(status, 202);
    }
    let ids: Vec<i64> = rows(&fx, webhook.id).await.iter().map(|r| r.0).collect();
    let t = Utc::now() - Duration::days(1);
    let h = Duration::hours(1);
    set_delivery(&fx, ids[0], "failed", t - h * 3).await;
    set_delivery(&fx, ids[1], "failed", t - h).await;
    set_delivery(&fx, ids[2], "failed", t - h).await;
    set_delivery(&fx, ids[3], "succeeded", t - h).await;
    set_delivery(&fx, ids[4], "pending", t - h).await;
    set_delivery(&fx, ids[5], "parked", t - h).await;
    set_delivery(&fx, ids[6], "cancelled", t - h).await;
    let later = fx.app.clock.now() + Duration::hours(5);
    let pending_id = ids[4];
    fx.app
        .with_conn(move |conn| {
            use hookboard::schema::deliveries as d;
            diesel::update(d::table.filter(d::id.eq(pending_id)))
                .set(d::next_attempt_at.eq(later))
                .execute(conn)
                .unwrap()
        })
        .await;
    let count =
        |since: DateTime<Utc>, until: DateTime<Utc>, outcome: Option<&str>, types: Option<Vec<&str>>| {
            let mut body = json!({"since": at(since), "until": at(until), "dry_run": true});
            if let Some(outcome) = outcome {
                body["outcome"] = json!(outcome);
            }
            if let Some(types) = types {
                body["event_types"] = json!(types);
            }
            let (fx, path) = (&fx, replay_path(&webhook));
            async move {
                let (status, answer) = fx.post(&path, &body).await;
                assert_eq!(status, 200, "{body}: {answer}");
                answer["count"].as_i64().unwrap()
            }
        };

    // Act and assert: the choices, counted.
    assert_eq!(count(t - h * 2, t, None, None).await, 2, "failed by default");
    assert_eq!(count(t - h * 2, t, Some("failed"), None).await, 2);
    assert_eq!(count(t - h * 2, t, Some("succeeded"), None).await, 1);
    assert_eq!(
        count(t - h * 2, t, Some("any"), None).await,
        3,
        "failed or succeeded, nothing else"
    );
    assert_eq!(count(t - h * 4, t, Some("any"), None).await, 4);
    assert_eq!(
        count(t - h * 4, t - h, Some("any"), None).await,
        1,
        "until is not included"
    );
    assert_eq!(count(t - h, t, Some("any"), None).await, 3, "since is included");
    assert_eq!(
        count(t - h * 2, t, Some("any"), Some(vec!["booking.created"])).await,
        1
    );
    assert_eq!(
        count(
            t - h * 2,
            t,
            Some("any"),
            Some(vec!["booking.cancelled", "payment.completed"])
        )
        .await,
        2
    );
    assert_eq!(
        count(t - h * 2, t, Some("any"), Some(vec![])).await,
        3,
        "no types: every type"
    );
    assert_eq!(count(t, t + h, Some("any"), None).await, 0);

    // Act: replay one choice.
    let before = rows(&fx, webhook.id).await;
    let (status, answer) = fx
        .post(
            &replay_path(&webhook),
            &json!({"since": at(t - h * 2), "until": at(t), "outcome": "any"}),
        )
        .await;

    // Assert: exactly those three are pending again; the rest as they were.
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["count"], 3);
    let after = rows(&fx, webhook.id).await;
    let statuses: Vec<&str> = after.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "failed",
            "pending",
            "pending",
            "pending",
            "pending",
            "parked",
            "cancelled"
        ]
    );
    assert_eq!(
        after[4], before[4],
        "the pending one is left on its way, due when it was"
    );
    assert_eq!(after[0], before[0]);
}

#[actix_web::test]
async fn bad_choices_are_refused_with_the_field_and_change_nothing() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(500);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.retry_on_error = false)
        .await;
    fx.publish(&booking("bk-1")).await;
    fx.run_due().await;
    let before = rows(&fx, webhook.id).await;
    let now = Utc::now();
    let (since, until) = (at(now - Duration::hours(1)), at(now + Duration::hours(1)));
    let cases = [
        (
            json!({"since": "yesterday", "until": until}),
            Some("since"),
            "RFC 3339",
        ),
        (
            json!({"since": "2026-11-22 02:00", "until": until}),
            Some("since"),
            "RFC 3339",
        ),
        (
            json!({"since": since, "until": "2026-13-01T00:00:00Z"}),
            Some("until"),
            "RFC 3339",
        ),
        (json!({"until": until}), Some("since"), "required"),
        (json!({"since": since}), Some("until"), "required"),
        (json!({"since": until, "until": since}), Some("since"), "before"),
        (json!({"since": since, "until": since}), Some("since"), "before"),
        (
            json!({"since": since, "until": until, "outcome": "all"}),
            Some("outcome"),
            "failed, succeeded or any",
        ),
        (
            json!({"since": since, "until": until, "outcome": "pending"}),
            Some("outcome"),
            "failed, succeeded or any",
        ),
        (
            json!({"since": since, "until": until, "event_types": ["booking.nope"]}),
            Some("event_types"),
            "catalog",
        ),
        (
            json!({"since": since, "until": until, "event_types": "booking.created"}),
            Some("event_types"),
            "",
        ),
        (
            json!({"since": since, "until": until, "dry_run": "yes"}),
            Some("dry_run"),
            "",
        ),
        (
            json!({"since": since, "until": until, "status": "failed"}),
            Some("status"),
            "unknown field",
        ),
    ];
    for (body, field, says) in cases {
        for dry_run in [true, false] {
            let mut body = body.clone();
            if body.get("dry_run").is_none() && dry_run {
                body["dry_run"] = json!(true);
            }
            let (status, answer) = fx.post(&replay_path(&webhook), &body).await;
            assert_eq!(status, 422, "{body}: {answer}");
            let error = &answer["error"];
            assert_eq!(error["field"].as_str(), field, "{body}: {answer}");
            assert!(
                error["message"].as_str().unwrap().contains(says),
                "{body}: {answer}"
            );
        }
    }
    let (status, _) = post(&fx.app, &fx.key, &replay_path(&webhook), &json!([since, until])).await;
    assert_eq!(status, 422, "an array is not an object");
    assert_eq!(rows(&fx, webhook.id).await, before, "nothing changed");
    assert!(fx.still_claimed().await == 0);
}

#[actix_web::test]
async fn another_tenants_webhook_answers_404_and_a_switched_off_one_409() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(500);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.retry_on_error = false)
        .await;
    fx.publish(&booking("bk-1")).await;
    fx.run_due().await;
    let other = fx.app.scale_tenant("Other Travel").await;
    let other_key = tenant_key(&fx.app, &other).await;
    let now = Utc::now();
    let range = json!({"since": at(now - Duration::hours(1)), "until": at(now + Duration::hours(1))});
    let mut dry = range.clone();
    dry["dry_run"] = json!(true);

    for body in [&range, &dry] {
        let (status, answer) = post(&fx.app, &other_key, &replay_path(&webhook), body).await;
        assert_eq!(status, 404, "{answer}");
        let (status, _) = fx.post("/api/v1/webhooks/999999/replay", body).await;
        assert_eq!(status, 404);
    }
    assert_eq!(fx.count_by_status(webhook.id).await["failed"], 1, "untouched");

    fx.set_active(&webhook, false, hookboard::services::webhooks::Parked::Keep)
        .await;
    for body in [&range, &dry] {
        let (status, answer) = fx.post(&replay_path(&webhook), body).await;
        assert_eq!(status, 409, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("Switch it on first"), "{message}");
    }
    assert_eq!(fx.count_by_status(webhook.id).await["failed"], 1, "untouched");
    assert_eq!(receiver.requests().len(), 1);
}

/// Inserts `n` failed deliveries of one event for the webhook, created an hour ago.
async fn failed_deliveries(fx: &Fixture, webhook: &Webhook, n: i64) {
    let (tenant_id, webhook_id) = (fx.tenant.id, webhook.id);
    let (_, accepted) = fx.publish(&booking("bulk")).await;
    let event_id = accepted["id"].as_str().unwrap().to_owned();
    fx.app
        .with_conn(move |conn| {
            diesel::sql_query(
                "INSERT INTO deliveries (tenant_id, webhook_id, event_id, event_type, status, attempt_count, created_at,
                                         completed_at, done_on)
                 SELECT $1, $2, $3, 'booking.created', 'failed', 1, now() - interval '1 hour', now() - interval '1 hour',
                        ((now() - interval '1 hour') AT TIME ZONE 'UTC')::date
                 FROM generate_series(1, $4)",
            )
            .bind::<diesel::sql_types::BigInt, _>(tenant_id)
            .bind::<diesel::sql_types::BigInt, _>(webhook_id)
            .bind::<diesel::sql_types::Text, _>(event_id)
            .bind::<diesel::sql_types::BigInt, _>(n)
            .execute(conn)
            .unwrap()
        })
        .await;
}

#[actix_web::test]
async fn one_replay_sends_at_most_100000_and_beyond_says_to_narrow_the_range() {
    let fx = Fixture::new().await;
    let webhook = fx.webhook("http://127.0.0.1:9/hook").await;
    failed_deliveries(&fx, &webhook, 100_000).await;
    let now = Utc::now();
    let range = json!({"since": at(now - Duration::hours(2)), "until": at(now), "dry_run": true});

    let (status, answer) = fx.post(&replay_path(&webhook), &range).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["count"], 100_000, "the limit itself is allowed");

    failed_deliveries(&fx, &webhook, 1).await;
    let mut real = range.clone();
    real["dry_run"] = json!(false);
    for body in [&range, &real] {
        let (status, answer) = fx.post(&replay_path(&webhook), body).await;
        assert_eq!(status, 422, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("100,001 deliveries match") && message.contains("Narrow the range"),
            "{message}"
        );
    }
    assert_eq!(
        fx.count_by_status(webhook.id).await["failed"],
        100_001,
        "nothing was queued"
    );
}

#[actix_web::test]
async fn the_running_worker_sends_what_a_replay_queued() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(500);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.retry_on_error = false)
        .await;
    fx.publish(&booking("bk-1")).await;
    fx.publish(&booking("bk-2")).await;
    fx.run_due().await;
    receiver.set(Behaviour::Answer(204, Vec::new(), Vec::new()));
    let worker = fx.start_worker();

    let now = Utc::now();
    let (status, answer) = fx
        .post(
            &replay_path(&webhook),
            &json!({"since": at(now - Duration::hours(1)), "until": at(now + Duration::hours(1))}),
        )
        .await;

    assert_eq!(status, 202, "{answer}");
    super::wait_for(&receiver, 4).await;
    worker.stop().await;
    let statuses: Vec<String> = rows(&fx, webhook.id).await.into_iter().map(|r| r.1).collect();
    assert_eq!(statuses, ["succeeded", "succeeded"]);
}

#[actix_web::test]
async fn on_an_ordered_webhook_replayed_deliveries_keep_their_place_in_their_key() {
    // Arrange: three events of one key; the first two failed, the third still waits.
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.ordered = true)
        .await;
    let mut ids = Vec::new();
    for seq in 0..3 {
        let event = json!({"type": "booking.created", "data": {"seq": seq}, "ordering_key": "BK-1"});
        let (status, accepted) = fx.publish(&event).await;
        assert_eq!(status, 202, "{accepted}");
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    let deliveries = rows(&fx, webhook.id).await;
    let created = Utc::now() - Duration::minutes(30);
    set_delivery(&fx, deliveries[0].0, "failed", created).await;
    set_delivery(&fx, deliveries[1].0, "failed", created).await;

    // Act: replay the failed ones, then let the engine run until all three arrived.
    let now = Utc::now();
    let (status, answer) = fx
        .post(
            &replay_path(&webhook),
            &json!({"since": at(now - Duration::hours(1)), "until": at(now + Duration::hours(1))}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["count"], 2);
    for _ in 0..10 {
        if receiver.requests().len() >= 3 {
            break;
        }
        fx.run_due().await;
    }

    // Assert: in publish order, the waiting one after the replayed ones.
    let order: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(order, ids);
}
