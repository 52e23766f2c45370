//! The two doors agree: every operation the pages and the API both offer is run through
//! each, on two tenants seeded alike, and leaves the same stored state, the same audit
//! entries and the same requests at the receiver. Also the bugs of the first wave where
//! the doors disagreed or a stored value was read as a default.

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::api_key::ApiKey;
use hookboard::models::tenant::Tenant;
use hookboard::models::user::Role;
use hookboard::models::webhook::{UNREADABLE, Webhook};
use hookboard::validation::webhook::Input;
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp};
use crate::receiver::Receiver;

const LOOPBACK_TARGETS: &[(&str, &str)] = &[
    ("HOOKBOARD_ALLOW_HTTP_TARGETS", "true"),
    ("HOOKBOARD_ALLOW_PRIVATE_TARGETS", "127.0.0.0/8"),
];

/// One tenant with its webhook, reached through one door.
struct Side {
    tenant: Tenant,
    webhook: Webhook,
    receiver: Receiver,
    owner: Browser,
    key: String,
}

/// A Scale tenant whose webhook No 1 goes to its own receiver with only the `customer`
/// section and the customer's language, and carries a credential header.
async fn side(app: &TestApp, name: &str, active: bool) -> Side {
    let email = format!("owner@{}.example", name.to_lowercase());
    let (tenant, owner) = app.scale_tenant_with_owner(name, &email).await;
    let receiver = Receiver::answering(204);
    let input = Input {
        url: receiver.url.clone(),
        // As validation stores them: sorted.
        events: vec!["booking.cancelled".into(), "booking.created".into()],
        capabilities: vec!["customer".into()],
        use_customer_language: true,
        headers: vec![("Authorization".into(), "Bearer crm-token-123456".into())],
        active,
        ..Input::default()
    };
    let (tenant_id, secrets) = (tenant.id, app.secrets());
    let (webhook, key) = app
        .with_conn(move |conn| {
            let (webhook, _) =
                Webhook::create(conn, tenant_id, &crate::helpers::valid(input.clone()), &secrets).unwrap();
            let (_, key) = ApiKey::create(conn, tenant_id, "Booking platform", None).unwrap();
            (webhook, key)
        })
        .await;
    Side {
        tenant,
        webhook,
        receiver,
        owner,
        key,
    }
}

async fn api(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client().request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Publishes a booking through the API (parked while the webhook is off).
async fn publish(app: &TestApp, side: &Side, reference: &str) {
    let booking = json!({"type": "booking.created", "data": {
        "id": reference, "customer": {"language": "de", "email": "sofia@example.com"}, "pricing": {"total": 10800},
    }});
    let (status, body) = api(
        app,
        &side.key,
        reqwest::Method::POST,
        "/api/v1/events",
        Some(booking),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

async fn get(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    api(app, key, reqwest::Method::GET, path, None).await
}

/// What an operation leaves behind, with what differs between tenants left out.
#[derive(Debug, PartialEq)]
struct Outcome {
    webhook: Option<Value>,
    deliveries: Vec<String>,
    audit: Vec<String>,
    received: Vec<Value>,
}

async fn outcome(app: &TestApp, side: &Side) -> Outcome {
    let (tenant_id, id) = (side.tenant.id, side.webhook.id);
    let (secrets, own_receiver) = (app.secrets(), side.receiver.url.clone());
    let (webhook, deliveries, audit) = app
        .with_conn(move |conn| {
            use hookboard::schema::{audit_log, deliveries};
            let webhook = Webhook::find(conn, tenant_id, id).optional().unwrap().map(|w| {
                json!({
                    "url_is_its_receiver": w.url == own_receiver, "events": w.events, "status": w.status, "api_key_enabled": w.api_key_enabled,
                    "retry_on_error": w.retry_on_error, "capabilities": w.capabilities,
                    "headers": w.shown_headers(&secrets), "rotated": w.previous_secret_ciphertext.is_some(),
                })
            });
            let mut statuses: Vec<String> = deliveries::table
                .filter(deliveries::tenant_id.eq(tenant_id))
                .select(deliveries::status)
                .load(conn)
                .unwrap();
            statuses.sort();
            let audit: Vec<(String, Option<String>)> = audit_log::table
                .filter(audit_log::tenant_id.eq(tenant_id))
                .order(audit_log::id)
                .select((audit_log::action, audit_log::target_id))
                .load(conn)
                .unwrap();
            let audit = audit
                .into_iter()
                .filter(|(action, _)| !action.starts_with("tool.") && !action.starts_with("tenant."))
                // A webhook is named by its No (the same in both tenants); a delivery by
                // its id, which differs.
                .map(|(action, target)| match action.starts_with("webhook.") {
                    true => format!("{action} {}", target.unwrap_or_default()),
                    false => action,
                })
                .collect();
            (webhook, statuses, audit)
        })
        .await;
    let mut received: Vec<Value> = side
        .receiver
        .requests()
        .into_iter()
        .map(|r| {
            let mut body: Value = serde_json::from_slice(&r.body).unwrap();
            let object = body.as_object_mut().unwrap();
            for varying in ["id", "timestamp", "tenant"] {
                object.remove(varying);
            }
            json!({ "body": body, "language": r.headers.get("content-language") })
        })
        .collect();
    // Deliveries of one webhook go out concurrently: compare them in a stable order.
    received.sort_by_key(|r| r.to_string());
    Outcome {
        webhook,
        deliveries,
        audit,
        received,
    }
}

/// The operations both doors offer, each as (name, through the page, through the API).
#[derive(Debug, Clone, Copy)]
enum Operation {
    SwitchOff,
    SwitchOnResendingParked,
    SwitchOnDroppingParked,
    Edit,
    SendTestEvent,
    RotateSecret,
    SwitchApiKeyOff,
    ResendDelivery,
    Delete,
}

impl Operation {
    /// Whether the webhook starts switched off with two parked deliveries.
    fn starts_off(self) -> bool {
        matches!(
            self,
            Operation::SwitchOnResendingParked | Operation::SwitchOnDroppingParked
        )
    }

    async fn through_the_page(self, app: &TestApp, side: &Side) {
        let id = side.webhook.id;
        let response = match self {
            Operation::SwitchOff => side.owner.htmx_post(&format!("/webhooks/{id}/toggle"), &[]).await,
            Operation::SwitchOnResendingParked => {
                side.owner
                    .htmx_post(&format!("/webhooks/{id}/toggle"), &[("parked", "resend")])
                    .await
            }
            Operation::SwitchOnDroppingParked => {
                side.owner
                    .htmx_post(&format!("/webhooks/{id}/toggle"), &[("parked", "drop")])
                    .await
            }
            Operation::Edit => {
                let form = [
                    ("url", side.receiver.url.as_str()),
                    ("events", "booking.cancelled"),
                    ("active", "on"),
                    ("api_key_enabled", "on"),
                    ("retry_on_error", "on"),
                    ("capabilities", "customer"),
                    ("use_customer_language", "on"),
                    ("header_name", "Authorization"),
                    ("header_value", "Bearer ••••3456"),
                ];
                side.owner.htmx_post(&format!("/webhooks/{id}"), &form).await
            }
            Operation::SendTestEvent => {
                side.owner
                    .htmx_post(&format!("/webhooks/{id}/test"), &[("type", "booking.created")])
                    .await
            }
            Operation::RotateSecret => {
                side.owner
                    .htmx_post(&format!("/webhooks/{id}/secret/rotate"), &[])
                    .await
            }
            Operation::SwitchApiKeyOff => {
                side.owner
                    .htmx_post(&format!("/webhooks/{id}/api-key"), &[])
                    .await
            }
            Operation::ResendDelivery => {
                let delivery = first_delivery(app, side).await;
                side.owner
                    .htmx_post(&format!("/deliveries/{delivery}/resend"), &[])
                    .await
            }
            Operation::Delete => side.owner.htmx_post(&format!("/webhooks/{id}/delete"), &[]).await,
        };
        assert!(
            response.status().is_success(),
            "{self:?} through the page: {}",
            response.status()
        );
    }

    async fn through_the_api(self, app: &TestApp, side: &Side) {
        use reqwest::Method;
        let id = side.webhook.id;
        let webhook = format!("/api/v1/webhooks/{id}");
        let (method, path, body) = match self {
            Operation::SwitchOff => (Method::PATCH, webhook, Some(json!({"active": false}))),
            Operation::SwitchOnResendingParked => (
                Method::PATCH,
                webhook,
                Some(json!({"active": true, "parked_deliveries": "resend"})),
            ),
            Operation::SwitchOnDroppingParked => (
                Method::PATCH,
                webhook,
                Some(json!({"active": true, "parked_deliveries": "drop"})),
            ),
            Operation::Edit => (
                Method::PATCH,
                webhook,
                Some(json!({"events": ["booking.cancelled"]})),
            ),
            Operation::SendTestEvent => (
                Method::POST,
                format!("{webhook}/test"),
                Some(json!({"type": "booking.created"})),
            ),
            Operation::RotateSecret => (Method::POST, format!("{webhook}/secret/rotate"), None),
            Operation::SwitchApiKeyOff => (Method::PATCH, webhook, Some(json!({"api_key_enabled": false}))),
            Operation::ResendDelivery => {
                let delivery = first_delivery(app, side).await;
                (
                    Method::POST,
                    format!("/api/v1/deliveries/{delivery}/resend"),
                    None,
                )
            }
            Operation::Delete => (Method::DELETE, webhook, None),
        };
        let (status, answer) = api(app, &side.key, method, &path, body).await;
        assert!(
            (200..300).contains(&status),
            "{self:?} through the API: {status} {answer}"
        );
    }
}

async fn first_delivery(app: &TestApp, side: &Side) -> i64 {
    let webhook_id = side.webhook.id;
    app.with_conn(move |conn| {
        use hookboard::schema::deliveries;
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .order(deliveries::id)
            .select(deliveries::id)
            .first(conn)
            .unwrap()
    })
    .await
}

#[actix_web::test]
async fn every_operation_both_doors_offer_leaves_the_same_state_audit_and_requests() {
    use Operation::*;
    for operation in [
        SwitchOff,
        SwitchOnResendingParked,
        SwitchOnDroppingParked,
        Edit,
        SendTestEvent,
        RotateSecret,
        SwitchApiKeyOff,
        ResendDelivery,
        Delete,
    ] {
        // The receivers are plain http on loopback, which the API's checks must accept.
        let app = TestApp::spawn_with(LOOPBACK_TARGETS).await;
        let page = side(&app, "Alpine", !operation.starts_off()).await;
        let api_side = side(&app, "Baltic", !operation.starts_off()).await;
        for side in [&page, &api_side] {
            publish(&app, side, "bkg_1").await;
            publish(&app, side, "bkg_2").await;
        }
        app.engine().run_due_once(app.clock.now()).await.unwrap();
        let before = page.receiver.count();

        operation.through_the_page(&app, &page).await;
        operation.through_the_api(&app, &api_side).await;
        app.engine().run_due_once(app.clock.now()).await.unwrap();

        let (by_page, by_api) = (outcome(&app, &page).await, outcome(&app, &api_side).await);
        assert_eq!(by_page, by_api, "{operation:?}: the page and the API disagree");
        if matches!(
            operation,
            SwitchOnResendingParked | ResendDelivery | SendTestEvent
        ) {
            assert!(page.receiver.count() > before, "{operation:?} sends something");
        }
    }
}

#[actix_web::test]
async fn a_test_event_is_shaped_like_a_real_one_with_capabilities_and_language() {
    let app = TestApp::spawn().await;
    let side = side(&app, "Alpine", true).await;
    let response = side
        .owner
        .htmx_post(
            &format!("/webhooks/{}/test", side.webhook.id),
            &[("type", "booking.created")],
        )
        .await;
    assert_eq!(response.status(), 200);
    app.engine().run_due_once(app.clock.now()).await.unwrap();

    let requests = side.receiver.requests();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let data = body["data"].as_object().unwrap();
    assert!(
        data.contains_key("customer"),
        "the chosen section is sent: {body}"
    );
    for left_out in ["pricing", "units", "payment", "questions"] {
        assert!(
            !data.contains_key(left_out),
            "`{left_out}` is not one of its capabilities: {body}"
        );
    }
    let language = data["customer"]["language"]
        .as_str()
        .expect("the example names a language");
    assert_eq!(
        requests[0].headers.get("content-language").map(String::as_str),
        Some(language)
    );
}

#[actix_web::test]
async fn a_header_that_cannot_be_decrypted_is_never_erased_by_saving_the_form() {
    let app = TestApp::spawn_with(LOOPBACK_TARGETS).await;
    let side = side(&app, "Alpine", true).await;
    let id = side.webhook.id;
    let broken = json!([{"name": "Authorization", "sealed": "bm90IGEgc2VhbGVkIHZhbHVl"}]);
    let stored = broken.clone();
    app.with_conn(move |conn| {
        use hookboard::schema::webhooks;
        diesel::update(webhooks::table.find(id))
            .set(webhooks::headers.eq(stored))
            .execute(conn)
            .unwrap();
    })
    .await;

    // The form shows the header as unreadable instead of leaving it out...
    let form = side
        .owner
        .get(&format!("/webhooks/{id}/edit"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        form.contains(UNREADABLE),
        "the edit form names the unreadable header"
    );

    // ...and sending it back as shown is refused with a message; nothing is lost.
    let response = side
        .owner
        .submit(
            &format!("/webhooks/{id}"),
            &[
                ("url", side.receiver.url.as_str()),
                ("events", "booking.created"),
                ("active", "on"),
                ("header_name", "Authorization"),
                ("header_value", UNREADABLE),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("cannot be decrypted"));
    let kept: Value = app
        .with_conn(move |conn| {
            use hookboard::schema::webhooks;
            webhooks::table
                .find(id)
                .select(webhooks::headers)
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(kept, broken, "the stored credential is untouched");

    // Through the API, a change that leaves the headers alone is refused the same way.
    let (status, answer) = api(
        &app,
        &side.key,
        reqwest::Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"description": "CRM"})),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("headers")),
        "{answer}"
    );
}

#[actix_web::test]
async fn a_stored_status_hookboard_does_not_know_is_an_error_naming_the_row_not_inactive() {
    let app = TestApp::spawn().await;
    let side = side(&app, "Alpine", true).await;
    let id = side.webhook.id;
    app.with_conn(move |conn| {
        use hookboard::schema::webhooks;
        diesel::sql_query("ALTER TABLE webhooks DROP CONSTRAINT IF EXISTS webhooks_status_check")
            .execute(conn)
            .unwrap();
        diesel::update(webhooks::table.find(id))
            .set(webhooks::status.eq("paused"))
            .execute(conn)
            .unwrap();
    })
    .await;
    let tenant_id = side.tenant.id;
    let read = app
        .with_conn(move |conn| Webhook::find(conn, tenant_id, id).map(|w| w.status))
        .await;
    let message = read
        .expect_err("an unknown status does not read as a default")
        .to_string();
    assert!(
        message.contains(&format!("webhook {id}")) && message.contains("paused"),
        "{message}"
    );
    let (status, _) = get(&app, &side.key, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(
        status, 500,
        "an unreadable row is a server error, never shown as inactive"
    );
}

#[actix_web::test]
async fn the_last_page_of_deliveries_has_no_cursor_through_either_door() {
    let app = TestApp::spawn().await;
    let side = side(&app, "Alpine", true).await;
    for reference in ["bkg_1", "bkg_2", "bkg_3", "bkg_4"] {
        publish(&app, &side, reference).await;
    }
    let path = format!("/api/v1/webhooks/{}/deliveries", side.webhook.id);
    let (_, full) = get(&app, &side.key, &format!("{path}?limit=2")).await;
    let next = full["next_before"]
        .as_i64()
        .expect("a page with more after it has a cursor");
    let (_, last) = get(&app, &side.key, &format!("{path}?limit=2&before={next}")).await;
    assert_eq!(last["deliveries"].as_array().unwrap().len(), 2);
    assert!(
        last["next_before"].is_null(),
        "exactly `limit` left: no cursor to an empty page: {last}"
    );
    let (_, all) = get(&app, &side.key, &format!("{path}?limit=4")).await;
    assert!(all["next_before"].is_null());

    // The page pages the same way: an older-page link only when there is an older page.
    let page = side
        .owner
        .get(&format!("/webhooks/{}", side.webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("before="),
        "four deliveries fit one page of the log"
    );
}

#[actix_web::test]
async fn a_filter_value_that_does_not_parse_is_refused_by_the_api_and_explained_on_the_page() {
    let app = TestApp::spawn().await;
    let side = side(&app, "Alpine", true).await;
    for (query, field) in [
        ("status=paused", "status"),
        ("sort=colour", "sort"),
        ("connection=abc", "connection"),
    ] {
        let (status, answer) = get(&app, &side.key, &format!("/api/v1/webhooks?{query}")).await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (422, Some(field)),
            "{query}: {answer}"
        );
        let page = side.owner.get(&format!("/webhooks?{query}")).await;
        assert_eq!(
            page.status(),
            200,
            "{query}: a bookmarked link never breaks the page"
        );
        let html = page.text().await.unwrap();
        assert!(
            html.contains("id=\"filter-problem\""),
            "{query}: the page says what was left out"
        );
        assert!(
            html.contains(&format!("/webhooks/{}", side.webhook.id)),
            "{query}: the table still shows"
        );
    }
    let path = format!(
        "/api/v1/webhooks/{}/deliveries?outcome=delivered",
        side.webhook.id
    );
    let (status, answer) = get(&app, &side.key, &path).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("outcome"))
    );
}

#[actix_web::test]
async fn viewers_and_keys_of_other_tenants_reach_none_of_it() {
    let app = TestApp::spawn().await;
    let alpine = side(&app, "Alpine", true).await;
    let baltic = side(&app, "Baltic", true).await;
    app.create_user(Some(&alpine.tenant), "viewer@alpine.example", Role::Viewer)
        .await;
    let viewer = app.logged_in("viewer@alpine.example").await;
    let id = alpine.webhook.id;
    let refused = viewer.htmx_post(&format!("/webhooks/{id}/toggle"), &[]).await;
    assert_eq!(refused.status(), 403);
    let (status, _) = api(
        &app,
        &baltic.key,
        reqwest::Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        outcome(&app, &alpine).await.audit,
        Vec::<String>::new(),
        "nothing changed"
    );
}
