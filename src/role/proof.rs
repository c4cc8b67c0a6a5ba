//! Every state a plan passes through, checked against the state it started from.
//!
//! The role holds its documents together (inline, attached, Deny statements and the boundary
//! all at once), and IAM applies a plan one call at a time, so "the proposal is narrower than
//! the role" is not enough: what matters is each state the role is left in if the plan stops
//! there. [`prove_each_state`] replays the operations on a model of the role and asks
//! [`grants_no_new_access`] of every state against the first; [`guard`] holds the rules every
//! plan keeps, Restore included: a Deny iam-tailor did not write is never removed, and a
//! permissions boundary is never removed, replaced, or given a new document.

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
        | Operation::DeleteManagedPolicy { .. }
        | Operation::ClaimRole { .. }
        | Operation::ReleaseRole => false,
        Operation::PutManagedPolicy { arn, document, .. } => {
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
                None => false,
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

/// The rules every plan keeps, Restore included: no operation removes a Deny statement from
/// a document iam-tailor did not write (detach, delete, or overwrite), and none removes or
/// replaces the permissions boundary.
pub fn guard(before: &LiveRole, operations: &[Operation]) -> Result<(), Widening> {
    let ours: BTreeSet<&str> = before
        .attached
        .iter()
        .filter(|a| a.managed_by_iam_tailor)
        .map(|a| a.arn.as_str())
        .collect();
    let mut state = State::of(before);
    let mut store = BTreeMap::new();
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
            Operation::PutManagedPolicy { arn, .. } if state.boundary.as_ref() == Some(arn) => {
                return Err(refuse(format!(
                    "{arn} is the permissions boundary, whose document is never changed"
                )));
            }
            Operation::DeletePermissionsBoundary if state.boundary.is_some() => {
                return Err(refuse(
                    "a permissions boundary is never removed".to_string(),
                ));
            }
            Operation::SetPermissionsBoundary { arn } => {
                if let Some(now) = state.boundary.as_ref().filter(|now| *now != arn) {
                    return Err(refuse(format!(
                        "the permissions boundary {now} is never replaced"
                    )));
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
    guard(before, operations)?;
    let start = State::of(before);
    let start_documents = ceiling;
    let mut state = start.clone();
    let mut store: BTreeMap<String, Policy> = before
        .attached
        .iter()
        .map(|a| (a.arn.clone(), a.document.clone()))
        .collect();
    for (i, op) in operations.iter().enumerate() {
        if !step(&mut state, &mut store, op) {
            continue;
        }
        let widening = |reasons: Vec<String>| Widening {
            step: i + 1,
            operation: op.describe(),
            reasons,
        };
        if let Some(b) = &start.boundary
            && state.boundary.as_ref() != Some(b)
        {
            return Err(widening(vec![format!(
                "the permissions boundary {b} would be gone"
            )]));
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
mod differential;
#[cfg(test)]
mod tests;
