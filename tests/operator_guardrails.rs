//! Guardrails around the role, end to end: the `iam-tailor controller` binary against a real
//! kube-apiserver and moto. Who can assume the role is read from its trust policy, reported in
//! `status.trust` with TrustOK and a Warning per new finding, and never edited.

use crate::operator_env;

use iam_tailor::controller::LeastPrivilegeRole;
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_env::{
    Cluster, NS, broad_role, condition, condition_message, events, lpr, put_trail, wait_for,
};

/// Trusts account 444455556666 as a whole, with no ExternalId.
const CROSS_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}]}"#;
/// The same account, with the ExternalId its owner gave.
const WITH_EXTERNAL_ID: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"partner-7"}}}]}"#;

async fn trust_policy(iam: &aws_sdk_iam::Client, role: &str) -> serde_json::Value {
    let out = iam.get_role().role_name(role).send().await.unwrap();
    let encoded = out.role().unwrap().assume_role_policy_document().unwrap();
    let text = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn trust_beyond_the_account_is_reported_with_a_warning_and_never_edited() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let iam = aws.iam();
    broad_role(&iam, "partner").await;
    put_trail(&aws.s3()).await;
    iam.update_assume_role_policy()
        .role_name("partner")
        .policy_document(CROSS_ACCOUNT)
        .send()
        .await
        .unwrap();
    let operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = "  roleName: partner\n  mode: Observe\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n  \
                trust: {allowedAccounts: [\"777788889999\"]}\n";
    roles
        .create(&PostParams::default(), &lpr("partner", spec))
        .await
        .unwrap();

    let status = wait_for(&roles, "partner", &operator, "the trust findings", |s| {
        condition(s, "TrustOK") == Some(("False", "TrustFindings"))
    })
    .await;
    let trust = status.trust.clone().unwrap();
    let codes: Vec<&str> = trust.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        ["ACCOUNT_NOT_ALLOWED", "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    let [who] = &trust.principals[..] else {
        panic!("{:?}", trust.principals)
    };
    assert_eq!(
        (who.kind.as_str(), who.account.as_deref(), who.unconditional),
        ("Account", Some("444455556666"), true)
    );
    assert_eq!(
        trust.allowed_accounts_from.as_deref(),
        Some("spec.trust.allowedAccounts")
    );
    let message = condition_message(&status, "TrustOK");
    assert!(
        message.contains("CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"),
        "{message}"
    );
    let warnings: Vec<String> = (events(&kube, NS, "partner").await.into_iter())
        .filter(|e| {
            e.reason.as_deref() == Some("TrustFinding") && e.type_.as_deref() == Some("Warning")
        })
        .filter_map(|e| e.note)
        .collect();
    let [warning] = &warnings[..] else {
        panic!("{warnings:?}")
    };
    assert!(warning.contains("2 findings new"), "{warning}");
    assert!(
        warning.contains("CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID: account 444455556666"),
        "{warning}"
    );
    // Observed only: the trust policy is as it was.
    let expected: serde_json::Value = serde_json::from_str(CROSS_ACCOUNT).unwrap();
    assert_eq!(trust_policy(&iam, "partner").await, expected);

    // The owner adds an ExternalId and the team lists the partner: nothing stands out.
    iam.update_assume_role_policy()
        .role_name("partner")
        .policy_document(WITH_EXTERNAL_ID)
        .send()
        .await
        .unwrap();
    roles
        .patch(
            "partner",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"trust": {"allowedAccounts": ["444455556666"]}}}),
            ),
        )
        .await
        .unwrap();
    let status = wait_for(
        &roles,
        "partner",
        &operator,
        "trust without findings",
        |s| condition(s, "TrustOK") == Some(("True", "TrustOK")),
    )
    .await;
    let trust = status.trust.unwrap();
    assert!(trust.findings.is_empty(), "{:?}", trust.findings);
    assert!(!trust.principals[0].unconditional);
    assert_eq!(
        trust.principals[0].conditions,
        ["StringEquals sts:ExternalId: partner-7"]
    );
}
