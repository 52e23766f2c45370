//! Filters at publish time (SPEC 9d): an event gets a delivery for a webhook only where its
//! filter is true; what a filter skips or fails on is counted on the webhook, the last
//! failure kept; a test event sent on purpose is not filtered; a webhook's key reads only
//! what its filter passes.

use hookboard::clock::Clock;
use hookboard::models::audit::Actor;
use hookboard::services::deliveries::send_test_in;
use serde_json::{Value, json};

use super::Fixture;

fn booking(product: i64, pax: i64) -> Value {
    json!({"type": "booking.created", "data": {"product": {"id": product}, "pax": pax}})
}

#[actix_web::test]
async fn an_event_is_delivered_only_where_the_filter_is_true_and_the_rest_is_counted() {
    let fx = Fixture::new().await;
    let filtered = fx
        .webhook_with("https://resellers.example/a", &["booking.created"], |i| {
            i.filter = Some("data.product.id in [12, 15] && data.pax >= 2".into())
        })
        .await;
    let plain = fx.webhook("https://crm.example/all").await;

    // Through the batch too: the counts are added in the batch's one update.
    let (status, accepted) = fx
        .post(
            "/api/v1/events/batch",
            &json!({"events": [booking(12, 2), booking(12, 1), booking(13, 4), booking(15, 3)]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let (status, _) = fx.publish(&booking(99, 9)).await;
    assert_eq!(status, 202);

    assert_eq!(
        fx.deliveries_of(filtered.id).await.len(),
        2,
        "products 12 (pax 2) and 15 (pax 3)"
    );
    assert_eq!(
        fx.deliveries_of(plain.id).await.len(),
        5,
        "no filter: every event"
    );
    let filtered = fx.reload(&filtered).await;
    assert_eq!(
        (
            filtered.event_count,
            filtered.filtered_count,
            filtered.filter_error_count
        ),
        (2, 3, 0)
    );
    assert_eq!(filtered.filter_last_error, None);
    let plain = fx.reload(&plain).await;
    assert_eq!((plain.event_count, plain.filtered_count), (5, 0));
}

#[actix_web::test]
async fn an_evaluation_error_counts_as_false_and_the_last_one_shows_on_the_webhook_page() {
    let fx = Fixture::new().await;
    let webhook = fx
        .webhook_with("https://resellers.example/b", &["booking.created"], |i| {
            i.filter = Some("data.product.id == 12".into())
        })
        .await;
    fx.publish(&booking(12, 1)).await;
    // No `product` in this one: the filter fails on it.
    let (status, _) = fx
        .publish(&json!({"type": "booking.created", "data": {"pax": 2}}))
        .await;
    assert_eq!(status, 202, "a failing filter never refuses the event");

    assert_eq!(fx.deliveries_of(webhook.id).await.len(), 1);
    let webhook = fx.reload(&webhook).await;
    assert_eq!(
        (
            webhook.event_count,
            webhook.filtered_count,
            webhook.filter_error_count
        ),
        (1, 1, 1)
    );
    let error = webhook.filter_last_error.clone().expect("the failure is kept");
    assert!(error.contains("product"), "{error}");
    assert!(webhook.filter_last_error_at.is_some());

    let owner = fx
        .app
        .user_logged_in(
            &fx.tenant,
            "owner@alpine.example",
            hookboard::models::user::Role::Owner,
        )
        .await;
    let page = owner
        .get(&format!("/webhooks/{}", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data.product.id == 12"),
        "the page shows the filter"
    );
    assert!(page.contains(r#"id="filter-error-count">1<"#), "{page}");
    assert!(
        page.contains("filter-last-error"),
        "the page shows the last failure"
    );
    let table = owner.get("/webhooks").await.text().await.unwrap();
    assert!(
        table.contains("chip-filter"),
        "the table shows that a filter is set"
    );
}

#[actix_web::test]
async fn a_test_event_sent_to_one_webhook_on_purpose_is_not_filtered() {
    let fx = Fixture::new().await;
    let webhook = fx
        .webhook_with("https://resellers.example/c", &["booking.created"], |i| {
            i.filter = Some("false".into())
        })
        .await;
    fx.publish(&booking(12, 2)).await;
    assert_eq!(fx.deliveries_of(webhook.id).await.len(), 0);
    let (tenant, id, now) = (fx.tenant.clone(), webhook.id, fx.app.clock.now());
    fx.app
        .with_conn(move |conn| {
            send_test_in(conn, tenant.id, id, "booking.created", &Actor::system(), now).unwrap()
        })
        .await;
    assert_eq!(
        fx.deliveries_of(webhook.id).await.len(),
        1,
        "the test event went out"
    );
}

async fn read(fx: &Fixture, key: &str, path: &str) -> (u16, Value) {
    let response = fx
        .app
        .client()
        .get(fx.app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn a_webhooks_key_reads_only_the_events_its_filter_passes() {
    let fx = Fixture::new().await;
    let (webhook, key) = fx
        .app
        .create_webhook(
            &fx.tenant,
            "https://resellers.example/d",
            &["booking.created"],
            |i| i.filter = Some("data.pax % 2 == 1".into()),
        )
        .await;
    let mut ids = Vec::new();
    for pax in 1..=5 {
        let (_, accepted) = fx.publish(&booking(12, pax)).await;
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = read(&fx, &key, "/api/v1/events?limit=100").await;
    assert_eq!(status, 200, "{page}");
    let read_ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        read_ids,
        [ids[0].as_str(), ids[2].as_str(), ids[4].as_str()],
        "pax 1, 3 and 5"
    );
    assert_eq!(page["next_after"], Value::Null);

    // A page of one, then on from its cursor.
    let (_, first) = read(&fx, &key, "/api/v1/events?limit=1").await;
    assert_eq!(first["events"][0]["id"], ids[0].as_str());
    let after = first["next_after"].as_str().expect("more follow").to_owned();
    let (_, second) = read(&fx, &key, &format!("/api/v1/events?limit=1&after={after}")).await;
    assert_eq!(second["events"][0]["id"], ids[2].as_str());

    assert_eq!(
        read(&fx, &key, &format!("/api/v1/events/{}", ids[2])).await.0,
        200
    );
    assert_eq!(
        read(&fx, &key, &format!("/api/v1/events/{}", ids[1])).await.0,
        404,
        "skipped by the filter"
    );
    // The tenant's key reads them all.
    let (_, all) = read(&fx, &fx.key, "/api/v1/events?limit=100").await;
    assert_eq!(all["events"].as_array().unwrap().len(), 5);
    assert_eq!(
        fx.deliveries_of(webhook.id).await.len(),
        3,
        "what it reads is what it received"
    );
}
