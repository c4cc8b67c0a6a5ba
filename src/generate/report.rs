//! The machine-readable report of a generation, and `unused`: granted but never used.

use super::{Dropped, ForbiddenUse, Generalized, Generated, WouldDeny};
use crate::catalog::{AccessLevel, catalog};
use crate::policy::Policy;
use crate::policy::analysis::allowed_actions;
use crate::usage::Usage;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// What the scan saw and what the generator made of it; `--report` prints it as JSON.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub files_scanned: u64,
    pub records_scanned: u64,
    pub records_matched: u64,
    pub skipped: BTreeMap<String, u64>,
    pub used: Vec<UsedAction>,
    pub denied: Vec<DeniedCall>,
    pub unmapped: Vec<UnmappedCall>,
    /// Instance profiles calls passed whose roles are not known: `iam:PassRole` for them is
    /// not granted (give `--instance-profile NAME=ROLE_ARN`).
    pub unresolved_instance_profiles: Vec<PassedProfile>,
    /// Patterns wider than the resources seen, and why: what a reviewer should look at.
    pub generalized: Vec<Generalized>,
    /// Used calls the policy would deny though the current policies allow them.
    pub would_deny: Vec<WouldDeny>,
    pub dropped: Vec<Dropped>,
    pub forbidden_used: Vec<ForbiddenUse>,
    /// The scan's notes, then the generator's.
    pub notes: Vec<String>,
    /// `sha256:…` of each generated document, in order.
    pub revisions: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsedAction {
    pub action: String,
    /// `None` only for an action the catalog no longer has.
    pub access_level: Option<AccessLevel>,
    pub count: u64,
    pub last_seen: String,
    /// Number of distinct resources it was used on.
    pub resources: usize,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeniedCall {
    pub event_source: String,
    pub event_name: String,
    pub error_code: String,
    pub count: u64,
    pub last_seen: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmappedCall {
    pub event_source: String,
    pub event_name: String,
    pub count: u64,
    pub last_seen: String,
    /// What the catalog lacks, and what to do (`--keep` the closest action).
    pub hint: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassedProfile {
    pub instance_profile: String,
    pub count: u64,
    pub last_seen: String,
}

/// Builds the report of generating `g` from `usage`.
pub fn report(usage: &Usage, g: &Generated) -> Report {
    let cat = catalog();
    Report {
        files_scanned: usage.stats.files_scanned,
        records_scanned: usage.stats.records_scanned,
        records_matched: usage.stats.records_matched,
        skipped: usage.stats.skipped.clone(),
        used: usage
            .actions
            .iter()
            .map(|(action, u)| UsedAction {
                action: action.clone(),
                access_level: cat.action(action).map(|a| a.access_level()),
                count: u.seen.count,
                last_seen: u.seen.last_seen.clone(),
                resources: u.resources.len(),
            })
            .collect(),
        denied: usage
            .denied
            .iter()
            .map(|((source, name, code), seen)| DeniedCall {
                event_source: source.clone(),
                event_name: name.clone(),
                error_code: code.clone(),
                count: seen.count,
                last_seen: seen.last_seen.clone(),
            })
            .collect(),
        unmapped: usage
            .unmapped
            .iter()
            .map(|((source, name), seen)| UnmappedCall {
                event_source: source.clone(),
                event_name: name.clone(),
                count: seen.count,
                last_seen: seen.last_seen.clone(),
                hint: crate::cloudtrail::mapping::unmapped_hint(source, name),
            })
            .collect(),
        unresolved_instance_profiles: (usage.instance_profiles.iter())
            .map(|(profile, seen)| PassedProfile {
                instance_profile: profile.clone(),
                count: seen.count,
                last_seen: seen.last_seen.clone(),
            })
            .collect(),
        generalized: g.generalized.clone(),
        would_deny: g.would_deny.clone(),
        dropped: g.dropped.clone(),
        forbidden_used: g.forbidden_used.clone(),
        notes: usage.notes.iter().chain(&g.notes).cloned().collect(),
        revisions: g.policies.iter().map(Policy::revision).collect(),
    }
}

/// Granted actions that were never used, riskiest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unused {
    pub groups: Vec<UnusedGroup>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnusedGroup {
    pub service: String,
    pub access_level: AccessLevel,
    /// Sorted `service:Action` names.
    pub actions: Vec<String>,
}

/// Which access levels to review first: those that change who may do what, then changes.
fn risk_rank(level: AccessLevel) -> u8 {
    match level {
        AccessLevel::PermissionsManagement => 0,
        AccessLevel::Write => 1,
        AccessLevel::Tagging => 2,
        AccessLevel::Read => 3,
        AccessLevel::List => 4,
    }
}

/// What `policies` grant (expanded over the catalog) that `usage` never used, grouped by
/// service and access level: Permissions management, Write, Tagging, Read, List; services
/// sorted within a level.
pub fn unused(policies: &[Policy], usage: &Usage) -> Unused {
    let used: BTreeSet<String> = usage
        .actions
        .keys()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    let mut groups: BTreeMap<(u8, String), (AccessLevel, Vec<String>)> = BTreeMap::new();
    for allowed in allowed_actions(policies) {
        if used.contains(&allowed.action.to_ascii_lowercase()) {
            continue;
        }
        let service = allowed.action.split(':').next().unwrap_or_default();
        groups
            .entry((risk_rank(allowed.access_level), service.to_string()))
            .or_insert_with(|| (allowed.access_level, Vec::new()))
            .1
            .push(allowed.action);
    }
    Unused {
        groups: groups
            .into_iter()
            .map(|((_, service), (access_level, mut actions))| {
                actions.sort();
                UnusedGroup {
                    service,
                    access_level,
                    actions,
                }
            })
            .collect(),
    }
}

/// Text for a terminal: a summary line, then one block per group.
pub fn render_unused(unused: &Unused) -> String {
    let total: usize = unused.groups.iter().map(|g| g.actions.len()).sum();
    if total == 0 {
        return "every granted action was used\n".to_string();
    }
    let mut out = format!("{total} granted actions were never used\n");
    for group in &unused.groups {
        let _ = writeln!(
            out,
            "\n{} — {} ({})",
            group.service,
            group.access_level,
            group.actions.len()
        );
        for action in &group.actions {
            let _ = writeln!(out, "  {action}");
        }
    }
    out
}
