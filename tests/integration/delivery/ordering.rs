//! Ordered delivery per key (SPEC 9b): an ordered webhook gets the deliveries of one
//! ordering key one at a time, in publish order; a retrying delivery holds back only the
//! later deliveries of its own key, never other keys, unkeyed events or other webhooks.
//! (Across SIGKILL and two processes: `crate::ordered_crash`.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookboard::clock::Clock;
use hookboard::models::user::Role;
use hookboard::models::webhook::Status;
use hookboard::services::webhooks::Parked;
use serde_json::{Value, json};

use super::{Fixture, get};
use crate::receiver::{Behaviour, Decider, Receiver};

/// A booking event of `key`, the `seq`-th of its key.
fn keyed(key: &str, seq: u32) -> Value {
    json!({"type": "booking.created", "data": {"key": key, "seq": seq}, "ordering_key": key})
}

/// (key, seq) of a delivered body; unkeyed events have the key "-".
fn key_and_seq(body: &[u8]) -> (String, u64) {
    let body: Value = serde_json::from_slice(body).unwrap();
    let data = &body["data"];
    (
        data["key"].as_str().unwrap_or("-").to_owned(),
        data["seq"].as_u64().unwrap_or(0),
    )
}

/// The seq numbers each key's bodies arrived with, in arrival order.
fn arrivals_by_key(receiver: &Receiver) -> HashMap<String, Vec<u64>> {
    let mut by_key: HashMap<String, Vec<u64>> = HashMap::new();
    for request in receiver.requests() {
        let (key, seq) = key_and_seq(&request.body);
        by_key.entry(key).or_default().push(seq);
    }
    by_key
}

/// A receiver that answers 500 to key `A` while `down` is set, and 204 to everything else.
fn failing_key_a(down: &Arc<AtomicBool>) -> Receiver {
    let down = down.clone();
    Receiver::start(Behaviour::Decide(
        Decider(Arc::new(move |body| {
            if key_and_seq(body).0 == "A" && down.load(Ordering::SeqCst) {
                500
            } else {
                204
            }
        })),
        Duration::ZERO,
    ))
}

async fn publish_batch(fx: &Fixture, events: Vec<Value>) -> Vec<String> {
    let (status, body) = fx
        .post("/api/v1/events/batch", &json!({ "events": events }))
        .await;
    assert_eq!(status, 202, "{body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_retry_holds_back_only_the_later_deliveries_of_its_own_key() {
    let fx = Fixture::new().await;
    let down = Arc::new(AtomicBool::new(true));
    let (ordered_receiver, plain_receiver) = (failing_key_a(&down), failing_key_a(&down));
    let ordered = fx
        .webhook_with(&ordered_receiver.url, &["booking.created"], |input| {
            input.ordered = true
        })
        .await;
    let plain = fx.webhook(&plain_receiver.url).await;
    let ids = publish_batch(
        &fx,
        vec![
            keyed("A", 1),
            keyed("B", 1),
            keyed("A", 2),
            json!({"type": "booking.created", "data": {"seq": 1}}),
            keyed("B", 2),
            keyed("A", 3),
        ],
    )
    .await;

    let engine = fx.engine();
    let now = fx.app.clock.now();
    engine.run_due_once(now).await.unwrap();

    // The ordered webhook: A1 failed and holds A2 and A3 back; B went in order, and the
    // unkeyed event went at once.
    let by_key = arrivals_by_key(&ordered_receiver);
    assert_eq!(by_key["A"], [1], "only A1 was tried");
    assert_eq!(by_key["B"], [1, 2]);
    assert_eq!(by_key["-"], [1]);
    // The unordered webhook is not held back by anything.
    let plain_by_key = arrivals_by_key(&plain_receiver);
    let mut plain_a = plain_by_key["A"].clone();
    plain_a.sort_unstable();
    assert_eq!(plain_a, [1, 2, 3], "an unordered webhook sends every A at once");

    // The log says what each held-back delivery waits for, through the API...
    let (status, log) = get(
        &fx.app,
        &fx.key,
        &format!("/api/v1/webhooks/{}/deliveries", ordered.id),
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let deliveries = log["deliveries"].as_array().unwrap();
    let of = |event: &str| {
        deliveries
            .iter()
            .find(|d| d["event_id"] == event)
            .unwrap()
            .clone()
    };
    for held in [&ids[2], &ids[5]] {
        let delivery = of(held);
        assert_eq!(delivery["status"], "pending");
        assert_eq!(delivery["ordering_key"], "A");
        assert_eq!(delivery["waits_for"], ids[0].as_str(), "{delivery}");
    }
    assert_eq!(
        of(&ids[0])["waits_for"],
        Value::Null,
        "the first of its key waits for none"
    );
    assert_eq!(of(&ids[0])["attempt_count"], 1);
    let (_, plain_log) = get(
        &fx.app,
        &fx.key,
        &format!("/api/v1/webhooks/{}/deliveries", plain.id),
    )
    .await;
    assert!(
        plain_log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["ordering_key"].is_null() && d["waits_for"].is_null()),
        "an unordered webhook's deliveries carry no key: {plain_log}"
    );

    // ... and on the webhook page.
    let owner = fx
        .app
        .user_logged_in(&fx.tenant, "ops@alpine.example", Role::Owner)
        .await;
    let page = owner
        .get(&format!("/webhooks/{}", ordered.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Ordered per key"), "{page}");
    assert!(page.contains("1 key held back"), "{page}");
    assert!(
        page.contains(&format!("Held back: waits for <code>{}</code>", ids[0])),
        "{page}"
    );
    let table = owner.get("/webhooks").await.text().await.unwrap();
    assert_eq!(
        table.matches("Ordered per key").count(),
        1,
        "the table marks the ordered webhook only"
    );

    // The endpoint recovers: A1 goes on its retry, then A2, then A3.
    down.store(false, Ordering::SeqCst);
    let retry = now + chrono::Duration::seconds(13);
    fx.app.clock.set(retry);
    engine.run_due_once(retry).await.unwrap();
    assert_eq!(arrivals_by_key(&ordered_receiver)["A"], [1, 1, 2, 3]);
    let page = owner
        .get(&format!("/webhooks/{}", ordered.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("no key held back"), "{page}");
    assert_eq!(fx.count_by_status(ordered.id).await.get("succeeded"), Some(&6));
}

/// Two workers (as two processes would) share one ordered webhook with a slow endpoint:
/// never two deliveries of one key at the endpoint at once, and each key in order.
#[actix_web::test]
async fn two_workers_never_send_two_deliveries_of_one_key_at_once() {
    let fx = Fixture::new().await;
    let in_flight: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let overlaps: Arc<Mutex<Vec<String>>> = Arc::default();
    let receiver = {
        let (in_flight, overlaps) = (in_flight.clone(), overlaps.clone());
        Receiver::start(Behaviour::Decide(
            Decider(Arc::new(move |body| {
                let (key, _) = key_and_seq(body);
                {
                    let mut in_flight = in_flight.lock().unwrap();
                    let n = in_flight.entry(key.clone()).or_default();
                    *n += 1;
                    if *n > 1 {
                        overlaps.lock().unwrap().push(key.clone());
                    }
                }
                std::thread::sleep(Duration::from_millis(15));
                *in_flight.lock().unwrap().get_mut(&key).unwrap() -= 1;
                204
            })),
            Duration::ZERO,
        ))
    };
    fx.webhook_with(&receiver.url, &["booking.created"], |input| input.ordered = true)
        .await;
    let keys = ["K1", "K2", "K3", "K4"];
    let per_key = 25u32;
    let events: Vec<Value> = (1..=per_key)
        .flat_map(|seq| keys.iter().map(move |key| keyed(key, seq)))
        .collect();
    let (first, second) = (fx.start_worker(), fx.start_worker());
    publish_batch(&fx, events).await;
    super::wait_for(&receiver, keys.len() * per_key as usize).await;
    first.stop().await;
    second.stop().await;

    assert!(
        overlaps.lock().unwrap().is_empty(),
        "deliveries of one key overlapped: {:?}",
        overlaps.lock().unwrap()
    );
    let by_key = arrivals_by_key(&receiver);
    for key in keys {
        assert_eq!(
            by_key[key],
            (1..=u64::from(per_key)).collect::<Vec<_>>(),
            "{key} in publish order, each once"
        );
    }
    assert!(
        receiver.peak_concurrency() >= 2,
        "other keys went alongside (peak {})",
        receiver.peak_concurrency()
    );
}

/// A 410 switches the webhook off with the first of key A; what waited is parked, and
/// switched back on with "resend" it goes in order. Switching the webhook to unordered
/// frees what a failing key held back.
#[actix_web::test]
async fn disabling_parking_and_switching_back_on_keep_each_keys_order() {
    // The API saves the loopback receivers' http:// URLs.
    let fx = Fixture::with(&[
        ("HOOKBOARD_ALLOW_HTTP_TARGETS", "true"),
        ("HOOKBOARD_ALLOW_PRIVATE_TARGETS", "127.0.0.0/8"),
    ])
    .await;
    let gone = Arc::new(AtomicBool::new(true));
    let receiver = {
        let gone = gone.clone();
        Receiver::start(Behaviour::Decide(
            Decider(Arc::new(move |body| {
                if key_and_seq(body) == ("A".into(), 1) && gone.load(Ordering::SeqCst) {
                    410
                } else {
                    204
                }
            })),
            Duration::ZERO,
        ))
    };
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |input| input.ordered = true)
        .await;
    publish_batch(&fx, vec![keyed("A", 1), keyed("A", 2), keyed("A", 3)]).await;
    let now = fx.app.clock.now();
    fx.engine().run_due_once(now).await.unwrap();
    assert_eq!(fx.reload(&webhook).await.status, Status::AutoDisabled);
    assert_eq!(fx.count_by_status(webhook.id).await.get("parked"), Some(&2));

    gone.store(false, Ordering::SeqCst);
    fx.set_active(&webhook, true, Parked::Resend).await;
    fx.engine().run_due_once(now).await.unwrap();
    assert_eq!(
        arrivals_by_key(&receiver)["A"],
        [1, 2, 3],
        "A1 failed for good; A2 and A3 went after it, in order"
    );

    // Held back by a failing A1, then the webhook is switched to unordered: A2 goes.
    let down = Arc::new(AtomicBool::new(true));
    let failing = failing_key_a(&down);
    let other = fx
        .webhook_with(&failing.url, &["booking.created"], |input| input.ordered = true)
        .await;
    publish_batch(&fx, vec![keyed("A", 1), keyed("A", 2)]).await;
    fx.engine().run_due_once(now).await.unwrap();
    assert_eq!(arrivals_by_key(&failing)["A"], [1]);
    let (status, body) = super::patch(
        &fx.app,
        &fx.key,
        &format!("/api/v1/webhooks/{}", other.id),
        &json!({"ordered": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ordered"], false);
    fx.engine().run_due_once(now).await.unwrap();
    assert_eq!(arrivals_by_key(&failing)["A"], [1, 2], "A2 no longer waits");
}

#[actix_web::test]
async fn the_ordering_key_is_checked_stored_and_read_back() {
    let fx = Fixture::new().await;
    let long = "k".repeat(201);
    for (key, why) in [
        (json!(long), "more than 200 characters"),
        (json!(""), "empty"),
        (json!("BK\n1"), "a line break"),
        (json!(7), "not a string"),
    ] {
        let (status, body) = fx
            .publish(&json!({"type": "booking.created", "data": {}, "ordering_key": key}))
            .await;
        assert!(status == 422 || status == 400, "{why}: {status} {body}");
        if status == 422 {
            assert_eq!(body["error"]["field"], "ordering_key", "{why}: {body}");
        }
    }
    let (status, body) = fx
        .post(
            "/api/v1/events/batch",
            &json!({"events": [keyed("A", 1), {"type": "booking.created", "data": {}, "ordering_key": long}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "events[1].ordering_key");

    let key = "B".repeat(200);
    let (status, body) = fx
        .publish(&json!({"type": "booking.created", "data": {}, "ordering_key": key}))
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, event) = get(
        &fx.app,
        &fx.key,
        &format!("/api/v1/events/{}", body["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["ordering_key"], key.as_str());
}

/// One key, many events: each waits for the one before to be recorded; the rate is
/// printed (round trips per event), never asserted.
#[actix_web::test]
async fn one_key_keeps_its_order_over_many_events() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    fx.webhook_with(&receiver.url, &["booking.created"], |input| input.ordered = true)
        .await;
    let count = 200u32;
    let worker = fx.start_worker();
    let started = Instant::now();
    publish_batch(&fx, (1..=count).map(|seq| keyed("ONLY", seq)).collect()).await;
    super::wait_for(&receiver, count as usize).await;
    let took = started.elapsed();
    worker.stop().await;
    assert_eq!(
        arrivals_by_key(&receiver)["ONLY"],
        (1..=u64::from(count)).collect::<Vec<_>>()
    );
    println!(
        "[ordering] one key, {count} events in {took:?}: {:.0} events/s (debug build)",
        f64::from(count) / took.as_secs_f64()
    );
}
