//! The command line as users call it: exit codes, output formats, batch error handling.

use crate::common;

use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs iam-tailor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn write_temp(name: &str, content: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iam-tailor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/policies/checkout-api.json"
);
const BOUNDARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/policies/boundary.json"
);

#[test]
fn lint_exit_codes() {
    let clean = write_temp(
        "clean.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
    );
    assert_eq!(
        run(&["lint", clean.to_str().unwrap()]).status.code(),
        Some(0)
    );

    // The example grants iam:PassRole on * without iam:PassedToService: a security warning.
    let o = run(&["lint", EXAMPLE, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let findings = findings.as_array().unwrap();
    assert!(findings.iter().any(|f| f["severity"] == "SECURITY_WARNING"
        && f["path"].as_str().unwrap().starts_with("Statement[2]")));
    for f in findings {
        for key in ["severity", "code", "message", "path"] {
            assert!(f.get(key).is_some(), "finding without {key}: {f}");
        }
    }

    let broken = write_temp(
        "broken.json",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":{},"Resource":"*"}}"#,
    );
    let o = run(&["lint", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("Statement.Action"), "{}", stdout(&o));

    // Access Analyzer has an action that does not exist as an ERROR: exit 1, with a hint.
    let typo = write_temp(
        "typo.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObjekt","Resource":"arn:aws:s3:::b/*"}]}"#,
    );
    let o = run(&["lint", typo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("ERROR") && text.contains("INVALID_ACTION"),
        "{text}"
    );
    assert!(text.contains("did you mean \"s3:GetObject\""), "{text}");

    assert_eq!(
        run(&["lint", "/nonexistent/policy.json"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["lint", EXAMPLE, "--kind", "bogus"]).status.code(),
        Some(2)
    );
}

#[test]
fn simulate_first_line_is_the_decision() {
    let o = run(&[
        "simulate",
        "--policy",
        EXAMPLE,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::checkout-orders/a.json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert_eq!(text.lines().next(), Some("Allowed"));
    assert!(text.contains("Orders"), "deciding statement named: {text}");

    let o = run(&[
        "simulate",
        "--policy",
        EXAMPLE,
        "--boundary",
        BOUNDARY,
        "--action",
        "lambda:CreateFunction",
        "--resource",
        "arn:aws:lambda:us-east-1:111122223333:function:f",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["decision"], "ImplicitlyDenied");
    let o = run(&[
        "simulate",
        "--policy",
        EXAMPLE,
        "--boundary",
        BOUNDARY,
        "--action",
        "lambda:CreateFunction",
        "--resource",
        "arn:aws:lambda:us-east-1:111122223333:function:f",
    ]);
    assert!(
        stdout(&o).contains("no Allow in: boundary"),
        "{}",
        stdout(&o)
    );
    assert!(v["matched"].is_array());

    let o = run(&[
        "simulate",
        "--policy",
        EXAMPLE,
        "--action",
        "s3:DeleteObject",
        "--resource",
        "arn:aws:s3:::checkout-orders/a",
        "--context",
        "aws:SecureTransport=false",
    ]);
    assert_eq!(stdout(&o).lines().next(), Some("ExplicitlyDenied"));

    assert_eq!(
        run(&["simulate", "--policy", EXAMPLE]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&[
            "simulate",
            "--policy",
            EXAMPLE,
            "--action",
            "s3:GetObject",
            "--context",
            "novalue"
        ])
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn batch_keeps_order_and_survives_bad_lines() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}}]}"#;
    let deny =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
    let lines = [
        format!(r#"{{"identityPolicies":[{doc}],"request":{{"action":"s3:GetObject","resource":"arn:aws:s3:::b/k"}}}}"#),
        format!(r#"{{"identityPolicies":[{doc}],"request":{{"action":"s3:PutObject","resource":"arn:aws:s3:::b/k"}}}}"#),
        "this is not json".to_string(),
        format!(r#"{{"identityPolicies":[{doc}],"serviceControlPolicies":[{deny}],"request":{{"action":"s3:GetObject","resource":"arn:aws:s3:::b/k"}}}}"#),
        format!(r#"{{"identityPolicies":[{doc}],"request":{{"action":"s3:GetObject","resource":"arn:aws:s3:::b/k","context":{{"aws:TagKeys":["a","c"]}}}}}}"#),
        r#"{"identityPolicies":[{"Statement":{"Effect":"Maybe"}}],"request":{"action":"s3:GetObject"}}"#.to_string(),
        format!(r#"{{"identityPolicies":[{doc}],"request":{{"action":"s3:GetObject","resource":"arn:aws:s3:::b/k","context":{{"aws:TagKeys":["b"]}}}}}}"#),
    ];
    let out = common::simulate_batch(&(lines.join("\n") + "\n"));
    assert_eq!(out.len(), lines.len());
    assert_eq!(out[0]["decision"], "Allowed");
    assert_eq!(out[1]["decision"], "ImplicitlyDenied");
    assert!(out[2]["error"].as_str().unwrap().starts_with("line 3:"));
    assert_eq!(out[3]["decision"], "ExplicitlyDenied");
    assert_eq!(out[4]["decision"], "ImplicitlyDenied");
    let err = out[5]["error"].as_str().unwrap();
    assert!(
        err.contains("identityPolicies[0]") && err.contains("Effect"),
        "{err}"
    );
    assert_eq!(out[6]["decision"], "Allowed");
}

/// SCPs by level of the organization: every level must allow; malformed levels are errors
/// that name the field.
#[test]
fn scps_by_organization_level() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, action: &str| {
        let path = dir.path().join(name);
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
        );
        std::fs::write(&path, doc).unwrap();
        path.display().to_string()
    };
    let (full, s3, sqs) = (
        write("full.json", "*"),
        write("s3.json", "s3:*"),
        write("sqs.json", "sqs:*"),
    );
    let simulate = |levels: &[&str], action: &str| {
        let mut args = vec!["simulate", "--policy", &full, "--action", action];
        for level in levels {
            args.extend(["--scp-level", level]);
        }
        stdout(&run(&args))
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let ou = format!("{s3},{sqs}");
    assert_eq!(simulate(&[&full, &ou, &full], "sqs:SendMessage"), "Allowed");
    assert_eq!(
        simulate(&[&full, &ou, &sqs], "s3:GetObject"),
        "ImplicitlyDenied"
    );
    assert_eq!(
        simulate(&[&full, &ou, &full], "ec2:RunInstances"),
        "ImplicitlyDenied"
    );
    let both = run(&[
        "simulate",
        "--policy",
        &full,
        "--action",
        "s3:GetObject",
        "--scp",
        &full,
        "--scp-level",
        &full,
    ]);
    assert_eq!(both.status.code(), Some(2));

    let doc =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let request = r#""request":{"action":"s3:GetObject","resource":"arn:aws:s3:::b/k"}"#;
    let level = format!(r#"{{"orgIdentifier":"r-1","policies":[{doc}]}}"#);
    let lines = [
        format!(
            r#"{{"identityPolicies":[{doc}],"serviceControlPolicies":[{level},{{"orgIdentifier":"ou-1","policies":[]}}],{request}}}"#
        ),
        format!(
            r#"{{"identityPolicies":[{doc}],"serviceControlPolicies":[{level},{doc}],{request}}}"#
        ),
        format!(
            r#"{{"identityPolicies":[{doc}],"serviceControlPolicies":[{}],{request}}}"#,
            vec![level.as_str(); 17].join(",")
        ),
        format!(
            r#"{{"identityPolicies":[{doc}],"serviceControlPolicies":[{level},{level}],{request}}}"#
        ),
    ];
    let out = common::simulate_batch(&(lines.join("\n") + "\n"));
    let error = |i: usize| out[i]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error(0).contains("serviceControlPolicies[1].policies is empty"),
        "{}",
        error(0)
    );
    assert!(error(1).contains("not both"), "{}", error(1));
    assert!(error(2).contains("more than 16 levels"), "{}", error(2));
    assert_eq!(out[3]["decision"], "Allowed");
}

#[test]
fn expand_lists_actions_with_access_levels() {
    let o = run(&["expand", EXAMPLE]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.lines().any(|l| l == "s3:GetObject\tRead"), "{text}");
    assert!(text.lines().any(|l| l == "iam:PassRole\tWrite"));
    assert!(text.lines().any(|l| l.starts_with("sqs:SendMessage\t")));
    assert!(!text.lines().any(|l| l.starts_with("s3:DeleteObject\t")));
    // Catalog order: by service, then action name ignoring case.
    let mut sorted: Vec<&str> = text.lines().collect();
    sorted.sort_by_key(|l| l.to_ascii_lowercase());
    assert_eq!(sorted, text.lines().collect::<Vec<_>>(), "output is sorted");
}

#[test]
fn trust_lists_who_can_assume_and_exits_1_on_findings() {
    let role = "arn:aws:iam::111122223333:role/deploy";
    // IAM User Guide, "Create a role for OpenID Connect federation": GitHub Actions with both
    // conditions, and a partner account with its ExternalId.
    let guarded = write_temp(
        "trust-guarded.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},"StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo-org/octo-repo:*"}}},{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"partner-7"}}}]}"#,
    );
    let path = guarded.to_str().unwrap();
    let o = run(&["trust", path, "--role-arn", role, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let trust: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kinds: Vec<&str> = (trust["principals"].as_array().unwrap().iter())
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Account", "WebIdentity"]);
    assert_eq!(trust["findings"], serde_json::json!([]));
    // The partner is not on the allow-list.
    let o = run(&[
        "trust",
        path,
        "--role-arn",
        role,
        "--allowed-account",
        "777788889999",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("SECURITY_WARNING ACCOUNT_NOT_ALLOWED"),
        "{text}"
    );
    assert!(
        text.contains(
            "Account 444455556666 may sts:AssumeRole: StringEquals sts:ExternalId: partner-7"
        ),
        "{text}"
    );
    // Bad arguments and bad files are usage errors naming what is wrong.
    let o = run(&["trust", path, "--role-arn", role, "--allowed-account", "12"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"12\" is not a 12-digit account id"));
    let broken = write_temp("trust-broken.json", "{\"Statement\": 3");
    let o = run(&["trust", broken.to_str().unwrap(), "--role-arn", role]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trust-broken.json"));
}
