//! InSync and Drifted: apply the approved proposal, or compare the role with what was
//! applied and put drift back — each only when every state the role passes through is proven
//! within what it holds now ([`prove_each_state`](crate::role::proof::prove_each_state)).

use super::approved::Decision;
use super::builder::{Builder, ConditionType, FALSE, TRUE, UNKNOWN};
use super::restore::{RESTORE_POLICY, RestoreTarget};
use super::{EventType, HISTORY_LIMIT, PlannedEvent, set_revision};
use crate::controller::crd::{Applied, AttachedPolicies, InlinePolicies, Proposal};
use crate::controller::spec::ValidSpec;
use crate::policy::Policy;
use crate::role::names::{PolicyNames, first_form_name};
use crate::role::proof::prove_each_state_within;
use crate::role::{AttachedPolicy, LiveRole, Operation, has_deny};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn in_sync(
    b: &mut Builder,
    spec: &ValidSpec,
    live: &LiveRole,
    decision: Decision,
    restore: RestoreTarget,
) {
    let Decision {
        applying,
        documents,
        mut may_revert,
        ceiling,
    } = decision;
    // What the role may hold at any step: what it holds now (or a rollback's ceiling), and
    // the permissions the restore gives back (each proven within the original).
    let restore_document = match &restore {
        RestoreTarget::Hold { wanted, .. } => wanted.clone(),
        RestoreTarget::Off | RestoreTarget::Unknown { .. } => None,
    };
    let within = |base: Vec<Policy>| -> Vec<Policy> {
        base.into_iter().chain(restore_document.clone()).collect()
    };
    let applying = applying.and_then(|(p, documents)| {
        let mut target = Target::proposal(live, &p.revision, documents);
        target.restore = restore.clone();
        let convergence = converge(spec, live, &target);
        let quota = b.observed.limits.managed_policies_per_role;
        let peak = peak_attached(live, &convergence.operations);
        let base = (ceiling.as_ref()).map_or_else(|| live.documents(), |c| c.documents.clone());
        match prove_each_state_within(live, &convergence.operations, &within(base)) {
            Ok(()) if peak > quota => {
                let message = format!(
                    "{} is approved, but applying it would have {peak} managed policies attached \
                     at once, over the role's quota of {quota} (--managed-policies-per-role): \
                     detach some, or raise the quota",
                    p.revision
                );
                b.event(EventType::Warning, "ManagedPolicyQuota", message.clone());
                b.set(ConditionType::Approved, FALSE, "ManagedPolicyQuota", message.clone());
                b.fail("ManagedPolicyQuota", message);
                None
            }
            Ok(()) => Some((p, target, convergence)),
            Err(widening) => {
                let mut message = format!(
                    "{} is approved, but applying it cannot be proven never to widen the role: {widening}",
                    p.revision
                );
                if let Some(why) = ceiling.as_ref().map(|c| &c.without_original) {
                    message.push_str(&format!(
                        " (a rollback may return to what the role held before iam-tailor's \
                         first write{})",
                        why.as_ref().map_or(String::new(), |w| format!(", not known here: {w}"))
                    ));
                }
                b.event(EventType::Warning, "NotProvablyNarrower", message.clone());
                b.set(ConditionType::Approved, FALSE, "NotProvablyNarrower", message.clone());
                b.fail("NotProvablyNarrower", message);
                may_revert = false;
                None
            }
        }
    });
    if let Some((p, target, convergence)) = applying {
        apply(b, live, &p, &target, &convergence, ceiling.is_some());
        report_kept(b, &convergence);
    } else if let Some(applied) = b.status.applied.clone() {
        let documents = documents
            .filter(|(revision, _)| *revision == applied.revision)
            .map(|(_, docs)| docs);
        let mut target = Target::applied(live, &applied, documents);
        if spec.boundary.is_some() {
            // The boundary stage keeps the declared one: it is no drift of the applied.
            target.boundary = live.permissions_boundary.clone();
        }
        target.restore = restore;
        let convergence = converge(spec, live, &target);
        drift(
            b,
            live,
            &applied,
            &convergence,
            may_revert,
            &within(live.documents()),
        );
        report_kept(b, &convergence);
    } else {
        b.set(
            ConditionType::InSync,
            UNKNOWN,
            "NothingApplied",
            "nothing applied yet",
        );
        b.set(
            ConditionType::Drifted,
            FALSE,
            "NothingApplied",
            "nothing applied yet",
        );
    }
}

/// The most managed policies attached to the role at any point while `operations` run.
fn peak_attached(live: &LiveRole, operations: &[Operation]) -> usize {
    let mut attached: BTreeSet<&str> = live.attached.iter().map(|a| a.arn.as_str()).collect();
    let mut peak = attached.len();
    for operation in operations {
        match operation {
            Operation::AttachPolicy { arn } => {
                attached.insert(arn);
            }
            Operation::DetachPolicy { arn } => {
                attached.remove(arn.as_str());
            }
            _ => {}
        }
        peak = peak.max(attached.len());
    }
    peak
}

/// Applies the approved proposal (or `spec.rollbackTo`'s revision): its operations,
/// `status.applied` (the one before goes to history) and PolicyApplied (RolledBack) once they
/// all succeed.
fn apply(
    b: &mut Builder,
    live: &LiveRole,
    p: &Proposal,
    target: &Target,
    convergence: &Convergence,
    rollback: bool,
) {
    b.operations.extend(convergence.operations.iter().cloned());
    let applied = Applied {
        revision: p.revision.clone(),
        applied_at: b.observed.now.clone(),
        policy_arns: target.policies.iter().map(|(_, arn)| arn.clone()).collect(),
        permissions_boundary: live.permissions_boundary.clone(),
        rollback,
    };
    let names: Vec<&str> = target.policies.iter().map(|(n, _)| n.as_str()).collect();
    let (reason, mut note) = if rollback {
        let from = (b.status.applied.as_ref()).map_or("nothing applied", |a| a.revision.as_str());
        let note = format!(
            "rolled back to {} (spec.rollbackTo) from {from}, as {}",
            p.revision,
            names.join(", ")
        );
        ("RolledBack", note)
    } else {
        let note = format!(
            "applied {} as {}; removes {} actions",
            p.revision,
            names.join(", "),
            p.removes
        );
        ("PolicyApplied", note)
    };
    if let Some(previous) = b.status.applied.take() {
        b.status.history.insert(0, previous);
        b.status.history.truncate(HISTORY_LIMIT);
    }
    if !convergence.denies_kept.is_empty() {
        note.push_str(&format!(
            "; kept {} (a Deny is never removed)",
            convergence.denies_kept.join(", ")
        ));
    }
    if live.names == PolicyNames::ByRoleId {
        note.push_str(&format!(
            "; named for the RoleId: {} is not this role's (an earlier role of this name \
             left it?); once nothing needs it, delete it",
            first_form_name(&live.name, 0)
        ));
    }
    b.completion.push(PlannedEvent {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note,
    });
    b.status.applied = Some(applied);
    let message = if rollback {
        format!("{} applied (spec.rollbackTo)", p.revision)
    } else {
        format!("{} applied", p.revision)
    };
    b.set(ConditionType::InSync, TRUE, "Applied", message.clone());
    b.set(ConditionType::Drifted, FALSE, "Applied", message);
}

/// Compares the role with the applied revision; drift is put back when the spec says Revert
/// and putting it back is proven never to widen the role as it is now, else reported.
fn drift(
    b: &mut Builder,
    live: &LiveRole,
    applied: &Applied,
    convergence: &Convergence,
    may_revert: bool,
    ceiling: &[Policy],
) {
    if convergence.changes.is_empty() {
        let message = format!("the role holds {}", applied.revision);
        b.set(ConditionType::InSync, TRUE, "InSync", message.clone());
        b.set(ConditionType::Drifted, FALSE, "InSync", message);
        restore_only(b, live, convergence, ceiling);
        return;
    }
    let what = convergence.changes.join("; ");
    let proof = if may_revert && !convergence.operations.is_empty() {
        Some(prove_each_state_within(
            live,
            &convergence.operations,
            ceiling,
        ))
    } else {
        None
    };
    let quota = b.observed.limits.managed_policies_per_role;
    let peak = peak_attached(live, &convergence.operations);
    let (reason, note) = match &proof {
        Some(Ok(())) if peak > quota => (
            "ManagedPolicyQuota",
            format!(
                "{what}; not reverted: that would have {peak} managed policies attached at \
                 once, over the role's quota of {quota}"
            ),
        ),
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
    b.set(ConditionType::InSync, FALSE, "Drifted", what);
    b.set(ConditionType::Drifted, TRUE, reason, note.clone());
    if reason == "Reverting" {
        b.operations.extend(convergence.operations.iter().cloned());
        return;
    }
    if b.problem.is_none() {
        let reason = if reason == "Reported" {
            "Drifted"
        } else {
            reason
        };
        b.fail(reason, note);
    }
    restore_only(b, live, convergence, ceiling);
}

/// The restore's own writes, when nothing else is written: proven within the role as it is
/// and the permissions given back, or not written (the restore is then reported).
fn restore_only(b: &mut Builder, live: &LiveRole, convergence: &Convergence, ceiling: &[Policy]) {
    if convergence.restore.is_empty() {
        return;
    }
    match prove_each_state_within(live, &convergence.restore, ceiling) {
        Ok(()) => b.operations.extend(convergence.restore.iter().cloned()),
        Err(widening) => {
            let message = format!(
                "the restore cannot be proven within the role's original policies: {widening}"
            );
            b.event(EventType::Warning, "NotProvablyNarrower", message.clone());
            b.completion.retain(|e| e.reason != "PermissionRestored");
            b.restored.clear();
            b.fail("NotProvablyNarrower", message);
        }
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
    /// The restore's inline policy ([`RESTORE_POLICY`]).
    restore: RestoreTarget,
}

impl Target {
    fn proposal(live: &LiveRole, revision: &str, documents: Vec<Policy>) -> Target {
        Target {
            revision: revision.to_string(),
            policies: (0..documents.len())
                .map(|i| (live.policy_name(i), live.policy_arn(i)))
                .collect(),
            documents: Some(documents),
            boundary: live.permissions_boundary.clone(),
            restore: RestoreTarget::Off,
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
            .map(|i| (live.policy_name(i), live.policy_arn(i)))
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
    /// The writes of the restore's inline policy (in `operations` too): not drift.
    restore: Vec<Operation>,
}

/// Puts and attaches come before any detach or delete, so the role never holds less than
/// the target while it switches; among removals, documents without a Deny go first, so no
/// Allow is ever left unfenced. Every state is proven by [`prove_each_state_within`] afterwards.
fn converge(spec: &ValidSpec, live: &LiveRole, target: &Target) -> Convergence {
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
    // The restore's policy: put with the others, removed after them, and no drift while it
    // holds what the restore held or holds now. Anything else under iam-tailor's name is drift
    // (whatever `inlinePolicies` says), put right with the same writes.
    let (mut restore_put, mut restore_delete) = (None, None);
    let now = live.inline.get(RESTORE_POLICY);
    let (wanted, expected) = match &target.restore {
        RestoreTarget::Off => (None, None),
        // Nothing is given back while the originals are unknown: kept, never written.
        RestoreTarget::Unknown { last } => (None, last.as_ref()),
        RestoreTarget::Hold { wanted, last } => (wanted.as_ref(), last.as_ref()),
    };
    let planted = now.is_some() && now != expected && now != wanted;
    if planted {
        changes.push(format!(
            "inline policy {RESTORE_POLICY} holds what the restore did not give back"
        ));
    }
    match (wanted, now) {
        (Some(wanted), now) if now != Some(wanted) => {
            restore_put = Some(Operation::PutInlinePolicy {
                name: RESTORE_POLICY.to_string(),
                document: wanted.canonical_json(),
            });
        }
        (None, Some(_)) if planted || matches!(target.restore, RestoreTarget::Hold { .. }) => {
            restore_delete = Some(Operation::DeleteInlinePolicy {
                name: RESTORE_POLICY.to_string(),
            });
        }
        _ => {}
    }
    if spec.inline_policies == InlinePolicies::Delete {
        for (name, document) in live.inline.iter().filter(|(n, _)| *n != RESTORE_POLICY) {
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
    operations.extend(restore_put.clone());
    operations.extend(attaches);
    operations.extend(removals.into_iter().map(|(_, op)| op));
    operations.extend(restore_delete.clone());
    Convergence {
        operations,
        changes,
        denies_kept,
        boundary_changed,
        // Putting right what was planted is drift's to do (or only report), not the restore's.
        restore: if planted {
            Vec::new()
        } else {
            restore_put.into_iter().chain(restore_delete).collect()
        },
    }
}

/// What the spec would remove but iam-tailor leaves: documents holding a Deny (they only
/// narrow the role, so Ready is untouched) and a boundary that is not the applied one (it
/// may not narrow, so Ready is False). Each is `Drifted=True` with its own reason unless
/// other drift is already reported, and a Warning Event when the reason is new.
fn report_kept(b: &mut Builder, convergence: &Convergence) {
    let mut kept = Vec::new();
    if let Some(message) = &convergence.boundary_changed {
        kept.push(("BoundaryChanged", message.clone()));
        b.problem
            .get_or_insert(("BoundaryChanged", message.clone()));
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
    let already_drifted = b
        .conditions
        .get(&ConditionType::Drifted)
        .is_some_and(|c| c.0 == TRUE);
    let before = b
        .observed
        .previous
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Drifted.as_str())
        .map(|c| c.reason.clone());
    // The first (BoundaryChanged) names the condition when nothing else does.
    let mut named = already_drifted;
    for (reason, message) in kept {
        if before.as_deref() != Some(reason) {
            b.event(EventType::Warning, reason, message.clone());
        }
        if !named {
            b.set(ConditionType::Drifted, TRUE, reason, message);
            named = true;
        }
    }
}
