//! The operator under test and its surroundings, shared by the end-to-end operator tests
//! (`tests/operator*.rs`) and the chart's (`tests/chart_rbac.rs`): the `iam-tailor` process
//! ([`Operator`], watched by every wait while it runs and stopped when dropped), a CloudTrail in S3 for the roles it tailors, broad IAM
//! roles, the CRDs, and helpers that read what the operator did (resource status, Events, the
//! role in IAM). [`story`] holds the steps of the operator story that `tests/operator/story.rs` and
//! `tests/chart_rbac.rs` share.

pub(crate) use crate::iam_last_accessed_double as iam_double;

use crate::watch::{self, Pid, Show};
use flate2::Compression;
use flate2::write::GzEncoder;
use iam_tailor::aws::iam::{self, Iam};
use iam_tailor::controller::tenancy::{MANAGED_ROLE_TAG, NAMESPACE_TAG};
use iam_tailor::controller::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use iam_tailor::role::LiveRole;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use iam_double::IamLastAccessedDouble;

pub mod story;

pub const ACCOUNT: &str = "123456789012";
/// The namespace the tests' LeastPrivilegeRoles live in (the README's `watchNamespace` too).
pub const NS: &str = "payments";
pub const BUCKET: &str = "org-trail-logs";
pub const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
pub const S3_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
pub const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
/// What role `app` does in its trail (and so all it may do after enforcement).
pub const APP_USES: [&str; 7] = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:PutObject",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
];

/// A real kube-apiserver and moto, the CRDs applied and namespace [`NS`] created, and a
/// directory for operator logs: where an operator test starts.
pub struct Cluster {
    pub server: crate::control_plane::ControlPlane,
    pub aws: crate::moto::Moto,
    pub kube: kube::Client,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let server = crate::control_plane::ControlPlane::start();
        let aws = crate::moto::Moto::start();
        let kube = server.client().await;
        apply_crds(&kube).await;
        create_namespace(&kube, NS).await;
        Cluster {
            server,
            aws,
            kube,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// [`Operator::start`] against this cluster.
    pub fn operator(&self, args: &[&str], env: &[(&str, &str)]) -> Operator {
        Operator::start(
            &self.server.kubeconfig,
            &self.aws.endpoint,
            self.dir.path(),
            args,
            env,
        )
    }
}

/// The operator binary, stopped (only the process this started) when dropped. It serves its
/// telemetry on a port it binds itself (`--metrics-addr 127.0.0.1:0`) and logs the address.
pub struct Operator {
    child: Child,
    log: PathBuf,
    /// `HOST:PORT` of the telemetry server, read from the log once it has bound it.
    metrics: OnceLock<String>,
    watch: watch::Watch,
    /// The IAM last-accessed double in front of moto, when [`Operator::start`] made one.
    _iam_double: Option<IamLastAccessedDouble>,
}

/// What the operator logs when its telemetry server listens; the address is its `addr` field.
const SERVING: &str = "serving /metrics, /healthz, /readyz";

impl Operator {
    /// Starts `iam-tailor controller` against the API server of `kubeconfig` and the AWS API
    /// at `aws_endpoint`, serving metrics on a port of its own choosing and logging (JSON) into
    /// `dir`. `args` are added to the command line (e.g. `--leader-election`); `env` is set
    /// last, so it overrides. The rest of the environment is the test's. moto has no
    /// last-accessed reports, so unless `env` names an `AWS_ENDPOINT_URL_IAM`, IAM calls go
    /// through an [`IamLastAccessedDouble`] (empty reports) that forwards everything else to moto.
    pub fn start(
        kubeconfig: &Path,
        aws_endpoint: &str,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tailor"));
        command
            .args([
                "controller",
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-format",
                "json",
                // The tests wait for drift checks: seconds, not the production minute.
                "--min-drift-interval",
                "1s",
            ])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "info,iam_tailor=debug");
        let iam_double = (!env.iter().any(|(key, _)| *key == "AWS_ENDPOINT_URL_IAM"))
            .then(|| IamLastAccessedDouble::start(aws_endpoint));
        if let Some(double) = &iam_double {
            command.env("AWS_ENDPOINT_URL_IAM", &double.endpoint);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut operator = Operator::spawn(command, dir);
        operator._iam_double = iam_double;
        operator
    }

    /// Runs `iam-tailor ARGS…` with exactly the environment `env` (plus PATH and HOME), as a
    /// Deployment would: nothing is added to `args` and nothing else of the test's environment
    /// is passed on. `args` should serve metrics on port 0 (`--metrics-addr=127.0.0.1:0`): the
    /// address is read from the log, which goes into `dir`.
    pub fn start_exact(dir: &Path, args: &[String], env: &[(String, String)]) -> Operator {
        let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tailor"));
        command.args(args).env_clear();
        for variable in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(variable) {
                command.env(variable, value);
            }
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        Operator::spawn(command, dir)
    }

    /// Spawns `command` (an operator), its standard error into a file of its own in `dir`, so
    /// several replicas can share `dir`, and watches it.
    fn spawn(mut command: Command, dir: &Path) -> Operator {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let log = dir.join(format!(
            "operator-{}.log",
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the iam-tailor binary runs");
        let name = format!("the operator (pid {})", child.id());
        let watch = watch::watch(name, Pid::Child(child.id()), &log, Show::OnTimeout);
        Operator {
            child,
            log,
            metrics: OnceLock::new(),
            watch,
            _iam_double: None,
        }
    }

    pub fn log_tail(&self) -> String {
        watch::tail(&self.log, 40)
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `HOST:PORT` of the telemetry server: waits (30 s at most) until the log says where it
    /// listens.
    pub async fn metrics_addr(&self) -> &str {
        if let Some(addr) = self.metrics.get() {
            return addr;
        }
        let addr = watch::poll(
            "the operator's telemetry server to listen",
            Duration::from_secs(30),
            Duration::from_millis(50),
            async || serving_addr(&self.log()).ok_or_else(|| format!("no `{SERVING}` logged")),
        )
        .await;
        self.metrics.get_or_init(|| addr)
    }

    /// GET `path` from the telemetry server: (status code, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr().await)
            .await
            .unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let code = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (code, body.to_string())
    }

    /// Waits until the telemetry server listens, and checks that `/healthz` answers 200.
    pub async fn wait_up(&self) {
        self.metrics_addr().await;
        assert_eq!(self.get("/healthz").await.0, 200);
    }

    /// The process id of the operator this started.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Says that this operator may exit from now on (it is being stopped, or is to give up on
    /// its own): waits no longer fail when it does.
    pub fn expect_exit(&self) {
        self.watch.suspend();
    }

    /// Sends SIGTERM (a graceful shutdown) to this operator, and only to it.
    pub fn terminate(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the operator already exited"
        );
        self.expect_exit();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// Sends SIGKILL: the process dies without releasing anything.
    pub fn kill(&mut self) {
        self.expect_exit();
        self.child.kill().unwrap();
    }

    /// Waits (`timeout` at most) for the process to exit; an exit is expected from now on.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        self.expect_exit();
        let child = &mut self.child;
        watch::poll(
            "the operator to exit",
            timeout,
            Duration::from_millis(100),
            async || {
                child
                    .try_wait()
                    .unwrap()
                    .ok_or_else(|| "it runs".to_string())
            },
        )
        .await
    }
}

/// The address in the line the operator logs when its telemetry server listens, as JSON
/// (`"addr":…`) or as text (`addr=…`).
fn serving_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|line| line.contains(SERVING))?;
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(json) => json["addr"].as_str().map(str::to_string),
        Err(_) => {
            let (_, rest) = line.split_once("addr=")?;
            rest.split_whitespace().next().map(str::to_string)
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.expect_exit();
        if std::thread::panicking() {
            // The log's directory goes with the test: keep the whole log for a failure.
            let kept =
                std::env::temp_dir().join(format!("iam-tailor-operator-{}.log", self.child.id()));
            if std::fs::copy(&self.log, &kept).is_ok() {
                eprintln!("operator log: {}", kept.display());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample `series` (metric name with its labels, exactly as rendered) in
/// `metrics`; `None` when the series is not there.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}

/// One CloudTrail record of `role`'s session calling `source` `name`.
pub fn record(
    role: &str,
    time: &str,
    source: &str,
    name: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:pod-1",
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/pod-1"),
            "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                "accountId": ACCOUNT,
                "userName": role
            }}
        },
        "eventTime": time,
        "eventSource": format!("{source}.amazonaws.com"),
        "eventName": name,
        "awsRegion": "us-east-1",
        "requestParameters": params,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT
    })
}

/// `app` works with its orders bucket, table and queue; `worker` only reads the queue;
/// `viewer` reads one object. A denied call by `app` is reported, never granted.
pub fn trail_records(day: &str) -> Vec<serde_json::Value> {
    let t = |h: u32| format!("{day}T{h:02}:00:00Z");
    let queue = format!("https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/orders");
    let mut records = vec![
        record(
            "app",
            &t(1),
            "s3",
            "GetObject",
            serde_json::json!({"bucketName": "orders", "key": "2026/a.json"}),
        ),
        record(
            "app",
            &t(2),
            "s3",
            "PutObject",
            serde_json::json!({"bucketName": "orders", "key": "2026/b.json"}),
        ),
        record(
            "app",
            &t(3),
            "s3",
            "ListObjects",
            serde_json::json!({"bucketName": "orders", "prefix": "2026/"}),
        ),
        record(
            "app",
            &t(4),
            "dynamodb",
            "GetItem",
            serde_json::json!({"tableName": "orders"}),
        ),
        record(
            "app",
            &t(5),
            "dynamodb",
            "PutItem",
            serde_json::json!({"tableName": "orders"}),
        ),
        record(
            "app",
            &t(6),
            "sqs",
            "SendMessage",
            serde_json::json!({"queueUrl": queue}),
        ),
        record(
            "app",
            &t(7),
            "sqs",
            "ReceiveMessage",
            serde_json::json!({"queueUrl": queue}),
        ),
        record(
            "worker",
            &t(8),
            "sqs",
            "ReceiveMessage",
            serde_json::json!({"queueUrl": queue}),
        ),
        record(
            "viewer",
            &t(9),
            "s3",
            "GetObject",
            serde_json::json!({"bucketName": "reports", "key": "q3.csv"}),
        ),
    ];
    let mut denied = record("app", &t(10), "iam", "ListRoles", serde_json::json!({}));
    denied["errorCode"] = "AccessDenied".into();
    records.push(denied);
    records
}

/// Uploads [`trail_records`] for yesterday and the day before into [`BUCKET`], laid out as
/// CloudTrail writes them.
pub async fn put_trail(s3: &aws_sdk_s3::Client) {
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    for days_ago in [1i64, 2] {
        let day = k8s_openapi::jiff::Timestamp::now()
            .checked_sub(k8s_openapi::jiff::SignedDuration::from_hours(24 * days_ago))
            .unwrap()
            .strftime("%Y-%m-%d")
            .to_string();
        put_trail_file(s3, &day, "T0000Z_x", &trail_records(&day)).await;
    }
}

/// Puts `records` as one gzipped trail file of `day` (`YYYY-MM-DD`) into [`BUCKET`], named
/// `…_CloudTrail_us-east-1_<YYYYMMDD><suffix>.json.gz` as CloudTrail names its files.
pub async fn put_trail_file(
    s3: &aws_sdk_s3::Client,
    day: &str,
    suffix: &str,
    records: &[serde_json::Value],
) {
    let body = serde_json::json!({ "Records": records }).to_string();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let key = format!(
        "AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{}/{ACCOUNT}_CloudTrail_us-east-1_{}{suffix}.json.gz",
        day.replace('-', "/"),
        day.replace('-', "")
    );
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(gz.finish().unwrap().into())
        .send()
        .await
        .unwrap();
}

/// A role with AdministratorAccess and an inline `s3:*`: broad, as roles tend to be. Its owner
/// has tagged it for iam-tailor and namespace [`NS`].
pub async fn broad_role(client: &aws_sdk_iam::Client, name: &str) {
    broad_role_for(client, name, Some(NS)).await;
}

/// [`broad_role`] tagged for `namespace`, or not tagged for iam-tailor at all (`None`).
pub async fn broad_role_for(client: &aws_sdk_iam::Client, name: &str, namespace: Option<&str>) {
    let tag = |key: &str, value: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .unwrap()
    };
    let mut create = client
        .create_role()
        .role_name(name)
        .assume_role_policy_document(TRUST);
    if let Some(namespace) = namespace {
        create = create
            .tags(tag(MANAGED_ROLE_TAG, "true"))
            .tags(tag(NAMESPACE_TAG, namespace));
    }
    create.send().await.unwrap();
    client
        .attach_role_policy()
        .role_name(name)
        .policy_arn(ADMIN)
        .send()
        .await
        .unwrap();
    client
        .put_role_policy()
        .role_name(name)
        .policy_name("s3-all")
        .policy_document(S3_ALL)
        .send()
        .await
        .unwrap();
}

/// Applies the CRDs in `crds/` (as `kubectl apply --server-side` would) and waits until they
/// serve.
pub async fn apply_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let crd: CustomResourceDefinition = serde_norway::from_str(&text).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        crd_established(client, &name).await;
    }
}

/// Waits (30 s at most) until the CustomResourceDefinition `name` is established.
pub async fn crd_established(client: &kube::Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, name, conditions::is_crd_established()),
    )
    .await
    .unwrap_or_else(|_| panic!("the CRD {name} is not established within 30 s"))
    .unwrap();
}

pub async fn create_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
}

/// The LeastPrivilegeRole `name` with `spec` (YAML lines indented by two). The tests' trail
/// ([`put_trail`]) holds two days of the default 90-day window, so unless `spec` says
/// otherwise, Automatic approval here accepts a window that is mostly days without files.
pub fn lpr(name: &str, spec: &str) -> LeastPrivilegeRole {
    let mut lpr: LeastPrivilegeRole = serde_norway::from_str(&format!(
        "apiVersion: iamtailor.dev/v1alpha1\nkind: LeastPrivilegeRole\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    ))
    .unwrap();
    if !spec.contains("evidence:") {
        lpr.spec.evidence.max_days_without_files = 90;
    }
    lpr
}

pub fn condition<'a>(
    status: &'a LeastPrivilegeRoleStatus,
    type_: &str,
) -> Option<(&'a str, &'a str)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

/// The condition's message; empty when it has none.
pub fn condition_message(status: &LeastPrivilegeRoleStatus, type_: &str) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .and_then(|c| c.message.clone())
        .unwrap_or_default()
}

/// Polls until `name` is gone (60 s at most): its finalizer has run.
pub async fn wait_gone(api: &Api<LeastPrivilegeRole>, name: &str) {
    watch::poll(
        &format!("{name} to be deleted"),
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || match api.get_opt(name).await.unwrap() {
            None => Ok(()),
            Some(lpr) => Err(format!("it is still there: {:#?}", lpr.status)),
        },
    )
    .await
}

/// Polls `name` until `done` holds for its status (90 s at most).
pub async fn wait_for(
    api: &Api<LeastPrivilegeRole>,
    name: &str,
    what: &str,
    done: impl Fn(&LeastPrivilegeRoleStatus) -> bool,
) -> LeastPrivilegeRoleStatus {
    wait_for_within(api, name, what, Duration::from_secs(90), done).await
}

/// [`wait_for`], `timeout` at most: for what the operator is to do only after a period of
/// its own (a timeout costs nothing unless the test fails, so it is the period and a margin).
pub async fn wait_for_within(
    api: &Api<LeastPrivilegeRole>,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&LeastPrivilegeRoleStatus) -> bool,
) -> LeastPrivilegeRoleStatus {
    watch::poll(
        &format!("{name}: {what}"),
        timeout,
        Duration::from_millis(250),
        async || {
            let status = api.get(name).await.unwrap().status.unwrap_or_default();
            if done(&status) {
                Ok(status)
            } else {
                Err(format!("status: {status:#?}"))
            }
        },
    )
    .await
}

pub async fn read(client: &aws_sdk_iam::Client, role: &str) -> LiveRole {
    iam::read_role(&Iam::from(client.clone()), role)
        .await
        .unwrap()
}

/// The Events recorded on the object `object` in `namespace`.
pub async fn events(client: &kube::Client, namespace: &str, object: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
        .collect()
}

/// Polls (60 s at most) until an Event on `object` in `namespace` is `wanted`; returns them all.
pub async fn wait_event(
    client: &kube::Client,
    namespace: &str,
    object: &str,
    what: &str,
    wanted: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    watch::poll(
        &format!("{what} on {object}"),
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || match events(client, namespace, object).await {
            events if events.iter().any(&wanted) => Ok(events),
            events => Err(format!("Events: {events:#?}")),
        },
    )
    .await
}

/// Waits for an Event of `reason` on `object`: its note.
pub async fn wait_event_note(
    client: &kube::Client,
    namespace: &str,
    object: &str,
    reason: &str,
) -> String {
    let is = |e: &Event| e.reason.as_deref() == Some(reason);
    let events = wait_event(client, namespace, object, reason, is).await;
    let note = events.iter().find(|e| is(e)).and_then(|e| e.note.clone());
    note.unwrap_or_default()
}

/// Creates the LeastPrivilegeRole `name` with `spec` and waits until it is `InSync=True`.
pub async fn create_until_in_sync(
    api: &Api<LeastPrivilegeRole>,
    name: &str,
    spec: &str,
) -> LeastPrivilegeRoleStatus {
    api.create(&kube::api::PostParams::default(), &lpr(name, spec))
        .await
        .unwrap();
    wait_for(api, name, "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await
}

pub fn reasons(events: &[Event]) -> BTreeSet<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}
