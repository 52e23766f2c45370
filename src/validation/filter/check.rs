//! The checks on a filter's text before parsing and on its tree after: nesting, names,
//! functions, size, comprehensions, and the cost estimate evaluation is held to.

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr, SourceInfo};

use super::{
    FUNCTIONS, FilterError, MAX_COMPREHENSIONS, MAX_DEPTH, MAX_NODES, NAMES, node_position, position,
};

/// How much deeper than the written nesting the tree may be: macros expand into a few
/// levels of their own.
const MACRO_LEVELS: usize = 8;

/// The operators CEL's parser produces.
const OPERATORS: [&str; 18] = [
    "_?_:_", "_&&_", "_||_", "!_", "-_", "_-_", "_+_", "_*_", "_/_", "_%_", "_==_", "_!=_", "_>=_", "_<=_",
    "_>_", "_<_", "_[_]", "@in",
];
/// The macros' own helper, which appears in their expansion.
const MACRO_HELPERS: [&str; 1] = ["@not_strictly_false"];
/// Calls whose work grows with their operands (comparisons and concatenation of whole
/// lists, maps or strings, membership, string searches).
const HEAVY: [&str; 13] = [
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_+_",
    "@in",
    "contains",
    "startsWith",
    "endsWith",
    "size",
    "string",
];
/// Calls that read their whole operand even when the other operands are literals.
const SCANS: [&str; 5] = ["contains", "startsWith", "endsWith", "size", "string"];

/// Nesting on the text alone (brackets, and runs of `!` and `-`), before the parser sees
/// it: the parser's recursion is what a deeply nested text would exhaust.
pub(super) fn nesting(text: &str) -> Result<(), FilterError> {
    let too_deep = |offset: usize| {
        Err(FilterError::at(
            format!("The filter is nested too deeply (at most {MAX_DEPTH} levels)."),
            Some(position(text, offset)),
        ))
    };
    let mut depth = 0usize;
    let mut unary = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (offset, c) in text.chars().enumerate() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                unary = 0;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                unary = 0;
            }
            '!' | '-' => unary += 1,
            c if c.is_whitespace() => {}
            _ => unary = 0,
        }
        if depth + unary > MAX_DEPTH {
            return too_deep(offset);
        }
    }
    Ok(())
}

/// A cost estimate: `[a, b, c]` is `a + b·w + c·w²`, `w` the widest list, map or string
/// of the event.
type Cost = [u64; 3];

fn add(a: Cost, b: Cost) -> Cost {
    [
        a[0].saturating_add(b[0]),
        a[1].saturating_add(b[1]),
        a[2].saturating_add(b[2]),
    ]
}

fn times(a: Cost, b: Cost) -> Cost {
    // Degree 2 at most: a comprehension's body has no comprehension of its own.
    [
        a[0].saturating_mul(b[0]),
        a[0].saturating_mul(b[1])
            .saturating_add(a[1].saturating_mul(b[0])),
        a[0].saturating_mul(b[2])
            .saturating_add(a[1].saturating_mul(b[1]))
            .saturating_add(a[2].saturating_mul(b[0]))
            .saturating_add(a[1].saturating_mul(b[2]))
            .saturating_add(a[2].saturating_mul(b[1]))
            .saturating_add(a[2].saturating_mul(b[2])),
    ]
}

struct Walk<'a> {
    info: &'a SourceInfo,
    nodes: usize,
    comprehensions: usize,
    /// Names bound by the comprehensions around the node.
    scope: Vec<String>,
}

/// The checks on the parsed tree; the cost estimate when they pass.
pub(super) fn tree(expr: &IdedExpr, info: &SourceInfo) -> Result<Cost, FilterError> {
    let mut walk = Walk {
        info,
        nodes: 0,
        comprehensions: 0,
        scope: Vec::new(),
    };
    walk.expr(expr, 0, false, None)
}

fn is_literal(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(_) => true,
        Expr::List(list) => list.elements.iter().all(is_literal),
        Expr::Map(map) => map.entries.iter().all(|entry| match &entry.expr {
            EntryExpr::MapEntry(m) => is_literal(&m.key) && is_literal(&m.value),
            EntryExpr::StructField(_) => false,
        }),
        _ => false,
    }
}

/// How many `+` the expression holds: a list built with `a + b` is as long as both.
fn concatenations(e: &IdedExpr) -> u64 {
    match &e.expr {
        Expr::Call(call) => {
            u64::from(call.func_name == "_+_")
                + call.args.iter().map(concatenations).sum::<u64>()
                + call.target.as_deref().map_or(0, concatenations)
        }
        _ => 0,
    }
}

impl Walk<'_> {
    fn expr(
        &mut self,
        e: &IdedExpr,
        depth: usize,
        in_comprehension: bool,
        around: Option<(usize, usize)>,
    ) -> Result<Cost, FilterError> {
        let at = node_position(self.info, e.id).or(around);
        if depth > MAX_DEPTH + MACRO_LEVELS {
            return Err(FilterError::at(
                format!("The filter is nested too deeply (at most {MAX_DEPTH} levels)."),
                at,
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(FilterError::at(
                format!("The filter is too large (at most {MAX_NODES} terms)."),
                at,
            ));
        }
        let deeper = depth + 1;
        let one: Cost = [1, 0, 0];
        Ok(match &e.expr {
            Expr::Unspecified => return Err(FilterError::at("The filter does not parse.", at)),
            Expr::Literal(_) => one,
            Expr::Ident(name) => {
                if !NAMES.contains(&name.as_str()) && !self.scope.iter().any(|n| n == name) {
                    return Err(FilterError::at(
                        format!(
                            "`{name}` is not known here: a filter may use {}.",
                            NAMES.join(", ")
                        ),
                        at,
                    ));
                }
                one
            }
            Expr::Select(select) => add(one, self.expr(&select.operand, deeper, in_comprehension, at)?),
            Expr::List(list) => {
                let mut cost = one;
                for element in &list.elements {
                    cost = add(cost, self.expr(element, deeper, in_comprehension, at)?);
                }
                cost
            }
            Expr::Map(map) => {
                let mut cost = one;
                for entry in &map.entries {
                    let EntryExpr::MapEntry(m) = &entry.expr else {
                        return Err(FilterError::at(
                            "Message fields are not supported in filters.",
                            at,
                        ));
                    };
                    cost = add(cost, self.expr(&m.key, deeper, in_comprehension, at)?);
                    cost = add(cost, self.expr(&m.value, deeper, in_comprehension, at)?);
                }
                cost
            }
            Expr::Struct(s) => {
                return Err(FilterError::at(
                    format!(
                        "Messages (`{}{{...}}`) are not supported in filters.",
                        s.type_name
                    ),
                    at,
                ));
            }
            Expr::Call(call) => {
                let name = call.func_name.as_str();
                if !OPERATORS.contains(&name) && !MACRO_HELPERS.contains(&name) && !FUNCTIONS.contains(&name)
                {
                    return Err(FilterError::at(
                        format!(
                            "`{name}` is not a function filters may use (they may use {} and the operators).",
                            FUNCTIONS.join(", ")
                        ),
                        at,
                    ));
                }
                let mut cost = one;
                let operands: Vec<&IdedExpr> = call
                    .target
                    .as_deref()
                    .into_iter()
                    .chain(call.args.iter())
                    .collect();
                for operand in &operands {
                    cost = add(cost, self.expr(operand, deeper, in_comprehension, at)?);
                }
                let unknown = operands.iter().filter(|o| !is_literal(o)).count();
                let heavy = HEAVY.contains(&name)
                    && unknown > 0
                    && (unknown == operands.len() || SCANS.contains(&name));
                if heavy {
                    cost = add(cost, [0, 1, 0]);
                }
                cost
            }
            Expr::Comprehension(c) => {
                if in_comprehension {
                    return Err(FilterError::at(
                        "Comprehensions (all, exists, exists_one, map, filter) may not be nested in one another.",
                        at,
                    ));
                }
                self.comprehensions += 1;
                if self.comprehensions > MAX_COMPREHENSIONS {
                    return Err(FilterError::at(
                        format!(
                            "A filter may use at most {MAX_COMPREHENSIONS} comprehensions (all, exists, exists_one, map, filter)."
                        ),
                        at,
                    ));
                }
                let range = self.expr(&c.iter_range, deeper, true, at)?;
                let init = self.expr(&c.accu_init, deeper, true, at)?;
                let iterations: Cost = match &c.iter_range.expr {
                    Expr::List(list) => [list.elements.len() as u64, 0, 0],
                    _ => [0, 1 + concatenations(&c.iter_range), 0],
                };
                let bound = self.scope.len();
                self.scope.push(c.accu_var.clone());
                let result = self.expr(&c.result, deeper, true, at)?;
                self.scope.push(c.iter_var.clone());
                self.scope.extend(c.iter_var2.clone());
                let cond = self.expr(&c.loop_cond, deeper, true, at)?;
                let step = self.expr(&c.loop_step, deeper, true, at)?;
                self.scope.truncate(bound);
                add(
                    add(add(one, range), add(init, result)),
                    times(iterations, add(cond, step)),
                )
            }
        })
    }
}
