//! Observe, the activity half: the role's usage from its trail files or Access Analyzer, and
//! the generation that turns it into a proposal. Run only when [`super::plan::analysis_due`].

use super::context::{AthenaKey, TrailKey};
use super::{Context, Error, key};
use crate::aws::access_analyzer::{
    self, AnalyzerError, GenerationJob as JobState, TrailSource, Window,
};
use crate::aws::iam::{self, Iam};
use crate::aws::s3::{S3Location, TrailScope};
use crate::catalog::catalog;
use crate::cloudtrail::PrincipalFilter;
use crate::controller::crd::{
    AccessAnalyzerSource, Analysis, AnalysisJob, AthenaTrailSource, CheckResult, ClusterTrailSpec,
    JobSource, LastAccessedReport, LeastPrivilegeRole, REPORT_LIMIT, S3TrailSource,
    UnresolvedInstanceProfile, Validation, ValidationFinding,
};
use crate::controller::plan::{self, AnalysisResult, Generation};
use crate::controller::spec::{Source, ValidSpec, WINDOW_RANGE};
use crate::generate::analyzer::{Unresolved, from_generated};
use crate::generate::profiles::{profiles_to_ask, resolve_instance_profiles};
use crate::generate::{
    GenerateOptions, Keep, LastAccessed, generate, not_recently_used, seen_not_in_window,
    services_seen_without_action_data,
};
use crate::policy::Policy;
use crate::policy::analysis::allowed;
use crate::policy::lint::PolicyType;
use crate::role::LiveRole;
use crate::sources::athena::{Asked, AthenaScanError};
use crate::sources::ingest::MAX_CLOCK_SKEW_NANOS;
use crate::time::Day;
use crate::time::Instant;
use crate::time::rfc3339;
use crate::usage::{ProfileRoles, Usage};
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How often, and how long, to wait for IAM's last-accessed report (seconds, usually).
const LAST_ACCESSED_POLL: Duration = Duration::from_millis(500);
const LAST_ACCESSED_TIMEOUT: Duration = Duration::from_secs(60);
/// Trail files downloaded at once per analysis.
const DOWNLOADS_IN_FLIGHT: usize = 8;

/// Who asks about a role's calls, and when: the resource, the shared context, its spec and
/// the role as read.
pub(super) struct Asker<'a, 's> {
    pub lpr: &'a LeastPrivilegeRole,
    pub ctx: &'a Context,
    pub spec: &'a ValidSpec<'s>,
    pub live: &'a LiveRole,
    pub now: Instant,
}

/// The role's usage over the window's days, from its trail's ingester: files no resource has
/// read yet are read (once, for every principal in them), the rest is answered from memory.
/// With the days since the shadow period began (within the window), which the first answer
/// has read.
pub(super) async fn scan(
    asker: &Asker<'_, '_>,
    source: &S3TrailSource,
    shadow_since: Option<Instant>,
) -> Result<(Usage, Vec<String>, Option<Usage>), Error> {
    let (spec, now) = (asker.spec, asker.now);
    let window = Day::range(spec.window_start(now), now);
    let shadow_days = shadow_since.map(|since| Day::range(since.max(spec.window_start(now)), now));
    let asks: Vec<Vec<Day>> = std::iter::once(window).chain(shadow_days).collect();
    let mut answers = ask_days(asker, source, asks).await?.into_iter();
    let scan = answers.next().expect("the window was asked");
    let shadow = answers.next().map(|s| s.usage);
    // Today's files are still being written: only earlier days count as missing.
    let today = Day::of(now);
    let missing = (scan.days_without_files.iter())
        .filter(|d| **d != today)
        .map(Day::iso)
        .collect();
    Ok((scan.usage, missing, shadow))
}

/// The role's calls from the day of `since` to now, for the restore after an apply.
pub(super) async fn calls_since(
    asker: &Asker<'_, '_>,
    source: &S3TrailSource,
    since: Instant,
) -> Result<Usage, Error> {
    let now = asker.now;
    let days = Day::range(
        since.max(now - i128::from(WINDOW_RANGE.1) * 1_000_000_000),
        now,
    );
    let mut answers = ask_days(asker, source, vec![days]).await?;
    Ok(answers.remove(0).usage)
}

/// Asks the trail's ingester for the role's usage over each list of days, in order.
async fn ask_days(
    asker: &Asker<'_, '_>,
    source: &S3TrailSource,
    asks: Vec<Vec<Day>>,
) -> Result<Vec<crate::sources::trail::TrailScan>, Error> {
    let Asker {
        lpr,
        ctx,
        spec,
        live,
        now,
    } = *asker;
    let location = S3Location {
        bucket: source.bucket.clone(),
        prefix: source.prefix.clone().unwrap_or_default(),
    };
    let principal = PrincipalFilter::parse(&live.arn)
        .map_err(|e| Error::Principal(format!("role ARN {}: {e}", live.arn)))?;
    let client = ctx.aws.s3(lpr, source.region.as_deref()).await;
    // The role's calls are logged in its own account: no other account is listed.
    let scope = TrailScope {
        accounts: vec![live.account().to_string()],
        regions: source.regions.clone(),
    };
    let key = TrailKey {
        reader: spec.assume_role_arn.clone().filter(|a| !a.is_empty()),
        region: source.region.clone(),
        location,
        store: spec.store.cloned(),
    };
    let ingester = ctx.ingester(key, &kube::ResourceExt::uid(lpr).unwrap_or_default());
    let mut ingester = ingester.lock().await;
    let read_before = ingester.files_read();
    let store_errors_before = ingester.store_errors();
    let mut answers = Vec::new();
    for days in asks {
        let answer = ingester
            .usage(&client, &scope, &days, &principal, now, DOWNLOADS_IN_FLIGHT)
            .await;
        answers.push(answer);
    }
    ctx.metrics
        .trail_files_read(ingester.files_read() - read_before);
    ctx.metrics
        .fact_store_errors(ingester.store_errors() - store_errors_before);
    // No window reaches further back than the longest allowed, nor past tomorrow.
    ingester.forget_before(Day::of(now - i128::from(WINDOW_RANGE.1) * 1_000_000_000));
    ingester.forget_after(Day::of(now + MAX_CLOCK_SKEW_NANOS));
    for (reason, n) in ingester.take_dropped() {
        ctx.metrics.usage_dropped(reason, n);
    }
    answers
        .into_iter()
        .map(|a| a.map_err(Error::Trail))
        .collect()
}

/// The role's usage over the window's days from its ClusterTrail's Athena table, or the
/// queries still running for it: days no resource has asked about are asked once for every
/// role known to read the table, the rest is answered from memory. Never waits for a query.
/// With the days since the shadow period began (within the window: answered from memory).
pub(super) async fn ask_athena(
    asker: &Asker<'_, '_>,
    source: &AthenaTrailSource,
    trail: &ClusterTrailSpec,
    shadow_since: Option<Instant>,
) -> Result<Result<(Usage, Option<Usage>), Generation>, Error> {
    let Asker {
        lpr,
        ctx,
        spec,
        live,
        now,
    } = *asker;
    let account = live.account().to_string();
    let others = ctx.athena_principals(lpr, trail, &account);
    let client = ctx.aws.athena(lpr, source.region.as_deref()).await;
    let key = AthenaKey {
        reader: spec.assume_role_arn.clone().filter(|a| !a.is_empty()),
        source: source.clone(),
    };
    let ingester = ctx.athena_ingester(key, &kube::ResourceExt::uid(lpr).unwrap_or_default());
    let mut ingester = ingester.lock().await;
    let before = ingester.queries();
    let days = Day::range(spec.window_start(now), now);
    let mut asked = ingester
        .usage(&client, &account, &days, &live.arn, &others, now)
        .await;
    let mut shadow = None;
    if let (Ok(Asked::Answered(_)), Some(since)) = (&asked, shadow_since) {
        let shadow_days = Day::range(since.max(spec.window_start(now)), now);
        match ingester
            .usage(&client, &account, &shadow_days, &live.arn, &others, now)
            .await
        {
            Ok(Asked::Answered(usage)) => shadow = Some(usage),
            Ok(running) => asked = Ok(running),
            Err(e) => asked = Err(e),
        }
    }
    ctx.metrics.athena_queries(ingester.queries() - before);
    ingester.forget_before(Day::of(now - i128::from(WINDOW_RANGE.1) * 1_000_000_000));
    ingester.forget_after(Day::of(now + MAX_CLOCK_SKEW_NANOS));
    for (reason, n) in ingester.take_dropped() {
        ctx.metrics.usage_dropped(reason, n);
    }
    if let Err(AthenaScanError::Athena(crate::aws::athena::AthenaError::TooLarge { .. })) = &asked {
        ctx.metrics
            .usage_dropped(crate::aws::athena::RESULT_TOO_LARGE, 1);
    }
    Ok(match asked.map_err(Error::Athena)? {
        Asked::Answered(usage) => Ok((usage, shadow)),
        Asked::Running(progress) => Err(Generation::Running(AnalysisJob {
            source: JobSource::Athena,
            job_id: progress.queries.join(" "),
            started_at: rfc3339(progress.since),
            inputs: plan::analysis_inputs(&lpr.spec),
            days_answered: Some(progress.days_answered as u64),
            days: Some(progress.days as u64),
            failure: None,
        })),
    })
}

/// What a turn at Access Analyzer gave.
pub(super) enum Turn {
    /// The job succeeded: its policy documents.
    Policies(Vec<String>),
    /// No policy yet (or none coming): the plan reports where it stands.
    Pending(Generation),
}

/// One step of the Access Analyzer generation for the resource: poll the job its status names,
/// or start one when its turn in the account comes.
pub(super) async fn analyzer_turn(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    spec: &ValidSpec<'_>,
    source: &AccessAnalyzerSource,
    live: &LiveRole,
    now_text: &str,
    now: Instant,
) -> Result<Turn, Error> {
    let analyzer = ctx.aws.analyzer(lpr).await;
    let inputs = plan::analysis_inputs(spec);
    let account = live.arn.split(':').nth(4).unwrap_or_default().to_string();
    let (namespace, name) = key(lpr);
    let key = format!("{namespace}/{name}");
    let asked = std::time::Instant::now();
    let job = (lpr.status.as_ref())
        .and_then(|status| status.job.clone())
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
                    Turn::Pending(Generation::Failed(AnalysisJob {
                        failure: Some(format!("{status}: {reason}")),
                        ..job
                    }))
                }
            });
        }
        // A failed job is tried again after regenerateEvery, or when the spec changes.
        let started = crate::time::parse_date(&job.started_at).unwrap_or(0);
        if now - started < spec.regenerate_every.as_nanos() as Instant {
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
        start: seconds(spec.window_start(now)),
        end: seconds(now),
    };
    match access_analyzer::start_policy_generation(&analyzer, &live.arn, &trail, window).await {
        Ok(job_id) => Ok(Turn::Pending(Generation::Running(AnalysisJob {
            source: JobSource::AccessAnalyzer,
            job_id,
            started_at: now_text.to_string(),
            inputs,
            ..AnalysisJob::default()
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
pub(super) async fn analyzer_usage(
    asker: &Asker<'_, '_>,
    trail: Option<&S3TrailSource>,
    policies: &[String],
) -> Result<Gathered, Error> {
    let (spec, now) = (asker.spec, asker.now);
    let (logs, days_without_files) = match trail {
        Some(trail) => {
            let (usage, missing, _) = scan(asker, trail, None).await?;
            (Some(usage), missing)
        }
        None => (None, Vec::new()),
    };
    let generated = from_generated(policies, &spec.placeholders, logs.as_ref(), &rfc3339(now))
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
        shadow_usage: None,
    })
}

/// What an analysis starts from: the role's usage, the Access Analyzer placeholders nothing
/// filled, and the window's days without trail files.
pub(super) struct Gathered {
    pub usage: Usage,
    pub unresolved: Vec<Unresolved>,
    pub days_without_files: Vec<String>,
    /// The calls since the shadow period began, when there is one.
    pub shadow_usage: Option<Usage>,
}

/// What IAM said about the instance profiles a role passed.
struct KnownProfiles {
    roles: ProfileRoles,
    /// Why IAM did not say, by the profile's ARN as the role passed it.
    reasons: BTreeMap<String, String>,
}

/// Asks IAM which roles the passed instance profiles of the role's account hold
/// (GetInstanceProfile). A profile IAM does not answer for stays unresolved, with a note; the
/// analysis goes on.
async fn instance_profiles(iam: &Iam, role_arn: &str, usage: &Usage) -> KnownProfiles {
    let arn: Vec<&str> = role_arn.splitn(6, ':').collect();
    let (partition, account) = (arn.get(1).copied(), arn.get(4).copied());
    let (partition, account) = (partition.unwrap_or("aws"), account.unwrap_or_default());
    let mut known = KnownProfiles {
        roles: ProfileRoles::new(),
        reasons: BTreeMap::new(),
    };
    for (passed, name) in profiles_to_ask(usage, account) {
        match iam::instance_profile_roles(iam, &name).await {
            Ok(roles) if roles.is_empty() => {
                let reason = "IAM says it holds no role".to_string();
                known.reasons.insert(passed, reason);
            }
            Ok(roles) => {
                let profile = format!("arn:{partition}:iam::{account}:instance-profile/{name}");
                known.roles.insert(profile, roles.into_iter().collect());
            }
            Err(e) => {
                let reason = crate::controller::plan::bounded(format!("GetInstanceProfile: {e}"));
                known.reasons.insert(passed, reason);
            }
        }
    }
    known
}

/// Generates the role's policy from `usage`, cut to what the role holds now, with IAM's
/// last-accessed data keeping what the window missed.
pub(super) async fn analyze(
    spec: &ValidSpec<'_>,
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
        shadow_usage,
    } = gathered;
    // A trail is read in whole days: the window starts at the first day's midnight.
    let from = match spec.source {
        Source::Trail(_) | Source::Athena(_) => Day::of(spec.window_start(now)).start(),
        Source::AccessAnalyzer { .. } => spec.window_start(now),
    };
    let used = used_actions(&usage);
    // Without the report (an endpoint or operator role without it, a failed job) the
    // analysis still stands; the plan keeps Enforce from applying it unless the spec says
    // the report is not required.
    let last_accessed =
        iam::service_last_accessed(iam, &live.arn, LAST_ACCESSED_POLL, LAST_ACCESSED_TIMEOUT)
            .await
            .map_err(|e| crate::controller::plan::bounded(e.to_string()));
    let last_accessed_window = spec.last_accessed_window;
    let at = Timestamp::from_nanosecond(now).expect("the clock reads a valid time");
    let current = live.documents();
    let allowed = allowed(&current);
    let granted = &allowed.names;
    let mut seen_by_iam = match &last_accessed {
        Ok(last) => seen_not_in_window(last, &used, at, last_accessed_window),
        Err(_) => Vec::new(),
    };
    // Only what the role holds now can be kept; the rest IAM saw under earlier policies.
    seen_by_iam.retain(|s| granted.contains(&s.action));
    let mut keep = spec.keep_on(now_text.get(..10).unwrap_or(now_text));
    keep.extend(seen_by_iam.iter().map(|s| Keep {
        action: s.action.clone(),
        resource: None,
    }));
    // The spec's hints first; IAM is asked about the rest.
    let mut usage = usage;
    resolve_instance_profiles(&mut usage, &spec.instance_profiles);
    let known = instance_profiles(iam, &live.arn, &usage).await;
    resolve_instance_profiles(&mut usage, &known.roles);
    let unresolved_profiles = (usage.instance_profiles.keys())
        .map(|profile| UnresolvedInstanceProfile {
            instance_profile: profile.clone(),
            reason: (known.reasons.get(profile).cloned()).unwrap_or_else(|| {
                "not of the role's account, or past the profiles asked per analysis: give \
                 spec.instanceProfiles"
                    .to_string()
            }),
        })
        .collect();
    let options = GenerateOptions {
        keep,
        forbid: spec.forbid.clone(),
        current: current.clone(),
        ..Default::default()
    };
    let generating =
        tokio::task::spawn_blocking(move || generate(&usage, &options).map(|g| (g, usage)));
    let (generated, usage) = crate::panic::joined(generating.await)
        .map_err(|message| Error::Panic(format!("generating the policy: {message}")))?
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
        denied_attempts: usage
            .denied
            .values()
            .fold(0u64, |n, d| n.saturating_add(d.count)),
        unmapped: usage
            .unmapped
            .values()
            .fold(0u64, |n, d| n.saturating_add(d.count)),
        last_accessed: (last_accessed.as_ref().ok())
            .map(|last| last_accessed_report(last, &used, at, last_accessed_window)),
        last_accessed_unavailable: last_accessed.err(),
        inputs: Some(plan::analysis_inputs(spec)),
        skipped: stats.skipped.clone(),
        days_without_files_count: days_without_files.len() as u64,
        days_without_files: days_without_files.into_iter().take(REPORT_LIMIT).collect(),
        previous_events_matched: None,
    };
    Ok(AnalysisResult {
        unresolved_profiles,
        analysis,
        generated,
        seen_by_iam,
        unresolved,
        validation: None,
        shadow_usage,
    })
}

/// Access Analyzer's checks of a proposal: ValidatePolicy on each document, CheckNoNewAccess
/// against the role's policies, CheckAccessNotGranted for `forbid`.
pub(super) async fn check_proposal(
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
pub(super) fn one_document(documents: &[Policy]) -> String {
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
pub(super) fn used_actions(usage: &Usage) -> BTreeSet<String> {
    usage
        .actions
        .keys()
        .filter_map(|name| catalog().action(name).map(|a| a.full_name()))
        .collect()
}

/// IAM's view for `status.analysis.lastAccessed`, lists cut to [`REPORT_LIMIT`].
pub(super) fn last_accessed_report(
    last: &LastAccessed,
    used: &BTreeSet<String>,
    now: Timestamp,
    window: Duration,
) -> LastAccessedReport {
    let stale = not_recently_used(last, now, window);
    fn cut<T>(mut list: Vec<T>) -> Vec<T> {
        list.truncate(REPORT_LIMIT);
        list
    }
    LastAccessedReport {
        services_not_recently_used_count: stale.services.len() as u64,
        services_not_recently_used: cut(stale.services),
        actions_not_recently_used_count: stale.actions.len() as u64,
        actions_not_recently_used: cut(stale.actions),
        seen_without_action_data: cut(services_seen_without_action_data(last, used, now, window)),
    }
}
