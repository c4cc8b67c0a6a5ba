use super::builder::{ConditionStatus, ConditionType, MAX_MESSAGE_BYTES, bounded};
use super::*;
use crate::controller::crd::{
    Applied, Approval, ApprovedRestore, AttachedPolicies, CloudTrailSource, Condition,
    DeletionPolicy, DriftAction, Grant, InlinePolicies, JobSource, Mode, REPORT_LIMIT,
    RestoreStatus, RestoredGrant, S3TrailSource, UnresolvedInstanceProfile,
};
use crate::controller::spec::{Limits, NO_CLUSTER_TRAIL, validate};
use crate::generate::analyzer::Unresolved;
use crate::role::{AttachedPolicy, BackupSnapshot};
use crate::time::parse_duration;
use std::collections::BTreeMap;

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/checkout-api";
const OURS: &str = "arn:aws:iam::123456789012:policy/iam-tailor-checkout-api";
const OURS_2: &str = "arn:aws:iam::123456789012:policy/iam-tailor.2.checkout-api";
const S3_FULL: &str = "arn:aws:iam::aws:policy/AmazonS3FullAccess";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/boundary";
const T0: &str = "2025-01-01T00:00:00Z";
/// The role's trust policy: EC2 may assume it.
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const UID: &str = "6f1c0c3e-0000-4000-8000-000000000001";

thread_local! {
    /// The backup ConfigMaps the plans of this test wrote, by hash: what the shell would read.
    static BACKUPS: std::cell::RefCell<BTreeMap<String, StoredBackup>> = Default::default();
}

/// Keeps the backup `plan` writes, as the shell's ConfigMap would.
fn remember(plan: &Plan) {
    for op in &plan.operations {
        if let Operation::BackupRole { snapshot, .. } = op {
            let backup = StoredBackup::of(snapshot);
            BACKUPS.with(|b| b.borrow_mut().insert(backup.sha256.clone(), backup));
        }
    }
}

/// The backup the shell would find for a status recording `sha256`.
fn stored(sha256: &str) -> Option<StoredBackup> {
    BACKUPS.with(|b| b.borrow().get(sha256).cloned())
}
const T1: &str = "2025-01-02T00:00:00Z";

fn doc(action: &str, resource: &str) -> Policy {
    Policy::parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    ))
    .unwrap()
}

fn get_orders() -> Policy {
    doc("s3:GetObject", "arn:aws:s3:::orders/*")
}

fn spec(mode: Mode, approval: Approval) -> LeastPrivilegeRoleSpec {
    LeastPrivilegeRoleSpec {
        role_name: Some("checkout-api".to_string()),
        mode,
        approval,
        cloud_trail: CloudTrailSource {
            s3: Some(S3TrailSource {
                bucket: "org-trail-logs".to_string(),
                ..Default::default()
            }),
            ..Default::default()
        },
        window: "90d".to_string(),
        regenerate_every: "24h".to_string(),
        last_accessed: Default::default(),
        ..Default::default()
    }
}

fn attached(arn: &str, document: Policy) -> AttachedPolicy {
    AttachedPolicy {
        arn: arn.to_string(),
        name: arn.rsplit('/').next().unwrap().to_string(),
        document,
        managed_by_iam_tailor: arn.contains("/iam-tailor-") || arn.contains("/iam-tailor."),
    }
}

/// The role before iam-tailor: S3 full access, an inline DynamoDB policy, a boundary.
fn original_role() -> LiveRole {
    LiveRole {
        names: Default::default(),
        name: "checkout-api".to_string(),
        arn: ROLE_ARN.to_string(),
        role_id: "AROACHECKOUT".to_string(),
        inline: BTreeMap::from([("legacy".to_string(), doc("dynamodb:GetItem", "*"))]),
        attached: vec![attached(S3_FULL, doc("s3:*", "*"))],
        permissions_boundary: Some(BOUNDARY.to_string()),
        // Claimed by the resource under test already (the claim has its own tests).
        tags: BTreeMap::from([(crate::role::CLAIM_TAG.to_string(), UID.to_string())]),
        trust_policy: Some(TRUST.to_string()),
        boundary_policy: None,
    }
}

fn analysis(policies: Vec<Policy>) -> AnalysisResult {
    AnalysisResult {
        analysis: Analysis {
            window_start: "2024-10-03T00:00:00Z".to_string(),
            window_end: T0.to_string(),
            events_matched: 40,
            used_actions: 1,
            granted_actions: 200,
            unused_actions: 199,
            last_accessed: Some(Default::default()),
            ..Default::default()
        },
        generated: Generated {
            policies,
            generalized: Vec::new(),
            would_deny: Vec::new(),
            dropped: Vec::new(),
            forbidden_used: Vec::new(),
            notes: Vec::new(),
        },
        seen_by_iam: Vec::new(),
        unresolved: Vec::new(),
        unresolved_profiles: Vec::new(),
        validation: None,
        shadow_usage: None,
    }
}

fn observed(
    previous: LeastPrivilegeRoleStatus,
    role: LiveRole,
    analysis: Option<AnalysisResult>,
) -> Observed {
    Observed {
        generation: 1,
        now: T0.to_string(),
        uid: UID.to_string(),
        backup: previous.backup.as_ref().and_then(|b| stored(&b.sha256)),
        original: None,
        backup_namespace: "iam-tailor".to_string(),
        previous,
        role: RoleState::Found(role),
        analysis,
        analyzer: None,
        analyzer_poll_secs: 30,
        limits: Limits::default(),
        trusted_accounts: Vec::new(),
        cluster_trail: Default::default(),
        rollback: None,
        after_apply: None,
        original_aws_managed: None,
        customer_policies: Default::default(),
        declared_boundary: None,
    }
}

fn condition<'a>(plan: &'a Plan, type_: &str) -> &'a Condition {
    plan.status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
}

fn assert_condition(plan: &Plan, type_: &str, status: ConditionStatus, reason: &str) {
    let c = condition(plan, type_);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        (status.as_str(), reason),
        "{type_}: {c:?}"
    );
}

fn position(plan: &Plan, wanted: impl Fn(&Operation) -> bool) -> usize {
    plan.operations
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("operation missing from {:#?}", plan.operations))
}

/// IAM as a model: applies operations to `role`, with `store` holding managed policies by ARN.
fn apply(role: &LiveRole, ops: &[Operation], store: &mut BTreeMap<String, Policy>) -> LiveRole {
    let mut role = role.clone();
    for a in &role.attached {
        store.entry(a.arn.clone()).or_insert(a.document.clone());
    }
    for op in ops {
        match op {
            Operation::BackupRole { .. } | Operation::ForgetBackup { .. } => {}
            Operation::PutManagedPolicy { arn, document, .. }
            | Operation::RestorePolicyVersion { arn, document } => {
                let document = Policy::parse(document).unwrap();
                store.insert(arn.clone(), document.clone());
                let boundary = role.boundary_policy.iter_mut().map(|b| &mut **b);
                for a in role
                    .attached
                    .iter_mut()
                    .chain(boundary)
                    .filter(|a| a.arn == *arn)
                {
                    a.document = document.clone();
                }
            }
            Operation::AttachPolicy { arn } => {
                role.attached.push(attached(arn, store[arn].clone()))
            }
            Operation::DetachPolicy { arn } => role.attached.retain(|a| a.arn != *arn),
            Operation::PutInlinePolicy { name, document } => {
                role.inline
                    .insert(name.clone(), Policy::parse(document).unwrap());
            }
            Operation::DeleteInlinePolicy { name } => {
                role.inline.remove(name);
            }
            Operation::SetPermissionsBoundary { arn } => {
                role.permissions_boundary = Some(arn.clone());
                role.boundary_policy = store.get(arn).map(|document| {
                    Box::new(AttachedPolicy {
                        managed_by_iam_tailor: arn.contains("/iam-tailor.boundary."),
                        ..attached(arn, document.clone())
                    })
                });
            }
            Operation::DeletePermissionsBoundary => {
                role.permissions_boundary = None;
                role.boundary_policy = None;
            }
            Operation::DeleteManagedPolicy { arn } => {
                store.remove(arn);
            }
            Operation::ClaimRole { uid } => {
                role.tags
                    .insert(crate::role::CLAIM_TAG.to_string(), uid.clone());
            }
            Operation::ReleaseRole => {
                role.tags.remove(crate::role::CLAIM_TAG);
            }
        }
    }
    role
}

/// Enforce/Automatic applied to the original role: the plan and the role afterwards.
fn enforced(s: &LeastPrivilegeRoleSpec, policies: Vec<Policy>) -> (Plan, LiveRole) {
    let plan = plan(
        s,
        &observed(
            Default::default(),
            original_role(),
            Some(analysis(policies)),
        ),
    );
    let role = apply(&original_role(), &plan.operations, &mut BTreeMap::new());
    (plan, role)
}

/// The next reconcile: a day later, no new analysis, the backup in place.
fn next(previous: &Plan, role: LiveRole) -> Observed {
    remember(previous);
    let mut o = observed(previous.status.clone(), role, None);
    o.now = T1.to_string();
    o
}

#[test]
fn invalid_spec_lists_every_reason_and_writes_nothing() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.role_arn = Some(ROLE_ARN.to_string());
    s.window = "90x".to_string();
    s.drift.interval = "0m".to_string();
    s.cloud_trail.s3 = None;
    let p = plan(&s, &observed(Default::default(), original_role(), None));
    assert!(p.operations.is_empty());
    assert_eq!(p.requeue, Requeue::AwaitChange);
    assert_condition(&p, "Ready", FALSE, "InvalidSpec");
    let message = condition(&p, "Ready").message.clone().unwrap_or_default();
    for needle in ["not both", "window", "drift.interval", "cloudTrail.s3"] {
        assert!(message.contains(needle), "{needle} missing from {message}");
    }
    assert_eq!(p.status.observed_generation, Some(1));
}

#[test]
fn role_not_found_retries_slowly() {
    let mut o = observed(Default::default(), original_role(), None);
    o.role = RoleState::NotFound;
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert!(p.operations.is_empty());
    assert_condition(&p, "Ready", FALSE, "RoleNotFound");
    assert_eq!(p.requeue, Requeue::After(ROLE_NOT_FOUND_RETRY_SECS));
}

#[test]
fn observe_publishes_the_analysis_only() {
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let p = plan(&spec(Mode::Observe, Approval::Automatic), &o);
    assert!(p.operations.is_empty());
    assert_eq!(p.status.analysis.as_ref().unwrap().unused_actions, 199);
    assert!(p.status.proposal.is_none());
    assert_condition(&p, "Analyzed", TRUE, "Analyzed");
    assert_condition(&p, "Approved", FALSE, "NotEnforcing");
    assert_condition(&p, "Ready", TRUE, "Ready");
    // 5m drift interval < 24h regeneration.
    assert_eq!(p.requeue, Requeue::After(300));
    // Without a new analysis the previous one stays.
    let again = plan(
        &spec(Mode::Observe, Approval::Automatic),
        &next(&p, original_role()),
    );
    assert_eq!(again.status.analysis, p.status.analysis);
}

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

fn shadowing(period: &str, max_would_deny: u64) -> LeastPrivilegeRoleSpec {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.enforce = Some(crate::controller::crd::EnforceSpec {
        shadow_for: period.to_string(),
        max_would_deny,
    });
    s
}

/// An analysis at `now` whose shadow replay sees `calls` (action, resource, count).
fn shadow_analysis(
    policies: Vec<Policy>,
    calls: &[(&str, &str, u64)],
    now: &str,
) -> AnalysisResult {
    let mut usage = crate::usage::Usage::default();
    for (action, resource, count) in calls {
        for _ in 0..*count {
            usage.record_use(action, resource, now);
        }
    }
    let mut result = analysis(policies);
    result.analysis.window_end = now.to_string();
    result.shadow_usage = Some(usage);
    result
}

/// The first plan of `s`: its first analysis proposes `get_orders`.
fn first_proposal(s: &LeastPrivilegeRoleSpec) -> Plan {
    let result = analysis(vec![get_orders()]);
    plan(
        s,
        &observed(Default::default(), original_role(), Some(result)),
    )
}

#[test]
fn the_shadow_gate_holds_the_proposal_until_its_period_is_replayed() {
    let s = shadowing("7d", 0);
    let first = first_proposal(&s);
    let shadow = first
        .status
        .shadow
        .clone()
        .expect("the first proposal begins the period");
    assert_eq!((shadow.since.as_str(), shadow.calls), (T0, 0));
    assert_condition(&first, "Approved", FALSE, "ShadowPeriod");
    assert!(first.operations.is_empty());
    // Looked at again when the period ends, and then due for a replay.
    assert!(matches!(first.requeue, Requeue::After(secs) if secs <= 7 * 86_400));
    let spec_valid = |raw| validate(raw, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
    let at = |t: &str| crate::time::parse_date(t).unwrap();
    let eight_days = "2025-01-09T00:00:00Z";
    assert!(analysis_due(&spec_valid(&s), &first.status, at(eight_days)));
    assert_eq!(
        shadow_since(&spec_valid(&s), &first.status),
        Some(at(T0)),
        "the shell asks for the calls since the period began"
    );
    // A day in, with calls the proposal allows: still shadowing.
    let mut o = next(&first, original_role());
    o.analysis = Some(shadow_analysis(
        vec![get_orders()],
        &[("s3:GetObject", "arn:aws:s3:::orders/a", 5)],
        T1,
    ));
    let day_one = plan(&s, &o);
    let shadow = day_one.status.shadow.clone().unwrap();
    assert_eq!(
        (
            shadow.since.as_str(),
            shadow.checked_at.as_str(),
            shadow.calls
        ),
        (T0, T1, 5)
    );
    assert_condition(&day_one, "Approved", FALSE, "ShadowPeriod");
    assert!(day_one.operations.is_empty());
    // Replayed after its period without a would-be denial: applied.
    let mut o = next(&day_one, original_role());
    o.now = eight_days.to_string();
    o.analysis = Some(shadow_analysis(
        vec![get_orders()],
        &[("s3:GetObject", "arn:aws:s3:::orders/b", 9)],
        eight_days,
    ));
    let applied = plan(&s, &o);
    assert_eq!(applied.status.shadow.as_ref().unwrap().since, T0);
    assert_condition(&applied, "Approved", TRUE, "Approved");
    assert!(!applied.operations.is_empty());
}

#[test]
fn a_would_be_denial_restarts_the_shadow_with_a_proposal_that_includes_it() {
    let s = shadowing("7d", 0);
    let first = first_proposal(&s);
    // The role reads a table the proposal does not grant (its policies do): the analysis
    // proposes it, the period starts again, and a Warning names the call.
    let wider = vec![
        get_orders(),
        doc(
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:111122223333:table/t",
        ),
    ];
    let mut o = next(&first, original_role());
    o.analysis = Some(shadow_analysis(
        wider.clone(),
        &[
            ("s3:GetObject", "arn:aws:s3:::orders/a", 5),
            (
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:111122223333:table/t",
                2,
            ),
            // Not allowed by the role's policies either: never a would-be denial.
            ("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q", 4),
        ],
        T1,
    ));
    let restarted = plan(&s, &o);
    let shadow = restarted.status.shadow.clone().unwrap();
    let proposal = restarted.status.proposal.clone().unwrap();
    assert_eq!(shadow.revision, proposal.revision);
    assert_ne!(
        proposal.revision,
        first.status.proposal.as_ref().unwrap().revision
    );
    assert_eq!((shadow.since.as_str(), shadow.restarts), (T1, 1));
    let denied: Vec<(&str, u64)> = (shadow.would_deny.iter())
        .map(|w| (w.action.as_str(), w.count))
        .collect();
    assert_eq!(denied, [("dynamodb:GetItem", 2)]);
    assert!(
        restarted
            .events
            .iter()
            .any(|e| e.reason == "WouldDeny" && e.note.contains("dynamodb:GetItem"))
    );
    assert_condition(&restarted, "Approved", FALSE, "ShadowPeriod");
    // Up to maxWouldDeny calls are tolerated: the period goes on.
    let tolerant = shadowing("7d", 2);
    let first = first_proposal(&tolerant);
    let mut o = next(&first, original_role());
    o.analysis = Some(shadow_analysis(
        wider,
        &[(
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:111122223333:table/t",
            2,
        )],
        T1,
    ));
    let shadow = plan(&tolerant, &o).status.shadow.unwrap();
    assert_eq!(
        (
            shadow.since.as_str(),
            shadow.would_deny_calls,
            shadow.restarts
        ),
        (T0, 2, 0)
    );
}

#[test]
fn enforce_applies_in_order_then_stays_quiet() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (p, role) = enforced(&s, vec![get_orders()]);
    let backup = position(&p, |o| matches!(o, Operation::BackupRole { .. }));
    let put = position(
        &p,
        |o| matches!(o, Operation::PutManagedPolicy { arn, .. } if arn == OURS),
    );
    let attach = position(&p, |o| {
        *o == Operation::AttachPolicy {
            arn: OURS.to_string(),
        }
    });
    let detach = position(&p, |o| {
        *o == Operation::DetachPolicy {
            arn: S3_FULL.to_string(),
        }
    });
    let delete = position(&p, |o| {
        *o == Operation::DeleteInlinePolicy {
            name: "legacy".to_string(),
        }
    });
    assert!(backup < put && put < attach && attach < detach && attach < delete);
    assert_eq!(p.operations.len(), 5);
    let Operation::BackupRole {
        config_map,
        snapshot,
    } = &p.operations[0]
    else {
        unreachable!()
    };
    assert_eq!(*config_map, backup_config_map(UID));
    assert_eq!(snapshot, &BackupSnapshot::of(&original_role()));
    assert_eq!(snapshot.attached, [S3_FULL]);
    assert_eq!(p.status.backup.as_ref().unwrap().config_map, *config_map);
    let applied = p.status.applied.as_ref().unwrap();
    assert_eq!(applied.revision, set_revision(&[get_orders()]));
    assert_eq!(applied.policy_arns, [OURS]);
    assert_eq!(applied.applied_at, T0);
    assert_condition(&p, "Approved", TRUE, "Approved");
    assert_condition(&p, "InSync", TRUE, "Applied");
    assert_condition(&p, "Ready", TRUE, "Ready");
    for reason in [
        "BackedUp",
        "PolicyPut",
        "PolicyAttached",
        "PolicyDetached",
        "InlinePolicyDeleted",
        "PolicyApplied",
    ] {
        let recorded = p
            .events
            .iter()
            .chain(&p.completion)
            .cloned()
            .chain(p.operations.iter().map(operation_event))
            .any(|e| e.reason == reason);
        assert!(recorded, "{reason}");
    }
    assert_eq!(p.requeue, Requeue::After(VERIFY_AFTER_SECS));

    // Next time the role holds exactly the applied revision: nothing to do, nothing changes.
    let again = plan(&s, &next(&p, role));
    assert!(again.operations.is_empty(), "{:#?}", again.operations);
    assert!(again.events.is_empty(), "{:#?}", again.events);
    assert_condition(&again, "InSync", TRUE, "InSync");
    assert_condition(&again, "Drifted", FALSE, "InSync");
    assert_eq!(again.status.applied, p.status.applied);
    assert!(again.status.history.is_empty());
    assert_eq!(again.requeue, Requeue::After(300));
}

#[test]
fn last_transition_time_changes_only_with_the_status() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (p, role) = enforced(&s, vec![get_orders()]);
    let quiet = plan(&s, &next(&p, role.clone()));
    for c in &quiet.status.conditions {
        let before = p
            .status
            .conditions
            .iter()
            .find(|b| b.type_ == c.type_)
            .unwrap();
        if before.status == c.status {
            assert_eq!(c.last_transition_time, T0, "{c:?}");
        } else {
            assert_eq!(c.last_transition_time, T1, "{c:?}");
        }
    }
    // Reason changed (Applied → InSync), status did not: the time stays.
    assert_eq!(condition(&quiet, "InSync").last_transition_time, T0);
    // A drift flips InSync and Drifted: their time moves, Analyzed's does not.
    let mut drifted = role;
    drifted.attached.push(attached(ADMIN, doc("*", "*")));
    let mut o = next(&quiet, drifted);
    o.now = "2025-01-03T00:00:00Z".to_string();
    let d = plan(&s, &o);
    assert_eq!(condition(&d, "InSync").last_transition_time, o.now);
    assert_eq!(condition(&d, "Drifted").last_transition_time, o.now);
    assert_eq!(condition(&d, "Analyzed").last_transition_time, T0);
    assert!(
        d.status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(1))
    );
    let types: Vec<&str> = d
        .status
        .conditions
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(types, ConditionType::ALL.map(ConditionType::as_str));
}

#[test]
fn manual_waits_for_the_approved_revision() {
    let s = spec(Mode::Enforce, Approval::Manual);
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let waiting = plan(&s, &o);
    assert!(waiting.operations.is_empty());
    assert!(waiting.status.applied.is_none());
    assert_condition(&waiting, "Approved", FALSE, "AwaitingApproval");
    assert_condition(&waiting, "Ready", TRUE, "Ready");
    let revision = waiting.status.proposal.as_ref().unwrap().revision.clone();
    assert!(
        condition(&waiting, "Approved")
            .message
            .as_deref()
            .unwrap_or("")
            .contains(&revision)
    );

    // Approving another revision changes nothing.
    let mut other = s.clone();
    other.approved_revision = Some(format!("sha256:{}", "0".repeat(64)));
    let still = plan(&other, &next(&waiting, original_role()));
    assert!(still.operations.is_empty());
    assert_condition(&still, "Approved", FALSE, "AwaitingApproval");

    let mut approved = s;
    approved.approved_revision = Some(revision.clone());
    let p = plan(&approved, &next(&waiting, original_role()));
    assert_condition(&p, "Approved", TRUE, "Approved");
    assert!(matches!(p.operations[0], Operation::BackupRole { .. }));
    assert_eq!(p.status.applied.as_ref().unwrap().revision, revision);
}

#[test]
fn never_widens_whatever_the_approval() {
    // The role lacks iam:PassRole; a proposal granting it is refused, even approved, and
    // nothing at all is written: no backup, no drift revert.
    let widening = vec![get_orders(), doc("iam:PassRole", "*")];
    let revision = set_revision(&widening);
    for approval in [Approval::Manual, Approval::Automatic] {
        let mut s = spec(Mode::Enforce, approval);
        s.approved_revision = Some(revision.clone());
        let o = observed(
            Default::default(),
            original_role(),
            Some(analysis(widening.clone())),
        );
        let p = plan(&s, &o);
        assert!(p.operations.is_empty(), "{:#?}", p.operations);
        assert!(p.status.applied.is_none());
        assert_condition(&p, "Approved", FALSE, "NotProvablyNarrower");
        assert_condition(&p, "Ready", FALSE, "NotProvablyNarrower");
        assert!(
            condition(&p, "Approved")
                .message
                .as_deref()
                .unwrap_or("")
                .contains("iam:PassRole")
        );
        assert!(
            p.events
                .iter()
                .any(|e| e.type_ == EventType::Warning && e.reason == "NotProvablyNarrower")
        );
        assert_eq!(p.status.proposal.as_ref().unwrap().adds, 1);
        // The next reconcile finds the same: the condition stands, no second Warning.
        let again = plan(&s, &next(&p, original_role()));
        assert_condition(&again, "Approved", FALSE, "NotProvablyNarrower");
        assert!(
            !again
                .events
                .iter()
                .any(|e| e.reason == "NotProvablyNarrower"),
            "{:#?}",
            again.events
        );
    }

    // With a revision applied and the role drifted, the unprovable proposal still blocks writes.
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, mut role) = enforced(&s, vec![get_orders()]);
    role.inline.insert("s3-all".to_string(), doc("s3:*", "*"));
    let mut o = next(&first, role);
    o.analysis = Some(analysis(vec![doc("iam:PassRole", "*")]));
    let p = plan(&s, &o);
    assert!(p.operations.is_empty());
    assert_condition(&p, "Drifted", TRUE, "Reported");
    assert_condition(&p, "Ready", FALSE, "NotProvablyNarrower");
}

#[test]
fn drift_is_reverted_or_reported() {
    let (first, role) = enforced(
        &spec(Mode::Enforce, Approval::Automatic),
        vec![get_orders()],
    );
    let mut drifted = role.clone();
    drifted.attached.push(attached(ADMIN, doc("*", "*")));
    drifted
        .inline
        .insert("s3-all".to_string(), doc("s3:*", "*"));

    let revert = spec(Mode::Enforce, Approval::Automatic);
    let p = plan(&revert, &next(&first, drifted.clone()));
    assert_eq!(
        p.operations,
        [
            Operation::DetachPolicy {
                arn: ADMIN.to_string()
            },
            Operation::DeleteInlinePolicy {
                name: "s3-all".to_string()
            },
        ]
    );
    let warning = p.events.iter().find(|e| e.reason == "Drifted").unwrap();
    assert_eq!(warning.type_, EventType::Warning);
    assert!(
        warning
            .note
            .contains("AdministratorAccess attached out of band")
    );
    assert!(warning.note.contains("inline policy s3-all added"));
    assert_condition(&p, "Drifted", TRUE, "Reverting");
    assert_condition(&p, "InSync", FALSE, "Drifted");
    assert_eq!(p.status.applied, first.status.applied);
    let reverted = apply(&drifted, &p.operations, &mut BTreeMap::new());
    assert_eq!(reverted, role);

    let mut report = revert.clone();
    report.drift.action = DriftAction::Report;
    let p = plan(&report, &next(&first, drifted.clone()));
    assert!(p.operations.is_empty());
    assert_condition(&p, "Drifted", TRUE, "Reported");
    assert_condition(&p, "Ready", FALSE, "Drifted");

    // Observe and Recommend report drift of what was applied earlier, and never write.
    for mode in [Mode::Observe, Mode::Recommend] {
        let p = plan(
            &spec(mode, Approval::Automatic),
            &next(&first, drifted.clone()),
        );
        assert!(p.operations.is_empty());
        assert_condition(&p, "Drifted", TRUE, "Reported");
    }
}

#[test]
fn drifted_content_is_put_back() {
    let s = spec(Mode::Enforce, Approval::Manual);
    let mut approved = s.clone();
    approved.approved_revision = Some(set_revision(&[get_orders()]));
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let first = plan(&approved, &o);
    let mut role = apply(&original_role(), &first.operations, &mut BTreeMap::new());
    role.attached[0].document = doc("s3:*", "*");
    let p = plan(&approved, &next(&first, role.clone()));
    assert_eq!(
        p.operations,
        [Operation::PutManagedPolicy {
            name: "iam-tailor-checkout-api".to_string(),
            arn: OURS.to_string(),
            document: get_orders().canonical_json(),
        }]
    );
    assert!(p.events.iter().any(|e| {
        e.note
            .contains("content of iam-tailor-checkout-api changed")
    }));

    // Detached out of band: attaching it again would give the role, as it is now, access it
    // lacks, so that is reported, never done.
    role.attached.clear();
    let p = plan(&approved, &next(&first, role));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Drifted", TRUE, "NotProvablyNarrower");
    assert_condition(&p, "Ready", FALSE, "NotProvablyNarrower");
    let message = condition(&p, "Drifted").message.clone().unwrap();
    assert!(
        message.contains("iam-tailor-checkout-api detached"),
        "{message}"
    );
    assert!(message.contains("after step"), "{message}");
}

#[test]
fn backup_only_before_the_first_change_and_stale_splits_are_detached() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let two = vec![
        get_orders(),
        doc("dynamodb:GetItem", "arn:aws:dynamodb:*:*:table/orders"),
    ];
    let (first, role) = enforced(&s, two);
    assert_eq!(
        first.status.applied.as_ref().unwrap().policy_arns,
        [OURS, OURS_2]
    );
    assert_eq!(role.attached.len(), 2);

    let mut o = next(&first, role);
    o.analysis = Some(analysis(vec![get_orders()]));
    let p = plan(&s, &o);
    assert!(
        !p.operations
            .iter()
            .any(|op| matches!(op, Operation::BackupRole { .. }))
    );
    assert_eq!(
        p.operations,
        [Operation::DetachPolicy {
            arn: OURS_2.to_string()
        }]
    );
    assert_eq!(p.status.applied.as_ref().unwrap().policy_arns, [OURS]);
    assert_eq!(p.status.history, [first.status.applied.clone().unwrap()]);
    assert_eq!(p.status.backup, first.status.backup);
}

#[test]
fn keep_leaves_other_policies_alone() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.attached_policies = AttachedPolicies::Keep;
    s.inline_policies = InlinePolicies::Keep;
    let (p, role) = enforced(&s, vec![get_orders()]);
    assert_eq!(
        p.operations.len(),
        3,
        "backup, put, attach: {:#?}",
        p.operations
    );
    assert_eq!(role.inline.len(), 1);
    assert_eq!(role.attached.len(), 2);
    assert!(plan(&s, &next(&p, role)).operations.is_empty());
}

#[test]
fn cleanup_retains_or_restores_exactly() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, mut role) = enforced(&s, vec![get_orders()]);
    role.permissions_boundary = None;
    assert!(matches!(first.operations[0], Operation::BackupRole { .. }));
    let o = next(&first, role.clone());

    // Retain lets go of the role, so another resource may manage it, and keeps the backup as
    // the role's original.
    let retain = plan_cleanup(&s, &o).unwrap();
    assert_eq!(retain.operations.last(), Some(&Operation::ReleaseRole));
    assert_eq!(retain.events[0].reason, "Retained");

    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let p = plan_cleanup(&restore_spec, &o).unwrap();
    assert_eq!(
        p.operations,
        [
            Operation::PutInlinePolicy {
                name: "legacy".to_string(),
                document: doc("dynamodb:GetItem", "*").canonical_json(),
            },
            Operation::AttachPolicy {
                arn: S3_FULL.to_string()
            },
            Operation::SetPermissionsBoundary {
                arn: BOUNDARY.to_string()
            },
            Operation::DetachPolicy {
                arn: OURS.to_string()
            },
            Operation::DeleteManagedPolicy {
                arn: OURS.to_string()
            },
            Operation::ForgetBackup {
                config_map: backup_config_map(UID)
            },
            Operation::ReleaseRole,
        ]
    );
    let mut store = BTreeMap::from([(S3_FULL.to_string(), doc("s3:*", "*"))]);
    let mut unclaimed = original_role();
    unclaimed.tags.clear();
    assert_eq!(apply(&role, &p.operations, &mut store), unclaimed);
    assert!(!store.contains_key(OURS));

    // The backup is gone: deletion waits, and the user is told how to let go.
    let mut gone = o.clone();
    gone.backup = None;
    let missing = plan_cleanup(&restore_spec, &gone).unwrap_err();
    assert!(missing.contains("deletionPolicy: Retain"), "{missing}");
    // Never changed: nothing to restore, deletion goes ahead.
    let mut untouched = observed(Default::default(), original_role(), None);
    untouched.previous.backup = None;
    let p = plan_cleanup(&restore_spec, &untouched).unwrap();
    assert_eq!(
        p.operations,
        [Operation::ReleaseRole],
        "only the claim goes"
    );
    assert_eq!(p.events[0].reason, "NothingToRestore");
}

/// Retain → a new resource → Restore: the first resource's backup is kept by RoleId when it is
/// deleted with Retain, the next resource on the role adopts it (not the narrowed role as it
/// is), and its Restore puts back the role as it was before iam-tailor, then lets both go.
#[test]
fn a_kept_original_survives_retain_and_is_what_the_next_restore_puts_back() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, narrowed) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole {
        snapshot: original, ..
    } = &first.operations[0]
    else {
        panic!("{:#?}", first.operations);
    };
    let original = original.clone();
    let o = next(&first, narrowed.clone());
    let kept_name = original_config_map(&narrowed.role_id);
    assert_eq!(kept_name, "iam-tailor-original-aroacheckout");

    // Retain hands the backup over as the role's kept original, then lets go.
    let retain = plan_cleanup(&s, &o).unwrap();
    assert_eq!(
        retain.operations,
        [
            Operation::BackupRole {
                config_map: kept_name.clone(),
                snapshot: original.clone(),
            },
            Operation::ForgetBackup {
                config_map: backup_config_map(UID),
            },
            Operation::ReleaseRole,
        ]
    );
    // A kept original of the same content: only this resource's copy goes; another one: both stay.
    let mut again = o.clone();
    again.original = o.backup.clone();
    let p = plan_cleanup(&s, &again).unwrap();
    assert_eq!(
        p.operations,
        [
            Operation::ForgetBackup {
                config_map: backup_config_map(UID),
            },
            Operation::ReleaseRole,
        ]
    );
    let mut other = original.clone();
    other.inline.clear();
    again.original = Some(StoredBackup::of(&other));
    assert_eq!(
        plan_cleanup(&s, &again).unwrap().operations,
        [Operation::ReleaseRole]
    );

    // A new resource on the narrowed, released role: its backup is the kept original.
    let mut released = narrowed.clone();
    released.tags.clear();
    // The new resource has claimed it (its first write, confirmed before any other).
    let mut claimed = released.clone();
    claimed
        .tags
        .insert(crate::role::CLAIM_TAG.to_string(), "uid-2".to_string());
    let narrower = doc("s3:GetObject", "arn:aws:s3:::orders/a.json");
    let mut fresh = observed(
        Default::default(),
        claimed.clone(),
        Some(analysis(vec![narrower])),
    );
    fresh.uid = "uid-2".to_string();
    fresh.original = Some(StoredBackup::of(&original));
    let adopted = plan(&s, &fresh);
    assert_eq!(
        adopted.operations[0],
        Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: original.clone(),
        }
    );
    assert_eq!(
        adopted.status.backup.as_ref().unwrap().sha256,
        StoredBackup::of(&original).sha256
    );
    assert!(adopted.events.iter().any(|e| e.reason == "OriginalAdopted"));
    // Nothing else to write: an enforcing resource still adopts it, for its Restore.
    let mut idle = fresh.clone();
    idle.analysis = Some(analysis(vec![get_orders()]));
    assert_eq!(
        plan(&s, &idle).operations,
        [Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: original.clone(),
        }]
    );
    // One the operator did not seal (planted in its namespace) is never adopted.
    let mut planted = fresh.clone();
    planted.original = Some(StoredBackup {
        sealed: false,
        ..StoredBackup::of(&original)
    });
    assert_eq!(
        plan(&s, &planted).operations[0],
        Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: BackupSnapshot::of(&claimed),
        }
    );
    // An original of another role (deleted and created again: another RoleId) is never adopted.
    let mut recreated = claimed.clone();
    recreated.role_id = "AROARECREATED".to_string();
    let mut elsewhere = fresh.clone();
    elsewhere.role = RoleState::Found(recreated.clone());
    let own = plan(&s, &elsewhere);
    assert_eq!(
        own.operations[0],
        Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: BackupSnapshot::of(&recreated),
        }
    );

    // Its Restore puts back the original, and lets its backup and the kept original go.
    remember(&adopted);
    let role = apply(&claimed, &adopted.operations, &mut BTreeMap::new());
    let mut leaving = observed(adopted.status.clone(), role.clone(), None);
    leaving.uid = "uid-2".to_string();
    leaving.original = Some(StoredBackup::of(&original));
    let mut restore_spec = s.clone();
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let restore = plan_cleanup(&restore_spec, &leaving).unwrap();
    let tail = &restore.operations[restore.operations.len() - 3..];
    assert_eq!(
        tail,
        [
            Operation::ForgetBackup {
                config_map: backup_config_map("uid-2"),
            },
            Operation::ForgetBackup {
                config_map: kept_name,
            },
            Operation::ReleaseRole,
        ]
    );
    let mut store = BTreeMap::from([(S3_FULL.to_string(), doc("s3:*", "*"))]);
    let mut unclaimed = original_role();
    unclaimed.tags.clear();
    assert_eq!(apply(&role, &restore.operations, &mut store), unclaimed);
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("90d", "mhdw"), Some(90 * 86_400));
    assert_eq!(parse_duration("2w", "mhdw"), Some(14 * 86_400));
    assert_eq!(parse_duration("30s", "smhd"), Some(30));
    for bad in [
        "",
        "d",
        "0d",
        "+5d",
        "5",
        "5s",
        "5 d",
        "99999999999999999999d",
    ] {
        assert_eq!(parse_duration(bad, "mhdw"), None, "{bad}");
    }
}

#[test]
fn keep_actions_and_dates_are_validated() {
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.keep = vec![crate::controller::crd::KeepRule {
        actions: vec!["s3:DeleteObjekt".to_string()],
        resources: Vec::new(),
        reason: "purge".to_string(),
        expires: Some("2027-13-01".to_string()),
    }];
    let message = validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap_err();
    assert!(message.contains("keep[0].actions"), "{message}");
    assert!(
        message.contains("s3:DeleteObject"),
        "a suggestion: {message}"
    );
    assert!(message.contains("keep[0].expires"), "{message}");
    s.keep[0].actions = vec!["s3:DeleteObject".to_string()];
    s.keep[0].expires = Some("2027-03-01".to_string());
    assert_eq!(
        validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).map(|_| ()),
        Ok(())
    );
}

#[test]
fn analysis_runs_when_new_stale_or_inputs_change_but_not_on_approval() {
    let day = 86_400 * 1_000_000_000i128;
    let t0 = crate::time::parse_date(T0).unwrap();
    let mut s = spec(Mode::Enforce, Approval::Manual);
    assert!(analysis_due(
        &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
        &Default::default(),
        t0
    ));
    let mut status = LeastPrivilegeRoleStatus::default();
    let mut a = analysis(vec![get_orders()]).analysis;
    a.inputs = Some(analysis_inputs(&s));
    status.analysis = Some(a);
    assert!(!analysis_due(
        &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
        &status,
        t0 + day / 2
    ));
    assert!(
        analysis_due(
            &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            &status,
            t0 + day
        ),
        "regenerateEvery 24h elapsed"
    );
    s.approved_revision = Some(format!("sha256:{}", "0".repeat(64)));
    s.drift.interval = "10m".to_string();
    assert!(
        !analysis_due(
            &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            &status,
            t0 + day / 2
        ),
        "approving does not regenerate"
    );
    s.forbid = vec!["iam:*".to_string()];
    assert!(
        analysis_due(
            &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            &status,
            t0 + day / 2
        ),
        "forbid changed"
    );
    let mut observe = spec(Mode::Observe, Approval::Manual);
    observe.approved_revision = s.approved_revision.clone();
    assert_ne!(
        analysis_inputs(&observe),
        analysis_inputs(&spec(Mode::Recommend, Approval::Manual))
    );
    assert_eq!(
        analysis_inputs(&spec(Mode::Recommend, Approval::Manual)),
        analysis_inputs(&spec(Mode::Enforce, Approval::Automatic)),
        "Recommend → Enforce keeps the reviewed proposal"
    );
}

#[test]
fn failure_marks_ready_false_and_keeps_the_rest() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, _) = enforced(&s, vec![get_orders()]);
    let status = failed(
        &first.status,
        2,
        T1,
        "ApplyFailed",
        "AttachRolePolicy: denied",
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ApplyFailed")
    );
    assert_eq!(ready.last_transition_time, T1);
    assert_eq!(ready.observed_generation, Some(2));
    assert_eq!(status.applied, first.status.applied);
    assert_eq!(status.conditions.len(), first.status.conditions.len());
    // Failing again keeps the transition time.
    let again = failed(&status, 2, "2025-01-03T00:00:00Z", "Throttled", "slow down");
    let ready = again
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.last_transition_time, T1);
    assert_eq!(ready.reason, "Throttled");
}

#[test]
fn a_half_done_apply_claims_nothing() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let p = plan(&s, &o);
    assert!(p.status.applied.is_some());
    // The put failed after the backup was written.
    let status = apply_failed(
        &p,
        &o.previous,
        true,
        1,
        T0,
        "ApplyFailed",
        "PutPolicyVersion: denied",
    );
    assert_eq!(status.applied, None);
    assert_eq!(status.backup, p.status.backup, "the backup was written");
    assert_eq!(status.proposal, p.status.proposal, "the proposal stands");
    for type_ in ["InSync", "Ready"] {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "ApplyFailed")
        );
    }
    let drifted = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Drifted")
        .unwrap();
    assert_eq!(
        drifted.status, "Unknown",
        "not claimed in sync: {drifted:?}"
    );
    // The backup itself failed: no backup is named.
    let status = apply_failed(
        &p,
        &o.previous,
        false,
        1,
        T0,
        "ApplyFailed",
        "ConfigMap: forbidden",
    );
    assert_eq!(status.backup, None);
}

#[test]
fn backup_names_are_the_resource_uid() {
    // A uid is 36 characters, so the name always fits (253), and only an existing resource
    // has one: no one can make the name before the resource exists.
    let name = backup_config_map(UID);
    assert_eq!(name, format!("iam-tailor-backup-{UID}"));
    assert!(name.len() <= 63);
}

#[test]
fn ready_and_approval_transitions_are_events_once() {
    let mut bad = spec(Mode::Enforce, Approval::Manual);
    bad.window = "soon".to_string();
    let p = plan(&bad, &observed(Default::default(), original_role(), None));
    let e = p.events.iter().find(|e| e.reason == "InvalidSpec").unwrap();
    assert_eq!(e.type_, EventType::Warning);
    assert!(e.note.contains("window"), "{}", e.note);
    // Still invalid next time: no new event.
    let again = plan(&bad, &next(&p, original_role()));
    assert!(again.events.is_empty(), "{:#?}", again.events);

    // Manual approval pending: said once, with the revision to approve.
    let s = spec(Mode::Enforce, Approval::Manual);
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let p = plan(&s, &o);
    let e = p
        .events
        .iter()
        .find(|e| e.reason == "AwaitingApproval")
        .unwrap();
    assert!(
        e.note.contains(&set_revision(&[get_orders()])),
        "{}",
        e.note
    );
    assert!(plan(&s, &next(&p, original_role())).events.is_empty());

    // The role disappears: Ready turns False with a new reason, a Warning.
    let mut gone = next(&p, original_role());
    gone.role = RoleState::NotFound;
    let p = plan(&s, &gone);
    let e = p
        .events
        .iter()
        .find(|e| e.reason == "RoleNotFound")
        .unwrap();
    assert_eq!(e.type_, EventType::Warning);
}

#[test]
fn a_removed_boundary_is_put_back_a_changed_one_only_reported() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, mut role) = enforced(&s, vec![get_orders()]);
    assert_eq!(
        first
            .status
            .applied
            .as_ref()
            .unwrap()
            .permissions_boundary
            .as_deref(),
        Some(BOUNDARY)
    );
    role.permissions_boundary = None;
    let p = plan(&s, &next(&first, role.clone()));
    assert_eq!(
        p.operations,
        [Operation::SetPermissionsBoundary {
            arn: BOUNDARY.to_string()
        }]
    );
    assert_condition(&p, "Drifted", TRUE, "Reverting");

    role.permissions_boundary = Some(ADMIN.to_string());
    let p = plan(&s, &next(&first, role));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Drifted", TRUE, "BoundaryChanged");
    assert_condition(&p, "Ready", FALSE, "BoundaryChanged");
    assert_condition(&p, "InSync", TRUE, "InSync");
    let message = condition(&p, "Drifted").message.clone().unwrap();
    assert!(message.contains("never replaces"), "{message}");
    let warning = p
        .events
        .iter()
        .find(|e| e.reason == "BoundaryChanged")
        .unwrap();
    assert_eq!(warning.type_, EventType::Warning);
}

#[test]
fn failing_the_same_way_again_writes_the_same_status() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let planned = plan(&s, &o);
    remember(&planned);
    let first = apply_failed(&planned, &o.previous, true, 1, T0, "Throttled", "throttled");
    // A day later the next reconcile plans the same apply (the backup exists now) and fails
    // at the same step.
    let mut again = observed(first.clone(), original_role(), None);
    again.now = T1.to_string();
    let second = apply_failed(
        &plan(&s, &again),
        &again.previous,
        false,
        1,
        T1,
        "Throttled",
        "throttled",
    );
    assert_eq!(second, first);
    for type_ in ["InSync", "Ready"] {
        let c = second.conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(c.last_transition_time, T0, "{type_}");
    }
    // Recovering is a transition.
    let recovered = plan(&s, &again);
    assert_eq!(condition(&recovered, "Ready").last_transition_time, T1);
}

fn job(id: &str) -> AnalysisJob {
    AnalysisJob {
        source: JobSource::AccessAnalyzer,
        job_id: id.to_string(),
        started_at: T0.to_string(),
        inputs: "sha256:inputs".to_string(),
        ..AnalysisJob::default()
    }
}

/// Athena's queries share the job model: kept in status with the days answered so far, looked
/// at again within seconds (not at Access Analyzer's poll), and the last analysis stands
/// while a regeneration's queries run.
#[test]
fn running_athena_queries_are_a_job_in_status_looked_at_within_seconds() {
    let queries = AnalysisJob {
        source: JobSource::Athena,
        job_id: "q-1 q-2".to_string(),
        days_answered: Some(88),
        days: Some(91),
        ..job("")
    };
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Running(queries.clone()));
    o.analyzer_poll_secs = 60;
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_eq!(p.status.job, Some(queries.clone()));
    assert_condition(&p, "Analyzed", UNKNOWN, "AthenaQueriesRunning");
    assert_eq!(
        condition(&p, "Analyzed").message.as_deref(),
        Some(
            format!("88 of 91 days answered; Athena queries running since {T0}: q-1 q-2").as_str()
        )
    );
    assert_eq!(p.requeue, Requeue::After(ATHENA_LOOK_SECS));
    let done = plan(
        &spec(Mode::Recommend, Approval::Manual),
        &Observed {
            analysis: Some(analysis(vec![get_orders()])),
            ..next(&p, original_role())
        },
    );
    assert_eq!(done.status.job, None);
    let mut again = next(&done, original_role());
    again.analyzer = Some(Generation::Running(queries.clone()));
    let regenerating = plan(&spec(Mode::Recommend, Approval::Manual), &again);
    assert_condition(&regenerating, "Analyzed", TRUE, "Analyzed");
    assert_eq!(regenerating.status.job, Some(queries));
    assert_eq!(regenerating.requeue, Requeue::After(ATHENA_LOOK_SECS));
}

#[test]
fn unresolved_placeholders_are_never_applied() {
    let mut result = analysis(vec![get_orders()]);
    result.unresolved = vec![Unresolved {
        action: "dynamodb:Query".to_string(),
        resource: "arn:aws:dynamodb:${Region}:${Account}:table/${TableName}".to_string(),
        placeholders: vec!["Region".into(), "Account".into(), "TableName".into()],
    }];
    let p = held_whatever_the_approval(result, "UnresolvedPlaceholders");
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains("Region, Account, TableName in dynamodb:Query"),
        "{message}"
    );
    let proposal = p.status.proposal.as_ref().unwrap();
    assert_eq!(proposal.unresolved_placeholders.len(), 1);
}

/// Plans `result` in Enforce: nothing applied, `Approved` and `Ready` False for `reason`,
/// automatically and even when a human approves that revision. The first plan.
fn held_whatever_the_approval(result: AnalysisResult, reason: &str) -> Plan {
    let o = observed(Default::default(), original_role(), Some(result));
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "ProposalReady", TRUE, "ProposalReady");
    assert_condition(&p, "Approved", FALSE, reason);
    assert_condition(&p, "Ready", FALSE, reason);
    let mut manual = spec(Mode::Enforce, Approval::Manual);
    manual.approved_revision = Some(p.status.proposal.as_ref().unwrap().revision.clone());
    let again = plan(&manual, &next(&p, original_role()));
    assert!(again.operations.is_empty());
    assert_condition(&again, "Approved", FALSE, reason);
    p
}

/// A proposal without PassRole for a profile the role passed would break its next launch.
#[test]
fn unresolved_instance_profiles_are_never_applied() {
    let mut result = analysis(vec![get_orders()]);
    result.unresolved_profiles = vec![UnresolvedInstanceProfile {
        instance_profile: "arn:aws:iam::444455556666:instance-profile/web".to_string(),
        reason: "not of the role's account".to_string(),
    }];
    let p = held_whatever_the_approval(result, "UnresolvedInstanceProfiles");
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains("instance-profile/web (not of"),
        "{message}"
    );
    assert!(message.contains("spec.instanceProfiles"), "{message}");
    let proposal = p.status.proposal.as_ref().unwrap();
    assert_eq!(proposal.unresolved_instance_profiles_count, 1);
}

/// An analysis made without IAM's last-accessed data (moto, an operator role without
/// GenerateServiceLastAccessedDetails).
fn without_last_accessed() -> AnalysisResult {
    let mut result = analysis(vec![get_orders()]);
    result.analysis.last_accessed = None;
    result.analysis.last_accessed_unavailable =
        Some("GenerateServiceLastAccessedDetails: AccessDenied".to_string());
    result
}

#[test]
fn without_last_accessed_data_observe_and_recommend_report_and_enforce_waits() {
    for mode in [Mode::Observe, Mode::Recommend] {
        let o = observed(
            Default::default(),
            original_role(),
            Some(without_last_accessed()),
        );
        let p = plan(&spec(mode, Approval::Manual), &o);
        assert!(p.operations.is_empty());
        assert_condition(&p, "Analyzed", TRUE, "Analyzed");
        assert_condition(&p, "LastAccessedAvailable", FALSE, "LastAccessedFailed");
        let message = condition(&p, "LastAccessedAvailable")
            .message
            .clone()
            .unwrap();
        assert!(message.contains("AccessDenied"), "{message}");
        assert!(
            (p.events.iter())
                .any(|e| e.type_ == EventType::Warning && e.reason == "LastAccessedUnavailable"),
            "{:?}",
            p.events
        );
        assert_eq!(p.status.proposal.is_some(), mode == Mode::Recommend);
        assert_condition(&p, "Ready", TRUE, "Ready");
    }
    // Enforce, Automatic: the proposal stands and says so, but is not applied.
    let o = observed(
        Default::default(),
        original_role(),
        Some(without_last_accessed()),
    );
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    let proposal = p.status.proposal.clone().unwrap();
    assert!(proposal.last_accessed_unavailable.is_some());
    assert_condition(&p, "Approved", FALSE, "LastAccessedUnavailable");
    assert_condition(&p, "Ready", FALSE, "LastAccessedUnavailable");
    // A human's approval of that revision does not apply it either.
    let mut manual = spec(Mode::Enforce, Approval::Manual);
    manual.approved_revision = Some(proposal.revision.clone());
    let again = plan(&manual, &next(&p, original_role()));
    assert!(again.operations.is_empty());
    assert_condition(&again, "Approved", FALSE, "LastAccessedUnavailable");
    // The Warning is not repeated for the same analysis.
    assert!(!(again.events.iter()).any(|e| e.reason == "LastAccessedUnavailable"));
    // Opting out applies it.
    manual.last_accessed.required = false;
    let applied = plan(&manual, &next(&p, original_role()));
    assert!(!applied.operations.is_empty());
    assert_condition(&applied, "Approved", TRUE, "Approved");
    // An analysis with the data lifts the gate.
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let with = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert_condition(
        &with,
        "LastAccessedAvailable",
        TRUE,
        "LastAccessedAvailable",
    );
    assert!(!with.operations.is_empty());
}

#[test]
fn enforce_without_last_accessed_data_asks_again_soon() {
    let t0 = crate::time::parse_date(T0).unwrap();
    let minute = 60 * 1_000_000_000i128;
    let status = |result: AnalysisResult, s: &LeastPrivilegeRoleSpec| {
        let mut a = result.analysis;
        a.inputs = Some(analysis_inputs(s));
        LeastPrivilegeRoleStatus {
            analysis: Some(a),
            ..Default::default()
        }
    };
    let mut enforce = spec(Mode::Enforce, Approval::Automatic);
    let due = |s: &LeastPrivilegeRoleSpec, status: &LeastPrivilegeRoleStatus, at| {
        analysis_due(
            &validate(s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            status,
            at,
        )
    };
    let lacking = status(without_last_accessed(), &enforce);
    assert!(!due(&enforce, &lacking, t0 + 14 * minute));
    assert!(due(&enforce, &lacking, t0 + 15 * minute));
    let full = status(analysis(vec![get_orders()]), &enforce);
    assert!(!due(&enforce, &full, t0 + 15 * minute), "regenerateEvery");
    let recommend = spec(Mode::Recommend, Approval::Manual);
    let lacking = status(without_last_accessed(), &recommend);
    assert!(
        !due(&recommend, &lacking, t0 + 15 * minute),
        "nothing waits"
    );
    enforce.last_accessed.required = false;
    let lacking = status(without_last_accessed(), &enforce);
    assert!(!due(&enforce, &lacking, t0 + 15 * minute), "nothing waits");
}

#[test]
fn a_running_job_is_kept_in_status_and_polled_soon() {
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Running(job("j-1")));
    o.analyzer_poll_secs = 7;
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_eq!(p.status.job, Some(job("j-1")));
    assert_condition(&p, "Analyzed", UNKNOWN, "GenerationRunning");
    assert_condition(&p, "Ready", TRUE, "Ready");
    assert_eq!(p.requeue, Requeue::After(7));
    assert!(p.operations.is_empty());

    // Its result clears the job; a regeneration under way keeps the last analysis.
    let done = plan(
        &spec(Mode::Recommend, Approval::Manual),
        &Observed {
            analysis: Some(analysis(vec![get_orders()])),
            ..next(&p, original_role())
        },
    );
    assert_eq!(done.status.job, None);
    assert_condition(&done, "Analyzed", TRUE, "Analyzed");
    let mut again = next(&done, original_role());
    again.analyzer = Some(Generation::Running(job("j-2")));
    let regenerating = plan(&spec(Mode::Recommend, Approval::Manual), &again);
    assert_condition(&regenerating, "Analyzed", TRUE, "Analyzed");
    assert_eq!(regenerating.status.proposal, done.status.proposal);
    assert_eq!(regenerating.status.job, Some(job("j-2")));
    assert_eq!(regenerating.requeue, Requeue::After(30));
}

#[test]
fn waiting_for_the_account_is_not_a_problem_but_the_quota_is() {
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Queued {
        message: "1 other resource(s) of account 123456789012 first".to_string(),
    });
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_condition(&p, "Analyzed", UNKNOWN, "WaitingForAccessAnalyzer");
    assert_condition(&p, "Ready", TRUE, "Ready");
    assert_eq!(p.requeue, Requeue::After(30));

    let mut o = observed(Default::default(), original_role(), None);
    o.now = "2025-01-01T23:00:00Z".to_string();
    o.analyzer = Some(Generation::QuotaExceeded {
        message: "ServiceQuotaExceededException: daily limit".to_string(),
    });
    // Drift checks go on meanwhile; with them hours apart, the next look is at 00:00 UTC.
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.drift.interval = "2h".to_string();
    let p = plan(&s, &o);
    assert_condition(&p, "Analyzed", FALSE, "QuotaExceeded");
    assert_condition(&p, "Ready", FALSE, "QuotaExceeded");
    assert_eq!(p.requeue, Requeue::After(3_600), "until 00:00 UTC");
}

#[test]
fn a_failed_job_is_reported_once_and_kept() {
    let failed = AnalysisJob {
        failure: Some("FAILED: SERVICE_ERROR: trail unreadable".to_string()),
        ..job("j-1")
    };
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Failed(failed.clone()));
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_condition(&p, "Analyzed", FALSE, "GenerationFailed");
    assert_condition(&p, "Ready", FALSE, "GenerationFailed");
    assert_eq!(p.status.job, Some(failed.clone()));
    assert!(p.events.iter().any(|e| e.reason == "GenerationFailed"));
    let mut again = next(&p, original_role());
    again.analyzer = Some(Generation::Failed(failed));
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &again);
    assert!(!p.events.iter().any(|e| e.reason == "GenerationFailed"));
}

#[test]
fn access_analyzer_sources_are_checked() {
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.cloud_trail.s3 = None;
    s.cloud_trail.access_analyzer = Some(crate::controller::crd::AccessAnalyzerSource {
        trail_arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into(),
        access_role_arn: "arn:aws:iam::123456789012:role/aa".into(),
        regions: vec![],
        all_regions: false,
    });
    s.window = "91d".to_string();
    let message = validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap_err();
    assert!(message.contains("regions or allRegions"), "{message}");
    assert!(message.contains("at most 90 days"), "{message}");
    s.window = "90d".to_string();
    s.cloud_trail.access_analyzer.as_mut().unwrap().all_regions = true;
    assert_eq!(
        validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).map(|_| ()),
        Ok(())
    );
}

fn validated(findings: Vec<(&str, &str)>, no_new: bool, not_granted: Option<bool>) -> Validation {
    use crate::controller::crd::{CheckResult, ValidationFinding};
    Validation {
        findings: findings
            .into_iter()
            .map(|(severity, code)| ValidationFinding {
                severity: severity.to_string(),
                code: code.to_string(),
                message: "m".to_string(),
                locations: vec!["Statement[0].Resource (1:2)".to_string()],
            })
            .collect(),
        no_new_access: CheckResult {
            passed: no_new,
            reasons: vec!["New access in the statement with index: 0.".to_string()],
        },
        access_not_granted: not_granted.map(|passed| CheckResult {
            passed,
            reasons: vec!["iam:PassRole".to_string()],
        }),
    }
}

#[test]
fn access_analyzer_gates_block_an_approved_apply() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.validation.access_analyzer = true;
    let run = |s: &LeastPrivilegeRoleSpec, validation: Option<Validation>| {
        let mut result = analysis(vec![get_orders()]);
        result.validation = validation;
        plan(
            s,
            &observed(Default::default(), original_role(), Some(result)),
        )
    };
    let cases = [
        (None, "AwaitingValidation"),
        (
            Some(validated(
                vec![("SECURITY_WARNING", "PASS_ROLE_WITH_STAR_IN_RESOURCE")],
                true,
                None,
            )),
            "ValidationFindings",
        ),
        (
            Some(validated(vec![("WARNING", "MISSING_VERSION")], false, None)),
            "AccessAnalyzerDisagrees",
        ),
        (
            Some(validated(vec![], true, Some(false))),
            "ForbiddenAccessGranted",
        ),
    ];
    for (validation, reason) in cases {
        let p = run(&s, validation);
        assert!(p.operations.is_empty(), "{reason}: {:#?}", p.operations);
        assert_condition(&p, "Approved", FALSE, reason);
        assert_condition(&p, "Ready", FALSE, reason);
        assert!(
            p.events
                .iter()
                .any(|e| e.reason == reason && e.type_ == EventType::Warning),
            "{reason}: {:?}",
            p.events
        );
    }
    let p = run(
        &s,
        Some(validated(
            vec![("SECURITY_WARNING", "PASS_ROLE_WITH_STAR_IN_RESOURCE")],
            true,
            None,
        )),
    );
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains(
            "SECURITY_WARNING PASS_ROLE_WITH_STAR_IN_RESOURCE at Statement[0].Resource (1:2)"
        ),
        "{message}"
    );
    // An allowed code, warnings and passing checks: applied.
    s.validation.allow = vec!["PASS_ROLE_WITH_STAR_IN_RESOURCE".to_string()];
    let p = run(
        &s,
        Some(validated(
            vec![
                ("SECURITY_WARNING", "PASS_ROLE_WITH_STAR_IN_RESOURCE"),
                ("WARNING", "W"),
            ],
            true,
            Some(true),
        )),
    );
    assert_condition(&p, "Approved", TRUE, "Approved");
    assert!(!p.operations.is_empty());
    // Without spec.validation the verdicts are not consulted.
    let p = run(&spec(Mode::Enforce, Approval::Automatic), None);
    assert_condition(&p, "Approved", TRUE, "Approved");
}

/// The attacks on the never-widen promise, one test each.
mod attacks;
mod boundary;

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

/// What the shell reads for a rollback: `versions` of iam-tailor's first policy (newest
/// first) and the original's AWS managed policy.
fn read_for_rollback(o: &mut Observed, versions: Vec<Policy>) {
    o.rollback = Some(Ok(vec![versions]));
    o.original_aws_managed = Some(Ok(s3_full_read()));
}

/// The original's AWS managed policy, as the shell reads it.
fn s3_full_read() -> BTreeMap<String, Policy> {
    BTreeMap::from([(S3_FULL.to_string(), doc("s3:*", "*"))])
}

fn orders_read_write() -> Policy {
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::orders/*"}]}"#,
    )
    .unwrap()
}

/// Applies read+write, then read only: the role as it is after both, and the plan of the second.
fn applied_twice(s: &LeastPrivilegeRoleSpec) -> (Plan, LiveRole) {
    let (first, role) = enforced(s, vec![orders_read_write()]);
    let narrower = plan(
        s,
        &Observed {
            analysis: Some(analysis(vec![get_orders()])),
            ..next(&first, role.clone())
        },
    );
    let mut store = BTreeMap::new();
    let role = apply(&role, &narrower.operations, &mut store);
    assert_eq!(
        (narrower.status.applied.as_ref()).map(|a| a.revision.clone()),
        Some(set_revision(&[get_orders()]))
    );
    (narrower, role)
}

#[test]
fn a_rollback_puts_an_earlier_revision_back_from_iam_s_versions() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    let (narrower, role) = applied_twice(&s);
    let earlier = set_revision(&[orders_read_write()]);
    s.rollback_to = Some(earlier.clone());
    let mut o = next(&narrower, role.clone());
    read_for_rollback(&mut o, vec![get_orders(), orders_read_write()]);
    let p = plan(&s, &o);
    // Wider than the role is now, within what it held before iam-tailor: applied.
    assert_condition(&p, "Approved", TRUE, "RollbackApproved");
    assert_eq!(
        p.operations,
        [Operation::PutManagedPolicy {
            name: "iam-tailor-checkout-api".to_string(),
            arn: OURS.to_string(),
            document: orders_read_write().canonical_json(),
        }]
    );
    let applied = p.status.applied.clone().unwrap();
    assert_eq!(
        (applied.revision.as_str(), applied.rollback),
        (earlier.as_str(), true)
    );
    assert_eq!(p.status.history[0].revision, set_revision(&[get_orders()]));
    assert_eq!(p.completion[0].reason, "RolledBack");
    assert!(
        p.completion[0].note.contains("from sha256:"),
        "{:?}",
        p.completion
    );

    // Held there: the next look finds it applied and writes nothing, a new proposal included.
    let role = apply(&role, &p.operations, &mut BTreeMap::new());
    let mut again = next(&p, role);
    again.analysis = Some(analysis(vec![get_orders()]));
    read_for_rollback(&mut again, vec![orders_read_write(), get_orders()]);
    let held = plan(&s, &again);
    assert!(held.operations.is_empty(), "{:#?}", held.operations);
    assert_condition(&held, "Approved", TRUE, "RolledBack");
    assert_condition(&held, "InSync", TRUE, "InSync");
}

#[test]
fn a_rollback_never_goes_past_what_the_role_held_before() {
    // A version someone else created on iam-tailor's policy, wider than the original role.
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    let (narrower, role) = applied_twice(&s);
    let forged = doc("iam:*", "*");
    s.rollback_to = Some(set_revision(std::slice::from_ref(&forged)));
    let mut o = next(&narrower, role.clone());
    read_for_rollback(&mut o, vec![get_orders(), forged]);
    let p = plan(&s, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Approved", FALSE, "NotProvablyNarrower");
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains("before iam-tailor's first write"),
        "{message}"
    );

    // Without the AWS managed policy's document, the ceiling is the role as it is: the
    // earlier, wider revision is not applied either.
    s.rollback_to = Some(set_revision(&[orders_read_write()]));
    read_for_rollback(&mut o, vec![get_orders(), orders_read_write()]);
    o.original_aws_managed = Some(Err("AccessDenied".to_string()));
    let unknown = plan(&s, &o);
    assert!(unknown.operations.is_empty());
    let message = condition(&unknown, "Approved").message.clone().unwrap();
    assert!(
        message.contains("not known here: AccessDenied"),
        "{message}"
    );

    // A revision IAM does not keep: nothing written, and the status says why.
    s.rollback_to = Some(format!("sha256:{}", "0".repeat(64)));
    read_for_rollback(&mut o, vec![get_orders(), orders_read_write()]);
    let missing = plan(&s, &o);
    assert!(missing.operations.is_empty());
    assert_condition(&missing, "Approved", FALSE, "RollbackNotFound");
    assert_condition(&missing, "Ready", FALSE, "RollbackNotFound");
    assert_eq!(missing.status.applied, narrower.status.applied);
}

#[test]
fn a_revision_of_several_documents_is_found_among_their_versions() {
    let (a, b, c) = (
        get_orders(),
        orders_read_write(),
        doc("sqs:SendMessage", "*"),
    );
    let versions = vec![vec![a.clone(), b.clone()], vec![c.clone(), a.clone()]];
    let wanted = vec![b.clone(), a.clone()];
    assert_eq!(
        rollback::find_revision(&versions, &set_revision(&wanted)),
        Ok(wanted)
    );
    assert_eq!(
        rollback::find_revision(&versions, &set_revision(std::slice::from_ref(&a))),
        Ok(vec![a.clone()])
    );
    let absent =
        rollback::find_revision(&versions, &set_revision(std::slice::from_ref(&c))).unwrap_err();
    assert!(absent.contains("6 combinations"), "{absent}");
    // Too many documents to try every combination: an explicit limit, not a long search.
    let many = vec![vec![a.clone(), b.clone(), c.clone(), a.clone(), b.clone()]; 7];
    let elsewhere = set_revision(&[doc("kms:Decrypt", "*")]);
    let capped = rollback::find_revision(&many, &elsewhere).unwrap_err();
    assert!(capped.contains("more than 4096"), "{capped}");
    // Only Enforce rolls back.
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.rollback_to = Some(set_revision(&[a]));
    assert_eq!(rollback_wanted(&s), None);
}

/// Where the refused calls of [`refused`] come from.
const SOURCE_IP: &str = "198.51.100.7";

/// The role's calls after the apply: refused `(action, resource, event id)`s at noon on T0's day.
fn refused(calls: &[(&str, &str, &str)]) -> Usage {
    let mut usage = Usage::default();
    for (action, resource, id) in calls {
        let call = crate::usage::Refused {
            event_id: id,
            source_ip: SOURCE_IP,
        };
        usage.record_denied_grant(action, resource, &call, "2025-01-01T12:00:00Z");
    }
    usage
}

const ORDER_X: &str = "arn:aws:s3:::orders/x.json";
const NEW_USER: &str = "arn:aws:iam::123456789012:user/x";

fn restore_put(document: &Policy) -> Operation {
    Operation::PutInlinePolicy {
        name: RESTORE_POLICY.to_string(),
        document: document.canonical_json(),
    }
}

#[test]
fn a_refused_call_the_original_allowed_is_given_back_and_expires() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut o = next(&first, role.clone());
    o.after_apply = Some(refused(&[
        ("s3:PutObject", ORDER_X, "ev-put"),
        ("iam:CreateUser", NEW_USER, "ev-iam"),
    ]));
    o.original_aws_managed = Some(Ok(s3_full_read()));
    let p = plan(&s, &o);
    // Exactly that action on that resource; the never-held one is reported, not granted.
    assert_eq!(p.operations, [restore_put(&doc("s3:PutObject", ORDER_X))]);
    let restore = p.status.restore.clone().unwrap();
    let held = &restore.restored[0];
    assert_eq!(
        (
            held.action.as_str(),
            held.resource.as_str(),
            held.event_id.as_str()
        ),
        ("s3:PutObject", ORDER_X, "ev-put")
    );
    // The audit: where the refused call came from, and the action's access level.
    assert_eq!(
        (held.source_ip.as_str(), held.access_level.as_str()),
        (SOURCE_IP, "Write")
    );
    assert_eq!(
        (
            held.denied_at.as_str(),
            held.restored_at.as_str(),
            held.expires.as_str()
        ),
        ("2025-01-01T12:00:00Z", T1, "2025-01-31T12:00:00Z")
    );
    assert_eq!(restore.restored.len(), 1);
    assert_eq!(restore.not_restored[0].action, "iam:CreateUser");
    assert!(restore.not_restored[0].reason.contains("never granted"));
    assert_eq!(p.restored, BTreeMap::from([("Write".to_string(), 1)]));
    assert_eq!(p.completion[0].reason, "PermissionRestored");
    let note = &p.completion[0].note;
    assert!(
        note.contains(&format!(
            "s3:PutObject on {ORDER_X} (Write; refused call ev-put from {SOURCE_IP})"
        )),
        "{note}"
    );
    assert!(p.events.iter().any(|e| e.reason == "DeniedNotRestored"));
    // Not drift: the role holds the applied revision.
    assert_condition(&p, "InSync", TRUE, "InSync");

    // The next look: held, nothing written, nothing new to say.
    let role = apply(&role, &p.operations, &mut BTreeMap::new());
    let mut again = next(&p, role.clone());
    again.after_apply = o.after_apply.clone();
    again.original_aws_managed = Some(Ok(s3_full_read()));
    let held = plan(&s, &again);
    assert!(held.operations.is_empty(), "{:#?}", held.operations);
    assert_eq!(held.status.restore, p.status.restore);
    assert!(held.restored.is_empty() && held.completion.is_empty());
    assert!(!held.events.iter().any(|e| e.reason == "DeniedNotRestored"));

    // A use on day 20 keeps it 30 days from then; past that, it is taken away.
    let mut used = refused(&[]);
    used.record_use("s3:PutObject", ORDER_X, "2025-01-20T00:00:00Z");
    let mut later = next(&held, role.clone());
    later.now = "2025-02-10T00:00:00Z".to_string();
    later.after_apply = Some(used);
    later.original_aws_managed = Some(Ok(s3_full_read()));
    let kept = plan(&s, &later);
    assert!(kept.operations.is_empty(), "{:#?}", kept.operations);
    let expires = &kept.status.restore.as_ref().unwrap().restored[0].expires;
    assert_eq!(expires, "2025-02-19T00:00:00Z");
    let mut gone = next(&kept, role);
    gone.now = "2025-02-20T00:00:00Z".to_string();
    gone.after_apply = Some(refused(&[]));
    gone.original_aws_managed = Some(Ok(s3_full_read()));
    let expired = plan(&s, &gone);
    assert_eq!(
        expired.operations,
        [Operation::DeleteInlinePolicy {
            name: RESTORE_POLICY.to_string()
        }]
    );
    assert_eq!(expired.status.restore, None);
}

#[test]
fn a_forged_restore_entry_or_an_old_refusal_gives_nothing_back() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut forged = first.clone();
    forged.status.restore = Some(crate::controller::crd::RestoreStatus {
        restored: vec![crate::controller::crd::RestoredGrant {
            action: "iam:CreateUser".to_string(),
            resource: "*".to_string(),
            expires: "2099-01-01T00:00:00Z".to_string(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let mut o = next(&forged, role.clone());
    // Refused before the apply: the original refused it too, whatever the reason.
    let mut before = Usage::default();
    let old = crate::usage::Refused {
        event_id: "ev-old",
        source_ip: SOURCE_IP,
    };
    before.record_denied_grant("s3:PutObject", ORDER_X, &old, "2024-12-31T00:00:00Z");
    o.after_apply = Some(before);
    o.original_aws_managed = Some(Ok(s3_full_read()));
    let p = plan(&s, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_eq!(p.status.restore, None);

    // The original policies unknown: neither given back nor taken away.
    let mut unknown = next(&first, role);
    unknown.after_apply = Some(refused(&[("s3:PutObject", ORDER_X, "ev-put")]));
    unknown.original_aws_managed = Some(Err("AccessDenied on GetPolicy".to_string()));
    let p = plan(&s, &unknown);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    let blocked = p.status.restore.unwrap().blocked.unwrap();
    assert!(blocked.contains("AccessDenied on GetPolicy"), "{blocked}");

    // What spec.forbid names is never given back, even if the role held it before.
    let mut forbidding = spec(Mode::Enforce, Approval::Automatic);
    forbidding.forbid = vec!["s3:Delete*".to_string()];
    let (first, role) = enforced(&forbidding, vec![get_orders()]);
    let mut o = next(&first, role);
    o.after_apply = Some(refused(&[("s3:DeleteObject", ORDER_X, "ev-del")]));
    o.original_aws_managed = Some(Ok(s3_full_read()));
    let p = plan(&forbidding, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    let restore = p.status.restore.unwrap();
    assert!(restore.restored.is_empty());
    assert!(
        restore.not_restored[0]
            .reason
            .contains("spec.forbid s3:Delete*")
    );

    // Off, or not Enforce: no restore at all.
    let mut off = spec(Mode::Enforce, Approval::Automatic);
    off.on_access_denied.restore = false;
    let spec_off = validate(&off, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
    assert_eq!(spec_off.restore_for, None);
    let recommend = spec(Mode::Recommend, Approval::Manual);
    let valid = validate(&recommend, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
    assert_eq!(restore_since(&valid, &first.status, 0), None);
}

#[test]
fn a_new_apply_keeps_what_was_given_back() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![orders_read_write()]);
    let mut o = next(&first, role.clone());
    o.after_apply = Some(refused(&[("dynamodb:GetItem", "*", "ev-ddb")]));
    o.original_aws_managed = Some(Ok(s3_full_read()));
    let restored = plan(&s, &o);
    assert_eq!(
        restored.operations,
        [restore_put(&doc("dynamodb:GetItem", "*"))]
    );
    let role = apply(&role, &restored.operations, &mut BTreeMap::new());
    // A narrower proposal is applied: the restore policy stays, every state proven.
    let mut narrower = next(&restored, role);
    narrower.analysis = Some(analysis(vec![get_orders()]));
    narrower.after_apply = o.after_apply.clone();
    narrower.original_aws_managed = Some(Ok(s3_full_read()));
    let p = plan(&s, &narrower);
    assert_condition(&p, "InSync", TRUE, "Applied");
    assert!(!p.operations.is_empty());
    assert!(
        !(p.operations.iter()).any(|op| matches!(op, Operation::DeleteInlinePolicy { .. })),
        "{:#?}",
        p.operations
    );
    assert_eq!(p.status.restore.unwrap().restored.len(), 1);
}

/// The original policies held everything, as AdministratorAccess does.
fn admin_read() -> BTreeMap<String, Policy> {
    BTreeMap::from([(S3_FULL.to_string(), doc("*", "*"))])
}

const ADMIN_USER: &str = "arn:aws:iam::123456789012:user/admin";

/// What a thief of the role's credentials is refused first, and one data call.
fn stolen_credentials_refused() -> Usage {
    refused(&[
        ("iam:CreateAccessKey", ADMIN_USER, "ev-key"),
        ("iam:AttachRolePolicy", ROLE_ARN, "ev-attach"),
        ("iam:PutRolePolicy", ROLE_ARN, "ev-put"),
        ("s3:DeleteObject", ORDER_X, "ev-del"),
    ])
}

/// The restore's document holding exactly these grants.
fn restore_doc(grants: &[(&str, &str)]) -> Policy {
    let mut by_action: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (action, resource) in grants {
        by_action.entry(action).or_default().push(resource);
    }
    let statements: Vec<serde_json::Value> = (by_action.into_iter())
        .map(|(a, r)| serde_json::json!({"Effect": "Allow", "Action": a, "Resource": r}))
        .collect();
    Policy::from_value(&serde_json::json!({"Version": "2012-10-17", "Statement": statements}))
        .unwrap()
}

#[test]
fn a_thief_of_the_credentials_gets_nothing_sensitive_back_until_a_person_approves() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut o = next(&first, role.clone());
    o.after_apply = Some(stolen_credentials_refused());
    o.original_aws_managed = Some(Ok(admin_read()));
    let p = plan(&s, &o);
    // Only the data call comes back on its own.
    assert_eq!(
        p.operations,
        [restore_put(&doc("s3:DeleteObject", ORDER_X))]
    );
    let restore = p.status.restore.clone().unwrap();
    let pending: Vec<&str> = (restore.pending.iter())
        .map(|c| c.action.as_str())
        .collect();
    assert_eq!(
        pending,
        [
            "iam:AttachRolePolicy",
            "iam:CreateAccessKey",
            "iam:PutRolePolicy"
        ]
    );
    assert!(
        restore.pending[1]
            .reason
            .contains("privilege-sensitive, mints long-term")
    );
    assert!(restore.pending[0].reason.contains("Permissions management"));
    assert_eq!(restore.pending[1].event_id, "ev-key");
    let revision = restore.pending_revision.clone().unwrap();
    assert_eq!(
        revision,
        restore_doc(&[
            ("iam:AttachRolePolicy", ROLE_ARN),
            ("iam:CreateAccessKey", ADMIN_USER),
            ("iam:PutRolePolicy", ROLE_ARN),
        ])
        .revision()
    );
    let awaits: Vec<&PlannedEvent> = (p.events.iter())
        .filter(|e| e.reason == "RestoreAwaitsApproval")
        .collect();
    assert_eq!(awaits.len(), 1, "{:#?}", p.events);
    assert!(awaits[0].note.contains(&revision), "{}", awaits[0].note);
    assert_eq!(p.restored, BTreeMap::from([("Write".to_string(), 1)]));
    let pending = &p.status.restore.as_ref().unwrap().pending;
    assert!(
        pending
            .iter()
            .all(|c| c.access_level == "Permissions management" || c.access_level == "Write"),
        "{pending:#?}"
    );
    assert!(pending.iter().all(|c| c.source_ip == SOURCE_IP));

    // The next look: still pending, said once.
    let role = apply(&role, &p.operations, &mut BTreeMap::new());
    let mut again = next(&p, role.clone());
    again.after_apply = Some(stolen_credentials_refused());
    again.original_aws_managed = Some(Ok(admin_read()));
    let still = plan(&s, &again);
    assert!(still.operations.is_empty(), "{:#?}", still.operations);
    assert!(
        !still
            .events
            .iter()
            .any(|e| e.reason == "RestoreAwaitsApproval")
    );
    assert_eq!(still.status.restore, p.status.restore);

    // A person approves that revision: exactly those grants come back, through the proof.
    let mut approving = s.clone();
    approving.on_access_denied.approved_restore = Some(revision.clone());
    let approved = plan(&approving, &again);
    let everything = [
        ("iam:AttachRolePolicy", ROLE_ARN),
        ("iam:CreateAccessKey", ADMIN_USER),
        ("iam:PutRolePolicy", ROLE_ARN),
        ("s3:DeleteObject", ORDER_X),
    ];
    assert_eq!(
        approved.operations,
        [restore_put(&restore_doc(&everything))]
    );
    let restore = approved.status.restore.clone().unwrap();
    assert!(restore.pending.is_empty() && restore.pending_revision.is_none());
    assert_eq!(restore.approved.as_ref().unwrap().revision, revision);
    assert_eq!(restore.restored.len(), 4);
    assert_eq!(approved.restored.values().sum::<u64>(), 3);
    assert_eq!(
        approved.restored.get("Permissions management"),
        Some(&2),
        "{:?}",
        approved.restored
    );
    assert!(approved.completion[0].note.contains(", approved)"));
    // Held while the approval stands; nothing more to write.
    let role = apply(&role, &approved.operations, &mut BTreeMap::new());
    let mut held = next(&approved, role.clone());
    held.after_apply = Some(stolen_credentials_refused());
    held.original_aws_managed = Some(Ok(admin_read()));
    let kept = plan(&approving, &held);
    assert!(kept.operations.is_empty(), "{:#?}", kept.operations);
    assert_eq!(kept.status.restore, approved.status.restore);
    // The approval taken back: the sensitive grants go, the data call stays.
    let withdrawn = plan(&s, &held);
    assert_eq!(
        withdrawn.operations,
        [restore_put(&doc("s3:DeleteObject", ORDER_X))]
    );
    // Once they are gone, their refusals wait for a person again, under the same revision.
    let role = apply(&role, &withdrawn.operations, &mut BTreeMap::new());
    let mut after = next(&withdrawn, role);
    after.after_apply = Some(stolen_credentials_refused());
    after.original_aws_managed = Some(Ok(admin_read()));
    let waiting = plan(&s, &after);
    assert!(waiting.operations.is_empty(), "{:#?}", waiting.operations);
    assert_eq!(
        waiting.status.restore.unwrap().pending_revision,
        Some(revision)
    );
}

#[test]
fn a_forged_approval_gives_nothing_sensitive_back() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut o = next(&first, role.clone());
    o.after_apply = Some(refused(&[("iam:CreateAccessKey", ADMIN_USER, "ev-key")]));
    o.original_aws_managed = Some(Ok(admin_read()));
    let revision = plan(&s, &o)
        .status
        .restore
        .unwrap()
        .pending_revision
        .unwrap();
    // The spec approves the real revision; the status claims it for a wider grant, held.
    let wider = Grant {
        action: "iam:CreateAccessKey".to_string(),
        resource: "*".to_string(),
    };
    let mut forged = first.clone();
    forged.status.restore = Some(RestoreStatus {
        restored: vec![RestoredGrant {
            action: wider.action.clone(),
            resource: wider.resource.clone(),
            expires: "2099-01-01T00:00:00Z".to_string(),
            ..Default::default()
        }],
        approved: Some(ApprovedRestore {
            revision: revision.clone(),
            grants: vec![wider],
        }),
        ..Default::default()
    });
    let mut approving = s.clone();
    approving.on_access_denied.approved_restore = Some(revision.clone());
    let mut o = next(&forged, role);
    o.after_apply = Some(refused(&[("iam:CreateAccessKey", ADMIN_USER, "ev-key")]));
    o.original_aws_managed = Some(Ok(admin_read()));
    let p = plan(&approving, &o);
    // Only what the person approved: the refused call's own resource.
    assert_eq!(
        p.operations,
        [restore_put(&doc("iam:CreateAccessKey", ADMIN_USER))]
    );
    let restore = p.status.restore.unwrap();
    assert_eq!(restore.restored.len(), 1);
    assert_eq!(restore.approved.unwrap().grants[0].resource, ADMIN_USER);
}

#[test]
fn past_the_daily_budget_and_what_the_spec_names_wait_for_a_person() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.on_access_denied.restores_per_day = 1;
    s.on_access_denied.wait_for_approval = vec!["dynamodb:Delete*".to_string()];
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut o = next(&first, role);
    o.after_apply = Some(refused(&[
        ("s3:DeleteObject", ORDER_X, "ev-1"),
        ("s3:PutObject", ORDER_X, "ev-2"),
        ("dynamodb:DeleteItem", "*", "ev-3"),
    ]));
    o.original_aws_managed = Some(Ok(admin_read()));
    let p = plan(&s, &o);
    // The refusals in order: the spec's pattern waits; the first data call comes back; the
    // second is past the day's one automatic restore.
    assert_eq!(
        p.operations,
        [restore_put(&doc("s3:DeleteObject", ORDER_X))]
    );
    let pending = p.status.restore.unwrap().pending;
    let why: Vec<(&str, &str)> = (pending.iter())
        .map(|c| (c.action.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        why,
        [
            (
                "dynamodb:DeleteItem",
                "spec.onAccessDenied.waitForApproval dynamodb:Delete*: waits for a person"
            ),
            (
                "s3:PutObject",
                "past spec.onAccessDenied.restoresPerDay (1): waits for a person"
            ),
        ]
    );
}

/// `Allow *` on `*`, as an intruder would plant it.
fn everything() -> Policy {
    doc("*", "*")
}

#[test]
fn a_planted_restore_policy_is_drift_whatever_the_restore_holds() {
    let delete_restore = Operation::DeleteInlinePolicy {
        name: RESTORE_POLICY.to_string(),
    };
    let drifted = |p: &Plan| {
        let warning = p.events.iter().find(|e| e.reason == "Drifted").unwrap();
        assert!(
            warning.note.contains(
                "inline policy iam-tailor-restored holds what the restore did not give back"
            ),
            "{}",
            warning.note
        );
    };
    // Nothing given back, restore on or off, inline policies deleted or kept: it goes.
    let mut off = spec(Mode::Enforce, Approval::Automatic);
    off.on_access_denied.restore = false;
    let mut off_keeping = off.clone();
    off_keeping.inline_policies = InlinePolicies::Keep;
    for s in [spec(Mode::Enforce, Approval::Automatic), off, off_keeping] {
        let (first, role) = enforced(&s, vec![get_orders()]);
        let mut planted = role.clone();
        planted
            .inline
            .insert(RESTORE_POLICY.to_string(), everything());
        let p = plan(&s, &next(&first, planted.clone()));
        assert_eq!(p.operations, std::slice::from_ref(&delete_restore), "{s:?}");
        assert_condition(&p, "Drifted", TRUE, "Reverting");
        drifted(&p);
        let mut report = s.clone();
        report.drift.action = DriftAction::Report;
        let p = plan(&report, &next(&first, planted));
        assert!(p.operations.is_empty(), "{:#?}", p.operations);
        assert_condition(&p, "Drifted", TRUE, "Reported");
    }

    // Something given back, and the policy rewritten out of band: what was given back is
    // put back, as drift.
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut o = next(&first, role.clone());
    o.after_apply = Some(refused(&[("s3:PutObject", ORDER_X, "ev-put")]));
    o.original_aws_managed = Some(Ok(s3_full_read()));
    let restored = plan(&s, &o);
    let held = doc("s3:PutObject", ORDER_X);
    assert_eq!(restored.operations, [restore_put(&held)]);
    let role = apply(&role, &restored.operations, &mut BTreeMap::new());
    let mut planted = role.clone();
    planted
        .inline
        .insert(RESTORE_POLICY.to_string(), everything());
    let mut o = next(&restored, planted.clone());
    o.after_apply = Some(refused(&[("s3:PutObject", ORDER_X, "ev-put")]));
    o.original_aws_managed = Some(Ok(s3_full_read()));
    let p = plan(&s, &o);
    assert_eq!(p.operations, [restore_put(&held)]);
    assert_condition(&p, "Drifted", TRUE, "Reverting");
    drifted(&p);

    // The originals unknown: nothing is given back or taken away, so the policy may hold
    // only what the restore held; anything else goes.
    let mut unknown = next(&restored, planted);
    unknown.original_aws_managed = Some(Err("AccessDenied on GetPolicy".to_string()));
    let p = plan(&s, &unknown);
    assert_eq!(p.operations, [delete_restore]);
    drifted(&p);
    let mut unknown = next(&restored, role);
    unknown.original_aws_managed = Some(Err("AccessDenied on GetPolicy".to_string()));
    let p = plan(&s, &unknown);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Drifted", FALSE, "InSync");
}

#[test]
fn a_forged_shadow_never_opens_the_gate_on_its_own_terms() {
    let s = shadowing("7d", 0);
    let first = first_proposal(&s);
    let revision = first.status.proposal.as_ref().unwrap().revision.clone();
    let forged = |since: &str, checked_at: &str, revision: &str| {
        let mut p = first.clone();
        p.status.shadow = Some(crate::controller::crd::Shadow {
            revision: revision.to_string(),
            since: since.to_string(),
            checked_at: checked_at.to_string(),
            ..Default::default()
        });
        plan(&s, &next(&p, original_role()))
    };
    // Checked in the future, checked before it began, unreadable, another revision: each
    // period starts again now, and nothing is applied.
    for (since, checked_at, rev) in [
        (T0, "2099-01-01T00:00:00Z", revision.as_str()),
        (T1, T0, revision.as_str()),
        ("yesterday", T1, revision.as_str()),
        ("2000-01-01T00:00:00Z", T1, "sha256:other"),
    ] {
        let p = forged(since, checked_at, rev);
        assert!(
            p.operations.is_empty(),
            "{since} {checked_at}: {:#?}",
            p.operations
        );
        assert_condition(&p, "Approved", FALSE, "ShadowPeriod");
        let shadow = p.status.shadow.unwrap();
        assert_eq!(
            (shadow.since.as_str(), shadow.revision.as_str()),
            (T1, revision.as_str())
        );
    }
    // A period that began long ago and was checked since reads as done: the owner of the
    // resource can shorten their own wait (as by removing enforce.shadowFor), but the apply
    // is still proven never to widen the role, and still replays the window first.
    let p = forged("2000-01-01T00:00:00Z", T1, &revision);
    assert_condition(&p, "Approved", TRUE, "Approved");
    let role = apply(&original_role(), &p.operations, &mut BTreeMap::new());
    assert!(
        crate::role::proof::prove_each_state(&original_role(), &p.operations).is_ok(),
        "{role:#?}"
    );
}

#[test]
fn trust_is_reported_and_a_new_finding_warned_once() {
    let s = spec(Mode::Observe, Approval::Manual);
    let p = plan(&s, &observed(Default::default(), original_role(), None));
    assert_condition(&p, "TrustOK", TRUE, "TrustOK");
    let trust = p.status.trust.clone().unwrap();
    assert_eq!(trust.principals[0].principal, "ec2.amazonaws.com");
    assert_eq!(trust.allowed_accounts_from, None);
    assert!(p.operations.is_empty());

    // Trust to another account without an ExternalId: a finding, a Warning, no write.
    let mut role = original_role();
    role.trust_policy = Some(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}]}"#
            .to_string(),
    );
    let mut o = observed(p.status.clone(), role.clone(), None);
    o.trusted_accounts = vec!["777788889999".to_string()];
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert_condition(&p, "TrustOK", FALSE, "TrustFindings");
    let trust = p.status.trust.clone().unwrap();
    let codes: Vec<&str> = trust.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        ["ACCOUNT_NOT_ALLOWED", "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    assert_eq!(
        trust.allowed_accounts_from.as_deref(),
        Some("tenancy trustedAccounts")
    );
    let warned = |p: &Plan| {
        (p.events.iter())
            .filter(|e| e.type_ == EventType::Warning && e.reason == "TrustFinding")
            .count()
    };
    assert_eq!(warned(&p), 1, "{:?}", p.events);
    let note = &(p.events.iter())
        .find(|e| e.reason == "TrustFinding")
        .unwrap()
        .note;
    assert!(
        note.starts_with("2 findings new in the role's trust policy: ACCOUNT_NOT_ALLOWED: "),
        "{note}"
    );
    assert!(
        !(p.operations.iter()).any(|op| format!("{op:?}").contains("AssumeRole")),
        "the trust policy is never written"
    );
    // The same findings next time: no new Warning.
    let mut again = next(&p, role.clone());
    again.trusted_accounts = o.trusted_accounts.clone();
    let q = plan(&spec(Mode::Enforce, Approval::Automatic), &again);
    assert_condition(&q, "TrustOK", FALSE, "TrustFindings");
    assert_eq!(warned(&q), 0, "{:?}", q.events);
    // The attack: a namespace user lists the account to silence the finding. The tenancy's
    // accounts are the cluster's zone of trust; the spec may only narrow them.
    let mut listed = spec(Mode::Observe, Approval::Manual);
    listed.trust.allowed_accounts = vec!["444455556666".to_string()];
    let codes_of = |p: &Plan| -> Vec<String> {
        let trust = p.status.trust.as_ref().unwrap();
        trust.findings.iter().map(|f| f.code.clone()).collect()
    };
    let from_of = |p: &Plan| -> Option<String> {
        let trust = p.status.trust.as_ref().unwrap();
        trust.allowed_accounts_from.clone()
    };
    let r = plan(&listed, &again);
    assert_eq!(
        codes_of(&r),
        ["ACCOUNT_NOT_ALLOWED", "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    assert_eq!(
        from_of(&r).as_deref(),
        Some("spec.trust.allowedAccounts within tenancy trustedAccounts")
    );
    // Within the tenancy's accounts the spec's list decides, narrowing them.
    let mut both = again.clone();
    both.trusted_accounts = vec!["444455556666".to_string(), "777788889999".to_string()];
    assert_eq!(
        codes_of(&plan(&listed, &both)),
        ["CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    let mut narrower = listed.clone();
    narrower.trust.allowed_accounts = vec!["777788889999".to_string()];
    assert_eq!(
        codes_of(&plan(&narrower, &both)),
        ["ACCOUNT_NOT_ALLOWED", "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    // Without a tenancy list, the spec's own is the list.
    let mut alone = again.clone();
    alone.trusted_accounts = Vec::new();
    let r = plan(&listed, &alone);
    assert_eq!(codes_of(&r), ["CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]);
    assert_eq!(from_of(&r).as_deref(), Some("spec.trust.allowedAccounts"));
}

#[test]
fn an_unreadable_trust_policy_is_unknown_not_a_failure() {
    let mut role = original_role();
    role.trust_policy = Some("{not json".to_string());
    let p = plan(
        &spec(Mode::Observe, Approval::Manual),
        &observed(Default::default(), role.clone(), None),
    );
    assert_condition(&p, "TrustOK", UNKNOWN, "TrustPolicyNotAnalyzed");
    assert_condition(&p, "Ready", TRUE, "Ready");
    assert!(p.status.trust.is_none());
    role.trust_policy = None;
    let p = plan(
        &spec(Mode::Observe, Approval::Manual),
        &observed(Default::default(), role, None),
    );
    assert_condition(&p, "TrustOK", UNKNOWN, "TrustPolicyUnread");
    // A bad allow-list is the spec's error.
    let mut s = spec(Mode::Observe, Approval::Manual);
    s.trust.allowed_accounts = vec!["4444".to_string()];
    let p = plan(&s, &observed(Default::default(), original_role(), None));
    let message = condition(&p, "Ready").message.clone().unwrap();
    assert!(
        message.contains("trust.allowedAccounts[0] \"4444\" is not a 12-digit account id"),
        "{message}"
    );
}
