//! Grants needed only under a condition: a role passed to one service.

use super::*;
use crate::policy::{Context, Decision, Request};

const ROLE: &str = "arn:aws:iam::111122223333:role/orders-fn";
const OTHER: &str = "arn:aws:iam::111122223333:role/deployer";
const PASSED: &str = "iam:PassedToService";

fn passed(u: &mut Usage, role: &str, service: &str) {
    u.record_use_under("iam:PassRole", role, Some((PASSED, service)), T);
}

/// The statements that grant `action`, as (resources, conditions as `key=values`).
fn statements_of(g: &Generated, action: &str) -> Vec<(Vec<String>, Vec<String>)> {
    (g.policies.iter().flat_map(|p| &p.statements))
        .filter(
            |s| matches!(&s.action, Some(ActionBlock::Action(a)) if a.iter().any(|x| x == action)),
        )
        .map(|s| {
            let Some(ResourceBlock::Resource(resources)) = &s.resource else {
                panic!("resources listed");
            };
            let conditions = (s.conditions.iter())
                .map(|c| {
                    format!(
                        "{} {}={}",
                        c.operator.base.as_str(),
                        c.key,
                        c.values.join(",")
                    )
                })
                .collect();
            (resources.clone(), conditions)
        })
        .collect()
}

fn decision(g: &Generated, action: &str, resource: &str, service: Option<&str>) -> Decision {
    let set = (g.policies.iter().cloned())
        .fold(PolicySet::builder(), |b, p| b.identity(p))
        .build();
    let mut context = Context::new();
    if let Some(service) = service {
        context.insert(PASSED, service);
    }
    let request = Request {
        action,
        resource,
        principal: None,
        context: &context,
    };
    set.evaluate(&request).decision
}

/// The acceptance test: PassRole on exactly the passed role, only to the service it was
/// passed to; the role may not be passed to another service, nor another role at all.
#[test]
fn pass_role_is_granted_on_the_passed_role_to_its_service_only() {
    let mut u = usage(&[(
        "lambda:CreateFunction",
        "arn:aws:lambda:us-east-1:111122223333:function:orders",
    )]);
    passed(&mut u, ROLE, "lambda.amazonaws.com");
    let g = gen_default(&u);
    assert_eq!(
        statements_of(&g, "iam:PassRole"),
        [(
            vec![ROLE.to_string()],
            vec![format!("StringEquals {PASSED}=lambda.amazonaws.com")]
        )]
    );
    let (resources, conditions) = &statements_of(&g, "lambda:CreateFunction")[0];
    assert_eq!(resources.len(), 1);
    assert!(conditions.is_empty(), "{conditions:?}");
    let allowed = Decision::Allowed;
    assert_eq!(
        decision(&g, "iam:PassRole", ROLE, Some("lambda.amazonaws.com")),
        allowed
    );
    assert_ne!(
        decision(&g, "iam:PassRole", ROLE, Some("ec2.amazonaws.com")),
        allowed
    );
    assert_ne!(decision(&g, "iam:PassRole", ROLE, None), allowed);
    assert_ne!(
        decision(&g, "iam:PassRole", OTHER, Some("lambda.amazonaws.com")),
        allowed
    );
    // The self-check replays the use under its own condition: nothing would break.
    assert!(g.would_deny.is_empty(), "{:?}", g.would_deny);
}

/// A role passed to two services may go to either; a role also used without a condition (an
/// Access Analyzer draft, a kept grant) is granted without one; merges commute.
#[test]
fn uses_join_their_services_and_an_unconditional_use_wins() {
    let mut a = Usage::default();
    passed(&mut a, ROLE, "lambda.amazonaws.com");
    passed(&mut a, OTHER, "cloudformation.amazonaws.com");
    let mut b = Usage::default();
    passed(&mut b, ROLE, "states.amazonaws.com");
    b.record_use("iam:PassRole", OTHER, T);
    let mut ab = a.clone();
    ab.merge(b.clone());
    let mut ba = b;
    ba.merge(a);
    assert_eq!(ab, ba);
    let g = gen_with(
        &ab,
        GenerateOptions {
            granularity: Granularity::Exact,
            ..GenerateOptions::default()
        },
    );
    let mut statements = statements_of(&g, "iam:PassRole");
    statements.sort();
    assert_eq!(
        statements,
        [
            (vec![OTHER.to_string()], vec![]),
            (
                vec![ROLE.to_string()],
                vec![format!(
                    "StringEquals {PASSED}=lambda.amazonaws.com,states.amazonaws.com"
                )]
            ),
        ]
    );
    assert!(g.would_deny.is_empty(), "{:?}", g.would_deny);
}

/// The cut proves the grant with its condition: a role that may pass roles only to Lambda
/// keeps its Lambda pass, and an unconditional one it could not prove is dropped.
#[test]
fn the_cut_proves_a_grant_with_its_condition() {
    let mut u = Usage::default();
    passed(&mut u, ROLE, "lambda.amazonaws.com");
    u.record_use("iam:PassRole", OTHER, T);
    let current = vec![policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:PassRole",
            "Resource":"arn:aws:iam::111122223333:role/*",
            "Condition":{"StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}}}"#,
    )];
    let g = gen_with(
        &u,
        GenerateOptions {
            granularity: Granularity::Exact,
            current: current.clone(),
            ..GenerateOptions::default()
        },
    );
    assert_eq!(
        statements_of(&g, "iam:PassRole"),
        [(
            vec![ROLE.to_string()],
            vec![format!("StringEquals {PASSED}=lambda.amazonaws.com")]
        )]
    );
    assert_eq!(g.dropped.len(), 1, "{:?}", g.dropped);
    assert_eq!(g.dropped[0].resource, OTHER);
    assert!(grants_no_new_access(&g.policies, &current).is_proven());
}

/// Many objects collapse under prefix granularity; the pattern keeps the values joined.
#[test]
fn a_collapsed_pattern_keeps_the_condition_of_all_it_stands_for() {
    let mut u = Usage::default();
    let key = "s3:ExistingObjectTag/team";
    for i in 0..12 {
        let object = format!("arn:aws:s3:::b/jobs/{i}.json");
        let team = if i % 2 == 0 { "data" } else { "ops" };
        u.record_use_under("s3:GetObject", &object, Some((key, team)), T);
    }
    let g = gen_default(&u);
    assert_eq!(
        statements_of(&g, "s3:GetObject"),
        [(
            vec!["arn:aws:s3:::b/jobs/*".to_string()],
            vec![format!("StringEquals {key}=data,ops")]
        )]
    );
    // One use without the condition makes the pattern unconditional.
    u.record_use("s3:GetObject", "arn:aws:s3:::b/jobs/0.json", T);
    let g = gen_default(&u);
    assert_eq!(
        statements_of(&g, "s3:GetObject"),
        [(vec!["arn:aws:s3:::b/jobs/*".to_string()], vec![])]
    );
}
