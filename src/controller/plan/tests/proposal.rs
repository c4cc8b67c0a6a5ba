//! Plan tests of the proposal (ProposalReady) and the limits of what the status holds.

use super::*;

#[test]
fn recommend_proposes_without_writing() {
    for approval in [Approval::Manual, Approval::Automatic] {
        let o = observed(
            Default::default(),
            original_role(),
            Some(analysis(vec![get_orders()])),
        );
        let p = plan(&spec(Mode::Recommend, approval), &o);
        assert!(p.operations.is_empty());
        let proposal = p.status.proposal.as_ref().unwrap();
        assert_eq!(proposal.revision, set_revision(&[get_orders()]));
        assert_eq!(
            proposal.revision,
            crate::policy::canonical::sha256_revision(&proposal.policy)
        );
        assert_eq!(
            proposal.policy,
            format!("[{}]", get_orders().canonical_json())
        );
        assert_eq!(proposal.generated_at, T0);
        assert_eq!(proposal.adds, 0);
        assert!(
            proposal.removes > 100,
            "s3:* and dynamodb:GetItem minus one action"
        );
        assert_condition(&p, "ProposalReady", TRUE, "ProposalReady");
        assert_condition(&p, "Approved", FALSE, "NotEnforcing");
        assert!(p.events.iter().any(|e| e.reason == "ProposalReady"));
    }
}

#[test]
fn the_proposal_shows_each_generalization_and_why() {
    let mut result = analysis(vec![get_orders()]);
    result.generated.generalized = (0..REPORT_LIMIT + 2)
        .map(|i| crate::generate::Generalized {
            resource: format!("arn:aws:s3:::b{i}/orders/*"),
            actions: vec!["s3:GetObject".to_string()],
            from: vec![format!("arn:aws:s3:::b{i}/orders/2026/11/20/a.json")],
            from_count: 40,
            because: vec!["date segments"],
        })
        .collect();
    let o = observed(Default::default(), original_role(), Some(result));
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    let proposal = p.status.proposal.as_ref().unwrap();
    assert_eq!(proposal.generalized.len(), REPORT_LIMIT);
    assert_eq!(proposal.generalized_count, REPORT_LIMIT as u64 + 2);
    let first = &proposal.generalized[0];
    assert_eq!(first.resource, "arn:aws:s3:::b0/orders/*");
    assert_eq!(
        (first.from_count, &first.because[..]),
        (40, &["date segments".to_string()][..])
    );
    let message = condition(&p, "ProposalReady")
        .message
        .as_deref()
        .unwrap_or_default();
    assert!(
        message.contains("52 resource patterns generalized"),
        "{message}"
    );
}

#[test]
fn a_proposal_that_would_deny_a_used_call_is_not_applied() {
    let mut result = analysis(vec![get_orders()]);
    result.generated.would_deny = vec![crate::generate::WouldDeny {
        action: "sqs:SendMessage".to_string(),
        resource: "arn:aws:sqs:us-east-1:111122223333:q".to_string(),
        decision: crate::policy::Decision::ImplicitlyDenied,
        count: 7,
        last_seen: T0.to_string(),
    }];
    let o = observed(Default::default(), original_role(), Some(result));
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert!(p.operations.is_empty(), "{:?}", p.operations);
    assert_condition(&p, "Approved", FALSE, "WouldDeny");
    let message = condition(&p, "Approved")
        .message
        .as_deref()
        .unwrap_or_default();
    assert!(message.contains("sqs:SendMessage on arn:aws:sqs:us-east-1:111122223333:q (7×"));
    let proposal = p.status.proposal.as_ref().unwrap();
    assert_eq!(proposal.would_deny_count, 1);
    assert!(p.events.iter().any(|e| e.reason == "WouldDeny"));
    // Still held on the next reconcile, without a second Warning.
    let again = plan(
        &spec(Mode::Enforce, Approval::Automatic),
        &next(&p, original_role()),
    );
    assert!(again.operations.is_empty());
    assert_condition(&again, "Approved", FALSE, "WouldDeny");
    assert!(!again.events.iter().any(|e| e.reason == "WouldDeny"));
}

#[test]
fn condition_messages_are_bounded() {
    let long = format!(
        "{}é{}",
        "x".repeat(MAX_MESSAGE_BYTES - 65),
        "y".repeat(20_000)
    );
    let cut = bounded(long.clone());
    assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
    assert!(cut.ends_with("more bytes)"), "{}", &cut[cut.len() - 40..]);
    assert!(long.starts_with(cut.split(" … (").next().unwrap()));
    assert_eq!(bounded("short".to_string()), "short");
}

#[test]
fn no_plan_passes_through_more_managed_policies_than_the_quota() {
    // Nine policies kept (attachedPolicies: Keep) and a proposal of two documents: eleven at
    // once, one over IAM's default quota. Nothing is written; with the quota raised, it applies.
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.attached_policies = AttachedPolicies::Keep;
    let mut role = original_role();
    role.attached = (1..=9)
        .map(|i| {
            let arn = format!("arn:aws:iam::123456789012:policy/team-{i}");
            attached(&arn, doc("s3:*", "*"))
        })
        .collect();
    let proposal = vec![get_orders(), doc("s3:PutObject", "arn:aws:s3:::orders/*")];
    let mut o = observed(Default::default(), role.clone(), Some(analysis(proposal)));
    // One document per policy, as the generator splits them when they do not fit one.
    let p = plan(&s, &o);
    let documents = p
        .status
        .proposal
        .as_ref()
        .map(|p| p.policy.matches("Statement").count());
    assert_eq!(documents, Some(2), "two documents");
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Approved", FALSE, "ManagedPolicyQuota");
    assert_condition(&p, "Ready", FALSE, "ManagedPolicyQuota");
    assert!(
        condition(&p, "Approved")
            .message
            .as_deref()
            .unwrap_or("")
            .contains("11 managed policies attached at once, over the role's quota of 10")
    );
    o.limits.managed_policies_per_role = 11;
    let raised = plan(&s, &o);
    assert_condition(&raised, "Approved", TRUE, "Approved");
    let attaches = (raised.operations.iter())
        .filter(|op| matches!(op, Operation::AttachPolicy { .. }))
        .count();
    assert_eq!(attaches, 2);
}

#[test]
fn status_lists_are_cut_to_the_report_limit_with_their_counts() {
    let s = spec(Mode::Recommend, Approval::Manual);
    let mut result = analysis(vec![get_orders()]);
    result.seen_by_iam = (0..(REPORT_LIMIT + 10))
        .map(|i| crate::generate::SeenByIam {
            action: format!("s3:Action{i:03}"),
            last_accessed: T0.to_string(),
        })
        .collect();
    let p = plan(
        &s,
        &observed(Default::default(), original_role(), Some(result)),
    );
    let proposal = p.status.proposal.unwrap();
    assert_eq!(proposal.seen_by_iam.len(), REPORT_LIMIT);
    assert_eq!(proposal.seen_by_iam_count, REPORT_LIMIT as u64 + 10);
    assert_eq!(
        proposal.seen_by_iam[0].action, "s3:Action000",
        "the first ones, in order"
    );
}
