//! Guardrails around the role, end to end: the `iam-tailor controller` binary against a real
//! kube-apiserver and moto. A declared permissions boundary is set first, put back after an
//! out-of-band removal or a wider replacement (a tighter one stays), and taken back by Restore. Who can assume the role is read from its
//! trust policy, reported in `status.trust` with TrustOK and a Warning per new finding, and
//! never edited.

use crate::operator_env;
use crate::watch;

use iam_tailor::controller::LeastPrivilegeRole;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use operator_env::{
    Cluster, NS, broad_role, condition, condition_message, events, lpr, put_trail, read, wait_for,
    wait_gone,
};
use std::time::Duration;

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
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = "  roleName: partner\n  mode: Observe\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n  \
                trust: {allowedAccounts: [\"777788889999\"]}\n";
    roles
        .create(&PostParams::default(), &lpr("partner", spec))
        .await
        .unwrap();

    let status = wait_for(&roles, "partner", "the trust findings", |s| {
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
    let status = wait_for(&roles, "partner", "trust without findings", |s| {
        condition(s, "TrustOK") == Some(("True", "TrustOK"))
    })
    .await;
    let trust = status.trust.unwrap();
    assert!(trust.findings.is_empty(), "{:?}", trust.findings);
    assert!(!trust.principals[0].unconditional);
    assert_eq!(
        trust.principals[0].conditions,
        ["StringEquals sts:ExternalId: partner-7"]
    );
}

/// The role's permissions boundary as IAM has it.
async fn boundary_of(iam: &aws_sdk_iam::Client, role: &str) -> Option<String> {
    let out = iam.get_role().role_name(role).send().await.unwrap();
    let boundary = out.role().unwrap().permissions_boundary();
    boundary
        .and_then(|b| b.permissions_boundary_arn())
        .map(str::to_string)
}

/// Polls IAM (60 s at most) until `role`'s boundary is `wanted`.
async fn wait_boundary(iam: &aws_sdk_iam::Client, role: &str, wanted: Option<&str>) {
    watch::poll(
        &format!("{role}: boundary {wanted:?}"),
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || match boundary_of(iam, role).await {
            seen if seen.as_deref() == wanted => Ok(()),
            seen => Err(format!("the boundary is {seen:?}")),
        },
    )
    .await;
}

const S3_ANYTHING: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
const GET_OBJECT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
/// The default version of managed policy `arn`, and the Action of its first statement.
async fn default_actions(iam: &aws_sdk_iam::Client, arn: &str) -> (String, serde_json::Value) {
    let policy = iam.get_policy().policy_arn(arn).send().await.unwrap();
    let id = policy.policy().unwrap().default_version_id().unwrap();
    let out = iam.get_policy_version().policy_arn(arn).version_id(id);
    let version = out.send().await.unwrap();
    let text = version.policy_version().unwrap().document().unwrap();
    let text = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap();
    let held: serde_json::Value = serde_json::from_str(&text).unwrap();
    (id.to_string(), held["Statement"][0]["Action"].clone())
}

const READ_ONLY_S3: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}"#;

#[tokio::test]
async fn a_declared_boundary_is_set_first_put_back_and_taken_back_on_delete() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let iam = aws.iam();
    for role in ["fenced", "pinned"] {
        broad_role(&iam, role).await;
    }
    put_trail(&aws.s3()).await;
    let dev_boundary = iam
        .create_policy()
        .policy_name("dev-boundary")
        .policy_document(READ_ONLY_S3)
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let original = read(&iam, "fenced").await;
    let read_only = serde_json::json!(["s3:GetObject", "s3:ListBucket"]);
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    // Manual approval and nothing approved: the boundary is the only write.
    let document = serde_json::to_string(READ_ONLY_S3).unwrap();
    let fenced = format!(
        "  roleName: fenced\n  mode: Enforce\n  deletionPolicy: Restore\n  \
         cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n  drift: {{interval: 2s}}\n  \
         permissionsBoundary: {{document: {document}}}\n"
    );
    let pinned = format!(
        "  roleName: pinned\n  mode: Enforce\n  cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n  \
         drift: {{interval: 2s}}\n  permissionsBoundary: {{policyArn: \"{dev_boundary}\"}}\n"
    );
    for (name, spec) in [("fenced", &fenced), ("pinned", &pinned)] {
        roles
            .create(&PostParams::default(), &lpr(name, spec))
            .await
            .unwrap();
    }
    let own = format!(
        "arn:aws:iam::{}:policy/iam-tailor.boundary.fenced",
        operator_env::ACCOUNT
    );
    for (name, wanted) in [("fenced", own.as_str()), ("pinned", dev_boundary.as_str())] {
        wait_boundary(&iam, name, Some(wanted)).await;
        let status = wait_for(&roles, name, "the boundary", |s| {
            condition(s, "BoundaryInPlace") == Some(("True", "BoundaryInPlace"))
        })
        .await;
        assert_eq!(boundary_of(&iam, name).await.as_deref(), Some(wanted));
        assert!(status.backup.is_some(), "backed up before the first write");
        assert!(status.applied.is_none(), "no proposal was approved");
    }
    // iam-tailor's own policy holds the declared document, tagged for the role.
    assert_eq!(
        default_actions(&iam, &own).await,
        ("v1".into(), read_only.clone())
    );
    let live = read(&iam, "fenced").await;
    assert_eq!(live.attached, original.attached, "nothing else was written");

    // Its own policy widened out of band (a new default version): the declared document is
    // written back, being within what the policy now says.
    iam.create_policy_version()
        .policy_arn(&own)
        .policy_document(S3_ANYTHING)
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    watch::poll(
        "iam-tailor's own boundary policy written back",
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || match default_actions(&iam, &own).await {
            (version, _) if version == "v2" => Err("v2 is still the default".to_string()),
            _ => Ok(()),
        },
    )
    .await;
    assert_eq!(default_actions(&iam, &own).await, ("v3".into(), read_only));

    // Removed out of band: put back.
    iam.delete_role_permissions_boundary()
        .role_name("fenced")
        .send()
        .await
        .unwrap();
    wait_boundary(&iam, "fenced", Some(&own)).await;

    // Replaced out of band by a wider boundary: the declared one is proven within it, so it is
    // put back. By a tighter one (an incident responder's): left, with a Warning.
    let create = |name: &'static str, document: &'static str| {
        let iam = iam.clone();
        async move {
            let out = iam
                .create_policy()
                .policy_name(name)
                .policy_document(document);
            let created = out.send().await.unwrap();
            created.policy().unwrap().arn().unwrap().to_string()
        }
    };
    let wide = create("wide-boundary", S3_ANYTHING).await;
    let tight = create("tight-boundary", GET_OBJECT_ONLY).await;
    let replace = |arn: String| {
        let out = iam.put_role_permissions_boundary().role_name("pinned");
        out.permissions_boundary(arn).send()
    };
    replace(wide).await.unwrap();
    wait_boundary(&iam, "pinned", Some(&dev_boundary)).await;
    replace(tight.clone()).await.unwrap();
    wait_for(&roles, "pinned", "the tighter boundary kept", |s| {
        condition(s, "BoundaryInPlace") == Some(("False", "NotProvablyNarrower"))
    })
    .await;
    assert_eq!(boundary_of(&iam, "pinned").await, Some(tight));
    let warned = (events(&kube, NS, "pinned").await.into_iter())
        .any(|e| e.reason.as_deref() == Some("BoundaryNotProvablyNarrower"));
    assert!(warned, "a Warning says why the boundary was not put back");

    // Deleted with Restore: the role had no boundary, so iam-tailor's goes, and its policy.
    roles
        .delete("fenced", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&roles, "fenced").await;
    assert_eq!(boundary_of(&iam, "fenced").await, None);
    assert!(
        iam.get_policy().policy_arn(&own).send().await.is_err(),
        "its policy is deleted"
    );
    let mut restored = read(&iam, "fenced").await;
    restored.tags.clone_from(&original.tags);
    assert_eq!(restored, original);
    let recorded: Vec<String> = (events(&kube, NS, "fenced").await.into_iter())
        .filter_map(|e| e.reason)
        .collect();
    for reason in [
        "BoundaryDeclared",
        "PermissionsBoundarySet",
        "PermissionsBoundaryDeleted",
        "Restored",
    ] {
        assert!(
            recorded.iter().any(|r| r == reason),
            "{reason} not in {recorded:?}"
        );
    }
}
