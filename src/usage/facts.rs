//! Usage by day and principal, for every principal a trail names: what one read of each file
//! leaves behind, so that any principal's window is a merge of days, never a re-read.

use super::{ProfileRoles, ScanStats, Usage, add_profile_role};
use crate::cloudtrail::select::principal_key;
use crate::cloudtrail::{PrincipalFilter, Record, Sink};
use crate::time::Day;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// What some trail files say, for every principal in them, by the UTC day of each event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileFacts {
    pub stats: ScanStats,
    /// By the day of `eventTime`, then by [`principal_key`].
    pub days: BTreeMap<Day, BTreeMap<String, Usage>>,
    /// Roles the files showed added to instance profiles, whoever added them.
    pub profile_roles: ProfileRoles,
}

impl Sink for FileFacts {
    fn stats(&mut self) -> &mut ScanStats {
        &mut self.stats
    }

    fn merge(&mut self, other: Self) {
        for (profile, roles) in other.profile_roles {
            for role in roles {
                self.profile_role(&profile, &role);
            }
        }
        self.stats.merge(other.stats);
        for (day, principals) in other.days {
            let mine = self.days.entry(day).or_default();
            for (principal, usage) in principals {
                mine.entry(principal).or_default().merge(usage);
            }
        }
    }

    fn wants(&self, record: &Record, principal: Option<&PrincipalFilter>) -> bool {
        principal_key(record).is_some_and(|key| principal.is_none_or(|p| p.matches_key(key)))
    }

    fn usage_for(&mut self, record: &Record, time: &str) -> Option<&mut Usage> {
        let day = Day::of_event_time(time)?;
        let key = principal_key(record)?;
        let principals = self.days.entry(day).or_default();
        if !principals.contains_key(key) {
            principals.insert(key.to_string(), Usage::default());
        }
        principals.get_mut(key)
    }

    fn profile_role(&mut self, profile: &str, role: &str) {
        add_profile_role(&mut self.profile_roles, profile, role, &mut self.stats);
    }
}

impl FileFacts {
    /// `principal`'s usage on every day read, with the counts of every file read.
    pub fn usage_of(&self, principal: &PrincipalFilter) -> Usage {
        let mut usage = Usage {
            stats: self.stats.clone(),
            profile_roles: self.profile_roles.clone(),
            ..Usage::default()
        };
        for principals in self.days.values() {
            for (_, found) in principals.iter().filter(|(k, _)| principal.matches_key(k)) {
                usage.merge(found.clone());
            }
        }
        usage
    }

    /// Every principal seen (role and user ARNs), sorted.
    pub fn principals(&self) -> std::collections::BTreeSet<&str> {
        self.days
            .values()
            .flat_map(|principals| principals.keys().map(String::as_str))
            .collect()
    }
}

/// Everything read from one trail so far, by day: the counts of the files listed under that
/// day, and the usage of every principal whose events fall on it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    days: BTreeMap<Day, DayFacts>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct DayFacts {
    files: ScanStats,
    principals: BTreeMap<String, Usage>,
}

impl Facts {
    /// Adds what files listed under day `listed` said (their events may fall on other days:
    /// CloudTrail delivers a few minutes late, so a day's first files hold the day before's
    /// last events).
    pub fn add(&mut self, listed: Day, facts: FileFacts) {
        self.days
            .entry(listed)
            .or_default()
            .files
            .merge(facts.stats);
        for (day, principals) in facts.days {
            let mine = &mut self.days.entry(day).or_default().principals;
            for (principal, usage) in principals {
                mine.entry(principal).or_default().merge(usage);
            }
        }
    }

    /// `principal`'s usage over `days` (whole UTC days), with the counts of the files listed
    /// under those days.
    pub fn usage(&self, principal: &PrincipalFilter, days: RangeInclusive<Day>) -> Usage {
        let mut usage = Usage::default();
        for facts in self.days.range(days).map(|(_, facts)| facts) {
            usage.stats.merge(facts.files.clone());
            for (_, found) in facts
                .principals
                .iter()
                .filter(|(k, _)| principal.matches_key(k))
            {
                usage.merge(found.clone());
            }
        }
        usage
    }

    /// Drops the days before `day`: no window reaches them any more.
    pub fn forget_before(&mut self, day: Day) {
        self.days = self.days.split_off(&day);
    }

    /// The usage of every principal whose events fall on `day`.
    pub fn principals_on(&self, day: Day) -> Option<&BTreeMap<String, Usage>> {
        self.days.get(&day).map(|facts| &facts.principals)
    }

    /// The counts of the files listed under each day.
    pub fn files(&self) -> impl Iterator<Item = (Day, &ScanStats)> {
        (self.days.iter()).map(|(day, facts)| (*day, &facts.files))
    }

    /// Puts back the counts of the files listed under `day` (as a store kept them).
    pub fn restore_files(&mut self, day: Day, files: ScanStats) {
        self.days.entry(day).or_default().files.merge(files);
    }

    /// Puts back principals' usage on `day` (as a store kept them).
    pub fn restore_principals(&mut self, day: Day, principals: BTreeMap<String, Usage>) {
        let mine = &mut self.days.entry(day).or_default().principals;
        for (principal, usage) in principals {
            mine.entry(principal).or_default().merge(usage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::{ScanOptions, scan_file_bytes};

    const APP: &str = "arn:aws:iam::111122223333:role/app";
    const WORKER: &str = "arn:aws:iam::111122223333:role/jobs/worker";

    fn call(issuer: &str, time: &str, name: &str, key: &str) -> String {
        format!(
            r#"{{"eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/x/s","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"{issuer}"}}}}}},"requestParameters":{{"bucketName":"b","key":"{key}"}}}}"#
        )
    }

    fn file(records: &[String]) -> Vec<u8> {
        format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes()
    }

    /// One read of a file that mixes principals answers each of them exactly as a scan for
    /// that principal alone would, day by day.
    #[test]
    fn facts_answer_every_principal_as_its_own_scan_would() {
        let bytes = file(&[
            call(APP, "2026-11-19T23:59:59Z", "GetObject", "a"),
            call(APP, "2026-11-20T00:00:01Z", "PutObject", "b"),
            call(WORKER, "2026-11-20T10:00:00Z", "GetObject", "c"),
            // The root user and AWS services are nobody's to shrink.
            r#"{"eventTime":"2026-11-20T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root"}}"#.to_string(),
        ]);
        let mut read = FileFacts::default();
        scan_file_bytes("f", &bytes, &ScanOptions::default(), &mut read).unwrap();
        assert_eq!(read.stats.records_scanned, 4);
        let mut facts = Facts::default();
        let day = |d: u32| Day {
            year: 2026,
            month: 11,
            day: d,
        };
        facts.add(day(20), read);
        for principal in [APP, WORKER, "worker", "nobody"] {
            let filter = PrincipalFilter::parse(principal).unwrap();
            for days in [day(19)..=day(20), day(20)..=day(20), day(19)..=day(19)] {
                let (first, last) = (days.start().iso(), days.end().iso());
                let options = ScanOptions {
                    principal: Some(filter.clone()),
                    from: crate::time::parse_date(&first),
                    to: crate::time::parse_date(&last).map(|t| t + 86_400 * 1_000_000_000),
                    ..ScanOptions::default()
                };
                let mut alone = Usage::default();
                scan_file_bytes("f", &bytes, &options, &mut alone).unwrap();
                let mut answered = facts.usage(&filter, days.clone());
                // File counts belong to the day the file was listed under.
                if !days.contains(&day(20)) {
                    assert_eq!(answered.stats.files_scanned, 0);
                    answered.stats.files_scanned = 1;
                    answered.stats.records_scanned = 4;
                }
                assert_eq!(answered, alone, "{principal} {first}..={last}");
            }
        }
        facts.forget_before(day(20));
        let app = PrincipalFilter::parse(APP).unwrap();
        assert!(
            !facts
                .usage(&app, day(19)..=day(19))
                .actions
                .contains_key("s3:GetObject")
        );
        assert!(
            facts
                .usage(&app, day(20)..=day(20))
                .actions
                .contains_key("s3:PutObject")
        );
    }
}
