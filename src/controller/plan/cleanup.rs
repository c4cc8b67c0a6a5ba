//! The finalizer's plan: Retain lets go of the role; Restore puts the verified backup back,
//! keeping what only narrows, then lets go.

use super::backup::{StoredBackup, backup_config_map, original_config_map};
use super::{EventType, MAX_DOCUMENTS, Observed, Plan, PlannedEvent, Requeue, not_ours};
use crate::controller::crd::{DeletionPolicy, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus};
use crate::policy::Policy;
use crate::role::proof::guard_knowing;
use crate::role::{
    BackupSnapshot, CustomerPolicyNow, LiveRole, Operation, RESTORABLE_TAG, RoleState, has_deny,
};
use std::collections::{BTreeMap, BTreeSet};

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
            restored: Default::default(),
            requeue: Requeue::AwaitChange,
        });
    }
    let own_backup = backup_config_map(&observed.uid);
    match (spec.deletion_policy, &observed.role, &observed.backup) {
        (DeletionPolicy::Retain, role, stored) => {
            event(
                EventType::Normal,
                "Retained",
                "deletionPolicy Retain: the role keeps its current policies".to_string(),
            );
            // The backup is the only record of the role before iam-tailor: kept by RoleId,
            // for the next resource on the role to adopt. An unverified one stays as it is.
            if let (RoleState::Found(live), Some(stored)) = (role, stored)
                && live.claimed_by() == Some(observed.uid.as_str())
                && let Ok(snapshot) = verified_backup(observed, live, stored)
            {
                match &observed.original {
                    None => operations.push(Operation::BackupRole {
                        config_map: original_config_map(&live.role_id),
                        snapshot,
                    }),
                    Some(kept) if kept == stored => {}
                    // Another original is kept already: both stay.
                    Some(_) => return Ok(plan_of(observed, operations, events, completion)),
                }
                operations.push(Operation::ForgetBackup {
                    config_map: own_backup.clone(),
                });
            }
        }
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
            let declares_document =
                (spec.permissions_boundary.as_ref()).is_some_and(|b| b.document.is_some());
            let restore = restore(
                live,
                &backup,
                &observed.previous,
                declares_document,
                &observed.customer_policies,
            );
            let now: BTreeMap<String, Policy> = (observed.customer_policies.iter())
                .filter_map(|(arn, now)| Some((arn.clone(), now.as_ref().ok()?.document.clone())))
                .collect();
            guard_knowing(live, &restore.operations, &now).map_err(|w| {
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
            if !restore.not_restored.is_empty() {
                event(
                    EventType::Warning,
                    "PolicyNotRestored",
                    format!(
                        "the backup's document of a customer-managed policy changed since is \
                         not put back: {}; a person can, from the backup's customerManaged \
                         (aws iam create-policy-version --set-as-default)",
                        restore.not_restored.join("; ")
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
            // The role holds the backup's state again: its job is done, and so is that of
            // the role's kept original when it was the same.
            operations.push(Operation::ForgetBackup {
                config_map: own_backup.clone(),
            });
            if observed.original.as_ref() == Some(stored) {
                operations.push(Operation::ForgetBackup {
                    config_map: original_config_map(&live.role_id),
                });
            }
        }
    }
    Ok(plan_of(observed, operations, events, completion))
}

/// The cleanup plan of `operations`: last, the role is let go, so another resource may manage
/// it.
fn plan_of(
    observed: &Observed,
    mut operations: Vec<Operation>,
    events: Vec<PlannedEvent>,
    completion: Vec<PlannedEvent>,
) -> Plan {
    if let RoleState::Found(live) = &observed.role
        && live.claimed_by() == Some(observed.uid.as_str())
    {
        operations.push(Operation::ReleaseRole);
    }
    Plan {
        operations,
        status: observed.previous.clone(),
        events,
        completion,
        restored: Default::default(),
        requeue: Requeue::AwaitChange,
    }
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
    match &observed.previous.backup {
        Some(recorded) if recorded.sha256 != stored.sha256 => {
            return Err(format!(
                "{place} holds {}, not the {} written before the first change",
                stored.sha256, recorded.sha256
            ));
        }
        Some(_) => {}
        // No record to check it against (lost, or deleted from the status): only the
        // operator's own seal on it vouches for it.
        None if !stored.sealed => {
            return Err(format!(
                "{place} carries no seal of this operator and status.backup records no hash: \
                 it cannot be told from a planted one"
            ));
        }
        None => {}
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
    /// Customer-managed policies whose document changed since the backup and is not put
    /// back, and why.
    not_restored: Vec<String>,
}

/// Operations that turn `live` back into `backup`, then remove iam-tailor's policies (those
/// without a Deny first). A customer-managed policy whose document changed since the backup
/// gets it back (`customer`: as IAM has them now) only when its owner tagged it restorable and
/// it is attached to no other identity (else writing it would change them too), and never
/// over a Deny; else it is reported as kept. What was added after the backup and holds a Deny, and a boundary
/// set or replaced since, stay: they only narrow, or may; except iam-tailor's own boundary
/// (a declared document), which gives way to the original, and whose policy is deleted
/// (`own_boundary_policy`: the spec declares one, so it may exist).
fn restore(
    live: &LiveRole,
    backup: &BackupSnapshot,
    status: &LeastPrivilegeRoleStatus,
    own_boundary_policy: bool,
    customer: &BTreeMap<String, Result<CustomerPolicyNow, String>>,
) -> Restore {
    let mut ops = Vec::new();
    let mut kept = Vec::new();
    let mut not_restored = Vec::new();
    let this_role = format!("role/{}", live.name);
    for (arn, document) in &backup.customer_managed {
        let Some(now) = customer.get(arn) else {
            continue;
        };
        let why_not = match now {
            Err(why) => Some(format!("it could not be read ({why})")),
            Ok(now) if now.document.canonical_json() == *document => continue,
            Ok(now) => {
                let others: Vec<&str> = (now.attached_to.iter())
                    .filter(|e| **e != this_role)
                    .map(String::as_str)
                    .collect();
                if !now.restorable {
                    Some(format!("it lacks the tag {RESTORABLE_TAG}=true"))
                } else if !others.is_empty() {
                    Some(format!("it is attached to {} too", others.join(", ")))
                } else if has_deny(&now.document) {
                    Some("it holds a Deny".to_string())
                } else {
                    None
                }
            }
        };
        match why_not {
            None => ops.push(Operation::RestorePolicyVersion {
                arn: arn.clone(),
                document: document.clone(),
            }),
            Some(why) => not_restored.push(format!("{arn} ({why})")),
        }
    }
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
    let own_boundary = live.boundary_policy_arn();
    let boundary_is_own = (live.boundary_policy.as_ref()).is_some_and(|p| {
        p.managed_by_iam_tailor && p.arn == own_boundary
    }) && live.permissions_boundary.as_ref() == Some(&own_boundary)
        // A backup taken with it in place (an earlier resource's) keeps it.
        && backup.permissions_boundary.as_ref() != Some(&own_boundary);
    match (&backup.permissions_boundary, &live.permissions_boundary) {
        (Some(arn), None) => ops.push(Operation::SetPermissionsBoundary { arn: arn.clone() }),
        (Some(arn), Some(_)) if boundary_is_own => {
            ops.push(Operation::SetPermissionsBoundary { arn: arn.clone() })
        }
        (None, Some(_)) if boundary_is_own => ops.push(Operation::DeletePermissionsBoundary),
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
    let named_ours = |arn: &str| (0..MAX_DOCUMENTS).any(|i| arn == live.policy_arn(i));
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
    let unused = live.permissions_boundary.as_ref() != Some(&own_boundary);
    if boundary_is_own || (own_boundary_policy && unused) {
        ops.push(Operation::DeleteManagedPolicy { arn: own_boundary });
    }
    Restore {
        operations: ops,
        kept,
        not_restored,
    }
}
