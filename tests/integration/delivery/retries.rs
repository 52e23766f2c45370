//! Retries and backoff: failed attempts retry on the schedule with the same bytes, until
//! the last one fails and the webhook is switched off.

use hookboard::clock::Clock;
use hookboard::models::webhook::Status;

use super::{Fixture, booking};
use crate::receiver::Receiver;

#[actix_web::test]
async fn failures_retry_on_the_schedule_with_identical_bytes_then_disable_the_webhook() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(500);
    let webhook = fx.webhook(&receiver.url).await;
    fx.publish(&booking("bkg_2")).await;
    let engine = fx.engine();

    let schedule = [10u64, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800];
    let mut now = fx.app.clock.now();
    assert_eq!(engine.run_due_once(now).await.unwrap().failed, 1);
    for (retry, seconds) in schedule.iter().enumerate() {
        let (status, attempts, next) = fx.deliveries_of(webhook.id).await.remove(0);
        assert_eq!((status.as_str(), attempts), ("pending", retry as i32 + 1));
        let wait = (next - now).num_milliseconds() as f64 / 1000.0;
        let expected = *seconds as f64;
        assert!(
            wait >= expected * 0.8 - 0.01 && wait <= expected * 1.2 + 0.01,
            "retry {}: waits {wait}s, schedule {expected}s",
            retry + 1
        );
        assert_eq!(
            engine
                .run_due_once(next - chrono::Duration::milliseconds(1))
                .await
                .unwrap()
                .attempted,
            0,
            "not before it is due"
        );
        now = next;
        fx.app.clock.set(now);
        assert_eq!(engine.run_due_once(now).await.unwrap().failed, 1);
    }
    let (status, attempts, _) = fx.deliveries_of(webhook.id).await.remove(0);
    assert_eq!((status.as_str(), attempts), ("failed", 11));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 11, "one attempt and ten retries");
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "byte-identical on every attempt"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.headers["webhook-id"] == requests[0].headers["webhook-id"])
    );
    let stored = fx.reload(&webhook).await;
    assert_eq!(stored.status, Status::AutoDisabled);
    assert!(stored.disabled_reason.unwrap().contains("All 10 retries"));
    assert_eq!(stored.error_count, 11);

    // While disabled, new events are parked, not lost.
    fx.publish(&booking("bkg_3")).await;
    assert_eq!(fx.deliveries_of(webhook.id).await[1].0, "parked");
    assert_eq!(engine.run_due_once(now).await.unwrap().attempted, 0);
}
