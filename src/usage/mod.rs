//! What a principal did, aggregated: the currency every source of activity (trail files in
//! S3 or on disk, an Access Analyzer job) turns into, and the generator's input.
//!
//! Everything is kept in sorted maps and merged by addition and maximum, so the result of a
//! parallel scan is the same whatever order the files finish in. The sources that read it
//! from S3, Athena and the fact store are `crate::sources`.

use crate::catalog::collapse::collapse;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How often something was seen, and when last (RFC 3339 from `eventTime`; compared as text,
/// which orders CloudTrail's fixed `YYYY-MM-DDTHH:MM:SSZ` form correctly).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub count: u64,
    pub last_seen: String,
}

impl Seen {
    pub fn record(&mut self, event_time: &str) {
        self.count = self.count.saturating_add(1);
        if event_time > self.last_seen.as_str() {
            self.last_seen = event_time.to_string();
        }
    }

    pub fn merge(&mut self, other: &Seen) {
        self.count = self.count.saturating_add(other.count);
        if other.last_seen > self.last_seen {
            self.last_seen.clone_from(&other.last_seen);
        }
    }
}

/// One IAM action the principal used, with the resources it used it on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionUsage {
    pub seen: Seen,
    /// Resource ARNs; `*` for actions that support no resource type or whose ARN could not be
    /// built from the record (the latter also leaves a note).
    pub resources: BTreeMap<String, Seen>,
    /// The resources every use of which was under a condition (a role passed to one service):
    /// each condition key with the values seen. A resource used once without one is not here.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, Conditions>,
}

/// Instance profile ARN → the ARNs of the roles it was seen to hold.
pub type ProfileRoles = BTreeMap<String, BTreeSet<String>>;

/// Roles kept per instance profile (IAM allows one at a time; a window may see it change).
pub const MAX_ROLES_PER_PROFILE: usize = 16;

/// Adds `role` to `profile`'s roles within the bounds ([`MAX_DISTINCT_CALLS`] profiles).
pub fn add_profile_role(
    roles: &mut ProfileRoles,
    profile: &str,
    role: &str,
    stats: &mut ScanStats,
) {
    if let Some(held) = bounded_entry(roles, profile.to_string(), stats)
        && (held.len() < MAX_ROLES_PER_PROFILE || held.contains(role))
    {
        held.insert(role.to_string());
    }
}

/// `StringEquals` condition keys and the values each was seen with; one key per grant today.
pub type Conditions = BTreeMap<String, BTreeSet<String>>;

/// Values kept per condition key and resource, and keys per resource; more make the
/// resource's use unconditional (wider, never narrower than what was used).
pub const MAX_CONDITION_VALUES: usize = 16;
pub const MAX_CONDITION_KEYS: usize = 2;

/// The conditions under which either of two uses is allowed: the values of each key joined,
/// when both have the same keys (one key, today); else `None`, an unconditional grant.
pub fn either_condition(mut mine: Conditions, theirs: &Conditions) -> Option<Conditions> {
    if !mine.keys().eq(theirs.keys()) {
        return None;
    }
    for (key, values) in theirs {
        mine.entry(key.clone())
            .or_default()
            .extend(values.iter().cloned());
    }
    bounded(&mine).then_some(mine)
}

/// Conditions a statement can carry: some keys, each with some values, within the bounds.
fn bounded(conditions: &Conditions) -> bool {
    (1..=MAX_CONDITION_KEYS).contains(&conditions.len())
        && (conditions.values()).all(|v| (1..=MAX_CONDITION_VALUES).contains(&v.len()))
}

impl ActionUsage {
    /// Adds `theirs` (the conditions of another use of `resource`, `None` if unconditional)
    /// to this action's, before that use is added to `resources`: a resource stays
    /// conditional only while every use of it is, under the same keys.
    fn add_conditions(&mut self, resource: &str, theirs: Option<&Conditions>) {
        let known = self.resources.contains_key(resource);
        match (known, theirs) {
            (_, None) => {
                self.conditions.remove(resource);
            }
            (false, Some(theirs)) if bounded(theirs) => {
                self.conditions.insert(resource.to_string(), theirs.clone());
            }
            (false, Some(_)) => {}
            (true, Some(theirs)) => {
                let Some(mine) = self.conditions.remove(resource) else {
                    return;
                };
                if let Some(both) = either_condition(mine, theirs) {
                    self.conditions.insert(resource.to_string(), both);
                }
            }
        }
    }
}

/// Counts of the scan itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanStats {
    pub files_scanned: u64,
    pub records_scanned: u64,
    /// Records of the principal, inside the window, that were used or denied.
    pub records_matched: u64,
    /// Files and records skipped, by reason (`malformed-record`, `console-sign-in`, …).
    pub skipped: BTreeMap<String, u64>,
}

/// A refused call's (action, resource), how often and when last, and the event id and
/// source IP address of the last (the greatest id among equal times; empty when the source has
/// none, as Athena's grouped rows).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    pub seen: Seen,
    pub event_id: String,
    pub source_ip: String,
}

impl Denial {
    pub fn merge(&mut self, other: &Denial) {
        if (&other.seen.last_seen, &other.event_id) > (&self.seen.last_seen, &self.event_id) {
            self.event_id.clone_from(&other.event_id);
            self.source_ip.clone_from(&other.source_ip);
        }
        self.seen.merge(&other.seen);
    }
}

/// Which refused call a denial comes from: its CloudTrail eventID and sourceIPAddress (empty
/// when the source has none).
#[derive(Clone, Copy, Debug, Default)]
pub struct Refused<'a> {
    pub event_id: &'a str,
    pub source_ip: &'a str,
}

/// A principal's activity, as the generator needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// By catalog action name (`s3:GetObject`): only actions that exist in the catalog.
    pub actions: BTreeMap<String, ActionUsage>,
    /// Calls refused for lack of permission: reported, never granted.
    /// Keyed by (eventSource, eventName, errorCode).
    pub denied: BTreeMap<(String, String, String), Seen>,
    /// The same refused calls mapped to what they asked for, by (action, resource): what an
    /// automatic restore may give back (only ever within what the role held before).
    pub denied_grants: BTreeMap<(String, String), Denial>,
    /// Calls that could not be mapped to a catalog action, by (eventSource, eventName).
    pub unmapped: BTreeMap<(String, String), Seen>,
    /// EC2 instance profiles (ARNs) calls passed, so `iam:PassRole` on their roles: granted
    /// once a profile's roles are known (`generate::resolve_instance_profiles`).
    pub instance_profiles: BTreeMap<String, Seen>,
    /// The roles the trail showed added to instance profiles (anyone's successful
    /// `AddRoleToInstanceProfile` in the window), by profile ARN: what resolves the above.
    pub profile_roles: ProfileRoles,
    /// Things the user should know, e.g. an ARN that could not be built.
    pub notes: BTreeSet<String>,
    pub stats: ScanStats,
}

/// Distinct resources kept per action: beyond it they are collapsed along the catalog's ARN
/// templates (never narrower, so nothing used is ever denied), so a principal that touched
/// millions of object keys costs a bounded amount of memory.
pub const MAX_RESOURCES_PER_ACTION: usize = 1_000;
/// Distinct denied and unmapped calls kept, each; more are counted as `too-many-distinct-calls`.
pub const MAX_DISTINCT_CALLS: usize = 1_000;
/// Distinct notes kept; more are counted as `too-many-notes`.
pub const MAX_NOTES: usize = 200;
/// Entries under one folder before they become `folder*` when a bound is reached.
const BOUND_COLLAPSE_THRESHOLD: usize = 10;

impl Usage {
    /// Adds `other` into `self`; the result does not depend on the order of merges (up to the
    /// bounds, which only ever collapse resources into patterns that cover them).
    pub fn merge(&mut self, other: Usage) {
        for (action, usage) in other.actions {
            let mine = self.actions.entry(action.clone()).or_default();
            mine.seen.merge(&usage.seen);
            for (resource, seen) in usage.resources {
                mine.add_conditions(&resource, usage.conditions.get(&resource));
                mine.resources.entry(resource).or_default().merge(&seen);
            }
            bound_resources(&action, mine, &mut self.notes);
        }
        for (profile, roles) in other.profile_roles {
            for role in roles {
                add_profile_role(&mut self.profile_roles, &profile, &role, &mut self.stats);
            }
        }
        for (profile, seen) in other.instance_profiles {
            if let Some(mine) = bounded_entry(&mut self.instance_profiles, profile, &mut self.stats)
            {
                mine.merge(&seen);
            }
        }
        for (key, seen) in other.denied {
            if let Some(mine) = bounded_entry(&mut self.denied, key, &mut self.stats) {
                mine.merge(&seen);
            }
        }
        for (key, denial) in other.denied_grants {
            if let Some(mine) = bounded_entry(&mut self.denied_grants, key, &mut self.stats) {
                mine.merge(&denial);
            }
        }
        for (key, seen) in other.unmapped {
            if let Some(mine) = bounded_entry(&mut self.unmapped, key, &mut self.stats) {
                mine.merge(&seen);
            }
        }
        for note in other.notes {
            self.note(note);
        }
        self.stats.merge(other.stats);
    }

    /// Records one use of `action` on `resource` at `event_time`.
    pub fn record_use(&mut self, action: &str, resource: &str, event_time: &str) {
        self.record_use_under(action, resource, None, event_time);
    }

    /// Records one use of `action` on `resource`, needed only under `condition` (`None`: an
    /// unconditional use).
    pub fn record_use_under(
        &mut self,
        action: &str,
        resource: &str,
        condition: Option<(&str, &str)>,
        event_time: &str,
    ) {
        let usage = match self.actions.get_mut(action) {
            Some(u) => u,
            None => self.actions.entry(action.to_string()).or_default(),
        };
        // The common case, an unconditional use of an action used only so, costs nothing more.
        if condition.is_some() || !usage.conditions.is_empty() {
            let condition = condition.map(|(key, value)| {
                Conditions::from([(key.to_string(), BTreeSet::from([value.to_string()]))])
            });
            usage.add_conditions(resource, condition.as_ref());
        }
        usage.seen.record(event_time);
        match usage.resources.get_mut(resource) {
            Some(seen) => seen.record(event_time),
            None => {
                usage
                    .resources
                    .entry(resource.to_string())
                    .or_default()
                    .record(event_time);
                bound_resources(action, usage, &mut self.notes);
            }
        }
    }

    /// Records a call refused for lack of permission.
    pub fn record_denied(&mut self, source: &str, name: &str, code: &str, event_time: &str) {
        let key = (source.to_string(), name.to_string(), code.to_string());
        if let Some(seen) = bounded_entry(&mut self.denied, key, &mut self.stats) {
            seen.record(event_time);
        }
    }

    /// Records what a refused call asked for: `action` on `resource`, event `event_id`.
    pub fn record_denied_grant(
        &mut self,
        action: &str,
        resource: &str,
        event: &Refused,
        time: &str,
    ) {
        let key = (action.to_string(), resource.to_string());
        if let Some(mine) = bounded_entry(&mut self.denied_grants, key, &mut self.stats) {
            let mut one = Denial {
                seen: Seen::default(),
                event_id: event.event_id.to_string(),
                source_ip: event.source_ip.to_string(),
            };
            one.seen.record(time);
            mine.merge(&one);
        }
    }

    /// Records a call that passed an EC2 instance profile (its ARN), whose role is not known.
    pub fn record_instance_profile(&mut self, profile: &str, event_time: &str) {
        let key = profile.to_string();
        if let Some(seen) = bounded_entry(&mut self.instance_profiles, key, &mut self.stats) {
            seen.record(event_time);
        }
    }

    /// Records a call that maps to no catalog action.
    pub fn record_unmapped(&mut self, source: &str, name: &str, event_time: &str) {
        let key = (source.to_string(), name.to_string());
        if let Some(seen) = bounded_entry(&mut self.unmapped, key, &mut self.stats) {
            seen.record(event_time);
        }
    }

    /// Keeps a note for the user, up to [`MAX_NOTES`].
    pub fn note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES || self.notes.contains(&note) {
            self.notes.insert(note);
        } else {
            self.stats.skip("too-many-notes");
        }
    }

    pub fn skip(&mut self, reason: &str) {
        self.stats.skip(reason);
    }

    /// The entries it holds (itself, actions, resources, conditions, calls, profiles, notes):
    /// about a fact store row each, and what the facts' bounds count.
    pub fn facts(&self) -> usize {
        let actions: usize = (self.actions.values())
            .map(|a| 1 + a.resources.len() + a.conditions.len())
            .sum();
        let roles: usize = self.profile_roles.values().map(BTreeSet::len).sum();
        1 + actions
            + self.denied.len()
            + self.denied_grants.len()
            + self.unmapped.len()
            + self.instance_profiles.len()
            + self.profile_roles.len()
            + roles
            + self.notes.len()
    }

    /// The usage of `n` identical calls, from the usage of one (a source that counts identical
    /// calls, like Athena's grouped rows, maps each once). Counts saturate: `n` is untrusted.
    pub fn times(mut self, n: u64) -> Usage {
        let scale = |seen: &mut Seen| seen.count = seen.count.saturating_mul(n);
        for usage in self.actions.values_mut() {
            scale(&mut usage.seen);
            usage.resources.values_mut().for_each(scale);
        }
        self.denied.values_mut().for_each(scale);
        (self.denied_grants.values_mut()).for_each(|d| scale(&mut d.seen));
        self.unmapped.values_mut().for_each(scale);
        self.instance_profiles.values_mut().for_each(scale);
        self.stats.records_matched = self.stats.records_matched.saturating_mul(n);
        (self.stats.skipped.values_mut()).for_each(|c| *c = c.saturating_mul(n));
        self
    }
}

/// The entry for `key`, unless `map` already holds [`MAX_DISTINCT_CALLS`] others (then the
/// call is counted as `too-many-distinct-calls`).
fn bounded_entry<'m, K: Ord, V: Default>(
    map: &'m mut BTreeMap<K, V>,
    key: K,
    stats: &mut ScanStats,
) -> Option<&'m mut V> {
    if map.len() >= MAX_DISTINCT_CALLS && !map.contains_key(&key) {
        stats.skip("too-many-distinct-calls");
        return None;
    }
    Some(map.entry(key).or_default())
}

/// Collapses `resources` of `action` once they are more than [`MAX_RESOURCES_PER_ACTION`],
/// down to at most half of it (so collapses stay rare however many resources follow): first
/// along the catalog's ARN templates (objects into their folders, never past the resource),
/// then, if still too many, each to its resource type (`…:table/*`), then to `*`. Every step
/// covers all it replaces, and says so in a note.
fn bound_resources(action: &str, usage: &mut ActionUsage, notes: &mut BTreeSet<String>) {
    if usage.resources.len() <= MAX_RESOURCES_PER_ACTION {
        return;
    }
    let resources = &mut usage.resources;
    let arns: BTreeSet<String> = resources.keys().cloned().collect();
    let mut bounded: BTreeMap<String, Seen> = BTreeMap::new();
    for (pattern, members) in collapse(action, &arns, BOUND_COLLAPSE_THRESHOLD) {
        let seen = bounded.entry(pattern).or_default();
        for member in &members {
            seen.merge(&resources[member]);
        }
    }
    let mut how = "collapsed into folders";
    let target = MAX_RESOURCES_PER_ACTION / 2;
    if bounded.len() > target {
        how = "collapsed to their resource types";
        bounded = fold(bounded, resource_type_pattern);
    }
    if bounded.len() > target {
        how = "collapsed to *";
        bounded = fold(bounded, |_| "*".to_string());
    }
    *resources = bounded;
    // A pattern stands for uses with and without conditions: it is granted without one.
    (usage.conditions).retain(|r, _| resources.contains_key(r) && !r.contains(['*', '?']));
    if notes.len() < MAX_NOTES {
        notes.insert(format!(
            "{action}: more than {MAX_RESOURCES_PER_ACTION} distinct resources, {how}"
        ));
    }
}

fn fold(resources: BTreeMap<String, Seen>, key: impl Fn(&str) -> String) -> BTreeMap<String, Seen> {
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    for (resource, seen) in resources {
        out.entry(key(&resource)).or_default().merge(&seen);
    }
    out
}

/// `arn:aws:dynamodb:us-east-1:1:table/orders` → `arn:aws:dynamodb:us-east-1:1:table/*`: the
/// ARN up to its resource type, then `*`.
fn resource_type_pattern(arn: &str) -> String {
    let Some(start) = arn.match_indices(':').nth(4).map(|(i, _)| i + 1) else {
        return "*".to_string();
    };
    let resource = &arn[start..];
    match resource.find(['/', ':']) {
        Some(end) => format!("{}*", &arn[..start + end + 1]),
        None => format!("{}*", &arn[..start]),
    }
}

impl ScanStats {
    /// Counts one file or record skipped for `reason`.
    pub fn skip(&mut self, reason: &str) {
        self.skip_many(reason, 1);
    }

    /// Counts `n` records skipped for `reason`.
    pub fn skip_many(&mut self, reason: &str, n: u64) {
        let count = self.skipped.entry(reason.to_string()).or_default();
        *count = count.saturating_add(n);
    }

    pub fn merge(&mut self, other: ScanStats) {
        self.files_scanned = self.files_scanned.saturating_add(other.files_scanned);
        self.records_scanned = self.records_scanned.saturating_add(other.records_scanned);
        self.records_matched = self.records_matched.saturating_add(other.records_matched);
        for (reason, n) in other.skipped {
            let count = self.skipped.entry(reason).or_default();
            *count = count.saturating_add(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resource stays conditional only while every use is; values join; order is free.
    #[test]
    fn an_unconditional_use_makes_a_resource_unconditional() {
        let (role, t) = ("arn:aws:iam::111122223333:role/fn", "2026-11-20T12:00:00Z");
        let passed = |service| Some(("iam:PassedToService", service));
        let mut u = Usage::default();
        u.record_use_under("iam:PassRole", role, passed("lambda.amazonaws.com"), t);
        u.record_use_under("iam:PassRole", role, passed("states.amazonaws.com"), t);
        let values = &u.actions["iam:PassRole"].conditions[role]["iam:PassedToService"];
        assert_eq!(values.len(), 2);
        let mut plain = Usage::default();
        plain.record_use("iam:PassRole", role, t);
        for (mut first, second) in [(u.clone(), plain.clone()), (plain, u.clone())] {
            first.merge(second);
            assert!(first.actions["iam:PassRole"].conditions.is_empty());
        }
        // Another key for the same resource cannot be ANDed in: unconditional.
        u.record_use_under(
            "iam:PassRole",
            role,
            Some(("aws:RequestedRegion", "eu-west-1")),
            t,
        );
        assert!(u.actions["iam:PassRole"].conditions.is_empty());
    }

    #[test]
    fn counts_saturate_whatever_a_row_claims() {
        // Athena's count of identical calls is untrusted: two grants of one action make 2 per
        // row, and a huge count must neither wrap nor panic, nor later merges.
        let mut one = Usage::default();
        one.record_use("s3:GetObject", "arn:aws:s3:::b/*", "2026-11-28T01:00:00Z");
        one.record_use("s3:GetObject", "arn:aws:s3:::b/*", "2026-11-28T01:00:00Z");
        one.stats.records_matched = 1;
        let mut big = one.clone().times(10_248_191_152_060_862_002);
        assert_eq!(big.actions["s3:GetObject"].seen.count, u64::MAX);
        big.merge(one.times(u64::MAX));
        assert_eq!(big.actions["s3:GetObject"].seen.count, u64::MAX);
        assert_eq!(big.stats.records_matched, u64::MAX);
    }

    #[test]
    fn merge_is_order_independent() {
        let mut a = Usage::default();
        a.record_use("s3:GetObject", "arn:aws:s3:::b/k", "2024-01-02T00:00:00Z");
        a.skip("console-sign-in");
        let mut b = Usage::default();
        b.record_use("s3:GetObject", "arn:aws:s3:::b/k", "2024-01-01T00:00:00Z");
        b.record_use("sqs:SendMessage", "*", "2024-01-03T00:00:00Z");
        b.skip("console-sign-in");
        let mut ab = a.clone();
        ab.merge(b.clone());
        let mut ba = b;
        ba.merge(a);
        assert_eq!(ab, ba);
        let get = &ab.actions["s3:GetObject"];
        assert_eq!(get.seen.count, 2);
        assert_eq!(get.seen.last_seen, "2024-01-02T00:00:00Z");
        assert_eq!(ab.stats.skipped["console-sign-in"], 2);
    }

    fn covered(usage: &Usage, action: &str, arn: &str) -> bool {
        (usage.actions[action].resources.keys()).any(|p| crate::wildcard::matches(p, arn))
    }

    /// A principal that touched millions of objects must not cost millions of entries: past
    /// the bound its resources collapse, and every one it used stays covered.
    #[test]
    fn resources_past_the_bound_collapse_and_stay_covered() {
        let mut usage = Usage::default();
        let arn = |i: usize| format!("arn:aws:s3:::data/tenant-{}/part-{i}.json", i % 100);
        for i in 0..5_000 {
            usage.record_use("s3:GetObject", &arn(i), "2026-11-20T00:00:00Z");
        }
        let get = &usage.actions["s3:GetObject"];
        assert!(
            get.resources.len() <= MAX_RESOURCES_PER_ACTION,
            "{}",
            get.resources.len()
        );
        assert_eq!(get.resources.values().map(|s| s.count).sum::<u64>(), 5_000);
        for i in (0..5_000).step_by(7) {
            assert!(covered(&usage, "s3:GetObject", &arn(i)), "{}", arn(i));
        }
        assert!(
            (get.resources.keys()).all(|p| p.starts_with("arn:aws:s3:::data/")),
            "never past the bucket"
        );
        assert!(
            usage
                .notes
                .iter()
                .any(|n| n.contains("collapsed into folders"))
        );

        // Whole resources (tables) cannot collapse into folders: they go to their type.
        let mut tables = Usage::default();
        let table = |i: usize| format!("arn:aws:dynamodb:us-east-1:111122223333:table/t{i}");
        for i in 0..5_000 {
            tables.record_use("dynamodb:GetItem", &table(i), "2026-11-20T00:00:00Z");
        }
        let kept = &tables.actions["dynamodb:GetItem"].resources;
        assert!(kept.len() <= MAX_RESOURCES_PER_ACTION, "{}", kept.len());
        assert!(kept.contains_key("arn:aws:dynamodb:us-east-1:111122223333:table/*"));
        assert!((0..5_000).all(|i| covered(&tables, "dynamodb:GetItem", &table(i))));
    }

    #[test]
    fn merging_keeps_the_bound() {
        let half = |from: usize| {
            let mut usage = Usage::default();
            for i in from..from + 800 {
                let arn = format!("arn:aws:s3:::data/{}/{i}", i % 40);
                usage.record_use("s3:PutObject", &arn, "2026-11-20T00:00:00Z");
            }
            usage
        };
        let mut merged = half(0);
        merged.merge(half(800));
        let put = &merged.actions["s3:PutObject"];
        assert!(put.resources.len() <= MAX_RESOURCES_PER_ACTION);
        assert_eq!(put.seen.count, 1_600);
        for i in 0..1_600 {
            assert!(covered(
                &merged,
                "s3:PutObject",
                &format!("arn:aws:s3:::data/{}/{i}", i % 40)
            ));
        }
    }

    /// Hostile records can name any number of made-up calls: the maps stop growing and the
    /// rest is counted.
    #[test]
    fn distinct_denied_unmapped_and_notes_are_bounded() {
        let mut usage = Usage::default();
        for i in 0..1_500 {
            usage.record_unmapped(
                "x.amazonaws.com",
                &format!("Made{i}"),
                "2026-11-20T00:00:00Z",
            );
            usage.record_denied("s3.amazonaws.com", &format!("Get{i}"), "AccessDenied", "t");
            usage.note(format!("note {i}"));
        }
        // A call already kept still counts.
        usage.record_unmapped("x.amazonaws.com", "Made0", "2026-11-21T00:00:00Z");
        assert_eq!(usage.unmapped.len(), MAX_DISTINCT_CALLS);
        assert_eq!(usage.denied.len(), MAX_DISTINCT_CALLS);
        assert_eq!(usage.notes.len(), MAX_NOTES);
        let made0 = &usage.unmapped[&("x.amazonaws.com".to_string(), "Made0".to_string())];
        assert_eq!(made0.count, 2);
        assert_eq!(usage.stats.skipped["too-many-distinct-calls"], 1_000);
        assert_eq!(usage.stats.skipped["too-many-notes"], 1_300);
    }
}
