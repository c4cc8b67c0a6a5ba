//! The plan under construction: conditions by type, operations, events, and the problem
//! that makes Ready False; and the status edits the shell makes when a plan could not run.

use super::{EventType, Observed, Plan, PlannedEvent, Requeue};
use crate::controller::crd::{Condition, LeastPrivilegeRoleStatus};
use crate::role::Operation;
use std::collections::BTreeMap;

pub(super) const CONDITION_TYPES: [&str; 9] = [
    "Analyzed",
    "LastAccessedAvailable",
    "TrustOK",
    "BoundaryInPlace",
    "ProposalReady",
    "Approved",
    "InSync",
    "Drifted",
    "Ready",
];

pub(super) const TRUE: &str = "True";
pub(super) const FALSE: &str = "False";
pub(super) const UNKNOWN: &str = "Unknown";

/// Collects the plan; conditions are set by type and emitted in [`CONDITION_TYPES`] order.
pub(super) struct Builder<'a> {
    pub observed: &'a Observed,
    pub status: LeastPrivilegeRoleStatus,
    /// Type → (status, reason, message).
    pub conditions: BTreeMap<&'static str, (&'static str, &'static str, String)>,
    pub operations: Vec<Operation>,
    pub events: Vec<PlannedEvent>,
    pub completion: Vec<PlannedEvent>,
    /// What makes Ready False (reason, message); the last stage to find one names it.
    pub problem: Option<(&'static str, String)>,
    /// Permissions this plan gives back, by access level ([`Plan::restored`]).
    pub restored: std::collections::BTreeMap<String, u64>,
}

impl<'a> Builder<'a> {
    pub fn new(observed: &'a Observed) -> Self {
        let mut status = observed.previous.clone();
        status.observed_generation = Some(observed.generation);
        Builder {
            observed,
            status,
            conditions: BTreeMap::new(),
            operations: Vec::new(),
            events: Vec::new(),
            completion: Vec::new(),
            problem: None,
            restored: Default::default(),
        }
    }

    pub fn set(
        &mut self,
        type_: &'static str,
        status: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) {
        self.conditions
            .insert(type_, (status, reason, message.into()));
    }

    pub fn event(&mut self, type_: EventType, reason: &str, note: impl Into<String>) {
        self.events.push(PlannedEvent {
            type_,
            reason: reason.to_string(),
            note: note.into(),
        });
    }

    /// Records what makes Ready False, in place of any problem found before.
    pub fn fail(&mut self, reason: &'static str, message: impl Into<String>) {
        self.problem = Some((reason, message.into()));
    }

    /// Unset conditions become Unknown; `lastTransitionTime` stays as it was unless the
    /// condition's status changed, so a steady state writes an identical status.
    pub fn finish(mut self, requeue: Requeue) -> Plan {
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
                    message: Some(bounded(message)).filter(|m| !m.is_empty()),
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
        // A Warning whose text a condition already showed says nothing new: recorded once,
        // not on every reconcile that finds the same thing.
        let said: Vec<&str> = (previous.iter())
            .filter_map(|c| c.message.as_deref())
            .collect();
        self.events.retain(|e| {
            e.type_ != EventType::Warning || !said.contains(&bounded(e.note.clone()).as_str())
        });
        self.status.conditions = conditions;
        Plan {
            operations: self.operations,
            status: self.status,
            events: self.events,
            completion: self.completion,
            restored: self.restored,
            requeue,
        }
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

/// A condition message longer than this is cut (a prover's explanation can be long, and the
/// whole object must stay far below etcd's limit).
pub const MAX_MESSAGE_BYTES: usize = 8192;

/// `message` cut to [`MAX_MESSAGE_BYTES`] on a character boundary, saying how much was cut.
pub fn bounded(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - 64;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = message.len() - end;
    message.truncate(end);
    message.push_str(&format!(" … ({cut} more bytes)"));
    message
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
        message: Some(bounded(message.to_string())).filter(|m| !m.is_empty()),
        last_transition_time,
        observed_generation: Some(generation),
    };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = condition,
        None => status.conditions.push(condition),
    }
}
