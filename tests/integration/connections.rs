//! Connections over HTTP: creating, scoping webhooks to one, renaming, deleting.

use hookboard::models::connection::Connection;
use hookboard::models::tenant::Tenant;

use crate::helpers::TestApp;
use crate::helpers::html::{parse, select};

/// The tenant's first connection.
pub async fn first_connection(app: &TestApp, tenant: &Tenant) -> Connection {
    let tenant_id = tenant.id;
    app.with_conn(move |conn| Connection::list(conn, tenant_id).unwrap().remove(0))
        .await
}

#[actix_web::test]
async fn connections_scope_webhooks_and_cannot_go_while_in_use() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    assert_eq!(
        owner
            .submit(
                "/connections",
                &[("name", "Alpine Partners"), ("external_id", "CTR-2041")]
            )
            .await
            .status(),
        303
    );
    let duplicate = owner
        .submit("/connections", &[("name", "Again"), ("external_id", "CTR-2041")])
        .await;
    assert_eq!(duplicate.status(), 422);
    assert!(duplicate.text().await.unwrap().contains("exists already"));
    let empty = owner
        .submit("/connections", &[("name", ""), ("external_id", "")])
        .await;
    assert_eq!(empty.status(), 422);

    let connection = first_connection(&app, &tenant).await;
    let scoped = [
        ("url", "https://crm.example/in"),
        ("events", "booking.created"),
        ("connection", &connection.id.to_string()),
        ("active", "on"),
    ];
    assert_eq!(owner.htmx_post("/webhooks", &scoped).await.status(), 200);
    let foreign = [
        ("url", "https://crm.example/in"),
        ("events", "booking.created"),
        ("connection", "999999"),
    ];
    let refused = owner.htmx_post("/webhooks", &foreign).await;
    assert_eq!(refused.status(), 422);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Choose one of your connections")
    );

    let filtered = owner
        .get(&format!("/webhooks?connection={}", connection.id))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(select(&parse(&filtered), "tr[id^=webhook-row-]").len(), 1);
    assert!(filtered.contains("Alpine Partners"));

    let in_use = owner
        .submit(&format!("/connections/{}/delete", connection.id), &[])
        .await;
    assert_eq!(in_use.status(), 409);
    assert!(in_use.text().await.unwrap().contains("is used by 1 webhook"));
    assert_eq!(
        owner
            .submit(
                &format!("/connections/{}", connection.id),
                &[("name", "Alpine Partners AG")]
            )
            .await
            .status(),
        303
    );
    let page = owner.get("/connections").await.text().await.unwrap();
    assert!(page.contains("Alpine Partners AG"));
}
