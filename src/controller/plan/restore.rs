//! Automatic restore (`spec.onAccessDenied`): after an apply, a call the role was refused,
//! on an action and resource its policies allowed before iam-tailor's first write, is given
//! back at once in the inline policy [`RESTORE_POLICY`], listed in `status.restore` with the
//! refused event, and taken away again `keepFor` after its last refusal or use. A refusal of
//! what the role never held, or of what `spec.forbid` names, is reported, never granted. Every entry is checked against the
//! original policies each time (the status is not trusted), with the sound never-widen proof.
//!
//! What would hand a thief of the role's credentials their old privileges never comes back on
//! its own: a refused privilege-sensitive action ([`crate::catalog::sensitive`], or one
//! `waitForApproval` names), and every refusal past `restoresPerDay`, is *pending* until a
//! person approves its revision (`approvedRestore`). An approval holds only the grants whose
//! restore document has exactly that revision, so a forged `status.restore.approved` gives
//! nothing back.

use super::backup::original_documents;
use super::builder::Builder;
use super::{EventType, PlannedEvent};
use crate::catalog::sensitive;
use crate::controller::crd::{
    ApprovedRestore, Grant, LeastPrivilegeRoleStatus, RefusedCall, RestoreStatus, RestoredGrant,
};
use crate::controller::spec::ValidSpec;
use crate::generate::forbidding;
use crate::policy::analysis::{Proof, grants_no_new_access};
use crate::policy::{Context, Decision, Policy, PolicySet, Request};
use crate::role::LiveRole;
use crate::time::{Instant, parse_date, rfc3339};
use std::collections::{BTreeMap, BTreeSet};

/// The inline policy holding what was given back: iam-tailor's own, on every managed role.
pub const RESTORE_POLICY: &str = "iam-tailor-restored";
/// Permissions held given back at once; refusals past it are reported, not restored.
pub const MAX_RESTORED: usize = 50;
/// Refused calls not given back shown in `status.restore.notRestored`.
const NOT_RESTORED_SHOWN: usize = 10;
/// A day, in the nanoseconds of [`Instant`]: the window of `restoresPerDay`.
const DAY: i128 = 86_400 * 1_000_000_000;

/// From when the role's calls are read for the restore: the last apply, or `keepFor` ago if
/// that is later (older refusals would have expired). `None`: no restore (not Enforce, off,
/// no trail files, nothing applied).
pub fn restore_since(
    spec: &ValidSpec,
    previous: &LeastPrivilegeRoleStatus,
    now: Instant,
) -> Option<Instant> {
    let keep_for = spec.restore_for?;
    let applied = parse_date(&previous.applied.as_ref()?.applied_at)?;
    Some(applied.max(now - keep_for.as_nanos() as i128))
}

/// What the restore asks of the role's inline policy [`RESTORE_POLICY`]. The name is
/// iam-tailor's: whatever it holds that the restore did not put there is drift.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum RestoreTarget {
    /// No restore here (off, not Enforce, nothing applied): the role holds no such policy.
    Off,
    /// The original policies are not known now: nothing is given back or taken away, so the
    /// policy may hold only what the restore held at the last look.
    Unknown { last: Option<Policy> },
    /// Hold exactly `wanted` (`None`: no such policy); `last` is what the restore held at
    /// the last look, which the role may still hold until `wanted` is written.
    Hold {
        wanted: Option<Policy>,
        last: Option<Policy>,
    },
}

/// Sets `status.restore` and the events; returns what the role's restore policy should be.
pub(super) fn restored(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) -> RestoreTarget {
    let (Some(keep_for), Some(applied), Some(now)) = (
        spec.restore_for,
        b.status.applied.clone(),
        parse_date(&b.observed.now),
    ) else {
        b.status.restore = None;
        return RestoreTarget::Off;
    };
    let keep_for = keep_for.as_nanos() as i128;
    let previous = b.observed.previous.restore.clone().unwrap_or_default();
    let last = held_document(&previous.restored);
    let refused = (b.observed.after_apply.as_ref())
        .map(|usage| usage.denied_grants.clone())
        .unwrap_or_default();
    let applied_at = parse_date(&applied.applied_at).unwrap_or(Instant::MAX);
    let refused: Vec<_> = (refused.into_iter())
        .filter(|(_, d)| parse_date(&d.seen.last_seen).is_some_and(|t| t >= applied_at))
        .collect();
    if previous.restored.is_empty() && refused.is_empty() {
        b.status.restore = None;
        return RestoreTarget::Hold { wanted: None, last };
    }
    let original = match original_documents(b.observed, live) {
        Ok(documents) => documents,
        Err(why) => {
            // Neither given back nor taken away while what the role held is unknown.
            b.status.restore = Some(RestoreStatus {
                blocked: Some(format!("the role's original policies are not known: {why}")),
                ..previous
            });
            return RestoreTarget::Unknown { last };
        }
    };
    let held_before = |action: &str, resource: &str| {
        grant(action, resource).is_some_and(|g| {
            grants_no_new_access(std::slice::from_ref(&g), &original) == Proof::Proven
        })
    };
    // Used again: kept `keepFor` after the last use.
    let after_apply = b.observed.after_apply.as_ref();
    let kept_by_use = |action: &str, resource: &str| {
        (after_apply?.actions.get(action))
            .and_then(|a| a.resources.get(resource))
            .and_then(|seen| parse_date(&seen.last_seen))
            .map(|used| used + keep_for)
    };
    let on_denied = &spec.on_access_denied;
    // A person's approval counts only for the grants whose document has the revision approved.
    let approval = (previous.approved.clone()).filter(|a| {
        on_denied.approved_restore.as_ref() == Some(&a.revision)
            && revision_of(&a.grants) == a.revision
    });
    let approved = |action: &str, resource: &str| {
        (approval.as_ref()).is_some_and(|a| {
            (a.grants.iter()).any(|g| g.action == action && g.resource == resource)
        })
    };
    let waits = |action: &str| waits_for_a_person(spec, action);
    let mut held: BTreeMap<(String, String), RestoredGrant> = BTreeMap::new();
    for mut entry in previous.restored {
        let by_use = kept_by_use(&entry.action, &entry.resource);
        let Some(expires) = parse_date(&entry.expires).map(|e| e.max(by_use.unwrap_or(e))) else {
            continue;
        };
        entry.expires = rfc3339(expires);
        if expires > now
            && held.len() < MAX_RESTORED
            && forbidding(&spec.forbid, &entry.action).is_none()
            && (waits(&entry.action).is_none() || approved(&entry.action, &entry.resource))
            && held_before(&entry.action, &entry.resource)
        {
            held.insert((entry.action.clone(), entry.resource.clone()), entry);
        }
    }
    let allows_now = allows(&live.documents());
    let mut new = Vec::new();
    let mut not_restored = Vec::new();
    let mut pending: Vec<RefusedCall> = Vec::new();
    // Given back on their own within the last day (a person's approvals not counted).
    let mut automatic_today = (held.values())
        .filter(|e| !approved(&e.action, &e.resource))
        .filter(|e| parse_date(&e.restored_at).is_some_and(|t| t > now - DAY))
        .count();
    for ((action, resource), denial) in refused {
        let denied_at = parse_date(&denial.seen.last_seen).unwrap_or(now);
        let key = (action.clone(), resource.clone());
        let why_not = if held.contains_key(&key) {
            None
        } else if let Some(pattern) = forbidding(&spec.forbid, &action) {
            Some(format!("forbidden by spec.forbid {pattern}: never granted"))
        } else if !held_before(&action, &resource) {
            Some("the role's policies before iam-tailor did not allow it: never granted".into())
        } else if allows_now(&action, &resource) {
            Some("the role's policies allow it: refused by something else (an SCP, the boundary, a resource policy)".into())
        } else if held.len() + pending.len() >= MAX_RESTORED {
            Some(format!(
                "more than {MAX_RESTORED} permissions restored at once"
            ))
        } else {
            None
        };
        // Never given back, or only by a person.
        let set_aside = if let Some(reason) = why_not {
            Some((&mut not_restored, reason))
        } else if held.contains_key(&key) || approved(&action, &resource) {
            None
        } else if let Some(why) = waits(&action) {
            Some((&mut pending, why))
        } else if automatic_today >= on_denied.restores_per_day as usize {
            let reason = format!(
                "past spec.onAccessDenied.restoresPerDay ({}): waits for a person",
                on_denied.restores_per_day
            );
            Some((&mut pending, reason))
        } else {
            automatic_today += 1;
            None
        };
        if let Some((list, reason)) = set_aside {
            list.push(RefusedCall {
                access_level: access_level(&action),
                action,
                resource,
                event_id: denial.event_id,
                source_ip: denial.source_ip,
                last_seen: denial.seen.last_seen,
                reason,
            });
            continue;
        }
        let is_new = !held.contains_key(&key);
        let entry = held.entry(key).or_insert_with(|| RestoredGrant {
            access_level: access_level(&action),
            action,
            resource,
            restored_at: b.observed.now.clone(),
            ..RestoredGrant::default()
        });
        if parse_date(&entry.denied_at).is_none_or(|t| t <= denied_at) {
            entry.denied_at = denial.seen.last_seen.clone();
            entry.event_id = denial.event_id.clone();
            entry.source_ip = denial.source_ip.clone();
        }
        if is_new {
            new.push(audit(entry, ""));
        }
        let by_use = kept_by_use(&entry.action, &entry.resource).unwrap_or(0);
        let expires = parse_date(&entry.expires).unwrap_or(0);
        entry.expires = rfc3339(expires.max(denied_at + keep_for).max(by_use));
    }
    // What waits for a person is approved as one document: every grant that waits, held or
    // pending.
    let mut approved_now = None;
    let mut pending_revision = None;
    if !pending.is_empty() {
        let mut waiting: BTreeSet<Grant> = (held.values())
            .filter(|e| approved(&e.action, &e.resource))
            .map(|e| grant_of(&e.action, &e.resource))
            .collect();
        waiting.extend(pending.iter().map(|p| grant_of(&p.action, &p.resource)));
        let waiting: Vec<Grant> = waiting.into_iter().collect();
        let revision = revision_of(&waiting);
        if on_denied.approved_restore.as_ref() == Some(&revision) {
            for call in pending.drain(..) {
                let denied_at = parse_date(&call.last_seen).unwrap_or(now);
                let entry = RestoredGrant {
                    action: call.action,
                    resource: call.resource,
                    event_id: call.event_id,
                    source_ip: call.source_ip,
                    access_level: call.access_level,
                    denied_at: call.last_seen,
                    restored_at: b.observed.now.clone(),
                    expires: rfc3339(denied_at + keep_for),
                };
                new.push(audit(&entry, ", approved"));
                held.insert((entry.action.clone(), entry.resource.clone()), entry);
            }
            approved_now = Some(ApprovedRestore {
                revision,
                grants: waiting,
            });
        } else {
            if previous.pending_revision.as_ref() != Some(&revision) {
                let calls: Vec<String> = (pending.iter())
                    .map(|p| format!("{} on {} ({})", p.action, p.resource, p.reason))
                    .collect();
                b.event(
                    EventType::Warning,
                    "RestoreAwaitsApproval",
                    format!(
                        "refused, held before iam-tailor, and not given back without a person: \
                         {}; to give them back set spec.onAccessDenied.approvedRestore: {revision}",
                        calls.join("; ")
                    ),
                );
            }
            pending_revision = Some(revision);
        }
    }
    if !new.is_empty() {
        b.completion.push(PlannedEvent {
            type_: EventType::Warning,
            reason: "PermissionRestored".to_string(),
            note: format!(
                "refused after {} was applied, allowed before iam-tailor: restored {} in inline \
                 policy {RESTORE_POLICY} (status.restore)",
                applied.revision,
                (new.iter().map(|(text, _)| text.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let shown_before = &previous.not_restored;
    let fresh: Vec<String> = (not_restored.iter())
        .filter(|r| {
            !(shown_before.iter()).any(|s| s.action == r.action && s.resource == r.resource)
        })
        .map(|r| format!("{} on {} ({})", r.action, r.resource, r.reason))
        .collect();
    if !fresh.is_empty() {
        b.event(
            EventType::Warning,
            "DeniedNotRestored",
            format!("refused and not given back: {}", fresh.join("; ")),
        );
    }
    for (_, level) in new {
        *b.restored.entry(level).or_default() += 1;
    }
    let restored: Vec<RestoredGrant> = held.into_values().collect();
    let wanted = held_document(&restored);
    b.status.restore = Some(RestoreStatus {
        not_restored_count: not_restored.len() as u64,
        not_restored: not_restored.into_iter().take(NOT_RESTORED_SHOWN).collect(),
        restored,
        blocked: None,
        pending,
        pending_revision,
        approved: approved_now.or(approval),
    })
    .filter(|r| !r.restored.is_empty() || r.not_restored_count > 0 || !r.pending.is_empty());
    RestoreTarget::Hold { wanted, last }
}

/// `action`'s access level as the catalog has it, `Unknown` when it has none.
fn access_level(action: &str) -> String {
    (crate::catalog::catalog().action(action))
        .map_or("Unknown", |a| a.access_level().as_str())
        .to_string()
}

/// A grant given back, as the audit says it (the PermissionRestored Event), and its access
/// level (the metric's label).
fn audit(entry: &RestoredGrant, how: &str) -> (String, String) {
    let from = match entry.source_ip.as_str() {
        "" => String::new(),
        ip => format!(" from {ip}"),
    };
    let event = match entry.event_id.as_str() {
        "" => String::new(),
        id => format!("; refused call {id}"),
    };
    let text = format!(
        "{} on {} ({}{event}{from}{how})",
        entry.action, entry.resource, entry.access_level
    );
    (text, entry.access_level.clone())
}

/// The restore policy holding `restored`.
fn held_document(restored: &[RestoredGrant]) -> Option<Policy> {
    restore_document(
        restored
            .iter()
            .map(|r| (r.action.as_str(), r.resource.as_str())),
    )
}

/// Why giving `action` back waits for a person, if it does.
fn waits_for_a_person(spec: &ValidSpec, action: &str) -> Option<String> {
    if let Some(why) = sensitive::why(action) {
        return Some(format!("privilege-sensitive, {why}: waits for a person"));
    }
    (spec.on_access_denied.wait_for_approval.iter())
        .find(|pattern| crate::wildcard::matches_ignore_case(pattern, action))
        .map(|pattern| format!("spec.onAccessDenied.waitForApproval {pattern}: waits for a person"))
}

fn grant_of(action: &str, resource: &str) -> Grant {
    Grant {
        action: action.to_string(),
        resource: resource.to_string(),
    }
}

/// The revision a person approves for `grants`: that of their restore document.
fn revision_of(grants: &[Grant]) -> String {
    let pairs = grants
        .iter()
        .map(|g| (g.action.as_str(), g.resource.as_str()));
    restore_document(pairs).map_or_else(String::new, |d| d.revision())
}

/// One Allow of `action` on `resource`, if it parses as a policy.
fn grant(action: &str, resource: &str) -> Option<Policy> {
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    });
    Policy::from_value(&document).ok()
}

/// Whether `documents` allow `action` on `resource` (no context keys).
fn allows(documents: &[Policy]) -> impl Fn(&str, &str) -> bool + use<> {
    let set = (documents.iter().cloned())
        .fold(PolicySet::builder(), |set, p| set.identity(p))
        .build();
    let context = Context::new();
    move |action, resource| {
        let request = Request {
            action,
            // A refused call's resource as it named it (`a${*}` is the key `a*`).
            resource: &crate::wildcard::unescape_literal(resource),
            principal: None,
            context: &context,
        };
        set.evaluate(&request).decision == Decision::Allowed
    }
}

/// The restore policy for `(action, resource)` grants: one statement per action, resources
/// sorted.
fn restore_document<'a>(grants: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Policy> {
    let mut by_action: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (action, resource) in grants {
        by_action.entry(action).or_default().push(resource);
    }
    for resources in by_action.values_mut() {
        resources.sort_unstable();
    }
    if by_action.is_empty() {
        return None;
    }
    let statements: Vec<serde_json::Value> = (by_action.into_iter())
        .map(|(action, resources)| {
            serde_json::json!({"Effect": "Allow", "Action": action, "Resource": resources})
        })
        .collect();
    let document = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    Policy::from_value(&document).ok()
}
