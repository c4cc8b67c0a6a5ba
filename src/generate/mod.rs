//! Usage → a deterministic least-privilege policy, and what a role is granted but never used.
//!
//! [`generate`] grants exactly the catalog actions the principal used, on the resources it used
//! them on (collapsed per [`Granularity`]), plus `--keep`, minus `--forbid`, cut to what the
//! role's current policies provably grant, laid out in canonical documents that fit IAM's size
//! limit. Every map is a `BTreeMap`, so the output depends only on the input.

pub mod analyzer;
pub mod boundary;
pub mod profiles;

mod last_accessed;
mod layout;
mod render;
mod replay;
mod report;
#[cfg(test)]
mod tests;

pub use last_accessed::{
    ActionLastAccessed, LastAccessed, NotRecentlyUsed, NotUsedSince, SeenByIam,
    ServiceLastAccessed, ServiceSeenByIam, not_recently_used, seen_not_in_window,
    services_seen_without_action_data,
};
pub use render::{to_cloudformation, to_json, to_terraform};
pub use replay::{Replay, WouldDeny, replay};
pub use report::{
    DeniedCall, Report, UnmappedCall, Unused, UnusedGroup, UsedAction, render_unused, report,
    unused,
};

use crate::catalog::catalog;
use crate::catalog::collapse::{Pattern, generalize};
use crate::policy::analysis::{Proof, allowed, grants_no_new_access};
use crate::policy::{ActionBlock, Effect, Policy, PolicySet, ResourceBlock, Statement, Version};
use crate::usage::{Conditions, Usage, either_condition};
use crate::wildcard::{matches_ignore_case, subsumes};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// How finely resources are listed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Granularity {
    /// Every ARN as seen.
    Exact,
    /// Many ARNs under one resource collapse to a wildcard inside that resource.
    #[default]
    Prefix,
    /// Actions only: every action on `*`.
    Service,
}

/// `--keep ACTION[=ARN]`: granted even if unused. With an ARN, on that ARN too; without one,
/// on `*` when the action was not used (a used action keeps its used resources), or, where
/// the current policies grant it only on some resources, on those.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keep {
    pub action: String,
    pub resource: Option<String>,
}

impl FromStr for Keep {
    type Err = GenerateError;

    /// `s3:DeleteObject` or `s3:DeleteObject=arn:aws:s3:::backups/*`; the action must be a
    /// catalog action (a typo would silently keep nothing).
    fn from_str(s: &str) -> Result<Keep, GenerateError> {
        let (action, resource) = match s.split_once('=') {
            Some((a, r)) if !r.is_empty() => (a, Some(r.to_string())),
            Some(_) => return Err(GenerateError::EmptyKeepResource(s.to_string())),
            None => (s, None),
        };
        let known = catalog()
            .action(action)
            .ok_or_else(|| unknown_action(action))?;
        Ok(Keep {
            action: known.full_name(),
            resource,
        })
    }
}

fn unknown_action(action: &str) -> GenerateError {
    GenerateError::UnknownAction {
        action: action.to_string(),
        suggestion: catalog()
            .suggest_action(action)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default(),
    }
}

/// What to generate; [`Default`] is prefix granularity, threshold 10, IAM's 6,144 characters.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub granularity: Granularity,
    /// Under prefix granularity, a folder with more entries than this becomes `folder*`.
    pub collapse_threshold: usize,
    /// Characters without white space per document (IAM: 6,144 for a managed policy).
    pub max_size: usize,
    pub keep: Vec<Keep>,
    /// Action patterns (`iam:*`, case-insensitive) never granted.
    pub forbid: Vec<String>,
    /// The role's current policies; when given, the output is cut to what they grant.
    pub current: Vec<Policy>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            granularity: Granularity::Prefix,
            collapse_threshold: 10,
            max_size: 6144,
            keep: Vec::new(),
            forbid: Vec::new(),
            current: Vec::new(),
        }
    }
}

/// An (action, resource) that was used or kept but left out because the current policies do
/// not provably grant it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dropped {
    pub action: String,
    pub resource: String,
    pub reason: String,
}

/// A used action that a `--forbid` pattern kept out of the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForbiddenUse {
    pub action: String,
    pub pattern: String,
    pub count: u64,
}

/// A granted resource pattern wider than the resources the window showed, because parts of
/// their names change with time or instance; the reviewer sees each one and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generalized {
    /// The pattern granted.
    pub resource: String,
    /// The actions granted on it, sorted.
    pub actions: Vec<String>,
    /// The first few resources seen that it stands for, sorted.
    pub from: Vec<String>,
    /// How many resources seen it stands for.
    pub from_count: usize,
    /// What changed in their names ("date segments", "Lambda qualifiers").
    pub because: Vec<&'static str>,
}

/// How many seen resources [`Generalized::from`] lists.
pub const GENERALIZED_EXAMPLES: usize = 3;

/// The generated policy documents and what the user should know about them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Canonical documents, each within `max_size`; empty when nothing is granted.
    pub policies: Vec<Policy>,
    /// Sorted by resource.
    pub generalized: Vec<Generalized>,
    /// The self-check: used calls (not forbidden) the documents would deny, among those the
    /// current policies allow (all of them without `current`). Applying the documents would
    /// break these calls, so the operator holds the apply while any is listed.
    pub would_deny: Vec<WouldDeny>,
    pub dropped: Vec<Dropped>,
    pub forbidden_used: Vec<ForbiddenUse>,
    pub notes: Vec<String>,
}

/// Why no policy could be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("unknown action {action}{suggestion}")]
    UnknownAction { action: String, suggestion: String },
    #[error("--keep {0}: the ARN after '=' is empty")]
    EmptyKeepResource(String),
    #[error(
        "{action} on {resource} alone makes a {size}-character policy; the limit is {max_size}"
    )]
    StatementTooLarge {
        action: String,
        resource: String,
        size: usize,
        max_size: usize,
    },
}

/// Resource patterns of one action, each with the narrower patterns (used ARNs) it stands for,
/// which the current-policy cut falls back to when the wide pattern cannot be proven.
type Patterns = BTreeMap<String, Granted>;

/// One resource pattern of an action, as granted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Granted {
    /// The narrower patterns (used ARNs) it stands for.
    sources: BTreeSet<String>,
    /// The condition every use it stands for had; `None`: granted unconditionally.
    condition: Option<Conditions>,
}

impl Granted {
    fn unconditional(sources: BTreeSet<String>) -> Granted {
        let condition = None;
        Granted { sources, condition }
    }
}

/// The conditions under which a grant serves both `a` and `b` (`None` absorbs).
fn either(a: Option<Conditions>, b: &Option<Conditions>) -> Option<Conditions> {
    either_condition(a?, b.as_ref()?)
}

/// What each used (action, ARN) needed: its conditions, or `None` for an unconditional use.
type UsedConditions = BTreeMap<String, BTreeMap<String, Option<Conditions>>>;

/// The condition a pattern standing for `sources` of `action` needs: every source's, joined.
fn condition_of(
    action: &str,
    sources: &BTreeSet<String>,
    used: &UsedConditions,
) -> Option<Conditions> {
    let of = |arn: &String| used.get(action)?.get(arn).cloned().flatten();
    let mut sources = sources.iter();
    let first = of(sources.next()?);
    sources.fold(first, |joined, arn| either(joined, &of(arn)))
}

/// Generates the least-privilege policy for `usage`; see the module docs.
pub fn generate(usage: &Usage, opts: &GenerateOptions) -> Result<Generated, GenerateError> {
    let cat = catalog();
    let mut notes = Vec::new();
    let mut forbidden_used = Vec::new();
    // Canonical action name → (ARNs, uses); usage keys may differ from the catalog only in case.
    let mut used: BTreeMap<String, (BTreeSet<String>, u64)> = BTreeMap::new();
    let mut used_conditions = UsedConditions::new();
    for (name, action_usage) in &usage.actions {
        let Some(action) = cat.action(name) else {
            notes.push(format!(
                "{name} is not in the catalog, so it is not granted"
            ));
            continue;
        };
        let conditions = used_conditions.entry(action.full_name()).or_default();
        for arn in action_usage.resources.keys() {
            let theirs = action_usage.conditions.get(arn).cloned();
            match conditions.get_mut(arn) {
                Some(mine) => *mine = either(mine.take(), &theirs),
                None => _ = conditions.insert(arn.clone(), theirs),
            }
        }
        let entry = used.entry(action.full_name()).or_default();
        entry.0.extend(action_usage.resources.keys().cloned());
        entry.1 = entry.1.saturating_add(action_usage.seen.count);
    }
    // A misspelt --forbid would silently forbid nothing.
    for pattern in &opts.forbid {
        if cat.expand(pattern).is_empty() {
            notes.push(format!("--forbid {pattern} matches no known action"));
        }
    }
    let mut grants: BTreeMap<String, Patterns> = BTreeMap::new();
    // (pattern, action) → what a widened pattern stands for.
    let mut widened: BTreeMap<(String, String), Pattern> = BTreeMap::new();
    for (action, (arns, count)) in used {
        if let Some(pattern) = forbidding(&opts.forbid, &action) {
            forbidden_used.push(ForbiddenUse {
                action,
                pattern: pattern.to_string(),
                count,
            });
            continue;
        }
        let mut patterns = Patterns::new();
        for (pattern, p) in patterns_for(&action, arns, opts) {
            if !p.because.is_empty() {
                widened.insert((pattern.clone(), action.clone()), p.clone());
            }
            let condition = condition_of(&action, &p.sources, &used_conditions);
            let sources = p.sources;
            patterns.insert(pattern, Granted { sources, condition });
        }
        grants.insert(action, patterns);
    }
    // What the current policies grant each action on: a kept action without a resource falls
    // back to these where `*` is more than the role holds.
    let mut current_resources: Option<BTreeMap<String, Vec<String>>> = None;
    for keep in &opts.keep {
        let action = cat
            .action(&keep.action)
            .ok_or_else(|| unknown_action(&keep.action))?
            .full_name();
        if let Some(pattern) = forbidding(&opts.forbid, &action) {
            notes.push(format!(
                "--keep {action} is forbidden by {pattern}, so it is not granted"
            ));
            continue;
        }
        match &keep.resource {
            Some(resource) => {
                let sources = BTreeSet::from([resource.clone()]);
                let kept = Granted::unconditional(sources);
                grants
                    .entry(action)
                    .or_default()
                    .insert(resource.clone(), kept);
            }
            None => {
                let held = current_resources.get_or_insert_with(|| {
                    (allowed(&opts.current).actions.iter())
                        .map(|a| (a.action.clone(), a.resources.clone()))
                        .collect()
                });
                // `*`, standing for the patterns the role holds the action on: when `*` cannot
                // be proven, the cut keeps those that can.
                let sources: BTreeSet<String> = held
                    .get(&action)
                    .into_iter()
                    .flatten()
                    .filter(|r| *r != "*")
                    .cloned()
                    .collect();
                let kept = Granted::unconditional(sources);
                grants
                    .entry(action)
                    .or_insert_with(|| Patterns::from([("*".to_string(), kept)]));
            }
        }
    }
    for patterns in grants.values_mut() {
        drop_subsumed(patterns);
    }
    let mut dropped = Vec::new();
    if !opts.current.is_empty() {
        for (action, patterns) in &mut grants {
            let taken = std::mem::take(patterns);
            let used = used_conditions.get(action.as_str());
            *patterns = cut(action, taken, used, &opts.current, &mut dropped);
        }
        grants.retain(|_, patterns| !patterns.is_empty());
    }
    let generalized = generalizations(&grants, widened);
    let grants: BTreeMap<String, BTreeMap<String, Option<Conditions>>> = (grants.into_iter())
        .map(|(action, patterns)| {
            let resources = (patterns.into_iter()).map(|(p, g)| (p, g.condition));
            (action, resources.collect())
        })
        .collect();
    let policies = layout::layout(&grants, opts.max_size)?;
    let would_deny = would_break(usage, &policies, &opts.forbid, &opts.current);
    if policies.is_empty() {
        notes.push("nothing to grant: no used or kept action remains".to_string());
    } else if policies.len() > 1 {
        notes.push(format!(
            "split into {} documents to keep each within {} characters",
            policies.len(),
            opts.max_size
        ));
    }
    Ok(Generated {
        policies,
        generalized,
        would_deny,
        dropped,
        forbidden_used,
        notes,
    })
}

/// The calls of `usage` that `policies` would deny and the `current` policies allow (every
/// call without `current`), leaving out `forbid`den and unknown actions, never granted: the
/// calls an apply of `policies` would break.
pub fn would_break(
    usage: &Usage,
    policies: &[Policy],
    forbid: &[String],
    current: &[Policy],
) -> Vec<WouldDeny> {
    let set = |docs: &[Policy]| {
        (docs.iter().cloned())
            .fold(PolicySet::builder(), |b, p| b.identity(p))
            .build()
    };
    let mut denied = replay(usage, &set(policies)).would_deny;
    denied.retain(|w| {
        catalog().action(&w.action).is_some() && forbidding(forbid, &w.action).is_none()
    });
    if !current.is_empty() && !denied.is_empty() {
        let current = set(current);
        let context = crate::policy::Context::new();
        denied.retain(|w| {
            let request = crate::policy::Request {
                action: &w.action,
                resource: &crate::wildcard::unescape_literal(&w.resource),
                principal: None,
                context: &context,
            };
            current.evaluate(&request).decision == crate::policy::Decision::Allowed
        });
    }
    denied
}

/// The first `--forbid` pattern that matches `action`, ignoring case.
pub fn forbidding<'a>(forbid: &'a [String], action: &str) -> Option<&'a str> {
    forbid
        .iter()
        .find(|p| matches_ignore_case(p, action))
        .map(String::as_str)
}

/// The resource patterns of a used action under the chosen granularity, with why each is
/// wider than what was seen.
fn patterns_for(
    action: &str,
    arns: BTreeSet<String>,
    opts: &GenerateOptions,
) -> BTreeMap<String, Pattern> {
    let as_seen = |pattern: String, sources: BTreeSet<String>| {
        let because = BTreeSet::new();
        (pattern, Pattern { sources, because })
    };
    // An unscoped use (or none recorded) needs `*`; anything narrower would break the caller.
    if arns.is_empty() || arns.contains("*") || opts.granularity == Granularity::Service {
        return BTreeMap::from([as_seen("*".to_string(), arns)]);
    }
    match opts.granularity {
        Granularity::Exact => arns
            .into_iter()
            .map(|arn| as_seen(arn.clone(), BTreeSet::from([arn])))
            .collect(),
        _ => generalize(action, &arns, opts.collapse_threshold),
    }
}

/// The widened patterns that survived the cut, grouped by pattern across actions.
fn generalizations(
    grants: &BTreeMap<String, Patterns>,
    widened: BTreeMap<(String, String), Pattern>,
) -> Vec<Generalized> {
    let mut by_resource: BTreeMap<String, (BTreeSet<String>, Pattern)> = BTreeMap::new();
    for ((resource, action), p) in widened {
        // A pattern the cut (or a wider kept pattern) took out is not granted.
        if !grants
            .get(&action)
            .is_some_and(|g| g.contains_key(&resource))
        {
            continue;
        }
        let entry = by_resource.entry(resource).or_default();
        entry.0.insert(action);
        entry.1.sources.extend(p.sources);
        entry.1.because.extend(p.because);
    }
    by_resource
        .into_iter()
        .map(|(resource, (actions, p))| Generalized {
            resource,
            actions: actions.into_iter().collect(),
            from_count: p.sources.len(),
            from: p.sources.into_iter().take(GENERALIZED_EXAMPLES).collect(),
            because: p.because.into_iter().map(|v| v.describe()).collect(),
        })
        .collect()
}

/// Folds patterns another pattern of the same action already covers into it (a kept ARN under
/// a collapsed folder; anything beside `*`).
fn drop_subsumed(patterns: &mut Patterns) {
    let wide: Vec<String> = patterns
        .keys()
        .filter(|p| p.contains(['*', '?']))
        .cloned()
        .collect();
    for outer in wide {
        if !patterns.contains_key(&outer) {
            continue;
        }
        let inner: Vec<String> = patterns
            .keys()
            .filter(|p| **p != outer && subsumes(&outer, p))
            .cloned()
            .collect();
        for p in inner {
            let inner = patterns.remove(&p).unwrap_or_default();
            let merged = patterns.get_mut(&outer).expect("outer is present");
            merged.sources.insert(p);
            merged.sources.extend(inner.sources);
            merged.condition = either(merged.condition.take(), &inner.condition);
        }
    }
}

/// Keeps the patterns `current` provably grants. A wide pattern that cannot be proven falls
/// back to the ARNs it stands for, each proven on its own; what is left out goes to `dropped`.
fn cut(
    action: &str,
    patterns: Patterns,
    used: Option<&BTreeMap<String, Option<Conditions>>>,
    current: &[Policy],
    dropped: &mut Vec<Dropped>,
) -> Patterns {
    let mut kept = Patterns::new();
    for (pattern, granted) in patterns {
        let reason = match prove(action, &pattern, &granted.condition, current) {
            Proof::Proven => {
                kept.insert(pattern, granted);
                continue;
            }
            Proof::CannotProve(reasons) => reasons,
        };
        let narrower = granted.sources.into_iter().filter(|s| *s != pattern);
        let narrower: Vec<String> = narrower.collect();
        if narrower.is_empty() {
            dropped.push(Dropped {
                action: action.to_string(),
                resource: pattern,
                reason: reason_text(reason),
            });
            continue;
        }
        for source in narrower {
            let condition = used.and_then(|u| u.get(&source)).cloned().flatten();
            match prove(action, &source, &condition, current) {
                Proof::Proven => {
                    let sources = BTreeSet::from([source.clone()]);
                    kept.insert(source, Granted { sources, condition });
                }
                Proof::CannotProve(reasons) => dropped.push(Dropped {
                    action: action.to_string(),
                    resource: source,
                    reason: reason_text(reasons),
                }),
            }
        }
    }
    kept
}

/// Does `current` grant `action` on `resource`? Asked of the prover with a one-statement
/// candidate, so each granted pair is proven on its own and the union is proven too.
fn prove(
    action: &str,
    resource: &str,
    condition: &Option<Conditions>,
    current: &[Policy],
) -> Proof {
    let candidate = Policy {
        version: Some(Version::V2012_10_17),
        id: None,
        statements: vec![Statement {
            sid: None,
            effect: Effect::Allow,
            principal: None,
            action: Some(ActionBlock::Action(vec![action.to_string()])),
            resource: Some(ResourceBlock::Resource(vec![resource.to_string()])),
            conditions: layout::string_equals(condition.as_ref()),
        }],
    };
    grants_no_new_access(&[candidate], current)
}

/// The prover's reasons without the name of the one-statement candidate, which means nothing
/// to the user.
fn reason_text(reasons: Vec<String>) -> String {
    reasons
        .iter()
        .map(|r| r.strip_prefix("policy 0 Statement[0]: ").unwrap_or(r))
        .collect::<Vec<_>>()
        .join("; ")
}
