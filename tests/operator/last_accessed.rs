//! IAM's last-accessed data in the operator, end to end: the `iam-tailor controller` binary
//! against a real kube-apiserver and moto, with IAM reached through the last-accessed test
//! double (moto has no such reports; the double forwards every other IAM call to moto).
//! A permission the CloudTrail window missed but IAM saw used within `lastAccessed.window` is
//! kept in the proposal and listed; without the report Recommend still proposes, and Enforce
//! applies only once `lastAccessed.required` is false.

use crate::operator_env;

use iam_tailor::controller::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use iam_tailor::policy::Policy;
use iam_tailor::policy::analysis::allowed_actions;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_env::iam_double::{service, tracked};
use operator_env::{
    ACCOUNT, Cluster, IamLastAccessedDouble, NS, broad_role, condition, condition_message, events,
    lpr, put_trail, reasons, wait_for,
};
use std::collections::BTreeSet;

fn days_ago(days: i64) -> String {
    (Timestamp::now() - SignedDuration::from_hours(24 * days))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The catalog actions the proposal's documents allow.
fn proposed_actions(status: &LeastPrivilegeRoleStatus) -> BTreeSet<String> {
    let proposal = status.proposal.as_ref().expect("a proposal");
    let documents: Vec<serde_json::Value> = serde_json::from_str(&proposal.policy).unwrap();
    let documents: Vec<Policy> = documents
        .iter()
        .map(|d| Policy::parse(&d.to_string()).unwrap())
        .collect();
    allowed_actions(&documents)
        .into_iter()
        .map(|a| a.action)
        .collect()
}

#[tokio::test]
async fn last_accessed_data_keeps_a_rare_permission_and_enforce_waits_for_it() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    for role in ["app", "worker"] {
        broad_role(&aws.iam(), role).await;
    }
    put_trail(&aws.s3()).await;

    let double = IamLastAccessedDouble::start(&aws.endpoint);
    let app_arn = format!("arn:aws:iam::{ACCOUNT}:role/app");
    let rare = days_ago(200);
    double.set_services(
        &app_arn,
        vec![
            // The trail saw GetObject; DeleteObject is the monthly purge it missed;
            // PutBucketPolicy is older than the 400-day window.
            service("s3", "Amazon S3", Some(&days_ago(1))).with_actions(vec![
                tracked("GetObject", Some(&days_ago(1))),
                tracked("DeleteObject", Some(&rare)),
                tracked("PutBucketPolicy", Some(&days_ago(500))),
            ]),
            // Used recently, but IAM has no action-level data for it: reported, never kept.
            service("kms", "AWS Key Management Service", Some(&days_ago(10))),
            service("ec2", "Amazon EC2", None),
        ],
    );
    double.fail_jobs_for(
        &format!("arn:aws:iam::{ACCOUNT}:role/worker"),
        "ServiceFailure",
        "the report could not be built",
    );
    let _operator = cluster.operator(&[], &[("AWS_ENDPOINT_URL_IAM", &double.endpoint)]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    for (name, mode) in [
        ("app", "Recommend"),
        ("worker", "Enforce\n  approval: Automatic"),
    ] {
        let spec = format!(
            "  roleName: {name}\n  mode: {mode}\n  cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n"
        );
        roles
            .create(&PostParams::default(), &lpr(name, &spec))
            .await
            .unwrap();
    }

    let app = wait_for(&roles, "app", "a proposal", |s| {
        condition(s, "ProposalReady") == Some(("True", "ProposalReady"))
    })
    .await;
    let proposal = app.proposal.clone().unwrap();
    let seen: Vec<(&str, &str)> = proposal
        .seen_by_iam
        .iter()
        .map(|s| (s.action.as_str(), s.last_accessed.as_str()))
        .collect();
    assert_eq!(seen, [("s3:DeleteObject", rare.as_str())]);
    let actions = proposed_actions(&app);
    assert!(actions.contains("s3:DeleteObject"), "{actions:?}");
    assert!(actions.contains("s3:GetObject"), "from the trail");
    assert!(
        !actions.contains("s3:PutBucketPolicy"),
        "outside the window"
    );
    assert!(
        !actions.iter().any(|a| a.starts_with("kms:")),
        "{actions:?}"
    );

    let report = app.analysis.clone().unwrap().last_accessed.unwrap();
    let without: Vec<&str> = report
        .seen_without_action_data
        .iter()
        .map(|s| s.namespace.as_str())
        .collect();
    assert_eq!(without, ["kms"]);
    let ec2 = report
        .services_not_recently_used
        .iter()
        .find(|s| s.name == "ec2")
        .expect("ec2 is listed as not recently used");
    assert_eq!(ec2.last_used, None, "never used");
    let stale: Vec<&str> = report
        .actions_not_recently_used
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(stale, ["s3:PutBucketPolicy"]);
    let asked: Vec<String> = double
        .requests()
        .iter()
        .filter(|r| r.action == "GenerateServiceLastAccessedDetails")
        .filter_map(|r| r.params.get("Arn").cloned())
        .collect();
    assert!(asked.contains(&app_arn), "{asked:?}");

    // A shorter window: the purge is no longer recent enough, so the next analysis drops it.
    roles
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"lastAccessed": {"window": "100d"}}})),
        )
        .await
        .unwrap();
    let app = wait_for(&roles, "app", "the shorter window", |s| {
        s.proposal
            .as_ref()
            .is_some_and(|p| p.revision != proposal.revision)
    })
    .await;
    assert!(app.proposal.as_ref().unwrap().seen_by_iam.is_empty());
    assert!(!proposed_actions(&app).contains("s3:DeleteObject"));

    // No report: the analysis and its proposal stand and say so, but Enforce does not apply
    // a proposal that may have dropped what IAM saw used.
    let worker = wait_for(&roles, "worker", "the proposal held", |s| {
        condition(s, "Approved") == Some(("False", "LastAccessedUnavailable"))
    })
    .await;
    assert_eq!(
        condition(&worker, "LastAccessedAvailable"),
        Some(("False", "LastAccessedFailed"))
    );
    let why = worker
        .analysis
        .as_ref()
        .unwrap()
        .last_accessed_unavailable
        .clone();
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("ServiceFailure: the report could not be built")),
        "{why:?}"
    );
    let proposal = worker.proposal.clone().unwrap();
    assert_eq!(proposal.last_accessed_unavailable, why);
    let recorded = reasons(&events(&kube, NS, "worker").await);
    assert!(recorded.contains("LastAccessedUnavailable"), "{recorded:?}");
    assert!(worker.applied.is_none() && worker.backup.is_none());
    let live = operator_env::read(&aws.iam(), "worker").await;
    assert_eq!(
        live.attached.len(),
        1,
        "still AdministratorAccess: {live:?}"
    );

    // Opting out: the same evidence is enough.
    roles
        .patch(
            "worker",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"lastAccessed": {"required": false}}})),
        )
        .await
        .unwrap();
    let worker = wait_for(&roles, "worker", "the apply", |s| {
        condition(s, "InSync") == Some(("True", "InSync"))
    })
    .await;
    let applied = worker.applied.as_ref().unwrap();
    assert_eq!(applied.revision, worker.proposal.as_ref().unwrap().revision);
    let message = condition_message(&worker, "LastAccessedAvailable");
    assert!(message.contains("could not be had"), "{message}");
}
