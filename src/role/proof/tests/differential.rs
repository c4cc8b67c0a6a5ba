//! Differential test of the state-by-state proof: random roles and plans, the prover's verdict
//! against the evaluator's decisions on sampled requests.
//!
//! The prover is sound rather than complete, so it may refuse a harmless plan; what it must
//! never do is prove a plan after which some request is allowed that the role did not allow
//! before. The oracle here replays the plan on its own model of IAM (every managed policy in
//! the account has a document, known to the plan or not) and asks the evaluator, in every
//! state, about every (action, resource, context) of small pools that the random documents
//! overlap on. A fixed-seed PRNG keeps failures reproducible: the message names the seed and
//! the case, and `differential(&Pools::EVERYTHING, seed, 1)` replays it.

use crate::policy::eval::{Decision, Evaluation, PolicySet, Request};
use crate::policy::{Context, Policy};
use crate::role::proof::prove_each_state;
use crate::role::{AttachedPolicy, LiveRole, Operation};
use crate::wildcard::{subsumes, subsumes_ignore_case};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const QUEUE: &str = "arn:aws:sqs:us-east-1:111122223333:q";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:111122223333:table/t";

/// Action patterns of the random statements: small, so that statements overlap often.
const ACTION_PATTERNS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "s3:Get*",
    "s3:*",
    "sqs:SendMessage",
    "sqs:*",
    "dynamodb:GetItem",
    "*",
    // Actions are case-insensitive: the prover must know it too.
    "s3:getobject",
];

/// Resource patterns; the last ones hold a policy variable or IAM's escapes (a literal `*`
/// or `?`, as the generator writes a trail's values; plain text in 2008-10-17 documents).
const ALL_RESOURCE_PATTERNS: &[&str] = &[
    "arn:aws:s3:::a/*",
    "arn:aws:s3:::a/x",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::a",
    QUEUE,
    TABLE,
    "*",
    // Substituted only in 2012-10-17 documents.
    "arn:aws:s3:::a/${aws:username}",
    "arn:aws:s3:::a/${*}",
    "arn:aws:s3:::a/x${?}",
];
const RESOURCE_PATTERNS: &[&str] = ALL_RESOURCE_PATTERNS.split_at(7).0;

/// A condition on `aws:SourceVpc`: operator and values.
type Cond = (&'static str, &'static [&'static str]);

/// Conditions of the random statements. The first ones' values are ORed, so that fewer values
/// make a narrower condition; the last ones negate (values NORed: fewer values, *wider*).
const ALL_CONDITIONS: &[Cond] = &[
    ("StringEquals", &["vpc-1"]),
    ("StringEquals", &["vpc-1"]),
    ("StringEquals", &["vpc-1", "vpc-2"]),
    ("StringEqualsIfExists", &["vpc-1"]),
    ("StringEqualsIfExists", &["vpc-1", "vpc-2"]),
    ("StringNotEquals", &["vpc-2"]),
    ("StringNotEquals", &["vpc-1", "vpc-2"]),
];
const CONDITIONS: &[Cond] = ALL_CONDITIONS.split_at(5).0;

/// The sampled requests: concrete actions and resources the patterns above cover or miss.
const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "s3:GetObjectAcl",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "dynamodb:GetItem",
    "iam:PassRole",
];

const RESOURCES: &[&str] = &[
    "arn:aws:s3:::a/x",
    "arn:aws:s3:::a/y",
    // Objects whose keys are the characters themselves.
    "arn:aws:s3:::a/*",
    "arn:aws:s3:::a/x?",
    "arn:aws:s3:::b/z",
    "arn:aws:s3:::a",
    QUEUE,
    TABLE,
    "arn:aws:iam::111122223333:role/r",
];

/// The request contexts, as (key, value) pairs.
const CONTEXTS: &[&[(&str, &str)]] = &[
    &[],
    &[("aws:SourceVpc", "vpc-1")],
    &[("aws:SourceVpc", "vpc-2")],
    &[("aws:SourceVpc", "vpc-1"), ("aws:username", "x")],
];

const INLINE_NAMES: &[&str] = &["i1", "i2", "i3", "i4"];
const MANAGED: &[&str] = &[
    "arn:aws:iam::111122223333:policy/p1",
    "arn:aws:iam::111122223333:policy/p2",
    "arn:aws:iam::111122223333:policy/p3",
    "arn:aws:iam::111122223333:policy/p4",
    "arn:aws:iam::111122223333:policy/p5",
];
const BOUNDARIES: &[&str] = &[
    "arn:aws:iam::111122223333:policy/b1",
    "arn:aws:iam::111122223333:policy/b2",
];

/// splitmix64: deterministic, no dependency, good enough to spread the cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A statement of a random document, kept structured so the generator can narrow it.
#[derive(Clone, Debug)]
struct Stmt {
    deny: bool,
    not_action: bool,
    actions: Vec<&'static str>,
    not_resource: bool,
    resources: Vec<&'static str>,
    condition: Option<Cond>,
}

#[derive(Clone, Debug)]
struct Doc {
    /// 2012-10-17 (variables substituted) or no Version at all.
    versioned: bool,
    statements: Vec<Stmt>,
}

impl Doc {
    fn json(&self) -> String {
        let list = |items: &[&str]| {
            let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
            format!("[{}]", quoted.join(","))
        };
        let statements: Vec<String> = (self.statements.iter())
            .map(|s| {
                let mut out = format!(
                    r#"{{"Effect":"{}","{}":{},"{}":{}"#,
                    if s.deny { "Deny" } else { "Allow" },
                    if s.not_action { "NotAction" } else { "Action" },
                    list(&s.actions),
                    if s.not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    },
                    list(&s.resources),
                );
                if let Some((operator, values)) = s.condition {
                    let values = match values {
                        [one] => format!("\"{one}\""),
                        many => list(many),
                    };
                    let condition = format!(r#"{{"{operator}":{{"aws:SourceVpc":{values}}}}}"#);
                    write!(out, r#","Condition":{condition}"#).unwrap();
                }
                out.push('}');
                out
            })
            .collect();
        let version = if self.versioned {
            r#""Version":"2012-10-17","#
        } else {
            ""
        };
        format!(r#"{{{version}"Statement":[{}]}}"#, statements.join(","))
    }

    fn policy(&self) -> Policy {
        Policy::parse(&self.json()).unwrap_or_else(|e| panic!("{}: {e:?}", self.json()))
    }
}

/// What the generator draws from. Each flag walks into a hole this test found in the prover
/// (kept as the `found_*` regression tests); the main run turns them all on.
#[derive(Clone, Copy)]
struct Pools {
    /// Resource patterns with `${aws:username}` too.
    variables: bool,
    /// StringNotEquals conditions too.
    negated_conditions: bool,
    /// A rewritten document may gain or lose its Version, which changes what `${…}` means.
    version_flips: bool,
    /// PutManagedPolicy may target the boundary policies.
    put_boundaries: bool,
}

impl Pools {
    const EVERYTHING: Pools = Pools {
        variables: true,
        negated_conditions: true,
        version_flips: true,
        put_boundaries: true,
    };

    fn resources(&self) -> &'static [&'static str] {
        if self.variables {
            ALL_RESOURCE_PATTERNS
        } else {
            RESOURCE_PATTERNS
        }
    }

    fn conditions(&self) -> &'static [Cond] {
        if self.negated_conditions {
            ALL_CONDITIONS
        } else {
            CONDITIONS
        }
    }

    fn patterns(&self, rng: &mut Rng, pool: &[&'static str]) -> Vec<&'static str> {
        let first = rng.pick(pool);
        let mut out = vec![first];
        if rng.chance(25) {
            let second = rng.pick(pool);
            if second != first {
                out.push(second);
            }
        }
        out
    }

    fn statement(&self, rng: &mut Rng) -> Stmt {
        Stmt {
            deny: rng.chance(25),
            not_action: rng.chance(12),
            actions: self.patterns(rng, ACTION_PATTERNS),
            not_resource: rng.chance(12),
            resources: self.patterns(rng, self.resources()),
            condition: rng.chance(20).then(|| rng.pick(self.conditions())),
        }
    }

    fn doc(&self, rng: &mut Rng) -> Doc {
        Doc {
            versioned: !rng.chance(10),
            statements: (0..1 + rng.below(3)).map(|_| self.statement(rng)).collect(),
        }
    }

    /// A boundary: random, but often broad, so that it does not hide every request.
    fn boundary(&self, rng: &mut Rng) -> Doc {
        let mut doc = self.doc(rng);
        if rng.chance(50) {
            doc.statements.insert(
                0,
                Stmt {
                    deny: false,
                    not_action: false,
                    actions: vec!["*"],
                    not_resource: false,
                    resources: vec!["*"],
                    condition: None,
                },
            );
        }
        doc
    }
}

/// A narrowed copy, as a shrinking plan would write it: every Deny kept, some Allows dropped,
/// the others' patterns replaced by patterns they cover, sometimes a condition added.
fn shrink(rng: &mut Rng, pools: &Pools, doc: &Doc) -> Doc {
    let narrower = |rng: &mut Rng, pattern: &'static str, pool: &[&'static str], actions: bool| {
        let inside: Vec<&'static str> = (pool.iter().copied())
            .filter(|p| {
                if actions {
                    subsumes_ignore_case(pattern, p)
                } else {
                    subsumes(pattern, p)
                }
            })
            .collect();
        if inside.is_empty() || rng.chance(40) {
            pattern
        } else {
            rng.pick(&inside)
        }
    };
    let mut statements = Vec::new();
    for s in &doc.statements {
        if s.deny {
            statements.push(s.clone());
            continue;
        }
        if rng.chance(30) {
            continue;
        }
        let mut s = s.clone();
        if !s.not_action {
            for a in &mut s.actions {
                *a = narrower(rng, a, ACTION_PATTERNS, true);
            }
        }
        if !s.not_resource {
            for r in &mut s.resources {
                *r = narrower(rng, r, pools.resources(), false);
            }
        }
        match s.condition {
            None if rng.chance(10) => s.condition = Some(rng.pick(pools.conditions())),
            // The same operator with some of the values: narrower, unless the operator negates.
            Some((operator, values)) if rng.chance(30) => {
                let fewer: Vec<Cond> = (pools.conditions().iter().copied())
                    .filter(|(o, v)| *o == operator && v.iter().all(|x| values.contains(x)))
                    .collect();
                s.condition = Some(rng.pick(&fewer));
            }
            _ => {}
        }
        statements.push(s);
    }
    if statements.is_empty() {
        statements.push(doc.statements[0].clone());
    }
    Doc {
        versioned: doc.versioned != (pools.version_flips && rng.chance(5)),
        statements,
    }
}

/// One random case: the role, every managed policy in the account (attached or not, boundaries
/// included: what IAM holds, known to the plan or not), and the plan.
struct Case {
    before: LiveRole,
    managed: BTreeMap<String, Policy>,
    ops: Vec<Operation>,
}

impl Case {
    fn generate(seed: u64, pools: &Pools) -> Case {
        let mut rng = Rng(seed);
        let mut inline: BTreeMap<String, Doc> = BTreeMap::new();
        for _ in 0..rng.below(4) {
            inline.insert(rng.pick(INLINE_NAMES).to_string(), pools.doc(&mut rng));
        }
        let mut managed: BTreeMap<String, Doc> = BTreeMap::new();
        for arn in MANAGED {
            managed.insert(arn.to_string(), pools.doc(&mut rng));
        }
        for arn in BOUNDARIES {
            managed.insert(arn.to_string(), pools.boundary(&mut rng));
        }
        let mut attached: Vec<String> = Vec::new();
        let mut ours = Vec::new();
        for _ in 0..rng.below(4) {
            let arn = rng.pick(MANAGED).to_string();
            if !attached.contains(&arn) {
                ours.push(rng.chance(40));
                attached.push(arn);
            }
        }
        let mut boundary = rng.chance(35).then(|| rng.pick(BOUNDARIES).to_string());
        let before_managed = managed.clone();
        let before_inline: BTreeMap<String, Policy> = (inline.iter())
            .map(|(name, doc)| (name.clone(), doc.policy()))
            .collect();
        let before_attached: Vec<(String, bool)> = attached.iter().cloned().zip(ours).collect();
        let before_boundary = boundary.clone();

        // Narrowing plans (detach, delete, put shrunk copies) get a fair share proven; random
        // ones probe everything else.
        let narrowing = rng.chance(60);
        let len = 1 + rng.below(6);
        let mut ops = Vec::new();
        while ops.len() < len {
            // Each op with the structured form of the document it writes, if any.
            let mut new: Vec<(Operation, Option<Doc>)> = Vec::new();
            let put = |arn: &str, doc: Doc| {
                let op = Operation::PutManagedPolicy {
                    name: arn.rsplit('/').next().unwrap().to_string(),
                    arn: arn.to_string(),
                    document: doc.json(),
                };
                (op, Some(doc))
            };
            let put_inline = |name: &str, doc: Doc| {
                let op = Operation::PutInlinePolicy {
                    name: name.to_string(),
                    document: doc.json(),
                };
                (op, Some(doc))
            };
            if narrowing {
                let roll = rng.below(100);
                let unattached: Vec<&str> = (MANAGED.iter().copied())
                    .filter(|arn| !attached.iter().any(|a| a == arn))
                    .collect();
                if roll < 25 && !attached.is_empty() {
                    let arn = attached[rng.below(attached.len())].clone();
                    new.push((Operation::DetachPolicy { arn }, None));
                } else if roll < 40 && !inline.is_empty() {
                    let name = inline.keys().nth(rng.below(inline.len())).unwrap();
                    let op = Operation::DeleteInlinePolicy { name: name.clone() };
                    new.push((op, None));
                } else if roll < 55 && !inline.is_empty() {
                    let name = inline.keys().nth(rng.below(inline.len())).unwrap();
                    new.push(put_inline(name, shrink(&mut rng, pools, &inline[name])));
                } else if roll < 65 && !attached.is_empty() {
                    let arn = &attached[rng.below(attached.len())];
                    new.push(put(arn, shrink(&mut rng, pools, &managed[arn])));
                } else if roll < 85 && !unattached.is_empty() {
                    // iam-tailor's own policy: what the role holds, shrunk, in one document.
                    let union = Doc {
                        // Deny statements of unversioned documents only get stronger here.
                        versioned: !(pools.version_flips && rng.chance(15)),
                        statements: (inline.values())
                            .chain(attached.iter().map(|arn| &managed[arn]))
                            .flat_map(|d| d.statements.iter().cloned())
                            .collect(),
                    };
                    if !union.statements.is_empty() {
                        let arn = rng.pick(&unattached);
                        new.push(put(arn, shrink(&mut rng, pools, &union)));
                        let op = Operation::AttachPolicy {
                            arn: arn.to_string(),
                        };
                        new.push((op, None));
                    }
                } else if roll < 95 && boundary.is_none() {
                    let arn = rng.pick(BOUNDARIES).to_string();
                    new.push((Operation::SetPermissionsBoundary { arn }, None));
                }
            }
            if new.is_empty() {
                new.push(match rng.below(7) {
                    0 if pools.put_boundaries && rng.chance(30) => {
                        put(rng.pick(BOUNDARIES), pools.doc(&mut rng))
                    }
                    0 => put(rng.pick(MANAGED), pools.doc(&mut rng)),
                    1 => {
                        let arn = rng.pick(MANAGED).to_string();
                        (Operation::AttachPolicy { arn }, None)
                    }
                    2 => {
                        let arn = rng.pick(MANAGED).to_string();
                        (Operation::DetachPolicy { arn }, None)
                    }
                    3 => put_inline(rng.pick(INLINE_NAMES), pools.doc(&mut rng)),
                    4 => {
                        let name = rng.pick(INLINE_NAMES).to_string();
                        (Operation::DeleteInlinePolicy { name }, None)
                    }
                    5 => {
                        let arn = rng.pick(BOUNDARIES).to_string();
                        (Operation::SetPermissionsBoundary { arn }, None)
                    }
                    _ => (Operation::DeletePermissionsBoundary, None),
                });
            }
            // Keep the generator's view of the role in step, for the next narrowing op.
            for (op, doc) in new {
                match &op {
                    Operation::PutManagedPolicy { arn, .. } => {
                        managed.insert(arn.clone(), doc.expect("a put has its document"));
                    }
                    Operation::AttachPolicy { arn } if !attached.contains(arn) => {
                        attached.push(arn.clone());
                    }
                    Operation::DetachPolicy { arn } => attached.retain(|a| a != arn),
                    Operation::PutInlinePolicy { name, .. } => {
                        inline.insert(name.clone(), doc.expect("a put has its document"));
                    }
                    Operation::DeleteInlinePolicy { name } => {
                        inline.remove(name);
                    }
                    Operation::SetPermissionsBoundary { arn } => boundary = Some(arn.clone()),
                    Operation::DeletePermissionsBoundary => boundary = None,
                    _ => {}
                }
                ops.push(op);
            }
        }
        ops.truncate(len);
        // Parsed once, and only the documents the role or the plan can reach: parsing is most
        // of the generator's time in a debug build.
        let reached = |arn: &String| {
            before_boundary.as_ref() == Some(arn)
                || before_attached.iter().any(|(a, _)| a == arn)
                || ops.iter().any(|op| brought_in(op) == Some(arn))
        };
        let managed: BTreeMap<String, Policy> = (before_managed.iter())
            .filter(|(arn, _)| reached(arn))
            .map(|(arn, doc)| (arn.clone(), doc.policy()))
            .collect();
        let before = LiveRole {
            names: Default::default(),
            name: "r".to_string(),
            arn: "arn:aws:iam::111122223333:role/r".to_string(),
            role_id: "AROAR".to_string(),
            tags: Default::default(),
            trust_policy: None,
            boundary_policy: None,
            inline: before_inline,
            attached: (before_attached.into_iter())
                .map(|(arn, ours)| AttachedPolicy {
                    name: arn.rsplit('/').next().unwrap().to_string(),
                    document: managed[&arn].clone(),
                    arn,
                    managed_by_iam_tailor: ours,
                })
                .collect(),
            permissions_boundary: before_boundary,
        };
        Case {
            before,
            managed,
            ops,
        }
    }

    /// The case in words, to reproduce a failure by hand.
    fn describe(&self) -> String {
        let mut out = String::new();
        let b = &self.before;
        for (name, doc) in &b.inline {
            writeln!(out, "  inline {name}: {}", doc.canonical_json()).unwrap();
        }
        for a in &b.attached {
            let whose = if a.managed_by_iam_tailor {
                "ours"
            } else {
                "theirs"
            };
            writeln!(
                out,
                "  attached {} ({whose}): {}",
                a.arn,
                a.document.canonical_json()
            )
            .unwrap();
        }
        if let Some(arn) = &b.permissions_boundary {
            writeln!(
                out,
                "  boundary {arn}: {}",
                self.managed[arn].canonical_json()
            )
            .unwrap();
        }
        for (arn, doc) in &self.managed {
            let shown = b.attached.iter().any(|a| &a.arn == arn)
                || b.permissions_boundary.as_ref() == Some(arn);
            if self.ops.iter().any(|op| brought_in(op) == Some(arn)) && !shown {
                writeln!(
                    out,
                    "  in the account, not attached: {arn}: {}",
                    doc.canonical_json()
                )
                .unwrap();
            }
        }
        for (i, op) in self.ops.iter().enumerate() {
            let doc = match op {
                Operation::PutManagedPolicy { document, .. }
                | Operation::PutInlinePolicy { document, .. } => format!(": {document}"),
                _ => String::new(),
            };
            writeln!(out, "  op {}: {}{doc}", i + 1, op.describe()).unwrap();
        }
        out
    }
}

/// The managed policy `op` makes part of the role, as an attached policy or as its boundary.
fn brought_in(op: &Operation) -> Option<&String> {
    match op {
        Operation::AttachPolicy { arn } | Operation::SetPermissionsBoundary { arn } => Some(arn),
        _ => None,
    }
}

/// The sampled requests, in a fixed order: every action on every resource in every context.
struct Requests {
    contexts: Vec<Context>,
}

impl Requests {
    fn new() -> Requests {
        let contexts = (CONTEXTS.iter())
            .map(|pairs| {
                let mut ctx = Context::new();
                for (key, value) in pairs.iter() {
                    ctx.insert(key, *value);
                }
                ctx
            })
            .collect();
        Requests { contexts }
    }

    fn len(&self) -> usize {
        ACTIONS.len() * RESOURCES.len() * CONTEXTS.len()
    }

    /// Request `i`: (action, resource, context index).
    fn get(&self, i: usize) -> (&'static str, &'static str, usize) {
        let (a, rest) = (i % ACTIONS.len(), i / ACTIONS.len());
        (
            ACTIONS[a],
            RESOURCES[rest % RESOURCES.len()],
            rest / RESOURCES.len(),
        )
    }

    fn describe(&self, i: usize) -> String {
        let (action, resource, c) = self.get(i);
        format!("{action} on {resource} with context {:?}", CONTEXTS[c])
    }
}

/// The oracle's model of IAM, independent of the prover's: the role's documents and every
/// managed policy of the account by ARN, whether the plan knows its document or not.
struct Model {
    inline: BTreeMap<String, Policy>,
    attached: Vec<String>,
    boundary: Option<String>,
    managed: BTreeMap<String, Policy>,
}

impl Model {
    fn of(case: &Case) -> Model {
        Model {
            inline: case.before.inline.clone(),
            attached: case.before.attached.iter().map(|a| a.arn.clone()).collect(),
            boundary: case.before.permissions_boundary.clone(),
            managed: case.managed.clone(),
        }
    }

    /// IAM's effect of `op`.
    fn apply(&mut self, op: &Operation) {
        let parse =
            |document: &str| Policy::parse(document).expect("the generator writes valid JSON");
        match op {
            Operation::PutManagedPolicy { arn, document, .. } => {
                self.managed.insert(arn.clone(), parse(document));
            }
            Operation::AttachPolicy { arn } => {
                if !self.attached.contains(arn) {
                    self.attached.push(arn.clone());
                }
            }
            Operation::DetachPolicy { arn } => self.attached.retain(|a| a != arn),
            Operation::PutInlinePolicy { name, document } => {
                self.inline.insert(name.clone(), parse(document));
            }
            Operation::DeleteInlinePolicy { name } => {
                self.inline.remove(name);
            }
            Operation::SetPermissionsBoundary { arn } => self.boundary = Some(arn.clone()),
            Operation::DeletePermissionsBoundary => self.boundary = None,
            Operation::BackupRole { .. }
            | Operation::ForgetBackup { .. }
            | Operation::DeleteManagedPolicy { .. }
            | Operation::RestorePolicyVersion { .. }
            | Operation::ClaimRole { .. }
            | Operation::ReleaseRole => unreachable!("not generated"),
        }
    }

    /// The role's policies as the evaluator takes them.
    fn policy_set(&self) -> PolicySet {
        let mut builder = PolicySet::builder();
        for doc in self.inline.values() {
            builder = builder.identity(doc.clone());
        }
        for arn in &self.attached {
            builder = builder.identity(self.managed[arn].clone());
        }
        if let Some(arn) = &self.boundary {
            builder = builder.boundary(self.managed[arn].clone());
        }
        builder.build()
    }
}

/// The first state of the plan in which a sampled request is allowed that `before` did not
/// allow: (1-based step, request index, decision before).
fn first_widening(case: &Case, requests: &Requests) -> Option<(usize, usize, Decision)> {
    let mut evaluation = Evaluation::default();
    let mut decide = |set: &PolicySet, i: usize| {
        let (action, resource, c) = requests.get(i);
        let request = Request {
            action,
            resource,
            principal: None,
            context: &requests.contexts[c],
        };
        set.evaluate_into(&request, &mut evaluation);
        evaluation.decision
    };
    let mut model = Model::of(case);
    let set = model.policy_set();
    // Only what `before` did not allow can widen.
    let denied: Vec<(usize, Decision)> = (0..requests.len())
        .map(|i| (i, decide(&set, i)))
        .filter(|(_, d)| *d != Decision::Allowed)
        .collect();
    for (step, op) in case.ops.iter().enumerate() {
        model.apply(op);
        let set = model.policy_set();
        for &(i, was) in &denied {
            if decide(&set, i) == Decision::Allowed {
                return Some((step + 1, i, was));
            }
        }
    }
    None
}

/// How the cases of one run came out.
#[derive(Debug, Default)]
struct Tally {
    proven: usize,
    /// Of an eighth of the refused plans: those in which the evaluator sees a sampled request
    /// widen, and the others (harmless plans the prover could not prove, or widening beyond
    /// the sample).
    refused_widening: usize,
    refused: usize,
}

/// The oracle's objection to the prover's verdict on `case`: a proven plan after which a
/// sampled request is allowed that was not before. `Ok` tells whether the plan was proven.
fn check(case: &Case, requests: &Requests, label: &str) -> Result<bool, String> {
    if prove_each_state(&case.before, &case.ops).is_err() {
        return Ok(false);
    }
    match first_widening(case, requests) {
        None => Ok(true),
        Some((step, i, was)) => Err(format!(
            "{label}: prove_each_state proved the plan, but after step {step} ({}) {} is \
             Allowed; before it was {was}.\n{}",
            case.ops[step - 1].describe(),
            requests.describe(i),
            case.describe()
        )),
    }
}

/// Runs `cases` cases from `first_seed` on; the first unsound verdict is the error.
fn differential(pools: &Pools, first_seed: u64, cases: u64) -> Result<Tally, String> {
    let requests = Requests::new();
    let mut tally = Tally::default();
    for seed in first_seed..first_seed + cases {
        let case = Case::generate(seed, pools);
        if check(&case, &requests, &format!("seed {seed}"))? {
            tally.proven += 1;
        } else if seed % 8 == 0 {
            // The oracle on a sample of the refused plans, to show it is not blind.
            match first_widening(&case, &requests) {
                Some(_) => tally.refused_widening += 1,
                None => tally.refused += 1,
            }
        }
    }
    Ok(tally)
}

const FIRST_SEED: u64 = 0x1A4_7A11;
const CASES: u64 = 3000;

/// The issue's check: random roles and plans; a proven plan lets no sampled request through in
/// any state that `before` did not allow.
#[test]
fn a_proven_plan_never_lets_a_sampled_request_through_that_was_not_allowed_before() {
    let started = std::time::Instant::now();
    let tally =
        differential(&Pools::EVERYTHING, FIRST_SEED, CASES).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{CASES} cases in {:?}: {tally:?}", started.elapsed());
    // Not vacuous: a fair share is proven, and the oracle does see plans widen.
    assert!(tally.proven * 10 >= CASES as usize, "{tally:?}");
    assert!(tally.refused_widening * 80 >= CASES as usize, "{tally:?}");
}

/// A policy document from its statements, with or without `"Version":"2012-10-17"`.
fn doc(versioned: bool, statements: &str) -> Policy {
    let version = if versioned {
        r#""Version":"2012-10-17","#
    } else {
        ""
    };
    Policy::parse(&format!(r#"{{{version}"Statement":[{statements}]}}"#)).unwrap()
}

fn allow(action: &str, resource: &str) -> Policy {
    doc(
        true,
        &format!(r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#),
    )
}

const P1: &str = "arn:aws:iam::111122223333:policy/p1";
const P2: &str = "arn:aws:iam::111122223333:policy/p2";
const B1: &str = "arn:aws:iam::111122223333:policy/b1";
const B2: &str = "arn:aws:iam::111122223333:policy/b2";

/// A hand-written case: inline documents, attached (ARN, iam-tailor's, document), the boundary,
/// the other managed policies of the account, and the plan.
fn hand(
    inline: &[(&str, Policy)],
    attached: &[(&str, bool, Policy)],
    boundary: Option<(&str, Policy)>,
    account: &[(&str, Policy)],
    ops: Vec<Operation>,
) -> Case {
    let mut managed: BTreeMap<String, Policy> = (account.iter())
        .map(|(arn, d)| (arn.to_string(), d.clone()))
        .collect();
    managed.extend(
        attached
            .iter()
            .map(|(arn, _, d)| (arn.to_string(), d.clone())),
    );
    managed.extend(boundary.iter().map(|(arn, d)| (arn.to_string(), d.clone())));
    Case {
        before: LiveRole {
            names: Default::default(),
            name: "r".to_string(),
            arn: "arn:aws:iam::111122223333:role/r".to_string(),
            role_id: "AROAR".to_string(),
            tags: Default::default(),
            trust_policy: None,
            boundary_policy: None,
            inline: (inline.iter())
                .map(|(name, d)| (name.to_string(), d.clone()))
                .collect(),
            attached: (attached.iter())
                .map(|(arn, ours, d)| AttachedPolicy {
                    arn: arn.to_string(),
                    name: arn.rsplit('/').next().unwrap().to_string(),
                    document: d.clone(),
                    managed_by_iam_tailor: *ours,
                })
                .collect(),
            permissions_boundary: boundary.map(|(arn, _)| arn.to_string()),
        },
        managed,
        ops,
    }
}

fn put_managed(arn: &str, document: &Policy) -> Operation {
    Operation::PutManagedPolicy {
        name: arn.rsplit('/').next().unwrap().to_string(),
        arn: arn.to_string(),
        document: document.canonical_json(),
    }
}

fn put_inline(name: &str, document: &Policy) -> Operation {
    Operation::PutInlinePolicy {
        name: name.to_string(),
        document: document.canonical_json(),
    }
}

fn attach(arn: &str) -> Operation {
    Operation::AttachPolicy {
        arn: arn.to_string(),
    }
}

/// The converse, so that the oracle and the prover are not both blind: plans that plainly widen
/// the role are refused, and the evaluator sees each of them widen.
#[test]
fn plainly_widening_plans_are_refused_and_the_evaluator_sees_them_widen() {
    let fence = || {
        doc(
            true,
            r#"{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::a/*"}"#,
        )
    };
    let fenced = doc(
        true,
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::a/*"}"#,
    );
    let in_vpc = doc(
        true,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}"#,
    );
    let cases = [
        (
            "attach a new */* policy the plan put",
            hand(
                &[("i1", allow("s3:GetObject", "arn:aws:s3:::a/*"))],
                &[],
                None,
                &[],
                vec![put_managed(P1, &allow("*", "*")), attach(P1)],
            ),
        ),
        (
            "delete an inline Deny fencing a kept Allow",
            hand(
                &[("fence", fence())],
                &[(P1, false, allow("s3:*", "*"))],
                None,
                &[],
                vec![Operation::DeleteInlinePolicy {
                    name: "fence".to_string(),
                }],
            ),
        ),
        (
            "detach iam-tailor's policy holding the fence of a kept Allow",
            hand(
                &[("i1", allow("s3:*", "*"))],
                &[(P1, true, fence())],
                None,
                &[],
                vec![Operation::DetachPolicy {
                    arn: P1.to_string(),
                }],
            ),
        ),
        (
            "overwrite an inline policy without its Deny",
            hand(
                &[("i1", fenced)],
                &[],
                None,
                &[],
                vec![put_inline("i1", &allow("s3:*", "*"))],
            ),
        ),
        (
            "widen iam-tailor's attached policy in place",
            hand(
                &[],
                &[(P1, true, allow("s3:GetObject", "arn:aws:s3:::a/x"))],
                None,
                &[],
                vec![put_managed(P1, &allow("s3:*", "arn:aws:s3:::a/*"))],
            ),
        ),
        (
            "attach a policy whose document the plan does not know",
            hand(
                &[("i1", allow("s3:GetObject", "arn:aws:s3:::a/x"))],
                &[],
                None,
                &[(P2, allow("*", "*"))],
                vec![attach(P2)],
            ),
        ),
        (
            "lift a condition",
            hand(
                &[("i1", in_vpc)],
                &[],
                None,
                &[],
                vec![put_inline("i1", &allow("s3:GetObject", "*"))],
            ),
        ),
        (
            "remove the boundary",
            hand(
                &[("i1", allow("*", "*"))],
                &[],
                Some((B1, allow("s3:GetObject", "*"))),
                &[],
                vec![Operation::DeletePermissionsBoundary],
            ),
        ),
        (
            "replace the boundary with a wider one",
            hand(
                &[("i1", allow("*", "*"))],
                &[],
                Some((B1, allow("s3:GetObject", "*"))),
                &[(B2, allow("*", "*"))],
                vec![Operation::SetPermissionsBoundary {
                    arn: B2.to_string(),
                }],
            ),
        ),
        (
            "widen for one step, then narrow back",
            hand(
                &[("i1", allow("s3:GetObject", "arn:aws:s3:::a/x"))],
                &[],
                None,
                &[],
                vec![
                    put_inline("i1", &allow("*", "*")),
                    put_inline("i1", &allow("s3:GetObject", "arn:aws:s3:::a/x")),
                ],
            ),
        ),
    ];
    let requests = Requests::new();
    for (what, case) in &cases {
        let verdict = prove_each_state(&case.before, &case.ops);
        assert!(verdict.is_err(), "{what}: proven\n{}", case.describe());
        assert!(
            first_widening(case, &requests).is_some(),
            "{what}: the evaluator sees no sampled request widen\n{}",
            case.describe()
        );
    }
}

/// Found by this test: a negated operator's values (StringNotEquals) are NORed, so dropping a
/// value widens the condition; the prover once took them as ORed (`conditions_implied`).
#[test]
fn found_negated_condition_values_are_nored() {
    let not_in = |values: &str| {
        doc(
            true,
            &format!(
                r#"{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
                "Condition":{{"StringNotEquals":{{"aws:SourceVpc":{values}}}}}}}"#
            ),
        )
    };
    // s3:GetObject from vpc-1: ImplicitlyDenied before, Allowed after.
    let case = hand(
        &[("i1", not_in(r#"["vpc-1","vpc-2"]"#))],
        &[],
        None,
        &[],
        vec![put_inline("i1", &not_in(r#""vpc-2""#))],
    );
    check(&case, &Requests::new(), "minimal case").unwrap_or_else(|e| panic!("{e}"));
}

/// Found by this test: a Deny counts as kept only in a document of the same Version, since
/// without `"Version":"2012-10-17"` `${aws:username}` is a literal and the Deny no longer
/// matches what it did (`grants_no_new_access` once ignored the Version).
#[test]
fn found_a_deny_is_kept_only_under_its_own_version() {
    let statements = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::a/*"},
        {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::a/${aws:username}"}"#;
    // s3:GetObject on a/x as user x: ExplicitlyDenied before, Allowed after.
    let case = hand(
        &[("i1", doc(true, statements))],
        &[],
        None,
        &[],
        vec![put_inline("i1", &doc(false, statements))],
    );
    check(&case, &Requests::new(), "minimal case").unwrap_or_else(|e| panic!("{e}"));
}

/// Found by this test: the proof models the boundary by ARN only, so a put to the managed
/// policy that *is* the boundary went unchecked; `guard` now refuses it.
#[test]
fn found_a_put_to_the_boundary_policy_is_refused() {
    // Anything but s3:GetObject: ImplicitlyDenied (by the boundary) before, Allowed after.
    let case = hand(
        &[("i1", allow("*", "*"))],
        &[],
        Some((B1, allow("s3:GetObject", "*"))),
        &[],
        vec![put_managed(B1, &allow("*", "*"))],
    );
    check(&case, &Requests::new(), "minimal case").unwrap_or_else(|e| panic!("{e}"));
}

/// Found by this test: a candidate resource with a policy variable is no literal
/// (`a/${aws:username}` is `a/x` for user x), so dropping a Deny on `a/x` beside a kept Allow
/// on it widens; `deny_touches` once compared them as plain patterns.
#[test]
fn found_a_deny_on_what_a_variable_resolves_to() {
    let per_user = doc(
        true,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::a/${aws:username}"}"#,
    );
    let fence = doc(
        true,
        r#"{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::a/x"}"#,
    );
    // s3:GetObject on a/x as user x: ExplicitlyDenied before, Allowed after.
    let case = hand(
        &[("i1", per_user)],
        &[(P1, true, fence)],
        None,
        &[],
        vec![Operation::DetachPolicy {
            arn: P1.to_string(),
        }],
    );
    check(&case, &Requests::new(), "minimal case").unwrap_or_else(|e| panic!("{e}"));
}
