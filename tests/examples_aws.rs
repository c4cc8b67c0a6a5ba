//! The operator's own AWS permissions in `examples/aws`: the policy lints clean, grants exactly
//! the IAM, Access Analyzer, Athena and fact store calls `src/aws/` makes, and the CloudFormation template
//! carries the same policy.

use iam_tailor::policy::lint::{PolicyType, Severity, lint};
use iam_tailor::policy::{ActionBlock, Policy};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn operator_policy() -> Policy {
    Policy::parse(&repo("examples/aws/operator-policy.json")).unwrap()
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The SDK operations `file` calls through the rate-limited client
/// (`.call().await.get_role()`), as IAM actions of `service`.
fn sdk_calls(file: &str, service: &str) -> BTreeSet<String> {
    let source = repo(file);
    source
        .split(".call()")
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.trim_start().strip_prefix(".await")?.trim_start();
            let name: String = rest
                .strip_prefix('.')?
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            Some(format!("{service}:{}", pascal(&name)))
        })
        .collect()
}

fn blocking(text: &str, kind: PolicyType) -> Vec<String> {
    lint(text, kind)
        .into_iter()
        .filter(|f| matches!(f.severity, Severity::Error | Severity::SecurityWarning))
        .map(|f| format!("{} {} {}", f.code, f.path, f.message))
        .collect()
}

#[test]
fn operator_policy_lints_clean() {
    let findings = blocking(
        &repo("examples/aws/operator-policy.json"),
        PolicyType::Identity,
    );
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn operator_policy_grants_exactly_the_iam_calls_the_operator_makes() {
    let granted = |prefix: &str| -> BTreeSet<String> {
        operator_policy()
            .statements
            .iter()
            .flat_map(|s| match &s.action {
                Some(ActionBlock::Action(actions)) => actions.clone(),
                _ => Vec::new(),
            })
            .filter(|a| a.starts_with(prefix))
            .collect()
    };
    let calls = sdk_calls("src/aws/iam.rs", "iam");
    assert!(
        calls.contains("iam:GetRole") && calls.len() > 10,
        "{calls:?}"
    );
    // CreatePolicy with tags also needs TagPolicy; StartPolicyGeneration passes the trail
    // reader role to Access Analyzer.
    let mut wanted = calls;
    wanted.insert("iam:TagPolicy".to_string());
    wanted.insert("iam:PassRole".to_string());
    assert_eq!(granted("iam:"), wanted);

    let calls = sdk_calls("src/aws/access_analyzer.rs", "access-analyzer");
    assert!(
        calls.contains("access-analyzer:StartPolicyGeneration") && calls.len() == 5,
        "{calls:?}"
    );
    assert_eq!(granted("access-analyzer:"), calls);

    // The Athena source's client calls (`client.start_query_execution()`, possibly across a
    // line break).
    let source = repo("src/aws/athena.rs");
    let calls: BTreeSet<String> = source
        .split("client")
        .skip(1)
        .filter_map(|rest| {
            let name: String = (rest.trim_start().strip_prefix('.')?.chars())
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let called = rest.trim_start()[1 + name.len()..].starts_with("()");
            (called && !name.is_empty()).then(|| format!("athena:{}", pascal(&name)))
        })
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(granted("athena:"), calls);
}

/// The fact store's statements grant exactly what `src/aws/s3.rs` calls on a store (listing
/// stands for `s3:ListBucket`, which also makes a missing checkpoint `NoSuchKey`, not
/// `AccessDenied`), on the store bucket only.
#[test]
fn the_fact_store_statements_grant_exactly_the_s3_calls_it_makes() {
    let source = repo("src/aws/s3.rs");
    let calls: BTreeSet<String> = ["list_objects_v2", "get_object", "put_object"]
        .into_iter()
        .filter(|call| source.contains(&format!(".{call}()")))
        .map(|call| match call {
            "list_objects_v2" => "s3:ListBucket".to_string(),
            other => format!("s3:{}", pascal(other)),
        })
        .collect();
    let store: Vec<_> = (operator_policy().statements.into_iter())
        .filter(|s| {
            s.sid
                .as_deref()
                .is_some_and(|sid| sid.starts_with("FactStore"))
        })
        .collect();
    let granted: BTreeSet<String> = (store.iter())
        .flat_map(|s| match &s.action {
            Some(ActionBlock::Action(actions)) => actions.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(granted, calls);
    for statement in &store {
        let text = format!("{:?}", statement.resource);
        assert!(
            text.contains("arn:aws:s3:::iam-tailor-facts-111122223333"),
            "{text}"
        );
    }
}

#[test]
fn cloudformation_carries_the_same_policy() {
    // `!Sub` and `!GetAtt` are YAML tags; read the template as plain YAML without them.
    let text = repo("examples/aws/operator-role.cfn.yaml")
        .replace("!Sub ", "")
        .replace("!GetAtt ", "");
    let template: serde_json::Value = serde_norway::from_str(&text).unwrap();
    let role = &template["Resources"]["OperatorRole"]["Properties"];
    let document = role["Policies"][0]["PolicyDocument"]
        .as_str()
        .unwrap()
        .replace("${AWS::AccountId}", "111122223333")
        .replace("${TrailBucket}", "org-trail-logs");
    let policy = Policy::parse(&document).unwrap();
    assert_eq!(policy.canonical_json(), operator_policy().canonical_json());

    let trust = role["AssumeRolePolicyDocument"]
        .as_str()
        .unwrap()
        .replace("${AWS::Partition}", "aws")
        .replace("${AWS::AccountId}", "111122223333")
        .replace(
            "${OidcProvider}",
            "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
        )
        .replace("${Namespace}", "iam-tailor")
        .replace("${ServiceAccount}", "iam-tailor");
    let findings = blocking(&trust, PolicyType::Trust);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn terraform_reads_the_same_policy_file() {
    let terraform = repo("examples/aws/operator-role.tf");
    assert!(terraform.contains(r#"file("${path.module}/operator-policy.json")"#));
    assert!(terraform.contains("sts:AssumeRoleWithWebIdentity"));
}
