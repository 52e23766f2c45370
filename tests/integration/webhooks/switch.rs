//! The on/off switch of a row, and what it does with parked deliveries.

use diesel::prelude::*;
use hookboard::models::webhook::Status;

use super::{booking_webhook, delivery_statuses, find_webhook, park_deliveries, test_delivery};
use crate::helpers::TestApp;

#[actix_web::test]
async fn the_switch_flips_in_place_and_switching_back_on_asks_about_parked_deliveries() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let webhook = booking_webhook(&app, &tenant, "https://crm.example/in").await;

    // Off: the row comes back switched off, and pending deliveries are parked.
    test_delivery(&app, &tenant, &webhook).await;
    let off = owner
        .htmx_post(&format!("/webhooks/{}/toggle", webhook.id), &[])
        .await;
    assert_eq!(off.status(), 200);
    assert_eq!(
        off.headers()["HX-Retarget"],
        format!("#webhook-row-{}", webhook.id).as_str()
    );
    let row = off.text().await.unwrap();
    assert!(
        row.trim_start()
            .starts_with(&format!("<tr id=\"webhook-row-{}\"", webhook.id)),
        "{row}"
    );
    assert!(row.contains(r#"aria-checked="false""#));
    assert_eq!(delivery_statuses(&app, webhook.id).await, ["parked"]);

    // Auto-disabled with parked deliveries: switching on asks first.
    let id = webhook.id;
    app.with_conn(move |conn| {
        use hookboard::schema::webhooks;
        diesel::update(webhooks::table.find(id))
            .set((
                webhooks::status.eq("auto_disabled"),
                webhooks::disabled_reason.eq("HTTP 410 Gone from the endpoint"),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
    park_deliveries(&app, &tenant, &webhook, 1).await;
    let table = owner.get("/webhooks").await.text().await.unwrap();
    assert!(
        table.contains("HTTP 410 Gone from the endpoint"),
        "auto-disabled rows say why"
    );
    let ask = owner.htmx_post(&format!("/webhooks/{id}/toggle"), &[]).await;
    assert_eq!(ask.headers()["HX-Retarget"], "#dialog");
    let dialog = ask.text().await.unwrap();
    assert!(
        dialog.contains("<strong>2</strong> deliveries were parked"),
        "{dialog}"
    );
    assert!(dialog.contains("resend them") && dialog.contains("drop them"));
    assert_eq!(
        delivery_statuses(&app, id).await,
        ["parked", "parked"],
        "nothing changes before the answer"
    );

    let resend = owner
        .htmx_post(&format!("/webhooks/{id}/toggle"), &[("parked", "resend")])
        .await;
    let body = resend.text().await.unwrap();
    assert!(body.contains(r#"aria-checked="true""#) && body.contains("2 parked deliveries are being resent"));
    assert_eq!(delivery_statuses(&app, id).await, ["pending", "pending"]);

    // Off and on again, dropping what was parked.
    owner.htmx_post(&format!("/webhooks/{id}/toggle"), &[]).await;
    owner
        .htmx_post(&format!("/webhooks/{id}/toggle"), &[("parked", "drop")])
        .await;
    assert_eq!(delivery_statuses(&app, id).await, ["cancelled", "cancelled"]);
    let stored = find_webhook(&app, &tenant, id).await;
    assert_eq!((stored.status, stored.disabled_reason), (Status::Active, None));
}
