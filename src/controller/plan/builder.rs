//! The plan under construction: conditions by type, operations, events, and the problem
//! that makes Ready False; and the status edits the shell makes when a plan could not run.

use super::{EventType, Observed, Plan, PlannedEvent, Requeue};
use crate::controller::crd::{Condition, LeastPrivilegeRoleStatus};
use crate::role::Operation;
use std::collections::BTreeMap;

/// The condition types, in the order the status lists them: a type the plan sets is one of
/// these, so none can be misspelt (and dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConditionType {
    Analyzed,
    LastAccessedAvailable,
    TrustOK,
    BoundaryInPlace,
    ProposalReady,
    Approved,
    InSync,
    Drifted,
    Ready,
}

impl ConditionType {
    pub const ALL: [ConditionType; 9] = [
        ConditionType::Analyzed,
        ConditionType::LastAccessedAvailable,
        ConditionType::TrustOK,
        ConditionType::BoundaryInPlace,
        ConditionType::ProposalReady,
        ConditionType::Approved,
        ConditionType::InSync,
        ConditionType::Drifted,
        ConditionType::Ready,
    ];

    /// Its name in `status.conditions[].type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Analyzed => "Analyzed",
            ConditionType::LastAccessedAvailable => "LastAccessedAvailable",
            ConditionType::TrustOK => "TrustOK",
            ConditionType::BoundaryInPlace => "BoundaryInPlace",
            ConditionType::ProposalReady => "ProposalReady",
            ConditionType::Approved => "Approved",
            ConditionType::InSync => "InSync",
            ConditionType::Drifted => "Drifted",
            ConditionType::Ready => "Ready",
        }
    }
}

/// A condition's status, as `metav1.Condition` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

pub(super) const TRUE: ConditionStatus = ConditionStatus::True;
pub(super) const FALSE: ConditionStatus = ConditionStatus::False;
pub(super) const UNKNOWN: ConditionStatus = ConditionStatus::Unknown;

/// Collects the plan; conditions are set by type and emitted in [`ConditionType::ALL`] order.
pub(super) struct Builder<'a> {
    pub observed: &'a Observed,
    pub status: LeastPrivilegeRoleStatus,
    /// Type → (status, reason, message).
    pub conditions: BTreeMap<ConditionType, (ConditionStatus, &'static str, String)>,
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
        type_: ConditionType,
        status: ConditionStatus,
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
        let conditions = ConditionType::ALL
            .iter()
            .map(|type_| {
                let (status, reason, message) =
                    self.conditions
                        .remove(type_)
                        .unwrap_or((UNKNOWN, "Pending", String::new()));
                let (type_, status) = (type_.as_str(), status.as_str());
                let last_transition_time = previous
                    .iter()
                    .find(|c| c.type_ == type_ && c.status == status)
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
        for c in conditions.iter().filter(|c| {
            c.type_ == ConditionType::Ready.as_str() || c.type_ == ConditionType::Approved.as_str()
        }) {
            let before = previous.iter().find(|p| p.type_ == c.type_);
            // A new reason for Ready=False is news (InvalidSpec → RoleNotFound); for Approved
            // only the status is (Approved → Applied is the expected next step).
            let changed = before.is_none_or(|p| {
                p.status != c.status
                    || (c.type_ == ConditionType::Ready.as_str() && p.reason != c.reason)
            });
            let planned = self.events.iter().any(|e| e.reason == c.reason);
            if changed && !planned && c.status != UNKNOWN.as_str() {
                let type_ =
                    if c.type_ == ConditionType::Ready.as_str() && c.status == FALSE.as_str() {
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
        ConditionType::Ready,
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
        .any(|c| c.type_ == ConditionType::Drifted.as_str() && c.reason == "Applied");
    if applying {
        match previous
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Drifted.as_str())
        {
            Some(before) => {
                if let Some(c) = status
                    .conditions
                    .iter_mut()
                    .find(|c| c.type_ == ConditionType::Drifted.as_str())
                {
                    *c = before.clone();
                }
            }
            None => set_condition(
                &mut status,
                ConditionType::Drifted,
                UNKNOWN,
                reason,
                message,
                generation,
                now,
            ),
        }
    }
    for type_ in [ConditionType::InSync, ConditionType::Ready] {
        // The plan set these as if its operations succeeded; the transition time counts from
        // what the resource showed before, so failing the same way again writes an identical
        // status (which triggers no reconcile of its own: retries follow the error backoff).
        let is = |c: &&Condition| c.type_ == type_.as_str();
        if let Some(before) = previous.conditions.iter().find(is)
            && let Some(condition) = status.conditions.iter_mut().find(|c| is(&&**c))
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
    type_: ConditionType,
    value: ConditionStatus,
    reason: &str,
    message: &str,
    generation: i64,
    now: &str,
) {
    let (type_, value) = (type_.as_str(), value.as_str());
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
