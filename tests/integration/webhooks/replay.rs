//! The webhook page's Replay dialog: the count before anything is sent, then the replay, in
//! place through htmx with the CSRF token, with times read in the tenant's timezone; errors
//! next to their field; viewers and other tenants refused. Also once in headless Chromium.

use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use hookboard::models::audit::AuditEntry;
use hookboard::models::tenant::Tenant;
use hookboard::models::user::Role;
use hookboard::models::webhook::Webhook;

use super::{delivery_statuses, seed_webhook, test_delivery};
use crate::helpers::html::{parse, select, text};
use crate::helpers::{Browser, TestApp};

/// 2026-07-01 at `h:m` UTC (02:00 in Vienna is 00:00 UTC then: summer time).
fn july(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, h, m, 0).unwrap()
}

/// A Vienna tenant's webhook with four deliveries: failed at 00:30 and 01:30 UTC (02:30 and
/// 03:30 in Vienna), failed at 03:00 UTC (05:00 in Vienna), succeeded at 01:00 UTC.
async fn arranged(app: &TestApp, tenant: &Tenant) -> Webhook {
    let tenant_id = tenant.id;
    app.with_conn(move |conn| {
        use hookboard::schema::tenants;
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::timezone.eq("Europe/Vienna"))
            .execute(conn)
            .unwrap()
    })
    .await;
    let webhook = seed_webhook(
        app,
        tenant,
        "https://crm.alpine.example/in",
        &["booking.created", "payment.completed"],
        true,
    )
    .await;
    for (status, at) in [
        ("failed", july(0, 30)),
        ("failed", july(1, 30)),
        ("failed", july(3, 0)),
        ("succeeded", july(1, 0)),
    ] {
        let id = test_delivery(app, tenant, &webhook).await;
        app.with_conn(move |conn| {
            use hookboard::schema::deliveries;
            diesel::update(deliveries::table.find(id))
                .set((
                    deliveries::status.eq(status),
                    deliveries::done_on.eq(crate::helpers::done_on(status, at)),
                    deliveries::created_at.eq(at),
                    deliveries::completed_at.eq(Some(at)),
                ))
                .execute(conn)
                .unwrap()
        })
        .await;
    }
    webhook
}

/// 02:00 to 04:00 on 1 July, as the form's `datetime-local` inputs send it.
const RANGE: &[(&str, &str)] = &[("since", "2026-07-01T02:00"), ("until", "2026-07-01T04:00")];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    RANGE.iter().chain(extra).copied().collect()
}

#[actix_web::test]
async fn the_replay_dialog_counts_in_the_tenants_timezone_before_it_sends_and_answers_in_place() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let webhook = arranged(&app, &tenant).await;
    let base = format!("/webhooks/{}/replay", webhook.id);

    // The page offers Replay; the dialog asks for a range in the tenant's timezone.
    let page = owner
        .get(&format!("/webhooks/{}", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    let doc = parse(&page);
    let buttons: Vec<String> = select(&doc, "button").iter().map(text).collect();
    assert!(buttons.iter().any(|b| b == "Replay"), "{buttons:?}");
    assert_eq!(select(&doc, "#dialog").len(), 1);
    let dialog = owner.htmx_get(&base, "dialog").await;
    assert_eq!(dialog.status(), 200);
    let dialog = parse(&dialog.text().await.unwrap());
    assert_eq!(text(&select(&dialog, "[role=dialog] h2")[0]), "Replay");
    for (id, label) in [
        ("replay-since", "From"),
        ("replay-until", "Until"),
        ("replay-outcome", "Outcome"),
    ] {
        let found = select(&dialog, &format!("label[for={id}]"));
        assert_eq!(found.len(), 1, "{id} has a label");
        assert_eq!(text(&found[0]), label);
    }
    assert_eq!(select(&dialog, "input[type=datetime-local]").len(), 2);
    assert!(text(&select(&dialog, "#replay-times-help")[0]).contains("Europe/Vienna"));
    assert_eq!(select(&dialog, "input[name=event_types]").len(), 2);

    // Count: two failed between 02:00 and 04:00 Vienna time; nothing changes yet.
    let counted = owner.htmx_post(&format!("{base}/count"), RANGE).await;
    assert_eq!(counted.status(), 200);
    let counted = parse(&counted.text().await.unwrap());
    assert!(
        text(&select(&counted, "#replay-count")[0]).starts_with("2 deliveries will be sent again"),
        "{}",
        counted.html()
    );
    assert_eq!(
        delivery_statuses(&app, webhook.id).await,
        ["failed", "failed", "failed", "succeeded"]
    );
    let any = owner
        .htmx_post(&format!("{base}/count"), &with(&[("outcome", "any")]))
        .await
        .text()
        .await
        .unwrap();
    assert!(any.contains("<strong>3</strong> deliveries"), "{any}");
    let typed = owner
        .htmx_post(
            &format!("{base}/count"),
            &with(&[("outcome", "any"), ("event_types", "payment.completed")]),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(typed.contains("No deliveries match"), "{typed}");

    // Confirm with what was counted: the form's hidden fields.
    let confirm = select(&counted, "form[hx-post$='/replay'] input[type=hidden]");
    let fields: Vec<(String, String)> = confirm
        .iter()
        .map(|i| {
            (
                i.value().attr("name").unwrap().to_owned(),
                i.value().attr("value").unwrap().to_owned(),
            )
        })
        .filter(|(name, _)| name != "csrf_token")
        .collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(select(&counted, "#confirm-replay").len(), 1);
    assert_eq!(
        text(&select(&counted, "#confirm-replay")[0]),
        "Send 2 deliveries again"
    );
    let sent = owner.htmx_post(&base, &fields).await;
    assert_eq!(sent.status(), 200);
    assert_eq!(
        sent.headers()["HX-Trigger"],
        "deliveries-changed",
        "the log reloads"
    );
    let sent = parse(&sent.text().await.unwrap());
    assert!(text(&select(&sent, "#replay-result")[0]).starts_with("2 deliveries are queued again"));
    assert_eq!(
        delivery_statuses(&app, webhook.id).await,
        ["pending", "pending", "failed", "succeeded"]
    );
    let tenant_id = tenant.id;
    let entries = app
        .with_conn(move |conn| AuditEntry::list(conn, tenant_id, None, 5).unwrap())
        .await;
    let entry = entries.iter().find(|e| e.action == "webhook.replayed").unwrap();
    assert_eq!(entry.actor, "ana@alpine.example");
    assert_eq!(entry.details["count"], 2);
    assert_eq!(entry.details["since"], "2026-07-01T00:00:00Z");

    // Without JavaScript: the dialog is a page of its own.
    let plain = owner.get(&base).await;
    assert_eq!(plain.status(), 200);
    let plain = plain.text().await.unwrap();
    assert!(plain.contains("<html") && plain.contains("id=\"replay-since\""));
}

#[actix_web::test]
async fn replay_errors_show_next_to_their_field_and_strangers_are_refused() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let webhook = arranged(&app, &tenant).await;
    let count = format!("/webhooks/{}/replay/count", webhook.id);
    let before = delivery_statuses(&app, webhook.id).await;

    for (fields, field, says) in [
        (
            vec![("until", "2026-07-01T04:00")],
            "since",
            "Enter the start of the range.",
        ),
        (
            vec![("since", "2026-07-01T02:00"), ("until", "soon")],
            "until",
            "as a date and time",
        ),
        (
            vec![("since", "2026-07-01T04:00"), ("until", "2026-07-01T02:00")],
            "since",
            "The start must be before the end.",
        ),
        (
            vec![("since", "2026-03-29T02:30"), ("until", "2026-03-29T05:00")],
            "since",
            "the clocks skip it",
        ),
    ] {
        let answer = owner.htmx_post(&count, &fields).await;
        assert_eq!(answer.status(), 422, "{fields:?}");
        let doc = parse(&answer.text().await.unwrap());
        let input = select(&doc, &format!("#replay-{field}"));
        assert_eq!(input[0].value().attr("aria-invalid"), Some("true"), "{fields:?}");
        let error = text(&select(&doc, &format!("#replay-{field}-error"))[0]);
        assert!(error.contains(says), "{error}");
        assert_eq!(select(&doc, "#confirm-replay").len(), 0);
        // What was typed stays.
        if let Some((_, typed)) = fields.iter().find(|(name, _)| *name == field) {
            assert_eq!(input[0].value().attr("value"), Some(*typed));
        }
    }
    let odd = owner.htmx_post(&count, &with(&[("outcome", "pending")])).await;
    assert_eq!(odd.status(), 422);
    assert!(odd.text().await.unwrap().contains("use failed, succeeded or any"));

    // The CSRF token is needed, as for every action of the page.
    let without = owner.post_form(&count, RANGE).await;
    assert_eq!(without.status(), 403);
    let replay = format!("/webhooks/{}/replay", webhook.id);
    let without = owner.post_form(&replay, RANGE).await;
    assert_eq!(without.status(), 403);

    // A viewer may look but not replay; another tenant's owner finds nothing.
    let viewer = app
        .user_logged_in(&tenant, "vic@alpine.example", Role::Viewer)
        .await;
    assert_eq!(viewer.htmx_post(&replay, RANGE).await.status(), 403);
    let (_, stranger): (Tenant, Browser) = app
        .scale_tenant_with_owner("Other Travel", "olga@other.example")
        .await;
    assert_eq!(stranger.htmx_post(&replay, RANGE).await.status(), 404);
    assert_eq!(stranger.htmx_post(&count, RANGE).await.status(), 404);
    assert_eq!(stranger.htmx_get(&replay, "dialog").await.status(), 404);

    // A switched-off webhook: the dialog says so and the replay is refused in place.
    let tenant_id = tenant.id;
    let id = webhook.id;
    app.with_conn(move |conn| {
        hookboard::services::webhooks::switch_in(
            conn,
            tenant_id,
            id,
            false,
            hookboard::services::webhooks::Parked::Keep,
            &hookboard::models::audit::Actor::system(),
            Utc::now(),
        )
        .unwrap()
    })
    .await;
    let dialog = owner.htmx_get(&replay, "dialog").await.text().await.unwrap();
    assert!(
        dialog.contains("replayed deliveries would only be parked"),
        "{dialog}"
    );
    let refused = owner.htmx_post(&replay, RANGE).await;
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.unwrap().contains("Switch it on first"));
    assert_eq!(
        delivery_statuses(&app, webhook.id).await,
        before,
        "nothing changed"
    );
}

#[actix_web::test]
async fn staff_replay_an_outage_in_a_real_browser_seeing_the_count_first() {
    use crate::browser::{Driver, click, connect, count, errors, eventually, log_in, script, watch_errors};
    use fantoccini::Locator;

    let (app, tenant, _) = TestApp::spawn_with_scale_owner().await;
    let webhook = arranged(&app, &tenant).await;
    let driver = Driver::start();
    let client = connect(&driver).await;
    log_in(&client, &app, "ana@alpine.example").await;
    client
        .goto(&app.url(&format!("/webhooks/{}", webhook.id)))
        .await
        .unwrap();
    watch_errors(&client).await;

    client
        .find(Locator::XPath("//button[normalize-space()='Replay']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("#dialog #replay-since"))
        .await
        .unwrap();
    let focused = script(&client, "return document.activeElement.id;").await;
    assert_eq!(focused, "replay-since", "the dialog takes the focus");
    script(
        &client,
        "document.getElementById('replay-since').value = '2026-07-01T02:00';
         document.getElementById('replay-until').value = '2026-07-01T04:00';
         return true;",
    )
    .await;
    client
        .find(Locator::XPath("//button[normalize-space()='Count deliveries']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("#dialog #confirm-replay"))
        .await
        .unwrap();
    let said = client
        .find(Locator::Css("#replay-count"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(said.starts_with("2 deliveries will be sent again"), "{said}");
    eventually("the confirm button has the focus", || async {
        script(&client, "return document.activeElement.id;").await == "confirm-replay"
    })
    .await;
    assert_eq!(
        delivery_statuses(&app, webhook.id).await,
        ["failed", "failed", "failed", "succeeded"]
    );

    click(&client, "#confirm-replay").await;
    client
        .wait()
        .for_element(Locator::Css("#dialog #replay-result"))
        .await
        .unwrap();
    assert_eq!(
        delivery_statuses(&app, webhook.id).await,
        ["pending", "pending", "failed", "succeeded"]
    );
    click(
        &client,
        "#dialog #replay-result ~ .form-actions [data-close-dialog]",
    )
    .await;
    eventually("the dialog closes", || async {
        count(&client, "#dialog .modal").await == 0
    })
    .await;
    eventually("the log shows them pending", || async {
        count(&client, "#delivery-log .badge-pending").await == 2
    })
    .await;
    assert!(errors(&client).await.is_empty(), "{:?}", errors(&client).await);
    client.close().await.unwrap();
}

#[actix_web::test]
async fn the_page_and_the_api_replay_alike() {
    let app = TestApp::spawn().await;
    let (by_page, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let by_api = app.scale_tenant("Other Travel").await;
    let key = app.tenant_key(&by_api).await;
    let page_webhook = arranged(&app, &by_page).await;
    let api_webhook = arranged(&app, &by_api).await;

    let page = owner
        .htmx_post(
            &format!("/webhooks/{}/replay", page_webhook.id),
            &with(&[("outcome", "any"), ("event_types", "booking.created")]),
        )
        .await;
    assert_eq!(page.status(), 200);
    let api = app
        .client()
        .post(app.url(&format!("/api/v1/webhooks/{}/replay", api_webhook.id)))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "since": "2026-07-01T02:00:00+02:00", "until": "2026-07-01T04:00:00+02:00",
            "outcome": "any", "event_types": ["booking.created"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 202);
    assert_eq!(api.json::<serde_json::Value>().await.unwrap()["count"], 3);

    assert_eq!(
        delivery_statuses(&app, page_webhook.id).await,
        delivery_statuses(&app, api_webhook.id).await
    );
    assert_eq!(
        delivery_statuses(&app, page_webhook.id).await,
        ["pending", "pending", "failed", "pending"]
    );
    let details = |tenant: &Tenant| {
        let tenant_id = tenant.id;
        let app = &app;
        async move {
            app.with_conn(move |conn| {
                AuditEntry::list(conn, tenant_id, None, 5)
                    .unwrap()
                    .into_iter()
                    .find(|e| e.action == "webhook.replayed")
                    .map(|e| (e.target_type, e.target_id, e.details))
                    .unwrap()
            })
            .await
        }
    };
    assert_eq!(details(&by_page).await, details(&by_api).await);
}
