//! IAM's last-accessed reports through the real SDK client: `aws::iam::service_last_accessed`
//! against the last-accessed test double, which forwards every other IAM call to a real moto
//! (so roles live in moto and `read_role` works through the same endpoint, as in the operator
//! with `AWS_ENDPOINT_URL_IAM` set to the double).

use crate::iam_last_accessed_double;
use crate::moto;

use iam_last_accessed_double::{Fault, IamLastAccessedDouble, service, tracked};
use iam_tailor::aws::iam::{self, Iam, IamError};
use iam_tailor::generate::{ActionLastAccessed, LastAccessed, ServiceLastAccessed};
use std::time::Duration;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const S3_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const POLL: Duration = Duration::from_millis(10);
const TIMEOUT: Duration = Duration::from_secs(10);
const RECENT: &str = "2026-09-20T08:00:00Z";
const OLD: &str = "2025-03-01T12:30:00Z";

/// An IAM client for `endpoint` with throwaway credentials, retrying quickly.
fn iam_client(endpoint: &str) -> aws_sdk_iam::Client {
    let config = aws_sdk_iam::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .retry_config(
            aws_sdk_iam::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// moto, the double in front of it, and a client of the double.
fn start() -> (moto::Moto, IamLastAccessedDouble, aws_sdk_iam::Client) {
    let server = moto::Moto::start();
    let double = IamLastAccessedDouble::start(&server.endpoint);
    let client = iam_client(&double.endpoint);
    (server, double, client)
}

/// Creates `name` (through `client`) and returns its ARN.
async fn create_role(client: &aws_sdk_iam::Client, name: &str) -> String {
    let output = client
        .create_role()
        .role_name(name)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    output.role().unwrap().arn().to_string()
}

fn expected_service(
    namespace: &str,
    name: &str,
    last: Option<&str>,
    actions: Option<Vec<(&str, Option<&str>)>>,
) -> ServiceLastAccessed {
    ServiceLastAccessed {
        namespace: namespace.to_string(),
        name: name.to_string(),
        last_authenticated: last.map(str::to_string),
        action_level: actions.is_some(),
        actions: actions
            .unwrap_or_default()
            .into_iter()
            .map(|(action, time)| ActionLastAccessed {
                action: action.to_string(),
                last_accessed: time.map(str::to_string),
                region: time.map(|_| "us-east-1".to_string()),
            })
            .collect(),
    }
}

#[tokio::test]
async fn other_calls_go_through_to_moto_unchanged() {
    let (server, double, client) = start();
    let arn = create_role(&client, "app").await;
    iam::put_inline(&Iam::from(client.clone()), "app", "read", S3_READ)
        .await
        .unwrap();
    let live = iam::read_role(&Iam::from(client.clone()), "app")
        .await
        .unwrap();
    assert_eq!(live.name, "app");
    assert_eq!(live.arn, arn);
    assert_eq!(live.inline.keys().collect::<Vec<_>>(), ["read"]);

    // The role is in moto itself.
    let direct = server
        .iam()
        .get_role()
        .role_name("app")
        .send()
        .await
        .unwrap();
    assert_eq!(direct.role().unwrap().arn(), arn);

    let requests = double.requests();
    assert!(requests.iter().all(|r| r.forwarded), "{requests:?}");
    assert_eq!(
        double.actions(),
        [
            "CreateRole",
            "PutRolePolicy",
            "GetRole",
            "ListRolePolicies",
            "GetRolePolicy",
            "ListAttachedRolePolicies",
            // Who holds the first name of the role's iam-tailor policies (it holds none).
            "ListPolicyTags"
        ]
    );
    assert_eq!(requests[0].params["RoleName"], "app");
    assert_eq!(requests[0].params["Version"], "2010-05-08");
}

#[tokio::test]
async fn reports_the_canned_data_after_in_progress_polls() {
    let (_server, double, client) = start();
    let arn = create_role(&client, "app").await;
    double.set_in_progress_polls(2);
    double.set_services(
        &arn,
        vec![
            service("s3", "Amazon S3", Some(RECENT)).with_actions(vec![
                tracked("PutObject", Some(OLD)),
                tracked("GetObject", Some(RECENT)),
                tracked("DeleteObject", None),
            ]),
            service("lambda", "AWS Lambda", Some(OLD)),
            service("kms", "AWS Key Management Service", None),
        ],
    );

    let last = iam::service_last_accessed(&Iam::from(client), &arn, POLL, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        last,
        LastAccessed {
            services: vec![
                expected_service("kms", "AWS Key Management Service", None, None),
                expected_service("lambda", "AWS Lambda", Some(OLD), None),
                expected_service(
                    "s3",
                    "Amazon S3",
                    Some(RECENT),
                    Some(vec![
                        ("s3:DeleteObject", None),
                        ("s3:GetObject", Some(RECENT)),
                        ("s3:PutObject", Some(OLD)),
                    ])
                ),
            ]
        }
    );

    let requests = double.requests();
    let actions: Vec<&str> = requests.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "CreateRole",
            "GenerateServiceLastAccessedDetails",
            "GetServiceLastAccessedDetails",
            "GetServiceLastAccessedDetails",
            "GetServiceLastAccessedDetails",
        ]
    );
    let generate = &requests[1];
    assert!(!generate.forwarded);
    assert_eq!(generate.params["Arn"], arn);
    assert_eq!(generate.params["Granularity"], "ACTION_LEVEL");
    let job_id = &requests[2].params["JobId"];
    assert!(!job_id.is_empty());
    assert!(
        requests[2..]
            .iter()
            .all(|r| &r.params["JobId"] == job_id && !r.params.contains_key("Marker")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn merges_the_pages_of_a_truncated_report() {
    let (_server, double, client) = start();
    let arn = create_role(&client, "app").await;
    double.set_in_progress_polls(0);
    double.set_page_size(Some(2));
    let namespaces = ["sqs", "ec2", "dynamodb", "sns", "s3"];
    double.set_services(
        &arn,
        namespaces
            .iter()
            .map(|n| service(n, &format!("Service {n}"), Some(RECENT)))
            .collect(),
    );

    let last = iam::service_last_accessed(&Iam::from(client), &arn, POLL, TIMEOUT)
        .await
        .unwrap();
    let got: Vec<&str> = last.services.iter().map(|s| s.namespace.as_str()).collect();
    assert_eq!(got, ["dynamodb", "ec2", "s3", "sns", "sqs"]);

    let gets: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.action == "GetServiceLastAccessedDetails")
        .collect();
    assert_eq!(gets.len(), 3, "{gets:?}");
    let markers: Vec<Option<&str>> = gets
        .iter()
        .map(|r| r.params.get("Marker").map(String::as_str))
        .collect();
    let job_id = &gets[0].params["JobId"];
    assert_eq!(
        markers,
        [
            None,
            Some(format!("{job_id}/2").as_str()),
            Some(format!("{job_id}/4").as_str())
        ]
    );
}

#[tokio::test]
async fn a_failed_job_is_a_lasting_error() {
    let (_server, double, client) = start();
    let arn = create_role(&client, "app").await;
    double.fail_jobs_for(&arn, "InternalError", "The report could not be generated.");

    let error = iam::service_last_accessed(&Iam::from(client), &arn, POLL, TIMEOUT)
        .await
        .unwrap_err();
    let IamError::Api {
        operation, message, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*operation, "GetServiceLastAccessedDetails");
    assert!(
        message.contains("InternalError: The report could not be generated."),
        "{message}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_job_still_running_at_the_timeout_is_retryable() {
    let (_server, double, client) = start();
    let arn = create_role(&client, "app").await;
    double.set_in_progress_polls(u32::MAX);

    let error =
        iam::service_last_accessed(&Iam::from(client), &arn, POLL, Duration::from_millis(300))
            .await
            .unwrap_err();
    let IamError::Api { message, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("still in progress"), "{message}");
    assert!(error.is_retryable());
    let polls = double
        .actions()
        .iter()
        .filter(|a| *a == "GetServiceLastAccessedDetails")
        .count();
    // At least one poll (the timeout also covers starting the job, which asks moto), and it
    // stopped: no more than one per interval.
    assert!(
        (1..=31).contains(&polls),
        "{polls} polls in 300 ms at 10 ms"
    );
}

#[tokio::test]
async fn a_role_moto_does_not_have_is_not_found() {
    let (_server, double, client) = start();
    let arn = create_role(&client, "app").await;
    let missing = arn.replace(":role/app", ":role/nobody");
    let result =
        iam::service_last_accessed(&Iam::from(client.clone()), &missing, POLL, TIMEOUT).await;
    assert!(
        matches!(&result, Err(IamError::NotFound { what }) if what.contains(":role/nobody")),
        "{result:?}"
    );
    // Same name in another account: not that role either.
    let elsewhere = arn.replace(arn.split(':').nth(4).unwrap(), "999999999999");
    let result = iam::service_last_accessed(&Iam::from(client), &elsewhere, POLL, TIMEOUT).await;
    assert!(
        matches!(result, Err(IamError::NotFound { .. })),
        "{result:?}"
    );
    assert!(
        !double
            .actions()
            .contains(&"GetServiceLastAccessedDetails".to_string())
    );
}

#[tokio::test]
async fn throttling_once_is_retried_by_the_sdk() {
    let (_server, double, client) = start();
    let arn = create_role(&client, "app").await;
    double.set_services(&arn, vec![service("s3", "Amazon S3", Some(RECENT))]);
    double.fail_next(Fault::Throttling);

    let last = iam::service_last_accessed(&Iam::from(client), &arn, POLL, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(last.services.len(), 1);
    let generates = double
        .actions()
        .iter()
        .filter(|a| *a == "GenerateServiceLastAccessedDetails")
        .count();
    assert_eq!(generates, 2, "the throttled call and its retry");
}

#[tokio::test]
async fn throttling_past_the_retries_is_throttled() {
    let (_server, double, client) = start();
    let arn = create_role(&client, "app").await;
    for _ in 0..3 {
        double.fail_next(Fault::Throttling);
    }
    let error = iam::service_last_accessed(&Iam::from(client), &arn, POLL, TIMEOUT)
        .await
        .unwrap_err();
    let IamError::Throttled {
        operation, message, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*operation, "GenerateServiceLastAccessedDetails");
    assert_eq!(message, "Throttling: Rate exceeded");
    assert!(error.is_retryable());
}

/// Set in the child process of [`sdk_config_sends_iam_calls_to_aws_endpoint_url_iam`].
const CHILD: &str = "IAM_TAILOR_TEST_ENDPOINT_CHILD";

/// `aws::sdk_config` sends IAM calls to `AWS_ENDPOINT_URL_IAM` (the double) while
/// `AWS_ENDPOINT_URL` names moto, as the operator will be configured. The environment is
/// process-wide and, in Rust 2024, `set_var` is unsafe because other threads may read it; nextest
/// runs each test in its own process, but `cargo test` runs tests as threads of one. So the test
/// runs itself again as a child process with exactly the environment it needs; the child's
/// half makes the calls, the parent's checks that the double received them.
#[tokio::test]
async fn sdk_config_sends_iam_calls_to_aws_endpoint_url_iam() {
    if let Ok(arn) = std::env::var(CHILD) {
        let config = iam_tailor::aws::sdk_config(None).await;
        let api = Iam::new(&config, Default::default());
        let live = iam::read_role(&api, "app").await.unwrap();
        assert_eq!(live.arn, arn);
        let last = iam::service_last_accessed(&api, &arn, POLL, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(last.services[0].namespace, "s3");
        return;
    }

    let server = moto::Moto::start();
    let double = IamLastAccessedDouble::start(&server.endpoint);
    let arn = create_role(&server.iam(), "app").await;
    double.set_services(&arn, vec![service("s3", "Amazon S3", Some(RECENT))]);
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "iam_last_accessed::sdk_config_sends_iam_calls_to_aws_endpoint_url_iam",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env_clear()
        .env(CHILD, &arn)
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_ENDPOINT_URL_IAM", &double.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
    let actions = double.actions();
    assert_eq!(
        &actions[..2],
        ["GetRole", "ListRolePolicies"],
        "read_role went through the double: {actions:?}"
    );
    assert!(
        actions.contains(&"GenerateServiceLastAccessedDetails".to_string())
            && actions.contains(&"GetServiceLastAccessedDetails".to_string()),
        "{actions:?}"
    );
}
