//! What one webhook receives of an event: the envelope as published, or a copy with only
//! the payload sections it chose (capabilities) and the customer's language.

use serde_json::Value;

use crate::models::event::{Envelope, wire_time};
use crate::validation::webhook::CAPABILITIES;

/// The event as the outbox knows it.
pub struct Published<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub tenant: &'a str,
    pub connection: Option<&'a str>,
    pub data: &'a Value,
    pub language: Option<&'a str>,
}

/// The language of the event's customer: given at publish time, or in `customer.language`.
pub fn customer_language<'a>(published: &'a Published<'a>) -> Option<&'a str> {
    published
        .language
        .or_else(|| published.data.get("customer")?.get("language")?.as_str())
        .filter(|l| !l.is_empty() && l.len() <= 35)
}

/// The body for one webhook, or `None` when it is the event's own body.
pub fn tailor(
    published: &Published<'_>,
    capabilities: &[String],
    use_customer_language: bool,
) -> Option<String> {
    let language = if use_customer_language {
        customer_language(published)
    } else {
        None
    };
    if capabilities.is_empty() && language.is_none() {
        return None;
    }
    let mut data = published.data.clone();
    if let Some(object) = data.as_object_mut() {
        if !capabilities.is_empty() {
            for section in CAPABILITIES {
                if !capabilities.iter().any(|c| c == section) {
                    object.remove(section);
                }
            }
        }
        if let Some(language) = language
            && let Some(Value::Object(localized)) = object.get_mut("localized")
        {
            localized.retain(|code, _| code == language);
        }
    }
    Some(
        Envelope {
            id: published.id,
            kind: published.kind,
            timestamp: wire_time(published.occurred_at),
            tenant: published.tenant,
            connection: published.connection,
            data: &data,
        }
        .to_body(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn published(data: &Value) -> Published<'_> {
        Published {
            id: "evt_1",
            kind: "booking.created",
            occurred_at: "2026-11-22T10:00:00Z".parse().unwrap(),
            tenant: "alpine",
            connection: None,
            data,
            language: None,
        }
    }

    #[test]
    fn capabilities_keep_only_the_chosen_sections() {
        let data = json!({"id": "b1", "customer": {"language": "de"}, "pricing": {}, "units": [], "payment": {}, "questions": []});
        assert_eq!(
            tailor(&published(&data), &[], false),
            None,
            "everything: the event's own body"
        );
        let body: Value = serde_json::from_str(
            &tailor(&published(&data), &["customer".into(), "pricing".into()], false).unwrap(),
        )
        .unwrap();
        assert_eq!(
            body["data"],
            json!({"id": "b1", "customer": {"language": "de"}, "pricing": {}})
        );
    }

    #[test]
    fn the_customer_language_keeps_its_own_texts() {
        let data = json!({"customer": {"language": "de"}, "localized": {"de": {"name": "Rundgang"}, "fr": {"name": "Visite"}}});
        let body: Value = serde_json::from_str(&tailor(&published(&data), &[], true).unwrap()).unwrap();
        assert_eq!(body["data"]["localized"], json!({"de": {"name": "Rundgang"}}));
        assert_eq!(customer_language(&published(&data)), Some("de"));
    }
}
