//! `IamLastAccessedDouble`: a **test double** of two IAM operations, not an emulator, standing
//! in front of a real moto server.
//!
//! moto does not implement IAM's last-accessed reports, so the tests start this small HTTP/1.1
//! server on a free loopback port (127.0.0.1 only). It speaks IAM's real query protocol (a
//! form-encoded `POST /` with `Action=…&Version=2010-05-08`, XML answers in the
//! `https://iam.amazonaws.com/doc/2010-05-08/` namespace, errors as `<ErrorResponse>` with
//! `NoSuchEntity` on HTTP 404 and `Throttling` on 400), so the real `aws_sdk_iam::Client`,
//! pointed at [`IamLastAccessedDouble::endpoint`], is exercised end to end. Everything else
//! goes to moto, so roles and policies live there:
//!
//! | request | answer |
//! |---|---|
//! | `Action=GenerateServiceLastAccessedDetails` | the next queued [`Fault`]; else, when moto has the role (a `GetRole` for the ARN's role name, forwarded with the caller's `Authorization` header, and moto's ARN equal to `Arn`), a new `JobId`; else `NoSuchEntity` (404). Non-role ARNs: `InvalidInput` (400). |
//! | `Action=GetServiceLastAccessedDetails` | the next queued [`Fault`]; else `IN_PROGRESS` for the first [`IamLastAccessedDouble::set_in_progress_polls`] polls of the job, then `COMPLETED` with the services set for its role ([`IamLastAccessedDouble::set_services`], as they were when the job started), [`IamLastAccessedDouble::set_page_size`] (or the request's `MaxItems`) per page with `IsTruncated`/`Marker`; `FAILED` with an `<Error>` for roles given to [`IamLastAccessedDouble::fail_jobs_for`]; an unknown `JobId` is `NoSuchEntity` (404). |
//! | anything else | forwarded unchanged (method, path and query, headers, body) to moto, and moto's status, headers and body returned unchanged (only the hop-by-hop `Connection` and `Transfer-Encoding` are left to each hop). |
//!
//! Every request is recorded ([`IamLastAccessedDouble::requests`]: its `Action`, form
//! parameters, and whether it went to moto) so tests can check what the SDK sent. The double
//! never computes last-accessed data: the answers are canned by the test. The server runs on
//! its own thread and runtime, so it works from sync and async tests alike, and stops when
//! dropped.

// Each double stands alone, and a test may use both: each has its own copy.
use crate::double_server;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_sdk_iam::primitives::{DateTime, DateTimeFormat};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use double_server::Serving;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const GENERATE: &str = "GenerateServiceLastAccessedDetails";
const GET: &str = "GetServiceLastAccessedDetails";

/// A service in a canned report, named as in IAM's `ServiceLastAccessed`.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// ISO 8601 (`2026-09-20T08:00:00Z`); `None`: not used in the tracking period.
    pub last_authenticated: Option<String>,
    pub last_authenticated_region: Option<String>,
    /// `TrackedActionsLastAccessed`; `None` leaves the element out, as IAM does for services
    /// without action-level tracking.
    pub tracked_actions: Option<Vec<TrackedAction>>,
}

/// A tracked action; `name` without the service prefix (`GetObject`), as IAM sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedAction {
    pub name: String,
    pub last_accessed: Option<String>,
    pub region: Option<String>,
}

/// A service used (in `us-east-1`) at `last_authenticated`, or never.
pub fn service(namespace: &str, name: &str, last_authenticated: Option<&str>) -> Service {
    Service {
        namespace: namespace.to_string(),
        name: name.to_string(),
        last_authenticated: last_authenticated.map(str::to_string),
        last_authenticated_region: last_authenticated.map(|_| "us-east-1".to_string()),
        tracked_actions: None,
    }
}

/// A tracked action used (in `us-east-1`) at `last_accessed`, or never.
pub fn tracked(name: &str, last_accessed: Option<&str>) -> TrackedAction {
    TrackedAction {
        name: name.to_string(),
        last_accessed: last_accessed.map(str::to_string),
        region: last_accessed.map(|_| "us-east-1".to_string()),
    }
}

impl Service {
    /// With action-level data.
    pub fn with_actions(mut self, actions: Vec<TrackedAction>) -> Service {
        self.tracked_actions = Some(actions);
        self
    }
}

/// An error answered instead of the next GenerateServiceLastAccessedDetails or
/// GetServiceLastAccessedDetails (one request per queued fault).
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// HTTP 400, `Throttling`.
    Throttling,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The form's `Action`; empty when there is none.
    pub action: String,
    /// The form parameters (the query string's for a request without a form body).
    pub params: BTreeMap<String, String>,
    /// Sent on to moto rather than answered here.
    pub forwarded: bool,
}

#[derive(Clone, Debug)]
struct Job {
    role_arn: String,
    action_level: bool,
    polls: u32,
    created: String,
    services: Vec<Service>,
    failure: Option<(String, String)>,
}

#[derive(Debug)]
struct Inner {
    upstream: String,
    in_progress_polls: u32,
    page_size: Option<usize>,
    services: HashMap<String, Vec<Service>>,
    failures: HashMap<String, (String, String)>,
    faults: VecDeque<Fault>,
    jobs: HashMap<String, Job>,
    next_id: u64,
    requests: Vec<RecordedRequest>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap())
    }
}

pub struct IamLastAccessedDouble {
    /// `http://127.0.0.1:PORT`, for `endpoint_url` / `AWS_ENDPOINT_URL_IAM`.
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
    _server: Serving,
}

impl IamLastAccessedDouble {
    /// Starts the double on `127.0.0.1:0` in front of `upstream` (moto's endpoint): jobs
    /// complete after one `IN_PROGRESS` poll, all services on one page, no canned services.
    pub fn start(upstream: &str) -> IamLastAccessedDouble {
        let inner = Arc::new(Mutex::new(Inner {
            upstream: upstream.trim_end_matches('/').to_string(),
            in_progress_polls: 1,
            page_size: None,
            services: HashMap::new(),
            failures: HashMap::new(),
            faults: VecDeque::new(),
            jobs: HashMap::new(),
            next_id: 0,
            requests: Vec::new(),
        }));
        let state_inner = inner.clone();
        let server = Serving::start(move || {
            let state = Shared {
                inner: state_inner,
                client: Client::builder(TokioExecutor::new()).build_http(),
            };
            Router::new().fallback(handle).with_state(state)
        });
        IamLastAccessedDouble {
            endpoint: server.endpoint.clone(),
            inner,
            _server: server,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap())
    }

    /// The services a job for `role_arn` reports (jobs started from now on).
    pub fn set_services(&self, role_arn: &str, services: Vec<Service>) {
        self.with(|s| s.services.insert(role_arn.to_string(), services));
    }

    /// How many GetServiceLastAccessedDetails calls per job answer `IN_PROGRESS` first.
    pub fn set_in_progress_polls(&self, polls: u32) {
        self.with(|s| s.in_progress_polls = polls);
    }

    /// Services per page when the request gives no `MaxItems`; `None`: all on one page.
    pub fn set_page_size(&self, size: Option<usize>) {
        self.with(|s| s.page_size = size);
    }

    /// Jobs for `role_arn` (started from now on) end `FAILED` with this `<Error>`.
    pub fn fail_jobs_for(&self, role_arn: &str, code: &str, message: &str) {
        self.with(|s| {
            s.failures.insert(
                role_arn.to_string(),
                (code.to_string(), message.to_string()),
            )
        });
    }

    /// Queues an error for the next last-accessed request.
    pub fn fail_next(&self, fault: Fault) {
        self.with(|s| s.faults.push_back(fault));
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.with(|s| s.requests.clone())
    }

    /// The `Action`s received so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.action).collect()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

fn optional(name: &str, value: Option<&str>) -> String {
    value.map(|v| element(name, v)).unwrap_or_default()
}

fn request_id(state: &Shared) -> String {
    let n = state.with(|s| {
        s.next_id += 1;
        s.next_id
    });
    format!("00000000-0000-4000-a000-{n:012x}")
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// `<{action}Response><{action}Result>{result}</…><ResponseMetadata>…`.
fn success(state: &Shared, action: &str, result: &str) -> Response {
    let id = request_id(state);
    xml(
        StatusCode::OK,
        format!(
            r#"<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></{action}Response>"#
        ),
    )
}

/// The query protocol's error document.
fn error(state: &Shared, status: StatusCode, code: &str, message: &str) -> Response {
    let id = request_id(state);
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    xml(
        status,
        format!(
            r#"<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>"#,
            escape(message)
        ),
    )
}

fn fault_response(state: &Shared, fault: Fault) -> Response {
    match fault {
        Fault::Throttling => error(
            state,
            StatusCode::BAD_REQUEST,
            "Throttling",
            "Rate exceeded",
        ),
    }
}

fn now() -> String {
    DateTime::from(std::time::SystemTime::now())
        .fmt(DateTimeFormat::DateTime)
        .unwrap()
}

/// Headers that describe one connection, not the message.
fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    name == header::CONNECTION || name == header::TRANSFER_ENCODING
}

async fn handle(State(state): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(
                &state,
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &e.to_string(),
            );
        }
    };
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let params: BTreeMap<String, String> = if is_form {
        form_urlencoded::parse(&body).into_owned().collect()
    } else {
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect()
    };
    let action = params.get("Action").cloned().unwrap_or_default();
    let own = is_form && (action == GENERATE || action == GET);
    state.with(|s| {
        s.requests.push(RecordedRequest {
            action: action.clone(),
            params: params.clone(),
            forwarded: !own,
        })
    });
    if !own {
        return forward(&state, parts, body).await;
    }
    if let Some(fault) = state.with(|s| s.faults.pop_front()) {
        return fault_response(&state, fault);
    }
    if action == GENERATE {
        generate(&state, &parts.headers, &params).await
    } else {
        get(&state, &params)
    }
}

/// Sends the request to moto as it came and returns moto's answer as it came.
async fn forward(state: &Shared, parts: axum::http::request::Parts, body: Bytes) -> Response {
    let upstream = state.with(|s| s.upstream.clone());
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = axum::http::Request::builder()
        .method(parts.method)
        .uri(format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            builder = builder.header(name, value);
        }
    }
    let request = builder.body(Full::new(body)).unwrap();
    let response = match state.client.request(request).await {
        Ok(response) => response,
        Err(e) => {
            return error(
                state,
                StatusCode::BAD_GATEWAY,
                "ServiceFailure",
                &format!("moto: {e}"),
            );
        }
    };
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(
                state,
                StatusCode::BAD_GATEWAY,
                "ServiceFailure",
                &format!("moto: {e}"),
            );
        }
    };
    let mut answer = Response::new(Body::from(body));
    *answer.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}

/// The ARN of the role `name` in moto, `None` when moto has no such role. Sent with the
/// caller's `Authorization` header: moto picks the service (and account) from it.
async fn moto_role_arn(
    state: &Shared,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<String>, String> {
    let upstream = state.with(|s| s.upstream.clone());
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "GetRole")
        .append_pair("Version", "2010-05-08")
        .append_pair("RoleName", name)
        .finish();
    let mut builder = axum::http::Request::builder()
        .method("POST")
        .uri(format!("{upstream}/"))
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        );
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    let request = builder.body(Full::new(Bytes::from(body))).unwrap();
    let response = state
        .client
        .request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text = String::from_utf8_lossy(&text);
    if status == StatusCode::NOT_FOUND || text.contains("<Code>NoSuchEntity</Code>") {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(format!("moto GetRole answered {status}: {text}"));
    }
    // The role's own `<Arn>` (a permissions boundary is `<PermissionsBoundaryArn>`).
    let arn = text
        .split_once("<Arn>")
        .and_then(|(_, rest)| rest.split_once("</Arn>"))
        .map(|(arn, _)| arn.to_string())
        .ok_or_else(|| format!("moto GetRole answered without an Arn: {text}"))?;
    Ok(Some(arn))
}

async fn generate(
    state: &Shared,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
) -> Response {
    let Some(arn) = params.get("Arn") else {
        return error(
            state,
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "Arn is required",
        );
    };
    let action_level = match params.get("Granularity").map(String::as_str) {
        None | Some("SERVICE_LEVEL") => false,
        Some("ACTION_LEVEL") => true,
        Some(other) => {
            return error(
                state,
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &format!("Invalid Granularity {other}"),
            );
        }
    };
    let Some((_, path)) = arn.split_once(":role/") else {
        return error(
            state,
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            &format!("the test double only reports on roles, not {arn}"),
        );
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    match moto_role_arn(state, headers, name).await {
        Ok(Some(found)) if &found == arn => {}
        Ok(_) => {
            return error(
                state,
                StatusCode::NOT_FOUND,
                "NoSuchEntity",
                &format!("The role with name {name} cannot be found."),
            );
        }
        Err(e) => {
            return error(
                state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceFailure",
                &e,
            );
        }
    }
    let job_id = state.with(|s| {
        s.next_id += 1;
        let job_id = format!("{:08x}-5a1e-4c0d-9b0b-{:012x}", s.next_id, s.next_id);
        let job = Job {
            role_arn: arn.clone(),
            action_level,
            polls: 0,
            created: now(),
            services: s.services.get(arn).cloned().unwrap_or_default(),
            failure: s.failures.get(arn).cloned(),
        };
        s.jobs.insert(job_id.clone(), job);
        job_id
    });
    success(state, GENERATE, &element("JobId", &job_id))
}

fn service_xml(service: &Service, role_arn: &str, action_level: bool) -> String {
    let used = service.last_authenticated.is_some();
    let tracked = match (&service.tracked_actions, action_level) {
        (Some(actions), true) => {
            let members: String = actions
                .iter()
                .map(|a| {
                    format!(
                        "<member>{}{}{}{}</member>",
                        element("ActionName", &a.name),
                        optional("LastAccessedTime", a.last_accessed.as_deref()),
                        optional(
                            "LastAccessedEntity",
                            a.last_accessed.as_ref().map(|_| role_arn)
                        ),
                        optional("LastAccessedRegion", a.region.as_deref()),
                    )
                })
                .collect();
            format!("<TrackedActionsLastAccessed>{members}</TrackedActionsLastAccessed>")
        }
        _ => String::new(),
    };
    format!(
        "<member>{}{}{}{}{}{}{tracked}</member>",
        element("ServiceName", &service.name),
        element("ServiceNamespace", &service.namespace),
        optional("LastAuthenticated", service.last_authenticated.as_deref()),
        optional("LastAuthenticatedEntity", used.then_some(role_arn)),
        optional(
            "LastAuthenticatedRegion",
            service.last_authenticated_region.as_deref()
        ),
        optional("TotalAuthenticatedEntities", used.then_some("1")),
    )
}

fn get(state: &Shared, params: &BTreeMap<String, String>) -> Response {
    let Some(job_id) = params.get("JobId") else {
        return error(
            state,
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "JobId is required",
        );
    };
    let max_items = match params.get("MaxItems").map(|m| m.parse::<usize>()) {
        None => None,
        Some(Ok(n)) if (1..=1000).contains(&n) => Some(n),
        Some(_) => {
            return error(
                state,
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "MaxItems must be between 1 and 1000",
            );
        }
    };
    let found = state.with(|s| {
        let in_progress_polls = s.in_progress_polls;
        let page_size = max_items.or(s.page_size);
        s.jobs.get_mut(job_id).map(|job| {
            job.polls += 1;
            (job.clone(), job.polls <= in_progress_polls, page_size)
        })
    });
    let Some((job, in_progress, page_size)) = found else {
        return error(
            state,
            StatusCode::NOT_FOUND,
            "NoSuchEntity",
            &format!("Job {job_id} not found."),
        );
    };
    let job_type = if job.action_level {
        "ACTION_LEVEL"
    } else {
        "SERVICE_LEVEL"
    };
    let job_fields = format!(
        "{}{}",
        element("JobType", job_type),
        element("JobCreationDate", &job.created)
    );
    if in_progress {
        return success(
            state,
            GET,
            &format!(
                "{}{job_fields}<ServicesLastAccessed/><IsTruncated>false</IsTruncated>",
                element("JobStatus", "IN_PROGRESS")
            ),
        );
    }
    if let Some((code, message)) = &job.failure {
        return success(
            state,
            GET,
            &format!(
                "{}{job_fields}{}<ServicesLastAccessed/><IsTruncated>false</IsTruncated><Error>{}{}</Error>",
                element("JobStatus", "FAILED"),
                element("JobCompletionDate", &now()),
                element("Message", message),
                element("Code", code),
            ),
        );
    }
    // The marker is `{job id}/{offset}`; any other is refused like IAM refuses a stale one.
    let start = match params.get("Marker") {
        None => 0,
        Some(marker) => match marker
            .strip_prefix(&format!("{job_id}/"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(offset) if offset <= job.services.len() => offset,
            _ => {
                return error(
                    state,
                    StatusCode::BAD_REQUEST,
                    "InvalidInput",
                    &format!("Invalid Marker {marker}"),
                );
            }
        },
    };
    let end = page_size.map_or(job.services.len(), |n| (start + n).min(job.services.len()));
    let members: String = job.services[start..end]
        .iter()
        .map(|s| service_xml(s, &job.role_arn, job.action_level))
        .collect();
    let truncated = end < job.services.len();
    let marker = if truncated {
        element("Marker", &format!("{job_id}/{end}"))
    } else {
        String::new()
    };
    success(
        state,
        GET,
        &format!(
            "{}{job_fields}{}<ServicesLastAccessed>{members}</ServicesLastAccessed><IsTruncated>{truncated}</IsTruncated>{marker}",
            element("JobStatus", "COMPLETED"),
            element("JobCompletionDate", &now()),
        ),
    )
}
