//! Access Analyzer as the operator's generation engine, end to end: the `iam-tailor
//! controller` binary against a real kube-apiserver and moto, with Access Analyzer played by
//! its test double (nothing here emulates it) reached through
//! `AWS_ENDPOINT_URL_ACCESSANALYZER`. In order: a hybrid job (Access Analyzer's actions, the
//! trail's ARNs) shrinks role `app`; a ConflictException waits its turn; an operator restart
//! mid-job polls the job in status instead of starting another; unresolved placeholders are
//! refused until `spec.placeholders` fills them; a used-up daily quota is reported and not
//! retried.

use crate::access_analyzer_double;
use crate::operator_env;

use access_analyzer_double::{AccessAnalyzerDouble, StartFault};
use iam_tailor::controller::LeastPrivilegeRole;
use iam_tailor::policy::analysis::allowed_actions;
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_env::{
    ACCOUNT, ADMIN, APP_USES, Cluster, NS, Operator, broad_role, condition, events, lpr, put_trail,
    read, reasons, wait_for,
};
use std::collections::BTreeSet;
use std::time::Duration;

const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org";
const ACCESS_ROLE: &str = "arn:aws:iam::123456789012:role/AccessAnalyzerTrailReader";

/// What Access Analyzer would generate for `app`: its actions, resources as placeholders.
const APP_GENERATED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::${BucketName}/${ObjectName}"},
 {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${BucketName}"},
 {"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem"],"Resource":"arn:aws:dynamodb:${Region}:${Account}:table/${TableName}"},
 {"Effect":"Allow","Action":["sqs:ReceiveMessage","sqs:SendMessage"],"Resource":"arn:aws:sqs:${Region}:${Account}:${QueueName}"}]}"#;
const WORKER_GENERATED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"sqs:ReceiveMessage","Resource":"arn:aws:sqs:${Region}:${Account}:${QueueName}"}]}"#;

fn spec(role: &str, mode: &str, s3: bool) -> String {
    let s3 = if s3 {
        "s3: {bucket: org-trail-logs}, "
    } else {
        ""
    };
    format!(
        "  roleName: {role}\n  mode: {mode}\n  approval: Automatic\n  \
         cloudTrail: {{{s3}accessAnalyzer: {{trailArn: \"{TRAIL}\", accessRoleArn: \"{ACCESS_ROLE}\", allRegions: true}}}}\n"
    )
}

fn start_operator(cluster: &Cluster, aa: &str) -> Operator {
    cluster.operator(
        &["--access-analyzer-poll-seconds", "1"],
        &[("AWS_ENDPOINT_URL_ACCESSANALYZER", aa)],
    )
}

fn starts(double: &AccessAnalyzerDouble) -> usize {
    double
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path == "/policy/generation")
        .count()
}

fn granted(live: &iam_tailor::role::LiveRole) -> BTreeSet<String> {
    allowed_actions(&live.documents())
        .into_iter()
        .map(|a| a.action)
        .collect()
}

#[tokio::test]
async fn access_analyzer_engine_story() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let aws_iam = aws.iam();
    for role in ["app", "worker", "viewer"] {
        broad_role(&aws_iam, role).await;
    }
    put_trail(&aws.s3()).await;
    let double = AccessAnalyzerDouble::start();
    double.set_in_progress_polls(2);
    double.set_generated_policy(APP_GENERATED);
    let operator = start_operator(&cluster, &double.endpoint);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let create = |name: &str, spec: String| {
        let roles = roles.clone();
        let object = lpr(name, &spec);
        async move { roles.create(&PostParams::default(), &object).await.unwrap() }
    };

    // Hybrid: Access Analyzer's actions, the trail files' ARNs; then enforced.
    create("app", spec("app", "Enforce", true)).await;
    let app = wait_for(&roles, "app", "enforcement", |s| {
        condition(s, "InSync") == Some(("True", "Applied"))
            || condition(s, "InSync") == Some(("True", "InSync"))
    })
    .await;
    assert!(app.job.is_none(), "done: {:?}", app.job);
    let proposal = app.proposal.clone().unwrap();
    assert!(proposal.unresolved_placeholders.is_empty());
    assert_eq!(
        app.analysis.as_ref().unwrap().files_scanned,
        2,
        "hybrid read the files"
    );
    let used: BTreeSet<String> = APP_USES.iter().map(|a| a.to_string()).collect();
    assert_eq!(granted(&read(&aws_iam, "app").await), used);
    let start = &double.requests()[0];
    assert_eq!(
        start.body["policyGenerationDetails"]["principalArn"],
        format!("arn:aws:iam::{ACCOUNT}:role/app")
    );
    assert_eq!(start.body["cloudTrailDetails"]["accessRole"], ACCESS_ROLE);
    assert_eq!(
        start.body["cloudTrailDetails"]["trails"][0]["allRegions"],
        true
    );
    assert_eq!(starts(&double), 1);

    // Another job runs in the account: worker waits its turn, then starts.
    double.set_generated_policy(WORKER_GENERATED);
    double.set_in_progress_polls(1_000);
    double.fail_next_start(StartFault::Conflict);
    create("worker", spec("worker", "Enforce", false)).await;
    wait_for(&roles, "worker", "a conflict", |s| {
        condition(s, "Analyzed") == Some(("Unknown", "WaitingForAccessAnalyzer"))
    })
    .await;
    let running = wait_for(&roles, "worker", "a running job", |s| s.job.is_some()).await;
    let job = running.job.clone().unwrap();
    assert_eq!(
        condition(&running, "Analyzed"),
        Some(("Unknown", "GenerationRunning"))
    );
    assert_eq!(starts(&double), 3, "app, worker refused, worker started");

    // A restart mid-job: the new process polls the job in status; no new job starts.
    drop(operator);
    double.set_in_progress_polls(2);
    let polls_before = double.requests().len();
    let _restarted = start_operator(&cluster, &double.endpoint);
    let worker = wait_for(&roles, "worker", "the job's result", |s| {
        s.proposal.is_some()
    })
    .await;
    assert_eq!(starts(&double), 3, "the job was resumed, not started again");
    let polled: Vec<String> = double.requests()[polls_before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        polled
            .iter()
            .any(|p| p.starts_with(&format!("/policy/generation/{}", job.job_id))),
        "{polled:?}"
    );
    // Nothing resolves ${Region}, ${Account}, ${QueueName}: never applied.
    let worker =
        if condition(&worker, "Approved").is_some_and(|(_, r)| r == "UnresolvedPlaceholders") {
            worker
        } else {
            wait_for(&roles, "worker", "the refusal", |s| {
                condition(s, "Approved").is_some_and(|(_, r)| r == "UnresolvedPlaceholders")
            })
            .await
        };
    let unresolved = &worker.proposal.as_ref().unwrap().unresolved_placeholders;
    assert_eq!(unresolved.len(), 1, "{unresolved:?}");
    assert_eq!(
        unresolved[0].placeholders,
        ["Region", "Account", "QueueName"]
    );
    assert_eq!(
        condition(&worker, "Ready"),
        Some(("False", "UnresolvedPlaceholders"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let live = read(&aws_iam, "worker").await;
    assert!(
        live.attached.iter().any(|a| a.arn == ADMIN),
        "untouched: {live:#?}"
    );

    // spec.placeholders fills them: a new job, then the role holds just that queue.
    roles
        .patch(
            "worker",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"placeholders": {
                "Region": "us-east-1", "Account": ACCOUNT, "QueueName": "orders"}}})),
        )
        .await
        .unwrap();
    wait_for(&roles, "worker", "enforcement", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    assert_eq!(starts(&double), 4);
    let live = read(&aws_iam, "worker").await;
    assert_eq!(
        granted(&live),
        BTreeSet::from(["sqs:ReceiveMessage".to_string()])
    );
    let documents = format!("{:?}", live.documents());
    assert!(
        documents.contains(&format!("arn:aws:sqs:us-east-1:{ACCOUNT}:orders")),
        "{documents}"
    );

    let recorded = reasons(&events(&kube, NS, "worker").await);
    for reason in ["ProposalReady", "BackedUp", "PolicyApplied"] {
        assert!(
            recorded.contains(reason),
            "{reason} missing from {recorded:?}"
        );
    }

    // The account's daily quota is used up: reported, and not tried again today.
    double.fail_next_start(StartFault::ServiceQuotaExceeded);
    create("viewer", spec("viewer", "Recommend", false)).await;
    let viewer = wait_for(&roles, "viewer", "the quota", |s| {
        condition(s, "Analyzed") == Some(("False", "QuotaExceeded"))
    })
    .await;
    assert_eq!(
        condition(&viewer, "Ready"),
        Some(("False", "QuotaExceeded"))
    );
    let after = starts(&double);
    assert_eq!(after, 5);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(starts(&double), after, "no start before 00:00 UTC");
}
