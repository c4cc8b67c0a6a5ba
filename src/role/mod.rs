//! The IAM role as iam-tailor models it: what it holds ([`LiveRole`]), the writes that change
//! it ([`Operation`]), the backup of its original state ([`BackupSnapshot`]), the proof
//! that a sequence of writes never widens it ([`proof`]), its policies' [`names`] and IAM's
//! [`last_accessed`] data of it. A ground-floor module: it knows no
//! Kubernetes and no AWS SDK, so `aws` (which reads and writes roles) and `controller` (which
//! plans the writes) both build on it.

pub mod last_accessed;
pub mod names;
pub mod proof;

/// The role tag naming the UID of the one LeastPrivilegeRole that manages the role: set before
/// the first write, so a second resource (in any namespace, or another cluster) finds the role
/// taken.
pub const CLAIM_TAG: &str = "iam-tailor.dev/claimed-by";

/// IAM keeps at most this many versions of a managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// The tag (value `true`) by which a customer-managed policy's owner lets Restore put its
/// backed-up document back; the operator's IAM policy allows new versions only of policies
/// carrying it (and of iam-tailor's own).
pub const RESTORABLE_TAG: &str = "iam-tailor.dev/restorable";

use crate::policy::Policy;
use crate::policy::document::Effect;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The IAM role as read this time.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleState {
    NotFound,
    /// The role exists but may not be read or written by this resource (`arn`: the role's,
    /// `reason`: why, from the tenancy rules); nothing more was read.
    NotPermitted {
        arn: String,
        reason: String,
    },
    Found(LiveRole),
}

/// What the role holds, as read from IAM.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRole {
    pub name: String,
    pub arn: String,
    /// IAM's immutable id (`AROA…`): a role deleted and created again under the same name
    /// gets a new one.
    pub role_id: String,
    /// Inline policy name → document.
    pub inline: BTreeMap<String, Policy>,
    pub attached: Vec<AttachedPolicy>,
    pub permissions_boundary: Option<String>,
    /// The role's tags (key → value).
    pub tags: BTreeMap<String, String>,
    /// Its trust policy (AssumeRolePolicyDocument, URL-decoded), as IAM returned it.
    pub trust_policy: Option<String>,
    /// The managed policy that is `permissions_boundary`, with its default document and
    /// whether iam-tailor made it for this role; `None` without a boundary (or when the
    /// policy is gone), so nothing can be proven about it.
    pub boundary_policy: Option<Box<AttachedPolicy>>,
    /// The names iam-tailor's policies for this role take ([`names`]).
    pub names: names::PolicyNames,
}

impl LiveRole {
    /// Inline documents and attached default versions: everything the role is granted.
    pub fn documents(&self) -> Vec<Policy> {
        self.inline
            .values()
            .chain(self.attached.iter().map(|a| &a.document))
            .cloned()
            .collect()
    }

    /// The UID of the resource that claimed the role ([`CLAIM_TAG`]), if any.
    pub fn claimed_by(&self) -> Option<&str> {
        self.tags.get(CLAIM_TAG).map(String::as_str)
    }

    /// The account id, from the ARN (`arn:aws:iam::<account>:role/…`).
    pub fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or("")
    }
}

/// A managed policy attached to the role.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachedPolicy {
    pub arn: String,
    pub name: String,
    /// The policy's default version.
    pub document: Policy,
    /// Made by iam-tailor (the shell decides, e.g. from a tag); such policies are never
    /// backed up and are detached when the applied revision no longer names them.
    pub managed_by_iam_tailor: bool,
}

/// A customer-managed policy of the role's backup, as IAM has it now: what Restore needs to
/// know before putting its backed-up document back.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerPolicyNow {
    /// Its default version.
    pub document: Policy,
    /// Every role, user and group it is attached to (`role/<name>`, `user/<name>`,
    /// `group/<name>`), sorted.
    pub attached_to: Vec<String>,
    /// It carries [`RESTORABLE_TAG`]` = true`.
    pub restorable: bool,
}

/// One IAM (or ConfigMap) write, applied by the shell in the order given.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Operation {
    /// Store the role's original state in a ConfigMap before the first change, for Restore.
    BackupRole {
        config_map: String,
        snapshot: BackupSnapshot,
    },
    /// Make the managed policy `name` hold `document` as its default version: create it, or
    /// add a version (pruning to IAM's 5); nothing when the default already has this content.
    PutManagedPolicy {
        name: String,
        arn: String,
        /// Compact canonical JSON.
        document: String,
    },
    AttachPolicy {
        arn: String,
    },
    DetachPolicy {
        arn: String,
    },
    PutInlinePolicy {
        name: String,
        document: String,
    },
    DeleteInlinePolicy {
        name: String,
    },
    SetPermissionsBoundary {
        arn: String,
    },
    DeletePermissionsBoundary,
    /// Delete one of iam-tailor's managed policies (all its versions); gone already is done.
    DeleteManagedPolicy {
        arn: String,
    },
    /// Restore only: make a customer-managed policy that is not iam-tailor's hold its backed-up
    /// `document` again as the default version (the version that has it, or a new one, IAM
    /// keeping 5). Planned only for a policy tagged [`RESTORABLE_TAG`] and attached to no
    /// other identity, and written only if that still holds.
    RestorePolicyVersion {
        arn: String,
        /// Compact canonical JSON.
        document: String,
    },
    /// Tag the role [`CLAIM_TAG`] = `uid`: this resource manages it from now on.
    ClaimRole {
        uid: String,
    },
    /// Remove the claim (the resource is going away).
    ReleaseRole,
    /// Delete a backup ConfigMap whose job is done (the role holds it again, or it was handed
    /// over to the role's kept original).
    ForgetBackup {
        config_map: String,
    },
}

impl Operation {
    /// The IAM API it calls (or the ConfigMap write): the label of
    /// `iam_tailor_aws_writes_total`.
    pub fn api_name(&self) -> &'static str {
        match self {
            Operation::BackupRole { .. } => "BackupRole",
            Operation::ForgetBackup { .. } => "DeleteBackup",
            Operation::PutManagedPolicy { .. } => "PutManagedPolicy",
            Operation::AttachPolicy { .. } => "AttachRolePolicy",
            Operation::DetachPolicy { .. } => "DetachRolePolicy",
            Operation::PutInlinePolicy { .. } => "PutRolePolicy",
            Operation::DeleteInlinePolicy { .. } => "DeleteRolePolicy",
            Operation::SetPermissionsBoundary { .. } => "PutRolePermissionsBoundary",
            Operation::DeletePermissionsBoundary => "DeleteRolePermissionsBoundary",
            Operation::DeleteManagedPolicy { .. } => "DeletePolicy",
            Operation::RestorePolicyVersion { .. } => "CreatePolicyVersion",
            Operation::ClaimRole { .. } => "TagRole",
            Operation::ReleaseRole => "UntagRole",
        }
    }

    /// The Event recorded once it succeeded: (reason, note).
    pub fn event(&self) -> (&'static str, String) {
        match self {
            Operation::BackupRole { config_map, .. } => (
                "BackedUp",
                format!("saved the role's original policies in ConfigMap {config_map}"),
            ),
            Operation::ForgetBackup { config_map } => (
                "BackupDeleted",
                format!("deleted ConfigMap {config_map}: its job is done"),
            ),
            Operation::PutManagedPolicy { name, .. } => {
                ("PolicyPut", format!("put managed policy {name}"))
            }
            Operation::AttachPolicy { arn } => ("PolicyAttached", format!("attached {arn}")),
            Operation::DetachPolicy { arn } => ("PolicyDetached", format!("detached {arn}")),
            Operation::PutInlinePolicy { name, .. } => {
                ("InlinePolicyPut", format!("put inline policy {name}"))
            }
            Operation::DeleteInlinePolicy { name } => (
                "InlinePolicyDeleted",
                format!("deleted inline policy {name}"),
            ),
            Operation::SetPermissionsBoundary { arn } => (
                "PermissionsBoundarySet",
                format!("set permissions boundary {arn}"),
            ),
            Operation::DeletePermissionsBoundary => (
                "PermissionsBoundaryDeleted",
                "removed the permissions boundary".to_string(),
            ),
            Operation::DeleteManagedPolicy { arn } => {
                ("PolicyDeleted", format!("deleted managed policy {arn}"))
            }
            Operation::RestorePolicyVersion { arn, .. } => (
                "PolicyVersionRestored",
                format!("{arn} holds its backed-up document again"),
            ),
            Operation::ClaimRole { uid } => (
                "Claimed",
                format!("tagged the role {CLAIM_TAG}={uid}: this resource manages it"),
            ),
            Operation::ReleaseRole => (
                "ClaimReleased",
                format!("removed the role's {CLAIM_TAG} tag"),
            ),
        }
    }

    /// The write in words, for messages ("detach arn:…").
    pub fn describe(&self) -> String {
        match self {
            Operation::BackupRole { config_map, .. } => format!("back up to {config_map}"),
            Operation::PutManagedPolicy { name, .. } => format!("put managed policy {name}"),
            Operation::AttachPolicy { arn } => format!("attach {arn}"),
            Operation::DetachPolicy { arn } => format!("detach {arn}"),
            Operation::PutInlinePolicy { name, .. } => format!("put inline policy {name}"),
            Operation::DeleteInlinePolicy { name } => format!("delete inline policy {name}"),
            Operation::SetPermissionsBoundary { arn } => format!("set permissions boundary {arn}"),
            Operation::DeletePermissionsBoundary => "remove the permissions boundary".to_string(),
            Operation::DeleteManagedPolicy { arn } => format!("delete managed policy {arn}"),
            Operation::RestorePolicyVersion { arn, .. } => {
                format!("put back the backed-up document of {arn}")
            }
            Operation::ClaimRole { uid } => format!("claim the role for resource {uid}"),
            Operation::ReleaseRole => "release the claim on the role".to_string(),
            Operation::ForgetBackup { config_map } => format!("delete backup {config_map}"),
        }
    }
}

/// The role as it was before iam-tailor changed it: what Restore puts back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSnapshot {
    pub role_name: String,
    pub role_arn: String,
    /// Inline policy name → compact canonical JSON.
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs, sorted.
    pub attached: Vec<String>,
    /// Customer-managed policy ARN → its default document (canonical JSON): what Restore puts
    /// back where that changes no other identity ([`Operation::RestorePolicyVersion`]).
    pub customer_managed: BTreeMap<String, String>,
    pub permissions_boundary: Option<String>,
    /// The role's RoleId when the backup was taken: Restore writes only to that very role.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_id: String,
}

impl BackupSnapshot {
    /// The JSON stored in the backup ConfigMap: deterministic (sorted maps), so its hash
    /// identifies the backup.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a snapshot serializes")
    }

    /// The snapshot of `live`, leaving out iam-tailor's own policies.
    pub fn of(live: &LiveRole) -> BackupSnapshot {
        let theirs = || live.attached.iter().filter(|a| !a.managed_by_iam_tailor);
        let mut attached: Vec<String> = theirs().map(|a| a.arn.clone()).collect();
        attached.sort();
        attached.dedup();
        BackupSnapshot {
            role_name: live.name.clone(),
            role_arn: live.arn.clone(),
            inline: live
                .inline
                .iter()
                .map(|(name, doc)| (name.clone(), doc.canonical_json()))
                .collect(),
            attached,
            customer_managed: theirs()
                .filter(|a| !is_aws_managed(&a.arn))
                .map(|a| (a.arn.clone(), a.document.canonical_json()))
                .collect(),
            permissions_boundary: live.permissions_boundary.clone(),
            role_id: live.role_id.clone(),
        }
    }
}

/// AWS-managed policies live in the pseudo-account `aws` (`arn:aws:iam::aws:policy/…`, in
/// every partition); iam-tailor never owns or edits them.
pub fn is_aws_managed(arn: &str) -> bool {
    arn.split(':').nth(4) == Some("aws")
}

/// Does the document hold a Deny statement? iam-tailor never removes one it did not write:
/// a Deny only narrows, and it may be an incident responder's (the IAM console's
/// `AWSRevokeOlderSessions`).
pub fn has_deny(document: &Policy) -> bool {
    document.statements.iter().any(|s| s.effect == Effect::Deny)
}
