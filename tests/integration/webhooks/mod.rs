//! The webhook pages over HTTP: the table, the form, the switch, delete and the webhook
//! page, against the real app and database. This file holds what they arrange with.

mod delete;
mod form;
mod page;
mod switch;
mod table;

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::delivery::Delivery;
use hookboard::models::event_type::EventType;
use hookboard::models::tenant::Tenant;
use hookboard::models::webhook::Webhook;
use hookboard::validation::webhook::Input;

use crate::helpers::TestApp;

/// Creates a webhook directly through the model (fast, for arranging many rows).
pub async fn seed_webhook(
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

pub const FORM: &[(&str, &str)] = &[
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

pub async fn park_deliveries(app: &TestApp, tenant: &Tenant, webhook: &Webhook, count: usize) {
    for _ in 0..count {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let now = app.clock.now();
        app.with_conn(move |conn| {
            let event_type = EventType::find(conn, "booking.created").unwrap().unwrap();
            let (_, delivery) = Delivery::send_test(conn, &tenant, &webhook, &event_type, now).unwrap();
            use hookboard::schema::deliveries;
            diesel::update(deliveries::table.find(delivery.id))
                .set(deliveries::status.eq("parked"))
                .execute(conn)
                .unwrap();
        })
        .await;
    }
}

pub async fn delivery_statuses(app: &TestApp, webhook_id: i64) -> Vec<String> {
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
