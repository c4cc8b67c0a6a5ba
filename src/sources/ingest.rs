//! Ingest once, answer many: one trail's files read once each, for every principal in them.
//!
//! The operator keeps one [`Ingester`] per trail (bucket, prefix, region and the identity it
//! reads with). Asked for a principal's usage over some days, it lists those days' prefixes,
//! reads only the keys it has not read before, adds what they say about *every* principal to
//! its [`Facts`], and answers from the facts: a second role on the same trail, or a role
//! created later, costs listings but no reads. A day prefix read in full once the day is over
//! (plus CloudTrail's delivery delay) is complete and never listed again.
//!
//! With a [`FactStore`] the ingester starts from what the store kept (so a restart reads no
//! file twice) and writes back what each read adds: the partitions it touched, then the
//! checkpoint (`sources::store`).

use super::facts::{FactBudget, Facts, FileFacts};
use super::store::{self, Checkpoint, Malformed};
use super::trail::{OnPanic, TrailError, TrailScan, day_prefix, prefix_day, read_keys};
use crate::aws::s3::{S3Error, S3Location, TrailScope, get_capped, list_trail, put_object};
use crate::cloudtrail::{PrincipalFilter, ScanOptions};
use crate::time::Day;
use aws_sdk_s3::Client;
use futures::StreamExt;
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
    /// CloudTrail's layout), until the prefix is complete.
    read: BTreeMap<String, BTreeSet<String>>,
    /// Day prefixes read in full for days that are over.
    complete: BTreeSet<String>,
    /// Days with at least one file read.
    present: BTreeSet<Day>,
    /// Files downloaded so far, each once.
    files_read: u64,
    /// When each (scope, day) was last listed.
    listed: BTreeMap<(TrailScope, Day), std::time::Instant>,
    store: Option<StoreState>,
}

/// Where an ingester keeps its facts besides memory: `s3://BUCKET/PREFIX/reader=ID/`, written
/// with its own client (the operator's identity, whoever reads the trail).
#[derive(Debug)]
pub struct FactStore {
    pub client: Client,
    /// The reader's root in the store (`…/reader=ID/`).
    pub root: S3Location,
    /// Which trail and reader the store describes (the checkpoint's `trail`).
    pub trail: String,
}

impl FactStore {
    /// The store of `trail` (read in `region` by `reader`: none for the operator) under `store`.
    pub fn new(
        client: Client,
        store: &S3Location,
        trail: &S3Location,
        region: Option<&str>,
        reader: Option<&str>,
    ) -> FactStore {
        let mut prefix = store.prefix.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        FactStore {
            client,
            root: S3Location {
                bucket: store.bucket.clone(),
                prefix: format!("{prefix}reader={}/", store::reader_id(reader)),
            },
            trail: format!(
                "{trail} region={} reader={}",
                region.unwrap_or("-"),
                reader.unwrap_or("operator")
            ),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.root.prefix)
    }
}

/// A failed load or save of the fact store. The ingester goes on from memory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

#[derive(Debug)]
struct StoreState {
    store: FactStore,
    loaded: bool,
    /// Why nothing is written: the store describes another trail or reader.
    refused: Option<String>,
    /// Partition key → the ETag it was last written with.
    partitions: BTreeMap<String, String>,
    /// Partitions (account, day) whose facts changed since they were last written.
    unsaved: BTreeSet<(String, Day)>,
    /// Whether the checkpoint is behind what has been read.
    dirty: bool,
    errors: u64,
}

/// The checkpoint's name under the reader's root.
const CHECKPOINT: &str = "checkpoint.json";
/// Store objects written at once.
const STORE_IN_FLIGHT: usize = 16;
/// Store objects fetched at once when loading: each may be [`store::MAX_OBJECT_BYTES`], and
/// one more is decoded meanwhile, so loading holds at most 3 × 64 MiB of objects.
pub const STORE_READS_IN_FLIGHT: usize = 2;
/// How far ahead of now an `eventTime` or a store partition's day is believed (clocks differ a
/// little): later is forged, and is skipped and counted.
pub const MAX_CLOCK_SKEW_NANOS: i128 =
    crate::cloudtrail::event::MAX_CLOCK_SKEW_SECS * 1_000_000_000;
/// The skip reason (and metric label) of a store partition dated after today.
pub const FUTURE_PARTITION: &str = "future-partition";

impl Ingester {
    pub fn new(location: S3Location) -> Ingester {
        Ingester {
            location,
            facts: Facts::default(),
            read: BTreeMap::new(),
            complete: BTreeSet::new(),
            present: BTreeSet::new(),
            files_read: 0,
            listed: BTreeMap::new(),
            store: None,
        }
    }

    /// An ingester whose facts count against `budget`, shared with the operator's others.
    pub fn with_budget(mut self, budget: std::sync::Arc<FactBudget>) -> Ingester {
        self.facts = Facts::with_budget(budget);
        self
    }

    /// Takes the counts of what the memory bounds skipped since last taken, by reason.
    pub fn take_dropped(&mut self) -> BTreeMap<&'static str, u64> {
        self.facts.take_dropped()
    }

    /// Facts held now (`sources::facts::MAX_FACTS_PER_INGESTER` at most).
    pub fn facts_held(&self) -> usize {
        self.facts.held()
    }

    /// An ingester that starts from `store` and writes back to it.
    pub fn with_store(mut self, store: FactStore) -> Ingester {
        self.store = Some(StoreState {
            store,
            loaded: false,
            refused: None,
            partitions: BTreeMap::new(),
            unsaved: BTreeSet::new(),
            dirty: false,
            errors: 0,
        });
        self
    }

    /// Files downloaded so far (each once, whatever number of principals asked).
    pub fn files_read(&self) -> u64 {
        self.files_read
    }

    /// Failed loads and saves of the fact store so far.
    pub fn store_errors(&self) -> u64 {
        self.store.as_ref().map_or(0, |s| s.errors)
    }

    /// Reads what is new under `days` (within `scope`), then answers `principal`'s usage over
    /// those whole days. `now` decides which days are over, and which records are from the
    /// future (skipped). On a failed read nothing of the failed batch is kept, so its keys are
    /// read again next time (never counted twice). `principal` is kept first from now on.
    pub async fn usage(
        &mut self,
        client: &Client,
        scope: &TrailScope,
        days: &[Day],
        principal: &PrincipalFilter,
        now: crate::time::Instant,
        parallel: usize,
    ) -> Result<TrailScan, TrailError> {
        let today = Day::of(now);
        if let PrincipalFilter::Role { arn: Some(arn), .. } | PrincipalFilter::User { arn } =
            principal
        {
            self.facts.prefer(arn);
        }
        self.load_store(parallel, now).await;
        let at = std::time::Instant::now();
        let stale: Vec<Day> = (days.iter().copied())
            .filter(|day| {
                self.listed
                    .get(&(scope.clone(), *day))
                    .is_none_or(|listed| at.duration_since(*listed) >= LISTING_FRESH_FOR)
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
        // Everything in the file, for every principal, on whatever day its events fall (up
        // to now): the principals asked about first.
        let options = ScanOptions {
            not_after: Some(now + MAX_CLOCK_SKEW_NANOS),
            prefer: self.facts.preferred(),
            ..ScanOptions::default()
        };
        for (prefix, keys) in new {
            let files = keys
                .iter()
                .map(|k| (self.location.bucket.clone(), k.clone()))
                .collect();
            let facts: FileFacts =
                read_keys(client, files, &options, parallel, OnPanic::Skip).await?;
            self.files_read += keys.len() as u64;
            if let Some(state) = &mut self.store {
                state.dirty = true;
                for (day, principals) in &facts.days {
                    (state.unsaved).extend(
                        (principals.keys()).map(|p| (store::account_of(p).to_string(), *day)),
                    );
                }
            }
            let listed = prefix_day(&prefix);
            match listed {
                Some(day) => self.facts.add(day, facts),
                // Outside the layout the file's day is unknown: its counts go to its events'.
                None => {
                    let day = facts.days.keys().next().copied().unwrap_or(today);
                    self.facts.add(day, facts);
                }
            }
            self.present.extend(listed.filter(|_| !keys.is_empty()));
            self.read.entry(prefix).or_default().extend(keys);
        }
        for prefix in listing.listed_prefixes {
            if prefix_day(&prefix).is_some_and(|day| over(day, today)) {
                // Never listed again: its keys need not be remembered.
                self.read.remove(&prefix);
                self.complete.insert(prefix);
                if let Some(state) = &mut self.store {
                    state.dirty = true;
                }
            }
        }
        for day in stale {
            self.listed.insert((scope.clone(), day), at);
        }
        self.save_store(parallel).await;
        let days_without_files = days
            .iter()
            .filter(|d| !self.present.contains(d))
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
        self.present = self.present.split_off(&day);
        self.listed.retain(|(_, listed), _| *listed >= day);
        if let Some(state) = &mut self.store {
            let kept =
                |key: &String| store::parse_partition_key(key).is_some_and(|(_, d)| d >= day);
            state.partitions.retain(|key, _| kept(key));
            state.unsaved.retain(|(_, d)| *d >= day);
        }
    }

    /// Drops the facts and read keys of days after `day` (tomorrow at the latest): only a
    /// forged record or store object dates anything there.
    pub fn forget_after(&mut self, day: Day) {
        self.facts.forget_after(day);
        let future = |prefix: &String| prefix_day(prefix).is_some_and(|d| d > day);
        self.read.retain(|prefix, _| !future(prefix));
        self.complete.retain(|prefix| !future(prefix));
        self.present.retain(|d| *d <= day);
        self.listed.retain(|(_, listed), _| *listed <= day);
        if let Some(state) = &mut self.store {
            let kept =
                |key: &String| store::parse_partition_key(key).is_some_and(|(_, d)| d <= day);
            state.partitions.retain(|key, _| kept(key));
            state.unsaved.retain(|(_, d)| *d <= day);
        }
    }

    /// Once: starts from what the store kept, up to today (a partition dated later is not
    /// loaded, and counted) and within the facts' bounds. A store that cannot be used
    /// (missing a partition, one rewritten since its checkpoint, malformed) is started over
    /// from the trail; one that describes another trail or reader is left alone.
    async fn load_store(&mut self, parallel: usize, now: crate::time::Instant) {
        let Some(state) = &mut self.store else {
            return;
        };
        if state.loaded {
            return;
        }
        state.loaded = true;
        let last = Day::of(now + MAX_CLOCK_SKEW_NANOS);
        match load(&state.store, parallel, &mut self.facts, last).await {
            Ok(None) => {}
            Ok(Some(checkpoint)) => {
                let day = |d: &String| crate::time::parse_date(d).map(Day::of);
                for (d, stats) in &checkpoint.files {
                    if let Some(d) = day(d).filter(|d| *d <= last) {
                        self.facts.restore_files(d, stats.clone());
                    }
                }
                let future = |prefix: &String| prefix_day(prefix).is_some_and(|d| d > last);
                self.complete = checkpoint.complete;
                self.complete.retain(|prefix| !future(prefix));
                self.read = checkpoint.read;
                self.read.retain(|prefix, _| !future(prefix));
                self.present = (checkpoint.present.iter())
                    .filter_map(day)
                    .filter(|d| *d <= last)
                    .collect();
                state.partitions = checkpoint.partitions;
                (state.partitions).retain(|key, _| {
                    store::parse_partition_key(key).is_some_and(|(_, d)| d <= last)
                });
            }
            Err(error) => {
                self.facts.clear();
                state.errors += 1;
                if matches!(&error, StoreError::Malformed(m) if m.key.ends_with(CHECKPOINT) && m.reason.contains("its own store prefix"))
                {
                    state.refused = Some(error.to_string());
                }
                tracing::warn!(store = %state.store.root, %error, "fact store not used: reading the trail instead");
            }
        }
    }

    /// Writes what changed: the partitions first, then the checkpoint that vouches for them.
    /// What fails stays unsaved, for the next call.
    async fn save_store(&mut self, parallel: usize) {
        let Some(state) = &mut self.store else {
            return;
        };
        if state.refused.is_some() || (!state.dirty && state.unsaved.is_empty()) {
            return;
        }
        let objects: Vec<((String, Day), String, Vec<u8>)> = (state.unsaved.iter())
            .map(|(account, day)| {
                let mut principals = (self.facts.principals_on(*day).cloned()).unwrap_or_default();
                principals.retain(|p, _| store::account_of(p) == account);
                let key = store::partition_key(account, *day);
                ((account.clone(), *day), key, store::encode(&principals))
            })
            .collect();
        let puts: Vec<_> = (objects.into_iter())
            .map(|(partition, key, bytes)| {
                let (client, bucket) =
                    (state.store.client.clone(), state.store.root.bucket.clone());
                let object = state.store.key(&key);
                async move {
                    let etag = put_object(&client, &bucket, &object, bytes).await;
                    (partition, key, etag)
                }
            })
            .collect();
        let written: Vec<_> = futures::stream::iter(puts)
            .buffer_unordered(parallel.clamp(1, STORE_IN_FLIGHT))
            .collect()
            .await;
        let mut failed = None;
        for (partition, key, etag) in written {
            match etag {
                Ok(etag) => {
                    state.partitions.insert(key, etag);
                    state.unsaved.remove(&partition);
                }
                Err(error) => failed = Some(error),
            }
        }
        let result = match failed {
            Some(error) => Err(error),
            None => {
                let checkpoint = Checkpoint {
                    complete: self.complete.clone(),
                    read: self.read.clone(),
                    present: self.present.iter().map(Day::iso).collect(),
                    files: (self.facts.files())
                        .map(|(day, stats)| (day.iso(), stats.clone()))
                        .collect(),
                    partitions: state.partitions.clone(),
                    ..Checkpoint::new(state.store.trail.clone())
                };
                let key = state.store.key(CHECKPOINT);
                put_object(
                    &state.store.client,
                    &state.store.root.bucket,
                    &key,
                    checkpoint.encode(),
                )
                .await
                .map(|_| ())
            }
        };
        match result {
            Ok(()) => state.dirty = false,
            Err(error) => {
                state.errors += 1;
                tracing::warn!(store = %state.store.root, %error, "fact store not saved: retried at the next read");
            }
        }
    }
}

/// What `store` kept: its checkpoint (`None` when it has none yet), the usage of every
/// partition it vouches for dated up to `last` put into `facts` within their bounds, one
/// object at a time. Later partitions are counted as [`FUTURE_PARTITION`], not fetched.
async fn load(
    store: &FactStore,
    parallel: usize,
    facts: &mut Facts,
    last: Day,
) -> Result<Option<Checkpoint>, StoreError> {
    let bucket = &store.root.bucket;
    let key = store.key(CHECKPOINT);
    let fetched = match get_capped(&store.client, bucket, &key, store::MAX_CHECKPOINT_BYTES).await {
        Err(error) if error.code.as_deref() == Some("NoSuchKey") => return Ok(None),
        fetched => fetched?,
    };
    let fetched = fetched.ok_or_else(|| too_large(&key, store::MAX_CHECKPOINT_BYTES))?;
    let checkpoint = Checkpoint::decode(&key, &fetched.bytes, &store.trail)?;
    drop(fetched);
    let dated = |partition: &String| store::parse_partition_key(partition).map(|(_, d)| d);
    let future = (checkpoint.partitions.keys())
        .filter(|p| dated(p).is_some_and(|d| d > last))
        .count();
    if future > 0 {
        tracing::warn!(store = %store.root, partitions = future, "fact store partitions dated after today: not loaded");
        facts.count_dropped_only(FUTURE_PARTITION, future as u64);
    }
    let gets: Vec<_> = (checkpoint.partitions.iter())
        .filter(|(partition, _)| dated(partition).is_some_and(|d| d <= last))
        .map(|(partition, etag)| {
            let (client, bucket) = (store.client.clone(), bucket.clone());
            let (key, partition, etag) = (store.key(partition), partition.clone(), etag.clone());
            async move { fetch_partition(&client, &bucket, key, &partition, &etag).await }
        })
        .collect();
    let mut fetched =
        futures::stream::iter(gets).buffer_unordered(parallel.clamp(1, STORE_READS_IN_FLIGHT));
    while let Some(partition) = fetched.next().await {
        let (day, object) = partition?;
        let bounds = store::Bounds {
            facts: facts.room(),
            prefer: facts.preferred(),
            ..store::Bounds::default()
        };
        let decoded = decode_partition(object, bounds).await?;
        facts.restore_principals(day, decoded.principals);
        for (reason, n) in decoded.skipped {
            facts.count_dropped(day, reason, n);
        }
    }
    Ok(Some(checkpoint))
}

/// A partition object fetched, not decoded yet.
struct PartitionObject {
    key: String,
    partition: String,
    account: String,
    bytes: Vec<u8>,
}

/// One partition the checkpoint vouches for with `etag`, fetched.
async fn fetch_partition(
    client: &Client,
    bucket: &str,
    key: String,
    partition: &str,
    etag: &str,
) -> Result<(Day, PartitionObject), StoreError> {
    let fetched = get_capped(client, bucket, &key, store::MAX_OBJECT_BYTES)
        .await?
        .ok_or_else(|| too_large(&key, store::MAX_OBJECT_BYTES))?;
    if fetched.etag != etag {
        let reason = format!(
            "ETag {} is not the checkpoint's {etag}: written since",
            fetched.etag
        );
        return Err(Malformed { key, reason }.into());
    }
    let (account, day) = store::parse_partition_key(partition).expect("checked by decode");
    let object = PartitionObject {
        key,
        partition: partition.to_string(),
        account,
        bytes: fetched.bytes,
    };
    Ok((day, object))
}

/// A fetched partition, decoded within `bounds` (off the async threads).
async fn decode_partition(
    object: PartitionObject,
    bounds: store::Bounds,
) -> Result<store::Decoded, StoreError> {
    let PartitionObject {
        key,
        partition,
        account,
        bytes,
    } = object;
    let decoded = tokio::task::spawn_blocking(move || {
        let decoded = store::decode_within(&key, bytes, &bounds)?;
        match (decoded.principals.keys()).find(|p| store::account_of(p) != account) {
            Some(stranger) => Err(Malformed {
                reason: format!("{stranger} is not of account {account}"),
                key,
            }),
            None => Ok(decoded),
        }
    })
    .await;
    let decoded = crate::panic::joined(decoded).map_err(|panicked| Malformed {
        key: partition,
        reason: format!("decoding panicked: {panicked}"),
    })??;
    Ok(decoded)
}

fn too_large(key: &str, limit: u64) -> Malformed {
    Malformed {
        key: key.to_string(),
        reason: format!("larger than the {limit}-byte limit"),
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
