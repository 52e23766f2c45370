//! Publishing and the API around deliveries: what the event API refuses and keeps
//! idempotent, publishing inside a transaction, a webhook's own key reading its events,
//! and the delivery log, resends and test events over the API.

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::delivery::outbox::{self, NewEvent};
use hookboard::models::api_key::ApiKey;
use serde_json::json;

use super::{Fixture, booking, get, post, tenant_key};
use crate::receiver::{Behaviour, Receiver};

#[actix_web::test]
async fn a_rolled_back_transaction_delivers_nothing() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    fx.webhook(&receiver.url).await;
    let now = fx.app.clock.now();
    let t = fx.tenant.clone();
    fx.app
        .with_conn(move |conn| {
            let _ = conn.transaction::<(), diesel::result::Error, _>(|conn| {
                let event = NewEvent {
                    kind: "booking.created".into(),
                    data: json!({}),
                    occurred_at: None,
                    connection: None,
                    language: None,
                    idempotency_key: None,
                    ordering_key: None,
                };
                outbox::publish(conn, &t, &[event], now).unwrap();
                Err(diesel::result::Error::RollbackTransaction)
            });
        })
        .await;
    assert_eq!(fx.engine().run_due_once(now).await.unwrap().attempted, 0);
    assert!(receiver.requests().is_empty());
}

#[actix_web::test]
async fn the_event_api_refuses_bad_input_clearly_and_keeps_idempotency() {
    let fx = Fixture::new().await;
    let mut keyed = booking("b");
    keyed["idempotency_key"] = json!("order-77");
    let (_, first) = fx.publish(&keyed).await;
    let (status, again) = fx.publish(&keyed).await;
    assert_eq!((status, &again), (202, &first), "the first result again");

    let cases = [
        (json!({"type": "booking.exploded", "data": {}}), 422, Some("type")),
        (json!({"type": "booking.created", "data": []}), 422, Some("data")),
        (
            json!({"type": "booking.created", "data": {}, "colour": "red"}),
            422,
            None,
        ),
        (json!({"type": 7, "data": {}}), 422, Some("type")),
        (
            json!({"type": "booking.created", "data": {}, "connection": "CTR-404"}),
            422,
            Some("connection"),
        ),
    ];
    for (body, expected, field) in cases {
        let (status, error) = fx.publish(&body).await;
        assert_eq!(status, expected, "{body} -> {error}");
        assert!(
            error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{error}");
        }
    }
    let big = json!({"type": "booking.created", "data": {"blob": "x".repeat(1024 * 1024)}});
    assert_eq!(fx.publish(&big).await.0, 413);
    let many = json!({"events": (0..501).map(|i| booking(&i.to_string())).collect::<Vec<_>>()});
    let (status, error) = fx.post("/api/v1/events/batch", &many).await;
    assert_eq!((status, error["error"]["field"].as_str()), (422, Some("events")));
    let bad_batch = json!({"events": [booking("ok"), {"type": "nope", "data": {}}]});
    let (status, error) = fx.post("/api/v1/events/batch", &bad_batch).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (422, Some("events[1].type"))
    );
    let count: i64 = fx
        .app
        .with_conn(|conn| hookboard::schema::events::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(count, 1, "a refused batch writes nothing");

    let (status, error) = post(&fx.app, "hbk_unknown", "/api/v1/events", &booking("x")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let tenant_id = fx.tenant.id;
    fx.app
        .with_conn(move |conn| {
            let key = ApiKey::list(conn, tenant_id).unwrap().remove(0);
            ApiKey::set_enabled(conn, tenant_id, key.id, false).unwrap();
        })
        .await;
    let (status, error) = fx.publish(&booking("x")).await;
    assert_eq!(status, 401);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("switched off")
    );
}

#[actix_web::test]
async fn a_webhooks_own_key_catches_up_on_its_event_types_only() {
    let fx = Fixture::new().await;
    let (_, webhook_key) = fx
        .app
        .create_webhook(&fx.tenant, "https://crm.example/in", &["booking.created"], |i| {
            i.active = false
        })
        .await;
    let (_, booked) = fx.publish(&booking("a")).await;
    let (_, paid) = fx
        .publish(&json!({"type": "payment.completed", "data": {"amount": 1}}))
        .await;
    fx.publish(&booking("b")).await;

    let (_, page) = get(&fx.app, &webhook_key, "/api/v1/events?limit=10").await;
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["booking.created", "booking.created"]);
    let after = format!("/api/v1/events?after={}&limit=10", booked["id"].as_str().unwrap());
    let (_, rest) = get(&fx.app, &webhook_key, &after).await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    let one = format!("/api/v1/events/{}", booked["id"].as_str().unwrap());
    assert_eq!(get(&fx.app, &webhook_key, &one).await.0, 200);
    let other = format!("/api/v1/events/{}", paid["id"].as_str().unwrap());
    assert_eq!(
        get(&fx.app, &webhook_key, &other).await.0,
        404,
        "not a type it subscribes to"
    );
    let (status, _) = post(&fx.app, &webhook_key, "/api/v1/events", &booking("c")).await;
    assert_eq!(status, 403, "a webhook key cannot publish");
    let (_, all) = get(&fx.app, &fx.key, "/api/v1/events").await;
    assert_eq!(
        all["events"].as_array().unwrap().len(),
        3,
        "a tenant key reads everything"
    );
}

#[actix_web::test]
async fn the_api_lists_deliveries_with_attempts_resends_and_sends_test_events() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(500);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| i.retry_on_error = false)
        .await;
    let (status, sent) = fx
        .post(
            &format!("/api/v1/webhooks/{}/test", webhook.id),
            &json!({"type": "payment.completed"}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let engine = fx.engine();
    engine.run_due_once(fx.app.clock.now()).await.unwrap();

    let deliveries = format!("/api/v1/webhooks/{}/deliveries", webhook.id);
    let (_, log) = get(&fx.app, &fx.key, &deliveries).await;
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["event_type"], "payment.completed");
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"][0]["status_code"], 500);
    assert_eq!(delivery["event_id"], sent["id"]);

    receiver.set(Behaviour::Answer(200, vec![], vec![]));
    let (status, _) = fx
        .post(
            &format!("/api/v1/deliveries/{}/resend", delivery["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        engine.run_due_once(fx.app.clock.now()).await.unwrap().succeeded,
        1
    );
    let requests = receiver.requests();
    assert_eq!(
        requests[0].headers["webhook-id"], requests[1].headers["webhook-id"],
        "a resend keeps the webhook-id"
    );

    let other = fx.app.scale_tenant("Other Travel").await;
    let other_key = tenant_key(&fx.app, &other).await;
    let (status, error) = post(
        &fx.app,
        &other_key,
        &format!("/api/v1/deliveries/{}/resend", delivery["id"]),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not_found")),
        "another tenant's id"
    );
}
