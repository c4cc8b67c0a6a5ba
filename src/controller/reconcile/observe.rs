//! Observe: the reads a plan starts from — the ClusterTrail the spec names, the tenancy rules, whether they admit the resource,
//! the role as IAM has it, and the backup ConfigMap. Reads only; nothing here decides.

use super::{BACKUP_KEY, Context, Error};
use crate::aws::iam::{self, Iam, IamError};
use crate::controller::crd::{ClusterTrail, LeastPrivilegeRole};
use crate::controller::plan;
use crate::controller::spec::ClusterTrailSeen;
use crate::controller::tenancy::{self, Tenancy};
use crate::policy::Policy;
use crate::role::{BackupSnapshot, CustomerPolicyNow, LiveRole, RoleState};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use std::collections::BTreeMap;

/// The tenancy rules in force: the ConfigMap in the operator's namespace, if there is one
/// (with `--require-tenancy`, its absence permits nothing).
pub(super) async fn read_tenancy(ctx: &Context) -> Result<Tenancy, Error> {
    let config_map = ctx
        .backups()
        .get_opt(tenancy::CONFIG_MAP)
        .await
        .map_err(Error::Kube)?;
    let text = config_map.map(|c| {
        c.data
            .and_then(|mut d| d.remove(tenancy::CONFIG_KEY))
            .unwrap_or_default()
    });
    Ok(Tenancy::from_config_map(
        text.as_deref(),
        ctx.require_tenancy,
    ))
}

/// The `ClusterTrail` the resource names, if it names one: whether it admits the resource's
/// namespace is the spec's validation to say.
pub(super) async fn read_cluster_trail(
    ctx: &Context,
    lpr: &LeastPrivilegeRole,
) -> Result<ClusterTrailSeen, Error> {
    let namespace = lpr.namespace().unwrap_or_default();
    let Some(name) = (lpr.spec.cloud_trail.cluster_trail.as_deref()).filter(|n| !n.is_empty())
    else {
        return Ok(ClusterTrailSeen {
            namespace,
            found: None,
        });
    };
    let trails: Api<ClusterTrail> = Api::all(ctx.client.clone());
    let found = trails.get_opt(name).await.map_err(Error::Kube)?;
    Ok(ClusterTrailSeen {
        namespace,
        found: found.map(|t| t.spec),
    })
}

/// Whether the tenancy rules let `lpr` use its `assumeRoleArn`; when they do, the access
/// role's ExternalId (from the Secret in the operator's namespace) is recorded for the session.
pub(super) async fn admit(
    ctx: &Context,
    lpr: &LeastPrivilegeRole,
    tenancy: &Tenancy,
) -> Result<Result<(), String>, Error> {
    let namespace = lpr.namespace().unwrap_or_default();
    let assume = lpr
        .spec
        .assume_role_arn
        .as_deref()
        .filter(|a| !a.is_empty());
    let key = match tenancy.access_role(&namespace, assume) {
        Ok(key) => key,
        Err(reason) => return Ok(Err(reason)),
    };
    let (Some(arn), Some(key)) = (assume, key) else {
        if let Some(arn) = assume {
            ctx.aws.set_external_id(arn, None);
        }
        return Ok(Ok(()));
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.backup_namespace);
    let secret = secrets
        .get_opt(tenancy::EXTERNAL_IDS_SECRET)
        .await
        .map_err(Error::Kube)?;
    let id = secret
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(&key))
        .and_then(|v| String::from_utf8(v.0).ok());
    match id {
        Some(id) => {
            ctx.aws.set_external_id(arn, Some(id));
            Ok(Ok(()))
        }
        None => Ok(Err(format!(
            "Secret {}/{} has no key {key} with the ExternalId of {arn}",
            ctx.backup_namespace,
            tenancy::EXTERNAL_IDS_SECRET
        ))),
    }
}

/// The role as IAM has it, if the tenancy rules let a resource in `namespace` read it (GetRole
/// alone decides: the owner's tags, then the configuration, with Enforce when `enforce`); a
/// missing or refused role is a state, not an error.
pub(super) async fn read_role_state(
    iam: &Iam,
    name: &str,
    namespace: &str,
    tenancy: &Tenancy,
    enforce: bool,
) -> Result<RoleState, Error> {
    let head = match iam::get_role(iam, name).await {
        Ok(head) => head,
        Err(IamError::NotFound { .. }) => return Ok(RoleState::NotFound),
        Err(e) => return Err(Error::ReadRole(e)),
    };
    let permitted = tenancy::permits(namespace, &head.tags)
        .and_then(|()| tenancy.target(namespace, &head.arn, enforce));
    if let Err(reason) = permitted {
        return Ok(RoleState::NotPermitted {
            arn: head.arn,
            reason,
        });
    }
    match iam::read_documents(iam, head, enforce).await {
        Ok(live) => Ok(RoleState::Found(live)),
        Err(IamError::NotFound { .. }) => Ok(RoleState::NotFound),
        Err(e) => Err(Error::ReadRole(e)),
    }
}

/// What Restore needs of the customer-managed policies `backup` lists in the role's account
/// (at most [`plan::MAX_DOCUMENTS`] are ever attached): each as IAM has it now, or why it
/// could not be read. One that is gone is left out.
pub(super) async fn read_customer_policies(
    iam: &Iam,
    live: &LiveRole,
    backup: &BackupSnapshot,
) -> Result<BTreeMap<String, Result<CustomerPolicyNow, String>>, Error> {
    let mut found = BTreeMap::new();
    let arns = (backup.customer_managed.keys())
        .filter(|arn| arn.split(':').nth(4) == Some(live.account()))
        .take(plan::MAX_DOCUMENTS);
    for arn in arns {
        let now = match iam::customer_policy_now(iam, arn).await {
            Ok(now) => Ok(now),
            Err(IamError::NotFound { .. }) => continue,
            Err(e) if !e.is_retryable() => Err(e.to_string()),
            Err(e) => return Err(Error::ReadRole(e)),
        };
        found.insert(arn.clone(), now);
    }
    Ok(found)
}

/// Reads the backup ConfigMap of the resource `uid`, if there is one: its hash and snapshot.
pub(super) async fn read_backup(
    ctx: &Context,
    uid: &str,
) -> Result<Option<plan::StoredBackup>, Error> {
    read_backup_named(ctx, &plan::backup_config_map(uid)).await
}

/// Reads the original kept for the role with `role_id` ([`plan::original_config_map`]), if
/// there is one.
pub(super) async fn read_original(
    ctx: &Context,
    role_id: &str,
) -> Result<Option<plan::StoredBackup>, Error> {
    read_backup_named(ctx, &plan::original_config_map(role_id)).await
}

/// Reads the backup ConfigMap `name`, if there is one: its hash and snapshot.
pub(super) async fn read_backup_named(
    ctx: &Context,
    name: &str,
) -> Result<Option<plan::StoredBackup>, Error> {
    let Some(config_map) = ctx.backups().get_opt(name).await.map_err(Error::Kube)? else {
        return Ok(None);
    };
    let json = config_map.data.as_ref().and_then(|d| d.get(BACKUP_KEY));
    let sha256 = crate::policy::canonical::sha256_revision(json.map_or("", String::as_str));
    let sealed = (config_map.metadata.annotations.as_ref())
        .and_then(|a| a.get(super::apply::BACKUP_SEAL))
        .is_some_and(|seal| ctx.status_key.verify_text(name, &sha256, seal));
    Ok(Some(plan::StoredBackup {
        snapshot: match json {
            None => Err(format!("no {BACKUP_KEY} key")),
            Some(json) => serde_json::from_str(json).map_err(|e| format!("{BACKUP_KEY}: {e}")),
        },
        sha256,
        sealed,
    }))
}

/// What `spec.rollbackTo` needs ([`plan::rollback_wanted`]): the versions IAM keeps of each
/// of iam-tailor's policies for the role, index 0 up to the first that does not exist. A
/// policy without iam-tailor's tags for the role is the plan's to report.
pub(super) async fn read_rollback(
    iam: &Iam,
    live: &LiveRole,
) -> Result<Result<Vec<Vec<Policy>>, String>, Error> {
    let mut versions = Vec::new();
    for index in 0..plan::MAX_DOCUMENTS {
        let arn = live.policy_arn(index);
        match iam::owned_policy_versions(iam, &arn, &live.role_id).await {
            Ok(found) => versions.push(found),
            Err(IamError::NotFound { .. }) => break,
            Err(e) if !e.is_retryable() => return Ok(Err(e.to_string())),
            Err(e) => return Err(Error::ReadRole(e)),
        }
    }
    Ok(Ok(versions))
}

/// The documents of the AWS managed policies the backup lists, as IAM has them (read within
/// the hour: `known`) ([`plan::original_needed`]); a refusal is the plan's to report.
pub(super) async fn read_original_aws_managed(
    iam: &Iam,
    known: &super::context::ManagedDocuments,
    backup: Option<&plan::StoredBackup>,
) -> Result<Result<BTreeMap<String, Policy>, String>, Error> {
    let mut documents = BTreeMap::new();
    let snapshot = backup.and_then(|b| b.snapshot.as_ref().ok());
    for arn in snapshot.map(plan::backup_aws_managed).unwrap_or_default() {
        let now = std::time::Instant::now();
        if let Some(document) = known.get(arn, now) {
            documents.insert(arn.to_string(), document);
            continue;
        }
        match iam::managed_document(iam, arn).await {
            Ok(document) => {
                known.put(arn, document.clone(), now);
                documents.insert(arn.to_string(), document);
            }
            Err(e) if !e.is_retryable() => return Ok(Err(e.to_string())),
            Err(e) => return Err(Error::ReadRole(e)),
        }
    }
    Ok(Ok(documents))
}

/// The document of the boundary the spec declares by ARN ([`plan::declared_boundary_to_read`]);
/// a refusal or a missing policy is the plan's to report.
pub(super) async fn read_declared_boundary(
    iam: &Iam,
    arn: &str,
) -> Result<Result<Policy, String>, Error> {
    match iam::managed_document(iam, arn).await {
        Ok(document) => Ok(Ok(document)),
        Err(e) if !e.is_retryable() => Ok(Err(e.to_string())),
        Err(e) => Err(Error::ReadRole(e)),
    }
}
