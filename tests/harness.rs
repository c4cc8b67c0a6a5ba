//! The harness's own promises: a process a test depends on that dies fails the test's wait at
//! once, naming the process, how it ended and why (its log), instead of letting the wait run
//! out its timeout for something that can no longer happen.

use crate::control_plane::ControlPlane;
use crate::moto::Moto;
use crate::operator_env::{Cluster, NS, Operator, lpr, wait_for};
use crate::watch;
use futures::FutureExt;
use iam_tailor::controller::LeastPrivilegeRole;
use kube::api::{Api, PostParams};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// What `wait` panicked with, and how long it took; fails if it returned.
async fn panic_of(wait: impl Future<Output = ()>) -> (String, Duration) {
    let started = Instant::now();
    let payload = AssertUnwindSafe(wait)
        .catch_unwind()
        .await
        .expect_err("the wait fails");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a panic message");
    (message, started.elapsed())
}

/// What a wait (60 s at most) for `what`, which never comes, panics with.
async fn a_wait_fails(what: &str) -> String {
    let never = async || Err::<(), _>("not yet".to_string());
    let wait = watch::poll(
        what,
        Duration::from_secs(60),
        Duration::from_millis(50),
        never,
    );
    panic_of(wait).await.0
}

/// The failure that cost a CI run: the operator cannot bind its metrics address (another
/// process holds it) and exits at once. The test waiting for its resource is told so, with the
/// operator's own words, instead of after the wait's 90 s.
#[tokio::test]
async fn an_operator_that_exits_at_start_fails_the_wait_at_once_naming_why() {
    let cluster = Cluster::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let args: Vec<String> = [
        "controller",
        "--metrics-addr",
        &taken.local_addr().unwrap().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let env = [
        (
            "KUBECONFIG",
            cluster.server.kubeconfig.display().to_string(),
        ),
        ("AWS_ENDPOINT_URL", cluster.aws.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let operator = Operator::start_exact(cluster.dir.path(), &args, &env);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(cluster.kube.clone(), NS);
    let spec = "  roleName: app\n  mode: Observe\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    roles
        .create(&PostParams::default(), &lpr("app", spec))
        .await
        .unwrap();

    let (message, after) = panic_of(async {
        wait_for(&roles, "app", "an analysis", |s| !s.conditions.is_empty()).await;
    })
    .await;
    eprintln!("the wait failed after {after:?}:\n{message}");
    let name = format!("the operator (pid {})", operator.pid());
    assert!(
        message.starts_with(&format!("{name} exited with status ")),
        "{message}"
    );
    assert!(message.contains("while waiting for app: an analysis"));
    assert!(
        message.contains("Address already in use") && message.contains("--metrics-addr"),
        "the operator's reason: {message}"
    );
    assert!(
        !message.contains("did not happen"),
        "not a timeout: {message}"
    );
}

/// moto killed under a test: the next look of any wait names it and the signal.
#[tokio::test]
async fn a_dead_moto_fails_the_next_wait() {
    let moto = Moto::start();
    signal(moto.pid(), "KILL");
    let message = a_wait_fails("something moto would do").await;
    assert!(
        message.starts_with("moto_server was killed by signal 9 while waiting for something moto"),
        "{message}"
    );
    assert!(
        message.contains("Running on http://127.0.0.1:"),
        "its log: {message}"
    );
}

/// The kube-apiserver dying under a test (it is not our child: the script started it in its
/// own session) is named too, with its log; its restart on purpose is not a death.
#[tokio::test]
async fn a_dead_api_server_fails_the_next_wait_and_a_restart_does_not() {
    let server = ControlPlane::start();
    server.pause();
    watch::check("nothing: the control plane is paused on purpose");
    server.resume();
    watch::check("nothing: the control plane is back");
    signal(server.pid("kube-apiserver"), "KILL");
    let message = a_wait_fails("the API server to answer").await;
    assert!(
        message.starts_with("kube-apiserver exited while waiting for the API server to answer"),
        "{message}"
    );
    assert!(message.contains("apiserver.log"), "{message}");
}

/// Sends signal `name` to `pid`, a process this test started.
fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}
