//! The Add / Edit webhook form: parsing the submitted fields (repeated keys included) and
//! the view the template renders, with the typed values kept next to each field's error.

use std::collections::BTreeMap;

use askama::Template;

use crate::models::connection::Connection;
use crate::models::event_type::EventType;
use crate::models::webhook::Webhook;
use crate::validation::webhook::{CAPABILITIES, FieldErrors, Input};

/// The form as submitted. Checkboxes are present when ticked, absent otherwise.
#[derive(Debug, Clone, Default)]
pub struct Submitted {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub connection: String,
    pub active: bool,
    pub api_key_enabled: bool,
    pub retry_on_error: bool,
    pub use_customer_language: bool,
    pub ordered: bool,
    pub capabilities: Vec<String>,
    pub headers: Vec<(String, String)>,
    /// The CEL filter, as typed.
    pub filter: String,
}

impl Submitted {
    /// Reads an `application/x-www-form-urlencoded` body. Header rows pair up by position:
    /// the n-th `header_name` with the n-th `header_value`.
    pub fn parse(body: &[u8]) -> Submitted {
        let mut form = Submitted::default();
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "url" => form.url = value,
                "description" => form.description = value,
                "events" => form.events.push(value),
                "connection" => form.connection = value,
                "active" => form.active = true,
                "api_key_enabled" => form.api_key_enabled = true,
                "retry_on_error" => form.retry_on_error = true,
                "use_customer_language" => form.use_customer_language = true,
                "ordered" => form.ordered = true,
                "capabilities" => form.capabilities.push(value),
                "header_name" => names.push(value),
                "header_value" => values.push(value),
                "filter" => form.filter = value,
                _ => {}
            }
        }
        values.resize(names.len().max(values.len()), String::new());
        names.resize(values.len(), String::new());
        form.headers = names.into_iter().zip(values).collect();
        form
    }

    /// What a new webhook's form starts with.
    pub fn blank() -> Submitted {
        let defaults = Input::default();
        Submitted {
            active: defaults.active,
            api_key_enabled: defaults.api_key_enabled,
            retry_on_error: defaults.retry_on_error,
            use_customer_language: defaults.use_customer_language,
            ordered: defaults.ordered,
            ..Submitted::default()
        }
    }

    /// The edit form of an existing webhook; credentials in headers come masked.
    pub fn of(webhook: &Webhook, headers: Vec<(String, String)>) -> Submitted {
        Submitted {
            url: webhook.url.clone(),
            description: webhook.description.clone(),
            events: webhook.events.clone(),
            connection: webhook.connection_id.map(|id| id.to_string()).unwrap_or_default(),
            active: webhook.is_active(),
            api_key_enabled: webhook.api_key_enabled,
            retry_on_error: webhook.retry_on_error,
            use_customer_language: webhook.use_customer_language,
            ordered: webhook.ordered,
            capabilities: webhook.capabilities.clone(),
            headers,
            filter: webhook.filter.clone().unwrap_or_default(),
        }
    }

    /// The input to validate. A connection that is not a number cannot be one of the
    /// tenant's, so it is passed on as an impossible id for validation to refuse.
    pub fn to_input(&self) -> Input {
        let connection_id = match self.connection.trim() {
            "" => None,
            id => Some(id.parse::<i64>().unwrap_or(-1)),
        };
        Input {
            url: self.url.clone(),
            description: self.description.clone(),
            events: self.events.clone(),
            connection_id,
            capabilities: self.capabilities.clone(),
            headers: self.headers.clone(),
            active: self.active,
            api_key_enabled: self.api_key_enabled,
            retry_on_error: self.retry_on_error,
            use_customer_language: self.use_customer_language,
            ordered: self.ordered,
            filter: Some(self.filter.clone()),
        }
    }
}

/// One category of the event checkboxes.
pub struct EventGroup {
    pub category: String,
    /// For ids: `bookings`, `check-in`, ...
    pub key: String,
    pub types: Vec<EventType>,
}

pub fn group_events(types: &[EventType]) -> Vec<EventGroup> {
    let mut groups: Vec<EventGroup> = Vec::new();
    for event_type in types.iter().cloned() {
        match groups.last_mut() {
            Some(group) if group.category == event_type.category => group.types.push(event_type),
            _ => groups.push(EventGroup {
                key: crate::models::tenant::slugify(&event_type.category),
                category: event_type.category.clone(),
                types: vec![event_type],
            }),
        }
    }
    groups
}

/// The form, in a dialog (htmx) or on a page of its own (without JavaScript).
#[derive(Template)]
#[template(path = "webhooks/form.html")]
pub struct FormView {
    /// `/webhooks` to create, `/webhooks/{id}` to update.
    pub action: String,
    pub title: String,
    pub values: Submitted,
    pub errors: FieldErrors,
    /// A problem with the whole form (the plan limit).
    pub general_error: Option<String>,
    pub groups: Vec<EventGroup>,
    pub connections: Vec<Connection>,
    /// A partner's form: the webhook belongs to its connection, the only one offered.
    pub connection_fixed: bool,
    pub csrf_token: String,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for FormView {}

impl FormView {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    pub fn has_event(&self, code: &str) -> bool {
        self.values.events.iter().any(|e| e == code)
    }

    pub fn all_of_group(&self, group: &EventGroup) -> bool {
        group.types.iter().all(|t| self.has_event(&t.code))
    }

    pub fn has_capability(&self, capability: &str) -> bool {
        self.values.capabilities.iter().any(|c| c == capability)
    }

    /// The event type "Test filter" starts with: the first one ticked, else the first.
    pub fn is_test_event(&self, code: &str) -> bool {
        match self.values.events.first() {
            Some(first) => first == code,
            None => self
                .groups
                .first()
                .and_then(|g| g.types.first())
                .is_some_and(|t| t.code == code),
        }
    }

    pub fn is_connection(&self, id: &i64) -> bool {
        self.values.connection == id.to_string()
    }

    pub fn capabilities(&self) -> &'static [&'static str] {
        &CAPABILITIES
    }

    /// The header rows to show: those typed, plus one empty row to fill in.
    pub fn header_rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .values
            .headers
            .iter()
            .filter(|(n, v)| !(n.is_empty() && v.is_empty()))
            .cloned()
            .collect();
        rows.push((String::new(), String::new()));
        rows
    }

    pub fn error_count(&self) -> usize {
        self.errors.len() + usize::from(self.general_error.is_some())
    }
}

/// Field errors keyed the way the template asks for them.
pub fn no_errors() -> FieldErrors {
    BTreeMap::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_and_header_rows_are_read_in_order() {
        let body = b"url=https%3A%2F%2Fcrm.example.com%2Fh&events=booking.created&events=payment.completed&\
header_name=Authorization&header_value=Bearer+x&header_name=X-Source&header_value=hookboard&active=on&csrf_token=t";
        let form = Submitted::parse(body);
        assert_eq!(form.url, "https://crm.example.com/h");
        assert_eq!(form.events, ["booking.created", "payment.completed"]);
        assert_eq!(
            form.headers,
            [
                ("Authorization".into(), "Bearer x".into()),
                ("X-Source".into(), "hookboard".into())
            ]
        );
        assert!(form.active && !form.retry_on_error);
        assert_eq!(
            Submitted::parse(b"connection=abc").to_input().connection_id,
            Some(-1)
        );
    }
}
