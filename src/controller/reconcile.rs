//! The shell around [`plan`]: observe (Kubernetes and AWS reads) → [`plan`] → apply the
//! operations in order, stopping at the first failure → write the status by server-side apply
//! → record Events. Everything that decides lives in `plan`; this file only moves data.

use super::crd::{
    AccessAnalyzerSource, Analysis, CheckResult, GenerationJob, LastAccessedReport,
    LeastPrivilegeRole, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus, Mode, REPORT_LIMIT,
    Validation, ValidationFinding,
};
use super::plan::{
    self, AnalysisResult, EventType, Generation, Observed, Plan, PlannedEvent, Requeue,
};
use super::queue::AccountQueue;
use super::telemetry::Metrics;
use super::tenancy::{self, Tenancy};
use crate::aws::access_analyzer::{
    self, AccessAnalyzer, AnalyzerError, GenerationJob as JobState, TrailSource, Window,
};
use crate::aws::iam::{self, Iam, IamError};
use crate::aws::s3::{self, Day, S3Location, TrailError};
use crate::aws::{RateLimiter, Session, assume_role};
use crate::catalog::catalog;
use crate::cloudtrail::{PrincipalFilter, ScanOptions, Usage};
use crate::generate::analyzer::{Unresolved, from_generated};
use crate::generate::{
    GenerateError, GenerateOptions, Keep, LastAccessed, NotUsedSince, generate, not_recently_used,
    seen_not_in_window, services_seen_without_action_data,
};
use crate::policy::Policy;
use crate::policy::analysis::allowed_actions;
use crate::policy::lint::PolicyType;
use crate::policy::values::Instant;
use crate::role::{BackupSnapshot, CLAIM_TAG, LiveRole, Operation, RoleState};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType as KubeEventType, Recorder};
use kube::runtime::finalizer::{self, Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The one field manager for everything iam-tailor writes with server-side apply.
pub const FIELD_MANAGER: &str = "iam-tailor";
/// Held while iam-tailor may still have to put a role back (deletionPolicy: Restore).
pub const FINALIZER: &str = "iamtailor.dev/cleanup";
/// The backup ConfigMap's key holding the [`BackupSnapshot`] as JSON.
pub const BACKUP_KEY: &str = "backup.json";
/// How often, and how long, to wait for IAM's last-accessed report (seconds, usually).
const LAST_ACCESSED_POLL: Duration = Duration::from_millis(500);
const LAST_ACCESSED_TIMEOUT: Duration = Duration::from_secs(60);
/// Trail files downloaded at once per analysis.
const DOWNLOADS_IN_FLIGHT: usize = 8;
/// Retry for failures that need someone to act (permissions, a broken backup).
const PERMANENT_RETRY: Duration = Duration::from_secs(600);

/// A reconcile that failed, by stage; [`Error::metric_label`] names the stage in metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the role: {0}")]
    ReadRole(#[source] IamError),
    #[error("reading CloudTrail: {0}")]
    Trail(#[source] TrailError),
    #[error("reading IAM's last-accessed data: {0}")]
    LastAccessed(#[source] IamError),
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
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::ReadRole(_) => "read_role",
            Error::Trail(_) => "cloudtrail",
            Error::LastAccessed(_) => "last_accessed",
            Error::Analyzer(_) => "access_analyzer",
            Error::Generate(_) => "generate",
            Error::Apply(_) => "apply",
            Error::Principal(_) => "principal",
            Error::Backup { .. } => "backup",
            Error::RestoreBlocked(_) => "restore_blocked",
            Error::Kube(_) => "kubernetes",
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
            Error::ReadRole(e) | Error::Apply(e) | Error::LastAccessed(e)
                if matches!(e, IamError::Throttled { .. }) =>
            {
                "Throttled"
            }
            Error::ReadRole(_) => "RoleReadFailed",
            Error::Trail(_) => "CloudTrailReadFailed",
            Error::LastAccessed(_) => "LastAccessedFailed",
            Error::Analyzer(AnalyzerError::Throttled { .. }) => "Throttled",
            Error::Analyzer(_) => "AccessAnalyzerFailed",
            Error::Generate(_) | Error::Principal(_) => "GenerateFailed",
            Error::Apply(_) => "ApplyFailed",
            Error::Backup { .. } => "BackupFailed",
            Error::RestoreBlocked(_) => "RestoreBlocked",
            Error::Kube(_) | Error::Finalizer(_) => "KubernetesError",
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
            Error::ReadRole(e) | Error::Apply(e) | Error::LastAccessed(e) => e.is_retryable(),
            Error::Analyzer(e) => e.is_retryable(),
            // Listing and downloads already had the SDK's retries; a missing bucket or a
            // denied read needs a person.
            Error::Trail(TrailError::S3(_)) => true,
            Error::Trail(TrailError::Scan(_)) | Error::Generate(_) | Error::Principal(_) => false,
            Error::Backup { .. } | Error::RestoreBlocked(_) => false,
            Error::Kube(_) => true,
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.is_retryable()
                }
                _ => true,
            },
        }
    }
}

/// AWS clients per `assumeRoleArn` (none: the operator's own credentials), made once, and
/// the turns resources of one account take at Access Analyzer's one generation job.
/// An assumed-role session: (role ARN, session, ExternalId).
type AssumedKey = (String, Session, Option<String>);

pub struct Aws {
    base: aws_config::SdkConfig,
    limiter: Option<Arc<RateLimiter>>,
    /// Assumed-role configurations by (role ARN, session, ExternalId).
    assumed: tokio::sync::Mutex<HashMap<AssumedKey, aws_config::SdkConfig>>,
    /// Access role ARN → the ExternalId the tenancy configuration gives it, as last read.
    external_ids: Mutex<HashMap<String, String>>,
    analyzer_poll_secs: u64,
    generation_turns: Mutex<AccountQueue>,
    /// Per account, until when Access Analyzer's daily job quota is used up (next 00:00 UTC):
    /// no job is started before then.
    quota_until: Mutex<HashMap<String, Instant>>,
}

impl Aws {
    /// `calls_per_second` limits IAM calls across all resources (0: unlimited);
    /// `analyzer_poll_secs` spaces polls of a running generation job.
    pub fn new(base: aws_config::SdkConfig, calls_per_second: u32, analyzer_poll_secs: u64) -> Aws {
        Aws {
            base,
            limiter: RateLimiter::per_second(calls_per_second).map(Arc::new),
            assumed: Default::default(),
            external_ids: Default::default(),
            analyzer_poll_secs,
            // Waiting resources ask every poll; a few missed polls lose the place.
            generation_turns: Mutex::new(AccountQueue::new(Duration::from_secs(
                (analyzer_poll_secs * 10).max(300),
            ))),
            quota_until: Default::default(),
        }
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, AccountQueue> {
        self.generation_turns.lock().expect("not poisoned")
    }

    async fn analyzer(&self, lpr: &LeastPrivilegeRole) -> AccessAnalyzer {
        let config = self.config(lpr).await;
        AccessAnalyzer::new(&config, self.limiter.clone())
    }

    /// The SDK configuration for `lpr`: the operator's own, or a session of its
    /// `assumeRoleArn` named for the resource (one per role and resource, kept).
    async fn config(&self, lpr: &LeastPrivilegeRole) -> aws_config::SdkConfig {
        let Some(arn) = lpr
            .spec
            .assume_role_arn
            .as_deref()
            .filter(|a| !a.is_empty())
        else {
            return self.base.clone();
        };
        let session = Session::of_resource(&lpr.namespace().unwrap_or_default(), &lpr.name_any());
        let external_id = self
            .external_ids
            .lock()
            .expect("not poisoned")
            .get(arn)
            .cloned();
        let key = (arn.to_string(), session.clone(), external_id.clone());
        let mut assumed = self.assumed.lock().await;
        if let Some(config) = assumed.get(&key) {
            return config.clone();
        }
        let config = assume_role(&self.base, arn, &session, external_id.as_deref()).await;
        assumed.insert(key, config.clone());
        config
    }

    /// Records the ExternalId to send when assuming `arn` (none: send none).
    fn set_external_id(&self, arn: &str, id: Option<String>) {
        let mut ids = self.external_ids.lock().expect("not poisoned");
        match id {
            Some(id) => ids.insert(arn.to_string(), id),
            None => ids.remove(arn),
        };
    }

    async fn iam(&self, lpr: &LeastPrivilegeRole) -> Iam {
        let config = self.config(lpr).await;
        Iam::new(&config, self.limiter.clone())
    }

    async fn s3(&self, lpr: &LeastPrivilegeRole, region: Option<&str>) -> aws_sdk_s3::Client {
        let mut config = self.config(lpr).await;
        if let Some(region) = region {
            config = config
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build();
        }
        s3::client(&config)
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub aws: Aws,
    /// The operator's own namespace, where the backups live (out of the tenants' reach).
    pub backup_namespace: String,
    /// Consecutive failures per resource, for backoff.
    failures: Mutex<HashMap<(String, String), u32>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        aws: Aws,
        backup_namespace: String,
    ) -> Self {
        Context {
            client,
            recorder,
            metrics,
            aws,
            backup_namespace,
            failures: Default::default(),
        }
    }

    fn backups(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.backup_namespace)
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
    let result = finalizer(&api, FINALIZER, lpr, |event| async {
        match event {
            Finalizer::Apply(lpr) => apply(&lpr, &ctx).await,
            Finalizer::Cleanup(lpr) => cleanup(&lpr, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .reconcile_duration(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures.lock().expect("not poisoned").remove(&key);
    }
    result
}

/// Transient failures back off exponentially (5 s … 5 min); the rest retry slowly, since
/// what fixes them (permissions, a bucket policy) is not a change to the resource.
pub fn error_policy(lpr: Arc<LeastPrivilegeRole>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(error.metric_label());
    tracing::warn!(
        namespace = lpr.namespace().unwrap_or_default(),
        name = lpr.name_any(),
        error = %error,
        "reconcile failed"
    );
    if !error.is_retryable() {
        return Action::requeue(PERMANENT_RETRY);
    }
    let mut failures = ctx.failures.lock().expect("not poisoned");
    let count = failures.entry(key(&lpr)).or_insert(0);
    *count = (*count + 1).min(10);
    Action::requeue(Duration::from_secs((5u64 << (*count - 1)).min(300)))
}

/// The time now: RFC 3339 to the second (what the status shows) and as an [`Instant`].
fn now() -> (String, Instant) {
    let now = Timestamp::now();
    (rfc3339(now.as_nanosecond()), now.as_nanosecond())
}

fn rfc3339(nanos: Instant) -> String {
    Timestamp::from_nanosecond(nanos)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The role's name as IAM calls need it (an ARN's last path segment).
fn role_name(spec: &LeastPrivilegeRoleSpec) -> String {
    match (&spec.role_name, &spec.role_arn) {
        (Some(name), _) if !name.is_empty() => name.clone(),
        (_, Some(arn)) => arn.rsplit('/').next().unwrap_or(arn).to_string(),
        _ => String::new(),
    }
}

async fn apply(lpr: &LeastPrivilegeRole, ctx: &Context) -> Result<Action, Error> {
    let previous = lpr.status.clone().unwrap_or_default();
    let generation = lpr.metadata.generation.unwrap_or(0);
    let (now_text, now) = now();
    match observe_plan_apply(lpr, ctx, &previous, generation, &now_text, now).await {
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
            if let Err(e) = write_status(lpr, ctx, &previous, &status).await {
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

async fn observe_plan_apply(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    previous: &LeastPrivilegeRoleStatus,
    generation: i64,
    now_text: &str,
    now: Instant,
) -> Result<Action, Failure> {
    let spec = &lpr.spec;
    let mut observed = Observed {
        generation,
        now: now_text.to_string(),
        previous: previous.clone(),
        role: RoleState::NotFound,
        uid: lpr.uid().unwrap_or_default(),
        backup: None,
        backup_namespace: ctx.backup_namespace.clone(),
        analysis: None,
        analyzer: None,
        analyzer_poll_secs: ctx.aws.analyzer_poll_secs,
    };
    if plan::validate(spec).is_err() {
        // The plan reports the spec's problems; nothing is read until they are fixed.
        let plan = plan::plan(spec, &observed);
        return finish(lpr, ctx, previous, plan, None, now_text).await;
    }
    let namespace = lpr.namespace().unwrap_or_default();
    let tenancy = read_tenancy(ctx).await?;
    if let Err(reason) = admit(ctx, lpr, &tenancy).await? {
        // Nothing is asked of AWS for a resource the tenancy rules refuse.
        observed.role = RoleState::NotPermitted {
            arn: spec
                .assume_role_arn
                .clone()
                .unwrap_or_else(|| role_name(spec)),
            reason,
        };
        let plan = plan::plan(spec, &observed);
        return finish(lpr, ctx, previous, plan, None, now_text).await;
    }
    let iam = ctx.aws.iam(lpr).await;
    let enforce = spec.mode == Mode::Enforce;
    observed.role = read_role_state(&iam, &role_name(spec), &namespace, &tenancy, enforce).await?;
    observed.backup = read_backup(ctx, &observed.uid).await?;
    if let RoleState::Found(live) = &observed.role
        && plan::not_ours(previous, live, &observed.uid).is_none()
        && plan::analysis_due(spec, previous, now)
    {
        let started = std::time::Instant::now();
        let gathered = match &spec.cloud_trail.access_analyzer {
            None => {
                let (usage, days_without_files) = scan(lpr, ctx, live, now).await?;
                Gathered {
                    usage,
                    unresolved: Vec::new(),
                    days_without_files,
                }
            }
            Some(source) => {
                match analyzer_turn(lpr, ctx, source, live, previous, now_text, now).await? {
                    Turn::Pending(state) => {
                        observed.analyzer = Some(state);
                        let plan = plan::plan(spec, &observed);
                        return finish(lpr, ctx, previous, plan, Some((&iam, live)), now_text)
                            .await;
                    }
                    Turn::Policies(policies) => {
                        analyzer_usage(lpr, ctx, live, &policies, now_text, now).await?
                    }
                }
            }
        };
        let mut result = analyze(lpr, &iam, live, now_text, now, gathered).await?;
        if spec.validation.access_analyzer
            && spec.mode != Mode::Observe
            && !result.generated.policies.is_empty()
        {
            result.validation =
                Some(check_proposal(ctx, lpr, live, &result.generated.policies).await?);
        }
        ctx.metrics.scan_duration(started.elapsed().as_secs_f64());
        let key = key(lpr);
        ctx.metrics
            .set_unused_actions(&key.0, &key.1, &live.name, result.analysis.unused_actions);
        observed.analysis = Some(result);
    }
    let plan = plan::plan(spec, &observed);
    let role = match &observed.role {
        RoleState::Found(live) => Some((&iam, live)),
        RoleState::NotFound | RoleState::NotPermitted { .. } => None,
    };
    finish(lpr, ctx, previous, plan, role, now_text).await
}

/// The tenancy rules in force: the ConfigMap in the operator's namespace, if there is one.
async fn read_tenancy(ctx: &Context) -> Result<Tenancy, Error> {
    let config_map = ctx
        .backups()
        .get_opt(tenancy::CONFIG_MAP)
        .await
        .map_err(Error::Kube)?;
    let text = config_map.map(|c| {
        c.data
            .and_then(|mut d| d.remove(tenancy::CONFIG_KEY))
            .unwrap_or_default()
    });
    Ok(Tenancy::from_config_map(text.as_deref()))
}

/// Whether the tenancy rules let `lpr` use its `assumeRoleArn`; when they do, the access
/// role's ExternalId (from the Secret in the operator's namespace) is recorded for the session.
async fn admit(
    ctx: &Context,
    lpr: &LeastPrivilegeRole,
    tenancy: &Tenancy,
) -> Result<Result<(), String>, Error> {
    let namespace = lpr.namespace().unwrap_or_default();
    let assume = lpr
        .spec
        .assume_role_arn
        .as_deref()
        .filter(|a| !a.is_empty());
    let key = match tenancy.access_role(&namespace, assume) {
        Ok(key) => key,
        Err(reason) => return Ok(Err(reason)),
    };
    let (Some(arn), Some(key)) = (assume, key) else {
        if let Some(arn) = assume {
            ctx.aws.set_external_id(arn, None);
        }
        return Ok(Ok(()));
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.backup_namespace);
    let secret = secrets
        .get_opt(tenancy::EXTERNAL_IDS_SECRET)
        .await
        .map_err(Error::Kube)?;
    let id = secret
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(&key))
        .and_then(|v| String::from_utf8(v.0).ok());
    match id {
        Some(id) => {
            ctx.aws.set_external_id(arn, Some(id));
            Ok(Ok(()))
        }
        None => Ok(Err(format!(
            "Secret {}/{} has no key {key} with the ExternalId of {arn}",
            ctx.backup_namespace,
            tenancy::EXTERNAL_IDS_SECRET
        ))),
    }
}

/// The role as IAM has it, if the tenancy rules let a resource in `namespace` read it (GetRole
/// alone decides: the owner's tags, then the configuration, with Enforce when `enforce`); a
/// missing or refused role is a state, not an error.
async fn read_role_state(
    iam: &Iam,
    name: &str,
    namespace: &str,
    tenancy: &Tenancy,
    enforce: bool,
) -> Result<RoleState, Error> {
    let head = match iam::get_role(iam, name).await {
        Ok(head) => head,
        Err(IamError::NotFound { .. }) => return Ok(RoleState::NotFound),
        Err(e) => return Err(Error::ReadRole(e)),
    };
    let permitted = tenancy::permits(namespace, &head.tags)
        .and_then(|()| tenancy.target(namespace, &head.arn, enforce));
    if let Err(reason) = permitted {
        return Ok(RoleState::NotPermitted {
            arn: head.arn,
            reason,
        });
    }
    match iam::read_documents(iam, head).await {
        Ok(live) => Ok(RoleState::Found(live)),
        Err(IamError::NotFound { .. }) => Ok(RoleState::NotFound),
        Err(e) => Err(Error::ReadRole(e)),
    }
}

fn window_start(spec: &LeastPrivilegeRoleSpec, now: Instant) -> Instant {
    let window = plan::parse_duration(&spec.window, "mhdw").expect("validate() checked window");
    now - i128::from(window) * 1_000_000_000
}

/// Scans the window's trail files in S3 for the role.
async fn scan(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    live: &LiveRole,
    now: Instant,
) -> Result<(Usage, Vec<String>), Error> {
    let spec = &lpr.spec;
    let source = spec
        .cloud_trail
        .s3
        .as_ref()
        .expect("called only with cloudTrail.s3");
    let from = window_start(spec, now);
    let location = S3Location {
        bucket: source.bucket.clone(),
        prefix: source.prefix.clone().unwrap_or_default(),
    };
    let principal = PrincipalFilter::parse(&live.arn)
        .map_err(|e| Error::Principal(format!("role ARN {}: {e}", live.arn)))?;
    let options = ScanOptions {
        principal: Some(principal),
        from: Some(from),
        to: Some(now),
        strict: false,
        threads: 1,
        progress: false,
    };
    let client = ctx.aws.s3(lpr, source.region.as_deref()).await;
    let days = Day::range(from, now);
    let scan = s3::scan_trail(
        &client,
        std::slice::from_ref(&location),
        Some(&days),
        &options,
        DOWNLOADS_IN_FLIGHT,
    )
    .await
    .map_err(Error::Trail)?;
    // Today's files are still being written: only earlier days count as missing.
    let today = Day::of(now);
    let missing = (scan.days_without_files.iter())
        .filter(|d| **d != today)
        .map(Day::iso)
        .collect();
    Ok((scan.usage, missing))
}

/// What a turn at Access Analyzer gave.
enum Turn {
    /// The job succeeded: its policy documents.
    Policies(Vec<String>),
    /// No policy yet (or none coming): the plan reports where it stands.
    Pending(Generation),
}

/// One step of the Access Analyzer generation for the resource: poll the job its status names,
/// or start one when its turn in the account comes.
async fn analyzer_turn(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    source: &AccessAnalyzerSource,
    live: &LiveRole,
    previous: &LeastPrivilegeRoleStatus,
    now_text: &str,
    now: Instant,
) -> Result<Turn, Error> {
    let spec = &lpr.spec;
    let analyzer = ctx.aws.analyzer(lpr).await;
    let inputs = plan::analysis_inputs(spec);
    let account = live.arn.split(':').nth(4).unwrap_or_default().to_string();
    let (namespace, name) = key(lpr);
    let key = format!("{namespace}/{name}");
    let asked = std::time::Instant::now();
    let job = previous
        .generation_job
        .clone()
        .filter(|job| job.inputs == inputs);
    if let Some(job) = job {
        if job.failure.is_none() {
            ctx.aws.turns().resume(&account, &key, asked);
            let state = access_analyzer::get_generated_policy(&analyzer, &job.job_id)
                .await
                .map_err(Error::Analyzer)?;
            if state != JobState::InProgress {
                ctx.aws.turns().finished(&account, &key);
            }
            return Ok(match state {
                JobState::InProgress => Turn::Pending(Generation::Running(job)),
                JobState::Succeeded { policies } => Turn::Policies(policies),
                JobState::Ended { status, reason } => {
                    Turn::Pending(Generation::Failed(GenerationJob {
                        failure: Some(format!("{status}: {reason}")),
                        ..job
                    }))
                }
            });
        }
        // A failed job is tried again after regenerateEvery, or when the spec changes.
        let every = plan::parse_duration(&spec.regenerate_every, "mhdw").unwrap_or(86_400);
        let started = crate::policy::values::parse_date(&job.started_at).unwrap_or(0);
        if now - started < i128::from(every) * 1_000_000_000 {
            return Ok(Turn::Pending(Generation::Failed(job)));
        }
    }
    const DAY: Instant = 86_400 * 1_000_000_000;
    let quota = ctx
        .aws
        .quota_until
        .lock()
        .expect("not poisoned")
        .get(&account)
        .copied();
    if let Some(until) = quota.filter(|until| now < *until) {
        return Ok(Turn::Pending(Generation::QuotaExceeded {
            message: format!(
                "the account's daily policy generation jobs are used up until {}",
                rfc3339(until)
            ),
        }));
    }
    if let Err(ahead) = ctx.aws.turns().try_start(&account, &key, asked) {
        return Ok(Turn::Pending(Generation::Queued {
            message: format!(
                "{ahead} other resource(s) of account {account} have their Access Analyzer job first"
            ),
        }));
    }
    let trail = TrailSource {
        trail_arn: source.trail_arn.clone(),
        access_role_arn: source.access_role_arn.clone(),
        regions: source.regions.clone(),
        all_regions: source.all_regions,
    };
    let seconds = |nanos: Instant| (nanos / 1_000_000_000) as i64;
    let window = Window {
        start: seconds(window_start(spec, now)),
        end: seconds(now),
    };
    match access_analyzer::start_policy_generation(&analyzer, &live.arn, &trail, window).await {
        Ok(job_id) => Ok(Turn::Pending(Generation::Running(GenerationJob {
            job_id,
            started_at: now_text.to_string(),
            inputs,
            failure: None,
        }))),
        Err(AnalyzerError::Conflict { message, .. }) => {
            ctx.aws.turns().refused(&account, &key, asked);
            Ok(Turn::Pending(Generation::Queued {
                message: format!(
                    "another policy generation job runs in account {account}: {message}"
                ),
            }))
        }
        Err(AnalyzerError::QuotaExceeded { message, .. }) => {
            ctx.aws.turns().finished(&account, &key);
            let midnight = (now.div_euclid(DAY) + 1) * DAY;
            ctx.aws
                .quota_until
                .lock()
                .expect("not poisoned")
                .insert(account.clone(), midnight);
            Ok(Turn::Pending(Generation::QuotaExceeded { message }))
        }
        Err(error) => {
            ctx.aws.turns().refused(&account, &key, asked);
            Err(Error::Analyzer(error))
        }
    }
}

/// Access Analyzer's policies as usage: placeholders filled from `spec.placeholders`, or
/// from the trail files' ARNs when `cloudTrail.s3` is given too (whose counts, denied and
/// unmapped calls the analysis then reports).
async fn analyzer_usage(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    live: &LiveRole,
    policies: &[String],
    now_text: &str,
    now: Instant,
) -> Result<Gathered, Error> {
    let (logs, days_without_files) = match &lpr.spec.cloud_trail.s3 {
        Some(_) => {
            let (usage, missing) = scan(lpr, ctx, live, now).await?;
            (Some(usage), missing)
        }
        None => (None, Vec::new()),
    };
    let generated = from_generated(policies, &lpr.spec.placeholders, logs.as_ref(), now_text)
        .map_err(|message| {
            Error::Analyzer(AnalyzerError::Api {
                operation: "GetGeneratedPolicy",
                message,
                retryable: false,
            })
        })?;
    let mut usage = generated.usage;
    if let Some(logs) = logs {
        usage.stats = logs.stats;
        usage.denied = logs.denied;
        usage.unmapped = logs.unmapped;
    }
    Ok(Gathered {
        usage,
        unresolved: generated.unresolved,
        days_without_files,
    })
}

/// What an analysis starts from: the role's usage, the Access Analyzer placeholders nothing
/// filled, and the window's days without trail files.
struct Gathered {
    usage: Usage,
    unresolved: Vec<Unresolved>,
    days_without_files: Vec<String>,
}

/// Generates the role's policy from `usage`, cut to what the role holds now, with IAM's
/// last-accessed data keeping what the window missed.
async fn analyze(
    lpr: &LeastPrivilegeRole,
    iam: &Iam,
    live: &LiveRole,
    now_text: &str,
    now: Instant,
    gathered: Gathered,
) -> Result<AnalysisResult, Error> {
    let Gathered {
        usage,
        unresolved,
        days_without_files,
    } = gathered;
    let spec = &lpr.spec;
    let from = window_start(spec, now);
    let used = used_actions(&usage);
    let last_accessed =
        iam::service_last_accessed(iam, &live.arn, LAST_ACCESSED_POLL, LAST_ACCESSED_TIMEOUT)
            .await
            .map_err(Error::LastAccessed)?;
    let last_accessed_window = Duration::from_secs(
        plan::parse_duration(&spec.last_accessed_window, "mhdw")
            .expect("validate() checked lastAccessedWindow"),
    );
    let at = Timestamp::from_nanosecond(now).expect("the clock reads a valid time");
    let current = live.documents();
    let granted: BTreeSet<String> = allowed_actions(&current)
        .into_iter()
        .map(|a| a.action)
        .collect();
    let mut seen_by_iam = seen_not_in_window(&last_accessed, &used, at, last_accessed_window);
    // Only what the role holds now can be kept; the rest IAM saw under earlier policies.
    seen_by_iam.retain(|s| granted.contains(&s.action));
    let today = &now_text[..10];
    let mut keep = Vec::new();
    for rule in &spec.keep {
        // An expired rule no longer applies; the date compares as text (YYYY-MM-DD).
        if rule.expires.as_deref().is_some_and(|e| e < today) {
            continue;
        }
        for action in &rule.actions {
            let parsed: Keep = action.parse().map_err(Error::Generate)?;
            if rule.resources.is_empty() {
                keep.push(parsed);
            } else {
                keep.extend(rule.resources.iter().map(|r| Keep {
                    action: parsed.action.clone(),
                    resource: Some(r.clone()),
                }));
            }
        }
    }
    keep.extend(seen_by_iam.iter().map(|s| Keep {
        action: s.action.clone(),
        resource: None,
    }));
    let options = GenerateOptions {
        keep,
        forbid: spec.forbid.clone(),
        current: current.clone(),
        ..Default::default()
    };
    let (generated, usage) =
        tokio::task::spawn_blocking(move || generate(&usage, &options).map(|g| (g, usage)))
            .await
            .expect("generation does not panic")
            .map_err(Error::Generate)?;
    let stats = &usage.stats;
    let analysis = Analysis {
        window_start: rfc3339(from),
        window_end: now_text.to_string(),
        files_scanned: stats.files_scanned,
        events_scanned: stats.records_scanned,
        events_matched: stats.records_matched,
        used_actions: used.len() as u64,
        granted_actions: granted.len() as u64,
        unused_actions: granted.difference(&used).count() as u64,
        denied_attempts: usage.denied.values().map(|d| d.count).sum(),
        unmapped: usage.unmapped.values().map(|d| d.count).sum(),
        last_accessed: Some(last_accessed_report(
            &last_accessed,
            &used,
            at,
            last_accessed_window,
        )),
        inputs: Some(plan::analysis_inputs(spec)),
        skipped: stats.skipped.clone(),
        days_without_files_count: days_without_files.len() as u64,
        days_without_files: days_without_files.into_iter().take(REPORT_LIMIT).collect(),
        previous_events_matched: None,
    };
    Ok(AnalysisResult {
        analysis,
        generated,
        seen_by_iam,
        unresolved,
        validation: None,
    })
}

/// Access Analyzer's checks of a proposal: ValidatePolicy on each document, CheckNoNewAccess
/// against the role's policies, CheckAccessNotGranted for `forbid`.
async fn check_proposal(
    ctx: &Context,
    lpr: &LeastPrivilegeRole,
    live: &LiveRole,
    documents: &[Policy],
) -> Result<Validation, Error> {
    let spec = &lpr.spec;
    let analyzer = ctx.aws.analyzer(lpr).await;
    let mut findings = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        let found = access_analyzer::validate_policy(
            &analyzer,
            &document.canonical_json(),
            PolicyType::Identity,
        )
        .await
        .map_err(Error::Analyzer)?;
        for f in found {
            let locations = if documents.len() > 1 {
                f.locations
                    .iter()
                    .map(|l| format!("document {i}: {l}"))
                    .collect()
            } else {
                f.locations
            };
            findings.push(ValidationFinding {
                severity: f.severity.to_string(),
                code: f.code,
                message: f.message,
                locations,
            });
        }
    }
    let proposal = one_document(documents);
    let existing = one_document(&live.documents());
    let result = |v: access_analyzer::Verdict| CheckResult {
        passed: v.passed,
        reasons: v.reasons,
    };
    let no_new_access = access_analyzer::check_no_new_access(&analyzer, &proposal, &existing)
        .await
        .map_err(Error::Analyzer)?;
    let access_not_granted = if spec.forbid.is_empty() {
        None
    } else {
        let verdict = access_analyzer::check_access_not_granted(&analyzer, &proposal, &spec.forbid)
            .await
            .map_err(Error::Analyzer)?;
        Some(result(verdict))
    };
    Ok(Validation {
        findings,
        no_new_access: result(no_new_access),
        access_not_granted,
    })
}

/// Several documents as one, for checks that take a single policy: all their statements.
fn one_document(documents: &[Policy]) -> String {
    let statements: Vec<serde_json::Value> = documents
        .iter()
        .flat_map(|d| {
            let value: serde_json::Value =
                serde_json::from_str(&d.canonical_json()).expect("canonical JSON parses");
            value["Statement"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// The catalog spelling of every action the trail saw used.
fn used_actions(usage: &Usage) -> BTreeSet<String> {
    usage
        .actions
        .keys()
        .filter_map(|name| catalog().action(name).map(|a| a.full_name()))
        .collect()
}

/// IAM's view for `status.analysis.lastAccessed`, lists cut to [`REPORT_LIMIT`].
fn last_accessed_report(
    last: &LastAccessed,
    used: &BTreeSet<String>,
    now: Timestamp,
    window: Duration,
) -> LastAccessedReport {
    let stale = not_recently_used(last, now, window);
    let cut = |mut list: Vec<NotUsedSince>| {
        list.truncate(REPORT_LIMIT);
        list
    };
    LastAccessedReport {
        services_not_recently_used_count: stale.services.len() as u64,
        services_not_recently_used: cut(stale.services),
        actions_not_recently_used_count: stale.actions.len() as u64,
        actions_not_recently_used: cut(stale.actions),
        seen_without_action_data: services_seen_without_action_data(last, used, now, window),
    }
}

/// Applies `plan`'s operations in order, then writes its status and records its events.
async fn finish(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    previous: &LeastPrivilegeRoleStatus,
    plan: Plan,
    role: Option<(&Iam, &LiveRole)>,
    now: &str,
) -> Result<Action, Failure> {
    for event in &plan.events {
        publish(ctx, lpr, event).await;
    }
    let key = key(lpr);
    if plan.events.iter().any(|e| e.reason == "Drifted") {
        ctx.metrics.drift_detected(&key.0, &key.1);
    }
    if let Some((iam, live)) = role {
        let mut backed_up = false;
        for operation in &plan.operations {
            match perform(lpr, ctx, iam, live, operation).await {
                Ok(()) => {
                    backed_up |= matches!(operation, Operation::BackupRole { .. });
                    publish(ctx, lpr, &plan::operation_event(operation)).await;
                }
                Err(error) => {
                    let status = plan::apply_failed(
                        &plan,
                        previous,
                        backed_up,
                        lpr.metadata.generation.unwrap_or(0),
                        now,
                        error.reason(),
                        &error.to_string(),
                    );
                    return Err(Failure {
                        error,
                        status: Some(status),
                    });
                }
            }
        }
    }
    for event in &plan.completion {
        publish(ctx, lpr, event).await;
        if event.reason == "PolicyApplied" {
            ctx.metrics.applied(&key.0, &key.1);
        }
    }
    write_status(lpr, ctx, previous, &plan.status)
        .await
        .map_err(Error::Kube)?;
    Ok(action(plan.requeue))
}

fn action(requeue: Requeue) -> Action {
    match requeue {
        Requeue::After(secs) => Action::requeue(Duration::from_secs(secs)),
        Requeue::AwaitChange => Action::await_change(),
    }
}

/// One operation against IAM (or the backup ConfigMap).
async fn perform(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    iam: &Iam,
    live: &LiveRole,
    operation: &Operation,
) -> Result<(), Error> {
    let role = live.name.as_str();
    let result = match operation {
        Operation::BackupRole {
            config_map,
            snapshot,
        } => return write_backup(lpr, ctx, config_map, snapshot).await,
        Operation::PutManagedPolicy {
            name,
            arn,
            document,
        } => iam::put_managed_policy(iam, name, arn, document, &live.role_id)
            .await
            .map(|_| ()),
        Operation::AttachPolicy { arn } => iam::attach(iam, role, arn).await,
        Operation::DetachPolicy { arn } => iam::detach(iam, role, arn).await,
        Operation::PutInlinePolicy { name, document } => {
            iam::put_inline(iam, role, name, document).await
        }
        Operation::DeleteInlinePolicy { name } => iam::delete_inline(iam, role, name).await,
        Operation::SetPermissionsBoundary { arn } => iam::set_boundary(iam, role, arn).await,
        Operation::DeletePermissionsBoundary => iam::delete_boundary(iam, role).await,
        Operation::DeleteManagedPolicy { arn } => {
            iam::delete_managed_policy(iam, arn, &live.role_id).await
        }
        Operation::ClaimRole { uid } => iam::tag_role(iam, role, CLAIM_TAG, uid).await,
        Operation::ReleaseRole => iam::untag_role(iam, role, CLAIM_TAG).await,
    };
    ctx.metrics.aws_write(operation_label(operation));
    result.map_err(Error::Apply)
}

fn operation_label(operation: &Operation) -> &'static str {
    match operation {
        Operation::BackupRole { .. } => "BackupRole",
        Operation::PutManagedPolicy { .. } => "PutManagedPolicy",
        Operation::AttachPolicy { .. } => "AttachRolePolicy",
        Operation::DetachPolicy { .. } => "DetachRolePolicy",
        Operation::PutInlinePolicy { .. } => "PutRolePolicy",
        Operation::DeleteInlinePolicy { .. } => "DeleteRolePolicy",
        Operation::SetPermissionsBoundary { .. } => "PutRolePermissionsBoundary",
        Operation::DeletePermissionsBoundary => "DeleteRolePermissionsBoundary",
        Operation::DeleteManagedPolicy { .. } => "DeletePolicy",
        Operation::ClaimRole { .. } => "TagRole",
        Operation::ReleaseRole => "UntagRole",
    }
}

/// Creates the backup ConfigMap in the operator's namespace. One that exists already is kept
/// only if it holds exactly this snapshot: an object with other content is never adopted.
async fn write_backup(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    name: &str,
    snapshot: &BackupSnapshot,
) -> Result<(), Error> {
    let json = snapshot.to_json();
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "iam-tailor".to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    "iamtailor.dev/resource".to_string(),
                    format!("{}/{}", lpr.namespace().unwrap_or_default(), lpr.name_any()),
                ),
                ("iamtailor.dev/role".to_string(), snapshot.role_arn.clone()),
            ])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(BACKUP_KEY.to_string(), json)])),
        ..Default::default()
    };
    let failed = |reason: String| Error::Backup {
        name: name.to_string(),
        reason,
    };
    match ctx
        .backups()
        .create(&PostParams::default(), &config_map)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            match read_backup(ctx, lpr.uid().as_deref().unwrap_or_default()).await? {
                Some(stored) if stored == plan::StoredBackup::of(snapshot) => Ok(()),
                _ => Err(failed(
                    "it exists with other content, and is never adopted".to_string(),
                )),
            }
        }
        Err(e) => Err(failed(e.to_string())),
    }
}

/// Reads the backup ConfigMap of the resource `uid`, if there is one: its hash and snapshot.
async fn read_backup(ctx: &Context, uid: &str) -> Result<Option<plan::StoredBackup>, Error> {
    let name = plan::backup_config_map(uid);
    let Some(config_map) = ctx.backups().get_opt(&name).await.map_err(Error::Kube)? else {
        return Ok(None);
    };
    let json = config_map.data.as_ref().and_then(|d| d.get(BACKUP_KEY));
    Ok(Some(plan::StoredBackup {
        sha256: crate::policy::canonical::sha256_revision(json.map_or("", String::as_str)),
        snapshot: match json {
            None => Err(format!("no {BACKUP_KEY} key")),
            Some(json) => serde_json::from_str(json).map_err(|e| format!("{BACKUP_KEY}: {e}")),
        },
    }))
}

async fn delete_backup(ctx: &Context, uid: &str) -> Result<(), Error> {
    let name = plan::backup_config_map(uid);
    match ctx.backups().delete(&name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(Error::Backup {
            name,
            reason: e.to_string(),
        }),
    }
}

/// The finalizer's cleanup: Retain lets go; Restore puts the backup back first.
async fn cleanup(lpr: &LeastPrivilegeRole, ctx: &Context) -> Result<Action, Error> {
    let spec = &lpr.spec;
    let previous = lpr.status.clone().unwrap_or_default();
    let (now_text, _) = now();
    let mut observed = Observed {
        generation: lpr.metadata.generation.unwrap_or(0),
        now: now_text,
        previous: previous.clone(),
        role: RoleState::NotFound,
        uid: lpr.uid().unwrap_or_default(),
        backup: None,
        backup_namespace: ctx.backup_namespace.clone(),
        analysis: None,
        analyzer: None,
        analyzer_poll_secs: ctx.aws.analyzer_poll_secs,
    };
    let restoring = spec.deletion_policy == super::crd::DeletionPolicy::Restore;
    if restoring {
        observed.backup = read_backup(ctx, &observed.uid).await?;
    }
    // The role this resource was pinned to is the one to put back (and to release), even if
    // the spec has been edited since (or broken); the plan checks the backup was taken from it.
    let role = match &previous.role {
        Some(pin) => pin.arn.rsplit('/').next().map(str::to_string),
        None => plan::validate(spec).is_ok().then(|| role_name(spec)),
    };
    let tenancy = read_tenancy(ctx).await?;
    let admitted = admit(ctx, lpr, &tenancy).await?;
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
        observed.role = match read_role_state(&client, &role, &namespace, &tenancy, restoring).await
        {
            Ok(state) => state,
            // Retain only releases the claim: an unreadable role must not hold up deletion.
            Err(error) if !restoring => {
                tracing::warn!(%error, "the role's claim is left in place");
                RoleState::NotFound
            }
            Err(error) => return Err(error),
        };
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
            perform(lpr, ctx, iam, live, operation).await?;
            publish(ctx, lpr, &plan::operation_event(operation)).await;
        }
        // The role holds the backup's state again, so the backup has done its job. (Retain
        // keeps it: it is then the only record of the original.)
        if observed.backup.is_some() {
            delete_backup(ctx, &observed.uid).await?;
        }
    }
    for event in &plan.completion {
        publish(ctx, lpr, event).await;
    }
    let key = key(lpr);
    ctx.metrics.forget(&key.0, &key.1);
    Ok(Action::await_change())
}

/// Writes `status` by server-side apply, unless it is what was last written: a steady state
/// makes no writes, so it triggers no further reconciles.
async fn write_status(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    previous: &LeastPrivilegeRoleStatus,
    status: &LeastPrivilegeRoleStatus,
) -> Result<(), kube::Error> {
    if lpr.status.is_some() && status == previous {
        return Ok(());
    }
    let api: Api<LeastPrivilegeRole> =
        Api::namespaced(ctx.client.clone(), &lpr.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": LeastPrivilegeRole::api_version(&()),
        "kind": LeastPrivilegeRole::kind(&()),
        "status": status,
    });
    api.patch_status(
        &lpr.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// Records `event` on the resource; a failure to record is logged, never fatal.
async fn publish(ctx: &Context, lpr: &LeastPrivilegeRole, event: &PlannedEvent) {
    let mut note = event.note.clone();
    if note.len() > 1000 {
        let mut end = 997;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    let kube_event = Event {
        type_: match event.type_ {
            EventType::Normal => KubeEventType::Normal,
            EventType::Warning => KubeEventType::Warning,
        },
        reason: event.reason.clone(),
        note: Some(note),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&kube_event, &lpr.object_ref(&()))
        .await
    {
        tracing::warn!(error = %e, reason = event.reason, "recording an event failed");
    }
}
