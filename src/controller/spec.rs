//! The spec as plan and shell use it: [`validate`] checks what the schema cannot, once, and
//! returns a [`ValidSpec`] with the durations parsed, the role's IAM name and the activity
//! source decided, so no later stage parses, guesses or re-checks.

use super::crd::{
    AccessAnalyzerSource, AthenaTrailSource, ClusterTrailSpec, FactStoreSpec, LeastPrivilegeRole,
    LeastPrivilegeRoleSpec, Mode, S3TrailSource,
};
use crate::generate::Keep;
use crate::generate::profiles::{MAX_PROFILE_HINTS, profile_hint};
use crate::policy::Policy;
use crate::time::{Instant, parse_duration};
use std::collections::BTreeSet;
use std::time::Duration;

/// Access Analyzer's policy generation looks back at most this far.
pub const ANALYZER_MAX_WINDOW_SECS: u64 = 90 * 86_400;

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;
/// `window`: from an hour to IAM's own 400 days of last-accessed history.
pub const WINDOW_RANGE: (u64, u64) = (HOUR, 400 * DAY);
/// `regenerateEvery`: each analysis reads the whole window, so at most hourly.
pub const REGENERATE_RANGE: (u64, u64) = (HOUR, 30 * DAY);
/// `permissionsBoundary.document`: IAM's limit for a managed policy, in characters without
/// white space.
pub const MAX_BOUNDARY_CHARS: usize = 6_144;
/// `permissionsBoundary.policyArn`: IAM's longest policy ARN.
pub const MAX_POLICY_ARN_CHARS: usize = 2_048;
/// `trust.allowedAccounts` (the schema says the same).
pub const MAX_ALLOWED_ACCOUNTS: usize = 100;
/// `lastAccessed.window`: IAM tracks 400 days.
pub const LAST_ACCESSED_RANGE: (u64, u64) = (DAY, 400 * DAY);
/// `drift.interval` at most; the least is the operator's ([`Limits::min_drift_interval`]).
pub const DRIFT_MAX_SECS: u64 = DAY;
/// `enforce.shadowFor`, in seconds.
pub const SHADOW_RANGE: (u64, u64) = (1, 90 * DAY);
/// `onAccessDenied.keepFor`, in seconds.
pub const KEEP_FOR_RANGE: (u64, u64) = (DAY, 400 * DAY);

/// `onAccessDenied.waitForApproval` patterns (the schema says the same).
pub const MAX_WAIT_FOR_APPROVAL: usize = 50;
/// `onAccessDenied.restoresPerDay` at most (the schema says the same).
pub const MAX_RESTORES_PER_DAY: u32 = 50;

/// What the cluster's operators allow every resource, whatever its spec says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Each drift check reads the role (several IAM calls) from the shared IAM budget, so
    /// one tenant's short interval would starve the others (`--min-drift-interval`).
    pub min_drift_interval: Duration,
    /// Managed policies IAM lets one role have attached (10 unless the account's quota was
    /// raised, up to 20; `--managed-policies-per-role`): no plan passes through more.
    pub managed_policies_per_role: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_drift_interval: Duration::from_secs(60),
            managed_policies_per_role: 10,
        }
    }
}

/// The `ClusterTrail` a spec names (`cloudTrail.clusterTrail`), as the shell found it, and the
/// namespace of the resource it must admit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterTrailSeen {
    pub namespace: String,
    /// `None`: no ClusterTrail of that name (or the spec names none).
    pub found: Option<ClusterTrailSpec>,
}

/// The role ARNs in `account` of the resources naming ClusterTrail `trail` from namespaces
/// it admits, as their specs give them: `roleArn`; or `roleName` in the account of their
/// `assumeRoleArn`, else in `operator_account` (when known). A role with a path named by
/// `roleName` alone is guessed without its path: its own analysis asks under its real ARN.
pub fn principals_reading<'a>(
    resources: impl Iterator<Item = &'a LeastPrivilegeRole>,
    trail: &str,
    admitted: &ClusterTrailSpec,
    account: &str,
    operator_account: Option<&str>,
) -> BTreeSet<String> {
    let account_of = |arn: &str| arn.split(':').nth(4).map(str::to_string);
    resources
        .filter(|r| r.spec.cloud_trail.cluster_trail.as_deref() == Some(trail))
        .filter(|r| admitted.admits(r.metadata.namespace.as_deref().unwrap_or_default()))
        .filter_map(|r| {
            let spec = &r.spec;
            if let Some(arn) = spec.role_arn.as_deref().filter(|a| !a.is_empty()) {
                return Some(arn.to_string());
            }
            let name = spec.role_name.as_deref().filter(|n| !n.is_empty())?;
            let (partition, role_account) =
                match spec.assume_role_arn.as_deref().filter(|a| !a.is_empty()) {
                    Some(access) => (access.split(':').nth(1)?.to_string(), account_of(access)?),
                    None => ("aws".to_string(), operator_account?.to_string()),
                };
            Some(format!("arn:{partition}:iam::{role_account}:role/{name}"))
        })
        .filter(|arn| account_of(arn).as_deref() == Some(account))
        .collect()
}

/// What a spec that names no `ClusterTrail` is validated with.
pub static NO_CLUSTER_TRAIL: ClusterTrailSeen = ClusterTrailSeen {
    namespace: String::new(),
    found: None,
};

/// A spec that passed [`validate`]. The fields the schema already checks are read through
/// [`std::ops::Deref`] from the resource's spec as it is.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec<'a> {
    raw: &'a LeastPrivilegeRoleSpec,
    /// The role's IAM name: `roleName`, or the last path segment of `roleArn`.
    pub role: String,
    pub source: Source<'a>,
    pub window: Duration,
    pub regenerate_every: Duration,
    pub last_accessed_window: Duration,
    pub drift_interval: Duration,
    /// `spec.keep`, each action parsed.
    pub keep: Vec<ValidKeep>,
    /// Where the trail's facts are kept besides memory: its ClusterTrail's `store`.
    pub store: Option<&'a FactStoreSpec>,
    /// `spec.permissionsBoundary`, checked.
    pub boundary: Option<DeclaredBoundary>,
    /// `spec.instanceProfiles`, checked: the roles of profiles IAM is not asked about.
    pub instance_profiles: crate::usage::ProfileRoles,
    /// `spec.enforce`: the shadow period before an apply.
    pub shadow: Option<ShadowGate>,
    /// `spec.onAccessDenied.keepFor` when refused calls are restored: Enforce, restore on,
    /// and the role's calls read from trail files (the others give no refused call's
    /// resource).
    pub restore_for: Option<Duration>,
}

/// The boundary the spec declares.
#[derive(Clone, Debug, PartialEq)]
pub enum DeclaredBoundary {
    /// An existing managed policy.
    Arn(String),
    /// iam-tailor's own managed policy with this document.
    Document(Policy),
}

/// A proposal is applied only after it has shadowed `period` with at most `max_would_deny`
/// calls it would have denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShadowGate {
    pub period: Duration,
    pub max_would_deny: u64,
}

/// Where the role's activity is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source<'a> {
    /// Trail files in S3, read by iam-tailor.
    Trail(&'a S3TrailSource),
    /// An Athena table over the trail (a ClusterTrail's), asked by iam-tailor.
    Athena(&'a AthenaTrailSource),
    /// Access Analyzer's policy generation; with the trail files too when given, for the
    /// ARNs of its placeholders and the counts.
    AccessAnalyzer {
        generation: &'a AccessAnalyzerSource,
        trail: Option<&'a S3TrailSource>,
    },
}

impl Source<'_> {
    /// The trail files, when iam-tailor reads them.
    pub fn trail(&self) -> Option<&S3TrailSource> {
        match self {
            Source::Trail(trail) => Some(trail),
            Source::AccessAnalyzer { trail, .. } => *trail,
            Source::Athena(_) => None,
        }
    }

    /// Whether iam-tailor counts the role's events itself (files or Athena rows), so the
    /// evidence rules on them apply.
    pub fn counts_events(&self) -> bool {
        self.trail().is_some() || matches!(self, Source::Athena(_))
    }
}

/// One `spec.keep` rule: its grants, and the last day (`YYYY-MM-DD`) it applies.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidKeep {
    pub grants: Vec<Keep>,
    pub expires: Option<String>,
}

impl std::ops::Deref for ValidSpec<'_> {
    type Target = LeastPrivilegeRoleSpec;

    fn deref(&self) -> &LeastPrivilegeRoleSpec {
        self.raw
    }
}

impl ValidSpec<'_> {
    /// How the spec names the role, for messages.
    pub fn role_label(&self) -> &str {
        (self.raw.role_name.as_deref())
            .or(self.raw.role_arn.as_deref())
            .unwrap_or(&self.role)
    }

    /// Where iam-tailor reads the role's trail, for the tenancy rules: the named ClusterTrail,
    /// else the inline bucket.
    pub fn trail_read(&self) -> crate::controller::tenancy::TrailRead<'_> {
        use crate::controller::tenancy::TrailRead;
        match (self.raw.cloud_trail.cluster_trail.as_deref()).filter(|n| !n.is_empty()) {
            Some(name) => TrailRead::ClusterTrail(name),
            None => match self.source.trail() {
                Some(trail) => TrailRead::Bucket(&trail.bucket),
                None => TrailRead::Nothing,
            },
        }
    }

    /// The start of the window that ends at `now`.
    pub fn window_start(&self, now: Instant) -> Instant {
        now - self.window.as_nanos() as Instant
    }

    /// How long a steady state waits before looking again: the sooner of the drift interval
    /// and `regenerateEvery`.
    pub fn steady(&self) -> Duration {
        self.drift_interval.min(self.regenerate_every)
    }

    /// The `keep` grants in force on `today` (`YYYY-MM-DD`): an expired rule no longer
    /// applies (the dates compare as text).
    pub fn keep_on(&self, today: &str) -> Vec<Keep> {
        (self.keep.iter())
            .filter(|rule| rule.expires.as_deref().is_none_or(|e| e >= today))
            .flat_map(|rule| rule.grants.iter().cloned())
            .collect()
    }
}

/// `seconds` as the largest whole unit: `90d`, `2h`, `30s`.
fn show(seconds: u64) -> String {
    [(DAY, 'd'), (HOUR, 'h'), (60, 'm')]
        .into_iter()
        .find(|(per, _)| seconds.is_multiple_of(*per))
        .map_or(format!("{seconds}s"), |(per, unit)| {
            format!("{}{unit}", seconds / per)
        })
}

/// The spec errors the schema cannot express, all of them, so one edit can fix them all; or
/// the spec, typed. Durations must lie within their ranges (and `drift.interval` at least
/// `limits`' minimum).
pub fn validate<'a>(
    spec: &'a LeastPrivilegeRoleSpec,
    limits: &Limits,
    cluster_trail: &'a ClusterTrailSeen,
) -> Result<ValidSpec<'a>, String> {
    let mut errors = Vec::new();
    fn given(s: &Option<String>) -> Option<&str> {
        s.as_deref().filter(|s| !s.is_empty())
    }
    let role = match (given(&spec.role_name), given(&spec.role_arn)) {
        (Some(_), Some(_)) => {
            errors.push("give roleName or roleArn, not both".to_string());
            String::new()
        }
        (None, None) => {
            errors.push("give roleName or roleArn".to_string());
            String::new()
        }
        (Some(name), None) => name.to_string(),
        (None, Some(arn)) => arn.rsplit('/').next().unwrap_or(arn).to_string(),
    };
    let mut duration = |field: &str, value: &str, units: &str, (least, most): (u64, u64)| {
        match parse_duration(value, units) {
            None => errors.push(format!(
                "{field} {value:?} is not a positive number followed by one of {units}"
            )),
            Some(secs) if !(least..=most).contains(&secs) => errors.push(format!(
                "{field} {value:?} is outside {} to {}",
                show(least),
                show(most)
            )),
            Some(secs) => return Duration::from_secs(secs),
        }
        Duration::ZERO
    };
    let window = duration("window", &spec.window, "mhdw", WINDOW_RANGE);
    let regenerate_every = duration(
        "regenerateEvery",
        &spec.regenerate_every,
        "mhdw",
        REGENERATE_RANGE,
    );
    let last_accessed_window = duration(
        "lastAccessed.window",
        &spec.last_accessed.window,
        "mhdw",
        LAST_ACCESSED_RANGE,
    );
    let least_drift = limits.min_drift_interval.as_secs().max(1);
    let drift_interval = duration(
        "drift.interval",
        &spec.drift.interval,
        "smhd",
        (least_drift, DRIFT_MAX_SECS.max(least_drift)),
    );
    let shadow = spec.enforce.as_ref().map(|e| ShadowGate {
        period: duration("enforce.shadowFor", &e.shadow_for, "smhd", SHADOW_RANGE),
        max_would_deny: e.max_would_deny,
    });
    let keep_for = duration(
        "onAccessDenied.keepFor",
        &spec.on_access_denied.keep_for,
        "hdw",
        KEEP_FOR_RANGE,
    );
    let on_denied = &spec.on_access_denied;
    if on_denied.wait_for_approval.len() > MAX_WAIT_FOR_APPROVAL {
        errors.push(format!(
            "onAccessDenied.waitForApproval: {} patterns, more than {MAX_WAIT_FOR_APPROVAL}",
            on_denied.wait_for_approval.len()
        ));
    }
    for (i, pattern) in on_denied.wait_for_approval.iter().enumerate() {
        if pattern.len() > 128 || !pattern.contains(':') {
            let shown: String = pattern.chars().take(64).collect();
            errors.push(format!(
                "onAccessDenied.waitForApproval[{i}] {shown:?}: not an action pattern (service:action, at most 128 characters)"
            ));
        }
    }
    if on_denied.restores_per_day > MAX_RESTORES_PER_DAY {
        errors.push(format!(
            "onAccessDenied.restoresPerDay: {}, more than {MAX_RESTORES_PER_DAY}",
            on_denied.restores_per_day
        ));
    }
    let mut instance_profiles = crate::usage::ProfileRoles::new();
    if spec.instance_profiles.len() > MAX_PROFILE_HINTS {
        errors.push(format!(
            "instanceProfiles: {} profiles, more than {MAX_PROFILE_HINTS}",
            spec.instance_profiles.len()
        ));
    }
    for (profile, role) in spec.instance_profiles.iter().take(MAX_PROFILE_HINTS) {
        match profile_hint(profile, role) {
            Ok((profile, role)) => _ = instance_profiles.entry(profile).or_default().insert(role),
            Err(why) => {
                let shown: String = profile.chars().take(64).collect();
                errors.push(format!("instanceProfiles[{shown:?}]: {why}"));
            }
        }
    }
    if spec.trust.allowed_accounts.len() > MAX_ALLOWED_ACCOUNTS {
        errors.push(format!(
            "trust.allowedAccounts: {} accounts, more than {MAX_ALLOWED_ACCOUNTS}",
            spec.trust.allowed_accounts.len()
        ));
    }
    let bad_accounts = (spec.trust.allowed_accounts.iter().enumerate())
        .filter(|(_, a)| !crate::policy::context::is_account_id(a))
        .take(3);
    for (i, account) in bad_accounts {
        errors.push(format!(
            "trust.allowedAccounts[{i}] {:?} is not a 12-digit account id",
            account.chars().take(64).collect::<String>()
        ));
    }
    let boundary = spec.permissions_boundary.as_ref().and_then(|declared| {
        match (&declared.policy_arn, &declared.document) {
            (Some(arn), None) => match policy_arn_error(arn) {
                None => Some(DeclaredBoundary::Arn(arn.clone())),
                Some(why) => {
                    let shown: String = arn.chars().take(128).collect();
                    errors.push(format!("permissionsBoundary.policyArn {shown:?} {why}"));
                    None
                }
            },
            (None, Some(text)) => {
                let size = crate::policy::lint::policy_size(text);
                match Policy::parse(text) {
                    _ if size > MAX_BOUNDARY_CHARS => {
                        errors.push(format!(
                            "permissionsBoundary.document: {size} characters without white \
                             space, over IAM's {MAX_BOUNDARY_CHARS} for a managed policy"
                        ));
                        None
                    }
                    Ok(policy) => Some(DeclaredBoundary::Document(policy)),
                    Err(e) => {
                        errors.push(format!("permissionsBoundary.document: {e}"));
                        None
                    }
                }
            }
            _ => {
                errors.push("permissionsBoundary: give policyArn or document".to_string());
                None
            }
        }
    });
    let trail = match (given(&spec.cloud_trail.cluster_trail), &spec.cloud_trail.s3) {
        (Some(_), Some(_)) => {
            errors.push("cloudTrail: give s3 or clusterTrail, not both".to_string());
            None
        }
        (Some(name), None) => match &cluster_trail.found {
            None => {
                errors.push(format!("cloudTrail.clusterTrail: no ClusterTrail {name:?}"));
                None
            }
            Some(found) if !found.admits(&cluster_trail.namespace) => {
                errors.push(format!(
                    "cloudTrail.clusterTrail: ClusterTrail {name:?} does not admit namespace {:?}",
                    cluster_trail.namespace
                ));
                None
            }
            Some(found) => match (&found.s3, &found.athena) {
                (Some(s3), None) => Some(Found::S3(s3)),
                (None, Some(athena)) => Some(Found::Athena(athena)),
                _ => {
                    errors.push(format!(
                        "cloudTrail.clusterTrail: ClusterTrail {name:?} must give s3 or athena, one of them"
                    ));
                    None
                }
            },
        },
        (None, inline) => inline.as_ref().map(Found::S3),
    };
    /// Where the trail turned out to be.
    enum Found<'a> {
        S3(&'a S3TrailSource),
        Athena(&'a AthenaTrailSource),
    }
    // Only an s3 ClusterTrail keeps its facts in a store (Athena is its own).
    let store = match (&spec.cloud_trail.cluster_trail, &cluster_trail.found) {
        (Some(name), Some(found)) if found.store.is_some() => match (&trail, &found.store) {
            (Some(Found::Athena(_)), _) => {
                errors.push(format!(
                    "cloudTrail.clusterTrail: ClusterTrail {name:?} gives a store with athena: \
                     only an s3 trail keeps its facts in a store"
                ));
                None
            }
            (_, Some(store)) => match store.location.parse::<crate::aws::s3::S3Location>() {
                Ok(_) => found.store.as_ref(),
                Err(e) => {
                    errors.push(format!("ClusterTrail {name:?} store.location: {e}"));
                    None
                }
            },
            _ => None,
        },
        _ => None,
    };
    let (trail, athena) = match trail {
        Some(Found::S3(s3)) => (Some(s3), None),
        Some(Found::Athena(athena)) => (None, Some(athena)),
        None => (None, None),
    };
    let source = match &spec.cloud_trail.access_analyzer {
        None => trail.map(Source::Trail).or(athena.map(Source::Athena)),
        Some(_) if athena.is_some() => {
            errors.push(
                "cloudTrail: Access Analyzer reads the trail itself, not an Athena table: \
                 name a ClusterTrail with s3, or none"
                    .to_string(),
            );
            None
        }
        Some(generation) => {
            if generation.regions.is_empty() != generation.all_regions {
                errors.push(
                    "cloudTrail.accessAnalyzer: give regions or allRegions: true, not both"
                        .to_string(),
                );
            }
            if window.as_secs() > ANALYZER_MAX_WINDOW_SECS {
                errors.push(format!(
                    "window {:?}: Access Analyzer reads at most 90 days",
                    spec.window
                ));
            }
            Some(Source::AccessAnalyzer { generation, trail })
        }
    };
    for region in trail.map_or(&[][..], |t| &t.regions[..]) {
        let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if region.is_empty() || region.len() > 32 || !region.chars().all(plain) {
            errors.push(format!(
                "cloudTrail.s3.regions: {region:?} is not a region name"
            ));
        }
    }
    if source.is_none() && given(&spec.cloud_trail.cluster_trail).is_none() {
        errors.push(
            "give cloudTrail.s3, clusterTrail or accessAnalyzer: where the role's activity is read"
                .to_string(),
        );
    }
    for (field, value) in [
        ("approvedRevision", &spec.approved_revision),
        ("rollbackTo", &spec.rollback_to),
        (
            "onAccessDenied.approvedRestore",
            &spec.on_access_denied.approved_restore,
        ),
    ] {
        if let Some(rev) = value.as_deref().filter(|r| !r.is_empty()) {
            let hex = rev.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                errors.push(format!("{field} {rev:?} is not sha256:<64 hex>"));
            }
        }
    }
    let mut keep = Vec::new();
    for (i, rule) in spec.keep.iter().enumerate() {
        if rule.actions.is_empty() {
            errors.push(format!("keep[{i}] lists no actions"));
        }
        let mut grants = Vec::new();
        for action in &rule.actions {
            // A misspelt action would silently keep nothing.
            match action.parse::<Keep>() {
                Err(e) => errors.push(format!("keep[{i}].actions: {e}")),
                Ok(parsed) if rule.resources.is_empty() => grants.push(parsed),
                Ok(parsed) => grants.extend(rule.resources.iter().map(|r| Keep {
                    action: parsed.action.clone(),
                    resource: Some(r.clone()),
                })),
            }
        }
        if let Some(expires) = &rule.expires
            && crate::time::parse_date(expires).is_none()
        {
            errors.push(format!("keep[{i}].expires {expires:?} is not a date"));
        }
        keep.push(ValidKeep {
            grants,
            expires: rule.expires.clone(),
        });
    }
    if shadow.is_some() && !matches!(source, Some(Source::Trail(_) | Source::Athena(_)) | None) {
        errors.push(
            "enforce.shadowFor replays the role's calls from the trail: it needs cloudTrail.s3 \
             or a ClusterTrail (Access Analyzer gives no calls to replay)"
                .to_string(),
        );
    }
    if spec.evidence.min_matched_events == 0 {
        errors.push("evidence.minMatchedEvents must be at least 1".to_string());
    }
    if spec.evidence.max_drop_percent > 100 {
        errors.push(format!(
            "evidence.maxDropPercent {} is more than 100",
            spec.evidence.max_drop_percent
        ));
    }
    match source {
        Some(source) if errors.is_empty() => Ok(ValidSpec {
            restore_for: (spec.mode == Mode::Enforce
                && spec.on_access_denied.restore
                && matches!(source, Source::Trail(_)))
            .then_some(keep_for),
            raw: spec,
            role,
            source,
            window,
            regenerate_every,
            last_accessed_window,
            drift_interval,
            keep,
            store,
            shadow,
            boundary,
            instance_profiles,
        }),
        _ => Err(errors.join("; ")),
    }
}

/// Why `arn` is not a managed policy ARN (`arn:PARTITION:iam::ACCOUNT|aws:policy/PATH/NAME`),
/// checked here as well as by the schema: the spec is untrusted, and a CRD may be older.
fn policy_arn_error(arn: &str) -> Option<&'static str> {
    if arn.len() > MAX_POLICY_ARN_CHARS {
        return Some("is longer than IAM's 2,048 characters");
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Some("is not an ARN");
    };
    let name_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    let path = resource.strip_prefix("policy/").unwrap_or_default();
    if prefix != "arn" || !partition.starts_with("aws") || service != "iam" || !region.is_empty() {
        Some("is not an IAM ARN")
    } else if account != "aws"
        && !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
    {
        Some("names neither a 12-digit account nor aws")
    } else if path.is_empty() || path.ends_with('/') || !path.chars().all(name_char) {
        Some("is not a managed policy (policy/PATH/NAME)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> LeastPrivilegeRoleSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_valid_spec_is_typed_once_durations_role_and_source() {
        let raw = parse(serde_json::json!({
            "roleArn": "arn:aws:iam::123456789012:role/team/checkout-api",
            "cloudTrail": {
                "s3": {"bucket": "org-trail"},
                "accessAnalyzer": {
                    "trailArn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/org",
                    "accessRoleArn": "arn:aws:iam::123456789012:role/aa",
                    "allRegions": true
                }
            },
            "window": "2w",
            "drift": {"interval": "90s"},
        }));
        let spec = validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
        assert_eq!(spec.role, "checkout-api", "an ARN's last path segment");
        assert_eq!(
            spec.role_label(),
            "arn:aws:iam::123456789012:role/team/checkout-api"
        );
        assert_eq!(spec.window, Duration::from_secs(14 * 86_400));
        assert_eq!(spec.regenerate_every, Duration::from_secs(86_400));
        assert_eq!(spec.steady(), Duration::from_secs(90));
        assert_eq!(
            spec.window_start(20 * 86_400 * 1_000_000_000),
            6 * 86_400 * 1_000_000_000
        );
        match spec.source {
            Source::AccessAnalyzer { generation, trail } => {
                assert!(generation.all_regions);
                assert_eq!(trail.map(|t| t.bucket.as_str()), Some("org-trail"));
            }
            Source::Trail(_) | Source::Athena(_) => {
                panic!("Access Analyzer is the source when it is given")
            }
        }
        assert_eq!(
            spec.source.trail().map(|t| t.bucket.as_str()),
            Some("org-trail")
        );
    }

    #[test]
    fn a_shadow_period_needs_the_trail_s_calls_and_a_sane_length() {
        let with = |enforce: serde_json::Value, cloud_trail: serde_json::Value| {
            let raw = parse(serde_json::json!({
                "roleName": "a", "cloudTrail": cloud_trail, "enforce": enforce,
            }));
            validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).map(|v| v.shadow)
        };
        let s3 = serde_json::json!({"s3": {"bucket": "t"}});
        assert_eq!(
            with(
                serde_json::json!({"shadowFor": "7d", "maxWouldDeny": 3}),
                s3.clone()
            ),
            Ok(Some(ShadowGate {
                period: Duration::from_secs(7 * DAY),
                max_would_deny: 3
            }))
        );
        let too_long = with(serde_json::json!({"shadowFor": "91d"}), s3).unwrap_err();
        assert!(
            too_long.contains("enforce.shadowFor \"91d\" is outside 1s to 90d"),
            "{too_long}"
        );
        let analyzer = serde_json::json!({"accessAnalyzer": {
            "trailArn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/org",
            "accessRoleArn": "arn:aws:iam::123456789012:role/aa", "allRegions": true}});
        let no_calls = with(serde_json::json!({"shadowFor": "1d"}), analyzer).unwrap_err();
        assert!(no_calls.contains("enforce.shadowFor replays"), "{no_calls}");
    }

    #[test]
    fn keep_rules_expand_per_resource_and_stop_after_their_day() {
        let raw = parse(serde_json::json!({
            "roleName": "checkout-api",
            "cloudTrail": {"s3": {"bucket": "org-trail"}},
            "keep": [
                {"actions": ["s3:DeleteObject"], "resources": ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"],
                 "reason": "purge", "expires": "2026-11-28"},
                {"actions": ["kms:Decrypt"], "reason": "always"}
            ]
        }));
        let spec = validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
        let on = |day: &str| -> Vec<(String, Option<String>)> {
            (spec.keep_on(day).into_iter())
                .map(|k| (k.action, k.resource))
                .collect()
        };
        let decrypt = ("kms:Decrypt".to_string(), None);
        let delete = |bucket: &str| {
            (
                "s3:DeleteObject".to_string(),
                Some(format!("arn:aws:s3:::{bucket}/*")),
            )
        };
        assert_eq!(
            on("2026-11-28"),
            vec![delete("a"), delete("b"), decrypt.clone()],
            "in force on its last day"
        );
        assert_eq!(on("2026-11-29"), vec![decrypt], "expired the day after");
    }

    /// A tenant names a trail by name only: it is read where its owner put it, and only from
    /// the namespaces it admits.
    #[test]
    fn a_cluster_trail_is_read_only_from_the_namespaces_it_admits() {
        let raw = parse(serde_json::json!({
            "roleName": "a",
            "cloudTrail": {"clusterTrail": "org"},
        }));
        let trail: ClusterTrailSpec = serde_json::from_value(serde_json::json!({
            "s3": {"bucket": "org-trail", "prefix": "o-1"},
            "namespaces": ["team-*", "payments"],
        }))
        .unwrap();
        let seen = |namespace: &str, found: Option<&ClusterTrailSpec>| ClusterTrailSeen {
            namespace: namespace.to_string(),
            found: found.cloned(),
        };
        for namespace in ["team-a", "payments"] {
            let seen = seen(namespace, Some(&trail));
            let spec = validate(&raw, &Limits::default(), &seen).unwrap();
            assert_eq!(
                spec.source,
                Source::Trail(trail.s3.as_ref().unwrap()),
                "{namespace}"
            );
        }
        for namespace in ["teama", "payments-x", "other", ""] {
            let message =
                validate(&raw, &Limits::default(), &seen(namespace, Some(&trail))).unwrap_err();
            assert_eq!(
                message,
                format!(
                    "cloudTrail.clusterTrail: ClusterTrail \"org\" does not admit namespace {namespace:?}"
                )
            );
        }
        let message = validate(&raw, &Limits::default(), &seen("payments", None)).unwrap_err();
        assert_eq!(message, "cloudTrail.clusterTrail: no ClusterTrail \"org\"");
        let mut both = raw.clone();
        both.cloud_trail.s3 = trail.s3.clone();
        let message =
            validate(&both, &Limits::default(), &seen("payments", Some(&trail))).unwrap_err();
        assert_eq!(message, "cloudTrail: give s3 or clusterTrail, not both");
        // An Athena table instead of files; never both, never with Access Analyzer.
        let athena: ClusterTrailSpec = serde_json::from_value(serde_json::json!({
            "athena": {"workgroup": "primary", "database": "trails", "table": "cloudtrail_logs"},
            "namespaces": ["payments"],
        }))
        .unwrap();
        let seen_athena = seen("payments", Some(&athena));
        let spec = validate(&raw, &Limits::default(), &seen_athena).unwrap();
        assert_eq!(spec.source, Source::Athena(athena.athena.as_ref().unwrap()));
        // Its calls can be shadowed (the days come from the window's answers).
        let mut shadowed = raw.clone();
        shadowed.enforce = Some(crate::controller::crd::EnforceSpec {
            shadow_for: "1d".to_string(),
            max_would_deny: 0,
        });
        let spec = validate(&shadowed, &Limits::default(), &seen_athena).unwrap();
        assert_eq!(
            spec.shadow.map(|g| g.period),
            Some(Duration::from_secs(DAY))
        );
        let mut both_sources = athena.clone();
        both_sources.s3 = trail.s3.clone();
        let message = validate(
            &raw,
            &Limits::default(),
            &seen("payments", Some(&both_sources)),
        )
        .unwrap_err();
        assert!(message.contains("must give s3 or athena"), "{message}");
        let with_analyzer = parse(serde_json::json!({
            "roleName": "a",
            "cloudTrail": {"clusterTrail": "org", "accessAnalyzer": {
                "trailArn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/org",
                "accessRoleArn": "arn:aws:iam::123456789012:role/aa", "allRegions": true}},
        }));
        let message = validate(&with_analyzer, &Limits::default(), &seen_athena).unwrap_err();
        assert!(message.contains("not an Athena table"), "{message}");
        // Nobody may read a trail that admits no namespace.
        let closed = ClusterTrailSpec {
            namespaces: Vec::new(),
            ..trail.clone()
        };
        assert!(validate(&raw, &Limits::default(), &seen("payments", Some(&closed))).is_err());
    }

    /// One Athena query answers every role reading the table: their ARNs from the specs,
    /// only in the account asked about, only from namespaces the ClusterTrail admits.
    #[test]
    fn the_roles_reading_a_cluster_trail_come_from_their_specs() {
        let resource = |namespace: &str, trail: &str, spec: serde_json::Value| {
            let mut lpr = LeastPrivilegeRole::new("r", parse(spec));
            lpr.metadata.namespace = Some(namespace.to_string());
            lpr.spec.cloud_trail.cluster_trail = Some(trail.to_string());
            lpr
        };
        let named = |name: &str| serde_json::json!({"roleName": name, "cloudTrail": {}});
        let resources = [
            resource("payments", "org", named("app")),
            resource(
                "payments",
                "org",
                serde_json::json!({"roleArn": "arn:aws:iam::111122223333:role/jobs/worker", "cloudTrail": {}}),
            ),
            resource(
                "payments",
                "org",
                serde_json::json!({"roleName": "remote", "assumeRoleArn": "arn:aws:iam::444455556666:role/access", "cloudTrail": {}}),
            ),
            resource("payments", "other-trail", named("elsewhere")),
            resource("intruder", "org", named("flood")),
        ];
        let trail: ClusterTrailSpec =
            serde_json::from_value(serde_json::json!({"namespaces": ["payments"]})).unwrap();
        let found = |account: &str, operator: Option<&str>| {
            principals_reading(resources.iter(), "org", &trail, account, operator)
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            found("111122223333", Some("111122223333")),
            [
                "arn:aws:iam::111122223333:role/app",
                "arn:aws:iam::111122223333:role/jobs/worker"
            ]
        );
        assert_eq!(
            found("111122223333", None),
            ["arn:aws:iam::111122223333:role/jobs/worker"],
            "roleName alone, the operator's account unknown: not guessed"
        );
        assert_eq!(
            found("444455556666", None),
            ["arn:aws:iam::444455556666:role/remote"]
        );
    }

    #[test]
    fn every_problem_is_named_in_one_message() {
        let raw = parse(serde_json::json!({
            "roleName": "a",
            "roleArn": "arn:aws:iam::123456789012:role/a",
            "cloudTrail": {},
            "window": "0d",
            "drift": {"interval": "5w"},
            "approvedRevision": "sha256:abc",
            "rollbackTo": "sha1:0000000000000000000000000000000000000000",
        }));
        let message = validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap_err();
        for part in [
            "not both",
            "window \"0d\"",
            "drift.interval \"5w\"",
            "approvedRevision \"sha256:abc\" is not sha256:<64 hex>",
            "rollbackTo \"sha1:0000000000000000000000000000000000000000\" is not sha256",
            "give cloudTrail.s3, clusterTrail or accessAnalyzer",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
    }

    /// A namespace user's hint is checked like the CLI's: a role ARN, nothing that reads as a
    /// pattern, at most so many.
    #[test]
    fn instance_profile_hints_name_one_role_each() {
        let hints = |profiles: serde_json::Value| {
            let raw = parse(serde_json::json!({
                "roleName": "a",
                "cloudTrail": {"s3": {"bucket": "b"}},
                "instanceProfiles": profiles,
            }));
            validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).map(|v| v.instance_profiles)
        };
        let role = "arn:aws:iam::111122223333:role/web";
        let ok = hints(serde_json::json!({"web": role})).unwrap();
        assert_eq!(ok["web"].iter().collect::<Vec<_>>(), [role]);
        let message = hints(serde_json::json!({
            "web": "arn:aws:iam::111122223333:role/*",
            "w*b": role,
            "db": "db-role",
        }))
        .unwrap_err();
        for part in [
            "instanceProfiles[\"web\"]: \"arn:aws:iam::111122223333:role/*\" is not a role ARN",
            "instanceProfiles[\"w*b\"]: \"w*b\" is not an instance profile name or ARN",
            "instanceProfiles[\"db\"]: \"db-role\" is not a role ARN",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_PROFILE_HINTS)
            .map(|i| (format!("p{i}"), role.into()))
            .collect();
        let message = hints(serde_json::Value::Object(many)).unwrap_err();
        assert!(message.contains("more than 20"), "{message}");
    }

    /// The schema's pattern is checked again: a CRD installed from an older chart, or one
    /// edited, must not let a role ARN or a pattern through as the boundary to set.
    #[test]
    fn a_boundary_policy_arn_is_a_managed_policy_arn_whatever_the_schema() {
        let declared = |arn: &str| {
            let raw = parse(serde_json::json!({
                "roleName": "a",
                "cloudTrail": {"s3": {"bucket": "b"}},
                "permissionsBoundary": {"policyArn": arn},
            }));
            validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).map(|v| v.boundary)
        };
        for ok in [
            "arn:aws:iam::111122223333:policy/dev-boundary",
            "arn:aws:iam::aws:policy/PowerUserAccess",
            "arn:aws-us-gov:iam::111122223333:policy/team/a+b=c,d.e@f_g-h",
        ] {
            let boundary = declared(ok).unwrap();
            assert!(
                matches!(&boundary, Some(DeclaredBoundary::Arn(a)) if a == ok),
                "{boundary:?}"
            );
        }
        let long = format!("arn:aws:iam::111122223333:policy/{}", "p".repeat(2_048));
        for (bad, why) in [
            (
                "arn:aws:iam::111122223333:role/admin",
                "is not a managed policy",
            ),
            (
                "arn:aws:iam::111122223333:policy/*",
                "is not a managed policy",
            ),
            (
                "arn:aws:iam::111122223333:policy/team/",
                "is not a managed policy",
            ),
            (
                "arn:aws:iam::111122223333:policy/",
                "is not a managed policy",
            ),
            (
                "arn:aws:iam::1111:policy/p",
                "neither a 12-digit account nor aws",
            ),
            ("arn:aws:s3:::111122223333:policy/p", "is not an IAM ARN"),
            (
                "arn:aws:iam:us-east-1:111122223333:policy/p",
                "is not an IAM ARN",
            ),
            ("dev-boundary", "is not an ARN"),
            (long.as_str(), "longer than IAM's 2,048"),
        ] {
            let message = declared(bad).unwrap_err();
            assert!(
                message.contains("permissionsBoundary.policyArn") && message.contains(why),
                "{bad}: {message}"
            );
            assert!(message.len() < 400, "the value is cut: {message}");
        }
    }

    #[test]
    fn durations_are_bounded_before_anything_is_allocated_or_called() {
        let with = |field: &str, value: &str| {
            let mut json = serde_json::json!({
                "roleName": "a",
                "cloudTrail": {"s3": {"bucket": "org-trail"}},
            });
            match field.split_once('.') {
                Some((outer, inner)) => json[outer][inner] = value.into(),
                None => json[field] = value.into(),
            }
            parse(json)
        };
        for (field, value, expected) in [
            (
                "window",
                "999999999w",
                "window \"999999999w\" is outside 1h to 400d",
            ),
            ("window", "401d", "outside 1h to 400d"),
            ("window", "59m", "outside 1h to 400d"),
            (
                "regenerateEvery",
                "5m",
                "regenerateEvery \"5m\" is outside 1h to 30d",
            ),
            ("lastAccessed.window", "12h", "outside 1d to 400d"),
            (
                "drift.interval",
                "1s",
                "drift.interval \"1s\" is outside 1m to 1d",
            ),
            ("drift.interval", "2d", "outside 1m to 1d"),
            (
                "window",
                "18446744073709551615w",
                "is not a positive number",
            ),
        ] {
            let raw = with(field, value);
            let message = validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap_err();
            assert!(message.contains(expected), "{field} {value}: {message}");
        }
        for (field, value) in [
            ("window", "400d"),
            ("window", "1h"),
            ("regenerateEvery", "30d"),
            ("lastAccessed.window", "1d"),
            ("drift.interval", "1m"),
            ("drift.interval", "24h"),
        ] {
            let raw = with(field, value);
            assert!(
                validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).is_ok(),
                "{field} {value}"
            );
        }
        // The operator's minimum decides the least drift interval.
        let fast = with("drift.interval", "2s");
        let lenient = Limits {
            min_drift_interval: Duration::from_secs(1),
            ..Limits::default()
        };
        assert_eq!(
            validate(&fast, &lenient, &NO_CLUSTER_TRAIL).map(|s| s.drift_interval),
            Ok(Duration::from_secs(2))
        );
    }
}
