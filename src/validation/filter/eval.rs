//! Evaluating a compiled filter on an event. The event's values are converted once and
//! borrowed by every filter evaluated on it, however many webhooks have one.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::objects::{Key, Map};
use cel::{Context, Value};

use super::{Compiled, ENV, FilterError, MAX_STEPS};

/// Strings count one step per this many bytes in the cost estimate (searching and
/// comparing run at memory speed).
const STRING_BYTES_PER_STEP: usize = 64;

/// An event as filters see it: `type`, `data`, `connection` (its external id or null),
/// `language`.
pub struct Event {
    kind: Box<dyn Val>,
    data: Box<dyn Val>,
    connection: Box<dyn Val>,
    language: Box<dyn Val>,
    /// The widest list or map of the data, or its longest string in steps: what the cost
    /// estimate is computed with.
    widest: u64,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event").field("widest", &self.widest).finish()
    }
}

fn val(value: Value) -> Box<dyn Val> {
    Box::<dyn Val>::try_from(value)
        .unwrap_or_else(|_| Box::<dyn Val>::try_from(Value::Null).expect("null converts"))
}

/// serde_json to CEL, noting the widest collection. JSON is at most 128 levels deep
/// (serde_json's limit on everything Hookboard reads), so the recursion is bounded.
fn convert(json: &serde_json::Value, widest: &mut usize) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => {
            *widest = (*widest).max(s.len() / STRING_BYTES_PER_STEP);
            Value::String(Arc::new(s.clone()))
        }
        serde_json::Value::Array(items) => {
            *widest = (*widest).max(items.len());
            Value::List(Arc::new(items.iter().map(|i| convert(i, widest)).collect()))
        }
        serde_json::Value::Object(fields) => {
            *widest = (*widest).max(fields.len());
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), convert(v, widest)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

impl Event {
    pub fn new(
        kind: &str,
        data: &serde_json::Value,
        connection: Option<&str>,
        language: Option<&str>,
    ) -> Self {
        let mut widest = 0;
        let data = convert(data, &mut widest);
        let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(Arc::new(s.to_owned())));
        Event {
            kind: val(Value::String(Arc::new(kind.to_owned()))),
            data: val(data),
            connection: val(text(connection)),
            language: val(text(language)),
            widest: widest as u64,
        }
    }
}

impl VariableResolver for Event {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let value: &'b dyn Val = match variable {
            "type" => self.kind.as_ref(),
            "data" => self.data.as_ref(),
            "connection" => self.connection.as_ref(),
            "language" => self.language.as_ref(),
            _ => return None,
        };
        Some(CowVal::Borrowed(value))
    }
}

impl Compiled {
    /// The estimated steps of evaluating this filter on `event`.
    pub fn cost(&self, event: &Event) -> u64 {
        let w = event.widest;
        self.cost[0]
            .saturating_add(self.cost[1].saturating_mul(w))
            .saturating_add(self.cost[2].saturating_mul(w.saturating_mul(w)))
    }

    /// Whether `event` passes: `Ok(true)` or `Ok(false)`; an error when the filter fails
    /// on it, is not boolean, or would cost more than [`MAX_STEPS`].
    pub fn evaluate(&self, event: &Event) -> Result<bool, FilterError> {
        let cost = self.cost(event);
        if cost > MAX_STEPS {
            return Err(FilterError::new(format!(
                "Not evaluated: on this event the filter would take about {cost} steps (at most {MAX_STEPS}); the event's lists are too long for it."
            )));
        }
        let mut context = Context::with_env(Arc::clone(&ENV));
        context.set_variable_resolver(event);
        match Value::resolve(&self.expr, &context) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(FilterError::new(format!(
                "The filter gives {} instead of true or false.",
                other.type_of()
            ))),
            Err(err) => Err(FilterError::new(format!("The filter fails: {err}."))),
        }
    }
}
