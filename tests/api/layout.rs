//! The code's shape, checked: the crate root only lists modules, nothing reaches into the crate
//! root for an item (state lives in `state`), no two top-level modules depend on each other,
//! directly or round a longer loop, and no source file grows past 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 600;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The `crate::name` paths a piece of code uses, without macros (`crate::versioned_update!`).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with('$') || code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() && !rest[name.len()..].starts_with('!') {
            names.insert(name);
        }
    }
    names
}

#[test]
fn the_crate_root_is_a_module_list_and_modules_form_no_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let lib = code(&lib);
    let mut modules = BTreeSet::new();
    for line in lib.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let name = line.strip_prefix("pub mod ").and_then(|l| l.strip_suffix(';'));
        modules.insert(name.unwrap_or_else(|| panic!("lib.rs holds only `pub mod …;` lines, not {line:?}")));
    }

    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!("{rel} has {lines} lines (at most {MAX_LINES})"));
        }
        let owner = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        if owner == "lib" || owner == "main" {
            continue;
        }
        for name in crate_paths(&code(&text)) {
            if !modules.contains(name.as_str()) {
                problems.push(format!("{rel} uses crate::{name}, an item of the crate root"));
            } else if name != owner {
                uses.entry(owner.clone()).or_default().insert(name);
            }
        }
    }

    // A loop between top-level modules: a depth-first search from each module.
    fn reach(
        from: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        loops: &mut BTreeSet<String>,
    ) {
        for next in uses.get(from).into_iter().flatten() {
            if let Some(start) = path.iter().position(|m| m == next) {
                let mut cycle: Vec<String> = path[start..].to_vec();
                let first =
                    cycle.iter().enumerate().min_by_key(|(_, m)| m.to_owned()).map(|(i, _)| i).unwrap();
                cycle.rotate_left(first);
                loops.insert(cycle.join(" -> "));
            } else {
                path.push(next.clone());
                reach(next, uses, path, loops);
                path.pop();
            }
        }
    }
    let mut loops = BTreeSet::new();
    for module in uses.keys() {
        reach(module, &uses, &mut vec![module.clone()], &mut loops);
    }
    problems.extend(loops.into_iter().map(|l| format!("modules depend on each other: {l}")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        uses.contains_key("banks") && uses["banks"].contains("http"),
        "the scan found the imports: {uses:?}"
    );
}

#[test]
fn the_checks_see_paths_and_skip_macros_and_comments() {
    let text = "use crate::http::list;\n/// see crate::app\nlet x = crate::versioned_update!(a);\n$crate::db::now();";
    assert_eq!(crate_paths(&code(text)), BTreeSet::from(["http".to_owned()]));
}
