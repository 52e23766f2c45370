//! The operations dashboard at `/` (SPEC 9a): its numbers against what was seeded through
//! the store (attempts as the delivery engine records them, which the triggers count),
//! the at-risk and switched-off sections, switching back on in place, partners, viewers,
//! the plan gate, and the same page in a real browser.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use hookboard::models::connection::{Connection, NewConnection};
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::user::Role;
use hookboard::models::webhook::Webhook;

use crate::helpers::html::{parse, select, text};
use crate::helpers::{Browser, TestApp};
use crate::webhooks::{delivery_statuses, park_deliveries, seed_webhook, test_delivery};

/// A fixed time, so the charts' bars fall in the same places on every run.
const NOW: &str = "2026-11-28T10:30:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

/// The app at [`NOW`], with a Scale tenant (tool on) and its owner logged in.
async fn spawn() -> (TestApp, Tenant, Browser) {
    let app = TestApp::spawn().await;
    app.clock.set(now());
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    (app, tenant, owner)
}

/// Records attempts of a delivery as the engine does (`(minutes ago, ms, succeeded)`),
/// and leaves the delivery with `status` and `last_error`.
async fn attempts(
    app: &TestApp,
    delivery_id: i64,
    tries: &[(i64, i32, bool)],
    status: &str,
    last_error: Option<&str>,
) {
    let (tries, status, last_error) = (tries.to_vec(), status.to_owned(), last_error.map(str::to_owned));
    app.with_conn(move |conn| {
        use hookboard::schema::{deliveries, delivery_attempts};
        let (tenant_id, webhook_id): (i64, i64) = deliveries::table
            .find(delivery_id)
            .select((deliveries::tenant_id, deliveries::webhook_id))
            .first(conn)
            .unwrap();
        for (n, (ago, ms, ok)) in tries.iter().enumerate() {
            diesel::insert_into(delivery_attempts::table)
                .values((
                    delivery_attempts::delivery_id.eq(delivery_id),
                    delivery_attempts::tenant_id.eq(tenant_id),
                    delivery_attempts::webhook_id.eq(webhook_id),
                    delivery_attempts::attempt_number.eq(n as i32 + 1),
                    delivery_attempts::started_at.eq(now() - Duration::minutes(*ago)),
                    delivery_attempts::duration_ms.eq(*ms),
                    delivery_attempts::status_code.eq(if *ok { 204 } else { 503 }),
                    delivery_attempts::succeeded.eq(*ok),
                    delivery_attempts::error_class.eq((!ok).then_some("http_status")),
                    delivery_attempts::error_message.eq((!ok).then_some("HTTP 503")),
                ))
                .execute(conn)
                .unwrap();
        }
        diesel::update(deliveries::table.find(delivery_id))
            .set((
                deliveries::done_on.eq(crate::helpers::done_on(&status, now())),
                deliveries::status.eq(&status),
                deliveries::attempt_count.eq(tries.len() as i32),
                deliveries::last_error.eq(last_error),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
}

/// Dates a pending delivery (the database stamps `created_at` with its own clock) and
/// moves its next attempt.
async fn due_at(app: &TestApp, delivery_id: i64, created: DateTime<Utc>, at: DateTime<Utc>) {
    app.with_conn(move |conn| {
        use hookboard::schema::deliveries;
        diesel::update(deliveries::table.find(delivery_id))
            .set((
                deliveries::created_at.eq(created),
                deliveries::next_attempt_at.eq(at),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
}

/// Sets the counters the writer keeps on a webhook row, and its status.
async fn set_webhook(app: &TestApp, id: i64, status: &str, failures: i32, reason: Option<&str>) {
    let (status, reason) = (status.to_owned(), reason.map(str::to_owned));
    app.with_conn(move |conn| {
        use hookboard::schema::webhooks;
        let off = status == "auto_disabled";
        diesel::update(webhooks::table.find(id))
            .set((
                webhooks::status.eq(status),
                webhooks::consecutive_failures.eq(failures),
                webhooks::disabled_reason.eq(reason),
                webhooks::disabled_at.eq(off.then(|| now() - Duration::hours(3))),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
}

/// A webhook at risk (4 failed deliveries in a row, a retry ahead) and one switched off
/// with two parked deliveries; returns them.
async fn trouble(app: &TestApp, tenant: &Tenant) -> (Webhook, Webhook) {
    let risky = seed_webhook(
        app,
        tenant,
        "https://failing.example/in",
        &["booking.created"],
        true,
    )
    .await;
    let failed = test_delivery(app, tenant, &risky).await;
    attempts(
        app,
        failed,
        &[(50, 120, false)],
        "failed",
        Some("HTTP 503 from the endpoint"),
    )
    .await;
    let retry = test_delivery(app, tenant, &risky).await;
    due_at(
        app,
        retry,
        now() - Duration::minutes(40),
        now() + Duration::minutes(30),
    )
    .await;
    set_webhook(app, risky.id, "active", 4, None).await;

    let off = seed_webhook(app, tenant, "https://gone.example/in", &["booking.created"], true).await;
    park_deliveries(app, tenant, &off, 2).await;
    set_webhook(
        app,
        off.id,
        "auto_disabled",
        11,
        Some("The endpoint answered 410 Gone"),
    )
    .await;
    (risky, off)
}

async fn page(browser: &Browser) -> String {
    let response = browser.get("/").await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The sum of a column (1 succeeded, 2 failed, 3 pending) of a chart's table.
fn column(html: &str, table: &str, column: usize) -> i64 {
    let doc = parse(html);
    select(&doc, &format!("#{table} tbody tr"))
        .iter()
        .map(|row| {
            let cells = select_in(row, "td");
            cells[column - 1].parse::<i64>().unwrap()
        })
        .sum()
}

fn select_in(row: &scraper::ElementRef<'_>, css: &str) -> Vec<String> {
    row.select(&scraper::Selector::parse(css).unwrap())
        .map(|e| text(&e))
        .collect()
}

/// The failing event types' rows: type and failed attempts.
fn failing_types(html: &str) -> Vec<Vec<String>> {
    let doc = parse(html);
    select(&doc, "#failing-types tbody tr")
        .iter()
        .map(|row| select_in(row, "td"))
        .collect()
}

fn text_of(html: &str, css: &str) -> String {
    let doc = parse(html);
    select(&doc, css).first().map(text).unwrap_or_default()
}

#[actix_web::test]
async fn the_dashboard_counts_what_was_sent_failed_and_waits() {
    let (app, tenant, owner) = spawn().await;
    let webhook = seed_webhook(
        &app,
        &tenant,
        "https://crm.example/in",
        &["booking.created"],
        true,
    )
    .await;
    // One delivery: failed twice (300 ms), then succeeded (40 ms).
    let sent = test_delivery(&app, &tenant, &webhook).await;
    attempts(
        &app,
        sent,
        &[(90, 300, false), (80, 300, false), (70, 40, true)],
        "succeeded",
        None,
    )
    .await;
    // One waiting, due for 10 minutes; one two days ago that succeeded at once.
    let waiting = test_delivery(&app, &tenant, &webhook).await;
    due_at(
        &app,
        waiting,
        now() - Duration::minutes(15),
        now() - Duration::minutes(10),
    )
    .await;
    let older = test_delivery(&app, &tenant, &webhook).await;
    attempts(&app, older, &[(2 * 24 * 60, 20, true)], "succeeded", None).await;

    let html = page(&owner).await;

    assert_eq!(column(&html, "table-hours", 1), 1, "succeeded in 24 h");
    assert_eq!(column(&html, "table-hours", 2), 2, "failed in 24 h");
    assert_eq!(column(&html, "table-hours", 3), 1, "pending in 24 h");
    assert_eq!(column(&html, "table-days", 1), 2, "succeeded in 7 days");
    assert_eq!(column(&html, "table-days", 2), 2, "failed in 7 days");
    assert_eq!(text_of(&html, "#success-rate"), "33.3%");
    // Three attempts, the slowest in 250..500 ms: the p95 is in that bucket.
    assert_eq!(text_of(&html, "#latency-p95"), "≤ 500 ms");
    assert_eq!(text_of(&html, "#backlog-due"), "1 due");
    assert_eq!(text_of(&html, "#backlog-oldest"), "oldest due for 10 min");
    assert_eq!(failing_types(&html), [["booking.created", "2"]]);
    let doc = parse(&html);
    // The bars: one per hour, in an accessible SVG.
    assert_eq!(select(&doc, "svg#chart-hours[role=img] > g").len(), 24);
    assert_eq!(select(&doc, "svg#chart-days[role=img] > g").len(), 7);
    assert_eq!(select(&doc, "svg#chart-hours title").len(), 25);
    assert_eq!(select(&doc, "svg#chart-hours desc").len(), 1);
}

/// The pending deliveries of the charts are read only of the webhooks with a backlog; a
/// quiet webhook between two waiting ones takes nothing away from either.
#[actix_web::test]
async fn pending_deliveries_are_counted_of_every_webhook_that_has_a_backlog() {
    let (app, tenant, owner) = spawn().await;
    // Two waiting on the first webhook, none on the second, four on the third.
    for (url, waiting) in [
        ("https://a.example/in", 2),
        ("https://quiet.example/in", 0),
        ("https://c.example/in", 4),
    ] {
        let webhook = seed_webhook(&app, &tenant, url, &["booking.created"], true).await;
        let sent = test_delivery(&app, &tenant, &webhook).await;
        attempts(&app, sent, &[(30, 20, true)], "succeeded", None).await;
        for _ in 0..waiting {
            let pending = test_delivery(&app, &tenant, &webhook).await;
            due_at(
                &app,
                pending,
                now() - Duration::minutes(20),
                now() - Duration::minutes(5),
            )
            .await;
        }
    }
    let html = page(&owner).await;
    assert_eq!(column(&html, "table-hours", 3), 6, "pending in 24 h");
    assert_eq!(column(&html, "table-days", 3), 6, "pending in 7 days");
    assert_eq!(column(&html, "table-hours", 1), 3, "succeeded in 24 h");
    assert_eq!(text_of(&html, "#backlog-due"), "6 due");
}

#[actix_web::test]
async fn the_dashboard_names_endpoints_at_risk_and_what_was_switched_off() {
    let (app, tenant, owner) = spawn().await;
    let (risky, off) = trouble(&app, &tenant).await;
    seed_webhook(
        &app,
        &tenant,
        "https://fine.example/in",
        &["booking.created"],
        true,
    )
    .await;

    let html = page(&owner).await;
    let doc = parse(&html);

    let headings: Vec<String> = select(&doc, "h2").iter().map(text).collect();
    assert!(headings.contains(&"Endpoints at risk".to_owned()), "{headings:?}");
    assert!(
        headings.contains(&"Recently switched off".to_owned()),
        "{headings:?}"
    );
    let rows = select(&doc, "#at-risk tbody tr");
    assert_eq!(rows.len(), 1, "only the failing active webhook is at risk");
    let row = text(&rows[0]);
    assert!(row.contains(&format!("No {}", risky.number)), "{row}");
    assert!(
        row.contains("https://failing.example/in") && row.contains("4 of 11"),
        "{row}"
    );
    assert!(row.contains("HTTP 503 from the endpoint"), "{row}");
    assert!(row.contains("2026-11-28 11:00"), "the next retry: {row}");
    assert!(html.contains(&format!("/webhooks/{}?outcome=failed", risky.id)));

    let rows = select(&doc, "#switched-off tbody tr");
    assert_eq!(rows.len(), 1);
    let row = text(&rows[0]);
    assert!(
        row.contains("https://gone.example/in") && row.contains("410 Gone"),
        "{row}"
    );
    assert!(row.contains("2026-11-28 07:30"), "switched off at: {row}");
    assert_eq!(select_in(&rows[0], ".parked"), ["2"]);
    assert!(row.contains("Switch on and resend 2") && row.contains("Switch on and drop them"));
    assert!(html.contains(&format!("hx-post=\"/dashboard/switch-on/{}\"", off.id)));
}

#[actix_web::test]
async fn switching_back_on_from_the_dashboard_resends_what_was_parked_in_place() {
    let (app, tenant, owner) = spawn().await;
    let (_, off) = trouble(&app, &tenant).await;
    let path = format!("/dashboard/switch-on/{}", off.id);

    // Without the CSRF token, nothing happens.
    let forged = owner
        .client
        .post(app.url(&path))
        .header("HX-Request", "true")
        .form(&[("parked", "resend")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(delivery_statuses(&app, off.id).await, ["parked", "parked"]);

    let answer = owner.htmx_post(&path, &[("parked", "resend")]).await;
    assert_eq!(answer.status(), 200);
    let body = answer.text().await.unwrap();
    // The row is replaced by nothing (it leaves), and a toast says what happened.
    assert!(!body.contains("<tr"), "{body}");
    assert!(body.contains("2 parked deliveries are being resent"), "{body}");
    assert_eq!(delivery_statuses(&app, off.id).await, ["pending", "pending"]);
    let html = page(&owner).await;
    assert_eq!(select(&parse(&html), "#switched-off tbody tr").len(), 0);
    assert!(html.contains("No webhook was switched off after failures."));
}

#[actix_web::test]
async fn switching_back_on_may_drop_what_was_parked() {
    let (app, tenant, owner) = spawn().await;
    let (_, off) = trouble(&app, &tenant).await;
    let answer = owner
        .htmx_post(&format!("/dashboard/switch-on/{}", off.id), &[("parked", "drop")])
        .await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("2 parked deliveries were dropped")
    );
    assert_eq!(delivery_statuses(&app, off.id).await, ["cancelled", "cancelled"]);
}

#[actix_web::test]
async fn the_panel_refreshes_itself_as_a_fragment() {
    let (app, tenant, owner) = spawn().await;
    trouble(&app, &tenant).await;
    let html = page(&owner).await;
    assert!(html.contains(r#"hx-trigger="every 30s""#));
    assert!(html.contains(r#"id="dashboard-pause" aria-pressed="false""#));
    let fragment = owner.htmx_get("/", "dashboard-panel").await;
    assert_eq!(fragment.status(), 200);
    let fragment = fragment.text().await.unwrap();
    assert!(fragment.starts_with(r#"<div id="dashboard-panel""#), "{fragment}");
    assert!(!fragment.contains("<html") && fragment.contains("4 of 11"));
}

#[actix_web::test]
async fn a_viewer_sees_the_dashboard_but_cannot_switch_anything_on() {
    let (app, tenant, _) = spawn().await;
    let (_, off) = trouble(&app, &tenant).await;
    let viewer = app
        .user_logged_in(&tenant, "val@alpine.example", Role::Viewer)
        .await;
    let html = page(&viewer).await;
    assert!(html.contains("4 of 11") && html.contains("https://gone.example/in"));
    assert!(!html.contains("/dashboard/switch-on/"), "no switch-on buttons");
    let refused = viewer
        .htmx_post(
            &format!("/dashboard/switch-on/{}", off.id),
            &[("parked", "resend")],
        )
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(delivery_statuses(&app, off.id).await, ["parked", "parked"]);
}

#[actix_web::test]
async fn a_partner_sees_its_connections_webhooks_only() {
    let (app, tenant, owner) = spawn().await;
    let tenant_id = tenant.id;
    let [sunny, other] = ["CT-SUN", "CT-OTHER"].map(|contract| {
        let app = &app;
        async move {
            app.with_conn(move |conn| {
                Connection::create(
                    conn,
                    NewConnection {
                        tenant_id,
                        name: contract,
                        external_id: contract,
                    },
                )
                .unwrap()
            })
            .await
        }
    });
    let (sunny, other) = (sunny.await, other.await);
    let (ours, _) = app
        .create_webhook(&tenant, "https://sunny.example/in", &["booking.created"], |i| {
            i.connection_id = Some(sunny.id)
        })
        .await;
    let (theirs, _) = app
        .create_webhook(&tenant, "https://other.example/in", &["booking.created"], |i| {
            i.connection_id = Some(other.id)
        })
        .await;
    for (webhook, errors) in [
        (&ours, &[(30, 100, false)][..]),
        (&theirs, &[(30, 3000, false), (20, 3000, false)]),
    ] {
        let delivery = test_delivery(&app, &tenant, webhook).await;
        attempts(&app, delivery, errors, "failed", Some("HTTP 503")).await;
        set_webhook(&app, webhook.id, "active", errors.len() as i32, None).await;
    }
    park_deliveries(&app, &tenant, &theirs, 1).await;
    set_webhook(
        &app,
        theirs.id,
        "auto_disabled",
        11,
        Some("The endpoint answered 410 Gone"),
    )
    .await;
    app.create_partner(&tenant, "partner@sunny.example", sunny.id)
        .await;
    let partner = app.logged_in("partner@sunny.example").await;

    let html = page(&partner).await;
    assert!(html.contains("https://sunny.example/in") && html.contains("1 of 11"));
    assert!(
        !html.contains("https://other.example/in"),
        "another connection's webhook is not shown"
    );
    assert_eq!(column(&html, "table-hours", 2), 1, "its own failed attempts only");
    assert_eq!(
        text_of(&html, "#latency-p95"),
        "≤ 250 ms",
        "its own attempts' latency only"
    );
    assert_eq!(failing_types(&html), [["booking.created", "1"]]);
    let refused = partner
        .htmx_post(
            &format!("/dashboard/switch-on/{}", theirs.id),
            &[("parked", "resend")],
        )
        .await;
    assert_eq!(refused.status(), 404);
    assert_eq!(delivery_statuses(&app, theirs.id).await, ["failed", "parked"]);
    // The tenant's staff see both.
    let html = page(&owner).await;
    assert!(html.contains("https://other.example/in") && html.contains("https://sunny.example/in"));
    assert_eq!(column(&html, "table-hours", 2), 3);
    assert_eq!(text_of(&html, "#latency-p95"), "≤ 5 s");
    assert_eq!(failing_types(&html), [["booking.created", "3"]]);
}

/// A tenant's dashboard reads its hours by tenant (one range of an index, not a probe per
/// webhook): another tenant's attempts, in the same hours, count on its own dashboard only.
#[actix_web::test]
async fn a_tenants_figures_are_its_own_webhooks_only() {
    let (app, tenant, owner) = spawn().await;
    let (neighbour, neighbours_owner) = app
        .scale_tenant_with_owner("Coastal Trips", "cara@coastal.example")
        .await;
    let ours = seed_webhook(
        &app,
        &tenant,
        "https://crm.example/in",
        &["booking.created"],
        true,
    )
    .await;
    let theirs = seed_webhook(
        &app,
        &neighbour,
        "https://coastal.example/in",
        &["booking.created", "payment.received"],
        true,
    )
    .await;
    let delivery = test_delivery(&app, &tenant, &ours).await;
    attempts(
        &app,
        delivery,
        &[(30, 20, false), (20, 20, true)],
        "succeeded",
        None,
    )
    .await;
    for _ in 0..3 {
        let delivery = test_delivery(&app, &neighbour, &theirs).await;
        attempts(
            &app,
            delivery,
            &[(40, 3000, false), (10, 3000, false)],
            "failed",
            Some("HTTP 503"),
        )
        .await;
    }

    let html = page(&owner).await;
    assert_eq!(column(&html, "table-hours", 1), 1, "our succeeded attempt");
    assert_eq!(column(&html, "table-hours", 2), 1, "our failed attempt only");
    assert_eq!(column(&html, "table-days", 2), 1);
    assert_eq!(
        text_of(&html, "#latency-p95"),
        "≤ 25 ms",
        "our attempts' latency only"
    );
    assert_eq!(failing_types(&html), [["booking.created", "1"]]);

    let html = page(&neighbours_owner).await;
    assert_eq!(column(&html, "table-hours", 1), 0);
    assert_eq!(column(&html, "table-hours", 2), 6);
    assert_eq!(text_of(&html, "#latency-p95"), "≤ 5 s");
    assert!(!html.contains("https://crm.example/in"));
}

#[actix_web::test]
async fn without_the_scale_plan_or_with_the_tool_off_the_dashboard_says_so() {
    let app = TestApp::spawn().await;
    app.clock.set(now());
    let basic = app.create_tenant("Growth Tours", Plan::Growth).await;
    let browser = app
        .user_logged_in(&basic, "bea@growth.example", Role::Owner)
        .await;
    let html = page(&browser).await;
    assert!(html.contains("Webhooks are available on the Scale plan"));
    assert!(!html.contains("dashboard-panel"));

    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    trouble(&app, &tenant).await;
    let id = tenant.id;
    app.with_conn(move |conn| Tenant::set_webhooks_enabled(conn, id, false).unwrap())
        .await;
    let html = page(&owner).await;
    assert!(
        html.contains("Webhooks are switched off under Apps &#62; Tools")
            || html.contains("Webhooks are switched off under Apps &gt; Tools"),
        "the notice"
    );
    assert!(
        html.contains("4 of 11") && !html.contains("/dashboard/switch-on/"),
        "read-only"
    );
}

#[actix_web::test]
async fn operators_keep_their_console_cards() {
    let app = TestApp::spawn().await;
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let ops = app.logged_in("ops@platform.example").await;
    let html = page(&ops).await;
    assert!(html.contains("Manage tenants") && !html.contains("dashboard-panel"));
}

/// The 24-hour chart as SVG, with the times (which depend on the timezone) redacted.
#[actix_web::test]
async fn the_24_hour_chart_svg() {
    let (app, tenant, owner) = spawn().await;
    let webhook = seed_webhook(
        &app,
        &tenant,
        "https://crm.example/in",
        &["booking.created"],
        true,
    )
    .await;
    for (tries, status) in [
        (
            &[(90, 300, false), (80, 300, false), (70, 40, true)][..],
            "succeeded",
        ),
        (&[(5 * 60, 30, true)], "succeeded"),
        (&[(20 * 60, 30, false)], "failed"),
    ] {
        let delivery = test_delivery(&app, &tenant, &webhook).await;
        attempts(&app, delivery, tries, status, None).await;
    }
    let waiting = test_delivery(&app, &tenant, &webhook).await;
    due_at(&app, waiting, now() - Duration::minutes(30), now()).await;
    let html = page(&owner).await;
    let start = html
        .find("<svg class=\"delivery-chart\" id=\"chart-hours\"")
        .unwrap();
    let end = start + html[start..].find("</svg>").unwrap() + "</svg>".len();
    let svg = &html[start..end];
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b\d{2}:\d{2}\b", "[time]");
    settings.add_filter(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b", "[day]");
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("dashboard_24_hour_chart", svg));
}

/// In a real browser: the charts are drawn, the at-risk row is there, a switched-off
/// webhook goes back on without a page load, Pause holds the refresh, and nothing logs
/// an error.
#[actix_web::test]
async fn the_dashboard_in_a_real_browser() {
    use crate::browser::{
        Driver, attr, click, connect, count, errors, eventually, log_in, script, watch_errors,
    };
    let (app, tenant, _) = spawn().await;
    let (_, off) = trouble(&app, &tenant).await;
    let webhook = seed_webhook(
        &app,
        &tenant,
        "https://crm.example/in",
        &["booking.created"],
        true,
    )
    .await;
    let sent = test_delivery(&app, &tenant, &webhook).await;
    attempts(&app, sent, &[(90, 300, false), (70, 40, true)], "succeeded", None).await;

    let driver = Driver::start();
    let client = connect(&driver).await;
    log_in(&client, &app, "ana@alpine.example").await;
    watch_errors(&client).await;
    script(&client, "window.__marker = 'same-page'; return true;").await;

    assert_eq!(count(&client, "svg#chart-hours rect.bar-ok").await, 24);
    assert_eq!(count(&client, "svg#chart-days rect.bar-failed").await, 7);
    assert_eq!(count(&client, "#at-risk tr.at-risk-row").await, 1);
    assert_eq!(count(&client, ".switched-off-row").await, 1);
    // `HOOKBOARD_SCREENSHOT=docs/dashboard.png` keeps a picture of it for the README.
    if let Ok(path) = std::env::var("HOOKBOARD_SCREENSHOT") {
        client.set_window_size(1280, 1100).await.unwrap();
        let png = client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    // Pause is a toggle button, kept in the page.
    click(&client, "#dashboard-pause").await;
    assert_eq!(
        attr(&client, "#dashboard-pause", "aria-pressed").await.as_deref(),
        Some("true")
    );
    click(&client, "#dashboard-pause").await;
    assert_eq!(
        attr(&client, "#dashboard-pause", "aria-pressed").await.as_deref(),
        Some("false")
    );

    click(&client, &format!("#switched-off-{} button.btn-primary", off.id)).await;
    eventually("the row leaves the section", || async {
        count(&client, ".switched-off-row").await == 0
    })
    .await;
    eventually("the toast says so", || async {
        count(&client, "#toasts .toast").await > 0
    })
    .await;
    assert_eq!(
        script(&client, "return window.__marker === 'same-page';").await,
        serde_json::json!(true),
        "no page load"
    );
    assert_eq!(delivery_statuses(&app, off.id).await, ["pending", "pending"]);
    assert!(errors(&client).await.is_empty(), "{:?}", errors(&client).await);
    client.close().await.unwrap();
}

/// The tenant's week reads the hours that are over from their roll-up per tenant
/// (`models::hourly::roll_up`, the worker's housekeeping): the same figures before and
/// after it, the rolled-up hours no longer read from the webhooks' rows, each hour rolled
/// up once, and the retention taking the tenant's hours too.
#[actix_web::test]
async fn the_week_reads_the_same_once_its_hours_are_rolled_up_per_tenant() {
    let (app, tenant, owner) = spawn().await;
    let seed = |url: &'static str| seed_webhook(&app, &tenant, url, &["booking.created"], true);
    let (a, b) = (
        seed("https://crm.example/a").await,
        seed("https://crm.example/b").await,
    );
    // Hours that are over by more than an hour (3 days and 5 hours ago) and hours that
    // are not (90 and 10 minutes ago, at 10:30).
    let sent = test_delivery(&app, &tenant, &a).await;
    attempts(
        &app,
        sent,
        &[(3 * 24 * 60, 20, false), (5 * 60, 20, false), (90, 20, true)],
        "succeeded",
        None,
    )
    .await;
    let sent = test_delivery(&app, &tenant, &b).await;
    attempts(
        &app,
        sent,
        &[(3 * 24 * 60 + 5, 20, true), (10, 20, true)],
        "succeeded",
        None,
    )
    .await;
    let figures = |html: &str| {
        [
            ("table-hours", 1),
            ("table-hours", 2),
            ("table-days", 1),
            ("table-days", 2),
        ]
        .map(|(table, column_index)| column(html, table, column_index))
    };
    // Succeeded and failed in 24 hours, then in 7 days.
    let expected = [2, 1, 3, 2];
    assert_eq!(figures(&page(&owner).await), expected);

    let roll_up =
        |at: DateTime<Utc>| app.with_conn(move |conn| hookboard::models::hourly::roll_up(conn, at).unwrap());
    assert_eq!(
        roll_up(now()).await,
        2,
        "the tenant's hours at 10:00 three days ago and at 05:00"
    );
    assert_eq!(roll_up(now()).await, 0, "an hour is rolled up once");
    assert_eq!(figures(&page(&owner).await), expected);
    // Without the webhooks' rows of the rolled-up hours (before 09:00) the week reads the
    // same: those hours come from the tenant's rows.
    let removed = app
        .with_conn(|conn| {
            diesel::sql_query("DELETE FROM webhook_hours WHERE hour < '2026-11-28T09:00:00Z'")
                .execute(conn)
                .unwrap()
        })
        .await;
    assert_eq!(removed, 3);
    assert_eq!(figures(&page(&owner).await), expected);

    // The retention takes the tenant's hours with the webhooks'.
    let tenant_hours = || {
        app.with_conn(|conn| {
            use diesel::dsl::sql;
            diesel::select(sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM tenant_hours)",
            ))
            .get_result::<i64>(conn)
            .unwrap()
        })
    };
    assert_eq!(tenant_hours().await, 2);
    app.with_conn(|conn| hookboard::models::delivery::clean_up(conn, now() - Duration::days(1)).unwrap())
        .await;
    assert_eq!(
        tenant_hours().await,
        1,
        "the hour three days ago is past a day's retention"
    );
}

/// The tenant's week is planned as the few rows it reads even before PostgreSQL has any
/// statistics of the roll-up's one-row mark. Joined to that table, unanalysed and so
/// guessed at 2,200 rows, a month of webhook hours made the plan's cost millions: past the
/// bar where PostgreSQL compiles a statement (JIT), which took 90-200 ms for a 1 ms read
/// on the bench's history. And the pool's connections never compile statements.
#[actix_web::test]
async fn the_week_is_planned_as_what_it_reads_before_its_mark_has_statistics() {
    let (app, tenant, _owner) = spawn().await;
    let seed = |url: &'static str| seed_webhook(&app, &tenant, url, &["booking.created"], true);
    let (a, b) = (
        seed("https://crm.example/a").await,
        seed("https://crm.example/b").await,
    );
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        plan: String,
    }
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let tenant_id = tenant.id;
    let (cost, bar, jit, analysed) = app
        .with_conn(move |conn| {
            // Two webhooks' hours for the last 20,000 hours, as ANALYZE reads them.
            diesel::sql_query(
                "INSERT INTO webhook_hours (webhook_id, tenant_id, hour, succeeded)
                 SELECT w, $3, date_trunc('hour', now()) - g * interval '1 hour', 1
                 FROM unnest(ARRAY[$1, $2]) w CROSS JOIN generate_series(1, 20000) g",
            )
            .bind::<diesel::sql_types::BigInt, _>(a.id)
            .bind::<diesel::sql_types::BigInt, _>(b.id)
            .bind::<diesel::sql_types::BigInt, _>(tenant_id)
            .execute(conn)
            .unwrap();
            diesel::sql_query("ANALYZE webhook_hours").execute(conn).unwrap();
            let setting = |conn: &mut PgConnection, sql: &str| {
                diesel::sql_query(sql).get_result::<Setting>(conn).unwrap().value
            };
            let analysed = setting(
                conn,
                "SELECT (reltuples >= 0)::text AS value FROM pg_class WHERE relname = 'tenant_hours_rolled'",
            );
            let jit = setting(conn, "SELECT current_setting('jit') AS value");
            let bar = setting(
                conn,
                "SELECT reset_val AS value FROM pg_settings WHERE name = 'jit_above_cost'",
            );
            diesel::sql_query(format!(
                "PREPARE week(int8, timestamptz) AS {}",
                hookboard::models::hourly::TENANT_HOUR_TOTALS
            ))
            .execute(conn)
            .unwrap();
            let plan: Plan = diesel::sql_query(format!(
                "EXPLAIN (FORMAT JSON) EXECUTE week({tenant_id}, now() - interval '7 days')"
            ))
            .get_result(conn)
            .unwrap();
            diesel::sql_query("DEALLOCATE week").execute(conn).unwrap();
            let plan: serde_json::Value = serde_json::from_str(&plan.plan).unwrap();
            let cost = plan[0]["Plan"]["Total Cost"].as_f64().unwrap();
            (cost, bar.parse::<f64>().unwrap(), jit, analysed)
        })
        .await;
    assert_eq!(
        analysed, "false",
        "the mark has no statistics yet in a new database"
    );
    assert!(
        cost < bar,
        "the week's plan costs {cost}, past {bar}, where PostgreSQL compiles it"
    );
    assert_eq!(jit, "off", "the pool's connections compile no statement");
}

/// The dashboard's hand-written statements stay prepared on the connection, so a load is
/// not parsed and planned from the text again (0.75 ms of planning in a dashboard load of
/// about 3 ms over 61 webhooks in `make bench`, when they were `sql_query`s).
#[actix_web::test]
async fn the_dashboards_statements_stay_prepared_on_the_connection() {
    let (app, tenant, _owner) = spawn().await;
    let (risky, _off) = trouble(&app, &tenant).await;
    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
    }
    let tenant_id = tenant.id;
    let (at_risk, statements) = app
        .with_conn(move |conn| {
            let mut at_risk = Vec::new();
            for _ in 0..3 {
                let overview =
                    hookboard::services::dashboard::overview_in(conn, tenant_id, chrono_tz::UTC, now())
                        .unwrap();
                at_risk.push(overview.at_risk.iter().map(|r| r.webhook.id).collect::<Vec<_>>());
            }
            let statements: Vec<Prepared> = diesel::sql_query("SELECT statement FROM pg_prepared_statements")
                .load(conn)
                .unwrap();
            (
                at_risk,
                statements.into_iter().map(|p| p.statement).collect::<Vec<_>>(),
            )
        })
        .await;
    assert_eq!(at_risk, vec![vec![risky.id]; 3], "the same answer on every load");
    for read in [
        "FROM tenant_hours t",
        "FROM webhook_latency_hours",
        "FROM webhook_failure_hours",
        "count(*) FILTER (WHERE next_attempt_at",
        "count(*) AS pending",
        "SELECT d.last_error",
        "failing_attempts > 0",
    ] {
        let kept = statements.iter().filter(|s| s.contains(read)).count();
        assert_eq!(kept, 1, "one prepared statement reads `{read}`: {statements:#?}");
    }
}
