//! The linter against moto's IAM policy validation cases, which mirror what IAM's
//! CreatePolicy accepts and rejects: every rejected document must get an ERROR, every accepted
//! one none but Access Analyzer's: IAM accepts names that do not exist (an action, service,
//! condition key or empty operator), which Access Analyzer reports as ERRORs because that part
//! of the policy cannot work.

use iam_tailor::policy::lint::{Finding, PolicyType, Severity, lint};
use serde_json::Value;

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/iam-reference/moto_policy_validation_cases.json"
);

fn load() -> Value {
    let text = std::fs::read_to_string(CASES).unwrap_or_else(|e| {
        panic!("cannot read the moto validation cases at {CASES}: {e}; the repository's sibling shared/ checkout is required")
    });
    serde_json::from_str(&text).expect("moto cases are valid JSON")
}

/// A string document is linted as written; an object is what moto passes to json.dumps.
fn document_text(doc: &Value) -> String {
    match doc {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap(),
    }
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

#[test]
fn invalid_documents_get_an_error() {
    let cases = load();
    let invalid = cases["invalid_policy_document_test_cases"]
        .as_array()
        .expect("invalid_policy_document_test_cases is an array");
    assert_eq!(invalid.len(), 78, "the case file changed");
    let mut missed = Vec::new();
    for case in invalid {
        let text = document_text(&case["document"]);
        let findings = lint(&text, PolicyType::Identity);
        if errors(&findings).is_empty() {
            missed.push(format!(
                "{text}\n  IAM says: {}\n  we said: {findings:?}",
                case["error_message"]
            ));
        }
    }
    assert!(missed.is_empty(), "no ERROR for:\n{}", missed.join("\n"));
}

/// Access Analyzer's ERRORs for names IAM accepts without knowing them.
const NAMES_THAT_DO_NOT_EXIST: [&str; 5] = [
    "INVALID_ACTION",
    "INVALID_SERVICE_IN_ACTION",
    "INVALID_SERVICE_CONDITION_KEY",
    "INVALID_GLOBAL_CONDITION_KEY",
    "INVALID_CONDITION_OPERATOR",
];

#[test]
fn valid_documents_get_no_error() {
    let cases = load();
    let valid = cases["valid_policy_documents"]
        .as_array()
        .expect("valid_policy_documents is an array");
    assert_eq!(valid.len(), 54, "the case file changed");
    let mut wrong = Vec::new();
    for doc in valid {
        let text = document_text(doc);
        let findings = lint(&text, PolicyType::Identity);
        let errs: Vec<_> = errors(&findings)
            .into_iter()
            .filter(|f| !NAMES_THAT_DO_NOT_EXIST.contains(&f.code))
            .collect();
        if !errs.is_empty() {
            wrong.push(format!("{text}\n  {errs:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected ERROR for:\n{}",
        wrong.join("\n")
    );
}
