//! The shadow period (`spec.enforce.shadowFor`): the proposal replayed against the calls the
//! role makes after it was proposed, before it may be applied.
//!
//! Each analysis replays the proposal the status held against the role's calls from the day
//! the period began. Would-be denials beyond `maxWouldDeny` restart the period with the new
//! proposal, which the same analysis generated from a window that includes those calls; a
//! new proposal without them continues the period. The gate opens on a replay made at least
//! `shadowFor` after the period began.

use super::builder::Builder;
use super::proposal::proposal_documents;
use super::{AnalysisResult, EventType};
use crate::controller::crd::{LeastPrivilegeRoleStatus, Shadow, WouldDenyCall};
use crate::controller::spec::{ShadowGate, ValidSpec};
use crate::generate::would_break;
use crate::role::LiveRole;
use crate::time::{Instant, parse_date};

/// Would-be denials kept in `status.shadow.wouldDeny`.
const SHADOW_EXAMPLES: usize = 10;

/// When the shadow period began, for the shell to ask for the role's calls since: none
/// without a gate, or before the first proposal (nothing to replay yet).
pub fn shadow_since(spec: &ValidSpec, previous: &LeastPrivilegeRoleStatus) -> Option<Instant> {
    spec.shadow?;
    previous.proposal.as_ref()?;
    parse_date(&previous.shadow.as_ref()?.since)
}

/// When the gate could open and no replay has been made since: the time to analyze (and so
/// replay) again. None when the period has been checked through, or there is none.
pub fn shadow_ready_unchecked(spec: &ValidSpec, shadow: Option<&Shadow>) -> Option<Instant> {
    let gate = spec.shadow?;
    let shadow = shadow?;
    let ready = ready_at(gate, shadow)?;
    let checked = parse_date(&shadow.checked_at)?;
    (checked < ready).then_some(ready)
}

fn ready_at(gate: ShadowGate, shadow: &Shadow) -> Option<Instant> {
    Some(parse_date(&shadow.since)? + gate.period.as_nanos() as Instant)
}

/// Why the gate holds `revision`, or None when it has shadowed long enough.
pub(super) fn shadow_hold(
    gate: ShadowGate,
    shadow: Option<&Shadow>,
    revision: &str,
) -> Option<String> {
    let Some(s) = shadow.filter(|s| s.revision == revision) else {
        return Some(format!("{revision} has not begun its shadow period"));
    };
    let (Some(ready), Some(checked)) = (ready_at(gate, s), parse_date(&s.checked_at)) else {
        return Some(format!(
            "{revision}: status.shadow does not read; the period starts again"
        ));
    };
    (checked < ready).then(|| {
        format!(
            "{revision} is shadowing live calls since {}: {} calls replayed, {} would have been \
             denied (at most {} allowed); it may be applied after a replay from {}",
            s.since,
            s.calls,
            s.would_deny_calls,
            gate.max_would_deny,
            crate::time::rfc3339(ready),
        )
    })
}

/// Sets `status.shadow` from this time's analysis (see the module docs).
pub(super) fn shadowed(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) {
    let (Some(gate), Some(proposal)) = (spec.shadow, b.status.proposal.clone()) else {
        b.status.shadow = None;
        return;
    };
    let now = b.observed.now.clone();
    // The status is not trusted: a period that does not read, or was checked before it began
    // or after now (a future check would open the gate), starts again.
    let now_at = parse_date(&now);
    let previous = (b.observed.previous.shadow.clone()).filter(|s| {
        match (parse_date(&s.since), parse_date(&s.checked_at), now_at) {
            (Some(since), Some(checked), Some(now)) => since <= checked && checked <= now,
            _ => false,
        }
    });
    let fresh =
        (b.observed.analysis.as_ref()).and_then(|a: &AnalysisResult| a.shadow_usage.as_ref());
    let start = |would_deny: Vec<WouldDenyCall>, restarts: u64| Shadow {
        revision: proposal.revision.clone(),
        since: now.clone(),
        checked_at: now.clone(),
        calls: 0,
        would_deny_calls: 0,
        would_deny,
        restarts,
    };
    let shadow = match (previous, fresh) {
        // The first proposal begins the period: nothing was called after it yet.
        (None, _) => start(Vec::new(), 0),
        // No analysis this time: the period stands as last replayed.
        (Some(last), None) if last.revision == proposal.revision => last,
        (Some(last), None) => start(Vec::new(), last.restarts),
        (Some(last), Some(usage)) => {
            // The proposal that was shadowed is the one the status held before this analysis.
            let shadowed = (b.observed.previous.proposal.as_ref())
                .filter(|p| p.revision == last.revision)
                .and_then(|p| proposal_documents(p).ok());
            let Some(documents) = shadowed else {
                b.status.shadow = Some(start(Vec::new(), last.restarts));
                return;
            };
            let denied = would_break(usage, &documents, &spec.forbid, &live.documents());
            let would_deny_calls = (denied.iter()).fold(0u64, |n, w| n.saturating_add(w.count));
            let examples: Vec<WouldDenyCall> = (denied.iter().take(SHADOW_EXAMPLES))
                .map(|w| WouldDenyCall {
                    action: w.action.clone(),
                    resource: w.resource.clone(),
                    count: w.count,
                    last_seen: w.last_seen.clone(),
                })
                .collect();
            if would_deny_calls > gate.max_would_deny {
                let shown: Vec<String> = (examples.iter().take(3))
                    .map(|w| format!("{} on {}", w.action, w.resource))
                    .collect();
                b.event(
                    EventType::Warning,
                    "WouldDeny",
                    format!(
                        "in its shadow period since {}, {} would have denied {} calls ({}); \
                         the shadow period starts again with {}",
                        last.since,
                        last.revision,
                        would_deny_calls,
                        shown.join(", "),
                        proposal.revision
                    ),
                );
                start(examples, last.restarts + 1)
            } else {
                let calls =
                    (usage.actions.values()).fold(0u64, |n, a| n.saturating_add(a.seen.count));
                Shadow {
                    revision: proposal.revision.clone(),
                    since: last.since,
                    checked_at: now.clone(),
                    calls,
                    would_deny_calls,
                    would_deny: if examples.is_empty() {
                        last.would_deny
                    } else {
                        examples
                    },
                    restarts: last.restarts,
                }
            }
        }
    };
    b.status.shadow = Some(shadow);
}
