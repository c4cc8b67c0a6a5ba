//! The two questions the operator asks of policies as a whole.
//!
//! - [`allowed_actions`]: which catalog actions a policy set can allow, and on which resources.
//! - [`grants_no_new_access`]: does a candidate allow nothing the current policies don't?
//!
//! The second one guards every write the operator makes, so it is sound rather than complete:
//! it answers [`Proof::Proven`] only when each allowed (action, resource) pattern of the
//! candidate is covered by one current Allow statement and touched by no current Deny the
//! candidate drops; anything it cannot decide (NotAction, NotResource, conditions, patterns
//! split across statements) is [`Proof::CannotProve`] with the reasons.

use super::document::{
    ActionBlock, Condition, Effect, Policy, PrincipalBlock, ResourceBlock, Statement,
};
use crate::catalog::{AccessLevel, ActionId, catalog};
use crate::wildcard::{
    decode_escapes, is_literal, matches, matches_ignore_case, may_overlap, subsumes,
    subsumes_ignore_case,
};
use rustc_hash::FxHashSet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One catalog action a policy set can allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedAction {
    /// `service:Action` in the catalog's spelling.
    pub action: String,
    pub access_level: AccessLevel,
    /// Resource patterns of the statements that allow it, sorted; `*` for NotResource.
    pub resources: Vec<String>,
    /// True when every allowing statement is narrowed by conditions or NotResource,
    /// or a conditional or resource-scoped Deny may take part of it away.
    pub conditional: bool,
}

/// Does an action pattern (`s3:Get*`, `*`) match the catalog action `service:name`?
fn action_pattern_matches(pattern: &str, service: &str, name: &str) -> bool {
    match pattern.split_once(':') {
        Some((ps, pn)) => matches_ignore_case(ps, service) && matches_ignore_case(pn, name),
        None => matches_ignore_case(pattern, &format!("{service}:{name}")),
    }
}

/// The catalog actions a statement's Action/NotAction covers.
fn statement_actions(statement: &Statement) -> Vec<ActionId> {
    let cat = catalog();
    match &statement.action {
        Some(ActionBlock::Action(patterns)) => {
            let mut ids: Vec<ActionId> = patterns
                .iter()
                .flat_map(|p| cat.expand(p))
                .map(|a| a.id())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        }
        Some(ActionBlock::NotAction(patterns)) => cat
            .actions()
            .filter(|a| {
                !patterns
                    .iter()
                    .any(|p| action_pattern_matches(p, a.service(), a.name()))
            })
            .map(|a| a.id())
            .collect(),
        None => Vec::new(),
    }
}

/// Which catalog actions `policies` (attached together) can allow, sorted by action.
///
/// An unconditional Deny on `*` removes an action; narrower or conditional Denies only mark
/// it `conditional`, since what they take away depends on the request.
pub fn allowed_actions(policies: &[Policy]) -> Vec<AllowedAction> {
    #[derive(Default)]
    struct Grant {
        resources: BTreeSet<String>,
        unconditional: bool,
        partially_denied: bool,
    }
    let mut grants: BTreeMap<ActionId, Grant> = BTreeMap::new();
    let statements = || policies.iter().flat_map(|p| p.statements.iter());
    for st in statements().filter(|s| s.effect == Effect::Allow) {
        let (resources, narrowed) = match &st.resource {
            Some(ResourceBlock::Resource(v)) => (v.clone(), false),
            Some(ResourceBlock::NotResource(_)) => (vec!["*".to_string()], true),
            None => (vec!["*".to_string()], false),
        };
        let unconditional = !narrowed && st.conditions.is_empty();
        for id in statement_actions(st) {
            let grant = grants.entry(id).or_default();
            grant.resources.extend(resources.iter().cloned());
            grant.unconditional |= unconditional;
        }
    }
    for st in statements().filter(|s| s.effect == Effect::Deny) {
        let denies_everything = st.conditions.is_empty()
            && matches!(&st.resource, Some(ResourceBlock::Resource(v)) if v.iter().any(|r| r == "*"));
        for id in statement_actions(st) {
            if denies_everything {
                grants.remove(&id);
            } else if let Some(grant) = grants.get_mut(&id) {
                grant.partially_denied = true;
            }
        }
    }
    let cat = catalog();
    grants
        .into_iter()
        .map(|(id, grant)| {
            let action = cat.action_by_id(id);
            AllowedAction {
                action: action.full_name(),
                access_level: action.access_level(),
                resources: grant.resources.into_iter().collect(),
                conditional: !grant.unconditional || grant.partially_denied,
            }
        })
        .collect()
}

/// What [`allowed_actions`] says of one policy set, and the actions' names.
#[derive(Debug)]
pub struct Allowed {
    pub actions: Vec<AllowedAction>,
    pub names: BTreeSet<String>,
}

/// Policy sets remembered by [`allowed`]; past this many, the memory starts over.
const ALLOWED_REMEMBERED: usize = 64;

/// [`allowed_actions`] of `policies`, remembered by their canonical form: many roles hold the
/// same policies, AdministratorAccess alone expands to every catalog action, and the operator
/// asks on every analysis.
pub fn allowed(policies: &[Policy]) -> std::sync::Arc<Allowed> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static REMEMBERED: OnceLock<Mutex<HashMap<String, Arc<Allowed>>>> = OnceLock::new();
    let key: Vec<String> = policies.iter().map(Policy::canonical_json).collect();
    let key = key.join("\n");
    let remembered = REMEMBERED.get_or_init(Default::default);
    if let Some(found) = remembered.lock().expect("not poisoned").get(&key) {
        return Arc::clone(found);
    }
    let actions = allowed_actions(policies);
    let names = actions.iter().map(|a| a.action.clone()).collect();
    let answer = Arc::new(Allowed { actions, names });
    let mut remembered = remembered.lock().expect("not poisoned");
    if remembered.len() >= ALLOWED_REMEMBERED {
        remembered.clear();
    }
    remembered.insert(key, Arc::clone(&answer));
    answer
}

/// The answer of [`grants_no_new_access`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reasons")]
pub enum Proof {
    /// Every request the candidate allows, the current policies allow too.
    Proven,
    /// No proof was found; the reasons name the candidate statements and patterns.
    CannotProve(Vec<String>),
}

impl Proof {
    pub fn is_proven(&self) -> bool {
        matches!(self, Proof::Proven)
    }
}

/// A statement with the policy it came from, for variable semantics and messages.
struct Located<'a> {
    policy: &'a Policy,
    policy_index: usize,
    statement_index: usize,
    statement: &'a Statement,
    /// The lower-cased literal entries of its `Action`, so a literal lookup is one hash probe
    /// (managed policies list thousands of actions).
    literal_actions: FxHashSet<String>,
    /// The statement in canonical form, to recognize the same statement spelt otherwise.
    canonical: Statement,
}

impl Located<'_> {
    fn name(&self) -> String {
        let sid = self
            .statement
            .sid
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| format!(" (Sid {s})"))
            .unwrap_or_default();
        format!(
            "policy {} Statement[{}]{sid}",
            self.policy_index, self.statement_index
        )
    }
}

fn located(policies: &[Policy]) -> Vec<Located<'_>> {
    policies
        .iter()
        .enumerate()
        .flat_map(|(policy_index, policy)| {
            policy
                .statements
                .iter()
                .enumerate()
                .map(move |(statement_index, statement)| Located {
                    policy,
                    policy_index,
                    statement_index,
                    statement,
                    literal_actions: match &statement.action {
                        Some(ActionBlock::Action(patterns)) => patterns
                            .iter()
                            .filter(|p| is_literal(p))
                            .map(|p| p.to_ascii_lowercase())
                            .collect(),
                        _ => FxHashSet::default(),
                    },
                    canonical: canonical_statement_of(statement),
                })
        })
        .collect()
}

fn has_variable(pattern: &str) -> bool {
    pattern.contains("${")
}

/// Is every resource `inner` (from `inner_policy`) also matched by `outer` (from `outer_policy`)?
/// Patterns with policy variables cover each other only when written identically and both
/// documents substitute variables the same way. IAM's escapes (`${*}`, a literal star, as the
/// generator writes a trail's values) are the text they stand for where variables are
/// substituted.
fn resource_covers(outer: &str, outer_policy: &Policy, inner: &str, inner_policy: &Policy) -> bool {
    let decoded = |pattern, policy: &Policy| {
        if policy.substitutes_variables() {
            decode_escapes(pattern)
        } else {
            (!has_variable(pattern)).then_some(std::borrow::Cow::Borrowed(pattern))
        }
    };
    match (decoded(outer, outer_policy), decoded(inner, inner_policy)) {
        (Some(outer), Some(inner)) => subsumes(&outer, &inner),
        _ => {
            outer == inner
                && outer_policy.substitutes_variables() == inner_policy.substitutes_variables()
        }
    }
}

/// Do the statement's conditions hold whenever `required` all hold? Each must appear in
/// `required` with the same operator and key, and values that make it no wider: for a
/// positive operator (values ORed) the required values are among the statement's; for a
/// negated one (values NORed: `StringNotEquals`, …) the statement's are among the required
/// ones; a negated operator over a set (`ForAllValues:StringNotLike`) needs the same values.
fn conditions_implied(statement: &[Condition], required: &[Condition]) -> bool {
    let sorted = |values: &[String]| {
        let mut v = values.to_vec();
        v.sort();
        v.dedup();
        v
    };
    let within = |inner: &[String], outer: &[String]| inner.iter().all(|v| outer.contains(v));
    statement.iter().all(|c| {
        required.iter().any(|r| {
            r.operator == c.operator && r.key.eq_ignore_ascii_case(&c.key) && {
                let (required_values, values) = (sorted(&r.values), sorted(&c.values));
                match (c.operator.base.is_negated(), c.operator.set.is_some()) {
                    (false, _) => within(&required_values, &values),
                    (true, false) => within(&values, &required_values),
                    (true, true) => values == required_values,
                }
            }
        })
    })
}

/// Whether any value of the conditions holds a policy variable (`${aws:username}`), whose
/// meaning depends on the document's Version.
fn conditions_have_variables(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.values.iter().any(|v| has_variable(v)))
}

/// Can the current statement grant anything an identity policy grants? (an Allow, no Principal)
fn usable_allow(cur: &Located) -> bool {
    cur.statement.effect == Effect::Allow && cur.statement.principal.is_none()
}

/// Does the current statement's Action/NotAction cover every action `action` matches?
/// (`lowered` is `action` in lower case, computed once by the caller.)
fn action_covered(cur: &Located, action: &str, lowered: &str) -> bool {
    match &cur.statement.action {
        Some(ActionBlock::Action(patterns)) => {
            (is_literal(action) && cur.literal_actions.contains(lowered))
                || patterns
                    .iter()
                    .filter(|p| !is_literal(p) || !is_literal(action))
                    .any(|p| subsumes_ignore_case(p, action))
        }
        Some(ActionBlock::NotAction(patterns)) => patterns
            .iter()
            .all(|p| !may_overlap(&p.to_ascii_lowercase(), lowered)),
        None => false,
    }
}

/// Does the current statement's Resource/NotResource cover every resource `resource` matches?
fn resource_covered(cur: &Located, resource: &str, cand: &Located) -> bool {
    match &cur.statement.resource {
        Some(ResourceBlock::Resource(patterns)) => patterns
            .iter()
            .any(|q| resource_covers(q, cur.policy, resource, cand.policy)),
        Some(ResourceBlock::NotResource(patterns)) => {
            !has_variable(resource)
                && patterns
                    .iter()
                    .all(|q| !has_variable(q) && !may_overlap(q, resource))
        }
        None => true,
    }
}

/// Could the current Deny statement take away part of `action` on `resource`?
fn deny_touches(deny: &Statement, action: &str, resource: &str) -> bool {
    let lowered = action.to_ascii_lowercase();
    let action_hit = match &deny.action {
        Some(ActionBlock::Action(patterns)) => patterns
            .iter()
            .any(|p| may_overlap(&p.to_ascii_lowercase(), &lowered)),
        Some(ActionBlock::NotAction(patterns)) => {
            !is_literal(action) || !patterns.iter().any(|p| matches_ignore_case(p, action))
        }
        None => false,
    };
    // A candidate resource with a variable may resolve to anything the Deny names.
    action_hit
        && (has_variable(resource)
            || match &deny.resource {
                Some(ResourceBlock::Resource(patterns)) => patterns
                    .iter()
                    .any(|q| has_variable(q) || may_overlap(q, resource)),
                Some(ResourceBlock::NotResource(patterns)) => {
                    !is_literal(resource) || !patterns.iter().any(|q| matches(q, resource))
                }
                None => true,
            })
}

/// Is every (action, resource) that `candidate` allows also allowed by `current`?
///
/// Candidate conditions and Denies are ignored (they only narrow the candidate, so ignoring
/// them over-approximates what it allows); current conditions count only when the candidate
/// statement carries them too. A current Deny that could apply must reappear, identically, in
/// the candidate: otherwise applying the candidate in place of `current` would lift it.
pub fn grants_no_new_access(candidate: &[Policy], current: &[Policy]) -> Proof {
    let current_statements = located(current);
    let candidate_statements = located(candidate);
    // A Deny counts as kept only in a document that substitutes variables as its own did.
    let candidate_denies: Vec<(bool, &Statement)> = candidate_statements
        .iter()
        .filter(|c| c.statement.effect == Effect::Deny)
        .map(|c| (c.policy.substitutes_variables(), &c.canonical))
        .collect();
    let kept = |deny: &Located| {
        candidate_denies.contains(&(deny.policy.substitutes_variables(), &deny.canonical))
    };
    let mut reasons = Vec::new();
    for cand in candidate_statements
        .iter()
        .filter(|c| c.statement.effect == Effect::Allow)
    {
        let st = cand.statement;
        if matches!(
            st.principal,
            Some(PrincipalBlock::Principal(_) | PrincipalBlock::NotPrincipal(_))
        ) {
            reasons.push(format!(
                "{}: an identity policy statement names a Principal",
                cand.name()
            ));
            continue;
        }
        // Which current statements can serve this candidate statement at all (their
        // conditions are implied by its own), and, per resource, which cover that resource:
        // computed once, not once per action, since statements list many of both.
        let usable: Vec<&Located> = current_statements
            .iter()
            .filter(|cur| {
                usable_allow(cur)
                    && conditions_implied(&cur.statement.conditions, &st.conditions)
                    && (!conditions_have_variables(&cur.statement.conditions)
                        || cur.policy.substitutes_variables()
                            == cand.policy.substitutes_variables())
            })
            .collect();
        // A statement the current policies hold as it is (a policy the role keeps) allows
        // nothing new, whatever its form, as long as the current Denies still stand.
        let twin = usable.iter().any(|cur| {
            cur.policy.substitutes_variables() == cand.policy.substitutes_variables()
                && cur.canonical == cand.canonical
        });
        let plain = matches!(st.action, Some(ActionBlock::Action(_)))
            && !matches!(st.resource, Some(ResourceBlock::NotResource(_)));
        if twin && !plain {
            // NotAction/NotResource cannot be split per action: every current Deny must stay.
            for deny in current_statements
                .iter()
                .filter(|c| c.statement.effect == Effect::Deny)
                .filter(|d| !kept(d))
            {
                reasons.push(format!(
                    "{}: current {} is not kept",
                    cand.name(),
                    deny.name()
                ));
            }
            continue;
        }
        let actions = match &st.action {
            Some(ActionBlock::Action(v)) => v,
            Some(ActionBlock::NotAction(_)) => {
                reasons.push(format!(
                    "{}: NotAction allows every action not listed, including ones AWS adds later",
                    cand.name()
                ));
                continue;
            }
            None => continue,
        };
        let star = vec!["*".to_string()];
        let resources = match &st.resource {
            Some(ResourceBlock::Resource(v)) => v,
            Some(ResourceBlock::NotResource(_)) => {
                reasons.push(format!(
                    "{}: NotResource allows every resource not listed",
                    cand.name()
                ));
                continue;
            }
            None => &star,
        };
        for resource in resources {
            let covering: Vec<&Located> = usable
                .iter()
                .copied()
                .filter(|cur| resource_covered(cur, resource, cand))
                .collect();
            for action in actions {
                let lowered = action.to_ascii_lowercase();
                if !twin
                    && !covering
                        .iter()
                        .any(|cur| action_covered(cur, action, &lowered))
                {
                    reasons.push(format!(
                        "{}: {action} on {resource} is not allowed by any single current statement",
                        cand.name()
                    ));
                    continue;
                }
                for deny in current_statements
                    .iter()
                    .filter(|c| c.statement.effect == Effect::Deny)
                {
                    if deny_touches(deny.statement, action, resource) && !kept(deny) {
                        reasons.push(format!(
                            "{}: {action} on {resource} is partly denied by current {}, which the candidate does not keep",
                            cand.name(),
                            deny.name()
                        ));
                    }
                }
            }
        }
    }
    if reasons.is_empty() {
        Proof::Proven
    } else {
        Proof::CannotProve(reasons)
    }
}

/// A statement in canonical form, so "the candidate keeps this Deny" ignores spelling.
fn canonical_statement_of(statement: &Statement) -> Statement {
    let policy = Policy {
        version: None,
        id: None,
        statements: vec![statement.clone()],
    };
    policy
        .canonical()
        .statements
        .pop()
        .expect("one statement in, one out")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Policy {
        Policy::parse(text).unwrap()
    }

    fn allow(actions: &str, resources: &str) -> Policy {
        p(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":{resources}}}]}}"#
        ))
    }

    #[test]
    fn allowed_actions_expands_and_subtracts_denies() {
        let policy = p(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}},
            {"Effect":"Deny","Action":"s3:GetObjectAcl","Resource":"*"},
            {"Effect":"Deny","Action":"s3:GetObjectTagging","Resource":"arn:aws:s3:::b/secret/*"}]}"#);
        let allowed = allowed_actions(&[policy]);
        let get = allowed.iter().find(|a| a.action == "s3:GetObject").unwrap();
        assert_eq!(get.resources, vec!["arn:aws:s3:::b/*"]);
        assert_eq!(get.access_level, AccessLevel::Read);
        assert!(!get.conditional);
        assert!(!allowed.iter().any(|a| a.action == "s3:GetObjectAcl"));
        assert!(
            allowed
                .iter()
                .find(|a| a.action == "s3:GetObjectTagging")
                .unwrap()
                .conditional
        );
        assert!(
            allowed
                .iter()
                .find(|a| a.action == "sqs:SendMessage")
                .unwrap()
                .conditional
        );
        assert!(!allowed.iter().any(|a| a.action == "s3:PutObject"));
        let mut sorted = allowed.clone();
        sorted.sort_by(|a, b| a.action.cmp(&b.action));
        assert_eq!(sorted, allowed);
    }

    #[test]
    fn not_action_expands_over_the_catalog() {
        let power_user = p(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"}]}"#,
        );
        let allowed = allowed_actions(&[power_user]);
        assert!(allowed.iter().any(|a| a.action == "s3:GetObject"));
        assert!(!allowed.iter().any(|a| a.action.starts_with("iam:")));
        assert!(allowed.len() > 20_000);
    }

    #[test]
    fn allowed_is_remembered_and_equals_allowed_actions() {
        let admin = p(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        );
        let first = allowed(std::slice::from_ref(&admin));
        assert_eq!(first.actions, allowed_actions(std::slice::from_ref(&admin)));
        assert_eq!(first.names.len(), first.actions.len());
        // The same documents, written another way: the same answer, computed once.
        let again = p(
            r#"{"Statement":[{"Resource":["*"],"Action":["*"],"Effect":"Allow"}],"Version":"2012-10-17"}"#,
        );
        assert!(std::sync::Arc::ptr_eq(&first, &allowed(&[again])));
        let other = allowed(&[allow(r#"["s3:GetObject"]"#, r#""*""#)]);
        assert_eq!(other.names.iter().collect::<Vec<_>>(), ["s3:GetObject"]);
    }

    #[test]
    fn narrower_candidate_is_proven() {
        let current = [allow(r#"["s3:*","sqs:*"]"#, r#""*""#)];
        let candidate = [allow(
            r#"["s3:GetObject","s3:PutObject"]"#,
            r#"["arn:aws:s3:::b/*"]"#,
        )];
        assert_eq!(grants_no_new_access(&candidate, &current), Proof::Proven);
        // Patterns are compared as patterns: s3:Get* is within s3:*.
        let candidate = [allow(r#""s3:Get*""#, r#""arn:aws:s3:::b/k?""#)];
        assert!(grants_no_new_access(&candidate, &current).is_proven());
    }

    #[test]
    fn wider_candidate_is_not_proven() {
        let current = [allow(r#""s3:GetObject""#, r#""arn:aws:s3:::b/*""#)];
        for candidate in [
            allow(r#""s3:PutObject""#, r#""arn:aws:s3:::b/*""#),
            allow(r#""s3:GetObject""#, r#""arn:aws:s3:::c/*""#),
            allow(r#""s3:GetObject""#, r#""*""#),
            allow(r#""s3:Get*""#, r#""arn:aws:s3:::b/*""#),
        ] {
            let proof = grants_no_new_access(std::slice::from_ref(&candidate), &current);
            assert!(!proof.is_proven(), "{candidate:?}");
        }
    }

    #[test]
    fn undecidable_forms_cannot_be_proven() {
        let current = [allow(r#""*""#, r#""*""#)];
        let not_action = p(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#,
        );
        let Proof::CannotProve(reasons) = grants_no_new_access(&[not_action], &current) else {
            panic!("NotAction must not be proven");
        };
        assert!(reasons[0].contains("NotAction"));
        let not_resource = p(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::x/*"}]}"#,
        );
        assert!(!grants_no_new_access(&[not_resource], &current).is_proven());
    }

    #[test]
    fn conditions_in_current_must_be_carried_by_the_candidate() {
        let current = [p(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*",
            "Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}]}"#,
        )];
        let plain = allow(r#""s3:GetObject""#, r#""*""#);
        assert!(!grants_no_new_access(&[plain], &current).is_proven());
        let same_condition = p(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"},"Bool":{"aws:SecureTransport":"true"}}}]}"#,
        );
        assert!(grants_no_new_access(&[same_condition], &current).is_proven());
    }

    #[test]
    fn dropping_a_current_deny_is_new_access() {
        let current = [p(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::prod/*"}]}"#)];
        let candidate = allow(r#""s3:DeleteObject""#, r#""arn:aws:s3:::*""#);
        let proof = grants_no_new_access(&[candidate], &current);
        let Proof::CannotProve(reasons) = proof else {
            panic!("a dropped deny must not be proven")
        };
        assert!(reasons[0].contains("denied"), "{reasons:?}");
        let keeps_deny = p(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::*"},
            {"Effect":"Deny","Action":"s3:deleteobject","Resource":["arn:aws:s3:::prod/*"]}]}"#);
        assert!(grants_no_new_access(&[keeps_deny], &current).is_proven());
        // A deny elsewhere does not matter.
        let unrelated = allow(r#""s3:GetObject""#, r#""arn:aws:s3:::prod/*""#);
        assert!(grants_no_new_access(&[unrelated], &current).is_proven());
    }

    #[test]
    fn a_kept_statement_is_proven_whatever_its_form_while_the_denies_stand() {
        let power_user =
            r#"{"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"}"#;
        let fence = r#"{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}"#;
        let current = [p(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{power_user},{fence}]}}"#
        ))];
        // The same statements, spelt otherwise and split across documents.
        let kept = [
            p(
                r#"{"Version":"2012-10-17","Statement":[{"Resource":["*"],"NotAction":["organizations:*","iam:*"],"Effect":"Allow"}]}"#,
            ),
            p(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{fence}]}}"#
            )),
        ];
        assert!(grants_no_new_access(&kept, &current).is_proven());
        let unfenced = p(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{power_user}]}}"#
        ));
        let Proof::CannotProve(reasons) = grants_no_new_access(&[unfenced], &current) else {
            panic!("a kept NotAction statement without its Deny must not be proven");
        };
        assert!(reasons[0].contains("not kept"), "{reasons:?}");
        // An Action-form twin is checked per action: a Deny elsewhere does not matter.
        let current = [p(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
            {"Effect":"Deny","Action":"sqs:*","Resource":"*"}]}"#,
        )];
        let kept = allow(r#""s3:GetObject""#, r#""*""#);
        assert!(grants_no_new_access(&[kept], &current).is_proven());
    }

    #[test]
    fn variables_cover_only_identical_patterns() {
        let current = [allow(
            r#""s3:GetObject""#,
            r#""arn:aws:s3:::home/${aws:username}/*""#,
        )];
        let same = allow(
            r#""s3:GetObject""#,
            r#""arn:aws:s3:::home/${aws:username}/*""#,
        );
        assert!(grants_no_new_access(&[same], &current).is_proven());
        let literal = allow(r#""s3:GetObject""#, r#""arn:aws:s3:::home/alice/*""#);
        assert!(!grants_no_new_access(&[literal], &current).is_proven());
    }

    /// `${*}` names a literal star: inside any wildcard that matches it, never wider than it.
    #[test]
    fn escaped_characters_are_the_text_they_stand_for() {
        let get = |resource: &str| allow(r#""s3:GetObject""#, &format!("\"{resource}\""));
        let key = "arn:aws:s3:::data/reports/a${*}";
        for (candidate, current, proven) in [
            (key, "arn:aws:s3:::data/*", true),
            (key, key, true),
            (key, "arn:aws:s3:::data/reports/a${?}", false),
            ("arn:aws:s3:::data/reports/ab", key, false),
            ("arn:aws:s3:::data/reports/a*", key, false),
            (
                "arn:aws:s3:::data/${$}{aws:username}",
                "arn:aws:s3:::data/*",
                true,
            ),
            (
                "arn:aws:s3:::data/${aws:username}",
                "arn:aws:s3:::data/${$}{aws:username}",
                false,
            ),
        ] {
            assert_eq!(
                grants_no_new_access(&[get(candidate)], &[get(current)]).is_proven(),
                proven,
                "{candidate} within {current}"
            );
        }
    }
}
