//! The API's OpenAPI 3 description, generated from the handlers and types themselves
//! (utoipa), served at `GET /api/v1/openapi.json` and rendered as the dashboard's API
//! reference page. Answers every operation shares (401, 403, 404, 413, 422, 429, the
//! `Idempotency-Key` header) are added here once, from what each operation takes, so
//! they cannot be forgotten on one of them.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::{connections, deliveries, events, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hookboard API",
        version = "1",
        description = "Publish booking, payment, form, customer, product and availability events, \
and manage the webhooks that deliver them.\n\nAuthenticate with `Authorization: Bearer <key>`, \
using a key from the dashboard's API Keys page. Every error answers \
`{\"error\": {\"code\", \"message\", \"field\"?}}`. POST requests may carry an `Idempotency-Key` \
header: the same key and body within 24 hours return the first answer again."
    ),
    paths(
        events::create,
        events::create_batch,
        events::list,
        events::show,
        events::types,
        webhooks::list,
        webhooks::create,
        webhooks::show,
        webhooks::update,
        webhooks::delete,
        webhooks::secret,
        webhooks::rotate,
        deliveries::test,
        deliveries::list,
        deliveries::resend,
        deliveries::replay,
        connections::list,
        connections::create_connection,
        connections::delete_connection,
    ),
    tags(
        (name = "Events", description = "Publish events; read them back to catch up."),
        (name = "Webhooks", description = "The endpoints events are delivered to."),
        (name = "Deliveries", description = "Each event's delivery to each webhook, with every attempt."),
        (name = "Connections", description = "Partner contracts a webhook or an event can be limited to."),
        (name = "Catalog", description = "The event types a webhook can subscribe to."),
    ),
)]
struct ApiDoc;

/// Operations a webhook's own key may call, and those open on every plan.
const READ_EVENTS: [&str; 2] = ["getEvent", "listEvents"];
const ANY_PLAN: [&str; 1] = ["listEventTypes"];

/// The description as JSON, built once.
pub fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI description serializes");
        add_shared_answers(&mut doc);
        doc
    })
}

/// `GET /api/v1/openapi.json`: public, so tools can read it before they have a key.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(openapi())
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn add_shared_answers(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        "api_key": {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API key from the API Keys page (or, to read events only, a webhook's own key)."
        }
    });
    doc["security"] = json!([{"api_key": []}]);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let id = operation["operationId"].as_str().unwrap_or_default().to_owned();
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let has_path_id = parameters.iter().any(|p| p["in"] == "path");
            let has_query = parameters.iter().any(|p| p["in"] == "query");
            let has_body = operation.get("requestBody").is_some();
            let responses = operation["responses"]
                .as_object_mut()
                .expect("every operation answers");
            let mut add = |status: &str, answer: Value| {
                responses.entry(status).or_insert(answer);
            };
            add(
                "401",
                error(if READ_EVENTS.contains(&id.as_str()) {
                    "No API key, an unknown key, or a key that is switched off"
                } else {
                    "No API key, an unknown key, a key that is switched off, or a webhook's key (it may only read events)"
                }),
            );
            if !ANY_PLAN.contains(&id.as_str()) {
                add(
                    "403",
                    error(
                        "Webhooks are part of the Scale plan, or the Webhooks tool is switched off (`plan`, `tool_off`)",
                    ),
                );
            }
            if has_path_id {
                add("404", error("No such item in your account"));
            }
            add(
                "400",
                error(if has_body {
                    "The body is not valid JSON (`bad_json`), or the address holds a NUL character (`bad_request`)"
                } else {
                    "The address holds a NUL character (`bad_request`)"
                }),
            );
            if has_body {
                add("413", error("The body is larger than 1 MiB (`too_large`)"));
            }
            if has_body || has_query || method == "post" {
                add(
                    "422",
                    error("A field is missing, unknown, of the wrong type or not valid; `field` names it"),
                );
            }
            add(
                "429",
                json!({
                    "description": "Over the rate limit of this API key (`rate_limited`)",
                    "headers": {"Retry-After": {
                        "description": "Seconds to wait",
                        "schema": {"type": "integer"}
                    }},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }),
            );
            add(
                "503",
                json!({
                    "description": "Hookboard is busy (`busy`) or its database is not reachable just now \
                                    (`unavailable`); nothing was changed, send the same request again",
                    "headers": {"Retry-After": {
                        "description": "Seconds to wait",
                        "schema": {"type": "integer"}
                    }},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }),
            );
            if method == "post" {
                let in_progress = "a request with the same Idempotency-Key is still being answered \
                                   (`idempotency_in_progress`, with Retry-After)";
                match responses.get_mut("409") {
                    Some(existing) => {
                        let said = existing["description"].as_str().unwrap_or_default().to_owned();
                        existing["description"] = json!(format!("{said}; or {in_progress}"));
                    }
                    None => {
                        responses.insert("409".into(), error(&format!("Conflict: {in_progress}")));
                    }
                }
                let parameters = operation["parameters"].as_array_mut();
                let header = json!({
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "Send the same key with the same body within 24 hours to get the first answer again (with `Idempotent-Replayed: true`) instead of doing it twice. 1 to 200 characters.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200}
                });
                match parameters {
                    Some(list) => list.push(header),
                    None => operation["parameters"] = json!([header]),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_of_the_table_is_described_and_nothing_else() {
        let doc = openapi();
        let mut described: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.clone(), path.clone()))
            })
            .collect();
        let mut routed: Vec<(String, String)> = crate::routes::ROUTES
            .iter()
            .filter(|r| r.access == crate::routes::Access::Api)
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        described.sort();
        routed.sort();
        assert_eq!(described, routed);
    }

    #[test]
    fn every_operation_has_a_unique_id_a_summary_and_a_documented_error() {
        let doc = openapi();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "{id} is used twice");
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{method} {path}"
                );
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
                assert!(op["responses"]["429"]["headers"]["Retry-After"].is_object());
            }
        }
    }
}
