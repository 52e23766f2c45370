//! The management API (SPEC 6) as an integrator uses it: create, list with filters,
//! change, secret, delete, connections; strict input, clear JSON errors, idempotent
//! retries, the rate limit; and the same refusals as the form.

use hookboard::models::api_key::ApiKey;
use hookboard::models::tenant::{Plan, Tenant};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

struct Api<'a> {
    app: &'a TestApp,
    key: String,
    client: reqwest::Client,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.clone(), self.app.url(path))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        // Every answer these tests see is also checked against the OpenAPI description.
        crate::openapi::conforms(&method, path, status, &json);
        (status, json)
    }
}

async fn api(app: &TestApp, plan: Plan, tool_on: bool) -> (Tenant, Api<'_>) {
    let tenant = app.create_tenant("Alpine Tours", plan).await;
    let id = tenant.id;
    let tenant = app
        .with_conn(move |conn| Tenant::set_webhooks_enabled(conn, id, tool_on).unwrap())
        .await;
    let key = app
        .with_conn(move |conn| ApiKey::create(conn, id, "CRM integration", None).unwrap().1)
        .await;
    (
        tenant,
        Api {
            app,
            key,
            client: reqwest::Client::new(),
        },
    )
}

/// SPEC 6, plus `ordered` (SPEC 9b) and `filter` with its counters (SPEC 9d).
const WEBHOOK_FIELDS: [&str; 24] = [
    "id",
    "number",
    "url",
    "description",
    "events",
    "connection",
    "active",
    "status",
    "disabled_reason",
    "api_key_enabled",
    "headers",
    "retry_on_error",
    "use_customer_language",
    "capabilities",
    "ordered",
    "filter",
    "filtered_count",
    "filter_error_count",
    "filter_last_error",
    "event_count",
    "error_count",
    "created_at",
    "updated_at",
    "api_key",
];

#[actix_web::test]
async fn an_integrator_creates_lists_changes_and_deletes_a_webhook() {
    let app = TestApp::spawn().await;
    let (_, api) = api(&app, Plan::Scale, true).await;
    let (status, connection) = api
        .call(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "Alpine Partners", "external_id": "CTR-2041"})),
        )
        .await;
    assert_eq!(status, 201, "{connection}");

    let body = json!({
        "url": "https://crm.alpine.example/hooks",
        "events": ["booking.created", "booking.cancelled"],
        "connection": "CTR-2041",
        "headers": {"Authorization": "Bearer crm-secret-98765"},
        "capabilities": ["customer"]
    });
    let (status, created) = api.call(Method::POST, "/api/v1/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let mut keys: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = WEBHOOK_FIELDS.to_vec();
    expected.sort();
    assert_eq!(
        keys, expected,
        "the webhook JSON of SPEC 6, field for field, plus the key once"
    );
    assert_eq!(created["connection"], "CTR-2041");
    assert_eq!(created["status"], "active");
    assert_eq!(created["headers"]["Authorization"], "Bearer ••••8765");
    assert!(created["api_key"].as_str().unwrap().starts_with("hbw_"));
    let id = created["id"].as_i64().unwrap();

    let (status, shown) = api
        .call(Method::GET, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(shown.get("api_key").is_none(), "the key is shown once");

    api.call(
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({"url": "https://hooks.zapier.example/1", "events": ["payment.completed"]})),
    )
    .await;
    let (_, page) = api.call(Method::GET, "/api/v1/webhooks?url=zapier", None).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["webhooks"][0]["url"], "https://hooks.zapier.example/1");

    let (status, changed) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(
                json!({"active": false, "connection": null, "headers": {"Authorization": "Bearer ••••8765"}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["active"].clone(),
            changed["status"].clone(),
            changed["connection"].clone()
        ),
        (json!(false), json!("inactive"), Value::Null)
    );
    assert_eq!(
        changed["events"],
        json!(["booking.cancelled", "booking.created"]),
        "untouched fields stay"
    );
    let tenant_id = shown["id"].as_i64().unwrap();
    let _ = tenant_id;

    let (status, secret) = api
        .call(Method::GET, &format!("/api/v1/webhooks/{id}/secret"), None)
        .await;
    assert_eq!(status, 200);
    let (_, rotated) = api
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/secret/rotate"),
            None,
        )
        .await;
    assert_ne!(rotated["secret"], secret["secret"]);
    assert!(rotated["previous_secret_expires_at"].is_string());

    let (status, error) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/connections/{}", connection["id"]),
            None,
        )
        .await;
    assert_eq!(status, 204, "no webhook uses it any more: {error}");
    let (status, _) = api
        .call(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, error) = api
        .call(Method::GET, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[actix_web::test]
async fn wrong_requests_get_clear_json_errors() {
    let app = TestApp::spawn().await;
    let (_, api) = api(&app, Plan::Scale, true).await;
    let cases = [
        (
            json!({"url": "https://crm.example/in", "events": ["booking.created"], "colour": "red"}),
            422,
            None,
        ),
        (json!({"url": 5, "events": ["booking.created"]}), 422, Some("url")),
        (
            json!({"url": "https://crm.example/in", "events": "booking.created"}),
            422,
            Some("events"),
        ),
        (
            json!({"url": "https://crm.example/in", "events": []}),
            422,
            Some("events"),
        ),
        (
            json!({"url": "http://crm.example/in", "events": ["booking.created"]}),
            422,
            Some("url"),
        ),
        (
            json!({"url": "https://169.254.169.254/latest", "events": ["booking.created"]}),
            422,
            Some("url"),
        ),
        (
            json!({"url": "https://crm.example/in", "events": ["booking.created"], "headers": {"Host": "x"}}),
            422,
            Some("headers"),
        ),
        (
            json!({"url": "https://crm.example/in", "events": ["booking.created"], "connection": "nope"}),
            422,
            Some("connection"),
        ),
        (json!({"events": ["booking.created"]}), 422, Some("url")),
    ];
    for (body, status, field) in cases {
        let (got, error) = api
            .call(Method::POST, "/api/v1/webhooks", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body} -> {error}");
        assert!(
            error["error"]["code"].is_string()
                && error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{body} -> {error}");
        }
    }
    let big = json!({"url": "https://crm.example/in", "events": ["booking.created"], "description": "x".repeat(1024 * 1024)});
    assert_eq!(api.call(Method::POST, "/api/v1/webhooks", Some(big)).await.0, 413);
    let (status, error) = api.call(Method::GET, "/api/v1/nothing-here", None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let anonymous = reqwest::Client::new()
        .get(app.url("/api/v1/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
}

/// serde's derived structs also read an array of their fields in order; the API takes
/// objects only (found by the event-ingest fuzz target: `["booking.created", {..}, null]`
/// was published).
#[actix_web::test]
async fn a_body_written_as_an_array_of_its_fields_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (tenant, api) = api(&app, Plan::Scale, true).await;
    let cases = [
        (
            "/api/v1/events",
            json!(["booking.created", {"booking_id": "BK-1"}, null]),
            None,
        ),
        (
            "/api/v1/events/batch",
            json!({"events": [{"type": "booking.created", "data": {}}, ["booking.created", {}]]}),
            Some("events[1]"),
        ),
        (
            "/api/v1/webhooks",
            json!(["https://crm.example/in", "Bookings", ["booking.created"]]),
            None,
        ),
        ("/api/v1/connections", json!(["Alpine Adventures", "CT-9"]), None),
    ];
    for (path, body, field) in cases {
        let (status, error) = api.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 422, "{path} {body} -> {error}");
        assert_eq!(error["error"]["code"], "invalid", "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("expected a JSON object")),
            "{error}"
        );
        assert_eq!(error["error"]["field"].as_str(), field, "{path} -> {error}");
    }
    let id = tenant.id;
    let stored = app
        .with_conn(move |conn| {
            use diesel::prelude::*;
            use hookboard::schema::{connections, events, webhooks};
            (
                events::table
                    .filter(events::tenant_id.eq(id))
                    .count()
                    .get_result::<i64>(conn)
                    .unwrap(),
                webhooks::table
                    .filter(webhooks::tenant_id.eq(id))
                    .count()
                    .get_result::<i64>(conn)
                    .unwrap(),
                connections::table
                    .filter(connections::tenant_id.eq(id))
                    .count()
                    .get_result::<i64>(conn)
                    .unwrap(),
            )
        })
        .await;
    assert_eq!(stored, (0, 0, 0));
    // The object forms of the same requests go through.
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/events",
            Some(json!({"type": "booking.created", "data": {"booking_id": "BK-1"}})),
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(json!({"events": [{"type": "booking.created", "data": {}}, {"type": "booking.created", "data": {}}]})),
        )
        .await;
    assert_eq!(status, 202);
}

#[actix_web::test]
async fn the_form_and_the_api_refuse_the_same_input_with_the_same_message() {
    let app = TestApp::spawn().await;
    let (tenant, api) = api(&app, Plan::Scale, true).await;
    app.create_user(
        Some(&tenant),
        "ana@alpine.example",
        hookboard::models::user::Role::Owner,
    )
    .await;
    let owner = app.logged_in("ana@alpine.example").await;
    for (url, header) in [
        ("https://10.0.0.1/x", "X-Ok"),
        ("ftp://crm.example/x", "X-Ok"),
        ("https://crm.example/x", "Content-Length"),
    ] {
        let (_, error) = api
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"url": url, "events": ["booking.created"], "headers": {header: "1"}})),
            )
            .await;
        let message = error["error"]["message"].as_str().unwrap().to_owned();
        let form = owner
            .htmx_post(
                "/webhooks",
                &[
                    ("url", url),
                    ("events", "booking.created"),
                    ("header_name", header),
                    ("header_value", "1"),
                ],
            )
            .await
            .text()
            .await
            .unwrap();
        let escaped = message
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        assert!(form.contains(&escaped), "the form says the same: {message}");
    }
}

#[actix_web::test]
async fn the_plan_gate_the_tool_switch_and_other_tenants_ids_answer_as_specified() {
    let app = TestApp::spawn().await;
    let (_, starter) = api(&app, Plan::Starter, true).await;
    let (status, error) = starter.call(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (403, Some("plan")));
    let (_, off) = api(&app, Plan::Scale, false).await;
    let (status, _) = off.call(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(status, 200, "reading works with the tool off");
    let (status, error) = off
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://a.example/", "events": ["booking.created"]})),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_str()), (403, Some("tool_off")));
    let (_, mine) = api(&app, Plan::Scale, true).await;
    let (_, created) = mine
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://a.example/", "events": ["booking.created"]})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let (_, theirs) = api(&app, Plan::Scale, true).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/webhooks/{id}")),
        (Method::PATCH, format!("/api/v1/webhooks/{id}")),
        (Method::DELETE, format!("/api/v1/webhooks/{id}")),
        (Method::GET, format!("/api/v1/webhooks/{id}/secret")),
        (Method::POST, format!("/api/v1/webhooks/{id}/secret/rotate")),
        (Method::GET, format!("/api/v1/webhooks/{id}/deliveries")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({}));
        let (status, _) = theirs.call(method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
}

#[actix_web::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_a_different_request() {
    let app = TestApp::spawn().await;
    let (tenant, api) = api(&app, Plan::Scale, true).await;
    let send = |body: Value| {
        api.client
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(&api.key)
            .header("Idempotency-Key", "create-crm-hook")
            .json(&body)
            .send()
    };
    let body = json!({"url": "https://crm.example/in", "events": ["booking.created"]});
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let tenant_id = tenant.id;
    assert_eq!(
        app.with_conn(move |conn| hookboard::models::webhook::Webhook::count(conn, tenant_id).unwrap())
            .await,
        1,
        "created once"
    );
    let other = send(json!({"url": "https://other.example/in", "events": ["booking.created"]}))
        .await
        .unwrap();
    assert_eq!(other.status(), 422);

    // The same new key sent eight times at once: one request does it; the others are told
    // it is in progress (409, Retry-After) or, once it is done, get its answer.
    let racing = (0..8).map(|_| {
        api.client
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(&api.key)
            .header("Idempotency-Key", "retry-storm")
            .json(&json!({"url": "https://storm.example/in", "events": ["booking.created"]}))
            .send()
    });
    let mut created_ids = std::collections::HashSet::new();
    for response in futures_util::future::join_all(racing).await {
        let response = response.unwrap();
        match response.status().as_u16() {
            201 => {
                let body: Value = response.json().await.unwrap();
                created_ids.insert(body["id"].as_i64().unwrap());
            }
            409 => {
                assert_eq!(response.headers()["retry-after"], "1");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "idempotency_in_progress");
            }
            other => panic!("answered {other}"),
        }
    }
    assert_eq!(created_ids.len(), 1, "every 201 is the same webhook");
    assert_eq!(
        app.with_conn(move |conn| hookboard::models::webhook::Webhook::count(conn, tenant_id).unwrap())
            .await,
        2,
        "the racing requests created one webhook"
    );
}

#[actix_web::test]
async fn each_key_has_its_own_rate_limit_with_retry_after() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_API_RATE_LIMIT", "2")]).await;
    let (_, other) = api(&app, Plan::Scale, true).await;
    let (_, api) = api(&app, Plan::Scale, true).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let response = api
            .client
            .get(app.url("/api/v1/event-types"))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(
        &statuses[..4],
        [200, 200, 200, 200],
        "a burst of twice the rate passes"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    let fresh = other
        .client
        .get(app.url("/api/v1/event-types"))
        .bearer_auth(&other.key)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200, "another key is not held back");
}

#[actix_web::test]
async fn the_plans_limit_of_100_webhooks_answers_409_with_the_forms_message() {
    let app = TestApp::spawn().await;
    let (tenant, api) = api(&app, Plan::Scale, true).await;
    let (tenant_id, secrets) = (tenant.id, app.secrets());
    app.with_conn(move |conn| {
        for i in 0..100 {
            let input = hookboard::validation::webhook::Input {
                url: format!("https://crm.alpine.example/{i}"),
                events: vec!["booking.created".into()],
                ..Default::default()
            };
            hookboard::models::webhook::Webhook::create(
                conn,
                tenant_id,
                &crate::helpers::valid(input.clone()),
                &secrets,
            )
            .unwrap();
        }
    })
    .await;
    let (status, error) = api
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://crm.alpine.example/one-more", "events": ["booking.created"]})),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_str()), (409, Some("conflict")));
    assert_eq!(
        error["error"]["message"],
        hookboard::models::webhook::SaveError::LimitReached.to_string()
    );
}

/// An idempotent request may be as large as any other (1 MiB): a batch of 500 events of
/// about 700 KiB is stored once and replayed, and an oversize one still answers 413.
#[actix_web::test]
async fn an_idempotent_batch_up_to_the_body_limit_is_kept_and_replayed() {
    let app = TestApp::spawn().await;
    let (_, api) = api(&app, Plan::Scale, true).await;
    let events: Vec<Value> = (0..500)
        .map(|i| json!({"type": "booking.created", "data": {"id": i, "notes": "x".repeat(1300)}}))
        .collect();
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    assert!(
        (512 * 1024..1024 * 1024).contains(&body.len()),
        "{} bytes",
        body.len()
    );
    let send = |body: Vec<u8>| {
        api.client
            .post(app.url("/api/v1/events/batch"))
            .bearer_auth(&api.key)
            .header("Idempotency-Key", "nightly-sync-1")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["events"].as_array().unwrap().len(), 500);
    let again = send(body).await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    let huge = send(vec![b' '; 2 * 1024 * 1024]).await.unwrap();
    assert_eq!(huge.status(), 413);
}
