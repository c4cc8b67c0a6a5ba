//! `iam-tailor controller`: run the operator.

use crate::controller::run::{Settings, run as run_operator};
use crate::controller::spec::{DRIFT_MAX_SECS, Limits};
use crate::time::parse_duration;
use std::net::SocketAddr;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Watch LeastPrivilegeRoles in this namespace only (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Where to serve /metrics, /healthz and /readyz (port 0: a free port the OS picks as it
    /// binds; the address is logged).
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// IAM calls per second across all resources, on top of the SDK's retries (0: no limit);
    /// the resources of one namespace may use at most half of it together.
    #[arg(long, default_value_t = 10)]
    aws_rate_limit: u32,
    /// How long one attempt of an AWS call may take before it is abandoned (and retried, up
    /// to three attempts): an endpoint that never answers must not hold a reconcile.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    aws_timeout_seconds: u64,
    /// Resources reconciled at once.
    #[arg(long, default_value_t = 4)]
    concurrency: u16,
    /// Seconds between polls of a running Access Analyzer policy generation job.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    access_analyzer_poll_seconds: u64,
    /// Reconcile only while holding a coordination.k8s.io/v1 Lease (for more than one replica).
    #[arg(long)]
    leader_election: bool,
    /// The Lease's namespace (default: --namespace, else $POD_NAMESPACE, else default).
    #[arg(long)]
    lease_namespace: Option<String>,
    #[arg(long, default_value = "iam-tailor")]
    lease_name: String,
    /// Where the roles' backups are kept: the operator's own namespace, which tenants cannot
    /// write (default: $POD_NAMESPACE, else default).
    #[arg(long)]
    backup_namespace: Option<String>,
    /// How long a Lease holds without renewal: how soon a standby takes over from a leader
    /// that died without releasing it. Renewed every third of it.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_duration_seconds: u64,
    /// The shortest `drift.interval` a resource may ask for (`30s`, `1m`, `1h`): each drift
    /// check spends IAM calls from the budget all resources share.
    #[arg(long, default_value = "1m", value_parser = drift_floor)]
    min_drift_interval: std::time::Duration,
    /// Managed policies one role may have attached: IAM's quota in the roles' accounts (10
    /// unless raised, at most 20). No plan attaches more at any point.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=20))]
    managed_policies_per_role: u16,
    /// The SQS queue EventBridge fills with the managed roles' CloudTrail events
    /// (examples/aws/signals.cfn.yaml): an IAM write to a role wakes its resources at once, a
    /// refused call feeds the restore before its trail file arrives. Read by the leader.
    #[arg(long)]
    signal_queue_url: Option<String>,
    /// At most one signal-triggered reconcile per resource per this many seconds (0 to
    /// 3600): a workload looping on a refused call costs one look per interval; the last
    /// signal of a burst wakes the resource at the interval's end.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    signal_debounce_seconds: u64,
    /// Permit nothing while the ConfigMap iam-tailor-tenancy is missing from the backup
    /// namespace (the chart always renders it, `tagsOnly: true` when given no rules): a
    /// configuration lost in an upgrade or a namespace change fails closed, not to tags only.
    #[arg(long)]
    require_tenancy: bool,
    /// Log lines as text or JSON (one object per line). RUST_LOG sets the level (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// The pod name when Kubernetes provides it, else the host name; with the process id, so two
/// processes on one host are two identities.
fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "iam-tailor".to_string());
    format!("{host}-{}", std::process::id())
}

/// Each runtime worker's stack.
const WORKER_STACK_BYTES: usize = 8 << 20;

/// `--min-drift-interval`: a duration from 1s to a day.
fn drift_floor(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text, "smhd") {
        Some(secs) if secs <= DRIFT_MAX_SECS => Ok(std::time::Duration::from_secs(secs)),
        _ => Err(format!(
            "{text:?} is not a duration from 1s to 1d (30s, 5m, 1h)"
        )),
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    let settings = Settings {
        namespace: args.namespace,
        metrics_addr: args.metrics_addr,
        aws_rate_limit: args.aws_rate_limit,
        access_analyzer_poll_seconds: args.access_analyzer_poll_seconds,
        concurrency: args.concurrency.max(1),
        leader_election: args.leader_election,
        lease_namespace: args.lease_namespace,
        backup_namespace: args.backup_namespace,
        lease_name: args.lease_name,
        lease_duration: std::time::Duration::from_secs(args.lease_duration_seconds),
        identity: identity(),
        aws_attempt_timeout: std::time::Duration::from_secs(args.aws_timeout_seconds),
        limits: Limits {
            min_drift_interval: args.min_drift_interval,
            managed_policies_per_role: usize::from(args.managed_policies_per_role),
        },
        signal_queue_url: args.signal_queue_url.filter(|u| !u.is_empty()),
        signal_debounce: std::time::Duration::from_secs(args.signal_debounce_seconds),
        require_tenancy: args.require_tenancy,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // The prover and the policy parser recurse with the input's depth; tokio's 2 MiB
        // default is too tight for the largest documents IAM allows.
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()?;
    runtime.block_on(run_operator(settings))?;
    Ok(0)
}
