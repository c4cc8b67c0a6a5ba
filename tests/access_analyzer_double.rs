//! The Access Analyzer test double (`tests/access_analyzer_double/`) answers the real
//! `aws_sdk_accessanalyzer::Client`: every call round-trips through the SDK's rest-json
//! serializers and deserializers, including the error variants.

// The test file and the double's directory share a name, so the module needs an explicit path.
#[path = "access_analyzer_double/mod.rs"]
mod access_analyzer_double;

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
async fn a_generation_job_progresses_to_succeeded_with_placeholders() {
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
