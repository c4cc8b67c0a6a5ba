//! Operator replicas with leader election (`--leader-election`, a 3 s Lease) against one real
//! kube-apiserver and moto: exactly one leads and reconciles while the others wait; a leader
//! stopped with SIGTERM releases the Lease so a standby takes over at once, and one killed with
//! SIGKILL is replaced once its Lease expires. Each new leader reconciles what is created next.

use crate::control_plane;
use crate::moto;
use crate::operator_env;
use crate::watch;

use iam_tailor::controller::LeastPrivilegeRole;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use operator_env::{
    NS, Operator, apply_crds, broad_role, condition, create_namespace, events, lpr, put_trail,
    sample, wait_for,
};
use std::time::{Duration, Instant};

const REPLICA_ARGS: [&str; 5] = [
    "--leader-election",
    "--lease-namespace",
    "default",
    "--lease-duration-seconds",
    "3",
];

/// A replica named `name` in its Lease identity and Events (`<name>-<pid>`).
async fn replica(
    server: &control_plane::ControlPlane,
    aws: &moto::Moto,
    dir: &std::path::Path,
    name: &str,
) -> Operator {
    let operator = Operator::start(
        &server.kubeconfig,
        &aws.endpoint,
        dir,
        &REPLICA_ARGS,
        &[("POD_NAME", name)],
    );
    operator.wait_up().await;
    operator
}

fn identity(operator: &Operator, name: &str) -> String {
    format!("{name}-{}", operator.pid())
}

/// `iam_tailor_leader` and `iam_tailor_reconciles_total` of `operator`. Both are plain metrics
/// (not families), so a replica renders them from the start: 0 until it leads and reconciles.
async fn leader_and_reconciles(operator: &Operator) -> (f64, f64) {
    let metrics = operator.get("/metrics").await.1;
    let leader = sample(&metrics, "iam_tailor_leader").expect("iam_tailor_leader is rendered");
    let reconciles = sample(&metrics, "iam_tailor_reconciles_total")
        .expect("iam_tailor_reconciles_total is rendered");
    (leader, reconciles)
}

/// Polls until exactly one of `replicas` reports itself leader (30 s at most); its index.
async fn the_leader(replicas: &[&Operator]) -> usize {
    watch::poll(
        "a leader",
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let mut leading = Vec::new();
            for (i, replica) in replicas.iter().enumerate() {
                if leader_and_reconciles(replica).await.0 == 1.0 {
                    leading.push(i);
                }
            }
            assert!(leading.len() <= 1, "more than one leader: {leading:?}");
            match leading[..] {
                [leader] => Ok(leader),
                _ => Err("none leads".to_string()),
            }
        },
    )
    .await
}

async fn holder(kube: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(kube.clone(), "default");
    leases
        .get("iam-tailor")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Creates an Observe resource for `role` and waits until it is analyzed; every Event on it
/// comes from the replica `leader_identity`.
async fn observed_by(
    roles: &Api<LeastPrivilegeRole>,
    kube: &kube::Client,
    name: &str,
    leader_identity: &str,
) {
    let spec = "  roleName: app\n  mode: Observe\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    roles
        .create(&PostParams::default(), &lpr(name, spec))
        .await
        .unwrap();
    wait_for(roles, name, "Analyzed", |s| {
        condition(s, "Analyzed") == Some(("True", "Analyzed"))
    })
    .await;
    let events = events(kube, NS, name).await;
    assert!(!events.is_empty());
    for event in &events {
        assert_eq!(
            event.reporting_instance.as_deref(),
            Some(leader_identity),
            "{event:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_a_standby_takes_over() {
    let started = Instant::now();
    let server = control_plane::ControlPlane::start();
    let aws = moto::Moto::start();
    let kube = server.client().await;
    let dir = tempfile::tempdir().unwrap();
    apply_crds(&kube).await;
    create_namespace(&kube, NS).await;
    broad_role(&aws.iam(), "app").await;
    put_trail(&aws.s3()).await;
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);

    // Two replicas at once: one leads, and only it reconciles.
    let (a, b) = tokio::join!(
        replica(&server, &aws, dir.path(), "replica-a"),
        replica(&server, &aws, dir.path(), "replica-b")
    );
    let first = the_leader(&[&a, &b]).await;
    let ((mut leader, leader_name), (mut standby, standby_name)) = if first == 0 {
        ((a, "replica-a"), (b, "replica-b"))
    } else {
        ((b, "replica-b"), (a, "replica-a"))
    };
    let leader_id = identity(&leader, leader_name);
    let standby_id = identity(&standby, standby_name);
    assert_eq!(holder(&kube).await.as_deref(), Some(leader_id.as_str()));
    observed_by(&roles, &kube, "first", &leader_id).await;
    assert!(leader_and_reconciles(&leader).await.1 > 0.0);
    assert_eq!(
        leader_and_reconciles(&standby).await,
        (0.0, 0.0),
        "the standby neither leads nor reconciles"
    );

    // SIGTERM: the leader shuts down cleanly and releases the Lease on its way out, so the
    // standby need not wait for it to expire.
    leader.terminate();
    let status = leader.exited(Duration::from_secs(20)).await;
    let exited_at = Instant::now();
    assert!(status.success(), "{status}; log:\n{}", leader.log_tail());
    assert_ne!(
        holder(&kube).await.as_deref(),
        Some(leader_id.as_str()),
        "the Lease was released"
    );
    assert_eq!(the_leader(&[&standby]).await, 0);
    eprintln!(
        "standby leads {:?} after the SIGTERM exit",
        exited_at.elapsed()
    );
    assert_eq!(holder(&kube).await.as_deref(), Some(standby_id.as_str()));
    observed_by(&roles, &kube, "second", &standby_id).await;
    assert!(leader_and_reconciles(&standby).await.1 > 0.0);

    // SIGKILL: nothing is released; a new standby takes over once the Lease expires (3 s).
    let third = replica(&server, &aws, dir.path(), "replica-c").await;
    let third_id = identity(&third, "replica-c");
    assert_eq!(leader_and_reconciles(&third).await, (0.0, 0.0));
    standby.kill();
    standby.exited(Duration::from_secs(10)).await;
    let killed_at = Instant::now();
    assert_eq!(the_leader(&[&third]).await, 0);
    eprintln!("new standby leads {:?} after SIGKILL", killed_at.elapsed());
    assert_eq!(holder(&kube).await.as_deref(), Some(third_id.as_str()));
    observed_by(&roles, &kube, "third", &third_id).await;
    eprintln!("replicas: {:?}", started.elapsed());
}
