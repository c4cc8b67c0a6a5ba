//! Every state a plan passes through, checked against the state it started from.
//!
//! The role holds its documents together (inline, attached, Deny statements and the boundary
//! all at once), and IAM applies a plan one call at a time, so "the proposal is narrower than
//! the role" is not enough: what matters is each state the role is left in if the plan stops
//! there. [`prove_each_state`] replays the operations on a model of the role and asks
//! [`grants_no_new_access`] of every state against the first; [`guard`] holds the rules every
//! plan keeps, Restore included: a Deny iam-tailor did not write is never removed, and a
//! permissions boundary is never removed, replaced, or given a new document, unless the new
//! document is proven within the old (or, for Restore, the boundary is iam-tailor's own).
//! Setting a boundary where there was none only narrows.

use super::{LiveRole, Operation, has_deny};
use crate::policy::Policy;
use crate::policy::analysis::{Proof, grants_no_new_access};
use crate::policy::document::Effect;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The first state of a plan that is not provably within the role's access before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widening {
    /// 1-based position of the operation after which the role would be wider.
    pub step: usize,
    /// The operation, in words.
    pub operation: String,
    pub reasons: Vec<String>,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "after step {} ({}): {}",
            self.step,
            self.operation,
            self.reasons.join("; ")
        )
    }
}

/// The role's permissions as IAM would hold them part-way through a plan.
#[derive(Clone)]
struct State {
    /// Inline policy name → its document (`None`: a document that does not parse).
    inline: BTreeMap<String, Option<Policy>>,
    /// Attached managed policy ARN → its document (`None`: not known to the plan).
    attached: BTreeMap<String, Option<Policy>>,
    boundary: Option<String>,
}

impl State {
    fn of(role: &LiveRole) -> State {
        State {
            inline: role
                .inline
                .iter()
                .map(|(name, doc)| (name.clone(), Some(doc.clone())))
                .collect(),
            attached: role
                .attached
                .iter()
                .map(|a| (a.arn.clone(), Some(a.document.clone())))
                .collect(),
            boundary: role.permissions_boundary.clone(),
        }
    }

    /// The documents, or the policies whose documents are unknown.
    fn documents(&self) -> Result<Vec<Policy>, Vec<String>> {
        let unknown: Vec<String> = (self.inline.iter())
            .filter(|(_, d)| d.is_none())
            .map(|(name, _)| format!("inline policy {name}"))
            .chain(
                (self.attached.iter())
                    .filter(|(_, d)| d.is_none())
                    .map(|(arn, _)| arn.clone()),
            )
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        Ok(self
            .inline
            .values()
            .chain(self.attached.values())
            .flatten()
            .cloned()
            .collect())
    }
}

/// The model's step: applies `op` to `state`, with `store` holding managed policy documents
/// by ARN (those attached at the start and those the plan puts). Returns whether the role's
/// permissions may have changed.
fn step(state: &mut State, store: &mut BTreeMap<String, Policy>, op: &Operation) -> bool {
    match op {
        Operation::BackupRole { .. }
        | Operation::ForgetBackup { .. }
        | Operation::DeleteManagedPolicy { .. }
        | Operation::ClaimRole { .. }
        | Operation::ReleaseRole => false,
        Operation::PutManagedPolicy { arn, document, .. }
        | Operation::RestorePolicyVersion { arn, document } => {
            let parsed = Policy::parse(document).ok();
            match &parsed {
                Some(p) => store.insert(arn.clone(), p.clone()),
                None => store.remove(arn),
            };
            match state.attached.get_mut(arn) {
                Some(slot) => {
                    *slot = parsed;
                    true
                }
                // The boundary's new document narrows or widens everything.
                None => state.boundary.as_ref() == Some(arn),
            }
        }
        Operation::AttachPolicy { arn } => {
            state.attached.insert(arn.clone(), store.get(arn).cloned());
            true
        }
        Operation::DetachPolicy { arn } => state.attached.remove(arn).is_some(),
        Operation::PutInlinePolicy { name, document } => {
            state
                .inline
                .insert(name.clone(), Policy::parse(document).ok());
            true
        }
        Operation::DeleteInlinePolicy { name } => state.inline.remove(name).is_some(),
        Operation::SetPermissionsBoundary { arn } => {
            state.boundary = Some(arn.clone());
            true
        }
        Operation::DeletePermissionsBoundary => state.boundary.take().is_some(),
    }
}

/// The managed policy documents a plan starts out knowing, by ARN: `known` (read for the
/// plan, such as a declared boundary's), then those attached and the boundary's, which win.
fn seed(before: &LiveRole, known: &BTreeMap<String, Policy>) -> BTreeMap<String, Policy> {
    let boundary = before.boundary_policy.as_deref();
    let role = before.attached.iter().chain(boundary);
    (known.iter().map(|(arn, doc)| (arn.clone(), doc.clone())))
        .chain(role.map(|a| (a.arn.clone(), a.document.clone())))
        .collect()
}

/// Whether every request `new` allows, `old` allows: a boundary may become `new`.
fn within(new: &Policy, old: &Policy) -> bool {
    matches!(
        grants_no_new_access(std::slice::from_ref(new), std::slice::from_ref(old)),
        Proof::Proven
    )
}

/// Whether `arn` is the role's boundary and iam-tailor's own policy for it.
fn own_boundary(before: &LiveRole, arn: &str) -> bool {
    before.permissions_boundary.as_deref() == Some(arn)
        && (before.boundary_policy.as_ref())
            .is_some_and(|p| p.arn == arn && p.managed_by_iam_tailor)
}

/// The rules every plan keeps, Restore included: no operation removes a Deny statement from
/// a document iam-tailor did not write (detach, delete, or overwrite), and none removes,
/// replaces or rewrites the permissions boundary, unless the new document is proven within
/// the old one or the boundary is iam-tailor's own (which Restore may take back).
pub fn guard(before: &LiveRole, operations: &[Operation]) -> Result<(), Widening> {
    guard_knowing(before, operations, &BTreeMap::new())
}

/// [`guard`], knowing the documents of `known` managed policies besides the role's.
pub fn guard_knowing(
    before: &LiveRole,
    operations: &[Operation],
    known: &BTreeMap<String, Policy>,
) -> Result<(), Widening> {
    let ours: BTreeSet<&str> = before
        .attached
        .iter()
        .filter(|a| a.managed_by_iam_tailor)
        .map(|a| a.arn.as_str())
        .collect();
    let mut state = State::of(before);
    let mut store = seed(before, known);
    for (i, op) in operations.iter().enumerate() {
        let refuse = |reason: String| Widening {
            step: i + 1,
            operation: op.describe(),
            reasons: vec![reason],
        };
        match op {
            Operation::DetachPolicy { arn }
                if !ours.contains(arn.as_str())
                    && matches!(state.attached.get(arn), Some(Some(doc)) if has_deny(doc)) =>
            {
                return Err(refuse(format!("{arn} holds a Deny statement")));
            }
            Operation::DeleteInlinePolicy { name }
                if state
                    .inline
                    .get(name)
                    .is_some_and(|d| d.as_ref().is_none_or(has_deny)) =>
            {
                return Err(refuse(format!(
                    "inline policy {name} holds a Deny statement"
                )));
            }
            Operation::PutInlinePolicy { name, document } => {
                if let Some(Some(old)) = state.inline.get(name) {
                    let new = Policy::parse(document).ok();
                    if let Some(lost) = lost_denies(old, new.as_ref()) {
                        return Err(refuse(format!(
                            "overwriting inline policy {name} drops its Deny {lost}"
                        )));
                    }
                }
            }
            Operation::PutManagedPolicy { arn, document, .. }
                if state.boundary.as_ref() == Some(arn) =>
            {
                let proven = match (store.get(arn), Policy::parse(document)) {
                    (Some(old), Ok(new)) => within(&new, old),
                    _ => false,
                };
                if !proven {
                    return Err(refuse(format!(
                        "{arn} is the permissions boundary: its document changes only to one \
                         proven within it"
                    )));
                }
            }
            Operation::RestorePolicyVersion { arn, document } => {
                if state.boundary.as_ref() == Some(arn) {
                    return Err(refuse(format!(
                        "{arn} is the permissions boundary: Restore never rewrites it"
                    )));
                }
                if let Some(old) = store.get(arn)
                    && let Some(lost) = lost_denies(old, Policy::parse(document).ok().as_ref())
                {
                    return Err(refuse(format!("rewriting {arn} drops its Deny {lost}")));
                }
            }
            Operation::DeletePermissionsBoundary => {
                if let Some(now) = state.boundary.as_ref().filter(|b| !own_boundary(before, b)) {
                    return Err(refuse(format!(
                        "the permissions boundary {now} is never removed"
                    )));
                }
            }
            Operation::SetPermissionsBoundary { arn } => {
                if let Some(now) = state.boundary.as_ref().filter(|now| *now != arn) {
                    let proven = match (store.get(now), store.get(arn)) {
                        (Some(old), Some(new)) => within(new, old),
                        _ => false,
                    };
                    if !proven && !own_boundary(before, now) {
                        return Err(refuse(format!(
                            "the permissions boundary {now} is replaced only by one proven \
                             within it"
                        )));
                    }
                }
            }
            _ => {}
        }
        step(&mut state, &mut store, op);
    }
    Ok(())
}

/// The first Deny statement of `old` that `new` does not hold (in canonical form).
fn lost_denies(old: &Policy, new: Option<&Policy>) -> Option<String> {
    let denies = |p: &Policy| -> Vec<String> {
        p.canonical()
            .statements
            .into_iter()
            .filter(|s| s.effect == Effect::Deny)
            .map(|s| {
                Policy {
                    version: None,
                    id: None,
                    statements: vec![s],
                }
                .canonical_json()
            })
            .collect()
    };
    let kept = new.map(denies).unwrap_or_default();
    denies(old).into_iter().find(|d| !kept.contains(d))
}

/// Checks the state after each operation (and so the end state) against `before`: every
/// request it allows, `before` allowed, under the same or a new permissions boundary. The
/// first state that cannot be proven is the error; [`guard`] is checked too.
pub fn prove_each_state(before: &LiveRole, operations: &[Operation]) -> Result<(), Widening> {
    prove_each_state_within(before, operations, &before.documents())
}

/// [`prove_each_state`] against `ceiling` instead of `before`'s documents: every state
/// allows only what `ceiling` allows (a rollback: what the role holds now together with what
/// it held before iam-tailor's first write). [`guard`] and the boundary rule hold as ever.
pub fn prove_each_state_within(
    before: &LiveRole,
    operations: &[Operation],
    ceiling: &[Policy],
) -> Result<(), Widening> {
    prove(before, operations, ceiling, &BTreeMap::new())
}

/// [`prove_each_state`], knowing the documents of `known` managed policies besides the
/// role's (a declared boundary's, to prove a replacement).
pub fn prove_each_state_knowing(
    before: &LiveRole,
    operations: &[Operation],
    known: &BTreeMap<String, Policy>,
) -> Result<(), Widening> {
    prove(before, operations, &before.documents(), known)
}

/// Every state: the identity documents within `ceiling`, and the boundary the one the role
/// started with or a document proven within it; [`guard_knowing`] first.
fn prove(
    before: &LiveRole,
    operations: &[Operation],
    ceiling: &[Policy],
    known: &BTreeMap<String, Policy>,
) -> Result<(), Widening> {
    guard_knowing(before, operations, known)?;
    let start = State::of(before);
    let start_documents = ceiling;
    let mut state = start.clone();
    let mut store = seed(before, known);
    let start_boundary = (start.boundary.as_ref()).map(|arn| (arn, store.get(arn).cloned()));
    for (i, op) in operations.iter().enumerate() {
        if !step(&mut state, &mut store, op) {
            continue;
        }
        let widening = |reasons: Vec<String>| Widening {
            step: i + 1,
            operation: op.describe(),
            reasons,
        };
        if let Some((b, old)) = &start_boundary {
            let now = state.boundary.as_ref();
            let same = now == Some(*b) && store.get(*b) == old.as_ref();
            let proven = match (old, now.and_then(|n| store.get(n))) {
                (Some(old), Some(new)) => within(new, old),
                _ => false,
            };
            if !same && !proven {
                return Err(widening(vec![match now {
                    None => format!("the permissions boundary {b} would be gone"),
                    Some(n) => format!(
                        "the permissions boundary {b} would become {n}, not proven within it"
                    ),
                }]));
            }
        }
        let documents = state.documents().map_err(|unknown| {
            widening(vec![format!(
                "the document of {} is not known to the plan, so what it grants cannot be proven",
                unknown.join(", ")
            )])
        })?;
        if let Proof::CannotProve(reasons) = grants_no_new_access(&documents, start_documents) {
            return Err(widening(reasons));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
