//! Ingest once, answer many: one trail's files read once each, for every principal in them.
//!
//! The operator keeps one [`Ingester`] per trail (bucket, prefix, region and the identity it
//! reads with). Asked for a principal's usage over some days, it lists those days' prefixes,
//! reads only the keys it has not read before, adds what they say about *every* principal to
//! its [`Facts`], and answers from the facts: a second role on the same trail, or a role
//! created later, costs listings but no reads. A day prefix read in full once the day is over
//! (plus CloudTrail's delivery delay) is complete and never listed again.

use super::facts::{Facts, FileFacts};
use super::trail::{OnPanic, TrailError, TrailScan, day_prefix, prefix_day, read_keys};
use crate::aws::s3::{S3Location, TrailScope, list_trail};
use crate::cloudtrail::{PrincipalFilter, ScanOptions};
use crate::time::Day;
use aws_sdk_s3::Client;
use std::collections::{BTreeMap, BTreeSet};

/// Days after which a day's prefix is complete: CloudTrail delivers within about 15 minutes,
/// so by the end of the next day nothing new arrives under it.
const COMPLETE_AFTER_DAYS: i64 = 2;
/// How long a listing of some days (for one scope) answers later questions about the same days
/// without listing again: resources analyzed together share one listing, and a file delivered
/// meanwhile is read at the next analysis.
pub const LISTING_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// One trail's facts and what has been read of it.
#[derive(Debug)]
pub struct Ingester {
    location: S3Location,
    facts: Facts,
    /// Keys read, by day prefix (`…/CloudTrail/REGION/YYYY/MM/DD/`; `""` for keys outside
    /// CloudTrail's layout).
    read: BTreeMap<String, BTreeSet<String>>,
    /// Day prefixes read in full for days that are over.
    complete: BTreeSet<String>,
    /// Files downloaded so far, each once.
    files_read: u64,
    /// When each (scope, day) was last listed.
    listed: BTreeMap<(TrailScope, Day), std::time::Instant>,
}

impl Ingester {
    pub fn new(location: S3Location) -> Ingester {
        Ingester {
            location,
            facts: Facts::default(),
            read: BTreeMap::new(),
            complete: BTreeSet::new(),
            files_read: 0,
            listed: BTreeMap::new(),
        }
    }

    /// Files downloaded so far (each once, whatever number of principals asked).
    pub fn files_read(&self) -> u64 {
        self.files_read
    }

    /// Reads what is new under `days` (within `scope`), then answers `principal`'s usage over
    /// those whole days. `today` decides which days are over. On a failed read nothing of the
    /// failed batch is kept, so its keys are read again next time (never counted twice).
    pub async fn usage(
        &mut self,
        client: &Client,
        scope: &TrailScope,
        days: &[Day],
        principal: &PrincipalFilter,
        today: Day,
        parallel: usize,
    ) -> Result<TrailScan, TrailError> {
        let now = std::time::Instant::now();
        let stale: Vec<Day> = (days.iter().copied())
            .filter(|day| {
                self.listed
                    .get(&(scope.clone(), *day))
                    .is_none_or(|at| now.duration_since(*at) >= LISTING_FRESH_FOR)
            })
            .collect();
        let listing = if stale.is_empty() {
            Default::default()
        } else {
            list_trail(client, &self.location, Some(&stale), scope, &self.complete).await?
        };
        let mut new: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in listing.keys {
            let prefix = day_prefix(&key).unwrap_or_default().to_string();
            if !self
                .read
                .get(&prefix)
                .is_some_and(|read| read.contains(&key))
            {
                new.entry(prefix).or_default().push(key);
            }
        }
        // Everything in the file, for every principal, on whatever day its events fall.
        let options = ScanOptions::default();
        for (prefix, keys) in new {
            let files = keys
                .iter()
                .map(|k| (self.location.bucket.clone(), k.clone()))
                .collect();
            let facts: FileFacts =
                read_keys(client, files, &options, parallel, OnPanic::Skip).await?;
            self.files_read += keys.len() as u64;
            let listed = prefix_day(&prefix);
            match listed {
                Some(day) => self.facts.add(day, facts),
                // Outside the layout the file's day is unknown: its counts go to its events'.
                None => {
                    let day = facts.days.keys().next().copied().unwrap_or(today);
                    self.facts.add(day, facts);
                }
            }
            self.read.entry(prefix).or_default().extend(keys);
        }
        for prefix in listing.listed_prefixes {
            if prefix_day(&prefix).is_some_and(|day| over(day, today)) {
                self.complete.insert(prefix);
            }
        }
        for day in stale {
            self.listed.insert((scope.clone(), day), now);
        }
        let present: BTreeSet<Day> = (self.read.iter())
            .filter(|(_, keys)| !keys.is_empty())
            .filter_map(|(prefix, _)| prefix_day(prefix))
            .collect();
        let days_without_files = days
            .iter()
            .filter(|d| !present.contains(d))
            .copied()
            .collect();
        let usage = match (days.iter().min(), days.iter().max()) {
            (Some(first), Some(last)) => self.facts.usage(principal, *first..=*last),
            _ => Default::default(),
        };
        Ok(TrailScan {
            usage,
            days_without_files,
        })
    }

    /// Drops the facts and read keys of days before `day`: no window reaches them any more.
    pub fn forget_before(&mut self, day: Day) {
        self.facts.forget_before(day);
        let old = |prefix: &String| prefix_day(prefix).is_some_and(|d| d < day);
        self.read.retain(|prefix, _| !old(prefix));
        self.complete.retain(|prefix| !old(prefix));
        self.listed.retain(|(_, listed), _| *listed >= day);
    }
}

/// Whether `day` is over, CloudTrail's delivery included, on `today`.
pub(super) fn over(day: Day, today: Day) -> bool {
    today.since_epoch() - day.since_epoch() >= COMPLETE_AFTER_DAYS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_over_two_days_later() {
        let day = |d: u32| Day {
            year: 2026,
            month: 11,
            day: d,
        };
        assert!(!over(day(20), day(20)));
        assert!(!over(day(20), day(21)));
        assert!(over(day(20), day(22)));
        let new_year = Day {
            year: 2027,
            month: 1,
            day: 1,
        };
        assert!(over(
            Day {
                year: 2026,
                month: 12,
                day: 30
            },
            new_year
        ));
    }
}
