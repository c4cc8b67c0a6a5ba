//! Leader election against a real kube-apiserver: concurrent contenders never both win, a
//! release hands over at once, a leader that stops renewing is replaced after the lease
//! duration, and a leader notices when it lost the lease.

use crate::control_plane;

use futures::future::join_all;
use iam_tailor::controller::leader::{LeaderElector, LeaseConfig};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio::time::{Instant, timeout};

fn elector(
    client: &kube::Client,
    name: &str,
    identity: &str,
    lease_duration: Duration,
    renew_every: Duration,
) -> LeaderElector {
    LeaderElector::new(
        client.clone(),
        LeaseConfig {
            namespace: "default".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration,
            renew_every,
        },
    )
}

async fn lease(client: &kube::Client, name: &str) -> Lease {
    Api::<Lease>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .unwrap()
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

fn transitions(lease: &Lease) -> i32 {
    lease.spec.as_ref().unwrap().lease_transitions.unwrap()
}

/// Contenders racing for a missing Lease (create) and for an expired one (replace): exactly one
/// wins each time, and it is the one the Lease names.
#[tokio::test]
async fn concurrent_contenders_never_both_win() {
    let server = control_plane::ControlPlane::start();
    let client = server.client().await;
    let (long, renew) = (Duration::from_secs(30), Duration::from_millis(500));
    for round in 0..5 {
        let name = format!("race-{round}");
        let contenders: Vec<_> = (0..4)
            .map(|i| elector(&client, &name, &format!("c{i}"), long, renew))
            .collect();
        let won: Vec<bool> = join_all(contenders.iter().map(|c| c.try_acquire_or_renew()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
        let winner = won.iter().position(|w| *w).unwrap();
        let created = lease(&client, &name).await;
        assert_eq!(holder(&created), Some(format!("c{winner}").as_str()));
        assert_eq!(transitions(&created), 0);
        // The others see a fresh lease held by someone else; the winner renews.
        for (i, contender) in contenders.iter().enumerate() {
            assert_eq!(contender.try_acquire_or_renew().await.unwrap(), i == winner);
        }
    }

    // A lease held by someone who is gone, whose renewTime looks years old. Expiry is judged
    // on each contender's own clock from when it first saw the record, never from renewTime
    // (another machine's clock): at first sight nobody takes it, even with a 1 s duration.
    let api = Api::<Lease>::namespaced(client.clone(), "default");
    let mut expired = lease(&client, "race-0").await;
    let spec = expired.spec.as_mut().unwrap();
    spec.holder_identity = Some("gone".into());
    spec.renew_time = Some(MicroTime(
        "2020-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
    ));
    spec.lease_duration_seconds = Some(1);
    spec.lease_transitions = Some(7);
    api.replace("race-0", &PostParams::default(), &expired)
        .await
        .unwrap();
    let contenders: Vec<_> = (0..4)
        .map(|i| elector(&client, "race-0", &format!("d{i}"), long, renew))
        .collect();
    for contender in &contenders {
        assert!(!contender.try_acquire_or_renew().await.unwrap());
    }
    // Unchanged for longer than its duration on their clocks: now it is free.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let won: Vec<bool> = join_all(contenders.iter().map(|c| c.try_acquire_or_renew()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = won.iter().position(|w| *w).unwrap();
    let taken = lease(&client, "race-0").await;
    assert_eq!(holder(&taken), Some(format!("d{winner}").as_str()));
    assert_eq!(transitions(&taken), 8);
}

/// Two electors: one leads; when it releases, the standby takes over well before the (long)
/// lease would have expired.
#[tokio::test]
async fn release_hands_over_to_the_standby_at_once() {
    let server = control_plane::ControlPlane::start();
    let client = server.client().await;
    let (long, renew) = (Duration::from_secs(30), Duration::from_millis(200));
    let a = elector(&client, "handover", "a", long, renew);
    let b = elector(&client, "handover", "b", long, renew);
    let (a_won, b_won) = tokio::join!(a.try_acquire_or_renew(), b.try_acquire_or_renew());
    let (a_won, b_won) = (a_won.unwrap(), b_won.unwrap());
    assert!(a_won != b_won, "exactly one leads: a={a_won} b={b_won}");
    let (leader, standby, standby_id) = if a_won { (a, b, "b") } else { (b, a, "a") };

    let leadership = timeout(Duration::from_secs(5), leader.acquire())
        .await
        .expect("the leader re-acquires its own lease at once");
    let first = lease(&client, "handover").await;
    let mut standby = tokio::spawn(standby.acquire());
    // The standby keeps polling but cannot take a renewed lease.
    assert!(
        timeout(Duration::from_secs(1), &mut standby).await.is_err(),
        "the standby must not lead while the leader renews"
    );

    leadership.release().await;
    // Far sooner than the 30 s lease would expire.
    let mut standby_leadership = timeout(Duration::from_secs(5), standby)
        .await
        .expect("the standby takes over promptly after a release")
        .unwrap();

    let taken = lease(&client, "handover").await;
    assert_eq!(holder(&taken), Some(standby_id));
    assert_eq!(transitions(&taken), transitions(&first) + 1);
    let spec = taken.spec.as_ref().unwrap();
    assert!(spec.acquire_time > first.spec.as_ref().unwrap().acquire_time);
    assert_eq!(spec.lease_duration_seconds, Some(30));
    // The new leader is renewing, not lost.
    assert!(
        timeout(Duration::from_millis(800), standby_leadership.lost())
            .await
            .is_err()
    );
    standby_leadership.release().await;
    assert_eq!(holder(&lease(&client, "handover").await), None);
}

/// A leader that stops renewing (its Leadership dropped, like a hung or killed process) is
/// replaced once its lease expires: not before renewTime + duration, and not much after.
#[tokio::test]
async fn a_leader_that_stops_renewing_is_replaced_after_the_lease_duration() {
    let server = control_plane::ControlPlane::start();
    let client = server.client().await;
    let (duration, renew) = (Duration::from_secs(2), Duration::from_millis(500));
    let a = elector(&client, "expiry", "a", duration, renew);
    let b = elector(&client, "expiry", "b", duration, renew);
    let leadership = a.acquire().await;
    let mut standby = tokio::spawn(b.acquire());
    // Longer than the lease duration: only renewals keep b out.
    assert!(
        timeout(Duration::from_secs(3), &mut standby).await.is_err(),
        "the standby must not lead while the leader renews"
    );
    let before = lease(&client, "expiry").await;
    assert_eq!(holder(&before), Some("a"));

    let stopped = Instant::now();
    drop(leadership);
    let _b = timeout(Duration::from_secs(6), standby)
        .await
        .expect("the standby takes over after the lease expires")
        .unwrap();
    let waited = stopped.elapsed();
    // The last renewal was at most renew_every (plus a request) before the drop.
    assert!(
        waited >= duration - renew - Duration::from_millis(200),
        "took over after {waited:?}, before the lease expired"
    );
    let after = lease(&client, "expiry").await;
    assert_eq!(holder(&after), Some("b"));
    assert_eq!(transitions(&after), transitions(&before) + 1);
}

/// `lost` resolves when someone else took the lease (at the next renewal, long before the lease
/// duration), and when renewals fail until the lease would have expired.
#[tokio::test]
async fn lost_resolves_on_another_holder_or_failing_renewals() {
    let server = control_plane::ControlPlane::start();
    let client = server.client().await;
    let api = Api::<Lease>::namespaced(client.clone(), "default");

    let renew = Duration::from_millis(300);
    let mut leadership = elector(&client, "taken", "a", Duration::from_secs(30), renew)
        .acquire()
        .await;
    assert!(
        timeout(Duration::from_secs(1), leadership.lost())
            .await
            .is_err(),
        "not lost while renewing"
    );
    let mut taken = lease(&client, "taken").await;
    let spec = taken.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace("taken", &PostParams::default(), &taken)
        .await
        .unwrap();
    timeout(Duration::from_secs(3), leadership.lost())
        .await
        .expect("lost noticed at the next renewal");
    // Idempotent, and releasing a lost lease leaves the new holder alone.
    leadership.lost().await;
    leadership.release().await;
    assert_eq!(holder(&lease(&client, "taken").await), Some("intruder"));

    let duration = Duration::from_secs(2);
    let mut leadership = elector(&client, "unreachable", "a", duration, renew)
        .acquire()
        .await;
    let stopped = Instant::now();
    drop(server); // renewals now fail: connection refused
    timeout(Duration::from_secs(6), leadership.lost())
        .await
        .expect("lost once the lease would have expired");
    let waited = stopped.elapsed();
    assert!(
        waited >= duration - renew - Duration::from_millis(200),
        "lost after {waited:?}, before the lease could have expired"
    );
}
