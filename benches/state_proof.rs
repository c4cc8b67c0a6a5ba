//! The state-by-state proof on roles that keep large AWS managed policies: the proof runs before
//! every IAM write, so its cost is part of every apply and drift revert. Prints proofs/s, for
//! an apply and for replacing a boundary (AdministratorAccess by a declared ReadOnlyAccess);
//! and trust analyses/s (every reconcile analyzes the role's trust policy).
//! A benchmark, not a test: `cargo bench --bench state_proof`.

use iam_tailor::policy::Policy;
use iam_tailor::policy::trust;
use iam_tailor::role::proof::{prove_each_state, prove_each_state_knowing};
use iam_tailor::role::{AttachedPolicy, LiveRole, Operation};
use std::time::Instant;

/// The managed policy `name` from the shared corpus.
fn managed(name: &str) -> Policy {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/iam-reference/aws_managed_policies.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|v| v.get("name").and_then(|n| n.as_str()) == Some(name))
        .and_then(|v| Policy::from_value(v.get("document")?).ok())
        .unwrap_or_else(|| panic!("{name} is not in {path}"))
}

fn attached(name: &str, document: Policy) -> AttachedPolicy {
    AttachedPolicy {
        arn: format!("arn:aws:iam::aws:policy/{name}"),
        name: name.to_string(),
        document,
        managed_by_iam_tailor: false,
    }
}

fn main() {
    let kept = ["ReadOnlyAccess", "SecurityAudit", "AmazonEC2FullAccess"];
    let role = LiveRole {
        names: Default::default(),
        name: "app".to_string(),
        arn: "arn:aws:iam::111122223333:role/app".to_string(),
        role_id: "AROAAPP".to_string(),
        inline: [(
            "s3-all".to_string(),
            Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#)
                .unwrap(),
        )]
        .into(),
        attached: kept.iter().map(|n| attached(n, managed(n))).collect(),
        permissions_boundary: None,
        tags: Default::default(),
        trust_policy: None,
        boundary_policy: None,
    };
    let proposal = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::orders/*"},
        {"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:us-east-1:111122223333:table/orders"}]}"#,
    )
    .unwrap();
    let ours = "arn:aws:iam::111122223333:policy/iam-tailor-app".to_string();
    // The apply of attachedPolicies: Detach + inlinePolicies: Delete, and the same keeping all
    // three managed policies (every state then holds them).
    let detach_all: Vec<Operation> = [
        Operation::PutManagedPolicy {
            name: "iam-tailor-app".to_string(),
            arn: ours.clone(),
            document: proposal.canonical_json(),
        },
        Operation::AttachPolicy { arn: ours.clone() },
    ]
    .into_iter()
    .chain(
        role.attached
            .iter()
            .map(|a| Operation::DetachPolicy { arn: a.arn.clone() }),
    )
    .chain([Operation::DeleteInlinePolicy {
        name: "s3-all".to_string(),
    }])
    .collect();
    let keep_managed: Vec<Operation> = detach_all
        .iter()
        .filter(|op| !matches!(op, Operation::DetachPolicy { .. }))
        .cloned()
        .collect();
    // A declared boundary replacing a wide one: proven on the two documents.
    let mut bounded = role.clone();
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    bounded.permissions_boundary = Some(admin.to_string());
    // (AdministratorAccess's document; the shared corpus does not hold it.)
    let everything =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    bounded.boundary_policy = Some(Box::new(attached(
        "AdministratorAccess",
        Policy::parse(everything).unwrap(),
    )));
    let read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess".to_string();
    let known = [(read_only.clone(), managed("ReadOnlyAccess"))].into();
    let replace = [Operation::SetPermissionsBoundary { arn: read_only }];
    assert_eq!(prove_each_state_knowing(&bounded, &replace, &known), Ok(()));
    let runs = 20;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(prove_each_state_knowing(&bounded, &replace, &known)).unwrap();
    }
    let each = started.elapsed() / runs;
    println!(
        "boundary AdministratorAccess -> ReadOnlyAccess: {:.1} ms a proof, {:.0} proofs/s",
        each.as_secs_f64() * 1e3,
        1.0 / each.as_secs_f64()
    );
    // The trust analysis of an IRSA trust policy (EKS User Guide's example) with a partner.
    let irsa = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub":"system:serviceaccount:default:app","oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:aud":"sts.amazonaws.com"}}},{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole"}]}"#;
    let allowed = ["777788889999".to_string()].into();
    let runs = 2_000;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(trust::analyze(irsa, &role.arn, Some(&allowed))).unwrap();
    }
    let each = started.elapsed() / runs;
    println!(
        "trust analysis (IRSA + a partner account): {:.1} µs each, {:.0}/s",
        each.as_secs_f64() * 1e6,
        1.0 / each.as_secs_f64()
    );
    for (label, plan) in [("detach all", &detach_all), ("keep managed", &keep_managed)] {
        assert_eq!(prove_each_state(&role, plan), Ok(()), "{label}");
        let runs = 20;
        let started = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(prove_each_state(&role, plan)).unwrap();
        }
        let each = started.elapsed() / runs;
        println!(
            "{label}: {} operations over a role keeping {} ({} statements): {:.1} ms a proof, {:.0} proofs/s",
            plan.len(),
            kept.join(" + "),
            role.documents()
                .iter()
                .map(|d| d.statements.len())
                .sum::<usize>(),
            each.as_secs_f64() * 1e3,
            1.0 / each.as_secs_f64()
        );
    }
}
