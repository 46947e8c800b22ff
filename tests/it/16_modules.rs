//! The module graph has no cycles: neither between the top-level modules
//! of `src/` nor between the files (child modules) of one module. A cycle
//! means two modules can only be understood together; the layering in
//! docs/ARCHITECTURE.md depends on there being none.
//!
//! The check reads every file under `src/` (except `main.rs`, which is a
//! separate crate), drops comments, string literals and items marked
//! `#[cfg(test)]` (tests may reach anywhere), and follows the `crate::...`
//! and `super::...` paths it finds, in `use` trees and in code alike.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::phase;

/// One source file: its module path (`["node", "kv"]`) and its text.
struct SourceFile {
    module: Vec<String>,
    text: String,
}

#[test]
fn top_level_modules_and_the_files_of_each_module_form_no_cycle() {
    phase("read every file under src/");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_sources(&root);
    assert!(
        files.len() > 50,
        "found only {} files under {}",
        files.len(),
        root.display()
    );
    phase("look for cycles between top-level modules and within each module");
    let cycles = find_cycles(&files);
    assert!(
        cycles.is_empty(),
        "the module graph has cycles:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn every_module_imports_only_its_own_layer_and_the_layers_before_it() {
    phase("read the layer table of docs/ARCHITECTURE.md and the modules of lib.rs");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(manifest.join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md is readable");
    let layers = layer_table(&doc);
    let lib = std::fs::read_to_string(manifest.join("src/lib.rs")).expect("src/lib.rs is readable");
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let placed: BTreeSet<String> = layers.keys().cloned().collect();
    assert_eq!(
        declared, placed,
        "the layer table must list every module of lib.rs exactly once"
    );

    phase("every import between top-level modules goes to the same or an earlier layer");
    let files = read_sources(&manifest.join("src"));
    let upward: Vec<String> = module_edges(&files)
        .into_iter()
        .filter(|((from, to), _)| !from.contains("::") && layers[from] < layers[to])
        .map(|((from, to), source)| format!("    {from} -> {to} ({source})"))
        .collect();
    assert!(
        upward.is_empty(),
        "imports from a lower layer into a higher one:\n{}",
        upward.join("\n")
    );
}

/// Each module named in the "| layer | modules |" table, with its row
/// number: 0 for the lowest layer. A module appears once.
fn layer_table(doc: &str) -> BTreeMap<String, usize> {
    let rows: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| layer | modules |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(!rows.is_empty(), "no layer table in docs/ARCHITECTURE.md");
    let mut layers = BTreeMap::new();
    for (row, line) in rows.iter().enumerate() {
        let modules = line.rsplit('|').nth(1).expect("a table row has two cells");
        for name in modules.split('`').skip(1).step_by(2) {
            let previous = layers.insert(name.to_string(), row);
            assert!(previous.is_none(), "{name} is in the layer table twice");
        }
    }
    layers
}

#[test]
fn the_cycle_check_finds_a_cycle_and_ignores_tests_comments_and_strings() {
    phase("a cycle between two top-level modules is named with its edges");
    let cyclic = [
        ("a.rs", "use crate::b::Thing;\npub struct Other;"),
        ("b.rs", "pub fn f() -> crate::a::Other { todo!() }"),
        ("c.rs", "use crate::{a, b::Thing};"),
    ];
    let cycles = find_cycles(&sources(&cyclic));
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].contains("a -> b (a.rs)") && cycles[0].contains("b -> a (b.rs)"),
        "{cycles:?}"
    );

    phase("a cycle between the files of one module, through super::");
    let inner = [
        ("node/mod.rs", "pub mod geo;\npub mod kv;"),
        ("node/kv.rs", "use super::geo::Geo;"),
        ("node/geo.rs", "use crate::node::{kv::{self, Kv}};"),
    ];
    let cycles = find_cycles(&sources(&inner));
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].contains("node::geo -> node::kv"), "{cycles:?}");

    phase("test items, comments, strings and $crate make no edge");
    let acyclic = [
        ("a.rs", "use crate::b::Thing;"),
        (
            "b.rs",
            "//! see crate::a::X\n/* crate::a::Y */\nconst S: &str = \"crate::a::Z\";\n\
             macro_rules! m { () => { $crate::a::W } }\n\
             #[cfg(test)]\nmod tests { use crate::a::Other; fn f() { let _ = '{'; } }\n\
             #[cfg(test)]\nfn helper() -> crate::a::Other { todo!() }\n\
             #[cfg(test)]\nmod testing;\npub struct Thing;",
        ),
        ("b/testing.rs", "use crate::a::Other;"),
    ];
    let cycles = find_cycles(&sources(&acyclic));
    assert!(cycles.is_empty(), "{cycles:?}");
}

fn sources(files: &[(&str, &str)]) -> Vec<SourceFile> {
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
    to_sources(files)
}

fn read_sources(root: &Path) -> Vec<SourceFile> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let relative = path.strip_prefix(root).expect("under src/").to_path_buf();
                found.push((relative, text));
            }
        }
    }
    to_sources(found)
}

/// Module paths from file paths, without `main.rs` (the binary) and
/// without files declared as test-only modules.
fn to_sources(files: Vec<(PathBuf, String)>) -> Vec<SourceFile> {
    let mut parsed = Vec::new();
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    for (path, text) in files {
        let mut module: Vec<String> = path
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if module == ["main"] {
            continue;
        }
        if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
            module.pop();
        }
        let (text, test_modules) = strip_tests(&clean(&text));
        for name in test_modules {
            let mut child = module.clone();
            child.push(name);
            test_only.insert(child);
        }
        parsed.push(SourceFile { module, text });
    }
    parsed.retain(|f| !test_only.iter().any(|t| f.module.starts_with(t)));
    parsed
}

/// The text with comments and string and char literals blanked out, so
/// only code is left to search.
fn clean(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars[..i].last().is_some_and(|p| is_ident(*p))
        {
            // A raw string: r"..." or r#"..."#, closed by a quote and as
            // many hashes as opened it.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal ('x' or an escape); a lifetime has no
            // closing quote.
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

const CFG_TEST: &str = "#[cfg(test)]";

/// The text without its `#[cfg(test)]` items, and the names of the child
/// modules declared test-only (`#[cfg(test)] mod name;`).
fn strip_tests(text: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut test_modules = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(CFG_TEST) {
        out.push_str(&rest[..at]);
        let item = &rest[at + CFG_TEST.len()..];
        let end = item.find(['{', ';']).unwrap_or(item.len());
        if item[end..].starts_with(';') {
            let header: Vec<&str> = item[..end].split_whitespace().collect();
            if let Some(name) = header
                .iter()
                .position(|w| *w == "mod")
                .and_then(|i| header.get(i + 1))
            {
                test_modules.push(name.to_string());
            }
            rest = &item[(end + 1).min(item.len())..];
        } else {
            rest = &item[block_end(item, end)..];
        }
    }
    out.push_str(rest);
    (out, test_modules)
}

/// The index just past the block whose `{` is at `open`.
fn block_end(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// Every module path `file` names, resolved to an absolute path from the
/// crate root.
fn paths_named(file: &SourceFile) -> Vec<Vec<String>> {
    let text = &file.text;
    let mut found = Vec::new();
    for keyword in ["crate::", "super::"] {
        for (at, _) in text.match_indices(keyword) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) || c == '$' || c == ':') {
                continue;
            }
            let mut pos = at + keyword.len();
            for path in parse_tree(text, &mut pos) {
                let absolute = if keyword == "crate::" {
                    Some(path)
                } else {
                    resolve_super(&file.module, path)
                };
                found.extend(absolute);
            }
        }
    }
    found
}

/// `super::rest` from inside `module`, where `rest` may begin with more
/// `super`s.
fn resolve_super(module: &[String], path: Vec<String>) -> Option<Vec<String>> {
    let mut base = module.to_vec();
    base.pop()?;
    let mut path = path.into_iter().peekable();
    while path.peek().is_some_and(|s| s == "super") {
        path.next();
        base.pop()?;
    }
    base.extend(path);
    Some(base)
}

/// Parses a path or `use` tree at `pos`: `a::b`, `a::{b, c::{d, self}}`.
fn parse_tree(text: &str, pos: &mut usize) -> Vec<Vec<String>> {
    skip_space(text, pos);
    if text[*pos..].starts_with('{') {
        *pos += 1;
        let mut paths = Vec::new();
        loop {
            skip_space(text, pos);
            match text[*pos..].chars().next() {
                None => return paths,
                Some('}') => {
                    *pos += 1;
                    return paths;
                }
                Some(',') => *pos += 1,
                Some(_) => {
                    let before = *pos;
                    paths.extend(parse_tree(text, pos));
                    if *pos == before {
                        // Not a path (`as`, a glob): step over it.
                        *pos += text[*pos..].chars().next().map_or(1, char::len_utf8);
                    }
                }
            }
        }
    }
    let ident: String = text[*pos..].chars().take_while(|c| is_ident(*c)).collect();
    if ident.is_empty() {
        return vec![Vec::new()];
    }
    *pos += ident.len();
    if text[*pos..].starts_with("::") {
        *pos += 2;
        return parse_tree(text, pos)
            .into_iter()
            .map(|mut rest| {
                rest.insert(0, ident.clone());
                rest
            })
            .collect();
    }
    if ident == "self" {
        return vec![Vec::new()];
    }
    vec![vec![ident]]
}

fn skip_space(text: &str, pos: &mut usize) {
    while text[*pos..].starts_with(char::is_whitespace) {
        *pos += 1;
    }
}

/// Each cycle found, as one line per edge naming a file that makes it.
fn find_cycles(files: &[SourceFile]) -> Vec<String> {
    let edges = module_edges(files);
    strongly_connected(&edges)
        .into_iter()
        .map(|component| {
            let mut lines = vec![format!("cycle among {}:", component.join(", "))];
            for ((from, to), source) in &edges {
                if component.contains(from) && component.contains(to) {
                    lines.push(format!("    {from} -> {to} ({source})"));
                }
            }
            lines.join("\n")
        })
        .collect()
}

/// The import edges, each with a file that makes it: `(from, to)` between
/// top-level modules (`node`, `raft`) and between the files of one module
/// (`node::kv`, `node::regions`).
fn module_edges(files: &[SourceFile]) -> BTreeMap<(String, String), String> {
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .flat_map(|f| (1..=f.module.len()).map(|n| f.module[..n].to_vec()))
        .collect();
    // (from, to) -> a file that makes the edge.
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for file in files {
        let Some(top) = file.module.first() else {
            continue;
        };
        let source = format!("{}.rs", file.module.join("/"));
        for path in paths_named(file) {
            let Some(target) = path.first() else {
                continue;
            };
            if target != top && modules.contains(&vec![target.clone()]) {
                edges
                    .entry((top.clone(), target.clone()))
                    .or_insert_with(|| source.clone());
            }
            // Between the files of one module: `top::a` naming `top::b`.
            if file.module.len() >= 2
                && path.len() >= 2
                && target == top
                && path[1] != file.module[1]
                && modules.contains(&path[..2])
            {
                edges
                    .entry((file.module[..2].join("::"), path[..2].join("::")))
                    .or_insert_with(|| source.clone());
            }
        }
    }
    edges
}

/// The groups of more than one module that all reach each other.
fn strongly_connected(edges: &BTreeMap<(String, String), String>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for (a, b) in edges.keys() {
                if *a == n && seen.insert(b.clone()) {
                    stack.push(b.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut components: Vec<Vec<String>> = Vec::new();
    for n in &nodes {
        if components.iter().any(|c| c.contains(n)) {
            continue;
        }
        let component: Vec<String> = nodes
            .iter()
            .filter(|m| reaches[*n].contains(**m) && reaches[**m].contains(*n))
            .map(|m| m.to_string())
            .collect();
        if component.len() > 1 {
            components.push(component);
        }
    }
    components
}
