//! The never-widen promise under attack, end to end: the `iam-tailor controller` binary against
//! a real kube-apiserver and moto. Each step is an attack from issue 10; after each, the role is
//! judged with the evaluator over its live documents (never wider than before) and with plain
//! assertions on what is attached.
//!
//! - `app`: `attachedPolicies: Keep` + `inlinePolicies: Delete` beside an inline Deny fencing the
//!   kept `s3:*`: the fence stays.
//! - `worker`: a Deny added out of band (the console's `AWSRevokeOlderSessions`) during drift
//!   revert: the revert runs, the Deny stays.
//! - `app-twin`: a second resource on `app`'s role (by ARN): the role is claimed, nothing
//!   happens.
//! - `steal-ledger`, `steal-untagged`: roles tagged for another namespace, or not for
//!   iam-tailor: refused before anything but GetRole.
//! - `fresh`, `extra-*`: the cluster operators' tenancy configuration narrows the tags: a role
//!   outside its ARN patterns, Enforce where it allows none, an access role without its
//!   ExternalId are refused; with the ExternalId's Secret the access role is used.
//! - `doomed-app`: its namespace deleted with deletionPolicy Restore: the originals come back
//!   and the deletion finishes.
//! - `viewer`: `roleName` edited after apply to point at another broad role: nothing is written
//!   to it; then its backup rewritten to add a backdoor before a delete with Restore: the
//!   deletion waits, and once the backup is put back it restores the pinned role exactly.
//! - `viewer-again`: a backup planted before its first write is never adopted: nothing is
//!   written.

use crate::operator_env;
use crate::watch;

use iam_tailor::controller::LeastPrivilegeRole;
use iam_tailor::controller::reconcile::BACKUP_KEY;
use iam_tailor::policy::context::Context;
use iam_tailor::policy::eval::{Decision, PolicySet, Request};
use iam_tailor::role::{BackupSnapshot, LiveRole};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_env::{
    ACCOUNT, ADMIN, Cluster, NS, broad_role, broad_role_for, condition, condition_message,
    create_namespace, create_until_in_sync, events, lpr, put_trail, read, reasons, wait_event,
    wait_event_note, wait_for, wait_gone,
};
use std::time::Duration;

const FENCE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#;
const REVOKE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}}]}"#;

/// Requests across the services the roles touch, with and without the condition keys the
/// policies use.
fn requests() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for action in [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteBucket",
        "s3:ListBucket",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "dynamodb:GetItem",
        "iam:CreateUser",
        "iam:PassRole",
        "ec2:RunInstances",
    ] {
        for resource in [
            "arn:aws:s3:::orders".to_string(),
            "arn:aws:s3:::orders/2026/a.json".to_string(),
            "arn:aws:s3:::payroll/salaries.csv".to_string(),
            format!("arn:aws:sqs:us-east-1:{ACCOUNT}:orders"),
            format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"),
            format!("arn:aws:iam::{ACCOUNT}:role/admin"),
            "*".to_string(),
        ] {
            out.push((action, resource));
        }
    }
    out
}

fn decide(role: &LiveRole, action: &str, resource: &str, context: &Context) -> Decision {
    let mut set = PolicySet::builder();
    for document in role.documents() {
        set = set.identity(document);
    }
    set.build()
        .evaluate(&Request {
            action,
            resource,
            principal: None,
            context,
        })
        .decision
}

/// Every sampled request `after` allows, `before` allowed (with and without an old session).
fn assert_never_wider(before: &LiveRole, after: &LiveRole) {
    let fresh = Context::new();
    let mut old_session = Context::new();
    old_session.insert("aws:TokenIssueTime", "2025-06-01T00:00:00Z");
    for context in [&fresh, &old_session] {
        for (action, resource) in requests() {
            if decide(after, action, &resource, context) == Decision::Allowed {
                assert_eq!(
                    decide(before, action, &resource, context),
                    Decision::Allowed,
                    "{action} on {resource} is allowed now and was not before:\nbefore {before:#?}\nafter {after:#?}"
                );
            }
        }
    }
}

/// The attached policies' names, sorted.
fn names(role: &LiveRole) -> Vec<&str> {
    let mut names: Vec<&str> = role.attached.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn attacks_on_never_widen() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let iam = aws.iam();
    for role in ["app", "worker", "viewer", "payments-prod"] {
        broad_role(&iam, role).await;
    }
    iam.put_role_policy()
        .role_name("app")
        .policy_name("fence")
        .policy_document(FENCE)
        .send()
        .await
        .unwrap();
    put_trail(&aws.s3()).await;
    let original = |role: &'static str| {
        let iam = iam.clone();
        async move { read(&iam, role).await }
    };
    let (app_before, worker_before, viewer_before, victim_before) = (
        original("app").await,
        original("worker").await,
        original("viewer").await,
        original("payments-prod").await,
    );
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let enforce = |role: &str, extra: &str| {
        lpr(
            role,
            &format!(
                "  roleName: {role}\n  mode: Enforce\n  approval: Automatic\n  \
                 cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n{extra}"
            ),
        )
    };
    for resource in [
        enforce(
            "app",
            "  attachedPolicies: Keep\n  inlinePolicies: Delete\n",
        ),
        enforce("worker", "  drift: {interval: 2s, action: Revert}\n"),
        enforce("viewer", ""),
    ] {
        roles
            .create(&PostParams::default(), &resource)
            .await
            .unwrap();
    }
    let in_sync = |s: &iam_tailor::controller::LeastPrivilegeRoleStatus| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    };

    // 1. Keep + Delete beside a fencing Deny: the Allow-only inline policy goes, the fence stays.
    let app = wait_for(&roles, "app", "the apply", in_sync).await;
    let live = read(&iam, "app").await;
    assert_eq!(
        live.inline.keys().collect::<Vec<_>>(),
        ["fence"],
        "s3-all deleted, fence kept"
    );
    assert_eq!(names(&live), ["AdministratorAccess", "iam-tailor-app"]);
    assert_eq!(
        decide(
            &live,
            "s3:DeleteBucket",
            "arn:aws:s3:::orders",
            &Context::new()
        ),
        Decision::ExplicitlyDenied
    );
    assert_never_wider(&app_before, &live);
    assert_eq!(
        condition(&app, "Drifted"),
        Some(("True", "DenyAddedOutOfBand"))
    );
    assert!(reasons(&events(&kube, NS, "app").await).contains("DenyAddedOutOfBand"));

    // 2. During drift revert, a Deny added out of band stays while the real drift is reverted.
    wait_for(&roles, "worker", "the apply", in_sync).await;
    let applied = read(&iam, "worker").await;
    assert_eq!(names(&applied), ["iam-tailor-worker"]);
    iam.put_role_policy()
        .role_name("worker")
        .policy_name("AWSRevokeOlderSessions")
        .policy_document(REVOKE)
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("worker")
        .policy_arn(ADMIN)
        .send()
        .await
        .unwrap();
    let with_deny = read(&iam, "worker").await;
    // The revert of the AdministratorAccess attach is the signal that drift handling ran.
    watch::poll(
        "the revert of the attach",
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || match read(&iam, "worker").await.attached {
            attached if attached.len() == 1 => Ok(()),
            attached => Err(format!("attached: {attached:?}")),
        },
    )
    .await;
    let worker = wait_for(&roles, "worker", "the kept Deny reported", |s| {
        condition(s, "Drifted") == Some(("True", "DenyAddedOutOfBand"))
    })
    .await;
    let live = read(&iam, "worker").await;
    assert_eq!(
        live.inline.keys().collect::<Vec<_>>(),
        ["AWSRevokeOlderSessions"]
    );
    assert_never_wider(&with_deny, &live);
    assert_never_wider(&worker_before, &live);
    assert_eq!(condition(&worker, "Ready"), Some(("True", "Ready")));

    // 3. roleName edited after apply to another role: reported, nothing written to either.
    wait_for(&roles, "viewer", "the apply", in_sync).await;
    let viewer_applied = read(&iam, "viewer").await;
    assert_never_wider(&viewer_before, &viewer_applied);
    let edited = roles
        .patch(
            "viewer",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"roleName": "payments-prod"}})),
        )
        .await
        .unwrap();
    let generation = edited.metadata.generation;
    let viewer = wait_for(&roles, "viewer", "RoleChanged", |s| {
        s.observed_generation == generation
            && condition(s, "Ready") == Some(("False", "RoleChanged"))
    })
    .await;
    assert!(
        viewer.role.as_ref().unwrap().arn.ends_with(":role/viewer"),
        "{viewer:#?}"
    );
    // The status write for the new generation came after the operator looked at the role.
    assert_eq!(read(&iam, "payments-prod").await, victim_before);
    assert_eq!(read(&iam, "viewer").await, viewer_applied);
    assert!(reasons(&events(&kube, NS, "viewer").await).contains("RoleChanged"));

    // 5 (before 4, while `app` is managed). A second resource on the same role, spelt as an
    // ARN: the role is claimed, so it writes nothing.
    let claimed = read(&iam, "app").await;
    let owner = roles.get("app").await.unwrap().metadata.uid.unwrap();
    assert_eq!(claimed.claimed_by(), Some(owner.as_str()));
    roles
        .create(
            &PostParams::default(),
            &lpr(
                "app-twin",
                &format!(
                    "  roleArn: arn:aws:iam::{ACCOUNT}:role/app\n  mode: Enforce\n  \
                     approval: Automatic\n  cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n"
                ),
            ),
        )
        .await
        .unwrap();
    let twin = wait_for(&roles, "app-twin", "RoleClaimed", |s| {
        condition(s, "Ready") == Some(("False", "RoleClaimed"))
    })
    .await;
    assert!(twin.analysis.is_none(), "the other's activity is not read");
    assert_eq!(read(&iam, "app").await, claimed);

    // 6. Tenancy: a role its owner gave to another namespace, and one never given to
    // iam-tailor, are neither read nor written from this namespace.
    broad_role_for(&iam, "ledger", Some("finance")).await;
    broad_role_for(&iam, "untagged", None).await;
    let (ledger_before, untagged_before) =
        (read(&iam, "ledger").await, read(&iam, "untagged").await);
    for (name, role) in [("steal-ledger", "ledger"), ("steal-untagged", "untagged")] {
        let spec = format!(
            "  roleName: {role}\n  mode: Enforce\n  approval: Automatic\n  \
             cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n"
        );
        roles
            .create(&PostParams::default(), &lpr(name, &spec))
            .await
            .unwrap();
    }
    for (name, why) in [
        ("steal-ledger", "namespace finance, not payments"),
        (
            "steal-untagged",
            "not tagged iam-tailor.dev/managed-role=true",
        ),
    ] {
        let refused = wait_for(&roles, name, "RoleNotPermitted", |s| {
            condition(s, "Ready") == Some(("False", "RoleNotPermitted"))
        })
        .await;
        let message = condition_message(&refused, "Ready");
        assert!(message.contains(why), "{message}");
        assert!(refused.analysis.is_none(), "no activity read");
        assert!(refused.role.is_none(), "not pinned");
    }
    assert_eq!(read(&iam, "ledger").await, ledger_before);
    assert_eq!(read(&iam, "untagged").await, untagged_before);

    // 4. The backup rewritten (as only someone with rights in the operator's namespace could:
    // tenants have none there) to put a backdoor on the role at Restore: deletion waits, and
    // the role gets nothing. With the backup put back, deletion restores the pinned role,
    // though the spec now names another.
    roles
        .patch(
            "viewer",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"deletionPolicy": "Restore"}})),
        )
        .await
        .unwrap();
    let recorded = viewer.backup.clone().expect("viewer's backup");
    assert_ne!(
        recorded.namespace, NS,
        "backups live outside the tenant namespace"
    );
    let backups: Api<ConfigMap> = Api::namespaced(kube.clone(), &recorded.namespace);
    let original = backups.get(&recorded.config_map).await.unwrap();
    let json = original.data.as_ref().unwrap()[BACKUP_KEY].clone();
    let mut forged: serde_json::Value = serde_json::from_str(&json).unwrap();
    forged["inline"]["backdoor"] = serde_json::Value::String(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
            .to_string(),
    );
    let put = |json: String| {
        let backups = backups.clone();
        let name = recorded.config_map.clone();
        async move {
            let patch = serde_json::json!({"data": {BACKUP_KEY: json}});
            backups
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    put(serde_json::to_string_pretty(&forged).unwrap()).await;
    roles.delete("viewer", &Default::default()).await.unwrap();
    wait_event(&kube, NS, "viewer", "a RestoreBlocked Event", |e| {
        e.reason.as_deref() == Some("RestoreBlocked")
    })
    .await;
    assert!(
        roles.get_opt("viewer").await.unwrap().is_some(),
        "deletion waits"
    );
    assert_eq!(read(&iam, "viewer").await, viewer_applied, "no backdoor");
    assert_eq!(read(&iam, "payments-prod").await, victim_before);
    put(json).await;
    // A change to the resource makes the operator look again (a blocked restore is otherwise
    // retried every 10 minutes).
    roles
        .patch(
            "viewer",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"retry": "1"}}})),
        )
        .await
        .unwrap();
    wait_gone(&roles, "viewer").await;
    assert_eq!(
        read(&iam, "viewer").await,
        viewer_before,
        "restored exactly"
    );
    assert_eq!(read(&iam, "payments-prod").await, victim_before);
    assert!(
        backups
            .get_opt(&recorded.config_map)
            .await
            .unwrap()
            .is_none()
    );

    // 4b. A backup made before the resource's first write (by someone with rights in the
    // operator's namespace, who learnt the resource's uid) is never adopted: it does not hold
    // the role as it is, so nothing at all is written, not even the claim.
    // `viewer` is back as it was, claim released: a new resource for it.
    let observe = "  roleName: viewer\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    roles
        .create(&PostParams::default(), &lpr("viewer-again", observe))
        .await
        .unwrap();
    wait_for(&roles, "viewer-again", "the analysis", |s| {
        condition(s, "Analyzed").is_some_and(|(status, _)| status == "True")
    })
    .await;
    let uid = roles
        .get("viewer-again")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let mut forged: serde_json::Value =
        serde_json::from_str(&BackupSnapshot::of(&viewer_before).to_json()).unwrap();
    forged["inline"]["backdoor"] = serde_json::Value::String(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
            .to_string(),
    );
    let planted: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("iam-tailor-backup-{uid}")},
        "data": {BACKUP_KEY: forged.to_string()},
    }))
    .unwrap();
    backups
        .create(&PostParams::default(), &planted)
        .await
        .unwrap();
    let enforce_patch = serde_json::json!({"spec": {"mode": "Enforce", "approval": "Automatic"}});
    roles
        .patch(
            "viewer-again",
            &PatchParams::default(),
            &Patch::Merge(enforce_patch),
        )
        .await
        .unwrap();
    let again = wait_for(&roles, "viewer-again", "the refusal", |s| {
        condition(s, "InSync").is_some_and(|(_, reason)| reason == "BackupMismatch")
    })
    .await;
    assert!(again.backup.is_none(), "the planted backup is not recorded");
    assert_eq!(
        read(&iam, "viewer").await,
        viewer_before,
        "nothing written, no claim"
    );
    roles
        .delete("viewer-again", &Default::default())
        .await
        .unwrap();

    // 8. Namespace deletion with Restore: the namespace goes Terminating, and what its
    // controller would do (this apiserver runs none) is done by hand: every ConfigMap and then
    // the resource deleted. The backup lives elsewhere, so the role gets its originals back
    // and the deletion finishes.
    create_namespace(&kube, "doomed").await;
    broad_role_for(&iam, "doomed-app", Some("doomed")).await;
    let doomed_before = read(&iam, "doomed-app").await;
    let doomed: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), "doomed");
    doomed
        .create(
            &PostParams::default(),
            &lpr(
                "doomed-app",
                "  roleName: doomed-app\n  mode: Enforce\n  approval: Manual\n  \
                 deletionPolicy: Restore\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n  \
                 keep: [{actions: [\"s3:GetObject\"], reason: the test's one permission}]\n",
            ),
        )
        .await
        .unwrap();
    // No activity in the trail: a human approves the kept permission.
    let proposed = wait_for(&doomed, "doomed-app", "a proposal", |s| {
        s.proposal.is_some()
    })
    .await;
    let revision = proposed.proposal.unwrap().revision;
    doomed
        .patch(
            "doomed-app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"approvedRevision": revision}})),
        )
        .await
        .unwrap();
    wait_for(&doomed, "doomed-app", "the apply", in_sync).await;
    let narrowed = read(&iam, "doomed-app").await;
    assert_ne!(narrowed.attached, doomed_before.attached, "narrowed first");
    Api::<k8s_openapi::api::core::v1::Namespace>::all(kube.clone())
        .delete("doomed", &Default::default())
        .await
        .unwrap();
    let tenant_maps: Api<ConfigMap> = Api::namespaced(kube.clone(), "doomed");
    tenant_maps
        .delete_collection(&Default::default(), &Default::default())
        .await
        .unwrap();
    doomed
        .delete("doomed-app", &Default::default())
        .await
        .unwrap();
    wait_gone(&doomed, "doomed-app").await;
    assert_eq!(
        read(&iam, "doomed-app").await,
        doomed_before,
        "originals back"
    );

    // 7. The cluster operators' tenancy configuration, beside the tags: namespace payments may
    // only look at roles app*, through one access role whose ExternalId is in a Secret.
    let access = format!("arn:aws:iam::{ACCOUNT}:role/iam-tailor-access");
    let config = format!(
        "rules:\n  - namespaces: [payments]\n    roleArns: [\"arn:aws:iam::{ACCOUNT}:role/app*\"]\n    \
         accessRoles: [{{arn: \"{access}\", externalIdKey: payments}}]\n"
    );
    let tenancy: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "iam-tailor-tenancy"},
        "data": {"tenancy.yaml": config},
    }))
    .unwrap();
    backups
        .create(&PostParams::default(), &tenancy)
        .await
        .unwrap();
    broad_role(&iam, "fresh").await;
    broad_role(&iam, "app-extra").await;
    let (fresh_before, extra_before) = (read(&iam, "fresh").await, read(&iam, "app-extra").await);
    let spec = |role: &str, mode: &str, extra: &str| {
        format!(
            "  roleName: {role}\n  mode: {mode}\n  approval: Automatic\n  \
             cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n{extra}"
        )
    };
    for (name, spec) in [
        ("fresh", spec("fresh", "Observe", "")),
        ("extra-enforce", spec("app-extra", "Enforce", "")),
        (
            "extra-via-access",
            spec(
                "app-extra",
                "Observe",
                &format!("  assumeRoleArn: {access}\n"),
            ),
        ),
    ] {
        roles
            .create(&PostParams::default(), &lpr(name, &spec))
            .await
            .unwrap();
    }
    for (name, why) in [
        ("fresh", "lets namespace payments target no role"),
        ("extra-enforce", "does not let namespace payments Enforce"),
        ("extra-via-access", "has no key payments"),
    ] {
        let refused = wait_for(&roles, name, "RoleNotPermitted", |s| {
            condition(s, "Ready") == Some(("False", "RoleNotPermitted"))
        })
        .await;
        let message = condition_message(&refused, "Ready");
        assert!(message.contains(why), "{name}: {message}");
    }
    // With the ExternalId in place, the access role is used (moto does not check the id).
    let external_ids: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "iam-tailor-external-ids"},
        "stringData": {"payments": "payments-external-id"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(kube.clone(), &recorded.namespace)
        .create(&PostParams::default(), &external_ids)
        .await
        .unwrap();
    roles
        .patch(
            "extra-via-access",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"retry": "1"}}})),
        )
        .await
        .unwrap();
    wait_for(&roles, "extra-via-access", "the analysis", |s| {
        condition(s, "Analyzed") == Some(("True", "Analyzed"))
    })
    .await;
    assert_eq!(read(&iam, "fresh").await, fresh_before);
    assert_eq!(read(&iam, "app-extra").await, extra_before);
}

/// With `--require-tenancy` (as the chart starts it), the tenancy configuration fails closed:
/// deleting the ConfigMap stops every write (an out-of-band AdministratorAccess stays until it
/// is back), a rule without the bucket keeps a resource from reading it, and the operator will
/// not watch its own backup namespace.
#[tokio::test]
async fn a_lost_tenancy_configuration_stops_every_write() {
    const OPS: &str = "iam-tailor-ops";
    let cluster = Cluster::start().await;
    let (iam, kube) = (cluster.aws.iam(), cluster.kube.clone());
    create_namespace(&kube, OPS).await;
    let refused = cluster.operator(&["--namespace", OPS, "--backup-namespace", OPS], &[]);
    let mut refused = refused;
    refused.expect_exit();
    assert!(!refused.exited(Duration::from_secs(30)).await.success());
    assert!(
        refused.log().contains("is also the backup namespace"),
        "{}",
        refused.log_tail()
    );

    let config_maps: Api<ConfigMap> = Api::namespaced(kube.clone(), OPS);
    let put_tenancy = |text: &str| {
        let config_maps = config_maps.clone();
        let tenancy: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "iam-tailor-tenancy"},
            "data": {"tenancy.yaml": text},
        }))
        .unwrap();
        async move {
            let _ = config_maps
                .delete("iam-tailor-tenancy", &Default::default())
                .await;
            config_maps
                .create(&PostParams::default(), &tenancy)
                .await
                .unwrap();
        }
    };
    put_tenancy("tagsOnly: true\n").await;
    broad_role(&iam, "app").await;
    put_trail(&cluster.aws.s3()).await;
    let operator = cluster.operator(&["--backup-namespace", OPS, "--require-tenancy"], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n  drift: {interval: 2s}\n";
    create_until_in_sync(&roles, "app", spec).await;
    let narrowed = read(&iam, "app").await;
    assert!(!narrowed.attached.iter().any(|a| a.arn == ADMIN));
    let mut nudges = 0;
    let mut nudge = async || {
        nudges += 1;
        roles
            .patch(
                "app",
                &PatchParams::default(),
                &Patch::Merge(
                    serde_json::json!({"metadata": {"annotations": {"nudge": nudges.to_string()}}}),
                ),
            )
            .await
            .unwrap();
    };

    // The ConfigMap is lost: nothing is permitted, and the resource says why.
    config_maps
        .delete("iam-tailor-tenancy", &Default::default())
        .await
        .unwrap();
    nudge().await;
    let stopped = wait_for(&roles, "app", "RoleNotPermitted", |s| {
        condition(s, "Ready") == Some(("False", "RoleNotPermitted"))
    })
    .await;
    let message = condition_message(&stopped, "Ready");
    assert!(message.contains("--require-tenancy"), "{message}");
    // Drift now is not reverted: the positive signal is two more reconciles of app.
    iam.attach_role_policy()
        .role_name("app")
        .policy_arn(ADMIN)
        .send()
        .await
        .unwrap();
    let reconciled = |log: &str| {
        log.lines()
            .filter(|l| l.contains(r#""message":"reconciled""#) && l.contains(r#""name":"app""#))
            .count()
    };
    let before = reconciled(&operator.log());
    nudge().await;
    watch::poll(
        "two more reconciles of app",
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || match reconciled(&operator.log()) {
            n if n >= before + 2 => Ok(()),
            n => {
                nudge().await;
                Err(format!("{} reconciles since", n - before))
            }
        },
    )
    .await;
    assert!(
        read(&iam, "app")
            .await
            .attached
            .iter()
            .any(|a| a.arn == ADMIN),
        "nothing is written without the tenancy configuration"
    );

    // Rules that give the namespace ClusterTrails only: its inline bucket is not read.
    put_tenancy(&format!(
        "rules:\n  - namespaces: [{NS}]\n    roleArns: [\"*\"]\n    enforce: true\n    trailBuckets: []\n"
    ))
    .await;
    nudge().await;
    let refused = wait_for(&roles, "app", "the bucket refused", |s| {
        condition_message(s, "Ready").contains("bucket org-trail-logs")
    })
    .await;
    assert_eq!(
        condition(&refused, "Ready"),
        Some(("False", "RoleNotPermitted"))
    );

    // Back to tags only: the drift is reverted.
    put_tenancy("tagsOnly: true\n").await;
    nudge().await;
    watch::poll(
        "AdministratorAccess taken off again",
        Duration::from_secs(90),
        Duration::from_millis(200),
        async || match read(&iam, "app").await.attached {
            attached if attached.iter().any(|a| a.arn == ADMIN) => {
                Err("still attached".to_string())
            }
            _ => Ok(()),
        },
    )
    .await;
}

/// Retain, then a new resource on the same role, then Restore: the role ends as it was before
/// iam-tailor, not as the first resource left it. Retain keeps the first backup by RoleId;
/// the second resource adopts it (with nothing else to write) and its Restore puts it back,
/// then lets both ConfigMaps go.
#[tokio::test]
async fn retain_then_a_new_resource_then_restore_ends_with_the_true_originals() {
    const OPS: &str = "iam-tailor-ops";
    let cluster = Cluster::start().await;
    let (iam, kube) = (cluster.aws.iam(), cluster.kube.clone());
    create_namespace(&kube, OPS).await;
    broad_role(&iam, "app").await;
    put_trail(&cluster.aws.s3()).await;
    let original = read(&iam, "app").await;
    let _operator = cluster.operator(&["--backup-namespace", OPS], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = |policy: &str| {
        format!(
            "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
             cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n  deletionPolicy: {policy}\n"
        )
    };
    let first = roles
        .create(&PostParams::default(), &lpr("first", &spec("Retain")))
        .await
        .unwrap();
    wait_for(&roles, "first", "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    let narrowed = read(&iam, "app").await;
    assert_ne!(narrowed.attached, original.attached, "narrowed first");

    roles.delete("first", &Default::default()).await.unwrap();
    wait_gone(&roles, "first").await;
    assert_eq!(
        read(&iam, "app").await.attached,
        narrowed.attached,
        "Retain"
    );
    let backups: Api<ConfigMap> = Api::namespaced(kube.clone(), OPS);
    let kept = format!(
        "iam-tailor-original-{}",
        original.role_id.to_ascii_lowercase()
    );
    assert!(backups.get_opt(&kept).await.unwrap().is_some(), "{kept}");
    let first_backup = format!("iam-tailor-backup-{}", first.metadata.uid.unwrap());
    assert!(backups.get_opt(&first_backup).await.unwrap().is_none());

    // The second resource finds the role already narrowed to its proposal: it adopts the
    // original all the same.
    roles
        .create(&PostParams::default(), &lpr("second", &spec("Restore")))
        .await
        .unwrap();
    let second = wait_for(&roles, "second", "the adopted backup", |s| {
        s.backup.is_some() && condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    operator_env::wait_event(&kube, NS, "second", "OriginalAdopted", |e| {
        e.reason.as_deref() == Some("OriginalAdopted")
    })
    .await;
    let second_backup = second.backup.unwrap().config_map;
    roles.delete("second", &Default::default()).await.unwrap();
    wait_gone(&roles, "second").await;
    let mut back = read(&iam, "app").await;
    back.tags.remove(iam_tailor::role::CLAIM_TAG);
    let mut expected = original.clone();
    expected.tags.remove(iam_tailor::role::CLAIM_TAG);
    assert_eq!(back, expected, "the true originals");
    for gone in [kept, second_backup] {
        assert!(backups.get_opt(&gone).await.unwrap().is_none(), "{gone}");
    }
}

/// A role deleted and created again under its name, after its first resource let go with
/// Retain: the earlier role's `iam-tailor-app` is left over, tagged for the old RoleId. The new
/// resource names the new role's policy for its RoleId (it used to fail on the leftover for
/// ever), reports the leftover, never touches it, and its Restore removes only its own.
#[tokio::test]
async fn a_role_created_again_gets_policies_of_its_own() {
    let cluster = Cluster::start().await;
    let (iam, kube) = (cluster.aws.iam(), cluster.kube.clone());
    broad_role(&iam, "app").await;
    put_trail(&cluster.aws.s3()).await;
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = |policy: &str| {
        format!(
            "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
             cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n  deletionPolicy: {policy}\n"
        )
    };
    create_until_in_sync(&roles, "first", &spec("Retain")).await;
    let earlier = read(&iam, "app").await;
    let leftover = format!("arn:aws:iam::{ACCOUNT}:policy/iam-tailor-app");
    assert!(names(&earlier).contains(&"iam-tailor-app"), "{earlier:?}");
    roles.delete("first", &Default::default()).await.unwrap();
    wait_gone(&roles, "first").await;

    // The role goes (IAM wants it empty first) and comes back under its name, broad again.
    for a in &earlier.attached {
        (iam.detach_role_policy().role_name("app").policy_arn(&a.arn))
            .send()
            .await
            .unwrap();
    }
    for name in earlier.inline.keys() {
        (iam.delete_role_policy().role_name("app").policy_name(name))
            .send()
            .await
            .unwrap();
    }
    iam.delete_role().role_name("app").send().await.unwrap();
    broad_role(&iam, "app").await;
    let recreated = read(&iam, "app").await;
    assert_ne!(recreated.role_id, earlier.role_id);
    let leftover_document = || async {
        let version = iam.get_policy().policy_arn(&leftover).send().await.unwrap();
        version
            .policy()
            .unwrap()
            .default_version_id()
            .unwrap()
            .to_string()
    };
    let leftover_version = leftover_document().await;

    create_until_in_sync(&roles, "second", &spec("Restore")).await;
    let own = format!("iam-tailor-app@{}", recreated.role_id);
    let narrowed = read(&iam, "app").await;
    assert_eq!(names(&narrowed), [own.as_str()], "{narrowed:?}");
    let note = wait_event_note(&kube, NS, "second", "PolicyApplied").await;
    assert!(note.contains("iam-tailor-app is not this role's"), "{note}");
    assert_eq!(
        leftover_document().await,
        leftover_version,
        "the leftover is untouched"
    );

    roles.delete("second", &Default::default()).await.unwrap();
    wait_gone(&roles, "second").await;
    let mut back = read(&iam, "app").await;
    back.tags.remove(iam_tailor::role::CLAIM_TAG);
    assert_eq!(back, recreated, "the recreated role's originals");
    let own_arn = format!("arn:aws:iam::{ACCOUNT}:policy/{own}");
    let gone = iam.get_policy().policy_arn(&own_arn).send().await;
    assert!(gone.is_err(), "{own_arn} is deleted");
    assert_eq!(
        leftover_document().await,
        leftover_version,
        "the leftover stays"
    );
}

/// Restore and the customer-managed policies a role held, whose documents someone changed
/// after iam-tailor detached them: `app-data` (the role's alone, tagged restorable) gets its
/// backed-up document back as a new default version; `shared-data` (also attached to
/// `other`) is not rewritten, since that would change `other` too, and the Warning says so.
#[tokio::test]
async fn restore_puts_back_a_changed_customer_policy_that_changes_no_one_else() {
    const NARROWER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
    let cluster = Cluster::start().await;
    let (iam, kube) = (cluster.aws.iam(), cluster.kube.clone());
    broad_role(&iam, "app").await;
    broad_role_for(&iam, "other", None).await;
    put_trail(&cluster.aws.s3()).await;
    let restorable = aws_sdk_iam::types::Tag::builder()
        .key(iam_tailor::role::RESTORABLE_TAG)
        .value("true")
        .build()
        .unwrap();
    let mut policies = Vec::new();
    for (name, roles) in [
        ("app-data", &["app"][..]),
        ("shared-data", &["app", "other"]),
    ] {
        let created = (iam.create_policy().policy_name(name))
            .policy_document(operator_env::S3_ALL)
            .tags(restorable.clone())
            .send()
            .await
            .unwrap();
        let arn = created.policy().unwrap().arn().unwrap().to_string();
        for role in roles {
            (iam.attach_role_policy().role_name(*role).policy_arn(&arn))
                .send()
                .await
                .unwrap();
        }
        policies.push(arn);
    }
    let (app_data, shared_data) = (policies[0].clone(), policies[1].clone());
    let original = read(&iam, "app").await;
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n  deletionPolicy: Restore\n";
    create_until_in_sync(&roles, "app", spec).await;
    let narrowed = read(&iam, "app").await;
    assert!(
        !names(&narrowed).iter().any(|n| n.ends_with("-data")),
        "{narrowed:?}"
    );
    // Someone narrows both policies' documents out of band.
    for arn in &policies {
        (iam.create_policy_version().policy_arn(arn))
            .policy_document(NARROWER)
            .set_as_default(true)
            .send()
            .await
            .unwrap();
    }

    roles.delete("app", &Default::default()).await.unwrap();
    wait_gone(&roles, "app").await;
    let back = read(&iam, "app").await;
    let document = |role: &LiveRole, arn: &str| {
        let found = role.attached.iter().find(|a| a.arn == arn);
        found.map(|a| a.document.canonical_json())
    };
    assert_eq!(
        document(&back, &app_data),
        document(&original, &app_data),
        "the role's own policy holds its backed-up document again"
    );
    let narrower = iam_tailor::policy::Policy::parse(NARROWER).unwrap();
    assert_eq!(
        document(&back, &shared_data),
        Some(narrower.canonical_json()),
        "the shared policy is not rewritten"
    );
    assert_eq!(names(&back), names(&original));
    let note = wait_event_note(&kube, NS, "app", "PolicyNotRestored").await;
    assert!(
        note.contains(&shared_data) && note.contains("role/other") && !note.contains(&app_data),
        "{note}"
    );
}
