//! Plan tests of the restore of refused calls (spec.onAccessDenied).

use super::*;

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
