//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several operator replicas
//! only one reconciles and writes (kube-runtime has no leader election of its own).
//!
//! The protocol is client-go's: the holder writes `renewTime` every `renew_every`; anyone may
//! take the lease once `holderIdentity` is empty, or once the record has stayed unchanged for
//! `leaseDurationSeconds` *on the contender's own clock*, counted from when it first saw that
//! record — `renewTime` is never compared with the local clock, so a skewed clock on either
//! side cannot hand the lease over early. Every write is a create or a replace carrying the `resourceVersion` that was read, so
//! of two contenders that read the same Lease the API server lets exactly one write succeed.
//! The decision itself is [`claim`], a pure function.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

/// Which Lease to contend for, as whom, and how often.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    /// The Lease's name, e.g. `iam-tailor`.
    pub name: String,
    /// Unique per process (hostname + a random or pid suffix), so that a restarted replica
    /// does not mistake its predecessor's lease for its own.
    pub identity: String,
    /// How long a lease stays valid after its last renewal; written as whole seconds
    /// (rounded up, at least 1).
    pub lease_duration: Duration,
    /// How often the holder renews and a standby retries; well below `lease_duration`.
    pub renew_every: Duration,
}

/// Whether this process may still write as the leader: until the last successful renewal
/// *started* plus two thirds of the lease duration (client-go's renew deadline, 10 s of 15),
/// so its writes stop well before a standby, judging expiry on its own clock from when it saw
/// the last renewal, may take over. Checked before every AWS write.
#[derive(Clone, Debug)]
pub struct WriteGuard {
    until: Arc<std::sync::Mutex<Instant>>,
}

impl WriteGuard {
    fn new(until: Instant) -> WriteGuard {
        WriteGuard {
            until: Arc::new(std::sync::Mutex::new(until)),
        }
    }

    fn extend(&self, until: Instant) {
        *self.until.lock().expect("not poisoned") = until;
    }

    /// Closes at once: leadership is known to be lost.
    fn close(&self) {
        *self.until.lock().expect("not poisoned") = Instant::now();
    }

    /// True while the leadership is certainly still ours.
    pub fn holds(&self) -> bool {
        Instant::now() < *self.until.lock().expect("not poisoned")
    }
}

/// The part of the lease duration a leader trusts itself to hold the lease after a renewal.
fn renew_deadline(lease_duration: Duration) -> Duration {
    lease_duration * 2 / 3
}

/// Contends for one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    observer: Observer,
}

/// The last Lease spec this process read or wrote, and when (on its own monotonic clock) it
/// first saw that exact record.
#[derive(Default)]
struct Observer(std::sync::Mutex<Option<(Option<LeaseSpec>, Instant)>>);

impl Observer {
    /// How long `record` has been observed unchanged, recording it if it is new.
    fn observe(&self, record: Option<&LeaseSpec>, now: Instant) -> Duration {
        let mut last = self.0.lock().expect("not poisoned");
        match last.as_ref() {
            Some((seen, since)) if seen.as_ref() == record => now - *since,
            _ => {
                *last = Some((record.cloned(), now));
                Duration::ZERO
            }
        }
    }
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        LeaderElector {
            api,
            config,
            observer: Observer::default(),
        }
    }

    /// One attempt: create the Lease if missing, take it if free or expired (the same record
    /// observed for longer than its leaseDurationSeconds) or already ours (renew). Optimistic concurrency
    /// via resourceVersion (replace, not blind patch) so two contenders can never both win; a
    /// 409 Conflict means "someone else won this round" → Ok(false). Returns whether this
    /// identity holds the lease after the call.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let seconds = duration_seconds(self.config.lease_duration);
        let current = self.api.get_opt(&self.config.name).await?;
        let record = current.as_ref().and_then(|lease| lease.spec.as_ref());
        let observed_for = self.observer.observe(record, Instant::now());
        let Some(spec) = claim(
            record,
            &self.config.identity,
            seconds,
            Timestamp::now(),
            observed_for,
        ) else {
            return Ok(false);
        };
        let written_spec = spec.clone();
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            // `lease` keeps the resourceVersion it was read with.
            Some(mut lease) => {
                lease.spec = Some(spec);
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => {
                self.observer.observe(Some(&written_spec), Instant::now());
                Ok(true)
            }
            // Conflict on replace, AlreadyExists on create: another contender wrote first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Polls try_acquire_or_renew every renew_every until leader; then spawns a background
    /// renewal task and returns a Leadership.
    pub async fn acquire(self) -> Leadership {
        let acquired_at = loop {
            let attempt = Instant::now();
            match self.try_acquire_or_renew().await {
                Ok(true) => break attempt,
                Ok(false) => {}
                Err(error) => {
                    warn!(%error, lease = %self.config.name, "leader election failed; retrying")
                }
            }
            tokio::time::sleep(self.config.renew_every).await;
        };
        info!(lease = %self.config.name, identity = %self.config.identity, "became the leader");
        let guard = WriteGuard::new(acquired_at + renew_deadline(self.config.lease_duration));
        let elector = Arc::new(self);
        let (lost_sender, lost) = watch::channel(());
        let renewal =
            tokio::spawn(Arc::clone(&elector).renew(acquired_at, lost_sender, guard.clone()));
        Leadership {
            elector,
            renewal,
            lost,
            guard,
        }
    }

    /// Renews until leadership is lost, then returns (dropping `_lost`, which is what
    /// [`Leadership::lost`] waits for). `last_renewed` is when the last successful attempt
    /// *started*, so the local deadline never outlasts the `renewTime` others see.
    async fn renew(
        self: Arc<Self>,
        mut last_renewed: Instant,
        _lost: watch::Sender<()>,
        guard: WriteGuard,
    ) {
        let config = &self.config;
        loop {
            let deadline = last_renewed + config.lease_duration;
            let renewed = tokio::time::timeout_at(deadline, async {
                loop {
                    tokio::time::sleep(config.renew_every).await;
                    let attempt = Instant::now();
                    match self.try_acquire_or_renew().await {
                        Ok(held) => return (held, attempt),
                        Err(error) => {
                            warn!(%error, lease = %config.name, "lease renewal failed; retrying")
                        }
                    }
                }
            })
            .await;
            match renewed {
                Ok((true, attempt)) => {
                    last_renewed = attempt;
                    guard.extend(attempt + renew_deadline(config.lease_duration));
                }
                Ok((false, _)) => {
                    guard.close();
                    info!(lease = %config.name, identity = %config.identity, "leadership lost: the lease has another holder");
                    return;
                }
                Err(_) => {
                    guard.close();
                    info!(lease = %config.name, identity = %config.identity, "leadership lost: no renewal succeeded within the lease duration");
                    return;
                }
            }
        }
    }

    /// Clears `holderIdentity` if the lease is still ours, so a standby need not wait it out.
    async fn give_up(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(drop)
    }
}

/// This process holds the lease; a background task renews it until [`Leadership::lost`]
/// resolves. Dropping it stops renewing (the lease then expires); [`Leadership::release`]
/// hands it over at once.
pub struct Leadership {
    elector: Arc<LeaderElector>,
    renewal: JoinHandle<()>,
    /// Never sent on: closed when the renewal task ends, which it does only on loss (or panic).
    lost: watch::Receiver<()>,
    guard: WriteGuard,
}

impl Leadership {
    /// What the writers check before each AWS write.
    pub fn guard(&self) -> WriteGuard {
        self.guard.clone()
    }

    /// Resolves when leadership is lost: a renewal found another holder, or renewals kept
    /// failing until the lease would have expired (last successful renew + lease_duration
    /// passed). The caller then stops writing (the operator exits so Kubernetes restarts it,
    /// the controller-runtime convention). Cancel-safe, so it can sit in a `select!`.
    pub async fn lost(&mut self) {
        while self.lost.changed().await.is_ok() {}
    }

    /// Gives the lease up on clean shutdown (holderIdentity cleared) so a standby takes over
    /// without waiting out the lease.
    pub async fn release(mut self) {
        self.renewal.abort();
        let _ = (&mut self.renewal).await;
        // A renewal aborted in flight may still land after our read: that is a conflict, and
        // reading again settles it.
        for _ in 0..3 {
            match self.elector.give_up().await {
                Ok(()) => {
                    info!(lease = %self.elector.config.name, identity = %self.elector.config.identity, "released the lease");
                    return;
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => {
                    warn!(%error, lease = %self.elector.config.name, "releasing the lease failed; it will expire");
                    return;
                }
            }
        }
        warn!(lease = %self.elector.config.name, "releasing the lease kept conflicting; it will expire");
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// `lease_duration` as the Lease's whole seconds: rounded up, so the lease never claims less
/// than the holder's own loss deadline, and at least 1.
fn duration_seconds(lease_duration: Duration) -> i32 {
    let seconds = lease_duration.as_secs() + u64::from(lease_duration.subsec_nanos() > 0);
    i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
}

/// The spec to write so that `identity` holds the lease at `now`, or `None` while another
/// holder's lease is still valid. `current` is the Lease's spec (`None`: no Lease yet, or one
/// without a spec); `observed_for` is how long this process has seen that exact record.
///
/// A lease is free when it has no holder (released), no `leaseDurationSeconds` (nothing says
/// how long it lasts), or has been observed unchanged for longer than its
/// `leaseDurationSeconds`. `now` is only written, never compared: the holder's `renewTime`
/// comes from another clock. Taking over from anyone else (including a released lease) sets
/// `acquireTime` and counts a transition; renewing our own only moves `renewTime`.
fn claim(
    current: Option<&LeaseSpec>,
    identity: &str,
    lease_duration_seconds: i32,
    now: Timestamp,
    observed_for: Duration,
) -> Option<LeaseSpec> {
    let holder = current
        .and_then(|spec| spec.holder_identity.as_deref())
        .filter(|holder| !holder.is_empty());
    let mine = holder == Some(identity);
    if let Some(spec) = current
        && holder.is_some()
        && !mine
        && !expired(spec, observed_for)
    {
        return None;
    }
    let mut next = current.cloned().unwrap_or_default();
    if !mine {
        next.holder_identity = Some(identity.to_string());
        next.acquire_time = Some(MicroTime(now));
        next.lease_transitions =
            Some(current.map_or(0, |spec| spec.lease_transitions.unwrap_or(0) + 1));
    }
    next.lease_duration_seconds = Some(lease_duration_seconds);
    next.renew_time = Some(MicroTime(now));
    Some(next)
}

fn expired(spec: &LeaseSpec, observed_for: Duration) -> bool {
    spec.lease_duration_seconds.is_none_or(|seconds| {
        observed_for > Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    #[tokio::test(start_paused = true)]
    async fn the_write_guard_closes_before_the_lease_could_expire_and_reopens_on_renewal() {
        let lease = Duration::from_secs(15);
        let guard = WriteGuard::new(Instant::now() + renew_deadline(lease));
        assert!(guard.holds());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(guard.holds(), "within the renew deadline");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            !guard.holds(),
            "10 s after the last renewal began: no more writes"
        );
        guard.clone().extend(Instant::now() + renew_deadline(lease));
        assert!(guard.holds(), "a renewal opens it again, for every clone");
    }

    const NOW: &str = "2025-06-01T12:00:00Z";

    fn at(offset_seconds: i64) -> Timestamp {
        NOW.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(offset_seconds)
    }

    /// A lease held by `holder`, acquired at -100s, renewed at `renewed` (seconds from NOW),
    /// 15 s duration, 3 transitions so far.
    fn held(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            acquire_time: Some(MicroTime(at(-100))),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    fn taken_by_me(transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some("me".into()),
            acquire_time: Some(MicroTime(at(0))),
            renew_time: Some(MicroTime(at(0))),
            lease_duration_seconds: Some(10),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    const NEVER: Duration = Duration::ZERO;

    #[test]
    fn a_missing_lease_is_created_with_no_transitions() {
        assert_eq!(claim(None, "me", 10, at(0), NEVER), Some(taken_by_me(0)));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        for holder in [None, Some(String::new())] {
            let released = LeaseSpec {
                holder_identity: holder,
                ..held("", -1)
            };
            assert_eq!(
                claim(Some(&released), "me", 10, at(0), NEVER),
                Some(taken_by_me(4))
            );
        }
    }

    #[test]
    fn a_lease_observed_unchanged_for_its_duration_is_taken_over() {
        let seen = Duration::from_millis(15_001);
        assert_eq!(
            claim(Some(&held("other", -16)), "me", 10, at(0), seen),
            Some(taken_by_me(4))
        );
    }

    #[test]
    fn a_lease_of_another_holder_is_valid_until_observed_for_its_duration() {
        assert_eq!(
            claim(
                Some(&held("other", -5)),
                "me",
                10,
                at(0),
                Duration::from_secs(5)
            ),
            None
        );
        // Expiry is strict: valid up to and including the full duration.
        assert_eq!(
            claim(
                Some(&held("other", -15)),
                "me",
                10,
                at(0),
                Duration::from_secs(15)
            ),
            None
        );
    }

    #[test]
    fn the_holders_renew_time_is_never_compared_with_this_clock() {
        // An hour "old" by our clock, first seen just now: the holder's clock may be behind.
        assert_eq!(
            claim(Some(&held("other", -3600)), "me", 10, at(0), NEVER),
            None
        );
        // An hour "in the future", unchanged for longer than the duration: the holder is gone.
        assert!(
            claim(
                Some(&held("other", 3600)),
                "me",
                10,
                at(0),
                Duration::from_secs(16)
            )
            .is_some()
        );
    }

    #[test]
    fn a_lease_without_duration_is_free_and_one_without_renew_time_is_judged_by_observation() {
        let no_duration = LeaseSpec {
            lease_duration_seconds: None,
            ..held("other", 0)
        };
        assert!(claim(Some(&no_duration), "me", 10, at(0), NEVER).is_some());
        let never_renewed = LeaseSpec {
            renew_time: None,
            ..held("other", 0)
        };
        assert!(claim(Some(&never_renewed), "me", 10, at(0), NEVER).is_none());
        assert!(
            claim(
                Some(&never_renewed),
                "me",
                10,
                at(0),
                Duration::from_secs(16)
            )
            .is_some()
        );
    }

    #[test]
    fn my_own_lease_is_renewed_without_a_transition() {
        // Even when expired: nobody took it, so it is still ours.
        for renewed in [-5, -60] {
            let renewed = claim(Some(&held("me", renewed)), "me", 10, at(0), NEVER).unwrap();
            assert_eq!(
                renewed,
                LeaseSpec {
                    renew_time: Some(MicroTime(at(0))),
                    lease_duration_seconds: Some(10),
                    ..held("me", 0)
                }
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn observation_restarts_whenever_the_record_changes() {
        let observer = Observer::default();
        let first = held("other", 0);
        assert_eq!(observer.observe(Some(&first), Instant::now()), NEVER);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(
            observer.observe(Some(&first), Instant::now()),
            Duration::from_secs(4)
        );
        // A renewal (any change) starts the count again.
        let renewed = held("other", 4);
        assert_eq!(observer.observe(Some(&renewed), Instant::now()), NEVER);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            observer.observe(Some(&renewed), Instant::now()),
            Duration::from_secs(1)
        );
        assert_eq!(observer.observe(None, Instant::now()), NEVER);
    }

    #[test]
    fn lease_seconds_round_up() {
        assert_eq!(duration_seconds(Duration::from_secs(15)), 15);
        assert_eq!(duration_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(duration_seconds(Duration::from_millis(200)), 1);
        assert_eq!(duration_seconds(Duration::ZERO), 1);
    }
}
