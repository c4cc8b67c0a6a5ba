//! Reading a role's permissions (and when it last used them) from IAM and applying the plan's
//! [`Operation`]s to it.
//!
//! Each function is one idempotent step, so the shell can re-run a partly applied plan: the
//! deletes treat "already gone" as done, and [`put_managed_policy`] writes nothing when the
//! default version already holds the document.
//!
//! [`Operation`]: crate::role::Operation

mod account;

pub use account::{AccountSnapshot, SnapshotPolicy, SnapshotRole, read_account};

use super::{Limited, Limits};
use crate::policy::Policy;
use crate::role::last_accessed::{ActionLastAccessed, LastAccessed, ServiceLastAccessed};
use crate::role::names::{FirstNameHolder, PolicyNames, first_form_name, policy_arn};
use crate::role::{
    AttachedPolicy, CustomerPolicyNow, LiveRole, MAX_POLICY_VERSIONS, RESTORABLE_TAG,
    is_aws_managed,
};
use aws_sdk_iam::Client;
use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::primitives::{DateTime, DateTimeFormat};
use aws_sdk_iam::types::{AccessAdvisorUsageGranularityType, JobStatusType, Tag};
use std::collections::BTreeMap;
use std::time::Duration;

/// The tag that marks a managed policy as iam-tailor's own (value `true`).
pub const MANAGED_TAG_KEY: &str = "iam-tailor.dev/managed";
/// The tag naming the RoleId of the one role an iam-tailor policy was made for: a policy is
/// iam-tailor's for a role only with both tags, and it writes or deletes no other.
pub const ROLE_ID_TAG_KEY: &str = "iam-tailor.dev/role-id";

/// A failed IAM call. The SDK has already retried transient failures by the time one of
/// these is returned; `Throttled` and `retryable` tell the shell to requeue soon rather than
/// report a lasting error.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// The role or policy does not exist (`NoSuchEntity`).
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{operation} {target}: throttled: {message}")]
    Throttled {
        operation: &'static str,
        target: String,
        message: String,
    },
    #[error("{operation} {target}: {message}")]
    Api {
        operation: &'static str,
        target: String,
        message: String,
        /// A server-side (5xx) or network failure, or a concurrent modification.
        retryable: bool,
    },
    /// A policy document that does not parse, read from IAM or given to write.
    #[error("{target}: policy document: {message}")]
    BadDocument { target: String, message: String },
    /// A managed policy by the name iam-tailor would use that it did not make for this role.
    #[error("{target}: not written: {message}")]
    NotOwned { target: String, message: String },
}

impl IamError {
    /// Whether trying again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            IamError::Throttled { .. } => true,
            IamError::Api { retryable, .. } => *retryable,
            IamError::NotFound { .. }
            | IamError::BadDocument { .. }
            | IamError::NotOwned { .. } => false,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    NotFound,
    Throttled,
    Other { retryable: bool },
}

/// Classifies a failure by IAM's error code and the HTTP status; `transient` for timeouts
/// and connection failures, which carry neither.
fn classify(code: Option<&str>, status: Option<u16>, transient: bool) -> Kind {
    match code {
        Some("NoSuchEntity") => Kind::NotFound,
        Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded") => Kind::Throttled,
        _ => Kind::Other {
            retryable: transient
                || matches!(code, Some("ServiceFailure" | "ConcurrentModification"))
                || status.is_some_and(|s| s >= 500),
        },
    }
}

/// Maps an SDK failure of `operation` on `target` (e.g. `role web`), keeping the SDK's full
/// error chain as the message.
fn sdk_error<E>(operation: &'static str, target: &str, error: SdkError<E, HttpResponse>) -> IamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let transient = matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
    );
    let kind = classify(error.code(), status, transient);
    let message = super::sdk_message(&error);
    let target = target.to_string();
    match kind {
        Kind::NotFound => IamError::NotFound { what: target },
        Kind::Throttled => IamError::Throttled {
            operation,
            target,
            message,
        },
        Kind::Other { retryable } => IamError::Api {
            operation,
            target,
            message,
            retryable,
        },
    }
}

/// For deletes: something already gone is what the caller wanted.
fn gone_is_done(result: Result<(), IamError>) -> Result<(), IamError> {
    match result {
        Err(IamError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Awaits a write request sent on the rate-limited client ([`Limited::call`]): `Ok` once IAM
/// accepted it, else its failure as `operation` on `target`.
async fn written<T, E>(
    operation: &'static str,
    target: &str,
    request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<(), IamError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    request
        .await
        .map(drop)
        .map_err(|e| sdk_error(operation, target, e))
}

/// An IAM client whose calls share a rate limit, so many resources reconciling at once stay
/// under IAM's account-wide request quota; `Iam::from(client)` is unlimited.
pub type Iam = Limited<Client>;

impl Iam {
    pub fn new(config: &aws_config::SdkConfig, limits: Limits) -> Iam {
        Limited::with_limits(Client::new(config), limits)
    }
}

/// IAM returns documents URL-encoded (RFC 3986); decode, then parse.
fn decode_document(target: &str, encoded: &str) -> Result<Policy, IamError> {
    let bad = |message: String| IamError::BadDocument {
        target: target.to_string(),
        message,
    };
    let text = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|e| bad(format!("not UTF-8 after URL-decoding: {e}")))?;
    Policy::parse(&text).map_err(|e| bad(e.to_string()))
}

fn parse_document(target: &str, document: &str) -> Result<Policy, IamError> {
    Policy::parse(document).map_err(|e| IamError::BadDocument {
        target: target.to_string(),
        message: e.to_string(),
    })
}

/// What GetRole says of a role: who it is, its tags and boundary; no documents yet.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleHead {
    pub name: String,
    pub arn: String,
    pub role_id: String,
    pub tags: BTreeMap<String, String>,
    pub permissions_boundary: Option<String>,
    /// The trust policy, URL-decoded (invalid UTF-8 replaced: its analysis reports it).
    pub trust_policy: Option<String>,
}

/// GetRole alone: enough to decide whether the role may be read further. `NotFound` means
/// the role does not exist.
pub async fn get_role(iam: &Iam, role_name: &str) -> Result<RoleHead, IamError> {
    let target = format!("role {role_name}");
    let output = iam
        .call()
        .await
        .get_role()
        .role_name(role_name)
        .send()
        .await
        .map_err(|e| sdk_error("GetRole", &target, e))?;
    let role = output.role().ok_or_else(|| IamError::Api {
        operation: "GetRole",
        target: target.clone(),
        message: "the response has no role".to_string(),
        retryable: false,
    })?;
    Ok(RoleHead {
        name: role.role_name().to_string(),
        arn: role.arn().to_string(),
        role_id: role.role_id().to_string(),
        tags: role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        permissions_boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string),
        trust_policy: role.assume_role_policy_document().map(|encoded| {
            let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
            decoded.into_owned()
        }),
    })
}

/// Reads a role's full permission state: inline and attached policies with their documents,
/// and the permissions boundary. `NotFound` means the role does not exist.
pub async fn read_role(iam: &Iam, role_name: &str) -> Result<LiveRole, IamError> {
    let head = get_role(iam, role_name).await?;
    read_documents(iam, head, true).await
}

/// The documents of the role `head` describes: its inline policies and the default versions
/// of its attached ones.
/// `for_writes`: iam-tailor may write the role's policies this time, so their names must be
/// known ([`PolicyNames`]): when the role holds none of them, who holds the first name is read.
pub async fn read_documents(
    iam: &Iam,
    head: RoleHead,
    for_writes: bool,
) -> Result<LiveRole, IamError> {
    let role_name = head.name.as_str();
    let target = format!("role {role_name}");
    let names = iam
        .call()
        .await
        .list_role_policies()
        .role_name(role_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| sdk_error("ListRolePolicies", &target, e))?;
    let mut inline = BTreeMap::new();
    for name in names {
        let policy_target = format!("role {role_name} inline policy {name}");
        let result = iam
            .call()
            .await
            .get_role_policy()
            .role_name(role_name)
            .policy_name(&name)
            .send()
            .await
            .map_err(|e| sdk_error("GetRolePolicy", &policy_target, e));
        let output = match result {
            Ok(output) => output,
            // Deleted since the listing: the role no longer has it.
            Err(IamError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let document = decode_document(&policy_target, output.policy_document())?;
        inline.insert(name, document);
    }

    let listed = iam
        .call()
        .await
        .list_attached_role_policies()
        .role_name(role_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| sdk_error("ListAttachedRolePolicies", &target, e))?;
    let mut attached = Vec::with_capacity(listed.len());
    for policy in listed {
        let (Some(arn), Some(name)) = (policy.policy_arn(), policy.policy_name()) else {
            continue;
        };
        match read_attached(iam, arn, name, &head.role_id).await {
            Ok(policy) => attached.push(policy),
            // Detached and deleted since the listing.
            Err(IamError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }

    let boundary_policy = match &head.permissions_boundary {
        Some(arn) => {
            let name = arn.rsplit('/').next().unwrap_or(arn);
            match read_attached(iam, arn, name, &head.role_id).await {
                Ok(policy) => Some(Box::new(policy)),
                Err(IamError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    let held = attached.iter().chain(boundary_policy.as_deref());
    let names = match PolicyNames::of_held(&head.role_id, held) {
        Some(names) => names,
        None if for_writes => {
            let first = policy_arn(&head.arn, &first_form_name(&head.name, 0));
            PolicyNames::given(&first_name_holder(iam, &first, &head.role_id).await?)
        }
        None => PolicyNames::default(),
    };
    Ok(LiveRole {
        boundary_policy,
        names,
        name: head.name,
        arn: head.arn,
        role_id: head.role_id,
        inline,
        attached,
        permissions_boundary: head.permissions_boundary,
        tags: head.tags,
        trust_policy: head.trust_policy,
    })
}

/// A managed policy's default version and whether iam-tailor made it for the role `role_id`.
async fn read_attached(
    iam: &Iam,
    arn: &str,
    name: &str,
    role_id: &str,
) -> Result<AttachedPolicy, IamError> {
    let (_, document) = default_document(iam, arn).await?;
    let managed_by_iam_tailor = !is_aws_managed(arn) && owned_by(iam, arn, role_id).await?;
    Ok(AttachedPolicy {
        arn: arn.to_string(),
        name: name.to_string(),
        document,
        managed_by_iam_tailor,
    })
}

/// Whether the customer-managed policy `arn` carries both of iam-tailor's tags for `role_id`.
async fn owned_by(iam: &Iam, arn: &str, role_id: &str) -> Result<bool, IamError> {
    let (managed, owner) = owner_tags(iam, arn).await?;
    Ok(managed && owner.as_deref() == Some(role_id))
}

/// Whether `arn` carries iam-tailor's managed tag, and the RoleId it names.
async fn owner_tags(iam: &Iam, arn: &str) -> Result<(bool, Option<String>), IamError> {
    let tags = policy_tags(iam, arn).await?;
    let managed = (tags.iter()).any(|t| t.key() == MANAGED_TAG_KEY && t.value() == "true");
    let owner = (tags.iter())
        .find(|t| t.key() == ROLE_ID_TAG_KEY)
        .map(|t| t.value().to_string());
    Ok((managed, owner))
}

/// The tags of the managed policy `arn`.
async fn policy_tags(iam: &Iam, arn: &str) -> Result<Vec<Tag>, IamError> {
    iam.call()
        .await
        .list_policy_tags()
        .policy_arn(arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| sdk_error("ListPolicyTags", &format!("policy {arn}"), e))
}

/// Who holds the policy `arn`, the first name of a role's policies in the role-name form.
async fn first_name_holder(
    iam: &Iam,
    arn: &str,
    role_id: &str,
) -> Result<FirstNameHolder, IamError> {
    Ok(match owner_tags(iam, arn).await {
        Err(IamError::NotFound { .. }) => FirstNameHolder::Nobody,
        Err(e) => return Err(e),
        Ok((true, Some(owner))) if owner == role_id => FirstNameHolder::ThisRole,
        Ok(_) => FirstNameHolder::Other,
    })
}

/// Refuses to write to or delete `arn` unless iam-tailor made it for `role_id`.
async fn check_owner(iam: &Iam, arn: &str, role_id: &str) -> Result<(), IamError> {
    let message = match owner_tags(iam, arn).await? {
        (true, Some(owner)) if owner == role_id => return Ok(()),
        // The name's role was deleted and created again: the old role's policy is left over.
        (true, Some(owner)) => format!(
            "iam-tailor made it for an earlier role of this name (RoleId {owner}), deleted \
             since: it is never written for this one (RoleId {role_id}). Once nothing needs \
             it, delete it (aws iam delete-policy --policy-arn {arn}, after its non-default \
             versions) and this role gets its own"
        ),
        _ => format!(
            "it exists without the tags {MANAGED_TAG_KEY}=true and {ROLE_ID_TAG_KEY}={role_id}, \
             so iam-tailor did not make it for this role"
        ),
    };
    Err(IamError::NotOwned {
        target: format!("policy {arn}"),
        message,
    })
}

/// The default version's id and document of the managed policy `arn`.
async fn default_document(iam: &Iam, arn: &str) -> Result<(String, Policy), IamError> {
    let target = format!("policy {arn}");
    let missing = |operation: &'static str, what: &str| IamError::Api {
        operation,
        target: target.clone(),
        message: format!("the response has no {what}"),
        retryable: false,
    };
    let policy = iam
        .call()
        .await
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| sdk_error("GetPolicy", &target, e))?;
    let version_id = policy
        .policy()
        .and_then(|p| p.default_version_id())
        .ok_or_else(|| missing("GetPolicy", "default version id"))?;
    let document = version_document(iam, arn, version_id).await?;
    Ok((version_id.to_string(), document))
}

/// The document of version `version_id` of the managed policy `arn`.
async fn version_document(iam: &Iam, arn: &str, version_id: &str) -> Result<Policy, IamError> {
    let target = format!("policy {arn} version {version_id}");
    let version = iam
        .call()
        .await
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version_id)
        .send()
        .await
        .map_err(|e| sdk_error("GetPolicyVersion", &target, e))?;
    let encoded =
        (version.policy_version().and_then(|v| v.document())).ok_or_else(|| IamError::Api {
            operation: "GetPolicyVersion",
            target: target.clone(),
            message: "the response has no document".to_string(),
            retryable: false,
        })?;
    decode_document(&target, encoded)
}

/// The ARNs of the roles instance profile `name` holds (GetInstanceProfile). `NotFound` when
/// the account has no such profile.
pub async fn instance_profile_roles(iam: &Iam, name: &str) -> Result<Vec<String>, IamError> {
    let target = format!("instance profile {name}");
    let output = iam
        .call()
        .await
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(|e| sdk_error("GetInstanceProfile", &target, e))?;
    let roles = output
        .instance_profile()
        .map(|p| p.roles())
        .unwrap_or_default();
    Ok(roles.iter().map(|r| r.arn().to_string()).collect())
}

/// The default version's document of the managed policy `arn`.
pub async fn managed_document(iam: &Iam, arn: &str) -> Result<Policy, IamError> {
    Ok(default_document(iam, arn).await?.1)
}

/// Every version IAM keeps of iam-tailor's managed policy `arn` for the role `role_id`,
/// newest first (at most [`MAX_POLICY_VERSIONS`]). `NotOwned` when the policy lacks iam-tailor's
/// tags for the role: its versions are not iam-tailor's to roll back to.
pub async fn owned_policy_versions(
    iam: &Iam,
    arn: &str,
    role_id: &str,
) -> Result<Vec<Policy>, IamError> {
    check_owner(iam, arn, role_id).await?;
    let versions = versions_oldest_first(iam, arn).await?;
    let mut documents = Vec::new();
    for version_id in versions.iter().rev().filter_map(|v| v.version_id()) {
        documents.push(version_document(iam, arn, version_id).await?);
        if documents.len() == MAX_POLICY_VERSIONS {
            break;
        }
    }
    Ok(documents)
}

/// The versions of `arn`, oldest first by creation time; version ids count up (`v1`, `v2`,
/// …) to break ties.
async fn versions_oldest_first(
    iam: &Iam,
    arn: &str,
) -> Result<Vec<aws_sdk_iam::types::PolicyVersion>, IamError> {
    let mut versions: Vec<aws_sdk_iam::types::PolicyVersion> = iam
        .call()
        .await
        .list_policy_versions()
        .policy_arn(arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| sdk_error("ListPolicyVersions", &format!("policy {arn}"), e))?;
    let number = |id: Option<&str>| {
        id.and_then(|id| id.strip_prefix('v'))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    versions.sort_by_key(|v| {
        (
            v.create_date().map(|d| d.as_nanos()),
            number(v.version_id()),
        )
    });
    Ok(versions)
}

/// Versions of `arn` that are not the default, oldest first.
async fn non_default_versions(iam: &Iam, arn: &str) -> Result<Vec<String>, IamError> {
    let mut versions = versions_oldest_first(iam, arn).await?;
    versions.retain(|v| !v.is_default_version());
    Ok(versions
        .into_iter()
        .filter_map(|v| v.version_id().map(str::to_string))
        .collect())
}

async fn delete_version(iam: &Iam, arn: &str, version_id: &str) -> Result<(), IamError> {
    let target = format!("policy {arn} version {version_id}");
    let request = iam
        .call()
        .await
        .delete_policy_version()
        .policy_arn(arn)
        .version_id(version_id)
        .send();
    gone_is_done(written("DeletePolicyVersion", &target, request).await)
}

/// Makes the managed policy `name` (at `arn`) hold `document` as its default version: creates
/// it tagged as iam-tailor's, or adds a version when the default differs in canonical form.
/// Returns whether anything was written.
pub async fn put_managed_policy(
    iam: &Iam,
    name: &str,
    arn: &str,
    document: &str,
    role_id: &str,
) -> Result<bool, IamError> {
    let target = format!("policy {arn}");
    let wanted = parse_document(&target, document)?;
    let current = match default_document(iam, arn).await {
        Ok((_, current)) => Some(current.revision()),
        Err(IamError::NotFound { .. }) => {
            let tag = |key: &str, value: &str| {
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .expect("key and value are set")
            };
            let request = iam
                .call()
                .await
                .create_policy()
                .policy_name(name)
                .policy_document(document)
                .tags(tag(MANAGED_TAG_KEY, "true"))
                .tags(tag(ROLE_ID_TAG_KEY, role_id))
                .send();
            written("CreatePolicy", &target, request).await?;
            return Ok(true);
        }
        // A default IAM holds but iam-tailor cannot read is replaced like any other.
        Err(IamError::BadDocument { .. }) => None,
        Err(e) => return Err(e),
    };
    check_owner(iam, arn, role_id).await?;
    if current == Some(wanted.revision()) {
        return Ok(false);
    }
    let older = non_default_versions(iam, arn).await?;
    add_default_version(iam, arn, document, &older).await
}

/// Adds `document` as the new default version of `arn`, first deleting the oldest of `older`
/// (its non-default versions, oldest first) that IAM's 5 leave no room for.
async fn add_default_version(
    iam: &Iam,
    arn: &str,
    document: &str,
    older: &[String],
) -> Result<bool, IamError> {
    // `older` leaves out the default; with the new version there will be `older.len() + 2`.
    let excess = (older.len() + 2).saturating_sub(MAX_POLICY_VERSIONS);
    for version_id in &older[..excess] {
        delete_version(iam, arn, version_id).await?;
    }
    let request = iam
        .call()
        .await
        .create_policy_version()
        .policy_arn(arn)
        .policy_document(document)
        .set_as_default(true)
        .send();
    written("CreatePolicyVersion", &format!("policy {arn}"), request).await?;
    Ok(true)
}

/// The customer-managed policy `arn` as IAM has it now: its default document, what it is
/// attached to, whether its owner tagged it [`RESTORABLE_TAG`]. `NotFound` when it is gone.
pub async fn customer_policy_now(iam: &Iam, arn: &str) -> Result<CustomerPolicyNow, IamError> {
    let (_, document) = default_document(iam, arn).await?;
    let restorable = policy_tags(iam, arn)
        .await?
        .iter()
        .any(|t| t.key() == RESTORABLE_TAG && t.value() == "true");
    Ok(CustomerPolicyNow {
        document,
        attached_to: attached_to(iam, arn).await?,
        restorable,
    })
}

/// Every role, user and group the managed policy `arn` is attached to (`role/<name>`, …),
/// sorted.
async fn attached_to(iam: &Iam, arn: &str) -> Result<Vec<String>, IamError> {
    let pages: Vec<_> = iam
        .call()
        .await
        .list_entities_for_policy()
        .policy_arn(arn)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| sdk_error("ListEntitiesForPolicy", &format!("policy {arn}"), e))?;
    let mut entities = Vec::new();
    for page in &pages {
        let roles = page.policy_roles().iter().filter_map(|r| r.role_name());
        entities.extend(roles.map(|n| format!("role/{n}")));
        let users = page.policy_users().iter().filter_map(|u| u.user_name());
        entities.extend(users.map(|n| format!("user/{n}")));
        let groups = page.policy_groups().iter().filter_map(|g| g.group_name());
        entities.extend(groups.map(|n| format!("group/{n}")));
    }
    entities.sort();
    entities.dedup();
    Ok(entities)
}

/// Makes the customer-managed policy `arn` hold `document` (Restore) as its default version:
/// the newest version that holds it already becomes the default, or a new version is added
/// (the oldest non-default going when IAM's 5 are there). Refused unless the policy carries
/// [`RESTORABLE_TAG`], is not iam-tailor's, and is attached to nothing but `role` (checked
/// again here, at the write). Returns whether anything was written.
pub async fn restore_policy_version(
    iam: &Iam,
    arn: &str,
    document: &str,
    role: &str,
) -> Result<bool, IamError> {
    let target = format!("policy {arn}");
    let wanted = parse_document(&target, document)?.revision();
    let now = customer_policy_now(iam, arn).await?;
    let refuse = |message: String| {
        Err(IamError::NotOwned {
            target: target.clone(),
            message,
        })
    };
    let others: Vec<&String> = (now.attached_to.iter())
        .filter(|e| **e != format!("role/{role}"))
        .collect();
    if !others.is_empty() {
        return refuse(format!(
            "it is attached to {} too: Restore never rewrites a shared policy",
            others
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !now.restorable || owner_tags(iam, arn).await?.0 {
        return refuse(format!(
            "it is iam-tailor's, or lacks the tag {RESTORABLE_TAG}=true"
        ));
    }
    if now.document.revision() == wanted {
        return Ok(false);
    }
    let versions = versions_oldest_first(iam, arn).await?;
    let mut holding = None;
    for version in versions.iter().rev().filter(|v| !v.is_default_version()) {
        let Some(id) = version.version_id() else {
            continue;
        };
        if version_document(iam, arn, id).await?.revision() == wanted {
            holding = Some(id.to_string());
            break;
        }
    }
    if let Some(version_id) = holding {
        let request = iam
            .call()
            .await
            .set_default_policy_version()
            .policy_arn(arn)
            .version_id(&version_id)
            .send();
        written("SetDefaultPolicyVersion", &target, request).await?;
        return Ok(true);
    }
    let older: Vec<String> = (versions.iter())
        .filter(|v| !v.is_default_version())
        .filter_map(|v| v.version_id().map(str::to_string))
        .collect();
    add_default_version(iam, arn, document, &older).await
}

/// Deletes one of iam-tailor's managed policies, made for `role_id` (any other is refused):
/// IAM refuses to delete a policy that still has non-default versions, so those go first.
/// Already gone is done.
pub async fn delete_managed_policy(iam: &Iam, arn: &str, role_id: &str) -> Result<(), IamError> {
    let older = match non_default_versions(iam, arn).await {
        Ok(older) => older,
        Err(IamError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    check_owner(iam, arn, role_id).await?;
    for version_id in &older {
        delete_version(iam, arn, version_id).await?;
    }
    let request = iam.call().await.delete_policy().policy_arn(arn).send();
    gone_is_done(written("DeletePolicy", &format!("policy {arn}"), request).await)
}

/// Attaches the managed policy `arn` to `role` (a no-op in IAM when already attached).
pub async fn attach(iam: &Iam, role: &str, arn: &str) -> Result<(), IamError> {
    let target = format!("role {role} policy {arn}");
    let mut waits = CONSISTENCY_WAITS.iter();
    loop {
        let request = iam
            .call()
            .await
            .attach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send();
        match written("AttachRolePolicy", &target, request).await {
            // IAM is eventually consistent: a policy created a moment ago may not be found yet.
            Err(IamError::NotFound { .. }) if let Some(wait) = waits.next() => {
                tokio::time::sleep(*wait).await;
            }
            result => return result,
        }
    }
}

/// How long to wait before each retry of a write that IAM's eventual consistency may refuse
/// right after a create (`NoSuchEntity`): 7.5 s in all, then the error stands.
const CONSISTENCY_WAITS: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(5),
];

/// Detaches the managed policy `arn` from `role`; not attached is done.
pub async fn detach(iam: &Iam, role: &str, arn: &str) -> Result<(), IamError> {
    let target = format!("role {role} policy {arn}");
    let request = iam
        .call()
        .await
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send();
    gone_is_done(written("DetachRolePolicy", &target, request).await)
}

/// Creates or replaces the inline policy `name` of `role`.
pub async fn put_inline(iam: &Iam, role: &str, name: &str, document: &str) -> Result<(), IamError> {
    let target = format!("role {role} inline policy {name}");
    let request = iam
        .call()
        .await
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(document)
        .send();
    written("PutRolePolicy", &target, request).await
}

/// Deletes the inline policy `name` of `role`; already gone is done.
pub async fn delete_inline(iam: &Iam, role: &str, name: &str) -> Result<(), IamError> {
    let target = format!("role {role} inline policy {name}");
    let request = iam
        .call()
        .await
        .delete_role_policy()
        .role_name(role)
        .policy_name(name)
        .send();
    gone_is_done(written("DeleteRolePolicy", &target, request).await)
}

/// Sets `role`'s permissions boundary to the managed policy `arn`.
pub async fn set_boundary(iam: &Iam, role: &str, arn: &str) -> Result<(), IamError> {
    let target = format!("role {role}");
    let request = iam
        .call()
        .await
        .put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(arn)
        .send();
    written("PutRolePermissionsBoundary", &target, request).await
}

/// Sets the tag `key` = `value` on `role` (replacing its value).
pub async fn tag_role(iam: &Iam, role: &str, key: &str, value: &str) -> Result<(), IamError> {
    let tag = Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value are set");
    let request = iam.call().await.tag_role().role_name(role).tags(tag).send();
    written("TagRole", &format!("role {role}"), request).await
}

/// Removes the tag `key` from `role`; absent is done.
pub async fn untag_role(iam: &Iam, role: &str, key: &str) -> Result<(), IamError> {
    let request = iam
        .call()
        .await
        .untag_role()
        .role_name(role)
        .tag_keys(key)
        .send();
    gone_is_done(written("UntagRole", &format!("role {role}"), request).await)
}

/// Removes `role`'s permissions boundary.
pub async fn delete_boundary(iam: &Iam, role: &str) -> Result<(), IamError> {
    let target = format!("role {role}");
    let request = iam
        .call()
        .await
        .delete_role_permissions_boundary()
        .role_name(role)
        .send();
    written("DeleteRolePermissionsBoundary", &target, request).await
}

/// RFC 3339 in UTC, the form [`LastAccessed`] keeps.
fn rfc3339(time: &DateTime) -> Option<String> {
    time.fmt(DateTimeFormat::DateTime).ok()
}

fn service_entry(service: &aws_sdk_iam::types::ServiceLastAccessed) -> ServiceLastAccessed {
    let namespace = &service.service_namespace;
    let tracked = service.tracked_actions_last_accessed.as_deref();
    ServiceLastAccessed {
        namespace: namespace.clone(),
        name: service.service_name.clone(),
        last_authenticated: service.last_authenticated.as_ref().and_then(rfc3339),
        // IAM leaves the list out for services it does not track per action (and for tracked
        // ones when no tracked action was used).
        action_level: tracked.is_some(),
        actions: tracked
            .unwrap_or_default()
            .iter()
            .filter_map(|a| {
                Some(ActionLastAccessed {
                    // IAM names the action without its service prefix.
                    action: format!("{namespace}:{}", a.action_name.as_deref()?),
                    last_accessed: a.last_accessed_time.as_ref().and_then(rfc3339),
                    region: a.last_accessed_region.clone(),
                })
            })
            .collect(),
    }
}

/// When `role_arn` last used each service its policies allow and, for services IAM tracks per
/// action, each tracked action. IAM computes this as a job: start it
/// (GenerateServiceLastAccessedDetails, action level), then poll every `poll_interval` until
/// it completes and read all its pages. A failed job is a lasting error; one still running
/// after `timeout` is retryable (a later attempt starts a new job).
pub async fn service_last_accessed(
    iam: &Iam,
    role_arn: &str,
    poll_interval: Duration,
    timeout: Duration,
) -> Result<LastAccessed, IamError> {
    const GENERATE: &str = "GenerateServiceLastAccessedDetails";
    const GET: &str = "GetServiceLastAccessedDetails";
    let target = format!("role {role_arn}");
    let deadline = tokio::time::Instant::now() + timeout;
    let api = |operation: &'static str, message: String, retryable: bool| IamError::Api {
        operation,
        target: target.clone(),
        message,
        retryable,
    };
    let started = iam
        .call()
        .await
        .generate_service_last_accessed_details()
        .arn(role_arn)
        .granularity(AccessAdvisorUsageGranularityType::ActionLevel)
        .send()
        .await
        .map_err(|e| sdk_error(GENERATE, &target, e))?;
    let job_id = started
        .job_id()
        .ok_or_else(|| api(GENERATE, "the response has no job id".to_string(), false))?;

    let mut services = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam
            .call()
            .await
            .get_service_last_accessed_details()
            .job_id(job_id)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_error(GET, &target, e))?;
        match page.job_status() {
            JobStatusType::Completed => {
                services.extend(page.services_last_accessed().iter().map(service_entry));
                match page.marker() {
                    Some(next) if page.is_truncated() => marker = Some(next.to_string()),
                    _ => return Ok(LastAccessed::new(services)),
                }
            }
            JobStatusType::InProgress => {
                if tokio::time::Instant::now() + poll_interval > deadline {
                    let message = format!("job {job_id} still in progress after {timeout:?}");
                    return Err(api(GET, message, true));
                }
                // Pages are only read from a completed job; start over if one was not.
                services.clear();
                tokio::time::sleep(poll_interval).await;
            }
            JobStatusType::Failed => {
                let message = match page.error() {
                    Some(e) => format!("job {job_id} failed: {}: {}", e.code(), e.message()),
                    None => format!("job {job_id} failed without details"),
                };
                return Err(api(GET, message, false));
            }
            other => {
                let message = format!("job {job_id}: unknown status {}", other.as_str());
                return Err(api(GET, message, false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_by_code_then_status() {
        assert_eq!(
            classify(Some("NoSuchEntity"), Some(404), false),
            Kind::NotFound
        );
        assert_eq!(
            classify(Some("Throttling"), Some(400), false),
            Kind::Throttled
        );
        assert_eq!(
            classify(Some("ServiceFailure"), Some(500), false),
            Kind::Other { retryable: true }
        );
        assert_eq!(
            classify(None, Some(503), false),
            Kind::Other { retryable: true }
        );
        assert_eq!(classify(None, None, true), Kind::Other { retryable: true });
        assert_eq!(
            classify(Some("MalformedPolicyDocument"), Some(400), false),
            Kind::Other { retryable: false }
        );
    }

    #[test]
    fn aws_managed_policies_are_recognized_in_every_partition() {
        assert!(is_aws_managed(
            "arn:aws:iam::aws:policy/AdministratorAccess"
        ));
        assert!(is_aws_managed("arn:aws-cn:iam::aws:policy/ReadOnlyAccess"));
        assert!(!is_aws_managed("arn:aws:iam::123456789012:policy/aws"));
    }

    #[test]
    fn documents_are_url_decoded_before_parsing() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
        let policy = decode_document("t", encoded).unwrap();
        assert_eq!(policy.statements.len(), 1);
        assert!(matches!(
            decode_document("t", "%7Bnot json"),
            Err(IamError::BadDocument { .. })
        ));
    }
}
