//! The audit log's details as a sentence people read: what changed, from what to what. The
//! stored JSON stays one click away on the page; an action this does not know is shown as
//! its fields, never hidden.

use serde_json::Value;

/// A readable sentence for an audit entry's `action` and `details`; empty when there is
/// nothing more to say than the action itself.
pub fn describe(action: &str, details: &Value) -> String {
    let text = |key: &str| shown(details.get(key).unwrap_or(&Value::Null));
    match action {
        "webhook.created" => format!("Endpoint {}; events {}.", text("url"), text("events")),
        "webhook.updated" => match details.get("changes").and_then(Value::as_object) {
            Some(changes) if !changes.is_empty() => {
                // In the form's order (the database keeps JSON keys in an order of its own).
                let mut changes: Vec<(&String, &Value)> = changes.iter().collect();
                changes.sort_by_key(|(field, _)| {
                    FORM_ORDER
                        .iter()
                        .position(|f| *f == field.as_str())
                        .unwrap_or(usize::MAX)
                });
                let parts: Vec<String> = changes
                    .into_iter()
                    .map(|(field, change)| {
                        let (from, to) = (
                            shown_field(field, change.get("from").unwrap_or(&Value::Null)),
                            shown_field(field, change.get("to").unwrap_or(&Value::Null)),
                        );
                        format!("{}: {from} → {to}", label(field))
                    })
                    .collect();
                format!("{}.", parts.join("; "))
            }
            _ => format!("Saved: endpoint {}; events {}.", text("url"), text("events")),
        },
        "webhook.enabled" | "webhook.disabled" => {
            let mut sentence = format!(
                "Status: {} → {}.",
                status(details.get("from")),
                status(details.get("to"))
            );
            if let Some(parked) = details.get("parked_deliveries") {
                let count = parked.get("count").and_then(Value::as_i64).unwrap_or(0);
                let choice = match parked.get("choice").and_then(Value::as_str) {
                    Some("resend") => "sent again",
                    Some("drop") => "dropped",
                    _ => "kept parked",
                };
                sentence.push_str(&format!(
                    " {count} parked deliver{} {choice}.",
                    if count == 1 { "y" } else { "ies" }
                ));
            }
            sentence
        }
        "webhook.auto_disabled" => format!("Switched off automatically: {}.", trim_dot(&text("reason"))),
        "webhook.deleted" => {
            let cancelled = details
                .get("cancelled_deliveries")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            format!(
                "Endpoint {}; {cancelled} waiting deliver{} cancelled.",
                text("url"),
                if cancelled == 1 { "y" } else { "ies" }
            )
        }
        "webhook.secret_rotated" => {
            "A new signing secret; the previous one keeps signing for 24 hours.".to_owned()
        }
        "webhook.test_sent" => format!("Test event {} ({}).", text("type"), text("event")),
        "webhook.replayed" => format!(
            "{} {} deliver{} created from {} until {}{} sent again.",
            text("count"),
            text("outcome"),
            if details.get("count").and_then(Value::as_i64) == Some(1) {
                "y"
            } else {
                "ies"
            },
            text("since"),
            text("until"),
            match details.get("event_types").and_then(Value::as_array) {
                Some(types) if !types.is_empty() => format!(" of {}", shown(&Value::Array(types.clone()))),
                _ => String::new(),
            }
        ),
        "delivery.resent" => format!("Event {} sent again.", text("event")),
        "connection.created" | "connection.deleted" => format!("Name {}.", text("name")),
        "connection.renamed" | "tenant.renamed" | "tenant.plan_changed" => {
            format!("{} → {}.", text("from"), text("to"))
        }
        "tenant.created" => format!("Plan {}.", text("plan")),
        "user.created" => match details.get("connection") {
            Some(connection) if !connection.is_null() => format!(
                "Role {}, partner of connection {}.",
                text("role"),
                shown(connection)
            ),
            _ => format!("Role {}.", text("role")),
        },
        "user.role_changed" => match details.get("connection") {
            Some(connection) if !connection.is_null() => format!(
                "Role: {} → {}, of connection {}.",
                text("from"),
                text("to"),
                shown(connection)
            ),
            _ => format!("Role: {} → {}.", text("from"), text("to")),
        },
        "user.password_link_created" => format!(
            "A one-time set-password link, valid until {}.",
            text("expires_at")
        ),
        "api_key.created" | "api_key.deleted" => format!("Name {}.", text("name")),
        _ => fields(details),
    }
}

/// A webhook's fields in the order of its form.
const FORM_ORDER: [&str; 9] = [
    "url",
    "description",
    "events",
    "connection",
    "retry_on_error",
    "use_customer_language",
    "capabilities",
    "ordered",
    "headers",
];

/// Every field of an object as `key: value`, for actions without a sentence of their own.
fn fields(details: &Value) -> String {
    match details.as_object() {
        Some(object) if !object.is_empty() => object
            .iter()
            .map(|(key, value)| format!("{}: {}", label(key), shown_field(key, value)))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    }
}

/// What a field of a webhook is called on its page.
fn label(field: &str) -> String {
    match field {
        "url" => "Endpoint".to_owned(),
        "description" => "Description".to_owned(),
        "events" => "Events".to_owned(),
        "connection" => "Connection".to_owned(),
        "retry_on_error" => "Retry on error".to_owned(),
        "use_customer_language" => "Customer language".to_owned(),
        "capabilities" => "Capabilities".to_owned(),
        "ordered" => "Ordered per key".to_owned(),
        "headers" => "Custom headers".to_owned(),
        other => {
            let spaced = other.replace('_', " ");
            let mut chars = spaced.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// A value as a field of that name shows it: nothing is "none", or "all connections".
fn shown_field(field: &str, value: &Value) -> String {
    match (field, value) {
        ("connection", Value::Null) => "all connections".to_owned(),
        ("capabilities", Value::Array(items)) if items.is_empty() => "whole payload".to_owned(),
        _ => shown(value),
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "none".to_owned(),
        Value::Bool(true) => "on".to_owned(),
        Value::Bool(false) => "off".to_owned(),
        Value::String(text) if text.is_empty() => "(empty)".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn status(value: Option<&Value>) -> String {
    match value.and_then(Value::as_str) {
        Some("active") => "Active".to_owned(),
        Some("inactive") => "Inactive".to_owned(),
        Some("auto_disabled") => "Auto-disabled".to_owned(),
        Some(other) => other.to_owned(),
        None => "unknown".to_owned(),
    }
}

fn trim_dot(text: &str) -> &str {
    text.trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::describe;

    #[test]
    fn an_edit_says_what_changed_from_what_to_what() {
        let details = json!({"url": "https://b.example", "events": ["booking.created"], "changes": {
            "url": {"from": "https://a.example", "to": "https://b.example"},
            "connection": {"from": null, "to": "CT-1"},
            "ordered": {"from": false, "to": true},
            "headers": {"from": ["Authorization"], "to": ["Authorization", "X-Team"]},
        }});
        assert_eq!(
            describe("webhook.updated", &details),
            "Endpoint: https://a.example → https://b.example; Connection: all connections → CT-1; \
             Ordered per key: off → on; Custom headers: Authorization → Authorization, X-Team."
        );
    }

    #[test]
    fn switching_says_what_became_of_parked_deliveries() {
        let details = json!({"from": "auto_disabled", "to": "active",
                             "parked_deliveries": {"count": 12, "choice": "resend"}});
        assert_eq!(
            describe("webhook.enabled", &details),
            "Status: Auto-disabled → Active. 12 parked deliveries sent again."
        );
        assert_eq!(
            describe("webhook.disabled", &json!({"from": "active", "to": "inactive"})),
            "Status: Active → Inactive."
        );
    }

    #[test]
    fn known_and_unknown_actions_read_as_text() {
        assert_eq!(
            describe("tenant.plan_changed", &json!({"from": "growth", "to": "scale"})),
            "growth → scale."
        );
        assert_eq!(
            describe(
                "user.role_changed",
                &json!({"from": "viewer", "to": "partner", "connection": "CT-SUN"})
            ),
            "Role: viewer → partner, of connection CT-SUN."
        );
        assert_eq!(
            describe("something.new", &json!({"some_field": [1, 2], "flag": true})),
            "Some field: 1, 2; Flag: on"
        );
        assert_eq!(describe("webhook.secret_revealed", &json!({})), "");
    }
}
