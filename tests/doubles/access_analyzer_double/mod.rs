//! `AccessAnalyzerDouble`: a **test double** of AWS IAM Access Analyzer, not an emulator.
//!
//! Nothing emulates Access Analyzer (moto has no Access Analyzer), so the tests start this small
//! HTTP/1.1 server on a free loopback port (127.0.0.1 only). It speaks the service's real
//! rest-json wire protocol (the routes, JSON member names, timestamp format, and error
//! encoding with an HTTP status and the `x-amzn-ErrorType` header), so the real
//! `aws_sdk_accessanalyzer::Client`, pointed at [`AccessAnalyzerDouble::endpoint`], is exercised
//! end to end. Its answers are canned and set by the test:
//!
//! | route | operation | answer |
//! |---|---|---|
//! | `PUT /policy/generation` | StartPolicyGeneration | a new `jobId`, or the next queued [`StartFault`] |
//! | `GET /policy/generation/{jobId}` | GetGeneratedPolicy | `IN_PROGRESS` for the first [`AccessAnalyzerDouble::set_in_progress_polls`] polls, then `SUCCEEDED` with [`AccessAnalyzerDouble::set_generated_policy`] (placeholders such as `${BucketName}` kept verbatim) |
//! | `POST /policy/validation` | ValidatePolicy | [`AccessAnalyzerDouble::set_findings`] |
//! | `POST /policy/check-no-new-access` | CheckNoNewAccess | [`AccessAnalyzerDouble::set_no_new_access`] |
//! | `POST /policy/check-access-not-granted` | CheckAccessNotGranted | [`AccessAnalyzerDouble::set_access_not_granted`] |
//!
//! Every request is recorded ([`AccessAnalyzerDouble::requests`]) so tests can check what the
//! SDK sent. The double never analyses a policy: it is not a stand-in for Access Analyzer's
//! judgement, only for its protocol. The server runs on its own thread and runtime, so it
//! works from sync and async tests alike, and stops when dropped.

// Each double stands alone, and a test may use both: each has its own copy.
use crate::double_server;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_accessanalyzer::primitives::{DateTime, DateTimeFormat};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use double_server::Serving;
use serde_json::{Value, json};

/// An error StartPolicyGeneration answers instead of a job id, as AWS encodes it.
#[derive(Clone, Debug, PartialEq)]
pub enum StartFault {
    /// HTTP 409: a policy generation job is already running in the account.
    Conflict,
    /// HTTP 402: the daily job quota is used up.
    ServiceQuotaExceeded,
    /// HTTP 429 with `Retry-After: seconds`.
    Throttling { retry_after_seconds: u32 },
}

/// The result of CheckNoNewAccess / CheckAccessNotGranted.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    Pass,
    /// `FAIL`, with reasons: (description, statementIndex).
    Fail(Vec<(String, i32)>),
}

/// One request as received: method, path (with query) and JSON body (`Null` when empty).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub body: Value,
}

#[derive(Clone, Debug)]
struct Job {
    polls: u32,
    principal_arn: String,
    cloud_trail: Value,
    started_on: DateTime,
}

#[derive(Debug)]
struct Inner {
    in_progress_polls: u32,
    generated_policy: String,
    findings: Vec<Value>,
    no_new_access: Check,
    access_not_granted: Check,
    start_faults: VecDeque<StartFault>,
    jobs: HashMap<String, Job>,
    next_job: u32,
    requests: Vec<RecordedRequest>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct AccessAnalyzerDouble {
    /// `http://127.0.0.1:PORT`, for `endpoint_url` / `AWS_ENDPOINT_URL_ACCESSANALYZER`.
    pub endpoint: String,
    state: Shared,
    _server: Serving,
}

/// A generated policy like Access Analyzer's: action-level statements with resource
/// placeholders.
pub const DEFAULT_GENERATED_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::${BucketName}/${ObjectName}"},{"Effect":"Allow","Action":"dynamodb:Query","Resource":"arn:aws:dynamodb:${Region}:${Account}:table/${TableName}"}]}"#;

impl AccessAnalyzerDouble {
    /// Starts the double on `127.0.0.1:0`: jobs succeed after one `IN_PROGRESS` poll with
    /// [`DEFAULT_GENERATED_POLICY`], no findings, both checks `PASS`.
    pub fn start() -> AccessAnalyzerDouble {
        let state: Shared = Arc::new(Mutex::new(Inner {
            in_progress_polls: 1,
            generated_policy: DEFAULT_GENERATED_POLICY.to_string(),
            findings: Vec::new(),
            no_new_access: Check::Pass,
            access_not_granted: Check::Pass,
            start_faults: VecDeque::new(),
            jobs: HashMap::new(),
            next_job: 0,
            requests: Vec::new(),
        }));
        let routes = state.clone();
        let server = Serving::start(move || {
            Router::new()
                .route("/policy/generation", put(start_policy_generation))
                .route("/policy/generation/{job_id}", get(get_generated_policy))
                .route("/policy/validation", post(validate_policy))
                .route("/policy/check-no-new-access", post(check_no_new_access))
                .route(
                    "/policy/check-access-not-granted",
                    post(check_access_not_granted),
                )
                .fallback(unknown_route)
                .with_state(routes)
        });
        AccessAnalyzerDouble {
            endpoint: server.endpoint.clone(),
            state,
            _server: server,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// How many GetGeneratedPolicy calls per job answer `IN_PROGRESS` before `SUCCEEDED`.
    pub fn set_in_progress_polls(&self, polls: u32) {
        self.with(|s| s.in_progress_polls = polls);
    }

    /// The policy document text (placeholders kept verbatim) a succeeded job returns.
    pub fn set_generated_policy(&self, policy: &str) {
        self.with(|s| s.generated_policy = policy.to_string());
    }

    /// The findings ValidatePolicy answers; build them with [`finding`].
    pub fn set_findings(&self, findings: Vec<Value>) {
        self.with(|s| s.findings = findings);
    }

    pub fn set_no_new_access(&self, check: Check) {
        self.with(|s| s.no_new_access = check);
    }

    pub fn set_access_not_granted(&self, check: Check) {
        self.with(|s| s.access_not_granted = check);
    }

    /// Queues an error for the next StartPolicyGeneration call (one call per queued fault).
    pub fn fail_next_start(&self, fault: StartFault) {
        self.with(|s| s.start_faults.push_back(fault));
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.with(|s| s.requests.clone())
    }

    /// The ids of the jobs started so far.
    pub fn job_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.with(|s| s.jobs.keys().cloned().collect());
        ids.sort();
        ids
    }
}

/// A ValidatePolicy finding as AWS encodes it, with one location: a JSON path (`Statement`,
/// `0`, `Action`, `1` → key/index path elements) and a span given as (line, column, offset)
/// start and end positions.
pub fn finding(
    finding_type: &str,
    issue_code: &str,
    details: &str,
    path: &[&str],
    start: (i32, i32, i32),
    end: (i32, i32, i32),
) -> Value {
    let path: Vec<Value> = path
        .iter()
        .map(|p| match p.parse::<i64>() {
            Ok(i) => json!({ "index": i }),
            Err(_) => json!({ "key": p }),
        })
        .collect();
    let pos = |(line, column, offset): (i32, i32, i32)| json!({ "line": line, "column": column, "offset": offset });
    json!({
        "findingType": finding_type,
        "issueCode": issue_code,
        "findingDetails": details,
        "learnMoreLink": format!(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html#{}",
            issue_code.to_lowercase().replace('_', "-")
        ),
        "locations": [{ "path": path, "span": { "start": pos(start), "end": pos(end) } }],
    })
}

fn now() -> DateTime {
    DateTime::from(SystemTime::now())
}

fn timestamp(t: &DateTime) -> String {
    t.fmt(DateTimeFormat::DateTime).unwrap()
}

fn json_response(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An AWS rest-json error: the status, `x-amzn-ErrorType: <shape name>` and a JSON body.
fn aws_error(status: StatusCode, error_type: &str, body: Value) -> Response {
    let mut response = (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_str(error_type).unwrap(),
    );
    response
}

fn validation_error(message: &str) -> Response {
    aws_error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        json!({ "message": message, "reason": "other" }),
    )
}

fn record(state: &Shared, method: Method, uri: &Uri, body: &Bytes) -> Result<Value, String> {
    let parsed = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?
    };
    state.lock().unwrap().requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        body: parsed.clone(),
    });
    Ok(parsed)
}

async fn start_policy_generation(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let body = match record(&state, method, &uri, &body) {
        Ok(b) => b,
        Err(e) => return validation_error(&e),
    };
    let mut s = state.lock().unwrap();
    if let Some(fault) = s.start_faults.pop_front() {
        return match fault {
            StartFault::Conflict => aws_error(
                StatusCode::CONFLICT,
                "ConflictException",
                json!({
                    "message": "A policy generation job is already in progress for this account.",
                    "resourceId": "policy-generation",
                    "resourceType": "AWS::IAM::Role",
                }),
            ),
            StartFault::ServiceQuotaExceeded => aws_error(
                StatusCode::PAYMENT_REQUIRED,
                "ServiceQuotaExceededException",
                json!({
                    "message": "The daily quota of policy generation jobs has been reached.",
                    "resourceId": "policy-generation",
                    "resourceType": "AWS::IAM::Role",
                }),
            ),
            StartFault::Throttling {
                retry_after_seconds,
            } => {
                let mut r = aws_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "ThrottlingException",
                    json!({ "message": "Rate exceeded" }),
                );
                r.headers_mut()
                    .insert("Retry-After", HeaderValue::from(retry_after_seconds));
                r
            }
        };
    }
    let Some(principal_arn) = body
        .pointer("/policyGenerationDetails/principalArn")
        .and_then(Value::as_str)
    else {
        return validation_error("policyGenerationDetails.principalArn is required");
    };
    s.next_job += 1;
    let job_id = format!("00000000-0000-4000-8000-{:012}", s.next_job);
    let job = Job {
        polls: 0,
        principal_arn: principal_arn.to_string(),
        cloud_trail: body
            .get("cloudTrailDetails")
            .cloned()
            .unwrap_or(Value::Null),
        started_on: now(),
    };
    s.jobs.insert(job_id.clone(), job);
    json_response(json!({ "jobId": job_id }))
}

async fn get_generated_policy(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
    method: Method,
    uri: Uri,
) -> Response {
    if let Err(e) = record(&state, method, &uri, &Bytes::new()) {
        return validation_error(&e);
    }
    let mut s = state.lock().unwrap();
    let in_progress_polls = s.in_progress_polls;
    let policy = s.generated_policy.clone();
    let Some(job) = s.jobs.get_mut(&job_id) else {
        return validation_error(&format!("No policy generation job with id {job_id}"));
    };
    job.polls += 1;
    let started_on = timestamp(&job.started_on);
    if job.polls <= in_progress_polls {
        return json_response(json!({
            "jobDetails": { "jobId": job_id, "status": "IN_PROGRESS", "startedOn": started_on },
            "generatedPolicyResult": { "properties": { "principalArn": job.principal_arn } },
        }));
    }
    let trail = &job.cloud_trail;
    let trail_properties: Vec<Value> = trail
        .get("trails")
        .and_then(Value::as_array)
        .map(|trails| {
            trails
                .iter()
                .map(|t| {
                    json!({
                        "cloudTrailArn": t.get("cloudTrailArn").cloned().unwrap_or_default(),
                        "regions": t.get("regions").cloned().unwrap_or(json!([])),
                        "allRegions": t.get("allRegions").cloned().unwrap_or(json!(false)),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let start_time = trail.get("startTime").cloned().unwrap_or(json!(started_on));
    let end_time = trail.get("endTime").cloned().unwrap_or(json!(started_on));
    json_response(json!({
        "jobDetails": {
            "jobId": job_id,
            "status": "SUCCEEDED",
            "startedOn": started_on,
            "completedOn": timestamp(&now()),
        },
        "generatedPolicyResult": {
            "properties": {
                "isComplete": true,
                "principalArn": job.principal_arn,
                "cloudTrailProperties": {
                    "trailProperties": trail_properties,
                    "startTime": start_time,
                    "endTime": end_time,
                },
            },
            "generatedPolicies": [{ "policy": policy }],
        },
    }))
}

async fn validate_policy(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let body = match record(&state, method, &uri, &body) {
        Ok(b) => b,
        Err(e) => return validation_error(&e),
    };
    if body.get("policyDocument").and_then(Value::as_str).is_none()
        || body.get("policyType").and_then(Value::as_str).is_none()
    {
        return validation_error("policyDocument and policyType are required");
    }
    let findings = state.lock().unwrap().findings.clone();
    json_response(json!({ "findings": findings }))
}

fn check_response(check: &Check, pass: &str, fail: &str) -> Response {
    match check {
        Check::Pass => json_response(json!({ "result": "PASS", "message": pass, "reasons": [] })),
        Check::Fail(reasons) => json_response(json!({
            "result": "FAIL",
            "message": fail,
            "reasons": reasons
                .iter()
                .map(|(d, i)| json!({ "description": d, "statementIndex": i }))
                .collect::<Vec<_>>(),
        })),
    }
}

async fn check_no_new_access(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let body = match record(&state, method, &uri, &body) {
        Ok(b) => b,
        Err(e) => return validation_error(&e),
    };
    for field in ["newPolicyDocument", "existingPolicyDocument", "policyType"] {
        if body.get(field).and_then(Value::as_str).is_none() {
            return validation_error(&format!("{field} is required"));
        }
    }
    let check = state.lock().unwrap().no_new_access.clone();
    check_response(
        &check,
        "The modified permissions grant no new access compared to your existing policy.",
        "The modified permissions grant new access compared to your existing policy.",
    )
}

async fn check_access_not_granted(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let body = match record(&state, method, &uri, &body) {
        Ok(b) => b,
        Err(e) => return validation_error(&e),
    };
    if body.get("policyDocument").and_then(Value::as_str).is_none()
        || body.get("access").and_then(Value::as_array).is_none()
        || body.get("policyType").and_then(Value::as_str).is_none()
    {
        return validation_error("policyDocument, access and policyType are required");
    }
    let check = state.lock().unwrap().access_not_granted.clone();
    check_response(
        &check,
        "The policy document does not grant access to perform the listed actions or resources.",
        "The policy document grants access to perform one or more of the listed actions or resources.",
    )
}

async fn unknown_route(State(state): State<Shared>, method: Method, uri: Uri) -> Response {
    let _ = record(&state, method.clone(), &uri, &Bytes::new());
    aws_error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        json!({ "message": format!("the Access Analyzer test double has no route {method} {uri}") }),
    )
}
