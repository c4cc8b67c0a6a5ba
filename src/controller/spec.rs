//! The spec as plan and shell use it: [`validate`] checks what the schema cannot, once, and
//! returns a [`ValidSpec`] with the durations parsed, the role's IAM name and the activity
//! source decided, so no later stage parses, guesses or re-checks.

use super::crd::{AccessAnalyzerSource, ClusterTrailSpec, LeastPrivilegeRoleSpec, S3TrailSource};
use crate::generate::Keep;
use crate::time::{Instant, parse_duration};
use std::time::Duration;

/// Access Analyzer's policy generation looks back at most this far.
pub const ANALYZER_MAX_WINDOW_SECS: u64 = 90 * 86_400;

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;
/// `window`: from an hour to IAM's own 400 days of last-accessed history.
pub const WINDOW_RANGE: (u64, u64) = (HOUR, 400 * DAY);
/// `regenerateEvery`: each analysis reads the whole window, so at most hourly.
pub const REGENERATE_RANGE: (u64, u64) = (HOUR, 30 * DAY);
/// `lastAccessedWindow`: IAM tracks 400 days.
pub const LAST_ACCESSED_RANGE: (u64, u64) = (DAY, 400 * DAY);
/// `drift.interval` at most; the least is the operator's ([`Limits::min_drift_interval`]).
pub const DRIFT_MAX_SECS: u64 = DAY;

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
}

/// Where the role's activity is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source<'a> {
    /// Trail files in S3, read by iam-tailor.
    Trail(&'a S3TrailSource),
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
        }
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
        "lastAccessedWindow",
        &spec.last_accessed_window,
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
            Some(found) => Some(&found.s3),
        },
        (None, inline) => inline.as_ref(),
    };
    let source = match &spec.cloud_trail.access_analyzer {
        None => trail.map(Source::Trail),
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
    if let Some(rev) = spec.approved_revision.as_deref().filter(|r| !r.is_empty()) {
        let hex = rev.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            errors.push(format!("approvedRevision {rev:?} is not sha256:<64 hex>"));
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
            raw: spec,
            role,
            source,
            window,
            regenerate_every,
            last_accessed_window,
            drift_interval,
            keep,
        }),
        _ => Err(errors.join("; ")),
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
            Source::Trail(_) => panic!("Access Analyzer is the source when it is given"),
        }
        assert_eq!(
            spec.source.trail().map(|t| t.bucket.as_str()),
            Some("org-trail")
        );
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
            assert_eq!(spec.source, Source::Trail(&trail.s3), "{namespace}");
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
        both.cloud_trail.s3 = Some(trail.s3.clone());
        let message =
            validate(&both, &Limits::default(), &seen("payments", Some(&trail))).unwrap_err();
        assert_eq!(message, "cloudTrail: give s3 or clusterTrail, not both");
        // Nobody may read a trail that admits no namespace.
        let closed = ClusterTrailSpec {
            namespaces: Vec::new(),
            ..trail.clone()
        };
        assert!(validate(&raw, &Limits::default(), &seen("payments", Some(&closed))).is_err());
    }

    #[test]
    fn every_problem_is_named_in_one_message() {
        let raw = parse(serde_json::json!({
            "roleName": "a",
            "roleArn": "arn:aws:iam::123456789012:role/a",
            "cloudTrail": {},
            "window": "0d",
            "drift": {"interval": "5w"},
        }));
        let message = validate(&raw, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap_err();
        for part in [
            "not both",
            "window \"0d\"",
            "drift.interval \"5w\"",
            "give cloudTrail.s3, clusterTrail or accessAnalyzer",
        ] {
            assert!(message.contains(part), "{part}: {message}");
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
            ("lastAccessedWindow", "12h", "outside 1d to 400d"),
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
            ("lastAccessedWindow", "1d"),
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
