//! The BoundaryInPlace condition: the permissions boundary the spec declares
//! (`spec.permissionsBoundary`). Enforce sets it where the role has none (that only narrows),
//! puts it back when removed, and replaces another boundary (or rewrites its own document)
//! only when the new document is proven within the old; these writes come before any other.

use super::builder::{Builder, ConditionType, FALSE, TRUE, UNKNOWN};
use super::{EventType, PlannedEvent};
use crate::controller::crd::Mode;
use crate::controller::spec::{DeclaredBoundary, ValidSpec};
use crate::policy::analysis::allowed_actions;
use crate::policy::{Context, Decision, Policy, PolicySet, Request};
use crate::role::proof::prove_each_state_knowing;
use crate::role::{AttachedPolicy, LiveRole, Operation};
use std::collections::{BTreeMap, BTreeSet};

/// At most this many of the used actions a declared boundary denies are named.
const MAX_DENIED_NAMED: usize = 5;

/// The boundary's ARN the spec declares for `live`.
fn declared_arn(declared: &DeclaredBoundary, live: &LiveRole) -> String {
    match declared {
        DeclaredBoundary::Arn(arn) => arn.clone(),
        DeclaredBoundary::Document(_) => live.boundary_policy_arn(),
    }
}

/// The declared boundary ARN whose document the shell reads for the plan: one given by ARN
/// that is to replace the role's boundary (a replacement is proven on the documents).
pub fn declared_boundary_to_read(spec: &ValidSpec, live: &LiveRole) -> Option<String> {
    match &spec.boundary {
        Some(DeclaredBoundary::Arn(arn))
            if spec.mode == Mode::Enforce
                && live.permissions_boundary.is_some()
                && live.permissions_boundary.as_ref() != Some(arn) =>
        {
            Some(arn.clone())
        }
        _ => None,
    }
}

/// Sets BoundaryInPlace and plans the boundary's writes; returns the role as it will be once
/// they succeed, for the stages after (which then see the boundary in place).
pub(super) fn boundary_in_place(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) -> LiveRole {
    let Some(declared) = &spec.boundary else {
        let message = "spec.permissionsBoundary is not set";
        b.set(
            ConditionType::BoundaryInPlace,
            UNKNOWN,
            "NotDeclared",
            message,
        );
        return live.clone();
    };
    let wanted = declared_arn(declared, live);
    let field = |i| wanted.split(':').nth(i).unwrap_or_default();
    let role_partition = live.arn.split(':').nth(1).unwrap_or_default();
    let (partition, account) = (field(1), field(4));
    if partition != role_partition || (account != "aws" && account != live.account()) {
        let message = format!(
            "permissionsBoundary.policyArn {wanted} is not a policy of the role's account {} \
             or of AWS, in the role's partition {role_partition}",
            live.account()
        );
        b.set(
            ConditionType::BoundaryInPlace,
            FALSE,
            "InvalidBoundary",
            message.clone(),
        );
        b.fail("InvalidBoundary", message);
        return live.clone();
    }
    // The declared document: the spec's own, or the policy's as read.
    let document = declared_document(b, declared, live);
    let now = live.permissions_boundary.as_deref();
    let current = (live.boundary_policy.as_ref()).filter(|p| Some(p.arn.as_str()) == now);
    let content_ok = match (declared, current) {
        (DeclaredBoundary::Document(doc), Some(p)) => {
            p.document.canonical_json() == doc.canonical_json()
        }
        _ => true,
    };
    if now == Some(wanted.as_str()) && content_ok {
        let message = format!("the role's boundary is {wanted}");
        b.set(
            ConditionType::BoundaryInPlace,
            TRUE,
            "BoundaryInPlace",
            message,
        );
        return live.clone();
    }
    let what = match now {
        None => format!("the role has no permissions boundary, not the declared {wanted}"),
        Some(n) if n == wanted => format!("{wanted}'s document is not the declared one"),
        Some(n) => format!("the role's permissions boundary is {n}, not the declared {wanted}"),
    };
    if spec.mode != Mode::Enforce {
        let message = format!("{what}; mode {:?} never writes to IAM", spec.mode);
        b.set(
            ConditionType::BoundaryInPlace,
            FALSE,
            "NotEnforcing",
            message,
        );
        return live.clone();
    }
    let mut operations = Vec::new();
    if let DeclaredBoundary::Document(doc) = declared
        && !(content_ok && current.is_some_and(|p| p.arn == wanted))
    {
        operations.push(Operation::PutManagedPolicy {
            name: live.boundary_policy_name(),
            arn: wanted.clone(),
            document: doc.canonical_json(),
        });
    }
    if now != Some(wanted.as_str()) {
        operations.push(Operation::SetPermissionsBoundary {
            arn: wanted.clone(),
        });
    }
    // A declared policy's document as read; the spec's own document is in its put.
    let known: BTreeMap<String, Policy> = match (declared, &document) {
        (DeclaredBoundary::Arn(_), Ok(d)) => BTreeMap::from([(wanted.clone(), d.clone())]),
        _ => BTreeMap::new(),
    };
    if let Err(widening) = prove_each_state_knowing(live, &operations, &known) {
        let unread = document
            .err()
            .map_or(String::new(), |e| format!(" (its document: {e})"));
        let message = format!(
            "{what}, and putting it in place cannot be proven never to widen the role{unread}: \
             {widening}; iam-tailor replaces a boundary only with one proven within it"
        );
        // Recorded once: the builder drops a Warning a condition already showed.
        b.event(
            EventType::Warning,
            "BoundaryNotProvablyNarrower",
            message.clone(),
        );
        b.set(
            ConditionType::BoundaryInPlace,
            FALSE,
            "NotProvablyNarrower",
            message.clone(),
        );
        b.fail("BoundaryNotProvablyNarrower", message);
        return live.clone();
    }
    let message = format!("{what}: set now");
    b.set(
        ConditionType::BoundaryInPlace,
        TRUE,
        "BoundaryInPlace",
        message,
    );
    // Said once the writes succeeded (a claim first postpones them).
    b.completion.push(PlannedEvent {
        type_: EventType::Normal,
        reason: "BoundaryDeclared".to_string(),
        note: format!("{what}: put in place"),
    });
    b.operations.extend(operations);
    let mut after = live.clone();
    after.permissions_boundary = Some(wanted.clone());
    after.boundary_policy = document.ok().map(|document| {
        Box::new(AttachedPolicy {
            arn: wanted.clone(),
            name: wanted.rsplit('/').next().unwrap_or(&wanted).to_string(),
            document,
            managed_by_iam_tailor: matches!(declared, DeclaredBoundary::Document(_)),
        })
    });
    after
}

/// The declared document: the spec's own, or the policy's as read (the role's boundary, or
/// read for the plan).
fn declared_document(
    b: &Builder,
    declared: &DeclaredBoundary,
    live: &LiveRole,
) -> Result<Policy, String> {
    match declared {
        DeclaredBoundary::Document(doc) => Ok(doc.clone()),
        DeclaredBoundary::Arn(arn) => {
            match (&live.boundary_policy, &b.observed.declared_boundary) {
                (Some(p), _) if p.arn == *arn => Ok(p.document.clone()),
                (_, Some(read)) => read.clone(),
                (_, None) => Err("not read".to_string()),
            }
        }
    }
}

/// After the proposal stage: adds to BoundaryInPlace which of the actions in the proposal
/// this reconcile publishes (the role used them in the window) the declared boundary may
/// deny, with a Warning of the same text (recorded once, while the condition shows it). Said,
/// not acted on: the spec in Git is the boundary's approval, but a boundary that breaks the
/// workload should not be a surprise. Nothing without a proposal (Observe) or a known
/// declared document.
pub(super) fn denies_used_actions(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) {
    let Some(declared) = &spec.boundary else {
        return;
    };
    let Ok(document) = declared_document(b, declared, live) else {
        return;
    };
    let Some(Ok(proposal)) = (b.status.proposal.as_ref()).map(super::proposal::proposal_documents)
    else {
        return;
    };
    let denied = denied_by(&document, &proposal);
    if denied.is_empty() {
        return;
    }
    let (first, more) = denied.split_at(denied.len().min(MAX_DENIED_NAMED));
    let more = match more.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let Some((_, _, message)) = b.conditions.get_mut(&ConditionType::BoundaryInPlace) else {
        return;
    };
    message.push_str(&format!(
        "; it may deny {} of the proposal's actions, which the role used: {}{more}",
        denied.len(),
        first.join(", ")
    ));
    let note = message.clone();
    b.event(EventType::Warning, "BoundaryDeniesUsedActions", note);
}

/// The actions `proposal` allows on some resource that `boundary` does not allow there (with
/// no request context: a conditional boundary may deny them).
fn denied_by(boundary: &Policy, proposal: &[Policy]) -> Vec<String> {
    let set = PolicySet::builder().identity(boundary.clone()).build();
    let context = Context::new();
    let mut denied = BTreeSet::new();
    for allowed in allowed_actions(proposal) {
        let refused = allowed.resources.iter().any(|resource| {
            let request = Request {
                action: &allowed.action,
                resource: &crate::wildcard::unescape_literal(resource),
                principal: None,
                context: &context,
            };
            set.evaluate(&request).decision != Decision::Allowed
        });
        if refused {
            denied.insert(allowed.action);
        }
    }
    denied.into_iter().collect()
}
