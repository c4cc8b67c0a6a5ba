//! Hand-written policies under tests/fixtures/lint/ and the findings each must produce.

use iam_tailor::policy::lint::{Finding, PolicyType, Severity, has_blocking, lint};

use Severity::{Error, SecurityWarning, Suggestion, Warning};

fn run(file: &str, kind: PolicyType) -> Vec<Finding> {
    let path = format!("{}/tests/fixtures/lint/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lint(&text, kind)
}

type Expected = &'static [(Severity, &'static str, &'static str)];

const CASES: &[(&str, PolicyType, Expected)] = &[
    (
        "identity_admin_escalation.json",
        PolicyType::Identity,
        &[
            (
                SecurityWarning,
                "PASS_ROLE_WITH_STAR_IN_RESOURCE",
                "Statement[0].Action[1]",
            ),
            (
                SecurityWarning,
                "PASS_ROLE_PRIVILEGE_ESCALATION",
                "Statement[0].Action[1]",
            ),
            (Suggestion, "REDUNDANT_ACTION", "Statement[0].Action[2]"),
            (SecurityWarning, "FULL_ACCESS", "Statement[1].Action"),
            (
                SecurityWarning,
                "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE",
                "Statement[1].Action",
            ),
            (
                SecurityWarning,
                "PRIVILEGE_ESCALATION",
                "Statement[1].Action",
            ),
            (Error, "UNIQUE_SIDS_REQUIRED", "Statement[2].Sid"),
            (
                SecurityWarning,
                "PRIVILEGE_ESCALATION",
                "Statement[2].Action",
            ),
            (Suggestion, "REDUNDANT_STATEMENT", "Statement[0]"),
            (Suggestion, "REDUNDANT_STATEMENT", "Statement[2]"),
        ],
    ),
    (
        "identity_malformed.json",
        PolicyType::Identity,
        &[
            (Error, "INVALID_VERSION", "Version"),
            (Error, "INVALID_ACTION", "Statement[0].Action[1]"),
            (Error, "INVALID_ACTION", "Statement[0].Action[2]"),
            (Error, "ARN_REGION_NOT_ALLOWED", "Statement[0].Resource[0]"),
            (Error, "INVALID_ARN_RESOURCE", "Statement[0].Resource[1]"),
            (Error, "MISSING_RESOURCE", "Statement[1]"),
            (Error, "UNSUPPORTED_PRINCIPAL", "Statement[1].Principal"),
        ],
    ),
    (
        "identity_conditions.json",
        PolicyType::Identity,
        &[
            (Warning, "ACTION_RESOURCE_MISMATCH", "Statement.Action[1]"),
            (
                Warning,
                "TYPE_MISMATCH",
                "Statement.Condition.DateGreaterThan.aws:SourceVpc",
            ),
            (
                Warning,
                "CONDITION_KEY_NOT_SET",
                "Statement.Condition.StringEquals.lambda:FunctionArn",
            ),
            (
                Error,
                "INVALID_CONDITION_OPERATOR",
                "Statement.Condition.StringEqualsIgnoreKase",
            ),
        ],
    ),
    (
        "trust_open.json",
        PolicyType::Trust,
        &[
            (Suggestion, "OUTDATED_VERSION", "Version"),
            (
                SecurityWarning,
                "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID",
                "Statement[0].Principal.AWS[0]",
            ),
            (
                SecurityWarning,
                "ANY_PRINCIPAL",
                "Statement[0].Principal.AWS[1]",
            ),
            (
                SecurityWarning,
                "WEB_IDENTITY_WITHOUT_AUDIENCE",
                "Statement[1].Principal.Federated",
            ),
            (
                Suggestion,
                "EKS_WITHOUT_SUBJECT",
                "Statement[1].Principal.Federated",
            ),
            (
                SecurityWarning,
                "SAML_WITHOUT_AUDIENCE",
                "Statement[2].Principal.Federated",
            ),
            (Error, "RESOURCE_NOT_ALLOWED", "Statement[2].Resource"),
            (Error, "MISSING_PRINCIPAL", "Statement[3]"),
        ],
    ),
    ("trust_ok.json", PolicyType::Trust, &[]),
    (
        "resource_bucket.json",
        PolicyType::Resource,
        &[
            (Suggestion, "OUTDATED_VERSION", "Version"),
            (SecurityWarning, "ANY_PRINCIPAL", "Statement[0].Principal"),
            (SecurityWarning, "ANY_PRINCIPAL", "Statement[1].Principal"),
            (Suggestion, "REDUNDANT_STATEMENT", "Statement[1]"),
            (Error, "MISSING_PRINCIPAL", "Statement[2]"),
        ],
    ),
];

#[test]
fn fixtures_produce_their_findings() {
    let mut problems = Vec::new();
    for (file, kind, expected) in CASES {
        let findings = run(file, *kind);
        let got: Vec<(Severity, &str, &str)> = findings
            .iter()
            .map(|f| (f.severity, f.code, f.path.as_str()))
            .collect();
        for e in *expected {
            if !got.contains(e) {
                problems.push(format!("{file}: missing {e:?}; got {got:?}"));
            }
        }
        // Nothing unexpected that blocks: blocking findings are exactly the expected ones.
        for g in got
            .iter()
            .filter(|g| matches!(g.0, Error | SecurityWarning))
        {
            if !expected.contains(g) {
                problems.push(format!("{file}: unexpected {g:?}"));
            }
        }
        let blocking = expected
            .iter()
            .any(|e| matches!(e.0, Error | SecurityWarning));
        assert_eq!(has_blocking(&findings), blocking, "{file}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn findings_are_sorted_by_document_position() {
    let findings = run("trust_open.json", PolicyType::Trust);
    let paths: Vec<&str> = findings.iter().map(|f| f.path.as_str()).collect();
    let statement = |p: &str| {
        p.strip_prefix("Statement[")
            .and_then(|r| r.split(']').next())
            .and_then(|n| n.parse::<usize>().ok())
    };
    assert_eq!(paths.first(), Some(&"Version"));
    let indices: Vec<usize> = paths.iter().filter_map(|p| statement(p)).collect();
    assert!(indices.windows(2).all(|w| w[0] <= w[1]), "{paths:?}");
    // Same path: more severe first.
    let fed: Vec<Severity> = findings
        .iter()
        .filter(|f| f.path == "Statement[1].Principal.Federated")
        .map(|f| f.severity)
        .collect();
    assert_eq!(fed, vec![SecurityWarning, Suggestion]);
}

/// docs/lint-checks.md lists every code the linter can emit, with its finding type.
#[test]
fn every_emitted_code_is_documented() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/lint-checks.md")).unwrap();
    let mut codes = Vec::new();
    for file in [
        "mod",
        "catalog_checks",
        "redundancy",
        "security",
        "structure",
    ] {
        let path = format!("{root}/src/policy/lint/{file}.rs");
        let source = std::fs::read_to_string(&path).unwrap();
        // Only the code, not its unit tests.
        let source = source.split("#[cfg(test)]").next().unwrap();
        for literal in source.split('"').skip(1).step_by(2) {
            let code_like = literal.len() > 6
                && literal.contains('_')
                && literal.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
            if code_like && !["SECURITY_WARNING", "SCREAMING_SNAKE_CASE"].contains(&literal) {
                codes.push(literal.to_string());
            }
        }
    }
    assert!(codes.len() >= 40, "{codes:?}");
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !doc.contains(&format!("| `{c}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/lint-checks.md: {missing:?}"
    );
}
