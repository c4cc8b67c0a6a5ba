//! The fact store: what an ingester has read of a trail, kept in S3 so that a restart or a new
//! leader starts warm instead of reading the window again.
//!
//! Layout under the store's `s3://BUCKET/PREFIX/`, Hive-style so Athena and Spark read it as a
//! table (README, `examples/athena/facts-table.sql`):
//! `reader=ID/account=ACCOUNT/day=YYYY-MM-DD/facts.parquet` — one Parquet object per reading
//! identity, account and day, a row per fact ([`COLUMNS`]) — and `reader=ID/checkpoint.json`:
//! the trail it describes, the keys read, and the ETag of every partition it vouches for.
//! Partitions are written first and the checkpoint last; a partition whose ETag is not the
//! one its checkpoint names (a crash between the two, or someone else's write) makes the whole
//! store unusable, and the ingester starts cold rather than count a file twice.
//!
//! Everything read back is untrusted: objects are capped in size, rows and value length,
//! strings are decoded as views (a repeated dictionary value is never copied per row), and
//! the usage rebuilt from them goes through [`Usage::merge`]'s bounds.

use crate::time::Day;
use crate::usage::{ScanStats, Seen, Usage};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, StringViewArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Largest partition object read back.
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;
/// Largest checkpoint read back.
pub const MAX_CHECKPOINT_BYTES: u64 = 64 << 20;
/// Rows read from one partition object; more make it malformed.
pub const MAX_ROWS_PER_OBJECT: usize = 4_000_000;
/// Longest text value in a partition object (an ARN is at most 2,048 bytes).
pub const MAX_VALUE_BYTES: usize = 16 << 10;
/// Rows decoded at once: memory per batch is this many 16-byte views.
const BATCH_ROWS: usize = 8_192;
/// The checkpoint's format; another one is not read (2: denied calls' actions and resources;
/// 3: request-aware mapping, conditions and instance profiles: older facts lack them; 4: a
/// record's values escaped in resources, where older facts hold them as patterns; 5: refused
/// calls' source IP addresses).
const FORMAT: u32 = 5;

/// The columns of a partition object, in order. `kind` says which of the others a row uses:
/// `principal` (count: records matched), `action`, `resource`, `condition` (action, resource,
/// detail: `key=value`; a resource with such rows was used only under them), `denied`,
/// `denied-grant` (action, resource, detail: event id, source_ip), `unmapped`, `instance-profile`
/// (detail: its ARN), `note` (detail), `stat` (detail: `filesScanned`, `recordsScanned`) and
/// `skipped` (detail: reason).
pub const COLUMNS: [&str; 11] = [
    "principal",
    "kind",
    "action",
    "resource",
    "event_source",
    "event_name",
    "error_code",
    "detail",
    "count",
    "last_seen",
    "source_ip",
];

/// A store object that cannot be used, named by its key.
#[derive(Debug, thiserror::Error)]
#[error("fact store {key}: {reason}")]
pub struct Malformed {
    pub key: String,
    pub reason: String,
}

/// The partition object key (under the reader's root) of `account` on `day`.
pub fn partition_key(account: &str, day: Day) -> String {
    format!("account={account}/day={}/facts.parquet", day.iso())
}

/// The account a principal key belongs to, as a partition value: twelve digits, or `other`
/// (a principal key comes from an untrusted record; it never shapes a path).
pub fn account_of(principal: &str) -> &str {
    match principal.split(':').nth(4) {
        Some(account) if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => {
            account
        }
        _ => "other",
    }
}

/// The reader's directory name: `operator`, or a digest of the access role's ARN (which the
/// checkpoint names in full).
pub fn reader_id(reader: Option<&str>) -> String {
    use sha2::Digest;
    match reader {
        None => "operator".to_string(),
        Some(arn) => {
            let digest = sha2::Sha256::digest(arn.as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("role-{hex}")
        }
    }
}

/// What a checkpoint says: which trail and reader it describes, what has been read, and which
/// partition objects hold the facts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub format: u32,
    /// `s3://BUCKET/PREFIX region=… reader=…`: a checkpoint of another trail is never used.
    pub trail: String,
    /// Day prefixes read in full for days that are over.
    pub complete: BTreeSet<String>,
    /// Keys read under the other day prefixes.
    pub read: BTreeMap<String, BTreeSet<String>>,
    /// Days (ISO) with at least one file read.
    pub present: BTreeSet<String>,
    /// The counts of the files listed under each day (ISO).
    pub files: BTreeMap<String, ScanStats>,
    /// Partition key → the ETag it was written with.
    pub partitions: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn new(trail: String) -> Checkpoint {
        Checkpoint {
            format: FORMAT,
            trail,
            ..Checkpoint::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a checkpoint serializes")
    }

    /// The checkpoint in `bytes`, if it is one of `trail`'s in this format.
    pub fn decode(key: &str, bytes: &[u8], trail: &str) -> Result<Checkpoint, Malformed> {
        let malformed = |reason: String| Malformed {
            key: key.to_string(),
            reason,
        };
        let checkpoint: Checkpoint =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        // Another trail's first, whatever its format: that store is left alone. Ours in
        // another format is read again from the trail and written anew.
        if checkpoint.trail != trail {
            return Err(malformed(format!(
                "describes {:?}, not {trail:?}: give each trail and reader its own store prefix",
                checkpoint.trail
            )));
        }
        if checkpoint.format != FORMAT {
            return Err(malformed(format!(
                "format {} is not {FORMAT}",
                checkpoint.format
            )));
        }
        for partition in checkpoint.partitions.keys() {
            parse_partition_key(partition).ok_or_else(|| {
                malformed(format!(
                    "partition {partition:?} is not account=…/day=…/facts.parquet"
                ))
            })?;
        }
        Ok(checkpoint)
    }
}

/// `(account, day)` of a partition key this module would write.
pub fn parse_partition_key(key: &str) -> Option<(String, Day)> {
    let rest = key.strip_prefix("account=")?;
    let (account, rest) = rest.split_once("/day=")?;
    let day = rest.strip_suffix("/facts.parquet")?;
    let day = Day::of(crate::time::parse_date(day)?);
    (account_of(&format!("arn:aws:iam::{account}:x")) == account
        && partition_key(account, day) == key)
        .then(|| (account.to_string(), day))
}

/// One partition object: the usage of each of `principals`, as Parquet (Snappy), rows sorted.
pub fn encode(principals: &BTreeMap<String, Usage>) -> Vec<u8> {
    let mut rows = Rows::default();
    for (principal, usage) in principals {
        rows.push(
            principal,
            "principal",
            [None; 6],
            usage.stats.records_matched,
            "",
        );
        for (name, count) in [
            ("filesScanned", usage.stats.files_scanned),
            ("recordsScanned", usage.stats.records_scanned),
        ] {
            if count > 0 {
                rows.push(
                    principal,
                    "stat",
                    [None, None, None, None, None, Some(name)],
                    count,
                    "",
                );
            }
        }
        for (action, used) in &usage.actions {
            let seen = &used.seen;
            rows.push(
                principal,
                "action",
                [Some(action), None, None, None, None, None],
                seen.count,
                &seen.last_seen,
            );
            for (resource, seen) in &used.resources {
                let values = on(action, resource, None);
                rows.push(principal, "resource", values, seen.count, &seen.last_seen);
            }
            for (resource, conditions) in &used.conditions {
                for (key, value) in (conditions.iter())
                    .flat_map(|(key, values)| values.iter().map(move |v| (key, v)))
                {
                    let detail = format!("{key}={value}");
                    let values = on(action, resource, Some(&detail));
                    rows.push(principal, "condition", values, 0, "");
                }
            }
        }
        for (profile, seen) in &usage.instance_profiles {
            let values = [None, None, None, None, None, Some(profile.as_str())];
            let (count, last) = (seen.count, &seen.last_seen);
            rows.push(principal, "instance-profile", values, count, last);
        }
        for ((source, name, code), seen) in &usage.denied {
            let values = [
                None,
                None,
                Some(source.as_str()),
                Some(name),
                Some(code),
                None,
            ];
            rows.push(principal, "denied", values, seen.count, &seen.last_seen);
        }
        for ((action, resource), denial) in &usage.denied_grants {
            let values = on(action, resource, Some(&denial.event_id));
            let seen = &denial.seen;
            rows.push(
                principal,
                "denied-grant",
                values,
                seen.count,
                &seen.last_seen,
            );
            rows.with_source_ip(&denial.source_ip);
        }
        for ((source, name), seen) in &usage.unmapped {
            let values = [None, None, Some(source.as_str()), Some(name), None, None];
            rows.push(principal, "unmapped", values, seen.count, &seen.last_seen);
        }
        for note in &usage.notes {
            rows.push(
                principal,
                "note",
                [None, None, None, None, None, Some(note)],
                0,
                "",
            );
        }
        for (reason, count) in &usage.stats.skipped {
            rows.push(
                principal,
                "skipped",
                [None, None, None, None, None, Some(reason)],
                *count,
                "",
            );
        }
    }
    rows.into_parquet()
}

/// The values of an (action, resource) row, with its detail.
fn on<'a>(action: &'a str, resource: &'a str, detail: Option<&'a str>) -> [Option<&'a str>; 6] {
    [Some(action), Some(resource), None, None, None, detail]
}

/// The rows of a partition object, column by column.
#[derive(Default)]
struct Rows {
    text: [Vec<Option<String>>; 10],
    count: Vec<i64>,
}

impl Rows {
    /// `values`: action, resource, event_source, event_name, error_code, detail.
    fn push(
        &mut self,
        principal: &str,
        kind: &str,
        values: [Option<&str>; 6],
        count: u64,
        last_seen: &str,
    ) {
        self.text[0].push(Some(principal.to_string()));
        self.text[1].push(Some(kind.to_string()));
        for (column, value) in self.text[2..8].iter_mut().zip(values) {
            column.push(value.map(str::to_string));
        }
        self.text[8].push((!last_seen.is_empty()).then(|| last_seen.to_string()));
        self.text[9].push(None);
        self.count.push(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Gives the row pushed last a source IP address (a `denied-grant` row's).
    fn with_source_ip(&mut self, source_ip: &str) {
        if let Some(last) = self.text[9].last_mut() {
            *last = (!source_ip.is_empty()).then(|| source_ip.to_string());
        }
    }

    fn into_parquet(self) -> Vec<u8> {
        let [
            principal,
            kind,
            action,
            resource,
            source,
            name,
            code,
            detail,
            last_seen,
            source_ip,
        ] = self.text;
        let text = |values: Vec<Option<String>>| Arc::new(StringArray::from(values)) as ArrayRef;
        let columns = vec![
            text(principal),
            text(kind),
            text(action),
            text(resource),
            text(source),
            text(name),
            text(code),
            text(detail),
            Arc::new(Int64Array::from(self.count)) as ArrayRef,
            text(last_seen),
            text(source_ip),
        ];
        let batch = RecordBatch::try_new(schema(DataType::Utf8), columns)
            .expect("the columns match the schema");
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by("iam-tailor".to_string())
            .build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))
            .expect("an in-memory writer opens");
        writer.write(&batch).expect("writing to memory succeeds");
        writer.close().expect("writing to memory succeeds");
        bytes
    }
}

/// The schema of a partition object, its text columns as `text`.
fn schema(text: DataType) -> Arc<Schema> {
    schema_of(&COLUMNS, text)
}

/// The schema of `columns`, its text columns as `text`.
fn schema_of(columns: &[&str], text: DataType) -> Arc<Schema> {
    let fields = columns.iter().map(|name| match *name {
        "count" => Field::new(*name, DataType::Int64, false),
        "principal" | "kind" => Field::new(*name, text.clone(), false),
        _ => Field::new(*name, text.clone(), true),
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
}

/// What one partition object may bring into memory: anyone who can write to the store can
/// name millions of principals within the row limit.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Principals kept; past it, those not in `prefer` are skipped (their `principal` rows
    /// counted as `too-many-principals`).
    pub principals: usize,
    /// Rows kept (a fact each); past it, rows are skipped and counted as `too-many-facts`.
    pub facts: usize,
    /// Principals some resource asked about: kept past `principals`.
    pub prefer: Arc<BTreeSet<String>>,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            principals: super::facts::MAX_PRINCIPALS_PER_DAY,
            facts: super::facts::MAX_FACTS_PER_INGESTER,
            prefer: Arc::default(),
        }
    }
}

/// A partition object read within [`Bounds`]: the usage by principal, and what was skipped.
#[derive(Debug, Default)]
pub struct Decoded {
    pub principals: BTreeMap<String, Usage>,
    pub skipped: BTreeMap<&'static str, u64>,
}

/// The usage by principal in a partition object, bounded as any usage is and by the default
/// [`Bounds`]; `key` names it in errors.
pub fn decode(key: &str, bytes: Vec<u8>) -> Result<BTreeMap<String, Usage>, Malformed> {
    decode_within(key, bytes, &Bounds::default()).map(|d| d.principals)
}

/// The usage by principal in a partition object within `bounds`; `key` names it in errors.
/// The Parquet reader is not ours and has panicked on malformed metadata (found by fuzzing):
/// a panic there is this object's error too.
pub fn decode_within(key: &str, bytes: Vec<u8>, bounds: &Bounds) -> Result<Decoded, Malformed> {
    let decoding = std::panic::AssertUnwindSafe(move || decode_unguarded(key, bytes, bounds));
    std::panic::catch_unwind(decoding).unwrap_or_else(|panic| {
        Err(Malformed {
            key: key.to_string(),
            reason: format!(
                "the Parquet reader failed: {}",
                crate::panic::message(&*panic)
            ),
        })
    })
}

fn decode_unguarded(key: &str, bytes: Vec<u8>, bounds: &Bounds) -> Result<Decoded, Malformed> {
    let malformed = |reason: String| Malformed {
        key: key.to_string(),
        reason,
    };
    let bytes = bytes::Bytes::from(bytes);
    let open = |columns: &[&str]| {
        let options = ArrowReaderOptions::new().with_schema(schema_of(columns, DataType::Utf8View));
        ParquetRecordBatchReaderBuilder::try_new_with_options(bytes.clone(), options)
    };
    // An object of format 4 lacks source_ip: read as such, its refused calls without one.
    let (builder, with_source_ip) = match open(&COLUMNS) {
        Ok(builder) => (builder, true),
        Err(e) => match open(&COLUMNS[..COLUMNS.len() - 1]) {
            Ok(builder) => (builder, false),
            Err(_) => return Err(malformed(e.to_string())),
        },
    };
    let rows = builder.metadata().file_metadata().num_rows();
    if usize::try_from(rows).map_or(true, |rows| rows > MAX_ROWS_PER_OBJECT) {
        return Err(malformed(format!(
            "{rows} rows: more than the {MAX_ROWS_PER_OBJECT}-row limit"
        )));
    }
    let reader =
        (builder.with_batch_size(BATCH_ROWS).build()).map_err(|e| malformed(e.to_string()))?;
    let mut built: BTreeMap<String, Usage> = BTreeMap::new();
    let mut skipped: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut kept = 0usize;
    let mut read = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| malformed(e.to_string()))?;
        read += batch.num_rows();
        if read > MAX_ROWS_PER_OBJECT {
            return Err(malformed(format!(
                "more than the {MAX_ROWS_PER_OBJECT}-row limit"
            )));
        }
        let text = |i: usize| {
            (batch.column(i).as_any().downcast_ref::<StringViewArray>())
                .ok_or_else(|| malformed(format!("column {} is not text", COLUMNS[i])))
        };
        // 0..=7 as they are, then last_seen (9) and source_ip (10); count (8) apart.
        let columns = (0..8)
            .map(text)
            .chain([text(9)])
            .chain(with_source_ip.then(|| text(10)))
            .collect::<Result<Vec<_>, _>>()?;
        let counts = (batch.column(8).as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| malformed("column count is not a 64-bit integer".to_string()))?;
        for row in 0..batch.num_rows() {
            let value = |c: usize| -> Result<Option<&str>, Malformed> {
                let column = columns[c];
                if column.is_null(row) {
                    return Ok(None);
                }
                let value = column.value(row);
                if value.len() > MAX_VALUE_BYTES {
                    return Err(malformed(format!(
                        "row {}: {} longer than {MAX_VALUE_BYTES} bytes",
                        read - batch.num_rows() + row,
                        COLUMNS[if c >= 8 { c + 1 } else { c }]
                    )));
                }
                Ok(Some(value))
            };
            let fact = Fact {
                principal: value(0)?.unwrap_or_default(),
                kind: value(1)?.unwrap_or_default(),
                values: [
                    value(2)?,
                    value(3)?,
                    value(4)?,
                    value(5)?,
                    value(6)?,
                    value(7)?,
                ],
                count: u64::try_from(counts.value(row)).ok(),
                last_seen: value(8)?.unwrap_or_default(),
                source_ip: if with_source_ip {
                    value(9)?.unwrap_or_default()
                } else {
                    ""
                },
            };
            let known = built.contains_key(fact.principal);
            if !known && built.len() >= bounds.principals && !bounds.prefer.contains(fact.principal)
            {
                if fact.kind == "principal" {
                    *skipped
                        .entry(super::facts::TOO_MANY_PRINCIPALS)
                        .or_default() += 1;
                }
                continue;
            }
            if kept >= bounds.facts {
                *skipped.entry(super::facts::TOO_MANY_FACTS).or_default() += 1;
                continue;
            }
            kept += 1;
            fact.add_to(&mut built).map_err(|reason| {
                malformed(format!("row {}: {reason}", read - batch.num_rows() + row))
            })?;
        }
    }
    // Through the bounds, as any usage merged from elsewhere.
    let principals = (built.into_iter())
        .map(|(principal, usage)| {
            let mut bounded = Usage::default();
            bounded.merge(usage);
            (principal, bounded)
        })
        .collect();
    Ok(Decoded {
        principals,
        skipped,
    })
}

/// One row, borrowed from its batch.
struct Fact<'a> {
    principal: &'a str,
    kind: &'a str,
    /// action, resource, event_source, event_name, error_code, detail.
    values: [Option<&'a str>; 6],
    count: Option<u64>,
    last_seen: &'a str,
    source_ip: &'a str,
}

impl Fact<'_> {
    fn add_to(&self, built: &mut BTreeMap<String, Usage>) -> Result<(), String> {
        if self.principal.is_empty() {
            return Err("no principal".to_string());
        }
        let count = self.count.ok_or("a negative count")?;
        let seen = Seen {
            count,
            last_seen: self.last_seen.to_string(),
        };
        let need = |i: usize| {
            self.values[i]
                .map(str::to_string)
                .ok_or_else(|| format!("a {} row without {}", self.kind, COLUMNS[i + 2]))
        };
        let usage = built.entry(self.principal.to_string()).or_default();
        // Counts are untrusted: they saturate.
        let add = |n: &mut u64| *n = n.saturating_add(count);
        match self.kind {
            "principal" => add(&mut usage.stats.records_matched),
            "stat" => match self.values[5] {
                Some("filesScanned") => add(&mut usage.stats.files_scanned),
                Some("recordsScanned") => add(&mut usage.stats.records_scanned),
                other => return Err(format!("unknown stat {other:?}")),
            },
            "action" => usage.actions.entry(need(0)?).or_default().seen.merge(&seen),
            "resource" => {
                let used = usage.actions.entry(need(0)?).or_default();
                used.resources.entry(need(1)?).or_default().merge(&seen);
            }
            "condition" => {
                let detail = need(5)?;
                let (key, value) = (detail.split_once('='))
                    .ok_or_else(|| format!("a condition {detail:?} without '='"))?;
                let used = usage.actions.entry(need(0)?).or_default();
                let values = used.conditions.entry(need(1)?).or_default();
                values
                    .entry(key.to_string())
                    .or_default()
                    .insert(value.to_string());
            }
            "instance-profile" => {
                let profile = usage.instance_profiles.entry(need(5)?).or_default();
                profile.merge(&seen);
            }
            "denied" => {
                let key = (need(2)?, need(3)?, need(4)?);
                usage.denied.entry(key).or_default().merge(&seen);
            }
            "denied-grant" => {
                let denial = crate::usage::Denial {
                    seen,
                    event_id: need(5)?,
                    source_ip: self.source_ip.to_string(),
                };
                let key = (need(0)?, need(1)?);
                usage.denied_grants.entry(key).or_default().merge(&denial);
            }
            "unmapped" => {
                usage
                    .unmapped
                    .entry((need(2)?, need(3)?))
                    .or_default()
                    .merge(&seen);
            }
            "note" => {
                usage.notes.insert(need(5)?);
            }
            "skipped" => add(usage.stats.skipped.entry(need(5)?).or_default()),
            other => return Err(format!("unknown kind {other:?}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        let mut usage = Usage::default();
        usage.record_use("s3:GetObject", "arn:aws:s3:::b/a", "2026-11-20T10:00:00Z");
        usage.record_use("s3:GetObject", "arn:aws:s3:::b/c", "2026-11-20T11:00:00Z");
        usage.record_use("s3:ListAllMyBuckets", "*", "2026-11-20T12:00:00Z");
        usage.record_denied(
            "iam.amazonaws.com",
            "CreateUser",
            "AccessDenied",
            "2026-11-20T12:00:01Z",
        );
        usage.record_unmapped("new.amazonaws.com", "DoThing", "2026-11-20T12:00:02Z");
        usage.record_denied_grant(
            "iam:CreateUser",
            "arn:aws:iam::111122223333:user/x",
            &crate::usage::Refused {
                event_id: "e-1",
                source_ip: "192.0.2.1",
            },
            "2026-11-20T12:00:01Z",
        );
        usage.note("no ARN for x".to_string());
        usage.skip("too-many-notes");
        let role = "arn:aws:iam::111122223333:role/fn";
        for service in ["lambda.amazonaws.com", "states.amazonaws.com"] {
            let passed = Some(("iam:PassedToService", service));
            usage.record_use_under("iam:PassRole", role, passed, "2026-11-20T12:00:03Z");
        }
        let profile = "arn:aws:iam::111122223333:instance-profile/web";
        usage.record_instance_profile(profile, "2026-11-20T12:00:04Z");
        usage.stats.records_matched = 5;
        usage
    }

    #[test]
    fn partitions_read_back_as_written() {
        let mut principals = BTreeMap::new();
        principals.insert("arn:aws:iam::111122223333:role/app".to_string(), usage());
        principals.insert(
            "arn:aws:iam::111122223333:role/idle".to_string(),
            Usage::default(),
        );
        let mut counted = usage();
        counted.stats.files_scanned = 2;
        counted.stats.records_scanned = 9;
        principals.insert("arn:aws:iam::111122223333:user/u".to_string(), counted);
        let bytes = encode(&principals);
        assert_eq!(bytes, encode(&principals), "the same facts, the same bytes");
        assert_eq!(decode("k", bytes).unwrap(), principals);
    }

    /// Another writer's conditions are read through the same bounds: past them, or on a
    /// resource without uses, they narrow nothing and widen nothing.
    #[test]
    fn conditions_past_the_bounds_read_back_unconditional() {
        let role = "arn:aws:iam::111122223333:role/fn";
        let mut forged = Usage::default();
        forged.record_use("iam:PassRole", role, "2026-11-20T12:00:03Z");
        let used = forged.actions.get_mut("iam:PassRole").unwrap();
        let values =
            (0..=crate::usage::MAX_CONDITION_VALUES).map(|i| format!("s{i}.amazonaws.com"));
        let too_many = BTreeMap::from([("iam:PassedToService".to_string(), values.collect())]);
        used.conditions.insert(role.to_string(), too_many.clone());
        used.conditions.insert(
            "arn:aws:iam::111122223333:role/unused".to_string(),
            too_many,
        );
        let principal = "arn:aws:iam::111122223333:role/app".to_string();
        let bytes = encode(&BTreeMap::from([(principal.clone(), forged)]));
        let read = decode("k", bytes).unwrap();
        let used = &read[&principal].actions["iam:PassRole"];
        assert!(used.resources.contains_key(role));
        assert!(used.conditions.is_empty(), "{:?}", used.conditions);
    }

    #[test]
    fn a_partition_that_breaks_the_rules_is_malformed_and_named() {
        let key = "account=111122223333/day=2026-11-20/facts.parquet";
        let error = decode(key, b"PAR1 not parquet".to_vec()).unwrap_err();
        assert_eq!(error.key, key);
        // A value longer than any the writer could have written.
        let mut principals = BTreeMap::new();
        let mut long = Usage::default();
        long.record_use("s3:GetObject", &"x".repeat(MAX_VALUE_BYTES + 1), "t");
        principals.insert("arn:aws:iam::111122223333:role/app".to_string(), long);
        let error = decode(key, encode(&principals)).unwrap_err();
        assert!(error.reason.contains("resource longer than"), "{error}");
    }

    /// Found by fuzzing: metadata with a negative column start panics inside the Parquet reader.
    #[test]
    fn a_panic_of_the_parquet_reader_is_the_object_s_error() {
        let bytes =
            include_bytes!("../../fuzz/regressions/fact_store/metadata-negative-column-start");
        let error = decode("k", bytes.to_vec()).unwrap_err();
        assert!(
            error.reason.starts_with("the Parquet reader failed"),
            "{error}"
        );
    }

    #[test]
    fn a_principal_of_no_account_never_shapes_a_path() {
        assert_eq!(
            account_of("arn:aws:iam::111122223333:role/a"),
            "111122223333"
        );
        for hostile in [
            "arn:aws:iam::../../x:role/a",
            "arn:aws:iam::1111222233334:role/a",
            "x",
        ] {
            assert_eq!(account_of(hostile), "other");
        }
        let day = Day {
            year: 2026,
            month: 11,
            day: 20,
        };
        let key = partition_key("111122223333", day);
        assert_eq!(
            parse_partition_key(&key),
            Some(("111122223333".to_string(), day))
        );
        for hostile in [
            "account=../x/day=2026-11-20/facts.parquet",
            "account=111122223333/day=2026-11-20/../../facts.parquet",
            "account=111122223333/day=2026-02-30/facts.parquet",
        ] {
            assert_eq!(parse_partition_key(hostile), None, "{hostile}");
        }
    }

    /// The shipped Athena DDL declares exactly the columns written, in order.
    #[test]
    fn the_athena_table_declares_the_columns_written() {
        let ddl = include_str!("../../examples/athena/facts-table.sql");
        let body = ddl.split_once("CREATE EXTERNAL TABLE").unwrap().1;
        let columns = body.split_once('(').unwrap().1.split_once(')').unwrap().0;
        let declared: Vec<(&str, &str)> = (columns.split(','))
            .map(|c| c.trim().split_once(' ').unwrap())
            .collect();
        let written = schema(DataType::Utf8);
        let expected: Vec<(&str, &str)> = (written.fields().iter())
            .map(|f| {
                let kind = if f.data_type() == &DataType::Int64 {
                    "bigint"
                } else {
                    "string"
                };
                (f.name().as_str(), kind)
            })
            .collect();
        assert_eq!(declared, expected);
    }

    #[test]
    fn a_checkpoint_of_another_trail_or_format_is_refused() {
        let mut checkpoint = Checkpoint::new("s3://trail/ region=- reader=operator".to_string());
        checkpoint.partitions.insert(
            partition_key(
                "111122223333",
                Day {
                    year: 2026,
                    month: 11,
                    day: 20,
                },
            ),
            "\"etag\"".to_string(),
        );
        let bytes = checkpoint.encode();
        assert_eq!(
            Checkpoint::decode("c", &bytes, &checkpoint.trail).unwrap(),
            checkpoint
        );
        let other = Checkpoint::decode("c", &bytes, "s3://other/ region=- reader=operator");
        assert!(other.unwrap_err().reason.contains("its own store prefix"));
        let mut hostile = checkpoint.clone();
        hostile
            .partitions
            .insert("../../etc".to_string(), String::new());
        assert!(Checkpoint::decode("c", &hostile.encode(), &checkpoint.trail).is_err());
        // Another format: an older one lacks facts this one keeps, a newer one is unknown.
        for format in [FORMAT - 1, FORMAT + 1] {
            let mut other = checkpoint.clone();
            other.format = format;
            assert!(Checkpoint::decode("c", &other.encode(), &other.trail).is_err());
        }
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    /// A store object naming 100,000 principals (well within the row limit) loads at most
    /// the bound, counts the rest, and keeps an asked-for principal however late it comes.
    #[test]
    fn a_partition_with_a_flood_of_principals_loads_at_most_the_bound() {
        let mut usage = Usage::default();
        usage.record_use("s3:GetObject", "arn:aws:s3:::b/k", "2026-11-20T10:00:00Z");
        let name = |i: usize| format!("arn:aws:iam::111122223333:role/r{i:06}");
        let principals: BTreeMap<String, Usage> =
            (0..100_000).map(|i| (name(i), usage.clone())).collect();
        let bytes = encode(&principals);
        let app = name(99_999);
        let bounds = Bounds {
            prefer: Arc::new(BTreeSet::from([app.clone()])),
            ..Bounds::default()
        };
        let decoded = decode_within("k", bytes.clone(), &bounds).unwrap();
        let limit = crate::sources::facts::MAX_PRINCIPALS_PER_DAY;
        assert_eq!(decoded.principals.len(), limit + 1);
        assert!(decoded.principals.contains_key(&app));
        assert_eq!(
            decoded.skipped[crate::sources::facts::TOO_MANY_PRINCIPALS],
            (100_000 - limit - 1) as u64
        );
        // Past the facts left in the budget, rows are skipped and counted.
        let tight = Bounds {
            facts: 100,
            ..Bounds::default()
        };
        let decoded = decode_within("k", bytes, &tight).unwrap();
        let kept: usize = decoded.principals.values().map(Usage::facts).sum();
        assert!(kept <= 100, "{kept}");
        assert!(decoded.skipped[crate::sources::facts::TOO_MANY_FACTS] > 0);
    }
}
