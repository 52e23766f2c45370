//! The catch-up feed (`GET /api/v1/events`) is bounded by bytes as well as by count: a
//! page of large events never holds more than 5 MiB of bodies, and the cursor carries on.

use diesel::prelude::*;
use hookboard::services::events::MAX_PAGE_BYTES;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Publishes `count` bookings of about 900 KB each; their event ids, in order.
async fn publish_large(app: &TestApp, key: &str, count: usize) -> Vec<String> {
    let mut published = Vec::new();
    for i in 0..count {
        let event = json!({"type": "booking.created", "data": {"id": format!("bkg_{i}"), "notes": "x".repeat(900_000)}});
        let answer = app
            .client()
            .post(app.url("/api/v1/events"))
            .bearer_auth(key)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        published.push(
            answer.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    published
}

#[actix_web::test]
async fn large_events_come_over_several_pages_of_at_most_five_mib_each_exactly_once_in_order() {
    let app = TestApp::spawn().await;
    let tenant = app.scale_tenant("Alpine Tours").await;
    let key = app.tenant_key(&tenant).await;
    // Seven events of about 900 KB: 6.3 MB in all, more than one page's budget.
    let published = publish_large(&app, &key, 7).await;

    let mut read = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(after) => format!("/api/v1/events?limit=1000&after={after}"),
            None => "/api/v1/events?limit=1000".to_owned(),
        };
        let text = app
            .client()
            .get(app.url(&path))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let page: Value = serde_json::from_str(&text).unwrap();
        pages += 1;
        let events = page["events"].as_array().unwrap();
        assert!(
            !events.is_empty(),
            "a page with a cursor before it is never empty"
        );
        let bodies: usize = events.iter().map(|e| e["payload"].to_string().len()).sum();
        assert!(
            bodies as i64 <= MAX_PAGE_BYTES,
            "page {pages} holds {bodies} bytes of bodies"
        );
        read.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the cursor moves on");
    }
    assert!(pages >= 2, "6.3 MB needs more than one page");
    assert_eq!(read, published, "every event once, in order");

    // Each payload is the stored body, byte for byte.
    let first = published[0].clone();
    let stored: String = app
        .with_conn(move |conn| {
            use hookboard::schema::events;
            events::table
                .find(first)
                .select(events::body)
                .first(conn)
                .unwrap()
        })
        .await;
    let one = app
        .client()
        .get(app.url(&format!("/api/v1/events/{}", published[0])))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(one.contains(&stored), "the envelope is copied as stored");
}

#[actix_web::test]
async fn the_webhook_page_shows_the_start_of_large_bodies_and_loads_the_rest_on_demand() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let (webhook, _) = app
        .create_webhook(
            &tenant,
            "https://crm.alpine.example/hooks",
            &["booking.created"],
            |_| {},
        )
        .await;
    let key = app.tenant_key(&tenant).await;
    publish_large(&app, &key, 8).await;

    // 7.2 MB of bodies; the page shows the start of each.
    let page = owner
        .get(&format!("/webhooks/{}", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.len() < 300_000, "the page is {} bytes", page.len());
    assert!(page.contains("Show the whole body"));

    let webhook_id = webhook.id;
    let (delivery, stored): (i64, String) = app
        .with_conn(move |conn| {
            use hookboard::schema::{deliveries, events};
            deliveries::table
                .inner_join(events::table.on(events::id.eq(deliveries::event_id)))
                .filter(deliveries::webhook_id.eq(webhook_id))
                .select((deliveries::id, events::body))
                .first(conn)
                .unwrap()
        })
        .await;
    let whole = owner
        .htmx_get(&format!("/deliveries/{delivery}/body"), "body")
        .await;
    assert_eq!(whole.status(), 200);
    let html = whole.text().await.unwrap();
    assert!(
        html.starts_with("<pre class=\"payload\">") && html.len() > stored.len() - 100,
        "the whole body comes"
    );

    // Another tenant's staff reach none of it.
    let (_, other) = app
        .scale_tenant_with_owner("Baltic Trips", "bo@baltic.example")
        .await;
    assert_eq!(
        other.get(&format!("/deliveries/{delivery}/body")).await.status(),
        404
    );
}
