//! README.md's command-line block runs as written, on the bundled examples.

use crate::k8s_tools;

use std::path::Path;
use std::process::Command;

#[test]
fn the_command_line_section_runs() {
    let blocks = k8s_tools::readme_blocks("The command line");
    assert_eq!(blocks.len(), 1, "{blocks:#?}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &blocks[0]])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{}",
        blocks[0],
        String::from_utf8_lossy(&output.stderr)
    );
    // Each command printed what it is for.
    for needle in [
        "\"Version\": \"2012-10-17\"",
        "data \"aws_iam_policy_document\"",
        "s3:GetObject",
        "Allowed",
        "calls replayed, 12 would be denied",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
}
