//! Usage by day and principal, for every principal a trail names: what one read of each file
//! leaves behind, so that any principal's window is a merge of days, never a re-read.

use crate::cloudtrail::select::principal_key;
use crate::cloudtrail::{PrincipalFilter, Record, ScanOptions, Sink};
use crate::time::Day;
use crate::usage::{ProfileRoles, ScanStats, Usage, add_profile_role};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Principals kept per day: in one read of trail files, in one ingester's facts, in one fact
/// store partition. Anyone who can write a trail file or a store object can name millions;
/// past this, those no resource asked about are counted as [`TOO_MANY_PRINCIPALS`] and skipped.
pub const MAX_PRINCIPALS_PER_DAY: usize = 10_000;
/// Principal-days kept in one read of trail files (a file's records may fall on many days).
pub const MAX_PRINCIPAL_DAYS_PER_READ: usize = 4 * MAX_PRINCIPALS_PER_DAY;
/// Facts ([`Usage::facts`]: principals, actions, resources, calls, notes) one ingester keeps;
/// past it, more are counted as [`TOO_MANY_FACTS`] and skipped. Principals no resource asked
/// about fill at most half, so a flood of them never pushes out a managed role's.
pub const MAX_FACTS_PER_INGESTER: usize = 600_000;
/// Facts every ingester together keeps (the operator's [`FactBudget`]), shared the same way:
/// about 200 MiB (`cargo bench --bench memory_bounds`).
pub const MAX_FACTS_TOTAL: usize = 1_000_000;
/// What a principal's own usage costs beyond its facts: an empty [`Usage`] takes about three
/// facts' memory.
const PRINCIPAL_WEIGHT: usize = 2;

/// What `usage` costs against the bounds.
fn weight(usage: &Usage) -> usize {
    usage.facts() + PRINCIPAL_WEIGHT
}
/// The skip reason of a principal past [`MAX_PRINCIPALS_PER_DAY`] or
/// [`MAX_PRINCIPAL_DAYS_PER_READ`].
pub const TOO_MANY_PRINCIPALS: &str = "too-many-principals";
/// The skip reason of a principal's usage past [`MAX_FACTS_PER_INGESTER`] or [`MAX_FACTS_TOTAL`].
pub const TOO_MANY_FACTS: &str = "too-many-facts";

/// Facts held by every ingester sharing it, against one limit: one trail's flood cannot take
/// the memory another trail's tenants need beyond its own share.
#[derive(Debug)]
pub struct FactBudget {
    limit: usize,
    held: AtomicUsize,
}

impl FactBudget {
    pub fn new(limit: usize) -> Arc<FactBudget> {
        Arc::new(FactBudget {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// Facts held now, by every ingester sharing it.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Takes `n` if the held facts stay within `within`.
    fn reserve(&self, n: usize, within: usize) -> bool {
        (self.held)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held.saturating_add(n) <= within).then_some(held + n)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        let _ = (self.held).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
            Some(held.saturating_sub(n))
        });
    }
}

/// Of a bound, what a principal may fill: all of it if some resource asked about it, else half.
fn share(limit: usize, preferred: bool) -> usize {
    if preferred { limit } else { limit / 2 }
}

/// What some trail files say, for every principal in them, by the UTC day of each event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileFacts {
    pub stats: ScanStats,
    /// By the day of `eventTime`, then by [`principal_key`].
    pub days: BTreeMap<Day, BTreeMap<String, Usage>>,
    /// Roles the files showed added to instance profiles, whoever added them.
    pub profile_roles: ProfileRoles,
    /// Principal-days held (bounded by [`MAX_PRINCIPAL_DAYS_PER_READ`]).
    principal_days: usize,
    /// The scan's [`ScanOptions::prefer`], kept for merges.
    prefer: Arc<BTreeSet<String>>,
}

impl FileFacts {
    /// Adds `usage` of `principal` on `day` within the bounds; else the skip reason.
    fn add(&mut self, day: Day, principal: String, usage: Usage) -> Result<(), &'static str> {
        let preferred = self.prefer.contains(&principal);
        let principals = self.days.entry(day).or_default();
        if let Some(mine) = principals.get_mut(&principal) {
            mine.merge(usage);
            return Ok(());
        }
        if !preferred
            && (principals.len() >= MAX_PRINCIPALS_PER_DAY
                || self.principal_days >= MAX_PRINCIPAL_DAYS_PER_READ)
        {
            return Err(TOO_MANY_PRINCIPALS);
        }
        self.principal_days += 1;
        principals.insert(principal, usage);
        Ok(())
    }
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
        if self.prefer.is_empty() {
            self.prefer = other.prefer;
        }
        for (day, principals) in other.days {
            for (principal, usage) in principals {
                let matched = usage.stats.records_matched;
                if let Err(reason) = self.add(day, principal, usage) {
                    self.stats.skip_many(reason, matched.max(1));
                }
            }
        }
    }

    fn wants(&self, record: &Record, principal: Option<&PrincipalFilter>) -> bool {
        principal_key(record).is_some_and(|key| principal.is_none_or(|p| p.matches_key(key)))
    }

    fn usage_for(
        &mut self,
        record: &Record,
        time: &str,
        opts: &ScanOptions,
    ) -> Result<&mut Usage, &'static str> {
        let day = Day::of_event_time(time).ok_or("invalid-event-time")?;
        let key = principal_key(record).ok_or("invalid-event-time")?;
        if self.prefer.is_empty() && !opts.prefer.is_empty() {
            self.prefer = Arc::clone(&opts.prefer);
        }
        if !self.days.get(&day).is_some_and(|p| p.contains_key(key)) {
            self.add(day, key.to_string(), Usage::default())?;
        }
        Ok((self.days.get_mut(&day).and_then(|p| p.get_mut(key))).expect("just added"))
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
/// day, and the usage of every principal whose events fall on it. Bounded: at most
/// [`MAX_PRINCIPALS_PER_DAY`] principals a day no resource asked about, and
/// [`MAX_FACTS_PER_INGESTER`] facts (and its share of its [`FactBudget`]).
#[derive(Debug)]
pub struct Facts {
    days: BTreeMap<Day, DayFacts>,
    /// Principal keys some resource asked about: kept first, never pushed out by others.
    prefer: Arc<BTreeSet<String>>,
    /// Facts held ([`Usage::facts`] of every usage kept; an upper bound between recounts).
    held: usize,
    budget: Arc<FactBudget>,
    /// What the bounds skipped, by reason, since last taken (for the metrics).
    dropped: BTreeMap<&'static str, u64>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts::with_budget(FactBudget::new(MAX_FACTS_TOTAL))
    }
}

impl Drop for Facts {
    fn drop(&mut self) {
        self.budget.release(self.held);
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
struct DayFacts {
    files: ScanStats,
    principals: BTreeMap<String, Usage>,
}

impl Facts {
    /// Facts counted against `budget` (shared with other ingesters).
    pub fn with_budget(budget: Arc<FactBudget>) -> Facts {
        Facts {
            days: BTreeMap::new(),
            prefer: Arc::default(),
            held: 0,
            budget,
            dropped: BTreeMap::new(),
        }
    }

    /// Keeps `principal` first from now on: some resource asked about it.
    pub fn prefer(&mut self, principal: &str) {
        if !self.prefer.contains(principal) {
            Arc::make_mut(&mut self.prefer).insert(principal.to_string());
        }
    }

    /// The principals kept first, for a scan's [`ScanOptions::prefer`].
    pub fn preferred(&self) -> Arc<BTreeSet<String>> {
        Arc::clone(&self.prefer)
    }

    /// Facts held now (an upper bound until the next [`Facts::forget_before`]).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Takes the counts of what the bounds skipped since last taken, by reason.
    pub fn take_dropped(&mut self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut self.dropped)
    }

    /// Counts `n` of something skipped for `reason` against day `day`'s file counts (so it
    /// reaches every window holding that day) and the metrics.
    pub fn count_dropped(&mut self, day: Day, reason: &'static str, n: u64) {
        self.days.entry(day).or_default().files.skip_many(reason, n);
        *self.dropped.entry(reason).or_default() += n;
    }

    /// Counts `n` of something skipped for `reason` that no day's window holds (the metrics).
    pub fn count_dropped_only(&mut self, reason: &'static str, n: u64) {
        *self.dropped.entry(reason).or_default() += n;
    }

    /// The facts a preferred principal could still bring: what the ingester's bound and its
    /// budget have left.
    pub fn room(&self) -> usize {
        let budget = self.budget.limit.saturating_sub(self.budget.held());
        MAX_FACTS_PER_INGESTER.saturating_sub(self.held).min(budget)
    }

    /// Adds what files listed under day `listed` said (their events may fall on other days:
    /// CloudTrail delivers a few minutes late, so a day's first files hold the day before's
    /// last events). Past the bounds, principals are skipped and counted under `listed`.
    pub fn add(&mut self, listed: Day, facts: FileFacts) {
        // The read's own bounds, for the metrics (its counts go to `listed` below).
        for (reason, n) in &facts.stats.skipped {
            let known = [TOO_MANY_PRINCIPALS, crate::cloudtrail::FUTURE_EVENT_TIME];
            if let Some(reason) = known.into_iter().find(|r| r == reason) {
                *self.dropped.entry(reason).or_default() += n;
            }
        }
        self.days
            .entry(listed)
            .or_default()
            .files
            .merge(facts.stats);
        for (day, principals) in facts.days {
            for (reason, n) in self.keep_all(day, principals) {
                self.count_dropped(listed, reason, n);
            }
        }
    }

    /// Keeps `principals`' usage on `day` within the bounds, the preferred first; the counts
    /// of those skipped (records matched, at least one each), by reason.
    fn keep_all(
        &mut self,
        day: Day,
        principals: BTreeMap<String, Usage>,
    ) -> BTreeMap<&'static str, u64> {
        let (first, rest): (Vec<_>, Vec<_>) =
            (principals.into_iter()).partition(|(principal, _)| self.prefer.contains(principal));
        let mut dropped = BTreeMap::new();
        for (principal, usage) in first.into_iter().chain(rest) {
            let matched = usage.stats.records_matched.max(1);
            if let Err(reason) = self.keep(day, principal, usage) {
                *dropped.entry(reason).or_default() += matched;
            }
        }
        dropped
    }

    /// Keeps `principal`'s `usage` on `day` if the bounds allow.
    fn keep(&mut self, day: Day, principal: String, usage: Usage) -> Result<(), &'static str> {
        let preferred = self.prefer.contains(&principal);
        let principals = &self.days.get(&day).map(|d| &d.principals);
        let known = principals.is_some_and(|p| p.contains_key(&principal));
        if !known && !preferred && principals.is_some_and(|p| p.len() >= MAX_PRINCIPALS_PER_DAY) {
            return Err(TOO_MANY_PRINCIPALS);
        }
        // An upper bound on what the merge adds (collapses only ever shrink it).
        let weight = weight(&usage);
        if self.held.saturating_add(weight) > share(MAX_FACTS_PER_INGESTER, preferred)
            || !self
                .budget
                .reserve(weight, share(self.budget.limit, preferred))
        {
            return Err(TOO_MANY_FACTS);
        }
        self.held += weight;
        let mine = &mut self.days.entry(day).or_default().principals;
        mine.entry(principal).or_default().merge(usage);
        Ok(())
    }

    /// Counts the facts held again (merges and collapses make the running count an upper
    /// bound), and gives back to the budget what is not held.
    fn recount(&mut self) {
        let held: usize = (self.days.values())
            .flat_map(|d| d.principals.values())
            .map(weight)
            .sum();
        if held < self.held {
            self.budget.release(self.held - held);
        } else {
            self.budget
                .held
                .fetch_add(held - self.held, Ordering::Relaxed);
        }
        self.held = held;
    }

    /// Drops everything (a store that could not be used), keeping who is preferred.
    pub fn clear(&mut self) {
        self.days.clear();
        self.recount();
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
        self.recount();
    }

    /// Drops the days after `day`: only a forged record or store object dates them there.
    pub fn forget_after(&mut self, day: Day) {
        let next = Day::of((i128::from(day.since_epoch()) + 1) * 86_400 * 1_000_000_000);
        if !self.days.split_off(&next).is_empty() {
            self.recount();
        }
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

    /// Puts back principals' usage on `day` (as a store kept them), within the bounds: the
    /// rest is counted under `day`.
    pub fn restore_principals(&mut self, day: Day, principals: BTreeMap<String, Usage>) {
        for (reason, n) in self.keep_all(day, principals) {
            self.count_dropped(day, reason, n);
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

#[cfg(test)]
mod bounds {
    use super::*;
    use crate::cloudtrail::{ScanOptions, scan_file_bytes};

    fn call(role: &str, time: &str) -> String {
        format!(
            r#"{{"eventTime":"{time}","eventSource":"sqs.amazonaws.com","eventName":"ListQueues","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/x/s","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111122223333:role/{role}"}}}}}}}}"#
        )
    }

    fn file(records: &[String]) -> Vec<u8> {
        format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes()
    }

    const DAY: Day = Day {
        year: 2026,
        month: 11,
        day: 20,
    };

    /// A file naming 15,000 made-up principals on one day, the managed role's record last:
    /// at most the bound is kept, the rest counted, and the asked-for role is never pushed out.
    #[test]
    fn a_flood_of_principals_is_bounded_and_counted_and_the_asked_for_role_kept() {
        let t = "2026-11-20T10:00:00Z";
        let mut records: Vec<String> = (0..15_000)
            .map(|i| call(&format!("flood-{i}"), t))
            .collect();
        records.push(call("app", t));
        let app = "arn:aws:iam::111122223333:role/app";
        let options = ScanOptions {
            prefer: Arc::new(BTreeSet::from([app.to_string()])),
            ..ScanOptions::default()
        };
        let mut read = FileFacts::default();
        scan_file_bytes("f", &file(&records), &options, &mut read).unwrap();
        assert_eq!(read.days[&DAY].len(), MAX_PRINCIPALS_PER_DAY + 1);
        assert!(read.days[&DAY].contains_key(app));
        assert_eq!(read.stats.skipped[TOO_MANY_PRINCIPALS], 5_000);

        // Into an ingester's facts: bounded again, counted under the day and for the metrics.
        let mut facts = Facts::default();
        facts.prefer(app);
        facts.add(DAY, read);
        let filter = PrincipalFilter::parse(app).unwrap();
        let usage = facts.usage(&filter, DAY..=DAY);
        assert!(usage.actions.contains_key("sqs:ListQueues"));
        // Kept first there, the asked-for role takes one of the day's places: one more out.
        assert_eq!(
            facts.principals_on(DAY).unwrap().len(),
            MAX_PRINCIPALS_PER_DAY
        );
        assert_eq!(usage.stats.skipped[TOO_MANY_PRINCIPALS], 5_001);
        assert_eq!(facts.take_dropped()[TOO_MANY_PRINCIPALS], 5_001);
    }

    /// A record dated in year 9999 (or an hour ahead) is skipped as from the future, counted.
    #[test]
    fn a_year_9999_record_is_skipped_as_future() {
        let now = crate::time::parse_date("2026-11-20T10:00:00Z").unwrap();
        let records = [
            call("app", "9999-12-31T23:59:59Z"),
            call("app", "2026-11-20T11:00:00Z"),
            call("app", "2026-11-20T10:04:00Z"),
        ];
        let options = ScanOptions {
            not_after: Some(now + 300 * 1_000_000_000),
            ..ScanOptions::default()
        };
        let mut read = FileFacts::default();
        scan_file_bytes("f", &file(&records), &options, &mut read).unwrap();
        assert_eq!(read.stats.skipped[crate::cloudtrail::FUTURE_EVENT_TIME], 2);
        assert_eq!(read.days.keys().collect::<Vec<_>>(), [&DAY]);
        let mut facts = Facts::default();
        facts.add(DAY, read);
        assert_eq!(
            facts.take_dropped()[crate::cloudtrail::FUTURE_EVENT_TIME],
            2
        );
    }

    /// Days after today (only a forged record or store object has them) are forgotten.
    #[test]
    fn forget_after_drops_the_future() {
        let mut facts = Facts::default();
        let later = Day::of(crate::time::parse_date("9999-01-01T00:00:00Z").unwrap());
        let mut usage = Usage::default();
        usage.record_use("s3:GetObject", "*", "9999-01-01T00:00:00Z");
        let principals = BTreeMap::from([("arn:aws:iam::1:role/x".to_string(), usage)]);
        facts.restore_principals(later, principals.clone());
        facts.restore_principals(DAY, principals);
        assert_eq!(facts.held(), 10);
        facts.forget_after(DAY);
        assert!(facts.principals_on(later).is_none());
        assert!(facts.principals_on(DAY).is_some());
        assert_eq!(facts.held(), 5);
    }

    /// Principals nobody asked about fill at most half the facts: a flood of them leaves the
    /// managed roles room, in this ingester and in the budget all ingesters share.
    #[test]
    fn a_flood_cannot_push_out_asked_for_principals() {
        let budget = FactBudget::new(1_000);
        let mut flooded = Facts::with_budget(Arc::clone(&budget));
        let usage = |n: usize| {
            let mut usage = Usage::default();
            for i in 0..n {
                usage.record_use("s3:GetObject", &format!("arn:aws:s3:::b/{i}"), "t");
            }
            usage
        };
        for day in 1..=28 {
            let day = Day { day, ..DAY };
            let flood = (0..20).map(|i| (format!("arn:aws:iam::1:role/f{i}"), usage(8)));
            flooded.restore_principals(day, flood.collect());
        }
        assert!(budget.held() <= 500, "{}", budget.held());
        assert!(flooded.take_dropped()[TOO_MANY_FACTS] > 0);
        // Another ingester's managed role still fits, within the whole budget.
        let mut other = Facts::with_budget(Arc::clone(&budget));
        let app = "arn:aws:iam::1:role/app";
        other.prefer(app);
        other.restore_principals(DAY, BTreeMap::from([(app.to_string(), usage(300))]));
        assert!(other.take_dropped().is_empty());
        assert!(budget.held() <= 1_000);
        drop(other);
        drop(flooded);
        assert_eq!(budget.held(), 0, "given back");
    }
}
