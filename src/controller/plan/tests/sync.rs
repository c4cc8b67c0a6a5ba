//! Plan tests of applying, drift (InSync, Drifted) and the status around them.

use super::*;

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
