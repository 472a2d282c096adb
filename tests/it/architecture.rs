//! The invariants of ARCHITECTURE.md, checked on the source text (in the spirit of
//! rust-analyzer's tidy tests): each test reads `src/` and fails naming the file and line.
//!
//! - Layers: the pure and edge modules import nothing from the modules above them.
//! - No import circles between files (`use crate::…`, `use super::…` and inline paths).
//! - `bollard` only under `src/docker`; runtime-API command strings and reply parsing only under
//!   `src/haproxy`.
//! - No file in `src/` longer than [`MAX_LINES`], except the few named in [`LONG_FILES`].
//!
//! The checks look at production code: a file's inline `#[cfg(test)] mod tests` and test-only
//! files (`tests.rs`, `tests/`) may use any module, and their fixtures may hold reply texts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;

/// Files allowed to be longer than [`MAX_LINES`] for now, with their current length as a cap:
/// split them by concept, then drop the entry.
const LONG_FILES: &[(&str, usize)] = &[("src/controller/server_task.rs", 409)];

/// `(modules, modules they must not import)`: lower layers never reach up.
const LAYERS: &[(&[&str], &[&str])] = &[
    (
        &["drain", "mapping", "config"],
        &["controller", "api", "cli", "roll", "daemon"],
    ),
    (
        &["haproxy", "docker"],
        &["controller", "api", "cli", "roll", "drain", "daemon"],
    ),
    (
        &["fleet_budget"],
        &[
            "controller",
            "api",
            "cli",
            "roll",
            "daemon",
            "docker",
            "gate",
        ],
    ),
    (
        &["duration", "shutdown"],
        &[
            "controller",
            "api",
            "cli",
            "roll",
            "drain",
            "daemon",
            "haproxy",
            "docker",
            "config",
            "mapping",
            "metrics",
            "ownership",
        ],
    ),
];

/// Runtime API commands; only `src/haproxy` writes them. A string literal is a command when it
/// starts with one of these and ends there or goes on with a `{}` argument (`"show stat {b} 4 -1"`);
/// a log message that names a command (`"add server failed"`) is not.
const COMMANDS: &[&str] = &[
    "show stat",
    "show servers state",
    "show info",
    "show backend",
    "set server",
    "set weight",
    "get weight",
    "add server",
    "del server",
    "enable health",
    "disable health",
    "enable server",
    "disable server",
    "shutdown sessions",
    "set maxconn",
];

/// Reply formats and texts of the runtime API; only `src/haproxy` parses them.
const REPLY_MARKERS: &[&str] = &[
    "# pxname",
    "# be_id",
    "srv_check_state",
    "srv_admin_state",
    "\"L4OK\"",
    "\"L7OK\"",
    "\"Uptime_sec",
    "\"No such server.",
    "\"No such backend.",
    "\"New server registered.",
    "\"Server deleted.",
    "haproxy::parse::",
    "haproxy::stat::",
    "Command::Raw(",
];

struct SourceFile {
    /// Relative to the crate root, with `/` separators: `src/cli/status.rs`.
    path: String,
    /// `["cli", "status"]`; `[]` for `src/lib.rs`.
    module: Vec<String>,
    /// `mod.rs` / `lib.rs`: the file that declares and re-exports a module's children.
    is_facade: bool,
    /// Production code lines (1-based number, text without comments); test code left out.
    code: Vec<(usize, String)>,
    /// Every line, for the length check.
    line_count: usize,
}

/// One `use` or inline path: where it is and what it names.
struct Import {
    line: usize,
    path: Vec<String>,
    is_pub_use: bool,
}

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn source_files() -> Vec<SourceFile> {
    let root = crate_root();
    let mut paths = Vec::new();
    collect_rs(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(&root)
                .expect("under the crate root")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"));
            parse_file(relative, &text)
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn parse_file(path: String, text: &str) -> SourceFile {
    let inner = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut module: Vec<String> = inner.split('/').map(String::from).collect();
    let is_facade = matches!(
        module.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    );
    if is_facade {
        module.pop();
    }
    let test_only = module.iter().any(|m| m == "tests" || m.ends_with("_tests"));
    let mut code = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        if test_only {
            break;
        }
        if line.trim() == "#[cfg(test)]" {
            // A test module at the top level runs to the end of the file (the convention
            // here); any other test-only item is one line (`mod tests;`, a `use`).
            if lines
                .peek()
                .is_some_and(|(_, next)| next.starts_with("mod ") && next.ends_with('{'))
            {
                break;
            }
            lines.next();
            continue;
        }
        let stripped = strip_comment(line);
        if !stripped.trim().is_empty() {
            code.push((index + 1, stripped));
        }
    }
    SourceFile {
        path,
        module,
        is_facade,
        code,
        line_count: text.lines().count(),
    }
}

/// The line without a `//` comment outside a string literal.
fn strip_comment(line: &str) -> String {
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = line.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '/' if !in_string && chars.get(i + 1) == Some(&'/') => {
                return chars[..i].iter().collect();
            }
            _ => {}
        }
    }
    line.to_string()
}

/// `use` statements (expanded: `a::{b, c::d}` gives `a::b`, `a::c::d`) and inline
/// `crate::…`/`super::…` paths.
fn imports(file: &SourceFile) -> Vec<Import> {
    let mut found = Vec::new();
    let mut statement: Option<(usize, bool, String)> = None;
    for (number, line) in &file.code {
        let trimmed = line.trim();
        if statement.is_none() {
            let after_vis = trimmed
                .strip_prefix("pub(crate) ")
                .or_else(|| trimmed.strip_prefix("pub(super) "))
                .or_else(|| trimmed.strip_prefix("pub "));
            let is_pub = after_vis.is_some();
            if let Some(rest) = after_vis.unwrap_or(trimmed).strip_prefix("use ") {
                statement = Some((*number, is_pub, String::new()));
                statement.as_mut().unwrap().2.push_str(rest);
            } else {
                for path in inline_paths(line) {
                    found.push(Import {
                        line: *number,
                        path,
                        is_pub_use: false,
                    });
                }
                continue;
            }
        } else if let Some((_, _, text)) = statement.as_mut() {
            text.push_str(trimmed);
        }
        if let Some((start, is_pub, text)) = statement.take() {
            match text.find(';') {
                Some(end) => {
                    for path in expand_tree(&text[..end]) {
                        found.push(Import {
                            line: start,
                            path,
                            is_pub_use: is_pub,
                        });
                    }
                }
                None => statement = Some((start, is_pub, text)),
            }
        }
    }
    found
}

fn expand_tree(tree: &str) -> Vec<Vec<String>> {
    // `X as Y` imports `X`: keep the name, drop the alias, then the whitespace.
    let tree: String = tree
        .replace(" as ", "@")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut out = Vec::new();
    expand_into(&tree, &mut Vec::new(), &mut out);
    out
}

fn expand_into(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Some(open) = tree.find('{') {
        let head = &tree[..open];
        let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let depth = prefix.len();
        prefix.extend(head.split("::").filter(|s| !s.is_empty()).map(String::from));
        for part in split_top_level(body) {
            expand_into(part, prefix, out);
        }
        prefix.truncate(depth);
    } else {
        let name = tree.split('@').next().unwrap_or(tree);
        let mut path = prefix.clone();
        for segment in name.split("::").filter(|s| !s.is_empty()) {
            if segment != "self" || path.is_empty() {
                path.push(segment.to_string());
            }
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
}

fn split_top_level(body: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `crate::a::b` / `super::a` written inside code, outside string literals.
fn inline_paths(line: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut in_string = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' && (i == 0 || bytes[i - 1] != b'\\') {
            in_string = !in_string;
        }
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !in_string
            && boundary
            && (line[i..].starts_with("crate::") || line[i..].starts_with("super::"))
        {
            let end = line[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(line.len(), |e| i + e);
            let path: Vec<String> = line[i..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            paths.push(path);
            i = end;
            continue;
        }
        i += 1;
    }
    paths
}

struct Tree<'a> {
    files: &'a [SourceFile],
    by_module: BTreeMap<Vec<String>, usize>,
}

impl<'a> Tree<'a> {
    fn new(files: &'a [SourceFile]) -> Self {
        let by_module = files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.path != "src/main.rs")
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        Self { files, by_module }
    }

    /// The file a path in `from` names, following re-exports of facades; `None` outside the
    /// crate (`std::…`, other crates).
    fn resolve(&self, from: &SourceFile, path: &[String]) -> Option<usize> {
        let (mut base, rest) = absolute(from, path)?;
        let mut rest = rest.iter();
        let mut item = None;
        for segment in rest.by_ref() {
            let mut next = base.clone();
            next.push(segment.clone());
            if self.by_module.contains_key(&next) {
                base = next;
            } else {
                item = Some(segment.clone());
                break;
            }
        }
        let file = *self.by_module.get(&base)?;
        match item {
            Some(item) if self.files[file].is_facade && item != "*" => {
                Some(self.reexport(file, &item, 0).unwrap_or(file))
            }
            _ => Some(file),
        }
    }

    /// Where a facade's `pub use child::Item` (or `pub use child::*`) really points.
    fn reexport(&self, facade: usize, item: &str, depth: usize) -> Option<usize> {
        let file = &self.files[facade];
        if depth > 4 || defines(file, item) {
            return None;
        }
        let uses = imports(file);
        let named = uses
            .iter()
            .filter(|u| u.is_pub_use)
            .find(|u| u.path.last().map(String::as_str) == Some(item));
        if let Some(import) = named {
            return self.resolve(file, &import.path);
        }
        uses.iter()
            .filter(|u| u.is_pub_use && u.path.last().map(String::as_str) == Some("*"))
            .filter_map(|u| self.resolve(file, &u.path[..u.path.len() - 1]))
            .find(|&child| defines(&self.files[child], item))
    }
}

/// The path as a module path from the crate root, and the segments after `crate`/`super`/`self`.
fn absolute<'p>(from: &SourceFile, path: &'p [String]) -> Option<(Vec<String>, &'p [String])> {
    let mut base = from.module.clone();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some("self") => rest = &rest[1..],
        // A child module named without `self::` (`use client::Client;` in a facade).
        Some(first) => {
            let mut child = base.clone();
            child.push(first.to_string());
            let root = crate_root().join("src").join(child.join("/"));
            if !(root.with_extension("rs").exists() || root.join("mod.rs").exists()) {
                return None;
            }
        }
        None => return None,
    }
    Some((base, rest))
}

fn defines(file: &SourceFile, item: &str) -> bool {
    let kinds = [
        "struct", "enum", "fn", "async fn", "trait", "type", "const", "static", "mod",
    ];
    file.code.iter().any(|(_, line)| {
        let line = line.trim_start();
        let line = line
            .strip_prefix("pub(crate) ")
            .or_else(|| line.strip_prefix("pub "))
            .unwrap_or(line);
        kinds.iter().any(|kind| {
            line.strip_prefix(kind)
                .and_then(|l| l.strip_prefix(' '))
                .and_then(|l| l.strip_prefix(item))
                .is_some_and(|l| !l.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
    })
}

fn fail(rule: &str, why: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{rule}\n{why}\n\n{}\n",
        problems.join("\n")
    );
}

#[test]
fn lower_layers_import_nothing_from_higher_ones() {
    let files = source_files();
    let tree = Tree::new(&files);
    let mut problems = Vec::new();
    for file in &files {
        let Some(top) = file.module.first() else {
            continue;
        };
        for (lower, higher) in LAYERS {
            if !lower.contains(&top.as_str()) {
                continue;
            }
            for import in imports(file) {
                let Some(target) = tree.resolve(file, &import.path) else {
                    continue;
                };
                let target_top = files[target].module.first().cloned().unwrap_or_default();
                if higher.contains(&target_top.as_str()) {
                    problems.push(format!(
                        "{}:{}: `{}` (module {top}) imports `{}` from {} (module {target_top})",
                        file.path,
                        import.line,
                        import.path.join("::"),
                        import.path.last().cloned().unwrap_or_default(),
                        files[target].path,
                    ));
                }
            }
        }
    }
    fail(
        "A lower layer imports from a higher one.",
        "Move the imported type or function down into the lower module (or into a small shared \
         module such as src/duration.rs) and import it from there; see LAYERS in \
         tests/it/architecture.rs.",
        &problems,
    );
}

#[test]
fn no_two_files_import_each_other() {
    let files = source_files();
    let tree = Tree::new(&files);
    // file → (file it imports, line of the first such import)
    let mut edges: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); files.len()];
    for (index, file) in files.iter().enumerate() {
        if file.path == "src/main.rs" {
            continue;
        }
        for import in imports(file) {
            let Some(target) = tree.resolve(file, &import.path) else {
                continue;
            };
            let reexport_of_own_child = file.is_facade
                && import.is_pub_use
                && files[target].module.starts_with(&file.module);
            if target != index && !reexport_of_own_child {
                edges[index].entry(target).or_insert(import.line);
            }
        }
    }
    let mut problems = Vec::new();
    for component in strongly_connected(&edges) {
        let members: BTreeSet<usize> = component.iter().copied().collect();
        let mut lines = vec![format!(
            "circle between {}:",
            component
                .iter()
                .map(|&i| files[i].path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )];
        for &from in &component {
            for (&to, &line) in &edges[from] {
                if members.contains(&to) {
                    lines.push(format!(
                        "  {}:{line} imports from {}",
                        files[from].path, files[to].path
                    ));
                }
            }
        }
        problems.push(lines.join("\n"));
    }
    fail(
        "Files import each other.",
        "Break each circle: move what both sides need into one of them (or a third file both \
         import), so that imports between files point one way.",
        &problems,
    );
}

/// Tarjan's algorithm; only components with more than one file.
fn strongly_connected(edges: &[BTreeMap<usize, usize>]) -> Vec<Vec<usize>> {
    struct State<'e> {
        edges: &'e [BTreeMap<usize, usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        let targets: Vec<usize> = s.edges[v].keys().copied().collect();
        for w in targets {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(index) if s.on_stack[w] => s.low[v] = s.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort_unstable();
                s.out.push(component);
            }
        }
    }
    let n = edges.len();
    let mut state = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if state.index[v].is_none() {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn only_src_docker_uses_bollard() {
    let mut problems = Vec::new();
    for file in source_files() {
        if file.path.starts_with("src/docker/") {
            continue;
        }
        for (line, text) in &file.code {
            if contains_word(text, "bollard") {
                problems.push(format!("{}:{line}: {}", file.path, text.trim()));
            }
        }
    }
    fail(
        "bollard is used outside src/docker.",
        "Add a method to DockerClient (src/docker) that returns the crate's own types and call \
         that instead.",
        &problems,
    );
}

#[test]
fn only_src_haproxy_speaks_the_runtime_api() {
    let mut problems = Vec::new();
    for file in source_files() {
        if file.path.starts_with("src/haproxy/") {
            continue;
        }
        for (line, text) in &file.code {
            let command = COMMANDS.iter().find(|c| writes_command(text, c));
            let reply = REPLY_MARKERS.iter().find(|m| text.contains(*m));
            if let Some(found) = command.or(reply) {
                problems.push(format!(
                    "{}:{line}: `{found}` in `{}`",
                    file.path,
                    text.trim()
                ));
            }
        }
    }
    fail(
        "Runtime API command strings or reply parsing outside src/haproxy.",
        "Add a typed Command variant (src/haproxy/command.rs) with its Reply, or a parser or \
         predicate on the typed values (src/haproxy/parse.rs, check.rs), and call that.",
        &problems,
    );
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut problems = Vec::new();
    for file in source_files() {
        let cap = LONG_FILES
            .iter()
            .find(|(path, _)| *path == file.path)
            .map_or(MAX_LINES, |(_, cap)| *cap);
        if file.line_count > cap {
            problems.push(format!(
                "{}: {} lines (limit {cap})",
                file.path, file.line_count
            ));
        }
    }
    fail(
        "A source file is too long.",
        "One concept per file: split the file by concept (a type with its impls, a parser, a \
         table of tests) rather than by line count.",
        &problems,
    );
}

/// `"<command>"` or `"<command> {…`, e.g. in a `format!`.
fn writes_command(text: &str, command: &str) -> bool {
    let literal = format!("\"{command}");
    text.match_indices(&literal).any(|(i, _)| {
        let rest = &text[i + literal.len()..];
        rest.starts_with('"') || rest.starts_with(" {")
    })
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_ident(before) && !is_ident(after)
    })
}

/// The checker itself: a `use` tree expands to every path it names.
#[test]
fn use_trees_expand_to_every_path() {
    let paths = expand_tree("crate::haproxy::{self, types::{ServerId, StatRow}, Client as C}");
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "crate::haproxy",
            "crate::haproxy::types::ServerId",
            "crate::haproxy::types::StatRow",
            "crate::haproxy::Client"
        ]
    );
    assert!(writes_command(
        r#"format!("show stat {backend} 4 -1")"#,
        "show stat"
    ));
    assert!(writes_command(
        r#"Command::Raw("show info".into())"#,
        "show info"
    ));
    assert!(!writes_command(
        r#"warn!("add server failed")"#,
        "add server"
    ));
    assert_eq!(
        inline_paths(r#"let x = crate::mapping::resolve(a, "super::not"); super::y::z()"#),
        [vec!["crate", "mapping", "resolve"], vec!["super", "y", "z"]]
    );
}
