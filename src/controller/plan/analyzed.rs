//! The Analyzed condition: the analysis the shell ran this time, or where an Access Analyzer
//! generation stands; and the pure decision of when the shell analyzes.

use super::builder::{Builder, ConditionType, FALSE, TRUE, UNKNOWN};
use super::{EventType, Generation};
use crate::controller::crd::{
    AnalysisJob, JobSource, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus, Mode,
};
use crate::controller::spec::ValidSpec;
use crate::time::Instant;

/// Publishes this time's analysis and sets Analyzed; the seconds until the next look when
/// an Access Analyzer job is under way.
pub(super) fn analyzed(b: &mut Builder) -> Option<u64> {
    let observed = b.observed;
    if let Some(result) = &observed.analysis {
        let a = &result.analysis;
        let mut note = format!(
            "{} of {} granted actions used, {} unused",
            a.used_actions, a.granted_actions, a.unused_actions
        );
        if !result.generated.dropped.is_empty() {
            note.push_str(&format!(
                "; {} used (action, resource) pairs left out: the role's policies do not grant them",
                result.generated.dropped.len()
            ));
        }
        b.event(EventType::Normal, "Analyzed", note);
        let mut a = a.clone();
        a.previous_events_matched = observed
            .previous
            .analysis
            .as_ref()
            .map(|p| p.events_matched);
        b.status.analysis = Some(a);
        b.status.job = None;
    }
    last_accessed_available(b);
    let poll = Some(observed.analyzer_poll_secs);
    match (&b.status.analysis, &observed.analyzer) {
        (_, Some(Generation::QuotaExceeded { message })) => {
            let message = format!("Access Analyzer quota: {message}; retrying after 00:00 UTC");
            b.set(
                ConditionType::Analyzed,
                FALSE,
                "QuotaExceeded",
                message.clone(),
            );
            b.fail("QuotaExceeded", message);
            Some(seconds_to_utc_midnight(&observed.now))
        }
        (_, Some(Generation::Failed(job))) => {
            let message = format!(
                "Access Analyzer job {} failed: {}",
                job.job_id,
                job.failure.as_deref().unwrap_or("no reason given")
            );
            if b.status.job.as_ref() != Some(job) {
                b.event(EventType::Warning, "GenerationFailed", message.clone());
            }
            b.status.job = Some(job.clone());
            b.set(
                ConditionType::Analyzed,
                FALSE,
                "GenerationFailed",
                message.clone(),
            );
            b.fail("GenerationFailed", message);
            None
        }
        (None, Some(Generation::Running(job))) => {
            b.status.job = Some(job.clone());
            let (reason, message) = running(job);
            b.set(ConditionType::Analyzed, UNKNOWN, reason, message);
            Some(poll_secs(observed.analyzer_poll_secs, job))
        }
        (None, Some(Generation::Queued { message })) => {
            b.set(
                ConditionType::Analyzed,
                UNKNOWN,
                "WaitingForAccessAnalyzer",
                message.clone(),
            );
            poll
        }
        (Some(a), generation) => {
            let message = format!("CloudTrail {} to {}", a.window_start, a.window_end);
            // A regeneration under way keeps the last analysis until it is done.
            match generation {
                Some(Generation::Running(job)) => b.status.job = Some(job.clone()),
                _ if observed.analysis.is_none() => {}
                _ => b.status.job = None,
            }
            b.set(ConditionType::Analyzed, TRUE, "Analyzed", message);
            match generation {
                Some(Generation::Running(job)) => Some(poll_secs(observed.analyzer_poll_secs, job)),
                Some(_) => poll,
                None => None,
            }
        }
        (None, None) => {
            b.set(
                ConditionType::Analyzed,
                UNKNOWN,
                "AwaitingAnalysis",
                "no analysis yet",
            );
            None
        }
    }
}

/// LastAccessedAvailable: whether the published analysis had IAM's last-accessed data; a
/// Warning when this time's did not.
fn last_accessed_available(b: &mut Builder) {
    let Some(analysis) = &b.status.analysis else {
        b.set(
            ConditionType::LastAccessedAvailable,
            UNKNOWN,
            "AwaitingAnalysis",
            "no analysis yet",
        );
        return;
    };
    match &analysis.last_accessed_unavailable {
        None if analysis.last_accessed.is_some() => b.set(
            ConditionType::LastAccessedAvailable,
            TRUE,
            "LastAccessedAvailable",
            "",
        ),
        // An analysis from before this condition existed.
        None => b.set(
            ConditionType::LastAccessedAvailable,
            UNKNOWN,
            "AwaitingAnalysis",
            "the analysis does not say",
        ),
        Some(why) => {
            let message = format!(
                "IAM's last-accessed data could not be had: {why}; the analysis stands without \
                 it (nothing kept for it), and Enforce applies its proposal only with \
                 spec.lastAccessed.required: false"
            );
            if b.observed.analysis.is_some() {
                b.event(
                    EventType::Warning,
                    "LastAccessedUnavailable",
                    message.clone(),
                );
            }
            b.set(
                ConditionType::LastAccessedAvailable,
                FALSE,
                "LastAccessedFailed",
                message,
            );
        }
    }
}

/// Seconds between looks at a running job: Access Analyzer's as configured; Athena's queries
/// take seconds, and a look costs at most one poll per query per second however many wait.
fn poll_secs(analyzer_poll_secs: u64, job: &AnalysisJob) -> u64 {
    match job.source {
        JobSource::AccessAnalyzer => analyzer_poll_secs,
        JobSource::Athena => ATHENA_LOOK_SECS,
    }
}

/// Seconds between looks at a resource waiting for Athena queries.
pub const ATHENA_LOOK_SECS: u64 = 5;

/// Analyzed's reason and message while `job` runs.
fn running(job: &AnalysisJob) -> (&'static str, String) {
    match job.source {
        JobSource::AccessAnalyzer => (
            "GenerationRunning",
            format!(
                "Access Analyzer job {} running since {}",
                job.job_id, job.started_at
            ),
        ),
        JobSource::Athena => (
            "AthenaQueriesRunning",
            format!(
                "{} of {} days answered; Athena queries running since {}: {}",
                job.days_answered.unwrap_or(0),
                job.days.unwrap_or(0),
                job.started_at,
                if job.job_id.is_empty() {
                    "waiting to start"
                } else {
                    &job.job_id
                }
            ),
        ),
    }
}

/// Seconds from `now` (RFC 3339) to the next 00:00 UTC, when Access Analyzer's daily quota
/// starts again; an hour if `now` does not parse.
fn seconds_to_utc_midnight(now: &str) -> u64 {
    const DAY: i128 = 86_400;
    match crate::time::parse_date(now) {
        Some(nanos) => {
            let secs = nanos.div_euclid(1_000_000_000);
            (DAY - secs.rem_euclid(DAY)) as u64
        }
        None => 3_600,
    }
}

/// `sha256:` of the spec fields an analysis depends on ([`Analysis::inputs`]).
pub fn analysis_inputs(spec: &LeastPrivilegeRoleSpec) -> String {
    let mut inputs = serde_json::json!({
        "roleName": spec.role_name,
        "roleArn": spec.role_arn,
        "assumeRoleArn": spec.assume_role_arn,
        "cloudTrail": spec.cloud_trail,
        "placeholders": spec.placeholders,
        "window": spec.window,
        "lastAccessed": spec.last_accessed,
        "keep": spec.keep,
        "forbid": spec.forbid,
        "validation": spec.validation,
        "proposes": spec.mode != Mode::Observe,
    });
    // Only when given, so resources without it keep their inputs across the upgrade.
    if !spec.instance_profiles.is_empty() {
        inputs["instanceProfiles"] = serde_json::json!(spec.instance_profiles);
    }
    crate::policy::canonical::sha256_revision(&inputs.to_string())
}

/// How soon Enforce analyzes again when the last analysis lacked IAM's last-accessed data
/// and the spec requires it.
pub const LAST_ACCESSED_RETRY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Whether to analyze now: never analyzed, the inputs changed, a shadow period ended
/// unreplayed, the last one is older than `regenerateEvery` (or [`LAST_ACCESSED_RETRY`] while
/// Enforce waits for last-accessed data or instance profiles' roles), or its end time does not parse
/// (a hand-edited status).
pub fn analysis_due(spec: &ValidSpec, previous: &LeastPrivilegeRoleStatus, now: Instant) -> bool {
    let Some(last) = &previous.analysis else {
        return true;
    };
    if last.inputs.as_deref() != Some(analysis_inputs(spec).as_str()) {
        return true;
    }
    // A shadow period that has run its length is replayed once more to open the gate.
    if super::shadow::shadow_ready_unchecked(spec, previous.shadow.as_ref())
        .is_some_and(|ready| now >= ready)
    {
        return true;
    }
    // Enforce waiting for IAM's last-accessed data, or for the roles of instance profiles,
    // asks again sooner than regenerateEvery.
    let unresolved_profiles =
        (previous.proposal.as_ref()).is_some_and(|p| p.unresolved_instance_profiles_count > 0);
    let waiting = (spec.last_accessed.required && last.last_accessed_unavailable.is_some())
        || unresolved_profiles;
    let every = if spec.mode == Mode::Enforce && waiting {
        spec.regenerate_every.min(LAST_ACCESSED_RETRY)
    } else {
        spec.regenerate_every
    };
    match crate::time::parse_date(&last.window_end) {
        Some(end) => now - end >= every.as_nanos() as Instant,
        None => true,
    }
}
