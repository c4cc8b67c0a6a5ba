//! `spec.rollbackTo`: an earlier revision put back on purpose. Its documents come from the
//! versions IAM keeps of iam-tailor's own policies (never from the status, which a tenant
//! can write), found by hashing them back to the revision; it is applied like an approved
//! proposal, but proven against a ceiling: what the role holds now together with what it
//! held before iam-tailor's first write (the backup), so a rollback may give back what a
//! later revision removed and never more.

use super::backup::original_documents;
use super::builder::{Builder, ConditionType, FALSE, TRUE};
use super::{set_json, set_revision};
use crate::controller::crd::{LeastPrivilegeRoleSpec, Mode, Proposal};
use crate::policy::Policy;
use crate::role::LiveRole;

/// At most this many combinations of policy versions are hashed in search of a revision
/// (one document: 5; two: 25; four: 625).
pub const MAX_ROLLBACK_CANDIDATES: usize = 4096;

/// The revision `spec.rollbackTo` asks for, when it is in force (Enforce): the shell then
/// reads [`Observed::rollback`](super::Observed::rollback).
pub fn rollback_wanted(spec: &LeastPrivilegeRoleSpec) -> Option<&str> {
    (spec.rollback_to.as_deref()).filter(|r| !r.is_empty() && spec.mode == Mode::Enforce)
}

/// What a rollback applies: a proposal made of the revision's documents, and the ceiling
/// every state on the way must stay within.
pub(super) struct Rollback {
    pub proposal: Proposal,
    pub documents: Vec<Policy>,
    pub ceiling: Ceiling,
}

/// What every state of a rollback must stay within.
pub(super) struct Ceiling {
    pub documents: Vec<Policy>,
    /// Why the role's original documents are not part of it, when they are not.
    pub without_original: Option<String>,
}

/// Sets Approved for `spec.rollbackTo` = `revision`: applied already, not found among IAM's
/// versions, or approved (the spec edit is the approval) with its ceiling.
pub(super) fn rollback(b: &mut Builder, revision: &str, live: &LiveRole) -> Option<Rollback> {
    let found = match &b.observed.rollback {
        None => Err("the versions of iam-tailor's policies were not read".to_string()),
        Some(Err(e)) => Err(e.clone()),
        Some(Ok(versions)) => find_revision(versions, revision),
    };
    let documents = match found {
        Ok(documents) => documents,
        Err(why) => {
            let message = format!("spec.rollbackTo {revision}: {why}");
            b.set(
                ConditionType::Approved,
                FALSE,
                "RollbackNotFound",
                message.clone(),
            );
            b.fail("RollbackNotFound", message);
            return None;
        }
    };
    let applied = b.status.applied.as_ref();
    let reason = if applied.is_some_and(|a| a.revision == revision) {
        "RolledBack"
    } else {
        "RollbackApproved"
    };
    let message = format!("{revision} (spec.rollbackTo) is held until spec.rollbackTo is removed");
    b.set(ConditionType::Approved, TRUE, reason, message);
    let mut ceiling = Ceiling {
        documents: live.documents(),
        without_original: None,
    };
    // Unknown documents leave the ceiling at the role as it is: never wider.
    match original_documents(b.observed, live) {
        Ok(documents) => ceiling.documents.extend(documents),
        Err(why) => ceiling.without_original = Some(why),
    }
    Some(Rollback {
        proposal: Proposal {
            revision: revision.to_string(),
            policy: set_json(&documents),
            generated_at: b.observed.now.clone(),
            ..Proposal::default()
        },
        documents,
        ceiling,
    })
}

/// The documents whose set has `revision`: one version of each of iam-tailor's policies
/// 0..n, for some n, `versions[i]` holding policy i's versions. Any combination that hashes
/// to the revision is its content, so the search may try combinations freely.
pub(super) fn find_revision(
    versions: &[Vec<Policy>],
    revision: &str,
) -> Result<Vec<Policy>, String> {
    let mut tried = 0usize;
    for n in 1..=versions.len() {
        let lists = &versions[..n];
        let combinations = (lists.iter()).try_fold(1usize, |acc, l| acc.checked_mul(l.len()));
        match combinations {
            Some(0) => break,
            Some(c) if tried.saturating_add(c) <= MAX_ROLLBACK_CANDIDATES => tried += c,
            _ => {
                return Err(format!(
                    "not among the first {tried} combinations of the versions IAM keeps of \
                     iam-tailor's policies (searching {n} documents would hash more than \
                     {MAX_ROLLBACK_CANDIDATES})"
                ));
            }
        }
        let mut index = vec![0usize; n];
        loop {
            let candidate: Vec<Policy> = (index.iter().zip(lists))
                .map(|(&i, l)| l[i].clone())
                .collect();
            if set_revision(&candidate) == revision {
                return Ok(candidate);
            }
            // The next combination, odometer-style; done when every place wrapped.
            let Some(place) = (0..n).rev().find(|&p| index[p] + 1 < lists[p].len()) else {
                break;
            };
            index[place] += 1;
            index[place + 1..].iter_mut().for_each(|i| *i = 0);
        }
    }
    Err(format!(
        "none of the versions IAM keeps of iam-tailor's policies ({tried} combinations, the \
         last {} versions of each) has that revision",
        crate::role::MAX_POLICY_VERSIONS
    ))
}
