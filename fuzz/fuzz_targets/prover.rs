//! The never-widen prover against the evaluator. Input: a candidate policy, `\n---\n`, the
//! current policy, and optionally `\n---\n` and `key=value` context lines. When the prover says
//! the candidate grants nothing new, no request built from either policy's patterns may be
//! allowed by the candidate and not by the current policy, with or without the context.
#![no_main]

use iam_tailor::policy::analysis::{Proof, grants_no_new_access};
use iam_tailor::policy::eval::{Decision, PolicySet, Request};
use iam_tailor::policy::{ActionBlock, Context, Policy, ResourceBlock};
use libfuzzer_sys::fuzz_target;

/// A concrete name a pattern matches: each `*` and `?` filled.
fn concrete(pattern: &str, fill: &str) -> String {
    pattern.replace('*', fill).replace('?', "q")
}

fn requests(policies: &[&Policy]) -> Vec<(String, String)> {
    let mut actions = vec!["s3:GetObject".to_string(), "iam:PassRole".to_string()];
    let mut resources = vec!["*".to_string(), "arn:aws:s3:::bucket/key".to_string()];
    for statement in policies.iter().flat_map(|p| &p.statements) {
        if let Some(ActionBlock::Action(list) | ActionBlock::NotAction(list)) = &statement.action {
            for a in list.iter().take(8) {
                actions.push(concrete(a, "x"));
                actions.push(concrete(a, ""));
            }
        }
        if let Some(ResourceBlock::Resource(list) | ResourceBlock::NotResource(list)) =
            &statement.resource
        {
            for r in list.iter().take(8) {
                resources.push(concrete(r, "x"));
                resources.push(concrete(r, ""));
            }
        }
    }
    actions.sort();
    actions.dedup();
    resources.sort();
    resources.dedup();
    actions.truncate(24);
    resources.truncate(24);
    let mut out = Vec::new();
    for a in &actions {
        for r in &resources {
            out.push((a.clone(), r.clone()));
        }
    }
    out
}

fn allowed(set: &PolicySet, action: &str, resource: &str, context: &Context) -> bool {
    let request = Request {
        action,
        resource,
        principal: None,
        context,
    };
    set.evaluate(&request).decision == Decision::Allowed
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, "\n---\n");
    let (Some(candidate), Some(current)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(candidate), Ok(current)) = (Policy::parse(candidate), Policy::parse(current)) else {
        return;
    };
    if candidate.statements.len() + current.statements.len() > 16 {
        return;
    }
    let proof = grants_no_new_access(
        std::slice::from_ref(&candidate),
        std::slice::from_ref(&current),
    );
    if !matches!(proof, Proof::Proven) {
        return;
    }
    let mut context = Context::new();
    for line in parts.next().unwrap_or("").lines().take(8) {
        if let Some((key, value)) = line.split_once('=') {
            context.insert(key, value);
        }
    }
    let empty = Context::new();
    let candidate_set = PolicySet::builder().identity(candidate.clone()).build();
    let current_set = PolicySet::builder().identity(current.clone()).build();
    for (action, resource) in requests(&[&candidate, &current]) {
        for context in [&empty, &context] {
            if allowed(&candidate_set, &action, &resource, context) {
                assert!(
                    allowed(&current_set, &action, &resource, context),
                    "proven narrower, yet {action} on {resource} is allowed only by the candidate"
                );
            }
        }
    }
});
