//! The delivery engine end to end: the API publishes, the outbox fans out, the dispatcher
//! sends to real receivers on loopback, and the results land in the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::delivery::dispatcher::{self, Dispatcher, Summary};
use hookboard::delivery::outbox::{self, NewEvent};
use hookboard::metrics::Metrics;
use hookboard::models::api_key::ApiKey;
use hookboard::models::audit::Actor;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::webhook::{Status, Webhook};
use hookboard::services::{self, webhooks::Parked};
use hookboard::validation::webhook::Input;
use serde_json::{Value, json};

use crate::helpers::{TestApp, test_settings};
use crate::receiver::{Behaviour, Receiver};

fn engine_with(app: &TestApp, allow_loopback: bool, timeout: &str) -> Dispatcher {
    engine_on(app, app.pool.clone(), allow_loopback, timeout)
}

fn engine_on(app: &TestApp, pool: hookboard::db::DbPool, allow_loopback: bool, timeout: &str) -> Dispatcher {
    let url = app.database_url.clone();
    let allow = if allow_loopback { "127.0.0.0/8,::1/128" } else { "" }.to_owned();
    let timeout = timeout.to_owned();
    let base = test_settings(&url);
    let settings = hookboard::settings::Settings::from_lookup(move |name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "HOOKBOARD_ALLOW_PRIVATE_TARGETS" => Some(allow.clone()),
        "HOOKBOARD_DELIVERY_TIMEOUT" => Some(timeout.clone()),
        "HOOKBOARD_SECRET_KEY" => Some("42".repeat(32)),
        _ => None,
    })
    .unwrap();
    assert_eq!(base.secret_key, settings.secret_key);
    Dispatcher::new(
        pool,
        &settings,
        app.secrets(),
        Arc::new(app.clock.clone()),
        Arc::new(Metrics::default()),
    )
    .unwrap()
}

fn engine(app: &TestApp) -> Dispatcher {
    engine_with(app, true, "2s")
}

async fn scale_tenant(app: &TestApp) -> Tenant {
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let id = tenant.id;
    app.with_conn(move |conn| Tenant::set_webhooks_enabled(conn, id, true).unwrap())
        .await
}

async fn webhook_to(
    app: &TestApp,
    tenant: &Tenant,
    url: &str,
    events: &[&str],
    tweak: impl FnOnce(&mut Input),
) -> Webhook {
    let mut input = Input {
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        ..Input::default()
    };
    tweak(&mut input);
    let (tenant_id, secrets) = (tenant.id, app.secrets());
    app.with_conn(move |conn| Webhook::create(conn, tenant_id, &input, &secrets).unwrap().0)
        .await
}

async fn tenant_key(app: &TestApp, tenant: &Tenant) -> String {
    let id = tenant.id;
    app.with_conn(move |conn| ApiKey::create(conn, id, "Booking platform", None).unwrap().1)
        .await
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn booking(reference: &str) -> Value {
    json!({"type": "booking.created", "data": {"id": reference, "customer": {"language": "de", "email": "sofia@example.com"}, "pricing": {"total": 10800}, "localized": {"de": {"name": "Rundgang"}, "fr": {"name": "Visite"}}}})
}

async fn reload(app: &TestApp, webhook: &Webhook) -> Webhook {
    let (tenant_id, id) = (webhook.tenant_id, webhook.id);
    app.with_conn(move |conn| Webhook::find(conn, tenant_id, id).unwrap())
        .await
}

async fn deliveries_of(app: &TestApp, webhook_id: i64) -> Vec<(String, i32, chrono::DateTime<chrono::Utc>)> {
    app.with_conn(move |conn| {
        use hookboard::schema::deliveries as d;
        d::table
            .filter(d::webhook_id.eq(webhook_id))
            .order(d::id)
            .select((d::status, d::attempt_count, d::next_attempt_at))
            .load(conn)
            .unwrap()
    })
    .await
}

#[actix_web::test]
async fn a_published_event_arrives_signed_and_verifies_with_a_standard_webhooks_library() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(204);
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |i| {
        i.headers = vec![("Authorization".into(), "Bearer crm-token-123456".into())];
    })
    .await;
    let other = webhook_to(&app, &tenant, &receiver.url, &["payment.completed"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;

    let (status, accepted) = post(&app, &key, "/api/v1/events", &booking("bkg_1")).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["type"], "booking.created");
    assert_eq!(accepted["deliveries"], 1, "only the subscribed webhook");
    let summary = engine(&app).run_due_once(app.clock.now()).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            attempted: 1,
            succeeded: 1,
            failed: 0
        }
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let secret = webhook.reveal_secret(&app.secrets()).unwrap();
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for (k, v) in &request.headers {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    verifier
        .verify(&request.body, &headers)
        .expect("the signature verifies");
    assert_eq!(request.headers["webhook-id"], accepted["id"].as_str().unwrap());
    assert_eq!(request.headers["x-hookboard-event"], "booking.created");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["authorization"], "Bearer crm-token-123456");
    assert!(request.headers["user-agent"].starts_with("Hookboard/"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let raw = String::from_utf8(request.body.clone()).unwrap();
    let positions: Vec<usize> = [
        "\"id\":",
        "\"type\":",
        "\"timestamp\":",
        "\"tenant\":",
        "\"connection\":",
        "\"data\":",
    ]
    .iter()
    .map(|key| raw.find(key).unwrap())
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]) && positions[0] == 1,
        "the envelope in wire order: {raw}"
    );
    assert_eq!(body["tenant"], tenant.slug.as_str());
    assert_eq!(body["connection"], Value::Null);
    assert_eq!(body["data"]["id"], "bkg_1");

    let stored = reload(&app, &webhook).await;
    assert_eq!((stored.event_count, stored.error_count), (1, 0));
    assert_eq!(reload(&app, &other).await.event_count, 0);
    assert_eq!(deliveries_of(&app, webhook.id).await[0].0, "succeeded");
}

#[actix_web::test]
async fn failures_retry_on_the_schedule_with_identical_bytes_then_disable_the_webhook() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(500);
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    post(&app, &key, "/api/v1/events", &booking("bkg_2")).await;
    let engine = engine(&app);

    let schedule = [10u64, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800];
    let mut now = app.clock.now();
    assert_eq!(engine.run_due_once(now).await.unwrap().failed, 1);
    for (retry, seconds) in schedule.iter().enumerate() {
        let (status, attempts, next) = deliveries_of(&app, webhook.id).await.remove(0);
        assert_eq!((status.as_str(), attempts), ("pending", retry as i32 + 1));
        let wait = (next - now).num_milliseconds() as f64 / 1000.0;
        let expected = *seconds as f64;
        assert!(
            wait >= expected * 0.8 - 0.01 && wait <= expected * 1.2 + 0.01,
            "retry {}: waits {wait}s, schedule {expected}s",
            retry + 1
        );
        assert_eq!(
            engine
                .run_due_once(next - chrono::Duration::milliseconds(1))
                .await
                .unwrap()
                .attempted,
            0,
            "not before it is due"
        );
        now = next;
        app.clock.set(now);
        assert_eq!(engine.run_due_once(now).await.unwrap().failed, 1);
    }
    let (status, attempts, _) = deliveries_of(&app, webhook.id).await.remove(0);
    assert_eq!((status.as_str(), attempts), ("failed", 11));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 11, "one attempt and ten retries");
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "byte-identical on every attempt"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.headers["webhook-id"] == requests[0].headers["webhook-id"])
    );
    let stored = reload(&app, &webhook).await;
    assert_eq!(stored.status, Status::AutoDisabled);
    assert!(stored.disabled_reason.unwrap().contains("All 10 retries"));
    assert_eq!(stored.error_count, 11);

    // While disabled, new events are parked, not lost.
    post(&app, &key, "/api/v1/events", &booking("bkg_3")).await;
    assert_eq!(deliveries_of(&app, webhook.id).await[1].0, "parked");
    assert_eq!(engine.run_due_once(now).await.unwrap().attempted, 0);
}

#[actix_web::test]
async fn without_retries_eleven_failed_deliveries_in_a_row_disable_and_a_success_resets_the_count() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(503);
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |i| {
        i.retry_on_error = false
    })
    .await;
    let key = tenant_key(&app, &tenant).await;
    let engine = engine(&app);
    for i in 0..10 {
        post(&app, &key, "/api/v1/events", &booking(&format!("b{i}"))).await;
    }
    engine.run_due_once(app.clock.now()).await.unwrap();
    assert_eq!(reload(&app, &webhook).await.consecutive_failures, 10);
    receiver.set(Behaviour::Answer(200, vec![], vec![]));
    post(&app, &key, "/api/v1/events", &booking("ok")).await;
    engine.run_due_once(app.clock.now()).await.unwrap();
    assert_eq!(
        reload(&app, &webhook).await.consecutive_failures,
        0,
        "a success resets the count"
    );
    receiver.set(Behaviour::Answer(500, vec![], vec![]));
    for i in 0..11 {
        post(&app, &key, "/api/v1/events", &booking(&format!("c{i}"))).await;
    }
    let summary = engine.run_due_once(app.clock.now()).await.unwrap();
    assert_eq!(summary.failed, 11);
    let stored = reload(&app, &webhook).await;
    assert_eq!(stored.status, Status::AutoDisabled);
    assert!(stored.disabled_reason.unwrap().contains("11 deliveries in a row"));
    assert!(
        deliveries_of(&app, webhook.id)
            .await
            .iter()
            .all(|(s, _, _)| s != "pending"),
        "no retries"
    );
}

#[actix_web::test]
async fn gone_disables_at_once_and_redirects_are_never_followed() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let target = Receiver::answering(200);
    let redirecting = Receiver::start(Behaviour::Answer(
        302,
        vec![("Location".into(), target.url.clone())],
        vec![],
    ));
    let gone = Receiver::answering(410);
    let redirect_hook = webhook_to(&app, &tenant, &redirecting.url, &["booking.created"], |_| {}).await;
    let gone_hook = webhook_to(&app, &tenant, &gone.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    post(&app, &key, "/api/v1/events", &booking("b")).await;
    engine(&app).run_due_once(app.clock.now()).await.unwrap();

    assert!(target.requests().is_empty(), "the redirect was not followed");
    let (status, _, _) = deliveries_of(&app, redirect_hook.id).await.remove(0);
    assert_eq!(status, "pending", "3xx is a failure that retries");
    let error: Option<String> = {
        let id = redirect_hook.id;
        app.with_conn(move |conn| {
            use hookboard::schema::delivery_attempts as a;
            a::table
                .filter(a::webhook_id.eq(id))
                .select(a::error_class)
                .first(conn)
                .unwrap()
        })
        .await
    };
    assert_eq!(error.as_deref(), Some("redirect"));
    let stored = reload(&app, &gone_hook).await;
    assert_eq!(stored.status, Status::AutoDisabled);
    assert!(stored.disabled_reason.unwrap().contains("410"));
}

#[actix_web::test]
async fn the_ssrf_guard_refuses_private_addresses_literals_and_names_alike() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(200);
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let urls = [
        receiver.url.clone(),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0x7f.0.0.1:{port}/hook"),
    ];
    for url in &urls {
        webhook_to(&app, &tenant, url, &["booking.created"], |_| {}).await;
    }
    let key = tenant_key(&app, &tenant).await;
    post(&app, &key, "/api/v1/events", &booking("b")).await;
    let summary = engine_with(&app, false, "2s")
        .run_due_once(app.clock.now())
        .await
        .unwrap();
    assert_eq!(summary.failed, urls.len());
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the private address"
    );
    let classes: Vec<(Option<String>, Option<String>)> = app
        .with_conn(|conn| {
            use hookboard::schema::delivery_attempts as a;
            a::table
                .select((a::error_class, a::error_message))
                .load(conn)
                .unwrap()
        })
        .await;
    for (class, message) in classes {
        assert_eq!(class.as_deref(), Some("ssrf"), "{message:?}");
        assert!(message.unwrap().contains("loopback"));
    }
}

/// Every kind of misbehaving endpoint at once: each attempt ends within the timeout plus
/// one second, is classified so staff can read why, retries when it should (honouring
/// `Retry-After`), and the fast webhook on the same event type is not held up.
#[actix_web::test]
async fn misbehaving_endpoints_are_cut_off_classified_and_do_not_delay_another_webhook() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let hanging = Receiver::start(Behaviour::Hang);
    let dripping = Receiver::start(Behaviour::Drip);
    let huge = Receiver::start(Behaviour::Answer(200, vec![], vec![b'x'; 10 * 1024 * 1024]));
    let bomb = Receiver::start(Behaviour::Answer(
        200,
        vec![("Content-Encoding".into(), "gzip".into())],
        gzip_bomb(),
    ));
    let reset = Receiver::start(Behaviour::Reset);
    let failing = Receiver::answering(500);
    let limited = Receiver::start(Behaviour::Answer(
        429,
        vec![("Retry-After".into(), "15".into())],
        b"slow down".to_vec(),
    ));
    let tls = crate::receiver::tls_with_self_signed_certificate();
    let fast = Receiver::answering(204);
    let mut hooks = HashMap::new();
    for (name, url) in [
        ("hang", &hanging.url),
        ("drip", &dripping.url),
        ("huge", &huge.url),
        ("bomb", &bomb.url),
        ("reset", &reset.url),
        ("500", &failing.url),
        ("429", &limited.url),
        ("tls", &tls),
        ("fast", &fast.url),
    ] {
        let hook = webhook_to(&app, &tenant, url, &["booking.created"], |_| {}).await;
        hooks.insert(hook.id, name);
    }
    let key = tenant_key(&app, &tenant).await;
    post(&app, &key, "/api/v1/events", &booking("b")).await;
    let started = Instant::now();
    let now = app.clock.now();
    let summary = engine_with(&app, true, "2s").run_due_once(now).await.unwrap();
    let took = started.elapsed();
    assert_eq!(summary.attempted, 9);
    assert!(
        took < Duration::from_secs(3) + Duration::from_secs(2),
        "bounded by the timeout: {took:?}"
    );
    let fast_arrival = fast.requests()[0].at.duration_since(started);
    assert!(
        fast_arrival < Duration::from_secs(1),
        "the fast webhook was not held up: {fast_arrival:?}"
    );
    type Row = (
        i64,
        i32,
        Option<i32>,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = app
        .with_conn(|conn| {
            use hookboard::schema::delivery_attempts as a;
            a::table
                .select((
                    a::webhook_id,
                    a::duration_ms,
                    a::status_code,
                    a::error_class,
                    a::error_message,
                    a::response_body,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    let by_name: HashMap<&str, &Row> = rows.iter().map(|row| (hooks[&row.0], row)).collect();
    assert!(
        rows.iter().all(|row| row.1 <= 3000),
        "every attempt ends within the timeout plus one second: {:?}",
        rows.iter().map(|r| (hooks[&r.0], r.1)).collect::<Vec<_>>()
    );
    assert!(
        rows.iter()
            .all(|row| row.5.as_ref().map_or(0, Vec::len) <= 64 * 1024),
        "at most 64 KiB of any answer kept"
    );
    let class = |name: &str| by_name[name].3.as_deref();
    assert_eq!(class("hang"), Some("timeout"));
    assert_eq!(
        class("drip"),
        None,
        "a 2xx answer counts even when its body drips"
    );
    assert!(
        by_name["drip"]
            .4
            .as_deref()
            .is_some_and(|m| m.contains("reading the answer failed")),
        "{:?}",
        by_name["drip"].4
    );
    assert_eq!(class("reset"), Some("reset"), "{:?}", by_name["reset"].4);
    assert_eq!(class("tls"), Some("tls"), "{:?}", by_name["tls"].4);
    assert_eq!(by_name["500"].2, Some(500));
    assert_eq!(by_name["429"].2, Some(429));
    assert_eq!(class("fast"), None);
    let bomb_body = by_name["bomb"].5.as_ref().expect("the bomb's answer is kept");
    assert!(
        bomb_body.starts_with(&[0x1f, 0x8b]) && bomb_body.len() <= 64 * 1024,
        "the gzip body is kept compressed, never inflated"
    );

    // The failures retry: 500 on the schedule (10 s ± 20%), 429 when it asked (15 s, within
    // [10 s, 20 s]); the 2xx answers are done.
    let next: HashMap<i64, (String, chrono::DateTime<chrono::Utc>)> = app
        .with_conn(|conn| {
            use hookboard::schema::deliveries as d;
            d::table
                .select((d::webhook_id, (d::status, d::next_attempt_at)))
                .load(conn)
                .unwrap()
                .into_iter()
                .collect()
        })
        .await;
    let wait = |name: &str| {
        let (id, _) = hooks.iter().find(|(_, n)| **n == name).unwrap();
        let (status, at) = &next[id];
        (status.clone(), (*at - now).num_milliseconds())
    };
    assert_eq!(wait("fast").0, "succeeded");
    assert_eq!(
        wait("huge").0,
        "succeeded",
        "a 10 MB answer is a success, read only in part"
    );
    let (status, after) = wait("500");
    assert!(
        status == "pending" && (7_000..=13_000).contains(&after),
        "{status} {after}"
    );
    let (status, after) = wait("429");
    assert!(
        status == "pending" && (14_000..=16_500).contains(&after),
        "{status} {after}"
    );
    assert_eq!(wait("drip").0, "succeeded");
    for name in ["hang", "reset", "tls"] {
        assert_eq!(wait(name).0, "pending", "{name} retries");
    }
}

/// 1 GiB of zeros as gzip: one compressed MiB repeated as 1,024 gzip members (about 1 MiB).
pub(crate) fn gzip_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 1024 * 1024]).unwrap();
    encoder.finish().unwrap().repeat(1024)
}

#[actix_web::test]
async fn a_rolled_back_transaction_delivers_nothing() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(200);
    webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let now = app.clock.now();
    let t = tenant.clone();
    app.with_conn(move |conn| {
        let _ = conn.transaction::<(), diesel::result::Error, _>(|conn| {
            let event = NewEvent {
                kind: "booking.created".into(),
                data: json!({}),
                occurred_at: None,
                connection: None,
                language: None,
                idempotency_key: None,
            };
            outbox::publish(conn, &t, &[event], now).unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        });
    })
    .await;
    assert_eq!(engine(&app).run_due_once(now).await.unwrap().attempted, 0);
    assert!(receiver.requests().is_empty());
}

#[actix_web::test]
async fn two_dispatchers_on_one_database_deliver_each_delivery_once() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(200);
    for _ in 0..3 {
        webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    }
    let key = tenant_key(&app, &tenant).await;
    let batch = json!({"events": (0..40).map(|i| booking(&format!("b{i}"))).collect::<Vec<_>>()});
    let (status, accepted) = post(&app, &key, "/api/v1/events/batch", &batch).await;
    assert_eq!(status, 202, "{accepted}");
    let (one, two) = (engine(&app), engine(&app));
    let now = app.clock.now();
    let (a, b) = tokio::join!(one.run_due_once(now), two.run_due_once(now));
    assert_eq!(a.unwrap().attempted + b.unwrap().attempted, 120);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 120);
    let mut ids: Vec<String> = requests
        .iter()
        .map(|r| format!("{}{}", r.headers["webhook-id"], r.headers["webhook-signature"]))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120, "no delivery was sent twice");
}

#[actix_web::test]
async fn parked_deliveries_are_resent_or_dropped_when_the_webhook_comes_back() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(200);
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |i| {
        i.active = false
    })
    .await;
    let key = tenant_key(&app, &tenant).await;
    post(&app, &key, "/api/v1/events", &booking("a")).await;
    post(&app, &key, "/api/v1/events", &booking("b")).await;
    let engine = engine(&app);
    assert_eq!(
        engine.run_due_once(app.clock.now()).await.unwrap().attempted,
        0,
        "inactive: parked"
    );
    assert_eq!(
        reload(&app, &webhook).await.event_count,
        2,
        "the counter grows per fan-out"
    );
    let (tenant_id, id) = (tenant.id, webhook.id);
    let now = app.clock.now();
    app.with_conn(move |conn| {
        services::webhooks::switch_in(conn, tenant_id, id, true, Parked::Resend, &Actor::system(), now)
            .unwrap()
    })
    .await;
    assert_eq!(engine.run_due_once(app.clock.now()).await.unwrap().succeeded, 2);
    app.with_conn(move |conn| {
        services::webhooks::switch_in(conn, tenant_id, id, false, Parked::Keep, &Actor::system(), now)
            .unwrap()
    })
    .await;
    post(&app, &key, "/api/v1/events", &booking("c")).await;
    app.with_conn(move |conn| {
        services::webhooks::switch_in(conn, tenant_id, id, true, Parked::Drop, &Actor::system(), now).unwrap()
    })
    .await;
    assert_eq!(engine.run_due_once(app.clock.now()).await.unwrap().attempted, 0);
    assert_eq!(receiver.requests().len(), 2);
}

#[actix_web::test]
async fn capabilities_trim_the_data_and_the_customer_language_is_sent() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(200);
    webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |i| {
        i.capabilities = vec!["customer".into()];
        i.use_customer_language = true;
    })
    .await;
    let key = tenant_key(&app, &tenant).await;
    post(&app, &key, "/api/v1/events", &booking("b")).await;
    engine(&app).run_due_once(app.clock.now()).await.unwrap();
    let request = receiver.requests().remove(0);
    assert_eq!(request.headers["content-language"], "de");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert!(body["data"].get("pricing").is_none(), "pricing was not chosen");
    assert_eq!(body["data"]["customer"]["email"], "sofia@example.com");
    assert_eq!(body["data"]["localized"], json!({"de": {"name": "Rundgang"}}));
}

#[actix_web::test]
async fn the_event_api_refuses_bad_input_clearly_and_keeps_idempotency() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let key = tenant_key(&app, &tenant).await;
    let mut keyed = booking("b");
    keyed["idempotency_key"] = json!("order-77");
    let (_, first) = post(&app, &key, "/api/v1/events", &keyed).await;
    let (status, again) = post(&app, &key, "/api/v1/events", &keyed).await;
    assert_eq!((status, &again), (202, &first), "the first result again");

    let cases = [
        (json!({"type": "booking.exploded", "data": {}}), 422, Some("type")),
        (json!({"type": "booking.created", "data": []}), 422, Some("data")),
        (
            json!({"type": "booking.created", "data": {}, "colour": "red"}),
            422,
            None,
        ),
        (json!({"type": 7, "data": {}}), 422, Some("type")),
        (
            json!({"type": "booking.created", "data": {}, "connection": "CTR-404"}),
            422,
            Some("connection"),
        ),
    ];
    for (body, expected, field) in cases {
        let (status, error) = post(&app, &key, "/api/v1/events", &body).await;
        assert_eq!(status, expected, "{body} -> {error}");
        assert!(
            error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{error}");
        }
    }
    let big = json!({"type": "booking.created", "data": {"blob": "x".repeat(1024 * 1024)}});
    assert_eq!(post(&app, &key, "/api/v1/events", &big).await.0, 413);
    let many = json!({"events": (0..501).map(|i| booking(&i.to_string())).collect::<Vec<_>>()});
    let (status, error) = post(&app, &key, "/api/v1/events/batch", &many).await;
    assert_eq!((status, error["error"]["field"].as_str()), (422, Some("events")));
    let bad_batch = json!({"events": [booking("ok"), {"type": "nope", "data": {}}]});
    let (status, error) = post(&app, &key, "/api/v1/events/batch", &bad_batch).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (422, Some("events[1].type"))
    );
    let count: i64 = app
        .with_conn(|conn| hookboard::schema::events::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(count, 1, "a refused batch writes nothing");

    let (status, error) = post(&app, "hbk_unknown", "/api/v1/events", &booking("x")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let tenant_id = tenant.id;
    app.with_conn(move |conn| {
        let key = ApiKey::list(conn, tenant_id).unwrap().remove(0);
        ApiKey::set_enabled(conn, tenant_id, key.id, false).unwrap();
    })
    .await;
    let (status, error) = post(&app, &key, "/api/v1/events", &booking("x")).await;
    assert_eq!(status, 401);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("switched off")
    );
}

#[actix_web::test]
async fn a_webhooks_own_key_catches_up_on_its_event_types_only() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let mut input = Input {
        url: "https://crm.example/in".into(),
        events: vec!["booking.created".into()],
        ..Input::default()
    };
    input.active = false;
    let (tenant_id, secrets) = (tenant.id, app.secrets());
    let (_, webhook_key) = app
        .with_conn(move |conn| Webhook::create(conn, tenant_id, &input, &secrets).unwrap())
        .await;
    let key = tenant_key(&app, &tenant).await;
    let (_, booked) = post(&app, &key, "/api/v1/events", &booking("a")).await;
    let (_, paid) = post(
        &app,
        &key,
        "/api/v1/events",
        &json!({"type": "payment.completed", "data": {"amount": 1}}),
    )
    .await;
    post(&app, &key, "/api/v1/events", &booking("b")).await;

    let client = reqwest::Client::new();
    let page: Value = client
        .get(app.url("/api/v1/events?limit=10"))
        .bearer_auth(&webhook_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["booking.created", "booking.created"]);
    let after = format!("/api/v1/events?after={}&limit=10", booked["id"].as_str().unwrap());
    let rest: Value = client
        .get(app.url(&after))
        .bearer_auth(&webhook_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    let one = client
        .get(app.url(&format!("/api/v1/events/{}", booked["id"].as_str().unwrap())))
        .bearer_auth(&webhook_key)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let other = client
        .get(app.url(&format!("/api/v1/events/{}", paid["id"].as_str().unwrap())))
        .bearer_auth(&webhook_key)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "not a type it subscribes to");
    let (status, _) = post(&app, &webhook_key, "/api/v1/events", &booking("c")).await;
    assert_eq!(status, 403, "a webhook key cannot publish");
    let all: Value = client
        .get(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["events"].as_array().unwrap().len(),
        3,
        "a tenant key reads everything"
    );
}

#[actix_web::test]
async fn the_background_worker_delivers_at_once_and_stops_cleanly() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(200);
    webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    let url = app.database_url.clone();
    let worker = engine(&app);
    let handle = dispatcher::start(worker, &url);
    // Give the listener a moment to LISTEN, then publish and watch it arrive.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    post(&app, &key, "/api/v1/events", &booking("live")).await;
    while receiver.requests().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the worker never delivered"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    crate::helpers::tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;
    let claimed: i64 = app
        .with_conn(|conn| {
            use hookboard::schema::deliveries as d;
            d::table
                .filter(d::claimed_by.is_not_null())
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(claimed, 0, "nothing left claimed after shutdown");
}

#[actix_web::test]
async fn attempts_older_than_the_retention_are_cleaned_up() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(200);
    webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    post(&app, &key, "/api/v1/events", &booking("old")).await;
    let engine = engine(&app);
    engine.run_due_once(app.clock.now()).await.unwrap();
    assert_eq!(row_counts(&app).await, (1, 1, 1));
    assert_eq!(
        engine
            .clean_up(app.clock.now() + chrono::Duration::days(29))
            .unwrap(),
        0,
        "kept within 30 days"
    );
    assert_eq!(
        engine
            .clean_up(app.clock.now() + chrono::Duration::days(31))
            .unwrap(),
        1
    );
    assert_eq!(row_counts(&app).await, (0, 0, 0));
}

async fn row_counts(app: &TestApp) -> (i64, i64, i64) {
    app.with_conn(|conn| {
        use hookboard::schema::{deliveries, delivery_attempts, events};
        let a: i64 = delivery_attempts::table.count().get_result(conn).unwrap();
        let d: i64 = deliveries::table.count().get_result(conn).unwrap();
        let e: i64 = events::table.count().get_result(conn).unwrap();
        (a, d, e)
    })
    .await
}

#[actix_web::test]
async fn the_api_lists_deliveries_with_attempts_resends_and_sends_test_events() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(500);
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |i| {
        i.retry_on_error = false
    })
    .await;
    let key = tenant_key(&app, &tenant).await;
    let (status, sent) = post(
        &app,
        &key,
        &format!("/api/v1/webhooks/{}/test", webhook.id),
        &json!({"type": "payment.completed"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let engine = engine(&app);
    engine.run_due_once(app.clock.now()).await.unwrap();

    let client = reqwest::Client::new();
    let log: Value = client
        .get(app.url(&format!("/api/v1/webhooks/{}/deliveries", webhook.id)))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["event_type"], "payment.completed");
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"][0]["status_code"], 500);
    assert_eq!(delivery["event_id"], sent["id"]);

    receiver.set(Behaviour::Answer(200, vec![], vec![]));
    let (status, _) = post(
        &app,
        &key,
        &format!("/api/v1/deliveries/{}/resend", delivery["id"]),
        &json!({}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(engine.run_due_once(app.clock.now()).await.unwrap().succeeded, 1);
    let requests = receiver.requests();
    assert_eq!(
        requests[0].headers["webhook-id"], requests[1].headers["webhook-id"],
        "a resend keeps the webhook-id"
    );

    let other = app.create_tenant("Other Travel", Plan::Scale).await;
    let other_id = other.id;
    app.with_conn(move |conn| Tenant::set_webhooks_enabled(conn, other_id, true).unwrap())
        .await;
    let other_key = tenant_key(&app, &other).await;
    let (status, error) = post(
        &app,
        &other_key,
        &format!("/api/v1/deliveries/{}/resend", delivery["id"]),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not_found")),
        "another tenant's id"
    );
}

async fn publish_many(app: &TestApp, key: &str, count: usize) {
    let events: Vec<Value> = (0..count).map(|i| booking(&format!("bk-{i}"))).collect();
    for chunk in events.chunks(500) {
        let (status, _) = post(app, key, "/api/v1/events/batch", &json!({ "events": chunk })).await;
        assert_eq!(status, 202);
    }
}

async fn count_by_status(app: &TestApp, webhook_id: i64) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for (status, _, _) in deliveries_of(app, webhook_id).await {
        *counts.entry(status).or_default() += 1;
    }
    counts
}

async fn still_claimed(app: &TestApp) -> i64 {
    app.with_conn(|conn| {
        use hookboard::schema::deliveries as d;
        d::table
            .filter(d::claimed_by.is_not_null())
            .count()
            .get_result(conn)
            .unwrap()
    })
    .await
}

async fn wait_for(receiver: &Receiver, at_least: usize) {
    let started = Instant::now();
    while receiver.requests().len() < at_least {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {} arrived",
            receiver.requests().len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deliveries a worker already queued follow an edit of their webhook: once the address
/// changes, the rest go to the new address (the old one gets only those in flight), each
/// exactly once.
#[actix_web::test]
async fn queued_deliveries_follow_an_edit_of_their_webhook() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let old = Receiver::start(Behaviour::Slow(Duration::from_millis(50)));
    let new = Receiver::answering(204);
    let webhook = webhook_to(&app, &tenant, &old.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    publish_many(&app, &key, 300).await;
    let handle = dispatcher::start(engine(&app), &app.database_url);
    wait_for(&old, 20).await;
    let (tenant_id, id, url, secrets) = (tenant.id, webhook.id, new.url.clone(), app.secrets());
    app.with_conn(move |conn| {
        let input = Input {
            url,
            events: vec!["booking.created".into()],
            ..Input::default()
        };
        // What the edit service does: save, then wake the workers.
        let saved = Webhook::update(conn, tenant_id, id, &input, &secrets).unwrap();
        hookboard::models::delivery::notify(conn).unwrap();
        saved
    })
    .await;
    let at_edit = old.requests().len();
    wait_for(&new, 300 - at_edit - 2 * dispatcher::PER_WEBHOOK).await;
    let after_edit = old.requests().len() - at_edit;
    let started = Instant::now();
    while old.requests().len() + new.requests().len() < 300 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not all deliveries went out"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    crate::helpers::tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;
    assert!(
        after_edit <= 2 * dispatcher::PER_WEBHOOK,
        "{after_edit} deliveries went to the old address after the edit"
    );
    let mut ids: Vec<String> = old
        .requests()
        .iter()
        .chain(new.requests().iter())
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300, "each delivery went out once");
    assert_eq!(old.requests().len() + new.requests().len(), 300);
    assert_eq!(
        count_by_status(&app, webhook.id).await.get("succeeded").copied(),
        Some(300)
    );
}

/// Switching webhooks off and on and deleting them while the worker writes their results
/// never deadlocks (PostgreSQL would end one side after a second): the user's action and
/// the worker both lock the webhook row before its deliveries.
#[actix_web::test]
async fn switching_and_deleting_webhooks_while_results_are_written_never_deadlocks() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(204);
    let mut webhooks = Vec::new();
    for _ in 0..4 {
        webhooks.push(webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await);
    }
    let key = tenant_key(&app, &tenant).await;
    publish_many(&app, &key, 1500).await;
    let handle = dispatcher::start(engine(&app), &app.database_url);
    wait_for(&receiver, 100).await;
    for round in 0..20 {
        for webhook in &webhooks {
            let (tenant_id, id, now) = (tenant.id, webhook.id, app.clock.now());
            app.with_conn(move |conn| {
                services::webhooks::switch_in(
                    conn,
                    tenant_id,
                    id,
                    false,
                    Parked::Keep,
                    &Actor::system(),
                    now,
                )
                .unwrap_or_else(|e| panic!("switching off in round {round}: {e}"));
                services::webhooks::switch_in(
                    conn,
                    tenant_id,
                    id,
                    true,
                    Parked::Resend,
                    &Actor::system(),
                    now,
                )
                .unwrap_or_else(|e| panic!("switching on in round {round}: {e}"));
            })
            .await;
        }
    }
    for webhook in &webhooks[..2] {
        let (tenant_id, id) = (tenant.id, webhook.id);
        app.with_conn(move |conn| {
            services::webhooks::delete_in(conn, tenant_id, id, &Actor::system())
                .map(|(_, waiting)| waiting)
                .unwrap_or_else(|e| panic!("deleting: {e}"))
        })
        .await;
    }
    crate::helpers::tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;
    assert_eq!(still_claimed(&app).await, 0);
    assert_eq!(
        orphans(&app).await,
        (0, 0),
        "the deleted webhooks left nothing behind"
    );
    for webhook in &webhooks[2..] {
        let counts = count_by_status(&app, webhook.id).await;
        assert_eq!(counts.values().sum::<usize>(), 1500, "nothing lost: {counts:?}");
    }
}

/// The dispatcher's statements are prepared once per connection (diesel leaves hand-written
/// SQL unprepared, so PostgreSQL parsed and planned each one on every call): the claim is
/// planned for each call, as its best plan depends on the queue; the result statements
/// keep one plan.
#[actix_web::test]
async fn the_dispatchers_statements_are_prepared_once_per_connection() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(204);
    webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    // One connection, so that every statement runs in the session inspected below.
    let pool = hookboard::db::connect(&app.database_url, 1).unwrap();
    let engine = engine_on(&app, pool.clone(), true, "2s");
    for round in 0..3 {
        publish_many(&app, &key, 2).await;
        let summary = engine.run_due_once(app.clock.now()).await.unwrap();
        assert_eq!(summary.succeeded, 2, "round {round}");
    }
    // The engine keeps its connection between transactions: dropped, it goes back.
    drop(engine);
    #[derive(QueryableByName, Debug)]
    struct Prepared {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic_plans: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        custom_plans: i64,
    }
    let prepared: Vec<Prepared> = crate::helpers::tokio_block(move || {
        diesel::sql_query("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            .load(&mut pool.get().unwrap())
            .unwrap()
    })
    .await;
    let find = |part: &str| {
        let found: Vec<&Prepared> = prepared.iter().filter(|p| p.statement.contains(part)).collect();
        assert_eq!(
            found.len(),
            1,
            "one prepared statement with {part:?}: {prepared:#?}"
        );
        found[0]
    };
    let claim = find("due_webhooks");
    assert!(claim.custom_plans >= 3 && claim.generic_plans == 0, "{claim:?}");
    for part in [
        "INSERT INTO delivery_attempts",
        "UPDATE deliveries d SET status = v.status",
        "ORDER BY id FOR KEY SHARE",
    ] {
        let statement = find(part);
        assert!(
            statement.generic_plans >= 3 && statement.custom_plans == 0,
            "{statement:?}"
        );
    }
    assert_eq!(receiver.requests().len(), 6);
}

/// A webhook with a long backlog does not keep another webhook waiting: webhooks with due
/// deliveries take turns in each claim, instead of the queue being read in due order
/// (which showed the other webhook's delivery only once the backlog had drained).
#[actix_web::test]
async fn a_long_backlog_of_one_webhook_does_not_hold_up_another() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_millis(200)));
    let fast = Receiver::answering(204);
    webhook_to(&app, &tenant, &slow.url, &["booking.created"], |_| {}).await;
    webhook_to(&app, &tenant, &fast.url, &["payment.completed"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    // Far more due deliveries than one claim takes; 8 at a time at 200 ms each, over a
    // minute of work.
    publish_many(&app, &key, 3000).await;
    let handle = dispatcher::start(engine(&app), &app.database_url);
    wait_for(&slow, dispatcher::PER_WEBHOOK).await;
    let payment = json!({"type": "payment.completed", "data": {"id": "pay_1", "amount": 10800}});
    let (status, body) = post(&app, &key, "/api/v1/events", &payment).await;
    assert_eq!(status, 202, "{body}");
    wait_for(&fast, 1).await;
    let backlog_sent = slow.requests().len();
    crate::helpers::tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;
    assert!(
        backlog_sent < 300,
        "the payment waited for {backlog_sent} of the 3,000 backlogged bookings"
    );
    assert_eq!(fast.requests().len(), 1);
    assert_eq!(still_claimed(&app).await, 0);
}

/// The worker holds a queue per webhook so the next attempt starts without a round trip,
/// yet never sends more than 8 at once to one webhook, and a webhook switched off while
/// its queue is held gets nothing more: the queue is parked, nothing is lost or doubled.
#[actix_web::test]
async fn queued_deliveries_respect_the_per_webhook_limit_and_a_paused_webhook_parks_its_queue() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(40)));
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    publish_many(&app, &key, 300).await;
    let handle = dispatcher::start(engine(&app), &app.database_url);
    wait_for(&receiver, 60).await;
    let peak = receiver.peak_concurrency();
    assert!(
        (2..=dispatcher::PER_WEBHOOK).contains(&peak),
        "peak concurrency {peak}"
    );

    let (tenant_id, id, now) = (tenant.id, webhook.id, app.clock.now());
    app.with_conn(move |conn| {
        services::webhooks::switch_in(conn, tenant_id, id, false, Parked::Keep, &Actor::system(), now)
            .unwrap()
    })
    .await;
    // The loop re-checks held webhooks on its next claim (at most a poll interval away).
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let after_pause = receiver.requests().len();
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.requests().len(),
        after_pause,
        "nothing is sent after the pause settles"
    );
    crate::helpers::tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;

    let counts = count_by_status(&app, webhook.id).await;
    let succeeded = counts.get("succeeded").copied().unwrap_or(0);
    let parked = counts.get("parked").copied().unwrap_or(0);
    assert_eq!(
        succeeded, after_pause,
        "every request is recorded once: {counts:?}"
    );
    assert_eq!(succeeded + parked, 300, "nothing lost: {counts:?}");
    assert!(parked > 0, "the queue was parked: {counts:?}");
    let mut ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), after_pause, "no delivery was sent twice");
    assert_eq!(still_claimed(&app).await, 0);
}

/// Shutting down lets the attempts in flight finish and gives back everything queued, so
/// another process takes it at once instead of after the lease.
#[actix_web::test]
async fn shutdown_finishes_what_is_in_flight_and_gives_back_the_queue() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(150)));
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    publish_many(&app, &key, 120).await;
    let handle = dispatcher::start(engine(&app), &app.database_url);
    wait_for(&receiver, 8).await;
    crate::helpers::tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;
    let sent = receiver.requests().len();
    let counts = count_by_status(&app, webhook.id).await;
    assert_eq!(counts.get("succeeded").copied().unwrap_or(0), sent, "{counts:?}");
    assert_eq!(
        counts.get("pending").copied().unwrap_or(0),
        120 - sent,
        "{counts:?}"
    );
    assert!(sent < 120, "shutdown stopped before the queue ran dry");
    assert_eq!(still_claimed(&app).await, 0, "the queue was given back");

    // Another worker picks the rest up at once.
    let summary = engine(&app).run_due_once(app.clock.now()).await.unwrap();
    assert_eq!(summary.succeeded, 120 - sent);
}

/// A webhook deleted while the worker holds a queue for it gets nothing more than what
/// was already in flight.
#[actix_web::test]
async fn a_deleted_webhooks_queue_is_dropped() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(100)));
    let webhook = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    publish_many(&app, &key, 300).await;
    let handle = dispatcher::start(engine(&app), &app.database_url);
    wait_for(&receiver, 40).await;
    let (tenant_id, id) = (tenant.id, webhook.id);
    app.with_conn(move |conn| {
        services::webhooks::delete_in(conn, tenant_id, id, &Actor::system())
            .map(|(_, waiting)| waiting)
            .unwrap()
    })
    .await;
    let at_delete = receiver.requests().len();
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    let sent_after = receiver.requests().len() - at_delete;
    // In flight, plus what lanes start before the next claim notices (after 8 ended);
    // a queue sent to the end would be up to 64.
    assert!(
        sent_after <= 2 * dispatcher::PER_WEBHOOK + 4,
        "{sent_after} deliveries went out after the delete"
    );
    crate::helpers::tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;
}

/// Deliveries whose webhook is gone, and attempts whose delivery is gone: the writers keep
/// both at zero (no foreign keys do since migration checked_by_writers).
async fn orphans(app: &TestApp) -> (i64, i64) {
    app.with_conn(|conn| {
        #[derive(QueryableByName)]
        struct Orphans {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            deliveries: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            attempts: i64,
        }
        let found: Orphans = diesel::sql_query(
            "SELECT (SELECT count(*) FROM deliveries d
                     WHERE NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)) AS deliveries,
                    (SELECT count(*) FROM delivery_attempts a
                     WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)) AS attempts",
        )
        .get_result(conn)
        .unwrap();
        (found.deliveries, found.attempts)
    })
    .await
}

#[actix_web::test]
async fn deleting_a_webhook_takes_its_deliveries_and_attempts_with_it() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let receiver = Receiver::answering(204);
    let gone = webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    webhook_to(&app, &tenant, &receiver.url, &["booking.created"], |_| {}).await;
    let key = tenant_key(&app, &tenant).await;
    publish_many(&app, &key, 3).await;
    engine(&app).run_due_once(app.clock.now()).await.unwrap();
    publish_many(&app, &key, 2).await;
    assert_eq!(row_counts(&app).await, (6, 10, 5));

    let (tenant_id, id) = (tenant.id, gone.id);
    let waiting = app
        .with_conn(move |conn| {
            services::webhooks::delete_in(conn, tenant_id, id, &Actor::system())
                .map(|(_, waiting)| waiting)
                .unwrap()
        })
        .await;
    assert_eq!(waiting, 2, "the two not yet sent were waiting");
    assert_eq!(row_counts(&app).await, (3, 5, 5), "the other webhook's rows stay");
    assert_eq!(orphans(&app).await, (0, 0));
}

/// Publishing reads the webhooks, then locks those it writes deliveries for: a webhook
/// deleted in between (here: its deletion holds the lock while publishing waits) gets no
/// deliveries, and the event is accepted for the others.
#[actix_web::test]
async fn a_webhook_deleted_while_an_event_fans_out_gets_no_delivery() {
    let app = TestApp::spawn().await;
    let tenant = scale_tenant(&app).await;
    let gone = webhook_to(
        &app,
        &tenant,
        "https://gone.example/in",
        &["booking.created"],
        |_| {},
    )
    .await;
    let kept = webhook_to(
        &app,
        &tenant,
        "https://kept.example/in",
        &["booking.created"],
        |_| {},
    )
    .await;

    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (go_tx, go) = std::sync::mpsc::channel::<()>();
    let deleting = {
        let (pool, tenant_id, id) = (app.pool.clone(), tenant.id, gone.id);
        std::thread::spawn(move || {
            pool.get().unwrap().transaction(|conn| {
                diesel::sql_query("SELECT id FROM webhooks WHERE id = $1 FOR UPDATE")
                    .bind::<diesel::sql_types::BigInt, _>(id)
                    .execute(conn)?;
                locked_tx.send(()).unwrap();
                go.recv().unwrap();
                services::webhooks::delete_in(conn, tenant_id, id, &Actor::system())
                    .map(|(_, waiting)| waiting)
            })
        })
    };
    locked.recv().unwrap();
    let publishing = {
        let (pool, tenant, now) = (app.pool.clone(), tenant.clone(), app.clock.now());
        std::thread::spawn(move || {
            let event = NewEvent {
                kind: "booking.created".into(),
                data: json!({"id": "bk-race"}),
                occurred_at: None,
                connection: None,
                language: None,
                idempotency_key: None,
            };
            outbox::publish(&mut pool.get().unwrap(), &tenant, &[event], now).map_err(|e| e.to_string())
        })
    };
    // Publishing has read both webhooks and waits for the deleted one's lock.
    let started = Instant::now();
    loop {
        let waiting: i64 = app
            .with_conn(|conn| {
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "(SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND wait_event_type = 'Lock')",
                ))
                .get_result(conn)
                .unwrap()
            })
            .await;
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "publishing never waited for the lock"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    go_tx.send(()).unwrap();
    assert_eq!(deleting.join().unwrap().unwrap(), 0);
    let accepted = publishing.join().unwrap().unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].deliveries, 1, "only the webhook kept");
    assert_eq!(deliveries_of(&app, kept.id).await.len(), 1);
    assert_eq!(orphans(&app).await, (0, 0));
    assert_eq!(reload(&app, &kept).await.event_count, 1);
}
