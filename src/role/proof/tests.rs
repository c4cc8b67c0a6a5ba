//! Unit tests of the state-by-state proof: each attack a plan could make on the role.

mod differential;

use super::*;
use crate::role::AttachedPolicy;

const ACCOUNT_POLICY: &str = "arn:aws:iam::123456789012:policy/";
const S3_FULL: &str = "arn:aws:iam::aws:policy/AmazonS3FullAccess";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

fn policy(statements: &str) -> Policy {
    Policy::parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
    ))
    .unwrap()
}

fn allow(action: &str, resource: &str) -> Policy {
    policy(&format!(
        r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#
    ))
}

fn attached(arn: &str, document: Policy, ours: bool) -> AttachedPolicy {
    AttachedPolicy {
        arn: arn.to_string(),
        name: arn.rsplit('/').next().unwrap().to_string(),
        document,
        managed_by_iam_tailor: ours,
    }
}

fn role(inline: &[(&str, Policy)], attached: Vec<AttachedPolicy>) -> LiveRole {
    LiveRole {
        names: Default::default(),
        name: "web".to_string(),
        arn: "arn:aws:iam::123456789012:role/web".to_string(),
        role_id: "AROAWEB".to_string(),
        inline: inline
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect(),
        attached,
        permissions_boundary: None,
        tags: Default::default(),
        trust_policy: None,
        boundary_policy: None,
    }
}

fn ours(name: &str) -> String {
    format!("{ACCOUNT_POLICY}{name}")
}

fn put(name: &str, document: &Policy) -> Operation {
    Operation::PutManagedPolicy {
        name: name.to_string(),
        arn: ours(name),
        document: document.canonical_json(),
    }
}

fn fence() -> Policy {
    policy(r#"{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}"#)
}

#[test]
fn deleting_a_fencing_deny_beside_a_kept_allow_is_refused() {
    // attachedPolicies: Keep + inlinePolicies: Delete, an inline Deny fencing the kept s3:*.
    let before = role(
        &[("fence", fence())],
        vec![attached(S3_FULL, allow("s3:*", "*"), false)],
    );
    let proposal = allow("s3:GetObject", "arn:aws:s3:::orders/*");
    let ops = [
        put("iam-tailor-web", &proposal),
        Operation::AttachPolicy {
            arn: ours("iam-tailor-web"),
        },
        Operation::DeleteInlinePolicy {
            name: "fence".to_string(),
        },
    ];
    let widening = prove_each_state(&before, &ops).unwrap_err();
    assert_eq!(widening.step, 3, "{widening}");
    assert!(widening.to_string().contains("Deny"), "{widening}");
    // Without the delete, every state is within the role's access.
    assert_eq!(prove_each_state(&before, &ops[..2]), Ok(()));
}

#[test]
fn an_out_of_band_deny_is_never_removed_even_where_the_proof_would_pass() {
    // The console's AWSRevokeOlderSessions: a conditional Deny of everything. Nothing the role
    // is allowed is left once it goes... but removing it widens, and the guard says so first.
    let revoke = policy(
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-29T10:00:00Z"}}}"#,
    );
    let before = role(
        &[("AWSRevokeOlderSessions", revoke.clone())],
        vec![attached(
            &ours("iam-tailor-web"),
            allow("s3:GetObject", "*"),
            true,
        )],
    );
    for op in [
        Operation::DeleteInlinePolicy {
            name: "AWSRevokeOlderSessions".to_string(),
        },
        Operation::PutInlinePolicy {
            name: "AWSRevokeOlderSessions".to_string(),
            document: allow("s3:GetObject", "*").canonical_json(),
        },
    ] {
        let widening = guard(&before, std::slice::from_ref(&op)).unwrap_err();
        assert!(widening.reasons[0].contains("Deny"), "{widening}");
        assert!(prove_each_state(&before, &[op]).is_err());
    }
    // A managed policy holding a Deny is not detached either, unless iam-tailor wrote it.
    let theirs = ours("incident-deny");
    let before = role(&[], vec![attached(&theirs, revoke, false)]);
    let detach = Operation::DetachPolicy { arn: theirs };
    assert!(guard(&before, &[detach]).is_err());
}

#[test]
fn removals_are_proven_in_order_so_no_state_between_is_wider() {
    // iam-tailor's stale policy fences secret/*; an inline Allow grants GetObject everywhere.
    let stale = policy(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
           {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/secret/*"}"#,
    );
    let before = role(
        &[("extra", allow("s3:GetObject", "*"))],
        vec![attached(&ours("iam-tailor-web"), stale, true)],
    );
    let detach = Operation::DetachPolicy {
        arn: ours("iam-tailor-web"),
    };
    let delete = Operation::DeleteInlinePolicy {
        name: "extra".to_string(),
    };
    // Detaching the Deny first leaves the inline Allow unfenced for a moment.
    let widening = prove_each_state(&before, &[detach.clone(), delete.clone()]).unwrap_err();
    assert_eq!(widening.step, 1, "{widening}");
    assert_eq!(prove_each_state(&before, &[delete, detach]), Ok(()));
}

#[test]
fn a_policy_whose_document_the_plan_does_not_know_is_never_attached() {
    // A forged status naming AdministratorAccess as iam-tailor's applied policy.
    let before = role(&[], vec![attached(S3_FULL, allow("s3:*", "*"), false)]);
    let attach = Operation::AttachPolicy {
        arn: ADMIN.to_string(),
    };
    let widening = prove_each_state(&before, &[attach]).unwrap_err();
    assert!(widening.to_string().contains("not known"), "{widening}");
    // Putting a wide document and attaching it is caught on its content.
    let ops = [
        put("iam-tailor-web", &allow("*", "*")),
        Operation::AttachPolicy {
            arn: ours("iam-tailor-web"),
        },
    ];
    assert_eq!(prove_each_state(&before, &ops).unwrap_err().step, 2);
}

#[test]
fn re_attaching_a_policy_someone_detached_widens_the_role_as_it_is_now() {
    let document = allow("s3:GetObject", "arn:aws:s3:::orders/*");
    let before = role(&[], vec![]);
    let ops = [
        put("iam-tailor-web", &document),
        Operation::AttachPolicy {
            arn: ours("iam-tailor-web"),
        },
    ];
    assert!(prove_each_state(&before, &ops).is_err());
}

#[test]
fn a_boundary_is_never_removed_or_replaced_but_may_be_set() {
    let mut before = role(&[], vec![attached(S3_FULL, allow("s3:*", "*"), false)]);
    let set = |arn: &str| Operation::SetPermissionsBoundary {
        arn: format!("{ACCOUNT_POLICY}{arn}"),
    };
    assert_eq!(prove_each_state(&before, &[set("fence")]), Ok(()));
    before.permissions_boundary = Some(format!("{ACCOUNT_POLICY}fence"));
    assert_eq!(prove_each_state(&before, &[set("fence")]), Ok(()));
    for op in [set("wider"), Operation::DeletePermissionsBoundary] {
        let widening = prove_each_state(&before, std::slice::from_ref(&op)).unwrap_err();
        assert!(widening.reasons[0].contains("boundary"), "{widening}");
    }
}

/// `before` with the boundary `arn` (iam-tailor's own when `own`) holding `document`.
fn bounded_by(mut before: LiveRole, arn: &str, document: Policy, own: bool) -> LiveRole {
    before.permissions_boundary = Some(arn.to_string());
    before.boundary_policy = Some(Box::new(attached(arn, document, own)));
    before
}

#[test]
fn a_boundary_is_replaced_or_rewritten_only_within_itself() {
    let before = role(&[], vec![attached(S3_FULL, allow("s3:*", "*"), false)]);
    let (fence, narrow, wide) = (ours("fence"), ours("narrow"), ours("wide"));
    let before = bounded_by(
        before,
        &fence,
        allow("s3:*", "arn:aws:s3:::orders/*"),
        false,
    );
    let set = |arn: &str| Operation::SetPermissionsBoundary {
        arn: arn.to_string(),
    };
    let known = BTreeMap::from([
        (
            narrow.clone(),
            allow("s3:GetObject", "arn:aws:s3:::orders/*"),
        ),
        (wide.clone(), allow("s3:*", "*")),
    ]);
    assert_eq!(
        prove_each_state_knowing(&before, &[set(&narrow)], &known),
        Ok(())
    );
    for (op, known) in [
        (set(&wide), known.clone()),
        // A document the plan does not know proves nothing.
        (set(&narrow), BTreeMap::new()),
    ] {
        let widening = prove_each_state_knowing(&before, &[op], &known).unwrap_err();
        assert!(widening.reasons[0].contains("proven within"), "{widening}");
    }
    // A new document for the boundary policy itself: narrower is fine, wider is not.
    let rewrite = |doc: &Policy| Operation::PutManagedPolicy {
        name: "fence".to_string(),
        arn: fence.clone(),
        document: doc.canonical_json(),
    };
    let tighter = allow("s3:GetObject", "arn:aws:s3:::orders/*");
    assert_eq!(prove_each_state(&before, &[rewrite(&tighter)]), Ok(()));
    let widening = prove_each_state(&before, &[rewrite(&allow("s3:*", "*"))]).unwrap_err();
    assert!(widening.reasons[0].contains("proven within"), "{widening}");
}

#[test]
fn only_restore_takes_back_iam_tailors_own_boundary() {
    let before = role(&[], vec![attached(S3_FULL, allow("s3:*", "*"), false)]);
    let own = ours("iam-tailor.boundary.web");
    let fence = allow("s3:GetObject", "*");
    let theirs = bounded_by(before.clone(), &ours("fence"), fence.clone(), false);
    let mine = bounded_by(before, &own, fence, true);
    let original = Operation::SetPermissionsBoundary {
        arn: ours("original"),
    };
    for op in [Operation::DeletePermissionsBoundary, original] {
        // Restore (the guard alone) may take back iam-tailor's own, never someone else's.
        assert_eq!(guard(&mine, std::slice::from_ref(&op)), Ok(()));
        assert!(guard(&theirs, std::slice::from_ref(&op)).is_err(), "{op:?}");
        // A plan (the whole proof) removes or widens neither.
        assert!(
            prove_each_state(&mine, std::slice::from_ref(&op)).is_err(),
            "{op:?}"
        );
    }
}

#[test]
fn replacing_broad_access_with_the_proposal_is_proven_step_by_step() {
    // The common apply: put and attach the proposal, then detach and delete the broad grants.
    let power_user =
        policy(r#"{"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"}"#);
    let before = role(
        &[("s3-all", allow("s3:*", "*"))],
        vec![attached(
            "arn:aws:iam::aws:policy/PowerUserAccess",
            power_user,
            false,
        )],
    );
    let proposal = allow("s3:GetObject", "arn:aws:s3:::orders/*");
    let ops = [
        put("iam-tailor-web", &proposal),
        Operation::AttachPolicy {
            arn: ours("iam-tailor-web"),
        },
        Operation::DetachPolicy {
            arn: "arn:aws:iam::aws:policy/PowerUserAccess".to_string(),
        },
        Operation::DeleteInlinePolicy {
            name: "s3-all".to_string(),
        },
    ];
    assert_eq!(prove_each_state(&before, &ops), Ok(()));
}

#[test]
fn restoring_a_customer_policy_keeps_its_deny_and_never_touches_the_boundary() {
    let fence = policy(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}"#,
    );
    let data = ours("app-data");
    let restore = |document: &Policy| Operation::RestorePolicyVersion {
        arn: data.clone(),
        document: document.canonical_json(),
    };
    // Attached, or known to the plan though detached: the Deny cannot be dropped.
    let attached_now = role(&[], vec![attached(&data, fence.clone(), false)]);
    let known = BTreeMap::from([(data.clone(), fence.clone())]);
    let detached = role(&[], Vec::new());
    for (before, known) in [(&attached_now, BTreeMap::new()), (&detached, known)] {
        let lost = guard_knowing(before, &[restore(&allow("s3:*", "*"))], &known).unwrap_err();
        assert!(lost.reasons[0].contains("drops its Deny"), "{lost}");
        assert!(guard_knowing(before, &[restore(&fence)], &known).is_ok());
    }
    // The boundary's document is never rewritten by Restore.
    let mut bounded = role(&[], Vec::new());
    bounded.permissions_boundary = Some(data.clone());
    let refused = guard(&bounded, &[restore(&allow("s3:GetObject", "*"))]).unwrap_err();
    assert!(
        refused.reasons[0].contains("permissions boundary"),
        "{refused}"
    );
}
