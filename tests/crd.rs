//! The committed CRDs are exactly what the Rust types generate (the chart's copies are checked
//! against these in `tests/chart.rs`).

#[test]
fn committed_crds_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    for (file, generated) in iam_tailor::controller::crd::crds() {
        let path = dir.join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: run `cargo run -- crd --out-dir crds`",
            path.display()
        );
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .arg("crd")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        iam_tailor::controller::crd::crd_yaml()
    );
}
