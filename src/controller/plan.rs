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
//! status alone. Document *i* (from 0) becomes the managed policy [`managed_policy_name`],
//! at path `/` in the role's account.
//!
//! Nothing is written unless every state the role passes through is proven within what it
//! holds now ([`prove_each_state`]); a Deny iam-tailor did not write and the permissions
//! boundary are never removed ([`guard`], Restore included).

use super::crd::{
    Analysis, Applied, Approval, AttachedPolicies, Backup, Condition, DeletionPolicy, DriftAction,
    DroppedGrant, GenerationJob, InlinePolicies, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus,
    Mode, PinnedRole, Proposal, REPORT_LIMIT, Validation, ValidationSpec,
};
use crate::generate::analyzer::Unresolved;
use crate::generate::{Generated, SeenByIam};
use crate::policy::Policy;
use crate::policy::analysis::{Proof, allowed_actions, grants_no_new_access};
use crate::role::proof::{guard, prove_each_state};
use crate::role::{
    AttachedPolicy, BackupSnapshot, CLAIM_TAG, LiveRole, Operation, RoleState, has_deny,
};
use std::collections::{BTreeMap, BTreeSet};

/// How many earlier applied revisions the status keeps for rollback.
const HISTORY_LIMIT: usize = 10;
/// Access Analyzer's policy generation looks back at most this far.
pub const ANALYZER_MAX_WINDOW_SECS: u64 = 90 * 86_400;
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
}

/// An Access Analyzer generation that has not (yet) given an analysis.
#[derive(Clone, Debug, PartialEq)]
pub enum Generation {
    /// Started now, or still running: poll again.
    Running(GenerationJob),
    /// Another job runs in the account (Access Analyzer runs one at a time): wait our turn.
    Queued { message: String },
    /// The account's daily job quota is used up.
    QuotaExceeded { message: String },
    /// The job ended without a policy ([`GenerationJob::failure`] says why).
    Failed(GenerationJob),
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
    /// Access Analyzer's checks of the generated documents, when the spec asks for them.
    pub validation: Option<Validation>,
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
    pub requeue: Requeue,
}

/// A backup ConfigMap as read: the hash of its `backup.json`, and the snapshot it parses to.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBackup {
    /// `sha256:` of `backup.json` exactly as stored.
    pub sha256: String,
    /// The snapshot, or why `backup.json` does not parse (or is missing).
    pub snapshot: Result<BackupSnapshot, String>,
}

impl StoredBackup {
    /// What the shell stores and the plan records: `backup.json` and its hash.
    pub fn of(snapshot: &BackupSnapshot) -> StoredBackup {
        StoredBackup {
            sha256: crate::policy::canonical::sha256_revision(&snapshot.to_json()),
            snapshot: Ok(snapshot.clone()),
        }
    }
}

/// The backup ConfigMap's name for the resource with `uid`: one per resource, unguessable
/// before the resource exists, in the operator's namespace.
pub fn backup_config_map(uid: &str) -> String {
    format!("iam-tailor-backup-{uid}")
}

/// IAM attaches at most this many managed policies to a role (the raised quota; 10 by
/// default), so no proposal has more documents.
pub const MAX_DOCUMENTS: usize = 20;

/// The name of iam-tailor's managed policy for document `index` (from 0) of `role`'s proposal:
/// `iam-tailor-<role>`, then `iam-tailor.<n>.<role>` for n = 2, 3, …. No two (role, index)
/// pairs share a name: the first form has `-` where the second has `.`, and a role name
/// cannot make up the second's number (it ends at the first `.`). IAM compares both role and
/// policy names without case, so this holds there too.
pub fn managed_policy_name(role: &str, index: usize) -> String {
    match index {
        0 => format!("iam-tailor-{role}"),
        i => format!("iam-tailor.{}.{role}", i + 1),
    }
}

/// The ARN of the managed policy `name` at path `/` in the account of `role_arn`.
pub fn managed_policy_arn(role_arn: &str, name: &str) -> String {
    let account_prefix: Vec<&str> = role_arn.split(':').take(5).collect();
    format!("{}:policy/{name}", account_prefix.join(":"))
}

/// The JSON array of the documents' canonical JSON: `status.proposal.policy`.
pub fn set_json(documents: &[Policy]) -> String {
    let parts: Vec<String> = documents.iter().map(Policy::canonical_json).collect();
    format!("[{}]", parts.join(","))
}

/// `sha256:` of [`set_json`]: the revision of a policy set.
pub fn set_revision(documents: &[Policy]) -> String {
    crate::policy::canonical::sha256_revision(&set_json(documents))
}

/// The documents of a proposal, parsed back from its `policy`, and checked against its
/// revision: the status is not trusted, so what it says is re-derived before it is used.
fn proposal_documents(proposal: &Proposal) -> Result<Vec<Policy>, String> {
    let values: Vec<serde_json::Value> = serde_json::from_str(&proposal.policy)
        .map_err(|e| format!("status.proposal.policy is not a JSON array: {e}"))?;
    let documents = values
        .iter()
        .map(|v| Policy::from_value(v).map_err(|e| format!("status.proposal.policy: {e}")))
        .collect::<Result<Vec<Policy>, String>>()?;
    let revision = set_revision(&documents);
    if revision != proposal.revision {
        return Err(format!(
            "status.proposal.policy has revision {revision}, not {} as status.proposal.revision says",
            proposal.revision
        ));
    }
    Ok(documents)
}

/// `90d`, `5m`, … in seconds; `units` lists the suffixes allowed. Zero is not a duration.
pub fn parse_duration(text: &str, units: &str) -> Option<u64> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !units.contains(unit) {
        return None;
    }
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)?
        .checked_mul(per)
}

/// The spec errors the schema cannot express, all of them, so one edit can fix them all.
pub fn validate(spec: &LeastPrivilegeRoleSpec) -> Result<(), String> {
    let mut errors = Vec::new();
    let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    match (given(&spec.role_name), given(&spec.role_arn)) {
        (true, true) => errors.push("give roleName or roleArn, not both".to_string()),
        (false, false) => errors.push("give roleName or roleArn".to_string()),
        _ => {}
    }
    for (field, value, units) in [
        ("window", &spec.window, "mhdw"),
        ("regenerateEvery", &spec.regenerate_every, "mhdw"),
        ("lastAccessedWindow", &spec.last_accessed_window, "mhdw"),
        ("drift.interval", &spec.drift.interval, "smhd"),
    ] {
        if parse_duration(value, units).is_none() {
            errors.push(format!(
                "{field} {value:?} is not a positive number followed by one of {units}"
            ));
        }
    }
    match (&spec.cloud_trail.s3, &spec.cloud_trail.access_analyzer) {
        (None, None) => errors.push(
            "give cloudTrail.s3 or cloudTrail.accessAnalyzer: where the role's activity is read"
                .to_string(),
        ),
        (_, Some(aa)) => {
            if aa.regions.is_empty() != aa.all_regions {
                errors.push(
                    "cloudTrail.accessAnalyzer: give regions or allRegions: true, not both"
                        .to_string(),
                );
            }
            if parse_duration(&spec.window, "mhdw").is_some_and(|w| w > ANALYZER_MAX_WINDOW_SECS) {
                errors.push(format!(
                    "window {:?}: Access Analyzer reads at most 90 days",
                    spec.window
                ));
            }
        }
        _ => {}
    }
    if let Some(rev) = spec.approved_revision.as_deref().filter(|r| !r.is_empty()) {
        let hex = rev.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            errors.push(format!("approvedRevision {rev:?} is not sha256:<64 hex>"));
        }
    }
    for (i, keep) in spec.keep.iter().enumerate() {
        if keep.actions.is_empty() {
            errors.push(format!("keep[{i}] lists no actions"));
        }
        for action in &keep.actions {
            // A misspelt action would silently keep nothing.
            if let Err(e) = action.parse::<crate::generate::Keep>() {
                errors.push(format!("keep[{i}].actions: {e}"));
            }
        }
        if let Some(expires) = &keep.expires
            && crate::policy::values::parse_date(expires).is_none()
        {
            errors.push(format!("keep[{i}].expires {expires:?} is not a date"));
        }
    }
    if spec.evidence.min_matched_events == 0 {
        errors.push("evidence.minMatchedEvents must be at least 1".to_string());
    }
    if spec.evidence.max_drop_percent > 100 {
        errors.push(format!(
            "evidence.maxDropPercent {} is more than 100",
            spec.evidence.max_drop_percent
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

const CONDITION_TYPES: [&str; 6] = [
    "Analyzed",
    "ProposalReady",
    "Approved",
    "InSync",
    "Drifted",
    "Ready",
];

const TRUE: &str = "True";
const FALSE: &str = "False";
const UNKNOWN: &str = "Unknown";

/// Collects the plan; conditions are set by type and emitted in [`CONDITION_TYPES`] order.
struct Builder<'a> {
    observed: &'a Observed,
    status: LeastPrivilegeRoleStatus,
    /// Type → (status, reason, message).
    conditions: BTreeMap<&'static str, (&'static str, &'static str, String)>,
    operations: Vec<Operation>,
    events: Vec<PlannedEvent>,
    completion: Vec<PlannedEvent>,
}

impl<'a> Builder<'a> {
    fn new(observed: &'a Observed) -> Self {
        let mut status = observed.previous.clone();
        status.observed_generation = Some(observed.generation);
        Builder {
            observed,
            status,
            conditions: BTreeMap::new(),
            operations: Vec::new(),
            events: Vec::new(),
            completion: Vec::new(),
        }
    }

    fn set(
        &mut self,
        type_: &'static str,
        status: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) {
        self.conditions
            .insert(type_, (status, reason, message.into()));
    }

    fn event(&mut self, type_: EventType, reason: &str, note: impl Into<String>) {
        self.events.push(PlannedEvent {
            type_,
            reason: reason.to_string(),
            note: note.into(),
        });
    }

    /// Unset conditions become Unknown; `lastTransitionTime` stays as it was unless the
    /// condition's status changed, so a steady state writes an identical status.
    fn finish(mut self, requeue: Requeue) -> Plan {
        let previous = &self.observed.previous.conditions;
        let conditions = CONDITION_TYPES
            .iter()
            .map(|type_| {
                let (status, reason, message) =
                    self.conditions
                        .remove(type_)
                        .unwrap_or((UNKNOWN, "Pending", String::new()));
                let last_transition_time = previous
                    .iter()
                    .find(|c| c.type_ == *type_ && c.status == status)
                    .map(|c| c.last_transition_time.clone())
                    .unwrap_or_else(|| self.observed.now.clone());
                Condition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    reason: reason.to_string(),
                    message: Some(message).filter(|m| !m.is_empty()),
                    last_transition_time,
                    observed_generation: Some(self.observed.generation),
                }
            })
            .collect::<Vec<Condition>>();
        // Ready and Approved transitions are what people watch for: each gets an Event,
        // unless one with the same reason is already planned.
        for c in conditions
            .iter()
            .filter(|c| c.type_ == "Ready" || c.type_ == "Approved")
        {
            let before = previous.iter().find(|p| p.type_ == c.type_);
            // A new reason for Ready=False is news (InvalidSpec → RoleNotFound); for Approved
            // only the status is (Approved → Applied is the expected next step).
            let changed = before.is_none_or(|p| {
                p.status != c.status || (c.type_ == "Ready" && p.reason != c.reason)
            });
            let planned = self.events.iter().any(|e| e.reason == c.reason);
            if changed && !planned && c.status != UNKNOWN {
                let type_ = if c.type_ == "Ready" && c.status == FALSE {
                    EventType::Warning
                } else {
                    EventType::Normal
                };
                let note = c
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{} is {}", c.type_, c.status));
                self.event(type_, &c.reason.clone(), note);
            }
        }
        self.status.conditions = conditions;
        Plan {
            operations: self.operations,
            status: self.status,
            events: self.events,
            completion: self.completion,
            requeue,
        }
    }
}

/// The role as the spec names it, for messages.
fn role_label(spec: &LeastPrivilegeRoleSpec) -> &str {
    spec.role_name
        .as_deref()
        .or(spec.role_arn.as_deref())
        .unwrap_or("")
}

/// The proposal of `result`, with removes/adds counted in catalog actions against `live`.
fn propose(result: &AnalysisResult, live: &LiveRole, now: &str) -> Proposal {
    let documents = &result.generated.policies;
    let names = |policies: &[Policy]| -> BTreeSet<String> {
        allowed_actions(policies)
            .into_iter()
            .map(|a| a.action)
            .collect()
    };
    let granted = names(&live.documents());
    let proposed = names(documents);
    Proposal {
        revision: set_revision(documents),
        policy: set_json(documents),
        generated_at: now.to_string(),
        removes: granted.difference(&proposed).count() as u64,
        adds: proposed.difference(&granted).count() as u64,
        seen_by_iam: result.seen_by_iam.clone(),
        unresolved_placeholders: result.unresolved.clone(),
        validation: result.validation.clone(),
        dropped: (result.generated.dropped.iter())
            .take(REPORT_LIMIT)
            .map(|d| DroppedGrant {
                action: d.action.clone(),
                resource: d.resource.clone(),
                reason: d.reason.clone(),
            })
            .collect(),
        dropped_count: result.generated.dropped.len() as u64,
    }
}

/// What the role should hold: iam-tailor's documents attached under their names.
struct Target {
    revision: String,
    /// (name, ARN) per document, in document order.
    policies: Vec<(String, String)>,
    /// The documents, when known; drift of an applied revision whose documents the status no
    /// longer holds can be detected (by revision) but not put back.
    documents: Option<Vec<Policy>>,
    /// The permissions boundary the role should have.
    boundary: Option<String>,
}

impl Target {
    fn proposal(live: &LiveRole, revision: &str, documents: Vec<Policy>) -> Target {
        Target {
            revision: revision.to_string(),
            policies: (0..documents.len())
                .map(|i| {
                    let name = managed_policy_name(&live.name, i);
                    let arn = managed_policy_arn(&live.arn, &name);
                    (name, arn)
                })
                .collect(),
            documents: Some(documents),
            boundary: live.permissions_boundary.clone(),
        }
    }

    /// The applied revision's policies, named again from the role (never taken from
    /// `status.applied.policyArns`, which anyone who can write the status could point at
    /// another policy): one per ARN the status lists, at most.
    fn applied(live: &LiveRole, applied: &Applied, documents: Option<Vec<Policy>>) -> Target {
        let count = documents
            .as_ref()
            .map_or(applied.policy_arns.len(), Vec::len);
        let mut target = Target::proposal(live, &applied.revision, Vec::new());
        target.policies = (0..count)
            .map(|i| {
                let name = managed_policy_name(&live.name, i);
                let arn = managed_policy_arn(&live.arn, &name);
                (name, arn)
            })
            .collect();
        target.documents = documents;
        target.boundary = applied.permissions_boundary.clone();
        target
    }
}

/// The operations that bring `live` to `target`, and what differs in words (for drift).
struct Convergence {
    operations: Vec<Operation>,
    /// What differs and the operations put back.
    changes: Vec<String>,
    /// Documents the spec would remove that hold a Deny: left in place, since a Deny only
    /// narrows and may be an incident responder's.
    denies_kept: Vec<String>,
    /// The boundary is not the target's and is left alone (replacing or removing it could
    /// widen the role).
    boundary_changed: Option<String>,
}

/// Puts and attaches come before any detach or delete, so the role never holds less than
/// the target while it switches; among removals, documents without a Deny go first, so no
/// Allow is ever left unfenced. Every state is proven by [`prove_each_state`] afterwards.
fn converge(spec: &LeastPrivilegeRoleSpec, live: &LiveRole, target: &Target) -> Convergence {
    let attached: BTreeMap<&str, &AttachedPolicy> =
        live.attached.iter().map(|a| (a.arn.as_str(), a)).collect();
    let (mut puts, mut attaches) = (Vec::new(), Vec::new());
    // (holds a Deny, operation)
    let mut removals: Vec<(bool, Operation)> = Vec::new();
    let mut changes = Vec::new();
    let mut denies_kept = Vec::new();
    for (i, (name, arn)) in target.policies.iter().enumerate() {
        let wanted = target.documents.as_ref().map(|d| d[i].canonical_json());
        let put = |document: String| Operation::PutManagedPolicy {
            name: name.clone(),
            arn: arn.clone(),
            document,
        };
        match (attached.get(arn.as_str()), wanted) {
            (Some(a), Some(wanted)) => {
                if a.document.canonical_json() != wanted {
                    changes.push(format!("content of {name} changed"));
                    puts.push(put(wanted));
                }
            }
            (Some(_), None) => {}
            (None, wanted) => {
                changes.push(format!("{name} detached"));
                puts.extend(wanted.map(put));
                attaches.push(Operation::AttachPolicy { arn: arn.clone() });
            }
        }
    }
    if target.documents.is_none() {
        let live_set: Option<Vec<Policy>> = target
            .policies
            .iter()
            .map(|(_, arn)| attached.get(arn.as_str()).map(|a| a.document.clone()))
            .collect();
        if live_set.is_some_and(|docs| set_revision(&docs) != target.revision) {
            changes.push(format!(
                "content of iam-tailor's policies no longer matches {} (its documents are no \
                 longer in the status, so it cannot be put back)",
                target.revision
            ));
        }
    }
    let ours: BTreeSet<&str> = target.policies.iter().map(|(_, a)| a.as_str()).collect();
    for (arn, a) in &attached {
        if ours.contains(arn) {
            continue;
        }
        if a.managed_by_iam_tailor {
            changes.push(format!("stale iam-tailor policy {} attached", a.name));
        } else if spec.attached_policies == AttachedPolicies::Detach {
            if has_deny(&a.document) {
                denies_kept.push(format!("policy {}", a.name));
                continue;
            }
            changes.push(format!("{} attached out of band", a.name));
        } else {
            continue;
        }
        let op = Operation::DetachPolicy {
            arn: arn.to_string(),
        };
        removals.push((has_deny(&a.document), op));
    }
    if spec.inline_policies == InlinePolicies::Delete {
        for (name, document) in &live.inline {
            if has_deny(document) {
                denies_kept.push(format!("inline policy {name}"));
                continue;
            }
            changes.push(format!("inline policy {name} added"));
            removals.push((false, Operation::DeleteInlinePolicy { name: name.clone() }));
        }
    }
    // Stable: the order above within each group.
    removals.sort_by_key(|(deny, _)| *deny);
    // A removed boundary is put back (that narrows the role); a new or different one is
    // reported and left alone, since replacing or removing it could widen the role.
    let mut operations = Vec::new();
    let mut boundary_changed = None;
    match (&target.boundary, &live.permissions_boundary) {
        (Some(wanted), None) => {
            changes.push(format!("permissions boundary {wanted} removed"));
            operations.push(Operation::SetPermissionsBoundary {
                arn: wanted.clone(),
            });
        }
        (wanted, Some(now)) if wanted.as_ref() != Some(now) => {
            boundary_changed = Some(format!(
                "permissions boundary is now {now}, not {}; iam-tailor never replaces or \
                 removes a boundary",
                wanted.as_deref().unwrap_or("none")
            ));
        }
        _ => {}
    }
    operations.extend(puts);
    operations.extend(attaches);
    operations.extend(removals.into_iter().map(|(_, op)| op));
    Convergence {
        operations,
        changes,
        denies_kept,
        boundary_changed,
    }
}

/// The event recorded for each write once it succeeded.
pub fn operation_event(op: &Operation) -> PlannedEvent {
    let (reason, note) = match op {
        Operation::BackupRole { config_map, .. } => (
            "BackedUp",
            format!("saved the role's original policies in ConfigMap {config_map}"),
        ),
        Operation::PutManagedPolicy { name, .. } => {
            ("PolicyPut", format!("put managed policy {name}"))
        }
        Operation::AttachPolicy { arn } => ("PolicyAttached", format!("attached {arn}")),
        Operation::DetachPolicy { arn } => ("PolicyDetached", format!("detached {arn}")),
        Operation::PutInlinePolicy { name, .. } => {
            ("InlinePolicyPut", format!("put inline policy {name}"))
        }
        Operation::DeleteInlinePolicy { name } => (
            "InlinePolicyDeleted",
            format!("deleted inline policy {name}"),
        ),
        Operation::SetPermissionsBoundary { arn } => (
            "PermissionsBoundarySet",
            format!("set permissions boundary {arn}"),
        ),
        Operation::DeletePermissionsBoundary => (
            "PermissionsBoundaryDeleted",
            "removed the permissions boundary".to_string(),
        ),
        Operation::DeleteManagedPolicy { arn } => {
            ("PolicyDeleted", format!("deleted managed policy {arn}"))
        }
        Operation::ClaimRole { uid } => (
            "Claimed",
            format!("tagged the role {CLAIM_TAG}={uid}: this resource manages it"),
        ),
        Operation::ReleaseRole => (
            "ClaimReleased",
            format!("removed the role's {CLAIM_TAG} tag"),
        ),
    };
    PlannedEvent {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note,
    }
}

/// Spec + observation → operations, status and events; see the module docs.
pub fn plan(spec: &LeastPrivilegeRoleSpec, observed: &Observed) -> Plan {
    let mut b = Builder::new(observed);
    if let Err(message) = validate(spec) {
        b.set("Ready", FALSE, "InvalidSpec", message);
        return b.finish(Requeue::AwaitChange);
    }
    if let RoleState::Found(live) = &observed.role {
        if let Some((reason, message)) = not_ours(&observed.previous, live, &observed.uid) {
            b.set("Ready", FALSE, reason, message);
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
    let steady = [
        parse_duration(&spec.drift.interval, "smhd"),
        parse_duration(&spec.regenerate_every, "mhdw"),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(300);

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
        b.status.generation_job = None;
    }
    // A problem that makes Ready False; drift and approval add their own below.
    let mut problem: Option<(&'static str, String)> = None;
    // Seconds until the next look when a generation job is under way.
    let mut generation_requeue = None;
    match (&b.status.analysis, &observed.analyzer) {
        (_, Some(Generation::QuotaExceeded { message })) => {
            let message = format!("Access Analyzer quota: {message}; retrying after 00:00 UTC");
            b.set("Analyzed", FALSE, "QuotaExceeded", message.clone());
            problem = Some(("QuotaExceeded", message));
            generation_requeue = Some(seconds_to_utc_midnight(&observed.now));
        }
        (_, Some(Generation::Failed(job))) => {
            let message = format!(
                "Access Analyzer job {} failed: {}",
                job.job_id,
                job.failure.as_deref().unwrap_or("no reason given")
            );
            if b.status.generation_job.as_ref() != Some(job) {
                b.event(EventType::Warning, "GenerationFailed", message.clone());
            }
            b.status.generation_job = Some(job.clone());
            b.set("Analyzed", FALSE, "GenerationFailed", message.clone());
            problem = Some(("GenerationFailed", message));
        }
        (None, Some(Generation::Running(job))) => {
            let message = format!(
                "Access Analyzer job {} running since {}",
                job.job_id, job.started_at
            );
            b.status.generation_job = Some(job.clone());
            b.set("Analyzed", UNKNOWN, "GenerationRunning", message);
            generation_requeue = Some(observed.analyzer_poll_secs);
        }
        (None, Some(Generation::Queued { message })) => {
            b.set(
                "Analyzed",
                UNKNOWN,
                "WaitingForAccessAnalyzer",
                message.clone(),
            );
            generation_requeue = Some(observed.analyzer_poll_secs);
        }
        (Some(a), generation) => {
            // A regeneration under way keeps the last analysis until it is done.
            match generation {
                Some(Generation::Running(job)) => b.status.generation_job = Some(job.clone()),
                _ if observed.analysis.is_none() => {}
                _ => b.status.generation_job = None,
            }
            if generation.is_some() {
                generation_requeue = Some(observed.analyzer_poll_secs);
            }
            let message = format!("CloudTrail {} to {}", a.window_start, a.window_end);
            b.set("Analyzed", TRUE, "Analyzed", message);
        }
        (None, None) => b.set("Analyzed", UNKNOWN, "AwaitingAnalysis", "no analysis yet"),
    }

    let live = match &observed.role {
        RoleState::NotFound => {
            b.set(
                "Ready",
                FALSE,
                "RoleNotFound",
                format!("role {} not found", role_label(spec)),
            );
            return b.finish(Requeue::After(ROLE_NOT_FOUND_RETRY_SECS));
        }
        RoleState::NotPermitted { arn, reason } => {
            b.set(
                "Ready",
                FALSE,
                "RoleNotPermitted",
                format!("{arn}: {reason}"),
            );
            return b.finish(Requeue::After(ROLE_NOT_FOUND_RETRY_SECS));
        }
        RoleState::Found(live) => live,
    };

    if spec.mode == Mode::Observe {
        b.status.proposal = None;
        b.set(
            "ProposalReady",
            FALSE,
            "ObserveMode",
            "mode Observe only reports",
        );
    } else {
        if let Some(result) = &observed.analysis {
            let proposal = propose(result, live, &observed.now);
            let previous = b.status.proposal.as_ref().map(|p| p.revision.as_str());
            if previous != Some(proposal.revision.as_str()) {
                b.event(
                    EventType::Normal,
                    "ProposalReady",
                    format!(
                        "proposal {} removes {} actions, adds {}",
                        proposal.revision, proposal.removes, proposal.adds
                    ),
                );
            }
            b.status.proposal = Some(proposal);
        }
        match &b.status.proposal {
            Some(p) => {
                let message = format!(
                    "{} removes {} actions, adds {}",
                    p.revision, p.removes, p.adds
                );
                b.set("ProposalReady", TRUE, "ProposalReady", message);
            }
            None => b.set(
                "ProposalReady",
                UNKNOWN,
                "AwaitingAnalysis",
                "no proposal yet",
            ),
        }
    }

    let proposal = b.status.proposal.clone();
    let parsed = proposal.as_ref().map(|p| (p, proposal_documents(p)));
    let mut may_revert = spec.mode == Mode::Enforce && spec.drift.action == DriftAction::Revert;
    let mut applying = None;
    if spec.mode != Mode::Enforce {
        let message = format!("mode {:?} never writes to IAM", spec.mode);
        b.set("Approved", FALSE, "NotEnforcing", message);
    } else {
        match &parsed {
            None => b.set("Approved", UNKNOWN, "AwaitingProposal", "no proposal yet"),
            Some((_, Err(e))) => {
                b.set("Approved", FALSE, "InvalidProposal", e.clone());
                problem = Some(("InvalidProposal", e.clone()));
            }
            Some((p, Ok(docs))) => {
                let applied = b.status.applied.as_ref().map(|a| a.revision.as_str());
                if applied == Some(p.revision.as_str()) {
                    let message = format!("{} is applied", p.revision);
                    b.set("Approved", TRUE, "Applied", message);
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
                    b.set("Approved", FALSE, "UnresolvedPlaceholders", message.clone());
                    problem = Some(("UnresolvedPlaceholders", message));
                } else if docs.is_empty() {
                    b.set(
                        "Approved",
                        FALSE,
                        "EmptyProposal",
                        "the proposal grants nothing; iam-tailor does not strip a role of all access",
                    );
                } else {
                    // Access Analyzer's verdicts, when asked for, block even an approved
                    // revision.
                    let gated = if spec.validation.access_analyzer {
                        gate(p, &spec.validation)
                    } else {
                        Ok(())
                    };
                    match grants_no_new_access(docs, &live.documents()) {
                        Proof::CannotProve(reasons) => {
                            let message = format!(
                                "{} may grant access the role does not have: {}",
                                p.revision,
                                reasons.join("; ")
                            );
                            b.event(EventType::Warning, "NotProvablyNarrower", message.clone());
                            b.set("Approved", FALSE, "NotProvablyNarrower", message.clone());
                            problem = Some(("NotProvablyNarrower", message));
                            // Nothing is written while a proposal cannot be proven safe.
                            may_revert = false;
                        }
                        Proof::Proven if gated.is_err() => {
                            let (reason, message) = gated.clone().expect_err("the guard");
                            let before = observed
                                .previous
                                .conditions
                                .iter()
                                .find(|c| c.type_ == "Approved");
                            if before.is_none_or(|c| c.reason != reason) {
                                b.event(EventType::Warning, reason, message.clone());
                            }
                            b.set("Approved", FALSE, reason, message.clone());
                            problem = Some((reason, message));
                        }
                        Proof::Proven => {
                            let thin = match spec.approval {
                                Approval::Automatic => {
                                    thin_evidence(spec, b.status.analysis.as_ref())
                                }
                                Approval::Manual => None,
                            };
                            let approved = match spec.approval {
                                Approval::Automatic => p.adds == 0 && thin.is_none(),
                                Approval::Manual => {
                                    spec.approved_revision.as_deref() == Some(p.revision.as_str())
                                }
                            };
                            if approved {
                                let message =
                                    format!("{} approved ({:?})", p.revision, spec.approval);
                                b.set("Approved", TRUE, "Approved", message);
                                applying = Some(((*p).clone(), docs.clone()));
                            } else if let Some(thin) = thin {
                                let message = format!(
                                    "the analysis behind {} is too thin for Automatic approval: \
                                     {thin}; set spec.approvedRevision to {} to apply it anyway",
                                    p.revision, p.revision
                                );
                                b.set("Approved", FALSE, "InsufficientEvidence", message);
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
                                b.set("Approved", FALSE, "AwaitingApproval", message);
                            }
                        }
                    }
                }
            }
        }
    }

    // Every state the role passes through is proven within what it holds now, or nothing is
    // written.
    let applying = applying.and_then(|(p, documents)| {
        let target = Target::proposal(live, &p.revision, documents);
        let convergence = converge(spec, live, &target);
        match prove_each_state(live, &convergence.operations) {
            Ok(()) => Some((p, target, convergence)),
            Err(widening) => {
                let message = format!(
                    "{} is approved, but applying it cannot be proven never to widen the role: {widening}",
                    p.revision
                );
                b.event(EventType::Warning, "NotProvablyNarrower", message.clone());
                b.set("Approved", FALSE, "NotProvablyNarrower", message.clone());
                problem = Some(("NotProvablyNarrower", message));
                may_revert = false;
                None
            }
        }
    });
    if let Some((p, target, convergence)) = applying {
        b.operations = convergence.operations.clone();
        let applied = Applied {
            revision: p.revision.clone(),
            applied_at: observed.now.clone(),
            policy_arns: target.policies.iter().map(|(_, arn)| arn.clone()).collect(),
            permissions_boundary: live.permissions_boundary.clone(),
        };
        if let Some(previous) = b.status.applied.take() {
            b.status.history.insert(0, previous);
            b.status.history.truncate(HISTORY_LIMIT);
        }
        let names: Vec<&str> = target.policies.iter().map(|(n, _)| n.as_str()).collect();
        let mut note = format!(
            "applied {} as {}; removes {} actions",
            p.revision,
            names.join(", "),
            p.removes
        );
        if !convergence.denies_kept.is_empty() {
            note.push_str(&format!(
                "; kept {} (a Deny is never removed)",
                convergence.denies_kept.join(", ")
            ));
        }
        b.completion.push(PlannedEvent {
            type_: EventType::Normal,
            reason: "PolicyApplied".to_string(),
            note,
        });
        b.status.applied = Some(applied);
        let message = format!("{} applied", p.revision);
        b.set("InSync", TRUE, "Applied", message.clone());
        b.set("Drifted", FALSE, "Applied", message);
        report_kept(&mut b, &convergence, &mut problem);
    } else if let Some(applied) = b.status.applied.clone() {
        let documents = match &parsed {
            Some((p, Ok(docs))) if p.revision == applied.revision => Some(docs.clone()),
            _ => None,
        };
        let target = Target::applied(live, &applied, documents);
        let convergence = converge(spec, live, &target);
        if convergence.changes.is_empty() {
            let message = format!("the role holds {}", applied.revision);
            b.set("InSync", TRUE, "InSync", message.clone());
            b.set("Drifted", FALSE, "InSync", message);
        } else {
            let what = convergence.changes.join("; ");
            let proof = if may_revert && !convergence.operations.is_empty() {
                Some(prove_each_state(live, &convergence.operations))
            } else {
                None
            };
            let (reason, note) = match &proof {
                Some(Ok(())) => ("Reverting", format!("{what}; reverting")),
                Some(Err(widening)) => (
                    "NotProvablyNarrower",
                    format!(
                        "{what}; not reverted: putting it back cannot be proven never to widen \
                         the role as it is now: {widening}"
                    ),
                ),
                None => ("Reported", what.clone()),
            };
            b.event(EventType::Warning, "Drifted", note.clone());
            b.set("InSync", FALSE, "Drifted", what.clone());
            b.set("Drifted", TRUE, reason, note.clone());
            if let Some(Ok(())) = proof {
                b.operations = convergence.operations.clone();
            } else if problem.is_none() {
                let reason = if reason == "Reported" {
                    "Drifted"
                } else {
                    reason
                };
                problem = Some((reason, note));
            }
        }
        report_kept(&mut b, &convergence, &mut problem);
    } else {
        b.set("InSync", UNKNOWN, "NothingApplied", "nothing applied yet");
        b.set("Drifted", FALSE, "NothingApplied", "nothing applied yet");
    }

    if let Err((reason, message)) = backup(&mut b, live) {
        // Nothing is written without the role's original state safely stored.
        b.operations.clear();
        b.completion.clear();
        b.status.applied = observed.previous.applied.clone();
        b.status.history = observed.previous.history.clone();
        b.set("InSync", FALSE, reason, message.clone());
        problem = Some((reason, message));
    }

    // The first write of all is the claim, alone: the next look confirms the role holds this
    // resource's tag (not another's, written at the same moment) before anything else.
    let claiming = !b.operations.is_empty() && live.claimed_by() != Some(observed.uid.as_str());
    if claiming {
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
        b.set("InSync", UNKNOWN, "Claiming", message.clone());
        b.set("Drifted", UNKNOWN, "Claiming", message);
    }

    match problem {
        Some((reason, message)) => b.set("Ready", FALSE, reason, message),
        None => b.set("Ready", TRUE, "Ready", ""),
    }
    let requeue = if claiming {
        CLAIM_CONFIRM_SECS
    } else if b.operations.is_empty() {
        steady
    } else {
        VERIFY_AFTER_SECS
    };
    b.finish(Requeue::After(
        requeue.min(generation_requeue.unwrap_or(u64::MAX)),
    ))
}

/// The backup before the first write: taken (an operation first in line, recorded in status
/// with its hash, the role's ARN and RoleId), or checked. `Err` blocks every write: a backup
/// that is gone (a new one now would hold iam-tailor's changes, not the original) or that no
/// longer hashes as recorded, or one found with no record that is not the role as it is.
fn backup(b: &mut Builder, live: &LiveRole) -> Result<(), (&'static str, String)> {
    let observed = b.observed;
    let config_map = backup_config_map(&observed.uid);
    let record = |sha256: &str| Backup {
        config_map: config_map.clone(),
        namespace: observed.backup_namespace.clone(),
        sha256: sha256.to_string(),
        role_arn: live.arn.clone(),
        role_id: live.role_id.clone(),
    };
    let place = format!("ConfigMap {}/{config_map}", observed.backup_namespace);
    match (&observed.previous.backup, &observed.backup) {
        (Some(recorded), Some(stored)) if stored.sha256 != recorded.sha256 => Err((
            "BackupTampered",
            format!(
                "{place} holds {}, not the {} written before the first change; iam-tailor \
                 writes nothing to the role and will not restore from it",
                stored.sha256, recorded.sha256
            ),
        )),
        (Some(_), Some(_)) => Ok(()),
        (Some(_), None) if !b.operations.is_empty() => Err((
            "BackupMissing",
            format!(
                "{place} holding the role's original policies is gone; iam-tailor writes \
                 nothing to the role without it"
            ),
        )),
        (Some(_), None) => Ok(()),
        // A backup whose status write was lost before any change: named again, but only if
        // it is exactly the role as it is now. Anything else is never adopted.
        (None, Some(stored)) if stored.snapshot.as_ref() == Ok(&BackupSnapshot::of(live)) => {
            b.status.backup = Some(record(&stored.sha256));
            Ok(())
        }
        (None, Some(stored)) if !b.operations.is_empty() => Err((
            "BackupMismatch",
            format!(
                "{place} exists but does not hold {} (RoleId {}) as it is now: iam-tailor did \
                 not write it for this resource, or the role changed since, so it is never \
                 adopted; delete it to take a new backup",
                live.arn, live.role_id
            ),
        )),
        (None, Some(_)) => Ok(()),
        (None, None) if !b.operations.is_empty() => {
            let snapshot = BackupSnapshot::of(live);
            b.status.backup = Some(record(&StoredBackup::of(&snapshot).sha256));
            b.operations.insert(
                0,
                Operation::BackupRole {
                    config_map: config_map.clone(),
                    snapshot,
                },
            );
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// What the spec would remove but iam-tailor leaves: documents holding a Deny (they only
/// narrow the role, so Ready is untouched) and a boundary that is not the applied one (it
/// may not narrow, so Ready is False). Each is `Drifted=True` with its own reason unless
/// other drift is already reported, and a Warning Event when the reason is new.
fn report_kept(
    b: &mut Builder,
    convergence: &Convergence,
    problem: &mut Option<(&'static str, String)>,
) {
    let mut kept = Vec::new();
    if let Some(message) = &convergence.boundary_changed {
        kept.push(("BoundaryChanged", message.clone()));
        problem.get_or_insert(("BoundaryChanged", message.clone()));
    }
    if !convergence.denies_kept.is_empty() {
        kept.push((
            "DenyAddedOutOfBand",
            format!(
                "kept {}: it holds a Deny statement, and iam-tailor never removes a Deny",
                convergence.denies_kept.join(", ")
            ),
        ));
    }
    let already_drifted = b.conditions.get("Drifted").is_some_and(|c| c.0 == TRUE);
    let before = b
        .observed
        .previous
        .conditions
        .iter()
        .find(|c| c.type_ == "Drifted")
        .map(|c| c.reason.clone());
    // The first (BoundaryChanged) names the condition when nothing else does.
    let mut named = already_drifted;
    for (reason, message) in kept {
        if before.as_deref() != Some(reason) {
            b.event(EventType::Warning, reason, message.clone());
        }
        if !named {
            b.set("Drifted", TRUE, reason, message);
            named = true;
        }
    }
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

/// Why the analysis is too thin to apply its proposal without a human (`spec.evidence`):
/// too few of the role's events, too many days without trail files, or a sharp drop in
/// matched events from the analysis before. Only trail files are counted: an Access Analyzer
/// analysis without `cloudTrail.s3` has no files of its own.
fn thin_evidence(spec: &LeastPrivilegeRoleSpec, analysis: Option<&Analysis>) -> Option<String> {
    let a = analysis?;
    let e = &spec.evidence;
    let mut why = Vec::new();
    if spec.cloud_trail.s3.is_some() && a.events_matched < e.min_matched_events {
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

/// Seconds from `now` (RFC 3339) to the next 00:00 UTC, when Access Analyzer's daily quota
/// starts again; an hour if `now` does not parse.
fn seconds_to_utc_midnight(now: &str) -> u64 {
    const DAY: i128 = 86_400;
    match crate::policy::values::parse_date(now) {
        Some(nanos) => {
            let secs = nanos.div_euclid(1_000_000_000);
            (DAY - secs.rem_euclid(DAY)) as u64
        }
        None => 3_600,
    }
}

/// `sha256:` of the spec fields an analysis depends on ([`Analysis::inputs`]).
pub fn analysis_inputs(spec: &LeastPrivilegeRoleSpec) -> String {
    let inputs = serde_json::json!({
        "roleName": spec.role_name,
        "roleArn": spec.role_arn,
        "assumeRoleArn": spec.assume_role_arn,
        "cloudTrail": spec.cloud_trail,
        "placeholders": spec.placeholders,
        "window": spec.window,
        "lastAccessedWindow": spec.last_accessed_window,
        "keep": spec.keep,
        "forbid": spec.forbid,
        "validation": spec.validation,
        "proposes": spec.mode != Mode::Observe,
    });
    crate::policy::canonical::sha256_revision(&inputs.to_string())
}

/// Whether to analyze now: never analyzed, the inputs changed, the last one is older than
/// `regenerateEvery`, or its end time does not parse (a hand-edited status).
pub fn analysis_due(
    spec: &LeastPrivilegeRoleSpec,
    previous: &LeastPrivilegeRoleStatus,
    now: crate::policy::values::Instant,
) -> bool {
    let Some(last) = &previous.analysis else {
        return true;
    };
    if last.inputs.as_deref() != Some(analysis_inputs(spec).as_str()) {
        return true;
    }
    let every = parse_duration(&spec.regenerate_every, "mhdw").unwrap_or(86_400);
    match crate::policy::values::parse_date(&last.window_end) {
        Some(end) => now - end >= i128::from(every) * 1_000_000_000,
        None => true,
    }
}

/// The status to write when reconcile failed: Ready=False with the failure, everything else
/// as `base` says.
pub fn failed(
    base: &LeastPrivilegeRoleStatus,
    generation: i64,
    now: &str,
    reason: &str,
    message: &str,
) -> LeastPrivilegeRoleStatus {
    let mut status = base.clone();
    set_condition(
        &mut status,
        "Ready",
        FALSE,
        reason,
        message,
        generation,
        now,
    );
    status
}

/// The status when `plan`'s operations stopped part-way: what the observation showed
/// (analysis, proposal, drift) stands, nothing new is claimed applied, the backup is named
/// only if it was written, and Ready and InSync say what failed. The next reconcile finishes.
pub fn apply_failed(
    plan: &Plan,
    previous: &LeastPrivilegeRoleStatus,
    backed_up: bool,
    generation: i64,
    now: &str,
    reason: &str,
    message: &str,
) -> LeastPrivilegeRoleStatus {
    let mut status = plan.status.clone();
    status.applied = previous.applied.clone();
    status.history = previous.history.clone();
    if !backed_up {
        status.backup = previous.backup.clone();
    }
    // A new revision was being applied: "Drifted=False, applied" is not true yet, so Drifted
    // stays as it was. (Drift being reverted stays Drifted=True.)
    let applying = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Drifted" && c.reason == "Applied");
    if applying {
        match previous.conditions.iter().find(|c| c.type_ == "Drifted") {
            Some(before) => {
                if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == "Drifted") {
                    *c = before.clone();
                }
            }
            None => set_condition(
                &mut status,
                "Drifted",
                UNKNOWN,
                reason,
                message,
                generation,
                now,
            ),
        }
    }
    for type_ in ["InSync", "Ready"] {
        // The plan set these as if its operations succeeded; the transition time counts from
        // what the resource showed before, so failing the same way again writes an identical
        // status (which triggers no reconcile of its own: retries follow the error backoff).
        if let Some(before) = previous.conditions.iter().find(|c| c.type_ == type_)
            && let Some(condition) = status.conditions.iter_mut().find(|c| c.type_ == type_)
        {
            *condition = before.clone();
        }
        set_condition(&mut status, type_, FALSE, reason, message, generation, now);
    }
    status
}

/// Sets one condition, keeping `lastTransitionTime` unless its status changes.
fn set_condition(
    status: &mut LeastPrivilegeRoleStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    generation: i64,
    now: &str,
) {
    let last_transition_time = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == value)
        .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: type_.to_string(),
        status: value.to_string(),
        reason: reason.to_string(),
        message: Some(message.to_string()).filter(|m| !m.is_empty()),
        last_transition_time,
        observed_generation: Some(generation),
    };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = condition,
        None => status.conditions.push(condition),
    }
}

/// The finalizer's cleanup. Retain leaves the role as it is. Restore puts the backup back
/// exactly (inline documents, attachments, boundary) and then detaches and deletes
/// iam-tailor's managed policies, adding before removing. The status is left as it was.
/// `Err` says why deletion has to wait (Restore without a backup): letting go would silently
/// leave the role as iam-tailor made it.
pub fn plan_cleanup(spec: &LeastPrivilegeRoleSpec, observed: &Observed) -> Result<Plan, String> {
    let mut events = Vec::new();
    let mut completion = Vec::new();
    let mut operations = Vec::new();
    let mut event = |type_, reason: &str, note: String| {
        events.push(PlannedEvent {
            type_,
            reason: reason.to_string(),
            note,
        })
    };
    let retain = "set deletionPolicy: Retain to delete without restoring";
    // A role this resource does not manage (claimed by another, or recreated) gets nothing.
    if let RoleState::Found(live) = &observed.role
        && let Some((reason, message)) = not_ours(&observed.previous, live, &observed.uid)
    {
        event(
            EventType::Normal,
            reason,
            format!("nothing restored or released: {message}"),
        );
        return Ok(Plan {
            operations,
            status: observed.previous.clone(),
            events,
            completion,
            requeue: Requeue::AwaitChange,
        });
    }
    match (spec.deletion_policy, &observed.role, &observed.backup) {
        (DeletionPolicy::Retain, _, _) => event(
            EventType::Normal,
            "Retained",
            "deletionPolicy Retain: the role keeps its current policies".to_string(),
        ),
        (DeletionPolicy::Restore, RoleState::NotPermitted { arn, reason }, _) => event(
            EventType::Warning,
            "RoleNotPermitted",
            format!("nothing restored to {arn}: {reason}"),
        ),
        (DeletionPolicy::Restore, RoleState::NotFound, _) => event(
            EventType::Normal,
            "RoleGone",
            "the role no longer exists; nothing to restore".to_string(),
        ),
        (DeletionPolicy::Restore, RoleState::Found(_), None) => {
            if let Some(b) = &observed.previous.backup {
                return Err(format!(
                    "ConfigMap {}/{} is gone, so the role cannot be restored; {retain}",
                    b.namespace, b.config_map
                ));
            } else {
                event(
                    EventType::Normal,
                    "NothingToRestore",
                    "iam-tailor never changed the role".to_string(),
                );
            }
        }
        (DeletionPolicy::Restore, RoleState::Found(live), Some(stored)) => {
            let backup = verified_backup(observed, live, stored)
                .map_err(|why| format!("{why}; iam-tailor does not restore from it; {retain}"))?;
            let restore = restore(live, &backup, &observed.previous);
            guard(live, &restore.operations).map_err(|w| {
                format!("restoring the backup would remove a Deny or the boundary: {w}")
            })?;
            operations = restore.operations;
            if !restore.kept.is_empty() {
                event(
                    EventType::Warning,
                    "KeptOnRestore",
                    format!(
                        "kept what was added after the backup and only narrows the role: {}",
                        restore.kept.join("; ")
                    ),
                );
            }
            let note = format!(
                "restored the role's original policies from ConfigMap {}",
                observed
                    .previous
                    .backup
                    .as_ref()
                    .map_or("?", |b| b.config_map.as_str())
            );
            completion.push(PlannedEvent {
                type_: EventType::Normal,
                reason: "Restored".to_string(),
                note,
            });
        }
    }
    // Last, the role is let go, so another resource may manage it.
    if let RoleState::Found(live) = &observed.role
        && live.claimed_by() == Some(observed.uid.as_str())
    {
        operations.push(Operation::ReleaseRole);
    }
    Ok(Plan {
        operations,
        status: observed.previous.clone(),
        events,
        completion,
        requeue: Requeue::AwaitChange,
    })
}

/// The stored backup, if it is the one written before the first change (the hash status
/// recorded), taken from this very role (ARN and RoleId), and every document in it parses.
fn verified_backup(
    observed: &Observed,
    live: &LiveRole,
    stored: &StoredBackup,
) -> Result<BackupSnapshot, String> {
    let place = format!(
        "the backup ConfigMap {}/{}",
        observed.backup_namespace,
        backup_config_map(&observed.uid)
    );
    if let Some(recorded) = &observed.previous.backup
        && recorded.sha256 != stored.sha256
    {
        return Err(format!(
            "{place} holds {}, not the {} written before the first change",
            stored.sha256, recorded.sha256
        ));
    }
    let snapshot = stored
        .snapshot
        .clone()
        .map_err(|e| format!("{place}: {e}"))?;
    if snapshot.role_arn != live.arn || snapshot.role_id != live.role_id {
        return Err(format!(
            "{place} was taken from {} (RoleId {}), not {} (RoleId {}): the role was deleted \
             and created again, or the backup is not this role's",
            snapshot.role_arn, snapshot.role_id, live.arn, live.role_id
        ));
    }
    for (name, document) in &snapshot.inline {
        Policy::parse(document).map_err(|e| format!("{place}: inline policy {name}: {e}"))?;
    }
    for arn in snapshot
        .attached
        .iter()
        .chain(&snapshot.permissions_boundary)
    {
        let account = arn.split(':').nth(4).unwrap_or("");
        if !arn.starts_with("arn:")
            || !arn.contains(":policy/")
            || (account != "aws" && account != live.account())
        {
            return Err(format!(
                "{place}: {arn} is not a managed policy of AWS or of the role's account"
            ));
        }
    }
    Ok(snapshot)
}

/// What Restore writes, and what it leaves that the backup did not have.
struct Restore {
    operations: Vec<Operation>,
    kept: Vec<String>,
}

/// Operations that turn `live` back into `backup`, then remove iam-tailor's policies (those
/// without a Deny first). What was added after the backup and holds a Deny, and a boundary
/// set or replaced since, stay: they only narrow, or may.
fn restore(live: &LiveRole, backup: &BackupSnapshot, status: &LeastPrivilegeRoleStatus) -> Restore {
    let mut ops = Vec::new();
    let mut kept = Vec::new();
    for (name, document) in &backup.inline {
        match live.inline.get(name) {
            Some(now) if now.canonical_json() == *document => {}
            // Overwriting would drop a Deny the backup's version lacks.
            Some(now) if has_deny(now) && Policy::parse(document).is_ok_and(|old| old != *now) => {
                kept.push(format!(
                    "inline policy {name} as it is now (it holds a Deny)"
                ));
            }
            _ => ops.push(Operation::PutInlinePolicy {
                name: name.clone(),
                document: document.clone(),
            }),
        }
    }
    let attached: BTreeSet<&str> = live.attached.iter().map(|a| a.arn.as_str()).collect();
    for arn in &backup.attached {
        if !attached.contains(arn.as_str()) {
            ops.push(Operation::AttachPolicy { arn: arn.clone() });
        }
    }
    match (&backup.permissions_boundary, &live.permissions_boundary) {
        (Some(arn), None) => ops.push(Operation::SetPermissionsBoundary { arn: arn.clone() }),
        (original, Some(now)) if original.as_ref() != Some(now) => {
            kept.push(format!("permissions boundary {now}"));
        }
        _ => {}
    }
    let original: BTreeSet<&str> = backup.attached.iter().map(String::as_str).collect();
    // (holds a Deny, operation): iam-tailor's own Deny-bearing policies go last.
    let mut removals: Vec<(bool, Operation)> = Vec::new();
    for a in live
        .attached
        .iter()
        .filter(|a| !original.contains(a.arn.as_str()))
    {
        let deny = has_deny(&a.document);
        if deny && !a.managed_by_iam_tailor {
            kept.push(format!("policy {} (it holds a Deny)", a.name));
            continue;
        }
        removals.push((deny, Operation::DetachPolicy { arn: a.arn.clone() }));
    }
    for (name, document) in &live.inline {
        if backup.inline.contains_key(name) {
            continue;
        }
        if has_deny(document) {
            kept.push(format!("inline policy {name} (it holds a Deny)"));
            continue;
        }
        removals.push((false, Operation::DeleteInlinePolicy { name: name.clone() }));
    }
    removals.sort_by_key(|(deny, _)| *deny);
    ops.extend(removals.into_iter().map(|(_, op)| op));
    // iam-tailor's policies for this role: by tag, and by the names its own scheme gives
    // (never taken from the status alone, which could name anyone's policy).
    let named_ours = |arn: &str| {
        (0..MAX_DOCUMENTS)
            .any(|i| arn == managed_policy_arn(&live.arn, &managed_policy_name(&live.name, i)))
    };
    let ours: BTreeSet<&str> = live
        .attached
        .iter()
        .filter(|a| a.managed_by_iam_tailor)
        .map(|a| a.arn.as_str())
        .chain(
            status
                .applied
                .iter()
                .chain(&status.history)
                .flat_map(|a| a.policy_arns.iter().map(String::as_str))
                .filter(|arn| named_ours(arn)),
        )
        .filter(|arn| !original.contains(arn))
        .collect();
    ops.extend(ours.into_iter().map(|arn| Operation::DeleteManagedPolicy {
        arn: arn.to_string(),
    }));
    Restore {
        operations: ops,
        kept,
    }
}

#[cfg(test)]
mod tests;
