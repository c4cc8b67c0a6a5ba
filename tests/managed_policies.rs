//! Cross-checks on the 1,641 AWS managed policies in ../shared/data/iam-reference: real
//! documents exercise the parser, linter, canonical form, evaluator and prover together.

use iam_tailor::policy::analysis::{Proof, allowed_actions, grants_no_new_access};
use iam_tailor::policy::lint::{PolicyType, Severity, lint};
use iam_tailor::policy::{ActionBlock, Context, Effect, Policy, PolicySet, Request, ResourceBlock};

fn managed_policies() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/iam-reference/aws_managed_policies.jsonl"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (the shared/ folder must sit beside the repo)"));
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                v["document"].to_string(),
            )
        })
        .collect()
}

#[test]
fn every_managed_policy_parses_lints_clean_and_round_trips() {
    let policies = managed_policies();
    assert_eq!(policies.len(), 1641);
    // Some still name retired services (DeepLens, DeepRacer), legacy actions
    // (budgets:CreateBudget) or keys the catalog lacks: Access Analyzer's catalog errors.
    let catalog_errors = [
        "INVALID_ACTION",
        "INVALID_SERVICE_IN_ACTION",
        "INVALID_SERVICE_CONDITION_KEY",
        "INVALID_GLOBAL_CONDITION_KEY",
    ];
    let mut naming_unknowns = 0;
    for (name, doc) in &policies {
        let findings = lint(doc, PolicyType::Identity);
        let errors: Vec<_> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        naming_unknowns += usize::from(errors.iter().any(|f| catalog_errors.contains(&f.code)));
        let structural: Vec<_> = errors
            .iter()
            .filter(|f| !catalog_errors.contains(&f.code))
            .collect();
        assert!(structural.is_empty(), "{name}: {structural:?}");
        let policy = Policy::parse(doc).unwrap();
        let again = Policy::parse(&policy.canonical_json()).unwrap();
        assert_eq!(again.revision(), policy.revision(), "{name}");
    }
    // 69 with the catalog of this commit; a catalog that lost services would show here.
    assert!(
        naming_unknowns <= 80,
        "{naming_unknowns} policies name unknown actions or keys"
    );
}

fn uses_not_forms(policy: &Policy) -> bool {
    policy.statements.iter().any(|s| {
        s.effect == Effect::Allow
            && (matches!(s.action, Some(ActionBlock::NotAction(_)))
                || matches!(s.resource, Some(ResourceBlock::NotResource(_))))
    })
}

/// Every policy is within itself, whatever its form (a role keeps documents as they are, and
/// the state-by-state proof must accept that), and one more action is not.
#[test]
fn the_prover_is_reflexive_and_refuses_wider_candidates() {
    let mut not_forms = 0;
    let policies = managed_policies();
    for (name, doc) in &policies {
        let policy = Policy::parse(doc).unwrap();
        let proof =
            grants_no_new_access(std::slice::from_ref(&policy), std::slice::from_ref(&policy));
        assert_eq!(proof, Proof::Proven, "{name} is within itself");
        not_forms += usize::from(uses_not_forms(&policy));
        // One more action on every resource is new access unless the policy already had `*`.
        let mut wider = policy.clone();
        wider.statements.push(
            Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"*"}}"#)
                .unwrap()
                .statements
                .remove(0),
        );
        let grants_everything = allowed_actions(std::slice::from_ref(&policy))
            .iter()
            .any(|a| {
                a.action == "iam:CreateAccessKey"
                    && !a.conditional
                    && a.resources.iter().any(|r| r == "*")
            });
        if !grants_everything {
            assert!(
                !grants_no_new_access(&[wider], &[policy]).is_proven(),
                "{name}: a wider candidate was proven"
            );
        }
    }
    assert!(policies.len() > 1600, "only {} policies", policies.len());
    assert!(
        not_forms >= 8,
        "only {not_forms} NotAction/NotResource policies"
    );
}

/// What the evaluator allows, `allowed_actions` lists: it over-approximates, never misses.
#[test]
fn allowed_actions_covers_what_the_evaluator_allows() {
    let catalog = iam_tailor::catalog::catalog();
    let actions: Vec<String> = catalog
        .actions()
        .step_by(37)
        .map(|a| a.full_name())
        .collect();
    let context = Context::new();
    for (name, doc) in managed_policies().iter().step_by(7) {
        let policy = Policy::parse(doc).unwrap();
        let listed: std::collections::BTreeSet<String> =
            allowed_actions(std::slice::from_ref(&policy))
                .into_iter()
                .map(|a| a.action)
                .collect();
        let set = PolicySet::builder().identity(policy).build();
        for action in &actions {
            let decision = set
                .evaluate(&Request {
                    action,
                    resource: "*",
                    principal: Some("arn:aws:iam::111122223333:role/r"),
                    context: &context,
                })
                .decision;
            if decision == iam_tailor::policy::Decision::Allowed {
                assert!(
                    listed.contains(action),
                    "{name}: evaluator allows {action}, allowed_actions omits it"
                );
            }
        }
    }
}
