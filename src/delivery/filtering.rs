//! A webhook's filter at publish time (SPEC 9d): whether an event passes it, and what
//! a batch's filtering adds to each webhook's counters.

use crate::models::webhook::Webhook;
use crate::validation::filter::{self, Event as FilterEvent};

/// What a webhook's filter says of an event: `Ok(true)` when it passes (or there is no
/// filter), `Err` with the message when the filter fails, which counts as false. The
/// event is converted for filters once, by the first filter that needs it.
pub(super) fn passes(
    webhook: &Webhook,
    (kind, data, connection, language): (&str, &serde_json::Value, Option<&str>, Option<&str>),
    converted: &mut Option<FilterEvent>,
) -> Result<bool, String> {
    let Some(text) = &webhook.filter else {
        return Ok(true);
    };
    let compiled = filter::cached(text).map_err(|e| e.to_string())?;
    let event = converted.get_or_insert_with(|| FilterEvent::new(kind, data, connection, language));
    compiled.evaluate(event).map_err(|e| e.to_string())
}

/// What publishing a batch did to one webhook's counters.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Events fanned out to it (deliveries written).
    pub events: i64,
    /// Events of its types and connection its filter skipped, failures included.
    pub skipped: i64,
    /// Events its filter failed on.
    pub errors: i64,
    /// The last failure's message.
    pub last_error: Option<String>,
}
