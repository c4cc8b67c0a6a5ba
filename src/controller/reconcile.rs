//! The shell around [`plan`]: observe (Kubernetes and AWS reads) → [`plan`] → apply the
//! operations in order, stopping at the first failure → write the status by server-side apply
//! → record Events. Everything that decides lives in `plan`; the shell only moves data, one
//! stage per file: `observe` and `analyze` (reads), `apply` (writes), `status`; this file
//! runs them in order for the finalizer's Apply and Cleanup.

mod analyze;
mod apply;
mod context;
mod observe;
mod status;

pub use context::{Aws, Context};
pub use status::status_key;

use super::crd::{LeastPrivilegeRole, LeastPrivilegeRoleStatus, Mode};
use super::plan::{self, EventType, Observed, PlannedEvent};
use super::spec::{NO_CLUSTER_TRAIL, Source, validate};
use crate::aws::access_analyzer::AnalyzerError;
use crate::aws::athena::AthenaError;
use crate::aws::iam::IamError;
use crate::generate::GenerateError;
use crate::role::RoleState;
use crate::sources::athena::AthenaScanError;
use crate::sources::trail::TrailError;
use crate::time::{Instant, rfc3339};
use analyze::{Gathered, Turn};
use apply::apply_plan;
use futures::FutureExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as Finalizer, finalizer};
use status::{publish, write_status};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// The one field manager for everything iam-tailor writes with server-side apply.
pub const FIELD_MANAGER: &str = "iam-tailor";
/// Held while iam-tailor may still have to put a role back (deletionPolicy: Restore).
pub const FINALIZER: &str = "iamtailor.dev/cleanup";
/// The backup ConfigMap's key holding the [`BackupSnapshot`] as JSON.
pub const BACKUP_KEY: &str = "backup.json";
/// A reconcile still running after this is abandoned and retried. Every AWS call has its own
/// timeout, so this bounds only their sum (a long trail scan, many slow calls); an apply cut
/// short is safe, as the next plan starts from the role as it then is.
const RECONCILE_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// Retry for failures that need someone to act (permissions, a broken backup).
const PERMANENT_RETRY: Duration = Duration::from_secs(600);

/// A reconcile that failed, by stage; [`Error::metric_label`] names the stage in metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the role: {0}")]
    ReadRole(#[source] IamError),
    #[error("reading CloudTrail: {0}")]
    Trail(#[source] TrailError),
    #[error("asking Athena: {0}")]
    Athena(#[source] AthenaScanError),
    #[error("Access Analyzer: {0}")]
    Analyzer(#[source] AnalyzerError),
    #[error("generating the policy: {0}")]
    Generate(#[source] GenerateError),
    #[error("{0}")]
    Apply(#[source] IamError),
    #[error("backup ConfigMap {name}: {reason}")]
    Backup { name: String, reason: String },
    #[error("{0}")]
    Principal(String),
    #[error("deletion waits: {0}")]
    RestoreBlocked(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    #[error("no longer certain to hold the leader Lease: not writing")]
    NotLeading,
    #[error("the reconcile took longer than {}s and was abandoned", RECONCILE_DEADLINE.as_secs())]
    Deadline,
    /// A bug met on this resource's input: it is this resource's failure, not the process's.
    #[error("internal error (a bug; please report it): {0}")]
    Panic(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::ReadRole(_) => "read_role",
            Error::Trail(_) => "cloudtrail",
            Error::Athena(_) => "athena",
            Error::Analyzer(_) => "access_analyzer",
            Error::Generate(_) => "generate",
            Error::Apply(_) => "apply",
            Error::Principal(_) => "principal",
            Error::Backup { .. } => "backup",
            Error::RestoreBlocked(_) => "restore_blocked",
            Error::Kube(_) => "kubernetes",
            Error::Panic(_) => "panic",
            Error::Deadline => "deadline",
            Error::NotLeading => "not_leading",
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_label()
                }
                _ => "finalizer",
            },
        }
    }

    /// The condition reason written for this failure.
    fn reason(&self) -> &'static str {
        match self {
            Error::ReadRole(e) | Error::Apply(e) if matches!(e, IamError::Throttled { .. }) => {
                "Throttled"
            }
            Error::ReadRole(_) => "RoleReadFailed",
            Error::Trail(TrailError::S3(e)) if e.is_permanent() => "CloudTrailAccessFailed",
            Error::Trail(_) => "CloudTrailReadFailed",
            Error::Athena(_) => "AthenaQueryFailed",
            Error::Analyzer(AnalyzerError::Throttled { .. }) => "Throttled",
            Error::Analyzer(_) => "AccessAnalyzerFailed",
            Error::Generate(_) | Error::Principal(_) => "GenerateFailed",
            Error::Apply(_) => "ApplyFailed",
            Error::Backup { .. } => "BackupFailed",
            Error::RestoreBlocked(_) => "RestoreBlocked",
            Error::Kube(_) | Error::Finalizer(_) => "KubernetesError",
            Error::Panic(_) => "InternalError",
            Error::Deadline => "DeadlineExceeded",
            Error::NotLeading => "NotLeading",
        }
    }

    /// The Warning Event recorded on the resource.
    fn event(&self) -> PlannedEvent {
        PlannedEvent {
            type_: EventType::Warning,
            reason: self.reason().to_string(),
            note: self.to_string(),
        }
    }

    /// Transient failures back off and retry; the rest wait for someone to act.
    fn is_retryable(&self) -> bool {
        match self {
            Error::ReadRole(e) | Error::Apply(e) => e.is_retryable(),
            Error::Analyzer(e) => e.is_retryable(),
            // Listing and downloads already had the SDK's retries; a missing bucket or a
            // denied read needs a person.
            Error::Trail(TrailError::S3(e)) => !e.is_permanent(),
            // A failed call or a slow query may pass; a failed query or rows of another
            // shape need the table fixed.
            Error::Athena(AthenaScanError::Athena(
                AthenaError::Call { .. } | AthenaError::Timeout { .. },
            )) => true,
            Error::Athena(_) => false,
            Error::Trail(TrailError::Scan(_) | TrailError::Panicked { .. })
            | Error::Generate(_)
            | Error::Principal(_) => false,
            // The same input would meet the same bug.
            Error::Backup { .. } | Error::RestoreBlocked(_) | Error::Panic(_) => false,
            Error::Kube(_) | Error::Deadline | Error::NotLeading => true,
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.is_retryable()
                }
                _ => true,
            },
        }
    }
}

fn key(lpr: &LeastPrivilegeRole) -> (String, String) {
    (lpr.namespace().unwrap_or_default(), lpr.name_any())
}

/// kube-runtime's reconcile entry point: the finalizer decides between apply and cleanup.
pub async fn reconcile(lpr: Arc<LeastPrivilegeRole>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    ctx.metrics.reconciled();
    let namespace = lpr.namespace().unwrap_or_default();
    let api: Api<LeastPrivilegeRole> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = key(&lpr);
    let _in_flight = ctx.metrics.in_flight(format!("{}/{}", key.0, key.1));
    let result = finalizer(&api, FINALIZER, lpr, |event| async {
        match event {
            // Boxed: the stages' futures are large, and a worker thread's stack is not.
            Finalizer::Apply(lpr) => Box::pin(apply(&lpr, &ctx)).await,
            Finalizer::Cleanup(lpr) => {
                let bounded =
                    tokio::time::timeout(RECONCILE_DEADLINE, Box::pin(cleanup(&lpr, &ctx)));
                let result =
                    contained(async { bounded.await.unwrap_or(Err(Error::Deadline)) }).await;
                if let Err(error @ (Error::Panic(_) | Error::Deadline)) = &result {
                    publish(&ctx, &lpr, &error.event()).await;
                }
                result
            }
        }
    });
    // The last resort: whatever panicked outside the stages is still this resource's failure.
    let result = contained(async { result.await.map_err(|e| Error::Finalizer(Box::new(e))) }).await;
    ctx.metrics
        .reconcile_duration(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures.lock().expect("not poisoned").remove(&key);
    }
    result
}

/// Runs `stage`, turning a panic in it into [`Error::Panic`]: one resource's bad input must not
/// end the process that serves all of them.
async fn contained<T>(stage: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match AssertUnwindSafe(stage).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(Error::Panic(crate::panic::message(panic.as_ref()))),
    }
}

/// Transient failures back off exponentially (5 s … 5 min); the rest retry slowly, since
/// what fixes them (permissions, a bucket policy) is not a change to the resource. Either
/// way with [`jittered`] delays, so resources that failed together retry apart.
pub fn error_policy(lpr: Arc<LeastPrivilegeRole>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(error.metric_label());
    tracing::warn!(
        namespace = lpr.namespace().unwrap_or_default(),
        name = lpr.name_any(),
        error = %error,
        "reconcile failed"
    );
    let key = key(&lpr);
    if !error.is_retryable() {
        return Action::requeue(jittered(PERMANENT_RETRY, &key, 0));
    }
    let mut failures = ctx.failures.lock().expect("not poisoned");
    let count = failures.entry(key.clone()).or_insert(0);
    *count = (*count + 1).min(10);
    let base = Duration::from_secs((5u64 << (*count - 1)).min(300));
    Action::requeue(jittered(base, &key, *count))
}

/// At most this share of a retry delay is added as jitter.
const JITTER_PERCENT: u64 = 25;

/// `base` plus up to [`JITTER_PERCENT`] of it, drawn from the resource and its failure count:
/// the same resource waits the same each time (a test can tell), while 2,000 resources that
/// failed on one throttled moment spread over a quarter of the delay instead of retrying in
/// lockstep.
fn jittered(base: Duration, key: &(String, String), failures: u32) -> Duration {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    (key, failures).hash(&mut hasher);
    let permille = hasher.finish() % 1000;
    base + base.mul_f64((JITTER_PERCENT * permille) as f64 / 100_000.0)
}

/// What of the resource's status the plan may believe ([`crate::controller::seal::believed`]);
/// a status the operator did not seal is said once, as a Warning.
async fn believed_status(lpr: &LeastPrivilegeRole, ctx: &Context) -> LeastPrivilegeRoleStatus {
    let uid = lpr.uid().unwrap_or_default();
    let believed = crate::controller::seal::believed(&ctx.status_key, &uid, lpr.status.as_ref());
    if !believed.sealed {
        publish(ctx, lpr, &plan::status_not_sealed()).await;
    }
    believed.status
}

/// The time now: RFC 3339 to the second (what the status shows) and as an [`Instant`].
fn now() -> (String, Instant) {
    let now = crate::time::now();
    (rfc3339(now), now)
}

/// The finalizer's Apply: a failure is written to the status and recorded as an Event.
async fn apply(lpr: &LeastPrivilegeRole, ctx: &Context) -> Result<Action, Error> {
    let previous = believed_status(lpr, ctx).await;
    let generation = lpr.metadata.generation.unwrap_or(0);
    let (now_text, now) = now();
    let stages = Box::pin(observe_plan_apply(
        lpr, ctx, &previous, generation, &now_text, now,
    ));
    let bounded = tokio::time::timeout(RECONCILE_DEADLINE, AssertUnwindSafe(stages).catch_unwind());
    let outcome = match bounded.await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => Err(Failure::from(Error::Panic(crate::panic::message(
            panic.as_ref(),
        )))),
        Err(_) => Err(Failure::from(Error::Deadline)),
    };
    match outcome {
        Ok(action) => Ok(action),
        Err(Failure { error, status }) => {
            let status = status.unwrap_or_else(|| {
                plan::failed(
                    &previous,
                    generation,
                    &now_text,
                    error.reason(),
                    &error.to_string(),
                )
            });
            if let Err(e) = write_status(lpr, ctx, &status).await {
                tracing::warn!(error = %e, "writing the failure status failed");
            }
            publish(ctx, lpr, &error.event()).await;
            Err(error)
        }
    }
}

/// A failed reconcile and, when the plan got as far as writing, the status that says so.
struct Failure {
    error: Error,
    status: Option<LeastPrivilegeRoleStatus>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error,
            status: None,
        }
    }
}

/// Observe → plan → apply → status for a resource that is not being deleted.
async fn observe_plan_apply(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    previous: &LeastPrivilegeRoleStatus,
    generation: i64,
    now_text: &str,
    now: Instant,
) -> Result<Action, Failure> {
    let mut observed = Observed {
        generation,
        now: now_text.to_string(),
        previous: previous.clone(),
        role: RoleState::NotFound,
        uid: lpr.uid().unwrap_or_default(),
        backup: None,
        original: None,
        backup_namespace: ctx.backup_namespace.clone(),
        analysis: None,
        analyzer: None,
        analyzer_poll_secs: ctx.aws.analyzer_poll_secs(),
        limits: ctx.limits,
        trusted_accounts: Vec::new(),
        cluster_trail: observe::read_cluster_trail(ctx, lpr).await?,
        rollback: None,
        after_apply: None,
        original_aws_managed: None,
        customer_policies: Default::default(),
        declared_boundary: None,
    };
    let Ok(spec) = validate(&lpr.spec, &ctx.limits, &observed.cluster_trail) else {
        // The plan reports the spec's problems; nothing is read until they are fixed.
        let plan = plan::plan(&lpr.spec, &observed);
        return apply_plan(lpr, ctx, previous, plan, None, now_text).await;
    };
    let namespace = lpr.namespace().unwrap_or_default();
    let tenancy = observe::read_tenancy(ctx).await?;
    observed.trusted_accounts = tenancy.trusted_accounts().to_vec();
    let admitted = match tenancy.trail(&namespace, spec.trail_read()) {
        Ok(()) => observe::admit(ctx, lpr, &tenancy).await?,
        Err(reason) => Err(reason),
    };
    if let Err(reason) = admitted {
        // Nothing is asked of AWS for a resource the tenancy rules refuse.
        observed.role = RoleState::NotPermitted {
            arn: (spec.assume_role_arn.clone()).unwrap_or_else(|| spec.role.clone()),
            reason,
        };
        let plan = plan::plan(&lpr.spec, &observed);
        return apply_plan(lpr, ctx, previous, plan, None, now_text).await;
    }
    let iam = ctx.aws.iam(lpr).await;
    let enforce = spec.mode == Mode::Enforce;
    observed.role =
        observe::read_role_state(&iam, &spec.role, &namespace, &tenancy, enforce).await?;
    observed.backup = observe::read_backup(ctx, &observed.uid).await?;
    if let RoleState::Found(live) = &observed.role
        && observed.backup.is_none()
        && previous.backup.is_none()
    {
        observed.original = observe::read_original(ctx, &live.role_id).await?;
    }
    if let RoleState::Found(live) = &observed.role
        && plan::not_ours(previous, live, &observed.uid).is_none()
    {
        if plan::rollback_wanted(&spec).is_some() {
            observed.rollback = Some(observe::read_rollback(&iam, live).await?);
        }
        if let Some(arn) = plan::declared_boundary_to_read(&spec, live) {
            observed.declared_boundary = Some(observe::read_declared_boundary(&iam, &arn).await?);
        }
        if let (Some(since), Source::Trail(trail)) =
            (plan::restore_since(&spec, previous, now), spec.source)
        {
            let asker = analyze::Asker {
                lpr,
                ctx,
                spec: &spec,
                live,
                now,
            };
            let mut calls = analyze::calls_since(&asker, trail, since).await?;
            // Refusals from the signal queue, before their trail files arrive.
            if let Some(refused) = ctx.refusals.of(&live.arn) {
                calls.merge(refused);
            }
            observed.after_apply = Some(calls);
        }
        if plan::original_needed(&spec, previous, observed.after_apply.as_ref()) {
            let backup = observed.backup.as_ref();
            observed.original_aws_managed = Some(
                observe::read_original_aws_managed(&iam, &ctx.managed_documents, backup).await?,
            );
        }
    }
    if let RoleState::Found(live) = &observed.role
        && plan::not_ours(previous, live, &observed.uid).is_none()
        && plan::analysis_due(&spec, previous, now)
    {
        let started = std::time::Instant::now();
        let asker = analyze::Asker {
            lpr,
            ctx,
            spec: &spec,
            live,
            now,
        };
        let gathered = match spec.source {
            Source::Trail(trail) => {
                let since = plan::shadow_since(&spec, previous);
                let (usage, days_without_files, shadow_usage) =
                    analyze::scan(&asker, trail, since).await?;
                Gathered {
                    usage,
                    unresolved: Vec::new(),
                    days_without_files,
                    shadow_usage,
                }
            }
            Source::Athena(athena) => {
                // An Athena source is only ever a ClusterTrail's.
                let trail = observed.cluster_trail.found.clone().unwrap_or_default();
                let since = plan::shadow_since(&spec, previous);
                let asked = analyze::ask_athena(&asker, athena, &trail, since).await?;
                match asked {
                    Ok((usage, shadow_usage)) => Gathered {
                        usage,
                        unresolved: Vec::new(),
                        // Athena cannot tell a day without files from a day without calls.
                        days_without_files: Vec::new(),
                        shadow_usage,
                    },
                    Err(running) => {
                        observed.analyzer = Some(running);
                        let plan = plan::plan(&lpr.spec, &observed);
                        return apply_plan(lpr, ctx, previous, plan, Some((&iam, live)), now_text)
                            .await;
                    }
                }
            }
            Source::AccessAnalyzer { generation, trail } => {
                let turn = analyze::analyzer_turn(lpr, ctx, &spec, generation, live, now_text, now)
                    .await?;
                match turn {
                    Turn::Pending(state) => {
                        observed.analyzer = Some(state);
                        let plan = plan::plan(&lpr.spec, &observed);
                        return apply_plan(lpr, ctx, previous, plan, Some((&iam, live)), now_text)
                            .await;
                    }
                    Turn::Policies(policies) => {
                        analyze::analyzer_usage(&asker, trail, &policies).await?
                    }
                }
            }
        };
        let mut result = analyze::analyze(&spec, &iam, live, now_text, now, gathered).await?;
        if spec.validation.access_analyzer
            && spec.mode != Mode::Observe
            && !result.generated.policies.is_empty()
        {
            result.validation =
                Some(analyze::check_proposal(ctx, lpr, live, &result.generated.policies).await?);
        }
        ctx.metrics.scan_duration(started.elapsed().as_secs_f64());
        let key = key(lpr);
        ctx.metrics
            .set_unused_actions(&key.0, &key.1, &live.name, result.analysis.unused_actions);
        observed.analysis = Some(result);
    }
    let plan = plan::plan(&lpr.spec, &observed);
    let role = match &observed.role {
        RoleState::Found(live) => Some((&iam, live)),
        RoleState::NotFound | RoleState::NotPermitted { .. } => None,
    };
    apply_plan(lpr, ctx, previous, plan, role, now_text).await
}

/// The finalizer's cleanup: Retain lets go; Restore puts the backup back first.
async fn cleanup(lpr: &LeastPrivilegeRole, ctx: &Context) -> Result<Action, Error> {
    let spec = &lpr.spec;
    let previous = believed_status(lpr, ctx).await;
    let (now_text, _) = now();
    let mut observed = Observed {
        generation: lpr.metadata.generation.unwrap_or(0),
        now: now_text,
        previous: previous.clone(),
        role: RoleState::NotFound,
        uid: lpr.uid().unwrap_or_default(),
        backup: None,
        original: None,
        backup_namespace: ctx.backup_namespace.clone(),
        analysis: None,
        analyzer: None,
        analyzer_poll_secs: ctx.aws.analyzer_poll_secs(),
        limits: ctx.limits,
        trusted_accounts: Vec::new(),
        cluster_trail: Default::default(),
        rollback: None,
        after_apply: None,
        original_aws_managed: None,
        customer_policies: Default::default(),
        declared_boundary: None,
    };
    let restoring = spec.deletion_policy == super::crd::DeletionPolicy::Restore;
    // Retain too: the backup is handed over as the role's kept original.
    observed.backup = observe::read_backup(ctx, &observed.uid).await?;
    // The role this resource was pinned to is the one to put back (and to release), even if
    // the spec has been edited since (or broken); the plan checks the backup was taken from it.
    let role = match &previous.role {
        Some(pin) => pin.arn.rsplit('/').next().map(str::to_string),
        None => validate(spec, &ctx.limits, &NO_CLUSTER_TRAIL)
            .ok()
            .map(|spec| spec.role),
    };
    let tenancy = observe::read_tenancy(ctx).await?;
    let admitted = observe::admit(ctx, lpr, &tenancy).await?;
    if let (Some(role), Err(reason)) = (&role, &admitted) {
        observed.role = RoleState::NotPermitted {
            arn: role.clone(),
            reason: reason.clone(),
        };
    }
    let mut iam = None;
    if let (Some(role), Ok(())) = (role, &admitted) {
        let client = ctx.aws.iam(lpr).await;
        let namespace = lpr.namespace().unwrap_or_default();
        // Restoring writes, so it needs what Enforce needs.
        let state = observe::read_role_state(&client, &role, &namespace, &tenancy, restoring);
        observed.role = match state.await {
            Ok(state) => state,
            // Retain only releases the claim: an unreadable role must not hold up deletion.
            Err(error) if !restoring => {
                tracing::warn!(%error, "the role's claim is left in place");
                RoleState::NotFound
            }
            Err(error) => return Err(error),
        };
        if let RoleState::Found(live) = &observed.role {
            observed.original = observe::read_original(ctx, &live.role_id).await?;
            if restoring && let Some(Ok(backup)) = observed.backup.as_ref().map(|b| &b.snapshot) {
                observed.customer_policies =
                    observe::read_customer_policies(&client, live, backup).await?;
            }
        }
        iam = Some(client);
    }
    let plan = match plan::plan_cleanup(spec, &observed) {
        Ok(plan) => plan,
        Err(reason) => {
            let error = Error::RestoreBlocked(reason);
            publish(ctx, lpr, &error.event()).await;
            return Err(error);
        }
    };
    for event in &plan.events {
        publish(ctx, lpr, event).await;
    }
    if let (Some(iam), RoleState::Found(live)) = (&iam, &observed.role) {
        for operation in &plan.operations {
            apply::perform(lpr, ctx, iam, live, operation).await?;
            publish(ctx, lpr, &plan::operation_event(operation)).await;
        }
    }
    for event in &plan.completion {
        publish(ctx, lpr, event).await;
    }
    let key = key(lpr);
    ctx.metrics.forget(&key.0, &key.1);
    ctx.forget_ingesters(&lpr.uid().unwrap_or_default());
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_of_resources_that_failed_together_spread_over_a_quarter_of_the_delay() {
        let base = Duration::from_secs(40);
        let delays: Vec<Duration> = (0..2000)
            .map(|i| super::jittered(base, &("team".to_string(), format!("role-{i}")), 4))
            .collect();
        assert!(delays.iter().all(|d| *d >= base && *d < base * 5 / 4));
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*max - *min > Duration::from_secs(9), "{min:?} … {max:?}");
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 500, "{}", distinct.len());
        // One resource waits the same each time.
        let again = super::jittered(base, &("team".to_string(), "role-7".to_string()), 4);
        assert_eq!(again, delays[7]);
    }

    #[test]
    fn the_deadline_cuts_a_reconcile_before_healthz_calls_it_wedged() {
        assert!(RECONCILE_DEADLINE < crate::controller::telemetry::WEDGED_AFTER);
    }

    #[tokio::test]
    async fn a_panic_in_a_stage_is_that_resources_error_not_the_processs() {
        let panicked = contained(async {
            let record: Option<&str> = None;
            assert!(record.is_some(), "bad input {}", 7);
            Ok::<(), Error>(())
        })
        .await;
        match &panicked {
            Err(error @ Error::Panic(message)) => {
                assert_eq!(message, "bad input 7");
                assert_eq!(error.reason(), "InternalError");
                assert_eq!(error.metric_label(), "panic");
                assert!(!error.is_retryable(), "the same input meets the same bug");
            }
            other => panic!("{other:?}"),
        }
        let fine = contained(async { Ok::<u8, Error>(3) }).await;
        assert_eq!(fine.ok(), Some(3));
        let literal = contained(async {
            let parts: Vec<&str> = Vec::new();
            Ok::<&str, Error>(parts[0])
        })
        .await;
        assert!(
            literal
                .unwrap_err()
                .to_string()
                .starts_with("internal error (a bug; please report it): index out of bounds")
        );
    }
}
