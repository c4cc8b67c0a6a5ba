//! One account's IAM in one paginated read (`GetAccountAuthorizationDetails`, filtered to
//! roles and customer-managed policies): every role with its inline documents, attached policy
//! ARNs, tags, boundary and RoleId, and every customer-managed policy's default document.
//! About `roles / 1000` pages, where reading the roles one by one costs 5 or more calls each.
//! AWS managed policies are left out (their documents are many and change rarely: read one
//! by one and kept, as before). What the snapshot says is what IAM said at its read; a write
//! is still preceded by a fresh read of its role.

use super::{Iam, IamError, RoleHead, decode_document, sdk_error};
use crate::policy::Policy;
use aws_sdk_iam::types::EntityType;
use std::collections::BTreeMap;

/// At most this many items a page (IAM's own maximum).
pub const PAGE_ITEMS: i32 = 1000;
/// At most this many pages a snapshot: 5,000 roles (IAM's largest quota) and as many policies
/// fit with room to spare; past it the snapshot fails rather than be partial.
pub const MAX_PAGES: usize = 100;

/// A role as the snapshot holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotRole {
    pub head: RoleHead,
    /// Inline policy name → its document, or why it does not parse.
    pub inline: BTreeMap<String, Result<Policy, String>>,
    /// Attached managed policies: (ARN, name), as IAM lists them.
    pub attached: Vec<(String, String)>,
}

/// A customer-managed policy as the snapshot holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotPolicy {
    /// IAM's immutable id: a policy deleted and created again under its name gets a new one.
    pub policy_id: String,
    pub name: String,
    /// The default version's document, or why it does not parse (or is missing).
    pub document: Result<Policy, String>,
}

/// One account's roles and customer-managed policies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountSnapshot {
    /// By role name, lowercased (IAM's role names are unique without case).
    pub roles: BTreeMap<String, SnapshotRole>,
    /// By ARN.
    pub policies: BTreeMap<String, SnapshotPolicy>,
    /// How many pages (calls) the read took.
    pub pages: usize,
}

impl AccountSnapshot {
    /// The role named `name` (any case).
    pub fn role(&self, name: &str) -> Option<&SnapshotRole> {
        self.roles.get(&name.to_lowercase())
    }
}

/// Reads the account's snapshot, [`PAGE_ITEMS`] a page.
pub async fn read_account(iam: &Iam) -> Result<AccountSnapshot, IamError> {
    let target = "the account's roles and policies";
    let mut snapshot = AccountSnapshot::default();
    let mut marker: Option<String> = None;
    loop {
        if snapshot.pages == MAX_PAGES {
            return Err(IamError::Api {
                operation: "GetAccountAuthorizationDetails",
                target: target.to_string(),
                message: format!("more than {MAX_PAGES} pages"),
                retryable: false,
            });
        }
        let page = iam
            .call()
            .await
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .filter(EntityType::LocalManagedPolicy)
            .max_items(PAGE_ITEMS)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_error("GetAccountAuthorizationDetails", target, e))?;
        snapshot.pages += 1;
        for role in page.role_detail_list() {
            let (Some(name), Some(arn), Some(role_id)) =
                (role.role_name(), role.arn(), role.role_id())
            else {
                continue;
            };
            let where_ = |what: &str| format!("role {name} {what}");
            let inline = (role.role_policy_list().iter())
                .filter_map(|p| {
                    let policy = p.policy_name()?;
                    let target = where_(&format!("inline policy {policy}"));
                    let document = match p.policy_document() {
                        Some(encoded) => {
                            decode_document(&target, encoded).map_err(|e| e.to_string())
                        }
                        None => Err(format!("{target}: no document")),
                    };
                    Some((policy.to_string(), document))
                })
                .collect();
            let attached = (role.attached_managed_policies().iter())
                .filter_map(|a| Some((a.policy_arn()?.to_string(), a.policy_name()?.to_string())))
                .collect();
            let head = RoleHead {
                name: name.to_string(),
                arn: arn.to_string(),
                role_id: role_id.to_string(),
                tags: (role.tags().iter())
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
                permissions_boundary: (role.permissions_boundary())
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(str::to_string),
                trust_policy: role.assume_role_policy_document().map(|encoded| {
                    let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
                    decoded.into_owned()
                }),
            };
            let role = SnapshotRole {
                head,
                inline,
                attached,
            };
            snapshot.roles.insert(name.to_lowercase(), role);
        }
        for policy in page.policies() {
            let Some(arn) = policy.arn() else {
                continue;
            };
            // The ARN's last segment when the name is left out (moto leaves it out).
            let name =
                (policy.policy_name()).unwrap_or_else(|| arn.rsplit('/').next().unwrap_or(arn));
            let target = format!("policy {arn}");
            let default = (policy.policy_version_list().iter()).find(|v| v.is_default_version());
            let document = match default.and_then(|v| v.document()) {
                Some(encoded) => decode_document(&target, encoded).map_err(|e| e.to_string()),
                None => Err(format!("{target}: no default version in the snapshot")),
            };
            let policy = SnapshotPolicy {
                policy_id: policy.policy_id().unwrap_or_default().to_string(),
                name: name.to_string(),
                document,
            };
            snapshot.policies.insert(arn.to_string(), policy);
        }
        match page.marker() {
            Some(next) if page.is_truncated() => marker = Some(next.to_string()),
            _ => return Ok(snapshot),
        }
    }
}
