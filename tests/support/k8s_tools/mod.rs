//! helm and kubectl for the chart tests: `$IAM_TAILOR_HELM` / `$IAM_TAILOR_KUBECTL` (exported by
//! `scripts/test`), else the ones `scripts/k8s-tools` installs into the cache (and reuses).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    repo().join("charts/iam-tailor")
}

/// The directory `scripts/k8s-tools` prints (installing the tools the first time).
fn tools_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let output = Command::new(repo().join("scripts/k8s-tools"))
            .stderr(Stdio::inherit())
            .output()
            .expect("runs scripts/k8s-tools");
        assert!(output.status.success(), "scripts/k8s-tools failed");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

fn tool(variable: &str, name: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => tools_dir().join(name),
    }
}

pub fn helm_path() -> PathBuf {
    tool("IAM_TAILOR_HELM", "helm")
}

pub fn kubectl_path() -> PathBuf {
    tool("IAM_TAILOR_KUBECTL", "kubectl")
}

/// A PATH with helm and kubectl first, for shell commands (the README's).
pub fn path_with_tools() -> String {
    let mut dirs: Vec<PathBuf> = vec![
        helm_path().parent().unwrap().to_path_buf(),
        kubectl_path().parent().unwrap().to_path_buf(),
    ];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

/// Keeps helm's cache, configuration and data out of `$HOME`.
pub fn isolate_helm(command: &mut Command, home: &Path) {
    command
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
}

/// A helm command run in the repository, its state under `home`.
pub fn helm(home: &Path) -> Command {
    let mut command = Command::new(helm_path());
    command.current_dir(repo());
    isolate_helm(&mut command, home);
    command
}

/// Runs `command`, asserts it succeeded, returns its standard output.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `command` and returns its whole output, whatever the exit status.
pub fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// The documents of a multi-document YAML stream, as JSON values (empty documents skipped).
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|document| serde_json::Value::deserialize(document).unwrap())
        .filter(|value| !value.is_null())
        .collect()
}

/// `helm template RELEASE charts/iam-tailor --namespace NAMESPACE ARGS…`, as documents.
pub fn template(
    home: &Path,
    release: &str,
    namespace: &str,
    args: &[&str],
) -> Vec<serde_json::Value> {
    let text = run(helm(home)
        .args([
            "template",
            release,
            "charts/iam-tailor",
            "--namespace",
            namespace,
        ])
        .args(args));
    yaml_documents(&text)
}

/// The shell blocks (```sh … ```) of the README section titled `title`, in order.
pub fn readme_blocks(title: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let heading = format!("## {title}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + "```sh\n".len()..];
        let close = body.find("```").expect("a closed code block");
        blocks.push(body[..close].to_string());
        rest = &body[close + 3..];
    }
    blocks
}
