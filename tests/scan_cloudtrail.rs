//! Scanning the CloudTrail fixtures under `tests/fixtures/cloudtrail/tree`:
//!
//! - `AWSLogs/…/2024/07/31/…_a1.json.gz`: S3 layout, gzip; 8 records: the role `service/app`
//!   reads `reports/q1.csv`, gets `NoSuchKey` on `q2.csv`, is denied a PutObject; the role
//!   `other` deletes; `app` signs in to the console; a record with a numeric eventName; a call
//!   to an unknown service; `app` sends a message on 2024-08-02.
//! - `AWSLogs/…/2024/08/01/array.json`: JSON array; GetCallerIdentity by `service/app` and by a
//!   role `app` without path in another account.
//! - `AWSLogs/…/2024/08/01/events.json`: JSON Lines; a denied ReceiveMessage, a ListQueues
//!   without eventTime, a broken line, alice's ListQueues, a KMS service event.
//! - `AWSLogs/…/CloudTrail-Digest/`: skipped; `broken/`: not JSON, a truncated gzip, a `.txt`.

use iam_tailor::cloudtrail::{
    PrincipalFilter, ScanError, ScanOptions, scan_file_bytes, scan_paths,
};
use iam_tailor::time::parse_date;
use iam_tailor::usage::Usage;
use std::path::PathBuf;

const APP: &str = "arn:aws:iam::111122223333:role/service/app";
const DAY_ONE: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/07/31/\
                       111122223333_CloudTrail_us-east-1_20240731T1400Z_a1.json.gz";

fn tree() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cloudtrail/tree"
    ))
}

fn scan(principal: Option<&str>, opts: ScanOptions) -> Usage {
    let opts = ScanOptions {
        principal: principal.map(|p| PrincipalFilter::parse(p).unwrap()),
        ..opts
    };
    scan_paths(&[tree()], &opts).unwrap()
}

fn count(usage: &Usage, action: &str) -> u64 {
    usage.actions.get(action).map_or(0, |a| a.seen.count)
}

fn skipped(usage: &Usage, reason: &str) -> u64 {
    usage.stats.skipped.get(reason).copied().unwrap_or(0)
}

#[test]
fn reads_every_layout_and_counts_what_it_skips() {
    let usage = scan(None, ScanOptions::default());
    // 3 good files and 2 broken ones; the digest directory and the .txt file are not read.
    assert_eq!(usage.stats.files_scanned, 5);
    assert_eq!(usage.stats.records_scanned, 8 + 2 + 5);
    assert_eq!(skipped(&usage, "digest-directory"), 1);
    assert_eq!(skipped(&usage, "malformed-file"), 2);
    assert_eq!(skipped(&usage, "malformed-record"), 2);
    assert_eq!(skipped(&usage, "console-sign-in"), 1);
    assert_eq!(skipped(&usage, "service-event"), 1);
    // Records after the bad one in each file were still read.
    assert_eq!(count(&usage, "sqs:SendMessage"), 1);
    assert_eq!(count(&usage, "sqs:ListQueues"), 2);
    // Every record but the 2 malformed, the sign-in and the service event.
    assert_eq!(usage.stats.records_matched, 15 - 4);
}

#[test]
fn a_role_arn_selects_its_sessions_and_sorts_use_from_denials() {
    let usage = scan(Some(APP), ScanOptions::default());
    assert_eq!(usage.stats.files_scanned, 5);
    assert_eq!(usage.stats.records_scanned, 15);
    // NoSuchKey came after authorization: it is use.
    assert_eq!(count(&usage, "s3:GetObject"), 2);
    assert_eq!(
        usage.actions["s3:GetObject"].seen.last_seen,
        "2024-07-31T11:00:00Z"
    );
    let objects: Vec<_> = usage.actions["s3:GetObject"].resources.keys().collect();
    assert_eq!(
        objects,
        ["arn:aws:s3:::reports/q1.csv", "arn:aws:s3:::reports/q2.csv"]
    );
    let queues: Vec<_> = usage.actions["sqs:SendMessage"].resources.keys().collect();
    assert_eq!(queues, ["arn:aws:sqs:us-east-1:111122223333:jobs"]);
    assert_eq!(count(&usage, "sqs:SendMessage"), 1);
    assert_eq!(count(&usage, "sts:GetCallerIdentity"), 1);
    // Without a window, a record without eventTime counts, seen at no time.
    assert_eq!(count(&usage, "sqs:ListQueues"), 1);
    assert_eq!(usage.actions["sqs:ListQueues"].seen.last_seen, "");
    // Denied calls are reported, never granted.
    assert!(!usage.actions.contains_key("s3:PutObject"));
    assert!(!usage.actions.contains_key("sqs:ReceiveMessage"));
    let denied: Vec<_> = usage.denied.keys().cloned().collect();
    let key = |s: &str, n: &str, c: &str| (s.to_string(), n.to_string(), c.to_string());
    assert_eq!(
        denied,
        [
            key("s3.amazonaws.com", "PutObject", "AccessDenied"),
            key(
                "sqs.amazonaws.com",
                "ReceiveMessage",
                "AccessDeniedException"
            ),
        ]
    );
    // What they asked for, kept apart (the operator may restore it, never grant it anew).
    let asked: Vec<(&str, &str)> = (usage.denied_grants.keys())
        .map(|(a, r)| (a.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        asked,
        [
            ("s3:PutObject", "arn:aws:s3:::reports/q3.csv"),
            (
                "sqs:ReceiveMessage",
                "arn:aws:sqs:us-east-1:111122223333:jobs"
            ),
        ]
    );
    // The other role's DeleteObject is not there.
    assert!(!usage.actions.contains_key("s3:DeleteObject"));
    let unmapped: Vec<_> = usage.unmapped.keys().cloned().collect();
    assert_eq!(
        unmapped,
        [("example.amazonaws.com".to_string(), "DoThing".to_string())]
    );
    assert_eq!(skipped(&usage, "console-sign-in"), 1);
    // Alice's records and the service event are someone else's: not counted as skips.
    assert_eq!(skipped(&usage, "service-event"), 0);
    // 2 GetObject, SendMessage, GetCallerIdentity, ListQueues, 2 denied, 1 unmapped.
    assert_eq!(usage.stats.records_matched, 8);
}

#[test]
fn a_role_name_matches_in_any_account_and_path() {
    let usage = scan(Some("app"), ScanOptions::default());
    assert_eq!(count(&usage, "sts:GetCallerIdentity"), 2);
    let other = scan(
        Some("arn:aws:iam::444455556666:role/app"),
        ScanOptions::default(),
    );
    assert_eq!(count(&other, "sts:GetCallerIdentity"), 1);
    assert_eq!(other.stats.records_matched, 1);
}

#[test]
fn a_user_arn_selects_the_users_records() {
    let usage = scan(
        Some("arn:aws:iam::111122223333:user/alice"),
        ScanOptions::default(),
    );
    assert_eq!(usage.stats.records_matched, 1);
    assert_eq!(count(&usage, "sqs:ListQueues"), 1);
    assert_eq!(
        usage.actions["sqs:ListQueues"].seen.last_seen,
        "2024-08-01T09:00:00Z"
    );
}

#[test]
fn the_window_is_inclusive_from_and_exclusive_to() {
    let at = |s: &str| parse_date(s).unwrap();
    let opts = ScanOptions {
        from: Some(at("2024-07-31T11:00:00Z")),
        to: Some(at("2024-08-02T00:00:00Z")),
        ..ScanOptions::default()
    };
    let usage = scan(Some(APP), opts);
    // The 10:00 GetObject is before; the NoSuchKey one at 11:00 is the first inside.
    assert_eq!(count(&usage, "s3:GetObject"), 1);
    // SendMessage at 2024-08-02T00:00:00Z is at `to`: outside.
    assert_eq!(count(&usage, "sqs:SendMessage"), 0);
    // ListQueues has no eventTime.
    assert_eq!(count(&usage, "sqs:ListQueues"), 0);
    assert_eq!(skipped(&usage, "no-event-time"), 1);
    assert_eq!(count(&usage, "sts:GetCallerIdentity"), 1);
    assert_eq!(usage.denied.len(), 2);
}

#[test]
fn strict_stops_at_the_first_malformed_record_in_file_order() {
    for threads in [1, 4] {
        let opts = ScanOptions {
            strict: true,
            threads,
            ..ScanOptions::default()
        };
        match scan_paths(&[tree()], &opts) {
            Err(ScanError::Strict { file, index, .. }) => {
                assert!(file.ends_with(DAY_ONE), "{file}");
                assert_eq!(index, Some(5));
            }
            other => panic!("{other:?}"),
        }
    }
    // A broken file is an error too, without an index where there is none.
    let opts = ScanOptions {
        strict: true,
        ..ScanOptions::default()
    };
    let truncated_name = || {
        tree()
            .join("broken/truncated.json.gz")
            .display()
            .to_string()
    };
    let error = scan_paths(&[tree().join("broken/truncated.json.gz")], &opts).unwrap_err();
    assert!(
        matches!(&error, ScanError::Strict { index: None, file, .. } if file.ends_with("truncated.json.gz")),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: gzip: ", truncated_name()))
    );
    let error = scan_file_bytes("not-json", b"nope", &opts, &mut Usage::default()).unwrap_err();
    assert!(
        error.to_string().starts_with("not-json: record 0: "),
        "{error}"
    );
}

#[test]
fn the_result_does_not_depend_on_the_thread_count() {
    let one = scan(
        None,
        ScanOptions {
            threads: 1,
            ..ScanOptions::default()
        },
    );
    let four = scan(
        None,
        ScanOptions {
            threads: 4,
            ..ScanOptions::default()
        },
    );
    assert_eq!(one, four);
}

#[test]
fn bytes_are_read_gzipped_or_not() {
    let gz = std::fs::read(tree().join(DAY_ONE)).unwrap();
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
    let opts = ScanOptions::default();
    let (mut from_gz, mut from_text) = (Usage::default(), Usage::default());
    scan_file_bytes("a.json.gz", &gz, &opts, &mut from_gz).unwrap();
    scan_file_bytes("a.json", &text, &opts, &mut from_text).unwrap();
    assert_eq!(from_gz, from_text);
    assert_eq!(from_gz.stats.records_scanned, 8);
    // Bytes add into the usage given.
    scan_file_bytes("a.json", &text, &opts, &mut from_text).unwrap();
    assert_eq!(from_text.stats.files_scanned, 2);
    assert_eq!(count(&from_text, "s3:GetObject"), 4);
}

#[test]
fn files_named_explicitly_are_read_whatever_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.log");
    let record = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"sqs.amazonaws.com","eventName":"ListQueues"}"#;
    std::fs::write(&file, record).unwrap();
    let usage = scan_paths(&[file], &ScanOptions::default()).unwrap();
    assert_eq!(count(&usage, "sqs:ListQueues"), 1);
    // In a directory, only .json and .json.gz files are.
    let usage = scan_paths(&[dir.path().to_path_buf()], &ScanOptions::default()).unwrap();
    assert_eq!(usage.stats.files_scanned, 0);
}

#[test]
fn a_missing_path_is_an_error() {
    let missing = tree().join("missing");
    let error = scan_paths(&[missing], &ScanOptions::default()).unwrap_err();
    assert!(matches!(error, ScanError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("missing"));
}

/// One record of `app` reading `reports/q1.csv`, at `time`.
fn app_record(time: &str) -> String {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/s",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": APP}}},
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "requestParameters": {"bucketName": "reports", "key": "q1.csv"},
    })
    .to_string()
}

#[test]
fn poison_files_and_records_are_skipped_by_name_and_the_rest_is_read() {
    use iam_tailor::cloudtrail::{
        MAX_DECOMPRESSED_BYTES, MAX_FILE_BYTES, MAX_RECORD_BYTES, MAX_RECORDS_PER_FILE,
    };
    use std::io::Write;
    let opts = ScanOptions::default();
    let mut usage = Usage::default();
    let good = app_record("2024-07-31T14:00:00Z");

    // A gzip bomb: one small member of a MiB of spaces, repeated (gzip reads members one
    // after another) until it expands past the cap.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 1 << 20]).unwrap();
    let member = gz.finish().unwrap();
    let bomb = member.repeat((MAX_DECOMPRESSED_BYTES >> 20) + 1);
    assert!((bomb.len() as u64) < MAX_FILE_BYTES);
    scan_file_bytes("bomb.json.gz", &bomb, &opts, &mut usage).unwrap();
    assert_eq!(skipped(&usage, "decompressed-too-large"), 1);

    // A file over the stored-size cap is not even decompressed.
    let huge = vec![b' '; MAX_FILE_BYTES as usize + 1];
    scan_file_bytes("huge.json", &huge, &opts, &mut usage).unwrap();
    assert_eq!(skipped(&usage, "file-too-large"), 1);

    // One oversized record among good ones: skipped, its neighbours read.
    let padding = "x".repeat(MAX_RECORD_BYTES);
    let big = good.replace("\"q1.csv\"", &format!("\"{padding}\""));
    let lines = format!("{good}\n{big}\n{good}\n");
    scan_file_bytes("big-record.json", lines.as_bytes(), &opts, &mut usage).unwrap();
    assert_eq!(skipped(&usage, "record-too-large"), 1);
    assert_eq!(count(&usage, "s3:GetObject"), 2);

    // Records past the per-file cap are not read; the file counts once.
    let many = "{}\n".repeat(MAX_RECORDS_PER_FILE) + &good;
    scan_file_bytes("many.json", many.as_bytes(), &opts, &mut usage).unwrap();
    assert_eq!(skipped(&usage, "too-many-records"), 1);
    assert_eq!(count(&usage, "s3:GetObject"), 2, "the record past the cap");

    // The date parser once panicked on multi-byte characters in eventTime.
    let poison = app_record("2026-11-01T00:00:00+aé1");
    let window = ScanOptions {
        from: parse_date("2000-01-01"),
        to: parse_date("2100-01-01"),
        ..ScanOptions::default()
    };
    scan_file_bytes("poison.json", poison.as_bytes(), &window, &mut usage).unwrap();
    assert_eq!(skipped(&usage, "invalid-event-time"), 1);
    assert_eq!(usage.stats.files_scanned, 5);

    // Strict mode names the file and the limit instead.
    let strict = ScanOptions {
        strict: true,
        ..ScanOptions::default()
    };
    let error = scan_file_bytes("bomb.json.gz", &bomb, &strict, &mut Usage::default());
    let message = error.unwrap_err().to_string();
    assert!(message.starts_with("bomb.json.gz: "), "{message}");
    assert!(message.contains("decompresses past"), "{message}");
    let error = scan_file_bytes("big.json", lines.as_bytes(), &strict, &mut Usage::default());
    let message = error.unwrap_err().to_string();
    assert!(message.contains("record 1"), "{message}");
    assert!(message.contains("-byte limit"), "{message}");
}
