//! The Access Analyzer test double (`tests/doubles/access_analyzer_double/`) answers the real
//! `aws_sdk_accessanalyzer::Client`: every call round-trips through the SDK's rest-json
//! serializers and deserializers, including the error variants.

use crate::access_analyzer_double;

use access_analyzer_double::{
    AccessAnalyzerDouble, Check, DEFAULT_GENERATED_POLICY, StartFault, finding,
};
use aws_sdk_accessanalyzer::config::retry::RetryConfig;
use aws_sdk_accessanalyzer::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_accessanalyzer::error::ProvideErrorMetadata;
use aws_sdk_accessanalyzer::operation::start_policy_generation::StartPolicyGenerationError;
use aws_sdk_accessanalyzer::primitives::DateTime;
use aws_sdk_accessanalyzer::types::{
    Access, AccessCheckPolicyType, CheckAccessNotGrantedResult, CheckNoNewAccessResult,
    CloudTrailDetails, JobStatus, PathElement, PolicyGenerationDetails, PolicyType, Trail,
    ValidatePolicyFindingType,
};
use aws_sdk_accessanalyzer::{Client, Config};

const ROLE: &str = "arn:aws:iam::123456789012:role/app";
const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:123456789012:trail/main";
const ACCESS_ROLE: &str = "arn:aws:iam::123456789012:role/AccessAnalyzerMonitorServiceRole";

fn client(double: &AccessAnalyzerDouble, retry: RetryConfig) -> Client {
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&double.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(retry)
        .build();
    Client::from_conf(config)
}

async fn start_job(client: &Client) -> Result<String, StartPolicyGenerationError> {
    let details = PolicyGenerationDetails::builder()
        .principal_arn(ROLE)
        .build()
        .unwrap();
    let trail = CloudTrailDetails::builder()
        .trails(
            Trail::builder()
                .cloud_trail_arn(TRAIL)
                .regions("us-east-1")
                .regions("eu-west-1")
                .build()
                .unwrap(),
        )
        .access_role(ACCESS_ROLE)
        .start_time(DateTime::from_secs(1_700_000_000))
        .end_time(DateTime::from_secs(1_700_086_400))
        .build()
        .unwrap();
    client
        .start_policy_generation()
        .policy_generation_details(details)
        .cloud_trail_details(trail)
        .send()
        .await
        .map(|out| out.job_id().to_string())
        .map_err(|e| e.into_service_error())
}

#[tokio::test]
async fn a_job_progresses_to_succeeded_with_placeholders() {
    let double = AccessAnalyzerDouble::start();
    double.set_in_progress_polls(2);
    let client = client(&double, RetryConfig::disabled());

    let job_id = start_job(&client).await.unwrap();
    assert!(!job_id.is_empty());
    assert_eq!(double.job_ids(), vec![job_id.clone()]);

    let start = &double.requests()[0];
    assert_eq!(
        (start.method.as_str(), start.path.as_str()),
        ("PUT", "/policy/generation")
    );
    assert_eq!(start.body["policyGenerationDetails"]["principalArn"], ROLE);
    assert_eq!(start.body["cloudTrailDetails"]["accessRole"], ACCESS_ROLE);
    assert_eq!(
        start.body["cloudTrailDetails"]["trails"][0]["cloudTrailArn"],
        TRAIL
    );
    assert!(
        start.body["clientToken"].is_string(),
        "the SDK fills the idempotency token"
    );

    let mut states = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let out = client
            .get_generated_policy()
            .job_id(&job_id)
            .include_resource_placeholders(true)
            .send()
            .await
            .unwrap();
        let details = out.job_details().unwrap();
        assert_eq!(details.job_id(), job_id);
        states.push(details.status().clone());
        last = Some(out);
    }
    assert_eq!(
        states,
        vec![
            JobStatus::InProgress,
            JobStatus::InProgress,
            JobStatus::Succeeded
        ]
    );
    let out = last.unwrap();
    assert!(out.job_details().unwrap().completed_on().is_some());
    let result = out.generated_policy_result().unwrap();
    let properties = result.properties().unwrap();
    assert_eq!(properties.principal_arn(), ROLE);
    assert_eq!(properties.is_complete(), Some(true));
    let trail = properties.cloud_trail_properties().unwrap();
    assert_eq!(trail.trail_properties()[0].cloud_trail_arn(), TRAIL);
    assert_eq!(
        trail.trail_properties()[0].regions(),
        ["us-east-1".to_string(), "eu-west-1".to_string()]
    );
    assert_eq!(trail.start_time(), &DateTime::from_secs(1_700_000_000));
    let policies = result.generated_policies();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].policy(), DEFAULT_GENERATED_POLICY);
    assert!(policies[0].policy().contains("${BucketName}"));

    let poll = &double.requests()[1];
    assert_eq!(poll.method, "GET");
    assert_eq!(
        poll.path,
        format!("/policy/generation/{job_id}?includeResourcePlaceholders=true")
    );
}

#[tokio::test]
async fn the_generated_policy_is_configurable_and_unknown_jobs_are_validation_errors() {
    let double = AccessAnalyzerDouble::start();
    double.set_in_progress_polls(0);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:${Region}:${Account}:${QueueName}"}]}"#;
    double.set_generated_policy(policy);
    let client = client(&double, RetryConfig::disabled());
    let job_id = start_job(&client).await.unwrap();
    let out = client
        .get_generated_policy()
        .job_id(&job_id)
        .send()
        .await
        .unwrap();
    assert_eq!(out.job_details().unwrap().status(), &JobStatus::Succeeded);
    assert_eq!(
        out.generated_policy_result().unwrap().generated_policies()[0].policy(),
        policy
    );

    let err = client
        .get_generated_policy()
        .job_id("no-such-job")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
}

#[tokio::test]
async fn start_policy_generation_faults_surface_as_the_sdk_error_variants() {
    let double = AccessAnalyzerDouble::start();
    let client = client(&double, RetryConfig::disabled());

    double.fail_next_start(StartFault::Conflict);
    let err = start_job(&client).await.unwrap_err();
    assert!(
        matches!(err, StartPolicyGenerationError::ConflictException(_)),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("ConflictException"));

    double.fail_next_start(StartFault::ServiceQuotaExceeded);
    let err = start_job(&client).await.unwrap_err();
    assert!(
        matches!(
            err,
            StartPolicyGenerationError::ServiceQuotaExceededException(_)
        ),
        "{err:?}"
    );

    double.fail_next_start(StartFault::Throttling {
        retry_after_seconds: 7,
    });
    match start_job(&client).await.unwrap_err() {
        StartPolicyGenerationError::ThrottlingException(t) => {
            assert_eq!(t.retry_after_seconds(), Some(7));
            assert_eq!(t.message(), "Rate exceeded");
        }
        other => panic!("expected ThrottlingException, got {other:?}"),
    }

    // Faults are consumed one per call: the next start succeeds.
    assert!(start_job(&client).await.is_ok());
    assert_eq!(double.job_ids().len(), 1);
}

#[tokio::test]
async fn the_sdk_retries_a_throttled_start() {
    let double = AccessAnalyzerDouble::start();
    let client = client(
        &double,
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(10)),
    );
    double.fail_next_start(StartFault::Throttling {
        retry_after_seconds: 0,
    });
    let job_id = start_job(&client).await.unwrap();
    assert_eq!(double.job_ids(), vec![job_id]);
    let puts = double
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 2);
}

#[tokio::test]
async fn validate_policy_returns_the_configured_findings_with_locations() {
    let double = AccessAnalyzerDouble::start();
    double.set_findings(vec![
        finding(
            "ERROR",
            "INVALID_ACTION",
            "The action s3:GetObjects does not exist.",
            &["Statement", "0", "Action", "1"],
            (1, 80, 80),
            (1, 96, 96),
        ),
        finding(
            "SECURITY_WARNING",
            "PASS_ROLE_WITH_STAR_IN_RESOURCE",
            "Using the iam:PassRole action with wildcards (*) in the resource can be overly permissive.",
            &["Statement", "1", "Resource"],
            (1, 150, 150),
            (1, 153, 153),
        ),
    ]);
    let client = client(&double, RetryConfig::disabled());
    let document = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let out = client
        .validate_policy()
        .policy_document(document)
        .policy_type(PolicyType::IdentityPolicy)
        .send()
        .await
        .unwrap();
    let findings = out.findings();
    assert_eq!(findings.len(), 2);
    assert_eq!(
        findings[0].finding_type(),
        &ValidatePolicyFindingType::Error
    );
    assert_eq!(findings[0].issue_code(), "INVALID_ACTION");
    assert_eq!(
        findings[0].finding_details(),
        "The action s3:GetObjects does not exist."
    );
    assert!(findings[0].learn_more_link().contains("invalid-action"));
    let location = &findings[0].locations()[0];
    assert_eq!(
        location.path(),
        [
            PathElement::Key("Statement".into()),
            PathElement::Index(0),
            PathElement::Key("Action".into()),
            PathElement::Index(1),
        ]
    );
    let span = location.span().unwrap();
    assert_eq!(
        (span.start().unwrap().line(), span.start().unwrap().column()),
        (1, 80)
    );
    assert_eq!(span.end().unwrap().offset(), 96);
    assert_eq!(
        findings[1].finding_type(),
        &ValidatePolicyFindingType::SecurityWarning
    );

    let request = &double.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/policy/validation")
    );
    assert_eq!(request.body["policyDocument"], document);
    assert_eq!(request.body["policyType"], "IDENTITY_POLICY");
}

#[tokio::test]
async fn the_checks_return_the_configured_pass_and_fail() {
    let double = AccessAnalyzerDouble::start();
    let client = client(&double, RetryConfig::disabled());
    let new = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let existing = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

    let no_new = || {
        client
            .check_no_new_access()
            .new_policy_document(new)
            .existing_policy_document(existing)
            .policy_type(AccessCheckPolicyType::IdentityPolicy)
            .send()
    };
    let not_granted = || {
        client
            .check_access_not_granted()
            .policy_document(new)
            .access(Access::builder().actions("s3:DeleteBucket").build())
            .policy_type(AccessCheckPolicyType::IdentityPolicy)
            .send()
    };

    let out = no_new().await.unwrap();
    assert_eq!(out.result(), Some(&CheckNoNewAccessResult::Pass));
    assert!(out.reasons().is_empty());
    let out = not_granted().await.unwrap();
    assert_eq!(out.result(), Some(&CheckAccessNotGrantedResult::Pass));

    double.set_no_new_access(Check::Fail(vec![(
        "New access in the statement with index: 0.".into(),
        0,
    )]));
    double.set_access_not_granted(Check::Fail(vec![(
        "One or more of the listed actions or resources in the statement with index: 0.".into(),
        0,
    )]));
    let out = no_new().await.unwrap();
    assert_eq!(out.result(), Some(&CheckNoNewAccessResult::Fail));
    assert_eq!(
        out.reasons()[0].description(),
        Some("New access in the statement with index: 0.")
    );
    assert_eq!(out.reasons()[0].statement_index(), Some(0));
    let out = not_granted().await.unwrap();
    assert_eq!(out.result(), Some(&CheckAccessNotGrantedResult::Fail));
    assert_eq!(out.reasons().len(), 1);

    let requests = double.requests();
    assert_eq!(requests[0].path, "/policy/check-no-new-access");
    assert_eq!(requests[0].body["newPolicyDocument"], new);
    assert_eq!(requests[0].body["existingPolicyDocument"], existing);
    assert_eq!(requests[1].path, "/policy/check-access-not-granted");
    assert_eq!(
        requests[1].body["access"][0]["actions"][0],
        "s3:DeleteBucket"
    );
}

// ---- iam-tailor's own client (src/aws/access_analyzer.rs) and CLI against the double ----

use iam_tailor::aws::access_analyzer::{
    self as analyzer, AccessAnalyzer, AnalyzerError, GenerationJob, TrailSource, Window,
};
use iam_tailor::policy::lint::{PolicyType as LintKind, Severity};
use std::process::Command;

fn ours(double: &AccessAnalyzerDouble) -> AccessAnalyzer {
    AccessAnalyzer::from(client(double, RetryConfig::disabled()))
}

fn trail() -> TrailSource {
    TrailSource {
        trail_arn: TRAIL.into(),
        access_role_arn: ACCESS_ROLE.into(),
        regions: vec![],
        all_regions: true,
    }
}

const WINDOW: Window = Window {
    start: 1_700_000_000,
    end: 1_700_086_400,
};

#[tokio::test]
async fn the_client_runs_a_job_and_sorts_start_faults_by_what_to_do() {
    let double = AccessAnalyzerDouble::start();
    double.set_in_progress_polls(1);
    let aa = ours(&double);
    let job = analyzer::start_policy_generation(&aa, ROLE, &trail(), WINDOW)
        .await
        .unwrap();
    let sent = &double.requests()[0].body["cloudTrailDetails"];
    assert_eq!(sent["trails"][0]["allRegions"], true);
    assert_eq!(sent["startTime"], "2023-11-14T22:13:20Z");
    assert_eq!(
        analyzer::get_generated_policy(&aa, &job).await.unwrap(),
        GenerationJob::InProgress
    );
    assert_eq!(
        analyzer::get_generated_policy(&aa, &job).await.unwrap(),
        GenerationJob::Succeeded {
            policies: vec![DEFAULT_GENERATED_POLICY.to_string()]
        }
    );
    assert!(
        double.requests()[2]
            .path
            .contains("includeServiceLevelTemplate=true")
    );

    double.fail_next_start(StartFault::Conflict);
    let err = analyzer::start_policy_generation(&aa, ROLE, &trail(), WINDOW)
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyzerError::Conflict { .. }), "{err:?}");
    assert!(err.is_retryable());
    double.fail_next_start(StartFault::ServiceQuotaExceeded);
    let err = analyzer::start_policy_generation(&aa, ROLE, &trail(), WINDOW)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AnalyzerError::QuotaExceeded { .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    double.fail_next_start(StartFault::Throttling {
        retry_after_seconds: 1,
    });
    let err = analyzer::start_policy_generation(&aa, ROLE, &trail(), WINDOW)
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyzerError::Throttled { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("ThrottlingException: Rate exceeded"),
        "{err}"
    );
}

#[tokio::test]
async fn the_client_reports_findings_with_locations_and_checks_forbid_in_chunks() {
    let double = AccessAnalyzerDouble::start();
    double.set_findings(vec![
        finding(
            "SUGGESTION",
            "EMPTY_ARRAY_ACTION",
            "empty",
            &["Statement", "2", "Action"],
            (3, 1, 40),
            (3, 5, 44),
        ),
        finding(
            "SECURITY_WARNING",
            "PASS_ROLE_WITH_STAR_IN_RESOURCE",
            "PassRole on *",
            &["Statement", "1", "Resource"],
            (1, 150, 150),
            (1, 153, 153),
        ),
    ]);
    let aa = ours(&double);
    let findings = analyzer::validate_policy(&aa, "{}", LintKind::Trust)
        .await
        .unwrap();
    assert_eq!(
        findings
            .iter()
            .map(|f| (f.severity, f.code.as_str(), f.locations.clone()))
            .collect::<Vec<_>>(),
        vec![
            (
                Severity::SecurityWarning,
                "PASS_ROLE_WITH_STAR_IN_RESOURCE",
                vec!["Statement[1].Resource (1:150)".to_string()]
            ),
            (
                Severity::Suggestion,
                "EMPTY_ARRAY_ACTION",
                vec!["Statement[2].Action (3:1)".to_string()]
            ),
        ],
        "most severe first"
    );
    let sent = &double.requests()[0].body;
    assert_eq!(sent["policyType"], "RESOURCE_POLICY");
    assert_eq!(
        sent["validatePolicyResourceType"],
        "AWS::IAM::AssumeRolePolicyDocument"
    );

    // 150 forbidden actions: two calls of at most 100; the double fails every call.
    let actions: Vec<String> = (0..150).map(|i| format!("iam:Action{i}")).collect();
    double.set_access_not_granted(Check::Fail(vec![("statement 0 grants it".into(), 0)]));
    let verdict = analyzer::check_access_not_granted(&aa, "{}", &actions)
        .await
        .unwrap();
    assert!(!verdict.passed);
    assert_eq!(verdict.reasons.len(), 2);
    let sizes: Vec<usize> = double
        .requests()
        .iter()
        .filter(|r| r.path == "/policy/check-access-not-granted")
        .map(|r| r.body["access"][0]["actions"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 50]);

    let verdict = analyzer::check_no_new_access(&aa, "{}", "{}")
        .await
        .unwrap();
    assert!(verdict.passed && verdict.reasons.is_empty());
}

// ---- the CLI ----

const CHECKOUT: &str = "arn:aws:iam::111122223333:role/checkout-api";
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cloudtrail");

/// What Access Analyzer would generate for the example role: its actions, resources as
/// placeholders, and a service-level template for a service without action-level data.
const CHECKOUT_GENERATED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem"],"Resource":"arn:aws:dynamodb:${Region}:${Account}:table/${TableName}"},
 {"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:${Region}:${Account}:key/${KeyId}"},
 {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${BucketName}"},
 {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::${BucketName}/${ObjectName}"},
 {"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:${Region}:${Account}:secret:${SecretId}"},
 {"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:${Region}:${Account}:${QueueName}"}]}"#;

fn cli(double: &AccessAnalyzerDouble, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .args(args)
        .env("AWS_ENDPOINT_URL_ACCESSANALYZER", &double.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("runs iam-tailor")
}

const ENGINE: [&str; 10] = [
    "generate",
    "--engine",
    "access-analyzer",
    "--trail-arn",
    TRAIL,
    "--access-role-arn",
    ACCESS_ROLE,
    "--principal",
    CHECKOUT,
    "--poll-seconds=1",
];

#[test]
fn hybrid_generation_equals_the_builtin_engine_when_both_saw_the_same_actions() {
    let double = AccessAnalyzerDouble::start();
    double.set_generated_policy(CHECKOUT_GENERATED);
    let hybrid = cli(
        &double,
        &[&ENGINE[..], &["--cloudtrail", EXAMPLES]].concat(),
    );
    let stderr = String::from_utf8_lossy(&hybrid.stderr);
    assert_eq!(hybrid.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("generation job 00000000-0000-4000-8000-000000000001 started"),
        "{stderr}"
    );
    let builtin = cli(
        &double,
        &[
            "generate",
            "--cloudtrail",
            EXAMPLES,
            "--principal",
            CHECKOUT,
        ],
    );
    assert_eq!(builtin.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(hybrid.stdout).unwrap(),
        String::from_utf8(builtin.stdout).unwrap()
    );
    // The job covered the default 90 days for the role.
    let start = &double.requests()[0].body;
    assert_eq!(start["policyGenerationDetails"]["principalArn"], CHECKOUT);
    let window = |k: &str| {
        aws_sdk_accessanalyzer::primitives::DateTime::from_str(
            start["cloudTrailDetails"][k].as_str().unwrap(),
            aws_sdk_accessanalyzer::primitives::DateTimeFormat::DateTime,
        )
        .unwrap()
        .secs()
    };
    assert_eq!(window("endTime") - window("startTime"), 90 * 86_400);
}

#[test]
fn unresolved_placeholders_fail_the_run_and_are_named_while_values_resolve_them() {
    let double = AccessAnalyzerDouble::start();
    double.set_in_progress_polls(0);
    let out = cli(&double, &ENGINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unresolved BucketName, ObjectName in s3:GetObject"),
        "{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("${"), "{stdout}");
    assert!(!stdout.contains("dynamodb:Query"), "{stdout}");

    let values = [
        "--placeholder=BucketName=orders",
        "--placeholder=ObjectName=*",
        "--placeholder=Region=us-east-1",
        "--placeholder=Account=111122223333",
        "--placeholder=TableName=carts",
    ];
    let out = cli(&double, &[&ENGINE[..], &values].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let resources: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Resource"].as_array().unwrap())
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [
            "arn:aws:dynamodb:us-east-1:111122223333:table/carts",
            "arn:aws:s3:::orders/*",
            "arn:aws:s3:::orders/*"
        ]
    );
}

#[test]
fn a_failed_job_and_a_long_window_are_errors() {
    let double = AccessAnalyzerDouble::start();
    let out = cli(&double, &[&ENGINE[..], &["--since", "91d"]].concat());
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at most 90 days"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(double.requests().is_empty(), "nothing was started");
    double.fail_next_start(StartFault::ServiceQuotaExceeded);
    let out = cli(&double, &ENGINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("service quota exceeded"), "{stderr}");
}

#[test]
fn lint_remote_adds_access_analyzer_findings_and_fails_on_a_security_warning() {
    let double = AccessAnalyzerDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(
        &file,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let out = cli(&double, &["lint", "--remote", file]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no findings"));
    double.set_findings(vec![finding(
        "SECURITY_WARNING",
        "PASS_ROLE_WITH_STAR_IN_RESOURCE",
        "PassRole on *",
        &["Statement", "0", "Resource"],
        (1, 90, 90),
        (1, 95, 95),
    )]);
    let out = cli(&double, &["lint", "--remote", file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "SECURITY_WARNING PASS_ROLE_WITH_STAR_IN_RESOURCE (Access Analyzer) at Statement[0].Resource (1:90)"
        ),
        "{stdout}"
    );
    let out = cli(&double, &["lint", "--remote", "--format", "json", file]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["accessAnalyzer"][0]["code"],
        "PASS_ROLE_WITH_STAR_IN_RESOURCE"
    );
    assert_eq!(json["local"], serde_json::json!([]));
    // Without --remote nothing is sent.
    let before = double.requests().len();
    assert_eq!(cli(&double, &["lint", file]).status.code(), Some(0));
    assert_eq!(double.requests().len(), before);
}
