//! The operator when IAM fails partway through an apply: the `iam-tailor controller` binary
//! against a real kube-apiserver and moto, with a [`FaultProxy`] between the operator and moto
//! that fails chosen IAM actions. A failed apply leaves the role no wider than before and holding
//! at least the approved policy, says so on the resource (Ready=False, a Warning Event, no
//! `status.applied`), is counted in the metrics, and the next reconcile after IAM recovers
//! finishes the job. An endpoint that never answers times out the same way; the API server
//! restarted, or moto frozen, in the middle of a reconcile loses and doubles no write.

use crate::athena_paging_double;
use crate::athena_results;
use crate::control_plane;
use crate::moto;
use crate::operator_env;
use crate::watch;

use iam_tailor::controller::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use iam_tailor::policy::Policy;
use iam_tailor::policy::analysis::{Proof, grants_no_new_access};
use iam_tailor::role::LiveRole;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use operator_env::{
    ACCOUNT, NS, Operator, apply_crds, broad_role, condition, condition_message, create_namespace,
    events, lpr, put_trail, read, reasons, sample, wait_for,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The error a faulted request gets, as IAM's query protocol returns errors.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// HTTP 400 `Throttling`: the account's IAM request rate was exceeded.
    Throttling,
    /// HTTP 500 `ServiceFailure`: IAM failed on its side.
    ServiceFailure,
    /// No answer at all: the connection is held open and nothing is ever sent back.
    Silent,
    /// HTTP 404 `NoSuchEntity`: what IAM answers for a policy created a moment ago, before
    /// its eventual consistency catches up.
    NoSuchEntity,
    /// Held, unanswered, until [`FaultProxy::release`]; then forwarded to moto. Logged as
    /// forwarded when it arrives. Stops the operator at a chosen point of a reconcile.
    Hold,
}

impl Fault {
    fn response(self) -> Vec<u8> {
        let (status, type_, code, message) = match self {
            Fault::Throttling => ("400 Bad Request", "Sender", "Throttling", "Rate exceeded"),
            Fault::ServiceFailure => (
                "500 Internal Server Error",
                "Receiver",
                "ServiceFailure",
                "Request processing has failed because of an unknown error",
            ),
            Fault::NoSuchEntity => (
                "404 Not Found",
                "Sender",
                "NoSuchEntity",
                "Policy arn:aws:iam::123456789012:policy/iam-tailor-app does not exist or is not attachable.",
            ),
            Fault::Silent | Fault::Hold => unreachable!("{self:?} sends no error"),
        };
        let body = format!(
            "<ErrorResponse><Error><Type>{type_}</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>x</RequestId></ErrorResponse>"
        );
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

#[derive(Default)]
struct ProxyState {
    /// IAM action → (how many more requests to fail, how).
    faults: HashMap<String, (u32, Fault)>,
    /// Every IAM request in arrival order.
    log: Vec<Logged>,
    /// Requests held by [`Fault::Hold`] and not yet released.
    holding: usize,
}

/// One IAM request the proxy saw.
struct Logged {
    action: String,
    /// Answered with a fault, else forwarded to moto.
    failed: bool,
    at: Instant,
}

/// A test double for the network between the operator and AWS: it forwards every HTTP/1.1
/// request unchanged to the real moto server and returns moto's response, except that it
/// answers the next `n` IAM requests of a chosen action with an error instead ([`Self::fail`]).
/// S3 object GETs and listings are logged too (as `GetObject /bucket/key`, `ListObjectsV2`);
/// other requests are only forwarded. One request per connection: it asks moto to
/// close and tells the client it closes, so every response is delimited by the connection.
struct FaultProxy {
    endpoint: String,
    state: Arc<Mutex<ProxyState>>,
    /// Opened (true) by [`FaultProxy::release`].
    gate: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let (gate, _) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn({
            let state = state.clone();
            let gate = gate.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let (upstream, state) = (upstream.clone(), state.clone());
                    let gate = gate.subscribe();
                    tokio::spawn(async move {
                        if let Err(e) = exchange(client, &upstream, &state, gate).await {
                            eprintln!("FaultProxy: {e}");
                        }
                    });
                }
            }
        });
        FaultProxy {
            endpoint,
            state,
            gate,
            accept,
        }
    }

    /// Forwards the requests held by [`Fault::Hold`] (and any held later).
    fn release(&self) {
        self.gate.send_replace(true);
    }

    /// Waits (60 s at most) until a request is held.
    async fn holds_one(&self) {
        watch::poll(
            "a held request",
            Duration::from_secs(60),
            Duration::from_millis(50),
            async || match self.state.lock().unwrap().holding {
                0 => Err("none is held".to_string()),
                _ => Ok(()),
            },
        )
        .await;
    }

    /// Answers the next `times` IAM requests for `action` (e.g. `DetachRolePolicy`) with
    /// `fault`.
    fn fail(&self, action: &str, times: u32, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        state.faults.insert(action.to_string(), (times, fault));
    }

    /// Forwards everything from now on.
    fn heal(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// When the IAM requests for `action` answered with a fault so far arrived, in order.
    fn failed(&self, action: &str) -> Vec<Instant> {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|l| l.action == action && l.failed)
            .map(|l| l.at)
            .collect()
    }

    /// IAM actions forwarded to moto so far, in order.
    fn forwarded(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|l| !l.failed)
            .map(|l| l.action.clone())
            .collect()
    }

    /// When the IAM requests for `action` forwarded to moto so far arrived, in order.
    fn forwarded_at(&self, action: &str) -> Vec<Instant> {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|l| l.action == action && !l.failed)
            .map(|l| l.at)
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One request from `client`: answered with a fault, or forwarded to `upstream`.
async fn exchange(
    mut client: TcpStream,
    upstream: &str,
    state: &Mutex<ProxyState>,
    mut gate: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let Some((head, body)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let fault = iam_action(&head, &body)
        .or_else(|| s3_get(&head))
        .or_else(|| athena_action(&head))
        .and_then(|action| {
            let mut state = state.lock().unwrap();
            let fault = match state.faults.get_mut(&action) {
                Some((remaining, fault)) if *remaining > 0 => {
                    *remaining -= 1;
                    Some(*fault)
                }
                _ => None,
            };
            state.log.push(Logged {
                action,
                failed: fault.is_some_and(|f| !matches!(f, Fault::Hold)),
                at: Instant::now(),
            });
            if let Some(Fault::Hold) = fault {
                state.holding += 1;
            }
            fault
        });
    let response = match fault {
        Some(Fault::Silent) => {
            // Held until the client gives up (or the test ends): a black hole.
            let mut rest = [0u8; 1];
            let _ = client.read(&mut rest).await;
            return Ok(());
        }
        Some(Fault::Hold) => {
            let _ = gate.wait_for(|open| *open).await;
            state.lock().unwrap().holding -= 1;
            forward(upstream, &head, &body).await?
        }
        Some(fault) => fault.response(),
        None => forward(upstream, &head, &body).await?,
    };
    client.write_all(&response).await?;
    client.shutdown().await
}

/// The request head (up to the blank line, as text) and its `Content-Length` body; `None` when
/// the client closed without sending one.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::other("the request head was cut short"))
            };
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..end].to_vec()).map_err(std::io::Error::other)?;
    if header(&head, "transfer-encoding").is_some() {
        return Err(std::io::Error::other(
            "chunked request bodies are not supported",
        ));
    }
    let length: usize = header(&head, "content-length").map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| std::io::Error::other("bad Content-Length"))
    })?;
    let mut body = buffer[end..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("the request body was cut short"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some((head, body)))
}

/// The value of the first header `name` (lower case) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// The action of an IAM query-protocol request: `Action=…` in the form-encoded POST body of a
/// request signed for the `iam` service.
fn iam_action(head: &str, body: &[u8]) -> Option<String> {
    if !head.starts_with("POST ") || !header(head, "authorization")?.contains("/iam/aws4_request") {
        return None;
    }
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_string)
}

/// `GetObject /bucket/key by KEYID` for a path-style S3 GetObject (the SDK marks it
/// `?x-id=GetObject`; KEYID is the signer's access key), `ListObjectsV2` for a listing
/// (`list-type=2`).
fn s3_get(head: &str) -> Option<String> {
    let target = head.strip_prefix("GET ")?.split(' ').next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let authorization = header(head, "authorization")?;
    if !authorization.contains("/s3/aws4_request") {
        return None;
    }
    let key_id = (authorization.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default();
    if query.split('&').any(|p| p == "list-type=2") {
        return Some("ListObjectsV2".to_string());
    }
    let get = query.is_empty() || query.split('&').any(|p| p == "x-id=GetObject");
    (get && path.trim_start_matches('/').contains('/'))
        .then(|| format!("GetObject {path} by {key_id}"))
}

/// `Athena StartQueryExecution` for an Athena JSON-protocol request (its `X-Amz-Target`).
fn athena_action(head: &str) -> Option<String> {
    let target = header(head, "x-amz-target")?;
    target
        .strip_prefix("AmazonAthena.")
        .map(|action| format!("Athena {action}"))
}

/// `head` with its `Connection` headers replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| {
            let key = line.split(':').next().unwrap_or("").trim();
            !key.eq_ignore_ascii_case("connection") && !key.eq_ignore_ascii_case("keep-alive")
        })
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

/// Sends the request to `upstream` on a new connection and returns the whole response, its
/// head saying the connection closes after it.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(closing(head).as_bytes()).await?;
    server.write_all(body).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .ok_or_else(|| std::io::Error::other("moto's response has no head"))?;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let mut relayed = closing(&head).into_bytes();
    relayed.extend_from_slice(&response[end..]);
    Ok(relayed)
}

/// A kube-apiserver, moto with role `app` (AdministratorAccess + inline `s3:*`) and its trail,
/// the proxy in front of moto, and the operator talking to AWS through the proxy.
struct World {
    // Dropped in this order: the operator first, then what it talks to.
    operator: Operator,
    proxy: FaultProxy,
    aws: moto::Moto,
    server: control_plane::ControlPlane,
    dir: tempfile::TempDir,
    kube: kube::Client,
    iam: aws_sdk_iam::Client,
    roles: Api<LeastPrivilegeRole>,
    /// Role `app` as it was before the operator started.
    original: LiveRole,
}

impl World {
    /// Everything up and running, the proxy failing every IAM request for `action` with
    /// `fault` (each attempt of every reconcile) from before the operator starts until healed.
    async fn start(action: &str, fault: Fault) -> World {
        World::start_with(action, fault, &[]).await
    }

    /// [`World::start`] with the operator given `args`.
    async fn start_with(action: &str, fault: Fault, args: &[&str]) -> World {
        let server = control_plane::ControlPlane::start();
        let aws = moto::Moto::start();
        let kube = server.client().await;
        let iam = aws.iam();
        let dir = tempfile::tempdir().unwrap();
        apply_crds(&kube).await;
        create_namespace(&kube, NS).await;
        broad_role(&iam, "app").await;
        put_trail(&aws.s3()).await;
        let original = read(&iam, "app").await;
        let proxy = FaultProxy::start(&aws.endpoint).await;
        proxy.fail(action, 1_000, fault);
        let operator = Operator::start(&server.kubeconfig, &proxy.endpoint, dir.path(), args, &[]);
        let roles = Api::namespaced(kube.clone(), NS);
        World {
            operator,
            proxy,
            aws,
            server,
            dir,
            kube,
            iam,
            roles,
            original,
        }
    }

    /// Enforce + Automatic for role `app`, whose first reconcile applies: waits until the
    /// apply has failed with Ready=False `reason`, and returns that status.
    async fn failed_apply(&self, reason: &str) -> LeastPrivilegeRoleStatus {
        let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                    cloudTrail: {s3: {bucket: org-trail-logs}}\n  forbid: [\"iam:*\"]\n";
        self.roles
            .create(&PostParams::default(), &lpr("app", spec))
            .await
            .unwrap();
        wait_for(&self.roles, "app", "the failed apply", |s| {
            condition(s, "Ready") == Some(("False", reason))
        })
        .await
    }

    /// Asserts a Warning Event `reason` on `app` whose note names the IAM `action`.
    async fn assert_warning(&self, reason: &str, action: &str) {
        let warnings: Vec<_> = events(&self.kube, NS, "app")
            .await
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .collect();
        assert!(
            warnings.iter().any(|e| e.reason.as_deref() == Some(reason)
                && e.note.as_deref().unwrap_or("").contains(action)),
            "{warnings:#?}"
        );
    }

    /// Lets every request through again and waits for the next reconcile to finish the apply
    /// (InSync, Ready, the proposal's revision applied); returns when it healed.
    async fn heal_and_finish(&self) -> Instant {
        self.proxy.heal();
        let healed_at = Instant::now();
        let done = wait_for(&self.roles, "app", "the finished apply", |s| {
            condition(s, "InSync").is_some_and(|(status, _)| status == "True")
                && condition(s, "Ready") == Some(("True", "Ready"))
        })
        .await;
        eprintln!("finished {:?} after healing", healed_at.elapsed());
        assert_eq!(
            done.applied.as_ref().unwrap().revision,
            done.proposal.as_ref().unwrap().revision
        );
        healed_at
    }

    /// Creates ClusterTrail `name` with `spec` (YAML flow mapping).
    async fn cluster_trail(&self, name: &str, spec: &str) {
        use iam_tailor::controller::ClusterTrail;
        let trail: ClusterTrail = serde_norway::from_str(&format!(
            "apiVersion: iamtailor.dev/v1alpha1\nkind: ClusterTrail\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        ))
        .unwrap();
        (Api::<ClusterTrail>::all(self.kube.clone()))
            .create(&PostParams::default(), &trail)
            .await
            .unwrap();
    }

    /// Kills the operator (only the process this started) and starts a new one with `env`.
    fn restart_operator(&mut self, env: &[(&str, &str)]) {
        self.operator.kill();
        self.operator = Operator::start(
            &self.server.kubeconfig,
            &self.proxy.endpoint,
            self.dir.path(),
            &[],
            env,
        );
    }

    /// Polls /metrics until `series` is at least `value` (30 s at most).
    async fn metric_reaches(&self, series: &str, value: f64) {
        watch::poll(
            &format!("{series} to reach {value}"),
            Duration::from_secs(30),
            Duration::from_millis(100),
            async || {
                let metrics = self.operator.get("/metrics").await.1;
                match sample(&metrics, series) {
                    Some(v) if v >= value => Ok(()),
                    _ => Err(format!("metrics:\n{metrics}")),
                }
            },
        )
        .await;
    }
}

/// The proposal's parsed from `status.proposal.policy`.
fn proposed(status: &LeastPrivilegeRoleStatus) -> Vec<Policy> {
    let policy = &status.proposal.as_ref().expect("a proposal").policy;
    let values: Vec<serde_json::Value> = serde_json::from_str(policy).unwrap();
    values
        .iter()
        .map(|v| Policy::from_value(v).unwrap())
        .collect()
}

fn attached_names(live: &LiveRole) -> Vec<&str> {
    let mut names: Vec<&str> = live.attached.iter().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    names
}

const APPLY_ERRORS: &str = r#"iam_tailor_reconcile_errors_total{reason="apply"}"#;

/// DetachRolePolicy throttled past the SDK's 3 attempts: the managed policy is put and attached,
/// AdministratorAccess stays (so the role is no wider than before and no narrower than
/// approved), the failure is on the resource and in the metrics, and once IAM answers again the
/// operator finishes: AdministratorAccess detached, the inline policy deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_detach_leaves_the_role_no_wider_and_the_next_reconcile_finishes() {
    let started = Instant::now();
    let world = World::start("DetachRolePolicy", Fault::Throttling).await;
    let proxy = &world.proxy;
    let failing = world.failed_apply("Throttled").await;
    let failed_at = Instant::now();
    assert!(
        proxy.failed("DetachRolePolicy").len() >= 3,
        "the SDK tries 3 times before the reconcile fails"
    );
    assert_eq!(condition(&failing, "InSync"), Some(("False", "Throttled")));
    let drifted = condition(&failing, "Drifted");
    assert!(
        drifted.is_none_or(|(s, _)| s != "False"),
        "not claimed in sync: {drifted:?}"
    );
    let message = condition_message(&failing, "Ready");
    assert!(
        message.contains("DetachRolePolicy") && message.contains("throttled"),
        "{message}"
    );
    assert_eq!(failing.applied, None, "nothing is claimed applied");
    assert!(failing.backup.is_some(), "the backup was written first");

    // The role: the approved policy was put and attached; the detach and everything after it
    // (the inline delete) did not happen.
    let live = read(&world.iam, "app").await;
    assert_eq!(
        attached_names(&live),
        ["AdministratorAccess", "iam-tailor-app"]
    );
    assert!(live.inline.contains_key("s3-all"), "{live:#?}");
    assert_eq!(
        grants_no_new_access(&live.documents(), &world.original.documents()),
        Proof::Proven,
        "no wider than before"
    );
    assert_eq!(
        grants_no_new_access(&proposed(&failing), &live.documents()),
        Proof::Proven,
        "no narrower than the approved proposal"
    );
    let ours = live
        .attached
        .iter()
        .find(|a| a.name == "iam-tailor-app")
        .unwrap();
    assert_eq!(
        iam_tailor::controller::plan::set_revision(std::slice::from_ref(&ours.document)),
        failing.proposal.as_ref().unwrap().revision,
        "the attached policy is the proposal"
    );
    let writes = proxy.forwarded();
    let writes: Vec<&str> = writes
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("Get") && !a.starts_with("List"))
        .collect();
    assert_eq!(
        writes,
        ["TagRole", "CreatePolicy", "AttachRolePolicy"],
        "the claim, then put and attach first"
    );

    world.assert_warning("Throttled", "DetachRolePolicy").await;
    world.metric_reaches(APPLY_ERRORS, 1.0).await;

    // Failing the same way again writes nothing: a status write would trigger a reconcile of
    // its own, and retries would not back off.
    let version = world
        .roles
        .get("app")
        .await
        .unwrap()
        .metadata
        .resource_version;
    world.metric_reaches(APPLY_ERRORS, 2.0).await;
    let still = world.roles.get("app").await.unwrap();
    assert_eq!(
        still.metadata.resource_version, version,
        "the same failure rewrote the status: {:#?}",
        still.status
    );
    let live = read(&world.iam, "app").await;
    assert_eq!(
        attached_names(&live),
        ["AdministratorAccess", "iam-tailor-app"]
    );

    // IAM answers again: the next reconcile finishes.
    let healed_at = world.heal_and_finish().await;
    eprintln!("failing for {:?} before healing", healed_at - failed_at);
    // The retry after the second failure waited out the operator's backoff (10 s).
    let last_fault = *proxy.failed("DetachRolePolicy").last().unwrap();
    let detached = proxy.forwarded_at("DetachRolePolicy")[0];
    assert!(
        detached - last_fault >= Duration::from_secs(8),
        "retried {:?} after the last failure",
        detached - last_fault
    );
    let live = read(&world.iam, "app").await;
    assert_eq!(
        attached_names(&live),
        ["iam-tailor-app"],
        "AdministratorAccess detached"
    );
    assert!(live.inline.is_empty(), "inline s3-all deleted: {live:#?}");
    let recorded = reasons(&events(&world.kube, NS, "app").await);
    for reason in ["PolicyDetached", "InlinePolicyDeleted", "PolicyApplied"] {
        assert!(recorded.contains(reason), "{reason} not in {recorded:?}");
    }
    eprintln!("throttled detach: {:?}", started.elapsed());
}

/// CreatePolicy (the first write of the first apply; PutPolicyVersion only replaces an existing
/// policy) fails with HTTP 500 past the SDK's attempts: nothing was attached or detached, so
/// the role is exactly as it was; once IAM recovers the apply completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_on_create_policy_leaves_the_role_as_it_was() {
    let started = Instant::now();
    let world = World::start("CreatePolicy", Fault::ServiceFailure).await;
    let proxy = &world.proxy;
    let failing = world.failed_apply("ApplyFailed").await;
    assert!(
        proxy.failed("CreatePolicy").len() >= 3,
        "the SDK retries a 500 before the reconcile fails"
    );
    assert_eq!(failing.applied, None);
    // Reads, and the claim (a tag, no permission), reached moto; nothing else.
    assert!(
        proxy
            .forwarded()
            .iter()
            .all(|a| a.starts_with("Get") || a.starts_with("List") || a == "TagRole"),
        "IAM writes reached moto: {:?}",
        proxy.forwarded()
    );
    let mut now = read(&world.iam, "app").await;
    assert!(now.claimed_by().is_some(), "claimed first");
    now.tags.remove(iam_tailor::role::CLAIM_TAG);
    assert_eq!(now, world.original, "the role is as it was");
    assert!(
        world
            .iam
            .get_policy()
            .policy_arn("arn:aws:iam::123456789012:policy/iam-tailor-app")
            .send()
            .await
            .is_err(),
        "no managed policy was created"
    );
    // The backup came first and stands, so a later delete with Restore still works.
    let backup = failing.backup.as_ref().expect("the backup is named");
    let config_maps: Api<ConfigMap> = Api::namespaced(world.kube.clone(), &backup.namespace);
    assert!(
        config_maps
            .get_opt(&backup.config_map)
            .await
            .unwrap()
            .is_some()
    );
    world.assert_warning("ApplyFailed", "CreatePolicy").await;
    world.metric_reaches(APPLY_ERRORS, 1.0).await;

    world.heal_and_finish().await;
    let live = read(&world.iam, "app").await;
    assert_eq!(attached_names(&live), ["iam-tailor-app"]);
    assert!(live.inline.is_empty());
    assert_eq!(
        proxy
            .forwarded()
            .iter()
            .filter(|a| *a == "CreatePolicy")
            .count(),
        1
    );
    eprintln!("server error on CreatePolicy: {:?}", started.elapsed());
}

/// IAM accepts the connection for CreatePolicy and never answers (a black hole): each attempt
/// times out (`--aws-timeout-seconds`), so the reconcile ends with a failure on the resource
/// instead of holding its slot forever; nothing was written but the claim, and once IAM answers
/// again the next reconcile finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_times_out_and_the_next_reconcile_finishes() {
    let started = Instant::now();
    let world = World::start_with(
        "CreatePolicy",
        Fault::Silent,
        &["--aws-timeout-seconds", "1"],
    )
    .await;
    let failing = world.failed_apply("ApplyFailed").await;
    assert!(
        condition_message(&failing, "Ready").contains("timeout"),
        "{:?}",
        condition_message(&failing, "Ready")
    );
    assert!(!world.proxy.failed("CreatePolicy").is_empty());
    assert_eq!(failing.applied, None);
    let mut now = read(&world.iam, "app").await;
    now.tags.remove(iam_tailor::role::CLAIM_TAG);
    assert_eq!(now, world.original, "the role is as it was");
    world.heal_and_finish().await;
    eprintln!("black hole on CreatePolicy: {:?}", started.elapsed());
}

/// IAM's eventual consistency: AttachRolePolicy answers NoSuchEntity twice right after the
/// policy was created. The operator waits and tries again within the same reconcile, so the
/// apply succeeds without a failure on the resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_not_yet_visible_after_create_is_attached_on_a_quick_retry() {
    let world = World::start("AttachRolePolicy", Fault::NoSuchEntity).await;
    world.proxy.fail("AttachRolePolicy", 2, Fault::NoSuchEntity);
    let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    world
        .roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    let done = wait_for(&world.roles, "app", "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    assert_eq!(world.proxy.failed("AttachRolePolicy").len(), 2);
    assert!(done.applied.is_some());
    let warnings: Vec<_> = events(&world.kube, NS, "app")
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        !warnings.contains(&"ApplyFailed".to_string()),
        "{warnings:?}"
    );
    assert_eq!(
        attached_names(&read(&world.iam, "app").await),
        ["iam-tailor-app"]
    );
}

/// Waits until `app`'s apply has finished (InSync, Ready, the proposal's revision applied) and
/// checks the role is the approved one: only `iam-tailor-app` attached, no inline policy.
async fn applied_as_approved(
    roles: &Api<LeastPrivilegeRole>,
    iam: &aws_sdk_iam::Client,
    what: &str,
) {
    let done = wait_for(roles, "app", what, |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
            && condition(s, "Ready") == Some(("True", "Ready"))
    })
    .await;
    assert_eq!(
        done.applied.as_ref().unwrap().revision,
        done.proposal.as_ref().unwrap().revision
    );
    let live = read(iam, "app").await;
    assert_eq!(attached_names(&live), ["iam-tailor-app"]);
    assert!(live.inline.is_empty(), "{live:#?}");
}

/// The sum of `iam_tailor_reconcile_errors_total` over its reasons.
fn reconcile_errors(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("iam_tailor_reconcile_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many of each IAM write reached moto.
fn writes(proxy: &FaultProxy) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for action in proxy.forwarded() {
        if !action.starts_with("Get") && !action.starts_with("List") {
            *counts.entry(action).or_insert(0) += 1;
        }
    }
    counts
}

/// etcd and kube-apiserver stopped while the operator is inside a reconcile, at the IAM request
/// `held`, and started again (same data) once the reconcile has failed without them. The role
/// is never wider than before, the operator process lives on, and once the API server is back
/// it finishes the apply with every IAM write done exactly once.
async fn restarted_at(held: &str, written_while_down: &[&str]) {
    let started = Instant::now();
    let world = World::start(held, Fault::Hold).await;
    world.proxy.fail(held, 1, Fault::Hold);
    let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    world
        .roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    world.proxy.holds_one().await;
    let no_wider = |live: &LiveRole, when: &str| {
        assert_eq!(
            grants_no_new_access(&live.documents(), &world.original.documents()),
            Proof::Proven,
            "wider than before {when}: {live:#?}"
        );
    };
    no_wider(&read(&world.iam, "app").await, "while held");

    let errors_before = reconcile_errors(&world.operator.get("/metrics").await.1);
    world.server.pause();
    world.proxy.release();
    // The reconcile goes on without the API server until a Kubernetes write fails.
    watch::poll(
        "a failed reconcile without the API server",
        Duration::from_secs(60),
        Duration::from_millis(100),
        async || match reconcile_errors(&world.operator.get("/metrics").await.1) {
            errors if errors > errors_before => Ok(()),
            errors => Err(format!("{errors} failed reconciles")),
        },
    )
    .await;
    let during = writes(&world.proxy);
    assert_eq!(
        during.keys().map(String::as_str).collect::<Vec<_>>(),
        written_while_down
    );
    no_wider(
        &read(&world.iam, "app").await,
        "while the API server was down",
    );
    world.server.resume();
    applied_as_approved(&world.roles, &world.iam, "the apply after the restart").await;
    let once: std::collections::BTreeMap<String, usize> = [
        "AttachRolePolicy",
        "CreatePolicy",
        "DeleteRolePolicy",
        "DetachRolePolicy",
        "TagRole",
    ]
    .into_iter()
    .map(|a| (a.to_string(), 1))
    .collect();
    assert_eq!(
        writes(&world.proxy),
        once,
        "every write exactly once (while the API server was down: {during:?})"
    );
    assert_eq!(
        world.operator.get("/healthz").await.0,
        200,
        "the same process"
    );
    eprintln!(
        "restarted at {held}: writes while down {during:?}; {:?}",
        started.elapsed()
    );
}

/// Mid-reconcile: the API server goes away while the role is being read, so the backup
/// ConfigMap cannot be written and no IAM write may follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_restarted_mid_reconcile_writes_nothing_until_it_is_back() {
    restarted_at("GetRole", &[]).await;
}

/// Mid-apply: the API server goes away while AttachRolePolicy is in flight; the rest of the
/// apply reaches IAM but its status cannot be written. After the restart the operator finds
/// the role already as approved and writes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_restarted_mid_apply_loses_and_doubles_no_write() {
    restarted_at(
        "AttachRolePolicy",
        &[
            "AttachRolePolicy",
            "CreatePolicy",
            "DeleteRolePolicy",
            "DetachRolePolicy",
            "TagRole",
        ],
    )
    .await;
}

/// moto hangs (SIGSTOP) while AttachRolePolicy is in flight: every attempt times out and the
/// apply fails, yet the requests were received and land when moto resumes (SIGCONT) — writes
/// whose answers were lost. The role is never wider than before, and the next reconcile finds
/// what landed and finishes without creating the policy twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_frozen_mid_apply_and_resumed_ends_with_the_approved_role() {
    let started = Instant::now();
    let world = World::start_with(
        "AttachRolePolicy",
        Fault::Hold,
        &["--aws-timeout-seconds", "1"],
    )
    .await;
    world.proxy.fail("AttachRolePolicy", 1, Fault::Hold);
    let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    world
        .roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    world.proxy.holds_one().await;
    world.aws.freeze();
    world.proxy.release();
    let failed = wait_for(&world.roles, "app", "the timed-out apply", |s| {
        condition(s, "Ready").is_some_and(|(status, _)| status == "False")
    })
    .await;
    let message = condition_message(&failed, "Ready");
    assert!(
        message.contains("AttachRolePolicy") && message.contains("timeout"),
        "{message}"
    );
    assert_eq!(failed.applied, None);
    world.aws.thaw();
    let live = read(&world.iam, "app").await;
    assert_eq!(
        grants_no_new_access(&live.documents(), &world.original.documents()),
        Proof::Proven,
        "wider than before once the lost writes landed: {live:#?}"
    );

    applied_as_approved(&world.roles, &world.iam, "the apply after moto resumed").await;
    let counts = writes(&world.proxy);
    assert_eq!(counts.get("CreatePolicy"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("DetachRolePolicy"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("DeleteRolePolicy"), Some(&1), "{counts:?}");
    assert_eq!(world.operator.get("/healthz").await.0, 200);
    eprintln!(
        "moto frozen mid-apply: writes {counts:?}; {:?}",
        started.elapsed()
    );
}

/// A test double for the network between one operator replica and the API server: a TCP
/// forwarder (TLS passes through untouched) that [`ApiLink::cut`] severs, closing every open
/// connection and every new one, as a partition would.
struct ApiLink {
    /// The kubeconfig that reaches the API server through this link.
    kubeconfig: std::path::PathBuf,
    cut: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl ApiLink {
    /// A link to the API server of `server`, its kubeconfig written into `dir`.
    async fn start(server: &control_plane::ControlPlane, dir: &std::path::Path) -> ApiLink {
        let original = std::fs::read_to_string(&server.kubeconfig).unwrap();
        let upstream = original
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: https://"))
            .expect("the kubeconfig names its server")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let kubeconfig = dir.join("kubeconfig-through-link");
        std::fs::write(
            &kubeconfig,
            original.replace(&upstream, &format!("127.0.0.1:{port}")),
        )
        .unwrap();
        let (cut, _) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn({
            let cut = cut.clone();
            async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    let mut severed = cut.subscribe();
                    if *severed.borrow() {
                        continue; // dropped: closed at once
                    }
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = severed.wait_for(|cut| *cut) => {}
                        }
                    });
                }
            }
        });
        ApiLink {
            kubeconfig,
            cut,
            accept,
        }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

impl Drop for ApiLink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `iam_tailor_leader` of `operator` is 1 (30 s at most).
async fn leads(operator: &Operator) {
    watch::poll(
        &format!("the operator (pid {}) to lead", operator.pid()),
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || match sample(&operator.get("/metrics").await.1, "iam_tailor_leader") {
            Some(1.0) => Ok(()),
            leader => Err(format!("iam_tailor_leader is {leader:?}")),
        },
    )
    .await;
}

/// The lease lost in the middle of an apply: replica A leads and is inside an apply, with
/// AttachRolePolicy in flight, when the network between A and the API server is cut. A's
/// renewals fail, its write guard closes (two thirds of the lease), and replica B takes over
/// once it has seen the lease unchanged for its whole duration. The in-flight request then
/// lands, late; A writes nothing after it. B finishes the apply without creating the policy
/// twice or leaving the role wider than before at any point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_mid_apply_writes_nothing_more_and_the_standby_finishes() {
    let started = Instant::now();
    let server = control_plane::ControlPlane::start();
    let aws = moto::Moto::start();
    let kube = server.client().await;
    let iam = aws.iam();
    let dir = tempfile::tempdir().unwrap();
    apply_crds(&kube).await;
    create_namespace(&kube, NS).await;
    broad_role(&iam, "app").await;
    put_trail(&aws.s3()).await;
    let original = read(&iam, "app").await;
    // Each replica's IAM traffic through its own proxy, so every write is attributed.
    let (proxy_a, proxy_b) = (
        FaultProxy::start(&aws.endpoint).await,
        FaultProxy::start(&aws.endpoint).await,
    );
    proxy_a.fail("AttachRolePolicy", 1, Fault::Hold);
    let link = ApiLink::start(&server, dir.path()).await;
    let replica_args = [
        "--leader-election",
        "--lease-namespace",
        "default",
        "--lease-duration-seconds",
        "3",
    ];
    let mut a = Operator::start(
        &link.kubeconfig,
        &proxy_a.endpoint,
        dir.path(),
        &replica_args,
        &[("POD_NAME", "replica-a")],
    );
    a.wait_up().await;
    leads(&a).await;
    let b = Operator::start(
        &server.kubeconfig,
        &proxy_b.endpoint,
        dir.path(),
        &replica_args,
        &[("POD_NAME", "replica-b")],
    );
    b.wait_up().await;

    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    proxy_a.holds_one().await;
    let before_cut = writes(&proxy_a);
    link.cut();
    // Cut off, A loses the lease and exits: that is the point.
    a.expect_exit();
    let cut_at = Instant::now();
    leads(&b).await;
    eprintln!("B leads {:?} after the cut", cut_at.elapsed());
    proxy_a.release();
    // A ends (it lost the lease): after that, nothing more can come from it.
    let status = a.exited(Duration::from_secs(30)).await;
    assert!(!status.success(), "A exits non-zero on losing the lease");
    let mut from_a = writes(&proxy_a);
    assert_eq!(
        from_a.remove("AttachRolePolicy"),
        Some(1),
        "only the request in flight"
    );
    let mut expected = before_cut.clone();
    expected.remove("AttachRolePolicy");
    assert_eq!(from_a, expected, "A wrote nothing after the held request");
    let live = read(&iam, "app").await;
    assert_eq!(
        grants_no_new_access(&live.documents(), &original.documents()),
        Proof::Proven,
        "wider than before: {live:#?}"
    );

    applied_as_approved(&roles, &iam, "B finishing the apply").await;
    let from_b = writes(&proxy_b);
    assert!(
        !from_b.contains_key("CreatePolicy"),
        "B created the policy A had created: {from_b:?}"
    );
    for write in ["DetachRolePolicy", "DeleteRolePolicy"] {
        assert_eq!(
            from_a.get(write).unwrap_or(&0) + from_b.get(write).unwrap_or(&0),
            1,
            "{write}: A {from_a:?}, B {from_b:?}"
        );
    }
    eprintln!(
        "lease lost mid-apply: A wrote {before_cut:?} before the cut, B {from_b:?}; {:?}",
        started.elapsed()
    );
}

/// Ingest once: three roles whose calls share every trail file. Two resources analyzed at the
/// same time download each file once between them; a third created afterwards is answered
/// without downloading anything, or listing (the days were listed less than a minute ago).
/// Each still sees only its own role's calls. A fourth reading through an access role reads
/// the files again, as that role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_on_one_trail_read_each_file_once() {
    let world = World::start("NoSuchAction", Fault::ServiceFailure).await;
    for role in ["worker", "viewer"] {
        broad_role(&world.iam, role).await;
    }
    let observe = |role: &str| {
        format!(
            "  roleName: {role}\n  mode: Observe\n  cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n"
        )
    };
    let analyzed =
        |s: &LeastPrivilegeRoleStatus| condition(s, "Analyzed") == Some(("True", "Analyzed"));
    for role in ["app", "worker"] {
        world
            .roles
            .create(&PostParams::default(), &lpr(role, &observe(role)))
            .await
            .unwrap();
    }
    let mut used = std::collections::BTreeMap::new();
    for role in ["app", "worker"] {
        let status = wait_for(&world.roles, role, "Analyzed", analyzed).await;
        let analysis = status.analysis.unwrap();
        assert_eq!(analysis.files_scanned, 2, "{role}: {analysis:?}");
        used.insert(role, analysis.used_actions);
    }
    let gets = |proxy: &FaultProxy| {
        let mut keys = proxy.forwarded();
        keys.retain(|a| a.starts_with("GetObject /"));
        keys
    };
    let first = gets(&world.proxy);
    assert_eq!(first.len(), 2, "two files, each downloaded once: {first:?}");
    assert_eq!(
        first
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        2,
        "{first:?}"
    );
    world
        .metric_reaches("iam_tailor_trail_files_read_total", 2.0)
        .await;

    let lists = |proxy: &FaultProxy| {
        (proxy.forwarded().iter())
            .filter(|a| *a == "ListObjectsV2")
            .count()
    };
    let listed = lists(&world.proxy);
    world
        .roles
        .create(&PostParams::default(), &lpr("viewer", &observe("viewer")))
        .await
        .unwrap();
    let viewer = wait_for(&world.roles, "viewer", "Analyzed", analyzed).await;
    let analysis = viewer.analysis.unwrap();
    used.insert("viewer", analysis.used_actions);
    assert_eq!(analysis.files_scanned, 2, "answered from what was read");
    assert_eq!(gets(&world.proxy), first, "nothing downloaded again");
    assert_eq!(
        lists(&world.proxy),
        listed,
        "the days were listed moments ago: not listed again"
    );
    let metrics = world.operator.get("/metrics").await.1;
    assert_eq!(
        sample(&metrics, "iam_tailor_trail_files_read_total"),
        Some(2.0)
    );
    // app: 3 S3, 2 DynamoDB, 2 SQS actions (its denied ListRoles is not used); worker reads
    // the queue; viewer gets one object.
    assert_eq!(
        used,
        [("app", 7), ("viewer", 1), ("worker", 1)]
            .into_iter()
            .collect()
    );

    // What was read with the operator's identity is never answered to a resource that reads
    // through an access role: that role may be refused what the operator may read. Its files
    // are downloaded again, once each, signed with the access role's session.
    broad_role(&world.iam, "auditor").await;
    let through_reader = "  roleName: auditor\n  mode: Observe\n  \
        assumeRoleArn: arn:aws:iam::123456789012:role/trail-reader\n  \
        cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    world
        .roles
        .create(&PostParams::default(), &lpr("auditor", through_reader))
        .await
        .unwrap();
    let auditor = wait_for(&world.roles, "auditor", "Analyzed", analyzed).await;
    assert_eq!(auditor.analysis.unwrap().files_scanned, 2);
    let all = gets(&world.proxy);
    let again: Vec<&String> = all.iter().filter(|g| !first.contains(g)).collect();
    let path = |g: &str| g.rsplit_once(" by ").map(|(p, _)| p.to_string()).unwrap();
    let signer = |g: &str| g.rsplit_once(" by ").map(|(_, k)| k.to_string()).unwrap();
    assert_eq!(
        again.iter().map(|g| path(g)).collect::<Vec<_>>(),
        first.iter().map(|g| path(g)).collect::<Vec<_>>(),
        "each file downloaded once more for the other identity: {all:?}"
    );
    let operator_keys: std::collections::BTreeSet<String> =
        first.iter().map(|g| signer(g)).collect();
    assert!(
        again.iter().all(|g| !operator_keys.contains(&signer(g))),
        "signed by the access role's session, not the operator: {all:?}"
    );
    world
        .metric_reaches("iam_tailor_trail_files_read_total", 4.0)
        .await;
}

/// A ClusterTrail is configured once by the trail's owner: a resource in a namespace it does
/// not admit is refused (Ready=False InvalidSpec, and not one file listed or read), and when
/// the owner admits the namespace the same resource is analyzed without being touched (the
/// operator watches ClusterTrails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_trail_is_read_only_for_the_namespaces_it_admits() {
    use iam_tailor::controller::ClusterTrail;
    let world = World::start("NoSuchAction", Fault::ServiceFailure).await;
    let trails: Api<ClusterTrail> = Api::all(world.kube.clone());
    let trail = |namespaces: &str| -> ClusterTrail {
        serde_norway::from_str(&format!(
            "apiVersion: iamtailor.dev/v1alpha1\nkind: ClusterTrail\nmetadata: {{name: org}}\n\
             spec: {{s3: {{bucket: org-trail-logs}}, namespaces: {namespaces}}}\n"
        ))
        .unwrap()
    };
    trails
        .create(&PostParams::default(), &trail("[checkout, team-*]"))
        .await
        .unwrap();
    let spec = "  roleName: app\n  mode: Observe\n  cloudTrail: {clusterTrail: org}\n";
    world
        .roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    let refused = wait_for(&world.roles, "app", "InvalidSpec", |s| {
        condition(s, "Ready") == Some(("False", "InvalidSpec"))
    })
    .await;
    assert_eq!(
        condition_message(&refused, "Ready"),
        format!("cloudTrail.clusterTrail: ClusterTrail \"org\" does not admit namespace \"{NS}\"")
    );
    let s3_requests = |proxy: &FaultProxy| {
        (proxy.forwarded().into_iter())
            .filter(|a| a.starts_with("GetObject") || a == "ListObjectsV2")
            .count()
    };
    assert_eq!(
        s3_requests(&world.proxy),
        0,
        "{:?}",
        world.proxy.forwarded()
    );
    assert!(refused.analysis.is_none());

    let mut admitting = trails.get("org").await.unwrap();
    admitting.spec.namespaces.push(NS.to_string());
    trails
        .replace("org", &PostParams::default(), &admitting)
        .await
        .unwrap();
    let analyzed = wait_for(&world.roles, "app", "Analyzed", |s| {
        condition(s, "Analyzed") == Some(("True", "Analyzed"))
    })
    .await;
    assert_eq!(analyzed.analysis.unwrap().files_scanned, 2);
    assert!(s3_requests(&world.proxy) > 0);
}

/// The Athena source, end to end against moto's Athena (which runs no SQL: it returns the rows
/// the test queues, here what `examples/athena/usage.sql` gives on DuckDB over the same
/// records the trail files hold). Two resources name one ClusterTrail with an Athena table:
/// one query per day of the window answers both, and each sees only its own role's calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_athena_cluster_trail_asks_once_per_day_for_every_role() {
    let world = World::start("NoSuchAction", Fault::ServiceFailure).await;
    broad_role(&world.iam, "worker").await;
    let spec = |role: &str| {
        format!(
            "  roleName: {role}\n  mode: Observe\n  window: 2d\n  cloudTrail: {{clusterTrail: athena-org}}\n"
        )
    };
    for role in ["app", "worker"] {
        world
            .roles
            .create(&PostParams::default(), &lpr(role, &spec(role)))
            .await
            .unwrap();
        // No ClusterTrail yet: the resource waits, and the operator has seen it.
        wait_for(&world.roles, role, "InvalidSpec", |s| {
            condition(s, "Ready") == Some(("False", "InvalidSpec"))
        })
        .await;
    }
    // The window's days, oldest first, as the operator asks: two days of calls, then today.
    let dir = tempfile::tempdir().unwrap();
    let roles = ["app", "worker"].map(|r| format!("arn:aws:iam::{ACCOUNT}:role/{r}"));
    for days_ago in [2i64, 1, 0] {
        let day = k8s_openapi::jiff::Timestamp::now()
            .checked_sub(k8s_openapi::jiff::SignedDuration::from_hours(24 * days_ago))
            .unwrap()
            .strftime("%Y-%m-%d")
            .to_string();
        let records = if days_ago == 0 {
            Vec::new()
        } else {
            operator_env::trail_records(&day)
        };
        let file = dir.path().join(format!("{day}.json"));
        std::fs::write(&file, serde_json::json!({ "Records": records }).to_string()).unwrap();
        let roles = roles.each_ref().map(String::as_str);
        let result = athena_results::duckdb(
            &athena_results::usage_sql(),
            ACCOUNT,
            &day.replace('-', "/"),
            &roles,
            &[file],
        );
        athena_results::queue(&world.aws.endpoint, ACCOUNT, &result);
    }
    world
        .cluster_trail(
            "athena-org",
            "{athena: {workgroup: primary, database: trails, table: cloudtrail_logs, \
             outputLocation: 's3://athena-results/iam-tailor/'}, namespaces: [payments]}",
        )
        .await;
    let mut used = std::collections::BTreeMap::new();
    for role in ["app", "worker"] {
        let status = wait_for(&world.roles, role, "Analyzed", |s| {
            condition(s, "Analyzed") == Some(("True", "Analyzed"))
        })
        .await;
        used.insert(role, status.analysis.unwrap().used_actions);
    }
    // As from the files (resources_on_one_trail_read_each_file_once).
    assert_eq!(used, [("app", 7), ("worker", 1)].into_iter().collect());
    let queries: Vec<String> = (world.proxy.forwarded().into_iter())
        .filter(|a| a == "Athena StartQueryExecution")
        .collect();
    assert_eq!(queries.len(), 3, "{:?}", world.proxy.forwarded());
    world
        .metric_reaches("iam_tailor_athena_queries_total", 3.0)
        .await;
}

/// A ClusterTrail with a fact store: what one operator read is kept in S3 (Parquet partitions
/// a platform team can query, here with DuckDB, and a checkpoint), so the next operator answers
/// a new role from the store and downloads no trail file again. A partition rewritten behind
/// the checkpoint's back (here to grant `viewer` an action it never used) is not believed: the
/// operator reads the trail again, and the injected action is nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_fact_store_reads_no_trail_file_again() {
    use iam_tailor::sources::store;
    let mut world = World::start("NoSuchAction", Fault::ServiceFailure).await;
    for role in ["worker", "viewer"] {
        broad_role(&world.iam, role).await;
    }
    let s3 = world.aws.s3();
    s3.create_bucket()
        .bucket("iam-tailor-facts")
        .send()
        .await
        .unwrap();
    let spec = format!(
        "{{s3: {{bucket: org-trail-logs}}, store: {{location: 's3://iam-tailor-facts/org/'}}, \
         namespaces: [{NS}]}}"
    );
    world.cluster_trail("org", &spec).await;
    async fn analyze(world: &World, role: &str) -> iam_tailor::controller::crd::Analysis {
        let spec =
            format!("  roleName: {role}\n  mode: Observe\n  cloudTrail: {{clusterTrail: org}}\n");
        let roles = &world.roles;
        roles
            .create(&PostParams::default(), &lpr(role, &spec))
            .await
            .unwrap();
        wait_for(roles, role, "Analyzed", |s| {
            condition(s, "Analyzed") == Some(("True", "Analyzed"))
        })
        .await
        .analysis
        .unwrap()
    }
    let trail_gets = |proxy: &FaultProxy| {
        (proxy.forwarded().into_iter())
            .filter(|a| a.starts_with("GetObject /org-trail-logs/"))
            .count()
    };
    let app = analyze(&world, "app").await;
    assert_eq!((app.files_scanned, app.used_actions), (2, 7));
    assert_eq!(trail_gets(&world.proxy), 2);

    // The store: a checkpoint and one partition per account and day of the events.
    let listed = s3
        .list_objects_v2()
        .bucket("iam-tailor-facts")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let partitions: Vec<&&str> = keys
        .iter()
        .filter(|k| k.ends_with("facts.parquet"))
        .collect();
    assert!(
        keys.contains(&"org/reader=operator/checkpoint.json"),
        "{keys:?}"
    );
    assert_eq!(partitions.len(), 2, "{keys:?}");
    assert!(
        partitions
            .iter()
            .all(|k| k.starts_with(&format!("org/reader=operator/account={ACCOUNT}/day="))),
        "{keys:?}"
    );
    // Readable as a Hive-partitioned table (as Athena would, `examples/athena/facts-table.sql`).
    let dir = tempfile::tempdir().unwrap();
    for key in &partitions {
        let object = s3
            .get_object()
            .bucket("iam-tailor-facts")
            .key(**key)
            .send()
            .await
            .unwrap();
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, object.body.collect().await.unwrap().into_bytes()).unwrap();
    }
    let query = format!(
        "import duckdb, sys; print(duckdb.sql(\"SELECT count(DISTINCT action) FROM \
         read_parquet('{}/org/*/*/*/*.parquet', hive_partitioning=true) WHERE kind = 'action' \
         AND principal = 'arn:aws:iam::{ACCOUNT}:role/app' AND account = '{ACCOUNT}' \
         AND reader = 'operator'\").fetchall()[0][0])",
        dir.path().display()
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &query])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        app.used_actions.to_string()
    );

    // A new operator, a new role: answered from the store, no trail file downloaded.
    world.restart_operator(&[]);
    let worker = analyze(&world, "worker").await;
    assert_eq!((worker.files_scanned, worker.used_actions), (2, 1));
    assert_eq!(trail_gets(&world.proxy), 2, "{:?}", world.proxy.forwarded());
    let metrics = world.operator.get("/metrics").await.1;
    assert_eq!(
        sample(&metrics, "iam_tailor_trail_files_read_total"),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics, "iam_tailor_fact_store_errors_total"),
        Some(0.0)
    );

    // Someone rewrites a partition to say `viewer` used iam:CreateUser.
    let day_key = partitions[0].to_string();
    let object = s3
        .get_object()
        .bucket("iam-tailor-facts")
        .key(&day_key)
        .send()
        .await
        .unwrap();
    let mut facts = store::decode(&day_key, object.body.collect().await.unwrap().to_vec()).unwrap();
    let viewer_arn = format!("arn:aws:iam::{ACCOUNT}:role/viewer");
    let viewer_facts = facts.entry(viewer_arn).or_default();
    viewer_facts.record_use("iam:CreateUser", "*", "2026-01-01T00:00:00Z");
    s3.put_object()
        .bucket("iam-tailor-facts")
        .key(&day_key)
        .body(store::encode(&facts).into())
        .send()
        .await
        .unwrap();
    world.restart_operator(&[]);
    let viewer = analyze(&world, "viewer").await;
    // Believed, the partition would make it 2: AdministratorAccess grants iam:CreateUser.
    assert_eq!(
        (viewer.files_scanned, viewer.used_actions),
        (2, 1),
        "the injected action is not counted as used: {viewer:?}"
    );
    world
        .metric_reaches("iam_tailor_fact_store_errors_total", 1.0)
        .await;
    world
        .metric_reaches("iam_tailor_trail_files_read_total", 2.0)
        .await;
    assert_eq!(trail_gets(&world.proxy), 4, "the trail read again, once");
}

/// Nothing waits for Athena: while the queries for a window run (the `AthenaPagingDouble`
/// keeps them RUNNING for the first polls; moto's finish at once) the resource says so —
/// `Analyzed=Unknown AthenaQueriesRunning` with the queries in `status.job` — and when they
/// are done it is analyzed and the job is gone; no query is started twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_athena_queries_are_the_resource_s_job_until_answered() {
    use iam_tailor::controller::crd::JobSource;
    let mut world = World::start("NoSuchAction", Fault::ServiceFailure).await;
    let double = athena_paging_double::AthenaPagingDouble::start(
        &iam_tailor::sources::athena::COLUMNS,
        Vec::new(),
    );
    double.running_polls(6);
    world.restart_operator(&[("AWS_ENDPOINT_URL_ATHENA", double.endpoint())]);
    let spec = format!(
        "{{athena: {{workgroup: primary, database: trails, table: cloudtrail_logs}}, namespaces: [{NS}]}}"
    );
    world.cluster_trail("athena-org", &spec).await;
    let spec = "  roleName: app\n  mode: Observe\n  window: 2d\n  cloudTrail: {clusterTrail: athena-org}\n";
    world
        .roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    let running = wait_for(&world.roles, "app", "AthenaQueriesRunning", |s| {
        condition(s, "Analyzed") == Some(("Unknown", "AthenaQueriesRunning"))
    })
    .await;
    let job = running.job.expect("the queries are the resource's job");
    assert_eq!(job.source, JobSource::Athena);
    assert_eq!(job.days, Some(3), "two days back and today");
    assert!(job.days_answered.unwrap() < 3);
    assert!(running.analysis.is_none());
    let analyzed = wait_for(&world.roles, "app", "Analyzed", |s| {
        condition(s, "Analyzed") == Some(("True", "Analyzed"))
    })
    .await;
    assert!(analyzed.job.is_none());
    assert!(analyzed.analysis.is_some());
    let operations = double.operations();
    let started = operations
        .iter()
        .filter(|o| *o == "StartQueryExecution")
        .count();
    assert_eq!(started, 3, "one query per day, none twice: {operations:?}");
}

/// One tenant's value cannot fail another's Athena analysis. Namespace `mallory` names a role
/// ARN the schema admits (its path may hold any printable character) but that no query may
/// name; its resource is on the same ClusterTrail table, so its principal is in the batch the
/// other resources' queries ask for. `app` in the other namespace is analyzed all the same;
/// only mallory's own resource fails, and for its own reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_no_query_may_name_fails_only_its_own_resource() {
    const MALLORY: &str = "mallory";
    let mut world = World::start("NoSuchAction", Fault::ServiceFailure).await;
    let double = athena_paging_double::AthenaPagingDouble::start(
        &iam_tailor::sources::athena::COLUMNS,
        Vec::new(),
    );
    world.restart_operator(&[("AWS_ENDPOINT_URL_ATHENA", double.endpoint())]);
    create_namespace(&world.kube, MALLORY).await;
    let spec = format!(
        "{{athena: {{workgroup: primary, database: trails, table: cloudtrail_logs}}, namespaces: [{NS}, {MALLORY}]}}"
    );
    world.cluster_trail("athena-org", &spec).await;
    let hostile = format!("arn:aws:iam::{ACCOUNT}:role/x'or'1'='1/app");
    let theirs: Api<LeastPrivilegeRole> = Api::namespaced(world.kube.clone(), MALLORY);
    let spec = format!(
        "  roleArn: \"{hostile}\"\n  mode: Observe\n  window: 2d\n  cloudTrail: {{clusterTrail: athena-org}}\n"
    );
    theirs
        .create(&PostParams::default(), &lpr("evil", &spec))
        .await
        .unwrap();
    // Its resource is in the operator's view (it has been reconciled) before app asks.
    wait_for(&theirs, "evil", "its own failure", |s| {
        condition(s, "Ready").is_some_and(|(status, _)| status == "False")
    })
    .await;
    let spec = "  roleName: app\n  mode: Observe\n  window: 2d\n  cloudTrail: {clusterTrail: athena-org}\n";
    world
        .roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();
    let app = wait_for(&world.roles, "app", "Analyzed", |s| {
        condition(s, "Analyzed").is_some_and(|(status, _)| status != "Unknown")
    })
    .await;
    assert_eq!(
        condition(&app, "Analyzed"),
        Some(("True", "Analyzed")),
        "{}",
        condition_message(&app, "Analyzed")
    );
    let evil = theirs.get_status("evil").await.unwrap().status.unwrap();
    assert_eq!(condition(&evil, "Ready").map(|(s, _)| s), Some("False"));
}
