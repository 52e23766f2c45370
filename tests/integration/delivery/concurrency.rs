//! Concurrency and fairness: two dispatchers on one database, the per-webhook limit, a
//! backlog next to a quiet webhook, and users changing webhooks while the engine works.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::delivery::dispatcher;
use hookboard::delivery::outbox::{self, NewEvent};
use hookboard::models::audit::Actor;
use hookboard::services::{self, webhooks::Parked};
use serde_json::json;

use super::{Fixture, booking, wait_for};
use crate::receiver::{Behaviour, Receiver};

#[actix_web::test]
async fn two_dispatchers_on_one_database_deliver_each_delivery_once() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    for _ in 0..3 {
        fx.webhook(&receiver.url).await;
    }
    let batch = json!({"events": (0..40).map(|i| booking(&format!("b{i}"))).collect::<Vec<_>>()});
    let (status, accepted) = fx.post("/api/v1/events/batch", &batch).await;
    assert_eq!(status, 202, "{accepted}");
    let (one, two) = (fx.engine(), fx.engine());
    let now = fx.app.clock.now();
    let (a, b) = tokio::join!(one.run_due_once(now), two.run_due_once(now));
    assert_eq!(a.unwrap().attempted + b.unwrap().attempted, 120);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 120);
    let mut ids: Vec<String> = requests
        .iter()
        .map(|r| format!("{}{}", r.headers["webhook-id"], r.headers["webhook-signature"]))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120, "no delivery was sent twice");
}

/// A webhook with a long backlog does not keep another webhook waiting: webhooks with due
/// deliveries take turns in each claim, instead of the queue being read in due order
/// (which showed the other webhook's delivery only once the backlog had drained).
#[actix_web::test]
async fn a_long_backlog_of_one_webhook_does_not_hold_up_another() {
    let fx = Fixture::new().await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_millis(200)));
    let fast = Receiver::answering(204);
    fx.webhook(&slow.url).await;
    fx.webhook_with(&fast.url, &["payment.completed"], |_| {}).await;
    // Far more due deliveries than one claim takes; 8 at a time at 200 ms each, over a
    // minute of work.
    fx.publish_many(3000).await;
    let worker = fx.start_worker();
    wait_for(&slow, dispatcher::PER_WEBHOOK).await;
    let payment = json!({"type": "payment.completed", "data": {"id": "pay_1", "amount": 10800}});
    let (status, body) = fx.publish(&payment).await;
    assert_eq!(status, 202, "{body}");
    wait_for(&fast, 1).await;
    let backlog_sent = slow.requests().len();
    worker.stop().await;
    assert!(
        backlog_sent < 300,
        "the payment waited for {backlog_sent} of the 3,000 backlogged bookings"
    );
    assert_eq!(fast.requests().len(), 1);
    assert_eq!(fx.still_claimed().await, 0);
}

/// The worker holds a queue per webhook so the next attempt starts without a round trip,
/// yet never sends more than 8 at once to one webhook, and a webhook switched off while
/// its queue is held gets nothing more: the queue is parked, nothing is lost or doubled.
#[actix_web::test]
async fn queued_deliveries_respect_the_per_webhook_limit_and_a_paused_webhook_parks_its_queue() {
    let fx = Fixture::new().await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(40)));
    let webhook = fx.webhook(&receiver.url).await;
    fx.publish_many(300).await;
    let worker = fx.start_worker();
    wait_for(&receiver, 60).await;
    let peak = receiver.peak_concurrency();
    assert!(
        (2..=dispatcher::PER_WEBHOOK).contains(&peak),
        "peak concurrency {peak}"
    );

    fx.set_active(&webhook, false, Parked::Keep).await;
    // The loop re-checks held webhooks on its next claim (at most a poll interval away).
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let after_pause = receiver.requests().len();
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.requests().len(),
        after_pause,
        "nothing is sent after the pause settles"
    );
    worker.stop().await;

    let counts = fx.count_by_status(webhook.id).await;
    let succeeded = counts.get("succeeded").copied().unwrap_or(0);
    let parked = counts.get("parked").copied().unwrap_or(0);
    assert_eq!(
        succeeded, after_pause,
        "every request is recorded once: {counts:?}"
    );
    assert_eq!(succeeded + parked, 300, "nothing lost: {counts:?}");
    assert!(parked > 0, "the queue was parked: {counts:?}");
    let mut ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), after_pause, "no delivery was sent twice");
    assert_eq!(fx.still_claimed().await, 0);
}

/// Switching webhooks off and on and deleting them while the worker writes their results
/// never deadlocks (PostgreSQL would end one side after a second): the user's action and
/// the worker both lock the webhook row before its deliveries.
#[actix_web::test]
async fn switching_and_deleting_webhooks_while_results_are_written_never_deadlocks() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let mut webhooks = Vec::new();
    for _ in 0..4 {
        webhooks.push(fx.webhook(&receiver.url).await);
    }
    fx.publish_many(1500).await;
    let worker = fx.start_worker();
    wait_for(&receiver, 100).await;
    for round in 0..20 {
        for webhook in &webhooks {
            let (tenant_id, id, now) = (fx.tenant.id, webhook.id, fx.app.clock.now());
            fx.app
                .with_conn(move |conn| {
                    let actor = Actor::system();
                    services::webhooks::switch_in(conn, tenant_id, id, false, Parked::Keep, &actor, now)
                        .unwrap_or_else(|e| panic!("switching off in round {round}: {e}"));
                    services::webhooks::switch_in(conn, tenant_id, id, true, Parked::Resend, &actor, now)
                        .unwrap_or_else(|e| panic!("switching on in round {round}: {e}"));
                })
                .await;
        }
    }
    for webhook in &webhooks[..2] {
        fx.delete(webhook).await;
    }
    worker.stop().await;
    assert_eq!(fx.still_claimed().await, 0);
    assert_eq!(
        fx.orphans().await,
        (0, 0),
        "the deleted webhooks left nothing behind"
    );
    for webhook in &webhooks[2..] {
        let counts = fx.count_by_status(webhook.id).await;
        assert_eq!(counts.values().sum::<usize>(), 1500, "nothing lost: {counts:?}");
    }
}

/// Publishing reads the webhooks, then locks those it writes deliveries for: a webhook
/// deleted in between (here: its deletion holds the lock while publishing waits) gets no
/// deliveries, and the event is accepted for the others.
#[actix_web::test]
async fn a_webhook_deleted_while_an_event_fans_out_gets_no_delivery() {
    let fx = Fixture::new().await;
    let gone = fx.webhook("https://gone.example/in").await;
    let kept = fx.webhook("https://kept.example/in").await;

    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (go_tx, go) = std::sync::mpsc::channel::<()>();
    let deleting = {
        let (pool, tenant_id, id) = (fx.app.pool.clone(), fx.tenant.id, gone.id);
        std::thread::spawn(move || {
            pool.get().unwrap().transaction(|conn| {
                diesel::sql_query("SELECT id FROM webhooks WHERE id = $1 FOR UPDATE")
                    .bind::<diesel::sql_types::BigInt, _>(id)
                    .execute(conn)?;
                locked_tx.send(()).unwrap();
                go.recv().unwrap();
                services::webhooks::delete_in(conn, tenant_id, id, &Actor::system())
                    .map(|(_, waiting)| waiting)
            })
        })
    };
    locked.recv().unwrap();
    let publishing = {
        let (pool, tenant, now) = (fx.app.pool.clone(), fx.tenant.clone(), fx.app.clock.now());
        std::thread::spawn(move || {
            let event = NewEvent {
                kind: "booking.created".into(),
                data: json!({"id": "bk-race"}),
                occurred_at: None,
                connection: None,
                language: None,
                idempotency_key: None,
                ordering_key: None,
            };
            outbox::publish(&mut pool.get().unwrap(), &tenant, &[event], now).map_err(|e| e.to_string())
        })
    };
    // Publishing has read both webhooks and waits for the deleted one's lock.
    let started = Instant::now();
    loop {
        let waiting: i64 = fx
            .app
            .with_conn(|conn| {
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "(SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND wait_event_type = 'Lock')",
                ))
                .get_result(conn)
                .unwrap()
            })
            .await;
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "publishing never waited for the lock"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    go_tx.send(()).unwrap();
    assert_eq!(deleting.join().unwrap().unwrap(), 0);
    let accepted = publishing.join().unwrap().unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].deliveries, 1, "only the webhook kept");
    assert_eq!(fx.deliveries_of(kept.id).await.len(), 1);
    assert_eq!(fx.orphans().await, (0, 0));
    assert_eq!(fx.reload(&kept).await.event_count, 1);
}
