//! Alerts (SPEC 9a): a webhook walked through failing, switched off, switched back on and
//! recovered gets exactly one mail and one operational event per change of state, at a
//! real SMTP server and a real receiver on loopback; a mail server that is down delays the
//! mail and nothing else.

use hookboard::clock::Clock;
use hookboard::models::alert;
use hookboard::models::tenant::Tenant;
use hookboard::models::webhook::{Status, Webhook};
use hookboard::services::webhooks::Parked;
use serde_json::Value;

use super::{Fixture, booking};
use crate::receiver::{Behaviour, Receiver};
use crate::smtp::SmtpSink;

const OPERATIONAL: [&str; 3] = [
    "hookboard.webhook.failing",
    "hookboard.webhook.disabled",
    "hookboard.webhook.recovered",
];

async fn set_recipients(fx: &Fixture, emails: &[&str]) {
    let (tenant_id, emails): (i64, Vec<String>) =
        (fx.tenant.id, emails.iter().map(|e| e.to_string()).collect());
    fx.app
        .with_conn(move |conn| Tenant::set_alert_emails(conn, tenant_id, &emails).unwrap())
        .await;
}

/// Runs the engine at every next attempt of the webhook's first delivery until it is no
/// longer pending; returns the time of the last run.
async fn retry_until_done(
    fx: &Fixture,
    engine: &hookboard::delivery::dispatcher::Dispatcher,
    webhook: &Webhook,
) -> chrono::DateTime<chrono::Utc> {
    let mut now = fx.app.clock.now();
    loop {
        let (status, _, next) = fx.deliveries_of(webhook.id).await.remove(0);
        if status != "pending" {
            return now;
        }
        now = now.max(next);
        fx.app.clock.set(now);
        engine.run_due_once(now).await.unwrap();
    }
}

/// The operational events a receiver got: (type, the webhook id they are about), each
/// signature checked with the subscriber's secret.
fn operational(receiver: &Receiver, subscriber: &Webhook, fx: &Fixture) -> Vec<(String, i64)> {
    // Checked by hand: the test's clock runs hours ahead of the wall clock, which a
    // verifier's timestamp tolerance would refuse.
    let secret = subscriber.reveal_secret(&fx.app.secrets()).unwrap();
    receiver
        .requests()
        .iter()
        .map(|request| {
            let id = &request.headers["webhook-id"];
            let timestamp: i64 = request.headers["webhook-timestamp"].parse().unwrap();
            let expected = hookboard::delivery::sign::sign(&secret, id, timestamp, &request.body).unwrap();
            assert!(
                request.headers["webhook-signature"]
                    .split(' ')
                    .any(|s| s == format!("v1,{expected}")),
                "signed with the subscriber's secret"
            );
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert!(body["data"]["reason"].is_string() && body["data"]["at"].is_string());
            (
                body["type"].as_str().unwrap().to_owned(),
                body["data"]["webhook"]["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn failing_disabled_re_enabled_recovered_mail_once_per_change_and_publish_events() {
    let fx = Fixture::new().await;
    let sink = SmtpSink::start();
    set_recipients(&fx, &["ops@alpine.example", "cto@alpine.example"]).await;
    let endpoint = Receiver::answering(500);
    let ops_receiver = Receiver::answering(204);
    // The failing webhook subscribes to the operational events too: it must never get one
    // about itself.
    let mut events = vec!["booking.created"];
    events.extend(OPERATIONAL);
    let webhook = fx.webhook_with(&endpoint.url, &events, |_| {}).await;
    let ops = fx.webhook_with(&ops_receiver.url, &OPERATIONAL, |_| {}).await;
    let engine = fx.app.engine_with_settings(
        fx.app.pool.clone(),
        &[
            ("HOOKBOARD_SMTP_URL", &sink.url),
            ("HOOKBOARD_PUBLIC_URL", "https://dash.alpine.example"),
        ],
    );
    fx.publish(&booking("bkg_1")).await;

    // Attempts 1 and 2 fail: not yet failing.
    let mut now = fx.app.clock.now();
    engine.run_due_once(now).await.unwrap();
    let (_, _, next) = fx.deliveries_of(webhook.id).await.remove(0);
    now = next;
    engine.run_due_once(now).await.unwrap();
    assert_eq!(engine.run_alerts_once(now).await.unwrap().published, 0);
    assert!(sink.mails().is_empty());
    // Attempt 3 fails: failing, once.
    let (_, _, next) = fx.deliveries_of(webhook.id).await.remove(0);
    now = next;
    fx.app.clock.set(now);
    engine.run_due_once(now).await.unwrap();
    let done = engine.run_alerts_once(now).await.unwrap();
    assert_eq!((done.published, done.mailed), (1, 1));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let failing = &mails[0];
    assert!(failing.subject().contains("failing"), "{}", failing.subject());
    assert!(failing.subject().contains("No 1") && failing.subject().contains("127.0.0.1"));
    let mut to = failing.recipients.clone();
    to.sort();
    assert_eq!(to, ["cto@alpine.example", "ops@alpine.example"]);
    let text = failing.part("text/plain").expect("a plain text part");
    let html = failing.part("text/html").expect("an HTML part");
    assert!(text.contains("HTTP 500") || text.contains("500"), "{text}");
    assert!(
        text.contains(&format!("https://dash.alpine.example/webhooks/{}", webhook.id)),
        "{text}"
    );
    assert!(text.contains("1 delivery is waiting"), "{text}");
    assert!(html.contains("<a href"), "{html}");
    engine.run_due_once(now).await.unwrap();
    assert_eq!(
        operational(&ops_receiver, &ops, &fx),
        [("hookboard.webhook.failing".to_owned(), webhook.id)]
    );
    // The dashboard lists it among the endpoints at risk while it is still retrying.
    let owner = fx
        .app
        .user_logged_in(
            &fx.tenant,
            "ops@alpine.example",
            hookboard::models::user::Role::Owner,
        )
        .await;
    let dashboard = owner.get("/").await.text().await.unwrap();
    let doc = crate::helpers::html::parse(&dashboard);
    let rows = crate::helpers::html::select(&doc, "#at-risk tr.at-risk-row");
    assert_eq!(rows.len(), 1, "{dashboard}");
    let row = crate::helpers::html::text(&rows[0]);
    assert!(
        row.contains("0 of 11") && row.contains("3 failed attempts since the last success"),
        "{row}"
    );

    // The rest of the retries fail: switched off, once.
    let now = retry_until_done(&fx, &engine, &webhook).await;
    assert_eq!(fx.reload(&webhook).await.status, Status::AutoDisabled);
    assert_eq!(engine.run_alerts_once(now).await.unwrap().mailed, 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "one more mail, not one per retry");
    assert!(mails[1].subject().contains("disabled"), "{}", mails[1].subject());

    // Switched back on; the endpoint works again: recovered, once.
    endpoint.set(Behaviour::Answer(200, Vec::new(), Vec::new()));
    fx.set_active(&webhook, true, Parked::Keep).await;
    fx.publish(&booking("bkg_2")).await;
    engine.run_due_once(now).await.unwrap();
    assert_eq!(engine.run_alerts_once(now).await.unwrap().mailed, 1);
    fx.publish(&booking("bkg_3")).await;
    engine.run_due_once(now).await.unwrap();
    assert_eq!(
        engine.run_alerts_once(now).await.unwrap(),
        Default::default(),
        "nothing more"
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 3);
    assert!(mails[2].subject().contains("recovered"), "{}", mails[2].subject());

    engine.run_due_once(now).await.unwrap();
    let kinds: Vec<String> = operational(&ops_receiver, &ops, &fx)
        .into_iter()
        .map(|(kind, about)| {
            assert_eq!(about, webhook.id);
            kind
        })
        .collect();
    assert_eq!(kinds, OPERATIONAL, "one event per change, in order");
    assert!(
        endpoint
            .requests()
            .iter()
            .all(|r| r.headers["x-hookboard-event"] == "booking.created"),
        "a webhook never receives an event about itself"
    );
}

#[actix_web::test]
async fn a_mail_server_that_is_down_delays_the_mail_and_nothing_else() {
    let fx = Fixture::new().await;
    set_recipients(&fx, &["ops@alpine.example"]).await;
    // A port nobody listens on, yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = fx.app.engine_with_settings(
        fx.app.pool.clone(),
        &[("HOOKBOARD_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))],
    );
    let failing = Receiver::answering(410);
    let healthy = Receiver::answering(204);
    fx.webhook(&failing.url).await;
    fx.webhook_with(&healthy.url, &["booking.cancelled"], |_| {})
        .await;
    fx.publish(&booking("bkg_1")).await;
    let now = fx.app.clock.now();
    engine.run_due_once(now).await.unwrap();
    let done = engine.run_alerts_once(now).await.unwrap();
    assert_eq!((done.published, done.mailed, done.unsent), (1, 0, 1));

    // Deliveries go on meanwhile.
    let (status, _) = fx
        .publish(&serde_json::json!({"type": "booking.cancelled", "data": {"id": "bkg_1"}}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(engine.run_due_once(now).await.unwrap().succeeded, 1);
    assert_eq!(healthy.count(), 1);

    // Not tried again before its pause; then the server is up and it goes, once.
    let sink = SmtpSink::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    let soon = now + chrono::Duration::seconds(5);
    assert_eq!(engine.run_alerts_once(soon).await.unwrap().mailed, 0);
    let later = now + chrono::Duration::seconds(31);
    assert_eq!(engine.run_alerts_once(later).await.unwrap().mailed, 1);
    assert_eq!(
        engine
            .run_alerts_once(later + chrono::Duration::minutes(5))
            .await
            .unwrap()
            .mailed,
        0
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject().contains("disabled"));
}

#[actix_web::test]
async fn owners_set_the_recipients_and_staff_see_alerts_under_the_bell() {
    let fx = Fixture::new().await;
    let owner = fx
        .app
        .user_logged_in(
            &fx.tenant,
            "ops@alpine.example",
            hookboard::models::user::Role::Owner,
        )
        .await;
    let page = owner.get("/settings/alerts").await.text().await.unwrap();
    assert!(
        page.contains("Mail is off") && page.contains("HOOKBOARD_SMTP_URL"),
        "{page}"
    );

    let saved = owner
        .submit(
            "/settings/alerts",
            &[(
                "emails",
                "ops@alpine.example\ncto@alpine.example, OPS@alpine.example",
            )],
        )
        .await;
    assert_eq!(saved.status(), 200);
    assert!(
        saved
            .text()
            .await
            .unwrap()
            .contains("2 addresses get alert mails")
    );
    let stored = {
        let tenant_id = fx.tenant.id;
        fx.app
            .with_conn(move |conn| Tenant::alert_emails(conn, tenant_id).unwrap())
            .await
    };
    assert_eq!(stored, ["ops@alpine.example", "cto@alpine.example"]);
    let refused = owner
        .submit(
            "/settings/alerts",
            &[("emails", "ops@alpine.example, not-an-address")],
        )
        .await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("not-an-address"));
    let viewer = fx
        .app
        .user_logged_in(
            &fx.tenant,
            "viewer@alpine.example",
            hookboard::models::user::Role::Viewer,
        )
        .await;
    assert_eq!(viewer.get("/settings/alerts").await.status(), 403);

    // A 410 switches a webhook off: one alert, under the bell until seen.
    let gone = Receiver::answering(410);
    let webhook = fx.webhook(&gone.url).await;
    fx.publish(&booking("bkg_1")).await;
    let now = fx.app.clock.now();
    fx.engine().run_due_once(now).await.unwrap();
    let home = owner.get("/webhooks").await.text().await.unwrap();
    assert!(home.contains("class=\"bell-count\">1<"), "{home}");
    let alerts = owner.get("/alerts").await.text().await.unwrap();
    assert!(
        alerts.contains(&format!("/webhooks/{}", webhook.id)) && alerts.contains("disabled"),
        "{alerts}"
    );
    let after = owner.get("/webhooks").await.text().await.unwrap();
    assert!(!after.contains("bell-count"), "seen: the bell is clear");
    let other = viewer.get("/webhooks").await.text().await.unwrap();
    assert!(
        other.contains("class=\"bell-count\">1<"),
        "each user has their own bell"
    );
}

#[actix_web::test]
async fn the_settings_page_says_where_mail_goes_when_it_is_on() {
    let sink = SmtpSink::start();
    let fx = Fixture::with(&[("HOOKBOARD_SMTP_URL", sink.url.as_str())]).await;
    let owner = fx
        .app
        .user_logged_in(
            &fx.tenant,
            "ops@alpine.example",
            hookboard::models::user::Role::Owner,
        )
        .await;
    let page = owner.get("/settings/alerts").await.text().await.unwrap();
    assert!(
        page.contains("Mail is on") && page.contains("hookboard@localhost"),
        "{page}"
    );
}

/// Settled alerts (event published, mail sent or given up) go with the delivery history
/// past the retention; one whose event is not published yet, or one raised since, stays.
#[actix_web::test]
async fn settled_alerts_past_the_retention_go_with_the_history() {
    let fx = Fixture::new().await;
    let failing = Receiver::answering(410);
    let webhook = fx.webhook(&failing.url).await;
    fx.publish(&booking("bkg_1")).await;
    let now = fx.app.clock.now();
    let engine = fx.engine();
    engine.run_due_once(now).await.unwrap();
    // Switched off at once: its alert is published, and its mail given up (mail is off).
    let done = engine.run_alerts_once(now).await.unwrap();
    assert_eq!((done.published, done.mailed, done.unsent), (1, 0, 1));
    // Raised as long ago but not published yet, and raised a month later.
    let later = now + chrono::Duration::days(31);
    fx.app
        .with_conn(move |conn| {
            let raised = |reason: &str| alert::Raised {
                tenant_id: webhook.tenant_id,
                webhook_id: webhook.id,
                webhook_number: webhook.number,
                url: webhook.url.clone(),
                connection_id: None,
                kind: "recovered",
                state: "ok",
                reason: reason.to_owned(),
                consecutive_failures: 0,
            };
            alert::raise(conn, &[raised("unpublished")], now).unwrap();
            alert::raise(conn, &[raised("recent")], later).unwrap();
        })
        .await;

    engine.clean_up(later).unwrap();
    let left: Vec<(String, String)> = fx
        .app
        .with_conn(|conn| {
            use diesel::prelude::*;
            use hookboard::schema::alerts;
            alerts::table
                .order(alerts::id)
                .select((alerts::kind, alerts::reason))
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        left,
        [
            ("recovered".to_owned(), "unpublished".to_owned()),
            ("recovered".to_owned(), "recent".to_owned())
        ]
    );
}
