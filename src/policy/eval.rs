//! AWS's policy evaluation logic for one request, over policies compiled once.
//!
//! See <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>.
//! Compilation lowercases and indexes action patterns (literal actions by interned id, wildcard
//! ones by service), pre-parses condition values and splits policy variables, so that evaluating
//! a request allocates nothing beyond the returned list of matched statements.

use crate::catalog::catalog;
use crate::policy::aws_rules;
use crate::policy::context::{Caller, Context, Env};
use crate::policy::document::{
    ActionBlock, BaseOperator, Condition, ConditionOperator, Effect, Policy, PrincipalBlock,
    PrincipalType, Principals, ResourceBlock, SetQualifier, Statement,
};
use crate::policy::values::{Cidr, parse_number};
use crate::policy::variables::Template;
use crate::time::{Instant, parse_date};
use crate::wildcard::{is_literal, matches, matches_encoded};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

pub use super::decision::Decision;

/// The role a policy plays in evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PolicyKind {
    #[serde(rename = "identity")]
    Identity,
    #[serde(rename = "boundary")]
    PermissionsBoundary,
    #[serde(rename = "scp")]
    ServiceControlPolicy,
    #[serde(rename = "session")]
    SessionPolicy,
    #[serde(rename = "resource")]
    ResourcePolicy,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Identity => "identity",
            PolicyKind::PermissionsBoundary => "boundary",
            PolicyKind::ServiceControlPolicy => "scp",
            PolicyKind::SessionPolicy => "session",
            PolicyKind::ResourcePolicy => "resource",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request to decide.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub action: &'a str,
    /// The resource ARN, or `"*"`. For an action that takes no resource (the catalog lists no
    /// resource type for it) `*` is the resource itself, as AWS evaluates such calls: only a
    /// `Resource` that matches `*` allows or denies it. For any other action `*` asks about
    /// some resource of the action: an Allow naming any resource counts, and a Deny only when
    /// it covers every resource (`"Resource": "*"`), so Allowed means "allowed on at least one
    /// resource, as far as the Resource elements tell".
    pub resource: &'a str,
    /// The caller's ARN (or account id, or service name); needed for resource policies.
    pub principal: Option<&'a str>,
    pub context: &'a Context,
}

/// A statement that took part in the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchedStatement {
    pub kind: PolicyKind,
    /// Position among the policies of the same kind, in insertion order.
    pub policy_index: usize,
    pub label: Option<String>,
    pub statement_index: usize,
    pub sid: Option<String>,
    #[serde(serialize_with = "serialize_effect")]
    pub effect: Effect,
}

fn serialize_effect<S: serde::Serializer>(effect: &Effect, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(effect.as_str())
}

/// A decision and the statements behind it: the matching Deny statements when explicitly
/// denied; the Allow statements of every path that granted it when allowed; every matching
/// Allow when implicitly denied, so users see e.g. that the identity policy allowed but the
/// boundary did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub decision: Decision,
    pub matched: Vec<MatchedStatement>,
    /// Set when AWS decides whatever the policies say (see [`crate::policy::aws_rules`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl Default for Evaluation {
    fn default() -> Self {
        Evaluation {
            decision: Decision::ImplicitlyDenied,
            matched: Vec::new(),
            reason: None,
        }
    }
}

/// Collects policies for a [`PolicySet`].
#[derive(Clone, Debug, Default)]
pub struct PolicySetBuilder {
    policies: Vec<(PolicyKind, u8, Policy, Option<String>)>,
}

/// Levels of an organization an SCP can be attached at: the root, up to five levels of OUs
/// and the account make seven (AWS Organizations quotas); more is refused as input.
pub const MAX_SCP_LEVELS: usize = 16;

impl PolicySetBuilder {
    /// Adds a policy of any kind, with an optional label (a file name) for reports.
    pub fn add(mut self, kind: PolicyKind, policy: Policy, label: Option<String>) -> Self {
        self.policies.push((kind, 0, policy, label));
        self
    }

    /// Adds an SCP attached at `level` of the organization (0 = the root; the account last).
    /// Every level that has SCPs must allow a request. Panics past [`MAX_SCP_LEVELS`]; inputs
    /// are checked before they get here.
    pub fn scp_at_level(mut self, level: usize, policy: Policy, label: Option<String>) -> Self {
        assert!(level < MAX_SCP_LEVELS, "SCP level {level} out of range");
        let kind = PolicyKind::ServiceControlPolicy;
        self.policies.push((kind, level as u8, policy, label));
        self
    }

    pub fn identity(self, policy: Policy) -> Self {
        self.add(PolicyKind::Identity, policy, None)
    }
    pub fn boundary(self, policy: Policy) -> Self {
        self.add(PolicyKind::PermissionsBoundary, policy, None)
    }
    pub fn scp(self, policy: Policy) -> Self {
        self.add(PolicyKind::ServiceControlPolicy, policy, None)
    }
    pub fn session(self, policy: Policy) -> Self {
        self.add(PolicyKind::SessionPolicy, policy, None)
    }
    pub fn resource_policy(self, policy: Policy) -> Self {
        self.add(PolicyKind::ResourcePolicy, policy, None)
    }

    pub fn identity_labeled(self, policy: Policy, label: impl Into<String>) -> Self {
        self.add(PolicyKind::Identity, policy, Some(label.into()))
    }
    pub fn boundary_labeled(self, policy: Policy, label: impl Into<String>) -> Self {
        self.add(PolicyKind::PermissionsBoundary, policy, Some(label.into()))
    }
    pub fn scp_labeled(self, policy: Policy, label: impl Into<String>) -> Self {
        self.add(PolicyKind::ServiceControlPolicy, policy, Some(label.into()))
    }
    pub fn session_labeled(self, policy: Policy, label: impl Into<String>) -> Self {
        self.add(PolicyKind::SessionPolicy, policy, Some(label.into()))
    }
    pub fn resource_policy_labeled(self, policy: Policy, label: impl Into<String>) -> Self {
        self.add(PolicyKind::ResourcePolicy, policy, Some(label.into()))
    }

    pub fn build(self) -> PolicySet {
        let policies = self.policies.iter();
        PolicySet::compile(
            policies.map(|(kind, level, policy, label)| {
                (*kind, *level as usize, policy, label.clone())
            }),
        )
    }
}

impl PolicySet {
    /// Compiles borrowed policies (kind, SCP level, policy, label) without copying them, for
    /// callers that keep parsed policies to combine in many sets. Panics on an SCP level past
    /// [`MAX_SCP_LEVELS`], like [`PolicySetBuilder::scp_at_level`].
    pub fn compile<'p>(
        policies: impl IntoIterator<Item = (PolicyKind, usize, &'p Policy, Option<String>)>,
    ) -> PolicySet {
        let mut set = PolicySet {
            policies: Vec::new(),
            statements: Vec::new(),
            interner: Interner::default(),
            counts: [0; KINDS],
            scp_levels: 0,
        };
        for (kind, level, policy, label) in policies {
            assert!(level < MAX_SCP_LEVELS, "SCP level {level} out of range");
            if kind == PolicyKind::ServiceControlPolicy {
                set.scp_levels |= 1 << level;
            }
            let index = set.counts[kind as usize];
            set.counts[kind as usize] += 1;
            let start = set.statements.len();
            let policy_id = set.policies.len() as u32;
            for (statement_index, st) in policy.statements.iter().enumerate() {
                set.statements.push(CompiledStatement::compile(
                    st,
                    policy.substitutes_variables(),
                    &mut set.interner,
                    policy_id,
                    statement_index,
                ));
            }
            set.policies.push(CompiledPolicy {
                kind,
                level: level as u8,
                index,
                label,
                statements: start..set.statements.len(),
            });
        }
        set
    }
}

const KINDS: usize = 5;

/// Policies compiled once for fast repeated evaluation.
#[derive(Clone, Debug)]
pub struct PolicySet {
    policies: Vec<CompiledPolicy>,
    statements: Vec<CompiledStatement>,
    interner: Interner,
    /// Number of policies per [`PolicyKind`] (as index).
    counts: [usize; KINDS],
    /// Bit per organization level that has SCPs.
    scp_levels: u16,
}

#[derive(Clone, Debug)]
struct CompiledPolicy {
    kind: PolicyKind,
    /// The organization level of an SCP; 0 for other kinds.
    level: u8,
    index: usize,
    label: Option<String>,
    statements: Range<usize>,
}

impl PolicySet {
    pub fn builder() -> PolicySetBuilder {
        PolicySetBuilder::default()
    }

    pub fn evaluate(&self, req: &Request) -> Evaluation {
        let mut out = Evaluation::default();
        self.evaluate_into(req, &mut out);
        out
    }

    /// [`PolicySet::evaluate`] into a reused [`Evaluation`], keeping its `matched` buffer.
    pub fn evaluate_into(&self, req: &Request, out: &mut Evaluation) {
        self.run(req, out, true);
    }

    /// The decision alone, without the statements behind it (no allocation): for batches.
    pub fn decide(&self, req: &Request) -> Decision {
        let mut out = Evaluation::default();
        self.run(req, &mut out, false);
        out.decision
    }

    /// Evaluates `req` into `out`, listing the deciding statements when `record`.
    fn run(&self, req: &Request, out: &mut Evaluation, record: bool) {
        let mut lower_buf = [0u8; 128];
        let owned;
        let action = if req.action.len() <= lower_buf.len() {
            let buf = &mut lower_buf[..req.action.len()];
            buf.copy_from_slice(req.action.as_bytes());
            buf.make_ascii_lowercase();
            std::str::from_utf8(buf).expect("ASCII lowercasing keeps UTF-8 valid")
        } else {
            owned = req.action.to_ascii_lowercase();
            owned.as_str()
        };
        out.matched.clear();
        if let Some(fixed) = aws_rules::fixed(action, req.resource) {
            out.decision = fixed.decision;
            out.reason = Some(fixed.reason);
            return;
        }
        out.reason = None;
        let probe = self.interner.probe(action);
        let caller = Caller::parse(req.principal);
        let env = Env::new(req.context, caller);
        let resource = ResourceQuery::new(action, req.resource);
        let has_boundary = self.counts[PolicyKind::PermissionsBoundary as usize] > 0;
        let mut scratch = Vec::new();
        let mut hits = Hits::default();

        let mut denied = false;
        let mut allowed_by = [0usize; KINDS];
        let mut scp_allowed: u16 = 0;
        // The strongest way a resource policy's Allow named the caller.
        let mut resource_reach = Reach::None;
        for policy in &self.policies {
            let is_resource = policy.kind == PolicyKind::ResourcePolicy;
            let mut allows = false;
            for (i, st) in self.statements[policy.statements.clone()]
                .iter()
                .enumerate()
            {
                let reach = match (&st.principals, is_resource) {
                    (_, false) => Reach::Named,
                    (None, true) => Reach::None,
                    (Some(p), true) => p.reach(&caller, st.effect, has_boundary),
                };
                if reach != Reach::None && st.applies(&probe, &resource, &env, &mut scratch) {
                    if record {
                        hits.push(policy.statements.start + i);
                    }
                    match st.effect {
                        Effect::Deny => denied = true,
                        Effect::Allow => {
                            allows = true;
                            if is_resource {
                                resource_reach = resource_reach.max(reach);
                            }
                        }
                    }
                }
            }
            allowed_by[policy.kind as usize] += usize::from(allows);
            if allows && policy.kind == PolicyKind::ServiceControlPolicy {
                scp_allowed |= 1 << policy.level;
            }
        }

        let kind_ok = |kind: PolicyKind| {
            let n = self.counts[kind as usize];
            let a = allowed_by[kind as usize];
            match kind {
                // Every permissions boundary must allow; session policies need any one.
                PolicyKind::PermissionsBoundary => a == n,
                _ => n == 0 || a > 0,
            }
        };
        // Organizations User Guide, "Service control policies": every level of the
        // organization, from the root to the account, must allow.
        let scp_ok = scp_allowed & self.scp_levels == self.scp_levels;
        let caps_ok =
            kind_ok(PolicyKind::PermissionsBoundary) && kind_ok(PolicyKind::SessionPolicy);
        let identity_path = allowed_by[PolicyKind::Identity as usize] > 0 && caps_ok && scp_ok;
        let has_resource_policy = self.counts[PolicyKind::ResourcePolicy as usize] > 0;
        // IAM User Guide, "Policy evaluation logic": a resource policy naming the user or the
        // session grants on its own; naming the role, within the role's boundary and session
        // policies; naming the account delegates to the account's identity policies.
        let resource_grants = scp_ok
            && match resource_reach {
                Reach::Named => true,
                Reach::Role => caps_ok,
                Reach::Account | Reach::None => false,
            };
        let resource_allows = resource_reach != Reach::None;
        let allowed = if !has_resource_policy {
            // The resource's policy is not given: the principal's side decides.
            identity_path
        } else if !same_account(req.resource, &caller) {
            // Across accounts both sides must allow.
            identity_path && resource_allows && scp_ok
        } else if aws_rules::resource_policy_required(action, req.resource) {
            resource_grants || (resource_reach == Reach::Account && identity_path)
        } else {
            identity_path || resource_grants
        };

        let decision = if denied {
            Decision::ExplicitlyDenied
        } else if allowed {
            Decision::Allowed
        } else {
            Decision::ImplicitlyDenied
        };
        let shown = |st: &CompiledStatement, kind: PolicyKind| match decision {
            Decision::ExplicitlyDenied => st.effect == Effect::Deny,
            Decision::ImplicitlyDenied => true,
            Decision::Allowed => match kind {
                PolicyKind::Identity
                | PolicyKind::PermissionsBoundary
                | PolicyKind::SessionPolicy => identity_path,
                // Across accounts AWS wants both policies, so the resource policy's allows
                // are part of the grant even though they do not decide it alone.
                PolicyKind::ResourcePolicy => resource_allows,
                PolicyKind::ServiceControlPolicy => true,
            },
        };
        out.decision = decision;
        for &si in hits.as_slice() {
            let st = &self.statements[si as usize];
            let policy = &self.policies[st.policy as usize];
            if shown(st, policy.kind) {
                out.matched.push(MatchedStatement {
                    kind: policy.kind,
                    policy_index: policy.index,
                    label: policy.label.clone(),
                    statement_index: st.index,
                    sid: st.sid.clone(),
                    effect: st.effect,
                });
            }
        }
    }
}

/// How a request's resource is compared with `Resource` elements.
struct ResourceQuery<'a> {
    resource: &'a str,
    /// `*` for an action that has resource types: "some resource of the action".
    some: bool,
}

impl<'a> ResourceQuery<'a> {
    fn new(lowercase_action: &str, resource: &'a str) -> Self {
        let some = resource == "*"
            && catalog()
                .action(lowercase_action)
                .is_some_and(|a| a.resource_types().next().is_some());
        ResourceQuery { resource, some }
    }
}

/// How a resource policy statement's `Principal`/`NotPrincipal` covers the caller, weakest
/// first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    None,
    /// Through the caller's account: a grant delegated to the account's identity policies.
    Account,
    /// Through the role a session belongs to: a grant within the role's boundary and session
    /// policies.
    Role,
    /// The caller itself (its ARN, its service, or everyone).
    Named,
}

/// Is the resource in the caller's account? Resources whose ARN has no account (S3, `*`) count
/// as the caller's; so do all resources for callers without an account (anonymous callers and
/// service principals), which have no identity policies to consult.
fn same_account(resource: &str, caller: &Caller) -> bool {
    let Some(account) = caller.account else {
        return true;
    };
    if !resource.starts_with("arn:") {
        return true;
    }
    match resource.split(':').nth(4) {
        Some("") | None => true,
        Some(owner) => owner == account,
    }
}

/// Indices of matching statements: inline for the usual handful, spilling beyond.
#[derive(Default)]
struct Hits {
    inline: [u32; 16],
    len: usize,
    spill: Vec<u32>,
}

impl Hits {
    fn push(&mut self, statement: usize) {
        if self.len < self.inline.len() {
            self.inline[self.len] = statement as u32;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(statement as u32);
        }
    }

    fn as_slice(&self) -> &[u32] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

/// Interned ids of literal actions and of services named in patterns, so that a statement
/// tests set membership of an integer instead of hashing the action again.
#[derive(Clone, Debug, Default)]
struct Interner {
    actions: FxHashMap<Box<str>, u32>,
    services: FxHashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(map: &mut FxHashMap<Box<str>, u32>, s: &str) -> u32 {
        let next = map.len() as u32;
        *map.entry(s.into()).or_insert(next)
    }

    fn probe<'a>(&self, action: &'a str) -> ActionProbe<'a> {
        let (service, name) = action.split_once(':').unwrap_or(("", action));
        ActionProbe {
            action,
            name,
            action_id: self.actions.get(action).copied(),
            service_id: self.services.get(service).copied(),
        }
    }
}

/// The lowercased request action and its interned ids.
struct ActionProbe<'a> {
    action: &'a str,
    /// The part after `service:`.
    name: &'a str,
    action_id: Option<u32>,
    service_id: Option<u32>,
}

#[derive(Clone, Debug)]
struct CompiledStatement {
    policy: u32,
    index: usize,
    sid: Option<String>,
    effect: Effect,
    actions: ActionMatcher,
    /// `None` (trust policies): any resource.
    resources: Option<ResourceMatcher>,
    principals: Option<PrincipalMatcher>,
    conditions: Box<[CompiledCondition]>,
}

impl CompiledStatement {
    fn compile(
        st: &Statement,
        substitute: bool,
        interner: &mut Interner,
        policy: u32,
        index: usize,
    ) -> Self {
        CompiledStatement {
            policy,
            index,
            sid: st.sid.clone(),
            effect: st.effect,
            actions: ActionMatcher::compile(st.action.as_ref(), interner),
            resources: st.resource.as_ref().map(|r| {
                let (negated, patterns) = match r {
                    ResourceBlock::Resource(p) => (false, p),
                    ResourceBlock::NotResource(p) => (true, p),
                };
                ResourceMatcher::compile(negated, patterns, substitute)
            }),
            principals: st.principal.as_ref().map(PrincipalMatcher::compile),
            conditions: st
                .conditions
                .iter()
                .map(|c| CompiledCondition::compile(c, substitute))
                .collect(),
        }
    }

    /// Whether the statement covers the request, its principal aside.
    fn applies(
        &self,
        probe: &ActionProbe,
        resource: &ResourceQuery,
        env: &Env,
        scratch: &mut Vec<u8>,
    ) -> bool {
        self.actions.matches(probe)
            && self
                .resources
                .as_ref()
                .is_none_or(|r| r.matches(resource, self.effect, env, scratch))
            && self.conditions.iter().all(|c| c.holds(env, scratch))
    }
}

/// `Action`/`NotAction`, lowercased and indexed.
#[derive(Clone, Debug, Default)]
struct ActionMatcher {
    negated: bool,
    /// A `*` pattern.
    any: bool,
    literal: FxHashSet<u32>,
    /// Services granted whole (`s3:*`).
    services: FxHashSet<u32>,
    /// Wildcard patterns on the part after `service:`, by service.
    by_service: FxHashMap<u32, Vec<Box<str>>>,
    /// Patterns with a wildcard in the service part (`*:Get*`), matched on the whole action.
    other: Vec<Box<str>>,
}

impl ActionMatcher {
    /// A statement without `Action`/`NotAction` (which IAM rejects) matches nothing.
    fn compile(block: Option<&ActionBlock>, interner: &mut Interner) -> Self {
        let mut m = ActionMatcher::default();
        let patterns = match block {
            None => return m,
            Some(ActionBlock::Action(p)) => p,
            Some(ActionBlock::NotAction(p)) => {
                m.negated = true;
                p
            }
        };
        for pattern in patterns {
            let p = pattern.to_ascii_lowercase();
            let service = p.split_once(':').map(|(s, _)| s);
            match service {
                _ if p.bytes().all(|b| b == b'*') => m.any = true,
                Some(s) if is_literal(s) => {
                    let name = &p[s.len() + 1..];
                    if is_literal(name) {
                        m.literal
                            .insert(Interner::intern(&mut interner.actions, &p));
                    } else {
                        let id = Interner::intern(&mut interner.services, s);
                        if name.bytes().all(|b| b == b'*') {
                            m.services.insert(id);
                        } else {
                            m.by_service.entry(id).or_default().push(name.into());
                        }
                    }
                }
                _ => m.other.push(p.into()),
            }
        }
        m
    }

    fn matches(&self, probe: &ActionProbe) -> bool {
        let hit = self.any
            || probe.action_id.is_some_and(|id| self.literal.contains(&id))
            || probe.service_id.is_some_and(|s| {
                self.services.contains(&s)
                    || self
                        .by_service
                        .get(&s)
                        .is_some_and(|ps| ps.iter().any(|p| matches(p, probe.name)))
            })
            || self.other.iter().any(|p| matches(p, probe.action));
        hit != self.negated
    }
}

/// `Resource`/`NotResource`, case-sensitive, with policy variables.
#[derive(Clone, Debug)]
struct ResourceMatcher {
    negated: bool,
    /// A `*` pattern, the common case, decided without looking at the resource.
    any: bool,
    patterns: Vec<Template>,
}

impl ResourceMatcher {
    fn compile(negated: bool, patterns: &[String], substitute: bool) -> Self {
        let mut m = ResourceMatcher {
            negated,
            any: false,
            patterns: Vec::new(),
        };
        for p in patterns {
            if p == "*" {
                m.any = true;
            } else {
                m.patterns.push(Template::compile(p, substitute, true));
            }
        }
        m
    }

    fn matches(
        &self,
        query: &ResourceQuery,
        effect: Effect,
        env: &Env,
        scratch: &mut Vec<u8>,
    ) -> bool {
        if query.some {
            // Some resource: an Allow that names any resource could grant it; a Deny refuses
            // only when it covers them all.
            return match (effect, self.negated) {
                (Effect::Allow, false) => true,
                (Effect::Allow, true) => !self.any,
                (Effect::Deny, false) => self.any,
                (Effect::Deny, true) => false,
            };
        }
        let resource = query.resource;
        let hit = self.any
            || self.patterns.iter().any(|t| {
                t.resolve(env, scratch)
                    .is_some_and(|p| matches_encoded(p, resource.as_bytes()))
            });
        hit != self.negated
    }
}

/// `Principal`/`NotPrincipal` of a resource policy.
#[derive(Clone, Debug)]
struct PrincipalMatcher {
    negated: bool,
    entries: Vec<PrincipalEntry>,
}

#[derive(Clone, Debug)]
enum PrincipalEntry {
    Any,
    /// An account id or `arn:aws:iam::ACCT:root`: every principal of the account.
    Account(Box<str>),
    /// A role: itself and its sessions (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`).
    Role {
        arn: Box<str>,
        account: Box<str>,
        name: Box<str>,
    },
    Exact(Box<str>),
    /// Service names compare case-insensitively.
    Service(Box<str>),
}

impl PrincipalMatcher {
    fn compile(block: &PrincipalBlock) -> Self {
        let (negated, principals) = match block {
            PrincipalBlock::Principal(p) => (false, p),
            PrincipalBlock::NotPrincipal(p) => (true, p),
        };
        let entries = match principals {
            Principals::Any => vec![PrincipalEntry::Any],
            Principals::Specific(map) => map
                .iter()
                .flat_map(|(ty, values)| values.iter().map(move |v| PrincipalEntry::new(*ty, v)))
                .collect(),
        };
        PrincipalMatcher { negated, entries }
    }

    /// How the statement reaches the caller. A `NotPrincipal` exempts the caller only when it
    /// lists every principal AWS checks for it: the caller, its role for a session, and its
    /// account (IAM User Guide, "AWS JSON policy elements: NotPrincipal": with Deny "you must
    /// also specify the account ARN of the not-denied principal"). With a permissions
    /// boundary, a Deny with `NotPrincipal` exempts no one (IAM User Guide, "Permissions
    /// boundaries for IAM entities").
    fn reach(&self, caller: &Caller, effect: Effect, has_boundary: bool) -> Reach {
        if !self.negated {
            return (self.entries.iter())
                .map(|e| e.reach(caller))
                .max()
                .unwrap_or(Reach::None);
        }
        if effect == Effect::Deny && has_boundary {
            return Reach::Named;
        }
        let listed = |f: &dyn Fn(&PrincipalEntry) -> bool| self.entries.iter().any(f);
        let any = listed(&|e| matches!(e, PrincipalEntry::Any));
        let itself = caller.arn.is_some_and(|arn| {
            listed(&|e| match e {
                PrincipalEntry::Exact(p) | PrincipalEntry::Role { arn: p, .. } => **p == *arn,
                PrincipalEntry::Service(s) => s.eq_ignore_ascii_case(arn),
                PrincipalEntry::Account(a) => caller.is_root && caller.account == Some(&**a),
                PrincipalEntry::Any => false,
            })
        });
        let account = caller.account.is_none_or(|account| {
            listed(&|e| matches!(e, PrincipalEntry::Account(a) if **a == *account))
        });
        let role = caller.assumed_role.is_none_or(|(name, _)| {
            listed(&|e| {
                matches!(e, PrincipalEntry::Role { name: n, account: a, .. }
                if **n == *name && caller.account == Some(&**a))
            })
        });
        if any || (itself && account && role) {
            Reach::None
        } else {
            Reach::Named
        }
    }
}

impl PrincipalEntry {
    fn new(ty: PrincipalType, value: &str) -> Self {
        match ty {
            PrincipalType::Service => return PrincipalEntry::Service(value.into()),
            PrincipalType::Aws if value == "*" => return PrincipalEntry::Any,
            PrincipalType::Aws => {}
            PrincipalType::Federated | PrincipalType::CanonicalUser => {
                return PrincipalEntry::Exact(value.into());
            }
        }
        if crate::policy::context::is_account_id(value) {
            return PrincipalEntry::Account(value.into());
        }
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        match parts[..] {
            ["arn", _, "iam", _, account, "root"] => PrincipalEntry::Account(account.into()),
            ["arn", _, "iam", _, account, res] if res.starts_with("role/") => {
                PrincipalEntry::Role {
                    arn: value.into(),
                    account: account.into(),
                    name: res.rsplit('/').next().unwrap_or(res).into(),
                }
            }
            _ => PrincipalEntry::Exact(value.into()),
        }
    }

    fn reach(&self, caller: &Caller) -> Reach {
        let hit = match self {
            PrincipalEntry::Any => return Reach::Named,
            // The account's root user is the account itself.
            PrincipalEntry::Account(a) if caller.account == Some(&**a) => {
                return if caller.is_root {
                    Reach::Named
                } else {
                    Reach::Account
                };
            }
            PrincipalEntry::Account(_) => false,
            PrincipalEntry::Role { arn, account, name } => {
                if caller.arn == Some(&**arn) {
                    return Reach::Named;
                }
                if caller.account == Some(&**account)
                    && caller.assumed_role.is_some_and(|(role, _)| role == &**name)
                {
                    return Reach::Role;
                }
                false
            }
            PrincipalEntry::Exact(p) => caller.arn == Some(&**p),
            PrincipalEntry::Service(s) => caller.arn.is_some_and(|a| a.eq_ignore_ascii_case(s)),
        };
        if hit { Reach::Named } else { Reach::None }
    }
}

#[derive(Clone, Debug)]
struct CompiledCondition {
    op: ConditionOperator,
    /// ASCII-lowercased: condition keys are case-insensitive.
    key: Box<str>,
    values: CondValues,
}

/// Policy values parsed for their operator; a value that does not parse matches nothing.
#[derive(Clone, Debug)]
enum CondValues {
    /// String, ARN and binary operators; variables substituted for String* and Arn*.
    Strings(Box<[Template]>),
    Numbers(Box<[Option<f64>]>, Ordering),
    Dates(Box<[Option<Instant>]>, Ordering),
    Cidrs(Box<[Option<Cidr>]>),
    /// `Null`: `Some(true)` tests that the key is absent.
    Null(Box<[Option<bool>]>),
}

/// How a context value must compare with a policy value (negation is applied separately).
#[derive(Clone, Copy, Debug)]
enum Ordering {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Ordering {
    fn holds<T: PartialOrd>(self, ctx: T, policy: T) -> bool {
        match self {
            Ordering::Eq => ctx == policy,
            Ordering::Lt => ctx < policy,
            Ordering::Le => ctx <= policy,
            Ordering::Gt => ctx > policy,
            Ordering::Ge => ctx >= policy,
        }
    }
}

impl CompiledCondition {
    fn compile(c: &Condition, substitute: bool) -> Self {
        use BaseOperator::*;
        let base = c.operator.base;
        let strings = |substitute: bool, escape: bool| {
            CondValues::Strings(
                c.values
                    .iter()
                    .map(|v| Template::compile(v, substitute, escape))
                    .collect(),
            )
        };
        let values = match base {
            StringEquals | StringNotEquals | StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                strings(substitute, false)
            }
            StringLike | StringNotLike | ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
                strings(substitute, true)
            }
            Bool | BinaryEquals => strings(false, false),
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => CondValues::Numbers(
                c.values.iter().map(|v| parse_number(v)).collect(),
                ordering(base),
            ),
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => CondValues::Dates(
                c.values.iter().map(|v| parse_date(v)).collect(),
                ordering(base),
            ),
            IpAddress | NotIpAddress => {
                CondValues::Cidrs(c.values.iter().map(|v| Cidr::parse(v)).collect())
            }
            Null => CondValues::Null(
                c.values
                    .iter()
                    .map(|v| match v.to_ascii_lowercase().as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        CompiledCondition {
            op: c.operator,
            key: c.key.to_ascii_lowercase().into(),
            values,
        }
    }

    fn holds(&self, env: &Env, scratch: &mut Vec<u8>) -> bool {
        let values = env.lookup(&self.key);
        if let CondValues::Null(tests) = &self.values {
            let absent = values.is_none();
            return tests.contains(&Some(absent));
        }
        let negated = self.op.base.is_negated();
        let Some(values) = values else {
            // ForAllValues over no values is vacuously true: AWS's well-known pitfall, an Allow
            // with `ForAllValues:StringEquals` on `aws:TagKeys` also allows untagged requests.
            return self.op.if_exists
                || match self.op.set {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => false,
                    None => negated,
                };
        };
        match self.op.set {
            // Without a qualifier a negated operator holds when no context value matches.
            None => values.iter().any(|v| self.matches(v, env, scratch)) != negated,
            Some(SetQualifier::ForAnyValue) => values
                .iter()
                .any(|v| self.matches(v, env, scratch) != negated),
            Some(SetQualifier::ForAllValues) => values
                .iter()
                .all(|v| self.matches(v, env, scratch) != negated),
        }
    }

    /// Does one context value match any of the policy values, under the operator taken
    /// without its negation?
    fn matches(&self, value: &str, env: &Env, scratch: &mut Vec<u8>) -> bool {
        use BaseOperator::*;
        match &self.values {
            CondValues::Strings(templates) => templates.iter().any(|t| {
                let Some(p) = t.resolve(env, scratch) else {
                    return false;
                };
                match self.op.base {
                    StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                        std::str::from_utf8(p).is_ok_and(|p| eq_ignore_case(p, value))
                    }
                    StringLike | StringNotLike => matches_encoded(p, value.as_bytes()),
                    ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => arn_matches(p, value),
                    Bool => p.eq_ignore_ascii_case(value.as_bytes()),
                    _ => p == value.as_bytes(),
                }
            }),
            CondValues::Numbers(numbers, ord) => parse_number(value)
                .is_some_and(|v| numbers.iter().flatten().any(|p| ord.holds(v, *p))),
            CondValues::Dates(dates, ord) => {
                parse_date(value).is_some_and(|v| dates.iter().flatten().any(|p| ord.holds(v, *p)))
            }
            CondValues::Cidrs(cidrs) => {
                let addr = value.split_once('/').map_or(value, |(a, _)| a).trim();
                addr.parse::<IpAddr>()
                    .is_ok_and(|ip| cidrs.iter().flatten().any(|c| c.contains(ip)))
            }
            CondValues::Null(_) => false,
        }
    }
}

/// Unicode case-insensitive equality without allocating.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

fn ordering(base: BaseOperator) -> Ordering {
    use BaseOperator::*;
    match base {
        NumericLessThan | DateLessThan => Ordering::Lt,
        NumericLessThanEquals | DateLessThanEquals => Ordering::Le,
        NumericGreaterThan | DateGreaterThan => Ordering::Gt,
        NumericGreaterThanEquals | DateGreaterThanEquals => Ordering::Ge,
        _ => Ordering::Eq,
    }
}

/// ARN operators compare the six colon-separated components separately (the last may contain
/// `:`), each with wildcards. A pattern with fewer than six components (such as `*`) is matched
/// against the whole value instead.
fn arn_matches(pattern: &[u8], value: &str) -> bool {
    if pattern.iter().filter(|&&b| b == b':').count() < 5 {
        return matches_encoded(pattern, value.as_bytes());
    }
    let mut p = pattern.splitn(6, |&b| b == b':');
    let mut v = value.as_bytes().splitn(6, |&b| b == b':');
    loop {
        match (p.next(), v.next()) {
            (Some(a), Some(b)) if matches_encoded(a, b) => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

    /// A 2012-10-17 policy with the given statement(s).
    fn pol(statements: &str) -> Policy {
        Policy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":{statements}}}"#
        ))
        .unwrap()
    }

    fn allow(action: &str, resource: &str) -> Policy {
        pol(&format!(
            r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#
        ))
    }

    fn deny(action: &str, resource: &str) -> Policy {
        pol(&format!(
            r#"{{"Sid":"No","Effect":"Deny","Action":"{action}","Resource":"{resource}"}}"#
        ))
    }

    fn run(set: &PolicySet, action: &str, resource: &str, principal: &str) -> Evaluation {
        let ctx = Context::new();
        set.evaluate(&Request {
            action,
            resource,
            principal: Some(principal),
            context: &ctx,
        })
    }

    fn decide(set: &PolicySet, action: &str, resource: &str) -> Decision {
        run(set, action, resource, ALICE).decision
    }

    /// Does an allow-everything statement with this `Condition` block allow, given `ctx`?
    fn cond(condition: &str, ctx: &Context) -> bool {
        cond_versioned(condition, ctx, "2012-10-17")
    }

    fn cond_versioned(condition: &str, ctx: &Context, version: &str) -> bool {
        let p = Policy::parse(&format!(
            r#"{{"Version":"{version}","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}}}"#
        ))
        .unwrap();
        let set = PolicySet::builder().identity(p).build();
        let req = Request {
            action: "s3:GetObject",
            resource: "arn:aws:s3:::b/k",
            principal: Some(ALICE),
            context: ctx,
        };
        set.evaluate(&req).decision == Decision::Allowed
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.insert(k, *v);
        }
        c
    }

    #[test]
    fn explicit_deny_beats_allow_across_policies() {
        let set = PolicySet::builder()
            .identity(allow("s3:*", "*"))
            .scp_labeled(deny("s3:DeleteObject", "*"), "scp.json")
            .scp(allow("*", "*"))
            .build();
        let e = run(&set, "s3:DeleteObject", "arn:aws:s3:::b/k", ALICE);
        assert_eq!(e.decision, Decision::ExplicitlyDenied);
        assert_eq!(e.matched.len(), 1);
        let m = &e.matched[0];
        assert_eq!(m.kind, PolicyKind::ServiceControlPolicy);
        assert_eq!((m.policy_index, m.statement_index), (0, 0));
        assert_eq!(m.label.as_deref(), Some("scp.json"));
        assert_eq!(m.sid.as_deref(), Some("No"));
        assert_eq!(decide(&set, "s3:GetObject", "*"), Decision::Allowed);
    }

    #[test]
    fn implicit_deny_when_nothing_allows() {
        let set = PolicySet::builder().identity(allow("s3:Get*", "*")).build();
        let e = run(&set, "ec2:RunInstances", "*", ALICE);
        assert_eq!(e.decision, Decision::ImplicitlyDenied);
        assert!(e.matched.is_empty());
        assert_eq!(
            decide(&PolicySet::builder().build(), "s3:GetObject", "*"),
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn boundary_caps_identity_allow() {
        let set = PolicySet::builder()
            .identity(allow("s3:*", "*"))
            .boundary(allow("s3:Get*", "*"))
            .build();
        assert_eq!(decide(&set, "s3:GetObject", "*"), Decision::Allowed);
        let e = run(&set, "s3:PutObject", "*", ALICE);
        assert_eq!(e.decision, Decision::ImplicitlyDenied);
        // The identity policy allowed; the boundary did not: the report shows exactly that.
        assert_eq!(e.matched.len(), 1);
        assert_eq!(e.matched[0].kind, PolicyKind::Identity);
    }

    #[test]
    fn every_boundary_must_allow() {
        let set = PolicySet::builder()
            .identity(allow("*", "*"))
            .boundary(allow("s3:*", "*"))
            .boundary(allow("s3:Get*", "*"))
            .build();
        assert_eq!(decide(&set, "s3:GetObject", "*"), Decision::Allowed);
        assert_eq!(
            decide(&set, "s3:PutObject", "*"),
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn scp_caps() {
        let set = PolicySet::builder()
            .identity(allow("*", "*"))
            .scp(allow("s3:*", "*"))
            .scp(allow("sqs:*", "*"))
            .build();
        assert_eq!(decide(&set, "sqs:SendMessage", "*"), Decision::Allowed);
        assert_eq!(
            decide(&set, "ec2:RunInstances", "*"),
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn session_policy_caps() {
        let set = PolicySet::builder()
            .identity(allow("s3:*", "*"))
            .session(allow("s3:GetObject", "*"))
            .build();
        assert_eq!(decide(&set, "s3:GetObject", "*"), Decision::Allowed);
        assert_eq!(
            decide(&set, "s3:PutObject", "*"),
            Decision::ImplicitlyDenied
        );
    }

    fn bucket_policy(principal: &str) -> Policy {
        pol(&format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"sqs:SendMessage","Resource":"*"}}"#
        ))
    }

    #[test]
    fn same_account_resource_policy_alone_allows() {
        let set = PolicySet::builder()
            .resource_policy(bucket_policy(&format!(r#"{{"AWS":"{ALICE}"}}"#)))
            .build();
        let q = "arn:aws:sqs:us-east-1:111122223333:q";
        let e = run(&set, "sqs:SendMessage", q, ALICE);
        assert_eq!(e.decision, Decision::Allowed);
        assert_eq!(e.matched[0].kind, PolicyKind::ResourcePolicy);
        let bob = "arn:aws:iam::111122223333:user/bob";
        assert_eq!(
            run(&set, "sqs:SendMessage", q, bob).decision,
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn cross_account_needs_both() {
        let q = "arn:aws:sqs:us-east-1:444455556666:q";
        let resource_only = PolicySet::builder()
            .resource_policy(bucket_policy(r#"{"AWS":"111122223333"}"#))
            .build();
        assert_eq!(
            decide(&resource_only, "sqs:SendMessage", q),
            Decision::ImplicitlyDenied
        );
        let both = PolicySet::builder()
            .identity(allow("sqs:SendMessage", q))
            .resource_policy(bucket_policy(r#"{"AWS":"111122223333"}"#))
            .build();
        let e = run(&both, "sqs:SendMessage", q, ALICE);
        assert_eq!(e.decision, Decision::Allowed);
        assert_eq!(e.matched.len(), 2);
        // The other account's policies are not in the set: the identity side decides.
        let identity_only = PolicySet::builder()
            .identity(allow("sqs:SendMessage", q))
            .build();
        assert_eq!(
            decide(&identity_only, "sqs:SendMessage", q),
            Decision::Allowed
        );
    }

    #[test]
    fn resource_policy_principals() {
        let role = "arn:aws:iam::111122223333:role/app/Worker";
        let set = PolicySet::builder()
            .resource_policy(bucket_policy(&format!(r#"{{"AWS":"{role}"}}"#)))
            .build();
        let session = "arn:aws:sts::111122223333:assumed-role/Worker/i-123";
        let other = "arn:aws:sts::111122223333:assumed-role/Other/i-123";
        assert_eq!(
            run(&set, "sqs:SendMessage", "*", session).decision,
            Decision::Allowed
        );
        assert_eq!(
            run(&set, "sqs:SendMessage", "*", role).decision,
            Decision::Allowed
        );
        assert_eq!(
            run(&set, "sqs:SendMessage", "*", other).decision,
            Decision::ImplicitlyDenied
        );
        // Naming the account delegates to its identity policies: alone it grants nothing.
        let root = PolicySet::builder()
            .resource_policy(bucket_policy(r#"{"AWS":"arn:aws:iam::111122223333:root"}"#))
            .build();
        assert_eq!(
            run(&root, "sqs:SendMessage", "*", other).decision,
            Decision::ImplicitlyDenied
        );
        let service = PolicySet::builder()
            .resource_policy(bucket_policy(r#"{"Service":"sns.amazonaws.com"}"#))
            .build();
        let sns = "sns.amazonaws.com";
        assert_eq!(
            run(&service, "sqs:SendMessage", "*", sns).decision,
            Decision::Allowed
        );
        assert_eq!(
            run(&service, "sqs:SendMessage", "*", ALICE).decision,
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn not_principal_inverts() {
        let set = PolicySet::builder()
            .identity(allow("*", "*"))
            .resource_policy(pol(&format!(
                r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":["{ALICE}","111122223333"]}},"Action":"*","Resource":"*"}}"#
            )))
            .build();
        let bob = "arn:aws:iam::111122223333:user/bob";
        assert_eq!(
            run(&set, "s3:GetObject", "*", ALICE).decision,
            Decision::Allowed
        );
        assert_eq!(
            run(&set, "s3:GetObject", "*", bob).decision,
            Decision::ExplicitlyDenied
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let set = PolicySet::builder()
            .identity(pol(
                r#"{"Effect":"Allow","NotAction":["iam:*","s3:Delete*"],"NotResource":"arn:aws:s3:::secret/*"}"#,
            ))
            .build();
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::b/k"),
            Decision::Allowed
        );
        assert_eq!(
            decide(&set, "iam:CreateUser", "*"),
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            decide(&set, "s3:DeleteObject", "*"),
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::secret/k"),
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn actions_ignore_case_resources_do_not() {
        let set = PolicySet::builder()
            .identity(allow("S3:getobject", "arn:aws:s3:::Bucket/*"))
            .identity(allow("EC2:Describe*", "*"))
            .identity(allow("*:List?uckets", "*"))
            .build();
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::Bucket/k"),
            Decision::Allowed
        );
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::bucket/k"),
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            decide(&set, "ec2:describeinstances", "*"),
            Decision::Allowed
        );
        assert_eq!(decide(&set, "s3:ListBuckets", "*"), Decision::Allowed);
        assert_eq!(
            decide(&set, "s3:ListBucket", "*"),
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn trust_policy_without_resource_matches_any_resource() {
        let set = PolicySet::builder()
            .resource_policy(pol(
                r#"{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}"#,
            ))
            .build();
        let role = "arn:aws:iam::111122223333:role/R";
        let e = run(&set, "sts:AssumeRole", role, "ec2.amazonaws.com");
        assert_eq!(e.decision, Decision::Allowed);
    }

    #[test]
    fn allowed_lists_every_granting_statement() {
        let set = PolicySet::builder()
            .identity_labeled(allow("s3:*", "*"), "a.json")
            .identity(deny("ec2:*", "*"))
            .boundary(pol(
                r#"[{"Effect":"Allow","Action":"sqs:*","Resource":"*"},{"Sid":"B","Effect":"Allow","Action":"s3:Get*","Resource":"*"}]"#,
            ))
            .build();
        let e = run(&set, "s3:GetObject", "*", ALICE);
        assert_eq!(e.decision, Decision::Allowed);
        let got: Vec<_> = e
            .matched
            .iter()
            .map(|m| {
                (
                    m.kind,
                    m.policy_index,
                    m.statement_index,
                    m.label.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (PolicyKind::Identity, 0, 0, Some("a.json")),
                (PolicyKind::PermissionsBoundary, 0, 1, None)
            ]
        );
    }

    #[test]
    fn many_matching_statements_are_all_reported() {
        let statements: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"Sid":"S{i}","Effect":"Allow","Action":"s3:*","Resource":"*"}}"#))
            .collect();
        let set = PolicySet::builder()
            .identity(pol(&format!("[{}]", statements.join(","))))
            .build();
        let e = run(&set, "s3:GetObject", "*", ALICE);
        assert_eq!(e.matched.len(), 40);
        assert_eq!(e.matched[39].sid.as_deref(), Some("S39"));
    }

    #[test]
    fn serializes_as_documented() {
        let set = PolicySet::builder().identity(allow("s3:*", "*")).build();
        let json = serde_json::to_value(run(&set, "s3:GetObject", "*", ALICE)).unwrap();
        assert_eq!(json["decision"], "Allowed");
        assert_eq!(json["matched"][0]["kind"], "identity");
        assert_eq!(json["matched"][0]["policyIndex"], 0);
        assert_eq!(json["matched"][0]["effect"], "Allow");
        assert_eq!(Decision::ExplicitlyDenied.to_string(), "ExplicitlyDenied");
        assert_eq!(PolicyKind::PermissionsBoundary.as_str(), "boundary");
    }

    #[test]
    fn string_operators() {
        let c = ctx(&[("aws:RequestedRegion", "eu-west-1")]);
        assert!(cond(
            r#"{"StringEquals":{"AWS:requestedregion":["us-east-1","eu-west-1"]}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"StringEquals":{"aws:RequestedRegion":"EU-west-1"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"StringEqualsIgnoreCase":{"aws:RequestedRegion":"EU-WEST-1"}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"StringNotEquals":{"aws:RequestedRegion":"eu-west-1"}}"#,
            &c
        ));
        assert!(cond(r#"{"StringLike":{"aws:RequestedRegion":"eu-*"}}"#, &c));
        assert!(!cond(
            r#"{"StringNotLike":{"aws:RequestedRegion":"eu-?est-1"}}"#,
            &c
        ));
    }

    #[test]
    fn missing_key_plain_false_negated_true_if_exists_true() {
        let c = Context::new();
        assert!(!cond(r#"{"StringEquals":{"aws:RequestedRegion":"x"}}"#, &c));
        assert!(cond(
            r#"{"StringNotEquals":{"aws:RequestedRegion":"x"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
            &c
        ));
        assert!(cond(r#"{"ArnNotLike":{"aws:SourceArn":"arn:*"}}"#, &c));
        assert!(cond(
            r#"{"StringEqualsIfExists":{"aws:RequestedRegion":"x"}}"#,
            &c
        ));
        let present = ctx(&[("aws:RequestedRegion", "y")]);
        assert!(!cond(
            r#"{"StringEqualsIfExists":{"aws:RequestedRegion":"x"}}"#,
            &present
        ));
    }

    #[test]
    fn numeric_operators() {
        let c = ctx(&[("aws:MultiFactorAuthAge", "300")]);
        assert!(cond(
            r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"NumericGreaterThan":{"aws:MultiFactorAuthAge":3600}}"#,
            &c
        ));
        assert!(cond(
            r#"{"NumericEquals":{"aws:MultiFactorAuthAge":"300.0"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"NumericLessThanEquals":{"aws:MultiFactorAuthAge":300}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"NumericNotEquals":{"aws:MultiFactorAuthAge":300}}"#,
            &c
        ));
        let bad = ctx(&[("aws:MultiFactorAuthAge", "soon")]);
        assert!(!cond(
            r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}"#,
            &bad
        ));
    }

    #[test]
    fn date_operators() {
        let c = ctx(&[("aws:CurrentTime", "2024-06-01T12:00:00Z")]);
        assert!(cond(
            r#"{"DateLessThan":{"aws:CurrentTime":"2025-01-01T00:00:00Z"}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2025-01-01"}}"#,
            &c
        ));
        let epoch = ctx(&[("aws:EpochTime", "1717243200")]);
        assert!(cond(
            r#"{"DateEquals":{"aws:EpochTime":"2024-06-01T12:00:00Z"}}"#,
            &epoch
        ));
        assert!(cond(
            r#"{"DateGreaterThanEquals":{"aws:EpochTime":"1717243200"}}"#,
            &epoch
        ));
    }

    #[test]
    fn bool_and_binary_operators() {
        let c = ctx(&[("aws:SecureTransport", "true"), ("k:bin", "QmluYXJ5")]);
        assert!(cond(r#"{"Bool":{"aws:SecureTransport":true}}"#, &c));
        assert!(!cond(r#"{"Bool":{"aws:SecureTransport":"false"}}"#, &c));
        assert!(cond(r#"{"BinaryEquals":{"k:bin":"QmluYXJ5"}}"#, &c));
        assert!(!cond(r#"{"BinaryEquals":{"k:bin":"qmluyxj5"}}"#, &c));
    }

    #[test]
    fn ip_address_v4_and_v6() {
        let v4 = ctx(&[("aws:SourceIp", "203.0.113.7")]);
        assert!(cond(
            r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.0/24"]}}"#,
            &v4
        ));
        assert!(!cond(
            r#"{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            &v4
        ));
        let v6 = ctx(&[("aws:SourceIp", "2001:db8::1")]);
        assert!(cond(
            r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
            &v6
        ));
        assert!(!cond(
            r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            &v6
        ));
    }

    #[test]
    fn arn_operators_compare_components() {
        let c = ctx(&[(
            "aws:SourceArn",
            "arn:aws:sns:us-east-1:111122223333:topic:sub",
        )]);
        assert!(cond(
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:topic:sub"}}"#,
            &c
        ));
        // `*` does not cross a component boundary.
        assert!(!cond(
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:*:111122223333:topic:*"}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:*:444455556666:*"}}"#,
            &c
        ));
    }

    #[test]
    fn null_tests_presence() {
        let c = ctx(&[("aws:TokenIssueTime", "2024-01-01T00:00:00Z")]);
        assert!(cond(r#"{"Null":{"aws:TokenIssueTime":"false"}}"#, &c));
        assert!(!cond(r#"{"Null":{"aws:TokenIssueTime":"true"}}"#, &c));
        assert!(cond(
            r#"{"Null":{"aws:TokenIssueTime":true}}"#,
            &Context::new()
        ));
    }

    fn tags(values: &[&str]) -> Context {
        let mut c = Context::new();
        c.insert_all(
            "aws:TagKeys",
            values.iter().map(|v| v.to_string()).collect(),
        );
        c
    }

    #[test]
    fn for_all_values() {
        let op = r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#;
        assert!(cond(op, &tags(&["env", "team"])));
        assert!(!cond(op, &tags(&["env", "owner"])));
        // Vacuously true without values: the reason such Allows need a Null check too.
        assert!(cond(op, &tags(&[])));
        assert!(cond(op, &Context::new()));
    }

    #[test]
    fn for_any_value() {
        let op = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}"#;
        assert!(cond(op, &tags(&["owner", "team"])));
        assert!(!cond(op, &tags(&["owner"])));
        assert!(!cond(op, &Context::new()));
        let if_exists = r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"env"}}"#;
        assert!(cond(if_exists, &Context::new()));
        let negated = r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["env"]}}"#;
        assert!(cond(negated, &tags(&["env", "x"])));
        assert!(!cond(negated, &tags(&["env"])));
    }

    #[test]
    fn multi_valued_key_without_qualifier() {
        let c = tags(&["env", "owner"]);
        assert!(cond(r#"{"StringEquals":{"aws:TagKeys":"owner"}}"#, &c));
        assert!(!cond(r#"{"StringNotEquals":{"aws:TagKeys":"owner"}}"#, &c));
        assert!(cond(r#"{"StringNotEquals":{"aws:TagKeys":"x"}}"#, &c));
    }

    #[test]
    fn derived_principal_keys() {
        let c = Context::new();
        assert!(cond(
            r#"{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/alice"}}"#,
            &c
        ));
        assert!(cond(r#"{"StringEquals":{"aws:username":"alice"}}"#, &c));
        // The context overrides what would be derived.
        let other = ctx(&[("aws:username", "mallory")]);
        assert!(!cond(
            r#"{"StringEquals":{"aws:username":"alice"}}"#,
            &other
        ));
    }

    fn home_policy(version: &str, resource: &str) -> PolicySet {
        let p = Policy::parse(&format!(
            r#"{{"Version":"{version}","Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"{resource}"}}}}"#
        ))
        .unwrap();
        PolicySet::builder().identity(p).build()
    }

    #[test]
    fn variables_in_resources() {
        let set = home_policy("2012-10-17", "arn:aws:s3:::home/${aws:username}/*");
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::home/alice/x"),
            Decision::Allowed
        );
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::home/bob/x"),
            Decision::ImplicitlyDenied
        );
        // Without a principal there is no user name and no default: the pattern matches nothing.
        let ctx = Context::new();
        let anonymous = Request {
            action: "s3:GetObject",
            resource: "arn:aws:s3:::home//x",
            principal: None,
            context: &ctx,
        };
        assert_eq!(
            set.evaluate(&anonymous).decision,
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn variable_defaults_and_literals() {
        let set = home_policy(
            "2012-10-17",
            "arn:aws:s3:::t/${aws:PrincipalTag/team, 'none'}/${*}",
        );
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::t/none/*"),
            Decision::Allowed
        );
        // `${*}` is a literal asterisk, not a wildcard.
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::t/none/x"),
            Decision::ImplicitlyDenied
        );
        let tagged = ctx(&[("aws:PrincipalTag/team", "blue")]);
        let req = Request {
            action: "s3:GetObject",
            resource: "arn:aws:s3:::t/blue/*",
            principal: Some(ALICE),
            context: &tagged,
        };
        assert_eq!(set.evaluate(&req).decision, Decision::Allowed);
    }

    #[test]
    fn no_substitution_under_2008_10_17() {
        let set = home_policy("2008-10-17", "arn:aws:s3:::home/${aws:username}/*");
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::home/alice/x"),
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            decide(&set, "s3:GetObject", "arn:aws:s3:::home/${aws:username}/x"),
            Decision::Allowed
        );
        let c = ctx(&[("s3:prefix", "alice/")]);
        let op = r#"{"StringLike":{"s3:prefix":"${aws:username}/"}}"#;
        assert!(cond(op, &c));
        assert!(!cond_versioned(op, &c, "2008-10-17"));
    }

    // IAM User Guide, "Policy evaluation logic" and "AWS JSON policy elements: Principal":
    // within one account a resource policy naming the account delegates to the account's
    // identity policies; naming the user or session grants alone.
    #[test]
    fn same_account_account_principal_delegates_to_identity_policies() {
        let object = "arn:aws:s3:::mybucket/testobject";
        let user = "arn:aws:iam::123456789012:user/test-user";
        let bucket = |principal: &str| {
            pol(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"s3:GetObject","Resource":"{object}"}}"#
            ))
        };
        let with = |identity: Option<Policy>, resource: Policy| {
            let mut b = PolicySet::builder().resource_policy(resource);
            if let Some(p) = identity {
                b = b.identity(p);
            }
            run(&b.build(), "s3:GetObject", object, user).decision
        };
        for account in ["arn:aws:iam::123456789012:root", "123456789012"] {
            assert_eq!(with(None, bucket(account)), Decision::ImplicitlyDenied);
            let identity = allow("s3:GetObject", object);
            assert_eq!(with(Some(identity), bucket(account)), Decision::Allowed);
            let denied = deny("s3:GetObject", object);
            assert_eq!(
                with(Some(denied), bucket(account)),
                Decision::ExplicitlyDenied
            );
        }
        assert_eq!(with(None, bucket(user)), Decision::Allowed);
        let other = "arn:aws:iam::123456789012:user/other-user";
        assert_eq!(with(None, bucket(other)), Decision::ImplicitlyDenied);
        // The account's root user is the account.
        let root = PolicySet::builder()
            .resource_policy(bucket("123456789012"))
            .build();
        let root_user = "arn:aws:iam::123456789012:root";
        assert_eq!(
            run(&root, "s3:GetObject", object, root_user).decision,
            Decision::Allowed
        );
    }

    // "Policy evaluation logic": "Resource-based policies that grant permissions to an IAM role
    // ARN are limited by an implicit deny in a permissions boundary or session policy"; a grant
    // to the session ARN is not.
    #[test]
    fn a_role_principal_grant_stays_within_the_boundary_a_session_grant_does_not() {
        let q = "arn:aws:sqs:us-east-1:111122223333:q";
        let session = "arn:aws:sts::111122223333:assumed-role/app/s1";
        let set = |principal: &str| {
            PolicySet::builder()
                .boundary(allow("s3:*", "*"))
                .resource_policy(bucket_policy(&format!(r#"{{"AWS":"{principal}"}}"#)))
                .build()
        };
        let role = "arn:aws:iam::111122223333:role/app";
        assert_eq!(
            run(&set(role), "sqs:SendMessage", q, session).decision,
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            run(&set(session), "sqs:SendMessage", q, session).decision,
            Decision::Allowed
        );
    }

    #[test]
    fn a_cross_account_identity_allow_needs_the_resource_policy_when_it_is_given() {
        let q = "arn:aws:sqs:us-east-1:444455556666:q";
        let set = PolicySet::builder()
            .identity(allow("sqs:SendMessage", q))
            .resource_policy(bucket_policy(r#"{"AWS":"999988887777"}"#))
            .build();
        assert_eq!(
            run(&set, "sqs:SendMessage", q, ALICE).decision,
            Decision::ImplicitlyDenied
        );
    }

    // Trust policies and key policies must allow the caller themselves ("Policy evaluation
    // logic"); a key policy without the account statement makes identity Allows ineffective
    // (KMS Developer Guide, "Default key policy").
    #[test]
    fn trust_and_key_policies_must_allow_the_caller() {
        let role = "arn:aws:iam::111122223333:role/target";
        let trust = |principal: &str| {
            pol(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}"#
            ))
        };
        let assume = |identity: Option<Policy>, trust: Policy| {
            let mut b = PolicySet::builder().resource_policy(trust);
            if let Some(p) = identity {
                b = b.identity(p);
            }
            run(&b.build(), "sts:AssumeRole", role, ALICE).decision
        };
        let identity = || Some(allow("sts:AssumeRole", role));
        assert_eq!(assume(None, trust(ALICE)), Decision::Allowed);
        let root = "arn:aws:iam::111122223333:root";
        assert_eq!(assume(None, trust(root)), Decision::ImplicitlyDenied);
        assert_eq!(assume(identity(), trust(root)), Decision::Allowed);
        let bob = "arn:aws:iam::111122223333:user/bob";
        assert_eq!(assume(identity(), trust(bob)), Decision::ImplicitlyDenied);

        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let key_policy = |principal: &str| {
            pol(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"kms:*","Resource":"*"}}"#
            ))
        };
        let decrypt = |identity: Policy, key_policy: Policy| {
            let set = PolicySet::builder()
                .identity(identity)
                .resource_policy(key_policy)
                .build();
            run(&set, "kms:Decrypt", key, ALICE).decision
        };
        let admin = "arn:aws:iam::111122223333:user/KMSAdminUser";
        assert_eq!(
            decrypt(allow("kms:Decrypt", key), key_policy(root)),
            Decision::Allowed
        );
        assert_eq!(
            decrypt(allow("kms:Decrypt", key), key_policy(admin)),
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            decrypt(deny("kms:Decrypt", key), key_policy(root)),
            Decision::ExplicitlyDenied
        );
        // Without the key policy given, the identity side decides (the default key policy).
        let identity_only = PolicySet::builder()
            .identity(allow("kms:Decrypt", key))
            .build();
        assert_eq!(
            run(&identity_only, "kms:Decrypt", key, ALICE).decision,
            Decision::Allowed
        );
    }

    // IAM User Guide, "AWS JSON policy elements: NotPrincipal", its examples: the principal,
    // its role for a session, and its account must all be listed to escape the Deny.
    #[test]
    fn not_principal_deny_exempts_only_a_fully_listed_caller() {
        let bucket = "arn:aws:s3:::BUCKETNAME/k";
        let set = |listed: &str, boundary: bool| {
            let mut b = PolicySet::builder().identity(allow("s3:*", "*")).resource_policy(pol(&format!(
                r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":{listed}}},"Action":"s3:*","Resource":["arn:aws:s3:::BUCKETNAME","arn:aws:s3:::BUCKETNAME/*"]}}"#
            )));
            if boundary {
                b = b.boundary(allow("s3:*", "*"));
            }
            b.build()
        };
        let bob = "arn:aws:iam::444455556666:user/Bob";
        let both = r#"["arn:aws:iam::444455556666:user/Bob","arn:aws:iam::444455556666:root"]"#;
        assert_eq!(
            run(&set(both, false), "s3:GetObject", bucket, bob).decision,
            Decision::Allowed
        );
        let carol = "arn:aws:iam::444455556666:user/Carol";
        assert_eq!(
            run(&set(both, false), "s3:GetObject", bucket, carol).decision,
            Decision::ExplicitlyDenied
        );
        let bob_only = r#"["arn:aws:iam::444455556666:user/Bob"]"#;
        assert_eq!(
            run(&set(bob_only, false), "s3:GetObject", bucket, bob).decision,
            Decision::ExplicitlyDenied
        );
        let session = "arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app";
        let chain = format!(
            r#"["{session}","arn:aws:iam::444455556666:role/cross-account-read-only-role","arn:aws:iam::444455556666:root"]"#
        );
        assert_eq!(
            run(&set(&chain, false), "s3:GetObject", bucket, session).decision,
            Decision::Allowed
        );
        let role_only = r#"["arn:aws:iam::444455556666:role/cross-account-read-only-role","arn:aws:iam::444455556666:root"]"#;
        assert_eq!(
            run(&set(role_only, false), "s3:GetObject", bucket, session).decision,
            Decision::ExplicitlyDenied
        );
        // A principal with a permissions boundary is always denied by Deny + NotPrincipal.
        assert_eq!(
            run(&set(both, true), "s3:GetObject", bucket, bob).decision,
            Decision::ExplicitlyDenied
        );
    }

    #[test]
    fn get_caller_identity_is_allowed_under_any_deny() {
        let set = PolicySet::builder()
            .identity(deny("*", "*"))
            .scp(deny("*", "*"))
            .build();
        let e = run(&set, "sts:GetCallerIdentity", "*", ALICE);
        assert_eq!(e.decision, Decision::Allowed);
        assert!(e.reason.is_some());
        assert_eq!(
            run(&set, "sts:GetSessionToken", "*", ALICE).decision,
            Decision::ExplicitlyDenied
        );
    }

    #[test]
    fn service_controlled_resources_refuse_writes_whatever_the_policies_say() {
        let set = PolicySet::builder().identity(allow("*", "*")).build();
        let managed = "arn:aws:iam::aws:policy/AdministratorAccess";
        let e = run(&set, "iam:CreatePolicyVersion", managed, ALICE);
        assert_eq!(e.decision, Decision::ExplicitlyDenied);
        assert!(e.matched.is_empty() && e.reason.is_some());
        assert_eq!(
            run(&set, "iam:GetPolicy", managed, ALICE).decision,
            Decision::Allowed
        );
        let alias = "arn:aws:kms:us-east-1:111122223333:alias/aws/s3";
        assert_eq!(
            run(&set, "kms:DeleteAlias", alias, ALICE).decision,
            Decision::ExplicitlyDenied
        );
    }

    // Organizations User Guide, "Service control policies": every level must allow.
    #[test]
    fn every_scp_level_must_allow() {
        let levels = |account_level: Policy| {
            PolicySet::builder()
                .identity(allow("*", "*"))
                .scp_at_level(0, allow("*", "*"), Some("FullAWSAccess".into()))
                .scp_at_level(1, allow("s3:*", "*"), None)
                .scp_at_level(1, allow("sqs:*", "*"), None)
                .scp_at_level(2, account_level, None)
                .build()
        };
        let set = levels(allow("*", "*"));
        assert_eq!(decide(&set, "s3:GetObject", "*"), Decision::Allowed);
        assert_eq!(decide(&set, "sqs:SendMessage", "*"), Decision::Allowed);
        // The OU does not allow EC2, though the root and the account do.
        assert_eq!(
            decide(&set, "ec2:RunInstances", "*"),
            Decision::ImplicitlyDenied
        );
        let set = levels(allow("sqs:*", "*"));
        assert_eq!(
            decide(&set, "s3:GetObject", "*"),
            Decision::ImplicitlyDenied
        );
        assert_eq!(decide(&set, "sqs:SendMessage", "*"), Decision::Allowed);
    }

    #[test]
    fn star_resource_means_the_resource_for_actions_without_one_and_some_resource_otherwise() {
        let set = PolicySet::builder()
            .identity(allow("s3:*", "arn:aws:s3:::bucket/*"))
            .build();
        // s3:ListAllMyBuckets takes no resource: only `Resource: "*"` reaches it.
        assert_eq!(
            decide(&set, "s3:ListAllMyBuckets", "*"),
            Decision::ImplicitlyDenied
        );
        // s3:GetObject on some resource: allowed on the bucket's objects.
        assert_eq!(decide(&set, "s3:GetObject", "*"), Decision::Allowed);
        // A Deny of one bucket leaves other resources; a Deny of all does not.
        let set = PolicySet::builder()
            .identity(allow("s3:*", "*"))
            .identity(deny("s3:GetObject", "arn:aws:s3:::secret/*"))
            .build();
        assert_eq!(decide(&set, "s3:GetObject", "*"), Decision::Allowed);
        let set = PolicySet::builder()
            .identity(allow("s3:*", "*"))
            .identity(deny("s3:GetObject", "*"))
            .build();
        assert_eq!(
            decide(&set, "s3:GetObject", "*"),
            Decision::ExplicitlyDenied
        );
        let everything = PolicySet::builder().identity(allow("*", "*")).build();
        assert_eq!(
            decide(&everything, "s3:ListAllMyBuckets", "*"),
            Decision::Allowed
        );
    }
}
