//! Filters of any shape (SPEC 9d): garbage, CEL-like token soup, deep nesting and huge
//! texts through the validator, through the API's PATCH and the form's "Test filter", and
//! through publishing: never a panic, a crash (a stack overflow would abort this binary)
//! or a 5xx; only a 200 or a 422 with a message.

use hookboard::models::event_type::EventType;
use hookboard::validation::filter;
use proptest::prelude::*;
use serde_json::json;

use super::run;
use crate::helpers::TestApp;

const TOKENS: [&str; 48] = [
    "data",
    "type",
    "connection",
    "language",
    ".",
    "product",
    "id",
    "pax",
    "units",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "&&",
    "||",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    " in ",
    "?",
    ":",
    ",",
    "1",
    "2.5",
    "'x'",
    "\"",
    "true",
    "null",
    "size",
    "has",
    "exists",
    "all",
    "map",
    "filter",
    "x",
    "\\",
    "1u",
    "18446744073709551616",
    "b'\\xff'",
];

/// A filter text of one of several shapes, small to far over every limit.
fn any_filter() -> impl Strategy<Value = String> {
    let token_soup = prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..120)
        .prop_map(|tokens| tokens.join(" "));
    let nested = (0usize..3000, 0usize..6).prop_map(|(depth, shape)| match shape {
        0 => format!("{}true{}", "(".repeat(depth), ")".repeat(depth)),
        1 => format!("{}true", "!".repeat(depth)),
        2 => format!("{}1]", "[".repeat(depth)),
        3 => format!("data{}", ".x".repeat(depth)),
        4 => vec!["data.pax > 1"; depth.min(400)].join(" || "),
        _ => format!("{}1 == 1", "-".repeat(depth)),
    });
    let comprehensions = (1usize..6).prop_map(|n| {
        let mut text = "true".to_owned();
        for i in 0..n {
            text = format!("data.units.exists(u{i}, {text})");
        }
        text
    });
    prop_oneof![
        "\\PC{0,300}",
        token_soup,
        nested,
        comprehensions,
        (0usize..4000).prop_map(|n| "true && ".repeat(n) + "true"),
    ]
}

#[actix_web::test]
async fn filters_of_any_shape_never_break_the_validator_or_evaluation() {
    let app = TestApp::spawn().await;
    let catalog = app.with_conn(|conn| EventType::all(conn).unwrap()).await;
    let examples: Vec<(String, serde_json::Value)> = catalog
        .iter()
        .take(4)
        .map(|t| (t.code.clone(), t.example_payload.clone()))
        .collect();
    crate::helpers::tokio_block(move || {
        let examples: Vec<(&str, &serde_json::Value)> =
            examples.iter().map(|(c, d)| (c.as_str(), d)).collect();
        run("filter-validator", 1500, any_filter(), |text| {
            let outcome = std::panic::catch_unwind(|| {
                let saved = filter::validate(text, &examples);
                if saved.is_ok() {
                    // What saving accepts evaluates on an event of big lists without harm.
                    let units: Vec<i64> = (0..50_000).collect();
                    let big = json!({"units": units, "pax": 2, "product": {"id": 12}});
                    let _ = filter::test(text, "booking.created", &big);
                }
                saved
            });
            match outcome {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) if !message.is_empty() => Ok(()),
                Ok(Err(_)) => Err("refused without a message".into()),
                Err(_) => Err("the validator panicked".into()),
            }
        });
    })
    .await;
}

#[actix_web::test]
async fn filters_of_any_shape_through_the_api_and_the_form_answer_200_or_422() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_API_RATE_LIMIT", "0")]).await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Filter Tours", "owner@filter.test")
        .await;
    let key = app.tenant_key(&tenant).await;
    let (webhook, _) = app
        .create_webhook(
            &tenant,
            "https://crm.filter.example/hooks",
            &["booking.created"],
            |_| {},
        )
        .await;
    let (base, cookie) = (app.address.clone(), owner.cookie_header());
    let csrf = owner.csrf_token("/").await;
    crate::helpers::tokio_block(move || {
        let rt = crate::helpers::current_thread_runtime();
        let _context = rt.enter();
        let client = reqwest::Client::new();
        run("filter-api", 150, any_filter(), |text| {
            rt.block_on(async {
                let patched = client
                    .patch(format!("{base}/api/v1/webhooks/{}", webhook.id))
                    .bearer_auth(&key)
                    .json(&json!({"filter": text}))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = patched.status().as_u16();
                if !matches!(status, 200 | 422) {
                    return Err(format!(
                        "PATCH answered {status}: {}",
                        patched.text().await.unwrap_or_default()
                    ));
                }
                // Whatever filter was saved, publishing goes on.
                let published = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "booking.created", "data": {"pax": 2, "units": [1, 2, 3]}}))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if published.status().as_u16() != 202 {
                    return Err(format!("publishing answered {}", published.status()));
                }
                let tested = client
                    .post(format!("{base}/webhooks/filter/test"))
                    .header("Cookie", &cookie)
                    .header("HX-Request", "true")
                    .header("X-CSRF-Token", &csrf)
                    .form(&[("filter", text.as_str()), ("filter_event", "booking.created")])
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                match tested.status().as_u16() {
                    200 => Ok(()),
                    other => Err(format!("Test filter answered {other}")),
                }
            })
        });
    })
    .await;
}
