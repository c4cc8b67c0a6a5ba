//! IAM's last-accessed data ("access advisor"): when a role last used each service and, for the
//! services AWS tracks per action, each action. It is a second witness besides the CloudTrail
//! window: IAM looks back up to 400 days, so it sees rare calls a short window missed.
//!
//! Pure questions about the data (`role::last_accessed`, which
//! [`crate::aws::iam::service_last_accessed`] fills).
//! Times are RFC 3339 text as IAM reported them; one that does not parse counts as not seen.
//! A time exactly `window` before `now` is inside the window (like the trail window's
//! inclusive start). Every answer is sorted and de-duplicated.

use crate::catalog::catalog;
pub use crate::role::last_accessed::{ActionLastAccessed, LastAccessed, ServiceLastAccessed};
use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// An action IAM saw the role use within the window that the CloudTrail window did not see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeenByIam {
    /// The catalog's spelling.
    pub action: String,
    pub last_accessed: String,
}

/// A service IAM saw the role use within the window that neither the CloudTrail window nor
/// IAM's per-action data accounts for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSeenByIam {
    pub namespace: String,
    pub last_authenticated: String,
}

/// A service prefix or action and its last use before the window; `None`: never, as far as
/// IAM's tracking period reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotUsedSince {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

/// What IAM reports as not used within the window, for the analysis report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotRecentlyUsed {
    /// Service prefixes.
    pub services: Vec<NotUsedSince>,
    /// Tracked actions (catalog spelling when the catalog knows them, else IAM's).
    pub actions: Vec<NotUsedSince>,
}

/// The earliest time inside the window; a window longer than time itself reaches back to the
/// beginning.
fn cutoff(now: Timestamp, window: Duration) -> Timestamp {
    now.checked_sub(window).unwrap_or(Timestamp::MIN)
}

fn parse(time: Option<&str>) -> Option<Timestamp> {
    time?.parse().ok()
}

fn within(time: Option<&str>, cutoff: Timestamp) -> bool {
    parse(time).is_some_and(|t| t >= cutoff)
}

/// The later of two reported times; one that parses beats one that does not.
fn later<'a>(a: Option<&'a str>, b: Option<&'a str>) -> Option<&'a str> {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) if y > x => b,
        (Some(_), _) => a,
        (None, Some(_)) => b,
        (None, None) => a.or(b),
    }
}

/// `name` → its latest reported time, merging duplicates (IAM's pages, case variants).
fn merge<'a>(
    entries: impl Iterator<Item = (String, Option<&'a str>)>,
) -> BTreeMap<String, Option<&'a str>> {
    let mut merged: BTreeMap<String, Option<&'a str>> = BTreeMap::new();
    for (name, time) in entries {
        let slot = merged.entry(name).or_insert(time);
        *slot = later(*slot, time);
    }
    merged
}

/// The per-action data IAM reported, with the catalog's spelling; actions the catalog does
/// not know are left out (nothing could grant them). Only action-level services count.
fn tracked_actions(last: &LastAccessed) -> impl Iterator<Item = (String, Option<&str>)> {
    last.services
        .iter()
        .filter(|s| s.action_level)
        .flat_map(|s| &s.actions)
        .filter_map(|a| {
            let known = catalog().action(&a.action)?;
            Some((known.full_name(), a.last_accessed.as_deref()))
        })
}

fn lower(used: &BTreeSet<String>) -> BTreeSet<String> {
    used.iter().map(|a| a.to_ascii_lowercase()).collect()
}

/// The actions IAM saw the role use within `window` before `now` that `used` (the actions the
/// CloudTrail window saw, compared case-insensitively) lacks: candidates to keep, since
/// dropping them would break a rare but real call.
pub fn seen_not_in_window(
    last: &LastAccessed,
    used: &BTreeSet<String>,
    now: Timestamp,
    window: Duration,
) -> Vec<SeenByIam> {
    let cutoff = cutoff(now, window);
    let used = lower(used);
    merge(tracked_actions(last))
        .into_iter()
        .filter(|(action, time)| {
            within(*time, cutoff) && !used.contains(&action.to_ascii_lowercase())
        })
        .filter_map(|(action, time)| {
            Some(SeenByIam {
                action,
                last_accessed: time?.to_string(),
            })
        })
        .collect()
}

/// The services IAM saw the role use within `window` before `now` although `used` has no
/// action of theirs and IAM names no action of theirs used in the window (the service has no
/// action-level tracking, or the call was to an untracked action). These are for the report
/// only and never become grants: all that is known is the service, and keeping `service:*`
/// would widen the proposal far beyond the call that was made.
pub fn services_seen_without_action_data(
    last: &LastAccessed,
    used: &BTreeSet<String>,
    now: Timestamp,
    window: Duration,
) -> Vec<ServiceSeenByIam> {
    let cutoff = cutoff(now, window);
    let used_services: BTreeSet<String> = lower(used)
        .iter()
        .filter_map(|a| a.split_once(':').map(|(service, _)| service.to_string()))
        .collect();
    let explained: BTreeSet<String> = merge(tracked_actions(last))
        .into_iter()
        .filter(|(_, time)| within(*time, cutoff))
        .filter_map(|(action, _)| action.split_once(':').map(|(s, _)| s.to_ascii_lowercase()))
        .collect();
    let services = last.services.iter().map(|s| {
        (
            s.namespace.to_ascii_lowercase(),
            s.last_authenticated.as_deref(),
        )
    });
    merge(services)
        .into_iter()
        .filter(|(namespace, time)| {
            within(*time, cutoff)
                && !used_services.contains(namespace)
                && !explained.contains(namespace)
        })
        .filter_map(|(namespace, time)| {
            Some(ServiceSeenByIam {
                namespace,
                last_authenticated: time?.to_string(),
            })
        })
        .collect()
}

/// The services and tracked actions IAM reports as never used or last used before `window`
/// before `now`.
pub fn not_recently_used(last: &LastAccessed, now: Timestamp, window: Duration) -> NotRecentlyUsed {
    let cutoff = cutoff(now, window);
    let stale = |merged: BTreeMap<String, Option<&str>>| -> Vec<NotUsedSince> {
        merged
            .into_iter()
            .filter(|(_, time)| !within(*time, cutoff))
            .map(|(name, time)| NotUsedSince {
                name,
                last_used: time.map(str::to_string),
            })
            .collect()
    };
    let services = last.services.iter().map(|s| {
        (
            s.namespace.to_ascii_lowercase(),
            s.last_authenticated.as_deref(),
        )
    });
    // Unknown actions keep IAM's spelling here: the report describes, it grants nothing.
    let actions = last
        .services
        .iter()
        .filter(|s| s.action_level)
        .flat_map(|s| &s.actions)
        .map(|a| {
            let name = catalog()
                .action(&a.action)
                .map_or_else(|| a.action.clone(), |known| known.full_name());
            (name, a.last_accessed.as_deref())
        });
    NotRecentlyUsed {
        services: stale(merge(services)),
        actions: stale(merge(actions)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-10-01T00:00:00Z";
    /// 30 days before [`NOW`]: the window's first instant.
    const CUTOFF: &str = "2026-09-01T00:00:00Z";
    const JUST_BEFORE: &str = "2026-08-31T23:59:59Z";
    const RECENT: &str = "2026-09-20T08:00:00Z";
    const OLD: &str = "2025-01-01T00:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn window() -> Duration {
        Duration::from_secs(30 * 24 * 3600)
    }

    fn action(name: &str, time: Option<&str>) -> ActionLastAccessed {
        ActionLastAccessed {
            action: name.to_string(),
            last_accessed: time.map(str::to_string),
            region: time.map(|_| "us-east-1".to_string()),
        }
    }

    fn service(
        namespace: &str,
        time: Option<&str>,
        actions: Option<Vec<ActionLastAccessed>>,
    ) -> ServiceLastAccessed {
        ServiceLastAccessed {
            namespace: namespace.to_string(),
            name: format!("AWS {namespace}"),
            last_authenticated: time.map(str::to_string),
            action_level: actions.is_some(),
            actions: actions.unwrap_or_default(),
        }
    }

    fn used(actions: &[&str]) -> BTreeSet<String> {
        actions.iter().map(|a| a.to_string()).collect()
    }

    fn names(seen: &[SeenByIam]) -> Vec<(&str, &str)> {
        seen.iter()
            .map(|s| (s.action.as_str(), s.last_accessed.as_str()))
            .collect()
    }

    #[test]
    fn the_window_boundary_is_inside() {
        assert_eq!(
            cutoff(now(), window()),
            CUTOFF.parse::<Timestamp>().unwrap()
        );
        let c = cutoff(now(), window());
        assert!(within(Some(CUTOFF), c));
        assert!(!within(Some(JUST_BEFORE), c));
        assert!(within(Some(RECENT), c));
        assert!(!within(None, c), "no date is never used");
        assert!(!within(Some("last tuesday"), c), "unparseable is not seen");
        // A window longer than the calendar reaches back to the beginning.
        assert_eq!(cutoff(now(), Duration::MAX), Timestamp::MIN);
    }

    #[test]
    fn later_prefers_the_later_parseable_time() {
        assert_eq!(later(Some(OLD), Some(RECENT)), Some(RECENT));
        assert_eq!(later(Some(RECENT), Some(OLD)), Some(RECENT));
        assert_eq!(later(None, Some(OLD)), Some(OLD));
        assert_eq!(later(Some("garbage"), Some(OLD)), Some(OLD));
        assert_eq!(later(Some(OLD), None), Some(OLD));
        assert_eq!(later(None, None), None);
    }

    #[test]
    fn new_sorts_services_and_actions() {
        let last = LastAccessed::new(vec![
            service(
                "s3",
                None,
                Some(vec![
                    action("s3:PutObject", None),
                    action("s3:GetObject", None),
                ]),
            ),
            service("dynamodb", None, None),
        ]);
        assert_eq!(last.services[0].namespace, "dynamodb");
        let actions: Vec<&str> = last.services[1]
            .actions
            .iter()
            .map(|a| a.action.as_str())
            .collect();
        assert_eq!(actions, ["s3:GetObject", "s3:PutObject"]);
    }

    #[test]
    fn seen_not_in_window_reports_recent_actions_the_trail_missed() {
        let last = LastAccessed::new(vec![service(
            "s3",
            Some(RECENT),
            Some(vec![
                action("s3:GetObject", Some(RECENT)),
                action("s3:PutObject", Some(CUTOFF)),
                action("s3:DeleteObject", Some(JUST_BEFORE)),
                action("s3:ListBucket", None),
                action("s3:GetBucketTagging", Some(OLD)),
            ]),
        )]);
        let seen = seen_not_in_window(&last, &used(&[]), now(), window());
        assert_eq!(
            names(&seen),
            [("s3:GetObject", RECENT), ("s3:PutObject", CUTOFF)]
        );
        // The trail saw GetObject (any case): only PutObject remains.
        let seen = seen_not_in_window(&last, &used(&["S3:getobject"]), now(), window());
        assert_eq!(names(&seen), [("s3:PutObject", CUTOFF)]);
    }

    #[test]
    fn seen_not_in_window_canonicalises_skips_unknown_and_deduplicates() {
        let last = LastAccessed {
            services: vec![
                service(
                    "s3",
                    Some(RECENT),
                    Some(vec![
                        action("S3:GETOBJECT", Some(CUTOFF)),
                        action("s3:NoSuchActionEver", Some(RECENT)),
                    ]),
                ),
                // A second page repeating the service with a later time.
                service(
                    "s3",
                    Some(RECENT),
                    Some(vec![action("s3:getobject", Some(RECENT))]),
                ),
            ],
        };
        let seen = seen_not_in_window(&last, &used(&[]), now(), window());
        assert_eq!(names(&seen), [("s3:GetObject", RECENT)]);
    }

    #[test]
    fn seen_not_in_window_ignores_services_without_action_data() {
        let mut lambda = service("lambda", Some(RECENT), None);
        // Inconsistent data: actions on a service that is not action-level are not trusted.
        lambda.actions = vec![action("lambda:InvokeFunction", Some(RECENT))];
        let last = LastAccessed::new(vec![lambda]);
        assert!(seen_not_in_window(&last, &used(&[]), now(), window()).is_empty());
    }

    #[test]
    fn services_seen_without_action_data_are_reported_not_granted() {
        let last = LastAccessed::new(vec![
            // Used in the window, no action data: reported.
            service("lambda", Some(RECENT), None),
            // Exactly on the boundary: reported.
            service("sqs", Some(CUTOFF), None),
            // The trail saw one of its actions: accounted for.
            service("dynamodb", Some(RECENT), None),
            // Before the window or never: not seen.
            service("sns", Some(JUST_BEFORE), None),
            service("kms", None, None),
            // Action data explains it: seen_not_in_window reports the action instead.
            service(
                "s3",
                Some(RECENT),
                Some(vec![action("s3:GetObject", Some(RECENT))]),
            ),
            // Action-level, but only an old tracked action: the recent use is unexplained.
            service(
                "ec2",
                Some(RECENT),
                Some(vec![action("ec2:RunInstances", Some(OLD))]),
            ),
        ]);
        let seen =
            services_seen_without_action_data(&last, &used(&["DynamoDB:Query"]), now(), window());
        let seen: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.namespace.as_str(), s.last_authenticated.as_str()))
            .collect();
        assert_eq!(seen, [("ec2", RECENT), ("lambda", RECENT), ("sqs", CUTOFF)]);
    }

    #[test]
    fn not_recently_used_lists_never_and_old_uses() {
        let last = LastAccessed::new(vec![
            service("kms", None, None),
            service("sns", Some(JUST_BEFORE), None),
            service("sqs", Some(CUTOFF), None),
            service(
                "s3",
                Some(RECENT),
                Some(vec![
                    action("s3:getobject", Some(RECENT)),
                    action("s3:putobject", Some(OLD)),
                    action("s3:DeleteObject", None),
                    action("s3:NoSuchActionEver", None),
                ]),
            ),
        ]);
        let stale = not_recently_used(&last, now(), window());
        let pairs = |v: &[NotUsedSince]| -> Vec<(String, Option<String>)> {
            v.iter()
                .map(|n| (n.name.clone(), n.last_used.clone()))
                .collect()
        };
        assert_eq!(
            pairs(&stale.services),
            [
                ("kms".to_string(), None),
                ("sns".to_string(), Some(JUST_BEFORE.to_string())),
            ]
        );
        assert_eq!(
            pairs(&stale.actions),
            [
                ("s3:DeleteObject".to_string(), None),
                ("s3:NoSuchActionEver".to_string(), None),
                ("s3:PutObject".to_string(), Some(OLD.to_string())),
            ]
        );
    }

    #[test]
    fn serializes_in_camel_case_without_empty_fields() {
        let last = LastAccessed::new(vec![
            service(
                "s3",
                Some(RECENT),
                Some(vec![action("s3:GetObject", Some(RECENT))]),
            ),
            service("kms", None, None),
        ]);
        let json = serde_json::to_value(&last).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"services": [
                {"namespace": "kms", "name": "AWS kms", "actionLevel": false},
                {"namespace": "s3", "name": "AWS s3", "lastAuthenticated": RECENT,
                 "actionLevel": true, "actions": [
                    {"action": "s3:GetObject", "lastAccessed": RECENT, "region": "us-east-1"}
                 ]},
            ]})
        );
        let back: LastAccessed = serde_json::from_value(json).unwrap();
        assert_eq!(back, last);
    }
}
