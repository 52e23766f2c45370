//! A webhook's filter (SPEC 9d) through the form and the API: refused with its position
//! when it does not parse, names what is not in scope or is not boolean on the examples
//! of the webhook's events; "Test filter" answers in place; and every event type of the
//! catalog gives true, false and an error as it should on its own example.

use hookboard::models::event_type::EventType;
use hookboard::validation::filter;
use serde_json::{Value, json};

use super::{FORM, find_webhook, first_webhook};
use crate::helpers::TestApp;

fn with_filter(filter: &str) -> Vec<(&str, &str)> {
    let mut fields = FORM.to_vec();
    fields.push(("filter", filter));
    fields
}

#[actix_web::test]
async fn every_event_type_of_the_catalog_gives_true_false_and_errors_on_its_example() {
    let app = TestApp::spawn().await;
    let catalog = app.with_conn(|conn| EventType::all(conn).unwrap()).await;
    assert!(catalog.len() >= 30, "the whole catalog");
    for t in catalog.iter() {
        let (code, example) = (t.code.as_str(), &t.example_payload);
        let own = [(code, example)];
        assert_eq!(
            filter::test(&format!("type == '{code}'"), code, example),
            Ok(true),
            "{code}"
        );
        assert_eq!(
            filter::test(&format!("type != '{code}'"), code, example),
            Ok(false),
            "{code}"
        );
        assert_eq!(
            filter::test("connection == null && language == null", code, example),
            Ok(true)
        );
        // Something the example holds, read back: true; its negation: false.
        let (key, _) = example
            .as_object()
            .and_then(|o| o.iter().next())
            .expect("examples are objects");
        assert_eq!(
            filter::test(&format!("has(data.{key})"), code, example),
            Ok(true),
            "{code}: {key}"
        );
        assert_eq!(
            filter::test(&format!("!has(data.{key})"), code, example),
            Ok(false),
            "{code}"
        );
        // A field no example has: an error, which names it.
        let err = filter::test("data.no_such_field == 1", code, example).unwrap_err();
        assert!(err.message.contains("no_such_field"), "{code}: {err}");
        // Not boolean: refused for saving, naming the event type.
        let refused = filter::validate("data", &own).unwrap_err();
        assert!(
            refused.contains(code) && refused.contains("instead of true or false"),
            "{refused}"
        );
        assert!(filter::validate(&format!("type == '{code}' || has(data.{key})"), &own).is_ok());
    }
}

#[actix_web::test]
async fn the_form_refuses_a_filter_that_does_not_parse_with_its_position_and_keeps_it() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let html = owner
        .htmx_post("/webhooks", &with_filter("data.pax >= "))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("webhook-filter-error"), "{html}");
    assert!(html.contains("line 1, column 13"), "the position: {html}");
    assert!(
        html.contains(">data.pax &#62;= </textarea>"),
        "the typed filter is kept: {html}"
    );

    let html = owner
        .htmx_post("/webhooks", &with_filter("booking.pax > 1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("`booking` is not known here"), "{html}");
    let html = owner
        .htmx_post("/webhooks", &with_filter("data.nope == 1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("On the example payload of booking.c"),
        "an error on an example names its type: {html}"
    );

    let good = "has(data.product) && type != 'booking.cancelled'";
    owner.htmx_post("/webhooks", &with_filter(good)).await;
    let webhook = first_webhook(&app, &tenant).await;
    assert_eq!(webhook.filter.as_deref(), Some(good));
    // Emptied on edit: no filter.
    let mut fields = with_filter("   ");
    fields.push(("filter_event", "booking.created"));
    owner
        .htmx_post(&format!("/webhooks/{}", webhook.id), &fields)
        .await;
    assert_eq!(find_webhook(&app, &tenant, webhook.id).await.filter, None);
    let form = owner
        .get(&format!("/webhooks/{}/edit", webhook.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains(r#"name="filter""#) && form.contains("Test filter"));
}

#[actix_web::test]
async fn test_filter_says_true_false_or_the_error_with_its_position_in_place() {
    let (_app, _tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let test = |filter: &'static str| {
        let owner = &owner;
        async move {
            let response = owner
                .htmx_post(
                    "/webhooks/filter/test",
                    &[
                        ("filter", filter),
                        ("filter_event", "booking.created"),
                        ("url", ""),
                    ],
                )
                .await;
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let html = test("type == 'booking.created'").await;
    assert!(
        html.contains(r#"data-result="true""#) && !html.contains("<html"),
        "{html}"
    );
    assert!(
        test("type == 'payment.created'")
            .await
            .contains(r#"data-result="false""#)
    );
    let html = test("type ==").await;
    assert!(
        html.contains(r#"data-result="error""#) && html.contains("line 1, column"),
        "{html}"
    );
    let html = test("data.nope == 1").await;
    assert!(
        html.contains(r#"data-result="error""#) && html.contains("nope"),
        "an evaluation error says what: {html}"
    );
    assert!(test("").await.contains(r#"data-result="empty""#));
    // Without JavaScript: a page of its own.
    let page = owner
        .submit(
            "/webhooks/filter/test",
            &[("filter", "true"), ("filter_event", "booking.created")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html") && page.contains(r#"data-result="true""#));
    // An unknown event type is refused, not a 500.
    let response = owner
        .htmx_post(
            "/webhooks/filter/test",
            &[("filter", "true"), ("filter_event", "nope")],
        )
        .await;
    assert!(
        response.status().is_client_error() || response.status() == 200,
        "{}",
        response.status()
    );
}

async fn call(app: &TestApp, key: &str, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client()
        .request(method, app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn the_api_creates_and_changes_a_filter_and_refuses_a_bad_one_like_the_form() {
    let app = TestApp::spawn().await;
    let tenant = app.scale_tenant("Alpine Tours").await;
    let key = app.tenant_key(&tenant).await;
    let post = reqwest::Method::POST;
    let body = |filter: Value| json!({"url": "https://crm.alpine.example/hooks", "events": ["booking.created"], "filter": filter});
    let (status, answer) = call(
        &app,
        &key,
        post.clone(),
        "/api/v1/webhooks",
        body(json!("data.pax >= ")),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["field"], "filter");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 1, column 13"), "{message}");

    let filter = "has(data.product) && type == 'booking.created'";
    let (status, created) = call(&app, &key, post, "/api/v1/webhooks", body(json!(filter))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["filter"], filter);
    assert_eq!(created["filtered_count"], 0);
    let path = format!("/api/v1/webhooks/{}", created["id"]);

    let patch = reqwest::Method::PATCH;
    let (status, answer) = call(
        &app,
        &key,
        patch.clone(),
        &path,
        json!({"filter": "size(data) > 0 && nope"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("filter")),
        "{answer}"
    );
    // Adding an event type whose example the filter fails on is refused too.
    let (status, answer) = call(
        &app,
        &key,
        patch.clone(),
        &path,
        json!({"filter": "data.product.id != ''"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(
        &app,
        &key,
        patch.clone(),
        &path,
        json!({"events": ["booking.created", "payment.created"]}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("payment.created"),
        "{answer}"
    );
    let (status, answer) = call(&app, &key, patch.clone(), &path, json!({"filter": null})).await;
    assert_eq!((status, &answer["filter"]), (200, &Value::Null), "{answer}");
    let (status, answer) = call(&app, &key, patch, &path, json!({"filter": "x".repeat(2001)})).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2000 characters")
    );
}
