//! Trust policies from the AWS documentation (pages named on each), with the principals and
//! findings they should give.

use super::*;

const ROLE: &str = "arn:aws:iam::111122223333:role/app";

fn trust(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn run(statements: &str, allowed: &[&str]) -> Trust {
    let allowed: BTreeSet<String> = allowed.iter().map(|a| a.to_string()).collect();
    let list = (!allowed.is_empty()).then_some(&allowed);
    analyze(&trust(statements), ROLE, list).unwrap()
}

fn codes(t: &Trust) -> Vec<&'static str> {
    t.findings.iter().map(|f| f.code).collect()
}

/// EKS User Guide, "Assign IAM roles to Kubernetes service accounts": the trust policy for a
/// service account.
const IRSA: &str = r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub":"system:serviceaccount:default:my-service-account","oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:aud":"sts.amazonaws.com"}}}"#;

#[test]
fn irsa_names_its_service_account_and_is_conditional() {
    let t = run(IRSA, &[]);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    let [p] = &t.principals[..] else {
        panic!("{:?}", t.principals)
    };
    assert_eq!(p.kind, PrincipalKind::WebIdentity);
    assert_eq!(p.account.as_deref(), Some("111122223333"));
    assert_eq!(p.actions, ["sts:AssumeRoleWithWebIdentity"]);
    assert!(!p.unconditional, "a token must name the service account");
    assert!(
        (p.conditions.iter())
            .any(|c| c.ends_with(":sub: system:serviceaccount:default:my-service-account")),
        "{:?}",
        p.conditions
    );
    // Without the sub condition every service account of the cluster may assume it.
    let bare = IRSA.replace(
        r#""oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub":"system:serviceaccount:default:my-service-account","#,
        "",
    );
    assert_eq!(codes(&run(&bare, &[])), ["EKS_WITHOUT_SUBJECT"]);
}

/// IAM User Guide, "Create a role for OpenID Connect federation" (GitHub Actions).
const GITHUB: &str = r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},"StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo-org/octo-repo:*"}}}"#;

#[test]
fn github_actions_without_a_subject_lets_any_repository_in() {
    let t = run(GITHUB, &[]);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert!(!t.principals[0].unconditional);
    assert!(
        t.principals[0].conditions.contains(
            &"StringLike token.actions.githubusercontent.com:sub: repo:octo-org/octo-repo:*"
                .to_string()
        ),
        "{:?}",
        t.principals[0].conditions
    );
    let no_sub = GITHUB.replace(
        r#","StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo-org/octo-repo:*"}"#,
        "",
    );
    let t = run(&no_sub, &[]);
    assert_eq!(codes(&t), ["WEB_IDENTITY_WITHOUT_SUBJECT"]);
    let neither = r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}"#;
    let t = run(neither, &[]);
    assert_eq!(
        codes(&t),
        [
            "WEB_IDENTITY_WITHOUT_AUDIENCE",
            "WEB_IDENTITY_WITHOUT_SUBJECT"
        ]
    );
    assert!(t.principals[0].unconditional);
}

/// IAM User Guide, "Access to AWS accounts owned by third parties": the ExternalId condition.
const THIRD_PARTY: &str = r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"Unique ID Assigned by Example Corp"}}}"#;

#[test]
fn another_account_needs_an_external_id_and_the_allow_list() {
    let t = run(THIRD_PARTY, &[]);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    let p = &t.principals[0];
    assert_eq!(
        (p.kind, p.account.as_deref(), p.unconditional),
        (PrincipalKind::Account, Some("444455556666"), false)
    );
    assert_eq!(
        p.conditions,
        ["StringEquals sts:ExternalId: Unique ID Assigned by Example Corp"]
    );

    let without = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}"#;
    let t = run(without, &[]);
    assert_eq!(codes(&t), ["CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]);
    assert!(t.principals[0].unconditional, "anyone that account allows");
    // The allow-list: an account on it is fine, one off it is a finding of its own.
    assert_eq!(
        codes(&run(THIRD_PARTY, &["444455556666"])),
        Vec::<&str>::new()
    );
    let t = run(THIRD_PARTY, &["777788889999"]);
    assert_eq!(codes(&t), [ACCOUNT_NOT_ALLOWED]);
    assert!(
        t.findings[0].message.contains("444455556666"),
        "{:?}",
        t.findings
    );
    // A role of the account counts as the account.
    let role = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/deployer"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"sts:ExternalId":"x"}}}"#;
    let t = run(role, &["777788889999"]);
    assert_eq!(t.principals[0].kind, PrincipalKind::Role);
    assert_eq!(t.principals[0].actions, ["sts:AssumeRole"]);
    assert_eq!(codes(&t), [ACCOUNT_NOT_ALLOWED]);
    // An empty list (a spec's accounts none of which the tenancy trusts) allows none.
    let t = analyze(&trust(THIRD_PARTY), ROLE, Some(&BTreeSet::new())).unwrap();
    assert_eq!(codes(&t), [ACCOUNT_NOT_ALLOWED]);
}

#[test]
fn the_roles_own_account_is_trusted_without_an_external_id() {
    let own = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}"#;
    let t = run(own, &["777788889999"]);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert!(t.principals[0].unconditional);
}

/// IAM User Guide, "Creating a role to delegate permissions to an AWS service"; the
/// confused-deputy guard from "The confused deputy problem".
#[test]
fn service_principals_are_listed_without_findings() {
    let t = run(
        r#"{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","lambda.amazonaws.com"]},"Action":"sts:AssumeRole"}"#,
        &["777788889999"],
    );
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    let services: Vec<(&str, PrincipalKind, bool)> = (t.principals.iter())
        .map(|p| (p.principal.as_str(), p.kind, p.unconditional))
        .collect();
    assert_eq!(
        services,
        [
            ("ec2.amazonaws.com", PrincipalKind::Service, true),
            ("lambda.amazonaws.com", PrincipalKind::Service, true)
        ]
    );
    let guarded = r#"{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}"#;
    let t = run(guarded, &[]);
    assert!(!t.principals[0].unconditional);
}

/// IAM User Guide, "Create a role for SAML 2.0 federation".
#[test]
fn saml_needs_the_sign_in_audience() {
    let saml = r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:saml-provider/ExampleOrgSSOProvider"},"Action":"sts:AssumeRoleWithSAML","Condition":{"StringEquals":{"SAML:aud":"https://signin.aws.amazon.com/saml"}}}"#;
    let t = run(saml, &[]);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert_eq!(t.principals[0].kind, PrincipalKind::Saml);
    let bare = saml.replace(
        r#","Condition":{"StringEquals":{"SAML:aud":"https://signin.aws.amazon.com/saml"}}"#,
        "",
    );
    assert_eq!(codes(&run(&bare, &[])), ["SAML_WITHOUT_AUDIENCE"]);
}

#[test]
fn everyone_with_a_weak_condition_is_a_finding_and_an_organization_is_not() {
    let open = r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}"#;
    let t = run(open, &[]);
    assert_eq!(codes(&t), ["ANY_PRINCIPAL"]);
    let p = &t.principals[0];
    assert_eq!((p.kind, p.unconditional), (PrincipalKind::Everyone, true));
    // A source-IP condition keeps no stranger out.
    let weak = r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}"#;
    assert_eq!(codes(&run(weak, &[])), ["ANY_PRINCIPAL"]);
    let org = r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}}"#;
    let t = run(org, &[]);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert!(!t.principals[0].unconditional);
    // NotPrincipal with Allow admits everyone else.
    let not = r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}"#;
    let t = run(not, &[]);
    assert!(
        codes(&t).contains(&"ALLOW_WITH_NOT_PRINCIPAL"),
        "{:?}",
        t.findings
    );
    assert_eq!(
        t.principals[0].principal,
        "* except arn:aws:iam::444455556666:root"
    );
}

#[test]
fn a_deny_and_other_actions_are_read_too() {
    // Only statements that allow assuming count; a Deny for everyone outside the organization
    // makes no one unconditional.
    let statements = r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole"},
        {"Effect":"Allow","Principal":{"AWS":"555566667777"},"Action":"sts:TagSession"},
        {"Effect":"Deny","Principal":"*","Action":"sts:*","Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}}"#;
    let t = run(statements, &[]);
    let listed: Vec<&str> = t.principals.iter().map(|p| p.principal.as_str()).collect();
    assert_eq!(listed, ["444455556666"]);
    assert!(!t.principals[0].unconditional, "{:?}", t.principals);
}

#[test]
fn long_conditions_are_cut_and_bad_text_is_an_error() {
    let values: Vec<String> = (0..3)
        .map(|i| format!("\"{}{i}\"", "x".repeat(300)))
        .collect();
    let keys: Vec<String> = (0..6)
        .map(|k| format!(r#""aws:PrincipalTag/k{k}":[{}]"#, values.join(",")))
        .collect();
    let statement = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":["444455556666","555566667777"]}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{{}}}}}}}"#,
        keys.join(",")
    );
    let t = run(&statement, &[]);
    for p in &t.principals {
        assert_eq!(
            p.conditions.len(),
            MAX_CONDITIONS_SHOWN + 1,
            "{:?}",
            p.conditions
        );
        assert_eq!(p.conditions[MAX_CONDITIONS_SHOWN], "… 2 more");
        let longest = p.conditions.iter().map(|c| c.chars().count()).max();
        assert_eq!(longest, Some(MAX_CONDITION_CHARS + 1));
    }
    assert!(analyze("{", ROLE, None).is_err());
    assert!(analyze(r#"{"Statement":"x"}"#, ROLE, None).is_err());
    let huge = trust(&format!(
        r#"{{"Sid":"{}"}}"#,
        "a".repeat(MAX_TRUST_POLICY_BYTES)
    ));
    let error = analyze(&huge, ROLE, None).unwrap_err();
    assert!(error.contains("over the 16384 analyzed"), "{error}");
}
