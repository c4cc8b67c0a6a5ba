//! Helpers shared by the integration tests.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `iam-tailor simulate --requests -` on `input` and returns its output lines as JSON.
pub fn simulate_batch(input: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .args(["simulate", "--requests", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs iam-tailor");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "simulate --requests exit code"
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
