//! Apps > Tools, the plan gate, the operator console and the audit log.

use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::user::Role;

use crate::helpers::{Browser, TestApp};

fn doc(html: &str) -> scraper::Html {
    scraper::Html::parse_document(html)
}

fn count(html: &str, css: &str) -> usize {
    doc(html).select(&scraper::Selector::parse(css).unwrap()).count()
}

#[actix_web::test]
async fn an_owner_enables_webhooks_under_apps_tools_and_the_audit_log_says_so() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let owner = app.logged_in("ana@alpine.example").await;

    let page = owner.get("/apps/tools").await.text().await.unwrap();
    assert_eq!(
        count(
            &page,
            r#"input[role="switch"][name="enabled"]:not([checked]):not([disabled])"#
        ),
        1,
        "{page}"
    );
    assert!(page.contains("Enable Webhooks"));
    assert_eq!(
        count(&page, r#"a[href="/webhooks"]"#),
        2,
        "Configure and the sidebar link"
    );

    // The switch posts through htmx and gets the card back.
    let token = owner.csrf_token("/apps/tools").await;
    let fragment = owner
        .client
        .post(format!("{}/apps/tools/webhooks", owner.base))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", &token)
        .form(&[("enabled", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(fragment.status(), 200);
    let fragment = fragment.text().await.unwrap();
    assert!(!fragment.contains("<html"), "a fragment, not a page");
    assert_eq!(
        count(&fragment, r#"#webhooks-tool input[role="switch"][checked]"#),
        1
    );

    let id = tenant.id;
    let stored = app.with_conn(move |conn| Tenant::find(conn, id).unwrap()).await;
    assert!(stored.webhooks_enabled);
    let audit = owner.get("/audit").await.text().await.unwrap();
    assert!(
        audit.contains("tool.webhooks_enabled") && audit.contains("ana@alpine.example"),
        "{audit}"
    );
}

#[actix_web::test]
async fn a_starter_tenant_sees_the_upgrade_notice_and_cannot_switch_webhooks_on() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Small Tours", Plan::Starter).await;
    app.create_user(Some(&tenant), "sam@small.example", Role::Owner)
        .await;
    let owner = app.logged_in("sam@small.example").await;
    let page = owner.get("/apps/tools").await.text().await.unwrap();
    assert!(page.contains("Available on the Scale plan"));
    assert_eq!(count(&page, r#"input[role="switch"][disabled]"#), 1);
    let token = owner.csrf_token("/apps/tools").await;
    let refused = owner
        .post_form(
            "/apps/tools/webhooks",
            &[("csrf_token", &token), ("enabled", "on")],
        )
        .await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("Scale plan"));
}

#[actix_web::test]
async fn a_viewer_can_look_but_not_change() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "vic@alpine.example", Role::Viewer)
        .await;
    let viewer = app.logged_in("vic@alpine.example").await;
    let page = viewer.get("/apps/tools").await.text().await.unwrap();
    assert_eq!(count(&page, r#"input[role="switch"][disabled]"#), 1);
    assert!(page.contains("Only owners and admins"));
    assert_eq!(viewer.get("/audit").await.status(), 200);
    let token = viewer.csrf_token("/apps/tools").await;
    let refused = viewer
        .post_form(
            "/apps/tools/webhooks",
            &[("csrf_token", &token), ("enabled", "on")],
        )
        .await;
    assert_eq!(refused.status(), 403);
}

#[actix_web::test]
async fn errors_on_htmx_requests_come_back_as_a_toast() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "vic@alpine.example", Role::Viewer)
        .await;
    let viewer = app.logged_in("vic@alpine.example").await;
    let token = viewer.csrf_token("/apps/tools").await;
    let response = viewer
        .client
        .post(format!("{}/apps/tools/webhooks", viewer.base))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", &token)
        .form(&[("enabled", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["hx-retarget"], "#toasts");
    let body = response.text().await.unwrap();
    assert_eq!(count(&body, ".toast.toast-error[role=alert]"), 1, "{body}");
}

#[actix_web::test]
async fn an_operator_creates_a_tenant_and_changes_its_plan() {
    let app = TestApp::spawn().await;
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let operator = app.logged_in("ops@platform.example").await;
    let token = operator.csrf_token("/admin/tenants").await;

    let bad = operator
        .post_form(
            "/admin/tenants",
            &[("csrf_token", &token), ("name", "  "), ("plan", "scale")],
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("Give the tenant a name"));

    let created = operator
        .post_form(
            "/admin/tenants",
            &[
                ("csrf_token", &token),
                ("name", "Lagoon Trips"),
                ("plan", "growth"),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let page = operator.get(&location).await.text().await.unwrap();
    assert!(page.contains("lagoon-trips"));

    let changed = operator
        .post_form(
            &location,
            &[
                ("csrf_token", &token),
                ("name", "Lagoon Trips Ltd"),
                ("plan", "scale"),
            ],
        )
        .await;
    assert_eq!(changed.status(), 303);
    let tenant = app
        .with_conn(|conn| Tenant::find_by_slug(conn, "lagoon-trips").unwrap())
        .await;
    assert_eq!(
        (tenant.name.as_str(), tenant.plan),
        ("Lagoon Trips Ltd", Plan::Scale)
    );

    // Tenant staff get 404 in the console; operators get 403 on tenant pages.
    app.create_user(Some(&tenant), "lee@lagoon.example", Role::Owner)
        .await;
    let owner = app.logged_in("lee@lagoon.example").await;
    assert_eq!(owner.get("/admin/tenants").await.status(), 404);
    assert_eq!(operator.get("/apps/tools").await.status(), 403);
    let audit = owner.get("/audit").await.text().await.unwrap();
    assert!(
        audit.contains("tenant.plan_changed") && audit.contains("ops@platform.example"),
        "{audit}"
    );
}

#[actix_web::test]
async fn hostile_text_is_shown_inert() {
    let app = TestApp::spawn().await;
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let operator = app.logged_in("ops@platform.example").await;
    let token = operator.csrf_token("/admin/tenants").await;
    let hostile = r#"<script>alert(1)</script>"><img src=x onerror=alert(2)> hx-get="/logout""#;
    operator
        .post_form(
            "/admin/tenants",
            &[("csrf_token", &token), ("name", hostile), ("plan", "scale")],
        )
        .await;
    let page = operator.get("/admin/tenants").await.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"), "no live script tag");
    assert!(!page.contains("<img src=x"), "no live img tag");
    let text: String = doc(&page).root_element().text().collect();
    assert!(text.contains(hostile), "shown as the text it is");
    assert_eq!(count(&page, "img"), 0);
    assert_eq!(count(&page, "[hx-get]"), 0);
}

#[actix_web::test]
async fn anonymous_visitors_are_sent_to_login_for_every_page_but_public_ones() {
    let app = TestApp::spawn().await;
    let anonymous = Browser::new(&app);
    for path in ["/", "/apps/tools", "/audit", "/profile", "/admin/tenants"] {
        let response = anonymous.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/login", "{path}");
    }
}
