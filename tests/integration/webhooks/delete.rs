//! Deleting a webhook, with htmx and without JavaScript.

use super::{booking_webhook, park_deliveries, webhook_count};
use crate::helpers::TestApp;

#[actix_web::test]
async fn delete_asks_first_then_removes_the_row_and_cancels_waiting_deliveries() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let keep = booking_webhook(&app, &tenant, "https://keep.example/in").await;
    let gone = booking_webhook(&app, &tenant, "https://gone.example/in").await;
    park_deliveries(&app, &tenant, &gone, 2).await;

    let ask = owner
        .htmx_get(&format!("/webhooks/{}/delete", gone.id), "dialog")
        .await
        .text()
        .await
        .unwrap();
    assert!(ask.contains("Delete webhook No 2?") && ask.contains("cannot be recovered"));
    assert!(ask.contains(&format!(r#"hx-delete="/webhooks/{}""#, gone.id)));

    let token = owner.csrf_token("/").await;
    let response = owner
        .client
        .delete(format!("{}/webhooks/{}", owner.base, gone.id))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.contains(&format!("webhook-row-{}", keep.id))
            && !body.contains(&format!("webhook-row-{}", gone.id))
    );
    assert!(body.contains("2 waiting deliveries were cancelled"));
    assert!(
        body.contains(r#"<div id="dialog" hx-swap-oob="innerHTML"></div>"#),
        "the dialog closes"
    );
    assert_eq!(webhook_count(&app, &tenant).await, 1);

    // Without JavaScript: a confirmation page, then a POST.
    let page = owner
        .get(&format!("/webhooks/{}/delete", keep.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html") && page.contains(&format!(r#"action="/webhooks/{}/delete""#, keep.id)));
    assert_eq!(
        owner
            .submit(&format!("/webhooks/{}/delete", keep.id), &[])
            .await
            .status(),
        303
    );
    assert_eq!(webhook_count(&app, &tenant).await, 0);
}
