//! IAM Access Analyzer: policy generation from a CloudTrail trail (the engine teams already
//! run), and its policy checks, used as extra gates before an apply.
//!
//! Each function is one call (or one paged/chunked series) and returns plain data, so the
//! controller can keep a generation job's id in status and poll it across reconciles and
//! restarts instead of blocking on it.

use super::{Limited, sdk_message};
use crate::policy::lint::{self, Severity};
use aws_sdk_accessanalyzer::Client;
use aws_sdk_accessanalyzer::config::http::HttpResponse;
use aws_sdk_accessanalyzer::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_accessanalyzer::primitives::DateTime;
use aws_sdk_accessanalyzer::types::{
    Access, AccessCheckPolicyType, CheckAccessNotGrantedResult, CheckNoNewAccessResult,
    CloudTrailDetails, JobStatus, PathElement, PolicyGenerationDetails, PolicyType, Trail,
    ValidatePolicyFinding, ValidatePolicyFindingType, ValidatePolicyResourceType,
};

/// CheckAccessNotGranted takes at most this many actions per access entry.
const MAX_ACTIONS_PER_CHECK: usize = 100;

/// A failed Access Analyzer call, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    /// A policy generation job is already running in the account (one at a time).
    #[error("{operation}: another policy generation job is running in the account: {message}")]
    Conflict {
        operation: &'static str,
        message: String,
    },
    /// The daily quota of generation jobs is used up.
    #[error("{operation}: service quota exceeded: {message}")]
    QuotaExceeded {
        operation: &'static str,
        message: String,
    },
    #[error("{operation}: throttled: {message}")]
    Throttled {
        operation: &'static str,
        message: String,
    },
    #[error("{operation}: {message}")]
    Api {
        operation: &'static str,
        message: String,
        /// A server-side (5xx) or network failure.
        retryable: bool,
    },
}

impl AnalyzerError {
    /// Whether trying again soon may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            AnalyzerError::Conflict { .. } | AnalyzerError::Throttled { .. } => true,
            AnalyzerError::Api { retryable, .. } => *retryable,
            AnalyzerError::QuotaExceeded { .. } => false,
        }
    }
}

fn sdk_error<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> AnalyzerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = sdk_message(&error);
    let status = error.raw_response().map(|r| r.status().as_u16());
    let transient = matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
    );
    match error.code() {
        Some("ConflictException") => AnalyzerError::Conflict { operation, message },
        Some("ServiceQuotaExceededException") => {
            AnalyzerError::QuotaExceeded { operation, message }
        }
        Some("ThrottlingException") => AnalyzerError::Throttled { operation, message },
        _ => AnalyzerError::Api {
            operation,
            message,
            retryable: transient || status.is_some_and(|s| s >= 500),
        },
    }
}

/// An Access Analyzer client whose calls share the operator's AWS rate limit;
/// `AccessAnalyzer::from(client)` is unlimited.
pub type AccessAnalyzer = Limited<Client>;

impl AccessAnalyzer {
    /// Honours `AWS_ENDPOINT_URL_ACCESSANALYZER` (and `AWS_ENDPOINT_URL`) like every client.
    pub fn new(config: &aws_config::SdkConfig, limits: super::Limits) -> Self {
        Limited::with_limits(Client::new(config), limits)
    }
}

/// The trail Access Analyzer reads, and the role it reads it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailSource {
    pub trail_arn: String,
    /// A role Access Analyzer assumes to read the trail and its bucket.
    pub access_role_arn: String,
    /// Regions whose events count; ignored when `all_regions`.
    pub regions: Vec<String>,
    pub all_regions: bool,
}

/// Window bounds in seconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// Starts a generation job for `principal_arn` over `window` of `trail`; returns its id.
pub async fn start_policy_generation(
    analyzer: &AccessAnalyzer,
    principal_arn: &str,
    trail: &TrailSource,
    window: Window,
) -> Result<String, AnalyzerError> {
    const OPERATION: &str = "StartPolicyGeneration";
    let invalid = |e: aws_sdk_accessanalyzer::error::BuildError| AnalyzerError::Api {
        operation: OPERATION,
        message: e.to_string(),
        retryable: false,
    };
    let details = PolicyGenerationDetails::builder()
        .principal_arn(principal_arn)
        .build()
        .map_err(invalid)?;
    let mut source = Trail::builder().cloud_trail_arn(&trail.trail_arn);
    if trail.all_regions {
        source = source.all_regions(true);
    } else {
        source = source.set_regions(Some(trail.regions.clone()));
    }
    let cloud_trail = CloudTrailDetails::builder()
        .trails(source.build().map_err(invalid)?)
        .access_role(&trail.access_role_arn)
        .start_time(DateTime::from_secs(window.start))
        .end_time(DateTime::from_secs(window.end))
        .build()
        .map_err(invalid)?;
    let out = analyzer
        .call()
        .await
        .start_policy_generation()
        .policy_generation_details(details)
        .cloud_trail_details(cloud_trail)
        .send()
        .await
        .map_err(|e| sdk_error(OPERATION, e))?;
    Ok(out.job_id().to_string())
}

/// Where a generation job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenerationJob {
    InProgress,
    /// The generated documents, placeholders (`${BucketName}`) kept for the caller to resolve.
    Succeeded {
        policies: Vec<String>,
    },
    /// FAILED or CANCELED, with Access Analyzer's reason.
    Ended {
        status: String,
        reason: String,
    },
}

/// Polls a generation job once.
pub async fn get_generated_policy(
    analyzer: &AccessAnalyzer,
    job_id: &str,
) -> Result<GenerationJob, AnalyzerError> {
    let out = analyzer
        .call()
        .await
        .get_generated_policy()
        .job_id(job_id)
        .include_resource_placeholders(true)
        .include_service_level_template(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetGeneratedPolicy", e))?;
    let details = out.job_details();
    Ok(match details.map(|d| d.status()) {
        Some(JobStatus::Succeeded) => GenerationJob::Succeeded {
            policies: out
                .generated_policy_result()
                .map(|r| {
                    r.generated_policies()
                        .iter()
                        .map(|p| p.policy().to_string())
                        .collect()
                })
                .unwrap_or_default(),
        },
        Some(JobStatus::InProgress) => GenerationJob::InProgress,
        other => GenerationJob::Ended {
            status: other.map_or("UNKNOWN", |s| s.as_str()).to_string(),
            reason: details
                .and_then(|d| d.job_error())
                .map(|e| format!("{}: {}", e.code().as_str(), e.message()))
                .unwrap_or_else(|| "no reason given".to_string()),
        },
    })
}

/// A ValidatePolicy finding, in the linter's terms.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RemoteFinding {
    pub severity: Severity,
    /// Access Analyzer's issue code, e.g. `PASS_ROLE_WITH_STAR_IN_RESOURCE`.
    pub code: String,
    pub message: String,
    /// Each location as a JSON path with its line and column: `Statement[1].Resource (1:150)`.
    pub locations: Vec<String>,
}

fn severity(kind: &ValidatePolicyFindingType) -> Severity {
    match kind {
        ValidatePolicyFindingType::Error => Severity::Error,
        ValidatePolicyFindingType::SecurityWarning => Severity::SecurityWarning,
        ValidatePolicyFindingType::Warning => Severity::Warning,
        _ => Severity::Suggestion,
    }
}

fn remote_finding(f: &ValidatePolicyFinding) -> RemoteFinding {
    let locations = f
        .locations()
        .iter()
        .map(|location| {
            let mut path = String::new();
            for element in location.path() {
                match element {
                    PathElement::Index(i) => path.push_str(&format!("[{i}]")),
                    PathElement::Key(k) | PathElement::Value(k) => {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(k);
                    }
                    _ => path.push_str("[?]"),
                }
            }
            match location.span().and_then(|s| s.start()) {
                Some(p) => format!("{path} ({}:{})", p.line(), p.column()),
                None => path,
            }
        })
        .collect();
    RemoteFinding {
        severity: severity(f.finding_type()),
        code: f.issue_code().to_string(),
        message: f.finding_details().to_string(),
        locations,
    }
}

/// ValidatePolicy on a document attached as `kind`, every page, most severe first.
pub async fn validate_policy(
    analyzer: &AccessAnalyzer,
    document: &str,
    kind: lint::PolicyType,
) -> Result<Vec<RemoteFinding>, AnalyzerError> {
    let (policy_type, resource_type) = match kind {
        lint::PolicyType::Identity => (PolicyType::IdentityPolicy, None),
        lint::PolicyType::Trust => (
            PolicyType::ResourcePolicy,
            Some(ValidatePolicyResourceType::RoleTrust),
        ),
        lint::PolicyType::Resource => (PolicyType::ResourcePolicy, None),
    };
    let mut findings = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = analyzer
            .call()
            .await
            .validate_policy()
            .policy_document(document)
            .policy_type(policy_type.clone())
            .set_validate_policy_resource_type(resource_type.clone())
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| sdk_error("ValidatePolicy", e))?;
        findings.extend(out.findings().iter().map(remote_finding));
        match out.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_string()),
            _ => break,
        }
    }
    findings.sort_by(|a, b| {
        (a.severity, &a.code, &a.locations).cmp(&(b.severity, &b.code, &b.locations))
    });
    Ok(findings)
}

/// The verdict of a CheckNoNewAccess or CheckAccessNotGranted call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub passed: bool,
    /// Access Analyzer's reasons for a FAIL (`New access in the statement with index: 0.`).
    pub reasons: Vec<String>,
}

fn reason(description: Option<&str>, statement: Option<i32>) -> String {
    match (description, statement) {
        (Some(d), _) => d.to_string(),
        (None, Some(i)) => format!("statement {i}"),
        (None, None) => "no reason given".to_string(),
    }
}

/// Whether `new` grants nothing `existing` does not (both identity policies).
pub async fn check_no_new_access(
    analyzer: &AccessAnalyzer,
    new: &str,
    existing: &str,
) -> Result<Verdict, AnalyzerError> {
    let out = analyzer
        .call()
        .await
        .check_no_new_access()
        .new_policy_document(new)
        .existing_policy_document(existing)
        .policy_type(AccessCheckPolicyType::IdentityPolicy)
        .send()
        .await
        .map_err(|e| sdk_error("CheckNoNewAccess", e))?;
    Ok(Verdict {
        passed: out.result() == Some(&CheckNoNewAccessResult::Pass),
        reasons: out
            .reasons()
            .iter()
            .map(|r| reason(r.description(), r.statement_index()))
            .collect(),
    })
}

/// Whether `document` grants none of `actions` (patterns such as `iam:*` allowed), checked
/// in chunks of the API's limit; one failing chunk fails the whole.
pub async fn check_access_not_granted(
    analyzer: &AccessAnalyzer,
    document: &str,
    actions: &[String],
) -> Result<Verdict, AnalyzerError> {
    let mut verdict = Verdict {
        passed: true,
        reasons: Vec::new(),
    };
    for chunk in actions.chunks(MAX_ACTIONS_PER_CHECK) {
        let out = analyzer
            .call()
            .await
            .check_access_not_granted()
            .policy_document(document)
            .access(Access::builder().set_actions(Some(chunk.to_vec())).build())
            .policy_type(AccessCheckPolicyType::IdentityPolicy)
            .send()
            .await
            .map_err(|e| sdk_error("CheckAccessNotGranted", e))?;
        if out.result() != Some(&CheckAccessNotGrantedResult::Pass) {
            verdict.passed = false;
            verdict.reasons.extend(
                out.reasons()
                    .iter()
                    .map(|r| reason(r.description(), r.statement_index())),
            );
        }
    }
    Ok(verdict)
}
