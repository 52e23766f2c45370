//! Adding and editing a webhook: the form, its errors, the plan's limit.

use diesel::prelude::*;
use hookboard::models::webhook::{Status, Webhook};

use super::{FORM, booking_webhook, find_webhook, first_webhook, webhook_count};
use crate::helpers::TestApp;
use crate::helpers::html::{parse, select, text};

#[actix_web::test]
async fn an_owner_adds_a_webhook_the_table_updates_and_the_key_is_shown_once() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;

    let empty = owner.get("/webhooks").await.text().await.unwrap();
    assert!(
        empty.contains("No webhooks yet"),
        "the empty state explains webhooks"
    );
    let headers: Vec<String> = select(&parse(&empty), "#webhook-table thead tr:first-child th")
        .iter()
        .map(text)
        .collect();
    assert_eq!(
        headers,
        [
            "No",
            "Endpoint",
            "Connection",
            "Access Type",
            "Events",
            "Error Count",
            "Status",
            "Actions"
        ]
    );

    let response = owner.htmx_post("/webhooks", FORM).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["HX-Retarget"], "#webhook-results");
    let fragment = response.text().await.unwrap();
    assert!(!fragment.contains("<html"), "a fragment");
    // Table parts parse only inside a table.
    let doc = parse(&format!("<table>{fragment}</table>"));
    let rows = select(&doc, "tbody#webhook-results tr[id^=webhook-row-]");
    assert_eq!(rows.len(), 1);
    assert!(text(&rows[0]).contains("https://crm.alpine.example/hooks/bookings"));
    let key_input = select(&doc, "#dialog #created-key");
    let key = key_input[0].value().attr("value").unwrap().to_owned();
    assert!(key.starts_with("hbw_"), "{key}");

    let tenant_id = tenant.id;
    let (webhook, hash, audit): (Webhook, String, Vec<String>) = app
        .with_conn(move |conn| {
            use hookboard::schema::{audit_log, webhooks};
            let webhook = Webhook::list(conn, tenant_id, &Default::default())
                .unwrap()
                .rows
                .remove(0);
            let hash = webhooks::table
                .find(webhook.id)
                .select(webhooks::api_key_hash)
                .first(conn)
                .unwrap();
            let audit = audit_log::table
                .filter(audit_log::tenant_id.eq(tenant_id))
                .select(audit_log::action)
                .load(conn)
                .unwrap();
            (webhook, hash, audit)
        })
        .await;
    assert_eq!(webhook.number, 1);
    assert_eq!(webhook.events, ["booking.cancelled", "booking.created"]);
    assert_eq!(webhook.status, Status::Active);
    assert_eq!(
        hash,
        hookboard::models::token_hash(&key),
        "only the hash of the key is kept"
    );
    assert!(
        !String::from_utf8_lossy(&webhook.secret_ciphertext).contains("whsec_"),
        "the secret is sealed"
    );
    assert!(
        webhook
            .reveal_secret(&app.secrets())
            .unwrap()
            .starts_with("whsec_")
    );
    assert!(audit.contains(&"webhook.created".to_owned()));

    // The key is not on any page afterwards.
    let page = owner
        .get(&format!("/webhooks/{}", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&key) && !page.contains("sk_live_0123456789"));
    assert!(page.contains("Bearer ••••6789"), "credentials are masked");
}

#[actix_web::test]
async fn bad_input_is_refused_next_to_each_field_and_the_typed_values_are_kept() {
    let (_app, _, owner) = TestApp::spawn_with_scale_owner().await;
    let bad = [
        ("url", "https://10.0.0.8/internal"),
        ("description", "Keep <me> as typed"),
        ("header_name", "Content-Type"),
        ("header_value", "text/plain"),
        ("capabilities", "everything"),
    ];
    let response = owner.htmx_post("/webhooks", &bad).await;
    assert_eq!(response.status(), 422);
    assert_eq!(response.headers()["HX-Retarget"], "#dialog");
    let html = response.text().await.unwrap();
    let doc = parse(&html);
    let errors: Vec<String> = select(&doc, ".field-error").iter().map(text).collect();
    assert!(errors.iter().any(|e| e.contains("private address")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("at least one event")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("set by Hookboard")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("not a capability")),
        "{errors:?}"
    );
    assert_eq!(
        select(&doc, "#webhook-url")[0].value().attr("value"),
        Some("https://10.0.0.8/internal")
    );
    assert_eq!(
        text(&select(&doc, "#webhook-description")[0]),
        "Keep <me> as typed"
    );
    assert!(html.contains("Keep &#60;me&#62; as typed"), "escaped");
    assert_eq!(
        select(&doc, "#header-name-1")[0].value().attr("value"),
        Some("Content-Type")
    );

    // Without JavaScript, the same form comes back as a page.
    let page = owner.submit("/webhooks", &bad).await;
    assert_eq!(page.status(), 422);
    assert!(page.text().await.unwrap().contains("<html"));
}

#[actix_web::test]
async fn the_plan_allows_at_most_100_webhooks() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    for i in 0..100 {
        booking_webhook(&app, &tenant, &format!("https://hooks{i}.example/in")).await;
    }
    let response = owner.htmx_post("/webhooks", FORM).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("at most 100 webhooks"), "{html}");
    assert_eq!(webhook_count(&app, &tenant).await, 100);
}

#[actix_web::test]
async fn editing_prefills_the_form_and_a_masked_credential_stays_unchanged() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    owner.htmx_post("/webhooks", FORM).await;
    let webhook = first_webhook(&app, &tenant).await;

    let form = owner
        .htmx_get(&format!("/webhooks/{}/edit", webhook.id), "dialog")
        .await
        .text()
        .await
        .unwrap();
    let doc = parse(&form);
    assert_eq!(
        select(&doc, "#webhook-url")[0].value().attr("value"),
        Some("https://crm.alpine.example/hooks/bookings")
    );
    assert_eq!(select(&doc, "input[name=events][checked]").len(), 2);
    assert_eq!(
        select(&doc, "#header-value-1")[0].value().attr("value"),
        Some("Bearer ••••6789")
    );
    assert!(!form.contains("sk_live_0123456789"));

    let edited = [
        ("url", "https://crm.alpine.example/hooks/v2"),
        ("events", "booking.created"),
        ("active", "on"),
        ("header_name", "Authorization"),
        ("header_value", "Bearer ••••6789"),
    ];
    let response = owner
        .htmx_post(&format!("/webhooks/{}", webhook.id), &edited)
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Webhook No 1 saved."));
    let stored = find_webhook(&app, &tenant, webhook.id).await;
    assert_eq!(stored.url, "https://crm.alpine.example/hooks/v2");
    assert_eq!(
        stored.headers(&app.secrets()).unwrap(),
        [("Authorization".to_owned(), "Bearer sk_live_0123456789".to_owned())]
    );
    assert!(!stored.api_key_enabled, "an unticked switch saves as off");
}

#[actix_web::test]
async fn ordered_per_key_is_a_switch_of_the_form_shown_on_the_page_and_in_the_table() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let mut form = FORM.to_vec();
    form.push(("ordered", "on"));
    assert_eq!(owner.htmx_post("/webhooks", &form).await.status(), 200);
    let webhook = first_webhook(&app, &tenant).await;
    assert!(webhook.ordered, "the ticked switch saves as ordered");

    let edit = owner
        .htmx_get(&format!("/webhooks/{}/edit", webhook.id), "dialog")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        select(&parse(&edit), "#webhook-ordered[checked]").len(),
        1,
        "the edit form shows it on"
    );
    let page = owner
        .get(&format!("/webhooks/{}", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        text(&select(&parse(&page), "#ordering")[0]),
        "Ordered per key · no key held back"
    );
    let table = owner.get("/webhooks").await.text().await.unwrap();
    assert_eq!(select(&parse(&table), ".chip-ordered").len(), 1);

    // Saved without the switch: off again, and said so.
    let response = owner.htmx_post(&format!("/webhooks/{}", webhook.id), FORM).await;
    assert_eq!(response.status(), 200);
    assert!(!find_webhook(&app, &tenant, webhook.id).await.ordered);
    let page = owner
        .get(&format!("/webhooks/{}", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text(&select(&parse(&page), "#ordering")[0]), "Not ordered");
}

#[actix_web::test]
async fn the_audit_log_says_in_words_what_an_edit_changed_with_the_json_one_click_away() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    owner.htmx_post("/webhooks", FORM).await;
    let webhook = first_webhook(&app, &tenant).await;
    let mut edited: Vec<(&str, &str)> = FORM
        .iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == "url" {
                    "https://crm.alpine.example/hooks/v2"
                } else {
                    *v
                },
            )
        })
        .collect();
    edited.push(("ordered", "on"));
    let saved = owner
        .htmx_post(&format!("/webhooks/{}", webhook.id), &edited)
        .await;
    assert_eq!(saved.status(), 200);

    let page = owner.get("/audit").await.text().await.unwrap();
    let doc = parse(&page);
    let cells = select(&doc, "td.audit-details");
    let latest = text(&cells[0]);
    assert!(
        latest.contains(
            "Endpoint: https://crm.alpine.example/hooks/bookings → https://crm.alpine.example/hooks/v2"
        ) && latest.contains("Ordered per key: off → on"),
        "{latest}"
    );
    assert!(
        !latest.contains("Custom headers"),
        "headers saved back unchanged are no change: {latest}"
    );
    assert!(
        !page.contains("sk_live_0123456789"),
        "header values never reach the log"
    );
    let json = select(&doc, "td.audit-details details pre");
    assert!(!json.is_empty(), "the stored JSON is one click away");
    assert!(text(&json[0]).contains("\"changes\""));
    // The entry of the creation reads as text too.
    let created = text(&cells[1]);
    assert!(
        created.contains("Endpoint https://crm.alpine.example/hooks/bookings"),
        "{created}"
    );
}
