//! The layers of `docs/architecture.md`, checked on the source itself: every module imports
//! only from the layers below it (or its own), the two doors never import each other, and
//! no module imports one that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer; a module may use modules of lower
/// layers, and of its own layer only where [`SIBLINGS`] allows it.
const LAYERS: &[(&str, u8)] = &[
    // Foundation: no knowledge of tables, HTTP or use cases.
    ("schema", 0),
    ("clock", 0),
    ("crypto", 0),
    ("telemetry", 0),
    ("auth", 0),
    ("validation", 1),
    ("settings", 2),
    ("metrics", 2),
    ("db", 3),
    ("error", 3),
    ("state", 4),
    // The store: one module per table.
    ("models", 5),
    // The delivery engine: the outbox and the worker.
    ("delivery", 6),
    // The product's rules.
    ("services", 7),
    // The two doors.
    ("web", 8),
    ("api", 8),
    // Wiring.
    ("routes", 9),
    ("startup", 10),
    ("app", 11),
    ("cli", 12),
];

/// Same-layer uses that are allowed, module by module. The doors stay apart but for one
/// page: the API reference renders the API's own OpenAPI description.
const SIBLINGS: &[(&str, &str)] = &[("web::api_reference", "api::doc")];

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
        .unwrap_or_else(|| panic!("src/{module} has no layer in tests/integration/layers.rs: add it (and to docs/architecture.md)"))
}

fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `models::webhook` for `src/models/webhook/filter.rs`, `web` for `src/web/mod.rs`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.truncate(2);
    parts
}

/// The identifier after each occurrence of `prefix` in code (comments skipped).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<(&'a str, Option<&'a str>)> {
    let ident = |text: &'a str| -> &'a str {
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        &text[..end]
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| {
            line.match_indices(prefix)
                .map(move |(at, _)| &line[at + prefix.len()..])
        })
        .map(|rest| {
            let first = ident(rest);
            let second = rest[first.len()..]
                .strip_prefix("::")
                .map(ident)
                .filter(|s| !s.is_empty());
            (first, second)
        })
        .filter(|(first, _)| !first.is_empty())
        .collect()
}

/// Which module uses which, at the depth of `module_of`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let folders: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| m.len() == 2)
        .map(|m| m[0].clone())
        .collect();
    let submodules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f).join("::")).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module.first().is_some_and(|m| m == "main" || m == "lib") {
            continue;
        }
        let from = module.join("::");
        let code = std::fs::read_to_string(file).unwrap();
        let code = code.split("#[cfg(test)]").next().unwrap();
        let mut targets = Vec::new();
        for (first, second) in paths_after(code, "crate::") {
            let nested = second.map(|s| format!("{first}::{s}"));
            match nested {
                Some(nested) if folders.contains(first) && submodules.contains(&nested) => {
                    targets.push(nested)
                }
                _ => targets.push(first.to_owned()),
            }
        }
        // `super::x` in `src/a/b.rs` or `src/a/b/mod.rs` names a sibling `a::x`.
        let direct_child = module.len() == 2
            && (file.parent().unwrap() == src.join(&module[0]) || file.file_name().unwrap() == "mod.rs");
        if direct_child {
            for (first, _) in paths_after(code, "super::") {
                let sibling = format!("{}::{first}", module[0]);
                if submodules.contains(&sibling) {
                    targets.push(sibling);
                }
            }
        }
        let edges = graph.entry(from.clone()).or_default();
        edges.extend(targets.into_iter().filter(|t| *t != from));
    }
    graph
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let mut wrong = Vec::new();
    for (from, targets) in graph() {
        let top = from.split("::").next().unwrap().to_owned();
        for target in targets {
            let target_top = target.split("::").next().unwrap();
            if target_top == top {
                continue;
            }
            let allowed =
                layer(target_top) < layer(&top) || SIBLINGS.contains(&(from.as_str(), target.as_str()));
            if !allowed {
                wrong.push(format!("{from} uses {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// The one store module allowed to read another's table: a user belongs to a tenant, and
/// every signed-in request reads both, in one query (two cost the pages about 15% in
/// `make bench`).
const STORE_JOINS: &[(&str, &str)] = &[("models::user", "models::tenant")];

#[test]
fn no_table_module_of_the_store_imports_another() {
    let crossing: Vec<String> = graph()
        .into_iter()
        .filter(|(from, _)| from.starts_with("models::"))
        .flat_map(|(from, targets)| {
            targets
                .into_iter()
                .filter(|t| t.starts_with("models::"))
                .filter(|t| !STORE_JOINS.contains(&(from.as_str(), t.as_str())))
                .map(|t| format!("{from} uses {t}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        crossing.is_empty(),
        "a query over two tables belongs to a service:\n{}",
        crossing.join("\n")
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    let mut cycles = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first from each module, reporting a path that comes back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(start.clone());
                    cycles.insert(cycle.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn no_source_file_is_over_500_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("schema.rs"))
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, lines)| *lines > 500)
        .map(|(f, lines)| format!("{} has {lines} lines", f.display()))
        .collect();
    assert!(
        long.is_empty(),
        "split these by what they do:\n{}",
        long.join("\n")
    );
}
