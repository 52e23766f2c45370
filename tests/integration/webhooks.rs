//! The webhook pages over HTTP: the table, the form, the switch, delete, the webhook page,
//! connections, the catalog and the Excel export, against the real app and database.

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::audit::Actor;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::user::Role;
use hookboard::models::webhook::{Status, Webhook};
use hookboard::services::deliveries::send_test_in;
use hookboard::validation::webhook::Input;

use crate::helpers::TestApp;

fn select<'a>(doc: &'a scraper::Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&scraper::Selector::parse(css).unwrap()).collect()
}

fn parse(html: &str) -> scraper::Html {
    scraper::Html::parse_document(html)
}

fn text(element: &scraper::ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates a webhook directly through the model (fast, for arranging many rows).
async fn seed_webhook(
    app: &TestApp,
    tenant: &Tenant,
    url: &str,
    events: &[&str],
    active: bool,
) -> (Webhook, String) {
    let tenant_id = tenant.id;
    let secrets = app.secrets();
    let input = Input {
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        active,
        ..Input::default()
    };
    app.with_conn(move |conn| Webhook::create(conn, tenant_id, &input, &secrets).unwrap())
        .await
}

const FORM: &[(&str, &str)] = &[
    ("url", "https://crm.alpine.example/hooks/bookings"),
    ("description", "Bookings to the CRM"),
    ("events", "booking.created"),
    ("events", "booking.cancelled"),
    ("active", "on"),
    ("api_key_enabled", "on"),
    ("retry_on_error", "on"),
    ("header_name", "Authorization"),
    ("header_value", "Bearer sk_live_0123456789"),
    ("header_name", "X-Source"),
    ("header_value", "hookboard"),
];

#[actix_web::test]
async fn an_owner_adds_a_webhook_the_table_updates_and_the_key_is_shown_once() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;

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
    let app = TestApp::spawn().await;
    let (_, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
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
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    for i in 0..100 {
        seed_webhook(
            &app,
            &tenant,
            &format!("https://hooks{i}.example/in"),
            &["booking.created"],
            true,
        )
        .await;
    }
    let response = owner.htmx_post("/webhooks", FORM).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("at most 100 webhooks"), "{html}");
    let tenant_id = tenant.id;
    assert_eq!(
        app.with_conn(move |conn| Webhook::count(conn, tenant_id).unwrap())
            .await,
        100
    );
}

#[actix_web::test]
async fn filters_sorting_and_pages_come_from_the_query_string() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
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

async fn park_deliveries(app: &TestApp, tenant: &Tenant, webhook: &Webhook, count: usize) {
    for _ in 0..count {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let now = app.clock.now();
        app.with_conn(move |conn| {
            let sent = send_test_in(
                conn,
                &tenant,
                webhook.id,
                "booking.created",
                &Actor::system(),
                now,
            )
            .unwrap();
            use hookboard::schema::deliveries;
            diesel::update(deliveries::table.find(sent.delivery_id))
                .set(deliveries::status.eq("parked"))
                .execute(conn)
                .unwrap();
        })
        .await;
    }
}

async fn delivery_statuses(app: &TestApp, webhook_id: i64) -> Vec<String> {
    app.with_conn(move |conn| {
        use hookboard::schema::deliveries;
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .select(deliveries::status)
            .order(deliveries::id)
            .load(conn)
            .unwrap()
    })
    .await
}

#[actix_web::test]
async fn the_switch_flips_in_place_and_switching_back_on_asks_about_parked_deliveries() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let (webhook, _) = seed_webhook(
        &app,
        &tenant,
        "https://crm.example/in",
        &["booking.created"],
        true,
    )
    .await;

    // Off: the row comes back switched off, and pending deliveries are parked.
    let (t, w) = (tenant.clone(), webhook.clone());
    let now = app.clock.now();
    app.with_conn(move |conn| {
        send_test_in(conn, &t, w.id, "booking.created", &Actor::system(), now).unwrap();
    })
    .await;
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
    let tenant_id = tenant.id;
    let stored = app
        .with_conn(move |conn| Webhook::find(conn, tenant_id, id).unwrap())
        .await;
    assert_eq!((stored.status, stored.disabled_reason), (Status::Active, None));
}

#[actix_web::test]
async fn delete_asks_first_then_removes_the_row_and_cancels_waiting_deliveries() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let (keep, _) = seed_webhook(
        &app,
        &tenant,
        "https://keep.example/in",
        &["booking.created"],
        true,
    )
    .await;
    let (gone, _) = seed_webhook(
        &app,
        &tenant,
        "https://gone.example/in",
        &["booking.created"],
        true,
    )
    .await;
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
    let tenant_id = tenant.id;
    let left = app
        .with_conn(move |conn| Webhook::count(conn, tenant_id).unwrap())
        .await;
    assert_eq!(left, 1);

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
    assert_eq!(
        app.with_conn(move |conn| Webhook::count(conn, tenant_id).unwrap())
            .await,
        0
    );
}

#[actix_web::test]
async fn editing_prefills_the_form_and_a_masked_credential_stays_unchanged() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    owner.htmx_post("/webhooks", FORM).await;
    let tenant_id = tenant.id;
    let webhook = app
        .with_conn(move |conn| {
            Webhook::list(conn, tenant_id, &Default::default())
                .unwrap()
                .rows
                .remove(0)
        })
        .await;

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
    let id = webhook.id;
    let stored = app
        .with_conn(move |conn| Webhook::find(conn, tenant_id, id).unwrap())
        .await;
    assert_eq!(stored.url, "https://crm.alpine.example/hooks/v2");
    assert_eq!(
        stored.headers(&app.secrets()).unwrap(),
        [("Authorization".to_owned(), "Bearer sk_live_0123456789".to_owned())]
    );
    assert!(!stored.api_key_enabled, "an unticked switch saves as off");
}

#[actix_web::test]
async fn hostile_text_is_shown_inert_everywhere() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
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
    let tenant_id = tenant.id;
    let webhook = app
        .with_conn(move |conn| {
            Webhook::list(conn, tenant_id, &Default::default())
                .unwrap()
                .rows
                .remove(0)
        })
        .await;
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
async fn the_webhook_page_shows_configuration_health_and_every_attempt() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let (webhook, _) = seed_webhook(
        &app,
        &tenant,
        "https://crm.example/in",
        &["booking.created"],
        true,
    )
    .await;

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
    let tenant_id = tenant.id;
    let after = app
        .with_conn(move |conn| Webhook::find(conn, tenant_id, id).unwrap())
        .await;
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

    let tenant_full = app
        .with_conn(move |conn| Tenant::find(conn, tenant_id).unwrap())
        .await;
    app.create_user(Some(&tenant_full), "vic@alpine.example", Role::Viewer)
        .await;
    let viewer = app.logged_in("vic@alpine.example").await;
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
    assert!(
        !app.with_conn(move |conn| Webhook::find(conn, tenant_id, id).unwrap())
            .await
            .api_key_enabled
    );
}

#[actix_web::test]
async fn connections_scope_webhooks_and_cannot_go_while_in_use() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
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

    let tenant_id = tenant.id;
    let connection = app
        .with_conn(move |conn| {
            hookboard::models::connection::Connection::list(conn, tenant_id)
                .unwrap()
                .remove(0)
        })
        .await;
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

#[actix_web::test]
async fn the_catalog_lists_every_event_type_with_its_example() {
    let app = TestApp::spawn().await;
    let (_, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let page = owner.get("/events").await.text().await.unwrap();
    let doc = parse(&page);
    assert_eq!(select(&doc, "article.event-type").len(), 32);
    assert_eq!(select(&doc, "article.event-type details pre").len(), 32);
    for code in [
        "booking.created",
        "order.updated",
        "checkin.scanned",
        "flight.delay_status_changed",
        "availability.updated",
    ] {
        assert!(page.contains(&format!(r#"id="{code}""#)), "{code}");
    }
}

#[actix_web::test]
async fn with_the_tool_off_the_pages_are_read_only_behind_a_notice() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let owner = app.logged_in("ana@alpine.example").await;
    let page = owner.get("/webhooks").await.text().await.unwrap();
    assert!(page.contains("switched off under Apps &#62; Tools"));
    assert!(!page.contains("Add Webhook"));
    let refused = owner.htmx_post("/webhooks", FORM).await;
    assert_eq!(refused.status(), 403);

    let starter = app.create_tenant("Small Tours", Plan::Starter).await;
    app.create_user(Some(&starter), "sam@small.example", Role::Owner)
        .await;
    let small = app.logged_in("sam@small.example").await;
    let gate = small.get("/webhooks").await;
    assert_eq!(gate.status(), 403);
    assert!(gate.text().await.unwrap().contains("Scale plan"));
    assert_eq!(small.get("/webhooks/export.xlsx").await.status(), 403);
}

/// Reads an exported workbook back.
fn read_sheet(bytes: &[u8]) -> (Vec<Vec<calamine::Data>>, usize) {
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let name = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&name).unwrap();
    let formulas = workbook.worksheet_formula(&name).unwrap();
    let formula_count = formulas.used_cells().filter(|(_, _, f)| !f.is_empty()).count();
    (range.rows().map(|r| r.to_vec()).collect(), formula_count)
}

#[actix_web::test]
async fn the_excel_export_holds_exactly_the_filtered_rows_as_text() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    owner
        .submit(
            "/connections",
            &[
                ("name", "Formula Partner"),
                ("external_id", "=HYPERLINK(\"http://evil.example\",\"x\")"),
            ],
        )
        .await;
    let tenant_id = tenant.id;
    let connection = app
        .with_conn(move |conn| {
            hookboard::models::connection::Connection::list(conn, tenant_id)
                .unwrap()
                .remove(0)
        })
        .await;
    let connection_id = connection.id.to_string();
    owner
        .htmx_post(
            "/webhooks",
            &[
                ("url", "https://hooks.zapier.example/1"),
                ("events", "booking.created"),
                ("connection", &connection_id),
                ("active", "on"),
            ],
        )
        .await;
    for i in 2..=60 {
        let url = if i % 2 == 0 {
            format!("https://hooks.zapier.example/{i}")
        } else {
            format!("https://crm.example/{i}")
        };
        seed_webhook(
            &app,
            &tenant,
            &url,
            &["booking.created", "payment.completed"],
            true,
        )
        .await;
    }
    // 2025-11-26 10:52 UTC is 11:52 in the tenant's Berlin time.
    app.clock.set("2025-11-26T10:52:00Z".parse().unwrap());
    app.with_conn(move |conn| {
        use hookboard::schema::tenants;
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::timezone.eq("Europe/Berlin"))
            .execute(conn)
            .unwrap();
    })
    .await;

    let page = owner.get("/webhooks?url=zapier").await.text().await.unwrap();
    let link = select(&parse(&page), "a#export-link")[0]
        .value()
        .attr("href")
        .unwrap()
        .to_owned();
    assert_eq!(link, "/webhooks/export.xlsx?url=zapier");
    let response = owner.get(&link).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        hookboard::services::export::XLSX_CONTENT_TYPE
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("Webhooks_26112025_1152.xlsx"),
        "{disposition}"
    );
    let bytes = response.bytes().await.unwrap();
    let (rows, formulas) = read_sheet(&bytes);
    assert_eq!(formulas, 0, "no cell is a formula");
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "No",
            "Contract",
            "URL",
            "Event Type",
            "Events",
            "Error Count",
            "Status"
        ]
    );
    assert_eq!(rows.len() - 1, 31, "all 31 zapier webhooks, across both pages");
    assert!(rows[1..].iter().all(|r| r[2].to_string().contains("zapier")));
    assert_eq!(
        rows[1][1],
        calamine::Data::String("=HYPERLINK(\"http://evil.example\",\"x\")".into())
    );
    assert_eq!(rows[1][0], calamine::Data::Float(1.0));
    assert_eq!(rows[2][3].to_string(), "booking.created, payment.completed");
    assert_eq!(rows[1][6].to_string(), "Active");

    // A viewer may export too; the delivery log exports the same way.
    let tenant_full = app
        .with_conn(move |conn| Tenant::find(conn, tenant_id).unwrap())
        .await;
    app.create_user(Some(&tenant_full), "vic@alpine.example", Role::Viewer)
        .await;
    let viewer = app.logged_in("vic@alpine.example").await;
    assert_eq!(viewer.get("/webhooks/export.xlsx").await.status(), 200);
    let first = app
        .with_conn(move |conn| {
            Webhook::list(conn, tenant_id, &Default::default())
                .unwrap()
                .rows
                .remove(0)
        })
        .await;
    owner
        .htmx_post(
            &format!("/webhooks/{}/test", first.id),
            &[("type", "booking.created")],
        )
        .await;
    let log = viewer
        .get(&format!("/webhooks/{}/deliveries.xlsx", first.id))
        .await;
    let disposition = log.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.contains("Deliveries_1_26112025_1152.xlsx"),
        "{disposition}"
    );
    let (rows, _) = read_sheet(&log.bytes().await.unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][2].to_string(), "booking.created");
}

#[actix_web::test]
async fn api_keys_are_shown_once_stored_hashed_switched_off_and_deleted() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
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
