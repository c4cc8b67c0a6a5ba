//! The ProposalReady condition: the proposal of this time's analysis, or the one before.

use super::builder::{Builder, ConditionType, FALSE, TRUE, UNKNOWN};
use super::{AnalysisResult, EventType, set_json, set_revision};
use crate::controller::crd::{
    DroppedGrant, GeneralizedGrant, Mode, Proposal, REPORT_LIMIT, WouldDenyCall,
};
use crate::controller::spec::ValidSpec;
use crate::policy::Policy;
use crate::policy::analysis::allowed;
use crate::role::LiveRole;

/// Observe proposes nothing; otherwise this time's analysis gives a new proposal (an Event
/// when its revision is new), or the last one stands.
pub(super) fn proposal_ready(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) {
    if spec.mode == Mode::Observe {
        b.status.proposal = None;
        b.set(
            ConditionType::ProposalReady,
            FALSE,
            "ObserveMode",
            "mode Observe only reports",
        );
        return;
    }
    if let Some(result) = &b.observed.analysis {
        let proposal = propose(result, live, &b.observed.now);
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
            let mut message = format!(
                "{} removes {} actions, adds {}",
                p.revision, p.removes, p.adds
            );
            if p.generalized_count > 0 {
                message.push_str(&format!(
                    "; {} resource patterns generalized for names that change (status.proposal.generalized)",
                    p.generalized_count
                ));
            }
            b.set(ConditionType::ProposalReady, TRUE, "ProposalReady", message);
        }
        None => b.set(
            ConditionType::ProposalReady,
            UNKNOWN,
            "AwaitingAnalysis",
            "no proposal yet",
        ),
    }
}

/// The proposal of `result`, with removes/adds counted in catalog actions against `live`.
fn propose(result: &AnalysisResult, live: &LiveRole, now: &str) -> Proposal {
    let documents = &result.generated.policies;
    let (granted, proposed) = (allowed(&live.documents()), allowed(documents));
    let (granted, proposed) = (&granted.names, &proposed.names);
    Proposal {
        revision: set_revision(documents),
        policy: set_json(documents),
        generated_at: now.to_string(),
        removes: granted.difference(proposed).count() as u64,
        adds: proposed.difference(granted).count() as u64,
        seen_by_iam: (result.seen_by_iam.iter().take(REPORT_LIMIT).cloned()).collect(),
        seen_by_iam_count: result.seen_by_iam.len() as u64,
        last_accessed_unavailable: result.analysis.last_accessed_unavailable.clone(),
        unresolved_placeholders: (result.unresolved.iter().take(REPORT_LIMIT).cloned()).collect(),
        unresolved_placeholders_count: result.unresolved.len() as u64,
        unresolved_instance_profiles: (result.unresolved_profiles.iter())
            .take(REPORT_LIMIT)
            .cloned()
            .collect(),
        unresolved_instance_profiles_count: result.unresolved_profiles.len() as u64,
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
        generalized: (result.generated.generalized.iter())
            .take(REPORT_LIMIT)
            .map(|g| GeneralizedGrant {
                resource: g.resource.clone(),
                actions: g.actions.iter().take(REPORT_LIMIT).cloned().collect(),
                from: g.from.clone(),
                from_count: g.from_count as u64,
                because: g.because.iter().map(|b| b.to_string()).collect(),
            })
            .collect(),
        generalized_count: result.generated.generalized.len() as u64,
        would_deny: (result.generated.would_deny.iter())
            .take(REPORT_LIMIT)
            .map(|w| WouldDenyCall {
                action: w.action.clone(),
                resource: w.resource.clone(),
                count: w.count,
                last_seen: w.last_seen.clone(),
            })
            .collect(),
        would_deny_count: result.generated.would_deny.len() as u64,
    }
}

/// The documents of a proposal, parsed back from its `policy`, and checked against its
/// revision: the status is not trusted, so what it says is re-derived before it is used.
pub(super) fn proposal_documents(proposal: &Proposal) -> Result<Vec<Policy>, String> {
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
