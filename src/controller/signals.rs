//! Near-real-time signals (`--signal-queue-url`): the leader long-polls an SQS queue fed by
//! EventBridge (`examples/aws/signals.cfn.yaml`). An IAM write to a managed role wakes its
//! resources at once (the drift check runs now; `drift.interval` stays the backstop), and so
//! does a new version of one of its iam-tailor policies (its boundary's included); a
//! refused call of a managed role is kept for its resources' next look (the restore of
//! `spec.onAccessDenied`, minutes before the trail file arrives) and wakes them. Every
//! message is deleted once read, whatever it held; one that does not parse is counted and
//! logged. The queue is a door like the trail bucket: what comes through is never trusted
//! beyond what a trail record is (a refused call gives back at most what the role held).

use crate::aws::sqs::SignalQueue;
use crate::cloudtrail::event::{Signal, read_event};
use crate::controller::crd::LeastPrivilegeRole;
use crate::controller::telemetry::Metrics;
use crate::role::names::roles_of_policy;
#[cfg(test)]
use crate::usage::MAX_DISTINCT_CALLS;
use crate::usage::Usage;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

/// After a failed receive, wait this long before the next.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Principals whose refused calls are kept (each a managed role; a queue anyone's EventBridge
/// rule can feed names as many as it likes).
pub const MAX_REFUSING_PRINCIPALS: usize = 1_000;
/// Distinct refused calls kept in all (each principal's are bounded by `MAX_DISTINCT_CALLS`
/// too): about 200 bytes each.
pub const MAX_REFUSED_CALLS: usize = 100_000;
/// A refusal older than this is no restore's (`onAccessDenied.keepFor` is at most 400 days,
/// and the trail files bring refusals back anyway): it is forgotten.
pub const REFUSALS_KEPT_FOR: Duration =
    Duration::from_secs(crate::controller::spec::KEEP_FOR_RANGE.1);
/// Old refusals are looked for at most this often (and whenever a bound is reached).
const PRUNE_EVERY: i128 = 3_600 * 1_000_000_000;

/// Refused calls from the queue, by principal (role ARN), for the restore. Only principals
/// some resource manages are kept, each bounded like any usage (`MAX_DISTINCT_CALLS`), at most
/// [`MAX_REFUSING_PRINCIPALS`] and [`MAX_REFUSED_CALLS`] in all, none older than
/// [`REFUSALS_KEPT_FOR`]. What does not fit is counted, never kept silently.
#[derive(Default)]
pub struct Refusals {
    state: Mutex<RefusalState>,
}

#[derive(Default)]
struct RefusalState {
    by_principal: HashMap<String, Usage>,
    /// Distinct refused calls held (`Usage::facts` of each, less the principal itself).
    calls: usize,
    pruned_at: crate::time::Instant,
}

/// Why a refusal from the queue was not kept (a metric label), and how many calls.
pub type Dropped = Vec<(&'static str, u64)>;

/// The distinct calls `usage` holds.
fn calls(usage: &Usage) -> usize {
    usage.facts() - 1
}

/// The newest refusal in `usage` (RFC 3339, compared as text).
fn newest(usage: &Usage) -> &str {
    let denied = usage.denied.values().map(|s| s.last_seen.as_str());
    let grants = usage
        .denied_grants
        .values()
        .map(|d| d.seen.last_seen.as_str());
    denied.chain(grants).max().unwrap_or_default()
}

impl Refusals {
    /// Keeps `usage` (one refusal) of `principal`, received at `now`, within the bounds;
    /// what was not kept, by reason.
    pub fn add(&self, principal: &str, usage: Usage, now: crate::time::Instant) -> Dropped {
        let mut state = self.state.lock().expect("not poisoned");
        let full =
            state.by_principal.len() >= MAX_REFUSING_PRINCIPALS || state.calls >= MAX_REFUSED_CALLS;
        if full || now - state.pruned_at >= PRUNE_EVERY {
            state.prune(now);
        }
        let incoming = calls(&usage) as u64;
        if !state.by_principal.contains_key(principal)
            && state.by_principal.len() >= MAX_REFUSING_PRINCIPALS
        {
            return vec![("too-many-principals", incoming.max(1))];
        }
        if state.calls + calls(&usage) > MAX_REFUSED_CALLS {
            return vec![("too-many-calls", incoming.max(1))];
        }
        let RefusalState {
            by_principal,
            calls: held,
            ..
        } = &mut *state;
        let mine = by_principal.entry(principal.to_string()).or_default();
        let before = (calls(mine), skipped_calls(mine));
        mine.merge(usage);
        *held = (*held + calls(mine)).saturating_sub(before.0);
        match skipped_calls(mine).saturating_sub(before.1) {
            0 => vec![],
            n => vec![("too-many-distinct-calls", n)],
        }
    }

    /// The refused calls the queue brought for `principal`.
    pub fn of(&self, principal: &str) -> Option<Usage> {
        let state = self.state.lock().expect("not poisoned");
        state.by_principal.get(principal).cloned()
    }

    /// Principals and distinct calls held.
    pub fn held(&self) -> (usize, usize) {
        let state = self.state.lock().expect("not poisoned");
        (state.by_principal.len(), state.calls)
    }
}

/// Refused calls a principal's usage could not keep (past `MAX_DISTINCT_CALLS`).
fn skipped_calls(usage: &Usage) -> u64 {
    (usage.stats.skipped.get("too-many-distinct-calls")).map_or(0, |n| *n)
}

impl RefusalState {
    /// Forgets every refusal older than [`REFUSALS_KEPT_FOR`], and principals left with none.
    fn prune(&mut self, now: crate::time::Instant) {
        self.pruned_at = now;
        let oldest = crate::time::rfc3339(now - REFUSALS_KEPT_FOR.as_nanos() as i128);
        for usage in self.by_principal.values_mut() {
            usage.denied.retain(|_, seen| seen.last_seen >= oldest);
            (usage.denied_grants).retain(|_, denial| denial.seen.last_seen >= oldest);
        }
        (self.by_principal).retain(|_, usage| newest(usage) >= oldest.as_str());
        self.calls = self.by_principal.values().map(calls).sum();
    }
}

/// At most one signal-triggered wake per resource per `every` (`--signal-debounce-seconds`):
/// a pod looping on a refused call costs the shared IAM budget one look of its resource per
/// interval, not one per refusal. The first signal wakes at once; later ones within `every`
/// fold into one wake at its end, so the last signal of a burst is never lost.
pub struct Debounce {
    every: Duration,
    /// Each resource's last wake, or the one scheduled (then in the future).
    last: HashMap<ObjectRef<LeastPrivilegeRole>, Instant>,
}

/// What [`Debounce::wake`] says to do with a signal for a resource.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    Now,
    /// A wake at this time (the end of the interval).
    At(Instant),
    /// A wake is already scheduled.
    Folded,
}

/// Past this many resources remembered, those whose interval is over are forgotten.
const DEBOUNCE_PRUNE_AT: usize = 4096;

impl Debounce {
    pub fn new(every: Duration) -> Debounce {
        Debounce {
            every,
            last: HashMap::new(),
        }
    }

    pub fn wake(&mut self, key: &ObjectRef<LeastPrivilegeRole>, now: Instant) -> Wake {
        if self.last.len() > DEBOUNCE_PRUNE_AT {
            let every = self.every;
            self.last.retain(|_, at| *at + every > now);
        }
        match self.last.get(key).copied() {
            Some(at) if at > now => Wake::Folded,
            Some(at) if now < at + self.every => {
                let next = at + self.every;
                self.last.insert(key.clone(), next);
                Wake::At(next)
            }
            _ => {
                self.last.insert(key.clone(), now);
                Wake::Now
            }
        }
    }
}

/// The role names a resource's spec gives: `roleName`, or the last segment of `roleArn`.
fn spec_role(lpr: &LeastPrivilegeRole) -> Option<&str> {
    let spec = &lpr.spec;
    (spec.role_name.as_deref().filter(|n| !n.is_empty()))
        .or_else(|| spec.role_arn.as_deref().and_then(|a| a.rsplit('/').next()))
}

/// The roles whose iam-tailor policy `arn` may be ([`roles_of_policy`]).
fn roles_of_policy_arn(arn: &str) -> Vec<String> {
    arn.rsplit('/')
        .next()
        .map(roles_of_policy)
        .unwrap_or_default()
}

/// Reads the queue until the process ends: wakes the resources of the roles signals name
/// (through `wake`, at most once per `debounce` each) and keeps refused calls in `refusals`.
pub async fn consume(
    queue: SignalQueue,
    roles: Store<LeastPrivilegeRole>,
    refusals: Arc<Refusals>,
    wake: UnboundedSender<ObjectRef<LeastPrivilegeRole>>,
    metrics: Arc<Metrics>,
    debounce: Duration,
) {
    let mut debounce = Debounce::new(debounce);
    let mut send =
        |object: ObjectRef<LeastPrivilegeRole>| match debounce.wake(&object, Instant::now()) {
            Wake::Now => {
                let _ = wake.send(object);
            }
            Wake::At(at) => {
                let wake = wake.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let _ = wake.send(object);
                });
            }
            Wake::Folded => {}
        };
    loop {
        let messages = match queue.receive().await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "receiving from the signal queue failed");
                metrics.signal("receive-failed");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        for message in messages {
            let kind = handle(&message.body, &roles, &refusals, &metrics, &mut send);
            metrics.signal(kind);
            if let Err(e) = queue.delete(&message).await {
                tracing::warn!(error = %e, "deleting a signal failed; it will come again");
            }
        }
    }
}

/// One message: what kind of signal it was (a metric label).
fn handle(
    body: &str,
    roles: &Store<LeastPrivilegeRole>,
    refusals: &Refusals,
    metrics: &Metrics,
    wake: &mut impl FnMut(ObjectRef<LeastPrivilegeRole>),
) -> &'static str {
    let mut wake_role = |role: &str| {
        let mut woken = 0;
        for lpr in roles.state().iter().filter(|l| spec_role(l) == Some(role)) {
            woken += 1;
            wake(ObjectRef::from_obj(lpr.as_ref()));
        }
        woken
    };
    let now = crate::time::now();
    match read_event(body, now) {
        Ok(Signal::RoleWritten { role }) => {
            wake_role(&role);
            "role-written"
        }
        Ok(Signal::PolicyWritten { arn }) => {
            let roles = roles_of_policy_arn(&arn);
            for role in &roles {
                wake_role(role);
            }
            if roles.is_empty() {
                "ignored"
            } else {
                "policy-written"
            }
        }
        Ok(Signal::Refused { principal, usage }) => {
            let role = principal.rsplit('/').next().unwrap_or_default();
            if wake_role(role) == 0 {
                return "ignored";
            }
            for (reason, n) in refusals.add(&principal, *usage, now) {
                tracing::debug!(reason, principal, "a refused call from the queue not kept");
                metrics.signal_refusals_dropped(reason, n);
            }
            "refused"
        }
        Ok(Signal::Ignored(why)) => {
            tracing::debug!(why, "signal ignored");
            "ignored"
        }
        Err(e) => {
            tracing::warn!(error = e, "a signal queue message was not read");
            "malformed"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(action: &str, time: &str) -> Usage {
        let mut usage = Usage::default();
        usage.record_denied("s3.amazonaws.com", action, "AccessDenied", time);
        let call = crate::usage::Refused {
            event_id: "e",
            source_ip: "",
        };
        usage.record_denied_grant(&format!("s3:{action}"), "*", &call, time);
        usage
    }

    /// A flood of refusals for many principals: past the global bound new principals are
    /// counted as dropped; refusals older than any restore's window are pruned, which makes
    /// room again; a principal's own bound is counted too.
    #[test]
    fn refusals_are_pruned_by_age_and_bounded_and_counted() {
        let refusals = Refusals::default();
        let now = crate::time::parse_date("2026-11-20T10:00:00Z").unwrap();
        let old = "2025-01-01T00:00:00Z";
        let role = |i: usize| format!("arn:aws:iam::111122223333:role/r{i}");
        for i in 0..MAX_REFUSING_PRINCIPALS {
            assert!(
                refusals
                    .add(&role(i), refusal("GetObject", old), now)
                    .is_empty()
            );
        }
        let fresh = "2026-11-20T09:59:00Z";
        // Full of refusals still within the window: a new principal is dropped, counted.
        let later = now - 420 * 86_400 * 1_000_000_000;
        let full = Refusals::default();
        for i in 0..MAX_REFUSING_PRINCIPALS {
            full.add(&role(i), refusal("GetObject", fresh), later);
        }
        let dropped = full.add(&role(5_000), refusal("GetObject", fresh), later);
        assert_eq!(dropped, [("too-many-principals", 2)]);
        assert_eq!(
            full.held(),
            (MAX_REFUSING_PRINCIPALS, 2 * MAX_REFUSING_PRINCIPALS)
        );
        // Older than keepFor's longest: pruned once the bound is reached, so the new one fits.
        assert!(
            refusals
                .add(&role(5_000), refusal("GetObject", fresh), now)
                .is_empty()
        );
        assert_eq!(refusals.held(), (1, 2));
        assert!(refusals.of(&role(0)).is_none());
        // One principal's own bound: counted, not silent.
        let one = Refusals::default();
        let mut dropped = 0;
        for i in 0..MAX_DISTINCT_CALLS + 10 {
            for (reason, n) in one.add(&role(0), refusal(&format!("Get{i}"), fresh), now) {
                assert_eq!(reason, "too-many-distinct-calls");
                dropped += n;
            }
        }
        assert_eq!(dropped, 20, "denied and denied grants, 10 each");
    }

    #[test]
    fn a_burst_of_signals_wakes_a_resource_once_at_once_and_once_at_the_interval_s_end() {
        let every = Duration::from_secs(10);
        let mut debounce = Debounce::new(every);
        let app = ObjectRef::<LeastPrivilegeRole>::new("app").within("payments");
        let other = ObjectRef::<LeastPrivilegeRole>::new("app").within("ledger");
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(debounce.wake(&app, t0), Wake::Now);
        // A refusal loop: one wake at the interval's end for all of them.
        assert_eq!(debounce.wake(&app, t0 + s(1)), Wake::At(t0 + s(10)));
        for second in 2..10 {
            assert_eq!(debounce.wake(&app, t0 + s(second)), Wake::Folded);
        }
        // Another tenant's resource is not held back by it.
        assert_eq!(debounce.wake(&other, t0 + s(2)), Wake::Now);
        // After the scheduled wake, the next interval again.
        assert_eq!(debounce.wake(&app, t0 + s(11)), Wake::At(t0 + s(20)));
        assert_eq!(debounce.wake(&app, t0 + s(31)), Wake::Now);
        // Off: every signal wakes.
        let mut off = Debounce::new(Duration::ZERO);
        assert_eq!(off.wake(&app, t0), Wake::Now);
        assert_eq!(off.wake(&app, t0), Wake::Now);
    }

    #[test]
    fn iam_tailor_policies_name_their_role_and_no_other_does() {
        let arn = |name: &str| format!("arn:aws:iam::111122223333:policy/{name}");
        let roles = |name: &str| roles_of_policy_arn(&arn(name));
        assert_eq!(roles("iam-tailor-app"), ["app"]);
        assert_eq!(roles("iam-tailor.3.web.v2"), ["web.v2"]);
        assert_eq!(roles("iam-tailor.boundary.app"), ["app"]);
        // The RoleId form: the role as written, or without the suffix.
        let id = "AROAEXAMPLE1234567890";
        assert_eq!(
            roles(&format!("iam-tailor-app@{id}")),
            [format!("app@{id}"), "app".into()]
        );
        assert_eq!(
            roles(&format!("iam-tailor.2.app@{id}")),
            [format!("app@{id}"), "app".into()]
        );
        assert_eq!(roles("iam-tailor-me@example.com"), ["me@example.com"]);
        for other in [
            "AdministratorAccess",
            "iam-tailor.1.app",
            "iam-tailor.02.app",
            "iam-tailor.x.app",
        ] {
            assert!(roles(other).is_empty(), "{other}");
        }
    }
}
