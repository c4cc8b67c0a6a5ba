//! Access Analyzer's checks as gates before an apply, end to end: the `iam-tailor controller`
//! binary against a real kube-apiserver and moto, Access Analyzer played by its test double
//! (its verdicts are canned: the double never analyses a policy). With
//! `spec.validation.accessAnalyzer`, each gate in turn blocks an Automatic apply — a
//! SECURITY_WARNING finding, a CheckNoNewAccess that disagrees with iam-tailor's own proof, a
//! CheckAccessNotGranted failure for `forbid` — until all pass and the role is narrowed.

use crate::access_analyzer_double;
use crate::operator_env;
use crate::signals;
use crate::watch;

use access_analyzer_double::{AccessAnalyzerDouble, Check, finding};
use iam_tailor::controller::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_env::{
    ADMIN, Cluster, NS, broad_role, condition, condition_message, events, lpr, put_trail, read,
    reasons, wait_for, wait_for_within,
};
use std::time::Duration;

fn approved_reason(s: &LeastPrivilegeRoleStatus) -> Option<&str> {
    condition(s, "Approved").map(|(_, reason)| reason)
}

/// Nothing was applied to `app`: AdministratorAccess is still attached.
async fn untouched(aws_iam: &aws_sdk_iam::Client) {
    let live = read(aws_iam, "app").await;
    assert!(
        live.attached.iter().any(|a| a.arn == ADMIN),
        "nothing applied: {live:#?}"
    );
}

#[tokio::test]
async fn each_access_analyzer_gate_blocks_an_apply() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    broad_role(&aws_iam, "app").await;
    put_trail(&aws.s3()).await;
    let double = AccessAnalyzerDouble::start();
    double.set_findings(vec![finding(
        "SECURITY_WARNING",
        "PASS_ROLE_WITH_STAR_IN_RESOURCE",
        "Using the iam:PassRole action with wildcards (*) in the resource can be overly permissive.",
        &["Statement", "0", "Resource"],
        (1, 120, 120),
        (1, 123, 123),
    )]);
    let _operator = cluster.operator(
        &[],
        &[("AWS_ENDPOINT_URL_ACCESSANALYZER", &double.endpoint)],
    );
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    roles
        .create(
            &PostParams::default(),
            &lpr(
                "app",
                "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                 cloudTrail: {s3: {bucket: org-trail-logs}}\n  forbid: [\"iam:*\"]\n  \
                 validation: {accessAnalyzer: true}\n",
            ),
        )
        .await
        .unwrap();
    // Each step changes what Access Analyzer answers, then the spec (so the proposal is
    // generated and checked again).
    let recheck = |spec: serde_json::Value| {
        let roles = roles.clone();
        async move {
            roles
                .patch(
                    "app",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "spec": spec })),
                )
                .await
                .unwrap();
        }
    };

    // ValidatePolicy: a SECURITY_WARNING blocks, and is shown in status.
    let app = wait_for(&roles, "app", "the findings gate", |s| {
        approved_reason(s) == Some("ValidationFindings")
    })
    .await;
    let validation = app.proposal.as_ref().unwrap().validation.clone().unwrap();
    assert_eq!(
        validation.findings[0].code,
        "PASS_ROLE_WITH_STAR_IN_RESOURCE"
    );
    assert_eq!(
        validation.findings[0].locations,
        ["Statement[0].Resource (1:120)"]
    );
    assert!(validation.no_new_access.passed);
    assert!(validation.access_not_granted.as_ref().unwrap().passed);
    assert_eq!(
        condition(&app, "Ready"),
        Some(("False", "ValidationFindings"))
    );
    let sent: Vec<String> = double.requests().iter().map(|r| r.path.clone()).collect();
    for path in [
        "/policy/validation",
        "/policy/check-no-new-access",
        "/policy/check-access-not-granted",
    ] {
        assert!(
            sent.iter().any(|p| p == path),
            "{path} not called: {sent:?}"
        );
    }
    let forbidden = double
        .requests()
        .into_iter()
        .find(|r| r.path == "/policy/check-access-not-granted")
        .unwrap();
    assert_eq!(forbidden.body["access"][0]["actions"][0], "iam:*");
    tokio::time::sleep(Duration::from_secs(1)).await;
    untouched(&aws_iam).await;

    // Allowing that code: CheckNoNewAccess now disagrees with iam-tailor's own proof.
    double.set_no_new_access(Check::Fail(vec![(
        "New access in the statement with index: 0.".into(),
        0,
    )]));
    recheck(serde_json::json!({"validation": {"allow": ["PASS_ROLE_WITH_STAR_IN_RESOURCE"]}}))
        .await;
    let app = wait_for(&roles, "app", "the disagreement", |s| {
        approved_reason(s) == Some("AccessAnalyzerDisagrees")
    })
    .await;
    let message = condition_message(&app, "Approved");
    assert!(
        message.contains("New access in the statement with index: 0."),
        "{message}"
    );
    assert!(reasons(&events(&kube, NS, "app").await).contains("AccessAnalyzerDisagrees"));
    untouched(&aws_iam).await;

    // CheckAccessNotGranted finds forbidden access.
    double.set_no_new_access(Check::Pass);
    double.set_access_not_granted(Check::Fail(vec![(
        "One or more of the listed actions or resources in the statement with index: 1.".into(),
        1,
    )]));
    recheck(serde_json::json!({"window": "89d"})).await;
    wait_for(&roles, "app", "the forbid gate", |s| {
        approved_reason(s) == Some("ForbiddenAccessGranted")
    })
    .await;
    untouched(&aws_iam).await;

    // Every gate passes: applied.
    double.set_access_not_granted(Check::Pass);
    recheck(serde_json::json!({"window": "88d"})).await;
    wait_for(&roles, "app", "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    let live = read(&aws_iam, "app").await;
    let attached: Vec<&str> = live.attached.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(attached, ["iam-tailor-app"]);
}

/// `spec.enforce.shadowFor`: the proposal waits out its shadow period, a call it would have
/// denied (made after it was proposed) restarts the period with a proposal that includes the
/// call, and only a proposal that shadowed its whole period without one is applied.
#[tokio::test]
async fn a_proposal_shadows_live_calls_before_it_is_applied() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    let s3 = aws.s3();
    broad_role(&aws_iam, "app").await;
    put_trail(&s3).await;
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    // Today's listing of the trail is reused for a while: the period outlasts it, so the
    // replay at its end lists the file put below. The period starts at the first analysis's
    // second and the listing is made later in it (seconds later on a loaded machine): the
    // margin is that lag's, not a rounding's.
    let period = iam_tailor::sources::ingest::LISTING_FRESH_FOR.as_secs() + 15;
    roles
        .create(
            &PostParams::default(),
            &lpr(
                "app",
                &format!(
                    "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                     cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n  \
                     enforce: {{shadowFor: {period}s}}\n"
                ),
            ),
        )
        .await
        .unwrap();
    let app = wait_for(&roles, "app", "the shadow period", |s| {
        approved_reason(s) == Some("ShadowPeriod")
    })
    .await;
    let first = app.proposal.clone().unwrap().revision;
    let shadow = app.shadow.clone().unwrap();
    assert_eq!(
        (shadow.revision.as_str(), shadow.restarts),
        (first.as_str(), 0)
    );
    assert!(
        condition_message(&app, "Approved").contains("is shadowing live calls since"),
        "{app:#?}"
    );
    untouched(&aws_iam).await;

    // After the proposal, the role publishes to a topic: its policies allow it, the proposal
    // does not.
    let now = k8s_openapi::jiff::Timestamp::now();
    let today = now.strftime("%Y-%m-%d").to_string();
    let topic = format!("arn:aws:sns:us-east-1:{}:alerts", operator_env::ACCOUNT);
    let publish = operator_env::record(
        "app",
        &now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "sns",
        "Publish",
        serde_json::json!({"topicArn": topic, "message": "m"}),
    );
    operator_env::put_trail_file(&s3, &today, "T0000Z_shadow", &[publish]).await;
    // Each step waits out a period of the operator's: the period and a margin, as the waits'
    // timeout.
    let step = Duration::from_secs(period + 90);
    let app = wait_for_within(&roles, "app", "the restart", step, |s| {
        s.shadow.as_ref().is_some_and(|s| s.restarts == 1)
    })
    .await;
    let shadow = app.shadow.clone().unwrap();
    assert_eq!(shadow.would_deny[0].action, "sns:Publish");
    assert_eq!(shadow.would_deny[0].resource, topic);
    let second = app.proposal.clone().unwrap();
    assert_ne!(second.revision, first);
    assert!(second.policy.contains("sns:Publish"), "{}", second.policy);
    let warned = events(&kube, NS, "app").await;
    assert!(reasons(&warned).contains("WouldDeny"), "{warned:#?}");
    untouched(&aws_iam).await;

    // The new proposal shadows its whole period without a would-be denial: applied.
    let app = wait_for_within(&roles, "app", "the apply", step, |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    assert_eq!(app.applied.unwrap().revision, second.revision);
    let shadow = app.shadow.unwrap();
    assert_eq!((shadow.revision, shadow.restarts), (second.revision, 1));
    assert!(shadow.calls >= 1, "the publish was replayed");
}

/// A status writer forges the shadow period's start a year back (with a replay just now):
/// believed, the gate would open at once. The status does not carry the operator's seal, so
/// the period starts again, a Warning says why, and nothing is applied.
#[tokio::test]
async fn a_forged_shadow_start_does_not_open_the_gate() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    broad_role(&aws_iam, "app").await;
    put_trail(&aws.s3()).await;
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n  enforce: {shadowFor: 1h}\n";
    roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    let app = wait_for(&roles, "app", "the shadow period", |s| {
        approved_reason(s) == Some("ShadowPeriod")
    })
    .await;
    assert!(app.seal.is_some(), "the operator seals what it writes");
    let began = app.shadow.clone().unwrap().since;

    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let forged = serde_json::json!({"status": {"shadow": {
        "since": "2025-12-01T00:00:00Z", "checkedAt": now,
    }}});
    roles
        .patch_status("app", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .unwrap();
    operator_env::wait_event(&kube, NS, "app", "the StatusNotSealed Warning", |e| {
        e.reason.as_deref() == Some("StatusNotSealed")
    })
    .await;
    let app = wait_for(&roles, "app", "the period started again", |s| {
        s.shadow
            .as_ref()
            .is_some_and(|sh| sh.since != "2025-12-01T00:00:00Z")
            && s.seal.is_some()
    })
    .await;
    assert!(
        app.shadow.as_ref().unwrap().since >= began,
        "a fresh start, not the forged one"
    );
    assert_eq!(approved_reason(&app), Some("ShadowPeriod"));
    untouched(&aws_iam).await;
}

/// `spec.rollbackTo`: a revision applied earlier is put back from the versions IAM keeps of
/// iam-tailor's policy (the status is never trusted for its content), says so in status and
/// an Event, and is held while the field is set; a revision IAM does not keep changes nothing.
#[tokio::test]
async fn a_rollback_puts_an_earlier_revision_back() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    broad_role(&aws_iam, "worker").await;
    put_trail(&aws.s3()).await;
    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let granted = |live: &iam_tailor::role::LiveRole| -> Vec<String> {
        let allowed = iam_tailor::policy::analysis::allowed_actions(&live.documents());
        allowed.into_iter().map(|a| a.action).collect()
    };
    roles
        .create(
            &PostParams::default(),
            &lpr(
                "worker",
                "  roleName: worker\n  mode: Enforce\n  approval: Manual\n  \
                 cloudTrail: {s3: {bucket: org-trail-logs}}\n  \
                 keep: [{actions: [\"s3:GetObject\"], resources: [\"arn:aws:s3:::reports/*\"], reason: quarterly}]\n",
            ),
        )
        .await
        .unwrap();
    let awaiting = |s: &LeastPrivilegeRoleStatus| approved_reason(s) == Some("AwaitingApproval");
    let in_sync_at = |revision: String| {
        move |s: &LeastPrivilegeRoleStatus| {
            s.applied.as_ref().is_some_and(|a| a.revision == revision)
                && condition(s, "InSync").is_some_and(|(status, _)| status == "True")
        }
    };
    let with_keep = wait_for(&roles, "worker", "a proposal", awaiting).await;
    let earlier = with_keep.proposal.unwrap().revision;
    patch_spec(&roles, serde_json::json!({"approvedRevision": earlier})).await;
    wait_for(
        &roles,
        "worker",
        "the first apply",
        in_sync_at(earlier.clone()),
    )
    .await;
    assert_eq!(
        granted(&read(&aws_iam, "worker").await),
        ["s3:GetObject", "sqs:ReceiveMessage"]
    );

    // The keep rule goes: a narrower proposal, approved and applied.
    patch_spec(&roles, serde_json::json!({"keep": null})).await;
    let narrower = wait_for(&roles, "worker", "a narrower proposal", |s| {
        awaiting(s) && s.proposal.as_ref().is_some_and(|p| p.revision != earlier)
    })
    .await;
    let later = narrower.proposal.unwrap().revision;
    patch_spec(&roles, serde_json::json!({"approvedRevision": later})).await;
    wait_for(
        &roles,
        "worker",
        "the second apply",
        in_sync_at(later.clone()),
    )
    .await;
    assert_eq!(
        granted(&read(&aws_iam, "worker").await),
        ["sqs:ReceiveMessage"]
    );

    // A revision IAM does not keep: refused by name, nothing written.
    let unknown = format!("sha256:{}", "0".repeat(64));
    patch_spec(&roles, serde_json::json!({"rollbackTo": unknown})).await;
    let refused = wait_for(&roles, "worker", "the refusal", |s| {
        approved_reason(s) == Some("RollbackNotFound")
    })
    .await;
    assert!(
        condition_message(&refused, "Approved").contains(&unknown),
        "{refused:#?}"
    );
    assert_eq!(refused.applied.unwrap().revision, later);
    assert_eq!(
        granted(&read(&aws_iam, "worker").await),
        ["sqs:ReceiveMessage"]
    );

    // The earlier revision: back from IAM's versions, wider than now, within the original.
    patch_spec(&roles, serde_json::json!({"rollbackTo": earlier})).await;
    let rolled = wait_for(&roles, "worker", "the rollback", |s| {
        in_sync_at(earlier.clone())(s) && approved_reason(s) == Some("RolledBack")
    })
    .await;
    let applied = rolled.applied.unwrap();
    assert!(applied.rollback, "status.applied says it was a rollback");
    assert_eq!(rolled.history[0].revision, later);
    assert_eq!(
        granted(&read(&aws_iam, "worker").await),
        ["s3:GetObject", "sqs:ReceiveMessage"]
    );
    let recorded = events(&kube, NS, "worker").await;
    let note = (recorded.iter())
        .find(|e| e.reason.as_deref() == Some("RolledBack"))
        .and_then(|e| e.note.clone())
        .unwrap_or_else(|| panic!("a RolledBack Event: {recorded:#?}"));
    assert!(note.contains(&earlier) && note.contains(&later), "{note}");
}

/// Merges `spec` into `worker`'s spec.
async fn patch_spec(roles: &Api<LeastPrivilegeRole>, spec: serde_json::Value) {
    let patch = serde_json::json!({ "spec": spec });
    roles
        .patch("worker", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// `spec.onAccessDenied`: after the apply, the role is refused a call its original policies
/// allowed (S3 DeleteObject) and one they never allowed (iam:CreateUser). Exactly the first
/// is given back, with its event id, a Warning Event and the metric; the second is reported.
#[tokio::test]
async fn a_refused_call_is_given_back_and_a_never_held_one_is_not() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    let s3 = aws.s3();
    // Originally S3 only: AdministratorAccess taken off before iam-tailor sees the role.
    broad_role(&aws_iam, "app").await;
    (aws_iam
        .detach_role_policy()
        .role_name("app")
        .policy_arn(ADMIN))
    .send()
    .await
    .unwrap();
    put_trail(&s3).await;
    let operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    roles
        .create(
            &PostParams::default(),
            &lpr(
                "app",
                "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                 cloudTrail: {s3: {bucket: org-trail-logs}}\n  drift: {interval: 2s}\n",
            ),
        )
        .await
        .unwrap();
    let applied = wait_for(&roles, "app", "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    let granted = |live: &iam_tailor::role::LiveRole| -> Vec<String> {
        let allowed = iam_tailor::policy::analysis::allowed_actions(&live.documents());
        allowed.into_iter().map(|a| a.action).collect()
    };
    let before = granted(&read(&aws_iam, "app").await);
    assert!(
        !before.contains(&"s3:DeleteObject".to_string()),
        "{before:?}"
    );
    assert_eq!(applied.restore, None);

    // After the apply: two refused calls.
    let now = k8s_openapi::jiff::Timestamp::now();
    let time = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let refused = |source: &str, name: &str, params: serde_json::Value, id: &str| {
        let mut r = operator_env::record("app", &time, source, name, params);
        r["errorCode"] = "AccessDenied".into();
        r["eventID"] = id.into();
        r
    };
    let records = [
        refused(
            "s3",
            "DeleteObject",
            serde_json::json!({"bucketName": "orders", "key": "old.json"}),
            "ev-delete",
        ),
        refused(
            "iam",
            "CreateUser",
            serde_json::json!({"userName": "mallory"}),
            "ev-user",
        ),
    ];
    let today = now.strftime("%Y-%m-%d").to_string();
    operator_env::put_trail_file(&s3, &today, "T2359Z_refused", &records).await;
    // Seen once today's listing, reused for a while, is taken again.
    let listed = iam_tailor::sources::ingest::LISTING_FRESH_FOR + Duration::from_secs(90);
    let app = wait_for_within(&roles, "app", "the restore", listed, |s| {
        s.restore.as_ref().is_some_and(|r| !r.restored.is_empty())
    })
    .await;
    let restore = app.restore.clone().unwrap();
    let held = &restore.restored[0];
    assert_eq!(
        (
            held.action.as_str(),
            held.resource.as_str(),
            held.event_id.as_str()
        ),
        (
            "s3:DeleteObject",
            "arn:aws:s3:::orders/old.json",
            "ev-delete"
        )
    );
    assert_eq!(held.denied_at, time);
    assert_eq!(restore.restored.len(), 1);
    assert_eq!(restore.not_restored[0].action, "iam:CreateUser");
    assert_eq!(restore.not_restored[0].event_id, "ev-user");
    // In IAM: the inline policy gives exactly that back, and nothing of IAM.
    let live = read(&aws_iam, "app").await;
    let restored = &live.inline["iam-tailor-restored"];
    assert_eq!(
        granted(&iam_tailor::role::LiveRole {
            inline: [("r".to_string(), restored.clone())].into(),
            attached: Vec::new(),
            ..live.clone()
        }),
        ["s3:DeleteObject"]
    );
    let mut expected = before.clone();
    expected.push("s3:DeleteObject".to_string());
    expected.sort();
    assert_eq!(granted(&live), expected);
    assert_eq!(
        app.applied, applied.applied,
        "the applied revision is unchanged"
    );
    assert_eq!(
        condition(&app, "InSync"),
        Some(("True", "InSync")),
        "a restore is not drift"
    );
    let recorded = events(&kube, NS, "app").await;
    let reasons = reasons(&recorded);
    for reason in ["PermissionRestored", "DeniedNotRestored"] {
        assert!(reasons.contains(reason), "{reason} not in {reasons:?}");
    }
    let metrics = operator.get("/metrics").await.1;
    let series = format!(
        "iam_tailor_permissions_restored_total{{namespace=\"{NS}\",name=\"app\",access_level=\"Write\"}}"
    );
    assert_eq!(
        operator_env::sample(&metrics, &series),
        Some(1.0),
        "{metrics}"
    );
}

/// Role `app` with AdministratorAccess and its trail, an operator, and `app` enforced
/// (Enforce + Automatic, drift checked every 2 s, `extra` spec lines) until it is InSync.
async fn app_enforced(
    cluster: &Cluster,
    operator_args: &[&str],
    extra: &str,
) -> (operator_env::Operator, Api<LeastPrivilegeRole>) {
    broad_role(&cluster.aws.iam(), "app").await;
    put_trail(&cluster.aws.s3()).await;
    let operator = cluster.operator(operator_args, &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(cluster.kube.clone(), NS);
    let spec = format!(
        "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
         cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n  drift: {{interval: 2s}}\n{extra}"
    );
    roles
        .create(&PostParams::default(), &lpr("app", &spec))
        .await
        .unwrap();
    wait_for(&roles, "app", "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    (operator, roles)
}

/// A thief of `app`'s credentials, after the apply, tries to widen its reach: it is refused
/// `iam:CreateAccessKey` for the admin user, `iam:AttachRolePolicy` and `iam:PutRolePolicy` on
/// its own role, all of which AdministratorAccess allowed before. None comes back on its own:
/// they wait for a person (status, a Warning Event, the metric), while a refused data call
/// (`s3:DeleteObject`) still comes back at once. Approving the pending revision in the spec
/// gives back exactly those grants.
#[tokio::test]
async fn a_thief_of_the_credentials_gets_nothing_sensitive_back_until_a_person_approves() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let (aws_iam, s3) = (aws.iam(), aws.s3());
    let (operator, roles) = app_enforced(&cluster, &[], "").await;

    let now = k8s_openapi::jiff::Timestamp::now();
    let time = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let refused = |source: &str, name: &str, params: serde_json::Value| {
        let mut r = operator_env::record("app", &time, source, name, params);
        r["errorCode"] = "AccessDenied".into();
        r["eventID"] = format!("ev-{name}").into();
        r["sourceIPAddress"] = "203.0.113.9".into();
        r
    };
    let records = [
        refused(
            "iam",
            "CreateAccessKey",
            serde_json::json!({"userName": "admin"}),
        ),
        refused(
            "iam",
            "AttachRolePolicy",
            serde_json::json!({"roleName": "app", "policyArn": ADMIN}),
        ),
        refused(
            "iam",
            "PutRolePolicy",
            serde_json::json!({"roleName": "app", "policyName": "backdoor"}),
        ),
        refused(
            "s3",
            "DeleteObject",
            serde_json::json!({"bucketName": "orders", "key": "old.json"}),
        ),
    ];
    let today = now.strftime("%Y-%m-%d").to_string();
    operator_env::put_trail_file(&s3, &today, "T2359Z_thief", &records).await;
    let listed = iam_tailor::sources::ingest::LISTING_FRESH_FOR + Duration::from_secs(90);
    let app = wait_for_within(&roles, "app", "the pending restore", listed, |s| {
        s.restore.as_ref().is_some_and(|r| r.pending.len() == 3)
    })
    .await;
    let restore = app.restore.clone().unwrap();
    let pending: Vec<&str> = (restore.pending.iter())
        .map(|c| c.action.as_str())
        .collect();
    assert_eq!(
        pending,
        [
            "iam:AttachRolePolicy",
            "iam:CreateAccessKey",
            "iam:PutRolePolicy"
        ]
    );
    let held: Vec<&str> = (restore.restored.iter())
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(held, ["s3:DeleteObject"], "only the data call, on its own");
    // The audit record: which call, from where, at which access level.
    let given = &restore.restored[0];
    assert_eq!(
        (
            given.event_id.as_str(),
            given.source_ip.as_str(),
            given.access_level.as_str()
        ),
        ("ev-DeleteObject", "203.0.113.9", "Write")
    );
    let levels: Vec<(&str, &str)> = (restore.pending.iter())
        .map(|c| (c.access_level.as_str(), c.source_ip.as_str()))
        .collect();
    assert_eq!(
        levels,
        [
            ("Permissions management", "203.0.113.9"),
            ("Write", "203.0.113.9"),
            ("Permissions management", "203.0.113.9")
        ]
    );
    let granted = |live: &iam_tailor::role::LiveRole| -> Vec<String> {
        let allowed = iam_tailor::policy::analysis::allowed_actions(&live.documents());
        allowed.into_iter().map(|a| a.action).collect()
    };
    let live = read(&aws_iam, "app").await;
    for sensitive in [
        "iam:CreateAccessKey",
        "iam:AttachRolePolicy",
        "iam:PutRolePolicy",
    ] {
        assert!(
            !granted(&live).contains(&sensitive.to_string()),
            "{live:#?}"
        );
    }
    let revision = restore.pending_revision.clone().unwrap();
    let awaits = events(&kube, NS, "app").await;
    assert!(
        awaits
            .iter()
            .any(|e| e.reason.as_deref() == Some("RestoreAwaitsApproval")
                && e.note.as_deref().unwrap_or("").contains(&revision)),
        "{awaits:#?}"
    );
    let series = format!("iam_tailor_restores_pending{{namespace=\"{NS}\",name=\"app\"}}");
    let metrics = operator.get("/metrics").await.1;
    assert_eq!(
        operator_env::sample(&metrics, &series),
        Some(3.0),
        "{metrics}"
    );
    let series = format!(
        "iam_tailor_permissions_restored_total{{namespace=\"{NS}\",name=\"app\",access_level=\"Write\"}}"
    );
    assert_eq!(
        operator_env::sample(&metrics, &series),
        Some(1.0),
        "{metrics}"
    );
    let restored_event = events(&kube, NS, "app").await;
    assert!(
        restored_event
            .iter()
            .any(|e| e.reason.as_deref() == Some("PermissionRestored")
                && e.note
                    .as_deref()
                    .unwrap_or("")
                    .contains("refused call ev-DeleteObject from 203.0.113.9")),
        "{restored_event:#?}"
    );

    // A person approves that revision in the spec: exactly those grants come back.
    let approve = serde_json::json!({"spec": {"onAccessDenied": {"approvedRestore": revision}}});
    roles
        .patch("app", &PatchParams::default(), &Patch::Merge(&approve))
        .await
        .unwrap();
    let app = wait_for(&roles, "app", "the approved restore", |s| {
        s.restore.as_ref().is_some_and(|r| r.approved.is_some())
    })
    .await;
    let restore = app.restore.unwrap();
    assert!(restore.pending.is_empty(), "{restore:#?}");
    assert_eq!(restore.restored.len(), 4);
    let live = read(&aws_iam, "app").await;
    let restored = granted(&iam_tailor::role::LiveRole {
        inline: [("r".to_string(), live.inline["iam-tailor-restored"].clone())].into(),
        attached: Vec::new(),
        ..live.clone()
    });
    assert_eq!(
        restored,
        [
            "iam:AttachRolePolicy",
            "iam:CreateAccessKey",
            "iam:PutRolePolicy",
            "s3:DeleteObject"
        ]
    );
}

/// An `Allow *` planted under iam-tailor's restore policy name, on a role whose restore is
/// off: it is drift like any other (not iam-tailor's to keep), taken off with a Warning.
#[tokio::test]
async fn a_planted_restore_policy_is_drift() {
    let cluster = Cluster::start().await;
    let (aws_iam, kube) = (cluster.aws.iam(), cluster.kube.clone());
    let (_operator, _roles) =
        app_enforced(&cluster, &[], "  onAccessDenied: {restore: false}\n").await;
    let everything =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    aws_iam
        .put_role_policy()
        .role_name("app")
        .policy_name("iam-tailor-restored")
        .policy_document(everything)
        .send()
        .await
        .unwrap();
    watch::poll(
        "the planted policy taken off",
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || match read(&aws_iam, "app").await.inline {
            inline if inline.contains_key("iam-tailor-restored") => {
                Err(format!("inline: {:?}", inline.keys()))
            }
            _ => Ok(()),
        },
    )
    .await;
    operator_env::wait_event(&kube, NS, "app", "a Drifted Warning naming it", |e| {
        e.reason.as_deref() == Some("Drifted")
            && e.note
                .as_deref()
                .unwrap_or("")
                .contains("iam-tailor-restored")
    })
    .await;
}

/// `--signal-queue-url`: EventBridge-shaped CloudTrail events on moto's SQS. An
/// AttachRolePolicy of the managed role is reverted within seconds though `drift.interval`
/// is an hour; a refused call is given back before any trail file holds it; a message that
/// is not an event is counted and dropped.
#[tokio::test]
async fn signals_on_the_queue_act_before_the_interval_and_the_trail() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    let sqs = aws.sqs();
    broad_role(&aws_iam, "app").await;
    put_trail(&aws.s3()).await;
    let queue = sqs
        .create_queue()
        .queue_name("iam-tailor-signals")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let operator = cluster.operator(&["--signal-queue-url", &queue], &[]);
    let send = |body: String| {
        let (sqs, queue) = (sqs.clone(), queue.clone());
        async move {
            (sqs.send_message().queue_url(queue).message_body(body))
                .send()
                .await
                .unwrap();
        }
    };
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    roles
        .create(
            &PostParams::default(),
            &lpr(
                "app",
                "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                 cloudTrail: {s3: {bucket: org-trail-logs}}\n  drift: {interval: 1h, action: Revert}\n",
            ),
        )
        .await
        .unwrap();
    wait_for(&roles, "app", "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    // Past the look that verifies the apply: the next one is an hour away.
    tokio::time::sleep(Duration::from_secs(40)).await;
    send("not an event".to_string()).await;
    let role_arn = format!("arn:aws:iam::{}:role/app", operator_env::ACCOUNT);
    let now = || {
        let now = k8s_openapi::jiff::Timestamp::now();
        now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };

    // Drift, and its event on the queue.
    (aws_iam
        .attach_role_policy()
        .role_name("app")
        .policy_arn(ADMIN))
    .send()
    .await
    .unwrap();
    let mut attach = signals::cloudtrail_record(
        "ev-attach",
        &role_arn,
        "iam.amazonaws.com",
        "AttachRolePolicy",
        serde_json::json!({"roleName": "app", "policyArn": ADMIN}),
    );
    attach["eventTime"] = now().into();
    send(signals::cloudtrail_event(&attach).to_string()).await;
    watch::poll(
        "the revert on the signal",
        Duration::from_secs(30),
        Duration::from_millis(200),
        async || match read(&aws_iam, "app").await.attached {
            attached if attached.iter().any(|a| a.arn == ADMIN) => {
                Err(format!("still attached: {attached:?}"))
            }
            _ => Ok(()),
        },
    )
    .await;
    let metrics = operator.get("/metrics").await.1;
    for (kind, count) in [("role-written", 1.0), ("malformed", 1.0)] {
        let series = format!("iam_tailor_signals_total{{kind=\"{kind}\"}}");
        assert_eq!(
            operator_env::sample(&metrics, &series),
            Some(count),
            "{metrics}"
        );
    }

    // A refused call, on the queue only: given back without its trail file.
    let mut delete = signals::denied(
        signals::cloudtrail_record(
            "ev-delete",
            &role_arn,
            "s3.amazonaws.com",
            "DeleteObject",
            serde_json::json!({"bucketName": "orders", "key": "old.json"}),
        ),
        "AccessDenied",
    );
    delete["eventTime"] = now().into();
    send(signals::cloudtrail_event(&delete).to_string()).await;
    let app = wait_for(&roles, "app", "the restore", |s| {
        s.restore.as_ref().is_some_and(|r| !r.restored.is_empty())
    })
    .await;
    let held = &app.restore.as_ref().unwrap().restored[0];
    assert_eq!(
        (
            held.action.as_str(),
            held.resource.as_str(),
            held.event_id.as_str()
        ),
        (
            "s3:DeleteObject",
            "arn:aws:s3:::orders/old.json",
            "ev-delete"
        )
    );
    let live = read(&aws_iam, "app").await;
    assert!(live.inline.contains_key("iam-tailor-restored"), "{live:#?}");
    assert!(
        !live.attached.iter().any(|a| a.arn == ADMIN),
        "the restore gives back one action, not what was detached"
    );
}

/// A workload in namespace `noisy` loops on a refused call: a flood of refusal events on the
/// queue (and of events of roles no resource manages). The other tenant's drift is reverted
/// while the flood lasts, and the looper's resource is looked at a few times, not once per
/// refusal (the debounce's own timing is `signals::Debounce`'s unit test: here the controller's
/// one-reconcile-per-object queue folds wakes too).
#[tokio::test]
async fn a_flood_of_refusals_wakes_its_resource_once_per_interval_and_starves_no_one() {
    const NOISY: &str = "noisy";
    const DEBOUNCE_SECS: u64 = 5;
    const REFUSALS: usize = 400;
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    let sqs = aws.sqs();
    operator_env::create_namespace(&kube, NOISY).await;
    operator_env::broad_role_for(&aws_iam, "looper", Some(NOISY)).await;
    let queue = (sqs.create_queue().queue_name("iam-tailor-signals"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let debounce = DEBOUNCE_SECS.to_string();
    let args = [
        "--signal-queue-url",
        &queue,
        "--signal-debounce-seconds",
        &debounce,
    ];
    let (operator, _roles) = app_enforced(&cluster, &args, "").await;
    let noisy: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NOISY);
    noisy
        .create(
            &PostParams::default(),
            &lpr(
                "looper",
                "  roleName: looper\n  mode: Observe\n  \
                 cloudTrail: {s3: {bucket: org-trail-logs}}\n  drift: {interval: 1h}\n",
            ),
        )
        .await
        .unwrap();
    wait_for(&noisy, "looper", "its analysis", |s| {
        condition(s, "Analyzed").is_some_and(|(status, _)| status == "True")
    })
    .await;

    // The flood: the looper's refused call again and again, and roles nobody manages.
    let time = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let refusal = |n: usize, role: &str| {
        let arn = format!("arn:aws:iam::{}:role/{role}", operator_env::ACCOUNT);
        let mut record = signals::cloudtrail_record(
            &format!("ev-{role}-{n}"),
            &arn,
            "s3.amazonaws.com",
            "DeleteObject",
            serde_json::json!({"bucketName": "orders", "key": "x.json"}),
        );
        record["eventTime"] = time.clone().into();
        signals::cloudtrail_event(&signals::denied(record, "AccessDenied")).to_string()
    };
    let reconciles_of = |log: &str, name: &str| {
        let name = format!(r#""name":"{name}""#);
        (log.lines())
            .filter(|l| l.contains(r#""message":"reconciled""#) && l.contains(&name))
            .count()
    };
    let before = reconciles_of(&operator.log(), "looper");
    let started = std::time::Instant::now();
    for batch in 0..REFUSALS / 10 {
        let mut send = sqs.send_message_batch().queue_url(&queue);
        for n in 0..10 {
            let i = batch * 10 + n;
            let role = if i % 2 == 0 {
                "looper".to_string()
            } else {
                format!("stranger-{i}")
            };
            send = send.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{n}"))
                    .message_body(refusal(i, &role))
                    .build()
                    .unwrap(),
            );
        }
        send.send().await.unwrap();
        // A loop, not one burst: without the debounce each batch would be a look of its own.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Meanwhile the other tenant's role drifts: reverted all the same.
    aws_iam
        .attach_role_policy()
        .role_name("app")
        .policy_arn(ADMIN)
        .send()
        .await
        .unwrap();
    watch::poll(
        "app's drift reverted during the flood",
        Duration::from_secs(90),
        Duration::from_millis(200),
        async || match read(&aws_iam, "app").await.attached {
            attached if attached.iter().any(|a| a.arn == ADMIN) => Err("attached".to_string()),
            _ => Ok(()),
        },
    )
    .await;
    // Every message read (the positive signal), then the looper's wakes counted.
    let refused = r#"iam_tailor_signals_total{kind="refused"}"#;
    let ignored = r#"iam_tailor_signals_total{kind="ignored"}"#;
    watch::poll(
        "the flood read",
        Duration::from_secs(120),
        Duration::from_millis(500),
        async || {
            let metrics = operator.get("/metrics").await.1;
            let read = operator_env::sample(&metrics, refused).unwrap_or(0.0)
                + operator_env::sample(&metrics, ignored).unwrap_or(0.0);
            if read >= REFUSALS as f64 {
                Ok(())
            } else {
                Err(format!("{read} of {REFUSALS} read"))
            }
        },
    )
    .await;
    // The last wake of a burst comes at the interval's end.
    tokio::time::sleep(Duration::from_secs(DEBOUNCE_SECS + 2)).await;
    let elapsed = started.elapsed().as_secs();
    let wakes = reconciles_of(&operator.log(), "looper") - before;
    // One wake at once, one per interval after, and the reconciles a wake's own status
    // write may cause: far from one per refusal.
    let most = 2 * (elapsed / DEBOUNCE_SECS + 2) as usize;
    eprintln!(
        "{wakes} reconciles of the looper in {elapsed}s for {} refusals (at most {most})",
        REFUSALS / 2
    );
    assert!(
        (1..=most).contains(&wakes),
        "{wakes} reconciles of the looper in {elapsed}s for {} refusals (at most {most})",
        REFUSALS / 2
    );
}
