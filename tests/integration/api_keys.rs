//! The tenant's API keys: shown once, stored hashed, switched off, deleted.

use crate::helpers::TestApp;
use crate::helpers::html::{parse, select};

#[actix_web::test]
async fn api_keys_are_shown_once_stored_hashed_switched_off_and_deleted() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let created = owner.submit("/api-keys", &[("name", "Booking platform")]).await;
    assert_eq!(created.status(), 201);
    let page = created.text().await.unwrap();
    let key = select(&parse(&page), "#new-key")[0]
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    assert!(key.starts_with("hbk_"));
    assert!(
        !owner.get("/api-keys").await.text().await.unwrap().contains(&key),
        "shown once"
    );
    assert_eq!(owner.submit("/api-keys", &[("name", "")]).await.status(), 422);

    let publish = || {
        let key = key.clone();
        let url = app.url("/api/v1/events");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({"type": "booking.created", "data": {}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(publish().await, 202);
    let tenant_id = tenant.id;
    let stored = app
        .with_conn(move |conn| {
            hookboard::models::api_key::ApiKey::list(conn, tenant_id)
                .unwrap()
                .remove(0)
        })
        .await;
    assert_eq!(stored.key_hash, hookboard::models::token_hash(&key));
    assert!(stored.last_used_at.is_some(), "last use is shown");
    assert!(
        owner
            .get("/api-keys")
            .await
            .text()
            .await
            .unwrap()
            .contains(&stored.prefix)
    );

    assert_eq!(
        owner
            .submit(&format!("/api-keys/{}/enabled", stored.id), &[])
            .await
            .status(),
        303
    );
    assert_eq!(publish().await, 401, "switched off");
    assert_eq!(
        owner
            .submit(&format!("/api-keys/{}/enabled", stored.id), &[("enabled", "on")])
            .await
            .status(),
        303
    );
    assert_eq!(publish().await, 202, "on again, nothing was deleted");
    assert_eq!(
        owner
            .submit(&format!("/api-keys/{}/delete", stored.id), &[])
            .await
            .status(),
        303
    );
    assert_eq!(publish().await, 401);
}
