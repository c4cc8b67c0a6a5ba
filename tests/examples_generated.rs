//! `examples/generated` holds what `iam-tailor generate` makes of the bundled example logs, in
//! each output format; this fails when the committed files are stale. Refresh them with the
//! commands in examples/generated/README.md.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_outputs_match_generation() {
    for (format, file) in [
        ("json", "checkout-api.json"),
        ("terraform", "checkout-api.tf"),
        ("cloudformation", "checkout-api.cfn.json"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
            .current_dir(repo())
            .args([
                "generate",
                "--cloudtrail",
                "examples/cloudtrail",
                "--principal",
                "arn:aws:iam::111122223333:role/checkout-api",
                "--current",
                "examples/policies/checkout-api.json",
                "--format",
                format,
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{format}: {output:?}");
        let committed =
            std::fs::read_to_string(repo().join("examples/generated").join(file)).unwrap();
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            committed,
            "examples/generated/{file} is stale"
        );
    }
}
