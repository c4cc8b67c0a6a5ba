//! Evaluation cases written from AWS's documented policy evaluation logic, run end to end
//! through `simulate --requests` (tests/fixtures/evaluation-cases.jsonl: name, expect, case).

use crate::common;

#[test]
fn documented_evaluation_cases() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/evaluation-cases.jsonl"
    );
    let cases: Vec<serde_json::Value> = std::fs::read_to_string(fixture)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 60, "fixture has {} cases", cases.len());
    let input: String = cases.iter().map(|c| format!("{}\n", c["case"])).collect();
    let decisions = common::simulate_batch(&input);
    assert_eq!(decisions.len(), cases.len());
    let failures: Vec<String> = cases
        .iter()
        .zip(&decisions)
        .filter(|(c, d)| d["decision"] != c["expect"])
        .map(|(c, d)| format!("{}: expected {}, got {}", c["name"], c["expect"], d))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
