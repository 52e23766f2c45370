//! "Test filter": what a webhook's filter says of one event type's example payload, before
//! the form is saved. The same compiling and evaluating as saving and publishing.

use super::AppError;
use crate::models::event_type::EventType;
use crate::state::AppState;
use crate::validation::filter;

/// What a filter says of an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOutcome {
    /// No filter was typed: every event is sent.
    Empty,
    Passes(bool),
    /// It does not compile, or fails on the example (with where, when known).
    Fails(String),
}

/// Evaluates `text` on the catalog's example of `kind` (an unknown type is a field error).
pub async fn test(state: &AppState, text: String, kind: String) -> Result<FilterOutcome, AppError> {
    let Some(text) = filter::normalize(Some(&text)) else {
        return Ok(FilterOutcome::Empty);
    };
    let example = state
        .db(move |conn| {
            EventType::all(conn)?
                .iter()
                .find(|t| t.code == kind)
                .map(|t| (t.code.clone(), t.example_payload.clone()))
                .ok_or_else(|| AppError::validation("filter_event", "Choose an event type of the catalog."))
        })
        .await?;
    crate::state::blocking(move || {
        Ok(match filter::test(&text, &example.0, &example.1) {
            Ok(passes) => FilterOutcome::Passes(passes),
            Err(err) => FilterOutcome::Fails(err.to_string()),
        })
    })
    .await
}
