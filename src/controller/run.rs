//! Running the operator: telemetry server, leader election, then the kube-runtime controller.

use super::crd::{ClusterTrail, LeastPrivilegeRole};
use super::leader::{LeaderElector, LeaseConfig};
use super::reconcile::{Aws, Context, error_policy, reconcile};
use super::signals;
use super::spec::Limits;
use super::telemetry::{self, Metrics};
use crate::aws::sqs::SignalQueue;
use anyhow::Context as _;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How the operator runs; the `controller` subcommand's flags.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch one namespace; all when `None`.
    pub namespace: Option<String>,
    pub metrics_addr: SocketAddr,
    /// IAM calls per second across all resources (0: unlimited).
    pub aws_rate_limit: u32,
    /// How long one attempt of an AWS call may take.
    pub aws_attempt_timeout: Duration,
    /// Seconds between polls of a running Access Analyzer generation job.
    pub access_analyzer_poll_seconds: u64,
    /// Resources reconciled at once.
    pub concurrency: u16,
    /// Wait for a Lease before reconciling, so only one replica writes.
    pub leader_election: bool,
    /// The Lease's namespace (default: the watched namespace, else the pod's, else default).
    pub lease_namespace: Option<String>,
    /// Where backups live: the operator's own namespace.
    pub backup_namespace: Option<String>,
    pub lease_name: String,
    /// Renewed every third of it.
    pub lease_duration: Duration,
    /// This process in the Lease and in Events: the pod name, else the host name.
    pub identity: String,
    /// What every resource is allowed, whatever its spec says.
    pub limits: Limits,
    /// The SQS queue of EventBridge's CloudTrail events, long-polled by the leader.
    pub signal_queue_url: Option<String>,
    /// At most one signal-triggered reconcile per resource per this long.
    pub signal_debounce: Duration,
    /// Permit nothing while the tenancy ConfigMap is missing (the chart always renders it).
    pub require_tenancy: bool,
}

/// Runs until a shutdown signal (SIGTERM, Ctrl-C) or the loss of leadership (an error, so
/// the process exits non-zero and Kubernetes restarts it as a standby).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)")?;
    let backup_namespace = settings
        .backup_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".to_string());
    if settings.namespace.as_ref() == Some(&backup_namespace) {
        anyhow::bail!(
            "--namespace {backup_namespace} is also the backup namespace: whoever may write \
             LeastPrivilegeRoles there could write the roles' backups and the tenancy \
             configuration; watch another namespace"
        );
    }
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(settings.metrics_addr)
        .await
        .with_context(|| format!("--metrics-addr {}", settings.metrics_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let server = tokio::spawn(telemetry::serve(
        listener,
        metrics.clone(),
        ready.clone(),
        shutdown_signal(),
    ));

    let roles: Api<LeastPrivilegeRole> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    roles
        .list(&ListParams::default().limit(1))
        .await
        .context("listing LeastPrivilegeRoles failed; is the CRD installed (kubectl apply -f crds/) and may this identity list them?")?;
    let trails: Api<ClusterTrail> = Api::all(client.clone());
    trails
        .list(&ListParams::default().limit(1))
        .await
        .context("listing ClusterTrails failed; is the CRD installed (kubectl apply -f crds/) and may this identity list them?")?;
    let aws = Aws::new(
        crate::aws::with_timeouts(
            &crate::aws::sdk_config(None).await,
            settings.aws_attempt_timeout,
        ),
        settings.aws_rate_limit,
        settings.access_analyzer_poll_seconds,
    );
    ready.store(true, Ordering::SeqCst);

    let leadership = if settings.leader_election {
        let namespace = settings
            .lease_namespace
            .clone()
            .or_else(|| settings.namespace.clone())
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_string());
        let elector = LeaderElector::new(
            client.clone(),
            LeaseConfig {
                namespace,
                name: settings.lease_name.clone(),
                identity: settings.identity.clone(),
                lease_duration: settings.lease_duration,
                renew_every: settings.lease_duration / 3,
            },
        );
        tracing::info!(identity = settings.identity, "waiting for the leader Lease");
        let leadership = tokio::select! {
            leadership = elector.acquire() => leadership,
            () = shutdown_signal() => return Ok(()),
        };
        tracing::info!(identity = settings.identity, "leading");
        Some(leadership)
    } else {
        None
    };
    metrics.set_leader(true);

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "iam-tailor".to_string(),
            instance: Some(settings.identity.clone()),
        },
    );
    let status_key = crate::controller::reconcile::status_key(&client, &backup_namespace).await?;
    let controller = Controller::new(roles, watcher::Config::default().any_semantic());
    let context = Arc::new(
        Context::new(
            client,
            recorder,
            metrics.clone(),
            aws,
            backup_namespace,
            settings.limits,
            leadership.as_ref().map(|l| l.guard()),
        )
        .with_roles(controller.store())
        .requiring_tenancy(settings.require_tenancy)
        .sealing_with(status_key),
    );
    // A ClusterTrail created, changed or deleted: the resources naming it look again.
    let store = controller.store();
    let mut controller = controller;
    if let Some(url) = &settings.signal_queue_url {
        let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
        let queue = SignalQueue::new(&crate::aws::sdk_config(None).await, url);
        tokio::spawn(signals::consume(
            queue,
            controller.store(),
            context.refusals.clone(),
            wake,
            metrics.clone(),
            settings.signal_debounce,
        ));
        let woken = futures::stream::unfold(woken, |mut woken| async move {
            woken.recv().await.map(|object| (object, woken))
        });
        controller = controller.reconcile_on(woken);
        tracing::info!(queue = url, "reading signals");
    }
    let controller = controller
        .watches(trails, watcher::Config::default(), move |trail| {
            let name = trail.name_any();
            (store.state().into_iter())
                .filter(|lpr| lpr.spec.cloud_trail.cluster_trail.as_deref() == Some(&name))
                .map(|lpr| ObjectRef::from_obj(&*lpr))
                .collect::<Vec<_>>()
        })
        .with_config(controller::Config::default().concurrency(settings.concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(name = object.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        });
    let outcome = match leadership {
        Some(mut leadership) => {
            let lost = tokio::select! {
                () = controller => false,
                () = leadership.lost() => true,
            };
            if lost {
                metrics.set_leader(false);
                anyhow::bail!("lost the leader Lease; exiting so a standby takes over");
            }
            leadership.release().await;
            Ok(())
        }
        None => {
            controller.await;
            Ok(())
        }
    };
    server.abort();
    outcome
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
