//! The committed CRD is exactly what the Rust types generate.

#[test]
fn committed_crd_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/leastprivilegeroles.iamtailor.dev.yaml"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = iam_tailor::controller::crd::crd_yaml();
    assert!(
        committed == generated,
        "{path} is stale: run `cargo run -- crd > crds/leastprivilegeroles.iamtailor.dev.yaml`"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .arg("crd")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), generated);
}
