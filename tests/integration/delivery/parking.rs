//! Switching webhooks off and on, editing and deleting them: what happens to their
//! deliveries, parked, queued by a worker, or stored.

use std::time::{Duration, Instant};

use hookboard::clock::Clock;
use hookboard::delivery::dispatcher;
use hookboard::models::webhook::Webhook;
use hookboard::services::webhooks::Parked;
use hookboard::validation::webhook::Input;

use super::{Fixture, booking, wait_for};
use crate::receiver::{Behaviour, Receiver};

#[actix_web::test]
async fn parked_deliveries_are_resent_or_dropped_when_the_webhook_comes_back() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.active = false)
        .await;
    fx.publish(&booking("a")).await;
    fx.publish(&booking("b")).await;
    let engine = fx.engine();
    assert_eq!(
        engine.run_due_once(fx.app.clock.now()).await.unwrap().attempted,
        0,
        "inactive: parked"
    );
    assert_eq!(
        fx.reload(&webhook).await.event_count,
        2,
        "the counter grows per fan-out"
    );
    fx.set_active(&webhook, true, Parked::Resend).await;
    assert_eq!(
        engine.run_due_once(fx.app.clock.now()).await.unwrap().succeeded,
        2
    );
    fx.set_active(&webhook, false, Parked::Keep).await;
    fx.publish(&booking("c")).await;
    fx.set_active(&webhook, true, Parked::Drop).await;
    assert_eq!(
        engine.run_due_once(fx.app.clock.now()).await.unwrap().attempted,
        0
    );
    assert_eq!(receiver.requests().len(), 2);
}

/// Deliveries a worker already queued follow an edit of their webhook: once the address
/// changes, the rest go to the new address (the old one gets only those in flight), each
/// exactly once.
#[actix_web::test]
async fn queued_deliveries_follow_an_edit_of_their_webhook() {
    let fx = Fixture::new().await;
    let old = Receiver::start(Behaviour::Slow(Duration::from_millis(50)));
    let new = Receiver::answering(204);
    let webhook = fx.webhook(&old.url).await;
    fx.publish_many(300).await;
    let worker = fx.start_worker();
    wait_for(&old, 20).await;
    let (tenant_id, id, url, secrets) = (fx.tenant.id, webhook.id, new.url.clone(), fx.app.secrets());
    fx.app
        .with_conn(move |conn| {
            let input = Input {
                url,
                events: vec!["booking.created".into()],
                ..Input::default()
            };
            // What the edit service does: save, then wake the workers.
            let saved = Webhook::update(
                conn,
                tenant_id,
                id,
                &crate::helpers::valid(input.clone()),
                &secrets,
            )
            .unwrap();
            hookboard::models::delivery::notify(conn).unwrap();
            saved
        })
        .await;
    let at_edit = old.requests().len();
    wait_for(&new, 300 - at_edit - 2 * dispatcher::PER_WEBHOOK).await;
    let after_edit = old.requests().len() - at_edit;
    let started = Instant::now();
    while old.requests().len() + new.requests().len() < 300 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not all deliveries went out"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await;
    assert!(
        after_edit <= 2 * dispatcher::PER_WEBHOOK,
        "{after_edit} deliveries went to the old address after the edit"
    );
    let mut ids: Vec<String> = old
        .requests()
        .iter()
        .chain(new.requests().iter())
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300, "each delivery went out once");
    assert_eq!(old.requests().len() + new.requests().len(), 300);
    assert_eq!(
        fx.count_by_status(webhook.id).await.get("succeeded").copied(),
        Some(300)
    );
}

/// A webhook deleted while the worker holds a queue for it gets nothing more than what
/// was already in flight.
#[actix_web::test]
async fn a_deleted_webhooks_queue_is_dropped() {
    let fx = Fixture::new().await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(100)));
    let webhook = fx.webhook(&receiver.url).await;
    fx.publish_many(300).await;
    let worker = fx.start_worker();
    wait_for(&receiver, 40).await;
    fx.delete(&webhook).await;
    let at_delete = receiver.requests().len();
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    let sent_after = receiver.requests().len() - at_delete;
    // In flight, plus what lanes start before the next claim notices (after 8 ended);
    // a queue sent to the end would be up to 64.
    assert!(
        sent_after <= 2 * dispatcher::PER_WEBHOOK + 4,
        "{sent_after} deliveries went out after the delete"
    );
    worker.stop().await;
}

#[actix_web::test]
async fn deleting_a_webhook_takes_its_deliveries_and_attempts_with_it() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let gone = fx.webhook(&receiver.url).await;
    fx.webhook(&receiver.url).await;
    fx.publish_many(3).await;
    fx.run_due().await;
    fx.publish_many(2).await;
    assert_eq!(fx.row_counts().await, (6, 10, 5));

    let waiting = fx.delete(&gone).await;
    assert_eq!(waiting, 2, "the two not yet sent were waiting");
    assert_eq!(fx.row_counts().await, (3, 5, 5), "the other webhook's rows stay");
    assert_eq!(fx.orphans().await, (0, 0));
}
