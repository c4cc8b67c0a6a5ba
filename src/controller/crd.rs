//! The `LeastPrivilegeRole` custom resource (group `iamtailor.dev`, short name `lpr`).
//!
//! The Rust types are the source of truth: `iam-tailor crd` prints the CRD generated from them,
//! `crds/leastprivilegeroles.iamtailor.dev.yaml` is that output committed, and a test fails
//! when the two differ. Validation lives in the schema (enums, patterns) because the
//! Kubernetes versions this must run on (1.20+) have no CEL rules.

use crate::generate::analyzer::Unresolved;
use crate::generate::{NotUsedSince, SeenByIam, ServiceSeenByIam};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A role iam-tailor keeps at least privilege.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "iamtailor.dev",
    version = "v1alpha1",
    kind = "LeastPrivilegeRole",
    namespaced,
    shortname = "lpr",
    status = "LeastPrivilegeRoleStatus",
    doc = "An IAM role that iam-tailor observes, right-sizes from its CloudTrail activity and keeps at least privilege.",
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.roleName"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"InSync","type":"string","jsonPath":".status.conditions[?(@.type==\"InSync\")].status"}"#,
    printcolumn = r#"{"name":"Unused","type":"integer","jsonPath":".status.analysis.unusedActions"}"#,
    printcolumn = r#"{"name":"TrustOK","type":"string","jsonPath":".status.conditions[?(@.type==\"TrustOK\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LeastPrivilegeRoleSpec {
    /// The IAM role's name. Give this or `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[\w+=,.@-]{1,64}$"))]
    pub role_name: Option<String>,
    /// The IAM role's ARN (for a role with a path, or in another account with `assumeRoleArn`):
    /// a path of printable ASCII and a name of IAM's characters, as IAM accepts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^arn:aws[a-z-]*:iam::\d{12}:role/([!-~]*/)?[\w+=,.@-]{1,64}$"),
        length(max = 2048)
    )]
    pub role_arn: Option<String>,
    /// A role the operator assumes to reach the role's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^arn:aws[a-z-]*:iam::\d{12}:role/([!-~]*/)?[\w+=,.@-]{1,64}$"),
        length(max = 2048)
    )]
    pub assume_role_arn: Option<String>,
    /// Observe only reports; Recommend also proposes a policy; Enforce applies approved ones.
    #[serde(default)]
    pub mode: Mode,
    /// Where the role's CloudTrail logs are.
    pub cloud_trail: CloudTrailSource,
    /// How far back generation looks: `90d`, `12h`, `2w`.
    #[serde(default = "default_window")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[mhdw]$"))]
    pub window: String,
    /// How often the analysis runs again.
    #[serde(default = "default_regenerate_every")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[mhdw]$"))]
    pub regenerate_every: String,
    /// Manual: apply only the revision named in `approvedRevision`. Automatic: apply proposals
    /// that only remove access.
    #[serde(default)]
    pub approval: Approval,
    /// The proposal revision a human approved (Manual approval), `sha256:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(sha256:[0-9a-f]{64})?$"))]
    pub approved_revision: Option<String>,
    /// Enforce: put the role back to an earlier applied revision (`sha256:…`, from
    /// `status.history`), and hold it there while this is set. Its documents are read from the
    /// versions IAM keeps of iam-tailor's policies (the last 5), and it is applied only when
    /// every state on the way is proven no wider than the role holds now or held before
    /// iam-tailor's first write (the backup). Remove it to go back to the proposals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(sha256:[0-9a-f]{64})?$"))]
    pub rollback_to: Option<String>,
    /// Permissions always kept, used or not (rare events the window may miss).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<KeepRule>,
    /// Values for the placeholders of Access Analyzer's policies, by name
    /// (`BucketName: orders`); a placeholder nothing fills keeps the proposal from being applied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placeholders: BTreeMap<String, String>,
    /// The role each EC2 instance profile the role passes holds, by profile name or ARN
    /// (`web: arn:aws:iam::111122223333:role/web`): for profiles the operator cannot read with
    /// GetInstanceProfile (another account's). A passed profile whose role stays unknown keeps
    /// the proposal from being applied. At most 20.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instance_profiles: BTreeMap<String, String>,
    /// IAM Access Analyzer's checks as gates before any apply.
    #[serde(default, skip_serializing_if = "ValidationSpec::is_off")]
    pub validation: ValidationSpec,
    /// IAM's last-accessed data: how far back it counts, and whether Enforce waits for it.
    #[serde(default)]
    pub last_accessed: LastAccessedSpec,
    /// Action patterns never granted, even if used (`iam:*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbid: Vec<String>,
    /// Enforce: detach the managed policies iam-tailor did not make, or keep them.
    #[serde(default)]
    pub attached_policies: AttachedPolicies,
    /// Enforce: delete the inline policies iam-tailor did not make, or keep them.
    #[serde(default)]
    pub inline_policies: InlinePolicies,
    /// How often the live role is compared with the applied policy, and what to do on drift.
    #[serde(default)]
    pub drift: DriftSpec,
    /// Enforce: the permissions boundary the role always has, the most it can ever be
    /// allowed: set before anything else, put back when removed or replaced out of band,
    /// replaced only when the new one is proven within the old (`BoundaryInPlace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<BoundarySpec>,
    /// Who may assume the role: what its trust policy is checked against (`status.trust`,
    /// TrustOK). iam-tailor never edits a trust policy.
    #[serde(default, skip_serializing_if = "TrustSpec::is_empty")]
    pub trust: TrustSpec,
    /// On deletion of this resource: leave the role as it is, or put the backup back.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What Automatic approval requires of the analysis before it applies a proposal; thinner
    /// evidence waits for a human's `approvedRevision`.
    #[serde(default)]
    pub evidence: EvidenceSpec,
    /// Enforce: a shadow period before any apply. The proposal is replayed against the calls
    /// the role makes after it was proposed, and applied only once it has shadowed
    /// `shadowFor` with at most `maxWouldDeny` calls it would have denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce: Option<EnforceSpec>,
    /// Enforce, trail files: a call refused after an apply, on an action and resource the
    /// role's policies allowed before iam-tailor's first write, is given back at once.
    #[serde(default)]
    pub on_access_denied: OnAccessDenied,
}

/// A declared permissions boundary: an existing managed policy, or a document iam-tailor
/// keeps as its own managed policy `iam-tailor.boundary.<role>`. Give one.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BoundarySpec {
    /// A managed policy of the role's account or of AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/.+$"))]
    #[schemars(length(max = 2048))]
    pub policy_arn: Option<String>,
    /// A policy document (JSON, at most 6,144 characters without white space, IAM's limit
    /// for a managed policy). On deletion with `deletionPolicy: Restore` the role's original
    /// boundary (or none) is put back and this policy deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub document: Option<String>,
}

/// What the role's trust policy may name.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrustSpec {
    /// Accounts (12 digits) besides the role's own that its trust policy may name; trust to
    /// any other is an `ACCOUNT_NOT_ALLOWED` finding. Only those the tenancy configuration's
    /// `trustedAccounts` also name count, when it has any (a spec narrows the cluster's list,
    /// never widens it); empty: the tenancy's list. At most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub allowed_accounts: Vec<String>,
}

impl TrustSpec {
    fn is_empty(&self) -> bool {
        self.allowed_accounts.is_empty()
    }
}

/// IAM's last-accessed data (GenerateServiceLastAccessedDetails), a second opinion beside
/// the trail.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastAccessedSpec {
    /// How far back it counts (1d to 400d): an action IAM saw used this recently that the
    /// CloudTrail window did not see is kept ("seen by IAM, not in the window").
    #[serde(default = "default_last_accessed_window")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[mhdw]$"))]
    pub window: String,
    /// Enforce applies only proposals made with it (`Approved=False LastAccessedUnavailable`
    /// otherwise). Observe and Recommend publish their analysis without it either way, with
    /// `LastAccessedAvailable=False` and the reason. `false` lets Enforce apply without it.
    #[serde(default = "default_true")]
    pub required: bool,
}

impl Default for LastAccessedSpec {
    fn default() -> Self {
        LastAccessedSpec {
            window: default_last_accessed_window(),
            required: true,
        }
    }
}

/// The automatic restore of permissions an apply removed and the role turned out to need.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OnAccessDenied {
    /// Give back (as the inline policy `iam-tailor-restored`) what was refused and the
    /// role's original policies allowed; what they did not allow is reported, never granted.
    #[serde(default = "default_true")]
    pub restore: bool,
    /// How long a given-back permission stays after its refusal or last use: `30d` (1d to
    /// 400d).
    #[serde(default = "default_keep_for")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[hdw]$"))]
    pub keep_for: String,
    /// More action patterns whose restore waits for a person, besides the built-in
    /// privilege-sensitive ones (credentials and sessions, `iam:PassRole`, published
    /// escalation paths, every Permissions management action), which no spec can release;
    /// at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub wait_for_approval: Vec<String>,
    /// Automatic restores per rolling day: past it, refusals wait for a person like
    /// privilege-sensitive ones (0 to 50, default 5).
    #[serde(default = "default_restores_per_day")]
    #[schemars(range(max = 50))]
    pub restores_per_day: u32,
    /// `status.restore.pendingRevision` as a person approved it: the pending grants are given
    /// back (still only what the role held before iam-tailor), and stay while this names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 71))]
    pub approved_restore: Option<String>,
}

impl Default for OnAccessDenied {
    fn default() -> Self {
        OnAccessDenied {
            restore: true,
            keep_for: default_keep_for(),
            wait_for_approval: Vec::new(),
            restores_per_day: default_restores_per_day(),
            approved_restore: None,
        }
    }
}

fn default_restores_per_day() -> u32 {
    5
}

fn default_true() -> bool {
    true
}

fn default_keep_for() -> String {
    "30d".to_string()
}

/// The shadow gate before an apply.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EnforceSpec {
    /// How long a proposal is replayed against live calls before it may be applied: `7d`
    /// (1s to 90d). Needs the trail (`cloudTrail.s3` or a ClusterTrail).
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[smhd]$"))]
    pub shadow_for: String,
    /// Calls the proposal may have denied during its shadow period; more restart the period
    /// with a proposal that includes them.
    #[serde(default)]
    #[schemars(range(max = 1000000))]
    pub max_would_deny: u64,
}

/// Thresholds on the analysis behind an Automatic approval.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceSpec {
    /// At least this many of the role's events in the window.
    #[serde(default = "default_min_matched_events")]
    #[schemars(range(min = 1))]
    pub min_matched_events: u64,
    /// At most this many days of the window (before today) without any trail file.
    #[serde(default = "default_max_days_without_files")]
    pub max_days_without_files: u64,
    /// At most this drop of matched events from the previous analysis, in percent.
    #[serde(default = "default_max_drop_percent")]
    #[schemars(range(max = 100))]
    pub max_drop_percent: u64,
}

fn default_min_matched_events() -> u64 {
    1
}

fn default_max_days_without_files() -> u64 {
    1
}

fn default_max_drop_percent() -> u64 {
    50
}

impl Default for EvidenceSpec {
    fn default() -> Self {
        EvidenceSpec {
            min_matched_events: default_min_matched_events(),
            max_days_without_files: default_max_days_without_files(),
            max_drop_percent: default_max_drop_percent(),
        }
    }
}

fn default_window() -> String {
    "90d".to_string()
}

fn default_last_accessed_window() -> String {
    "400d".to_string()
}

fn default_regenerate_every() -> String {
    "24h".to_string()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Observe,
    Recommend,
    Enforce,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum Approval {
    #[default]
    Manual,
    Automatic,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum AttachedPolicies {
    #[default]
    Detach,
    Keep,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum InlinePolicies {
    #[default]
    Delete,
    Keep,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum DriftAction {
    #[default]
    Revert,
    Report,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Restore,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailSource {
    /// Trail log files in S3 (`AWSLogs/…` below `prefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3TrailSource>,
    /// The name of a `ClusterTrail` that admits this resource's namespace, instead of `s3`:
    /// the trail as its owner configured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"))]
    pub cluster_trail: Option<String>,
    /// IAM Access Analyzer policy generation over a trail, instead of reading the files. With
    /// `s3` as well, Access Analyzer names the actions and the files supply resource ARNs for
    /// its placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_analyzer: Option<AccessAnalyzerSource>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValidationSpec {
    /// Run ValidatePolicy, CheckNoNewAccess (against the role's policies) and
    /// CheckAccessNotGranted (`forbid`) on every proposal; any of them failing blocks its apply.
    #[serde(default)]
    pub access_analyzer: bool,
    /// ValidatePolicy issue codes (`PASS_ROLE_WITH_STAR_IN_RESOURCE`) that do not block; other
    /// ERROR and SECURITY_WARNING findings do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
}

impl ValidationSpec {
    fn is_off(&self) -> bool {
        *self == ValidationSpec::default()
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessAnalyzerSource {
    /// The trail Access Analyzer reads.
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/.+$"))]
    pub trail_arn: String,
    /// The role Access Analyzer assumes to read the trail and its bucket.
    #[schemars(
        regex(pattern = r"^arn:aws[a-z-]*:iam::\d{12}:role/([!-~]*/)?[\w+=,.@-]{1,64}$"),
        length(max = 2048)
    )]
    pub access_role_arn: String,
    /// Regions whose events count; give these or `allRegions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"))
    )]
    pub regions: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_regions: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3TrailSource {
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Key prefix above `AWSLogs/`; none when the trail writes at the bucket root. (Optional
    /// rather than defaulted: Kubernetes 1.20 rejects an empty-string schema default.) At most
    /// 1,024 characters, S3's longest key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub prefix: Option<String>,
    /// The bucket's region (`eu-west-1`; default: the operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"))]
    pub region: Option<String>,
    /// Only these regions' logs are read (`us-east-1` holds IAM's and other global services'
    /// calls); all when empty. Only the role's own account is ever read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"))
    )]
    pub regions: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeepRule {
    pub actions: Vec<String>,
    /// Resource ARNs or patterns; all resources when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Why: shown in reports and reviews.
    pub reason: String,
    /// After this date (`YYYY-MM-DD`) the rule no longer applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub expires: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DriftSpec {
    #[serde(default = "default_drift_interval")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[smhd]$"))]
    pub interval: String,
    #[serde(default)]
    pub action: DriftAction,
}

fn default_drift_interval() -> String {
    "5m".to_string()
}

impl Default for DriftSpec {
    fn default() -> Self {
        DriftSpec {
            interval: default_drift_interval(),
            action: DriftAction::default(),
        }
    }
}

/// What the operator last observed and did.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LeastPrivilegeRoleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Analyzed, LastAccessedAvailable, TrustOK, BoundaryInPlace, ProposalReady, Approved,
    /// InSync, Drifted, Ready.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// The asynchronous work of the analysis under way (or the last one, when it failed): an
    /// Access Analyzer generation job, kept here so a restarted operator polls it instead of
    /// starting another, or the Athena queries answering the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<AnalysisJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<Backup>,
    /// The shadow period of the proposal (`spec.enforce.shadowFor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
    /// Permissions given back after an apply because the role was refused them
    /// (`spec.onAccessDenied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
    /// The last applied revisions, newest first (at most 10), for rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Applied>,
    /// Who can assume the role, from its trust policy as IAM has it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustReport>,
    /// The role this resource manages, pinned when it was first found: a spec edit, another
    /// account or a role deleted and created again resolves to another role, and nothing is
    /// written to it (`Ready=False RoleChanged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PinnedRole>,
    /// The operator's seal over the rest of the status (HMAC-SHA256 with a key in its own
    /// namespace): a status written by anyone else does not carry it, and its gate state
    /// (analysis, proposal, shadow period, job, restore) is not believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// A proposal replayed against the calls the role made since it was proposed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Shadow {
    /// The proposal shadowed now (a later proposal that adds no denial continues the period).
    pub revision: String,
    /// When the period began.
    pub since: String,
    /// When the calls were last replayed; the gate opens on a replay at least `shadowFor`
    /// after `since`.
    pub checked_at: String,
    /// Calls replayed, from the day the period began.
    pub calls: u64,
    /// Of those, the calls the proposal would have denied.
    pub would_deny_calls: u64,
    /// The would-be denials of this period, or of the period before when it restarted; at
    /// most 10.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub would_deny: Vec<WouldDenyCall>,
    /// How many times a would-be denial restarted the period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: u64,
}

/// What the automatic restore holds and what it would not give back.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// Held in the inline policy `iam-tailor-restored`, sorted; at most 50 (more refusals
    /// are not restored, and say so).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub restored: Vec<RestoredGrant>,
    /// Refused calls not given back (never held, or past the limit); at most 10.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub not_restored: Vec<RefusedCall>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_restored_count: u64,
    /// Why nothing can be restored now, when that is so (the original policies unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Refused calls the role held before that wait for a person: privilege-sensitive, or
    /// past `restoresPerDay`; at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub pending: Vec<RefusedCall>,
    /// What `spec.onAccessDenied.approvedRestore` names to give `pending` back: the revision of
    /// the restore document of every grant that waits for a person (those held and those
    /// pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_revision: Option<String>,
    /// The grants a person approved, and the revision they approved; held only while the
    /// spec names that revision and it is the revision of exactly these grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<ApprovedRestore>,
}

/// Grants given back because a person approved them (`spec.onAccessDenied.approvedRestore`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedRestore {
    pub revision: String,
    /// At most 50.
    #[schemars(length(max = 50))]
    pub grants: Vec<Grant>,
}

/// One action on one resource.
#[derive(
    Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub action: String,
    pub resource: String,
}

/// One permission given back: the refused call that proved it needed, and until when.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoredGrant {
    pub action: String,
    pub resource: String,
    /// CloudTrail's eventID of the last refused call (empty when the source gives none).
    pub event_id: String,
    /// Where that call came from (CloudTrail's sourceIPAddress; empty when the source gives
    /// none, as Athena's grouped rows).
    #[serde(
        rename = "sourceIPAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub source_ip: String,
    /// The action's access level as AWS classifies it (`Write`, `Permissions management`, …;
    /// `Unknown` when not in the catalog).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_level: String,
    /// When that call was refused.
    pub denied_at: String,
    pub restored_at: String,
    /// Removed after this, unless refused or used again before.
    pub expires: String,
}

/// A refused call the restore did not give back, and why.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RefusedCall {
    pub action: String,
    pub resource: String,
    pub event_id: String,
    /// Where the last refused call came from (CloudTrail's sourceIPAddress).
    #[serde(
        rename = "sourceIPAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub source_ip: String,
    /// The action's access level (`Unknown` when not in the catalog).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_level: String,
    pub last_seen: String,
    pub reason: String,
}

/// The role's trust policy, analyzed (`iam_tailor::policy::trust`): who may assume the role
/// and what stands out.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrustReport {
    /// Each principal an Allow statement admits to `sts:AssumeRole*`, sorted; at most
    /// [`REPORT_LIMIT`], `principalsCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub principals: Vec<TrustedPrincipal>,
    pub principals_count: u64,
    /// At most [`REPORT_LIMIT`], most severe first; `findingsCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub findings: Vec<TrustFinding>,
    pub findings_count: u64,
    /// The accounts trust was checked against besides the role's own, and where they came
    /// from (`spec.trust.allowedAccounts`, the tenancy configuration, or the spec's within the
    /// tenancy's); absent: no list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_accounts_from: Option<String>,
}

/// A principal the trust policy admits.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrustedPrincipal {
    /// Everyone, Account, Role, User, AwsPrincipal, Service, WebIdentity, Saml,
    /// CanonicalUser.
    pub kind: String,
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub actions: Vec<String>,
    /// The statement's conditions, all required (each cut to 256 characters; at most 4 and
    /// a count of the rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub conditions: Vec<String>,
    /// No condition stands in its way: it may assume the role with an empty request context.
    pub unconditional: bool,
}

/// A finding of the trust analysis.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrustFinding {
    /// ERROR, SECURITY_WARNING, WARNING or SUGGESTION.
    pub severity: String,
    /// `CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID`, `ANY_PRINCIPAL`, … (docs/lint-checks.md).
    pub code: String,
    pub message: String,
    /// Where in the trust policy; empty for the whole document.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// A role by its ARN and IAM's immutable RoleId.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PinnedRole {
    pub arn: String,
    pub role_id: String,
}

/// A Kubernetes-style condition; `lastTransitionTime` changes only when `status` does.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub window_start: String,
    pub window_end: String,
    pub files_scanned: u64,
    pub events_scanned: u64,
    pub events_matched: u64,
    pub used_actions: u64,
    pub granted_actions: u64,
    pub unused_actions: u64,
    pub denied_attempts: u64,
    pub unmapped: u64,
    /// IAM's last-accessed report for the role, a second opinion beside the trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed: Option<LastAccessedReport>,
    /// Why IAM's last-accessed data could not be had this time (then `lastAccessed` is
    /// absent and nothing was kept for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed_unavailable: Option<String>,
    /// `sha256:` of the spec fields this analysis depends on; when they change it runs again.
    /// Other edits (such as `approvedRevision`) keep it, so approving does not regenerate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// Files and records passed over, by reason (`malformed-record`, `gzip-error`, …): the
    /// evidence this analysis did not see.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, u64>,
    /// Days of the window (`YYYY-MM-DD`, before today) with no trail file in any account or
    /// region: at most [`REPORT_LIMIT`], `daysWithoutFilesCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub days_without_files: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub days_without_files_count: u64,
    /// `eventsMatched` of the analysis before this one, to tell a sharp drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_events_matched: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Asynchronous work an analysis waits for, whichever source does it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisJob {
    pub source: JobSource,
    /// Access Analyzer's job id; Athena's running query execution ids, space-separated.
    pub job_id: String,
    pub started_at: String,
    /// The analysis inputs it was started for: a spec change abandons it.
    pub inputs: String,
    /// Athena: days of the window answered so far, of `days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_answered: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u64>,
    /// Why it ended without a policy; a new job starts after `regenerateEvery` or a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Who runs an [`AnalysisJob`].
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum JobSource {
    #[default]
    AccessAnalyzer,
    Athena,
}

/// What IAM's last-accessed data says beyond the trail.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastAccessedReport {
    /// Granted services IAM saw unused within `lastAccessed.window` (or never), with their
    /// last use; at most [`REPORT_LIMIT`], `servicesNotRecentlyUsedCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub services_not_recently_used: Vec<NotUsedSince>,
    pub services_not_recently_used_count: u64,
    /// The same for the actions IAM tracks one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub actions_not_recently_used: Vec<NotUsedSince>,
    pub actions_not_recently_used_count: u64,
    /// Services IAM saw used within the window without action-level data and without a use in
    /// the trail: reported only, since keeping a whole service would widen the proposal; add
    /// `keep` rules if the role needs them. At most [`REPORT_LIMIT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub seen_without_action_data: Vec<ServiceSeenByIam>,
}

/// How many entries each list in the status shows (the schema's `maxItems` says the same):
/// a role with thousands of unused actions must not push the object past etcd's limit.
pub const REPORT_LIMIT: usize = 50;

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    /// `sha256:` of the canonical policy JSON.
    pub revision: String,
    /// The canonical JSON of the proposed policy documents.
    pub policy: String,
    pub generated_at: String,
    /// Catalog actions the proposal takes away from the role.
    pub removes: u64,
    /// Catalog actions the proposal would add (0 unless something is wrong).
    pub adds: u64,
    /// Kept because IAM saw them used within `lastAccessed.window` though the CloudTrail window
    /// did not: "seen by IAM, not in the window". At most [`REPORT_LIMIT`], `seenByIamCount`
    /// says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub seen_by_iam: Vec<SeenByIam>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seen_by_iam_count: u64,
    /// Made without IAM's last-accessed data, and why: Enforce applies it only with
    /// `lastAccessed.required: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed_unavailable: Option<String>,
    /// Access Analyzer placeholders neither `spec.placeholders` nor the trail's ARNs filled;
    /// left out of the policy, and while any remain it is never applied. At most
    /// [`REPORT_LIMIT`], `unresolvedPlaceholdersCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub unresolved_placeholders: Vec<Unresolved>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unresolved_placeholders_count: u64,
    /// EC2 instance profiles the role passed whose roles are not known, so `iam:PassRole` on
    /// them is not in the proposal, and why; while any remain it is never applied. At most
    /// [`REPORT_LIMIT`], `unresolvedInstanceProfilesCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub unresolved_instance_profiles: Vec<UnresolvedInstanceProfile>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unresolved_instance_profiles_count: u64,
    /// Access Analyzer's verdicts on this proposal (`spec.validation.accessAnalyzer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    /// Used or kept (action, resource) pairs left out because the role's policies do not
    /// provably grant them: at most [`REPORT_LIMIT`], `droppedCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub dropped: Vec<DroppedGrant>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_count: u64,
    /// Resource patterns wider than the resources the window showed, because parts of their
    /// names change with time or instance (dates, ids, Lambda versions): what a reviewer
    /// should look at. At most [`REPORT_LIMIT`], `generalizedCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub generalized: Vec<GeneralizedGrant>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generalized_count: u64,
    /// Calls of the window the role's policies allow that this proposal would deny: while
    /// any is listed, it is not applied (`Approved=False WouldDeny`). At most
    /// [`REPORT_LIMIT`], `wouldDenyCount` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub would_deny: Vec<WouldDenyCall>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub would_deny_count: u64,
}

/// An instance profile the role passed whose role is not known, and why.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UnresolvedInstanceProfile {
    pub instance_profile: String,
    pub reason: String,
}

/// A call the role made that a proposal would deny.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WouldDenyCall {
    pub action: String,
    pub resource: String,
    pub count: u64,
    pub last_seen: String,
}

/// A granted pattern, the resources seen that it stands for, and why it is wider.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GeneralizedGrant {
    pub resource: String,
    /// The actions granted on it.
    #[schemars(length(max = 50))]
    pub actions: Vec<String>,
    /// The first few resources seen (at most 3); `fromCount` says how many in all.
    #[schemars(length(max = 3))]
    pub from: Vec<String>,
    pub from_count: u64,
    /// What changes in their names: "date segments", "UUIDs", "Lambda qualifiers", …
    pub because: Vec<String>,
}

/// An (action, resource) the proposal leaves out, and why.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DroppedGrant {
    pub action: String,
    pub resource: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// ValidatePolicy's findings, most severe first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<ValidationFinding>,
    /// CheckNoNewAccess: the proposal against the role's policies when it was generated.
    pub no_new_access: CheckResult,
    /// CheckAccessNotGranted for `spec.forbid`; none when nothing is forbidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_not_granted: Option<CheckResult>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValidationFinding {
    /// ERROR, SECURITY_WARNING, WARNING or SUGGESTION.
    pub severity: String,
    pub code: String,
    pub message: String,
    /// JSON paths with line and column, prefixed by the document's index when there are several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub revision: String,
    pub applied_at: String,
    #[serde(default)]
    pub policy_arns: Vec<String>,
    /// The role's permissions boundary when this was applied (none if absent): removing it
    /// later widens the role, so that is drift too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    /// Applied by `spec.rollbackTo`, not from a proposal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// The ConfigMap holding the role's original state, in the operator's own namespace
    /// (`--backup-namespace`), out of the tenant's reach.
    pub config_map: String,
    pub namespace: String,
    /// `sha256:` of the ConfigMap's `backup.json` when it was written: Restore refuses one
    /// that no longer matches.
    pub sha256: String,
    /// The role the backup was taken from, and its RoleId then.
    pub role_arn: String,
    pub role_id: String,
}

/// A trail configured once, by whoever owns it, for the namespaces it names: their resources
/// read it by name (`spec.cloudTrail.clusterTrail`) and cannot change where it is.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "iamtailor.dev",
    version = "v1alpha1",
    kind = "ClusterTrail",
    shortname = "ctrail",
    doc = "A CloudTrail trail that LeastPrivilegeRoles in the namespaces it names may read by name.",
    printcolumn = r#"{"name":"Bucket","type":"string","jsonPath":".spec.s3.bucket"}"#,
    printcolumn = r#"{"name":"Athena","type":"string","jsonPath":".spec.athena.table"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTrailSpec {
    /// Trail log files in S3. Read with the same identity as an inline `s3` source: the
    /// operator's, or the resource's `assumeRoleArn`. Give this or `athena`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3TrailSource>,
    /// An Athena table over the trail (`examples/athena/cloudtrail-table.sql`), asked once per
    /// account and day for the roles of every resource naming this ClusterTrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub athena: Option<AthenaTrailSource>,
    /// Where to keep what has been read of the `s3` trail, so that a restart or a new leader
    /// reads no file twice. Without it the facts live in memory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<FactStoreSpec>,
    /// Namespaces whose resources may read this trail: names, or patterns with `*` and `?`
    /// (`team-*`). None: no namespace may.
    #[schemars(
        length(max = 256),
        inner(regex(pattern = r"^[a-z0-9*?][-a-z0-9*?]{0,62}$"))
    )]
    pub namespaces: Vec<String>,
}

/// Where the trail's Athena table is, and where its queries run.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct AthenaTrailSource {
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,128}$"))]
    pub workgroup: String,
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]{1,255}$"))]
    pub database: String,
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]{1,255}$"))]
    pub table: String,
    /// `s3://BUCKET/PREFIX/` for the results, unless the workgroup enforces its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.{0,1000})?$"))]
    pub output_location: Option<String>,
    /// The workgroup's region (default: the operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"))]
    pub region: Option<String>,
}

/// A fact store: Parquet partitions `reader=…/account=…/day=…/facts.parquet` and a checkpoint
/// per reading identity under `location`, written and read with the operator's own identity
/// (README: "Fact store").
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct FactStoreSpec {
    /// `s3://BUCKET/PREFIX/`: give every trail its own prefix.
    #[schemars(regex(pattern = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.{0,1000})?$"))]
    pub location: String,
    /// The bucket's region (default: the operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"))]
    pub region: Option<String>,
}

impl ClusterTrailSpec {
    /// Whether resources in `namespace` may read this trail.
    pub fn admits(&self, namespace: &str) -> bool {
        !namespace.is_empty()
            && (self.namespaces.iter()).any(|p| crate::wildcard::matches(p, namespace))
    }
}

/// The CRDs, each as YAML exactly as committed in `crds/`, by file name.
pub fn crds() -> Vec<(&'static str, String)> {
    use kube::CustomResourceExt;
    let yaml = |crd: CustomResourceDefinition| {
        format!(
            "# Generated by `iam-tailor crd` from src/controller/crd.rs; do not edit.\n---\n{}",
            serde_norway::to_string(&crd).expect("the CRD serializes")
        )
    };
    vec![
        (
            "leastprivilegeroles.iamtailor.dev.yaml",
            yaml(LeastPrivilegeRole::crd()),
        ),
        (
            "clustertrails.iamtailor.dev.yaml",
            yaml(ClusterTrail::crd()),
        ),
    ]
}

/// Every CRD, one YAML stream (`iam-tailor crd | kubectl apply -f -`).
pub fn crd_yaml() -> String {
    crds().into_iter().map(|(_, yaml)| yaml).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec: LeastPrivilegeRoleSpec = serde_json::from_str(
            r#"{"roleName":"checkout-api","cloudTrail":{"s3":{"bucket":"org-trail-logs"}}}"#,
        )
        .unwrap();
        assert_eq!(spec.mode, Mode::Observe);
        assert_eq!(spec.approval, Approval::Manual);
        assert_eq!(spec.window, "90d");
        assert_eq!(spec.regenerate_every, "24h");
        assert_eq!(spec.drift.interval, "5m");
        assert_eq!(spec.drift.action, DriftAction::Revert);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Retain);
        assert_eq!(spec.attached_policies, AttachedPolicies::Detach);
    }

    #[test]
    fn crd_has_names_columns_and_status_subresource() {
        let yaml = crd_yaml();
        for needle in [
            "name: leastprivilegeroles.iamtailor.dev",
            "- lpr",
            "jsonPath: .spec.roleName",
            "jsonPath: .status.analysis.unusedActions",
            "status: {}",
            "- Observe",
            "- Enforce",
        ] {
            assert!(yaml.contains(needle), "{needle} missing from the CRD");
        }
    }
}
