//! The operator end to end: the `iam-tailor controller` binary against a real kube-apiserver
//! (1.20) and a real IAM/S3/STS API (moto). One story, in order:
//! Observe reports; Enforce + Automatic shrinks role `app` to what its trail shows; an
//! out-of-band attach is detected and reverted; Manual approval waits for `approvedRevision`;
//! deleting with Restore puts the original policies back exactly. Invalid specs and missing
//! roles are reported on the resource.

mod control_plane;
mod moto;
mod operator_env;

use futures::{StreamExt, TryStreamExt};
use iam_tailor::controller::LeastPrivilegeRole;
use iam_tailor::policy::analysis::allowed_actions;
use iam_tailor::policy::context::Context as RequestContext;
use iam_tailor::policy::eval::{Decision, PolicySet, Request};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use operator_env::{
    ACCOUNT, ADMIN, APP_USES, NS, Operator, apply_crds, broad_role, condition, create_namespace,
    events, lpr, put_trail, read, reasons, wait_for,
};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[tokio::test]
async fn operator_story() {
    let started = Instant::now();
    let server = control_plane::ControlPlane::start();
    let aws = moto::Moto::start();
    let kube = server.client().await;
    let aws_iam = aws.iam();
    let dir = tempfile::tempdir().unwrap();

    apply_crds(&kube).await;
    create_namespace(&kube, NS).await;
    for role in ["app", "worker", "viewer"] {
        broad_role(&aws_iam, role).await;
    }
    put_trail(&aws.s3()).await;
    let original_app = read(&aws_iam, "app").await;

    let operator = Operator::start(
        &server.kubeconfig,
        &aws.endpoint,
        dir.path(),
        &["--leader-election", "--lease-namespace", "default"],
        &[],
    );
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let create = |object: LeastPrivilegeRole| {
        let roles = roles.clone();
        async move { roles.create(&PostParams::default(), &object).await.unwrap() }
    };

    // Observe: an analysis, nothing written.
    create(lpr(
        "viewer",
        "  roleName: viewer\n  mode: Observe\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n",
    ))
    .await;
    let viewer = wait_for(&roles, "viewer", &operator, "Analyzed", |s| {
        condition(s, "Analyzed") == Some(("True", "Analyzed"))
    })
    .await;
    let analysis = viewer.analysis.clone().unwrap();
    assert_eq!(analysis.used_actions, 1, "{analysis:?}");
    assert_eq!(analysis.files_scanned, 2);
    assert!(
        analysis.unused_actions > 10_000,
        "AdministratorAccess: {analysis:?}"
    );
    assert_eq!(
        condition(&viewer, "ProposalReady"),
        Some(("False", "ObserveMode"))
    );
    assert!(viewer.proposal.is_none());
    assert_eq!(read(&aws_iam, "viewer").await.attached.len(), 1);

    // Enforce + Automatic: the role shrinks to what it used.
    create(lpr(
        "app",
        "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  deletionPolicy: Restore\n  \
         cloudTrail: {s3: {bucket: org-trail-logs, region: us-east-1}}\n  forbid: [\"iam:*\"]\n  \
         drift: {interval: 2s, action: Revert}\n",
    ))
    .await;
    let app = wait_for(&roles, "app", &operator, "enforcement", |s| {
        ["Analyzed", "ProposalReady", "Approved", "InSync", "Ready"]
            .iter()
            .all(|t| condition(s, t).is_some_and(|(status, _)| status == "True"))
    })
    .await;
    let analysis = app.analysis.clone().unwrap();
    assert_eq!(analysis.used_actions, APP_USES.len() as u64, "{analysis:?}");
    assert_eq!(analysis.denied_attempts, 2, "one denied ListRoles a day");
    let proposal = app.proposal.clone().unwrap();
    assert_eq!(proposal.adds, 0);
    assert_eq!(app.applied.as_ref().unwrap().revision, proposal.revision);
    let live = read(&aws_iam, "app").await;
    assert!(live.inline.is_empty(), "inline s3-all deleted: {live:#?}");
    let attached: Vec<&str> = live.attached.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(attached, ["iam-tailor-app"], "AdministratorAccess detached");
    // The role's effective access is exactly what it used, on what it used it on.
    let granted: BTreeSet<String> = allowed_actions(&live.documents())
        .into_iter()
        .map(|a| a.action)
        .collect();
    let used: BTreeSet<String> = APP_USES.iter().map(|a| a.to_string()).collect();
    assert_eq!(granted, used);
    let mut set = PolicySet::builder();
    for document in live.documents() {
        set = set.identity(document);
    }
    let set = set.build();
    let context = RequestContext::new();
    let decide = |action: &str, resource: &str| {
        set.evaluate(&Request {
            action,
            resource,
            principal: None,
            context: &context,
        })
        .decision
    };
    let table = format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders");
    let queue = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:orders");
    for (action, resource) in [
        ("s3:GetObject", "arn:aws:s3:::orders/2026/a.json"),
        ("s3:PutObject", "arn:aws:s3:::orders/2026/b.json"),
        ("s3:ListBucket", "arn:aws:s3:::orders"),
        ("dynamodb:PutItem", table.as_str()),
        ("sqs:SendMessage", queue.as_str()),
    ] {
        assert_eq!(
            decide(action, resource),
            Decision::Allowed,
            "{action} {resource}"
        );
    }
    for (action, resource) in [
        ("s3:GetObject", "arn:aws:s3:::payroll/salaries.csv"),
        ("s3:DeleteObject", "arn:aws:s3:::orders/2026/a.json"),
        ("iam:ListRoles", "*"),
        ("dynamodb:DeleteTable", table.as_str()),
    ] {
        assert_eq!(
            decide(action, resource),
            Decision::ImplicitlyDenied,
            "{action} {resource}"
        );
    }
    // The original state was saved first.
    let config_maps: Api<ConfigMap> = Api::namespaced(kube.clone(), NS);
    let backup_name = app.backup.as_ref().unwrap().config_map.clone();
    let backup = config_maps.get(&backup_name).await.unwrap();
    let snapshot: serde_json::Value =
        serde_json::from_str(&backup.data.unwrap()["backup.json"]).unwrap();
    assert_eq!(snapshot["attached"], serde_json::json!([ADMIN]));
    assert!(
        snapshot["inline"]["s3-all"]
            .as_str()
            .unwrap()
            .contains("s3:*")
    );
    let recorded = reasons(&events(&kube, NS, "app").await);
    for reason in [
        "Analyzed",
        "ProposalReady",
        "BackedUp",
        "PolicyPut",
        "PolicyAttached",
        "PolicyDetached",
        "InlinePolicyDeleted",
        "PolicyApplied",
    ] {
        assert!(recorded.contains(reason), "{reason} not in {recorded:?}");
    }

    // Drift: AdministratorAccess attached out of band is seen and taken off again.
    let stream = watcher(
        roles.clone(),
        watcher::Config::default().fields("metadata.name=app"),
    )
    .applied_objects()
    .boxed();
    let drift_seen = tokio::spawn(async move {
        let mut stream = stream;
        while let Some(object) = stream.try_next().await.unwrap() {
            let status = object.status.unwrap_or_default();
            if condition(&status, "Drifted").is_some_and(|(s, _)| s == "True") {
                return status;
            }
        }
        unreachable!("the watch ended")
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attached_at = Instant::now();
    aws_iam
        .attach_role_policy()
        .role_name("app")
        .policy_arn(ADMIN)
        .send()
        .await
        .unwrap();
    let drifted = tokio::time::timeout(Duration::from_secs(60), drift_seen)
        .await
        .unwrap_or_else(|_| panic!("no Drifted=True; log:\n{}", operator.log_tail()))
        .unwrap();
    let message = drifted
        .conditions
        .iter()
        .find(|c| c.type_ == "Drifted")
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("AdministratorAccess attached out of band"),
        "{message}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while read(&aws_iam, "app").await.attached.len() != 1 {
        assert!(
            Instant::now() < deadline,
            "not reverted:\n{}",
            operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "drift reverted {:?} after the attach",
        attached_at.elapsed()
    );
    let drift_events: Vec<Event> = events(&kube, NS, "app")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Drifted"))
        .collect();
    assert!(
        drift_events
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning")
                && e.note
                    .as_deref()
                    .unwrap_or("")
                    .contains("AdministratorAccess")),
        "{drift_events:#?}"
    );
    wait_for(&roles, "app", &operator, "InSync again", |s| {
        condition(s, "InSync") == Some(("True", "InSync"))
    })
    .await;

    // Manual approval: a proposal, and no write until its revision is approved. The operator
    // reaches this role through STS (assumeRoleArn), as for another account.
    create(lpr(
        "worker",
        "  roleName: worker\n  mode: Enforce\n  approval: Manual\n  \
         assumeRoleArn: arn:aws:iam::123456789012:role/iam-tailor-access\n  \
         cloudTrail: {s3: {bucket: org-trail-logs}}\n",
    ))
    .await;
    let worker = wait_for(&roles, "worker", &operator, "a proposal", |s| {
        condition(s, "ProposalReady") == Some(("True", "ProposalReady"))
            && condition(s, "Approved").is_some()
    })
    .await;
    assert_eq!(
        condition(&worker, "Approved"),
        Some(("False", "AwaitingApproval"))
    );
    let revision = worker.proposal.clone().unwrap().revision;
    tokio::time::sleep(Duration::from_secs(3)).await; // room for a wrong write to happen
    let live = read(&aws_iam, "worker").await;
    assert_eq!(live.attached.len(), 1, "nothing attached before approval");
    assert_eq!(live.attached[0].arn, ADMIN);
    assert_eq!(live.inline.len(), 1);
    assert!(
        config_maps
            .get_opt("iam-tailor-backup-worker")
            .await
            .unwrap()
            .is_none()
    );
    let approve = serde_json::json!({"spec": {"approvedRevision": revision}});
    roles
        .patch("worker", &PatchParams::default(), &Patch::Merge(&approve))
        .await
        .unwrap();
    let worker = wait_for(&roles, "worker", &operator, "the approved apply", |s| {
        condition(s, "InSync") == Some(("True", "Applied"))
            || condition(s, "InSync") == Some(("True", "InSync"))
    })
    .await;
    assert_eq!(
        worker.applied.unwrap().revision,
        revision,
        "the approved revision"
    );
    let live = read(&aws_iam, "worker").await;
    let granted: Vec<String> = allowed_actions(&live.documents())
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(granted, ["sqs:ReceiveMessage"]);

    // Reported on the resource: an invalid spec, a missing role.
    create(lpr(
        "both",
        "  roleName: app\n  roleArn: arn:aws:iam::123456789012:role/app\n  \
         cloudTrail: {s3: {bucket: org-trail-logs}}\n",
    ))
    .await;
    create(lpr(
        "ghost",
        "  roleName: ghost\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n",
    ))
    .await;
    wait_for(&roles, "both", &operator, "InvalidSpec", |s| {
        condition(s, "Ready") == Some(("False", "InvalidSpec"))
    })
    .await;
    wait_for(&roles, "ghost", &operator, "RoleNotFound", |s| {
        condition(s, "Ready") == Some(("False", "RoleNotFound"))
    })
    .await;
    // A trail bucket that does not exist: reported, and retried with backoff — the repeated
    // failure reads the same, so it writes no new status (which would reconcile at once).
    create(lpr(
        "nobucket",
        "  roleName: viewer\n  cloudTrail: {s3: {bucket: no-such-trail-bucket}}\n",
    ))
    .await;
    let failing = wait_for(&roles, "nobucket", &operator, "CloudTrailReadFailed", |s| {
        condition(s, "Ready") == Some(("False", "CloudTrailReadFailed"))
    })
    .await;
    let message = failing
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        message
            .message
            .as_deref()
            .unwrap_or("")
            .contains("NoSuchBucket"),
        "{message:?}"
    );
    let version = roles
        .get("nobucket")
        .await
        .unwrap()
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_secs(8)).await; // covers the 5 s first retry
    assert_eq!(
        roles
            .get("nobucket")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version,
        "the same failure rewrote the status"
    );

    // In sync means no writes: over several 2 s drift checks of `app`, no AWS write and no
    // status write.
    let writes = |metrics: &str| -> Vec<String> {
        metrics
            .lines()
            .filter(|l| l.starts_with("iam_tailor_aws_writes_total"))
            .map(str::to_string)
            .collect()
    };
    let before = writes(&operator.get("/metrics").await.1);
    let version = roles.get("app").await.unwrap().metadata.resource_version;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(writes(&operator.get("/metrics").await.1), before);
    assert!(
        before.iter().any(|l| l.contains("DetachRolePolicy")),
        "{before:?}"
    );
    assert_eq!(
        roles.get("app").await.unwrap().metadata.resource_version,
        version
    );

    // Metrics and health.
    assert_eq!(operator.get("/healthz").await.0, 200);
    assert_eq!(operator.get("/readyz").await.0, 200);
    let (code, metrics) = operator.get("/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        "iam_tailor_reconciles_total",
        "iam_tailor_drift_detections_total{",
        "iam_tailor_policy_applies_total{",
        "iam_tailor_unused_actions{",
        "iam_tailor_scan_duration_seconds",
        "iam_tailor_leader 1",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }

    // Delete with Restore: the original policies are back exactly, iam-tailor's are gone.
    roles.delete("app", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while roles.get_opt("app").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "not deleted:\n{}",
            operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restored = read(&aws_iam, "app").await;
    assert_eq!(restored, original_app);
    let ours = aws_iam
        .get_policy()
        .policy_arn(format!("arn:aws:iam::{ACCOUNT}:policy/iam-tailor-app"))
        .send()
        .await;
    assert!(ours.is_err(), "iam-tailor-app deleted");
    assert!(reasons(&events(&kube, NS, "app").await).contains("Restored"));
    eprintln!("operator story: {:?}", started.elapsed());
}
