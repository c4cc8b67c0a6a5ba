//! The operator end to end: the `iam-tailor controller` binary against a real kube-apiserver
//! (1.20) and a real IAM/S3/STS API (moto). One story, in order:
//! Observe reports; Enforce + Automatic shrinks role `app` to what its trail shows; an
//! out-of-band attach is detected and reverted; Manual approval waits for `approvedRevision`;
//! deleting with Restore puts the original policies back exactly. Invalid specs and missing
//! roles are reported on the resource. IAM is plain moto here, without the last-accessed
//! double: what a newcomer meets, where no analysis may wait for that report.

use crate::control_plane;
use crate::moto;
use crate::operator_env;
use crate::watch;

use futures::{StreamExt, TryStreamExt};
use iam_tailor::policy::context::Context as RequestContext;
use iam_tailor::policy::eval::{Decision, PolicySet, Request};
use k8s_openapi::api::events::v1::Event;
use kube::runtime::{WatchStreamExt, watcher};
use operator_env::story::{Enforced, Story, broad_roles_and_trail};
use operator_env::{
    ACCOUNT, APP_USES, NS, Operator, apply_crds, condition, condition_message, create_namespace,
    events, read, reasons,
};
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
    broad_roles_and_trail(&aws_iam, &aws.s3()).await;

    let operator = Operator::start(
        &server.kubeconfig,
        &aws.endpoint,
        dir.path(),
        &["--leader-election", "--lease-namespace", "default"],
        &[("AWS_ENDPOINT_URL_IAM", &aws.endpoint)],
    );
    let story = Story::new(&kube, aws_iam.clone(), NS).await;
    let roles = &story.roles;

    // Observe: an analysis, nothing written.
    story
        .create(
            "viewer",
            "  roleName: viewer\n  mode: Observe\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n",
        )
        .await;
    let viewer = story
        .wait_for("viewer", "Analyzed", |s| {
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
    // moto has no last-accessed reports: the analysis stands without one, and says so.
    assert_eq!(
        condition(&viewer, "LastAccessedAvailable"),
        Some(("False", "LastAccessedFailed"))
    );
    assert!(analysis.last_accessed.is_none());
    let why = analysis.last_accessed_unavailable.clone().unwrap();
    assert!(why.contains("GenerateServiceLastAccessedDetails"), "{why}");
    assert!(reasons(&events(&kube, NS, "viewer").await).contains("LastAccessedUnavailable"));

    // Enforce + Automatic: the role shrinks to what it used (inline s3-all deleted,
    // AdministratorAccess detached, exactly the actions in its trail granted), after a backup.
    let Enforced {
        status: app,
        live,
        snapshot,
    } = story.enforce_app().await;
    let analysis = app.analysis.clone().unwrap();
    assert_eq!(analysis.used_actions, APP_USES.len() as u64, "{analysis:?}");
    assert_eq!(analysis.denied_attempts, 2, "one denied ListRoles a day");
    let proposal = app.proposal.clone().unwrap();
    assert_eq!(proposal.adds, 0);
    assert_eq!(app.applied.as_ref().unwrap().revision, proposal.revision);
    // Objects under a year folder are granted for next year too, and the status says why.
    let orders = (proposal.generalized.iter())
        .find(|g| g.resource == "arn:aws:s3:::orders/*")
        .unwrap_or_else(|| panic!("{:?}", proposal.generalized));
    assert_eq!(orders.because, ["date segments"]);
    assert_eq!(orders.actions, ["s3:GetObject", "s3:PutObject"]);
    // The role's effective access is exactly what it used, on what it used it on.
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
        ("s3:PutObject", "arn:aws:s3:::orders/2027/c.json"),
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
    // The original state was saved first: AdministratorAccess and the inline policy.
    assert!(
        snapshot["inline"]["s3-all"]
            .as_str()
            .unwrap()
            .contains("s3:*")
    );
    let recorded = reasons(&events(&kube, NS, "app").await);
    assert!(
        recorded.contains("ProposalReady"),
        "ProposalReady not in {recorded:?}"
    );

    // Drift: AdministratorAccess attached out of band is seen and taken off again.
    let mut stream = watcher(
        roles.clone(),
        watcher::Config::default().fields("metadata.name=app"),
    )
    .applied_objects()
    .boxed();
    // The watch is established once it has delivered `app` as it is now.
    stream.try_next().await.unwrap().expect("app is listed");
    let drift_seen = tokio::spawn(async move {
        while let Some(object) = stream.try_next().await.unwrap() {
            let status = object.status.unwrap_or_default();
            if condition(&status, "Drifted").is_some_and(|(s, _)| s == "True") {
                return status;
            }
        }
        unreachable!("the watch ended")
    });
    let attached_at = Instant::now();
    story.attach_admin_out_of_band().await;
    watch::poll(
        "Drifted=True",
        Duration::from_secs(60),
        Duration::from_millis(100),
        async || match drift_seen.is_finished() {
            true => Ok(()),
            false => Err("the watch has not seen it".to_string()),
        },
    )
    .await;
    let drifted = drift_seen.await.unwrap();
    let message = condition_message(&drifted, "Drifted");
    assert!(
        message.contains("AdministratorAccess attached out of band"),
        "{message}"
    );
    story.drift_reverted().await;
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
    story
        .wait_for("app", "InSync again", |s| {
            condition(s, "InSync") == Some(("True", "InSync"))
        })
        .await;

    // Manual approval: a proposal, and no write until its revision is approved. The operator
    // reaches this role through STS (assumeRoleArn), as for another account.
    let (revision, live) = story
        .propose_worker(
            "  assumeRoleArn: arn:aws:iam::123456789012:role/iam-tailor-access\n  \
             lastAccessed: {required: false}\n",
        )
        .await;
    assert_eq!(live.inline.len(), 1);
    let worker = story
        .roles
        .get_status("worker")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(worker.backup.is_none(), "no backup before the first write");
    story.approve_worker(&revision).await;

    // Reported on the resource: an invalid spec, a missing role.
    story
        .create(
            "both",
            "  roleName: app\n  roleArn: arn:aws:iam::123456789012:role/app\n  \
             cloudTrail: {s3: {bucket: org-trail-logs}}\n",
        )
        .await;
    story
        .create(
            "ghost",
            "  roleName: ghost\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n",
        )
        .await;
    story
        .wait_for("both", "InvalidSpec", |s| {
            condition(s, "Ready") == Some(("False", "InvalidSpec"))
        })
        .await;
    story
        .wait_for("ghost", "RoleNotFound", |s| {
            condition(s, "Ready") == Some(("False", "RoleNotFound"))
        })
        .await;
    // A trail bucket that does not exist: reported as needing someone to act
    // (CloudTrailAccessFailed, retried only after 10 minutes); a failure that repeats reads the
    // same, so it writes no new status (which would reconcile at once).
    story
        .create(
            "nobucket",
            "  roleName: viewer\n  cloudTrail: {s3: {bucket: no-such-trail-bucket}}\n",
        )
        .await;
    let failing = story
        .wait_for("nobucket", "CloudTrailAccessFailed", |s| {
            condition(s, "Ready") == Some(("False", "CloudTrailAccessFailed"))
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
    story.delete_and_restore_app().await;
    let ours = aws_iam
        .get_policy()
        .policy_arn(format!("arn:aws:iam::{ACCOUNT}:policy/iam-tailor-app"))
        .send()
        .await;
    assert!(ours.is_err(), "iam-tailor-app deleted");
    eprintln!("operator story: {:?}", started.elapsed());
}
