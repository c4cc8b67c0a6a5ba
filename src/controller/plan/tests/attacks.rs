//! Each attack on "only ever takes access away, only from the role it was pointed at", as a
//! plan from fixtures: what the plan writes, and the role afterwards, judged by the evaluator.

use super::*;
use crate::controller::crd::PinnedRole;
use crate::policy::context::Context;
use crate::policy::eval::{Decision, PolicySet, Request};

fn statements(text: &str) -> Policy {
    Policy::parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{text}]}}"#
    ))
    .unwrap()
}

fn fence() -> Policy {
    statements(r#"{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}"#)
}

/// The IAM console's "Revoke active sessions".
fn revoke_sessions() -> Policy {
    statements(
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2025-01-01T12:00:00Z"}}}"#,
    )
}

fn decision(role: &LiveRole, action: &str, resource: &str) -> Decision {
    let mut set = PolicySet::builder();
    for document in role.documents() {
        set = set.identity(document);
    }
    set.build()
        .evaluate(&Request {
            action,
            resource,
            principal: None,
            context: &Context::new(),
        })
        .decision
}

#[test]
fn keep_attached_delete_inline_leaves_a_fencing_deny_in_place() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.attached_policies = AttachedPolicies::Keep;
    s.inline_policies = InlinePolicies::Delete;
    let mut role = original_role();
    role.inline.insert("fence".to_string(), fence());
    assert_eq!(
        decision(&role, "s3:DeleteBucket", "arn:aws:s3:::orders"),
        Decision::ExplicitlyDenied
    );
    let p = plan(
        &s,
        &observed(
            Default::default(),
            role.clone(),
            Some(analysis(vec![get_orders()])),
        ),
    );
    let after = apply(&role, &p.operations, &mut BTreeMap::new());
    assert!(after.inline.contains_key("fence"), "{:#?}", p.operations);
    assert!(
        !after.inline.contains_key("legacy"),
        "the Allow-only inline policy goes"
    );
    assert_eq!(
        decision(&after, "s3:DeleteBucket", "arn:aws:s3:::orders"),
        Decision::ExplicitlyDenied
    );
    assert_condition(&p, "Drifted", TRUE, "DenyAddedOutOfBand");
    assert_condition(&p, "Ready", TRUE, "Ready");
    let applied = p
        .completion
        .iter()
        .find(|e| e.reason == "PolicyApplied")
        .unwrap();
    assert!(
        applied.note.contains("kept inline policy fence"),
        "{}",
        applied.note
    );
    // The next look keeps it too, and says so once.
    let again = plan(&s, &next(&p, after));
    assert!(again.operations.is_empty(), "{:#?}", again.operations);
    assert!(
        !again
            .events
            .iter()
            .any(|e| e.reason == "DenyAddedOutOfBand")
    );
}

#[test]
fn drift_revert_never_deletes_a_deny_added_out_of_band() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut revoked = role.clone();
    revoked
        .inline
        .insert("AWSRevokeOlderSessions".to_string(), revoke_sessions());
    // Some real drift as well, so the revert runs.
    revoked.attached.push(attached(ADMIN, doc("*", "*")));
    let p = plan(&s, &next(&first, revoked.clone()));
    assert_eq!(
        p.operations,
        [Operation::DetachPolicy {
            arn: ADMIN.to_string()
        }]
    );
    let warning = p
        .events
        .iter()
        .find(|e| e.reason == "DenyAddedOutOfBand")
        .expect("a Warning Event for the kept Deny");
    assert_eq!(warning.type_, EventType::Warning);
    let after = apply(&revoked, &p.operations, &mut BTreeMap::new());
    assert!(after.inline.contains_key("AWSRevokeOlderSessions"));
    // Only the Deny is left: reported, nothing to write, the role is fine.
    let p = plan(&s, &next(&first, after));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Drifted", TRUE, "DenyAddedOutOfBand");
    assert_condition(&p, "InSync", TRUE, "InSync");
    assert_condition(&p, "Ready", TRUE, "Ready");
}

#[test]
fn a_deny_bearing_policy_detach_never_precedes_an_allow_removal() {
    // iam-tailor's stale policy fences an Allow the spec also removes: the Allow goes first.
    let s = spec(Mode::Enforce, Approval::Automatic);
    let fenced = statements(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::orders/*"},
           {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::orders/secret/*"}"#,
    );
    let table = doc("dynamodb:GetItem", "arn:aws:dynamodb:*:*:table/orders");
    let (first, mut role) = enforced(&s, vec![table, fenced.clone()]);
    assert_eq!(role.attached.len(), 2);
    role.inline
        .insert("extra".to_string(), doc("s3:GetObject", "*"));
    let mut o = next(&first, role.clone());
    o.analysis = Some(analysis(vec![fenced]));
    let p = plan(&s, &o);
    let delete = position(&p, |op| matches!(op, Operation::DeleteInlinePolicy { .. }));
    let detach = position(
        &p,
        |op| matches!(op, Operation::DetachPolicy { arn } if arn == OURS_2),
    );
    assert!(delete < detach, "{:#?}", p.operations);
    // And every state in between is within the role as it was.
    assert_eq!(
        crate::role::proof::prove_each_state(&role, &p.operations),
        Ok(())
    );
}

#[test]
fn restore_keeps_denies_and_boundaries_added_after_the_backup() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, mut role) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole { snapshot, .. } = &first.operations[0] else {
        unreachable!()
    };
    role.inline
        .insert("AWSRevokeOlderSessions".to_string(), revoke_sessions());
    let incident = "arn:aws:iam::123456789012:policy/incident-boundary".to_string();
    role.permissions_boundary = Some(incident.clone());
    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let p = plan_cleanup(&restore_spec, &next(&first, role.clone()), Some(snapshot)).unwrap();
    let mut store = BTreeMap::from([(S3_FULL.to_string(), doc("s3:*", "*"))]);
    let after = apply(&role, &p.operations, &mut store);
    assert!(
        after.inline.contains_key("AWSRevokeOlderSessions"),
        "{:#?}",
        p.operations
    );
    assert!(after.inline.contains_key("legacy"), "the original is back");
    assert_eq!(after.permissions_boundary, Some(incident));
    let kept = p
        .events
        .iter()
        .find(|e| e.reason == "KeptOnRestore")
        .unwrap();
    assert!(
        kept.note.contains("AWSRevokeOlderSessions"),
        "{}",
        kept.note
    );
    assert_eq!(crate::role::proof::guard(&role, &p.operations), Ok(()));
}

#[test]
fn restore_writes_only_to_the_role_the_backup_was_taken_from() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    let (first, mut role) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole { snapshot, .. } = &first.operations[0] else {
        unreachable!()
    };
    assert_eq!(snapshot.role_id, "AROACHECKOUT");
    role.role_id = "AROARECREATED".to_string();
    s.deletion_policy = DeletionPolicy::Restore;
    let refused = plan_cleanup(&s, &next(&first, role), Some(snapshot)).unwrap_err();
    assert!(refused.contains("created again"), "{refused}");
}

#[test]
fn restore_deletes_only_policies_named_for_this_role() {
    // A status rewritten to name someone else's policy as applied earlier.
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (mut first, role) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole { snapshot, .. } = first.operations[0].clone() else {
        unreachable!()
    };
    let victim = "arn:aws:iam::123456789012:policy/payments-prod".to_string();
    first.status.history.push(Applied {
        revision: "sha256:forged".to_string(),
        policy_arns: vec![victim.clone()],
        ..Default::default()
    });
    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let p = plan_cleanup(&restore_spec, &next(&first, role), Some(&snapshot)).unwrap();
    assert!(
        !p.operations
            .iter()
            .any(|op| matches!(op, Operation::DeleteManagedPolicy { arn } if *arn == victim)),
        "{:#?}",
        p.operations
    );
    assert!(p.operations.contains(&Operation::DeleteManagedPolicy {
        arn: OURS.to_string()
    }));
}

#[test]
fn a_forged_status_is_re_derived_before_any_write() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    // status.applied.policyArns pointed at AdministratorAccess: never attached.
    let mut forged = first.clone();
    forged.status.applied.as_mut().unwrap().policy_arns = vec![ADMIN.to_string()];
    let p = plan(&s, &next(&forged, role.clone()));
    assert!(
        !p.operations
            .iter()
            .any(|op| matches!(op, Operation::AttachPolicy { arn } if arn == ADMIN)),
        "{:#?}",
        p.operations
    );
    // status.proposal.policy swapped for a wider document under the approved revision.
    let mut forged = first.clone();
    let proposal = forged.status.proposal.as_mut().unwrap();
    proposal.policy = set_json(&[doc("*", "*")]);
    let p = plan(&s, &next(&forged, role));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Approved", FALSE, "InvalidProposal");
}

#[test]
fn a_spec_edit_to_another_role_writes_nothing() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, _) = enforced(&s, vec![get_orders()]);
    assert_eq!(
        first.status.role,
        Some(PinnedRole {
            arn: ROLE_ARN.to_string(),
            role_id: "AROACHECKOUT".to_string(),
        })
    );
    // roleName edited to another role, which holds broad access.
    let mut edited = s.clone();
    edited.role_name = Some("payments".to_string());
    let mut other = original_role();
    other.name = "payments".to_string();
    other.arn = "arn:aws:iam::123456789012:role/payments".to_string();
    other.role_id = "AROAPAYMENTS".to_string();
    let mut o = next(&first, other.clone());
    o.analysis = Some(analysis(vec![get_orders()]));
    let p = plan(&edited, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Ready", FALSE, "RoleChanged");
    assert_eq!(p.status.role, first.status.role, "the pin stays");
    assert!(!role_changed(&first.status, &other).unwrap().is_empty());
    // The same name, deleted and created again.
    let mut recreated = original_role();
    recreated.role_id = "AROANEW".to_string();
    let p = plan(&s, &next(&first, recreated));
    assert!(p.operations.is_empty());
    assert_condition(&p, "Ready", FALSE, "RoleChanged");
}

#[test]
fn a_missing_backup_blocks_every_write() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut drifted = role.clone();
    drifted.attached.push(attached(ADMIN, doc("*", "*")));
    let mut o = next(&first, drifted);
    o.backup_exists = false;
    let p = plan(&s, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Ready", FALSE, "BackupMissing");
    assert_eq!(p.status.applied, first.status.applied);
}

#[test]
fn policy_names_never_collide() {
    let roles = [
        "web",
        "web-2",
        "web.2",
        "2.web",
        "Web",
        "iam-tailor-web",
        "a",
        "a.1",
        "1",
    ];
    let mut seen = BTreeMap::new();
    for role in roles {
        for index in 0..MAX_DOCUMENTS {
            let name = managed_policy_name(role, index);
            assert!(name.len() <= 128, "{name}");
            // IAM compares names without case, and so do role names: Web and web are one.
            let key = name.to_ascii_lowercase();
            let owner = (role.to_ascii_lowercase(), index);
            if let Some(other) = seen.insert(key, owner.clone()) {
                assert_eq!(other, owner, "{name}");
            }
        }
    }
    assert_ne!(
        managed_policy_name("web", 1),
        managed_policy_name("web-2", 0)
    );
}
