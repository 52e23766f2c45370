//! The delivery engine end to end: the API publishes, the outbox fans out, the dispatcher
//! sends to real receivers on loopback, and the results land in the database.
//!
//! One file per area; this one holds what they arrange with: a [`Fixture`] (the app, a Scale
//! tenant and its API key) that makes webhooks, publishes, runs the engine or starts the
//! worker, and reads the results back.

mod alerts;
mod auto_disable;
mod concurrency;
mod event_api;
mod filters;
mod lifecycle;
mod log_days;
/// `make reliability` selects these tests by `delivery::misbehaving`.
mod misbehaving;
mod ordering;
mod parking;
mod replay;
mod retention;
mod retries;
mod wire;

pub(crate) use misbehaving::gzip_bomb;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::db::DbPool;
use hookboard::delivery::dispatcher::{self, Dispatcher, Summary};
use hookboard::models::api_key::ApiKey;
use hookboard::models::audit::Actor;
use hookboard::models::tenant::Tenant;
use hookboard::models::webhook::Webhook;
use hookboard::services::{self, webhooks::Parked};
use hookboard::validation::webhook::Input;
use serde_json::{Value, json};

use crate::helpers::{TestApp, tokio_block};
use crate::receiver::Receiver;

/// A fresh app with a Scale tenant ("Alpine Tours", the Webhooks tool on) and an API key
/// of that tenant.
pub struct Fixture {
    pub app: TestApp,
    pub tenant: Tenant,
    pub key: String,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with(&[]).await
    }

    /// The same, with some settings changed (see [`TestApp::spawn_with`]).
    pub async fn with(overrides: &[(&str, &str)]) -> Fixture {
        let app = TestApp::spawn_with(overrides).await;
        let tenant = app.scale_tenant("Alpine Tours").await;
        let key = tenant_key(&app, &tenant).await;
        Fixture { app, tenant, key }
    }

    /// A webhook to `url` for booking.created, set up as a new webhook is.
    pub async fn webhook(&self, url: &str) -> Webhook {
        self.webhook_with(url, &["booking.created"], |_| {}).await
    }

    /// A webhook to `url` for `events`, with `tweak` applied to the form's defaults.
    pub async fn webhook_with(&self, url: &str, events: &[&str], tweak: impl FnOnce(&mut Input)) -> Webhook {
        self.app.create_webhook(&self.tenant, url, events, tweak).await.0
    }

    /// Publishes one event with the tenant's key.
    pub async fn publish(&self, event: &Value) -> (u16, Value) {
        self.post("/api/v1/events", event).await
    }

    /// Publishes `count` bookings, in batches.
    pub async fn publish_many(&self, count: usize) {
        let events: Vec<Value> = (0..count).map(|i| booking(&format!("bk-{i}"))).collect();
        for chunk in events.chunks(500) {
            let (status, _) = self
                .post("/api/v1/events/batch", &json!({ "events": chunk }))
                .await;
            assert_eq!(status, 202);
        }
    }

    /// A POST to the API with the tenant's key.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        post(&self.app, &self.key, path, body).await
    }

    /// An engine that may reach loopback receivers, with a 2 s timeout.
    pub fn engine(&self) -> Dispatcher {
        self.engine_with(true, "2s")
    }

    /// An engine with loopback allowed or not, and the given delivery timeout.
    pub fn engine_with(&self, allow_loopback: bool, timeout: &str) -> Dispatcher {
        self.engine_on(self.app.pool.clone(), allow_loopback, timeout)
    }

    /// An engine on a pool of its own.
    pub fn engine_on(&self, pool: DbPool, allow_loopback: bool, timeout: &str) -> Dispatcher {
        self.app.engine_on(pool, allow_loopback, timeout)
    }

    /// One pass of a new engine over what is due now.
    pub async fn run_due(&self) -> Summary {
        self.engine().run_due_once(self.app.clock.now()).await.unwrap()
    }

    /// The background worker (LISTEN and the delivery loop) with a new engine.
    pub fn start_worker(&self) -> Worker {
        Worker(dispatcher::start(self.engine(), &self.app.database_url))
    }

    /// The webhook as stored now.
    pub async fn reload(&self, webhook: &Webhook) -> Webhook {
        let (tenant_id, id) = (webhook.tenant_id, webhook.id);
        self.app
            .with_conn(move |conn| Webhook::find(conn, tenant_id, id).unwrap())
            .await
    }

    /// Switches the webhook on or off as a person does (the switch service), doing
    /// `parked` with what it parked.
    pub async fn set_active(&self, webhook: &Webhook, active: bool, parked: Parked) {
        let (tenant_id, id, now) = (self.tenant.id, webhook.id, self.app.clock.now());
        self.app
            .with_conn(move |conn| {
                services::webhooks::switch_in(conn, tenant_id, id, active, parked, &Actor::system(), now)
                    .unwrap()
            })
            .await;
    }

    /// Deletes the webhook as a person does (the delete service); the number of deliveries
    /// that were still waiting.
    pub async fn delete(&self, webhook: &Webhook) -> i64 {
        let (tenant_id, id) = (self.tenant.id, webhook.id);
        self.app
            .with_conn(move |conn| {
                services::webhooks::delete_in(conn, tenant_id, id, &Actor::system())
                    .map(|(_, waiting)| waiting)
                    .unwrap_or_else(|e| panic!("deleting webhook {id}: {e}"))
            })
            .await
    }

    /// Status, attempts so far and next attempt of each delivery of a webhook, oldest first.
    pub async fn deliveries_of(&self, webhook_id: i64) -> Vec<(String, i32, chrono::DateTime<chrono::Utc>)> {
        self.app
            .with_conn(move |conn| {
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

    /// How many deliveries of a webhook are in each status.
    pub async fn count_by_status(&self, webhook_id: i64) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (status, _, _) in self.deliveries_of(webhook_id).await {
            *counts.entry(status).or_default() += 1;
        }
        counts
    }

    /// Deliveries some worker still holds.
    pub async fn still_claimed(&self) -> i64 {
        self.app
            .with_conn(|conn| {
                use hookboard::schema::deliveries as d;
                d::table
                    .filter(d::claimed_by.is_not_null())
                    .count()
                    .get_result(conn)
                    .unwrap()
            })
            .await
    }

    /// Rows of attempts, deliveries and events.
    pub async fn row_counts(&self) -> (i64, i64, i64) {
        self.app
            .with_conn(|conn| {
                use hookboard::schema::{deliveries, delivery_attempts, events};
                let a: i64 = delivery_attempts::table.count().get_result(conn).unwrap();
                let d: i64 = deliveries::table.count().get_result(conn).unwrap();
                let e: i64 = events::table.count().get_result(conn).unwrap();
                (a, d, e)
            })
            .await
    }

    /// Deliveries whose webhook is gone, and attempts whose delivery is gone: the writers
    /// keep both at zero (no foreign keys do since migration checked_by_writers).
    pub async fn orphans(&self) -> (i64, i64) {
        self.app.with_conn(|conn| {
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
}

/// A running background worker.
pub struct Worker(dispatcher::Handle);

impl Worker {
    /// Shuts the worker down, with 5 s for what is in flight.
    pub async fn stop(self) {
        let handle = self.0;
        tokio_block(move || handle.shutdown(Duration::from_secs(5))).await;
    }
}

/// A new API key of `tenant`.
pub async fn tenant_key(app: &TestApp, tenant: &Tenant) -> String {
    let id = tenant.id;
    app.with_conn(move |conn| ApiKey::create(conn, id, "Booking platform", None).unwrap().1)
        .await
}

/// A request to the API with `key` and an optional JSON body: the status and the JSON
/// answer (null if none).
pub async fn call(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A POST to the API with `key`.
pub async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> (u16, Value) {
    call(app, key, reqwest::Method::POST, path, Some(body)).await
}

/// A PATCH to the API with `key`.
pub async fn patch(app: &TestApp, key: &str, path: &str, body: &Value) -> (u16, Value) {
    call(app, key, reqwest::Method::PATCH, path, Some(body)).await
}

/// A GET from the API with `key`.
pub async fn get(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    call(app, key, reqwest::Method::GET, path, None).await
}

/// A booking.created event, with a customer, pricing and localized names.
pub fn booking(reference: &str) -> Value {
    json!({"type": "booking.created", "data": {"id": reference, "customer": {"language": "de", "email": "sofia@example.com"}, "pricing": {"total": 10800}, "localized": {"de": {"name": "Rundgang"}, "fr": {"name": "Visite"}}}})
}

/// Waits until the receiver has had `at_least` requests (20 s at the most).
pub async fn wait_for(receiver: &Receiver, at_least: usize) {
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
