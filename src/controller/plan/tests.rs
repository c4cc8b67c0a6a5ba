//! The plan's fixtures, shared by its tests, which live by stage in `tests/` (`analyzed`,
//! `proposal`, `shadow`, `sync`, `cleanup`, `rollback`, `restore`, `trust`, `boundary`) and
//! by threat (`attacks`): a role before iam-tailor, analyses, observations, and a model of
//! IAM applying a plan's operations.

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
    enforced_from(s, &original_role(), policies)
}

/// [`enforced`] on `role`: the first plan, with a new analysis, and the role afterwards.
fn enforced_from(
    s: &LeastPrivilegeRoleSpec,
    role: &LiveRole,
    policies: Vec<Policy>,
) -> (Plan, LiveRole) {
    let plan = plan(
        s,
        &observed(Default::default(), role.clone(), Some(analysis(policies))),
    );
    let after = apply(role, &plan.operations, &mut BTreeMap::new());
    (plan, after)
}

/// The next reconcile: a day later, no new analysis, the backup in place.
fn next(previous: &Plan, role: LiveRole) -> Observed {
    remember(previous);
    let mut o = observed(previous.status.clone(), role, None);
    o.now = T1.to_string();
    o
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

/// `Allow *` on `*`, as an intruder would plant it.
fn everything() -> Policy {
    doc("*", "*")
}

mod analyzed;
/// The attacks on the never-widen promise, one test each.
mod attacks;
mod boundary;
mod cleanup;
mod proposal;
mod restore;
mod rollback;
mod shadow;
mod sync;
mod trust;
