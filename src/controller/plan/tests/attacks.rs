//! Each attack on "only ever takes access away, only from the role it was pointed at", as a
//! plan from fixtures: what the plan writes, and the role afterwards, judged by the evaluator.

use super::*;
use crate::controller::crd::PinnedRole;
use crate::policy::context::Context;
use crate::policy::eval::{Decision, PolicySet, Request};
use crate::role::names::{PolicyNames, first_form_name, roles_of_policy};
use crate::role::{CustomerPolicyNow, RESTORABLE_TAG};

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
    assert!(matches!(first.operations[0], Operation::BackupRole { .. }));
    role.inline
        .insert("AWSRevokeOlderSessions".to_string(), revoke_sessions());
    let incident = "arn:aws:iam::123456789012:policy/incident-boundary".to_string();
    role.permissions_boundary = Some(incident.clone());
    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let p = plan_cleanup(&restore_spec, &next(&first, role.clone())).unwrap();
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
    assert!(matches!(first.operations[0], Operation::BackupRole { .. }));
    assert_eq!(
        first.status.backup.as_ref().unwrap().role_id,
        "AROACHECKOUT"
    );
    role.role_id = "AROARECREATED".to_string();
    s.deletion_policy = DeletionPolicy::Restore;
    // The role it was taken from is gone: nothing is written to its successor, not even the
    // claim's release, and deletion goes ahead.
    let p = plan_cleanup(&s, &next(&first, role)).unwrap();
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_eq!(p.events[0].reason, "RoleChanged");
    // A backup not taken from the pinned role is refused (its ARN or RoleId differ).
    let (first, role) = enforced(&s, vec![get_orders()]);
    let mut o = next(&first, role);
    let mut other = match &o.backup {
        Some(StoredBackup {
            snapshot: Ok(snapshot),
            ..
        }) => snapshot.clone(),
        other => panic!("{other:?}"),
    };
    other.role_id = "AROAOLD".to_string();
    let refused = restore_refused(&s, &mut o, &other);
    assert!(refused.contains("created again"), "{refused}");
}

#[test]
fn restore_deletes_only_policies_named_for_this_role() {
    // A status rewritten to name someone else's policy as applied earlier.
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (mut first, role) = enforced(&s, vec![get_orders()]);
    assert!(matches!(first.operations[0], Operation::BackupRole { .. }));
    let victim = "arn:aws:iam::123456789012:policy/payments-prod".to_string();
    first.status.history.push(Applied {
        revision: "sha256:forged".to_string(),
        policy_arns: vec![victim.clone()],
        ..Default::default()
    });
    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let p = plan_cleanup(&restore_spec, &next(&first, role)).unwrap();
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
    o.backup = None;
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
        "web@AROAOTHER",
    ];
    let mut seen = BTreeMap::new();
    for role in roles {
        for names in [PolicyNames::ByRoleName, PolicyNames::ByRoleId] {
            let mut live = original_role();
            live.name = role.to_string();
            live.role_id = "AROAEXAMPLE1234567890".to_string();
            live.names = names;
            for index in 0..MAX_DOCUMENTS {
                let name = live.policy_name(index);
                assert!(name.len() <= 128, "{name}");
                assert!(roles_of_policy(&name).contains(&role.to_string()), "{name}");
                // IAM compares names without case, and so do role names: Web and web are one.
                let key = name.to_ascii_lowercase();
                let owner = (role.to_ascii_lowercase(), names, index);
                if let Some(other) = seen.insert(key, owner.clone()) {
                    assert_eq!(other, owner, "{name}");
                }
            }
            let boundary = live.boundary_policy_name();
            assert!(roles_of_policy(&boundary).contains(&role.to_string()));
            let owner = (role.to_ascii_lowercase(), names, MAX_DOCUMENTS);
            if let Some(other) = seen.insert(boundary.to_ascii_lowercase(), owner.clone()) {
                assert_eq!(other, owner, "{boundary}");
            }
        }
    }
    // The longest role name (64) in the longer form still makes a valid policy name (128).
    let mut longest = original_role();
    longest.name = "r".repeat(64);
    longest.names = PolicyNames::ByRoleId;
    assert!(longest.boundary_policy_name().len() <= 128);
    assert_ne!(first_form_name("web", 1), first_form_name("web-2", 0));
}

/// A role deleted and created again under its name: the earlier role's `iam-tailor-<role>`
/// is left over and is not this role's (the shell reads `PolicyNames::ByRoleId`), so this
/// role's policies are named for its RoleId; they keep those names, the leftover is reported,
/// and Restore removes only this role's.
#[test]
fn a_role_created_again_gets_policies_of_its_own() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let mut recreated = original_role();
    recreated.names = PolicyNames::ByRoleId;
    let own = format!("{OURS}@{}", recreated.role_id);
    let (p, after) = enforced_from(&s, &recreated, vec![get_orders()]);
    let written: Vec<&str> = (p.operations.iter())
        .filter_map(|o| match o {
            Operation::PutManagedPolicy { arn, .. } | Operation::AttachPolicy { arn } => {
                Some(arn.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(
        !written.is_empty() && written.iter().all(|arn| *arn == own),
        "{written:?}"
    );
    assert_eq!(
        p.status.applied.as_ref().unwrap().policy_arns,
        std::slice::from_ref(&own)
    );
    let applied = p
        .completion
        .iter()
        .find(|e| e.reason == "PolicyApplied")
        .unwrap();
    assert!(
        applied
            .note
            .contains("iam-tailor-checkout-api is not this role's"),
        "{}",
        applied.note
    );
    // Read again, the role's own policy keeps the form.
    let held = after
        .attached
        .iter()
        .chain(after.boundary_policy.as_deref());
    assert_eq!(
        PolicyNames::of_held(&after.role_id, held),
        Some(PolicyNames::ByRoleId)
    );
    let again = plan(&s, &next(&p, after.clone()));
    assert!(again.operations.is_empty(), "{:#?}", again.operations);

    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let cleanup = plan_cleanup(&restore_spec, &next(&again, after)).unwrap();
    assert!(
        cleanup
            .operations
            .contains(&Operation::DeleteManagedPolicy { arn: own })
    );
    let touches_leftover = cleanup
        .operations
        .iter()
        .any(|o| format!("{o:?}").contains(&format!("{OURS}\"")));
    assert!(!touches_leftover, "{:#?}", cleanup.operations);
}

/// Cleanup with `snapshot` as the stored backup, recorded in the status as if it were the one
/// written (by someone able to rewrite both): why Restore refuses it.
fn restore_refused(
    s: &LeastPrivilegeRoleSpec,
    o: &mut Observed,
    snapshot: &BackupSnapshot,
) -> String {
    let forged = StoredBackup::of(snapshot);
    o.previous.backup.as_mut().unwrap().sha256 = forged.sha256.clone();
    o.backup = Some(forged);
    plan_cleanup(s, o).unwrap_err()
}

/// What a tenant (or anyone) could do to a backup ConfigMap: rewrite it to attach
/// AdministratorAccess, or create one before the resource's first write.
fn tampered(snapshot: &BackupSnapshot) -> StoredBackup {
    let mut forged = snapshot.clone();
    forged.attached.push(ADMIN.to_string());
    forged.permissions_boundary = None;
    StoredBackup {
        sealed: false,
        ..StoredBackup::of(&forged)
    }
}

#[test]
fn the_backup_is_recorded_with_its_hash_and_role() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, _) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole {
        config_map,
        snapshot,
    } = &first.operations[0]
    else {
        panic!("backup first: {:#?}", first.operations)
    };
    let recorded = first.status.backup.clone().unwrap();
    assert_eq!(*config_map, format!("iam-tailor-backup-{UID}"));
    assert_eq!(recorded.config_map, *config_map);
    assert_eq!(recorded.namespace, "iam-tailor");
    assert_eq!(recorded.sha256, StoredBackup::of(snapshot).sha256);
    assert_eq!(
        (recorded.role_arn.as_str(), recorded.role_id.as_str()),
        (ROLE_ARN, "AROACHECKOUT")
    );
}

#[test]
fn a_tampered_backup_blocks_writes_and_restore() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    let (first, role) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole { snapshot, .. } = &first.operations[0] else {
        unreachable!()
    };
    let mut drifted = role.clone();
    drifted.attached.push(attached(ADMIN, doc("*", "*")));
    let mut o = next(&first, drifted);
    o.backup = Some(tampered(snapshot));
    let p = plan(&s, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Ready", FALSE, "BackupTampered");
    s.deletion_policy = DeletionPolicy::Restore;
    let refused = plan_cleanup(&s, &o).unwrap_err();
    assert!(refused.contains("not the sha256:"), "{refused}");
    // Even with the status rewritten to match, the backup must be this role's.
    let mut o = next(&first, role);
    let mut other = snapshot.clone();
    other.role_id = "AROAOTHER".to_string();
    other.attached = vec![ADMIN.to_string()];
    let refused = restore_refused(&s, &mut o, &other);
    assert!(refused.contains("AROAOTHER"), "{refused}");
    // And it may name only AWS's policies or the role's account's.
    let mut foreign = snapshot.clone();
    foreign.attached = vec!["arn:aws:iam::999999999999:policy/everything".to_string()];
    let refused = restore_refused(&s, &mut o, &foreign);
    assert!(refused.contains("999999999999"), "{refused}");
}

/// `status.backup` deleted (by whoever may write the status) and the backup rewritten: with
/// no recorded hash to check, only the operator's seal on the ConfigMap vouches for it, and a
/// rewritten one has none.
#[test]
fn without_status_backup_only_the_operator_s_seal_vouches_for_a_backup() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.deletion_policy = DeletionPolicy::Restore;
    let (first, role) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole { snapshot, .. } = &first.operations[0] else {
        unreachable!()
    };
    let mut o = next(&first, role);
    o.previous.backup = None;
    o.backup = Some(tampered(snapshot));
    let refused = plan_cleanup(&s, &o).unwrap_err();
    assert!(refused.contains("carries no seal"), "{refused}");
    // The operator's own, sealed: restored as recorded.
    o.backup = Some(StoredBackup::of(snapshot));
    let restore = plan_cleanup(&s, &o).unwrap();
    assert!(
        restore.operations.contains(&Operation::AttachPolicy {
            arn: S3_FULL.to_string()
        }),
        "{:#?}",
        restore.operations
    );
}

#[test]
fn a_pre_created_backup_is_never_adopted() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let mut o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    // Even one naming this very role and its RoleId.
    o.backup = Some(tampered(&BackupSnapshot::of(&original_role())));
    let p = plan(&s, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Ready", FALSE, "BackupMismatch");
    assert_eq!(p.status.backup, None);
    // The role exactly as it is now (a status write lost after the backup, before any
    // change) is named again.
    let own = StoredBackup::of(&BackupSnapshot::of(&original_role()));
    o.backup = Some(own.clone());
    let p = plan(&s, &o);
    assert!(!p.operations.is_empty());
    assert!(
        !p.operations
            .iter()
            .any(|op| matches!(op, Operation::BackupRole { .. }))
    );
    assert_eq!(p.status.backup.unwrap().sha256, own.sha256);
}

#[test]
fn one_role_one_resource() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    // An unclaimed role: the claim goes alone, first, and is looked at again soon.
    let mut unclaimed = original_role();
    unclaimed.tags.clear();
    let o = observed(
        Default::default(),
        unclaimed.clone(),
        Some(analysis(vec![get_orders()])),
    );
    let p = plan(&s, &o);
    assert_eq!(
        p.operations,
        [Operation::ClaimRole {
            uid: UID.to_string()
        }]
    );
    assert_eq!(p.requeue, Requeue::After(1));
    assert_eq!(p.status.applied, None, "nothing claimed applied");
    assert_eq!(p.status.backup, None);
    assert_condition(&p, "InSync", UNKNOWN, "Claiming");
    assert_condition(&p, "Drifted", UNKNOWN, "Claiming");
    // Claimed by this resource: the apply goes ahead, backup first.
    let claimed = apply(&unclaimed, &p.operations, &mut BTreeMap::new());
    assert_eq!(claimed, original_role());
    let mut o = observed(
        Default::default(),
        claimed,
        Some(analysis(vec![get_orders()])),
    );
    o.previous = p.status.clone();
    let p = plan(&s, &o);
    assert!(
        matches!(p.operations[0], Operation::BackupRole { .. }),
        "{:#?}",
        p.operations
    );
    // Claimed by another resource (another namespace, another cluster): nothing, not even
    // an analysis of its activity.
    let mut theirs = original_role();
    theirs.tags.insert(
        crate::role::CLAIM_TAG.to_string(),
        "someone-else".to_string(),
    );
    let o = observed(
        Default::default(),
        theirs.clone(),
        Some(analysis(vec![get_orders()])),
    );
    let p = plan(&s, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Ready", FALSE, "RoleClaimed");
    assert_eq!(
        not_ours(&o.previous, &theirs, UID).unwrap().0,
        "RoleClaimed"
    );
    // And its deletion neither restores nor releases the other's claim.
    let mut restore_spec = s.clone();
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let p = plan_cleanup(&restore_spec, &o).unwrap();
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
}

#[test]
fn automatic_approval_refuses_thin_evidence() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let thin = |tweak: &dyn Fn(&mut Analysis)| {
        let mut result = analysis(vec![get_orders()]);
        tweak(&mut result.analysis);
        let p = plan(
            &s,
            &observed(Default::default(), original_role(), Some(result)),
        );
        assert!(p.operations.is_empty(), "{:#?}", p.operations);
        assert_condition(&p, "Approved", FALSE, "InsufficientEvidence");
        assert_condition(&p, "Ready", TRUE, "Ready");
        condition(&p, "Approved").message.clone().unwrap()
    };
    let message = thin(&|a| a.events_matched = 0);
    assert!(message.contains("evidence.minMatchedEvents 1"), "{message}");
    assert!(message.contains("approvedRevision"), "{message}");
    let message = thin(&|a| {
        a.days_without_files = vec!["2024-12-01".to_string(), "2024-12-02".to_string()];
        a.days_without_files_count = 2;
    });
    assert!(message.contains("2024-12-01, 2024-12-02"), "{message}");
    // A sharp drop from the analysis before: the trail lost most of the role's activity.
    let before = LeastPrivilegeRoleStatus {
        analysis: Some(Analysis {
            events_matched: 1000,
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = plan(
        &s,
        &observed(before, original_role(), Some(analysis(vec![get_orders()]))),
    );
    assert_condition(&p, "Approved", FALSE, "InsufficientEvidence");
    assert_eq!(
        p.status.analysis.as_ref().unwrap().previous_events_matched,
        Some(1000),
        "kept, so the next look decides the same"
    );
    let again = plan(&s, &next(&p, original_role()));
    assert!(again.operations.is_empty());
    assert_condition(&again, "Approved", FALSE, "InsufficientEvidence");
    // Thresholds are the spec's; Manual approval is a human's call on the same evidence.
    let mut lenient = s.clone();
    lenient.evidence.max_drop_percent = 100;
    let before = LeastPrivilegeRoleStatus {
        analysis: Some(Analysis {
            events_matched: 1000,
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = plan(
        &lenient,
        &observed(
            before.clone(),
            original_role(),
            Some(analysis(vec![get_orders()])),
        ),
    );
    assert!(!p.operations.is_empty());
    let mut manual = spec(Mode::Enforce, Approval::Manual);
    manual.approved_revision = Some(set_revision(&[get_orders()]));
    let p = plan(
        &manual,
        &observed(before, original_role(), Some(analysis(vec![get_orders()]))),
    );
    assert!(!p.operations.is_empty());
}

#[test]
fn what_the_proposal_leaves_out_is_listed_never_silent() {
    let mut result = analysis(vec![get_orders()]);
    result.generated.dropped = (0..60)
        .map(|i| crate::generate::Dropped {
            action: "kms:Decrypt".to_string(),
            resource: format!("arn:aws:kms:us-east-1:123456789012:key/{i}"),
            reason: "not allowed by any single current statement".to_string(),
        })
        .collect();
    let p = plan(
        &spec(Mode::Recommend, Approval::Manual),
        &observed(Default::default(), original_role(), Some(result)),
    );
    let proposal = p.status.proposal.unwrap();
    assert_eq!(proposal.dropped_count, 60);
    assert_eq!(proposal.dropped.len(), crate::controller::crd::REPORT_LIMIT);
    assert_eq!(proposal.dropped[0].action, "kms:Decrypt");
    assert!(proposal.dropped[0].reason.contains("not allowed"));
}

/// Restore and a customer-managed policy whose document changed after the backup: its
/// backed-up document comes back (before it is attached again) only where that changes no one
/// else and its owner allowed it; otherwise the Warning names the policy and why.
#[test]
fn restore_puts_back_a_customer_policy_only_where_it_changes_no_one_else() {
    const DATA: &str = "arn:aws:iam::123456789012:policy/app-data";
    let s = spec(Mode::Enforce, Approval::Automatic);
    let mut before = original_role();
    before
        .attached
        .push(attached(DATA, doc("s3:GetObject", "*")));
    let (first, after) = enforced_from(&s, &before, vec![get_orders()]);
    assert!(after.attached.iter().all(|a| a.arn != DATA), "detached");
    let mut o = next(&first, after);
    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let now = |document: Policy, restorable: bool, attached_to: &[&str]| {
        Ok(CustomerPolicyNow {
            document,
            attached_to: attached_to.iter().map(|e| e.to_string()).collect(),
            restorable,
        })
    };
    let changed = doc("s3:ListBucket", "*");
    let original = doc("s3:GetObject", "*").canonical_json();
    let mut cleanup = |policy: Result<CustomerPolicyNow, String>| {
        o.customer_policies = BTreeMap::from([(DATA.to_string(), policy)]);
        plan_cleanup(&restore_spec, &o).unwrap()
    };

    let p = cleanup(now(changed.clone(), true, &[]));
    let put = position(&p, |op| {
        *op == Operation::RestorePolicyVersion {
            arn: DATA.to_string(),
            document: original.clone(),
        }
    });
    let attach = position(&p, |op| {
        *op == Operation::AttachPolicy {
            arn: DATA.to_string(),
        }
    });
    assert!(put < attach);
    assert!(!p.events.iter().any(|e| e.reason == "PolicyNotRestored"));
    // Unchanged: nothing to put back.
    let p = cleanup(now(doc("s3:GetObject", "*"), false, &["user/alice"]));
    assert!(!p.events.iter().any(|e| e.reason == "PolicyNotRestored"));

    let mut fenced = changed.clone();
    fenced
        .statements
        .push(doc("s3:DeleteBucket", "*").statements[0].clone());
    fenced.statements[1].effect = crate::policy::document::Effect::Deny;
    for (policy, why) in [
        (
            now(changed.clone(), true, &["group/data", "role/checkout-api"]),
            "group/data",
        ),
        (now(changed.clone(), false, &[]), RESTORABLE_TAG),
        (now(fenced, true, &[]), "a Deny"),
        (
            Err("AccessDenied: iam:ListEntitiesForPolicy".to_string()),
            "AccessDenied",
        ),
    ] {
        let p = cleanup(policy);
        let restores = p
            .operations
            .iter()
            .any(|op| matches!(op, Operation::RestorePolicyVersion { .. }));
        assert!(!restores, "{why}: {:#?}", p.operations);
        let warning = p
            .events
            .iter()
            .find(|e| e.reason == "PolicyNotRestored")
            .unwrap();
        assert!(
            warning.note.contains(DATA) && warning.note.contains(why),
            "{}",
            warning.note
        );
        // The rest of the role is restored all the same.
        assert!(
            p.operations
                .iter()
                .any(|op| matches!(op, Operation::AttachPolicy { arn } if arn == DATA))
        );
    }
}
