//! The webhook table: filters, sorting and pages, hostile text, and the tool switched off.

use hookboard::models::tenant::Plan;
use hookboard::models::user::Role;

use super::{FORM, first_webhook, seed_webhook};
use crate::helpers::TestApp;
use crate::helpers::html::{parse, select, text};

#[actix_web::test]
async fn filters_sorting_and_pages_come_from_the_query_string() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    for i in 0..52 {
        let url = if i % 2 == 0 {
            format!("https://hooks.zapier.example/{i}")
        } else {
            format!("https://crm.example/{i}")
        };
        let events: &[&str] = if i % 3 == 0 {
            &["payment.completed"]
        } else {
            &["booking.created"]
        };
        seed_webhook(&app, &tenant, &url, events, i % 5 != 0).await;
    }
    let rows = |html: String| select(&parse(&html), "tr[id^=webhook-row-]").len();

    assert_eq!(rows(owner.get("/webhooks").await.text().await.unwrap()), 50);
    assert_eq!(rows(owner.get("/webhooks?page=2").await.text().await.unwrap()), 2);
    assert_eq!(
        rows(owner.get("/webhooks?url=ZAPIER").await.text().await.unwrap()),
        26
    );
    assert_eq!(
        rows(
            owner
                .get("/webhooks?event=payment.completed")
                .await
                .text()
                .await
                .unwrap()
        ),
        18
    );
    assert_eq!(
        rows(owner.get("/webhooks?status=inactive").await.text().await.unwrap()),
        11
    );
    assert_eq!(
        rows(
            owner
                .get("/webhooks?url=zapier&status=inactive")
                .await
                .text()
                .await
                .unwrap()
        ),
        6
    );
    assert_eq!(
        rows(owner.get("/webhooks?url=%25").await.text().await.unwrap()),
        0,
        "% is literal"
    );
    let junk = owner.get("/webhooks?page=abc&sort=drop&status=nope").await;
    assert_eq!(junk.status(), 200, "a broken bookmark still shows the table");

    let sorted = owner.get("/webhooks?sort=-number").await.text().await.unwrap();
    let first = select(&parse(&sorted), "tr[id^=webhook-row-] td.num a")
        .first()
        .map(text);
    assert_eq!(first.as_deref(), Some("52"));

    // htmx asks for the results only: rows, the pager and the export link out of band.
    let fragment = owner
        .htmx_get("/webhooks?url=zapier", "webhook-results")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        fragment
            .trim_start()
            .starts_with("<tbody id=\"webhook-results\">"),
        "{fragment}"
    );
    assert!(fragment.contains(r#"id="pager" aria-label="Pages" hx-swap-oob="true""#));
    assert!(fragment.contains(r#"href="/webhooks/export.xlsx?url=zapier""#));
    assert!(fragment.contains("26 webhooks"));
    let empty = owner
        .get("/webhooks?url=nothing-like-this")
        .await
        .text()
        .await
        .unwrap();
    assert!(empty.contains("No webhook matches these filters"));
}

#[actix_web::test]
async fn hostile_text_is_shown_inert_everywhere() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let hostile = r#"<script>alert(1)</script> "><img src=x onerror=alert(2)> hx-get="/logout""#;
    let response = owner
        .htmx_post(
            "/webhooks",
            &[
                ("url", "https://crm.example/in?q=\"><b>x</b>"),
                ("description", hostile),
                ("events", "booking.created"),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let webhook = first_webhook(&app, &tenant).await;
    for path in [
        "/webhooks".to_owned(),
        format!("/webhooks/{}", webhook.id),
        format!("/webhooks/{}/edit", webhook.id),
    ] {
        let html = owner.get(&path).await.text().await.unwrap();
        assert!(!html.contains("<script>alert(1)"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(!html.contains(r#" hx-get="/logout""#), "{path}");
        assert!(!html.contains("<b>x</b>"), "{path}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path}"
        );
    }
    // The delete confirmation, a dialog embedded in a page, shows the URL escaped too.
    let html = owner
        .get(&format!("/webhooks/{}/delete", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<b>x</b>"));
    assert!(html.contains("&#60;b&#62;x&#60;/b&#62;"), "{html}");
}

#[actix_web::test]
async fn with_the_tool_off_the_pages_are_read_only_behind_a_notice() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let owner = app
        .user_logged_in(&tenant, "ana@alpine.example", Role::Owner)
        .await;
    let page = owner.get("/webhooks").await.text().await.unwrap();
    assert!(page.contains("switched off under Apps &#62; Tools"));
    assert!(!page.contains("Add Webhook"));
    let refused = owner.htmx_post("/webhooks", FORM).await;
    assert_eq!(refused.status(), 403);

    let starter = app.create_tenant("Small Tours", Plan::Starter).await;
    let small = app
        .user_logged_in(&starter, "sam@small.example", Role::Owner)
        .await;
    let gate = small.get("/webhooks").await;
    assert_eq!(gate.status(), 403);
    assert!(gate.text().await.unwrap().contains("Scale plan"));
    assert_eq!(small.get("/webhooks/export.xlsx").await.status(), 403);
}
