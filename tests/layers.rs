//! The layers of ARCHITECTURE.md hold: no module imports from its own layer or above, and the
//! pure ones reach no `kube`, `tokio` or AWS SDK. The list is read from ARCHITECTURE.md, so
//! the document and the code cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What ARCHITECTURE.md's numbered list says: module → (layer, pure), `controller::plan`
/// included; and for such a pure part, the parts of its own module it may reach.
struct Layers {
    of: BTreeMap<String, (usize, bool)>,
    part_reaches: BTreeMap<String, Vec<String>>,
}

fn layers() -> Layers {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let mut layers = BTreeMap::new();
    let mut part_reaches = BTreeMap::new();
    for line in text.lines() {
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        let Ok(layer) = number.parse::<usize>() else {
            continue;
        };
        for part in rest.split(", ") {
            let mut pieces = part.split('`');
            let (Some(_), Some(name), Some(after)) = (pieces.next(), pieces.next(), pieces.next())
            else {
                continue;
            };
            layers.insert(name.to_string(), (layer, after.starts_with('*')));
            // "`controller` (its `plan`* is pure: … it reaches only `crd` and `spec`)"
            if let Some((head, only)) = part.split_once("reaches only") {
                let part_name = head.split('`').nth(3).unwrap();
                let allowed = only.split('`').skip(1).step_by(2).map(str::to_string);
                let key = format!("{name}::{part_name}");
                part_reaches.insert(key.clone(), allowed.collect());
                layers.insert(key, (layer, true));
            }
        }
    }
    Layers {
        of: layers,
        part_reaches,
    }
}

fn sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The module of `file` (`src/controller/plan/sync.rs` → `controller::plan` when listed, else
/// `controller`), or `None` for `lib.rs` and `main.rs`.
fn module_of(file: &Path, layers: &BTreeMap<String, (usize, bool)>) -> Option<String> {
    let relative = file.strip_prefix(repo().join("src")).unwrap();
    let parts: Vec<String> = (relative.with_extension("").components())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let top = parts.first()?.clone();
    if top == "lib" || top == "main" {
        return None;
    }
    let sub = parts.get(1).map(|s| format!("{top}::{s}"));
    Some(sub.filter(|s| layers.contains_key(s)).unwrap_or(top))
}

/// `crate::<module>` paths and external crate names in the code of `text` (comments left out).
fn reached(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let before = code[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[i + "crate::".len()..];
            let name: String = (rest.chars())
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let sub: String = (rest[name.len()..].strip_prefix("::").unwrap_or(""))
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((n + 1, format!("crate::{name}::{sub}")));
        }
        for krate in [
            "kube::",
            "tokio::",
            "aws_sdk_",
            "aws_config::",
            "aws_smithy_",
        ] {
            for (i, _) in code.match_indices(krate) {
                let before = code[..i].chars().last();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    found.push((n + 1, krate.trim_end_matches(':').to_string()));
                }
            }
        }
    }
    found
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let layers = layers();
    for module in [
        "time",
        "catalog",
        "policy",
        "role",
        "sources",
        "controller::plan",
        "cli",
    ] {
        assert!(
            layers.of.contains_key(module),
            "{module} in {:?}",
            layers.of
        );
    }
    assert_eq!(layers.part_reaches["controller::plan"], ["crd", "spec"]);
    let mut files = Vec::new();
    sources(&repo().join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(file, &layers.of) else {
            continue;
        };
        let Some(&(layer, pure)) = layers.of.get(&module) else {
            wrong.push(format!(
                "{}: module {module} is in no layer",
                file.display()
            ));
            continue;
        };
        let own_top = module.split("::").next().unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        for (line, path) in reached(&text) {
            let place = format!("{}:{line}", file.display());
            let Some(rest) = path.strip_prefix("crate::") else {
                if pure {
                    wrong.push(format!("{place}: {module} is pure but reaches {path}"));
                }
                continue;
            };
            let (top, sub) = rest.split_once("::").unwrap_or((rest, ""));
            if top == own_top {
                // Inside its own module: a listed pure part reaches only what the list says.
                let allowed = layers.part_reaches.get(&module);
                if allowed.is_some_and(|a| !a.iter().any(|p| p == sub) && sub != "plan") {
                    wrong.push(format!("{place}: {module} reaches {path}"));
                }
                continue;
            }
            match layers.of.get(top) {
                Some(&(other, _)) if other < layer => {}
                other => wrong.push(format!(
                    "{place}: {module} (layer {layer}) imports {path} (layer {:?})",
                    other.map(|l| l.0)
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(files.len() > 100, "{} files read", files.len());
}

/// The checker itself: an import upward, a same-layer one and an SDK in a pure module are
/// each caught; comments are not code.
#[test]
fn the_layer_check_sees_what_it_is_for() {
    let found = reached(
        "use crate::aws::iam;\n// crate::controller::plan in a comment\nlet x = tokio::spawn(a); \
         // kube::Api\nuse crate::controller::plan::Observed;",
    );
    assert_eq!(
        found,
        [
            (1, "crate::aws::iam".to_string()),
            (3, "tokio".to_string()),
            (4, "crate::controller::plan".to_string())
        ]
    );
}
