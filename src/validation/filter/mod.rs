//! A webhook's payload filter (SPEC 9d): a CEL expression over the event, with `type`,
//! `data`, `connection` and `language` in scope, compiled once and evaluated at publish
//! time. The form, the API and the outbox all go through this module, so a filter is
//! refused, cached and evaluated under the same rules everywhere.
//!
//! A hostile filter must not slow publishing or crash the process. So:
//! - its text is at most [`MAX_FILTER_CHARS`] characters, its nesting at most
//!   [`MAX_DEPTH`] (checked on the text before the parser sees it, and on the tree after),
//!   its tree at most [`MAX_NODES`] nodes;
//! - the parser (ANTLR, stack-hungry in debug builds) runs on a thread of its own with a
//!   [`COMPILE_STACK`] stack; evaluation recurses at most as deep as the tree;
//! - comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) never nest and are at
//!   most [`MAX_COMPREHENSIONS`]; before each evaluation the cost is estimated from the
//!   event's widest list, map or string, and a filter over [`MAX_STEPS`] is not run
//!   (an evaluation error, which counts as false).

mod cache;
mod check;
mod eval;

use std::sync::{Arc, LazyLock};

use cel::Env;
use cel::common::ast::SourceInfo;

pub use cache::cached;
pub use eval::Event;

/// At most this many characters in a filter.
pub const MAX_FILTER_CHARS: usize = 2000;
/// At most this many levels of nesting (brackets, operators, calls) in a filter.
pub const MAX_DEPTH: usize = 24;
/// At most this many nodes in a filter's tree (after macros are expanded).
pub const MAX_NODES: usize = 400;
/// At most this many comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`).
pub const MAX_COMPREHENSIONS: usize = 3;
/// At most this many estimated steps for one evaluation.
pub const MAX_STEPS: u64 = 100_000;
/// The names a filter may use.
pub const NAMES: [&str; 4] = ["type", "data", "connection", "language"];
/// The functions and macros a filter may call, besides the operators.
pub const FUNCTIONS: [&str; 16] = [
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "dyn",
];
/// The stack of the thread that parses a filter: the parser is recursive descent and its
/// frames are large in debug builds.
const COMPILE_STACK: usize = 64 * 1024 * 1024;

/// The environment every filter is compiled and evaluated in: CEL's standard library
/// without optional values.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib().with_optional_support(false)));

/// Why a filter was refused, with where (1-based line and column) when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub message: String,
    pub at: Option<(usize, usize)>,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "line {line}, column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl FilterError {
    fn new(message: impl Into<String>) -> Self {
        FilterError {
            message: message.into(),
            at: None,
        }
    }

    fn at(message: impl Into<String>, at: Option<(usize, usize)>) -> Self {
        FilterError {
            message: message.into(),
            at,
        }
    }
}

/// A filter that passed every check, ready to evaluate.
pub struct Compiled {
    expr: cel::IdedExpr,
    /// The estimated cost as a polynomial in the event's widest collection:
    /// `cost[0] + cost[1]·w + cost[2]·w²`.
    cost: [u64; 3],
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("cost", &self.cost).finish()
    }
}

/// 1-based line and column of a character offset in `source`.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

fn node_position(info: &SourceInfo, id: u64) -> Option<(usize, usize)> {
    info.offset_for(id)
        .map(|(start, _)| position(&info.source, start as usize))
}

/// Compiles a filter: the text checks (size, nesting), the parser on a thread with a
/// large stack, then the tree checks (names, functions, nodes, comprehensions).
pub fn compile(text: &str) -> Result<Compiled, FilterError> {
    let chars = text.chars().count();
    if chars > MAX_FILTER_CHARS {
        return Err(FilterError::new(format!(
            "A filter may have at most {MAX_FILTER_CHARS} characters (it has {chars})."
        )));
    }
    if text.contains('\0') {
        return Err(FilterError::new("A filter may not contain the NUL character."));
    }
    check::nesting(text)?;
    let source = text.to_owned();
    let parsed = std::thread::Builder::new()
        .name("filter-compile".into())
        .stack_size(COMPILE_STACK)
        .spawn(move || {
            ENV.parser()
                .max_recursion_depth(MAX_DEPTH as u16 * 2)
                .error_recovery_limit(5)
                .parse_with_source_info(&source)
                .map_err(|errors| {
                    let first = errors.errors.first();
                    FilterError::at(
                        first.map_or_else(
                            || "The filter does not parse.".to_owned(),
                            |e| parse_message(&e.msg),
                        ),
                        first.map(|e| (e.pos.0.max(1) as usize, e.pos.1.max(0) as usize + 1)),
                    )
                })
                // The tree is walked (and, when refused, dropped) here too: before its
                // checks it may be as deep as the text is long.
                .and_then(|(expr, info)| check::tree(&expr, &info).map(|cost| (expr, cost)))
        })
        .map_err(|_| FilterError::new("The filter could not be checked now; try again."))?
        .join()
        .map_err(|_| FilterError::new("The filter could not be read."))?;
    let (expr, cost) = parsed?;
    Ok(Compiled { expr, cost })
}

/// The parser's message, made readable.
fn parse_message(message: &str) -> String {
    let message = message.trim();
    if message.starts_with("Recursion limit") {
        return format!("The filter is nested too deeply (at most {MAX_DEPTH} levels).");
    }
    format!("The filter does not parse: {message}.")
}

/// The filter of a form or an API call, trimmed; `None` when there is none.
pub fn normalize(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// Checks a filter for saving: it compiles, and on the example payload of each event type
/// the webhook subscribes to (`examples`: code and example data) it evaluates to a
/// boolean without error. The message says where and on which event type it failed.
pub fn validate(text: &str, examples: &[(&str, &serde_json::Value)]) -> Result<(), String> {
    let compiled = compile(text).map_err(|e| e.to_string())?;
    for (kind, data) in examples {
        let event = Event::new(kind, data, None, None);
        if let Err(err) = compiled.evaluate(&event) {
            return Err(format!(
                "On the example payload of {kind}: {} (see the catalog's example).",
                err.message.trim_end_matches('.')
            ));
        }
    }
    Ok(())
}

/// What "Test filter" says about a filter and one example payload.
pub fn test(text: &str, kind: &str, data: &serde_json::Value) -> Result<bool, FilterError> {
    compile(text)?.evaluate(&Event::new(kind, data, None, None))
}

#[cfg(test)]
mod tests;
