//! The webhook pages over HTTP: the table, the form, the switch, delete and the webhook
//! page, against the real app and database. This file holds what they arrange with; the
//! app, tenant and owner they start from come from `TestApp::spawn_with_scale_owner`.

mod delete;
mod filters;
mod form;
mod page;
mod replay;
mod switch;
mod table;

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::audit::Actor;
use hookboard::models::tenant::Tenant;
use hookboard::models::webhook::Webhook;
use hookboard::services::deliveries::send_test_in;

use crate::helpers::TestApp;

/// A webhook made through the model (fast, for arranging many rows), on or off.
pub async fn seed_webhook(
    app: &TestApp,
    tenant: &Tenant,
    url: &str,
    events: &[&str],
    active: bool,
) -> Webhook {
    app.create_webhook(tenant, url, events, |i| i.active = active)
        .await
        .0
}

/// An active webhook to `url` for booking.created.
pub async fn booking_webhook(app: &TestApp, tenant: &Tenant, url: &str) -> Webhook {
    seed_webhook(app, tenant, url, &["booking.created"], true).await
}

/// The tenant's first webhook in the table's order.
pub async fn first_webhook(app: &TestApp, tenant: &Tenant) -> Webhook {
    let tenant_id = tenant.id;
    app.with_conn(move |conn| {
        Webhook::list(conn, tenant_id, &Default::default())
            .unwrap()
            .rows
            .remove(0)
    })
    .await
}

/// The webhook as stored now.
pub async fn find_webhook(app: &TestApp, tenant: &Tenant, id: i64) -> Webhook {
    let tenant_id = tenant.id;
    app.with_conn(move |conn| Webhook::find(conn, tenant_id, id).unwrap())
        .await
}

/// How many webhooks the tenant has.
pub async fn webhook_count(app: &TestApp, tenant: &Tenant) -> i64 {
    let tenant_id = tenant.id;
    app.with_conn(move |conn| Webhook::count(conn, tenant_id).unwrap())
        .await
}

/// The form of a new webhook as a person fills it in: two events, two headers.
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

/// A test event of booking.created sent to the webhook: the id of its delivery, pending.
pub async fn test_delivery(app: &TestApp, tenant: &Tenant, webhook: &Webhook) -> i64 {
    let (tenant, webhook) = (tenant.clone(), webhook.clone());
    let now = app.clock.now();
    app.with_conn(move |conn| {
        send_test_in(
            conn,
            tenant.id,
            webhook.id,
            "booking.created",
            &Actor::system(),
            now,
        )
        .unwrap()
        .delivery_id
    })
    .await
}

/// Makes `count` test deliveries of the webhook and parks them.
pub async fn park_deliveries(app: &TestApp, tenant: &Tenant, webhook: &Webhook, count: usize) {
    for _ in 0..count {
        let id = test_delivery(app, tenant, webhook).await;
        app.with_conn(move |conn| {
            use hookboard::schema::deliveries;
            diesel::update(deliveries::table.find(id))
                .set(deliveries::status.eq("parked"))
                .execute(conn)
                .unwrap();
        })
        .await;
    }
}

/// The status of each delivery of the webhook, oldest first.
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
