//! The operator under test and its surroundings, shared by the end-to-end operator tests
//! (`tests/operator*.rs`) and the chart's (`tests/chart_rbac.rs`): the `iam-tailor` process
//! ([`Operator`], stopped when dropped), a CloudTrail in S3 for the roles it tailors, broad IAM
//! roles, the CRDs, and helpers that read what the operator did (resource status, Events, the
//! role in IAM). [`story`] holds the steps of the operator story that `tests/operator.rs` and
//! `tests/chart_rbac.rs` share.

pub(crate) use crate::iam_last_accessed_double as iam_double;

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
use std::time::{Duration, Instant};

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

/// The operator binary, stopped (only the process this started) when dropped.
pub struct Operator {
    child: Child,
    log: PathBuf,
    metrics: String,
    /// The IAM last-accessed double in front of moto, when [`Operator::start`] made one.
    _iam_double: Option<IamLastAccessedDouble>,
}

impl Operator {
    /// Starts `iam-tailor controller` against the API server of `kubeconfig` and the AWS API
    /// at `aws_endpoint`, serving metrics on a [`free_port`] and logging (JSON) into `dir`.
    /// `args` are added to the command line (e.g. `--leader-election`); `env` is set last, so
    /// it overrides. The rest of the environment is the test's. moto has no last-accessed
    /// reports, so unless `env` names an `AWS_ENDPOINT_URL_IAM`, IAM calls go through an
    /// [`IamLastAccessedDouble`] (empty reports) that forwards everything else to moto.
    pub fn start(
        kubeconfig: &Path,
        aws_endpoint: &str,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tailor"));
        command
            .args([
                "controller",
                "--metrics-addr",
                &metrics,
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
        let mut operator = Operator::spawn(command, metrics, dir);
        operator._iam_double = iam_double;
        operator
    }

    /// Runs `iam-tailor ARGS…` with exactly the environment `env` (plus PATH and HOME), as a
    /// Deployment would: nothing is added to `args` and nothing else of the test's environment
    /// is passed on. `args` must serve metrics at `metrics` (e.g. on a [`free_port`]); the log
    /// goes into `dir`.
    pub fn start_exact(
        metrics: &str,
        dir: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Operator {
        let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tailor"));
        command.args(args).env_clear();
        for variable in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(variable) {
                command.env(variable, value);
            }
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        Operator::spawn(command, metrics.to_string(), dir)
    }

    /// Spawns `command` (an operator serving metrics at `metrics`), its standard error into a
    /// file in `dir` named after the metrics port, so several replicas can share `dir`.
    fn spawn(mut command: Command, metrics: String, dir: &Path) -> Operator {
        let port = metrics.rsplit_once(':').expect("metrics is HOST:PORT").1;
        let log = dir.join(format!("operator-{port}.log"));
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the iam-tailor binary runs");
        Operator {
            child,
            log,
            metrics,
            _iam_double: None,
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` from the telemetry server: (status code, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&self.metrics).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let code = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (code, body.to_string())
    }

    /// Waits (30 s at most) until the telemetry server answers `/healthz`.
    pub async fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(&self.metrics).await.is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the operator exited with {status}; log:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the operator serves no /healthz; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(self.get("/healthz").await.0, 200);
    }

    /// The process id of the operator this started.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a graceful shutdown) to this operator, and only to it.
    pub fn terminate(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the operator already exited"
        );
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// Sends SIGKILL: the process dies without releasing anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
    }

    /// Waits (polling, `timeout` at most) for the process to exit.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator did not exit within {timeout:?}; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
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

/// A free loopback port (for the operator's telemetry server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
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
pub async fn wait_gone(api: &Api<LeastPrivilegeRole>, name: &str, operator: &Operator) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "{name} is not deleted:\n{}",
            operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `name` until `done` holds for its status (90 s at most).
pub async fn wait_for(
    api: &Api<LeastPrivilegeRole>,
    name: &str,
    operator: &Operator,
    what: &str,
    done: impl Fn(&LeastPrivilegeRoleStatus) -> bool,
) -> LeastPrivilegeRoleStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = api.get(name).await.unwrap().status.unwrap_or_default();
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what} did not happen; status: {status:#?}\noperator log:\n{}",
            operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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

pub fn reasons(events: &[Event]) -> BTreeSet<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}
