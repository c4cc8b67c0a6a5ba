//! Memory under hostile shared input: a fact store naming a million principals a day, trail
//! files flooding distinct principals and dating records in year 9999, and a signal queue
//! flooding refusals for many roles, each through the library's real code paths (no servers).
//! Prints the peak RSS (`VmHWM`, reset before each step, so it holds the step's input bytes as
//! the operator would hold them) and what each bound dropped, against the chart's 1 GiB.
//! A benchmark (figures, no pass/fail): `cargo bench --bench memory_bounds`.

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use iam_tailor::cloudtrail::{ScanOptions, scan_file_bytes};
use iam_tailor::controller::signals::{MAX_REFUSING_PRINCIPALS, Refusals};
use iam_tailor::sources::facts::{FactBudget, Facts, FileFacts, MAX_FACTS_TOTAL};
use iam_tailor::sources::store::{self, COLUMNS};
use iam_tailor::time::{Day, parse_date};
use iam_tailor::usage::Usage;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The chart's memory limit (`charts/iam-tailor/values.yaml`).
const CHART_LIMIT_MIB: u64 = 1024;
const NOW: &str = "2026-11-20T12:00:00Z";
const ACCOUNT: &str = "111122223333";
const APP: &str = "arn:aws:iam::111122223333:role/app";

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    (status.lines())
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux: `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn report(step: &str, dropped: &BTreeMap<&'static str, u64>) {
    let (peak, now) = (status_kib("VmHWM:") / 1024, status_kib("VmRSS:") / 1024);
    println!("{step}\n  peak RSS {peak} MiB (now {now} MiB), dropped {dropped:?}");
}

/// A partition object of `n` principals, one `principal` row each, written as a hostile store
/// writer would (straight to Parquet, not through `store::encode`); `app` comes last.
fn partition(n: usize) -> Vec<u8> {
    let mut principals: Vec<String> = (0..n)
        .map(|i| format!("arn:aws:iam::{ACCOUNT}:role/flood-{i:07}"))
        .collect();
    principals.push(APP.to_string());
    let rows = principals.len();
    let text = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let none = || text(vec![None; rows]);
    let columns = vec![
        text(principals.into_iter().map(Some).collect()),
        text(vec![Some("principal".to_string()); rows]),
        none(),
        none(),
        none(),
        none(),
        none(),
        none(),
        Arc::new(Int64Array::from(vec![1i64; rows])) as ArrayRef,
        none(),
    ];
    let fields: Vec<Field> = (COLUMNS.iter())
        .map(|name| match *name {
            "count" => Field::new(*name, DataType::Int64, false),
            "principal" | "kind" => Field::new(*name, DataType::Utf8, false),
            _ => Field::new(*name, DataType::Utf8, true),
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

fn record(role: &str, time: &str, key: usize) -> String {
    format!(
        r#"{{"eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"{ACCOUNT}","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::{ACCOUNT}:assumed-role/x/s","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"{role}"}}}}}},"requestParameters":{{"bucketName":"b","key":"k{key}"}}}}"#
    )
}

fn main() {
    let now = parse_date(NOW).unwrap();
    let today = Day::of(now);
    let budget = FactBudget::new(MAX_FACTS_TOTAL);
    println!(
        "memory bounds under hostile input (chart limit {CHART_LIMIT_MIB} MiB); start: RSS {} MiB",
        status_kib("VmRSS:") / 1024
    );

    // 1. A fact store: 30 partitions (days), each naming 1,000,000 principals, decoded one at a
    //    time into one ingester's facts, as `sources::ingest` loads them.
    let object = partition(1_000_000);
    println!(
        "  a partition object of 1,000,001 principals: {} MiB",
        object.len() >> 20
    );
    reset_peak();
    let mut facts = Facts::with_budget(Arc::clone(&budget));
    facts.prefer(APP);
    for d in 0..30 {
        let day = Day::of(now - d * 86_400 * 1_000_000_000);
        let bounds = store::Bounds {
            facts: facts.room(),
            prefer: facts.preferred(),
            ..store::Bounds::default()
        };
        let decoded = store::decode_within("bench", object.clone(), &bounds).unwrap();
        facts.restore_principals(day, decoded.principals);
        for (reason, n) in decoded.skipped {
            facts.count_dropped(day, reason, n);
        }
    }
    let app = iam_tailor::cloudtrail::PrincipalFilter::parse(APP).unwrap();
    let days = Day::of(now - 29 * 86_400 * 1_000_000_000)..=today;
    let kept = facts.usage(&app, days).stats.records_matched > 0;
    report(
        &format!(
            "1. fact store: 30 partitions x 1,000,001 principals -> {} facts held, the managed role kept: {}",
            facts.held(),
            kept
        ),
        &facts.take_dropped(),
    );
    drop(object);

    // 2. Trail files: 8 files (as many as an analysis holds at once) of 70,000 records (just
    //    under the 32 MiB file limit), each a distinct principal, half dated in year 9999; the
    //    managed role's record last.
    let files: Vec<Vec<u8>> = (0..8)
        .map(|f| {
            let mut records: Vec<String> = (0..70_000)
                .map(|i| {
                    let time = if i % 2 == 0 {
                        "9999-12-31T23:59:59Z"
                    } else {
                        NOW
                    };
                    record(&format!("arn:aws:iam::{ACCOUNT}:role/t{f}-{i}"), time, i)
                })
                .collect();
            records.push(record(APP, NOW, 0));
            format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes()
        })
        .collect();
    let size: usize = files.iter().map(Vec::len).sum();
    println!(
        "  8 trail files: {} MiB in all (RSS with them {} MiB)",
        size >> 20,
        status_kib("VmRSS:") / 1024
    );
    reset_peak();
    let options = ScanOptions {
        not_after: Some(now + iam_tailor::sources::ingest::MAX_CLOCK_SKEW_NANOS),
        prefer: facts.preferred(),
        ..ScanOptions::default()
    };
    let mut read = FileFacts::default();
    for (i, file) in files.iter().enumerate() {
        let mut one = FileFacts::default();
        scan_file_bytes(&format!("f{i}"), file, &options, &mut one).unwrap();
        iam_tailor::cloudtrail::Sink::merge(&mut read, one);
    }
    let principals: usize = read.days.values().map(BTreeMap::len).sum();
    facts.add(today, read);
    report(
        &format!(
            "2. trail files: 560,008 records -> {principals} principal-days read, {} facts held",
            facts.held()
        ),
        &facts.take_dropped(),
    );
    drop(files);

    // 3. Other ingesters on the same budget, flooded the same way: the total stays bounded.
    reset_peak();
    let mut others: Vec<Facts> = (0..4)
        .map(|_| Facts::with_budget(Arc::clone(&budget)))
        .collect();
    let mut dropped = BTreeMap::new();
    for (n, other) in others.iter_mut().enumerate() {
        for d in 0..100 {
            let day = Day::of(now - d * 86_400 * 1_000_000_000);
            let flood = (0..2_000).map(|i| {
                let mut usage = Usage::default();
                for r in 0..4 {
                    usage.record_use("s3:GetObject", &format!("arn:aws:s3:::b{n}/{i}/{r}"), NOW);
                }
                (format!("arn:aws:iam::{ACCOUNT}:role/o{n}-{i}"), usage)
            });
            other.restore_principals(day, flood.collect());
        }
        for (reason, count) in other.take_dropped() {
            *dropped.entry(reason).or_default() += count;
        }
    }
    report(
        &format!(
            "3. 4 more ingesters, 100 days x 2,000 principals x 6 facts each (8 with its weight) -> {} facts held by all (budget {MAX_FACTS_TOTAL})",
            budget.held()
        ),
        &dropped,
    );

    // 4. The signal queue: 20,000 distinct refused calls of one role, then 100,000 refusals,
    //    each of another role.
    reset_peak();
    let refusals = Refusals::default();
    let mut dropped: BTreeMap<&'static str, u64> = BTreeMap::new();
    let refusal = |action: &str| {
        let mut usage = Usage::default();
        usage.record_denied("s3.amazonaws.com", action, "AccessDenied", NOW);
        let call = iam_tailor::usage::Refused {
            event_id: "e",
            source_ip: "198.51.100.7",
        };
        usage.record_denied_grant(&format!("s3:{action}"), "arn:aws:s3:::b/k", &call, NOW);
        usage
    };
    for i in 0..20_000 {
        for (reason, n) in refusals.add(APP, refusal(&format!("Call{i}")), now) {
            *dropped.entry(reason).or_default() += n;
        }
    }
    for i in 0..100_000 {
        let role = format!("arn:aws:iam::{ACCOUNT}:role/q{i}");
        for (reason, n) in refusals.add(&role, refusal(&format!("Get{}", i % 500)), now) {
            *dropped.entry(reason).or_default() += n;
        }
    }
    let (principals, calls) = refusals.held();
    report(
        &format!(
            "4. signal queue: 120,000 refusals -> {principals} principals (at most {MAX_REFUSING_PRINCIPALS}), {calls} calls held"
        ),
        &dropped,
    );
    let held = status_kib("VmRSS:") / 1024;
    println!("all held at once at the end: RSS {held} MiB");
    // Trail files in flight are bounded process-wide, whatever is held besides.
    let files = iam_tailor::sources::trail::MAX_FILES_HELD as u64
        * (iam_tailor::cloudtrail::MAX_FILE_BYTES >> 20)
        + iam_tailor::sources::trail::MAX_FILES_SCANNED as u64
            * (iam_tailor::cloudtrail::MAX_DECOMPRESSED_BYTES as u64 >> 20);
    println!(
        "ceiling: that plus trail files in flight at their worst ({files} MiB) = {} MiB, against the {CHART_LIMIT_MIB} MiB limit",
        held + files
    );
}
