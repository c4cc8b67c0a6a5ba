//! Apply: a plan's operations in order, stopping at the first failure, then its status and
//! events. Each operation is one IAM call or one backup ConfigMap write.

use super::status::{publish, write_status};
use super::{BACKUP_KEY, Context, Error, Failure, key, observe};
use crate::aws::iam::{self, Iam};
use crate::controller::crd::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use crate::controller::plan::{self, Plan, Requeue};
use crate::role::{BackupSnapshot, CLAIM_TAG, LiveRole, Operation};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use std::collections::BTreeMap;
use std::time::Duration;

/// Applies `plan`'s operations in order, then writes its status and records its events.
pub(super) async fn apply_plan(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    previous: &LeastPrivilegeRoleStatus,
    plan: Plan,
    role: Option<(&Iam, &LiveRole)>,
    now: &str,
) -> Result<Action, Failure> {
    for event in &plan.events {
        publish(ctx, lpr, event).await;
    }
    let key = key(lpr);
    if plan.events.iter().any(|e| e.reason == "Drifted") {
        ctx.metrics.drift_detected(&key.0, &key.1);
    }
    if let Some((iam, live)) = role {
        let mut backed_up = false;
        for operation in &plan.operations {
            match perform(lpr, ctx, iam, live, operation).await {
                Ok(()) => {
                    backed_up |= matches!(operation, Operation::BackupRole { .. });
                    publish(ctx, lpr, &plan::operation_event(operation)).await;
                }
                Err(error) => {
                    let status = plan::apply_failed(
                        &plan,
                        previous,
                        backed_up,
                        lpr.metadata.generation.unwrap_or(0),
                        now,
                        error.reason(),
                        &error.to_string(),
                    );
                    return Err(Failure {
                        error,
                        status: Some(status),
                    });
                }
            }
        }
    }
    for event in &plan.completion {
        publish(ctx, lpr, event).await;
        if event.reason == "PolicyApplied" {
            ctx.metrics.applied(&key.0, &key.1);
        }
    }
    for (level, count) in &plan.restored {
        ctx.metrics.restored(&key.0, &key.1, level, *count);
    }
    let pending = (plan.status.restore.as_ref()).map_or(0, |r| r.pending.len() as u64);
    ctx.metrics.set_restores_pending(&key.0, &key.1, pending);
    write_status(lpr, ctx, &plan.status)
        .await
        .map_err(Error::Kube)?;
    Ok(action(plan.requeue))
}

pub(super) fn action(requeue: Requeue) -> Action {
    match requeue {
        Requeue::After(secs) => Action::requeue(Duration::from_secs(secs)),
        Requeue::AwaitChange => Action::await_change(),
    }
}

/// One operation against IAM (or the backup ConfigMap).
pub(super) async fn perform(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    iam: &Iam,
    live: &LiveRole,
    operation: &Operation,
) -> Result<(), Error> {
    if ctx.write_guard.as_ref().is_some_and(|guard| !guard.holds()) {
        return Err(Error::NotLeading);
    }
    let role = live.name.as_str();
    let result = match operation {
        Operation::BackupRole {
            config_map,
            snapshot,
        } => return write_backup(lpr, ctx, config_map, snapshot).await,
        Operation::ForgetBackup { config_map } => return delete_backup(ctx, config_map).await,
        Operation::PutManagedPolicy {
            name,
            arn,
            document,
        } => iam::put_managed_policy(iam, name, arn, document, &live.role_id)
            .await
            .map(|_| ()),
        Operation::AttachPolicy { arn } => iam::attach(iam, role, arn).await,
        Operation::DetachPolicy { arn } => iam::detach(iam, role, arn).await,
        Operation::PutInlinePolicy { name, document } => {
            iam::put_inline(iam, role, name, document).await
        }
        Operation::DeleteInlinePolicy { name } => iam::delete_inline(iam, role, name).await,
        Operation::SetPermissionsBoundary { arn } => iam::set_boundary(iam, role, arn).await,
        Operation::DeletePermissionsBoundary => iam::delete_boundary(iam, role).await,
        Operation::DeleteManagedPolicy { arn } => {
            iam::delete_managed_policy(iam, arn, &live.role_id).await
        }
        Operation::RestorePolicyVersion { arn, document } => {
            iam::restore_policy_version(iam, arn, document, role)
                .await
                .map(|_| ())
        }
        Operation::ClaimRole { uid } => iam::tag_role(iam, role, CLAIM_TAG, uid).await,
        Operation::ReleaseRole => iam::untag_role(iam, role, CLAIM_TAG).await,
    };
    ctx.metrics.aws_write(operation.api_name());
    result.map_err(Error::Apply)
}

/// The backup ConfigMap's annotation holding the operator's seal of its name and hash.
pub(super) const BACKUP_SEAL: &str = "iamtailor.dev/seal";

/// Creates the backup ConfigMap in the operator's namespace. One that exists already is kept
/// only if it holds exactly this snapshot: an object with other content is never adopted.
pub(super) async fn write_backup(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    name: &str,
    snapshot: &BackupSnapshot,
) -> Result<(), Error> {
    let json = snapshot.to_json();
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "iam-tailor".to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    "iamtailor.dev/resource".to_string(),
                    format!("{}/{}", lpr.namespace().unwrap_or_default(), lpr.name_any()),
                ),
                ("iamtailor.dev/role".to_string(), snapshot.role_arn.clone()),
                (
                    BACKUP_SEAL.to_string(),
                    ctx.status_key
                        .seal_text(name, &plan::StoredBackup::of(snapshot).sha256),
                ),
            ])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(BACKUP_KEY.to_string(), json)])),
        ..Default::default()
    };
    let failed = |reason: String| Error::Backup {
        name: name.to_string(),
        reason,
    };
    match ctx
        .backups()
        .create(&PostParams::default(), &config_map)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            match observe::read_backup_named(ctx, name).await? {
                Some(stored) if stored.sha256 == plan::StoredBackup::of(snapshot).sha256 => Ok(()),
                _ => Err(failed(
                    "it exists with other content, and is never adopted".to_string(),
                )),
            }
        }
        Err(e) => Err(failed(e.to_string())),
    }
}

async fn delete_backup(ctx: &Context, name: &str) -> Result<(), Error> {
    let name = name.to_string();
    match ctx.backups().delete(&name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(Error::Backup {
            name,
            reason: e.to_string(),
        }),
    }
}
