//! The Approved condition: whether the proposal may be applied now — Enforce, a valid and
//! complete proposal, proven to grant nothing the role lacks, past Access Analyzer's gate,
//! and approved (by its revision, or automatically when it only removes and the evidence
//! is thick enough).

use super::EventType;
use super::builder::{Builder, ConditionType, FALSE, TRUE, UNKNOWN};
use super::proposal::proposal_documents;
use super::rollback::{Ceiling, rollback, rollback_wanted};
use super::shadow::shadow_hold;
use crate::controller::crd::{Analysis, Approval, DriftAction, Mode, Proposal, ValidationSpec};
use crate::controller::spec::ValidSpec;
use crate::policy::Policy;
use crate::policy::analysis::{Proof, grants_no_new_access};
use crate::role::LiveRole;

/// What the Approved stage leaves for the stages after it.
pub(super) struct Decision {
    /// The proposal to apply now, and its documents.
    pub applying: Option<(Proposal, Vec<Policy>)>,
    /// The proposal's revision and documents, when it has valid ones: drift of that revision
    /// can be put back.
    pub documents: Option<(String, Vec<Policy>)>,
    /// Enforce with drift Revert, and no proposal that fails its proof.
    pub may_revert: bool,
    /// When `applying` is a rollback: what its states are proven against instead of the role.
    pub ceiling: Option<Ceiling>,
}

pub(super) fn approved(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) -> Decision {
    let proposal = b.status.proposal.clone();
    let parsed = proposal.as_ref().map(|p| (p, proposal_documents(p)));
    let mut decision = Decision {
        applying: None,
        documents: match &parsed {
            Some((p, Ok(docs))) => Some((p.revision.clone(), docs.clone())),
            _ => None,
        },
        may_revert: spec.mode == Mode::Enforce && spec.drift.action == DriftAction::Revert,
        ceiling: None,
    };
    if spec.mode != Mode::Enforce {
        let message = format!("mode {:?} never writes to IAM", spec.mode);
        b.set(ConditionType::Approved, FALSE, "NotEnforcing", message);
        return decision;
    }
    if let Some(revision) = rollback_wanted(spec) {
        if let Some(r) = rollback(b, revision, live) {
            decision.documents = Some((revision.to_string(), r.documents.clone()));
            let applied = b.status.applied.as_ref().map(|a| a.revision.as_str());
            if applied != Some(revision) {
                decision.applying = Some((r.proposal, r.documents));
                decision.ceiling = Some(r.ceiling);
            }
        }
        return decision;
    }
    let (p, docs) = match parsed {
        None => {
            b.set(
                ConditionType::Approved,
                UNKNOWN,
                "AwaitingProposal",
                "no proposal yet",
            );
            return decision;
        }
        Some((_, Err(e))) => {
            b.set(ConditionType::Approved, FALSE, "InvalidProposal", e.clone());
            b.fail("InvalidProposal", e);
            return decision;
        }
        Some((p, Ok(docs))) => (p, docs),
    };
    let applied = b.status.applied.as_ref().map(|a| a.revision.as_str());
    if applied == Some(p.revision.as_str()) {
        let message = format!("{} is applied", p.revision);
        b.set(ConditionType::Approved, TRUE, "Applied", message);
    } else if !p.unresolved_placeholders.is_empty() {
        let list: Vec<String> = p
            .unresolved_placeholders
            .iter()
            .map(|u| {
                format!(
                    "{} in {} on {}",
                    u.placeholders.join(", "),
                    u.action,
                    u.resource
                )
            })
            .collect();
        let message = format!(
            "{} leaves Access Analyzer placeholders unresolved: {}; give spec.placeholders or cloudTrail.s3 for their ARNs",
            p.revision,
            list.join("; ")
        );
        b.set(
            ConditionType::Approved,
            FALSE,
            "UnresolvedPlaceholders",
            message.clone(),
        );
        b.fail("UnresolvedPlaceholders", message);
    } else if !p.unresolved_instance_profiles.is_empty() {
        // Applying it would break the next launch with the profile: no PassRole for its role.
        let list: Vec<String> = (p.unresolved_instance_profiles.iter())
            .map(|u| format!("{} ({})", u.instance_profile, u.reason))
            .collect();
        let message = format!(
            "{} has no iam:PassRole for instance profiles the role passed whose roles are \
             unknown: {}; give spec.instanceProfiles (profile: role ARN)",
            p.revision,
            list.join("; ")
        );
        b.set(
            ConditionType::Approved,
            FALSE,
            "UnresolvedInstanceProfiles",
            message.clone(),
        );
        b.fail("UnresolvedInstanceProfiles", message);
    } else if let Some(why) =
        (p.last_accessed_unavailable.as_ref()).filter(|_| spec.last_accessed.required)
    {
        let message = format!(
            "{} was made without IAM's last-accessed data ({why}), which may have kept \
             permissions the trail missed; it is applied once an analysis has it, or with \
             spec.lastAccessed.required: false",
            p.revision
        );
        b.set(
            ConditionType::Approved,
            FALSE,
            "LastAccessedUnavailable",
            message.clone(),
        );
        b.fail("LastAccessedUnavailable", message);
    } else if p.would_deny_count > 0 {
        // The window's own calls, replayed: an apply that breaks one of them waits.
        let shown: Vec<String> = (p.would_deny.iter().take(5))
            .map(|w| {
                format!(
                    "{} on {} ({}×, last {})",
                    w.action, w.resource, w.count, w.last_seen
                )
            })
            .collect();
        let message = format!(
            "{} would deny {} (action, resource) pairs the role used and its policies allow: {}{}; \
             usually pairs the cut could not prove the role holds (status.proposal.dropped)",
            p.revision,
            p.would_deny_count,
            shown.join("; "),
            if p.would_deny_count > 5 { "; …" } else { "" }
        );
        let before = (b.observed.previous.conditions.iter())
            .find(|c| c.type_ == ConditionType::Approved.as_str());
        if before.is_none_or(|c| c.reason != "WouldDeny") {
            b.event(EventType::Warning, "WouldDeny", message.clone());
        }
        b.set(ConditionType::Approved, FALSE, "WouldDeny", message);
    } else if docs.is_empty() {
        b.set(
            ConditionType::Approved,
            FALSE,
            "EmptyProposal",
            "the proposal grants nothing; iam-tailor does not strip a role of all access",
        );
    } else if let Proof::CannotProve(reasons) = grants_no_new_access(&docs, &live.documents()) {
        let message = format!(
            "{} may grant access the role does not have: {}",
            p.revision,
            reasons.join("; ")
        );
        b.event(EventType::Warning, "NotProvablyNarrower", message.clone());
        b.set(
            ConditionType::Approved,
            FALSE,
            "NotProvablyNarrower",
            message.clone(),
        );
        b.fail("NotProvablyNarrower", message);
        // Nothing is written while a proposal cannot be proven safe.
        decision.may_revert = false;
    } else if let Some(Err((reason, message))) =
        // Access Analyzer's verdicts, when asked for, block even an approved revision.
        (spec.validation.access_analyzer).then(|| gate(p, &spec.validation))
    {
        let before = (b.observed.previous.conditions.iter())
            .find(|c| c.type_ == ConditionType::Approved.as_str());
        if before.is_none_or(|c| c.reason != reason) {
            b.event(EventType::Warning, reason, message.clone());
        }
        b.set(ConditionType::Approved, FALSE, reason, message.clone());
        b.fail(reason, message);
    } else if let Some(held) =
        (spec.shadow).and_then(|gate| shadow_hold(gate, b.status.shadow.as_ref(), &p.revision))
    {
        b.set(ConditionType::Approved, FALSE, "ShadowPeriod", held);
    } else {
        let thin = match spec.approval {
            Approval::Automatic => thin_evidence(spec, b.status.analysis.as_ref()),
            Approval::Manual => None,
        };
        let approved = match spec.approval {
            Approval::Automatic => p.adds == 0 && thin.is_none(),
            Approval::Manual => spec.approved_revision.as_deref() == Some(p.revision.as_str()),
        };
        if approved {
            let message = format!("{} approved ({:?})", p.revision, spec.approval);
            b.set(ConditionType::Approved, TRUE, "Approved", message);
            decision.applying = Some((p.clone(), docs));
        } else if let Some(thin) = thin {
            let message = format!(
                "the analysis behind {} is too thin for Automatic approval: \
                 {thin}; set spec.approvedRevision to {} to apply it anyway",
                p.revision, p.revision
            );
            b.set(
                ConditionType::Approved,
                FALSE,
                "InsufficientEvidence",
                message,
            );
        } else {
            let why = match spec.approval {
                Approval::Manual => String::new(),
                Approval::Automatic => format!(
                    "it adds {} actions, so Automatic approval does not apply it; ",
                    p.adds
                ),
            };
            let message = format!(
                "{why}set spec.approvedRevision to {} to apply it",
                p.revision
            );
            b.set(ConditionType::Approved, FALSE, "AwaitingApproval", message);
        }
    }
    decision
}

/// Why the analysis is too thin to apply its proposal without a human (`spec.evidence`):
/// too few of the role's events, too many days without trail files, or a sharp drop in
/// matched events from the analysis before. Only trail files are counted: an Access Analyzer
/// analysis without `cloudTrail.s3` has no files of its own.
fn thin_evidence(spec: &ValidSpec, analysis: Option<&Analysis>) -> Option<String> {
    let a = analysis?;
    let e = &spec.evidence;
    let mut why = Vec::new();
    if spec.source.counts_events() && a.events_matched < e.min_matched_events {
        why.push(format!(
            "{} of the role's events in the window (evidence.minMatchedEvents {})",
            a.events_matched, e.min_matched_events
        ));
    }
    if a.days_without_files_count > e.max_days_without_files {
        let shown: Vec<&str> = a
            .days_without_files
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        why.push(format!(
            "{} days of the window without a trail file ({}{}) (evidence.maxDaysWithoutFiles {})",
            a.days_without_files_count,
            shown.join(", "),
            if a.days_without_files_count > 5 {
                ", …"
            } else {
                ""
            },
            e.max_days_without_files
        ));
    }
    if let Some(before) = a.previous_events_matched
        && before > 0
        && u128::from(a.events_matched) * 100
            < u128::from(before) * u128::from(100 - e.max_drop_percent.min(100))
    {
        why.push(format!(
            "the role's events fell from {before} to {} since the last analysis, more than \
             evidence.maxDropPercent {}%",
            a.events_matched, e.max_drop_percent
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// Access Analyzer's verdicts on `proposal` as a gate: the first that blocks, as a condition
/// reason and message.
fn gate(proposal: &Proposal, spec: &ValidationSpec) -> Result<(), (&'static str, String)> {
    let revision = &proposal.revision;
    let Some(validation) = &proposal.validation else {
        return Err((
            "AwaitingValidation",
            format!("{revision} has not been through Access Analyzer's checks yet"),
        ));
    };
    let blocking: Vec<String> = validation
        .findings
        .iter()
        .filter(|f| matches!(f.severity.as_str(), "ERROR" | "SECURITY_WARNING"))
        .filter(|f| !spec.allow.contains(&f.code))
        .map(|f| {
            format!(
                "{} {} at {}: {}",
                f.severity,
                f.code,
                f.locations.join(", "),
                f.message
            )
        })
        .collect();
    if !blocking.is_empty() {
        return Err((
            "ValidationFindings",
            format!(
                "Access Analyzer's ValidatePolicy on {revision}: {} (list a code in spec.validation.allow to accept it)",
                blocking.join("; ")
            ),
        ));
    }
    if !validation.no_new_access.passed {
        return Err((
            "AccessAnalyzerDisagrees",
            format!(
                "iam-tailor proved {revision} grants nothing the role lacks, but Access Analyzer's CheckNoNewAccess fails it: {}",
                validation.no_new_access.reasons.join("; ")
            ),
        ));
    }
    if let Some(check) = validation.access_not_granted.as_ref().filter(|c| !c.passed) {
        return Err((
            "ForbiddenAccessGranted",
            format!(
                "Access Analyzer's CheckAccessNotGranted finds spec.forbid access in {revision}: {}",
                check.reasons.join("; ")
            ),
        ));
    }
    Ok(())
}
