//! What goes on the wire and where it may go: the signed envelope, the data a webhook's
//! capabilities keep, and the guard against private addresses.

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::delivery::dispatcher::Summary;
use serde_json::{Value, json};

use super::{Fixture, booking};
use crate::receiver::Receiver;

#[actix_web::test]
async fn a_published_event_arrives_signed_and_verifies_with_a_standard_webhooks_library() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(204);
    let webhook = fx
        .webhook_with(&receiver.url, &["booking.created"], |i| {
            i.headers = vec![("Authorization".into(), "Bearer crm-token-123456".into())];
        })
        .await;
    let other = fx
        .webhook_with(&receiver.url, &["payment.completed"], |_| {})
        .await;

    let (status, accepted) = fx.publish(&booking("bkg_1")).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["type"], "booking.created");
    assert_eq!(accepted["deliveries"], 1, "only the subscribed webhook");
    let summary = fx.run_due().await;
    assert_eq!(
        summary,
        Summary {
            attempted: 1,
            succeeded: 1,
            failed: 0
        }
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let secret = webhook.reveal_secret(&fx.app.secrets()).unwrap();
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
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
    assert_eq!(request.headers["webhook-id"], accepted["id"].as_str().unwrap());
    assert_eq!(request.headers["x-hookboard-event"], "booking.created");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["authorization"], "Bearer crm-token-123456");
    assert!(request.headers["user-agent"].starts_with("Hookboard/"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let raw = String::from_utf8(request.body.clone()).unwrap();
    let positions: Vec<usize> = [
        "\"id\":",
        "\"type\":",
        "\"timestamp\":",
        "\"tenant\":",
        "\"connection\":",
        "\"data\":",
    ]
    .iter()
    .map(|key| raw.find(key).unwrap())
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]) && positions[0] == 1,
        "the envelope in wire order: {raw}"
    );
    assert_eq!(body["tenant"], fx.tenant.slug.as_str());
    assert_eq!(body["connection"], Value::Null);
    assert_eq!(body["data"]["id"], "bkg_1");

    let stored = fx.reload(&webhook).await;
    assert_eq!((stored.event_count, stored.error_count), (1, 0));
    assert_eq!(fx.reload(&other).await.event_count, 0);
    assert_eq!(fx.deliveries_of(webhook.id).await[0].0, "succeeded");
}

#[actix_web::test]
async fn capabilities_trim_the_data_and_the_customer_language_is_sent() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    fx.webhook_with(&receiver.url, &["booking.created"], |i| {
        i.capabilities = vec!["customer".into()];
        i.use_customer_language = true;
    })
    .await;
    fx.publish(&booking("b")).await;
    fx.run_due().await;
    let request = receiver.requests().remove(0);
    assert_eq!(request.headers["content-language"], "de");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert!(body["data"].get("pricing").is_none(), "pricing was not chosen");
    assert_eq!(body["data"]["customer"]["email"], "sofia@example.com");
    assert_eq!(body["data"]["localized"], json!({"de": {"name": "Rundgang"}}));
}

#[actix_web::test]
async fn the_ssrf_guard_refuses_private_addresses_literals_and_names_alike() {
    let fx = Fixture::new().await;
    let receiver = Receiver::answering(200);
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let urls = [
        receiver.url.clone(),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0x7f.0.0.1:{port}/hook"),
    ];
    for url in &urls {
        fx.webhook(url).await;
    }
    fx.publish(&booking("b")).await;
    let summary = fx
        .engine_with(false, "2s")
        .run_due_once(fx.app.clock.now())
        .await
        .unwrap();
    assert_eq!(summary.failed, urls.len());
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the private address"
    );
    let classes: Vec<(Option<String>, Option<String>)> = fx
        .app
        .with_conn(|conn| {
            use hookboard::schema::delivery_attempts as a;
            a::table
                .select((a::error_class, a::error_message))
                .load(conn)
                .unwrap()
        })
        .await;
    for (class, message) in classes {
        assert_eq!(class.as_deref(), Some("ssrf"), "{message:?}");
        assert!(message.unwrap().contains("loopback"));
    }
}
