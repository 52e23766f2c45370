//! Switching a failing webhook off by itself: a run of failures without retries, or an
//! endpoint that says it is gone. Redirects are failures too, and never followed.

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::webhook::Status;

use super::{Fixture, booking};
use crate::receiver::{Behaviour, Receiver};

#[actix_web::test]
async fn without_retries_eleven_failed_deliveries_in_a_row_disable_and_a_success_resets_the_count() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(503);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.retry_on_error = false)
        .await;
    let engine = fx.engine();
    for i in 0..10 {
        fx.publish(&booking(&format!("b{i}"))).await;
    }
    engine.run_due_once(fx.app.clock.now()).await.unwrap();
    assert_eq!(fx.reload(&webhook).await.consecutive_failures, 10);
    receiver.set(Behaviour::Answer(200, vec![], vec![]));
    fx.publish(&booking("ok")).await;
    engine.run_due_once(fx.app.clock.now()).await.unwrap();
    assert_eq!(
        fx.reload(&webhook).await.consecutive_failures,
        0,
        "a success resets the count"
    );
    receiver.set(Behaviour::Answer(500, vec![], vec![]));
    for i in 0..11 {
        fx.publish(&booking(&format!("c{i}"))).await;
    }
    let summary = engine.run_due_once(fx.app.clock.now()).await.unwrap();
    assert_eq!(summary.failed, 11);
    let stored = fx.reload(&webhook).await;
    assert_eq!(stored.status, Status::AutoDisabled);
    assert!(stored.disabled_reason.unwrap().contains("11 deliveries in a row"));
    assert!(
        fx.deliveries_of(webhook.id)
            .await
            .iter()
            .all(|(s, _, _)| s != "pending"),
        "no retries"
    );
}

#[actix_web::test]
async fn gone_disables_at_once_and_redirects_are_never_followed() {
    let fx = Fixture::new().await;
    let target = Receiver::answering(200);
    let redirecting = Receiver::start(Behaviour::Answer(
        302,
        vec![("Location".into(), target.url.clone())],
        vec![],
    ));
    let gone = Receiver::answering(410);
    let redirect_hook = fx.webhook(&redirecting.url).await;
    let gone_hook = fx.webhook(&gone.url).await;
    fx.publish(&booking("b")).await;
    fx.run_due().await;

    assert!(target.requests().is_empty(), "the redirect was not followed");
    let (status, _, _) = fx.deliveries_of(redirect_hook.id).await.remove(0);
    assert_eq!(status, "pending", "3xx is a failure that retries");
    let error: Option<String> = {
        let id = redirect_hook.id;
        fx.app
            .with_conn(move |conn| {
                use hookboard::schema::delivery_attempts as a;
                a::table
                    .filter(a::webhook_id.eq(id))
                    .select(a::error_class)
                    .first(conn)
                    .unwrap()
            })
            .await
    };
    assert_eq!(error.as_deref(), Some("redirect"));
    let stored = fx.reload(&gone_hook).await;
    assert_eq!(stored.status, Status::AutoDisabled);
    assert!(stored.disabled_reason.unwrap().contains("410"));
}
