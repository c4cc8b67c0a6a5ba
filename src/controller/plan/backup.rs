//! The backup of the role's original policies, taken before iam-tailor's first write and
//! checked before every write after it: the backup ConfigMap is in the operator's namespace,
//! but its content is still verified against the hash the status recorded.

use super::Builder;
use super::builder::FALSE;
use crate::controller::crd::Backup;
use crate::role::{BackupSnapshot, LiveRole, Operation};

/// A backup ConfigMap as read: the hash of its `backup.json`, and the snapshot it parses to.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBackup {
    /// `sha256:` of `backup.json` exactly as stored.
    pub sha256: String,
    /// The snapshot, or why `backup.json` does not parse (or is missing).
    pub snapshot: Result<BackupSnapshot, String>,
}

impl StoredBackup {
    /// What the shell stores and the plan records: `backup.json` and its hash.
    pub fn of(snapshot: &BackupSnapshot) -> StoredBackup {
        StoredBackup {
            sha256: crate::policy::canonical::sha256_revision(&snapshot.to_json()),
            snapshot: Ok(snapshot.clone()),
        }
    }
}

/// The backup ConfigMap's name for the resource with `uid`: one per resource, unguessable
/// before the resource exists, in the operator's namespace.
pub fn backup_config_map(uid: &str) -> String {
    format!("iam-tailor-backup-{uid}")
}

/// Nothing is written without the role's original state safely stored: when the backup
/// is not, the plan's writes are dropped and InSync and Ready say why.
pub(super) fn backed_up(b: &mut Builder, live: &LiveRole) {
    if let Err((reason, message)) = check(b, live) {
        b.operations.clear();
        b.completion.clear();
        b.status.applied = b.observed.previous.applied.clone();
        b.status.history = b.observed.previous.history.clone();
        b.set("InSync", FALSE, reason, message.clone());
        b.fail(reason, message);
    }
}

/// The backup before the first write: taken (an operation first in line, recorded in status
/// with its hash, the role's ARN and RoleId), or checked. `Err` blocks every write: a backup
/// that is gone (a new one now would hold iam-tailor's changes, not the original) or that no
/// longer hashes as recorded, or one found with no record that is not the role as it is.
fn check(b: &mut Builder, live: &LiveRole) -> Result<(), (&'static str, String)> {
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
        // A backup whose status write was lost before any change: named again, but only if
        // it is exactly the role as it is now. Anything else is never adopted.
        (None, Some(stored)) if stored.snapshot.as_ref() == Ok(&BackupSnapshot::of(live)) => {
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
        (None, None) if !b.operations.is_empty() => {
            let snapshot = BackupSnapshot::of(live);
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
