//! The backup of the role's original policies, taken before iam-tailor's first write and
//! checked before every write after it: the backup ConfigMap is in the operator's namespace,
//! but its content is still verified against the hash the status recorded.

use super::builder::{ConditionType, FALSE};
use super::{Builder, Observed};
use crate::controller::crd::{Backup, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus, Mode};
use crate::controller::spec::ValidSpec;
use crate::policy::Policy;
use crate::role::{BackupSnapshot, LiveRole, Operation, is_aws_managed};
use crate::usage::Usage;

/// A backup ConfigMap as read: the hash of its `backup.json`, and the snapshot it parses to.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBackup {
    /// `sha256:` of `backup.json` exactly as stored.
    pub sha256: String,
    /// The snapshot, or why `backup.json` does not parse (or is missing).
    pub snapshot: Result<BackupSnapshot, String>,
    /// It carries the operator's seal of its name and hash (`controller::seal`): the operator
    /// wrote it, whatever the status says.
    pub sealed: bool,
}

impl StoredBackup {
    /// What the shell stores and the plan records: `backup.json` and its hash.
    pub fn of(snapshot: &BackupSnapshot) -> StoredBackup {
        StoredBackup {
            sha256: crate::policy::canonical::sha256_revision(&snapshot.to_json()),
            snapshot: Ok(snapshot.clone()),
            sealed: true,
        }
    }
}

/// The backup ConfigMap's name for the resource with `uid`: one per resource, unguessable
/// before the resource exists, in the operator's namespace.
pub fn backup_config_map(uid: &str) -> String {
    format!("iam-tailor-backup-{uid}")
}

/// The ConfigMap holding the original of the role with `role_id`, kept when the resource that
/// backed it up was deleted with Retain: the next resource on the role adopts it, so its
/// Restore puts back the role as it was before iam-tailor, not as the last resource left it.
pub fn original_config_map(role_id: &str) -> String {
    format!("iam-tailor-original-{}", role_id.to_ascii_lowercase())
}

/// The role's kept original ([`Observed::original`]), if the operator sealed it, it is this
/// very role's (ARN and RoleId) and every document in it parses.
pub(super) fn verified_original<'o>(
    observed: &'o Observed,
    live: &LiveRole,
) -> Option<(&'o StoredBackup, &'o BackupSnapshot)> {
    let stored = observed.original.as_ref().filter(|o| o.sealed)?;
    let snapshot = stored.snapshot.as_ref().ok()?;
    let parses = (snapshot.inline.values())
        .chain(snapshot.customer_managed.values())
        .all(|json| Policy::parse(json).is_ok());
    (snapshot.role_arn == live.arn && snapshot.role_id == live.role_id && parses)
        .then_some((stored, snapshot))
}

/// Nothing is written without the role's original state safely stored: when the backup
/// is not, the plan's writes are dropped and InSync and Ready say why.
pub(super) fn backed_up(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) {
    if let Err((reason, message)) = check(b, spec, live) {
        b.operations.clear();
        b.completion.clear();
        b.status.applied = b.observed.previous.applied.clone();
        b.status.history = b.observed.previous.history.clone();
        b.set(ConditionType::InSync, FALSE, reason, message.clone());
        b.fail(reason, message);
    }
}

/// The backup before the first write: taken (an operation first in line, recorded in status
/// with its hash, the role's ARN and RoleId), or checked. `Err` blocks every write: a backup
/// that is gone (a new one now would hold iam-tailor's changes, not the original) or that no
/// longer hashes as recorded, or one found with no record that is not the role as it is.
fn check(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) -> Result<(), (&'static str, String)> {
    let observed = b.observed;
    let config_map = backup_config_map(&observed.uid);
    let record = |sha256: &str| Backup {
        config_map: config_map.clone(),
        namespace: observed.backup_namespace.clone(),
        sha256: sha256.to_string(),
        role_arn: live.arn.clone(),
        role_id: live.role_id.clone(),
    };
    let place = format!("ConfigMap {}/{config_map}", observed.backup_namespace);
    match (&observed.previous.backup, &observed.backup) {
        (Some(recorded), Some(stored)) if stored.sha256 != recorded.sha256 => Err((
            "BackupTampered",
            format!(
                "{place} holds {}, not the {} written before the first change; iam-tailor \
                 writes nothing to the role and will not restore from it",
                stored.sha256, recorded.sha256
            ),
        )),
        (Some(_), Some(_)) => Ok(()),
        (Some(_), None) if !b.operations.is_empty() => Err((
            "BackupMissing",
            format!(
                "{place} holding the role's original policies is gone; iam-tailor writes \
                 nothing to the role without it"
            ),
        )),
        (Some(_), None) => Ok(()),
        // A backup whose status write was lost: named again, but only if the operator sealed
        // it for this resource and this role, or it is exactly the role as it is now, or the
        // role's verified original. Anything else is never adopted.
        (None, Some(stored))
            if (stored.sealed
                && stored
                    .snapshot
                    .as_ref()
                    .is_ok_and(|s| s.role_id == live.role_id))
                || stored.snapshot.as_ref() == Ok(&BackupSnapshot::of(live))
                || verified_original(observed, live).is_some_and(|(o, _)| o == stored) =>
        {
            b.status.backup = Some(record(&stored.sha256));
            Ok(())
        }
        (None, Some(stored)) if !b.operations.is_empty() => Err((
            "BackupMismatch",
            format!(
                "{place} exists but does not hold {} (RoleId {}) as it is now: iam-tailor did \
                 not write it for this resource, or the role changed since, so it is never \
                 adopted; delete it to take a new backup",
                live.arn, live.role_id
            ),
        )),
        (None, Some(_)) => Ok(()),
        // With a kept original, an enforcing resource adopts it even when it has nothing else
        // to write: its Restore must put back the role as it was before iam-tailor.
        (None, None)
            if !b.operations.is_empty()
                || (spec.mode == Mode::Enforce && verified_original(observed, live).is_some()) =>
        {
            // The role's kept original, when a resource before this one narrowed it and was
            // deleted with Retain: that, not the role as it is now, is what Restore puts back.
            let snapshot = match verified_original(observed, live) {
                Some((_, original)) => {
                    b.event(
                        super::EventType::Normal,
                        "OriginalAdopted",
                        format!(
                            "the role's original policies from before iam-tailor, kept in \
                             ConfigMap {}, are this resource's backup",
                            original_config_map(&live.role_id)
                        ),
                    );
                    original.clone()
                }
                None => BackupSnapshot::of(live),
            };
            b.status.backup = Some(record(&StoredBackup::of(&snapshot).sha256));
            b.operations.insert(
                0,
                Operation::BackupRole {
                    config_map: config_map.clone(),
                    snapshot,
                },
            );
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// The role's documents before iam-tailor's first write: the backup's inline and
/// customer-managed documents, and the AWS managed policies' documents as read now
/// ([`Observed::original_aws_managed`]). `Err` says why they are not known.
pub(super) fn original_documents(
    observed: &Observed,
    live: &LiveRole,
) -> Result<Vec<Policy>, String> {
    let snapshot = (observed.backup.as_ref())
        .and_then(|stored| stored.snapshot.as_ref().ok())
        .filter(|snapshot| snapshot.role_id == live.role_id)
        .ok_or_else(|| "no backup of this role".to_string())?;
    let aws_managed = match &observed.original_aws_managed {
        Some(Ok(read)) => read,
        Some(Err(e)) => return Err(e.clone()),
        None => return Err("the AWS managed policies were not read".to_string()),
    };
    let parse = |what: &str, json: &str| {
        Policy::parse(json).map_err(|e| format!("the backup's {what} does not parse: {e}"))
    };
    let mut documents = Vec::new();
    for (name, json) in &snapshot.inline {
        documents.push(parse(&format!("inline policy {name}"), json)?);
    }
    for arn in &snapshot.attached {
        let document = if is_aws_managed(arn) {
            (aws_managed.get(arn).cloned()).ok_or_else(|| format!("{arn} was not read"))?
        } else {
            let json = (snapshot.customer_managed.get(arn))
                .ok_or_else(|| format!("the backup has no document of {arn}"))?;
            parse(arn, json)?
        };
        documents.push(document);
    }
    Ok(documents)
}

/// The AWS managed policies the backup lists: the shell reads their documents for
/// [`original_documents`] (the backup holds only their ARNs).
pub fn backup_aws_managed(snapshot: &BackupSnapshot) -> Vec<&str> {
    (snapshot.attached.iter())
        .filter(|arn| is_aws_managed(arn))
        .map(String::as_str)
        .collect()
}

/// Whether a plan will ask for the role's original policies, so the shell reads
/// [`Observed::original_aws_managed`]: a rollback, refused calls after an apply, or
/// restored permissions to check again.
pub fn original_needed(
    spec: &LeastPrivilegeRoleSpec,
    previous: &LeastPrivilegeRoleStatus,
    after_apply: Option<&Usage>,
) -> bool {
    super::rollback_wanted(spec).is_some()
        || after_apply.is_some_and(|u| !u.denied_grants.is_empty())
        || previous
            .restore
            .as_ref()
            .is_some_and(|r| !r.restored.is_empty())
}
