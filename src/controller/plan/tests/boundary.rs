//! The declared permissions boundary (`spec.permissionsBoundary`): set first, put back,
//! replaced only when proven within the old one, taken back by Restore only when it is
//! iam-tailor's own.

use super::*;
use crate::controller::crd::BoundarySpec;

const DECLARED: &str = "arn:aws:iam::123456789012:policy/dev-boundary";
const OWN: &str = "arn:aws:iam::123456789012:policy/iam-tailor.boundary.checkout-api";

fn declaring(mode: Mode, approval: Approval, boundary: BoundarySpec) -> LeastPrivilegeRoleSpec {
    let mut s = spec(mode, approval);
    s.permissions_boundary = Some(boundary);
    s
}

fn by_arn(arn: &str) -> BoundarySpec {
    BoundarySpec {
        policy_arn: Some(arn.to_string()),
        document: None,
    }
}

fn by_document(document: &Policy) -> BoundarySpec {
    BoundarySpec {
        policy_arn: None,
        document: Some(document.canonical_json()),
    }
}

/// The original role without its boundary.
fn unbounded() -> LiveRole {
    let mut role = original_role();
    role.permissions_boundary = None;
    role
}

fn bounded(role: &LiveRole, arn: &str, document: Policy) -> LiveRole {
    let mut role = role.clone();
    role.permissions_boundary = Some(arn.to_string());
    role.boundary_policy = Some(Box::new(AttachedPolicy {
        managed_by_iam_tailor: arn == OWN,
        ..attached(arn, document)
    }));
    role
}

#[test]
fn a_declared_boundary_is_set_first_even_before_any_proposal() {
    // Manual approval, nothing approved: the boundary alone, after the backup.
    let s = declaring(Mode::Enforce, Approval::Manual, by_arn(DECLARED));
    let o = observed(
        Default::default(),
        unbounded(),
        Some(analysis(vec![get_orders()])),
    );
    let p = plan(&s, &o);
    assert!(matches!(p.operations[0], Operation::BackupRole { .. }));
    assert_eq!(
        p.operations[1..],
        [Operation::SetPermissionsBoundary {
            arn: DECLARED.to_string()
        }]
    );
    assert_condition(&p, "BoundaryInPlace", TRUE, "BoundaryInPlace");
    let Operation::BackupRole { snapshot, .. } = &p.operations[0] else {
        unreachable!()
    };
    assert_eq!(
        snapshot.permissions_boundary, None,
        "the backup is of the role as it was"
    );

    // Automatic: the boundary before any policy write.
    let s = declaring(Mode::Enforce, Approval::Automatic, by_arn(DECLARED));
    let p = plan(&s, &o);
    let set = position(&p, |op| {
        matches!(op, Operation::SetPermissionsBoundary { .. })
    });
    assert_eq!(set, 1, "{:#?}", p.operations);
    assert!(p.operations.len() > 2, "the proposal is applied too");
    assert_eq!(
        p.status
            .applied
            .as_ref()
            .unwrap()
            .permissions_boundary
            .as_deref(),
        Some(DECLARED)
    );
}

#[test]
fn observe_and_recommend_only_report_a_missing_boundary() {
    for mode in [Mode::Observe, Mode::Recommend] {
        let s = declaring(mode, Approval::Manual, by_arn(DECLARED));
        let p = plan(&s, &observed(Default::default(), unbounded(), None));
        assert!(p.operations.is_empty());
        assert_condition(&p, "BoundaryInPlace", FALSE, "NotEnforcing");
    }
    let p = plan(
        &spec(Mode::Observe, Approval::Manual),
        &observed(Default::default(), unbounded(), None),
    );
    assert_condition(&p, "BoundaryInPlace", UNKNOWN, "NotDeclared");
}

#[test]
fn removed_out_of_band_it_is_put_back_whatever_the_drift_action() {
    let mut s = declaring(Mode::Enforce, Approval::Automatic, by_arn(DECLARED));
    s.drift.action = DriftAction::Report;
    let o = observed(
        Default::default(),
        unbounded(),
        Some(analysis(vec![get_orders()])),
    );
    let first = plan(&s, &o);
    let mut store = BTreeMap::from([(DECLARED.to_string(), doc("s3:*", "*"))]);
    let role = apply(&unbounded(), &first.operations, &mut store);
    assert_eq!(role.permissions_boundary.as_deref(), Some(DECLARED));
    // In place: nothing to do.
    let steady = plan(&s, &next(&first, role.clone()));
    assert!(steady.operations.is_empty(), "{:#?}", steady.operations);
    assert_condition(&steady, "BoundaryInPlace", TRUE, "BoundaryInPlace");
    // Removed: put back, first.
    let mut removed = role.clone();
    removed.permissions_boundary = None;
    removed.boundary_policy = None;
    let p = plan(&s, &next(&first, removed));
    assert_eq!(
        p.operations,
        [Operation::SetPermissionsBoundary {
            arn: DECLARED.to_string()
        }]
    );
}

#[test]
fn another_boundary_is_replaced_only_by_one_proven_within_it() {
    let s = declaring(Mode::Enforce, Approval::Manual, by_arn(DECLARED));
    let declared = doc("s3:GetObject", "*");
    let o = |live: LiveRole, read: Option<Result<Policy, String>>| {
        let mut o = observed(Default::default(), live, None);
        o.declared_boundary = read;
        o
    };
    // The shell reads the declared document exactly when a replacement needs it.
    let valid = validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
    let wide = bounded(&unbounded(), ADMIN, doc("*", "*"));
    assert_eq!(
        declared_boundary_to_read(&valid, &wide).as_deref(),
        Some(DECLARED)
    );
    assert_eq!(declared_boundary_to_read(&valid, &unbounded()), None);

    // Replaced out of band by a wider one: the declared is within it, so it goes back.
    let p = plan(&s, &o(wide.clone(), Some(Ok(declared.clone()))));
    assert!(
        (p.operations.iter()).any(|op| *op
            == Operation::SetPermissionsBoundary {
                arn: DECLARED.to_string()
            }),
        "{:#?}",
        p.operations
    );
    // By a narrower one (an incident responder's): left alone, and said so.
    let narrow = bounded(
        &unbounded(),
        BOUNDARY,
        doc("s3:GetObject", "arn:aws:s3:::orders/*"),
    );
    let p = plan(&s, &o(narrow, Some(Ok(declared.clone()))));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "BoundaryInPlace", FALSE, "NotProvablyNarrower");
    assert_condition(&p, "Ready", FALSE, "BoundaryNotProvablyNarrower");
    assert!((p.events.iter()).any(|e| e.reason == "BoundaryNotProvablyNarrower"));
    // A declared policy that could not be read proves nothing.
    let p = plan(&s, &o(wide, Some(Err("AccessDenied".to_string()))));
    assert!(p.operations.is_empty());
    let message = condition(&p, "BoundaryInPlace").message.clone().unwrap();
    assert!(message.contains("AccessDenied"), "{message}");
}

#[test]
fn a_declared_document_is_iam_tailors_own_policy_and_restore_takes_it_back() {
    let fence = doc("s3:*", "*");
    let s = declaring(Mode::Enforce, Approval::Manual, by_document(&fence));
    let first = plan(&s, &observed(Default::default(), unbounded(), None));
    assert_eq!(
        first.operations[1..],
        [
            Operation::PutManagedPolicy {
                name: "iam-tailor.boundary.checkout-api".to_string(),
                arn: OWN.to_string(),
                document: fence.canonical_json(),
            },
            Operation::SetPermissionsBoundary {
                arn: OWN.to_string()
            }
        ]
    );
    let mut store = BTreeMap::new();
    let role = apply(&unbounded(), &first.operations, &mut store);
    assert!(role.boundary_policy.as_ref().unwrap().managed_by_iam_tailor);
    assert!(plan(&s, &next(&first, role.clone())).operations.is_empty());

    // A narrower document is written; a wider one is not.
    let narrower = declaring(
        Mode::Enforce,
        Approval::Manual,
        by_document(&doc("s3:GetObject", "*")),
    );
    let p = plan(&narrower, &next(&first, role.clone()));
    assert!(
        matches!(&p.operations[..], [Operation::PutManagedPolicy { arn, .. }] if arn == OWN),
        "{:#?}",
        p.operations
    );
    let wider = declaring(Mode::Enforce, Approval::Manual, by_document(&doc("*", "*")));
    let p = plan(&wider, &next(&first, role.clone()));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "BoundaryInPlace", FALSE, "NotProvablyNarrower");

    // Restore: the role had no boundary, so iam-tailor's own goes, and its policy with it.
    let mut restoring = s.clone();
    restoring.deletion_policy = DeletionPolicy::Restore;
    let cleanup = plan_cleanup(&restoring, &next(&first, role.clone())).unwrap();
    let boundary_ops: Vec<&Operation> = (cleanup.operations.iter())
        .filter(|op| {
            matches!(op, Operation::DeletePermissionsBoundary)
                || matches!(op, Operation::DeleteManagedPolicy { arn } if arn == OWN)
        })
        .collect();
    assert_eq!(boundary_ops.len(), 2, "{:#?}", cleanup.operations);
    let restored = apply(&role, &cleanup.operations, &mut store);
    assert_eq!(restored.permissions_boundary, None);
    // Someone else's boundary in its place stays.
    let theirs = bounded(&role, BOUNDARY, doc("s3:GetObject", "*"));
    let cleanup = plan_cleanup(&restoring, &next(&first, theirs)).unwrap();
    assert!(
        !(cleanup.operations.iter()).any(|op| matches!(op, Operation::DeletePermissionsBoundary)),
        "{:#?}",
        cleanup.operations
    );
}

#[test]
fn a_bad_declaration_is_the_specs_error() {
    for (boundary, expected) in [
        (
            BoundarySpec::default(),
            "permissionsBoundary: give policyArn or document",
        ),
        (
            BoundarySpec {
                policy_arn: Some(DECLARED.to_string()),
                document: Some("{}".to_string()),
            },
            "give policyArn or document",
        ),
        (
            BoundarySpec {
                policy_arn: None,
                document: Some("{\"Statement\": 1}".to_string()),
            },
            "permissionsBoundary.document: ",
        ),
    ] {
        let s = declaring(Mode::Enforce, Approval::Manual, boundary);
        let p = plan(&s, &observed(Default::default(), unbounded(), None));
        let message = condition(&p, "Ready").message.clone().unwrap();
        assert!(message.contains(expected), "{message}");
        assert!(p.operations.is_empty());
    }
    // Another account's policy, or one of another partition, is never set.
    for theirs in [
        "arn:aws:iam::999999999999:policy/theirs",
        "arn:aws-cn:iam::aws:policy/PowerUserAccess",
    ] {
        let s = declaring(Mode::Enforce, Approval::Manual, by_arn(theirs));
        let p = plan(&s, &observed(Default::default(), unbounded(), None));
        assert!(p.operations.is_empty(), "{theirs}: {:#?}", p.operations);
        assert_condition(&p, "BoundaryInPlace", FALSE, "InvalidBoundary");
    }
}

#[test]
fn a_spec_edit_never_swaps_its_own_boundary_for_a_wider_one() {
    // The attack: declare a tight document (set), then point the spec at a wide policy.
    let fence = doc("s3:GetObject", "*");
    let own = bounded(&unbounded(), OWN, fence);
    let s = declaring(Mode::Enforce, Approval::Automatic, by_arn(ADMIN));
    let valid = validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
    assert_eq!(
        declared_boundary_to_read(&valid, &own).as_deref(),
        Some(ADMIN)
    );
    let mut o = observed(
        Default::default(),
        own.clone(),
        Some(analysis(vec![get_orders()])),
    );
    o.declared_boundary = Some(Ok(doc("*", "*")));
    let p = plan(&s, &o);
    assert!(
        !(p.operations.iter()).any(|op| matches!(
            op,
            Operation::SetPermissionsBoundary { .. } | Operation::DeletePermissionsBoundary
        )),
        "{:#?}",
        p.operations
    );
    assert_condition(&p, "BoundaryInPlace", FALSE, "NotProvablyNarrower");
    // Nor does dropping the declaration take the boundary off.
    let p = plan(
        &spec(Mode::Enforce, Approval::Automatic),
        &observed(Default::default(), own, Some(analysis(vec![get_orders()]))),
    );
    assert!(
        !(p.operations.iter()).any(|op| matches!(op, Operation::DeletePermissionsBoundary)),
        "{:#?}",
        p.operations
    );
}

#[test]
fn a_boundary_that_would_deny_used_actions_says_so_once() {
    let fence = doc("s3:GetObject", "arn:aws:s3:::orders/*");
    let used = vec![
        get_orders(),
        doc(
            "dynamodb:PutItem",
            "arn:aws:dynamodb:us-east-1:123456789012:table/t",
        ),
    ];
    // Recommend: a preview of what the boundary would break, before Enforce sets it.
    let s = declaring(Mode::Recommend, Approval::Manual, by_document(&fence));
    let o = observed(
        Default::default(),
        unbounded(),
        Some(analysis(used.clone())),
    );
    let p = plan(&s, &o);
    assert_condition(&p, "BoundaryInPlace", FALSE, "NotEnforcing");
    let message = condition(&p, "BoundaryInPlace").message.clone().unwrap();
    assert!(
        message.ends_with(
            "it may deny 1 of the proposal's actions, which the role used: dynamodb:PutItem"
        ),
        "{message}"
    );
    let warned = |p: &Plan| {
        (p.events.iter())
            .filter(|e| e.type_ == EventType::Warning && e.reason == "BoundaryDeniesUsedActions")
            .count()
    };
    assert_eq!(warned(&p), 1, "{:?}", p.events);
    // Next time, without a fresh analysis: the proposal the status holds says the same, and
    // the Warning is not repeated.
    let q = plan(&s, &next(&p, unbounded()));
    assert_eq!(
        condition(&q, "BoundaryInPlace").message.as_ref(),
        Some(&message)
    );
    assert_eq!(warned(&q), 0, "{:?}", q.events);
    // Enforce still sets it (the spec is its approval), saying the same.
    let s = declaring(Mode::Enforce, Approval::Manual, by_document(&fence));
    let p = plan(&s, &o);
    assert!(
        (p.operations.iter()).any(|op| matches!(op, Operation::SetPermissionsBoundary { .. })),
        "{:#?}",
        p.operations
    );
    let message = condition(&p, "BoundaryInPlace").message.clone().unwrap();
    assert!(message.contains("dynamodb:PutItem"), "{message}");
    // A boundary allowing all that was used says nothing of it.
    let wide = doc("*", "*");
    let s = declaring(Mode::Recommend, Approval::Manual, by_document(&wide));
    let p = plan(&s, &o);
    let message = condition(&p, "BoundaryInPlace").message.clone().unwrap();
    assert!(!message.contains("may deny"), "{message}");
    assert_eq!(warned(&p), 0);
}
