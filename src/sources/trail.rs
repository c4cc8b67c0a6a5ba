//! The trail in S3 as a source of usage: its files listed for a window and scanned, into one
//! principal's [`Usage`] or every principal's facts (the CLI; the operator goes through
//! `sources::ingest`, which reads with [`read_keys`] too). `aws::s3` only lists and gets.

use crate::aws::s3::{S3Error, S3Location, TrailScope, get_object, list_trail};
use crate::cloudtrail::{MAX_FILE_BYTES, ScanError, ScanOptions, Sink, scan_file_bytes};
use crate::time::Day;
use crate::usage::Usage;
use aws_sdk_s3::Client;
use std::collections::BTreeSet;

/// Trail files held at once in the whole process, downloaded or being scanned, whatever
/// number of reads run at once: each is at most [`MAX_FILE_BYTES`] as stored.
pub const MAX_FILES_HELD: usize = 8;
/// Trail files decompressed and scanned at once in the whole process: each may expand to
/// [`crate::cloudtrail::MAX_DECOMPRESSED_BYTES`] (a gzip bomb does), so the files' share of
/// memory stays under 8 × 32 + 2 × 128 = 512 MiB however many trails are read at once.
pub const MAX_FILES_SCANNED: usize = 2;

static FILES_HELD: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_FILES_HELD);
static FILES_SCANNED: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_FILES_SCANNED);

/// A scan of a trail: the usage, and which of the asked-for days no file was found for, in
/// any account or region (the trail was off, or its files are gone).
#[derive(Debug, Default, PartialEq)]
pub struct TrailScan<S = Usage> {
    pub usage: S,
    pub days_without_files: Vec<Day>,
}

/// The key's prefix up to its day (`…/CloudTrail/REGION/YYYY/MM/DD/`).
pub(crate) fn day_prefix(key: &str) -> Option<&str> {
    let at = key.rfind("/CloudTrail/")? + "/CloudTrail/".len();
    let mut end = at;
    for _ in 0..4 {
        end += key[end..].find('/')? + 1;
    }
    Some(&key[..end])
}

/// The day a day prefix names.
pub(crate) fn prefix_day(prefix: &str) -> Option<Day> {
    let mut parts = prefix.trim_end_matches('/').rsplit('/');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let day = Day {
        year: year.parse().ok()?,
        month: month.parse().ok()?,
        day: day.parse().ok()?,
    };
    (year.len() == 4 && Day::of_event_time(&format!("{}T00:00:00Z", day.iso())) == Some(day))
        .then_some(day)
}

/// A trail scan that failed: a listing or download, or a malformed file under `strict`.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// A bug met while scanning this file: reported as the file's failure.
    #[error("{file}: internal error while scanning (a bug; please report it): {message}")]
    Panicked { file: String, message: String },
}

/// Lists (only `days`, when given) and scans the trail's files under `locations`: see
/// [`read_keys`].
pub async fn scan_s3<S: Sink>(
    client: &Client,
    locations: &[S3Location],
    days: Option<&[Day]>,
    scope: &TrailScope,
    options: &ScanOptions,
    parallel: usize,
) -> Result<TrailScan<S>, TrailError> {
    let mut files: Vec<(String, String)> = Vec::new();
    for location in locations {
        let listing = list_trail(client, location, days, scope, &BTreeSet::new()).await?;
        files.extend(
            listing
                .keys
                .into_iter()
                .map(|k| (location.bucket.clone(), k)),
        );
    }
    let present: BTreeSet<Day> = (files.iter())
        .filter_map(|(_, key)| day_prefix(key).and_then(prefix_day))
        .collect();
    let days_without_files = (days.unwrap_or_default().iter())
        .filter(|d| !present.contains(d))
        .copied()
        .collect();
    let usage = read_keys(client, files, options, parallel, OnPanic::Fail).await?;
    Ok(TrailScan {
        usage,
        days_without_files,
    })
}

/// What a file whose scan panicked (a bug) does to the whole read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnPanic {
    /// Fails it: the resource that asked reports the bug.
    Fail,
    /// Skips the file, counted as `internal-error`: a read shared by many resources must not
    /// stop for all of them on one file.
    Skip,
}

/// Downloads and scans `files` (bucket, key) into one `S`, `parallel` downloads at a time so
/// memory stays bounded: each file's result is merged as it completes (the merge does not
/// depend on order), so only `parallel` files are held at once (and [`MAX_FILES_HELD`],
/// [`MAX_FILES_SCANNED`] across every read of the process). The result does not depend on
/// timing: the first failure in `files` order is the one reported.
pub(crate) async fn read_keys<S: Sink>(
    client: &Client,
    files: Vec<(String, String)>,
    options: &ScanOptions,
    parallel: usize,
    on_panic: OnPanic,
) -> Result<S, TrailError> {
    let progress = options.progress && files.len() > 1;
    let total = files.len();
    let mut sink = S::default();
    let mut done = 0;
    let mut failure: Option<(usize, TrailError)> = None;
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = files.into_iter().enumerate();
    loop {
        while tasks.len() < parallel.max(1) {
            let Some((index, (bucket, key))) = queue.next() else {
                break;
            };
            let client = client.clone();
            let options = options.clone();
            tasks.spawn(async move {
                let _held = FILES_HELD.acquire().await.expect("never closed");
                let result = match get_object(&client, &bucket, &key).await {
                    Ok(None) if options.strict => Err(TrailError::Scan(ScanError::Strict {
                        file: format!("s3://{bucket}/{key}"),
                        index: None,
                        reason: format!("larger than the {MAX_FILE_BYTES}-byte limit"),
                    })),
                    Ok(None) => {
                        let mut sink = S::default();
                        sink.stats().files_scanned += 1;
                        sink.stats().skip("file-too-large");
                        Ok(sink)
                    }
                    Ok(Some(bytes)) => {
                        let name = format!("s3://{bucket}/{key}");
                        let file = name.clone();
                        let _scanning = FILES_SCANNED.acquire().await.expect("never closed");
                        let scanned = tokio::task::spawn_blocking(move || {
                            let mut sink = S::default();
                            scan_file_bytes(&name, &bytes, &options, &mut sink).map(|()| sink)
                        })
                        .await;
                        match crate::panic::joined(scanned) {
                            Ok(scanned) => scanned.map_err(TrailError::from),
                            Err(message) if on_panic == OnPanic::Skip => {
                                tracing::error!(
                                    file,
                                    message,
                                    "scanning a trail file panicked (a bug); skipped"
                                );
                                let mut sink = S::default();
                                sink.stats().files_scanned += 1;
                                sink.stats().skip("internal-error");
                                Ok(sink)
                            }
                            Err(message) => Err(TrailError::Panicked { file, message }),
                        }
                    }
                    Err(e) => Err(e.into()),
                };
                (index, result)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        // The task itself only awaits the download and the scan above, which report their
        // own failures.
        let (index, result) = joined.expect("a download task does not panic");
        match result {
            Ok(file) => sink.merge(file),
            Err(e) if failure.as_ref().is_none_or(|(first, _)| index < *first) => {
                failure = Some((index, e));
            }
            Err(_) => {}
        }
        done += 1;
        if progress {
            eprint!("\r{done}/{total} files");
        }
    }
    if progress {
        eprintln!();
    }
    match failure {
        Some((_, e)) => Err(e),
        None => Ok(sink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_give_their_day_prefix_and_day() {
        let key = "org/AWSLogs/o-1/111122223333/CloudTrail/eu-west-1/2026/11/20/x.json.gz";
        let prefix = day_prefix(key).unwrap();
        assert_eq!(
            prefix,
            "org/AWSLogs/o-1/111122223333/CloudTrail/eu-west-1/2026/11/20/"
        );
        assert_eq!(
            prefix_day(prefix),
            Some(Day {
                year: 2026,
                month: 11,
                day: 20
            })
        );
        assert_eq!(day_prefix("logs/2026/11/20/x.json"), None);
        assert_eq!(day_prefix("AWSLogs/1/CloudTrail/us-east-1/2026/11"), None);
        assert_eq!(prefix_day("a/CloudTrail/r/2026/13/20/"), None);
        assert_eq!(prefix_day("a/CloudTrail/r/26/11/20/"), None);
        assert_eq!(prefix_day(""), None);
    }
}
