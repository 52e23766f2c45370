//! The webhook page: configuration, health, the delivery log, the secret and the API key.

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::user::Role;

use super::{booking_webhook, delivery_statuses, find_webhook};
use crate::helpers::TestApp;
use crate::helpers::html::{parse, select};

#[actix_web::test]
async fn the_webhook_page_shows_configuration_health_and_every_attempt() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let webhook = booking_webhook(&app, &tenant, "https://crm.example/in").await;

    let sent = owner
        .htmx_post(
            &format!("/webhooks/{}/test", webhook.id),
            &[("type", "payment.completed")],
        )
        .await;
    assert_eq!(sent.status(), 200);
    assert!(
        sent.text()
            .await
            .unwrap()
            .contains("is on its way to webhook No 1")
    );
    let bad = owner
        .htmx_post(
            &format!("/webhooks/{}/test", webhook.id),
            &[("type", "nope.nope")],
        )
        .await;
    assert_eq!(bad.status(), 422);

    // Two attempts, as the delivery engine records them.
    let now = app.clock.now();
    let id = webhook.id;
    let delivery_id: i64 = app
        .with_conn(move |conn| {
            use hookboard::schema::{deliveries, delivery_attempts};
            let (delivery_id, tenant_id): (i64, i64) = deliveries::table
                .filter(deliveries::webhook_id.eq(id))
                .select((deliveries::id, deliveries::tenant_id))
                .first(conn)
                .unwrap();
            for (n, code, ok) in [(1, 500, false), (2, 204, true)] {
                diesel::insert_into(delivery_attempts::table)
                    .values((
                        delivery_attempts::delivery_id.eq(delivery_id),
                        delivery_attempts::tenant_id.eq(tenant_id),
                        delivery_attempts::webhook_id.eq(id),
                        delivery_attempts::attempt_number.eq(n),
                        delivery_attempts::started_at.eq(now - chrono::Duration::minutes(90 - n as i64)),
                        delivery_attempts::duration_ms.eq(37),
                        delivery_attempts::status_code.eq(code),
                        delivery_attempts::succeeded.eq(ok),
                        delivery_attempts::error_class.eq((!ok).then_some("http_status")),
                        delivery_attempts::error_message.eq((!ok).then_some("HTTP 500 from the endpoint")),
                        delivery_attempts::response_body.eq(Some(b"<h1>oops</h1>".to_vec())),
                    ))
                    .execute(conn)
                    .unwrap();
            }
            diesel::update(deliveries::table.find(delivery_id))
                .set((
                    deliveries::status.eq("succeeded"),
                    deliveries::done_on.eq(crate::helpers::done_on("succeeded", now)),
                    deliveries::attempt_count.eq(2),
                    deliveries::last_status_code.eq(204),
                ))
                .execute(conn)
                .unwrap();
            delivery_id
        })
        .await;

    let page = owner.get(&format!("/webhooks/{id}")).await.text().await.unwrap();
    let doc = parse(&page);
    assert!(page.contains("payment.completed") && page.contains("HTTP 500 from the endpoint"));
    assert!(
        page.contains("&#60;h1&#62;oops&#60;/h1&#62;"),
        "the stored response start, escaped"
    );
    assert!(
        page.contains("1 succeeded") && page.contains("1 failed"),
        "the chart's totals"
    );
    assert_eq!(
        select(&doc, "svg.health-chart g").len(),
        24,
        "one bar pair per hour"
    );
    assert_eq!(select(&doc, ".attempts tbody tr").len(), 2);
    assert!(
        page.contains("&#34;type&#34;:&#34;payment.completed&#34;"),
        "the request body"
    );

    // Filter by outcome; resend.
    let failed = owner
        .htmx_get(
            &format!("/webhooks/{id}/deliveries?outcome=failed"),
            "delivery-log",
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(failed.contains("No deliveries match these filters"));
    let resent = owner
        .htmx_post(&format!("/deliveries/{delivery_id}/resend"), &[])
        .await;
    assert_eq!(resent.status(), 200);
    assert_eq!(delivery_statuses(&app, id).await, ["pending"]);

    // Reveal and rotate the secret; a viewer may not.
    let revealed = owner
        .htmx_post(&format!("/webhooks/{id}/secret"), &[])
        .await
        .text()
        .await
        .unwrap();
    let secret = webhook.reveal_secret(&app.secrets()).unwrap();
    assert!(revealed.contains(&secret));
    let rotated = owner
        .htmx_post(&format!("/webhooks/{id}/secret/rotate"), &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(rotated.contains("both the new and the old secret"));
    let after = find_webhook(&app, &tenant, id).await;
    let signing = after.signing_secrets(&app.secrets(), now).unwrap();
    assert_eq!(signing.len(), 2);
    assert_eq!(signing[1], secret, "the old secret signs alongside");
    assert_eq!(
        after
            .signing_secrets(&app.secrets(), now + chrono::Duration::hours(25))
            .unwrap()
            .len(),
        1
    );

    let viewer = app
        .user_logged_in(&tenant, "vic@alpine.example", Role::Viewer)
        .await;
    assert_eq!(
        viewer
            .htmx_post(&format!("/webhooks/{id}/secret"), &[])
            .await
            .status(),
        403
    );
    let viewer_page = viewer.get(&format!("/webhooks/{id}")).await.text().await.unwrap();
    assert!(!viewer_page.contains("Reveal") && !viewer_page.contains("Resend"));

    // A new API key is shown once and replaces the old one.
    let regenerated = owner
        .htmx_post(&format!("/webhooks/{id}/api-key/regenerate"), &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(regenerated.contains("hbw_"));
    let off = owner.htmx_post(&format!("/webhooks/{id}/api-key"), &[]).await;
    assert_eq!(off.status(), 200);
    assert!(!find_webhook(&app, &tenant, id).await.api_key_enabled);
}
