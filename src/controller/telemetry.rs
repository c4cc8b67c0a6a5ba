//! The operator's Prometheus metrics and the small HTTP server that exposes them
//! (`/metrics`) next to the kubelet's probes (`/healthz`, `/readyz`).
//!
//! [`Metrics`] is shared by every reconcile task through an `Arc`; each method is a few atomic
//! operations, so reconcile calls them inline.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What prometheus-client's text encoder produces (it ends with `# EOF`).
/// `/healthz` calls a reconcile running longer than this wedged: a minute past the reconcile
/// deadline (15 minutes), which should have cut it short.
pub const WEDGED_AFTER: std::time::Duration = std::time::Duration::from_secs(16 * 60);
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A CloudTrail scan reads from a few files to a few hundred thousand: 0.1 s to 5 min.
const SCAN_BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// A reconcile without a scan is a few IAM calls; with one it lasts as long as the scan.
const RECONCILE_BUCKETS: [f64; 13] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LevelLabels {
    namespace: String,
    name: String,
    access_level: String,
}

/// The values of `access_level`: the catalog's levels, and `Unknown`.
fn access_levels() -> impl Iterator<Item = &'static str> {
    (crate::catalog::AccessLevel::ALL.iter())
        .map(|l| l.as_str())
        .chain(["Unknown"])
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    namespace: String,
    name: String,
    role: String,
}

/// Registers, in order, a clone of each listed field of `$metrics` (sharing its atomics) in
/// `$metrics.registry` under its name and help text; `in Unit` registers it with that unit,
/// which prometheus-client appends to the name (`_seconds`).
macro_rules! register {
    ($metrics:ident; $($field:ident $(in $unit:ident)?: $name:literal, $help:literal;)+) => {
        $(register!(
            @one $metrics.registry, $name, $help, $metrics.$field.clone() $(, Unit::$unit)?
        );)+
    };
    (@one $registry:expr, $name:literal, $help:literal, $metric:expr) => {
        $registry.register($name, $help, $metric)
    };
    (@one $registry:expr, $name:literal, $help:literal, $metric:expr, $unit:expr) => {
        $registry.register_with_unit($name, $help, $unit, $metric)
    };
}

/// The operator's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    reconcile_errors: Family<ReasonLabels, Counter>,
    drift_detections: Family<ResourceLabels, Counter>,
    policy_applies: Family<ResourceLabels, Counter>,
    permissions_restored: Family<LevelLabels, Counter>,
    restores_pending: Family<ResourceLabels, Gauge<u64, AtomicU64>>,
    aws_writes: Family<OperationLabels, Counter>,
    trail_files_read: Counter,
    signals: Family<KindLabels, Counter>,
    athena_queries: Counter,
    fact_store_errors: Counter,
    ingesters: Family<KindLabels, Gauge<u64, AtomicU64>>,
    usage_dropped: Family<ReasonLabels, Counter>,
    signal_refusals_dropped: Family<ReasonLabels, Counter>,
    unused_actions: Family<RoleLabels, Gauge<u64, AtomicU64>>,
    /// The role each resource last reported unused actions for: the `role` label is not known
    /// when the resource is deleted (or renamed in its spec), yet its series must go.
    unused_roles: Mutex<HashMap<ResourceLabels, String>>,
    scan_duration: Histogram,
    reconcile_duration: Histogram,
    leader: Gauge,
    /// Reconciles under way: when each began, by `namespace/name`, for `/healthz`.
    in_flight: Mutex<HashMap<String, std::time::Instant>>,
    /// A reconcile running longer than this means the loop is wedged (every reconcile has a
    /// deadline, so one that outlives it was never cut short).
    wedged_after: std::time::Duration,
}

/// Held while a reconcile runs; dropping it (however the reconcile ends) takes it off the list.
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        (self.metrics.in_flight.lock().expect("not poisoned")).remove(&self.key);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics whose `/healthz` calls a reconcile older than `wedged_after` wedged.
    pub fn with_wedged_after(wedged_after: std::time::Duration) -> Self {
        Metrics {
            wedged_after,
            ..Self::new()
        }
    }

    /// Marks the reconcile of `key` as under way until the guard is dropped.
    pub fn in_flight(&self, key: String) -> InFlight<'_> {
        (self.in_flight.lock().expect("not poisoned"))
            .insert(key.clone(), std::time::Instant::now());
        InFlight { metrics: self, key }
    }

    /// The reconcile running longest, if it has run past `wedged_after`: what `/healthz`
    /// reports.
    pub fn wedged(&self) -> Option<(String, std::time::Duration)> {
        let in_flight = self.in_flight.lock().expect("not poisoned");
        (in_flight.iter())
            .map(|(key, started)| (key.clone(), started.elapsed()))
            .filter(|(_, age)| *age > self.wedged_after)
            .max_by_key(|(_, age)| *age)
    }

    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            reconciles: Counter::default(),
            reconcile_errors: Family::default(),
            drift_detections: Family::default(),
            policy_applies: Family::default(),
            permissions_restored: Family::default(),
            restores_pending: Family::default(),
            aws_writes: Family::default(),
            trail_files_read: Counter::default(),
            signals: Family::default(),
            athena_queries: Counter::default(),
            fact_store_errors: Counter::default(),
            ingesters: Family::default(),
            usage_dropped: Family::default(),
            signal_refusals_dropped: Family::default(),
            unused_actions: Family::default(),
            unused_roles: Mutex::default(),
            scan_duration: Histogram::new(SCAN_BUCKETS),
            reconcile_duration: Histogram::new(RECONCILE_BUCKETS),
            leader: Gauge::default(),
            in_flight: Mutex::default(),
            wedged_after: WEDGED_AFTER,
        };
        register! { metrics;
            reconciles: "iam_tailor_reconciles", "Reconciles completed";
            reconcile_errors: "iam_tailor_reconcile_errors", "Reconciles that failed, by reason";
            drift_detections: "iam_tailor_drift_detections",
                "Times a role was found changed outside iam-tailor";
            policy_applies: "iam_tailor_policy_applies", "Policy revisions written to IAM";
            permissions_restored: "iam_tailor_permissions_restored",
                "Permissions given back after an apply because the role was refused them";
            restores_pending: "iam_tailor_restores_pending",
                "Refused permissions the role held before that wait for a person (privilege-sensitive, or past restoresPerDay)";
            aws_writes: "iam_tailor_aws_writes", "IAM write calls, by operation";
            trail_files_read: "iam_tailor_trail_files_read",
                "CloudTrail files downloaded and scanned (each once, for every resource)";
            signals: "iam_tailor_signals",
                "Signal queue messages read, by kind (role-written, policy-written, refused, ignored, malformed, receive-failed)";
            athena_queries: "iam_tailor_athena_queries",
                "Athena queries run (one per account and day for every resource asking)";
            fact_store_errors: "iam_tailor_fact_store_errors",
                "Fact store loads and saves that failed (the trail is read instead; logged)";
            ingesters: "iam_tailor_ingesters",
                "Shared trail readers (kind trail) and Athena tables (kind athena) kept: each while some resource uses it";
            usage_dropped: "iam_tailor_usage_dropped",
                "Usage skipped by the memory bounds, by reason (too-many-principals, too-many-facts: records or store rows; future-event-time: records; future-partition: store objects; athena-result-too-large: queries)";
            signal_refusals_dropped: "iam_tailor_signal_refusals_dropped",
                "Refused calls from the signal queue not kept, by reason (too-many-principals, too-many-calls, too-many-distinct-calls)";
            unused_actions: "iam_tailor_unused_actions",
                "Actions a role is granted but did not use in the analysis window";
            scan_duration in Seconds: "iam_tailor_scan_duration",
                "Time to scan CloudTrail for one analysis";
            reconcile_duration in Seconds: "iam_tailor_reconcile_duration",
                "Time for one reconcile, scan included";
            leader: "iam_tailor_leader", "1 while this replica holds the leader lease";
        }
        metrics
    }

    pub fn reconciled(&self) {
        self.reconciles.inc();
    }

    /// `reason` must come from a small fixed set (an error kind, not a message): each value
    /// is a series.
    pub fn reconcile_error(&self, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn drift_detected(&self, namespace: &str, name: &str) {
        self.drift_detections
            .get_or_create(&resource(namespace, name))
            .inc();
    }

    /// `access_level` is the catalog's name of one (`Write`, `Permissions management`) or
    /// `Unknown`: a fixed few values.
    pub fn restored(&self, namespace: &str, name: &str, access_level: &str, permissions: u64) {
        let labels = LevelLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            access_level: access_level.to_owned(),
        };
        self.permissions_restored
            .get_or_create(&labels)
            .inc_by(permissions);
    }

    pub fn set_restores_pending(&self, namespace: &str, name: &str, pending: u64) {
        self.restores_pending
            .get_or_create(&resource(namespace, name))
            .set(pending);
    }

    pub fn applied(&self, namespace: &str, name: &str) {
        self.policy_applies
            .get_or_create(&resource(namespace, name))
            .inc();
    }

    /// `kind`: `trail` or `athena`.
    pub fn set_ingesters(&self, kind: &str, count: usize) {
        let labels = KindLabels {
            kind: kind.to_owned(),
        };
        self.ingesters.get_or_create(&labels).set(count as u64);
    }

    pub fn trail_files_read(&self, files: u64) {
        self.trail_files_read.inc_by(files);
    }

    /// `kind` is one of a fixed few (`signals::handle`'s).
    pub fn signal(&self, kind: &str) {
        self.signals
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn athena_queries(&self, queries: u64) {
        self.athena_queries.inc_by(queries);
    }

    pub fn fact_store_errors(&self, errors: u64) {
        self.fact_store_errors.inc_by(errors);
    }

    /// `reason` is one of the memory bounds' fixed few (`sources::facts`, `sources::ingest`).
    pub fn usage_dropped(&self, reason: &str, n: u64) {
        (self.usage_dropped)
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc_by(n);
    }

    /// `reason` is one of `signals::Refusals`' fixed few.
    pub fn signal_refusals_dropped(&self, reason: &str, n: u64) {
        (self.signal_refusals_dropped)
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc_by(n);
    }

    /// `operation` is the IAM API name (`PutRolePolicy`, `CreatePolicyVersion`, …).
    pub fn aws_write(&self, operation: &str) {
        self.aws_writes
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    /// A resource targets one role; when that changes, the old role's series is dropped.
    pub fn set_unused_actions(&self, namespace: &str, name: &str, role: &str, unused: u64) {
        let key = resource(namespace, name);
        let mut roles = self.lock_unused_roles();
        if let Some(previous) = roles.insert(key.clone(), role.to_owned())
            && previous != role
        {
            self.unused_actions.remove(&role_labels(&key, previous));
        }
        self.unused_actions
            .get_or_create(&role_labels(&key, role.to_owned()))
            .set(unused);
    }

    /// Drops a deleted resource's series, so they stop being exported rather than go stale.
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = resource(namespace, name);
        self.drift_detections.remove(&key);
        self.policy_applies.remove(&key);
        for access_level in access_levels() {
            self.permissions_restored.remove(&LevelLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                access_level: access_level.to_owned(),
            });
        }
        self.restores_pending.remove(&key);
        if let Some(role) = self.lock_unused_roles().remove(&key) {
            self.unused_actions.remove(&role_labels(&key, role));
        }
    }

    pub fn scan_duration(&self, seconds: f64) {
        self.scan_duration.observe(seconds);
    }

    pub fn reconcile_duration(&self, seconds: f64) {
        self.reconcile_duration.observe(seconds);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// OpenMetrics text, as served at `/metrics`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String does not fail");
        text
    }

    /// A panic elsewhere while holding the lock leaves the map consistent (each update is a
    /// single insert or remove), so a poisoned lock is still usable.
    fn lock_unused_roles(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceLabels, String>> {
        self.unused_roles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn resource(namespace: &str, name: &str) -> ResourceLabels {
    ResourceLabels {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

fn role_labels(resource: &ResourceLabels, role: String) -> RoleLabels {
    RoleLabels {
        namespace: resource.namespace.clone(),
        name: resource.name.clone(),
        role,
    }
}

#[derive(Clone)]
struct ServerState {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// Serves `GET /metrics`, `/healthz` (200 while the process runs and no reconcile is wedged)
/// and `/readyz` (200 once
/// `ready` is set, 503 before, so no traffic or leader work is expected of a replica still
/// starting). Returns when `shutdown` resolves and open requests have finished.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz_handler))
        .route("/readyz", get(readyz_handler))
        .with_state(ServerState { metrics, ready });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_handler(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// 200 while the process serves and no reconcile has outlived its deadline; 503 naming the
/// oldest one otherwise, so the kubelet restarts a wedged operator.
async fn healthz_handler(State(state): State<ServerState>) -> impl IntoResponse {
    match state.metrics.wedged() {
        None => (StatusCode::OK, "ok".to_string()),
        Some((key, age)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("wedged: the reconcile of {key} has run {}s", age.as_secs()),
        ),
    }
}

async fn readyz_handler(State(state): State<ServerState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `text` has exactly this line (a substring could match a longer series).
    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn metrics_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Metrics>();
    }

    #[test]
    fn renders_every_family_with_help_type_and_labels() {
        let m = Metrics::new();
        m.reconciled();
        m.reconciled();
        m.reconcile_error("AwsThrottled");
        m.drift_detected("team-a", "checkout");
        m.applied("team-a", "checkout");
        m.restored("team-a", "checkout", "Write", 2);
        m.set_ingesters("trail", 2);
        m.set_restores_pending("team-a", "checkout", 3);
        m.aws_write("PutRolePolicy");
        m.aws_write("PutRolePolicy");
        m.trail_files_read(3);
        m.signal("refused");
        m.fact_store_errors(1);
        m.set_unused_actions("team-a", "checkout", "checkout-api", 42);
        m.scan_duration(1.5);
        m.reconcile_duration(0.2);
        m.set_leader(true);
        let text = m.render();

        for (name, kind) in [
            ("iam_tailor_reconciles", "counter"),
            ("iam_tailor_reconcile_errors", "counter"),
            ("iam_tailor_drift_detections", "counter"),
            ("iam_tailor_policy_applies", "counter"),
            ("iam_tailor_permissions_restored", "counter"),
            ("iam_tailor_restores_pending", "gauge"),
            ("iam_tailor_aws_writes", "counter"),
            ("iam_tailor_trail_files_read", "counter"),
            ("iam_tailor_signals", "counter"),
            ("iam_tailor_fact_store_errors", "counter"),
            ("iam_tailor_ingesters", "gauge"),
            ("iam_tailor_unused_actions", "gauge"),
            ("iam_tailor_scan_duration_seconds", "histogram"),
            ("iam_tailor_reconcile_duration_seconds", "histogram"),
            ("iam_tailor_leader", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}:\n{text}"
            );
            assert!(
                has_line(&text, &format!("# TYPE {name} {kind}")),
                "no TYPE for {name}:\n{text}"
            );
        }
        for line in [
            "iam_tailor_reconciles_total 2",
            r#"iam_tailor_reconcile_errors_total{reason="AwsThrottled"} 1"#,
            r#"iam_tailor_drift_detections_total{namespace="team-a",name="checkout"} 1"#,
            r#"iam_tailor_policy_applies_total{namespace="team-a",name="checkout"} 1"#,
            r#"iam_tailor_aws_writes_total{operation="PutRolePolicy"} 2"#,
            r#"iam_tailor_permissions_restored_total{namespace="team-a",name="checkout",access_level="Write"} 2"#,
            r#"iam_tailor_ingesters{kind="trail"} 2"#,
            r#"iam_tailor_unused_actions{namespace="team-a",name="checkout",role="checkout-api"} 42"#,
            "iam_tailor_leader 1",
            "# EOF",
        ] {
            assert!(has_line(&text, line), "missing {line:?}:\n{text}");
        }
    }

    #[test]
    fn histograms_count_and_sum_observations() {
        let m = Metrics::new();
        m.scan_duration(0.5);
        m.scan_duration(2.0);
        m.scan_duration(400.0);
        m.reconcile_duration(0.25);
        let text = m.render();
        for line in [
            "iam_tailor_scan_duration_seconds_count 3",
            "iam_tailor_scan_duration_seconds_sum 402.5",
            r#"iam_tailor_scan_duration_seconds_bucket{le="0.1"} 0"#,
            r#"iam_tailor_scan_duration_seconds_bucket{le="0.5"} 1"#,
            r#"iam_tailor_scan_duration_seconds_bucket{le="300.0"} 2"#,
            r#"iam_tailor_scan_duration_seconds_bucket{le="+Inf"} 3"#,
            "iam_tailor_reconcile_duration_seconds_count 1",
            "iam_tailor_reconcile_duration_seconds_sum 0.25",
        ] {
            assert!(has_line(&text, line), "missing {line:?}:\n{text}");
        }
    }

    #[test]
    fn forget_removes_only_that_resources_series() {
        let m = Metrics::new();
        for name in ["checkout", "billing"] {
            m.drift_detected("team-a", name);
            m.applied("team-a", name);
            m.set_unused_actions("team-a", name, &format!("{name}-role"), 3);
            m.restored("team-a", name, "Permissions management", 1);
            m.restored("team-a", name, "Unknown", 1);
        }
        m.aws_write("AttachRolePolicy");
        m.forget("team-a", "checkout");
        let text = m.render();
        assert!(!text.contains(r#"name="checkout""#), "{text}");
        for line in [
            r#"iam_tailor_drift_detections_total{namespace="team-a",name="billing"} 1"#,
            r#"iam_tailor_policy_applies_total{namespace="team-a",name="billing"} 1"#,
            r#"iam_tailor_unused_actions{namespace="team-a",name="billing",role="billing-role"} 3"#,
            r#"iam_tailor_permissions_restored_total{namespace="team-a",name="billing",access_level="Unknown"} 1"#,
            r#"iam_tailor_aws_writes_total{operation="AttachRolePolicy"} 1"#,
        ] {
            assert!(has_line(&text, line), "missing {line:?}:\n{text}");
        }
        // Forgetting twice, or a resource never seen, is harmless.
        m.forget("team-a", "checkout");
        m.forget("team-b", "never");
    }

    #[test]
    fn a_new_role_replaces_the_old_roles_series() {
        let m = Metrics::new();
        m.set_unused_actions("team-a", "checkout", "old-role", 7);
        m.set_unused_actions("team-a", "checkout", "new-role", 5);
        m.set_unused_actions("team-a", "checkout", "new-role", 4);
        let text = m.render();
        assert!(!text.contains("old-role"), "{text}");
        assert!(has_line(
            &text,
            r#"iam_tailor_unused_actions{namespace="team-a",name="checkout",role="new-role"} 4"#
        ));
        m.forget("team-a", "checkout");
        assert!(!m.render().contains("iam_tailor_unused_actions"));
    }

    #[test]
    fn leader_gauge_follows_the_lease() {
        let m = Metrics::new();
        m.set_leader(true);
        m.set_leader(false);
        assert!(has_line(&m.render(), "iam_tailor_leader 0"));
    }
}
