//! The pure core of reconcile: spec + what the shell observed → IAM operations, status, events.
//!
//! Reconcile observes (Kubernetes and AWS reads), calls [`plan`], applies
//! [`Plan::operations`] in order, then writes [`Plan::status`] and records [`Plan::events`].
//! Nothing here does I/O or reads the clock, so every decision is unit-tested from fixtures.
//!
//! The status a plan returns describes the role *after* its operations succeed; when an
//! operation fails the shell reports that instead of writing it.
//!
//! A proposal may hold several documents (IAM's size limit). Its `policy` is the JSON array of
//! the documents' compact canonical JSON, in generator order, and its revision is
//! `sha256:` of exactly that string ([`set_revision`]), so anyone can check it from the
//! status alone. Document *i* (from 0) becomes the managed policy [`LiveRole::policy_name`],
//! at path `/` in the role's account.
//!
//! Nothing is written unless every state the role passes through is proven within what it
//! holds now ([`crate::role::proof::prove_each_state`]); a Deny iam-tailor did not write and
//! the permissions boundary are never removed ([`crate::role::proof::guard`], Restore
//! included).
//!
//! The stages, each in its own file, each setting its conditions: [`validate`](super::spec)
//! (InvalidSpec), the pin and claim (RoleChanged, RoleClaimed), `analyzed` (Analyzed,
//! LastAccessedAvailable), `trust` (TrustOK), `boundary` (BoundaryInPlace), `proposal`
//! (ProposalReady), `approved` (Approved), `sync` (InSync, Drifted: apply or
//! revert), `backup` (no write without it), then the claim before a first write and Ready.
//! `cleanup` is the finalizer's plan.

mod analyzed;
mod approved;
mod backup;
mod boundary;
mod builder;
mod cleanup;
mod proposal;
mod restore;
mod rollback;
mod shadow;
mod sync;
mod trust;

pub use analyzed::{ATHENA_LOOK_SECS, analysis_due, analysis_inputs};
pub use backup::{StoredBackup, backup_config_map, original_config_map};
pub use backup::{backup_aws_managed, original_needed};
pub use boundary::declared_boundary_to_read;
pub use builder::{apply_failed, bounded, failed};
pub use cleanup::plan_cleanup;
pub use restore::{MAX_RESTORED, RESTORE_POLICY, restore_since};
pub use rollback::{MAX_ROLLBACK_CANDIDATES, rollback_wanted};
pub use shadow::shadow_since;

use super::crd::{
    Analysis, AnalysisJob, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus, PinnedRole, Validation,
};
use super::spec::{ClusterTrailSeen, Limits, validate};
use crate::generate::analyzer::Unresolved;
use crate::generate::{Generated, SeenByIam};
use crate::policy::Policy;
use crate::role::{CLAIM_TAG, CustomerPolicyNow, LiveRole, Operation, RoleState};
use crate::usage::Usage;
use builder::{Builder, ConditionType, FALSE, TRUE, UNKNOWN};
use std::collections::BTreeMap;

/// How many earlier applied revisions the status keeps for rollback.
const HISTORY_LIMIT: usize = 10;
/// Retry interval while the role does not exist: someone has to create it, no hurry.
const ROLE_NOT_FOUND_RETRY_SECS: u64 = 600;
/// After writing, look again soon to confirm the role reads back as planned.
const VERIFY_AFTER_SECS: u64 = 30;
/// After claiming a role, look again (and then write) this soon.
const CLAIM_CONFIRM_SECS: u64 = 1;

/// What the shell observed this time.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The resource's `metadata.generation`.
    pub generation: i64,
    /// RFC 3339, from the caller's clock.
    pub now: String,
    /// The status as last written (default for a new resource).
    pub previous: LeastPrivilegeRoleStatus,
    pub role: RoleState,
    /// The resource's `metadata.uid`: names the backup ConfigMap.
    pub uid: String,
    /// The backup ConfigMap ([`backup_config_map`]) in the operator's namespace, when it
    /// exists.
    pub backup: Option<StoredBackup>,
    /// The role's kept original ([`original_config_map`]), read when the role is found and this
    /// resource has no backup yet, or is being deleted.
    pub original: Option<StoredBackup>,
    /// The operator's namespace, where backups live.
    pub backup_namespace: String,
    /// Present when the shell ran a generation this time (create, spec change,
    /// `regenerateEvery` elapsed).
    pub analysis: Option<AnalysisResult>,
    /// Where an Access Analyzer generation stands when one is under way and no analysis came
    /// of it this time.
    pub analyzer: Option<Generation>,
    /// How often to poll a running Access Analyzer job, in seconds.
    pub analyzer_poll_secs: u64,
    /// What the cluster's operators allow every resource.
    pub limits: Limits,
    /// The accounts the tenancy configuration lets every role trust besides its own.
    pub trusted_accounts: Vec<String>,
    /// The `ClusterTrail` the spec names, as found.
    pub cluster_trail: ClusterTrailSeen,
    /// Read when [`rollback_wanted`]: per document index (0, 1, … up to the first of
    /// iam-tailor's policies that does not exist), the documents of the versions IAM keeps
    /// of that policy, newest first; or why they could not be read.
    pub rollback: Option<Result<Vec<Vec<Policy>>, String>>,
    /// Read when [`declared_boundary_to_read`] names a policy: its default document, or why
    /// it could not be read.
    pub declared_boundary: Option<Result<Policy, String>>,
    /// The role's calls since [`restore_since`], read when it says so.
    pub after_apply: Option<Usage>,
    /// Read when [`original_needed`]: the documents of the AWS managed policies the backup
    /// lists ([`backup_aws_managed`]), by ARN, as IAM has them now; or why they could not be
    /// read. With the backup, they are the role's original policies.
    pub original_aws_managed: Option<Result<BTreeMap<String, Policy>, String>>,
    /// Read for Restore: the backup's customer-managed policies as IAM has them now, by ARN
    /// (or why one could not be read).
    pub customer_policies: BTreeMap<String, Result<CustomerPolicyNow, String>>,
}

/// An Access Analyzer generation that has not (yet) given an analysis.
#[derive(Clone, Debug, PartialEq)]
pub enum Generation {
    /// Started now, or still running: poll again.
    Running(AnalysisJob),
    /// Another job runs in the account (Access Analyzer runs one at a time): wait our turn.
    Queued { message: String },
    /// The account's daily job quota is used up.
    QuotaExceeded { message: String },
    /// The job ended without a policy ([`AnalysisJob::failure`] says why).
    Failed(AnalysisJob),
}

/// One run of the generator, done by the shell.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisResult {
    /// The counts published in `status.analysis` (granted and unused included).
    pub analysis: Analysis,
    /// Generated with `current` = the role's live policies, `keep` and `forbid` from the spec.
    pub generated: Generated,
    /// Granted actions kept because IAM saw them used recently (in `generated` as keeps).
    pub seen_by_iam: Vec<SeenByIam>,
    /// Access Analyzer placeholders nothing filled (left out of `generated`).
    pub unresolved: Vec<Unresolved>,
    /// Instance profiles the role passed whose roles neither the spec nor IAM gave.
    pub unresolved_profiles: Vec<crate::controller::crd::UnresolvedInstanceProfile>,
    /// Access Analyzer's checks of the generated documents, when the spec asks for them.
    pub validation: Option<Validation>,
    /// The role's calls from the day its shadow period began ([`shadow_since`]), to replay
    /// the shadowed proposal against.
    pub shadow_usage: Option<Usage>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// A Kubernetes Event the shell records on the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    pub type_: EventType,
    /// UpperCamelCase.
    pub reason: String,
    pub note: String,
}

/// When to reconcile again if nothing changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    After(u64),
    /// Only a change to the resource helps (an invalid spec).
    AwaitChange,
}

/// Everything reconcile does this time.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub operations: Vec<Operation>,
    pub status: LeastPrivilegeRoleStatus,
    /// What the observation showed (analysis, proposal, drift): recorded whatever happens next.
    /// Each operation has its own event ([`operation_event`]), recorded as it succeeds.
    pub events: Vec<PlannedEvent>,
    /// Events that are true only once every operation succeeded (PolicyApplied).
    pub completion: Vec<PlannedEvent>,
    /// Permissions given back (`status.restore`) once every operation succeeded, by access
    /// level: counted in `iam_tailor_permissions_restored_total{access_level}`.
    pub restored: std::collections::BTreeMap<String, u64>,
    pub requeue: Requeue,
}
/// IAM attaches at most this many managed policies to a role (the raised quota; 10 by
/// default), so no proposal has more documents.
pub const MAX_DOCUMENTS: usize = 20;

/// The JSON array of the documents' canonical JSON: `status.proposal.policy`.
pub fn set_json(documents: &[Policy]) -> String {
    let parts: Vec<String> = documents.iter().map(Policy::canonical_json).collect();
    format!("[{}]", parts.join(","))
}

/// `sha256:` of [`set_json`]: the revision of a policy set.
pub fn set_revision(documents: &[Policy]) -> String {
    crate::policy::canonical::sha256_revision(&set_json(documents))
}

/// The Warning for a status the operator did not seal (`controller::seal`): its gate state is
/// not believed, so the gates start again.
pub fn status_not_sealed() -> PlannedEvent {
    PlannedEvent {
        type_: EventType::Warning,
        reason: "StatusNotSealed".to_string(),
        note: "the status does not carry iam-tailor's seal (written by someone else, or before \
               the operator's key): its analysis, proposal, shadow period, job and restore are \
               not believed and start again; leastprivilegeroles/status is the operator's alone"
            .to_string(),
    }
}

/// The Event of one operation that succeeded ([`Operation::event`]).
pub fn operation_event(op: &Operation) -> PlannedEvent {
    let (reason, note) = op.event();
    PlannedEvent {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note,
    }
}

/// Spec + observation → operations, status and events; see the module docs. Each stage sets
/// its conditions in its own file, in the order the data flows.
pub fn plan(spec: &LeastPrivilegeRoleSpec, observed: &Observed) -> Plan {
    let mut b = Builder::new(observed);
    let spec = match validate(spec, &observed.limits, &observed.cluster_trail) {
        Ok(spec) => spec,
        Err(message) => {
            b.set(ConditionType::Ready, FALSE, "InvalidSpec", message);
            return b.finish(Requeue::AwaitChange);
        }
    };
    if let RoleState::Found(live) = &observed.role {
        if let Some((reason, message)) = not_ours(&observed.previous, live, &observed.uid) {
            b.set(ConditionType::Ready, FALSE, reason, message);
            let requeue = match reason {
                // Only a spec revert (a change of the resource) helps.
                "RoleChanged" => Requeue::AwaitChange,
                // The other resource may go away.
                _ => Requeue::After(ROLE_NOT_FOUND_RETRY_SECS),
            };
            return b.finish(requeue);
        }
        b.status.role = Some(PinnedRole {
            arn: live.arn.clone(),
            role_id: live.role_id.clone(),
        });
    }
    let generation_requeue = analyzed::analyzed(&mut b);
    let live = match &observed.role {
        RoleState::NotFound => {
            let message = format!("role {} not found", spec.role_label());
            b.set(ConditionType::Ready, FALSE, "RoleNotFound", message);
            return b.finish(Requeue::After(ROLE_NOT_FOUND_RETRY_SECS));
        }
        RoleState::NotPermitted { arn, reason } => {
            b.set(
                ConditionType::Ready,
                FALSE,
                "RoleNotPermitted",
                format!("{arn}: {reason}"),
            );
            return b.finish(Requeue::After(ROLE_NOT_FOUND_RETRY_SECS));
        }
        RoleState::Found(live) => live,
    };
    trust::trust_ok(&mut b, &spec, live);
    // The stages after see the role with its declared boundary in place, once its writes
    // (first of all) succeed; the backup is of the role as it is.
    let original = live;
    let live = &boundary::boundary_in_place(&mut b, &spec, live);
    proposal::proposal_ready(&mut b, &spec, live);
    boundary::denies_used_actions(&mut b, &spec, live);
    shadow::shadowed(&mut b, &spec, live);
    let decision = approved::approved(&mut b, &spec, live);
    let restore = restore::restored(&mut b, &spec, live);
    sync::in_sync(&mut b, &spec, live, decision, restore);
    backup::backed_up(&mut b, &spec, original);
    let claiming = claim_first(&mut b, live);
    match b.problem.clone() {
        Some((reason, message)) => b.set(ConditionType::Ready, FALSE, reason, message),
        None => b.set(ConditionType::Ready, TRUE, "Ready", ""),
    }
    // A shadow period that may end before the next analysis: look again when it does.
    let shadow_requeue = shadow::shadow_ready_unchecked(&spec, b.status.shadow.as_ref())
        .zip(crate::time::parse_date(&observed.now))
        .map(|(ready, now)| ((ready - now).max(0) as u64).div_ceil(1_000_000_000).max(1));
    let requeue = if claiming {
        CLAIM_CONFIRM_SECS
    } else if b.operations.is_empty() {
        spec.steady().as_secs()
    } else {
        VERIFY_AFTER_SECS
    };
    b.finish(Requeue::After(
        requeue
            .min(generation_requeue.unwrap_or(u64::MAX))
            .min(shadow_requeue.unwrap_or(u64::MAX)),
    ))
}

/// The first write of all is the claim, alone: the next look confirms the role holds this
/// resource's tag (not another's, written at the same moment) before anything else. Whether
/// this plan claims.
fn claim_first(b: &mut Builder, live: &LiveRole) -> bool {
    let observed = b.observed;
    if b.operations.is_empty() || live.claimed_by() == Some(observed.uid.as_str()) {
        return false;
    }
    // A boundary this plan would have put in place is not in place yet.
    let own_boundary = live.boundary_policy_name();
    let boundary_planned = b.operations.iter().any(|op| match op {
        Operation::SetPermissionsBoundary { .. } => true,
        Operation::PutManagedPolicy { name, .. } => *name == own_boundary,
        _ => false,
    });
    b.operations = vec![Operation::ClaimRole {
        uid: observed.uid.clone(),
    }];
    b.completion.clear();
    b.status.applied = observed.previous.applied.clone();
    b.status.history = observed.previous.history.clone();
    b.status.backup = observed.previous.backup.clone();
    let message = format!(
        "tagging the role {CLAIM_TAG}={} before the first write",
        observed.uid
    );
    // Nothing is applied yet: neither in sync nor "not drifted".
    b.set(ConditionType::InSync, UNKNOWN, "Claiming", message.clone());
    if boundary_planned {
        b.set(
            ConditionType::BoundaryInPlace,
            UNKNOWN,
            "Claiming",
            message.clone(),
        );
    }
    b.set(ConditionType::Drifted, UNKNOWN, "Claiming", message);
    true
}

/// Why this resource must not act on `live`: it is not the pinned role ([`role_changed`],
/// `RoleChanged`), or another resource (in any namespace or cluster) has claimed it
/// (`RoleClaimed`). The shell does not analyze such a role either.
pub fn not_ours(
    previous: &LeastPrivilegeRoleStatus,
    live: &LiveRole,
    uid: &str,
) -> Option<(&'static str, String)> {
    if let Some(message) = role_changed(previous, live) {
        return Some(("RoleChanged", message));
    }
    match live.claimed_by() {
        Some(other) if other != uid => Some((
            "RoleClaimed",
            format!(
                "{} is managed by another LeastPrivilegeRole (uid {other}, tag {CLAIM_TAG}); \
                 one role has one resource, so this one writes nothing",
                live.arn
            ),
        )),
        _ => None,
    }
}

/// Why `live` is not the role this resource manages: another ARN or RoleId than the one
/// pinned in `previous.role` (a spec edit, another account, a role deleted and created again).
/// `None` when it is, or when nothing is pinned yet. The shell does not analyze such a role.
pub fn role_changed(previous: &LeastPrivilegeRoleStatus, live: &LiveRole) -> Option<String> {
    let pin = previous.role.as_ref()?;
    if pin.arn == live.arn && pin.role_id == live.role_id {
        return None;
    }
    Some(format!(
        "this resource manages {} (RoleId {}), but the role it names now is {} (RoleId {}); \
         iam-tailor writes nothing to it: revert the spec, or delete this resource and create \
         a new one",
        pin.arn, pin.role_id, live.arn, live.role_id
    ))
}

#[cfg(test)]
mod tests;
