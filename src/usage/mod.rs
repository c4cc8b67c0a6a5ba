//! What a principal did, aggregated: the currency every source of activity (trail files in
//! S3 or on disk, an Access Analyzer job) turns into, and the generator's input.
//!
//! Everything is kept in sorted maps and merged by addition and maximum, so the result of a
//! parallel scan is the same whatever order the files finish in.

pub mod facts;
pub mod ingest;
pub mod trail;

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
        self.count += 1;
        if event_time > self.last_seen.as_str() {
            self.last_seen = event_time.to_string();
        }
    }

    pub fn merge(&mut self, other: &Seen) {
        self.count += other.count;
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
}

/// Counts of the scan itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanStats {
    pub files_scanned: u64,
    pub records_scanned: u64,
    /// Records of the principal, inside the window, that were used or denied.
    pub records_matched: u64,
    /// Files and records skipped, by reason (`malformed-record`, `console-sign-in`, …).
    pub skipped: BTreeMap<String, u64>,
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
    /// Calls that could not be mapped to a catalog action, by (eventSource, eventName).
    pub unmapped: BTreeMap<(String, String), Seen>,
    /// Things the user should know, e.g. an ARN that could not be built.
    pub notes: BTreeSet<String>,
    pub stats: ScanStats,
}

impl Usage {
    /// Adds `other` into `self`; the result does not depend on the order of merges.
    pub fn merge(&mut self, other: Usage) {
        for (action, usage) in other.actions {
            let mine = self.actions.entry(action).or_default();
            mine.seen.merge(&usage.seen);
            for (resource, seen) in usage.resources {
                mine.resources.entry(resource).or_default().merge(&seen);
            }
        }
        for (key, seen) in other.denied {
            self.denied.entry(key).or_default().merge(&seen);
        }
        for (key, seen) in other.unmapped {
            self.unmapped.entry(key).or_default().merge(&seen);
        }
        self.notes.extend(other.notes);
        self.stats.merge(other.stats);
    }

    /// Records one use of `action` on `resource` at `event_time`.
    pub fn record_use(&mut self, action: &str, resource: &str, event_time: &str) {
        let usage = match self.actions.get_mut(action) {
            Some(u) => u,
            None => self.actions.entry(action.to_string()).or_default(),
        };
        usage.seen.record(event_time);
        match usage.resources.get_mut(resource) {
            Some(seen) => seen.record(event_time),
            None => usage
                .resources
                .entry(resource.to_string())
                .or_default()
                .record(event_time),
        }
    }

    pub fn skip(&mut self, reason: &str) {
        self.stats.skip(reason);
    }
}

impl ScanStats {
    /// Counts one file or record skipped for `reason`.
    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    pub fn merge(&mut self, other: ScanStats) {
        self.files_scanned += other.files_scanned;
        self.records_scanned += other.records_scanned;
        self.records_matched += other.records_matched;
        for (reason, n) in other.skipped {
            *self.skipped.entry(reason).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
